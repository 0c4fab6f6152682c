/*
 * Keel's own time on x86: the TSC frequency measured against the legacy PIT at boot, and a
 * periodic LAPIC timer tick that makes a running guest exit (INTR) regularly, so that Keel
 * can deliver virtual timer interrupts and console input even to a guest that never exits
 * by itself.
 */
#ifndef ARCH_HOST_TIMER_H
#define ARCH_HOST_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#define HOST_TICK_VECTOR 0x20
#define HOST_TICK_HZ     1000

/* Measure the TSC (and LAPIC timer) frequency; start the tick. After the IDT is loaded. */
void x86_time_init(void);
/* Called by the trap handler for HOST_TICK_VECTOR. */
void x86_host_tick(void);
/*
 * Make this CPU's host timer interrupt come by TSC `when` (a virtual LAPIC's next expiry): if
 * that is sooner than a tick period from now and than what it is armed for, the LAPIC timer
 * becomes one-shot for `when`; its interrupt (HOST_TICK_VECTOR) makes it periodic again, the
 * period counted from then. So a guest's timer is served at its deadline, not at the next
 * tick, and the CPU still gets an interrupt at least once per period.
 */
void x86_host_timer_by(uint64_t when);
/* Host ticks since x86_time_init. */
uint64_t x86_host_ticks(void);
/* Acknowledge the current interrupt at the LAPIC. */
void x86_lapic_eoi(void);
/* This CPU's LAPIC id (x2APIC id in x2APIC mode; 0 without a LAPIC). */
uint32_t x86_lapic_id(void);
/* Whether the boot CPU's LAPIC is in x2APIC mode (32-bit ids, ICR as one MSR). */
bool x86_lapic_x2apic(void);
/* Send an IPI through this CPU's ICR: destination APIC id, ICR low word (mode, vector). */
void x86_lapic_send_ipi(uint32_t apic_id, uint32_t icr_lo);
/* On an AP: enable its LAPIC in the boot CPU's mode and start the host tick with the boot
 * CPU's calibrated count. */
void x86_ap_time_init(void);
/* Wait for the next interrupt (tick or other) with interrupts briefly enabled. */
void x86_wait_for_interrupt(void);

#endif
