/*
 * The vCPU scheduler (contract in keel/sched.h, policy in docs/scheduler.md): weighted fair
 * share by virtual time on per-CPU run queues.
 *
 * A queue keeps its runnable entities on a doubly linked list sorted by virtual time, equal
 * ones in arrival order, and its blocked ones on a second list in arrival order; the running
 * entity is off both (q->current). Picking takes the head of the runnable list; put inserts
 * walking back from the tail, where an entity that has just run for a slice belongs when its
 * peers take turns, so the pick and the put cost the same whatever the number of runnable
 * entities (docs/benchmarks.md: costs by VM count). Waking scans the blocked list only.
 *
 * Virtual times wrap modulo 2^64 and are compared by their signed difference (vt_before),
 * which is right as long as the entities of one queue lie within 2^63 of each other: one
 * put adds at most VT_DELTA_MAX, and woken and stolen entities are placed next to the
 * queue's minimum.
 *
 * Locking: a queue's lock guards the queue and the entities on it or running from it. The
 * only code that holds two locks is steal(), lower CPU index first. An entity's `cpu` changes
 * only under both queues' locks, so holding the lock of the queue it names pins it there.
 */
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/sched.h>

#define VT_DELTA_MAX (UINT64_C(1) << 62) /* the most virtual time one put may add */

static bool vt_before(uint64_t a, uint64_t b)
{
        return (int64_t)(a - b) < 0;
}

/*
 * Virtual time for `ran` ticks at `weight`: ran * SCHED_WEIGHT_DEFAULT / weight, exactly, in
 * 64-bit arithmetic (quotient and remainder apart, so nothing overflows), capped.
 */
static uint64_t vt_delta(uint64_t ran, uint32_t weight)
{
        uint64_t q = ran / weight, r = ran % weight;

        if (q >= VT_DELTA_MAX / SCHED_WEIGHT_DEFAULT)
                return VT_DELTA_MAX;
        return q * SCHED_WEIGHT_DEFAULT + r * SCHED_WEIGHT_DEFAULT / weight;
}

static unsigned entity_cpu(const struct sched_entity *e)
{
        return __atomic_load_n(&e->cpu, __ATOMIC_RELAXED);
}

/* Locks the queue `e` is on (or was last on) and returns the witness; e->cpu is stable then. */
static struct spin_held lock_queue_of(struct sched *s, struct sched_entity *e)
{
        for (;;) {
                unsigned cpu = entity_cpu(e);
                struct spin_held h;

                CHECK(cpu < s->ncpus);
                h = spin_lock(&s->cpus[cpu].lock);
                if (e->cpu == cpu)
                        return h;
                spin_unlock(h);
        }
}

/* ---- one queue, its lock held (the witness `held`) ---------------------------------------- */

static void check_held(const struct sched_cpu *q, struct spin_held held)
{
        CHECK(held.lock == &q->lock);
}

/*
 * Puts `e` on queue `cpu`: a runnable one after the last entity whose virtual time is not
 * later than its own (walking back from the tail), a blocked one at the blocked list's tail.
 */
static void enqueue(struct sched *s, unsigned cpu, struct sched_entity *e, struct spin_held held)
{
        struct sched_cpu *q = &s->cpus[cpu];
        bool run = e->state == SCHED_RUNNABLE;
        struct sched_entity *p = run ? q->tail : q->blocked_tail;

        check_held(q, held);

        while (run && p && vt_before(e->vruntime, p->vruntime))
                p = p->prev;
        e->prev = p;
        e->next = p ? p->next : run ? q->head : q->blocked;
        if (e->next)
                e->next->prev = e;
        else if (run)
                q->tail = e;
        else
                q->blocked_tail = e;
        if (p)
                p->next = e;
        else if (run)
                q->head = e;
        else
                q->blocked = e;
        __atomic_store_n(&e->cpu, cpu, __ATOMIC_RELAXED);
        q->count++;
        q->runnable += run;
}

static void dequeue(struct sched_cpu *q, struct sched_entity *e, struct spin_held held)
{
        bool run = e->state == SCHED_RUNNABLE;
        struct sched_entity **head = run ? &q->head : &q->blocked;
        struct sched_entity **tail = run ? &q->tail : &q->blocked_tail;

        check_held(q, held);

        CHECK(e->prev ? e->prev->next == e : *head == e);
        CHECK(e->next ? e->next->prev == e : *tail == e);
        if (e->prev)
                e->prev->next = e->next;
        else
                *head = e->next;
        if (e->next)
                e->next->prev = e->prev;
        else
                *tail = e->prev;
        e->next = e->prev = NULL;
        q->count--;
        q->runnable -= run;
}

/* The runnable entity with the least virtual time (only unpinned ones if `unpinned`: a scan,
 * for steal on an idle CPU). */
static struct sched_entity *least(const struct sched_cpu *q, bool unpinned, struct spin_held held)
{
        struct sched_entity *e = q->head;

        check_held(q, held);

        while (unpinned && e && e->cur_pin != SCHED_NO_PIN)
                e = e->next;
        return e;
}

/* Raises min_vruntime to the least virtual time of the running and runnable entities. */
static void update_min(struct sched_cpu *q, struct spin_held held)
{
        const struct sched_entity *e = least(q, false, held);
        uint64_t m;

        if (q->current && (!e || vt_before(q->current->vruntime, e->vruntime)))
                e = q->current;
        if (!e)
                return;
        m = e->vruntime;
        if (vt_before(q->min_vruntime, m))
                q->min_vruntime = m;
}

/* Blocked entities that s->ready() approves become runnable, with at most one slice of
 * credit below the queue's minimum. */
static void wake_ready(struct sched *s, struct sched_cpu *q, struct spin_held held)
{
        uint64_t floor = q->min_vruntime - s->slice;
        struct sched_entity *next;

        check_held(q, held);

        for (struct sched_entity *e = q->blocked; e; e = next) {
                next = e->next;
                if (!s->ready(e))
                        continue;
                dequeue(q, e, held);
                e->state = SCHED_RUNNABLE;
                if (vt_before(e->vruntime, floor))
                        e->vruntime = floor;
                enqueue(s, e->cpu, e, held);
        }
}

/* Takes queued `e` off queue `cpu` to run it there. */
static void start(struct sched *s, unsigned cpu, struct sched_entity *e, struct spin_held held)
{
        struct sched_cpu *q = &s->cpus[cpu];

        dequeue(q, e, held);
        e->state = SCHED_RUNNING;
        e->switches++;
        q->current = e;
        q->idle_since = 0;
        update_min(q, held);
}

/* Entities on queue `cpu`, the running one included. */
static unsigned load(struct sched *s, unsigned cpu)
{
        struct sched_cpu *q = &s->cpus[cpu];
        struct spin_held h = spin_lock(&q->lock);
        unsigned n = q->count + (q->current ? 1 : 0);

        spin_unlock(h);
        return n;
}

/* ---- the interface ------------------------------------------------------------------------ */

void sched_init(struct sched *s, struct sched_cpu *cpus, unsigned ncpus, uint64_t slice,
                bool (*ready)(struct sched_entity *e))
{
        CHECK(cpus != NULL && ncpus >= 1);
        CHECK(slice > 0 && slice <= VT_DELTA_MAX);
        CHECK(ready != NULL);

        s->cpus = cpus;
        for (unsigned i = 0; i < ncpus; i++) {
                s->cpus[i] = (struct sched_cpu){.head = NULL};
                spin_init(&s->cpus[i].lock);
        }
        s->ncpus = ncpus;
        s->slice = slice;
        s->ready = ready;
}

int sched_add(struct sched *s, struct sched_entity *e, uint64_t now)
{
        struct spin_held h, h2 = {0};
        bool bad = e->weight > SCHED_WEIGHT_MAX ||
                   (e->pin != SCHED_NO_PIN && (e->pin < 0 || (unsigned)e->pin >= s->ncpus));
        unsigned cpu = 0, from;
        int r = 0;

        (void)now;
        if (!bad && e->pin != SCHED_NO_PIN) {
                cpu = (unsigned)e->pin;
        } else if (!bad) {
                unsigned best = load(s, 0);

                for (unsigned i = 1; i < s->ncpus; i++) {
                        unsigned n = load(s, i);

                        if (n < best) {
                                best = n;
                                cpu = i;
                        }
                }
        }

        /*
         * The detached check and the enqueue under one hold of the entity's queue lock (and the
         * target's, lower index first): two CPUs adding the same entity at once (a guest's
         * start-up IPI beside the boot CPU's re-queueing of a resumed VM) must not both enqueue
         * it, or two CPUs could run it.
         */
        for (;;) {
                from = entity_cpu(e);
                CHECK(from < s->ncpus);
                if (from == cpu) {
                        h = spin_lock(&s->cpus[cpu].lock);
                } else if (from < cpu) {
                        h2 = spin_lock(&s->cpus[from].lock);
                        h = spin_lock(&s->cpus[cpu].lock);
                } else {
                        h = spin_lock(&s->cpus[cpu].lock);
                        h2 = spin_lock(&s->cpus[from].lock);
                }
                if (e->cpu == from)
                        break;
                if (from != cpu)
                        spin_unlock(h2);
                spin_unlock(h);
        }
        if (e->state != SCHED_DETACHED) {
                r = -KEEL_EBUSY;
        } else if (bad) {
                r = -KEEL_EINVAL;
        } else {
                e->cur_weight = e->weight ? e->weight : SCHED_WEIGHT_DEFAULT;
                e->cur_pin = e->pin;
                e->vruntime = s->cpus[cpu].min_vruntime;
                e->state = SCHED_RUNNABLE;
                enqueue(s, cpu, e, h);
        }
        if (from != cpu)
                spin_unlock(h2);
        spin_unlock(h);
        return r;
}

int sched_remove(struct sched *s, struct sched_entity *e)
{
        struct spin_held h = lock_queue_of(s, e);
        struct sched_cpu *q = &s->cpus[e->cpu];
        int r = 0;

        if (e->state == SCHED_RUNNING) {
                r = -KEEL_EBUSY;
        } else if (e->state != SCHED_DETACHED) {
                dequeue(q, e, h);
                e->state = SCHED_DETACHED;
                update_min(q, h);
        }
        spin_unlock(h);
        return r;
}

/*
 * For idle `cpu`: moves the waiting unpinned entity with the least virtual time from the
 * queue with the most runnable entities to `cpu` and starts it. Its lead over its old
 * queue's minimum (none if it was behind) is kept over the new one's.
 */
static struct sched_entity *steal(struct sched *s, unsigned cpu)
{
        struct sched_cpu *q = &s->cpus[cpu], *v;
        struct sched_entity *e;
        unsigned victim = cpu, most = 0;
        struct spin_held hq, hv;

        for (unsigned i = 0; i < s->ncpus; i++) {
                struct spin_held h;

                if (i == cpu)
                        continue;
                h = spin_lock(&s->cpus[i].lock);
                if (s->cpus[i].runnable > most && least(&s->cpus[i], true, h)) {
                        most = s->cpus[i].runnable;
                        victim = i;
                }
                spin_unlock(h);
        }
        if (victim == cpu)
                return NULL;

        v = &s->cpus[victim];
        if (victim < cpu) {
                hv = spin_lock(&v->lock);
                hq = spin_lock(&q->lock);
        } else {
                hq = spin_lock(&q->lock);
                hv = spin_lock(&v->lock);
        }
        e = least(v, true, hv); /* it may have gone while no lock was held */
        if (e) {
                uint64_t lead = e->vruntime - v->min_vruntime;

                if (vt_before(e->vruntime, v->min_vruntime))
                        lead = 0;
                dequeue(v, e, hv);
                update_min(v, hv);
                e->vruntime = q->min_vruntime + lead;
                enqueue(s, cpu, e, hq);
                start(s, cpu, e, hq);
        }
        spin_unlock(hq);
        spin_unlock(hv);
        return e;
}

struct sched_entity *sched_pick(struct sched *s, unsigned cpu, uint64_t now)
{
        struct sched_cpu *q;
        struct sched_entity *e;
        struct spin_held h;

        CHECK(cpu < s->ncpus);
        q = &s->cpus[cpu];
        h = spin_lock(&q->lock);
        CHECK(q->current == NULL);
        wake_ready(s, q, h);
        e = least(q, false, h);
        if (e)
                start(s, cpu, e, h);
        spin_unlock(h);
        if (e)
                return e;

        e = steal(s, cpu);
        if (!e) {
                h = spin_lock(&q->lock);
                if (!q->current && !q->idle_since)
                        q->idle_since = now ? now : 1; /* 0 means busy */
                spin_unlock(h);
        }
        return e;
}

void sched_put(struct sched *s, struct sched_entity *e, uint64_t ran, enum sched_put_how how)
{
        struct spin_held h = lock_queue_of(s, e);
        struct sched_cpu *q = &s->cpus[e->cpu];

        CHECK(q->current == e && e->state == SCHED_RUNNING);
        e->runtime += ran;
        e->vruntime += vt_delta(ran, e->cur_weight);
        q->current = NULL;
        switch (how) {
        case SCHED_PREEMPTED:
                e->state = SCHED_RUNNABLE;
                enqueue(s, e->cpu, e, h);
                break;
        case SCHED_BLOCK:
                e->state = SCHED_BLOCKED;
                enqueue(s, e->cpu, e, h);
                break;
        case SCHED_DONE:
                e->state = SCHED_DETACHED;
                break;
        default:
                CHECK(false);
        }
        update_min(q, h);
        spin_unlock(h);
}

uint64_t sched_slice(const struct sched *s, const struct sched_entity *e)
{
        (void)e;
        return s->slice;
}

unsigned sched_count(struct sched *s)
{
        unsigned n = 0;

        for (unsigned i = 0; i < s->ncpus; i++)
                n += load(s, i);
        return n;
}
