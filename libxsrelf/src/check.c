/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The section table's validator column: one function per type whose body
 * has a rule, called by the stream reader, the seekable reader and verify
 * alike, so that the two layouts cannot disagree about a body (docs/limits.md,
 * "One rule").  A validator sees the body and what the file header and the
 * memory map say (struct xsr_sec_check_ctx); where in the file the body lies
 * is the reader's to say, around the validator's @why.
 */
#include <stdlib.h>
#include <string.h>

#include <xsrelf/xenstore.h>

#include "internal.h"

int xsr_check_notes(const void *body, uint64_t len, const struct xsr_sec_check_ctx *c, char *why, size_t whylen)
{
	const char *w;
	bool xen = c->fh->flags & XSR_FF_XEN_MACHINE_PADDR; /* only a seekable header may carry it */
	int rc = xsr_notes_check(body, len, c->fh->nr_vcpus, xen, c->xen_fll, &w);
	if (rc < 0)
		xsr_fmt(why, whylen, "%s (%u vCPUs)", w, c->fh->nr_vcpus);
	return rc;
}

/* Sorted, disjoint, non-empty runs inside the pfn limits, as many pages as the file header says. */
int xsr_check_memmap(const void *body, uint64_t len, const struct xsr_sec_check_ctx *c, char *why, size_t whylen)
{
	uint64_t total;
	int rc;
	if (len % sizeof(struct xsr_memrun)) {
		xsr_fmt(why, whylen, "%llu octets is not a whole number of runs", (unsigned long long)len);
		return XSR_E_FORMAT;
	}
	/* The readers hand bodies 8-aligned (a malloc, or a stream record in place). */
	if ((rc = xsr_memmap_check(body, len / sizeof(struct xsr_memrun), &total, why, whylen)) < 0)
		return rc;
	if (total != c->fh->nr_pages) {
		xsr_fmt(why, whylen, "runs hold %llu pages, the file header says %llu", (unsigned long long)total,
			(unsigned long long)c->fh->nr_pages);
		return XSR_E_FORMAT;
	}
	return 0;
}

/* The state decodes and names the vCPU it is filed under (sh_info). */
int xsr_check_vcpu(const void *body, uint64_t len, const struct xsr_sec_check_ctx *c, char *why, size_t whylen)
{
	struct xsr_vcpu_state *st = c->vcpu ? c->vcpu : malloc(sizeof(*st));
	const char *w;
	int rc;
	if (!st) {
		xsr_fmt(why, whylen, "out of memory");
		return XSR_E_NOMEM;
	}
	if ((rc = xsr_vcpu_decode(body, len, st, &w)) < 0)
		xsr_fmt(why, whylen, "vCPU %u: %s", c->info, w);
	else if (st->r.vcpu_id != c->info) {
		xsr_fmt(why, whylen, "says vCPU %u, filed as vCPU %u", st->r.vcpu_id, c->info);
		rc = XSR_E_FORMAT;
	}
	if (st != c->vcpu)
		free(st);
	return rc;
}

/*
 * A stream's batch: its header, a length that holds exactly the pfns and the
 * data, pfns without reserved bits inside the memory map, and uncompressed
 * data of a page per entry that is not ZERO (compressed data is decoded by
 * the reader, which holds the buffer).  A seekable image's page slots are no
 * record; their index entries are checked instead.
 */
int xsr_check_pages(const void *body, uint64_t len, const struct xsr_sec_check_ctx *c, char *why, size_t whylen)
{
	struct xsr_page_batch b;
	memcpy(&b, body, sizeof(b)); /* min_len: the header and one pfn */
	if (b.count == 0 || b.count > XSR_MAX_BATCH || b.reserved0 || b.reserved1 || b.compress > XSR_COMPRESS_LZ4) {
		xsr_fmt(why, whylen, "count %u (1..%u), compression %u or a reserved field is bad", b.count, XSR_MAX_BATCH,
			b.compress);
		return XSR_E_FORMAT;
	}
	/*
	 * Subtract, never add: data_len is the sender's, and a sum with it wraps
	 * (count 4, length 24, data_len 2^64-24 once passed and read past the record).
	 */
	uint64_t fixed = sizeof(b) + (uint64_t)b.count * 8; /* count <= XSR_MAX_BATCH: no overflow */
	if (len < fixed || len - fixed != b.data_len) {
		xsr_fmt(why, whylen, "length %llu does not match %u pfns and %llu data octets", (unsigned long long)len,
			b.count, (unsigned long long)b.data_len);
		return XSR_E_FORMAT;
	}
	const uint64_t *pfns = (const uint64_t *)((const uint8_t *)body + sizeof(b));
	uint32_t ndata = 0;
	for (uint32_t i = 0; i < b.count; i++) {
		uint64_t e = pfns[i];
		if (e & XSR_PFN_RESERVED) {
			xsr_fmt(why, whylen, "entry %u (0x%llx) has reserved bits set", i, (unsigned long long)e);
			return XSR_E_FORMAT;
		}
		if (xsr_memmap_slot(c->runs, c->base, c->nruns, e & XSR_PFN_MASK) < 0) {
			if (c->pfn)
				*c->pfn = e & XSR_PFN_MASK;
			xsr_fmt(why, whylen, "pfn 0x%llx is outside the memory map", (unsigned long long)(e & XSR_PFN_MASK));
			return XSR_E_RANGE;
		}
		if (!(e & XSR_PFN_ZERO))
			ndata++;
	}
	if (b.compress == XSR_COMPRESS_NONE && b.data_len != (uint64_t)ndata * XSR_PAGE_SIZE) {
		xsr_fmt(why, whylen, "%llu data octets for %u pages", (unsigned long long)b.data_len, ndata);
		return XSR_E_FORMAT;
	}
	if (c->ndata)
		*c->ndata = ndata;
	return 0;
}

/* The counts of END are the reader's (they follow the records before it); its reserved words are the body's. */
int xsr_check_end(const void *body, uint64_t len, const struct xsr_sec_check_ctx *c, char *why, size_t whylen)
{
	struct xsr_end e;
	(void)len, (void)c;
	memcpy(&e, body, sizeof(e));
	if (e.reserved[0] || e.reserved[1]) {
		xsr_fmt(why, whylen, "reserved field set");
		return XSR_E_FORMAT;
	}
	return 0;
}

/* The hashes and the chain are the verifier's (they cover the rest of the file); algorithm and reserved words are the body's. */
int xsr_check_integrity(const void *body, uint64_t len, const struct xsr_sec_check_ctx *c, char *why, size_t whylen)
{
	struct xsr_integrity in;
	(void)len, (void)c;
	memcpy(&in, body, sizeof(in));
	if (in.algorithm != XSR_HASH_XXH3_64 || in.reserved0 || in.reserved1[0] || in.reserved1[1]) {
		xsr_fmt(why, whylen, "unknown algorithm or reserved field set");
		return XSR_E_CHECKSUM;
	}
	return 0;
}

/*
 * The tree's header agrees with its length and nr_pfns.  That it is the
 * tree the memory map makes is checked where both are at hand: a seekable
 * Xen image's program headers (image.c), a conversion (convert.c).
 */
int xsr_check_xen_tree(const void *body, uint64_t len, const struct xsr_sec_check_ctx *c, char *why, size_t whylen)
{
	struct xsr_xen_pv pv;
	const char *w;
	(void)c;
	int rc = xsr_xen_tree_params(body, len, &pv, &w);
	if (rc < 0)
		xsr_fmt(why, whylen, "%s", w);
	return rc;
}

/*
 * XENSTORE: libxl's record (an import's copy) is opaque; a body that begins
 * with XSR_XS_MAGIC is the domain's subtree, walked whole, every limit
 * checked, so that a restore never meets a node it cannot write.
 */
int xsr_check_xenstore(const void *body, uint64_t len, const struct xsr_sec_check_ctx *c, char *why, size_t whylen)
{
	if (!xsr_xs_is_subtree(body, len))
		return 0;
	return xsr_xs_check(body, len, NULL, NULL, why, whylen);
}
