/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The image's xenstore subtree back under a restored domain (restore.h:
 * restore_xenstore), between a whole-domain restore (left paused) and the
 * unpause, so that the guest finds its keys when it runs again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xsrelf/reader.h>
#include <xsrelf/xenstore.h>

#include "restore.h"

int restore_xenstore(struct xsr_backend *be, int img_fd, struct xsr_xenstore_stats *st, int *found, char *err,
		     size_t errlen)
{
	struct xsr_image *img = NULL;
	void *body = NULL;
	uint64_t len = 0;
	int rc;
	memset(st, 0, sizeof(*st));
	*found = 0;
	/* only Xen writes the subtree, and only a Xen backend can write it back: nothing to open for QEMU */
	if (!be->ops->xenstore_write)
		return 0;
	/* as the restore's own export opens it: the PT_LOAD comparison is for ELF tools, not for this */
	if ((rc = xsr_image_open_flags(&img, img_fd, XSR_OPEN_NO_XEN_LAYOUT, err, errlen)) < 0)
		return rc;
	if ((rc = xsr_image_xenstore(img, &body, &len)) <= 0) {
		if (rc < 0)
			snprintf(err, errlen, "reading its XENSTORE section: %s", xsr_image_error(img));
		xsr_image_close(img);
		return rc; /* 0: an image without the subtree (an xl save's import, an older xsr) */
	}
	*found = 1;
	if ((rc = be->ops->xenstore_write(be, body, len, st)) < 0) {
		snprintf(err, errlen, "writing its xenstore keys: %s", be->ops->error(be));
		rc = XSR_E_BACKEND;
	}
	free(body);
	xsr_image_close(img);
	return rc;
}
