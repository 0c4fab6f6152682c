/*
 * libFuzzer target for the two real-time clocks: the MC146818 RTC and CMOS RAM
 * (vmm/rtc_cmos.c, through rtc_cmos_access as the x86 port-I/O exit calls it) and the PL031
 * (vmm/pl031.c, through pl031_ops as the arm64 MMIO bus calls it), with a clock the input moves.
 *
 * Input: byte 0: bit 0 selects the model (0 MC146818, 1 PL031); then operations of a kind
 * byte: 0xff: the clock moves on by an le32 count of milliseconds; otherwise an access: bit 0
 * write, MC146818: bit 1 the data port (else the index port), a value byte; PL031: bits 1-2
 * size (1, 2, 4, 8), an le16 offset (& 0xfff), writes an le32 value.
 * Invariants (abort on violation):
 *   - MC146818: with SET clear, the time registers read as a valid time in the format
 *     register B gives (BCD digits, hours in 0-23 or 1-12 with the PM bit, day of week 1-7,
 *     month 1-12, day valid for it); register C reads 0 and D 0x80; a CMOS RAM byte
 *     (0x0e-0x7f but 0x32) reads what was last written to it; the index port reads 0xff;
 *   - PL031: RTCMIS = RTCRIS & RTCIMSC, the line's level is RTCMIS, RTCCR reads 1, the ID
 *     registers read the PrimeCell ID, reads other than 32-bit aligned ones read 0.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <keel/wallclock.h>
#include <vmm/pl031.h>
#include <vmm/rtc_cmos.h>

#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t now;
static bool line_level;
static uint8_t ram_shadow[RTC_CMOS_BYTES];
static bool ram_known[RTC_CMOS_BYTES];

static uint64_t fuzz_now(void)
{
        return now;
}

static void set_level(void *ctrl, unsigned pin, bool level)
{
        (void)ctrl;
        (void)pin;
        line_level = level;
}

/* The next access's kind byte, after moving the clock for every 0xff before it; false at the
 * end of the input. */
static bool next_access(struct in *in, uint8_t *kind)
{
        uint32_t ms;

        while (take(in, kind, 1)) {
                if (*kind != 0xff)
                        return true;
                if (!take(in, &ms, 4))
                        return false;
                now += (uint64_t)ms * 1000000;
        }
        return false;
}

static uint8_t cmos(struct rtc_cmos *r, unsigned reg)
{
        uint32_t v = reg;

        rtc_cmos_access(r, 0, true, &v, now);
        rtc_cmos_access(r, 1, false, &v, now);
        if (v > 0xff)
                abort();
        return (uint8_t)v;
}

static unsigned field(uint8_t b, bool bin)
{
        if (bin)
                return b;
        if ((b & 0xf) > 9 || (b >> 4) > 9)
                abort();
        return (b >> 4) * 10u + (b & 0xf);
}

static void check_cmos(struct rtc_cmos *r, unsigned index)
{
        uint8_t b = cmos(r, 0x0b);
        bool bin = b & 0x04;
        unsigned h;
        struct civil_time t;

        if (cmos(r, 0x0c) != 0 || cmos(r, 0x0d) != 0x80)
                abort();
        if (!(b & 0x80)) {
                uint8_t hb = cmos(r, 4);

                if (!(b & 0x02)) {
                        h = field(hb & 0x7f, bin);
                        if (h < 1 || h > 12)
                                abort();
                } else if (field(hb, bin) > 23) {
                        abort();
                }
                t = (struct civil_time){.year = (uint16_t)(2000 + field(cmos(r, 9), bin) % 100),
                                        .month = (uint8_t)field(cmos(r, 8), bin),
                                        .day = (uint8_t)field(cmos(r, 7), bin),
                                        .hour = 0,
                                        .minute = (uint8_t)field(cmos(r, 2), bin),
                                        .second = (uint8_t)field(cmos(r, 0), bin)};
                /* (a 29 February read in a year that is one: 2000 + yy has the same rule for
                 * 1901-2099, and clocks here stay in 1970-2106) */
                if (!civil_valid(&t) || field(cmos(r, 6), bin) < 1 || field(cmos(r, 6), bin) > 7)
                        abort();
        }
        for (unsigned i = 0x0e; i < RTC_CMOS_BYTES; i++)
                if (ram_known[i] && i != 0x32 && cmos(r, i) != ram_shadow[i])
                        abort();
        /* Restore the guest's index (the checks moved it). */
        {
                uint32_t v = index;

                rtc_cmos_access(r, 0, true, &v, now);
        }
}

static void run_cmos(struct in *in)
{
        struct rtc_cmos r;
        uint8_t kind, val;
        unsigned index = 0;

        rtc_cmos_init(&r);
        memset(ram_known, 0, sizeof(ram_known));
        while (next_access(in, &kind)) {
                uint32_t v;

                if (!take(in, &val, 1))
                        break;
                v = val;
                if (!(kind & 2)) {
                        rtc_cmos_access(&r, 0, kind & 1, &v, now);
                        if (kind & 1)
                                index = val;
                        else if (v != 0xff)
                                abort();
                        continue;
                }
                rtc_cmos_access(&r, 1, kind & 1, &v, now);
                if ((kind & 1) && (index & 0x7f) >= 0x0e) {
                        ram_shadow[index & 0x7f] = val;
                        ram_known[index & 0x7f] = true;
                }
                check_cmos(&r, index);
        }
}

static uint32_t prd(struct pl031 *p, unsigned off)
{
        uint64_t v = 0xdeadbeef;

        pl031_ops.read(p, off, 4, &v);
        if (v > 0xffffffffull)
                abort();
        return (uint32_t)v;
}

static void run_pl031(struct in *in)
{
        static const uint8_t id[8] = {0x31, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1};
        struct pl031 p;
        struct irq_line line = {set_level, NULL, 34};
        uint8_t kind;

        line_level = false;
        pl031_init(&p, fuzz_now);
        pl031_set_irq(&p, &line);
        while (next_access(in, &kind)) {
                uint16_t off;
                unsigned sz = 1u << ((kind >> 1) & 3);

                if (!take(in, &off, 2))
                        break;
                off &= 0xfff;
                if (kind & 1) {
                        uint32_t v;

                        if (!take(in, &v, 4))
                                break;
                        pl031_ops.write(&p, off, sz, v);
                } else {
                        uint64_t v = 0x5555;

                        pl031_ops.read(&p, off, sz, &v);
                        if ((sz != 4 || off & 3) && v != 0)
                                abort();
                }
                {
                        uint32_t ris = prd(&p, 0x14), imsc = prd(&p, 0x10), mis = prd(&p, 0x18);

                        if (mis != (ris & imsc) || line_level != (mis != 0) || ris > 1 ||
                            prd(&p, 0xc) != 1)
                                abort();
                        for (unsigned i = 0; i < 8; i++)
                                if (prd(&p, 0xfe0 + 4 * i) != id[i])
                                        abort();
                }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct in in = {data, size};
        uint8_t sel;

        now = 1796589105ull * 1000000000ull;
        if (!take(&in, &sel, 1))
                return 0;
        if (sel & 1)
                run_pl031(&in);
        else
                run_cmos(&in);
        return 0;
}
