/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Sinks (internal.h, xsrelf/io.h): an fd, a growing buffer, and the
 * caller's callbacks.  Each kind gives one raw vectored write; the loop
 * around it (short writes, EINTR, the fault hook) is io.c's, the same for
 * all.  Whether a sink can take the seekable layout is decided here, once.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* ---- fd ---- */

static ssize_t fd_writev(struct xsr_sink *snk, const struct iovec *iov, int n, uint64_t off, bool positional)
{
	ssize_t r = positional ? pwritev(snk->fd, iov, n, (off_t)off) : writev(snk->fd, iov, n);
	return r < 0 ? -errno : r;
}

static int fd_pread(struct xsr_sink *snk, void *buf, size_t len, uint64_t off)
{
	return xsr_io_pread(snk->fd, buf, len, off);
}

static int fd_truncate(struct xsr_sink *snk, uint64_t size)
{
	if (size > INT64_MAX)
		return -EFBIG;
	return ftruncate(snk->fd, (off_t)size) < 0 ? -errno : 0;
}

static int fd_punch(struct xsr_sink *snk, uint64_t off, uint64_t len)
{
	if (fallocate(snk->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
		return 0;
	return -EOPNOTSUPP;
}

static void no_close(struct xsr_sink *snk)
{
}

static const struct xsr_sink_ops fd_ops = {
	.writev = fd_writev,
	.pread = fd_pread,
	.truncate = fd_truncate,
	.punch = fd_punch,
	.close = no_close,
};

/*
 * The seekable layout writes at fixed offsets from 0 and reads the page
 * index back: it needs a regular file open for reading and writing, without
 * O_APPEND, and (when the sink decides) not already written to.  Stdout
 * redirected to a file is write-only: that gets a stream.
 */
int xsr_sink_fd(struct xsr_sink *snk, int fd)
{
	struct stat sb;
	*snk = (struct xsr_sink){.ops = &fd_ops, .fd = fd, .not_seekable = ""};
	if (fstat(fd, &sb) < 0)
		return -errno;
	int fl = fcntl(fd, F_GETFL);
	bool rw = fl >= 0 && (fl & O_ACCMODE) == O_RDWR && !(fl & O_APPEND);
	snk->seekable = S_ISREG(sb.st_mode) && rw;
	snk->fresh = snk->seekable && lseek(fd, 0, SEEK_CUR) == 0;
	if (S_ISREG(sb.st_mode) && !rw)
		snk->not_seekable = fl >= 0 && (fl & O_APPEND) ? " (this one is in append mode)" : " (this one is write-only)";
	return 0;
}

/* ---- memory ---- */

/* Room for [0, end): grown by doubling, up to max. */
static int mem_room(struct xsr_sink *snk, uint64_t end)
{
	if (end <= snk->cap)
		return 0;
	if ((snk->max && end > snk->max) || end > SIZE_MAX)
		return -EFBIG;
	uint64_t cap = snk->cap ? snk->cap : 1 << 16;
	while (cap < end)
		cap = cap > UINT64_MAX / 2 ? end : cap * 2;
	if (snk->max && cap > snk->max)
		cap = snk->max;
	if (cap > SIZE_MAX)
		cap = end;
	uint8_t *b = realloc(snk->buf, (size_t)cap);
	if (!b)
		return -ENOMEM;
	memset(b + snk->cap, 0, (size_t)(cap - snk->cap));
	snk->buf = b;
	snk->cap = cap;
	return 0;
}

static ssize_t mem_writev(struct xsr_sink *snk, const struct iovec *iov, int n, uint64_t off, bool positional)
{
	uint64_t total = 0, at = positional ? off : snk->len;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (at + total < at || total > SSIZE_MAX)
		return -EFBIG;
	int rc = mem_room(snk, at + total);
	if (rc < 0)
		return rc;
	for (int i = 0; i < n; i++) {
		memcpy(snk->buf + at, iov[i].iov_base, iov[i].iov_len);
		at += iov[i].iov_len;
	}
	if (at > snk->len)
		snk->len = at;
	return (ssize_t)total;
}

static int mem_pread(struct xsr_sink *snk, void *buf, size_t len, uint64_t off)
{
	if (!xsr_in_bounds(off, len, snk->len))
		return -EIO;
	memcpy(buf, snk->buf + off, len);
	return 0;
}

static int mem_truncate(struct xsr_sink *snk, uint64_t size)
{
	int rc = mem_room(snk, size);
	if (rc < 0)
		return rc;
	if (size < snk->len)
		memset(snk->buf + size, 0, (size_t)(snk->len - size)); /* a later growth reads zeros */
	snk->len = size;
	return 0;
}

static int mem_punch(struct xsr_sink *snk, uint64_t off, uint64_t len)
{
	if (!xsr_in_bounds(off, len, snk->len))
		return -EOPNOTSUPP;
	memset(snk->buf + off, 0, (size_t)len);
	return 0;
}

static void mem_close(struct xsr_sink *snk)
{
	free(snk->buf);
}

static const struct xsr_sink_ops mem_ops = {
	.writev = mem_writev,
	.pread = mem_pread,
	.truncate = mem_truncate,
	.punch = mem_punch,
	.close = mem_close,
};

/* ---- the caller's callbacks ---- */

static ssize_t cb_writev(struct xsr_sink *snk, const struct iovec *iov, int n, uint64_t off, bool positional)
{
	ssize_t r;
	if (positional)
		r = snk->cb.pwritev(snk->ctx, iov, n, off);
	else if (snk->cb.writev)
		r = snk->cb.writev(snk->ctx, iov, n);
	else if ((r = snk->cb.pwritev(snk->ctx, iov, n, snk->pos)) > 0)
		snk->pos += (uint64_t)r;
	return r;
}

static int cb_pread(struct xsr_sink *snk, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t r = snk->cb.pread(snk->ctx, (char *)buf + done, len - done, off + done);
		if (r == -EINTR)
			continue;
		if (r < 0)
			return (int)r;
		if (r == 0 || (size_t)r > len - done)
			return r == 0 ? -EIO : -EPROTO;
		done += (size_t)r;
	}
	return 0;
}

static int cb_truncate(struct xsr_sink *snk, uint64_t size)
{
	return snk->cb.truncate(snk->ctx, size);
}

static int cb_punch(struct xsr_sink *snk, uint64_t off, uint64_t len)
{
	return -EOPNOTSUPP;
}

static void cb_close(struct xsr_sink *snk)
{
	if (snk->cb.close)
		snk->cb.close(snk->ctx);
}

static const struct xsr_sink_ops cb_ops = {
	.writev = cb_writev,
	.pread = cb_pread,
	.truncate = cb_truncate,
	.punch = cb_punch,
	.close = cb_close,
};

/* ---- public handles (xsrelf/io.h) ---- */

int xsr_sink_open_fd(struct xsr_sink **out, int fd)
{
	if (!out)
		return XSR_E_INVAL;
	*out = NULL;
	if (fd < 0)
		return XSR_E_INVAL;
	struct xsr_sink *snk = malloc(sizeof(*snk));
	if (!snk)
		return XSR_E_NOMEM;
	if (xsr_sink_fd(snk, fd) < 0) {
		free(snk);
		return XSR_E_IO;
	}
	*out = snk;
	return 0;
}

int xsr_sink_open_mem(struct xsr_sink **out, uint64_t max)
{
	if (!out)
		return XSR_E_INVAL;
	*out = malloc(sizeof(**out));
	if (!*out)
		return XSR_E_NOMEM;
	**out = (struct xsr_sink){.ops = &mem_ops, .seekable = true, .fresh = true, .not_seekable = "", .fd = -1, .max = max};
	return 0;
}

const void *xsr_sink_mem_data(const struct xsr_sink *snk, uint64_t *len)
{
	if (!snk || snk->ops != &mem_ops)
		return NULL;
	if (len)
		*len = snk->len;
	return snk->buf ? snk->buf : (const void *)"";
}

int xsr_sink_open_callbacks(struct xsr_sink **out, const struct xsr_sink_callbacks *cb, void *ctx)
{
	if (!out)
		return XSR_E_INVAL;
	*out = NULL;
	if (!cb || (!cb->writev && !cb->pwritev))
		return XSR_E_INVAL;
	struct xsr_sink *snk = malloc(sizeof(*snk));
	if (!snk)
		return XSR_E_NOMEM;
	bool seek = cb->pwritev && cb->pread && cb->truncate;
	*snk = (struct xsr_sink){.ops = &cb_ops, .seekable = seek, .fresh = seek, .fd = -1, .cb = *cb, .ctx = ctx,
				 .not_seekable = seek ? "" : " (this sink has no pwritev, pread and truncate)"};
	*out = snk;
	return 0;
}

int xsr_sink_seekable(const struct xsr_sink *snk)
{
	return snk && snk->seekable;
}

void xsr_sink_close(struct xsr_sink *snk)
{
	if (!snk)
		return;
	snk->ops->close(snk);
	free(snk);
}
