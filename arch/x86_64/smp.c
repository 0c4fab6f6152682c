/* Until the AP bring-up lands: the boot CPU alone. */
#include <keel/smp.h>

unsigned arch_cpu_index(void)
{
        return 0;
}

unsigned arch_smp_start(const struct boot_info *bi, void (*ap_entry)(unsigned index))
{
        (void)bi;
        (void)ap_entry;
        return 1;
}

void arch_cpu_idle(void)
{
        __asm__ volatile("sti; hlt; cli" ::: "memory");
}
