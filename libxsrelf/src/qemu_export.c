/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Export (xsrelf/qemu.h): an image imported from a QEMU migration stream
 * back to a stream v3 that `-incoming` restores.  docs/qemu-compat.md
 * ("Export") is the canonical form written:
 *
 *   header + CONFIGURATION             PASSTHRU origin 7, verbatim
 *   SECTION_START ram: setup, EOS, footer   origin 9 type 0 verbatim + EOS
 *   SECTION_PART ram: every page of every block in MEM_SIZE order, then
 *                     EOS, footer        pc.ram from the image's memory,
 *                                        the others from origin 9 type 1
 *   SECTION_END ram: EOS, footer
 *   device sections                     origin 8 type 4, verbatim
 *   EOF + VMDESCRIPTION                 origin 8 type 0, verbatim
 *
 * as QEMU 7.2's ram_save_setup / ram_save_iterate / ram_save_complete
 * write them for a stopped guest sent in one iteration: each page once, in
 * block order and ascending offset, a ZERO entry (fill 0) for a page of
 * zeros and a PAGE entry otherwise, the block named on its first entry and
 * CONTINUE on the others (QEMU's loader keeps the last block across
 * sections, ram_block_from_stream).  Page data goes out in one writev per
 * batch of up to 1024 pages.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <xsrelf/io.h>
#include <xsrelf/qemu.h>
#include <xsrelf/reader.h>

#include "internal.h"
#include "qemu_internal.h"

#define PAGE 4096u
/*
 * HBUF: entry headers of a batch; a batch is flushed when the next entry
 * and the section ends after it might not fit (room()), so its size only
 * sets how often.  64 KiB holds 7 000 CONTINUE headers, more than a batch.
 */
enum { BATCH = 1024, ZGAP = 32, NIOV = 2 * BATCH + 8, HBUF = 64 * 1024 };
enum { ENTRY_MAX = 8 + 1 + 255 + 1, ENDS_MAX = 13 + 5 + 13 }; /* a named entry; EOS+footer, END header, EOS+footer */

struct pt {
	struct xsr_passthru_hdr h;
	uint32_t sec; /* the image's section index */
};

struct blk {
	char name[256];
	uint8_t nlen;
	uint64_t used;
};

struct exp {
	struct xsr_image *img;
	int out;
	char err[512];
	int code;
	const struct xsr_foreign_cb *cb;
	struct pt *pts;
	uint32_t npts;
	struct blk *blocks;
	uint32_t nblocks;
	int32_t pcram;
	uint32_t ram_id;
	bool footers;
	uint64_t below; /* pc.ram octets below 4 GiB (the import's CONFIG) */
	/* the batch being built: headers in hbuf, iovecs over hbuf and page data */
	struct iovec iov[NIOV];
	int niov;
	uint8_t *hbuf;
	size_t hlen;
	int32_t last_blk; /* the block of the last entry, for CONTINUE */
	bool shared;      /* xsr_qemu_export_shared: x-ignore-shared, no page of pc.ram */
	struct xsr_qemu_export_stats st;
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

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* ---------------- output ---------------- */

static int flush(struct exp *e)
{
	if (!e->niov)
		return 0;
	uint64_t total = 0;
	for (int i = 0; i < e->niov; i++)
		total += e->iov[i].iov_len;
	int rc = xsr_write_all(e->out, e->iov, e->niov);
	e->niov = 0;
	e->hlen = 0;
	if (rc < 0) {
		e->st.epipe |= rc == -EPIPE;
		e->code = XSR_E_IO;
		return efail(e, "writing the output: %s", strerror(-rc));
	}
	e->st.bytes += total;
	return 0;
}

/* @len octets at @p into the batch: an iovec of their own (@p stays valid until flush). */
static void add_iov(struct exp *e, const void *p, size_t len)
{
	struct iovec *l = e->niov ? &e->iov[e->niov - 1] : NULL;
	if (l && (const uint8_t *)l->iov_base + l->iov_len == (const uint8_t *)p)
		l->iov_len += len;
	else
		e->iov[e->niov++] = (struct iovec){(void *)p, len};
}

/* @len octets copied into the header buffer. */
static void add_hdr(struct exp *e, const void *p, size_t len)
{
	memcpy(e->hbuf + e->hlen, p, len);
	add_iov(e, e->hbuf + e->hlen, len);
	e->hlen += len;
}

static void add_be64(struct exp *e, uint64_t v)
{
	uint8_t b[8];
	put64(b, v);
	add_hdr(e, b, 8);
}

static int room(struct exp *e)
{
	/*
	 * The next entry, and what ram_part adds after the last one without a
	 * check (sec_end, sec_hdr, sec_end).  With 16 octets for the latter, as
	 * before, they fit only because a named entry (265 octets) always comes
	 * right after a flush: reserve them instead of relying on that.
	 */
	return e->niov + 4 <= NIOV && e->hlen + ENTRY_MAX + ENDS_MAX <= HBUF;
}

/*
 * One ram entry: page @off of block @b, @data (4096 octets, valid until the
 * next flush) or NULL for zeros.  The caller flushes before reusing @data.
 */
static int entry(struct exp *e, uint32_t b, uint64_t off, const uint8_t *data)
{
	if (!room(e) && flush(e) < 0)
		return -1;
	if (data && xsr_page_is_zero(data))
		data = NULL;
	uint64_t flags = data ? QEMU_RAM_FLAG_PAGE : QEMU_RAM_FLAG_ZERO;
	bool cont = e->last_blk == (int32_t)b;
	add_be64(e, off | flags | (cont ? QEMU_RAM_FLAG_CONTINUE : 0));
	if (!cont) {
		add_hdr(e, &e->blocks[b].nlen, 1);
		add_hdr(e, e->blocks[b].name, e->blocks[b].nlen);
		e->last_blk = (int32_t)b;
	}
	if (data) {
		add_iov(e, data, PAGE);
		e->st.page_entries++;
	} else {
		static const uint8_t fill;
		add_hdr(e, &fill, 1);
		e->st.zero_entries++;
	}
	return 0;
}

/* A ram section header (PART, END): type, be32 id. */
static void sec_hdr(struct exp *e, uint8_t type)
{
	uint8_t h[5] = {type};
	h[1] = (uint8_t)(e->ram_id >> 24), h[2] = (uint8_t)(e->ram_id >> 16), h[3] = (uint8_t)(e->ram_id >> 8);
	h[4] = (uint8_t)e->ram_id;
	add_hdr(e, h, 5);
}

/* EOS and, if the stream has them, the section footer. */
static void sec_end(struct exp *e)
{
	add_be64(e, QEMU_RAM_FLAG_EOS);
	if (e->footers) {
		uint8_t f[5] = {QEMU_VM_SECTION_FOOTER};
		f[1] = (uint8_t)(e->ram_id >> 24), f[2] = (uint8_t)(e->ram_id >> 16), f[3] = (uint8_t)(e->ram_id >> 8);
		f[4] = (uint8_t)e->ram_id;
		add_hdr(e, f, 5);
	}
}

/* ---------------- what the image holds ---------------- */

static void *read_pt(struct exp *e, uint32_t i, uint64_t *len)
{
	void *b;
	if ((e->code = xsr_image_read_section(e->img, e->pts[i].sec, &b, len)) < 0) {
		efail(e, "PASSTHRU item %u (section %u): %s", i, e->pts[i].sec, xsr_image_error(e->img));
		return NULL;
	}
	return b;
}

/* Every PASSTHRU item's header, in order; each must be a QEMU item of this image. */
static int collect(struct exp *e)
{
	uint32_t ns = xsr_image_nsections(e->img), other = 0;
	if (!(e->pts = calloc(ns + 1, sizeof(*e->pts)))) {
		e->code = XSR_E_NOMEM;
		return efail(e, "out of memory");
	}
	for (uint32_t i = 0; i < ns; i++) {
		struct xsr_section_info si;
		if (xsr_image_section(e->img, i, &si) < 0 || si.code != XSR_SEC_PASSTHRU)
			continue;
		void *b;
		uint64_t len;
		if ((e->code = xsr_image_read_section(e->img, i, &b, &len)) < 0)
			return efail(e, "section %u: %s", i, xsr_image_error(e->img));
		struct xsr_passthru_hdr h = {0};
		if (len >= sizeof(h))
			memcpy(&h, b, sizeof(h));
		free(b);
		if (h.origin < XSR_PT_ORIGIN_QEMU_HEADER || h.origin > XSR_PT_ORIGIN_QEMU_RAM) {
			other++;
			continue;
		}
		if (len < sizeof(h) || h.flags & ~XSR_PT_KNOWN_FLAGS || h.length != len - sizeof(h) ||
		    h.seq != e->npts + other)
			return efail(e, "PASSTHRU section %u at offset 0x%llx: not a QEMU item of this image (%llu octets, "
					"flags 0x%x, length %u, seq %u, expected seq %u)",
				     i, (unsigned long long)si.offset, (unsigned long long)len, h.flags, h.length, h.seq,
				     e->npts + other);
		e->pts[e->npts++] = (struct pt){h, i};
	}
	if (!e->npts) {
		e->code = XSR_E_UNSUPPORTED;
		return efail(e, "no QEMU stream items in this image (PASSTHRU origins 7-9: the stream header, the ram "
				"setup, the device sections%s): it was not imported from a QEMU migration stream, and a "
				"stream cannot be made without QEMU's device state",
			     other ? "; it holds items of another format" : "");
	}
	return 0;
}

/* The header item: "QEVM", version 3. */
static int check_header(struct exp *e)
{
	const struct pt *p = &e->pts[0];
	if (p->h.origin != XSR_PT_ORIGIN_QEMU_HEADER || p->h.type != 0 || p->h.length < 8)
		return efail(e, "PASSTHRU item 0 (section %u): origin %u type %u, not the QEMU stream header", p->sec,
			     p->h.origin, p->h.type);
	uint64_t len;
	uint8_t *b = read_pt(e, 0, &len);
	if (!b)
		return -1;
	int ok = be32(b + sizeof(p->h)) == QEMU_VM_FILE_MAGIC && be32(b + sizeof(p->h) + 4) == QEMU_VM_FILE_VERSION;
	free(b);
	if (!ok) {
		e->code = XSR_E_UNSUPPORTED;
		return efail(e, "PASSTHRU item 0 (section %u): not a QEMU stream v3 header", p->sec);
	}
	return 0;
}

/* The ram setup item: SECTION_START, id, "ram", instance, version, MEM_SIZE, the block list to its end. */
static int parse_setup(struct exp *e)
{
	const struct pt *p = &e->pts[1];
	if (e->npts < 2 || p->h.origin != XSR_PT_ORIGIN_QEMU_RAM || p->h.type != 0)
		return efail(e, "PASSTHRU item 1%s: not the QEMU ram setup (origin 9, type 0)", e->npts < 2 ? " missing" : "");
	uint64_t len, off = sizeof(p->h);
	uint8_t *b = read_pt(e, 1, &len);
	if (!b)
		return -1;
	int rc = -1;
	if (len - off < 5 + 4 + 8 + 8 || b[off] != QEMU_VM_SECTION_START || b[off + 5] != 3 || memcmp(b + off + 6, "ram", 3) ||
	    (be64(b + off + 17) & (PAGE - 1)) != QEMU_RAM_FLAG_MEM_SIZE) {
		efail(e, "PASSTHRU item 1 (section %u): not a SECTION_START of 'ram' with a MEM_SIZE entry", p->sec);
		goto out;
	}
	e->ram_id = be32(b + off + 1);
	uint64_t total = be64(b + off + 17) & ~(uint64_t)(PAGE - 1), sum = 0;
	off += 25;
	/* as many blocks as the list can hold (10 octets or more each), not QEMU_MAX_BLOCKS of 264 octets */
	uint32_t cap = (len - off) / 10 + 1 < QEMU_MAX_BLOCKS ? (uint32_t)((len - off) / 10 + 1) : QEMU_MAX_BLOCKS;
	if (!(e->blocks = calloc(cap, sizeof(*e->blocks)))) {
		e->code = XSR_E_NOMEM;
		efail(e, "out of memory");
		goto out;
	}
	while (off < len) {
		if (e->nblocks >= cap || b[off] == 0 || len - off < 1u + b[off] + 8u) {
			efail(e, "PASSTHRU item 1 (section %u): block list entry %u at octet 0x%llx is cut short, empty or one "
				 "too many", p->sec, e->nblocks, (unsigned long long)(off - sizeof(p->h)));
			goto out;
		}
		struct blk *k = &e->blocks[e->nblocks];
		k->nlen = b[off];
		memcpy(k->name, b + off + 1, k->nlen);
		k->used = be64(b + off + 1 + k->nlen);
		off += 1u + k->nlen + 8u;
		if (strlen(k->name) != k->nlen || k->used == 0 || k->used % PAGE || k->used / PAGE > XSR_MAX_PAGES ||
		    k->used > total - sum) {
			efail(e, "PASSTHRU item 1 (section %u): block %u: bad name or used length 0x%llx", p->sec, e->nblocks,
			      (unsigned long long)k->used);
			goto out;
		}
		sum += k->used;
		if (!strcmp(k->name, "pc.ram"))
			e->pcram = (int32_t)e->nblocks;
		e->nblocks++;
	}
	if (sum != total || e->pcram < 0) {
		efail(e, "PASSTHRU item 1 (section %u): the blocks add up to 0x%llx octets, MEM_SIZE says 0x%llx%s", p->sec,
		      (unsigned long long)sum, (unsigned long long)total, e->pcram < 0 ? ", and there is no pc.ram" : "");
		goto out;
	}
	rc = 0;
out:
	free(b);
	return rc;
}

/* Where pc.ram ends below 4 GiB: the CONFIG section's "qemu" object, as the import wrote it. */
static int read_layout(struct exp *e)
{
	struct xsr_section_info si;
	void *b = NULL;
	uint64_t len, below, ram;
	struct qj_doc d = {0};
	const char *why;
	size_t where;
	if (xsr_image_find(e->img, XSR_SEC_CONFIG, ~0u, &si) < 0)
		return efail(e, "no CONFIG section: the pc.ram layout the import recorded (\"qemu\": below_4g) is missing");
	if ((e->code = xsr_image_read_section(e->img, si.index, &b, &len)) < 0)
		return efail(e, "CONFIG section %u: %s", si.index, xsr_image_error(e->img));
	char *t = realloc(b, len + 1);
	if (!t) {
		free(b);
		e->code = XSR_E_NOMEM;
		return efail(e, "out of memory");
	}
	t[len] = 0;
	int rc = -1;
	if (qj_parse(t, len, &d, &why, &where) < 0) {
		efail(e, "CONFIG section %u: JSON octet %zu: %s", si.index, where, why);
		goto out;
	}
	uint32_t q = qj_get(&d, 0, "qemu");
	if (q == QJ_NONE || qj_uint(&d, q, "below_4g", &below) < 0 || qj_uint(&d, q, "ram_size", &ram) < 0) {
		efail(e, "CONFIG section %u: no \"qemu\" object with below_4g and ram_size (the layout the import recorded)",
		      si.index);
		goto out;
	}
	const struct blk *pc = &e->blocks[e->pcram];
	if (ram != pc->used || below % PAGE || below > ram) {
		efail(e, "CONFIG section %u: ram_size 0x%llx, below_4g 0x%llx do not fit pc.ram of 0x%llx octets in the ram "
			 "setup", si.index, (unsigned long long)ram, (unsigned long long)below, (unsigned long long)pc->used);
		goto out;
	}
	e->below = below;
	rc = 0;
out:
	qj_free(&d);
	free(t);
	return rc;
}

/* The image's memory is pc.ram, page for page, through the layout: runs in order, none elsewhere. */
static int check_runs(struct exp *e)
{
	uint32_t nruns = xsr_image_nruns(e->img);
	const struct xsr_memrun *runs = xsr_image_runs(e->img);
	uint64_t pages = e->blocks[e->pcram].used / PAGE, belowp = e->below / PAGE, next = 0, have = 0;
	for (uint32_t r = 0; r < nruns; r++)
		have += runs[r].count;
	if (have != pages) {
		e->code = XSR_E_UNSUPPORTED;
		return efail(e, "the image holds %llu pages of memory but the stream's pc.ram (ram setup) is %llu pages: "
				"QEMU would refuse the stream", (unsigned long long)have, (unsigned long long)pages);
	}
	for (uint32_t r = 0; r < nruns; r++) {
		uint64_t want = next < belowp ? next : (UINT64_C(1) << 20) + (next - belowp);
		uint64_t left = next < belowp ? belowp - next : pages - next;
		if (runs[r].pfn != want || runs[r].count > left)
			return efail(e, "memory run %u (pfn 0x%llx, %llu pages) is not where pc.ram page 0x%llx lies (pfn 0x%llx, "
					"below 4 GiB: 0x%llx octets)", r, (unsigned long long)runs[r].pfn,
				     (unsigned long long)runs[r].count, (unsigned long long)next, (unsigned long long)want,
				     (unsigned long long)e->below);
		next += runs[r].count;
	}
	return 0;
}

/* The order of the items: header, setup, one or more per block, device sections, EOF. */
static int check_order(struct exp *e)
{
	uint32_t i = 2, nb = 0, ndev = 0;
	for (; i < e->npts && e->pts[i].h.origin == XSR_PT_ORIGIN_QEMU_RAM && e->pts[i].h.type == 1; i++)
		nb++;
	for (; i < e->npts && e->pts[i].h.origin == XSR_PT_ORIGIN_QEMU_SECTION && e->pts[i].h.type == QEMU_VM_SECTION_FULL; i++)
		ndev++;
	if (i + 1 != e->npts || e->pts[i].h.origin != XSR_PT_ORIGIN_QEMU_SECTION || e->pts[i].h.type != QEMU_VM_EOF ||
	    nb < e->nblocks || !ndev)
		return efail(e, "PASSTHRU item %u (section %u, origin %u type %u): the QEMU items are not header, ram setup, "
				"RAM blocks (%u for %u blocks), device sections (%u), EOF",
			     i < e->npts ? i : e->npts - 1, e->pts[i < e->npts ? i : e->npts - 1].sec,
			     e->pts[i < e->npts ? i : e->npts - 1].h.origin, e->pts[i < e->npts ? i : e->npts - 1].h.type, nb,
			     e->nblocks, ndev);
	/* footers: the first device section says, as QEMU's loader decides by the machine type */
	uint32_t d = 2 + nb;
	uint64_t len;
	uint8_t *b = read_pt(e, d, &len);
	if (!b)
		return -1;
	const uint8_t *s = b + sizeof(struct xsr_passthru_hdr);
	uint64_t n = len - sizeof(struct xsr_passthru_hdr);
	e->footers = n >= 10 && s[n - 5] == QEMU_VM_SECTION_FOOTER && be32(s + n - 4) == be32(s + 1);
	free(b);
	return 0;
}

/* ---------------- pages ---------------- */

/* pc.ram: every page of the image's memory, by pc.ram offset; data pages read a span at a time. */
static int pcram_pages(struct exp *e, uint8_t *data, struct xsr_index_entry *ix, uint64_t batch)
{
	uint32_t nruns = xsr_image_nruns(e->img), b = (uint32_t)e->pcram;
	const struct xsr_memrun *runs = xsr_image_runs(e->img);
	uint64_t done = 0, total = e->blocks[b].used / PAGE;
	uint8_t *inread = data + (size_t)batch * PAGE;
	if ((e->code = xsr_image_check_index(e->img)) < 0)
		return efail(e, "page index: %s", xsr_image_error(e->img));
	for (uint32_t r = 0; r < nruns; r++) {
		for (uint64_t first = 0; first < runs[r].count; first += batch) {
			uint64_t m = runs[r].count - first < batch ? runs[r].count - first : batch;
			if (e->cb->progress)
				e->cb->progress(e->cb->progress_ctx, done, total);
			if ((e->code = xsr_image_run_index(e->img, r, first, m, ix)) < 0)
				return efail(e, "page index: %s", xsr_image_error(e->img));
			/* spans of data pages, zero gaps of up to ZGAP pages read along to keep the reads few */
			memset(inread, 0, m);
			for (uint64_t k = 0; k < m;) {
				if (!(ix[k].flags & XSR_IDX_DATA)) {
					k++;
					continue;
				}
				uint64_t a = k, z = k + 1, gap = 0;
				for (uint64_t j = k + 1; j < m && gap <= ZGAP; j++) {
					if (ix[j].flags & XSR_IDX_DATA)
						z = j + 1, gap = 0;
					else
						gap++;
				}
				if ((e->code = xsr_image_read_pages(e->img, r, first + a, z - a, data + a * PAGE, ix + a)) < 0)
					return efail(e, "pages of pfn 0x%llx+%llu: %s", (unsigned long long)(runs[r].pfn + first + a),
						     (unsigned long long)(z - a), xsr_image_error(e->img));
				memset(inread + a, 1, z - a);
				k = z;
			}
			for (uint64_t k = 0; k < m; k++)
				if (entry(e, b, (done + k) * PAGE, inread[k] ? data + k * PAGE : NULL) < 0)
					return -1;
			if (flush(e) < 0)
				return -1;
			done += m;
		}
	}
	e->st.nr_pages = done;
	if (e->cb->progress)
		e->cb->progress(e->cb->progress_ctx, done, total);
	return 0;
}

/*
 * Block @b from its PASSTHRU items starting at *@i (u8 name length, name,
 * be64 used length, then be64 offset + 4096 octets per page with data,
 * ascending): every page, those not listed as ZERO entries.
 */
static int block_pages(struct exp *e, uint32_t b, uint32_t *i)
{
	const struct blk *k = &e->blocks[b];
	uint64_t next = 0, pages = k->used / PAGE;
	uint32_t seen = 0; /* items of this block so far: the import writes at least one */
	for (; *i < e->npts && e->pts[*i].h.origin == XSR_PT_ORIGIN_QEMU_RAM && e->pts[*i].h.type == 1; (*i)++) {
		const struct pt *p = &e->pts[*i];
		uint64_t len, hl = sizeof(p->h) + 1u + k->nlen + 8u;
		if (p->h.flags & XSR_PT_PAGES) /* pc.ram's placeholder: the image's memory is written in its place */
			return efail(e, "PASSTHRU item %u (section %u): pc.ram's placeholder where block %s's pages belong", *i,
				     p->sec, k->name);
		uint8_t *d = read_pt(e, *i, &len);
		if (!d)
			return -1;
		uint8_t *s = d + sizeof(p->h);
		if (len < hl || s[0] != k->nlen || memcmp(s + 1, k->name, k->nlen)) {
			free(d);
			if (seen)
				break; /* the next block's first item */
			return efail(e, "PASSTHRU item %u (section %u): not the pages of block %s (the ram setup's block %u)", *i,
				     p->sec, k->name, b);
		}
		if (be64(s + 1 + k->nlen) != k->used || (len - hl) % (8 + PAGE)) {
			free(d);
			return efail(e, "PASSTHRU item %u (section %u): block %s: used length or page list does not fit", *i,
				     p->sec, k->name);
		}
		for (uint64_t o = hl; o < len; o += 8 + PAGE) {
			uint64_t off = be64(d + o);
			if (off % PAGE || off / PAGE < next || off / PAGE >= pages) {
				free(d);
				return efail(e, "PASSTHRU item %u (section %u): block %s: page offset 0x%llx out of order or past "
						"its 0x%llx octets", *i, p->sec, k->name, (unsigned long long)off,
					     (unsigned long long)k->used);
			}
			for (; next < off / PAGE; next++)
				if (entry(e, b, next * PAGE, NULL) < 0)
					goto fail;
			if (entry(e, b, off, d + o + 8) < 0)
				goto fail;
			next++;
		}
		if (flush(e) < 0)
			goto fail;
		free(d);
		seen++;
		continue;
	fail:
		free(d);
		return -1;
	}
	for (; next < pages; next++)
		if (entry(e, b, next * PAGE, NULL) < 0)
			return -1;
	return 0;
}

/* The PART section: every block's pages, in MEM_SIZE order. */
static int ram_part(struct exp *e)
{
	/* pages a batch: BATCH, or fewer when no run of the image has that many (4 MiB for a small image was most of its export) */
	uint64_t batch = 1;
	for (uint32_t r = 0; r < xsr_image_nruns(e->img); r++)
		if (xsr_image_runs(e->img)[r].count > batch)
			batch = xsr_image_runs(e->img)[r].count < BATCH ? xsr_image_runs(e->img)[r].count : BATCH;
	uint8_t *data = malloc((size_t)batch * PAGE + (size_t)batch);
	struct xsr_index_entry *ix = malloc((size_t)batch * sizeof(*ix));
	int rc = -1;
	if (!data || !ix) {
		e->code = XSR_E_NOMEM;
		efail(e, "out of memory");
		goto out;
	}
	sec_hdr(e, QEMU_VM_SECTION_PART);
	uint32_t i = 2;
	for (uint32_t b = 0; b < e->nblocks; b++) {
		if ((int32_t)b == e->pcram) {
			const struct pt *p = &e->pts[i];
			if (i >= e->npts || p->h.origin != XSR_PT_ORIGIN_QEMU_RAM || p->h.type != 1 || !(p->h.flags & XSR_PT_PAGES)) {
				efail(e, "PASSTHRU item %u: not pc.ram's placeholder, which the ram setup's block %u needs", i, b);
				goto out;
			}
			i++;
			if (!e->shared && pcram_pages(e, data, ix, batch) < 0)
				goto out;
		} else if (block_pages(e, b, &i) < 0) {
			goto out;
		}
	}
	if (e->pts[i].h.origin == XSR_PT_ORIGIN_QEMU_RAM) {
		efail(e, "PASSTHRU item %u (section %u): RAM block pages of no block of the ram setup", i, e->pts[i].sec);
		goto out;
	}
	sec_end(e);
	sec_hdr(e, QEMU_VM_SECTION_END);
	sec_end(e);
	rc = flush(e);
	e->st.nr_blocks = e->nblocks;
out:
	free(data);
	free(ix);
	return rc;
}

/* Item @i verbatim (its body after the PASSTHRU header). */
static int put_verbatim(struct exp *e, uint32_t i, const uint8_t *tail, size_t tlen)
{
	uint64_t len;
	uint8_t *b = read_pt(e, i, &len);
	if (!b)
		return -1;
	add_iov(e, b + sizeof(struct xsr_passthru_hdr), len - sizeof(struct xsr_passthru_hdr));
	if (tlen)
		add_hdr(e, tail, tlen);
	int rc = flush(e);
	free(b);
	return rc;
}

/*
 * The shared path's header: item 0 with the x-ignore-shared capability
 * subsection where QEMU's vmstate_configuration puts it (after
 * target-page-bits, before uuid): 0x05, its name, version 1, a count of 1,
 * the capability's name.
 */
static int put_header_shared(struct exp *e)
{
	static const char sub[] = "configuration/capabilities", cap[] = "x-ignore-shared";
	uint64_t len;
	uint8_t *b = read_pt(e, 0, &len);
	if (!b)
		return -1;
	const uint8_t *h = b + sizeof(struct xsr_passthru_hdr);
	uint64_t n = len - sizeof(struct xsr_passthru_hdr), at = 8;
	if (n < 13 || h[8] != QEMU_VM_CONFIGURATION || be32(h + 9) > n - 13) {
		free(b);
		e->code = XSR_E_UNSUPPORTED;
		return efail(e, "PASSTHRU item 0: the stream header has no CONFIGURATION section, which x-ignore-shared needs");
	}
	at = 13 + be32(h + 9);
	/* skip target-page-bits: 0x05, u8 length, its name, be32 version, be32 bits */
	static const char tpb[] = "configuration/target-page-bits";
	if (n - at >= 2 + sizeof(tpb) - 1 + 8 && h[at] == QEMU_VM_SUBSECTION && h[at + 1] == sizeof(tpb) - 1 &&
	    !memcmp(h + at + 2, tpb, sizeof(tpb) - 1))
		at += 2 + sizeof(tpb) - 1 + 8;
	uint8_t c[2 + sizeof(sub) - 1 + 8 + 1 + sizeof(cap) - 1], *p = c;
	*p++ = QEMU_VM_SUBSECTION;
	*p++ = sizeof(sub) - 1;
	memcpy(p, sub, sizeof(sub) - 1);
	p += sizeof(sub) - 1;
	static const uint8_t one_one[8] = {0, 0, 0, 1, 0, 0, 0, 1}; /* version 1, one capability */
	memcpy(p, one_one, 8);
	p += 8;
	*p++ = sizeof(cap) - 1;
	memcpy(p, cap, sizeof(cap) - 1);
	add_iov(e, h, at);
	add_hdr(e, c, sizeof(c));
	add_iov(e, h + at, n - at);
	int rc = flush(e);
	free(b);
	return rc;
}

/* The shared path's ram setup: item 1's section header and MEM_SIZE entry, each block with its address (0) after its length. */
static int put_setup_shared(struct exp *e, const uint8_t *tail, size_t tlen)
{
	uint64_t len;
	uint8_t *b = read_pt(e, 1, &len);
	if (!b)
		return -1;
	add_iov(e, b + sizeof(struct xsr_passthru_hdr), 25); /* parse_setup checked it is there */
	int rc = 0;
	for (uint32_t i = 0; i < e->nblocks && rc == 0; i++) {
		uint8_t ent[1 + 255 + 16];
		const struct blk *k = &e->blocks[i];
		ent[0] = k->nlen;
		memcpy(ent + 1, k->name, k->nlen);
		put64(ent + 1 + k->nlen, k->used);
		put64(ent + 1 + k->nlen + 8, 0);
		add_hdr(e, ent, 1u + k->nlen + 16u);
		if (!room(e))
			rc = flush(e);
	}
	if (rc == 0) {
		add_hdr(e, tail, tlen);
		rc = flush(e);
	}
	free(b);
	return rc;
}

static int export_stream(struct exp *e)
{
	if (collect(e) < 0 || check_header(e) < 0 || parse_setup(e) < 0 || read_layout(e) < 0 || check_order(e) < 0 ||
	    check_runs(e) < 0)
		return -1;
	if (e->shared ? put_header_shared(e) < 0 : put_verbatim(e, 0, NULL, 0) < 0)
		return -1;
	/* START: the setup, then EOS and the footer, as ram_save_setup ends it */
	uint8_t tail[13];
	size_t tl = 8;
	put64(tail, QEMU_RAM_FLAG_EOS);
	if (e->footers) {
		tail[8] = QEMU_VM_SECTION_FOOTER;
		for (int k = 0; k < 4; k++)
			tail[9 + k] = (uint8_t)(e->ram_id >> (24 - 8 * k));
		tl = 13;
	}
	if ((e->shared ? put_setup_shared(e, tail, tl) : put_verbatim(e, 1, tail, tl)) < 0 || ram_part(e) < 0)
		return -1;
	for (uint32_t i = 2; i < e->npts; i++) {
		if (e->pts[i].h.origin != XSR_PT_ORIGIN_QEMU_SECTION)
			continue;
		if (put_verbatim(e, i, NULL, 0) < 0)
			return -1;
		e->st.nr_sections += e->pts[i].h.type == QEMU_VM_SECTION_FULL;
	}
	return 0;
}

static int export_any(struct xsr_image *img, int out_fd, const struct xsr_qemu_export_opts *o,
		      struct xsr_qemu_export_stats *st, char *err, size_t errlen, bool shared)
{
	static const struct xsr_qemu_export_opts none;
	if (!o)
		o = &none;
	if (st)
		memset(st, 0, sizeof(*st));
	if (!img || out_fd < 0) {
		xsr_fmt(err, errlen, "xsr_qemu_export: no image or no output");
		return XSR_E_INVAL;
	}
	struct exp *e = calloc(1, sizeof(*e));
	uint8_t *hbuf = malloc(HBUF);
	if (!e || !hbuf) {
		free(e);
		free(hbuf);
		xsr_fmt(err, errlen, "out of memory");
		return XSR_E_NOMEM;
	}
	e->img = img;
	e->out = out_fd;
	e->cb = &o->cb;
	e->hbuf = hbuf;
	e->pcram = e->last_blk = -1;
	e->shared = shared;
	int rc = 0;
	if (export_stream(e) < 0) {
		xsr_fmt(err, errlen, "%s", e->err);
		rc = e->code < 0 ? e->code : XSR_E_FORMAT;
	}
	if (st)
		*st = e->st;
	free(e->pts);
	free(e->blocks);
	free(e->hbuf);
	free(e);
	return rc;
}

int xsr_qemu_export(struct xsr_image *img, int out_fd, const struct xsr_qemu_export_opts *o,
		    struct xsr_qemu_export_stats *st, char *err, size_t errlen)
{
	return export_any(img, out_fd, o, st, err, errlen, false);
}

int xsr_qemu_export_shared(struct xsr_image *img, int out_fd, const struct xsr_qemu_export_opts *o,
			   struct xsr_qemu_export_stats *st, char *err, size_t errlen)
{
	return export_any(img, out_fd, o, st, err, errlen, true);
}
