/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The core engine: a crash core of a live guest, and the views composed on
 * it.  A core is a save image of kind XSR_KIND_CORE (same layout, readable
 * by gdb and crash): the guest is paused only while it is captured and is
 * never stopped.  The engine prints nothing.
 */
#ifndef XSR_CORE_H
#define XSR_CORE_H

#include <stddef.h>
#include <stdint.h>

#include <xsrelf/paging.h>

#include "../save/save.h"

/*
 * Capture the guest behind @be into a physical crash core on @fd: @o as
 * for save_guest(), whose kind and leave_paused are ignored (a core
 * always resumes the guest).
 */
int core_guest(struct xsr_backend *be, int fd, const struct xsr_save_opts *o,
	       struct xsr_save_stats *st, char *err, size_t errlen);

/* What to compose on a physical core. */
struct xsr_core_view {
	int paging;	    /* PT_LOADs are vCPU @vcpu's guest-virtual mappings */
	uint32_t vcpu;
	const char *vmcoreinfo; /* the guest's VMCOREINFO to carry (section + note); NULL: none */
	uint32_t vmcoreinfo_len;
	struct xsr_paging_stats *paging_stats; /* what the walk kept and left out; NULL ok */
};

/*
 * Read the physical core on @in (seekable) and write the composed one, a
 * seekable image, to @out.  0, or <0 with the reason in @err.
 */
int core_compose(int in, int out, const struct xsr_core_view *v, char *err, size_t errlen);

#endif
