/*
 * Entry point of every arm64 test guest (docs/guest-entry.md for the state Keel promises:
 * EL1h, MMU and caches off, DAIF masked, x0 = RAM size, x1 = RAM base, SP_EL1 = RAM base +
 * 0x80000).
 *
 * _start records the registers exactly as Keel left them in guest_entry_state (in .data,
 * layout in guest_arch.h) so that guests can check the entry state, installs the runtime's
 * exception vectors (an unexpected exception is reported and ends the guest instead of
 * running through whatever VBAR_EL1 held), then calls guest_start(x0 = RAM size, x1 = RAM
 * base) on Keel's stack. guest_start never returns; if it did, the guest waits forever.
 */
	.section .text.start, "ax"
	.globl _start
_start:
	/* Two scratch registers, saved on Keel's stack (16-byte aligned) first. */
	stp	x16, x17, [sp, #-16]!
	adrp	x16, guest_entry_state
	add	x16, x16, :lo12:guest_entry_state
	stp	x0, x1, [x16, #0x00]
	stp	x2, x3, [x16, #0x10]
	stp	x4, x5, [x16, #0x20]
	stp	x6, x7, [x16, #0x30]
	stp	x8, x9, [x16, #0x40]
	stp	x10, x11, [x16, #0x50]
	stp	x12, x13, [x16, #0x60]
	stp	x14, x15, [x16, #0x70]
	ldp	x0, x1, [sp], #16		/* x16, x17 as they were; SP as it was */
	stp	x0, x1, [x16, #0x80]
	stp	x18, x19, [x16, #0x90]
	stp	x20, x21, [x16, #0xa0]
	stp	x22, x23, [x16, #0xb0]
	stp	x24, x25, [x16, #0xc0]
	stp	x26, x27, [x16, #0xd0]
	stp	x28, x29, [x16, #0xe0]
	str	x30, [x16, #0xf0]
	mov	x0, sp
	str	x0, [x16, #0xf8]
	adr	x0, _start
	str	x0, [x16, #0x100]
	mrs	x0, CurrentEL
	str	x0, [x16, #0x108]
	mrs	x0, DAIF
	str	x0, [x16, #0x110]
	mrs	x0, SPSel
	str	x0, [x16, #0x118]
	mrs	x0, SCTLR_EL1
	str	x0, [x16, #0x120]
	mrs	x0, VBAR_EL1
	str	x0, [x16, #0x128]

	adrp	x0, guest_vectors
	add	x0, x0, :lo12:guest_vectors
	msr	VBAR_EL1, x0
	isb

	ldp	x0, x1, [x16, #0x00]		/* RAM size, RAM base */
	mov	x29, #0				/* no frame above this one */
	mov	x30, #0
	bl	guest_start
1:	wfi
	b	1b

/*
 * Exception vectors: 16 entries of 0x80 bytes (current EL with SP_EL0, with SP_ELx, lower EL
 * AArch64, lower EL AArch32; each synchronous, IRQ, FIQ, SError), each passing its number to
 * guest_exception(vector, ESR_EL1, ELR_EL1, FAR_EL1).
 */
	.text
	.balign	2048
guest_vectors:
	.irp	n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	.balign	128
	mov	x0, #\n
	b	guest_vector_common
	.endr

guest_vector_common:
	mrs	x1, ESR_EL1
	mrs	x2, ELR_EL1
	mrs	x3, FAR_EL1
	bl	guest_exception
2:	wfi
	b	2b
