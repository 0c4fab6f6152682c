/*
 * x86_64 helpers of the interrupt-controller guests (tests/guests/hostile_lapic.c,
 * hostile_apic_regs.c, hostile_apic_smp.c), which Keel boots as Linux kernels (mklinux.py,
 * `kernel =`) so that they get the local APIC at 0xfee00000 and the I/O APIC at 0xfec00000
 * (docs/x86-interrupts.md). On top of hostile_x86.h (GDT, TSS, exception IDT):
 *   - interrupt gates for vectors 32..255 (irq_idt_init), whose stubs call irq_dispatch: it
 *     calls irq_hook if one is set, counts the vector per vCPU (irq_count[cpu][vector]),
 *     keeps the RIP it interrupted (irq_rip[cpu][vector]),
 *     then, if irq_eoi[cpu] is set, writes the local APIC's EOI register;
 *   - LAPIC and I/O APIC register access (32-bit, as the model wants) and the ICR.
 * The page tables stay Keel's (identity map of the low 4 GiB, which covers both APICs).
 */
#ifndef IRQ_X86_H
#define IRQ_X86_H

#include "hostile_x86.h"

#define LAPIC_BASE  0xfee00000ull
#define IOAPIC_BASE 0xfec00000ull

#define LAPIC_ID        0x020
#define LAPIC_VERSION   0x030
#define LAPIC_TPR       0x080
#define LAPIC_PPR       0x0a0
#define LAPIC_EOI       0x0b0
#define LAPIC_LDR       0x0d0
#define LAPIC_DFR       0x0e0
#define LAPIC_SVR       0x0f0
#define LAPIC_ISR       0x100
#define LAPIC_TMR       0x180
#define LAPIC_IRR       0x200
#define LAPIC_ESR       0x280
#define LAPIC_ICR_LO    0x300
#define LAPIC_ICR_HI    0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_ERROR 0x370
#define LAPIC_TIMER_ICR 0x380
#define LAPIC_TIMER_CCR 0x390
#define LAPIC_TIMER_DCR 0x3e0

#define LAPIC_VERSION_VALUE  0x00050014u
#define LVT_MASKED           (1u << 16)
#define LVT_TIMER_PERIODIC   (1u << 17)
#define LVT_TIMER_TSC_DEADL  (2u << 17)
#define ICR_SELF             (1u << 18)
#define ICR_ALL_INCL_SELF    (2u << 18)
#define ICR_ALL_EXCL_SELF    (3u << 18)
#define ICR_LEVEL_ASSERT     (1u << 14)
#define MSR_TSC_DEADLINE     0x6e0u
#define IOAPIC_VERSION_VALUE 0x00170011u

#define IRQ_MAX_CPUS 2

static volatile uint64_t irq_count[IRQ_MAX_CPUS][256];
/* The RIP each vector's last interrupt returned to (the instruction it came before). */
static volatile uint64_t irq_rip[IRQ_MAX_CPUS][256];
static volatile uint8_t irq_eoi[IRQ_MAX_CPUS];

static inline uint32_t lapic_read(unsigned off)
{
        return *(volatile uint32_t *)(uintptr_t)(LAPIC_BASE + off);
}

static inline void lapic_write(unsigned off, uint32_t v)
{
        *(volatile uint32_t *)(uintptr_t)(LAPIC_BASE + off) = v;
}

/* The second vCPU's stack (hostile_apic_smp.c); vCPU 0 runs on Keel's at 0x80000. */
static uint8_t irq_ap_stack[16384] __attribute__((aligned(16)));

/* This vCPU's index, from the stack it runs on (no exit, unlike reading the APIC ID). */
static inline unsigned irq_cpu(void)
{
        uint64_t sp;

        __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
        return sp - gpa_of(irq_ap_stack) < sizeof(irq_ap_stack) ? 1 : 0;
}

static inline void lapic_icr(uint32_t hi, uint32_t lo)
{
        lapic_write(LAPIC_ICR_HI, hi);
        lapic_write(LAPIC_ICR_LO, lo);
}

static inline uint32_t ioapic_read(unsigned reg)
{
        *(volatile uint32_t *)(uintptr_t)IOAPIC_BASE = reg;
        return *(volatile uint32_t *)(uintptr_t)(IOAPIC_BASE + 0x10);
}

static inline void ioapic_write(unsigned reg, uint32_t v)
{
        *(volatile uint32_t *)(uintptr_t)IOAPIC_BASE = reg;
        *(volatile uint32_t *)(uintptr_t)(IOAPIC_BASE + 0x10) = v;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
        __asm__ volatile("wrmsr"
                         :
                         : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32))
                         : "memory");
}

static inline uint64_t rdtsc(void)
{
        uint32_t lo, hi;

        __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
        return ((uint64_t)hi << 32) | lo;
}

static inline void irq_enable(void)
{
        __asm__ volatile("sti" ::: "memory");
}

static inline void irq_disable(void)
{
        __asm__ volatile("cli" ::: "memory");
}

/* sti; nop: the interrupt shadow of STI ends after the NOP, so anything pending is taken. */
static inline void irq_window(void)
{
        __asm__ volatile("sti; nop; cli" ::: "memory");
}

static inline uint64_t irq_total(unsigned cpu)
{
        uint64_t n = 0;

        for (unsigned v = 32; v < 256; v++)
                n += irq_count[cpu][v];
        return n;
}

/* If set, called first by irq_dispatch for every interrupt, before the count and the EOI
 * (ipibench_x86.c reads its counter there; hostile_virtio.c counts used buffers). */
static void (*volatile irq_hook)(unsigned cpu, unsigned vector);

/* KVM's paravirtual EOI (hostile_lapic): if set, the EOI is first a test-and-clear of bit 0 of
 * this flag in one instruction, as Linux does, and the EOI register is written only if it was
 * clear; irq_pv_skipped counts the EOIs so ended. */
static volatile uint32_t *volatile irq_pv_flag;
static volatile uint64_t irq_pv_skipped;

void irq_dispatch(uint64_t vector, uint64_t rip);
void irq_dispatch(uint64_t vector, uint64_t rip)
{
        unsigned cpu = irq_cpu();
        bool set = false;

        if (irq_hook)
                irq_hook(cpu, (unsigned)(vector & 0xff));
        irq_rip[cpu][vector & 0xff] = rip;
        irq_count[cpu][vector & 0xff]++;
        if (!irq_eoi[cpu])
                return;
        if (irq_pv_flag)
                __asm__ volatile("btrl $0, %0" : "+m"(*irq_pv_flag), "=@ccc"(set) : : "memory");
        if (set)
                irq_pv_skipped++;
        else
                lapic_write(LAPIC_EOI, 0);
}

/* One 16-byte stub per vector 32..255: push the vector, then the common part. */
__asm__(".text\n"
        ".balign 16\n"
        ".globl irq_stubs\n"
        "irq_stubs:\n"
        ".set irq_vec, 32\n"
        ".rept 224\n"
        ".balign 16\n"
        "pushq $irq_vec\n"
        "jmp irq_common\n"
        ".set irq_vec, irq_vec + 1\n"
        ".endr\n"
        "irq_common:\n"
        "pushq %rax\n pushq %rcx\n pushq %rdx\n pushq %rsi\n pushq %rdi\n"
        "pushq %r8\n pushq %r9\n pushq %r10\n pushq %r11\n pushq %rbx\n"
        "mov 80(%rsp), %rdi\n"
        "mov 88(%rsp), %rsi\n"
        "mov %rsp, %rbx\n"
        "and $-16, %rsp\n"
        "call irq_dispatch\n"
        "mov %rbx, %rsp\n"
        "popq %rbx\n popq %r11\n popq %r10\n popq %r9\n popq %r8\n"
        "popq %rdi\n popq %rsi\n popq %rdx\n popq %rcx\n popq %rax\n"
        "add $8, %rsp\n"
        "iretq\n");

extern char irq_stubs[];

/* Interrupt gates for 32..255 beside hostile_x86.h's exception gates (call after it). */
static inline void irq_idt_init(void)
{
        struct hx_dtr d = {.limit = sizeof(hx_idt) - 1, .base = gpa_of(hx_idt)};

        for (unsigned v = 32; v < 256; v++) {
                uint64_t h = gpa_of(irq_stubs) + 16 * (v - 32);

                hx_idt[v] = (struct hx_gate){.off0 = (uint16_t)h,
                                             .sel = HX_SEL_KCODE,
                                             .type = 0x8e,
                                             .off1 = (uint16_t)(h >> 16),
                                             .off2 = (uint32_t)(h >> 32)};
        }
        __asm__ volatile("lidt %0" : : "m"(d) : "memory");
}

/*
 * NMIs (vector 2, an interrupt gate in place of hostile_x86.h's exception stub: nmi_idt_init):
 * nmi_dispatch counts them per vCPU (nmi_count), keeps the deepest nesting seen (nmi_max_depth:
 * 1 unless an NMI interrupted the handler of another), and, if nmi_send_inside is set, sends
 * that many self-NMIs from inside the handler (once), noting the count they left
 * (nmi_count_inside: none may arrive before the handler's IRET).
 */
#define ICR_NMI (4u << 8)

static volatile uint64_t nmi_count[IRQ_MAX_CPUS], nmi_depth[IRQ_MAX_CPUS];
static volatile uint64_t nmi_max_depth, nmi_count_inside;
static volatile unsigned nmi_send_inside;

void nmi_dispatch(void);
void nmi_dispatch(void)
{
        unsigned cpu = irq_cpu();

        if (++nmi_depth[cpu] > nmi_max_depth)
                nmi_max_depth = nmi_depth[cpu];
        nmi_count[cpu]++;
        if (nmi_send_inside) {
                unsigned n = nmi_send_inside;

                nmi_send_inside = 0;
                for (unsigned i = 0; i < n; i++)
                        lapic_icr(0, ICR_SELF | ICR_NMI);
                nmi_count_inside = nmi_count[cpu];
        }
        nmi_depth[cpu]--;
}

__asm__(".text\n"
        ".balign 16\n"
        "nmi_stub:\n"
        "pushq %rax\n pushq %rcx\n pushq %rdx\n pushq %rsi\n pushq %rdi\n"
        "pushq %r8\n pushq %r9\n pushq %r10\n pushq %r11\n pushq %rbx\n"
        "mov %rsp, %rbx\n"
        "and $-16, %rsp\n"
        "call nmi_dispatch\n"
        "mov %rbx, %rsp\n"
        "popq %rbx\n popq %r11\n popq %r10\n popq %r9\n popq %r8\n"
        "popq %rdi\n popq %rsi\n popq %rdx\n popq %rcx\n popq %rax\n"
        "iretq\n");

extern char nmi_stub[];

static inline void nmi_idt_init(void)
{
        uint64_t h = gpa_of(nmi_stub);

        hx_idt[2] = (struct hx_gate){.off0 = (uint16_t)h,
                                     .sel = HX_SEL_KCODE,
                                     .type = 0x8e,
                                     .off1 = (uint16_t)(h >> 16),
                                     .off2 = (uint32_t)(h >> 32)};
}

/*
 * Linux-boot guests: the runtime took RAM size from RDI, which Keel sets for every VM; check
 * that Keel entered us the Linux way (RSI = boot_params at 0x7000, its HdrS copied in).
 */
static inline bool irq_linux_entry_ok(void)
{
        return guest_entry_state.rsi == 0x7000 &&
               *(volatile uint32_t *)(uintptr_t)(0x7000 + 0x202) == 0x53726448;
}

#endif
