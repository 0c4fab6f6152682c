/*
 * x86_64 part of the guest SDK's runtime: the hypercall (VMCALL on Intel, VMMCALL on AMD:
 * the other one is #UD), the VM's 16550 UART at 0x3f8, and TLS: the ELF TLS variant II
 * block below the thread pointer, FS.base pointing at a TCB whose first word is itself.
 */
#include "sdk.h"

#define UART_DATA     0x3f8
#define UART_LSR      0x3fd
#define UART_LSR_DR   0x01
#define UART_LSR_THRE 0x20
#define MSR_FS_BASE   0xc0000100u

static int hc_vendor; /* 0 unknown, 1 AMD (VMMCALL), 2 Intel (VMCALL) */

static int detect_vendor(void)
{
        uint32_t a = 0, b, c, d;

        __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(d));
        /* "GenuineIntel": EBX "Genu", EDX "ineI", ECX "ntel" */
        hc_vendor = (b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e) ? 2 : 1;
        return hc_vendor;
}

int64_t keel_hypercall(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3)
{
        uint64_t ret = nr;

        if ((hc_vendor ? hc_vendor : detect_vendor()) == 2)
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

static inline uint8_t inb(uint16_t port)
{
        uint8_t v;

        __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
        return v;
}

static inline void outb(uint16_t port, uint8_t v)
{
        __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

void sdk_arch_uart_putc(char c)
{
        /* Keel's UART is always ready; the bound keeps a broken one from hanging us. */
        for (unsigned i = 0; i < 100000 && !(inb(UART_LSR) & UART_LSR_THRE); i++)
                ;
        outb(UART_DATA, (uint8_t)c);
}

int sdk_arch_uart_getc(void)
{
        return (inb(UART_LSR) & UART_LSR_DR) ? inb(UART_DATA) : -1;
}

void sdk_arch_early(uint64_t ram_base, uint64_t ram_size)
{
        (void)ram_base;
        (void)ram_size;
}

uintptr_t sdk_arch_tls_init(uintptr_t at)
{
        /* The linker puts TLS variables at tp - align_up(p_memsz, p_align) + offset. */
        uintptr_t size = sdk_align_up(sdk_tls_size(), sdk_tls_align());
        uintptr_t tcb_align = sdk_tls_align() < 16 ? 16 : sdk_tls_align();
        uintptr_t tp = sdk_align_up(at + size, tcb_align);
        uint64_t fs = tp;

        sdk_tls_fill(tp - size);
        *(uintptr_t *)tp = tp; /* %fs:0 holds the thread pointer itself */
        __asm__ volatile("wrmsr"
                         :
                         : "c"(MSR_FS_BASE), "a"((uint32_t)fs), "d"((uint32_t)(fs >> 32)));
        return tp + 16;
}
