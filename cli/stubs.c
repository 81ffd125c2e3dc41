/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Verbs whose implementation still lives outside cli/ (migrate/, xen/) are
 * weak here so that a build without them still links and says so.
 */
#include "cli.h"

static int missing(const char *verb)
{
	xsr_err(verb, "not built into this xsr");
	return XSR_EXIT_FAIL;
}

__attribute__((weak)) int cmd_migrate(int argc, char **argv) { return missing("migrate"); }
__attribute__((weak)) int cmd_receive(int argc, char **argv) { return missing("receive"); }
