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

int cli_verbosity;

int cli_common_opt(int c)
{
	if (c == 'q')
		cli_verbosity = -1;
	else if (c == 'v')
		cli_verbosity = cli_verbosity < 0 ? 1 : cli_verbosity + 1;
	else
		return 0;
	return 1;
}

static void vnote(const char *verb, const char *fmt, va_list ap)
{
	/* Escaped like cli_err(): notes name files and carry text from images. */
	char raw[2048], esc[2048];
	vsnprintf(raw, sizeof(raw), fmt, ap);
	cli_esc_to(esc, sizeof(esc), raw, sizeof(raw), 1);
	fprintf(stderr, "xsr %s: %s\n", verb, esc);
}

void cli_note(const char *verb, const char *fmt, ...)
{
	va_list ap;
	if (cli_verbosity < 0)
		return;
	va_start(ap, fmt);
	vnote(verb, fmt, ap);
	va_end(ap);
}

void cli_detail(const char *verb, const char *fmt, ...)
{
	va_list ap;
	if (cli_verbosity < 1)
		return;
	va_start(ap, fmt);
	vnote(verb, fmt, ap);
	va_end(ap);
}

void cli_progress_init(struct xsr_progress *p, const char *label, const char *unit, int json)
{
	/* A log file or a pipe gets no carriage returns; a script asked for --json gets JSON only.
	 */
	util_progress_start(p, label, unit, isatty(STDERR_FILENO) && cli_verbosity >= 0 && !json);
}

int cli_parse_layout(const char *verb, const char *opt, const char *s)
{
	if (!strcmp(s, "seekable"))
		return XSR_LAYOUT_SEEKABLE;
	if (!strcmp(s, "stream"))
		return XSR_LAYOUT_STREAM;
	cli_err(verb, "%s %s: need seekable or stream", opt, s);
	return -1;
}
