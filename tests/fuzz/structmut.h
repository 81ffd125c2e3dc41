/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A structure-aware mutation for the *-resum targets: half of the time,
 * instead of libFuzzer's byte mutations, write an arithmetic edge value into
 * one field of one record (or into its header's sh_size).
 *
 * Why (issue 15, finding 1): a check like len == 16 + 8 * count + data_len
 * is passed by a data_len that wraps the sum, 2^64 - c for the right c.
 * libFuzzer's comparison feedback offers the operands it saw (len and the
 * sum), never that value, and random bytes hit it with probability 2^-64.
 * Here a field gets len - c for c = 8 * k + small, as well as 0, 1, ~0,
 * 2^63, 2^32 - 1 and the format's limits, or a count and the length that
 * "adds up" with it (sm_count_len); resum.h then makes the checksums valid,
 * so the parser's own arithmetic is what the value meets.
 */
#ifndef XSR_FUZZ_STRUCTMUT_H
#define XSR_FUZZ_STRUCTMUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <xsrelf/format.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

static uint64_t sm_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t sm_value(uint64_t *r, uint64_t len)
{
	static const uint64_t fixed[] = {0, 1, 2, 7, 8, UINT64_MAX, UINT64_MAX - 7, UINT64_C(1) << 63,
					 UINT32_MAX, (uint64_t)UINT32_MAX + 1, XSR_MAX_PAGES, XSR_MAX_PAGES + 1,
					 XSR_MAX_PFN, XSR_MAX_BATCH, XSR_MAX_BATCH + 1, XSR_MAX_RECORD, XSR_MAX_XSAVE,
					 XSR_MAX_MSRS, XSR_MAX_VCPUS, XSR_PAGE_SIZE};
	switch (sm_rand(r) % 3) {
	case 0:
		return fixed[sm_rand(r) % (sizeof(fixed) / sizeof(fixed[0]))];
	case 1: /* len - (a fixed header + k entries of 8 or 16): wraps when that exceeds len */
		return len - (sm_rand(r) % 65) - 8 * (sm_rand(r) % 1040) * (1 + sm_rand(r) % 2);
	default: /* a small multiple of the page size, or its negation */
		return (sm_rand(r) & 1 ? 0 - 1 : 1) * (uint64_t)XSR_PAGE_SIZE * (sm_rand(r) % 1025);
	}
}

/*
 * Write an edge value (as 8, 4 or 2 octets) at a random aligned field of the
 * first @span octets of a body of @len octets at @body.
 */
static void sm_poke(uint8_t *b, size_t size, uint64_t body, uint64_t len, uint64_t span, uint64_t *r)
{
	if (body >= size)
		return;
	if (span > size - body)
		span = size - body;
	uint64_t w = 8 >> (sm_rand(r) % 3);
	if (span < w)
		return;
	uint64_t at = body + (sm_rand(r) % (span / w)) * w, v = sm_value(r, len);
	memcpy(b + at, &v, w); /* little-endian: the low octets */
}

/*
 * A count and a length that must add up to the body: set a 32-bit count at
 * body offset 0 or 4 (to 1..1024, or a limit), then a 64-bit field after it
 * to len - (its end + count * entry) for an entry of 8, 16 or 4096 octets.
 * With a large count that value wraps, which is what a sum check that adds
 * it misses and a check that subtracts refuses.
 */
static void sm_count_len(uint8_t *b, size_t size, uint64_t body, uint64_t len, uint64_t *r)
{
	static const uint64_t ent[] = {8, 16, 4096};
	uint64_t a = 4 * (sm_rand(r) % 2), o = 8 * (1 + sm_rand(r) % 3);
	if (body >= size || o + 8 > size - body)
		return;
	uint32_t cnt = sm_rand(r) % 2 ? (uint32_t)(1 + sm_rand(r) % 1024) : (uint32_t)sm_value(r, len);
	memcpy(b + body + a, &cnt, 4);
	uint64_t v = len - (o + 8) - ent[sm_rand(r) % 3] * cnt;
	memcpy(b + body + o, &v, 8);
}

/* The stream's records: poke a body field, or set sh_size itself. */
static size_t sm_stream(uint8_t *b, size_t size, uint64_t *r)
{
	uint64_t offs[256], n = 0;
	for (uint64_t off = XSR_HEADER_END; size >= 64 && off <= size - 64 && n < 256;) {
		struct xsr_record_header rh;
		memcpy(&rh, b + off, sizeof(rh));
		offs[n++] = off;
		if (rh.sh_size > size)
			break;
		off += 64 + ((rh.sh_size + 7) & ~(uint64_t)7) + 8;
	}
	if (!n)
		return 0;
	uint64_t off = offs[sm_rand(r) % n];
	struct xsr_record_header rh;
	memcpy(&rh, b + off, sizeof(rh));
	switch (sm_rand(r) % 8) {
	case 0:
		rh.sh_size = sm_value(r, rh.sh_size);
		memcpy(b + off, &rh, sizeof(rh));
		break;
	case 1:
	case 2:
	case 3:
		sm_count_len(b, size, off + 64, rh.sh_size, r);
		break;
	default:
		sm_poke(b, size, off + 64, rh.sh_size, 256, r);
	}
	return size;
}

/* The image's sections: poke a body field, or a field of the section header. */
static size_t sm_image(uint8_t *b, size_t size, uint64_t *r)
{
	Elf64_Ehdr eh;
	if (size < XSR_HEADER_END)
		return 0;
	memcpy(&eh, b, sizeof(eh));
	if (eh.e_shnum < 2 || eh.e_shoff > size || (uint64_t)eh.e_shnum * 64 > size - eh.e_shoff)
		return 0;
	uint64_t i = 1 + sm_rand(r) % (eh.e_shnum - 1u), sh = eh.e_shoff + 64 * i;
	struct xsr_record_header h;
	memcpy(&h, b + sh, sizeof(h));
	switch (sm_rand(r) % 4) {
	case 0:
		sm_poke(b, size, sh, 64, 64, r);
		break;
	case 1:
		sm_count_len(b, size, h.sh_offset, h.sh_size, r);
		break;
	default:
		sm_poke(b, size, h.sh_offset, h.sh_size, 256, r);
	}
	return size;
}

static size_t structure_mutate(uint8_t *data, size_t size, size_t max_size, unsigned seed, int stream)
{
	uint64_t r = seed | (uint64_t)1 << 40;
	if (sm_rand(&r) & 1) {
		size_t n = stream ? sm_stream(data, size, &r) : sm_image(data, size, &r);
		if (n)
			return n;
	}
	return LLVMFuzzerMutate(data, size, max_size);
}

#endif
