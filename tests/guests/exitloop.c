/*
 * exitloop: a known number of one exit, for the monitor's exit statistics and trace
 * (docs/debugging.md; integration tests exit_stats, arm64_exit_stats): 10000 VERSION
 * hypercalls (VMMCALL / HVC), a line saying so, then the same hypercall forever, so that a
 * trace turned on later records them. The monitor stops it.
 */
#include "guest.h"

#define CALLS 10000

int64_t guest_main(void)
{
        for (unsigned k = 0; k < CALLS; k++)
                if (hc_version() != KEEL_HC_ABI_VERSION) {
                        guest_printf("FAIL: VERSION changed after %u calls\n", k);
                        return 1;
                }
        guest_printf("exitloop: %u hypercalls made, code at 0x%lx; more, forever\n", CALLS,
                     (unsigned long)(uintptr_t)guest_main);
        for (;;)
                (void)hc_version();
}
