/*
 * The vCPU scheduler (kernel/sched.c, keel/sched.h, docs/scheduler.md) on the fake arch:
 * time is simulated, each "slice" is a pick, `ran` ticks and a put. Shares by weight, turns,
 * blocking and the sleepers' credit bound, pinning, placement, stealing, removal, errors,
 * accounting, virtual-time wrap, a long random run against the queues' invariants, and
 * threads driving the CPUs at once.
 */
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#include <keel/check.h>
#include <keel/errno.h>
#include <keel/sched.h>

#include "test.h"

#define SLICE 3000 /* ticks; divisible by 3 so weight 768 gets an exact third */
#define NENT  16

struct vcpu {
        struct sched_entity se;
        bool ready; /* what ready() answers while it is blocked */
        unsigned polls;
        unsigned last_cpu; /* cpus_in_threads: where it ran last */
};

/* Run queues are the caller's memory, sized from the machine's CPU count (keel/smp.h). */
#define TEST_CPUS 256
static struct sched s;
static struct sched_cpu queues[TEST_CPUS];
static struct vcpu v[NENT];
static uint64_t now;

static bool ready_fn(struct sched_entity *e)
{
        struct vcpu *c = e->owner;

        c->polls++;
        return c->ready;
}

static void setup(unsigned ncpus)
{
        memset(v, 0, sizeof(v));
        memset(&s, 0xa5, sizeof(s)); /* sched_init must not rely on zeroed memory */
        memset(queues, 0xa5, sizeof(queues));
        now = 1000;
        sched_init(&s, queues, ncpus, SLICE, ready_fn);
        for (unsigned i = 0; i < NENT; i++) {
                v[i].se.owner = &v[i];
                v[i].se.pin = SCHED_NO_PIN;
        }
}

static int add(unsigned i, uint32_t weight, int pin)
{
        v[i].se.weight = weight;
        v[i].se.pin = pin;
        return sched_add(&s, &v[i].se, now);
}

/* One CPU, entities 0 and 1 of the given weights. */
static void two_on_one_cpu(uint32_t w0, uint32_t w1)
{
        setup(1);
        EXPECT_EQ(add(0, w0, SCHED_NO_PIN), 0);
        EXPECT_EQ(add(1, w1, SCHED_NO_PIN), 0);
}

/* Index of a picked entity, -1 for idle. */
static int idx(const struct sched_entity *e)
{
        return e ? (int)((const struct vcpu *)e->owner - v) : -1;
}

static int pick(unsigned cpu)
{
        return idx(sched_pick(&s, cpu, now));
}

static void put(int i, uint64_t ran, enum sched_put_how how)
{
        now += ran;
        sched_put(&s, &v[i].se, ran, how);
}

/* One slice on `cpu`: pick, run a full slice, preempt. Returns who ran (-1: idle). */
static int slice_on(unsigned cpu)
{
        int i = pick(cpu);

        if (i >= 0)
                put(i, SLICE, SCHED_PREEMPTED);
        return i;
}

static void run_slices(unsigned cpu, unsigned n)
{
        for (unsigned k = 0; k < n; k++)
                slice_on(cpu);
}

/* Every CPU picks, then every CPU's entity runs out its slice (lockstep rounds). */
static void rounds(unsigned n, unsigned *idle)
{
        int cur[TEST_CPUS];

        for (unsigned r = 0; r < n; r++) {
                for (unsigned c = 0; c < s.ncpus; c++)
                        cur[c] = pick(c);
                for (unsigned c = 0; c < s.ncpus; c++) {
                        if (cur[c] >= 0)
                                sched_put(&s, &v[cur[c]].se, SLICE, SCHED_PREEMPTED);
                        else if (idle)
                                idle[c]++;
                }
                now += SLICE;
        }
}

static uint64_t slices_of(unsigned i)
{
        return v[i].se.runtime / SLICE;
}

/* The queues' invariants; false (and a message) if one does not hold. */
static bool queues_ok(const char *file, int line)
{
        bool ok = true;

#define QCHECK(c)                                                          \
        do {                                                               \
                if (!(c)) {                                                \
                        TEST_FAIL_AT(file, line, "queue %u: %s", cpu, #c); \
                        ok = false;                                        \
                }                                                          \
        } while (0)

        for (unsigned cpu = 0; cpu < s.ncpus; cpu++) {
                const struct sched_cpu *q = &s.cpus[cpu];
                unsigned n = 0, runnable = 0;

                QCHECK(q->lock.locked == 0);
                for (const struct sched_entity *e = q->head; e && n <= NENT; e = e->next) {
                        n++;
                        runnable++;
                        QCHECK(e->state == SCHED_RUNNABLE);
                        /* sorted by virtual time, doubly linked */
                        QCHECK(!e->next || !((int64_t)(e->next->vruntime - e->vruntime) < 0));
                        QCHECK(e->next ? e->next->prev == e : q->tail == e);
                        QCHECK(e->prev ? e->prev->next == e : q->head == e);
                        QCHECK(e->cpu == cpu);
                        QCHECK(e->cur_pin == SCHED_NO_PIN || e->cur_pin == (int)cpu);
                        /* Sleepers' credit bound: nobody waits more than a slice behind. */
                        QCHECK((int64_t)(e->vruntime - q->min_vruntime) >= -SLICE);
                }
                QCHECK(q->head ? !q->head->prev : !q->tail);
                for (const struct sched_entity *e = q->blocked; e && n <= NENT; e = e->next) {
                        n++;
                        QCHECK(e->next ? e->next->prev == e : q->blocked_tail == e);
                        QCHECK(e->prev ? e->prev->next == e : q->blocked == e);
                        QCHECK(e->state == SCHED_BLOCKED);
                        QCHECK(e->cpu == cpu);
                        QCHECK(e->cur_pin == SCHED_NO_PIN || e->cur_pin == (int)cpu);
                }
                QCHECK(n == q->count);
                QCHECK(runnable == q->runnable);
                if (q->current) {
                        QCHECK(q->current->state == SCHED_RUNNING);
                        QCHECK(q->current->cpu == cpu);
                }
        }
#undef QCHECK
        return ok;
}

#define EXPECT_QUEUES_OK() EXPECT_TRUE(queues_ok(__FILE__, __LINE__))

/* ---- shares and turns -------------------------------------------------------------------- */

static void expect_shares(const uint32_t *weights, unsigned n, unsigned total)
{
        uint64_t sum = 0;

        setup(1);
        for (unsigned i = 0; i < n; i++) {
                sum += weights[i];
                EXPECT_EQ(add(i, weights[i], SCHED_NO_PIN), 0);
        }
        for (unsigned k = 0; k < total; k++)
                EXPECT_TRUE(slice_on(0) >= 0);
        for (unsigned i = 0; i < n; i++) {
                uint64_t want = total * (uint64_t)weights[i] / sum;
                uint64_t got = slices_of(i);

                if (got + 2 < want || got > want + 2)
                        TEST_FAIL_AT(__FILE__, __LINE__, "weight %u: %llu slices of %u, want %llu",
                                     (unsigned)weights[i], (unsigned long long)got, total,
                                     (unsigned long long)want);
        }
        EXPECT_QUEUES_OK();
}

TEST(weights_give_shares)
{
        static const uint32_t w1[] = {256, 768};
        static const uint32_t w2[] = {512, 256};
        static const uint32_t w3[] = {100, 200, 700};
        static const uint32_t w4[] = {1, 256, 65536};

        expect_shares(w1, 2, 1000); /* 25% / 75% */
        EXPECT_TRUE(slices_of(0) >= 248 && slices_of(0) <= 252);
        EXPECT_TRUE(slices_of(1) >= 748 && slices_of(1) <= 752);
        expect_shares(w2, 2, 999);
        expect_shares(w3, 3, 1000);
        expect_shares(w4, 3, 2000);
}

TEST(weight_zero_is_default)
{
        two_on_one_cpu(0, SCHED_WEIGHT_DEFAULT);
        EXPECT_EQ(v[0].se.cur_weight, SCHED_WEIGHT_DEFAULT);
        run_slices(0, 100);
        EXPECT_EQ(slices_of(0), 50);
        EXPECT_EQ(slices_of(1), 50);
}

TEST(equal_weights_alternate)
{
        two_on_one_cpu(0, 0);
        EXPECT_EQ(add(2, 0, SCHED_NO_PIN), 0);
        for (unsigned k = 0; k < 90; k++)
                EXPECT_EQ(slice_on(0), (int)(k % 3));
        /* Short runs count too: whoever ran least goes first. */
        EXPECT_EQ(pick(0), 0);
        put(0, SLICE / 3, SCHED_PREEMPTED);
        EXPECT_EQ(pick(0), 1);
        put(1, SLICE / 3, SCHED_PREEMPTED);
        EXPECT_EQ(pick(0), 2);
        put(2, 0, SCHED_PREEMPTED); /* yields at once: still the least */
        EXPECT_EQ(pick(0), 2);
        put(2, SLICE, SCHED_PREEMPTED);
        EXPECT_EQ(pick(0), 0);
        put(0, SLICE, SCHED_PREEMPTED);
}

TEST(weight_changes_take_effect_on_next_add)
{
        two_on_one_cpu(256, 256);
        v[1].se.weight = 768;
        run_slices(0, 100);
        EXPECT_EQ(slices_of(1), 50);
        EXPECT_EQ(sched_remove(&s, &v[1].se), 0);
        EXPECT_EQ(sched_add(&s, &v[1].se, now), 0);
        v[0].se.runtime = v[1].se.runtime = 0;
        run_slices(0, 100);
        EXPECT_EQ(slices_of(1), 75);
        EXPECT_EQ(slices_of(0), 25);
}

TEST(late_arrival_starts_at_the_minimum)
{
        setup(1);
        EXPECT_EQ(add(0, 0, SCHED_NO_PIN), 0);
        for (unsigned k = 0; k < 100; k++)
                EXPECT_EQ(slice_on(0), 0);
        EXPECT_EQ(s.cpus[0].min_vruntime, 100 * SLICE);
        EXPECT_EQ(add(1, 0, SCHED_NO_PIN), 0);
        EXPECT_EQ(v[1].se.vruntime, 100 * SLICE);
        run_slices(0, 20);
        /* No credit for the time before it existed: the two take turns. */
        EXPECT_EQ(slices_of(1), 10);
}

/* ---- blocking ------------------------------------------------------------------------------ */

TEST(blocked_entity_is_polled_and_skipped)
{
        unsigned ran1 = 0, ran0 = 0;

        two_on_one_cpu(0, 0);
        EXPECT_EQ(slice_on(0), 0);
        EXPECT_EQ(pick(0), 1);
        put(1, 10, SCHED_BLOCK); /* HLT almost at once */
        EXPECT_EQ(v[1].se.state, SCHED_BLOCKED);
        EXPECT_EQ(s.cpus[0].runnable, 1);
        EXPECT_EQ(s.cpus[0].count, 2);
        EXPECT_EQ(sched_count(&s), 2);
        for (unsigned k = 0; k < 200; k++)
                EXPECT_EQ(slice_on(0), 0);
        EXPECT_EQ(v[1].polls, 200);
        EXPECT_EQ(v[1].se.switches, 1);
        EXPECT_QUEUES_OK();

        /* Ready again: a slice of credit at most, then turns, not 200 slices in a row. */
        v[1].ready = true;
        EXPECT_EQ(pick(0), 1);
        EXPECT_EQ(v[1].se.vruntime, s.cpus[0].min_vruntime - SLICE);
        put(1, SLICE, SCHED_PREEMPTED);
        for (unsigned k = 0; k < 20; k++) {
                int i = slice_on(0);

                ran0 += i == 0;
                ran1 += i == 1;
        }
        EXPECT_EQ(ran0, 10);
        EXPECT_EQ(ran1, 10);
        EXPECT_QUEUES_OK();
}

TEST(blocked_entity_with_no_idle_cpu_left)
{
        setup(1);
        EXPECT_EQ(add(0, 0, SCHED_NO_PIN), 0);
        EXPECT_EQ(pick(0), 0);
        put(0, 5, SCHED_BLOCK);
        EXPECT_EQ(pick(0), -1); /* nothing runnable: idle */
        EXPECT_TRUE(s.cpus[0].idle_since != 0);
        EXPECT_EQ(pick(0), -1);
        EXPECT_EQ(v[0].polls, 2);
        v[0].ready = true;
        EXPECT_EQ(pick(0), 0);
        EXPECT_EQ(s.cpus[0].idle_since, 0);
        /* It was not behind anyone: waking changes nothing of its virtual time. */
        EXPECT_EQ(v[0].se.vruntime, 5);
        put(0, 5, SCHED_PREEMPTED);
}

TEST(short_sleeper_keeps_its_virtual_time)
{
        uint64_t vt;

        two_on_one_cpu(0, 0);
        run_slices(0, 10);
        EXPECT_EQ(pick(0), 0);
        put(0, SLICE, SCHED_BLOCK);
        vt = v[0].se.vruntime;
        v[0].ready = true;
        EXPECT_EQ(pick(0), 1); /* 0 is ahead now, so 1 runs first */
        put(1, SLICE, SCHED_PREEMPTED);
        EXPECT_EQ(v[0].se.vruntime, vt);
        EXPECT_EQ(v[0].se.state, SCHED_RUNNABLE);
}

/* ---- pinning, placement, stealing ---------------------------------------------------------- */

TEST(placement_on_least_loaded_cpu)
{
        setup(3);
        for (unsigned i = 0; i < 6; i++) {
                EXPECT_EQ(add(i, 0, SCHED_NO_PIN), 0);
                EXPECT_EQ(v[i].se.cpu, i % 3);
        }
        /* The running entity counts: with one running on cpu 0, the next goes to cpu 1. */
        setup(2);
        EXPECT_EQ(add(0, 0, SCHED_NO_PIN), 0);
        EXPECT_EQ(pick(0), 0);
        EXPECT_EQ(s.cpus[0].count, 0);
        EXPECT_EQ(add(1, 0, SCHED_NO_PIN), 0);
        EXPECT_EQ(v[1].se.cpu, 1);
        /* Pinned ones count as load too. */
        EXPECT_EQ(add(2, 0, 1), 0);
        EXPECT_EQ(add(3, 0, SCHED_NO_PIN), 0);
        EXPECT_EQ(v[3].se.cpu, 0);
        EXPECT_EQ(sched_count(&s), 4);
}

static void expect_pinned_run(unsigned ncpus)
{
        unsigned n = 2 * ncpus;

        setup(ncpus);
        /* All added while cpu 0 is the least loaded: pins must override placement. */
        for (unsigned i = 0; i < n; i++)
                EXPECT_EQ(add(i, 0, (int)(ncpus - 1 - i % ncpus)), 0);
        for (unsigned r = 0; r < 100; r++) {
                for (unsigned c = 0; c < ncpus; c++) {
                        int i = slice_on(c);

                        ASSERT_TRUE(i >= 0);
                        EXPECT_EQ(v[i].se.pin, (int)c);
                        EXPECT_EQ(v[i].se.cpu, c);
                }
        }
        for (unsigned i = 0; i < n; i++)
                EXPECT_EQ(slices_of(i), 50);
        EXPECT_QUEUES_OK();
}

TEST(pinning_two_and_four_cpus)
{
        expect_pinned_run(2);
        expect_pinned_run(4);
}

TEST(pinned_entities_are_never_stolen)
{
        setup(4);
        EXPECT_EQ(add(0, 0, 2), 0);
        EXPECT_EQ(add(1, 0, 2), 0);
        EXPECT_EQ(add(2, 0, 2), 0);
        EXPECT_EQ(pick(2), 0);
        EXPECT_EQ(s.cpus[2].runnable, 2); /* two wait on cpu 2 */
        EXPECT_EQ(pick(0), -1);
        EXPECT_EQ(pick(1), -1);
        EXPECT_EQ(pick(3), -1);
        put(0, SLICE, SCHED_PREEMPTED);
        EXPECT_EQ(slice_on(2), 1);
        EXPECT_EQ(slice_on(2), 2);
        EXPECT_EQ(slice_on(2), 0);
        for (unsigned i = 0; i < 3; i++)
                EXPECT_EQ(v[i].se.cpu, 2);
}

TEST(idle_cpu_steals_unpinned_only)
{
        int i;

        setup(2);
        EXPECT_EQ(add(0, 0, SCHED_NO_PIN), 0); /* cpu 0 (all empty) */
        EXPECT_EQ(add(1, 0, 0), 0);
        EXPECT_EQ(add(2, 0, 0), 0);
        EXPECT_EQ(v[0].se.cpu, 0);
        EXPECT_EQ(pick(0), 0);
        /* cpu 1 is idle; cpu 0 runs 0 and has only pinned ones waiting. */
        EXPECT_EQ(pick(1), -1);
        put(0, SLICE, SCHED_PREEMPTED);
        i = pick(0);
        EXPECT_TRUE(i == 1 || i == 2);
        /* Now the unpinned one waits on cpu 0: cpu 1 takes it, and it stays there. */
        EXPECT_EQ(pick(1), 0);
        EXPECT_EQ(v[0].se.cpu, 1);
        EXPECT_EQ(s.cpus[0].count, 1);
        EXPECT_EQ(s.cpus[1].current, &v[0].se);
        EXPECT_QUEUES_OK();
        put(0, SLICE, SCHED_PREEMPTED);
        EXPECT_EQ(pick(1), 0);
        EXPECT_EQ(v[0].se.switches, 3);
        put(0, SLICE, SCHED_PREEMPTED);
        put(i, SLICE, SCHED_PREEMPTED);
        EXPECT_QUEUES_OK();
}

TEST(steal_from_the_busiest_queue)
{
        setup(3);
        for (unsigned i = 0; i < 5; i++)
                EXPECT_EQ(add(i, 0, SCHED_NO_PIN), 0); /* cpus 0 1 2 0 1 */
        EXPECT_EQ(v[3].se.cpu, 0);
        EXPECT_EQ(v[4].se.cpu, 1);
        EXPECT_EQ(pick(2), 2);
        put(2, SLICE, SCHED_DONE); /* cpu 2 is empty now */
        EXPECT_EQ(pick(0), 0);     /* cpu 0: 1 waiting; cpu 1: 2 waiting */
        EXPECT_EQ(s.cpus[0].runnable, 1);
        EXPECT_EQ(s.cpus[1].runnable, 2);
        EXPECT_EQ(pick(2), 1); /* the first of cpu 1's (equal virtual times) */
        EXPECT_EQ(v[1].se.cpu, 2);
        EXPECT_EQ(s.cpus[1].runnable, 1);
        EXPECT_EQ(sched_count(&s), 4);
        EXPECT_QUEUES_OK();
}

TEST(steal_skips_queues_with_only_pinned_waiting)
{
        setup(3);
        EXPECT_EQ(add(0, 0, 0), 0);
        EXPECT_EQ(add(1, 0, 0), 0);
        EXPECT_EQ(add(2, 0, 0), 0);
        EXPECT_EQ(add(3, 0, SCHED_NO_PIN), 0);
        EXPECT_EQ(v[3].se.cpu, 1);
        EXPECT_EQ(pick(0), 0); /* cpu 0: 2 waiting, pinned; cpu 1: 1 waiting, unpinned */
        EXPECT_EQ(pick(2), 3);
        EXPECT_EQ(v[3].se.cpu, 2);
        EXPECT_EQ(s.cpus[0].runnable, 2);
        EXPECT_QUEUES_OK();
}

TEST(stolen_entity_gets_no_credit_on_its_new_cpu)
{
        setup(2);
        EXPECT_EQ(add(0, 0, 1), 0);
        for (unsigned k = 0; k < 50; k++)
                EXPECT_EQ(slice_on(1), 0); /* cpu 1's minimum is far ahead */
        EXPECT_EQ(add(1, 0, SCHED_NO_PIN), 0);
        EXPECT_EQ(add(2, 0, SCHED_NO_PIN), 0);
        EXPECT_EQ(v[1].se.cpu, 0);
        EXPECT_EQ(v[2].se.cpu, 0);
        EXPECT_EQ(pick(0), 1);
        put(1, SLICE, SCHED_PREEMPTED); /* 1 is a slice ahead on cpu 0 */
        EXPECT_EQ(pick(0), 2);
        EXPECT_EQ(pick(1), 0);
        put(0, SLICE, SCHED_DONE);
        EXPECT_EQ(pick(1), 1); /* stolen, its lead over cpu 0's minimum kept */
        EXPECT_EQ(v[1].se.vruntime, s.cpus[1].min_vruntime);
        EXPECT_EQ(v[1].se.vruntime, 51 * SLICE);
}

TEST(more_entities_than_cpus_all_run)
{
        unsigned idle[TEST_CPUS] = {0};

        setup(2);
        for (unsigned i = 0; i < 5; i++)
                EXPECT_EQ(add(i, 0, SCHED_NO_PIN), 0);
        rounds(300, idle);
        for (unsigned i = 0; i < 5; i++) {
                EXPECT_TRUE(slices_of(i) >= 100); /* 3 share cpu 0, 2 share cpu 1 */
                EXPECT_TRUE(slices_of(i) <= 150);
        }
        EXPECT_EQ(idle[0] + idle[1], 0);

        /* Those of cpu 1 finish: cpu 1 steals, and all keep running. */
        setup(4);
        memset(idle, 0, sizeof(idle));
        for (unsigned i = 0; i < 9; i++)
                EXPECT_EQ(add(i, 0, i == 8 ? 0 : SCHED_NO_PIN), 0);
        EXPECT_EQ(sched_remove(&s, &v[1].se), 0);
        EXPECT_EQ(sched_remove(&s, &v[5].se), 0);
        rounds(400, idle);
        for (unsigned i = 0; i < 9; i++)
                if (i != 1 && i != 5)
                        EXPECT_TRUE(slices_of(i) >= 100);
        EXPECT_EQ(idle[1], 0);
        EXPECT_EQ(sched_count(&s), 7);
        EXPECT_EQ(v[8].se.cpu, 0);
        EXPECT_QUEUES_OK();
}

/* ---- removal, errors, accounting ------------------------------------------------------------ */

TEST(remove_in_every_state)
{
        setup(1);
        EXPECT_EQ(sched_remove(&s, &v[0].se), 0); /* never added */
        EXPECT_EQ(add(0, 0, SCHED_NO_PIN), 0);
        EXPECT_EQ(add(1, 0, SCHED_NO_PIN), 0);
        EXPECT_EQ(add(2, 0, SCHED_NO_PIN), 0);
        EXPECT_EQ(sched_count(&s), 3);

        EXPECT_EQ(pick(0), 0);
        EXPECT_EQ(sched_remove(&s, &v[0].se), -KEEL_EBUSY); /* running */
        EXPECT_EQ(v[0].se.state, SCHED_RUNNING);
        put(0, SLICE, SCHED_BLOCK);
        EXPECT_EQ(sched_remove(&s, &v[0].se), 0); /* blocked */
        EXPECT_EQ(v[0].se.state, SCHED_DETACHED);
        EXPECT_EQ(sched_remove(&s, &v[1].se), 0); /* runnable */
        EXPECT_EQ(v[1].se.state, SCHED_DETACHED);
        EXPECT_EQ(sched_remove(&s, &v[1].se), 0); /* detached: no-op */
        EXPECT_EQ(sched_count(&s), 1);
        EXPECT_EQ(s.cpus[0].count, 1);
        EXPECT_EQ(s.cpus[0].runnable, 1);
        EXPECT_QUEUES_OK();
        v[0].ready = true;
        for (unsigned k = 0; k < 5; k++)
                EXPECT_EQ(slice_on(0), 2);
        EXPECT_EQ(v[0].polls, 0); /* removed: no longer polled */

        /* DONE from the CPU detaches too; then it may be added again. */
        EXPECT_EQ(pick(0), 2);
        put(2, 1, SCHED_DONE);
        EXPECT_EQ(v[2].se.state, SCHED_DETACHED);
        EXPECT_EQ(sched_count(&s), 0);
        EXPECT_EQ(pick(0), -1);
        EXPECT_EQ(add(2, 0, SCHED_NO_PIN), 0);
        EXPECT_EQ(pick(0), 2);
        put(2, 1, SCHED_PREEMPTED);
        EXPECT_QUEUES_OK();
}

TEST(add_twice_is_busy)
{
        setup(2);
        EXPECT_EQ(add(0, 0, SCHED_NO_PIN), 0);
        EXPECT_EQ(sched_add(&s, &v[0].se, now), -KEEL_EBUSY); /* runnable */
        EXPECT_EQ(pick(0), 0);
        EXPECT_EQ(sched_add(&s, &v[0].se, now), -KEEL_EBUSY); /* running */
        put(0, 1, SCHED_BLOCK);
        EXPECT_EQ(sched_add(&s, &v[0].se, now), -KEEL_EBUSY); /* blocked */
        EXPECT_EQ(sched_count(&s), 1);
        EXPECT_EQ(s.cpus[0].count + s.cpus[1].count, 1);
        EXPECT_QUEUES_OK();
}

TEST(bad_pin_and_weight_are_invalid)
{
        setup(2);
        EXPECT_EQ(add(0, 0, 2), -KEEL_EINVAL);
        EXPECT_EQ(add(0, 0, TEST_CPUS), -KEEL_EINVAL);
        EXPECT_EQ(add(0, 0, -2), -KEEL_EINVAL);
        EXPECT_EQ(add(0, SCHED_WEIGHT_MAX + 1, SCHED_NO_PIN), -KEEL_EINVAL);
        EXPECT_EQ(add(0, UINT32_MAX, 0), -KEEL_EINVAL);
        EXPECT_EQ(v[0].se.state, SCHED_DETACHED);
        EXPECT_EQ(sched_count(&s), 0);
        EXPECT_EQ(add(0, SCHED_WEIGHT_MAX, 1), 0);
        EXPECT_EQ(add(1, SCHED_WEIGHT_MIN, 0), 0);
        EXPECT_EQ(v[0].se.cpu, 1);
        EXPECT_EQ(sched_count(&s), 2);
        setup(TEST_CPUS);
        EXPECT_EQ(add(0, 0, TEST_CPUS - 1), 0);
        EXPECT_EQ(v[0].se.cpu, TEST_CPUS - 1);
}

TEST(runtime_and_switches)
{
        static const uint64_t ran[] = {1, 7, SLICE, 0, 123456789};
        uint64_t total = 0;

        setup(1);
        EXPECT_EQ(add(0, 512, SCHED_NO_PIN), 0);
        EXPECT_EQ(sched_slice(&s, &v[0].se), SLICE);
        for (unsigned k = 0; k < ARRAY_SIZE(ran); k++) {
                uint64_t vt = v[0].se.vruntime;

                EXPECT_EQ(pick(0), 0);
                EXPECT_EQ(v[0].se.switches, k + 1);
                put(0, ran[k], k % 2 ? SCHED_BLOCK : SCHED_PREEMPTED);
                v[0].ready = true;
                total += ran[k];
                EXPECT_EQ(v[0].se.runtime, total);
                EXPECT_EQ(v[0].se.vruntime - vt, ran[k] / 2); /* weight 512: half speed */
        }
        EXPECT_EQ(v[1].se.switches, 0);
        EXPECT_EQ(v[1].se.runtime, 0);
}

TEST(virtual_time_wraps_and_huge_runs)
{
        setup(1);
        s.cpus[0].min_vruntime = UINT64_MAX - 5 * SLICE; /* wraps after a few slices */
        EXPECT_EQ(add(0, 256, SCHED_NO_PIN), 0);
        EXPECT_EQ(add(1, 768, SCHED_NO_PIN), 0);
        run_slices(0, 1000);
        EXPECT_EQ(slices_of(0), 250);
        EXPECT_EQ(slices_of(1), 750);
        EXPECT_TRUE(s.cpus[0].min_vruntime < 1000 * SLICE); /* it did wrap */
        EXPECT_QUEUES_OK();

        /* The longest run at the smallest weight: no overflow, the other one goes next. */
        two_on_one_cpu(1, 65536);
        EXPECT_EQ(pick(0), 0);
        sched_put(&s, &v[0].se, UINT64_MAX, SCHED_PREEMPTED);
        EXPECT_EQ(v[0].se.runtime, UINT64_MAX);
        EXPECT_TRUE(v[0].se.vruntime > (1ull << 61));
        for (unsigned k = 0; k < 100; k++)
                EXPECT_EQ(slice_on(0), 1);
        EXPECT_EQ(v[1].se.vruntime, 100 * (SLICE * 256 / 65536));
}

/* ---- a long random run ---------------------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static unsigned rnd(unsigned n)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return (unsigned)(rng % n);
}

TEST(random_run_keeps_invariants)
{
        enum { NCPU = 3, STEPS = 30000 };
        static const uint32_t weights[] = {0, 1, 100, 256, 1000, 65536};
        uint64_t min[NCPU] = {0};
        int cur[NCPU] = {-1, -1, -1};
        bool ok = true;

        setup(NCPU);
        for (unsigned i = 0; i < 10; i++)
                EXPECT_EQ(add(i, weights[rnd(6)], rnd(3) ? SCHED_NO_PIN : (int)rnd(NCPU)), 0);
        for (unsigned step = 0; step < STEPS && ok; step++) {
                unsigned c = rnd(NCPU), i = rnd(10);

                if (cur[c] < 0) {
                        cur[c] = pick(c);
                        if (cur[c] >= 0 && v[cur[c]].se.cur_pin != SCHED_NO_PIN &&
                            v[cur[c]].se.cur_pin != (int)c)
                                ok = false;
                } else {
                        static const enum sched_put_how how[] = {SCHED_PREEMPTED, SCHED_PREEMPTED,
                                                                 SCHED_BLOCK, SCHED_DONE};

                        sched_put(&s, &v[cur[c]].se, rnd(2 * SLICE), how[rnd(4)]);
                        cur[c] = -1;
                }
                v[i].ready = rnd(4) == 0;
                if (rnd(50) == 0) {
                        int r = sched_remove(&s, &v[i].se);

                        ok &= r == (v[i].se.state == SCHED_RUNNING ? -KEEL_EBUSY : 0);
                }
                if (v[i].se.state == SCHED_DETACHED && rnd(4) == 0)
                        ok &= add(i, weights[rnd(6)], rnd(3) ? SCHED_NO_PIN : (int)rnd(NCPU)) == 0;
                for (unsigned k = 0; k < NCPU; k++) {
                        ok &= s.cpus[k].min_vruntime >= min[k]; /* never decreases */
                        min[k] = s.cpus[k].min_vruntime;
                }
                ok &= queues_ok(__FILE__, __LINE__);
        }
        EXPECT_TRUE(ok);
        for (unsigned i = 0; i < 10; i++)
                EXPECT_TRUE(v[i].se.switches > 0);
}

/* ---- threads -------------------------------------------------------------------------------- */

enum { THREAD_CPUS = 4, THREAD_ROUNDS = 20000, THREAD_ENTS = 6 };

static unsigned thread_runs[THREAD_CPUS], thread_moves[THREAD_CPUS];

/* Ready at every other poll, so CPUs go idle now and then and steal. */
static bool ready_every_other(struct sched_entity *e)
{
        struct vcpu *c = e->owner;

        return ++c->polls % 2 == 0;
}

static void *cpu_thread(void *arg)
{
        unsigned cpu = (unsigned)(uintptr_t)arg;

        for (unsigned r = 0; r < THREAD_ROUNDS; r++) {
                struct sched_entity *e = sched_pick(&s, cpu, r);
                struct vcpu *c;

                if (!e)
                        continue;
                /* Only this CPU touches a running entity: no lock needed for the test's own
                 * fields, the scheduler's locks order the accesses between CPUs. */
                c = e->owner;
                if (e->cur_pin != SCHED_NO_PIN && e->cur_pin != (int)cpu)
                        abort();
                if (e->switches > 1 && c->last_cpu != cpu)
                        thread_moves[cpu]++;
                c->last_cpu = cpu;
                thread_runs[cpu]++;
                sched_put(&s, e, 1 + r % 5, r % 3 == 0 ? SCHED_BLOCK : SCHED_PREEMPTED);
        }
        return NULL;
}

TEST(cpus_in_threads)
{
        pthread_t t[THREAD_CPUS];
        unsigned total = 0, moves = 0;

        setup(THREAD_CPUS);
        s.ready = ready_every_other;
        for (unsigned i = 0; i < THREAD_ENTS; i++)
                EXPECT_EQ(add(i, 0, i < 2 ? (int)i : SCHED_NO_PIN), 0);
        for (unsigned c = 0; c < THREAD_CPUS; c++)
                ASSERT_TRUE(pthread_create(&t[c], NULL, cpu_thread, (void *)(uintptr_t)c) == 0);
        for (unsigned c = 0; c < THREAD_CPUS; c++)
                pthread_join(t[c], NULL);
        for (unsigned c = 0; c < THREAD_CPUS; c++) {
                EXPECT_TRUE(thread_runs[c] > 0);
                total += thread_runs[c];
                moves += thread_moves[c];
        }
        EXPECT_TRUE(moves > 0); /* stealing happened, under two locks */
        EXPECT_EQ(v[0].se.cpu, 0);
        EXPECT_EQ(v[1].se.cpu, 1);
        EXPECT_EQ(sched_count(&s), THREAD_ENTS);
        EXPECT_QUEUES_OK();
        for (unsigned i = 0; i < THREAD_ENTS; i++)
                total -= (unsigned)v[i].se.switches;
        EXPECT_EQ(total, 0);
}

/*
 * Two CPUs add the same detached entity at once (a guest's start-up IPI on one, the boot
 * CPU re-queueing a resumed VM's vCPUs on the other): exactly one add succeeds, the entity is
 * on one queue once. Before sched_add checked and enqueued under one lock hold, both could
 * succeed and the entity was queued twice (later a CHECK in sched_put, or two CPUs running it).
 */
enum { ADD_ROUNDS = 500 };

static volatile unsigned add_round, add_arrived, add_ok;

static void *add_thread(void *arg)
{
        (void)arg;
        for (unsigned r = 1; r <= ADD_ROUNDS; r++) {
                while (__atomic_load_n(&add_round, __ATOMIC_ACQUIRE) != r)
                        sched_yield();
                __atomic_add_fetch(&add_arrived, 1, __ATOMIC_ACQ_REL);
                while (__atomic_load_n(&add_arrived, __ATOMIC_ACQUIRE) < 4 * r - 2)
                        ; /* both threads at the start line */
                if (sched_add(&s, &v[0].se, now) == 0)
                        __atomic_add_fetch(&add_ok, 1, __ATOMIC_ACQ_REL);
                __atomic_add_fetch(&add_arrived, 1, __ATOMIC_ACQ_REL);
        }
        return NULL;
}

TEST(concurrent_adds_of_one_entity)
{
        pthread_t t[2];
        unsigned twice = 0;
        bool ok = true;

        setup(2);
        add_round = add_arrived = add_ok = 0;
        v[1].se.pin = 1;
        EXPECT_EQ(sched_add(&s, &v[1].se, now), 0);
        for (unsigned i = 0; i < 2; i++)
                ASSERT_TRUE(pthread_create(&t[i], NULL, add_thread, NULL) == 0);
        for (unsigned r = 1; r <= ADD_ROUNDS; r++) {
                /* Onto the other queue than the last time: both locks, in either order. */
                v[0].se.pin = (int)(r % 2);
                __atomic_store_n(&add_round, r, __ATOMIC_RELEASE);
                while (__atomic_load_n(&add_arrived, __ATOMIC_ACQUIRE) < 4 * r)
                        sched_yield();
                if (add_ok != 1)
                        twice++;
                ok &= sched_count(&s) == 2 && s.cpus[0].count + s.cpus[1].count == 2;
                if (v[0].se.state != SCHED_DETACHED)
                        ok &= sched_remove(&s, &v[0].se) == 0;
                add_ok = 0;
                ok &= queues_ok(__FILE__, __LINE__);
        }
        for (unsigned i = 0; i < 2; i++)
                pthread_join(t[i], NULL);
        EXPECT_EQ(twice, 0);
        EXPECT_TRUE(ok);
}

TEST_MAIN()
