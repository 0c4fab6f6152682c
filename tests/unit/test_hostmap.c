/*
 * Keel's own memory map with W^X (kernel/hostmap.c, docs/memory.md): which regions are
 * accepted, which attributes each page of an identity map ends up with, and what that becomes
 * in the real entry formats Keel loads (x86 host tables with NX, arm64 EL2 stage 1): text
 * read+execute and never writable, rodata read-only and never executable, data writable and
 * never executable, guard pages not mapped at all.
 */
#include <stdlib.h>
#include <string.h>

#include <keel/errno.h>
#include <keel/hostmap.h>
#include <keel/palloc.h>
#include <keel/pt.h>

#include <arch/pt_arm64.h>
#include <arch/pt_x86.h>

#include "test.h"

#define KIB (1ull << 10)
#define MIB (1ull << 20)

#define R   PT_READ
#define RW  (PT_READ | PT_WRITE)
#define RX  (PT_READ | PT_EXEC)
#define RWX (PT_READ | PT_WRITE | PT_EXEC)

/* Table memory: a palloc over host memory (the fake arch's hpa = host pointer). */
struct env {
        struct palloc pa;
        void *mem;
};

static bool env_init(struct env *env, uint64_t pages)
{
        struct mem_range r;

        memset(env, 0, sizeof(*env));
        env->mem = aligned_alloc(2 * MIB, align_up(pages * PAGE_SIZE, 2 * MIB));
        if (!env->mem)
                return false;
        r = (struct mem_range){hpa((uint64_t)(uintptr_t)env->mem), pages};
        return palloc_init(&env->pa, &r, 1) == 0;
}

/* An image laid out as linker/<arch>.lds does, at 4 MiB, and a stack with its guard. */
#define IMG      (4 * MIB)
#define TEXT     (IMG + 4 * KIB)
#define RODATA   (TEXT + 64 * KIB)
#define DATA     (RODATA + 16 * KIB)
#define DATA_END (DATA + 8 * KIB)
#define GUARD    (8 * MIB + 12 * KIB)

static void add_image(struct hostmap *m)
{
        ASSERT_TRUE(hostmap_add(m, TEXT, RODATA - TEXT, RX, "Keel text", HOSTMAP_NO_CPU) == 0);
        ASSERT_TRUE(hostmap_add(m, IMG, TEXT - IMG, R, "Keel's PE headers", HOSTMAP_NO_CPU) == 0);
        ASSERT_TRUE(hostmap_add(m, DATA, DATA_END - DATA, RW, "Keel data", HOSTMAP_NO_CPU) == 0);
        ASSERT_TRUE(hostmap_add(m, RODATA, DATA - RODATA, R, "Keel rodata", HOSTMAP_NO_CPU) == 0);
        ASSERT_TRUE(hostmap_add(m, GUARD, PAGE_SIZE, HOSTMAP_GUARD, "guard page below the stack of",
                                3) == 0);
}

TEST(add_refuses_writable_and_executable)
{
        static struct hostmap m;

        memset(&m, 0, sizeof(m));
        EXPECT_EQ(hostmap_add(&m, 0x1000, 0x1000, RWX, "x", HOSTMAP_NO_CPU), -KEEL_EINVAL);
        EXPECT_EQ(hostmap_add(&m, 0x1000, 0x1000, PT_WRITE | PT_EXEC, "x", HOSTMAP_NO_CPU),
                  -KEEL_EINVAL);
        EXPECT_EQ(hostmap_add(&m, 0x1000, 0x1000, RWX | PT_UNCACHED, "x", HOSTMAP_NO_CPU),
                  -KEEL_EINVAL);
        EXPECT_EQ(m.count, 0u);
        EXPECT_EQ(hostmap_add(&m, 0x1000, 0x1000, RX, "x", HOSTMAP_NO_CPU), 0);
        EXPECT_EQ(hostmap_add(&m, 0x2000, 0x1000, RW, "x", HOSTMAP_NO_CPU), 0);
}

TEST(add_refuses_bad_ranges_and_overlaps)
{
        static struct hostmap m;

        memset(&m, 0, sizeof(m));
        EXPECT_EQ(hostmap_add(&m, 0x1001, 0x1000, R, "x", HOSTMAP_NO_CPU), -KEEL_EINVAL);
        EXPECT_EQ(hostmap_add(&m, 0x1000, 0x800, R, "x", HOSTMAP_NO_CPU), -KEEL_EINVAL);
        EXPECT_EQ(hostmap_add(&m, 0x1000, 0, R, "x", HOSTMAP_NO_CPU), -KEEL_EINVAL);
        EXPECT_EQ(hostmap_add(&m, ~0xfffull, 0x2000, R, "x", HOSTMAP_NO_CPU), -KEEL_EINVAL);
        EXPECT_EQ(hostmap_add(&m, 0x1000, 0x1000, PT_WRITE, "no read", HOSTMAP_NO_CPU),
                  -KEEL_EINVAL);
        EXPECT_EQ(hostmap_add(&m, 0x1000, 0x1000, 1u << 7, "unknown", HOSTMAP_NO_CPU),
                  -KEEL_EINVAL);
        EXPECT_EQ(hostmap_add(&m, 0x4000, 0x2000, R, "a", HOSTMAP_NO_CPU), 0);
        EXPECT_EQ(hostmap_add(&m, 0x5000, 0x1000, R, "b", HOSTMAP_NO_CPU), -KEEL_EEXIST);
        EXPECT_EQ(hostmap_add(&m, 0x3000, 0x2000, R, "c", HOSTMAP_NO_CPU), -KEEL_EEXIST);
        EXPECT_EQ(hostmap_add(&m, 0x3000, 0x1000, HOSTMAP_GUARD, "d", 1), 0);
        EXPECT_EQ(hostmap_add(&m, 0x6000, 0x1000, RW, "e", HOSTMAP_NO_CPU), 0);
        /* Kept sorted by address. */
        ASSERT_TRUE(m.count == 3);
        EXPECT_EQ(m.fixed[0].base, 0x3000ull);
        EXPECT_EQ(m.fixed[1].base, 0x4000ull);
        EXPECT_EQ(m.fixed[2].base, 0x6000ull);
}

TEST(add_full_table)
{
        static struct hostmap m;

        memset(&m, 0, sizeof(m));
        for (unsigned i = 0; i < HOSTMAP_MAX_REGIONS; i++)
                ASSERT_TRUE(hostmap_add(&m, (i + 1) * 0x2000ull, 0x1000, R, "r", HOSTMAP_NO_CPU) ==
                            0);
        EXPECT_EQ(hostmap_add(&m, 0x10000000, 0x1000, R, "r", HOSTMAP_NO_CPU), -KEEL_ENOSPC);
}

/* Every page of [0, 16 MiB) through `fmt`: the attributes the hardware would apply. */
static void check_identity_map(const struct pt_format *fmt, bool honours_nx)
{
        static struct hostmap m;
        struct env env;
        struct pt pt;
        hpa_t out;
        unsigned level, attrs;

        memset(&m, 0, sizeof(m));
        add_image(&m);
        ASSERT_TRUE(env_init(&env, 64));
        ASSERT_TRUE(pt_init(&pt, fmt, &env.pa) == 0);
        EXPECT_EQ(hostmap_map_range(&m, &pt, 0, 16 * MIB, RWX), -KEEL_EINVAL);
        ASSERT_TRUE(hostmap_map_range(&m, &pt, 0, 16 * MIB, RW) == 0);
        for (uint64_t a = 0; a < 16 * MIB; a += PAGE_SIZE) {
                unsigned want = RW, got = 0;
                int err = pt_lookup(&pt, a, &out, &got, &level);

                if (a >= TEXT && a < RODATA)
                        want = RX;
                else if (a >= IMG && a < DATA)
                        want = R;
                if (a == GUARD) {
                        EXPECT_EQ(err, -KEEL_ENOENT);
                        continue;
                }
                ASSERT_TRUE(err == 0);
                EXPECT_EQ(hpa_raw(out), a);
                if (!honours_nx)
                        want |= PT_EXEC; /* the decode reports what the entry permits */
                EXPECT_EQ(got, want);
                EXPECT_FALSE((got & PT_WRITE) && (got & PT_EXEC) && honours_nx);
        }
        /* Away from the regions the largest leaves, 4 KiB pages around them. */
        ASSERT_TRUE(pt_lookup(&pt, 12 * MIB, &out, &attrs, &level) == 0);
        EXPECT_EQ(level, 1u);
        ASSERT_TRUE(pt_lookup(&pt, TEXT, &out, &attrs, &level) == 0);
        EXPECT_EQ(level, 0u);
        /* The range is mapped now: mapping it again changes nothing. */
        EXPECT_EQ(hostmap_map_range(&m, &pt, 0, 16 * MIB, RW), -KEEL_EEXIST);
        pt_destroy(&pt);
        free(env.mem);
}

/* A BAR (what arch_map_device maps): uncached pages, whole pages, RAM refused, idempotent. */
TEST(map_device_pages)
{
        struct env env;
        struct pt pt;
        hpa_t out;
        unsigned attrs;

        ASSERT_TRUE(env_init(&env, 64));
        ASSERT_TRUE(pt_init(&pt, &x86_pt_host_nx, &env.pa) == 0);
        EXPECT_EQ(hostmap_map_device(&pt, hpa(32 * MIB), 0), -KEEL_EINVAL);
        EXPECT_EQ(hostmap_map_device(&pt, hpa(UINT64_MAX - 100), 200), -KEEL_EINVAL);
        /* 0x100 bytes from 0xf80 into a page, over a page boundary: both pages. */
        ASSERT_TRUE(hostmap_map_device(&pt, hpa(32 * MIB + 0xf80), 0x100) == 0);
        for (uint64_t a = 32 * MIB; a < 32 * MIB + 2 * PAGE_SIZE; a += PAGE_SIZE) {
                ASSERT_TRUE(pt_lookup(&pt, a, &out, &attrs, NULL) == 0);
                EXPECT_EQ(hpa_raw(out), a);
                EXPECT_EQ(attrs, PT_READ | PT_WRITE | PT_UNCACHED);
        }
        EXPECT_EQ(pt_lookup(&pt, 32 * MIB + 2 * PAGE_SIZE, &out, &attrs, NULL), -KEEL_ENOENT);
        /* Mapped uncached already: fine, again and overlapping. */
        EXPECT_EQ(hostmap_map_device(&pt, hpa(32 * MIB), 3 * PAGE_SIZE), 0);
        /* A cacheable page (RAM) is never remapped as a device. */
        ASSERT_TRUE(pt_map(&pt, 40 * MIB, hpa(40 * MIB), PAGE_SIZE, RW) == 0);
        EXPECT_EQ(hostmap_map_device(&pt, hpa(40 * MIB - PAGE_SIZE), 2 * PAGE_SIZE), -KEEL_EEXIST);
        ASSERT_TRUE(pt_lookup(&pt, 40 * MIB, &out, &attrs, NULL) == 0);
        EXPECT_EQ(attrs, RW);
        pt_destroy(&pt);
        free(env.mem);
}

TEST(identity_map_x86_nx)
{
        check_identity_map(&x86_pt_host_nx, true);
}

TEST(identity_map_arm64_el2)
{
        check_identity_map(&arm64_pt_el2, true);
}

TEST(identity_map_x86_without_nx_keeps_write_protection)
{
        /* A CPU without NX: everything executable, but text and rodata still read-only. */
        check_identity_map(&x86_pt_host, false);
}

/* The bits each kind of region becomes in the entries the MMU reads. */
TEST(entry_bits_x86)
{
        const struct pt_format *f = &x86_pt_host_nx;
        pte_t text = f->leaf(hpa(0x200000), 0, RX), ro = f->leaf(hpa(0x201000), 0, R);
        pte_t data = f->leaf(hpa(0x400000), 1, RW);

        EXPECT_EQ(text & (X86_PTE_NX | X86_PTE_RW | X86_PTE_US), 0ull);
        EXPECT_EQ(ro & (X86_PTE_NX | X86_PTE_RW | X86_PTE_US), X86_PTE_NX);
        EXPECT_EQ(data & (X86_PTE_NX | X86_PTE_RW | X86_PTE_US), X86_PTE_NX | X86_PTE_RW);
        EXPECT_EQ(data, 0x4000e3ull | X86_PTE_NX | X86_PTE_RW); /* 2 MiB leaf: P A D PS */
        /* The other formats still ignore PT_EXEC (NX is reserved without EFER.NXE). */
        EXPECT_EQ(x86_pt_host.leaf(hpa(0x200000), 0, R) & X86_PTE_NX, 0ull);
        EXPECT_EQ(x86_pt_npt.leaf(hpa(0x200000), 0, R) & X86_PTE_NX, 0ull);
}

TEST(entry_bits_arm64_el2)
{
        const struct pt_format *f = &arm64_pt_el2;
        pte_t text = f->leaf(hpa(0x40000000), 0, RX), ro = f->leaf(hpa(0x40001000), 0, R);
        pte_t data = f->leaf(hpa(0x40200000), 1, RW);

        EXPECT_EQ(text & (ARM64_PTE_XN | ARM64_PTE_AP_RO), ARM64_PTE_AP_RO);
        EXPECT_EQ(ro & (ARM64_PTE_XN | ARM64_PTE_AP_RO), ARM64_PTE_XN | ARM64_PTE_AP_RO);
        EXPECT_EQ(data & (ARM64_PTE_XN | ARM64_PTE_AP_RO), ARM64_PTE_XN);
}

TEST(describe)
{
        static struct hostmap m;
        char buf[96];

        memset(&m, 0, sizeof(m));
        add_image(&m);
        hostmap_describe(&m, TEXT + 0x123, buf, sizeof(buf));
        EXPECT_STREQ(buf, "in Keel text");
        hostmap_describe(&m, GUARD + 0xff8, buf, sizeof(buf));
        EXPECT_STREQ(buf, "in the guard page below the stack of cpu 3");
        hostmap_describe(&m, GUARD + PAGE_SIZE, buf, sizeof(buf));
        EXPECT_STREQ(buf, "outside Keel's own regions");
        EXPECT_TRUE(hostmap_find(&m, DATA_END - 1) != NULL);
        EXPECT_TRUE(hostmap_find(&m, DATA_END) == NULL);
}

TEST_MAIN()
