/*
 * Entry point of every test guest (docs/guest-entry.md for the state Keel promises).
 *
 * _start records the registers exactly as Keel left them in guest_entry_state (in .data,
 * layout in guest_arch.h) so that guests can check the entry state, then calls
 * guest_start(RDI = guest RAM size, RSI = RAM base = 0) on Keel's stack (RSP = 0x80000,
 * 16-byte aligned at the call, as the SysV ABI wants). guest_start never returns; if it did,
 * the guest halts.
 */
	.section .text.start, "ax"
	.code64
	.globl _start
_start:
	/* RSP first: saving anything else through the stack would change it. */
	mov	%rsp, guest_entry_state + 0x38(%rip)
	mov	%rax, guest_entry_state + 0x00(%rip)
	mov	%rbx, guest_entry_state + 0x08(%rip)
	mov	%rcx, guest_entry_state + 0x10(%rip)
	mov	%rdx, guest_entry_state + 0x18(%rip)
	mov	%rsi, guest_entry_state + 0x20(%rip)
	mov	%rdi, guest_entry_state + 0x28(%rip)
	mov	%rbp, guest_entry_state + 0x30(%rip)
	mov	%r8, guest_entry_state + 0x40(%rip)
	mov	%r9, guest_entry_state + 0x48(%rip)
	mov	%r10, guest_entry_state + 0x50(%rip)
	mov	%r11, guest_entry_state + 0x58(%rip)
	mov	%r12, guest_entry_state + 0x60(%rip)
	mov	%r13, guest_entry_state + 0x68(%rip)
	mov	%r14, guest_entry_state + 0x70(%rip)
	mov	%r15, guest_entry_state + 0x78(%rip)
	/* RIP of _start itself, then RFLAGS (pushf writes 8 bytes below Keel's RSP). */
	lea	_start(%rip), %rax
	mov	%rax, guest_entry_state + 0x80(%rip)
	pushfq
	popq	guest_entry_state + 0x88(%rip)
	xor	%esi, %esi
	call	guest_start
1:	cli
	hlt
	jmp	1b
