/*
 * The loader fuzzers' guest RAM: a buffer of FUZZ_RAM_MAX bytes (the includer defines it)
 * with a canary page on each side, filled with FUZZ_RAM_FILL before each load, and `pattern`,
 * the same fill, to compare untouched RAM against (fuzz_loader, fuzz_multiboot).
 */
#ifndef KEEL_FUZZ_RAM_H
#define KEEL_FUZZ_RAM_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vmm/gmem.h>

#ifndef FUZZ_RAM_MAX
#error "define FUZZ_RAM_MAX (the largest guest RAM a target uses) before fuzz_ram.h"
#endif

#define FUZZ_CANARY   4096ull
#define FUZZ_RAM_FILL 0xee

static uint8_t *buf, *ram, *pattern;

/* Guest RAM [0, ram_size) in `m`, every byte FUZZ_RAM_FILL. */
static void ram_setup(struct gmem *m, uint64_t ram_size)
{
        if (!buf) {
                buf = aligned_alloc(4096, FUZZ_RAM_MAX + 2 * FUZZ_CANARY);
                pattern = malloc(FUZZ_RAM_MAX);
                memset(buf, 0xa5, FUZZ_RAM_MAX + 2 * FUZZ_CANARY);
                memset(pattern, FUZZ_RAM_FILL, FUZZ_RAM_MAX);
                ram = buf + FUZZ_CANARY;
        }
        memset(ram, FUZZ_RAM_FILL, ram_size);
        gmem_init(m);
        if (gmem_add_region(m, gpa(0), ram_size, hpa((uint64_t)(uintptr_t)ram)) != 0)
                abort();
}

/* Aborts if anything wrote past either end of guest RAM. */
static void check_canaries(void)
{
        if (!buf)
                return; /* no guest RAM set up yet */
        for (uint64_t i = 0; i < FUZZ_CANARY; i++)
                if (buf[i] != 0xa5 || buf[FUZZ_CANARY + FUZZ_RAM_MAX + i] != 0xa5)
                        abort();
}

#endif
