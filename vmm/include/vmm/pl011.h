/*
 * Emulated ARM PrimeCell UART (PL011, r1p5 register map), the serial device of arm64 VMs.
 * A generic MMIO device model: the arch puts it on the VM's MMIO bus (4 KiB, pl011_ops with
 * dev = struct pl011 *) and wires its one combined interrupt output with pl011_set_irq.
 * Transmitted bytes go to the VM's console front end (struct vcons, vmm/vcons.h); received
 * bytes come from the host side through pl011_input() into a 32-byte receive FIFO (a 1-byte
 * holding register while LCR_H.FEN is clear). It identifies itself as a PL011 through the
 * PrimeCell ID registers, which is what Linux's AMBA bus matches its driver on.
 * docs/uart.md describes the model.
 */
#ifndef VMM_PL011_H
#define VMM_PL011_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vmm/irq.h>
#include <vmm/mmio.h>
#include <vmm/vcons.h>

#define PL011_MMIO_SIZE  0x1000
#define PL011_FIFO_SIZE  32
#define PL011_CR_RESET   0x0300 /* TXE | RXE */
#define PL011_IFLS_RESET 0x12   /* both trigger levels at 1/2 */

struct pl011 {
        struct vcons *out; /* where DR writes go (the VM's console), owned by the VM */
        uint16_t cr;       /* UARTCR */
        uint16_t ibrd;     /* UARTIBRD (16 bits) */
        uint8_t fbrd;      /* UARTFBRD (6 bits) */
        uint8_t lcr_h;     /* UARTLCR_H */
        uint8_t ifls;      /* UARTIFLS (6 bits) */
        uint8_t ilpr;      /* UARTILPR */
        uint8_t dmacr;     /* UARTDMACR (3 bits; no DMA is done) */
        uint16_t ris;      /* raw interrupt status (UARTRIS bits 0-10) */
        uint16_t imsc;     /* interrupt mask set/clear (bits 0-10) */
        bool irq_level;    /* level last driven on `irq` */
        uint8_t rx[PL011_FIFO_SIZE];
        unsigned rx_head, rx_count;
        struct irq_line irq;   /* set_level NULL: not wired */
        uint64_t rx_bytes;     /* bytes accepted by pl011_input */
        uint64_t bad_accesses; /* accesses to no register, or of a size other than 1, 2, 4 */
};

/* The register window, for mmio_bus_add (dev = struct pl011 *). */
extern const struct mmio_ops pl011_ops;

/*
 * Reset state (CR = 0x300: TXE and RXE set, UARTEN clear; IFLS = 0x12; FIFOs disabled; no
 * interrupt line, see pl011_set_irq). Transmitted bytes go to `out` (not NULL; it must outlive
 * the UART), counted in out->tx_bytes.
 */
void pl011_init(struct pl011 *p, struct vcons *out);
/*
 * Wire the interrupt output to `line` (copied; NULL disconnects) and drive the current level
 * on it once, so the controller starts in sync. Afterwards the level ((RIS & IMSC) != 0) is
 * driven on changes only.
 */
void pl011_set_irq(struct pl011 *p, const struct irq_line *line);
/*
 * Host side: bytes received on the VM's serial line. Takes as many as the receiver has room
 * for (32 minus the level with FIFOs enabled, 1 minus the level without, 0 unless CR.UARTEN
 * and CR.RXE are set) and returns how many it took; the caller keeps or drops the rest.
 * Never sets overrun.
 */
size_t pl011_input(struct pl011 *p, const uint8_t *bytes, size_t n);
/* How many bytes pl011_input would take now. */
size_t pl011_rx_room(const struct pl011 *p);

/* Snapshots (vmm/snapshot.h): as vuart_save / vuart_load. */
struct snap_buf;
struct snap_rd;
void pl011_save(const struct pl011 *p, struct snap_buf *b);
int pl011_load(struct pl011 *p, struct snap_rd *r);

#endif
