/*
 * Grace periods: when may memory that other CPUs reached be freed? The freeing CPU first makes
 * the memory unreachable (a VM's vCPUs all left the run queues), then takes a ticket
 * (grace_begin); once every other CPU has passed a quiescent point after that (grace_done), no
 * CPU still holds a pointer it found before, and the memory may go. A CPU is quiescent between
 * two scheduling rounds, where it holds no pointer to any VM or vCPU (vmm/vmtable.c calls
 * grace_quiescent there); an idle CPU passes one at least every host tick.
 */
#ifndef KEEL_GRACE_H
#define KEEL_GRACE_H

#include <stdbool.h>
#include <stdint.h>

struct grace {
        uint64_t epoch; /* the last ticket handed out; written by the freeing CPU only */
        uint64_t *seen; /* per CPU: the epoch at its last quiescent point (ncpus entries) */
        unsigned ncpus;
};

/* `seen`: room for ncpus >= 1 entries, the caller's memory. */
void grace_init(struct grace *g, uint64_t *seen, unsigned ncpus);

/* CPU `cpu` holds nothing it found before this call (cheap: one load, one store). */
static inline void grace_quiescent(struct grace *g, unsigned cpu)
{
        __atomic_store_n(&g->seen[cpu], __atomic_load_n(&g->epoch, __ATOMIC_ACQUIRE),
                         __ATOMIC_SEQ_CST);
}

/* After making the memory unreachable: its ticket. */
uint64_t grace_begin(struct grace *g);

/* Has every CPU but `self` (the caller, which is quiescent) passed a quiescent point since
 * `ticket` was taken? */
bool grace_done(const struct grace *g, uint64_t ticket, unsigned self);

#endif
