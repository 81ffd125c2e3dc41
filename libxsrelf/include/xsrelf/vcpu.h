/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libxsrelf: in-memory vCPU state and its encodings (XSR_SEC_VCPU body and
 * the NT_PRSTATUS note gdb reads).
 */
#ifndef XSRELF_VCPU_H
#define XSRELF_VCPU_H

#include <xsrelf/xsrelf.h>

/* Complete x86-64 vCPU state as a backend reports it.  ~34 KiB: heap it. */
struct xsr_vcpu_state {
	struct xsr_x86_vcpu r;           /* r.xsave_len/nr_msrs/lapic_len say */
	uint8_t xsave[XSR_MAX_XSAVE];    /* how much of these three is valid */
	struct xsr_msr msrs[XSR_MAX_MSRS];
	uint8_t lapic[1024];
};

/* Register order inside xsr_x86_vcpu.gpr[]. */
enum xsr_gpr {
	XSR_RAX, XSR_RBX, XSR_RCX, XSR_RDX, XSR_RSI, XSR_RDI, XSR_RSP, XSR_RBP,
	XSR_R8, XSR_R9, XSR_R10, XSR_R11, XSR_R12, XSR_R13, XSR_R14, XSR_R15,
};

/* Octets xsr_vcpu_encode() will produce for @st. */
XSR_API uint64_t xsr_vcpu_encoded_size(const struct xsr_vcpu_state *st);

/* Encode into @buf of @len octets (>= encoded size).  Returns octets or <0. */
XSR_API int64_t xsr_vcpu_encode(const struct xsr_vcpu_state *st, void *buf, uint64_t len);

/*
 * Decode and validate a section body.  Returns 0, or XSR_E_FORMAT with a
 * reason in @why (static string).
 */
XSR_API int xsr_vcpu_decode(const void *body, uint64_t len, struct xsr_vcpu_state *st,
			    const char **why);

/* Fill a Linux x86-64 elf_prstatus (XSR_PRSTATUS_SIZE octets) from @r. */
XSR_API void xsr_vcpu_prstatus(const struct xsr_x86_vcpu *r, uint8_t out[XSR_PRSTATUS_SIZE]);

/* Read one MSR from @st; returns 0 and sets *val, or XSR_E_RANGE. */
XSR_API int xsr_vcpu_msr(const struct xsr_vcpu_state *st, uint32_t index, uint64_t *val);

#endif
