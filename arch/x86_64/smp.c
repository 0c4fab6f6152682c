/*
 * STUB, for the arm64-smp branch only: keeps the x86_64 build linking after kernel/main.c
 * started calling arch_smp_start. The real x86 implementation (ACPI MADT, INIT-SIPI-SIPI) is
 * written in the x86 SMP branch; on merge, take that one and delete this file.
 */
#include <keel/smp.h>

unsigned arch_smp_start(const struct boot_info *bi, void (*ap_entry)(unsigned index))
{
        (void)bi;
        (void)ap_entry;
        return 1; /* the boot CPU only */
}

unsigned arch_cpu_index(void)
{
        return 0;
}

void arch_cpu_idle(void)
{
        __asm__ volatile("sti; hlt; cli" ::: "memory");
}
