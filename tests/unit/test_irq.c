/*
 * Device vectors and pollers (kernel/irq.c) on the fake arch, whose device range is x86's
 * (0x30, 32 vectors): allocation until the range is used up, dispatch to the owner only and
 * counting, pollers called in order and their limit.
 */
#include <keel/errno.h>
#include <keel/irq.h>

#include "test.h"

static unsigned hits[ARCH_IRQ_COUNT + 1];

static void handler(void *arg)
{
        hits[(unsigned)(uintptr_t)arg]++;
}

TEST(vectors_are_handed_out_once_and_dispatched_to_their_owner)
{
        uint8_t v[ARCH_IRQ_COUNT], extra = 0;

        irq_reset_for_test();
        for (unsigned i = 0; i < ARCH_IRQ_COUNT; i++) {
                EXPECT_EQ(irq_alloc(0, handler, (void *)(uintptr_t)i, &v[i]), 0);
                EXPECT_EQ(v[i], ARCH_IRQ_FIRST + i);
        }
        EXPECT_EQ(irq_alloc(0, handler, NULL, &extra), -KEEL_ENOSPC);
        EXPECT_TRUE(irq_dispatch(v[5]));
        EXPECT_TRUE(irq_dispatch(v[5]));
        EXPECT_TRUE(irq_dispatch(v[31]));
        EXPECT_EQ(hits[5], 2);
        EXPECT_EQ(hits[31], 1);
        EXPECT_EQ(hits[0], 0);
        EXPECT_EQ(irq_count(v[5]), 2);
        EXPECT_EQ(irq_count(v[6]), 0);
        /* Outside the range, or not taken: nobody's. */
        EXPECT_FALSE(irq_dispatch(ARCH_IRQ_FIRST - 1));
        EXPECT_FALSE(irq_dispatch(ARCH_IRQ_FIRST + ARCH_IRQ_COUNT));
        EXPECT_FALSE(irq_dispatch(0));
        EXPECT_EQ(irq_count(0), 0);
        irq_reset_for_test();
        EXPECT_FALSE(irq_dispatch(v[5]));
        EXPECT_EQ(hits[5], 2);
}

static unsigned order[IRQ_MAX_POLLERS + 1], norder;

static void poller(void *arg)
{
        order[norder++] = (unsigned)(uintptr_t)arg;
}

TEST(pollers_run_in_order_up_to_the_limit)
{
        irq_reset_for_test();
        norder = 0;
        irq_poll_all(); /* none: nothing happens */
        EXPECT_EQ(norder, 0);
        for (unsigned i = 0; i < IRQ_MAX_POLLERS; i++)
                EXPECT_EQ(irq_poll_register(poller, (void *)(uintptr_t)(i + 1)), 0);
        EXPECT_EQ(irq_poll_register(poller, NULL), -KEEL_ENOSPC);
        irq_poll_all();
        EXPECT_EQ(norder, IRQ_MAX_POLLERS);
        for (unsigned i = 0; i < IRQ_MAX_POLLERS; i++)
                EXPECT_EQ(order[i], i + 1);
        irq_reset_for_test();
}

TEST_MAIN()
