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

void guest_main(uint64_t id);

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

	for (;;) {
		if (count && check(id, count))
			__atomic_fetch_add(&guest_errors, 1, __ATOMIC_RELAXED);
		count++;
		fill(id, count);
		guest_counters[id] = count;
	}
}
