/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xsr info: describe any image, for people or (--json) for scripts. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xsrelf/qemu.h>
#include <xsrelf/xen.h>
#include <xsrelf/xenstore.h>

#include "cli.h"
#include "scan.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: xsr info [--json] [--vcpu N] FILE\n\n"
		   "Describe an xsrelf image (seekable or streamed; '-' reads a stream from stdin):\n"
		   "layout, vCPUs, populated and zero pages, sections, segments, producer.\n"
		   "--vcpu N prints vCPU N's full state (registers, segments, control and debug\n"
		   "registers, MSRs, and the x87/SSE registers when the source carried them)\n"
		   "instead.\n"
		   XSR_COMMON_HELP);
}

static const char *seg_names[] = {"cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"};
static const char *gpr_names[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
				  "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};

/* The legacy FXSAVE image's fields (Intel SDM vol. 1, table 10-2; little-endian). */
struct fpu {
	uint16_t fcw, fsw, exp[8];
	uint8_t ftw;
	uint32_t mxcsr;
	uint64_t mant[8], xmm[16][2];
};

static void fpu_of(const struct xsr_x86_vcpu *r, struct fpu *f)
{
	const uint8_t *fx = r->fxsave;
	memcpy(&f->fcw, fx, 2);
	memcpy(&f->fsw, fx + 2, 2);
	f->ftw = fx[4];
	memcpy(&f->mxcsr, fx + 24, 4);
	for (int i = 0; i < 8; i++) {
		memcpy(&f->mant[i], fx + 32 + 16 * i, 8);
		memcpy(&f->exp[i], fx + 40 + 16 * i, 2);
	}
	for (int i = 0; i < 16; i++)
		memcpy(f->xmm[i], fx + 160 + 16 * i, 16);
}

static void print_vcpu(const struct xsr_vcpu_state *v, int json)
{
	const struct xsr_x86_vcpu *r = &v->r;
	const struct xsr_x86_segment *seg[] = {&r->cs, &r->ds, &r->es, &r->fs, &r->gs, &r->ss, &r->tr, &r->ldt};
	if (json) {
		/* Registers are 64-bit: "0x..." strings (xsr(1), JSON OUTPUT). */
		printf("{\"vcpu\": %u, \"valid\": %u", r->vcpu_id, r->valid);
		for (int i = 0; i < 16; i++)
			printf(", \"%s\": %s", gpr_names[i], cli_jhex(r->gpr[i]));
		printf(", \"rip\": %s, \"rflags\": %s, \"cr0\": %s, \"cr2\": %s, \"cr3\": %s, \"cr4\": %s, \"cr8\": %s, \"efer\": %s, \"apic_base\": %s, \"xcr0\": %s",
		       cli_jhex(r->rip), cli_jhex(r->rflags), cli_jhex(r->cr0), cli_jhex(r->cr2), cli_jhex(r->cr3),
		       cli_jhex(r->cr4), cli_jhex(r->cr8), cli_jhex(r->efer), cli_jhex(r->apic_base), cli_jhex(r->xcr0));
		printf(", \"segments\": {");
		for (int i = 0; i < 8; i++)
			printf("%s\"%s\": {\"selector\": %u, \"base\": %s, \"limit\": %u, \"attr\": %u}", i ? ", " : "",
			       seg_names[i], seg[i]->selector, cli_jhex(seg[i]->base), seg[i]->limit, seg[i]->attr);
		printf("}, \"gdt\": {\"base\": %s, \"limit\": %u}, \"idt\": {\"base\": %s, \"limit\": %u}",
		       cli_jhex(r->gdt.base), r->gdt.limit, cli_jhex(r->idt.base), r->idt.limit);
		printf(", \"dr\": [");
		for (int i = 0; i < 8; i++)
			printf("%s%s", i ? ", " : "", cli_jhex(r->dr[i]));
		printf("], \"mp_state\": %u, \"xsave_len\": %u, \"lapic_len\": %u, \"nr_msrs\": %u, \"msrs\": {", r->mp_state,
		       r->xsave_len, r->lapic_len, r->nr_msrs);
		for (uint32_t i = 0; i < r->nr_msrs; i++)
			printf("%s\"0x%x\": %s", i ? ", " : "", v->msrs[i].index, cli_jhex(v->msrs[i].value));
		printf("}");
		if (r->valid & XSR_VCPU_HAVE_FPU) {
			struct fpu f;
			fpu_of(r, &f);
			printf(", \"fpu\": {\"fcw\": %u, \"fsw\": %u, \"ftw\": %u, \"mxcsr\": %u, \"st\": [", f.fcw, f.fsw, f.ftw,
			       f.mxcsr);
			for (int i = 0; i < 8; i++)
				printf("%s{\"mantissa\": %s, \"exponent\": %u}", i ? ", " : "", cli_jhex(f.mant[i]), f.exp[i]);
			printf("], \"xmm\": [");
			for (int i = 0; i < 16; i++)
				printf("%s\"0x%016llx%016llx\"", i ? ", " : "", (unsigned long long)f.xmm[i][1],
				       (unsigned long long)f.xmm[i][0]);
			printf("]}");
		}
		printf("}\n");
		return;
	}
	printf("vCPU %u (valid 0x%x)\n", r->vcpu_id, r->valid);
	for (int i = 0; i < 16; i++)
		printf("  %-6s 0x%016llx%s", gpr_names[i], (unsigned long long)r->gpr[i], i % 4 == 3 ? "\n" : "");
	printf("  rip    0x%016llx  rflags 0x%016llx\n", (unsigned long long)r->rip, (unsigned long long)r->rflags);
	printf("  cr0    0x%016llx  cr2    0x%016llx  cr3    0x%016llx\n", (unsigned long long)r->cr0,
	       (unsigned long long)r->cr2, (unsigned long long)r->cr3);
	printf("  cr4    0x%016llx  cr8    0x%016llx  efer   0x%016llx\n", (unsigned long long)r->cr4,
	       (unsigned long long)r->cr8, (unsigned long long)r->efer);
	printf("  apic_base 0x%llx  xcr0 0x%llx  mp_state %u\n", (unsigned long long)r->apic_base,
	       (unsigned long long)r->xcr0, r->mp_state);
	for (int i = 0; i < 8; i++)
		printf("  %-3s sel 0x%04x base 0x%016llx limit 0x%08x attr 0x%04x\n", seg_names[i], seg[i]->selector,
		       (unsigned long long)seg[i]->base, seg[i]->limit, seg[i]->attr);
	printf("  gdt base 0x%016llx limit 0x%x   idt base 0x%016llx limit 0x%x\n", (unsigned long long)r->gdt.base,
	       r->gdt.limit, (unsigned long long)r->idt.base, r->idt.limit);
	printf("  dr0-3 0x%llx 0x%llx 0x%llx 0x%llx  dr6 0x%llx  dr7 0x%llx\n", (unsigned long long)r->dr[0],
	       (unsigned long long)r->dr[1], (unsigned long long)r->dr[2], (unsigned long long)r->dr[3],
	       (unsigned long long)r->dr[6], (unsigned long long)r->dr[7]);
	if (r->valid & XSR_VCPU_HAVE_FPU) {
		struct fpu f;
		fpu_of(r, &f);
		printf("  fcw 0x%04x  fsw 0x%04x (top %u)  ftw 0x%02x  mxcsr 0x%08x\n", f.fcw, f.fsw, (f.fsw >> 11) & 7, f.ftw,
		       f.mxcsr);
		for (int i = 0; i < 8; i++)
			printf("  st%d 0x%04x %016llx%s", i, f.exp[i], (unsigned long long)f.mant[i], i % 2 ? "\n" : "");
		for (int i = 0; i < 16; i++)
			printf("  xmm%-2d %016llx%016llx%s", i, (unsigned long long)f.xmm[i][1], (unsigned long long)f.xmm[i][0],
			       i % 2 ? "\n" : "");
	}
	printf("  xsave %u octets, lapic %u octets, %u MSRs\n", r->xsave_len, r->lapic_len, r->nr_msrs);
	for (uint32_t i = 0; i < r->nr_msrs; i++)
		printf("    msr 0x%08x = 0x%016llx\n", v->msrs[i].index, (unsigned long long)v->msrs[i].value);
}

static void print_xen(const struct scan *s, int json);

/*
 * The domain's xenstore subtree: its size in text, every node in JSON (a
 * value holding a NUL as value_hex).  The reader validated the body.
 */
static void print_xenstore(const struct scan *s, int json)
{
	struct xsr_xs_iter it;
	struct xsr_xs_entry e;
	char err[256];
	uint32_t nodes = 0;
	uint64_t octets = 0;
	if (xsr_xs_check(s->xenstore, s->xenstore_len, &nodes, &octets, err, sizeof(err)) < 0 ||
	    xsr_xs_iter_init(&it, s->xenstore, s->xenstore_len, err, sizeof(err)) < 0)
		return;
	if (!json) {
		printf("xenstore:   %u keys, %llu octets of values (the domain's subtree; --json lists them)\n", nodes,
		       (unsigned long long)octets);
		return;
	}
	printf(", \"xenstore\": {\"domid\": %u, \"keys\": %u, \"value_octets\": %s, \"nodes\": [", it.domid, nodes,
	       cli_jdec(octets));
	for (uint32_t n = 0; xsr_xs_iter_next(&it, &e, err, sizeof(err)) == 1; n++) {
		printf("%s{\"path\": ", n ? ", " : "");
		cli_json_strn(stdout, e.path, e.path_len);
		if (memchr(e.value, 0, e.value_len)) {
			printf(", \"value\": null, \"value_hex\": \"");
			for (uint32_t i = 0; i < e.value_len; i++)
				printf("%02x", (unsigned char)e.value[i]);
			printf("\"");
		} else {
			printf(", \"value\": ");
			cli_json_strn(stdout, e.value, e.value_len);
		}
		printf(", \"perms\": [");
		for (uint32_t i = 0; i < e.nr_perms; i++) {
			struct xsr_xs_perm p;
			xsr_xs_perm_get(&e, i, &p);
			printf("%s{\"domid\": %u, \"perm\": \"%s\"}", i ? ", " : "", p.domid,
			       p.perm == 3 ? "rw" : p.perm == 2 ? "w" : p.perm == 1 ? "r" : "n");
		}
		printf("]}");
	}
	printf("]}");
}

/*
 * Everything the text shows, and more: 64-bit values as strings (xsr(1),
 * JSON OUTPUT), section names as the seekable layout has them for both
 * layouts, the whole config.
 */
static void print_json(const char *file, const struct scan *s)
{
	printf("{\"file\": ");
	cli_json_str(stdout, file);
	printf(", \"layout\": \"%s\", \"kind\": \"%s\", \"format_version\": \"%u.%u\", \"flags\": %u, \"vcpus\": %u, \"pages\": %s, \"zero_pages\": %s, \"data_pages\": %s, \"paging_view\": %s",
	       s->layout == XSR_LAYOUT_SEEKABLE ? "seekable" : "stream", cli_kind_name(s->fh.kind), s->fh.version_major,
	       s->fh.version_minor, s->fh.flags, s->fh.nr_vcpus, cli_jdec(s->fh.nr_pages), cli_jdec(s->zero_pages),
	       cli_jdec(s->data_pages), s->fh.flags & XSR_FF_PAGING_VIEW ? "true" : "false");
	if (s->have_producer) {
		printf(", \"producer\": {\"name\": ");
		cli_json_strn(stdout, s->producer.producer, sizeof(s->producer.producer));
		printf(", \"version\": ");
		cli_json_strn(stdout, s->producer.producer_version_str, sizeof(s->producer.producer_version_str));
		printf(", \"hypervisor\": ");
		cli_json_strn(stdout, s->producer.hypervisor, sizeof(s->producer.hypervisor));
		printf(", \"hypervisor_version\": ");
		cli_json_strn(stdout, s->producer.hypervisor_version, sizeof(s->producer.hypervisor_version));
		printf(", \"host\": ");
		cli_json_strn(stdout, s->producer.host, sizeof(s->producer.host));
		printf(", \"producer_version\": %s}", cli_jhex(s->producer.producer_version));
	}
	printf(", \"memory_runs\": [");
	for (uint32_t i = 0; i < s->nruns; i++)
		printf("%s{\"pfn\": %s, \"last\": %s, \"count\": %s}", i ? ", " : "", cli_jhex(s->runs[i].pfn),
		       cli_jhex(s->runs[i].pfn + s->runs[i].count - 1), cli_jdec(s->runs[i].count));
	printf("], \"sections\": [");
	for (uint32_t i = 0; i < s->nsecs; i++) {
		const struct scan_sec *x = &s->secs[i];
		const char *t = xsr_section_name(x->sh_type);
		printf("%s{\"name\": ", i ? ", " : "");
		cli_json_strn(stdout, x->name, sizeof(x->name));
		printf(", \"type\": %u, \"type_name\": ", x->sh_type);
		cli_json_str(stdout, t ? t : "unknown");
		printf(", \"code\": %d, \"vcpu\": ", x->code == UINT32_MAX ? -1 : (int)x->code);
		if (x->code == XSR_SEC_VCPU)
			printf("%u", x->info);
		else
			printf("null");
		printf(", \"offset\": %s, \"size\": %s, \"info\": %u}", cli_jhex(x->offset), cli_jdec(x->size), x->info);
	}
	printf("], \"page_records\": %s, \"config\": ", cli_jdec(s->page_records));
	if (s->config)
		cli_json_str(stdout, s->config);
	else
		printf("null");
	if (s->xenstore)
		print_xenstore(s, 1);
	if (s->nxen)
		print_xen(s, 1);
	printf("}\n");
}

static const char *xen_origin(uint16_t o)
{
	static const char *const n[] = {"?",           "xl header", "libxl header", "libxl",   "libxc header",
					"libxc",       "xc_core",   "qemu header",  "qemu",    "qemu ram",
					"libvirt header", "qemu dump"};
	return o < sizeof(n) / sizeof(n[0]) ? n[o] : "?";
}

static const char *xen_item(const struct scan *s, uint32_t i, char *buf, size_t len)
{
	uint16_t o = s->xen[i].origin;
	uint32_t t = s->xen[i].type;
	if (s->xen[i].flags & XSR_PT_PAGES)
		return "[pages]";
	if (o == XSR_PT_ORIGIN_LIBXL_RECORD)
		return xsr_xen_libxl_rec_name(t);
	if (o == XSR_PT_ORIGIN_LIBXC_RECORD)
		return xsr_xen_libxc_rec_name(s->xen_libxc_version, t);
	if (o == XSR_PT_ORIGIN_XC_CORE) {
		snprintf(buf, len, "section %u", t);
		return buf;
	}
	if (o == XSR_PT_ORIGIN_QEMU_SECTION)
		return xsr_qemu_section_name(t);
	if (o == XSR_PT_ORIGIN_QEMU_RAM)
		return t ? "block" : "setup";
	if (o == XSR_PT_ORIGIN_QEMU_DUMP)
		return t ? "note" : "header";
	return xen_origin(o);
}

/* "libxc: PV_INFO, X86_CPUID_POLICY, [pages], VCPU_BASIC x2, END" */
static void print_xen(const struct scan *s, int json)
{
	static const char *const types[16] = {"NOTAB", "L1TAB", "L2TAB", "L3TAB", "L4TAB", "type5", "type6", "type7",
					      "pinned", "L1TAB|pinned", "L2TAB|pinned", "L3TAB|pinned", "L4TAB|pinned",
					      "BROKEN", "XALLOC", "XTAB"};
	char b1[32], b2[32];
	if (json) {
		printf(", \"xen_source\": [");
		for (uint32_t i = 0; i < s->nxen; i++) {
			printf("%s{\"origin\": ", i ? ", " : "");
			cli_json_str(stdout, xen_origin(s->xen[i].origin));
			printf(", \"record\": ");
			cli_json_str(stdout, xen_item(s, i, b1, sizeof(b1)));
			printf(", \"type\": %u}", s->xen[i].type);
		}
		printf("], \"xen_libxc_version\": %u, \"xen_page_types\": {", s->xen_libxc_version);
		for (int t = 0, first = 1; t < 16; t++)
			if (s->xen_types[t]) {
				printf("%s\"%s\": %s", first ? "" : ", ", types[t], cli_jdec(s->xen_types[t]));
				first = 0;
			}
		printf("}");
		return;
	}
	printf("%s source: %u items kept verbatim\n", s->xen[0].origin >= XSR_PT_ORIGIN_QEMU_HEADER ? "qemu" : "xen",
	       s->nxen);
	if (s->xen_libxc_version)
		printf("  libxc stream version %u\n", s->xen_libxc_version);
	uint16_t cur = 0;
	for (uint32_t i = 0; i < s->nxen;) {
		uint32_t n = 1;
		const char *nm = xen_item(s, i, b1, sizeof(b1));
		while (i + n < s->nxen && s->xen[i + n].origin == s->xen[i].origin &&
		       !strcmp(xen_item(s, i + n, b2, sizeof(b2)), nm))
			n++;
		if (s->xen[i].origin != cur) {
			printf("%s  %s:", cur ? "\n" : "", xen_origin(s->xen[i].origin));
			cur = s->xen[i].origin;
		}
		printf(" %s", nm);
		if (n > 1)
			printf(" x%u", n);
		i += n;
	}
	if (s->nxen)
		printf("\n");
	int any = 0;
	for (int t = 1; t < 16; t++)
		any |= s->xen_types[t] != 0;
	if (any) {
		printf("  pages by Xen type:");
		for (int t = 0; t < 16; t++)
			if (s->xen_types[t])
				printf(" %s %llu", types[t], (unsigned long long)s->xen_types[t]);
		printf("\n");
	}
}

/* Every string that came from the image goes through cli_esc(): it may hold terminal escapes. */
#define P(field) cli_esc(s->producer.field, sizeof(s->producer.field))

/*
 * The VMCOREINFO section's size, and where it came from when the image's
 * CONFIG says (a QEMU import's "vmcoreinfo": "..." string, a dump-guest-memory
 * import's "vmcoreinfo_from": "..."; docs/qemu-compat.md);
 * nothing when the image has neither.
 */
static void print_vmcoreinfo(const struct scan *s)
{
	static const char key[] = "\"vmcoreinfo\": \"", key2[] = "\"vmcoreinfo_from\": \"";
	const char *from = s->config ? strstr(s->config, key) : NULL;
	char src[300] = "";
	if (!from && s->config && (from = strstr(s->config, key2)))
		from += sizeof(key2) - sizeof(key);
	if (from) {
		from += sizeof(key) - 1;
		const char *end = strchr(from, '"');
		size_t n = end ? (size_t)(end - from) : strlen(from);
		cli_esc_to(src, sizeof(src), from, n < sizeof(src) - 1 ? n : sizeof(src) - 1, 0);
	}
	for (uint32_t i = 0; i < s->nsecs; i++)
		if (s->secs[i].code == XSR_SEC_VMCOREINFO) {
			printf("vmcoreinfo: %llu octets%s%s\n", (unsigned long long)s->secs[i].size, *src ? ", from " : "", src);
			return;
		}
	if (*src)
		printf("vmcoreinfo: %s\n", src);
}

static void print_text(const char *file, const struct scan *s)
{
	printf("file:       %s\n", cli_esc(file, SIZE_MAX));
	printf("layout:     %s%s\n", s->layout == XSR_LAYOUT_SEEKABLE ? "seekable (ELF core)" : "stream",
	       s->fh.flags & XSR_FF_PAGING_VIEW ? ", paging view" : "");
	printf("kind:       %s\n", cli_kind_name(s->fh.kind));
	printf("format:     %u.%u\n", s->fh.version_major, s->fh.version_minor);
	if (s->have_producer)
		printf("producer:   %s %s on '%s'; hypervisor %s %s\n", P(producer), P(producer_version_str), P(host),
		       P(hypervisor), P(hypervisor_version));
	printf("vcpus:      %u\n", s->fh.nr_vcpus);
	printf("pages:      %llu populated (%llu MiB), %llu with data, %llu zero\n", (unsigned long long)s->fh.nr_pages,
	       (unsigned long long)(s->fh.nr_pages >> 8), (unsigned long long)s->data_pages, (unsigned long long)s->zero_pages);
	printf("memory:     %u run(s)\n", s->nruns);
	for (uint32_t i = 0; i < s->nruns && i < 32; i++)
		printf("  pfn 0x%09llx..0x%09llx  (%llu pages)\n", (unsigned long long)s->runs[i].pfn,
		       (unsigned long long)(s->runs[i].pfn + s->runs[i].count - 1), (unsigned long long)s->runs[i].count);
	printf("sections:   %u%s\n", s->nsecs, s->layout == XSR_LAYOUT_STREAM ? " records (page batches not listed)" : "");
	printf("  %-16s %-10s %-6s %18s %14s\n", "name", "type", "vcpu", s->layout == XSR_LAYOUT_STREAM ? "stream offset" : "offset", "size");
	for (uint32_t i = 0; i < s->nsecs; i++) {
		const struct scan_sec *x = &s->secs[i];
		const char *t = xsr_section_name(x->sh_type);
		char vc[16] = "-";
		if (x->code == XSR_SEC_VCPU)
			snprintf(vc, sizeof(vc), "%u", x->info);
		printf("  %-16s %-10s %-6s 0x%016llx %14llu\n", cli_esc(x->name, sizeof(x->name)), t ? t : "unknown", vc, (unsigned long long)x->offset,
		       (unsigned long long)x->size);
	}
	if (s->layout == XSR_LAYOUT_STREAM)
		printf("page records: %llu\n", (unsigned long long)s->page_records);
	if (s->config) {
		char cfg[1024];
		size_t n = cli_esc_to(cfg, sizeof(cfg), s->config, 200, 1);
		printf("config:     %s%s", cfg, n && cfg[n - 1] == '\n' ? "" : "\n");
	}
	print_vmcoreinfo(s);
	if (s->xenstore)
		print_xenstore(s, 0);
	if (s->nxen)
		print_xen(s, 0);
}

int cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, 0, 'j'}, {"vcpu", required_argument, 0, 'n'}, {"help", no_argument, 0, 'h'},
		XSR_COMMON_OPTS, {0, 0, 0, 0}};
	int json = 0, c;
	struct scan s;
	memset(&s, 0, sizeof(s));
	s.want_vcpu = -1;
	s.want_pfn = -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "hj" XSR_COMMON_SHORT, opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 'n': {
			uint32_t v;
			if (cli_parse_vcpu("info", "--vcpu", optarg, &v) < 0)
				return XSR_EXIT_USAGE;
			s.want_vcpu = (int)v;
			break;
		}
		case 'h': usage(stdout); return XSR_EXIT_OK;
		default:
			if (cli_common_opt(c))
				break;
			usage(stderr);
			return XSR_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return XSR_EXIT_USAGE;
	}
	const char *file = argv[optind];
	int fd = cli_open_in("info", file);
	if (fd < 0)
		return XSR_EXIT_FAIL;
	char err[1024] = "";
	int rc = cli_scan(fd, &s, err, sizeof(err));
	if (fd != STDIN_FILENO)
		close(fd);
	if (rc < 0) {
		cli_err("info", "%s: %s", file, err);
		cli_scan_free(&s);
		return XSR_EXIT_FAIL;
	}
	cli_detail("info", "%s: %s layout, %llu pages, %u sections", file,
		   s.layout == XSR_LAYOUT_SEEKABLE ? "seekable" : "streamed", (unsigned long long)s.fh.nr_pages, s.nsecs);
	if (s.want_vcpu >= 0)
		print_vcpu(s.vcpu, json);
	else if (json)
		print_json(file, &s);
	else
		print_text(file, &s);
	cli_scan_free(&s);
	return XSR_EXIT_OK;
}
