/*
 * Several physical CPUs. The boot CPU is index 0; application processors get 1, 2, ... in
 * the order they came up. Each CPU has its own stacks, per-CPU data and virtualization
 * enabled before it runs any vCPU (docs/smp.md).
 */
#ifndef KEEL_SMP_H
#define KEEL_SMP_H

#include <stdbool.h>

#include <keel/boot.h>

#define KEEL_MAX_CPUS 8

/* This CPU's index (0 = boot CPU). Valid from arch_cpu_setup on (arch). */
unsigned arch_cpu_index(void);

/*
 * Start every other CPU the firmware's tables list (x86: ACPI MADT, INIT-SIPI-SIPI; arm64:
 * ACPI MADT GICC entries, PSCI CPU_ON), at most KEEL_MAX_CPUS in all. Each started CPU sets
 * itself up (descriptor tables, Keel's page tables, its host tick, virtualization on), then
 * calls ap_entry(its index) on its own stack and never returns. A CPU that does not come up
 * is reported in one line and left out. Called on the boot CPU after arch_virt_enable;
 * returns the number of CPUs online, the boot CPU included (arch).
 */
unsigned arch_smp_start(const struct boot_info *bi, void (*ap_entry)(unsigned index));

/*
 * Make CPU `cpu` leave the guest it runs, if any, at once (an inter-processor interrupt):
 * an interrupt became pending for a vCPU running there, or its VM was paused or stopped.
 * A no-op for this CPU itself (arch).
 */
void arch_cpu_kick(unsigned cpu);

/* Idle this CPU until the next interrupt (Keel's host tick at the latest) (arch). */
void arch_cpu_idle(void);

#endif
