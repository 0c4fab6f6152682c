/*
 * hostile_gic (arm64, booted as a Linux kernel: mklinux.py, `kernel =`, so it has Keel's
 * GICv3, virtual timer and PSCI; docs/arm64.md), in a VM with two vCPUs:
 *   1. GICD and vCPU 0's GICR (RD_base and SGI_base frames): every naturally aligned offset
 *      of their register pages read with 1, 2, 4 and 8 bytes, then written with garbage
 *      (unaligned accesses are the guest's own alignment faults: its memory is Device with
 *      the MMU off); GICD_TYPER, GICD_IIDR and GICR_TYPER read the same afterwards, and once
 *      the guest has set the GIC up again it still delivers;
 *   2. N SGIs to itself with IRQs unmasked and a handler that acknowledges and EOIs: N
 *      interrupts;
 *   3. the virtual timer with CVAL in the past (0), N times in a loop, the handler masking
 *      it: N interrupts; then SLOW_ROUNDS times with a handler that spins SLOW_MS before it
 *      masks the timer (longer than Keel's 10 ms slice, so Keel switches the vCPU out and in
 *      while the guest is in the handler, with the timer still asserted): one interrupt per
 *      round, none after the handler's EOI;
 *   4. PSCI CPU_ON of vCPU 1 with entry points at the first word of RAM and at its last
 *      word (both accepted: the vCPU runs the branch placed there and reports in, then
 *      CPU_OFF), misaligned, just past RAM and just below it (INVALID_ADDRESS), for MPIDRs
 *      that name no vCPU (INVALID_PARAMETERS), for itself and for vCPU 1 while it runs
 *      (ALREADY_ON);
 *   5. vCPU 1 turned on again sets up its own GIC interface; vCPU 0 sends it N SGIs: it
 *      takes at least one and at most N (pending SGIs coalesce), and a last, different SGI
 *      reaches it.
 * Then it exits 0; a wrong result is a FAIL line and exit 1.
 */
#include "guest.h"

#define GICD       0x08000000ull
#define GICR0      0x080a0000ull
#define GICR_SGI   0x10000ull
#define N          2000
#define SGI_STORM  5
#define SGI_LAST   7
#define VTIMER_PPI 27

#define PSCI_CPU_OFF     0x84000002ull
#define PSCI_CPU_ON_64   0xc4000003ull
#define PSCI_AFFINITY_64 0xc4000004ull
#define INVALID_PARAMS   -2
#define ALREADY_ON       -4
#define INVALID_ADDRESS  -9

#define SLOW_ROUNDS 5
#define SLOW_MS     25

static unsigned failed, checks;
static volatile uint64_t irq_count[2][64];
static volatile bool slow_timer; /* the timer's handler spins SLOW_MS before it masks */
static volatile uint64_t sec_runs, sec_ready;
extern uint8_t sec_stack[4096]; /* vCPU 1's stack, used by secondary_entry */
uint8_t sec_stack[4096] __attribute__((aligned(16)));

static void expect(const char *what, int64_t got, int64_t want)
{
        checks++;
        if (got == want)
                return;
        failed++;
        guest_printf("FAIL: hostile_gic: %s: %ld, expected %ld\n", what, got, want);
}

static uint64_t rd(uint64_t a, unsigned w)
{
        return mmio_rd(a, w);
}

static void wr(uint64_t a, unsigned w, uint64_t v)
{
        mmio_wr(a, w, v);
}

#define write_sysreg(name, v) \
        __asm__ volatile("msr " #name ", %0" : : "r"((uint64_t)(v)) : "memory")

static unsigned this_cpu(void)
{
        return (unsigned)(read_sysreg(MPIDR_EL1) & 0xff) & 1;
}

/* Called from the IRQ vector: acknowledge, count, deactivate; the timer is masked first. */
void gic_irq(void);
void gic_irq(void)
{
        uint64_t intid = read_sysreg(S3_0_C12_C12_0); /* ICC_IAR1_EL1 */

        if (intid >= 1020)
                return; /* spurious */
        if (intid == VTIMER_PPI && slow_timer)
                delay_ticks(read_sysreg(CNTFRQ_EL0) / 1000 * SLOW_MS);
        if (intid == VTIMER_PPI)
                write_sysreg(CNTV_CTL_EL0, 3); /* enabled, masked */
        irq_count[this_cpu()][intid < 64 ? intid : 63]++;
        write_sysreg(S3_0_C12_C12_1, intid); /* ICC_EOIR1_EL1 */
}

/* Vectors: IRQ from the current EL (SP_ELx) goes to gic_irq, the rest to the runtime's report. */
void gic_vectors(void);
void gic_sync_common(void);
__asm__(".text\n"
        ".balign 2048\n"
        ".globl gic_vectors\n"
        "gic_vectors:\n"
        ".irp n, 0, 1, 2, 3, 4\n"
        ".balign 128\n"
        "mov x0, #\\n\n"
        "b gic_sync_common\n"
        ".endr\n"
        ".balign 128\n" /* 5: IRQ, current EL with SP_ELx */
        "stp x29, x30, [sp, #-176]!\n"
        "stp x0, x1, [sp, #16]\n stp x2, x3, [sp, #32]\n stp x4, x5, [sp, #48]\n"
        "stp x6, x7, [sp, #64]\n stp x8, x9, [sp, #80]\n stp x10, x11, [sp, #96]\n"
        "stp x12, x13, [sp, #112]\n stp x14, x15, [sp, #128]\n stp x16, x17, [sp, #144]\n"
        "str x18, [sp, #160]\n"
        "bl gic_irq\n"
        "ldp x0, x1, [sp, #16]\n ldp x2, x3, [sp, #32]\n ldp x4, x5, [sp, #48]\n"
        "ldp x6, x7, [sp, #64]\n ldp x8, x9, [sp, #80]\n ldp x10, x11, [sp, #96]\n"
        "ldp x12, x13, [sp, #112]\n ldp x14, x15, [sp, #128]\n ldp x16, x17, [sp, #144]\n"
        "ldr x18, [sp, #160]\n"
        "ldp x29, x30, [sp], #176\n"
        "eret\n"
        ".irp n, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15\n"
        ".balign 128\n"
        "mov x0, #\\n\n"
        "b gic_sync_common\n"
        ".endr\n"
        "gic_sync_common:\n"
        "mrs x1, ESR_EL1\n mrs x2, ELR_EL1\n mrs x3, FAR_EL1\n"
        "bl guest_exception\n"
        "1: wfi\n b 1b\n");

void guest_exception(uint64_t vector, uint64_t esr, uint64_t elr, uint64_t far);

static void irq_unmask(void)
{
        __asm__ volatile("msr daifclr, #2; isb" ::: "memory");
}

static void irq_mask(void)
{
        __asm__ volatile("msr daifset, #2; isb" ::: "memory");
}

/* This vCPU's GIC: its redistributor awake, SGIs and PPIs group 1, enabled; the interface on. */
static void gic_cpu_init(unsigned cpu)
{
        uint64_t rd_base = GICR0 + 0x20000ull * cpu;

        write_sysreg(VBAR_EL1, gpa_of((void *)gic_vectors));
        wr(rd_base + 0x14, 4, 0);                      /* GICR_WAKER: ProcessorSleep 0 */
        wr(rd_base + GICR_SGI + 0x80, 4, 0xffffffff);  /* IGROUPR0 */
        wr(rd_base + GICR_SGI + 0x180, 4, 0xffffffff); /* ICENABLER0 */
        wr(rd_base + GICR_SGI + 0x280, 4, 0xffffffff); /* ICPENDR0 */
        wr(rd_base + GICR_SGI + 0x380, 4, 0xffffffff); /* ICACTIVER0 */
        for (unsigned i = 0; i < 8; i++)
                wr(rd_base + GICR_SGI + 0x400 + 4 * i, 4, 0xa0a0a0a0); /* IPRIORITYR */
        wr(rd_base + GICR_SGI + 0x100, 4, 0xffffffff);                 /* ISENABLER0 */
        write_sysreg(S3_0_C12_C12_5, 7);                               /* ICC_SRE_EL1 */
        __asm__ volatile("isb");
        write_sysreg(S3_0_C4_C6_0, 0xff); /* ICC_PMR_EL1 */
        write_sysreg(S3_0_C12_C12_7, 1);  /* ICC_IGRPEN1_EL1 */
        __asm__ volatile("isb");
}

static void sgi(unsigned target_list, unsigned intid)
{
        write_sysreg(S3_0_C12_C11_5, (uint64_t)intid << 24 | target_list); /* ICC_SGI1R_EL1 */
        __asm__ volatile("isb");
}

static void sweep(void)
{
        static const uint64_t windows[][2] = {
            {GICD, 0x1000},  {GICD + 0x6000, 0x1000},    {GICD + 0xf000, 0x1000},
            {GICR0, 0x1000}, {GICR0 + GICR_SGI, 0x1000},
        };
        static const uint64_t garbage[2] = {~0ull, 0x5a5a5a5aa5a5a5a5ull};
        uint32_t typer = (uint32_t)rd(GICD + 4, 4), iidr = (uint32_t)rd(GICD + 8, 4);
        uint64_t rtyper = rd(GICR0 + 8, 8), reads = 0, writes = 0;

        for (unsigned i = 0; i < ARRAY_SIZE(windows); i++)
                for (uint64_t off = 0; off < windows[i][1]; off++)
                        for (unsigned w = 1; w <= 8; w *= 2)
                                if (!(off & (w - 1))) {
                                        rd(windows[i][0] + off, w);
                                        reads++;
                                }
        for (unsigned g = 0; g < 2; g++)
                for (unsigned i = 0; i < ARRAY_SIZE(windows); i++)
                        for (uint64_t off = 0; off < windows[i][1]; off++)
                                for (unsigned w = 1; w <= 8; w *= 2)
                                        if (!(off & (w - 1))) {
                                                wr(windows[i][0] + off, w, garbage[g]);
                                                writes++;
                                        }
        expect("GICD_TYPER after garbage", rd(GICD + 4, 4), typer);
        expect("GICD_IIDR after garbage", rd(GICD + 8, 4), iidr);
        expect("GICR_TYPER after garbage", (int64_t)rd(GICR0 + 8, 8), (int64_t)rtyper);
        expect("GICR_TYPER names vCPU 0 (Aff0 0), not last", (int64_t)(rtyper >> 32 & 0xff), 0);
        guest_printf("hostile_gic: %lu reads and %lu garbage writes at every aligned offset and "
                     "width of the GICD and GICR register pages\n",
                     (unsigned long)reads, (unsigned long)writes);
}

static int64_t psci(uint64_t f, uint64_t a1, uint64_t a2, uint64_t a3)
{
        register uint64_t x0 __asm__("x0") = f;
        register uint64_t x1 __asm__("x1") = a1;
        register uint64_t x2 __asm__("x2") = a2;
        register uint64_t x3 __asm__("x3") = a3;

        __asm__ volatile("hvc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) : : "memory");
        return (int64_t)x0;
}

/* vCPU 1: x0 = what to do (1: report and CPU_OFF; 2: take SGIs until told to stop). */
void secondary_entry(void);
void secondary_main(uint64_t what);
__asm__(".text\n"
        ".balign 4\n"
        ".globl secondary_entry\n"
        "secondary_entry:\n"
        "adrp x1, sec_stack + 4096\n"
        "add x1, x1, :lo12:sec_stack + 4096\n"
        "mov sp, x1\n"
        "bl secondary_main\n"
        "1: wfi\n b 1b\n");

void secondary_main(uint64_t what)
{
        if (what == 2) {
                gic_cpu_init(1);
                irq_unmask();
                sec_ready = 1;
                while (!irq_count[1][SGI_LAST])
                        __asm__ volatile("wfi");
                irq_mask();
        }
        sec_runs++;
        psci(PSCI_CPU_OFF, 0, 0, 0);
        guest_printf("FAIL: hostile_gic: CPU_OFF returned\n");
        for (;;)
                __asm__ volatile("wfi");
}

static void wait_off(void)
{
        for (unsigned i = 0; i < 10000000 && psci(PSCI_AFFINITY_64, 1, 0, 0) != 1; i++)
                ;
}

/* CPU_ON(1) at `entry` (where a branch to secondary_entry was placed): it runs and turns off. */
static void cpu_on_at(uint64_t entry, const char *what)
{
        uint64_t runs = sec_runs;

        expect(what, psci(PSCI_CPU_ON_64, 1, entry, 1), 0);
        for (unsigned i = 0; i < 100000000 && sec_runs == runs; i++)
                ;
        expect(what, (int64_t)(sec_runs - runs), 1);
        wait_off();
}

/* A B to secondary_entry at `at`, written and made visible to instruction fetch. */
static void place_branch(uint64_t at)
{
        int64_t d = (int64_t)(gpa_of((void *)secondary_entry) - at) / 4;

        wr(at, 4, 0x14000000u | ((uint64_t)d & 0x3ffffff));
        __asm__ volatile("dsb sy; ic iallu; dsb sy; isb" ::: "memory");
}

int64_t guest_main(void)
{
        uint64_t dtb = guest_entry_state.x[0], ram_end, before;

        if (rd(dtb, 4) != 0xedfe0dd0u) { /* FDT magic 0xd00dfeed, big-endian */
                guest_printf("FAIL: hostile_gic: x0 = 0x%lx is not a device tree: not booted as "
                             "Linux\n",
                             (unsigned long)dtb);
                return 1;
        }
        /* Keel puts the device tree at the start of the last 2 MiB of RAM. */
        guest_ram_base = 0x40000000;
        ram_end = dtb + 0x200000;
        guest_ram_size = ram_end - guest_ram_base;

        sweep();
        wr(GICD, 4, 0x12); /* GICD_CTLR: ARE, EnableGrp1 */
        gic_cpu_init(0);

        before = irq_count[0][SGI_STORM];
        irq_unmask();
        for (unsigned i = 0; i < N; i++)
                sgi(1, SGI_STORM);
        irq_mask();
        expect("SGIs to self", (int64_t)(irq_count[0][SGI_STORM] - before), N);
        guest_printf("hostile_gic: %u SGIs to itself: %lu interrupts\n", N,
                     (unsigned long)(irq_count[0][SGI_STORM] - before));

        before = irq_count[0][VTIMER_PPI];
        irq_unmask();
        for (unsigned i = 0; i < N; i++) {
                write_sysreg(CNTV_CVAL_EL0, 0);
                write_sysreg(CNTV_CTL_EL0, 1); /* enabled, not masked: due at once */
                __asm__ volatile("isb");
                for (unsigned k = 0; k < 100000 && irq_count[0][VTIMER_PPI] - before == i; k++)
                        ;
        }
        irq_mask();
        write_sysreg(CNTV_CTL_EL0, 0);
        expect("virtual timer with CVAL in the past", (int64_t)(irq_count[0][VTIMER_PPI] - before),
               N);
        guest_printf("hostile_gic: virtual timer with CVAL 0 %u times: %lu interrupts\n", N,
                     (unsigned long)(irq_count[0][VTIMER_PPI] - before));

        /* The same with a handler longer than a slice: Keel switches the vCPU out and back in
         * while it handles the tick, the timer still asserted (it fires again the moment
         * Keel lets it): still one interrupt per round, and none once the handler is done. */
        before = irq_count[0][VTIMER_PPI];
        slow_timer = true;
        irq_unmask();
        for (unsigned i = 0; i < SLOW_ROUNDS; i++) {
                write_sysreg(CNTV_CVAL_EL0, 0);
                write_sysreg(CNTV_CTL_EL0, 1);
                __asm__ volatile("isb");
                for (unsigned k = 0; k < 100000000 && irq_count[0][VTIMER_PPI] - before == i; k++)
                        ;
                /* A second interrupt would come right after the handler's EOI. */
                delay_ticks(read_sysreg(CNTFRQ_EL0) / 1000 * 5);
        }
        irq_mask();
        slow_timer = false;
        write_sysreg(CNTV_CTL_EL0, 0);
        expect("virtual timer, handler longer than a slice",
               (int64_t)(irq_count[0][VTIMER_PPI] - before), SLOW_ROUNDS);
        guest_printf("hostile_gic: virtual timer with a %u ms handler %u times: %lu interrupts\n",
                     SLOW_MS, SLOW_ROUNDS, (unsigned long)(irq_count[0][VTIMER_PPI] - before));

        /* PSCI CPU_ON at the edges of RAM, and the refusals. */
        place_branch(guest_ram_base);
        place_branch(ram_end - 4);
        cpu_on_at(guest_ram_base, "CPU_ON(1) at the first word of RAM");
        cpu_on_at(ram_end - 4, "CPU_ON(1) at the last word of RAM");
        expect("CPU_ON(1) misaligned", psci(PSCI_CPU_ON_64, 1, guest_ram_base + 2, 0),
               INVALID_ADDRESS);
        expect("CPU_ON(1) at RAM end", psci(PSCI_CPU_ON_64, 1, ram_end, 0), INVALID_ADDRESS);
        expect("CPU_ON(1) below RAM", psci(PSCI_CPU_ON_64, 1, guest_ram_base - 4, 0),
               INVALID_ADDRESS);
        expect("CPU_ON(1) at 2^64-4", psci(PSCI_CPU_ON_64, 1, ~3ull, 0), INVALID_ADDRESS);
        expect("CPU_ON(2): no such vCPU", psci(PSCI_CPU_ON_64, 2, guest_ram_base, 0),
               INVALID_PARAMS);
        expect("CPU_ON(0x100)", psci(PSCI_CPU_ON_64, 0x100, guest_ram_base, 0), INVALID_PARAMS);
        expect("CPU_ON(1 | 1 << 40)", psci(PSCI_CPU_ON_64, 1 | 1ull << 40, guest_ram_base, 0),
               INVALID_PARAMS);
        expect("CPU_ON(0): itself", psci(PSCI_CPU_ON_64, 0, guest_ram_base, 0), ALREADY_ON);
        guest_printf("hostile_gic: PSCI CPU_ON at both edges of RAM ran vCPU 1; misaligned, "
                     "outside RAM and unknown MPIDRs refused\n");

        /* vCPU 1 once more, taking SGIs from vCPU 0. */
        expect("CPU_ON(1) for the SGIs",
               psci(PSCI_CPU_ON_64, 1, gpa_of((void *)secondary_entry), 2), 0);
        for (unsigned i = 0; i < 100000000 && !sec_ready; i++)
                ;
        expect("CPU_ON(1) while it runs", psci(PSCI_CPU_ON_64, 1, guest_ram_base, 0), ALREADY_ON);
        for (unsigned i = 0; i < N; i++)
                sgi(1u << 1, SGI_STORM);
        sgi(1u << 1, SGI_LAST);
        wait_off();
        checks++;
        if (irq_count[1][SGI_STORM] < 1 || irq_count[1][SGI_STORM] > N) {
                failed++;
                guest_printf("FAIL: hostile_gic: vCPU 1 took %lu of %u SGIs\n",
                             (unsigned long)irq_count[1][SGI_STORM], N);
        }
        expect("the last SGI to vCPU 1", (int64_t)irq_count[1][SGI_LAST], 1);
        guest_printf("hostile_gic: %u SGIs to vCPU 1: it took between 1 and %u, and the last "
                     "one\n",
                     N, N);
        if (failed) {
                guest_printf("hostile_gic: %u of %u checks failed\n", failed, checks);
                return 1;
        }
        guest_printf("hostile_gic: all %u checks passed\n", checks);
        return 0;
}
