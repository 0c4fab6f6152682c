/*
 * ipibench (arm64, booted as a Linux kernel with `vcpus = 2` on a host with two CPUs:
 * tools/bench, docs/benchmarks.md): interrupt latency through Keel's GICv3 model and the
 * virtual timer, in ticks of CNTVCT_EL0 (16 instructions each at QEMU's 62.5 MHz under
 * -icount shift=0; the frequency is printed first):
 *   ipi-running  vCPU 0 sends SGI 1 to vCPU 1, which spins (YIELD) with IRQs unmasked:
 *                counter in vCPU 1's handler - counter just before vCPU 0's ICC_SGI1R_EL1 write;
 *   ipi-halted   the same to vCPU 1 waiting in WFI (given time to block in Keel);
 *   timer-running  vCPU 0's virtual timer while it spins (YIELD):
 *                counter in the handler - CNTV_CVAL_EL0;
 *   timer-halted the same while vCPU 0 waits in WFI.
 * During the timer figures vCPU 1 waits in WFI (its CPU idle). Deadlines lie 50,000 to about
 * 1,000,000 instructions ahead, so that they fall at every phase of Keel's own timers.
 * Output and exit status: ipibench.h.
 */
#include "exc.h"

/* YIELD: under QEMU's round-robin TCG (-icount) it also hands the host's CPU to the next one. */
static inline void ipb_relax(void)
{
        __asm__ volatile("yield" ::: "memory");
}

#define SGI_IPI           1
#define VTIMER_PPI        27
#define PSCI_CPU_ON_64    0xc4000003ull
#define INSN_PER_TICK     16 /* at 62.5 MHz; only sets the spacing of the deadlines */
#define IPB_PATIENCE      (400000000ull / INSN_PER_TICK)
#define IPB_HALT_SETTLE   (200000ull / INSN_PER_TICK)
#define IPB_SPIN_DELAY(r) (64 + 61 * (uint64_t)(r))
#define TIMER_AHEAD       (50000ull / INSN_PER_TICK)
#define TIMER_SPREAD      (31013ull / INSN_PER_TICK)

static void ipb_send_ipi(void);

#include "ipibench.h"
extern uint8_t ap_stack[4096]; /* vCPU 1's stack, used by ap_entry */
uint8_t ap_stack[4096] __attribute__((aligned(16)));

uint64_t guest_sync(uint64_t esr, uint64_t elr, uint64_t far)
{
        guest_exception(4, esr, elr, far);
        return elr;
}

void guest_irq(void)
{
        uint64_t now = guest_counter();
        uint64_t intid = read_sysreg(ICC_IAR1_EL1);

        if (intid >= 1020)
                return; /* spurious */
        if (intid == VTIMER_PPI)
                write_sysreg(CNTV_CTL_EL0, 3); /* enabled, masked */
        if (intid == SGI_IPI || intid == VTIMER_PPI)
                ipb_seen = now;
        write_sysreg(ICC_EOIR1_EL1, intid);
}

static void wfi_masked(void)
{
        /* With IRQs masked WFI still wakes for a pending one, taken once unmasked. */
        __asm__ volatile("wfi" ::: "memory");
        irq_unmask();
        irq_mask();
}

void ap_entry(void);
void ap_main(void);
__asm__(".text\n"
        ".balign 4\n"
        ".globl ap_entry\n"
        "ap_entry:\n"
        "adrp x1, ap_stack + 4096\n"
        "add x1, x1, :lo12:ap_stack + 4096\n"
        "mov sp, x1\n"
        "bl ap_main\n"
        "1: wfi\n b 1b\n");

void ap_main(void)
{
        exc_install();
        gic_cpu_init(1);
        wr(GICR(1) + GICR_SGI + 0x100, 4, 1u << SGI_IPI); /* ISENABLER0 */
        ap_started = 1;
        for (;;) {
                if (ap_mode == AP_SPIN) {
                        irq_unmask();
                        ipb_relax();
                        continue;
                }
                irq_mask();
                ap_halts++;
                wfi_masked();
        }
}

static void sgi(unsigned target_list, unsigned intid)
{
        write_sysreg(S3_0_C12_C11_5, (uint64_t)intid << 24 | target_list); /* ICC_SGI1R_EL1 */
        __asm__ volatile("isb");
}

static void ipb_send_ipi(void)
{
        sgi(1u << 1, SGI_IPI);
}

static void timer_rounds(const char *name, bool halt)
{
        for (unsigned r = 0; r < IPB_ROUNDS; r++) {
                uint64_t deadline = guest_counter() + TIMER_AHEAD + TIMER_SPREAD * r;

                ipb_seen = 0;
                write_sysreg(CNTV_CVAL_EL0, deadline);
                write_sysreg(CNTV_CTL_EL0, 1); /* enabled, not masked */
                __asm__ volatile("isb");
                if (halt) {
                        irq_mask();
                        while (!ipb_seen)
                                wfi_masked();
                        irq_unmask();
                } else if (!ipb_wait(IPB_PATIENCE, name)) {
                        return;
                }
                samples[r] = ipb_seen - deadline;
        }
        write_sysreg(CNTV_CTL_EL0, 0);
        ipb_report(name, samples, IPB_ROUNDS);
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

int64_t guest_main(void)
{
        int64_t err;

        exc_install();
        gic_init();
        wr(GICR_ISENABLER0, 4, 1u << SGI_IPI | 1u << VTIMER_PPI);
        guest_printf("bench: counter CNTVCT_EL0 at %lu Hz\n", read_sysreg(cntfrq_el0));
        guest_printf("ipibench: counter CNTVCT_EL0, %u rounds per figure\n", IPB_ROUNDS);

        err = psci(PSCI_CPU_ON_64, 1, gpa_of((void *)ap_entry), 0);
        if (err) {
                guest_printf("FAIL: ipibench: PSCI CPU_ON(1): %ld\n", err);
                return 1;
        }
        for (uint64_t t0 = guest_counter(); !ap_started; ipb_relax())
                if (guest_counter() - t0 > IPB_PATIENCE) {
                        guest_printf("FAIL: ipibench: vCPU 1 did not start\n");
                        return 1;
                }
        irq_unmask();
        ipi_rounds("ipi-running", AP_SPIN);
        ipi_rounds("ipi-halted", AP_HALT);
        timer_rounds("timer-running", false);
        timer_rounds("timer-halted", true);
        return ipb_failed ? 1 : 0;
}
