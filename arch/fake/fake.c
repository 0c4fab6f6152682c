/*
 * The fake arch: lets the generic core (allocator, page tables, VMM, config) run as an
 * ordinary host process for unit tests. Host-physical addresses are host pointers (as on the
 * real machine, where Keel identity-maps memory); halting aborts the test process.
 */
#include <stdio.h>
#include <stdlib.h>

#include <keel/addr.h>
#include <keel/arch.h>
#include <keel/smp.h>

noreturn void arch_halt(void)
{
        fflush(stdout);
        abort();
}

void arch_dump_state(void)
{
        fprintf(stderr, "(fake arch: no registers to dump)\n");
}

/* Host tests run the core on one thread: always CPU 0. */
unsigned arch_cpu_index(void)
{
        return 0;
}
