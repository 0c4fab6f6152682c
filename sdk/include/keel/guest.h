/*
 * Keel guest SDK (docs/guest-sdk.md): what a guest program built with keel_add_guest() can
 * call besides the C library. The SDK's runtime starts the program (stack, .bss, FP/SIMD,
 * TLS, the heap; on arm64 the MMU with an identity map), connects the library's stdio to
 * the VM's console and ends the VM with main's return value or exit()'s status.
 *
 * Guest-physical addresses are the program's pointers (identity map), so a pointer can be
 * passed to a hypercall as it is.
 */
#ifndef KEEL_GUEST_H
#define KEEL_GUEST_H

#include <stddef.h>
#include <stdint.h>

#include <vmm/hypercall.h> /* KEEL_HC_* numbers, struct keel_vm_info */

/* A Keel hypercall: `nr` is KEEL_HC_*, the result >= 0 on success, else -errno (x86) or an
 * SMCCC error (arm64) as in docs/hypercalls.md. */
int64_t keel_hypercall(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3);

/* The VM's RAM, as Keel passed it at entry. */
uint64_t keel_ram_base(void);
uint64_t keel_ram_size(void);

/* The VM's name from the config (VM_INFO), "" if Keel did not say; also argv[0]. */
const char *keel_vm_name(void);

/* Writes `len` bytes to the console (after what stdio has buffered), in PRINT hypercalls;
 * returns `len`. stdout and stderr end here. */
size_t keel_console_write(const void *buf, size_t len);

/* Reads one byte typed on the console (the VM's UART), waiting for it. */
int keel_console_getc(void);

/* The heap malloc() grows into: [start, end), between the image and the stack. */
uintptr_t keel_heap_start(void);
uintptr_t keel_heap_end(void);

/* Ends the VM at once with `code` (no atexit handlers, stdio not flushed: exit() does both). */
_Noreturn void keel_exit(int64_t code);

/* Exit codes of the runtime itself. */
#define KEEL_EXIT_NO_ROOM   126 /* the image and the stack do not fit in the VM's RAM */
#define KEEL_EXIT_EXCEPTION 255 /* an unexpected exception (arm64; x86 stops with triple-fault) */

#endif
