/*
 * Keel's PL011 console driver: polled, no interrupts. The firmware already programmed the
 * baud rate and line settings; Keel only writes DR when the transmit FIFO has room (FR.TXFF
 * clear) and reads DR when the receive FIFO has data (FR.RXFE clear).
 */
#include <drivers/pl011.h>

#define PL011_DR   0x00
#define PL011_FR   0x18
#define FR_RXFE    (1u << 4)
#define FR_TXFF    (1u << 5)
#define SPIN_LIMIT 1000000 /* a UART that never drains must not hang Keel */

static volatile uint32_t *uart;

static inline uint32_t reg_read(unsigned off)
{
        return uart[off / 4];
}

void pl011_drv_init(uint64_t base)
{
        uart = (volatile uint32_t *)(uintptr_t)base;
}

uint64_t pl011_drv_base(void)
{
        return (uint64_t)(uintptr_t)uart;
}

void pl011_drv_putc(char c)
{
        if (!uart)
                return;
        for (unsigned i = 0; i < SPIN_LIMIT && (reg_read(PL011_FR) & FR_TXFF); i++)
                ;
        uart[PL011_DR / 4] = (uint8_t)c;
}

int pl011_drv_getc(void)
{
        if (!uart || (reg_read(PL011_FR) & FR_RXFE))
                return -1;
        return (int)(reg_read(PL011_DR) & 0xff);
}

void pl011_drv_write(const char *s, unsigned long len)
{
        for (unsigned long i = 0; i < len; i++) {
                if (s[i] == '\n')
                        pl011_drv_putc('\r');
                pl011_drv_putc(s[i]);
        }
}
