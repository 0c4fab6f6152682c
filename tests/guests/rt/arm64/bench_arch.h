/*
 * arm64 loops of the bench guest (bench.c): HVC exits and trapped MMIO reads of the PL011's
 * flag register, timed with the virtual counter CNTVCT_EL0.
 */
#ifndef BENCH_ARCH_H
#define BENCH_ARCH_H

#include "guest.h"

#define BENCH_ITERATIONS 1000u

_Static_assert(KEEL_HC_ARM64_FID(KEEL_HC_VERSION) == 0xc6000000u, "TIMED_LOOP's x0");

enum loop { LOOP_BASELINE, LOOP_HVC, LOOP_MMIO, LOOP_COUNT };

static const char *const loop_names[LOOP_COUNT] = {"baseline", "hvc", "mmio"};

/* ISB first: the counter is read after everything before it has completed. */
static inline uint64_t counter_read(void)
{
        uint64_t v;

        __asm__ volatile("isb\n\tmrs %0, cntvct_el0\n\tisb" : "=r"(v) : : "memory");
        return v;
}

/*
 * N iterations of "mov x0, #0; INSN; subs; b.ne" between two counter reads; %1 holds the
 * PL011's FR address, x0 = KEEL_HC_ARM64_FID(KEEL_HC_VERSION) for HVC (the MMIO and
 * baseline loops set it too, so that all three run the same instructions around INSN).
 */
#define TIMED_LOOP(insn, n)                                        \
        ({                                                         \
                uint64_t n_ = (n), t0_ = counter_read();           \
                __asm__ volatile("1: mov x0, #0xc6000000\n\t" insn \
                                 "\n\tsubs %0, %0, #1\n\tb.ne 1b"  \
                                 : "+r"(n_)                        \
                                 : "r"(KEEL_PL011_FR)              \
                                 : "x0", "x1", "cc", "memory");    \
                counter_read() - t0_;                              \
        })

static uint64_t run_loop(enum loop which, uint64_t n)
{
        switch (which) {
        case LOOP_BASELINE:
                return TIMED_LOOP("nop", n);
        case LOOP_HVC:
                return TIMED_LOOP("hvc #0", n);
        case LOOP_MMIO:
        default:
                return TIMED_LOOP("ldr w1, [%1]", n);
        }
}

static inline void bench_arch_intro(void)
{
        guest_printf("bench: counter CNTVCT_EL0 at %lu Hz\n", read_sysreg(cntfrq_el0));
}

#endif
