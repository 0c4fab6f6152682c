/*
 * Tests for arch/x86_64/include/arch/ram_layout.h: an x86 VM's RAM below, at and above the
 * hole below 4 GiB, and sizes the layout refuses; the device space stays outside the RAM.
 */
#include <arch/ram_layout.h>
#include <arch/vioapic.h>
#include <arch/vlapic.h>

#include "test.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* True if guest-physical `a` is RAM in the layout out[0..n). */
static bool is_ram(const struct gmem_range *out, unsigned n, uint64_t a)
{
        for (unsigned i = 0; i < n; i++)
                if (a - out[i].base < out[i].size)
                        return true;
        return false;
}

static void expect_layout(uint64_t size, unsigned n, uint64_t low, uint64_t high)
{
        struct gmem_range out[2] = {{1, 1}, {1, 1}};

        EXPECT_EQ(x86_ram_layout(size, out), n);
        EXPECT_EQ(out[0].base, 0);
        EXPECT_EQ(out[0].size, low);
        if (n == 2) {
                EXPECT_EQ(out[1].base, 4 * GiB);
                EXPECT_EQ(out[1].size, high);
                EXPECT_EQ(out[0].size + out[1].size, size);
        } else {
                EXPECT_EQ(out[1].base, 1); /* untouched */
        }
        /* Every device page is outside the RAM. */
        EXPECT_FALSE(is_ram(out, n, X86_GUEST_DEVICES_BASE));
        EXPECT_FALSE(is_ram(out, n, VIOAPIC_BASE));
        EXPECT_FALSE(is_ram(out, n, VLAPIC_BASE));
        EXPECT_FALSE(is_ram(out, n, 4 * GiB - 1));
        EXPECT_FALSE(is_ram(out, n, X86_RAM_LOW_MAX));
}

TEST(below_the_hole)
{
        expect_layout(2 * MiB, 1, 2 * MiB, 0);
        expect_layout(512 * MiB, 1, 512 * MiB, 0);
        expect_layout(3 * GiB - 2 * MiB, 1, 3 * GiB - 2 * MiB, 0);
}

TEST(at_the_hole)
{
        expect_layout(3 * GiB, 1, 3 * GiB, 0);
}

TEST(above_the_hole)
{
        expect_layout(3 * GiB + 2 * MiB, 2, 3 * GiB, 2 * MiB);
        /* 3328 MiB: one block to 0xd0000000 before; now 3 GiB + 256 MiB from 4 GiB */
        expect_layout(3328 * MiB, 2, 3 * GiB, 256 * MiB);
        expect_layout(4 * GiB, 2, 3 * GiB, GiB);
        expect_layout(4608 * MiB, 2, 3 * GiB, 1536 * MiB);
        expect_layout(X86_RAM_MAX, 2, 3 * GiB, X86_RAM_MAX - 3 * GiB);
}

TEST(odd_and_refused_sizes)
{
        struct gmem_range out[2] = {{7, 7}, {7, 7}};

        /* one page over the hole (the config asks for 2 MiB multiples; the layout does not) */
        expect_layout(3 * GiB + 4096, 2, 3 * GiB, 4096);
        expect_layout(4096, 1, 4096, 0);
        EXPECT_EQ(x86_ram_layout(0, out), 0);
        EXPECT_EQ(x86_ram_layout(X86_RAM_MAX + 2 * MiB, out), 0);
        EXPECT_EQ(x86_ram_layout(UINT64_MAX, out), 0);
        EXPECT_EQ(x86_ram_layout(UINT64_MAX - 3 * GiB + 1, out), 0);
        EXPECT_EQ(out[0].base, 7); /* refused: nothing written */
        EXPECT_EQ(out[1].size, 7);
}

TEST_MAIN()
