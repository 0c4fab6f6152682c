/*
 * Tests for kernel/wallclock.c (calendar conversions against the host's timegm/gmtime_r,
 * "now" from the fake counter), vmm/rtc_cmos.c (the MC146818 model as Linux's
 * mc146818_get_time/set_time drive it) and vmm/pl031.c (the PL031 model as Linux's rtc-pl031
 * and kvm-unit-tests' pl031 test drive it).
 */
#define _GNU_SOURCE
#include <time.h>

#include <keel/wallclock.h>
#include <vmm/pl031.h>
#include <vmm/rtc_cmos.h>

#include "test.h"

extern uint64_t fake_tsc; /* arch/fake: 1 tick per ns */

#define NS 1000000000ull

TEST(civil_round_trips_against_host)
{
        uint64_t x = 88172645463325252ull;

        for (unsigned i = 0; i < 200000; i++) {
                struct civil_time c, back;
                struct tm tm;
                time_t t;

                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                t = (time_t)(x % 253402300800ull); /* 1970 .. 9999-12-31 */
                if (i < 4)
                        t = (time_t[]){0, 951782400, 4107542399, 253402300799}[i];
                gmtime_r(&t, &tm);
                civil_from_unix((uint64_t)t, &c);
                EXPECT_EQ(c.year, tm.tm_year + 1900);
                EXPECT_EQ(c.month, tm.tm_mon + 1);
                EXPECT_EQ(c.day, tm.tm_mday);
                EXPECT_EQ(c.hour, tm.tm_hour);
                EXPECT_EQ(c.minute, tm.tm_min);
                EXPECT_EQ(c.second, tm.tm_sec);
                EXPECT_EQ(c.wday, tm.tm_wday);
                EXPECT_TRUE(civil_valid(&c));
                back = c;
                EXPECT_EQ(unix_from_civil(&back), (uint64_t)t);
                if (test_failed_current)
                        return;
        }
}

TEST(civil_valid_rejects_impossible_dates)
{
        struct civil_time ok = {2024, 2, 29, 23, 59, 59, 0};
        struct civil_time c;

        EXPECT_TRUE(civil_valid(&ok));
        c = ok, c.year = 2023;
        EXPECT_FALSE(civil_valid(&c)); /* no 29 February */
        c = ok, c.year = 1900 + 200;   /* 2100 is not a leap year */
        EXPECT_FALSE(civil_valid(&c));
        c = ok, c.year = 2000;
        EXPECT_TRUE(civil_valid(&c));
        c = ok, c.month = 13;
        EXPECT_FALSE(civil_valid(&c));
        c = ok, c.month = 0;
        EXPECT_FALSE(civil_valid(&c));
        c = ok, c.day = 0;
        EXPECT_FALSE(civil_valid(&c));
        c = ok, c.hour = 24;
        EXPECT_FALSE(civil_valid(&c));
        c = ok, c.second = 60;
        EXPECT_FALSE(civil_valid(&c));
        c = ok, c.year = 1969;
        EXPECT_FALSE(civil_valid(&c));
        c = (struct civil_time){2026, 4, 31, 0, 0, 0, 0};
        EXPECT_FALSE(civil_valid(&c));
}

TEST(wallclock_counts_on_from_the_boot_reading)
{
        fake_tsc = 5000;
        wallclock_init(1700000000ull * NS + 250, 5000);
        EXPECT_TRUE(wallclock_known());
        EXPECT_EQ(wallclock_ns(), 1700000000ull * NS + 250);
        fake_tsc += 3 * NS + 7; /* 3 s and 7 ns later at 1 GHz */
        EXPECT_EQ(wallclock_ns(), 1700000003ull * NS + 257);
        fake_tsc += 400ull * 24 * 3600 * NS; /* 400 days: no overflow on the way */
        EXPECT_EQ(wallclock_ns(), (1700000003ull + 400ull * 86400) * NS + 257);
        wallclock_init(0, fake_tsc);
        EXPECT_FALSE(wallclock_known());
}

/* ---- MC146818 ---- */

static uint8_t cmos_rd(struct rtc_cmos *r, unsigned reg, uint64_t now)
{
        uint32_t v = reg;

        rtc_cmos_access(r, 0, true, &v, now);
        v = 0x1234;
        rtc_cmos_access(r, 1, false, &v, now);
        return (uint8_t)v;
}

static void cmos_wr(struct rtc_cmos *r, unsigned reg, uint8_t val, uint64_t now)
{
        uint32_t v = reg;

        rtc_cmos_access(r, 0, true, &v, now);
        v = val;
        rtc_cmos_access(r, 1, true, &v, now);
}

/* 2026-12-06 20:31:45 UTC, a Sunday. */
#define T0 1796589105ull

TEST(cmos_reads_the_wall_clock_in_bcd_24h)
{
        struct rtc_cmos r;
        uint64_t now = T0 * NS + 1000;
        struct civil_time c;

        civil_from_unix(T0, &c);
        EXPECT_EQ(c.year, 2026);
        EXPECT_EQ(c.hour, 20);
        rtc_cmos_init(&r);
        EXPECT_EQ(cmos_rd(&r, 0x0b, now), 0x02);
        EXPECT_EQ(cmos_rd(&r, 0, now), 0x45);
        EXPECT_EQ(cmos_rd(&r, 2, now), 0x31);
        EXPECT_EQ(cmos_rd(&r, 4, now), 0x20);
        EXPECT_EQ(cmos_rd(&r, 6, now), 1); /* Sunday */
        EXPECT_EQ(cmos_rd(&r, 7, now), 0x06);
        EXPECT_EQ(cmos_rd(&r, 8, now), 0x12);
        EXPECT_EQ(cmos_rd(&r, 9, now), 0x26);
        EXPECT_EQ(cmos_rd(&r, 0x32, now), 0x20);
        EXPECT_EQ(cmos_rd(&r, 0x0d, now), 0x80); /* VRT */
        EXPECT_EQ(cmos_rd(&r, 0x0c, now), 0);
        /* The clock moves with Keel's. */
        EXPECT_EQ(cmos_rd(&r, 0, now + 14 * NS), 0x59);
        EXPECT_EQ(cmos_rd(&r, 2, now + 15 * NS), 0x32);
}

TEST(cmos_binary_and_12_hour_modes)
{
        struct rtc_cmos r;
        uint64_t now = T0 * NS;

        rtc_cmos_init(&r);
        cmos_wr(&r, 0x0b, 0x04, now); /* binary, 12-hour */
        EXPECT_EQ(cmos_rd(&r, 0, now), 45);
        EXPECT_EQ(cmos_rd(&r, 4, now), 0x80 | 8);                  /* 8 PM */
        EXPECT_EQ(cmos_rd(&r, 4, now - 20 * 3600 * NS), 12);       /* midnight: 12 AM */
        EXPECT_EQ(cmos_rd(&r, 4, now - 8 * 3600 * NS), 0x80 | 12); /* noon: 12 PM */
        cmos_wr(&r, 0x0b, 0x00, now);                              /* BCD, 12-hour */
        EXPECT_EQ(cmos_rd(&r, 4, now), 0x88);
}

TEST(cmos_uip_only_in_the_last_244us_of_a_second)
{
        struct rtc_cmos r;

        rtc_cmos_init(&r);
        EXPECT_EQ(cmos_rd(&r, 0x0a, T0 * NS) & 0x80, 0);
        EXPECT_EQ(cmos_rd(&r, 0x0a, T0 * NS + NS - 244001) & 0x80, 0);
        EXPECT_EQ(cmos_rd(&r, 0x0a, T0 * NS + NS - 244000) & 0x80, 0x80);
        EXPECT_EQ(cmos_rd(&r, 0x0a, T0 * NS + NS - 1) & 0x80, 0x80);
        EXPECT_EQ(cmos_rd(&r, 0x0a, T0 * NS) & 0x7f, 0x26);
        cmos_wr(&r, 0x0a, 0xff, T0 * NS); /* UIP is read-only */
        EXPECT_EQ(cmos_rd(&r, 0x0a, T0 * NS), 0x7f);
}

/* What Linux's mc146818_set_time does: SET, the registers, SET clear. */
static void set_time(struct rtc_cmos *r, uint64_t now, const uint8_t v[10])
{
        uint8_t b = cmos_rd(r, 0x0b, now);

        cmos_wr(r, 0x0b, b | 0x80, now);
        for (unsigned i = 0; i < 10; i++)
                if (i != 1 && i != 3 && i != 5)
                        cmos_wr(r, i, v[i], now);
        cmos_wr(r, 0x0b, b, now);
}

TEST(cmos_guest_sets_its_own_time)
{
        struct rtc_cmos r, other;
        uint64_t now = T0 * NS;
        /* 1999-12-31 23:59:58, a Friday: BCD. */
        const uint8_t y2k[10] = {0x58, 0, 0x59, 0, 0x23, 0, 6, 0x31, 0x12, 0x99};
        const uint8_t bad[10] = {0x58, 0, 0x59, 0, 0x23, 0, 6, 0x31, 0x02, 0x24}; /* 31 Feb */

        rtc_cmos_init(&r);
        rtc_cmos_init(&other);
        cmos_wr(&r, 0x0b, 0x82, now);
        EXPECT_EQ(cmos_rd(&r, 0, now + 5 * NS), 0x45);        /* frozen while SET */
        EXPECT_EQ(cmos_rd(&r, 0x0a, now + NS - 1) & 0x80, 0); /* no UIP while SET */
        cmos_wr(&r, 0x0b, 0x02, now);
        set_time(&r, now, y2k);
        EXPECT_EQ(cmos_rd(&r, 9, now), 0x99);
        EXPECT_EQ(cmos_rd(&r, 0, now + NS), 0x59);
        EXPECT_EQ(cmos_rd(&r, 0, now + 2 * NS), 0x00);
        EXPECT_EQ(cmos_rd(&r, 9, now + 2 * NS), 0x00);
        EXPECT_EQ(cmos_rd(&r, 8, now + 2 * NS), 0x01);
        EXPECT_EQ(cmos_rd(&r, 0x32, now + 2 * NS), 0x20);
        /* Another VM's clock is its own. */
        EXPECT_EQ(cmos_rd(&other, 9, now), 0x26);
        /* Not a date: the clock stays as it was. */
        set_time(&r, now, bad);
        EXPECT_EQ(cmos_rd(&r, 9, now), 0x99);
        /* Not BCD in BCD mode: ignored too. */
        {
                uint8_t junk[10];

                memcpy(junk, y2k, sizeof(junk));
                junk[0] = 0x7a;
                set_time(&r, now, junk);
                EXPECT_EQ(cmos_rd(&r, 9, now), 0x99);
        }
}

TEST(cmos_ram_index_and_hostile_accesses)
{
        struct rtc_cmos r;
        uint32_t v;

        rtc_cmos_init(&r);
        for (unsigned i = 0x0e; i < RTC_CMOS_BYTES; i++)
                if (i != 0x32)
                        cmos_wr(&r, i, (uint8_t)(i * 7), 0);
        for (unsigned i = 0x0e; i < RTC_CMOS_BYTES; i++)
                if (i != 0x32)
                        EXPECT_EQ(cmos_rd(&r, i, 0), (uint8_t)(i * 7));
        /* Bit 7 of the index is the NMI mask: the register is the low 7 bits. */
        EXPECT_EQ(cmos_rd(&r, 0x80 | 0x20, 0), (uint8_t)(0x20 * 7));
        /* C and D are read-only; the index port reads as nothing. */
        cmos_wr(&r, 0x0d, 0, 0);
        EXPECT_EQ(cmos_rd(&r, 0x0d, 0), 0x80);
        v = 0;
        rtc_cmos_access(&r, 0, false, &v, 0);
        EXPECT_EQ(v, 0xff);
        v = 0;
        rtc_cmos_access(&r, 7, false, &v, 0);
        EXPECT_EQ(v, 0xff);
        /* Every register and value: no crash, and the time still reads as a time. */
        for (unsigned i = 0; i < 256; i++)
                for (unsigned b = 0; b < 256; b += 17)
                        cmos_wr(&r, i, (uint8_t)b, (uint64_t)i * NS);
        cmos_wr(&r, 0x0b, 0x06, 0);
        EXPECT_TRUE(cmos_rd(&r, 0, 0) < 60);
}

/* ---- PL031 ---- */

static uint64_t pl031_now;

static uint64_t test_now(void)
{
        return pl031_now;
}

static unsigned irq_level, irq_edges;

static void test_set_level(void *ctrl, unsigned pin, bool level)
{
        (void)ctrl;
        (void)pin;
        irq_edges += level != irq_level;
        irq_level = level;
}

static uint32_t prd(struct pl031 *p, unsigned off)
{
        uint64_t v = 0xdead;

        pl031_ops.read(p, off, 4, &v);
        return (uint32_t)v;
}

static void pwr(struct pl031 *p, unsigned off, uint32_t v)
{
        pl031_ops.write(p, off, 4, v);
}

TEST(pl031_counter_id_and_load)
{
        struct pl031 p;
        const uint8_t id[8] = {0x31, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1};

        pl031_now = T0 * NS + 5;
        pl031_init(&p, test_now);
        EXPECT_EQ(prd(&p, 0), (uint32_t)T0);
        EXPECT_EQ(prd(&p, 0xc), 1); /* started */
        for (unsigned i = 0; i < 8; i++)
                EXPECT_EQ(prd(&p, 0xfe0 + 4 * i), id[i]);
        pl031_now += 10 * NS;
        EXPECT_EQ(prd(&p, 0), (uint32_t)T0 + 10);
        pwr(&p, 8, 1000);
        EXPECT_EQ(prd(&p, 8), 1000);
        EXPECT_EQ(prd(&p, 0), 1000);
        pl031_now += 3 * NS;
        EXPECT_EQ(prd(&p, 0), 1003);
        /* Other sizes and offsets: nothing. */
        {
                uint64_t v = 77;

                pl031_ops.read(&p, 0, 1, &v);
                EXPECT_EQ(v, 0);
                pl031_ops.read(&p, 0x800, 4, &v);
                EXPECT_EQ(v, 0);
                pl031_ops.write(&p, 8, 2, 5);
                EXPECT_EQ(prd(&p, 0), 1003);
        }
}

TEST(pl031_match_interrupt_as_kvm_unit_tests_checks_it)
{
        struct pl031 p;
        struct irq_line line = {test_set_level, NULL, 34};
        uint32_t before;

        pl031_now = T0 * NS;
        irq_level = irq_edges = 0;
        pl031_init(&p, test_now);
        pl031_set_irq(&p, &line);
        before = prd(&p, 0);
        pwr(&p, 4, before + 1); /* in a second */
        pwr(&p, 0x10, 1);
        EXPECT_EQ(prd(&p, 0x14), 0);
        EXPECT_EQ(irq_level, 0);
        pl031_now += NS - 1;
        EXPECT_EQ(prd(&p, 0x14), 0);
        pl031_now += 1;
        EXPECT_EQ(prd(&p, 0x14), 1);
        EXPECT_EQ(prd(&p, 0x18), 1);
        EXPECT_EQ(irq_level, 1);
        pwr(&p, 0x1c, 1); /* acknowledge */
        EXPECT_EQ(prd(&p, 0x14), 0);
        EXPECT_EQ(irq_level, 0);
        /* Once only: the counter going on past the match raises nothing again. */
        pl031_now += 5 * NS;
        EXPECT_EQ(prd(&p, 0x14), 0);
        /* Masked: raw status, no line. */
        pwr(&p, 0x10, 0);
        pwr(&p, 4, prd(&p, 0));
        EXPECT_EQ(prd(&p, 0x14), 1);
        EXPECT_EQ(prd(&p, 0x18), 0);
        EXPECT_EQ(irq_level, 0);
        EXPECT_EQ(irq_edges, 2);
}

TEST_MAIN()
