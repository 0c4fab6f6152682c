/*
 * Device vectors and pollers (kernel/irq.c) on the fake arch, whose device range is x86's
 * (0x30, 32 vectors): allocation until the range is used up, dispatch to the owner only and
 * counting, pollers called in order and their limit, and a poll at a time (irq_poll_by).
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

extern uint64_t fake_tsc, fake_timer_at; /* arch/fake */

TEST(a_poll_time_runs_the_pollers_once_it_has_come_and_the_earliest_counts)
{
        irq_reset_for_test();
        norder = 0;
        EXPECT_EQ(irq_poll_register(poller, (void *)(uintptr_t)7), 0);
        fake_tsc = 1000;
        fake_timer_at = UINT64_MAX;
        EXPECT_EQ(irq_poll_next(), UINT64_MAX);
        irq_poll_by(5000);
        EXPECT_EQ(irq_poll_next(), 5000);
        EXPECT_EQ(fake_timer_at, 5000); /* this CPU's timer asked for it */
        irq_poll_by(7000);              /* later: the earlier one stands */
        EXPECT_EQ(irq_poll_next(), 5000);
        irq_poll_by(3000); /* earlier: it counts, and the timer comes for it */
        EXPECT_EQ(irq_poll_next(), 3000);
        EXPECT_EQ(fake_timer_at, 3000);
        irq_poll_deferred(); /* a window before then: no pollers */
        EXPECT_EQ(norder, 0);
        fake_tsc = 3000;
        irq_poll_deferred(); /* it has come: the pollers, once */
        EXPECT_EQ(norder, 1);
        EXPECT_EQ(order[0], 7);
        /* Served, and the later requests with it (a poller still waiting asks again). */
        EXPECT_EQ(irq_poll_next(), UINT64_MAX);
        fake_tsc = 9000;
        irq_poll_deferred();
        EXPECT_EQ(norder, 1);
        /* A scheduling round's pass serves one that has come too. */
        irq_poll_by(8000);
        irq_poll_all();
        EXPECT_EQ(norder, 2);
        EXPECT_EQ(irq_poll_next(), UINT64_MAX);
        irq_poll_by(0); /* TSC 0 is a time like any other, not "none" */
        EXPECT_EQ(irq_poll_next(), 1);
        irq_reset_for_test();
        EXPECT_EQ(irq_poll_next(), UINT64_MAX);
}

TEST(a_poll_time_with_slack_asks_the_timer_for_its_end_and_an_entry_serves_it)
{
        irq_reset_for_test();
        norder = 0;
        EXPECT_EQ(irq_poll_register(poller, (void *)(uintptr_t)9), 0);
        fake_tsc = 1000;
        fake_timer_at = UINT64_MAX;
        irq_poll_by_slack(5000, 2000);
        EXPECT_EQ(irq_poll_next(), 7000); /* the timer comes for the end */
        EXPECT_EQ(fake_timer_at, 7000);
        EXPECT_FALSE(irq_poll_entry()); /* an entry before the start: nothing */
        EXPECT_EQ(norder, 0);
        irq_poll_by_slack(6000, 500); /* a later start with an earlier end: both count */
        EXPECT_EQ(irq_poll_next(), 6500);
        EXPECT_EQ(fake_timer_at, 6500);
        fake_tsc = 5000;
        EXPECT_TRUE(irq_poll_entry()); /* from the start an entry serves it, whole */
        EXPECT_EQ(norder, 1);
        EXPECT_EQ(order[0], 9);
        EXPECT_EQ(irq_poll_next(), UINT64_MAX);
        EXPECT_FALSE(irq_poll_entry());
        EXPECT_EQ(norder, 1);
        /* A window's deferred pass serves it from the start too; no slack is irq_poll_by. */
        irq_poll_by_slack(5500, 1000);
        fake_tsc = 5500;
        irq_poll_deferred();
        EXPECT_EQ(norder, 2);
        irq_poll_by(8000);
        EXPECT_EQ(irq_poll_next(), 8000);
        /* The end saturates. */
        irq_poll_by_slack(UINT64_MAX - 10, 100);
        EXPECT_EQ(irq_poll_next(), 8000);
        irq_reset_for_test();
        irq_poll_by_slack(UINT64_MAX - 10, 100);
        EXPECT_EQ(irq_poll_next(), UINT64_MAX);
        irq_reset_for_test();
}

TEST_MAIN()
