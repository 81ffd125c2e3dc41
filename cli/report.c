/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a verb tells the user beside its output: --quiet / --verbose, notes,
 * details and progress on a terminal.  One copy for every verb, so that the
 * rules (cli.h) hold everywhere.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <xsrelf/format.h>

#include "cli.h"

int xsr_verbosity;

int xsr_common_opt(int c)
{
	if (c == 'q')
		xsr_verbosity = -1;
	else if (c == 'v')
		xsr_verbosity = xsr_verbosity < 0 ? 1 : xsr_verbosity + 1;
	else
		return 0;
	return 1;
}

static void vnote(const char *verb, const char *fmt, va_list ap)
{
	/* Escaped like xsr_err(): notes name files and carry text from images. */
	char raw[2048], esc[2048];
	vsnprintf(raw, sizeof(raw), fmt, ap);
	xsr_esc_to(esc, sizeof(esc), raw, sizeof(raw), 1);
	fprintf(stderr, "xsr %s: %s\n", verb, esc);
}

void xsr_note(const char *verb, const char *fmt, ...)
{
	va_list ap;
	if (xsr_verbosity < 0)
		return;
	va_start(ap, fmt);
	vnote(verb, fmt, ap);
	va_end(ap);
}

void xsr_detail(const char *verb, const char *fmt, ...)
{
	va_list ap;
	if (xsr_verbosity < 1)
		return;
	va_start(ap, fmt);
	vnote(verb, fmt, ap);
	va_end(ap);
}

void xsr_progress_init(struct xsr_progress *p, const char *label, const char *unit, int json)
{
	/* A log file or a pipe gets no carriage returns; a script asked for --json gets JSON only.
	 */
	xsr_progress_start(p, label, unit, isatty(STDERR_FILENO) && xsr_verbosity >= 0 && !json);
}

int xsr_parse_layout(const char *verb, const char *opt, const char *s)
{
	if (!strcmp(s, "seekable"))
		return XSR_LAYOUT_SEEKABLE;
	if (!strcmp(s, "stream"))
		return XSR_LAYOUT_STREAM;
	xsr_err(verb, "%s %s: need seekable or stream", opt, s);
	return -1;
}
