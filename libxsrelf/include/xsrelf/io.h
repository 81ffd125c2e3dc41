/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libxsrelf: where images come from and go to.
 *
 * Sources (what the readers read) and sinks (what the writer writes to) are
 * opaque handles over an fd, a memory buffer, or the caller's callbacks, so
 * that a tool or a storage back end (HTTP range reads, S3; see
 * docs/architecture.md, "Storage back ends") supplies and takes octets
 * without the library knowing where they live.  The readers and the writer
 * never ask which kind they have.  Every write into a sink, whatever its
 * kind, goes through the library's fault-injection point (test builds).
 *
 * Below them, the file I/O the library itself uses, for tools built on it.
 * Each call retries EINTR and short transfers, and each is a fault-injection
 * point for tests (XSR_FAULT=write|sync|rename:N:KIND, XSR_IO_COUNT; see
 * libxsrelf/src/io.c; test builds only), so a tool's own output path is
 * faulted exactly like the library's.  All return 0 or -errno.
 */
#ifndef XSRELF_IO_H
#define XSRELF_IO_H

#include <sys/types.h>
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

/* ---- sources (XSRELF_1.5) ---- */
struct xsr_source;

/*
 * A source made of the caller's functions; @ctx is passed back to each.
 * Offsets and lengths come from the image: the library checks them against
 * size() before it asks, so pread() is only asked for ranges inside it.
 */
struct xsr_source_callbacks {
	/*
	 * Up to @len octets at @off into @buf: the number read (fewer than @len
	 * is a short read; the library asks again for the rest), 0 at the end
	 * of the source, or -errno.  NULL for a source that is read only in
	 * order (then @read is required, and only the stream reader takes it).
	 */
	ssize_t (*pread)(void *ctx, void *buf, size_t len, uint64_t off);
	/*
	 * Optional: sequential reading (a socket, an HTTP body): up to @len
	 * octets, 0 at the end, or -errno.  NULL: the library preads on from
	 * where the previous read ended.
	 */
	ssize_t (*read)(void *ctx, void *buf, size_t len);
	/* The source's length in octets: 0, -ESPIPE when it has none (a stream), or -errno.  Required with pread. */
	int (*size)(void *ctx, uint64_t *size);
	/*
	 * Optional: 1 when [off, off + len) reads as zeros without being stored
	 * (a sparse file's hole; an object store's absent range), else 0.  The
	 * readers then skip reading it.
	 */
	int (*hole)(void *ctx, uint64_t off, uint64_t len);
	/* Optional: called once by xsr_source_close(). */
	void (*close)(void *ctx);
};

/* @fd, not closed by the library, read with pread (images) or read (streams). */
XSR_API int xsr_source_open_fd(struct xsr_source **out, int fd);
/* @len octets at @buf, which the caller keeps valid and unchanged until close. */
XSR_API int xsr_source_open_mem(struct xsr_source **out, const void *buf, size_t len);
/* The caller's functions; @cb is copied. */
XSR_API int xsr_source_open_callbacks(struct xsr_source **out, const struct xsr_source_callbacks *cb, void *ctx);
/* Release @src (NULL is fine) after every reader opened from it is closed. */
XSR_API void xsr_source_close(struct xsr_source *src);

/* ---- sinks (XSRELF_1.5) ---- */
struct xsr_sink;

/*
 * A sink made of the caller's functions.  With @pwritev, @pread and
 * @truncate the sink is seekable (the writer can use the seekable layout,
 * which writes at fixed offsets and reads its page index back); with
 * @writev alone it is streamed.  Each write call may be short: it returns
 * the octets taken (> 0) or -errno, and the library passes the rest again.
 */
struct xsr_sink_callbacks {
	/* Append @iov (@n entries) to a streamed sink.  NULL: pwritev at the end. */
	ssize_t (*writev)(void *ctx, const struct iovec *iov, int n);
	/* Seekable sinks: write @iov at @off (beyond the end grows the sink, the gap reading as zeros). */
	ssize_t (*pwritev)(void *ctx, const struct iovec *iov, int n, uint64_t off);
	/* Seekable sinks: read back @len octets at @off: the number read, 0 at the end, or -errno. */
	ssize_t (*pread)(void *ctx, void *buf, size_t len, uint64_t off);
	/* Seekable sinks: set the length to @size (growing reads as zeros): 0 or -errno. */
	int (*truncate)(void *ctx, uint64_t size);
	/* Optional: called once by xsr_sink_close(). */
	void (*close)(void *ctx);
};

/*
 * @fd, not closed by the library.  Seekable when it is a regular file open
 * for reading and writing without O_APPEND; the writer picks that layout by
 * itself only when the fd is also at offset 0 (xsrelf/writer.h).
 */
XSR_API int xsr_sink_open_fd(struct xsr_sink **out, int fd);
/*
 * A growing buffer of at most @max octets (0: no limit but memory), owned
 * by the sink; seekable.  A write past @max fails with -EFBIG.
 */
XSR_API int xsr_sink_open_mem(struct xsr_sink **out, uint64_t max);
/* The octets a memory sink holds, borrowed until the next write or close; NULL for other sinks. */
XSR_API const void *xsr_sink_mem_data(const struct xsr_sink *snk, uint64_t *len);
/* The caller's functions; @cb is copied.  XSR_E_INVAL when it has neither writev nor pwritev. */
XSR_API int xsr_sink_open_callbacks(struct xsr_sink **out, const struct xsr_sink_callbacks *cb, void *ctx);
/* 1 when @snk can take the seekable layout, else 0. */
XSR_API int xsr_sink_seekable(const struct xsr_sink *snk);
/* Release @snk (NULL is fine) after the writer on it is closed or aborted. */
XSR_API void xsr_sink_close(struct xsr_sink *snk);

#endif
