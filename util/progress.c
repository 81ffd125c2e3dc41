/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>

#include "progress.h"

void util_progress_start(struct xsr_progress *p, const char *label, const char *unit, int on)
{
	memset(p, 0, sizeof(*p));
	p->label = label;
	p->unit = unit;
	p->on = on;
	p->last_pct = UINT64_MAX;
}

void util_progress_cb(void *ctx, uint64_t done, uint64_t total)
{
	struct xsr_progress *p = ctx;
	if (!p || !p->on || !total)
		return;
	if (done > total)
		done = total;
	uint64_t pct = done * 100 / total;
	if (pct == p->last_pct)
		return;
	p->last_pct = pct;
	p->drawn = 1;
	fprintf(stderr, "\r%s: %llu/%llu %s (%llu%%)", p->label, (unsigned long long)done,
		(unsigned long long)total, p->unit, (unsigned long long)pct);
	fflush(stderr);
}

void util_progress_end(struct xsr_progress *p)
{
	if (p && p->on && p->drawn)
		fputc('\n', stderr);
	if (p)
		p->drawn = 0;
}
