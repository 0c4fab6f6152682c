/*
 * Tests for drivers/uart16550.c, Keel's polled console UART, against a model of its ports:
 * LSR.THRE as the test sets it, every THR write recorded. Each LSR read moves Keel's clock
 * (the fake arch's fake_tsc, 1 tick = 1 ns) by 1 ms, so the driver's time bound is reached
 * after about UART_WAIT_MS reads. The driver's source is compiled into this test with the
 * model's io_read8/io_write8 in place of the x86 port instructions.
 */
#include <stdbool.h>
#include <stdint.h>

#define ARCH_IO_H /* the model's port I/O below, not arch/x86_64's */
static void io_write8(uint16_t port, uint8_t v);
static uint8_t io_read8(uint16_t port);

#include "../../drivers/uart16550.c"

#include "test.h"

extern uint64_t fake_tsc;

#define BASE 0x3f8

static bool thre;           /* the transmitter takes a character */
static unsigned busy_reads; /* before that, this many LSR reads see it busy */
static char sent[64];       /* what reached THR */
static unsigned nsent, lsr_reads;

static void io_write8(uint16_t port, uint8_t v)
{
        if (port == BASE + UART_THR && nsent < sizeof(sent))
                sent[nsent++] = (char)v;
}

static uint8_t io_read8(uint16_t port)
{
        if (port != BASE + UART_LSR)
                return 0;
        lsr_reads++;
        fake_tsc += 1000000; /* 1 ms per read */
        if (busy_reads) {
                busy_reads--;
                return 0;
        }
        return thre ? LSR_THRE : 0;
}

static void reset_model(void)
{
        thre = true;
        nsent = lsr_reads = busy_reads = 0;
        stuck_base = 0;
}

TEST(free_transmitter_sends_at_once)
{
        reset_model();
        uart16550_putc(BASE, 'a');
        uart16550_putc(BASE, 'b');
        EXPECT_EQ(nsent, 2u);
        EXPECT_EQ(sent[0], 'a');
        EXPECT_EQ(sent[1], 'b');
        EXPECT_EQ(lsr_reads, 2u);
}

TEST(busy_transmitter_is_waited_for_then_counts_as_stuck)
{
        uint64_t t0;

        reset_model();
        thre = false;
        t0 = fake_tsc;
        uart16550_putc(BASE, 'x'); /* waits its bound, then goes out anyway */
        EXPECT_EQ(nsent, 1u);
        EXPECT_TRUE(fake_tsc - t0 >= (uint64_t)UART_WAIT_MS * 1000000);
        EXPECT_TRUE(fake_tsc - t0 <= (uint64_t)(UART_WAIT_MS + 2) * 1000000);
        /* Stuck: the next characters look once and do not wait. */
        lsr_reads = 0;
        uart16550_putc(BASE, 'y');
        uart16550_putc(BASE, 'z');
        EXPECT_EQ(nsent, 3u);
        EXPECT_EQ(lsr_reads, 2u);
}

/* The regression: a port that was stuck once waited for nothing ever again, so after one
 * stall of the host's reader the FIFO dropped whatever came while it was full. */
TEST(stuck_port_waits_again_once_thre_was_seen)
{
        uint64_t t0;

        reset_model();
        thre = false;
        uart16550_putc(BASE, '1'); /* stuck */
        thre = true;
        uart16550_putc(BASE, '2'); /* sees THRE: no longer stuck */
        thre = false;
        t0 = fake_tsc;
        lsr_reads = 0;
        uart16550_putc(BASE, '3'); /* busy again: waited for, as for a new port */
        EXPECT_TRUE(lsr_reads > 100u);
        EXPECT_TRUE(fake_tsc - t0 >= (uint64_t)UART_WAIT_MS * 1000000);
        EXPECT_EQ(nsent, 3u);
        EXPECT_EQ(sent[2], '3');
}

/* A transmitter busy for less than the bound: each character waits for it and goes out. */
TEST(short_stall_waits_and_loses_nothing)
{
        reset_model();
        for (unsigned i = 0; i < 3; i++) {
                busy_reads = 10;
                uart16550_putc(BASE, (char)('a' + i));
                EXPECT_EQ(busy_reads, 0u);
        }
        EXPECT_EQ(nsent, 3u);
        EXPECT_EQ(memcmp(sent, "abc", 3), 0);
        EXPECT_EQ(stuck_base, 0);
}

TEST_MAIN()
