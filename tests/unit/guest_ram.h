/*
 * Guest RAM for the loader and hypercall tests: `ram`, RAM_SZ bytes (the includer defines
 * RAM_SZ and FILL), filled with FILL and mapped into a gmem; ram_untouched() tells whether a
 * refused request left it as it was.
 */
#ifndef KEEL_TEST_GUEST_RAM_H
#define KEEL_TEST_GUEST_RAM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vmm/gmem.h>

static uint8_t ram[RAM_SZ] __attribute__((aligned(4096)));

/* Every byte of `ram` FILL, and `ram` as guest-physical [base, base + RAM_SZ) in `m`. */
static void ram_fill_map(struct gmem *m, uint64_t base)
{
        memset(ram, FILL, sizeof(ram));
        if (gmem_add_region(m, gpa(base), RAM_SZ, hpa((uint64_t)(uintptr_t)ram)) != 0)
                abort();
}

static bool ram_untouched(void)
{
        for (size_t i = 0; i < sizeof(ram); i++)
                if (ram[i] != FILL)
                        return false;
        return true;
}

#endif
