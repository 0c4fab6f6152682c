/*
 * timers (arm64, booted as a Linux kernel so that it has the GICv3): the guest's EL1 timers
 * behave as the Arm ARM says (D11 "The Generic Timer"), checked as kvm-unit-tests' `timer`
 * does:
 *   1. the physical timer's registers hold what is written (CNTP_CVAL_EL0, CNTP_CTL_EL0's
 *      ENABLE and IMASK) and TVAL is CVAL - CNTPCT both ways;
 *   2. with CVAL 1 ms ahead, CNTP_CTL_EL0.ISTATUS gets set, not before CVAL;
 *   3. each timer (virtual: PPI 27, physical: PPI 30) interrupts once through the GIC;
 *   4. each timer's PPI is pending exactly while its output is asserted: with the PPI
 *      disabled at the GIC, a due timer shows pending in GICR_ISPENDR0; reprogrammed to
 *      later, or disabled, it no longer does, and enabling the PPI then takes no interrupt;
 *      a due but masked timer (IMASK) never shows pending.
 * Exits 0, or 1 after FAIL lines.
 */
#include "exc.h"

#define VTIMER_PPI 27
#define PTIMER_PPI 30
#define CTL_ENABLE 1u
#define CTL_IMASK  2u
#define CTL_ISTAT  4u

static unsigned failed, checks;
static volatile unsigned irqs[32];
static uint64_t freq;

static void expect(const char *what, uint64_t got, uint64_t want)
{
        checks++;
        if (got == want)
                return;
        failed++;
        guest_printf("FAIL: timers: %s: 0x%lx, expected 0x%lx\n", what, (unsigned long)got,
                     (unsigned long)want);
}

static void expect_true(const char *what, bool ok)
{
        checks++;
        if (ok)
                return;
        failed++;
        guest_printf("FAIL: timers: %s\n", what);
}

uint64_t guest_sync(uint64_t esr, uint64_t elr, uint64_t far)
{
        guest_exception(4, esr, elr, far);
}

void guest_irq(void)
{
        uint64_t intid = read_sysreg(ICC_IAR1_EL1);

        if (intid >= 1020)
                return;
        if (intid == VTIMER_PPI)
                write_sysreg(CNTV_CTL_EL0, CTL_ENABLE | CTL_IMASK);
        if (intid == PTIMER_PPI)
                write_sysreg(CNTP_CTL_EL0, CTL_ENABLE | CTL_IMASK);
        if (intid < 32)
                irqs[intid]++;
        write_sysreg(ICC_EOIR1_EL1, intid);
}

struct timer {
        const char *name;
        unsigned ppi;
        uint64_t (*counter)(void);
        void (*set_cval)(uint64_t);
        void (*set_ctl)(uint64_t);
        uint64_t (*ctl)(void);
};

static uint64_t pcount(void)
{
        __asm__ volatile("isb" ::: "memory");
        return read_sysreg(CNTPCT_EL0);
}

static void p_cval(uint64_t v)
{
        write_sysreg(CNTP_CVAL_EL0, v);
        __asm__ volatile("isb");
}

static void p_ctl(uint64_t v)
{
        write_sysreg(CNTP_CTL_EL0, v);
        __asm__ volatile("isb");
}

static uint64_t p_ctl_read(void)
{
        return read_sysreg(CNTP_CTL_EL0);
}

static void v_cval(uint64_t v)
{
        write_sysreg(CNTV_CVAL_EL0, v);
        __asm__ volatile("isb");
}

static void v_ctl(uint64_t v)
{
        write_sysreg(CNTV_CTL_EL0, v);
        __asm__ volatile("isb");
}

static uint64_t v_ctl_read(void)
{
        return read_sysreg(CNTV_CTL_EL0);
}

static const struct timer timers[2] = {
    {"virtual", VTIMER_PPI, guest_counter, v_cval, v_ctl, v_ctl_read},
    {"physical", PTIMER_PPI, pcount, p_cval, p_ctl, p_ctl_read},
};

/* Whether the PPI's pending bit shows within `ms` milliseconds (each read is a GIC access). */
static bool pending_within(unsigned ppi, unsigned ms)
{
        uint64_t t0 = guest_counter(), end = freq / 1000 * ms;

        do {
                if (rd(GICR_ISPENDR0, 4) & (1u << ppi))
                        return true;
        } while (guest_counter() - t0 < end);
        return false;
}

static void physical_registers(void)
{
        uint64_t now, tval, cval;

        p_cval(0x123456789abcull);
        expect("CNTP_CVAL_EL0 reads back", read_sysreg(CNTP_CVAL_EL0), 0x123456789abcull);
        p_cval(~0ull);
        p_ctl(CTL_ENABLE | CTL_IMASK);
        expect("CNTP_CTL_EL0 reads back ENABLE|IMASK", p_ctl_read() & 3, 3);
        p_ctl(CTL_ENABLE);
        expect("CNTP_CTL_EL0 reads back ENABLE", p_ctl_read() & 3, 1);
        p_ctl(0);
        now = pcount();
        p_cval(now + 1000000);
        tval = read_sysreg(CNTP_TVAL_EL0) & 0xffffffffu;
        expect_true("CNTP_TVAL_EL0 = CVAL - CNTPCT", tval <= 1000000 && tval + freq / 10 > 1000000);
        now = pcount();
        write_sysreg(CNTP_TVAL_EL0, 5000);
        __asm__ volatile("isb");
        cval = read_sysreg(CNTP_CVAL_EL0);
        expect_true("CNTP_TVAL_EL0 write sets CVAL = CNTPCT + TVAL",
                    cval >= now + 5000 && cval < pcount() + 5000);
        guest_printf("timers: physical timer registers hold their values, TVAL = CVAL - CNTPCT\n");
}

static void physical_poll(void)
{
        uint64_t cval = pcount() + freq / 1000, seen = 0, t0 = guest_counter();

        p_cval(cval);
        p_ctl(CTL_ENABLE | CTL_IMASK);
        while (guest_counter() - t0 < freq) {
                if (p_ctl_read() & CTL_ISTAT) {
                        seen = pcount();
                        break;
                }
        }
        p_ctl(0);
        expect_true("CNTP_CTL_EL0.ISTATUS set within 1 s of a CVAL 1 ms ahead", seen != 0);
        expect_true("CNTP_CTL_EL0.ISTATUS not set before CVAL", !seen || seen >= cval);
        guest_printf("timers: physical timer polled: ISTATUS set %s\n",
                     seen ? "after CVAL" : "never");
}

static void interrupt_once(const struct timer *t)
{
        unsigned before = irqs[t->ppi];
        uint64_t t0 = guest_counter();

        wr(GICR_ISENABLER0, 4, 1u << t->ppi);
        t->set_cval(t->counter() + freq / 1000);
        t->set_ctl(CTL_ENABLE);
        irq_unmask();
        while (irqs[t->ppi] == before && guest_counter() - t0 < freq)
                ;
        delay_ticks(freq / 100); /* a second interrupt would come now (the handler masked it) */
        irq_mask();
        t->set_ctl(0);
        wr(GICR_ICENABLER0, 4, 1u << t->ppi);
        expect(t->ppi == VTIMER_PPI ? "virtual timer interrupts" : "physical timer interrupts",
               irqs[t->ppi] - before, 1);
        guest_printf("timers: %s timer: %u interrupt through PPI %u\n", t->name,
                     irqs[t->ppi] - before, t->ppi);
}

static void pending_follows_output(const struct timer *t)
{
        char what[96];
        unsigned before;
        uint64_t now = t->counter();

        wr(GICR_ICENABLER0, 4, 1u << t->ppi);
        wr(GICR_ICPENDR0, 4, 1u << t->ppi);
        t->set_cval(now + 10 * freq);
        t->set_ctl(CTL_ENABLE);
        guest_snprintf(what, sizeof(what), "%s timer 10 s ahead: PPI not pending", t->name);
        expect_true(what, !pending_within(t->ppi, 20));

        t->set_cval(now - 1);
        guest_snprintf(what, sizeof(what), "%s timer due: PPI pending", t->name);
        expect_true(what, pending_within(t->ppi, 100));

        t->set_cval(t->counter() + 10 * freq);
        guest_snprintf(what, sizeof(what),
                       "%s timer reprogrammed 10 s ahead: PPI no longer pending", t->name);
        expect_true(what, !pending_within(t->ppi, 20));

        t->set_cval(now - 1);
        guest_snprintf(what, sizeof(what), "%s timer due again: PPI pending", t->name);
        expect_true(what, pending_within(t->ppi, 100));

        t->set_ctl(0);
        before = irqs[t->ppi];
        wr(GICR_ISENABLER0, 4, 1u << t->ppi);
        irq_unmask();
        guest_snprintf(what, sizeof(what), "%s timer disabled: PPI no longer pending", t->name);
        expect_true(what, !pending_within(t->ppi, 20));
        irq_mask();
        guest_snprintf(what, sizeof(what),
                       "%s timer disabled: no interrupt when its PPI is enabled", t->name);
        expect(what, irqs[t->ppi] - before, 0);
        guest_snprintf(what, sizeof(what), "%s timer disabled: PPI not active", t->name);
        expect(what, rd(GICR_ISACTIVER0, 4) & (1u << t->ppi), 0);

        wr(GICR_ICENABLER0, 4, 1u << t->ppi);
        t->set_cval(now - 1);
        t->set_ctl(CTL_ENABLE | CTL_IMASK);
        guest_snprintf(what, sizeof(what), "%s timer due but masked: ISTATUS", t->name);
        expect(what, t->ctl() & CTL_ISTAT, CTL_ISTAT);
        guest_snprintf(what, sizeof(what), "%s timer due but masked: PPI not pending", t->name);
        expect_true(what, !pending_within(t->ppi, 20));
        t->set_ctl(0);
        guest_printf("timers: %s timer: PPI %u pending exactly while the timer's output is "
                     "asserted\n",
                     t->name, t->ppi);
}

int64_t guest_main(void)
{
        exc_install();
        freq = read_sysreg(CNTFRQ_EL0);
        gic_init();
        physical_registers();
        physical_poll();
        for (unsigned i = 0; i < 2; i++)
                interrupt_once(&timers[i]);
        for (unsigned i = 0; i < 2; i++)
                pending_follows_output(&timers[i]);
        if (failed) {
                guest_printf("timers: %u of %u checks failed\n", failed, checks);
                return 1;
        }
        guest_printf("timers: all %u checks passed\n", checks);
        return 0;
}
