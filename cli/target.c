/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one place a verb's TARGET is read: "vm:SOCK" (a VMM's control socket),
 * "DOMID" / "xen:DOMID" (a Xen domain) or "qemu:SOCK" (a QEMU's QMP
 * socket).  A new kind of target is a new enum value and a branch here;
 * the verbs then pick the backend or the VMM client by kind.
 */
#include <string.h>

#include "../backends/qemu.h"
#include "../backends/xen.h"
#include "cli.h"

int cli_target_resolve(const char *verb, const char *s, unsigned accept, struct xsr_target *t)
{
	memset(t, 0, sizeof(*t));
	if ((accept & XSR_TARGET_XEN) && xen_target(s, &t->domid)) {
		t->kind = XSR_TARGET_XEN;
		return 0;
	}
	if (qemu_target(s)) {
		if (!(accept & XSR_TARGET_QEMU)) {
			cli_err(verb, "target '%s': QEMU guests are not supported by xsr %s", s, verb);
			return -1;
		}
		t->kind = XSR_TARGET_QEMU;
		t->sock = qemu_target(s);
		return 0;
	}
	if (!(accept & XSR_TARGET_VM)) {
		cli_err(verb, "target '%s': expected a Xen DOMID", s);
		return -1;
	}
	t->kind = XSR_TARGET_VM;
	t->sock = cli_ctl_target(verb, s); /* says why if it is not vm:SOCK */
	return t->sock ? 0 : -1;
}
