/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Xen PV guests laid out for crash (XSR_FF_XEN_MACHINE_PADDR): the PT_LOADs
 * by machine address, the synthetic p2m tree, the QEMU and Xen notes, and
 * VMCOREINFO found in guest memory.  The writer makes the layout and the
 * reader re-makes it from the tree section and compares, so both follow the
 * one computation here.
 *
 * Why each piece (docs/xsrelf-format.md, "Xen PV guests and crash"): a PV
 * guest's page tables hold machine frames, and crash 8.0.x reads a Xen
 * guest's ELF core only as a "Xen kdump": physical reads go pfn -> mfn
 * through a p2m tree that a CRASH_INFO note names, then to the file by
 * p_paddr.  gdb and xsrelf keep reading guest-physical memory by p_vaddr.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int cmp_mfn(const void *a, const void *b)
{
	const struct xsr_xen_load *x = a, *y = b;
	return x->mfn < y->mfn ? -1 : x->mfn > y->mfn;
}

void xsr_xen_layout_free(struct xsr_xen_layout *l)
{
	if (!l)
		return;
	free(l->tree);
	free(l->loads);
	memset(l, 0, sizeof(*l));
}

int xsr_xen_layout_make(const struct xsr_memrun *runs, uint32_t nruns, const struct xsr_xen_pv *pv,
			struct xsr_xen_layout *out, const char **why)
{
	const uint64_t per = XSR_XEN_P2M_PER_PAGE;
	memset(out, 0, sizeof(*out));
	if (!nruns) {
		*why = "no memory";
		return 1;
	}
	uint64_t n = runs[nruns - 1].pfn + runs[nruns - 1].count;
	uint64_t nleaf = (n + per - 1) / per, nfl = (nleaf + per - 1) / per, npages = 1 + nfl + nleaf;
	if (nfl > XSR_XEN_P2M_MAX_FL || sizeof(struct xsr_xen_p2m_tree) + npages * XSR_PAGE_SIZE > XSR_MAX_RECORD) {
		*why = "the p2m tree would exceed crash's 512 frame lists or the record limit";
		return 1;
	}
	out->tree = malloc(npages * XSR_PAGE_SIZE);
	uint32_t cap = 64;
	out->loads = malloc(cap * sizeof(*out->loads));
	if (!out->tree || !out->loads) {
		xsr_xen_layout_free(out);
		return XSR_E_NOMEM;
	}
	uint64_t *leaf = out->tree + (1 + nfl) * per;
	for (uint64_t i = 0; i < nleaf * per; i++)
		leaf[i] = XSR_XEN_NO_MFN;
	/* One load per maximal run consecutive in pfn and in mfn, inside one memory run. */
	uint64_t top = n - 1;
	for (uint32_t r = 0; r < nruns; r++) {
		struct xsr_xen_load *cur = NULL;
		for (uint64_t p = runs[r].pfn; p < runs[r].pfn + runs[r].count; p++) {
			uint64_t m = !pv->mfn ? p : p < pv->nr_pfns ? pv->mfn[p] : XSR_XEN_NO_MFN;
			if (m > XSR_MAX_PFN) { /* none, or not a frame number */
				cur = NULL;
				continue;
			}
			leaf[p] = m;
			if (m > top)
				top = m;
			if (cur && p == cur->pfn + cur->count && m == cur->mfn + cur->count) {
				cur->count++;
				continue;
			}
			if (out->nr_loads == XSR_MAX_RUNS - 1) {
				*why = "more PT_LOADs than an ELF program header table holds";
				xsr_xen_layout_free(out);
				return 1;
			}
			if (out->nr_loads == cap) {
				struct xsr_xen_load *nl = realloc(out->loads, 2 * cap * sizeof(*nl));
				if (!nl) {
					xsr_xen_layout_free(out);
					return XSR_E_NOMEM;
				}
				out->loads = nl;
				cap *= 2;
			}
			cur = &out->loads[out->nr_loads++];
			*cur = (struct xsr_xen_load){p, m, 1};
		}
	}
	/* Two pfns on one machine frame would make p_paddr ambiguous. */
	struct xsr_xen_load *s = malloc((out->nr_loads + 1) * sizeof(*s));
	if (!s) {
		xsr_xen_layout_free(out);
		return XSR_E_NOMEM;
	}
	memcpy(s, out->loads, out->nr_loads * sizeof(*s));
	qsort(s, out->nr_loads, sizeof(*s), cmp_mfn);
	for (uint32_t i = 1; i < out->nr_loads; i++)
		if (s[i].mfn < s[i - 1].mfn + s[i - 1].count) {
			free(s);
			*why = "two pfns map to one machine frame";
			xsr_xen_layout_free(out);
			return 1;
		}
	free(s);
	/* The tree goes above every machine frame and pfn, 2 MiB aligned. */
	uint64_t base = (top + 1 + per - 1) & ~(per - 1);
	if (base > XSR_MAX_PFN - npages) {
		*why = "no machine frames left above the guest's for the p2m tree";
		xsr_xen_layout_free(out);
		return 1;
	}
	memset(out->tree, 0, (1 + nfl) * XSR_PAGE_SIZE);
	for (uint64_t j = 0; j < nfl; j++)
		out->tree[j] = base + 1 + j;
	for (uint64_t i = 0; i < nleaf; i++)
		out->tree[per + i] = base + 1 + nfl + i; /* frame list j holds leaves 512j .. */
	out->hdr = (struct xsr_xen_p2m_tree){
		.xen_major = pv->xen_major, .xen_minor = pv->xen_minor, .nr_pfns = n, .fll_mfn = base,
		.nr_frame_lists = (uint32_t)nfl, .nr_leaves = (uint32_t)nleaf,
	};
	out->npages = npages;
	return 0;
}

int xsr_xen_tree_params(const void *body, uint64_t len, struct xsr_xen_pv *pv, const char **why)
{
	struct xsr_xen_p2m_tree h;
	const uint64_t per = XSR_XEN_P2M_PER_PAGE;
	if (len < sizeof(h) || (len - sizeof(h)) % XSR_PAGE_SIZE) {
		*why = "length is not the header plus whole pages";
		return XSR_E_FORMAT;
	}
	memcpy(&h, body, sizeof(h));
	/* nr_pfns is the file's: bound it before rounding up, which would wrap near 2^64. */
	if (h.nr_pfns > XSR_MAX_PFN + 1) {
		*why = "nr_pfns is past the last pfn the format allows";
		return XSR_E_FORMAT;
	}
	uint64_t nleaf = (h.nr_pfns + per - 1) / per, nfl = (nleaf + per - 1) / per;
	if (h.nr_pfns == 0 || h.nr_leaves != nleaf || h.nr_frame_lists != nfl || nfl > XSR_XEN_P2M_MAX_FL ||
	    (len - sizeof(h)) / XSR_PAGE_SIZE != 1 + nfl + nleaf || h.reserved[0] || h.reserved[1] || h.reserved[2] ||
	    h.reserved[3]) {
		*why = "header counts disagree with nr_pfns or the length, or a reserved field is set";
		return XSR_E_FORMAT;
	}
	pv->xen_major = h.xen_major;
	pv->xen_minor = h.xen_minor;
	pv->nr_pfns = nleaf * per;
	pv->mfn = (const uint64_t *)((const uint8_t *)body + sizeof(h) + (1 + nfl) * XSR_PAGE_SIZE);
	return 0;
}

int xsr_xen_layout_from_tree(const struct xsr_memrun *runs, uint32_t nruns, const void *body, uint64_t len,
			     struct xsr_xen_layout *out, const char **why)
{
	struct xsr_xen_pv pv;
	memset(out, 0, sizeof(*out));
	int rc = xsr_xen_tree_params(body, len, &pv, why);
	if (rc < 0)
		return rc;
	/*
	 * The tree re-made below is sized by the memory map, the one in the file
	 * by its nr_pfns; they must agree (the header compare below says so too),
	 * and checking first keeps the work to what the file holds: a 70 KiB
	 * image whose memory map ended near pfn 2^24 made a 128 MiB tree and
	 * walked 16 M pfns before the compare refused it (fuzz, 2026-12-02).
	 */
	struct xsr_xen_p2m_tree h;
	memcpy(&h, body, sizeof(h));
	if (nruns && runs[nruns - 1].pfn + runs[nruns - 1].count != h.nr_pfns) {
		*why = "nr_pfns is not where the memory map ends";
		return XSR_E_FORMAT;
	}
	/* The leaves are 8-aligned only if the body is; copy to be safe. */
	uint64_t *m = malloc(pv.nr_pfns * 8);
	if (!m)
		return XSR_E_NOMEM;
	memcpy(m, pv.mfn, pv.nr_pfns * 8);
	pv.mfn = m;
	rc = xsr_xen_layout_make(runs, nruns, &pv, out, why);
	free(m);
	if (rc < 0)
		return rc;
	if (rc > 0)
		return XSR_E_FORMAT;
	if (memcmp(&out->hdr, body, sizeof(out->hdr)) ||
	    memcmp(out->tree, (const uint8_t *)body + sizeof(out->hdr), out->npages * XSR_PAGE_SIZE)) {
		*why = "the tree is not the one the memory map and its leaves make (a leaf names a frame for an "
		       "unpopulated pfn, or the frame lists or fll_mfn are off)";
		xsr_xen_layout_free(out);
		return XSR_E_FORMAT;
	}
	return 0;
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* QEMU's segment flags are descriptor bits 8..23; xsrelf's attr packs bits 8..15 and 20..23. */
static uint8_t *qemu_seg(uint8_t *p, const struct xsr_x86_segment *s)
{
	put32(p, s->selector);
	put32(p + 4, s->limit);
	put32(p + 8, (uint32_t)(s->attr & 0xff) << 8 | (uint32_t)(s->attr >> 8 & 0xf) << 20);
	put32(p + 12, 0);
	put64(p + 16, s->base);
	return p + 24;
}

void xsr_qemu_note(const struct xsr_x86_vcpu *r, uint64_t kernel_gs_base, uint8_t out[XSR_QEMU_NOTE_SIZE])
{
	Elf64_Nhdr nh = {.n_namesz = sizeof(XSR_QEMU_NOTE_NAME), .n_descsz = XSR_QEMU_CPUSTATE_SIZE, .n_type = 0};
	memset(out, 0, XSR_QEMU_NOTE_SIZE);
	memcpy(out, &nh, sizeof(nh));
	memcpy(out + sizeof(nh), XSR_QEMU_NOTE_NAME, sizeof(XSR_QEMU_NOTE_NAME));
	/* QEMUCPUState version 1 (QEMU target/i386/arch_dump.c). */
	uint8_t *d = out + sizeof(nh) + 8, *p = d + 8;
	put32(d, 1);
	put32(d + 4, XSR_QEMU_CPUSTATE_SIZE);
	for (int i = 0; i < 16; i++, p += 8) /* rax rbx rcx rdx rsi rdi rsp rbp r8..r15: xsrelf's order */
		put64(p, r->gpr[i]);
	put64(p, r->rip);
	put64(p + 8, r->rflags);
	p += 16;
	const struct xsr_x86_segment *seg[] = {&r->cs, &r->ds, &r->es, &r->fs, &r->gs, &r->ss, &r->ldt, &r->tr};
	for (size_t i = 0; i < ARRAY_SIZE(seg); i++)
		p = qemu_seg(p, seg[i]);
	struct xsr_x86_segment g = {.base = r->gdt.base, .limit = r->gdt.limit};
	struct xsr_x86_segment id = {.base = r->idt.base, .limit = r->idt.limit};
	p = qemu_seg(p, &g);
	p = qemu_seg(p, &id);
	const uint64_t cr[5] = {r->cr0, 0, r->cr2, r->cr3, r->cr4};
	for (int i = 0; i < 5; i++, p += 8)
		put64(p, cr[i]);
	put64(p, kernel_gs_base);
}

void xsr_xen_note(uint32_t major, uint32_t minor, uint64_t fll_mfn, uint8_t out[XSR_XEN_NOTE_SIZE])
{
	Elf64_Nhdr nh = {.n_namesz = sizeof(XSR_XEN_NOTE_NAME), .n_descsz = XSR_XEN_CRASH_INFO_SIZE,
			 .n_type = XSR_NT_XEN_CRASH_INFO};
	memset(out, 0, XSR_XEN_NOTE_SIZE);
	memcpy(out, &nh, sizeof(nh));
	memcpy(out + sizeof(nh), XSR_XEN_NOTE_NAME, sizeof(XSR_XEN_NOTE_NAME));
	/* crash_xen_info_t (x86-64): versions, 6 unused words, xen_phys_start, p2m frame-list-list mfn */
	uint8_t *d = out + sizeof(nh) + 4;
	put64(d, major);
	put64(d + 8, minor);
	put64(d + 72, fll_mfn);
}

uint32_t xsr_vmci_in_page(const uint8_t *page)
{
	static const char want[] = "\nPAGESIZE=";
	if (memcmp(page, "OSRELEASE=", 10))
		return 0;
	uint32_t n = 0;
	while (n < XSR_PAGE_SIZE && page[n]) {
		if ((page[n] < 0x20 || page[n] > 0x7e) && page[n] != '\n')
			return 0;
		n++;
	}
	/* Linux keeps the text in one zeroed page, so it ends before the page does. */
	if (n == XSR_PAGE_SIZE || page[n - 1] != '\n' || !memmem(page, n, want, sizeof(want) - 1))
		return 0;
	return n;
}
