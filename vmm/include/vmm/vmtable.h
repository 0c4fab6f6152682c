/*
 * The VM table (vmm/vmtable.c): every VM of the config, their lifecycle (create, run, pause,
 * stop, reap, rebuild), the vCPU scheduling loop of each CPU, the monitor's view and the
 * end-of-run summary. kernel/main.c boots the machine and hands over to it.
 */
#ifndef VMM_VMTABLE_H
#define VMM_VMTABLE_H

#include <keel/boot.h>

/* What a CPU other than the boot CPU runs once started (arch_smp_start's entry). */
_Noreturn void vmm_ap_main(unsigned cpu);
/*
 * The boot CPU's hand-over, with `ncpus` CPUs online (the others in vmm_ap_main): build and
 * run every VM of `bi`'s config, then run vCPUs, manage the VMs and serve the console and
 * monitor for ever.
 */
_Noreturn void vmm_main(const struct boot_info *bi, unsigned ncpus);

#endif
