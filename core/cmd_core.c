/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xsr core: a crash core of a running guest.  Same path as xsr save (the VMM
 * writes, the client commits atomically) with kind XSR_KIND_CORE; the guest
 * is never stopped, only paused while captured.
 */
#include "../cli/cli.h"
#include "../vmm/vmm.h"

int cmd_core(int argc, char **argv)
{
	return xsr_capture_main("core", XSR_KIND_CORE, argc, argv);
}
