/* Grace periods over the CPUs' quiescent points (keel/grace.h). */
#include <stddef.h>

#include <keel/check.h>
#include <keel/grace.h>

void grace_init(struct grace *g, uint64_t *seen, unsigned ncpus)
{
        CHECK(seen != NULL && ncpus >= 1);
        g->epoch = 0;
        g->seen = seen;
        g->ncpus = ncpus;
        for (unsigned i = 0; i < ncpus; i++)
                seen[i] = 0;
}

uint64_t grace_begin(struct grace *g)
{
        /* Sequentially consistent: ordered after the stores that made the memory unreachable
         * and before any CPU's later grace_quiescent that reads it. */
        return __atomic_add_fetch(&g->epoch, 1, __ATOMIC_SEQ_CST);
}

bool grace_done(const struct grace *g, uint64_t ticket, unsigned self)
{
        CHECK(ticket >= 1 && ticket <= __atomic_load_n(&g->epoch, __ATOMIC_RELAXED));
        for (unsigned i = 0; i < g->ncpus; i++)
                if (i != self && __atomic_load_n(&g->seen[i], __ATOMIC_ACQUIRE) < ticket)
                        return false;
        return true;
}
