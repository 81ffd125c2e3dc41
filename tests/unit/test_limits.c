/*
 * Every limit a reader enforces (docs/limits.md), each at the limit and one
 * past it.  Streams are built in memory record by record with correct
 * checksums, so that the limit, not a checksum, is what the reader meets.
 * "Accepted at the limit" for a record too large to build here means: the
 * reader took the header and went on to read the body (XSR_E_TRUNCATED at
 * the end of our short input), instead of refusing the length.
 */
#include <criterion/criterion.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xsrelf/reader.h>
#include <xsrelf/writer.h>

/* libxsrelf internals, linked from the static library. */
uint64_t xsr_header_checksum(const Elf64_Ehdr *eh, const struct xsr_file_header *fh);
void synth_vcpu(uint32_t id, struct xsr_vcpu_state *st);

#define A8(x) (((x) + 7) & ~(uint64_t)7)

struct sbuf {
	uint8_t *b;
	size_t len, cap;
};

static void sb_put(struct sbuf *s, const void *p, size_t n)
{
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		s->b = realloc(s->b, s->cap);
		cr_assert(s->b);
	}
	if (p)
		memcpy(s->b + s->len, p, n);
	else
		memset(s->b + s->len, 0, n);
	s->len += n;
}

static void put_header(struct sbuf *s, int layout, uint32_t nr_vcpus, uint64_t nr_pages)
{
	Elf64_Ehdr eh;
	struct xsr_file_header fh;
	memset(&eh, 0, sizeof(eh));
	memset(&fh, 0, sizeof(fh));
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_CORE;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_ehsize = 64;
	eh.e_phentsize = 56;
	eh.e_shentsize = 64;
	eh.e_phoff = eh.e_shoff = XSR_OFF_STREAMED;
	memcpy(fh.magic, XSR_MAGIC, 8);
	fh.version_major = XSR_VERSION_MAJOR;
	fh.layout = (uint8_t)layout;
	fh.kind = XSR_KIND_SAVE;
	fh.page_shift = XSR_PAGE_SHIFT;
	fh.nr_vcpus = nr_vcpus;
	fh.sentinel = XSR_OFF_STREAMED;
	fh.nr_pages = nr_pages;
	fh.checksum = xsr_header_checksum(&eh, &fh);
	sb_put(s, &eh, 64);
	sb_put(s, &fh, 64);
}

/* A record with a correct trailer; @body may be NULL (zeros) and @stored < @len cuts the body short. */
static void put_record(struct sbuf *s, uint32_t code, int optional, uint32_t info, const void *body, uint64_t len,
		       uint64_t stored)
{
	struct xsr_record_header rh = {.sh_type = code == XSR_SEC_NOTES ? SHT_NOTE : XSR_SHT(code, optional),
				       .sh_offset = XSR_OFF_STREAMED, .sh_size = len, .sh_info = info,
				       .sh_addralign = code == XSR_SEC_NOTES ? 4 : 8,
				       .sh_entsize = code == XSR_SEC_MEMMAP ? sizeof(struct xsr_memrun) : 0};
	sb_put(s, &rh, 64);
	if (stored < len) {
		sb_put(s, body, stored);
		return;
	}
	size_t at = s->len;
	sb_put(s, body, len);
	sb_put(s, NULL, A8(len) - len);
	uint64_t h = 0;
	struct iovec v = {s->b + at, len};
	extern uint64_t xsr_record_hash(const struct xsr_record_header *, const struct iovec *, int, uint64_t);
	h = xsr_record_hash(&rh, &v, 1, len);
	sb_put(s, &h, 8);
}

/* Step through the stream until error or END; returns the first error (or 0/1). */
static int run(const struct sbuf *s, char *msg, size_t msglen)
{
	int fd = memfd_create("limits", MFD_CLOEXEC);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, s->b, s->len), (ssize_t)s->len);
	lseek(fd, 0, SEEK_SET);
	struct xsr_stream *st;
	cr_assert_eq(xsr_stream_open(&st, fd, msg, msglen), 0);
	int rc = xsr_stream_run(st, NULL, NULL);
	snprintf(msg, msglen, "%s", xsr_stream_error(st));
	xsr_stream_close(st);
	close(fd);
	return rc;
}

/* A stream up to and including a memmap of @n one-page runs. */
static void stream_with_runs(struct sbuf *s, uint32_t nr_vcpus, uint64_t n)
{
	struct xsr_producer pr;
	memset(&pr, 0, sizeof(pr));
	put_header(s, XSR_LAYOUT_STREAM, nr_vcpus, n);
	put_record(s, XSR_SEC_PRODUCER, 0, 0, &pr, sizeof(pr), sizeof(pr));
	struct xsr_memrun *r = calloc(n ? n : 1, sizeof(*r));
	for (uint64_t i = 0; i < n; i++)
		r[i] = (struct xsr_memrun){2 * i, 1};
	put_record(s, XSR_SEC_MEMMAP, 0, 0, r, n * sizeof(*r), n * sizeof(*r));
	free(r);
}

Test(limits, nr_vcpus)
{
	char msg[512];
	struct sbuf s = {0};
	put_header(&s, XSR_LAYOUT_STREAM, XSR_MAX_VCPUS, 1);
	cr_expect_eq(run(&s, msg, sizeof(msg)), XSR_E_TRUNCATED, "4096 vCPUs: %s", msg);
	s.len = 0;
	put_header(&s, XSR_LAYOUT_STREAM, XSR_MAX_VCPUS + 1, 1);
	cr_expect_eq(run(&s, msg, sizeof(msg)), XSR_E_LIMIT, "%s", msg);
	cr_expect(strstr(msg, "nr_vcpus 4097") != NULL, "%s", msg);
	s.len = 0;
	put_header(&s, XSR_LAYOUT_STREAM, 0, 1);
	cr_expect_eq(run(&s, msg, sizeof(msg)), XSR_E_LIMIT, "0 vCPUs: %s", msg);
	free(s.b);
}

Test(limits, nr_pages)
{
	char msg[512];
	struct sbuf s = {0};
	put_header(&s, XSR_LAYOUT_STREAM, 1, XSR_MAX_PAGES);
	cr_expect_eq(run(&s, msg, sizeof(msg)), XSR_E_TRUNCATED, "2^36 pages: %s", msg);
	s.len = 0;
	put_header(&s, XSR_LAYOUT_STREAM, 1, XSR_MAX_PAGES + 1);
	cr_expect_eq(run(&s, msg, sizeof(msg)), XSR_E_LIMIT, "%s", msg);
	cr_expect(strstr(msg, "nr_pages") != NULL, "%s", msg);
	free(s.b);
}

Test(limits, memmap_runs)
{
	char msg[512];
	struct sbuf s = {0};
	stream_with_runs(&s, 1, XSR_MAX_RUNS);
	cr_expect_eq(run(&s, msg, sizeof(msg)), XSR_E_TRUNCATED, "%u runs: %s", XSR_MAX_RUNS, msg);
	cr_expect(strstr(msg, "no END record") != NULL, "memmap of %u runs accepted: %s", XSR_MAX_RUNS, msg);
	s.len = 0;
	stream_with_runs(&s, 1, XSR_MAX_RUNS + 1);
	cr_expect_eq(run(&s, msg, sizeof(msg)), XSR_E_LIMIT, "%s", msg);
	cr_expect(strstr(msg, "memmap") != NULL, "%s", msg);
	free(s.b);
}

Test(limits, pfn_and_run_end)
{
	char msg[512];
	struct sbuf s = {0};
	struct xsr_producer pr;
	memset(&pr, 0, sizeof(pr));
	const struct xsr_memrun cases[3] = {{XSR_MAX_PFN, 1}, {XSR_MAX_PFN + 1, 1}, {XSR_MAX_PFN, 2}};
	for (int i = 0; i < 3; i++) {
		s.len = 0;
		put_header(&s, XSR_LAYOUT_STREAM, 1, cases[i].count);
		put_record(&s, XSR_SEC_PRODUCER, 0, 0, &pr, sizeof(pr), sizeof(pr));
		put_record(&s, XSR_SEC_MEMMAP, 0, 0, &cases[i], 16, 16);
		int rc = run(&s, msg, sizeof(msg));
		if (i == 0)
			cr_expect_eq(rc, XSR_E_TRUNCATED, "run ending at the last pfn accepted: %s", msg);
		else
			cr_expect_eq(rc, XSR_E_RANGE, "case %d: %s", i, msg);
	}
	free(s.b);
}

Test(limits, pages_per_batch)
{
	char msg[512];
	for (uint32_t n = XSR_MAX_BATCH; n <= XSR_MAX_BATCH + 1; n++) {
		struct sbuf s = {0};
		stream_with_runs(&s, 1, 1);
		/* 1 run of 1 page at pfn 0: repeat it as zero entries. */
		size_t len = 16 + (size_t)n * 8;
		uint8_t *b = calloc(1, len);
		struct xsr_page_batch pb = {.count = n};
		memcpy(b, &pb, sizeof(pb));
		for (uint32_t i = 0; i < n; i++) {
			uint64_t e = XSR_PFN_ZERO;
			memcpy(b + 16 + 8 * i, &e, 8);
		}
		put_record(&s, XSR_SEC_PAGES, 0, 0, b, len, len);
		int rc = run(&s, msg, sizeof(msg));
		if (n == XSR_MAX_BATCH)
			cr_expect(rc == XSR_E_TRUNCATED && strstr(msg, "no END record"), "batch of 1024: %d %s", rc, msg);
		else
			cr_expect(rc == XSR_E_FORMAT && strstr(msg, "count 1025"), "batch of 1025: %d %s", rc, msg);
		free(b);
		free(s.b);
	}
}

/* Record lengths from the type table: at max (body not supplied) and one past. */
static void length_limit(uint32_t code, int optional, uint64_t max)
{
	char msg[512];
	struct sbuf s = {0};
	stream_with_runs(&s, 1, 1);
	put_record(&s, code, optional, 0, NULL, max, 0);
	int rc = run(&s, msg, sizeof(msg));
	cr_expect(rc == XSR_E_TRUNCATED && strstr(msg, "the body of record"), "type %u at %llu octets: %d %s", code,
		  (unsigned long long)max, rc, msg);
	s.len = 0;
	stream_with_runs(&s, 1, 1);
	put_record(&s, code, optional, 0, NULL, max + 1, 0);
	rc = run(&s, msg, sizeof(msg));
	cr_expect(rc == XSR_E_LIMIT && strstr(msg, "must be"), "type %u at %llu + 1 octets: %d %s", code,
		  (unsigned long long)max, rc, msg);
	free(s.b);
}

/*
 * The reader's buffer follows the octets that arrive (1 MiB, then doubling),
 * not the length a record claims: a record of 5 MiB + 3 octets read from an
 * fd in parts must still check out (its checksum covers every part), and a
 * cut inside it must count what arrived against the whole record.
 */
Test(limits, large_record_read_in_parts)
{
	char msg[512], want[128];
	const uint64_t len = 5 * (1u << 20) + 3;
	uint8_t *body = malloc(len);
	cr_assert(body);
	for (uint64_t i = 0; i < len; i++)
		body[i] = (uint8_t)(i * 131 + (i >> 20));
	struct sbuf s = {0};
	stream_with_runs(&s, 1, 1);
	put_record(&s, 0x7777, 1, 0, body, len, len);
	size_t end = s.len;
	int rc = run(&s, msg, sizeof(msg));
	snprintf(want, sizeof(want), "offset 0x%zx: no END record (3 records read)", end);
	cr_expect(rc == XSR_E_TRUNCATED && strstr(msg, want), "whole record: %d %s", rc, msg);
	s.len = 0;
	stream_with_runs(&s, 1, 1);
	put_record(&s, 0x7777, 1, 0, body, len, 3 * (1u << 20) + 5);
	rc = run(&s, msg, sizeof(msg));
	snprintf(want, sizeof(want), "(%u of %llu octets)", 3 * (1u << 20) + 5, (unsigned long long)A8(len) + 8);
	cr_expect(rc == XSR_E_TRUNCATED && strstr(msg, want), "cut record: %d %s", rc, msg);
	free(body);
	free(s.b);
}

Test(limits, record_lengths_at_and_past_the_maximum)
{
	length_limit(XSR_SEC_CONFIG, 0, XSR_MAX_CONFIG);
	length_limit(XSR_SEC_VCPU, 0, XSR_MAX_RECORD);
	length_limit(XSR_SEC_P2M, 0, XSR_MAX_RECORD);
	length_limit(XSR_SEC_DOMCTX, 0, XSR_MAX_RECORD);
	length_limit(XSR_SEC_XENSTORE, 0, XSR_MAX_RECORD);
	length_limit(XSR_SEC_EMULATOR, 0, XSR_MAX_RECORD);
	length_limit(XSR_SEC_PASSTHRU, 0, XSR_MAX_RECORD);
	length_limit(XSR_SEC_VMCOREINFO, 1, XSR_MAX_VMCOREINFO);
	length_limit(0x7777, 1, XSR_MAX_RECORD); /* unknown optional record */
	length_limit(XSR_SEC_PAGES, 0, 16 + (uint64_t)XSR_MAX_BATCH * (8 + XSR_PAGE_SIZE));
	/* NT_PRSTATUS and QEMU notes for every vCPU, VMCOREINFO, the Xen note (Xen PV images) */
	length_limit(XSR_SEC_NOTES, 0,
		     (uint64_t)(XSR_NOTE_SIZE + XSR_QEMU_NOTE_SIZE) * XSR_MAX_VCPUS + XSR_VMCI_NOTE_HDR + XSR_MAX_VMCOREINFO +
			     XSR_XEN_NOTE_SIZE);
	length_limit(XSR_SEC_XEN_P2M_TREE, 1, XSR_MAX_RECORD);
}

/* Below the minimum, or off an exact length: refused before the body is used. */
static void short_record(uint32_t code, uint64_t len, int want)
{
	char msg[512];
	struct sbuf s = {0};
	stream_with_runs(&s, 1, 1);
	put_record(&s, code, 0, 0, NULL, len, len);
	int rc = run(&s, msg, sizeof(msg));
	cr_expect_eq(rc, want, "type %u, %llu octets: %d %s", code, (unsigned long long)len, rc, msg);
	free(s.b);
}

/* A well-formed NT_PRSTATUS note, optionally followed by a VMCOREINFO note of @vlen octets. */
static void notes_record(uint32_t vlen, int want)
{
	char msg[512];
	struct sbuf s = {0};
	uint64_t len = XSR_NOTE_SIZE + (vlen ? XSR_VMCI_NOTE_HDR + ((vlen + 3) & ~3u) : 0);
	uint8_t *b = calloc(1, len);
	Elf64_Nhdr nh = {5, XSR_PRSTATUS_SIZE, XSR_NT_PRSTATUS};
	memcpy(b, &nh, sizeof(nh));
	memcpy(b + 12, "CORE", 4);
	if (vlen) {
		Elf64_Nhdr vh = {11, vlen, 0};
		memcpy(b + XSR_NOTE_SIZE, &vh, sizeof(vh));
		memcpy(b + XSR_NOTE_SIZE + 12, "VMCOREINFO", 10);
		memset(b + XSR_NOTE_SIZE + XSR_VMCI_NOTE_HDR, 'x', vlen);
	}
	stream_with_runs(&s, 1, 1);
	put_record(&s, XSR_SEC_NOTES, 0, 0, b, len, len);
	int rc = run(&s, msg, sizeof(msg));
	cr_expect_eq(rc, want, "notes with VMCOREINFO of %u: %d %s", vlen, rc, msg);
	free(b);
	free(s.b);
}

Test(limits, notes_with_and_without_vmcoreinfo)
{
	notes_record(0, XSR_E_TRUNCATED);                  /* accepted; the stream just ends */
	notes_record(5, XSR_E_TRUNCATED);                  /* padded VMCOREINFO note: accepted */
	notes_record(XSR_MAX_VMCOREINFO, XSR_E_TRUNCATED); /* at the limit */
	notes_record(XSR_MAX_VMCOREINFO + 1, XSR_E_FORMAT); /* past it: not a VMCOREINFO note */
}

Test(limits, record_lengths_below_the_minimum_and_exact_sizes)
{
	short_record(XSR_SEC_PASSTHRU, 7, XSR_E_LIMIT);
	short_record(XSR_SEC_VCPU, sizeof(struct xsr_x86_vcpu) - 1, XSR_E_LIMIT);
	short_record(XSR_SEC_PAGES, 23, XSR_E_LIMIT);
	short_record(XSR_SEC_PRODUCER, 239, XSR_E_LIMIT);
	short_record(XSR_SEC_PRODUCER, 241, XSR_E_LIMIT);
	short_record(XSR_SEC_END, 31, XSR_E_LIMIT);
	short_record(XSR_SEC_END, 33, XSR_E_LIMIT);
	short_record(XSR_SEC_NOTES, XSR_NOTE_SIZE - 1, XSR_E_LIMIT);
	short_record(XSR_SEC_NOTES, XSR_NOTE_SIZE + 1, XSR_E_FORMAT); /* not a VMCOREINFO note after */
	short_record(XSR_SEC_NOTES, XSR_NOTE_SIZE, XSR_E_FORMAT);     /* right size, zero note header */
	/* seekable-only types never appear in a stream */
	short_record(XSR_SEC_INDEX, 16, XSR_E_FORMAT);
	short_record(XSR_SEC_INTEGRITY, sizeof(struct xsr_integrity), XSR_E_FORMAT);
}

static uint8_t *vcpu_body(uint32_t xsave, uint32_t msrs, uint32_t lapic, uint64_t *len)
{
	struct xsr_x86_vcpu r;
	memset(&r, 0, sizeof(r));
	r.xsave_len = xsave;
	r.nr_msrs = msrs;
	r.lapic_len = lapic;
	*len = sizeof(r) + A8((uint64_t)xsave) + (uint64_t)msrs * 16 + A8((uint64_t)lapic);
	uint8_t *b = calloc(1, *len);
	memcpy(b, &r, sizeof(r));
	return b;
}

static int decode(uint32_t xsave, uint32_t msrs, uint32_t lapic)
{
	static struct xsr_vcpu_state st;
	uint64_t len;
	const char *why = NULL;
	uint8_t *b = vcpu_body(xsave, msrs, lapic, &len);
	int rc = xsr_vcpu_decode(b, len, &st, &why);
	free(b);
	return rc;
}

Test(limits, vcpu_blobs)
{
	cr_expect_eq(decode(XSR_MAX_XSAVE, 0, 0), 0);
	cr_expect_eq(decode(XSR_MAX_XSAVE + 1, 0, 0), XSR_E_LIMIT);
	cr_expect_eq(decode(0, XSR_MAX_MSRS, 0), 0);
	cr_expect_eq(decode(0, XSR_MAX_MSRS + 1, 0), XSR_E_LIMIT);
	cr_expect_eq(decode(0, 0, 1024), 0);
	cr_expect_eq(decode(0, 0, 1023), XSR_E_LIMIT);
	cr_expect_eq(decode(0, 0, 1025), XSR_E_LIMIT);
	cr_expect_eq(decode(XSR_MAX_XSAVE, XSR_MAX_MSRS, 1024), 0, "every blob at its limit at once");
}

Test(limits, vcpu_id_below_nr_vcpus)
{
	char msg[512];
	struct xsr_vcpu_state *vs = calloc(1, sizeof(*vs));
	for (uint32_t id = 1; id <= 2; id++) {
		struct sbuf s = {0};
		stream_with_runs(&s, 2, 1);
		synth_vcpu(id, vs);
		uint64_t n = xsr_vcpu_encoded_size(vs);
		uint8_t *b = malloc(n);
		cr_assert_eq(xsr_vcpu_encode(vs, b, n), (int64_t)n);
		put_record(&s, XSR_SEC_VCPU, 0, id, b, n, n);
		int rc = run(&s, msg, sizeof(msg));
		if (id == 1)
			cr_expect_eq(rc, XSR_E_TRUNCATED, "vCPU 1 of 2: %s", msg);
		else
			cr_expect(rc == XSR_E_RANGE && strstr(msg, "vCPU 2 of 2"), "vCPU 2 of 2: %d %s", rc, msg);
		free(b);
		free(s.b);
	}
	free(vs);
}

/* ---- seekable: section and program header counts ---- */

static int open_file(int fd, char *msg, size_t msglen)
{
	struct xsr_image *img;
	int rc = xsr_image_open(&img, fd, msg, msglen);
	xsr_image_close(img);
	return rc;
}

/* Rewrite a header field of a seekable image and its header checksum. */
static void patch_header(int fd, size_t off, const void *v, size_t n)
{
	uint8_t h[128];
	cr_assert_eq(pread(fd, h, 128, 0), 128);
	memcpy(h + off, v, n);
	struct xsr_file_header fh;
	memcpy(&fh, h + 64, 64);
	fh.checksum = xsr_header_checksum((const Elf64_Ehdr *)h, &fh);
	memcpy(h + 64, &fh, 64);
	cr_assert_eq(pwrite(fd, h, 128, 0), 128);
}

Test(limits, seekable_sections, .timeout = 60)
{
	char msg[512];
	int fd = memfd_create("limits-secs", MFD_CLOEXEC);
	struct xsr_writer *w;
	struct xsr_memrun run1 = {0, 1};
	struct xsr_writer_params p = {.machine = EM_X86_64, .kind = XSR_KIND_SAVE, .nr_vcpus = 1, .nr_runs = 1,
				      .runs = &run1, .hypervisor = "test"};
	cr_assert_eq(xsr_writer_open(&w, fd, &p, msg, sizeof(msg)), 0, "%s", msg);
	struct xsr_vcpu_state *vs = calloc(1, sizeof(*vs));
	synth_vcpu(0, vs);
	cr_assert_eq(xsr_writer_set_vcpu(w, vs), 0);
	free(vs);
	/* Fill the table: the writer refuses the section that would pass the limit. */
	uint8_t body[8] = {0};
	int added = 0, rc = 0;
	while ((rc = xsr_writer_add(w, XSR_SEC_PASSTHRU, 0, body, 8)) == 0)
		added++;
	cr_expect_eq(rc, XSR_E_LIMIT, "%s", xsr_writer_error(w));
	cr_assert_eq(xsr_writer_close(w, msg, sizeof(msg)), 0, "%s", msg);
	Elf64_Ehdr eh;
	cr_assert_eq(pread(fd, &eh, 64, 0), 64);
	cr_expect_eq(eh.e_shnum, XSR_MAX_SECTIONS, "a full writer makes e_shnum %u (%d added)", eh.e_shnum, added);
	rc = open_file(fd, msg, sizeof(msg));
	cr_expect_eq(rc, 0, "an image of %u sections opens: %s", eh.e_shnum, msg);
	/* One past: e_shnum + 1, with a 64-octet row for it at the end of the file. */
	uint16_t shnum = eh.e_shnum + 1;
	uint8_t zero[64] = {0};
	cr_assert_eq(pwrite(fd, zero, 64, (off_t)(eh.e_shoff + (uint64_t)eh.e_shnum * 64)), 64);
	patch_header(fd, offsetof(Elf64_Ehdr, e_shnum), &shnum, 2);
	rc = open_file(fd, msg, sizeof(msg));
	cr_expect(rc == XSR_E_FORMAT && strstr(msg, "section header table"), "e_shnum %u: %d %s", shnum, rc, msg);
	close(fd);
}

Test(limits, seekable_program_headers_never_pn_xnum)
{
	char msg[512];
	int fd = memfd_create("limits-ph", MFD_CLOEXEC);
	struct xsr_writer *w;
	struct xsr_memrun run1 = {0, 1};
	struct xsr_writer_params p = {.machine = EM_X86_64, .kind = XSR_KIND_SAVE, .nr_vcpus = 1, .nr_runs = 1,
				      .runs = &run1, .hypervisor = "test"};
	cr_assert_eq(xsr_writer_open(&w, fd, &p, msg, sizeof(msg)), 0, "%s", msg);
	struct xsr_vcpu_state *vs = calloc(1, sizeof(*vs));
	synth_vcpu(0, vs);
	cr_assert_eq(xsr_writer_set_vcpu(w, vs), 0);
	free(vs);
	cr_assert_eq(xsr_writer_close(w, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(open_file(fd, msg, sizeof(msg)), 0, "%s", msg);
	uint16_t ph = PN_XNUM;
	patch_header(fd, offsetof(Elf64_Ehdr, e_phnum), &ph, 2);
	int rc = open_file(fd, msg, sizeof(msg));
	cr_expect(rc == XSR_E_FORMAT && strstr(msg, "program header table"), "e_phnum 0xffff: %d %s", rc, msg);
	close(fd);
}

Test(limits, seekable_runs_at_the_limit, .timeout = 120)
{
	char msg[512];
	int fd = memfd_create("limits-runs", MFD_CLOEXEC);
	struct xsr_writer *w;
	struct xsr_memrun *r = calloc(XSR_MAX_RUNS + 1, sizeof(*r));
	for (uint32_t i = 0; i <= XSR_MAX_RUNS; i++)
		r[i] = (struct xsr_memrun){2 * (uint64_t)i, 1};
	struct xsr_writer_params p = {.machine = EM_X86_64, .kind = XSR_KIND_SAVE, .nr_vcpus = 1,
				      .nr_runs = XSR_MAX_RUNS + 1, .runs = r, .hypervisor = "test"};
	cr_expect_eq(xsr_writer_open(&w, fd, &p, msg, sizeof(msg)), XSR_E_LIMIT, "writer: %u runs refused", XSR_MAX_RUNS + 1);
	p.nr_runs = XSR_MAX_RUNS;
	cr_assert_eq(xsr_writer_open(&w, fd, &p, msg, sizeof(msg)), 0, "%s", msg);
	struct xsr_vcpu_state *vs = calloc(1, sizeof(*vs));
	synth_vcpu(0, vs);
	cr_assert_eq(xsr_writer_set_vcpu(w, vs), 0);
	free(vs);
	cr_assert_eq(xsr_writer_close(w, msg, sizeof(msg)), 0, "%s", msg);
	struct xsr_image *img;
	cr_assert_eq(xsr_image_open(&img, fd, msg, sizeof(msg)), 0, "%u runs (e_phnum %u): %s", XSR_MAX_RUNS,
		     XSR_MAX_RUNS + 1, msg);
	cr_expect_eq(xsr_image_nruns(img), XSR_MAX_RUNS);
	uint8_t page[4096];
	cr_expect_eq(xsr_image_read_page(img, 2 * (uint64_t)(XSR_MAX_RUNS - 1), page, NULL), 0, "%s",
		     xsr_image_error(img));
	xsr_image_close(img);
	free(r);
	close(fd);
}

/*
 * Issue 15 finding 1: a PAGES record's length was checked as a 64-bit sum
 * with the sender's data_len, which wraps: count 4, length 24 and data_len
 * 2^64 - 24 passed, and the pfns and "data" were read past the record.
 * The reader must refuse it on the length, with a valid checksum in place.
 */
Test(hostile, pages_length_sum_does_not_wrap)
{
	char msg[512];
	for (uint8_t comp = XSR_COMPRESS_NONE; comp <= XSR_COMPRESS_LZ4; comp++) {
		struct sbuf s = {0};
		stream_with_runs(&s, 1, 1);
		uint8_t b[24] = {0};
		struct xsr_page_batch pb = {.count = 4, .compress = comp, .data_len = (uint64_t)0 - 24};
		memcpy(b, &pb, sizeof(pb));
		put_record(&s, XSR_SEC_PAGES, 0, 0, b, sizeof(b), sizeof(b));
		int rc = run(&s, msg, sizeof(msg));
		cr_expect(rc == XSR_E_FORMAT && strstr(msg, "length 24 does not match 4 pfns"),
			  "compression %u: %d %s", comp, rc, msg);
		free(s.b);
	}
}
