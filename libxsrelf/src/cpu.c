/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the CPU offers the library: XXH3-64 through the AVX2 build
 * (hash_avx2.c) where the CPU has AVX2, and the number of CPUs this process
 * may run on, which decides whether the writer hashes, and a conversion
 * reads, on a second thread.  Built for the x86-64 baseline: the choice is
 * made here before any AVX2 instruction runs.
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "internal.h"

/*
 * XXH3-64, with AVX2 where the CPU has it (hash_avx2.c: the same values,
 * about twice as fast as the baseline build of libxxhash).  Decided once;
 * XSR_NO_AVX2 (test builds) forces the baseline so both can be compared.
 */
static int use_avx2(void)
{
	/* Atomic: any thread may be first to ask (they get the same answer). */
	static atomic_int v = -1;
	int x = atomic_load_explicit(&v, memory_order_relaxed);
	if (x < 0) {
#if defined(__x86_64__) && defined(__GNUC__)
		__builtin_cpu_init();
		x = __builtin_cpu_supports("avx2") ? 1 : 0;
#else
		x = 0;
#endif
#if XSR_TESTHOOKS
		if (getenv("XSR_NO_AVX2"))
			x = 0;
#endif
		atomic_store_explicit(&v, x, memory_order_relaxed);
	}
	return x;
}

int xsr_usable_cpus(void)
{
	cpu_set_t set;
	if (getenv("XSR_NO_HASH_THREAD"))
		return 1;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

uint64_t xsr_hash(const void *data, size_t len)
{
	return use_avx2() ? xsr_xxh3_avx2(data, len) : XXH3_64bits(data, len);
}

uint64_t xsr_record_hash(const struct xsr_record_header *rh, const struct iovec *body, int n,
			 uint64_t body_len)
{
	static const uint8_t zeros[8];
	if (use_avx2())
		return xsr_xxh3_iov_avx2(rh, sizeof(*rh), body, n, ALIGN8(body_len) - body_len);
	XXH3_state_t st;
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, rh, sizeof(*rh));
	for (int i = 0; i < n; i++)
		XXH3_64bits_update(&st, body[i].iov_base, body[i].iov_len);
	XXH3_64bits_update(&st, zeros, ALIGN8(body_len) - body_len);
	return XXH3_64bits_digest(&st);
}

int xsr_worker_start(struct xsr_worker *w, void *(*fn)(void *), void *arg)
{
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->stop = false;
	if (pthread_create(&w->thread, NULL, fn, arg) == 0)
		return 0;
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	return -1;
}

void xsr_worker_stop(struct xsr_worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
}
