/*
 * The replay (issue 17): one set of stream callbacks fed from either layout
 * must see the same header, the same sections and the same pages; with
 * place, the same pages land in the consumer's memory.  Damage a seekable
 * reader must catch (a flipped octet of page data, data in a slot indexed
 * as zero) stops the replay with the pfn named.
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

#define NRUNS 2
static const struct xsr_memrun runs[NRUNS] = {{.pfn = 0, .count = 40}, {.pfn = 100, .count = 600}};
#define NPAGES 640
#define MAXPFN 700

static bool is_zero_pfn(uint64_t pfn)
{
	return pfn % 3 == 0 || (pfn >= 300 && pfn < 340);
}

static void page_of(uint64_t pfn, uint8_t *p)
{
	memset(p, 0, XSR_PAGE_SIZE);
	if (is_zero_pfn(pfn))
		return;
	for (size_t i = 0; i < XSR_PAGE_SIZE / 8; i++)
		((uint64_t *)p)[i] = pfn * 0x9e3779b97f4a7c15ull + i;
}

static int write_image(int layout)
{
	char err[256];
	struct xsr_writer *w;
	int fd = memfd_create("xsr-replay", MFD_CLOEXEC);
	cr_assert(fd >= 0);
	struct xsr_writer_params p = {.machine = EM_X86_64, .kind = XSR_KIND_SAVE, .layout = (uint8_t)layout,
				      .nr_vcpus = 2, .nr_runs = NRUNS, .runs = runs, .hypervisor = "replay"};
	cr_assert_eq(xsr_writer_open(&w, fd, &p, err, sizeof(err)), 0, "%s", err);
	static const char cfg[] = "name = replay\n";
	struct iovec iov = {(void *)cfg, sizeof(cfg)};
	cr_assert_eq(xsr_writer_add_section(w, XSR_SEC_CONFIG, 1, 0, 0, &iov, 1), 0, "%s", xsr_writer_error(w));
	static uint8_t data[NPAGES][XSR_PAGE_SIZE];
	uint64_t pfns[NPAGES];
	const void *ptr[NPAGES];
	uint32_t n = 0;
	for (uint32_t r = 0; r < NRUNS; r++)
		for (uint64_t i = 0; i < runs[r].count; i++, n++) {
			pfns[n] = runs[r].pfn + i;
			page_of(pfns[n], data[n]);
			ptr[n] = is_zero_pfn(pfns[n]) ? NULL : data[n];
		}
	cr_assert_eq(xsr_writer_put_pages(w, pfns, n, ptr), 0, "%s", xsr_writer_error(w));
	for (uint32_t v = 0; v < 2; v++) {
		struct xsr_vcpu_state *st = calloc(1, sizeof(*st));
		st->r.vcpu_id = v;
		st->r.rip = 0x1000 + v;
		cr_assert_eq(xsr_writer_set_vcpu(w, st), 0, "%s", xsr_writer_error(w));
		free(st);
	}
	cr_assert_eq(xsr_writer_close(w, err, sizeof(err)), 0, "%s", err);
	return fd;
}

/* What a consumer saw. */
struct seen {
	struct xsr_file_header fh;
	uint32_t nsecs;
	struct {
		uint32_t sh_type, info;
		uint64_t size, sum;
	} sec[16];
	uint8_t (*mem)[XSR_PAGE_SIZE]; /* MAXPFN pages */
	uint8_t got[MAXPFN];           /* 1 data, 2 zero */
	uint32_t batches, placed, ends;
	uint8_t *placing;
};

static int s_header(void *ctx, const struct xsr_file_header *h)
{
	((struct seen *)ctx)->fh = *h;
	return 0;
}

static int s_section(void *ctx, const struct xsr_record_header *rh, const void *body)
{
	struct seen *s = ctx;
	cr_assert_lt(s->nsecs, 16);
	uint64_t sum = 0;
	for (uint64_t i = 0; i < rh->sh_size; i++)
		sum = sum * 131 + ((const uint8_t *)body)[i];
	/* The producer names the host that wrote it: the same in both, but checked by its length alone. */
	if ((rh->sh_type & XSR_SHT_CODE_MASK) == XSR_SEC_PRODUCER && rh->sh_type != SHT_NOTE)
		sum = 0;
	s->sec[s->nsecs].sh_type = rh->sh_type;
	s->sec[s->nsecs].info = rh->sh_info;
	s->sec[s->nsecs].size = rh->sh_size;
	s->sec[s->nsecs].sum = sum;
	s->nsecs++;
	return 0;
}

static int s_pages(void *ctx, const uint64_t *pfns, uint32_t n, const uint8_t *data)
{
	struct seen *s = ctx;
	cr_assert_leq(n, XSR_MAX_BATCH);
	s->batches++;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t pfn = pfns[i] & XSR_PFN_MASK;
		cr_assert_lt(pfn, MAXPFN);
		if (pfns[i] & XSR_PFN_ZERO) {
			memset(s->mem[pfn], 0, XSR_PAGE_SIZE);
			s->got[pfn] = 2;
		} else {
			memcpy(s->mem[pfn], data, XSR_PAGE_SIZE);
			data += XSR_PAGE_SIZE;
			s->got[pfn] = 1;
		}
	}
	return 0;
}

static int s_end(void *ctx, const struct xsr_end *e)
{
	((struct seen *)ctx)->ends++;
	return 0;
}

static int s_place(void *ctx, uint64_t pfn, uint32_t n, void **dst)
{
	struct seen *s = ctx;
	cr_assert_leq(pfn + n, MAXPFN);
	cr_assert_null(s->placing);
	*dst = s->placing = (uint8_t *)s->mem[pfn];
	return 0;
}

static int s_placed(void *ctx, uint64_t pfn, uint32_t n, void *dst, int rc)
{
	struct seen *s = ctx;
	cr_assert_eq(dst, s->placing);
	s->placing = NULL;
	for (uint32_t i = 0; i < n && rc == 0; i++)
		s->got[pfn + i] = 1;
	s->placed += n;
	return 0;
}

static int replay(int fd, bool place, struct seen *s, char *err, size_t errlen)
{
	struct xsr_replay_ops ops = {
		.size = sizeof(ops),
		.stream = {.header = s_header, .section = s_section, .pages = s_pages, .end = s_end},
	};
	if (place) {
		ops.place = s_place;
		ops.placed = s_placed;
	}
	memset(s, 0, sizeof(*s));
	s->mem = calloc(MAXPFN, XSR_PAGE_SIZE);
	cr_assert_not_null(s->mem);
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	return xsr_replay_fd(fd, &ops, s, err, errlen);
}

static int cmp_sec(const void *a, const void *b)
{
	return memcmp(a, b, 24); /* type, info, size, sum */
}

static void same(struct seen *a, struct seen *b, const char *what)
{
	cr_assert_eq(a->fh.kind, b->fh.kind, "%s", what);
	cr_assert_eq(a->fh.nr_pages, b->fh.nr_pages, "%s", what);
	cr_assert_eq(a->fh.nr_vcpus, b->fh.nr_vcpus, "%s", what);
	cr_assert_eq(a->fh.flags, b->fh.flags, "%s", what);
	cr_assert_eq(a->nsecs, b->nsecs, "%s: %u sections against %u", what, a->nsecs, b->nsecs);
	qsort(a->sec, a->nsecs, sizeof(a->sec[0]), cmp_sec);
	qsort(b->sec, b->nsecs, sizeof(b->sec[0]), cmp_sec);
	for (uint32_t i = 0; i < a->nsecs; i++) {
		cr_assert_eq(a->sec[i].sh_type, b->sec[i].sh_type, "%s: section %u", what, i);
		cr_assert_eq(a->sec[i].info, b->sec[i].info, "%s: section %u", what, i);
		cr_assert_eq(a->sec[i].size, b->sec[i].size, "%s: section %u", what, i);
		cr_assert_eq(a->sec[i].sum, b->sec[i].sum, "%s: section %u type 0x%x", what, i, a->sec[i].sh_type);
	}
	uint8_t want[XSR_PAGE_SIZE];
	for (uint32_t r = 0; r < NRUNS; r++)
		for (uint64_t pfn = runs[r].pfn; pfn < runs[r].pfn + runs[r].count; pfn++) {
			page_of(pfn, want);
			cr_assert(a->got[pfn] && b->got[pfn], "%s: pfn 0x%llx not seen", what, (unsigned long long)pfn);
			cr_assert_arr_eq(a->mem[pfn], want, XSR_PAGE_SIZE, "%s: pfn 0x%llx", what, (unsigned long long)pfn);
			cr_assert_arr_eq(b->mem[pfn], want, XSR_PAGE_SIZE, "%s: pfn 0x%llx", what, (unsigned long long)pfn);
		}
}

Test(replay, both_layouts_same_callbacks)
{
	char err[512];
	int fs = write_image(XSR_LAYOUT_SEEKABLE), ft = write_image(XSR_LAYOUT_STREAM);
	static struct seen a, b, c, d;
	cr_assert_eq(replay(fs, false, &a, err, sizeof(err)), 0, "seekable: %s", err);
	cr_assert_eq(replay(ft, false, &b, err, sizeof(err)), 0, "stream: %s", err);
	cr_assert_eq(a.fh.layout, XSR_LAYOUT_SEEKABLE);
	cr_assert_eq(b.fh.layout, XSR_LAYOUT_STREAM);
	cr_assert_eq(a.ends, 1);
	cr_assert_eq(b.ends, 1);
	same(&a, &b, "seekable against stream");
	/* The same, with data pages placed in the consumer's memory. */
	cr_assert_eq(replay(fs, true, &c, err, sizeof(err)), 0, "seekable, placed: %s", err);
	cr_assert_eq(replay(ft, true, &d, err, sizeof(err)), 0, "stream, placed: %s", err);
	cr_assert_gt(c.placed, 0);
	cr_assert_eq(c.placed, d.placed, "%u pages placed from the image, %u from the stream", c.placed, d.placed);
	same(&c, &d, "placed: seekable against stream");
	same(&a, &c, "seekable: placed against not");
	free(a.mem), free(b.mem), free(c.mem), free(d.mem);
	close(fs);
	close(ft);
}

/* Offset of @pfn's slot in a seekable image. */
static uint64_t slot_off(int fd, uint64_t pfn)
{
	char err[256];
	struct xsr_image *img;
	cr_assert_eq(xsr_image_open(&img, fd, err, sizeof(err)), 0, "%s", err);
	uint64_t off = 0;
	for (uint32_t r = 0; r < xsr_image_nruns(img); r++) {
		const struct xsr_memrun *m = &xsr_image_runs(img)[r];
		if (pfn >= m->pfn && pfn < m->pfn + m->count)
			off = xsr_image_run_offset(img, r) + (pfn - m->pfn) * XSR_PAGE_SIZE;
	}
	xsr_image_close(img);
	cr_assert_neq(off, 0);
	return off;
}

static void damaged(uint64_t pfn, const char *what)
{
	char err[512], name[32];
	static struct seen s;
	for (int place = 0; place < 2; place++) {
		int fd = write_image(XSR_LAYOUT_SEEKABLE);
		uint64_t off = slot_off(fd, pfn) + 1000;
		uint8_t b;
		cr_assert_eq(pread(fd, &b, 1, off), 1);
		b ^= 0x5a;
		cr_assert_eq(pwrite(fd, &b, 1, off), 1);
		int rc = replay(fd, place, &s, err, sizeof(err));
		cr_assert_eq(rc, XSR_E_CHECKSUM, "%s (place %d): rc %d, %s", what, place, rc, err);
		snprintf(name, sizeof(name), "pfn 0x%llx", (unsigned long long)pfn);
		cr_assert(strstr(err, name), "%s (place %d): '%s' does not name %s", what, place, err, name);
		cr_assert(strstr(err, what), "%s (place %d): '%s'", what, place, err);
		free(s.mem);
		close(fd);
	}
}

Test(replay, flipped_page_octet_names_pfn)
{
	damaged(101, "checksum mismatch");
}

Test(replay, data_in_zero_slot_names_pfn)
{
	cr_assert(is_zero_pfn(310));
	damaged(310, "indexed as zero but holds data");
}
