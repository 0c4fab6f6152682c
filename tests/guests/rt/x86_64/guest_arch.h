/*
 * x86_64 part of the test guests' runtime (rt/guest.h includes it): the entry registers,
 * VMMCALL, the 16550 UART at 0x3f8, port I/O, CPUID, MSR and control-register helpers.
 */
#ifndef GUEST_ARCH_H
#define GUEST_ARCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdnoreturn.h>

/* Registers as Keel left them at entry (filled by _start before anything else runs). */
struct guest_entry_state {
        uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp;
        uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
        uint64_t rip, rflags;
};

/*
 * Hypercalls: RAX = number, RBX, RCX, RDX, RSI = arguments, result in RAX; VMCALL or
 * VMMCALL by the CPU's vendor (sdk/arch/x86_64/keel_arch.h, shared with the guest SDK).
 */
#include "keel_arch.h"

/* The register value that asks for hypercall `nr`, and what an unknown number returns. */
#define GUEST_HC_ID(nr)       ((uint64_t)(nr))
#define GUEST_HC_UNKNOWN      (-KEEL_ENOSYS)
#define GUEST_HC_UNKNOWN_NAME "ENOSYS"

static inline int64_t keel_hypercall(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2,
                                     uint64_t a3)
{
        return keel_arch_hypercall(GUEST_HC_ID(nr), a0, a1, a2, a3);
}

/* Port I/O. */
static inline void outb(uint16_t port, uint8_t v)
{
        __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void outw(uint16_t port, uint16_t v)
{
        __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void outl(uint16_t port, uint32_t v)
{
        __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline uint8_t inb(uint16_t port)
{
        uint8_t v;

        __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
        return v;
}

static inline uint16_t inw(uint16_t port)
{
        uint16_t v;

        __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port) : "memory");
        return v;
}

static inline uint32_t inl(uint16_t port)
{
        uint32_t v;

        __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port) : "memory");
        return v;
}

struct cpuid_regs {
        uint32_t eax, ebx, ecx, edx;
};

static inline struct cpuid_regs cpuid(uint32_t leaf, uint32_t subleaf)
{
        struct cpuid_regs r;

        __asm__ volatile("cpuid"
                         : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx)
                         : "a"(leaf), "c"(subleaf));
        return r;
}

static inline uint64_t rdmsr(uint32_t msr)
{
        uint32_t lo, hi;

        __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
        return ((uint64_t)hi << 32) | lo;
}

#define read_cr(n)                                                 \
        ({                                                         \
                uint64_t v_;                                       \
                __asm__ volatile("mov %%cr" #n ", %0" : "=r"(v_)); \
                v_;                                                \
        })

/* The UART (a 16550): it can take a byte (the transmit holding register is empty), send one. */
static inline bool uart_tx_ready(void)
{
        return keel_uart_tx_ready();
}

static inline void uart_tx(char c)
{
        keel_uart_tx(c);
}

/* Stops for good: interrupts off, HLT (which Keel reports as stop "halted"). */
static inline noreturn void guest_halt(void)
{
        for (;;)
                __asm__ volatile("cli; hlt");
}

/* A free-running counter (the TSC) and how many ticks the spin guest counts for. */
static inline uint64_t guest_counter(void)
{
        uint32_t lo, hi;

        __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
        return ((uint64_t)hi << 32) | lo;
}

#define SPIN_GAP_TICKS 200000ull     /* longer than any exit, shorter than a time slice */
#define SPIN_TICKS     3000000000ull /* about 1 to 3 s under QEMU, whatever the TSC rate */

/* Interrupts off for good, then spin: only Keel's own timer takes the CPU back. */
static inline noreturn void guest_runaway(void)
{
        __asm__ volatile("cli");
        for (;;)
                __asm__ volatile("" ::: "memory");
}

/* The privilege level, for messages ("running at CPL 0"). */
#define GUEST_LEVEL_NAME "CPL "

static inline unsigned guest_level(void)
{
        uint16_t cs;

        __asm__ volatile("mov %%cs, %0" : "=r"(cs));
        return cs & 3;
}

/* The register that holds the RAM size at entry, for messages. */
#define GUEST_RAM_SIZE_REG "RDI"

#endif
