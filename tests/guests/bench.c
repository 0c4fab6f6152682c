/*
 * bench: measures the round trip of VM exits with RDTSC: the average over ITERATIONS
 * iterations of a 4-instruction loop whose body is
 *   cpuid     mov $0, %eax; cpuid             (leaf 0, intercepted by Keel)
 *   vmmcall   mov $0, %eax; vmmcall           (KEEL_HC_VERSION)
 *   out       mov $0, %eax; out %al, %dx      (DX = 0x3ff, the emulated UART's scratch register)
 *   baseline  mov $0, %eax; nop               (same loop, no exit)
 * Under QEMU's -icount shift=0,sleep=off the TSC advances by one per executed instruction, so
 * the figures are instructions per iteration, exit handling in Keel included (tools/bench).
 * Each loop runs ROUNDS times and the smallest total counts (it matters only without icount).
 *
 * Output, one line per loop, parsed by tools/bench:
 *   bench: <name> iterations=<n> total=<ticks> avg=<ticks per iteration, 3 decimals>
 * Exit 0, or 1 if a loop measured nothing (a broken TSC).
 */
#include "guest.h"

#define ITERATIONS 10000u
#define ROUNDS     3
#define UART_SCR   0x3ff

enum loop { LOOP_BASELINE, LOOP_CPUID, LOOP_VMMCALL, LOOP_OUT, LOOP_COUNT };

static const char *const loop_names[LOOP_COUNT] = {"baseline", "cpuid", "vmmcall", "out"};

static inline uint64_t tsc_begin(void)
{
        uint32_t lo, hi;

        /* lfence: earlier instructions complete before the read (CPUID would itself exit). */
        __asm__ volatile("lfence\n\trdtsc" : "=a"(lo), "=d"(hi) : : "memory");
        return ((uint64_t)hi << 32) | lo;
}

static inline uint64_t tsc_end(void)
{
        uint32_t lo, hi;

        __asm__ volatile("lfence\n\trdtsc\n\tlfence" : "=a"(lo), "=d"(hi) : : "memory");
        return ((uint64_t)hi << 32) | lo;
}

static uint64_t run_loop(enum loop which, uint64_t n)
{
        uint64_t t0, t1;

        switch (which) {
        case LOOP_BASELINE:
                t0 = tsc_begin();
                __asm__ volatile("1: mov $0, %%eax\n\t"
                                 "nop\n\t"
                                 "dec %0\n\t"
                                 "jnz 1b"
                                 : "+r"(n)
                                 :
                                 : "rax", "memory");
                t1 = tsc_end();
                break;
        case LOOP_CPUID:
                t0 = tsc_begin();
                __asm__ volatile("1: mov $0, %%eax\n\t"
                                 "cpuid\n\t"
                                 "dec %0\n\t"
                                 "jnz 1b"
                                 : "+r"(n)
                                 :
                                 : "rax", "rbx", "rcx", "rdx", "memory");
                t1 = tsc_end();
                break;
        case LOOP_VMMCALL:
                t0 = tsc_begin();
                __asm__ volatile("1: mov $0, %%eax\n\t"
                                 "vmmcall\n\t"
                                 "dec %0\n\t"
                                 "jnz 1b"
                                 : "+r"(n)
                                 :
                                 : "rax", "rbx", "rcx", "rdx", "rsi", "memory");
                t1 = tsc_end();
                break;
        case LOOP_OUT:
        default:
                t0 = tsc_begin();
                __asm__ volatile("1: mov $0, %%eax\n\t"
                                 "outb %%al, %%dx\n\t"
                                 "dec %0\n\t"
                                 "jnz 1b"
                                 : "+r"(n)
                                 : "d"(UART_SCR)
                                 : "rax", "memory");
                t1 = tsc_end();
                break;
        }
        return t1 - t0;
}

int64_t guest_main(void)
{
        int64_t result = 0;

        guest_printf("bench: timing %u iterations of each loop, best of %d\n", ITERATIONS, ROUNDS);
        for (int i = 0; i < LOOP_COUNT; i++) {
                uint64_t best = ~0ull, avg_milli;

                run_loop((enum loop)i, 16); /* warm up */
                for (int r = 0; r < ROUNDS; r++) {
                        uint64_t t = run_loop((enum loop)i, ITERATIONS);

                        if (t < best)
                                best = t;
                }
                avg_milli = best * 1000 / ITERATIONS;
                guest_printf("bench: %s iterations=%u total=%lu avg=%lu.%03lu\n", loop_names[i],
                             ITERATIONS, best, avg_milli / 1000, avg_milli % 1000);
                if (best == 0) {
                        guest_printf("FAIL: the %s loop measured 0 ticks\n", loop_names[i]);
                        result = 1;
                }
        }
        return result;
}
