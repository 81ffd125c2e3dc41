/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private to the Xen module (xen_*.c): what import, export and xc_core
 * export share.  The public API is xsrelf/xen.h; the mapping is
 * docs/xen-compat.md.
 */
#ifndef XSRELF_XEN_INTERNAL_H
#define XSRELF_XEN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <xsrelf/format.h>
#include <xsrelf/xen.h>

/* One imported Xen item: its PASSTHRU header and the image section holding it. */
struct xen_pt_item {
	struct xsr_passthru_hdr h;
	uint32_t sec; /* ELF section index in the image */
};

/*
 * The PASSTHRU items of @img in order, each checked (known origin and
 * flags, length, seq 0, 1, 2, ...).  *items is malloc'd (caller frees; NULL
 * on failure), *n may be 0 (an image not made by an import), *xc_version
 * is the libxc stream version or 0.  Returns 0, or a negative enum xsr_err
 * with a message naming the section in @err.  (xen_passthru.c)
 */
struct xsr_image;
int xen_pt_collect(struct xsr_image *img, struct xen_pt_item **items, uint32_t *n, uint32_t *xc_version, char *err,
		   size_t errlen);

/*
 * @img (seekable) of a Xen guest written to @out_fd as `xl dump-core`
 * writes it, in order.  *bytes: octets written.  0, or a negative enum
 * xsr_err with the reason in @err.  (xen_xccore.c)
 */
int xen_xccore_export(struct xsr_image *img, int out_fd, const struct xsr_foreign_cb *cb, uint64_t *bytes,
		      char *err, size_t errlen);

/*
 * Write all of @iov (@n entries, consumed) to @fd through the library's
 * I/O (an XSR_FAULT point): the octets written, or -errno.
 */
int64_t xen_put(int fd, struct iovec *iov, int n);

#endif
