/*
 * Physical page allocator. "Physical memory" is an aligned_alloc buffer: on the fake arch an
 * hpa is the host pointer value.
 */
#include <pthread.h>

#include <keel/errno.h>
#include <keel/palloc.h>

#include "test.h"

#define MIB (1ull << 20)

/* aligned_alloc wants a multiple of the alignment: round up (the tail is just unused). */
static void *mem_get(uint64_t size, uint64_t align)
{
        uint64_t rounded = align_up(size, align);
        void *p = aligned_alloc(align, rounded);

        if (p)
                memset(p, 0xcc, rounded); /* what firmware might leave behind */
        return p;
}

static uint64_t addr_of(const void *p)
{
        return (uint64_t)(uintptr_t)p;
}

static void *ptr_of(hpa_t a)
{
        return (void *)(uintptr_t)hpa_raw(a);
}

static struct mem_range range_of(const void *p, uint64_t bytes)
{
        return (struct mem_range){hpa(addr_of(p)), bytes / PAGE_SIZE};
}

static bool all_bytes(const void *p, int byte, uint64_t len)
{
        const unsigned char *c = p;

        for (uint64_t i = 0; i < len; i++)
                if (c[i] != (unsigned char)byte)
                        return false;
        return true;
}

/* A single range of `bytes` (2 MiB aligned buffer); returns the buffer. */
static void *setup_one(struct palloc *pa, uint64_t bytes)
{
        void *m = mem_get(bytes, 2 * MIB);
        struct mem_range r;

        if (!m)
                return NULL;
        r = range_of(m, bytes);
        if (palloc_init(pa, &r, 1) != 0) {
                free(m);
                return NULL;
        }
        return m;
}

TEST(init_carves_bitmap_from_range_start)
{
        static struct palloc pa;
        void *m = setup_one(&pa, 64 * PAGE_SIZE);

        ASSERT_TRUE(m);
        /* 64 pages: two 1-word bitmaps fit in one page, 63 pages remain. */
        EXPECT_EQ(pa.count, 1);
        EXPECT_EQ(hpa_raw(pa.ranges[0].base), addr_of(m) + PAGE_SIZE);
        EXPECT_EQ(pa.ranges[0].pages, 63);
        EXPECT_EQ((uintptr_t)pa.ranges[0].bitmap, (uintptr_t)m);
        EXPECT_EQ(pa.total_pages, 63);
        EXPECT_EQ(palloc_free_pages(&pa), 63);
        free(m);
}

TEST(init_bitmap_grows_with_range)
{
        static struct palloc pa;
        /* 128 MiB = 32768 pages: 2 bitmaps x 512 words x 8 bytes = 8 KiB = 2 pages. */
        void *m = setup_one(&pa, 128 * MIB);

        ASSERT_TRUE(m);
        EXPECT_EQ(hpa_raw(pa.ranges[0].base), addr_of(m) + 2 * PAGE_SIZE);
        EXPECT_EQ(pa.ranges[0].pages, 32768 - 2);
        EXPECT_EQ(palloc_free_pages(&pa), 32768 - 2);
        free(m);
}

TEST(alloc_rejects_bad_arguments)
{
        static struct palloc pa;
        void *m = setup_one(&pa, 64 * PAGE_SIZE);
        hpa_t a;

        ASSERT_TRUE(m);
        EXPECT_EQ(palloc_alloc(&pa, 0, PAGE_SIZE, &a), -KEEL_EINVAL);
        EXPECT_EQ(palloc_alloc(&pa, 1, 0, &a), -KEEL_EINVAL);
        EXPECT_EQ(palloc_alloc(&pa, 1, 2048, &a), -KEEL_EINVAL);
        EXPECT_EQ(palloc_alloc(&pa, 1, 3 * PAGE_SIZE, &a), -KEEL_EINVAL);
        EXPECT_EQ(palloc_alloc(&pa, 1, PAGE_SIZE, NULL), -KEEL_EINVAL);
        EXPECT_EQ(palloc_alloc(&pa, 64, PAGE_SIZE, &a), -KEEL_ENOMEM);
        EXPECT_EQ(palloc_alloc(&pa, UINT64_MAX, PAGE_SIZE, &a), -KEEL_ENOMEM);
        EXPECT_EQ(palloc_alloc(&pa, 1, 1ull << 63, &a), -KEEL_ENOMEM);
        EXPECT_EQ(palloc_free_pages(&pa), 63);
        free(m);
}

TEST(exhaustion_then_free_all_then_again)
{
        static struct palloc pa;
        static hpa_t got[200];
        void *m = setup_one(&pa, 200 * PAGE_SIZE);
        uint64_t n = 0, total;
        hpa_t extra;

        ASSERT_TRUE(m);
        total = palloc_free_pages(&pa);
        EXPECT_EQ(total, 199);
        for (int round = 0; round < 2; round++) {
                n = 0;
                while (n < 200 && palloc_alloc(&pa, 1, PAGE_SIZE, &got[n]) == 0)
                        n++;
                EXPECT_EQ(n, total);
                EXPECT_EQ(palloc_free_pages(&pa), 0);
                EXPECT_EQ(palloc_alloc(&pa, 1, PAGE_SIZE, &extra), -KEEL_ENOMEM);
                EXPECT_EQ(palloc_largest_run(&pa, PAGE_SIZE), 0);
                for (uint64_t i = 0; i < n; i++) {
                        uint64_t a = hpa_raw(got[i]);

                        EXPECT_TRUE(a >= addr_of(m) + PAGE_SIZE &&
                                    a < addr_of(m) + 200 * PAGE_SIZE);
                        EXPECT_TRUE(is_aligned(a, PAGE_SIZE));
                        if (i)
                                EXPECT_TRUE(
                                    a > hpa_raw(got[i - 1])); /* first fit: ascending, distinct */
                }
                for (uint64_t i = 0; i < n; i++)
                        EXPECT_EQ(palloc_free(&pa, got[i], 1), 0);
                EXPECT_EQ(palloc_free_pages(&pa), total);
                EXPECT_EQ(palloc_largest_run(&pa, PAGE_SIZE), total);
        }
        free(m);
}

TEST(double_free_is_refused)
{
        static struct palloc pa;
        void *m = setup_one(&pa, 64 * PAGE_SIZE);
        hpa_t a, b;

        ASSERT_TRUE(m);
        ASSERT_TRUE(palloc_alloc(&pa, 3, PAGE_SIZE, &a) == 0);
        ASSERT_TRUE(palloc_alloc(&pa, 1, PAGE_SIZE, &b) == 0);
        EXPECT_EQ(palloc_free(&pa, a, 3), 0);
        EXPECT_EQ(palloc_free_pages(&pa), 62);
        EXPECT_EQ(palloc_free(&pa, a, 3), -KEEL_EINVAL);
        EXPECT_EQ(palloc_free(&pa, a, 1), -KEEL_EINVAL);
        EXPECT_EQ(palloc_free_pages(&pa), 62);
        /* The neighbour is untouched by the refused frees. */
        EXPECT_EQ(palloc_free(&pa, b, 1), 0);
        EXPECT_EQ(palloc_free(&pa, b, 1), -KEEL_EINVAL);
        EXPECT_EQ(palloc_free_pages(&pa), 63);
        free(m);
}

TEST(bad_frees_change_nothing)
{
        static struct palloc pa;
        void *m = setup_one(&pa, 64 * PAGE_SIZE);
        void *foreign = mem_get(4 * PAGE_SIZE, PAGE_SIZE);
        hpa_t a, last;
        uint64_t base;

        ASSERT_TRUE(m && foreign);
        base = hpa_raw(pa.ranges[0].base);
        ASSERT_TRUE(palloc_alloc(&pa, 2, PAGE_SIZE, &a) == 0);
        EXPECT_EQ(hpa_raw(a), base);
        memset(ptr_of(a), 0x5a, 2 * PAGE_SIZE);

        /* Never allocated, partly allocated (2 of 3), partly allocated (1 of 2 from the middle). */
        EXPECT_EQ(palloc_free(&pa, hpa(base + 2 * PAGE_SIZE), 1), -KEEL_EINVAL);
        EXPECT_EQ(palloc_free(&pa, a, 3), -KEEL_EINVAL);
        EXPECT_EQ(palloc_free(&pa, hpa(base + PAGE_SIZE), 2), -KEEL_EINVAL);
        /* Outside the allocator: another buffer, the bitmap page, past the end, below. */
        EXPECT_EQ(palloc_free(&pa, hpa(addr_of(foreign)), 1), -KEEL_EINVAL);
        EXPECT_EQ(palloc_free(&pa, hpa(addr_of(m)), 1), -KEEL_EINVAL);
        EXPECT_EQ(palloc_free(&pa, hpa(addr_of(m) + 64 * PAGE_SIZE), 1), -KEEL_EINVAL);
        EXPECT_EQ(palloc_free(&pa, hpa(0), 1), -KEEL_EINVAL);
        /* Unaligned, empty, and lengths that run past the range or wrap. */
        EXPECT_EQ(palloc_free(&pa, hpa_add(a, 8), 1), -KEEL_EINVAL);
        EXPECT_EQ(palloc_free(&pa, a, 0), -KEEL_EINVAL);
        EXPECT_EQ(palloc_free(&pa, a, UINT64_MAX), -KEEL_EINVAL);
        EXPECT_EQ(palloc_free(&pa, a, 1ull << 52), -KEEL_EINVAL);

        EXPECT_EQ(palloc_free_pages(&pa), 61);
        EXPECT_TRUE(all_bytes(ptr_of(a), 0x5a, 2 * PAGE_SIZE)); /* not scrubbed */
        EXPECT_TRUE(all_bytes(foreign, 0xcc, 4 * PAGE_SIZE));

        /* The last page of the range, freed with a run that would run off the end. */
        ASSERT_TRUE(palloc_alloc(&pa, 61, PAGE_SIZE, &last) == 0);
        EXPECT_EQ(palloc_free(&pa, hpa_add(last, 60 * PAGE_SIZE), 2), -KEEL_EINVAL);
        EXPECT_EQ(palloc_free(&pa, hpa_add(last, 60 * PAGE_SIZE), 1), 0);
        EXPECT_EQ(palloc_free(&pa, last, 60), 0);
        EXPECT_EQ(palloc_free(&pa, a, 2), 0);
        EXPECT_EQ(palloc_free_pages(&pa), 63);
        free(foreign);
        free(m);
}

TEST(two_mib_runs_are_aligned)
{
        static struct palloc pa;
        void *m = setup_one(&pa, 16 * MIB);
        uint64_t base = 0;
        hpa_t a, small;
        unsigned n = 0;

        ASSERT_TRUE(m);
        base = addr_of(m);
        /* The bitmap page spoils the first 2 MiB block: 7 aligned blocks, 14 MiB contiguous. */
        EXPECT_EQ(palloc_largest_run(&pa, LARGE_PAGE_SIZE), 7 * 512);
        EXPECT_EQ(palloc_largest_run(&pa, PAGE_SIZE), 4095);
        ASSERT_TRUE(palloc_alloc(&pa, 1, PAGE_SIZE, &small) == 0);
        EXPECT_EQ(hpa_raw(small), base + PAGE_SIZE);
        while (palloc_alloc(&pa, 512, LARGE_PAGE_SIZE, &a) == 0) {
                EXPECT_EQ(hpa_raw(a), base + (n + 1) * LARGE_PAGE_SIZE);
                n++;
        }
        EXPECT_EQ(n, 7);
        /* What is left is the rest of the first block, not 2 MiB aligned. */
        EXPECT_EQ(palloc_free_pages(&pa), 510);
        EXPECT_EQ(palloc_largest_run(&pa, LARGE_PAGE_SIZE), 0);
        EXPECT_EQ(palloc_largest_run(&pa, PAGE_SIZE), 510);
        EXPECT_EQ(palloc_largest_run(&pa, 64 * 1024), 496); /* from base + 64 KiB */
        EXPECT_EQ(palloc_alloc(&pa, 2, 64 * 1024, &a), 0);
        EXPECT_EQ(hpa_raw(a), base + 64 * 1024);
        /* The free pages lie strictly inside (base, base + 2 MiB): none is 4 MiB aligned. */
        EXPECT_EQ(palloc_alloc(&pa, 1, 4 * MIB, &a), -KEEL_ENOMEM);
        EXPECT_EQ(palloc_free_pages(&pa), 508);
        free(m);
}

TEST(unaligned_range_base_still_gives_aligned_blocks)
{
        static struct palloc pa;
        void *m = mem_get(8 * MIB, 2 * MIB);
        struct mem_range r;
        hpa_t a;

        ASSERT_TRUE(m);
        /* Starts 12 KiB into a 2 MiB block: the first aligned block is at +2 MiB. */
        r = range_of((char *)m + 3 * PAGE_SIZE, 8 * MIB - 3 * PAGE_SIZE);
        ASSERT_TRUE(palloc_init(&pa, &r, 1) == 0);
        EXPECT_EQ(palloc_alloc(&pa, 512, LARGE_PAGE_SIZE, &a), 0);
        EXPECT_EQ(hpa_raw(a), addr_of(m) + 2 * MIB);
        EXPECT_EQ(palloc_alloc(&pa, 1024, LARGE_PAGE_SIZE, &a), 0);
        EXPECT_EQ(hpa_raw(a), addr_of(m) + 4 * MIB);
        EXPECT_EQ(palloc_alloc(&pa, 512, LARGE_PAGE_SIZE, &a), -KEEL_ENOMEM);
        EXPECT_EQ(palloc_free(&pa, hpa(addr_of(m) + 4 * MIB), 1024), 0);
        /* 2-4 MiB is taken, so only 4-8 MiB is an aligned candidate. */
        EXPECT_EQ(palloc_alloc(&pa, 1536, LARGE_PAGE_SIZE, &a), -KEEL_ENOMEM);
        EXPECT_EQ(palloc_alloc(&pa, 512, LARGE_PAGE_SIZE, &a), 0);
        EXPECT_EQ(hpa_raw(a), addr_of(m) + 4 * MIB);
        /* The unaligned head of the range still serves small requests. */
        EXPECT_EQ(palloc_alloc(&pa, 1, PAGE_SIZE, &a), 0);
        EXPECT_EQ(hpa_raw(a), addr_of(m) + 4 * PAGE_SIZE);
        free(m);
}

TEST(fragmentation_then_coalescing)
{
        static struct palloc pa;
        static hpa_t got[64];
        void *m = setup_one(&pa, 64 * PAGE_SIZE);
        hpa_t run;

        ASSERT_TRUE(m);
        for (int i = 0; i < 63; i++)
                ASSERT_TRUE(palloc_alloc(&pa, 1, PAGE_SIZE, &got[i]) == 0);
        for (int i = 0; i < 63; i += 2)
                EXPECT_EQ(palloc_free(&pa, got[i], 1), 0);
        EXPECT_EQ(palloc_free_pages(&pa), 32);
        EXPECT_EQ(palloc_largest_run(&pa, PAGE_SIZE), 1);
        EXPECT_EQ(palloc_alloc(&pa, 2, PAGE_SIZE, &run), -KEEL_ENOMEM);
        /* Free the odd pages 1..15: pages 0..16 form one run of 17. */
        for (int i = 1; i < 16; i += 2)
                EXPECT_EQ(palloc_free(&pa, got[i], 1), 0);
        EXPECT_EQ(palloc_largest_run(&pa, PAGE_SIZE), 17);
        EXPECT_EQ(palloc_alloc(&pa, 18, PAGE_SIZE, &run), -KEEL_ENOMEM);
        EXPECT_EQ(palloc_alloc(&pa, 17, PAGE_SIZE, &run), 0);
        EXPECT_EQ(hpa_raw(run), hpa_raw(got[0]));
        EXPECT_EQ(palloc_alloc(&pa, 2, PAGE_SIZE, &run), -KEEL_ENOMEM);
        /* A single page still comes from the remaining holes, the first one first. */
        EXPECT_EQ(palloc_alloc(&pa, 1, PAGE_SIZE, &run), 0);
        EXPECT_EQ(hpa_raw(run), hpa_raw(got[18]));
        free(m);
}

TEST(runs_cross_bitmap_words)
{
        static struct palloc pa;
        void *m = setup_one(&pa, 4 * MIB); /* 1023 usable pages, 16 bitmap words */
        hpa_t a, b, c;
        uint64_t base;

        ASSERT_TRUE(m);
        base = hpa_raw(pa.ranges[0].base);
        ASSERT_TRUE(palloc_alloc(&pa, 60, PAGE_SIZE, &a) == 0);
        ASSERT_TRUE(palloc_alloc(&pa, 200, PAGE_SIZE, &b) == 0);
        EXPECT_EQ(hpa_raw(b), base + 60 * PAGE_SIZE);
        ASSERT_TRUE(palloc_alloc(&pa, 1, PAGE_SIZE, &c) == 0);
        EXPECT_EQ(hpa_raw(c), base + 260 * PAGE_SIZE);
        /* A run that straddles the allocated b and the free space after c is refused. */
        EXPECT_EQ(palloc_free(&pa, c, 2), -KEEL_EINVAL);
        EXPECT_EQ(palloc_free(&pa, b, 200), 0);
        /* 201 pages do not fit in the 200-page hole: the run goes after c. */
        ASSERT_TRUE(palloc_alloc(&pa, 201, PAGE_SIZE, &b) == 0);
        EXPECT_EQ(hpa_raw(b), base + 261 * PAGE_SIZE);
        ASSERT_TRUE(palloc_alloc(&pa, 200, PAGE_SIZE, &b) == 0);
        EXPECT_EQ(hpa_raw(b), base + 60 * PAGE_SIZE);
        EXPECT_EQ(palloc_free_pages(&pa), 1023 - 60 - 1 - 201 - 200);
        EXPECT_EQ(palloc_largest_run(&pa, PAGE_SIZE), 1023 - 462);
        free(m);
}

TEST(pages_are_zeroed_and_scrubbed)
{
        static struct palloc pa;
        void *m = setup_one(&pa, 64 * PAGE_SIZE); /* filled with 0xcc before init */
        hpa_t a, b;

        ASSERT_TRUE(m);
        /* Firmware leftovers are zeroed before a page is handed out. */
        ASSERT_TRUE(palloc_alloc(&pa, 4, PAGE_SIZE, &a) == 0);
        EXPECT_TRUE(all_bytes(ptr_of(a), 0, 4 * PAGE_SIZE));
        EXPECT_TRUE(all_bytes(ptr_of(hpa_add(a, 4 * PAGE_SIZE)), 0xcc, PAGE_SIZE)); /* lazily */
        memset(ptr_of(a), 0xa5, 4 * PAGE_SIZE);
        EXPECT_EQ(palloc_free(&pa, a, 4), 0);
        /* Scrubbed by the free itself, before anyone allocates it again. */
        EXPECT_TRUE(all_bytes(ptr_of(a), 0, 4 * PAGE_SIZE));
        ASSERT_TRUE(palloc_alloc(&pa, 6, PAGE_SIZE, &b) == 0);
        EXPECT_EQ(hpa_raw(b), hpa_raw(a));
        EXPECT_TRUE(all_bytes(ptr_of(b), 0, 6 * PAGE_SIZE));
        free(m);
}

TEST(multiple_ranges_any_order)
{
        static struct palloc pa;
        void *m1 = mem_get(2 * MIB, 2 * MIB), *m2 = mem_get(2 * MIB, 2 * MIB);
        void *m3 = mem_get(2 * MIB, 2 * MIB);
        struct mem_range r[3];
        void *lo, *hi;
        hpa_t a, b;

        ASSERT_TRUE(m1 && m2 && m3);
        r[0] = range_of(m1, 64 * PAGE_SIZE);
        r[1] = range_of(m2, 128 * PAGE_SIZE);
        r[2] = range_of(m3, 32 * PAGE_SIZE);
        ASSERT_TRUE(palloc_init(&pa, r, 3) == 0);
        EXPECT_EQ(pa.count, 3);
        EXPECT_EQ(pa.total_pages, 63 + 127 + 31);
        EXPECT_EQ(palloc_free_pages(&pa), 63 + 127 + 31);
        for (unsigned i = 1; i < pa.count; i++)
                EXPECT_TRUE(hpa_raw(pa.ranges[i - 1].base) < hpa_raw(pa.ranges[i].base));
        /* Larger than any one range: fails although enough pages are free in total. */
        EXPECT_EQ(palloc_largest_run(&pa, PAGE_SIZE), 127);
        EXPECT_EQ(palloc_alloc(&pa, 128, PAGE_SIZE, &a), -KEEL_ENOMEM);
        EXPECT_EQ(palloc_alloc(&pa, 127, PAGE_SIZE, &a), 0);
        EXPECT_EQ(hpa_raw(a), addr_of(m2) + PAGE_SIZE);
        /* Single pages come from the lowest range first. */
        lo = (uintptr_t)m1 < (uintptr_t)m3 ? m1 : m3;
        hi = lo == m1 ? m3 : m1;
        EXPECT_EQ(palloc_alloc(&pa, 1, PAGE_SIZE, &b), 0);
        EXPECT_EQ(hpa_raw(b), addr_of(lo) + PAGE_SIZE);
        /* Frees find their range. */
        EXPECT_EQ(palloc_free(&pa, a, 127), 0);
        EXPECT_EQ(palloc_free(&pa, b, 1), 0);
        EXPECT_EQ(palloc_free(&pa, hpa(addr_of(hi) + PAGE_SIZE), 1), -KEEL_EINVAL);
        EXPECT_EQ(palloc_free_pages(&pa), 63 + 127 + 31);
        free(m1);
        free(m2);
        free(m3);
}

TEST(adjacent_ranges_are_merged)
{
        static struct palloc pa;
        void *m = mem_get(2 * MIB, 2 * MIB);
        struct mem_range r[3];
        hpa_t a;

        ASSERT_TRUE(m);
        /* Three descriptors for one contiguous area, out of order. */
        r[0] = range_of((char *)m + 40 * PAGE_SIZE, 24 * PAGE_SIZE);
        r[1] = range_of(m, 16 * PAGE_SIZE);
        r[2] = range_of((char *)m + 16 * PAGE_SIZE, 24 * PAGE_SIZE);
        ASSERT_TRUE(palloc_init(&pa, r, 3) == 0);
        EXPECT_EQ(pa.count, 1);
        EXPECT_EQ(palloc_free_pages(&pa), 63);
        EXPECT_EQ(palloc_alloc(&pa, 63, PAGE_SIZE, &a), 0);
        EXPECT_EQ(hpa_raw(a), addr_of(m) + PAGE_SIZE);
        free(m);
}

TEST(tiny_ranges_are_ignored)
{
        static struct palloc pa;
        void *m = mem_get(2 * MIB, 2 * MIB);
        struct mem_range r[3];
        hpa_t a;

        ASSERT_TRUE(m);
        /* One page holds only its bitmap; an unaligned 4 KiB range holds no whole page. */
        r[0] = range_of(m, PAGE_SIZE);
        r[1] = (struct mem_range){hpa(addr_of(m) + 2 * PAGE_SIZE + 16), 1};
        EXPECT_EQ(palloc_init(&pa, r, 2), -KEEL_ENOMEM);
        EXPECT_EQ(pa.count, 0);
        EXPECT_EQ(palloc_free_pages(&pa), 0);
        EXPECT_EQ(palloc_alloc(&pa, 1, PAGE_SIZE, &a), -KEEL_ENOMEM);
        EXPECT_EQ(palloc_init(&pa, NULL, 0), -KEEL_ENOMEM);

        /* Two pages: bitmap plus one page. With the useless ones beside it. */
        r[2] = range_of((char *)m + 8 * PAGE_SIZE, 2 * PAGE_SIZE);
        ASSERT_TRUE(palloc_init(&pa, r, 3) == 0);
        EXPECT_EQ(pa.count, 1);
        EXPECT_EQ(palloc_free_pages(&pa), 1);
        EXPECT_EQ(palloc_alloc(&pa, 1, PAGE_SIZE, &a), 0);
        EXPECT_EQ(hpa_raw(a), addr_of(m) + 9 * PAGE_SIZE);
        EXPECT_EQ(palloc_alloc(&pa, 1, PAGE_SIZE, &a), -KEEL_ENOMEM);
        free(m);
}

TEST(unaligned_range_is_trimmed)
{
        static struct palloc pa;
        void *m = mem_get(2 * MIB, 2 * MIB);
        struct mem_range r;
        hpa_t a;

        ASSERT_TRUE(m);
        /* [m+100, m+100+40 KiB): whole pages are [m+4K, m+40K), 9 pages, 1 for the bitmap. */
        r = (struct mem_range){hpa(addr_of(m) + 100), 10};
        ASSERT_TRUE(palloc_init(&pa, &r, 1) == 0);
        EXPECT_EQ(hpa_raw(pa.ranges[0].base), addr_of(m) + 2 * PAGE_SIZE);
        EXPECT_EQ(pa.ranges[0].pages, 8);
        EXPECT_EQ((uintptr_t)pa.ranges[0].bitmap, (uintptr_t)m + PAGE_SIZE);
        EXPECT_EQ(palloc_alloc(&pa, 8, PAGE_SIZE, &a), 0);
        EXPECT_EQ(hpa_raw(a), addr_of(m) + 2 * PAGE_SIZE);
        /* Nothing beyond the trimmed end was touched. */
        EXPECT_TRUE(all_bytes((char *)m + 10 * PAGE_SIZE, 0xcc, PAGE_SIZE));
        free(m);
}

TEST(overlapping_or_wrapping_ranges_are_refused)
{
        static struct palloc pa;
        void *m = mem_get(2 * MIB, 2 * MIB);
        struct mem_range r[3];

        ASSERT_TRUE(m);
        r[0] = range_of(m, 64 * PAGE_SIZE);
        r[1] = range_of((char *)m + 63 * PAGE_SIZE, 16 * PAGE_SIZE);
        EXPECT_EQ(palloc_init(&pa, r, 2), -KEEL_EINVAL);
        EXPECT_EQ(pa.count, 0);
        EXPECT_EQ(palloc_free_pages(&pa), 0);
        /* Containment and identical bases overlap too; the order does not matter. */
        r[1] = range_of((char *)m + 8 * PAGE_SIZE, 2 * PAGE_SIZE);
        EXPECT_EQ(palloc_init(&pa, r, 2), -KEEL_EINVAL);
        r[1] = r[0];
        EXPECT_EQ(palloc_init(&pa, r, 2), -KEEL_EINVAL);
        r[1] = range_of((char *)m + 100 * PAGE_SIZE, 4 * PAGE_SIZE);
        r[2] = range_of((char *)m + 30 * PAGE_SIZE, 100 * PAGE_SIZE);
        EXPECT_EQ(palloc_init(&pa, r, 3), -KEEL_EINVAL);
        /* Refused before any bitmap was written. */
        EXPECT_TRUE(all_bytes(m, 0xcc, 2 * MIB));
        /* Overlapping at an unaligned edge is still overlapping. */
        r[1] = (struct mem_range){hpa(addr_of(m) + 64 * PAGE_SIZE - 8), 4};
        EXPECT_EQ(palloc_init(&pa, r, 2), -KEEL_EINVAL);
        /* Wrapping past 2^64. */
        r[1] = (struct mem_range){hpa(UINT64_MAX - PAGE_SIZE * 2 + 1), 4};
        EXPECT_EQ(palloc_init(&pa, r, 2), -KEEL_EINVAL);
        r[1] = (struct mem_range){hpa(PAGE_SIZE), UINT64_MAX / 2};
        EXPECT_EQ(palloc_init(&pa, r, 2), -KEEL_EINVAL);
        /* Empty ranges overlap nothing. */
        r[1] = (struct mem_range){hpa(addr_of(m) + PAGE_SIZE), 0};
        EXPECT_EQ(palloc_init(&pa, r, 2), 0);
        EXPECT_EQ(palloc_free_pages(&pa), 63);
        free(m);
}

TEST(ranges_beyond_the_table_are_ignored)
{
        static struct palloc pa;
        static struct mem_range r[PALLOC_MAX_RANGES + 2];
        const unsigned n = PALLOC_MAX_RANGES + 2;
        void *m = mem_get(3 * n * PAGE_SIZE, 2 * MIB);
        hpa_t a;

        ASSERT_TRUE(m);
        /* n ranges of 2 pages (bitmap + 1) with a 1-page gap between, so none merge. */
        for (unsigned i = 0; i < n; i++)
                r[i] = range_of((char *)m + 3 * i * PAGE_SIZE, 2 * PAGE_SIZE);
        ASSERT_TRUE(palloc_init(&pa, r, n) == 0);
        EXPECT_EQ(pa.count, PALLOC_MAX_RANGES);
        EXPECT_EQ(palloc_free_pages(&pa), PALLOC_MAX_RANGES);
        for (unsigned i = 0; i < PALLOC_MAX_RANGES; i++) {
                EXPECT_EQ(palloc_alloc(&pa, 1, PAGE_SIZE, &a), 0);
                EXPECT_EQ(hpa_raw(a), addr_of(m) + (3 * i + 1) * PAGE_SIZE);
        }
        EXPECT_EQ(palloc_alloc(&pa, 1, PAGE_SIZE, &a), -KEEL_ENOMEM);
        free(m);
}

TEST(keel_palloc_is_an_ordinary_allocator)
{
        void *m = mem_get(2 * MIB, 2 * MIB);
        struct mem_range r;
        hpa_t a;

        ASSERT_TRUE(m);
        r = range_of(m, 2 * MIB);
        ASSERT_TRUE(palloc_init(&keel_palloc, &r, 1) == 0);
        EXPECT_EQ(palloc_alloc(&keel_palloc, 1, PAGE_SIZE, &a), 0);
        EXPECT_EQ(palloc_free(&keel_palloc, a, 1), 0);
        EXPECT_EQ(palloc_free_pages(&keel_palloc), 511);
        memset(&keel_palloc, 0, sizeof(keel_palloc));
        free(m);
}

/*
 * Random allocations and frees against a page-by-page model: every answer must be the
 * model's first fit, and ENOMEM exactly when the model has no fitting run.
 */
#define MODEL_PAGES 1500

static uint64_t rng_state;

static uint64_t rng(void)
{
        rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
        return rng_state >> 33;
}

static bool model_first_fit(const bool *used, uint64_t base, uint64_t pages, uint64_t align,
                            uint64_t *idx)
{
        for (uint64_t i = 0; i + pages <= MODEL_PAGES - 1; i++) {
                bool ok = is_aligned(base + i * PAGE_SIZE, align);

                for (uint64_t j = 0; ok && j < pages; j++)
                        ok = !used[i + j];
                if (ok) {
                        *idx = i;
                        return true;
                }
        }
        return false;
}

TEST(random_against_model)
{
        static struct palloc pa;
        static bool used[MODEL_PAGES];
        static struct {
                uint64_t idx, pages;
        } live[MODEL_PAGES];
        void *m = setup_one(&pa, MODEL_PAGES * PAGE_SIZE); /* 1 bitmap page */
        unsigned nlive = 0;
        uint64_t base, nfree = MODEL_PAGES - 1;

        ASSERT_TRUE(m);
        ASSERT_TRUE(pa.ranges[0].pages == MODEL_PAGES - 1);
        base = hpa_raw(pa.ranges[0].base);
        memset(used, 0, sizeof(used));
        rng_state = 12345;
        for (int step = 0; step < 3000; step++) {
                if (nlive && rng() % 3 == 0) {
                        unsigned k = (unsigned)(rng() % nlive);

                        EXPECT_EQ(
                            palloc_free(&pa, hpa(base + live[k].idx * PAGE_SIZE), live[k].pages),
                            0);
                        for (uint64_t j = 0; j < live[k].pages; j++)
                                used[live[k].idx + j] = false;
                        nfree += live[k].pages;
                        live[k] = live[--nlive];
                } else {
                        uint64_t pages = 1 + (rng() % 4 == 0 ? rng() % 200 : rng() % 8);
                        uint64_t align = PAGE_SIZE << (rng() % 4 == 0 ? rng() % 8 : 0);
                        uint64_t want = 0;
                        bool fits = model_first_fit(used, base, pages, align, &want);
                        hpa_t a;
                        int err = palloc_alloc(&pa, pages, align, &a);

                        EXPECT_EQ(err, fits ? 0 : -KEEL_ENOMEM);
                        if (err || !fits)
                                continue;
                        EXPECT_EQ(hpa_raw(a), base + want * PAGE_SIZE);
                        for (uint64_t j = 0; j < pages; j++)
                                used[want + j] = true;
                        nfree -= pages;
                        live[nlive].idx = want;
                        live[nlive].pages = pages;
                        nlive++;
                }
                EXPECT_EQ(palloc_free_pages(&pa), nfree);
                if (test_failed_current)
                        break;
        }
        free(m);
}

/*
 * Several CPUs at once (the boot CPU releasing a VM while another allocates a vCPU's VMCB):
 * threads allocate, tag, check and free runs in a loop. A page handed to two owners at once,
 * or one not zeroed, shows as a tag that changed or a nonzero byte; a lost bitmap update as a
 * free count that does not come back.
 */
#define THREADS      4
#define THREAD_LIVE  8
#define THREAD_LOOPS 20000

struct thread_run {
        hpa_t base;
        uint64_t pages;
};

static struct palloc threads_pa;
static volatile unsigned threads_bad;
static pthread_barrier_t threads_start;

static void tag_run(const struct thread_run *r, uint64_t tag)
{
        for (uint64_t p = 0; p < r->pages; p++)
                *(volatile uint64_t *)ptr_of(hpa_add(r->base, p * PAGE_SIZE + 8 * (tag % 511))) =
                    tag;
}

static bool run_has_tag(const struct thread_run *r, uint64_t tag)
{
        for (uint64_t p = 0; p < r->pages; p++)
                if (*(volatile uint64_t *)ptr_of(
                        hpa_add(r->base, p * PAGE_SIZE + 8 * (tag % 511))) != tag)
                        return false;
        return true;
}

static void *palloc_thread(void *arg)
{
        unsigned id = (unsigned)(uintptr_t)arg;
        struct thread_run live[THREAD_LIVE] = {0};
        uint64_t tags[THREAD_LIVE] = {0};
        uint64_t seed = 0x9e3779b97f4a7c15ull * (id + 1);

        pthread_barrier_wait(&threads_start);
        for (unsigned n = 0; n < THREAD_LOOPS; n++) {
                unsigned k;

                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                k = (unsigned)(seed >> 33) % THREAD_LIVE;
                if (live[k].pages) {
                        if (!run_has_tag(&live[k], tags[k]) ||
                            palloc_free(&threads_pa, live[k].base, live[k].pages) != 0)
                                __atomic_add_fetch(&threads_bad, 1, __ATOMIC_RELAXED);
                        live[k].pages = 0;
                        continue;
                }
                live[k].pages = 1 + (seed >> 40) % 4;
                if (palloc_alloc(&threads_pa, live[k].pages, PAGE_SIZE, &live[k].base) != 0) {
                        live[k].pages = 0;
                        continue;
                }
                if (!all_bytes(ptr_of(live[k].base), 0, live[k].pages * PAGE_SIZE))
                        __atomic_add_fetch(&threads_bad, 1, __ATOMIC_RELAXED);
                tags[k] = ((uint64_t)id << 32 | n) + 1;
                tag_run(&live[k], tags[k]);
        }
        for (unsigned k = 0; k < THREAD_LIVE; k++)
                if (live[k].pages && palloc_free(&threads_pa, live[k].base, live[k].pages) != 0)
                        __atomic_add_fetch(&threads_bad, 1, __ATOMIC_RELAXED);
        return NULL;
}

TEST(cpus_allocate_and_free_at_once)
{
        /* Small enough that the threads share bitmap words all the time. */
        void *m = setup_one(&threads_pa, 256 * PAGE_SIZE);
        pthread_t t[THREADS];
        uint64_t total;

        ASSERT_TRUE(m);
        total = palloc_free_pages(&threads_pa);
        pthread_barrier_init(&threads_start, NULL, THREADS);
        for (unsigned i = 0; i < THREADS; i++)
                ASSERT_TRUE(pthread_create(&t[i], NULL, palloc_thread, (void *)(uintptr_t)i) == 0);
        for (unsigned i = 0; i < THREADS; i++)
                pthread_join(t[i], NULL);
        pthread_barrier_destroy(&threads_start);
        EXPECT_EQ(threads_bad, 0);
        EXPECT_EQ(palloc_free_pages(&threads_pa), total);
        EXPECT_EQ(palloc_largest_run(&threads_pa, PAGE_SIZE), total);
        free(m);
}

TEST_MAIN()
