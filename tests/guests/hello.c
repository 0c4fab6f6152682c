/*
 * hello: the smallest Keel guest (and the README's demo). Says hello through the emulated
 * UART and through the print hypercall, then exits with code 0.
 */
#include "guest.h"

int64_t guest_main(void)
{
        static const char via_hc[] = "Hello again, via the print hypercall.\n";
        int64_t r;

        guest_printf("Hello from a Keel guest! %lu MiB of RAM, running at %s%u.\n",
                     guest_ram_size >> 20, GUEST_LEVEL_NAME, guest_level());
        r = hc_print(via_hc, sizeof(via_hc) - 1);
        if (r != (int64_t)(sizeof(via_hc) - 1)) {
                guest_printf("FAIL: print hypercall returned %ld\n", r);
                return 1;
        }
        guest_printf("Goodbye.\n");
        return 0;
}
