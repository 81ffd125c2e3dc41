/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libxsrelf: the file I/O the library itself uses, for tools built on it.
 *
 * Each call retries EINTR and short transfers, and each is a fault-injection
 * point for tests (XSR_FAULT=write|sync|rename:N:KIND, XSR_IO_COUNT; see
 * libxsrelf/src/io.c), so a tool's own output path is faulted exactly like
 * the library's.  All return 0 or -errno.
 */
#ifndef XSRELF_IO_H
#define XSRELF_IO_H

#include <sys/uio.h>

#include <xsrelf/xsrelf.h>

/* Read exactly @len octets at @off (-EIO at end of file). */
XSR_API int xsr_read_at(int fd, void *buf, size_t len, uint64_t off);
/* Write all of @iov (@n entries, which are consumed). */
XSR_API int xsr_write_all(int fd, struct iovec *iov, int n);
/* fsync(@fd). */
XSR_API int xsr_fsync(int fd);
/* rename(@from, @to). */
XSR_API int xsr_rename(const char *from, const char *to);

#endif
