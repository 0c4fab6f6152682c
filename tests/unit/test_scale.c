/*
 * Keel sized from the machine (docs/smp.md, docs/architecture.md): per-CPU tables as long as
 * the firmware's CPU count (kernel/percpu.c), Keel's memory map grown for three guard pages
 * per CPU (kernel/hostmap.c), and the rule for freeing a VM's structures: only after a grace
 * period in which every other CPU passed a quiescent point (kernel/grace.c).
 */
#include <stdlib.h>
#include <string.h>

#include <keel/errno.h>
#include <keel/grace.h>
#include <keel/hostmap.h>
#include <keel/palloc.h>
#include <keel/smp.h>

#include "test.h"

#define MIB   (1ull << 20)
#define NCPUS 256

extern unsigned fake_cpu_slots;

TEST(percpu_table_has_an_entry_per_cpu_slot)
{
        void *mem = aligned_alloc(2 * MIB, 2 * MIB);
        struct mem_range r;
        uint64_t free0;
        uint8_t *t;

        ASSERT_TRUE(mem);
        r = (struct mem_range){hpa((uint64_t)(uintptr_t)mem), 2 * MIB / PAGE_SIZE};
        ASSERT_TRUE(palloc_init(&keel_palloc, &r, 1) == 0);
        free0 = palloc_free_pages(&keel_palloc);
        fake_cpu_slots = NCPUS;
        t = percpu_table(24, "test entries"); /* 256 * 24 bytes: two pages */
        EXPECT_EQ(free0 - palloc_free_pages(&keel_palloc), 2);
        for (unsigned i = 0; i < NCPUS * 24; i++)
                EXPECT_EQ(t[i], 0);
        fake_cpu_slots = 1;
        t = percpu_table(8, "test entries");
        EXPECT_EQ(free0 - palloc_free_pages(&keel_palloc), 3);
        memset(&keel_palloc, 0, sizeof(keel_palloc));
        free(mem);
}

/* Guard pages of 256 CPUs: beyond the fixed table until it is grown, then all found. */
TEST(hostmap_grows_for_many_cpus)
{
        static struct hostmap m;
        static struct hostmap_region room[3 * NCPUS + 8];
        const struct hostmap_region *f;
        unsigned i;
        int err = 0;

        for (i = 0; i < 3 * NCPUS && !err; i++)
                err = hostmap_add(&m, (1 + 2 * (uint64_t)i) * PAGE_SIZE, PAGE_SIZE, HOSTMAP_GUARD,
                                  "guard page below the stack of", (int)(i / 3));
        EXPECT_EQ(err, -KEEL_ENOSPC);
        EXPECT_EQ(m.count, HOSTMAP_MAX_REGIONS);
        EXPECT_EQ(hostmap_grow(&m, room, m.count), -KEEL_EINVAL);
        EXPECT_EQ(hostmap_grow(&m, NULL, 1000), -KEEL_EINVAL);
        EXPECT_EQ(hostmap_grow(&m, room, 3 * NCPUS + 8), 0);
        for (i = HOSTMAP_MAX_REGIONS; i < 3 * NCPUS; i++)
                EXPECT_EQ(hostmap_add(&m, (1 + 2 * (uint64_t)i) * PAGE_SIZE, PAGE_SIZE,
                                      HOSTMAP_GUARD, "guard page below the stack of", (int)(i / 3)),
                          0);
        EXPECT_EQ(m.count, 3 * NCPUS);
        /* The earlier regions moved along, sorted; the last CPU's guard is found. */
        f = hostmap_find(&m, 3 * PAGE_SIZE);
        ASSERT_TRUE(f != NULL);
        EXPECT_EQ(f->cpu, 0);
        f = hostmap_find(&m, (1 + 2 * (uint64_t)(3 * NCPUS - 1)) * PAGE_SIZE);
        ASSERT_TRUE(f != NULL);
        EXPECT_EQ(f->cpu, NCPUS - 1);
        EXPECT_TRUE(hostmap_find(&m, 2 * PAGE_SIZE) == NULL);
        for (i = 1; i < m.count; i++)
                EXPECT_TRUE(hostmap_regions(&m)[i - 1].base < hostmap_regions(&m)[i].base);
        for (i = 0; m.count < 3 * NCPUS + 8; i++) /* the room's own limit */
                EXPECT_EQ(
                    hostmap_add(&m, (1ull << 40) + i * PAGE_SIZE, PAGE_SIZE, HOSTMAP_GUARD, "x", 0),
                    0);
        EXPECT_EQ(hostmap_add(&m, 1ull << 41, PAGE_SIZE, HOSTMAP_GUARD, "x", 0), -KEEL_ENOSPC);
}

/*
 * The freeing rule: a ticket taken after the VM became unreachable is done only once every
 * other CPU has passed a quiescent point after it; points before it do not count, the caller
 * itself does not count.
 */
TEST(grace_waits_for_every_other_cpu)
{
        static uint64_t seen[NCPUS];
        struct grace g;
        uint64_t t1, t2;

        memset(seen, 0xa5, sizeof(seen));
        grace_init(&g, seen, NCPUS);
        for (unsigned c = 0; c < NCPUS; c++)
                grace_quiescent(&g, c); /* before the ticket: does not count */
        t1 = grace_begin(&g);
        EXPECT_FALSE(grace_done(&g, t1, 0));
        for (unsigned c = 0; c < NCPUS - 1; c++)
                grace_quiescent(&g, c);
        EXPECT_FALSE(grace_done(&g, t1, 0));        /* CPU 255 is still in its round */
        EXPECT_TRUE(grace_done(&g, t1, NCPUS - 1)); /* unless it is the caller */
        t2 = grace_begin(&g);
        EXPECT_TRUE(t2 > t1);
        grace_quiescent(&g, NCPUS - 1);
        EXPECT_TRUE(grace_done(&g, t1, 0));
        EXPECT_FALSE(grace_done(&g, t2, 0)); /* the others passed theirs before t2 */
        for (unsigned c = 1; c < NCPUS; c++)
                grace_quiescent(&g, c);
        EXPECT_TRUE(grace_done(&g, t2, 0));
}

TEST(grace_on_one_cpu_is_immediate)
{
        static uint64_t seen[1];
        struct grace g;

        grace_init(&g, seen, 1);
        EXPECT_TRUE(grace_done(&g, grace_begin(&g), 0));
}

TEST_MAIN()
