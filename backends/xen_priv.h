/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Inside the Xen backend only (its five files, built with the Xen
 * libraries).  The calls go one way (backends/xen.h):
 *   xen.c -> xen_save.c -> xen_libxl.c,  xen.c -> xen_restore.c -> xen_libxl.c,
 *   xen.c -> xen_store.c.
 */
#ifndef XSR_XEN_PRIV_H
#define XSR_XEN_PRIV_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <libxl.h>

#include "../util/clock.h" /* util_now_ns(): the stats and XSR_XEN_TIMING */
#include "xen.h"

/* ---- xen_libxl.c: the libxl glue ---- */

/* The process's libxl context (made at the first call, freed at exit); NULL with @err. */
libxl_ctx *xen_lx_ctx(char *err, size_t errlen);
/*
 * Write the xl save file's header for domain @domid to @fd: magic, flags
 * (libxl v2 stream, JSON), and the domain's libxl configuration as JSON,
 * which `xsr restore` and `xl restore` rebuild the domain from.  0 or -1.
 */
int xen_lx_xl_header(libxl_ctx *ctx, uint32_t domid, int fd, char *err, size_t errlen);
/*
 * libxl suspends @domid (@live: libxl's pre-copy with log-dirty first) into a
 * new memfd, the xl save file's bytes, returned (caller closes) or -1 with
 * the domain resumed.  @ready, if not NULL, is called with the memfd and the
 * domain's vCPU count once the header is in and before libxl starts writing;
 * its < 0 aborts.  Sets st->suspend_ns (the rest of @st is zeroed).
 */
int xen_lx_suspend(uint32_t domid, int live, int (*ready)(void *ctx, int mfd, uint32_t vcpus), void *rctx,
		   struct xsr_domain_stats *st, char *err, size_t errlen);
/* @destroy 1: libxl_domain_destroy, 0: libxl_domain_resume (of a suspended domain). */
int xen_lx_finish(uint32_t domid, int destroy, char *err, size_t errlen);
/* Rename @domid: drop @strip from the end of its name (if there), append @add. */
int xen_lx_rename(uint32_t domid, const char *strip, const char *add, char *err, size_t errlen);
int xen_lx_unpause(uint32_t domid, char *err, size_t errlen);

/* ---- xen_save.c: the save half ---- */

/* The save_domain op (backend.h) of domain @domid. */
int xen_save_domain(uint32_t domid, int out_fd, const struct xsr_domain_save_opts *o, struct xsr_domain_stats *st,
		    char *err, size_t errlen);
/* The finish op after a save: xen_lx_finish, then wait for the native save's unmapping. */
int xen_save_finish(uint32_t domid, int destroy, char *err, size_t errlen);

/* ---- xen_restore.c: the restore half ---- */

/* The restore_domain op (backend.h): the new domain in st->domid. */
int xen_restore_domain(int img_fd, const struct xsr_domain_restore_opts *o, struct xsr_domain_stats *st, char *err,
		       size_t errlen);

/* ---- xen_store.c: the domain's own xenstore subtree (the xenstore_read and xenstore_write ops) ---- */

/* Domain @domid's subtree as a XENSTORE body (xsrelf/xenstore.h), *@body malloc'd.  0 or -1. */
int xen_xs_read(uint32_t domid, void **body, uint64_t *len, char *err, size_t errlen);
/* A body's nodes under domain @domid, in one transaction.  0 or -1. */
int xen_xs_write(uint32_t domid, const void *body, uint64_t len, struct xsr_xenstore_stats *st, char *err,
		 size_t errlen);

#endif
