/*
 * Emulated 16550A UART (vmm/include/vmm/vuart.h, docs/uart.md). Register model, by offset
 * (DLAB = LCR bit 7):
 *   0  DLAB=0: read RBR (pops the receive FIFO; 0 when empty), write THR;  DLAB=1: DLL
 *   1  DLAB=0: IER, low 4 bits;                                            DLAB=1: DLM
 *   2  read IIR: highest-priority pending interrupt, bits 6-7 set when FIFOs are enabled;
 *      write FCR: FIFO enable, receive/transmit FIFO reset, receive trigger level.
 *      Both regardless of DLAB, as on a 16550A (it has no EFR behind LCR = 0xbf).
 *   3  LCR
 *   4  MCR, low 5 bits (DTR, RTS, OUT1, OUT2, LOOP)
 *   5  LSR: DR, OE, THRE | TEMT (the transmitter is always empty); reading clears OE.
 *   6  MSR: lines DCD | DSR | CTS asserted; in loopback DTR->DSR, RTS->CTS, OUT1->RI,
 *      OUT2->DCD. Delta bits record changes of those lines; reading clears them.
 *   7  SCR
 * In loopback (MCR bit 4) THR bytes go to the receive FIFO instead of the console, and the
 * interrupt output is disconnected (the OUT2 pin is forced inactive, which on a PC gates the
 * IRQ off), as on real hardware.
 *
 * Transmitted bytes go to the VM's console front end (vmm/vcons.c), which assembles lines.
 */
#include <string.h>

#include <keel/errno.h>
#include <vmm/vuart.h>
#include <vmm/snapshot.h>

#define UART_IER_RDI  0x01 /* received data available */
#define UART_IER_THRI 0x02 /* THR empty */
#define UART_IER_RLSI 0x04 /* receiver line status */
#define UART_IER_MSI  0x08 /* modem status */

#define UART_IIR_MS      0x00
#define UART_IIR_NONE    0x01
#define UART_IIR_THRE    0x02
#define UART_IIR_RDA     0x04
#define UART_IIR_LS      0x06
#define UART_IIR_TIMEOUT 0x0c
#define UART_IIR_FIFO    0xc0

#define UART_FCR_ENABLE   0x01
#define UART_FCR_CLEAR_RX 0x02
#define UART_FCR_TRIGGER  0xc0

#define UART_LCR_DLAB 0x80

#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10

#define UART_LSR_DR   0x01
#define UART_LSR_OE   0x02
#define UART_LSR_IDLE 0x60 /* THRE | TEMT */

#define UART_MSR_DCTS 0x01
#define UART_MSR_DDSR 0x02
#define UART_MSR_TERI 0x04
#define UART_MSR_DDCD 0x08
#define UART_MSR_CTS  0x10
#define UART_MSR_DSR  0x20
#define UART_MSR_RI   0x40
#define UART_MSR_DCD  0x80
#define UART_MSR_IDLE (UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS)

static const uint8_t rx_trigger_levels[4] = {1, 4, 8, 14};

__attribute__((cold)) void vuart_init(struct vuart *u, struct vcons *out)
{
        memset(u, 0, sizeof(*u));
        u->out = out;
        u->msr_lines = UART_MSR_IDLE;
}

/* --- receive FIFO --- */

static bool fifo_enabled(const struct vuart *u)
{
        return u->fcr & UART_FCR_ENABLE;
}

/* Without FIFOs the 16550 is a 16450: a single receive buffer register. */
static unsigned rx_capacity(const struct vuart *u)
{
        return fifo_enabled(u) ? VUART_FIFO_SIZE : 1;
}

static void rx_clear(struct vuart *u)
{
        u->rx_head = 0;
        u->rx_count = 0;
}

static void rx_push(struct vuart *u, uint8_t c)
{
        u->rx[(u->rx_head + u->rx_count) % VUART_FIFO_SIZE] = c;
        u->rx_count++;
}

static uint8_t rx_pop(struct vuart *u)
{
        uint8_t c = u->rx[u->rx_head];

        u->rx_head = (u->rx_head + 1) % VUART_FIFO_SIZE;
        u->rx_count--;
        return c;
}

/*
 * A byte arriving at the receiver with no room: with FIFOs the FIFO keeps its contents and the
 * new byte (in the shift register) is lost; without, it overwrites the holding register.
 * Either way LSR.OE is set.
 */
static void rx_receive(struct vuart *u, uint8_t c)
{
        if (u->rx_count < rx_capacity(u)) {
                rx_push(u, c);
                return;
        }
        u->lsr_err |= UART_LSR_OE;
        u->rx_overruns++;
        if (!fifo_enabled(u))
                u->rx[u->rx_head] = c;
}

/* --- interrupts --- */

/* The highest-priority pending, enabled cause as an IIR code (bits 0-3). */
static uint8_t vuart_pending(const struct vuart *u)
{
        if ((u->ier & UART_IER_RLSI) && u->lsr_err)
                return UART_IIR_LS;
        if ((u->ier & UART_IER_RDI) && u->rx_count) {
                /* The character timeout is approximated as "data below the trigger level". */
                if (fifo_enabled(u) && u->rx_count < rx_trigger_levels[u->fcr >> 6])
                        return UART_IIR_TIMEOUT;
                return UART_IIR_RDA;
        }
        if ((u->ier & UART_IER_THRI) && u->thre_pending)
                return UART_IIR_THRE;
        if ((u->ier & UART_IER_MSI) && u->msr_delta)
                return UART_IIR_MS;
        return UART_IIR_NONE;
}

static bool vuart_level(const struct vuart *u)
{
        if ((u->mcr & (UART_MCR_OUT2 | UART_MCR_LOOP)) != UART_MCR_OUT2)
                return false;
        return vuart_pending(u) != UART_IIR_NONE;
}

static void vuart_update_irq(struct vuart *u)
{
        bool level = vuart_level(u);

        if (level == u->irq_level)
                return;
        u->irq_level = level;
        irq_set_level(&u->irq, level);
}

__attribute__((cold)) void vuart_set_irq(struct vuart *u, const struct irq_line *line)
{
        if (line)
                u->irq = *line;
        else
                memset(&u->irq, 0, sizeof(u->irq));
        u->irq_level = vuart_level(u);
        irq_set_level(&u->irq, u->irq_level);
}

/* --- modem status --- */

/* MSR bits 4-7: fixed lines normally; in loopback, MCR bits DTR, RTS, OUT1, OUT2. */
static uint8_t msr_lines(const struct vuart *u)
{
        uint8_t m = u->mcr;

        if (!(m & UART_MCR_LOOP))
                return UART_MSR_IDLE;
        return (uint8_t)(((m & 0x01) << 5) | ((m & 0x02) << 3) | ((m & 0x04) << 4) |
                         ((m & 0x08) << 4));
}

static void msr_sample(struct vuart *u)
{
        uint8_t now = msr_lines(u), changed = now ^ u->msr_lines;

        if (changed & UART_MSR_CTS)
                u->msr_delta |= UART_MSR_DCTS;
        if (changed & UART_MSR_DSR)
                u->msr_delta |= UART_MSR_DDSR;
        if ((u->msr_lines & UART_MSR_RI) && !(now & UART_MSR_RI))
                u->msr_delta |= UART_MSR_TERI; /* trailing edge only */
        if (changed & UART_MSR_DCD)
                u->msr_delta |= UART_MSR_DDCD;
        u->msr_lines = now;
}

/* --- registers --- */

static uint8_t read_iir(struct vuart *u)
{
        uint8_t id = vuart_pending(u);

        /* Reading IIR acknowledges THRE when it is the cause reported. */
        if (id == UART_IIR_THRE)
                u->thre_pending = false;
        return (uint8_t)(id | (fifo_enabled(u) ? UART_IIR_FIFO : 0));
}

static uint8_t vuart_read(struct vuart *u, unsigned offset)
{
        bool dlab = u->lcr & UART_LCR_DLAB;
        uint8_t v;

        switch (offset) {
        case 0:
                if (dlab)
                        return u->dll;
                return u->rx_count ? rx_pop(u) : 0;
        case 1:
                return dlab ? u->dlm : u->ier;
        case 2:
                return read_iir(u);
        case 3:
                return u->lcr;
        case 4:
                return u->mcr;
        case 5:
                v = (uint8_t)(UART_LSR_IDLE | u->lsr_err | (u->rx_count ? UART_LSR_DR : 0));
                u->lsr_err = 0;
                return v;
        case 6:
                v = (uint8_t)(u->msr_lines | u->msr_delta);
                u->msr_delta = 0;
                return v;
        case 7:
                return u->scr;
        default:
                return 0xff;
        }
}

/*
 * Where a THR byte goes: the receive FIFO in loopback, else the VM's console. Out of line on
 * purpose, taking `u`: vuart_access then keeps `u` in its argument register, spilled only
 * around this call, so accesses to the other registers cost what they did before the console
 * front end moved out of the UART; here the byte costs a load and a tail call.
 */
static __attribute__((noinline)) void vuart_transmit(struct vuart *u, uint8_t v)
{
        if (u->mcr & UART_MCR_LOOP)
                rx_receive(u, v);
        else
                vcons_putc(u->out, v);
}

static void write_thr(struct vuart *u, uint8_t v)
{
        vuart_transmit(u, v);
        if (!(u->ier & UART_IER_THRI))
                return;
        /*
         * The write acknowledges THRE; the byte leaves at once, so THR is empty again and THRE
         * re-arms. Drive the line through the gap so an edge-triggered input sees a new edge.
         */
        u->thre_pending = false;
        vuart_update_irq(u);
        u->thre_pending = true;
}

static void write_ier(struct vuart *u, uint8_t v)
{
        uint8_t old = u->ier;

        u->ier = v & 0x0f;
        /* THR is always empty: enabling the interrupt arms it, disabling it disarms it. */
        if ((u->ier ^ old) & UART_IER_THRI)
                u->thre_pending = u->ier & UART_IER_THRI;
}

static void write_fcr(struct vuart *u, uint8_t v)
{
        if (!(v & UART_FCR_ENABLE)) {
                /* Leaving FIFO mode resets the FIFOs; the other bits are not programmed. */
                if (fifo_enabled(u))
                        rx_clear(u);
                u->fcr = 0;
                return;
        }
        if (!fifo_enabled(u) || (v & UART_FCR_CLEAR_RX))
                rx_clear(u);
        u->fcr = v & (UART_FCR_ENABLE | UART_FCR_TRIGGER);
}

static void vuart_write(struct vuart *u, unsigned offset, uint8_t v)
{
        bool dlab = u->lcr & UART_LCR_DLAB;

        switch (offset) {
        case 0:
                if (dlab)
                        u->dll = v;
                else
                        write_thr(u, v);
                break;
        case 1:
                if (dlab)
                        u->dlm = v;
                else
                        write_ier(u, v);
                break;
        case 2:
                write_fcr(u, v);
                break;
        case 3:
                u->lcr = v;
                break;
        case 4:
                u->mcr = v & 0x1f;
                msr_sample(u);
                break;
        case 7:
                u->scr = v;
                break;
        default: /* LSR, MSR writes and unknown offsets have no effect */
                break;
        }
}

void vuart_access(struct vuart *u, unsigned offset, bool write, uint32_t *val)
{
        if (write)
                vuart_write(u, offset, (uint8_t)*val);
        else
                *val = vuart_read(u, offset);
        vuart_update_irq(u);
}

/* --- host side --- */

size_t vuart_rx_room(const struct vuart *u)
{
        if (u->mcr & UART_MCR_LOOP)
                return 0;
        return rx_capacity(u) - u->rx_count;
}

size_t vuart_input(struct vuart *u, const uint8_t *bytes, size_t n)
{
        size_t room = vuart_rx_room(u), i;

        if (n > room)
                n = room;
        for (i = 0; i < n; i++)
                rx_push(u, bytes[i]);
        u->rx_bytes += n;
        vuart_update_irq(u);
        return n;
}

/* --- snapshots (vmm/snapshot.h) --- */

struct vuart_snap {
        uint8_t ier, lcr, mcr, scr, dll, dlm, fcr, lsr_err, msr_lines, msr_delta, thre_pending;
        uint8_t rx_head, rx_count;
        uint8_t rx[VUART_FIFO_SIZE];
};

__attribute__((cold)) void vuart_save(const struct vuart *u, struct snap_buf *b)
{
        struct vuart_snap s = {u->ier,
                               u->lcr,
                               u->mcr,
                               u->scr,
                               u->dll,
                               u->dlm,
                               u->fcr,
                               u->lsr_err,
                               u->msr_lines,
                               u->msr_delta,
                               u->thre_pending,
                               (uint8_t)u->rx_head,
                               (uint8_t)u->rx_count,
                               {0}};

        memcpy(s.rx, u->rx, sizeof(s.rx));
        snap_put(b, &s, sizeof(s));
}

__attribute__((cold)) int vuart_load(struct vuart *u, struct snap_rd *r)
{
        struct vuart_snap s;

        if (!snap_get(r, &s, sizeof(s)))
                return -KEEL_EINVAL;
        if ((s.ier & ~0x0f) || (s.mcr & ~0x1f) || (s.fcr & ~0xc1) || (s.lsr_err & ~UART_LSR_OE) ||
            (s.msr_lines & 0x0f) || (s.msr_delta & ~0x0f) || s.thre_pending > 1 ||
            s.rx_head >= VUART_FIFO_SIZE ||
            s.rx_count > ((s.fcr & UART_FCR_ENABLE) ? VUART_FIFO_SIZE : 1))
                return snap_fail(r, "16550 UART: a register or the receive FIFO holds a value "
                                    "the UART cannot have");
        if (!r->apply)
                return 0;
        u->ier = s.ier, u->lcr = s.lcr, u->mcr = s.mcr, u->scr = s.scr, u->dll = s.dll;
        u->dlm = s.dlm, u->fcr = s.fcr, u->lsr_err = s.lsr_err, u->msr_lines = s.msr_lines;
        u->msr_delta = s.msr_delta, u->thre_pending = s.thre_pending;
        u->rx_head = s.rx_head, u->rx_count = s.rx_count;
        memcpy(u->rx, s.rx, sizeof(u->rx));
        vuart_update_irq(u);
        return 0;
}
