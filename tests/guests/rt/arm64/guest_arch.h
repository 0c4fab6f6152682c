/*
 * arm64 part of the test guests' runtime (rt/guest.h includes it): the entry registers,
 * HVC, the PL011 UART at 0x09000000, MMIO and system-register helpers.
 *
 * Guests run at EL1 with the MMU off (docs/guest-entry.md), so every data access is a Device
 * access: it must be aligned (the guests are built with -mstrict-align) and MMIO goes through
 * mmio_read32/mmio_write32, whose plain LDR/STR Keel can emulate from the syndrome.
 */
#ifndef GUEST_ARCH_H
#define GUEST_ARCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdnoreturn.h>

/* Registers as Keel left them at entry (filled by _start; offsets used by rt/arm64/start.S). */
struct guest_entry_state {
        uint64_t x[31];     /* 0x000: x0..x30 */
        uint64_t sp;        /* 0x0f8 */
        uint64_t pc;        /* 0x100: where _start ran (the entry point) */
        uint64_t currentel; /* 0x108 */
        uint64_t daif;      /* 0x110 */
        uint64_t spsel;     /* 0x118 */
        uint64_t sctlr_el1; /* 0x120 */
        uint64_t vbar_el1;  /* 0x128: before _start installed the runtime's vectors */
} __attribute__((aligned(16)));

/*
 * Hypercalls: HVC #0 with x0 = the SMCCC function ID of call `nr` (KEEL_HC_ARM64_FID, for the
 * numbers the 16-bit function field holds; larger ones go in as they are, to check that Keel
 * refuses them), x1..x4 = arguments, result in x0. Unknown IDs get SMCCC NOT_SUPPORTED.
 */
#include "keel_arch.h" /* sdk/arch/arm64: HVC, MMIO and the PL011, shared with the guest SDK */

#define GUEST_HC_ID(nr)       ((uint64_t)(nr) < 0xff00 ? (uint64_t)KEEL_HC_ARM64_FID(nr) : (nr))
#define GUEST_HC_UNKNOWN      KEEL_HC_SMCCC_NOT_SUPPORTED
#define GUEST_HC_UNKNOWN_NAME "NOT_SUPPORTED"

static inline int64_t keel_hypercall(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2,
                                     uint64_t a3)
{
        return keel_arch_hypercall(GUEST_HC_ID(nr), a0, a1, a2, a3);
}

/* 32-bit MMIO: one plain LDR/STR with a base register (a syndrome Keel can decode). */
static inline uint32_t mmio_read32(uint64_t addr)
{
        return keel_mmio_read32(addr);
}

static inline void mmio_write32(uint64_t addr, uint32_t v)
{
        keel_mmio_write32(addr, v);
}

#define read_sysreg(name)                                                \
        ({                                                               \
                uint64_t v_;                                             \
                __asm__ volatile("mrs %0, " #name : "=r"(v_)::"memory"); \
                v_;                                                      \
        })

/* Stops for good (interrupts stay masked, so WFI only waits). */
static inline noreturn void guest_halt(void)
{
        for (;;)
                __asm__ volatile("wfi");
}

/* A free-running counter (CNTVCT_EL0) and how many ticks the spin guest counts for. */
static inline uint64_t guest_counter(void)
{
        uint64_t v;

        __asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v));
        return v;
}

/* Busy-wait `ticks` of the virtual counter (no exit). */
static inline void delay_ticks(uint64_t ticks)
{
        uint64_t t0 = guest_counter();

        while (guest_counter() - t0 < ticks)
                ;
}

#define SPIN_GAP_TICKS 20000ull     /* longer than any exit, shorter than a time slice */
#define SPIN_TICKS     125000000ull /* 2 s of QEMU virt's 62.5 MHz counter */

/* Interrupts masked for good, then spin: only Keel's own timer takes the CPU back. */
static inline noreturn void guest_runaway(void)
{
        __asm__ volatile("msr daifset, #0xf");
        for (;;)
                __asm__ volatile("" ::: "memory");
}

/* The exception level, for messages ("running at EL1"). */
#define GUEST_LEVEL_NAME "EL"

static inline unsigned guest_level(void)
{
        return (unsigned)(read_sysreg(CurrentEL) >> 2) & 3;
}

/* The VM's PL011 UART: it can take a byte (its transmit FIFO is not full), send one. */
#define PL011_BASE KEEL_PL011_BASE

static inline bool uart_tx_ready(void)
{
        return keel_uart_tx_ready();
}

static inline void uart_tx(char c)
{
        keel_uart_tx(c);
}

/* Called by the runtime's exception vectors (start.S): reports the exception, exits 0xd2. */
noreturn void guest_exception(uint64_t vector, uint64_t esr, uint64_t elr, uint64_t far);

/* The register that holds the RAM size at entry, for messages. */
#define GUEST_RAM_SIZE_REG "x0"

/* An MMIO load / store of 1, 2, 4 or 8 bytes (`w`) at address `a`, as one instruction. */
static inline uint64_t mmio_rd(uint64_t a, unsigned w)
{
        uint64_t v;

        switch (w) {
        case 1:
                __asm__ volatile("ldrb %w0, [%1]" : "=r"(v) : "r"(a) : "memory");
                return v;
        case 2:
                __asm__ volatile("ldrh %w0, [%1]" : "=r"(v) : "r"(a) : "memory");
                return v;
        case 4:
                __asm__ volatile("ldr %w0, [%1]" : "=r"(v) : "r"(a) : "memory");
                return v;
        default:
                __asm__ volatile("ldr %0, [%1]" : "=r"(v) : "r"(a) : "memory");
                return v;
        }
}

static inline void mmio_wr(uint64_t a, unsigned w, uint64_t v)
{
        switch (w) {
        case 1:
                __asm__ volatile("strb %w0, [%1]" : : "r"(v), "r"(a) : "memory");
                break;
        case 2:
                __asm__ volatile("strh %w0, [%1]" : : "r"(v), "r"(a) : "memory");
                break;
        case 4:
                __asm__ volatile("str %w0, [%1]" : : "r"(v), "r"(a) : "memory");
                break;
        default:
                __asm__ volatile("str %0, [%1]" : : "r"(v), "r"(a) : "memory");
                break;
        }
}

#endif
