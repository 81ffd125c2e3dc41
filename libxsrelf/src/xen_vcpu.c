/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Xen PV / HVM vCPU contexts to the xsrelf vCPU state. */
/* domctl.h and hvm/save.h are tools-only interfaces */
#define __XEN_TOOLS__ 1
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <xen/xen.h>
#include <xen/hvm/save.h>
#include <xen/domctl.h>

#include "xen_vcpu.h"

_Static_assert(sizeof(struct xen_domctl_vcpu_msr) == sizeof(struct xsr_msr), "MSR entry layouts agree");

struct hdesc {
	uint16_t typecode, instance;
	uint32_t length;
};

const char *xen_hvm_scan(const uint8_t *blob, uint64_t len, struct xen_vcpus *vs)
{
	uint64_t off = 0;
	int ended = 0;
	vs->hvm_nr = 0;
	while (off < len) {
		struct hdesc d;
		if (len - off < sizeof(d))
			return "save record descriptor cut short";
		memcpy(&d, blob + off, sizeof(d));
		off += sizeof(d);
		if (d.length > len - off)
			return "save record runs past the end of the blob";
		if (d.typecode == HVM_SAVE_CODE(CPU)) {
			if (d.instance >= XSR_MAX_VCPUS)
				return "CPU record for a vCPU id over the limit";
			if (d.instance + 1u > vs->hvm_nr)
				vs->hvm_nr = d.instance + 1u;
		}
		off += d.length;
		if (d.typecode == 0) {
			ended = 1;
			break;
		}
	}
	if (!ended)
		return "no END save record";
	if (off != len)
		return "octets after the END save record";
	return NULL;
}

static void seg(struct xsr_x86_segment *s, uint32_t sel, uint32_t limit, uint64_t base, uint32_t ar)
{
	s->selector = (uint16_t)sel;
	s->limit = limit;
	s->base = base;
	/* Xen's compressed attributes: type:4 s:1 dpl:2 p:1 avl:1 l:1 db:1 g:1; p=0 reads as unusable */
	s->attr = (uint16_t)((ar & 0xfff) | (ar & 0x80 ? 0 : 0x1000));
}

static void msr(struct xsr_vcpu_state *st, uint32_t idx, uint64_t val)
{
	if (st->r.nr_msrs >= XSR_MAX_MSRS)
		return;
	st->msrs[st->r.nr_msrs++] = (struct xsr_msr){.index = idx, .value = val};
	st->r.valid |= XSR_VCPU_HAVE_MSRS;
}

const char *xsr_xen_hvm_vcpu(const uint8_t *blob, uint64_t len, uint32_t v, struct xsr_vcpu_state *st)
{
	uint64_t off = 0;
	while (off + sizeof(struct hdesc) <= len) {
		struct hdesc d;
		memcpy(&d, blob + off, sizeof(d));
		off += sizeof(d);
		/* xen_hvm_scan checked the blob, but this must not depend on being called after it. */
		if (d.length > len - off)
			break;
		const uint8_t *p = blob + off;
		off += d.length;
		if (d.typecode == 0)
			break;
		if (d.instance != v)
			continue;
		if (d.typecode == HVM_SAVE_CODE(LAPIC_REGS) && d.length == sizeof(st->lapic)) {
			memcpy(st->lapic, p, sizeof(st->lapic));
			st->r.lapic_len = sizeof(st->lapic);
			st->r.valid |= XSR_VCPU_HAVE_LAPIC;
			continue;
		}
		if (d.typecode != HVM_SAVE_CODE(CPU))
			continue;
		/* Older Xen wrote shorter CPU records; Xen itself zero-extends them. */
		struct hvm_hw_cpu c;
		memset(&c, 0, sizeof(c));
		memcpy(&c, p, d.length < sizeof(c) ? d.length : sizeof(c));
		struct xsr_x86_vcpu *r = &st->r;
		uint64_t g[16] = {c.rax, c.rbx, c.rcx, c.rdx, c.rsi, c.rdi, c.rsp, c.rbp,
				  c.r8, c.r9, c.r10, c.r11, c.r12, c.r13, c.r14, c.r15};
		memcpy(r->gpr, g, sizeof(g));
		r->rip = c.rip;
		r->rflags = c.rflags;
		r->cr0 = c.cr0; r->cr2 = c.cr2; r->cr3 = c.cr3; r->cr4 = c.cr4;
		r->dr[0] = c.dr0; r->dr[1] = c.dr1; r->dr[2] = c.dr2; r->dr[3] = c.dr3;
		r->dr[6] = c.dr6; r->dr[7] = c.dr7;
		seg(&r->cs, c.cs_sel, c.cs_limit, c.cs_base, c.cs_arbytes);
		seg(&r->ds, c.ds_sel, c.ds_limit, c.ds_base, c.ds_arbytes);
		seg(&r->es, c.es_sel, c.es_limit, c.es_base, c.es_arbytes);
		seg(&r->fs, c.fs_sel, c.fs_limit, c.fs_base, c.fs_arbytes);
		seg(&r->gs, c.gs_sel, c.gs_limit, c.gs_base, c.gs_arbytes);
		seg(&r->ss, c.ss_sel, c.ss_limit, c.ss_base, c.ss_arbytes);
		seg(&r->tr, c.tr_sel, c.tr_limit, c.tr_base, c.tr_arbytes);
		seg(&r->ldt, c.ldtr_sel, c.ldtr_limit, c.ldtr_base, c.ldtr_arbytes);
		r->gdt = (struct xsr_x86_dtable){.base = c.gdtr_base, .limit = c.gdtr_limit};
		r->idt = (struct xsr_x86_dtable){.base = c.idtr_base, .limit = c.idtr_limit};
		r->efer = c.msr_efer;
		memcpy(r->fxsave, c.fpu_regs, sizeof(r->fxsave));
		r->valid |= XSR_VCPU_HAVE_SREGS | XSR_VCPU_HAVE_FPU | XSR_VCPU_HAVE_DEBUG;
		r->nr_msrs = 0;
		msr(st, 0x174, c.sysenter_cs);
		msr(st, 0x175, c.sysenter_esp);
		msr(st, 0x176, c.sysenter_eip);
		msr(st, 0xc0000080, c.msr_efer);
		msr(st, 0xc0000081, c.msr_star);
		msr(st, 0xc0000082, c.msr_lstar);
		msr(st, 0xc0000083, c.msr_cstar);
		msr(st, 0xc0000084, c.msr_syscall_mask);
		msr(st, 0xc0000102, c.shadow_gs);
		msr(st, 0xc0000103, c.msr_tsc_aux);
	}
	return NULL;
}

const char *xsr_xen_pv_basic(const uint8_t *ctx, uint64_t len, unsigned width, struct xsr_vcpu_state *st,
			 xsr_xen_m2p_fn m2p, void *m2p_ctx)
{
	struct xsr_x86_vcpu *r = &st->r;
	uint64_t cr3;
	if (width == 8) {
		vcpu_guest_context_x86_64_t c;
		if (len != sizeof(c))
			return "64-bit vcpu_guest_context of the wrong size (need 5168 octets)";
		memcpy(&c, ctx, sizeof(c));
		const struct cpu_user_regs_x86_64 *u = &c.user_regs;
		uint64_t g[16] = {u->rax, u->rbx, u->rcx, u->rdx, u->rsi, u->rdi, u->rsp, u->rbp,
				  u->r8, u->r9, u->r10, u->r11, u->r12, u->r13, u->r14, u->r15};
		memcpy(r->gpr, g, sizeof(g));
		r->rip = u->rip;
		r->rflags = u->rflags;
		r->cs.selector = u->cs; r->ss.selector = u->ss; r->ds.selector = u->ds;
		r->es.selector = u->es; r->fs.selector = u->fs; r->gs.selector = u->gs;
		r->fs.base = c.fs_base;
		/* A 64-bit PV kernel runs in ring 3: VGCF_in_kernel says which GS base is live. */
		r->gs.base = c.flags & VGCF_in_kernel ? c.gs_base_kernel : c.gs_base_user;
		r->cs.attr = 0x2fb; /* present, DPL3, long-mode code: what Xen gives a PV64 kernel */
		r->ldt.base = c.ldt_base;
		r->cr0 = c.ctrlreg[0]; r->cr2 = c.ctrlreg[2]; cr3 = c.ctrlreg[3]; r->cr4 = c.ctrlreg[4];
		for (int i = 0; i < 8; i++)
			r->dr[i] = i == 4 || i == 5 ? 0 : c.debugreg[i];
		memcpy(r->fxsave, c.fpu_ctxt.x, sizeof(r->fxsave));
		r->efer = 0xd01; /* SCE | LME | LMA | NX: a 64-bit PV guest always runs in long mode */
		msr(st, 0xc0000100, c.fs_base);
		msr(st, 0xc0000101, c.gs_base_kernel);
		msr(st, 0xc0000102, c.gs_base_user);
		/* 64-bit: cr3 = frame << 12 (xen_pfn_to_cr3) */
		if (m2p) {
			uint64_t pfn;
			if (m2p(m2p_ctx, cr3 >> 12, &pfn) == 0)
				cr3 = pfn << 12 | (cr3 & 0xfff);
		}
	} else if (width == 4) {
		vcpu_guest_context_x86_32_t c;
		if (len != sizeof(c))
			return "32-bit vcpu_guest_context of the wrong size";
		memcpy(&c, ctx, sizeof(c));
		const struct cpu_user_regs_x86_32 *u = &c.user_regs;
		uint64_t g[16] = {u->eax, u->ebx, u->ecx, u->edx, u->esi, u->edi, u->esp, u->ebp};
		memcpy(r->gpr, g, sizeof(g));
		r->rip = u->eip;
		r->rflags = u->eflags;
		r->cs.selector = u->cs; r->ss.selector = u->ss; r->ds.selector = u->ds;
		r->es.selector = u->es; r->fs.selector = u->fs; r->gs.selector = u->gs;
		r->ldt.base = c.ldt_base;
		r->cr0 = c.ctrlreg[0]; r->cr2 = c.ctrlreg[2]; r->cr4 = c.ctrlreg[4];
		/* 32-bit PAE: cr3 = (frame << 12) | (frame >> 20) (xen_pfn_to_cr3) */
		cr3 = ((uint64_t)c.ctrlreg[3] >> 12 | (uint64_t)c.ctrlreg[3] << 20) << 12;
		for (int i = 0; i < 8; i++)
			r->dr[i] = i == 4 || i == 5 ? 0 : c.debugreg[i];
		memcpy(r->fxsave, c.fpu_ctxt.x, sizeof(r->fxsave));
	} else {
		return "guest width is neither 4 nor 8";
	}
	r->cr3 = cr3;
	r->valid |= XSR_VCPU_HAVE_SREGS | XSR_VCPU_HAVE_FPU | XSR_VCPU_HAVE_DEBUG;
	return NULL;
}

void xen_pv_xsave(const uint8_t *b, uint64_t len, struct xsr_vcpu_state *st)
{
	if (len < 16 || len - 16 > XSR_MAX_XSAVE)
		return;
	memcpy(&st->r.xcr0, b, 8);
	memcpy(st->xsave, b + 16, len - 16);
	st->r.xsave_len = (uint32_t)(len - 16);
	st->r.valid |= XSR_VCPU_HAVE_XSAVE;
}

void xen_pv_msrs(const uint8_t *b, uint64_t len, struct xsr_vcpu_state *st)
{
	for (uint64_t o = 0; o + 16 <= len; o += 16) {
		struct xen_domctl_vcpu_msr m;
		memcpy(&m, b + o, sizeof(m));
		msr(st, m.index, m.value);
	}
}
