/*
 * arm64 VMSAv8-64 descriptors (4 KiB granule, 48-bit addresses, four levels) for the generic
 * page-table builder (keel/pt.h): Keel's own EL2 stage-1 tables and the stage-2 tables of
 * each VM. Generic level 0 is the Arm ARM's level 3 (4 KiB pages), generic 3 its level 0.
 *
 * Memory attributes: stage 1 indexes MAIR_EL2 (Keel programs attr 0 = Normal write-back,
 * attr 1 = Device-nGnRE); stage 2 encodes MemAttr directly (Normal write-back, or Device-nGnRE
 * for PT_UNCACHED). Both mark leaves accessed (AF) and inner shareable; PT_EXEC clear sets XN.
 */
#ifndef ARCH_PT_ARM64_H
#define ARCH_PT_ARM64_H

#include <keel/pt.h>

#define ARM64_PTE_VALID      (1ull << 0)
#define ARM64_PTE_TABLE      (1ull << 1) /* table (levels 0-2) or page (level 3) */
#define ARM64_PTE_ATTRIDX(i) ((uint64_t)(i) << 2)
#define ARM64_PTE_AP_RO      (1ull << 7) /* stage 1: AP[2] read-only */
#define ARM64_PTE_AP1        (1ull << 6) /* stage 1 EL2: AP[1] is RES1 */
#define ARM64_PTE_SH_INNER   (3ull << 8)
#define ARM64_PTE_AF         (1ull << 10)
#define ARM64_PTE_XN         (1ull << 54) /* stage 1 EL2: XN; stage 2: XN[1] */
#define ARM64_S2_MEMATTR_WB  (0xfull << 2)
#define ARM64_S2_MEMATTR_DEV (0x1ull << 2) /* Device-nGnRE */
#define ARM64_S2_AP_R        (1ull << 6)
#define ARM64_S2_AP_W        (1ull << 7)
#define ARM64_PTE_ADDR_MASK  0x0000fffffffff000ull

/* MAIR_EL2 slots used by the stage-1 format. */
#define ARM64_MAIR_NORMAL 0
#define ARM64_MAIR_DEVICE 1
#define ARM64_MAIR_VALUE  (0xffull | (0x04ull << 8))

extern const struct pt_format arm64_pt_el2;
extern const struct pt_format arm64_pt_s2;

#endif
