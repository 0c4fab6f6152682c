/*
 * x86_64 guests with a second vCPU (hostile_apic_smp.c, hostile_virtio.c), booted as Linux
 * kernels with `vcpus = 2`: on top of irq_x86.h, a real-mode trampoline copied to 0x8000 that
 * takes vCPU 1 from its SIPI (vector 8) through protected mode to long mode on Keel's page
 * tables (identity map at CR3 0x1000) and jumps to a C function on irq_ap_stack;
 * smp_start_ap sends INIT-SIPI-SIPI. The AP function calls gdt_idt_reload first.
 */
#ifndef SMP_X86_H
#define SMP_X86_H

#include "irq_x86.h"

#define TRAMPOLINE 0x8000ull

/* Real mode at 0x8000 (SIPI vector 8) -> protected mode -> long mode -> ap_entry64. */
extern char tramp_start[], tramp_end[], tramp_stack[], tramp_target[];
__asm__(".data\n"
        ".balign 16\n"
        ".globl tramp_start, tramp_end, tramp_stack, tramp_target\n"
        "tramp_start:\n"
        ".code16\n"
        "cli\n"
        "xorw %ax, %ax\n"
        "movw %ax, %ds\n"
        "lgdtl (tramp_gdtr - tramp_start + 0x8000)\n"
        "movl %cr0, %eax\n"
        "orl $1, %eax\n"
        "movl %eax, %cr0\n"
        "ljmpl $0x08, $(tramp32 - tramp_start + 0x8000)\n"
        ".code32\n"
        "tramp32:\n"
        "movw $0x10, %ax\n"
        "movw %ax, %ds\n movw %ax, %es\n movw %ax, %ss\n"
        "movl %cr4, %eax\n"
        "orl $0x620, %eax\n" /* PAE, OSFXSR, OSXMMEXCPT */
        "movl %eax, %cr4\n"
        "movl $0x1000, %eax\n" /* Keel's identity map */
        "movl %eax, %cr3\n"
        "movl $0xc0000080, %ecx\n"
        "rdmsr\n"
        "orl $0x100, %eax\n"
        "wrmsr\n"
        "movl %cr0, %eax\n"
        "orl $0x80000001, %eax\n"
        "movl %eax, %cr0\n"
        "ljmpl $0x18, $(tramp64 - tramp_start + 0x8000)\n"
        ".code64\n"
        "tramp64:\n"
        "movq (tramp_stack - tramp_start + 0x8000), %rsp\n"
        "movq (tramp_target - tramp_start + 0x8000), %rax\n"
        "jmp *%rax\n"
        ".balign 8\n"
        "tramp_gdt:\n"
        ".quad 0, 0x00cf9a000000ffff, 0x00cf92000000ffff, 0x00af9a000000ffff\n"
        "tramp_gdtr:\n"
        ".word 31\n"
        ".long tramp_gdt - tramp_start + 0x8000\n"
        ".balign 8\n"
        "tramp_stack: .quad 0\n"
        "tramp_target: .quad 0\n"
        "tramp_end:\n"
        ".text\n");

static inline void gdt_idt_reload(void)
{
        struct hx_dtr g = {.limit = sizeof(hx_gdt) - 1, .base = gpa_of(hx_gdt)};
        struct hx_dtr d = {.limit = sizeof(hx_idt) - 1, .base = gpa_of(hx_idt)};

        __asm__ volatile("lgdt %0\n\t"
                         "pushq %1\n\t"
                         "leaq 1f(%%rip), %%rax\n\t"
                         "pushq %%rax\n\t"
                         "lretq\n"
                         "1:\n\t"
                         "mov %2, %%ds\n\t"
                         "mov %2, %%es\n\t"
                         "mov %2, %%ss\n\t"
                         "lidt %3"
                         :
                         : "m"(g), "i"(HX_SEL_KCODE), "r"((uint64_t)HX_SEL_KDATA), "m"(d)
                         : "rax", "memory");
}

/* Start vCPU 1 at `entry` (on irq_ap_stack) with INIT-SIPI-SIPI through the trampoline. */
static inline void smp_start_ap(void (*entry)(void))
{
        memcpy((void *)(uintptr_t)TRAMPOLINE, tramp_start, (size_t)(tramp_end - tramp_start));
        *(volatile uint64_t *)(uintptr_t)(TRAMPOLINE + (uint64_t)(tramp_stack - tramp_start)) =
            gpa_of(irq_ap_stack + sizeof(irq_ap_stack));
        *(volatile uint64_t *)(uintptr_t)(TRAMPOLINE + (uint64_t)(tramp_target - tramp_start)) =
            gpa_of((void *)entry);
        lapic_icr(1u << 24, 0x4500);        /* INIT, level assert */
        lapic_icr(1u << 24, 0x4600 | 0x08); /* SIPI, vector 8 = 0x8000 */
        lapic_icr(1u << 24, 0x4600 | 0x08); /* the protocol's second SIPI: ignored */
}

#endif
