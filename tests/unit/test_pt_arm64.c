/*
 * arm64 VMSAv8-64 descriptors (Arm ARM D8.3, 4 KiB granule): exact bit patterns of Keel's EL2
 * stage-1 and stage-2 formats, and stage-2 tables built by the generic walker.
 *   valid 0, table/page 1, AttrIndx 4:2 (stage 1) / MemAttr 5:2 (stage 2), AP 7:6 / S2AP 7:6,
 *   SH 9:8, AF 10, XN 54.
 */
#include <stdlib.h>
#include <string.h>

#include <keel/errno.h>
#include <keel/palloc.h>
#include <keel/pt.h>

#include <arch/pt_arm64.h>

#include "test.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define XN  (1ull << 54)

TEST(stage2_entries)
{
        const struct pt_format *f = &arm64_pt_s2;

        EXPECT_EQ(f->max_leaf_level, 2);
        EXPECT_EQ(f->table(hpa(0x5000)), 0x5003);
        /* 2 MiB block, normal write-back, inner shareable, AF, read+write, executable. */
        EXPECT_EQ(f->leaf(hpa(0x40000000), 1, PT_RWX), 0x400007fd);
        /* The same as a 4 KiB page: bit 1 set (page descriptor). */
        EXPECT_EQ(f->leaf(hpa(0x40001000), 0, PT_RWX), 0x400017ff);
        /* Read-only, not executable. */
        EXPECT_EQ(f->leaf(hpa(0x40000000), 1, PT_READ), 0x4000077d | XN);
        /* Device-nGnRE, not shareable-marked, no execute. */
        EXPECT_EQ(f->leaf(hpa(0x9000000), 0, PT_READ | PT_WRITE | PT_UNCACHED), 0x90004c7 | XN);
        /* 1 GiB block. */
        EXPECT_EQ(f->leaf(hpa(GIB), 2, PT_RWX), GIB | 0x7fd);
}

TEST(el2_entries)
{
        const struct pt_format *f = &arm64_pt_el2;

        EXPECT_EQ(f->table(hpa(0x0000fffffffff000ull)), 0x0000fffffffff003ull);
        /* Normal (MAIR slot 0), AP[1] set (RES1 at EL2), AF, inner shareable. */
        EXPECT_EQ(f->leaf(hpa(0x40000000), 1, PT_RWX), 0x40000741);
        EXPECT_EQ(f->leaf(hpa(0x40000000), 1, PT_READ | PT_EXEC), 0x400007c1);
        /* Device (MAIR slot 1), execute-never. */
        EXPECT_EQ(f->leaf(hpa(0x8000000), 0, PT_READ | PT_WRITE | PT_UNCACHED), 0x8000447 | XN);
}

TEST(decoding)
{
        const struct pt_format *s2 = &arm64_pt_s2, *el2 = &arm64_pt_el2;
        pte_t blk = s2->leaf(hpa(0x80200000), 1, PT_READ | PT_WRITE);
        pte_t dev = el2->leaf(hpa(0x9000000), 0, PT_READ | PT_WRITE | PT_UNCACHED);

        EXPECT_TRUE(s2->present(blk));
        EXPECT_TRUE(s2->is_leaf(blk, 1));
        EXPECT_TRUE(!s2->is_leaf(s2->table(hpa(0x1000)), 1));
        EXPECT_TRUE(s2->is_leaf(s2->leaf(hpa(0x1000), 0, PT_READ), 0));
        EXPECT_EQ(hpa_raw(s2->addr(blk, 1)), 0x80200000);
        EXPECT_EQ(s2->attrs(blk, 1), PT_READ | PT_WRITE);
        EXPECT_EQ(el2->attrs(dev, 0), PT_READ | PT_WRITE | PT_UNCACHED);
        EXPECT_EQ(el2->attrs(el2->leaf(hpa(0), 2, PT_RWX), 2), PT_RWX);
        EXPECT_TRUE(!s2->present(0));
}

TEST(stage2_tables_through_the_walker)
{
        struct palloc pa;
        struct mem_range r;
        struct pt pt;
        void *mem = aligned_alloc(2 * MIB, 2 * MIB);
        hpa_t o;
        unsigned a, l;

        ASSERT_TRUE(mem != NULL);
        r = (struct mem_range){hpa((uint64_t)(uintptr_t)mem), 512};
        ASSERT_TRUE(palloc_init(&pa, &r, 1) == 0);
        ASSERT_TRUE(pt_init(&pt, &arm64_pt_s2, &pa) == 0);
        /* Guest RAM at 1 GiB (QEMU virt style): one 1 GiB block and a 2 MiB + 4 KiB tail. */
        EXPECT_EQ(pt_map(&pt, GIB, hpa(2 * GIB), GIB, PT_RWX), 0);
        EXPECT_EQ(pt_map(&pt, 2 * GIB, hpa(4 * GIB), 2 * MIB + 0x1000, PT_RWX), 0);
        EXPECT_EQ(pt_lookup(&pt, GIB + 0x1234, &o, &a, &l), 0);
        EXPECT_EQ(hpa_raw(o), 2 * GIB + 0x1234);
        EXPECT_EQ(l, 2);
        EXPECT_EQ(a, PT_RWX);
        EXPECT_EQ(pt_lookup(&pt, 2 * GIB + 2 * MIB + 0xabc, &o, &a, &l), 0);
        EXPECT_EQ(hpa_raw(o), 4 * GIB + 2 * MIB + 0xabc);
        EXPECT_EQ(l, 0);
        EXPECT_EQ(pt_lookup(&pt, 2 * GIB + 2 * MIB + 0x1000, &o, &a, &l), -KEEL_ENOENT);
        EXPECT_EQ(pt_lookup(&pt, 0x9000000, &o, &a, &l), -KEEL_ENOENT);
        /* Overlap is refused and leaves the mapping as it was. */
        EXPECT_EQ(pt_map(&pt, GIB + 4 * MIB, hpa(0), 2 * MIB, PT_RWX), -KEEL_EEXIST);
        EXPECT_EQ(pt_lookup(&pt, GIB + 4 * MIB, &o, &a, &l), 0);
        EXPECT_EQ(hpa_raw(o), 2 * GIB + 4 * MIB);
        pt_destroy(&pt);
        free(mem);
}

/*
 * Stage 2, a 1 GiB block split by unmapping one page: 2 MiB blocks and 4 KiB pages with the
 * block's MemAttr, S2AP, SH, AF and XN, each equal to what the format builds directly; the
 * split needs break-before-make, so the live tables' flush hook runs once per split level.
 */
static unsigned flushes;

static void count_flush(const struct pt *pt, uint64_t in, uint64_t size)
{
        (void)pt;
        (void)in;
        (void)size;
        flushes++;
}

TEST(stage2_split_keeps_attributes)
{
        const unsigned attrs[] = {PT_READ | PT_WRITE, PT_RWX | PT_UNCACHED, PT_READ};
        void *mem = aligned_alloc(2 * MIB, 2 * MIB);

        ASSERT_TRUE(mem != NULL);
        for (unsigned i = 0; i < 3; i++) {
                struct palloc pa;
                struct mem_range r = {hpa((uint64_t)(uintptr_t)mem), 512};
                struct pt pt;
                const pte_t *l1, *l2, *l3;
                unsigned at = attrs[i];

                ASSERT_TRUE(palloc_init(&pa, &r, 1) == 0);
                ASSERT_TRUE(pt_init(&pt, &arm64_pt_s2, &pa) == 0);
                ASSERT_TRUE(pt_map(&pt, GIB, hpa(3 * GIB), GIB, at) == 0);
                pt.flush = count_flush;
                flushes = 0;
                EXPECT_EQ(pt_unmap(&pt, GIB + 4 * MIB + 0x1000, 0x1000), 0);
                EXPECT_EQ(flushes, 2);
                l1 = (const pte_t *)(uintptr_t)(((const pte_t *)(uintptr_t)hpa_raw(pt.root))[0] &
                                                ARM64_PTE_ADDR_MASK);
                l2 = (const pte_t *)(uintptr_t)(l1[1] & ARM64_PTE_ADDR_MASK);
                EXPECT_EQ(l2[0], arm64_pt_s2.leaf(hpa(3 * GIB), 1, at));
                EXPECT_EQ(l2[0] & 3, 1ull); /* block */
                EXPECT_EQ(l2[1], arm64_pt_s2.leaf(hpa(3 * GIB + 2 * MIB), 1, at));
                EXPECT_EQ(l2[2] & 3, 3ull); /* table */
                l3 = (const pte_t *)(uintptr_t)(l2[2] & ARM64_PTE_ADDR_MASK);
                EXPECT_EQ(l3[0], arm64_pt_s2.leaf(hpa(3 * GIB + 4 * MIB), 0, at));
                EXPECT_EQ(l3[0] & 3, 3ull); /* page */
                EXPECT_EQ(l3[1], 0);
                EXPECT_EQ(l3[2] & ~ARM64_PTE_ADDR_MASK, (l2[0] & ~ARM64_PTE_ADDR_MASK) | 2);
                pt_destroy(&pt);
        }
        free(mem);
}

TEST_MAIN()
