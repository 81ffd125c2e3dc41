/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The core engine (core.h).  The paging walk itself is the library's
 * (xsrelf/paging.h): here it is put together with the capture.
 */
#include <stdio.h>

#include <xsrelf/reader.h>

#include "core.h"

int core_guest(struct xsr_backend *be, int fd, const struct xsr_save_opts *o,
	       struct xsr_save_stats *st, char *err, size_t errlen)
{
	struct xsr_save_opts co = *o;

	co.kind = XSR_KIND_CORE;
	co.leave_paused = 0;
	return save_guest(be, fd, &co, st, err, errlen);
}

int core_compose(int in, int out, const struct xsr_core_view *v, char *err, size_t errlen)
{
	struct xsr_convert_opts co = {.layout = XSR_LAYOUT_SEEKABLE,
				      .paging = (uint8_t)(v->paging != 0),
				      .paging_vcpu = v->vcpu,
				      .vmcoreinfo = v->vmcoreinfo,
				      .vmcoreinfo_len = v->vmcoreinfo_len,
				      .paging_stats = v->paging_stats};
	int r = xsr_convert(in, out, &co, err, errlen);

	if (r < 0) {
		/* Say which step failed: the caller names the file. */
		char m[512];

		snprintf(m, sizeof(m), "%s", err);
		snprintf(err, errlen, "%s: %s", v->paging ? "paging view" : "adding VMCOREINFO", m);
	}
	return r;
}
