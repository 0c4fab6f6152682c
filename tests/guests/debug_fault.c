/*
 * debug_fault: asks a test build of Keel (keel-debug.efi) to make the fault DEBUG_FAULT
 * (KEEL_DEBUG_FAULT_*) inside itself with the hypercall KEEL_HC_DEBUG_FAULT, for the
 * integration cases wx_* (docs/testing.md). Keel must panic and name the fault; should the
 * call return, the guest says so and exits with 1.
 */
#include "guest.h"

int64_t guest_main(void)
{
        int64_t r;

        guest_printf("asking Keel for debug fault %d\n", DEBUG_FAULT);
        r = keel_hypercall(KEEL_HC_DEBUG_FAULT, DEBUG_FAULT, 0, 0, 0);
        guest_printf("FAIL: Keel returned %ld from debug fault %d\n", r, DEBUG_FAULT);
        return 1;
}
