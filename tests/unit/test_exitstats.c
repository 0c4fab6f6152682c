/*
 * Tests for vmm/exitstats.c: counting and cost by reason as the arches do it, sums over
 * vCPUs, clears that need no help from the vCPU, the trace switch (one branch) and the ring:
 * wrap, what a reader may still read, clear.
 */
#include <vmm/exitstats.h>

#include "test.h"

static struct exit_trace_entry ring[EXIT_TRACE_LEN];

/* One exit as an arch's run loop accounts it: counted by reason, cost = end - at. */
static void exit_at(struct exit_stats *s, enum exit_reason r, uint64_t at, uint64_t cost,
                    uint64_t pc)
{
        s->count[r]++;
        if (exit_stats_end(s, r, cost))
                exit_trace_record(s, r, at, cost, pc, pc ^ 0xff, 0x72);
}

TEST(counts_and_ticks_by_reason)
{
        struct exit_stats s = {0};
        struct exit_totals t = {0};

        for (unsigned k = 0; k < 1000; k++)
                exit_at(&s, EXIT_CPUID, k * 1000, 263, 0x100000);
        exit_at(&s, EXIT_MMIO, 5, 4000, 0);
        exit_stats_add(&s, &t);
        EXPECT_EQ(t.count[EXIT_CPUID], 1000);
        EXPECT_EQ(t.ticks[EXIT_CPUID], 263000);
        EXPECT_EQ(t.count[EXIT_MMIO], 1);
        EXPECT_EQ(t.ticks[EXIT_MMIO], 4000);
        EXPECT_EQ(t.count[EXIT_HYPERCALL], 0);
        EXPECT_EQ(s.trace_head, 0); /* tracing off: nothing recorded */
}

TEST(sum_over_vcpus_and_clear)
{
        struct exit_stats a = {0}, b = {0};
        struct exit_totals t = {0};

        exit_at(&a, EXIT_HYPERCALL, 0, 100, 0);
        exit_at(&b, EXIT_HYPERCALL, 0, 50, 0);
        exit_at(&b, EXIT_HALT, 0, 7, 0);
        exit_stats_add(&a, &t);
        exit_stats_add(&b, &t);
        EXPECT_EQ(t.count[EXIT_HYPERCALL], 2);
        EXPECT_EQ(t.ticks[EXIT_HYPERCALL], 150);
        EXPECT_EQ(t.count[EXIT_HALT], 1);

        /* The clear moves the monitor's base only: the vCPU's own counters run on. */
        exit_stats_clear(&a);
        EXPECT_EQ(a.count[EXIT_HYPERCALL], 1);
        exit_at(&a, EXIT_HYPERCALL, 0, 30, 0);
        memset(&t, 0, sizeof(t));
        exit_stats_add(&a, &t);
        EXPECT_EQ(t.count[EXIT_HYPERCALL], 1);
        EXPECT_EQ(t.ticks[EXIT_HYPERCALL], 30);
}

TEST(trace_records_only_while_on)
{
        struct exit_stats s = {0};
        struct exit_trace_entry e;
        uint64_t first, head;

        exit_at(&s, EXIT_CPUID, 10, 1, 0x1000);
        exit_trace_enable(&s, ring);
        EXPECT_TRUE(s.trace);
        exit_at(&s, EXIT_CPUID, 20, 263, 0x101234);
        exit_trace_disable(&s);
        exit_at(&s, EXIT_CPUID, 30, 1, 0x2000);
        exit_trace_span(&s, &first, &head);
        EXPECT_EQ(first, 0);
        EXPECT_EQ(head, 1);
        ASSERT_TRUE(exit_trace_get(&s, 0, &e));
        EXPECT_EQ(e.tsc, 20);
        EXPECT_EQ(e.pc, 0x101234);
        EXPECT_EQ(e.info, 0x101234 ^ 0xff);
        EXPECT_EQ(e.cost, 263);
        EXPECT_EQ(e.code, 0x72);
        EXPECT_EQ(e.reason, EXIT_CPUID);
        EXPECT_FALSE(exit_trace_get(&s, 1, &e));
        /* The ring stays for a later on, and what it holds is kept. */
        exit_trace_enable(&s, NULL);
        EXPECT_TRUE(s.ring == ring);
        EXPECT_EQ(s.count[EXIT_CPUID], 3);
}

TEST(ring_wraps_and_keeps_the_newest)
{
        struct exit_stats s = {0};
        struct exit_trace_entry e;
        uint64_t first, head, n = 3 * EXIT_TRACE_LEN + 17;

        exit_trace_enable(&s, ring);
        for (uint64_t k = 0; k < n; k++)
                exit_at(&s, EXIT_IO, k, 1, 0x100000 + k);
        exit_trace_span(&s, &first, &head);
        EXPECT_EQ(head, n);
        /* The oldest slot is the next one written: the newest LEN - 1 are readable. */
        EXPECT_EQ(first, n - EXIT_TRACE_LEN + 1);
        EXPECT_FALSE(exit_trace_get(&s, first - 1, &e));
        for (uint64_t i = first; i < head; i++) {
                ASSERT_TRUE(exit_trace_get(&s, i, &e));
                EXPECT_EQ(e.pc, 0x100000 + i);
                EXPECT_EQ(e.tsc, i);
        }
        EXPECT_EQ(s.count[EXIT_IO], n);
}

TEST(trace_clear_forgets_what_was_recorded)
{
        struct exit_stats s = {0};
        struct exit_trace_entry e;
        uint64_t first, head;

        exit_trace_enable(&s, ring);
        for (unsigned k = 0; k < 5; k++)
                exit_at(&s, EXIT_MSR, k, 1, k);
        exit_trace_clear(&s);
        exit_trace_span(&s, &first, &head);
        EXPECT_EQ(first, 5);
        EXPECT_EQ(head, 5);
        EXPECT_FALSE(exit_trace_get(&s, 4, &e));
        exit_at(&s, EXIT_MSR, 9, 1, 0x99);
        ASSERT_TRUE(exit_trace_get(&s, 5, &e));
        EXPECT_EQ(e.pc, 0x99);
}

TEST(cost_saturates_in_the_trace_not_in_the_sum)
{
        struct exit_stats s = {0};
        struct exit_totals t = {0};
        struct exit_trace_entry e;

        exit_trace_enable(&s, ring);
        exit_at(&s, EXIT_HALT, 0, 1ull << 40, 0);
        ASSERT_TRUE(exit_trace_get(&s, 0, &e));
        EXPECT_EQ(e.cost, UINT32_MAX);
        exit_stats_add(&s, &t);
        EXPECT_EQ(t.ticks[EXIT_HALT], 1ull << 40);
}

TEST(names_and_summary)
{
        static const char *const names[EXIT_REASONS] = {
            [EXIT_CPUID] = "cpuid", [EXIT_MMIO] = "mmio", [EXIT_OTHER] = "other"};
        struct exit_stats s = {0};
        char buf[64];

        EXPECT_STREQ(exit_reason_name(EXIT_HYPERCALL), "hypercall");
        EXPECT_STREQ(exit_reason_name(EXIT_HALT), "halt");
        EXPECT_STREQ(exit_reason_name(EXIT_REASONS), "?");
        exit_stats_summary(&s, names, buf, sizeof(buf));
        EXPECT_STREQ(buf, "none");
        s.count[EXIT_OTHER] = 2;
        s.count[EXIT_MMIO] = 7;
        s.count[EXIT_CPUID] = 5;
        s.count[EXIT_SYSREG] = 3; /* no name on this arch: not shown */
        exit_stats_summary(&s, names, buf, sizeof(buf));
        EXPECT_STREQ(buf, "cpuid 5, mmio 7, other 2");
        exit_stats_summary(&s, names, buf, 12);
        EXPECT_STREQ(buf, "cpuid 5, mm");
}

TEST_MAIN()
