/*
 * Emulated MC146818 real-time clock and CMOS RAM, as on a PC at I/O ports 0x70 (index) and
 * 0x71 (data); the register model is arch-neutral. The time is Keel's wall clock
 * (keel/wallclock.h) plus the VM's own offset, which changes when the guest sets the clock
 * (register B's SET bit, then the time registers, then SET clear: what Linux's
 * mc146818_set_time does). BCD or binary and 12- or 24-hour formats follow register B; UIP
 * reads set in the last 244 us of each second. No interrupt is raised (register C reads 0):
 * alarms, update and periodic interrupts are not modelled. docs/time.md.
 */
#ifndef VMM_RTC_CMOS_H
#define VMM_RTC_CMOS_H

#include <stdbool.h>
#include <stdint.h>

#define RTC_CMOS_BYTES 128

struct rtc_cmos {
        uint8_t index;               /* selected register (port 0x70, bit 7 = NMI mask, kept) */
        uint8_t ram[RTC_CMOS_BYTES]; /* registers A, B, D and bytes 0x0e..0x7f as written */
        uint8_t set[10];             /* time registers 0..9 while register B's SET bit is on */
        int64_t offset;              /* the guest's time minus Keel's, in seconds */
};

/* Power-on state: 24-hour BCD (register B 0x02), the wall clock's time, CMOS RAM zero. */
void rtc_cmos_init(struct rtc_cmos *r);
/*
 * An 8-bit access at `port` (0 = index port 0x70, 1 = data port 0x71), `now_ns` Keel's wall
 * clock (wallclock_ns()). Reads return the register's value in *val; writes take its low byte.
 */
void rtc_cmos_access(struct rtc_cmos *r, unsigned port, bool write, uint32_t *val, uint64_t now_ns);

/* Snapshots (vmm/snapshot.h): CMOS RAM, the SET copy and the offset from Keel's clock. */
struct snap_buf;
struct snap_rd;
void rtc_cmos_save(const struct rtc_cmos *r, struct snap_buf *b);
int rtc_cmos_load(struct rtc_cmos *r, struct snap_rd *rd);

#endif
