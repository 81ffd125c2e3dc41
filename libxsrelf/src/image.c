/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Random-access reader for seekable images, from any source (source.c).
 * elfutils libelf parses the ELF tables from a read-only map of the file;
 * every offset and length is checked against the file size first, with
 * checks written so that they cannot overflow.
 */
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include <xsrelf/xenstore.h>

#include "internal.h"

struct xsr_image {
	struct xsr_source src;
	unsigned open_flags; /* XSR_OPEN_* */
	uint64_t size;
	void *file; /* read-only map of the whole file: libelf's input, and the index */
	bool file_anon; /* file is map_sparse()'s memory */
	Elf *elf;
	Elf64_Ehdr eh;
	struct xsr_file_header fh;
	uint32_t nsecs;
	struct xsr_section_info *secs;
	struct xsr_record_header *shdrs; /* raw, indexed like secs */
	Elf64_Phdr *ph;
	uint32_t phnum;
	uint32_t nruns;
	struct xsr_memrun *runs;
	uint64_t *slot_base;
	int i_notes, i_memmap, i_index, i_pages, i_producer, i_strtab, i_integrity;
	uint64_t pages_off;
	uint64_t index_off;
	/* The index body, in the map; entries are copied out (a caller's buffer need not be 8-aligned). */
	const uint8_t *index;
	char err[XSR_ERRLEN];
	struct xsr_finding where; /* where the problem in err lies */
};

static int ifail(struct xsr_image *img, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int ifail(struct xsr_image *img, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(img->err, sizeof(img->err), fmt, ap);
	va_end(ap);
	xsr_finding_clear(&img->where);
	img->where.offset = xsr_msg_offset(img->err);
	/* A callback source (a remote store) failed: say where, whatever the caller was reading. */
	if (rc == XSR_E_IO && img->src.failed_at != XSR_NO_OFFSET && xsr_source_is_callbacks(&img->src)) {
		size_t n = strlen(img->err);
		snprintf(img->err + n, sizeof(img->err) - n, " (the source failed at offset 0x%llx)",
			 (unsigned long long)img->src.failed_at);
		if (img->where.offset == XSR_NO_OFFSET)
			img->where.offset = img->src.failed_at;
		img->src.failed_at = XSR_NO_OFFSET;
	}
	return rc;
}

/* ifail()'s result, placed: return at(img, ifail(img, ...), section, offset, pfn). */
static int at(struct xsr_image *img, int rc, const char *section, uint64_t off, uint64_t pfn)
{
	xsr_finding_set(&img->where, section, off, pfn);
	return rc;
}

void xsr_image_error_at(const struct xsr_image *img, struct xsr_finding *out)
{
	if (!img) {
		xsr_finding_clear(out);
		out->message = "no image";
		return;
	}
	*out = img->where;
	out->message = img->err;
}

static int img_pread(struct xsr_image *img, void *buf, size_t len, uint64_t off)
{
	return img->src.ops->pread(&img->src, buf, len, off);
}

/*
 * [off, off + len) of the file: in place when the source holds it in memory,
 * else read into *@scratch (@cap octets, allocated at the first need, so
 * that a reader from memory allocates nothing).  NULL with *@rc = -errno.
 */
static const uint8_t *img_bytes(struct xsr_image *img, uint8_t **scratch, size_t cap, size_t len, uint64_t off,
				int *rc)
{
	const uint8_t *p = img->src.ops->view(&img->src, off, len);
	if (p)
		return p;
	if (len > cap) {
		*rc = -EINVAL;
		return NULL;
	}
	if (!*scratch && !(*scratch = malloc(cap))) {
		*rc = -ENOMEM;
		return NULL;
	}
	*rc = img_pread(img, *scratch, len, off);
	return *rc < 0 ? NULL : *scratch;
}

const char *xsr_image_error(const struct xsr_image *img)
{
	return img ? img->err : "no image";
}

static const char *sname(const struct xsr_image *img, int i)
{
	return img->secs[i].name;
}

static bool is_record(const struct xsr_image *img, int i)
{
	return i != img->i_pages;
}

/* Read a record body at section @i, checking header copy, padding and trailer. */
static int read_record(struct xsr_image *img, int i, void *body, uint64_t len)
{
	const struct xsr_section_info *s = &img->secs[i];
	struct xsr_record_header rh;
	uint64_t pad = ALIGN8(s->size) - s->size, trailer;
	uint8_t tail[16];
	int rc;
	if (len != s->size)
		return ifail(img, XSR_E_INVAL, "section %s: buffer of %llu for %llu octets", sname(img, i),
			     (unsigned long long)len, (unsigned long long)s->size);
	if ((rc = img_pread(img, &rh, sizeof(rh), s->offset - sizeof(rh))) < 0 ||
	    (rc = img_pread(img, body, len, s->offset)) < 0 ||
	    (rc = img_pread(img, tail, pad + 8, s->offset + len)) < 0)
		return at(img, ifail(img, XSR_E_IO, "section %s at 0x%llx: read failed: %s", sname(img, i),
				     (unsigned long long)s->offset, strerror(-rc)), sname(img, i), s->offset, XSR_NO_PFN);
	struct xsr_record_header want = img->shdrs[i];
	want.sh_name = 0;
	if (memcmp(&rh, &want, sizeof(rh)))
		return at(img, ifail(img, XSR_E_CHECKSUM, "section %s: record header at 0x%llx differs from its section header (header %d)",
				     sname(img, i), (unsigned long long)(s->offset - sizeof(rh)), i),
			  sname(img, i), s->offset - sizeof(rh), XSR_NO_PFN);
	if (!xsr_is_zero(tail, pad))
		return at(img, ifail(img, XSR_E_FORMAT, "section %s: padding at 0x%llx is not zero", sname(img, i),
				     (unsigned long long)(s->offset + len)), sname(img, i), s->offset + len, XSR_NO_PFN);
	memcpy(&trailer, tail + pad, 8);
	struct iovec v = {body, len};
	if (xsr_record_hash(&rh, &v, 1, len) != trailer)
		return at(img, ifail(img, XSR_E_CHECKSUM, "section %s at 0x%llx: checksum mismatch", sname(img, i),
				     (unsigned long long)s->offset), sname(img, i), s->offset, XSR_NO_PFN);
	return 0;
}

/* Checksum a (possibly large) record in chunks; returns 0 or <0 with message. */
static int hash_record(struct xsr_image *img, int i, uint64_t *trailer_out)
{
	const struct xsr_section_info *s = &img->secs[i];
	struct xsr_record_header rh;
	/* Sized to the record: a 1 MiB buffer per small record is an mmap each. */
	size_t chunk = s->size < (1 << 20) ? (size_t)s->size + 1 : 1 << 20;
	uint64_t pad = ALIGN8(s->size) - s->size, trailer;
	uint8_t tail[16];
	int rc = 0;
	uint8_t *buf = NULL; /* for sources that do not hold the file in memory */
	XXH3_state_t st;
	if ((rc = img_pread(img, &rh, sizeof(rh), s->offset - sizeof(rh))) < 0) {
		rc = at(img, ifail(img, XSR_E_IO, "section %s: %s", sname(img, i), strerror(-rc)), sname(img, i),
			s->offset - sizeof(rh), XSR_NO_PFN);
		goto out;
	}
	struct xsr_record_header want = img->shdrs[i];
	want.sh_name = 0;
	if (memcmp(&rh, &want, sizeof(rh))) {
		rc = at(img, ifail(img, XSR_E_CHECKSUM, "section %s: record header at 0x%llx differs from its section header (header %d)",
				   sname(img, i), (unsigned long long)(s->offset - sizeof(rh)), i),
			sname(img, i), s->offset - sizeof(rh), XSR_NO_PFN);
		goto out;
	}
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, &rh, sizeof(rh));
	for (uint64_t off = 0; off < s->size; off += chunk) {
		size_t n = s->size - off < chunk ? (size_t)(s->size - off) : chunk;
		const uint8_t *p = img_bytes(img, &buf, chunk, n, s->offset + off, &rc);
		if (!p) {
			rc = at(img, ifail(img, rc == -ENOMEM ? XSR_E_NOMEM : XSR_E_IO, "section %s: %s", sname(img, i), strerror(-rc)),
				sname(img, i), s->offset + off, XSR_NO_PFN);
			goto out;
		}
		XXH3_64bits_update(&st, p, n);
	}
	if ((rc = img_pread(img, tail, pad + 8, s->offset + s->size)) < 0) {
		rc = at(img, ifail(img, XSR_E_IO, "section %s: %s", sname(img, i), strerror(-rc)), sname(img, i),
			s->offset + s->size, XSR_NO_PFN);
		goto out;
	}
	if (!xsr_is_zero(tail, pad)) {
		rc = at(img, ifail(img, XSR_E_FORMAT, "section %s: padding at 0x%llx is not zero", sname(img, i),
				   (unsigned long long)(s->offset + s->size)), sname(img, i), s->offset + s->size, XSR_NO_PFN);
		goto out;
	}
	XXH3_64bits_update(&st, tail, pad);
	memcpy(&trailer, tail + pad, 8);
	if (XXH3_64bits_digest(&st) != trailer)
		rc = at(img, ifail(img, XSR_E_CHECKSUM, "section %s at 0x%llx: checksum mismatch", sname(img, i),
				   (unsigned long long)s->offset), sname(img, i), s->offset, XSR_NO_PFN);
	if (trailer_out)
		*trailer_out = trailer;
out:
	free(buf);
	return rc;
}

static int check_section(struct xsr_image *img, int i, const GElf_Shdr *sh)
{
	struct xsr_section_info *s = &img->secs[i];
	uint32_t code;
	if (sh->sh_type == SHT_NOTE)
		code = XSR_SEC_NOTES;
	else if (sh->sh_type == SHT_STRTAB)
		code = XSR_SEC_STRTAB;
	else if ((sh->sh_type & XSR_SHT_BASE) && !(sh->sh_type & ~(XSR_SHT_BASE | XSR_SHT_OPTIONAL | XSR_SHT_CODE_MASK)))
		code = sh->sh_type & XSR_SHT_CODE_MASK;
	else
		return ifail(img, XSR_E_UNSUPPORTED, "section header %d (%s): type 0x%x is not an xsrelf section",
			     i, s->name, sh->sh_type);
	s->code = code;
	const struct xsr_sec_desc *d = xsr_sec_lookup(code);
	if (!d) {
		if (sh->sh_type & XSR_SHT_OPTIONAL) {
			s->code = UINT32_MAX; /* unknown optional: listed, never used */
		} else {
			return ifail(img, XSR_E_UNSUPPORTED,
				     "section header %d (%s): unknown mandatory section type %u (0x%x); this reader knows types 0..%u",
				     i, s->name, code, sh->sh_type, XSR_SEC__COUNT - 1);
		}
	} else if (d->stream_only) {
		return ifail(img, XSR_E_FORMAT, "section header %d: %s is a stream-only record", i, d->name);
	}
	if (sh->sh_flags || sh->sh_link || sh->sh_addr)
		return ifail(img, XSR_E_FORMAT, "section %s (header %d): sh_flags/sh_link/sh_addr must be 0", s->name, i);
	const char *why = xsr_rh_fixed(code, d, sh->sh_info, sh->sh_entsize, sh->sh_addralign);
	if (why)
		return ifail(img, XSR_E_FORMAT, "section %s (header %d): %s", s->name, i, why);
	if (code == XSR_SEC_PAGES && d) {
		if (sh->sh_offset % XSR_PAGE_SIZE || !xsr_in_bounds(sh->sh_offset, sh->sh_size, img->size))
			return ifail(img, XSR_E_FORMAT, "section %s: page data [0x%llx, +0x%llx) is unaligned or past the end of the file (0x%llx)",
				     s->name, (unsigned long long)sh->sh_offset, (unsigned long long)sh->sh_size,
				     (unsigned long long)img->size);
		return 0;
	}
	if (sh->sh_offset % 8 || sh->sh_offset < XSR_HEADER_END + sizeof(struct xsr_record_header) ||
	    sh->sh_size > UINT64_MAX / 2 ||
	    !xsr_in_bounds(sh->sh_offset - sizeof(struct xsr_record_header),
			   sizeof(struct xsr_record_header) + ALIGN8(sh->sh_size) + 8, img->size))
		return ifail(img, XSR_E_FORMAT, "section %s: record at 0x%llx of %llu octets is not 8-aligned or lies outside the file (%llu octets)",
			     s->name, (unsigned long long)sh->sh_offset, (unsigned long long)sh->sh_size,
			     (unsigned long long)img->size);
	if (d && code != XSR_SEC_INDEX && (sh->sh_size < d->min_len || sh->sh_size > d->max_len))
		return ifail(img, XSR_E_LIMIT, "section %s at 0x%llx: %llu octets, must be %llu..%llu", s->name,
			     (unsigned long long)sh->sh_offset, (unsigned long long)sh->sh_size,
			     (unsigned long long)d->min_len, (unsigned long long)d->max_len);
	if (d && d->per_vcpu && sh->sh_info >= img->fh.nr_vcpus)
		return ifail(img, XSR_E_RANGE, "section %s at 0x%llx: vCPU %u of %u", s->name,
			     (unsigned long long)sh->sh_offset, sh->sh_info, img->fh.nr_vcpus);
	return 0;
}

static int *slot_for(struct xsr_image *img, uint32_t code)
{
	switch (code) {
	case XSR_SEC_NOTES: return &img->i_notes;
	case XSR_SEC_MEMMAP: return &img->i_memmap;
	case XSR_SEC_INDEX: return &img->i_index;
	case XSR_SEC_PAGES: return &img->i_pages;
	case XSR_SEC_PRODUCER: return &img->i_producer;
	case XSR_SEC_STRTAB: return &img->i_strtab;
	case XSR_SEC_INTEGRITY: return &img->i_integrity;
	}
	return NULL;
}

/* What the table's validators see of this image; the memory map once load_memmap has it. */
static struct xsr_sec_check_ctx check_ctx(const struct xsr_image *img, int i)
{
	return (struct xsr_sec_check_ctx){
		.layout = XSR_LAYOUT_SEEKABLE, .info = img->secs[i].info, .fh = &img->fh,
		.runs = img->slot_base ? img->runs : NULL, .base = img->slot_base, .nruns = img->slot_base ? img->nruns : 0,
	};
}

/* Section @i's body through the table's validator (check.c), as the stream reader does; placed at the section. */
static int check_body(struct xsr_image *img, int i, const void *body, const struct xsr_sec_check_ctx *c)
{
	const struct xsr_section_info *s = &img->secs[i];
	char why[256];
	int rc = xsr_sec_check(s->code, body, s->size, c, why, sizeof(why));
	if (rc < 0)
		return at(img, ifail(img, rc, "section %s at 0x%llx: %s", s->name, (unsigned long long)s->offset, why),
			  s->name, s->offset, XSR_NO_PFN);
	return 0;
}

/*
 * The file's view for a source that cannot map (a callback source: HTTP, S3):
 * anonymous memory of the file's size, into which the header, the program
 * and section header tables and every section body but the page slots are
 * read.  The untouched rest costs no memory; page data is read when asked
 * for.  So memory follows the image's metadata (its index is 16 octets a
 * page), not the size the file claims.  Ranges are checked by the caller
 * (tables) or skipped here when outside the file (the checks that follow
 * report them).
 */
static int map_sparse(struct xsr_image *img, const Elf64_Ehdr *eh)
{
	if (img->size > SIZE_MAX)
		return -EFBIG;
	uint8_t *p = mmap(NULL, (size_t)img->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			  -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	img->file = p;
	img->file_anon = true;
	uint64_t sh_len = (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr);
	int rc;
	if ((rc = img_pread(img, p, XSR_HEADER_END, 0)) < 0 ||
	    (rc = img_pread(img, p + eh->e_phoff, (size_t)eh->e_phnum * sizeof(Elf64_Phdr), eh->e_phoff)) < 0 ||
	    (rc = img_pread(img, p + eh->e_shoff, (size_t)sh_len, eh->e_shoff)) < 0)
		return rc;
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(p + eh->e_shoff);
	for (uint32_t i = 1; i < eh->e_shnum; i++) {
		uint32_t t = sh[i].sh_type;
		uint32_t code = t == SHT_NOTE ? XSR_SEC_NOTES : t == SHT_STRTAB ? XSR_SEC_STRTAB
				: t & XSR_SHT_BASE ? t & XSR_SHT_CODE_MASK : UINT32_MAX;
		const struct xsr_sec_desc *d = xsr_sec_lookup(code);
		/* Page slots are not metadata; a body longer than its type allows is refused later, unread. */
		if (code == XSR_SEC_PAGES || !sh[i].sh_size || sh[i].sh_size > (d ? d->max_len : XSR_MAX_RECORD) ||
		    !xsr_in_bounds(sh[i].sh_offset, sh[i].sh_size, img->size))
			continue;
		/* A record's header lies before its body and its trailer after (read_record checks them). */
		uint64_t at = sh[i].sh_offset, len = sh[i].sh_size;
		uint64_t lead = at >= sizeof(struct xsr_record_header) ? sizeof(struct xsr_record_header) : at;
		uint64_t end = ALIGN8(at + len) + sizeof(struct xsr_record_trailer);
		if (end > img->size || end < at)
			end = img->size;
		if ((rc = img_pread(img, p + at - lead, (size_t)(end - (at - lead)), at - lead)) < 0)
			return rc;
	}
	return 0;
}

static int load_tables(struct xsr_image *img)
{
	const Elf64_Ehdr *eh = &img->eh;
	size_t shstrndx;
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_shentsize != sizeof(Elf64_Shdr))
		return ifail(img, XSR_E_FORMAT, "offset 0x36: e_phentsize/e_shentsize are not 56/64");
	if (eh->e_phnum < 1 || eh->e_phnum == PN_XNUM || eh->e_phoff != XSR_HEADER_END ||
	    !xsr_in_bounds(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), img->size))
		return ifail(img, XSR_E_FORMAT, "offset 0x20: program header table (0x%llx, %u entries) is misplaced or past the end of the file",
			     (unsigned long long)eh->e_phoff, eh->e_phnum);
	if (eh->e_shnum < 8 || eh->e_shnum > XSR_MAX_SECTIONS || eh->e_shoff % 8 ||
	    !xsr_in_bounds(eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr), img->size) ||
	    eh->e_shstrndx == 0 || eh->e_shstrndx >= eh->e_shnum)
		return ifail(img, XSR_E_FORMAT, "offset 0x28: section header table (0x%llx, %u entries, strtab %u) is invalid or past the end of the file",
			     (unsigned long long)eh->e_shoff, eh->e_shnum, eh->e_shstrndx);
	/* One read-only map of the file serves libelf and the page index. */
	int rc = img->src.ops->map(&img->src, 0, (size_t)img->size, false, &img->file);
	if (rc == -ENOTSUP)
		rc = map_sparse(img, eh);
	if (rc < 0) {
		img->file = NULL;
		return ifail(img, XSR_E_IO, "mapping the file (%llu octets): %s", (unsigned long long)img->size,
			     strerror(-rc));
	}
	img->elf = elf_memory(img->file, (size_t)img->size);
	if (!img->elf)
		return ifail(img, XSR_E_FORMAT, "libelf: %s", elf_errmsg(-1));
	if (elf_getshdrstrndx(img->elf, &shstrndx) < 0)
		return ifail(img, XSR_E_FORMAT, "libelf: %s", elf_errmsg(-1));
	img->nsecs = eh->e_shnum;
	img->secs = calloc(img->nsecs, sizeof(*img->secs));
	img->shdrs = calloc(img->nsecs, sizeof(*img->shdrs));
	img->phnum = eh->e_phnum;
	img->ph = calloc(img->phnum, sizeof(*img->ph));
	if (!img->secs || !img->shdrs || !img->ph)
		return ifail(img, XSR_E_NOMEM, "out of memory for %u sections", img->nsecs);
	img->i_notes = img->i_memmap = img->i_index = img->i_pages = -1;
	img->i_producer = img->i_strtab = img->i_integrity = -1;
	/* The string table first, so that every later message can name its section. */
	GElf_Shdr strsh;
	Elf_Scn *strscn = elf_getscn(img->elf, shstrndx);
	if (!strscn || !gelf_getshdr(strscn, &strsh) || strsh.sh_type != SHT_STRTAB ||
	    !xsr_in_bounds(strsh.sh_offset, strsh.sh_size, img->size) || strsh.sh_size == 0)
		return ifail(img, XSR_E_FORMAT, "section header %zu: the section-name string table is invalid", shstrndx);
	/* Every name must end inside the table, or readers print garbage or "(bad name)". */
	if (((const uint8_t *)img->file)[strsh.sh_offset + strsh.sh_size - 1] != 0)
		return ifail(img, XSR_E_FORMAT, "section .shstrtab at 0x%llx: the last octet is not NUL",
			     (unsigned long long)strsh.sh_offset);
	for (uint32_t i = 0; i < img->nsecs; i++) {
		GElf_Shdr sh;
		Elf_Scn *scn = elf_getscn(img->elf, i);
		if (!scn || !gelf_getshdr(scn, &sh))
			return ifail(img, XSR_E_FORMAT, "section header %u: %s", i, elf_errmsg(-1));
		struct xsr_section_info *s = &img->secs[i];
		memcpy(&img->shdrs[i], &sh, sizeof(sh));
		s->index = i;
		s->sh_type = sh.sh_type;
		s->info = sh.sh_info;
		s->offset = sh.sh_offset;
		s->size = sh.sh_size;
		s->entsize = sh.sh_entsize;
		const char *nm = sh.sh_name < strsh.sh_size ? elf_strptr(img->elf, shstrndx, sh.sh_name) : NULL;
		if (!nm)
			return ifail(img, XSR_E_FORMAT, "section header %u at 0x%llx: sh_name 0x%x is outside .shstrtab (%llu octets)",
				     i, (unsigned long long)(eh->e_shoff + (uint64_t)i * sizeof(Elf64_Shdr)), sh.sh_name,
				     (unsigned long long)strsh.sh_size);
		s->name = nm;
		if (i == 0) {
			s->code = UINT32_MAX;
			GElf_Shdr zero;
			memset(&zero, 0, sizeof(zero));
			if (memcmp(&sh, &zero, sizeof(sh)))
				return ifail(img, XSR_E_FORMAT, "section header 0 is not all zero");
			continue;
		}
		if ((rc = check_section(img, (int)i, &sh)) < 0)
			return img->where.offset == XSR_NO_OFFSET ? at(img, rc, s->name, eh->e_shoff + i * sizeof(Elf64_Shdr), XSR_NO_PFN)
								  : rc;
		int *slot = s->code == UINT32_MAX ? NULL : slot_for(img, s->code);
		if (slot) {
			if (*slot >= 0)
				return ifail(img, XSR_E_FORMAT, "section %s (header %u): a second %s section (the first is header %d)",
					     s->name, i, xsr_section_name(s->sh_type), *slot);
			*slot = (int)i;
		}
	}
	if (img->i_notes < 0 || img->i_memmap < 0 || img->i_index < 0 || img->i_pages < 0 ||
	    img->i_producer < 0 || img->i_strtab < 0 || img->i_integrity < 0)
	{
		/* name the missing ones: a damaged sh_type turns one into something else */
		const struct {
			int i;
			const char *name;
		} req[] = {{img->i_notes, ".note"},       {img->i_producer, ".xsr.producer"}, {img->i_memmap, ".xsr.memmap"},
			   {img->i_index, ".xsr.index"}, {img->i_pages, ".xsr.pages"},        {img->i_strtab, ".shstrtab"},
			   {img->i_integrity, ".xsr.integrity"}};
		char miss[128] = "";
		for (size_t k = 0; k < sizeof(req) / sizeof(req[0]); k++)
			if (req[k].i < 0)
				snprintf(miss + strlen(miss), sizeof(miss) - strlen(miss), "%s%s", miss[0] ? ", " : "", req[k].name);
		return ifail(img, XSR_E_FORMAT, "required section(s) missing: %s (no section header of that type)", miss);
	}
	if ((uint32_t)img->i_strtab != shstrndx)
		return ifail(img, XSR_E_FORMAT, "e_shstrndx %zu is not the .shstrtab section", shstrndx);
	/* One VCPU section per vCPU, no more, no fewer. */
	uint8_t *seen = calloc(img->fh.nr_vcpus, 1);
	if (!seen)
		return ifail(img, XSR_E_NOMEM, "out of memory");
	rc = 0;
	for (uint32_t i = 1; i < img->nsecs && rc == 0; i++)
		if (img->secs[i].code == XSR_SEC_VCPU && seen[img->secs[i].info]++)
			rc = ifail(img, XSR_E_FORMAT, "section %s (header %u): a second section for vCPU %u",
				   img->secs[i].name, i, img->secs[i].info);
	for (uint32_t v = 0; v < img->fh.nr_vcpus && rc == 0; v++)
		if (!seen[v])
			rc = ifail(img, XSR_E_FORMAT, "no .xsr.vcpu section for vCPU %u (the image has %u)", v,
				   img->fh.nr_vcpus);
	free(seen);
	return rc;
}

static int load_memmap(struct xsr_image *img)
{
	const struct xsr_section_info *m = &img->secs[img->i_memmap];
	uint64_t total;
	/* check_section bounded the length by the table's max_len */
	img->runs = malloc(m->size + 1);
	if (!img->runs)
		return ifail(img, XSR_E_NOMEM, "out of memory");
	int rc = read_record(img, img->i_memmap, img->runs, m->size);
	if (rc < 0)
		return rc;
	struct xsr_sec_check_ctx c = check_ctx(img, img->i_memmap);
	if ((rc = check_body(img, img->i_memmap, img->runs, &c)) < 0)
		return rc;
	img->nruns = (uint32_t)(m->size / sizeof(struct xsr_memrun));
	if (!(img->slot_base = malloc((img->nruns + 1) * sizeof(uint64_t))))
		return ifail(img, XSR_E_NOMEM, "out of memory");
	total = 0;
	for (uint32_t i = 0; i < img->nruns; i++) {
		img->slot_base[i] = total;
		total += img->runs[i].count;
	}
	const struct xsr_section_info *p = &img->secs[img->i_pages], *x = &img->secs[img->i_index];
	if (p->size / XSR_PAGE_SIZE != total || p->size % XSR_PAGE_SIZE)
		return ifail(img, XSR_E_FORMAT, "section %s: %llu octets for %llu pages", p->name,
			     (unsigned long long)p->size, (unsigned long long)total);
	if (x->size / sizeof(struct xsr_index_entry) != total || x->size % sizeof(struct xsr_index_entry) ||
	    x->entsize != sizeof(struct xsr_index_entry))
		return ifail(img, XSR_E_FORMAT, "section %s: %llu octets for %llu pages", x->name,
			     (unsigned long long)x->size, (unsigned long long)total);
	img->pages_off = p->offset;
	img->index_off = x->offset;
	img->index = (const uint8_t *)img->file + x->offset; /* check_section: inside the file */
	return 0;
}

/*
 * XSR_FF_XEN_MACHINE_PADDR: the PT_LOADs must be exactly those the writer
 * makes from the memory map and the p2m tree (which is checked to be the tree
 * they make): p_vaddr guest-physical, p_paddr the machine address of the
 * tree's leaf, p_offset the slot; then the tree's own PT_LOAD.
 */
static int xen_phdrs(struct xsr_image *img, uint64_t note_fll)
{
	struct xsr_section_info t;
	struct xsr_xen_layout l;
	const char *why;
	void *body;
	uint64_t len;
	int i = xsr_image_find(img, XSR_SEC_XEN_P2M_TREE, UINT32_MAX, &t);
	if (i < 0)
		return ifail(img, XSR_E_FORMAT, "a Xen machine-address image (file header flag 0x%x) without a %s section",
			     XSR_FF_XEN_MACHINE_PADDR, ".xsr.xen-p2m-tree");
	int rc = xsr_image_read_section(img, (uint32_t)i, &body, &len);
	if (rc < 0)
		return rc;
	struct xsr_sec_check_ctx c = check_ctx(img, i);
	if ((rc = check_body(img, i, body, &c)) < 0) {
		free(body);
		return rc;
	}
	rc = xsr_xen_layout_from_tree(img->runs, img->nruns, body, len, &l, &why);
	free(body);
	if (rc == XSR_E_NOMEM)
		return ifail(img, rc, "out of memory");
	if (rc < 0)
		return ifail(img, rc, "section %s at 0x%llx: %s", t.name, (unsigned long long)t.offset, why);
	rc = 0;
	if (note_fll != l.hdr.fll_mfn)
		rc = ifail(img, XSR_E_FORMAT, "section .note: the Xen CRASH_INFO note names p2m frame 0x%llx, the tree is at 0x%llx",
			   (unsigned long long)note_fll, (unsigned long long)l.hdr.fll_mfn);
	else if (img->phnum != l.nr_loads + 2)
		rc = ifail(img, XSR_E_FORMAT, "%u program headers; the memory map and the p2m tree make %u", img->phnum,
			   l.nr_loads + 2);
	for (uint32_t k = 1; k < img->phnum && rc == 0; k++) {
		Elf64_Phdr want = {.p_type = PT_LOAD, .p_flags = PF_R | PF_W | PF_X};
		if (k <= l.nr_loads) {
			const struct xsr_xen_load *x = &l.loads[k - 1];
			want.p_offset = img->pages_off +
					(uint64_t)xsr_memmap_slot(img->runs, img->slot_base, img->nruns, x->pfn) * XSR_PAGE_SIZE;
			want.p_vaddr = x->pfn << XSR_PAGE_SHIFT;
			want.p_paddr = x->mfn << XSR_PAGE_SHIFT;
			want.p_filesz = want.p_memsz = x->count << XSR_PAGE_SHIFT;
		} else {
			want.p_offset = t.offset + sizeof(struct xsr_xen_p2m_tree);
			want.p_vaddr = want.p_paddr = l.hdr.fll_mfn << XSR_PAGE_SHIFT;
			want.p_filesz = want.p_memsz = l.npages * XSR_PAGE_SIZE;
		}
		if (memcmp(&want, &img->ph[k], sizeof(want)))
			rc = ifail(img, XSR_E_FORMAT,
				   "program header %u at 0x%llx: not the PT_LOAD the memory map and the p2m tree make "
				   "(want vaddr 0x%llx paddr 0x%llx offset 0x%llx size 0x%llx, align 0)",
				   k, (unsigned long long)(img->eh.e_phoff + k * sizeof(Elf64_Phdr)),
				   (unsigned long long)want.p_vaddr, (unsigned long long)want.p_paddr,
				   (unsigned long long)want.p_offset, (unsigned long long)want.p_filesz);
	}
	xsr_xen_layout_free(&l);
	return rc;
}

static int load_phdrs(struct xsr_image *img)
{
	int rc = img_pread(img, img->ph, img->phnum * sizeof(Elf64_Phdr), img->eh.e_phoff);
	if (rc < 0)
		return ifail(img, XSR_E_IO, "reading program headers: %s", strerror(-rc));
	const struct xsr_section_info *n = &img->secs[img->i_notes];
	const Elf64_Phdr *p0 = &img->ph[0];
	if (p0->p_type != PT_NOTE || p0->p_offset != n->offset || p0->p_filesz != n->size)
		return ifail(img, XSR_E_FORMAT, "program header 0 at 0x%llx: not the PT_NOTE over section .note",
			     (unsigned long long)img->eh.e_phoff);
	uint8_t *nb = malloc(n->size + 1);
	bool xen = img->fh.flags & XSR_FF_XEN_MACHINE_PADDR;
	uint64_t fll = 0;
	if (!nb)
		return ifail(img, XSR_E_NOMEM, "out of memory");
	struct xsr_sec_check_ctx c = check_ctx(img, img->i_notes);
	c.xen_fll = &fll;
	if ((rc = read_record(img, img->i_notes, nb, n->size)) == 0)
		rc = check_body(img, img->i_notes, nb, &c);
	free(nb);
	if (rc < 0)
		return rc;
	if (xen)
		return img->open_flags & XSR_OPEN_NO_XEN_LAYOUT ? 0 : xen_phdrs(img, fll);
	bool paging = img->fh.flags & XSR_FF_PAGING_VIEW;
	if (!paging && img->phnum != img->nruns + 1)
		return ifail(img, XSR_E_FORMAT, "%u program headers for %u memory runs", img->phnum, img->nruns);
	for (uint32_t i = 1; i < img->phnum; i++) {
		const Elf64_Phdr *q = &img->ph[i];
		uint64_t at = img->eh.e_phoff + i * sizeof(Elf64_Phdr);
		if (q->p_type != PT_LOAD || q->p_filesz != q->p_memsz || q->p_paddr % XSR_PAGE_SIZE || q->p_filesz % XSR_PAGE_SIZE)
			return ifail(img, XSR_E_FORMAT, "program header %u at 0x%llx: not a page-aligned PT_LOAD", i,
				     (unsigned long long)at);
		int64_t slot = xsr_memmap_slot(img->runs, img->slot_base, img->nruns, q->p_paddr >> XSR_PAGE_SHIFT);
		uint64_t npg = q->p_filesz >> XSR_PAGE_SHIFT;
		int64_t last = npg ? xsr_memmap_slot(img->runs, img->slot_base, img->nruns, (q->p_paddr >> XSR_PAGE_SHIFT) + npg - 1) : -1;
		if (slot < 0 || last != slot + (int64_t)npg - 1 ||
		    q->p_offset != img->pages_off + (uint64_t)slot * XSR_PAGE_SIZE)
			return ifail(img, XSR_E_FORMAT,
				     "program header %u at 0x%llx: p_paddr 0x%llx / p_offset 0x%llx do not match the memory map and "
				     ".xsr.pages (header %d) at 0x%llx",
				     i, (unsigned long long)at, (unsigned long long)q->p_paddr, (unsigned long long)q->p_offset,
				     img->i_pages, (unsigned long long)img->pages_off);
		if (!paging && (q->p_vaddr != q->p_paddr || q->p_paddr != img->runs[i - 1].pfn << XSR_PAGE_SHIFT ||
				npg != img->runs[i - 1].count))
			return ifail(img, XSR_E_FORMAT, "program header %u at 0x%llx: does not cover memory run %u",
				     i, (unsigned long long)at, i - 1);
	}
	return 0;
}

static int check_structure_first(struct xsr_image *img);

static int image_open(struct xsr_image **out, const struct xsr_source *src, const char *fn, unsigned flags,
		      char *err, size_t errlen, struct xsr_finding *where)
{
	uint8_t hdr[XSR_HEADER_END];
	int rc;
	*out = NULL;
	const unsigned known = XSR_OPEN_NO_XEN_LAYOUT | XSR_OPEN_NO_CHECK;
	if (flags & ~known) {
		xsr_fmt(err, errlen, "%s: unknown flags 0x%x", fn, flags & ~known);
		return XSR_E_INVAL;
	}
	struct xsr_image *img = calloc(1, sizeof(*img));
	if (!img)
		return XSR_E_NOMEM;
	img->src = *src;
	img->open_flags = flags;
	xsr_finding_clear(&img->where);
	elf_version(EV_CURRENT);
	if ((rc = img->src.ops->size(&img->src, &img->size)) < 0) {
		if (rc == -ESPIPE)
			rc = ifail(img, XSR_E_STATE, "not a regular file: random access needs a seekable image");
		else
			rc = ifail(img, XSR_E_IO, "the size of the file: %s", strerror(-rc));
		goto bad;
	}
	if (img->size < XSR_HEADER_END) {
		rc = ifail(img, XSR_E_TRUNCATED, "file of %llu octets is shorter than the 128-octet header",
			   (unsigned long long)img->size);
		goto bad;
	}
	if ((rc = img_pread(img, hdr, sizeof(hdr), 0)) < 0) {
		rc = ifail(img, XSR_E_IO, "reading the header: %s", strerror(-rc));
		goto bad;
	}
	if ((rc = xsr_check_headers(hdr, XSR_LAYOUT_SEEKABLE, img->err, sizeof(img->err))) < 0) {
		img->where.offset = xsr_msg_offset(img->err);
		goto bad;
	}
	memcpy(&img->eh, hdr, sizeof(img->eh));
	memcpy(&img->fh, hdr + XSR_EHDR_SIZE, sizeof(img->fh));
	if ((uint64_t)img->eh.e_shoff + (uint64_t)img->eh.e_shnum * sizeof(Elf64_Shdr) != img->size &&
	    img->eh.e_shoff < img->size) {
		/* The section header table ends the file; anything else means truncation or garbage. */
		rc = ifail(img, img->eh.e_shoff + (uint64_t)img->eh.e_shnum * 64 > img->size ? XSR_E_TRUNCATED : XSR_E_FORMAT,
			   "file is %llu octets but its section header table ends at 0x%llx",
			   (unsigned long long)img->size,
			   (unsigned long long)(img->eh.e_shoff + (uint64_t)img->eh.e_shnum * 64));
		goto bad;
	}
	if (img->eh.e_shoff >= img->size) {
		rc = ifail(img, XSR_E_TRUNCATED, "file is %llu octets, its section header table starts at 0x%llx: truncated",
			   (unsigned long long)img->size, (unsigned long long)img->eh.e_shoff);
		goto bad;
	}
	if ((rc = load_tables(img)) < 0 || (rc = load_memmap(img)) < 0 || (rc = load_phdrs(img)) < 0)
		goto bad;
	struct xsr_producer pr;
	if ((rc = read_record(img, img->i_producer, &pr, sizeof(pr))) < 0)
		goto bad;
	if (!(flags & XSR_OPEN_NO_CHECK) && (rc = check_structure_first(img)) < 0)
		goto bad;
	*out = img;
	return 0;
bad:
	xsr_fmt(err, errlen, "%s", img->err);
	if (where) {
		*where = img->where;
		where->code = rc;
		where->message = err;
	}
	xsr_image_close(img);
	return rc;
}

int xsr_image_open(struct xsr_image **out, int fd, char *err, size_t errlen)
{
	return xsr_image_open_flags(out, fd, 0, err, errlen);
}

int xsr_image_open_flags(struct xsr_image **out, int fd, unsigned flags, char *err, size_t errlen)
{
	struct xsr_source src;
	xsr_source_fd(&src, fd);
	return image_open(out, &src, "xsr_image_open_flags", flags, err, errlen, NULL);
}

int xsr_image_open_where(struct xsr_image **out, int fd, unsigned flags, char *err, size_t errlen,
			 struct xsr_finding *where)
{
	struct xsr_source src;
	xsr_source_fd(&src, fd);
	if (where)
		xsr_finding_clear(where);
	return image_open(out, &src, "xsr_image_open_where", flags, err, errlen, where);
}

int xsr_image_open_source(struct xsr_image **out, struct xsr_source *src, unsigned flags, char *err, size_t errlen)
{
	*out = NULL;
	if (!src) {
		xsr_fmt(err, errlen, "xsr_image_open_source: no source");
		return XSR_E_INVAL;
	}
	return image_open(out, src, "xsr_image_open_source", flags, err, errlen, NULL);
}

int xsr_image_open_mem(struct xsr_image **out, const void *buf, size_t len, unsigned flags, char *err,
		       size_t errlen)
{
	struct xsr_source src;
	*out = NULL;
	if (!buf && len) {
		xsr_fmt(err, errlen, "xsr_image_open_mem: no buffer for %zu octets", len);
		return XSR_E_INVAL;
	}
	xsr_source_mem(&src, buf, len);
	return image_open(out, &src, "xsr_image_open_mem", flags, err, errlen, NULL);
}

void xsr_image_close(struct xsr_image *img)
{
	if (!img)
		return;
	if (img->elf)
		elf_end(img->elf);
	if (img->file && img->file_anon)
		munmap(img->file, (size_t)img->size);
	else if (img->file)
		img->src.ops->unmap(&img->src, img->file, 0, (size_t)img->size);
	free(img->secs);
	free(img->shdrs);
	free(img->ph);
	free(img->runs);
	free(img->slot_base);
	free(img);
}

const struct xsr_file_header *xsr_image_header(const struct xsr_image *img)
{
	return &img->fh;
}

uint32_t xsr_image_nsections(const struct xsr_image *img)
{
	return img->nsecs;
}

int xsr_image_section(const struct xsr_image *img, uint32_t i, struct xsr_section_info *out)
{
	if (i >= img->nsecs)
		return XSR_E_RANGE;
	*out = img->secs[i];
	return 0;
}

int xsr_image_find(const struct xsr_image *img, uint32_t code, uint32_t info, struct xsr_section_info *out)
{
	for (uint32_t i = 1; i < img->nsecs; i++)
		if (img->secs[i].code == code && (info == UINT32_MAX || img->secs[i].info == info)) {
			if (out)
				*out = img->secs[i];
			return (int)i;
		}
	return XSR_E_RANGE;
}

int xsr_image_read_section(struct xsr_image *img, uint32_t i, void **body, uint64_t *len)
{
	*body = NULL;
	if (i == 0 || i >= img->nsecs || !is_record(img, (int)i))
		return ifail(img, XSR_E_RANGE, "section %u is not a record section", i);
	uint64_t n = img->secs[i].size;
	if (n > SIZE_MAX - 1)
		return ifail(img, XSR_E_LIMIT, "section %s too large", sname(img, (int)i));
	void *b = malloc(n + 1);
	if (!b)
		return ifail(img, XSR_E_NOMEM, "out of memory for section %s (%llu octets)", sname(img, (int)i),
			     (unsigned long long)n);
	int rc = read_record(img, (int)i, b, n);
	if (rc < 0) {
		free(b);
		return rc;
	}
	((char *)b)[n] = 0; /* text sections can be used as C strings */
	*body = b;
	*len = n;
	return 0;
}

uint32_t xsr_image_nruns(const struct xsr_image *img)
{
	return img->nruns;
}

const struct xsr_memrun *xsr_image_runs(const struct xsr_image *img)
{
	return img->runs;
}

uint64_t xsr_image_run_offset(const struct xsr_image *img, uint32_t run)
{
	return run < img->nruns ? img->pages_off + img->slot_base[run] * XSR_PAGE_SIZE : 0;
}

/* Where page @pfn's index entry (@what 0) or data (1) lies, for a message. */
static int at_page(struct xsr_image *img, int rc, uint64_t pfn, int data)
{
	int64_t slot = xsr_memmap_slot(img->runs, img->slot_base, img->nruns, pfn);
	uint64_t off = slot < 0 ? XSR_NO_OFFSET
				: data ? img->pages_off + (uint64_t)slot * XSR_PAGE_SIZE
				       : img->index_off + (uint64_t)slot * sizeof(struct xsr_index_entry);
	return at(img, rc, data ? ".xsr.pages" : ".xsr.index", off, pfn);
}

static int check_entry(struct xsr_image *img, uint64_t pfn, const struct xsr_index_entry *e)
{
	if (e->reserved || (e->flags & ~XSR_IDX_KNOWN_FLAGS) || (!(e->flags & XSR_IDX_DATA) && e->hash))
		return at_page(img, ifail(img, XSR_E_FORMAT, "page index entry of pfn 0x%llx is malformed (flags 0x%x)",
					  (unsigned long long)pfn, e->flags), pfn, 0);
	return 0;
}

/* Verify @buf against its index entry. */
static int check_page(struct xsr_image *img, uint64_t pfn, const struct xsr_index_entry *e, const void *buf)
{
	int rc = check_entry(img, pfn, e);
	if (rc < 0)
		return rc;
	if (e->flags & XSR_IDX_DATA) {
		if (xsr_hash(buf, XSR_PAGE_SIZE) != e->hash)
			return at_page(img, ifail(img, XSR_E_CHECKSUM, "page data of pfn 0x%llx: checksum mismatch",
						  (unsigned long long)pfn), pfn, 1);
	} else if (!xsr_page_is_zero(buf)) {
		return at_page(img, ifail(img, XSR_E_CHECKSUM, "page data of pfn 0x%llx: indexed as zero but holds data",
					  (unsigned long long)pfn), pfn, 1);
	}
	return 0;
}

static void index_entry(const struct xsr_image *img, int64_t slot, struct xsr_index_entry *e)
{
	memcpy(e, img->index + (uint64_t)slot * sizeof(*e), sizeof(*e));
}

int xsr_image_page_entry(struct xsr_image *img, uint64_t pfn, struct xsr_index_entry *e)
{
	int64_t slot = xsr_memmap_slot(img->runs, img->slot_base, img->nruns, pfn);
	if (slot < 0)
		return ifail(img, XSR_E_RANGE, "pfn 0x%llx is not populated in this image", (unsigned long long)pfn);
	index_entry(img, slot, e);
	return check_entry(img, pfn, e);
}

int xsr_image_read_page(struct xsr_image *img, uint64_t pfn, void *buf, uint32_t *flags)
{
	int64_t slot = xsr_memmap_slot(img->runs, img->slot_base, img->nruns, pfn);
	if (slot < 0)
		return ifail(img, XSR_E_RANGE, "pfn 0x%llx is not populated in this image", (unsigned long long)pfn);
	struct xsr_index_entry e;
	index_entry(img, slot, &e);
	int rc = img_pread(img, buf, XSR_PAGE_SIZE, img->pages_off + (uint64_t)slot * XSR_PAGE_SIZE);
	if (rc < 0)
		return at_page(img, ifail(img, XSR_E_IO, "reading pfn 0x%llx: %s", (unsigned long long)pfn, strerror(-rc)), pfn, 1);
	if (flags)
		*flags = e.flags;
	return check_page(img, pfn, &e, buf);
}

int xsr_image_run_index(struct xsr_image *img, uint32_t run, uint64_t first, uint64_t count,
			struct xsr_index_entry *out)
{
	if (run >= img->nruns || first > img->runs[run].count || count > img->runs[run].count - first)
		return ifail(img, XSR_E_RANGE, "run %u slots %llu+%llu out of range", run, (unsigned long long)first,
			     (unsigned long long)count);
	/*
	 * Bulk readers (conversion, restore, info) go through pread rather than
	 * the index mapping, so that walking a 16 GiB guest's 64 MiB index does
	 * not leave it all mapped into the process.
	 */
	int rc = img_pread(img, out, count * sizeof(*out),
			   img->index_off + (img->slot_base[run] + first) * sizeof(*out));
	if (rc < 0)
		return at(img, ifail(img, XSR_E_IO, "reading the page index of run %u: %s", run, strerror(-rc)), ".xsr.index",
			  img->index_off + (img->slot_base[run] + first) * sizeof(*out), img->runs[run].pfn + first);
	return 0;
}

int xsr_image_check_index(struct xsr_image *img)
{
	return hash_record(img, img->i_index, NULL);
}

/* Zero slots in a run of at least this many that lie in a hole are not read. */
#define HOLE_MIN_PAGES 8

int xsr_image_read_pages(struct xsr_image *img, uint32_t run, uint64_t first, uint64_t count, void *buf,
			 struct xsr_index_entry *ent)
{
	int rc = xsr_image_run_index(img, run, first, count, ent);
	if (rc < 0)
		return rc;
	uint64_t slot = img->slot_base[run] + first, zero = 0;
	while (zero < count && !(ent[zero].flags & XSR_IDX_DATA))
		zero++;
	/* Zero slots in a hole (as verify_pages says): zeros, without reading them. */
	if (zero == count && count >= HOLE_MIN_PAGES &&
	    xsr_source_hole(&img->src, img->pages_off + slot * XSR_PAGE_SIZE, count * XSR_PAGE_SIZE)) {
		memset(buf, 0, count * XSR_PAGE_SIZE);
		for (uint64_t k = 0; k < count; k++)
			if ((rc = check_entry(img, img->runs[run].pfn + first + k, &ent[k])) < 0)
				return rc;
		return 0;
	}
	rc = img_pread(img, buf, count * XSR_PAGE_SIZE, img->pages_off + slot * XSR_PAGE_SIZE);
	if (rc < 0)
		return ifail(img, XSR_E_IO, "reading pfn 0x%llx+%llu: %s", (unsigned long long)(img->runs[run].pfn + first),
			     (unsigned long long)count, strerror(-rc));
	for (uint64_t k = 0; k < count; k++)
		if ((rc = check_page(img, img->runs[run].pfn + first + k, &ent[k], (uint8_t *)buf + k * XSR_PAGE_SIZE)) < 0)
			return rc;
	return 0;
}

bool xsr_image_reads_fd(const struct xsr_image *img)
{
	return xsr_source_is_fd(&img->src);
}

const struct xsr_record_header *xsr_image_rh(const struct xsr_image *img, uint32_t i)
{
	return i < img->nsecs ? &img->shdrs[i] : NULL;
}

bool xsr_image_index_checked(const struct xsr_image *img)
{
	return !(img->open_flags & XSR_OPEN_NO_CHECK);
}

int xsr_image_refused(struct xsr_image *img, int rc, const char *what)
{
	return ifail(img, rc, "%s: refused by the consumer", what);
}

int xsr_image_fill(struct xsr_image *img, uint32_t run, uint64_t first, uint64_t count, void *buf,
		   const struct xsr_index_entry *ent)
{
	uint64_t pfn = img->runs[run].pfn + first;
	int rc = img_pread(img, buf, count * XSR_PAGE_SIZE, img->pages_off + (img->slot_base[run] + first) * XSR_PAGE_SIZE);
	if (rc < 0)
		return at_page(img, ifail(img, XSR_E_IO, "reading pages at pfn 0x%llx: %s", (unsigned long long)pfn,
					  strerror(-rc)), pfn, 1);
	for (uint64_t k = 0; k < count; k++)
		if ((rc = check_page(img, pfn + k, &ent[k], (const uint8_t *)buf + k * XSR_PAGE_SIZE)) < 0)
			return rc;
	return 0;
}

/*
 * Slots the index marks zero are not handed to anyone, but they must read
 * as zero (verify reports them otherwise).  The writer leaves holes there,
 * which cost one hole query; anything else is read and looked at, 64 KiB
 * at a time.
 */
int xsr_image_zero_slots(struct xsr_image *img, uint32_t run, uint64_t first, uint64_t count,
			 const struct xsr_index_entry *ent)
{
	const uint64_t pfn = img->runs[run].pfn + first;
	const uint64_t start = img->pages_off + (img->slot_base[run] + first) * XSR_PAGE_SIZE;
	const uint64_t end = start + count * XSR_PAGE_SIZE;
	enum { CHUNK = 64 * 1024 };
	uint8_t *buf = NULL;
	int rc = 0;
	for (uint64_t k = 0; k < count; k++)
		if ((rc = check_entry(img, pfn + k, &ent[k])) < 0)
			return rc;
	for (uint64_t off = start; off < end && rc == 0;) {
		uint64_t n = end - off < CHUNK ? end - off : CHUNK;
		if (xsr_source_hole(&img->src, off, end - off))
			break;
		const uint8_t *p = img->src.ops->view ? img->src.ops->view(&img->src, off, (size_t)n) : NULL;
		if (!p) {
			if (!buf && !(buf = malloc(CHUNK)))
				return ifail(img, XSR_E_NOMEM, "out of memory");
			int e = img_pread(img, buf, (size_t)n, off);
			if (e < 0) {
				uint64_t at_pfn = pfn + (off - start) / XSR_PAGE_SIZE;
				rc = at_page(img, ifail(img, XSR_E_IO, "reading the zero page slots at pfn 0x%llx: %s",
							(unsigned long long)at_pfn, strerror(-e)), at_pfn, 1);
				break;
			}
			p = buf;
		}
		if (!xsr_is_zero(p, (size_t)n)) {
			uint64_t q = 0;
			while (!p[q])
				q++;
			uint64_t at_pfn = pfn + (off + q - start) / XSR_PAGE_SIZE;
			rc = at_page(img, ifail(img, XSR_E_CHECKSUM,
						"page data of pfn 0x%llx: indexed as zero but holds data (octet at 0x%llx)",
						(unsigned long long)at_pfn, (unsigned long long)(off + q)), at_pfn, 1);
			img->where.offset = off + q;
		}
		off += n;
	}
	free(buf);
	return rc;
}

int xsr_image_map_run(struct xsr_image *img, uint32_t run, void **addr, uint64_t *len)
{
	if (run >= img->nruns)
		return ifail(img, XSR_E_RANGE, "run %u of %u", run, img->nruns);
	uint64_t l = img->runs[run].count * XSR_PAGE_SIZE;
	void *p;
	/* load_memmap: the runs' slots tile the page data, which lies inside the file. */
	int rc = img->src.ops->map(&img->src, xsr_image_run_offset(img, run), (size_t)l, true, &p);
	if (rc < 0)
		return ifail(img, XSR_E_IO, "mapping run %u (%llu octets): %s", run, (unsigned long long)l, strerror(-rc));
	*addr = p;
	*len = l;
	return 0;
}

int xsr_image_vcpu(struct xsr_image *img, uint32_t vcpu, struct xsr_vcpu_state *st)
{
	int i = xsr_image_find(img, XSR_SEC_VCPU, vcpu, NULL);
	void *body;
	uint64_t len;
	if (i < 0)
		return ifail(img, XSR_E_RANGE, "no vCPU section for vCPU %u", vcpu);
	int rc = xsr_image_read_section(img, (uint32_t)i, &body, &len);
	if (rc < 0)
		return rc;
	struct xsr_sec_check_ctx c = check_ctx(img, i);
	c.vcpu = st; /* the validator decodes into the caller's state */
	rc = check_body(img, i, body, &c);
	free(body);
	return rc;
}

/* ---- full verification ---- */

struct region {
	uint64_t start, end;
	const char *what;
	bool is_section; /* @what is a section's name */
};

static int cmp_region(const void *a, const void *b)
{
	const struct region *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

struct vctx {
	struct xsr_image *img;
	xsr_report_fn report;
	xsr_finding_fn finding;
	void *ctx;
	unsigned damage;
	int first_rc;              /* code of the first problem */
	char first[XSR_ERRLEN];    /* and its message */
	struct xsr_finding first_at;
};

/* One problem, where it lies (@section NULL: in no section). */
static void report_at(struct vctx *v, int rc, const char *msg, const char *section, uint64_t off, uint64_t pfn)
{
	struct xsr_finding f;
	xsr_finding_set(&f, section, off, pfn);
	f.code = rc;
	f.message = msg;
	if (!v->damage++) {
		v->first_rc = rc;
		snprintf(v->first, sizeof(v->first), "%s", msg);
		v->first_at = f;
		v->first_at.message = NULL; /* @msg is the caller's; img->err gets a copy */
	}
	if (v->damage <= 50) {
		if (v->report)
			v->report(v->ctx, msg);
		if (v->finding)
			v->finding(v->ctx, &f);
	} else if (v->report && v->damage == 51)
		v->report(v->ctx, "(further problems not listed)");
}

static void report_rc(struct vctx *v, int rc, const char *msg)
{
	report_at(v, rc, msg, NULL, XSR_NO_OFFSET, XSR_NO_PFN);
}

/* The problem a failed call left in img->err, where that call placed it. */
static void report_img(struct vctx *v, int rc, const char *prefix)
{
	char m[XSR_ERRLEN + 64];
	const struct xsr_finding *w = &v->img->where;
	snprintf(m, sizeof(m), "%s%s", prefix, v->img->err);
	report_at(v, rc, m, w->section, w->offset, w->pfn);
}

/* Check pages [k0, k1) of a chunk whose first slot is @slot: read them, or only their entries in a hole. */
static void verify_span(struct vctx *v, uint32_t r, uint64_t i, uint64_t slot, const struct xsr_index_entry *ent,
			uint64_t k0, uint64_t k1, bool hole, uint8_t **buf, size_t cap)
{
	struct xsr_image *img = v->img;
	char m[XSR_ERRLEN + 64];
	const uint8_t *data = NULL;
	int rc;
	if (k0 == k1)
		return;
	if (!hole) {
		data = img_bytes(img, buf, cap, (k1 - k0) * XSR_PAGE_SIZE, img->pages_off + (slot + k0) * XSR_PAGE_SIZE, &rc);
		if (!data) {
			snprintf(m, sizeof(m), "section .xsr.pages: reading pfn 0x%llx: %s",
				 (unsigned long long)(img->runs[r].pfn + i + k0), strerror(-rc));
			report_at(v, XSR_E_CHECKSUM, m, ".xsr.pages", img->pages_off + (slot + k0) * XSR_PAGE_SIZE,
				  img->runs[r].pfn + i + k0);
			return;
		}
	}
	for (uint64_t k = k0; k < k1; k++) {
		uint64_t pfn = img->runs[r].pfn + i + k;
		rc = hole ? check_entry(img, pfn, &ent[k]) : check_page(img, pfn, &ent[k], data + (k - k0) * XSR_PAGE_SIZE);
		if (rc < 0)
			report_img(v, XSR_E_CHECKSUM, "section .xsr.pages: ");
	}
}

static void verify_pages(struct vctx *v)
{
	struct xsr_image *img = v->img;
	uint32_t chunk = 1;
	/* At most 256 pages per pread, but no more than the longest run needs. */
	for (uint32_t r = 0; r < img->nruns; r++)
		if (img->runs[r].count > chunk)
			chunk = img->runs[r].count < 256 ? (uint32_t)img->runs[r].count : 256;
	uint8_t *buf = NULL; /* for sources that do not hold the file in memory */
	for (uint32_t r = 0; r < img->nruns; r++) {
		for (uint64_t i = 0; i < img->runs[r].count; i += chunk) {
			uint64_t n = img->runs[r].count - i < chunk ? img->runs[r].count - i : chunk;
			uint64_t slot = img->slot_base[r] + i;
			struct xsr_index_entry ent[256];
			int rc = xsr_image_run_index(img, r, i, n, ent);
			if (rc < 0) {
				report_img(v, XSR_E_CHECKSUM, "section .xsr.pages: ");
				continue;
			}
			/*
			 * Zero slots that lie in a hole of a sparse file read as zeros:
			 * their entries are checked, their octets not read.  A stream
			 * converted to a seekable image is such a file, as large as the
			 * guest the stream claims whatever it held, and reading it all
			 * made verify's work follow the claim (a fuzz finding).  The
			 * other slots are read as before, in one pread per chunk.
			 */
			uint64_t from = 0;
			for (uint64_t k = 0; k < n;) {
				uint64_t e = k;
				while (e < n && !(ent[e].flags & XSR_IDX_DATA))
					e++;
				if (e - k >= HOLE_MIN_PAGES &&
				    xsr_source_hole(&img->src, img->pages_off + (slot + k) * XSR_PAGE_SIZE, (e - k) * XSR_PAGE_SIZE)) {
					verify_span(v, r, i, slot, ent, from, k, false, &buf, (size_t)chunk * XSR_PAGE_SIZE);
					verify_span(v, r, i, slot, ent, k, e, true, &buf, 0);
					from = e;
				}
				k = e + 1;
			}
			verify_span(v, r, i, slot, ent, from, n, false, &buf, (size_t)chunk * XSR_PAGE_SIZE);
		}
	}
	free(buf);
}

/*
 * Every record body with a rule in the table's validator column: each VCPU
 * section decodes and names the vCPU it is filed under (as xsr_image_vcpu
 * requires), a p2m tree agrees with its header.  The memory map and the
 * notes were checked at open, and so was the tree of a Xen image opened
 * with its layout (xen_phdrs); the integrity record is check_structure's.
 */
static void check_bodies(struct vctx *v)
{
	struct xsr_image *img = v->img;
	struct xsr_vcpu_state *st = NULL; /* one decoding buffer for every VCPU section */
	bool xen_checked = (img->fh.flags & XSR_FF_XEN_MACHINE_PADDR) && !(img->open_flags & XSR_OPEN_NO_XEN_LAYOUT);
	for (uint32_t i = 1; i < img->nsecs; i++) {
		const struct xsr_section_info *s = &img->secs[i];
		const struct xsr_sec_desc *d = xsr_sec_lookup(s->code);
		if (!d || !d->check || !is_record(img, (int)i) || (int)i == img->i_memmap || (int)i == img->i_notes ||
		    (int)i == img->i_integrity || (s->code == XSR_SEC_XEN_P2M_TREE && xen_checked))
			continue;
		if (s->code == XSR_SEC_VCPU && !st && !(st = malloc(sizeof(*st)))) {
			report_rc(v, XSR_E_NOMEM, "out of memory");
			return;
		}
		void *body;
		uint64_t len;
		int rc = xsr_image_read_section(img, i, &body, &len);
		if (rc == 0) {
			struct xsr_sec_check_ctx c = check_ctx(img, (int)i);
			c.vcpu = st;
			rc = check_body(img, (int)i, body, &c);
			free(body);
		}
		/* A damaged record is reported by the checksum pass already. */
		if (rc < 0 && rc != XSR_E_CHECKSUM)
			report_img(v, rc, "");
	}
	free(st);
}

/*
 * Everything but page data: every record (header copy, padding, trailer),
 * the integrity section, the vCPU sections, zero padding between regions
 * and that the regions tile the file.
 */
static int check_structure(struct vctx *vp)
{
	struct xsr_image *img = vp->img;
	char m[XSR_ERRLEN + 64];
	uint64_t chain = 0, nrec = 0;
	struct region *rg = calloc(img->nsecs + 4, sizeof(*rg));
	uint32_t nrg = 0;
	if (!rg)
		return ifail(img, XSR_E_NOMEM, "out of memory");
	rg[nrg++] = (struct region){0, XSR_HEADER_END, "file header", false};
	rg[nrg++] = (struct region){img->eh.e_phoff, img->eh.e_phoff + img->phnum * sizeof(Elf64_Phdr), "program headers", false};
	rg[nrg++] = (struct region){img->eh.e_shoff, img->eh.e_shoff + img->nsecs * sizeof(Elf64_Shdr), "section headers", false};
	for (uint32_t i = 1; i < img->nsecs; i++) {
		const struct xsr_section_info *s = &img->secs[i];
		if (!is_record(img, (int)i)) {
			rg[nrg++] = (struct region){s->offset, s->offset + s->size, s->name, true};
			continue;
		}
		rg[nrg++] = (struct region){s->offset - sizeof(struct xsr_record_header), s->offset + ALIGN8(s->size) + 8, s->name, true};
		uint64_t trailer = 0;
		/* Damage to the INTEGRITY record is reported once, by read_record() below;
		 * an I/O error here is reported, as that later read may well succeed. */
		int rc = hash_record(img, (int)i, &trailer);
		if (rc < 0 && ((int)i != img->i_integrity || rc == XSR_E_IO || rc == XSR_E_NOMEM))
			report_img(vp, rc, "");
		if ((int)i != img->i_integrity) {
			chain = XXH3_64bits_withSeed(&trailer, 8, chain);
			nrec++;
		}
	}
	struct xsr_integrity in;
	int irc = read_record(img, img->i_integrity, &in, sizeof(in));
	const uint64_t ioff = img->secs[img->i_integrity].offset;
	if (irc < 0) {
		report_img(vp, irc, "");
	} else {
		size_t phl = img->phnum * sizeof(Elf64_Phdr), shl = img->nsecs * sizeof(Elf64_Shdr);
		uint8_t *tbl = NULL; /* for sources that do not hold the file in memory */
		const uint8_t *p;
		int rc;
		struct xsr_sec_check_ctx c = check_ctx(img, img->i_integrity);
		if ((rc = check_body(img, img->i_integrity, &in, &c)) < 0)
			report_img(vp, rc, "");
		if (in.file_size != img->size) {
			snprintf(m, sizeof(m), "section .xsr.integrity: file should be %llu octets, is %llu",
				 (unsigned long long)in.file_size, (unsigned long long)img->size);
			report_at(vp, XSR_E_CHECKSUM, m, ".xsr.integrity", ioff, XSR_NO_PFN);
		}
		/* a table that cannot be read is an I/O error, never a silent pass */
		if (!(p = img_bytes(img, &tbl, phl > shl ? phl : shl, phl, img->eh.e_phoff, &rc))) {
			snprintf(m, sizeof(m), "program header table (offset 0x80): %s", strerror(-rc));
			report_at(vp, rc == -ENOMEM ? XSR_E_NOMEM : XSR_E_IO, m, NULL, img->eh.e_phoff, XSR_NO_PFN);
		} else if (XXH3_64bits(p, phl) != in.phdr_hash)
			report_at(vp, XSR_E_CHECKSUM, "program header table (offset 0x80): checksum mismatch", NULL, img->eh.e_phoff,
				  XSR_NO_PFN);
		if (!(p = img_bytes(img, &tbl, phl > shl ? phl : shl, shl, img->eh.e_shoff, &rc))) {
			snprintf(m, sizeof(m), "section header table at 0x%llx: %s", (unsigned long long)img->eh.e_shoff,
				 strerror(-rc));
			report_at(vp, rc == -ENOMEM ? XSR_E_NOMEM : XSR_E_IO, m, NULL, img->eh.e_shoff, XSR_NO_PFN);
		} else if (XXH3_64bits(p, shl) != in.shdr_hash) {
			snprintf(m, sizeof(m), "section header table at 0x%llx: checksum mismatch", (unsigned long long)img->eh.e_shoff);
			report_at(vp, XSR_E_CHECKSUM, m, NULL, img->eh.e_shoff, XSR_NO_PFN);
		}
		if (in.chain != chain || in.nr_records != nrec)
			report_at(vp, XSR_E_CHECKSUM,
				  "section .xsr.integrity: the chain of record checksums does not match (a record was replaced or reordered)",
				  ".xsr.integrity", ioff, XSR_NO_PFN);
		free(tbl);
	}
	/* Every octet belongs to exactly one region, or is zero padding between regions. */
	qsort(rg, nrg, sizeof(*rg), cmp_region);
	uint64_t pos = 0;
	uint8_t *zb = NULL; /* for sources that do not hold the file in memory */
	for (uint32_t i = 0; i <= nrg; i++) {
		uint64_t next = i < nrg ? rg[i].start : img->size;
		if (next < pos) {
			snprintf(m, sizeof(m), "%s at 0x%llx overlaps the region before it", rg[i].what, (unsigned long long)next);
			report_at(vp, XSR_E_FORMAT, m, rg[i].is_section ? rg[i].what : NULL, next, XSR_NO_PFN);
		} else {
			for (uint64_t o = pos; o < next; o += 1 << 16) {
				size_t n = next - o < (1 << 16) ? (size_t)(next - o) : (1 << 16);
				int rc;
				const uint8_t *p = img_bytes(img, &zb, 1 << 16, n, o, &rc);
				if (!p || !xsr_is_zero(p, n)) {
					uint64_t bad = o;
					if (p)
						snprintf(m, sizeof(m), "padding at 0x%llx..0x%llx is not zero",
							 (unsigned long long)o, (unsigned long long)(o + n));
					else
						snprintf(m, sizeof(m), "padding at 0x%llx..0x%llx: %s", (unsigned long long)o,
							 (unsigned long long)(o + n), strerror(-rc));
					/* the octet that is not zero, for a program to point at */
					while (p && bad < o + n && !p[bad - o])
						bad++;
					report_at(vp, XSR_E_FORMAT, m, NULL, bad, XSR_NO_PFN);
					break;
				}
			}
		}
		if (i < nrg && rg[i].end > pos)
			pos = rg[i].end;
	}
	free(zb);
	free(rg);
	check_bodies(vp);
	return 0;
}

/* At open: the first problem check_structure finds, with its own code and message. */
static int check_structure_first(struct xsr_image *img)
{
	struct vctx v = {.img = img};
	int rc = check_structure(&v);
	if (rc < 0)
		return rc;
	if (v.damage) {
		ifail(img, v.first_rc, "%s", v.first);
		img->where = v.first_at;
		return v.first_rc;
	}
	return 0;
}

static int verify(struct vctx *v, uint64_t *total)
{
	int rc = check_structure(v);
	if (total)
		*total = v->damage;
	if (rc < 0)
		return rc;
	verify_pages(v);
	if (total)
		*total = v->damage;
	if (v->damage)
		return ifail(v->img, XSR_E_CHECKSUM, "%u problem(s) found", v->damage);
	return 0;
}

int xsr_image_verify(struct xsr_image *img, xsr_report_fn rep, void *ctx)
{
	struct vctx v = {.img = img, .report = rep, .ctx = ctx};
	return verify(&v, NULL);
}

int xsr_image_verify_findings(struct xsr_image *img, xsr_finding_fn fn, void *ctx, uint64_t *total)
{
	struct vctx v = {.img = img, .finding = fn, .ctx = ctx};
	return verify(&v, total);
}

/* The XENSTORE section that is the domain's subtree (xsrelf/xenstore.h): libxl's kind may come first. */
int xsr_image_xenstore(struct xsr_image *img, void **body, uint64_t *len)
{
	*body = NULL;
	*len = 0;
	for (uint32_t i = 1; i < xsr_image_nsections(img); i++) {
		struct xsr_section_info si;
		if (xsr_image_section(img, i, &si) < 0 || si.code != XSR_SEC_XENSTORE || si.size < 4)
			continue;
		void *b;
		uint64_t l;
		int rc = xsr_image_read_section(img, i, &b, &l);
		if (rc < 0)
			return rc;
		if (xsr_xs_is_subtree(b, l)) {
			*body = b;
			*len = l;
			return 1;
		}
		free(b);
	}
	return 0;
}
