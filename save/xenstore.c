/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The domain's own xenstore subtree into the image (save.h:
 * save_xenstore_end), for the save, core and migration of a backend that
 * has xenstore (ops->xenstore_read).  It runs as the last step before the
 * writer closes, the domain suspended or paused, so that what the guest
 * wrote until it stopped is in.
 */
#include <stdio.h>
#include <stdlib.h>

#include <xsrelf/xenstore.h>

#include "save.h"

int save_xenstore_end(void *ctx, struct xsr_writer *w, char *err, size_t errlen)
{
	struct xsr_backend *be = ctx;
	void *body = NULL;
	uint64_t len = 0;
	if (!be->ops->xenstore_read)
		return 0;
	if (be->ops->xenstore_read(be, &body, &len) < 0) {
		snprintf(err, errlen, "reading the domain's xenstore subtree: %s", be->ops->error(be));
		return XSR_E_BACKEND;
	}
	int rc = xsr_writer_add(w, XSR_SEC_XENSTORE, 0, body, len);
	free(body);
	if (rc < 0)
		snprintf(err, errlen, "XENSTORE section: %s", xsr_writer_error(w));
	return rc;
}
