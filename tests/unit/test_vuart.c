/*
 * Tests for vmm/vuart.c: THR bytes reaching the console front end (line assembly, prefix,
 * flush, through vmm/vcons.c), the 16550A register model, the receive FIFO, interrupts (IIR,
 * priorities, OUT2, the irq line level) and Linux's 8250 probe.
 */
#include <keel/log.h>
#include <vmm/vcons.h>
#include <vmm/vuart.h>

#include "log_capture.h"
#include "test.h"

/* The console front end the UART under test transmits to (a VM's vm->console). */
static struct vcons con;

static void uart_init(struct vuart *u, const char *prefix)
{
        vcons_init(&con, prefix);
        vuart_init(u, &con);
}

static void wr(struct vuart *u, unsigned off, uint32_t v)
{
        vuart_access(u, off, true, &v);
}

static uint32_t rd(struct vuart *u, unsigned off)
{
        uint32_t v = 0xdeadbeef;

        vuart_access(u, off, false, &v);
        return v;
}

static void put(struct vuart *u, const char *s)
{
        while (*s)
                wr(u, 0, (uint8_t)*s++);
}

TEST(lines_get_prefix)
{
        struct vuart u;

        uart_init(&u, "vm1");
        capture_start();
        put(&u, "hello\nworld");
        EXPECT_STREQ(logbuf, "[vm1] hello\n");
        put(&u, "!\r\n");
        EXPECT_STREQ(logbuf, "[vm1] hello\n[vm1] world!\n");
        EXPECT_EQ(con.tx_bytes, 14);
        EXPECT_EQ(con.len, 0);
        log_set_sink(NULL);
}

/* An idle guest's prompt is shown at once; the rest of its line continues without a prefix. */
TEST(partial_line_shown_when_idle)
{
        struct vuart u;

        uart_init(&u, "vm1");
        capture_start();
        vcons_show_partial(&con); /* nothing pending: nothing shown */
        EXPECT_STREQ(logbuf, "");
        put(&u, "~ # ");
        vcons_show_partial(&con);
        EXPECT_STREQ(logbuf, "[vm1] ~ # ");
        put(&u, "ls");
        vcons_show_partial(&con);
        vcons_show_partial(&con);
        EXPECT_STREQ(logbuf, "[vm1] ~ # ls");
        put(&u, "\nnext\n");
        EXPECT_STREQ(logbuf, "[vm1] ~ # ls\n[vm1] next\n");
        /* An open line is finished at a stop, even with nothing new. */
        put(&u, "$ ");
        vcons_show_partial(&con);
        vcons_flush(&con);
        EXPECT_STREQ(logbuf, "[vm1] ~ # ls\n[vm1] next\n[vm1] $ \n");
        vcons_flush(&con);
        EXPECT_STREQ(logbuf, "[vm1] ~ # ls\n[vm1] next\n[vm1] $ \n");
        log_set_sink(NULL);
}

TEST(empty_line_and_cr_only)
{
        struct vuart u;

        uart_init(&u, "e");
        capture_start();
        put(&u, "\n\r\r\n");
        EXPECT_STREQ(logbuf, "[e] \n[e] \n");
        log_set_sink(NULL);
}

TEST(non_printable_bytes_shown_as_dots)
{
        struct vuart u;

        uart_init(&u, "np");
        capture_start();
        wr(&u, 0, 0x1b); /* ESC [ 2 J: dropped whole */
        put(&u, "[2J");
        wr(&u, 0, 0x00);
        wr(&u, 0, 0x7f);
        wr(&u, 0, 0xc3);
        put(&u, "a\tb\n");
        EXPECT_STREQ(logbuf, "[np] ...a\tb\n");
        log_set_sink(NULL);
}

TEST(full_buffer_emits_and_continues)
{
        struct vuart u;
        char want[3 * VCONS_LINE_MAX];
        int n;

        uart_init(&u, "f");
        capture_start();
        for (unsigned i = 0; i < VCONS_LINE_MAX; i++)
                wr(&u, 0, 'a' + i % 26);
        /* Exactly full: nothing emitted until the next byte arrives. */
        EXPECT_STREQ(logbuf, "");
        EXPECT_EQ(con.len, VCONS_LINE_MAX);
        put(&u, "XY\n");
        n = snprintf(want, sizeof(want), "[f] ");
        for (unsigned i = 0; i < VCONS_LINE_MAX; i++)
                want[n++] = (char)('a' + i % 26);
        snprintf(want + n, sizeof(want) - n, "\n[f] XY\n");
        EXPECT_STREQ(logbuf, want);
        log_set_sink(NULL);
}

TEST(line_of_exactly_max_is_one_line)
{
        struct vuart u;

        uart_init(&u, "m");
        capture_start();
        for (unsigned i = 0; i < VCONS_LINE_MAX; i++)
                wr(&u, 0, 'z');
        wr(&u, 0, '\n');
        EXPECT_EQ(strlen(logbuf), 4 + VCONS_LINE_MAX + 1);
        EXPECT_EQ(logbuf[strlen(logbuf) - 1], '\n');
        EXPECT_TRUE(strchr(logbuf, '\n') == logbuf + strlen(logbuf) - 1);
        log_set_sink(NULL);
}

TEST(flush_emits_partial_line_once)
{
        struct vuart u;

        uart_init(&u, "fl");
        capture_start();
        vcons_flush(&con);
        EXPECT_STREQ(logbuf, "");
        put(&u, "partial");
        vcons_flush(&con);
        EXPECT_STREQ(logbuf, "[fl] partial\n");
        vcons_flush(&con);
        EXPECT_STREQ(logbuf, "[fl] partial\n");
        put(&u, "next\n");
        EXPECT_STREQ(logbuf, "[fl] partial\n[fl] next\n");
        log_set_sink(NULL);
}

TEST(status_registers)
{
        struct vuart u;

        uart_init(&u, "s");
        EXPECT_EQ(rd(&u, 5), 0x60); /* LSR: THRE | TEMT, no data */
        EXPECT_EQ(rd(&u, 2), 0x01); /* IIR: no interrupt pending, no FIFOs */
        EXPECT_EQ(rd(&u, 0), 0);    /* RBR: nothing received */
        EXPECT_EQ(rd(&u, 6), 0xb0); /* MSR: DCD | DSR | CTS */
        /* Writes to LSR and MSR change nothing readable. */
        wr(&u, 5, 0);
        wr(&u, 6, 0xff);
        EXPECT_EQ(rd(&u, 5), 0x60);
        EXPECT_EQ(rd(&u, 6), 0xb0);
        EXPECT_EQ(rd(&u, 2), 0x01);
        /* FCR enables the FIFOs (IIR bits 6-7); the 16550A reports no 64-byte FIFO (bit 5). */
        wr(&u, 2, 0xe7);
        EXPECT_EQ(rd(&u, 2), 0xc1);
        wr(&u, 2, 0x00);
        EXPECT_EQ(rd(&u, 2), 0x01);
        EXPECT_EQ(rd(&u, 8), 0xff); /* beyond the UART */
        wr(&u, 8, 0x12);
        EXPECT_EQ(con.tx_bytes, 0);
}

TEST(register_readback)
{
        struct vuart u;

        uart_init(&u, "r");
        capture_start();
        wr(&u, 1, 0xff);
        EXPECT_EQ(rd(&u, 1), 0x0f); /* IER: low 4 bits */
        wr(&u, 3, 0x03);
        EXPECT_EQ(rd(&u, 3), 0x03);
        wr(&u, 4, 0xff);
        EXPECT_EQ(rd(&u, 4), 0x1f);
        wr(&u, 4, 0x0b);
        EXPECT_EQ(rd(&u, 4), 0x0b);
        wr(&u, 7, 0x5a);
        EXPECT_EQ(rd(&u, 7), 0x5a);
        /* Only the low byte of a wide write counts. */
        wr(&u, 7, 0x12345678);
        EXPECT_EQ(rd(&u, 7), 0x78);

        /* DLAB: offsets 0 and 1 become the divisor latch, and THR writes do not transmit. */
        wr(&u, 3, 0x83);
        wr(&u, 0, 0x01);
        wr(&u, 1, 0x80);
        EXPECT_EQ(rd(&u, 0), 0x01);
        EXPECT_EQ(rd(&u, 1), 0x80);
        EXPECT_EQ(con.tx_bytes, 0);
        wr(&u, 3, 0x03);
        EXPECT_EQ(rd(&u, 1), 0x0f); /* IER unchanged by DLM writes */
        EXPECT_EQ(rd(&u, 0), 0);
        EXPECT_EQ(u.dll, 0x01);
        EXPECT_EQ(u.dlm, 0x80);
        EXPECT_STREQ(logbuf, "");
        log_set_sink(NULL);
}

/* MSR lines (bits 4-7); the delta bits (0-3) are tested in msr_deltas. */
static uint32_t msr_lines(struct vuart *u)
{
        return rd(u, 6) & 0xf0;
}

TEST(loopback_msr_and_no_transmit)
{
        struct vuart u;

        uart_init(&u, "lb");
        capture_start();
        wr(&u, 4, 0x10); /* loop, all outputs off */
        EXPECT_EQ(msr_lines(&u), 0x00);
        wr(&u, 4, 0x10 | 0x0a); /* RTS | OUT2 -> CTS | DCD, as Linux's 8250 probe expects */
        EXPECT_EQ(msr_lines(&u), 0x90);
        wr(&u, 4, 0x1f);
        EXPECT_EQ(msr_lines(&u), 0xf0);
        wr(&u, 4, 0x11); /* DTR -> DSR */
        EXPECT_EQ(msr_lines(&u), 0x20);
        wr(&u, 4, 0x14); /* OUT1 -> RI */
        EXPECT_EQ(msr_lines(&u), 0x40);
        put(&u, "x\n");
        EXPECT_EQ(con.tx_bytes, 0);
        wr(&u, 4, 0x03);
        EXPECT_EQ(msr_lines(&u), 0xb0);
        put(&u, "y\n");
        EXPECT_STREQ(logbuf, "[lb] y\n");
        log_set_sink(NULL);
}

TEST(init_resets_everything)
{
        struct vuart u;

        memset(&u, 0xee, sizeof(u));
        memset(&con, 0xee, sizeof(con));
        uart_init(&u, "i");
        EXPECT_EQ(con.len, 0);
        EXPECT_EQ(con.tx_bytes, 0);
        EXPECT_EQ(rd(&u, 1), 0);
        EXPECT_EQ(rd(&u, 3), 0);
        EXPECT_EQ(rd(&u, 4), 0);
        EXPECT_EQ(rd(&u, 7), 0);
        EXPECT_STREQ(con.prefix, "i");
        EXPECT_TRUE(u.out == &con);
}

/* ---- receive path, interrupts ---- */

enum {
        RBR = 0,
        THR = 0,
        DLL = 0,
        IER = 1,
        DLM = 1,
        IIR = 2,
        FCR = 2,
        LCR = 3,
        MCR = 4,
        LSR = 5,
        MSR = 6,
        SCR = 7,
};

/* A fake interrupt controller: records every level driven on the line. */
struct irq_rec {
        unsigned calls;
        unsigned pin;
        bool level;
        bool hist[256];
};

static void rec_set_level(void *ctrl, unsigned pin, bool level)
{
        struct irq_rec *r = ctrl;

        if (r->calls < sizeof(r->hist) / sizeof(r->hist[0]))
                r->hist[r->calls] = level;
        r->calls++;
        r->pin = pin;
        r->level = level;
}

static void wire(struct vuart *u, struct irq_rec *r)
{
        struct irq_line l = {.set_level = rec_set_level, .ctrl = r, .pin = 4};

        memset(r, 0, sizeof(*r));
        vuart_set_irq(u, &l);
}

static size_t in_str(struct vuart *u, const char *s)
{
        return vuart_input(u, (const uint8_t *)s, strlen(s));
}

TEST(set_irq_drives_current_level_once)
{
        struct vuart u;
        struct irq_rec r;

        uart_init(&u, "i");
        wire(&u, &r);
        EXPECT_EQ(r.calls, 1);
        EXPECT_FALSE(r.level);
        EXPECT_EQ(r.pin, 4);
        wr(&u, MCR, 0x08); /* OUT2 */
        wr(&u, IER, 0x02); /* THRE pending at once */
        EXPECT_EQ(r.calls, 2);
        EXPECT_TRUE(r.level);
        /* Accesses that change nothing do not drive the line again. */
        wr(&u, SCR, 1);
        rd(&u, LSR);
        EXPECT_EQ(r.calls, 2);
        /* Rewiring pushes the current level to the new controller. */
        {
                struct irq_rec r2;

                wire(&u, &r2);
                EXPECT_EQ(r2.calls, 1);
                EXPECT_TRUE(r2.level);
                vuart_set_irq(&u, NULL); /* disconnected: nothing is called */
                EXPECT_EQ(rd(&u, IIR), 0x02);
                EXPECT_EQ(r2.calls, 1);
                EXPECT_FALSE(u.irq_level);
        }
}

TEST(rx_fifo_order_and_room)
{
        struct vuart u;
        uint8_t buf[40];

        uart_init(&u, "rx");
        wr(&u, FCR, 0x01);
        EXPECT_EQ(vuart_rx_room(&u), 16);
        for (unsigned i = 0; i < sizeof(buf); i++)
                buf[i] = (uint8_t)(0x80 + i);
        EXPECT_EQ(vuart_input(&u, buf, 20), 16); /* the rest stays with the caller */
        EXPECT_EQ(vuart_rx_room(&u), 0);
        EXPECT_EQ(vuart_input(&u, buf, 1), 0);
        EXPECT_EQ(u.rx_bytes, 16);
        EXPECT_EQ(rd(&u, LSR), 0x61); /* DR, no overrun: the host side is flow-controlled */
        for (unsigned i = 0; i < 5; i++)
                EXPECT_EQ(rd(&u, RBR), 0x80 + i);
        /* Wrap around the ring: 11 old bytes then 5 new ones, in order. */
        EXPECT_EQ(vuart_input(&u, buf + 20, 8), 5);
        for (unsigned i = 5; i < 16; i++)
                EXPECT_EQ(rd(&u, RBR), 0x80 + i);
        for (unsigned i = 20; i < 25; i++)
                EXPECT_EQ(rd(&u, RBR), 0x80 + i);
        EXPECT_EQ(rd(&u, LSR), 0x60);
        EXPECT_EQ(rd(&u, RBR), 0); /* empty */
        EXPECT_EQ(vuart_input(&u, buf, 0), 0);
        EXPECT_EQ(u.rx_bytes, 21);
}

TEST(rx_without_fifo_holds_one_byte)
{
        struct vuart u;

        uart_init(&u, "rx1");
        EXPECT_EQ(vuart_rx_room(&u), 1);
        EXPECT_EQ(in_str(&u, "ab"), 1);
        EXPECT_EQ(rd(&u, LSR), 0x61);
        EXPECT_EQ(rd(&u, RBR), 'a');
        EXPECT_EQ(rd(&u, LSR), 0x60);
        EXPECT_EQ(in_str(&u, "b"), 1);
        EXPECT_EQ(rd(&u, RBR), 'b');
}

TEST(fcr_clears_and_mode_changes_reset_fifo)
{
        struct vuart u;

        uart_init(&u, "fcr");
        wr(&u, FCR, 0x01);
        EXPECT_EQ(in_str(&u, "hello"), 5);
        wr(&u, FCR, 0x01 | 0x04); /* clear XMIT only: receive FIFO intact */
        EXPECT_EQ(rd(&u, RBR), 'h');
        wr(&u, FCR, 0x01 | 0x02); /* clear RCVR */
        EXPECT_EQ(rd(&u, LSR) & 1, 0);
        EXPECT_EQ(in_str(&u, "abc"), 3);
        wr(&u, FCR, 0x00); /* leaving FIFO mode resets the FIFO */
        EXPECT_EQ(rd(&u, LSR) & 1, 0);
        EXPECT_EQ(rd(&u, IIR), 0x01);
        EXPECT_EQ(in_str(&u, "x"), 1);
        wr(&u, FCR, 0x01); /* entering FIFO mode too */
        EXPECT_EQ(rd(&u, LSR) & 1, 0);
        EXPECT_EQ(in_str(&u, "yz"), 2);
        wr(&u, FCR, 0x41); /* same mode, new trigger: contents kept */
        EXPECT_EQ(rd(&u, RBR), 'y');
        EXPECT_EQ(rd(&u, RBR), 'z');
}

TEST(loopback_feeds_receiver_and_overruns)
{
        struct vuart u;

        uart_init(&u, "lo");
        capture_start();
        wr(&u, FCR, 0x07);
        wr(&u, MCR, 0x10);
        EXPECT_EQ(vuart_rx_room(&u), 0); /* line input disconnected in loopback */
        EXPECT_EQ(in_str(&u, "q"), 0);
        for (unsigned i = 0; i < 20; i++)
                wr(&u, THR, 'A' + i);
        EXPECT_EQ(u.rx_overruns, 4);
        EXPECT_EQ(rd(&u, LSR), 0x63); /* DR | OE */
        EXPECT_EQ(rd(&u, LSR), 0x61); /* OE cleared by the read */
        for (unsigned i = 0; i < 16; i++)
                EXPECT_EQ(rd(&u, RBR), 'A' + i); /* the FIFO kept the first 16 */
        EXPECT_EQ(rd(&u, LSR), 0x60);
        EXPECT_EQ(con.tx_bytes, 0);
        EXPECT_STREQ(logbuf, "");

        /* Without FIFOs a new byte overwrites the holding register. */
        wr(&u, FCR, 0x00);
        wr(&u, THR, '1');
        wr(&u, THR, '2');
        EXPECT_EQ(rd(&u, LSR), 0x63);
        EXPECT_EQ(rd(&u, RBR), '2');
        EXPECT_EQ(rd(&u, LSR), 0x60);
        log_set_sink(NULL);
}

TEST(msr_deltas)
{
        struct vuart u;

        uart_init(&u, "ms");
        EXPECT_EQ(rd(&u, MSR), 0xb0);
        wr(&u, MCR, 0x10); /* loop: DCD, DSR, CTS drop */
        EXPECT_EQ(rd(&u, MSR), 0x0b);
        EXPECT_EQ(rd(&u, MSR), 0x00); /* deltas cleared by the read */
        wr(&u, MCR, 0x14);            /* OUT1 -> RI rises: no TERI */
        EXPECT_EQ(rd(&u, MSR), 0x40);
        wr(&u, MCR, 0x10); /* RI falls: TERI */
        EXPECT_EQ(rd(&u, MSR), 0x04);
        wr(&u, MCR, 0x11); /* DTR -> DSR */
        EXPECT_EQ(rd(&u, MSR), 0x22);
        wr(&u, MCR, 0x13); /* RTS -> CTS */
        wr(&u, MCR, 0x1b); /* OUT2 -> DCD; deltas accumulate */
        EXPECT_EQ(rd(&u, MSR), 0xb9);
        wr(&u, MCR, 0x03); /* leaving loopback: same lines, no change */
        EXPECT_EQ(rd(&u, MSR), 0xb0);
}

TEST(rda_and_timeout_follow_fifo_level_and_trigger)
{
        struct vuart u;
        struct irq_rec r;

        uart_init(&u, "rda");
        wire(&u, &r);
        wr(&u, MCR, 0x0b);
        wr(&u, FCR, 0x81); /* trigger 8, what Linux programs for a 16550A */
        wr(&u, IER, 0x01);
        EXPECT_EQ(rd(&u, IIR), 0xc1);
        EXPECT_FALSE(r.level);
        EXPECT_EQ(in_str(&u, "abc"), 3);
        EXPECT_TRUE(r.level);
        EXPECT_EQ(rd(&u, IIR), 0xcc); /* below trigger: character timeout */
        EXPECT_EQ(rd(&u, IIR), 0xcc); /* not acknowledged by reading IIR */
        EXPECT_EQ(in_str(&u, "defgh"), 5);
        EXPECT_EQ(rd(&u, IIR), 0xc4); /* at trigger level */
        EXPECT_EQ(rd(&u, RBR), 'a');
        EXPECT_EQ(rd(&u, IIR), 0xcc);
        EXPECT_TRUE(r.level);
        for (int i = 0; i < 7; i++)
                rd(&u, RBR);
        EXPECT_EQ(rd(&u, IIR), 0xc1);
        EXPECT_FALSE(r.level);

        /* Each trigger level. */
        for (unsigned t = 0; t < 4; t++) {
                static const unsigned lvl[4] = {1, 4, 8, 14};

                wr(&u, FCR, 0x03 | (t << 6));
                for (unsigned i = 0; i < lvl[t] - 1; i++) {
                        EXPECT_EQ(in_str(&u, "x"), 1);
                        EXPECT_EQ(rd(&u, IIR), 0xcc);
                }
                EXPECT_EQ(in_str(&u, "x"), 1);
                EXPECT_EQ(rd(&u, IIR), 0xc4);
        }

        /* Without FIFOs: RDA (never the timeout code), no FIFO bits. */
        wr(&u, FCR, 0x00);
        EXPECT_EQ(rd(&u, IIR), 0x01);
        EXPECT_EQ(in_str(&u, "z"), 1);
        EXPECT_EQ(rd(&u, IIR), 0x04);
        EXPECT_TRUE(r.level);
        EXPECT_EQ(rd(&u, RBR), 'z');
        EXPECT_EQ(rd(&u, IIR), 0x01);
        EXPECT_FALSE(r.level);

        /* Disabled in IER: data waits without an interrupt. */
        wr(&u, IER, 0x00);
        EXPECT_EQ(in_str(&u, "w"), 1);
        EXPECT_EQ(rd(&u, IIR), 0x01);
        EXPECT_FALSE(r.level);
        wr(&u, IER, 0x01); /* enabling it with data waiting raises it */
        EXPECT_TRUE(r.level);
}

TEST(thre_set_and_clear)
{
        struct vuart u;
        struct irq_rec r;
        unsigned before;

        uart_init(&u, "th");
        capture_start();
        wire(&u, &r);
        wr(&u, MCR, 0x08);
        EXPECT_EQ(rd(&u, IIR), 0x01); /* THRE not pending while IER.ETBEI is clear */
        wr(&u, IER, 0x02);
        EXPECT_TRUE(r.level);
        EXPECT_EQ(rd(&u, IIR), 0x02); /* reported, and acknowledged by this read */
        EXPECT_FALSE(r.level);
        EXPECT_EQ(rd(&u, IIR), 0x01);
        wr(&u, IER, 0x02); /* rewriting the same IER does not re-arm */
        EXPECT_EQ(rd(&u, IIR), 0x01);
        /* A THR write: acknowledged, then empty at once, so pending again (low-high edge). */
        before = r.calls;
        wr(&u, THR, 'a');
        EXPECT_TRUE(r.level);
        EXPECT_EQ(r.calls, before + 1);
        /* While pending, a THR write drops the line for a moment: edge-triggered inputs see it. */
        before = r.calls;
        wr(&u, THR, 'b');
        EXPECT_EQ(r.calls, before + 2);
        EXPECT_FALSE(r.hist[before]);
        EXPECT_TRUE(r.hist[before + 1]);
        EXPECT_EQ(rd(&u, IIR), 0x02);
        /* Disabling disarms; enabling again re-arms (what Linux's THRE test checks). */
        wr(&u, IER, 0x02);
        wr(&u, THR, 'c');
        wr(&u, IER, 0x00);
        EXPECT_EQ(rd(&u, IIR), 0x01);
        EXPECT_FALSE(r.level);
        wr(&u, IER, 0x02);
        EXPECT_EQ(rd(&u, IIR), 0x02);
        /* THR writes with ETBEI clear do not arm it. */
        wr(&u, IER, 0x00);
        wr(&u, THR, '\n');
        EXPECT_EQ(rd(&u, IIR), 0x01);
        EXPECT_STREQ(logbuf, "[th] abc\n");
        /* The print hypercall path has no interrupt effect. */
        wr(&u, IER, 0x02);
        rd(&u, IIR);
        vcons_putc(&con, 'x');
        EXPECT_EQ(rd(&u, IIR), 0x01);
        log_set_sink(NULL);
}

TEST(line_status_interrupt)
{
        struct vuart u;

        uart_init(&u, "ls");
        wr(&u, FCR, 0x01);
        wr(&u, MCR, 0x10);
        for (unsigned i = 0; i < 17; i++)
                wr(&u, THR, i);
        wr(&u, IER, 0x04);
        EXPECT_EQ(rd(&u, IIR), 0xc6);
        EXPECT_EQ(rd(&u, IIR), 0xc6); /* IIR does not acknowledge it */
        EXPECT_EQ(rd(&u, LSR), 0x63); /* LSR does */
        EXPECT_EQ(rd(&u, IIR), 0xc1);
        /* Overrun while ELSI is clear: enabling it later reports it. */
        wr(&u, IER, 0x00);
        wr(&u, THR, 0);
        EXPECT_EQ(rd(&u, IIR), 0xc1);
        wr(&u, IER, 0x04);
        EXPECT_EQ(rd(&u, IIR), 0xc6);
}

TEST(modem_status_interrupt)
{
        struct vuart u;
        struct irq_rec r;

        uart_init(&u, "msi");
        wire(&u, &r);
        wr(&u, IER, 0x08);
        wr(&u, MCR, 0x18); /* loop + OUT2: lines change, but the output is gated in loopback */
        EXPECT_EQ(rd(&u, IIR), 0x00);
        EXPECT_FALSE(r.level);
        wr(&u, MCR, 0x08); /* back to the line: DCD/DSR/CTS change again, OUT2 passes it */
        EXPECT_TRUE(r.level);
        EXPECT_EQ(rd(&u, IIR), 0x00);
        EXPECT_EQ(rd(&u, MSR) & 0x0f, 0x03); /* DSR, CTS changed; DCD stayed (OUT2 looped) */
        EXPECT_EQ(rd(&u, IIR), 0x01);
        EXPECT_FALSE(r.level);
}

TEST(iir_priorities)
{
        struct vuart u;

        uart_init(&u, "pri");
        wr(&u, FCR, 0x01); /* trigger 1 */
        wr(&u, MCR, 0x10);
        for (unsigned i = 0; i < 17; i++) /* overrun + data */
                wr(&u, THR, 'a');
        wr(&u, MCR, 0x00);            /* leaves loopback: modem status deltas */
        wr(&u, IER, 0x0f);            /* arms THRE too */
        EXPECT_EQ(rd(&u, IIR), 0xc6); /* line status first */
        rd(&u, LSR);
        EXPECT_EQ(rd(&u, IIR), 0xc4); /* then received data */
        for (unsigned i = 0; i < 16; i++)
                rd(&u, RBR);
        EXPECT_EQ(rd(&u, IIR), 0xc2); /* then THRE, still armed under the others */
        EXPECT_EQ(rd(&u, IIR), 0xc0); /* then modem status */
        rd(&u, MSR);
        EXPECT_EQ(rd(&u, IIR), 0xc1);
        /* THRE stays pending while a higher source is what IIR reports. */
        wr(&u, THR, 'b');
        EXPECT_EQ(in_str(&u, "c"), 1);
        EXPECT_EQ(rd(&u, IIR), 0xc4);
        EXPECT_EQ(rd(&u, RBR), 'c');
        EXPECT_EQ(rd(&u, IIR), 0xc2);
        EXPECT_EQ(rd(&u, IIR), 0xc1);
}

TEST(out2_and_loopback_gate_the_line)
{
        struct vuart u;
        struct irq_rec r;

        uart_init(&u, "o2");
        wire(&u, &r);
        wr(&u, FCR, 0x01);
        wr(&u, IER, 0x01);
        EXPECT_EQ(in_str(&u, "k"), 1);
        EXPECT_EQ(rd(&u, IIR), 0xc4); /* pending (trigger level 1)... */
        EXPECT_FALSE(r.level);        /* ...but OUT2 is off */
        wr(&u, MCR, 0x03);
        EXPECT_FALSE(r.level);
        wr(&u, MCR, 0x0b);
        EXPECT_TRUE(r.level);
        wr(&u, MCR, 0x1b); /* loopback forces OUT2 inactive */
        EXPECT_FALSE(r.level);
        wr(&u, MCR, 0x0b);
        EXPECT_TRUE(r.level);
        wr(&u, MCR, 0x03);
        EXPECT_FALSE(r.level);
        EXPECT_EQ(rd(&u, RBR), 'k');
        wr(&u, MCR, 0x0b);
        EXPECT_FALSE(r.level);
        /* Every recorded call was a change. */
        for (unsigned i = 1; i < r.calls; i++)
                EXPECT_NE(r.hist[i], r.hist[i - 1]);
}

TEST(dlab_hides_rbr_thr_ier_not_iir_fcr)
{
        struct vuart u;

        uart_init(&u, "dl");
        capture_start();
        wr(&u, IER, 0x05);
        EXPECT_EQ(in_str(&u, "d"), 1);
        wr(&u, LCR, 0x83);
        wr(&u, DLL, 0x0c);
        wr(&u, DLM, 0x00);
        EXPECT_EQ(rd(&u, DLL), 0x0c); /* no pop */
        EXPECT_EQ(rd(&u, DLM), 0x00);
        EXPECT_EQ(rd(&u, LSR), 0x61);
        EXPECT_EQ(rd(&u, IIR), 0x04); /* IIR readable under DLAB */
        wr(&u, FCR, 0x01);            /* FCR writable under DLAB (clears the byte: mode change) */
        EXPECT_EQ(rd(&u, IIR), 0xc1);
        wr(&u, LCR, 0x03);
        EXPECT_EQ(rd(&u, IER), 0x05);
        EXPECT_EQ(rd(&u, LSR), 0x60);
        EXPECT_EQ(u.dll, 0x0c);
        EXPECT_EQ(con.tx_bytes, 0);
        EXPECT_STREQ(logbuf, "");
        log_set_sink(NULL);
}

/* ---- Linux's 8250 driver, step by step (drivers/tty/serial/8250/8250_port.c) ---- */

enum linux_type {
        L_NONE, /* probe failed: no UART */
        L_UNKNOWN,
        L_8250,
        L_16450,
        L_16550,
        L_16550A,
        L_16650_EFR,
        L_NS16550A,
        L_16750,
        L_XSCALE,
        L_U6_16550A,
};

/* Linux's size_fifo(): count what a burst of 256 loopback bytes leaves in the receiver. */
static unsigned linux_size_fifo(struct vuart *u)
{
        uint32_t old_lcr = rd(u, LCR), old_fcr, old_mcr, old_dl;
        unsigned n;

        wr(u, LCR, 0);
        old_fcr = rd(u, FCR); /* really IIR, as in Linux */
        old_mcr = rd(u, MCR);
        wr(u, FCR, 0x07);
        wr(u, MCR, 0x10);
        wr(u, LCR, 0x80);
        old_dl = rd(u, DLL) | rd(u, DLM) << 8;
        wr(u, DLL, 1);
        wr(u, DLM, 0);
        wr(u, LCR, 0x03);
        for (n = 0; n < 256; n++)
                wr(u, THR, n);
        for (n = 0; (rd(u, LSR) & 0x01) && n < 256; n++)
                rd(u, RBR);
        wr(u, FCR, old_fcr);
        wr(u, MCR, old_mcr);
        wr(u, LCR, 0x80);
        wr(u, DLL, old_dl & 0xff);
        wr(u, DLM, old_dl >> 8);
        wr(u, LCR, old_lcr);
        return n;
}

/* autoconfig_16550a() with the 16550A variant probes (CONFIG_SERIAL_8250_16550A_VARIANTS). */
static enum linux_type linux_16550a_variants(struct vuart *u)
{
        uint32_t s1, s2, ier;

        wr(u, LCR, 0x80); /* EFR under DLAB: ST16C650V1 */
        if (rd(u, IIR) == 0)
                return L_16650_EFR;
        wr(u, LCR, 0xbf); /* EFR under 0xbf: ST16C650V2, TI16C752 */
        if (rd(u, IIR) == 0)
                return L_16650_EFR;
        /* National SuperIO: EXCR1 in bank 2 mirrors MCR's loop bit. */
        wr(u, LCR, 0);
        s1 = rd(u, MCR);
        wr(u, LCR, 0xe0);
        s2 = rd(u, 2);
        if (!((s2 ^ s1) & 0x10)) {
                wr(u, LCR, 0);
                wr(u, MCR, s1 ^ 0x10);
                wr(u, LCR, 0xe0);
                s2 = rd(u, 2);
                wr(u, LCR, 0);
                wr(u, MCR, s1);
                if ((s2 ^ s1) & 0x10)
                        return L_NS16550A;
        }
        /* TI16750: IIR bit 5 after FCR bit 5, under DLAB only. */
        wr(u, LCR, 0);
        wr(u, FCR, 0x21);
        s1 = rd(u, IIR) & 0xe0;
        wr(u, FCR, 0x01);
        wr(u, LCR, 0x80);
        wr(u, FCR, 0x21);
        s2 = rd(u, IIR) & 0xe0;
        wr(u, FCR, 0x01);
        wr(u, LCR, 0);
        if (s1 == 0xc0 && s2 == 0xe0)
                return L_16750;
        /* XScale: IER bit 6 (UUE) sticks. */
        ier = rd(u, IER);
        wr(u, IER, ier & ~0x40u);
        if (!(rd(u, IER) & 0x40)) {
                wr(u, IER, ier | 0x40);
                if (rd(u, IER) & 0x40)
                        return L_XSCALE;
        }
        wr(u, IER, ier);
        if (linux_size_fifo(u) == 64)
                return L_U6_16550A;
        return L_16550A;
}

static void linux_clear_fifos(struct vuart *u)
{
        wr(u, FCR, 0x01);
        wr(u, FCR, 0x07);
        wr(u, FCR, 0x00);
}

/* autoconfig(): existence (IER), loopback, IIR FIFO bits, then the reset it leaves behind. */
static enum linux_type linux_autoconfig(struct vuart *u, bool skip_test, bool variants)
{
        uint32_t scratch, s2, s3, save_mcr, save_lcr;
        enum linux_type t = L_UNKNOWN;

        scratch = rd(u, IER);
        wr(u, IER, 0);
        s2 = rd(u, IER) & 0x0f;
        wr(u, IER, 0x0f);
        s3 = rd(u, IER) & 0x0f;
        wr(u, IER, scratch);
        if (s2 != 0 || s3 != 0x0f)
                return L_NONE;
        save_mcr = rd(u, MCR);
        save_lcr = rd(u, LCR);
        if (!skip_test) {
                wr(u, MCR, 0x10 | 0x0a);
                s2 = rd(u, MSR) & 0xf0;
                wr(u, MCR, save_mcr);
                if (s2 != 0x90)
                        return L_NONE;
        }
        wr(u, LCR, 0xbf);
        wr(u, 2, 0); /* EFR on UARTs that have one; FCR here */
        wr(u, LCR, 0);
        wr(u, FCR, 0x01);
        switch (rd(u, IIR) >> 6) {
        case 0:
                /* autoconfig_8250: the scratch register tells 16450 from 8250. */
                s2 = rd(u, SCR);
                wr(u, SCR, 0xa5);
                s3 = rd(u, SCR);
                wr(u, SCR, 0x5a);
                t = (s3 == 0xa5 && rd(u, SCR) == 0x5a) ? L_16450 : L_8250;
                wr(u, SCR, s2);
                break;
        case 1:
                t = L_UNKNOWN;
                break;
        case 2:
                t = L_16550;
                break;
        case 3:
                t = variants ? linux_16550a_variants(u) : L_16550A;
                break;
        }
        wr(u, LCR, save_lcr);
        if (t == L_UNKNOWN)
                return t;
        wr(u, MCR, save_mcr);
        linux_clear_fifos(u);
        rd(u, RBR);
        wr(u, IER, 0);
        return t;
}

struct linux_bugs {
        bool thre; /* UART_BUG_THRE: THRE not re-asserted */
        bool txen; /* UART_BUG_TXEN: no THRE interrupt on enable */
};

/* serial8250_do_startup() up to enabling the receive interrupts, then set_termios(). */
static bool linux_startup(struct vuart *u, struct linux_bugs *bugs)
{
        uint32_t iir1, iir, lsr;
        unsigned spin;

        linux_clear_fifos(u);
        rd(u, LSR);
        rd(u, RBR);
        rd(u, IIR);
        rd(u, MSR);
        if (rd(u, LSR) == 0xff)
                return false;
        /* THRE re-assertion test (the port has an irq). */
        for (spin = 0; spin < 1000 && !(rd(u, LSR) & 0x20); spin++)
                ;
        if (spin == 1000)
                return false;
        wr(u, IER, 0x02);
        iir1 = rd(u, IIR);
        wr(u, IER, 0);
        wr(u, IER, 0x02);
        iir = rd(u, IIR);
        wr(u, IER, 0);
        bugs->thre = !(iir1 & 0x01) && (iir & 0x01);
        wr(u, LCR, 0x03);
        wr(u, MCR, 0x0b); /* DTR | RTS | OUT2 */
        /* The TX-enable test. */
        wr(u, IER, 0x02);
        lsr = rd(u, LSR);
        iir = rd(u, IIR);
        wr(u, IER, 0);
        bugs->txen = (lsr & 0x40) && (iir & 0x01);
        rd(u, LSR);
        rd(u, RBR);
        rd(u, IIR);
        rd(u, MSR);
        /* set_termios: 115200 8N1, the 16550A's FCR, then RLSI | RDI. */
        wr(u, LCR, 0x83);
        wr(u, DLL, 1);
        wr(u, DLM, 0);
        wr(u, LCR, 0x03);
        wr(u, FCR, 0x81);
        wr(u, IER, 0x05);
        return true;
}

/* serial8250_handle_irq() for one pass; returns false when IIR says nothing is pending. */
static bool linux_handle_irq(struct vuart *u, char *got, size_t *ngot, size_t cap, const char **tx)
{
        uint32_t iir = rd(u, IIR), lsr, ier;
        unsigned n;

        if (iir & 0x01)
                return false;
        lsr = rd(u, LSR);
        while ((lsr & 0x01) && *ngot < cap) {
                got[(*ngot)++] = (char)rd(u, RBR);
                lsr = rd(u, LSR);
        }
        rd(u, MSR);
        ier = rd(u, IER);
        if ((lsr & 0x20) && (ier & 0x02)) {
                for (n = 0; n < 16 && **tx; n++)
                        wr(u, THR, (uint8_t) * (*tx)++);
                if (!**tx)
                        wr(u, IER, ier & ~0x02u); /* __stop_tx */
        }
        return true;
}

TEST(linux_probe_finds_16550a)
{
        struct vuart u;
        struct irq_rec r;

        uart_init(&u, "lx");
        wire(&u, &r);
        /* Legacy COM1 (UPF_SKIP_TEST) and an ACPI/PNP port without it. */
        EXPECT_EQ(linux_autoconfig(&u, true, false), L_16550A);
        EXPECT_EQ(linux_autoconfig(&u, false, false), L_16550A);
        /* With the variant probes: no EFR, not NS, not 16750, not XScale, a 16-byte FIFO. */
        EXPECT_EQ(linux_autoconfig(&u, false, true), L_16550A);
        /* The probe leaves the UART as it found it: no interrupt, FIFOs off, no data. */
        EXPECT_EQ(rd(&u, IER), 0);
        EXPECT_EQ(rd(&u, MCR), 0);
        EXPECT_EQ(rd(&u, LCR), 0);
        EXPECT_EQ(rd(&u, IIR), 0x01);
        EXPECT_EQ(rd(&u, LSR), 0x60);
        EXPECT_FALSE(r.level);
        EXPECT_EQ(con.tx_bytes, 0);
        /* What size_fifo() counts (Linux then leaves IIR's value in FCR: FIFOs on). */
        EXPECT_EQ(linux_size_fifo(&u), 16);
        EXPECT_EQ(rd(&u, IIR), 0xc1);
        EXPECT_FALSE(r.level);
}

TEST(linux_startup_sees_no_bugs_and_interrupts_work)
{
        struct vuart u;
        struct irq_rec r;
        struct linux_bugs bugs = {true, true};
        char got[64];
        size_t ngot = 0;
        const char *tx = "# ls -l /proc/self/fd\n";
        unsigned passes;

        uart_init(&u, "lx");
        capture_start();
        wire(&u, &r);
        ASSERT_TRUE(linux_autoconfig(&u, true, false) == L_16550A);
        ASSERT_TRUE(linux_startup(&u, &bugs));
        EXPECT_FALSE(bugs.thre);
        EXPECT_FALSE(bugs.txen);
        EXPECT_FALSE(r.level); /* startup cleared everything; only RX interrupts enabled */
        EXPECT_EQ(rd(&u, IIR), 0xc1);

        /* Typing: the line rises, the handler drains, the line falls. */
        EXPECT_EQ(in_str(&u, "ls\r"), 3);
        EXPECT_TRUE(r.level);
        for (passes = 0; passes < 10 && linux_handle_irq(&u, got, &ngot, sizeof(got), &tx);
             passes++)
                ;
        EXPECT_EQ(passes, 1);
        EXPECT_EQ(ngot, 3);
        EXPECT_TRUE(memcmp(got, "ls\r", 3) == 0);
        EXPECT_FALSE(r.level);

        /* Echo/output: start_tx sets IER.THRI, the handler refills 16 at a time until done. */
        wr(&u, IER, 0x07);
        EXPECT_TRUE(r.level);
        for (passes = 0; passes < 10 && linux_handle_irq(&u, got, &ngot, sizeof(got), &tx);
             passes++)
                ;
        EXPECT_EQ(passes, 2); /* 22 bytes: 16 + 6 */
        EXPECT_FALSE(r.level);
        EXPECT_EQ(rd(&u, IER), 0x05);
        EXPECT_STREQ(logbuf, "[lx] # ls -l /proc/self/fd\n");

        /* A burst larger than the FIFO: the host keeps the rest and retries after the drain. */
        {
                const char *burst = "0123456789abcdefghij";
                size_t off = 0;

                ngot = 0;
                for (unsigned round = 0; round < 4 && off < 20; round++) {
                        off += vuart_input(&u, (const uint8_t *)burst + off, 20 - off);
                        while (r.level && linux_handle_irq(&u, got, &ngot, sizeof(got), &tx))
                                ;
                }
                EXPECT_EQ(off, 20);
                EXPECT_EQ(ngot, 20);
                EXPECT_TRUE(memcmp(got, burst, 20) == 0);
        }
        log_set_sink(NULL);
}

/* A hostile guest's random accesses: the state stays in bounds and the line stays consistent. */
TEST(random_accesses_keep_invariants)
{
        struct vuart u;
        struct irq_rec r;
        uint32_t x = 12345;

        uart_init(&u, "rnd");
        capture_start();
        wire(&u, &r);
        for (unsigned i = 0; i < 200000; i++) {
                uint32_t v;
                unsigned off;

                x = x * 1103515245u + 12345u;
                off = (x >> 8) % 10;
                v = x >> 16;
                if ((x >> 4) % 7 == 0) {
                        uint8_t b[20];

                        memset(b, (int)v, sizeof(b));
                        EXPECT_TRUE(vuart_input(&u, b, v % 20) <= 16);
                } else if ((x >> 12) & 1) {
                        vuart_access(&u, off, true, &v);
                } else {
                        vuart_access(&u, off, false, &v);
                        if (off < 8)
                                EXPECT_TRUE(v <= 0xff);
                        else
                                EXPECT_EQ(v, 0xff);
                }
                ASSERT_TRUE(u.rx_count <= VUART_FIFO_SIZE && u.rx_head < VUART_FIFO_SIZE);
                ASSERT_TRUE(r.level == u.irq_level);
                ASSERT_TRUE(con.len <= VCONS_LINE_MAX);
                if (!(u.mcr & 0x08) || (u.mcr & 0x10))
                        ASSERT_TRUE(!r.level);
        }
        log_set_sink(NULL);
}

TEST_MAIN()
