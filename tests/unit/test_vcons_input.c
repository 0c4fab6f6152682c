/*
 * The console input ring of vmm/vcons.c: bytes typed for a VM, pushed by the console's
 * router and popped by the VM's vCPU (single producer, single consumer).
 */
#include <string.h>

#include <vmm/vcons.h>

#include "test.h"

TEST(push_then_pop_in_order)
{
        struct vcons c;
        uint8_t out[8];

        vcons_init(&c, "vm");
        EXPECT_EQ(vcons_input_pending(&c), 0u);
        EXPECT_EQ(vcons_input_push(&c, (const uint8_t *)"abc", 3), 3u);
        EXPECT_EQ(vcons_input_pending(&c), 3u);
        EXPECT_EQ(vcons_input_pop(&c, out, 2), 2u);
        EXPECT_TRUE(memcmp(out, "ab", 2) == 0);
        EXPECT_EQ(vcons_input_pop(&c, out, sizeof(out)), 1u);
        EXPECT_EQ(out[0], 'c');
        EXPECT_EQ(vcons_input_pop(&c, out, sizeof(out)), 0u);
        EXPECT_EQ(vcons_input_pending(&c), 0u);
}

TEST(full_ring_drops_the_rest)
{
        static uint8_t in[VCONS_IN_MAX + 10], out[VCONS_IN_MAX + 10];
        struct vcons c;

        for (unsigned i = 0; i < sizeof(in); i++)
                in[i] = (uint8_t)i;
        vcons_init(&c, "vm");
        EXPECT_EQ(vcons_input_push(&c, in, sizeof(in)), (size_t)VCONS_IN_MAX);
        EXPECT_EQ(vcons_input_push(&c, in, 1), 0u);
        EXPECT_EQ(vcons_input_pending(&c), (size_t)VCONS_IN_MAX);
        EXPECT_EQ(vcons_input_pop(&c, out, sizeof(out)), (size_t)VCONS_IN_MAX);
        EXPECT_TRUE(memcmp(in, out, VCONS_IN_MAX) == 0);
}

TEST(wraps_around_many_times)
{
        struct vcons c;
        uint8_t b[7], out[7];
        unsigned next_in = 0, next_out = 0;

        vcons_init(&c, "vm");
        for (unsigned round = 0; round < 1000; round++) {
                size_t n;

                for (unsigned i = 0; i < sizeof(b); i++)
                        b[i] = (uint8_t)(next_in + i);
                n = vcons_input_push(&c, b, sizeof(b));
                next_in += (unsigned)n;
                n = vcons_input_pop(&c, out, round % 2 ? 7 : 5);
                for (size_t i = 0; i < n; i++)
                        EXPECT_EQ(out[i], (uint8_t)next_out++);
        }
        EXPECT_EQ(vcons_input_pending(&c), (size_t)(next_in - next_out));
        vcons_input_clear(&c);
        EXPECT_EQ(vcons_input_pending(&c), 0u);
}

TEST_MAIN()
