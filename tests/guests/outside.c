/*
 * outside: reads a guest-physical address that is neither RAM nor a device of the VM. Keel
 * must stop the VM with "outside-ram"; if the read returns, exit 1.
 *
 * The address is RAM end + 0x1000 (which x86_64's entry page tables map, but which is not
 * guest RAM), or OUTSIDE_TARGET when the build defines it (tests/guests/CMakeLists.txt builds
 * variants of this guest that way, e.g. one below RAM on arm64).
 */
#include "guest.h"

int64_t guest_main(void)
{
#ifdef OUTSIDE_TARGET
        uint64_t target = OUTSIDE_TARGET;
#else
        uint64_t target = guest_ram_end() + 0x1000;
#endif
        uint64_t v;

        if (target >= guest_ram_end())
                guest_printf("outside: reading 0x%lx, beyond the end of RAM at 0x%lx\n", target,
                             guest_ram_end());
        else
                guest_printf("outside: reading 0x%lx, below the start of RAM at 0x%lx\n", target,
                             guest_ram_base);
        v = *(volatile uint64_t *)(uintptr_t)target;
        guest_printf("FAIL: the read returned 0x%lx\n", v);
        return 1;
}
