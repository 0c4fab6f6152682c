/*
 * void svm_vmrun(uint64_t vmcb_pa, struct x86_gprs *gprs, uint64_t host_vmcb_pa)
 *
 * Contract (see svm.h): called with interrupts off. Physical interrupts arriving while the
 * guest runs cause an INTR intercept (host RFLAGS.IF is 1 at VMRUN with V_INTR_MASKING set,
 * GIF keeps them pending until Keel is ready); they are left pending with IF=0 on return.
 * struct x86_gprs offsets: rax 0, rbx 8, rcx 16, rdx 24, rsi 32, rdi 40, rbp 48, r8 56 ...
 * r15 112 (checked by _Static_assert in svm.c).
 */
	.text
	.code64
	.globl svm_vmrun
svm_vmrun:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	pushq %rsi /* gprs */
	pushq %rdx /* host vmcb */

	clgi
	movq %rdx, %rax
	vmsave
	movq %rdi, %rax
	vmload

	movq 8(%rsi), %rbx
	movq 16(%rsi), %rcx
	movq 24(%rsi), %rdx
	movq 40(%rsi), %rdi
	movq 48(%rsi), %rbp
	movq 56(%rsi), %r8
	movq 64(%rsi), %r9
	movq 72(%rsi), %r10
	movq 80(%rsi), %r11
	movq 88(%rsi), %r12
	movq 96(%rsi), %r13
	movq 104(%rsi), %r14
	movq 112(%rsi), %r15
	movq 32(%rsi), %rsi

	sti
	vmrun
	/* #VMEXIT: GIF = 0, RAX = guest VMCB address, RSP = as before VMRUN. */
	vmsave
	movq 8(%rsp), %rax /* gprs */
	movq %rbx, 8(%rax)
	movq %rcx, 16(%rax)
	movq %rdx, 24(%rax)
	movq %rsi, 32(%rax)
	movq %rdi, 40(%rax)
	movq %rbp, 48(%rax)
	movq %r8, 56(%rax)
	movq %r9, 64(%rax)
	movq %r10, 72(%rax)
	movq %r11, 80(%rax)
	movq %r12, 88(%rax)
	movq %r13, 96(%rax)
	movq %r14, 104(%rax)
	movq %r15, 112(%rax)

	popq %rax /* host vmcb */
	vmload
	cli
	stgi
	popq %rsi
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret

	.section .note.GNU-stack, "", @progbits
