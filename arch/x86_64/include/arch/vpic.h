/*
 * The guest's 8259A pair (pure C, host-tested): master at ports 0x20/0x21, slave at 0xa0/0xa1
 * cascaded on the master's IR2, and the PIIX edge/level control registers (ELCR) at
 * 0x4d0/0x4d1. See docs/x86-interrupts.md.
 *
 * Wiring (the caller serializes all calls):
 *   - devices: ISA IRQ n (0-15) -> vpic_set_irq(pic, n, level), beside the I/O APIC pin;
 *   - the pair's INT output (vpic_pending >= 0) goes to the BSP's LINT0 (ExtINT); when the
 *     vCPU takes it, vpic_intack is the INTA cycle and gives the vector to inject.
 */
#ifndef ARCH_X86_VPIC_H
#define ARCH_X86_VPIC_H

#include <stdbool.h>
#include <stdint.h>

#define VPIC_MASTER_PORT 0x20  /* and 0x21 */
#define VPIC_SLAVE_PORT  0xa0  /* and 0xa1 */
#define VPIC_ELCR_PORT   0x4d0 /* and 0x4d1 */

/* INTA cycles, counted. */
struct vpic_stats {
        uint64_t spurious;   /* INTA with no request left: IRQ 7 / IRQ 15's vector, no ISR bit */
        uint64_t deliveries; /* INTA cycles that gave a real request */
};

struct vpic_chip {
        uint8_t irr, isr, imr;
        uint8_t lines;  /* input levels (edge detection; level inputs) */
        uint8_t elcr;   /* 1 = level-triggered (ELCR) */
        uint8_t base;   /* ICW2 bits 7:3 */
        uint8_t lowest; /* the IR with the lowest priority (7 after ICW1) */
        uint8_t icw;    /* next ICW expected: 2, 3, 4, or 0 (initialized: OCWs) */
        bool need_icw4, single, auto_eoi, rotate_aeoi, sfnm, special_mask, read_isr, poll;
};

struct vpic {
        struct vpic_chip chip[2]; /* [0] master, [1] slave */
        struct vpic_stats stats;
};

/* Reset (before any ICW): everything clear, all masked, base 0, ICW sequence not started. */
void vpic_init(struct vpic *p);

/*
 * The state SeaBIOS (src/hw/pic.c) leaves under QEMU: ICW1 0x11, bases 0x08 and 0x70, ICW3
 * 0x04/0x02, ICW4 0x01 (8086, normal EOI), then all masked but what it enables: IRQ 0 (PIT),
 * 1 (keyboard), 2 (cascade), 6 (floppy), 8 (RTC), 12 (mouse), 13 (FPU), 14 (ATA); ELCR all
 * edge (Keel gives such guests no PCI INTx to route).
 */
#define VPIC_BIOS_IMR_MASTER 0xb8 /* ~(IRQ 0, 1, 2, 6) */
#define VPIC_BIOS_IMR_SLAVE  0x8e /* ~(IRQ 8, 12, 13, 14) */
void vpic_bios_state(struct vpic *p);

/* irq.h's set_level (ctrl = struct vpic *): drive ISA IRQ `irq` (< 16: CHECKed; Keel wires it). */
void vpic_set_irq(void *ctrl, unsigned irq, bool level);

/*
 * A byte access to a port: true if `port` is the pair's or the
 * ELCR's. Any value is legal: reserved bits are ignored.
 */
bool vpic_io(struct vpic *p, uint16_t port, bool in, uint8_t *val);

/* The vector an INTA cycle would give now, or -1 if the master's INT output is low. */
int vpic_pending(const struct vpic *p);

/*
 * The INTA cycle: the vector of the highest request (its ISR bit set, or cleared again with
 * auto-EOI); with no request left, IRQ 7's vector (IRQ 15's if the slave lost its request), as
 * the chip does, counted in `spurious`.
 */
uint8_t vpic_intack(struct vpic *p);

/* Snapshots (vmm/snapshot.h): both chips' registers and modes; load checks them against what
 * a guest could have made and applies in the apply pass. */
struct snap_buf;
struct snap_rd;
void vpic_save(const struct vpic *p, struct snap_buf *b);
int vpic_load(struct vpic *p, struct snap_rd *r);

#endif
