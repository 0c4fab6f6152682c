/*
 * MC146818 RTC and CMOS RAM model (vmm/rtc_cmos.h). Registers: 0 seconds, 1 seconds alarm,
 * 2 minutes, 3 minutes alarm, 4 hours, 5 hours alarm, 6 day of week (1 = Sunday), 7 day of
 * month, 8 month, 9 year (two digits), 0x0a A (bit 7 UIP), 0x0b B (bit 7 SET, bit 2 DM =
 * binary, bit 1 24-hour), 0x0c C (flags, read-clear), 0x0d D (bit 7 VRT), 0x32 century (BCD
 * on a PC: the byte the ACPI FADT's century field names). The time registers are computed at
 * each read, never stored.
 */
#include <string.h>

#include <keel/wallclock.h>
#include <keel/errno.h>
#include <vmm/rtc_cmos.h>
#include <vmm/snapshot.h>

#define REG_A       0x0a
#define REG_B       0x0b
#define REG_C       0x0c
#define REG_D       0x0d
#define REG_CENTURY 0x32
#define A_UIP       0x80
#define B_SET       0x80
#define B_DM_BINARY 0x04
#define B_24H       0x02
#define D_VRT       0x80
#define HOUR_PM     0x80
#define NS          1000000000ull
#define UIP_NS      244000ull /* update cycle's warning before each second (datasheet) */

void rtc_cmos_init(struct rtc_cmos *r)
{
        memset(r, 0, sizeof(*r));
        r->ram[REG_A] = 0x26; /* 32.768 kHz divider, 1.024 kHz rate: the BIOS's setting */
        r->ram[REG_B] = B_24H;
}

static bool binary(const struct rtc_cmos *r)
{
        return r->ram[REG_B] & B_DM_BINARY;
}

static uint8_t to_reg(const struct rtc_cmos *r, unsigned v)
{
        return binary(r) ? (uint8_t)v : (uint8_t)((v / 10) << 4 | v % 10);
}

/* A register byte to its value; false if it is not a valid BCD byte in BCD mode. */
static bool from_reg(const struct rtc_cmos *r, uint8_t b, unsigned *v)
{
        if (binary(r)) {
                *v = b;
                return true;
        }
        if ((b & 0xf) > 9 || (b >> 4) > 9)
                return false;
        *v = (b >> 4) * 10u + (b & 0xf);
        return true;
}

static uint8_t hour_reg(const struct rtc_cmos *r, unsigned h)
{
        if (r->ram[REG_B] & B_24H)
                return to_reg(r, h);
        return (uint8_t)(to_reg(r, h % 12 ? h % 12 : 12) | (h >= 12 ? HOUR_PM : 0));
}

/* The VM's time now, in seconds (the wall clock plus its offset, never before 1970). */
static uint64_t guest_secs(const struct rtc_cmos *r, uint64_t now_ns)
{
        int64_t s = (int64_t)(now_ns / NS) + r->offset;

        return s < 0 ? 0 : (uint64_t)s;
}

static void time_regs(const struct rtc_cmos *r, uint64_t secs, uint8_t out[10])
{
        struct civil_time t;

        civil_from_unix(secs, &t);
        out[0] = to_reg(r, t.second);
        out[2] = to_reg(r, t.minute);
        out[4] = hour_reg(r, t.hour);
        out[6] = to_reg(r, t.wday + 1u);
        out[7] = to_reg(r, t.day);
        out[8] = to_reg(r, t.month);
        out[9] = to_reg(r, t.year % 100u);
        out[1] = r->ram[1];
        out[3] = r->ram[3];
        out[5] = r->ram[5];
}

/*
 * SET cleared: the time registers written meanwhile become the clock. Their century is the
 * century register's if valid, else 19xx for 70-99 and 20xx below (Linux's own rule). A time
 * that is not a date leaves the clock as it was.
 */
static void set_done(struct rtc_cmos *r, uint64_t now_ns)
{
        struct civil_time t = {0};
        unsigned s, mi, h, d, mo, y, c;
        uint8_t hb = r->set[4];
        bool pm = false;

        if (!(r->ram[REG_B] & B_24H)) {
                pm = hb & HOUR_PM;
                hb &= (uint8_t)~HOUR_PM;
        }
        if (!from_reg(r, r->set[0], &s) || !from_reg(r, r->set[2], &mi) || !from_reg(r, hb, &h) ||
            !from_reg(r, r->set[7], &d) || !from_reg(r, r->set[8], &mo) ||
            !from_reg(r, r->set[9], &y))
                return;
        if (!(r->ram[REG_B] & B_24H)) {
                if (h < 1 || h > 12)
                        return;
                h = h % 12 + (pm ? 12 : 0);
        }
        if (!from_reg(r, r->ram[REG_CENTURY], &c) || c < 19 || c > 99)
                c = y < 70 ? 20 : 19;
        t = (struct civil_time){.year = (uint16_t)(c * 100 + y),
                                .month = (uint8_t)mo,
                                .day = (uint8_t)d,
                                .hour = (uint8_t)h,
                                .minute = (uint8_t)mi,
                                .second = (uint8_t)s};
        if (!civil_valid(&t))
                return;
        r->offset = (int64_t)unix_from_civil(&t) - (int64_t)(now_ns / NS);
}

static uint8_t read_reg(struct rtc_cmos *r, unsigned i, uint64_t now_ns)
{
        uint8_t regs[10];

        if (i < 10) {
                if (r->ram[REG_B] & B_SET)
                        return r->set[i];
                time_regs(r, guest_secs(r, now_ns), regs);
                return regs[i];
        }
        switch (i) {
        case REG_A:
                /* UIP: an update is due within 244 us (not while SET holds the clock). */
                return (
                    uint8_t)((r->ram[REG_A] & 0x7f) |
                             (!(r->ram[REG_B] & B_SET) && now_ns % NS >= NS - UIP_NS ? A_UIP : 0));
        case REG_C:
                return 0; /* no interrupt flags: none is modelled */
        case REG_D:
                return D_VRT; /* the battery is good */
        case REG_CENTURY:
                if (!(r->ram[REG_B] & B_SET) && !r->ram[REG_CENTURY]) {
                        struct civil_time t;

                        civil_from_unix(guest_secs(r, now_ns), &t);
                        return to_reg(r, t.year / 100u);
                }
                return r->ram[REG_CENTURY];
        default:
                return r->ram[i];
        }
}

static void write_reg(struct rtc_cmos *r, unsigned i, uint8_t v, uint64_t now_ns)
{
        if (i < 10) {
                if (r->ram[REG_B] & B_SET)
                        r->set[i] = v;
                if (i == 1 || i == 3 || i == 5)
                        r->ram[i] = v; /* alarms are stored (never fire) */
                return;
        }
        switch (i) {
        case REG_A:
                r->ram[REG_A] = v & 0x7f; /* UIP is read-only */
                return;
        case REG_B:
                if ((v & B_SET) && !(r->ram[REG_B] & B_SET))
                        time_regs(r, guest_secs(r, now_ns), r->set); /* frozen as it was */
                if (!(v & B_SET) && (r->ram[REG_B] & B_SET)) {
                        r->ram[REG_B] = v | B_SET; /* set_done reads the format of the writes */
                        set_done(r, now_ns);
                }
                r->ram[REG_B] = v;
                return;
        case REG_C:
        case REG_D:
                return; /* read-only */
        default:
                r->ram[i] = v;
        }
}

void rtc_cmos_access(struct rtc_cmos *r, unsigned port, bool write, uint32_t *val, uint64_t now_ns)
{
        if (port == 0) {
                if (write)
                        r->index = (uint8_t)*val;
                else
                        *val = 0xff; /* the index port is write-only on a PC */
                return;
        }
        if (port != 1) {
                if (!write)
                        *val = 0xff;
                return;
        }
        if (write)
                write_reg(r, r->index & 0x7f, (uint8_t)*val, now_ns);
        else
                *val = read_reg(r, r->index & 0x7f, now_ns);
}

/* --- snapshots (vmm/snapshot.h) --- */

__attribute__((cold)) void rtc_cmos_save(const struct rtc_cmos *r, struct snap_buf *b)
{
        snap_put(b, &r->index, 1);
        snap_put(b, r->ram, sizeof(r->ram));
        snap_put(b, r->set, sizeof(r->set));
        snap_put(b, &r->offset, sizeof(r->offset));
}

__attribute__((cold)) int rtc_cmos_load(struct rtc_cmos *r, struct snap_rd *rd)
{
        struct rtc_cmos s;

        /* Every byte is a value the guest may write; the index is used modulo the RAM. */
        if (!snap_get(rd, &s.index, 1) || !snap_get(rd, s.ram, sizeof(s.ram)) ||
            !snap_get(rd, s.set, sizeof(s.set)) || !snap_get(rd, &s.offset, sizeof(s.offset)))
                return -KEEL_EINVAL;
        /* Every date the registers can say is within 2^40 s of Keel's clock; beyond it the
         * sums in guest_secs would overflow. */
        if (s.offset < -(1ll << 40) || s.offset > (1ll << 40))
                return snap_fail(rd, "CMOS RTC: offset of %lld s from Keel's clock",
                                 (long long)s.offset);
        if (rd->apply)
                *r = s;
        return 0;
}
