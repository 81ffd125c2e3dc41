/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Lossless conversion through the one writer: seekable -> any (random-access
 * reads, pages verified against the index) and stream -> any (callbacks;
 * a later copy of a page supersedes an earlier one in its slot).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xsrelf/paging.h>

#include "internal.h"

static int copy_section(struct xsr_writer *w, uint32_t sh_type, uint32_t info, uint64_t entsize,
			const void *body, uint64_t len, struct xsr_vcpu_state *vs, char *err, size_t errlen)
{
	uint32_t code = sh_type & XSR_SHT_CODE_MASK;
	int rc;
	if (code == XSR_SEC_VCPU) {
		const char *why;
		if ((rc = xsr_vcpu_decode(body, len, vs, &why)) < 0) {
			xsr_fmt(err, errlen, "vCPU %u: %s", info, why);
			return rc;
		}
		if (vs->r.vcpu_id != info) {
			xsr_fmt(err, errlen, "vCPU section filed as %u says vCPU %u", info, vs->r.vcpu_id);
			return XSR_E_FORMAT;
		}
		rc = xsr_writer_set_vcpu(w, vs);
	} else {
		struct iovec v = {(void *)body, len};
		rc = xsr_writer_add_section(w, code, !!(sh_type & XSR_SHT_OPTIONAL), info, entsize, &v, 1);
	}
	if (rc < 0)
		xsr_fmt(err, errlen, "%s", xsr_writer_error(w));
	return rc;
}

/* Guest-physical reads for the page-table walker, page by verified page (one pread each). */
static int image_phys(void *ctx, uint64_t paddr, void *buf, size_t len)
{
	uint8_t page[XSR_PAGE_SIZE];
	uint64_t off = paddr & (XSR_PAGE_SIZE - 1);
	if (len > XSR_PAGE_SIZE - off)
		return XSR_E_RANGE;
	if (len == XSR_PAGE_SIZE)
		return xsr_image_read_page(ctx, paddr >> XSR_PAGE_SHIFT, buf, NULL);
	int rc = xsr_image_read_page(ctx, paddr >> XSR_PAGE_SHIFT, page, NULL);
	if (rc < 0)
		return rc;
	memcpy(buf, page + off, len);
	return 0;
}

/*
 * Only Xen PV images carry a P2M.  Their top-level slots 256..271 are
 * Xen's (hypervisor frames, and a linear map of the guest's own tables
 * that would map every table again), so they are left out.  A PV core
 * holds the guest's pages as they were, page tables naming machine frames;
 * a save or migration stream holds them normalised to pfns by libxc.
 */
static int paging_view(struct xsr_image *img, const struct xsr_file_header *fh, const struct xsr_vcpu_state *vs,
		       const struct xsr_convert_opts *o, struct xsr_vload **vl, uint32_t *nvl, char *err,
		       size_t errlen)
{
	struct xsr_paging_opts po = {0};
	struct xsr_section_info si;
	void *p2m = NULL;
	uint64_t len = 0;
	int rc, pi = xsr_image_find(img, XSR_SEC_P2M, UINT32_MAX, &si);
	if (pi > 0) {
		if ((rc = xsr_image_read_section(img, (uint32_t)pi, &p2m, &len)) < 0) {
			xsr_fmt(err, errlen, "%s", xsr_image_error(img));
			return rc;
		}
		if (len % sizeof(struct xsr_p2m_entry)) {
			xsr_fmt(err, errlen, "section .xsr.p2m at 0x%llx: %llu octets is not a whole number of entries",
				(unsigned long long)si.offset, (unsigned long long)len);
			free(p2m);
			return XSR_E_FORMAT;
		}
		po.skip_start = XSR_XEN_PV_RESERVED_START;
		po.skip_end = XSR_XEN_PV_RESERVED_END;
		if (fh->kind == XSR_KIND_CORE) {
			po.p2m = p2m;
			po.nr_p2m = len / sizeof(struct xsr_p2m_entry);
		}
	}
	rc = xsr_paging_walk_opts(&vs->r, xsr_image_runs(img), xsr_image_nruns(img), image_phys, img, &po, vl, nvl,
				  o->paging_stats, err, errlen);
	free(p2m);
	return rc;
}

struct sconv {
	int out;
	const struct xsr_convert_opts *o;
	struct xsr_writer *w;
	const struct xsr_file_header *fh;
	struct xsr_file_header fh_copy;
	struct xsr_producer producer;
	bool have_producer;
	struct xsr_vcpu_state *vs;
	struct xsr_memrun *runs; /* memmap seen, writer not opened yet */
	uint32_t nruns;
	void *vmci;
	uint32_t vmci_len;
	uint64_t done; /* pages copied, for progress */
	void *tree; /* XEN_P2M_TREE body seen before the writer opened */
	uint64_t tree_len;
	uint64_t in_size; /* octets of a regular-file input, 0 for a pipe */
	struct xsr_vload *vl; /* the paging view's loads (a seekable input) */
	uint32_t nvl;
	bool seekable;    /* the output gets the seekable layout */
	char *err;
	size_t errlen;
};

/*
 * A seekable copy's page slots and index follow the header's nr_pages, not
 * what the stream holds: 4 KiB of (sparse) file and a 16-octet index entry
 * read back and hashed at close for every page claimed, so a 4 KiB stream
 * claiming 2^36 pages would ask for a 256 TiB file and hash a 1 TiB index.
 * Every page a stream holds costs it an 8-octet pfn entry, so past
 * XSR_CONVERT_FREE_PAGES a claim must be backed: by the input's size before
 * anything is written (a regular file), and by the pfn entries that really
 * arrived before the index is hashed (any input).  docs/limits.md.
 */
#define XSR_CONVERT_FREE_PAGES (UINT64_C(1) << 20)

static int claim_backed(const struct sconv *c, uint64_t backing, bool by_size)
{
	if (!c->seekable || c->fh->nr_pages <= XSR_CONVERT_FREE_PAGES || c->fh->nr_pages <= backing)
		return 0;
	if (by_size)
		xsr_fmt(c->err, c->errlen,
			"the stream claims %llu pages, more than its %llu octets can hold (an 8-octet entry a page): "
			"refusing a seekable copy that large (past %llu pages, docs/limits.md)",
			(unsigned long long)c->fh->nr_pages, (unsigned long long)c->in_size,
			(unsigned long long)XSR_CONVERT_FREE_PAGES);
	else
		xsr_fmt(c->err, c->errlen,
			"the stream claims %llu pages and holds %llu: refusing a seekable copy whose index "
			"follows the claim (past %llu pages every page must arrive, docs/limits.md)",
			(unsigned long long)c->fh->nr_pages, (unsigned long long)backing,
			(unsigned long long)XSR_CONVERT_FREE_PAGES);
	return XSR_E_LIMIT;
}

/* The layout xsr_writer_open picks for @fd (writer.c): seekable for a regular file open read-write at 0. */
static bool out_seekable(int fd, const struct xsr_convert_opts *o)
{
	if (o && o->layout)
		return o->layout == XSR_LAYOUT_SEEKABLE;
	struct stat sb;
	int fl = fcntl(fd, F_GETFL);
	return fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && fl >= 0 && (fl & O_ACCMODE) == O_RDWR &&
	       !(fl & O_APPEND) && lseek(fd, 0, SEEK_CUR) == 0;
}

/*
 * The writer opens after the memmap and an optional VMCOREINFO record (the
 * writer puts it in the notes, which it lays out at open).
 */
static int sc_open(struct sconv *c)
{
	if (c->w)
		return 0;
	if (!c->runs) {
		xsr_fmt(c->err, c->errlen, "a record comes before the memmap record");
		return XSR_E_FORMAT;
	}
	/* Before the writer sizes the file: a regular file's size bounds the entries it holds. */
	int rc0 = c->in_size ? claim_backed(c, c->in_size / 8, true) : 0;
	if (rc0 < 0)
		return rc0;
	const void *vm = c->o && c->o->vmcoreinfo ? c->o->vmcoreinfo : c->vmci;
	struct xsr_writer_params p = {
		.machine = EM_X86_64, .kind = c->fh->kind, .layout = c->o ? c->o->layout : 0,
		.flags = c->fh->flags, .nr_vcpus = c->fh->nr_vcpus, .nr_runs = c->nruns, .runs = c->runs,
		.producer = c->have_producer ? &c->producer : NULL, .hypervisor = "unknown",
		.compress = c->o ? c->o->compress : 0, .vloads = c->vl, .nr_vloads = c->nvl,
		.vmcoreinfo = vm, .vmcoreinfo_len = c->o && c->o->vmcoreinfo ? c->o->vmcoreinfo_len : c->vmci_len,
	};
	struct xsr_xen_pv pv;
	if (c->tree) {
		const char *why;
		int rc = xsr_xen_tree_params(c->tree, c->tree_len, &pv, &why);
		if (rc < 0) {
			xsr_fmt(c->err, c->errlen, "the xen-p2m-tree record: %s", why);
			return rc;
		}
		p.xen_pv = &pv;
	}
	return xsr_writer_open(&c->w, c->out, &p, c->err, c->errlen);
}

static int sc_section(void *ctx, const struct xsr_record_header *rh, const void *body)
{
	struct sconv *c = ctx;
	uint32_t code = rh->sh_type == SHT_NOTE ? XSR_SEC_NOTES : rh->sh_type & XSR_SHT_CODE_MASK;
	if (code == XSR_SEC_PRODUCER) {
		memcpy(&c->producer, body, sizeof(c->producer));
		c->have_producer = true;
		return 0;
	}
	if (code == XSR_SEC_MEMMAP) {
		c->runs = malloc(rh->sh_size + 1);
		if (!c->runs)
			return XSR_E_NOMEM;
		memcpy(c->runs, body, rh->sh_size);
		c->nruns = (uint32_t)(rh->sh_size / sizeof(struct xsr_memrun));
		return 0;
	}
	if (code == XSR_SEC_VMCOREINFO && !c->w && !c->vmci && rh->sh_size) {
		c->vmci = malloc(rh->sh_size);
		if (!c->vmci)
			return XSR_E_NOMEM;
		memcpy(c->vmci, body, rh->sh_size);
		c->vmci_len = (uint32_t)rh->sh_size;
		return 0;
	}
	/* A paging view maps guest-virtual addresses, not the machine map the tree makes. */
	if (code == XSR_SEC_XEN_P2M_TREE && c->o && c->o->paging)
		return 0;
	/* The writer emits it right after MEMMAP (and VMCOREINFO); it lays out the seekable image. */
	if (code == XSR_SEC_XEN_P2M_TREE && !c->w && !c->tree) {
		if (!(c->tree = malloc(rh->sh_size)))
			return XSR_E_NOMEM;
		memcpy(c->tree, body, rh->sh_size);
		c->tree_len = rh->sh_size;
		return 0;
	}
	if (xsr_section_writer_made(code))
		return 0;
	/*
	 * Migration control records (MIG_BEGIN, rounds, post-copy) belong to the
	 * transfer, not to the guest: a captured migration stream converts
	 * without them, since a seekable image may not hold them (image.c).
	 */
	const struct xsr_sec_desc *d = xsr_sec_lookup(code);
	if (d && d->stream_only)
		return 0;
	int rc = sc_open(c);
	if (rc < 0)
		return rc;
	return copy_section(c->w, rh->sh_type, rh->sh_info, rh->sh_entsize, body, rh->sh_size, c->vs, c->err, c->errlen);
}

static int sc_pages(void *ctx, const uint64_t *pfns, uint32_t n, const uint8_t *data)
{
	struct sconv *c = ctx;
	uint64_t p[XSR_MAX_BATCH];
	const void *ptr[XSR_MAX_BATCH];
	int rc0 = sc_open(c);
	if (rc0 < 0)
		return rc0;
	for (uint32_t i = 0; i < n; i++) {
		p[i] = pfns[i] & ~XSR_PFN_ZERO;
		if (pfns[i] & XSR_PFN_ZERO) {
			ptr[i] = NULL;
		} else {
			ptr[i] = data;
			data += XSR_PAGE_SIZE;
		}
	}
	int rc = xsr_writer_put_pages(c->w, p, n, ptr);
	if (rc < 0)
		xsr_fmt(c->err, c->errlen, "%s", xsr_writer_error(c->w));
	c->done += n;
	if (rc == 0 && c->o && c->o->progress)
		c->o->progress(c->o->progress_ctx, c->done, c->fh->nr_pages);
	return rc;
}

static int sc_header(void *ctx, const struct xsr_file_header *h)
{
	struct sconv *c = ctx;
	/* A copy: the stream's own is freed when xsr_stream_read_all returns, before the END checks. */
	c->fh_copy = *h;
	c->fh = &c->fh_copy;
	if (h->flags & XSR_FF_PAGING_VIEW) {
		xsr_fmt(c->err, c->errlen, "a paging-view core maps guest-virtual addresses and cannot be converted; convert the physical image instead");
		return XSR_E_UNSUPPORTED;
	}
	return 0;
}

/*
 * A paging view needs random access before the writer opens: the page
 * tables are walked through the image, then the image is replayed like any
 * input.
 */
static int paging_setup(struct sconv *c, struct xsr_image *img)
{
	const struct xsr_file_header *fh = xsr_image_header(img);
	int rc;
	if (fh->flags & XSR_FF_PAGING_VIEW) {
		xsr_fmt(c->err, c->errlen, "a paging-view core maps guest-virtual addresses and cannot be converted; convert the physical image instead");
		return XSR_E_UNSUPPORTED;
	}
	if (c->o->paging_vcpu >= fh->nr_vcpus) {
		xsr_fmt(c->err, c->errlen, "--vcpu %u: the image has %u vCPUs", c->o->paging_vcpu, fh->nr_vcpus);
		return XSR_E_RANGE;
	}
	if ((rc = xsr_image_vcpu(img, c->o->paging_vcpu, c->vs)) < 0) {
		xsr_fmt(c->err, c->errlen, "%s", xsr_image_error(img));
		return rc;
	}
	return paging_view(img, fh, c->vs, c->o, &c->vl, &c->nvl, c->err, c->errlen);
}

/*
 * One set of callbacks for both layouts: a stream through the stream
 * reader, a seekable image through its replay (pages verified against the
 * index, zero slots checked), both into the writer.
 */
static int convert(int in, uint64_t in_size, int out, const struct xsr_convert_opts *o, char *err, size_t errlen)
{
	struct sconv c = {.out = out, .o = o, .err = err, .errlen = errlen, .in_size = in_size,
			  .seekable = out_seekable(out, o)};
	const struct xsr_replay_ops ops = {
		.size = sizeof(ops), .flags = XSR_REPLAY_AHEAD_,
		.stream = {.header = sc_header, .section = sc_section, .pages = sc_pages},
	};
	struct xsr_image *img = NULL;
	int rc;
	if (!(c.vs = malloc(sizeof(*c.vs)))) {
		rc = XSR_E_NOMEM;
		goto out;
	}
	if (o && o->paging) {
		if ((rc = xsr_image_open(&img, in, err, errlen)) < 0 || (rc = paging_setup(&c, img)) < 0)
			goto out;
		if ((rc = xsr_image_replay(img, &ops, &c)) < 0) {
			if (!err[0] || rc == XSR_E_CHECKSUM || rc == XSR_E_FORMAT || rc == XSR_E_IO)
				xsr_fmt(err, errlen, "%s", xsr_image_error(img));
			goto out;
		}
	} else if ((rc = xsr_replay_fd(in, &ops, &c, err, errlen)) < 0) {
		goto out;
	}
	if ((rc = sc_open(&c)) < 0)
		goto out;
	/* Before the close reads back and hashes an index of nr_pages entries. */
	if ((rc = claim_backed(&c, c.done, false)) < 0)
		goto out;
	rc = xsr_writer_close(c.w, err, errlen);
	c.w = NULL;
out:
	xsr_writer_abort(c.w);
	xsr_image_close(img);
	free(c.runs);
	free(c.vmci);
	free(c.tree);
	free(c.vl);
	free(c.vs);
	return rc;
}

/* struct xsr_convert_opts as XSRELF_1 had it: what xsr_convert@XSRELF_1 reads. */
struct xsr_convert_opts_1_0 {
	uint8_t layout, compress, paging, reserved;
	uint32_t paging_vcpu;
	const void *vmcoreinfo;
	uint32_t vmcoreinfo_len;
	struct xsr_paging_stats *paging_stats;
};
_Static_assert(offsetof(struct xsr_convert_opts, progress) == sizeof(struct xsr_convert_opts_1_0),
	       "the 1.4 members follow the XSRELF_1 struct");

/*
 * xsr_convert@@XSRELF_1.4 takes struct xsr_convert_opts with the progress
 * members; xsr_convert@XSRELF_1, which programs built before them call,
 * copies their shorter struct and calls it.  In the static library only
 * the default version is reached by name.
 */
int convert_1_4(int in, int out, const struct xsr_convert_opts *o, char *err, size_t errlen) XSR_API;
int convert_1_0(int in, int out, const struct xsr_convert_opts_1_0 *o, char *err, size_t errlen) XSR_API;
__asm__(".symver convert_1_4, xsr_convert@@XSRELF_1.4");
__asm__(".symver convert_1_0, xsr_convert@XSRELF_1");

int convert_1_0(int in, int out, const struct xsr_convert_opts_1_0 *o, char *err, size_t errlen)
{
	struct xsr_convert_opts full = {0};
	if (o)
		memcpy(&full, o, sizeof(*o));
	return convert_1_4(in, out, o ? &full : NULL, err, errlen);
}

int convert_1_4(int in, int out, const struct xsr_convert_opts *o, char *err, size_t errlen)
{
	uint8_t hdr[XSR_HEADER_END];
	struct stat sb;
	bool file = fstat(in, &sb) == 0 && S_ISREG(sb.st_mode);
	if (err && errlen)
		err[0] = 0;
	if (o && o->paging) {
		if (!file) {
			xsr_fmt(err, errlen, "a paging view needs a seekable input file (convert the stream to a seekable image first)");
			return XSR_E_STATE;
		}
		if (xsr_io_pread(in, hdr, sizeof(hdr), 0) < 0) {
			xsr_fmt(err, errlen, "input shorter than the 128-octet header");
			return XSR_E_TRUNCATED;
		}
		if (xsr_sniff_layout(hdr, sizeof(hdr)) != XSR_LAYOUT_SEEKABLE) {
			xsr_fmt(err, errlen, "a paging view needs a seekable input (convert the stream to a seekable image first)");
			return XSR_E_STATE;
		}
	}
	return convert(in, file ? (uint64_t)sb.st_size : 0, out, o, err, errlen);
}
