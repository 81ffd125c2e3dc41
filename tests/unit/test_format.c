/* Library tests: writer, readers, conversion, hostile input. */
#include <criterion/criterion.h>
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xsrelf/reader.h>
#include <xsrelf/writer.h>

#include "backend.h"
#include "../../restore/restore.h"

void synth_vcpu(uint32_t id, struct xsr_vcpu_state *st);

static int tmpfd(char *path)
{
	strcpy(path, "/tmp/xsr-unit-XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	return fd;
}

static void fill(uint8_t *p, uint64_t pfn, uint8_t v)
{
	memset(p, v, 4096);
	memcpy(p, &pfn, 8);
}

static const struct xsr_memrun RUNS[] = {{0, 16}, {0x100, 8}};

/* Write a 2-vCPU image: pfn i holds fill(i, v) for v = 1 + i % 7, pfn 3 and 0x102 zero. */
static void write_image(int fd, int layout)
{
	char err[256];
	struct xsr_writer *w;
	struct xsr_writer_params p = {.machine = EM_X86_64, .kind = XSR_KIND_SAVE, .layout = (uint8_t)layout,
				      .nr_vcpus = 2, .nr_runs = 2, .runs = RUNS, .hypervisor = "test"};
	cr_assert_eq(xsr_writer_open(&w, fd, &p, err, sizeof(err)), 0, "%s", err);
	static uint8_t pages[24][4096];
	uint64_t pfns[24];
	const void *ptr[24];
	int n = 0;
	for (int r = 0; r < 2; r++)
		for (uint64_t i = 0; i < RUNS[r].count; i++, n++) {
			pfns[n] = RUNS[r].pfn + i;
			fill(pages[n], pfns[n], (uint8_t)(1 + pfns[n] % 7));
			ptr[n] = pfns[n] == 3 || pfns[n] == 0x102 ? NULL : pages[n];
		}
	cr_assert_eq(xsr_writer_put_pages(w, pfns, (uint32_t)n, ptr), 0, "%s", xsr_writer_error(w));
	struct xsr_vcpu_state *vs = malloc(sizeof(*vs));
	for (uint32_t v = 0; v < 2; v++) {
		synth_vcpu(v, vs);
		cr_assert_eq(xsr_writer_set_vcpu(w, vs), 0);
	}
	free(vs);
	cr_assert_eq(xsr_writer_add(w, XSR_SEC_CONFIG, 0, "name=test\n", 10), 0);
	cr_assert_eq(xsr_writer_close(w, err, sizeof(err)), 0, "%s", err);
}

Test(writer, seekable_roundtrip_and_random_access)
{
	char path[64], err[256];
	int fd = tmpfd(path);
	write_image(fd, 0);
	struct xsr_image *img;
	cr_assert_eq(xsr_image_open(&img, fd, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(xsr_image_header(img)->nr_vcpus, 2);
	cr_assert_eq(xsr_image_header(img)->nr_pages, 24);
	uint8_t buf[4096], want[4096];
	uint32_t flags;
	cr_assert_eq(xsr_image_read_page(img, 0x105, buf, &flags), 0, "%s", xsr_image_error(img));
	fill(want, 0x105, 1 + 0x105 % 7);
	cr_assert_arr_eq(buf, want, 4096);
	cr_assert(flags & XSR_IDX_DATA);
	cr_assert_eq(xsr_image_read_page(img, 3, buf, &flags), 0);
	cr_assert_eq(flags & XSR_IDX_DATA, 0);
	cr_assert_eq(xsr_image_read_page(img, 0x20, buf, &flags), XSR_E_RANGE, "pfn outside the map must be refused");
	struct xsr_vcpu_state *vs = malloc(sizeof(*vs)), *want_vs = malloc(sizeof(*vs));
	cr_assert_eq(xsr_image_vcpu(img, 1, vs), 0, "%s", xsr_image_error(img));
	synth_vcpu(1, want_vs);
	cr_assert_eq(vs->r.cr3, want_vs->r.cr3);
	cr_assert_eq(vs->r.rip, want_vs->r.rip);
	cr_assert_eq(vs->r.nr_msrs, want_vs->r.nr_msrs);
	cr_assert_eq(xsr_image_verify(img, NULL, NULL), 0, "%s", xsr_image_error(img));
	void *m;
	uint64_t ml;
	cr_assert_eq(xsr_image_map_run(img, 1, &m, &ml), 0);
	fill(want, 0x101, 1 + 0x101 % 7);
	cr_assert_arr_eq((uint8_t *)m + 4096, want, 4096, "mmap of a run gives the page data");
	munmap(m, ml);
	free(vs);
	free(want_vs);
	xsr_image_close(img);
	close(fd);
	unlink(path);
}

Test(writer, page_rewritten_in_place_and_zero_pages_are_holes)
{
	char path[64], err[256];
	int fd = tmpfd(path);
	const struct xsr_memrun run = {0, 1024};
	struct xsr_writer *w;
	struct xsr_writer_params p = {.machine = EM_X86_64, .kind = XSR_KIND_SAVE, .nr_vcpus = 1, .nr_runs = 1, .runs = &run};
	cr_assert_eq(xsr_writer_open(&w, fd, &p, err, sizeof(err)), 0, "%s", err);
	static uint8_t a[4096], b[4096];
	fill(a, 7, 0xaa);
	fill(b, 7, 0xbb);
	uint64_t pfn = 7, pfn2 = 8;
	const void *pa = a, *pb = b;
	cr_assert_eq(xsr_writer_put_pages(w, &pfn, 1, &pa), 0);
	cr_assert_eq(xsr_writer_put_pages(w, &pfn2, 1, &pa), 0);
	cr_assert_eq(xsr_writer_put_pages(w, &pfn, 1, &pb), 0, "second write of pfn 7 supersedes the first");
	const void *z = NULL;
	cr_assert_eq(xsr_writer_put_pages(w, &pfn2, 1, &z), 0, "pfn 8 becomes zero again");
	struct xsr_vcpu_state *vs = malloc(sizeof(*vs));
	synth_vcpu(0, vs);
	cr_assert_eq(xsr_writer_set_vcpu(w, vs), 0);
	free(vs);
	cr_assert_eq(xsr_writer_close(w, err, sizeof(err)), 0, "%s", err);
	struct stat sb;
	fstat(fd, &sb);
	cr_assert_lt(sb.st_size, 1024 * 4096 + 64 * 1024, "file never grows past guest memory + metadata");
	cr_assert_lt((uint64_t)sb.st_blocks * 512, 256 * 1024, "zero pages cost no disk blocks (%lld)", (long long)sb.st_blocks * 512);
	struct xsr_image *img;
	cr_assert_eq(xsr_image_open(&img, fd, err, sizeof(err)), 0, "%s", err);
	uint8_t buf[4096];
	cr_assert_eq(xsr_image_read_page(img, 7, buf, NULL), 0);
	cr_assert_arr_eq(buf, b, 4096);
	cr_assert_eq(xsr_image_read_page(img, 8, buf, NULL), 0);
	static const uint8_t zero[4096];
	cr_assert_arr_eq(buf, zero, 4096);
	cr_assert_eq(xsr_image_verify(img, NULL, NULL), 0, "%s", xsr_image_error(img));
	xsr_image_close(img);
	close(fd);
	unlink(path);
}

static void flip(int fd, off_t off)
{
	uint8_t c;
	cr_assert_eq(pread(fd, &c, 1, off), 1);
	c ^= 0x10;
	cr_assert_eq(pwrite(fd, &c, 1, off), 1);
}

Test(reader, bit_flips_in_every_region_are_detected)
{
	char path[64], err[256];
	int fd = tmpfd(path);
	write_image(fd, 0);
	struct stat sb;
	fstat(fd, &sb);
	int detected = 0, tried = 0;
	/* Every 37th octet of the file, plus every header octet. */
	for (off_t off = 0; off < sb.st_size; off += off < 256 ? 1 : 37) {
		flip(fd, off);
		struct xsr_image *img;
		int rc = xsr_image_open(&img, fd, err, sizeof(err));
		if (rc == 0) {
			rc = xsr_image_verify(img, NULL, NULL);
			xsr_image_close(img);
		}
		tried++;
		detected += rc < 0;
		cr_expect_lt(rc, 0, "flip at offset %lld went unnoticed", (long long)off);
		flip(fd, off);
	}
	cr_assert_eq(detected, tried);
	close(fd);
	unlink(path);
}

Test(stream, roundtrip_through_conversion_is_identical)
{
	char p1[64], p2[64], p3[64], err[256];
	int a = tmpfd(p1), s = tmpfd(p2), b = tmpfd(p3);
	write_image(a, 0);
	struct xsr_convert_opts to_stream = {.layout = XSR_LAYOUT_STREAM}, to_seek = {.layout = XSR_LAYOUT_SEEKABLE};
	cr_assert_eq(xsr_convert(a, s, &to_stream, err, sizeof(err)), 0, "%s", err);
	lseek(s, 0, SEEK_SET);
	cr_assert_eq(xsr_convert(s, b, &to_seek, err, sizeof(err)), 0, "%s", err);
	struct stat sa, sb2;
	fstat(a, &sa);
	fstat(b, &sb2);
	cr_assert_eq(sa.st_size, sb2.st_size);
	uint8_t *x = malloc(sa.st_size), *y = malloc(sa.st_size);
	cr_assert_eq(pread(a, x, sa.st_size, 0), sa.st_size);
	cr_assert_eq(pread(b, y, sa.st_size, 0), sa.st_size);
	cr_assert_arr_eq(x, y, sa.st_size, "seekable -> stream -> seekable is byte-identical");
	free(x);
	free(y);
	close(a), close(s), close(b);
	unlink(p1), unlink(p2), unlink(p3);
}

struct counts {
	int sections, batches, ends;
	uint64_t pages;
};
static int c_sec(void *c, const struct xsr_record_header *rh, const void *b) { ((struct counts *)c)->sections++; return 0; }
static int c_pg(void *c, const uint64_t *p, uint32_t n, const uint8_t *d) { ((struct counts *)c)->batches++; ((struct counts *)c)->pages += n; return 0; }
static int c_end(void *c, const struct xsr_end *e) { ((struct counts *)c)->ends++; return 0; }

static int read_stream(const uint8_t *data, size_t len, struct counts *c, char *msg, size_t msglen)
{
	int pfd[2];
	cr_assert_eq(pipe(pfd), 0);
	if (fork() == 0) {
		close(pfd[0]);
		size_t off = 0;
		while (off < len) {
			ssize_t w = write(pfd[1], data + off, len - off);
			if (w <= 0)
				_exit(1);
			off += (size_t)w;
		}
		_exit(0);
	}
	close(pfd[1]);
	struct xsr_stream *s;
	const struct xsr_stream_ops ops = {.section = c_sec, .pages = c_pg, .end = c_end};
	xsr_stream_open(&s, pfd[0], NULL, 0);
	int rc = xsr_stream_run(s, &ops, c);
	snprintf(msg, msglen, "%s", xsr_stream_error(s));
	xsr_stream_close(s);
	close(pfd[0]);
	wait(NULL);
	return rc;
}

static uint8_t *stream_bytes(size_t *len)
{
	char path[64];
	int fd = tmpfd(path);
	write_image(fd, XSR_LAYOUT_STREAM);
	struct stat sb;
	fstat(fd, &sb);
	uint8_t *d = malloc(sb.st_size + 4096);
	cr_assert_eq(pread(fd, d, sb.st_size, 0), sb.st_size);
	close(fd);
	unlink(path);
	*len = (size_t)sb.st_size;
	return d;
}

Test(stream, reads_from_a_pipe_with_callbacks)
{
	size_t len;
	uint8_t *d = stream_bytes(&len);
	struct counts c = {0};
	char msg[512];
	cr_assert_eq(read_stream(d, len, &c, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(c.ends, 1);
	cr_assert_eq(c.pages, 24);
	cr_assert_geq(c.sections, 5); /* producer, memmap, 2 vcpu, config, notes */
	free(d);
}

Test(stream, truncation_everywhere_is_reported_never_crashes)
{
	size_t len;
	uint8_t *d = stream_bytes(&len);
	char msg[512];
	for (size_t cut = 0; cut < len; cut += cut < 512 ? 1 : 509) {
		struct counts c = {0};
		int rc = read_stream(d, cut, &c, msg, sizeof(msg));
		cr_expect_eq(rc, XSR_E_TRUNCATED, "cut at %zu: rc %d (%s)", cut, rc, msg);
		cr_expect(strstr(msg, "offset") != NULL, "cut at %zu: message names no offset: %s", cut, msg);
	}
	free(d);
}

/* Append a record of @type with a correct checksum right after the header's first records. */
static uint8_t *insert_record(const uint8_t *d, size_t len, uint32_t type, size_t *outlen)
{
	struct xsr_record_header rh = {.sh_type = type, .sh_offset = XSR_OFF_STREAMED, .sh_size = 4, .sh_addralign = 8};
	uint8_t body[8] = {1, 2, 3, 4, 0, 0, 0, 0};
	uint8_t rec[64 + 8 + 8];
	memcpy(rec, &rh, 64);
	memcpy(rec + 64, body, 8);
	uint64_t h = xsr_hash(rec, 72);
	memcpy(rec + 72, &h, 8);
	uint8_t *o = malloc(len + sizeof(rec));
	/* After the header, PRODUCER (64+240+8) and MEMMAP (64+2*16+8): END's
	 * chain then disagrees, so only the unknown-type handling shows before it. */
	size_t at = 128 + 312 + 104;
	memcpy(o, d, at);
	memcpy(o + at, rec, sizeof(rec));
	memcpy(o + at + sizeof(rec), d + at, len - at);
	*outlen = len + sizeof(rec);
	return o;
}

Test(stream, unknown_mandatory_is_refused_by_number_optional_is_skipped)
{
	size_t len, l2;
	uint8_t *d = stream_bytes(&len);
	char msg[512];
	struct counts c = {0};
	uint8_t *m = insert_record(d, len, XSR_SHT(0x77, 0), &l2);
	cr_assert_eq(read_stream(m, l2, &c, msg, sizeof(msg)), XSR_E_UNSUPPORTED);
	cr_assert(strstr(msg, "unknown mandatory record type 119") != NULL, "%s", msg);
	free(m);
	m = insert_record(d, len, XSR_SHT(0x77, 1), &l2);
	memset(&c, 0, sizeof(c));
	int rc = read_stream(m, l2, &c, msg, sizeof(msg));
	/* Skipped, but it is a record the END chain did not count: the chain catches the splice. */
	cr_assert_eq(rc, XSR_E_CHECKSUM, "%d %s", rc, msg);
	cr_assert_eq(c.pages, 24, "the optional record was skipped and reading went on to the pages");
	free(m);
	free(d);
}

Test(vcpu, encode_decode_and_reject)
{
	struct xsr_vcpu_state *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	synth_vcpu(3, a);
	a->r.xsave_len = 4;
	a->r.lapic_len = 1024;
	memset(a->lapic, 0x5a, 1024);
	uint64_t n = xsr_vcpu_encoded_size(a);
	uint8_t *buf = malloc(n);
	cr_assert_eq(xsr_vcpu_encode(a, buf, n), (int64_t)n);
	const char *why = "";
	cr_assert_eq(xsr_vcpu_decode(buf, n, b, &why), 0, "%s", why);
	cr_assert_eq(b->r.rip, a->r.rip);
	cr_assert_eq(b->lapic[100], 0x5a);
	cr_assert_eq(xsr_vcpu_decode(buf, n - 8, b, &why), XSR_E_FORMAT, "short body refused");
	((struct xsr_x86_vcpu *)buf)->nr_msrs = 0xffffff;
	cr_assert_eq(xsr_vcpu_decode(buf, n, b, &why), XSR_E_LIMIT, "huge nr_msrs refused before copying");
	free(a), free(b), free(buf);
}

Test(writer, limits_are_enforced)
{
	char path[64], err[256];
	int fd = tmpfd(path);
	struct xsr_writer *w;
	struct xsr_writer_params p = {.machine = EM_X86_64, .kind = XSR_KIND_SAVE, .nr_vcpus = XSR_MAX_VCPUS + 1,
				      .nr_runs = 1, .runs = RUNS};
	cr_assert_eq(xsr_writer_open(&w, fd, &p, err, sizeof(err)), XSR_E_LIMIT);
	p.nr_vcpus = XSR_MAX_VCPUS;
	cr_assert_eq(xsr_writer_open(&w, fd, &p, err, sizeof(err)), 0, "%s", err);
	uint64_t bad = 0x5000;
	const void *z = NULL;
	cr_assert_eq(xsr_writer_put_pages(w, &bad, 1, &z), XSR_E_RANGE);
	cr_assert(strstr(xsr_writer_error(w), "0x5000") != NULL);
	char *big = calloc(1, XSR_MAX_CONFIG + 1);
	cr_assert_eq(xsr_writer_add(w, XSR_SEC_CONFIG, 0, big, XSR_MAX_CONFIG + 1), XSR_E_LIMIT);
	cr_assert_eq(xsr_writer_add(w, XSR_SEC_CONFIG, 0, big, XSR_MAX_CONFIG), 0);
	free(big);
	xsr_writer_abort(w);
	struct xsr_memrun overlap[2] = {{0, 10}, {5, 10}};
	p.runs = overlap;
	p.nr_runs = 2;
	cr_assert_eq(xsr_writer_open(&w, fd, &p, err, sizeof(err)), XSR_E_FORMAT);
	close(fd);
	unlink(path);
}

Test(backend, synth_ops_complete)
{
	struct xsr_backend *be;
	struct xsr_synth_params sp = {.mem_bytes = 1 << 20, .nr_vcpus = 1};
	cr_assert_eq(synth_open(&be, &sp), 0);
	cr_assert_null(backend_check(be->ops));
	be->ops->close(be);
}

/* map_guest is a capability: a backend without it is complete, and lazy restore says it cannot. */
Test(backend, lazy_restore_needs_map_guest)
{
	struct xsr_backend *be;
	struct xsr_synth_params sp = {.mem_bytes = 1 << 20, .nr_vcpus = 1};
	struct xsr_lazy *lz = (struct xsr_lazy *)&sp;
	struct xsr_restore_stats st;
	char err[256] = "";
	int fd = open("/dev/null", O_RDONLY);

	cr_assert_eq(synth_open(&be, &sp), 0);
	cr_assert_null(be->ops->map_guest);
	cr_assert_null(backend_check(be->ops));
	cr_assert_eq(lazy_restore(be, fd, NULL, &lz, &st, err, sizeof(err)), XSR_E_UNSUPPORTED);
	cr_assert_null(lz);
	cr_assert(strstr(err, "synthetic backend has no lazy restore"), "%s", err);
	close(fd);
	be->ops->close(be);
}

/*
 * XSR_OPEN_NO_XEN_LAYOUT: a Xen PV image whose PT_LOAD disagrees with its p2m
 * tree is refused by a plain open, opened with the flag (pages still read and
 * verified through the index); unknown flags are refused.
 */
Test(reader, open_flags_skip_only_the_xen_layout_check)
{
	char path[64], err[256];
	int fd = tmpfd(path);
	struct xsr_xen_pv pv = {.xen_major = 4, .xen_minor = 17};
	static const struct xsr_memrun run = {0, 64};
	struct xsr_writer *w;
	struct xsr_writer_params p = {.machine = EM_X86_64, .kind = XSR_KIND_SAVE, .nr_vcpus = 1, .nr_runs = 1,
				      .runs = &run, .hypervisor = "xen", .xen_pv = &pv};
	cr_assert_eq(xsr_writer_open(&w, fd, &p, err, sizeof(err)), 0, "%s", err);
	static uint8_t pages[64][4096];
	uint64_t pfns[64];
	const void *ptr[64];
	for (int i = 0; i < 64; i++) {
		pfns[i] = (uint64_t)i;
		fill(pages[i], pfns[i], (uint8_t)(1 + i % 5));
		ptr[i] = pages[i];
	}
	cr_assert_eq(xsr_writer_put_pages(w, pfns, 64, ptr), 0, "%s", xsr_writer_error(w));
	struct xsr_vcpu_state *vs = calloc(1, sizeof(*vs));
	synth_vcpu(0, vs);
	cr_assert_eq(xsr_writer_set_vcpu(w, vs), 0);
	free(vs);
	cr_assert_eq(xsr_writer_close(w, err, sizeof(err)), 0, "%s", err);
	struct xsr_image *img;
	cr_assert_eq(xsr_image_open(&img, fd, err, sizeof(err)), 0, "%s", err);
	xsr_image_close(img);
	/* move the first PT_LOAD's p_paddr by 2 MiB */
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	cr_assert_eq(pread(fd, &eh, sizeof(eh), 0), (ssize_t)sizeof(eh));
	cr_assert_eq(pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + sizeof(ph))), (ssize_t)sizeof(ph));
	cr_assert_eq(ph.p_type, PT_LOAD);
	ph.p_paddr += 0x200000;
	cr_assert_eq(pwrite(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + sizeof(ph))), (ssize_t)sizeof(ph));
	cr_assert_lt(xsr_image_open(&img, fd, err, sizeof(err)), 0);
	cr_assert(strstr(err, "not the PT_LOAD"), "%s", err);
	/* The edit also breaks the integrity section's phdr hash, which open checks too (issue 15). */
	cr_assert_lt(xsr_image_open_flags(&img, fd, XSR_OPEN_NO_XEN_LAYOUT, err, sizeof(err)), 0);
	cr_assert(strstr(err, "program header table (offset 0x80): checksum mismatch"), "%s", err);
	cr_assert_eq(xsr_image_open_flags(&img, fd, XSR_OPEN_NO_XEN_LAYOUT | XSR_OPEN_NO_CHECK, err, sizeof(err)), 0, "%s", err);
	uint8_t got[4096];
	struct xsr_index_entry ix;
	cr_assert_eq(xsr_image_read_pages(img, 0, 7, 1, got, &ix), 0, "%s", xsr_image_error(img));
	cr_assert_eq(memcmp(got, pages[7], 4096), 0);
	xsr_image_close(img);
	cr_assert_lt(xsr_image_open_flags(&img, fd, 0x80, err, sizeof(err)), 0);
	cr_assert(strstr(err, "unknown flags"), "%s", err);
	close(fd);
	unlink(path);
}

/* ---- the same image from an fd and from memory ---- */

static uint8_t *fd_bytes(int fd, size_t *len)
{
	struct stat sb;
	cr_assert_eq(fstat(fd, &sb), 0);
	uint8_t *b = malloc((size_t)sb.st_size + 8);
	cr_assert_not_null(b);
	cr_assert_eq(pread(fd, b, (size_t)sb.st_size, 0), sb.st_size);
	*len = (size_t)sb.st_size;
	return b;
}

/* Everything a reader hands out, compared between two handles on the same image. */
static void same_image(struct xsr_image *a, struct xsr_image *b)
{
	cr_assert_arr_eq(xsr_image_header(a), xsr_image_header(b), sizeof(struct xsr_file_header));
	cr_assert_eq(xsr_image_nsections(a), xsr_image_nsections(b));
	for (uint32_t i = 0; i < xsr_image_nsections(a); i++) {
		struct xsr_section_info x, y;
		cr_assert_eq(xsr_image_section(a, i, &x), 0);
		cr_assert_eq(xsr_image_section(b, i, &y), 0);
		cr_assert_str_eq(x.name, y.name);
		cr_assert(x.sh_type == y.sh_type && x.code == y.code && x.info == y.info && x.offset == y.offset &&
			  x.size == y.size && x.entsize == y.entsize, "section %u (%s) differs", i, x.name);
		void *bx, *by;
		uint64_t lx, ly;
		int rx = xsr_image_read_section(a, i, &bx, &lx), ry = xsr_image_read_section(b, i, &by, &ly);
		cr_assert_eq(rx, ry, "section %u (%s): %d from the fd, %d from memory", i, x.name, rx, ry);
		if (rx == 0) {
			cr_assert_eq(lx, ly);
			cr_assert_arr_eq(bx, by, lx, "section %u (%s) body", i, x.name);
			free(bx);
			free(by);
		}
	}
	cr_assert_eq(xsr_image_nruns(a), xsr_image_nruns(b));
	cr_assert_arr_eq(xsr_image_runs(a), xsr_image_runs(b), xsr_image_nruns(a) * sizeof(struct xsr_memrun));
	static uint8_t pa[8][4096], pb[8][4096];
	for (uint32_t r = 0; r < xsr_image_nruns(a); r++) {
		const struct xsr_memrun *run = &xsr_image_runs(a)[r];
		cr_assert_eq(xsr_image_run_offset(a, r), xsr_image_run_offset(b, r));
		for (uint64_t k = 0; k < run->count; k++) {
			uint32_t fa = 0, fb = 0;
			struct xsr_index_entry ea, eb;
			cr_assert_eq(xsr_image_read_page(a, run->pfn + k, pa[0], &fa), 0, "%s", xsr_image_error(a));
			cr_assert_eq(xsr_image_read_page(b, run->pfn + k, pb[0], &fb), 0, "%s", xsr_image_error(b));
			cr_assert_eq(fa, fb);
			cr_assert_arr_eq(pa[0], pb[0], 4096, "pfn 0x%llx", (unsigned long long)(run->pfn + k));
			cr_assert_eq(xsr_image_page_entry(a, run->pfn + k, &ea), 0);
			cr_assert_eq(xsr_image_page_entry(b, run->pfn + k, &eb), 0);
			cr_assert_arr_eq(&ea, &eb, sizeof(ea));
		}
		struct xsr_index_entry ia[8], ib[8];
		uint64_t n = run->count < 8 ? run->count : 8;
		cr_assert_eq(xsr_image_read_pages(a, r, run->count - n, n, pa, ia), 0, "%s", xsr_image_error(a));
		cr_assert_eq(xsr_image_read_pages(b, r, run->count - n, n, pb, ib), 0, "%s", xsr_image_error(b));
		cr_assert_arr_eq(pa, pb, n * 4096);
		cr_assert_arr_eq(ia, ib, n * sizeof(ia[0]));
		void *ma, *mb;
		uint64_t la, lb;
		cr_assert_eq(xsr_image_map_run(a, r, &ma, &la), 0, "%s", xsr_image_error(a));
		cr_assert_eq(xsr_image_map_run(b, r, &mb, &lb), 0, "%s", xsr_image_error(b));
		cr_assert_eq(la, lb);
		cr_assert_arr_eq(ma, mb, la, "run %u mapped", r);
		memset(mb, 0xee, (size_t)lb); /* private: the image must not change */
		munmap(ma, la);
		munmap(mb, lb);
	}
	uint8_t *page = pa[0];
	cr_assert_eq(xsr_image_read_page(a, 0x20, page, NULL), XSR_E_RANGE);
	cr_assert_eq(xsr_image_read_page(b, 0x20, page, NULL), XSR_E_RANGE);
	cr_assert_str_eq(xsr_image_error(a), xsr_image_error(b));
	struct xsr_vcpu_state *va = malloc(sizeof(*va)), *vb = malloc(sizeof(*vb));
	for (uint32_t v = 0; v < xsr_image_header(a)->nr_vcpus; v++) {
		cr_assert_eq(xsr_image_vcpu(a, v, va), 0, "%s", xsr_image_error(a));
		cr_assert_eq(xsr_image_vcpu(b, v, vb), 0, "%s", xsr_image_error(b));
		cr_assert_eq(va->r.rip, vb->r.rip);
		cr_assert_eq(va->r.cr3, vb->r.cr3);
		cr_assert_eq(va->r.nr_msrs, vb->r.nr_msrs);
	}
	free(va);
	free(vb);
	cr_assert_eq(xsr_image_check_index(a), 0);
	cr_assert_eq(xsr_image_check_index(b), 0);
	cr_assert_eq(xsr_image_verify(a, NULL, NULL), 0, "%s", xsr_image_error(a));
	cr_assert_eq(xsr_image_verify(b, NULL, NULL), 0, "%s", xsr_image_error(b));
}

/* Also from an odd address: the reader must not rely on the caller's alignment. */
Test(reader, memory_and_fd_give_the_same_image)
{
	char path[64], err[256];
	int fd = tmpfd(path);
	write_image(fd, 0);
	size_t len;
	uint8_t *buf = fd_bytes(fd, &len);
	uint8_t *odd = malloc(len + 1);
	memcpy(odd + 1, buf, len);
	struct xsr_image *f, *m;
	cr_assert_eq(xsr_image_open(&f, fd, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(xsr_image_open_mem(&m, buf, len, 0, err, sizeof(err)), 0, "%s", err);
	same_image(f, m);
	xsr_image_close(m);
	cr_assert_eq(xsr_image_open_mem(&m, odd + 1, len, 0, err, sizeof(err)), 0, "%s", err);
	same_image(f, m);
	xsr_image_close(m);
	xsr_image_close(f);
	uint8_t *again = fd_bytes(fd, &len);
	cr_assert_arr_eq(again, buf, len, "writing into a mapped run changed the image");
	free(again);
	free(odd);
	free(buf);
	close(fd);
	unlink(path);
}

/* A buffer shorter than the image is refused, as a short file is, with the same message. */
Test(reader, short_buffer_is_refused_like_a_short_file)
{
	char path[64], cpath[64], err[256], ferr[256];
	int fd = tmpfd(path), cut = tmpfd(cpath);
	write_image(fd, 0);
	size_t len;
	uint8_t *buf = fd_bytes(fd, &len);
	const size_t cuts[] = {0, 1, 64, 127, 128, 4096, len / 2, len - 64, len - 1};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		size_t n = cuts[i];
		uint8_t *p = malloc(n ? n : 1); /* exactly @n octets: ASan sees a read past the end */
		memcpy(p, buf, n);
		struct xsr_image *img = (void *)1;
		int rc = xsr_image_open_mem(&img, p, n, 0, err, sizeof(err));
		cr_expect_lt(rc, 0, "%zu of %zu octets: opened", n, len);
		cr_expect_null(img);
		cr_expect(rc == XSR_E_TRUNCATED || rc == XSR_E_FORMAT, "%zu octets: rc %d (%s)", n, rc, err);
		cr_expect(strstr(err, "0x") || strstr(err, "octets"), "%zu octets: message names no offset: %s", n, err);
		cr_assert_eq(ftruncate(cut, 0), 0);
		cr_assert_eq(pwrite(cut, buf, n, 0), (ssize_t)n);
		cr_expect_eq(xsr_image_open(&img, cut, ferr, sizeof(ferr)), rc, "%zu octets", n);
		cr_expect_str_eq(err, ferr, "%zu octets: memory and fd messages differ", n);
		free(p);
	}
	struct xsr_image *img;
	cr_assert_eq(xsr_image_open_mem(&img, NULL, 4096, 0, err, sizeof(err)), XSR_E_INVAL);
	cr_assert(strstr(err, "no buffer"), "%s", err);
	cr_assert_eq(xsr_image_open_mem(&img, buf, len, 0x80, err, sizeof(err)), XSR_E_INVAL);
	cr_assert(strstr(err, "xsr_image_open_mem: unknown flags"), "%s", err);
	free(buf);
	close(fd), close(cut);
	unlink(path), unlink(cpath);
}

/* What a stream hands out, folded into one checksum per kind. */
struct digest {
	uint64_t sections, pages;
	uint32_t npages, ends;
};
static int d_sec(void *c, const struct xsr_record_header *rh, const void *b)
{
	struct digest *d = c;
	d->sections = d->sections * 31 + xsr_hash(rh, sizeof(*rh)) + xsr_hash(b, rh->sh_size);
	return 0;
}
static int d_pg(void *c, const uint64_t *p, uint32_t n, const uint8_t *data)
{
	struct digest *d = c;
	uint32_t ndata = 0;
	for (uint32_t i = 0; i < n; i++)
		ndata += !(p[i] & XSR_PFN_ZERO);
	d->pages = d->pages * 31 + xsr_hash(p, n * 8ull) + xsr_hash(data, ndata * 4096ull);
	d->npages += n;
	return 0;
}
static int d_end(void *c, const struct xsr_end *e)
{
	((struct digest *)c)->ends++;
	return 0;
}
static const struct xsr_stream_ops digest_ops = {.section = d_sec, .pages = d_pg, .end = d_end};

static int digest_stream(struct xsr_stream *s, struct digest *d, char *msg, size_t msglen)
{
	memset(d, 0, sizeof(*d));
	int rc = xsr_stream_run(s, &digest_ops, d);
	snprintf(msg, msglen, "%s", xsr_stream_error(s));
	return rc;
}

Test(stream, memory_and_fd_give_the_same_records)
{
	char path[64], err[256], msg[512];
	int fd = tmpfd(path);
	write_image(fd, XSR_LAYOUT_STREAM);
	size_t len;
	uint8_t *buf = fd_bytes(fd, &len);
	uint8_t *odd = malloc(len + 1);
	memcpy(odd + 1, buf, len); /* not 8-aligned: bodies are copied, not used in place */
	struct digest df, dm, dodd;
	struct xsr_stream *s;
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	cr_assert_eq(xsr_stream_open(&s, fd, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(digest_stream(s, &df, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(xsr_stream_offset(s), len);
	xsr_stream_close(s);
	cr_assert_eq(xsr_stream_open_mem(&s, buf, len, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(digest_stream(s, &dm, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(xsr_stream_offset(s), len);
	cr_assert_arr_eq(xsr_stream_header(s), buf + 64, sizeof(struct xsr_file_header));
	xsr_stream_close(s);
	cr_assert_eq(xsr_stream_open_mem(&s, odd + 1, len, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(digest_stream(s, &dodd, msg, sizeof(msg)), 0, "%s", msg);
	xsr_stream_close(s);
	cr_assert_eq(df.ends, 1);
	cr_assert_eq(df.npages, 24);
	cr_assert_arr_eq(&df, &dm, sizeof(df), "fd and memory streams differ");
	cr_assert_arr_eq(&df, &dodd, sizeof(df), "fd and unaligned memory streams differ");
	/* Short buffers: truncated, naming the offset, as from a pipe. */
	for (size_t cut = 0; cut < len; cut += cut < 256 ? 7 : 1021) {
		uint8_t *p = malloc(cut ? cut : 1);
		memcpy(p, buf, cut);
		cr_assert_eq(xsr_stream_open_mem(&s, p, cut, err, sizeof(err)), 0, "%s", err);
		int rc = digest_stream(s, &dm, msg, sizeof(msg));
		cr_expect_eq(rc, XSR_E_TRUNCATED, "cut at %zu: rc %d (%s)", cut, rc, msg);
		cr_expect(strstr(msg, "offset 0x") != NULL, "cut at %zu: message names no offset: %s", cut, msg);
		xsr_stream_close(s);
		free(p);
	}
	cr_assert_eq(xsr_stream_open_mem(&s, NULL, 1, err, sizeof(err)), XSR_E_INVAL);
	cr_assert_null(s);
	free(odd);
	free(buf);
	close(fd);
	unlink(path);
}

/* xsr_section_derived: what the layout or the rest of the image makes is not content (xsr diff). */
Test(format, derived_sections_are_the_layouts_own)
{
	const uint32_t derived[] = {SHT_NOTE, SHT_STRTAB, XSR_SHT(XSR_SEC_END, 0), XSR_SHT(XSR_SEC_PAGES, 0),
				    XSR_SHT(XSR_SEC_INDEX, 0), XSR_SHT(XSR_SEC_INTEGRITY, 0),
				    XSR_SHT(XSR_SEC_XEN_P2M_TREE, 1), XSR_SHT(XSR_SEC_MIG_ROUND, 0)};
	const uint32_t content[] = {XSR_SHT(XSR_SEC_CONFIG, 0), XSR_SHT(XSR_SEC_VCPU, 0), XSR_SHT(XSR_SEC_MEMMAP, 0),
				    XSR_SHT(XSR_SEC_P2M, 0), XSR_SHT(XSR_SEC_PRODUCER, 0),
				    XSR_SHT(XSR_SEC_VMCOREINFO, 1), XSR_SHT(0x7777, 1), SHT_PROGBITS};
	for (size_t i = 0; i < sizeof(derived) / sizeof(derived[0]); i++)
		cr_expect(xsr_section_derived(derived[i]), "sh_type 0x%x is derived", derived[i]);
	for (size_t i = 0; i < sizeof(content) / sizeof(content[0]); i++)
		cr_expect(!xsr_section_derived(content[i]), "sh_type 0x%x is content", content[i]);
}

/* verify --json's source: each problem placed by section, offset and pfn. */
struct placed {
	struct xsr_finding f[4];
	int n;
};
static void on_found(void *ctx, const struct xsr_finding *f)
{
	struct placed *p = ctx;
	if (p->n < 4)
		p->f[p->n++] = *f;
}

Test(reader, findings_name_the_section_offset_and_pfn)
{
	char path[64], err[256];
	int fd = tmpfd(path);
	write_image(fd, 0);
	struct xsr_image *img;
	cr_assert_eq(xsr_image_open(&img, fd, err, sizeof(err)), 0, "%s", err);
	uint64_t page = xsr_image_run_offset(img, 1) + 4096; /* pfn 0x101 */
	struct xsr_section_info cfg;
	cr_assert_geq(xsr_image_find(img, XSR_SEC_CONFIG, ~0u, &cfg), 0);
	uint64_t cfg_off = cfg.offset;
	xsr_image_close(img);

	flip(fd, (off_t)page + 100);
	flip(fd, (off_t)cfg_off + 3);
	cr_assert_eq(xsr_image_open_flags(&img, fd, XSR_OPEN_NO_CHECK, err, sizeof(err)), 0, "%s", err);
	struct placed p = {.n = 0};
	uint64_t total = 0;
	cr_assert_lt(xsr_image_verify_findings(img, on_found, &p, &total), 0);
	xsr_image_close(img);
	cr_assert_eq(total, 2);
	cr_assert_eq(p.n, 2);
	int pi = strcmp(p.f[0].section, ".xsr.pages") ? 1 : 0, ci = !pi;
	cr_expect_str_eq(p.f[pi].section, ".xsr.pages");
	cr_expect_eq(p.f[pi].offset, page);
	cr_expect_eq(p.f[pi].pfn, 0x101);
	cr_expect_eq(p.f[pi].code, XSR_E_CHECKSUM);
	cr_expect_str_eq(p.f[ci].section, ".xsr.config");
	cr_expect_eq(p.f[ci].offset, cfg_off);
	cr_expect_eq(p.f[ci].pfn, XSR_NO_PFN);
	/* A full open refuses it, and says where. */
	struct xsr_finding w;
	cr_assert_lt(xsr_image_open_where(&img, fd, 0, err, sizeof(err), &w), 0);
	cr_expect_str_eq(w.section, ".xsr.config", "%s", err);
	cr_expect_eq(w.offset, cfg_off);
	flip(fd, (off_t)page + 100);
	flip(fd, (off_t)cfg_off + 3);
	/* The file header lies in no section. */
	flip(fd, 0x50);
	cr_assert_lt(xsr_image_open_where(&img, fd, XSR_OPEN_NO_CHECK, err, sizeof(err), &w), 0);
	cr_expect_str_eq(w.section, "", "%s", err);
	cr_expect_eq(w.offset, 0, "%s", err);
	close(fd);
	unlink(path);
}

Test(stream, error_at_names_the_record_as_the_seekable_layout_does)
{
	size_t len;
	uint8_t *d = stream_bytes(&len);
	/* The producer record follows the 128-octet file header; its body starts 64 octets in. */
	d[0x80 + 64 + 10] ^= 0x10;
	char err[256];
	struct xsr_stream *s;
	cr_assert_eq(xsr_stream_open_mem(&s, d, len, err, sizeof(err)), 0, "%s", err);
	cr_assert_lt(xsr_stream_run(s, NULL, NULL), 0);
	struct xsr_finding f;
	xsr_stream_error_at(s, &f);
	cr_expect_str_eq(f.section, ".xsr.producer", "%s", xsr_stream_error(s));
	cr_expect_eq(f.offset, 0x80);
	cr_expect_eq(f.pfn, XSR_NO_PFN);
	cr_expect_str_eq(f.message, xsr_stream_error(s));
	xsr_stream_close(s);
	free(d);
	cr_expect_str_eq(xsr_section_elf_name(XSR_SHT(XSR_SEC_PAGES, 0)), ".xsr.pages");
	cr_expect_str_eq(xsr_section_elf_name(SHT_NOTE), ".note");
	cr_expect_str_eq(xsr_section_elf_name(XSR_SHT(XSR_SEC_END, 0)), ".xsr.end");
}
