/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The PASSTHRU items of an imported Xen image (struct xsr_passthru_hdr,
 * xsrelf/format.h), which both exports replay, and the one write loop they
 * share.  Apart so that xen_export.c and xen_xccore.c need not call each
 * other.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xsrelf/io.h>
#include <xsrelf/reader.h>

#include "internal.h"
#include "xen_internal.h"

int64_t xen_put(int fd, struct iovec *iov, int n)
{
	int64_t total = 0;
	for (int i = 0; i < n; i++)
		total += (int64_t)iov[i].iov_len;
	/* the library's vectored write: EINTR and short writes retried, an XSR_FAULT point */
	int rc = xsr_write_all(fd, iov, n);
	return rc < 0 ? rc : total;
}

int xen_pt_collect(struct xsr_image *img, struct xen_pt_item **items, uint32_t *n, uint32_t *xc_version, char *err,
		   size_t errlen)
{
	uint32_t ns = xsr_image_nsections(img);
	struct xen_pt_item *pts = calloc(ns + 1, sizeof(*pts));
	*items = NULL;
	*n = 0;
	*xc_version = 0;
	if (!pts) {
		snprintf(err, errlen, "out of memory");
		return XSR_E_NOMEM;
	}
	uint32_t npts = 0;
	int rc = XSR_E_FORMAT;
	for (uint32_t i = 0; i < ns; i++) {
		struct xsr_section_info si;
		if (xsr_image_section(img, i, &si) < 0 || si.code != XSR_SEC_PASSTHRU)
			continue;
		if (si.size < sizeof(struct xsr_passthru_hdr)) {
			snprintf(err, errlen, "PASSTHRU section %u at offset 0x%llx: %llu octets, shorter than the Xen item header",
				 i, (unsigned long long)si.offset, (unsigned long long)si.size);
			goto fail;
		}
		void *b;
		uint64_t len;
		if ((rc = xsr_image_read_section(img, i, &b, &len)) < 0) {
			snprintf(err, errlen, "section %u: %s", i, xsr_image_error(img));
			goto fail;
		}
		struct xsr_passthru_hdr h;
		memcpy(&h, b, sizeof(h));
		rc = XSR_E_FORMAT;
		if (h.origin == XSR_PT_ORIGIN_LIBXC_HEADER && len >= 16 + 16)
			*xc_version = (uint32_t)((uint8_t *)b)[16 + 12] << 24 | ((uint8_t *)b)[16 + 13] << 16 |
				      ((uint8_t *)b)[16 + 14] << 8 | ((uint8_t *)b)[16 + 15];
		free(b);
		if (h.origin < XSR_PT_ORIGIN_XL_HEADER || h.origin > XSR_PT_ORIGIN_XC_CORE || h.flags & ~XSR_PT_KNOWN_FLAGS ||
		    h.length != len - sizeof(h) || h.seq != npts) {
			snprintf(err, errlen,
				 "PASSTHRU section %u at offset 0x%llx: not a Xen item of this image (origin %u, flags 0x%x, length %u, seq %u, expected seq %u)",
				 i, (unsigned long long)si.offset, h.origin, h.flags, h.length, h.seq, npts);
			goto fail;
		}
		pts[npts++] = (struct xen_pt_item){h, i};
	}
	*items = pts;
	*n = npts;
	return 0;
fail:
	free(pts);
	return rc;
}

