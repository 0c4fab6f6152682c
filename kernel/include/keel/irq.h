/*
 * Device interrupts and device polling for Keel's own drivers (docs/pci.md, docs/nvme.md).
 *
 * A driver takes a vector with irq_alloc and points its device's MSI (arch_msi_message) at
 * it; the arch's trap entry calls irq_dispatch for a vector in its device range
 * (<arch/irq.h>: ARCH_IRQ_FIRST, ARCH_IRQ_COUNT; 0 vectors where Keel takes no device
 * interrupts yet, e.g. arm64 without an ITS driver). Keel runs with interrupts off except in
 * its explicit windows (keel/spinlock.h): while a CPU idles and on the exit path after a
 * guest ran. No lock is held across a window, but a handler may run on another CPU at the
 * same time as the driver's own code: it takes the driver's locks with spin_trylock only and
 * leaves the work to the next poll when one is busy.
 *
 * Pollers are the fallback and the safety net: irq_poll_all, called from every CPU's
 * scheduling round (vmm/vmtable.c, at least once per slice or idle wake-up), calls each one,
 * so a request completes although nobody polls it and no interrupt comes.
 *
 * Deferred work: a handler that has work needing locks (completing a request calls its
 * owner, which takes a VM's device lock) does not do it; it calls irq_poll_soon, and the
 * pollers run on this CPU as soon as it leaves the interrupt window, outside interrupt
 * context (irq_poll_deferred, called by the arch after the window on its exit path; an idle
 * CPU's window is followed by its scheduling round). While a hold is on (irq_poll_hold:
 * someone waits for work only a poller does), irq_poll_deferred runs them after every window
 * too, so also at each host tick of a busy CPU, and an idle CPU does not sleep.
 *
 * A poll at a time: irq_poll_by(t) makes the pollers run at TSC t or soon after: this CPU's
 * timer (arch_timer_by) interrupts it then, whether it idles or runs a guest, every CPU that
 * starts a guest meanwhile arms its timer for the earliest such time too, and
 * irq_poll_deferred after a window sees that it has come. One CPU serves it, and every
 * request up to then with it: a poller that still waits for a later time asks again (that is
 * how a later request is kept). For work due at a known time (virtio-blk's interrupt
 * moderation bound), without a hold's polling at every window and a busy CPU's tick.
 */
#ifndef KEEL_IRQ_H
#define KEEL_IRQ_H

#include <stdbool.h>
#include <stdint.h>

#include <arch/irq.h>

#define IRQ_MAX_POLLERS 8

typedef void (*irq_fn)(void *arg);

/* A free device vector for `fn(arg)`, meant for CPU `cpu` (the caller aims its MSI there).
 * 0 and *vector, or -KEEL_ENOSPC (all taken), -KEEL_ENOTSUP (the arch has none). */
int irq_alloc(unsigned cpu, irq_fn fn, void *arg, uint8_t *vector);

/* The arch's trap entry, for a vector in its device range: run its handler. False when no
 * handler owns it (a stray interrupt). */
bool irq_dispatch(unsigned vector);

/* Interrupts taken on `vector` since boot. */
uint64_t irq_count(uint8_t vector);

/* Call fn(arg) from every CPU's scheduling round. -KEEL_ENOSPC past IRQ_MAX_POLLERS. */
int irq_poll_register(irq_fn fn, void *arg);
void irq_poll_all(void);

/* From a handler: run the pollers when this CPU leaves the interrupt window. */
void irq_poll_soon(void);
/* Holds nest; irq_poll_wanted() is true while any is held. */
void irq_poll_hold(bool on);
bool irq_poll_wanted(void);
/* The arch, after an interrupt window on its exit path (no lock held): the pollers, if a
 * handler asked for them, a hold is on or this CPU's irq_poll_by time has come. */
void irq_poll_deferred(void);

/* The pollers run at TSC `tsc` or soon after (see above: ask again if still waiting). */
void irq_poll_by(uint64_t tsc);
/*
 * The same with slack: the pollers may run from `tsc` on and must by `tsc + slack`. Timers
 * come for the end; from the start a CPU that enters a guest serves it (irq_poll_entry), as
 * does any irq_poll_deferred, so a busy guest's own exits do the work without an exit for
 * Keel's timer. Served, it is served whole (the end with it).
 */
void irq_poll_by_slack(uint64_t tsc, uint64_t slack);
/* The earliest time the timer must come for (irq_poll_by's, or a slack's end) not yet
 * served (maybe past), or UINT64_MAX. */
uint64_t irq_poll_next(void);
/* The arch, before it enters a guest (no lock held): the pollers, if a poll time has come.
 * True if they ran (the arch then arms its timer afresh: what it waited for may be gone). */
bool irq_poll_entry(void);

/* Forget every handler and poller (host tests only). */
void irq_reset_for_test(void);

#endif
