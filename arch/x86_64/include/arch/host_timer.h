/*
 * Keel's own time on x86: the TSC frequency measured against the legacy PIT at boot, and a
 * periodic LAPIC timer tick that makes a running guest exit (INTR) regularly, so that Keel
 * can deliver virtual timer interrupts and console input even to a guest that never exits
 * by itself.
 */
#ifndef ARCH_HOST_TIMER_H
#define ARCH_HOST_TIMER_H

#include <stdint.h>

#define HOST_TICK_VECTOR 0x20
#define HOST_TICK_HZ     1000

/* Measure the TSC (and LAPIC timer) frequency; start the tick. After the IDT is loaded. */
void x86_time_init(void);
/* Called by the trap handler for HOST_TICK_VECTOR. */
void x86_host_tick(void);
/* Host ticks since x86_time_init. */
uint64_t x86_host_ticks(void);
/* Acknowledge the current interrupt at the LAPIC. */
void x86_lapic_eoi(void);
/* Wait for the next interrupt (tick or other) with interrupts briefly enabled. */
void x86_wait_for_interrupt(void);

#endif
