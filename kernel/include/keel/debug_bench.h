/*
 * Test builds only (keel-debug.efi; kernel/debug_bench.c): times a page scrub and a 4 KiB
 * guest-memory copy with the image's C library, for tools/bench (docs/benchmarks.md).
 */
#ifndef KEEL_DEBUG_BENCH_H
#define KEEL_DEBUG_BENCH_H

#include <vmm/gmem.h>

/* Log one `keel: bench:` line with the counter ticks of 64 scrubs and 64 copies from `m`. */
void debug_bench(const struct gmem *m);

#endif
