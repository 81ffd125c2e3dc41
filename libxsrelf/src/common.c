/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Errors, hashing, header checks and small helpers. */
#include <errno.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>

#include <lz4.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>
#include <zstd.h>

#include "internal.h"

int xsr_sniff_layout(const void *hdr, size_t len)
{
	const size_t at = XSR_EHDR_SIZE + offsetof(struct xsr_file_header, layout);
	if (!hdr || len <= at)
		return 0;
	uint8_t l = ((const uint8_t *)hdr)[at];
	return l == XSR_LAYOUT_SEEKABLE || l == XSR_LAYOUT_STREAM ? l : 0;
}

void xsr_finding_clear(struct xsr_finding *f)
{
	f->section[0] = 0;
	f->offset = XSR_NO_OFFSET;
	f->pfn = XSR_NO_PFN;
	f->code = 0;
	f->message = NULL;
}

void xsr_finding_set(struct xsr_finding *f, const char *section, uint64_t offset, uint64_t pfn)
{
	snprintf(f->section, sizeof(f->section), "%s", section ? section : "");
	f->offset = offset;
	f->pfn = pfn;
}

uint64_t xsr_msg_offset(const char *msg)
{
	unsigned long long off;
	char c;
	/* The messages' convention: "offset 0x40: ..." names where the damage is. */
	if (sscanf(msg, "offset 0x%llx%c", &off, &c) == 2 && (c == ':' || c == '-'))
		return off;
	return XSR_NO_OFFSET;
}

const char *xsr_strerror(int err)
{
	switch (err) {
	case XSR_OK: return "success";
	case XSR_E_INVAL: return "invalid argument";
	case XSR_E_IO: return "I/O error";
	case XSR_E_NOMEM: return "out of memory";
	case XSR_E_FORMAT: return "malformed image";
	case XSR_E_CHECKSUM: return "checksum mismatch";
	case XSR_E_TRUNCATED: return "truncated";
	case XSR_E_UNSUPPORTED: return "unsupported";
	case XSR_E_RANGE: return "out of range";
	case XSR_E_LIMIT: return "limit exceeded";
	case XSR_E_BACKEND: return "backend failure";
	case XSR_E_PEER: return "peer failure";
	case XSR_E_STATE: return "invalid state";
	}
	return "unknown error";
}

const char *xsr_version(void)
{
	return XSR_PRODUCER_VERSION_STR;
}

void xsr_fmt(char *dst, size_t len, const char *fmt, ...)
{
	va_list ap;
	if (!dst || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(dst, len, fmt, ap);
	va_end(ap);
}

bool xsr_is_zero(const void *p, size_t len)
{
	const unsigned char *c = p;
	if (len == 0)
		return true;
	if (c[0])
		return false;
	/* Overlapping compare: p[0..len-1) == p[1..len) and p[0] == 0. */
	return memcmp(c, c + 1, len - 1) == 0;
}

bool xsr_page_is_zero(const void *page)
{
	const uint8_t *p = page;
	/*
	 * Early out on the first non-zero 64-octet line: most pages are not
	 * zero.  Loads through memcpy: a page need not be 8-aligned (the Xen
	 * importer hands over pages where they lie in an xl save file).
	 */
	for (size_t i = 0; i < XSR_PAGE_SIZE; i += 64) {
		uint64_t q[8];
		memcpy(q, p + i, sizeof(q));
		if (q[0] | q[1] | q[2] | q[3] | q[4] | q[5] | q[6] | q[7])
			return false;
	}
	return true;
}

void xsr_make_ehdr(Elf64_Ehdr *eh, uint16_t machine, int layout)
{
	memset(eh, 0, sizeof(*eh));
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_ident[EI_OSABI] = ELFOSABI_NONE;
	eh->e_type = ET_CORE;
	eh->e_machine = machine;
	eh->e_version = EV_CURRENT;
	eh->e_ehsize = sizeof(Elf64_Ehdr);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_shentsize = sizeof(Elf64_Shdr);
	if (layout == XSR_LAYOUT_STREAM) {
		eh->e_phoff = XSR_OFF_STREAMED;
		eh->e_shoff = XSR_OFF_STREAMED;
	}
}

uint64_t xsr_header_checksum(const Elf64_Ehdr *eh, const struct xsr_file_header *fh)
{
	struct xsr_file_header tmp = *fh;
	XXH3_state_t st;
	tmp.checksum = 0;
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, eh, sizeof(*eh));
	XXH3_64bits_update(&st, &tmp, sizeof(tmp));
	return XXH3_64bits_digest(&st);
}

int xsr_check_headers(const void *buf, int want_layout, char *why, size_t whylen)
{
	Elf64_Ehdr eh;
	struct xsr_file_header fh;
	memcpy(&eh, buf, sizeof(eh));
	memcpy(&fh, (const char *)buf + XSR_EHDR_SIZE, sizeof(fh));

	if (memcmp(eh.e_ident, ELFMAG, SELFMAG)) {
		xsr_fmt(why, whylen, "offset 0x0: not an ELF file (no \\177ELF magic)");
		return XSR_E_FORMAT;
	}
	if (memcmp(fh.magic, XSR_MAGIC, XSR_MAGIC_LEN)) {
		xsr_fmt(why, whylen, "offset 0x40: no XSRELF file header (not an xsrelf image)");
		return XSR_E_FORMAT;
	}
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_ident[EI_VERSION] != EV_CURRENT || eh.e_version != EV_CURRENT) {
		xsr_fmt(why, whylen, "offset 0x4: ELF class/data/version is not ELF64 little-endian v1");
		return XSR_E_UNSUPPORTED;
	}
	if (xsr_header_checksum(&eh, &fh) != fh.checksum) {
		xsr_fmt(why, whylen, "offset 0x0-0x80: ELF/xsrelf header checksum mismatch");
		return XSR_E_CHECKSUM;
	}
	if (fh.version_major != XSR_VERSION_MAJOR) {
		xsr_fmt(why, whylen, "offset 0x48: format version %u.%u not supported (want %u.x)",
			fh.version_major, fh.version_minor, XSR_VERSION_MAJOR);
		return XSR_E_UNSUPPORTED;
	}
	if (eh.e_type != ET_CORE || eh.e_machine != EM_X86_64) {
		xsr_fmt(why, whylen, "offset 0x10: e_type %u / e_machine %u: only ET_CORE EM_X86_64 is supported",
			eh.e_type, eh.e_machine);
		return XSR_E_UNSUPPORTED;
	}
	if (fh.layout != XSR_LAYOUT_SEEKABLE && fh.layout != XSR_LAYOUT_STREAM) {
		xsr_fmt(why, whylen, "offset 0x4c: unknown layout %u", fh.layout);
		return XSR_E_FORMAT;
	}
	if (fh.kind < XSR_KIND_SAVE || fh.kind > XSR_KIND_MIGRATION || fh.page_shift != XSR_PAGE_SHIFT ||
	    fh.reserved0 || fh.reserved1 || fh.sentinel != XSR_OFF_STREAMED || (fh.flags & ~XSR_FF_KNOWN) ||
	    (fh.flags & XSR_FF_XEN_MACHINE_PADDR && (fh.flags & XSR_FF_PAGING_VIEW || fh.layout != XSR_LAYOUT_SEEKABLE))) {
		xsr_fmt(why, whylen, "offset 0x40: file header has a bad kind, page shift, flag, sentinel or reserved field");
		return XSR_E_FORMAT;
	}
	if (fh.nr_vcpus == 0 || fh.nr_vcpus > XSR_MAX_VCPUS) {
		xsr_fmt(why, whylen, "offset 0x54: nr_vcpus %u outside 1..%u", fh.nr_vcpus, XSR_MAX_VCPUS);
		return XSR_E_LIMIT;
	}
	if (fh.nr_pages > XSR_MAX_PAGES) {
		xsr_fmt(why, whylen, "offset 0x60: nr_pages %llu over the limit %llu",
			(unsigned long long)fh.nr_pages, (unsigned long long)XSR_MAX_PAGES);
		return XSR_E_LIMIT;
	}
	bool streamed = fh.layout == XSR_LAYOUT_STREAM;
	if (streamed != (eh.e_phoff == XSR_OFF_STREAMED) || streamed != (eh.e_shoff == XSR_OFF_STREAMED)) {
		xsr_fmt(why, whylen, "offset 0x20: e_phoff/e_shoff disagree with the %s layout",
			streamed ? "streamed" : "seekable");
		return XSR_E_FORMAT;
	}
	if (want_layout && fh.layout != want_layout) {
		xsr_fmt(why, whylen, "this is a %s image; this operation needs a %s one",
			streamed ? "streamed" : "seekable", streamed ? "seekable" : "streamed");
		return XSR_E_STATE;
	}
	return 0;
}

int xsr_memmap_check(const struct xsr_memrun *runs, uint64_t n, uint64_t *total, char *why,
		     size_t whylen)
{
	uint64_t sum = 0;
	if (n > XSR_MAX_RUNS) {
		xsr_fmt(why, whylen, "%llu memory runs, limit %u", (unsigned long long)n, XSR_MAX_RUNS);
		return XSR_E_LIMIT;
	}
	for (uint64_t i = 0; i < n; i++) {
		const struct xsr_memrun *r = &runs[i];
		if (r->count == 0 || r->pfn > XSR_MAX_PFN || r->count > XSR_MAX_PFN + 1 - r->pfn) {
			xsr_fmt(why, whylen, "memory run %llu (pfn 0x%llx, %llu pages) is empty or past pfn 0x%llx",
				(unsigned long long)i, (unsigned long long)r->pfn,
				(unsigned long long)r->count, (unsigned long long)XSR_MAX_PFN);
			return XSR_E_RANGE;
		}
		if (i && r->pfn < runs[i - 1].pfn + runs[i - 1].count) {
			xsr_fmt(why, whylen, "memory run %llu (pfn 0x%llx) overlaps or is out of order",
				(unsigned long long)i, (unsigned long long)r->pfn);
			return XSR_E_FORMAT;
		}
		if (r->count > XSR_MAX_PAGES - sum) {
			xsr_fmt(why, whylen, "memory runs hold more than %llu pages",
				(unsigned long long)XSR_MAX_PAGES);
			return XSR_E_LIMIT;
		}
		sum += r->count;
	}
	if (total)
		*total = sum;
	return 0;
}

int64_t xsr_memmap_slot(const struct xsr_memrun *runs, const uint64_t *base, uint32_t n,
			uint64_t pfn)
{
	uint32_t lo = 0, hi = n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (pfn < runs[mid].pfn)
			hi = mid;
		else if (pfn - runs[mid].pfn >= runs[mid].count)
			lo = mid + 1;
		else
			return (int64_t)(base[mid] + (pfn - runs[mid].pfn));
	}
	return -1;
}

size_t xsr_compress_bound(int algo, size_t len)
{
	if (algo == XSR_COMPRESS_ZSTD)
		return ZSTD_compressBound(len);
	if (algo == XSR_COMPRESS_LZ4)
		return (size_t)LZ4_compressBound((int)len);
	return len;
}

size_t xsr_compress(int algo, const void *src, size_t len, void *dst, size_t cap)
{
	if (algo == XSR_COMPRESS_ZSTD) {
		size_t r = ZSTD_compress(dst, cap, src, len, 1);
		return ZSTD_isError(r) ? 0 : r;
	}
	if (algo == XSR_COMPRESS_LZ4) {
		int r = LZ4_compress_default(src, dst, (int)len, (int)cap);
		return r > 0 ? (size_t)r : 0;
	}
	return 0;
}

int xsr_decompress(int algo, const void *src, size_t len, void *dst, size_t dlen)
{
	if (algo == XSR_COMPRESS_ZSTD) {
		unsigned long long fs = ZSTD_getFrameContentSize(src, len);
		if (fs != dlen)
			return -1;
		size_t r = ZSTD_decompress(dst, dlen, src, len);
		return (!ZSTD_isError(r) && r == dlen) ? 0 : -1;
	}
	if (algo == XSR_COMPRESS_LZ4) {
		if (len > INT32_MAX || dlen > INT32_MAX)
			return -1;
		int r = LZ4_decompress_safe(src, dst, (int)len, (int)dlen);
		return r == (int)dlen ? 0 : -1;
	}
	return -1;
}

uint64_t xsr_vmci_note_size(uint64_t len)
{
	return len ? XSR_VMCI_NOTE_HDR + ((len + 3) & ~(uint64_t)3) : 0;
}

void xsr_vmci_note(uint8_t *out, const void *text, uint32_t len)
{
	Elf64_Nhdr nh = {.n_namesz = sizeof(XSR_VMCI_NOTE_NAME), .n_descsz = len, .n_type = 0};
	memset(out, 0, xsr_vmci_note_size(len));
	memcpy(out, &nh, sizeof(nh));
	memcpy(out + sizeof(nh), XSR_VMCI_NOTE_NAME, sizeof(XSR_VMCI_NOTE_NAME));
	memcpy(out + XSR_VMCI_NOTE_HDR, text, len);
}

static bool note_is(const uint8_t *p, uint64_t left, const char *name, uint32_t descsz, uint32_t type)
{
	Elf64_Nhdr nh;
	uint32_t nl = (uint32_t)strlen(name) + 1;
	if (left < sizeof(nh) + ALIGN4(nl) + ALIGN4(descsz))
		return false;
	memcpy(&nh, p, sizeof(nh));
	return nh.n_namesz == nl && nh.n_descsz == descsz && nh.n_type == type && !memcmp(p + sizeof(nh), name, nl) &&
	       xsr_is_zero(p + sizeof(nh) + nl, ALIGN4(nl) - nl) &&
	       xsr_is_zero(p + sizeof(nh) + ALIGN4(nl) + descsz, ALIGN4(descsz) - descsz);
}

/* The VMCOREINFO note at @p, exactly @left octets; its size or 0. */
static uint64_t vmci_note_ok(const uint8_t *p, uint64_t left)
{
	Elf64_Nhdr nh;
	if (left < XSR_VMCI_NOTE_HDR)
		return 0;
	memcpy(&nh, p, sizeof(nh));
	if (nh.n_namesz != sizeof(XSR_VMCI_NOTE_NAME) || nh.n_type != 0 || nh.n_descsz > XSR_MAX_VMCOREINFO ||
	    nh.n_descsz == 0 || memcmp(p + sizeof(nh), XSR_VMCI_NOTE_NAME "\0", sizeof(XSR_VMCI_NOTE_NAME) + 1) ||
	    xsr_vmci_note_size(nh.n_descsz) > left ||
	    !xsr_is_zero(p + XSR_VMCI_NOTE_HDR + nh.n_descsz, xsr_vmci_note_size(nh.n_descsz) - XSR_VMCI_NOTE_HDR - nh.n_descsz))
		return 0;
	return xsr_vmci_note_size(nh.n_descsz);
}

int xsr_notes_check(const uint8_t *body, uint64_t len, uint32_t nr_vcpus, bool xen, uint64_t *xen_fll,
		    const char **why)
{
	uint64_t pr = (uint64_t)nr_vcpus * XSR_NOTE_SIZE;
	if (len < pr) {
		*why = "shorter than one NT_PRSTATUS note per vCPU";
		return XSR_E_FORMAT;
	}
	for (uint32_t i = 0; i < nr_vcpus; i++) {
		Elf64_Nhdr nh;
		memcpy(&nh, body + (uint64_t)i * XSR_NOTE_SIZE, sizeof(nh));
		if (nh.n_namesz != 5 || nh.n_descsz != XSR_PRSTATUS_SIZE || nh.n_type != XSR_NT_PRSTATUS ||
		    memcmp(body + (uint64_t)i * XSR_NOTE_SIZE + sizeof(nh), "CORE\0\0\0\0", 8)) {
			*why = "an NT_PRSTATUS note header is not the one the format fixes";
			return XSR_E_FORMAT;
		}
	}
	if (!xen) {
		if (len == pr)
			return 0;
		if (vmci_note_ok(body + pr, len - pr) != len - pr) {
			*why = "the note after the NT_PRSTATUS notes is not a well-formed VMCOREINFO note";
			return XSR_E_FORMAT;
		}
		return 0;
	}
	/* Xen PV for crash: [QEMU x nr_vcpus, VMCOREINFO], then the Xen CRASH_INFO note ending the body. */
	uint64_t at = pr;
	if (len - at != XSR_XEN_NOTE_SIZE) {
		uint64_t q = (uint64_t)nr_vcpus * XSR_QEMU_NOTE_SIZE;
		/* Without this, len - at - i * QEMU_NOTE_SIZE below wraps and note_is reads past the body. */
		if (len - at < q) {
			*why = "after the NT_PRSTATUS notes of a Xen PV image: neither the Xen note alone nor room for a QEMU note per vCPU";
			return XSR_E_FORMAT;
		}
		for (uint32_t i = 0; i < nr_vcpus; i++)
			if (!note_is(body + at + (uint64_t)i * XSR_QEMU_NOTE_SIZE, len - at - (uint64_t)i * XSR_QEMU_NOTE_SIZE,
				     XSR_QEMU_NOTE_NAME, XSR_QEMU_CPUSTATE_SIZE, 0)) {
				*why = "after the NT_PRSTATUS notes of a Xen PV image: neither the Xen note alone nor a QEMU note per vCPU";
				return XSR_E_FORMAT;
			}
		at += q;
		uint64_t v = len - at > XSR_XEN_NOTE_SIZE ? vmci_note_ok(body + at, len - at - XSR_XEN_NOTE_SIZE) : 0;
		if (!v || v != len - at - XSR_XEN_NOTE_SIZE) {
			*why = "the QEMU notes of a Xen PV image are not followed by a well-formed VMCOREINFO note";
			return XSR_E_FORMAT;
		}
		at += v;
	}
	if (!note_is(body + at, len - at, XSR_XEN_NOTE_NAME, XSR_XEN_CRASH_INFO_SIZE, XSR_NT_XEN_CRASH_INFO) ||
	    len - at != XSR_XEN_NOTE_SIZE || !xsr_is_zero(body + len - XSR_XEN_CRASH_INFO_SIZE + 16, 56)) {
		*why = "a Xen PV image's notes do not end with the Xen CRASH_INFO note (words 2..8 zero)";
		return XSR_E_FORMAT;
	}
	if (xen_fll)
		memcpy(xen_fll, body + len - 8, 8);
	return 0;
}
