/* Keel's own serial console: a 16550 UART driven by polling (no interrupts), both ways. */
#ifndef DRIVERS_UART16550_H
#define DRIVERS_UART16550_H

#include <stdint.h>

#define COM1_PORT 0x3f8

/* 115200 baud, 8N1, FIFOs on, interrupts off. */
void uart16550_init(uint16_t base);
void uart16550_putc(uint16_t base, char c);
/*
 * Non-blocking read: the next received byte (0..255), or -1 if none is waiting (LSR.DR
 * clear). An LSR of 0xff (no UART decodes the port) also gives -1, so a missing UART never
 * produces input. Line errors (parity, framing, break, overrun) are not reported.
 */
int uart16550_getc(uint16_t base);
/* Log sink writing to COM1 ('\n' becomes "\r\n"). */
void uart16550_com1_write(const char *s, unsigned long len);

#endif
