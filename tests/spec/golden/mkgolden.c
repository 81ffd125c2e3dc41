/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * How the golden images of tests/spec/golden/ were made, once, with the
 * format 1.0 writer.  They are committed; tests never run this.  A future
 * writer must keep producing images these readers accept, and every future
 * reader must keep reading these files (a format change bumps the version
 * and adds new goldens beside them; it never regenerates these).
 *
 *   cc -I libxsrelf/include tests/spec/golden/mkgolden.c lib/libxsrelf.a \
 *      -lelf -lxxhash -lzstd -llz4 -o mkgolden
 *   ./mkgolden seekable g.img; ./mkgolden stream g.stream
 *   ./mkgolden zstd g-zstd.stream; ./mkgolden lz4 g-lz4.stream
 *
 * The domain (tests/spec/golden.sh writes the same facts down by hand):
 *   two runs, pfn 0x0..0x7 and pfn 0x100..0x10b (20 pages);
 *   pfn 0x1: the text "golden page 1\n" repeated (compressible);
 *   pfn 0x2: every octet 0xff;  pfn 0x3: octet i = i & 0xff;
 *   pfn 0x100: put twice, first as 'A' * 4096, then 'B' * 4096 (last wins);
 *   pfn 0x10b: "xsrelf golden end\n" at offset 4000, zero elsewhere;
 *   every other page zero;
 *   one vCPU: rip 0xffffffff81000000, rsp 0x7000, rax 0x1122334455667788,
 *     cr3 0x1000, efer 0x500, 64 octets of XSAVE (octet i = 0x40 + i),
 *     2 MSRs (0xc0000100 = 0x12345678, 0xc0000102 = 0xfeedface00000000),
 *     no LAPIC;
 *   CONFIG: {"golden": 1}; a DOMCTX with one KVM_CLOCK descriptor
 *   (48 octets, octet i = i); VMCOREINFO "OSRELEASE=golden\nPAGESIZE=4096\n".
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xsrelf/xsrelf.h>
#include <xsrelf/vcpu.h>
#include <xsrelf/writer.h>

static uint8_t pg[4][4096];

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: mkgolden seekable|stream|zstd|lz4 OUT|-\n");
		return 2;
	}
	const char *what = argv[1];
	int fd = strcmp(argv[2], "-") ? open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0644) : 1;
	if (fd < 0) {
		perror(argv[2]);
		return 1;
	}
	static const struct xsr_memrun runs[2] = {{0, 8}, {0x100, 12}};
	static const char vmci[] = "OSRELEASE=golden\nPAGESIZE=4096\n";
	struct xsr_writer_params p = {
		.machine = 62, .kind = XSR_KIND_SAVE, .nr_vcpus = 1, .nr_runs = 2, .runs = runs,
		.hypervisor = "synthetic", .hypervisor_version = "golden 1.0",
		.vmcoreinfo = vmci, .vmcoreinfo_len = sizeof(vmci) - 1,
	};
	if (strcmp(what, "seekable"))
		p.layout = XSR_LAYOUT_STREAM;
	if (!strcmp(what, "zstd"))
		p.compress = XSR_COMPRESS_ZSTD;
	else if (!strcmp(what, "lz4"))
		p.compress = XSR_COMPRESS_LZ4;
	else if (strcmp(what, "seekable") && strcmp(what, "stream"))
		return 2;
	struct xsr_writer *w;
	char err[256];
	if (xsr_writer_open(&w, fd, &p, err, sizeof(err)) < 0) {
		fprintf(stderr, "open: %s\n", err);
		return 1;
	}
	static const char t1[] = "golden page 1\n";
	for (int i = 0; i < 4096; i++) {
		pg[0][i] = (uint8_t)t1[i % (sizeof(t1) - 1)];
		pg[1][i] = 0xff;
		pg[2][i] = (uint8_t)i;
	}
	uint64_t pfns[3] = {1, 2, 3};
	const void *pages[3] = {pg[0], pg[1], pg[2]};
	int rc = xsr_writer_put_pages(w, pfns, 3, pages);
	memset(pg[3], 'A', 4096);
	uint64_t p100 = 0x100;
	const void *pa = pg[3];
	rc = rc < 0 ? rc : xsr_writer_put_pages(w, &p100, 1, &pa);
	memset(pg[3], 'B', 4096);
	rc = rc < 0 ? rc : xsr_writer_put_pages(w, &p100, 1, &pa);
	memset(pg[3], 0, 4096);
	memcpy(pg[3] + 4000, "xsrelf golden end\n", 18);
	uint64_t p10b = 0x10b;
	rc = rc < 0 ? rc : xsr_writer_put_pages(w, &p10b, 1, &pa);

	static struct xsr_vcpu_state st;
	st.r.vcpu_id = 0;
	st.r.valid = XSR_VCPU_HAVE_SREGS | XSR_VCPU_HAVE_XSAVE | XSR_VCPU_HAVE_MSRS;
	st.r.gpr[XSR_RAX] = 0x1122334455667788ull;
	st.r.gpr[XSR_RSP] = 0x7000;
	st.r.rip = 0xffffffff81000000ull;
	st.r.rflags = 0x2;
	st.r.cr0 = 0x80050033;
	st.r.cr3 = 0x1000;
	st.r.cr4 = 0x20;
	st.r.efer = 0x500;
	st.r.xcr0 = 0x3;
	st.r.cs.selector = 0x10;
	st.r.cs.attr = 0x29b;
	st.r.xsave_len = 64;
	for (int i = 0; i < 64; i++)
		st.xsave[i] = (uint8_t)(0x40 + i);
	st.r.nr_msrs = 2;
	st.msrs[0].index = 0xc0000100;
	st.msrs[0].value = 0x12345678;
	st.msrs[1].index = 0xc0000102;
	st.msrs[1].value = 0xfeedface00000000ull;
	rc = rc < 0 ? rc : xsr_writer_set_vcpu(w, &st);

	static const char cfg[] = "{\"golden\": 1}";
	rc = rc < 0 ? rc : xsr_writer_add(w, XSR_SEC_CONFIG, 0, cfg, sizeof(cfg) - 1);
	uint8_t dc[16 + 48] = {0};
	struct xsr_domctx_desc d = {.typecode = XSR_DC_KVM_CLOCK, .vcpu_id = XSR_DOMCTX_ALL_VCPUS, .length = 48};
	memcpy(dc, &d, sizeof(d));
	for (int i = 0; i < 48; i++)
		dc[16 + i] = (uint8_t)i;
	rc = rc < 0 ? rc : xsr_writer_add(w, XSR_SEC_DOMCTX, 0, dc, sizeof(dc));
	if (rc < 0) {
		fprintf(stderr, "write: %s\n", xsr_writer_error(w));
		xsr_writer_abort(w);
		return 1;
	}
	if (xsr_writer_close(w, err, sizeof(err)) < 0) {
		fprintf(stderr, "close: %s\n", err);
		return 1;
	}
	return 0;
}
