/*
 * Keel's x86-64 trap entry and a few helpers that cannot be C.
 *
 * x86_isr_stubs: 256 stubs of 8 bytes (X86_ISR_STUB_SIZE, arch/cpu.h). Each pushes a zero
 * error code when the CPU does not push one, then calls trap_common: the return address
 * that the call pushes is where struct x86_trap_frame (arch/cpu.h) has the vector, and
 * trap_common turns it into the vector (its stub's index: (address - x86_isr_stubs) / 8,
 * since a stub is at most 7 bytes), saves the GPRs in the order of the frame, calls
 * x86_trap(frame) and returns with iretq. (16-byte stubs that pushed the vector themselves
 * took 2 KiB more of the image.)
 */
	.text
	.code64

	.balign 8
	.globl x86_isr_stubs
x86_isr_stubs:
	vector = 0
	.rept 256
1:
	/* Vectors 8, 10-14, 17, 21, 29, 30 push an error code. */
	.if (vector == 8) || ((vector >= 10) && (vector <= 14)) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
	.else
	pushq $0
	.endif
	call trap_common
	/* The next stub 8 bytes on (the assembler refuses if this one is longer). */
	.org 1b + 8, 0xcc
	vector = vector + 1
	.endr

trap_common:
	pushq %rax
	pushq %rbx
	/* The stub's return address, 16(%rsp), becomes the vector. */
	leaq x86_isr_stubs(%rip), %rbx
	subq %rbx, 16(%rsp)
	shrq $3, 16(%rsp)
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

	.section .note.GNU-stack, "", @progbits
