/*
 * hostile_lapic (x86_64, booted as a Linux kernel: mklinux.py, `kernel =`): interrupt storms
 * from its own local APIC (docs/x86-interrupts.md), each with the count the model promises:
 *   1. TSC-deadline timer armed in the past, N times in a loop with interrupts on and a
 *      handler that EOIs: N interrupts (each fires during its WRMSR and is taken at once),
 *      and the MSR reads 0 after each;
 *   2. the same with interrupts off: the N expiries coalesce into one interrupt;
 *   3. N self-IPIs (ICR fixed, shorthand self) and N with shorthand all-including-self,
 *      handler EOIs: N interrupts each;
 *   4. N self-IPIs of one vector whose handler does not EOI: one interrupt (the vector
 *      stays in service, the rest coalesce in IRR), one more after the guest's EOI, none
 *      after the second;
 *   5. one self-IPI of every vector 32..255 with interrupts off and no EOI in the handler:
 *      one delivered per EOI, highest first, each exactly once;
 *   6. `sti; hlt; cli` with the TSC-deadline timer due a little later (a different delay each
 *      round), HALT_ROUNDS times: the interrupt ends the HLT and is taken before the CLI (STI's
 *      shadow covers the HLT only), one HLT per interrupt;
 *   7. CR8 and the TPR register agree both ways, and CR8 = 15 holds back a self-IPI of
 *      class 5 until CR8 = 0 (and an exit, on SVM);
 *   8. NMIs through the ICR, interrupts off: one to self (shorthand self, own APIC ID,
 *      all-including-self) is taken before the next instruction, all-excluding-self reaches
 *      nobody; N NMIs sent from inside the NMI handler: none until its IRET, then exactly one,
 *      before the instruction after the first send; N self-NMIs in a loop: N;
 *   9. `sti; out` and `sti; rep outsb` with a self-IPI pending, SHADOW_ROUNDS times each: the
 *      interrupt is taken right after the port write Keel completes (STI's shadow covers
 *      that one instruction), so the instruction after it already sees it counted;
 *  10. the 8259 pair (config pc_testdev = yes: its port 0x200b drives ISA IRQ 11), programmed
 *      as Linux does (bases 0x70/0x78) and reaching the CPU through LINT0 in ExtINT mode, the
 *      handler EOIing both PICs: N pulses of IRQ 11 with interrupts on give N interrupts at
 *      vector 0x7b; IRQ 11 level-triggered (ELCR) and held high gives one interrupt per EOI
 *      until the handler lowers the line at the Nth; a pulse while LINT0 is masked gives none
 *      until LINT0 is unmasked, then one;
 *  11. KVM's paravirtual EOI (CPUID 0x40000100: "KVMKVMKVM", 0x40000101 EAX bit 6; MSR
 *      0x4b564d04): the MSR with bit 1 set, or bit 0 set and a flag outside guest RAM: #GP,
 *      the value kept; enabled, N self-IPIs whose handler ends with Linux's test-and-clear of
 *      the flag: N interrupts, every one ended through the flag, ISR empty after; a self-IPI of
 *      a lower class sent from inside a handler (Keel then withdraws the flag, so the handler
 *      writes EOI): taken right after that handler's IRET; a level-triggered vector (self-IPI
 *      with TMR set is not possible: an I/O APIC pin) is left to the unit tests; MSR 0: no
 *      flag set again;
 * then exits 0; a wrong count prints FAIL and exits 1.
 * Built with HOSTILE_LAPIC_PERIODIC (hostile_lapic_periodic) it does none of that but, for
 * ever, runs the timer periodic with initial count 1 and divide by 1 (expiring at every TSC
 * tick, were it not for Keel's minimum period), handler EOIs; the main loop prints a line
 * per progress step with the interrupt count. The test stops it from Keel's monitor.
 */
#include "irq_x86.h"

#define N          3000
#define VEC_TIMER  0x40
#define VEC_IPI    0x50
#define VEC_NO_EOI 0x60

static unsigned failed, checks;

static void expect(const char *what, uint64_t got, uint64_t want)
{
        checks++;
        if (got == want)
                return;
        failed++;
        guest_printf("FAIL: hostile_lapic: %s: %lu, expected %lu\n", what, (unsigned long)got,
                     (unsigned long)want);
}

/* A bound rather than a value: got may be anything up to max. */
static void expect_at_most(const char *what, uint64_t got, uint64_t max)
{
        checks++;
        if (got <= max)
                return;
        failed++;
        guest_printf("FAIL: hostile_lapic: %s: %lu, expected at most %lu\n", what,
                     (unsigned long)got, (unsigned long)max);
}

static bool vec_bit(unsigned base, unsigned v)
{
        return (lapic_read(base + 0x10 * (v / 32)) >> (v % 32)) & 1;
}

static void deadline_storm(void)
{
        uint64_t before = irq_count[0][VEC_TIMER], nonzero = 0;

        lapic_write(LAPIC_LVT_TIMER, VEC_TIMER | LVT_TIMER_TSC_DEADL);
        irq_eoi[0] = 1;
        irq_enable();
        for (unsigned i = 0; i < N; i++) {
                wrmsr(MSR_TSC_DEADLINE, i & 1 ? 1 : rdtsc() - 1);
                if (rdmsr(MSR_TSC_DEADLINE))
                        nonzero++;
        }
        irq_disable();
        expect("TSC deadline in the past, interrupts on: interrupts",
               irq_count[0][VEC_TIMER] - before, N);
        expect("TSC deadline in the past: MSR nonzero after firing", nonzero, 0);

        before = irq_count[0][VEC_TIMER];
        for (unsigned i = 0; i < N; i++)
                wrmsr(MSR_TSC_DEADLINE, 1 + i);
        irq_window();
        irq_window();
        expect("TSC deadline in the past, interrupts off: interrupts after STI",
               irq_count[0][VEC_TIMER] - before, 1);
        lapic_write(LAPIC_LVT_TIMER, LVT_MASKED);
        guest_printf("hostile_lapic: TSC deadline in the past %u times: %u interrupts with "
                     "interrupts on, 1 with them off\n",
                     N, N);
}

static void ipi_storm(uint32_t shorthand, const char *name)
{
        uint64_t before = irq_count[0][VEC_IPI];

        irq_eoi[0] = 1;
        irq_enable();
        for (unsigned i = 0; i < N; i++)
                lapic_icr(0, shorthand | VEC_IPI);
        irq_disable();
        expect(name, irq_count[0][VEC_IPI] - before, N);
        guest_printf("hostile_lapic: %u IPIs to %s with EOI: %lu interrupts\n", N,
                     shorthand == ICR_SELF ? "self" : "all including self",
                     (unsigned long)(irq_count[0][VEC_IPI] - before));
}

static void no_eoi_storm(void)
{
        uint64_t before = irq_count[0][VEC_NO_EOI];

        irq_eoi[0] = 0;
        irq_enable();
        for (unsigned i = 0; i < N; i++)
                lapic_icr(0, ICR_SELF | VEC_NO_EOI);
        irq_disable();
        expect("self-IPIs without EOI: interrupts", irq_count[0][VEC_NO_EOI] - before, 1);
        expect("self-IPIs without EOI: in service", vec_bit(LAPIC_ISR, VEC_NO_EOI), 1);
        expect("self-IPIs without EOI: still requested", vec_bit(LAPIC_IRR, VEC_NO_EOI), 1);
        lapic_write(LAPIC_EOI, 0);
        irq_window();
        expect("self-IPIs without EOI: interrupts after one EOI", irq_count[0][VEC_NO_EOI] - before,
               2);
        lapic_write(LAPIC_EOI, 0);
        irq_window();
        expect("self-IPIs without EOI: interrupts after two EOIs",
               irq_count[0][VEC_NO_EOI] - before, 2);
        expect("self-IPIs without EOI: in service at the end", vec_bit(LAPIC_ISR, VEC_NO_EOI), 0);
        expect("self-IPIs without EOI: requested at the end", vec_bit(LAPIC_IRR, VEC_NO_EOI), 0);
        guest_printf("hostile_lapic: %u self-IPIs without EOI: 1 interrupt, 1 more per EOI\n", N);
}

static void all_vectors(void)
{
        uint64_t before[256];

        for (unsigned v = 32; v < 256; v++) {
                before[v] = irq_count[0][v];
                lapic_icr(0, ICR_SELF | v);
        }
        irq_eoi[0] = 0;
        for (unsigned k = 0; k < 224; k++) {
                unsigned top = 255 - k;

                irq_window();
                if (irq_count[0][top] - before[top] != 1) {
                        failed++;
                        guest_printf("FAIL: hostile_lapic: vector %u delivered %lu times after "
                                     "%u EOIs\n",
                                     top, (unsigned long)(irq_count[0][top] - before[top]), k);
                }
                if (top > 32 && irq_count[0][top - 1] != before[top - 1]) {
                        failed++;
                        guest_printf("FAIL: hostile_lapic: vector %u delivered before the EOI "
                                     "of %u\n",
                                     top - 1, top);
                }
                lapic_write(LAPIC_EOI, 0);
        }
        checks++;
        for (unsigned v = 32; v < 256; v++)
                if (vec_bit(LAPIC_ISR, v) || vec_bit(LAPIC_IRR, v)) {
                        failed++;
                        guest_printf("FAIL: hostile_lapic: vector %u still in ISR/IRR\n", v);
                }
        guest_printf("hostile_lapic: all 224 vectors at once without EOI: one per EOI, highest "
                     "first\n");
}

/*
 * Round r's deadline is (r + 1) * HALT_STEP ticks after the WRMSR: from before the WRMSR's exit
 * has ended to well after the HLT, so that some round's deadline passes, and Keel's host timer
 * set for it fires, while the vCPU is on its way from the WRMSR to the HLT. A host interrupt
 * taken right after the STI leaves the vCPU in STI's shadow with the timer pending: the
 * interrupt must still end the HLT, not be taken before it (a HLT then never ends).
 */
#define HALT_ROUNDS 64
#define HALT_STEP   3000 /* TSC ticks */

static void halt_wake(void)
{
        uint64_t before = irq_count[0][VEC_TIMER], halts = 0;

        lapic_write(LAPIC_LVT_TIMER, VEC_TIMER | LVT_TIMER_TSC_DEADL);
        irq_eoi[0] = 1;
        for (unsigned r = 0; r < HALT_ROUNDS; r++) {
                uint64_t n = irq_count[0][VEC_TIMER];

                wrmsr(MSR_TSC_DEADLINE, rdtsc() + (uint64_t)(r + 1) * HALT_STEP);
                /* Bounded: a HLT that returns with the interrupt still pending comes round. */
                for (unsigned i = 0; i < 1000 && irq_count[0][VEC_TIMER] == n; i++, halts++)
                        __asm__ volatile("sti; hlt; cli" ::: "memory");
        }
        lapic_write(LAPIC_LVT_TIMER, LVT_MASKED);
        wrmsr(MSR_TSC_DEADLINE, 0);
        expect("sti; hlt; cli with the timer due: interrupts", irq_count[0][VEC_TIMER] - before,
               HALT_ROUNDS);
        expect("sti; hlt; cli with the timer due: HLTs", halts, HALT_ROUNDS);
        guest_printf("hostile_lapic: sti; hlt; cli with the TSC deadline %u to %u ticks ahead, %u "
                     "times: %lu interrupts in %lu HLTs\n",
                     HALT_STEP, HALT_ROUNDS * HALT_STEP, HALT_ROUNDS,
                     (unsigned long)(irq_count[0][VEC_TIMER] - before), (unsigned long)halts);
}

static inline void write_cr8(uint64_t v)
{
        __asm__ volatile("mov %0, %%cr8" : : "r"(v) : "memory");
}

static inline uint64_t read_cr8(void)
{
        uint64_t v;

        __asm__ volatile("mov %%cr8, %0" : "=r"(v));
        return v;
}

/* CR8 is TPR[7:4] (SDM 10.8.6.1), both ways, and it masks interrupts by class. */
static void cr8_tpr(void)
{
        uint64_t before = irq_count[0][VEC_IPI];

        write_cr8(5);
        expect("TPR after MOV CR8 = 5", lapic_read(LAPIC_TPR), 0x50);
        lapic_write(LAPIC_TPR, 0x73);
        expect("CR8 after TPR = 0x73", read_cr8(), 7);
        write_cr8(0xf);
        irq_eoi[0] = 1;
        lapic_icr(0, ICR_SELF | VEC_IPI);
        irq_window();
        expect("self-IPI of class 5 with CR8 = 15: taken", irq_count[0][VEC_IPI] - before, 0);
        write_cr8(0);
        /* On SVM Keel sees the new CR8 at the next exit (docs/x86-interrupts.md): one here. */
        (void)lapic_read(LAPIC_VERSION);
        irq_window();
        expect("the same after CR8 = 0 and an exit: taken", irq_count[0][VEC_IPI] - before, 1);
        expect("TPR after MOV CR8 = 0", lapic_read(LAPIC_TPR), 0);
        guest_printf("hostile_lapic: CR8 and TPR agree both ways; CR8 masks by class\n");
}

static void nmis(void)
{
        uint64_t before = nmi_count[0], after_first;

        irq_disable();
        lapic_icr(0, ICR_SELF | ICR_NMI);
        expect("self-NMI (shorthand self), interrupts off: taken at once", nmi_count[0] - before,
               1);
        lapic_icr(0, ICR_NMI | ICR_LEVEL_ASSERT | 0x42); /* APIC ID 0; the vector is ignored */
        expect("NMI to its own APIC ID: taken at once", nmi_count[0] - before, 2);
        lapic_icr(0, ICR_ALL_INCL_SELF | ICR_NMI);
        expect("NMI to all including self: taken at once", nmi_count[0] - before, 3);
        lapic_icr(0, ICR_ALL_EXCL_SELF | ICR_NMI);
        irq_window();
        expect("NMI to all excluding self on one vCPU: nobody", nmi_count[0] - before, 3);
        expect("NMIs nested so far", nmi_max_depth, 1);

        before = nmi_count[0];
        nmi_send_inside = N;
        lapic_icr(0, ICR_SELF | ICR_NMI);
        after_first = nmi_count[0];
        expect("NMIs sent inside the NMI handler: taken inside it", nmi_count_inside - before, 1);
        expect("NMIs sent inside the NMI handler: one, right after its IRET", after_first - before,
               2);
        irq_window();
        expect("NMIs sent inside the NMI handler: in all", nmi_count[0] - before, 2);
        expect("NMIs nested", nmi_max_depth, 1);

        before = nmi_count[0];
        for (unsigned i = 0; i < N; i++)
                lapic_icr(0, ICR_SELF | ICR_NMI);
        expect("self-NMIs in a loop", nmi_count[0] - before, N);
        guest_printf("hostile_lapic: NMIs: self, own ID, all: at once; %u sent in the handler: 1 "
                     "after its IRET; %u in a loop: %lu\n",
                     N, N, (unsigned long)(nmi_count[0] - before));
}

static __attribute__((unused)) noreturn void periodic_forever(void)
{
        uint64_t step = 0, last = rdtsc(), start = last;

        irq_eoi[0] = 1;
        lapic_write(LAPIC_TIMER_DCR, 0xb); /* divide by 1 */
        lapic_write(LAPIC_LVT_TIMER, VEC_TIMER | LVT_TIMER_PERIODIC);
        lapic_write(LAPIC_TIMER_ICR, 1);
        guest_printf("hostile_lapic: periodic timer, initial count 1, divide 1, EOI in the "
                     "handler: looping for ever\n");
        irq_enable();
        for (;;) {
                uint64_t now = rdtsc();

                if (now - last > (1ull << 28)) {
                        last = now;
                        guest_printf("hostile_lapic: periodic step %lu: %lu timer interrupts "
                                     "in %lu M TSC ticks\n",
                                     (unsigned long)++step, (unsigned long)irq_count[0][VEC_TIMER],
                                     (unsigned long)((now - start) >> 20));
                }
        }
}

#define SHADOW_ROUNDS 100
/*
 * Rounds of `sti; rep outsb` whose interrupt may come after the next instruction: under load
 * on QEMU 7.2 1 round of 100 did, in 1 looped run of 13 (2026-12-07, 3 busy loops beside) and
 * once before; the cause was not found (docs/x86-interrupts.md). The plain `sti; out` allows
 * none.
 */
#define SHADOW_LATE_OUTS 2
#define UART_SCRATCH     0x3ff

/* Interrupts off, one self-IPI pending; then `sti`, the port write, and a read of the count
 * before `cli`: it must include the interrupt. */
static void sti_port_write(void)
{
        static const uint8_t two[2] = {1, 2};
        unsigned late_out = 0, late_outs = 0;

        irq_eoi[0] = 1;
        for (unsigned r = 0; r < SHADOW_ROUNDS; r++) {
                uint64_t before = irq_count[0][VEC_IPI], seen;
                uint64_t rsi = (uint64_t)(uintptr_t)two, rcx = 2;

                lapic_icr(0, ICR_SELF | VEC_IPI);
                __asm__ volatile("sti\n\t"
                                 "outb %%al, %%dx\n\t"
                                 "mov %2, %0\n\t"
                                 "cli"
                                 : "=r"(seen)
                                 : "a"(0x5a), "m"(irq_count[0][VEC_IPI]), "d"(UART_SCRATCH)
                                 : "memory");
                late_out += seen != before + 1;
                before = irq_count[0][VEC_IPI];
                lapic_icr(0, ICR_SELF | VEC_IPI);
                __asm__ volatile("sti\n\t"
                                 "rep outsb\n\t"
                                 "mov %4, %0\n\t"
                                 "cli"
                                 : "=r"(seen), "+S"(rsi), "+c"(rcx)
                                 : "d"(UART_SCRATCH), "m"(irq_count[0][VEC_IPI])
                                 : "memory");
                late_outs += seen != before + 1;
        }
        expect("sti; out with an interrupt pending: rounds where it came after the next "
               "instruction",
               late_out, 0);
        expect_at_most("sti; rep outsb with an interrupt pending: rounds where it came after "
                       "the next instruction",
                       late_outs, SHADOW_LATE_OUTS);
        guest_printf("hostile_lapic: sti; out and sti; rep outsb with an interrupt pending, %u "
                     "times each: taken right after the port write (rep outsb: %u late, at "
                     "most %u allowed)\n",
                     SHADOW_ROUNDS, late_outs, SHADOW_LATE_OUTS);
}

#define WINDOW_HLT_ROUNDS   50
#define WINDOW_HLT_BACKSTOP 20000000 /* TSC ticks: what ends a HLT the IPI did not */
/*
 * IPIs that may return to the HLT: a margin. QEMU 7.2 hides the shadow at a physical-interrupt
 * exit taken inside it too (Keel's host timer landing between the STI and the HLT); with
 * Keel answering only the VINTR exit, 1 of the 50 did now and then under load, and one CI run
 * failed on it. Keel now waits for the HLT's exit after such exits: 0 in 99 looped runs under
 * load (docs/x86-interrupts.md). Without the VINTR case all 50 do.
 */
#define WINDOW_HLT_LEAKS 5

/*
 * With a self-IPI waiting in IRR and interrupts off, `out; sti; hlt; cli`: the OUT's exit
 * makes Keel ask for an interrupt window, which opens after STI's shadow, that is after the
 * HLT has begun: the IPI ends the HLT and returns to the CLI. QEMU 7.2's SVM opens the window
 * right after the STI, inside its shadow (a VINTR exit with RIP at the HLT and no shadow in
 * the VMCB): an interrupt injected there returned to the HLT, which then waited for the next
 * interrupt (here the TSC-deadline timer armed as a backstop; for ever without one:
 * hostile_lapic's halt_wake hung so under load, when Keel's host timer made the vCPU exit
 * just before its STI). The check is where the IPI returned to, not how long the HLT took.
 */
static void window_hlt(void)
{
        unsigned ipis = 0, before_hlt = 0;

        lapic_write(LAPIC_LVT_TIMER, VEC_TIMER | LVT_TIMER_TSC_DEADL);
        irq_eoi[0] = 1;
        for (unsigned r = 0; r < WINDOW_HLT_ROUNDS; r++) {
                uint64_t ipi = irq_count[0][VEC_IPI], after_hlt;

                lapic_icr(0, ICR_SELF | VEC_IPI); /* interrupts off: it waits in IRR */
                wrmsr(MSR_TSC_DEADLINE, rdtsc() + WINDOW_HLT_BACKSTOP);
                __asm__ volatile("outb %%al, %%dx\n\t"
                                 "sti\n\t"
                                 "hlt\n"
                                 "1:\n\t"
                                 "cli\n\t"
                                 "lea 1b(%%rip), %0"
                                 : "=r"(after_hlt)
                                 : "a"(0x5a), "d"(UART_SCRATCH)
                                 : "memory");
                wrmsr(MSR_TSC_DEADLINE, 0);
                ipis += irq_count[0][VEC_IPI] - ipi == 1;
                before_hlt += irq_rip[0][VEC_IPI] != after_hlt;
        }
        lapic_write(LAPIC_LVT_TIMER, LVT_MASKED);
        /* a backstop that fired late (a long descheduling of the emulator) is taken here */
        irq_enable();
        irq_disable();
        expect("out; sti; hlt with an IPI pending: IPIs taken", ipis, WINDOW_HLT_ROUNDS);
        expect_at_most("out; sti; hlt with an IPI pending: IPIs taken before the HLT", before_hlt,
                       WINDOW_HLT_LEAKS);
        guest_printf("hostile_lapic: out; sti; hlt with an IPI pending, %u times: %u IPIs, %u "
                     "taken before the HLT (at most %u allowed)\n",
                     WINDOW_HLT_ROUNDS, ipis, before_hlt, WINDOW_HLT_LEAKS);
}

#define PIC_IRQ11_PORT  0x200b /* pc_testdev: ISA IRQ 11 (and I/O APIC pin 11) */
#define VEC_PIC11       0x7b   /* slave base 0x78 + 3 */
#define LAPIC_LVT_LINT0 0x350
#define LVT_EXTINT      (7u << 8)

static volatile unsigned pic_level_left; /* level phase: lower IRQ 11 at the last one */

/* Every interrupt: EOI both PICs for the 8259's vectors (the LAPIC's EOI stays off). */
static void pic_hook(unsigned cpu, unsigned vector)
{
        (void)cpu;
        if (vector != VEC_PIC11)
                return;
        if (pic_level_left && !--pic_level_left)
                outb(PIC_IRQ11_PORT, 0);
        outb(0xa0, 0x20);
        outb(0x20, 0x20);
}

static void pic_storm(void)
{
        static const uint8_t init[2][4] = {{0x11, 0x70, 0x04, 0x01}, {0x11, 0x78, 0x02, 0x01}};
        uint64_t before;

        for (unsigned c = 0; c < 2; c++)
                for (unsigned i = 0; i < 4; i++)
                        outb((uint16_t)((c ? 0xa0 : 0x20) + !!i), init[c][i]);
        outb(0x21, 0xfb); /* the cascade only */
        outb(0xa1, 0xf7); /* IRQ 11 only */
        irq_eoi[0] = 0;
        irq_hook = pic_hook;
        lapic_write(LAPIC_LVT_LINT0, LVT_EXTINT);

        before = irq_count[0][VEC_PIC11];
        irq_enable();
        for (unsigned i = 0; i < N; i++) {
                outb(PIC_IRQ11_PORT, 1);
                outb(PIC_IRQ11_PORT, 0);
        }
        irq_disable();
        expect("8259 IRQ 11 pulses with interrupts on: interrupts",
               irq_count[0][VEC_PIC11] - before, N);

        outb(0x4d1, 0x08); /* IRQ 11 level-triggered */
        before = irq_count[0][VEC_PIC11];
        pic_level_left = N;
        outb(PIC_IRQ11_PORT, 1);
        irq_window();
        expect("8259 level IRQ 11 held high: interrupts until the handler lowered it",
               irq_count[0][VEC_PIC11] - before, N);
        outb(0x4d1, 0);

        lapic_write(LAPIC_LVT_LINT0, LVT_EXTINT | LVT_MASKED);
        before = irq_count[0][VEC_PIC11];
        outb(PIC_IRQ11_PORT, 1);
        outb(PIC_IRQ11_PORT, 0);
        irq_window();
        expect("8259 IRQ 11 pulse with LINT0 masked: interrupts", irq_count[0][VEC_PIC11] - before,
               0);
        lapic_write(LAPIC_LVT_LINT0, LVT_EXTINT);
        irq_window();
        expect("8259 IRQ 11 pulse with LINT0 masked: interrupts once LINT0 is unmasked",
               irq_count[0][VEC_PIC11] - before, 1);
        lapic_write(LAPIC_LVT_LINT0, LVT_EXTINT | LVT_MASKED);
        outb(0x21, 0xff);
        outb(0xa1, 0xff);
        irq_hook = 0;
        guest_printf("hostile_lapic: 8259 through LINT0: %u IRQ 11 pulses: %u interrupts; level "
                     "IRQ 11 held high: one per EOI until lowered; none while LINT0 is masked\n",
                     N, N);
}

#define MSR_KVM_PV_EOI 0x4b564d04u
#define VEC_PV_HIGH    0x70
#define VEC_PV_LOW     0x58

static volatile uint32_t pv_flag __attribute__((aligned(8)));
static volatile unsigned pv_low_sent;

/* WRMSR that may fault (hostile_x86.h resumes after its 2 bytes): the vector, or ~0u. */
static unsigned wrmsr_fault(uint32_t msr, uint64_t v)
{
        hx_last_vector = ~0ull;
        hx_resume_len = 2;
        wrmsr(msr, v);
        hx_resume_len = 0;
        return (unsigned)hx_last_vector;
}

static void pv_send_low(unsigned cpu, unsigned vector)
{
        (void)cpu;
        if (vector == VEC_PV_HIGH && !pv_low_sent) {
                pv_low_sent = 1;
                lapic_icr(0, ICR_SELF | VEC_PV_LOW);
        }
}

static void pv_eoi(void)
{
        struct cpuid_regs sig = cpuid(0x40000100u, 0), feat = cpuid(0x40000101u, 0);
        uint64_t good = gpa_of(&pv_flag) | 1, before, skipped, low;

        expect("KVM CPUID block: maximum leaf", sig.eax, 0x40000101u);
        expect("KVM CPUID block: signature",
               sig.ebx == 0x4b4d564bu && sig.ecx == 0x564b4d56u && sig.edx == 0x4du, 1);
        expect("KVM CPUID block: features (PV EOI only)", feat.eax, 1u << 6);
        expect("PV EOI MSR, bit 1 set: #GP", wrmsr_fault(MSR_KVM_PV_EOI, good | 2), 13);
        expect("PV EOI MSR, flag outside RAM: #GP", wrmsr_fault(MSR_KVM_PV_EOI, (1ull << 45) | 1),
               13);
        expect("PV EOI MSR after refused writes", rdmsr(MSR_KVM_PV_EOI), 0);
        pv_flag = 0;
        wrmsr(MSR_KVM_PV_EOI, good);
        expect("PV EOI MSR reads back", rdmsr(MSR_KVM_PV_EOI), good);

        before = irq_count[0][VEC_IPI];
        skipped = irq_pv_skipped;
        irq_pv_flag = &pv_flag;
        irq_eoi[0] = 1;
        irq_enable();
        for (unsigned i = 0; i < N; i++)
                lapic_icr(0, ICR_SELF | VEC_IPI);
        irq_disable();
        expect("PV EOI: self-IPIs taken", irq_count[0][VEC_IPI] - before, N);
        expect("PV EOI: ended through the flag", irq_pv_skipped - skipped, N);
        expect("PV EOI: in service after", vec_bit(LAPIC_ISR, VEC_IPI), 0);

        /* A lower class sent from the handler: the flag is withdrawn, the EOI written. */
        low = irq_count[0][VEC_PV_LOW];
        skipped = irq_pv_skipped;
        pv_low_sent = 0;
        irq_hook = pv_send_low;
        lapic_icr(0, ICR_SELF | VEC_PV_HIGH);
        irq_window();
        irq_hook = 0;
        expect("PV EOI: lower class sent from a handler, taken after its IRET",
               irq_count[0][VEC_PV_LOW] - low, 1);
        expect("PV EOI: EOIs through the flag when something waited", irq_pv_skipped - skipped,
               1); /* the lower one's own, nothing waiting then */
        expect("PV EOI: in service after the pair",
               vec_bit(LAPIC_ISR, VEC_PV_HIGH) | vec_bit(LAPIC_ISR, VEC_PV_LOW), 0);

        /* Off: the flag is never set again, every EOI is written. */
        wrmsr(MSR_KVM_PV_EOI, 0);
        skipped = irq_pv_skipped;
        before = irq_count[0][VEC_IPI];
        irq_enable();
        for (unsigned i = 0; i < 100; i++)
                lapic_icr(0, ICR_SELF | VEC_IPI);
        irq_disable();
        expect("PV EOI off: self-IPIs taken", irq_count[0][VEC_IPI] - before, 100);
        expect("PV EOI off: ended through the flag", irq_pv_skipped - skipped, 0);
        expect("PV EOI off: flag", pv_flag, 0);
        irq_pv_flag = 0;
        guest_printf("hostile_lapic: paravirtual EOI: %u self-IPIs ended through the flag, a "
                     "lower class sent from a handler taken after its IRET, bad MSR values #GP\n",
                     N);
}

int64_t guest_main(void)
{
        hx_gdt_init();
        hx_idt_init();
        irq_idt_init();
        nmi_idt_init();
        if (!irq_linux_entry_ok()) {
                guest_printf("FAIL: hostile_lapic: not entered through the Linux boot path\n");
                return 1;
        }
        expect("LAPIC version", lapic_read(LAPIC_VERSION), LAPIC_VERSION_VALUE);
        lapic_write(LAPIC_SVR, 0x1ff);
        lapic_write(LAPIC_TPR, 0);
#ifdef HOSTILE_LAPIC_PERIODIC
        periodic_forever();
#endif
        deadline_storm();
        ipi_storm(ICR_SELF, "self-IPIs with EOI");
        ipi_storm(ICR_ALL_INCL_SELF, "all-including-self IPIs with EOI");
        no_eoi_storm();
        all_vectors();
        halt_wake();
        cr8_tpr();
        nmis();
        sti_port_write();
        window_hlt();
        pic_storm();
        pv_eoi();
        if (failed) {
                guest_printf("hostile_lapic: %u of %u checks failed\n", failed, checks);
                return 1;
        }
        guest_printf("hostile_lapic: all %u storm checks passed\n", checks);
        return 0;
}
