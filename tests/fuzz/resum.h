/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Recompute every checksum of a mutated input before parsing it.
 *
 * XXH3 is an integrity check, not a MAC: anyone crafting a hostile image or
 * migration stream computes valid checksums.  A fuzzer does not, so without
 * this nearly every mutation stops at the first checksum and the validation
 * behind it is never exercised.  The *-resum targets repair the header
 * checksum, every record trailer, a stream's END chain and a seekable
 * image's record-header copies and integrity section, then parse.
 */
#ifndef XSR_FUZZ_RESUM_H
#define XSR_FUZZ_RESUM_H

#include <elf.h>
#include <string.h>
#include <sys/uio.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include <xsrelf/format.h>

/* libxsrelf internals (hidden in the .so, linkable from the objects). */
uint64_t xsr_header_checksum(const Elf64_Ehdr *eh, const struct xsr_file_header *fh);
uint64_t xsr_record_hash(const struct xsr_record_header *rh, const struct iovec *body, int n, uint64_t body_len);

#define RESUM_ALIGN8(x) (((x) + 7) & ~(uint64_t)7)

static inline void resum_header(uint8_t *b, size_t size)
{
	Elf64_Ehdr eh;
	struct xsr_file_header fh;
	if (size < XSR_HEADER_END)
		return;
	memcpy(&eh, b, sizeof(eh));
	memcpy(&fh, b + XSR_EHDR_SIZE, sizeof(fh));
	fh.checksum = xsr_header_checksum(&eh, &fh);
	memcpy(b + XSR_EHDR_SIZE, &fh, sizeof(fh));
}

/* Trailer of the record whose header is at @hdr and body at @body; 0 if it does not fit. */
static inline int resum_record(uint8_t *b, size_t size, uint64_t hdr, uint64_t body, uint64_t *trailer)
{
	struct xsr_record_header rh;
	memcpy(&rh, b + hdr, sizeof(rh));
	if (rh.sh_size > size || body > size || RESUM_ALIGN8(rh.sh_size) + 8 > size - body)
		return 0;
	struct iovec v = {b + body, rh.sh_size};
	*trailer = xsr_record_hash(&rh, &v, 1, rh.sh_size);
	memcpy(b + body + RESUM_ALIGN8(rh.sh_size), trailer, 8);
	return 1;
}

static inline void resum_stream(uint8_t *b, size_t size)
{
	uint64_t off = XSR_HEADER_END, chain = 0, n = 0, trailer;
	resum_header(b, size);
	while (size >= 64 && off <= size - 64) {
		struct xsr_record_header rh;
		memcpy(&rh, b + off, sizeof(rh));
		if ((rh.sh_type & XSR_SHT_CODE_MASK) == XSR_SEC_END && rh.sh_size >= sizeof(struct xsr_end) &&
		    rh.sh_size <= size && off + 64 + rh.sh_size <= size) {
			struct xsr_end e;
			memcpy(&e, b + off + 64, sizeof(e));
			e.nr_records = n;
			e.chain = chain;
			memcpy(b + off + 64, &e, sizeof(e));
		}
		if (!resum_record(b, size, off, off + 64, &trailer))
			return;
		if ((rh.sh_type & XSR_SHT_CODE_MASK) != XSR_SEC_END || !(rh.sh_type & XSR_SHT_BASE)) {
			chain = XXH3_64bits_withSeed(&trailer, 8, chain);
			n++;
		}
		off += 64 + RESUM_ALIGN8(rh.sh_size) + 8;
	}
}

static inline void resum_image(uint8_t *b, size_t size)
{
	Elf64_Ehdr eh;
	uint64_t chain = 0, n = 0, trailer;
	int integ = -1;
	resum_header(b, size);
	if (size < XSR_HEADER_END)
		return;
	memcpy(&eh, b, sizeof(eh));
	if (eh.e_shoff > size || (uint64_t)eh.e_shnum * 64 > size - eh.e_shoff)
		return;
	for (int i = 1; i < eh.e_shnum; i++) {
		struct xsr_record_header sh;
		memcpy(&sh, b + eh.e_shoff + 64 * (uint64_t)i, 64);
		if (sh.sh_type == XSR_SHT(XSR_SEC_PAGES, 0))
			continue;
		if (sh.sh_type == XSR_SHT(XSR_SEC_INTEGRITY, 0) && integ < 0) {
			integ = i;
			continue;
		}
		if (sh.sh_offset < 64 || sh.sh_offset > size)
			continue;
		/* The record header is a copy of the section header, sh_name 0. */
		sh.sh_name = 0;
		memcpy(b + sh.sh_offset - 64, &sh, 64);
		if (resum_record(b, size, sh.sh_offset - 64, sh.sh_offset, &trailer)) {
			chain = XXH3_64bits_withSeed(&trailer, 8, chain);
			n++;
		}
	}
	if (integ < 0)
		return;
	struct xsr_record_header sh;
	memcpy(&sh, b + eh.e_shoff + 64 * (uint64_t)integ, 64);
	if (sh.sh_offset < 64 || sh.sh_offset > size || sizeof(struct xsr_integrity) > size - sh.sh_offset)
		return;
	struct xsr_integrity in;
	memcpy(&in, b + sh.sh_offset, sizeof(in));
	in.chain = chain;
	in.nr_records = n;
	in.file_size = size;
	if (eh.e_phoff <= size && (uint64_t)eh.e_phnum * 56 <= size - eh.e_phoff)
		in.phdr_hash = XXH3_64bits(b + eh.e_phoff, (size_t)eh.e_phnum * 56);
	in.shdr_hash = XXH3_64bits(b + eh.e_shoff, (size_t)eh.e_shnum * 64);
	memcpy(b + sh.sh_offset, &in, sizeof(in));
	sh.sh_name = 0;
	memcpy(b + sh.sh_offset - 64, &sh, 64);
	resum_record(b, size, sh.sh_offset - 64, sh.sh_offset, &trailer);
}

#endif
