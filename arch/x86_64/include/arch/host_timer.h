/*
 * Keel's own time on x86: the TSC frequency measured against the legacy PIT at boot, and the
 * LAPIC timer, one-shot, armed for the next thing Keel must do on this CPU: a period (the host
 * tick, HOST_TICK_HZ) from now at the latest while it idles; the slice's end, a virtual timer
 * or a poll while a vCPU runs. So a guest that never exits by itself still gets them, and one
 * that needs none of them is left alone.
 */
#ifndef ARCH_HOST_TIMER_H
#define ARCH_HOST_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#define HOST_TICK_VECTOR 0x20
#define HOST_TICK_HZ     1000

/* Measure the TSC (and LAPIC timer) frequency; arm the timer. After the IDT is loaded. */
void x86_time_init(void);
/* Called by the trap handler for HOST_TICK_VECTOR: arms the timer again. */
void x86_host_tick(void);
/*
 * Around a vCPU's run (arch_vcpu_run): while it runs, this CPU's timer is armed for the
 * slice's end (`deadline`), the pollers' next time (keel/irq.h) or what arch_timer_by asked
 * for (the vCPU's LAPIC timer, its PIT), whichever comes first, and at most a period ahead
 * only while a poll hold is on; idle, a period ahead at most (keel/smp.h's arch_timer_by
 * brings it forward in both).
 */
void x86_host_timer_run(uint64_t deadline);
void x86_host_timer_idle(void);
/* Acknowledge the current interrupt at the LAPIC. */
void x86_lapic_eoi(void);
/* This CPU's LAPIC id (x2APIC id in x2APIC mode; 0 without a LAPIC). */
uint32_t x86_lapic_id(void);
/* Whether the boot CPU's LAPIC is in x2APIC mode (32-bit ids, ICR as one MSR). */
bool x86_lapic_x2apic(void);
/* Send an IPI through this CPU's ICR: destination APIC id, ICR low word (mode, vector). */
void x86_lapic_send_ipi(uint32_t apic_id, uint32_t icr_lo);
/* On an AP: enable its LAPIC in the boot CPU's mode and arm its timer with the boot CPU's
 * calibrated count. */
void x86_ap_time_init(void);
/* Wait for the next interrupt (tick or other) with interrupts briefly enabled. */
void x86_wait_for_interrupt(void);

#endif
