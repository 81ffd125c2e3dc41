// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Write a small core whose memory holds hand-built x86-64 page tables, for
 * tests/gdb/gdb-scripts.sh (and core/paging.c's tests).  vCPU 0 uses 4-level
 * paging from CR3 0x1000, vCPU 1 5-level paging (CR4.LA57) from CR3 0xa000.
 * The mappings, and what a walk of each must give, are listed in
 * tests/gdb/gdb-scripts.sh; keep the two in step.
 *
 *   usage: mkpt OUT
 */
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xsrelf/writer.h>

#define NPAGES 2048 /* 8 MiB of guest memory, pfn 0..2047 */
#define P 0x1ull
#define RW 0x2ull
#define US 0x4ull
#define PS 0x80ull
#define NX (1ull << 63)

static uint8_t mem[NPAGES][4096];

static void pte(uint64_t table, unsigned idx, uint64_t val)
{
	memcpy(&mem[table >> 12][idx * 8], &val, 8);
}

static unsigned ix(uint64_t va, int shift)
{
	return (unsigned)(va >> shift) & 511;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: mkpt OUT\n");
		return 2;
	}
	/* Data: pfn 5 and the 2 MiB page at 0x200000 carry recognisable bytes. */
	for (int i = 0; i < 4096; i++)
		mem[5][i] = (uint8_t)(i ^ 0x5a);
	for (int pg = 0x200; pg < 0x400; pg++)
		for (int i = 0; i < 4096; i++)
			mem[pg][i] = (uint8_t)(pg + i * 7);

	/* 4-level, PML4 at 0x1000. */
	const uint64_t va4k = 0x00007f0000001000ull, va2m = 0xffff888000200000ull,
		       va1g = 0xffffffff80000000ull, vabad = 0x00007f0000200000ull;
	pte(0x1000, ix(va4k, 39), 0x2000 | P | RW | US);
	pte(0x2000, ix(va4k, 30), 0x3000 | P | RW | US);
	pte(0x3000, ix(va4k, 21), 0x4000 | P | RW | US);
	pte(0x4000, ix(va4k, 12), 0x5000 | P | US);     /* 4 KiB, read-only user */
	/* PT index 2 (va 0x7f0000002000) stays non-present. */
	pte(0x3000, ix(vabad, 21), 0x7ff00000 | P | RW); /* table beyond guest memory */
	pte(0x1000, ix(va2m, 39), 0x6000 | P | RW);
	pte(0x6000, ix(va2m, 30), 0x7000 | P | RW);
	pte(0x7000, ix(va2m, 21), 0x200000 | P | RW | PS); /* 2 MiB */
	pte(0x1000, ix(va1g, 39), 0x8000 | P | RW);
	pte(0x8000, ix(va1g, 30), 0x0 | P | RW | PS | NX); /* 1 GiB, NX */
	pte(0x1000, 100, 0x1000 | P | RW);                 /* self-reference: a loop */

	/* 5-level, PML5 at 0xa000 -> PML4 at 0xb000 -> the 4-level PDPT above. */
	const uint64_t va5 = 0x00f07f0000001000ull;
	pte(0xa000, ix(va5, 48), 0xb000 | P | RW | US);
	pte(0xb000, ix(va5, 39), 0x2000 | P | RW | US);

	struct xsr_memrun run = {0, NPAGES};
	struct xsr_writer_params p = {
		.machine = EM_X86_64, .kind = XSR_KIND_CORE, .nr_vcpus = 2, .nr_runs = 1,
		.runs = &run, .hypervisor = "test", .hypervisor_version = "mkpt",
	};
	char err[512];
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	struct xsr_writer *w;
	if (fd < 0 || xsr_writer_open(&w, fd, &p, err, sizeof(err)) < 0) {
		fprintf(stderr, "mkpt: %s: %s\n", argv[1], fd < 0 ? "cannot create" : err);
		return 1;
	}
	static uint64_t pfns[NPAGES];
	static const void *ptrs[NPAGES];
	for (uint64_t i = 0; i < NPAGES; i++) {
		pfns[i] = i;
		ptrs[i] = mem[i];
	}
	if (xsr_writer_put_pages(w, pfns, NPAGES, ptrs) < 0)
		goto fail;
	struct xsr_vcpu_state *st = calloc(1, sizeof(*st));
	if (!st)
		goto fail;
	for (uint32_t v = 0; v < 2; v++) {
		memset(&st->r, 0, sizeof(st->r));
		st->r.vcpu_id = v;
		st->r.valid = XSR_VCPU_HAVE_SREGS;
		st->r.rip = v ? va5 : va4k;
		st->r.cr0 = 0x80000011;                      /* PG | ET | PE */
		st->r.cr3 = v ? 0xa000 : 0x1000;
		st->r.cr4 = 0x20 | (v ? 0x1000 : 0);          /* PAE, LA57 for vCPU 1 */
		st->r.efer = 0xd01;                           /* SCE LME LMA NXE */
		st->r.cs = (struct xsr_x86_segment){0, 0xffffffff, 0x10, 0x0a9b};
		if (xsr_writer_set_vcpu(w, st) < 0)
			goto fail;
	}
	free(st);
	if (xsr_writer_close(w, err, sizeof(err)) < 0) {
		fprintf(stderr, "mkpt: %s\n", err);
		return 1;
	}
	return close(fd) < 0;
fail:
	fprintf(stderr, "mkpt: %s\n", xsr_writer_error(w));
	xsr_writer_abort(w);
	return 1;
}
