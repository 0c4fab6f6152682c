/*
 * spin: CPU-bound for SPIN_TICKS ticks of the free-running counter (guest_arch.h), counting
 * loop iterations, then reports them and exits 0. Two spin VMs on one CPU show the share
 * each gets: their counts' ratio is the ratio of the CPU time they got, as their weights set
 * it. A gap of more than SPIN_GAP_TICKS between two loop iterations is a time the VM did not
 * run (another VM had the CPU); the first SPIN_GAPS are reported as the counter values just
 * before and just after, so that tools/bench-sched can tell, from two VMs' gaps, the time
 * from one VM's last instruction to the other's first: the cost of a vCPU switch.
 */
#include "guest.h"

#define SPIN_GAPS 32

static uint64_t gap_from[SPIN_GAPS], gap_to[SPIN_GAPS];

int64_t guest_main(void)
{
        uint64_t start = guest_counter(), now = start, prev = start, loops = 0;
        unsigned gaps = 0;

        guest_printf("spin: counting for %lu counter ticks\n", (unsigned long)SPIN_TICKS);
        while (now - start < SPIN_TICKS) {
                for (unsigned i = 0; i < 100; i++)
                        __asm__ volatile("" ::: "memory");
                loops++;
                now = guest_counter();
                if (now - prev > SPIN_GAP_TICKS && gaps < SPIN_GAPS) {
                        gap_from[gaps] = prev;
                        gap_to[gaps++] = now;
                }
                prev = now;
        }
        guest_printf("spin: %lu loops in %lu ticks\n", (unsigned long)loops,
                     (unsigned long)(now - start));
        for (unsigned i = 0; i < gaps; i++)
                guest_printf("spin: gap %lu %lu\n", (unsigned long)gap_from[i],
                             (unsigned long)gap_to[i]);
        return 0;
}
