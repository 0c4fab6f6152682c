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
        LOG_INFO("bench: rounds=%u scrub=%llu copy=%llu khz=%llu", DEBUG_BENCH_ROUNDS,
                 (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
                 (unsigned long long)arch_tsc_khz());
}

/*
 * The scheduler's costs as the VM count grows (tools/bench-scale), on CPU 0 only: ticks of
 * each sched_pick, ticks from the end of one vCPU run to the start of the next (Keel's part of
 * a vCPU switch: giving the vCPU back, the boot CPU's upkeep, the pick), and when each VM
 * first ran. Test builds only; nothing here is on keel.efi's paths.
 */
static struct {
        uint64_t picks, pick_ticks, gaps, gap_ticks, gap_max, run_end;
        uint64_t first_run, last_run, vms_run;
} scale;

void debug_scale_pick(unsigned cpu, uint64_t ticks)
{
        if (cpu)
                return;
        scale.picks++;
        scale.pick_ticks += ticks;
}

void debug_scale_run(unsigned cpu, bool vm_first, uint64_t at)
{
        if (vm_first) {
                if (!scale.vms_run++)
                        scale.first_run = at;
                scale.last_run = at;
        }
        if (cpu)
                return;
        if (scale.run_end) {
                uint64_t gap = at - scale.run_end;

                scale.gaps++;
                scale.gap_ticks += gap;
                if (gap > scale.gap_max)
                        scale.gap_max = gap;
        }
        scale.run_end = 0;
}

void debug_scale_run_end(unsigned cpu, uint64_t at)
{
        if (!cpu)
                scale.run_end = at;
}

void debug_scale_idle(unsigned cpu)
{
        if (!cpu)
                scale.run_end = 0; /* the next run's start is not a switch */
}

void debug_scale_report(uint64_t entry_tsc, unsigned vms)
{
        LOG_INFO("bench: scale vms=%u entry=%llu first=%llu last=%llu started=%llu "
                 "picks=%llu pick=%llu switches=%llu switch=%llu switchmax=%llu khz=%llu",
                 vms, (unsigned long long)entry_tsc, (unsigned long long)scale.first_run,
                 (unsigned long long)scale.last_run, (unsigned long long)scale.vms_run,
                 (unsigned long long)scale.picks, (unsigned long long)scale.pick_ticks,
                 (unsigned long long)scale.gaps, (unsigned long long)scale.gap_ticks,
                 (unsigned long long)scale.gap_max, (unsigned long long)arch_tsc_khz());
}
