/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Export (xsrelf/xen.h): an image imported from Xen back to an xl save file
 * or a bare libxc stream.  The PASSTHRU items are replayed in order; the
 * image's final pages are written as PAGE_DATA records where the
 * placeholder stands.  --format xc-core is xen_xccore.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <xsrelf/io.h>
#include <xsrelf/reader.h>

#include "internal.h"
#include "xen_internal.h"

struct exp {
	struct xsr_image *img;
	int out;
	char err[512];
	struct xen_pt_item *pts;
	uint32_t npts;
	uint32_t xc_version;
	uint64_t bytes;
	int img_fd;             /* the image's fd, for splice; -1 if not known */
	bool no_splice;         /* the image's file system refused splice: copy */
	bool no_vmsplice;       /* vmsplice refused: write the zeros */
	bool epipe;             /* the output's reader went away */
	int code;               /* the enum xsr_err of a failure (efail: XSR_E_FORMAT unless set) */
	uint32_t dropped;       /* records left out (XSR_XEN_FOREIGN_DROP) */
	const struct xsr_foreign_cb *cb;
	const char *name;       /* the image, for notes */
};

static int efail(struct exp *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int efail(struct exp *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->err, sizeof(e->err), fmt, ap);
	va_end(ap);
	if (!e->code)
		e->code = XSR_E_FORMAT;
	return -1;
}

/* A note to the caller (xsr_foreign_cb.note): an item left out, a header rewritten, a record refused. */
static void enote(struct exp *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void enote(struct exp *e, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	if (!e->cb->note)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	e->cb->note(e->cb->note_ctx, msg);
}

static void eprogress(struct exp *e, uint64_t done, uint64_t total)
{
	if (e->cb->progress)
		e->cb->progress(e->cb->progress_ctx, done, total);
}

static int put(struct exp *e, struct iovec *iov, int n)
{
	int64_t w = xen_put(e->out, iov, n);
	e->epipe |= w == -EPIPE;
	if (w < 0) {
		e->code = XSR_E_IO;
		return efail(e, "writing the output: %s", strerror((int)-w));
	}
	e->bytes += (uint64_t)w;
	return 0;
}

/* One libxc/libxl-style record: type, length, body, zero padding to 8. */
static int put_rec(struct exp *e, uint32_t type, const void *body, uint32_t len)
{
	static const uint8_t zero[8];
	uint32_t rh[2] = {type, len};
	struct iovec v[3] = {{rh, 8}, {(void *)body, len}, {(void *)zero, ((len + 7u) & ~7u) - len}};
	return put(e, v, 3);
}

static void *read_pt(struct exp *e, const struct xen_pt_item *p)
{
	void *b;
	uint64_t len;
	if ((e->code = xsr_image_read_section(e->img, p->sec, &b, &len)) < 0) {
		efail(e, "section %u: %s", p->sec, xsr_image_error(e->img));
		return NULL;
	}
	return b;
}

/*
 * Every page of the image as PAGE_DATA records of up to 1024 pfns.  The
 * index is checked once (xsr_image_check_index), so its zero flags are
 * trusted: a batch reads only its spans of data pages (zero gaps of up to
 * ZGAP pages are read along, to keep the reads few), each span with one
 * pread and every page in it verified; zero pages outside the spans are
 * written from a static zero buffer.  One writev per batch; pages whose Xen
 * type carries no data are left out of the record's data.
 *
 * Into a pipe from an image in a regular file (a restore into Xen: libxl
 * reads the other end), the page data does not pass through this process:
 * the batch is verified first, its spans read VBUF pages at a time into a
 * buffer that stays in the cache, then the record header is written, the
 * data pages are spliced from the image's page cache and the zero pages
 * vmspliced from zero_pages.  The octets are those of the copying path.
 * The pipe holds references to the page cache, not copies: the check is of
 * the file as it was when read, and an image rewritten while the export runs
 * would not be caught (the copying path writes exactly what it checked).
 * zero_pages is const and never written, so the pipe may keep referring to
 * it.  Where the file system refuses splice or the kernel vmsplice, the
 * octets are copied as before.
 */
enum { PBATCH = 1024, ZGAP = 32, ZBUF = 64, VBUF = 64, ZIOV = 64 };
static const uint8_t zero_pages[ZBUF * 4096] __attribute__((aligned(4096)));

/* Zero-copy is for a pipe fed from a regular file (splice needs a pipe on one side). */
static bool zc_usable(const struct exp *e)
{
	struct stat so, si;
	return e->img_fd >= 0 && fstat(e->out, &so) == 0 && S_ISFIFO(so.st_mode) && fstat(e->img_fd, &si) == 0 &&
	       S_ISREG(si.st_mode);
}

/* @len octets of the image at @off into the pipe; through @buf (@cap octets) where splice is refused. */
static int put_file(struct exp *e, uint64_t off, uint64_t len, uint8_t *buf, size_t cap)
{
	loff_t o = (loff_t)off;
	while (len && !e->no_splice) {
		ssize_t n = splice(e->img_fd, &o, e->out, NULL, len < (1u << 30) ? len : (1u << 30), SPLICE_F_MORE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
			e->no_splice = true; /* a file system without splice_read: copy the rest */
			break;
		}
		e->epipe |= n < 0 && errno == EPIPE;
		e->code = XSR_E_IO;
		if (n < 0)
			return efail(e, "splicing image octets at 0x%llx into the output: %s", (unsigned long long)o,
				     strerror(errno));
		if (n == 0)
			return efail(e, "splicing image octets at 0x%llx: the image file ends there (truncated while exported?)",
				     (unsigned long long)o);
		len -= (uint64_t)n;
		e->bytes += (uint64_t)n;
	}
	while (len) {
		size_t n = len < cap ? len : cap;
		/* the library's exact read: a fault-injection point (XSR_FAULT) */
		int re = xsr_read_at(e->img_fd, buf, n, (uint64_t)o);
		if (re < 0 && (e->code = XSR_E_IO))
			return efail(e, "reading image octets at 0x%llx: %s", (unsigned long long)o,
				     re == -EIO ? "I/O error, or the image file ends there" : strerror(-re));
		ssize_t r = (ssize_t)n;
		struct iovec v = {buf, (size_t)r};
		if (put(e, &v, 1) < 0)
			return -1;
		o += r;
		len -= (uint64_t)r;
	}
	return 0;
}

/* @len octets of zeros into the pipe, by reference to zero_pages; written where vmsplice is refused. */
static int put_zero(struct exp *e, uint64_t len)
{
	struct iovec v[ZIOV];
	while (len) {
		int n = 0;
		uint64_t l = len;
		for (; n < ZIOV && l; n++) {
			size_t c = l < sizeof(zero_pages) ? l : sizeof(zero_pages);
			v[n] = (struct iovec){(void *)zero_pages, c};
			l -= c;
		}
		if (e->no_vmsplice) {
			if (put(e, v, n) < 0)
				return -1;
			len = l;
			continue;
		}
		ssize_t w = vmsplice(e->out, v, (unsigned long)n, 0);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EINVAL || errno == ENOSYS)) {
			e->no_vmsplice = true;
			continue;
		}
		e->epipe |= w < 0 && errno == EPIPE;
		if (w <= 0 && (e->code = XSR_E_IO))
			return efail(e, "writing the output: %s", w < 0 ? strerror(errno) : "vmsplice moved nothing");
		/* a short vmsplice ends on a page boundary; the rest starts at zero_pages again, all zeros alike */
		len -= (uint64_t)w;
		e->bytes += (uint64_t)w;
	}
	return 0;
}

/* A stretch of record data: image octets to splice, or zeros; sent when the next page does not extend it. */
struct zc_run {
	bool file;
	uint64_t off, len;
};

static int zc_flush(struct exp *e, struct zc_run *z, uint8_t *buf, size_t cap)
{
	int rc = 0;
	if (z->len)
		rc = z->file ? put_file(e, z->off, z->len, buf, cap) : put_zero(e, z->len);
	z->len = 0;
	return rc;
}

static int zc_add(struct exp *e, struct zc_run *z, bool file, uint64_t off, uint8_t *buf, size_t cap)
{
	if (z->len && z->file == file && (!file || z->off + z->len == off)) {
		z->len += 4096;
		return 0;
	}
	if (zc_flush(e, z, buf, cap) < 0)
		return -1;
	*z = (struct zc_run){file, off, 4096};
	return 0;
}

static int put_pages(struct exp *e)
{
	bool zc = zc_usable(e);
#if XSR_TESTHOOKS
	/* Test-only: the zero-copy path with the copies it falls back on when splice and vmsplice are refused. */
	if (getenv("XSR_TEST_EXPORT_NO_SPLICE"))
		e->no_splice = e->no_vmsplice = true;
#endif
	size_t cap = zc ? VBUF : PBATCH; /* pages data[] holds */
	uint64_t *pfns = malloc(PBATCH * sizeof(*pfns));
	struct xsr_index_entry *ix = malloc(PBATCH * sizeof(*ix));
	struct iovec *iov = malloc((PBATCH + 3) * sizeof(*iov));
	uint8_t *data = malloc(cap * 4096);
	uint8_t *inread = malloc(PBATCH);
	int rc = -1;
	if (!pfns || !ix || !iov || !data || !inread) {
		e->code = XSR_E_NOMEM;
		efail(e, "out of memory");
		goto out;
	}
	if ((e->code = xsr_image_check_index(e->img)) < 0) {
		efail(e, "page index: %s", xsr_image_error(e->img));
		goto out;
	}
	uint32_t nruns = xsr_image_nruns(e->img);
	const struct xsr_memrun *runs = xsr_image_runs(e->img);
	uint64_t done = 0, total = xsr_image_header(e->img)->nr_pages;
	for (uint32_t r = 0; r < nruns; r++) {
		uint64_t roff = xsr_image_run_offset(e->img, r);
		for (uint64_t first = 0; first < runs[r].count; first += PBATCH) {
			uint64_t m = runs[r].count - first < PBATCH ? runs[r].count - first : PBATCH;
			eprogress(e, done, total);
			done += m;
			if ((e->code = xsr_image_run_index(e->img, r, first, m, ix)) < 0) {
				efail(e, "page index: %s", xsr_image_error(e->img));
				goto out;
			}
			/* read the spans of data pages; inread[k]: page k is in data[] */
			memset(inread, 0, m);
			uint64_t k = 0;
			while (k < m) {
				if (!(ix[k].flags & XSR_IDX_DATA)) {
					k++;
					continue;
				}
				uint64_t a = k, b = k + 1, gap = 0;
				for (uint64_t j = k + 1; j < m && gap <= ZGAP; j++) {
					if (ix[j].flags & XSR_IDX_DATA) {
						b = j + 1;
						gap = 0;
					} else {
						gap++;
					}
				}
				/* zero-copy: only checked here, VBUF pages at a time; the octets go by splice below */
				uint64_t step = zc ? cap : b - a;
				for (uint64_t c = a; c < b; c += step) {
					uint64_t n = b - c < step ? b - c : step;
					if ((e->code = xsr_image_read_pages(e->img, r, first + c, n, zc ? data : data + c * 4096,
									    ix + c)) < 0) {
						efail(e, "pages of pfn 0x%llx+%llu: %s",
						      (unsigned long long)(runs[r].pfn + first + c), (unsigned long long)n,
						      xsr_image_error(e->img));
						goto out;
					}
				}
				if (!zc)
					memset(inread + a, 1, b - a);
				k = b;
			}
			uint32_t h[2] = {(uint32_t)m, 0}, nd = 0, niov = 3;
			for (k = 0; k < m; k++) {
				unsigned t = ix[k].flags >> XSR_IDX_XEN_TYPE_SHIFT;
				pfns[k] = (runs[r].pfn + first + k) | (uint64_t)t << XEN_PFN_TYPE_SHIFT;
				if (!xsr_xen_type_has_data(t))
					continue;
				nd++;
				if (zc)
					continue;
				struct iovec *l = &iov[niov - 1];
				if (inread[k]) {
					uint8_t *pg = data + k * 4096;
					if (niov > 3 && (uint8_t *)l->iov_base + l->iov_len == pg)
						l->iov_len += 4096;
					else
						iov[niov++] = (struct iovec){pg, 4096};
				} else if (niov > 3 && l->iov_base == zero_pages && l->iov_len < sizeof(zero_pages)) {
					l->iov_len += 4096;
				} else {
					iov[niov++] = (struct iovec){(void *)zero_pages, 4096};
				}
			}
			uint32_t rh[2] = {XEN_RT_PAGE_DATA, 8 + 8 * (uint32_t)m + 4096 * nd};
			iov[0] = (struct iovec){rh, 8};
			iov[1] = (struct iovec){h, 8};
			iov[2] = (struct iovec){pfns, (size_t)m * 8};
			if (put(e, iov, zc ? 3 : (int)niov) < 0)
				goto out;
			if (!zc)
				continue;
			/* the same octets as the iovecs above: a page indexed as data is the file's, any other zeros */
			struct zc_run z = {0};
			for (k = 0; k < m; k++) {
				if (!xsr_xen_type_has_data(ix[k].flags >> XSR_IDX_XEN_TYPE_SHIFT))
					continue;
				bool file = ix[k].flags & XSR_IDX_DATA;
				if (zc_add(e, &z, file, roff + (first + k) * 4096, data, cap * 4096) < 0)
					goto out;
			}
			if (zc_flush(e, &z, data, cap * 4096) < 0)
				goto out;
		}
	}
	eprogress(e, done, total);
	rc = 0;
out:
	free(pfns);
	free(ix);
	free(iov);
	free(data);
	free(inread);
	return rc;
}


/*
 * Which Xen sources the image holds, and whether it may be exported under
 * the policy: the foreign records are noted (refuse) or counted.
 */
static int export_check(struct exp *e, int xl, int pol, int *have_xl, int *have_libxl)
{
	int have_libxc = 0, have_core = 0, nforeign = 0;
	for (uint32_t i = 0; i < e->npts; i++) {
		const struct xsr_passthru_hdr *h = &e->pts[i].h;
		*have_xl |= h->origin == XSR_PT_ORIGIN_XL_HEADER;
		*have_libxl |= h->origin == XSR_PT_ORIGIN_LIBXL_HEADER;
		have_libxc |= h->origin == XSR_PT_ORIGIN_LIBXC_HEADER;
		have_core |= h->origin == XSR_PT_ORIGIN_XC_CORE;
		if (h->origin == XSR_PT_ORIGIN_LIBXC_RECORD && !(h->flags & XSR_PT_PAGES) &&
		    !xsr_xen_libxc_rec_upstream(e->xc_version, h->type)) {
			nforeign++;
			if (pol == XSR_XEN_FOREIGN_REFUSE)
				enote(e, "%s: item %u is libxc %s (0x%x) of a v%u stream, which Xen 4.17 cannot read", e->name,
				      i, xsr_xen_libxc_rec_name(e->xc_version, h->type), h->type, e->xc_version);
		}
	}
	e->code = XSR_E_UNSUPPORTED;
	if (!e->npts)
		return efail(e, "no Xen records in this image (it was not made by `xsr import`), so no libxc stream to replay; --format xc-core writes any image of a Xen guest");
	if (!have_libxc)
		return efail(e, "the image came from %s and holds no libxc stream to export as %s; --format xc-core writes it as a dump-core",
			     have_core ? "an xc_core dump" : "a source without a libxc stream", xl ? "an xl save" : "a libxc stream");
	if (e->xc_version > 3)
		nforeign++;
	if (nforeign && pol == XSR_XEN_FOREIGN_REFUSE)
		return efail(e, "%d record(s)%s that stock Xen 4.17 cannot read; use --foreign drop to leave them out or --foreign keep to write them anyway",
			     nforeign, e->xc_version > 3 ? " and a v4 stream header" : "");
	e->code = 0;
	return 0;
}

/* Without an xl header of its own, an xl export wraps the libxc stream the way xl 4.17 writes it. */
static int put_xl_header(struct exp *e)
{
	struct xsr_section_info si;
	void *cfg = NULL;
	uint64_t clen = 0;
	if (xsr_image_find(e->img, XSR_SEC_CONFIG, ~0u, &si) >= 0 &&
	    (e->code = xsr_image_read_section(e->img, si.index, &cfg, &clen)) < 0)
		return efail(e, "config: %s", xsr_image_error(e->img));
	uint32_t hdr[4] = {XEN_XL_BYTEORDER, XEN_XL_FLAG_STREAMV2 | (clen ? XEN_XL_FLAG_JSON : 0), 0,
			   clen ? (uint32_t)clen + 4 : 0};
	uint32_t cl = (uint32_t)clen;
	struct iovec v[4] = {{(void *)XEN_XL_MAGIC, 32}, {hdr, 16}, {&cl, clen ? 4 : 0}, {cfg, clen}};
	int r = put(e, v, 4);
	free(cfg);
	return r;
}

/* One PASSTHRU item @p, body @body, as it came (with a libxl wrapper of its own where @synth_libxl). */
static int put_item(struct exp *e, const struct xsr_passthru_hdr *h, uint8_t *body, int pol, int synth_libxl)
{
	int r = 0;
	switch (h->origin) {
	case XSR_PT_ORIGIN_XL_HEADER:
	case XSR_PT_ORIGIN_LIBXL_HEADER: {
		struct iovec v = {body, h->length};
		return put(e, &v, 1);
	}
	case XSR_PT_ORIGIN_LIBXC_HEADER: {
		if (synth_libxl) {
			static const uint8_t lhdr[16] = {'L', 'i', 'b', 'x', 'l', 'F', 'm', 't', 0, 0, 0, 2, 0, 0, 0, 0};
			struct iovec v = {(void *)lhdr, 16};
			if ((r = put(e, &v, 1)) == 0)
				r = put_rec(e, XEN_LT_LIBXC_CONTEXT, NULL, 0);
		}
		if (pol == XSR_XEN_FOREIGN_DROP && e->xc_version > 3 && h->length >= 16) {
			enote(e, "writing the v%u libxc header as v3", e->xc_version);
			body[12] = body[13] = body[14] = 0;
			body[15] = 3;
		}
		struct iovec v = {body, h->length};
		return r ? r : put(e, &v, 1);
	}
	case XSR_PT_ORIGIN_LIBXL_RECORD:
	case XSR_PT_ORIGIN_LIBXC_RECORD:
		r = put_rec(e, h->type, body, h->length);
		if (r == 0 && synth_libxl && h->origin == XSR_PT_ORIGIN_LIBXC_RECORD && h->type == XEN_RT_END)
			r = put_rec(e, XEN_LT_END, NULL, 0);
		return r;
	}
	return 0;
}

/* Replay the PASSTHRU items of e->img to e->out: 0, or -1 with e->err and e->code set. */
static int export_stream(struct exp *e, int xl, int pol)
{
	int have_xl = 0, have_libxl = 0;
	if ((e->code = xen_pt_collect(e->img, &e->pts, &e->npts, &e->xc_version, e->err, sizeof(e->err))) < 0)
		return -1;
	if (export_check(e, xl, pol, &have_xl, &have_libxl) < 0)
		return -1;
	int synth_xl = xl && !have_xl, synth_libxl = xl && !have_xl && !have_libxl;
	if (synth_xl && put_xl_header(e) < 0)
		return -1;
	for (uint32_t i = 0; i < e->npts; i++) {
		const struct xen_pt_item *p = &e->pts[i];
		const struct xsr_passthru_hdr *h = &p->h;
		if (!xl && (h->origin == XSR_PT_ORIGIN_XL_HEADER || h->origin == XSR_PT_ORIGIN_LIBXL_HEADER ||
			    h->origin == XSR_PT_ORIGIN_LIBXL_RECORD))
			continue;
		if (h->origin == XSR_PT_ORIGIN_LIBXC_RECORD && h->flags & XSR_PT_PAGES) {
			if (put_pages(e) < 0)
				return -1;
			continue;
		}
		if (h->origin == XSR_PT_ORIGIN_LIBXC_RECORD && !xsr_xen_libxc_rec_upstream(e->xc_version, h->type) &&
		    pol == XSR_XEN_FOREIGN_DROP) {
			enote(e, "leaving out item %u, libxc %s (0x%x): Xen 4.17 cannot read it", i,
			      xsr_xen_libxc_rec_name(e->xc_version, h->type), h->type);
			e->dropped++;
			continue;
		}
		uint8_t *b = read_pt(e, p);
		if (!b)
			return -1;
		int r = put_item(e, h, b + sizeof(*h), pol, synth_libxl);
		free(b);
		if (r < 0)
			return -1;
	}
	return 0;
}

int xsr_xen_export(struct xsr_image *img, int img_fd, int out_fd, const struct xsr_xen_export_opts *o,
		   struct xsr_xen_export_stats *st, char *err, size_t errlen)
{
	static const struct xsr_xen_export_opts none;
	if (!o)
		o = &none;
	if (st)
		memset(st, 0, sizeof(*st));
	if (!img || out_fd < 0 || o->format < XSR_XEN_FORMAT_XL || o->format > XSR_XEN_FORMAT_XC_CORE ||
	    o->foreign < XSR_XEN_FOREIGN_REFUSE || o->foreign > XSR_XEN_FOREIGN_KEEP) {
		snprintf(err, errlen, "xsr_xen_export: bad argument (format %d, foreign %d)", o->format, o->foreign);
		return XSR_E_INVAL;
	}
	if (o->format == XSR_XEN_FORMAT_XC_CORE) {
		uint64_t bytes = 0;
		int rc = xen_xccore_export(img, out_fd, &o->cb, &bytes, err, errlen);
		if (st)
			st->bytes = bytes;
		return rc;
	}
	struct exp *e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return XSR_E_NOMEM;
	}
	e->img = img;
	e->img_fd = img_fd;
	e->out = out_fd;
	e->cb = &o->cb;
	e->name = o->name ? o->name : "image";
	int rc = 0;
	if (export_stream(e, o->format == XSR_XEN_FORMAT_XL, o->foreign) < 0) {
		snprintf(err, errlen, "%s", e->err);
		rc = e->code < 0 ? e->code : XSR_E_FORMAT;
	}
	if (st) {
		st->bytes = e->bytes;
		st->dropped = e->dropped;
		st->epipe = e->epipe;
	}
	free(e->pts);
	free(e);
	return rc;
}

int xsr_xen_export_fd(int img_fd, int out_fd, const struct xsr_xen_export_opts *o, struct xsr_xen_export_stats *st,
		      char *err, size_t errlen)
{
	struct xsr_image *img;
	if (st)
		memset(st, 0, sizeof(*st));
	/* pages go by the index: the Xen crash layout's PT_LOADs need no check here (a restore waits on this open) */
	int rc = xsr_image_open_flags(&img, img_fd, XSR_OPEN_NO_XEN_LAYOUT, err, errlen);
	if (rc < 0)
		return rc;
	rc = xsr_xen_export(img, img_fd, out_fd, o, st, err, errlen);
	xsr_image_close(img);
	return rc;
}
