/*
 * libFuzzer target for the two emulated UARTs: the PL011 (vmm/pl011.c, through pl011_ops as
 * the arm64 MMIO bus calls it) and the 16550A (vmm/vuart.c, through vuart_access as the x86
 * port-I/O exit calls it), each with its VM console (vmm/vcons.c) and an interrupt line.
 *
 * Input: byte 0: bit 0 selects the model (0 PL011, 1 16550A); then operations:
 *   kind byte 0xff: host input: a length byte, then that many bytes (pl011_input/vuart_input)
 *   otherwise a register access: kind bits 0-1 size (1, 2, 4, 8), bit 2 write; an le16
 *   offset (PL011: & 0xfff; 16550: & 0xf, so offsets 8-15 too); writes: an le32 value.
 * Invariants (abort on violation), checked against a shadow of the receive FIFO:
 *   - input takes exactly min(length, rx_room) bytes, rx_room never exceeds the FIFO;
 *   - received bytes are read back in order, each once; reading an empty receiver returns
 *     0 (PL011 DR) and FR.RXFE / LSR.DR tell empty from not empty; FR.RXFF means full;
 *     the receiver only ever loses bytes all at once (a FIFO reset);
 *   - one transmitted byte per data-register write (16550: unless DLAB or loopback, where it
 *     is received instead), none otherwise;
 *   - the interrupt line is at the level the model defines: PL011 (RIS & IMSC) != 0 and
 *     MIS = RIS & IMSC; 16550 an enabled cause pending and MCR.OUT2 without loopback;
 *   - reads are zero-extended to the access size (16550: one byte), the PL011's ID registers
 *     read the PrimeCell ID, the 16550's scratch register reads what was written;
 *   - the console's line buffer stays within VCONS_LINE_MAX.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <keel/log.h>
#include <vmm/pl011.h>
#include <vmm/vcons.h>
#include <vmm/vuart.h>

#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vcons cons;
static struct pl011 pl;
static struct vuart vu;
static bool line_level;

/* Shadow of the receive FIFO: the bytes the model holds, oldest first. */
static uint8_t shadow[64];
static unsigned shadow_n;

static void set_level(void *ctrl, unsigned pin, bool level)
{
        (void)ctrl;
        (void)pin;
        line_level = level;
}

static void shadow_push(uint8_t c)
{
        if (shadow_n >= sizeof(shadow))
                abort();
        shadow[shadow_n++] = c;
}

static uint8_t shadow_pop(void)
{
        uint8_t c = shadow[0];

        if (!shadow_n)
                abort();
        memmove(shadow, shadow + 1, --shadow_n);
        return c;
}

/* The receiver holds what the shadow says, or lost everything at once. */
static void shadow_sync(unsigned count)
{
        if (count == 0)
                shadow_n = 0;
        if (count != shadow_n)
                abort();
}

static uint32_t pl_rd(unsigned off)
{
        uint64_t v;

        pl011_ops.read(&pl, off, 4, &v);
        return (uint32_t)v;
}

static void pl_access(struct in *in, uint8_t kind)
{
        static const uint8_t id[8] = {0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1};
        unsigned sz = 1u << (kind & 3);
        uint16_t off;
        uint32_t v32 = 0;
        uint64_t val, tx = cons.tx_bytes;
        bool write = kind & 4, empty = pl_rd(0x018) & 0x10;

        if (!take(in, &off, 2) || (write && !take(in, &v32, 4)))
                return;
        off &= 0xfff;
        if (write) {
                pl011_ops.write(&pl, off, sz, v32);
        } else {
                pl011_ops.read(&pl, off, sz, &val);
                if (sz < 8 && val >> (8 * sz))
                        abort();
                if (off == 0 && sz <= 4) {
                        if (empty ? val != 0 : (uint8_t)val != shadow_pop())
                                abort();
                }
                if (off >= 0xfe0 && off % 4 == 0 && sz == 4 && val != id[(off - 0xfe0) / 4])
                        abort();
        }
        if (cons.tx_bytes != tx + (write && off == 0 && sz <= 4))
                abort();
        shadow_sync(pl.rx_count);
}

static void pl_check(void)
{
        uint32_t fr = pl_rd(0x018), ris = pl_rd(0x03c), imsc = pl_rd(0x038);
        unsigned cap = (pl_rd(0x02c) & 0x10) ? PL011_FIFO_SIZE : 1;

        if (!!(fr & 0x10) != (shadow_n == 0) || !!(fr & 0x40) != (shadow_n == cap))
                abort();
        if (pl011_rx_room(&pl) > cap - shadow_n)
                abort();
        if (pl_rd(0x040) != (ris & imsc) || line_level != ((ris & imsc) != 0))
                abort();
}

static void vu_access(struct in *in, uint8_t kind)
{
        uint16_t off;
        uint32_t v32 = 0, val;
        uint64_t tx = cons.tx_bytes;
        bool write = kind & 4, dlab = vu.lcr & 0x80, loop = vu.mcr & 0x10;
        bool fifo = vu.fcr & 1;

        if (!take(in, &off, 2) || (write && !take(in, &v32, 4)))
                return;
        off &= 0xf;
        val = v32;
        if (write && off == 0 && !dlab && loop) {
                /* Loopback: the byte is received; a full receiver overruns. */
                if (vu.rx_count < (fifo ? VUART_FIFO_SIZE : 1u))
                        shadow_push((uint8_t)v32);
                else if (!fifo)
                        shadow[0] = (uint8_t)v32;
        }
        vuart_access(&vu, off, write, &val);
        if (!write) {
                if (val > 0xff || (off >= 8 && val != 0xff))
                        abort();
                if (off == 0 && !dlab) {
                        if (shadow_n ? val != shadow_pop() : val != 0)
                                abort();
                }
        } else if (off == 7) {
                uint32_t s = 0;

                vuart_access(&vu, 7, false, &s);
                if (s != (v32 & 0xff))
                        abort();
        }
        if (cons.tx_bytes != tx + (write && off == 0 && !dlab && !loop))
                abort();
        shadow_sync(vu.rx_count);
}

static void vu_check(void)
{
        uint8_t ier = vu.ier;
        bool pending = ((ier & 4) && vu.lsr_err) || ((ier & 1) && vu.rx_count) ||
                       ((ier & 2) && vu.thre_pending) || ((ier & 8) && vu.msr_delta);
        bool level = (vu.mcr & 0x18) == 0x08 && pending;
        unsigned cap = (vu.fcr & 1) ? VUART_FIFO_SIZE : 1;

        if (line_level != level || vuart_rx_room(&vu) > cap - shadow_n)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct in in = {data, size};
        struct irq_line line = {.set_level = set_level};
        uint8_t sel, kind, len;
        bool is_pl;

        if (!take(&in, &sel, 1))
                return 0;
        is_pl = !(sel & 1);
        log_set_sink(NULL);
        vcons_init(&cons, "fz");
        shadow_n = 0;
        line_level = false;
        if (is_pl) {
                pl011_init(&pl, &cons);
                pl011_set_irq(&pl, &line);
        } else {
                vuart_init(&vu, &cons);
                vuart_set_irq(&vu, &line);
        }
        while (take(&in, &kind, 1)) {
                if (kind == 0xff) {
                        size_t room, took;

                        if (!take(&in, &len, 1))
                                break;
                        if (len > in.n)
                                len = (uint8_t)in.n;
                        room = is_pl ? pl011_rx_room(&pl) : vuart_rx_room(&vu);
                        took = is_pl ? pl011_input(&pl, in.p, len) : vuart_input(&vu, in.p, len);
                        if (took != (len < room ? len : room))
                                abort();
                        for (size_t i = 0; i < took; i++)
                                shadow_push(in.p[i]);
                        in.p += len;
                        in.n -= len;
                        shadow_sync(is_pl ? pl.rx_count : vu.rx_count);
                } else if (is_pl) {
                        pl_access(&in, kind);
                } else {
                        vu_access(&in, kind);
                }
                if (is_pl)
                        pl_check();
                else
                        vu_check();
                if (cons.len > VCONS_LINE_MAX)
                        abort();
        }
        vcons_flush(&cons);
        return 0;
}
