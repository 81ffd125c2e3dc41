/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Import (xsrelf/libvirt.h): a `virsh save` file -> one xsrelf image.
 * docs/qemu-compat.md, "libvirt save files", is the mapping.
 *
 * The header is checked whole before anything is read after it; the
 * domain XML, cookie and padding are kept verbatim as the first PASSTHRU
 * item; the QEMU stream after them goes to the QEMU import, in place when
 * it is raw, else inflated first into an unlinked temporary file (the QEMU
 * import reads its input twice and from the end, which a decompressor
 * cannot).  The five decompressors stream 1 MiB at a time, so memory is
 * bounded by their own state (xz: LV_XZ_MEMLIMIT; zstd: a window of at most
 * 2^LV_ZSTD_WINDOWLOG octets; lzop: two buffers of its largest block, at
 * most LZOP_MAX_BLOCK each), never by the stream.
 */
#include <bzlib.h>
#include <errno.h>
#include <fcntl.h>
#include <lzma.h>
#include <lzo/lzo1x.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <xsrelf/libvirt.h>
#include <xsrelf/reader.h>

#include "internal.h"
#include "qemu_internal.h"

/* Limits (docs/limits.md, "libvirt save import"). */
#define LV_MAX_DATA (16u << 20)     /* data_len: XML, cookie and padding (libvirt pads 64 KiB) */
#define LV_CHUNK (1u << 20)         /* octets read and inflated at once (at most) */
#define LV_XZ_MEMLIMIT (256u << 20) /* the xz decoder's memory (xz -9 needs 65 MiB) */
#define LV_ZSTD_WINDOWLOG 27       /* the zstd decoder's window: 128 MiB, the zstd tool's own default limit */
#define LZOP_MAX_BLOCK (64u << 20)  /* lzop's own MAX_BLOCK_SIZE */
#define LZOP_MAX_EXTRA (64u << 10)  /* an lzop header's extra field (lzop writes none) */
/*
 * The default bound of an inflated stream (max_stream 0): twice the RAM its
 * ram section declares plus LV_STREAM_SLACK, else LV_STREAM_FALLBACK where
 * the first LV_HEAD octets declare none.
 */
#define LV_HEAD 4096u
#define LV_STREAM_SLACK (256ull << 20)
#define LV_STREAM_FALLBACK (64ull << 30)

/* lzop's header flags (lzop conf.h) */
#define F_ADLER32_D 0x1u
#define F_ADLER32_C 0x2u
#define F_H_EXTRA_FIELD 0x40u
#define F_CRC32_D 0x100u
#define F_CRC32_C 0x200u
#define F_MULTIPART 0x400u
#define F_H_FILTER 0x800u
#define F_H_CRC32 0x1000u
#define F_RESERVED 0x000fc000u /* neither F_MASK (0x3fff), the OS nor the character set */
#define LZOP_VERSION 0x1040u   /* the newest lzop format version (lzop 1.04) */

struct lv {
	struct xsr_source in;
	uint64_t size;
	char err[768];
	int code;
	/* the header */
	uint32_t version, data_len, was_running, compressed, cookie, xml_len;
	int swapped;
	uint8_t *item; /* header + data_len octets */
	uint64_t pay;  /* where the QEMU stream begins */
	char domain[256], uuid[64];
	/* inflating */
	int tmp;
	uint64_t out, max_out;
	int max_derived;        /* max_out is the default bound: 1 from the declared RAM, 2 the fallback */
	uint64_t declared_ram;  /* octets of RAM the ram section declares, once seen */
	uint8_t head[LV_HEAD];  /* the inflated stream's first octets */
	uint8_t *ibuf, *obuf;
	size_t ocap; /* obuf's octets: LV_CHUNK, or LV_CHUNK / 16 for a payload under that */
};

static int fail(struct lv *v, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct lv *v, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->err, sizeof(v->err), fmt, ap);
	va_end(ap);
	v->code = code;
	return -1;
}

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint32_t bswap(uint32_t x) { return x >> 24 | (x >> 8 & 0xff00u) | (x << 8 & 0xff0000u) | x << 24; }

const char *xsr_libvirt_compress_name(uint32_t c)
{
	static const char *const n[] = {"raw", "gzip", "bzip2", "xz", "lzop", "zstd", "sparse"};
	return c < sizeof(n) / sizeof(n[0]) ? n[c] : "unknown";
}

/* Exactly @len octets at @off. */
static int rd(struct lv *v, uint64_t off, void *buf, size_t len, const char *what)
{
	if (!xsr_in_bounds(off, len, v->size))
		return fail(v, XSR_E_TRUNCATED, "libvirt save: %s at offset 0x%llx: needs %zu octets but the file ends at 0x%llx (truncated)",
			    what, (unsigned long long)off, len, (unsigned long long)v->size);
	int e = v->in.ops->pread(&v->in, buf, len, off);
	if (e < 0)
		return fail(v, XSR_E_IO, "libvirt save: %s at offset 0x%llx: read failed: %s", what, (unsigned long long)off,
			    strerror(-e));
	return 0;
}

/* ---------------- the header ---------------- */

/* The text of the first <@tag>...</@tag> of the XML, as written, into @out; "" if none. */
static void xml_text(const char *xml, size_t len, const char *tag, char *out, size_t outlen)
{
	char open[16], close[16];
	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	out[0] = 0;
	const char *a = memmem(xml, len, open, strlen(open));
	if (!a)
		return;
	a += strlen(open);
	const char *b = memmem(a, len - (size_t)(a - xml), close, strlen(close));
	if (b && (size_t)(b - a) < outlen) {
		memcpy(out, a, (size_t)(b - a));
		out[b - a] = 0;
	}
}

static int header(struct lv *v)
{
	uint8_t h[XSR_LIBVIRT_SAVE_HDR];
	if (v->size < sizeof(h))
		return fail(v, XSR_E_TRUNCATED, "libvirt save header at offset 0x0: the file has %llu octets, the header %u (truncated)",
			    (unsigned long long)v->size, XSR_LIBVIRT_SAVE_HDR);
	if (rd(v, 0, h, sizeof(h), "header") < 0)
		return -1;
	if (!memcmp(h, XSR_LIBVIRT_SAVE_PARTIAL, 16))
		return fail(v, XSR_E_FORMAT, "libvirt save header at offset 0x0: magic '" XSR_LIBVIRT_SAVE_PARTIAL "': an incomplete "
					     "save (libvirt had not finished writing it; was `virsh save` interrupted?)");
	if (memcmp(h, XSR_LIBVIRT_SAVE_MAGIC, 16))
		return fail(v, XSR_E_FORMAT, "libvirt save header at offset 0x0: not the magic '" XSR_LIBVIRT_SAVE_MAGIC "'");
	uint32_t f[5];
	for (int i = 0; i < 5; i++)
		f[i] = le32(h + 16 + 4 * i);
	if (f[0] > 2) { /* as libvirt: a version too large is a header of the other byte order */
		for (int i = 0; i < 5; i++)
			f[i] = bswap(f[i]);
		v->swapped = 1;
	}
	v->version = f[0], v->data_len = f[1], v->was_running = f[2], v->compressed = f[3], v->cookie = f[4];
	if (v->version < 1 || v->version > 2)
		return fail(v, XSR_E_UNSUPPORTED, "libvirt save header at offset 0x10: version 0x%08x (1 and 2 are known, in "
						  "either byte order)", le32(h + 16));
	for (unsigned o = 36; o < sizeof(h); o += 4)
		if (le32(h + o))
			return fail(v, XSR_E_FORMAT, "libvirt save header at offset 0x%x: unused field is 0x%08x, not 0", o, le32(h + o));
	if (v->was_running > 1)
		return fail(v, XSR_E_FORMAT, "libvirt save header at offset 0x18: was_running %u (0 or 1)", v->was_running);
	if (v->compressed == 6)
		return fail(v, XSR_E_UNSUPPORTED, "libvirt save header at offset 0x1c: compression %u (%s: QEMU's mapped-ram "
						  "layout) is not supported (raw, gzip, bzip2, xz, lzop and zstd are)",
			    v->compressed, xsr_libvirt_compress_name(v->compressed));
	if (v->compressed > XSR_LIBVIRT_ZSTD)
		return fail(v, XSR_E_FORMAT, "libvirt save header at offset 0x1c: unknown compression %u (libvirt knows 0..6)",
			    v->compressed);
	if (v->data_len == 0)
		return fail(v, XSR_E_FORMAT, "libvirt save header at offset 0x14: data_len 0 (no domain XML)");
	if (v->data_len > LV_MAX_DATA)
		return fail(v, XSR_E_LIMIT, "libvirt save header at offset 0x14: data_len %u: more than %u octets of XML",
			    v->data_len, LV_MAX_DATA);
	v->pay = XSR_LIBVIRT_SAVE_HDR + (uint64_t)v->data_len;
	if (v->pay >= v->size)
		return fail(v, XSR_E_TRUNCATED, "libvirt save header at offset 0x14: data_len %u puts the QEMU stream at 0x%llx, "
						"but the file ends at 0x%llx (truncated)",
			    v->data_len, (unsigned long long)v->pay, (unsigned long long)v->size);
	if (v->cookie > v->data_len)
		return fail(v, XSR_E_FORMAT, "libvirt save header at offset 0x20: cookieOffset %u is past data_len %u", v->cookie,
			    v->data_len);
	v->xml_len = v->cookie ? v->cookie : v->data_len;
	if (v->version == 1)
		v->compressed = XSR_LIBVIRT_RAW; /* libvirt inflates version 2 files only */
	if (!(v->item = malloc(v->pay)))
		return fail(v, XSR_E_NOMEM, "out of memory");
	memcpy(v->item, h, sizeof(h));
	if (rd(v, sizeof(h), v->item + sizeof(h), v->data_len, "domain XML") < 0)
		return -1;
	const char *xml = (const char *)v->item + sizeof(h);
	size_t n = strnlen(xml, v->xml_len);
	if (n == v->xml_len || n == 0)
		return fail(v, XSR_E_FORMAT, "libvirt save: domain XML at offset 0x%x: %s", XSR_LIBVIRT_SAVE_HDR,
			    n ? "not NUL-terminated within its length" : "empty");
	xml_text(xml, n, "name", v->domain, sizeof(v->domain));
	xml_text(xml, n, "uuid", v->uuid, sizeof(v->uuid));
	return 0;
}

/* ---------------- inflating ---------------- */

/*
 * The RAM the stream declares, from its first @len octets: after the header
 * and an optional CONFIGURATION section (as QEMU 7.2 writes them, with no
 * subsection), the first SECTION_START must be "ram" and its first entry
 * MEM_SIZE.  0 where they do not say (the caller then uses a fixed bound).
 */
static uint64_t declared_ram(const uint8_t *h, size_t len)
{
	size_t o = 8;
	if (o < len && h[o] == QEMU_VM_CONFIGURATION) {
		if (len - o < 5)
			return 0;
		uint32_t n = be32(h + o + 1);
		if (n > len - o - 5)
			return 0;
		o += 5 + n;
	}
	/* SECTION_START, id, idstr "ram", instance 0, version 4, then the MEM_SIZE entry */
	if (len - o < 1 + 4 + 1 + 3 + 4 + 4 + 8 || h[o] != QEMU_VM_SECTION_START || h[o + 5] != 3 || memcmp(h + o + 6, "ram", 3))
		return 0;
	o += 1 + 4 + 1 + 3 + 4 + 4;
	uint64_t e = (uint64_t)be32(h + o) << 32 | be32(h + o + 4);
	return (e & 0xfffu) == QEMU_RAM_FLAG_MEM_SIZE ? e & ~(uint64_t)0xfff : 0;
}

/* Set the default bound once the first LV_HEAD octets have come (a shorter stream needs none). */
static void derive_bound(struct lv *v)
{
	if (v->max_out || !v->max_derived)
		return;
	uint64_t ram = declared_ram(v->head, LV_HEAD), b;
	if (ram && !__builtin_mul_overflow(ram, 2, &b) && !__builtin_add_overflow(b, LV_STREAM_SLACK, &b)) {
		v->declared_ram = ram;
		v->max_out = b;
	} else {
		v->max_derived = 2;
		v->max_out = LV_STREAM_FALLBACK;
	}
}

static int put_out(struct lv *v, const void *b, size_t n)
{
	/*
	 * The first 8 octets must be a QEMU stream's header ("QEVM", version
	 * 3), else the file is refused now, not after inflating all of it: a
	 * decompression bomb of anything else costs one chunk.  The first
	 * LV_HEAD octets are kept to find the RAM the stream declares.
	 */
	if (v->out < LV_HEAD) {
		size_t k = n < LV_HEAD - v->out ? n : (size_t)(LV_HEAD - v->out);
		uint64_t was = v->out;
		memcpy(v->head + v->out, b, k);
		if (was < 8 && was + k >= 8 && (be32(v->head) != QEMU_VM_FILE_MAGIC || be32(v->head + 4) != QEMU_VM_FILE_VERSION))
			return fail(v, XSR_E_FORMAT, "libvirt save: the %s stream at offset 0x%llx does not inflate to a QEMU "
						     "migration stream v3 (no \"QEVM\" and version 3 at its start)",
				    xsr_libvirt_compress_name(v->compressed), (unsigned long long)v->pay);
		if (was + k == LV_HEAD)
			derive_bound(v);
	}
	if (v->max_out && (v->out > v->max_out || n > v->max_out - v->out)) {
		if (v->max_derived == 1)
			return fail(v, XSR_E_LIMIT, "libvirt save: the %s stream inflates to more than %llu octets: twice the "
						    "%llu octets of RAM it declares plus %llu MiB (a decompression bomb?  "
						    "xsr import --max-stream SIZE|none overrides)",
				    xsr_libvirt_compress_name(v->compressed), (unsigned long long)v->max_out,
				    (unsigned long long)v->declared_ram, LV_STREAM_SLACK >> 20);
		if (v->max_derived == 2)
			return fail(v, XSR_E_LIMIT, "libvirt save: the %s stream inflates to more than %llu GiB and its start "
						    "declares no RAM size to bound it by (xsr import --max-stream SIZE|none overrides)",
				    xsr_libvirt_compress_name(v->compressed), LV_STREAM_FALLBACK >> 30);
		return fail(v, XSR_E_LIMIT, "libvirt save: the %s stream inflates to more than %llu octets (max_stream)",
			    xsr_libvirt_compress_name(v->compressed), (unsigned long long)v->max_out);
	}
	int e = xsr_io_write(v->tmp, b, n);
	if (e < 0)
		return fail(v, XSR_E_IO, "libvirt save: writing the inflated stream to a temporary file: %s", strerror(-e));
	v->out += n;
	return 0;
}

/* The next up to LV_CHUNK octets at *@pos into ibuf: their count, 0 at the end of the file, or -1. */
static ssize_t next_in(struct lv *v, uint64_t *pos)
{
	size_t n = v->size - *pos < LV_CHUNK ? (size_t)(v->size - *pos) : LV_CHUNK;
	if (n && rd(v, *pos, v->ibuf, n, "compressed stream") < 0)
		return -1;
	*pos += n;
	return (ssize_t)n;
}

static int cut(struct lv *v)
{
	return fail(v, XSR_E_TRUNCATED, "libvirt save: the %s stream at offset 0x%llx ends before its end marker, at 0x%llx "
					"(truncated)", xsr_libvirt_compress_name(v->compressed), (unsigned long long)v->pay,
		    (unsigned long long)v->size);
}

static int trailing(struct lv *v, uint64_t at)
{
	return fail(v, XSR_E_FORMAT, "libvirt save: %s stream at offset 0x%llx: octets after its end at 0x%llx that start no "
				     "further member", xsr_libvirt_compress_name(v->compressed), (unsigned long long)v->pay,
		    (unsigned long long)at);
}

static int corrupt(struct lv *v, uint64_t at, const char *why)
{
	return fail(v, XSR_E_FORMAT, "libvirt save: %s stream, near offset 0x%llx: %s", xsr_libvirt_compress_name(v->compressed),
		    (unsigned long long)at, why);
}

/* gzip members, one after the other (as `gzip -dc`). */
static int gunzip(struct lv *v)
{
	z_stream z = {0};
	if (inflateInit2(&z, 15 + 16) != Z_OK)
		return fail(v, XSR_E_NOMEM, "out of memory (zlib)");
	uint64_t pos = v->pay;
	int rc = -1, end = 0;
	for (;;) {
		if (z.avail_in == 0) {
			ssize_t n = next_in(v, &pos);
			if (n < 0)
				break;
			if (n == 0) {
				rc = end ? 0 : cut(v);
				break;
			}
			z.next_in = v->ibuf;
			z.avail_in = (uInt)n;
		}
		if (end) { /* more octets: another member, or refused */
			if (z.next_in[0] != 0x1f) {
				trailing(v, pos - z.avail_in);
				break;
			}
			inflateReset(&z);
			end = 0;
		}
		z.next_out = v->obuf;
		z.avail_out = (uInt)v->ocap;
		int r = inflate(&z, Z_NO_FLUSH);
		size_t got = v->ocap - z.avail_out;
		if (got && put_out(v, v->obuf, got) < 0)
			break;
		if (r == Z_STREAM_END)
			end = 1;
		else if (r != Z_OK && !(r == Z_BUF_ERROR && z.avail_in == 0)) {
			corrupt(v, pos - z.avail_in, z.msg ? z.msg : "zlib refused it");
			break;
		}
	}
	inflateEnd(&z);
	return rc;
}

/* bzip2 streams, one after the other (as `bzip2 -dc`). */
static int bunzip(struct lv *v)
{
	bz_stream b = {0};
	if (BZ2_bzDecompressInit(&b, 0, 0) != BZ_OK)
		return fail(v, XSR_E_NOMEM, "out of memory (bzip2)");
	uint64_t pos = v->pay;
	int rc = -1, end = 0;
	for (;;) {
		if (b.avail_in == 0) {
			ssize_t n = next_in(v, &pos);
			if (n < 0)
				break;
			if (n == 0) {
				rc = end ? 0 : cut(v);
				break;
			}
			b.next_in = (char *)v->ibuf;
			b.avail_in = (unsigned)n;
		}
		if (end) {
			if (b.next_in[0] != 'B') {
				trailing(v, pos - b.avail_in);
				break;
			}
			BZ2_bzDecompressEnd(&b);
			char *ni = b.next_in;
			unsigned ai = b.avail_in;
			b = (bz_stream){0};
			if (BZ2_bzDecompressInit(&b, 0, 0) != BZ_OK) {
				fail(v, XSR_E_NOMEM, "out of memory (bzip2)");
				return -1;
			}
			b.next_in = ni, b.avail_in = ai;
			end = 0;
		}
		b.next_out = (char *)v->obuf;
		b.avail_out = (unsigned)v->ocap;
		int r = BZ2_bzDecompress(&b);
		size_t got = v->ocap - b.avail_out;
		if (got && put_out(v, v->obuf, got) < 0)
			break;
		if (r == BZ_STREAM_END)
			end = 1;
		else if (r != BZ_OK) {
			corrupt(v, pos - b.avail_in, r == BZ_DATA_ERROR_MAGIC ? "not bzip2 data (magic)"
						     : r == BZ_MEM_ERROR	  ? "out of memory"
											  : "bzip2 data error (CRC or structure)");
			break;
		}
	}
	BZ2_bzDecompressEnd(&b);
	return rc;
}

/* xz streams, concatenated as `xz -dc` takes them. */
static int unxz(struct lv *v)
{
	lzma_stream s = LZMA_STREAM_INIT;
	if (lzma_stream_decoder(&s, LV_XZ_MEMLIMIT, LZMA_CONCATENATED) != LZMA_OK)
		return fail(v, XSR_E_NOMEM, "out of memory (xz)");
	uint64_t pos = v->pay;
	int rc = -1;
	lzma_action act = LZMA_RUN;
	for (;;) {
		if (s.avail_in == 0 && act == LZMA_RUN) {
			ssize_t n = next_in(v, &pos);
			if (n < 0)
				break;
			if (n == 0)
				act = LZMA_FINISH;
			s.next_in = v->ibuf;
			s.avail_in = (size_t)n;
		}
		s.next_out = v->obuf;
		s.avail_out = v->ocap;
		lzma_ret r = lzma_code(&s, act);
		size_t got = v->ocap - s.avail_out;
		if (got && put_out(v, v->obuf, got) < 0)
			break;
		if (r == LZMA_STREAM_END) {
			rc = 0;
			break;
		}
		if (r == LZMA_OK)
			continue;
		if (r == LZMA_BUF_ERROR && act == LZMA_FINISH)
			cut(v);
		else if (r == LZMA_MEMLIMIT_ERROR)
			fail(v, XSR_E_LIMIT, "libvirt save: xz stream near offset 0x%llx needs more than %u MiB to decode",
			     (unsigned long long)(pos - s.avail_in), LV_XZ_MEMLIMIT >> 20);
		else
			corrupt(v, pos - s.avail_in, r == LZMA_FORMAT_ERROR ? "not xz data (magic)"
						     : r == LZMA_OPTIONS_ERROR ? "unsupported xz options"
						     : r == LZMA_MEM_ERROR     ? "out of memory"
									       : "xz data error (check or structure)");
		break;
	}
	lzma_end(&s);
	return rc;
}

/*
 * zstd frames, one after the other (as `zstd -dc`; skippable frames are
 * skipped), the window bounded by LV_ZSTD_WINDOWLOG.
 */
static int unzstd(struct lv *v)
{
	ZSTD_DCtx *z = ZSTD_createDCtx();
	if (!z)
		return fail(v, XSR_E_NOMEM, "out of memory (zstd)");
	if (ZSTD_isError(ZSTD_DCtx_setParameter(z, ZSTD_d_windowLogMax, LV_ZSTD_WINDOWLOG))) {
		ZSTD_freeDCtx(z);
		return fail(v, XSR_E_NOMEM, "zstd: cannot bound the decoder's window");
	}
	uint64_t pos = v->pay;
	int rc = -1;
	size_t left = 1; /* not at the end of a frame */
	int full = 0;    /* the last call filled obuf: the decoder may hold more */
	ZSTD_inBuffer in = {v->ibuf, 0, 0};
	for (;;) {
		if (in.pos == in.size && !full) {
			ssize_t n = next_in(v, &pos);
			if (n < 0)
				break;
			if (n == 0) {
				rc = left == 0 ? 0 : cut(v);
				break;
			}
			in = (ZSTD_inBuffer){v->ibuf, (size_t)n, 0};
		}
		ZSTD_outBuffer out = {v->obuf, v->ocap, 0};
		size_t was = left;
		/* where this call starts reading: zstd may move in.pos before it fails */
		uint64_t at = pos - (in.size - in.pos);
		left = ZSTD_decompressStream(z, &out, &in);
		if (ZSTD_isError(left)) {
			ZSTD_ErrorCode c = ZSTD_getErrorCode(left);
			if (c == ZSTD_error_prefix_unknown && was == 0 && at > v->pay)
				trailing(v, at);
			else if (c == ZSTD_error_frameParameter_windowTooLarge)
				fail(v, XSR_E_LIMIT, "libvirt save: zstd frame near offset 0x%llx needs a window larger than "
						     "%u MiB to decode",
				     (unsigned long long)at, (1u << LV_ZSTD_WINDOWLOG) >> 20);
			else
				corrupt(v, at, c == ZSTD_error_prefix_unknown ? "not zstd data (magic)" : ZSTD_getErrorName(left));
			break;
		}
		/* 0: a frame decoded and flushed whole; else a full obuf may leave output in the decoder */
		full = left != 0 && out.pos == out.size;
		if (out.pos && put_out(v, v->obuf, out.pos) < 0)
			break;
	}
	ZSTD_freeDCtx(z);
	return rc;
}

/* lzop: one file header at *@pos, checked; *@flags set, *@pos past it. */
static int lzop_header(struct lv *v, uint64_t *pos, uint32_t *flags)
{
	static const uint8_t magic[9] = {0x89, 'L', 'Z', 'O', 0x00, 0x0d, 0x0a, 0x1a, 0x0a};
	uint8_t h[9 + 2 + 2 + 2 + 1 + 1 + 4 + 4 + 4 + 4 + 4 + 1 + 255 + 4];
	size_t have = v->size - *pos < sizeof(h) ? (size_t)(v->size - *pos) : sizeof(h), i = 9;
	uint64_t at = *pos;
	if (rd(v, at, h, have, "lzop header") < 0)
		return -1;
	if (have < 9 || memcmp(h, magic, 9))
		return corrupt(v, at, "not an lzop file (magic)");
#define NEED(k)                                                                                                        \
	do {                                                                                                           \
		if (have - i < (k))                                                                                    \
			return fail(v, XSR_E_TRUNCATED, "libvirt save: lzop header at offset 0x%llx: cut short (truncated)", \
				    (unsigned long long)at);                                                       \
	} while (0)
	NEED(4);
	unsigned version = h[i] << 8 | h[i + 1];
	i += 4; /* and lib_version */
	if (version < 0x0900)
		return corrupt(v, at, "lzop header: format version older than 0.90");
	if (version >= 0x0940) {
		NEED(2);
		unsigned need = h[i] << 8 | h[i + 1];
		i += 2;
		if (need > LZOP_VERSION)
			return fail(v, XSR_E_UNSUPPORTED, "libvirt save: lzop header at offset 0x%llx: needs lzop %x.%02x to extract",
				    (unsigned long long)at, need >> 12, need >> 4 & 0xff);
	}
	NEED(1);
	unsigned method = h[i++];
	if (version >= 0x0940) {
		NEED(1);
		i++; /* level */
	}
	NEED(4);
	*flags = be32(h + i);
	i += 4;
	if (*flags & (F_H_FILTER | F_MULTIPART | F_RESERVED))
		return fail(v, XSR_E_UNSUPPORTED, "libvirt save: lzop header at offset 0x%llx: flags 0x%08x (a filter, multipart "
						  "or reserved bits: lzop itself refuses them)", (unsigned long long)at, *flags);
	if (method < 1 || method > 3)
		return fail(v, XSR_E_UNSUPPORTED, "libvirt save: lzop header at offset 0x%llx: method %u (LZO1X, 1..3, is "
						  "supported)", (unsigned long long)at, method);
	NEED(version >= 0x0940 ? 12u : 8u); /* mode, mtime low (and high) */
	i += version >= 0x0940 ? 12u : 8u;
	NEED(1);
	size_t nl = h[i++];
	NEED(nl + 4);
	i += nl;
	uint32_t want = be32(h + i);
	uint32_t sum = *flags & F_H_CRC32 ? lzo_crc32(0, h + 9, i - 9) : lzo_adler32(1, h + 9, i - 9);
	if (sum != want)
		return corrupt(v, at, "lzop header checksum does not match");
	*pos += i + 4;
#undef NEED
	if (*flags & F_H_EXTRA_FIELD) {
		uint8_t l[4];
		if (rd(v, *pos, l, 4, "lzop extra field") < 0)
			return -1;
		uint32_t len = be32(l);
		if (len > LZOP_MAX_EXTRA)
			return fail(v, XSR_E_LIMIT, "libvirt save: lzop extra field at offset 0x%llx: %u octets (at most %u)",
				    (unsigned long long)*pos, len, LZOP_MAX_EXTRA);
		uint8_t *x = malloc(4 + len + 4);
		if (!x)
			return fail(v, XSR_E_NOMEM, "out of memory");
		int r = rd(v, *pos, x, 4 + len + 4, "lzop extra field");
		if (r == 0) {
			sum = *flags & F_H_CRC32 ? lzo_crc32(0, x, 4 + len) : lzo_adler32(1, x, 4 + len);
			if (sum != be32(x + 4 + len))
				r = corrupt(v, *pos, "lzop extra field checksum does not match");
		}
		free(x);
		if (r < 0)
			return -1;
		*pos += 4 + len + 4;
	}
	return 0;
}

/* One lzop block at *@pos: 1 after the end marker, 0 after a block, -1. @buf/@cap: the two block buffers. */
static int lzop_block(struct lv *v, uint64_t *pos, uint32_t flags, uint8_t **buf, size_t *cap)
{
	uint8_t b[24];
	uint64_t at = *pos;
	if (rd(v, at, b, 4, "lzop block") < 0)
		return -1;
	uint32_t dlen = be32(b);
	if (dlen == 0) {
		*pos += 4;
		return 1;
	}
	if (dlen > LZOP_MAX_BLOCK)
		return fail(v, XSR_E_LIMIT, "libvirt save: lzop block at offset 0x%llx: %u octets (lzop's limit is %u)",
			    (unsigned long long)at, dlen, LZOP_MAX_BLOCK);
	if (rd(v, at + 4, b + 4, 4, "lzop block") < 0)
		return -1;
	uint32_t clen = be32(b + 4);
	if (clen == 0 || clen > dlen)
		return corrupt(v, at, "lzop block: compressed length 0 or larger than the block");
	unsigned nd = !!(flags & F_ADLER32_D) + !!(flags & F_CRC32_D);
	unsigned nc = clen < dlen ? !!(flags & F_ADLER32_C) + !!(flags & F_CRC32_C) : 0;
	size_t hl = 8 + 4 * (nd + nc);
	if (rd(v, at + 8, b + 8, hl - 8, "lzop block checksums") < 0)
		return -1;
	if (*cap < dlen) {
		for (int k = 0; k < 2; k++) {
			uint8_t *n = realloc(buf[k], dlen);
			if (!n)
				return fail(v, XSR_E_NOMEM, "out of memory");
			buf[k] = n;
		}
		*cap = dlen;
	}
	if (rd(v, at + hl, buf[0], clen, "lzop block data") < 0)
		return -1;
	const uint8_t *c = b + 8 + 4 * nd;
	if (nc && (flags & F_ADLER32_C) && lzo_adler32(1, buf[0], clen) != be32(c))
		return corrupt(v, at, "lzop block: the compressed data's Adler-32 does not match");
	if (nc && (flags & F_CRC32_C) && lzo_crc32(0, buf[0], clen) != be32(c + 4 * !!(flags & F_ADLER32_C)))
		return corrupt(v, at, "lzop block: the compressed data's CRC-32 does not match");
	const uint8_t *d = buf[0];
	if (clen < dlen) {
		lzo_uint got = dlen;
		if (lzo1x_decompress_safe(buf[0], clen, buf[1], &got, NULL) != LZO_E_OK || got != dlen)
			return corrupt(v, at, "lzop block: LZO1X data does not decompress to the block's length");
		d = buf[1];
	}
	if ((flags & F_ADLER32_D) && lzo_adler32(1, d, dlen) != be32(b + 8))
		return corrupt(v, at, "lzop block: the data's Adler-32 does not match");
	if ((flags & F_CRC32_D) && lzo_crc32(0, d, dlen) != be32(b + 8 + 4 * !!(flags & F_ADLER32_D)))
		return corrupt(v, at, "lzop block: the data's CRC-32 does not match");
	if (put_out(v, d, dlen) < 0)
		return -1;
	*pos = at + hl + clen;
	return 0;
}

/* lzop files, one after the other; each header, block length and checksum checked. */
static int unlzop(struct lv *v)
{
	if (lzo_init() != LZO_E_OK)
		return fail(v, XSR_E_INVAL, "liblzo2 does not initialise");
	uint8_t *buf[2] = {NULL, NULL};
	size_t cap = 0;
	uint64_t pos = v->pay;
	int rc = 0;
	do {
		uint32_t flags = 0;
		if (lzop_header(v, &pos, &flags) < 0) {
			rc = -1;
			break;
		}
		while ((rc = lzop_block(v, &pos, flags, buf, &cap)) == 0)
			;
		if (rc < 0)
			break;
		rc = 0;
	} while (pos < v->size);
	free(buf[0]);
	free(buf[1]);
	return rc;
}

/* An unlinked file in @dir (NULL: $TMPDIR, else /tmp), or -1. */
static int make_tmp(const char *dir)
{
	if (!dir)
		dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	char path[4096];
	if ((size_t)snprintf(path, sizeof(path), "%s/xsr-libvirt-XXXXXX", dir) >= sizeof(path))
		return -1;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

static int inflate_stream(struct lv *v, const struct xsr_libvirt_import_opts *o)
{
	if ((v->tmp = make_tmp(o->tmpdir)) < 0)
		return fail(v, XSR_E_IO, "libvirt save: cannot make a temporary file in %s for the inflated %s stream: %s",
			    o->tmpdir ? o->tmpdir : "$TMPDIR or /tmp", xsr_libvirt_compress_name(v->compressed), strerror(errno));
	v->max_out = o->max_stream == XSR_LIBVIRT_NO_MAX_STREAM ? 0 : o->max_stream;
	v->max_derived = o->max_stream == 0;
	/*
	 * Buffers no larger than the payload needs: two 1 MiB buffers for a
	 * 1 KiB file were most of a small import's time (under ASan each is an
	 * mmap, page faults and a munmap; tests/fuzz/README.md).
	 */
	uint64_t csize = v->size - v->pay;
	size_t icap = csize < LV_CHUNK ? (size_t)csize : LV_CHUNK;
	v->ocap = csize < LV_CHUNK / 16 ? LV_CHUNK / 16 : LV_CHUNK;
	if (!(v->ibuf = malloc(icap)) || !(v->obuf = malloc(v->ocap)))
		return fail(v, XSR_E_NOMEM, "out of memory");
	switch (v->compressed) {
	case XSR_LIBVIRT_GZIP: return gunzip(v);
	case XSR_LIBVIRT_BZIP2: return bunzip(v);
	case XSR_LIBVIRT_XZ: return unxz(v);
	case XSR_LIBVIRT_ZSTD: return unzstd(v);
	default: return unlzop(v);
	}
}

/* ---------------- the API ---------------- */

/* @s as a JSON string's contents: printable ASCII but quote and backslash verbatim, the rest \u00XX. */
static void json_esc(char *out, size_t outlen, const char *s)
{
	size_t o = 0;
	for (; *s && o + 7 < outlen; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\u%04x", c);
	}
	out[o] = 0;
}

static int import_lv(struct lv *v, int out_fd, const struct xsr_libvirt_import_opts *o,
		     struct xsr_libvirt_import_stats *st, char *err, size_t errlen)
{
	static const struct xsr_libvirt_import_opts none;
	if (!o)
		o = &none;
	v->tmp = -1;
	struct xsr_qemu_import_stats qs;
	memset(&qs, 0, sizeof(qs));
	int rc = header(v) < 0 ? -1 : 0;
	if (rc == 0 && v->compressed != XSR_LIBVIRT_RAW)
		rc = inflate_stream(v, o);
	else if (rc == 0)
		v->out = v->size - v->pay;
	if (rc == 0) {
		char name[256 * 6 + 1], uuid[64 * 6 + 1], cfg[2600];
		json_esc(name, sizeof(name), v->domain);
		json_esc(uuid, sizeof(uuid), v->uuid);
		snprintf(cfg, sizeof(cfg),
			 "\"libvirt\": {\"domain\": \"%s\", \"uuid\": \"%s\", \"was_running\": %s, \"compression\": \"%s\", "
			 "\"header_version\": %u, \"byte_order\": \"%s\", \"data_len\": %u, \"xml_octets\": %u, "
			 "\"cookie_octets\": %u, \"stream_offset\": %llu, \"stream_octets\": %llu}",
			 name, uuid, v->was_running ? "true" : "false", xsr_libvirt_compress_name(v->compressed), v->version,
			 v->swapped ? "big-endian" : "little-endian", v->data_len, v->xml_len, v->data_len - v->xml_len,
			 (unsigned long long)v->pay, (unsigned long long)v->out);
		struct qemu_wrap wrap = {.origin = XSR_PT_ORIGIN_LIBVIRT_HEADER, .item = v->item, .item_len = v->pay, .config = cfg};
		struct xsr_source fsrc;
		const struct xsr_source *src = &v->in;
		uint64_t base = v->pay;
		if (v->tmp >= 0) {
			xsr_source_fd(&fsrc, v->tmp);
			src = &fsrc;
			base = 0;
		}
		char qerr[700];
		int q = qemu_import_source(src, base, v->out, out_fd, &o->qemu, &wrap, &qs, qerr, sizeof(qerr));
		if (q < 0) {
			if (v->tmp >= 0)
				fail(v, q, "libvirt save: the QEMU stream (%s, inflated to %llu octets; offsets are the inflated "
					   "stream's): %s", xsr_libvirt_compress_name(v->compressed), (unsigned long long)v->out, qerr);
			else
				fail(v, q, "libvirt save: the QEMU stream at offset 0x%llx (offsets from there): %s",
				     (unsigned long long)v->pay, qerr);
			rc = -1;
		}
	}
	if (rc < 0)
		xsr_fmt(err, errlen, "%s", v->err);
	if (st) {
		*st = (struct xsr_libvirt_import_stats){
			.qemu = qs, .version = v->version, .compressed = v->compressed, .was_running = v->was_running,
			.data_len = v->data_len, .xml_len = v->xml_len, .cookie_len = v->data_len - v->xml_len,
			.big_endian = v->swapped, .stream_offset = v->pay, .stream_size = v->out};
		memcpy(st->domain, v->domain, sizeof(st->domain));
		memcpy(st->uuid, v->uuid, sizeof(st->uuid));
	}
	if (v->tmp >= 0)
		close(v->tmp);
	free(v->item);
	free(v->ibuf);
	free(v->obuf);
	return rc < 0 ? (v->code < 0 ? v->code : XSR_E_FORMAT) : 0;
}

int xsr_libvirt_import_fd(int in_fd, int out_fd, const struct xsr_libvirt_import_opts *o,
			  struct xsr_libvirt_import_stats *st, char *err, size_t errlen)
{
	struct stat sb;
	if (st)
		memset(st, 0, sizeof(*st));
	if (fstat(in_fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		xsr_fmt(err, errlen, "the input must be a regular file (seekable)");
		return XSR_E_INVAL;
	}
	struct lv v = {0};
	xsr_source_fd(&v.in, in_fd);
	v.size = (uint64_t)sb.st_size;
	return import_lv(&v, out_fd, o, st, err, errlen);
}

int xsr_libvirt_import_mem(const void *buf, size_t len, int out_fd, const struct xsr_libvirt_import_opts *o,
			   struct xsr_libvirt_import_stats *st, char *err, size_t errlen)
{
	if (st)
		memset(st, 0, sizeof(*st));
	if (!buf && len) {
		xsr_fmt(err, errlen, "xsr_libvirt_import_mem: no buffer");
		return XSR_E_INVAL;
	}
	struct lv v = {0};
	xsr_source_mem(&v.in, buf, len);
	v.size = len;
	return import_lv(&v, out_fd, o, st, err, errlen);
}

/* ---------------- export: an image imported from a virsh save file, back to one ---------------- */

int xsr_libvirt_export(struct xsr_image *img, int out_fd, const struct xsr_qemu_export_opts *o,
		       struct xsr_libvirt_export_stats *st, char *err, size_t errlen)
{
	struct xsr_libvirt_export_stats none;
	if (!st)
		st = &none;
	memset(st, 0, sizeof(*st));
	uint32_t ns = xsr_image_nsections(img);
	for (uint32_t i = 0; i < ns; i++) {
		struct xsr_section_info si;
		if (xsr_image_section(img, i, &si) < 0 || si.code != XSR_SEC_PASSTHRU)
			continue;
		uint8_t *b;
		uint64_t len;
		int rc = xsr_image_read_section(img, i, (void **)&b, &len);
		if (rc < 0) {
			xsr_fmt(err, errlen, "section %u: %s", i, xsr_image_error(img));
			return rc;
		}
		struct xsr_passthru_hdr h = {0};
		if (len >= sizeof(h))
			memcpy(&h, b, sizeof(h));
		if (len < sizeof(h) || h.origin != XSR_PT_ORIGIN_LIBVIRT_HEADER) {
			free(b);
			continue;
		}
		/* The item as the import made it: the header and its data_len octets, verbatim. */
		const uint8_t *hd = b + sizeof(h);
		uint64_t n = len - sizeof(h);
		uint32_t ver = le32(hd + 16), dlen = le32(hd + 20);
		if (ver > 2) /* the header of a big-endian host, as the import took it */
			ver = bswap(ver), dlen = bswap(dlen);
		if (h.type != 0 || h.length != n || n < XSR_LIBVIRT_SAVE_HDR || memcmp(hd, XSR_LIBVIRT_SAVE_MAGIC, 16) ||
		    ver < 1 || ver > 2 || dlen != n - XSR_LIBVIRT_SAVE_HDR) {
			free(b);
			xsr_fmt(err, errlen, "PASSTHRU section %u at offset 0x%llx: not a libvirt save header as the import "
					     "keeps it (%llu octets, type %u)",
				i, (unsigned long long)si.offset, (unsigned long long)n, h.type);
			return XSR_E_FORMAT;
		}
		/*
		 * The stream goes out raw: compressed = 0 (zero in either byte
		 * order), which libvirt restores as it is; recompress with the
		 * program if you must (libvirt pipes it through the same programs).
		 */
		uint8_t hdr[XSR_LIBVIRT_SAVE_HDR];
		memcpy(hdr, hd, sizeof(hdr));
		memset(hdr + 28, 0, 4);
		struct iovec v[2] = {{hdr, sizeof(hdr)}, {(void *)(hd + sizeof(hdr)), dlen}};
		rc = xsr_io_writev(out_fd, v, 2);
		free(b);
		if (rc < 0) {
			xsr_fmt(err, errlen, "writing the libvirt save header: %s", strerror(-rc));
			return XSR_E_IO;
		}
		st->data_len = dlen;
		rc = xsr_qemu_export(img, out_fd, o, &st->qemu, err, errlen);
		st->bytes = XSR_LIBVIRT_SAVE_HDR + (uint64_t)dlen + st->qemu.bytes;
		return rc;
	}
	xsr_fmt(err, errlen, "no libvirt save header in this image (PASSTHRU origin %u): it was not imported from a "
			     "`virsh save` file, and libvirt needs its domain XML (--format qemu writes the stream alone)",
		XSR_PT_ORIGIN_LIBVIRT_HEADER);
	return XSR_E_UNSUPPORTED;
}
