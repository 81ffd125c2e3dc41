/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xsr core: a crash core of a running guest.  Same path as xsr save (the VMM
 * writes, the client commits atomically; cli/cmd_save.c) with kind
 * XSR_KIND_CORE; the guest is never stopped, only paused while captured.
 * The capture and the paging view are the core engine's (core/core.h).
 */
#include <xsrelf/format.h>

#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: xsr core vm:SOCK|DOMID|qemu:SOCK FILE [--live] [--json] [--compress zstd|lz4]\n"
		"       xsr core --paging [--vcpu N] [--vmcoreinfo TEXTFILE] vm:SOCK FILE\n"
		"\n"
		"Write a crash core of the running guest behind the VMM control socket\n"
		"SOCK: the same layout as a save image, readable by gdb and crash.  The\n"
		"guest is paused only while its state is captured.  FILE '-' streams to\n"
		"stdout.  --live copies memory while the guest runs (dirty logging) and\n"
		"pauses only for the last round.  --json prints bytes, pages, zero_pages,\n"
		"pause_ms, elapsed_ms.  --paging writes the paging view instead: PT_LOADs\n"
		"are vCPU N's guest-virtual mappings (default 0), so `gdb GUEST.elf FILE`\n"
		"prints the guest's variables (FILE must be a file); what did not fit in\n"
		"65533 PT_LOADs is reported (--json: \"paging\").\n"
		"\n"
		"DOMID (or xen:DOMID) is a Xen domain (run in dom0): its memory is mapped\n"
		"in batches while it is paused, and the P2M section gives each pfn's frame\n"
		"(--paging reads a PV guest's page tables through it).\n"
		"\n"
		"qemu:SOCK is a running QEMU (-qmp unix:SOCK,server=on,wait=off): its own\n"
		"migration stream, imported (xsr save --help); the guest is paused for it\n"
		"(or pre-copied with --live) and resumed.\n"
		"\n"
		"On a terminal, progress is shown on stderr (not with --quiet or --json).\n"
		XSR_COMMON_HELP);
}

int cmd_core(int argc, char **argv)
{
	return cli_capture_main("core", XSR_KIND_CORE, usage, argc, argv);
}
