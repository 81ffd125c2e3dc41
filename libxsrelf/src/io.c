/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * All file and socket I/O of the library goes through here, so that short
 * transfers and EINTR are handled once, and so that tests can inject faults:
 *
 *   XSR_FAULT=OP:N:KIND   OP = read | write | any, N = the Nth such call
 *                         (1-based, counted per process), KIND = ENOSPC |
 *                         EIO | SHORT | EINTR.  SHORT and EINTR must be
 *                         survived; ENOSPC and EIO must fail cleanly.
 *   XSR_IO_COUNT=FILE     at exit, write "reads writes" call counts to FILE.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

enum { F_NONE, F_ENOSPC, F_EIO, F_SHORT, F_EINTR };
static struct {
	pthread_once_t once;
	int op; /* 0 read, 1 write, 2 any */
	unsigned long n;
	int kind;
	unsigned long reads, writes;
	const char *count_file;
} fault = {PTHREAD_ONCE_INIT};
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;

static void fault_atexit(void)
{
	FILE *f = fopen(fault.count_file, "w");
	if (f) {
		fprintf(f, "%lu %lu\n", fault.reads, fault.writes);
		fclose(f);
	}
}

static void fault_init(void)
{
	const char *s = getenv("XSR_FAULT");
	char op[8], kind[8];
	if (s && sscanf(s, "%7[a-z]:%lu:%7[A-Z]", op, &fault.n, kind) == 3) {
		fault.op = !strcmp(op, "read") ? 0 : !strcmp(op, "write") ? 1 : 2;
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

/* Returns the fault to inject into this call, if any. */
static int fault_hit(int is_write)
{
	int k = F_NONE;
	pthread_once(&fault.once, fault_init);
	if (!fault.kind && !fault.count_file)
		return F_NONE;
	pthread_mutex_lock(&fault_lock);
	unsigned long nth = is_write ? ++fault.writes : ++fault.reads;
	if (fault.kind) {
		unsigned long cnt = fault.op == 2 ? fault.reads + fault.writes : nth;
		if ((fault.op == 2 || fault.op == is_write) && cnt == fault.n)
			k = fault.kind;
	}
	pthread_mutex_unlock(&fault_lock);
	return k;
}

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
		if (inject(fault_hit(0), &want) < 0)
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
		if (inject(fault_hit(0), &want) < 0)
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

static int io_vec(int fd, struct iovec *iov, int n, uint64_t off, int positional)
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
		int k = fault_hit(1);
		if (inject(k, &want) < 0) {
			r = -1;
		} else if (k == F_SHORT) {
			/* Write only a prefix to exercise the continuation. */
			r = positional ? pwrite(fd, iov[0].iov_base, iov[0].iov_len > want ? want : iov[0].iov_len, (off_t)off)
				       : write(fd, iov[0].iov_base, iov[0].iov_len > want ? want : iov[0].iov_len);
		} else {
			r = positional ? pwritev(fd, iov, cnt, (off_t)off) : writev(fd, iov, cnt);
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0 && total)
			return -EIO;
		off += (uint64_t)r;
		n = iov_advance(&iov, n, (size_t)r);
		while (n && iov->iov_len == 0) {
			iov++;
			n--;
		}
	}
	return 0;
}

int xsr_io_writev(int fd, struct iovec *iov, int n)
{
	return io_vec(fd, iov, n, 0, 0);
}

int xsr_io_pwritev(int fd, struct iovec *iov, int n, uint64_t off)
{
	return io_vec(fd, iov, n, off, 1);
}
