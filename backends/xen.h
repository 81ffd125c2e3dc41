/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Xen backend: domains of the Xen hypervisor this program runs in
 * (dom0), through libxenctrl, libxenforeignmemory, libxenguest and libxl.
 *
 * Two halves, chosen for what each job needs (docs/xen-rig.md says why):
 *
 *  - core: xsr_xen_open() gives a `struct xsr_backend` whose ops map guest
 *    frames in batches with xenforeignmemory_map and read vCPU contexts with
 *    xc_vcpu_getcontext; the generic save code (save/save.c) writes the core
 *    from it.  Page tables are left as the guest holds them (machine frames
 *    in a PV guest), as in xl dump-core; the P2M section maps them back.
 *    Its restore-side ops refuse: a PV guest cannot be rebuilt from raw
 *    frames without localising its page tables, which libxenguest does.
 *
 *  - save: a 64-bit PV domain is saved natively (backends/xen_save.c):
 *    libxl_domain_suspend_only, then the libxc stream written without its
 *    page data and the importer taking each record's pages straight from
 *    the guest's frames, page tables normalised to pfns as libxenguest does.
 *    Other domains (HVM, 32-bit PV; or XSR_XEN_SAVE_VIA=libxl) go through
 *    libxl's engine (libxl_domain_suspend, i.e. libxenguest's
 *    xc_domain_save) into an anonymous memory file that the importer follows.
 *  - restore: libxl_domain_create_restore (libxenguest's xc_domain_restore
 *    localises the page tables again) reads the image exported into a pipe.
 *    The user only ever sees xsrelf images.
 *
 * Built only where <xenctrl.h> and libxl are present; otherwise every entry
 * point fails with "built without Xen support" (xsr_xen_supported() = 0).
 */
#ifndef XSR_XEN_H
#define XSR_XEN_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* 1 if this xsr was built with the Xen libraries. */
int xsr_xen_supported(void);

/*
 * Parse a Xen target: "DOMID" (decimal digits) or "xen:DOMID".  Returns 1 and
 * sets *domid for a Xen target, 0 for anything else (e.g. vm:SOCK).
 */
int xsr_xen_target(const char *target, uint32_t *domid);

/* The core backend of domain @domid; close with ops->close. */
int xsr_xen_open(struct xsr_backend **out, uint32_t domid, char *err, size_t errlen);

struct xsr_xen_stats {
	uint64_t bytes;         /* xsrelf octets written (save) or read (restore) */
	uint64_t suspend_ns;    /* save: libxl suspend + stream; restore: libxl_domain_create_restore */
	uint64_t transcode_ns;  /* save: import; restore: export (overlapped) */
	uint64_t elapsed_ns;
	uint32_t domid;         /* restore: the new domain */
	int overlapped;         /* save: the transcode ran while libxl wrote (follow mode) */
	int native;             /* save: xsr's own PV save (backends/xen_save.c), not libxl's engine */
};

/*
 * Save: suspend domain @domid and write it as an xsrelf image on @out_fd (a
 * stream if @stream): natively for a 64-bit PV guest, else through libxl's
 * engine and an anonymous memory file (see above).  The
 * domain is left suspended; the caller commits the image and then calls
 * xsr_xen_save_finish(domid, committed): 1 destroys the domain (xl save),
 * 0 resumes it (a failed save leaves the guest running).
 */
int xsr_xen_save(uint32_t domid, int out_fd, int stream, struct xsr_xen_stats *st, char *err, size_t errlen);
int xsr_xen_save_finish(uint32_t domid, int committed, char *err, size_t errlen);
/*
 * For the save and migrate verbs: SIGINT/SIGTERM/SIGHUP make a native save
 * stop at its next batch (the domain is resumed, the verb fails) instead of
 * killing the process with the domain suspended; SIGPIPE is ignored.
 */
void xsr_xen_save_catch_signals(void);
/* The signal that stopped a save (for its exit status, 128 + N), or 0. */
int xsr_xen_save_stop_signal(void);

/*
 * Restore: the xsrelf image @img_fd (seekable; made by xsr save DOMID or
 * xsr import of an xl save) is exported as an xl save into an anonymous
 * memory file that libxl_domain_create_restore reads; the new domain runs
 * unless @paused.  @name_suffix (NULL: none) is appended to the domain's
 * name: a migration on one host restores "NAME--incoming" while the source
 * "NAME" still exists.  @progress (NULL: none) is told the pages exported
 * (done, total) as they go to libxl; it may be called from another thread.
 */
int xsr_xen_restore(int img_fd, int paused, const char *name_suffix, void (*progress)(void *ctx, uint64_t done, uint64_t total),
		    void *pctx, struct xsr_xen_stats *st, char *err, size_t errlen);

/*
 * The native save of a 64-bit PV domain (backends/xen_save.c) written with
 * the importer's options @io (struct xsr_xen_import_opts, xsrelf/xen.h: layout,
 * kind, compression, begin hook; its page callback and vCPU count are the
 * native save's): the migration sender's stop-and-copy.  1 = not a domain
 * it handles, nothing done (use xsr_xen_suspend); 0 = written, the domain is
 * left suspended (xsr_xen_save_finish); -1 = failed, the domain resumed.
 */
struct xsr_xen_import_opts;
int xsr_xen_save_native_opts(uint32_t domid, int out_fd, const struct xsr_xen_import_opts *io, struct xsr_xen_stats *st,
			     char *err, size_t errlen);

/*
 * Migration (migrate/send_xen.c, xsr receive --xen).  xsr_xen_suspend:
 * libxl suspends @domid into an anonymous memory file (the xl save file's
 * bytes: header, JSON config, libxl v2 stream), returned (caller closes) or
 * -1; the domain stays suspended (xsr_xen_save_finish resumes or destroys
 * it).  @live: libxl's pre-copy with log-dirty first (LIBXL_SUSPEND_LIVE).
 * xsr_xen_save = suspend + import.
 */
int xsr_xen_suspend(uint32_t domid, int live, struct xsr_xen_stats *st, char *err, size_t errlen);
/* 1 if the hypervisor gives @domid log-dirty (probed: enabled, then off), 0 if not; @why says which. */
int xsr_xen_logdirty(uint32_t domid, char *why, size_t whylen);
/* Rename @domid: drop @strip from the end of its name (if there), append @add. */
int xsr_xen_rename(uint32_t domid, const char *strip, const char *add, char *err, size_t errlen);
int xsr_xen_unpause(uint32_t domid, char *err, size_t errlen);

#endif
