/*
 * ramtest: writes and reads back all guest RAM above its own image, [end of image rounded up
 * to 4 KiB, end of RAM), with two patterns: one derived from each word's address and its
 * complement. Each pass writes the whole range before reading any of it back, so two guest
 * pages backed by the same host memory (or a write landing elsewhere) show up as mismatches.
 * Below the image lie Keel's boot structures and the stack, which are not tested.
 *
 * Exit: 0 all good; 1 mismatch with the first pattern, 2 with the complement; 3 RAM too
 * small to test anything.
 */
#include "guest.h"

static uint64_t pattern(uint64_t addr, bool complement)
{
        /* Distinct for every word, with bits set in both halves. */
        uint64_t v = (addr * 0x9e3779b97f4a7c15ull) ^ (addr << 32) ^ addr;

        return complement ? ~v : v;
}

static void fill(volatile uint64_t *lo, volatile uint64_t *hi, bool complement)
{
        for (volatile uint64_t *p = lo; p < hi; p++)
                *p = pattern(gpa_of(p), complement);
}

static uint64_t verify(volatile uint64_t *lo, volatile uint64_t *hi, bool complement)
{
        uint64_t bad = 0;

        for (volatile uint64_t *p = lo; p < hi; p++) {
                uint64_t want = pattern(gpa_of(p), complement), got = *p;

                if (got == want)
                        continue;
                if (bad < 4)
                        guest_printf("FAIL: at 0x%lx read 0x%016lx, wrote 0x%016lx\n", gpa_of(p),
                                     got, want);
                bad++;
        }
        return bad;
}

int64_t guest_main(void)
{
        uint64_t start = (gpa_of(__image_end) + 0xfff) & ~0xfffull;
        uint64_t end = guest_ram_end();
        volatile uint64_t *lo = (volatile uint64_t *)(uintptr_t)start;
        volatile uint64_t *hi = (volatile uint64_t *)(uintptr_t)end;

        guest_printf("ramtest: RAM size 0x%lx, testing [0x%lx, 0x%lx) (%lu KiB)\n", guest_ram_size,
                     start, end, end > start ? (end - start) >> 10 : 0);
        if (end <= start) {
                guest_printf("FAIL: RAM too small to test anything\n");
                return 3;
        }
        for (int pass = 0; pass < 2; pass++) {
                bool complement = pass == 1;
                uint64_t bad;

                fill(lo, hi, complement);
                bad = verify(lo, hi, complement);
                if (bad) {
                        guest_printf("ramtest: FAIL: %lu bad words with pattern %d\n", bad,
                                     pass + 1);
                        return pass + 1;
                }
                guest_printf("ramtest: pattern %d ok\n", pass + 1);
        }
        guest_printf("ramtest: all %lu bytes ok\n", end - start);
        return 0;
}
