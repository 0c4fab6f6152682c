/*
 * gdbtarget: the guest the gdb tests debug (tests/integration/gdb_case.py, docs/debugging.md).
 * It waits until gdb sets gdb_go, then adds 1, 2 and 3 through gdb_add and exits with the sum
 * (6). The test breaks at gdb_add, reads its argument, changes it (the register that carries
 * it), steps, sets a hardware breakpoint at gdb_add and a watchpoint on gdb_sum, and
 * continues to the exit code that change makes.
 */
#include "guest.h"

volatile uint64_t gdb_go;  /* gdb writes 1 */
volatile uint64_t gdb_sum; /* read by gdb */

uint64_t gdb_add(uint64_t x);

__attribute__((noinline)) uint64_t gdb_add(uint64_t x)
{
        gdb_sum += x;
        return gdb_sum;
}

int64_t guest_main(void)
{
        guest_printf("gdbtarget: waiting for gdb\n");
        while (!gdb_go)
                ;
        for (uint64_t i = 1; i <= 3; i++)
                gdb_add(i);
        guest_printf("gdbtarget: sum %lu\n", (unsigned long)gdb_sum);
        return (int64_t)gdb_sum;
}
