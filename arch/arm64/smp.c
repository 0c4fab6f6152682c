/*
 * STUB, to be replaced by the arm64 SMP implementation (another branch): keeps the arm64
 * build linking now that kernel/main.c calls arch_smp_start and kernel/log.c calls
 * arch_cpu_index. Only the boot CPU runs.
 */
#include <keel/smp.h>

unsigned arch_cpu_index(void)
{
        return 0;
}

unsigned arch_smp_start(const struct boot_info *bi, void (*ap_entry)(unsigned index))
{
        (void)bi;
        (void)ap_entry;
        return 1; /* stub: no secondary CPUs started */
}

void arch_cpu_idle(void)
{
        __asm__ volatile("wfi" ::: "memory");
}
