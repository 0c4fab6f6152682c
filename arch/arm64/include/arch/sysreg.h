/*
 * arm64 system registers and barriers, and the bits of them Keel uses (names as in the Arm
 * ARM). Only this header and the arm64 sources touch them.
 */
#ifndef ARCH_SYSREG_H
#define ARCH_SYSREG_H

#include <stdint.h>

#define read_sysreg(r)                                       \
        ({                                                   \
                uint64_t v__;                                \
                __asm__ volatile("mrs %0, " #r : "=r"(v__)); \
                v__;                                         \
        })
#define write_sysreg(r, v)                                       \
        do {                                                     \
                uint64_t w__ = (uint64_t)(v);                    \
                __asm__ volatile("msr " #r ", %x0" ::"rZ"(w__)); \
        } while (0)

static inline void isb(void)
{
        __asm__ volatile("isb" ::: "memory");
}

static inline void dsb_sy(void)
{
        __asm__ volatile("dsb sy" ::: "memory");
}

static inline void dsb_ish(void)
{
        __asm__ volatile("dsb ish" ::: "memory");
}

/* GICv3 system registers by encoding (older assemblers lack some names). */
#define ICC_IAR1_EL1    S3_0_C12_C12_0
#define ICC_EOIR1_EL1   S3_0_C12_C12_1
#define ICC_DIR_EL1     S3_0_C12_C11_1
#define ICC_PMR_EL1     S3_0_C4_C6_0
#define ICC_CTLR_EL1    S3_0_C12_C12_4
#define ICC_SRE_EL1     S3_0_C12_C12_5
#define ICC_IGRPEN1_EL1 S3_0_C12_C12_7
#define ICC_SRE_EL2     S3_4_C12_C9_5
#define ICC_SGI1R_EL1   S3_0_C12_C11_5
#define ICH_HCR_EL2     S3_4_C12_C11_0
#define ICH_VTR_EL2     S3_4_C12_C11_1
#define ICH_MISR_EL2    S3_4_C12_C11_2
#define ICH_EISR_EL2    S3_4_C12_C11_3
#define ICH_ELRSR_EL2   S3_4_C12_C11_5
#define ICH_VMCR_EL2    S3_4_C12_C11_7

/* HCR_EL2 */
#define HCR_VM     (1ull << 0)  /* stage-2 translation */
#define HCR_SWIO   (1ull << 1)  /* set/way invalidate becomes clean+invalidate */
#define HCR_FMO    (1ull << 3)  /* physical FIQ to EL2, virtual FIQ to the guest */
#define HCR_IMO    (1ull << 4)  /* physical IRQ to EL2, virtual IRQ to the guest */
#define HCR_AMO    (1ull << 5)  /* physical SError to EL2 */
#define HCR_FB     (1ull << 9)  /* force broadcast: the guest's local TLBI/IC IALLU are IS */
#define HCR_BSU_IS (1ull << 10) /* barriers at least inner shareable */
#define HCR_TWI    (1ull << 13) /* trap WFI */
#define HCR_TID3   (1ull << 18) /* trap ID group 3 reads (ID_AA64*, ID_*, MVFR*) */
#define HCR_TSC    (1ull << 19) /* trap SMC */
#define HCR_TIDCP  (1ull << 20) /* trap implementation-defined system registers */
#define HCR_TSW    (1ull << 22) /* trap data-cache set/way maintenance */
#define HCR_RW     (1ull << 31) /* EL1 is AArch64 */
#define HCR_E2H    (1ull << 34)
#define HCR_TERR   (1ull << 36) /* trap RAS error-record registers */
#define HCR_APK    (1ull << 40) /* pointer-authentication key registers not trapped */
#define HCR_API    (1ull << 41) /* pointer-authentication instructions not trapped */

/* ESR_ELx */
#define ESR_EC(esr)    (((esr) >> 26) & 0x3f)
#define ESR_IL         (1ull << 25)
#define ESR_ISS(esr)   ((esr)&0x1ffffff)
#define EC_UNKNOWN     0x00
#define EC_WFX         0x01
#define EC_HVC64       0x16
#define EC_SMC64       0x17
#define EC_SYSREG      0x18
#define EC_SVE         0x19
#define EC_SME         0x1d
#define EC_IABT_LOW    0x20
#define EC_IABT_CUR    0x21
#define EC_PC_ALIGN    0x22
#define EC_DABT_LOW    0x24
#define EC_DABT_CUR    0x25
#define EC_SP_ALIGN    0x26
#define EC_SERROR      0x2f
#define EC_BKPT_LOW    0x30 /* debug exceptions from a lower EL (+1: from the same EL) */
#define EC_SOFTSTP_LOW 0x32
#define EC_WATCHPT_LOW 0x34
#define EC_BRK64       0x3c

/* Data abort ISS (ISV = 1: the syndrome describes the access). */
#define DABT_ISV       (1u << 24)
#define DABT_SAS(iss)  (((iss) >> 22) & 3)
#define DABT_SSE       (1u << 21)
#define DABT_SRT(iss)  (((iss) >> 16) & 0x1f)
#define DABT_SF        (1u << 15)
#define DABT_S1PTW     (1u << 7)
#define DABT_WNR       (1u << 6)
#define DABT_DFSC(iss) ((iss)&0x3f)
#define FSC_SEA        0x10 /* DFSC/IFSC: synchronous external abort, not on a table walk */

/* SPSR / PSTATE */
#define PSR_MODE_EL1H 0x5
#define PSR_MODE_MASK 0xf
#define PSR_MODE32    (1u << 4) /* AArch32 (from EL0: HCR_EL2.RW keeps EL1 AArch64) */
#define PSR_F         (1u << 6)
#define PSR_I         (1u << 7)
#define PSR_A         (1u << 8)
#define PSR_D         (1u << 9)
#define PSR_SSBS      (1u << 12)
#define PSR_SS        (1u << 21) /* software step: one instruction, then the step exception */
#define PSR_PAN       (1u << 22)
#define PSR_DIT       (1u << 24)

/* MDCR_EL2, MDSCR_EL1 */
#define MDCR_TDE  (1ull << 8)  /* debug exceptions of EL1/EL0 to EL2; debug registers trap */
#define MDSCR_SS  (1ull << 0)  /* software step enabled */
#define MDSCR_MDE (1ull << 15) /* breakpoint and watchpoint exceptions enabled */

/* SCTLR_EL1 */
#define SCTLR_SPAN  (1ull << 23) /* 0: PSTATE.PAN set on exception entry to EL1 */
#define SCTLR_DSSBS (1ull << 44) /* PSTATE.SSBS on exception entry */

/* CNTV_CTL_EL0 / CNTHP_CTL_EL2 */
#define CNT_CTL_ENABLE  (1u << 0)
#define CNT_CTL_IMASK   (1u << 1)
#define CNT_CTL_ISTATUS (1u << 2)

/* Private interrupts Keel uses (GIC INTIDs). */
#define INTID_KICK        1 /* SGI: arch_cpu_kick (leave the guest, or wake from idle) */
#define INTID_MAINTENANCE 25
#define INTID_HYP_TIMER   26
#define INTID_VTIMER      27
#define INTID_PTIMER      30 /* EL1 physical timer (the guest's, passed through) */
#define INTID_SPURIOUS    1020

#endif
