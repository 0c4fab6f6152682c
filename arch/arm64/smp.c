/* Until the secondary-CPU bring-up lands: the boot CPU alone. */
#include <arch/cpu.h>
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
        arm64_hyp_timer_arm(arch_tsc_khz()); /* 1 ms at the latest */
        __asm__ volatile("dsb sy; wfi" ::: "memory");
        arm64_hyp_timer_stop();
}
