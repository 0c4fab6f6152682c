/*
 * x86 long-mode entry formats: exact bit patterns (AMD APM vol. 2 ch. 5 / Intel SDM vol. 3A
 * ch. 4: P=0 RW=1 US=2 PWT=3 PCD=4 A=5 D=6 PS=7, NX=63) and tables built by the generic walker.
 */
#include <keel/errno.h>
#include <keel/palloc.h>
#include <keel/pt.h>

#include <arch/pt_x86.h>

#include "test.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)

static const pte_t *table_at(hpa_t a)
{
        return (const pte_t *)(uintptr_t)hpa_raw(a);
}

/* The table a non-leaf entry points at (fake arch: hpa == pointer). */
static const pte_t *next_table(pte_t e)
{
        return table_at(hpa(e & X86_PTE_ADDR_MASK));
}

TEST(bit_positions)
{
        EXPECT_EQ(X86_PTE_P, 0x1);
        EXPECT_EQ(X86_PTE_RW, 0x2);
        EXPECT_EQ(X86_PTE_US, 0x4);
        EXPECT_EQ(X86_PTE_PWT, 0x8);
        EXPECT_EQ(X86_PTE_PCD, 0x10);
        EXPECT_EQ(X86_PTE_A, 0x20);
        EXPECT_EQ(X86_PTE_D, 0x40);
        EXPECT_EQ(X86_PTE_PS, 0x80);
        EXPECT_EQ(X86_PTE_NX, 0x8000000000000000ull);
}

TEST(npt_entries)
{
        const struct pt_format *f = &x86_pt_npt;

        EXPECT_EQ(f->max_leaf_level, 1);
        /* Tables: P|RW|US|A. */
        EXPECT_EQ(f->table(hpa(0x5000)), 0x5027);
        EXPECT_EQ(f->table(hpa(0x000ffffffffff000ull)), 0x000ffffffffff027ull);
        /* 2 MiB RW leaf: P|RW|US|A|D|PS. */
        EXPECT_EQ(f->leaf(hpa(0x40000000), 1, PT_READ | PT_WRITE), 0x400000e7);
        /* 4 KiB read-only leaf: US even without PT_USER, no RW, no PS. */
        EXPECT_EQ(f->leaf(hpa(0x1234000), 0, PT_READ), 0x1234065);
        EXPECT_EQ(f->leaf(hpa(0x1234000), 0, PT_READ | PT_USER), 0x1234065);
        /* Uncached: PCD|PWT. */
        EXPECT_EQ(f->leaf(hpa(0xfee00000), 0, PT_READ | PT_WRITE | PT_UNCACHED), 0xfee0007f);
        /* PT_EXEC changes nothing and NX is never set. */
        EXPECT_EQ(f->leaf(hpa(0x200000), 1, PT_RWX), f->leaf(hpa(0x200000), 1, PT_READ | PT_WRITE));
        EXPECT_EQ(f->leaf(hpa(0x200000), 1, PT_READ) & X86_PTE_NX, 0);
}

TEST(host_entries)
{
        const struct pt_format *f = &x86_pt_host;

        EXPECT_EQ(f->max_leaf_level, 1);
        EXPECT_EQ(x86_pt_host_1g.max_leaf_level, 2);
        EXPECT_EQ(f->table(hpa(0x7000)), 0x7027);
        /* 2 MiB RW leaf: P|RW|A|D|PS, supervisor. */
        EXPECT_EQ(f->leaf(hpa(0x200000), 1, PT_RWX), 0x2000e3);
        /* 4 KiB uncached RW (e.g. the local APIC): P|RW|PWT|PCD|A|D. */
        EXPECT_EQ(f->leaf(hpa(0xfee00000), 0, PT_READ | PT_WRITE | PT_UNCACHED), 0xfee0007b);
        /* Read-only, and user. */
        EXPECT_EQ(f->leaf(hpa(0x3000), 0, PT_READ), 0x3061);
        EXPECT_EQ(f->leaf(hpa(0x3000), 0, PT_READ | PT_USER), 0x3065);
        /* 1 GiB leaf (only the 1g variant creates them): P|A|D|PS. */
        EXPECT_EQ(x86_pt_host_1g.leaf(hpa(0x40000000), 2, PT_READ), 0x400000e1);
        /* The highest 52-bit page. */
        EXPECT_EQ(f->leaf(hpa(0x000ffffffffff000ull), 0, PT_READ | PT_WRITE),
                  0x000ffffffffff063ull);
        EXPECT_EQ(f->leaf(hpa(0x1000), 0, PT_READ) & X86_PTE_NX, 0);
}

TEST(decoding)
{
        const struct pt_format *f = &x86_pt_npt;

        EXPECT_FALSE(f->present(0));
        EXPECT_FALSE(f->present(X86_PTE_RW | X86_PTE_US | 0x5000));
        EXPECT_TRUE(f->present(0x5027));
        EXPECT_TRUE(f->is_leaf(0x400000e7, 1));
        EXPECT_FALSE(f->is_leaf(0x5027, 1));
        EXPECT_TRUE(x86_pt_host_1g.is_leaf(0x400000e1, 2));
        EXPECT_FALSE(x86_pt_host_1g.is_leaf(0x5027, 2));
        EXPECT_FALSE(f->is_leaf(0x5027 | X86_PTE_PS, 3)); /* PS is reserved in a PML4E */
        /* The PAT bit of a large leaf (bit 12) is not part of its address. */
        EXPECT_EQ(hpa_raw(f->addr(0x40001000 | 0xe7, 1)), 0x40000000);
        EXPECT_EQ(hpa_raw(x86_pt_host_1g.addr(0x40001000 | 0xe1, 2)), 0x40000000);
        /* NX, bits 52-62 and the software bits 9-11 are not address bits either. */
        EXPECT_EQ(hpa_raw(f->addr(0xfff0000012345e27ull, 1)), 0x12345000);
        EXPECT_EQ(hpa_raw(f->addr(0xfff0000012345e67ull, 0)), 0x12345000);
        /* Attributes describe what the entry permits. */
        EXPECT_EQ(f->attrs(0x400000e7, 1), PT_READ | PT_WRITE | PT_EXEC | PT_USER);
        EXPECT_EQ(f->attrs(0xfee0007b, 0), PT_READ | PT_WRITE | PT_EXEC | PT_UNCACHED);
        EXPECT_EQ(f->attrs(0x3061, 0), PT_READ | PT_EXEC);
        EXPECT_EQ(f->attrs(0x3061 | X86_PTE_NX, 0), PT_READ);
        /* Round trip through leaf() for every attribute combination. */
        for (unsigned a = 0; a < 32; a++) {
                unsigned host = x86_pt_host.attrs(x86_pt_host.leaf(hpa(0x200000), 1, a), 1);
                unsigned npt = x86_pt_npt.attrs(x86_pt_npt.leaf(hpa(0x200000), 1, a), 1);
                unsigned want = (a & (PT_WRITE | PT_USER | PT_UNCACHED)) | PT_READ | PT_EXEC;

                EXPECT_EQ(host, want);
                EXPECT_EQ(npt, want | PT_USER);
                EXPECT_EQ(hpa_raw(x86_pt_npt.addr(x86_pt_npt.leaf(hpa(0x200000), 1, a), 1)),
                          0x200000);
        }
}

struct env {
        struct palloc pa;
        void *mem;
        uint64_t start_free;
};

static bool env_init(struct env *env)
{
        struct mem_range r;

        memset(env, 0, sizeof(*env));
        env->mem = aligned_alloc(2 * MIB, 2 * MIB);
        if (!env->mem)
                return false;
        r = (struct mem_range){hpa((uint64_t)(uintptr_t)env->mem), 512};
        if (palloc_init(&env->pa, &r, 1) != 0)
                return false;
        env->start_free = palloc_free_pages(&env->pa);
        return true;
}

TEST(npt_tables_through_the_walker)
{
        struct env env;
        struct pt pt;
        const pte_t *pml4, *pdpt, *pd, *ptab;
        hpa_t o;
        unsigned a, l;

        ASSERT_TRUE(env_init(&env));
        ASSERT_TRUE(pt_init(&pt, &x86_pt_npt, &env.pa) == 0);
        /* Guest 0..2 MiB+8 KiB at host 1 GiB, writable; guest 1 GiB read-only 4 KiB page. */
        ASSERT_TRUE(pt_map(&pt, 0, hpa(0x40000000), 2 * MIB + 0x2000, PT_READ | PT_WRITE) == 0);
        ASSERT_TRUE(pt_map(&pt, GIB, hpa(0x7000), 0x1000, PT_READ) == 0);
        EXPECT_EQ(pt.table_pages, 6); /* PML4, PDPT, PD+PT for 0..2 MiB+8K, PD+PT for 1 GiB */

        pml4 = table_at(pt.root);
        EXPECT_EQ(pml4[0] & 0xfff, 0x027);
        EXPECT_EQ(pml4[1], 0);
        pdpt = next_table(pml4[0]);
        EXPECT_EQ(pdpt[0] & 0xfff, 0x027);
        EXPECT_EQ(pdpt[1] & 0xfff, 0x027);
        pd = next_table(pdpt[0]);
        EXPECT_EQ(pd[0], 0x400000e7);
        EXPECT_EQ(pd[1] & 0xfff, 0x027);
        EXPECT_EQ(pd[2], 0);
        ptab = next_table(pd[1]);
        EXPECT_EQ(ptab[0], 0x40200067);
        EXPECT_EQ(ptab[1], 0x40201067);
        EXPECT_EQ(ptab[2], 0);
        ptab = next_table(next_table(pdpt[1])[0]);
        EXPECT_EQ(ptab[0], 0x7065);

        EXPECT_EQ(pt_lookup(&pt, 0x1fffff, &o, &a, &l), 0);
        EXPECT_EQ(hpa_raw(o), 0x401fffff);
        EXPECT_EQ(l, 1);
        EXPECT_EQ(a, PT_READ | PT_WRITE | PT_EXEC | PT_USER);
        EXPECT_EQ(pt_lookup(&pt, 0x201abc, &o, &a, &l), 0);
        EXPECT_EQ(hpa_raw(o), 0x40201abc);
        EXPECT_EQ(l, 0);
        EXPECT_EQ(pt_lookup(&pt, GIB + 0xfff, &o, &a, &l), 0);
        EXPECT_EQ(hpa_raw(o), 0x7fff);
        EXPECT_EQ(a, PT_READ | PT_EXEC | PT_USER);
        EXPECT_EQ(pt_lookup(&pt, 0x202000, &o, &a, &l), -KEEL_ENOENT);
        EXPECT_EQ(pt_map(&pt, 0x201000, hpa(0), 0x1000, PT_READ), -KEEL_EEXIST);
        pt_destroy(&pt);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free);
        free(env.mem);
}

TEST(host_identity_map_2m_and_1g)
{
        struct env env;
        struct pt p2, p1;
        const pte_t *pdpt;
        hpa_t o;
        unsigned l;

        ASSERT_TRUE(env_init(&env));
        /* The first 4 GiB identity-mapped, as Keel maps itself. */
        ASSERT_TRUE(pt_init(&p2, &x86_pt_host, &env.pa) == 0);
        ASSERT_TRUE(pt_map(&p2, 0, hpa(0), 4 * GIB, PT_RWX) == 0);
        EXPECT_EQ(p2.table_pages, 6); /* PML4, PDPT, 4 PDs */
        pdpt = next_table(table_at(p2.root)[0]);
        for (unsigned i = 0; i < 4; i++) {
                const pte_t *pd = next_table(pdpt[i]);

                EXPECT_EQ(pdpt[i] & 0xfff, 0x027);
                EXPECT_EQ(pd[0], i * GIB + 0xe3);
                EXPECT_EQ(pd[511], i * GIB + 511 * 2 * MIB + 0xe3);
        }
        EXPECT_EQ(pdpt[4], 0);
        EXPECT_EQ(pt_lookup(&p2, 0xfee00123, &o, NULL, &l), 0);
        EXPECT_EQ(hpa_raw(o), 0xfee00123);
        EXPECT_EQ(l, 1);

        ASSERT_TRUE(pt_init(&p1, &x86_pt_host_1g, &env.pa) == 0);
        ASSERT_TRUE(pt_map(&p1, 0, hpa(0), 4 * GIB, PT_RWX) == 0);
        EXPECT_EQ(p1.table_pages, 2); /* PML4, PDPT of 1 GiB leaves */
        pdpt = next_table(table_at(p1.root)[0]);
        for (unsigned i = 0; i < 4; i++)
                EXPECT_EQ(pdpt[i], i * GIB + 0xe3);
        EXPECT_EQ(pt_lookup(&p1, 3 * GIB + 5, &o, NULL, &l), 0);
        EXPECT_EQ(hpa_raw(o), 3 * GIB + 5);
        EXPECT_EQ(l, 2);
        pt_destroy(&p2);
        pt_destroy(&p1);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free);
        free(env.mem);
}

/*
 * Splitting keeps each format's exact bits: a 4 KiB piece of a 2 MiB leaf has PS clear (bit 7
 * is PAT there, and stays clear) and the same RW/US/PCD/PWT/NX; a 2 MiB piece of a 1 GiB leaf
 * keeps PS. The split entries equal what the format builds for that size directly.
 */
static void check_split(const struct pt_format *f, unsigned attrs)
{
        struct env env;
        struct pt pt;
        const pte_t *pdpt, *pd, *ptab;
        const uint64_t out = 4 * GIB;

        ASSERT_TRUE(env_init(&env));
        ASSERT_TRUE(pt_init(&pt, f, &env.pa) == 0);
        ASSERT_TRUE(pt_map(&pt, GIB, hpa(out), GIB, attrs) == 0);
        pdpt = next_table(table_at(pt.root)[0]);
        EXPECT_EQ(pdpt[1], f->leaf(hpa(out), 2, attrs));
        EXPECT_EQ(pdpt[1] & X86_PTE_PS, X86_PTE_PS);
        EXPECT_EQ(pt_unmap(&pt, GIB + 2 * MIB + 0x3000, 0x1000), 0);
        EXPECT_EQ(pt.table_pages, 4);
        pd = next_table(pdpt[1]);
        EXPECT_EQ(pd[0], f->leaf(hpa(out), 1, attrs));
        EXPECT_EQ(pd[511], f->leaf(hpa(out + 511 * 2 * MIB), 1, attrs));
        ptab = next_table(pd[1]);
        EXPECT_EQ(ptab[0], f->leaf(hpa(out + 2 * MIB), 0, attrs));
        EXPECT_EQ(ptab[0] & (X86_PTE_PS | (1ull << 12)), 0);
        EXPECT_EQ(ptab[2] & ~X86_PTE_ADDR_MASK, pd[0] & ~X86_PTE_ADDR_MASK_2M & ~X86_PTE_PS);
        EXPECT_EQ(ptab[3], 0);
        EXPECT_EQ(ptab[511], f->leaf(hpa(out + 4 * MIB - 0x1000), 0, attrs));
        pt_destroy(&pt);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free);
        free(env.mem);
}

TEST(split_keeps_npt_and_ept_bits)
{
        check_split(&x86_pt_npt_1g, PT_READ | PT_WRITE | PT_USER);
        check_split(&x86_pt_npt_1g, PT_READ | PT_UNCACHED | PT_USER);
        check_split(&x86_pt_host_1g, PT_READ | PT_WRITE | PT_UNCACHED);
        check_split(&x86_pt_ept_1g, PT_READ | PT_EXEC);
        check_split(&x86_pt_ept_1g, PT_READ | PT_WRITE | PT_UNCACHED);
}

/* 1 GiB leaves only in the formats for CPUs that have them (Page1GB; EPT cap bit 17). */
TEST(guest_1g_leaves_on_and_off)
{
        const struct pt_format *with[] = {&x86_pt_npt_1g, &x86_pt_ept_1g};
        const struct pt_format *without[] = {&x86_pt_npt, &x86_pt_ept};
        struct env env;

        ASSERT_TRUE(env_init(&env));
        for (unsigned i = 0; i < 2; i++) {
                struct pt p1, p2;
                unsigned l;

                ASSERT_TRUE(pt_init(&p1, with[i], &env.pa) == 0);
                ASSERT_TRUE(pt_init(&p2, without[i], &env.pa) == 0);
                ASSERT_TRUE(pt_map(&p1, 0, hpa(GIB), 2 * GIB, PT_RWX) == 0);
                ASSERT_TRUE(pt_map(&p2, 0, hpa(GIB), 2 * GIB, PT_RWX) == 0);
                EXPECT_EQ(p1.table_pages, 2); /* PML4, PDPT with two 1 GiB leaves */
                EXPECT_EQ(p2.table_pages, 4); /* PML4, PDPT, two PDs of 2 MiB leaves */
                EXPECT_EQ(pt_lookup(&p1, GIB + 5, NULL, NULL, &l), 0);
                EXPECT_EQ(l, 2);
                EXPECT_EQ(pt_lookup(&p2, GIB + 5, NULL, NULL, &l), 0);
                EXPECT_EQ(l, 1);
                pt_destroy(&p1);
                pt_destroy(&p2);
        }
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free);
        free(env.mem);
}

TEST_MAIN()
