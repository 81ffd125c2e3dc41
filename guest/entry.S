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
