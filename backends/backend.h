/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The hypervisor backend interface.
 *
 * One ops struct per backend (synthetic, KVM, Xen); every member is filled
 * (backend_check() refuses an ops struct with a NULL member), but for
 * map_guest, a capability that only some backends have.  The generic
 * save / restore / core / migrate code in save/, restore/ and core/ only ever
 * calls through this struct and never asks which backend it has.
 *
 * Memory is addressed by pfn and exposed by map(): a pointer to @count
 * contiguous guest frames that lie within one memory run, valid until the
 * matching unmap().  Dirty tracking reports one bit per page *slot*, slots
 * numbered in memory-run order (slot 0 = first pfn of run 0), so a sparse
 * guest needs no bitmap sized by its highest pfn.
 */
#ifndef XSR_BACKEND_H
#define XSR_BACKEND_H

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
	/* A non-vCPU, non-page section of the image (config, domctx, ...). */
	int (*load_extra)(struct xsr_backend *be, uint32_t code, uint32_t info, const void *body,
			  uint64_t len);
	/* Start (or un-pause) the restored domain. */
	int (*start)(struct xsr_backend *be);

	/*
	 * ---- lazy restore (restore/lazy.c) ----
	 * The one optional member: NULL when the backend cannot restore lazily
	 * (xsr_backend_check() allows that, and lazy restore then refuses).
	 * After create, before anything touches guest memory: the host mapping
	 * of all of it, page slot i at @addr + i * XSR_PAGE_SIZE (slots in
	 * describe()'s run order), shared (a memfd) or anonymous memory that
	 * userfaultfd can register in MISSING mode, so that the engine serves
	 * each first touch, the backend's own included, from the image.
	 * Borrowed until close.
	 */
	int (*map_guest)(struct xsr_backend *be, void **addr, uint64_t *len);

	/* Message for the last failure (static or owned by @be). */
	const char *(*error)(struct xsr_backend *be);
	/* Free everything (a running domain is left as the backend documents). */
	void (*close)(struct xsr_backend *be);
};

struct xsr_backend {
	const struct xsr_backend_ops *ops;
};

/* 0 if every member of @ops is set, else the name of the first NULL one. */
const char *xsr_backend_check(const struct xsr_backend_ops *ops);

/* The synthetic backend (deterministic content; see docs/xsrelf-format.md). */
struct xsr_synth_params {
	uint64_t mem_bytes;
	uint32_t nr_vcpus;
	double zero_fraction;
	uint64_t seed;
};
int xsr_synth_open(struct xsr_backend **out, const struct xsr_synth_params *p);
/* The synthetic page-content function: fills @page for @pfn. Returns 1 if zero. */
int xsr_synth_page(uint64_t seed, double zero_fraction, uint64_t pfn, uint8_t page[4096]);

#endif
