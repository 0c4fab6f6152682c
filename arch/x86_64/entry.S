/*
 * Keel's x86-64 trap entry and a few helpers that cannot be C.
 *
 * x86_isr_stubs: 256 stubs of 4 bytes (X86_ISR_STUB_SIZE, arch/cpu.h) in 8 groups of 32,
 * each group followed by a jump onwards (a group is X86_ISR_GROUP_SIZE bytes; entry.S checks
 * both sizes). A stub pushes its vector as a sign-extended byte (push imm8: x86_trap takes
 * its low byte) and jumps (jmp rel8) to its group's jump: the exceptions' (0-31) to
 * trap_entry, which looks up whether the CPU pushed an error code (8, 10-14, 17, 21, 29, 30),
 * the interrupts' to trap_noerr, which puts a zero in the error code's place, so that struct
 * x86_trap_frame (arch/cpu.h) has both; trap_common saves the GPRs in the order of the frame,
 * calls x86_trap(frame) and returns with iretq. An interrupt runs as many instructions as
 * with the 8-byte stubs before (a push of the zero and a call to trap_common), which took
 * about 950 bytes more of the image; 16-byte ones took 3 KiB more.
 */
#include <arch/cpu.h>

	.text
	.code64

	.balign 8
	.globl x86_isr_stubs
x86_isr_stubs:
	vector = 0
	.rept 256 / X86_ISR_GROUP_STUBS
2:
	.rept X86_ISR_GROUP_STUBS
1:
	.byte 0x6a, vector & 0xff /* pushq $imm8: the vector, sign-extended */
	jmp 3f
	/* The next stub X86_ISR_STUB_SIZE bytes on (the assembler refuses if this one is
	 * longer). */
	.org 1b + X86_ISR_STUB_SIZE, 0xcc
	vector = vector + 1
	.endr
3:
	.if vector == 32
	jmp trap_entry
	.else
	jmp trap_noerr
	.endif
	.org 2b + X86_ISR_GROUP_SIZE, 0xcc
	.endr

/* From an exception's stub: the stack holds the vector (0-31), the error code if the CPU
 * pushed one, then the CPU's rip, cs, rflags, rsp, ss. */
trap_entry:
	pushq %rax
	movl 8(%rsp), %eax
	btl %eax, error_code_vectors(%rip)
	popq %rax
	jc trap_common
/* No error code: [vector][rip] becomes [vector][0][rip]. */
trap_noerr:
	pushq (%rsp)
	movq $0, 8(%rsp)
trap_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	cld
	movq %rsp, %rdi
	/* Align the stack for the C call; keep the old value in a callee-saved register. */
	movq %rsp, %rbx
	andq $-16, %rsp
	call x86_trap
	movq %rbx, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp /* vector, error code */
	iretq

/* void x86_load_gdt(const void *gdtr, uint16_t tss_selector) */
	.globl x86_load_gdt
x86_load_gdt:
	lgdt (%rdi)
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
	ltr %si
	/* Reload CS with a far return to the next instruction. */
	leaq 1f(%rip), %rax
	pushq $0x08
	pushq %rax
	lretq
1:	ret

/* void x86_call_on_stack(void (*fn)(const void *), const void *arg, void *stack_top) */
	.globl x86_call_on_stack
x86_call_on_stack:
	movq %rdx, %rsp
	xorl %ebp, %ebp
	movq %rdi, %rax
	movq %rsi, %rdi
	pushq $0 /* fake return address: keeps the ABI's stack alignment at fn's entry */
	jmp *%rax

/* void x86_service_interrupts(void): open a one-instruction interrupt window. */
	.globl x86_service_interrupts
x86_service_interrupts:
	sti
	nop
	cli
	ret

	.section .rodata
	.balign 4
/* One bit per exception vector: those that push an error code (8, 10-14, 17, 21, 29, 30). */
error_code_vectors:
	.long 0x60227d00

	.section .note.GNU-stack, "", @progbits
