/* Keel's own x86-64 CPU state: GDT, TSS, IDT, page tables, traps. */
#ifndef ARCH_CPU_H
#define ARCH_CPU_H

/*
 * entry.S's 256 interrupt stubs: X86_ISR_STUB_SIZE bytes apart in groups of
 * X86_ISR_GROUP_STUBS, a group X86_ISR_GROUP_SIZE bytes (entry.S includes this header and
 * its .org directives fail the build if a stub or a group is longer).
 */
#define X86_ISR_STUB_SIZE   4
#define X86_ISR_GROUP_STUBS 32
#define X86_ISR_GROUP_SIZE  133

#ifndef __ASSEMBLER__
#include <stdbool.h>
#include <stdint.h>

#define KEEL_CS  0x08
#define KEEL_DS  0x10
#define KEEL_TSS 0x18

/* Register frame pushed by entry.S for every trap and interrupt. Order matters (entry.S). */
struct x86_trap_frame {
        uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
        uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
        uint8_t vector, vector_sign[7]; /* the stub pushes the vector sign-extended (push imm8) */
        uint64_t error;
        uint64_t rip, cs, rflags, rsp, ss;
};

/* Called from entry.S with interrupts off. */
void x86_trap(struct x86_trap_frame *f);
/* entry.S: the 256 interrupt stubs (layout above). */
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

struct hostmap;
struct boot_info;
/* Record the guard pages below a CPU's kernel, double-fault and NMI stacks (their bottoms). */
int x86_stack_guards(struct hostmap *m, const uint8_t *stack, const uint8_t *df, const uint8_t *nmi,
                     int cpu);
/*
 * Before Keel's page tables are filled and loaded (smp.c): allocate every AP's stacks and
 * record their guard pages; copy the AP trampoline, with the CR3, EFER and CR0 the APs are to
 * load, to the low page (still writable: the firmware's tables are on) and record that page
 * read+execute. No AP to start, or no low page: nothing to do. 0 or -KEEL_E*.
 */
int x86_smp_prepare(const struct boot_info *bi, struct hostmap *m, uint64_t cr3, uint64_t efer,
                    uint64_t cr0);

/* The boot CPU's entry in arch_cpu_index's table (smp.c); once its LAPIC is known. */
void x86_smp_init_boot_cpu(void);

/* Let pending physical interrupts reach Keel's IDT handlers (used after an INTR exit). */
void x86_service_interrupts(void);

#endif /* !__ASSEMBLER__ */

#endif
