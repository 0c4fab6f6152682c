/* Tests for vmm/vuart.c: line assembly, prefix, flush and the 16550 register model. */
#include <keel/log.h>
#include <vmm/vuart.h>

#include "log_capture.h"
#include "test.h"

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

        vuart_init(&u, "vm1");
        capture_start();
        put(&u, "hello\nworld");
        EXPECT_STREQ(logbuf, "[vm1] hello\n");
        put(&u, "!\r\n");
        EXPECT_STREQ(logbuf, "[vm1] hello\n[vm1] world!\n");
        EXPECT_EQ(u.tx_bytes, 14);
        EXPECT_EQ(u.len, 0);
        log_set_sink(NULL);
}

TEST(empty_line_and_cr_only)
{
        struct vuart u;

        vuart_init(&u, "e");
        capture_start();
        put(&u, "\n\r\r\n");
        EXPECT_STREQ(logbuf, "[e] \n[e] \n");
        log_set_sink(NULL);
}

TEST(non_printable_bytes_shown_as_dots)
{
        struct vuart u;

        vuart_init(&u, "np");
        capture_start();
        wr(&u, 0, 0x1b); /* ESC */
        put(&u, "[2J");
        wr(&u, 0, 0x00);
        wr(&u, 0, 0x7f);
        wr(&u, 0, 0xc3);
        put(&u, "a\tb\n");
        EXPECT_STREQ(logbuf, "[np] .[2J...a\tb\n");
        log_set_sink(NULL);
}

TEST(full_buffer_emits_and_continues)
{
        struct vuart u;
        char want[3 * VUART_LINE_MAX];
        int n;

        vuart_init(&u, "f");
        capture_start();
        for (unsigned i = 0; i < VUART_LINE_MAX; i++)
                wr(&u, 0, 'a' + i % 26);
        /* Exactly full: nothing emitted until the next byte arrives. */
        EXPECT_STREQ(logbuf, "");
        EXPECT_EQ(u.len, VUART_LINE_MAX);
        put(&u, "XY\n");
        n = snprintf(want, sizeof(want), "[f] ");
        for (unsigned i = 0; i < VUART_LINE_MAX; i++)
                want[n++] = (char)('a' + i % 26);
        snprintf(want + n, sizeof(want) - n, "\n[f] XY\n");
        EXPECT_STREQ(logbuf, want);
        log_set_sink(NULL);
}

TEST(line_of_exactly_max_is_one_line)
{
        struct vuart u;

        vuart_init(&u, "m");
        capture_start();
        for (unsigned i = 0; i < VUART_LINE_MAX; i++)
                wr(&u, 0, 'z');
        wr(&u, 0, '\n');
        EXPECT_EQ(strlen(logbuf), 4 + VUART_LINE_MAX + 1);
        EXPECT_EQ(logbuf[strlen(logbuf) - 1], '\n');
        EXPECT_TRUE(strchr(logbuf, '\n') == logbuf + strlen(logbuf) - 1);
        log_set_sink(NULL);
}

TEST(flush_emits_partial_line_once)
{
        struct vuart u;

        vuart_init(&u, "fl");
        capture_start();
        vuart_flush(&u);
        EXPECT_STREQ(logbuf, "");
        put(&u, "partial");
        vuart_flush(&u);
        EXPECT_STREQ(logbuf, "[fl] partial\n");
        vuart_flush(&u);
        EXPECT_STREQ(logbuf, "[fl] partial\n");
        put(&u, "next\n");
        EXPECT_STREQ(logbuf, "[fl] partial\n[fl] next\n");
        log_set_sink(NULL);
}

TEST(status_registers)
{
        struct vuart u;

        vuart_init(&u, "s");
        EXPECT_EQ(rd(&u, 5), 0x60); /* LSR: THRE | TEMT, no data */
        EXPECT_EQ(rd(&u, 2), 0x01); /* IIR: no interrupt pending */
        EXPECT_EQ(rd(&u, 0), 0);    /* RBR: nothing received */
        EXPECT_EQ(rd(&u, 6), 0xb0); /* MSR: DCD | DSR | CTS */
        /* Writes to LSR, MSR and FCR change nothing readable. */
        wr(&u, 5, 0);
        wr(&u, 6, 0xff);
        wr(&u, 2, 0xc7);
        EXPECT_EQ(rd(&u, 5), 0x60);
        EXPECT_EQ(rd(&u, 6), 0xb0);
        EXPECT_EQ(rd(&u, 2), 0x01);
        EXPECT_EQ(rd(&u, 8), 0xff); /* beyond the UART */
        wr(&u, 8, 0x12);
        EXPECT_EQ(u.tx_bytes, 0);
}

TEST(register_readback)
{
        struct vuart u;

        vuart_init(&u, "r");
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
        EXPECT_EQ(u.tx_bytes, 0);
        wr(&u, 3, 0x03);
        EXPECT_EQ(rd(&u, 1), 0x0f); /* IER unchanged by DLM writes */
        EXPECT_EQ(rd(&u, 0), 0);
        EXPECT_EQ(u.dll, 0x01);
        EXPECT_EQ(u.dlm, 0x80);
        EXPECT_STREQ(logbuf, "");
        log_set_sink(NULL);
}

TEST(loopback_msr_and_no_transmit)
{
        struct vuart u;

        vuart_init(&u, "lb");
        capture_start();
        wr(&u, 4, 0x10); /* loop, all outputs off */
        EXPECT_EQ(rd(&u, 6), 0x00);
        wr(&u, 4, 0x10 | 0x0a); /* RTS | OUT2 -> CTS | DCD, as Linux's 8250 probe expects */
        EXPECT_EQ(rd(&u, 6), 0x90);
        wr(&u, 4, 0x1f);
        EXPECT_EQ(rd(&u, 6), 0xf0);
        wr(&u, 4, 0x11); /* DTR -> DSR */
        EXPECT_EQ(rd(&u, 6), 0x20);
        wr(&u, 4, 0x14); /* OUT1 -> RI */
        EXPECT_EQ(rd(&u, 6), 0x40);
        put(&u, "x\n");
        EXPECT_EQ(u.tx_bytes, 0);
        wr(&u, 4, 0x03);
        EXPECT_EQ(rd(&u, 6), 0xb0);
        put(&u, "y\n");
        EXPECT_STREQ(logbuf, "[lb] y\n");
        log_set_sink(NULL);
}

TEST(init_resets_everything)
{
        struct vuart u;

        memset(&u, 0xee, sizeof(u));
        vuart_init(&u, "i");
        EXPECT_EQ(u.len, 0);
        EXPECT_EQ(u.tx_bytes, 0);
        EXPECT_EQ(rd(&u, 1), 0);
        EXPECT_EQ(rd(&u, 3), 0);
        EXPECT_EQ(rd(&u, 4), 0);
        EXPECT_EQ(rd(&u, 7), 0);
        EXPECT_STREQ(u.prefix, "i");
}

TEST_MAIN()
