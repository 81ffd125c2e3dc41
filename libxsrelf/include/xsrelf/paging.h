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
#define XSR_PAGING_MAX_TABLES (1u << 20) /* page-table pages read */

/*
 * Walk the page tables of @r (CR3, CR4.LA57, EFER.NXE; long mode required),
 * reading tables through @rd, and return the present mappings of memory
 * that lies in @runs as merged vloads (sorted by vaddr, each inside one run,
 * flags PF_R | PF_W if writable at every level | PF_X unless NX).
 * *out is malloc'd (caller frees).  On failure a message is put in @err.
 */
XSR_API int xsr_paging_walk(const struct xsr_x86_vcpu *r, const struct xsr_memrun *runs,
			    uint32_t nr_runs, xsr_read_phys_fn rd, void *ctx, struct xsr_vload **out,
			    uint32_t *n, char *err, size_t errlen);

/* Translate one address; fills *paddr and the entries seen (up to 5). */
XSR_API int xsr_paging_translate(const struct xsr_x86_vcpu *r, uint64_t vaddr, xsr_read_phys_fn rd,
				 void *ctx, uint64_t *paddr, uint64_t entries[5], int *levels,
				 char *err, size_t errlen);

#endif
