/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Sources (internal.h): an fd, read through io.c so that XSR_FAULT and
 * XSR_IO_COUNT see every read, and a caller's buffer, read in place.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* ---- fd ---- */

static int fd_pread(struct xsr_source *src, void *buf, size_t len, uint64_t off)
{
	return xsr_io_pread(src->fd, buf, len, off);
}

static ssize_t fd_read(struct xsr_source *src, void *buf, size_t len, uint64_t off)
{
	return xsr_io_read(src->fd, buf, len);
}

static int fd_size(struct xsr_source *src, uint64_t *size)
{
	struct stat sb;
	if (fstat(src->fd, &sb) < 0)
		return -errno;
	if (!S_ISREG(sb.st_mode))
		return -ESPIPE;
	*size = (uint64_t)sb.st_size;
	return 0;
}

/* Page data is read with pread, not through a mapping: XSR_FAULT must reach it. */
static const void *fd_view(struct xsr_source *src, uint64_t off, size_t len)
{
	return NULL;
}

static uint64_t host_page(void)
{
	static uint64_t pg;
	if (!pg)
		pg = (uint64_t)sysconf(_SC_PAGESIZE);
	return pg;
}

static int fd_map(struct xsr_source *src, uint64_t off, size_t len, bool writable, void **addr)
{
	uint64_t base = off & ~(host_page() - 1);
	if (len == 0 || (writable && base != off) || len > SIZE_MAX - (off - base))
		return -EINVAL;
	void *p = mmap(NULL, len + (off - base), writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_PRIVATE,
		       src->fd, (off_t)base);
	if (p == MAP_FAILED)
		return -errno;
	*addr = (uint8_t *)p + (off - base);
	return 0;
}

static void fd_unmap(struct xsr_source *src, void *addr, uint64_t off, size_t len)
{
	uint64_t lead = off & (host_page() - 1);
	munmap((uint8_t *)addr - lead, len + lead);
}

static const struct xsr_source_ops fd_ops = {
	.pread = fd_pread,
	.read = fd_read,
	.size = fd_size,
	.view = fd_view,
	.map = fd_map,
	.unmap = fd_unmap,
};

void xsr_source_fd(struct xsr_source *src, int fd)
{
	*src = (struct xsr_source){.ops = &fd_ops, .fd = fd};
}

bool xsr_source_hole(const struct xsr_source *src, uint64_t off, uint64_t len)
{
	if (src->ops != &fd_ops || len == 0 || off > INT64_MAX)
		return false;
	off_t d = lseek(src->fd, (off_t)off, SEEK_DATA);
	/* ENXIO: no data from @off to the end; any other error: not known to be a hole. */
	if (d < 0)
		return errno == ENXIO;
	return (uint64_t)d - off >= len;
}

/* ---- memory ---- */

static int mem_pread(struct xsr_source *src, void *buf, size_t len, uint64_t off)
{
	if (!xsr_in_bounds(off, len, src->len))
		return -EIO; /* as a short file reads: callers checked bounds against the size */
	if (len)
		memcpy(buf, src->mem + off, len);
	return 0;
}

static ssize_t mem_read(struct xsr_source *src, void *buf, size_t len, uint64_t off)
{
	if (off >= src->len)
		return 0;
	size_t n = src->len - off < len ? (size_t)(src->len - off) : len;
	if (n > SSIZE_MAX)
		n = SSIZE_MAX;
	memcpy(buf, src->mem + off, n);
	return (ssize_t)n;
}

static int mem_size(struct xsr_source *src, uint64_t *size)
{
	*size = src->len;
	return 0;
}

static const void *mem_view(struct xsr_source *src, uint64_t off, size_t len)
{
	return xsr_in_bounds(off, len, src->len) ? src->mem + off : NULL;
}

/*
 * Read-only: the buffer itself.  Writable: a copy in anonymous memory, so
 * that the caller's munmap releases it and its writes never reach the
 * caller's buffer, as with MAP_PRIVATE of a file.
 */
static int mem_map(struct xsr_source *src, uint64_t off, size_t len, bool writable, void **addr)
{
	if (len == 0 || (writable && off % host_page()))
		return -EINVAL;
	if (!xsr_in_bounds(off, len, src->len))
		return -EIO;
	if (!writable) {
		*addr = (void *)(src->mem + off);
		return 0;
	}
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	memcpy(p, src->mem + off, len);
	*addr = p;
	return 0;
}

static void mem_unmap(struct xsr_source *src, void *addr, uint64_t off, size_t len)
{
}

static const struct xsr_source_ops mem_ops = {
	.pread = mem_pread,
	.read = mem_read,
	.size = mem_size,
	.view = mem_view,
	.map = mem_map,
	.unmap = mem_unmap,
};

void xsr_source_mem(struct xsr_source *src, const void *buf, size_t len)
{
	*src = (struct xsr_source){.ops = &mem_ops, .fd = -1, .mem = buf, .len = len};
}
