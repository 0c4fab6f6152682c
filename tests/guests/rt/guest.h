/*
 * The tiny runtime shared by Keel's test guests: entry, console output (the VM's emulated
 * UART and the print hypercall), hypercall wrappers and exit, for every architecture. The
 * arch part (entry registers, the hypercall instruction, the UART, arch helpers such as port
 * I/O or system registers) is rt/<arch>/guest_arch.h, rt/<arch>/guest_arch.c and
 * rt/<arch>/start.S.
 *
 * A guest defines guest_main(); its return value is the exit code passed to the exit
 * hypercall. Guests run freestanding in the guest kernel mode Keel starts them in (CPL 0 in
 * long mode on x86_64, EL1 with the MMU off on arm64: docs/guest-entry.md); pointers are
 * guest-physical addresses (identity map, or no translation at all).
 */
#ifndef GUEST_H
#define GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>

#include <keel/errno.h>
#include <vmm/hypercall.h>

/*
 * From guest_arch.h: struct guest_entry_state, keel_hypercall(), uart_tx_ready() and
 * uart_tx() (the VM's UART), guest_halt(), GUEST_LEVEL_NAME and guest_level() (the privilege
 * level the guest runs at, for messages), GUEST_RAM_SIZE_REG.
 */
#include "guest_arch.h"

/* Registers as Keel left them at entry (filled by _start before anything else runs). */
extern struct guest_entry_state guest_entry_state;

/* Linker-script symbols: the image's extent and its .bss. */
extern char __image_start[], __image_end[], __bss_start[], __bss_end[];

/* Guest RAM: [guest_ram_base, guest_ram_base + guest_ram_size), as Keel passed them at entry
 * (x86_64: RDI = size, base 0; arm64: x0 = size, x1 = base). */
extern uint64_t guest_ram_size;
extern uint64_t guest_ram_base;

static inline uint64_t guest_ram_end(void)
{
        return guest_ram_base + guest_ram_size;
}

/* The first page of RAM above the image: the part a guest may use freely. */
static inline uint64_t guest_free_ram_start(void)
{
        return ((uint64_t)(uintptr_t)__image_end + 4095) & ~4095ull;
}

/* A word that depends on its address and a round (the RAM checkers: witness, snapcount). */
static inline uint64_t guest_ram_pattern(uint64_t addr, uint64_t round)
{
        uint64_t x = addr * 0x9e3779b97f4a7c15ull ^ (round + 1) * 0xc2b2ae3d27d4eb4full;

        return x ^ (x >> 29);
}

/* Defined by each guest. Returns the exit code. */
int64_t guest_main(void);

/* Called by _start; checks the image, runs guest_main and exits with its result. */
noreturn void guest_start(uint64_t ram_size, uint64_t ram_base);
/* Exit hypercall; if Keel ever returns from it, says so and halts. */
noreturn void guest_exit(int64_t code);

/* Console: the VM's UART (guest_arch.h), polled. Lines end with '\n'; Keel adds "[<vm>] ". */
static inline void uart_putc(char c)
{
        /* Keel's UART is always ready; the bound only keeps a broken one from hanging us. */
        for (unsigned i = 0; i < 100000 && !uart_tx_ready(); i++)
                ;
        uart_tx(c);
}

void guest_puts(const char *s);
/* printf subset: %s %c %d %i %u %x %p %%, flags '0' '-', width, length l/ll/z. */
void guest_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void guest_vprintf(const char *fmt, va_list ap);
int guest_snprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The few libc functions the compiler may call (memset and memcpy: guest_arch.c). */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);

static inline uint64_t gpa_of(const volatile void *p)
{
        return (uint64_t)(uintptr_t)p;
}

static inline int64_t hc_version(void)
{
        return keel_hypercall(KEEL_HC_VERSION, 0, 0, 0, 0);
}

static inline int64_t hc_print_gpa(uint64_t gpa, uint64_t len)
{
        return keel_hypercall(KEEL_HC_PRINT, gpa, len, 0, 0);
}

static inline int64_t hc_print(const char *s, uint64_t len)
{
        return hc_print_gpa(gpa_of(s), len);
}

static inline int64_t hc_vm_info_gpa(uint64_t gpa, uint64_t size)
{
        return keel_hypercall(KEEL_HC_VM_INFO, gpa, size, 0, 0);
}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
