/*
 * idregs (arm64): the ID registers show no feature Keel does not virtualize, and the
 * registers of a hidden feature are UNDEFINED (docs/arm64.md, "What the guest sees of the
 * CPU"):
 *   - ID_AA64PFR0/PFR1/DFR0/MMFR0-2/ISAR1-2, ID_AA64SMFR0, the AArch32 ID_PFR0 and ID_DFR0:
 *     every hidden field is 0 (EL2, RAS, SEL2, MPAM, AMU, RME; MTE, SME, NMI, GCS...; PMU,
 *     SPE, trace, BRBE; VH, NV, FWB...; WFxT, LS64), PARange at most 48 bits, the rest of
 *     the registers that Keel also shows (and the ones it keeps: FP, AdvSIMD, GIC, SVE)
 *     as the guest reads them twice (stable);
 *   - the PMU's, MTE's, SME's, RAS's, AMU's and trace's system registers and SME's SMSTART
 *     are undefined instructions (EC 0) at EL1; so is WFIT.
 * Prints the registers it read. Exits 0, or 1 after FAIL lines.
 */
#include "exc.h"

static unsigned failed, checks;
static volatile unsigned undefs;
static volatile uint64_t last_ec;

uint64_t guest_sync(uint64_t esr, uint64_t elr, uint64_t far)
{
        (void)far;
        last_ec = esr >> 26;
        if (last_ec != 0)
                guest_exception(4, esr, elr, far);
        undefs++;
        return elr + 4;
}

void guest_irq(void)
{
}

static void field_zero(const char *reg, uint64_t v, unsigned lsb, const char *name)
{
        checks++;
        if (((v >> lsb) & 0xf) == 0)
                return;
        failed++;
        guest_printf("FAIL: idregs: %s.%s (bits %u..%u) = %lu, expected 0 (hidden)\n", reg, name,
                     lsb + 3, lsb, (unsigned long)((v >> lsb) & 0xf));
}

struct field {
        unsigned lsb;
        const char *name;
};

#define ZERO(reg, v, ...)                                                    \
        do {                                                                 \
                static const struct field f_[] = {__VA_ARGS__};              \
                for (unsigned i_ = 0; i_ < sizeof(f_) / sizeof(f_[0]); i_++) \
                        field_zero(reg, v, f_[i_].lsb, f_[i_].name);         \
        } while (0)

/* One instruction `insn` that must be an undefined instruction at EL1. */
#define EXPECT_UNDEF(name, insn)                                                               \
        do {                                                                                   \
                unsigned before_ = undefs;                                                     \
                __asm__ volatile(insn ::: "x0", "memory");                                     \
                checks++;                                                                      \
                if (undefs != before_ + 1) {                                                   \
                        failed++;                                                              \
                        guest_printf("FAIL: idregs: %s: no undefined-instruction exception\n", \
                                     name);                                                    \
                }                                                                              \
        } while (0)

int64_t guest_main(void)
{
        uint64_t pfr0 = read_sysreg(ID_AA64PFR0_EL1), pfr1 = read_sysreg(ID_AA64PFR1_EL1);
        uint64_t dfr0 = read_sysreg(ID_AA64DFR0_EL1), smfr0 = read_sysreg(S3_0_C0_C4_5);
        uint64_t mmfr0 = read_sysreg(ID_AA64MMFR0_EL1), mmfr1 = read_sysreg(ID_AA64MMFR1_EL1);
        uint64_t mmfr2 = read_sysreg(S3_0_C0_C7_2), isar1 = read_sysreg(ID_AA64ISAR1_EL1);
        uint64_t isar2 = read_sysreg(S3_0_C0_C6_2), zfr0 = read_sysreg(S3_0_C0_C4_4);
        uint64_t id_pfr0 = read_sysreg(ID_PFR0_EL1), id_dfr0 = read_sysreg(ID_DFR0_EL1);

        exc_install();
        guest_printf("idregs: PFR0 %lx PFR1 %lx DFR0 %lx ZFR0 %lx SMFR0 %lx\n", (unsigned long)pfr0,
                     (unsigned long)pfr1, (unsigned long)dfr0, (unsigned long)zfr0,
                     (unsigned long)smfr0);
        guest_printf("idregs: MMFR0 %lx MMFR1 %lx MMFR2 %lx ISAR1 %lx ISAR2 %lx\n",
                     (unsigned long)mmfr0, (unsigned long)mmfr1, (unsigned long)mmfr2,
                     (unsigned long)isar1, (unsigned long)isar2);
        ZERO("ID_AA64PFR0_EL1", pfr0, {8, "EL2"}, {28, "RAS"}, {36, "SEL2"}, {40, "MPAM"},
             {44, "AMU"}, {52, "RME"});
        ZERO("ID_AA64PFR1_EL1", pfr1, {8, "MTE"}, {12, "RAS_frac"}, {16, "MPAM_frac"}, {24, "SME"},
             {28, "RNDR_trap"}, {36, "NMI"}, {40, "MTE_frac"}, {44, "GCS"}, {48, "THE"},
             {52, "MTEX"}, {56, "DF2"}, {60, "PFAR"});
        ZERO("ID_AA64SMFR0_EL1", smfr0, {32, "F32F32"}, {56, "I16I64"}, {60, "FA64"});
        checks++;
        if (smfr0) {
                failed++;
                guest_printf("FAIL: idregs: ID_AA64SMFR0_EL1 = %lx, expected 0\n",
                             (unsigned long)smfr0);
        }
        ZERO("ID_AA64DFR0_EL1", dfr0, {4, "TraceVer"}, {8, "PMUVer"}, {32, "PMSVer"},
             {40, "TraceFilt"}, {44, "TraceBuffer"}, {48, "MTPMU"}, {52, "BRBE"});
        ZERO("ID_AA64MMFR1_EL1", mmfr1, {8, "VH"}, {32, "TWED"}, {40, "HCX"}, {52, "TIDCP1"});
        ZERO("ID_AA64MMFR2_EL1", mmfr2, {24, "NV"}, {40, "FWB"}, {56, "EVT"});
        ZERO("ID_AA64ISAR1_EL1", isar1, {60, "LS64"});
        ZERO("ID_AA64ISAR2_EL1", isar2, {0, "WFxT"});
        ZERO("ID_PFR0_EL1", id_pfr0, {20, "AMU"}, {28, "RAS"});
        ZERO("ID_DFR0_EL1", id_dfr0, {12, "CopTrc"}, {16, "MMapTrc"}, {24, "PerfMon"});
        checks++;
        if ((mmfr0 & 0xf) > 5) {
                failed++;
                guest_printf("FAIL: idregs: ID_AA64MMFR0_EL1.PARange = %lu, more than 48 bits\n",
                             (unsigned long)(mmfr0 & 0xf));
        }
        checks++;
        if (read_sysreg(ID_AA64PFR0_EL1) != pfr0 || read_sysreg(ID_AA64DFR0_EL1) != dfr0) {
                failed++;
                guest_printf("FAIL: idregs: ID registers read differently the second time\n");
        }
        guest_printf("idregs: hidden fields read 0, PARange %lu\n", (unsigned long)(mmfr0 & 0xf));

        EXPECT_UNDEF("PMCR_EL0 read", "mrs x0, PMCR_EL0");
        EXPECT_UNDEF("PMCCNTR_EL0 read", "mrs x0, PMCCNTR_EL0");
        EXPECT_UNDEF("PMCNTENSET_EL0 write", "mov x0, #1\n msr PMCNTENSET_EL0, x0");
        EXPECT_UNDEF("PMEVCNTR0_EL0 read", "mrs x0, S3_3_C14_C8_0");
        EXPECT_UNDEF("PMEVTYPER0_EL0 write", "mov x0, #0\n msr S3_3_C14_C12_0, x0");
        EXPECT_UNDEF("PMUSERENR_EL0 read", "mrs x0, PMUSERENR_EL0");
        EXPECT_UNDEF("PMINTENSET_EL1 read", "mrs x0, PMINTENSET_EL1");
        EXPECT_UNDEF("PMOVSCLR_EL0 read", "mrs x0, PMOVSCLR_EL0");
        EXPECT_UNDEF("GCR_EL1 (MTE) read", "mrs x0, S3_0_C1_C0_6");
        EXPECT_UNDEF("TFSR_EL1 (MTE) read", "mrs x0, S3_0_C5_C6_0");
        EXPECT_UNDEF("RGSR_EL1 (MTE) write", "mov x0, #0\n msr S3_0_C1_C0_5, x0");
        /* CPACR_EL1.SMEN open (RES0 without SME): otherwise its own trap (EC 0x1d) comes first. */
        write_sysreg(CPACR_EL1, read_sysreg(CPACR_EL1) | 3ull << 24);
        __asm__ volatile("isb");
        EXPECT_UNDEF("SMCR_EL1 (SME) read", "mrs x0, S3_0_C1_C2_6");
        EXPECT_UNDEF("SMSTART (SME)", ".inst 0xd503477f");
        EXPECT_UNDEF("ERRIDR_EL1 (RAS) read", "mrs x0, S3_0_C5_C3_0");
        EXPECT_UNDEF("AMCR_EL0 (AMU) read", "mrs x0, S3_3_C13_C2_0");
        EXPECT_UNDEF("TRCIDR0 (trace) read", "mrs x0, S2_1_C0_C8_7");
        EXPECT_UNDEF("WFIT (WFxT)", "mov x0, #0\n .inst 0xd5031020");
        guest_printf("idregs: %u accesses to hidden features' registers: undefined instruction\n",
                     undefs);
        if (failed) {
                guest_printf("idregs: %u of %u checks failed\n", failed, checks);
                return 1;
        }
        guest_printf("idregs: all %u checks passed\n", checks);
        return 0;
}
