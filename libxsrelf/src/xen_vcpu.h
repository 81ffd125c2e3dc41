/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Xen vCPU contexts -> struct xsr_vcpu_state (registers for the VCPU section
 * and NT_PRSTATUS).  The Xen structures come from Debian's libxen-dev
 * headers; the original records stay verbatim in PASSTHRU, so these
 * conversions only need to be faithful, not invertible.
 */
#ifndef XSR_XENVCPU_H
#define XSR_XENVCPU_H

#include <stdint.h>

#include <xen/foreign/x86_32.h>
#include <xen/foreign/x86_64.h>
#include <xsrelf/vcpu.h>

/* Largest vCPU record the typed mapping reads (bigger ones stay PASSTHRU only). */
#define XEN_VCPU_REC_MAX (64u << 10)

struct xen_vcpus {
	uint32_t hvm_nr; /* 1 + highest CPU instance in HVM_CONTEXT */
};

/* Check an HVM_CONTEXT blob's descriptors; NULL if fine, else a static reason. */
const char *xen_hvm_scan(const uint8_t *blob, uint64_t len, struct xen_vcpus *vs);
/* vCPU @v from the blob's CPU (and LAPIC_REGS) records; NULL if fine. */
const char *xen_hvm_vcpu(const uint8_t *blob, uint64_t len, uint32_t v, struct xsr_vcpu_state *st);

/*
 * A vcpu_guest_context of @width (4 or 8) octets per word.  When @m2p is
 * given, cr3 is a machine frame (xc_core of a PV guest) and is translated.
 */
typedef int (*xen_m2p_fn)(void *ctx, uint64_t mfn, uint64_t *pfn);
const char *xen_pv_basic(const uint8_t *ctx, uint64_t len, unsigned width, struct xsr_vcpu_state *st,
			 xen_m2p_fn m2p, void *m2p_ctx);
/* X86_PV_VCPU_XSAVE body after the vCPU header: xcr0, xcr0_accum, area. */
void xen_pv_xsave(const uint8_t *b, uint64_t len, struct xsr_vcpu_state *st);
/* X86_PV_VCPU_MSRS body after the vCPU header: xen_domctl_vcpu_msr[]. */
void xen_pv_msrs(const uint8_t *b, uint64_t len, struct xsr_vcpu_state *st);

#endif
