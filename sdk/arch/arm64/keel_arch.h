/*
 * arm64 primitives of a Keel guest, header-only: the hypercall instruction, MMIO that Keel
 * can emulate, and the console UART. One definition for both runtimes that use them: the
 * guest SDK's (arch.c) and Keel's own test guests' (tests/guests/rt/arm64/guest_arch.h).
 * docs/guest-sdk.md.
 */
#ifndef KEEL_ARCH_H
#define KEEL_ARCH_H

#include <stdbool.h>
#include <stdint.h>

/* HVC #0: x0 = the call's SMCCC function ID, x1..x4 = arguments; the result in x0. */
static inline int64_t keel_arch_hypercall(uint64_t id, uint64_t a0, uint64_t a1, uint64_t a2,
                                          uint64_t a3)
{
        register uint64_t x0 __asm__("x0") = id;
        register uint64_t x1 __asm__("x1") = a0;
        register uint64_t x2 __asm__("x2") = a1;
        register uint64_t x3 __asm__("x3") = a2;
        register uint64_t x4 __asm__("x4") = a3;

        __asm__ volatile("hvc #0" : "+r"(x0) : "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
        return (int64_t)x0;
}

/* 32-bit MMIO: one plain LDR/STR with a base register (a syndrome Keel can decode). */
static inline uint32_t keel_mmio_read32(uint64_t addr)
{
        uint32_t v;

        __asm__ volatile("ldr %w0, [%1]" : "=r"(v) : "r"(addr) : "memory");
        return v;
}

static inline void keel_mmio_write32(uint64_t addr, uint32_t v)
{
        __asm__ volatile("str %w0, [%1]" : : "r"(v), "r"(addr) : "memory");
}

/* The VM's console: a PL011 UART at 0x09000000. */
#define KEEL_PL011_BASE    0x09000000ull
#define KEEL_PL011_DR      (KEEL_PL011_BASE + 0x00)
#define KEEL_PL011_FR      (KEEL_PL011_BASE + 0x18)
#define KEEL_PL011_FR_RXFE (1u << 4)
#define KEEL_PL011_FR_TXFF (1u << 5)

/* The UART can take a byte: its transmit FIFO is not full. */
static inline bool keel_uart_tx_ready(void)
{
        return !(keel_mmio_read32(KEEL_PL011_FR) & KEEL_PL011_FR_TXFF);
}

static inline void keel_uart_tx(char c)
{
        keel_mmio_write32(KEEL_PL011_DR, (uint8_t)c);
}

/* A received byte, or -1. */
static inline int keel_uart_rx(void)
{
        if (keel_mmio_read32(KEEL_PL011_FR) & KEEL_PL011_FR_RXFE)
                return -1;
        return (int)(keel_mmio_read32(KEEL_PL011_DR) & 0xff);
}

#endif
