/*
 * spin: CPU-bound for SPIN_TICKS ticks of the free-running counter (guest_arch.h), counting
 * loop iterations, then reports them and exits 0. Two spin VMs on one CPU show the share
 * each gets (tools/bench --weights, docs/benchmarks.md): their counts' ratio is the ratio of
 * the CPU time they got, as their weights set it.
 */
#include "guest.h"

int64_t guest_main(void)
{
        uint64_t start = guest_counter(), now = start, loops = 0;

        guest_printf("spin: counting for %lu counter ticks\n", (unsigned long)SPIN_TICKS);
        while (now - start < SPIN_TICKS) {
                for (unsigned i = 0; i < 1000; i++)
                        __asm__ volatile("" ::: "memory");
                loops++;
                now = guest_counter();
        }
        guest_printf("spin: %lu loops in %lu ticks\n", (unsigned long)loops,
                     (unsigned long)(now - start));
        return 0;
}
