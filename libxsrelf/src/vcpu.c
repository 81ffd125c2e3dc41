/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vCPU section encoding and the NT_PRSTATUS view of it. */
#include <string.h>

#include "internal.h"

static uint64_t blobs_size(const struct xsr_x86_vcpu *r)
{
	return ALIGN8((uint64_t)r->xsave_len) + (uint64_t)r->nr_msrs * sizeof(struct xsr_msr) +
	       ALIGN8((uint64_t)r->lapic_len);
}

uint64_t xsr_vcpu_encoded_size(const struct xsr_vcpu_state *st)
{
	return sizeof(st->r) + blobs_size(&st->r);
}

int64_t xsr_vcpu_encode(const struct xsr_vcpu_state *st, void *buf, uint64_t len)
{
	const struct xsr_x86_vcpu *r = &st->r;
	if (r->xsave_len > XSR_MAX_XSAVE || r->nr_msrs > XSR_MAX_MSRS ||
	    (r->lapic_len != 0 && r->lapic_len != sizeof(st->lapic)))
		return XSR_E_LIMIT;
	uint64_t need = xsr_vcpu_encoded_size(st);
	if (len < need)
		return XSR_E_INVAL;
	uint8_t *p = buf;
	memset(p, 0, need);
	memcpy(p, r, sizeof(*r));
	/* Reserved fields are ours to zero whatever the backend left there. */
	memset(((struct xsr_x86_vcpu *)p)->reserved, 0, sizeof(r->reserved));
	struct xsr_x86_vcpu *o = (struct xsr_x86_vcpu *)p;
	o->gdt.reserved = o->idt.reserved = 0;
	p += sizeof(*r);
	memcpy(p, st->xsave, r->xsave_len);
	p += ALIGN8((uint64_t)r->xsave_len);
	for (uint32_t i = 0; i < r->nr_msrs; i++) {
		struct xsr_msr m = st->msrs[i];
		m.reserved = 0;
		memcpy(p, &m, sizeof(m));
		p += sizeof(m);
	}
	memcpy(p, st->lapic, r->lapic_len);
	return (int64_t)need;
}

int xsr_vcpu_decode(const void *body, uint64_t len, struct xsr_vcpu_state *st, const char **why)
{
	const uint8_t *p = body;
	if (len < sizeof(st->r)) {
		*why = "shorter than the fixed vCPU context";
		return XSR_E_FORMAT;
	}
	memset(&st->r, 0, sizeof(st->r));
	memcpy(&st->r, p, sizeof(st->r));
	const struct xsr_x86_vcpu *r = &st->r;
	if (r->valid & ~XSR_VCPU_KNOWN) {
		*why = "unknown bits in 'valid'";
		return XSR_E_FORMAT;
	}
	for (size_t i = 0; i < ARRAY_SIZE(r->reserved); i++)
		if (r->reserved[i]) {
			*why = "reserved field is not zero";
			return XSR_E_FORMAT;
		}
	if (r->gdt.reserved || r->idt.reserved) {
		*why = "descriptor-table reserved field is not zero";
		return XSR_E_FORMAT;
	}
	if (r->xsave_len > XSR_MAX_XSAVE || r->nr_msrs > XSR_MAX_MSRS ||
	    (r->lapic_len != 0 && r->lapic_len != sizeof(st->lapic))) {
		*why = "xsave_len, nr_msrs or lapic_len over its limit";
		return XSR_E_LIMIT;
	}
	if (len != sizeof(st->r) + blobs_size(r)) {
		*why = "length does not match xsave_len, nr_msrs and lapic_len";
		return XSR_E_FORMAT;
	}
	p += sizeof(st->r);
	memcpy(st->xsave, p, r->xsave_len);
	if (!xsr_is_zero(p + r->xsave_len, ALIGN8((uint64_t)r->xsave_len) - r->xsave_len)) {
		*why = "xsave padding is not zero";
		return XSR_E_FORMAT;
	}
	p += ALIGN8((uint64_t)r->xsave_len);
	memcpy(st->msrs, p, (size_t)r->nr_msrs * sizeof(struct xsr_msr));
	for (uint32_t i = 0; i < r->nr_msrs; i++)
		if (st->msrs[i].reserved) {
			*why = "MSR entry reserved field is not zero";
			return XSR_E_FORMAT;
		}
	p += (size_t)r->nr_msrs * sizeof(struct xsr_msr);
	memcpy(st->lapic, p, r->lapic_len);
	return 0;
}

int xsr_vcpu_msr(const struct xsr_vcpu_state *st, uint32_t index, uint64_t *val)
{
	for (uint32_t i = 0; i < st->r.nr_msrs && i < XSR_MAX_MSRS; i++)
		if (st->msrs[i].index == index) {
			*val = st->msrs[i].value;
			return 0;
		}
	return XSR_E_RANGE;
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

void xsr_vcpu_prstatus(const struct xsr_x86_vcpu *r, uint8_t out[XSR_PRSTATUS_SIZE])
{
	/* struct user_regs_struct order (Linux x86-64). */
	const uint64_t regs[27] = {
		r->gpr[XSR_R15], r->gpr[XSR_R14], r->gpr[XSR_R13], r->gpr[XSR_R12],
		r->gpr[XSR_RBP], r->gpr[XSR_RBX], r->gpr[XSR_R11], r->gpr[XSR_R10],
		r->gpr[XSR_R9],  r->gpr[XSR_R8],  r->gpr[XSR_RAX], r->gpr[XSR_RCX],
		r->gpr[XSR_RDX], r->gpr[XSR_RSI], r->gpr[XSR_RDI], UINT64_MAX /* orig_rax */,
		r->rip,          r->cs.selector,  r->rflags,       r->gpr[XSR_RSP],
		r->ss.selector,  r->fs.base,      r->gs.base,      r->ds.selector,
		r->es.selector,  r->fs.selector,  r->gs.selector,
	};
	memset(out, 0, XSR_PRSTATUS_SIZE);
	/* gdb names threads by pr_pid; 0 would read as "no thread". */
	uint32_t pid = r->vcpu_id + 1;
	memcpy(out + XSR_PRSTATUS_PID_OFF, &pid, 4);
	for (int i = 0; i < 27; i++)
		put64(out + XSR_PRSTATUS_REG_OFF + 8 * i, regs[i]);
}

void xsr_note_prstatus(const struct xsr_x86_vcpu *r, uint8_t note[XSR_NOTE_SIZE])
{
	Elf64_Nhdr nh = {.n_namesz = 5, .n_descsz = XSR_PRSTATUS_SIZE, .n_type = XSR_NT_PRSTATUS};
	memset(note, 0, XSR_NOTE_SIZE);
	memcpy(note, &nh, sizeof(nh));
	memcpy(note + sizeof(nh), XSR_NOTE_NAME, 5);
	xsr_vcpu_prstatus(r, note + sizeof(nh) + 8);
}
