/*
 * xsr_qemu_export (xsrelf/qemu.h, issue 18) on a small image made here as
 * the QEMU import makes one: the stream it writes is checked octet by
 * octet against the canonical form of docs/qemu-compat.md (Export), for
 * pc.ram below 4 GiB and split at 4 GiB; an image whose memory is not the
 * size of the stream's pc.ram, one whose CONFIG disagrees, and one with no
 * QEMU items are refused with the reason.  tests/qemu/export.sh does the
 * same with real QEMU.
 */
#include <criterion/criterion.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xsrelf/qemu.h>
#include <xsrelf/reader.h>
#include <xsrelf/writer.h>

void synth_vcpu(uint32_t id, struct xsr_vcpu_state *st);

struct buf {
	uint8_t b[32768];
	size_t n;
};
static void put(struct buf *b, const void *p, size_t n)
{
	cr_assert(b->n + n <= sizeof(b->b));
	memcpy(b->b + b->n, p, n);
	b->n += n;
}
static void put8(struct buf *b, uint8_t v) { put(b, &v, 1); }
static void put32(struct buf *b, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		put8(b, (uint8_t)(v >> (24 - 8 * i)));
}
static void put64(struct buf *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		put8(b, (uint8_t)(v >> (56 - 8 * i)));
}
static void putfill(struct buf *b, uint8_t v, size_t n)
{
	cr_assert(b->n + n <= sizeof(b->b));
	memset(b->b + b->n, v, n);
	b->n += n;
}

/* The items, as the import keeps them (PASSTHRU bodies after the header). */
static void item_header(struct buf *b)
{
	put(b, "QEVM", 4);
	put32(b, 3);
	put8(b, QEMU_VM_CONFIGURATION);
	put32(b, 4);
	put(b, "test", 4);
}
static void item_setup(struct buf *b)
{
	put8(b, QEMU_VM_SECTION_START);
	put32(b, 2);
	put8(b, 3);
	put(b, "ram", 3);
	put32(b, 0);
	put32(b, 4);
	put64(b, 0x4000 | QEMU_RAM_FLAG_MEM_SIZE);
	put8(b, 6);
	put(b, "pc.ram", 6);
	put64(b, 0x2000);
	put8(b, 1);
	put(b, "x", 1);
	put64(b, 0x2000);
}
static void item_pcram(struct buf *b)
{
	put8(b, 6);
	put(b, "pc.ram", 6);
	put64(b, 0x2000);
}
static void item_x(struct buf *b)
{
	put8(b, 1);
	put(b, "x", 1);
	put64(b, 0x2000);
	put64(b, 0x1000);
	putfill(b, 0xab, 4096);
}
static void item_dev(struct buf *b)
{
	put8(b, QEMU_VM_SECTION_FULL);
	put32(b, 3);
	put8(b, 3);
	put(b, "dev", 3);
	put32(b, 0);
	put32(b, 1);
	put(b, "STATE", 5);
	put8(b, QEMU_VM_SECTION_FOOTER);
	put32(b, 3);
}
static void item_eof(struct buf *b)
{
	put8(b, QEMU_VM_EOF);
	put8(b, QEMU_VM_VMDESCRIPTION);
	put32(b, 2);
	put(b, "{}", 2);
}

static void add_pt(struct xsr_writer *w, uint32_t seq, uint16_t origin, uint16_t flags, uint32_t type,
		   void (*fill)(struct buf *))
{
	static struct buf b;
	b.n = 0;
	struct xsr_passthru_hdr h = {.type = type, .origin = origin, .flags = flags, .seq = seq};
	putfill(&b, 0, sizeof(h));
	fill(&b);
	h.length = (uint32_t)(b.n - sizeof(h));
	memcpy(b.b, &h, sizeof(h));
	cr_assert_eq(xsr_writer_add(w, XSR_SEC_PASSTHRU, 0, b.b, b.n), 0, "%s", xsr_writer_error(w));
}

/*
 * An image of pc.ram in @runs (2 pages in all unless a test says otherwise:
 * page 0 zero, page 1 of 0x11), the CONFIG @cfg, and the QEMU items if @pt.
 * Returns an fd of the seekable image.
 */
static int make_image(const struct xsr_memrun *runs, uint32_t nruns, const char *cfg, int pt)
{
	char path[] = "/tmp/xsr-qexp-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	unlink(path);
	struct xsr_writer_params p = {.machine = EM_X86_64, .kind = XSR_KIND_SAVE, .layout = XSR_LAYOUT_SEEKABLE,
				      .nr_vcpus = 1, .nr_runs = nruns, .runs = runs, .hypervisor = "qemu"};
	struct xsr_writer *w;
	char err[256];
	cr_assert_eq(xsr_writer_open(&w, fd, &p, err, sizeof(err)), 0, "%s", err);
	if (pt) {
		add_pt(w, 0, XSR_PT_ORIGIN_QEMU_HEADER, 0, 0, item_header);
		add_pt(w, 1, XSR_PT_ORIGIN_QEMU_RAM, 0, 0, item_setup);
		add_pt(w, 2, XSR_PT_ORIGIN_QEMU_RAM, XSR_PT_PAGES, 1, item_pcram);
		add_pt(w, 3, XSR_PT_ORIGIN_QEMU_RAM, 0, 1, item_x);
		add_pt(w, 4, XSR_PT_ORIGIN_QEMU_SECTION, 0, QEMU_VM_SECTION_FULL, item_dev);
		add_pt(w, 5, XSR_PT_ORIGIN_QEMU_SECTION, 0, QEMU_VM_EOF, item_eof);
	}
	cr_assert_eq(xsr_writer_add(w, XSR_SEC_CONFIG, 0, cfg, strlen(cfg)), 0, "%s", xsr_writer_error(w));
	struct xsr_vcpu_state *vs = malloc(sizeof(*vs));
	synth_vcpu(0, vs);
	cr_assert_eq(xsr_writer_set_vcpu(w, vs), 0, "%s", xsr_writer_error(w));
	free(vs);
	static uint8_t page[4096];
	memset(page, 0x11, sizeof(page));
	for (uint32_t r = 0; r < nruns; r++)
		for (uint64_t i = 0; i < runs[r].count; i++) {
			uint64_t pfn = runs[r].pfn + i;
			const void *ptr = r == 0 && i == 0 ? NULL : page;
			cr_assert_eq(xsr_writer_put_pages(w, &pfn, 1, &ptr), 0, "%s", xsr_writer_error(w));
		}
	cr_assert_eq(xsr_writer_close(w, err, sizeof(err)), 0, "%s", err);
	return fd;
}

/* Export the image on @fd: the return code, the message in @err, the octets in @out. */
static int export(int fd, char *err, size_t errlen, struct buf *out)
{
	struct xsr_image *img;
	cr_assert_eq(xsr_image_open(&img, fd, err, errlen), 0, "%s", err);
	char path[] = "/tmp/xsr-qexp-XXXXXX";
	int o = mkstemp(path);
	cr_assert(o >= 0);
	unlink(path);
	struct xsr_qemu_export_stats st;
	int rc = xsr_qemu_export(img, o, NULL, &st, err, errlen);
	xsr_image_close(img);
	struct stat sb;
	cr_assert_eq(fstat(o, &sb), 0);
	cr_assert((size_t)sb.st_size <= sizeof(out->b));
	out->n = (size_t)pread(o, out->b, sizeof(out->b), 0);
	cr_assert_eq(out->n, (size_t)sb.st_size);
	if (rc == 0) {
		cr_assert_eq(st.bytes, out->n);
		cr_assert_eq(st.nr_pages, 2);
		cr_assert_eq(st.page_entries, 2);
		cr_assert_eq(st.zero_entries, 2);
		cr_assert_eq(st.nr_blocks, 2);
		cr_assert_eq(st.nr_sections, 1);
	}
	close(o);
	close(fd);
	return rc;
}

/* The stream docs/qemu-compat.md says the export writes for the image above. */
static void expected(struct buf *b)
{
	b->n = 0;
	item_header(b);
	item_setup(b);
	put64(b, QEMU_RAM_FLAG_EOS);
	put8(b, QEMU_VM_SECTION_FOOTER);
	put32(b, 2);
	put8(b, QEMU_VM_SECTION_PART);
	put32(b, 2);
	put64(b, 0 | QEMU_RAM_FLAG_ZERO); /* pc.ram page 0: zeros, the block named */
	put8(b, 6);
	put(b, "pc.ram", 6);
	put8(b, 0);
	put64(b, 0x1000 | QEMU_RAM_FLAG_PAGE | QEMU_RAM_FLAG_CONTINUE);
	putfill(b, 0x11, 4096);
	put64(b, 0 | QEMU_RAM_FLAG_ZERO); /* x page 0: not in its item, so zeros */
	put8(b, 1);
	put(b, "x", 1);
	put8(b, 0);
	put64(b, 0x1000 | QEMU_RAM_FLAG_PAGE | QEMU_RAM_FLAG_CONTINUE);
	putfill(b, 0xab, 4096);
	put64(b, QEMU_RAM_FLAG_EOS);
	put8(b, QEMU_VM_SECTION_FOOTER);
	put32(b, 2);
	put8(b, QEMU_VM_SECTION_END);
	put32(b, 2);
	put64(b, QEMU_RAM_FLAG_EOS);
	put8(b, QEMU_VM_SECTION_FOOTER);
	put32(b, 2);
	item_dev(b);
	item_eof(b);
}

static void same_octets(const struct buf *got, const struct buf *want)
{
	cr_assert_eq(got->n, want->n, "%zu octets, want %zu", got->n, want->n);
	for (size_t i = 0; i < got->n; i++)
		cr_assert_eq(got->b[i], want->b[i], "octet 0x%zx: 0x%02x, want 0x%02x", i, got->b[i], want->b[i]);
}

static const char CFG[] = "{\"qemu\": {\"machine\": \"test\", \"ram_size\": 8192, \"below_4g\": 8192}}\n";

Test(qemu_export, canonical_form)
{
	static const struct xsr_memrun runs[] = {{0, 2}};
	static struct buf got, want;
	char err[512] = "";
	cr_assert_eq(export(make_image(runs, 1, CFG, 1), err, sizeof(err), &got), 0, "%s", err);
	expected(&want);
	same_octets(&got, &want);
}

Test(qemu_export, pc_ram_above_4g_comes_back)
{
	/* below_4g one page: pc.ram's second page is the image's pfn 0x100000 */
	static const struct xsr_memrun runs[] = {{0, 1}, {0x100000, 1}};
	static struct buf got, want;
	char err[512] = "";
	const char *cfg = "{\"qemu\": {\"ram_size\": 8192, \"below_4g\": 4096}}";
	cr_assert_eq(export(make_image(runs, 2, cfg, 1), err, sizeof(err), &got), 0, "%s", err);
	expected(&want);
	same_octets(&got, &want);
}

Test(qemu_export, memory_not_pc_ram_size_refused)
{
	static const struct xsr_memrun runs[] = {{0, 3}};
	static struct buf got;
	char err[512] = "";
	cr_assert_eq(export(make_image(runs, 1, CFG, 1), err, sizeof(err), &got), XSR_E_UNSUPPORTED);
	cr_assert(strstr(err, "holds 3 pages of memory but the stream's pc.ram (ram setup) is 2 pages"), "%s", err);
}

Test(qemu_export, run_off_layout_refused)
{
	/* the right size, but pc.ram's second page is not at pfn 1 where below_4g puts it */
	static const struct xsr_memrun runs[] = {{0, 1}, {0x100000, 1}};
	static struct buf got;
	char err[512] = "";
	cr_assert_eq(export(make_image(runs, 2, CFG, 1), err, sizeof(err), &got), XSR_E_FORMAT);
	cr_assert(strstr(err, "memory run 1 (pfn 0x100000, 1 pages) is not where pc.ram page 0x1 lies"), "%s", err);
}

Test(qemu_export, config_disagrees_refused)
{
	static const struct xsr_memrun runs[] = {{0, 2}};
	static struct buf got;
	char err[512] = "";
	const char *cfg = "{\"qemu\": {\"ram_size\": 12288, \"below_4g\": 12288}}";
	cr_assert_eq(export(make_image(runs, 1, cfg, 1), err, sizeof(err), &got), XSR_E_FORMAT);
	cr_assert(strstr(err, "ram_size 0x3000"), "%s", err);
	cr_assert(strstr(err, "do not fit pc.ram of 0x2000 octets"), "%s", err);
}

Test(qemu_export, no_qemu_items_refused)
{
	static const struct xsr_memrun runs[] = {{0, 2}};
	static struct buf got;
	char err[512] = "";
	cr_assert_eq(export(make_image(runs, 1, CFG, 0), err, sizeof(err), &got), XSR_E_UNSUPPORTED);
	cr_assert(strstr(err, "no QEMU stream items in this image"), "%s", err);
	cr_assert_eq(got.n, 0, "nothing written before the refusal");
}
