/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Xen backend: domains of the Xen hypervisor this program runs in
 * (dom0), through libxenctrl, libxenforeignmemory, libxenguest and libxl.
 * Everything the generic code does with a domain goes through the ops
 * struct of backend.h; this header only opens one.
 *
 * Split as Xen's own xg_sr_* is, in four files whose calls form no circle
 * (xen.c -> xen_save.c -> xen_libxl.c, xen.c -> xen_restore.c -> xen_libxl.c):
 *
 *  - xen.c, domain access and the ops: xen_open() maps guest frames in
 *    batches with xenforeignmemory_map and reads vCPU contexts with
 *    xc_vcpu_getcontext (the core groups of the ops: the generic save code,
 *    save/save.c, writes a crash core from them).  Page tables are left as
 *    the guest holds them (machine frames in a PV guest), as in xl
 *    dump-core; the P2M section maps them back.  It has no page-by-page
 *    restore (create, set_vcpu, ... are NULL): a PV guest cannot be rebuilt
 *    from raw frames without localising its page tables, which libxenguest
 *    does; and no dirty log (dirty_* NULL).
 *
 *  - xen_save.c, the save half (ops save_domain, live_probe, finish,
 *    rename): a 64-bit PV domain is saved natively: libxl_domain_suspend_only,
 *    then the libxc stream written without its page data and the importer
 *    taking each record's pages straight from the guest's frames, page
 *    tables normalised to pfns as libxenguest does.  Other domains (HVM,
 *    32-bit PV, a live migration; or XSR_XEN_SAVE_VIA=libxl) go through
 *    libxl's engine (libxl_domain_suspend, i.e. libxenguest's
 *    xc_domain_save) into an anonymous memory file that the importer follows.
 *
 *  - xen_restore.c, the restore half (xen_open_restore(): ops
 *    restore_domain, rename, resume, finish): libxl_domain_create_restore
 *    (libxenguest's xc_domain_restore localises the page tables again) reads
 *    the image exported into a pipe.  The user only ever sees xsrelf images.
 *
 *  - xen_libxl.c, the libxl glue both halves use: the libxl context, the xl
 *    header, libxl's suspend, resume, destroy, rename.
 *
 * Built only where <xenctrl.h> and libxl are present; otherwise the opens
 * fail with "built without Xen support" (xen_supported() = 0).
 */
#ifndef XSR_XEN_H
#define XSR_XEN_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* 1 if this xsr was built with the Xen libraries. */
int xen_supported(void);

/*
 * Parse a Xen target: "DOMID" (decimal digits) or "xen:DOMID".  Returns 1 and
 * sets *domid for a Xen target, 0 for anything else (e.g. vm:SOCK).
 */
int xen_target(const char *target, uint32_t *domid);

/*
 * Domain @domid: the core groups (describe, pause, resume, map, unmap,
 * zero_hint, get_vcpu, save_extra) and the whole-domain save (save_domain,
 * live_probe, finish, rename).  Close with ops->close (a domain it paused is
 * unpaused; one save_domain left suspended stays so until finish()).
 */
int xen_open(struct xsr_backend **out, uint32_t domid, char *err, size_t errlen);

/*
 * The restore half, standing for no domain until restore_domain built one:
 * ops restore_domain, rename, resume (unpause), finish (1 destroys the new
 * domain).  Close with ops->close (the new domain stays as it is).
 */
int xen_open_restore(struct xsr_backend **out, char *err, size_t errlen);

#endif
