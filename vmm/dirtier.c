/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Test-only dirtier (XSR_TEST_DIRTY_MBPS=N in the VMM's environment, builds
 * with XSR_TESTHOOKS): a VMM thread that rewrites guest pages at N MB/s and
 * marks them in the dirty log the backend reports (kvm_mark_dirty), so
 * that migration and live save can be measured against a known dirty rate
 * even where the guest itself runs emulated at ~1 M instructions/s.
 *
 * It writes only guest-physical memory from 4 MiB up (the test guest lives
 * in the first 2 MiB and never looks above), with pseudo-random contents
 * (not zero, not compressible), and only while the guest is not paused.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../backends/kvm.h"
#include "../util/clock.h"
#include "vmm.h"

#define DIRTY_FROM (UINT64_C(4) << 20)

static void *dirtier(void *arg)
{
	struct xsr_vmm *v = arg;
	uint64_t len, first = DIRTY_FROM >> XSR_PAGE_SHIFT, slot, x = 0x9e3779b97f4a7c15ull;
	uint8_t *mem = kvm_mem(v->be, &len);
	uint64_t nslots = len >> XSR_PAGE_SHIFT, t0 = util_now_ns(), written = 0;

	if (!mem || nslots <= first)
		return NULL;
	slot = first;
	while (!atomic_load(&v->dirtier_stop)) {
		/* Pages due by now at the set rate; sleep 1 ms between bursts. */
		uint64_t due = (uint64_t)((double)(util_now_ns() - t0) / 1e9 * v->dirty_mbps * 1e6 / XSR_PAGE_SIZE);

		while (written < due && !atomic_load(&v->dirtier_stop)) {
			if (kvm_pause_depth(v->be) == 0) {
				uint64_t *p = (uint64_t *)(mem + (slot << XSR_PAGE_SHIFT));

				for (int i = 0; i < 512; i++) {
					x ^= x << 13;
					x ^= x >> 7;
					x ^= x << 17;
					p[i] = x;
				}
				kvm_mark_dirty(v->be, slot);
				if (++slot == nslots)
					slot = first;
			}
			written++;
		}
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
	return NULL;
}

int vmm_dirtier_start(struct xsr_vmm *v, double mbps)
{
	v->dirty_mbps = mbps;
	atomic_store(&v->dirtier_stop, 0);
	if (pthread_create(&v->dirtier_tid, NULL, dirtier, v) != 0)
		return -1;
	v->have_dirtier = true;
	return 0;
}

void vmm_dirtier_stop(struct xsr_vmm *v)
{
	if (!v->have_dirtier)
		return;
	atomic_store(&v->dirtier_stop, 1);
	pthread_join(v->dirtier_tid, NULL);
	v->have_dirtier = false;
}
