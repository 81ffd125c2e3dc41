/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Between backends/xen.c and backends/xen_save.c only (both built with the
 * Xen libraries).
 */
#ifndef XSR_XEN_PRIV_H
#define XSR_XEN_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include <libxl.h>

#include "xen.h"

/* The process's libxl context (made at the first call, freed at exit); NULL with @err. */
libxl_ctx *xsr_xen_libxl(char *err, size_t errlen);

/*
 * Write the xl save file's header for domain @domid to @fd: magic, flags
 * (libxl v2 stream, JSON), and the domain's libxl configuration as JSON,
 * which `xsr restore` and `xl restore` rebuild the domain from.  0 or -1.
 */
int xsr_xen_xl_header(libxl_ctx *ctx, uint32_t domid, int fd, char *err, size_t errlen);

/*
 * Native save of a 64-bit PV domain (xen_save.c).  Returns 1, having done
 * nothing, for a domain it does not handle (HVM, 32-bit PV): the caller
 * saves through libxl instead.  Otherwise as xsr_xen_save: 0, or -1 with
 * the domain resumed if it had been suspended.
 */
int xsr_xen_save_native(uint32_t domid, int out_fd, int stream, struct xsr_xen_stats *st, char *err, size_t errlen);
/* Wait for the last native save's mappings to be gone (its mapper thread unmaps them behind the caller). */
void xsr_xen_save_reap(void);

#endif
