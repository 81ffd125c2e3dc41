/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xsr diff: which pages, vCPU fields and sections differ between two images
 * of any layout.  Exit status as cmp(1): 0 same content, 1 differences, 2
 * usage, 3 trouble.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xsrelf/io.h>

#include "cli.h"
#include "inspect.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: xsr diff [--json] [--limit N] [--quiet | --verbose] A B\n\n"
		   "Compare the content of two images, seekable or streamed, compressed or not\n"
		   "('-' reads one of them from standard input): the header (kind, flags,\n"
		   "vCPUs, pages), the guest pages (ranges of pfns that differ or that only\n"
		   "one image holds), every field of every vCPU by name (rip, cr3, cs.base,\n"
		   "msr 0xc0000080, xsave...), and the other sections (config, p2m, producer,\n"
		   "...).  What the layout alone decides (index, integrity, notes, string\n"
		   "table, offsets, compression) is not compared.  Pages compare by the\n"
		   "XXH3-64 checksums of the index.  --limit lists at most N page ranges;\n"
		   "--quiet (or -s, as cmp) prints nothing and stops at the first difference.\n"
		   "Exit 0: same content.  1: differences.  2: usage.  3: an image could not\n"
		   "be read (damaged, truncated, missing).\n");
}

enum kind { SAME, DIFFER, ONLY_A, ONLY_B };
static const char *const kind_text[] = {
    [DIFFER] = "differ", [ONLY_A] = "only in A", [ONLY_B] = "only in B"};
static const char *const kind_json[] = {
    [DIFFER] = "differ", [ONLY_A] = "only_a", [ONLY_B] = "only_b"};

struct diff {
	struct xsr_image *a, *b;
	int fd_a, fd_b;
	int json, quiet;
	uint64_t limit;
	bool any;  /* a difference was found */
	int items; /* items printed in the current JSON array */
	/* the page range being grown */
	enum kind kind;
	uint64_t first, count;
	uint64_t ranges, listed, pages[4];
	uint64_t vcpu_fields, sections, header;
};

/* --quiet needs only the exit status: the first difference ends the comparison. */
static bool done(const struct diff *d)
{
	return d->quiet && d->any;
}

static void sep(struct diff *d)
{
	if (d->items++)
		printf(", ");
}

/* ---------------- header ---------------- */

static void header_field(struct diff *d, const char *name, uint64_t a, uint64_t b)
{
	if (a == b)
		return;
	d->any = true;
	d->header++;
	if (d->quiet)
		return;
	if (d->json) {
		sep(d);
		printf("{\"field\": \"%s\", \"a\": ", name);
		cli_json_hex(stdout, a);
		printf(", \"b\": ");
		cli_json_hex(stdout, b);
		printf("}");
	} else {
		printf("header %s: 0x%llx | 0x%llx\n", name, (unsigned long long)a,
		       (unsigned long long)b);
	}
}

static void diff_header(struct diff *d)
{
	const struct xsr_file_header *a = xsr_image_header(d->a), *b = xsr_image_header(d->b);
	header_field(d, "kind", a->kind, b->kind);
	header_field(d, "flags", a->flags, b->flags);
	header_field(d, "nr_vcpus", a->nr_vcpus, b->nr_vcpus);
	header_field(d, "nr_pages", a->nr_pages, b->nr_pages);
}

/* ---------------- pages ---------------- */

static void flush_range(struct diff *d)
{
	if (d->kind == SAME || !d->count)
		return;
	d->ranges++;
	if (d->quiet || d->listed >= d->limit) {
		d->count = 0;
		return;
	}
	uint64_t last = d->first + d->count - 1;
	if (d->json) {
		sep(d);
		printf("{\"first\": ");
		cli_json_hex(stdout, d->first);
		printf(", \"last\": ");
		cli_json_hex(stdout, last);
		printf(", \"count\": ");
		cli_json_dec(stdout, d->count);
		printf(", \"kind\": \"%s\"}", kind_json[d->kind]);
	} else if (d->count == 1) {
		printf("pages 0x%llx: %s\n", (unsigned long long)d->first, kind_text[d->kind]);
	} else {
		printf("pages 0x%llx-0x%llx: %s (%llu pages)\n", (unsigned long long)d->first,
		       (unsigned long long)last, kind_text[d->kind], (unsigned long long)d->count);
	}
	d->listed++;
	d->count = 0;
}

static void add_pages(struct diff *d, enum kind k, uint64_t pfn, uint64_t n)
{
	d->pages[k] += n;
	if (k != SAME)
		d->any = true;
	if (k == d->kind && d->count && pfn == d->first + d->count) {
		d->count += n;
		return;
	}
	flush_range(d);
	d->kind = k;
	d->first = pfn;
	d->count = n;
}

static bool same_page(const struct xsr_index_entry *x, const struct xsr_index_entry *y)
{
	return x->flags == y->flags && x->hash == y->hash;
}

/*
 * Walk both memory maps in pfn order, 256 index entries of each at a time,
 * so that memory does not depend on the images.
 */
static int diff_pages(struct diff *d)
{
	const struct xsr_memrun *ra = xsr_image_runs(d->a), *rb = xsr_image_runs(d->b);
	uint32_t na = xsr_image_nruns(d->a), nb = xsr_image_nruns(d->b), ia = 0, ib = 0;
	uint64_t oa = 0, ob = 0; /* offsets in runs ia and ib */
	struct xsr_index_entry ea[256], eb[256];
	while ((ia < na || ib < nb) && !done(d)) {
		uint64_t pa = ia < na ? ra[ia].pfn + oa : UINT64_MAX,
			 pb = ib < nb ? rb[ib].pfn + ob : UINT64_MAX;
		uint64_t la = ia < na ? ra[ia].count - oa : 0, lb = ib < nb ? rb[ib].count - ob : 0,
			 n;
		if (pa == pb) {
			n = la < lb ? la : lb;
			n = n < 256 ? n : 256;
			if (xsr_image_run_index(d->a, ia, oa, n, ea) < 0 ||
			    xsr_image_run_index(d->b, ib, ob, n, eb) < 0)
				return -1;
			for (uint64_t i = 0; i < n; i++)
				add_pages(d, same_page(&ea[i], &eb[i]) ? SAME : DIFFER, pa + i, 1);
			oa += n;
			ob += n;
		} else if (pa < pb) {
			n = pb - pa < la ? pb - pa : la;
			add_pages(d, ONLY_A, pa, n);
			oa += n;
		} else {
			n = pa - pb < lb ? pa - pb : lb;
			add_pages(d, ONLY_B, pb, n);
			ob += n;
		}
		if (ia < na && oa == ra[ia].count)
			ia++, oa = 0;
		if (ib < nb && ob == rb[ib].count)
			ib++, ob = 0;
	}
	flush_range(d);
	return 0;
}

/* ---------------- vCPUs ---------------- */

/* The fixed fields of struct xsr_x86_vcpu by name; larger than 8 octets: compared as blobs. */
struct vfield {
	const char *name;
	size_t off, size;
};
#define F(n, m)                                                                                    \
	{                                                                                          \
		n, offsetof(struct xsr_x86_vcpu, m), sizeof(((struct xsr_x86_vcpu *)0)->m)         \
	}
#define SEG(s)                                                                                     \
	F(#s ".selector", s.selector), F(#s ".base", s.base), F(#s ".limit", s.limit),             \
	    F(#s ".attr", s.attr)
static const struct vfield vfields[] = {
    F("valid", valid),
    F("rax", gpr[XSR_RAX]),
    F("rbx", gpr[XSR_RBX]),
    F("rcx", gpr[XSR_RCX]),
    F("rdx", gpr[XSR_RDX]),
    F("rsi", gpr[XSR_RSI]),
    F("rdi", gpr[XSR_RDI]),
    F("rsp", gpr[XSR_RSP]),
    F("rbp", gpr[XSR_RBP]),
    F("r8", gpr[XSR_R8]),
    F("r9", gpr[XSR_R9]),
    F("r10", gpr[XSR_R10]),
    F("r11", gpr[XSR_R11]),
    F("r12", gpr[XSR_R12]),
    F("r13", gpr[XSR_R13]),
    F("r14", gpr[XSR_R14]),
    F("r15", gpr[XSR_R15]),
    F("rip", rip),
    F("rflags", rflags),
    SEG(cs),
    SEG(ds),
    SEG(es),
    SEG(fs),
    SEG(gs),
    SEG(ss),
    SEG(tr),
    SEG(ldt),
    F("gdt.base", gdt.base),
    F("gdt.limit", gdt.limit),
    F("idt.base", idt.base),
    F("idt.limit", idt.limit),
    F("cr0", cr0),
    F("cr2", cr2),
    F("cr3", cr3),
    F("cr4", cr4),
    F("cr8", cr8),
    F("efer", efer),
    F("apic_base", apic_base),
    F("xcr0", xcr0),
    F("dr0", dr[0]),
    F("dr1", dr[1]),
    F("dr2", dr[2]),
    F("dr3", dr[3]),
    F("dr6", dr[6]),
    F("dr7", dr[7]),
    F("mp_state", mp_state),
    F("fxsave", fxsave),
    F("events", events),
};
#undef SEG
#undef F

static uint64_t load(const void *p, size_t size)
{
	uint64_t v = 0;
	memcpy(&v, p, size); /* little-endian host, as the format */
	return v;
}

/* One vCPU field that differs: values (@blob 0), or a blob's lengths and first differing octet. */
static void vcpu_field(struct diff *d, uint32_t vcpu, const char *name, bool have_a, uint64_t a,
		       bool have_b, uint64_t b)
{
	d->any = true;
	d->vcpu_fields++;
	if (d->quiet)
		return;
	if (d->json) {
		sep(d);
		printf("{\"vcpu\": %u, \"field\": ", vcpu);
		cli_json_str(stdout, name);
		printf(", \"a\": ");
		have_a ? cli_json_hex(stdout, a) : (void)printf("null");
		printf(", \"b\": ");
		have_b ? cli_json_hex(stdout, b) : (void)printf("null");
		printf("}");
		return;
	}
	if (!strcmp(name, "vcpu")) {
		printf("vcpu %u: only in %s\n", vcpu, have_a ? "A" : "B");
		return;
	}
	char va[24] = "absent", vb[24] = "absent";
	if (have_a)
		snprintf(va, sizeof(va), "0x%llx", (unsigned long long)a);
	if (have_b)
		snprintf(vb, sizeof(vb), "0x%llx", (unsigned long long)b);
	printf("vcpu %u %s: %s | %s\n", vcpu, name, va, vb);
}

/* A blob (fxsave, xsave, lapic...): its lengths if they differ, else the first octet that does. */
static void vcpu_blob(struct diff *d, uint32_t vcpu, const char *name, const uint8_t *a,
		      uint64_t la, const uint8_t *b, uint64_t lb)
{
	char n[48];
	if (la != lb) {
		snprintf(n, sizeof(n), "%s length", name);
		vcpu_field(d, vcpu, n, true, la, true, lb);
		return;
	}
	for (uint64_t i = 0; i < la; i++)
		if (a[i] != b[i]) {
			snprintf(n, sizeof(n), "%s[0x%llx]", name, (unsigned long long)i);
			vcpu_field(d, vcpu, n, true, a[i], true, b[i]);
			return;
		}
}

static void diff_msrs(struct diff *d, uint32_t v, const struct xsr_vcpu_state *a,
		      const struct xsr_vcpu_state *b)
{
	char n[32];
	uint64_t x, y;
	for (uint32_t i = 0; i < a->r.nr_msrs; i++) {
		bool in_b = xsr_vcpu_msr(b, a->msrs[i].index, &y) == 0;
		if (in_b && y == a->msrs[i].value)
			continue;
		snprintf(n, sizeof(n), "msr 0x%x", a->msrs[i].index);
		vcpu_field(d, v, n, true, a->msrs[i].value, in_b, y);
	}
	for (uint32_t i = 0; i < b->r.nr_msrs; i++)
		if (xsr_vcpu_msr(a, b->msrs[i].index, &x) < 0) {
			snprintf(n, sizeof(n), "msr 0x%x", b->msrs[i].index);
			vcpu_field(d, v, n, false, 0, true, b->msrs[i].value);
		}
}

static int diff_vcpus(struct diff *d)
{
	uint32_t na = xsr_image_header(d->a)->nr_vcpus, nb = xsr_image_header(d->b)->nr_vcpus;
	struct xsr_vcpu_state *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	int rc = 0;
	if (!a || !b) {
		rc = XSR_E_NOMEM;
		goto out;
	}
	for (uint32_t v = 0; v < (na > nb ? na : nb) && !done(d); v++) {
		if (v >= na || v >= nb) {
			vcpu_field(d, v, "vcpu", v < na, v, v < nb, v);
			continue;
		}
		if ((rc = xsr_image_vcpu(d->a, v, a)) < 0 || (rc = xsr_image_vcpu(d->b, v, b)) < 0)
			goto out;
		for (size_t i = 0; i < sizeof(vfields) / sizeof(vfields[0]); i++) {
			const struct vfield *f = &vfields[i];
			const uint8_t *pa = (const uint8_t *)&a->r + f->off,
				      *pb = (const uint8_t *)&b->r + f->off;
			if (!memcmp(pa, pb, f->size))
				continue;
			if (f->size > 8)
				vcpu_blob(d, v, f->name, pa, f->size, pb, f->size);
			else
				vcpu_field(d, v, f->name, true, load(pa, f->size), true,
					   load(pb, f->size));
		}
		vcpu_blob(d, v, "xsave", a->xsave, a->r.xsave_len, b->xsave, b->r.xsave_len);
		vcpu_blob(d, v, "lapic", a->lapic, a->r.lapic_len, b->lapic, b->r.lapic_len);
		diff_msrs(d, v, a, b);
	}
out:
	free(a);
	free(b);
	return rc;
}

/* ---------------- sections ---------------- */

/* A section compared by content, matched by type, vCPU and rank among its equals. */
struct skey {
	uint32_t code, info, rank, index;
};

static int cmp_skey(const void *x, const void *y)
{
	const struct skey *a = x, *b = y;
	if (a->code != b->code)
		return a->code < b->code ? -1 : 1;
	if (a->info != b->info)
		return a->info < b->info ? -1 : 1;
	return a->rank < b->rank ? -1 : a->rank > b->rank;
}

/* Type, vCPU, then the order in the file: equal sections keep it (qsort is not stable). */
static int cmp_file_order(const void *x, const void *y)
{
	const struct skey *a = x, *b = y;
	int c = cmp_skey(a, b);
	return c ? c : a->index < b->index ? -1 : a->index > b->index;
}

/*
 * A section compared by its body: content (xsr_section_derived() says what
 * is not), except what is compared above: the vCPUs field by field, the
 * memory map through the pages.
 */
static bool compared_as_body(const struct xsr_section_info *si)
{
	return !xsr_section_derived(si->sh_type) && si->code != XSR_SEC_VCPU &&
	       si->code != XSR_SEC_MEMMAP;
}

/* The sections of @img to compare, sorted; *n of them.  NULL only when out of memory. */
static struct skey *section_keys(struct xsr_image *img, uint32_t *n)
{
	uint32_t ns = xsr_image_nsections(img);
	struct skey *k = malloc((ns + 1) * sizeof(*k));
	*n = 0;
	if (!k)
		return NULL;
	for (uint32_t i = 1; i < ns; i++) {
		struct xsr_section_info si;
		if (xsr_image_section(img, i, &si) < 0 || !compared_as_body(&si))
			continue;
		k[*n] = (struct skey){si.code, si.info, 0, i};
		(*n)++;
	}
	/* Rank: the order among sections of the same code and vCPU (several PASSTHRU items). */
	qsort(k, *n, sizeof(*k), cmp_file_order); /* rank is 0 everywhere yet */
	for (uint32_t i = 1; i < *n; i++)
		if (k[i].code == k[i - 1].code && k[i].info == k[i - 1].info)
			k[i].rank = k[i - 1].rank + 1;
	return k;
}

/* 1 if the bodies differ, 0 if not, <0 on a read error; 64 KiB at a time. */
static int bodies_differ(int fa, const struct xsr_section_info *a, int fb,
			 const struct xsr_section_info *b)
{
	enum { CHUNK = 64 << 10 };
	static uint8_t x[CHUNK], y[CHUNK];
	if (a->size != b->size)
		return 1;
	for (uint64_t o = 0; o < a->size; o += CHUNK) {
		size_t n = a->size - o < CHUNK ? (size_t)(a->size - o) : CHUNK;
		if (xsr_read_at(fa, x, n, a->offset + o) < 0 ||
		    xsr_read_at(fb, y, n, b->offset + o) < 0)
			return -1;
		if (memcmp(x, y, n))
			return 1;
	}
	return 0;
}

static void section_item(struct diff *d, enum kind k, const struct xsr_section_info *a,
			 const struct xsr_section_info *b)
{
	const struct xsr_section_info *s = a ? a : b;
	d->any = true;
	d->sections++;
	if (d->quiet)
		return;
	if (d->json) {
		sep(d);
		printf("{\"name\": ");
		cli_json_str(stdout, s->name);
		printf(", \"info\": %u, \"kind\": \"%s\", \"a_size\": ", s->info, kind_json[k]);
		a ? cli_json_dec(stdout, a->size) : (void)printf("null");
		printf(", \"b_size\": ");
		b ? cli_json_dec(stdout, b->size) : (void)printf("null");
		printf("}");
		return;
	}
	char nm[80];
	snprintf(nm, sizeof(nm), "%s", cli_esc(s->name, SIZE_MAX));
	if (s->info)
		snprintf(nm + strlen(nm), sizeof(nm) - strlen(nm), " (info %u)", s->info);
	if (k == DIFFER)
		printf("section %s: differs (%llu | %llu octets)\n", nm,
		       (unsigned long long)a->size, (unsigned long long)b->size);
	else
		printf("section %s: %s\n", nm, kind_text[k]);
}

static int diff_sections(struct diff *d)
{
	uint32_t na, nb, i = 0, j = 0;
	struct skey *ka = section_keys(d->a, &na), *kb = section_keys(d->b, &nb);
	int rc = 0;
	if (!ka || !kb) {
		rc = XSR_E_NOMEM;
		goto out;
	}
	while ((i < na || j < nb) && !done(d)) {
		struct xsr_section_info sa, sb;
		int c = i == na ? 1 : j == nb ? -1 : cmp_skey(&ka[i], &kb[j]);
		if (c <= 0)
			xsr_image_section(d->a, ka[i].index, &sa);
		if (c >= 0)
			xsr_image_section(d->b, kb[j].index, &sb);
		if (c < 0) {
			section_item(d, ONLY_A, &sa, NULL);
			i++;
		} else if (c > 0) {
			section_item(d, ONLY_B, NULL, &sb);
			j++;
		} else {
			if ((rc = bodies_differ(d->fd_a, &sa, d->fd_b, &sb)) < 0)
				goto out;
			if (rc)
				section_item(d, DIFFER, &sa, &sb);
			rc = 0;
			i++, j++;
		}
	}
out:
	free(ka);
	free(kb);
	return rc;
}

/* ---------------- the verb ---------------- */

static int run(struct diff *d)
{
	if (d->json)
		printf(", \"header\": [");
	diff_header(d);
	if (d->json) {
		printf("], \"page_ranges\": [");
		d->items = 0;
	}
	if (diff_pages(d) < 0)
		return -1;
	if (d->json) {
		printf("], \"page_ranges_total\": ");
		cli_json_dec(stdout, d->ranges);
		printf(", \"page_ranges_left_off\": ");
		cli_json_dec(stdout, d->ranges - d->listed);
		printf(", \"pages_differ\": ");
		cli_json_dec(stdout, d->pages[DIFFER]);
		printf(", \"pages_only_a\": ");
		cli_json_dec(stdout, d->pages[ONLY_A]);
		printf(", \"pages_only_b\": ");
		cli_json_dec(stdout, d->pages[ONLY_B]);
		printf(", \"vcpus\": [");
		d->items = 0;
	} else if (!d->quiet && d->listed < d->ranges) {
		printf("pages: %llu more range(s) (--limit)\n",
		       (unsigned long long)(d->ranges - d->listed));
	}
	int rc = diff_vcpus(d);
	if (rc < 0)
		return rc;
	if (d->json) {
		printf("], \"sections\": [");
		d->items = 0;
	}
	if ((rc = diff_sections(d)) < 0)
		return rc;
	if (d->json) {
		printf("], \"identical\": %s}\n", d->any ? "false" : "true");
		cli_json_answered(); /* exit 1 says "different", not an error */
	}
	else if (!d->quiet && d->any)
		printf("differ: %llu page(s) in %llu range(s), %llu vCPU field(s), %llu "
		       "section(s), %llu header field(s)\n",
		       (unsigned long long)(d->pages[DIFFER] + d->pages[ONLY_A] + d->pages[ONLY_B]),
		       (unsigned long long)d->ranges, (unsigned long long)d->vcpu_fields,
		       (unsigned long long)d->sections, (unsigned long long)d->header);
	return 0;
}

int cmd_diff(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, 0, 'j'}, {"limit", required_argument, 0, 'l'},
	    {"help", no_argument, 0, 'h'}, XSR_COMMON_OPTS, {0, 0, 0, 0},
	};
	struct diff d = {.limit = UINT64_MAX};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "hjs" XSR_COMMON_SHORT, opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			d.json = 1;
			break;
		case 'l':
			if (cli_parse_u64("diff", "--limit", optarg, &d.limit) < 0)
				return XSR_EXIT_USAGE;
			break;
		case 's': /* as cmp -s: --quiet */
			cli_verbosity = -1;
			break;
		case 'h':
			usage(stdout);
			return XSR_EXIT_OK;
		default:
			if (cli_common_opt(c))
				break;
			usage(stderr);
			return XSR_EXIT_USAGE;
		}
	}
	if (optind != argc - 2) {
		usage(stderr);
		return XSR_EXIT_USAGE;
	}
	d.quiet = cli_verbosity < 0;
	const char *fa = argv[optind], *fb = argv[optind + 1];
	if (!strcmp(fa, "-") && !strcmp(fb, "-")) {
		cli_err("diff", "standard input can be only one of A and B");
		return XSR_EXIT_USAGE;
	}
	if (d.quiet)
		d.json = 0;
	struct xsr_anyimg a, b;
	memset(&b, 0, sizeof(b));
	b.fd = b.img_fd = -1;
	if (cli_anyimg_open(&a, "diff", fa, cli_verbosity > 0) || cli_anyimg_open(&b, "diff", fb, cli_verbosity > 0)) {
		cli_anyimg_close(&a);
		return XSR_EXIT_FAIL;
	}
	d.a = a.img;
	d.b = b.img;
	d.fd_a = a.img_fd;
	d.fd_b = b.img_fd;
	if (d.json) {
		printf("{\"a\": ");
		cli_json_str(stdout, fa);
		printf(", \"b\": ");
		cli_json_str(stdout, fb);
	}
	int rc = run(&d);
	if (rc < 0) {
		/* Which image failed: the one whose handle holds a message. */
		const char *ea = xsr_image_error(a.img), *eb = xsr_image_error(b.img);
		if (rc == XSR_E_NOMEM)
			cli_err("diff", "out of memory");
		else if (ea && *ea)
			cli_err("diff", "%s: %s", fa, ea);
		else
			cli_err("diff", "%s: %s", fb, eb && *eb ? eb : "read error");
	}
	cli_anyimg_close(&a);
	cli_anyimg_close(&b);
	if (rc < 0)
		return XSR_EXIT_FAIL;
	return d.any ? XSR_EXIT_DAMAGE : XSR_EXIT_OK;
}
