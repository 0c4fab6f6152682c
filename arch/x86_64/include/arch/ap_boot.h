/*
 * The x86 application-processor start-up trampoline (ap_trampoline.S, docs/smp.md): its
 * layout in the 4 KiB page below 1 MiB that the boot CPU copies it to, shared by the
 * assembly and arch/x86_64/smp.c. Offsets from the start of the page.
 *
 * The boot CPU fills the page once, before Keel's page tables are loaded: they map it read and
 * execute only (W^X, docs/memory.md), so nothing writes it afterwards. The AP itself writes
 * the page only while its paging is still off (GDTR and far pointers); the GDT's descriptors
 * have their accessed bits preset, so loading them never writes either. What differs from AP
 * to AP (stack, argument) is in struct x86_ap_params, in Keel's data.
 */
#ifndef ARCH_AP_BOOT_H
#define ARCH_AP_BOOT_H

#define AP_TR_GDTR   0x08 /* u16 limit, u32 base: written by the AP itself (base = page + GDT) */
#define AP_TR_FAR    0x10 /* u32 offset, u16 selector: the far jumps, written by the AP itself */
#define AP_TR_CR3    0x18 /* u64: Keel's page-table root (below 4 GiB), from the boot CPU */
#define AP_TR_EFER   0x20 /* u64: EFER to load before paging (LME, NXE, ...) */
#define AP_TR_CR0    0x28 /* u64: CR0 that turns paging on (the boot CPU's) */
#define AP_TR_PARAMS 0x30 /* u64: address of struct x86_ap_params (in Keel's data) */
#define AP_TR_ENTRY  0x38 /* u64: C entry, void fn(uint64_t arg) */
#define AP_TR_FAR64  0x40 /* u32 offset, u16 selector: the jump to 64-bit code (by the AP) */
#define AP_TR_GDT    0x48 /* 4 descriptors: null, 0x08 code32, 0x10 data, 0x18 code64 */
#define AP_TR_CODE   0x68 /* the 16-bit code */

#define AP_TR_CS32 0x08
#define AP_TR_DS   0x10
#define AP_TR_CS64 0x18

#ifndef __ASSEMBLER__
#include <stdint.h>

/* The starting AP's stack top and its entry's argument (read by ap64 with paging on). */
struct x86_ap_params {
        uint64_t stack;
        uint64_t arg;
};

/* The trampoline's bytes, copied to the low page (ap_trampoline.S). */
extern const char x86_ap_trampoline[], x86_ap_trampoline_end[];
#endif

#endif
