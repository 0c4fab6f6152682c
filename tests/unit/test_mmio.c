/* The MMIO bus: registration rules and routing of accesses to the right device and offset. */
#include <keel/errno.h>
#include <vmm/mmio.h>

#include "test.h"

struct fake_dev {
        uint64_t last_off, last_val;
        unsigned last_size, reads, writes;
};

static void fake_read(void *dev, uint64_t off, unsigned size, uint64_t *val)
{
        struct fake_dev *d = dev;

        d->reads++;
        d->last_off = off;
        d->last_size = size;
        *val = 0x1000 + off;
}

static void fake_write(void *dev, uint64_t off, unsigned size, uint64_t val)
{
        struct fake_dev *d = dev;

        d->writes++;
        d->last_off = off;
        d->last_size = size;
        d->last_val = val;
}

static const struct mmio_ops fake_ops = {fake_read, fake_write, NULL};

/* A device that asks for its last write to be executed again when it was 0x77. */
static bool fake_again(void *dev)
{
        struct fake_dev *d = dev;

        return d->last_val == 0x77;
}

static const struct mmio_ops again_ops = {fake_read, fake_write, fake_again};

TEST(registration_rules)
{
        struct mmio_bus bus;
        struct fake_dev d = {0};

        mmio_bus_init(&bus);
        EXPECT_EQ(mmio_bus_add(&bus, gpa(0xd0000000), 0x200, &fake_ops, &d, "a"), 0);
        EXPECT_EQ(mmio_bus_add(&bus, gpa(0xd0000200), 0x200, &fake_ops, &d, "b"), 0);
        /* Overlaps (inside, straddling either edge), zero size, wrap-around. */
        EXPECT_EQ(mmio_bus_add(&bus, gpa(0xd0000100), 0x10, &fake_ops, &d, "x"), -KEEL_EINVAL);
        EXPECT_EQ(mmio_bus_add(&bus, gpa(0xcffffff0), 0x20, &fake_ops, &d, "x"), -KEEL_EINVAL);
        EXPECT_EQ(mmio_bus_add(&bus, gpa(0xd00003f0), 0x20, &fake_ops, &d, "x"), -KEEL_EINVAL);
        EXPECT_EQ(mmio_bus_add(&bus, gpa(0xe0000000), 0, &fake_ops, &d, "x"), -KEEL_EINVAL);
        EXPECT_EQ(mmio_bus_add(&bus, gpa(~0ull - 0xf), 0x20, &fake_ops, &d, "x"), -KEEL_EINVAL);
        EXPECT_EQ(mmio_bus_add(&bus, gpa(0xe0000000), 0x10, NULL, &d, "x"), -KEEL_EINVAL);
        for (unsigned i = 2; i < MMIO_MAX_REGIONS; i++)
                EXPECT_EQ(
                    mmio_bus_add(&bus, gpa(0xe0000000 + i * 0x1000ull), 0x1000, &fake_ops, &d, "n"),
                    0);
        EXPECT_EQ(mmio_bus_add(&bus, gpa(0xf0000000), 0x1000, &fake_ops, &d, "full"), -KEEL_ENOSPC);
}

TEST(accesses_reach_the_right_device_and_offset)
{
        struct mmio_bus bus;
        struct fake_dev a = {0}, b = {0};
        uint64_t v;

        mmio_bus_init(&bus);
        ASSERT_TRUE(mmio_bus_add(&bus, gpa(0xd0000000), 0x200, &fake_ops, &a, "a") == 0);
        ASSERT_TRUE(mmio_bus_add(&bus, gpa(0xfee00000), 0x1000, &fake_ops, &b, "b") == 0);
        EXPECT_TRUE(mmio_bus_access(&bus, gpa(0xd0000070), 4, false, &v));
        EXPECT_EQ(v, 0x1070);
        EXPECT_EQ(a.reads, 1);
        EXPECT_EQ(a.last_size, 4);
        v = 0xabcd;
        EXPECT_TRUE(mmio_bus_access(&bus, gpa(0xfee000b0), 4, true, &v));
        EXPECT_EQ(b.writes, 1);
        EXPECT_EQ(b.last_off, 0xb0);
        EXPECT_EQ(b.last_val, 0xabcd);
        /* Last byte inside; crossing the end; just past; below; between devices. */
        EXPECT_TRUE(mmio_bus_access(&bus, gpa(0xd00001ff), 1, false, &v));
        EXPECT_FALSE(mmio_bus_access(&bus, gpa(0xd00001fe), 4, false, &v));
        EXPECT_FALSE(mmio_bus_access(&bus, gpa(0xd0000200), 1, false, &v));
        EXPECT_FALSE(mmio_bus_access(&bus, gpa(0xcfffffff), 1, true, &v));
        EXPECT_FALSE(mmio_bus_access(&bus, gpa(0xe0000000), 8, false, &v));
        EXPECT_EQ(a.writes, 0);
}

TEST(write_again_asks_the_device_at_that_address)
{
        struct mmio_bus bus;
        struct fake_dev a = {0}, b = {0};
        uint64_t v = 0x77;

        mmio_bus_init(&bus);
        ASSERT_TRUE(mmio_bus_add(&bus, gpa(0xd0000000), 0x200, &again_ops, &a, "a") == 0);
        ASSERT_TRUE(mmio_bus_add(&bus, gpa(0xd0001000), 0x200, &fake_ops, &b, "b") == 0);
        EXPECT_TRUE(mmio_bus_access(&bus, gpa(0xd0000050), 4, true, &v));
        EXPECT_TRUE(mmio_bus_write_again(&bus, gpa(0xd0000050)));
        v = 1;
        EXPECT_TRUE(mmio_bus_access(&bus, gpa(0xd0000050), 4, true, &v));
        EXPECT_FALSE(mmio_bus_write_again(&bus, gpa(0xd0000050)));
        v = 0x77;
        EXPECT_TRUE(mmio_bus_access(&bus, gpa(0xd0001050), 4, true, &v));
        EXPECT_FALSE(mmio_bus_write_again(&bus, gpa(0xd0001050))); /* no `again` op */
        EXPECT_FALSE(mmio_bus_write_again(&bus, gpa(0xe0000000))); /* no device */
}

TEST_MAIN()
