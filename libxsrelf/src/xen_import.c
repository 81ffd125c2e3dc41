/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Import (xsrelf/xen.h): xl save files, libxl v2 and libxc v2/v3(/v4)
 * streams, xc_core dumps -> one xsrelf image through the one writer.
 *
 * Two passes over a seekable source (an fd or memory; `xsr import` spools a
 * pipe to an unlinked temporary file first): the first checks every header, record length, count, pfn and
 * reserved field and notes where each record and page lies; the second
 * writes.  Only offsets are kept between the passes (24 octets per page
 * occurrence), never page data.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xsrelf/io.h>
#include <xsrelf/writer.h>
#include <xsrelf/xenstore.h>

#include "internal.h"
#include "xen_internal.h"
#include "xen_vcpu.h"

struct item {
	uint16_t origin, flags;
	uint32_t type;
	uint64_t off; /* file offset of the body (of the whole header for *_HEADER) */
	uint64_t len;
	uint64_t shdr_off; /* xc_core: offset of the section header (body = shdr + contents) */
};

struct page {
	uint64_t pfn; /* with type bits 63..60 */
	uint64_t off; /* data offset, 0 if the type carries no data */
	uint64_t seq;
};

struct src {
	struct xsr_source in; /* the input: every read goes through it */
	int fd;               /* an fd input's fd (follow mode watches it grow), else -1 */
	uint64_t size;
	char err[512];
	int code;             /* the enum xsr_err of the failure (fail: XSR_E_FORMAT unless set) */
	int overlapped;       /* follow mode: the pages went to the writer as they arrived */
	uint32_t nr_vcpus;    /* in the image written */
	const char *kind;   /* "xl save file", ... */
	int libxl;          /* a libxl layer is present */
	uint32_t xc_version;   /* libxc stream version */
	uint32_t guest;     /* XEN_DHDR_X86_PV / HVM */
	uint32_t xen_major, xen_minor;
	char xen_extra[24];
	uint8_t pv_width;   /* 4 or 8, from X86_PV_INFO */
	int seen_libxc_hdr, seen_pages, seen_verify, pages_after_verify;
	struct item *items;
	size_t nitems, capitems;
	struct page *pages;
	size_t npages, cappages;
	uint64_t seq;
	/* last item of each typed record, -1 if none */
	long config_off; uint32_t config_len;
	long last[0x20];
	/* xc_core */
	int is_core;
	uint64_t core_prstatus_off, core_nr_vcpus, core_p2m_off, core_nr_pages, core_is_hvm;
	int core_has_p2m;
	int core_has_shinfo; uint64_t core_shinfo_off;
	/*
	 * Follow mode (xen_import_opts.follow_done): the input grows while libxl
	 * writes it; reads past its end wait until it has grown or is done.
	 * With it, the pages of a 64-bit PV stream go to the writer as they
	 * arrive (sw), over the run X86_PV_P2M_FRAMES announces and the vCPU
	 * count the caller expects; if the stream then differs from that
	 * (sw_off), the image is written the usual way at the end.
	 */
	const atomic_int *follow_done;
	const struct xsr_xen_import_opts *o;
	int out;
	struct xsr_writer *sw;
	int sw_off;
	struct xsr_memrun sw_run;
	uint64_t sw_seen;
	uint8_t *sw_buf;
};

static int fail(struct src *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct src *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	if (!s->code)
		s->code = !strcmp(fmt, "out of memory") ? XSR_E_NOMEM : XSR_E_FORMAT;
	return -1;
}

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/*
 * XSR_XEN_TIMING: when the follow mode's steps end, for the Xen rig's
 * measurements; a note to the caller (the library prints nothing).
 */
static void timing(struct src *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void timing(struct src *s, const char *fmt, ...)
{
	if (!s->follow_done || !s->o || !s->o->cb.note || !getenv("XSR_XEN_TIMING"))
		return;
	char msg[256];
	int n = snprintf(msg, sizeof(msg), "timing: ");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	s->o->cb.note(s->o->cb.note_ctx, msg);
}

/*
 * Follow mode: wait until the input holds @end octets (true), or is done
 * and shorter (false).  Otherwise: whether it holds them.
 */
static int grow(struct src *s, uint64_t end)
{
	while (s->size < end && s->follow_done && s->fd >= 0) {
		int done = atomic_load(s->follow_done);
		struct stat sb;
		if (fstat(s->fd, &sb) == 0)
			s->size = (uint64_t)sb.st_size;
		if (s->size >= end || done)
			break;
		nanosleep(&(struct timespec){0, 200000}, NULL);
	}
	return s->size >= end;
}

static int rd(struct src *s, uint64_t off, void *buf, uint64_t len, const char *what)
{
	if (len <= UINT64_MAX - off && (off > s->size || s->size - off < len))
		grow(s, off + len);
	if ((off > s->size || s->size - off < len) && (s->code = XSR_E_TRUNCATED))
		return fail(s, "%s at offset 0x%llx: needs %llu octets but the file ends at 0x%llx (truncated)", what,
			    (unsigned long long)off, (unsigned long long)len, (unsigned long long)s->size);
	/* the source's exact read: for an fd, EINTR and short reads retried,
	 * and a fault-injection point (XSR_FAULT) like every read of the library */
	uint8_t *p = buf;
	while (len) {
		size_t n = len > (1u << 30) ? (1u << 30) : (size_t)len;
		int e = s->in.ops->pread(&s->in, p, n, off);
		if (e < 0 && (s->code = XSR_E_IO))
			return fail(s, "%s at offset 0x%llx: read failed: %s", what, (unsigned long long)off,
				    e == -EIO ? "I/O error or unexpected end of file" : strerror(-e));
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t le32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t le64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static int add_item(struct src *s, uint16_t origin, uint16_t flags, uint32_t type, uint64_t off, uint64_t len)
{
	if (s->nitems == s->capitems) {
		size_t cap = s->capitems ? s->capitems * 2 : 64;
		struct item *n = realloc(s->items, cap * sizeof(*n));
		if (!n)
			return fail(s, "out of memory");
		s->items = n;
		s->capitems = cap;
	}
	if (s->nitems >= XSR_MAX_SECTIONS - 64)
		return fail(s, "more than %u records besides page data: an image cannot hold them",
			    XSR_MAX_SECTIONS - 64);
	s->items[s->nitems++] = (struct item){origin, flags, type, off, len, 0};
	return 0;
}

static int add_page(struct src *s, uint64_t pfn, uint64_t off)
{
	if (s->npages == s->cappages) {
		size_t cap = s->cappages ? s->cappages * 2 : 4096;
		struct page *n = realloc(s->pages, cap * sizeof(*n));
		if (!n)
			return fail(s, "out of memory for the page list (%zu entries)", cap);
		s->pages = n;
		s->cappages = cap;
	}
	s->pages[s->npages++] = (struct page){pfn, off, s->seq++};
	return 0;
}

/* Record body padding (to 8) must be zero; @len is the body length. */
static int check_pad(struct src *s, uint64_t body, uint64_t len, const char *what, uint64_t rec_off)
{
	uint8_t pad[8] = {0};
	uint64_t n = ((len + 7) & ~UINT64_C(7)) - len;
	if (n && rd(s, body + len, pad, n, what) < 0)
		return -1;
	for (uint64_t i = 0; i < n; i++)
		if (pad[i])
			return fail(s, "%s record at offset 0x%llx: padding octet %llu is 0x%02x, not zero", what,
				    (unsigned long long)rec_off, (unsigned long long)i, pad[i]);
	return 0;
}

/* ---------------- libxc ---------------- */

static int libxc_header(struct src *s, uint64_t off, uint64_t *next)
{
	uint8_t h[40];
	if (rd(s, off, h, sizeof(h), "libxc image header") < 0)
		return -1;
	if (be64(h) != XEN_LIBXC_MARKER || be32(h + 8) != XEN_LIBXC_ID)
		return fail(s, "libxc image header at offset 0x%llx: no 0xffffffffffffffff \"XENF\" marker",
			    (unsigned long long)off);
	uint32_t version = be32(h + 12);
	uint16_t options = be16(h + 16);
	if (version < 2 || version > 4)
		return fail(s, "libxc image header at offset 0x%llx: version %u (this reader knows 2, 3 and the v4 proposal)",
			    (unsigned long long)off, version);
	if (options & 1)
		return fail(s, "libxc image header at offset 0x%llx: big-endian stream not supported", (unsigned long long)off);
	if (options & 0xfffe || be16(h + 18) || be32(h + 20))
		return fail(s, "libxc image header at offset 0x%llx: reserved bits set (options 0x%04x)",
			    (unsigned long long)off, options);
	uint32_t type = le32(h + 24);
	uint16_t shift = (uint16_t)(h[28] | h[29] << 8), res = (uint16_t)(h[30] | h[31] << 8);
	if (type != XEN_DHDR_X86_PV && type != XEN_DHDR_X86_HVM)
		return fail(s, "libxc domain header at offset 0x%llx: domain type %u (only x86 PV 1 and x86 HVM 2)",
			    (unsigned long long)off + 24, type);
	if (shift != 12 || res)
		return fail(s, "libxc domain header at offset 0x%llx: page_shift %u (need 12) or reserved 0x%x set",
			    (unsigned long long)off + 24, shift, res);
	s->xc_version = version;
	s->guest = type;
	s->xen_major = le32(h + 32);
	s->xen_minor = le32(h + 36);
	s->seen_libxc_hdr = 1;
	*next = off + sizeof(h);
	return add_item(s, XSR_PT_ORIGIN_LIBXC_HEADER, 0, 0, off, sizeof(h));
}

static int stream_pages(struct src *s, const uint64_t *pfns, uint32_t count, uint64_t doff, uint64_t ndata);

static int page_record(struct src *s, uint32_t type, uint64_t body, uint32_t len, uint64_t roff, const char *name,
		       int data)
{
	uint8_t h[8];
	if (len < 8)
		return fail(s, "%s record at offset 0x%llx: length %u < 8", name, (unsigned long long)roff, len);
	if (rd(s, body, h, 8, name) < 0)
		return -1;
	uint32_t count = le32(h);
	if (count == 0)
		return fail(s, "%s record at offset 0x%llx: count 0 (Xen requires >= 1)", name, (unsigned long long)roff);
	if (le32(h + 4))
		return fail(s, "%s record at offset 0x%llx: reserved field 0x%x is not zero", name,
			    (unsigned long long)roff, le32(h + 4));
	if ((uint64_t)count * 8 > len - 8)
		return fail(s, "%s record at offset 0x%llx: %u pfns do not fit in %u octets", name,
			    (unsigned long long)roff, count, len);
	uint64_t *pfns = malloc((size_t)count * 8);
	if (!pfns)
		return fail(s, "out of memory");
	if (rd(s, body + 8, pfns, (uint64_t)count * 8, name) < 0) {
		free(pfns);
		return -1;
	}
	uint64_t ndata = 0;
	for (uint32_t i = 0; i < count; i++) {
		uint64_t p = pfns[i];
		unsigned t = (unsigned)(p >> XEN_PFN_TYPE_SHIFT);
		if (p & XEN_PFN_RESERVED || !xsr_xen_type_valid(t)) {
			free(pfns);
			return fail(s, "%s record at offset 0x%llx: pfn[%u] = 0x%016llx has %s", name, (unsigned long long)roff,
				    i, (unsigned long long)p, p & XEN_PFN_RESERVED ? "reserved bits 59..52 set" : "an invalid type");
		}
		if (xsr_xen_type_has_data(t))
			ndata++;
	}
	if (len != 8 + (uint64_t)count * 8 + (data ? ndata * 4096 : 0)) {
		free(pfns);
		return fail(s, "%s record at offset 0x%llx: length %u, but %u pfns with %llu data pages need %llu", name,
			    (unsigned long long)roff, len, count, (unsigned long long)(data ? ndata : 0),
			    (unsigned long long)(8 + (uint64_t)count * 8 + (data ? ndata * 4096 : 0)));
	}
	if (data) {
		uint64_t doff = body + 8 + (uint64_t)count * 8;
		for (uint32_t i = 0; i < count; i++) {
			unsigned t = (unsigned)(pfns[i] >> XEN_PFN_TYPE_SHIFT);
			int rc = add_page(s, pfns[i], xsr_xen_type_has_data(t) ? doff : 0);
			if (xsr_xen_type_has_data(t))
				doff += 4096;
			if (rc < 0) {
				free(pfns);
				return -1;
			}
		}
		if (type == XEN_RT_PAGE_DATA && (s->follow_done || (s->o && s->o->pages)) && !s->sw_off &&
		    stream_pages(s, pfns, count, body + 8 + (uint64_t)count * 8, ndata) < 0) {
			free(pfns);
			return -1;
		}
	}
	free(pfns);
	(void)type;
	return 0;
}

/* Length rules of one non-page libxc record (Xen 4.17's own, verify-stream-v2's). */
static int libxc_check(struct src *s, uint32_t type, uint64_t body, uint32_t len, uint64_t roff, const char *name)
{
	uint8_t h[24];
	uint32_t v = s->xc_version;
	int pv_rec = 0;
#define BAD(...) return fail(s, __VA_ARGS__)
#define AT name, (unsigned long long)roff
	if (v == 2 && type >= XEN_RT_POSTCOPY_BEGIN && type <= XEN_RT_POSTCOPY_COMPLETE) {
		if (type == XEN_RT_POSTCOPY_PFNS || type == XEN_RT_POSTCOPY_FAULT)
			return page_record(s, type, body, len, roff, name, 0);
		if (type == XEN_RT_POSTCOPY_PAGE_DATA)
			return page_record(s, type, body, len, roff, name, 1);
		if (len)
			BAD("%s record at offset 0x%llx: length %u, must be 0", AT, len);
		return 0;
	}
	switch (type) {
	case XEN_RT_END: case XEN_RT_VERIFY: case XEN_RT_CHECKPOINT: case XEN_RT_STATIC_DATA_END:
		if (len)
			BAD("%s record at offset 0x%llx: length %u, must be 0", AT, len);
		if (type == XEN_RT_STATIC_DATA_END && v < 3)
			BAD("%s record at offset 0x%llx: not allowed in a v2 stream", AT);
		break;
	case XEN_RT_X86_PV_INFO:
		pv_rec = 1;
		if (len != 8)
			BAD("%s record at offset 0x%llx: length %u, must be 8", AT, len);
		if (rd(s, body, h, 8, name) < 0)
			return -1;
		if ((h[0] != 4 && h[0] != 8) || (h[1] != 3 && h[1] != 4) || le32(h + 4) || h[2] || h[3])
			BAD("%s record at offset 0x%llx: guest_width %u (4 or 8), pt_levels %u (3 or 4) or reserved octets set",
			    AT, h[0], h[1]);
		s->pv_width = h[0];
		break;
	case XEN_RT_X86_PV_P2M_FRAMES:
		pv_rec = 1;
		if (len < 8 || len % 8)
			BAD("%s record at offset 0x%llx: length %u, must be >= 8 and a multiple of 8", AT, len);
		if (rd(s, body, h, 8, name) < 0)
			return -1;
		if (le32(h) > le32(h + 4))
			BAD("%s record at offset 0x%llx: start_pfn 0x%x > end_pfn 0x%x", AT, le32(h), le32(h + 4));
		break;
	case XEN_RT_X86_PV_VCPU_BASIC: case XEN_RT_X86_PV_VCPU_EXTENDED:
	case XEN_RT_X86_PV_VCPU_XSAVE: case XEN_RT_X86_PV_VCPU_MSRS:
		pv_rec = 1;
		if (len < 8)
			BAD("%s record at offset 0x%llx: length %u < 8", AT, len);
		if (rd(s, body, h, 8, name) < 0)
			return -1;
		if (le32(h + 4))
			BAD("%s record at offset 0x%llx: reserved field 0x%x is not zero", AT, le32(h + 4));
		if (le32(h) >= XSR_MAX_VCPUS)
			BAD("%s record at offset 0x%llx: vcpu_id %u >= %u", AT, le32(h), XSR_MAX_VCPUS);
		if (type == XEN_RT_X86_PV_VCPU_MSRS && (len - 8) % 16)
			BAD("%s record at offset 0x%llx: %u octets of MSRs, not a multiple of 16", AT, len - 8);
		if (type == XEN_RT_X86_PV_VCPU_XSAVE && len != 8 && len < 24)
			BAD("%s record at offset 0x%llx: length %u, xsave needs xcr0 and xcr0_accum", AT, len);
		break;
	case XEN_RT_SHARED_INFO:
		if (len != 4096)
			BAD("%s record at offset 0x%llx: length %u, must be 4096", AT, len);
		break;
	case XEN_RT_X86_TSC_INFO:
		if (len != 24)
			BAD("%s record at offset 0x%llx: length %u, must be 24", AT, len);
		if (rd(s, body, h, 24, name) < 0)
			return -1;
		if (le32(h + 20))
			BAD("%s record at offset 0x%llx: reserved field 0x%x is not zero", AT, le32(h + 20));
		break;
	case XEN_RT_HVM_CONTEXT:
		if (len == 0)
			BAD("%s record at offset 0x%llx: zero length", AT);
		if (s->guest != XEN_DHDR_X86_HVM)
			BAD("%s record at offset 0x%llx: in an x86 PV stream", AT);
		break;
	case XEN_RT_HVM_PARAMS:
		if (len < 8)
			BAD("%s record at offset 0x%llx: length %u < 8", AT, len);
		if (rd(s, body, h, 8, name) < 0)
			return -1;
		if (le32(h + 4))
			BAD("%s record at offset 0x%llx: reserved field 0x%x is not zero", AT, le32(h + 4));
		if (len != 8 + (uint64_t)le32(h) * 16)
			BAD("%s record at offset 0x%llx: length %u, but count %u needs %llu", AT, len, le32(h),
			    (unsigned long long)(8 + (uint64_t)le32(h) * 16));
		if (s->guest != XEN_DHDR_X86_HVM)
			BAD("%s record at offset 0x%llx: in an x86 PV stream", AT);
		break;
	case XEN_RT_X86_CPUID_POLICY: case XEN_RT_X86_MSR_POLICY: {
		uint32_t e = type == XEN_RT_X86_CPUID_POLICY ? 24 : 16;
		if (v < 3)
			BAD("%s record at offset 0x%llx: not allowed in a v2 stream", AT);
		if (len < e || len % e)
			BAD("%s record at offset 0x%llx: length %u, must be a non-zero multiple of %u", AT, len, e);
		break;
	}
	case XEN_RT_CHECKPOINT_DIRTY_PFN_LIST:
		if (len % 8)
			BAD("%s record at offset 0x%llx: length %u, not a multiple of 8", AT, len);
		break;
	case XEN_RT_TOOLSTACK:
		break;
	case XEN_RT_DOMAIN_CONTEXT:
		if (v < 4)
			BAD("libxc record at offset 0x%llx: unknown mandatory record type 0x%x in a v%u stream", (unsigned long long)roff, type, v);
		break;
	default:
		if (!(type & XEN_RT_OPTIONAL))
			BAD("libxc record at offset 0x%llx: unknown mandatory record type 0x%x in a v%u stream", (unsigned long long)roff, type, v);
	}
	if (pv_rec && s->guest != XEN_DHDR_X86_PV)
		BAD("%s record at offset 0x%llx: in an x86 HVM stream", AT);
#undef BAD
#undef AT
	return 0;
}

/*
 * libxc records from @off until END, or until CHECKPOINT when @in_libxl
 * (Remus/COLO: libxl takes over until its next LIBXC_CONTEXT).
 */
static int libxc_records(struct src *s, uint64_t off, int in_libxl, uint64_t *next, int *ended)
{
	char name[96];
	for (;;) {
		uint8_t rh[8];
		if (rd(s, off, rh, 8, "libxc record header") < 0)
			return -1;
		uint32_t type = le32(rh), len = le32(rh + 4);
		snprintf(name, sizeof(name), "libxc %s (0x%x)", xsr_xen_libxc_rec_name(s->xc_version, type), type);
		if (len > XEN_REC_LENGTH_MAX)
			return fail(s, "%s record at offset 0x%llx: length %u > %u (Xen's REC_LENGTH_MAX)", name,
				    (unsigned long long)off, len, XEN_REC_LENGTH_MAX);
		uint64_t body = off + 8, span = 8 + (((uint64_t)len + 7) & ~UINT64_C(7));
		if ((off > s->size || s->size - off < span) && !grow(s, off + span))
			return fail(s, "%s record at offset 0x%llx: length %u runs past the end of the file (0x%llx)", name,
				    (unsigned long long)off, len, (unsigned long long)s->size);
		if (check_pad(s, body, len, name, off) < 0)
			return -1;
		if (type == XEN_RT_PAGE_DATA) {
			if (page_record(s, type, body, len, off, name, 1) < 0)
				return -1;
			if (!s->seen_pages || (s->seen_verify && !s->pages_after_verify)) {
				/* Where export writes every page: first PAGE_DATA, and again after VERIFY. */
				if (add_item(s, XSR_PT_ORIGIN_LIBXC_RECORD, XSR_PT_PAGES, XEN_RT_PAGE_DATA, body, 0) < 0)
					return -1;
				if (s->seen_verify)
					s->pages_after_verify = 1;
			}
			s->seen_pages = 1;
		} else {
			if (libxc_check(s, type, body, len, off, name) < 0)
				return -1;
			if (add_item(s, XSR_PT_ORIGIN_LIBXC_RECORD, 0, type, body, len) < 0)
				return -1;
			if (type < 0x20 && !(s->xc_version == 2 && type >= XEN_RT_POSTCOPY_BEGIN))
				s->last[type] = (long)s->nitems - 1;
			if (type == XEN_RT_VERIFY)
				s->seen_verify = 1;
		}
		off += span;
		if (type == XEN_RT_END || (in_libxl && type == XEN_RT_CHECKPOINT)) {
			*next = off;
			*ended = type == XEN_RT_END;
			return 0;
		}
	}
}

/* ---------------- libxl ---------------- */

static int libxl_stream(struct src *s, uint64_t off, uint64_t *next)
{
	uint8_t h[16];
	if (rd(s, off, h, 16, "libxl stream header") < 0)
		return -1;
	if (be64(h) != XEN_LIBXL_IDENT)
		return fail(s, "libxl stream header at offset 0x%llx: no \"LibxlFmt\" ident", (unsigned long long)off);
	if (be32(h + 8) != 2)
		return fail(s, "libxl stream header at offset 0x%llx: version %u (only 2)", (unsigned long long)off, be32(h + 8));
	uint32_t opt = be32(h + 12);
	if (opt & 1)
		return fail(s, "libxl stream header at offset 0x%llx: big-endian stream not supported", (unsigned long long)off);
	if (opt & ~3u)
		return fail(s, "libxl stream header at offset 0x%llx: reserved option bits 0x%x set", (unsigned long long)off, opt & ~3u);
	if (add_item(s, XSR_PT_ORIGIN_LIBXL_HEADER, 0, 0, off, 16) < 0)
		return -1;
	s->libxl = 1;
	off += 16;
	int libxc_done = 0;
	char name[64];
	for (;;) {
		uint8_t rh[8];
		if (rd(s, off, rh, 8, "libxl record header") < 0)
			return -1;
		uint32_t type = le32(rh), len = le32(rh + 4);
		snprintf(name, sizeof(name), "libxl %s (0x%x)", xsr_xen_libxl_rec_name(type), type);
		if (type > XEN_LT_CHECKPOINT_STATE)
			return fail(s, "libxl record at offset 0x%llx: unknown record type 0x%x", (unsigned long long)off, type);
		if (len > XEN_REC_LENGTH_MAX)
			return fail(s, "%s record at offset 0x%llx: length %u > %u", name, (unsigned long long)off, len,
				    XEN_REC_LENGTH_MAX);
		uint64_t body = off + 8, span = 8 + (((uint64_t)len + 7) & ~UINT64_C(7));
		if ((off > s->size || s->size - off < span) && !grow(s, off + span))
			return fail(s, "%s record at offset 0x%llx: length %u runs past the end of the file (0x%llx)", name,
				    (unsigned long long)off, len, (unsigned long long)s->size);
		if (check_pad(s, body, len, name, off) < 0)
			return -1;
		switch (type) {
		case XEN_LT_END: case XEN_LT_LIBXC_CONTEXT: case XEN_LT_CHECKPOINT_END:
			if (len)
				return fail(s, "%s record at offset 0x%llx: length %u, must be 0", name, (unsigned long long)off, len);
			break;
		case XEN_LT_EMULATOR_XENSTORE_DATA: case XEN_LT_EMULATOR_CONTEXT: {
			uint8_t e[8];
			if (len < 8)
				return fail(s, "%s record at offset 0x%llx: length %u < 8 (emulator header)", name, (unsigned long long)off, len);
			if (rd(s, body, e, 8, name) < 0)
				return -1;
			if (le32(e) > 2)
				return fail(s, "%s record at offset 0x%llx: unknown emulator id %u", name, (unsigned long long)off, le32(e));
			break;
		}
		case XEN_LT_CHECKPOINT_STATE:
			if (len < 4)
				return fail(s, "%s record at offset 0x%llx: length %u < 4", name, (unsigned long long)off, len);
			break;
		}
		if (add_item(s, XSR_PT_ORIGIN_LIBXL_RECORD, 0, type, body, len) < 0)
			return -1;
		off += span;
		if (type == XEN_LT_LIBXC_CONTEXT) {
			if (libxc_done)
				return fail(s, "%s record at offset 0x%llx: the libxc stream already ended", name, (unsigned long long)off - span);
			if (!s->seen_libxc_hdr && libxc_header(s, off, &off) < 0)
				return -1;
			if (libxc_records(s, off, 1, &off, &libxc_done) < 0)
				return -1;
		}
		if (type == XEN_LT_END) {
			if (!s->seen_libxc_hdr)
				return fail(s, "libxl stream ends at offset 0x%llx without a LIBXC_CONTEXT record", (unsigned long long)off);
			*next = off;
			return 0;
		}
	}
}

/* ---------------- xl ---------------- */

static int xl_file(struct src *s, uint64_t *next)
{
	uint8_t h[48];
	if (rd(s, 0, h, 48, "xl save-file header") < 0)
		return -1;
	if (le32(h + 32) != XEN_XL_BYTEORDER)
		return fail(s, "xl save-file header at offset 0x20: byte order 0x%08x (only little-endian 0x01020304)", le32(h + 32));
	uint32_t mflags = le32(h + 36), optlen = le32(h + 44);
	if (mflags & ~(XEN_XL_FLAG_JSON | XEN_XL_FLAG_STREAMV2))
		return fail(s, "xl save-file header at offset 0x24: unknown mandatory flags 0x%x", mflags);
	if (s->size - 48 < optlen && !grow(s, 48 + (uint64_t)optlen))
		return fail(s, "xl save-file header at offset 0x2c: optional data of %u octets runs past the end of the file", optlen);
	if (optlen >= 4) {
		uint8_t l[4];
		if (rd(s, 48, l, 4, "xl config length") < 0)
			return -1;
		if (le32(l) > optlen - 4)
			return fail(s, "xl save-file header at offset 0x30: config of %u octets does not fit in %u octets of optional data",
				    le32(l), optlen);
		if (le32(l) > XSR_MAX_CONFIG)
			return fail(s, "xl save-file header at offset 0x30: config of %u octets > %llu", le32(l),
				    (unsigned long long)XSR_MAX_CONFIG);
		s->config_off = 52;
		s->config_len = le32(l);
	}
	if (add_item(s, XSR_PT_ORIGIN_XL_HEADER, 0, 0, 0, 48 + (uint64_t)optlen) < 0)
		return -1;
	uint64_t off = 48 + (uint64_t)optlen;
	if (mflags & XEN_XL_FLAG_STREAMV2) {
		s->kind = "xl save file";
		return libxl_stream(s, off, next);
	}
	uint8_t m[8];
	if (rd(s, off, m, 8, "stream after the xl header") < 0)
		return -1;
	if (be64(m) != XEN_LIBXC_MARKER)
		return fail(s, "xl save file without the STREAMv2 flag and no libxc v2 marker at offset 0x%llx: legacy (pre-4.6) streams are not supported",
			    (unsigned long long)off);
	s->kind = "xl save file";
	int ended;
	if (libxc_header(s, off, &off) < 0)
		return -1;
	if (libxc_records(s, off, 0, next, &ended) < 0)
		return -1;
	return 0;
}

/* ---------------- xc_core ---------------- */

static int core_file(struct src *s, uint64_t *next)
{
	Elf64_Ehdr eh;
	if (rd(s, 0, &eh, sizeof(eh), "xc_core ELF header") < 0)
		return -1;
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_type != ET_CORE)
		return fail(s, "xc_core ELF header: not a little-endian ELF64 ET_CORE file");
	if (eh.e_machine != EM_X86_64)
		return fail(s, "xc_core ELF header: machine %u (only x86-64 guests; 32-bit PV cores are EM_386)", eh.e_machine);
	if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 || eh.e_shnum > 64 || eh.e_shstrndx >= eh.e_shnum)
		return fail(s, "xc_core ELF header: section table entsize %u, count %u, shstrndx %u unusable", eh.e_shentsize,
			    eh.e_shnum, eh.e_shstrndx);
	Elf64_Shdr sh[64];
	if (rd(s, eh.e_shoff, sh, (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr), "xc_core section table") < 0)
		return -1;
	char strtab[4096] = {0};
	Elf64_Shdr *ss = &sh[eh.e_shstrndx];
	if (ss->sh_size == 0 || ss->sh_size >= sizeof(strtab))
		return fail(s, "xc_core section %u (.shstrtab) at offset 0x%llx: size %llu", eh.e_shstrndx,
			    (unsigned long long)ss->sh_offset, (unsigned long long)ss->sh_size);
	if (rd(s, ss->sh_offset, strtab, ss->sh_size, "xc_core .shstrtab") < 0)
		return -1;
	if (add_item(s, XSR_PT_ORIGIN_XC_CORE, 0, 0, 0, sizeof(eh)) < 0)
		return -1;
	int notes = -1, prs = -1, pages = -1, p2m = -1, pfn = -1, shi = -1;
	for (int i = 1; i < eh.e_shnum; i++) {
		if (sh[i].sh_name >= ss->sh_size)
			return fail(s, "xc_core section %d: name offset %u outside .shstrtab", i, sh[i].sh_name);
		const char *n = strtab + sh[i].sh_name;
		uint64_t sz = sh[i].sh_type == SHT_NOBITS ? 0 : sh[i].sh_size;
		if (sh[i].sh_offset > s->size || s->size - sh[i].sh_offset < sz)
			return fail(s, "xc_core section %d (%s) at offset 0x%llx: %llu octets run past the end of the file", i, n,
				    (unsigned long long)sh[i].sh_offset, (unsigned long long)sz);
		if (!strcmp(n, ".note.Xen")) notes = i;
		else if (!strcmp(n, ".xen_prstatus")) prs = i;
		else if (!strcmp(n, ".xen_pages")) pages = i;
		else if (!strcmp(n, ".xen_p2m")) p2m = i;
		else if (!strcmp(n, ".xen_pfn")) pfn = i;
		else if (!strcmp(n, ".xen_shared_info")) shi = i;
		int is_pages = pages == i;
		if (is_pages && add_item(s, XSR_PT_ORIGIN_XC_CORE, XSR_PT_PAGES, (uint32_t)i, sh[i].sh_offset, 0) < 0)
			return -1;
		if (!is_pages && add_item(s, XSR_PT_ORIGIN_XC_CORE, 0, (uint32_t)i, sh[i].sh_offset, sz) < 0)
			return -1;
		s->items[s->nitems - 1].shdr_off = eh.e_shoff + (uint64_t)i * sizeof(Elf64_Shdr);
	}
	if (notes < 0 || prs < 0 || pages < 0 || (p2m < 0) == (pfn < 0))
		return fail(s, "xc_core file: needs .note.Xen, .xen_prstatus, .xen_pages and one of .xen_p2m / .xen_pfn");
	/* Notes: owner "Xen", DUMPCORE_HEADER 0x2000001, XEN_VERSION 0x2000002. */
	uint64_t nsz = sh[notes].sh_size, noff = sh[notes].sh_offset;
	if (nsz > (1u << 20))
		return fail(s, "xc_core .note.Xen at offset 0x%llx: %llu octets", (unsigned long long)noff, (unsigned long long)nsz);
	uint8_t *nb = malloc(nsz + 1);
	if (!nb)
		return fail(s, "out of memory");
	if (rd(s, noff, nb, nsz, "xc_core .note.Xen") < 0) {
		free(nb);
		return -1;
	}
	int have_hdr = 0;
	for (uint64_t p = 0; p + 12 <= nsz;) {
		uint32_t namesz = le32(nb + p), descsz = le32(nb + p + 4), ntype = le32(nb + p + 8);
		uint64_t d = p + 12 + ((namesz + 3ull) & ~3ull);
		if (d > nsz || nsz - d < descsz) {
			free(nb);
			return fail(s, "xc_core .note.Xen at offset 0x%llx: note at +0x%llx runs past the section", (unsigned long long)noff,
				    (unsigned long long)p);
		}
		if (ntype == 0x2000001 && descsz >= 32) {
			uint64_t magic = le64(nb + d);
			s->core_nr_vcpus = le64(nb + d + 8);
			s->core_nr_pages = le64(nb + d + 16);
			uint64_t psize = le64(nb + d + 24);
			if ((magic != 0xF00FEBED && magic != 0xF00FEBEE) || psize != 4096) {
				free(nb);
				return fail(s, "xc_core DUMPCORE_HEADER note: magic 0x%llx or page size %llu unknown",
					    (unsigned long long)magic, (unsigned long long)psize);
			}
			s->core_is_hvm = magic == 0xF00FEBEE;
			have_hdr = 1;
		} else if (ntype == 0x2000002 && descsz >= 32) {
			s->xen_major = (uint32_t)le64(nb + d);
			s->xen_minor = (uint32_t)le64(nb + d + 8);
			memcpy(s->xen_extra, nb + d + 16, 16);
			s->xen_extra[16] = 0;
		}
		p = d + ((descsz + 3ull) & ~3ull);
	}
	free(nb);
	if (!have_hdr)
		return fail(s, "xc_core .note.Xen at offset 0x%llx: no DUMPCORE_HEADER note", (unsigned long long)noff);
	if (s->core_nr_vcpus == 0 || s->core_nr_vcpus > XSR_MAX_VCPUS ||
	    sh[prs].sh_size != s->core_nr_vcpus * sizeof(vcpu_guest_context_x86_64_t))
		return fail(s, "xc_core .xen_prstatus at offset 0x%llx: %llu octets for %llu vCPUs of %zu octets",
			    (unsigned long long)sh[prs].sh_offset, (unsigned long long)sh[prs].sh_size,
			    (unsigned long long)s->core_nr_vcpus, sizeof(vcpu_guest_context_x86_64_t));
	if (s->core_nr_pages > XSR_MAX_PAGES || sh[pages].sh_size != s->core_nr_pages * 4096)
		return fail(s, "xc_core .xen_pages at offset 0x%llx: %llu octets for %llu pages",
			    (unsigned long long)sh[pages].sh_offset, (unsigned long long)sh[pages].sh_size,
			    (unsigned long long)s->core_nr_pages);
	int map = p2m >= 0 ? p2m : pfn;
	uint64_t ent = p2m >= 0 ? 16 : 8;
	if (sh[map].sh_size != s->core_nr_pages * ent)
		return fail(s, "xc_core %s at offset 0x%llx: %llu octets for %llu pages", p2m >= 0 ? ".xen_p2m" : ".xen_pfn",
			    (unsigned long long)sh[map].sh_offset, (unsigned long long)sh[map].sh_size,
			    (unsigned long long)s->core_nr_pages);
	s->guest = s->core_is_hvm ? XEN_DHDR_X86_HVM : XEN_DHDR_X86_PV;
	s->core_prstatus_off = sh[prs].sh_offset;
	s->core_p2m_off = sh[map].sh_offset;
	s->core_has_p2m = p2m >= 0;
	if (shi >= 0 && sh[shi].sh_size == 4096) {
		s->core_has_shinfo = 1;
		s->core_shinfo_off = sh[shi].sh_offset;
	}
	/* Page i of .xen_pages belongs to entry i; ~0 entries are padding (zero pages). */
	uint64_t buf[512];
	uint64_t prev = 0;
	int any = 0;
	for (uint64_t i = 0; i < s->core_nr_pages; i += 512 / (ent / 8)) {
		uint64_t n = s->core_nr_pages - i < 512 / (ent / 8) ? s->core_nr_pages - i : 512 / (ent / 8);
		if (rd(s, sh[map].sh_offset + i * ent, buf, n * ent, "xc_core pfn map") < 0)
			return -1;
		for (uint64_t k = 0; k < n; k++) {
			uint64_t p = buf[k * (ent / 8)];
			if (p == ~UINT64_C(0))
				continue;
			if (p > XEN_PFN_MASK || (any && p <= prev))
				return fail(s, "xc_core pfn map entry %llu at offset 0x%llx: pfn 0x%llx out of range or not ascending",
					    (unsigned long long)(i + k), (unsigned long long)(sh[map].sh_offset + (i + k) * ent),
					    (unsigned long long)p);
			if (add_page(s, p, sh[pages].sh_offset + (i + k) * 4096) < 0)
				return -1;
			prev = p;
			any = 1;
		}
	}
	s->is_core = 1;
	s->kind = "xc_core dump";
	*next = s->size;
	return 0;
}

/* ---------------- writing ---------------- */

static int cmp_page(const void *a, const void *b)
{
	const struct page *x = a, *y = b;
	uint64_t px = x->pfn & XEN_PFN_MASK, py = y->pfn & XEN_PFN_MASK;
	if (px != py)
		return px < py ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sort by pfn, keep the last occurrence of each. */
static void final_pages(struct src *s)
{
	if (!s->npages) /* s->pages is NULL then, and qsort's base must not be */
		return;
	qsort(s->pages, s->npages, sizeof(*s->pages), cmp_page);
	size_t o = 0;
	for (size_t i = 0; i < s->npages; i++) {
		if (i + 1 < s->npages && (s->pages[i + 1].pfn & XEN_PFN_MASK) == (s->pages[i].pfn & XEN_PFN_MASK))
			continue;
		s->pages[o++] = s->pages[i];
	}
	s->npages = o;
}

static void *read_item(struct src *s, const struct item *it, uint64_t *len)
{
	uint64_t pre = it->origin == XSR_PT_ORIGIN_XC_CORE && it->type ? sizeof(Elf64_Shdr) : 0;
	uint64_t n = sizeof(struct xsr_passthru_hdr) + pre + it->len;
	uint8_t *b = malloc(n ? n : 1);
	if (!b) {
		fail(s, "out of memory for a record of %llu octets", (unsigned long long)it->len);
		return NULL;
	}
	if ((pre && rd(s, it->shdr_off, b + sizeof(struct xsr_passthru_hdr), pre, "xc_core section header") < 0) ||
	    rd(s, it->off, b + sizeof(struct xsr_passthru_hdr) + pre, it->len, "record") < 0) {
		free(b);
		return NULL;
	}
	*len = n;
	return b;
}

static const struct page *find_page(const struct src *s, uint64_t pfn)
{
	size_t lo = 0, hi = s->npages;
	while (lo < hi) {
		size_t m = lo + (hi - lo) / 2;
		uint64_t p = s->pages[m].pfn & XEN_PFN_MASK;
		if (p == pfn)
			return &s->pages[m];
		if (p < pfn)
			lo = m + 1;
		else
			hi = m;
	}
	return NULL;
}

struct dcbuf {
	uint8_t *b;
	size_t len, cap;
};

static int dc_add(struct src *s, struct dcbuf *d, uint16_t code, long idx, uint64_t skip)
{
	if (idx < 0)
		return 0;
	const struct item *it = &s->items[idx];
	if (it->len < skip)
		return 0;
	uint64_t plen = it->len - skip, need = 16 + ((plen + 7) & ~UINT64_C(7));
	if (d->len + need > XSR_MAX_RECORD)
		return fail(s, "domain context descriptors exceed %llu octets", (unsigned long long)XSR_MAX_RECORD);
	if (d->len + need > d->cap) {
		size_t cap = (d->len + need) * 2;
		uint8_t *n = realloc(d->b, cap);
		if (!n)
			return fail(s, "out of memory");
		d->b = n;
		d->cap = cap;
	}
	struct xsr_domctx_desc h = {.typecode = code, .vcpu_id = XSR_DOMCTX_ALL_VCPUS, .length = plen};
	memcpy(d->b + d->len, &h, sizeof(h));
	memset(d->b + d->len + 16, 0, need - 16);
	if (rd(s, it->off + skip, d->b + d->len + 16, plen, "domain context record") < 0)
		return -1;
	d->len += need;
	return 0;
}

/* Guest p2m (pfn -> source mfn) from the p2m frames named by X86_PV_P2M_FRAMES. */
/* The data of page @pg: from the input, or (native save) from xen_import_opts.pages. */
static int page_at(struct src *s, const struct page *pg, uint8_t *buf, const char *what)
{
	const struct xsr_xen_import_opts *o = s->o;
	if (!o || !o->pages)
		return rd(s, pg->off, buf, 4096, what);
	const void *p = NULL;
	if (o->pages(o->pages_ctx, &pg->pfn, 1, &p, s->err, sizeof(s->err)) < 0)
		return -1;
	if (p)
		memcpy(buf, p, 4096);
	o->pages(o->pages_ctx, &pg->pfn, 1, NULL, NULL, 0);
	return p ? 0 : fail(s, "%s: pfn 0x%llx has no data", what, (unsigned long long)(pg->pfn & XEN_PFN_MASK));
}

static int pv_p2m(struct src *s, struct xsr_writer *w)
{
	long idx = s->last[XEN_RT_X86_PV_P2M_FRAMES];
	if (idx < 0 || !s->pv_width)
		return 0;
	const struct item *it = &s->items[idx];
	uint8_t h[8];
	if (rd(s, it->off, h, 8, "X86_PV_P2M_FRAMES") < 0)
		return -1;
	uint64_t start = le32(h), end = le32(h + 4), nframes = (it->len - 8) / 8, fpp = 4096 / s->pv_width;
	if (end - start + 1 > XSR_MAX_RECORD / sizeof(struct xsr_p2m_entry))
		return 0; /* too large to list; the frames stay in PASSTHRU and guest memory */
	struct xsr_p2m_entry *e = malloc((end - start + 1) * sizeof(*e));
	uint8_t *page = malloc(4096);
	if (!e || !page) {
		free(e);
		free(page);
		return fail(s, "out of memory");
	}
	uint64_t n = 0;
	for (uint64_t f = 0; f < nframes; f++) {
		uint64_t fp;
		if (rd(s, it->off + 8 + f * 8, &fp, 8, "X86_PV_P2M_FRAMES") < 0)
			goto err;
		const struct page *pg = find_page(s, fp & XEN_PFN_MASK);
		if (!pg || !pg->off)
			continue;
		if (page_at(s, pg, page, "p2m frame page") < 0)
			goto err;
		for (uint64_t k = 0; k < fpp; k++) {
			uint64_t pfn = start + f * fpp + k;
			if (pfn > end)
				break;
			uint64_t mfn = s->pv_width == 8 ? le64(page + k * 8) : le32(page + k * 4);
			if (mfn == (s->pv_width == 8 ? ~UINT64_C(0) : 0xffffffffu))
				continue;
			e[n++] = (struct xsr_p2m_entry){pfn, mfn};
		}
	}
	int rc = n ? xsr_writer_add_section(w, XSR_SEC_P2M, 0, 0, sizeof(*e),
					    &(struct iovec){e, n * sizeof(*e)}, 1) : 0;
	free(e);
	free(page);
	return rc < 0 ? fail(s, "P2M section: %s", xsr_writer_error(w)) : 0;
err:
	free(e);
	free(page);
	return -1;
}

static int core_p2m(struct src *s, struct xsr_writer *w)
{
	if (!s->core_has_p2m || !s->npages)
		return 0;
	struct xsr_p2m_entry *e = malloc(s->npages * sizeof(*e));
	if (!e)
		return fail(s, "out of memory");
	uint64_t n = 0;
	/* Entries are ascending by pfn and the page list kept that order. */
	for (uint64_t i = 0, k = 0; i < s->core_nr_pages && k < s->npages; i++) {
		uint64_t pm[2];
		if (rd(s, s->core_p2m_off + i * 16, pm, 16, "xc_core .xen_p2m") < 0) {
			free(e);
			return -1;
		}
		if (pm[0] == ~UINT64_C(0))
			continue;
		e[n++] = (struct xsr_p2m_entry){pm[0], pm[1]};
		k++;
	}
	int rc = xsr_writer_add_section(w, XSR_SEC_P2M, 0, 0, sizeof(*e), &(struct iovec){e, n * sizeof(*e)}, 1);
	free(e);
	return rc < 0 ? fail(s, "P2M section: %s", xsr_writer_error(w)) : 0;
}

static int mfn_to_pfn(void *ctx, uint64_t mfn, uint64_t *pfn)
{
	struct src *s = ctx;
	if (!s->core_has_p2m)
		return -1;
	for (uint64_t i = 0; i < s->core_nr_pages; i++) {
		uint64_t pm[2];
		if (rd(s, s->core_p2m_off + i * 16, pm, 16, "xc_core .xen_p2m") < 0)
			return -1;
		if (pm[0] != ~UINT64_C(0) && pm[1] == mfn) {
			*pfn = pm[0];
			return 0;
		}
	}
	return -1;
}

/*
 * What the image's page tables call machine frames, for the crash layout of
 * a 64-bit PV guest: an xc_core dump's memory is raw (its page tables hold
 * the host's mfns, listed in .xen_p2m); a save stream's page tables were
 * normalised to pfns by libxc, so machine frame = pfn (*mfn stays NULL).
 * Returns 1 when the image gets the layout, 0 when not (HVM, 32-bit,
 * migration), -1 on failure.
 */
static int xen_pv_map(struct src *s, const struct xsr_xen_import_opts *o, struct xsr_xen_pv *pv, uint64_t **mfn)
{
	*mfn = NULL;
	if (s->guest != XEN_DHDR_X86_PV || o->kind == XSR_KIND_MIGRATION || !s->npages)
		return 0;
	if (!s->is_core && s->pv_width != 8)
		return 0;
	*pv = (struct xsr_xen_pv){.xen_major = s->xen_major, .xen_minor = s->xen_minor};
	if (!s->is_core)
		return 1;
	if (!s->core_has_p2m)
		return 0;
	uint64_t n = (s->pages[s->npages - 1].pfn & XEN_PFN_MASK) + 1;
	/*
	 * n comes from the dump (pfns up to 2^52): a tree crash can read holds
	 * at most 512 frame lists of 512 leaves of 512 entries; past that the
	 * writer makes an ordinary physical view anyway, so do not allocate n.
	 */
	if (n > (uint64_t)XSR_XEN_P2M_MAX_FL * XSR_XEN_P2M_PER_PAGE * XSR_XEN_P2M_PER_PAGE)
		return 0;
	uint64_t *m = malloc(n * sizeof(*m));
	if (!m)
		return fail(s, "out of memory for the p2m of %llu pfns", (unsigned long long)n);
	for (uint64_t i = 0; i < n; i++)
		m[i] = XSR_XEN_NO_MFN;
	for (uint64_t i = 0; i < s->core_nr_pages; i++) {
		uint64_t pm[2];
		if (rd(s, s->core_p2m_off + i * 16, pm, 16, "xc_core .xen_p2m") < 0) {
			free(m);
			return -1;
		}
		if (pm[0] < n)
			m[pm[0]] = pm[1];
	}
	pv->nr_pfns = n;
	pv->mfn = m;
	*mfn = m;
	return 1;
}

static uint32_t count_vcpus(struct src *s, struct xen_vcpus *vs)
{
	if (s->is_core)
		return (uint32_t)s->core_nr_vcpus;
	uint32_t n = 0;
	for (size_t i = 0; i < s->nitems; i++) {
		const struct item *it = &s->items[i];
		if (it->origin != XSR_PT_ORIGIN_LIBXC_RECORD || it->flags || s->guest != XEN_DHDR_X86_PV || it->len < 8)
			continue;
		if (it->type == XEN_RT_X86_PV_VCPU_BASIC || it->type == XEN_RT_X86_PV_VCPU_EXTENDED ||
		    it->type == XEN_RT_X86_PV_VCPU_XSAVE || it->type == XEN_RT_X86_PV_VCPU_MSRS) {
			uint8_t h[4];
			if (rd(s, it->off, h, 4, "vCPU record") < 0)
				return 0;
			if (le32(h) + 1 > n)
				n = le32(h) + 1;
		}
	}
	if (s->guest == XEN_DHDR_X86_HVM)
		n = vs->hvm_nr;
	return n ? n : 1;
}

/* The producer's hypervisor_version: Xen's version and what the input was. */
static void producer_version(struct src *s, char *ver, size_t n)
{
	char guest[32]; /* the producer keeps 63 octets; these fit */
	snprintf(guest, sizeof(guest), "x86 %s%s", s->guest == XEN_DHDR_X86_HVM ? "HVM" : "PV",
		 s->guest == XEN_DHDR_X86_HVM || s->is_core ? "" : s->pv_width == 4 ? " 32-bit" : " 64-bit");
	if (s->is_core)
		snprintf(ver, n, "%u.%u%.16s (xc_core dump, %s)", s->xen_major, s->xen_minor, s->xen_extra, guest);
	else if (s->xen_major)
		snprintf(ver, n, "%u.%u (%s%slibxc v%u, %s)", s->xen_major, s->xen_minor, s->libxl ? "xl, libxl v2, " : "",
			 s->items[0].origin == XSR_PT_ORIGIN_XL_HEADER && !s->libxl ? "xl, " : "", s->xc_version, guest);
	else
		snprintf(ver, n, "unknown (%s%slibxc v%u, %s)", s->libxl ? "xl, libxl v2, " : "",
			 s->items[0].origin == XSR_PT_ORIGIN_XL_HEADER && !s->libxl ? "xl, " : "", s->xc_version, guest);
}

/*
 * Follow mode: the pages of one PAGE_DATA record go to the writer now.  The
 * writer is opened at the first of them, with the run that X86_PV_P2M_FRAMES
 * announced (libxc sends every pfn of it) and the caller's vCPU count.
 * Anything off that plan sets sw_off: the image is then written the usual
 * way once the stream is complete.
 */
static int stream_pages(struct src *s, const uint64_t *pfns, uint32_t count, uint64_t doff, uint64_t ndata)
{
	const struct xsr_xen_import_opts *o = s->o;
	if (!s->sw) {
		long pf = s->last[XEN_RT_X86_PV_P2M_FRAMES];
		uint8_t h[8];
		if (s->is_core || s->guest != XEN_DHDR_X86_PV || s->pv_width != 8 || pf < 0 || !o->vcpus_hint ||
		    o->vcpus_hint > XSR_MAX_VCPUS || s->seen_verify || rd(s, s->items[pf].off, h, 8, "X86_PV_P2M_FRAMES") < 0) {
			s->sw_off = 1;
			return o->pages ? fail(s, "native save: not a 64-bit PV stream with its p2m run first") : 0;
		}
		s->sw_run = (struct xsr_memrun){le32(h), (uint64_t)le32(h + 4) - le32(h) + 1};
		char ver[160];
		producer_version(s, ver, sizeof(ver));
		struct xsr_writer_params p = {
			.machine = EM_X86_64, .kind = o->kind ? o->kind : XSR_KIND_SAVE,
			.layout = (uint8_t)o->layout, .nr_vcpus = o->vcpus_hint, .nr_runs = 1,
			.runs = &s->sw_run, .hypervisor = "xen", .hypervisor_version = ver, .compress = o->compress,
		};
		struct xsr_xen_pv pv = {.xen_major = s->xen_major, .xen_minor = s->xen_minor};
		if (p.kind != XSR_KIND_MIGRATION)
			p.xen_pv = &pv; /* a save: page tables hold pfns, mfn = pfn (xen_pv_map) */
		s->sw_buf = malloc((size_t)1024 * 4096);
		if (!s->sw_buf || xsr_writer_open(&s->sw, s->out, &p, s->err, sizeof(s->err)) < 0) {
			s->sw = NULL;
			return s->sw_buf ? -1 : fail(s, "out of memory");
		}
		if (o->begin && o->begin(o->begin_ctx, s->sw, s->err, sizeof(s->err)) < 0)
			return -1;
	}
	const void *ptrs[1024], *given[1024];
	uint64_t clean[1024];
	if (count > 1024 || ndata > count) {
		s->sw_off = 1;
		return o->pages ? fail(s, "native save: a PAGE_DATA record of %u pages", count) : 0;
	}
	for (uint32_t i = 0; i < count; i++) {
		uint64_t pfn = pfns[i] & XEN_PFN_MASK;
		if (pfn < s->sw_run.pfn || pfn - s->sw_run.pfn >= s->sw_run.count) {
			s->sw_off = 1; /* outside the announced run: write the usual way */
			return o->pages ? fail(s, "native save: pfn 0x%llx outside the p2m", (unsigned long long)pfn) : 0;
		}
	}
	/* native save: the data area is a hole; the caller maps the pages */
	if (o->pages && o->pages(o->pages_ctx, pfns, count, given, s->err, sizeof(s->err)) < 0)
		return -1;
	if (!o->pages && ndata && rd(s, doff, s->sw_buf, ndata * 4096, "page data") < 0)
		return -1;
	for (uint32_t i = 0, d = 0; i < count; i++) {
		clean[i] = pfns[i];
		if (!xsr_xen_type_has_data((unsigned)(pfns[i] >> XEN_PFN_TYPE_SHIFT)))
			ptrs[i] = NULL;
		else
			ptrs[i] = o->pages ? given[i] : s->sw_buf + (size_t)d++ * 4096;
	}
	int prc = xsr_writer_put_pages(s->sw, clean, count, ptrs);
	if (o->pages)
		o->pages(o->pages_ctx, pfns, count, NULL, NULL, 0);
	if (prc < 0)
		return fail(s, "pages: %s", xsr_writer_error(s->sw));
	s->sw_seen += count;
	if (o->cb.progress)
		o->cb.progress(o->cb.progress_ctx, s->sw_seen, s->sw_run.count);
	if (s->sw_seen == s->sw_run.count)
		timing(s, "last page written %.1f ms, libxl done: %d", now_ns() / 1e6,
		       s->follow_done ? atomic_load(s->follow_done) : 1);
	return 0;
}

/* ---------------- the second pass: the image ---------------- */

/* What the parts of write_image share. */
struct wimg {
	struct xsr_writer *w;
	struct xsr_memrun *runs;
	uint32_t nruns, nr_vcpus;
	uint8_t *hvmctx; /* the last HVM_CONTEXT, HVM guests */
	uint64_t *mfnmap;
	int streamed; /* follow mode: the pages are in already */
};

/* A writer call failed with @rc: its message after @fmt's text. */
static int wfail(struct src *s, struct xsr_writer *w, int rc, const char *what)
{
	s->code = rc < 0 ? rc : XSR_E_FORMAT;
	return fail(s, "%s: %s", what, xsr_writer_error(w));
}

/* Memory runs from the final pfn set. */
static int make_runs(struct src *s, struct wimg *wi)
{
	final_pages(s);
	wi->runs = malloc((s->npages + 1) * sizeof(*wi->runs) > XSR_MAX_RUNS * sizeof(*wi->runs) + 16
				  ? (XSR_MAX_RUNS + 1) * sizeof(*wi->runs)
				  : (s->npages + 1) * sizeof(*wi->runs));
	if (!wi->runs)
		return fail(s, "out of memory");
	struct xsr_memrun *runs = wi->runs;
	uint32_t nruns = 0;
	for (size_t i = 0; i < s->npages; i++) {
		uint64_t p = s->pages[i].pfn & XEN_PFN_MASK;
		if (nruns && runs[nruns - 1].pfn + runs[nruns - 1].count == p) {
			runs[nruns - 1].count++;
			continue;
		}
		if (nruns == XSR_MAX_RUNS && (s->code = XSR_E_LIMIT))
			return fail(s, "guest memory has more than %u separate pfn ranges: an image cannot describe it",
				    XSR_MAX_RUNS);
		runs[nruns++] = (struct xsr_memrun){p, 1};
	}
	wi->nruns = nruns;
	return 0;
}

/* The vCPU count; HVM vCPUs come from the last HVM_CONTEXT, kept in wi->hvmctx. */
static int find_vcpus(struct src *s, struct wimg *wi)
{
	struct xen_vcpus vs = {0};
	if (s->guest == XEN_DHDR_X86_HVM && !s->is_core && s->last[XEN_RT_HVM_CONTEXT] >= 0) {
		const struct item *it = &s->items[s->last[XEN_RT_HVM_CONTEXT]];
		wi->hvmctx = malloc(it->len);
		if (!wi->hvmctx)
			return fail(s, "out of memory");
		if (rd(s, it->off, wi->hvmctx, it->len, "HVM_CONTEXT") < 0)
			return -1;
		const char *why = xen_hvm_scan(wi->hvmctx, it->len, &vs);
		if (why)
			return fail(s, "libxc HVM_CONTEXT (0x9) record at offset 0x%llx: %s", (unsigned long long)it->off - 8,
				    why);
	}
	wi->nr_vcpus = count_vcpus(s, &vs);
	if ((!wi->nr_vcpus || wi->nr_vcpus > XSR_MAX_VCPUS) && (s->code = XSR_E_LIMIT))
		return fail(s, "%u vCPUs: must be 1..%u", wi->nr_vcpus, XSR_MAX_VCPUS);
	return 0;
}

/*
 * The writer: the one follow mode opened if the stream kept to its plan
 * (its pages are in), else a new one on @out, with @o->begin called.
 */
static int open_writer(struct src *s, const struct xsr_xen_import_opts *o, int out, struct wimg *wi)
{
	if (s->sw && !s->sw_off && wi->nruns == 1 && wi->runs[0].pfn == s->sw_run.pfn &&
	    wi->runs[0].count == s->sw_run.count && wi->nr_vcpus == o->vcpus_hint) {
		wi->w = s->sw;
		wi->streamed = 1;
		s->overlapped = 1;
	} else if (o->pages) {
		return fail(s, "native save: the stream did not keep to its plan (%u run(s), %u vCPUs, %u expected)",
			    wi->nruns, wi->nr_vcpus, o->vcpus_hint);
	} else if (s->sw) {
		xsr_writer_abort(s->sw); /* off the plan: start again (a seekable target is truncated) */
	}
	s->sw = NULL;
	char ver[160];
	producer_version(s, ver, sizeof(ver));
	struct xsr_writer_params p = {
		.machine = EM_X86_64, .kind = s->is_core ? XSR_KIND_CORE : XSR_KIND_SAVE,
		.layout = (uint8_t)o->layout, .nr_vcpus = wi->nr_vcpus,
		.nr_runs = wi->nruns, .runs = wi->runs, .hypervisor = "xen", .hypervisor_version = ver,
		.compress = o->compress,
	};
	if (o->kind)
		p.kind = o->kind;
	struct xsr_xen_pv pv;
	int have_pv = xen_pv_map(s, o, &pv, &wi->mfnmap);
	if (have_pv < 0)
		return -1;
	if (have_pv)
		p.xen_pv = &pv;
	if (wi->streamed)
		return 0;
	int rc = xsr_writer_open(&wi->w, out, &p, s->err, sizeof(s->err));
	if (rc == 0 && o->begin && (rc = o->begin(o->begin_ctx, wi->w, s->err, sizeof(s->err))) >= 0)
		rc = 0;
	if (rc < 0)
		s->code = rc < -1 ? rc : XSR_E_IO;
	return rc < 0 ? -1 : 0;
}

/* 1. every non-page item, verbatim, in order, as PASSTHRU (struct xsr_passthru_hdr, then the item) */
static int write_passthru(struct src *s, struct xsr_writer *w)
{
	for (size_t i = 0; i < s->nitems; i++) {
		const struct item *it = &s->items[i];
		uint64_t len;
		uint8_t *b = read_item(s, it, &len);
		if (!b)
			return -1;
		struct xsr_passthru_hdr h = {.type = it->type, .length = (uint32_t)(len - sizeof(h)),
					     .origin = it->origin, .flags = it->flags, .seq = (uint32_t)i};
		memcpy(b, &h, sizeof(h));
		int r = xsr_writer_add(w, XSR_SEC_PASSTHRU, 0, b, len);
		free(b);
		if (r < 0) {
			s->code = r;
			return fail(s, "PASSTHRU section for item %zu: %s", i, xsr_writer_error(w));
		}
	}
	return 0;
}

/* 2a. CONFIG (the xl configuration), XENSTORE and EMULATOR */
static int write_config(struct src *s, struct xsr_writer *w)
{
	if (s->config_len) {
		uint8_t *c = malloc(s->config_len);
		if (!c || rd(s, (uint64_t)s->config_off, c, s->config_len, "xl config") < 0) {
			free(c);
			return c ? -1 : fail(s, "out of memory");
		}
		int r = xsr_writer_add(w, XSR_SEC_CONFIG, 0, c, s->config_len);
		free(c);
		if (r < 0)
			return wfail(s, w, r, "CONFIG section");
	}
	for (size_t i = 0; i < s->nitems; i++) {
		const struct item *it = &s->items[i];
		if (it->origin != XSR_PT_ORIGIN_LIBXL_RECORD ||
		    (it->type != XEN_LT_EMULATOR_XENSTORE_DATA && it->type != XEN_LT_EMULATOR_CONTEXT))
			continue;
		uint64_t len;
		uint8_t *b = read_item(s, it, &len);
		if (!b)
			return -1;
		/*
		 * A libxl record that begins as the domain's subtree does (emulator id
		 * XSR_XS_MAGIC, which no libxl has) would read as one: it keeps its
		 * PASSTHRU copy only, so the import stays lossless all the same.
		 */
		if (it->type == XEN_LT_EMULATOR_XENSTORE_DATA &&
		    xsr_xs_is_subtree(b + sizeof(struct xsr_passthru_hdr), it->len)) {
			free(b);
			continue;
		}
		int r = xsr_writer_add(w, it->type == XEN_LT_EMULATOR_CONTEXT ? XSR_SEC_EMULATOR : XSR_SEC_XENSTORE, 0,
				       b + sizeof(struct xsr_passthru_hdr), it->len);
		free(b);
		if (r < 0)
			return wfail(s, w, r, "emulator/xenstore section");
	}
	return 0;
}

/* 2b. DOMCTX from the last record of each kind, then P2M */
static int write_domctx(struct src *s, struct xsr_writer *w)
{
	struct dcbuf dc = {0};
	int rc = -1;
	if (dc_add(s, &dc, XSR_DC_PV_INFO, s->last[XEN_RT_X86_PV_INFO], 0) < 0 ||
	    dc_add(s, &dc, XSR_DC_SHARED_INFO, s->last[XEN_RT_SHARED_INFO], 0) < 0 ||
	    dc_add(s, &dc, XSR_DC_TSC_INFO, s->last[XEN_RT_X86_TSC_INFO], 0) < 0 ||
	    dc_add(s, &dc, XSR_DC_HVM_CONTEXT, s->last[XEN_RT_HVM_CONTEXT], 0) < 0 ||
	    dc_add(s, &dc, XSR_DC_HVM_PARAMS, s->last[XEN_RT_HVM_PARAMS], 0) < 0 ||
	    dc_add(s, &dc, XSR_DC_CPUID_POLICY, s->last[XEN_RT_X86_CPUID_POLICY], 0) < 0 ||
	    dc_add(s, &dc, XSR_DC_MSR_POLICY, s->last[XEN_RT_X86_MSR_POLICY], 0) < 0)
		goto out;
	if (s->is_core && s->core_has_shinfo) {
		struct item tmp = {.off = s->core_shinfo_off, .len = 4096};
		size_t save = s->nitems;
		if (add_item(s, 0, 0, 0, tmp.off, tmp.len) < 0 || dc_add(s, &dc, XSR_DC_SHARED_INFO, (long)save, 0) < 0)
			goto out;
		s->nitems = save;
	}
	int r = dc.len ? xsr_writer_add(w, XSR_SEC_DOMCTX, 0, dc.b, dc.len) : 0;
	if (r < 0) {
		wfail(s, w, r, "DOMCTX section");
		goto out;
	}
	rc = s->is_core ? core_p2m(s, w) : pv_p2m(s, w);
out:
	free(dc.b);
	return rc;
}

/* vCPU @v of a PV stream: the last record of each kind for it wins; NULL or a reason (*@ioerr: s->err says). */
static const char *pv_vcpu(struct src *s, uint32_t v, uint8_t *ctx, struct xsr_vcpu_state *st, int *ioerr)
{
	const char *why = NULL;
	for (size_t i = 0; i < s->nitems && !why; i++) {
		const struct item *it = &s->items[i];
		if (it->origin != XSR_PT_ORIGIN_LIBXC_RECORD || it->flags || it->len <= 8 || it->len > XEN_VCPU_REC_MAX ||
		    (it->type != XEN_RT_X86_PV_VCPU_BASIC && it->type != XEN_RT_X86_PV_VCPU_XSAVE &&
		     it->type != XEN_RT_X86_PV_VCPU_MSRS))
			continue;
		if (rd(s, it->off, ctx, it->len, "vCPU record") < 0) {
			*ioerr = 1;
			return NULL;
		}
		if (le32(ctx) != v)
			continue;
		if (it->type == XEN_RT_X86_PV_VCPU_BASIC)
			why = xsr_xen_pv_basic(ctx + 8, it->len - 8, s->pv_width ? s->pv_width : 8, st, NULL, NULL);
		else if (it->type == XEN_RT_X86_PV_VCPU_XSAVE)
			xen_pv_xsave(ctx + 8, it->len - 8, st);
		else
			xen_pv_msrs(ctx + 8, it->len - 8, st);
		if (why) {
			fail(s, "libxc %s record at offset 0x%llx: %s", xsr_xen_libxc_rec_name(s->xc_version, it->type),
			     (unsigned long long)it->off - 8, why);
			*ioerr = 1;
			return NULL;
		}
	}
	return NULL;
}

/* 3. the vCPUs, from xc_core's .xen_prstatus, HVM_CONTEXT or the PV vCPU records */
static int write_vcpus(struct src *s, struct wimg *wi)
{
	struct xsr_vcpu_state *st = malloc(sizeof(*st));
	uint8_t *ctx = malloc(XEN_VCPU_REC_MAX);
	int rc = -1;
	if (!st || !ctx) {
		fail(s, "out of memory");
		goto out;
	}
	for (uint32_t v = 0; v < wi->nr_vcpus; v++) {
		memset(&st->r, 0, sizeof(st->r));
		st->r.vcpu_id = v;
		const char *why = NULL;
		int ioerr = 0;
		if (s->is_core) {
			uint64_t sz = sizeof(vcpu_guest_context_x86_64_t);
			if (rd(s, s->core_prstatus_off + v * sz, ctx, sz, "xc_core .xen_prstatus") < 0)
				goto out;
			why = xsr_xen_pv_basic(ctx, sz, 8, st, s->core_is_hvm ? NULL : mfn_to_pfn, s);
		} else if (s->guest == XEN_DHDR_X86_HVM) {
			why = wi->hvmctx ? xsr_xen_hvm_vcpu(wi->hvmctx, s->items[s->last[XEN_RT_HVM_CONTEXT]].len, v, st)
					 : NULL;
		} else {
			why = pv_vcpu(s, v, ctx, st, &ioerr);
			if (ioerr)
				goto out;
		}
		if (why) {
			fail(s, "vCPU %u: %s", v, why);
			goto out;
		}
		st->r.vcpu_id = v;
		int r = xsr_writer_set_vcpu(wi->w, st);
		if (r < 0) {
			s->code = r;
			fail(s, "vCPU %u: %s", v, xsr_writer_error(wi->w));
			goto out;
		}
	}
	rc = 0;
out:
	free(st);
	free(ctx);
	return rc;
}

/* 4. pages, by pfn, read in runs of consecutive input offsets */
static int write_pages(struct src *s, struct xsr_writer *w, const struct xsr_xen_import_opts *o)
{
	enum { B = 256 };
	uint8_t *buf = malloc((size_t)B * 4096);
	uint64_t pfns[B];
	const void *ptrs[B];
	if (!buf)
		return fail(s, "out of memory");
	for (size_t i = 0; i < s->npages;) {
		uint32_t n = 0;
		while (i < s->npages && n < B) {
			const struct page *pg = &s->pages[i];
			pfns[n] = pg->pfn;
			ptrs[n] = NULL;
			if (pg->off) {
				/* coalesce consecutive data offsets into one read */
				uint32_t k = 1;
				while (n + k < B && i + k < s->npages && s->pages[i + k].off == pg->off + k * 4096)
					k++;
				if (rd(s, pg->off, buf + (size_t)n * 4096, (uint64_t)k * 4096, "page data") < 0) {
					free(buf);
					return -1;
				}
				for (uint32_t j = 0; j < k; j++) {
					pfns[n + j] = s->pages[i + j].pfn;
					ptrs[n + j] = buf + (size_t)(n + j) * 4096;
				}
				n += k;
				i += k;
				continue;
			}
			n++;
			i++;
		}
		int r = xsr_writer_put_pages(w, pfns, n, ptrs);
		if (r < 0) {
			free(buf);
			return wfail(s, w, r, "pages");
		}
		if (o->cb.progress)
			o->cb.progress(o->cb.progress_ctx, i, s->npages);
	}
	free(buf);
	return 0;
}

static int write_image(struct src *s, int out, const struct xsr_xen_import_opts *o)
{
	struct wimg wi = {0};
	int rc = -1;
	if (make_runs(s, &wi) < 0 || find_vcpus(s, &wi) < 0)
		goto out;
	timing(s, "stream parsed, runs made %.1f ms", now_ns() / 1e6);
	if (open_writer(s, o, out, &wi) < 0 || write_passthru(s, wi.w) < 0 || write_config(s, wi.w) < 0 ||
	    write_domctx(s, wi.w) < 0 || write_vcpus(s, &wi) < 0 || (!wi.streamed && write_pages(s, wi.w, o) < 0))
		goto out;
	if (o->end && (rc = o->end(o->end_ctx, wi.w, s->err, sizeof(s->err))) < 0) {
		s->code = rc < -1 ? rc : XSR_E_IO;
		rc = -1;
		goto out;
	}
	timing(s, "sections written %.1f ms", now_ns() / 1e6);
	rc = xsr_writer_close(wi.w, s->err, sizeof(s->err));
	wi.w = NULL;
	timing(s, "writer closed %.1f ms", now_ns() / 1e6);
	if (rc < 0)
		s->code = rc;
	s->nr_vcpus = wi.nr_vcpus;
out:
	xsr_writer_abort(wi.w);
	free(wi.runs);
	free(wi.hvmctx);
	free(wi.mfnmap);
	return rc < 0 ? -1 : 0;
}

/* ---------------- detection and the API ---------------- */

static int detect_and_parse(struct src *s)
{
	uint8_t m[32];
	uint64_t end = 0;
	int ended = 0;
	for (size_t i = 0; i < sizeof(s->last) / sizeof(s->last[0]); i++)
		s->last[i] = -1;
	if (s->follow_done)
		grow(s, 48); /* the longest magic: an xl header */
	if (rd(s, 0, m, s->size < 32 ? s->size : 32, "file start") < 0)
		return -1;
	int rc;
	if (s->size >= 32 && !memcmp(m, XEN_XL_MAGIC, 32)) {
		rc = xl_file(s, &end);
	} else if (s->size >= 16 && be64(m) == XEN_LIBXL_IDENT) {
		s->kind = "libxl v2 stream";
		rc = libxl_stream(s, 0, &end);
	} else if (s->size >= 8 && be64(m) == XEN_LIBXC_MARKER) {
		s->kind = "libxc stream";
		uint64_t off;
		rc = libxc_header(s, 0, &off);
		if (rc == 0)
			rc = libxc_records(s, off, 0, &end, &ended);
	} else if (s->size >= 4 && !memcmp(m, ELFMAG, SELFMAG)) {
		rc = core_file(s, &end);
	} else {
		s->code = XSR_E_UNSUPPORTED;
		return fail(s, "not an xl save file, libxl/libxc stream or xc_core dump (unknown magic at offset 0)");
	}
	if (rc < 0)
		return -1;
	if (s->follow_done && s->fd >= 0) { /* the writer may still add (wrongly) past the end: wait for it */
		while (!atomic_load(s->follow_done))
			nanosleep(&(struct timespec){0, 200000}, NULL);
		struct stat sb;
		if (fstat(s->fd, &sb) == 0)
			s->size = (uint64_t)sb.st_size;
	}
	if (end != s->size)
		return fail(s, "%llu octets after the end of the %s at offset 0x%llx", (unsigned long long)(s->size - end),
			    s->kind, (unsigned long long)end);
	return 0;
}

static void src_free(struct src *s)
{
	if (!s)
		return;
	xsr_writer_abort(s->sw);
	free(s->sw_buf);
	free(s->items);
	free(s->pages);
	free(s);
}

/* Parse and write the source @s holds (its in, fd and size set). */
static int import_src(struct src *s, int out_fd, const struct xsr_xen_import_opts *o, struct xsr_xen_import_stats *st,
		      char *err, size_t errlen)
{
	s->o = o;
	s->out = out_fd;
	s->follow_done = o->follow_done;
	if (o->layout != 0 && o->layout != XSR_LAYOUT_SEEKABLE && o->layout != XSR_LAYOUT_STREAM) {
		snprintf(err, errlen, "layout %d: need 0, XSR_LAYOUT_SEEKABLE or XSR_LAYOUT_STREAM", o->layout);
		return XSR_E_INVAL;
	}
	int rc = detect_and_parse(s) < 0 ? -1 : write_image(s, out_fd, o);
	if (rc < 0) {
		snprintf(err, errlen, "%s", s->err);
		rc = s->code < 0 ? s->code : XSR_E_FORMAT;
	}
	if (st) {
		*st = (struct xsr_xen_import_stats){.format = s->kind, .in_size = s->size, .nr_vcpus = s->nr_vcpus,
						    .nr_pages = s->npages, .overlapped = s->overlapped};
	}
	return rc;
}

#if XSR_TESTHOOKS
static int test_hooks(int fd, int out_fd, const struct xsr_xen_import_opts *o, struct xsr_xen_import_stats *st,
		      char *err, size_t errlen);
#endif

int xsr_xen_import_fd(int fd, int out_fd, const struct xsr_xen_import_opts *o, struct xsr_xen_import_stats *st,
		      char *err, size_t errlen)
{
	static const struct xsr_xen_import_opts none;
	if (!o)
		o = &none;
	if (st)
		memset(st, 0, sizeof(*st));
#if XSR_TESTHOOKS
	int hrc = test_hooks(fd, out_fd, o, st, err, errlen);
	if (hrc != 1)
		return hrc;
#endif
	struct stat sb;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "the input must be a regular file (seekable)");
		return XSR_E_INVAL;
	}
	struct src *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return XSR_E_NOMEM;
	}
	xsr_source_fd(&s->in, fd);
	s->fd = fd;
	s->size = (uint64_t)sb.st_size;
	int rc = import_src(s, out_fd, o, st, err, errlen);
	src_free(s);
	return rc;
}

int xsr_xen_import_mem(const void *buf, size_t len, int out_fd, const struct xsr_xen_import_opts *o,
		       struct xsr_xen_import_stats *st, char *err, size_t errlen)
{
	static const struct xsr_xen_import_opts none;
	if (!o)
		o = &none;
	if (st)
		memset(st, 0, sizeof(*st));
	if ((!buf && len) || o->follow_done) {
		snprintf(err, errlen, "xsr_xen_import_mem: %s", o->follow_done ? "follow mode needs an fd" : "no buffer");
		return XSR_E_INVAL;
	}
	struct src *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return XSR_E_NOMEM;
	}
	xsr_source_mem(&s->in, buf, len);
	s->fd = -1;
	s->size = len;
	int rc = import_src(s, out_fd, o, st, err, errlen);
	src_free(s);
	return rc;
}

#if XSR_TESTHOOKS
/*
 * Test hooks of `xsr import` (a plain import: no follow mode, no pages or
 * begin callback).  XSR_IMPORT_TEST_FOLLOW=VCPUS feeds the input through a
 * growing memfd, as libxl's save does (follow mode);
 * XSR_IMPORT_TEST_HOLES punches the page data out of a copy and hands the
 * pages back through the pages callback (the native save's path): the
 * image must be the plain import's, byte for byte.  1: no hook asked for.
 */
struct feeder {
	int in, mfd;
	atomic_int done;
};

static void *feed(void *arg)
{
	struct feeder *f = arg;
	char buf[256 << 10];
	for (;;) {
		ssize_t n = read(f->in, buf, sizeof(buf));
		if (n <= 0 || write(f->mfd, buf, (size_t)n) != n)
			break;
		nanosleep(&(struct timespec){0, 100000}, NULL);
	}
	atomic_store(&f->done, 1);
	return NULL;
}

static int follow_test(int in, int out, const struct xsr_xen_import_opts *base, uint32_t vcpus,
		       struct xsr_xen_import_stats *st, char *err, size_t errlen)
{
	struct feeder f = {.in = in, .mfd = memfd_create("xsr-import-follow", MFD_CLOEXEC)};
	pthread_t t;
	if (f.mfd < 0 || pthread_create(&t, NULL, feed, &f) != 0) {
		snprintf(err, errlen, "follow test: cannot start the feeder");
		return XSR_E_IO;
	}
	struct xsr_xen_import_opts o = {.layout = base->layout, .follow_done = &f.done, .vcpus_hint = vcpus};
	struct xsr_xen_import_stats fs;
	int rc = xsr_xen_import_fd(f.mfd, out, &o, &fs, err, errlen);
	if (base->cb.note)
		base->cb.note(base->cb.note_ctx, fs.overlapped ? "follow test: pages written as they arrived"
							       : "follow test: pages written at the end");
	if (st)
		*st = fs;
	pthread_join(t, NULL);
	close(f.mfd);
	return rc;
}

struct holes {
	int in;
	struct src *orig;
	uint8_t *buf;
};

static int holes_pages(void *ctx, const uint64_t *pfns, uint32_t count, const void **ptrs, char *err, size_t errlen)
{
	struct holes *h = ctx;
	if (!ptrs)
		return 0;
	for (uint32_t i = 0; i < count; i++) {
		const struct page *pg = find_page(h->orig, pfns[i] & XEN_PFN_MASK);
		ptrs[i] = NULL;
		if (!xsr_xen_type_has_data((unsigned)(pfns[i] >> XEN_PFN_TYPE_SHIFT)))
			continue;
		if (!pg || !pg->off || pread(h->in, h->buf + (size_t)i * 4096, 4096, (off_t)pg->off) != 4096) {
			snprintf(err, errlen, "holes test: no data for pfn 0x%llx", (unsigned long long)pfns[i]);
			return -1;
		}
		ptrs[i] = h->buf + (size_t)i * 4096;
	}
	return 0;
}

/* A copy of @in without its page data (holes): every octet else. */
static int holes_copy(int in, int cp, const struct src *o, uint8_t *buf, char *err, size_t errlen)
{
	off_t ip = 0, op = 0;
	if (copy_file_range(in, &ip, cp, &op, (size_t)o->size, 0) != (ssize_t)o->size) {
		for (uint64_t done = 0; done < o->size;) {
			ssize_t n = pread(in, buf, (size_t)1024 * 4096, (off_t)done);
			if (n <= 0 || pwrite(cp, buf, (size_t)n, (off_t)done) != n) {
				snprintf(err, errlen, "holes test: copy failed");
				return -1;
			}
			done += (uint64_t)n;
		}
	}
	for (size_t i = 0; i < o->npages; i++)
		if (o->pages[i].off &&
		    fallocate(cp, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)o->pages[i].off, 4096) < 0) {
			snprintf(err, errlen, "holes test: punching a hole: %s", strerror(errno));
			return -1;
		}
	return 0;
}

static int holes_test(int in, int out, const struct xsr_xen_import_opts *base, struct xsr_xen_import_stats *st,
		      char *err, size_t errlen)
{
	struct src *o = calloc(1, sizeof(*o));
	static const struct xsr_xen_import_opts none;
	struct holes h = {.in = in, .orig = o, .buf = malloc((size_t)1024 * 4096)};
	int rc = XSR_E_IO, cp = memfd_create("xsr-import-holes", MFD_CLOEXEC);
	struct stat sb;
	if (!o || !h.buf || cp < 0 || fstat(in, &sb) < 0) {
		snprintf(err, errlen, "holes test: out of memory");
		goto out;
	}
	xsr_source_fd(&o->in, in);
	o->fd = in;
	o->size = (uint64_t)sb.st_size;
	o->o = &none;
	if (detect_and_parse(o) < 0) {
		snprintf(err, errlen, "%s", o->err);
		rc = o->code < 0 ? o->code : XSR_E_FORMAT;
		goto out;
	}
	final_pages(o);
	struct xen_vcpus vs = {0};
	uint32_t nv = count_vcpus(o, &vs);
	if (holes_copy(in, cp, o, h.buf, err, errlen) < 0)
		goto out;
	struct xsr_xen_import_opts op2 = {.layout = base->layout, .vcpus_hint = nv, .pages = holes_pages, .pages_ctx = &h};
	rc = xsr_xen_import_fd(cp, out, &op2, st, err, errlen);
out:
	if (cp >= 0)
		close(cp);
	if (o) {
		free(o->items);
		free(o->pages);
		free(o);
	}
	free(h.buf);
	return rc;
}

static int test_hooks(int fd, int out_fd, const struct xsr_xen_import_opts *o, struct xsr_xen_import_stats *st,
		      char *err, size_t errlen)
{
	if (o->follow_done || o->pages || o->begin || o->end)
		return 1;
	const char *fv = getenv("XSR_IMPORT_TEST_FOLLOW");
	if (fv)
		return follow_test(fd, out_fd, o, (uint32_t)atoi(fv), st, err, errlen);
	if (getenv("XSR_IMPORT_TEST_HOLES"))
		return holes_test(fd, out_fd, o, st, err, errlen);
	return 1;
}
#endif
