/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Progress drawn on stderr: "\rLABEL: DONE/TOTAL UNIT (P%)", redrawn when the
 * percentage moves, and a newline at the end.  Below cli/ because two floors
 * draw it: the verbs (cli/report.c decides whether it is shown: a terminal,
 * not --quiet, not --json) and the VMM daemon, which draws a save's progress
 * on the stderr its client lent it.  The library and the engines print
 * nothing: they call util_progress_cb() with a struct xsr_progress as context.
 */
#ifndef XSR_UTIL_PROGRESS_H
#define XSR_UTIL_PROGRESS_H

#include <stdint.h>

struct xsr_progress {
	const char *label; /* the verb: "convert", "import", ... */
	const char *unit;  /* "pages" */
	int on, drawn;
	uint64_t last_pct;
};

/* Set @p up to draw (@on) or to stay silent; nothing is drawn yet. */
void util_progress_start(struct xsr_progress *p, const char *label, const char *unit, int on);
/* The engines' callback: @p is a struct xsr_progress. */
void util_progress_cb(void *p, uint64_t done, uint64_t total);
/* End the line if anything was drawn.  NULL ok. */
void util_progress_end(struct xsr_progress *p);

#endif
