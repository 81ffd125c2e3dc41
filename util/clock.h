/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one clock of the tool: monotonic nanoseconds.  util/ is the floor below
 * the backends: every folder of the tool may include it, and it includes
 * nothing of the project (docs/architecture.md).
 */
#ifndef XSR_UTIL_CLOCK_H
#define XSR_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t util_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
