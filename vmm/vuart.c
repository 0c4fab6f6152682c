/*
 * Emulated 16550 UART, transmit side only (vmm/include/vmm/vuart.h). Register model, by
 * offset (DLAB = LCR bit 7):
 *   0  DLAB=0: read RBR = 0 (no input), write THR = transmit;  DLAB=1: DLL, read/write
 *   1  DLAB=0: IER, low 4 bits read back;                       DLAB=1: DLM, read/write
 *   2  read IIR = 0x01 (no interrupt pending, FIFOs not reported); write FCR ignored
 *   3  LCR, read/write
 *   4  MCR, low 5 bits read back
 *   5  LSR = 0x60: transmitter empty (THRE|TEMT), no data ready, no errors; writes ignored
 *   6  MSR: normally 0xB0 (DCD|DSR|CTS asserted, no deltas). In loopback (MCR bit 4) the
 *      modem outputs are wired back as on real hardware: DTR->DSR, RTS->CTS, OUT1->RI,
 *      OUT2->DCD, which is what drivers probe. Writes ignored.
 *   7  SCR, read/write
 * Bytes written to THR in loopback mode are not transmitted (there is no receive path yet).
 * Offsets beyond 7 read 0xFF and ignore writes.
 *
 * Transmitted bytes are collected into a line; '\n' emits it as "[<prefix>] <line>", '\r'
 * is dropped, other control and non-ASCII bytes (except tab) become '.', so a guest cannot
 * send escape sequences to Keel's console. A full line buffer is emitted as is.
 */
#include <string.h>

#include <keel/log.h>
#include <vmm/vuart.h>

#define UART_LCR_DLAB    0x80
#define UART_MCR_LOOP    0x10
#define UART_LSR_IDLE    0x60 /* THRE | TEMT */
#define UART_IIR_NONE    0x01
#define UART_MSR_IDLE    0xB0 /* DCD | DSR | CTS */
#define VUART_PREFIX_MAX 64

void vuart_init(struct vuart *u, const char *prefix)
{
        memset(u, 0, sizeof(*u));
        u->prefix = prefix;
}

static void vuart_emit(struct vuart *u)
{
        char out[VUART_PREFIX_MAX + VUART_LINE_MAX + 4];
        const char *p = u->prefix ? u->prefix : "";
        size_t plen = strnlen(p, VUART_PREFIX_MAX);
        size_t n = 0;

        out[n++] = '[';
        memcpy(out + n, p, plen);
        n += plen;
        out[n++] = ']';
        out[n++] = ' ';
        memcpy(out + n, u->line, u->len);
        n += u->len;
        out[n++] = '\n';
        log_write(out, n);
        u->len = 0;
}

void vuart_putc(struct vuart *u, uint8_t c)
{
        u->tx_bytes++;
        if (c == '\n') {
                vuart_emit(u);
                return;
        }
        if (c == '\r')
                return;
        if ((c < 0x20 && c != '\t') || c >= 0x7f)
                c = '.';
        if (u->len == VUART_LINE_MAX)
                vuart_emit(u);
        u->line[u->len++] = (char)c;
}

/* MSR in loopback: MCR bits DTR, RTS, OUT1, OUT2 appear as DSR, CTS, RI, DCD. */
static uint8_t vuart_msr(const struct vuart *u)
{
        uint8_t m = u->mcr;

        if (!(m & UART_MCR_LOOP))
                return UART_MSR_IDLE;
        return (uint8_t)(((m & 0x01) << 5) | ((m & 0x02) << 3) | ((m & 0x04) << 4) |
                         ((m & 0x08) << 4));
}

static uint8_t vuart_read(const struct vuart *u, unsigned offset)
{
        bool dlab = u->lcr & UART_LCR_DLAB;

        switch (offset) {
        case 0:
                return dlab ? u->dll : 0;
        case 1:
                return dlab ? u->dlm : u->ier;
        case 2:
                return UART_IIR_NONE;
        case 3:
                return u->lcr;
        case 4:
                return u->mcr;
        case 5:
                return UART_LSR_IDLE;
        case 6:
                return vuart_msr(u);
        case 7:
                return u->scr;
        default:
                return 0xff;
        }
}

static void vuart_write(struct vuart *u, unsigned offset, uint8_t v)
{
        bool dlab = u->lcr & UART_LCR_DLAB;

        switch (offset) {
        case 0:
                if (dlab)
                        u->dll = v;
                else if (!(u->mcr & UART_MCR_LOOP))
                        vuart_putc(u, v);
                break;
        case 1:
                if (dlab)
                        u->dlm = v;
                else
                        u->ier = v & 0x0f;
                break;
        case 3:
                u->lcr = v;
                break;
        case 4:
                u->mcr = v & 0x1f;
                break;
        case 7:
                u->scr = v;
                break;
        default: /* FCR, LSR, MSR writes and unknown offsets have no effect */
                break;
        }
}

void vuart_access(struct vuart *u, unsigned offset, bool write, uint32_t *val)
{
        if (write)
                vuart_write(u, offset, (uint8_t)*val);
        else
                *val = vuart_read(u, offset);
}

void vuart_flush(struct vuart *u)
{
        if (u->len)
                vuart_emit(u);
}
