/*
 * Emulated 16550A UART (one per x86 VM, at I/O ports 0x3f8-0x3ff; the register model is
 * arch-neutral). Transmitted bytes go to the VM's console front end (struct vcons,
 * vmm/vcons.h), which prints them as lines "[<vm name>] <line>". Received bytes come from the
 * host side through vuart_input() into a 16-byte receive FIFO. The interrupt output drives a
 * struct irq_line (vmm/irq.h) at the level a PC's COM port would: an enabled cause is pending
 * and MCR.OUT2 is set. docs/uart.md describes the model.
 */
#ifndef VMM_VUART_H
#define VMM_VUART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vmm/irq.h>
#include <vmm/vcons.h>

#define VUART_FIFO_SIZE 16

struct vuart {
        struct vcons *out; /* where THR bytes go (the VM's console), owned by the VM */
        uint8_t ier, lcr, mcr, scr, dll, dlm;
        uint8_t fcr;       /* FIFO enable (bit 0) and RX trigger (bits 6-7) in effect */
        uint8_t lsr_err;   /* sticky LSR error bits (overrun), cleared by reading LSR */
        uint8_t msr_lines; /* MSR bits 4-7 as last seen, for the delta bits */
        uint8_t msr_delta; /* MSR bits 0-3, cleared by reading MSR */
        bool thre_pending; /* THR-empty interrupt armed (not yet acknowledged) */
        bool irq_level;    /* level last driven on `irq` */
        uint8_t rx[VUART_FIFO_SIZE];
        unsigned rx_head, rx_count;
        struct irq_line irq;  /* set_level NULL: not wired */
        uint64_t rx_bytes;    /* bytes accepted by vuart_input */
        uint64_t rx_overruns; /* bytes lost to a full receiver (loopback only) */
};

/*
 * Reset state, no interrupt line (see vuart_set_irq). Transmitted bytes go to `out` (not
 * NULL; it must outlive the UART), counted in out->tx_bytes.
 */
void vuart_init(struct vuart *u, struct vcons *out);
/*
 * Wire the interrupt output to `line` (copied; NULL disconnects) and drive the current level
 * on it once, so the controller starts in sync. Afterwards the level is driven on changes only.
 */
void vuart_set_irq(struct vuart *u, const struct irq_line *line);
/*
 * Register access at `offset` (0..7) of the UART. Only the low byte of *val is used on writes
 * (wider accesses touch the first register only). Reads return the register value in *val.
 * Offsets beyond 7 read 0xff and ignore writes.
 */
void vuart_access(struct vuart *u, unsigned offset, bool write, uint32_t *val);
/*
 * Host side: bytes received on the VM's serial line. Takes as many as the receiver has room
 * for (16 with FIFOs enabled, 1 without, 0 in loopback, where the line input is disconnected)
 * and returns how many it took; the caller keeps or drops the rest. Never sets overrun.
 */
size_t vuart_input(struct vuart *u, const uint8_t *bytes, size_t n);
/* How many bytes vuart_input would take now. */
size_t vuart_rx_room(const struct vuart *u);

/* Snapshots (vmm/snapshot.h): the registers and receive FIFO; load checks every field and
 * changes the UART only in the snapshot's apply pass (then drives its line as the state says). */
struct snap_buf;
struct snap_rd;
void vuart_save(const struct vuart *u, struct snap_buf *b);
int vuart_load(struct vuart *u, struct snap_rd *r);

#endif
