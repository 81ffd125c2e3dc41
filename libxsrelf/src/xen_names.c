/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One name table per Xen record family, and which records upstream Xen reads. */
#include <stddef.h>

#include "xen_internal.h"

static const char *const libxc_names[] = {
	[XEN_RT_END] = "END",
	[XEN_RT_PAGE_DATA] = "PAGE_DATA",
	[XEN_RT_X86_PV_INFO] = "X86_PV_INFO",
	[XEN_RT_X86_PV_P2M_FRAMES] = "X86_PV_P2M_FRAMES",
	[XEN_RT_X86_PV_VCPU_BASIC] = "X86_PV_VCPU_BASIC",
	[XEN_RT_X86_PV_VCPU_EXTENDED] = "X86_PV_VCPU_EXTENDED",
	[XEN_RT_X86_PV_VCPU_XSAVE] = "X86_PV_VCPU_XSAVE",
	[XEN_RT_SHARED_INFO] = "SHARED_INFO",
	[XEN_RT_X86_TSC_INFO] = "X86_TSC_INFO",
	[XEN_RT_HVM_CONTEXT] = "HVM_CONTEXT",
	[XEN_RT_HVM_PARAMS] = "HVM_PARAMS",
	[XEN_RT_TOOLSTACK] = "TOOLSTACK",
	[XEN_RT_X86_PV_VCPU_MSRS] = "X86_PV_VCPU_MSRS",
	[XEN_RT_VERIFY] = "VERIFY",
	[XEN_RT_CHECKPOINT] = "CHECKPOINT",
	[XEN_RT_CHECKPOINT_DIRTY_PFN_LIST] = "CHECKPOINT_DIRTY_PFN_LIST",
	[XEN_RT_STATIC_DATA_END] = "STATIC_DATA_END",
	[XEN_RT_X86_CPUID_POLICY] = "X86_CPUID_POLICY",
	[XEN_RT_X86_MSR_POLICY] = "X86_MSR_POLICY",
	[XEN_RT_DOMAIN_CONTEXT] = "DOMAIN_CONTEXT",
};

/* Seed 002 numbered its records from 0x10 on top of revision 2 of the spec. */
static const char *const postcopy_names[] = {
	"POSTCOPY_BEGIN", "POSTCOPY_PFNS_BEGIN", "POSTCOPY_PFNS", "POSTCOPY_TRANSITION",
	"POSTCOPY_PAGE_DATA", "POSTCOPY_FAULT", "POSTCOPY_COMPLETE",
};

const char *xsr_xen_libxc_rec_name(uint32_t version, uint32_t type)
{
	if (version == 2 && type >= XEN_RT_POSTCOPY_BEGIN && type <= XEN_RT_POSTCOPY_COMPLETE)
		return postcopy_names[type - XEN_RT_POSTCOPY_BEGIN];
	if (type == XEN_RT_DOMAIN_CONTEXT && version < 4)
		return "unknown";
	if (type < sizeof(libxc_names) / sizeof(libxc_names[0]) && libxc_names[type])
		return libxc_names[type];
	return type & XEN_RT_OPTIONAL ? "unknown optional" : "unknown";
}

const char *xsr_xen_libxl_rec_name(uint32_t type)
{
	static const char *const n[] = {"END", "LIBXC_CONTEXT", "EMULATOR_XENSTORE_DATA",
					"EMULATOR_CONTEXT", "CHECKPOINT_END", "CHECKPOINT_STATE"};
	return type < sizeof(n) / sizeof(n[0]) ? n[type] : "unknown";
}

int xsr_xen_libxc_rec_upstream(uint32_t version, uint32_t type)
{
	if (version < 2 || version > 4)
		return 0;
	if (version == 4) /* seed 001: v4 = v3 + DOMAIN_CONTEXT; only the header and 0x13 are foreign */
		version = 3;
	switch (type) {
	case XEN_RT_TOOLSTACK:                  /* legacy conversion only; 4.17 refuses it */
	case XEN_RT_CHECKPOINT_DIRTY_PFN_LIST: /* COLO back channel, never in a saved stream */
		return 0;
	case XEN_RT_STATIC_DATA_END:
	case XEN_RT_X86_CPUID_POLICY:
	case XEN_RT_X86_MSR_POLICY:
		return version >= 3;
	default:
		return type <= XEN_RT_X86_MSR_POLICY;
	}
}
