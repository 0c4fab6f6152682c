/*
 * The vCPU scheduler (policy in docs/scheduler.md). Generic and arch-free: it orders
 * `struct sched_entity`s (one per vCPU, embedded in it) on per-CPU run queues and knows
 * nothing about what an entity runs. Time is in abstract ticks of one monotonic clock the
 * caller passes in (`now`; the image uses the TSC / CNTVCT).
 *
 * Policy in short: weighted fair share. Each entity has a weight (default
 * SCHED_WEIGHT_DEFAULT); running for d ticks advances its virtual time by
 * d * SCHED_WEIGHT_DEFAULT / weight, and a CPU runs the runnable entity of its queue with
 * the least virtual time for at most one slice. An entity that blocks (HLT/WFI) gives the
 * CPU away; when it becomes runnable again its virtual time is raised to at least the
 * queue's minimum minus one slice, so sleeping earns no unbounded credit. Pinned entities
 * stay on their CPU; unpinned ones are placed on the least-loaded CPU and an idle CPU takes
 * (steals) a waiting unpinned entity from the busiest queue.
 *
 * Usage on each CPU:  e = sched_pick(s, cpu, now); run it until its slice ends, it blocks or
 * its VM stops; sched_put(s, e, now, how).  Blocked entities are polled: sched_pick asks
 * s->ready(e) for each blocked entity of the queue and makes those that are ready runnable.
 *
 * Locking: each CPU's queue has its own lock, taken inside these functions; entities move
 * between queues only under both locks (lower CPU index first).
 */
#ifndef KEEL_SCHED_H
#define KEEL_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/smp.h>
#include <keel/spinlock.h>

#define SCHED_WEIGHT_DEFAULT 256
#define SCHED_WEIGHT_MIN     1
#define SCHED_WEIGHT_MAX     65536
#define SCHED_NO_PIN         (-1)

enum sched_state {
        SCHED_DETACHED = 0, /* not known to the scheduler (never added, or removed) */
        SCHED_RUNNABLE,     /* waits on a run queue */
        SCHED_RUNNING,      /* picked by a CPU, between sched_pick and sched_put */
        SCHED_BLOCKED,      /* on a run queue, waits until s->ready(e) says true */
};

/* How an entity left the CPU (sched_put). */
enum sched_put_how {
        SCHED_PREEMPTED, /* slice over (or yielded): runnable again */
        SCHED_BLOCK,     /* waits for an event: polled with s->ready */
        SCHED_DONE,      /* leaves the scheduler (its VM stopped or paused) */
};

/* Zero-initialise an entity (state SCHED_DETACHED) before its first sched_add. */
struct sched_entity {
        /* Set by the owner before sched_add (changes take effect on the next sched_add). */
        uint32_t weight; /* SCHED_WEIGHT_MIN..SCHED_WEIGHT_MAX; 0 = default */
        int pin;         /* CPU index, or SCHED_NO_PIN */
        void *owner;     /* the vCPU, for the caller */

        /* Scheduler's own (read-only for others). */
        enum sched_state state;
        unsigned cpu;        /* queue it is on (valid unless detached) */
        uint32_t cur_weight; /* weight in effect: `weight` at the last sched_add */
        int cur_pin;         /* pin in effect: `pin` at the last sched_add */
        uint64_t vruntime;   /* weighted virtual time (wraps; compared as a difference) */
        uint64_t runtime;    /* total ticks run, for reports and benchmarks */
        uint64_t switches;   /* times it was picked */
        struct sched_entity *next, *prev; /* on its queue's runnable or blocked list */
};

struct sched_cpu {
        struct spinlock lock;
        /* Runnable entities by virtual time (equal ones in arrival order), blocked ones in
         * arrival order. */
        struct sched_entity *head, *tail, *blocked, *blocked_tail;
        unsigned count;    /* entities on the queue (runnable + blocked) */
        unsigned runnable; /* of which runnable */
        struct sched_entity *current;
        uint64_t min_vruntime; /* never decreases */
        uint64_t idle_since;   /* `now` when it last found nothing to run (reports); 0 = busy */
};

struct sched {
        struct sched_cpu *cpus; /* ncpus queues, the caller's memory (sched_init) */
        unsigned ncpus;
        uint64_t slice; /* ticks of one time slice */
        /* Is a blocked entity ready to run (an interrupt pending for it)? Called under its
         * queue's lock; must not call back into the scheduler. */
        bool (*ready)(struct sched_entity *e);
};

/* `cpus`: room for ncpus >= 1 queues; slice in 1..2^62 ticks, ready non-NULL (CHECKed). */
void sched_init(struct sched *s, struct sched_cpu *cpus, unsigned ncpus, uint64_t slice,
                bool (*ready)(struct sched_entity *e));
/*
 * Make a detached entity runnable: on its pinned CPU (a pin >= ncpus, or negative other than
 * SCHED_NO_PIN, is -KEEL_EINVAL; so is a weight above SCHED_WEIGHT_MAX), else on the CPU with
 * the fewest entities (running ones included; ties: the lowest index). Its virtual time
 * starts at that queue's minimum. -KEEL_EBUSY if it is not detached. `now` is not used yet.
 */
int sched_add(struct sched *s, struct sched_entity *e, uint64_t now);
/*
 * Take a runnable or blocked entity off its queue (VM paused or stopped from outside, e.g.
 * the monitor). A running entity cannot be removed: -KEEL_EBUSY (its CPU gives it back with
 * sched_put(SCHED_DONE) once it sees the VM's state). Detached: no-op, 0.
 */
int sched_remove(struct sched *s, struct sched_entity *e);
/*
 * The next entity for `cpu`: blocked entities that s->ready() approves become runnable,
 * then the runnable one with the least virtual time is marked running and returned (ties:
 * the one that has waited longest). With nothing runnable here, steals the waiting unpinned
 * entity with the least virtual time from the queue with the most runnable entities among
 * those that have one. NULL: idle. `cpu` must have nothing running (CHECKed).
 */
struct sched_entity *sched_pick(struct sched *s, unsigned cpu, uint64_t now);
/* Give back what sched_pick returned, `ran` ticks after it was picked (accounted: runtime,
 * and vruntime += ran * SCHED_WEIGHT_DEFAULT / weight, at most 2^62 per call). */
void sched_put(struct sched *s, struct sched_entity *e, uint64_t ran, enum sched_put_how how);
/* The slice `e` gets when picked now (s->slice for now; a hook for later policies). */
uint64_t sched_slice(const struct sched *s, const struct sched_entity *e);
/* Entities known to the scheduler on all queues, running ones included. */
unsigned sched_count(struct sched *s);

#endif
