/*
 * The paging-view walker (libxsrelf/src/paging.c) on hand-built page tables:
 * merging across permissions, machine frames read through a p2m, a skipped
 * range with a self-referencing slot in it (Xen's linear map), and the
 * choice of what to keep when there are more mappings than max_maps.
 */
#include <criterion/criterion.h>
#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include <xsrelf/paging.h>

#define NPAGES 64
#define P 0x1ull
#define RW 0x2ull
#define NX (1ull << 63)

/* Guest memory by pfn; mfn(pfn) is where a PV core's tables would name it. */
static uint8_t mem[NPAGES][4096];
static const struct xsr_memrun run = {0, NPAGES};

static uint64_t mfn(uint64_t pfn)
{
	return 0x40000 + (pfn ^ 0x15);
}

static int rd(void *ctx, uint64_t paddr, void *buf, size_t len)
{
	(void)ctx;
	if (paddr >> 12 >= NPAGES || len > 4096 - (paddr & 4095))
		return XSR_E_RANGE;
	memcpy(buf, &mem[paddr >> 12][paddr & 4095], len);
	return 0;
}

/* Entry @idx of the table in pfn @t; @frame is a pfn, or an mfn when @machine. */
static void pte(uint64_t t, unsigned idx, uint64_t frame, uint64_t bits, bool machine)
{
	uint64_t v = ((machine ? mfn(frame) : frame) << 12) | bits;
	memcpy(&mem[t][idx * 8], &v, 8);
}

static unsigned ix(uint64_t va, int shift)
{
	return (unsigned)(va >> shift) & 511;
}

static struct xsr_x86_vcpu vcpu(uint64_t cr3)
{
	struct xsr_x86_vcpu r;
	memset(&r, 0, sizeof(r));
	r.cr0 = 0x80050033;
	r.cr4 = 0x6f0;
	r.efer = 0xd01;
	r.cr3 = cr3;
	return r;
}

/*
 * PML4 in pfn 1.  4 KiB pages of one PT (pfn 4, under PDPT 2 and PD 3):
 *   kernel 0xffffffff81000000: pfns 16..19, permissions RW+NX, RO, RW, RO+NX
 *   direct 0xffff888000000000 + 0x14000 .. (pfns 20..27, PT 7 under 5, 6)
 *   user   0x400000: pfn 30, then pfn 30 again and again (repeats), pfn 31
 */
static const uint64_t KVA = 0xffffffff81000000ull, DVA = 0xffff888000000000ull, UVA = 0x400000ull;

static void build(bool machine)
{
	memset(mem, 0, sizeof(mem));
	pte(1, ix(KVA, 39), 2, P | RW, machine);
	pte(2, ix(KVA, 30), 3, P | RW, machine);
	pte(3, ix(KVA, 21), 4, P | RW, machine);
	const uint64_t perm[4] = {RW | NX, 0, RW, NX};
	for (unsigned i = 0; i < 4; i++)
		pte(4, ix(KVA, 12) + i, 16 + i, P | perm[i], machine);
	pte(1, ix(DVA, 39), 5, P | RW, machine);
	pte(5, ix(DVA, 30), 6, P | RW, machine);
	pte(6, ix(DVA, 21), 7, P | RW, machine);
	for (unsigned i = 0; i < 8; i++)
		pte(7, 20 + i, 20 + i, P | RW | NX, machine);
	pte(1, ix(UVA, 39), 8, P | RW, machine);
	pte(8, ix(UVA, 30), 9, P | RW, machine);
	pte(9, ix(UVA, 21), 10, P | RW, machine);
	for (unsigned i = 0; i < 5; i++)
		pte(10, i, 30, P, machine);
	pte(10, 6, 31, P, machine);
}

static uint32_t walk(const struct xsr_paging_opts *o, uint64_t cr3, struct xsr_vload **v,
		     struct xsr_paging_stats *st)
{
	struct xsr_x86_vcpu r = vcpu(cr3);
	uint32_t n = 0;
	char err[256] = "";
	int rc = xsr_paging_walk_opts(&r, &run, 1, rd, NULL, o, v, &n, st, err, sizeof(err));
	cr_assert_eq(rc, 0, "walk: %s", err);
	return n;
}

static const struct xsr_vload *find(const struct xsr_vload *v, uint32_t n, uint64_t va)
{
	for (uint32_t i = 0; i < n; i++)
		if (v[i].vaddr == va)
			return &v[i];
	return NULL;
}

static void check_full_view(const struct xsr_vload *v, uint32_t n, const struct xsr_paging_stats *st)
{
	/* user: 5 mappings of pfn 30 (4 repeats) and one of 31; direct: 1; kernel: 1 */
	cr_assert_eq(n, 8);
	for (uint32_t i = 1; i < n; i++)
		cr_expect_lt(v[i - 1].vaddr, v[i].vaddr, "sorted by vaddr");
	const struct xsr_vload *k = find(v, n, KVA), *d = find(v, n, DVA + 0x14000);
	cr_assert(k && d);
	cr_expect_eq(k->paddr, 16 << 12);
	cr_expect_eq(k->len, 4 << 12, "four pages of mixed permissions merge");
	cr_expect_eq(k->flags, PF_R | PF_W | PF_X, "with the union of their flags");
	cr_expect_eq(d->paddr, 20 << 12);
	cr_expect_eq(d->len, 8 << 12);
	cr_expect_eq(d->flags, PF_R | PF_W);
	for (uint32_t i = 0; i < n; i++)
		cr_expect_eq(v[i].reserved, 0);
	cr_expect_eq(st->mappings, 8);
	cr_expect_eq(st->kept, 8);
	cr_expect_eq(st->left_out, 0);
	cr_expect_eq(st->direct_map, DVA);
	cr_expect_eq(st->direct_octets, 8 << 12);
	cr_expect_eq(st->kernel_octets, 4 << 12);
}

Test(paging, merges_across_permissions)
{
	struct xsr_vload *v;
	struct xsr_paging_stats st;
	build(false);
	uint32_t n = walk(NULL, 1 << 12, &v, &st);
	check_full_view(v, n, &st);
	cr_expect_eq(st.machine_frames, 0);
	free(v);
}

Test(paging, machine_frames_through_the_p2m)
{
	struct xsr_p2m_entry p2m[NPAGES];
	for (uint64_t i = 0; i < NPAGES; i++) /* reversed: no order is required */
		p2m[i] = (struct xsr_p2m_entry){NPAGES - 1 - i, mfn(NPAGES - 1 - i)};
	struct xsr_paging_opts o = {.p2m = p2m, .nr_p2m = NPAGES};
	struct xsr_vload *v;
	struct xsr_paging_stats st;
	build(true);
	/* A frame no p2m entry names (Xen's own, say) maps nothing. */
	pte(10, 7, 0x7777777, P, false);
	uint32_t n = walk(&o, 1 << 12, &v, &st);
	check_full_view(v, n, &st);
	cr_expect_eq(st.machine_frames, 1);
	cr_expect_eq(st.outside_pages, 1);
	free(v);
	/* CR3 left as a machine frame is translated too. */
	n = walk(&o, mfn(1) << 12, &v, &st);
	cr_expect_eq(n, 8);
	free(v);
	/* Without the p2m the same tables map nothing of the image. */
	struct xsr_x86_vcpu r = vcpu(1 << 12);
	char err[256] = "";
	cr_expect_eq(xsr_paging_walk_opts(&r, &run, 1, rd, NULL, NULL, &v, &n, &st, err, sizeof(err)), XSR_E_FORMAT);
	cr_expect(strstr(err, "map no memory of the image") != NULL, "%s", err);
}

Test(paging, skipped_range_is_not_walked)
{
	struct xsr_vload *v;
	struct xsr_paging_stats st;
	build(false);
	/* Slot 258 points back at the PML4, as Xen's linear page-table slot does. */
	pte(1, 258, 1, P | RW, false);
	uint32_t n = walk(NULL, 1 << 12, &v, &st);
	cr_expect_gt(n, 8, "without the skip, the tables are mapped again through slot 258");
	free(v);
	struct xsr_paging_opts o = {.skip_start = XSR_XEN_PV_RESERVED_START, .skip_end = XSR_XEN_PV_RESERVED_END};
	n = walk(&o, 1 << 12, &v, &st);
	check_full_view(v, n, &st);
	cr_expect_eq(st.skip_start, XSR_XEN_PV_RESERVED_START);
	free(v);
}

Test(paging, keeps_kernel_and_direct_map_first)
{
	struct xsr_vload *v;
	struct xsr_paging_stats st;
	build(false);
	/* Break the kernel mapping in two (pfns 16,17 then 18,19 at a gap): 9 mappings. */
	pte(4, ix(KVA, 12) + 2, 0, 0, false);
	pte(4, ix(KVA, 12) + 3, 0, 0, false);
	pte(4, ix(KVA, 12) + 10, 18, P | RW, false);
	pte(4, ix(KVA, 12) + 11, 19, P | RW, false);
	struct xsr_paging_opts o = {.max_maps = 4};
	uint32_t n = walk(&o, 1 << 12, &v, &st);
	cr_assert_eq(n, 4);
	cr_expect_eq(st.mappings, 9);
	cr_expect_eq(st.kept, 4);
	cr_expect_eq(st.left_out, 5);
	cr_expect_eq(st.left_out_kernel, 0);
	cr_expect_eq(st.left_out_direct, 0);
	cr_expect_eq(st.left_out_repeats, 4, "the four repeats of pfn 30 go first");
	cr_expect_eq(st.left_out_octets, 5 << 12);
	/* kept: both kernel pieces, the direct map, then the lowest single page (0x400000) */
	cr_expect(find(v, n, KVA) && find(v, n, KVA + 0xa000) && find(v, n, DVA + 0x14000));
	cr_expect(find(v, n, UVA) != NULL);
	cr_expect_eq(st.left_out_start, UVA + 0x1000);
	cr_expect_eq(st.left_out_last, UVA + 0x7000 - 1);
	for (uint32_t i = 1; i < n; i++)
		cr_expect_lt(v[i - 1].vaddr, v[i].vaddr);
	free(v);
	/* With room for two, the kernel image wins over the direct map. */
	o.max_maps = 2;
	n = walk(&o, 1 << 12, &v, &st);
	cr_expect_eq(n, 2);
	cr_expect(find(v, n, KVA) && find(v, n, KVA + 0xa000));
	cr_expect_eq(st.left_out_direct, 1);
	free(v);
}

Test(paging, refuses_bad_options)
{
	struct xsr_vload *v;
	uint32_t n;
	char err[256] = "";
	struct xsr_x86_vcpu r = vcpu(1 << 12);
	struct xsr_paging_opts o = {.reserved = 1};
	build(false);
	cr_expect_eq(xsr_paging_walk_opts(&r, &run, 1, rd, NULL, &o, &v, &n, NULL, err, sizeof(err)), XSR_E_INVAL);
	o = (struct xsr_paging_opts){.max_maps = XSR_MAX_RUNS + 1};
	cr_expect_eq(xsr_paging_walk_opts(&r, &run, 1, rd, NULL, &o, &v, &n, NULL, err, sizeof(err)), XSR_E_INVAL);
	o = (struct xsr_paging_opts){.skip_start = 2, .skip_end = 1};
	cr_expect_eq(xsr_paging_walk_opts(&r, &run, 1, rd, NULL, &o, &v, &n, NULL, err, sizeof(err)), XSR_E_INVAL);
}

Test(paging, looping_tables_end_at_the_leaf_budget)
{
	struct xsr_vload *v;
	uint32_t n;
	char err[256] = "";
	struct xsr_x86_vcpu r = vcpu(1 << 12);
	memset(mem, 0, sizeof(mem));
	for (unsigned i = 0; i < 512; i++) /* every entry at every level: the PML4 itself */
		pte(1, i, 1, P | RW, false);
	cr_expect_eq(xsr_paging_walk_opts(&r, &run, 1, rd, NULL, NULL, &v, &n, NULL, err, sizeof(err)), XSR_E_LIMIT);
	cr_expect(strstr(err, "more than 16777216 leaf entries") != NULL, "%s", err);
}
