/*
 * Emulated 16550A UART (one per VM, at I/O ports 0x3f8-0x3ff on x86; the register model is
 * arch-neutral). Transmitted bytes are collected into lines; each complete line is written to
 * Keel's console as "[<vm name>] <line>". Received bytes come from the host side through
 * vuart_input() into a 16-byte receive FIFO. The interrupt output drives a struct irq_line
 * (vmm/irq.h) at the level a PC's COM port would: an enabled cause is pending and MCR.OUT2 is
 * set. docs/uart.md describes the model.
 */
#ifndef VMM_VUART_H
#define VMM_VUART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vmm/irq.h>

#define VUART_LINE_MAX  160
#define VUART_FIFO_SIZE 16

struct vuart {
        const char *prefix; /* VM name, owned by the VM */
        uint8_t ier, lcr, mcr, scr, dll, dlm;
        uint8_t fcr;       /* FIFO enable (bit 0) and RX trigger (bits 6-7) in effect */
        uint8_t lsr_err;   /* sticky LSR error bits (overrun), cleared by reading LSR */
        uint8_t msr_lines; /* MSR bits 4-7 as last seen, for the delta bits */
        uint8_t msr_delta; /* MSR bits 0-3, cleared by reading MSR */
        bool thre_pending; /* THR-empty interrupt armed (not yet acknowledged) */
        bool irq_level;    /* level last driven on `irq` */
        uint8_t rx[VUART_FIFO_SIZE];
        unsigned rx_head, rx_count;
        struct irq_line irq; /* set_level NULL: not wired */
        char line[VUART_LINE_MAX];
        unsigned len;
        bool line_open;       /* part of the current line is on the console already */
        uint64_t tx_bytes;    /* bytes transmitted to Keel's console */
        uint64_t rx_bytes;    /* bytes accepted by vuart_input */
        uint64_t rx_overruns; /* bytes lost to a full receiver (loopback only) */
};

/* Reset state, no interrupt line (see vuart_set_irq). */
void vuart_init(struct vuart *u, const char *prefix);
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
 * Transmit one byte as if written to THR with DLAB and loopback off (the print hypercall
 * uses it, so its output shares the VM's line buffer and prefix). No interrupt effect.
 */
void vuart_putc(struct vuart *u, uint8_t c);
/*
 * Show the bytes of an unfinished line now (a shell prompt, typed characters being echoed),
 * prefixed as usual; the rest of the line follows on the same console line later. Called
 * when the guest goes idle, so an interactive guest's console does not wait for a newline.
 */
void vuart_show_partial(struct vuart *u);
/* Emit a partial line (at VM stop), so nothing the guest wrote is lost. */
void vuart_flush(struct vuart *u);
/*
 * Host side: bytes received on the VM's serial line. Takes as many as the receiver has room
 * for (16 with FIFOs enabled, 1 without, 0 in loopback, where the line input is disconnected)
 * and returns how many it took; the caller keeps or drops the rest. Never sets overrun.
 */
size_t vuart_input(struct vuart *u, const uint8_t *bytes, size_t n);
/* How many bytes vuart_input would take now. */
size_t vuart_rx_room(const struct vuart *u);

#endif
