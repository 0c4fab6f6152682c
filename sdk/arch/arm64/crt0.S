/*
 * Entry of a guest built with the SDK on arm64 (docs/guest-entry.md: EL1h, MMU and caches
 * off, DAIF masked, x0 = RAM size, x1 = RAM base, SP_EL1 = RAM base + 0x80000).
 *
 * Installs the SDK's exception vectors (an unexpected exception is reported and ends the VM
 * with KEEL_EXIT_EXCEPTION), lets EL1 and EL0 use FP/SIMD (CPACR_EL1.FPEN), then calls
 * keel_sdk_early(size, base) on Keel's stack: it checks the image fits, clears .bss and turns
 * the MMU on (arch.c), and returns the top of RAM, where the program's stack starts;
 * keel_sdk_start(size, base) runs main there and never returns. Until the MMU is on every
 * access is a Device access, so the runtime is built with -mstrict-align.
 */
	.section .text.start, "ax"
	.globl	_start
_start:
	mov	x19, x0			/* RAM size */
	mov	x20, x1			/* RAM base */
	adrp	x2, sdk_vectors
	add	x2, x2, :lo12:sdk_vectors
	msr	VBAR_EL1, x2
	mrs	x2, CPACR_EL1
	orr	x2, x2, #(3 << 20)	/* FPEN: no trap of FP/SIMD at EL1 or EL0 */
	msr	CPACR_EL1, x2
	isb
	mov	x29, #0
	mov	x30, #0
	bl	keel_sdk_early
	mov	sp, x0
	mov	x0, x19
	mov	x1, x20
	bl	keel_sdk_start
1:	wfi
	b	1b

/*
 * Exception vectors: 16 entries of 0x80 bytes (current EL with SP_EL0, with SP_ELx, lower EL
 * AArch64, lower EL AArch32; each synchronous, IRQ, FIQ, SError), each passing its number to
 * sdk_arch_exception(vector, ESR_EL1, ELR_EL1, FAR_EL1).
 */
	.text
	.balign	2048
sdk_vectors:
	.irp	n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	.balign	128
	mov	x0, #\n
	b	sdk_vector_common
	.endr

sdk_vector_common:
	mrs	x1, ESR_EL1
	mrs	x2, ELR_EL1
	mrs	x3, FAR_EL1
	bl	sdk_arch_exception
2:	wfi
	b	2b
	.section .note.GNU-stack, "", @progbits
