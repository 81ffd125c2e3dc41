/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Export --format xc-core (xsrelf/xen.h, XSR_XEN_FORMAT_XC_CORE): an image of a Xen guest as the ELF file
 * `xl dump-core` writes (Xen's docs/misc/dump-core-format.txt and
 * tools/libs/guest/xg_core.c), which crash opens with the guest's vmlinux.
 *
 * Three sources, one plan (pieces of the output at file offsets) and one
 * writer:
 *  - an imported xc_core: the Ehdr, section headers and sections kept in
 *    PASSTHRU go back to their offsets and .xen_pages is refilled from the
 *    page slots in the order of its own .xen_p2m / .xen_pfn, so the original
 *    comes back byte for byte;
 *  - an imported libxc stream (xl save, migration): laid out as xg_core.c
 *    lays it out; the vCPUs are the X86_PV_VCPU_BASIC records.  libxc's save
 *    normalised the page tables (PTEs and cr3 hold pfns), so they are
 *    localised as libxc's restore does (xg_sr_restore_x86_pv.c), but to the
 *    source's machine frames from the P2M section: crash reads PV page tables
 *    as machine addresses and translates them with .xen_p2m and the guest's
 *    own p2m, which holds the source frames too;
 *  - an image without Xen records (`xsr core DOMID`): the vCPUs are rebuilt
 *    from the VCPU sections; its pages hold machine frames already.
 * HVM guests get .xen_pfn instead of .xen_p2m and no localisation, as in Xen.
 *
 * Memory: the pfn map (the P2M, 16 octets per page, or Xen's own map) and a
 * batch of 1024 pages; page data moves in preads of consecutive slots and
 * 4 MiB writes.
 */
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <xsrelf/reader.h>

#include "internal.h"
#include "xen_internal.h"
#include "xen_vcpu.h"

#include <xen/xen.h> /* VGCF_* */

/* Facts from Xen's xg_core.h and public/elfnote.h. */
#define XC_CORE_MAGIC 0xF00FEBEDu
#define XC_CORE_MAGIC_HVM 0xF00FEBEEu
#define XC_NOTE_NONE 0x2000000u
#define XC_NOTE_HEADER 0x2000001u
#define XC_NOTE_XEN_VERSION 0x2000002u
#define XC_NOTE_FORMAT_VERSION 0x2000003u
#define XC_FORMAT_VERSION 1u  /* (major 0, minor 1) */
#define XC_VERSION_DESC 1280u /* struct xen_dumpcore_elfnote_xen_version_desc */
#define XC_NOTE_HDR 16u	      /* namesz, descsz, type, "Xen\0" */
#define XC_NOTES_LEN (4 * XC_NOTE_HDR + 32 + XC_VERSION_DESC + 8)
#define XC_CTX_SIZE sizeof(vcpu_guest_context_x86_64_t)
_Static_assert(sizeof(vcpu_guest_context_x86_64_t) == 5168, "what .xen_prstatus holds per vCPU");
_Static_assert(XC_NOTES_LEN == 1384, "the .note.Xen of Xen 4.17");

/*
 * x86-64 PV: bits 51..12 of a PTE name the frame; L4 slots 256..271 map
 * Xen itself (HYPERVISOR_VIRT_START..END).
 */
#define PTE_PRESENT UINT64_C(0x1)
#define PTE_FRAME_MASK UINT64_C(0x000ffffffffff000)
#define MFN_MAX (PTE_FRAME_MASK >> 12)
#define L4_XEN_FIRST 256u
#define L4_XEN_LAST 271u
#define HYPERVISOR_VIRT_START_X86_64 UINT64_C(0xffff800000000000)

enum { BATCH = 1024, MAX_PIECES = 16, MAX_OWNED = 80, MAX_GAP = 1u << 20, MAX_CORE_SECTIONS = 64 };

/* A stretch of the output: octets in memory, or (data == NULL) the page data. */
struct piece {
	uint64_t off, len;
	const uint8_t *data;
	char what[48];
};

struct xcx {
	struct xsr_image *img;
	int out;
	char err[512];
	uint64_t bytes;
	struct xen_pt_item *pts;
	uint32_t npts, xc_version;
	struct xsr_producer prod;
	int native; /* read only what backends/xen.c records */
	const struct xsr_foreign_cb *cb; /* progress: pages written */
	int code;                        /* enum xsr_err of the failure */
	/* the plan */
	struct piece pc[MAX_PIECES];
	uint32_t npc;
	void *owned[MAX_OWNED];
	uint32_t nowned;
	/* .xen_pages: one page per map entry, pfn at map + i * stride (~0: a zero page) */
	const uint8_t *map;
	uint64_t stride, nmap;
	/* PV: the P2M section, pfn ascending */
	struct xsr_p2m_entry *p2m;
	uint64_t np2m;
	int localise; /* page tables hold pfns (a libxc stream) */
};

static int xfail(struct xcx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int xfail(struct xcx *x, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->err, sizeof(x->err), fmt, ap);
	va_end(ap);
	if (!x->code)
		x->code = !strcmp(fmt, "out of memory") ? XSR_E_NOMEM : XSR_E_FORMAT;
	return -1;
}

static void *own(struct xcx *x, void *p)
{
	if (!p) {
		xfail(x, "out of memory");
		return NULL;
	}
	if (x->nowned == MAX_OWNED) {
		free(p);
		xfail(x, "too many Xen items to hold");
		return NULL;
	}
	return x->owned[x->nowned++] = p;
}

static int add_piece(struct xcx *x, uint64_t off, uint64_t len, const void *data, const char *what)
{
	if (x->npc == MAX_PIECES)
		return xfail(x, "xc_core layout: more than %u pieces", MAX_PIECES);
	struct piece *p = &x->pc[x->npc++];
	*p = (struct piece){off, len, data, ""};
	snprintf(p->what, sizeof(p->what), "%s", what);
	return 0;
}

static uint64_t map_pfn(const struct xcx *x, uint64_t i)
{
	uint64_t v;
	memcpy(&v, x->map + i * x->stride, 8);
	return v;
}

static int p2m_lookup(const struct xcx *x, uint64_t pfn, uint64_t *mfn)
{
	uint64_t lo = 0, hi = x->np2m;
	while (lo < hi) {
		uint64_t m = lo + (hi - lo) / 2;
		if (x->p2m[m].pfn == pfn) {
			*mfn = x->p2m[m].mfn;
			return 0;
		}
		if (x->p2m[m].pfn < pfn)
			lo = m + 1;
		else
			hi = m;
	}
	return -1;
}

/* ---------------- output ---------------- */

static int put(struct xcx *x, struct iovec *iov, int n)
{
	int64_t w = xen_put(x->out, iov, n);
	if (w < 0 && (x->code = XSR_E_IO))
		return xfail(x, "writing the output at offset 0x%llx: %s", (unsigned long long)x->bytes,
			     strerror((int)-w));
	x->bytes += (uint64_t)w;
	return 0;
}

static int put_buf(struct xcx *x, const void *b, uint64_t len)
{
	static const uint8_t zero[4096];
	while (len) {
		size_t n = len > (1u << 30) ? (1u << 30) : (size_t)len;
		struct iovec v = {(void *)(b ? b : zero),
				  b ? n : (n > sizeof(zero) ? sizeof(zero) : n)};
		n = v.iov_len;
		if (put(x, &v, 1) < 0)
			return -1;
		if (b)
			b = (const uint8_t *)b + n;
		len -= n;
	}
	return 0;
}

/*
 * libxc's restore, x86_pv_localise_page(), but to the source's frames: every
 * present entry's pfn becomes p2m[pfn].  Xen's L4 slots are Xen's own
 * mappings (a save carries them as zero, Xen fills them on restore): left
 * alone.  A pfn without a P2M entry has no frame to name; libxc refuses such
 * a table and so does this.
 */
static int localise_table(struct xcx *x, uint64_t pfn, unsigned level, uint8_t *page)
{
	for (unsigned i = 0; i < 512; i++) {
		uint64_t pte, mfn;
		memcpy(&pte, page + i * 8, 8);
		if (!(pte & PTE_PRESENT) || (level == 4 && i >= L4_XEN_FIRST && i <= L4_XEN_LAST))
			continue;
		uint64_t f = (pte & PTE_FRAME_MASK) >> 12;
		if (p2m_lookup(x, f, &mfn) < 0)
			return xfail(x,
				     "L%u page table at pfn 0x%llx, entry %u = 0x%016llx: pfn "
				     "0x%llx has no P2M entry, so no machine frame to name "
				     "(libxc's restore refuses such a table too)",
				     level, (unsigned long long)pfn, i, (unsigned long long)pte,
				     (unsigned long long)f);
		pte = (pte & ~PTE_FRAME_MASK) | mfn << 12;
		memcpy(page + i * 8, &pte, 8);
	}
	return 0;
}

/*
 * .xen_pages: the page of every map entry, read with one pread per run of
 * consecutive slots, localised if need be, written 4 MiB at a time.
 */
static int put_pages(struct xcx *x)
{
	uint8_t *buf = malloc((size_t)BATCH * 4096);
	struct xsr_index_entry *ent = malloc(BATCH * sizeof(*ent));
	uint64_t *pfns = malloc(BATCH * sizeof(*pfns));
	int rc = -1;
	if (!buf || !ent || !pfns) {
		xfail(x, "out of memory");
		goto out;
	}
	uint32_t nruns = xsr_image_nruns(x->img), r = 0;
	const struct xsr_memrun *runs = xsr_image_runs(x->img);
	for (uint64_t i = 0; i < x->nmap;) {
		uint32_t n = 0;
		while (n < BATCH && i < x->nmap) {
			uint64_t pfn = map_pfn(x, i);
			if (pfn == ~UINT64_C(0)) { /* Xen's padding: a zero page */
				memset(buf + (size_t)n * 4096, 0, 4096);
				ent[n].flags = 0;
				pfns[n++] = pfn;
				i++;
				continue;
			}
			while (r < nruns && pfn >= runs[r].pfn &&
			       pfn - runs[r].pfn >= runs[r].count)
				r++;
			if (r == nruns || pfn < runs[r].pfn) {
				xfail(x,
				      "pfn map entry %llu: pfn 0x%llx is not a page of the image",
				      (unsigned long long)i, (unsigned long long)pfn);
				goto out;
			}
			uint64_t first = pfn - runs[r].pfn, k = 1;
			while (n + k < BATCH && i + k < x->nmap && first + k < runs[r].count &&
			       map_pfn(x, i + k) == pfn + k)
				k++;
			if (xsr_image_read_pages(x->img, r, first, k, buf + (size_t)n * 4096,
						 ent + n) < 0) {
				xfail(x, "pages 0x%llx..0x%llx: %s", (unsigned long long)pfn,
				      (unsigned long long)(pfn + k - 1), xsr_image_error(x->img));
				goto out;
			}
			for (uint64_t j = 0; j < k; j++)
				pfns[n + j] = pfn + j;
			n += (uint32_t)k;
			i += k;
		}
		for (uint32_t j = 0; x->localise && j < n; j++) {
			unsigned level = (ent[j].flags >> XSR_IDX_XEN_TYPE_SHIFT) & 7u;
			if (pfns[j] != ~UINT64_C(0) && level >= 1 && level <= 4 &&
			    localise_table(x, pfns[j], level, buf + (size_t)j * 4096) < 0)
				goto out;
		}
		if (put_buf(x, buf, (uint64_t)n * 4096) < 0)
			goto out;
		if (x->cb->progress)
			x->cb->progress(x->cb->progress_ctx, i, x->nmap);
	}
	rc = 0;
out:
	free(buf);
	free(ent);
	free(pfns);
	return rc;
}

static int cmp_piece(const void *a, const void *b)
{
	const struct piece *p = a, *q = b;
	return p->off < q->off ? -1 : p->off > q->off;
}

/* The plan in file order; the gaps between pieces are zeros (Xen pads .xen_pages to a page). */
static int check_layout(struct xcx *x)
{
	qsort(x->pc, x->npc, sizeof(x->pc[0]), cmp_piece);
	uint64_t end = 0;
	for (uint32_t i = 0; i < x->npc; i++) {
		const struct piece *p = &x->pc[i];
		if (p->off < end)
			return xfail(
			    x,
			    "xc_core layout: %s at offset 0x%llx overlaps %s, which ends at 0x%llx",
			    p->what, (unsigned long long)p->off, x->pc[i - 1].what,
			    (unsigned long long)end);
		if (p->off - end > MAX_GAP)
			return xfail(x,
				     "xc_core layout: %llu octets of nothing before %s at offset "
				     "0x%llx: not a dump-core layout",
				     (unsigned long long)(p->off - end), p->what,
				     (unsigned long long)p->off);
		if (p->off > UINT64_MAX / 2 || p->len > UINT64_MAX / 2 - p->off)
			return xfail(
			    x, "xc_core layout: %s at offset 0x%llx: length 0x%llx overflows",
			    p->what, (unsigned long long)p->off, (unsigned long long)p->len);
		end = p->off + p->len;
	}
	return 0;
}

static int emit(struct xcx *x)
{
	uint64_t pos = 0;
	for (uint32_t i = 0; i < x->npc; i++) {
		const struct piece *p = &x->pc[i];
		if (put_buf(x, NULL, p->off - pos) < 0)
			return -1;
		if (p->data ? put_buf(x, p->data, p->len) < 0 : put_pages(x) < 0)
			return -1;
		pos = p->off + p->len;
	}
	return 0;
}

/* Skip Xen's ~0 padding entries from map entry *j on; the next pfn must be above @prev. */
static int next_mapped(struct xcx *x, const char *mapname, uint64_t *j, int any, uint64_t prev)
{
	while (*j < x->nmap && map_pfn(x, *j) == ~UINT64_C(0))
		(*j)++;
	if (*j < x->nmap && any && map_pfn(x, *j) <= prev)
		return xfail(x, "%s entry %llu: pfn 0x%llx after 0x%llx, not ascending", mapname,
			     (unsigned long long)*j, (unsigned long long)map_pfn(x, *j),
			     (unsigned long long)prev);
	return 0;
}

/*
 * Walk the image's slots beside the map (both pfn ascending): every map pfn
 * must be a page of the image, and no page of the image may be left out
 * unless it is zero (@all: not even then, the image was made from this map).
 * @need_data: mapped pfns must have a Xen type that carries data.
 */
static int check_map(struct xcx *x, const char *mapname, int all, int need_data)
{
	struct xsr_index_entry *ix = malloc(BATCH * sizeof(*ix));
	if (!ix)
		return xfail(x, "out of memory");
	uint32_t nruns = xsr_image_nruns(x->img);
	const struct xsr_memrun *runs = xsr_image_runs(x->img);
	uint64_t j = 0;
	int rc = -1;
	if (next_mapped(x, mapname, &j, 0, 0) < 0)
		goto out;
	for (uint32_t r = 0; r < nruns; r++) {
		for (uint64_t first = 0; first < runs[r].count; first += BATCH) {
			uint64_t m = runs[r].count - first < BATCH ? runs[r].count - first : BATCH;
			if (xsr_image_run_index(x->img, r, first, m, ix) < 0) {
				xfail(x, "page index: %s", xsr_image_error(x->img));
				goto out;
			}
			for (uint64_t k = 0; k < m; k++) {
				uint64_t pfn = runs[r].pfn + first + k;
				unsigned t = ix[k].flags >> XSR_IDX_XEN_TYPE_SHIFT;
				if (j < x->nmap && map_pfn(x, j) < pfn) /* the slots passed it by */
					break;
				if (j < x->nmap && map_pfn(x, j) == pfn) {
					if (need_data && !xsr_xen_type_has_data(t)) {
						xfail(x,
						      "%s entry %llu: pfn 0x%llx is mapped, but "
						      "the image has it as a frame without data "
						      "(Xen type 0x%x)",
						      mapname, (unsigned long long)j,
						      (unsigned long long)pfn, t);
						goto out;
					}
					j++;
					if (next_mapped(x, mapname, &j, 1, pfn) < 0)
						goto out;
				} else if (all || ix[k].flags & XSR_IDX_DATA) {
					xfail(x,
					      "pfn 0x%llx of the image%s has no %s entry: the map "
					      "does not describe this image's memory",
					      (unsigned long long)pfn,
					      ix[k].flags & XSR_IDX_DATA ? " holds data but" : "",
					      mapname);
					goto out;
				}
			}
			if (j < x->nmap && map_pfn(x, j) < runs[r].pfn + first + m)
				goto missing;
		}
	}
	if (j == x->nmap) {
		rc = 0;
		goto out;
	}
missing:
	xfail(x, "%s entry %llu: pfn 0x%llx is not a page of the image", mapname,
	      (unsigned long long)j, (unsigned long long)map_pfn(x, j));
out:
	free(ix);
	return rc;
}

/* ---------------- an imported xc_core: its own pieces ---------------- */

static int plan_passthru(struct xcx *x)
{
	Elf64_Ehdr *eh = NULL;
	Elf64_Shdr *sh = NULL;
	const uint8_t *body[MAX_CORE_SECTIONS] = {0};
	int pages = -1;
	for (uint32_t i = 0; i < x->npts; i++) {
		const struct xen_pt_item *p = &x->pts[i];
		if (p->h.origin != XSR_PT_ORIGIN_XC_CORE)
			return xfail(x,
				     "PASSTHRU item %u (origin %u) in an image of an xc_core dump",
				     i, p->h.origin);
		void *b;
		uint64_t len;
		if (xsr_image_read_section(x->img, p->sec, &b, &len) < 0)
			return xfail(x, "section %u: %s", p->sec, xsr_image_error(x->img));
		if (!own(x, b))
			return -1;
		const uint8_t *d = (const uint8_t *)b + sizeof(struct xsr_passthru_hdr);
		if (p->h.type == 0) {
			if (eh || p->h.flags || p->h.length != sizeof(Elf64_Ehdr))
				return xfail(x,
					     "PASSTHRU item %u: a second or malformed xc_core ELF "
					     "header (%u octets)",
					     i, p->h.length);
			eh = (Elf64_Ehdr *)d;
			if (memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
			    eh->e_ident[EI_CLASS] != ELFCLASS64 ||
			    eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_type != ET_CORE ||
			    eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shnum == 0 ||
			    eh->e_shnum > MAX_CORE_SECTIONS || eh->e_shstrndx >= eh->e_shnum ||
			    eh->e_phnum)
				return xfail(x,
					     "PASSTHRU item %u: not the ELF header of an xc_core "
					     "dump (shnum %u, shstrndx %u, phnum %u)",
					     i, eh->e_shnum, eh->e_shstrndx, eh->e_phnum);
			if (!(sh = own(x, calloc(eh->e_shnum, sizeof(*sh)))))
				return -1;
			continue;
		}
		if (!eh)
			return xfail(x,
				     "PASSTHRU item %u: xc_core section %u before the ELF header",
				     i, p->h.type);
		uint32_t s = p->h.type;
		if (s >= eh->e_shnum || body[s] || p->h.length < sizeof(Elf64_Shdr))
			return xfail(x,
				     "PASSTHRU item %u: xc_core section %u is out of range, "
				     "repeated or has no section header",
				     i, s);
		memcpy(&sh[s], d, sizeof(Elf64_Shdr));
		body[s] = d + sizeof(Elf64_Shdr);
		uint64_t clen = p->h.length - sizeof(Elf64_Shdr);
		if (p->h.flags & XSR_PT_PAGES) {
			if (pages >= 0 || clen)
				return xfail(x,
					     "PASSTHRU item %u: a second .xen_pages placeholder, "
					     "or one with contents",
					     i);
			pages = (int)s;
		} else if (clen != (sh[s].sh_type == SHT_NOBITS ? 0 : sh[s].sh_size)) {
			return xfail(x,
				     "PASSTHRU item %u: xc_core section %u holds %llu octets, its "
				     "header says %llu",
				     i, s, (unsigned long long)clen,
				     (unsigned long long)sh[s].sh_size);
		}
	}
	if (!eh)
		return xfail(x, "no xc_core ELF header among the image's Xen items");
	for (uint32_t s = 1; s < eh->e_shnum; s++)
		if (!body[s])
			return xfail(x, "xc_core section %u is missing from the image's Xen items",
				     s);
	if (pages < 0)
		return xfail(x, "no .xen_pages placeholder among the image's Xen items");
	const Elf64_Shdr *ss = &sh[eh->e_shstrndx];
	const char *strtab = (const char *)body[eh->e_shstrndx];
	int map = -1;
	for (uint32_t s = 1; s < eh->e_shnum; s++) {
		if (sh[s].sh_name >= ss->sh_size ||
		    !memchr(strtab + sh[s].sh_name, 0, ss->sh_size - sh[s].sh_name))
			return xfail(x, "xc_core section %u: name offset %u outside .shstrtab", s,
				     sh[s].sh_name);
		const char *n = strtab + sh[s].sh_name;
		if (!strcmp(n, ".xen_p2m") || !strcmp(n, ".xen_pfn")) {
			if (map >= 0)
				return xfail(x, "xc_core sections %d and %u are both a pfn map",
					     map, s);
			map = (int)s;
			x->stride = strcmp(n, ".xen_p2m") ? 8 : 16;
		}
		char what[48];
		snprintf(what, sizeof(what), "section %u (%.20s)", s, n);
		if (sh[s].sh_type != SHT_NOBITS && sh[s].sh_size &&
		    add_piece(x, sh[s].sh_offset, sh[s].sh_size, (int)s == pages ? NULL : body[s],
			      what) < 0)
			return -1;
	}
	if (map < 0)
		return xfail(x, "xc_core sections: neither .xen_p2m nor .xen_pfn");
	/*
	 * The map's entries are read from its body: a NOBITS map has none, and
	 * its sh_size (the file's, unchecked against any body) would be read past it.
	 */
	if (sh[map].sh_type == SHT_NOBITS || sh[pages].sh_size / 4096 != sh[map].sh_size / x->stride)
		return xfail(x, "xc_core section %d (pfn map): SHT_NOBITS, or %llu octets that .xen_pages (%llu octets) does not match",
			     map, (unsigned long long)sh[map].sh_size, (unsigned long long)sh[pages].sh_size);
	if (sh[map].sh_size % x->stride || sh[pages].sh_size != sh[map].sh_size / x->stride * 4096)
		return xfail(x, "xc_core .xen_pages holds %llu octets for %llu pfn map entries",
			     (unsigned long long)sh[pages].sh_size,
			     (unsigned long long)(sh[map].sh_size / x->stride));
	x->map = body[map];
	x->nmap = sh[map].sh_size / x->stride;
	if (add_piece(x, 0, sizeof(*eh), eh, "ELF header") < 0 ||
	    add_piece(x, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(*sh), sh, "section headers") <
		0)
		return -1;
	return check_map(x, x->stride == 16 ? ".xen_p2m" : ".xen_pfn", 1, 0);
}

/* ---------------- built as xg_core.c builds it ---------------- */

struct frame {
	uint64_t mfn, pfn;
};

static int cmp_frame(const void *a, const void *b)
{
	const struct frame *p = a, *q = b;
	if (p->mfn != q->mfn)
		return p->mfn < q->mfn ? -1 : 1;
	return p->pfn < q->pfn ? -1 : p->pfn > q->pfn;
}

static int read_p2m(struct xcx *x)
{
	struct xsr_section_info si;
	void *b;
	uint64_t len;
	if (xsr_image_find(x->img, XSR_SEC_P2M, ~0u, &si) < 0)
		return xfail(x, "no P2M section: the machine frames of this PV guest, which its "
				"page tables name, are unknown");
	if (xsr_image_read_section(x->img, si.index, &b, &len) < 0)
		return xfail(x, "P2M section: %s", xsr_image_error(x->img));
	if (!own(x, b))
		return -1;
	if (len % sizeof(struct xsr_p2m_entry) || !len)
		return xfail(x,
			     "P2M section at offset 0x%llx: %llu octets, not a non-empty array of "
			     "16-octet entries",
			     (unsigned long long)si.offset, (unsigned long long)len);
	x->p2m = b;
	x->np2m = len / sizeof(struct xsr_p2m_entry);
	/* by mfn, to find two pfns on one frame: crash finds a frame's page by its mfn */
	struct frame *m = malloc(x->np2m * sizeof(*m));
	if (!m)
		return xfail(x, "out of memory");
	for (uint64_t i = 0; i < x->np2m; i++) {
		const struct xsr_p2m_entry *e = &x->p2m[i];
		if (i && e->pfn <= x->p2m[i - 1].pfn) {
			free(m);
			return xfail(x,
				     "P2M section at offset 0x%llx, entry %llu: pfn 0x%llx after "
				     "0x%llx, not ascending",
				     (unsigned long long)si.offset, (unsigned long long)i,
				     (unsigned long long)e->pfn,
				     (unsigned long long)x->p2m[i - 1].pfn);
		}
		if (e->mfn > MFN_MAX) {
			free(m);
			return xfail(x,
				     "P2M section at offset 0x%llx, entry %llu: pfn 0x%llx -> mfn "
				     "0x%llx, which no page-table entry can hold (40 bits)",
				     (unsigned long long)si.offset, (unsigned long long)i,
				     (unsigned long long)e->pfn, (unsigned long long)e->mfn);
		}
		m[i] = (struct frame){e->mfn, e->pfn};
	}
	qsort(m, x->np2m, sizeof(*m), cmp_frame);
	for (uint64_t i = 1; i < x->np2m; i++)
		if (m[i].mfn == m[i - 1].mfn) {
			struct frame a = m[i - 1], b = m[i];
			free(m);
			return xfail(
			    x,
			    "P2M section at offset 0x%llx: pfns 0x%llx and 0x%llx are both "
			    "on mfn 0x%llx",
			    (unsigned long long)si.offset, (unsigned long long)a.pfn,
			    (unsigned long long)b.pfn, (unsigned long long)a.mfn);
		}
	free(m);
	x->map = (const uint8_t *)x->p2m; /* {pfn, mfn} is struct xen_dumpcore_p2m */
	x->stride = sizeof(struct xsr_p2m_entry);
	x->nmap = x->np2m;
	return check_map(x, "P2M", 0, 1);
}

/* HVM: every slot whose Xen type carries data, as .xen_pfn. */
static int hvm_pfns(struct xcx *x)
{
	uint64_t n = xsr_image_header(x->img)->nr_pages, k = 0;
	uint64_t *pf = own(x, malloc((n ? n : 1) * sizeof(*pf)));
	struct xsr_index_entry *ix = malloc(BATCH * sizeof(*ix));
	if (!pf || !ix) {
		free(ix);
		return pf ? xfail(x, "out of memory") : -1;
	}
	uint32_t nruns = xsr_image_nruns(x->img);
	const struct xsr_memrun *runs = xsr_image_runs(x->img);
	for (uint32_t r = 0; r < nruns; r++)
		for (uint64_t first = 0; first < runs[r].count; first += BATCH) {
			uint64_t m = runs[r].count - first < BATCH ? runs[r].count - first : BATCH;
			if (xsr_image_run_index(x->img, r, first, m, ix) < 0) {
				free(ix);
				return xfail(x, "page index: %s", xsr_image_error(x->img));
			}
			for (uint64_t j = 0; j < m && k < n; j++)
				if (xsr_xen_type_has_data(ix[j].flags >> XSR_IDX_XEN_TYPE_SHIFT))
					pf[k++] = runs[r].pfn + first + j;
		}
	free(ix);
	x->map = (const uint8_t *)pf;
	x->stride = 8;
	x->nmap = k;
	return 0;
}

static uint64_t msr_of(const struct xsr_vcpu_state *st, uint32_t idx, uint64_t dflt)
{
	for (uint32_t i = 0; i < st->r.nr_msrs && i < XSR_MAX_MSRS; i++)
		if (st->msrs[i].index == idx)
			return st->msrs[i].value;
	return dflt;
}

/*
 * What XEN_DOMCTL_getvcpucontext (arch_get_info_guest) returns, from the
 * registers an image keeps.  A PV guest's GDT frames, trap table, callbacks,
 * kernel stack and user cr3 (ctrlreg[1]) are not in a VCPU section and stay
 * zero; crash reads only cr3 and the user_regs.
 */
static void ctx_from_state(const struct xsr_vcpu_state *st, int hvm, uint64_t cr3,
			   vcpu_guest_context_x86_64_t *c)
{
	const struct xsr_x86_vcpu *r = &st->r;
	struct cpu_user_regs_x86_64 *u = &c->user_regs;
	memset(c, 0, sizeof(*c));
	memcpy(c->fpu_ctxt.x, r->fxsave, sizeof(c->fpu_ctxt.x));
	c->flags = VGCF_i387_valid | VGCF_online;
	u->rax = r->gpr[0];
	u->rbx = r->gpr[1];
	u->rcx = r->gpr[2];
	u->rdx = r->gpr[3];
	u->rsi = r->gpr[4];
	u->rdi = r->gpr[5];
	u->rsp = r->gpr[6];
	u->rbp = r->gpr[7];
	u->r8 = r->gpr[8];
	u->r9 = r->gpr[9];
	u->r10 = r->gpr[10];
	u->r11 = r->gpr[11];
	u->r12 = r->gpr[12];
	u->r13 = r->gpr[13];
	u->r14 = r->gpr[14];
	u->r15 = r->gpr[15];
	u->rip = r->rip;
	u->rflags = r->rflags;
	u->cs = r->cs.selector;
	u->ss = r->ss.selector;
	u->ds = r->ds.selector;
	u->es = r->es.selector;
	u->fs = r->fs.selector;
	u->gs = r->gs.selector;
	for (int i = 0; i < 8; i++)
		c->debugreg[i] = i == 4 || i == 5 ? 0 : r->dr[i];
	c->ctrlreg[0] = r->cr0;
	c->ctrlreg[2] = r->cr2;
	c->ctrlreg[3] = cr3;
	c->ctrlreg[4] = r->cr4;
	c->fs_base = r->fs.base;
	if (hvm) {
		uint64_t shadow = msr_of(st, 0xc0000102, 0);
		int ring0 = (r->cs.selector & 3) == 0;
		c->gs_base_kernel = ring0 ? r->gs.base : shadow;
		c->gs_base_user = ring0 ? shadow : r->gs.base;
	} else {
		/* A 64-bit PV kernel runs in ring 3 like its processes: the upper half is the
		 * kernel. */
		int kernel = r->rip >= HYPERVISOR_VIRT_START_X86_64;
		c->gs_base_kernel = msr_of(st, 0xc0000101, kernel ? r->gs.base : 0);
		c->gs_base_user = msr_of(st, 0xc0000102, kernel ? 0 : r->gs.base);
		c->ldt_base = r->ldt.base;
		if (kernel)
			c->flags |= VGCF_in_kernel;
	}
}

static int pfn_to_mfn(struct xcx *x, uint32_t v, const char *what, uint64_t pfn, uint64_t *mfn)
{
	if (p2m_lookup(x, pfn, mfn) < 0)
		return xfail(x,
			     "vCPU %u: %s names pfn 0x%llx, which has no P2M entry (libxc's "
			     "restore refuses it too)",
			     v, what, (unsigned long long)pfn);
	return 0;
}

/*
 * libxc's process_vcpu_basic(): a save holds the suspend record (vCPU 0's
 * rdx), the GDT frames, cr3 and the user cr3 as pfns; Xen's dump-core, as
 * the source's machine frames.
 */
static int localise_vcpu(struct xcx *x, uint32_t v, vcpu_guest_context_x86_64_t *c)
{
	uint64_t mfn;
	if (v == 0) {
		if (pfn_to_mfn(x, v, "the suspend record (rdx)", c->user_regs.rdx, &mfn) < 0)
			return -1;
		c->user_regs.rdx = mfn;
	}
	if (c->gdt_ents > 16 * 512)
		return xfail(x, "vCPU %u: %llu GDT entries, more than 16 frames hold", v,
			     (unsigned long long)c->gdt_ents);
	for (uint64_t i = 0; i < (c->gdt_ents + 511) / 512; i++) {
		char what[32];
		snprintf(what, sizeof(what), "GDT frame %llu", (unsigned long long)i);
		if (pfn_to_mfn(x, v, what, c->gdt_frames[i], &mfn) < 0)
			return -1;
		c->gdt_frames[i] = mfn;
	}
	if (pfn_to_mfn(x, v, "cr3", c->ctrlreg[3] >> 12, &mfn) < 0)
		return -1;
	c->ctrlreg[3] = mfn << 12;
	if (c->ctrlreg[1] & 1) { /* the save marks a user cr3 with bit 0 */
		if (pfn_to_mfn(x, v, "the user cr3 (ctrlreg[1])", c->ctrlreg[1] >> 12, &mfn) < 0)
			return -1;
		c->ctrlreg[1] = mfn << 12;
	}
	return 0;
}

/* .xen_prstatus from the last X86_PV_VCPU_BASIC record of each vCPU (vCPUs without one were
 * offline). */
static int prstatus_libxc(struct xcx *x, uint8_t **out, uint32_t *nv)
{
	uint32_t nr = xsr_image_header(x->img)->nr_vcpus;
	int64_t *last = malloc((nr ? nr : 1) * sizeof(*last));
	uint8_t *prs = own(x, malloc((size_t)(nr ? nr : 1) * XC_CTX_SIZE));
	if (!last || !prs) {
		free(last);
		return prs ? xfail(x, "out of memory") : -1;
	}
	for (uint32_t v = 0; v < nr; v++)
		last[v] = -1;
	int rc = -1;
	*nv = 0;
	for (uint32_t i = 0; i < x->npts; i++) {
		const struct xen_pt_item *p = &x->pts[i];
		if (p->h.origin != XSR_PT_ORIGIN_LIBXC_RECORD || p->h.type != XEN_RT_X86_PV_VCPU_BASIC)
			continue;
		if (p->h.length != 8 + XC_CTX_SIZE) {
			xfail(x,
			      "PASSTHRU item %u, libxc X86_PV_VCPU_BASIC: %u octets, not a 64-bit "
			      "vcpu_guest_context (%zu)",
			      i, p->h.length, 8 + XC_CTX_SIZE);
			goto out;
		}
		void *b;
		uint64_t len;
		if (xsr_image_read_section(x->img, p->sec, &b, &len) < 0) {
			xfail(x, "section %u: %s", p->sec, xsr_image_error(x->img));
			goto out;
		}
		uint32_t v;
		memcpy(&v, (uint8_t *)b + sizeof(struct xsr_passthru_hdr), 4);
		free(b);
		if (v >= nr) {
			xfail(x,
			      "PASSTHRU item %u, libxc X86_PV_VCPU_BASIC: vCPU %u, but the image "
			      "has %u",
			      i, v, nr);
			goto out;
		}
		last[v] = i;
	}
	for (uint32_t v = 0; v < nr; v++) {
		if (last[v] < 0)
			continue;
		const struct xen_pt_item *p = &x->pts[last[v]];
		void *b;
		uint64_t len;
		if (xsr_image_read_section(x->img, p->sec, &b, &len) < 0) {
			xfail(x, "section %u: %s", p->sec, xsr_image_error(x->img));
			goto out;
		}
		vcpu_guest_context_x86_64_t c;
		memcpy(&c, (uint8_t *)b + sizeof(struct xsr_passthru_hdr) + 8, sizeof(c));
		free(b);
		if (localise_vcpu(x, v, &c) < 0)
			goto out;
		memcpy(prs + (size_t)*nv * XC_CTX_SIZE, &c, sizeof(c));
		(*nv)++;
	}
	*out = prs;
	rc = 0;
out:
	free(last);
	return rc;
}

/* .xen_prstatus from the VCPU sections (vCPUs without registers are left out, as Xen leaves out
 * vCPUs it cannot read). */
static int prstatus_state(struct xcx *x, int hvm, uint8_t **out, uint32_t *nv)
{
	uint32_t nr = xsr_image_header(x->img)->nr_vcpus;
	uint8_t *prs = own(x, malloc((size_t)(nr ? nr : 1) * XC_CTX_SIZE));
	struct xsr_vcpu_state *st = malloc(sizeof(*st));
	int rc = -1;
	if (!prs || !st) {
		free(st);
		return prs ? xfail(x, "out of memory") : -1;
	}
	*nv = 0;
	for (uint32_t v = 0; v < nr; v++) {
		if (xsr_image_vcpu(x->img, v, st) < 0) {
			xfail(x, "vCPU %u: %s", v, xsr_image_error(x->img));
			goto out;
		}
		if (!st->r.valid)
			continue;
		uint64_t cr3 = st->r.cr3, mfn;
		if (!hvm) { /* the image keeps a PV cr3 as a pfn (xsr_xen_pv_basic) */
			if (pfn_to_mfn(x, v, "cr3", cr3 >> 12, &mfn) < 0)
				goto out;
			cr3 = mfn << 12 | (cr3 & 0xfff);
		}
		vcpu_guest_context_x86_64_t c;
		ctx_from_state(st, hvm, cr3, &c);
		memcpy(prs + (size_t)*nv * XC_CTX_SIZE, &c, sizeof(c));
		(*nv)++;
	}
	*out = prs;
	rc = 0;
out:
	free(st);
	return rc;
}

/* The shared_info page, if the image has one (DOMCTX SHARED_INFO: libxc SHARED_INFO or xc_core's).
 */
static int shared_info(struct xcx *x, const uint8_t **out)
{
	struct xsr_section_info si;
	void *b;
	uint64_t len;
	*out = NULL;
	if (x->native || xsr_image_find(x->img, XSR_SEC_DOMCTX, ~0u, &si) < 0)
		return 0;
	if (xsr_image_read_section(x->img, si.index, &b, &len) < 0)
		return xfail(x, "DOMCTX section: %s", xsr_image_error(x->img));
	if (!own(x, b))
		return -1;
	for (uint64_t off = 0; len - off >= sizeof(struct xsr_domctx_desc);) {
		struct xsr_domctx_desc d;
		memcpy(&d, (uint8_t *)b + off, sizeof(d));
		if (d.length > len - off - sizeof(d))
			return xfail(x,
				     "DOMCTX section at offset 0x%llx: descriptor at +0x%llx runs "
				     "past the section",
				     (unsigned long long)si.offset, (unsigned long long)off);
		if (d.typecode == XSR_DC_SHARED_INFO && d.length == 4096)
			*out = (uint8_t *)b + off + sizeof(d);
		off += sizeof(d) + ((d.length + 7) & ~UINT64_C(7));
		if (off > len)
			break;
	}
	return 0;
}

static uint8_t *note(uint8_t *p, uint32_t type, const void *desc, uint32_t len)
{
	uint32_t h[3] = {4, len, type};
	memcpy(p, h, 12);
	memcpy(p + 12, "Xen", 4);
	if (len)
		memcpy(p + XC_NOTE_HDR, desc, len);
	return p + XC_NOTE_HDR + len;
}

/*
 * The layout of xg_core.c: Ehdr, section headers, .note.Xen, .xen_prstatus,
 * .xen_shared_info (if known), padding to a page, .xen_pages, the pfn map,
 * .shstrtab.  The XEN_VERSION note carries what the image knows (version
 * and extra version from the producer, x86-64's virt_start, page size);
 * compile info, capabilities and changeset are not kept and stay empty.
 */
static int build(struct xcx *x, int hvm, const uint8_t *prs, uint32_t nv, const uint8_t *shinfo)
{
	uint16_t shnum = shinfo ? 7 : 6;
	Elf64_Ehdr *eh = own(x, calloc(1, sizeof(*eh)));
	Elf64_Shdr *sh = own(x, calloc(shnum, sizeof(*sh)));
	uint8_t *notes = own(x, calloc(1, XC_NOTES_LEN));
	char *strtab = own(x, calloc(1, 96));
	if (!eh || !sh || !notes || !strtab)
		return -1;
	static const char *const names[] = {".shstrtab", ".note.Xen", ".xen_prstatus",
					    ".xen_shared_info", ".xen_pages"};
	uint32_t name[7] = {0}, slen = 1;
	for (int i = 0; i < 5; i++) {
		if (i == 3 && !shinfo)
			continue;
		name[i + 1] = slen;
		slen += (uint32_t)strlen(strcpy(strtab + slen, names[i])) + 1;
	}
	name[6] = slen;
	slen += (uint32_t)strlen(strcpy(strtab + slen, hvm ? ".xen_pfn" : ".xen_p2m")) + 1;

	uint64_t off = sizeof(*eh) + (uint64_t)shnum * sizeof(*sh);
	int k = 1; /* [0] is the null section */
	sh[k] = (Elf64_Shdr){.sh_name = name[1], .sh_type = SHT_STRTAB}; /* offset and size below */
	int strtab_ix = k++;
	sh[k++] = (Elf64_Shdr){
	    .sh_name = name[2], .sh_type = SHT_NOTE, .sh_offset = off, .sh_size = XC_NOTES_LEN};
	off += XC_NOTES_LEN;
	sh[k++] = (Elf64_Shdr){.sh_name = name[3],
			       .sh_type = SHT_PROGBITS,
			       .sh_offset = off,
			       .sh_size = (uint64_t)nv * XC_CTX_SIZE,
			       .sh_addralign = 8,
			       .sh_entsize = XC_CTX_SIZE};
	if (add_piece(x, off, (uint64_t)nv * XC_CTX_SIZE, prs, ".xen_prstatus") < 0)
		return -1;
	off += (uint64_t)nv * XC_CTX_SIZE;
	if (shinfo) {
		sh[k++] = (Elf64_Shdr){.sh_name = name[4],
				       .sh_type = SHT_PROGBITS,
				       .sh_offset = off,
				       .sh_size = 4096,
				       .sh_addralign = 8,
				       .sh_entsize = 4096};
		if (add_piece(x, off, 4096, shinfo, ".xen_shared_info") < 0)
			return -1;
		off += 4096;
	}
	off = (off + 4095) & ~UINT64_C(4095);
	sh[k++] = (Elf64_Shdr){.sh_name = name[5],
			       .sh_type = SHT_PROGBITS,
			       .sh_offset = off,
			       .sh_size = x->nmap * 4096,
			       .sh_addralign = 4096,
			       .sh_entsize = 4096};
	if (add_piece(x, off, x->nmap * 4096, NULL, ".xen_pages") < 0)
		return -1;
	off += x->nmap * 4096;
	sh[k++] = (Elf64_Shdr){.sh_name = name[6],
			       .sh_type = SHT_PROGBITS,
			       .sh_offset = off,
			       .sh_size = x->nmap * x->stride,
			       .sh_addralign = 8,
			       .sh_entsize = x->stride};
	if (add_piece(x, off, x->nmap * x->stride, x->map, hvm ? ".xen_pfn" : ".xen_p2m") < 0)
		return -1;
	off += x->nmap * x->stride;
	sh[strtab_ix].sh_offset = off;
	sh[strtab_ix].sh_size = slen;

	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_ident[EI_OSABI] = ELFOSABI_SYSV;
	eh->e_ident[EI_ABIVERSION] = EV_CURRENT; /* as xc_core_ehdr_init() sets it */
	eh->e_type = ET_CORE;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_shoff = sizeof(*eh);
	eh->e_ehsize = sizeof(*eh);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_shentsize = sizeof(Elf64_Shdr);
	eh->e_shnum = shnum;
	eh->e_shstrndx = (uint16_t)strtab_ix;

	uint64_t hdr[4] = {hvm ? XC_CORE_MAGIC_HVM : XC_CORE_MAGIC, nv, x->nmap, 4096};
	uint8_t ver[XC_VERSION_DESC] = {0};
	unsigned major = 0, minor = 0;
	char extra[16] = "";
	/* "4.17.7 (xc_core dump, x86 PV)", "4.17 (xl, libxl v2, ...)", "4.17.7 (xsr core, ...)" */
	if (sscanf(x->prod.hypervisor_version, "%u.%u%15[^ (]", &major, &minor, extra) < 2)
		major = minor = 0;
	uint64_t mm[2] = {major, minor}, virt_start = HYPERVISOR_VIRT_START_X86_64, psize = 4096,
		 fmt = XC_FORMAT_VERSION;
	memcpy(ver, mm, 16);
	memcpy(ver + 16, extra, strnlen(extra, sizeof(extra)));
	memcpy(ver + XC_VERSION_DESC - 16, &virt_start, 8); /* platform_parameters */
	memcpy(ver + XC_VERSION_DESC - 8, &psize, 8);
	uint8_t *p = note(notes, XC_NOTE_NONE, NULL, 0);
	p = note(p, XC_NOTE_HEADER, hdr, sizeof(hdr));
	p = note(p, XC_NOTE_XEN_VERSION, ver, sizeof(ver));
	note(p, XC_NOTE_FORMAT_VERSION, &fmt, sizeof(fmt));

	if (add_piece(x, 0, sizeof(*eh), eh, "ELF header") < 0 ||
	    add_piece(x, eh->e_shoff, (uint64_t)shnum * sizeof(*sh), sh, "section headers") < 0 ||
	    add_piece(x, sh[2].sh_offset, XC_NOTES_LEN, notes, ".note.Xen") < 0)
		return -1;
	return add_piece(x, sh[strtab_ix].sh_offset, slen, strtab, ".shstrtab");
}

/* An imported libxc stream: the guest type is in the domain header, the width in X86_PV_INFO. */
static int plan_libxc(struct xcx *x)
{
	uint32_t gtype = 0;
	uint8_t width = 8;
	for (uint32_t i = 0; i < x->npts; i++) {
		const struct xen_pt_item *p = &x->pts[i];
		int hdr = p->h.origin == XSR_PT_ORIGIN_LIBXC_HEADER && p->h.length >= 28;
		int info = p->h.origin == XSR_PT_ORIGIN_LIBXC_RECORD && p->h.type == XEN_RT_X86_PV_INFO &&
			   p->h.length >= 1;
		if (!hdr && !info)
			continue;
		void *b;
		uint64_t len;
		if (xsr_image_read_section(x->img, p->sec, &b, &len) < 0)
			return xfail(x, "section %u: %s", p->sec, xsr_image_error(x->img));
		const uint8_t *d = (uint8_t *)b + sizeof(struct xsr_passthru_hdr);
		if (hdr)
			memcpy(&gtype, d + 24, 4);
		else
			width = d[0];
		free(b);
	}
	uint8_t *prs;
	uint32_t nv;
	const uint8_t *shinfo;
	if (gtype == XEN_DHDR_X86_HVM) {
		if (hvm_pfns(x) < 0 || prstatus_state(x, 1, &prs, &nv) < 0)
			return -1;
		shinfo = NULL; /* an HVM stream has none: the page is guest memory */
	} else if (gtype == XEN_DHDR_X86_PV) {
		if (width != 8)
			return xfail(x,
				     "a %u-bit PV guest: xc_core export writes 64-bit guests only "
				     "(a 32-bit PV dump is EM_386 with other structures)",
				     width * 8u);
		if (read_p2m(x) < 0 || prstatus_libxc(x, &prs, &nv) < 0 ||
		    shared_info(x, &shinfo) < 0)
			return -1;
		x->localise = 1;
	} else {
		return xfail(x, "libxc domain type %u: neither x86 PV nor x86 HVM", gtype);
	}
	if (!nv)
		return xfail(x, "no vCPU has a context in this image (no X86_PV_VCPU_BASIC record "
				"or CPU state)");
	return build(x, gtype == XEN_DHDR_X86_HVM, prs, nv, shinfo);
}

/* What `xsr core DOMID` (backends/xen.c) records: VCPU sections, the P2M of a PV guest, the pages.
 */
static int plan_native(struct xcx *x)
{
	const char *hv = x->prod.hypervisor_version;
	int hvm = strstr(hv, "HVM") != NULL;
	if (strstr(hv, "32-bit"))
		return xfail(
		    x, "a 32-bit PV guest (\"%s\"): xc_core export writes 64-bit guests only", hv);
	uint8_t *prs;
	uint32_t nv;
	const uint8_t *shinfo = NULL;
	if (hvm ? hvm_pfns(x) < 0 : read_p2m(x) < 0)
		return -1;
	if (prstatus_state(x, hvm, &prs, &nv) < 0 || shared_info(x, &shinfo) < 0)
		return -1;
	if (!nv)
		return xfail(x, "no vCPU has registers in this image");
	return build(x, hvm, prs, nv, hvm ? NULL : shinfo);
}

static int plan(struct xcx *x)
{
	struct xsr_section_info si;
	void *b;
	uint64_t len;
	if (xsr_image_find(x->img, XSR_SEC_PRODUCER, ~0u, &si) < 0 ||
	    xsr_image_read_section(x->img, si.index, &b, &len) < 0)
		return xfail(
		    x, "no readable producer section: cannot tell which hypervisor ran this guest");
	if (len < sizeof(x->prod)) {
		free(b);
		return xfail(x, "producer section at offset 0x%llx: %llu octets",
			     (unsigned long long)si.offset, (unsigned long long)len);
	}
	memcpy(&x->prod, b, sizeof(x->prod));
	free(b);
	x->prod.hypervisor[sizeof(x->prod.hypervisor) - 1] = 0;
	x->prod.hypervisor_version[sizeof(x->prod.hypervisor_version) - 1] = 0;
	if (strcmp(x->prod.hypervisor, "xen"))
		return xfail(x,
			     "an image of a %s guest (producer: hypervisor \"%s\"): xc_core is "
			     "Xen's dump format, only images of Xen guests export to it",
			     x->prod.hypervisor[0] ? x->prod.hypervisor : "unnamed",
			     x->prod.hypervisor);
	if ((x->code = xen_pt_collect(x->img, &x->pts, &x->npts, &x->xc_version, x->err, sizeof(x->err))) < 0)
		return -1;
#if XSR_TESTHOOKS
	/* Test-only: read an imported dump as `xsr core DOMID` would have written it (no Xen items,
	 * no DOMCTX). */
	if (getenv("XSR_TEST_XCCORE_NATIVE")) {
		x->native = 1;
		x->npts = 0;
	}
#endif
	int core = 0, libxc = 0;
	for (uint32_t i = 0; i < x->npts; i++) {
		core |= x->pts[i].h.origin == XSR_PT_ORIGIN_XC_CORE;
		libxc |= x->pts[i].h.origin == XSR_PT_ORIGIN_LIBXC_HEADER;
	}
	if (core)
		return plan_passthru(x);
	if (libxc)
		return plan_libxc(x);
	if (x->npts)
		return xfail(
		    x, "the image's Xen items hold neither an xc_core dump nor a libxc stream");
	x->native = 1;
	return plan_native(x);
}

int xen_xccore_export(struct xsr_image *img, int out_fd, const struct xsr_foreign_cb *cb, uint64_t *bytes,
		      char *err, size_t errlen)
{
	struct xcx *x = calloc(1, sizeof(*x));
	*bytes = 0;
	if (!x) {
		snprintf(err, errlen, "out of memory");
		return XSR_E_NOMEM;
	}
	x->img = img;
	x->out = out_fd;
	x->cb = cb;
	int rc = plan(x);
	if (rc == 0)
		rc = check_layout(x);
	if (rc == 0)
		rc = emit(x);
	if (rc < 0) {
		snprintf(err, errlen, "%s", x->err);
		rc = x->code < 0 ? x->code : XSR_E_FORMAT;
	}
	*bytes = x->bytes;
	for (uint32_t i = 0; i < x->nowned; i++)
		free(x->owned[i]);
	free(x->pts);
	free(x);
	return rc;
}
