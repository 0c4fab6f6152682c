/*
 * gdbtarget: the guest the gdb tests debug (tests/integration/gdb_case.py, docs/debugging.md).
 * It waits until gdb sets gdb_go, then adds 1, 2 and 3 through gdb_add and exits with the sum
 * (6). The test breaks at gdb_add, reads its argument, changes it (the register that carries
 * it), steps, sets a hardware breakpoint at gdb_add and a watchpoint on gdb_sum, and
 * continues to the exit code that change makes.
 *
 * x86_64: the guest also keeps debug registers of its own (DR0 an address, DR7 with R/W and
 * LEN fields but no breakpoint enabled) and checks them in every gdb_add, before the add: in
 * the second one gdb's watchpoint is loaded, so its MOV DR exits and Keel serves them from
 * the values it keeps aside (docs/debugging.md); in the third they are back in the CPU. A
 * wrong value adds 100 to the exit code.
 */
#include "guest.h"

volatile uint64_t gdb_go;  /* gdb writes 1 */
volatile uint64_t gdb_sum; /* read by gdb */
static unsigned dr_bad;

uint64_t gdb_add(uint64_t x);

#if defined(__x86_64__)
#define OWN_DR7 0x50400ull /* R/W0 write, LEN0 2 bytes; L0-G3 clear */

/* DR0 as the last own_dr left it (0x7000 + the number of calls), DR7 as written at the
 * start; then DR0 for the next one. Not from gdb_add's argument, which gdb changes. */
static void own_dr(void)
{
        static uint64_t calls;
        uint64_t dr0, dr7;

        __asm__ volatile("mov %%dr0, %0; mov %%dr7, %1" : "=r"(dr0), "=r"(dr7));
        if (dr0 != 0x7000 + calls || dr7 != OWN_DR7) {
                dr_bad++;
                guest_printf("gdbtarget: FAIL: own DR0 %lx, DR7 %lx in add %lu\n",
                             (unsigned long)dr0, (unsigned long)dr7, (unsigned long)calls + 1);
        }
        calls++;
        __asm__ volatile("mov %0, %%dr0" ::"r"(0x7000 + calls));
}
#else
static void own_dr(void)
{
}
#endif

__attribute__((noinline)) uint64_t gdb_add(uint64_t x)
{
        own_dr();
        gdb_sum += x;
        return gdb_sum;
}

int64_t guest_main(void)
{
#if defined(__x86_64__)
        __asm__ volatile("mov %0, %%dr0; mov %1, %%dr7" ::"r"(0x7000ull), "r"(OWN_DR7));
#endif
        guest_printf("gdbtarget: waiting for gdb\n");
        while (!gdb_go)
                ;
        for (uint64_t i = 1; i <= 3; i++)
                gdb_add(i);
        guest_printf("gdbtarget: sum %lu\n", (unsigned long)gdb_sum);
        return (int64_t)(gdb_sum + 100 * dr_bad);
}
