/*
 * runaway: a guest that never gives the CPU back: interrupts off, an endless loop, no exits
 * of its own. Keel's timer must still take the CPU back at each slice's end, so the other
 * VMs run on; only the monitor (or the end of the test) stops it.
 */
#include "guest.h"

int64_t guest_main(void)
{
        guest_printf("runaway: looping forever with interrupts off\n");
        guest_runaway();
}
