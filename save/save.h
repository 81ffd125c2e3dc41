/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Generic save / core: backend -> the one writer. */
#ifndef XSR_SAVE_H
#define XSR_SAVE_H

#include <stdint.h>

#include "../backends/backend.h"
/* The clock used to live here: files that still reach it through save.h keep working. */
#include "../util/clock.h"

struct xsr_save_opts {
	uint8_t kind;      /* XSR_KIND_SAVE or XSR_KIND_CORE */
	uint8_t layout;    /* 0: from the fd */
	uint8_t compress;  /* stream page batches */
	int leave_paused;  /* do not resume at the end (save --stop) */
	/* Called as pages go out (done, total pages); NULL: none.  The engine prints nothing. */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *progress_ctx;
	int live;          /* pre-copy rounds before the final pause */
};

struct xsr_save_stats {
	uint64_t bytes, pages, zero_pages;
	uint64_t pause_ns;   /* time the domain was paused */
	uint64_t elapsed_ns;
	uint32_t rounds;
};

/*
 * Save the domain behind @be to @fd.  Pauses, captures vCPUs and memory,
 * and resumes (unless leave_paused) on every path, failure included.
 */
int save_guest(struct xsr_backend *be, int fd, const struct xsr_save_opts *o,
	       struct xsr_save_stats *st, char *err, size_t errlen);

/*
 * The domain's xenstore subtree (ops->xenstore_read) as a XENSTORE section
 * (the subtree body, xsrelf/xenstore.h) of @w; 0 and nothing added for a backend
 * without xenstore.  @ctx is the backend: this is an
 * xsr_domain_save_opts.end, which a whole-domain save calls with the domain
 * suspended; save_guest calls it with the domain paused.
 */
int save_xenstore_end(void *ctx, struct xsr_writer *w, char *err, size_t errlen);

#endif
