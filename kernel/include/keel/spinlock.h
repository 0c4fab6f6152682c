/*
 * Spinlocks for data CPUs share (run queues, the log, a VM's devices). Keel runs with
 * interrupts off except in explicit wait windows (a CPU idling, the exit path after a guest
 * ran), where it holds no lock; the tick's handler takes none, a driver's device-interrupt
 * handler (keel/irq.h) only with spin_trylock. So a plain test-and-test-and-set lock is
 * enough: no interrupt masking here.
 *
 * Lock-held witness (Hafnium's idea): functions that need a lock held take a
 * `struct spin_held` argument, which only spin_lock returns.
 */
#ifndef KEEL_SPINLOCK_H
#define KEEL_SPINLOCK_H

#include <stdbool.h>

#include <arch/relax.h>

struct spinlock {
        volatile int locked;
};

#define SPINLOCK_INIT \
        {             \
                0     \
        }

/* Proof that the caller holds `lock`: returned by spin_lock, passed to functions that need it. */
struct spin_held {
        struct spinlock *lock;
};

static inline void spin_init(struct spinlock *l)
{
        l->locked = 0;
}

static inline struct spin_held spin_lock(struct spinlock *l)
{
        for (;;) {
                if (!__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE))
                        break;
                while (__atomic_load_n(&l->locked, __ATOMIC_RELAXED))
                        arch_cpu_relax();
        }
        return (struct spin_held){l};
}

static inline bool spin_trylock(struct spinlock *l)
{
        return !__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE);
}

static inline void spin_unlock(struct spin_held h)
{
        __atomic_store_n(&h.lock->locked, 0, __ATOMIC_RELEASE);
}

#endif
