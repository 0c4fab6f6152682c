/*
 * x86-64 instruction wrappers and architectural constants shared by Keel's x86 code (host
 * CPU setup, SVM and later VMX). Only inline wrappers and numbers: no state.
 */
#ifndef ARCH_X86_H
#define ARCH_X86_H

#include <stdint.h>

#define X86_CR0_PE (1ull << 0)
#define X86_CR0_MP (1ull << 1)
#define X86_CR0_ET (1ull << 4)
#define X86_CR0_NE (1ull << 5)
#define X86_CR0_WP (1ull << 16)
#define X86_CR0_PG (1ull << 31)

#define X86_RFLAGS_TF (1ull << 8)
#define X86_RFLAGS_IF (1ull << 9)
#define X86_RFLAGS_RF (1ull << 16)

#define X86_DR6_BS (1ull << 14) /* single step */

#define X86_CR4_PAE        (1ull << 5)
#define X86_CR4_OSFXSR     (1ull << 9)
#define X86_CR4_OSXMMEXCPT (1ull << 10)
#define X86_CR4_UMIP       (1ull << 11)
#define X86_CR4_SMEP       (1ull << 20)
#define X86_CR4_SMAP       (1ull << 21)

#define X86_PAT_RESET 0x0007040600070406ull /* the architectural reset PAT */
#define X86_EFER_SCE  (1ull << 0)
#define X86_EFER_LME  (1ull << 8)
#define X86_EFER_LMA  (1ull << 10)
#define X86_EFER_NXE  (1ull << 11)
#define X86_EFER_SVME (1ull << 12)

#define MSR_EFER           0xc0000080u
#define MSR_STAR           0xc0000081u
#define MSR_LSTAR          0xc0000082u
#define MSR_CSTAR          0xc0000083u
#define MSR_SFMASK         0xc0000084u
#define MSR_FS_BASE        0xc0000100u
#define MSR_GS_BASE        0xc0000101u
#define MSR_KERNEL_GS_BASE 0xc0000102u
#define MSR_TSC_AUX        0xc0000103u
#define MSR_TSC            0x00000010u
#define MSR_APIC_BASE      0x0000001bu
#define MSR_SYSENTER_CS    0x00000174u
#define MSR_SYSENTER_ESP   0x00000175u
#define MSR_SYSENTER_EIP   0x00000176u
#define MSR_PAT            0x00000277u
#define MSR_VM_CR          0xc0010114u
#define MSR_VM_HSAVE_PA    0xc0010117u

#define X86_VEC_DE  0
#define X86_VEC_DB  1
#define X86_VEC_BP  3
#define X86_VEC_NMI 2
#define X86_VEC_UD  6
#define X86_VEC_DF  8
#define X86_VEC_GP  13
#define X86_VEC_PF  14

static inline void x86_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t r[4])
{
        __asm__ volatile("cpuid"
                         : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                         : "a"(leaf), "c"(subleaf));
}

/* XCR0; only with CR4.OSXSAVE set (every CPU Keel runs on that has XSAVE: fpu.c). */
static inline uint64_t x86_xgetbv0(void)
{
        uint32_t lo, hi;

        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        return (uint64_t)hi << 32 | lo;
}

static inline uint64_t x86_rdmsr(uint32_t msr)
{
        uint32_t lo, hi;

        __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
        return ((uint64_t)hi << 32) | lo;
}

static inline void x86_wrmsr(uint32_t msr, uint64_t v)
{
        __asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

static inline uint64_t x86_rdtsc(void)
{
        uint32_t lo, hi;

        __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
        return ((uint64_t)hi << 32) | lo;
}

/* The TSC's low 32 bits: for short intervals (unsigned difference), without the shift. */
static inline uint32_t x86_rdtsc_low(void)
{
        uint32_t lo, hi;

        __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
        (void)hi;
        return lo;
}

static inline void x86_outb(uint16_t port, uint8_t v)
{
        __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port));
}

static inline void x86_outl(uint16_t port, uint32_t v)
{
        __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port));
}

static inline uint8_t x86_inb(uint16_t port)
{
        uint8_t v;

        __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
        return v;
}

#define X86_READ_CR(n)                                            \
        static inline uint64_t x86_read_cr##n(void)               \
        {                                                         \
                uint64_t v;                                       \
                __asm__ volatile("mov %%cr" #n ", %0" : "=r"(v)); \
                return v;                                         \
        }
X86_READ_CR(0)
X86_READ_CR(2)
X86_READ_CR(3)
X86_READ_CR(4)
#undef X86_READ_CR

static inline void x86_write_cr0(uint64_t v)
{
        __asm__ volatile("mov %0, %%cr0" ::"r"(v) : "memory");
}

static inline void x86_write_cr3(uint64_t v)
{
        __asm__ volatile("mov %0, %%cr3" ::"r"(v) : "memory");
}

static inline void x86_write_cr4(uint64_t v)
{
        __asm__ volatile("mov %0, %%cr4" ::"r"(v) : "memory");
}

static inline void x86_cli(void)
{
        __asm__ volatile("cli" ::: "memory");
}

static inline uint64_t x86_read_rflags(void)
{
        uint64_t v;

        __asm__ volatile("pushfq; popq %0" : "=r"(v));
        return v;
}

#endif
