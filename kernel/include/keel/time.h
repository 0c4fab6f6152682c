/*
 * Keel's clock: the CPU's time-stamp counter, whose frequency the arch measured at boot.
 * Guests see the same TSC (no offset), so deadlines in guest TSC ticks are host TSC ticks.
 */
#ifndef KEEL_TIME_H
#define KEEL_TIME_H

#include <stdint.h>

/* Current TSC (arch). */
uint64_t arch_tsc(void);
/* TSC ticks per millisecond, measured at boot (arch); 0 before. */
uint64_t arch_tsc_khz(void);

/* TSC ticks in `us` microseconds. */
static inline uint64_t tsc_from_us(uint64_t us)
{
        return arch_tsc_khz() * us / 1000;
}

#endif
