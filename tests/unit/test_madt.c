/*
 * Tests for arch/x86_64/madt.c: which CPUs an ACPI MADT lists (Local APIC and x2APIC entries,
 * enabled only, each id once, other entry types skipped, malformed entries end the scan).
 */
#include <string.h>

#include <arch/madt.h>

#include "test.h"

static uint8_t madt[8192]; /* room for 300 x2APIC entries */
static uint32_t madt_len;

/* x86_madt_cpus with room for `max` ids counts `total` CPUs and lists the ids given. */
#define EXPECT_CPUS(max, total, ...)                                               \
        do {                                                                       \
                uint32_t ids_[8] = {0};                                            \
                const uint32_t want_[] = {__VA_ARGS__};                            \
                EXPECT_EQ(x86_madt_cpus(madt, madt_len, ids_, max), total);        \
                for (unsigned i_ = 0; i_ < sizeof(want_) / sizeof(want_[0]); i_++) \
                        EXPECT_EQ(ids_[i_], want_[i_]);                            \
        } while (0)

static void madt_begin(void)
{
        memset(madt, 0, sizeof(madt));
        memcpy(madt, "APIC", 4);
        madt_len = 44; /* header, LAPIC address, flags */
}

static void put32(uint8_t *p, uint32_t v)
{
        for (unsigned i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static void add_lapic(uint8_t id, uint32_t flags)
{
        uint8_t *e = madt + madt_len;

        e[0] = 0;
        e[1] = 8;
        e[2] = id; /* processor UID */
        e[3] = id;
        put32(e + 4, flags);
        madt_len += 8;
}

static void add_x2apic(uint32_t id, uint32_t flags)
{
        uint8_t *e = madt + madt_len;

        e[0] = 9;
        e[1] = 16;
        put32(e + 4, id);
        put32(e + 8, flags);
        put32(e + 12, id); /* UID */
        madt_len += 16;
}

static void add_other(uint8_t type, uint8_t len)
{
        madt[madt_len] = type;
        madt[madt_len + 1] = len;
        madt_len += len;
}

TEST(lapic_entries_enabled_only_in_order)
{
        madt_begin();
        add_lapic(0, 1);
        add_other(1, 12); /* I/O APIC */
        add_lapic(2, 1);
        add_lapic(1, 0);  /* disabled */
        add_lapic(3, 2);  /* online capable, not enabled */
        add_other(2, 10); /* interrupt source override */
        add_lapic(5, 1);
        EXPECT_CPUS(8, 3u, 0, 2, 5);
}

TEST(x2apic_entries_and_duplicates)
{
        madt_begin();
        add_lapic(0, 1);
        add_x2apic(0, 1); /* the same CPU again */
        add_x2apic(300, 1);
        add_x2apic(0xffffffffu, 1); /* no id */
        add_x2apic(301, 0);
        EXPECT_CPUS(8, 2u, 0, 300);
}

TEST(more_than_max_are_counted)
{
        madt_begin();
        for (uint8_t i = 0; i < 5; i++)
                add_lapic(i, 1);
        EXPECT_CPUS(2, 5u, 0, 1, 0); /* the third slot untouched */
}

TEST(malformed_entries_end_the_scan)
{
        madt_begin();
        add_lapic(0, 1);
        madt[madt_len] = 7; /* zero length: would loop forever */
        madt_len += 8;
        add_lapic(1, 1);
        EXPECT_CPUS(8, 1u, 0);

        madt_begin();
        add_lapic(0, 1);
        add_lapic(1, 1);
        madt_len--; /* the table ends inside the second entry */
        EXPECT_CPUS(8, 1u, 0);

        madt_begin();
        add_lapic(0, 1);
        madt[44 + 1] = 4; /* a Local APIC entry too short for its flags: skipped */
        madt_len = 44 + 4;
        add_lapic(1, 1);
        EXPECT_CPUS(8, 1u, 1);
}

/*
 * A large machine: 300 CPUs, the first 200 as Local APIC entries (ids 0..199), the rest as
 * x2APIC entries with ids above 255, one repeated. Counting first (no room) then reading all of
 * them, as x86_smp_prepare does, gives every id once, in table order.
 */
TEST(three_hundred_cpus_x2apic_ids_above_255)
{
        static uint32_t ids[400];
        unsigned n;

        madt_begin();
        for (unsigned i = 0; i < 200; i++)
                add_lapic((uint8_t)i, 1);
        for (unsigned i = 0; i < 100; i++)
                add_x2apic(256 + 3 * i, 1);
        add_x2apic(256, 1); /* the same CPU again */
        ASSERT_TRUE(madt_len <= sizeof(madt));
        n = x86_madt_cpus(madt, madt_len, NULL, 0);
        EXPECT_EQ(n, 301); /* an upper bound: repeats are found once there is room */
        EXPECT_EQ(x86_madt_cpus(madt, madt_len, ids, n), 300);
        for (unsigned i = 0; i < 200; i++)
                EXPECT_EQ(ids[i], i);
        for (unsigned i = 0; i < 100; i++)
                EXPECT_EQ(ids[200 + i], 256 + 3 * i);
}

TEST(no_entries)
{
        madt_begin();
        EXPECT_CPUS(8, 0u, 0);
        madt_len = 10; /* shorter than the header */
        EXPECT_CPUS(8, 0u, 0);
}

TEST_MAIN()
