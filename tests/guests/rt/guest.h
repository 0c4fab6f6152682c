/*
 * The tiny runtime shared by Keel's test guests: entry, console output (the emulated 16550
 * and the print hypercall), hypercall wrappers, port I/O, CPUID and exit.
 *
 * A guest defines guest_main(); its return value is the exit code passed to the exit
 * hypercall. Guests run freestanding at CPL 0 in the long-mode environment Keel sets up
 * (docs/guest-entry.md); pointers are guest-physical addresses (identity map).
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

/* Registers as Keel left them at entry (filled by _start before anything else runs). */
struct guest_entry_state {
        uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp;
        uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
        uint64_t rip, rflags;
};
extern struct guest_entry_state guest_entry_state;

/* Linker-script symbols: the image's extent and its .bss. */
extern char __image_start[], __image_end[], __bss_start[], __bss_end[];

/* Guest RAM size in bytes (RDI at entry). */
extern uint64_t guest_ram_size;

/* Defined by each guest. Returns the exit code. */
int64_t guest_main(void);

/* Called by _start; checks the image, runs guest_main and exits with its result. */
noreturn void guest_start(uint64_t ram_size);
/* Exit hypercall; if Keel ever returns from it, says so and halts. */
noreturn void guest_exit(int64_t code);

/* Console: the 16550 at 0x3f8, polled. Lines end with '\n'; Keel adds "[<vm>] ". */
void uart_putc(char c);
void guest_puts(const char *s);
/* printf subset: %s %c %d %i %u %x %p %%, flags '0' '-', width, length l/ll/z. */
void guest_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void guest_vprintf(const char *fmt, va_list ap);
int guest_snprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The few libc functions the compiler may call. */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);

/* Hypercalls: RAX = number, RBX, RCX, RDX, RSI = arguments, result in RAX. */
static inline int64_t keel_hypercall(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2,
                                     uint64_t a3)
{
        uint64_t ret = nr;

        __asm__ volatile("vmmcall" : "+a"(ret) : "b"(a0), "c"(a1), "d"(a2), "S"(a3) : "memory");
        return (int64_t)ret;
}

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

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
