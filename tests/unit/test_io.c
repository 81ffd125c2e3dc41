/*
 * Sources and sinks (xsrelf/io.h, issue 17): an image written to a memory
 * sink and to callback sinks is byte for byte the one written to an fd, in
 * both layouts; it reads back from a memory source and from callback
 * sources, one serving short reads; a callback source that fails mid-way
 * gives a clear error naming the offset.
 */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xsrelf/io.h>
#include <xsrelf/reader.h>
#include <xsrelf/writer.h>

void synth_vcpu(uint32_t id, struct xsr_vcpu_state *st);

#define NPAGES 96
static const struct xsr_memrun RUNS[] = {{0, 64}, {256, 32}};

static uint64_t pfn_of(int i)
{
	return i < 64 ? (uint64_t)i : 256 + (uint64_t)(i - 64);
}

static void fill_page(uint8_t *p, int i)
{
	for (int k = 0; k < 4096; k++)
		p[k] = (uint8_t)(i * 7 + k * 13 + (k >> 8));
}

/* Writes the test image on @w (opened by the caller) and closes it. */
static void put_image(struct xsr_writer *w)
{
	static uint8_t pages[NPAGES][4096];
	uint64_t pfns[NPAGES];
	const void *ptr[NPAGES];
	char err[256];
	for (int i = 0; i < NPAGES; i++) {
		pfns[i] = pfn_of(i);
		fill_page(pages[i], i);
		ptr[i] = i % 5 == 0 ? NULL : pages[i]; /* some zero pages: holes / data-less entries */
	}
	cr_assert_eq(xsr_writer_put_pages(w, pfns, NPAGES, ptr), 0, "%s", xsr_writer_error(w));
	static const char cfg[] = "name=io-test\n";
	cr_assert_eq(xsr_writer_add(w, XSR_SEC_CONFIG, 0, cfg, sizeof(cfg)), 0, "%s", xsr_writer_error(w));
	struct xsr_vcpu_state *vs = malloc(sizeof(*vs));
	synth_vcpu(0, vs);
	cr_assert_eq(xsr_writer_set_vcpu(w, vs), 0, "%s", xsr_writer_error(w));
	free(vs);
	cr_assert_eq(xsr_writer_close(w, err, sizeof(err)), 0, "%s", err);
}

static struct xsr_writer_params params(int layout)
{
	return (struct xsr_writer_params){.machine = EM_X86_64, .kind = XSR_KIND_SAVE, .layout = (uint8_t)layout,
					  .nr_vcpus = 1, .nr_runs = 2, .runs = RUNS, .hypervisor = "test"};
}

/* The image through an fd: the reference. */
static uint8_t *via_fd(int layout, size_t *len)
{
	char path[] = "/tmp/xsr-io-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	unlink(path);
	struct xsr_writer *w;
	struct xsr_writer_params p = params(layout);
	char err[256];
	cr_assert_eq(xsr_writer_open(&w, fd, &p, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(xsr_writer_layout(w), layout);
	put_image(w);
	struct stat sb;
	cr_assert_eq(fstat(fd, &sb), 0);
	*len = (size_t)sb.st_size;
	uint8_t *b = malloc(*len + 1);
	cr_assert_eq(pread(fd, b, *len, 0), (ssize_t)*len);
	close(fd);
	return b;
}

/* ---- a callback sink over a growing buffer, taking at most @chunk octets a call ---- */
struct cbsink {
	uint8_t *buf;
	uint64_t len, cap;
	size_t chunk;
	unsigned calls;
};

static void room(struct cbsink *c, uint64_t end)
{
	if (end <= c->cap)
		return;
	uint64_t cap = c->cap ? c->cap : 4096;
	while (cap < end)
		cap *= 2;
	c->buf = realloc(c->buf, cap);
	memset(c->buf + c->cap, 0, cap - c->cap);
	c->cap = cap;
}

static ssize_t cb_pwritev(void *ctx, const struct iovec *iov, int n, uint64_t off)
{
	struct cbsink *c = ctx;
	size_t done = 0;
	c->calls++;
	for (int i = 0; i < n && done < c->chunk; i++) {
		size_t k = iov[i].iov_len < c->chunk - done ? iov[i].iov_len : c->chunk - done;
		room(c, off + done + k);
		memcpy(c->buf + off + done, iov[i].iov_base, k);
		done += k;
	}
	if (off + done > c->len)
		c->len = off + done;
	return (ssize_t)done;
}

static ssize_t cb_writev(void *ctx, const struct iovec *iov, int n)
{
	struct cbsink *c = ctx;
	return cb_pwritev(ctx, iov, n, c->len);
}

static ssize_t cb_spread(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct cbsink *c = ctx;
	if (off >= c->len)
		return 0;
	size_t n = c->len - off < len ? (size_t)(c->len - off) : len;
	memcpy(buf, c->buf + off, n);
	return (ssize_t)n;
}

static int cb_truncate(void *ctx, uint64_t size)
{
	struct cbsink *c = ctx;
	room(c, size);
	if (size < c->len)
		memset(c->buf + size, 0, c->len - size);
	c->len = size;
	return 0;
}

/* ---- a callback source over a buffer: short reads of at most @chunk, failing from @fail_at ---- */
struct cbsrc {
	const uint8_t *buf;
	uint64_t len;
	size_t chunk;
	uint64_t fail_at; /* reads reaching here fail with EIO (UINT64_MAX: never) */
	uint64_t pos;     /* sequential reads */
	unsigned calls;
};

static ssize_t src_pread(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct cbsrc *c = ctx;
	c->calls++;
	if (off >= c->len)
		return 0;
	size_t n = c->len - off < len ? (size_t)(c->len - off) : len;
	if (n > c->chunk)
		n = c->chunk;
	if (off + n > c->fail_at)
		return -EIO;
	memcpy(buf, c->buf + off, n);
	return (ssize_t)n;
}

static ssize_t src_read(void *ctx, void *buf, size_t len)
{
	struct cbsrc *c = ctx;
	ssize_t r = src_pread(ctx, buf, len, c->pos);
	if (r > 0)
		c->pos += (uint64_t)r;
	return r;
}

static int src_size(void *ctx, uint64_t *size)
{
	*size = ((struct cbsrc *)ctx)->len;
	return 0;
}

static void check_pages(struct xsr_image *img)
{
	uint8_t want[4096], got[4096];
	uint32_t fl;
	for (int i = 0; i < NPAGES; i++) {
		cr_assert_eq(xsr_image_read_page(img, pfn_of(i), got, &fl), 0, "pfn %d: %s", i, xsr_image_error(img));
		if (i % 5 == 0)
			memset(want, 0, sizeof(want));
		else
			fill_page(want, i);
		cr_assert(!memcmp(want, got, sizeof(got)), "page %d differs", i);
	}
	cr_assert_eq(xsr_image_verify(img, NULL, NULL), 0, "%s", xsr_image_error(img));
}

struct scount {
	unsigned pages, data, end;
	int bad;
};

static int st_pages(void *ctx, const uint64_t *pfns, uint32_t n, const uint8_t *data)
{
	struct scount *c = ctx;
	uint8_t want[4096];
	for (uint32_t k = 0; k < n; k++, c->pages++) {
		if (pfns[k] & XSR_PFN_ZERO)
			continue;
		int i = (pfns[k] & XSR_PFN_MASK) < 64 ? (int)(pfns[k] & XSR_PFN_MASK) : (int)(pfns[k] & XSR_PFN_MASK) - 256 + 64;
		fill_page(want, i);
		c->bad |= memcmp(want, data, 4096) != 0;
		data += 4096;
		c->data++;
	}
	return 0;
}

static int st_end(void *ctx, const struct xsr_end *e)
{
	((struct scount *)ctx)->end++;
	return 0;
}

static const struct xsr_stream_ops SOPS = {.pages = st_pages, .end = st_end};

static void check_stream(struct xsr_source *src)
{
	struct xsr_stream *s;
	char err[256];
	struct scount c = {0};
	cr_assert_eq(xsr_stream_open_source(&s, src, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(xsr_stream_run(s, &SOPS, &c), 0, "%s", xsr_stream_error(s));
	cr_assert_eq(xsr_stream_expect_eof(s), 0, "%s", xsr_stream_error(s));
	xsr_stream_close(s);
	cr_assert_eq(c.pages, NPAGES);
	cr_assert_eq(c.data, NPAGES - NPAGES / 5 - 1);
	cr_assert_eq(c.end, 1);
	cr_assert(!c.bad);
}

static void same_as_fd(int layout)
{
	size_t flen;
	uint8_t *ref = via_fd(layout, &flen);
	struct xsr_writer_params p = params(layout);
	struct xsr_writer *w;
	char err[256];

	/* memory sink */
	struct xsr_sink *mem;
	cr_assert_eq(xsr_sink_open_mem(&mem, 0), 0);
	cr_assert_eq(xsr_sink_seekable(mem), 1);
	cr_assert_eq(xsr_writer_open_sink(&w, mem, &p, err, sizeof(err)), 0, "%s", err);
	put_image(w);
	uint64_t mlen;
	const uint8_t *m = xsr_sink_mem_data(mem, &mlen);
	cr_assert_eq(mlen, flen, "memory sink %llu octets, fd %zu", (unsigned long long)mlen, flen);
	cr_assert(!memcmp(m, ref, flen), "memory sink differs from the fd");

	/* seekable callback sink with short writes; streamed callbacks (writev only) for a stream */
	struct cbsink cs = {.chunk = 3000};
	struct xsr_sink_callbacks cb = {.pwritev = cb_pwritev, .pread = cb_spread, .truncate = cb_truncate};
	if (layout == XSR_LAYOUT_STREAM)
		cb = (struct xsr_sink_callbacks){.writev = cb_writev};
	struct xsr_sink *cbk;
	cr_assert_eq(xsr_sink_open_callbacks(&cbk, &cb, &cs), 0);
	cr_assert_eq(xsr_sink_seekable(cbk), layout == XSR_LAYOUT_SEEKABLE);
	cr_assert_eq(xsr_writer_open_sink(&w, cbk, &p, err, sizeof(err)), 0, "%s", err);
	put_image(w);
	xsr_sink_close(cbk);
	cr_assert_eq(cs.len, flen);
	cr_assert(!memcmp(cs.buf, ref, flen), "callback sink differs from the fd");
	cr_assert_gt(cs.calls, flen / 3000 / 2, "short writes were continued");

	/* read back: a memory source and a callback source serving short reads */
	struct xsr_source *ms, *cbs;
	struct cbsrc rs = {.buf = m, .len = mlen, .chunk = 777, .fail_at = UINT64_MAX};
	struct xsr_source_callbacks scb = {.pread = src_pread, .size = src_size};
	if (layout == XSR_LAYOUT_STREAM)
		scb = (struct xsr_source_callbacks){.read = src_read};
	cr_assert_eq(xsr_source_open_mem(&ms, m, (size_t)mlen), 0);
	cr_assert_eq(xsr_source_open_callbacks(&cbs, &scb, &rs), 0);
	if (layout == XSR_LAYOUT_SEEKABLE) {
		struct xsr_image *img;
		cr_assert_eq(xsr_image_open_source(&img, ms, 0, err, sizeof(err)), 0, "%s", err);
		check_pages(img);
		xsr_image_close(img);
		cr_assert_eq(xsr_image_open_source(&img, cbs, 0, err, sizeof(err)), 0, "%s", err);
		check_pages(img);
		xsr_image_close(img);
	} else {
		check_stream(ms);
		check_stream(cbs);
	}
	cr_assert_gt(rs.calls, 1);
	xsr_source_close(ms);
	xsr_source_close(cbs);
	xsr_sink_close(mem);
	free(cs.buf);
	free(ref);
}

Test(io, seekable_sinks_and_sources_match_the_fd)
{
	same_as_fd(XSR_LAYOUT_SEEKABLE);
}

Test(io, stream_sinks_and_sources_match_the_fd)
{
	same_as_fd(XSR_LAYOUT_STREAM);
}

/* A source failing at @at: the open or the verification fails with XSR_E_IO and a message naming an offset. */
static void fails_at(const uint8_t *img_buf, size_t len, uint64_t at, int layout)
{
	struct cbsrc rs = {.buf = img_buf, .len = len, .chunk = 1 << 20, .fail_at = at};
	struct xsr_source_callbacks scb = {.pread = src_pread, .size = src_size};
	struct xsr_source *src;
	char err[512] = "";
	cr_assert_eq(xsr_source_open_callbacks(&src, &scb, &rs), 0);
	int rc;
	if (layout == XSR_LAYOUT_SEEKABLE) {
		struct xsr_image *img = NULL;
		rc = xsr_image_open_source(&img, src, 0, err, sizeof(err));
		if (rc == 0) {
			uint8_t page[4096];
			uint32_t fl;
			rc = 0;
			for (int i = 0; i < NPAGES && rc == 0; i++)
				rc = xsr_image_read_page(img, pfn_of(i), page, &fl);
			snprintf(err, sizeof(err), "%s", xsr_image_error(img));
			xsr_image_close(img);
		}
		cr_assert_eq(rc, XSR_E_IO, "failing at 0x%llx: rc %d %s", (unsigned long long)at, rc, err);
	} else {
		struct xsr_stream *s;
		cr_assert_eq(xsr_stream_open_source(&s, src, err, sizeof(err)), 0);
		rc = xsr_stream_run(s, &SOPS, &(struct scount){0});
		snprintf(err, sizeof(err), "%s", xsr_stream_error(s));
		xsr_stream_close(s);
		cr_assert_eq(rc, XSR_E_IO, "failing at 0x%llx: rc %d %s", (unsigned long long)at, rc, err);
	}
	cr_assert(strstr(err, "offset 0x"), "the message names an offset: %s", err);
	xsr_source_close(src);
}

Test(io, a_failing_source_is_a_clear_error)
{
	for (int layout = XSR_LAYOUT_SEEKABLE; layout <= XSR_LAYOUT_STREAM; layout++) {
		size_t len;
		uint8_t *b = via_fd(layout, &len);
		uint64_t points[] = {0, 100, 200, 4096, len / 3, len / 2, len - 600, len - 8};
		for (size_t k = 0; k < sizeof(points) / sizeof(points[0]); k++)
			fails_at(b, len, points[k], layout);
		free(b);
	}
}

Test(io, bounded_memory_sink_and_bad_arguments)
{
	struct xsr_sink *mem;
	struct xsr_writer *w;
	struct xsr_writer_params p = params(XSR_LAYOUT_SEEKABLE);
	char err[256];
	/* A memory sink smaller than the image: a clean failure. */
	cr_assert_eq(xsr_sink_open_mem(&mem, 64 << 10), 0);
	int rc = xsr_writer_open_sink(&w, mem, &p, err, sizeof(err));
	if (rc == 0) {
		uint64_t pfn = 0;
		static uint8_t page[4096] = {1};
		const void *ptr = page;
		rc = xsr_writer_put_pages(w, &pfn, 1, &ptr);
		if (rc == 0)
			rc = xsr_writer_close(w, err, sizeof(err));
		else
			xsr_writer_abort(w);
	}
	cr_assert_lt(rc, 0);
	xsr_sink_close(mem);
	/* A streamed sink cannot take the seekable layout. */
	struct cbsink cs = {.chunk = 1 << 20};
	struct xsr_sink_callbacks cb = {.writev = cb_writev};
	struct xsr_sink *cbk;
	cr_assert_eq(xsr_sink_open_callbacks(&cbk, &cb, &cs), 0);
	cr_assert_eq(xsr_writer_open_sink(&w, cbk, &p, err, sizeof(err)), XSR_E_INVAL);
	cr_assert(strstr(err, "seekable"), "%s", err);
	xsr_sink_close(cbk);
	free(cs.buf);
	/* Nothing to write with, nothing to read with. */
	struct xsr_sink_callbacks none = {0};
	struct xsr_source_callbacks snone = {0};
	struct xsr_source *src;
	cr_assert_eq(xsr_sink_open_callbacks(&cbk, &none, NULL), XSR_E_INVAL);
	cr_assert_eq(xsr_source_open_callbacks(&src, &snone, NULL), XSR_E_INVAL);
	xsr_sink_close(NULL);
	xsr_source_close(NULL);
	/* An image from a read-only callback source needs random access. */
	struct xsr_source_callbacks ronly = {.read = src_read};
	struct cbsrc rs = {.buf = (const uint8_t *)"", .len = 0, .chunk = 1, .fail_at = UINT64_MAX};
	struct xsr_image *img;
	cr_assert_eq(xsr_source_open_callbacks(&src, &ronly, &rs), 0);
	cr_assert_eq(xsr_image_open_source(&img, src, 0, err, sizeof(err)), XSR_E_STATE, "%s", err);
	xsr_source_close(src);
}

Test(io, layout_sniff)
{
	uint8_t h[XSR_HEADER_END] = {0};
	cr_assert_eq(xsr_sniff_layout(h, sizeof(h)), 0);
	h[XSR_EHDR_SIZE + 12] = XSR_LAYOUT_STREAM;
	cr_assert_eq(xsr_sniff_layout(h, sizeof(h)), XSR_LAYOUT_STREAM);
	cr_assert_eq(xsr_sniff_layout(h, XSR_EHDR_SIZE + 12), 0, "too short to hold the field");
	h[XSR_EHDR_SIZE + 12] = 7;
	cr_assert_eq(xsr_sniff_layout(h, sizeof(h)), 0);
	cr_assert_eq(xsr_sniff_layout(NULL, 0), 0);
	cr_assert_eq(xsr_section_writer_made(XSR_SEC_INDEX), 1);
	cr_assert_eq(xsr_section_writer_made(XSR_SEC_CONFIG), 0);
	cr_assert_eq(xsr_section_writer_made(XSR_SEC__COUNT + 5), 0);
}
