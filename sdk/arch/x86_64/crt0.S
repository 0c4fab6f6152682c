/*
 * Entry of a guest built with the SDK on x86_64 (docs/guest-entry.md: 64-bit mode, CPL 0,
 * identity-mapped RAM, RDI = RAM size, RAM base 0, RSP = 0x80000, interrupts off, no IDT).
 *
 * The x87 unit and SSE are put in their reset state (CR4.OSFXSR is on at entry), then
 * keel_sdk_early(size, base) checks the image fits and clears .bss on Keel's stack and
 * returns the top of RAM, where the program's stack starts; keel_sdk_start(size, base) runs
 * main there and never returns.
 */
	.section .text.start, "ax"
	.code64
	.globl	_start
_start:
	mov	%rdi, %r12		/* RAM size */
	xor	%r13d, %r13d		/* RAM base */
	fninit
	movl	$0x1f80, -4(%rsp)	/* MXCSR: all exceptions masked, round to nearest */
	ldmxcsr	-4(%rsp)
	mov	%r12, %rdi
	mov	%r13, %rsi
	call	keel_sdk_early
	mov	%rax, %rsp
	xor	%ebp, %ebp
	mov	%r12, %rdi
	mov	%r13, %rsi
	call	keel_sdk_start
1:	cli
	hlt
	jmp	1b
	.section .note.GNU-stack, "", @progbits
