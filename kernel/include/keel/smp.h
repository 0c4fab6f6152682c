/*
 * Several physical CPUs. The boot CPU is index 0; application processors get 1, 2, ... in
 * the order they came up. Each CPU has its own stacks, per-CPU data and virtualization
 * enabled before it runs any vCPU (docs/smp.md).
 */
#ifndef KEEL_SMP_H
#define KEEL_SMP_H

#include <stdbool.h>

#include <keel/boot.h>

#include <stddef.h>

/*
 * Keel runs every CPU the firmware lists: per-CPU tables are sized at boot from that count
 * (arch_cpu_slots). KEEL_CPU_INDEX_MAX only bounds the numbers a config may name (`cpu =`);
 * the config is checked against the CPUs online at boot.
 */
#define KEEL_CPU_INDEX_MAX 65535

/* This CPU's index (0 = boot CPU). Valid from arch_cpu_setup on (arch). */
unsigned arch_cpu_index(void);

/*
 * How many CPU indices this boot may use: 1 + the secondaries the firmware lists that Keel
 * has memory for. Fixed once arch_cpu_setup has returned; every CPU index is below it (arch).
 */
unsigned arch_cpu_slots(void);

/*
 * A zeroed table of arch_cpu_slots() entries of `size` bytes each, from the page allocator
 * (boot CPU, after arch_cpu_setup sized it); `what` names it in the panic if there is no
 * memory for it (kernel/percpu.c).
 */
void *percpu_table(size_t size, const char *what);

/*
 * Start every other CPU the firmware's tables list (x86: ACPI MADT, INIT-SIPI-SIPI; arm64:
 * ACPI MADT GICC entries, PSCI CPU_ON), as many as arch_cpu_slots(). Each started CPU sets
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

/*
 * This CPU takes an interrupt at TSC `tsc` or soon after (at once if it has passed), whether it
 * idles or runs a guest then, on top of whatever else its timer is armed for (arch). For
 * keel/irq.h's irq_poll_by.
 */
void arch_timer_by(uint64_t tsc);

#endif
