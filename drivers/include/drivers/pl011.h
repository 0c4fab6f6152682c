/* Keel's own serial console on arm64: a PL011 UART driven by polling, both ways. */
#ifndef DRIVERS_PL011_H
#define DRIVERS_PL011_H

#include <stdint.h>

/* Use the PL011 at physical `base` (identity-mapped, device memory). 0 = no UART: silent. */
void pl011_drv_init(uint64_t base);
void pl011_drv_putc(char c);
/* Non-blocking read: the next received byte, or -1 if none is waiting (or no UART). */
int pl011_drv_getc(void);
/* Log sink ('\n' becomes "\r\n"). */
void pl011_drv_write(const char *s, unsigned long len);
uint64_t pl011_drv_base(void);

#endif
