/*
 * TSC calibration against the PIT and Keel's periodic host tick (see arch/host_timer.h).
 *
 * Calibration: PIT channel 2 counts down 11932 ticks of its 1.193182 MHz clock (10 ms) with
 * its gate on and the speaker off; meanwhile the TSC and a free-running LAPIC timer are
 * read. Both ends are bracketed by TSC reads (the count's write, the first read of the output
 * high), and a measurement whose brackets exceed 1/1000 of it is taken again, up to
 * PIT_CAL_TRIES times, keeping the tightest: a CPU held up at either end (an SMI; under nested
 * emulation, the host's scheduler) would otherwise put the TSC frequency, and every guest's
 * clock with it, off by as much as the hold (tens of percent seen under a loaded QEMU, whose
 * thread, at a load of 12 on 2 cores, ran at the output's rise in about one try in six).
 * Without a PIT (the gate output never rises) Keel falls back to CPUID leaf 0x15/0x16.
 */
#include <stdbool.h>

#include <arch/host_timer.h>
#include <arch/x86.h>
#include <keel/check.h>
#include <keel/irq.h>
#include <keel/log.h>
#include <keel/smp.h>
#include <keel/time.h>

#define PIT_HZ        1193182u
#define PIT_CAL_TICKS 11932u /* 10 ms */
#define PIT_CAL_MS    10u
#define PIT_SPIN_MAX  50000000u
#define PIT_CAL_TRIES 64u /* 10 ms each; under a loaded emulator 8 were not enough */

#define LAPIC_ID      0x20
#define LAPIC_SVR     0xf0
#define LAPIC_ICR_LO  0x300
#define LAPIC_ICR_HI  0x310
#define LAPIC_EOI     0xb0
#define LAPIC_LVT_TMR 0x320
#define LAPIC_TMR_ICR 0x380
#define LAPIC_TMR_CCR 0x390
#define LAPIC_TMR_DCR 0x3e0

static uint64_t tsc_khz;
static uint64_t lapic_base; /* 0: no xAPIC access (x2APIC mode or none) */
static bool x2apic;
static uint32_t lapic_per_ms; /* calibrated on the boot CPU; the APs' ticks reuse it */
/*
 * The LAPIC timer is always one-shot, armed for the first thing this CPU must do, and again
 * at each of its interrupts. Idle, that is a period (HOST_TICK_HZ) from now at the latest.
 * Running a vCPU (x86_host_timer_run to x86_host_timer_idle) it is the slice's end, the
 * pollers' next time (keel/irq.h) or the vCPU's own timers (arch_timer_by), whichever
 * comes first, and a period from now only while a poll hold is on. So a lone busy guest exits
 * for Keel's timer once per slice, not once per period. Per CPU, touched only by its own CPU
 * with interrupts off.
 */
struct host_timer_cpu {
        uint64_t oneshot_at; /* the TSC the timer is armed for; 0: not armed */
        uint64_t run_until;  /* the running vCPU's slice end; 0: idle */
};
static struct host_timer_cpu *timers; /* per CPU (keel/smp.h), from x86_time_init on */

uint64_t arch_tsc(void)
{
        return x86_rdtsc();
}

uint64_t arch_tsc_khz(void)
{
        return tsc_khz;
}

static uint32_t lapic_read(unsigned reg)
{
        if (x2apic)
                return (uint32_t)x86_rdmsr(0x800 + (reg >> 4));
        return *(volatile uint32_t *)(uintptr_t)(lapic_base + reg);
}

static void lapic_write(unsigned reg, uint32_t v)
{
        if (x2apic) {
                x86_wrmsr(0x800 + (reg >> 4), v);
                return;
        }
        *(volatile uint32_t *)(uintptr_t)(lapic_base + reg) = v;
}

void x86_lapic_eoi(void)
{
        if (lapic_base || x2apic)
                lapic_write(LAPIC_EOI, 0);
}

void arch_timer_by(uint64_t when)
{
        uint64_t now = x86_rdtsc(), left = when > now ? when - now : 0;
        struct host_timer_cpu *t = &timers[arch_cpu_index()];

        /* Only ever brought forward: armed, it is a period (idle) or a slice (running) away
         * at most, so the count fits in 32 bits. */
        if (!lapic_per_ms || (t->oneshot_at && t->oneshot_at <= when))
                return;
        /* Rounded up, plus one count: never before `when`. */
        t->oneshot_at = when ? when : 1;
        lapic_write(LAPIC_LVT_TMR, HOST_TICK_VECTOR); /* one-shot */
        lapic_write(LAPIC_TMR_ICR, (uint32_t)((left * lapic_per_ms + tsc_khz - 1) / tsc_khz + 1));
}

/* The timer armed afresh: for the running vCPU's next event (above), or a period on. */
static void rearm(struct host_timer_cpu *t)
{
        uint64_t now = x86_rdtsc(), next = irq_poll_next(), period = tsc_khz * 1000 / HOST_TICK_HZ;

        if (t->run_until < next)
                next = t->run_until;
        /* Idle, come (the vCPU leaves, the pollers run) or a poll hold on: a period on. */
        if (next <= now || (next - now > period && (!t->run_until || irq_poll_wanted())))
                next = now + period;
        t->oneshot_at = 0;
        arch_timer_by(next);
}

void x86_host_tick(void)
{
        rearm(&timers[arch_cpu_index()]);
}

void x86_host_timer_run(uint64_t deadline)
{
        struct host_timer_cpu *t = &timers[arch_cpu_index()];

        t->run_until = deadline ? deadline : 1;
        rearm(t);
}

void x86_host_timer_idle(void)
{
        struct host_timer_cpu *t = &timers[arch_cpu_index()];

        t->run_until = 0;
        rearm(t); /* a period on */
}

bool x86_lapic_x2apic(void)
{
        return x2apic;
}

uint32_t x86_lapic_id(void)
{
        if (x2apic)
                return (uint32_t)x86_rdmsr(0x802);
        return lapic_base ? lapic_read(LAPIC_ID) >> 24 : 0;
}

void x86_lapic_send_ipi(uint32_t apic_id, uint32_t icr_lo)
{
        if (x2apic) {
                /* WRMSR to the x2APIC is not serializing: earlier stores first (the AP's
                 * trampoline parameters). */
                __asm__ volatile("mfence; lfence" ::: "memory");
                x86_wrmsr(0x830, (uint64_t)apic_id << 32 | icr_lo);
                return;
        }
        lapic_write(LAPIC_ICR_HI, apic_id << 24);
        lapic_write(LAPIC_ICR_LO, icr_lo);
        /* Delivery status (bit 12): sent when clear. Bounded: a dead LAPIC must not hang Keel. */
        for (unsigned i = 0; i < 1000000 && (lapic_read(LAPIC_ICR_LO) & (1u << 12)); i++)
                __asm__ volatile("pause");
}

void x86_ap_time_init(void)
{
        uint64_t apic = x86_rdmsr(MSR_APIC_BASE);

        if (!lapic_base && !x2apic)
                return;
        /* This LAPIC in the boot CPU's mode (x2APIC is entered from xAPIC: EN, then EXTD). */
        if (!(apic & (1u << 11)))
                x86_wrmsr(MSR_APIC_BASE, apic |= 1u << 11);
        if (x2apic && !(apic & (1u << 10)))
                x86_wrmsr(MSR_APIC_BASE, apic | 1u << 10);
        lapic_write(LAPIC_SVR, 0x1ff);   /* software enable, spurious vector 0xff */
        lapic_write(LAPIC_TMR_DCR, 0x3); /* divide by 16, as on the boot CPU */
        x86_host_tick();
}

void x86_wait_for_interrupt(void)
{
        /* STI's one-instruction shadow makes "sti; hlt" atomic: no wake-up is lost. */
        __asm__ volatile("sti; hlt; cli" ::: "memory");
}

/* TSC frequency from CPUID 0x15 (crystal ratio) or 0x16 (base MHz); 0 if neither. */
static uint64_t tsc_khz_from_cpuid(void)
{
        uint32_t r[4], max;

        x86_cpuid(0, 0, r);
        max = r[0];
        if (max >= 0x15) {
                x86_cpuid(0x15, 0, r);
                if (r[0] && r[1] && r[2])
                        return (uint64_t)r[2] * r[1] / r[0] / 1000;
        }
        if (max >= 0x16) {
                x86_cpuid(0x16, 0, r);
                if (r[0] & 0xffff)
                        return (uint64_t)(r[0] & 0xffff) * 1000;
        }
        return 0;
}

/*
 * One 10 ms PIT measurement: the TSC and LAPIC timer counts across it, and how uncertain the
 * TSC span is (the TSC ticks the two ends' brackets add up to). False without a PIT.
 */
static bool pit_measure(uint64_t *span, uint64_t *err, uint32_t *lapic_span)
{
        uint64_t a0, a1, lo, t, now;
        uint32_t c0 = 0, c1 = 0;
        unsigned spins = 0;
        bool high;

        x86_outb(0x43, 0xb0); /* ch 2, lo/hi, mode 0: counts from the high byte's write */
        x86_outb(0x42, PIT_CAL_TICKS & 0xff);
        a0 = x86_rdtsc();
        x86_outb(0x42, PIT_CAL_TICKS >> 8);
        a1 = lo = x86_rdtsc();
        if (lapic_base || x2apic)
                c0 = lapic_read(LAPIC_TMR_CCR);
        /* The output rose after the last read that saw it low (begun after lo) and before now. */
        for (;;) {
                t = x86_rdtsc();
                high = x86_inb(0x61) & 0x20;
                if (high || ++spins >= PIT_SPIN_MAX)
                        break;
                lo = t;
        }
        now = x86_rdtsc();
        if (lapic_base || x2apic)
                c1 = lapic_read(LAPIC_TMR_CCR);
        if (!high || lo + now == a0 + a1)
                return false;
        *span = (lo + now - a0 - a1) / 2; /* mid-point to mid-point (now >= lo >= a1 >= a0) */
        *err = (now - lo) + (a1 - a0);
        *lapic_span = c0 - c1;
        return true;
}

void x86_time_init(void)
{
        uint64_t apic = x86_rdmsr(MSR_APIC_BASE), span, err, best_span = 0, best_err = 0;
        uint32_t lapic_span, best_lapic = 0;
        unsigned tries = 0;
        unsigned long long ppm = 0;
        uint8_t gate;

        timers = percpu_table(sizeof(*timers), "host timers");
        if (apic & (1u << 11)) {
                x2apic = apic & (1u << 10);
                lapic_base = x2apic ? 0 : (apic & ~0xfffull);
        }
        if (lapic_base || x2apic) {
                lapic_write(LAPIC_SVR, 0x1ff);        /* software enable, spurious vector 0xff */
                lapic_write(LAPIC_TMR_DCR, 0x3);      /* divide by 16 */
                lapic_write(LAPIC_LVT_TMR, 1u << 16); /* masked, one-shot */
                lapic_write(LAPIC_TMR_ICR, 0xffffffffu);
        }

        gate = x86_inb(0x61);
        x86_outb(0x61, (uint8_t)((gate & ~0x02) | 0x01)); /* gate on, speaker off */
        while (tries < PIT_CAL_TRIES && pit_measure(&span, &err, &lapic_span)) {
                tries++;
                if (!best_span || err * best_span < best_err * span) {
                        best_span = span;
                        best_err = err;
                        best_lapic = lapic_span;
                }
                if (err * 1000 < span)
                        break;
        }
        x86_outb(0x61, gate);

        if (best_span) {
                tsc_khz = best_span / PIT_CAL_MS;
                lapic_per_ms = best_lapic / PIT_CAL_MS;
                ppm = best_err * 1000000 / best_span;
                if (ppm >= 1000)
                        LOG_WARN("TSC calibration uncertain by %llu ppm after %u tries "
                                 "(the CPU was held up while timing the PIT)",
                                 ppm, tries);
        } else {
                tsc_khz = tsc_khz_from_cpuid();
                if (!tsc_khz)
                        panic("cannot measure the TSC: no PIT and no CPUID leaf 0x15/0x16");
                LOG_WARN("no PIT: TSC frequency %llu kHz taken from CPUID",
                         (unsigned long long)tsc_khz);
        }
        if (lapic_per_ms)
                x86_host_tick();
        else
                LOG_WARN("no usable LAPIC timer: no host tick (guests are not preempted)");
        LOG_INFO("TSC %llu.%03llu MHz (%llu ppm, %u tr%s), host tick %u Hz (LAPIC timer "
                 "%u per ms)",
                 (unsigned long long)(tsc_khz / 1000), (unsigned long long)(tsc_khz % 1000), ppm,
                 tries, tries == 1 ? "y" : "ies", lapic_per_ms ? HOST_TICK_HZ : 0, lapic_per_ms);
}
