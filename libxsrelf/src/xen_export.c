/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xsr export: an image imported from Xen back to an xl save file or a bare
 * libxc stream.  The PASSTHRU items are replayed in order; the image's final
 * pages are written as PAGE_DATA records where the placeholder stands.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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

#include "../cli/cli.h"
#include "../save/save.h"
#include "xencompat.h"

enum foreign_policy { FOREIGN_REFUSE, FOREIGN_DROP, FOREIGN_KEEP };

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
	bool quiet_epipe;       /* ... which the caller tells, if need be: no message */
	/* pages written (done, total), for progress on a terminal; NULL: none */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *pctx;
};

static int efail(struct exp *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int efail(struct exp *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->err, sizeof(e->err), fmt, ap);
	va_end(ap);
	return -1;
}

static int put(struct exp *e, struct iovec *iov, int n)
{
	int64_t w = xsr_writev_all(e->out, iov, n);
	e->epipe |= w == -EPIPE;
	if (w < 0)
		return efail(e, "writing the output: %s", strerror((int)-w));
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
	if (xsr_image_read_section(e->img, p->sec, &b, &len) < 0) {
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
		if (re < 0)
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
		if (w <= 0)
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
		efail(e, "out of memory");
		goto out;
	}
	if (xsr_image_check_index(e->img) < 0) {
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
			if (e->progress)
				e->progress(e->pctx, done, total);
			done += m;
			if (xsr_image_run_index(e->img, r, first, m, ix) < 0) {
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
					if (xsr_image_read_pages(e->img, r, first + c, n, zc ? data : data + c * 4096, ix + c) < 0) {
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
				if (!xen_type_has_data(t))
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
				if (!xen_type_has_data(ix[k].flags >> XSR_IDX_XEN_TYPE_SHIFT))
					continue;
				bool file = ix[k].flags & XSR_IDX_DATA;
				if (zc_add(e, &z, file, roff + (first + k) * 4096, data, cap * 4096) < 0)
					goto out;
			}
			if (zc_flush(e, &z, data, cap * 4096) < 0)
				goto out;
		}
	}
	if (e->progress)
		e->progress(e->pctx, done, total);
	rc = 0;
out:
	free(pfns);
	free(ix);
	free(iov);
	free(data);
	free(inread);
	return rc;
}

int xen_pt_collect(struct xsr_image *img, struct xen_pt_item **items, uint32_t *n, uint32_t *xc_version, char *err,
		   size_t errlen)
{
	uint32_t ns = xsr_image_nsections(img);
	struct xen_pt_item *pts = calloc(ns + 1, sizeof(*pts));
	*items = NULL;
	*n = 0;
	*xc_version = 0;
	if (!pts) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	uint32_t npts = 0;
	for (uint32_t i = 0; i < ns; i++) {
		struct xsr_section_info si;
		if (xsr_image_section(img, i, &si) < 0 || si.code != XSR_SEC_PASSTHRU)
			continue;
		if (si.size < sizeof(struct xen_pt_hdr)) {
			snprintf(err, errlen, "PASSTHRU section %u at offset 0x%llx: %llu octets, shorter than the Xen item header",
				 i, (unsigned long long)si.offset, (unsigned long long)si.size);
			goto fail;
		}
		void *b;
		uint64_t len;
		if (xsr_image_read_section(img, i, &b, &len) < 0) {
			snprintf(err, errlen, "section %u: %s", i, xsr_image_error(img));
			goto fail;
		}
		struct xen_pt_hdr h;
		memcpy(&h, b, sizeof(h));
		if (h.origin == XEN_PT_LIBXC_HEADER && len >= 16 + 16)
			*xc_version = (uint32_t)((uint8_t *)b)[16 + 12] << 24 | ((uint8_t *)b)[16 + 13] << 16 |
				      ((uint8_t *)b)[16 + 14] << 8 | ((uint8_t *)b)[16 + 15];
		free(b);
		if (h.origin < XEN_PT_XL_HEADER || h.origin > XEN_PT_XC_CORE || h.flags & ~XEN_PT_KNOWN_FLAGS ||
		    h.length != len - sizeof(h) || h.seq != npts) {
			snprintf(err, errlen,
				 "PASSTHRU section %u at offset 0x%llx: not a Xen item of this image (origin %u, flags 0x%x, length %u, seq %u, expected seq %u)",
				 i, (unsigned long long)si.offset, h.origin, h.flags, h.length, h.seq, npts);
			goto fail;
		}
		pts[npts++] = (struct xen_pt_item){h, i};
	}
	*items = pts;
	*n = npts;
	return 0;
fail:
	free(pts);
	return -1;
}

static int collect(struct exp *e)
{
	return xen_pt_collect(e->img, &e->pts, &e->npts, &e->xc_version, e->err, sizeof(e->err));
}

/* Replay the PASSTHRU items of e->img to @outfd; errors are printed, naming @in. */
static int export_to(struct exp *e, const char *in, int xl, enum foreign_policy pol, int outfd)
{
	if (collect(e) < 0) {
		xsr_err("export", "%s: %s", in, e->err);
		return -1;
	}
	int have_xl = 0, have_libxl = 0, have_libxc = 0, have_core = 0, nforeign = 0;
	for (uint32_t i = 0; i < e->npts; i++) {
		const struct xen_pt_hdr *h = &e->pts[i].h;
		have_xl |= h->origin == XEN_PT_XL_HEADER;
		have_libxl |= h->origin == XEN_PT_LIBXL_HEADER;
		have_libxc |= h->origin == XEN_PT_LIBXC_HEADER;
		have_core |= h->origin == XEN_PT_XC_CORE;
		if (h->origin == XEN_PT_LIBXC_RECORD && !(h->flags & XEN_PT_PAGES) &&
		    !xen_libxc_rec_upstream(e->xc_version, h->type)) {
			nforeign++;
			if (pol == FOREIGN_REFUSE)
				fprintf(stderr, "xsr export: %s: item %u is libxc %s (0x%x) of a v%u stream, which Xen 4.17 cannot read\n",
					in, i, xen_libxc_rec_name(e->xc_version, h->type), h->type, e->xc_version);
		}
	}
	if (!e->npts) {
		xsr_err("export", "%s: no Xen records in this image (it was not made by `xsr import`), so no libxc stream to replay; --format xc-core writes any image of a Xen guest", in);
		return -1;
	}
	if (!have_libxc) {
		xsr_err("export", "%s: the image came from %s and holds no libxc stream to export as %s; --format xc-core writes it as a dump-core",
			in, have_core ? "an xc_core dump" : "a source without a libxc stream", xl ? "an xl save" : "a libxc stream");
		return -1;
	}
	if (e->xc_version > 3)
		nforeign++;
	if (nforeign && pol == FOREIGN_REFUSE) {
		xsr_err("export", "%s: %d record(s)%s that stock Xen 4.17 cannot read; use --foreign drop to leave them out or --foreign keep to write them anyway",
			in, nforeign, e->xc_version > 3 ? " and a v4 stream header" : "");
		return -1;
	}
	e->out = outfd;
	/* Without an xl header of its own, an xl export wraps the libxc stream the way xl 4.17 writes it. */
	int synth_xl = xl && !have_xl, synth_libxl = xl && !have_xl && !have_libxl;
	if (synth_xl) {
		struct xsr_section_info si;
		void *cfg = NULL;
		uint64_t clen = 0;
		if (xsr_image_find(e->img, XSR_SEC_CONFIG, ~0u, &si) >= 0 &&
		    xsr_image_read_section(e->img, si.index, &cfg, &clen) < 0) {
			xsr_err("export", "%s: config: %s", in, xsr_image_error(e->img));
			return -1;
		}
		uint32_t hdr[4] = {XEN_XL_BYTEORDER, XEN_XL_FLAG_STREAMV2 | (clen ? XEN_XL_FLAG_JSON : 0), 0,
				   clen ? (uint32_t)clen + 4 : 0};
		uint32_t cl = (uint32_t)clen;
		struct iovec v[4] = {{(void *)XEN_XL_MAGIC, 32}, {hdr, 16}, {&cl, clen ? 4 : 0}, {cfg, clen}};
		int r = put(e, v, 4);
		free(cfg);
		if (r < 0)
			goto fail_msg;
	}
	for (uint32_t i = 0; i < e->npts; i++) {
		const struct xen_pt_item *p = &e->pts[i];
		const struct xen_pt_hdr *h = &p->h;
		int r = 0;
		if (!xl && (h->origin == XEN_PT_XL_HEADER || h->origin == XEN_PT_LIBXL_HEADER || h->origin == XEN_PT_LIBXL_RECORD))
			continue;
		if (h->origin == XEN_PT_LIBXC_RECORD && h->flags & XEN_PT_PAGES) {
			if (put_pages(e) < 0)
				goto fail_msg;
			continue;
		}
		if (h->origin == XEN_PT_LIBXC_RECORD && !xen_libxc_rec_upstream(e->xc_version, h->type) && pol == FOREIGN_DROP) {
			fprintf(stderr, "xsr export: leaving out item %u, libxc %s (0x%x): Xen 4.17 cannot read it\n", i,
				xen_libxc_rec_name(e->xc_version, h->type), h->type);
			continue;
		}
		uint8_t *b = read_pt(e, p);
		if (!b)
			goto fail_msg;
		uint8_t *body = b + sizeof(*h);
		switch (h->origin) {
		case XEN_PT_XL_HEADER:
		case XEN_PT_LIBXL_HEADER: {
			struct iovec v = {body, h->length};
			r = put(e, &v, 1);
			break;
		}
		case XEN_PT_LIBXC_HEADER: {
			if (synth_libxl) {
				static const uint8_t lhdr[16] = {'L', 'i', 'b', 'x', 'l', 'F', 'm', 't', 0, 0, 0, 2, 0, 0, 0, 0};
				struct iovec v = {(void *)lhdr, 16};
				if ((r = put(e, &v, 1)) == 0)
					r = put_rec(e, XEN_LT_LIBXC_CONTEXT, NULL, 0);
			}
			if (pol == FOREIGN_DROP && e->xc_version > 3 && h->length >= 16) {
				fprintf(stderr, "xsr export: writing the v%u libxc header as v3\n", e->xc_version);
				body[12] = body[13] = body[14] = 0;
				body[15] = 3;
			}
			struct iovec v = {body, h->length};
			if (r == 0)
				r = put(e, &v, 1);
			break;
		}
		case XEN_PT_LIBXL_RECORD:
		case XEN_PT_LIBXC_RECORD:
			r = put_rec(e, h->type, body, h->length);
			if (r == 0 && synth_libxl && h->origin == XEN_PT_LIBXC_RECORD && h->type == XEN_RT_END)
				r = put_rec(e, XEN_LT_END, NULL, 0);
			break;
		}
		free(b);
		if (r < 0)
			goto fail_msg;
	}
	return 0;
fail_msg:
	if (!(e->epipe && e->quiet_epipe))
		xsr_err("export", "%s: %s", in, e->err);
	return -1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: xsr export [--format xl|libxc|xc-core] [--foreign refuse|drop|keep] IMAGE OUT\n\n"
		   "Write an image of a Xen guest back in a Xen format:\n"
		   "  xl       (default) an xl save file, what `xl restore` reads\n"
		   "  libxc    a bare libxc migration stream\n"
		   "  xc-core  an `xl dump-core` file, what crash reads with the guest's vmlinux\n\n"
		   "xl and libxc need an image imported from an xl save or a libxc stream:\n"
		   "records are replayed as they came; the final pages become PAGE_DATA\n"
		   "records.  Records Xen 4.17 cannot read (never-merged proposals such as\n"
		   "DOMAIN_CONTEXT or the post-copy records, back-channel and unknown records)\n"
		   "make export refuse unless --foreign drop (leave them out, one warning each)\n"
		   "or --foreign keep (write them verbatim).\n\n"
		   "xc-core takes any image of a 64-bit Xen guest: an imported dump-core comes\n"
		   "back byte for byte; an imported save gets its page tables and cr3 put back\n"
		   "to the source's machine frames (from the P2M section), as a restore would;\n"
		   "an `xsr core DOMID` image is written as Xen lays the file out.\n\n"
		   "On a terminal, progress is shown on stderr.\n"
		   XSR_COMMON_HELP);
}

int cmd_export(int argc, char **argv)
{
	static const struct option opts[] = {{"format", required_argument, 0, 'f'}, {"foreign", required_argument, 0, 'F'},
					     {"help", no_argument, 0, 'h'}, XSR_COMMON_OPTS, {0, 0, 0, 0}};
	int xl = 1, xccore = 0, foreign_set = 0, c;
	enum foreign_policy pol = FOREIGN_REFUSE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h" XSR_COMMON_SHORT, opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			xccore = 0;
			if (!strcmp(optarg, "xl"))
				xl = 1;
			else if (!strcmp(optarg, "libxc"))
				xl = 0;
			else if (!strcmp(optarg, "xc-core"))
				xccore = 1;
			else {
				xsr_err("export", "--format %s: need xl, libxc or xc-core", optarg);
				return XSR_EXIT_USAGE;
			}
			break;
		case 'F':
			foreign_set = 1;
			if (!strcmp(optarg, "refuse"))
				pol = FOREIGN_REFUSE;
			else if (!strcmp(optarg, "drop"))
				pol = FOREIGN_DROP;
			else if (!strcmp(optarg, "keep"))
				pol = FOREIGN_KEEP;
			else {
				xsr_err("export", "--foreign %s: need refuse, drop or keep", optarg);
				return XSR_EXIT_USAGE;
			}
			break;
		case 'h': usage(stdout); return XSR_EXIT_OK;
		default:
			if (xsr_common_opt(c))
				break;
			usage(stderr);
			return XSR_EXIT_USAGE;
		}
	}
	if (optind != argc - 2) {
		usage(stderr);
		return XSR_EXIT_USAGE;
	}
	if (xccore && foreign_set) {
		xsr_err("export", "--foreign is about libxc records; it does not apply to --format xc-core");
		return XSR_EXIT_USAGE;
	}
	const char *in = argv[optind], *outp = argv[optind + 1];
	int fd = xsr_open_in("export", in), tmp = -1, ret = XSR_EXIT_FAIL;
	if (fd < 0)
		return XSR_EXIT_FAIL;
	struct xsr_progress pg;
	xsr_progress_init(&pg, "export", "pages", 0);
	struct exp e = {.img_fd = fd, .progress = xsr_progress_cb, .pctx = &pg};
	struct xsr_outfile out = {.fd = -1};
	char err[1024] = "";
	if (xsr_image_open(&e.img, fd, err, sizeof(err)) < 0) {
		/* A streamed image (or stdin): make it seekable first. */
		char t[] = "/tmp/xsr-export-XXXXXX";
		if (lseek(fd, 0, SEEK_SET) != 0 && fd != STDIN_FILENO) {
			xsr_err("export", "%s: %s", in, err);
			goto done;
		}
		if ((tmp = mkstemp(t)) < 0) {
			xsr_err("export", "temporary file: %s", strerror(errno));
			goto done;
		}
		unlink(t);
		struct xsr_convert_opts co = {.layout = XSR_LAYOUT_SEEKABLE};
		char cerr[1024] = "";
		e.img_fd = tmp;
		if (xsr_convert(fd, tmp, &co, cerr, sizeof(cerr)) < 0 ||
		    xsr_image_open(&e.img, tmp, err, sizeof(err)) < 0) {
			xsr_err("export", "%s: %s", in, cerr[0] ? cerr : err);
			goto done;
		}
	}
	if (xsr_out_open(&out, "export", outp) < 0)
		goto done;
	/* A failure may be in reading IN or in writing OUT: messages name both. */
	char *both = NULL;
	if (asprintf(&both, "%s -> %s", in, outp) < 0)
		both = NULL;
	xsr_detail("export", "%s -> %s as %s", in, outp, xccore ? "an xc_core file" : xl ? "an xl save" : "a libxc stream");
	uint64_t t0 = xsr_now_ns();
	int xrc = xccore ? xen_export_xccore(e.img, both ? both : in, out.fd, &pg)
			 : export_to(&e, both ? both : in, xl, pol, out.fd);
	xsr_progress_end(&pg);
	free(both);
	if (xrc < 0)
		goto fail_out;
	if (xsr_out_commit(&out, "export") < 0)
		goto done;
	xsr_detail("export", "%s: done in %.1f ms", outp, (xsr_now_ns() - t0) / 1e6);
	ret = XSR_EXIT_OK;
	goto done;
fail_out:
	xsr_out_abort(&out);
done:
	xsr_image_close(e.img);
	free(e.pts);
	if (tmp >= 0)
		close(tmp);
	if (fd != STDIN_FILENO)
		close(fd);
	return ret;
}

int xen_export_fd(int img_fd, int out_fd, const char *name, void (*progress)(void *, uint64_t, uint64_t), void *pctx,
		  char *err, size_t errlen)
{
	struct exp e = {.img_fd = img_fd, .quiet_epipe = true, .progress = progress, .pctx = pctx};
	int rc = -1;
	/* pages go by the index: the Xen crash layout's PT_LOADs need no check here (xsr restore waits on this open) */
	if (xsr_image_open_flags(&e.img, img_fd, XSR_OPEN_NO_XEN_LAYOUT, err, errlen) < 0)
		return -1;
	if (export_to(&e, name, 1, FOREIGN_REFUSE, out_fd) == 0)
		rc = 0;
	else
		snprintf(err, errlen, "%s", e.err[0] ? e.err : "export failed (see above)");
	if (rc < 0 && e.epipe)
		rc = -EPIPE;
	xsr_image_close(e.img);
	free(e.pts);
	return rc;
}
