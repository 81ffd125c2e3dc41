/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The built-in layout of QEMU's `cpu` section, for streams without a
 * VMDESCRIPTION (suppress-vmdesc=on): QEMU 7.2's vmstate_x86_cpu
 * (target/i386/machine.c), version_id 12, built for x86_64 (target_ulong
 * is 8 octets), the fields before its subsections, in stream order.  Every
 * field of that list is sent at version 12 (none has a test), so the
 * offsets are the running sum of the sizes: 1817 octets.  Names and sizes
 * are those QEMU's own VMDESCRIPTION gives them, so that an import with a
 * VMDESCRIPTION can check the table against it (qemu_import.c,
 * table_check; tests/qemu/nodesc.sh).  docs/qemu-compat.md, "Streams
 * without a VMDESCRIPTION".
 */
#include <string.h>

#include "qemu_internal.h"

#define N(a) (uint8_t)(sizeof(a) / sizeof((a)[0]))

static const struct qemu_tfield segment[] = { /* vmstate_segment */
	{"selector", 4, 1, 0, 0}, {"base", 8, 1, 0, 0}, {"limit", 4, 1, 0, 0}, {"flags", 4, 1, 0, 0},
};
static const struct qemu_tfield xmm[] = { /* vmstate_xmm_reg: ZMM_Q(0), ZMM_Q(1) */
	{"_q_ZMMReg[0]", 8, 1, 0, 0}, {"_q_ZMMReg[1]", 8, 1, 0, 0},
};
static const struct qemu_tfield ymmh[] = { /* vmstate_ymmh_reg: ZMM_Q(2), ZMM_Q(3) */
	{"_q_ZMMReg[2]", 8, 1, 0, 0}, {"_q_ZMMReg[3]", 8, 1, 0, 0},
};
static const struct qemu_tfield mtrr[] = { /* vmstate_mtrr_var */
	{"base", 8, 1, 0, 0}, {"mask", 8, 1, 0, 0},
};
static const struct qemu_tfield fpreg[] = { /* vmstate_fpreg: VMSTATE_WITH_TMP, mantissa u64 and exponent u16 */
	{"tmp", 10, 1, 0, 0},
};

const struct qemu_tfield qemu_cpu_v12[] = {
	{"env.regs", 8, 16, 0, 0}, /* CPU_NB_REGS */
	{"env.eip", 8, 1, 0, 0},
	{"env.eflags", 8, 1, 0, 0},
	{"env.hflags", 4, 1, 0, 0},
	{"env.fpuc", 2, 1, 0, 0},
	{"env.fpus_vmstate", 2, 1, 0, 0},
	{"env.fptag_vmstate", 2, 1, 0, 0},
	{"env.fpregs_format_vmstate", 2, 1, 0, 0},
	{"env.fpregs", 10, 8, fpreg, N(fpreg)},
	{"env.segs", 20, 6, segment, N(segment)},
	{"env.ldt", 20, 1, segment, N(segment)},
	{"env.tr", 20, 1, segment, N(segment)},
	{"env.gdt", 20, 1, segment, N(segment)},
	{"env.idt", 20, 1, segment, N(segment)},
	{"env.sysenter_cs", 4, 1, 0, 0},
	{"env.sysenter_esp", 8, 1, 0, 0},
	{"env.sysenter_eip", 8, 1, 0, 0},
	{"env.cr[0]", 8, 1, 0, 0},
	{"env.cr[2]", 8, 1, 0, 0},
	{"env.cr[3]", 8, 1, 0, 0},
	{"env.cr[4]", 8, 1, 0, 0},
	{"env.dr", 8, 8, 0, 0},
	{"env.a20_mask", 4, 1, 0, 0},
	{"env.mxcsr", 4, 1, 0, 0},
	{"env.xmm_regs[0]", 16, 16, xmm, N(xmm)},
	{"env.efer", 8, 1, 0, 0},
	{"env.star", 8, 1, 0, 0},
	{"env.lstar", 8, 1, 0, 0},
	{"env.cstar", 8, 1, 0, 0},
	{"env.fmask", 8, 1, 0, 0},
	{"env.kernelgsbase", 8, 1, 0, 0},
	{"env.smbase", 4, 1, 0, 0},
	{"env.pat", 8, 1, 0, 0},
	{"env.hflags2", 4, 1, 0, 0},
	{"env.vm_hsave", 8, 1, 0, 0},
	{"env.vm_vmcb", 8, 1, 0, 0},
	{"env.tsc_offset", 8, 1, 0, 0},
	{"env.intercept", 8, 1, 0, 0},
	{"env.intercept_cr_read", 2, 1, 0, 0},
	{"env.intercept_cr_write", 2, 1, 0, 0},
	{"env.intercept_dr_read", 2, 1, 0, 0},
	{"env.intercept_dr_write", 2, 1, 0, 0},
	{"env.intercept_exceptions", 4, 1, 0, 0},
	{"env.v_tpr", 1, 1, 0, 0},
	{"env.mtrr_fixed", 8, 11, 0, 0},
	{"env.mtrr_deftype", 8, 1, 0, 0},
	{"env.mtrr_var", 16, 8, mtrr, N(mtrr)}, /* MSR_MTRRcap_VCNT */
	{"env.interrupt_injected", 4, 1, 0, 0},
	{"env.mp_state", 4, 1, 0, 0},
	{"env.tsc", 8, 1, 0, 0},
	{"env.exception_nr", 4, 1, 0, 0},
	{"env.soft_interrupt", 1, 1, 0, 0},
	{"env.nmi_injected", 1, 1, 0, 0},
	{"env.nmi_pending", 1, 1, 0, 0},
	{"env.has_error_code", 1, 1, 0, 0},
	{"env.sipi_vector", 4, 1, 0, 0},
	{"env.mcg_cap", 8, 1, 0, 0},
	{"env.mcg_status", 8, 1, 0, 0},
	{"env.mcg_ctl", 8, 1, 0, 0},
	{"env.mce_banks", 8, 40, 0, 0}, /* MCE_BANKS_DEF * 4 */
	{"env.tsc_aux", 8, 1, 0, 0},
	{"env.system_time_msr", 8, 1, 0, 0},
	{"env.wall_clock_msr", 8, 1, 0, 0},
	{"env.xcr0", 8, 1, 0, 0},
	{"env.xstate_bv", 8, 1, 0, 0},
	{"env.xmm_regs[1]", 16, 16, ymmh, N(ymmh)}, /* VMSTATE_YMMH_REGS_VARS: QEMU names it so */
};
const unsigned qemu_cpu_v12_count = N(qemu_cpu_v12);

int qemu_cpu_v12_field(const char *name, uint64_t *off, unsigned *idx)
{
	uint64_t o = 0;
	for (unsigned i = 0; i < qemu_cpu_v12_count; i++) {
		if (!strcmp(qemu_cpu_v12[i].name, name)) {
			*off = o;
			*idx = i;
			return 0;
		}
		o += (uint64_t)qemu_cpu_v12[i].size * qemu_cpu_v12[i].n;
	}
	return -1;
}
