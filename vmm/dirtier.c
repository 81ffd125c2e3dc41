/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The dirtier (xsr vm start --dirty-mbps N; XSR_TEST_DIRTY_MBPS=N in the
 * VMM's environment in XSR_TESTHOOKS builds): a VMM thread that rewrites
 * guest pages at N MB/s and marks them in the dirty log the backend reports
 * (kvm_mark_dirty), so that migration and live save can be measured against
 * a known dirty rate even where the guest itself runs emulated at ~1 M
 * instructions/s.  And the data mode's pages (xsr vm start --fill), which
 * the VMM writes before the guest starts for the same reason.
 *
 * It writes only guest-physical memory from 4 MiB up (the test guest lives
 * in the first 2 MiB and never looks above): the data-mode pages in turn,
 * with data like theirs, or without them every page, pseudo-random (not
 * zero, not compressible); only while the guest is not paused.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../backends/kvm.h"
#include "../util/clock.h"
#include "vmm.h"

#define DIRTY_FROM (UINT64_C(4) << 20)

/* The guest image the data pages copy from: loaded at 1 MiB (vmm/loader.c). */
#define IMAGE_AT (UINT64_C(1) << 20)
#define IMAGE_WINDOW (UINT64_C(64) << 10)

void vmm_data_page(const struct xsr_vmm *v, uint8_t *mem, uint64_t n, uint64_t *x)
{
	uint64_t *p = (uint64_t *)(mem + ((v->fill_from + n) << XSR_PAGE_SHIFT)), r = *x;
	const uint8_t *img = mem + IMAGE_AT;
	uint64_t at = (n * 328) % (IMAGE_WINDOW - XSR_PAGE_SIZE / 2); /* 8-aligned, a different window per page */

	memcpy(p, img + at, XSR_PAGE_SIZE / 2);
	p[0] |= 1; /* never a zero page */
	for (int i = 256; i < 512; i++) {
		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		p[i] = r;
	}
	*x = r;
}

static void *dirtier(void *arg)
{
	struct xsr_vmm *v = arg;
	uint64_t len, first = DIRTY_FROM >> XSR_PAGE_SHIFT, slot, x = 0x9e3779b97f4a7c15ull;
	uint8_t *mem = kvm_mem(v->be, &len);
	uint64_t nslots = len >> XSR_PAGE_SHIFT, t0 = util_now_ns(), written = 0;

	if (v->fill_pages) { /* the data pages, in turn */
		first = v->fill_from;
		nslots = v->fill_from + v->fill_pages;
	}
	if (!mem || nslots <= first)
		return NULL;
	slot = first;
	while (!atomic_load(&v->dirtier_stop)) {
		/* Pages due by now at the set rate; sleep 1 ms between bursts. */
		uint64_t due = (uint64_t)((double)(util_now_ns() - t0) / 1e9 * v->dirty_mbps * 1e6 / XSR_PAGE_SIZE);

		while (written < due && !atomic_load(&v->dirtier_stop)) {
			if (kvm_pause_depth(v->be) == 0) {
				uint64_t *p = (uint64_t *)(mem + (slot << XSR_PAGE_SHIFT));

				if (v->fill_pages) {
					vmm_data_page(v, mem, slot - v->fill_from, &x);
				} else {
					for (int i = 0; i < 512; i++) {
						x ^= x << 13;
						x ^= x >> 7;
						x ^= x << 17;
						p[i] = x;
					}
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
