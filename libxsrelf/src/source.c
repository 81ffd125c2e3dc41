/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Sources (internal.h): an fd, read through io.c so that XSR_FAULT and
 * XSR_IO_COUNT see every read; a caller's buffer, read in place; and the
 * caller's callbacks (xsrelf/io.h), the way a remote store plugs in.
 */
#include <errno.h>
#include <stdlib.h>
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

static bool fd_hole(const struct xsr_source *src, uint64_t off, uint64_t len);
static const struct xsr_source_ops fd_ops = {
	.pread = fd_pread,
	.read = fd_read,
	.size = fd_size,
	.view = fd_view,
	.map = fd_map,
	.unmap = fd_unmap,
	.hole = fd_hole,
};

void xsr_source_fd(struct xsr_source *src, int fd)
{
	*src = (struct xsr_source){.ops = &fd_ops, .fd = fd};
}

bool xsr_source_hole(const struct xsr_source *src, uint64_t off, uint64_t len)
{
	return len != 0 && src->ops->hole(src, off, len);
}

static bool fd_hole(const struct xsr_source *src, uint64_t off, uint64_t len)
{
	if (off > INT64_MAX)
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

static bool no_hole(const struct xsr_source *src, uint64_t off, uint64_t len)
{
	return false;
}

static const struct xsr_source_ops mem_ops = {
	.pread = mem_pread,
	.read = mem_read,
	.size = mem_size,
	.view = mem_view,
	.map = mem_map,
	.unmap = mem_unmap,
	.hole = no_hole,
};

void xsr_source_mem(struct xsr_source *src, const void *buf, size_t len)
{
	*src = (struct xsr_source){.ops = &mem_ops, .fd = -1, .mem = buf, .len = len};
}

/* ---- the caller's callbacks ---- */

/* Exactly @len octets at @off, short reads asked again; a failure is remembered with its offset. */
static int cb_pread(struct xsr_source *src, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	if (!src->cb.pread)
		return -ESPIPE;
	while (done < len) {
		if (off + done < off)
			return -EOVERFLOW;
		ssize_t r = src->cb.pread(src->ctx, (char *)buf + done, len - done, off + done);
		if (r == -EINTR)
			continue;
		if (r <= 0 || (size_t)r > len - done) {
			src->failed_at = off + done;
			return r < 0 ? (int)r : r == 0 ? -EIO : -EPROTO;
		}
		done += (size_t)r;
	}
	return 0;
}

static ssize_t cb_read(struct xsr_source *src, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t r = src->cb.read ? src->cb.read(src->ctx, (char *)buf + done, len - done)
					 : src->cb.pread(src->ctx, (char *)buf + done, len - done, off + done);
		if (r == -EINTR)
			continue;
		if (r < 0 || (size_t)r > len - done) {
			src->failed_at = off + done;
			return r < 0 ? r : -EPROTO;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

static int cb_size(struct xsr_source *src, uint64_t *size)
{
	return src->cb.size ? src->cb.size(src->ctx, size) : -ESPIPE;
}

static const void *cb_view(struct xsr_source *src, uint64_t off, size_t len)
{
	return NULL;
}

/*
 * Read-only mappings are not offered (the image reader then reads what it
 * needs, see image.c); a writable one is a private copy read in large
 * preads, with the ranges the source calls holes left untouched (zeros).
 */
static int cb_map(struct xsr_source *src, uint64_t off, size_t len, bool writable, void **addr)
{
	if (!writable)
		return -ENOTSUP;
	if (len == 0 || off % host_page())
		return -EINVAL;
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	const size_t chunk = 1u << 20;
	for (size_t at = 0; at < len; at += chunk) {
		size_t n = len - at < chunk ? len - at : chunk;
		if (src->cb.hole && src->cb.hole(src->ctx, off + at, n) > 0)
			continue;
		int rc = cb_pread(src, p + at, n, off + at);
		if (rc < 0) {
			munmap(p, len);
			return rc;
		}
	}
	*addr = p;
	return 0;
}

static bool cb_hole(const struct xsr_source *src, uint64_t off, uint64_t len)
{
	return src->cb.hole && src->cb.hole(src->ctx, off, len) > 0;
}

static const struct xsr_source_ops cb_ops = {
	.pread = cb_pread,
	.read = cb_read,
	.size = cb_size,
	.view = cb_view,
	.map = cb_map,
	.unmap = mem_unmap,
	.hole = cb_hole,
};

bool xsr_source_is_callbacks(const struct xsr_source *src)
{
	return src->ops == &cb_ops;
}

bool xsr_source_is_fd(const struct xsr_source *src)
{
	return src->ops == &fd_ops;
}

/* ---- public handles (xsrelf/io.h) ---- */

int xsr_source_open_fd(struct xsr_source **out, int fd)
{
	if (!out)
		return XSR_E_INVAL;
	*out = NULL;
	if (fd < 0)
		return XSR_E_INVAL;
	if (!(*out = malloc(sizeof(**out))))
		return XSR_E_NOMEM;
	xsr_source_fd(*out, fd);
	return 0;
}

int xsr_source_open_mem(struct xsr_source **out, const void *buf, size_t len)
{
	if (!out)
		return XSR_E_INVAL;
	*out = NULL;
	if (!buf && len)
		return XSR_E_INVAL;
	if (!(*out = malloc(sizeof(**out))))
		return XSR_E_NOMEM;
	xsr_source_mem(*out, buf, len);
	return 0;
}

int xsr_source_open_callbacks(struct xsr_source **out, const struct xsr_source_callbacks *cb, void *ctx)
{
	if (!out)
		return XSR_E_INVAL;
	*out = NULL;
	if (!cb || (!cb->pread && !cb->read) || (cb->pread && !cb->size))
		return XSR_E_INVAL;
	if (!(*out = malloc(sizeof(**out))))
		return XSR_E_NOMEM;
	**out = (struct xsr_source){.ops = &cb_ops, .fd = -1, .cb = *cb, .ctx = ctx, .failed_at = XSR_NO_OFFSET};
	return 0;
}

void xsr_source_close(struct xsr_source *src)
{
	if (!src)
		return;
	if (src->ops == &cb_ops && src->cb.close)
		src->cb.close(src->ctx);
	free(src);
}
