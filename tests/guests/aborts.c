/*
 * aborts (arm64): accesses to guest-physical addresses with nothing behind them (neither RAM
 * nor a device) are synchronous external aborts the guest takes itself, as on hardware and
 * KVM (Keel's default, config unbacked = abort; docs/arm64.md "Exits"):
 *   - loads below RAM (0x20000000) and far above it (0x100000000), a store just past RAM:
 *     data abort from the current EL (EC 0x25), DFSC 0x10, ISV 0, IL 1, WnR as the access,
 *     FAR_EL1 = the address, ELR_EL1 = the load or store, SPSR_EL1 = the PSTATE before;
 *   - instruction fetches from 0x48000000 (past RAM) and from the PL011 (a device, not
 *     executable): instruction abort from the current EL (EC 0x21), IFSC 0x10, FAR_EL1 =
 *     ELR_EL1 = the address;
 *   - PSTATE.PAN in the handler: set when SCTLR_EL1.SPAN is 0, kept (0) when it is 1;
 * and the guest goes on after each (the VM is not stopped). Exits 0, or 1 after FAIL lines.
 */
#include "exc.h"

#define EC_IABT_CUR 0x21
#define EC_DABT_CUR 0x25
#define FSC_SEA     0x10
#define ESR_IL      (1ull << 25)
#define ISS_ISV     (1ull << 24)
#define ISS_WNR     (1ull << 6)

static unsigned failed, checks;
static volatile uint64_t got_esr, got_elr, got_far, got_spsr, got_pan, resume_pc;
static volatile unsigned taken;

static void expect(const char *what, const char *field, uint64_t got, uint64_t want)
{
        checks++;
        if (got == want)
                return;
        failed++;
        guest_printf("FAIL: aborts: %s: %s 0x%lx, expected 0x%lx\n", what, field,
                     (unsigned long)got, (unsigned long)want);
}

uint64_t guest_sync(uint64_t esr, uint64_t elr, uint64_t far)
{
        got_esr = esr;
        got_elr = elr;
        got_far = far;
        got_spsr = read_sysreg(SPSR_EL1);
        got_pan = read_sysreg(S3_0_C4_C2_3) >> 22 & 1; /* PSTATE.PAN in the handler */
        taken++;
        if ((esr >> 26) == EC_IABT_CUR)
                return resume_pc; /* back to where the branch came from */
        if (taken > 16) {
                guest_printf("FAIL: aborts: more exceptions than accesses\n");
                guest_exit(1);
        }
        return elr + 4; /* over the load or store */
}

void guest_irq(void)
{
        guest_printf("FAIL: aborts: unexpected IRQ\n");
        guest_exit(1);
}

static void check_data(const char *what, uint64_t addr, bool write)
{
        unsigned before = taken;
        uint64_t at, v = 0x5a5a, spsr = read_sysreg(DAIF) | 0x5; /* EL1h */

        if (write)
                __asm__ volatile("adr %0, 1f\n1: str %1, [%2]"
                                 : "=&r"(at)
                                 : "r"(v), "r"(addr)
                                 : "memory");
        else
                __asm__ volatile("adr %0, 1f\n1: ldr %1, [%2]"
                                 : "=&r"(at), "+r"(v)
                                 : "r"(addr)
                                 : "memory");
        expect(what, "exceptions", taken - before, 1);
        expect(what, "ESR_EL1.EC", got_esr >> 26, EC_DABT_CUR);
        expect(what, "ESR_EL1.DFSC", got_esr & 0x3f, FSC_SEA);
        expect(what, "ESR_EL1.IL", got_esr & ESR_IL, ESR_IL);
        expect(what, "ESR_EL1.ISV", got_esr & ISS_ISV, 0);
        expect(what, "ESR_EL1.WnR", got_esr & ISS_WNR, write ? ISS_WNR : 0);
        expect(what, "FAR_EL1", got_far, addr);
        expect(what, "ELR_EL1", got_elr, at);
        expect(what, "SPSR_EL1 mode and DAIF", got_spsr & 0x3cf, spsr & 0x3cf);
        guest_printf("aborts: %s 0x%lx: data abort, DFSC 0x%lx, FAR 0x%lx\n",
                     write ? "store to" : "load from", (unsigned long)addr,
                     (unsigned long)(got_esr & 0x3f), (unsigned long)got_far);
}

static void check_fetch(const char *what, uint64_t addr)
{
        unsigned before = taken;

        __asm__ volatile("adr x9, 1f\n"
                         "str x9, [%1]\n"
                         "br %0\n"
                         "1:"
                         :
                         : "r"(addr), "r"(&resume_pc)
                         : "x9", "memory");
        expect(what, "exceptions", taken - before, 1);
        expect(what, "ESR_EL1.EC", got_esr >> 26, EC_IABT_CUR);
        expect(what, "ESR_EL1.IFSC", got_esr & 0x3f, FSC_SEA);
        expect(what, "ESR_EL1.IL", got_esr & ESR_IL, ESR_IL);
        expect(what, "FAR_EL1", got_far, addr);
        expect(what, "ELR_EL1", got_elr, addr);
        guest_printf("aborts: fetch from 0x%lx: instruction abort, IFSC 0x%lx, FAR 0x%lx\n",
                     (unsigned long)addr, (unsigned long)(got_esr & 0x3f), (unsigned long)got_far);
}

int64_t guest_main(void)
{
        exc_install();
        check_data("load below RAM", 0x20000000ull, false);
        check_data("load above 4 GiB", 0x100000000ull, false);
        check_data("store past RAM", guest_ram_end() + 0x1000, true);
        check_fetch("fetch past RAM", 0x48000000ull);
        check_fetch("fetch from the PL011", PL011_BASE);
        /* Exception entry to EL1 sets PSTATE.PAN when SCTLR_EL1.SPAN is 0, keeps it else. */
        write_sysreg(SCTLR_EL1, read_sysreg(SCTLR_EL1) & ~(1ull << 23));
        __asm__ volatile("isb");
        check_data("load below RAM, SPAN 0", 0x20000000ull, false);
        expect("load below RAM, SPAN 0", "PSTATE.PAN in the handler", got_pan, 1);
        write_sysreg(SCTLR_EL1, read_sysreg(SCTLR_EL1) | 1ull << 23);
        __asm__ volatile(".inst 0xd500409f; isb"); /* MSR PAN, #0 */
        check_data("load below RAM, SPAN 1", 0x20000000ull, false);
        expect("load below RAM, SPAN 1", "PSTATE.PAN in the handler", got_pan, 0);
        if (failed) {
                guest_printf("aborts: %u of %u checks failed\n", failed, checks);
                return 1;
        }
        guest_printf("aborts: all %u checks passed\n", checks);
        return 0;
}
