/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libxsrelf: the x86-64 page-table walker behind the paging view.
 *
 * A paging-view core's PT_LOADs are the guest-virtual mappings of one vCPU
 * (p_vaddr = virtual, p_paddr = physical), so that `gdb GUEST.elf CORE`
 * reads variables at their linked addresses.  gdb-scripts/xsrelf.py has the
 * Python twin of this walker (`xsr virt`).
 */
#ifndef XSRELF_PAGING_H
#define XSRELF_PAGING_H

#include <xsrelf/writer.h>
#include <xsrelf/xsrelf.h>

/* Read @len octets of guest-physical memory at @paddr; 0 or <0. */
typedef int (*xsr_read_phys_fn)(void *ctx, uint64_t paddr, void *buf, size_t len);

/* Limits of one walk: a hostile table cannot make it run away. */
#define XSR_PAGING_MAX_TABLES (1u << 20) /* page-table pages read per pass */
#define XSR_PAGING_MAX_XLATE (UINT64_C(1) << 29) /* machine frames translated per pass */
/*
 * Leaf entries per pass: 16 per populated page, at least 2^24.  Tables that
 * loop or share subtrees cost at most that, never 2^20 tables x 512; a Linux
 * guest has about one per page plus a fixed few hundred thousand.
 */
#define XSR_PAGING_LEAVES_PER_PAGE 16u
#define XSR_PAGING_MIN_LEAVES (UINT64_C(1) << 24)

/* Linux x86-64's kernel image mapping (__START_KERNEL_map); modules and fixmap lie above. */
#define XSR_PAGING_KERNEL_START UINT64_C(0xffffffff80000000)
/* Xen's part of a 64-bit PV guest's address space (L4 slots 256..271): hypervisor frames. */
#define XSR_XEN_PV_RESERVED_START UINT64_C(0xffff800000000000)
#define XSR_XEN_PV_RESERVED_END UINT64_C(0xffff880000000000)

/* How to read the tables and how much to return; all zero is a plain walk. */
struct xsr_paging_opts {
	/*
	 * Page-table entries hold machine frames (a Xen PV core): @p2m, {pfn,
	 * mfn} pairs in any order, translates them back to pfns, and frames it
	 * does not name (Xen's, other domains') map nothing of the image.  CR3
	 * is taken as the pfn the VCPU section stores, or translated if it is no
	 * populated pfn.  Borrowed for the call; the walker sorts its own copy.
	 * NULL: entries hold guest-physical frames (KVM, HVM, Xen saves).
	 */
	const struct xsr_p2m_entry *p2m;
	uint64_t nr_p2m;
	/* Virtual range [skip_start, skip_end) left out (e.g. Xen's in a PV guest); equal: none. */
	uint64_t skip_start, skip_end;
	/* Most mappings to return, 1 ..= XSR_MAX_RUNS; 0 means XSR_MAX_RUNS. */
	uint32_t max_maps;
	uint32_t reserved; /* 0 */
};

/* What a walk found, and what did not fit in max_maps. */
struct xsr_paging_stats {
	uint64_t tables;          /* page-table pages read (one pass) */
	uint64_t mappings;        /* mappings after merging */
	uint64_t octets;          /* octets they map */
	uint64_t outside_pages;   /* pages mapped that are no memory of the image */
	uint64_t kept;            /* mappings returned */
	uint64_t kept_octets;
	uint64_t kernel_octets;   /* kept, from XSR_PAGING_KERNEL_START up */
	uint64_t direct_map;      /* virtual - physical of the direct map; 0: none seen */
	uint64_t direct_octets;   /* kept, of the direct map */
	uint64_t left_out;        /* mappings left out for max_maps */
	uint64_t left_out_octets;
	uint64_t left_out_start;  /* lowest virtual address left out */
	uint64_t left_out_last;   /* highest virtual address left out (last octet) */
	uint64_t left_out_kernel; /* of the left out, mappings from XSR_PAGING_KERNEL_START up */
	uint64_t left_out_direct; /* of the left out, direct-map mappings */
	uint64_t left_out_repeats; /* of the left out, repeats of the frames of the mapping before */
	uint64_t skip_start, skip_end; /* the range left out by request */
	uint32_t machine_frames;  /* 1: entries were translated through a p2m */
	uint32_t reserved;
};

/*
 * Walk the page tables of @r (CR3, CR4.LA57, EFER.NXE; long mode required),
 * reading tables through @rd, and return the present mappings of memory
 * that lies in @runs as vloads sorted by vaddr, each inside one run.
 * Neighbours contiguous in both virtual and physical space are merged
 * whatever their permissions, with the union of the flags (PF_R | PF_W if
 * writable at every level | PF_X unless NX).
 *
 * When more than max_maps mappings remain, they are kept in this order:
 * from XSR_PAGING_KERNEL_START up (kernel image, modules, fixmap); the
 * direct map (below that in the upper half, the virtual - physical offset
 * that is a multiple of 1 GiB and maps the most: Linux's page_offset_base);
 * then the larger mappings first, and the lower address of two equal ones;
 * last, repeats: mappings of the same frames as the mapping before them.
 * @st (may be NULL) says what was left out.  Memory use is bounded by
 * max_maps and the p2m, not by the tables (a second pass does the choice).
 *
 * @o may be NULL.  *out is malloc'd (caller frees).  On failure a message
 * is put in @err.
 */
XSR_API int xsr_paging_walk_opts(const struct xsr_x86_vcpu *r, const struct xsr_memrun *runs,
				 uint32_t nr_runs, xsr_read_phys_fn rd, void *ctx,
				 const struct xsr_paging_opts *o, struct xsr_vload **out, uint32_t *n,
				 struct xsr_paging_stats *st, char *err, size_t errlen);

/* xsr_paging_walk_opts() with no options and no statistics. */
XSR_API int xsr_paging_walk(const struct xsr_x86_vcpu *r, const struct xsr_memrun *runs,
			    uint32_t nr_runs, xsr_read_phys_fn rd, void *ctx, struct xsr_vload **out,
			    uint32_t *n, char *err, size_t errlen);

/* Translate one address; fills *paddr and the entries seen (up to 5). */
XSR_API int xsr_paging_translate(const struct xsr_x86_vcpu *r, uint64_t vaddr, xsr_read_phys_fn rd,
				 void *ctx, uint64_t *paddr, uint64_t entries[5], int *levels,
				 char *err, size_t errlen);

#endif
