/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* x86-64 4- and 5-level page-table walks for the paging view. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xsrelf/paging.h>

#include "internal.h"

#define PTE_P (1ull << 0)
#define PTE_W (1ull << 1)
#define PTE_PS (1ull << 7)
#define PTE_NX (1ull << 63)
#define ADDR_MASK 0x000ffffffffff000ull
#define CR0_PG (1ull << 31)
#define CR4_LA57 (1ull << 12)
#define EFER_LMA (1ull << 10)
#define EFER_NXE (1ull << 11)

struct walk {
	const struct xsr_memrun *runs;
	uint32_t nr_runs;
	xsr_read_phys_fn rd;
	void *ctx;
	bool nxe;
	int levels;
	uint64_t tables;
	struct xsr_vload *v;
	uint32_t n, cap;
	char *err;
	size_t errlen;
	int rc;
};

static uint64_t canonical(uint64_t va, int levels)
{
	int bits = levels == 5 ? 57 : 48;
	return (uint64_t)((int64_t)(va << (64 - bits)) >> (64 - bits));
}

static int add(struct walk *w, uint64_t va, uint64_t pa, uint64_t len, uint32_t flags)
{
	struct xsr_vload *last = w->n ? &w->v[w->n - 1] : NULL;
	if (last && last->vaddr + last->len == va && last->paddr + last->len == pa && last->flags == flags) {
		last->len += len;
		return 0;
	}
	if (w->n == XSR_MAX_RUNS) {
		xsr_fmt(w->err, w->errlen, "more than %u separate mappings: too many for one core", XSR_MAX_RUNS);
		return XSR_E_LIMIT;
	}
	if (w->n == w->cap) {
		uint32_t cap = w->cap ? w->cap * 2 : 64;
		struct xsr_vload *nv = realloc(w->v, cap * sizeof(*nv));
		if (!nv)
			return XSR_E_NOMEM;
		w->v = nv;
		w->cap = cap;
	}
	w->v[w->n++] = (struct xsr_vload){.vaddr = va, .paddr = pa, .len = len, .flags = flags};
	return 0;
}

/* Add [va, va+len) -> [pa, ...) clipped to the populated runs. */
static int leaf(struct walk *w, uint64_t va, uint64_t pa, uint64_t len, uint32_t flags)
{
	for (uint32_t i = 0; i < w->nr_runs; i++) {
		uint64_t rs = w->runs[i].pfn << XSR_PAGE_SHIFT, re = rs + (w->runs[i].count << XSR_PAGE_SHIFT);
		uint64_t s = pa > rs ? pa : rs, e = pa + len < re ? pa + len : re;
		if (s >= e)
			continue;
		int rc = add(w, va + (s - pa), s, e - s, flags);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int table(struct walk *w, uint64_t tpa, int level, uint64_t vbase, bool wr, bool nx)
{
	uint64_t e[512];
	if (++w->tables > XSR_PAGING_MAX_TABLES) {
		xsr_fmt(w->err, w->errlen, "more than %u page-table pages: refusing to go on", XSR_PAGING_MAX_TABLES);
		return XSR_E_LIMIT;
	}
	if (w->rd(w->ctx, tpa, e, sizeof(e)) < 0)
		return 0; /* a table outside the image maps nothing we could show */
	int shift = 12 + 9 * (level - 1);
	for (int i = 0; i < 512; i++) {
		if (!(e[i] & PTE_P))
			continue;
		uint64_t va = vbase + ((uint64_t)i << shift);
		bool w2 = wr && (e[i] & PTE_W), nx2 = nx || (w->nxe && (e[i] & PTE_NX));
		uint32_t flags = PF_R | (w2 ? PF_W : 0) | (nx2 ? 0 : PF_X);
		int rc;
		if (level == 1 || ((level == 2 || level == 3) && (e[i] & PTE_PS))) {
			uint64_t size = 1ull << shift;
			uint64_t pa = e[i] & ADDR_MASK & ~(size - 1);
			rc = leaf(w, canonical(va, w->levels), pa, size, flags);
		} else if (level > 1) {
			rc = table(w, e[i] & ADDR_MASK, level - 1, va, w2, nx2);
		} else {
			rc = 0;
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int mode(const struct xsr_x86_vcpu *r, int *levels, char *err, size_t errlen)
{
	if (!(r->cr0 & CR0_PG) || !(r->efer & EFER_LMA)) {
		xsr_fmt(err, errlen, "vCPU %u is not in long mode with paging (cr0 0x%llx, efer 0x%llx)", r->vcpu_id,
			(unsigned long long)r->cr0, (unsigned long long)r->efer);
		return XSR_E_UNSUPPORTED;
	}
	*levels = r->cr4 & CR4_LA57 ? 5 : 4;
	return 0;
}

int xsr_paging_walk(const struct xsr_x86_vcpu *r, const struct xsr_memrun *runs, uint32_t nr_runs,
		    xsr_read_phys_fn rd, void *ctx, struct xsr_vload **out, uint32_t *n, char *err,
		    size_t errlen)
{
	struct walk w = {.runs = runs, .nr_runs = nr_runs, .rd = rd, .ctx = ctx,
			 .nxe = (r->efer & EFER_NXE) != 0, .err = err, .errlen = errlen};
	*out = NULL;
	*n = 0;
	int rc = mode(r, &w.levels, err, errlen);
	if (rc < 0)
		return rc;
	rc = table(&w, r->cr3 & ADDR_MASK, w.levels, 0, true, false);
	if (rc < 0) {
		if (rc == XSR_E_NOMEM)
			xsr_fmt(err, errlen, "out of memory walking the page tables");
		free(w.v);
		return rc;
	}
	if (!w.n) {
		xsr_fmt(err, errlen, "vCPU %u's page tables (cr3 0x%llx) map no memory of the image", r->vcpu_id,
			(unsigned long long)r->cr3);
		free(w.v);
		return XSR_E_FORMAT;
	}
	*out = w.v;
	*n = w.n;
	return 0;
}

int xsr_paging_translate(const struct xsr_x86_vcpu *r, uint64_t vaddr, xsr_read_phys_fn rd, void *ctx,
			 uint64_t *paddr, uint64_t entries[5], int *levels, char *err, size_t errlen)
{
	int lv, rc = mode(r, &lv, err, errlen);
	if (rc < 0)
		return rc;
	if (canonical(vaddr, lv) != vaddr) {
		xsr_fmt(err, errlen, "0x%llx is not a canonical %d-level address", (unsigned long long)vaddr, lv);
		return XSR_E_RANGE;
	}
	uint64_t t = r->cr3 & ADDR_MASK;
	*levels = 0;
	for (int level = lv; level >= 1; level--) {
		int shift = 12 + 9 * (level - 1);
		uint64_t e;
		if (rd(ctx, t + ((vaddr >> shift) & 511) * 8, &e, 8) < 0) {
			xsr_fmt(err, errlen, "level-%d table at guest-physical 0x%llx is not in the image", level,
				(unsigned long long)t);
			return XSR_E_RANGE;
		}
		entries[(*levels)++] = e;
		if (!(e & PTE_P)) {
			xsr_fmt(err, errlen, "0x%llx is not mapped: level-%d entry 0x%llx is not present",
				(unsigned long long)vaddr, level, (unsigned long long)e);
			return XSR_E_RANGE;
		}
		if (level == 1 || ((level == 2 || level == 3) && (e & PTE_PS))) {
			uint64_t size = 1ull << shift;
			*paddr = (e & ADDR_MASK & ~(size - 1)) | (vaddr & (size - 1));
			return 0;
		}
		t = e & ADDR_MASK;
	}
	return XSR_E_FORMAT;
}
