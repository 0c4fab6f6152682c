/*
 * What a guest sees of the CPU in the ID registers (HCR_EL2.TID3 traps its reads of the ID
 * space, op0 3, op1 0, CRn 0, CRm 1..7): the hardware's values with every feature Keel does
 * not virtualize hidden (field 0 = not implemented), and the registers Keel does not know
 * read as 0. The registers of the hidden features trap and are undefined instructions for the
 * guest (vcpu.c, cpu.c's CPTR_EL2/MDCR_EL2/HCR_EL2 settings). docs/arm64.md says which.
 */
#include <arch/sysreg.h>

#include "arm64_priv.h"

#define F(lsb) (0xfull << (lsb))

/* Fields hidden (set to 0) per register, by (CRm << 3 | op2). */
struct id_mask {
        uint8_t reg;
        uint64_t hide;
};

static const struct id_mask id_masks[] = {
    /* ID_PFR0_EL1: AMU, RAS (AArch32 view). */
    {1 << 3 | 0, F(20) | F(28)},
    /* ID_DFR0_EL1: CopTrc, MMapTrc, PerfMon, TraceFilt (trace and PMU). */
    {1 << 3 | 2, F(12) | F(16) | F(24) | F(28)},
    /* ID_AA64PFR0_EL1: EL2 (no nested virtualization), RAS, SEL2, MPAM, AMU, RME. */
    {4 << 3 | 0, F(8) | F(28) | F(36) | F(40) | F(44) | F(52)},
    /* ID_AA64PFR1_EL1: MTE, RAS_frac, MPAM_frac, SME, RNDR_trap, NMI, MTE_frac, GCS, THE,
     * MTEX, DF2, PFAR (kept: BT, SSBS, CSV2_frac). */
    {4 << 3 | 1,
     F(8) | F(12) | F(16) | F(24) | F(28) | F(36) | F(40) | F(44) | F(48) | F(52) | F(56) | F(60)},
    /* ID_AA64DFR0_EL1: TraceVer, PMUVer, PMSVer, TraceFilt, TraceBuffer, MTPMU, BRBE, and
     * everything above (kept: DebugVer, BRPs, WRPs, CTX_CMPs, DoubleLock). */
    {5 << 3 | 0, F(4) | F(8) | F(32) | F(40) | F(44) | F(48) | F(52) | F(56) | F(60)},
    /* ID_AA64ISAR1_EL1: LS64 (ACCDATA_EL1 is not switched). */
    {6 << 3 | 1, F(60)},
    /* ID_AA64ISAR2_EL1: WFxT (WFIT traps as WFI would, WFET does not trap). */
    {6 << 3 | 2, F(0)},
    /* ID_AA64MMFR0_EL1: ECV above 1 (CNTPOFF is EL2's), FGT (EL2); PARange capped below. */
    {7 << 3 | 0, F(56)},
    /* ID_AA64MMFR1_EL1: VH, TWED, HCX, TIDCP1 (EL2 features; TIDCP1 an SCTLR bit not kept). */
    {7 << 3 | 1, F(8) | F(32) | F(40) | F(52)},
    /* ID_AA64MMFR2_EL1: NV, FWB, EVT (EL2 features). */
    {7 << 3 | 2, F(24) | F(40) | F(56)},
};

/* The hardware's value of ID register (CRm, op2), for those Keel passes through (masked). */
static bool id_hw(unsigned reg, uint64_t *v)
{
        switch (reg) {
        case 1 << 3 | 0:
                *v = read_sysreg(S3_0_C0_C1_0);
                return true; /* ID_PFR0_EL1 */
        case 1 << 3 | 1:
                *v = read_sysreg(S3_0_C0_C1_1);
                return true; /* ID_PFR1_EL1 */
        case 1 << 3 | 2:
                *v = read_sysreg(S3_0_C0_C1_2);
                return true; /* ID_DFR0_EL1 */
        case 1 << 3 | 4:
                *v = read_sysreg(S3_0_C0_C1_4);
                return true; /* ID_MMFR0_EL1 */
        case 1 << 3 | 5:
                *v = read_sysreg(S3_0_C0_C1_5);
                return true;
        case 1 << 3 | 6:
                *v = read_sysreg(S3_0_C0_C1_6);
                return true;
        case 1 << 3 | 7:
                *v = read_sysreg(S3_0_C0_C1_7);
                return true; /* ID_MMFR3_EL1 */
        case 2 << 3 | 0:
                *v = read_sysreg(S3_0_C0_C2_0);
                return true; /* ID_ISAR0_EL1 */
        case 2 << 3 | 1:
                *v = read_sysreg(S3_0_C0_C2_1);
                return true;
        case 2 << 3 | 2:
                *v = read_sysreg(S3_0_C0_C2_2);
                return true;
        case 2 << 3 | 3:
                *v = read_sysreg(S3_0_C0_C2_3);
                return true;
        case 2 << 3 | 4:
                *v = read_sysreg(S3_0_C0_C2_4);
                return true;
        case 2 << 3 | 5:
                *v = read_sysreg(S3_0_C0_C2_5);
                return true; /* ID_ISAR5_EL1 */
        case 2 << 3 | 6:
                *v = read_sysreg(S3_0_C0_C2_6);
                return true; /* ID_MMFR4_EL1 */
        case 2 << 3 | 7:
                *v = read_sysreg(S3_0_C0_C2_7);
                return true; /* ID_ISAR6_EL1 */
        case 3 << 3 | 0:
                *v = read_sysreg(S3_0_C0_C3_0);
                return true; /* MVFR0_EL1 */
        case 3 << 3 | 1:
                *v = read_sysreg(S3_0_C0_C3_1);
                return true;
        case 3 << 3 | 2:
                *v = read_sysreg(S3_0_C0_C3_2);
                return true; /* MVFR2_EL1 */
        case 4 << 3 | 0:
                *v = read_sysreg(S3_0_C0_C4_0);
                return true; /* ID_AA64PFR0_EL1 */
        case 4 << 3 | 1:
                *v = read_sysreg(S3_0_C0_C4_1);
                return true; /* ID_AA64PFR1_EL1 */
        case 4 << 3 | 4:
                *v = read_sysreg(S3_0_C0_C4_4);
                return true; /* ID_AA64ZFR0_EL1 */
        case 5 << 3 | 0:
                *v = read_sysreg(S3_0_C0_C5_0);
                return true; /* ID_AA64DFR0_EL1 */
        case 6 << 3 | 0:
                *v = read_sysreg(S3_0_C0_C6_0);
                return true; /* ID_AA64ISAR0_EL1 */
        case 6 << 3 | 1:
                *v = read_sysreg(S3_0_C0_C6_1);
                return true; /* ID_AA64ISAR1_EL1 */
        case 6 << 3 | 2:
                *v = read_sysreg(S3_0_C0_C6_2);
                return true; /* ID_AA64ISAR2_EL1 */
        case 7 << 3 | 0:
                *v = read_sysreg(S3_0_C0_C7_0);
                return true; /* ID_AA64MMFR0_EL1 */
        case 7 << 3 | 1:
                *v = read_sysreg(S3_0_C0_C7_1);
                return true; /* ID_AA64MMFR1_EL1 */
        case 7 << 3 | 2:
                *v = read_sysreg(S3_0_C0_C7_2);
                return true; /* ID_AA64MMFR2_EL1 */
        }
        /* ID_AA64SMFR0 (SME hidden), DFR1, AFR0/1, ISAR3, MMFR3/4, PFR2, FPFR0, the AArch32
         * PFR2, DFR1, MMFR5, AFR0 and the unallocated encodings: nothing Keel knows. */
        return false;
}

uint64_t arm64_id_sanitize(unsigned crm, unsigned op2, uint64_t hw)
{
        unsigned reg = (crm & 7) << 3 | (op2 & 7);

        for (unsigned i = 0; i < ARRAY_SIZE(id_masks); i++)
                if (id_masks[i].reg == reg)
                        hw &= ~id_masks[i].hide;
        if (reg == (7 << 3 | 0)) {
                if ((hw & 0xf) > 5) /* PARange: the stage-2 IPA space is 48 bits */
                        hw = (hw & ~0xfull) | 5;
                if (((hw >> 60) & 0xf) > 1) /* ECV: the self-synchronized counter reads only */
                        hw = (hw & ~F(60)) | 1ull << 60;
        }
        return hw;
}

uint64_t arm64_id_reg(unsigned crm, unsigned op2)
{
        uint64_t v;

        if (crm < 1 || crm > 7 || !id_hw(crm << 3 | op2, &v))
                return 0;
        return arm64_id_sanitize(crm, op2, v);
}
