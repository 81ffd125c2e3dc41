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

/* One slot of the direct-map vote: a virtual - physical offset and the octets it maps. */
struct dvote {
	uint64_t delta, octets;
};
#define NR_DVOTES 16
#define GIB (UINT64_C(1) << 30)

struct walk {
	const struct xsr_memrun *runs;
	uint32_t nr_runs;
	xsr_read_phys_fn rd;
	void *ctx;
	bool nxe;
	int levels;
	const struct xsr_p2m_entry *m2p; /* sorted by mfn; NULL: frames are pfns */
	uint64_t nr_m2p;
	uint64_t skip_start, skip_end; /* in pages */
	uint64_t tables, xlated, leaves, max_leaves, pages;
	/* the mapping being merged, not yet emitted; the frames of the one before */
	struct xsr_vload cur;
	uint32_t cur_run;
	bool have_cur;
	uint64_t prev_paddr, prev_len;
	/* pass 1 keeps the first max mappings in order; pass 2 a heap of the best max */
	int (*emit)(struct walk *w, const struct xsr_vload *l);
	struct xsr_vload *v;
	uint32_t n, cap, max;
	struct dvote votes[NR_DVOTES];
	uint64_t direct; /* pass 2: the direct map's offset, 0 if none */
	struct xsr_paging_stats *st;
	char *err;
	size_t errlen;
};

static uint64_t canonical(uint64_t va, int levels)
{
	int bits = levels == 5 ? 57 : 48;
	return (uint64_t)((int64_t)(va << (64 - bits)) >> (64 - bits));
}

static int cmp_mfn(const void *a, const void *b)
{
	uint64_t x = ((const struct xsr_p2m_entry *)a)->mfn, y = ((const struct xsr_p2m_entry *)b)->mfn;
	return x < y ? -1 : x > y;
}

/* The pfn of table-entry frame @fr: itself, or through the inverse p2m. */
static bool frame_pfn(const struct walk *w, uint64_t fr, uint64_t *pfn)
{
	if (!w->m2p) {
		*pfn = fr;
		return true;
	}
	uint64_t lo = 0, hi = w->nr_m2p;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (w->m2p[mid].mfn < fr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == w->nr_m2p || w->m2p[lo].mfn != fr)
		return false;
	*pfn = w->m2p[lo].pfn;
	return true;
}

/* Index of the first run that ends after @pfn (nr_runs if none). */
static uint32_t first_run(const struct walk *w, uint64_t pfn)
{
	uint32_t lo = 0, hi = w->nr_runs;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (w->runs[mid].pfn + w->runs[mid].count <= pfn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The order in which mappings are kept: 0 kernel image and above, 1 direct
 * map, 2 the rest, 3 repeats (the same frames as the mapping before, as
 * when Xen PV Linux backs the unused part of its p2m list, a GiB of
 * vmalloc space, with one read-only page).  While walking, l->reserved
 * marks a repeat; it is zeroed before the vloads are returned.
 */
static int rank(const struct walk *w, const struct xsr_vload *l)
{
	if (l->vaddr >= XSR_PAGING_KERNEL_START)
		return 0;
	if (w->direct && l->vaddr - l->paddr == w->direct)
		return 1;
	return l->reserved ? 3 : 2;
}

/* true if @a goes before @b when mappings must be left out */
static bool worse(const struct walk *w, const struct xsr_vload *a, const struct xsr_vload *b)
{
	int ra = rank(w, a), rb = rank(w, b);
	if (ra != rb)
		return ra > rb;
	if (a->len != b->len)
		return a->len < b->len;
	return a->vaddr > b->vaddr;
}

/*
 * The direct map's offset is voted for by the octets each offset maps,
 * counting only upper-half mappings below the kernel image whose offset is
 * a multiple of 1 GiB (Linux aligns page_offset_base so, KASLR or not).
 * A full table gives its smallest slot away (Space-Saving), which keeps
 * the vote bounded and still finds any offset with over 1/16 of them.
 */
static void vote(struct walk *w, const struct xsr_vload *l)
{
	uint64_t d = l->vaddr - l->paddr;
	if (!(l->vaddr >> 63) || l->vaddr >= XSR_PAGING_KERNEL_START || d % GIB)
		return;
	struct dvote *min = &w->votes[0];
	for (int i = 0; i < NR_DVOTES; i++) {
		struct dvote *v = &w->votes[i];
		if (v->octets && v->delta == d) {
			v->octets += l->len;
			return;
		}
		if (v->octets < min->octets)
			min = v;
	}
	min->delta = d;
	min->octets += l->len;
}

static void left_out(struct walk *w, const struct xsr_vload *l)
{
	struct xsr_paging_stats *st = w->st;
	if (!st->left_out++ || l->vaddr < st->left_out_start)
		st->left_out_start = l->vaddr;
	if (l->vaddr + (l->len - 1) > st->left_out_last)
		st->left_out_last = l->vaddr + (l->len - 1);
	st->left_out_octets += l->len;
	int r = rank(w, l);
	st->left_out_kernel += r == 0;
	st->left_out_direct += r == 1;
	st->left_out_repeats += r == 3;
}

/* Pass 1: count everything, vote, keep the first max in walk (= vaddr) order. */
static int collect(struct walk *w, const struct xsr_vload *l)
{
	w->st->mappings++;
	w->st->octets += l->len;
	vote(w, l);
	if (w->n == w->max)
		return 0;
	if (w->n == w->cap) {
		uint32_t cap = w->cap ? (w->cap > w->max / 2 ? w->max : w->cap * 2) : 64;
		struct xsr_vload *nv = realloc(w->v, cap * sizeof(*nv));
		if (!nv)
			return XSR_E_NOMEM;
		w->v = nv;
		w->cap = cap;
	}
	w->v[w->n++] = *l;
	return 0;
}

/* Pass 2: a heap of the best max mappings so far, the worst at the root. */
static int select_best(struct walk *w, const struct xsr_vload *l)
{
	struct xsr_vload *h = w->v;
	uint32_t i;
	if (w->n < w->max) {
		for (i = w->n++; i && worse(w, l, &h[(i - 1) / 2]); i = (i - 1) / 2)
			h[i] = h[(i - 1) / 2];
		h[i] = *l;
		return 0;
	}
	if (worse(w, l, &h[0])) {
		left_out(w, l);
		return 0;
	}
	left_out(w, &h[0]);
	for (i = 0;;) {
		uint32_t c = 2 * i + 1;
		if (c >= w->n)
			break;
		if (c + 1 < w->n && worse(w, &h[c + 1], &h[c]))
			c++;
		if (!worse(w, &h[c], l))
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = *l;
	return 0;
}

/* The current mapping is complete: mark a repeat and pass it on. */
static int flush(struct walk *w)
{
	struct xsr_vload *c = &w->cur;
	c->reserved = c->paddr == w->prev_paddr && c->len == w->prev_len;
	w->prev_paddr = c->paddr;
	w->prev_len = c->len;
	w->have_cur = false;
	return w->emit(w, c);
}

/* Pages [pfn, pfn+np) at @va of run @run: grow the current mapping or start a new one. */
static int piece(struct walk *w, uint64_t va, uint64_t pfn, uint64_t np, uint32_t flags, uint32_t run)
{
	struct xsr_vload *c = &w->cur;
	uint64_t cn = c->len >> XSR_PAGE_SHIFT;
	if (w->have_cur && w->cur_run == run && (c->vaddr >> XSR_PAGE_SHIFT) + cn == va >> XSR_PAGE_SHIFT &&
	    (c->paddr >> XSR_PAGE_SHIFT) + cn == pfn) {
		c->len += np << XSR_PAGE_SHIFT;
		c->flags |= flags;
		return 0;
	}
	if (w->have_cur) {
		int rc = flush(w);
		if (rc < 0)
			return rc;
	}
	*c = (struct xsr_vload){.vaddr = va, .paddr = pfn << XSR_PAGE_SHIFT, .len = np << XSR_PAGE_SHIFT,
				.flags = flags};
	w->cur_run = run;
	w->have_cur = true;
	return 0;
}

/* [va, ...) -> pages [pfn, pfn+np), clipped to the populated runs. */
static int to_runs(struct walk *w, uint64_t va, uint64_t pfn, uint64_t np, uint32_t flags)
{
	uint64_t seen = 0;
	for (uint32_t i = first_run(w, pfn); i < w->nr_runs && w->runs[i].pfn < pfn + np; i++) {
		uint64_t s = pfn > w->runs[i].pfn ? pfn : w->runs[i].pfn;
		uint64_t re = w->runs[i].pfn + w->runs[i].count, e = pfn + np < re ? pfn + np : re;
		int rc = piece(w, va + ((s - pfn) << XSR_PAGE_SHIFT), s, e - s, flags, i);
		if (rc < 0)
			return rc;
		seen += e - s;
	}
	w->st->outside_pages += np - seen;
	return 0;
}

/* A leaf: @np pages at canonical @va, minus the skipped range. */
static int leaf(struct walk *w, uint64_t va, uint64_t pfn, uint64_t np, uint32_t flags)
{
	uint64_t vp = va >> XSR_PAGE_SHIFT, ss = w->skip_start, se = w->skip_end;
	if (ss < se && vp < se && vp + np > ss) {
		int rc = 0;
		if (vp < ss)
			rc = to_runs(w, va, pfn, ss - vp, flags);
		if (!rc && vp + np > se)
			rc = to_runs(w, se << XSR_PAGE_SHIFT, pfn + (se - vp), vp + np - se, flags);
		return rc;
	}
	return to_runs(w, va, pfn, np, flags);
}

/*
 * A leaf entry naming frames [fr, fr+np): machine frames are translated one
 * by one, since consecutive mfns need not be consecutive pfns.  A PV guest
 * has no large pages; a hostile core full of them meets the budget.
 */
static int map(struct walk *w, uint64_t va, uint64_t fr, uint64_t np, uint32_t flags)
{
	if (!w->m2p)
		return leaf(w, va, fr, np, flags);
	if (np > XSR_PAGING_MAX_XLATE - w->xlated) {
		xsr_fmt(w->err, w->errlen, "more than %llu machine frames to translate: refusing to go on",
			(unsigned long long)XSR_PAGING_MAX_XLATE);
		return XSR_E_LIMIT;
	}
	w->xlated += np;
	for (uint64_t k = 0; k < np; k++) {
		uint64_t pfn;
		int rc = 0;
		if (frame_pfn(w, fr + k, &pfn))
			rc = leaf(w, va + (k << XSR_PAGE_SHIFT), pfn, 1, flags);
		else
			w->st->outside_pages++;
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
	uint64_t np = UINT64_C(1) << (shift - XSR_PAGE_SHIFT);
	for (int i = 0; i < 512; i++) {
		if (!(e[i] & PTE_P))
			continue;
		uint64_t va = canonical(vbase + ((uint64_t)i << shift), w->levels), vp = va >> XSR_PAGE_SHIFT;
		if (vp >= w->skip_start && vp + np <= w->skip_end)
			continue; /* wholly in the skipped range: not even read */
		bool w2 = wr && (e[i] & PTE_W), nx2 = nx || (w->nxe && (e[i] & PTE_NX));
		uint32_t flags = PF_R | (w2 ? PF_W : 0) | (nx2 ? 0 : PF_X);
		uint64_t fr = (e[i] & ADDR_MASK) >> XSR_PAGE_SHIFT, pfn;
		int rc = 0;
		bool is_leaf = level == 1 || ((level == 2 || level == 3) && (e[i] & PTE_PS));
		if (is_leaf && ++w->leaves > w->max_leaves) {
			xsr_fmt(w->err, w->errlen, "more than %llu leaf entries in the tables of an image of %llu pages: refusing to go on",
				(unsigned long long)w->max_leaves, (unsigned long long)w->pages);
			return XSR_E_LIMIT;
		}
		if (is_leaf)
			rc = map(w, va, fr & ~(np - 1), np, flags);
		else if (level > 1 && frame_pfn(w, fr, &pfn))
			rc = table(w, pfn << XSR_PAGE_SHIFT, level - 1, va, w2, nx2);
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

static int cmp_vaddr(const void *a, const void *b)
{
	uint64_t x = ((const struct xsr_vload *)a)->vaddr, y = ((const struct xsr_vload *)b)->vaddr;
	return x < y ? -1 : x > y;
}

/* One walk from the table at @root; merged mappings go to w->emit. */
static int pass(struct walk *w, uint64_t root)
{
	w->tables = w->xlated = w->leaves = 0;
	w->have_cur = false;
	w->prev_len = 0;
	int rc = table(w, root, w->levels, 0, true, false);
	if (!rc && w->have_cur)
		rc = flush(w);
	return rc;
}

/* CR3 holds a pfn (the VCPU section's rule); an mfn that is no populated pfn is translated. */
static uint64_t root_table(const struct walk *w, uint64_t cr3)
{
	uint64_t fr = (cr3 & ADDR_MASK) >> XSR_PAGE_SHIFT, pfn;
	uint32_t i = first_run(w, fr);
	bool populated = i < w->nr_runs && w->runs[i].pfn <= fr;
	if (w->m2p && !populated && frame_pfn(w, fr, &pfn))
		return pfn << XSR_PAGE_SHIFT;
	return cr3 & ADDR_MASK;
}

/* An inverse p2m sorted by mfn, without pfns no image can hold. */
static int inverse_p2m(struct walk *w, const struct xsr_p2m_entry *p2m, uint64_t nr, struct xsr_p2m_entry **out)
{
	if (nr > XSR_MAX_PAGES) {
		xsr_fmt(w->err, w->errlen, "a p2m of %llu entries: more than %llu", (unsigned long long)nr,
			(unsigned long long)XSR_MAX_PAGES);
		return XSR_E_LIMIT;
	}
	struct xsr_p2m_entry *m = malloc((nr ? nr : 1) * sizeof(*m));
	if (!m) {
		xsr_fmt(w->err, w->errlen, "out of memory for the inverse of a p2m of %llu entries", (unsigned long long)nr);
		return XSR_E_NOMEM;
	}
	uint64_t k = 0;
	for (uint64_t i = 0; i < nr; i++)
		if (p2m[i].pfn <= XSR_MAX_PFN)
			m[k++] = p2m[i];
	qsort(m, k, sizeof(*m), cmp_mfn);
	w->m2p = m;
	w->nr_m2p = k;
	*out = m;
	return 0;
}

int xsr_paging_walk_opts(const struct xsr_x86_vcpu *r, const struct xsr_memrun *runs, uint32_t nr_runs,
			 xsr_read_phys_fn rd, void *ctx, const struct xsr_paging_opts *o, struct xsr_vload **out,
			 uint32_t *n, struct xsr_paging_stats *st, char *err, size_t errlen)
{
	struct xsr_paging_stats st0;
	struct xsr_p2m_entry *m2p = NULL;
	if (!st)
		st = &st0;
	memset(st, 0, sizeof(*st));
	struct walk w = {.runs = runs, .nr_runs = nr_runs, .rd = rd, .ctx = ctx,
			 .nxe = (r->efer & EFER_NXE) != 0, .st = st, .emit = collect,
			 .max = o && o->max_maps ? o->max_maps : XSR_MAX_RUNS, .err = err, .errlen = errlen};
	*out = NULL;
	*n = 0;
	int rc = mode(r, &w.levels, err, errlen);
	if (rc < 0)
		return rc;
	if (o && (o->reserved || w.max > XSR_MAX_RUNS || o->skip_start > o->skip_end)) {
		xsr_fmt(err, errlen, "paging options: reserved not 0, max_maps over %u or skip_start > skip_end",
			XSR_MAX_RUNS);
		return XSR_E_INVAL;
	}
	if (o && o->skip_start < o->skip_end) {
		w.skip_start = o->skip_start >> XSR_PAGE_SHIFT;
		w.skip_end = (o->skip_end >> XSR_PAGE_SHIFT) + !!(o->skip_end & (XSR_PAGE_SIZE - 1));
		st->skip_start = o->skip_start;
		st->skip_end = o->skip_end;
	}
	for (uint32_t i = 0; i < nr_runs; i++)
		w.pages += runs[i].count;
	w.max_leaves = w.pages > XSR_PAGING_MIN_LEAVES / XSR_PAGING_LEAVES_PER_PAGE ? w.pages * XSR_PAGING_LEAVES_PER_PAGE
										      : XSR_PAGING_MIN_LEAVES;
	if (o && o->p2m) {
		if ((rc = inverse_p2m(&w, o->p2m, o->nr_p2m, &m2p)) < 0)
			return rc;
		st->machine_frames = 1;
	}
	uint64_t root = root_table(&w, r->cr3);
	rc = pass(&w, root);
	const struct dvote *best = NULL;
	for (int i = 0; i < NR_DVOTES; i++)
		if (w.votes[i].octets && (!best || w.votes[i].octets > best->octets))
			best = &w.votes[i];
	w.direct = best ? best->delta : 0;
	if (!rc && st->mappings > w.max) {
		/* Too many to keep: the second pass chooses, knowing the direct map. */
		uint64_t outside = st->outside_pages;
		struct xsr_vload *nv = realloc(w.v, w.max * sizeof(*nv));
		if (!nv) {
			rc = XSR_E_NOMEM;
		} else {
			w.v = nv;
			w.n = 0;
			w.cap = w.max;
			w.emit = select_best;
			rc = pass(&w, root);
			qsort(w.v, w.n, sizeof(*w.v), cmp_vaddr);
		}
		st->outside_pages = outside;
	}
	free(m2p);
	st->tables = w.tables;
	if (rc < 0) {
		if (rc == XSR_E_NOMEM)
			xsr_fmt(err, errlen, "out of memory walking the page tables");
		free(w.v);
		return rc;
	}
	if (!w.n) {
		xsr_fmt(err, errlen, "vCPU %u's page tables (cr3 0x%llx) map no memory of the image%s", r->vcpu_id,
			(unsigned long long)r->cr3, st->machine_frames ? " (entries read as machine frames through the p2m)" : "");
		free(w.v);
		return XSR_E_FORMAT;
	}
	st->direct_map = w.direct;
	for (uint32_t i = 0; i < w.n; i++) {
		int k = rank(&w, &w.v[i]);
		st->kept++;
		st->kept_octets += w.v[i].len;
		st->kernel_octets += k == 0 ? w.v[i].len : 0;
		st->direct_octets += k == 1 ? w.v[i].len : 0;
		w.v[i].reserved = 0;
	}
	*out = w.v;
	*n = w.n;
	return 0;
}

int xsr_paging_walk(const struct xsr_x86_vcpu *r, const struct xsr_memrun *runs, uint32_t nr_runs,
		    xsr_read_phys_fn rd, void *ctx, struct xsr_vload **out, uint32_t *n, char *err,
		    size_t errlen)
{
	return xsr_paging_walk_opts(r, runs, nr_runs, rd, ctx, NULL, out, n, NULL, err, errlen);
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
