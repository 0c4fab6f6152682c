/* Tests for vmm/gmem.c: region validation, range checks at every edge, copies. */
#include <keel/errno.h>
#include <vmm/gmem.h>

#include "test.h"

#define RSZ (4 * PAGE_SIZE)

/* Two host buffers standing in for host-physical memory (fake arch: hpa == pointer). */
static uint8_t back0[RSZ] __attribute__((aligned(4096)));
static uint8_t back1[RSZ] __attribute__((aligned(4096)));

static hpa_t hpa_of(const void *p)
{
        return hpa((uint64_t)(uintptr_t)p);
}

/* Region 0 at 0x10000, region 1 directly after it (adjacent, different backing). */
#define BASE0 0x10000ull
#define BASE1 (BASE0 + RSZ)

static void setup(struct gmem *m)
{
        gmem_init(m);
        memset(back0, 0x11, sizeof(back0));
        memset(back1, 0x22, sizeof(back1));
        ASSERT_TRUE(gmem_add_region(m, gpa(BASE0), RSZ, hpa_of(back0)) == 0);
        ASSERT_TRUE(gmem_add_region(m, gpa(BASE1), RSZ, hpa_of(back1)) == 0);
}

static bool all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
        for (size_t i = 0; i < n; i++)
                if (p[i] != v)
                        return false;
        return true;
}

TEST(init_is_empty)
{
        struct gmem m;

        memset(&m, 0xff, sizeof(m));
        gmem_init(&m);
        EXPECT_EQ(m.count, 0);
        EXPECT_EQ(gmem_total(&m), 0);
        EXPECT_FALSE(gmem_contains(&m, gpa(0), 0));
        EXPECT_FALSE(gmem_contains(&m, gpa(0), 1));
}

TEST(add_region_validation)
{
        struct gmem m;
        hpa_t b = hpa_of(back0);

        gmem_init(&m);
        EXPECT_EQ(gmem_add_region(&m, gpa(0), 0, b), -KEEL_EINVAL);
        EXPECT_EQ(gmem_add_region(&m, gpa(0x1001), PAGE_SIZE, b), -KEEL_EINVAL);
        EXPECT_EQ(gmem_add_region(&m, gpa(0x1000), PAGE_SIZE + 1, b), -KEEL_EINVAL);
        EXPECT_EQ(gmem_add_region(&m, gpa(0x1000), PAGE_SIZE, hpa_add(b, 8)), -KEEL_EINVAL);
        /* base + size wraps, or ends exactly at 2^64 (end not representable) */
        EXPECT_EQ(gmem_add_region(&m, gpa(0xfffffffffffff000ull), 2 * PAGE_SIZE, b), -KEEL_EINVAL);
        EXPECT_EQ(gmem_add_region(&m, gpa(0xfffffffffffff000ull), PAGE_SIZE, b), -KEEL_EINVAL);
        /* backing + size wraps */
        EXPECT_EQ(gmem_add_region(&m, gpa(0), 2 * PAGE_SIZE, hpa(0xfffffffffffff000ull)),
                  -KEEL_EINVAL);
        EXPECT_EQ(m.count, 0);

        EXPECT_EQ(gmem_add_region(&m, gpa(0x10000), 0x4000, b), 0);
        /* overlaps: same, inside, straddling start, straddling end, covering */
        EXPECT_EQ(gmem_add_region(&m, gpa(0x10000), 0x4000, b), -KEEL_EINVAL);
        EXPECT_EQ(gmem_add_region(&m, gpa(0x11000), 0x1000, b), -KEEL_EINVAL);
        EXPECT_EQ(gmem_add_region(&m, gpa(0xf000), 0x2000, b), -KEEL_EINVAL);
        EXPECT_EQ(gmem_add_region(&m, gpa(0x13000), 0x2000, b), -KEEL_EINVAL);
        EXPECT_EQ(gmem_add_region(&m, gpa(0x0), 0x100000, b), -KEEL_EINVAL);
        EXPECT_EQ(m.count, 1);
        /* adjacent on both sides is fine */
        EXPECT_EQ(gmem_add_region(&m, gpa(0xf000), 0x1000, b), 0);
        EXPECT_EQ(gmem_add_region(&m, gpa(0x14000), 0x1000, b), 0);
        EXPECT_EQ(m.count, 3);
        EXPECT_EQ(gmem_total(&m), 0x6000);
}

TEST(add_region_limit)
{
        struct gmem m;
        unsigned i;

        gmem_init(&m);
        for (i = 0; i < GMEM_MAX_REGIONS; i++)
                EXPECT_EQ(gmem_add_region(&m, gpa(i * 0x10000ull), PAGE_SIZE, hpa_of(back0)), 0);
        EXPECT_EQ(gmem_add_region(&m, gpa(i * 0x10000ull), PAGE_SIZE, hpa_of(back0)), -KEEL_ENOSPC);
        EXPECT_EQ(m.count, GMEM_MAX_REGIONS);
        EXPECT_EQ(gmem_total(&m), GMEM_MAX_REGIONS * PAGE_SIZE);
}

TEST(contains_edges)
{
        struct gmem m;

        setup(&m);
        EXPECT_TRUE(gmem_contains(&m, gpa(BASE0), 1));
        EXPECT_TRUE(gmem_contains(&m, gpa(BASE0), RSZ));
        EXPECT_TRUE(gmem_contains(&m, gpa(BASE0 + RSZ - 1), 1));
        EXPECT_TRUE(gmem_contains(&m, gpa(BASE1 + RSZ - 1), 1));
        EXPECT_FALSE(gmem_contains(&m, gpa(BASE0 - 1), 1));
        EXPECT_FALSE(gmem_contains(&m, gpa(BASE0 - 1), 2));
        EXPECT_FALSE(gmem_contains(&m, gpa(BASE1 + RSZ), 1)); /* one past the end */
        EXPECT_FALSE(gmem_contains(&m, gpa(BASE1 + RSZ - 1), 2));
        /* across the edge between two adjacent regions: one run of RAM */
        EXPECT_TRUE(gmem_contains(&m, gpa(BASE0 + RSZ - 1), 2));
        EXPECT_TRUE(gmem_contains(&m, gpa(BASE0), 2 * RSZ));
        EXPECT_FALSE(gmem_contains(&m, gpa(BASE0), 2 * RSZ + 1));
        /* len 0: inside only if the address is */
        EXPECT_TRUE(gmem_contains(&m, gpa(BASE0), 0));
        EXPECT_TRUE(gmem_contains(&m, gpa(BASE1 + RSZ - 1), 0));
        EXPECT_FALSE(gmem_contains(&m, gpa(BASE1 + RSZ), 0));
        EXPECT_FALSE(gmem_contains(&m, gpa(0), 0));
        /* wraparound */
        EXPECT_FALSE(gmem_contains(&m, gpa(BASE0 + 8), UINT64_MAX));
        EXPECT_FALSE(gmem_contains(&m, gpa(BASE0 + 8), (uint64_t)0 - 8));
        EXPECT_FALSE(gmem_contains(&m, gpa(UINT64_MAX), 2));
}

TEST(translate)
{
        struct gmem m;
        hpa_t h = hpa(0);

        setup(&m);
        EXPECT_EQ(gmem_translate(&m, gpa(BASE0 + 0x123), 4, &h), 0);
        EXPECT_EQ(hpa_raw(h), hpa_raw(hpa_of(back0)) + 0x123);
        EXPECT_EQ(gmem_translate(&m, gpa(BASE1), RSZ, &h), 0);
        EXPECT_EQ(hpa_raw(h), hpa_raw(hpa_of(back1)));
        h = hpa(77);
        EXPECT_EQ(gmem_translate(&m, gpa(BASE0 + RSZ - 2), 4, &h), -KEEL_EFAULT);
        EXPECT_EQ(gmem_translate(&m, gpa(BASE1 + RSZ), 0, &h), -KEEL_EFAULT);
        EXPECT_EQ(gmem_translate(&m, gpa(BASE0 + 1), UINT64_MAX, &h), -KEEL_EFAULT);
        EXPECT_EQ(hpa_raw(h), 77);
}

TEST(read_write_first_and_last_byte)
{
        struct gmem m;
        uint8_t v = 0xab, r = 0;

        setup(&m);
        EXPECT_EQ(gmem_write(&m, gpa(BASE0), &v, 1), 0);
        EXPECT_EQ(back0[0], 0xab);
        v = 0xcd;
        EXPECT_EQ(gmem_write(&m, gpa(BASE1 + RSZ - 1), &v, 1), 0);
        EXPECT_EQ(back1[RSZ - 1], 0xcd);
        EXPECT_EQ(gmem_read(&m, gpa(BASE0), &r, 1), 0);
        EXPECT_EQ(r, 0xab);
        EXPECT_EQ(gmem_read(&m, gpa(BASE1 + RSZ - 1), &r, 1), 0);
        EXPECT_EQ(r, 0xcd);
        EXPECT_EQ(gmem_read(&m, gpa(BASE0 + RSZ - 1), &r, 1), 0);
        EXPECT_EQ(r, 0x11);
        EXPECT_EQ(gmem_read(&m, gpa(BASE1), &r, 1), 0);
        EXPECT_EQ(r, 0x22);
}

TEST(whole_region_round_trip)
{
        struct gmem m;
        static uint8_t src[RSZ], dst[RSZ];

        setup(&m);
        for (size_t i = 0; i < RSZ; i++)
                src[i] = (uint8_t)(i * 7 + 3);
        EXPECT_EQ(gmem_write(&m, gpa(BASE1), src, RSZ), 0);
        EXPECT_EQ(memcmp(back1, src, RSZ), 0);
        memset(dst, 0, sizeof(dst));
        EXPECT_EQ(gmem_read(&m, gpa(BASE1), dst, RSZ), 0);
        EXPECT_EQ(memcmp(dst, src, RSZ), 0);
        EXPECT_TRUE(all_bytes(back0, RSZ, 0x11));
}

TEST(failed_accesses_change_nothing)
{
        struct gmem m;
        uint8_t buf[16], out[16];

        setup(&m);
        memset(buf, 0x99, sizeof(buf));
        memset(out, 0x55, sizeof(out));
        /* across both regions past the end, one past the end, before the start, wrapping */
        EXPECT_EQ(gmem_write(&m, gpa(BASE1 - 8), buf, RSZ + 16), -KEEL_EFAULT);
        EXPECT_EQ(gmem_write(&m, gpa(BASE1 + RSZ), buf, 1), -KEEL_EFAULT);
        EXPECT_EQ(gmem_write(&m, gpa(BASE0 - 8), buf, 16), -KEEL_EFAULT);
        EXPECT_EQ(gmem_write(&m, gpa(BASE0 + 16), buf, UINT64_MAX - 8), -KEEL_EFAULT);
        EXPECT_EQ(gmem_fill(&m, gpa(BASE0 + 8), 0x77, 2 * RSZ), -KEEL_EFAULT);
        EXPECT_EQ(gmem_fill(&m, gpa(BASE0), 0x77, UINT64_MAX), -KEEL_EFAULT);
        EXPECT_TRUE(all_bytes(back0, RSZ, 0x11));
        EXPECT_TRUE(all_bytes(back1, RSZ, 0x22));
        EXPECT_EQ(gmem_read(&m, gpa(BASE1 + RSZ - 8), out, 16), -KEEL_EFAULT);
        EXPECT_EQ(gmem_read(&m, gpa(0), out, 1), -KEEL_EFAULT);
        EXPECT_EQ(gmem_read(&m, gpa(UINT64_MAX), out, 2), -KEEL_EFAULT);
        EXPECT_TRUE(all_bytes(out, sizeof(out), 0x55));
}

TEST(zero_length_accesses)
{
        struct gmem m;
        uint8_t b = 0;

        setup(&m);
        EXPECT_EQ(gmem_read(&m, gpa(BASE0 + 5), NULL, 0), 0);
        EXPECT_EQ(gmem_write(&m, gpa(BASE1 + RSZ - 1), NULL, 0), 0);
        EXPECT_EQ(gmem_fill(&m, gpa(BASE0), 0, 0), 0);
        EXPECT_EQ(gmem_read(&m, gpa(BASE1 + RSZ), &b, 0), -KEEL_EFAULT);
        EXPECT_EQ(gmem_write(&m, gpa(0x5000), &b, 0), -KEEL_EFAULT);
        EXPECT_TRUE(all_bytes(back0, RSZ, 0x11));
}

TEST(fill)
{
        struct gmem m;

        setup(&m);
        EXPECT_EQ(gmem_fill(&m, gpa(BASE0 + 0x10), 0x1ab, 0x20), 0); /* byte value is truncated */
        EXPECT_TRUE(all_bytes(back0, 0x10, 0x11));
        EXPECT_TRUE(all_bytes(back0 + 0x10, 0x20, 0xab));
        EXPECT_TRUE(all_bytes(back0 + 0x30, RSZ - 0x30, 0x11));
        EXPECT_EQ(gmem_fill(&m, gpa(BASE1), 0, RSZ), 0);
        EXPECT_TRUE(all_bytes(back1, RSZ, 0));
}

TEST(unsorted_regions)
{
        struct gmem m;
        uint8_t v = 0x3c;

        gmem_init(&m);
        memset(back0, 0, sizeof(back0));
        memset(back1, 0, sizeof(back1));
        EXPECT_EQ(gmem_add_region(&m, gpa(0x200000), RSZ, hpa_of(back1)), 0);
        EXPECT_EQ(gmem_add_region(&m, gpa(0x0), RSZ, hpa_of(back0)), 0);
        EXPECT_EQ(gmem_write(&m, gpa(0x200000 + 3), &v, 1), 0);
        EXPECT_EQ(back1[3], 0x3c);
        EXPECT_EQ(gmem_write(&m, gpa(3), &v, 1), 0);
        EXPECT_EQ(back0[3], 0x3c);
        EXPECT_FALSE(gmem_contains(&m, gpa(RSZ), 1)); /* hole between them */
        EXPECT_EQ(gmem_total(&m), 2 * RSZ);
}

/* A VM's RAM from several host runs: an access across their edge is split, never refused. */
TEST(access_across_adjacent_regions)
{
        struct gmem m;
        uint8_t buf[16], out[16];

        setup(&m);
        for (unsigned i = 0; i < sizeof(buf); i++)
                buf[i] = (uint8_t)(0xa0 + i);
        EXPECT_EQ(gmem_write(&m, gpa(BASE1 - 8), buf, sizeof(buf)), 0);
        EXPECT_EQ(memcmp(back0 + RSZ - 8, buf, 8), 0);
        EXPECT_EQ(memcmp(back1, buf + 8, 8), 0);
        EXPECT_EQ(back0[RSZ - 9], 0x11);
        EXPECT_EQ(back1[8], 0x22);
        memset(out, 0, sizeof(out));
        EXPECT_EQ(gmem_read(&m, gpa(BASE1 - 8), out, sizeof(out)), 0);
        EXPECT_EQ(memcmp(out, buf, sizeof(buf)), 0);
        EXPECT_EQ(gmem_fill(&m, gpa(BASE1 - 4), 0x77, 8), 0);
        EXPECT_TRUE(all_bytes(back0 + RSZ - 4, 4, 0x77));
        EXPECT_TRUE(all_bytes(back1, 4, 0x77));
        EXPECT_EQ(back1[4], buf[12]);
        /* one host address only inside one region */
        hpa_t h;
        EXPECT_EQ(gmem_translate(&m, gpa(BASE1 - 8), 16, &h), -KEEL_EFAULT);
        EXPECT_TRUE(gmem_peek(&m, gpa(BASE1 - 8), 16) == NULL);
        EXPECT_TRUE(gmem_peek(&m, gpa(BASE1 - 8), 8) == back0 + RSZ - 8);
}

/* Regions with a gap (the x86 hole below 4 GiB): an access into the gap is refused. */
TEST(gap_between_regions)
{
        struct gmem m;
        uint8_t buf[16];

        gmem_init(&m);
        memset(back0, 0x11, sizeof(back0));
        memset(back1, 0x22, sizeof(back1));
        ASSERT_TRUE(gmem_add_region(&m, gpa(BASE0), RSZ, hpa_of(back0)) == 0);
        ASSERT_TRUE(gmem_add_region(&m, gpa(BASE1 + PAGE_SIZE), RSZ, hpa_of(back1)) == 0);
        memset(buf, 0x99, sizeof(buf));
        EXPECT_FALSE(gmem_contains(&m, gpa(BASE1 - 8), 16));
        EXPECT_FALSE(gmem_contains(&m, gpa(BASE0), RSZ + 2 * PAGE_SIZE));
        EXPECT_EQ(gmem_write(&m, gpa(BASE1 - 8), buf, 16), -KEEL_EFAULT);
        EXPECT_EQ(gmem_write(&m, gpa(BASE1 + PAGE_SIZE - 8), buf, 16), -KEEL_EFAULT);
        EXPECT_TRUE(all_bytes(back0, RSZ, 0x11));
        EXPECT_TRUE(all_bytes(back1, RSZ, 0x22));
        EXPECT_TRUE(gmem_contains(&m, gpa(BASE1 + PAGE_SIZE), RSZ));
}

TEST(next_run)
{
        struct gmem m;
        uint64_t b = 1, s = 1;

        gmem_init(&m);
        EXPECT_FALSE(gmem_next_run(&m, 0, &b, &s));
        /* added out of order: [0x100000, +3 pages) as two regions, a gap, [0x200000, +1) */
        ASSERT_TRUE(gmem_add_region(&m, gpa(0x200000), PAGE_SIZE, hpa_of(back1)) == 0);
        ASSERT_TRUE(gmem_add_region(&m, gpa(0x101000), 2 * PAGE_SIZE, hpa_of(back0 + PAGE_SIZE)) ==
                    0);
        ASSERT_TRUE(gmem_add_region(&m, gpa(0x100000), PAGE_SIZE, hpa_of(back0)) == 0);
        EXPECT_TRUE(gmem_next_run(&m, 0, &b, &s));
        EXPECT_EQ(b, 0x100000);
        EXPECT_EQ(s, 3 * PAGE_SIZE);
        EXPECT_TRUE(gmem_next_run(&m, b + s, &b, &s));
        EXPECT_EQ(b, 0x200000);
        EXPECT_EQ(s, PAGE_SIZE);
        EXPECT_FALSE(gmem_next_run(&m, b + s, &b, &s));
        /* from inside a run: the next region that starts at or above */
        EXPECT_TRUE(gmem_next_run(&m, 0x100800, &b, &s));
        EXPECT_EQ(b, 0x101000);
        EXPECT_EQ(s, 2 * PAGE_SIZE);
}

TEST_MAIN()
