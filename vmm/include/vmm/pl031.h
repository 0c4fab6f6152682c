/*
 * Emulated Arm PrimeCell PL031 real-time clock (one per arm64 Linux VM, at QEMU virt's
 * address; the register model is arch-neutral). Its counter is Keel's wall clock
 * (keel/wallclock.h) in seconds plus the VM's own offset, which a write of RTCLR sets. The
 * match interrupt is level, raised when the counter has reached RTCMR, evaluated whenever the
 * guest touches the device (a guest that sleeps waiting for it alone is not woken: alarms are
 * not modelled beyond that). docs/time.md.
 */
#ifndef VMM_PL031_H
#define VMM_PL031_H

#include <stdbool.h>
#include <stdint.h>

#include <vmm/irq.h>
#include <vmm/mmio.h>

#define PL031_SIZE 0x1000

struct pl031 {
        int64_t offset;    /* the guest's counter minus Keel's seconds */
        uint32_t match;    /* RTCMR */
        uint32_t load;     /* RTCLR as last written */
        uint32_t armed_at; /* counter when RTCMR was written: a match is a later crossing */
        bool armed;        /* RTCMR written since the last match */
        bool ris, imsc;    /* raw interrupt status, mask (1 = enabled) */
        bool level;        /* driven on `irq` */
        struct irq_line irq;
        uint64_t (*now_ns)(void); /* the wall clock (wallclock_ns; a test's own) */
};

void pl031_init(struct pl031 *p, uint64_t (*now_ns)(void));
void pl031_set_irq(struct pl031 *p, const struct irq_line *line);

extern const struct mmio_ops pl031_ops;

/* Snapshots (vmm/snapshot.h): offset from Keel's clock, match and interrupt state. */
struct snap_buf;
struct snap_rd;
void pl031_save(const struct pl031 *p, struct snap_buf *b);
int pl031_load(struct pl031 *p, struct snap_rd *r);

#endif
