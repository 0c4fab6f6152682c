/*
 * bench: measures the round trip of VM exits with the guest's cycle or time counter: the
 * average over BENCH_ITERATIONS iterations of a 4-instruction loop whose body causes one exit
 * (or none, the baseline). The loops are arch-specific (rt/<arch>/bench_arch.h):
 *   x86_64 (RDTSC, 10000 iterations)
 *     cpuid     mov $0, %eax; cpuid             (leaf 0, intercepted by Keel)
 *     vmmcall   mov $0, %eax; vmmcall           (KEEL_HC_VERSION)
 *     out       mov $0, %eax; out %al, %dx      (DX = 0x3ff, the emulated UART's scratch register)
 *     baseline  mov $0, %eax; nop               (same loop, no exit)
 *   arm64 (CNTVCT_EL0 after an ISB, 1000 iterations)
 *     hvc       mov x0, #0; hvc #0              (KEEL_HC_VERSION)
 *     mmio      mov x0, #0; ldr w1, [x2]        (x2 = 0x09000018, the PL011's FR register)
 *     baseline  mov x0, #0; nop
 * Under QEMU's -icount shift=0,sleep=off the x86 TSC advances by one per executed instruction,
 * so the figures are instructions per iteration, exit handling in Keel included (tools/bench);
 * arm64's CNTVCT_EL0 follows the same virtual clock at its own frequency (printed first).
 * Each loop runs ROUNDS times and the smallest total counts (it matters only without icount).
 *
 * Output, one line per loop, parsed by tools/bench:
 *   bench: <name> iterations=<n> total=<ticks> avg=<ticks per iteration, 3 decimals>
 * Exit 0, or 1 if a loop measured nothing (a broken counter).
 */
#include "guest.h"
#include "bench_arch.h"

#define ROUNDS 3

int64_t guest_main(void)
{
        int64_t result = 0;

        bench_arch_intro();
        guest_printf("bench: timing %u iterations of each loop, best of %d\n", BENCH_ITERATIONS,
                     ROUNDS);
        for (int i = 0; i < LOOP_COUNT; i++) {
                uint64_t best = ~0ull, avg_milli;

                run_loop((enum loop)i, 16); /* warm up */
                for (int r = 0; r < ROUNDS; r++) {
                        uint64_t t = run_loop((enum loop)i, BENCH_ITERATIONS);

                        if (t < best)
                                best = t;
                }
                avg_milli = best * 1000 / BENCH_ITERATIONS;
                guest_printf("bench: %s iterations=%u total=%lu avg=%lu.%03lu\n", loop_names[i],
                             BENCH_ITERATIONS, best, avg_milli / 1000, avg_milli % 1000);
                if (best == 0) {
                        guest_printf("FAIL: the %s loop measured 0 ticks\n", loop_names[i]);
                        result = 1;
                }
        }
        return result;
}
