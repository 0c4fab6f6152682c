/*
 * hostile_hlt: waits for an interrupt that cannot come. On real hardware the CPU would wait
 * forever; an image VM has no interrupt source (docs/guest-entry.md), so Keel stops it with
 * "halted" at once instead of keeping a vCPU that can never run again (it costs no CPU
 * time, and the other VMs run on).
 *   x86_64: CLI; HLT (HOSTILE_HLT_STI: STI; HLT, interrupts on but nothing to deliver).
 *   arm64: WFI with DAIF masked and the virtual timer off.
 * Coming back is a failure (exit 1).
 */
#include "guest.h"

int64_t guest_main(void)
{
#ifdef __x86_64__
#ifdef HOSTILE_HLT_STI
        guest_printf("hostile_hlt: sti; hlt with no interrupt source\n");
        __asm__ volatile("sti; hlt; cli" ::: "memory");
#else
        guest_printf("hostile_hlt: cli; hlt\n");
        __asm__ volatile("cli; hlt" ::: "memory");
#endif
#else
        guest_printf("hostile_hlt: wfi with interrupts masked and no timer\n");
        __asm__ volatile("msr daifset, #0xf\n msr cntv_ctl_el0, xzr\n isb\n wfi" ::: "memory");
#endif
        guest_printf("FAIL: hostile_hlt: woke up\n");
        return 1;
}
