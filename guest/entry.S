/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vCPU entry.  The VMM enters every vCPU here already in 64-bit mode with
 * paging on, interrupts off, and the vCPU id in %rdi; no INIT/SIPI dance.
 * Each vCPU picks its own stack from guest_stacks[] so the VMM needs to know
 * nothing but the entry point.
 */
#define GUEST_STACK_SIZE 8192

	.section .text.entry, "ax"
	.globl guest_entry
	.type guest_entry, @function
guest_entry:
	cmpq	$GUEST_MAX_VCPUS, %rdi
	jae	1f
	leaq	guest_stacks(%rip), %rsp
	movq	%rdi, %rax
	incq	%rax
	shlq	$13, %rax		/* (id + 1) * GUEST_STACK_SIZE */
	addq	%rax, %rsp
	xorl	%ebp, %ebp
	call	guest_main
1:	hlt				/* unsupported id, or guest_main returned */
	jmp	1b
	.size guest_entry, . - guest_entry

/*
 * PVH entry, for QEMU's `-kernel` (and any loader of the x86/HVM direct
 * boot ABI, Xen's docs/misc/pvh.pandoc).  QEMU 7.2 loads an ELF kernel
 * whose PT_NOTE holds XEN_ELFNOTE_PHYS32_ENTRY: hw/i386/x86.c
 * (load_elfboot, read_pvh_start_addr) copies the PT_LOADs to their
 * physical addresses and its pvh.bin option ROM jumps to the note's
 * address in 32-bit protected mode, paging off, interrupts off, %ebx =
 * the start_info page.  One vCPU runs; the APs stay in the firmware.
 *
 * The guest touches nothing outside its own image (text, data, bss: its
 * counters, stacks and working-set pages), so it needs no memory size:
 * the tables below map the first GiB, in 2 MiB pages, both at 0 (for the
 * switch itself) and at GUEST_KERNEL_VMA (where it is linked), and any
 * RAM size that holds the image works (QEMU -m 4 does).  Then it sets
 * what the VMM sets in vmm/loader.c (same selectors, CR0, CR4, EFER, a
 * busy 64-bit TSS, the GDT at its linked address) and enters guest_entry
 * with %rdi = 0.  The KVM VMM never runs this: it enters at the ELF entry,
 * guest_entry, with its own tables below 1 MiB.
 */
#define GUEST_KERNEL_VMA 0xffffffff80000000	/* guest.ld checks it agrees */
#define PA(x) ((x) - GUEST_KERNEL_VMA)
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define SEL_CODE 0x08
#define SEL_DATA 0x10
#define SEL_TSS 0x18
#define PTE_P_RW 0x3
#define PTE_PS 0x80

	.globl guest_pvh_vma
	.set guest_pvh_vma, GUEST_KERNEL_VMA

	/*
	 * 4-octet alignment: QEMU finds the descriptor at the name's length
	 * rounded up to the PT_NOTE's p_align, and reads 8 octets there.
	 */
	.section .note.Xen, "a", @note
	.balign 4
	.long	4, 8, XEN_ELFNOTE_PHYS32_ENTRY
	.asciz	"Xen"
	.quad	PA(guest_pvh_start)

	.section .text.pvh, "ax"
	.code32
	.globl guest_pvh_start
	.type guest_pvh_start, @function
guest_pvh_start:
	cli
	lgdt	PA(pvh_gdt_desc32)
	movl	$0x620, %eax		/* OSXMMEXCPT OSFXSR PAE */
	movl	%eax, %cr4
	movl	$PA(pvh_pml4), %eax
	movl	%eax, %cr3
	movl	$0xc0000080, %ecx	/* EFER */
	rdmsr
	orl	$0x100, %eax		/* LME */
	wrmsr
	movl	$0x80050033, %eax	/* PG AM WP NE ET MP PE */
	movl	%eax, %cr0
	ljmp	$SEL_CODE, $PA(pvh_long)

	.code64
pvh_long:
	movabsq	$pvh_high, %rax		/* leave the identity map */
	jmp	*%rax
pvh_high:
	lgdt	pvh_gdt_desc64(%rip)
	/* The TSS descriptor: base split as the SDM says, limit 0x67, type 9 */
	leaq	pvh_tss(%rip), %rax
	movq	%rax, %rdx
	shrq	$32, %rdx
	movq	%rdx, pvh_gdt + SEL_TSS + 8(%rip)
	movl	%eax, %edx
	andl	$0xffffff, %edx
	shlq	$16, %rdx
	movq	%rax, %rcx
	shrq	$24, %rcx
	andl	$0xff, %ecx
	shlq	$56, %rcx
	orq	%rcx, %rdx
	movabsq	$0x0000890000000067, %rcx
	orq	%rcx, %rdx
	movq	%rdx, pvh_gdt + SEL_TSS(%rip)
	movw	$SEL_TSS, %ax
	ltr	%ax
	movl	$SEL_DATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %fs
	movl	%eax, %gs
	movl	%eax, %ss
	/*
	 * Known x87 and SSE state, which the guest's code (general registers
	 * only) never touches again: ST(0) = pi, ST(1) = 1 (TOP 6, so physical
	 * registers 6 and 7), XMM0 = 0x0123456789abcdef_fedcba9876543210.  The
	 * QEMU tier compares them with HMP's info registers after each import.
	 */
	fninit
	fld1
	fldpi
	movabsq	$0xfedcba9876543210, %rax
	movq	%rax, %xmm0
	movabsq	$0x0123456789abcdef, %rax
	movq	%rax, %xmm1
	punpcklqdq %xmm1, %xmm0
	pxor	%xmm1, %xmm1
	xorl	%edi, %edi		/* vCPU 0 */
	jmp	guest_entry
	.size guest_pvh_start, . - guest_pvh_start

	.section .data.pvh, "aw"
	.balign 4096
pvh_pml4:
	.quad	PA(pvh_pdpt_low) + PTE_P_RW
	.fill	510, 8, 0
	.quad	PA(pvh_pdpt_high) + PTE_P_RW	/* 511: the top 512 GiB */
pvh_pdpt_low:
	.quad	PA(pvh_pd) + PTE_P_RW
	.fill	511, 8, 0
pvh_pdpt_high:
	.fill	510, 8, 0
	.quad	PA(pvh_pd) + PTE_P_RW		/* 510: GUEST_KERNEL_VMA */
	.quad	0
pvh_pd:
	.set	pvh_i, 0
	.rept	512
	.quad	(pvh_i << 21) + PTE_PS + PTE_P_RW
	.set	pvh_i, pvh_i + 1
	.endr

	.balign 8
pvh_gdt:
	.quad	0
	.quad	0x00af9b000000ffff	/* SEL_CODE: 64-bit code, DPL 0, accessed */
	.quad	0x00cf93000000ffff	/* SEL_DATA: flat data, accessed */
	.quad	0, 0			/* SEL_TSS: filled in at pvh_high */
pvh_gdt_end:
pvh_gdt_desc32:
	.word	pvh_gdt_end - pvh_gdt - 1
	.long	PA(pvh_gdt)
pvh_gdt_desc64:
	.word	pvh_gdt_end - pvh_gdt - 1
	.quad	pvh_gdt

	.section .bss.pvh, "aw", @nobits
	.balign 128
pvh_tss:
	.skip	104
