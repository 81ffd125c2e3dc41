/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * All file and socket I/O of the library goes through here, so that short
 * transfers and EINTR are handled once, and so that tests can inject faults:
 *
 *   XSR_FAULT=OP:N:KIND   OP = read | write | sync | rename | any (any: a
 *                         read or a write), N = the Nth such call (1-based,
 *                         counted per process), KIND = ENOSPC | EIO | SHORT
 *                         | EINTR.  SHORT and EINTR must be survived (they
 *                         exercise the retry loops here; SHORT does nothing
 *                         to a sync or rename); ENOSPC and EIO must fail
 *                         cleanly, in the caller.
 *   XSR_IO_COUNT=FILE     at exit, write "reads writes syncs renames" call
 *                         counts to FILE.
 *
 * Tools built on the library reach the same points through xsrelf/io.h.
 * Only test builds (XSR_TESTHOOKS=1, bin/xsr and the test programs) have
 * them: the shipped libxsrelf.so is built with XSR_TESTHOOKS=0 and reads
 * neither variable.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xsrelf/io.h>

#include "internal.h"

enum { F_NONE, F_ENOSPC, F_EIO, F_SHORT, F_EINTR };
enum { OP_READ, OP_WRITE, OP_SYNC, OP_RENAME, OP__N, OP_ANY = OP__N };
#if XSR_TESTHOOKS
static struct {
	pthread_once_t once;
	int op; /* OP_* */
	unsigned long n;
	int kind;
	unsigned long cnt[OP__N];
	const char *count_file;
} fault = {PTHREAD_ONCE_INIT};
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;

static void fault_atexit(void)
{
	FILE *f = fopen(fault.count_file, "w");
	if (f) {
		fprintf(f, "%lu %lu %lu %lu\n", fault.cnt[OP_READ], fault.cnt[OP_WRITE], fault.cnt[OP_SYNC],
			fault.cnt[OP_RENAME]);
		fclose(f);
	}
}

static void fault_init(void)
{
	const char *s = getenv("XSR_FAULT");
	char op[8], kind[8];
	if (s && sscanf(s, "%7[a-z]:%lu:%7[A-Z]", op, &fault.n, kind) == 3) {
		fault.op = !strcmp(op, "read")	   ? OP_READ
			   : !strcmp(op, "write")  ? OP_WRITE
			   : !strcmp(op, "sync")   ? OP_SYNC
			   : !strcmp(op, "rename") ? OP_RENAME
						   : OP_ANY;
		fault.kind = !strcmp(kind, "ENOSPC") ? F_ENOSPC
			     : !strcmp(kind, "EIO")  ? F_EIO
			     : !strcmp(kind, "SHORT") ? F_SHORT
			     : !strcmp(kind, "EINTR") ? F_EINTR
						     : F_NONE;
	}
	fault.count_file = getenv("XSR_IO_COUNT");
	if (fault.count_file)
		atexit(fault_atexit);
}

/* Returns the fault to inject into this call (of kind OP_*), if any. */
static int fault_hit(int op)
{
	int k = F_NONE;
	pthread_once(&fault.once, fault_init);
	if (!fault.kind && !fault.count_file)
		return F_NONE;
	pthread_mutex_lock(&fault_lock);
	unsigned long nth = ++fault.cnt[op];
	if (fault.kind) {
		int any = fault.op == OP_ANY && op <= OP_WRITE;
		unsigned long cnt = any ? fault.cnt[OP_READ] + fault.cnt[OP_WRITE] : nth;
		if ((any || fault.op == op) && cnt == fault.n)
			k = fault.kind;
	}
	pthread_mutex_unlock(&fault_lock);
	return k;
}
#else
/* The shipped library (XSR_TESTHOOKS=0) reads no environment: no fault is ever injected. */
static inline int fault_hit(int op)
{
	return F_NONE;
}
#endif

static int inject(int k, size_t *len)
{
	switch (k) {
	case F_ENOSPC: errno = ENOSPC; return -1;
	case F_EIO: errno = EIO; return -1;
	case F_EINTR: errno = EINTR; return -1;
	case F_SHORT:
		if (*len > 1)
			*len /= 2;
		return 0;
	}
	return 0;
}

ssize_t xsr_io_read(int fd, void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		size_t want = len - done;
		ssize_t r;
		if (inject(fault_hit(OP_READ), &want) < 0)
			r = -1;
		else
			r = read(fd, (char *)buf + done, want);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

int xsr_io_pread(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		size_t want = len - done;
		ssize_t r;
		if (inject(fault_hit(OP_READ), &want) < 0)
			r = -1;
		else
			r = pread(fd, (char *)buf + done, want, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO; /* callers checked bounds: EOF here is a short file */
		done += (size_t)r;
	}
	return 0;
}

int xsr_io_write(int fd, const void *buf, size_t len)
{
	struct iovec iov = {(void *)buf, len};
	return xsr_io_writev(fd, &iov, 1);
}

/* Advance @iov past @n octets; returns the new count. */
static int iov_advance(struct iovec **iov, int cnt, size_t n)
{
	while (cnt && n >= (*iov)->iov_len) {
		n -= (*iov)->iov_len;
		(*iov)++;
		cnt--;
	}
	if (cnt && n) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + n;
		(*iov)->iov_len -= n;
	}
	return cnt;
}

/*
 * One vectored write of at most IOV_MAX entries: the octets taken, or
 * -errno.  @arg is the fd or the sink.
 */
typedef ssize_t (*raw_writev)(void *arg, const struct iovec *iov, int n, uint64_t off, bool positional);

/*
 * Write all of @iov through @raw, retrying EINTR and short writes: the one
 * write loop, and the write fault-injection point for fds and sinks alike.
 */
static int vec_loop(raw_writev raw, void *arg, struct iovec *iov, int n, uint64_t off, bool positional)
{
	/* Drop empty leading entries so a short write of 0 octets can't loop. */
	while (n && iov->iov_len == 0) {
		iov++;
		n--;
	}
	while (n > 0) {
		int cnt = n > IOV_MAX ? IOV_MAX : n;
		size_t total = 0;
		for (int i = 0; i < cnt; i++)
			total += iov[i].iov_len;
		size_t want = total;
		ssize_t r;
		int k = fault_hit(OP_WRITE);
		if (inject(k, &want) < 0) {
			r = -errno;
		} else if (k == F_SHORT) {
			/* Write only a prefix to exercise the continuation. */
			struct iovec pre = {iov[0].iov_base, iov[0].iov_len > want ? want : iov[0].iov_len};
			r = raw(arg, &pre, 1, off, positional);
		} else {
			r = raw(arg, iov, cnt, off, positional);
		}
		if (r < 0) {
			if (r == -EINTR)
				continue;
			return (int)r;
		}
		if (r == 0 && total)
			return -EIO;
		if ((size_t)r > total)
			return -EPROTO; /* a callback sink claimed more than it was given */
		off += (uint64_t)r;
		n = iov_advance(&iov, n, (size_t)r);
		while (n && iov->iov_len == 0) {
			iov++;
			n--;
		}
	}
	return 0;
}

static ssize_t fd_raw(void *arg, const struct iovec *iov, int n, uint64_t off, bool positional)
{
	int fd = *(const int *)arg;
	ssize_t r = positional ? pwritev(fd, iov, n, (off_t)off) : writev(fd, iov, n);
	return r < 0 ? -errno : r;
}

static int io_vec(int fd, struct iovec *iov, int n, uint64_t off, int positional)
{
	return vec_loop(fd_raw, &fd, iov, n, off, positional);
}

static ssize_t sink_raw(void *arg, const struct iovec *iov, int n, uint64_t off, bool positional)
{
	struct xsr_sink *snk = arg;
	return snk->ops->writev(snk, iov, n, off, positional);
}

int xsr_sink_writev(struct xsr_sink *snk, struct iovec *iov, int n, uint64_t off, bool positional)
{
	return vec_loop(sink_raw, snk, iov, n, off, positional);
}

int xsr_io_writev(int fd, struct iovec *iov, int n)
{
	return io_vec(fd, iov, n, 0, 0);
}

int xsr_io_pwritev(int fd, struct iovec *iov, int n, uint64_t off)
{
	return io_vec(fd, iov, n, off, 1);
}

/* ---- the same for tools built on the library (xsrelf/io.h) ---- */

int xsr_read_at(int fd, void *buf, size_t len, uint64_t off)
{
	return xsr_io_pread(fd, buf, len, off);
}

int xsr_write_all(int fd, struct iovec *iov, int n)
{
	return io_vec(fd, iov, n, 0, 0);
}

int xsr_fsync(int fd)
{
	for (;;) {
		size_t none = 0;
		int k = fault_hit(OP_SYNC);
		if (inject(k, &none) < 0 || (k == F_NONE || k == F_SHORT ? fsync(fd) : 0) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		return 0;
	}
}

int xsr_rename(const char *from, const char *to)
{
	for (;;) {
		size_t none = 0;
		int k = fault_hit(OP_RENAME);
		if (inject(k, &none) < 0 || (k == F_NONE || k == F_SHORT ? rename(from, to) : 0) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		return 0;
	}
}
