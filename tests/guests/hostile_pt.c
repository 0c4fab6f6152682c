/*
 * hostile_pt (x86_64, booted as a Linux kernel: mklinux.py, `kernel =`, for the LAPIC and
 * I/O APIC): page tables that make Keel's own walk of them (arch/x86_64/gwalk.c: it fetches
 * and decodes an intercepted instruction without NRIP-save, and every instruction that
 * touches device memory) meet what hardware meets. On its own tables (EFER.NXE = 0, as the
 * Linux entry state leaves it):
 *   - loops: a PML4 entry pointing at the PML4 (linear (3,3,2,k): the PML4 used three times),
 *     a PDPT entry pointing back to the PML4 ((0,2,2,k)), a two-level cycle PML4 -> PDPT ->
 *     PML4 -> PDPT ((4,5,4,k)). Through each, a code page C holding at its very end CPUID,
 *     RDMSR of PAT, OUT+IN of the UART scratch register, or a 4-byte load from the LAPIC or a
 *     store and load of the I/O APIC (their pages mapped through the same loop): each runs,
 *     Keel steps over exactly it (the next linear page is R, whose first byte is RET and the
 *     rest INT3), the values are right; a load from a page mapped outside RAM reads all ones;
 *   - reserved bits on the path of C at 512 GiB + 0 (a path of its own from the PML4 down):
 *     bit 51 (above MAXPHYADDR) at each level, PS in the PML4E, NX at each level (EFER.NXE
 *     is 0), bit 13 of a 2 MiB page. Each twice: with the TLB flushed (the CPU faults) and
 *     with C's translation still in the TLB (the CPU may run the instruction; Keel's walk
 *     then meets the bit). Both times, as the CPU would on these tables: #PF at the
 *     instruction, CR2 = its address, error P|RSVD (0x9; QEMU's own faults lack P); on VT-x,
 *     where Keel does not walk for CPUID, a CPUID that ran on the old translation is right
 *     too (then R faults if the bit is on its path). For CPUID and for a LAPIC load at
 *     C's end; a LAPIC page with a reserved bit in its own PTE: #PF at the load, CR2 = the
 *     LAPIC address;
 *   - the Accessed bit of C's PTE cleared with C in the TLB: a LAPIC load at its end, and on
 *     AMD (Keel walks for CPUID there) a CPUID, leave it set (Keel's walk sets it, as a walk
 *     of the CPU would);
 *   - the same loops and reserved bits from a 32-bit compatibility-mode code segment.
 * Exit 0 with "hostile_pt: all N checks passed".
 *
 * Built with HOSTILE_PT_STOP = 1..4 it instead ends in a stop the config expects:
 *   1: a page table in the LAPIC page (a PD entry pointing at 0xfee00000): stop outside-ram,
 *      the guest's page tables point at device memory;
 *   2: a page table outside RAM (at 0x10000000): stop outside-ram;
 *   3: the same table in the LAPIC page, but with C's translation in the TLB: Keel's walk
 *      for CPUID meets it, or the CPU's does (for C, or on VT-x for R after CPUID): stop
 *      outside-ram either way;
 *   4: a load through the self-referencing PML4 from a page mapped at 0x10000000, in a VM
 *      with unbacked = stop: stop outside-ram.
 */
#include "irq_x86.h"

#ifndef HOSTILE_PT_STOP
#define HOSTILE_PT_STOP 0
#endif

#define PTE_P   0x1ull
#define PTE_RW  0x2ull
#define PTE_A   0x20ull
#define PTE_PS  0x80ull
#define PTE_NX  (1ull << 63)
#define PTE_B51 (1ull << 51)
#define TBL     (PTE_P | PTE_RW | PTE_A)

#define K    16 /* index of C in the leaf tables; K + 1: R; K + 2: LAPIC; K + 3: I/O APIC */
#define OUTS 20 /* index of a page outside RAM */

#define SEL_CODE32 0x38
#define SEL_WRAP   0x40
#define SEL_LAPIC  0x48

static uint64_t pml4[512] __attribute__((aligned(4096)));
static uint64_t pdpt_lo[512] __attribute__((aligned(4096)));
static uint64_t pd_lo[512] __attribute__((aligned(4096)));
static uint64_t pd_hi[512] __attribute__((aligned(4096)));
static uint64_t pdpt_t[512] __attribute__((aligned(4096)));
static uint64_t pd_t[512] __attribute__((aligned(4096)));
static uint64_t pt_t[512] __attribute__((aligned(4096)));
static uint64_t ptc[512] __attribute__((aligned(4096)));
static uint64_t cyc[512] __attribute__((aligned(4096)));
/* 32-bit PAE paging: PDPT -> pd_pae0 (identity 0..1 GiB, 2 MiB pages), pd_pae1 (1 GiB +):
 * pd_pae1[5] points at pd_pae1 itself, whose entries K.. then map C, R, the LAPIC. */
static uint64_t pdpt_pae[4] __attribute__((aligned(32)));
static uint64_t pd_pae0[512] __attribute__((aligned(4096)));
static uint64_t pd_pae1[512] __attribute__((aligned(4096)));
uint32_t hpt_pae_cr3, hpt_long_cr3;

/* C and R, physically adjacent too (for the paging-off checks). */
static uint8_t code_cr[8192] __attribute__((aligned(4096)));
#define code_c code_cr
#define code_r (code_cr + 4096)
static uint64_t gdt[10] __attribute__((aligned(16)));

/* The linear pages of C through each path: (pml4, pdpt, pd, pt) indices. */
static uint64_t lin(unsigned a, unsigned b, unsigned c, unsigned d)
{
        uint64_t v =
            ((uint64_t)a << 39) | ((uint64_t)b << 30) | ((uint64_t)c << 21) | ((uint64_t)d << 12);

        return (v & (1ull << 47)) ? v | 0xffff000000000000ull : v;
}

struct path {
        const char *name;
        unsigned a, b, c; /* C at (a, b, c, K) */
        bool compat;      /* below 4 GiB: reachable from compatibility mode */
};

static const struct path loops[] = {
    {"PML4 entry -> the PML4", 3, 3, 2, false},
    {"PDPT entry -> the PML4", 0, 2, 2, true},
    {"PML4 -> PDPT -> PML4 cycle", 4, 5, 4, false},
};

static unsigned checks, failed;

/*
 * Does Keel walk the tables to step over CPUID? On AMD it does (QEMU's SVM has no
 * NRIP-save); on VT-x the exit reports the length and nothing is walked, so with C's old
 * translation in the TLB the CPU's answer (CPUID runs) stands.
 */
static bool cpuid_walked(void)
{
        uint32_t a = 0, b, c, d;

        __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(d));
        return b == 0x68747541; /* "Auth"enticAMD */
}

static void check(bool ok, const char *what, const char *where, uint64_t v)
{
        checks++;
        if (ok)
                return;
        failed++;
        guest_printf("FAIL: hostile_pt: %s via %s (0x%lx)\n", what, where, (unsigned long)v);
}

static void map_leaf(uint64_t *t)
{
        t[K] = gpa_of(code_c) | TBL;
        t[K + 1] = gpa_of(code_r) | TBL;
        t[K + 2] = LAPIC_BASE | TBL | 0x18; /* PCD PWT */
        t[K + 3] = IOAPIC_BASE | TBL | 0x18;
        t[OUTS] = 0x10000000ull | TBL;
}

static void flush(void)
{
        __asm__ volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" ::: "rax", "memory");
}

static void tables_init(void)
{
        for (uint64_t i = 0; i < 512; i++) {
                pd_lo[i] = (i << 21) | TBL | PTE_PS;
                pd_hi[i] = (0xc0000000ull + (i << 21)) | TBL | PTE_PS | 0x18;
        }
        pdpt_lo[0] = gpa_of(pd_lo) | TBL;
        pdpt_lo[3] = gpa_of(pd_hi) | TBL;
        pml4[0] = gpa_of(pdpt_lo) | TBL;
        /* The reserved-bit path: 512 GiB + i * 4 KiB (and 1 GiB + i * 4 KiB, same PT). */
        pml4[1] = gpa_of(pdpt_t) | TBL;
        pdpt_t[0] = gpa_of(pd_t) | TBL;
        pdpt_lo[1] = gpa_of(pd_t) | TBL;
        pd_t[0] = gpa_of(pt_t) | TBL;
        pt_t[0] = gpa_of(code_c) | TBL;
        pt_t[1] = gpa_of(code_r) | TBL;
        pt_t[2] = LAPIC_BASE | TBL | 0x18;
        /* Loops. */
        pml4[3] = gpa_of(pml4) | TBL; /* (3, 3, 2, k): PML4, PML4, PML4[2] = ptc */
        pml4[2] = gpa_of(ptc) | TBL;
        pdpt_lo[2] = gpa_of(pml4) | TBL; /* (0, 2, 2, k): PDPT, PML4, PML4[2] = ptc */
        pml4[4] = gpa_of(cyc) | TBL;     /* (4, 5, 4, k): cyc, PML4, cyc, cyc[k] */
        cyc[5] = gpa_of(pml4) | TBL;
        map_leaf(ptc);
        map_leaf(cyc);
        __asm__ volatile("mov %0, %%cr3" ::"r"(gpa_of(pml4)) : "memory");

        code_r[0] = 0xc3; /* RET; anything past it is INT3 */
        for (unsigned i = 1; i < 4096; i++)
                code_r[i] = 0xcc;
}

/* A 32-bit code segment beside hostile_x86.h's descriptors, for compatibility mode. */
static void gdt_init(void)
{
        struct hx_dtr g = {.limit = sizeof(gdt) - 1, .base = gpa_of(gdt)};

        for (unsigned i = 0; i < 7; i++)
                gdt[i] = hx_gdt[i];
        gdt[7] = 0x00cf9a000000ffffull; /* 0x38: 32-bit code, DPL 0 */
        gdt[8] = 0xffcf92ff0000ffffull; /* 0x40: 32-bit data, base 0xffff0000, 4 GiB limit */
        gdt[9] = 0xfecf92e00000ffffull; /* 0x48: 32-bit data, base 0xfee00000 (the LAPIC) */
        __asm__ volatile("lgdt %0" ::"m"(g) : "memory");
}

struct regs {
        uint64_t rax, rbx, rcx, rdx, rdi;
};

/* Compatibility-mode trampoline: entered by a far call with the target in ESI. */
__asm__(".text\n"
        ".code32\n"
        "compat_stub:\n"
        "call *%esi\n"
        "lret\n"
        ".code64\n");
extern char compat_stub[];

/*
 * Protected mode with paging off, from the 32-bit segment: CR0.PG cleared (EFER.LMA goes
 * with it), DS loaded from ECX, the target at ESI called, then DS, paging and long mode back.
 */
__asm__(".text\n"
        ".code32\n"
        "nopaging_stub:\n"
        "pushl %ebp\n"
        "movl %cr0, %ebp\n"
        "andl $0x7fffffff, %ebp\n"
        "movl %ebp, %cr0\n"
        "movl %ecx, %ds\n"
        "call *%esi\n"
        "movl $0x10, %ebp\n"
        "movl %ebp, %ds\n"
        "movl %cr0, %ebp\n"
        "orl $0x80000000, %ebp\n"
        "movl %ebp, %cr0\n"
        "popl %ebp\n"
        "lret\n"
        ".code64\n");
extern char nopaging_stub[];

/*
 * 32-bit PAE paging, from the 32-bit segment: paging off, EFER.LME off, CR3 = the PAE PDPT,
 * paging on; the target at ESI called with EAX and EDI; then all back.
 */
__asm__(".text\n"
        ".code32\n"
        "pae_stub:\n"
        "pushl %ebp\n"
        "pushl %eax\n"
        "movl %cr0, %ebp\n"
        "andl $0x7fffffff, %ebp\n"
        "movl %ebp, %cr0\n"
        "movl $0xc0000080, %ecx\n"
        "rdmsr\n"
        "andl $0xfffffeff, %eax\n"
        "wrmsr\n"
        "movl hpt_pae_cr3, %ebp\n"
        "movl %ebp, %cr3\n"
        "movl %cr0, %ebp\n"
        "orl $0x80000000, %ebp\n"
        "movl %ebp, %cr0\n"
        "popl %eax\n"
        "call *%esi\n"
        "pushl %eax\n"
        "movl %cr0, %ebp\n"
        "andl $0x7fffffff, %ebp\n"
        "movl %ebp, %cr0\n"
        "movl hpt_long_cr3, %ebp\n"
        "movl %ebp, %cr3\n"
        "movl $0xc0000080, %ecx\n"
        "rdmsr\n"
        "orl $0x100, %eax\n"
        "wrmsr\n"
        "movl %cr0, %ebp\n"
        "orl $0x80000000, %ebp\n"
        "movl %ebp, %cr0\n"
        "popl %eax\n"
        "popl %ebp\n"
        "lret\n"
        ".code64\n");
extern char pae_stub[];

/* `len` bytes at the end of C, called at linear `page` + 4096 - len under PAE paging. */
static uint64_t run_pae(uint64_t page, const uint8_t *bytes, unsigned len, uint64_t rax,
                        uint64_t rdi)
{
        static struct __attribute__((packed)) {
                uint32_t off;
                uint16_t sel;
        } far;
        uint64_t rcx = 0, rdx = 0, rbx = 0;

        memcpy(code_c + 4096 - len, bytes, len);
        far.off = (uint32_t)gpa_of(pae_stub);
        far.sel = SEL_CODE32;
        hx_last_vector = ~0ull;
        __asm__ volatile("lcall *%5"
                         : "+a"(rax), "+b"(rbx), "+c"(rcx), "+d"(rdx), "+D"(rdi)
                         : "m"(far), "S"(page + 4096 - len)
                         : "r8", "r9", "r10", "r11", "memory");
        return (uint32_t)rax;
}

/* `len` bytes at the physical end of C, called with paging off and DS = `ds`. */
static uint64_t run_nopaging(const uint8_t *bytes, unsigned len, uint64_t rax, uint64_t rdi,
                             uint16_t ds)
{
        static struct __attribute__((packed)) {
                uint32_t off;
                uint16_t sel;
        } far;
        uint64_t rcx = ds, rdx = 0, rbx = 0;

        memcpy(code_c + 4096 - len, bytes, len);
        far.off = (uint32_t)gpa_of(nopaging_stub);
        far.sel = SEL_CODE32;
        hx_last_vector = ~0ull;
        __asm__ volatile("lcall *%5"
                         : "+a"(rax), "+b"(rbx), "+c"(rcx), "+d"(rdx), "+D"(rdi)
                         : "m"(far), "S"(gpa_of(code_c) + 4096 - len)
                         : "r8", "r9", "r10", "r11", "memory");
        return (uint32_t)rax;
}

/*
 * Puts `len` bytes at the end of C (through its identity mapping) and calls them at the
 * linear address `page` + 4096 - len, in 64-bit mode or from the 32-bit code segment.
 * A fault at them returns to here (hx_resume_ret: to the caller, in either mode).
 */
static struct regs run_at_end(uint64_t page, const uint8_t *bytes, unsigned len, struct regs in,
                              bool compat)
{
        uint64_t at = page + 4096 - len;

        memcpy(code_c + 4096 - len, bytes, len);
        hx_last_vector = ~0ull;
        hx_last_cr2 = 0;
        hx_last_error = 0;
        if (!compat) {
                hx_resume_ret = 1;
                __asm__ volatile("call *%5"
                                 : "+a"(in.rax), "+b"(in.rbx), "+c"(in.rcx), "+d"(in.rdx),
                                   "+D"(in.rdi)
                                 : "r"(at)
                                 : "rsi", "r8", "r9", "r10", "r11", "memory");
                hx_resume_ret = 0;
        } else {
                static struct __attribute__((packed)) {
                        uint32_t off;
                        uint16_t sel;
                } far;

                far.off = (uint32_t)gpa_of(compat_stub);
                far.sel = SEL_CODE32;
                hx_resume_ret = 4;
                __asm__ volatile("lcall *%5"
                                 : "+a"(in.rax), "+b"(in.rbx), "+c"(in.rcx), "+d"(in.rdx),
                                   "+D"(in.rdi)
                                 : "m"(far), "S"(at)
                                 : "r8", "r9", "r10", "r11", "memory");
                hx_resume_ret = 0;
                in.rax = (uint32_t)in.rax;
                in.rbx = (uint32_t)in.rbx;
                in.rcx = (uint32_t)in.rcx;
                in.rdx = (uint32_t)in.rdx;
        }
        return in;
}

/* Runs C's first byte (a RET): its translation is then in the TLB. */
static void warm(uint64_t page, bool compat)
{
        code_c[0] = 0xc3;
        run_at_end(page - 4096, (const uint8_t *)"", 0, (struct regs){0}, compat);
}

static const uint8_t op_cpuid[] = {0x0f, 0xa2};
static const uint8_t op_rdmsr[] = {0x0f, 0x32};
static const uint8_t op_out_in[] = {0xee, 0x30, 0xc0, 0xec}; /* out; xor al,al; in */
static const uint8_t op_load[] = {0x8b, 0x07};               /* mov (%rdi), %eax */
static const uint8_t op_store[] = {0x89, 0x07};              /* mov %eax, (%rdi) */

static bool ran(void)
{
        return hx_last_vector == ~0ull;
}

/* Every intercepted instruction and device access at C's end, through `page`. */
static void through(const char *where, uint64_t page, uint64_t lapic, uint64_t ioapic,
                    uint64_t outside, bool compat)
{
        struct regs r;

        r = run_at_end(page, op_load, 2, (struct regs){.rax = 0, .rdi = outside}, compat);
        check(ran() && (uint32_t)r.rax == 0xffffffffu, "load from outside RAM (all ones)", where,
              r.rax);
        r = run_at_end(page, op_cpuid, 2, (struct regs){.rax = 0x40000000}, compat);
        check(ran() && r.rbx == 0x6c65654b && r.rdx == 0x6c65654b, "CPUID at the page end", where,
              hx_last_vector);
        r = run_at_end(page, op_rdmsr, 2, (struct regs){.rcx = 0x277}, compat);
        check(ran() && (r.rdx << 32 | (uint32_t)r.rax) == 0x0007040600070406ull,
              "RDMSR PAT at the page end", where, r.rax);
        r = run_at_end(page, op_out_in, 4, (struct regs){.rax = 0x5a, .rdx = 0x3ff}, compat);
        check(ran() && (r.rax & 0xff) == 0x5a, "OUT, IN of the UART scratch register", where,
              r.rax);
        r = run_at_end(page, op_load, 2, (struct regs){.rdi = lapic + LAPIC_VERSION}, compat);
        check(ran() && (uint32_t)r.rax == LAPIC_VERSION_VALUE, "LAPIC version load", where, r.rax);
        run_at_end(page, op_store, 2, (struct regs){.rax = 1, .rdi = ioapic}, compat);
        check(ran(), "I/O APIC IOREGSEL store", where, hx_last_vector);
        r = run_at_end(page, op_load, 2, (struct regs){.rdi = ioapic + 0x10}, compat);
        check(ran() && (uint32_t)r.rax == IOAPIC_VERSION_VALUE, "I/O APIC version load", where,
              r.rax);
}

static void loop_checks(bool compat)
{
        for (unsigned i = 0; i < ARRAY_SIZE(loops); i++) {
                const struct path *p = &loops[i];

                if (compat && !p->compat)
                        continue;
                through(p->name, lin(p->a, p->b, p->c, K), lin(p->a, p->b, p->c, K + 2),
                        lin(p->a, p->b, p->c, K + 3), lin(p->a, p->b, p->c, OUTS), compat);
        }
}

/* A reserved bit set in one entry on C's path. */
struct rsvd {
        const char *name;
        volatile uint64_t *entry;
        uint64_t bits;
        unsigned modes; /* on the path of C in 64-bit mode (1), in compatibility mode (2) */
};

/*
 * #PF at `rip` for `addr` with error `err`; P may be missing when the CPU raised it itself
 * (QEMU 7.2's TCG reports a reserved-bit fault as RSVD alone; the SDM and APM say P|RSVD,
 * which is what Keel gives).
 */
static bool pf_at(uint64_t addr, uint64_t rip, uint64_t err)
{
        return hx_last_vector == 14 && hx_last_cr2 == addr && hx_last_rip == rip &&
               ((hx_last_error & 0x1f) | 1) == err;
}

/*
 * `op` at C's end (at `base`) with reserved bits `r` set: after a flush, and with C in the
 * TLB. Both: #PF P|RSVD at the instruction. Then the entry back and flushed.
 */
static void rsvd_case(const struct rsvd *r, uint64_t base, const uint8_t *op, unsigned len,
                      const char *what, bool compat)
{
        uint64_t at = base + 4096 - len, old = *r->entry;
        char where[96];

        for (unsigned stale = 0; stale < 2; stale++) {
                guest_snprintf(where, sizeof(where), "%s, %s, %s%s", r->name, what,
                               stale ? "translation in the TLB" : "TLB flushed",
                               compat ? ", compatibility mode" : "");
                if (stale)
                        warm(base, compat);
                memcpy(code_c + 4096 - len, op, len);
                *r->entry = old | r->bits;
                if (!stale)
                        flush();
                run_at_end(base, op, len, (struct regs){.rax = 0, .rdi = 0xfee00030}, compat);
                *r->entry = old;
                flush();
                /* VT-x: CPUID ran on the CPU's old translation; the fetch of R after it then
                 * walks the tables, and faults if the bit is on R's path too. */
                if (stale && op == op_cpuid && !cpuid_walked() &&
                    (ran() || pf_at(base + 4096, base + 4096, 0x9)))
                        continue;
                check(pf_at(at, at, 0x9), "not #PF P|RSVD at the instruction", where,
                      hx_last_vector == 14 ? hx_last_error | hx_last_cr2 << 8 : hx_last_vector);
        }
}

static void rsvd_checks(bool compat)
{
        const struct rsvd cases[] = {
            {"bit 51 in the PTE", &pt_t[0], PTE_B51, 3},
            {"bit 51 in the PDE", &pd_t[0], PTE_B51, 3},
            {"bit 51 in the PDPTE", &pdpt_t[0], PTE_B51, 1},
            {"bit 51 in the PDPTE", &pdpt_lo[1], PTE_B51, 2},
            {"bit 51 in the PML4E", &pml4[1], PTE_B51, 1},
            {"PS in the PML4E", &pml4[1], PTE_PS, 1},
            {"NX with EFER.NXE = 0 in the PTE", &pt_t[0], PTE_NX, 3},
            {"NX with EFER.NXE = 0 in the PDE", &pd_t[0], PTE_NX, 3},
            {"NX with EFER.NXE = 0 in the PDPTE", &pdpt_t[0], PTE_NX, 1},
            {"NX with EFER.NXE = 0 in the PDPTE", &pdpt_lo[1], PTE_NX, 2},
            {"NX with EFER.NXE = 0 in the PML4E", &pml4[1], PTE_NX, 1},
        };
        uint64_t base = compat ? lin(0, 1, 0, 0) : lin(1, 0, 0, 0);

        for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
                if (!(cases[i].modes & (compat ? 2 : 1)))
                        continue;
                rsvd_case(&cases[i], base, op_cpuid, 2, "CPUID", compat);
                rsvd_case(&cases[i], base, op_load, 2, "LAPIC load", compat);
        }
        if (compat)
                return;
        /* Bit 13 of a 2 MiB page: C's PD entry as a large page. */
        {
                uint64_t old = pd_t[0];
                uint64_t at = lin(1, 0, 0, 0) + 4096 - 2;
                struct regs r;

                memcpy(code_c + 4096 - 2, op_cpuid, 2);
                pd_t[0] = (gpa_of(code_c) & ~0x1fffffull) | (1ull << 13) | TBL | PTE_PS;
                flush();
                hx_last_vector = ~0ull;
                hx_resume_ret = 1;
                r.rax = 0x40000000;
                __asm__ volatile("call *%1"
                                 : "+a"(r.rax)
                                 : "r"(at)
                                 : "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",
                                   "memory");
                hx_resume_ret = 0;
                pd_t[0] = old;
                flush();
                check(pf_at(at, at, 0x9), "not #PF P|RSVD at the instruction",
                      "bit 13 of a 2 MiB page, CPUID", hx_last_vector);
        }
        /* The LAPIC's own PTE with bit 51: the load faults at the LAPIC address. */
        {
                uint64_t lapic = lin(1, 0, 0, 2) + LAPIC_VERSION;
                uint64_t at = lin(1, 0, 0, 0) + 4096 - 2;

                pt_t[2] |= PTE_B51;
                flush();
                run_at_end(lin(1, 0, 0, 0), op_load, 2, (struct regs){.rdi = lapic}, false);
                pt_t[2] &= ~PTE_B51;
                flush();
                check(pf_at(lapic, at, 0x9), "not #PF P|RSVD at the data address",
                      "bit 51 in the LAPIC page's PTE", hx_last_cr2);
        }
}

/*
 * The Accessed bit of C's PTE, cleared while C is in the TLB: a LAPIC load at C's end (Keel
 * decodes it), and on AMD a CPUID there (Keel steps over it), set it again.
 */
static void accessed_check(bool compat)
{
        uint64_t base = compat ? lin(0, 1, 0, 0) : lin(1, 0, 0, 0);
        const char *where = compat ? "compatibility mode" : "64-bit mode";
        struct regs r;

        warm(base, compat);
        pt_t[0] &= ~PTE_A;
        r = run_at_end(base, op_load, 2, (struct regs){.rdi = LAPIC_BASE + LAPIC_VERSION}, compat);
        check(ran() && (uint32_t)r.rax == LAPIC_VERSION_VALUE,
              "LAPIC load with C's Accessed bit clear", where, hx_last_vector);
        check(pt_t[0] & PTE_A, "Accessed bit of C's PTE not set by the walk for a LAPIC load",
              where, pt_t[0]);
        pt_t[0] |= PTE_A;
        flush();
        if (!cpuid_walked())
                return;
        warm(base, compat);
        pt_t[0] &= ~PTE_A;
        r = run_at_end(base, op_cpuid, 2, (struct regs){.rax = 0x40000000}, compat);
        check(ran() && r.rbx == 0x6c65654b, "CPUID with C's Accessed bit clear", where,
              hx_last_vector);
        check(pt_t[0] & PTE_A, "Accessed bit of C's PTE not set by the walk for CPUID", where,
              pt_t[0]);
        pt_t[0] |= PTE_A;
        flush();
}

/* Paging off: the same exits at a page end; device accesses through segment bases. */
static void nopaging_checks(void)
{
        static const uint8_t op_load16[] = {0x67, 0x8b, 0x05}; /* mov (%di), %eax */
        uint64_t v;

        v = run_nopaging(op_cpuid, 2, 0x40000000, 0, HX_SEL_KDATA);
        check(ran() && v == 0x40000001, "CPUID at a page end", "paging off", v);
        v = run_nopaging(op_load, 2, 0, LAPIC_BASE + LAPIC_VERSION, HX_SEL_KDATA);
        check(ran() && v == LAPIC_VERSION_VALUE, "LAPIC version load at a page end", "paging off",
              v);
        /* DS base 0xffff0000 + 0xfee10030 wraps at 4 GiB to the LAPIC's version register. */
        v = run_nopaging(op_load, 2, 0, 0xfee10030ull, SEL_WRAP);
        check(ran() && v == LAPIC_VERSION_VALUE, "LAPIC load through a DS base wrapping at 4 GiB",
              "paging off", v);
        /* 16-bit addressing: only DI (0x0030) counts, plus the DS base 0xfee00000. */
        v = run_nopaging(op_load16, 3, 0, 0x12340030ull, SEL_LAPIC);
        check(ran() && v == LAPIC_VERSION_VALUE, "LAPIC load with 16-bit addressing and a DS base",
              "paging off", v);
}

/* 32-bit PAE paging: the same exits and device loads through a PD that points at itself. */
static void pae_checks(void)
{
        uint64_t c = 0x40000000ull + (5ull << 21) + ((uint64_t)K << 12);
        uint64_t v;

        for (uint64_t i = 0; i < 512; i++)
                pd_pae0[i] = (i << 21) | TBL | PTE_PS;
        pd_pae1[5] = gpa_of(pd_pae1) | TBL;
        pd_pae1[K] = gpa_of(code_c) | TBL;
        pd_pae1[K + 1] = gpa_of(code_r) | TBL;
        pd_pae1[K + 2] = LAPIC_BASE | TBL | 0x18;
        pdpt_pae[0] = gpa_of(pd_pae0) | PTE_P;
        pdpt_pae[1] = gpa_of(pd_pae1) | PTE_P;
        hpt_pae_cr3 = (uint32_t)gpa_of(pdpt_pae);
        hpt_long_cr3 = (uint32_t)gpa_of(pml4);

        v = run_pae(c, op_cpuid, 2, 0x40000000, 0);
        check(ran() && v == 0x40000001, "CPUID at a page end", "PAE paging, PD -> itself", v);
        v = run_pae(c, op_load, 2, 0, c + 0x2000 + LAPIC_VERSION);
        check(ran() && v == LAPIC_VERSION_VALUE, "LAPIC version load at a page end",
              "PAE paging, PD -> itself", v);
}

int64_t guest_main(void)
{
        hx_gdt_init();
        hx_idt_init();
        gdt_init();
        tables_init();
        if (HOSTILE_PT_STOP) {
                volatile uint64_t *e = &pd_t[1];
                uint64_t target = HOSTILE_PT_STOP == 2 ? 0x10000000ull : LAPIC_BASE;

                memcpy(code_c + 4094, op_cpuid, 2);
                code_c[0] = 0xc3;
                if (HOSTILE_PT_STOP == 4) {
                        guest_printf("hostile_pt: load through the self-referencing PML4 from "
                                     "guest-physical 0x10000000\n");
                        (void)*(volatile uint32_t *)(uintptr_t)lin(3, 3, 2, OUTS);
                } else if (HOSTILE_PT_STOP == 3) {
                        guest_printf("hostile_pt: CPUID with its page table moved to the LAPIC "
                                     "page, old translation in the TLB\n");
                        warm(lin(1, 0, 0, 0), false);
                        pd_t[0] = LAPIC_BASE | TBL;
                        run_at_end(lin(1, 0, 0, 0), op_cpuid, 2, (struct regs){0}, false);
                } else {
                        *e = target | TBL;
                        flush();
                        guest_printf("hostile_pt: load through a page table at 0x%lx\n",
                                     (unsigned long)target);
                        (void)*(volatile uint32_t *)(uintptr_t)lin(1, 0, 1, 0);
                }
                guest_printf("FAIL: hostile_pt: came back (vector %lx)\n",
                             (unsigned long)hx_last_vector);
                return 1;
        }

        loop_checks(false);
        guest_printf("hostile_pt: CPUID, RDMSR, OUT, LAPIC and I/O APIC accesses at a page end "
                     "through 3 page-table loops: as expected\n");
        rsvd_checks(false);
        guest_printf("hostile_pt: reserved bits at every level, TLB flushed or not: #PF "
                     "P|RSVD as the CPU gives it\n");
        accessed_check(false);
        loop_checks(true);
        rsvd_checks(true);
        accessed_check(true);
        guest_printf("hostile_pt: the same from compatibility mode: as expected\n");
        nopaging_checks();
        guest_printf("hostile_pt: paging off: CPUID and LAPIC loads at a page end, through a "
                     "segment base wrapping at 4 GiB: as expected\n");
        pae_checks();
        guest_printf("hostile_pt: 32-bit PAE paging through a PD pointing at itself: CPUID and "
                     "a LAPIC load at a page end as expected\n");
        if (failed) {
                guest_printf("hostile_pt: %u of %u checks failed\n", failed, checks);
                return 1;
        }
        guest_printf("hostile_pt: all %u checks passed\n", checks);
        return 0;
}
