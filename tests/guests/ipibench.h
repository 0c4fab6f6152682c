/*
 * ipibench: interrupt latency of a two-vCPU VM, measured by the guest with its counter (x86:
 * the TSC; arm64: CNTVCT_EL0), run by tools/bench under -icount (docs/benchmarks.md). The
 * arch sources (ipibench_x86.c, ipibench_arm64.c) bring up vCPU 1, send the interrupts and
 * take them; this header holds what they share: the samples, the IPI rounds and the report.
 * Before including it an arch source defines ipb_relax(), IPB_PATIENCE and IPB_HALT_SETTLE
 * (counter ticks), IPB_SPIN_DELAY(r) (the wait before round r's IPI to a spinning vCPU 1) and
 * declares ipb_send_ipi() (the IPI to vCPU 1).
 *
 * Each figure is IPB_ROUNDS samples of (counter in the handler - counter at the event): for
 * an IPI the event is the sender's counter read just before its write to the interrupt
 * controller; for a timer it is the deadline the guest programmed. Output, one line per
 * figure, parsed by tools/bench (ticks of the counter; tools/bench converts them):
 *   ipibench: <name> n=<samples> min=<ticks> median=<ticks> max=<ticks>
 * A sample that never arrives within IPB_PATIENCE ticks is a FAIL line and exit 1.
 */
#ifndef IPIBENCH_H
#define IPIBENCH_H

#include "guest.h"

#define IPB_ROUNDS 32

/* The handler's counter read (0 until the interrupt arrived) and whose round it was. */
static volatile uint64_t ipb_seen;
static unsigned ipb_failed;

static void ipb_sort(uint64_t *v, unsigned n)
{
        for (unsigned i = 1; i < n; i++)
                for (unsigned j = i; j > 0 && v[j - 1] > v[j]; j--) {
                        uint64_t t = v[j];

                        v[j] = v[j - 1];
                        v[j - 1] = t;
                }
}

static void ipb_report(const char *name, uint64_t *v, unsigned n)
{
        ipb_sort(v, n);
        guest_printf("ipibench: %s n=%u min=%lu median=%lu max=%lu\n", name, n, v[0], v[n / 2],
                     v[n - 1]);
}

/* Wait until the handler has recorded the interrupt, at most `patience` counter ticks. */
static bool ipb_wait(uint64_t patience, const char *what)
{
        uint64_t t0 = guest_counter();

        while (!ipb_seen) {
                if (guest_counter() - t0 > patience) {
                        guest_printf("FAIL: ipibench: %s: no interrupt within %lu ticks\n", what,
                                     patience);
                        ipb_failed++;
                        return false;
                }
                ipb_relax();
        }
        return true;
}

/* What vCPU 1 does between IPIs, set by vCPU 0; vCPU 1 counts the halts it enters. */
enum ap_mode { AP_SPIN, AP_HALT };

static volatile uint64_t ap_started, ap_halts;
static volatile enum ap_mode ap_mode;
static uint64_t samples[IPB_ROUNDS];

static void delay(uint64_t ticks)
{
        uint64_t t0 = guest_counter();

        while (guest_counter() - t0 < ticks)
                ipb_relax();
}

/* IPB_ROUNDS IPIs to vCPU 1 in `mode`; one report line `name`. */
static void ipi_rounds(const char *name, enum ap_mode mode)
{
        uint64_t halts = ap_halts; /* vCPU 1 counts its halts: one before each round */

        ap_mode = mode;
        for (unsigned r = 0; r < IPB_ROUNDS; r++) {
                uint64_t t0;

                ipb_seen = 0;
                if (mode == AP_HALT) {
                        while (ap_halts < halts + r + 1)
                                ipb_relax();
                        delay(IPB_HALT_SETTLE);
                } else {
                        delay(IPB_SPIN_DELAY(r));
                }
                t0 = guest_counter();
                ipb_send_ipi();
                if (!ipb_wait(IPB_PATIENCE, name))
                        return;
                samples[r] = ipb_seen - t0;
        }
        ipb_report(name, samples, IPB_ROUNDS);
}

#endif
