/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Generic restore: an image (seekable or stream) -> a backend. */
#ifndef XSR_RESTORE_H
#define XSR_RESTORE_H

#include <stdint.h>
#include <stdio.h>

#include "../backends/backend.h"

struct xsr_restore_opts {
	/* Called as pages come in (done, total pages); NULL: none.  The engine prints nothing. */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *progress_ctx;
	int use_mmap;     /* seekable: let the backend take MAP_PRIVATE runs (see map_image) */
	int no_start;     /* load everything but do not call ops->start */
};

struct xsr_restore_stats {
	uint64_t bytes, pages, zero_pages;
	uint64_t elapsed_ns;
};

/*
 * Restore from @fd (a seekable image or a stream; detected).  The memory
 * ops->create allocates must read as zero: pages the image marks zero are
 * not written.  Calls, in order:
 * ops->create (with the image's shape), ops->load_extra for each other section,
 * page data through ops->map(writable), ops->set_vcpu for every vCPU, then
 * ops->start unless no_start.  Every page is checksum-verified before use.
 */
int restore_guest(struct xsr_backend *be, int fd, const struct xsr_restore_opts *o,
		  struct xsr_restore_stats *st, char *err, size_t errlen);

/*
 * Wait for userfaultfd events on @uffd (a page-fault server's loop) until
 * @wakefd becomes readable.  Returns the number of messages read into @msgs
 * (> 0), 0 to try again, or -1 to stop: woken, or an error (errno in *err,
 * else *err = 0).
 */
struct uffd_msg;
int lazy_uffd_wait(int uffd, int wakefd, struct uffd_msg *msgs, size_t max, int *err);

/* ---- lazy restore (restore/lazy.c) ---- */

struct xsr_lazy;
struct xsr_lazy_stats {
	uint64_t faults;     /* pages served on demand */
	uint64_t prefetched; /* pages copied in by the background thread */
	uint64_t errors;     /* pages that could not be served (see the log) */
	int done;	     /* every page is in; userfaultfd released */
};

/*
 * Restore the seekable image on @fd into @be (an opened, empty backend
 * with ops->map_guest; XSR_E_UNSUPPORTED without) and start the guest at
 * once; a userfaultfd thread serves each first touch from the image and
 * another prefetches the rest.  On success the lazy
 * handle owns @fd (closed by lazy_stop()); on failure the caller keeps
 * it.  @st gets what was done before start (no page data).  The threads
 * log what goes wrong to @log (stderr if NULL).
 */
int lazy_restore(struct xsr_backend *be, int fd, FILE *log, struct xsr_lazy **out,
		 struct xsr_restore_stats *st, char *err, size_t errlen);
void lazy_stats(struct xsr_lazy *lz, struct xsr_lazy_stats *st);
/* Stop the threads and release everything.  Stop the vCPUs first. NULL ok. */
void lazy_stop(struct xsr_lazy *lz);

/*
 * After a whole-domain restore left the domain paused, before it is
 * unpaused: the image @img_fd's xenstore subtree (the XENSTORE section of
 * body that begins with XSR_XS_MAGIC) written under it through ops->xenstore_write.
 * *@found 0 and 0 back for an image without one; else *@st says what was
 * written; a backend without xenstore_write (QEMU) is not asked and the
 * image not opened.  < 0 with @err on failure.
 */
int restore_xenstore(struct xsr_backend *be, int img_fd, struct xsr_xenstore_stats *st, int *found, char *err,
		     size_t errlen);

#endif
