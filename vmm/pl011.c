/*
 * Emulated PL011 UART (vmm/include/vmm/pl011.h, docs/uart.md), after the register map of the
 * ARM PrimeCell UART (PL011) r1p5 TRM:
 *   0x000 DR      read: pops the receive FIFO (error bits 8-11 always 0; 0 when empty);
 *                 write: transmits the low byte to the VM's console at once
 *   0x004 RSR/ECR receive errors: always 0 (no framing, parity, break or overrun happens);
 *                 writes (ECR, clear) have nothing to clear
 *   0x018 FR      TXFE set, TXFF and BUSY never, RXFE/RXFF from the receive FIFO; CTS, DSR,
 *                 DCD asserted, RI not (a terminal that is always there)
 *   0x020 ILPR, 0x024 IBRD, 0x028 FBRD: stored, pace nothing
 *   0x02c LCR_H   stored; FEN (bit 4) selects the 32-byte receive FIFO or a 1-byte holding
 *                 register; changing FEN empties the receive FIFO
 *   0x030 CR      stored (reset 0x300); UARTEN and RXE gate host input, transmit is not gated
 *   0x034 IFLS    receive trigger level (bits 3-5); the transmit level does not matter, as the
 *                 transmit FIFO is always empty
 *   0x038 IMSC, 0x03c RIS, 0x040 MIS (RIS & IMSC), 0x044 ICR (write 1 to clear RIS bits)
 *   0x048 DMACR   stored, no DMA
 *   0xfe0-0xffc   PeriphID0-3, PCellID0-3
 * Any other offset, an offset that is not a multiple of 4, or a size other than 1, 2 or 4
 * reads as zero and ignores writes. Sub-word writes zero-extend the value.
 *
 * Interrupts (RIS bits; the output is one level, (RIS & IMSC) != 0):
 *   RX  set when received bytes bring the FIFO from below the trigger level to or above it
 *       (FEN clear: when the holding register fills); cleared by reading DR below the
 *       trigger level, or by ICR.
 *   RT  receive timeout, approximated without timing: set whenever the FIFO is left non-empty
 *       and below the trigger level (after bytes arrive, after a DR read); cleared when the
 *       FIFO empties, or by ICR until the next arrival or read.
 *   TX  the transmitter empties the moment a byte is written, so every DR write raises it
 *       (after clearing it: an edge per write). As on the PL011, it is not raised by reset or by
 *       enabling the UART with nothing written; Linux's driver writes first, then waits for
 *       it. Cleared by ICR (or, momentarily, by the next DR write).
 * Modem, error and overrun interrupts never occur.
 */
#include <string.h>

#include <keel/errno.h>
#include <vmm/pl011.h>
#include <vmm/snapshot.h>

#define PL011_DR      0x000
#define PL011_RSR_ECR 0x004
#define PL011_FR      0x018
#define PL011_ILPR    0x020
#define PL011_IBRD    0x024
#define PL011_FBRD    0x028
#define PL011_LCR_H   0x02c
#define PL011_CR      0x030
#define PL011_IFLS    0x034
#define PL011_IMSC    0x038
#define PL011_RIS     0x03c
#define PL011_MIS     0x040
#define PL011_ICR     0x044
#define PL011_DMACR   0x048
#define PL011_ID_BASE 0xfe0

#define PL011_FR_CTS  0x001
#define PL011_FR_DSR  0x002
#define PL011_FR_DCD  0x004
#define PL011_FR_RXFE 0x010
#define PL011_FR_RXFF 0x040
#define PL011_FR_TXFE 0x080

#define PL011_LCR_H_FEN 0x10

#define PL011_CR_UARTEN 0x0001
#define PL011_CR_RXE    0x0200
#define PL011_CR_MASK   0xff87 /* bits 3-6 are reserved */

#define PL011_INT_RX  0x010
#define PL011_INT_TX  0x020
#define PL011_INT_RT  0x040
#define PL011_INT_ALL 0x7ff

/* PeriphID0-3 (part 0x011, designer ARM 0x41, revision 1) and PCellID0-3, as QEMU's PL011. */
static const uint8_t pl011_id[8] = {0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1};

/*
 * Receive trigger levels of IFLS.RXIFLSEL for the 32-byte FIFO: 1/8, 1/4, 1/2, 3/4, 7/8 full;
 * the reserved values 5-7 act as 7/8.
 */
static const uint8_t rx_trigger_levels[8] = {4, 8, 16, 24, 28, 28, 28, 28};

void pl011_init(struct pl011 *p, struct vcons *out)
{
        memset(p, 0, sizeof(*p));
        p->out = out;
        p->cr = PL011_CR_RESET;
        p->ifls = PL011_IFLS_RESET;
}

/* --- receive FIFO --- */

static bool fifo_enabled(const struct pl011 *p)
{
        return p->lcr_h & PL011_LCR_H_FEN;
}

/* With FEN clear the FIFO is a one-byte holding register. */
static unsigned rx_capacity(const struct pl011 *p)
{
        return fifo_enabled(p) ? PL011_FIFO_SIZE : 1;
}

static unsigned rx_trigger(const struct pl011 *p)
{
        return fifo_enabled(p) ? rx_trigger_levels[(p->ifls >> 3) & 7] : 1;
}

static void rx_push(struct pl011 *p, uint8_t c)
{
        p->rx[(p->rx_head + p->rx_count) % PL011_FIFO_SIZE] = c;
        p->rx_count++;
}

static uint8_t rx_pop(struct pl011 *p)
{
        uint8_t c = p->rx[p->rx_head];

        p->rx_head = (p->rx_head + 1) % PL011_FIFO_SIZE;
        p->rx_count--;
        return c;
}

static void rx_clear(struct pl011 *p)
{
        p->rx_head = 0;
        p->rx_count = 0;
        p->ris &= (uint16_t) ~(PL011_INT_RX | PL011_INT_RT);
}

/* --- interrupts --- */

static bool pl011_level(const struct pl011 *p)
{
        return (p->ris & p->imsc) != 0;
}

static void pl011_update_irq(struct pl011 *p)
{
        bool level = pl011_level(p);

        if (level == p->irq_level)
                return;
        p->irq_level = level;
        irq_set_level(&p->irq, level);
}

void pl011_set_irq(struct pl011 *p, const struct irq_line *line)
{
        if (line)
                p->irq = *line;
        else
                memset(&p->irq, 0, sizeof(p->irq));
        p->irq_level = pl011_level(p);
        irq_set_level(&p->irq, p->irq_level);
}

/* --- registers --- */

static uint32_t read_dr(struct pl011 *p)
{
        unsigned trigger = rx_trigger(p);
        uint8_t c;

        if (!p->rx_count)
                return 0;
        c = rx_pop(p);
        if (p->rx_count < trigger)
                p->ris &= (uint16_t)~PL011_INT_RX;
        if (!p->rx_count)
                p->ris &= (uint16_t)~PL011_INT_RT;
        else if (p->rx_count < trigger)
                p->ris |= PL011_INT_RT; /* what is left times out at once */
        return c;
}

static uint32_t read_fr(const struct pl011 *p)
{
        uint32_t fr = PL011_FR_TXFE | PL011_FR_CTS | PL011_FR_DSR | PL011_FR_DCD;

        if (!p->rx_count)
                fr |= PL011_FR_RXFE;
        if (p->rx_count == rx_capacity(p))
                fr |= PL011_FR_RXFF;
        return fr;
}

/* The register at `offset` (a multiple of 4 below PL011_MMIO_SIZE); false if there is none. */
static bool pl011_read(struct pl011 *p, unsigned offset, uint32_t *val)
{
        switch (offset) {
        case PL011_DR:
                *val = read_dr(p);
                return true;
        case PL011_RSR_ECR:
                *val = 0;
                return true;
        case PL011_FR:
                *val = read_fr(p);
                return true;
        case PL011_ILPR:
                *val = p->ilpr;
                return true;
        case PL011_IBRD:
                *val = p->ibrd;
                return true;
        case PL011_FBRD:
                *val = p->fbrd;
                return true;
        case PL011_LCR_H:
                *val = p->lcr_h;
                return true;
        case PL011_CR:
                *val = p->cr;
                return true;
        case PL011_IFLS:
                *val = p->ifls;
                return true;
        case PL011_IMSC:
                *val = p->imsc;
                return true;
        case PL011_RIS:
                *val = p->ris;
                return true;
        case PL011_MIS:
                *val = p->ris & p->imsc;
                return true;
        case PL011_ICR: /* write-only */
                *val = 0;
                return true;
        case PL011_DMACR:
                *val = p->dmacr;
                return true;
        default:
                if (offset >= PL011_ID_BASE && offset < PL011_MMIO_SIZE) {
                        *val = pl011_id[(offset - PL011_ID_BASE) / 4];
                        return true;
                }
                *val = 0;
                return false;
        }
}

static void write_dr(struct pl011 *p, uint8_t c)
{
        /*
         * Writing DR clears the transmit interrupt; the byte leaves at once and the empty FIFO
         * raises it again. Drive the line through the gap so an edge-triggered input sees a new
         * edge for each write.
         */
        if (p->ris & PL011_INT_TX) {
                p->ris &= (uint16_t)~PL011_INT_TX;
                pl011_update_irq(p);
        }
        vcons_putc(p->out, c);
        p->ris |= PL011_INT_TX;
}

static void write_lcr_h(struct pl011 *p, uint32_t v)
{
        /* Switching between FIFO and character mode empties the receiver. */
        if ((v ^ p->lcr_h) & PL011_LCR_H_FEN)
                rx_clear(p);
        p->lcr_h = (uint8_t)v;
}

static bool pl011_write(struct pl011 *p, unsigned offset, uint32_t v)
{
        switch (offset) {
        case PL011_DR:
                write_dr(p, (uint8_t)v);
                return true;
        case PL011_RSR_ECR: /* clears the receive errors, of which there are none */
                return true;
        case PL011_ILPR:
                p->ilpr = (uint8_t)v;
                return true;
        case PL011_IBRD:
                p->ibrd = (uint16_t)v;
                return true;
        case PL011_FBRD:
                p->fbrd = v & 0x3f;
                return true;
        case PL011_LCR_H:
                write_lcr_h(p, v & 0xff);
                return true;
        case PL011_CR:
                p->cr = v & PL011_CR_MASK;
                return true;
        case PL011_IFLS:
                p->ifls = v & 0x3f;
                return true;
        case PL011_IMSC:
                p->imsc = v & PL011_INT_ALL;
                return true;
        case PL011_ICR:
                p->ris &= (uint16_t) ~(v & PL011_INT_ALL);
                return true;
        case PL011_DMACR:
                p->dmacr = v & 0x7;
                return true;
        case PL011_FR:
        case PL011_RIS:
        case PL011_MIS: /* read-only */
                return true;
        default:
                return offset >= PL011_ID_BASE && offset < PL011_MMIO_SIZE; /* read-only */
        }
}

/* Registers are 32-bit words; 1-, 2- and 4-byte accesses at a word's offset reach them. */
static bool access_ok(uint64_t offset, unsigned size)
{
        return (size == 1 || size == 2 || size == 4) && offset < PL011_MMIO_SIZE &&
               (offset & 3) == 0;
}

static uint32_t size_mask(unsigned size)
{
        return size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
}

static void pl011_mmio_read(void *dev, uint64_t offset, unsigned size, uint64_t *val)
{
        struct pl011 *p = dev;
        uint32_t v = 0;

        *val = 0;
        if (!access_ok(offset, size) || !pl011_read(p, (unsigned)offset, &v)) {
                p->bad_accesses++;
                return;
        }
        *val = v & size_mask(size);
        pl011_update_irq(p);
}

static void pl011_mmio_write(void *dev, uint64_t offset, unsigned size, uint64_t val)
{
        struct pl011 *p = dev;

        if (!access_ok(offset, size) ||
            !pl011_write(p, (unsigned)offset, (uint32_t)val & size_mask(size))) {
                p->bad_accesses++;
                return;
        }
        pl011_update_irq(p);
}

const struct mmio_ops pl011_ops = {
    .read = pl011_mmio_read,
    .write = pl011_mmio_write,
};

/* --- host side --- */

size_t pl011_rx_room(const struct pl011 *p)
{
        if ((p->cr & (PL011_CR_UARTEN | PL011_CR_RXE)) != (PL011_CR_UARTEN | PL011_CR_RXE))
                return 0;
        return rx_capacity(p) - p->rx_count;
}

size_t pl011_input(struct pl011 *p, const uint8_t *bytes, size_t n)
{
        size_t room = pl011_rx_room(p), i;
        unsigned before = p->rx_count, trigger = rx_trigger(p);

        if (n > room)
                n = room;
        if (!n)
                return 0;
        for (i = 0; i < n; i++)
                rx_push(p, bytes[i]);
        p->rx_bytes += n;
        if (before < trigger && p->rx_count >= trigger)
                p->ris |= PL011_INT_RX;
        if (p->rx_count < trigger)
                p->ris |= PL011_INT_RT;
        pl011_update_irq(p);
        return n;
}

/* --- snapshots (vmm/snapshot.h) --- */

struct pl011_snap {
        uint16_t cr, ibrd, ris, imsc;
        uint8_t fbrd, lcr_h, ifls, ilpr, dmacr, rx_head, rx_count, pad;
        uint8_t rx[PL011_FIFO_SIZE];
};

__attribute__((cold)) void pl011_save(const struct pl011 *p, struct snap_buf *b)
{
        struct pl011_snap s = {p->cr,
                               p->ibrd,
                               p->ris,
                               p->imsc,
                               p->fbrd,
                               p->lcr_h,
                               p->ifls,
                               p->ilpr,
                               p->dmacr,
                               (uint8_t)p->rx_head,
                               (uint8_t)p->rx_count,
                               0,
                               {0}};

        memcpy(s.rx, p->rx, sizeof(s.rx));
        snap_put(b, &s, sizeof(s));
}

__attribute__((cold)) int pl011_load(struct pl011 *p, struct snap_rd *r)
{
        struct pl011_snap s;

        if (!snap_get(r, &s, sizeof(s)))
                return -KEEL_EINVAL;
        if ((s.ris & ~PL011_INT_ALL) || (s.imsc & ~PL011_INT_ALL) || (s.fbrd & ~0x3f) ||
            (s.ifls & ~0x3f) || (s.dmacr & ~7) || s.pad || s.rx_head >= PL011_FIFO_SIZE ||
            s.rx_count > ((s.lcr_h & PL011_LCR_H_FEN) ? PL011_FIFO_SIZE : 1))
                return snap_fail(r, "PL011 UART: a register or the receive FIFO holds a value "
                                    "the UART cannot have");
        if (!r->apply)
                return 0;
        p->cr = s.cr, p->ibrd = s.ibrd, p->ris = s.ris, p->imsc = s.imsc, p->fbrd = s.fbrd;
        p->lcr_h = s.lcr_h, p->ifls = s.ifls, p->ilpr = s.ilpr, p->dmacr = s.dmacr;
        p->rx_head = s.rx_head, p->rx_count = s.rx_count;
        memcpy(p->rx, s.rx, sizeof(p->rx));
        pl011_update_irq(p);
        return 0;
}
