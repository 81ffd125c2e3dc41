/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "backend.h"

/*
 * The one list of the sections an engine hands to load_extra (backend.h): the
 * domain's own state other than memory (create), vCPUs (set_vcpu) and the
 * producer, and never what the writer derives from the rest (notes, pages,
 * index, the Xen p2m tree) or the migration control records.  VMCOREINFO is
 * made by the writer but is the guest's: a backend may use it.  Restore of
 * either layout, lazy restore and the migration receiver all ask here.
 */
bool backend_extra_section(uint32_t code)
{
	switch (code) {
	case XSR_SEC_CONFIG:
	case XSR_SEC_DOMCTX:
	case XSR_SEC_P2M:
	case XSR_SEC_XENSTORE:
	case XSR_SEC_EMULATOR:
	case XSR_SEC_PASSTHRU:
	case XSR_SEC_VMCOREINFO:
		return true;
	default:
		return false;
	}
}

const char *backend_lacks(const struct xsr_backend_ops *o, unsigned need)
{
#define CHECK(m)          \
	if (!o->m)        \
		return #m;
	CHECK(name) CHECK(error) CHECK(close)
	if (need & XSR_NEED_CORE) {
		CHECK(describe) CHECK(pause) CHECK(resume) CHECK(map) CHECK(unmap) CHECK(zero_hint)
	}
	if (need & XSR_NEED_SAVE) {
		CHECK(get_vcpu) CHECK(save_extra)
	}
	if (need & XSR_NEED_DIRTY) {
		CHECK(dirty_start) CHECK(dirty_fetch) CHECK(dirty_stop)
	}
	if (need & XSR_NEED_RESTORE) {
		CHECK(create) CHECK(set_vcpu) CHECK(load_extra) CHECK(start)
	}
	if (need & XSR_NEED_DOMAIN_SAVE) {
		CHECK(save_domain) CHECK(live_probe) CHECK(finish) CHECK(rename)
	}
	if (need & XSR_NEED_DOMAIN_RESTORE) {
		CHECK(restore_domain) CHECK(finish) CHECK(rename) CHECK(resume)
	}
#undef CHECK
	/* map_guest is optional: lazy restore asks for it (backend.h). */
	return NULL;
}

const char *backend_check(const struct xsr_backend_ops *o)
{
	return backend_lacks(o, XSR_NEED_CORE | XSR_NEED_SAVE | XSR_NEED_DIRTY | XSR_NEED_RESTORE);
}
