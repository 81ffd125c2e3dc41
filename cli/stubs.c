/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Verbs whose implementation lives elsewhere (vmm/, save/, restore/, core/, xen/)
 * are weak here so that a build without them still links and says so.
 */
#include "cli.h"

static int missing(const char *verb)
{
	xsr_err(verb, "not built into this xsr");
	return XSR_EXIT_FAIL;
}

__attribute__((weak)) int cmd_vm(int argc, char **argv) { return missing("vm"); }
__attribute__((weak)) int cmd_save(int argc, char **argv) { return missing("save"); }
__attribute__((weak)) int cmd_restore(int argc, char **argv) { return missing("restore"); }
__attribute__((weak)) int cmd_core(int argc, char **argv) { return missing("core"); }
__attribute__((weak)) int cmd_import(int argc, char **argv) { return missing("import"); }
__attribute__((weak)) int cmd_export(int argc, char **argv) { return missing("export"); }
