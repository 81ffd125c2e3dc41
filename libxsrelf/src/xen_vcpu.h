/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Xen vCPU contexts -> struct xsr_vcpu_state, private to the Xen module
 * (the two conversions a live domain also needs are public in xsrelf/xen.h).
 * The Xen structures come from Debian's libxen-dev headers; the original
 * records stay verbatim in PASSTHRU, so these conversions only need to be
 * faithful, not invertible.
 */
#ifndef XSRELF_XEN_VCPU_H
#define XSRELF_XEN_VCPU_H

#include <stdint.h>

#include <xen/foreign/x86_32.h>
#include <xen/foreign/x86_64.h>
#include <xsrelf/vcpu.h>
#include <xsrelf/xen.h>

/* Largest vCPU record the typed mapping reads (bigger ones stay PASSTHRU only). */
#define XEN_VCPU_REC_MAX (64u << 10)

struct xen_vcpus {
	uint32_t hvm_nr; /* 1 + highest CPU instance in HVM_CONTEXT */
};

/* Check an HVM_CONTEXT blob's descriptors; NULL if fine, else a static reason. */
const char *xen_hvm_scan(const uint8_t *blob, uint64_t len, struct xen_vcpus *vs);
/* X86_PV_VCPU_XSAVE body after the vCPU header: xcr0, xcr0_accum, area. */
void xen_pv_xsave(const uint8_t *b, uint64_t len, struct xsr_vcpu_state *st);
/* X86_PV_VCPU_MSRS body after the vCPU header: xen_domctl_vcpu_msr[]. */
void xen_pv_msrs(const uint8_t *b, uint64_t len, struct xsr_vcpu_state *st);

#endif
