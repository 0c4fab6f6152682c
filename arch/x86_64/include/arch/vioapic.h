/*
 * The guest's I/O APIC (82093AA model, pure C, host-tested): 24 pins, GSI = pin, at
 * guest-physical 0xfec00000 (0x20 bytes: IOREGSEL at 0, IOWIN at 0x10; vioapic_mmio_ops with
 * dev = struct vioapic *). See docs/x86-interrupts.md.
 *
 * Wiring (the caller serializes all calls):
 *   - devices: struct irq_line { .set_level = vioapic_set_level, .ctrl = ioapic, .pin = gsi }
 *   - delivery: cb.deliver(ctx, dest, logical, vector, level, lowest) -> for the LAPICs:
 *         vlapic_match_dest(lapic, dest, logical) && vlapic_set_irq(lapic, vector, level)
 *   - EOI: the vlapic's env.eoi_vector -> vioapic_eoi(ioapic, vector)
 */
#ifndef ARCH_X86_VIOAPIC_H
#define ARCH_X86_VIOAPIC_H

#include <stdbool.h>
#include <stdint.h>

#include <vmm/mmio.h>

#define VIOAPIC_BASE    0xfec00000ull
#define VIOAPIC_SIZE    0x20ull
#define VIOAPIC_PINS    24
#define VIOAPIC_VERSION 0x00170011u /* version 0x11, max redirection entry 23 */

#define VIOAPIC_IOREGSEL 0x00
#define VIOAPIC_IOWIN    0x10

/* Indirect registers (IOREGSEL values). */
#define VIOAPIC_REG_ID    0x00
#define VIOAPIC_REG_VER   0x01
#define VIOAPIC_REG_ARB   0x02
#define VIOAPIC_REG_REDIR 0x10 /* 0x10 + 2 * pin: low dword, + 1: high dword */

/* Redirection entry bits. */
#define VIOAPIC_RTE_DELIVS     (1ull << 12) /* delivery status: always idle here */
#define VIOAPIC_RTE_POLARITY   (1ull << 13) /* 1 = active low */
#define VIOAPIC_RTE_REMOTE_IRR (1ull << 14)
#define VIOAPIC_RTE_LEVEL      (1ull << 15)
#define VIOAPIC_RTE_MASKED     (1ull << 16)
#define VIOAPIC_RTE_LOGICAL    (1ull << 11)

struct vioapic_cb {
        /*
         * Send `vector` to the local APIC(s) `dest` (physical: APIC ID, logical: LDR match).
         * `level`: level-triggered; `lowest`: lowest-priority mode (one of the named LAPICs
         * takes it), else fixed (all of them). Returns true if a local APIC accepted it; a
         * level pin sets its remote IRR only then. Required.
         */
        bool (*deliver)(void *ctx, uint8_t dest, bool logical, uint8_t vector, bool level,
                        bool lowest);
        void *ctx;
};

/* Guest-caused oddities, counted (silently ignored otherwise). */
struct vioapic_stats {
        uint64_t bad_access; /* not a 32-bit aligned access to IOREGSEL/IOWIN */
        uint64_t bad_regsel; /* IOWIN access with IOREGSEL naming no register */
        uint64_t dropped;    /* unsupported delivery mode (SMI/NMI/INIT/ExtINT) or not accepted */
        uint64_t deliveries; /* interrupts sent to the local APIC */
};

struct vioapic {
        uint32_t regsel; /* IOREGSEL bits 7:0 */
        uint32_t id;     /* ID register (bits 27:24) */
        uint64_t rte[VIOAPIC_PINS];
        uint32_t input; /* raw line level per pin (before polarity) */
        struct vioapic_cb cb;
        struct vioapic_stats stats;
};

/* Reset: all entries masked, edge, active high; ID 0; all lines low. */
void vioapic_init(struct vioapic *io, const struct vioapic_cb *cb);

/*
 * irq.h's set_level (ctrl = struct vioapic *): drive input `pin`. Edge pins deliver on the
 * inactive -> active transition if unmasked (nothing is latched while masked); level pins
 * deliver while active, unmasked and remote IRR clear. pin < 24 (Keel wires it: CHECKed).
 */
void vioapic_set_level(void *ctrl, unsigned pin, bool level);

/* EOI broadcast for `vector`: clears remote IRR of level pins with that vector, and
 * re-delivers those still active. */
void vioapic_eoi(struct vioapic *io, uint8_t vector);

/* Indirect register access (what IOWIN does with IOREGSEL = reg). */
uint32_t vioapic_read_reg(struct vioapic *io, uint32_t reg);
void vioapic_write_reg(struct vioapic *io, uint32_t reg, uint32_t value);

extern const struct mmio_ops vioapic_mmio_ops;

/* Snapshots (vmm/snapshot.h): IOREGSEL, ID, the redirection entries and the pins' levels;
 * load checks them against what a guest could have written and applies in the apply pass. */
struct snap_buf;
struct snap_rd;
void vioapic_save(const struct vioapic *io, struct snap_buf *b);
int vioapic_load(struct vioapic *io, struct snap_rd *r);

#endif
