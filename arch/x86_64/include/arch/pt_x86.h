/*
 * x86 long-mode page-table entry formats for the generic builder (keel/pt.h): Keel's own
 * page tables (CR3) and AMD nested page tables (nCR3), which share the long-mode layout.
 * Bit positions: AMD APM vol. 2 §5.4 (long-mode page translation), §15.25 (nested paging);
 * Intel SDM vol. 3A §4.5.
 *
 * Choices common to every format here (docs/memory.md has the reasons):
 *  - Non-leaf entries are P|RW|US|A: permissions are decided by the leaf alone.
 *  - Leaves get A and D preset, so the walker never has to write them back.
 *  - NX (bit 63) is a reserved bit, faulting every access, unless EFER.NXE is on. So only
 *    x86_pt_host_nx sets it (in every leaf without PT_EXEC), for Keel's own W^X tables, which
 *    are loaded only after Keel turned NXE on; the other formats ignore PT_EXEC.
 *  - PT_READ cannot be withheld: a present entry is always readable.
 *  - PT_UNCACHED sets PCD|PWT, which selects PAT entry 3 (UC) with the power-on PAT.
 *    The PAT bit (bit 12 in 2 MiB/1 GiB leaves, bit 7 in 4 KiB leaves) is never set.
 */
#ifndef ARCH_PT_X86_H
#define ARCH_PT_X86_H

#include <keel/pt.h>

#define X86_PTE_P   (1ull << 0)
#define X86_PTE_RW  (1ull << 1)
#define X86_PTE_US  (1ull << 2)
#define X86_PTE_PWT (1ull << 3)
#define X86_PTE_PCD (1ull << 4)
#define X86_PTE_A   (1ull << 5)
#define X86_PTE_D   (1ull << 6)
#define X86_PTE_PS  (1ull << 7) /* in a PDE / PDPTE: this entry is a 2 MiB / 1 GiB leaf */
#define X86_PTE_NX  (1ull << 63)

/* Physical-address field: bits 51..12 (tables, 4 KiB leaves), 51..21 (2 MiB), 51..30 (1 GiB). */
#define X86_PTE_ADDR_MASK    0x000ffffffffff000ull
#define X86_PTE_ADDR_MASK_2M 0x000fffffffe00000ull
#define X86_PTE_ADDR_MASK_1G 0x000fffffc0000000ull

/*
 * Keel's own page tables, supervisor mappings: RW per PT_WRITE, US per PT_USER, PS for large
 * leaves. Leaves up to 2 MiB (x86_pt_host), or up to 1 GiB (x86_pt_host_1g) when CPUID
 * 0x80000001 EDX bit 26 (Page1GB) says the CPU has them; qemu64 does not.
 */
extern const struct pt_format x86_pt_host;
extern const struct pt_format x86_pt_host_1g;

/*
 * Keel's own W^X tables (docs/memory.md): as x86_pt_host, plus NX in every leaf without
 * PT_EXEC. Only for a CPU with NX (CPUID 0x80000001 EDX bit 20) and EFER.NXE set.
 */
extern const struct pt_format x86_pt_host_nx;

/*
 * AMD nested page tables: the same layout, but US is set in every entry, leaves included,
 * because the nested walk treats every guest access as a user access (APM vol. 2 §15.25,
 * "Nested Paging"). RW per
 * PT_WRITE. Leaves up to 2 MiB (x86_pt_npt), or 1 GiB (x86_pt_npt_1g) on a CPU with Page1GB
 * (CPUID 0x80000001 EDX bit 26): nested tables take the same large pages as the host's own.
 */
extern const struct pt_format x86_pt_npt;
extern const struct pt_format x86_pt_npt_1g;

/* Intel EPT entries: R/W/X permissions, memory type in leaves (WB, or UC for PT_UNCACHED). */
#define X86_EPT_R     (1ull << 0)
#define X86_EPT_W     (1ull << 1)
#define X86_EPT_X     (1ull << 2)
#define X86_EPT_RWX   (X86_EPT_R | X86_EPT_W | X86_EPT_X)
#define X86_EPT_MT_WB (6ull << 3)

/*
 * EPT with 1 GiB and 2 MiB leaves (IA32_VMX_EPT_VPID_CAP bits 17 and 16), with 2 MiB leaves,
 * and without large leaves for CPUs whose EPT lacks 2 MiB pages.
 */
extern const struct pt_format x86_pt_ept_1g;
extern const struct pt_format x86_pt_ept;
extern const struct pt_format x86_pt_ept_4k;

#endif
