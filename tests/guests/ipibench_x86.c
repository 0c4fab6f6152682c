/*
 * ipibench (x86_64, booted as a Linux kernel with `vcpus = 2` on a host with two CPUs:
 * tools/bench, docs/benchmarks.md): interrupt latency through Keel's local APIC model, in
 * TSC ticks (one per instruction under -icount shift=0):
 *   ipi-running  vCPU 0 sends a fixed IPI to vCPU 1, which spins (PAUSE) with interrupts on:
 *                TSC in vCPU 1's handler - TSC just before vCPU 0's ICR write;
 *   ipi-halted   the same to vCPU 1 waiting in `sti; hlt` (given time to block in Keel);
 *   timer-running  vCPU 0's TSC-deadline timer while it spins (PAUSE):
 *                TSC in the handler - the deadline written to IA32_TSC_DEADLINE;
 *   timer-halted the same while vCPU 0 waits in `sti; hlt`.
 * During the timer figures vCPU 1 waits in HLT (its CPU idle). Deadlines lie 50,000 to
 * about 1,000,000 ticks ahead, so that they fall at every phase of Keel's 1 kHz host tick.
 * Output and exit status: ipibench.h.
 */
#include "smp_x86.h"

static inline void ipb_relax(void)
{
        __asm__ volatile("pause" ::: "memory");
}

#define VEC_IPI           0x40
#define VEC_TIMER         0x41
#define IPB_PATIENCE      400000000ull /* 40 of Keel's 10 ms slices under -icount */
#define IPB_HALT_SETTLE   200000ull    /* for vCPU 1's HLT exit to end in Keel's idle loop */
#define IPB_SPIN_DELAY(r) (1000 + 997 * (uint64_t)(r))
#define TIMER_AHEAD       50000ull
#define TIMER_SPREAD      31013ull

static void ipb_send_ipi(void);

#include "ipibench.h"

static void ipb_send_ipi(void)
{
        lapic_icr(1u << 24, VEC_IPI);
}

static void record(unsigned cpu, unsigned vector)
{
        uint64_t now = rdtsc();

        (void)cpu;
        if (vector == VEC_IPI || vector == VEC_TIMER)
                ipb_seen = now;
}

void ap_main(void);
void ap_main(void)
{
        smp_ap_tables();
        lapic_write(LAPIC_SVR, 0x1ff);
        irq_eoi[1] = 1;
        ap_started = 1;
        for (;;) {
                if (ap_mode == AP_SPIN) {
                        irq_enable();
                        ipb_relax();
                        continue;
                }
                irq_disable();
                ap_halts++;
                __asm__ volatile("sti; hlt" ::: "memory");
        }
}

static void timer_rounds(const char *name, bool halt)
{
        lapic_write(LAPIC_LVT_TIMER, LVT_TIMER_TSC_DEADL | VEC_TIMER);
        for (unsigned r = 0; r < IPB_ROUNDS; r++) {
                uint64_t deadline = rdtsc() + TIMER_AHEAD + TIMER_SPREAD * r;

                ipb_seen = 0;
                wrmsr(MSR_TSC_DEADLINE, deadline);
                if (halt) {
                        irq_disable();
                        while (!ipb_seen)
                                __asm__ volatile("sti; hlt; cli" ::: "memory");
                        irq_enable();
                } else if (!ipb_wait(IPB_PATIENCE, name)) {
                        return;
                }
                samples[r] = ipb_seen - deadline;
        }
        ipb_report(name, samples, IPB_ROUNDS);
}

int64_t guest_main(void)
{
        hx_gdt_init();
        hx_idt_init();
        irq_idt_init();
        if (!irq_linux_entry_ok()) {
                guest_printf("FAIL: ipibench: not entered through the Linux boot path\n");
                return 1;
        }
        lapic_write(LAPIC_SVR, 0x1ff);
        irq_eoi[0] = 1;
        irq_hook = record;
        guest_printf("ipibench: counter TSC, %u rounds per figure\n", IPB_ROUNDS);

        smp_start_ap(ap_main);
        for (uint64_t t0 = rdtsc(); !ap_started; ipb_relax())
                if (rdtsc() - t0 > IPB_PATIENCE) {
                        guest_printf("FAIL: ipibench: vCPU 1 did not start\n");
                        return 1;
                }
        irq_enable();
        ipi_rounds("ipi-running", AP_SPIN);
        ipi_rounds("ipi-halted", AP_HALT);
        timer_rounds("timer-running", false);
        timer_rounds("timer-halted", true);
        return ipb_failed ? 1 : 0;
}
