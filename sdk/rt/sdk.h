/*
 * Inside the guest SDK's runtime: what its generic part (rt/) and its arch part
 * (arch/<arch>/) give each other. Not for guest programs (they include <keel/guest.h>).
 */
#ifndef KEEL_SDK_H
#define KEEL_SDK_H

#include <stdint.h>

#include <keel/guest.h>

/* Linker-script symbols (sdk/guest.ld). */
extern char __image_start[], __image_end[], __bss_start[], __bss_end[];
extern char __tdata_start[], __tdata_end[], __tbss_start[], __tbss_end[], __tls_align[];
extern char __keel_stack_size[]; /* its address is the size */

/* The arch part (arch/<arch>/arch.c, crt0.S). */
void sdk_arch_early(uint64_t ram_base, uint64_t ram_size); /* after .bss is zero */
uintptr_t sdk_arch_tls_init(uintptr_t at);                 /* TLS block at `at`; returns its end */
void sdk_arch_uart_putc(char c);
int sdk_arch_uart_getc(void); /* -1: nothing received */

/* The generic part (rt/). */
uintptr_t keel_sdk_early(uint64_t ram_size, uint64_t ram_base); /* returns the stack top */
_Noreturn void keel_sdk_start(uint64_t ram_size, uint64_t ram_base);
void keel_console_putc(char c);
void keel_console_flush(void);
/* Writes `s` and `v` in hex to the console, without stdio (for the runtime's own reports). */
void keel_console_report(const char *s, uint64_t v);

/* The TLS segment's alignment (p_align: the linker's offsets assume it) and size (p_memsz). */
static inline uintptr_t sdk_tls_align(void)
{
        uintptr_t a = (uintptr_t)__tls_align;

        return a ? a : 1;
}

static inline uintptr_t sdk_tls_size(void)
{
        return (uintptr_t)(__tbss_end - __tdata_start);
}

static inline uintptr_t sdk_align_up(uintptr_t v, uintptr_t a)
{
        return (v + a - 1) & ~(a - 1);
}

/* Copies the .tdata template to `block` and zeroes the rest of the block (.tbss). */
void sdk_tls_fill(uintptr_t block);

#endif
