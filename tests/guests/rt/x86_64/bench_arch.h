/*
 * x86_64 loops of the bench guest (bench.c): CPUID, VMMCALL and OUT exits timed with RDTSC.
 */
#ifndef BENCH_ARCH_H
#define BENCH_ARCH_H

#include "guest.h"

#define BENCH_ITERATIONS 10000u
#define UART_SCR         0x3ff

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
                if (keel_hc_detect() == 2) { /* Intel: VMCALL, reported under the same name */
                        t0 = tsc_begin();
                        __asm__ volatile("1: mov $0, %%eax\n\t"
                                         "vmcall\n\t"
                                         "dec %0\n\t"
                                         "jnz 1b"
                                         : "+r"(n)
                                         :
                                         : "rax", "rbx", "rcx", "rdx", "rsi", "memory");
                        t1 = tsc_end();
                        break;
                }
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

static inline void bench_arch_intro(void)
{
}

#endif
