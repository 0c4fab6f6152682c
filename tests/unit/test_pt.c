/*
 * The generic page-table builder, over a made-up entry format (so nothing here depends on
 * x86): bit 0 present, bit 1 leaf, bits 2..6 the generic attributes, bits 12..51 address.
 */
#include <keel/errno.h>
#include <keel/palloc.h>
#include <keel/pt.h>

#include "test.h"

#define KIB (1ull << 10)
#define MIB (1ull << 20)
#define GIB (1ull << 30)

#define T_PRESENT   1ull
#define T_LEAF      2ull
#define T_ADDR_MASK 0x000ffffffffff000ull

static pte_t t_table(hpa_t next)
{
        return hpa_raw(next) | T_PRESENT;
}

static pte_t t_leaf(hpa_t pa, unsigned level, unsigned attrs)
{
        (void)level;
        return hpa_raw(pa) | T_PRESENT | T_LEAF | ((pte_t)attrs << 2);
}

static bool t_present(pte_t e)
{
        return e & T_PRESENT;
}

static bool t_is_leaf(pte_t e, unsigned level)
{
        (void)level;
        return e & T_LEAF;
}

static hpa_t t_addr(pte_t e, unsigned level)
{
        (void)level;
        return hpa(e & T_ADDR_MASK);
}

static unsigned t_attrs(pte_t e, unsigned level)
{
        (void)level;
        return (unsigned)(e >> 2) & 0x1f;
}

#define T_FORMAT(max)                                                                          \
        {                                                                                      \
                .name = "test", .table = t_table, .leaf = t_leaf, .present = t_present,        \
                .is_leaf = t_is_leaf, .addr = t_addr, .attrs = t_attrs, .max_leaf_level = max, \
        }

static const struct pt_format fmt_1g = T_FORMAT(2);
static const struct pt_format fmt_2m = T_FORMAT(1);
static const struct pt_format fmt_4k = T_FORMAT(0);

/* Table memory: a palloc over `pages` pages (one of which holds its bitmap). */
struct env {
        struct palloc pa;
        void *mem;
        uint64_t start_free;
};

static bool env_init(struct env *env, uint64_t pages)
{
        uint64_t bytes = align_up(pages * PAGE_SIZE, 2 * MIB);
        struct mem_range r;

        memset(env, 0, sizeof(*env));
        env->mem = aligned_alloc(2 * MIB, bytes);
        if (!env->mem)
                return false;
        r = (struct mem_range){hpa((uint64_t)(uintptr_t)env->mem), pages};
        if (palloc_init(&env->pa, &r, 1) != 0)
                return false;
        env->start_free = palloc_free_pages(&env->pa);
        return true;
}

static void env_fini(struct env *env)
{
        free(env->mem);
}

/* Expects `in` to translate to `out` through a leaf at `level` with `attrs`. */
#define EXPECT_XLATE(pt, in, out, lvl, at)                                      \
        do {                                                                    \
                hpa_t xl_out = hpa(0);                                          \
                unsigned xl_attrs = 0, xl_level = 99;                           \
                EXPECT_EQ(pt_lookup(pt, in, &xl_out, &xl_attrs, &xl_level), 0); \
                EXPECT_EQ(hpa_raw(xl_out), out);                                \
                EXPECT_EQ(xl_level, lvl);                                       \
                EXPECT_EQ(xl_attrs, at);                                        \
        } while (0)

#define EXPECT_UNMAPPED(pt, in) EXPECT_EQ(pt_lookup(pt, in, NULL, NULL, NULL), -KEEL_ENOENT)

static uint64_t level_bytes(unsigned level)
{
        return PAGE_SIZE << (9 * level);
}

/* Checks the first and last byte of the leaf at `in` and the page-internal offset. */
static void expect_leaf(struct pt *pt, uint64_t in, uint64_t out, unsigned level, unsigned attrs)
{
        uint64_t sz = level_bytes(level);

        EXPECT_XLATE(pt, in, out, level, attrs);
        EXPECT_XLATE(pt, in + 0x123, out + 0x123, level, attrs);
        EXPECT_XLATE(pt, in + sz - 1, out + sz - 1, level, attrs);
}

TEST(init_takes_one_root_page_and_destroy_returns_it)
{
        struct env env;
        struct pt pt;

        ASSERT_TRUE(env_init(&env, 64));
        EXPECT_EQ(pt_init(&pt, &fmt_1g, &env.pa), 0);
        EXPECT_EQ(pt.table_pages, 1);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free - 1);
        EXPECT_UNMAPPED(&pt, 0);
        EXPECT_UNMAPPED(&pt, 0x123456789000ull);
        pt_destroy(&pt);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free);
        env_fini(&env);
}

TEST(init_without_memory_fails)
{
        struct env env;
        struct pt pt;
        hpa_t only;

        ASSERT_TRUE(env_init(&env, 2)); /* bitmap + 1 page */
        ASSERT_TRUE(palloc_alloc(&env.pa, 1, PAGE_SIZE, &only) == 0);
        EXPECT_EQ(pt_init(&pt, &fmt_1g, &env.pa), -KEEL_ENOMEM);
        env_fini(&env);
}

TEST(mix_of_1g_2m_4k_leaves)
{
        struct env env;
        struct pt pt;
        const uint64_t in = 1 * GIB, out = 5 * GIB;
        const uint64_t size = 1 * GIB + 2 * 2 * MIB + 3 * 4 * KIB;
        unsigned at = PT_READ | PT_WRITE;

        ASSERT_TRUE(env_init(&env, 64));
        ASSERT_TRUE(pt_init(&pt, &fmt_1g, &env.pa) == 0);
        EXPECT_EQ(pt_map(&pt, in, hpa(out), size, at), 0);
        /* Root, one PDPT (1 GiB leaf at index 1), one PD for the 2 MiB leaves, one PT. */
        EXPECT_EQ(pt.table_pages, 4);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free - 4);
        expect_leaf(&pt, in, out, 2, at);
        expect_leaf(&pt, in + GIB, out + GIB, 1, at);
        expect_leaf(&pt, in + GIB + 2 * MIB, out + GIB + 2 * MIB, 1, at);
        for (unsigned i = 0; i < 3; i++) {
                uint64_t off = GIB + 4 * MIB + i * PAGE_SIZE;

                expect_leaf(&pt, in + off, out + off, 0, at);
        }
        EXPECT_UNMAPPED(&pt, in - 1);
        EXPECT_UNMAPPED(&pt, in + size);
        EXPECT_UNMAPPED(&pt, 0);
        pt_destroy(&pt);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free);
        env_fini(&env);
}

/* Every page of a range that starts and ends off the 2 MiB grid, and one page either side. */
TEST(every_page_of_an_unaligned_range)
{
        struct env env;
        struct pt pt;
        const uint64_t in = 2 * MIB - 3 * PAGE_SIZE, size = 3 * PAGE_SIZE + 4 * MIB + 5 * PAGE_SIZE;
        const uint64_t out = 0x340000000ull + 2 * MIB - 3 * PAGE_SIZE; /* same offset mod 2 MiB */

        ASSERT_TRUE(env_init(&env, 64));
        ASSERT_TRUE(pt_init(&pt, &fmt_1g, &env.pa) == 0);
        EXPECT_EQ(pt_map(&pt, in, hpa(out), size, PT_READ), 0);
        for (uint64_t va = in - PAGE_SIZE; va < in + size + PAGE_SIZE; va += PAGE_SIZE) {
                unsigned lvl = (va >= 2 * MIB && va < 6 * MIB) ? 1 : 0;

                if (va < in || va >= in + size) {
                        EXPECT_UNMAPPED(&pt, va);
                        EXPECT_UNMAPPED(&pt, va + PAGE_SIZE - 1);
                } else {
                        EXPECT_XLATE(&pt, va, out + (va - in), lvl, PT_READ);
                        EXPECT_XLATE(&pt, va + PAGE_SIZE - 1, out + (va - in) + PAGE_SIZE - 1, lvl,
                                     PT_READ);
                }
        }
        /* Root, PDPT, PD, and two PTs (one below 2 MiB, one above 6 MiB). */
        EXPECT_EQ(pt.table_pages, 5);
        pt_destroy(&pt);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free);
        env_fini(&env);
}

TEST(leaf_size_needs_both_sides_aligned)
{
        struct env env;
        struct pt pt;

        ASSERT_TRUE(env_init(&env, 64));
        ASSERT_TRUE(pt_init(&pt, &fmt_1g, &env.pa) == 0);
        /* Input 1 GiB aligned, output only 4 KiB aligned: 4 KiB leaves throughout. */
        EXPECT_EQ(pt_map(&pt, 0, hpa(0x1000), 4 * MIB, PT_RWX), 0);
        EXPECT_XLATE(&pt, 0, 0x1000, 0, PT_RWX);
        EXPECT_XLATE(&pt, 2 * MIB, 2 * MIB + 0x1000, 0, PT_RWX);
        EXPECT_XLATE(&pt, 4 * MIB - 1, 4 * MIB + 0x1000 - 1, 0, PT_RWX);
        /* Output 2 MiB aligned but not 1 GiB: 2 MiB leaves for a whole 1 GiB. */
        EXPECT_EQ(pt_map(&pt, GIB, hpa(2 * MIB), GIB, PT_READ), 0);
        EXPECT_XLATE(&pt, GIB, 2 * MIB, 1, PT_READ);
        EXPECT_XLATE(&pt, 2 * GIB - 1, GIB + 2 * MIB - 1, 1, PT_READ);
        pt_destroy(&pt);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free);
        env_fini(&env);
}

TEST(max_leaf_level_is_respected)
{
        struct env env;
        struct pt pt2, pt0;

        ASSERT_TRUE(env_init(&env, 64));
        ASSERT_TRUE(pt_init(&pt2, &fmt_2m, &env.pa) == 0);
        EXPECT_EQ(pt_map(&pt2, GIB, hpa(GIB), GIB, PT_READ), 0);
        EXPECT_EQ(pt2.table_pages, 3); /* root, PDPT, one PD of 512 2 MiB leaves */
        expect_leaf(&pt2, GIB, GIB, 1, PT_READ);
        expect_leaf(&pt2, 2 * GIB - 2 * MIB, 2 * GIB - 2 * MIB, 1, PT_READ);

        ASSERT_TRUE(pt_init(&pt0, &fmt_4k, &env.pa) == 0);
        EXPECT_EQ(pt_map(&pt0, 0, hpa(0), 4 * MIB, PT_WRITE), 0);
        EXPECT_EQ(pt0.table_pages, 5); /* root, PDPT, PD, two PTs */
        expect_leaf(&pt0, 0, 0, 0, PT_WRITE);
        expect_leaf(&pt0, 4 * MIB - PAGE_SIZE, 4 * MIB - PAGE_SIZE, 0, PT_WRITE);
        EXPECT_UNMAPPED(&pt0, 4 * MIB);
        pt_destroy(&pt2);
        pt_destroy(&pt0);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free);
        env_fini(&env);
}

/* The figures of docs/benchmarks.md: table pages for 1 GiB of RAM by largest leaf. */
TEST(table_pages_per_gib)
{
        const struct pt_format *fmts[] = {&fmt_1g, &fmt_2m, &fmt_4k};
        const uint64_t want[] = {2, 3, 515};
        struct env env;

        ASSERT_TRUE(env_init(&env, 600));
        for (unsigned i = 0; i < 3; i++) {
                struct pt pt;

                ASSERT_TRUE(pt_init(&pt, fmts[i], &env.pa) == 0);
                EXPECT_EQ(pt_map(&pt, GIB, hpa(4 * GIB), GIB, PT_RWX), 0);
                EXPECT_EQ(pt.table_pages, want[i]);
                pt_destroy(&pt);
        }
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free);
        env_fini(&env);
}

TEST(bad_arguments_are_einval)
{
        struct env env;
        struct pt pt;
        const uint64_t top = 1ull << 48;

        ASSERT_TRUE(env_init(&env, 64));
        ASSERT_TRUE(pt_init(&pt, &fmt_1g, &env.pa) == 0);
        EXPECT_EQ(pt_map(&pt, 0x800, hpa(0), PAGE_SIZE, PT_READ), -KEEL_EINVAL);
        EXPECT_EQ(pt_map(&pt, 0, hpa(0x10), PAGE_SIZE, PT_READ), -KEEL_EINVAL);
        EXPECT_EQ(pt_map(&pt, 0, hpa(0), PAGE_SIZE + 1, PT_READ), -KEEL_EINVAL);
        EXPECT_EQ(pt_map(&pt, 0, hpa(0), 0, PT_READ), -KEEL_EINVAL);
        EXPECT_EQ(pt_map(&pt, 0, hpa(0), PAGE_SIZE, 1u << 7), -KEEL_EINVAL);
        /* Input beyond 48 bits, or wrapping. */
        EXPECT_EQ(pt_map(&pt, top, hpa(0), PAGE_SIZE, PT_READ), -KEEL_EINVAL);
        EXPECT_EQ(pt_map(&pt, top - PAGE_SIZE, hpa(0), 2 * PAGE_SIZE, PT_READ), -KEEL_EINVAL);
        EXPECT_EQ(pt_map(&pt, PAGE_SIZE, hpa(0), UINT64_MAX - PAGE_SIZE + 1, PT_READ),
                  -KEEL_EINVAL);
        EXPECT_EQ(pt_map(&pt, 0xfffffffffffff000ull, hpa(0), PAGE_SIZE, PT_READ), -KEEL_EINVAL);
        /* Output beyond 52 bits, or wrapping. */
        EXPECT_EQ(pt_map(&pt, 0, hpa(1ull << 52), PAGE_SIZE, PT_READ), -KEEL_EINVAL);
        EXPECT_EQ(pt_map(&pt, 0, hpa((1ull << 52) - PAGE_SIZE), 2 * PAGE_SIZE, PT_READ),
                  -KEEL_EINVAL);
        EXPECT_EQ(pt_map(&pt, 0, hpa(0xfffffffffffff000ull), 2 * PAGE_SIZE, PT_READ), -KEEL_EINVAL);
        /* None of that allocated or mapped anything. */
        EXPECT_EQ(pt.table_pages, 1);
        EXPECT_UNMAPPED(&pt, 0);
        EXPECT_UNMAPPED(&pt, top - PAGE_SIZE);
        /* The very last page of each space is fine. */
        EXPECT_EQ(pt_map(&pt, top - PAGE_SIZE, hpa((1ull << 52) - PAGE_SIZE), PAGE_SIZE, PT_READ),
                  0);
        EXPECT_XLATE(&pt, top - 1, (1ull << 52) - 1, 0, PT_READ);
        EXPECT_UNMAPPED(&pt, top);
        EXPECT_UNMAPPED(&pt, UINT64_MAX);
        pt_destroy(&pt);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free);
        env_fini(&env);
}

TEST(overlap_is_eexist_and_changes_nothing)
{
        struct env env;
        struct pt pt;
        uint64_t free_before, tables_before;

        ASSERT_TRUE(env_init(&env, 64));
        ASSERT_TRUE(pt_init(&pt, &fmt_1g, &env.pa) == 0);
        ASSERT_TRUE(pt_map(&pt, 2 * MIB, hpa(0x80000000), 2 * MIB, PT_READ) == 0);
        ASSERT_TRUE(pt_map(&pt, 8 * MIB + PAGE_SIZE, hpa(0x90001000), PAGE_SIZE, PT_WRITE) == 0);
        free_before = palloc_free_pages(&env.pa);
        tables_before = pt.table_pages;

        /* A page inside the 2 MiB leaf. */
        EXPECT_EQ(pt_map(&pt, 3 * MIB, hpa(0), PAGE_SIZE, PT_RWX), -KEEL_EEXIST);
        /* The same 2 MiB again. */
        EXPECT_EQ(pt_map(&pt, 2 * MIB, hpa(0), 2 * MIB, PT_RWX), -KEEL_EEXIST);
        /* Free space first, overlap at the very end (last page of the range). */
        EXPECT_EQ(pt_map(&pt, 0, hpa(0), 2 * MIB + PAGE_SIZE, PT_RWX), -KEEL_EEXIST);
        /* A 2 MiB leaf over a table holding one 4 KiB page. */
        EXPECT_EQ(pt_map(&pt, 8 * MIB, hpa(0), 2 * MIB, PT_RWX), -KEEL_EEXIST);
        /* A 1 GiB leaf over the table holding all of it; and a huge range ending in it. */
        EXPECT_EQ(pt_map(&pt, 0, hpa(0), GIB, PT_RWX), -KEEL_EEXIST);
        EXPECT_EQ(pt_map(&pt, 0x7f0000000000ull - 4 * GIB, hpa(0), 4 * GIB, PT_RWX), 0);
        EXPECT_EQ(pt_map(&pt, 0x7f0000000000ull - 5 * GIB, hpa(0), GIB + PAGE_SIZE, PT_RWX),
                  -KEEL_EEXIST);
        free_before -= pt.table_pages - tables_before; /* the successful 4 GiB map above */
        tables_before = pt.table_pages;

        /* Nothing was allocated by the failures, nothing new is mapped, the old is intact. */
        EXPECT_EQ(palloc_free_pages(&env.pa), free_before);
        EXPECT_EQ(pt.table_pages, tables_before);
        EXPECT_UNMAPPED(&pt, 0);
        EXPECT_UNMAPPED(&pt, 2 * MIB - PAGE_SIZE);
        EXPECT_UNMAPPED(&pt, 8 * MIB);
        EXPECT_UNMAPPED(&pt, 0x7f0000000000ull - 5 * GIB);
        expect_leaf(&pt, 2 * MIB, 0x80000000, 1, PT_READ);
        expect_leaf(&pt, 8 * MIB + PAGE_SIZE, 0x90001000, 0, PT_WRITE);
        EXPECT_UNMAPPED(&pt, 8 * MIB + 2 * PAGE_SIZE);

        /* Exactly adjacent on both sides is not an overlap. */
        EXPECT_EQ(pt_map(&pt, 0, hpa(0x70000000), 2 * MIB, PT_READ), 0);
        EXPECT_EQ(pt_map(&pt, 4 * MIB, hpa(0x70200000), 4 * MIB + PAGE_SIZE, PT_READ), 0);
        EXPECT_EQ(pt_map(&pt, 8 * MIB + 2 * PAGE_SIZE, hpa(0), 2 * MIB, PT_READ), 0);
        expect_leaf(&pt, 0, 0x70000000, 1, PT_READ);
        expect_leaf(&pt, 2 * MIB, 0x80000000, 1, PT_READ);
        expect_leaf(&pt, 8 * MIB, 0x70200000 + 4 * MIB, 0, PT_READ);
        expect_leaf(&pt, 8 * MIB + PAGE_SIZE, 0x90001000, 0, PT_WRITE);
        expect_leaf(&pt, 8 * MIB + 2 * PAGE_SIZE, 0, 0, PT_READ);
        pt_destroy(&pt);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free);
        env_fini(&env);
}

TEST(out_of_memory_maps_nothing)
{
        struct env env;
        struct pt pt;
        uint64_t left;

        /* bitmap + root + 2 pages: a fresh 4 KiB mapping needs 3 new tables. */
        ASSERT_TRUE(env_init(&env, 4));
        ASSERT_TRUE(pt_init(&pt, &fmt_1g, &env.pa) == 0);
        left = palloc_free_pages(&env.pa);
        EXPECT_EQ(left, 2);
        EXPECT_EQ(pt_map(&pt, 0x1000, hpa(0x1000), PAGE_SIZE, PT_READ), -KEEL_ENOMEM);
        EXPECT_EQ(palloc_free_pages(&env.pa), left);
        EXPECT_EQ(pt.table_pages, 1);
        EXPECT_UNMAPPED(&pt, 0x1000);
        /* A range whose start would fit but whose end would not: nothing at all is mapped. */
        EXPECT_EQ(pt_map(&pt, 0, hpa(0), 2 * MIB + PAGE_SIZE, PT_READ), -KEEL_ENOMEM);
        EXPECT_UNMAPPED(&pt, 0);
        EXPECT_UNMAPPED(&pt, 2 * MIB);
        EXPECT_EQ(palloc_free_pages(&env.pa), left);
        /* A 2 MiB leaf needs only a PDPT and a PD: that fits, and uses it all up. */
        EXPECT_EQ(pt_map(&pt, 0, hpa(0), 2 * MIB, PT_READ), 0);
        EXPECT_EQ(palloc_free_pages(&env.pa), 0);
        expect_leaf(&pt, 0, 0, 1, PT_READ);
        /* More leaves in existing tables need no memory; a new table does. */
        EXPECT_EQ(pt_map(&pt, 4 * MIB, hpa(4 * MIB), 2 * MIB, PT_READ), 0);
        EXPECT_EQ(pt_map(&pt, 2 * MIB, hpa(0), PAGE_SIZE, PT_READ), -KEEL_ENOMEM);
        EXPECT_EQ(pt_map(&pt, GIB, hpa(0), GIB, PT_READ), 0); /* a 1 GiB leaf in the PDPT */
        EXPECT_UNMAPPED(&pt, 2 * MIB);
        expect_leaf(&pt, 4 * MIB, 4 * MIB, 1, PT_READ);
        expect_leaf(&pt, GIB, 0, 2, PT_READ);
        pt_destroy(&pt);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free);
        env_fini(&env);
}

/* Random non-overlapping and overlapping maps against an interval list. */
#define MAX_MAPS 1024

static uint64_t rng_state;

static uint64_t rng(void)
{
        rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
        return rng_state >> 33;
}

struct interval {
        uint64_t in, out, size;
        unsigned attrs;
};

TEST(random_maps_against_model)
{
        static struct interval maps[MAX_MAPS];
        struct env env;
        struct pt pt;
        unsigned n = 0, refused = 0;

        ASSERT_TRUE(env_init(&env, 8192));
        ASSERT_TRUE(pt_init(&pt, &fmt_1g, &env.pa) == 0);
        rng_state = 99;
        for (int step = 0; step < 700 && n < MAX_MAPS; step++) {
                /*
                 * Inside 8 GiB. Half the outputs have the input's offset in a 1 GiB page, so big
                 * leaves are possible; only those get big sizes (up to 1.2 GiB), so that the
                 * tables always fit in the allocator.
                 */
                bool congruent = rng() % 2;
                uint64_t gran = (rng() % 3 == 0) ? 2 * MIB : PAGE_SIZE;
                uint64_t in = (rng() % (8 * GIB / gran)) * gran;
                bool big = congruent && rng() % 4 == 0;
                uint64_t size = (1 + rng() % (big ? 600 : 8)) * gran;
                uint64_t out = (rng() % 64) * GIB;
                unsigned attrs = (unsigned)(rng() % 32);
                bool overlap = false;
                int err;

                out += congruent ? in % GIB : (rng() % 512) * PAGE_SIZE;

                for (unsigned k = 0; k < n; k++)
                        if (in < maps[k].in + maps[k].size && maps[k].in < in + size)
                                overlap = true;
                err = pt_map(&pt, in, hpa(out), size, attrs);
                EXPECT_EQ(err, overlap ? -KEEL_EEXIST : 0);
                refused += overlap;
                if (!err)
                        maps[n++] = (struct interval){in, out, size, attrs};
                if (test_failed_current)
                        break;
        }
        /* Both outcomes happened often enough to mean something. */
        EXPECT_TRUE(n >= 100 && refused >= 50);
        /* Every mapping at its edges and a few points inside; the gaps unmapped. */
        for (unsigned k = 0; k < n; k++) {
                uint64_t pts[4] = {0, maps[k].size - 1, maps[k].size / 2,
                                   (rng() % maps[k].size) & ~7ull};

                for (unsigned p = 0; p < 4; p++) {
                        hpa_t o;
                        unsigned a;

                        EXPECT_EQ(pt_lookup(&pt, maps[k].in + pts[p], &o, &a, NULL), 0);
                        EXPECT_EQ(hpa_raw(o), maps[k].out + pts[p]);
                        EXPECT_EQ(a, maps[k].attrs);
                }
        }
        for (int probe = 0; probe < 2000; probe++) {
                uint64_t va = (rng() % (9 * GIB / PAGE_SIZE)) * PAGE_SIZE;
                bool mapped = false;

                for (unsigned k = 0; k < n; k++)
                        if (va >= maps[k].in && va < maps[k].in + maps[k].size)
                                mapped = true;
                EXPECT_EQ(pt_lookup(&pt, va, NULL, NULL, NULL), mapped ? 0 : -KEEL_ENOENT);
        }
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free - pt.table_pages);
        pt_destroy(&pt);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free);
        env_fini(&env);
}

/* Leaves per level, as pt_count_leaves sees them. */
static void expect_leaves(struct pt *pt, uint64_t l1g, uint64_t l2m, uint64_t l4k)
{
        uint64_t n[PT_LEVELS - 1];

        pt_count_leaves(pt, n);
        EXPECT_EQ(n[2], l1g);
        EXPECT_EQ(n[1], l2m);
        EXPECT_EQ(n[0], l4k);
}

TEST(remap_one_page_splits_1g_then_2m_keeping_neighbours)
{
        struct env env;
        struct pt pt;
        const uint64_t in = GIB, out = 5 * GIB, page = in + 3 * GIB / 4 + 5 * PAGE_SIZE;
        const unsigned at = PT_READ | PT_WRITE | PT_EXEC;

        ASSERT_TRUE(env_init(&env, 64));
        ASSERT_TRUE(pt_init(&pt, &fmt_1g, &env.pa) == 0);
        ASSERT_TRUE(pt_map(&pt, in, hpa(out), GIB, at) == 0);
        EXPECT_EQ(pt.table_pages, 2); /* root, PDPT holding the 1 GiB leaf */
        expect_leaves(&pt, 1, 0, 0);

        EXPECT_EQ(pt_remap(&pt, page, hpa(0x1234000), PAGE_SIZE, PT_READ | PT_UNCACHED), 0);
        /* A PD for the split 1 GiB leaf, a PT for the split 2 MiB leaf. */
        EXPECT_EQ(pt.table_pages, 4);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free - 4);
        expect_leaves(&pt, 0, 511, 512);
        expect_leaf(&pt, page, 0x1234000, 0, PT_READ | PT_UNCACHED);
        /* The other pages of that 2 MiB, either side, and every other 2 MiB. */
        expect_leaf(&pt, page - PAGE_SIZE, out + (page - in) - PAGE_SIZE, 0, at);
        expect_leaf(&pt, page + PAGE_SIZE, out + (page - in) + PAGE_SIZE, 0, at);
        expect_leaf(&pt, align_down(page, 2 * MIB), out + align_down(page - in, 2 * MIB), 0, at);
        for (uint64_t va = in; va < in + GIB; va += 2 * MIB)
                if (va != align_down(page, 2 * MIB))
                        expect_leaf(&pt, va, out + (va - in), 1, at);
        EXPECT_UNMAPPED(&pt, in - 1);
        EXPECT_UNMAPPED(&pt, in + GIB);
        pt_destroy(&pt);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free);
        env_fini(&env);
}

TEST(remap_of_a_whole_leaf_stays_large)
{
        struct env env;
        struct pt pt;

        ASSERT_TRUE(env_init(&env, 64));
        ASSERT_TRUE(pt_init(&pt, &fmt_1g, &env.pa) == 0);
        ASSERT_TRUE(pt_map(&pt, 0, hpa(0), 8 * MIB, PT_READ) == 0);
        EXPECT_EQ(pt_remap(&pt, 2 * MIB, hpa(GIB), 2 * MIB, PT_RWX), 0);
        EXPECT_EQ(pt.table_pages, 3);
        expect_leaf(&pt, 2 * MIB, GIB, 1, PT_RWX);
        expect_leaf(&pt, 0, 0, 1, PT_READ);
        expect_leaf(&pt, 4 * MIB, 4 * MIB, 1, PT_READ);
        /* Output not 2 MiB aligned: the slot is split, all of it mapped anew in 4 KiB. */
        EXPECT_EQ(pt_remap(&pt, 4 * MIB, hpa(GIB + PAGE_SIZE), 2 * MIB, PT_WRITE), 0);
        EXPECT_EQ(pt.table_pages, 4);
        expect_leaf(&pt, 4 * MIB, GIB + PAGE_SIZE, 0, PT_WRITE);
        expect_leaf(&pt, 6 * MIB - PAGE_SIZE, GIB + 2 * MIB, 0, PT_WRITE);
        /* Remapping over free space and a split slot at once; a split slot is not merged. */
        EXPECT_EQ(pt_remap(&pt, 4 * MIB, hpa(4 * MIB), 8 * MIB, PT_READ), 0);
        expect_leaf(&pt, 4 * MIB, 4 * MIB, 0, PT_READ);
        expect_leaf(&pt, 8 * MIB, 8 * MIB, 1, PT_READ);
        expect_leaf(&pt, 10 * MIB, 10 * MIB, 1, PT_READ);
        expect_leaves(&pt, 0, 5, 512);
        pt_destroy(&pt);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free);
        env_fini(&env);
}

TEST(unmap_inside_a_large_leaf)
{
        struct env env;
        struct pt pt;
        const uint64_t out = 0x200000000ull;

        ASSERT_TRUE(env_init(&env, 64));
        ASSERT_TRUE(pt_init(&pt, &fmt_1g, &env.pa) == 0);
        ASSERT_TRUE(pt_map(&pt, 0, hpa(out), GIB + 4 * MIB, PT_WRITE) == 0);
        EXPECT_EQ(pt.table_pages, 3);
        /* One page in the 1 GiB leaf: PD and PT. */
        EXPECT_EQ(pt_unmap(&pt, 6 * MIB + PAGE_SIZE, PAGE_SIZE), 0);
        EXPECT_EQ(pt.table_pages, 5);
        EXPECT_UNMAPPED(&pt, 6 * MIB + PAGE_SIZE);
        EXPECT_UNMAPPED(&pt, 6 * MIB + 2 * PAGE_SIZE - 1);
        expect_leaf(&pt, 6 * MIB, out + 6 * MIB, 0, PT_WRITE);
        expect_leaf(&pt, 6 * MIB + 2 * PAGE_SIZE, out + 6 * MIB + 2 * PAGE_SIZE, 0, PT_WRITE);
        expect_leaf(&pt, 4 * MIB, out + 4 * MIB, 1, PT_WRITE);
        expect_leaf(&pt, 8 * MIB, out + 8 * MIB, 1, PT_WRITE);
        /* A whole 2 MiB leaf goes without a split; a range over holes and leaves is fine. */
        EXPECT_EQ(pt_unmap(&pt, GIB, 2 * MIB), 0);
        EXPECT_EQ(pt.table_pages, 5);
        EXPECT_UNMAPPED(&pt, GIB);
        expect_leaf(&pt, GIB + 2 * MIB, out + GIB + 2 * MIB, 1, PT_WRITE);
        EXPECT_EQ(pt_unmap(&pt, 6 * MIB, 3 * GIB), 0);
        EXPECT_UNMAPPED(&pt, 6 * MIB);
        EXPECT_UNMAPPED(&pt, GIB + 2 * MIB);
        expect_leaf(&pt, 4 * MIB, out + 4 * MIB, 1, PT_WRITE);
        expect_leaves(&pt, 0, 3, 0);
        /* Unmapping what is not mapped, even where no table exists, is fine and free. */
        EXPECT_EQ(pt_unmap(&pt, 100 * GIB + PAGE_SIZE, 3 * PAGE_SIZE), 0);
        EXPECT_EQ(pt.table_pages, 5);
        EXPECT_EQ(pt_unmap(&pt, 0x800, PAGE_SIZE), -KEEL_EINVAL);
        EXPECT_EQ(pt_unmap(&pt, 0, 0), -KEEL_EINVAL);
        /* The emptied tables stay until teardown, which returns every one. */
        pt_destroy(&pt);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free);
        env_fini(&env);
}

TEST(split_without_memory_changes_nothing)
{
        struct env env;
        struct pt pt;

        /* bitmap + root + PDPT + 1 page: one split fits, two do not. */
        ASSERT_TRUE(env_init(&env, 4));
        ASSERT_TRUE(pt_init(&pt, &fmt_1g, &env.pa) == 0);
        ASSERT_TRUE(pt_map(&pt, 0, hpa(0), GIB, PT_READ) == 0);
        EXPECT_EQ(palloc_free_pages(&env.pa), 1);
        EXPECT_EQ(pt_unmap(&pt, PAGE_SIZE, PAGE_SIZE), -KEEL_ENOMEM);
        EXPECT_EQ(pt_remap(&pt, 0, hpa(GIB), PAGE_SIZE, PT_WRITE), -KEEL_ENOMEM);
        EXPECT_EQ(palloc_free_pages(&env.pa), 1);
        expect_leaf(&pt, 0, 0, 2, PT_READ);
        EXPECT_EQ(pt_unmap(&pt, 2 * MIB, 2 * MIB), 0); /* one PD */
        EXPECT_EQ(palloc_free_pages(&env.pa), 0);
        EXPECT_UNMAPPED(&pt, 2 * MIB);
        expect_leaf(&pt, 0, 0, 1, PT_READ);
        expect_leaf(&pt, 4 * MIB, 4 * MIB, 1, PT_READ);
        pt_destroy(&pt);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free);
        env_fini(&env);
}

/* A format that needs break-before-make: the flush must see the slot unmapped. */
static const struct pt_format fmt_bbm = {
    .name = "test-bbm",
    .table = t_table,
    .leaf = t_leaf,
    .present = t_present,
    .is_leaf = t_is_leaf,
    .addr = t_addr,
    .attrs = t_attrs,
    .max_leaf_level = 2,
    .break_before_make = true,
};

static unsigned bbm_calls;
static uint64_t bbm_in, bbm_size;
static bool bbm_saw_invalid;

static void bbm_flush(const struct pt *pt, uint64_t in, uint64_t size)
{
        bbm_calls++;
        bbm_in = in;
        bbm_size = size;
        bbm_saw_invalid = pt_lookup(pt, in, NULL, NULL, NULL) == -KEEL_ENOENT &&
                          pt_lookup(pt, in + size - 1, NULL, NULL, NULL) == -KEEL_ENOENT;
}

TEST(break_before_make_flushes_between)
{
        struct env env;
        struct pt pt;

        ASSERT_TRUE(env_init(&env, 64));
        ASSERT_TRUE(pt_init(&pt, &fmt_bbm, &env.pa) == 0);
        ASSERT_TRUE(pt_map(&pt, GIB, hpa(0), GIB, PT_READ) == 0);
        /* Not live yet (no flush hook): nothing to flush. */
        ASSERT_TRUE(pt_remap(&pt, GIB, hpa(GIB), 2 * MIB, PT_READ) == 0);
        pt.flush = bbm_flush;
        bbm_calls = 0;
        /* Splitting the 2 MiB leaf at 1 GiB + 2 MiB: one break, then the new table. */
        EXPECT_EQ(pt_unmap(&pt, GIB + 2 * MIB, PAGE_SIZE), 0);
        EXPECT_EQ(bbm_calls, 1);
        EXPECT_EQ(bbm_in, GIB + 2 * MIB);
        EXPECT_EQ(bbm_size, 2 * MIB);
        EXPECT_TRUE(bbm_saw_invalid);
        /* Replacing a valid leaf by another. */
        EXPECT_EQ(pt_remap(&pt, GIB + 4 * MIB, hpa(0), 2 * MIB, PT_WRITE), 0);
        EXPECT_EQ(bbm_calls, 2);
        EXPECT_EQ(bbm_in, GIB + 4 * MIB);
        EXPECT_TRUE(bbm_saw_invalid);
        /* A leaf where nothing was, or a clear: no break needed. */
        EXPECT_EQ(pt_remap(&pt, 3 * GIB, hpa(0), 2 * MIB, PT_WRITE), 0);
        EXPECT_EQ(pt_unmap(&pt, GIB + 6 * MIB, 2 * MIB), 0);
        EXPECT_EQ(bbm_calls, 2);
        expect_leaf(&pt, GIB + 2 * MIB + PAGE_SIZE, 2 * MIB + PAGE_SIZE, 0, PT_READ);
        expect_leaf(&pt, GIB + 4 * MIB, 0, 1, PT_WRITE);
        pt_destroy(&pt);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free);
        env_fini(&env);
}

/*
 * Random maps, remaps and unmaps against a log of them (the last one covering an address
 * decides), 4 KiB and 2 MiB ones in 4 GiB, 1 GiB ones in 16 GiB, outputs mostly congruent
 * modulo 1 GiB, so that leaves of every size meet splits.
 */
struct op_rec {
        uint64_t in, out, size;
        unsigned attrs;
        bool unmap;
};

static bool model_lookup(const struct op_rec *ops, unsigned n, uint64_t va, uint64_t *out,
                         unsigned *attrs)
{
        for (unsigned k = n; k-- > 0;)
                if (va >= ops[k].in && va - ops[k].in < ops[k].size) {
                        if (ops[k].unmap)
                                return false;
                        *out = ops[k].out + (va - ops[k].in);
                        *attrs = ops[k].attrs;
                        return true;
                }
        return false;
}

TEST(random_remaps_and_unmaps_against_model)
{
        static struct op_rec ops[300];
        struct env env;
        struct pt pt;
        unsigned n = 0;
        uint64_t leaves[PT_LEVELS - 1];

        ASSERT_TRUE(env_init(&env, 8192));
        ASSERT_TRUE(pt_init(&pt, &fmt_1g, &env.pa) == 0);
        rng_state = 7;
        while (n < 300) {
                unsigned kind = (unsigned)(rng() % 4); /* 0, 1 remap; 2 unmap; 3 map */
                uint64_t gran = rng() % 3 == 0 ? PAGE_SIZE : rng() % 2 ? 2 * MIB : GIB;
                uint64_t in = (rng() % ((gran == GIB ? 16 : 4) * GIB / gran)) * gran;
                uint64_t size = (1 + rng() % 3) * gran + (rng() % 2) * PAGE_SIZE * (rng() % 9);
                bool congruent = gran == GIB || rng() % 8;
                uint64_t out =
                    (rng() % 16) * GIB + (congruent ? in % GIB : PAGE_SIZE * (rng() % 99));
                unsigned attrs = (unsigned)(rng() % 32);
                int err;

                if (kind == 3) {
                        err = pt_map(&pt, in, hpa(out), size, attrs);
                        if (err == -KEEL_EEXIST)
                                continue;
                } else if (kind == 2) {
                        err = pt_unmap(&pt, in, size);
                } else {
                        err = pt_remap(&pt, in, hpa(out), size, attrs);
                }
                EXPECT_EQ(err, 0);
                if (err)
                        break;
                ops[n++] = (struct op_rec){in, out, size, attrs, kind == 2};
        }
        for (unsigned k = 0; k < n; k++) {
                uint64_t pts[4] = {ops[k].in, ops[k].in + ops[k].size - 1, ops[k].in - 1,
                                   ops[k].in + (rng() % ops[k].size)};

                for (unsigned p = 0; p < 4; p++) {
                        uint64_t want;
                        unsigned want_attrs, a;
                        hpa_t o;

                        if (model_lookup(ops, n, pts[p], &want, &want_attrs)) {
                                EXPECT_EQ(pt_lookup(&pt, pts[p], &o, &a, NULL), 0);
                                EXPECT_EQ(hpa_raw(o), want);
                                EXPECT_EQ(a, want_attrs);
                        } else {
                                EXPECT_UNMAPPED(&pt, pts[p]);
                        }
                }
                if (test_failed_current)
                        break;
        }
        for (int probe = 0; probe < 3000 && !test_failed_current; probe++) {
                uint64_t va = (rng() % (17 * GIB / PAGE_SIZE)) * PAGE_SIZE + rng() % PAGE_SIZE;
                uint64_t want;
                unsigned want_attrs, a;
                hpa_t o;

                if (model_lookup(ops, n, va, &want, &want_attrs)) {
                        EXPECT_EQ(pt_lookup(&pt, va, &o, &a, NULL), 0);
                        EXPECT_EQ(hpa_raw(o), want);
                        EXPECT_EQ(a, want_attrs);
                } else {
                        EXPECT_UNMAPPED(&pt, va);
                }
        }
        /* All three leaf sizes survived somewhere; every table page goes back. */
        pt_count_leaves(&pt, leaves);
        printf("random: %u ops, %llu tables, leaves %llu x 1G %llu x 2M %llu x 4K\n", n,
               (unsigned long long)pt.table_pages, (unsigned long long)leaves[2],
               (unsigned long long)leaves[1], (unsigned long long)leaves[0]);
        EXPECT_TRUE(leaves[0] > 0 && leaves[1] > 0 && leaves[2] > 0);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free - pt.table_pages);
        pt_destroy(&pt);
        EXPECT_EQ(palloc_free_pages(&env.pa), env.start_free);
        env_fini(&env);
}

TEST_MAIN()
