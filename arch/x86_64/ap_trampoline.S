/*
 * Start-up code of the x86 application processors (docs/smp.md). The boot CPU copies the
 * bytes from x86_ap_trampoline to x86_ap_trampoline_end to a 4 KiB page P below 1 MiB, fills
 * in the parameters (arch/ap_boot.h), and sends INIT-SIPI-SIPI with vector P >> 12: the AP
 * starts here in real mode with CS = P >> 4, IP = 0. It goes to 32-bit protected mode on the
 * page's own flat GDT, turns on PAE, loads Keel's CR3 and EFER, enables paging (long mode,
 * compatibility mode), far-jumps to 64-bit code and calls ENTRY(arg) on the stack that
 * PARAMS points to. Everything is addressed relative to P (in EBX), so the code runs wherever
 * the page is. Once paging is on the page is read-only (arch/ap_boot.h): no writes after that.
 */
#include <arch/ap_boot.h>

	.text
	.code16
	.globl x86_ap_trampoline
	.globl x86_ap_trampoline_end
x86_ap_trampoline:
	.byte 0xeb, AP_TR_CODE - 2 /* jmp ap16 (short, so the layout below is fixed) */
	.skip AP_TR_GDT - (. - x86_ap_trampoline)
	/* AP_TR_GDT */
	.quad 0
	/* Accessed bits preset: loading a descriptor must not write the read-only page. */
	.quad 0x00cf9b000000ffff /* 0x08: 32-bit code, flat */
	.quad 0x00cf93000000ffff /* 0x10: data, flat */
	.quad 0x00af9b000000ffff /* 0x18: 64-bit code */
	.if (. - x86_ap_trampoline) != AP_TR_CODE
	.error "AP trampoline layout does not match arch/ap_boot.h"
	.endif
ap16:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	movzwl %ax, %ebx
	shll $4, %ebx /* EBX = P */
	movw $31, AP_TR_GDTR
	leal AP_TR_GDT(%ebx), %eax
	movl %eax, AP_TR_GDTR + 2
	leal (ap32 - x86_ap_trampoline)(%ebx), %eax
	movl %eax, AP_TR_FAR
	movw $AP_TR_CS32, AP_TR_FAR + 4
	lgdtl AP_TR_GDTR
	movl %cr0, %eax
	orl $1, %eax /* PE */
	movl %eax, %cr0
	ljmpl *AP_TR_FAR

	.code32
ap32:
	movw $AP_TR_DS, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movl %cr4, %eax
	orl $0x20, %eax /* PAE */
	movl %eax, %cr4
	movl AP_TR_CR3(%ebx), %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx /* EFER */
	movl AP_TR_EFER(%ebx), %eax
	movl AP_TR_EFER + 4(%ebx), %edx
	wrmsr
	leal (ap64 - x86_ap_trampoline)(%ebx), %eax
	movl %eax, AP_TR_FAR64(%ebx)
	movw $AP_TR_CS64, AP_TR_FAR64 + 4(%ebx)
	movl AP_TR_CR0(%ebx), %eax
	movl %eax, %cr0 /* paging on: long mode, still 32-bit code */
	ljmpl *AP_TR_FAR64(%ebx)

	.code64
ap64:
	movl %ebx, %ebx /* the upper half is undefined after the mode switch */
	movq AP_TR_PARAMS(%rbx), %rax
	movq (%rax), %rsp
	movq 8(%rax), %rdi
	movq AP_TR_ENTRY(%rbx), %rax
	xorl %ebp, %ebp
	pushq $0 /* fake return address: the ABI's stack alignment at the entry */
	jmpq *%rax
x86_ap_trampoline_end:

	.section .note.GNU-stack, "", @progbits
