/*
 * Tests for vmm/pl011.c: reset values, the PrimeCell ID registers, transmitted lines reaching
 * the VM's console, the receive FIFO with and without FEN, the RX, RT and TX interrupts with
 * IMSC and ICR, input gating by CR, a replay of Linux's amba-pl011 driver, and a hostile
 * guest's offsets and sizes.
 */
#include <keel/log.h>
#include <vmm/mmio.h>
#include <vmm/pl011.h>
#include <vmm/vcons.h>

#include "log_capture.h"
#include "test.h"

enum {
        DR = 0x000,
        RSR = 0x004,
        FR = 0x018,
        ILPR = 0x020,
        IBRD = 0x024,
        FBRD = 0x028,
        LCR_H = 0x02c,
        CR = 0x030,
        IFLS = 0x034,
        IMSC = 0x038,
        RIS = 0x03c,
        MIS = 0x040,
        ICR = 0x044,
        DMACR = 0x048,
};

/* Bits, as the PL011 TRM names them. */
enum {
        FR_CTS = 0x001,
        FR_DSR = 0x002,
        FR_DCD = 0x004,
        FR_BUSY = 0x008,
        FR_RXFE = 0x010,
        FR_TXFF = 0x020,
        FR_RXFF = 0x040,
        FR_TXFE = 0x080,
        LCR_H_FEN = 0x10,
        LCR_H_WLEN8 = 0x60,
        CR_UARTEN = 0x001,
        CR_TXE = 0x100,
        CR_RXE = 0x200,
        INT_RX = 0x010,
        INT_TX = 0x020,
        INT_RT = 0x040,
};

#define CR_ON (CR_UARTEN | CR_TXE | CR_RXE)

/* The console front end the UART under test transmits to (a VM's vm->console). */
static struct vcons con;

static void uart_init(struct pl011 *p, const char *prefix)
{
        vcons_init(&con, prefix);
        pl011_init(p, &con);
}

static uint64_t rd_sz(struct pl011 *p, uint64_t off, unsigned size)
{
        uint64_t v = 0xdeadbeefdeadbeefull;

        pl011_ops.read(p, off, size, &v);
        return v;
}

static uint32_t rd(struct pl011 *p, uint64_t off)
{
        return (uint32_t)rd_sz(p, off, 4);
}

static void wr_sz(struct pl011 *p, uint64_t off, unsigned size, uint64_t v)
{
        pl011_ops.write(p, off, size, v);
}

static void wr(struct pl011 *p, uint64_t off, uint32_t v)
{
        wr_sz(p, off, 4, v);
}

static void put(struct pl011 *p, const char *s)
{
        while (*s)
                wr(p, DR, (uint8_t)*s++);
}

static size_t in_str(struct pl011 *p, const char *s)
{
        return pl011_input(p, (const uint8_t *)s, strlen(s));
}

/* A fake interrupt controller: counts the levels driven on the line. */
struct line_rec {
        unsigned calls, rises;
        unsigned pin;
        bool level;
};

static void rec_set_level(void *ctrl, unsigned pin, bool level)
{
        struct line_rec *r = ctrl;

        r->calls++;
        r->rises += level;
        r->pin = pin;
        r->level = level;
}

static void wire(struct pl011 *p, struct line_rec *r)
{
        struct irq_line l = {.set_level = rec_set_level, .ctrl = r, .pin = 33};

        memset(r, 0, sizeof(*r));
        pl011_set_irq(p, &l);
}

/* UART on, FIFOs on (8 bits), trigger levels at reset (RX 1/2: 16 bytes). */
static void uart_on(struct pl011 *p, const char *prefix)
{
        uart_init(p, prefix);
        wr(p, LCR_H, LCR_H_FEN | LCR_H_WLEN8);
        wr(p, CR, CR_ON);
}

TEST(reset_values)
{
        struct pl011 p;

        memset(&p, 0xee, sizeof(p));
        memset(&con, 0xee, sizeof(con));
        uart_init(&p, "r");
        EXPECT_TRUE(p.out == &con);
        EXPECT_EQ(rd(&p, DR), 0);
        EXPECT_EQ(rd(&p, RSR), 0);
        EXPECT_EQ(rd(&p, FR), FR_TXFE | FR_RXFE | FR_CTS | FR_DSR | FR_DCD);
        EXPECT_EQ(rd(&p, ILPR), 0);
        EXPECT_EQ(rd(&p, IBRD), 0);
        EXPECT_EQ(rd(&p, FBRD), 0);
        EXPECT_EQ(rd(&p, LCR_H), 0);
        EXPECT_EQ(rd(&p, CR), 0x300);
        EXPECT_EQ(rd(&p, IFLS), 0x12);
        EXPECT_EQ(rd(&p, IMSC), 0);
        EXPECT_EQ(rd(&p, RIS), 0);
        EXPECT_EQ(rd(&p, MIS), 0);
        EXPECT_EQ(rd(&p, ICR), 0);
        EXPECT_EQ(rd(&p, DMACR), 0);
        EXPECT_EQ(p.rx_count, 0);
        EXPECT_EQ(p.rx_bytes, 0);
        EXPECT_EQ(p.bad_accesses, 0);
        EXPECT_EQ(con.tx_bytes, 0);
        EXPECT_FALSE(p.irq_level);
        /* UARTEN is clear at reset: no input until the guest enables the UART. */
        EXPECT_EQ(pl011_rx_room(&p), 0);
}

/* What Linux's AMBA bus reads to match the driver: periphid 0x00?41011, cid 0xb105f00d. */
TEST(id_registers)
{
        static const uint8_t want[8] = {0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1};
        struct pl011 p;
        uint32_t pid = 0, cid = 0;

        uart_init(&p, "id");
        for (unsigned i = 0; i < 8; i++) {
                EXPECT_EQ(rd(&p, 0xfe0 + 4 * i), want[i]);
                EXPECT_EQ(rd_sz(&p, 0xfe0 + 4 * i, 1), want[i]);
                EXPECT_EQ(rd_sz(&p, 0xfe0 + 4 * i, 2), want[i]);
        }
        for (unsigned i = 0; i < 4; i++) {
                pid |= (rd(&p, 0xfe0 + 4 * i) & 0xff) << (8 * i);
                cid |= (rd(&p, 0xff0 + 4 * i) & 0xff) << (8 * i);
        }
        EXPECT_EQ(pid & 0x000fffff, 0x00041011); /* Linux's pl011_ids[] entry for ARM */
        EXPECT_EQ((pid >> 20) & 0xf, 1);         /* revision */
        EXPECT_EQ(cid, 0xb105f00d);              /* AMBA_CID */
        /* Read-only. */
        for (unsigned i = 0; i < 8; i++)
                wr(&p, 0xfe0 + 4 * i, 0);
        EXPECT_EQ(rd(&p, 0xfe0), 0x11);
        EXPECT_EQ(rd(&p, 0xffc), 0xb1);
        EXPECT_EQ(p.bad_accesses, 0);
}

TEST(tx_lines_reach_console_with_prefix)
{
        struct pl011 p;

        uart_on(&p, "arm1");
        capture_start();
        put(&p, "hello\nworld");
        EXPECT_STREQ(logbuf, "[arm1] hello\n");
        put(&p, "!\r\n");
        EXPECT_STREQ(logbuf, "[arm1] hello\n[arm1] world!\n");
        EXPECT_EQ(con.tx_bytes, 14);
        EXPECT_EQ(con.len, 0);
        /* Only the low byte of DR counts; byte and halfword writes transmit too. */
        wr(&p, DR, 0xf41);
        wr_sz(&p, DR, 1, 'B');
        wr_sz(&p, DR, 2, 'C');
        /* The same console as the print hypercall: one line buffer. */
        vcons_putc(&con, 'D');
        wr(&p, DR, '\n');
        EXPECT_STREQ(logbuf, "[arm1] hello\n[arm1] world!\n[arm1] ABCD\n");
        /* Transmit is not gated by UARTEN or TXE (an early console may not enable them). */
        wr(&p, CR, 0);
        put(&p, "early\n");
        EXPECT_STREQ(logbuf, "[arm1] hello\n[arm1] world!\n[arm1] ABCD\n[arm1] early\n");
        /* Partial lines: shown when idle, finished at a stop. */
        put(&p, "$ ");
        vcons_show_partial(&con);
        vcons_flush(&con);
        EXPECT_STREQ(logbuf, "[arm1] hello\n[arm1] world!\n[arm1] ABCD\n[arm1] early\n[arm1] $ \n");
        /* Escape sequences and non-printable bytes are neutralised by the front end. */
        capture_start();
        put(&p, "\x1b[2J\x01\n");
        EXPECT_STREQ(logbuf, "[arm1] .\n");
        EXPECT_EQ(rd(&p, FR) & (FR_TXFF | FR_BUSY | FR_TXFE), FR_TXFE);
        log_set_sink(NULL);
}

TEST(register_readback_and_masks)
{
        struct pl011 p;

        uart_init(&p, "rb");
        capture_start();
        wr(&p, ILPR, 0x1ab);
        EXPECT_EQ(rd(&p, ILPR), 0xab);
        wr(&p, IBRD, 0x12345);
        EXPECT_EQ(rd(&p, IBRD), 0x2345);
        wr(&p, FBRD, 0xff);
        EXPECT_EQ(rd(&p, FBRD), 0x3f);
        wr(&p, LCR_H, 0x1ff);
        EXPECT_EQ(rd(&p, LCR_H), 0xff);
        wr(&p, CR, 0xffffffff);
        EXPECT_EQ(rd(&p, CR), 0xff87);
        wr(&p, IFLS, 0xff);
        EXPECT_EQ(rd(&p, IFLS), 0x3f);
        wr(&p, IMSC, 0xffff);
        EXPECT_EQ(rd(&p, IMSC), 0x7ff);
        wr(&p, DMACR, 0xff);
        EXPECT_EQ(rd(&p, DMACR), 0x7);
        /* Read-only registers ignore writes; ICR reads as zero; ECR writes clear nothing. */
        wr(&p, FR, 0);
        wr(&p, RIS, 0x7ff);
        wr(&p, MIS, 0x7ff);
        wr(&p, RSR, 0xff);
        EXPECT_EQ(rd(&p, FR), FR_TXFE | FR_RXFE | FR_CTS | FR_DSR | FR_DCD);
        EXPECT_EQ(rd(&p, RIS), 0);
        EXPECT_EQ(rd(&p, MIS), 0);
        EXPECT_EQ(rd(&p, RSR), 0);
        EXPECT_EQ(rd(&p, ICR), 0);
        /* A byte write to a register zero-extends: it is the whole register's new value. */
        wr(&p, CR, CR_ON);
        wr_sz(&p, CR, 1, 0x01);
        EXPECT_EQ(rd(&p, CR), 0x001);
        /* Narrow reads return the low bytes. */
        wr(&p, IMSC, 0x7ff);
        EXPECT_EQ(rd_sz(&p, IMSC, 1), 0xff);
        EXPECT_EQ(rd_sz(&p, IMSC, 2), 0x7ff);
        EXPECT_EQ(p.bad_accesses, 0);
        EXPECT_STREQ(logbuf, "");
        log_set_sink(NULL);
}

TEST(rx_fifo_enabled)
{
        struct pl011 p;
        uint8_t buf[40];

        uart_on(&p, "rx");
        EXPECT_EQ(pl011_rx_room(&p), 32);
        for (unsigned i = 0; i < sizeof(buf); i++)
                buf[i] = (uint8_t)('a' + i % 26);
        EXPECT_EQ(pl011_input(&p, buf, 10), 10);
        EXPECT_EQ(pl011_rx_room(&p), 22);
        EXPECT_EQ(rd(&p, FR) & (FR_RXFE | FR_RXFF), 0);
        EXPECT_EQ(pl011_input(&p, buf + 10, 30), 22); /* the caller keeps the rest */
        EXPECT_EQ(pl011_rx_room(&p), 0);
        EXPECT_EQ(pl011_input(&p, buf, 1), 0);
        EXPECT_EQ(rd(&p, FR) & (FR_RXFE | FR_RXFF), FR_RXFF);
        EXPECT_EQ(p.rx_bytes, 32);
        for (unsigned i = 0; i < 32; i++)
                EXPECT_EQ(rd(&p, DR), buf[i]); /* in order, error bits 8-11 zero */
        EXPECT_EQ(rd(&p, FR) & (FR_RXFE | FR_RXFF), FR_RXFE);
        EXPECT_EQ(rd(&p, DR), 0); /* empty */
        EXPECT_EQ(rd(&p, RSR), 0);
        /* The ring wraps. */
        EXPECT_EQ(pl011_input(&p, buf, 20), 20);
        EXPECT_EQ(rd(&p, DR), 'a');
        EXPECT_EQ(pl011_input(&p, buf + 20, 13), 13);
        for (unsigned i = 1; i < 33; i++)
                EXPECT_EQ(rd(&p, DR), buf[i]);
        EXPECT_EQ(rd(&p, FR) & FR_RXFE, FR_RXFE);
        /* A byte read pops too. */
        EXPECT_EQ(in_str(&p, "xy"), 2);
        EXPECT_EQ(rd_sz(&p, DR, 1), 'x');
        EXPECT_EQ(rd_sz(&p, DR, 2), 'y');
}

TEST(rx_fifo_disabled_is_one_byte)
{
        struct pl011 p;

        uart_init(&p, "rx1");
        wr(&p, LCR_H, LCR_H_WLEN8);
        wr(&p, CR, CR_ON);
        EXPECT_EQ(pl011_rx_room(&p), 1);
        EXPECT_EQ(in_str(&p, "ab"), 1);
        EXPECT_EQ(pl011_rx_room(&p), 0);
        EXPECT_EQ(rd(&p, FR) & (FR_RXFE | FR_RXFF), FR_RXFF);
        EXPECT_EQ(rd(&p, DR), 'a');
        EXPECT_EQ(rd(&p, FR) & (FR_RXFE | FR_RXFF), FR_RXFE);
        EXPECT_EQ(rd(&p, DR), 0);
        EXPECT_EQ(in_str(&p, "b"), 1);
        EXPECT_EQ(rd(&p, DR), 'b');
}

TEST(fen_change_empties_the_receiver)
{
        struct pl011 p;
        struct line_rec r;

        uart_on(&p, "fen");
        wire(&p, &r);
        wr(&p, IMSC, INT_RX | INT_RT);
        EXPECT_EQ(in_str(&p, "abc"), 3);
        EXPECT_TRUE(r.level);
        /* Rewriting LCR_H with FEN unchanged keeps the data. */
        wr(&p, LCR_H, LCR_H_FEN | LCR_H_WLEN8);
        EXPECT_EQ(rd(&p, FR) & FR_RXFE, 0);
        /* Character mode: empty, interrupts gone. */
        wr(&p, LCR_H, LCR_H_WLEN8);
        EXPECT_EQ(rd(&p, FR) & FR_RXFE, FR_RXFE);
        EXPECT_EQ(rd(&p, RIS) & (INT_RX | INT_RT), 0);
        EXPECT_FALSE(r.level);
        EXPECT_EQ(pl011_rx_room(&p), 1);
        EXPECT_EQ(in_str(&p, "z"), 1);
        wr(&p, LCR_H, LCR_H_FEN | LCR_H_WLEN8);
        EXPECT_EQ(rd(&p, DR), 0);
        EXPECT_EQ(pl011_rx_room(&p), 32);
}

TEST(input_refused_unless_uarten_and_rxe)
{
        struct pl011 p;

        uart_init(&p, "in");
        wr(&p, LCR_H, LCR_H_FEN);
        EXPECT_EQ(rd(&p, CR), CR_TXE | CR_RXE); /* reset: UARTEN clear */
        EXPECT_EQ(pl011_rx_room(&p), 0);
        EXPECT_EQ(in_str(&p, "a"), 0);
        wr(&p, CR, CR_UARTEN | CR_TXE);
        EXPECT_EQ(pl011_rx_room(&p), 0);
        EXPECT_EQ(in_str(&p, "a"), 0);
        EXPECT_EQ(p.rx_bytes, 0);
        EXPECT_EQ(rd(&p, RIS), 0);
        wr(&p, CR, CR_ON);
        EXPECT_EQ(pl011_rx_room(&p), 32);
        EXPECT_EQ(in_str(&p, "ab"), 2);
        /* Disabling keeps what was received readable, but takes nothing more. */
        wr(&p, CR, CR_UARTEN | CR_TXE);
        EXPECT_EQ(in_str(&p, "c"), 0);
        EXPECT_EQ(rd(&p, DR), 'a');
        EXPECT_EQ(rd(&p, DR), 'b');
        EXPECT_EQ(p.rx_bytes, 2);
}

TEST(set_irq_drives_current_level_once)
{
        struct pl011 p;
        struct line_rec r, r2;

        uart_on(&p, "w");
        wire(&p, &r);
        EXPECT_EQ(r.calls, 1);
        EXPECT_FALSE(r.level);
        EXPECT_EQ(r.pin, 33);
        wr(&p, IMSC, INT_RT);
        EXPECT_EQ(in_str(&p, "a"), 1);
        EXPECT_EQ(r.calls, 2);
        EXPECT_TRUE(r.level);
        /* Accesses that change nothing do not drive the line again. */
        rd(&p, FR);
        wr(&p, IBRD, 1);
        wr(&p, IMSC, INT_RT);
        EXPECT_EQ(r.calls, 2);
        /* Rewiring pushes the current level to the new controller; NULL disconnects. */
        wire(&p, &r2);
        EXPECT_EQ(r2.calls, 1);
        EXPECT_TRUE(r2.level);
        pl011_set_irq(&p, NULL);
        EXPECT_EQ(rd(&p, DR), 'a');
        EXPECT_EQ(r2.calls, 1);
        EXPECT_FALSE(p.irq_level);
}

TEST(rx_and_timeout_interrupts)
{
        struct pl011 p;
        struct line_rec r;
        char many[24];

        memset(many, 'm', sizeof(many) - 1);
        many[sizeof(many) - 1] = '\0';
        uart_on(&p, "rt"); /* trigger: 16 of 32 */
        wire(&p, &r);
        /* Masked: raw status only. */
        EXPECT_EQ(in_str(&p, "abc"), 3);
        EXPECT_EQ(rd(&p, RIS), INT_RT);
        EXPECT_EQ(rd(&p, MIS), 0);
        EXPECT_FALSE(r.level);
        wr(&p, IMSC, INT_RX);
        EXPECT_FALSE(r.level);
        wr(&p, IMSC, INT_RX | INT_RT);
        EXPECT_TRUE(r.level);
        EXPECT_EQ(rd(&p, MIS), INT_RT);
        /* Below the trigger: data left after a read still times out; empty clears it. */
        EXPECT_EQ(rd(&p, DR), 'a');
        EXPECT_EQ(rd(&p, RIS), INT_RT);
        EXPECT_EQ(rd(&p, DR), 'b');
        EXPECT_EQ(rd(&p, DR), 'c');
        EXPECT_EQ(rd(&p, RIS), 0);
        EXPECT_FALSE(r.level);

        /* Reaching the trigger level raises RX; it stays while the level is at or above. */
        EXPECT_EQ(in_str(&p, "0123456789abcde"), 15);
        EXPECT_EQ(rd(&p, RIS), INT_RT);
        EXPECT_EQ(in_str(&p, "fgh"), 3); /* 18 >= 16 */
        EXPECT_EQ(rd(&p, RIS) & INT_RX, INT_RX);
        EXPECT_EQ(rd(&p, DR), '0');
        EXPECT_EQ(rd(&p, DR), '1'); /* 16 left */
        EXPECT_EQ(rd(&p, RIS) & INT_RX, INT_RX);
        EXPECT_EQ(rd(&p, DR), '2'); /* 15: below the trigger, RX drops, RT */
        EXPECT_EQ(rd(&p, RIS), INT_RT);
        EXPECT_TRUE(r.level);
        while (!(rd(&p, FR) & FR_RXFE))
                rd(&p, DR);
        EXPECT_EQ(rd(&p, RIS), 0);
        EXPECT_FALSE(r.level);

        /* A burst straight past the trigger: RX only. */
        EXPECT_EQ(in_str(&p, many), 23);
        EXPECT_EQ(rd(&p, RIS), INT_RX);
        EXPECT_TRUE(r.level);
        /* ICR clears RX; more data above the trigger is no new crossing (as on the PL011). */
        wr(&p, ICR, INT_RX);
        EXPECT_EQ(rd(&p, RIS), 0);
        EXPECT_FALSE(r.level);
        EXPECT_EQ(in_str(&p, "n"), 1);
        EXPECT_EQ(rd(&p, RIS), 0);
        for (unsigned i = 0; i < 8; i++)
                rd(&p, DR); /* 24 -> 16 */
        EXPECT_EQ(rd(&p, RIS), 0);
        rd(&p, DR); /* 15 */
        EXPECT_EQ(rd(&p, RIS), INT_RT);
        EXPECT_TRUE(r.level);
        /* ICR clears RT until the next read or arrival. */
        wr(&p, ICR, INT_RT);
        EXPECT_EQ(rd(&p, RIS), 0);
        EXPECT_FALSE(r.level);
        rd(&p, DR);
        EXPECT_EQ(rd(&p, RIS), INT_RT);
        wr(&p, ICR, 0x7ff);
        EXPECT_FALSE(r.level);
        EXPECT_EQ(in_str(&p, "o"), 1);
        EXPECT_EQ(rd(&p, RIS), INT_RT);
        EXPECT_TRUE(r.level);
        while (!(rd(&p, FR) & FR_RXFE))
                rd(&p, DR);
        EXPECT_FALSE(r.level);

        /* Other trigger levels: 1/8 (4 bytes), and a reserved value acting as 7/8 (28). */
        wr(&p, IFLS, 0x02);
        EXPECT_EQ(in_str(&p, "abc"), 3);
        EXPECT_EQ(rd(&p, RIS), INT_RT);
        EXPECT_EQ(in_str(&p, "d"), 1);
        EXPECT_EQ(rd(&p, RIS), INT_RX | INT_RT);
        while (!(rd(&p, FR) & FR_RXFE))
                rd(&p, DR);
        EXPECT_EQ(rd(&p, RIS), 0);
        wr(&p, IFLS, 0x3a); /* RXIFLSEL 7 */
        EXPECT_EQ(in_str(&p, "0123456789012345678901234567"), 28);
        EXPECT_EQ(rd(&p, RIS) & INT_RX, INT_RX);
        rd(&p, DR);
        EXPECT_EQ(rd(&p, RIS), INT_RT);
}

TEST(rx_interrupt_without_fifo)
{
        struct pl011 p;
        struct line_rec r;

        uart_init(&p, "c");
        wr(&p, CR, CR_ON);
        wire(&p, &r);
        wr(&p, IMSC, INT_RX | INT_RT);
        EXPECT_EQ(in_str(&p, "x"), 1);
        EXPECT_EQ(rd(&p, RIS), INT_RX); /* the holding register is full: RX, no timeout */
        EXPECT_TRUE(r.level);
        EXPECT_EQ(rd(&p, DR), 'x');
        EXPECT_EQ(rd(&p, RIS), 0);
        EXPECT_FALSE(r.level);
        EXPECT_EQ(in_str(&p, "y"), 1);
        wr(&p, ICR, INT_RX);
        EXPECT_FALSE(r.level);
        EXPECT_EQ(rd(&p, DR), 'y');
        EXPECT_EQ(r.rises, 2);
}

TEST(tx_interrupt)
{
        struct pl011 p;
        struct line_rec r;

        uart_on(&p, "tx");
        capture_start();
        wire(&p, &r);
        /* As on the PL011: enabling with nothing written raises nothing. */
        wr(&p, IMSC, INT_TX);
        EXPECT_EQ(rd(&p, RIS), 0);
        EXPECT_FALSE(r.level);
        /* A write empties at once: the transmit interrupt follows it. */
        wr(&p, DR, 'a');
        EXPECT_EQ(rd(&p, RIS), INT_TX);
        EXPECT_EQ(rd(&p, MIS), INT_TX);
        EXPECT_TRUE(r.level);
        EXPECT_EQ(r.rises, 1);
        /* Each further write clears it and raises it again: a new edge per write. */
        wr(&p, DR, 'b');
        EXPECT_TRUE(r.level);
        EXPECT_EQ(r.rises, 2);
        EXPECT_EQ(r.calls, 4); /* wire, rise, fall, rise */
        /* ICR clears it until the next write. */
        wr(&p, ICR, INT_TX);
        EXPECT_EQ(rd(&p, RIS), 0);
        EXPECT_FALSE(r.level);
        wr(&p, DR, 'c');
        EXPECT_TRUE(r.level);
        /* Masking drops the line, the raw status stays. */
        wr(&p, IMSC, 0);
        EXPECT_FALSE(r.level);
        EXPECT_EQ(rd(&p, RIS), INT_TX);
        EXPECT_EQ(rd(&p, MIS), 0);
        /* Masked writes do not touch the line. */
        {
                unsigned calls = r.calls;

                wr(&p, DR, '\n');
                EXPECT_EQ(r.calls, calls);
        }
        wr(&p, IMSC, INT_TX);
        EXPECT_TRUE(r.level);
        EXPECT_STREQ(logbuf, "[tx] abc\n");
        log_set_sink(NULL);
}

/* ---- Linux's amba-pl011 driver, replayed: startup, interrupt handler, transmit ---- */

struct linux_port {
        uint32_t im; /* uap->im */
        const char *tx;
        char got[64];
        size_t ngot;
};

/* pl011_tx_chars: up to fifosize / 2 (8: Linux sizes an r1 PL011's FIFO as 16) from the IRQ. */
static bool linux_tx_chars(struct pl011 *p, struct linux_port *lp, bool from_irq)
{
        int count = 8;

        if (!*lp->tx) {
                lp->im &= ~(uint32_t)INT_TX; /* pl011_stop_tx */
                wr(p, IMSC, lp->im);
                return false;
        }
        do {
                if (from_irq && count-- == 0)
                        break;
                if (!from_irq && (rd(p, FR) & FR_TXFF))
                        break;
                wr(p, DR, (uint8_t)*lp->tx++);
        } while (*lp->tx);
        if (!*lp->tx) {
                lp->im &= ~(uint32_t)INT_TX;
                wr(p, IMSC, lp->im);
                return false;
        }
        return true;
}

static void linux_startup(struct pl011 *p, struct linux_port *lp)
{
        /* pl011_hwinit */
        wr(p, ICR, 0x780 | INT_RT | INT_RX); /* OE, BE, PE, FE, RT, RX */
        lp->im = rd(p, IMSC);
        wr(p, IMSC, INT_RT | INT_RX);
        /* pl011_startup */
        wr(p, IFLS, 0x12);
        wr(p, CR, CR_ON);
        (void)rd(p, FR);
        /* pl011_enable_interrupts */
        wr(p, ICR, INT_RT | INT_RX);
        for (unsigned i = 0; i < 32 && !(rd(p, FR) & FR_RXFE); i++)
                rd(p, DR);
        lp->im = INT_RT | INT_RX;
        wr(p, IMSC, lp->im);
        /* pl011_set_termios: 115200 8N1 from a 24 MHz clock, FIFOs on */
        wr(p, IBRD, 13);
        wr(p, FBRD, 1);
        wr(p, LCR_H, LCR_H_WLEN8 | LCR_H_FEN);
}

/* pl011_int: one call of the handler; returns whether the status was non-zero. */
static bool linux_irq(struct pl011 *p, struct linux_port *lp)
{
        uint32_t status = rd(p, RIS) & lp->im;
        unsigned pass = 256;
        bool handled = status != 0;

        while (status) {
                wr(p, ICR, status & ~(uint32_t)(INT_TX | INT_RT | INT_RX));
                if (status & (INT_RT | INT_RX)) {
                        for (unsigned max = 256; max-- && !(rd(p, FR) & FR_RXFE);) {
                                uint32_t ch = rd(p, DR);

                                if (lp->ngot < sizeof(lp->got))
                                        lp->got[lp->ngot++] = (char)ch;
                        }
                }
                if (status & INT_TX)
                        linux_tx_chars(p, lp, true);
                if (pass-- == 0)
                        break;
                status = rd(p, RIS) & lp->im;
        }
        return handled;
}

TEST(linux_driver_replay)
{
        struct pl011 p;
        struct line_rec r;
        struct linux_port lp = {0};

        uart_init(&p, "lx");
        capture_start();
        wire(&p, &r);
        linux_startup(&p, &lp);
        EXPECT_FALSE(r.level);
        EXPECT_EQ(rd(&p, FR) & (FR_BUSY | FR_TXFF), 0); /* pl011_tx_empty: TIOCSER_TEMT */

        /* Typing: the line rises, one handler call drains it, the line falls. */
        EXPECT_EQ(in_str(&p, "ls\r"), 3);
        EXPECT_TRUE(r.level);
        EXPECT_TRUE(linux_irq(&p, &lp));
        EXPECT_FALSE(r.level);
        EXPECT_EQ(lp.ngot, 3);
        EXPECT_TRUE(memcmp(lp.got, "ls\r", 3) == 0);

        /* start_tx: the FIFO is never full, everything goes out, TXIM is never needed. */
        lp.tx = "# ls\n";
        EXPECT_FALSE(linux_tx_chars(&p, &lp, false));
        EXPECT_EQ(lp.im, INT_RT | INT_RX);
        EXPECT_FALSE(r.level);
        EXPECT_STREQ(logbuf, "[lx] # ls\n");

        /* The interrupt-driven path: TXIM after a write, refills of 8 until done. */
        lp.tx = "0123456789abcdefghij\n";
        wr(&p, DR, (uint8_t)*lp.tx++);
        lp.im |= INT_TX;
        wr(&p, IMSC, lp.im);
        EXPECT_TRUE(r.level);
        EXPECT_TRUE(linux_irq(&p, &lp));
        EXPECT_FALSE(r.level);
        EXPECT_EQ(lp.im, INT_RT | INT_RX);
        EXPECT_STREQ(logbuf, "[lx] # ls\n[lx] 0123456789abcdefghij\n");
        EXPECT_FALSE(linux_irq(&p, &lp)); /* nothing left: a spurious call finds nothing */

        /* A burst larger than the FIFO: the host keeps the rest and retries after the drain. */
        {
                static const char burst[] = "the quick brown fox jumps over the lazy dog";
                size_t n = sizeof(burst) - 1, off = 0;

                lp.ngot = 0;
                for (unsigned round = 0; round < 4 && off < n; round++) {
                        off += pl011_input(&p, (const uint8_t *)burst + off, n - off);
                        if (r.level)
                                linux_irq(&p, &lp);
                }
                EXPECT_EQ(off, n);
                EXPECT_EQ(lp.ngot, n);
                EXPECT_TRUE(memcmp(lp.got, burst, n) == 0);
                EXPECT_FALSE(r.level);
        }
        log_set_sink(NULL);
}

/* ---- a hostile guest ---- */

TEST(bad_offsets_and_sizes_are_raz_wi)
{
        static const uint64_t offsets[] = {
            0x001,
            0x002,
            0x003,
            0x005,
            0x008,
            0x00c,
            0x010,
            0x014,
            0x01c,
            0x04c,
            0x050,
            0x100,
            0xfdc,
            0xfe1,
            0xffd,
            0xffe,
            0xfff,
            0x1000,
            0x1004,
            0xffffffffull,
            0xfffffffffffffffcull,
            0x8000000000000000ull,
        };
        static const unsigned sizes[] = {0, 3, 5, 8, 16, 0xffffffffu};
        struct pl011 p;
        unsigned bad = 0;

        uart_on(&p, "bad");
        capture_start();
        wr(&p, IMSC, 0x7ff);
        EXPECT_EQ(in_str(&p, "q"), 1);
        for (unsigned i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
                for (unsigned size = 1; size <= 4; size <<= 1) {
                        EXPECT_EQ(rd_sz(&p, offsets[i], size), 0);
                        wr_sz(&p, offsets[i], size, 0xffffffffffffffffull);
                        bad += 2;
                }
        }
        /* Wrong sizes at real registers, DR included: nothing popped, nothing sent. */
        for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                static const uint64_t regs[] = {DR, FR, CR, IMSC, ICR, 0xfe0};

                for (unsigned j = 0; j < sizeof(regs) / sizeof(regs[0]); j++) {
                        EXPECT_EQ(rd_sz(&p, regs[j], sizes[i]), 0);
                        wr_sz(&p, regs[j], sizes[i], 0);
                        bad += 2;
                }
        }
        EXPECT_EQ(p.bad_accesses, bad);
        EXPECT_EQ(con.tx_bytes, 0);
        EXPECT_EQ(rd(&p, CR), CR_ON);
        EXPECT_EQ(rd(&p, IMSC), 0x7ff);
        EXPECT_EQ(rd(&p, RIS), INT_RT);
        EXPECT_EQ(rd(&p, DR), 'q');
        EXPECT_STREQ(logbuf, "");
        log_set_sink(NULL);
}

/* Random accesses: the state stays in bounds and the line follows (RIS & IMSC) != 0. */
TEST(random_accesses_keep_invariants)
{
        struct pl011 p;
        struct line_rec r;
        uint32_t x = 4242;

        uart_init(&p, "rnd");
        capture_start();
        wire(&p, &r);
        for (unsigned i = 0; i < 200000; i++) {
                uint64_t off, v;
                unsigned size;

                x = x * 1103515245u + 12345u;
                off = (x >> 20) % 3 ? ((x >> 8) % 0x13) * 4 : (x >> 8) % 0x1010;
                if ((x >> 28) == 0)
                        off = 0xfe0 + ((x >> 8) % 8) * 4;
                size = 1u << ((x >> 4) % 4);
                if ((x >> 24) % 16 == 0)
                        size = (x >> 6) % 10;
                v = x >> 3;
                if ((x >> 7) % 5 == 0) {
                        uint8_t b[40];

                        memset(b, (int)v, sizeof(b));
                        ASSERT_TRUE(pl011_input(&p, b, v % 40) <= PL011_FIFO_SIZE);
                } else if ((x >> 12) & 1) {
                        pl011_ops.write(&p, off, size, v);
                } else {
                        pl011_ops.read(&p, off, size, &v);
                        if (size == 1 || size == 2)
                                ASSERT_TRUE(v >> (8 * size) == 0);
                        ASSERT_TRUE(v <= 0xffff);
                }
                ASSERT_TRUE(p.rx_count <= (p.lcr_h & LCR_H_FEN ? PL011_FIFO_SIZE : 1u));
                ASSERT_TRUE(p.rx_head < PL011_FIFO_SIZE);
                ASSERT_TRUE((p.ris & ~0x7ffu) == 0 && (p.imsc & ~0x7ffu) == 0);
                ASSERT_TRUE(r.level == p.irq_level);
                ASSERT_TRUE(r.level == ((p.ris & p.imsc) != 0));
                ASSERT_TRUE(con.len <= VCONS_LINE_MAX);
        }
        log_set_sink(NULL);
}

/* The model on a VM's MMIO bus, as the arch registers it. */
TEST(on_the_mmio_bus)
{
        struct mmio_bus bus;
        struct pl011 p;
        uint64_t v = 0;

        uart_on(&p, "bus");
        capture_start();
        mmio_bus_init(&bus);
        EXPECT_EQ(mmio_bus_add(&bus, gpa(0x09000000), PL011_MMIO_SIZE, &pl011_ops, &p, "pl011"), 0);
        EXPECT_TRUE(mmio_bus_access(&bus, gpa(0x09000fe0), 4, false, &v));
        EXPECT_EQ(v, 0x11);
        v = 'k';
        EXPECT_TRUE(mmio_bus_access(&bus, gpa(0x09000000), 1, true, &v));
        v = '\n';
        EXPECT_TRUE(mmio_bus_access(&bus, gpa(0x09000000), 4, true, &v));
        EXPECT_TRUE(mmio_bus_access(&bus, gpa(0x09000018), 8, false, &v)); /* 8: RAZ */
        EXPECT_EQ(v, 0);
        EXPECT_FALSE(mmio_bus_access(&bus, gpa(0x09001000), 4, false, &v));
        EXPECT_STREQ(logbuf, "[bus] k\n");
        log_set_sink(NULL);
}

TEST_MAIN()
