/*
 * Wall-clock time: the firmware's time of day, read once before Keel leaves boot services
 * (UEFI GetTime, taken as UTC as Linux's rtc-efi does), carried on by Keel's own counter
 * (arch_tsc). The VMs' real-time clocks (vmm/rtc_cmos.c, vmm/pl031.c) read it; each keeps its
 * own offset when its guest sets the time. docs/time.md.
 */
#ifndef KEEL_WALLCLOCK_H
#define KEEL_WALLCLOCK_H

#include <stdbool.h>
#include <stdint.h>

/* A UTC calendar time (proleptic Gregorian; years 1970..9999). */
struct civil_time {
        uint16_t year;
        uint8_t month;  /* 1..12 */
        uint8_t day;    /* 1..31 */
        uint8_t hour;   /* 0..23 */
        uint8_t minute; /* 0..59 */
        uint8_t second; /* 0..59 (a leap second 60 is taken as 59) */
        uint8_t wday;   /* 0 = Sunday (civil_from_unix fills it in; ignored by unix_from_civil) */
};

/* True if every field is in range for its month and year (leap years included). */
bool civil_valid(const struct civil_time *t);
/* Seconds since 1970-01-01 00:00:00 UTC of a valid time. */
uint64_t unix_from_civil(const struct civil_time *t);
void civil_from_unix(uint64_t secs, struct civil_time *t);

/* Boot: the wall clock read `unix_ns` (nanoseconds since the epoch) when arch_tsc() was `tsc`. */
void wallclock_init(uint64_t unix_ns, uint64_t tsc);
/* Now, in nanoseconds since the epoch (counting from 0 at boot if the firmware gave none). */
uint64_t wallclock_ns(void);
/* Did the firmware give a time? */
bool wallclock_known(void);

#endif
