/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The xsrelf test guest: each vCPU counts and keeps a small working set of
 * pages filled with a pattern derived from its counter, checking the previous
 * pattern before writing the next one.  A save/restore that loses a page, a
 * register or a counter shows up as a non-zero guest_errors or a counter that
 * does not continue.
 *
 * The guest runs under KVM's instruction emulator on some hosts (~1 M
 * instructions/s), so one iteration is kept to roughly a thousand
 * instructions.  Build flags keep it to general-purpose registers.
 *
 * The data mode (guest_params, set by the VMM: `xsr vm start --fill F
 * --dirty-mbps N`): before its first count, vCPU 0 fills F of its memory
 * from 4 MiB up with non-zero, partly compressible pages (half a window
 * of its own code, half a PRNG stream), then, between counts, rewrites
 * them in turn at N MB/s of guest time (the TSC, at the rate the VMM
 * read from KVM).  So save, restore and migration can be measured on a
 * guest whose memory holds data and changes, dirtied by the guest itself
 * and seen in KVM's own dirty log.  Meant for native KVM: under the
 * emulator a large fill takes minutes.
 */
#include <stdint.h>

#define GUEST_WS_PAGES 4   /* working-set pages per vCPU */
#define GUEST_WS_STRIDE 16 /* check every 16th qword (128 octets) */
#define GUEST_PAGE_QWORDS 512

/* Read by the VMM (vmm/loader.c finds them in this ELF's symbol table). */
volatile uint64_t guest_counters[GUEST_MAX_VCPUS];
volatile uint64_t guest_errors;
volatile uint64_t guest_nr_counters = GUEST_MAX_VCPUS;

uint8_t guest_stacks[GUEST_MAX_VCPUS][8192] __attribute__((aligned(4096)));
static volatile uint64_t guest_ws[GUEST_MAX_VCPUS][GUEST_WS_PAGES][GUEST_PAGE_QWORDS]
    __attribute__((aligned(4096)));

/*
 * Written by the VMM after loading (vmm/loader.c finds the symbol); all
 * zero is the plain guest.  The state below the line lives in guest
 * memory, so a restored or migrated guest carries on where it was.
 */
struct guest_params {
	uint64_t fill_from;	/* guest-physical, 4 KiB aligned */
	uint64_t fill_pages;	/* pages filled with data; 0: none */
	uint64_t tsc_per_page;	/* TSC ticks per rewritten page; 0: no dirtying */
	uint64_t reserved;
	/* the guest's own */
	uint64_t filled;	/* the fill is done */
	uint64_t cursor;	/* next page to rewrite, 0..fill_pages-1 */
	uint64_t t0, written;	/* TSC at the start of the rate, pages since */
	uint64_t prng;
};
volatile struct guest_params guest_params;

extern const uint64_t guest_text_start[], guest_text_end[]; /* guest.ld */

void guest_main(uint64_t id);

/* A catch-up after a long pause (a save, a restore elsewhere) is capped. */
#define GUEST_MAX_BURST 4096u

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/* One data page: 2 KiB of code from a page-dependent offset, 2 KiB of PRNG. */
static void data_page(uint64_t n)
{
	volatile struct guest_params *gp = &guest_params;
	uint64_t *p = (uint64_t *)(GUEST_KERNEL_VMA + gp->fill_from + (n << 12));
	uint64_t ncode = (uint64_t)(guest_text_end - guest_text_start), c, x = gp->prng;

	if (ncode == 0)
		ncode = 1;
	c = (n * 37) % ncode;
	for (uint64_t w = 0; w < GUEST_PAGE_QWORDS / 2; w++) {
		p[w] = guest_text_start[c] | 1; /* never a zero page */
		if (++c == ncode)
			c = 0;
	}
	for (uint64_t w = GUEST_PAGE_QWORDS / 2; w < GUEST_PAGE_QWORDS; w++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[w] = x;
	}
	gp->prng = x;
}

static void fill_memory(void)
{
	volatile struct guest_params *gp = &guest_params;

	if (gp->prng == 0)
		gp->prng = UINT64_C(0x9e3779b97f4a7c15);
	for (uint64_t n = 0; n < gp->fill_pages; n++)
		data_page(n);
	gp->filled = 1;
}

static void dirty_due(void)
{
	volatile struct guest_params *gp = &guest_params;
	uint64_t now = rdtsc(), due;

	if (gp->t0 == 0 || now < gp->t0) { /* first call, or a TSC that went back */
		gp->t0 = now;
		gp->written = 0;
	}
	due = (now - gp->t0) / gp->tsc_per_page;
	if (due - gp->written > GUEST_MAX_BURST)
		gp->written = due - GUEST_MAX_BURST;
	while (gp->written < due) {
		data_page(gp->cursor);
		if (++gp->cursor >= gp->fill_pages)
			gp->cursor = 0;
		gp->written++;
	}
}

static inline uint64_t pattern(uint64_t id, uint64_t count, uint64_t page, uint64_t word)
{
	return (count * UINT64_C(0x9e3779b97f4a7c15)) ^ (id << 56) ^ (page << 48) ^ (word << 20);
}

static void fill(uint64_t id, uint64_t count)
{
	for (uint64_t p = 0; p < GUEST_WS_PAGES; p++)
		for (uint64_t w = 0; w < GUEST_PAGE_QWORDS; w += GUEST_WS_STRIDE)
			guest_ws[id][p][w] = pattern(id, count, p, w);
}

static uint64_t check(uint64_t id, uint64_t count)
{
	uint64_t bad = 0;

	for (uint64_t p = 0; p < GUEST_WS_PAGES; p++)
		for (uint64_t w = 0; w < GUEST_PAGE_QWORDS; w += GUEST_WS_STRIDE)
			if (guest_ws[id][p][w] != pattern(id, count, p, w))
				bad++;
	return bad;
}

void guest_main(uint64_t id)
{
	/*
	 * The count lives in a register between iterations and only reaches
	 * guest_counters[] after the pages hold its pattern: a restored guest
	 * checks pages saved at one instant against registers saved at the
	 * same instant.
	 */
	uint64_t count = guest_counters[id];
	int data = id == 0 && guest_params.fill_pages;

	if (data && !guest_params.filled)
		fill_memory();
	for (;;) {
		if (data && guest_params.tsc_per_page)
			dirty_due();
		if (count && check(id, count))
			__atomic_fetch_add(&guest_errors, 1, __ATOMIC_RELAXED);
		count++;
		fill(id, count);
		guest_counters[id] = count;
	}
}
