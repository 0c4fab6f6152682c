/*
 * triplefault: executes ud2 with the entry IDT (limit 0). #UD cannot be delivered, nor the
 * #GP/#DF that follow, so the CPU shuts down: Keel must stop the VM with "triple-fault".
 * If execution continues, exit 1.
 */
#include "guest.h"

int64_t guest_main(void)
{
        guest_printf("triplefault: executing ud2 with no IDT\n");
        __asm__ volatile("ud2");
        guest_printf("FAIL: survived ud2\n");
        return 1;
}
