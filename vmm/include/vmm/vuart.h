/*
 * Emulated 16550 UART front end (one per VM, at I/O ports 0x3f8-0x3ff on x86; the register
 * model is arch-neutral). Transmitted bytes are collected into lines; each complete line is
 * written to Keel's console as "[<vm name>] <line>". No interrupts or input yet.
 */
#ifndef VMM_VUART_H
#define VMM_VUART_H

#include <stdbool.h>
#include <stdint.h>

#define VUART_LINE_MAX 160

struct vuart {
        const char *prefix; /* VM name, owned by the VM */
        uint8_t ier, lcr, mcr, scr, dll, dlm;
        char line[VUART_LINE_MAX];
        unsigned len;
        uint64_t tx_bytes;
};

void vuart_init(struct vuart *u, const char *prefix);
/*
 * Register access at `offset` (0..7) of the UART, `size` bytes (only 1 is architectural;
 * wider accesses touch the first register only). Reads return the register value in *val.
 */
void vuart_access(struct vuart *u, unsigned offset, bool write, uint32_t *val);
/*
 * Transmit one byte as if written to THR with DLAB and loopback off (the print hypercall
 * uses it, so its output shares the VM's line buffer and prefix).
 */
void vuart_putc(struct vuart *u, uint8_t c);
/* Emit a partial line (at VM stop), so nothing the guest wrote is lost. */
void vuart_flush(struct vuart *u);

#endif
