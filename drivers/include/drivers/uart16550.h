/* Keel's own serial console: a 16550 UART driven by polling (no interrupts). */
#ifndef DRIVERS_UART16550_H
#define DRIVERS_UART16550_H

#include <stdint.h>

#define COM1_PORT 0x3f8

/* 115200 baud, 8N1, FIFOs on, interrupts off. */
void uart16550_init(uint16_t base);
void uart16550_putc(uint16_t base, char c);
/* Log sink writing to COM1 ('\n' becomes "\r\n"). */
void uart16550_com1_write(const char *s, unsigned long len);

#endif
