/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "backend.h"

const char *xsr_backend_check(const struct xsr_backend_ops *o)
{
#define CHECK(m)          \
	if (!o->m)        \
		return #m;
	CHECK(name) CHECK(describe) CHECK(pause) CHECK(resume) CHECK(map) CHECK(unmap) CHECK(zero_hint)
	CHECK(get_vcpu) CHECK(save_extra) CHECK(dirty_start) CHECK(dirty_fetch) CHECK(dirty_stop)
	CHECK(create) CHECK(set_vcpu) CHECK(load_extra) CHECK(start) CHECK(error) CHECK(close)
#undef CHECK
	/* map_guest is optional: lazy restore asks for it (backend.h). */
	return NULL;
}
