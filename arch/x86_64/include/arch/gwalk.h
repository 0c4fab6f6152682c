/*
 * Guest page-table walker (pure C, host-tested): guest-linear to guest-physical translation
 * through the guest's own page tables, and the instruction fetch built on it (used to decode
 * an intercepted instruction when the CPU does not report the next RIP, and for MMIO
 * emulation). Guest page tables are read only through gmem_read: a table outside guest RAM
 * is an error, never a host access.
 *
 * Paging modes, chosen from the registers like the CPU does:
 *   CR0.PG = 0               no paging: gpa = linear, truncated to 32 bits
 *   EFER.LMA = 1             4-level long mode (4 KiB, 2 MiB, 1 GiB pages); CR4.LA57 is
 *                            refused with -KEEL_ENOTSUP; non-canonical addresses fault
 *   CR4.PAE = 1              PAE, 3 levels (4 KiB, 2 MiB); the 4 PDPTEs are read from memory
 *                            at walk time (the CPU caches them at MOV CR3)
 *   otherwise                32-bit, 2 levels (4 KiB, and 4 MiB with CR4.PSE incl. PSE-36)
 * Outside long mode the linear address is truncated to 32 bits (it wraps at 4 GiB).
 *
 * Reserved bits fault as on the CPU (#PF with P and RSVD set): address bits from MAXPHYADDR
 * up (x86_gwalk_set_cpu), NX without EFER.NXE, PS in a PML4E, PS in a PDPTE on a CPU without
 * 1 GiB pages, the address bits of a large page below its size (except PAT), bit 21 of a
 * 4 MiB page; in PAE paging also bits 62:52, and 63:MAXPHYADDR of a PDPTE (read at walk
 * time: Intel's CPU checks those at MOV CR3). Entries that are only walked, never used as
 * pointers past 4 levels, so a table that points at itself (at any level) ends like any
 * other walk. With X86_ACC_SET_AD a successful walk sets the Accessed bits of the entries it
 * used and Dirty in the leaf for a write, as the CPU does.
 *
 * Not done: protection keys, SMAP. Permission checks are done only for the access bits
 * asked for.
 */
#ifndef ARCH_X86_GWALK_H
#define ARCH_X86_GWALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <keel/addr.h>
#include <vmm/gmem.h>

struct x86_paging {
        uint64_t cr0, cr3, cr4, efer;
};

/* Register bits the walker looks at. */
#define X86_PG_CR0_WP   (1ull << 16)
#define X86_PG_CR0_PG   (1ull << 31)
#define X86_PG_CR4_PSE  (1ull << 4)
#define X86_PG_CR4_PAE  (1ull << 5)
#define X86_PG_CR4_LA57 (1ull << 12)
#define X86_PG_CR4_SMEP (1ull << 20)
#define X86_PG_EFER_LMA (1ull << 10)
#define X86_PG_EFER_NXE (1ull << 11)

/* Access kinds for x86_translate (0: only require the translation to exist). */
#define X86_ACC_WRITE  (1u << 0) /* write: read-only pages fault for user, or CR0.WP */
#define X86_ACC_USER   (1u << 1) /* CPL 3: supervisor pages fault */
#define X86_ACC_FETCH  (1u << 2) /* instruction fetch: NX pages fault, SMEP for supervisor */
#define X86_ACC_SET_AD (1u << 3) /* on success set Accessed (and Dirty for a write) */

/* Why a translation failed (x86_xlate.fault). */
enum x86_xlate_fault {
        X86_XLATE_OK = 0,
        X86_XLATE_PF,        /* a guest #PF: pf_error holds the error code to inject */
        X86_XLATE_NONCANON,  /* non-canonical address in long mode (#GP for the guest) */
        X86_XLATE_BAD_TABLE, /* a page-table entry lies outside guest RAM (gpa: where) */
};

/* #PF error-code bits (pf_error). */
#define X86_PF_P    (1u << 0) /* protection violation (0: not present) */
#define X86_PF_W    (1u << 1)
#define X86_PF_U    (1u << 2)
#define X86_PF_RSVD (1u << 3) /* a reserved bit set in an entry (with P) */
#define X86_PF_I    (1u << 4)

struct x86_xlate {
        gpa_t gpa;
        uint64_t page_size; /* 4 KiB, 2 MiB, 4 MiB or 1 GiB (4 KiB without paging) */
        uint8_t fault;      /* enum x86_xlate_fault */
        uint32_t pf_error;  /* for X86_XLATE_PF */
};

/*
 * The CPU's physical-address width (CPUID 0x80000008 EAX[7:0]; 32..52, anything else counts
 * as 52) and whether it has 1 GiB pages (CPUID 0x80000001 EDX[26]): the CPU walks a guest's
 * tables by its own limits, whatever CPUID tells the guest. Set once at start-up; until then
 * 52 bits and 1 GiB pages.
 */
void x86_gwalk_set_cpu(unsigned maxphyaddr, bool gbpages);

/*
 * Translate `gva` (a linear address) for an access of kind `access` (X86_ACC_*). Returns 0
 * and fills out->gpa / page_size, or: -KEEL_EFAULT with out->fault saying why (not present,
 * permission, non-canonical, table outside guest RAM); -KEEL_ENOTSUP for 5-level paging.
 */
int x86_translate(const struct gmem *m, const struct x86_paging *p, uint64_t gva, unsigned access,
                  struct x86_xlate *out);

/*
 * Supervisor data access at `gva` (write: also require it to be writable, with CR0.WP
 * semantics). 0, -KEEL_EFAULT or -KEEL_ENOTSUP as x86_translate.
 */
int x86_gva_to_gpa(const struct gmem *m, const struct x86_paging *p, uint64_t gva, bool write,
                   gpa_t *out);

/*
 * Fetch up to 15 instruction bytes at linear address `linear_rip` (CS.base + RIP, computed
 * by the caller; outside long mode it wraps at 4 GiB). Crosses at most one page boundary
 * with a second translation; stops at the first page that is not mapped or not guest RAM
 * (the decoder then returns -KEEL_EAGAIN if that was too short). Permissions are not
 * checked: the CPU fetched these bytes already. Returns the number of bytes fetched (1..15,
 * also stored in *fetched), or -KEEL_EFAULT / -KEEL_ENOTSUP if the first byte is unreachable.
 */
/*
 * A per-vCPU memo of the last code-page translation in 64-bit mode: the page-table entries
 * on the path (where they live and what they held) and the host view of the 4 KiB page.
 * A hit re-reads every entry on the path and compares it with what the walk saw, so it
 * answers exactly as a fresh walk would; it only saves the index arithmetic and bounds
 * checks. The host pointers stay valid because a VM's RAM regions never change while it
 * exists; x86_code_cache_reset must be called whenever they do (VM setup).
 */
struct x86_code_cache {
        uint64_t cr3;           /* key: CR3 of the walk */
        uint64_t lin_page;      /* key: linear address >> 12 */
        unsigned levels;        /* entries on the path, 0 = empty */
        const uint64_t *pte[4]; /* host view of each entry on the path */
        uint64_t val[4];        /* its value during the walk */
        const uint8_t *page;    /* host view of the code page */
};

static inline void x86_code_cache_reset(struct x86_code_cache *c)
{
        c->levels = 0;
}

/*
 * Fast path for the intercepted-instruction check: a host view of the `len` (<= 15) code
 * bytes at `linear` if they lie in one 4 KiB page and the guest is in 64-bit mode with
 * 4-level paging (through `cache`, which may be NULL) or runs without paging; NULL in every
 * other case (other paging modes, a page boundary, anything not present or not RAM), where
 * the caller uses x86_fetch_insn.
 */
const uint8_t *x86_code_peek(const struct gmem *m, const struct x86_paging *p, uint64_t linear,
                             size_t len, struct x86_code_cache *cache);

int x86_fetch_insn(const struct gmem *m, const struct x86_paging *p, uint64_t linear_rip,
                   uint8_t buf[15], size_t *fetched);

#endif
