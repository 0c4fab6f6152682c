/* x86_checks.c: the XSETBV, PAT and EFER rules, one test per rule, both sides of each. */
#include "test.h"

#include <arch/x86.h>
#include <arch/x86_checks.h>
#include <keel/errno.h>

/* x87, SSE, AVX, MPX, AVX-512, PKRU, AMX: a CPU with every component the rules name. */
#define ALL                                                                            \
        (X86_XCR0_X87 | X86_XCR0_SSE | X86_XCR0_AVX | X86_XCR0_MPX | X86_XCR0_AVX512 | \
         (1ull << 9) | X86_XCR0_AMX)
#define X87_SSE_AVX (X86_XCR0_X87 | X86_XCR0_SSE | X86_XCR0_AVX)

TEST(xcr0_good_values)
{
        EXPECT_TRUE(x86_xcr0_valid(X86_XCR0_X87, ALL));
        EXPECT_TRUE(x86_xcr0_valid(X86_XCR0_X87 | X86_XCR0_SSE, ALL));
        EXPECT_TRUE(x86_xcr0_valid(X87_SSE_AVX, ALL));
        EXPECT_TRUE(x86_xcr0_valid(X87_SSE_AVX | X86_XCR0_AVX512, ALL));
        EXPECT_TRUE(x86_xcr0_valid(X86_XCR0_X87 | X86_XCR0_MPX, ALL));
        EXPECT_TRUE(x86_xcr0_valid(X86_XCR0_X87 | X86_XCR0_AMX, ALL));
        EXPECT_TRUE(x86_xcr0_valid(X86_XCR0_X87 | (1ull << 9), ALL)); /* PKRU: no pairing */
        EXPECT_TRUE(x86_xcr0_valid(ALL, ALL));
}

TEST(xcr0_x87_must_be_set)
{
        EXPECT_FALSE(x86_xcr0_valid(0, ALL));
        EXPECT_FALSE(x86_xcr0_valid(X86_XCR0_SSE, ALL));
        EXPECT_FALSE(x86_xcr0_valid(ALL & ~X86_XCR0_X87, ALL));
}

TEST(xcr0_avx_needs_sse)
{
        EXPECT_FALSE(x86_xcr0_valid(X86_XCR0_X87 | X86_XCR0_AVX, ALL));
        EXPECT_FALSE(x86_xcr0_valid(ALL & ~X86_XCR0_SSE, ALL));
}

TEST(xcr0_avx512_all_or_nothing_and_needs_avx)
{
        static const uint64_t partial[] = {
            X86_XCR0_OPMASK,
            X86_XCR0_ZMM_HI256,
            X86_XCR0_HI16_ZMM,
            X86_XCR0_OPMASK | X86_XCR0_ZMM_HI256,
            X86_XCR0_OPMASK | X86_XCR0_HI16_ZMM,
            X86_XCR0_ZMM_HI256 | X86_XCR0_HI16_ZMM,
        };

        for (unsigned i = 0; i < sizeof(partial) / sizeof(partial[0]); i++)
                EXPECT_FALSE(x86_xcr0_valid(X87_SSE_AVX | partial[i], ALL));
        EXPECT_FALSE(x86_xcr0_valid(X86_XCR0_X87 | X86_XCR0_SSE | X86_XCR0_AVX512, ALL));
        EXPECT_FALSE(x86_xcr0_valid(X86_XCR0_X87 | X86_XCR0_AVX512, ALL));
}

TEST(xcr0_mpx_paired)
{
        EXPECT_FALSE(x86_xcr0_valid(X86_XCR0_X87 | X86_XCR0_BNDREGS, ALL));
        EXPECT_FALSE(x86_xcr0_valid(X86_XCR0_X87 | X86_XCR0_BNDCSR, ALL));
}

TEST(xcr0_amx_paired)
{
        EXPECT_FALSE(x86_xcr0_valid(X86_XCR0_X87 | X86_XCR0_TILECFG, ALL));
        EXPECT_FALSE(x86_xcr0_valid(X86_XCR0_X87 | X86_XCR0_TILEDATA, ALL));
}

TEST(xcr0_unsupported_components)
{
        uint64_t sse_only = X86_XCR0_X87 | X86_XCR0_SSE;

        EXPECT_FALSE(x86_xcr0_valid(X87_SSE_AVX, sse_only));
        EXPECT_FALSE(x86_xcr0_valid(X87_SSE_AVX | X86_XCR0_AVX512, X87_SSE_AVX));
        EXPECT_FALSE(x86_xcr0_valid(X86_XCR0_X87 | X86_XCR0_MPX, X87_SSE_AVX));
        for (unsigned bit = 1; bit < 64; bit++)
                if (!(ALL & (1ull << bit)))
                        EXPECT_FALSE(x86_xcr0_valid(X86_XCR0_X87 | (1ull << bit), ALL));
}

TEST(pat_defined_types)
{
        EXPECT_TRUE(x86_pat_valid(0x0007040600070406ull)); /* reset value */
        EXPECT_TRUE(x86_pat_valid(0));
        EXPECT_TRUE(x86_pat_valid(0x0706050401000706ull));
        EXPECT_TRUE(x86_pat_valid(0x0101010101010101ull));
}

TEST(pat_reserved_types_in_every_byte)
{
        static const uint8_t reserved[] = {2, 3, 8, 9, 0x10, 0x80, 0xff};

        for (unsigned byte = 0; byte < 8; byte++)
                for (unsigned i = 0; i < sizeof(reserved); i++) {
                        uint64_t pat = 0x0007040600070406ull;

                        pat &= ~(0xffull << (8 * byte));
                        pat |= (uint64_t)reserved[i] << (8 * byte);
                        EXPECT_FALSE(x86_pat_valid(pat));
                }
}

#define LONG_EFER (X86_EFER_SCE | X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE)
#define PAGED_CR0 (X86_CR0_PE | X86_CR0_PG)

TEST(efer_same_value_in_long_mode)
{
        uint64_t out = 0;

        EXPECT_EQ(x86_efer_write(LONG_EFER, LONG_EFER, PAGED_CR0, &out), 0);
        EXPECT_EQ(out, LONG_EFER);
        EXPECT_EQ(x86_efer_write(LONG_EFER, LONG_EFER & ~X86_EFER_NXE, PAGED_CR0, &out), 0);
        EXPECT_EQ(out, LONG_EFER & ~X86_EFER_NXE);
}

TEST(efer_lme_cleared_in_long_mode)
{
        uint64_t out = 0x1234;

        EXPECT_EQ(x86_efer_write(LONG_EFER, LONG_EFER & ~X86_EFER_LME, PAGED_CR0, &out),
                  -KEEL_EPERM);
        EXPECT_EQ(x86_efer_write(LONG_EFER, X86_EFER_LMA, PAGED_CR0, &out), -KEEL_EPERM);
        EXPECT_EQ(out, 0x1234); /* untouched on #GP */
}

TEST(efer_lme_set_with_paging_on)
{
        uint64_t out;

        EXPECT_EQ(x86_efer_write(0, X86_EFER_LME, PAGED_CR0, &out), -KEEL_EPERM);
        EXPECT_EQ(x86_efer_write(X86_EFER_SCE, X86_EFER_SCE | X86_EFER_LME, PAGED_CR0, &out),
                  -KEEL_EPERM);
}

TEST(efer_lme_changes_with_paging_off)
{
        uint64_t out;

        EXPECT_EQ(x86_efer_write(0, X86_EFER_LME, X86_CR0_PE, &out), 0);
        EXPECT_EQ(out, X86_EFER_LME);
        EXPECT_EQ(x86_efer_write(X86_EFER_LME, 0, 0, &out), 0);
        EXPECT_EQ(out, 0);
}

TEST(efer_reserved_bits)
{
        uint64_t out;

        for (unsigned bit = 0; bit < 64; bit++) {
                uint64_t b = 1ull << bit;

                if (X86_EFER_GUEST_BITS & b)
                        continue;
                EXPECT_EQ(x86_efer_write(LONG_EFER, LONG_EFER | b, PAGED_CR0, &out), -KEEL_EPERM);
                EXPECT_EQ(x86_efer_write(0, b, 0, &out), -KEEL_EPERM);
        }
        /* SVME: the CPU's own, hidden from the guest */
        EXPECT_EQ(x86_efer_write(LONG_EFER, LONG_EFER | X86_EFER_SVME, PAGED_CR0, &out),
                  -KEEL_EPERM);
}

TEST(efer_lma_is_the_cpus)
{
        uint64_t out;

        /* written LMA is ignored both ways: it follows CR0.PG and LME, not WRMSR */
        EXPECT_EQ(x86_efer_write(LONG_EFER, LONG_EFER & ~X86_EFER_LMA, PAGED_CR0, &out), 0);
        EXPECT_EQ(out, LONG_EFER);
        EXPECT_EQ(x86_efer_write(0, X86_EFER_LMA, 0, &out), 0);
        EXPECT_EQ(out, 0);
}

/* 48-bit canonical form: bits 63:47 copies of bit 47. */
TEST(canonical_addresses)
{
        EXPECT_TRUE(x86_canonical(0));
        EXPECT_TRUE(x86_canonical(0x00007fffffffffffull));
        EXPECT_TRUE(x86_canonical(0xffff800000000000ull));
        EXPECT_TRUE(x86_canonical(~0ull));
        EXPECT_FALSE(x86_canonical(0x0000800000000000ull));
        EXPECT_FALSE(x86_canonical(0xffff7fffffffffffull));
        EXPECT_FALSE(x86_canonical(0x8000000000000000ull));
        EXPECT_FALSE(x86_canonical(0x00ff000000001000ull));
        EXPECT_FALSE(x86_canonical(1ull << 56)); /* LA57's canonical form is not offered */
}

TEST(tsc_aux_reserved_bits)
{
        EXPECT_TRUE(X86_TSC_AUX_VALID(0xffffffffull));
        EXPECT_FALSE(X86_TSC_AUX_VALID(1ull << 32));
        EXPECT_FALSE(X86_TSC_AUX_VALID(~0ull));
}

TEST_MAIN()
