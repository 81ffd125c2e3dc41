// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Write one of a pair of small images for tests/cli/verbs.sh (xsr diff):
 * the base, or with --variant the same image but for exactly three things:
 * one octet of pfn 0x42, vCPU 1's rip, and vCPU 0's MSR 0xc0000100.
 * --stream writes the streamed layout.  Memory: pfns 0..0xff and
 * 0x400..0x4ff, every sixteenth page zero.
 *
 *   usage: mkpair [--variant] [--stream] OUT
 */
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xsrelf/writer.h>

#define NPAGES 512

static uint8_t mem[NPAGES][4096];

int main(int argc, char **argv)
{
	int variant = 0, stream = 0, i;
	for (i = 1; i < argc - 1; i++) {
		if (!strcmp(argv[i], "--variant"))
			variant = 1;
		else if (!strcmp(argv[i], "--stream"))
			stream = 1;
		else
			break;
	}
	if (i != argc - 1) {
		fprintf(stderr, "usage: mkpair [--variant] [--stream] OUT\n");
		return 2;
	}
	static const struct xsr_memrun runs[2] = {{0, 256}, {0x400, 256}};
	static uint64_t pfns[NPAGES];
	static const void *ptrs[NPAGES];
	for (uint64_t k = 0; k < NPAGES; k++) {
		pfns[k] = k < 256 ? k : 0x400 + k - 256;
		ptrs[k] = mem[k];
		if (k % 16 != 15)
			for (int o = 0; o < 4096; o++)
				mem[k][o] = (uint8_t)(pfns[k] * 31 + o * 7 + 1);
	}
	if (variant)
		mem[0x42][100] ^= 0x80;
	struct xsr_writer_params p = {
	    .machine = EM_X86_64,
	    .kind = XSR_KIND_SAVE,
	    .nr_vcpus = 2,
	    .nr_runs = 2,
	    .runs = runs,
	    .hypervisor = "test",
	    .hypervisor_version = "mkpair",
	    .layout = stream ? XSR_LAYOUT_STREAM : XSR_LAYOUT_SEEKABLE,
	};
	char err[512];
	int fd = open(argv[i], O_RDWR | O_CREAT | O_TRUNC, 0644);
	struct xsr_writer *w;
	if (fd < 0 || xsr_writer_open(&w, fd, &p, err, sizeof(err)) < 0) {
		fprintf(stderr, "mkpair: %s: %s\n", argv[i], fd < 0 ? "cannot create" : err);
		return 1;
	}
	static const char cfg[] = "name = \"pair\"\n";
	if (xsr_writer_add(w, XSR_SEC_CONFIG, 0, cfg, sizeof(cfg) - 1) < 0 ||
	    xsr_writer_put_pages(w, pfns, NPAGES, ptrs) < 0)
		goto fail;
	struct xsr_vcpu_state *st = calloc(1, sizeof(*st));
	if (!st)
		goto fail;
	for (uint32_t v = 0; v < 2; v++) {
		memset(st, 0, sizeof(*st));
		st->r.vcpu_id = v;
		st->r.valid = XSR_VCPU_HAVE_SREGS | XSR_VCPU_HAVE_MSRS;
		st->r.rip = 0xffffffff81000000ull + v * 0x100 + (variant && v == 1 ? 0x10 : 0);
		st->r.cr0 = 0x80000011;
		st->r.cr3 = 0x1000;
		st->r.cr4 = 0x20;
		st->r.efer = 0xd01;
		st->r.nr_msrs = 2;
		st->msrs[0] = (struct xsr_msr){.index = 0xc0000080, .value = 0xd01};
		st->msrs[1] =
		    (struct xsr_msr){.index = 0xc0000100, .value = 0x7f00 + (variant && v == 0)};
		if (xsr_writer_set_vcpu(w, st) < 0)
			goto fail;
	}
	free(st);
	if (xsr_writer_close(w, err, sizeof(err)) < 0) {
		fprintf(stderr, "mkpair: %s\n", err);
		return 1;
	}
	return close(fd) < 0;
fail:
	fprintf(stderr, "mkpair: %s\n", xsr_writer_error(w));
	xsr_writer_abort(w);
	return 1;
}
