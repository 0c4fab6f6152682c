/*
 * x86_64 primitives of a Keel guest, header-only: the hypercall instruction and the console
 * UART. One definition for both runtimes that use them: the guest SDK's (arch.c) and Keel's
 * own test guests' (tests/guests/rt/x86_64/guest_arch.h). docs/guest-sdk.md.
 */
#ifndef KEEL_ARCH_H
#define KEEL_ARCH_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The hypercall instruction is the CPU vendor's: VMCALL on Intel, VMMCALL on AMD (the other
 * one is #UD there), decided once from CPUID leaf 0's vendor string. Each runtime defines
 * keel_hc_vendor: 0 not yet known, 1 AMD (VMMCALL), 2 Intel (VMCALL).
 */
extern int keel_hc_vendor;

static inline int keel_hc_detect(void)
{
        uint32_t a = 0, b, c, d;

        __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(d));
        /* "GenuineIntel": EBX "Genu", EDX "ineI", ECX "ntel" */
        keel_hc_vendor = (b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e) ? 2 : 1;
        return keel_hc_vendor;
}

/* RAX = the call's ID, RBX, RCX, RDX, RSI = arguments; the result in RAX. */
static inline int64_t keel_arch_hypercall(uint64_t id, uint64_t a0, uint64_t a1, uint64_t a2,
                                          uint64_t a3)
{
        uint64_t ret = id;

        if ((keel_hc_vendor ? keel_hc_vendor : keel_hc_detect()) == 2)
                __asm__ volatile("vmcall"
                                 : "+a"(ret)
                                 : "b"(a0), "c"(a1), "d"(a2), "S"(a3)
                                 : "memory");
        else
                __asm__ volatile("vmmcall"
                                 : "+a"(ret)
                                 : "b"(a0), "c"(a1), "d"(a2), "S"(a3)
                                 : "memory");
        return (int64_t)ret;
}

static inline uint8_t keel_inb(uint16_t port)
{
        uint8_t v;

        __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
        return v;
}

static inline void keel_outb(uint16_t port, uint8_t v)
{
        __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

/* The VM's console: a 16550 UART at I/O port 0x3f8. */
#define KEEL_UART_BASE     0x3f8
#define KEEL_UART_LSR      (KEEL_UART_BASE + 5)
#define KEEL_UART_LSR_DR   0x01
#define KEEL_UART_LSR_THRE 0x20

/* The UART can take a byte: its transmit holding register is empty. */
static inline bool keel_uart_tx_ready(void)
{
        return keel_inb(KEEL_UART_LSR) & KEEL_UART_LSR_THRE;
}

static inline void keel_uart_tx(char c)
{
        keel_outb(KEEL_UART_BASE, (uint8_t)c);
}

/* A received byte, or -1. */
static inline int keel_uart_rx(void)
{
        return (keel_inb(KEEL_UART_LSR) & KEEL_UART_LSR_DR) ? keel_inb(KEEL_UART_BASE) : -1;
}

#endif
