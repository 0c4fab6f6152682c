/*
 * dbgswitch (arm64), two VMs pinned to one CPU, built twice: each keeps its own self-hosted
 * debug state while the other runs in between (docs/arm64.md, "Debug registers and the PMU"):
 *   - both fill every breakpoint and watchpoint register (DBGBVR/BCR/WVR/WCR, as many as
 *     ID_AA64DFR0_EL1 says) with a pattern of their own, then for
 *     DBG_MS milliseconds read them all back again and again: they must hold their own values,
 *     however often the VM was descheduled (counted as gaps in the counter);
 *     (a VM that reads a foreign value writes its own again: a debugger's breakpoints must
 *     stay set);
 *   - the setter (DBGSWITCH_SETTER) also enables breakpoint 0 on bp_target(), with its own
 *     debug exceptions off (MDSCR_EL1.MDE 0, PSTATE.D set);
 *   - the victim turns its debug exceptions on (OS lock unlocked, MDSCR_EL1.MDE and KDE,
 *     PSTATE.D clear) and calls bp_target() all the time: since its own breakpoint 0 is off,
 *     it must never take a breakpoint exception, which it would if the setter's were live.
 * Exits 0, or 1 after FAIL lines.
 */
#include "exc.h"

/* Long enough for the two VMs' checks to overlap whichever the scheduler starts first. */
#define DBG_MS 1500

static unsigned failed, checks;
static volatile unsigned breakpoints;
static unsigned brps, wrps; /* at most 16 each */
static uint64_t bvr[16], bcr[16], wvr[16], wcr[16];

void bp_target(void);
__asm__(".text\n.balign 16\n.globl bp_target\nbp_target:\n nop\n ret\n");

uint64_t guest_sync(uint64_t esr, uint64_t elr, uint64_t far)
{
        if ((esr >> 26) != 0x31) /* breakpoint from the current EL */
                guest_exception(4, esr, elr, far);
        breakpoints++;
        write_sysreg(MDSCR_EL1, 0); /* once is enough: the retry must not trap again */
        __asm__ volatile("isb");
        return elr;
}

void guest_irq(void)
{
}

static uint64_t dbg_read(unsigned kind, unsigned n)
{
#define R(i)                                                  \
        case i:                                               \
                switch (kind) {                               \
                case 0:                                       \
                        return read_sysreg(S2_0_C0_C##i##_4); \
                case 1:                                       \
                        return read_sysreg(S2_0_C0_C##i##_5); \
                case 2:                                       \
                        return read_sysreg(S2_0_C0_C##i##_6); \
                default:                                      \
                        return read_sysreg(S2_0_C0_C##i##_7); \
                }
        switch (n) {
                R(0)
                R(1) R(2) R(3) R(4) R(5) R(6) R(7) R(8) R(9) R(10) R(11) R(12) R(13) R(14) R(15)
        }
#undef R
        return 0;
}

static void dbg_write(unsigned kind, unsigned n, uint64_t v)
{
#define W(i)                                               \
        case i:                                            \
                switch (kind) {                            \
                case 0:                                    \
                        write_sysreg(S2_0_C0_C##i##_4, v); \
                        break;                             \
                case 1:                                    \
                        write_sysreg(S2_0_C0_C##i##_5, v); \
                        break;                             \
                case 2:                                    \
                        write_sysreg(S2_0_C0_C##i##_6, v); \
                        break;                             \
                default:                                   \
                        write_sysreg(S2_0_C0_C##i##_7, v); \
                        break;                             \
                }                                          \
                break;
        switch (n) {
                W(0)
                W(1) W(2) W(3) W(4) W(5) W(6) W(7) W(8) W(9) W(10) W(11) W(12) W(13) W(14) W(15)
        }
#undef W
}

/* This VM's breakpoints and watchpoints into the registers. */
static void write_own(void)
{
        for (unsigned i = 0; i < brps && i < 16; i++) {
                dbg_write(0, i, bvr[i]);
                dbg_write(1, i, bcr[i]);
        }
        for (unsigned i = 0; i < wrps && i < 16; i++) {
                dbg_write(2, i, wvr[i]);
                dbg_write(3, i, wcr[i]);
        }
        __asm__ volatile("isb");
}

int64_t guest_main(void)
{
        uint64_t dfr0 = read_sysreg(ID_AA64DFR0_EL1), tag, t0, last, gap, gaps = 0, rounds = 0;
        uint64_t freq = read_sysreg(CNTFRQ_EL0), bad = 0, before;
        struct keel_vm_info info;
        static const unsigned bas[3] = {0x3, 0xc, 0xf};

#ifdef DBGSWITCH_SETTER
        const char *role = "setter";
#else
        const char *role = "victim";
#endif

        exc_install();
        hc_vm_info_gpa(gpa_of(&info), sizeof(info));
        tag = info.vm_id + 1;
        brps = ((dfr0 >> 12) & 0xf) + 1; /* 1..16: the arrays hold 16 */
        wrps = ((dfr0 >> 20) & 0xf) + 1;
        brps = brps > 16 ? 16 : brps;
        wrps = wrps > 16 ? 16 : wrps;
        for (unsigned i = 0; i < brps && i < 16; i++) {
                bvr[i] = (tag << 40 | 0x1000ull * (i + 1)) & 0xfffffffffffcull;
                /* BAS one of the AArch64 patterns (the CPU may fold others), PMC 1..3; E 0 */
                bcr[i] = (uint64_t)bas[(tag + i) % 3] << 5 | (1 + (tag + i + 1) % 3) << 1;
        }
        for (unsigned i = 0; i < wrps && i < 16; i++) {
                wvr[i] = (tag << 36 | 0x800ull * (i + 1)) & 0xfffffffffff8ull;
                wcr[i] = ((tag + i) & 0xff) << 5 | 1 << 3 | 2 << 1; /* BAS, LSC load, PAC */
        }
#ifdef DBGSWITCH_SETTER
        bvr[0] = gpa_of((void *)bp_target);
        bcr[0] = 0xf << 5 | 3 << 1 | 1; /* BAS all, PMC EL1 and EL0, enabled */
        write_sysreg(MDSCR_EL1, 0);     /* its own debug exceptions off */
#else
        write_sysreg(S2_0_C1_C0_4, 0);                    /* OSLAR_EL1: unlocked */
        write_sysreg(MDSCR_EL1, 1ull << 15 | 1ull << 13); /* MDE, KDE */
        __asm__ volatile("msr daifclr, #8");              /* PSTATE.D clear */
#endif
        write_own();
        guest_printf("dbgswitch: %s, tag %lu, %u breakpoints and %u watchpoints set\n", role,
                     (unsigned long)tag, brps, wrps);

        t0 = last = guest_counter();
        while (last - t0 < freq / 1000 * DBG_MS) {
                uint64_t now;

                bp_target();
                before = bad;
                for (unsigned i = 0; i < brps && i < 16; i++)
                        bad += (dbg_read(0, i) != bvr[i]) + (dbg_read(1, i) != bcr[i]);
                for (unsigned i = 0; i < wrps && i < 16; i++)
                        bad += (dbg_read(2, i) != wvr[i]) + (dbg_read(3, i) != wcr[i]);
                if (bad != before)
                        write_own(); /* what it set is its own again (the setter's breakpoint) */
                rounds++;
                now = guest_counter();
                gap = now - last;
                gaps += gap > freq / 1000; /* more than 1 ms away: another VM ran */
                last = now;
        }
        __asm__ volatile("msr daifset, #8");
        checks++;
        if (bad) {
                failed++;
                guest_printf("FAIL: dbgswitch: %s: %lu register reads over %lu rounds were not "
                             "its own values\n",
                             role, (unsigned long)bad, (unsigned long)rounds);
        }
        checks++;
        if (breakpoints) {
                failed++;
                guest_printf("FAIL: dbgswitch: %s: took %u breakpoint exceptions it did not set\n",
                             role, breakpoints);
        }
        checks++;
        if (!gaps) {
                failed++;
                guest_printf("FAIL: dbgswitch: %s: never descheduled: the test proved nothing\n",
                             role);
        }
        guest_printf("dbgswitch: %s: %lu foreign register values in %lu rounds, descheduled %lu "
                     "times, %u breakpoint exceptions\n",
                     role, (unsigned long)bad, (unsigned long)rounds, (unsigned long)gaps,
                     breakpoints);
        if (failed) {
                guest_printf("dbgswitch: %u of %u checks failed\n", failed, checks);
                return 1;
        }
        guest_printf("dbgswitch: all %u checks passed\n", checks);
        return 0;
}
