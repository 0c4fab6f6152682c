/*
 * Test builds only (keel-debug.efi; kernel/debug_bench.c): times a page scrub and a 4 KiB
 * guest-memory copy with the image's C library, for tools/bench, and the scheduler's costs
 * by VM count for tools/bench-scale (docs/benchmarks.md).
 */
#ifndef KEEL_DEBUG_BENCH_H
#define KEEL_DEBUG_BENCH_H

#include <vmm/gmem.h>

/* Log one `keel: bench:` line with the counter ticks of 64 scrubs and 64 copies from `m`. */
void debug_bench(const struct gmem *m);

/* CPU `cpu`'s sched_pick took `ticks`. */
void debug_scale_pick(unsigned cpu, uint64_t ticks);
/* A vCPU run begins at `at` (vm_first: its VM's first run); it ended at `at`; CPU idled. */
void debug_scale_run(unsigned cpu, bool vm_first, uint64_t at);
void debug_scale_run_end(unsigned cpu, uint64_t at);
void debug_scale_idle(unsigned cpu);
/* Log one `keel: bench: scale` line with the totals. */
void debug_scale_report(uint64_t entry_tsc, unsigned vms);

#endif
