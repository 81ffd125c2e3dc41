/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Hostile inputs with valid checksums, for the regression tests of issue 15
 * (tests/hardening/hostile.sh) and as fuzz seeds.  A checksum is no defence
 * against a crafted file: every input here recomputes them (../fuzz/resum.h),
 * so that what it tests is the check behind them.
 *
 *   craft pages-wrap STREAM OUT   the finding-1 stream: a PAGES record of
 *       length 24 with count 4 and data_len 2^64-24 (the old sum wrapped to
 *       24), after a memory map of 2^36 pages, laid out so that the old
 *       reader faulted in zstd (see pages_wrap)
 *   craft huge-claim STREAM OUT   the finding-2 stream: nr_pages 2^36, the
 *       memory map grown to match; otherwise the intact STREAM
 *   craft mutate WHAT IN OUT      IN (seekable or stream) with one field
 *       changed and every checksum recomputed; WHAT is one of
 *       vcpu-xsave, vcpu-msrs, vcpu-id (the first VCPU record's xsave_len,
 *       nr_msrs or vcpu_id), shstrtab-nul (last .shstrtab octet),
 *       sh-name (a section name offset past .shstrtab)
 *   craft flip OFF BIT IN OUT     IN with one bit flipped, checksums recomputed
 *   craft huge-record STREAM OUT [KIND]  STREAM up to its memory map, then
 *       the header of an optional record claiming XSR_MAX_RECORD (128 MiB)
 *       octets and 64 octets of its body: what arrives is 64 octets,
 *       whatever the claim; KIND 3 makes it a migration stream (receive)
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <xsrelf/reader.h>

#include <zstd.h>

#include "../fuzz/resum.h"

static uint8_t *load(const char *path, size_t *len, size_t extra)
{
	FILE *f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END) < 0) {
		perror(path);
		exit(2);
	}
	long n = ftell(f);
	uint8_t *b = calloc(1, (size_t)n + extra + 1);
	rewind(f);
	if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
		perror(path);
		exit(2);
	}
	fclose(f);
	*len = (size_t)n;
	return b;
}

static void save(const char *path, const uint8_t *b, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(b, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(2);
	}
}

static int is_stream(const uint8_t *b, size_t len)
{
	return len >= XSR_HEADER_END && b[XSR_EHDR_SIZE + 12] == XSR_LAYOUT_STREAM;
}

/* Offset of the first stream record of type @code, or 0. */
static uint64_t stream_find(const uint8_t *b, size_t len, uint32_t code)
{
	for (uint64_t off = XSR_HEADER_END; len >= 64 && off <= len - 64;) {
		struct xsr_record_header rh;
		memcpy(&rh, b + off, sizeof(rh));
		uint32_t c = rh.sh_type == SHT_NOTE ? XSR_SEC_NOTES : rh.sh_type & XSR_SHT_CODE_MASK;
		if (c == code)
			return off;
		if (rh.sh_size > len)
			return 0;
		off += 64 + RESUM_ALIGN8(rh.sh_size) + 8;
	}
	return 0;
}

/* Section header index of the first section of @sh_type in a seekable image, or 0. */
static int image_find(const uint8_t *b, size_t len, uint32_t sh_type, Elf64_Shdr *out)
{
	Elf64_Ehdr eh;
	memcpy(&eh, b, sizeof(eh));
	for (int i = 1; i < eh.e_shnum && eh.e_shoff + 64 * (uint64_t)(i + 1) <= len; i++) {
		memcpy(out, b + eh.e_shoff + 64 * (uint64_t)i, 64);
		if (out->sh_type == sh_type)
			return i;
	}
	return 0;
}

static void set_header_pages(uint8_t *b, uint64_t nr_pages)
{
	struct xsr_file_header fh;
	memcpy(&fh, b + XSR_EHDR_SIZE, sizeof(fh));
	fh.nr_pages = nr_pages;
	memcpy(b + XSR_EHDR_SIZE, &fh, sizeof(fh));
}

/* A memory map of 2^36 pages in the record's one or two runs: [0, 2^36) or [0, 2^36 - 1) and [2^36, +1). */
static void huge_memmap(uint8_t *b, size_t len)
{
	uint64_t m = stream_find(b, len, XSR_SEC_MEMMAP);
	struct xsr_record_header rh;
	memcpy(&rh, b + m, sizeof(rh));
	if (!m || (rh.sh_size != sizeof(struct xsr_memrun) && rh.sh_size != 2 * sizeof(struct xsr_memrun))) {
		fprintf(stderr, "craft: want a stream with a memory map of one or two runs (xsr synth --stream)\n");
		exit(2);
	}
	struct xsr_memrun r[2] = {{0, XSR_MAX_PAGES - 1}, {XSR_MAX_PAGES, 1}};
	if (rh.sh_size == sizeof(struct xsr_memrun))
		r[0].count = XSR_MAX_PAGES;
	memcpy(b + m + 64, r, rh.sh_size);
	set_header_pages(b, XSR_MAX_PAGES);
}

/*
 * What the old reader did with it: the 16 + 8 * 4 + data_len sum wrapped to
 * 24, so pfn[1..3] were read past the record (pfn[1] is its trailer, made a
 * valid data entry by the choice of pfn[0]; pfn[2..3] are zero), and the
 * page data handed to zstd as a source of 2^64 - 24 octets started there:
 * a frame of the four pages, then a skippable frame that sends zstd 4 GiB
 * further, where it faults.  The same octets lie after the record in the
 * file (the reader from memory uses bodies in place) and at the same place
 * in the body of an optional record before it (the reader from an fd reuses
 * one body buffer).
 */
static size_t wrap_tail(uint8_t *t)
{
	static uint8_t pages[4 * XSR_PAGE_SIZE];
	size_t n = ZSTD_compress(t + 16, 256, pages, sizeof(pages), 1);
	if (ZSTD_isError(n)) {
		fprintf(stderr, "craft: zstd: %s\n", ZSTD_getErrorName(n));
		exit(2);
	}
	memset(t, 0, 16);
	uint32_t skip[2] = {0x184D2A50u, 0xfffffff0u};
	memcpy(t + 16 + n, skip, sizeof(skip));
	return 16 + n + sizeof(skip);
}

static size_t put_rec(uint8_t *b, size_t at, uint32_t sh_type, const void *body, uint64_t len)
{
	struct xsr_record_header rh = {.sh_type = sh_type, .sh_offset = XSR_OFF_STREAMED, .sh_size = len, .sh_addralign = 8};
	memcpy(b + at, &rh, 64);
	memcpy(b + at + 64, body, len);
	memset(b + at + 64 + len, 0, RESUM_ALIGN8(len) - len);
	struct iovec v = {b + at + 64, len};
	uint64_t h = xsr_record_hash(&rh, &v, 1, len);
	memcpy(b + at + 64 + RESUM_ALIGN8(len), &h, 8);
	return at + 64 + RESUM_ALIGN8(len) + 8;
}

static size_t pages_wrap(uint8_t *b, size_t len)
{
	huge_memmap(b, len);
	uint64_t p = stream_find(b, len, XSR_SEC_PAGES);
	if (!p) {
		fprintf(stderr, "craft: no PAGES record\n");
		exit(2);
	}
	/* Everything before the first PAGES record, resummed; then the crafted records. */
	resum_stream(b, p);
	uint8_t tail[512], junk[512] = {0};
	size_t tn = wrap_tail(tail);
	memcpy(junk + 32, tail, tn); /* pfn[2..3] at body + 32, the data at body + 48 */
	p = put_rec(b, p, XSR_SHT(0x7777, 1), junk, RESUM_ALIGN8(32 + tn));
	struct xsr_record_header rh = {.sh_type = XSR_SHT(XSR_SEC_PAGES, 0), .sh_offset = XSR_OFF_STREAMED,
				       .sh_size = 24, .sh_addralign = 8};
	struct xsr_page_batch pb = {.count = 4, .compress = XSR_COMPRESS_ZSTD, .data_len = (uint64_t)0 - 24};
	uint8_t body[24];
	memcpy(body, &pb, sizeof(pb));
	/* pfn[1] (the trailer) must be a data entry inside the memory map: 2^24 tries on average. */
	const uint64_t bad = XSR_PFN_RESERVED | XSR_PFN_ZERO | (XSR_PFN_MASK & ~(XSR_MAX_PAGES - 1));
	uint64_t trailer = 0, pfn0;
	for (pfn0 = 0; pfn0 < XSR_MAX_PAGES - 1; pfn0++) {
		memcpy(body + 16, &pfn0, 8);
		struct iovec v = {body, sizeof(body)};
		trailer = xsr_record_hash(&rh, &v, 1, sizeof(body));
		if (!(trailer & bad))
			break;
	}
	if (trailer & bad) {
		fprintf(stderr, "craft: no pfn[0] gives a trailer that reads as a pfn\n");
		exit(1);
	}
	p = put_rec(b, p, rh.sh_type, body, sizeof(body));
	memcpy(b + p, tail, tn);
	return p + tn;
}

static void mutate(const char *what, uint8_t *b, size_t len)
{
	int stream = is_stream(b, len);
	uint8_t *vcpu = NULL;
	Elf64_Shdr sh;
	if (!strncmp(what, "vcpu-", 5)) {
		if (stream) {
			uint64_t v = stream_find(b, len, XSR_SEC_VCPU);
			vcpu = v ? b + v + 64 : NULL;
		} else if (image_find(b, len, XSR_SHT(XSR_SEC_VCPU, 0), &sh)) {
			vcpu = b + sh.sh_offset;
		}
		if (!vcpu) {
			fprintf(stderr, "craft: no VCPU record\n");
			exit(2);
		}
	}
	if (!strcmp(what, "vcpu-xsave")) {
		uint32_t v = 0xfffffff0u;
		memcpy(vcpu + offsetof(struct xsr_x86_vcpu, xsave_len), &v, 4);
	} else if (!strcmp(what, "vcpu-msrs")) {
		uint32_t v = 0x7fffffffu;
		memcpy(vcpu + offsetof(struct xsr_x86_vcpu, nr_msrs), &v, 4);
	} else if (!strcmp(what, "vcpu-id")) {
		uint32_t v;
		memcpy(&v, vcpu + offsetof(struct xsr_x86_vcpu, vcpu_id), 4);
		v ^= 1;
		memcpy(vcpu + offsetof(struct xsr_x86_vcpu, vcpu_id), &v, 4);
	} else if (!strcmp(what, "shstrtab-nul") && !stream && image_find(b, len, SHT_STRTAB, &sh)) {
		b[sh.sh_offset + sh.sh_size - 1] = 'X';
	} else if (!strcmp(what, "sh-name") && !stream) {
		Elf64_Ehdr eh;
		memcpy(&eh, b, sizeof(eh));
		int i = image_find(b, len, SHT_STRTAB, &sh);
		uint32_t name = (uint32_t)sh.sh_size + 0x100;
		if (!i)
			exit(2);
		memcpy(b + eh.e_shoff + 64 * (uint64_t)(i == 1 ? 2 : 1), &name, 4);
	} else {
		fprintf(stderr, "craft: cannot mutate '%s' in this input\n", what);
		exit(2);
	}
	if (stream)
		resum_stream(b, len);
	else
		resum_image(b, len);
}

int main(int argc, char **argv)
{
	size_t len;
	if (argc == 4 && !strcmp(argv[1], "pages-wrap")) {
		uint8_t *b = load(argv[2], &len, 2048);
		size_t n = pages_wrap(b, len);
		save(argv[3], b, n);
		free(b);
	} else if (argc == 4 && !strcmp(argv[1], "huge-claim")) {
		uint8_t *b = load(argv[2], &len, 0);
		huge_memmap(b, len);
		resum_stream(b, len);
		save(argv[3], b, len);
		free(b);
	} else if (argc == 6 && !strcmp(argv[1], "flip")) {
		/* flip OFF BIT IN OUT: one bit flipped, then every checksum recomputed */
		uint8_t *b = load(argv[4], &len, 0);
		size_t off = strtoull(argv[2], NULL, 0);
		if (off >= len) {
			free(b);
			return 2;
		}
		b[off] ^= (uint8_t)(1u << (atoi(argv[3]) & 7));
		if (is_stream(b, len))
			resum_stream(b, len);
		else
			resum_image(b, len);
		save(argv[5], b, len);
		free(b);
	} else if ((argc == 4 || argc == 5) && !strcmp(argv[1], "huge-record")) {
		uint8_t *b = load(argv[2], &len, 0);
		uint64_t m = stream_find(b, len, XSR_SEC_MEMMAP);
		struct xsr_record_header rh;
		if (!m) {
			fprintf(stderr, "craft: no memory map record\n");
			return 2;
		}
		memcpy(&rh, b + m, sizeof(rh));
		size_t at = m + 64 + RESUM_ALIGN8(rh.sh_size) + 8;
		struct xsr_record_header big = {.sh_type = XSR_SHT(0x7777, 1), .sh_offset = XSR_OFF_STREAMED,
						.sh_size = XSR_MAX_RECORD, .sh_addralign = 8};
		if (at + 128 > len) {
			fprintf(stderr, "craft: stream too short\n");
			return 2;
		}
		memcpy(b + at, &big, 64);
		memset(b + at + 64, 0x5a, 64);
		if (argc == 5) {
			struct xsr_file_header fh;
			memcpy(&fh, b + XSR_EHDR_SIZE, sizeof(fh));
			fh.kind = (uint8_t)atoi(argv[4]);
			memcpy(b + XSR_EHDR_SIZE, &fh, sizeof(fh));
			resum_header(b, at + 128);
		}
		save(argv[3], b, at + 128);
		free(b);
	} else if (argc == 5 && !strcmp(argv[1], "mutate")) {
		uint8_t *b = load(argv[3], &len, 0);
		mutate(argv[2], b, len);
		save(argv[4], b, len);
		free(b);
	} else {
		fprintf(stderr, "usage: craft pages-wrap|huge-claim|huge-record STREAM OUT | craft mutate WHAT IN OUT | craft flip OFF BIT IN OUT\n");
		return 2;
	}
	return 0;
}
