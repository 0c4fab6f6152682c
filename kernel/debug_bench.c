/*
 * Test builds only (keel-debug.efi, like debug_fault.c): the cost of the C library's hot
 * memory functions as Keel uses them, measured once when the first VM is built, for
 * `tools/bench --only copy` (docs/benchmarks.md). Scrubbing a page is palloc's memset of a
 * freed or dirty page; copying 4 KiB of guest memory is gmem_read's memcpy. Each is timed over
 * DEBUG_BENCH_ROUNDS rounds with arch_tsc(); under QEMU's -icount the counter counts
 * instructions (x86: 1 per tick; arm64: 1e9 / CNTFRQ per tick), so tools/bench turns the
 * totals into instructions per operation.
 */
#include <string.h>

#include <keel/addr.h>
#include <keel/check.h>
#include <keel/debug_bench.h>
#include <keel/log.h>
#include <keel/time.h>

#define DEBUG_BENCH_ROUNDS 64

/* A page of Keel's own, page-aligned like the pages palloc scrubs. */
static uint8_t bench_page[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));

void debug_bench(const struct gmem *m)
{
        uint64_t t0, t1, t2;
        gpa_t src;

        if (m->count == 0 || m->regions[0].size < PAGE_SIZE)
                return;
        src = m->regions[0].base;
        t0 = arch_tsc();
        for (unsigned r = 0; r < DEBUG_BENCH_ROUNDS; r++) {
                memset(bench_page, 0, PAGE_SIZE);
                __asm__ volatile("" ::"r"(bench_page) : "memory");
        }
        t1 = arch_tsc();
        for (unsigned r = 0; r < DEBUG_BENCH_ROUNDS; r++) {
                CHECK(gmem_read(m, src, bench_page, PAGE_SIZE) == 0);
                __asm__ volatile("" ::"r"(bench_page) : "memory");
        }
        t2 = arch_tsc();
        LOG_INFO("keel: bench: rounds=%u scrub=%llu copy=%llu khz=%llu", DEBUG_BENCH_ROUNDS,
                 (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
                 (unsigned long long)arch_tsc_khz());
}
