/*
 * Wall-clock time (keel/wallclock.h): calendar conversions and "now" from the boot reading
 * plus the counter ticks since. The day count is the usual days-from-civil reckoning in
 * 400-year eras (146,097 days each), so no table of month lengths is walked per call.
 */
#include <keel/time.h>
#include <keel/wallclock.h>

static uint64_t base_ns, base_tsc;
static bool known;

static bool leap(unsigned y)
{
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned month_days(unsigned y, unsigned m)
{
        static const uint8_t days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

        return m == 2 && leap(y) ? 29 : days[m - 1];
}

bool civil_valid(const struct civil_time *t)
{
        return t->year >= 1970 && t->year <= 9999 && t->month >= 1 && t->month <= 12 &&
               t->day >= 1 && t->day <= month_days(t->year, t->month) && t->hour < 24 &&
               t->minute < 60 && t->second < 60;
}

/* Days since 1970-01-01 (March-based years, so the leap day ends its year). */
static uint64_t days_from_civil(unsigned y, unsigned m, unsigned d)
{
        unsigned era, yoe, doy, doe;

        y -= m <= 2;
        era = y / 400;
        yoe = y - era * 400;
        doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return (uint64_t)era * 146097 + doe - 719468;
}

uint64_t unix_from_civil(const struct civil_time *t)
{
        return days_from_civil(t->year, t->month, t->day) * 86400 + t->hour * 3600u +
               t->minute * 60u + t->second;
}

void civil_from_unix(uint64_t secs, struct civil_time *t)
{
        uint64_t days = secs / 86400, z = days + 719468;
        unsigned rem = (unsigned)(secs % 86400);
        unsigned era = (unsigned)(z / 146097), doe = (unsigned)(z - (uint64_t)era * 146097);
        unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
        unsigned m = mp < 10 ? mp + 3 : mp - 9;

        t->year = (uint16_t)(yoe + era * 400 + (m <= 2));
        t->month = (uint8_t)m;
        t->day = (uint8_t)(doy - (153 * mp + 2) / 5 + 1);
        t->hour = (uint8_t)(rem / 3600);
        t->minute = (uint8_t)(rem / 60 % 60);
        t->second = (uint8_t)(rem % 60);
        t->wday = (uint8_t)((days + 4) % 7); /* 1970-01-01 was a Thursday */
}

void wallclock_init(uint64_t unix_ns, uint64_t tsc)
{
        base_ns = unix_ns;
        base_tsc = tsc;
        known = unix_ns != 0;
}

bool wallclock_known(void)
{
        return known;
}

uint64_t wallclock_ns(void)
{
        uint64_t khz = arch_tsc_khz(), now = arch_tsc(), d, ms;

        if (!khz || now < base_tsc)
                return base_ns;
        /* Ticks to ns without 128-bit arithmetic: whole milliseconds, then the rest. */
        d = now - base_tsc;
        ms = d / khz;
        return base_ns + ms * 1000000 + (d % khz) * 1000000 / khz;
}
