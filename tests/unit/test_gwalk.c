/*
 * Tests of the guest page-table walker (arch/x86_64/gwalk.c): page tables are built inside
 * a fake guest RAM (a gmem region backed by an aligned_alloc buffer; on the fake arch
 * hpa == host pointer) for each paging mode.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <keel/addr.h>
#include <keel/errno.h>
#include <vmm/gmem.h>
#include <arch/decode.h>
#include <arch/gwalk.h>

#include "test.h"

#define RAM_SIZE (2ull << 20) /* guest RAM: [0, 2 MiB) */

#define P   0x21ull /* present and accessed, as the CPU leaves entries it walked */
#define P0  0x1ull  /* present, not accessed yet */
#define A   0x20ull
#define D   0x40ull
#define RW  0x2ull
#define US  0x4ull
#define PS  0x80ull
#define NX  (1ull << 63)
#define CR0 (X86_PG_CR0_PG | 1ull /* PE */)

#define CHECK_WRITE(x) EXPECT_EQ((x), 0)

struct guest {
        struct gmem m;
        uint8_t *ram;
};

static bool guest_init(struct guest *g)
{
        g->ram = aligned_alloc(PAGE_SIZE, RAM_SIZE);
        if (!g->ram)
                return false;
        memset(g->ram, 0, RAM_SIZE);
        gmem_init(&g->m);
        return gmem_add_region(&g->m, gpa(0), RAM_SIZE, hpa((uint64_t)(uintptr_t)g->ram)) == 0;
}

static void guest_free(struct guest *g)
{
        free(g->ram);
}

static void put64(struct guest *g, uint64_t table, unsigned idx, uint64_t e)
{
        CHECK_WRITE(gmem_write(&g->m, gpa(table + idx * 8ull), &e, 8));
}

static void put32(struct guest *g, uint64_t table, unsigned idx, uint32_t e)
{
        CHECK_WRITE(gmem_write(&g->m, gpa(table + idx * 4ull), &e, 4));
}

static uint64_t xlate(const struct guest *g, const struct x86_paging *p, uint64_t gva,
                      unsigned access, int *err, struct x86_xlate *x)
{
        *err = x86_translate(&g->m, p, gva, access, x);
        return gpa_raw(x->gpa);
}

/*
 * Long mode layout:
 *   PML4 0x1000: [0] -> PDPT 0x2000, [2] -> 0x7ff00000000 (outside RAM), [511] -> 0x5000
 *   PDPT 0x2000: [0] -> PD 0x3000, [1] = 1 GiB page at 0x80000000
 *   PD   0x3000: [0] -> PT 0x4000, [1] = 2 MiB page at 0x400000
 *   PT   0x4000: [5] -> 0x123000, [7] read-only 0x124000, [8] NX 0x125000, [9] -> 0x126000,
 *                [10] -> 0x300000 (not RAM), [11] supervisor-only 0x127000
 *   0x5000 [511] -> PD 0x6000, [511] = 2 MiB page at 0x600000 (top of the address space)
 */
static void build_long(struct guest *g, struct x86_paging *p)
{
        put64(g, 0x1000, 0, 0x2000 | P | RW | US);
        put64(g, 0x1000, 2, 0x7ff00000000ull | P | RW | US);
        put64(g, 0x1000, 511, 0x5000 | P | RW | US);
        put64(g, 0x2000, 0, 0x3000 | P | RW | US);
        put64(g, 0x2000, 1, 0x80000000ull | P | RW | US | PS);
        put64(g, 0x3000, 0, 0x4000 | P | RW | US);
        put64(g, 0x3000, 1, 0x400000 | P | RW | US | PS);
        put64(g, 0x4000, 5, 0x123000 | P | RW | US);
        put64(g, 0x4000, 7, 0x124000 | P | US);
        put64(g, 0x4000, 8, 0x125000 | P | RW | US | NX);
        put64(g, 0x4000, 9, 0x126000 | P | RW | US);
        put64(g, 0x4000, 10, 0x300000 | P | RW | US);
        put64(g, 0x4000, 11, 0x127000 | P | RW);
        put64(g, 0x5000, 511, 0x6000 | P | RW | US);
        put64(g, 0x6000, 511, 0x600000 | P | RW | US | PS);
        *p = (struct x86_paging){.cr0 = CR0 | X86_PG_CR0_WP,
                                 .cr3 = 0x1000,
                                 .cr4 = X86_PG_CR4_PAE,
                                 .efer = X86_PG_EFER_LMA | X86_PG_EFER_NXE | (1ull << 8)};
}

TEST(long_mode_translations)
{
        struct guest g;
        struct x86_paging p;
        struct x86_xlate x;
        gpa_t out;
        int err;

        ASSERT_TRUE(guest_init(&g));
        build_long(&g, &p);

        EXPECT_EQ(xlate(&g, &p, 0x5abc, 0, &err, &x), 0x123abc);
        EXPECT_EQ(err, 0);
        EXPECT_EQ(x.page_size, PAGE_SIZE);
        /* 2 MiB and 1 GiB pages. */
        EXPECT_EQ(xlate(&g, &p, 0x200000 + 0x1234, 0, &err, &x), 0x401234);
        EXPECT_EQ(err, 0);
        EXPECT_EQ(x.page_size, 2ull << 20);
        EXPECT_EQ(xlate(&g, &p, 0x40000000 + 0x12345678, 0, &err, &x), 0x92345678);
        EXPECT_EQ(err, 0);
        EXPECT_EQ(x.page_size, 1ull << 30);
        /* Top of the (negative) canonical half. */
        EXPECT_EQ(xlate(&g, &p, 0xffffffffffe00010ull, 0, &err, &x), 0x600010);
        EXPECT_EQ(err, 0);
        /* x86_gva_to_gpa agrees. */
        EXPECT_EQ(x86_gva_to_gpa(&g.m, &p, 0x5abc, false, &out), 0);
        EXPECT_EQ(gpa_raw(out), 0x123abc);
        EXPECT_EQ(x86_gva_to_gpa(&g.m, &p, 0x5abc, true, &out), 0);
        guest_free(&g);
}

TEST(long_mode_faults)
{
        struct guest g;
        struct x86_paging p;
        struct x86_xlate x;
        gpa_t out = gpa(0x1234);
        int err;

        ASSERT_TRUE(guest_init(&g));
        build_long(&g, &p);

        /* Not present at the PT, the PD, the PDPT and the PML4 level. */
        xlate(&g, &p, 0x6000, 0, &err, &x);
        EXPECT_EQ(err, -KEEL_EFAULT);
        EXPECT_EQ(x.fault, X86_XLATE_PF);
        EXPECT_EQ(x.pf_error, 0);
        xlate(&g, &p, 0x6000, X86_ACC_WRITE | X86_ACC_USER, &err, &x);
        EXPECT_EQ(x.pf_error, X86_PF_W | X86_PF_U);
        xlate(&g, &p, 0x800000, 0, &err, &x);
        EXPECT_EQ(err, -KEEL_EFAULT);
        xlate(&g, &p, 0x80000000ull, 0, &err, &x);
        EXPECT_EQ(err, -KEEL_EFAULT);
        xlate(&g, &p, 1ull << 39, 0, &err, &x);
        EXPECT_EQ(err, -KEEL_EFAULT);
        EXPECT_EQ(x.fault, X86_XLATE_PF);
        EXPECT_EQ(x86_gva_to_gpa(&g.m, &p, 0x6000, false, &out), -KEEL_EFAULT);
        EXPECT_EQ(gpa_raw(out), 0x1234); /* untouched on failure */

        /* Non-canonical. */
        xlate(&g, &p, 0x0000800000000000ull, 0, &err, &x);
        EXPECT_EQ(err, -KEEL_EFAULT);
        EXPECT_EQ(x.fault, X86_XLATE_NONCANON);
        xlate(&g, &p, 0xfffe000000000000ull, 0, &err, &x);
        EXPECT_EQ(x.fault, X86_XLATE_NONCANON);

        /* PML4 entry pointing outside guest RAM: an error, not a host access. */
        xlate(&g, &p, 2ull << 39, 0, &err, &x);
        EXPECT_EQ(err, -KEEL_EFAULT);
        EXPECT_EQ(x.fault, X86_XLATE_BAD_TABLE);
        /* CR3 outside guest RAM. */
        p.cr3 = 0x40000000;
        xlate(&g, &p, 0x5000, 0, &err, &x);
        EXPECT_EQ(x.fault, X86_XLATE_BAD_TABLE);
        p.cr3 = 0x1000;

        /* Write to a read-only page: faults with CR0.WP (supervisor), not without. */
        EXPECT_EQ(x86_gva_to_gpa(&g.m, &p, 0x7010, false, &out), 0);
        EXPECT_EQ(x86_gva_to_gpa(&g.m, &p, 0x7010, true, &out), -KEEL_EFAULT);
        xlate(&g, &p, 0x7010, X86_ACC_WRITE, &err, &x);
        EXPECT_EQ(x.pf_error, X86_PF_P | X86_PF_W);
        p.cr0 &= ~X86_PG_CR0_WP;
        EXPECT_EQ(x86_gva_to_gpa(&g.m, &p, 0x7010, true, &out), 0);
        EXPECT_EQ(gpa_raw(out), 0x124010);
        /* ... but a user write faults regardless. */
        xlate(&g, &p, 0x7010, X86_ACC_WRITE | X86_ACC_USER, &err, &x);
        EXPECT_EQ(err, -KEEL_EFAULT);
        p.cr0 |= X86_PG_CR0_WP;

        /* User access to a supervisor page. */
        xlate(&g, &p, 0xb000, 0, &err, &x);
        EXPECT_EQ(err, 0);
        xlate(&g, &p, 0xb000, X86_ACC_USER, &err, &x);
        EXPECT_EQ(err, -KEEL_EFAULT);
        EXPECT_EQ(x.pf_error, X86_PF_P | X86_PF_U);

        /* NX: fetch faults when EFER.NXE; without it the bit is reserved (any access). */
        xlate(&g, &p, 0x8000, X86_ACC_FETCH, &err, &x);
        EXPECT_EQ(err, -KEEL_EFAULT);
        EXPECT_EQ(x.pf_error, X86_PF_P | X86_PF_I);
        xlate(&g, &p, 0x8000, 0, &err, &x);
        EXPECT_EQ(err, 0);
        p.efer &= ~X86_PG_EFER_NXE;
        xlate(&g, &p, 0x8000, 0, &err, &x);
        EXPECT_EQ(err, -KEEL_EFAULT);
        EXPECT_EQ(x.pf_error, X86_PF_P | X86_PF_RSVD);
        p.efer |= X86_PG_EFER_NXE;

        /* SMEP: supervisor fetch from a user page. */
        p.cr4 |= X86_PG_CR4_SMEP;
        xlate(&g, &p, 0x5000, X86_ACC_FETCH, &err, &x);
        EXPECT_EQ(err, -KEEL_EFAULT);
        xlate(&g, &p, 0xb000, X86_ACC_FETCH, &err, &x);
        EXPECT_EQ(err, 0);
        p.cr4 &= ~X86_PG_CR4_SMEP;

        /* Garbage in the high bits of an entry (bits 52-62) does not leak into the address. */
        put64(&g, 0x4000, 12, 0x128000 | P | RW | (0x7ffull << 52));
        EXPECT_EQ(xlate(&g, &p, 0xc008, 0, &err, &x), 0x128008);

        /* 5-level paging is refused. */
        p.cr4 |= X86_PG_CR4_LA57;
        EXPECT_EQ(x86_translate(&g.m, &p, 0x5000, 0, &x), -KEEL_ENOTSUP);
        guest_free(&g);
}

/*
 * PAE: PDPT at 0x7020 (32-byte aligned, not page aligned):
 *   [1] -> PD 0x8000: [0] -> PT 0x9000 ([3] -> 0x345000, [4] -> 0x1_2345_6000),
 *                     [1] = 2 MiB page at 0x800000
 *   [2] not present
 */
TEST(pae_translations)
{
        struct guest g;
        struct x86_paging p = {
            .cr0 = CR0, .cr3 = 0x7020, .cr4 = X86_PG_CR4_PAE, .efer = X86_PG_EFER_NXE};
        struct x86_xlate x;
        int err;

        ASSERT_TRUE(guest_init(&g));
        put64(&g, 0x7020, 1, 0x8000 | P);
        put64(&g, 0x8000, 0, 0x9000 | P | RW);
        put64(&g, 0x8000, 1, 0x800000 | P | RW | PS);
        put64(&g, 0x9000, 3, 0x345000 | P | RW);
        put64(&g, 0x9000, 4, 0x123456000ull | P | RW | NX);

        EXPECT_EQ(xlate(&g, &p, 0x40003021, 0, &err, &x), 0x345021);
        EXPECT_EQ(err, 0);
        EXPECT_EQ(xlate(&g, &p, 0x40004fff, 0, &err, &x), 0x123456fffull);
        EXPECT_EQ(err, 0);
        xlate(&g, &p, 0x40004fff, X86_ACC_FETCH, &err, &x);
        EXPECT_EQ(err, -KEEL_EFAULT);
        EXPECT_EQ(xlate(&g, &p, 0x40200005, 0, &err, &x), 0x800005);
        EXPECT_EQ(x.page_size, 2ull << 20);
        /* Linear addresses are 32 bits outside long mode. */
        EXPECT_EQ(xlate(&g, &p, 0x740003021ull, 0, &err, &x), 0x345021);
        EXPECT_EQ(err, 0);
        /* Not present PDPTE, PDE, PTE. */
        xlate(&g, &p, 0x80000000, 0, &err, &x);
        EXPECT_EQ(err, -KEEL_EFAULT);
        EXPECT_EQ(x.fault, X86_XLATE_PF);
        xlate(&g, &p, 0x40400000, 0, &err, &x);
        EXPECT_EQ(err, -KEEL_EFAULT);
        xlate(&g, &p, 0x40005000, 0, &err, &x);
        EXPECT_EQ(err, -KEEL_EFAULT);
        /* The PDPT is the one CR3 names: index 0 of the page is not used. */
        put64(&g, 0x7000, 0, 0x8000 | P);
        xlate(&g, &p, 0x00003021, 0, &err, &x);
        EXPECT_EQ(err, -KEEL_EFAULT);
        /* PDPT outside RAM. */
        p.cr3 = 0xfffff000;
        xlate(&g, &p, 0x40003021, 0, &err, &x);
        EXPECT_EQ(x.fault, X86_XLATE_BAD_TABLE);
        guest_free(&g);
}

/*
 * 32-bit paging: PD at 0xa000: [0] -> PT 0xb000 ([1] -> 0x222000), [1] = 4 MiB page at
 * 0xc00000, [2] = 4 MiB page at 0x3_0080_0000 (PSE-36), [1023] -> PT 0xd000 ([1023] ->
 * 0x1ff000).
 */
TEST(legacy_32bit_translations)
{
        struct guest g;
        struct x86_paging p = {.cr0 = CR0, .cr3 = 0xa000, .cr4 = X86_PG_CR4_PSE};
        struct x86_xlate x;
        int err;

        ASSERT_TRUE(guest_init(&g));
        put32(&g, 0xa000, 0, 0xb000 | P | RW);
        put32(&g, 0xa000, 1, 0xc00000 | P | RW | PS);
        put32(&g, 0xa000, 2, 0x800000 | (3u << 13) | P | RW | PS);
        put32(&g, 0xa000, 1023, 0xd000 | P | RW);
        put32(&g, 0xb000, 1, 0x222000 | P | RW);
        put32(&g, 0xd000, 1023, 0x1ff000 | P | RW);

        EXPECT_EQ(xlate(&g, &p, 0x1555, 0, &err, &x), 0x222555);
        EXPECT_EQ(err, 0);
        EXPECT_EQ(xlate(&g, &p, 0x412345, 0, &err, &x), 0xc12345);
        EXPECT_EQ(x.page_size, 4ull << 20);
        EXPECT_EQ(xlate(&g, &p, 0x800007, 0, &err, &x), 0x300800007ull);
        EXPECT_EQ(err, 0);
        EXPECT_EQ(xlate(&g, &p, 0xfffff123, 0, &err, &x), 0x1ff123);
        /* Not present. */
        xlate(&g, &p, 0x2000, 0, &err, &x);
        EXPECT_EQ(err, -KEEL_EFAULT);
        EXPECT_EQ(x.fault, X86_XLATE_PF);
        xlate(&g, &p, 0xc00000, 0, &err, &x);
        EXPECT_EQ(err, -KEEL_EFAULT);
        /* Without CR4.PSE the PS bit is ignored: 0xc00000 is then a page table, outside RAM. */
        p.cr4 = 0;
        xlate(&g, &p, 0x412345, 0, &err, &x);
        EXPECT_EQ(err, -KEEL_EFAULT);
        EXPECT_EQ(x.fault, X86_XLATE_BAD_TABLE);
        /* No NX in 32-bit paging: bit 31 of a 32-bit entry is an address bit. */
        EXPECT_EQ(xlate(&g, &p, 0x1555, X86_ACC_FETCH, &err, &x), 0x222555);
        EXPECT_EQ(err, 0);
        guest_free(&g);
}

TEST(no_paging)
{
        struct guest g;
        struct x86_paging p = {.cr0 = 1 /* PE only */};
        struct x86_xlate x;
        int err;

        ASSERT_TRUE(guest_init(&g));
        EXPECT_EQ(xlate(&g, &p, 0x12345, 0, &err, &x), 0x12345);
        EXPECT_EQ(err, 0);
        EXPECT_EQ(xlate(&g, &p, 0x100001234ull, X86_ACC_WRITE, &err, &x), 0x1234);
        EXPECT_EQ(err, 0);
        /* Paging-mode bits without CR0.PG change nothing. */
        p.cr4 = X86_PG_CR4_PAE | X86_PG_CR4_LA57;
        p.cr3 = 0xdead000;
        EXPECT_EQ(xlate(&g, &p, 0xfee00000, 0, &err, &x), 0xfee00000);
        EXPECT_EQ(err, 0);
        guest_free(&g);
}

TEST(fetch_instructions)
{
        static const uint8_t cpuid_nop[] = {0x0f, 0xa2, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
                                            0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90};
        struct guest g;
        struct x86_paging p;
        struct x86_insn in;
        uint8_t buf[15];
        size_t n = 99;

        ASSERT_TRUE(guest_init(&g));
        build_long(&g, &p);

        /* Middle of a page: 15 bytes. */
        CHECK_WRITE(gmem_write(&g.m, gpa(0x123100), cpuid_nop, sizeof(cpuid_nop)));
        EXPECT_EQ(x86_fetch_insn(&g.m, &p, 0x5100, buf, &n), 15);
        EXPECT_EQ(n, 15);
        EXPECT_TRUE(memcmp(buf, cpuid_nop, 15) == 0);
        EXPECT_EQ(x86_decode(buf, n, X86_MODE_LONG64, &in), 0);
        EXPECT_EQ(in.len, 2);
        EXPECT_EQ(x86_insn_identify(&in), X86_INSN_CPUID);

        /* End of a page whose successor (linear 0x6000) is not mapped: 2 bytes, enough. */
        CHECK_WRITE(gmem_write(&g.m, gpa(0x123ffe), cpuid_nop, 2));
        EXPECT_EQ(x86_fetch_insn(&g.m, &p, 0x5ffe, buf, &n), 2);
        EXPECT_EQ(n, 2);
        EXPECT_EQ(x86_decode(buf, n, X86_MODE_LONG64, &in), 0);
        EXPECT_EQ(x86_insn_identify(&in), X86_INSN_CPUID);
        /* ... one byte only: the decoder asks for more, which cannot come. */
        EXPECT_EQ(x86_fetch_insn(&g.m, &p, 0x5fff, buf, &n), 1);
        EXPECT_EQ(n, 1);
        EXPECT_EQ(buf[0], 0xa2);
        EXPECT_EQ(x86_decode(buf, n, X86_MODE_LONG64, &in), -KEEL_EAGAIN);

        /* Across a boundary into a mapped page: linear 0x8fff -> 0x125fff, then 0x9000 ->
         * 0x126000. */
        CHECK_WRITE(gmem_write(&g.m, gpa(0x125fff), cpuid_nop, 1));
        CHECK_WRITE(gmem_write(&g.m, gpa(0x126000), cpuid_nop + 1, 14));
        EXPECT_EQ(x86_fetch_insn(&g.m, &p, 0x8fff, buf, &n), 15);
        EXPECT_TRUE(memcmp(buf, cpuid_nop, 15) == 0);

        /* First byte unreachable: not mapped, not RAM (MMIO), non-canonical. */
        EXPECT_EQ(x86_fetch_insn(&g.m, &p, 0x6000, buf, &n), -KEEL_EFAULT);
        EXPECT_EQ(n, 0);
        EXPECT_EQ(x86_fetch_insn(&g.m, &p, 0xa000, buf, &n), -KEEL_EFAULT);
        EXPECT_EQ(x86_fetch_insn(&g.m, &p, 0x0000900000000000ull, buf, &n), -KEEL_EFAULT);
        /* The next page is not RAM: stop there. */
        EXPECT_EQ(x86_fetch_insn(&g.m, &p, 0x9ffa, buf, &n), 6);
        /* Last canonical page of the lower half: the next page is non-canonical. */
        put64(&g, 0x1000, 255, 0x2000 | P | RW);
        put64(&g, 0x2000, 511, 0x3000 | P | RW);
        put64(&g, 0x3000, 511, 0x4000 | P | RW);
        put64(&g, 0x4000, 511, 0x123000 | P | RW);
        EXPECT_EQ(x86_fetch_insn(&g.m, &p, 0x00007ffffffffffeull, buf, &n), 2);
        guest_free(&g);
}

/* The fast code view agrees with the full walk wherever it answers, and declines the rest. */
TEST(code_peek_agrees_with_translate)
{
        static const uint64_t probes[] = {
            0x5100, 0x5ffe, 0x5fff,           0x200000 + 0x1234,     0x40000000 + 0x12345678,
            0x6000, 0xa000, 0x7ffe,           0xffffffffffe00010ull, 0x0000900000000000ull,
            0x9ffa, 0x8000, 0x10000000000ull,
        };
        struct guest g;
        struct x86_paging p;
        struct x86_xlate x;

        ASSERT_TRUE(guest_init(&g));
        build_long(&g, &p);
        for (unsigned i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
                for (size_t len = 1; len <= 3; len++) {
                        uint64_t lin = probes[i];
                        const uint8_t *fast = x86_code_peek(&g.m, &p, lin, len, NULL);
                        int err = x86_translate(&g.m, &p, lin, 0, &x);
                        bool same_page = (lin & 0xfff) + len <= 0x1000;
                        bool ram = err == 0 && gmem_contains(&g.m, x.gpa, len);

                        if (err == 0 && same_page && ram) {
                                EXPECT_TRUE(fast == g.ram + gpa_raw(x.gpa));
                        } else {
                                EXPECT_TRUE(fast == NULL);
                        }
                }
        }
        /* Without paging: identity below 4 GiB; 32-bit paging modes are left to the slow path. */
        p.cr0 = 1;
        EXPECT_TRUE(x86_code_peek(&g.m, &p, 0x1234, 2, NULL) == g.ram + 0x1234);
        EXPECT_TRUE(x86_code_peek(&g.m, &p, RAM_SIZE - 1, 2, NULL) == NULL);
        p.cr0 = CR0;
        p.efer = 0;
        EXPECT_TRUE(x86_code_peek(&g.m, &p, 0x5100, 2, NULL) == NULL);
        /* A large page with reserved address bits set: declined. */
        build_long(&g, &p);
        put64(&g, 0x3000, 1, 0x402000 | P | RW | US | PS);
        EXPECT_TRUE(x86_code_peek(&g.m, &p, 0x200000, 2, NULL) == NULL);
        guest_free(&g);
}

/* The per-vCPU memo answers as a fresh walk would: any change on the path is seen. */
TEST(code_peek_cache_follows_the_page_tables)
{
        struct guest g;
        struct x86_paging p;
        struct x86_code_cache c;

        ASSERT_TRUE(guest_init(&g));
        build_long(&g, &p);
        /* Linear 0x200000 as a 2 MiB page onto guest RAM at 0. */
        put64(&g, 0x3000, 1, 0x0 | P | RW | US | PS);
        x86_code_cache_reset(&c);
        /* Miss, then hit, on a 4 KiB page (4 levels) and on a 2 MiB page (3 levels). */
        EXPECT_TRUE(x86_code_peek(&g.m, &p, 0x5100, 2, &c) == g.ram + 0x123100);
        EXPECT_EQ(c.levels, 4);
        EXPECT_TRUE(x86_code_peek(&g.m, &p, 0x5100, 2, &c) == g.ram + 0x123100);
        EXPECT_TRUE(x86_code_peek(&g.m, &p, 0x5ffe, 2, &c) == g.ram + 0x123ffe);
        EXPECT_TRUE(x86_code_peek(&g.m, &p, 0x5fff, 2, &c) == NULL); /* crosses the page */
        EXPECT_TRUE(x86_code_peek(&g.m, &p, 0x201234, 2, &c) == g.ram + 0x1234);
        EXPECT_EQ(c.levels, 3);
        EXPECT_TRUE(x86_code_peek(&g.m, &p, 0x201234, 2, &c) == g.ram + 0x1234);
        /* The leaf changes into a table: the next peek follows it (entry 1 of PT 0x4000). */
        put64(&g, 0x3000, 1, 0x4000 | P | RW | US);
        EXPECT_TRUE(x86_code_peek(&g.m, &p, 0x201234, 2, &c) == NULL);
        put64(&g, 0x4000, 1, 0x126000 | P | RW | US);
        EXPECT_TRUE(x86_code_peek(&g.m, &p, 0x201234, 2, &c) == g.ram + 0x126234);
        EXPECT_EQ(c.levels, 4);
        /* An upper level changes (PML4 entry now points at a table of zeros): not present. */
        put64(&g, 0x1000, 0, 0x7000 | P | RW | US);
        EXPECT_TRUE(x86_code_peek(&g.m, &p, 0x201234, 2, &c) == NULL);
        EXPECT_EQ(c.levels, 0);
        put64(&g, 0x1000, 0, 0x2000 | P | RW | US);
        EXPECT_TRUE(x86_code_peek(&g.m, &p, 0x201234, 2, &c) == g.ram + 0x126234);
        /* Another CR3 with other tables: a new walk. */
        put64(&g, 0x8000, 0, 0x9000 | P | RW | US);
        put64(&g, 0x9000, 0, 0xa000 | P | RW | US);
        put64(&g, 0xa000, 1, 0x0 | P | RW | US | PS);
        p.cr3 = 0x8000;
        EXPECT_TRUE(x86_code_peek(&g.m, &p, 0x201234, 2, &c) == g.ram + 0x1234);
        /* The entry a hit re-reads going not-present is seen too. */
        put64(&g, 0xa000, 1, 0);
        EXPECT_TRUE(x86_code_peek(&g.m, &p, 0x201234, 2, &c) == NULL);
        guest_free(&g);
}

TEST(fetch_wraps_at_4g_outside_long_mode)
{
        struct guest g;
        struct x86_paging p = {.cr0 = CR0, .cr3 = 0xa000, .cr4 = 0};
        uint8_t buf[15];
        size_t n;

        ASSERT_TRUE(guest_init(&g));
        put32(&g, 0xa000, 0, 0xb000 | P | RW);
        put32(&g, 0xa000, 1023, 0xd000 | P | RW);
        put32(&g, 0xb000, 0, 0x100000 | P | RW);
        put32(&g, 0xd000, 1023, 0x1ff000 | P | RW);
        CHECK_WRITE(gmem_write(&g.m, gpa(0x1ffffe), "\x0f\x01", 2));
        CHECK_WRITE(gmem_write(&g.m, gpa(0x100000),
                               "\xd9\x90\x90\x90\x90\x90\x90\x90\x90\x90"
                               "\x90\x90\x90",
                               13));
        EXPECT_EQ(x86_fetch_insn(&g.m, &p, 0xfffffffe, buf, &n), 15);
        EXPECT_EQ(buf[0], 0x0f);
        EXPECT_EQ(buf[1], 0x01);
        EXPECT_EQ(buf[2], 0xd9);
        EXPECT_EQ(buf[14], 0x90);

        /* Without paging too: linear = physical, wrapping at 4 GiB; the top page is not RAM. */
        p.cr0 = 1;
        EXPECT_EQ(x86_fetch_insn(&g.m, &p, 0xfffffffe, buf, &n), -KEEL_EFAULT);
        EXPECT_EQ(x86_fetch_insn(&g.m, &p, 0x1ffffe, buf, &n), 2); /* 0x200000: not RAM */
        EXPECT_EQ(buf[1], 0x01);
        guest_free(&g);
}

static uint64_t get64(const struct guest *g, uint64_t at)
{
        uint64_t e = 0;

        EXPECT_EQ(gmem_read(&g->m, gpa(at), &e, 8), 0);
        return e;
}

/* Reserved bits fault as on the CPU: #PF with P and RSVD, at every level and mode. */
TEST(reserved_bits)
{
        struct guest g;
        struct x86_paging p;
        struct x86_xlate x;
        int err;

        ASSERT_TRUE(guest_init(&g));
        build_long(&g, &p);
        x86_gwalk_set_cpu(40, false);

        /* Bit 45 (above MAXPHYADDR 40) in the PT entry, the PD entry, the PDPT entry, the
         * PML4 entry; with MAXPHYADDR 52 only an address outside RAM. */
        static const uint64_t at[] = {0x4000 + 5 * 8, 0x3000, 0x2000, 0x1000};
        for (unsigned i = 0; i < 4; i++) {
                uint64_t old = get64(&g, at[i]);

                put64(&g, at[i] & ~0xfffull, (at[i] & 0xfff) / 8, old | (1ull << 45));
                xlate(&g, &p, 0x5abc, 0, &err, &x);
                EXPECT_EQ(err, -KEEL_EFAULT);
                EXPECT_EQ(x.fault, X86_XLATE_PF);
                EXPECT_EQ(x.pf_error, X86_PF_P | X86_PF_RSVD);
                xlate(&g, &p, 0x5abc, X86_ACC_FETCH | X86_ACC_USER | X86_ACC_WRITE, &err, &x);
                EXPECT_EQ(x.pf_error, X86_PF_P | X86_PF_RSVD | X86_PF_I | X86_PF_U | X86_PF_W);
                put64(&g, at[i] & ~0xfffull, (at[i] & 0xfff) / 8, old);
        }
        EXPECT_EQ(xlate(&g, &p, 0x5abc, 0, &err, &x), 0x123abc);

        /* PS in the PML4 entry. */
        put64(&g, 0x1000, 0, 0x2000 | P | RW | US | PS);
        xlate(&g, &p, 0x5abc, 0, &err, &x);
        EXPECT_EQ(x.pf_error, X86_PF_P | X86_PF_RSVD);
        put64(&g, 0x1000, 0, 0x2000 | P | RW | US);

        /* NX with EFER.NXE = 0: reserved (no I bit either then); with NXE a right. */
        put64(&g, 0x3000, 0, 0x4000 | P | RW | US | NX);
        EXPECT_EQ(xlate(&g, &p, 0x5abc, 0, &err, &x), 0x123abc);
        p.efer &= ~X86_PG_EFER_NXE;
        xlate(&g, &p, 0x5abc, X86_ACC_FETCH, &err, &x);
        EXPECT_EQ(x.pf_error, X86_PF_P | X86_PF_RSVD);
        p.efer |= X86_PG_EFER_NXE;
        put64(&g, 0x3000, 0, 0x4000 | P | RW | US);

        /* Large pages: bits between PAT and the page size; 1 GiB pages the CPU lacks. */
        put64(&g, 0x3000, 1, 0x400000 | (1ull << 13) | P | RW | US | PS);
        xlate(&g, &p, 0x200000, 0, &err, &x);
        EXPECT_EQ(x.pf_error, X86_PF_P | X86_PF_RSVD);
        put64(&g, 0x3000, 1, 0x400000 | (1ull << 12) | P | RW | US | PS); /* PAT: fine */
        EXPECT_EQ(xlate(&g, &p, 0x200000, 0, &err, &x), 0x400000);
        xlate(&g, &p, 0x40000000, 0, &err, &x);
        EXPECT_EQ(x.pf_error, X86_PF_P | X86_PF_RSVD);
        x86_gwalk_set_cpu(40, true);
        EXPECT_EQ(xlate(&g, &p, 0x40000000, 0, &err, &x), 0x80000000ull);
        put64(&g, 0x2000, 1, 0x80000000ull | (1ull << 20) | P | RW | US | PS);
        xlate(&g, &p, 0x40000000, 0, &err, &x);
        EXPECT_EQ(x.pf_error, X86_PF_P | X86_PF_RSVD);

        /* Bits 62:52 are ignored in long mode, reserved in PAE paging (and so is NX in a
         * PDPTE). */
        put64(&g, 0x4000, 5, 0x123000 | P | RW | US | (1ull << 60));
        EXPECT_EQ(xlate(&g, &p, 0x5abc, 0, &err, &x), 0x123abc);
        p = (struct x86_paging){
            .cr0 = CR0, .cr3 = 0x7020, .cr4 = X86_PG_CR4_PAE, .efer = X86_PG_EFER_NXE};
        put64(&g, 0x7020, 1, 0x8000 | P);
        put64(&g, 0x8000, 0, 0x9000 | P | RW);
        put64(&g, 0x9000, 3, 0x345000 | P | RW | (1ull << 60));
        xlate(&g, &p, 0x40003000, 0, &err, &x);
        EXPECT_EQ(x.pf_error, X86_PF_P | X86_PF_RSVD);
        put64(&g, 0x9000, 3, 0x345000 | P | RW | NX);
        EXPECT_EQ(xlate(&g, &p, 0x40003000, 0, &err, &x), 0x345000);
        put64(&g, 0x7020, 1, 0x8000 | P | NX);
        xlate(&g, &p, 0x40003000, 0, &err, &x);
        EXPECT_EQ(x.pf_error, X86_PF_P | X86_PF_RSVD);

        /* 32-bit paging: bit 21 of a 4 MiB page. */
        p = (struct x86_paging){.cr0 = CR0, .cr3 = 0xa000, .cr4 = X86_PG_CR4_PSE};
        put32(&g, 0xa000, 1, 0xc00000 | (1u << 21) | P | RW | PS);
        xlate(&g, &p, 0x400000, 0, &err, &x);
        EXPECT_EQ(x.pf_error, X86_PF_P | X86_PF_RSVD);
        put32(&g, 0xa000, 1, 0xc00000 | P | RW | PS);
        EXPECT_EQ(xlate(&g, &p, 0x400000, 0, &err, &x), 0xc00000);

        /* The fetch stops at a reserved bit like any fault. */
        p = (struct x86_paging){.cr0 = CR0,
                                .cr3 = 0x1000,
                                .cr4 = X86_PG_CR4_PAE,
                                .efer = X86_PG_EFER_LMA | X86_PG_EFER_NXE};
        {
                uint8_t buf[15];
                size_t n;

                put64(&g, 0x4000, 5, 0x123000 | P | RW | US | (1ull << 41));
                EXPECT_EQ(x86_fetch_insn(&g.m, &p, 0x5000, buf, &n), -KEEL_EFAULT);
                EXPECT_TRUE(x86_code_peek(&g.m, &p, 0x5000, 2, NULL) == NULL);
        }
        x86_gwalk_set_cpu(52, true);
        guest_free(&g);
}

/* Tables that point back at themselves: walked like any others, 4 levels and no more. */
TEST(table_loops)
{
        struct guest g;
        struct x86_paging p;
        struct x86_xlate x;
        int err;

        ASSERT_TRUE(guest_init(&g));
        build_long(&g, &p);
        /* PML4[510] -> the PML4: (510, 510, 510, 0) is PML4[0]'s target, the PDPT at 0x2000;
         * (510, 0, 0, 0) is the PD's entry 0's target, the PT at 0x4000. */
        put64(&g, 0x1000, 510, 0x1000 | P | RW);
        EXPECT_EQ(xlate(&g, &p, 0xffffff7fbfc00000ull | 0x123, 0, &err, &x), 0x2123);
        EXPECT_EQ(err, 0);
        EXPECT_EQ(xlate(&g, &p, 0xffffff0000000000ull | 0x10, 0, &err, &x), 0x4010);
        /* PDPT[3] -> the PML4 (a two-level cycle): (0, 3, 0, 0) -> PML4[0] as PD entry ->
         * the PDPT as PT -> PDPT[0] as PTE: the PD at 0x3000. */
        put64(&g, 0x2000, 3, 0x1000 | P | RW);
        EXPECT_EQ(xlate(&g, &p, 0xc0000000ull + 0x8, 0, &err, &x), 0x3008);
        EXPECT_EQ(x86_code_peek(&g.m, &p, 0xc0000000ull, 2, NULL), g.ram + 0x3000);
        /* Every level the PML4: the same entry used 4 times. */
        put64(&g, 0x1000, 509, 0x1000 | P | RW);
        EXPECT_EQ(xlate(&g, &p, 0xfffffeff7fbfd000ull, 0, &err, &x), 0x1000);
        EXPECT_EQ(err, 0);
        guest_free(&g);
}

/* X86_ACC_SET_AD: Accessed on every entry used, Dirty on the leaf for a write. */
TEST(accessed_dirty)
{
        struct guest g;
        struct x86_paging p;
        struct x86_xlate x;
        uint8_t buf[15];
        size_t n;
        int err;

        ASSERT_TRUE(guest_init(&g));
        build_long(&g, &p);
        put64(&g, 0x1000, 0, 0x2000 | P0 | RW | US);
        put64(&g, 0x2000, 0, 0x3000 | P0 | RW | US);
        put64(&g, 0x3000, 0, 0x4000 | P0 | RW | US);
        put64(&g, 0x4000, 5, 0x123000 | P0 | RW | US);
        put64(&g, 0x4000, 7, 0x124000 | P0 | US);
        /* Without the flag nothing changes; the fast path declines (the full walk sets A). */
        EXPECT_EQ(xlate(&g, &p, 0x5000, X86_ACC_WRITE, &err, &x), 0x123000);
        EXPECT_EQ(get64(&g, 0x1000), 0x2000 | P0 | RW | US);
        EXPECT_TRUE(x86_code_peek(&g.m, &p, 0x5000, 2, NULL) == NULL);
        /* A failed walk (write to a read-only page) sets nothing. */
        xlate(&g, &p, 0x7000, X86_ACC_WRITE | X86_ACC_SET_AD, &err, &x);
        EXPECT_EQ(err, -KEEL_EFAULT);
        EXPECT_EQ(get64(&g, 0x1000), 0x2000 | P0 | RW | US);
        EXPECT_EQ(get64(&g, 0x4000 + 7 * 8), 0x124000 | P0 | US);
        /* A read: A on all four; a write: D on the leaf too. */
        xlate(&g, &p, 0x7000, X86_ACC_SET_AD, &err, &x);
        EXPECT_EQ(get64(&g, 0x1000), 0x2000 | P0 | A | RW | US);
        EXPECT_EQ(get64(&g, 0x2000), 0x3000 | P0 | A | RW | US);
        EXPECT_EQ(get64(&g, 0x3000), 0x4000 | P0 | A | RW | US);
        EXPECT_EQ(get64(&g, 0x4000 + 7 * 8), 0x124000 | P0 | A | US);
        xlate(&g, &p, 0x5000, X86_ACC_WRITE | X86_ACC_SET_AD, &err, &x);
        EXPECT_EQ(get64(&g, 0x4000 + 5 * 8), 0x123000 | P0 | A | D | RW | US);
        EXPECT_EQ(get64(&g, 0x3000), 0x4000 | P0 | A | RW | US); /* D only on the leaf */
        /* An instruction fetch sets A, after which the fast path answers. */
        put64(&g, 0x4000, 5, 0x123000 | P0 | RW | US);
        EXPECT_EQ(x86_fetch_insn(&g.m, &p, 0x5ff0, buf, &n), 15);
        EXPECT_EQ(get64(&g, 0x4000 + 5 * 8), 0x123000 | P0 | A | RW | US);
        EXPECT_EQ(get64(&g, 0x4000 + 6 * 8), 0); /* the next page: not present */
        EXPECT_TRUE(x86_code_peek(&g.m, &p, 0x5000, 2, NULL) == g.ram + 0x123000);
        /* 32-bit entries. */
        p = (struct x86_paging){.cr0 = CR0, .cr3 = 0xa000};
        put32(&g, 0xa000, 0, 0xb000 | P0 | RW);
        put32(&g, 0xb000, 1, 0x222000 | P0 | RW);
        EXPECT_EQ(xlate(&g, &p, 0x1555, X86_ACC_WRITE | X86_ACC_SET_AD, &err, &x), 0x222555);
        EXPECT_EQ(get64(&g, 0xa000) & 0xffffffff, 0xb000 | P0 | A | RW);
        EXPECT_EQ(get64(&g, 0xb004) & 0xffffffff, 0x222000 | P0 | A | D | RW);
        guest_free(&g);
}

TEST_MAIN()
