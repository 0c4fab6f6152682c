/* Keel's own x86-64 CPU state: GDT, TSS, IDT, page tables, traps. */
#ifndef ARCH_CPU_H
#define ARCH_CPU_H

#include <stdbool.h>
#include <stdint.h>

#define KEEL_CS  0x08
#define KEEL_DS  0x10
#define KEEL_TSS 0x18

/* Register frame pushed by entry.S for every trap and interrupt. Order matters (entry.S). */
struct x86_trap_frame {
        uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
        uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
        uint64_t vector, error;
        uint64_t rip, cs, rflags, rsp, ss;
};

/* Called from entry.S with interrupts off. */
void x86_trap(struct x86_trap_frame *f);
/* entry.S: the 256 interrupt stubs, each 16 bytes apart. */
extern const char x86_isr_stubs[];
/* entry.S: load GDTR, reload CS/DS/ES/SS/FS/GS and TR. */
void x86_load_gdt(const void *gdtr, uint16_t tss_selector);
/* entry.S: call fn(arg) on a new stack; never returns. */
_Noreturn void x86_call_on_stack(void (*fn)(const void *), const void *arg, void *stack_top);

/* Room for an AP's GDT and TSS (x86_ap_cpu_setup). */
#define X86_CPU_TABLES_SIZE 256
/*
 * On an application processor: build its own GDT and TSS in `tables` (X86_CPU_TABLES_SIZE
 * bytes, 16-byte aligned), with IST stacks for double faults and NMIs as on the boot CPU, and
 * load them and the shared IDT (docs/smp.md).
 */
void x86_ap_cpu_setup(void *tables, void *ist_df_top, void *ist_nmi_top);
/* Whether Keel's page tables map `pa` to itself, cacheable (for the AP trampoline's page). */
bool x86_keel_maps(uint64_t pa);

/* The boot CPU's entry in arch_cpu_index's table (smp.c); once its LAPIC is known. */
void x86_smp_init_boot_cpu(void);

/* Let pending physical interrupts reach Keel's IDT handlers (used after an INTR exit). */
void x86_service_interrupts(void);

#endif
