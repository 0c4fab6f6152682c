/* Polled 16550 UART: Keel's serial console (output, and input for the VM with focus). */
#include <drivers/uart16550.h>
#include <stdbool.h>

#include <arch/io.h>
#include <keel/time.h>

enum {
        UART_THR = 0,
        UART_RBR = 0,
        UART_DLL = 0,
        UART_IER = 1,
        UART_DLM = 1,
        UART_FCR = 2,
        UART_LCR = 3,
        UART_MCR = 4,
        UART_LSR = 5,
};

#define LSR_DR   0x01
#define LSR_THRE 0x20
/*
 * A UART whose transmitter stays busy (a stuck device, or under emulation a console socket
 * nobody reads) must not hang Keel: a character waits for THRE at most UART_WAIT_MS (by the
 * counter; UART_SPIN_LIMIT reads before it is calibrated), then is sent anyway and the port
 * counts as stuck: later characters do not wait while THRE stays clear, and the port is back
 * to waiting as soon as one of them finds THRE set. A time bound, not a count: under a loaded
 * emulator 100,000 reads passed faster than the host drained the line. (Until 2026-12-07 a
 * port once stuck stayed stuck for good: after one stall of the host's reader every later
 * character was written without a look at THRE, and the 16550's FIFO dropped the ones that
 * came while it was full, whole parts of monitor lines: integration.hostile_lapic's `list`.)
 */
#define UART_WAIT_MS    1000
#define UART_SPIN_LIMIT 100000
static uint16_t stuck_base;

void uart16550_init(uint16_t base)
{
        io_write8(base + UART_IER, 0x00);
        io_write8(base + UART_LCR, 0x80); /* DLAB */
        io_write8(base + UART_DLL, 1);    /* 115200 = 1.8432 MHz / 16 / 1 */
        io_write8(base + UART_DLM, 0);
        io_write8(base + UART_LCR, 0x03); /* 8N1 */
        io_write8(base + UART_FCR, 0x07); /* enable and clear FIFOs */
        io_write8(base + UART_MCR, 0x03); /* DTR, RTS */
}

static bool thr_empty(uint16_t base)
{
        if (!(io_read8(base + UART_LSR) & LSR_THRE))
                return false;
        if (stuck_base == base)
                stuck_base = 0;
        return true;
}

void uart16550_putc(uint16_t base, char c)
{
        uint64_t khz = arch_tsc_khz(), end = arch_tsc() + khz * UART_WAIT_MS;

        /* thr_empty() clears a stuck mark as soon as it sees THRE. */
        for (unsigned i = 0; !thr_empty(base); i++) {
                if (stuck_base == base || (khz ? arch_tsc() >= end : i >= UART_SPIN_LIMIT)) {
                        stuck_base = base;
                        break;
                }
        }
        io_write8(base + UART_THR, (uint8_t)c);
}

int uart16550_getc(uint16_t base)
{
        uint8_t lsr = io_read8(base + UART_LSR);

        /* 0xff: nothing decodes the port (floating bus), not a real status. */
        if (lsr == 0xff || !(lsr & LSR_DR))
                return -1;
        return io_read8(base + UART_RBR);
}

void uart16550_com1_write(const char *s, unsigned long len)
{
        for (unsigned long i = 0; i < len; i++) {
                if (s[i] == '\n')
                        uart16550_putc(COM1_PORT, '\r');
                uart16550_putc(COM1_PORT, s[i]);
        }
}
