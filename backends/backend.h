/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The hypervisor backend interface.
 *
 * One ops struct per backend (synthetic, KVM, Xen), in groups: a backend
 * fills the groups it can do and leaves the others NULL, never a stub that
 * refuses (backend_lacks() names what a job needs and is missing, and
 * the engine says "not supported by this backend" once, before it starts).
 * The generic save / restore / core / migrate code in save/, restore/, core/
 * and migrate/ only ever calls through this struct and never asks which
 * backend it has.
 *
 * Memory is addressed by pfn and exposed by map(): a pointer to @count
 * contiguous guest frames that lie within one memory run, valid until the
 * matching unmap().  Dirty tracking reports one bit per page *slot*, slots
 * numbered in memory-run order (slot 0 = first pfn of run 0), so a sparse
 * guest needs no bitmap sized by its highest pfn.
 */
#ifndef XSR_BACKEND_H
#define XSR_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <xsrelf/vcpu.h>
#include <xsrelf/writer.h>

struct xsr_backend;

struct xsr_domain_info {
	uint32_t nr_vcpus;
	uint32_t nr_runs;
	const struct xsr_memrun *runs; /* borrowed from the backend */
	char hypervisor[32];           /* "kvm", "xen", "synthetic" */
	char hypervisor_version[64];
	/*
	 * A 64-bit Xen PV guest: the machine frames its page tables name, for
	 * the crash layout (xsr_writer_params.xen_pv); borrowed, NULL otherwise.
	 */
	const struct xsr_xen_pv *xen_pv;
};

/*
 * How a whole-domain backend moves guest memory (QEMU: docs/qemu-compat.md,
 * "Shared-memory path"): AUTO takes xsr's own path where the guest's RAM
 * allows it, TRANSCODE always the hypervisor's stream, SHARED xsr's own
 * path or a refusal saying why not.
 */
enum { XSR_MEMPATH_AUTO = 0, XSR_MEMPATH_TRANSCODE = 1, XSR_MEMPATH_SHARED = 2 };

/* For save_domain (whole-domain save; see the ops below). */
struct xsr_domain_save_opts {
	int stream;       /* @out_fd is not seekable: write the stream layout */
	uint32_t kind;    /* the image's kind: 0 for a save, XSR_KIND_MIGRATION for a migration stream */
	uint8_t compress; /* enum xsr_compress, for the page data */
	int live;         /* pre-copy while the guest runs (needs live_probe() = 1) */
	/*
	 * SIGINT, SIGTERM, SIGHUP stop the save at its next batch (the domain is
	 * resumed and st->stop_signal set) instead of killing the process with
	 * the domain suspended; SIGPIPE is ignored.  Set for the process for good.
	 */
	int catch_signals;
	/* Called with the writer before the first section (e.g. MIG_BEGIN and the receiver's HELLO); NULL: none. */
	int (*begin)(void *ctx, struct xsr_writer *w, char *err, size_t errlen);
	void *ctx;
	/*
	 * Called with the writer after the domain's own sections, before the
	 * writer closes, with the domain suspended (e.g. its xenstore subtree:
	 * save_xenstore_end); NULL: none.
	 */
	int (*end)(void *ctx, struct xsr_writer *w, char *err, size_t errlen);
	void *end_ctx;
	int memory_path; /* XSR_MEMPATH_* */
};

/* What xenstore_write did (see the ops). */
struct xsr_xenstore_stats {
	uint32_t written; /* nodes written, with their permissions */
	uint32_t kept;    /* nodes the toolstack had made already: left as they were */
	uint32_t skipped; /* the toolstack's keys (xsr_xs_toolstack_key) in the image: not written */
};

/* For restore_domain. */
struct xsr_domain_restore_opts {
	int paused;              /* leave the new domain paused (resume() unpauses it) */
	const char *name_suffix; /* appended to the domain's name ("--incoming"), NULL: none */
	/* Told the pages exported (done, total); may be called from another thread.  NULL: none. */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *pctx;
	int memory_path; /* XSR_MEMPATH_* */
};

struct xsr_domain_stats {
	uint64_t bytes;        /* xsrelf octets written (save) or read (restore) */
	uint64_t suspend_ns;   /* save: suspend (and the hypervisor's stream); restore: the hypervisor's restore */
	uint64_t transcode_ns; /* save: import into xsrelf; restore: export (overlapped) */
	uint64_t elapsed_ns;
	uint32_t domid;        /* restore: the new domain */
	int overlapped;        /* save: the transcode ran while the hypervisor wrote */
	int native;            /* save: xsr's own save of the domain, not the hypervisor's engine */
	int stop_signal;       /* save: the signal that stopped it (catch_signals), or 0 */
	int stays_suspended;   /* save failed and resuming the domain failed too: it is left suspended */
	int shared_memory;     /* xsr moved the guest's RAM itself through shared memory (XSR_MEMPATH_SHARED taken) */
	char path_why[192];    /* why the memory path taken was taken (AUTO), "" if nothing to say */
};

struct xsr_backend_ops {
	const char *name;

	/* ---- both sides ---- */
	int (*describe)(struct xsr_backend *be, struct xsr_domain_info *out);
	int (*pause)(struct xsr_backend *be);
	int (*resume)(struct xsr_backend *be);
	int (*map)(struct xsr_backend *be, uint64_t pfn, uint64_t count, int writable, void **addr);
	void (*unmap)(struct xsr_backend *be, void *addr, uint64_t pfn, uint64_t count);
	/*
	 * Set zero[i] = 1 for the pages of [pfn, pfn+count) (inside one run)
	 * known to be zero without reading them, e.g. holes of a sparse memory
	 * file; leave the others alone.  A backend that cannot tell sets none.
	 * It lets a save skip memory the guest never touched instead of
	 * faulting all of it in.
	 */
	int (*zero_hint)(struct xsr_backend *be, uint64_t pfn, uint64_t count, uint8_t *zero);

	/* ---- save side ---- */
	int (*get_vcpu)(struct xsr_backend *be, uint32_t vcpu, struct xsr_vcpu_state *out);
	/* Write backend-specific sections (config, domctx, p2m, ...). */
	int (*save_extra)(struct xsr_backend *be, struct xsr_writer *w);
	int (*dirty_start)(struct xsr_backend *be);
	/*
	 * Fetch and clear the dirty log: OR bit i into @bitmap for each slot
	 * i < @nslots written since the last fetch (other bits are left alone).
	 */
	int (*dirty_fetch)(struct xsr_backend *be, uint64_t *bitmap, uint64_t nslots);
	int (*dirty_stop)(struct xsr_backend *be);

	/* ---- restore side ---- */
	/* Create an empty domain with this shape (memory allocated, not filled). */
	int (*create)(struct xsr_backend *be, const struct xsr_domain_info *info);
	int (*set_vcpu)(struct xsr_backend *be, const struct xsr_vcpu_state *st);
	/* A non-vCPU, non-page section of the image: those backend_extra_section() names. */
	int (*load_extra)(struct xsr_backend *be, uint32_t code, uint32_t info, const void *body,
			  uint64_t len);
	/* Start (or un-pause) the restored domain. */
	int (*start)(struct xsr_backend *be);

	/*
	 * ---- lazy restore (restore/lazy.c) ----
	 * Optional: NULL when the backend cannot restore lazily (neither
	 * backend_check() nor backend_lacks() asks for it; lazy restore
	 * then refuses).
	 * After create, before anything touches guest memory: the host mapping
	 * of all of it, page slot i at @addr + i * XSR_PAGE_SIZE (slots in
	 * describe()'s run order), shared (a memfd) or anonymous memory that
	 * userfaultfd can register in MISSING mode, so that the engine serves
	 * each first touch, the backend's own included, from the image.
	 * Borrowed until close.
	 */
	int (*map_guest)(struct xsr_backend *be, void **addr, uint64_t *len);

	/*
	 * ---- whole-domain save and restore (Xen) ----
	 * A hypervisor with its own save engine (Xen's libxenguest,
	 * tools/libs/guest/xg_sr_*.c) saves and restores a domain whole: a PV
	 * guest cannot be rebuilt from raw frames without localising its page
	 * tables, which only that engine does.  These hooks give the generic code
	 * (the save and restore verbs, the migration engine) that engine through
	 * this struct.  NULL in a backend without one (KVM, synthetic): those go
	 * page by page through the groups above.  Xen fills them from its save
	 * half (backends/xen_save.c) and its restore half (backends/xen_restore.c).
	 *
	 * save_domain: suspend the domain and write it as an xsrelf image (or a
	 * migration stream: @o) on @out_fd.  0: written, the domain is left
	 * suspended until finish(); < 0: failed, the domain resumed (st->suspend_ns
	 * is 0 if it never got suspended, st->stop_signal says whether a signal
	 * stopped it).  @st may not be NULL.
	 */
	int (*save_domain)(struct xsr_backend *be, int out_fd, const struct xsr_domain_save_opts *o,
			   struct xsr_domain_stats *st);
	/*
	 * 1 if the hypervisor gives this domain dirty logging for a live
	 * save_domain (probed: enabled, then off), 0 if not; @why says which
	 * (< 0: the probe failed, @why says why).
	 */
	int (*live_probe)(struct xsr_backend *be, char *why, size_t whylen);
	/*
	 * After save_domain: @destroy 1 gives the saved domain up (it now lives
	 * in the image or on the receiver), 0 resumes it.  After restore_domain:
	 * 1 destroys the new domain (a failed receive).
	 */
	int (*finish)(struct xsr_backend *be, int destroy);
	/*
	 * restore_domain, on a backend opened without a domain (the restore
	 * half, e.g. xen_open_restore()): build a new domain from the xsrelf
	 * image @img_fd (seekable); the backend then stands for that domain
	 * (st->domid) for rename, resume (unpause) and finish.
	 */
	int (*restore_domain)(struct xsr_backend *be, int img_fd, const struct xsr_domain_restore_opts *o,
			      struct xsr_domain_stats *st);
	/* Rename the domain: drop @strip from the end of its name (if there), append @add. */
	int (*rename)(struct xsr_backend *be, const char *strip, const char *add);

	/*
	 * ---- the domain's own xenstore (Xen) ----
	 * Optional: NULL in a backend without xenstore (KVM, synthetic, QEMU);
	 * the engines add or restore the section only where these exist.
	 * xenstore_read: the domain's subtree /local/domain/N/, less the keys the
	 * toolstack makes (xsr_xs_toolstack_key), with each node's permissions,
	 * as a XENSTORE subtree body (xsrelf/xenstore.h):
	 * *@body malloc'd (the caller frees), *@len its octets.  Call it with the
	 * domain suspended or paused, so that the guest cannot change it meanwhile.
	 * xenstore_write (the restore half, after restore_domain, before resume):
	 * write such a body's nodes under the new domain, a permission naming the
	 * saved domain naming the new one; a node that exists already (the
	 * toolstack made it from the configuration) is left as it is.  @st may be NULL.
	 */
	int (*xenstore_read)(struct xsr_backend *be, void **body, uint64_t *len);
	int (*xenstore_write)(struct xsr_backend *be, const void *body, uint64_t len, struct xsr_xenstore_stats *st);

	/* Message for the last failure (static or owned by @be). */
	const char *(*error)(struct xsr_backend *be);
	/* Free everything (a running domain is left as the backend documents). */
	void (*close)(struct xsr_backend *be);
};

struct xsr_backend {
	const struct xsr_backend_ops *ops;
};

/* What a job needs of a backend (backend_lacks). */
enum {
	XSR_NEED_CORE = 1u << 0,    /* name, describe, pause, resume, map, unmap, zero_hint, error, close */
	XSR_NEED_SAVE = 1u << 1,    /* get_vcpu, save_extra */
	XSR_NEED_DIRTY = 1u << 2,   /* dirty_start, dirty_fetch, dirty_stop */
	XSR_NEED_RESTORE = 1u << 3, /* create, set_vcpu, load_extra, start */
	XSR_NEED_DOMAIN_SAVE = 1u << 4,    /* save_domain, live_probe, finish, rename */
	XSR_NEED_DOMAIN_RESTORE = 1u << 5, /* restore_domain, finish, rename, resume */
};
/* NULL if @ops has every member the XSR_NEED_* bits of @need ask for, else the name of the first missing one. */
const char *backend_lacks(const struct xsr_backend_ops *ops, unsigned need);
/* A complete page-by-page backend (core, save, dirty, restore): NULL, or the first missing member. */
const char *backend_check(const struct xsr_backend_ops *ops);
/* Whether an engine hands section @code (enum xsr_sec) to load_extra: the one list (backend.c). */
bool backend_extra_section(uint32_t code);

/* The synthetic backend (deterministic content; see docs/xsrelf-format.md). */
struct xsr_synth_params {
	uint64_t mem_bytes;
	uint32_t nr_vcpus;
	double zero_fraction;
	uint64_t seed;
};
int synth_open(struct xsr_backend **out, const struct xsr_synth_params *p);
/* The synthetic page-content function: fills @page for @pfn. Returns 1 if zero. */
int synth_page(uint64_t seed, double zero_fraction, uint64_t pfn, uint8_t page[4096]);

#endif
