/*
 * x86_64 part of the guest SDK's runtime: the hypercall and the VM's 16550 UART at 0x3f8
 * (keel_arch.h, shared with Keel's test guests), and TLS: the ELF TLS variant II
 * block below the thread pointer, FS.base pointing at a TCB whose first word is itself.
 */
#include "sdk.h"

#include "keel_arch.h"

#define MSR_FS_BASE 0xc0000100u

int keel_hc_vendor;

int64_t keel_hypercall(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3)
{
        return keel_arch_hypercall(nr, a0, a1, a2, a3);
}

void sdk_arch_uart_putc(char c)
{
        /* Keel's UART is always ready; the bound keeps a broken one from hanging us. */
        for (unsigned i = 0; i < 100000 && !keel_uart_tx_ready(); i++)
                ;
        keel_uart_tx(c);
}

int sdk_arch_uart_getc(void)
{
        return keel_uart_rx();
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
