/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * XXH3-64 built for AVX2, which common.c calls when the CPU has it.
 *
 * The system's libxxhash is built for the x86-64 baseline (SSE2); the same
 * function from xxhash.h's inline implementation with AVX2 enabled for this
 * file only is about twice as fast, and XXH3 gives the same value whatever
 * vector width computes it (xxhash's own guarantee), so images do not
 * change.  Hashing every page is the one CPU cost a save adds over a copy
 * (issue 19): on one core it is not hidden behind a write.
 *
 * Where the compiler cannot target AVX2 here (not GCC-compatible, or not
 * x86-64) the file still builds, with xxhash's default vector code: it is
 * then only never faster, never wrong.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx2")
#endif
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "internal.h"

uint64_t xsr_xxh3_avx2(const void *p, size_t len)
{
	return XXH3_64bits(p, len);
}

uint64_t xsr_xxh3_iov_avx2(const void *head, size_t hlen, const struct iovec *v, int n, size_t pad)
{
	static const uint8_t zeros[8];
	XXH3_state_t st;
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, head, hlen);
	for (int i = 0; i < n; i++)
		XXH3_64bits_update(&st, v[i].iov_base, v[i].iov_len);
	XXH3_64bits_update(&st, zeros, pad);
	return XXH3_64bits_digest(&st);
}
