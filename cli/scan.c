/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xsrelf/xenstore.h>

#include "scan.h"

const char *cli_kind_name(unsigned kind)
{
	switch (kind) {
	case XSR_KIND_SAVE: return "save";
	case XSR_KIND_CORE: return "core";
	case XSR_KIND_MIGRATION: return "migration";
	}
	return "unknown";
}

static int add_sec(struct scan *s, const char *name, uint32_t type, uint32_t code, uint32_t info, uint64_t off,
		   uint64_t size, uint64_t entsize)
{
	struct scan_sec *n = realloc(s->secs, (s->nsecs + 1) * sizeof(*n));
	if (!n)
		return XSR_E_NOMEM;
	s->secs = n;
	struct scan_sec *x = &n[s->nsecs++];
	snprintf(x->name, sizeof(x->name), "%s", name);
	x->sh_type = type;
	x->code = code;
	x->info = info;
	x->offset = off;
	x->size = size;
	x->entsize = entsize;
	return 0;
}

/* Note one PASSTHRU body (a Xen item kept verbatim by xsr import). */
static int note_passthru(struct scan *s, const uint8_t *body, uint64_t len)
{
	struct xsr_passthru_hdr h;
	if (len < sizeof(h))
		return 0;
	memcpy(&h, body, sizeof(h));
	uint32_t type = h.type;
	uint16_t origin = h.origin, flags = h.flags;
	/* libxc image header: marker(8) id(4) version(4), big-endian */
	if (origin == XSR_PT_ORIGIN_LIBXC_HEADER && len >= 16 + 16)
		s->xen_libxc_version = (uint32_t)body[16 + 12] << 24 | (uint32_t)body[16 + 13] << 16 |
				       (uint32_t)body[16 + 14] << 8 | body[16 + 15];
	void *n = realloc(s->xen, (s->nxen + 1) * sizeof(*s->xen));
	if (!n)
		return XSR_E_NOMEM;
	s->xen = n;
	s->xen[s->nxen].type = type;
	s->xen[s->nxen].origin = origin;
	s->xen[s->nxen].flags = flags;
	s->nxen++;
	return 0;
}

/*
 * Which slots' last copy had data: a sparse bitmap, one 64-slot word per
 * entry of an open-addressing table keyed by word number.  A stream may
 * claim 2^36 pages and send one; a dense bitmap of nr_pages bits cost 8 GiB
 * of address space and 4 GiB of RSS for that (issue 15, finding 2).  Memory
 * follows the pfn entries the stream really holds: at most 32 octets of
 * table per 8-octet entry, and nothing for a slot never sent.
 */
struct sparse_bits {
	uint64_t *key; /* word number + 1; 0 = empty */
	uint64_t *word;
	uint64_t cap, used; /* cap: a power of two, or 0 */
};

static uint64_t *sb_word(struct sparse_bits *b, uint64_t w, bool create)
{
	if (create && (b->used + 1) * 2 > b->cap) {
		uint64_t ncap = b->cap ? b->cap * 2 : 1024;
		uint64_t *nk = calloc(ncap, 8), *nw = calloc(ncap, 8);
		if (!nk || !nw) {
			free(nk);
			free(nw);
			return NULL;
		}
		for (uint64_t i = 0; i < b->cap; i++) {
			if (!b->key[i])
				continue;
			uint64_t h = (b->key[i] * UINT64_C(0x9e3779b97f4a7c15)) & (ncap - 1);
			while (nk[h])
				h = (h + 1) & (ncap - 1);
			nk[h] = b->key[i];
			nw[h] = b->word[i];
		}
		free(b->key);
		free(b->word);
		b->key = nk;
		b->word = nw;
		b->cap = ncap;
	}
	if (!b->cap)
		return NULL;
	uint64_t k = w + 1, h = (k * UINT64_C(0x9e3779b97f4a7c15)) & (b->cap - 1);
	while (b->key[h] && b->key[h] != k)
		h = (h + 1) & (b->cap - 1);
	if (!b->key[h]) {
		if (!create)
			return NULL;
		b->key[h] = k;
		b->used++;
	}
	return &b->word[h];
}

static uint64_t sb_count(const struct sparse_bits *b)
{
	uint64_t n = 0;
	for (uint64_t i = 0; i < b->cap; i++)
		n += (uint64_t)__builtin_popcountll(b->word[i]);
	return n;
}

static void sb_free(struct sparse_bits *b)
{
	free(b->key);
	free(b->word);
}

struct sctx {
	struct scan *s;
	struct sparse_bits data; /* slots whose last copy had data */
	uint64_t *base;
	struct xsr_stream *st; /* NULL: a seekable image's replay */
	char *err;
	size_t errlen;
};

static int sc_section(void *ctx, const struct xsr_record_header *rh, const void *body)
{
	struct sctx *c = ctx;
	struct scan *s = c->s;
	uint32_t code = rh->sh_type == SHT_NOTE ? XSR_SEC_NOTES : rh->sh_type & XSR_SHT_CODE_MASK;
	/* Named as the seekable layout names it: one name in both layouts. */
	const char *nm = xsr_section_elf_name(rh->sh_type);
	int rc;
	/* A seekable image's table is listed whole, with its offsets, before the replay. */
	if (c->st) {
		uint64_t at = xsr_stream_offset(c->st) - ((((rh->sh_size) + 7) & ~7ull) + 8);
		if ((rc = add_sec(s, nm ? nm : "?", rh->sh_type, code, rh->sh_info, at, rh->sh_size, rh->sh_entsize)) < 0)
			return rc;
	}
	if (code == XSR_SEC_PRODUCER) {
		memcpy(&s->producer, body, sizeof(s->producer));
		s->have_producer = true;
	} else if (code == XSR_SEC_CONFIG) {
		free(s->config);
		s->config = malloc(rh->sh_size + 1);
		if (!s->config)
			return XSR_E_NOMEM;
		memcpy(s->config, body, rh->sh_size);
		s->config[rh->sh_size] = 0;
	} else if (code == XSR_SEC_XENSTORE && xsr_xs_is_subtree(body, rh->sh_size)) {
		free(s->xenstore);
		if (!(s->xenstore = malloc(rh->sh_size + 1)))
			return XSR_E_NOMEM;
		memcpy(s->xenstore, body, rh->sh_size);
		s->xenstore_len = rh->sh_size;
	} else if (code == XSR_SEC_PASSTHRU) {
		if ((rc = note_passthru(s, body, rh->sh_size)) < 0)
			return rc;
	} else if (code == XSR_SEC_MEMMAP) {
		free(s->runs);
		s->nruns = (uint32_t)(rh->sh_size / sizeof(struct xsr_memrun));
		s->runs = malloc(rh->sh_size + 1);
		c->base = malloc((s->nruns + 1) * 8ull);
		if (!s->runs || !c->base)
			return XSR_E_NOMEM;
		memcpy(s->runs, body, rh->sh_size);
		uint64_t t = 0;
		for (uint32_t i = 0; i < s->nruns; i++) {
			c->base[i] = t;
			t += s->runs[i].count;
		}
	} else if (code == XSR_SEC_VCPU && (int64_t)rh->sh_info == s->want_vcpu) {
		const char *why;
		free(s->vcpu);
		s->vcpu = malloc(sizeof(*s->vcpu));
		if (!s->vcpu)
			return XSR_E_NOMEM;
		if ((rc = xsr_vcpu_decode(body, rh->sh_size, s->vcpu, &why)) < 0) {
			snprintf(c->err, c->errlen, "vCPU %u record: %s", rh->sh_info, why);
			return rc;
		}
		s->have_vcpu = true;
	}
	return 0;
}

static int sc_pages(void *ctx, const uint64_t *pfns, uint32_t n, const uint8_t *data)
{
	struct sctx *c = ctx;
	struct scan *s = c->s;
	s->page_records++;
	if (!c->st) {
		/* A seekable image's replay: each pfn once, from the index. */
		for (uint32_t i = 0; i < n; i++) {
			if (pfns[i] & XSR_PFN_ZERO)
				s->zero_pages++;
			else
				s->data_pages++;
			s->xen_types[pfns[i] >> XSR_PFN_XEN_TYPE_SHIFT]++;
		}
		return 0;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint64_t pfn = pfns[i] & XSR_PFN_MASK;
		bool z = pfns[i] & XSR_PFN_ZERO;
		/* The reader checked that every pfn is in the memory map. */
		uint32_t lo = 0, hi = s->nruns;
		while (lo < hi) {
			uint32_t mid = (lo + hi) / 2;
			if (pfn < s->runs[mid].pfn)
				hi = mid;
			else if (pfn - s->runs[mid].pfn >= s->runs[mid].count)
				lo = mid + 1;
			else {
				uint64_t slot = c->base[mid] + pfn - s->runs[mid].pfn;
				uint64_t *w = sb_word(&c->data, slot / 64, !z);
				if (!w && !z)
					return XSR_E_NOMEM;
				if (w && z)
					*w &= ~(1ull << (slot % 64));
				else if (w)
					*w |= 1ull << (slot % 64);
				break;
			}
		}
		if ((int64_t)pfn == s->want_pfn) {
			if (z)
				memset(s->page, 0, sizeof(s->page));
			else
				memcpy(s->page, data, sizeof(s->page));
			s->have_page = true;
		}
		if (!z)
			data += XSR_PAGE_SIZE;
	}
	return 0;
}

static int scan_stream(int fd, const uint8_t *pre, size_t plen, struct scan *s, char *err, size_t errlen)
{
	struct sctx c = {.s = s, .err = err, .errlen = errlen};
	const struct xsr_stream_ops ops = {.section = sc_section, .pages = sc_pages};
	int rc = xsr_stream_open(&c.st, fd, err, errlen);
	if (rc < 0)
		return rc;
	s->layout = XSR_LAYOUT_STREAM;
	if ((rc = xsr_stream_prefix(c.st, pre, plen)) < 0)
		goto out;
	/* The header first, so that the memmap callback knows nr_pages. */
	if ((rc = xsr_stream_step(c.st, NULL, NULL)) < 0) {
		snprintf(err, errlen, "%s", xsr_stream_error(c.st));
		goto out;
	}
	s->fh = *xsr_stream_header(c.st);
	err[0] = 0;
	if ((rc = xsr_stream_run(c.st, &ops, &c)) < 0) {
		if (!err[0] || rc != XSR_E_NOMEM)
			snprintf(err, errlen, "%s", xsr_stream_error(c.st));
		goto out;
	}
	s->stream_end = xsr_stream_offset(c.st);
	uint8_t b;
	ssize_t r;
	while ((r = read(fd, &b, 1)) < 0 && errno == EINTR)
		;
	s->trailing = r > 0;
	s->data_pages = sb_count(&c.data);
	s->zero_pages = s->fh.nr_pages - s->data_pages;
	if (s->want_vcpu >= 0 && !s->have_vcpu) {
		snprintf(err, errlen, "no vCPU %d in this image (it has %u)", s->want_vcpu, s->fh.nr_vcpus);
		rc = XSR_E_RANGE;
	}
	if (s->want_pfn >= 0 && !s->have_page) {
		bool inmap = false;
		for (uint32_t i = 0; i < s->nruns; i++)
			inmap |= (uint64_t)s->want_pfn >= s->runs[i].pfn && (uint64_t)s->want_pfn - s->runs[i].pfn < s->runs[i].count;
		if (inmap) {
			memset(s->page, 0, sizeof(s->page)); /* populated but never sent: zero */
			s->have_page = true;
		} else {
			snprintf(err, errlen, "pfn 0x%llx is not populated in this image", (unsigned long long)s->want_pfn);
			rc = XSR_E_RANGE;
		}
	}
out:
	if (rc < 0) {
		xsr_stream_error_at(c.st, &s->err_at);
		s->err_at.code = rc;
		s->err_at.message = NULL; /* the stream's, gone at close */
	}
	sb_free(&c.data);
	free(c.base);
	xsr_stream_close(c.st);
	return rc;
}

/*
 * A seekable image: the section table as the file has it (names, offsets),
 * then the replay of its index (no page data is read: the index says which
 * slots hold data) through the callbacks a stream gets.
 */
static int scan_image(int fd, struct scan *s, char *err, size_t errlen)
{
	struct xsr_image *img;
	struct sctx c = {.s = s, .err = err, .errlen = errlen};
	const struct xsr_replay_ops ops = {
		.size = sizeof(ops), .flags = XSR_REPLAY_INDEX_ONLY,
		.stream = {.section = sc_section, .pages = sc_pages},
	};
	int rc = xsr_image_open(&img, fd, err, errlen);
	if (rc < 0)
		return rc;
	s->layout = XSR_LAYOUT_SEEKABLE;
	s->fh = *xsr_image_header(img);
	for (uint32_t i = 1; i < xsr_image_nsections(img); i++) {
		struct xsr_section_info si;
		xsr_image_section(img, i, &si);
		if ((rc = add_sec(s, si.name, si.sh_type, si.code, si.info, si.offset, si.size, si.entsize)) < 0)
			goto out;
	}
	err[0] = 0;
	if ((rc = xsr_image_replay(img, &ops, &c)) < 0) {
		if (!err[0] || rc != XSR_E_NOMEM)
			snprintf(err, errlen, "%s", xsr_image_error(img));
		goto out;
	}
	s->phnum = 1 + s->nruns;
	if (s->want_vcpu >= 0 && !s->have_vcpu) {
		/* Not in the image: its reader says so in its words. */
		if (!s->vcpu && !(s->vcpu = malloc(sizeof(*s->vcpu)))) {
			rc = XSR_E_NOMEM;
			goto out;
		}
		if ((rc = xsr_image_vcpu(img, (uint32_t)s->want_vcpu, s->vcpu)) < 0) {
			snprintf(err, errlen, "%s", xsr_image_error(img));
			goto out;
		}
		s->have_vcpu = true;
	}
	if (s->want_pfn >= 0) {
		if ((rc = xsr_image_read_page(img, (uint64_t)s->want_pfn, s->page, NULL)) < 0) {
			snprintf(err, errlen, "%s", xsr_image_error(img));
			goto out;
		}
		s->have_page = true;
	}
out:
	sb_free(&c.data);
	free(c.base);
	xsr_image_close(img);
	return rc;
}

int cli_scan(int fd, struct scan *s, char *err, size_t errlen)
{
	uint8_t hdr[XSR_HEADER_END];
	struct stat sb;
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
		if (sb.st_size < XSR_HEADER_END || pread(fd, hdr, sizeof(hdr), 0) != sizeof(hdr)) {
			snprintf(err, errlen, "file of %lld octets is shorter than the 128-octet header: truncated or not an xsrelf image",
				 (long long)sb.st_size);
			return XSR_E_TRUNCATED;
		}
		if (xsr_sniff_layout(hdr, sizeof(hdr)) != XSR_LAYOUT_STREAM)
			return scan_image(fd, s, err, errlen);
		return scan_stream(fd, NULL, 0, s, err, errlen);
	}
	return scan_stream(fd, NULL, 0, s, err, errlen);
}

void cli_scan_free(struct scan *s)
{
	free(s->runs);
	free(s->secs);
	free(s->ph);
	free(s->vcpu);
	free(s->config);
	free(s->xenstore);
	free(s->xen);
}
