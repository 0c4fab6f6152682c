/*
 * outside: reads guest-physical RAM size + 0x1000, which the entry page tables map but which
 * is not guest RAM. Keel must stop the VM with "outside-ram"; if the read returns, exit 1.
 */
#include "guest.h"

int64_t guest_main(void)
{
        uint64_t target = guest_ram_size + 0x1000;
        uint64_t v;

        guest_printf("outside: reading 0x%lx, beyond the end of RAM at 0x%lx\n", target,
                     guest_ram_size);
        v = *(volatile uint64_t *)(uintptr_t)target;
        guest_printf("FAIL: the read returned 0x%lx\n", v);
        return 1;
}
