/*
 * The section table's validator column (libxsrelf/src/check.c): for each
 * type with a body rule, one image of each layout with a valid body, which
 * both readers take, and the same image with one body made invalid and every
 * checksum made right again, which both refuse with the validator's own
 * words.  So the two layouts cannot disagree about a body (docs/limits.md,
 * "One rule").
 */
#include <criterion/criterion.h>
#include <elf.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <xxhash.h>
#include <xsrelf/io.h>
#include <xsrelf/reader.h>
#include <xsrelf/writer.h>

/* libxsrelf internals, linked from the static library (libxsrelf/src/internal.h). */
uint64_t xsr_record_hash(const struct xsr_record_header *rh, const struct iovec *body, int n, uint64_t body_len);
void synth_vcpu(uint32_t id, struct xsr_vcpu_state *st);
struct xsr_sec_check_ctx {
	int layout;
	uint32_t info;
	const struct xsr_file_header *fh;
	const struct xsr_memrun *runs;
	const uint64_t *base;
	uint32_t nruns;
	uint64_t *xen_fll;
	uint64_t *pfn;
	uint32_t *ndata;
	struct xsr_vcpu_state *vcpu;
};
int xsr_sec_check(uint32_t code, const void *body, uint64_t len, const struct xsr_sec_check_ctx *c, char *why,
		  size_t whylen);

#define A8(x) (((x) + 7) & ~(uint64_t)7)
#define NVCPU 2

static const struct xsr_memrun RUNS[] = {{0, 16}, {64, 8}};
static const uint64_t BASE[] = {0, 16};

/* A small image (two vCPUs, a Xen PV p2m tree, some pages) in @layout, in memory. */
static uint8_t *make_image(int layout, size_t *len)
{
	static uint8_t page[4096];
	struct xsr_xen_pv pv = {.xen_major = 4, .xen_minor = 17, .nr_pfns = 72};
	struct xsr_writer_params p = {.machine = EM_X86_64, .kind = XSR_KIND_SAVE, .layout = (uint8_t)layout,
				      .nr_vcpus = NVCPU, .nr_runs = 2, .runs = RUNS, .hypervisor = "test", .xen_pv = &pv};
	struct xsr_sink *mem;
	struct xsr_writer *w;
	char err[256];
	cr_assert_eq(xsr_sink_open_mem(&mem, 0), 0);
	cr_assert_eq(xsr_writer_open_sink(&w, mem, &p, err, sizeof(err)), 0, "%s", err);
	memset(page, 0x5a, sizeof(page));
	uint64_t pfns[] = {1, 2, 65};
	const void *data[] = {page, NULL, page};
	cr_assert_eq(xsr_writer_put_pages(w, pfns, 3, data), 0, "%s", xsr_writer_error(w));
	struct xsr_vcpu_state *vs = malloc(sizeof(*vs));
	for (uint32_t v = 0; v < NVCPU; v++) {
		synth_vcpu(v, vs);
		cr_assert_eq(xsr_writer_set_vcpu(w, vs), 0, "%s", xsr_writer_error(w));
	}
	free(vs);
	cr_assert_eq(xsr_writer_close(w, err, sizeof(err)), 0, "%s", err);
	uint64_t n;
	const uint8_t *m = xsr_sink_mem_data(mem, &n);
	uint8_t *out = malloc(n);
	memcpy(out, m, n);
	xsr_sink_close(mem);
	*len = (size_t)n;
	return out;
}

static uint32_t code_of(uint32_t sh_type)
{
	return sh_type == SHT_NOTE ? XSR_SEC_NOTES : sh_type == SHT_STRTAB ? XSR_SEC_STRTAB : sh_type & XSR_SHT_CODE_MASK;
}

static void retrail(uint8_t *rec)
{
	struct xsr_record_header rh;
	memcpy(&rh, rec, sizeof(rh));
	struct iovec v = {rec + sizeof(rh), rh.sh_size};
	uint64_t h = xsr_record_hash(&rh, &v, 1, rh.sh_size);
	memcpy(rec + sizeof(rh) + A8(rh.sh_size), &h, 8);
}

typedef void (*mutate_fn)(uint8_t *body, uint64_t len);

/* Seekable: mutate the body of (@code, @info), then its trailer and the integrity record's chain. */
static void patch_seekable(uint8_t *img, uint32_t code, uint32_t info, mutate_fn mut)
{
	Elf64_Ehdr eh;
	memcpy(&eh, img, sizeof(eh));
	Elf64_Shdr *sh = (Elf64_Shdr *)(img + eh.e_shoff);
	int found = 0, integ = -1;
	for (uint32_t i = 1; i < eh.e_shnum; i++) {
		uint32_t c = code_of(sh[i].sh_type);
		if (c == XSR_SEC_INTEGRITY)
			integ = (int)i;
		if (c == code && (code != XSR_SEC_VCPU || sh[i].sh_info == info) && !found++) {
			mut(img + sh[i].sh_offset, sh[i].sh_size);
			retrail(img + sh[i].sh_offset - sizeof(struct xsr_record_header));
		}
	}
	cr_assert(found && integ > 0, "no section of type %u", code);
	uint64_t chain = 0, nrec = 0;
	for (uint32_t i = 1; i < eh.e_shnum; i++) {
		uint32_t c = code_of(sh[i].sh_type);
		if (c == XSR_SEC_PAGES || (int)i == integ)
			continue;
		uint64_t t;
		memcpy(&t, img + sh[i].sh_offset + A8(sh[i].sh_size), 8);
		chain = XXH3_64bits_withSeed(&t, 8, chain);
		nrec++;
	}
	struct xsr_integrity in;
	memcpy(&in, img + sh[integ].sh_offset, sizeof(in));
	cr_assert_eq(in.nr_records, nrec);
	in.chain = chain;
	memcpy(img + sh[integ].sh_offset, &in, sizeof(in));
	retrail(img + sh[integ].sh_offset - sizeof(struct xsr_record_header));
}

/* Stream: mutate the body of (@code, @info), then its trailer and END's chain. */
static void patch_stream(uint8_t *s, size_t len, uint32_t code, uint32_t info, mutate_fn mut)
{
	uint64_t chain = 0;
	int found = 0;
	for (size_t at = XSR_HEADER_END; at + sizeof(struct xsr_record_header) <= len;) {
		struct xsr_record_header rh;
		memcpy(&rh, s + at, sizeof(rh));
		uint32_t c = code_of(rh.sh_type);
		uint8_t *body = s + at + sizeof(rh);
		if (c == XSR_SEC_END) {
			struct xsr_end e;
			memcpy(&e, body, sizeof(e));
			e.chain = chain;
			memcpy(body, &e, sizeof(e));
		}
		if (c == code && (code != XSR_SEC_VCPU || rh.sh_info == info) && !found++)
			mut(body, rh.sh_size);
		retrail(s + at);
		if (c == XSR_SEC_END) {
			cr_assert(found, "no record of type %u", code);
			return;
		}
		uint64_t t;
		memcpy(&t, body + A8(rh.sh_size), 8);
		chain = XXH3_64bits_withSeed(&t, 8, chain);
		at += sizeof(rh) + A8(rh.sh_size) + 8;
	}
	cr_assert_fail("stream without END");
}

/* Open (seekable, with its structure check) or read (stream) and verify: 0, or the code and message. */
static int read_back(int layout, const uint8_t *b, size_t len, char *msg, size_t msglen)
{
	msg[0] = 0;
	if (layout == XSR_LAYOUT_SEEKABLE) {
		struct xsr_image *img;
		int rc = xsr_image_open_mem(&img, b, len, 0, msg, msglen);
		if (rc < 0)
			return rc;
		rc = xsr_image_verify(img, NULL, NULL);
		snprintf(msg, msglen, "%s", xsr_image_error(img));
		xsr_image_close(img);
		return rc;
	}
	struct xsr_stream *st;
	cr_assert_eq(xsr_stream_open_mem(&st, b, len, msg, msglen), 0);
	int rc = xsr_stream_run(st, NULL, NULL);
	if (rc == 0)
		rc = xsr_stream_expect_eof(st);
	snprintf(msg, msglen, "%s", xsr_stream_error(st));
	xsr_stream_close(st);
	return rc;
}

/* The body of (@code, @info) in @layout's image @b, as the validator would see it. */
static const uint8_t *body_of(int layout, const uint8_t *b, size_t len, uint32_t code, uint32_t info, uint64_t *blen)
{
	if (layout == XSR_LAYOUT_SEEKABLE) {
		Elf64_Ehdr eh;
		memcpy(&eh, b, sizeof(eh));
		const Elf64_Shdr *sh = (const Elf64_Shdr *)(b + eh.e_shoff);
		for (uint32_t i = 1; i < eh.e_shnum; i++)
			if (code_of(sh[i].sh_type) == code && (code != XSR_SEC_VCPU || sh[i].sh_info == info)) {
				*blen = sh[i].sh_size;
				return b + sh[i].sh_offset;
			}
		return NULL;
	}
	for (size_t at = XSR_HEADER_END; at + sizeof(struct xsr_record_header) <= len;) {
		struct xsr_record_header rh;
		memcpy(&rh, b + at, sizeof(rh));
		if (code_of(rh.sh_type) == code && (code != XSR_SEC_VCPU || rh.sh_info == info)) {
			*blen = rh.sh_size;
			return b + at + sizeof(rh);
		}
		if (code_of(rh.sh_type) == XSR_SEC_END)
			break;
		at += sizeof(rh) + A8(rh.sh_size) + 8;
	}
	return NULL;
}

/* The column's own verdict on the body: 0 or the code, with its why. */
static int column(int layout, const uint8_t *b, size_t len, uint32_t code, uint32_t info, char *why, size_t whylen)
{
	struct xsr_file_header fh;
	uint64_t blen = 0, pfn;
	uint32_t ndata;
	memcpy(&fh, b + sizeof(Elf64_Ehdr), sizeof(fh));
	const uint8_t *body = body_of(layout, b, len, code, info, &blen);
	cr_assert(body, "no body of type %u", code);
	void *copy = malloc(blen + 1); /* 8-aligned, as the readers hand it */
	memcpy(copy, body, blen);
	struct xsr_sec_check_ctx c = {.layout = layout, .info = info, .fh = &fh, .runs = RUNS, .base = BASE,
				      .nruns = 2, .pfn = &pfn, .ndata = &ndata};
	why[0] = 0;
	int rc = xsr_sec_check(code, copy, blen, &c, why, whylen);
	free(copy);
	return rc;
}

/*
 * In each of @layouts: the image as written passes the column and both
 * readers; with @mut applied, the column refuses and the reader refuses with
 * the column's code and why.  Both layouts (when two) give the same why.
 */
static void both(uint32_t code, uint32_t info, mutate_fn mut, const int *layouts, int n)
{
	char first[512] = "";
	for (int k = 0; k < n; k++) {
		int layout = layouts[k];
		const char *lname = layout == XSR_LAYOUT_SEEKABLE ? "seekable" : "stream";
		char msg[512], why[256];
		size_t len;
		uint8_t *b = make_image(layout, &len);
		cr_assert_eq(column(layout, b, len, code, info, why, sizeof(why)), 0, "%s, type %u valid: %s", lname, code, why);
		cr_assert_eq(read_back(layout, b, len, msg, sizeof(msg)), 0, "%s, type %u valid: %s", lname, code, msg);
		if (layout == XSR_LAYOUT_SEEKABLE)
			patch_seekable(b, code, info, mut);
		else
			patch_stream(b, len, code, info, mut);
		int crc = column(layout, b, len, code, info, why, sizeof(why));
		cr_assert_lt(crc, 0, "%s, type %u: the column took the invalid body", lname, code);
		int rc = read_back(layout, b, len, msg, sizeof(msg));
		cr_expect_eq(rc, crc, "%s, type %u: reader %d, column %d: %s", lname, code, rc, crc, msg);
		cr_expect(strstr(msg, why) != NULL, "%s, type %u: the reader's message does not carry the column's why\n  why: %s\n  msg: %s",
			  lname, code, why, msg);
		if (k == 0)
			snprintf(first, sizeof(first), "%s", why);
		else
			cr_expect_str_eq(why, first, "type %u: the layouts disagree", code);
		free(b);
	}
}

static const int BOTH[] = {XSR_LAYOUT_SEEKABLE, XSR_LAYOUT_STREAM};
static const int SEEKABLE[] = {XSR_LAYOUT_SEEKABLE};
static const int STREAM[] = {XSR_LAYOUT_STREAM};

static void bad_prstatus(uint8_t *b, uint64_t len)
{
	Elf64_Nhdr nh;
	memcpy(&nh, b, sizeof(nh));
	nh.n_type = 77;
	memcpy(b, &nh, sizeof(nh));
}

static void runs_out_of_order(uint8_t *b, uint64_t len)
{
	struct xsr_memrun r[2];
	cr_assert_eq(len, sizeof(r));
	memcpy(r, b, sizeof(r));
	r[1].pfn = 8; /* overlaps run 0 (pfns 0..15) */
	memcpy(b, r, sizeof(r));
}

static void vcpu_misfiled(uint8_t *b, uint64_t len)
{
	uint32_t id = 7;
	memcpy(b + offsetof(struct xsr_x86_vcpu, vcpu_id), &id, sizeof(id));
}

static void tree_reserved(uint8_t *b, uint64_t len)
{
	uint64_t one = 1;
	memcpy(b + offsetof(struct xsr_xen_p2m_tree, reserved), &one, sizeof(one));
}

static void integrity_algorithm(uint8_t *b, uint64_t len)
{
	uint32_t alg = 99;
	memcpy(b + offsetof(struct xsr_integrity, algorithm), &alg, sizeof(alg));
}

static void end_reserved(uint8_t *b, uint64_t len)
{
	uint64_t one = 1;
	memcpy(b + offsetof(struct xsr_end, reserved), &one, sizeof(one));
}

static void batch_reserved_pfn_bit(uint8_t *b, uint64_t len)
{
	uint64_t pfn;
	memcpy(&pfn, b + sizeof(struct xsr_page_batch), 8);
	pfn |= XSR_PFN_RESERVED & -XSR_PFN_RESERVED; /* the lowest reserved bit */
	memcpy(b + sizeof(struct xsr_page_batch), &pfn, 8);
}

Test(validators, notes) { both(XSR_SEC_NOTES, 0, bad_prstatus, BOTH, 2); }
Test(validators, memmap) { both(XSR_SEC_MEMMAP, 0, runs_out_of_order, BOTH, 2); }
Test(validators, vcpu) { both(XSR_SEC_VCPU, 1, vcpu_misfiled, BOTH, 2); }
Test(validators, xen_p2m_tree) { both(XSR_SEC_XEN_P2M_TREE, 0, tree_reserved, BOTH, 2); }
Test(validators, integrity_seekable_only) { both(XSR_SEC_INTEGRITY, 0, integrity_algorithm, SEEKABLE, 1); }
Test(validators, end_stream_only) { both(XSR_SEC_END, 0, end_reserved, STREAM, 1); }
Test(validators, pages_stream_only) { both(XSR_SEC_PAGES, 0, batch_reserved_pfn_bit, STREAM, 1); }
