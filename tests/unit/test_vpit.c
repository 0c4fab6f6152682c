/* Tests for arch/x86_64/vpit.c: SeaBIOS's start state, the counting of each mode and its OUT,
 * channel 0's IRQ 0 edges and their deadline, latch and read-back commands, access modes and
 * their flip-flops, the BCD bit, channel 2's gate and port 0x61, snapshots. */
#include <stdint.h>
#include <string.h>

#include <arch/vpit.h>
#include <keel/errno.h>
#include <vmm/snapshot.h>

#include "test.h"

/* A TSC at two cycles per PIT clock, from T0: clock n is TSC T0 + 2n. */
#define HZ2  (2ull * VPIT_HZ)
#define T0   1000000ull
#define T(n) (T0 + 2ull * (n))

static void out(struct vpit *p, uint16_t port, uint8_t v, uint64_t now)
{
        EXPECT_TRUE(vpit_io(p, port, false, &v, now));
}

static uint8_t in(struct vpit *p, uint16_t port, uint64_t now)
{
        uint8_t v = 0x5a;

        EXPECT_TRUE(vpit_io(p, port, true, &v, now));
        return v;
}

/* A word read of channel `ch` (LSB then MSB) at `now`. */
static unsigned word(struct vpit *p, unsigned ch, uint64_t now)
{
        unsigned lo = in(p, (uint16_t)(0x40 + ch), now);

        return lo | in(p, (uint16_t)(0x40 + ch), now) << 8;
}

/* Channel `ch`'s status byte through the read-back command. */
static uint8_t status(struct vpit *p, unsigned ch, uint64_t now)
{
        out(p, 0x43, (uint8_t)(0xe0 | 2u << ch), now);
        return in(p, (uint16_t)(0x40 + ch), now);
}

/* Mode `mode` on channel `ch`, word access, binary, with `count`, at `now`. */
static void program(struct vpit *p, unsigned ch, unsigned mode, unsigned count, uint64_t now)
{
        out(p, 0x43, (uint8_t)(ch << 6 | 0x30 | mode << 1), now);
        out(p, (uint16_t)(0x40 + ch), (uint8_t)count, now);
        out(p, (uint16_t)(0x40 + ch), (uint8_t)(count >> 8), now);
}

TEST(bios_state_channel_0_mode_2_at_18_2_hz)
{
        struct vpit p;

        vpit_init(&p, HZ2, T0);
        EXPECT_EQ(status(&p, 0, T0), 0xb4); /* OUT high, count loaded, word, mode 2, binary */
        EXPECT_EQ(status(&p, 1, T0), 0xb6);
        EXPECT_EQ(word(&p, 0, T0), 0);       /* 65536 */
        EXPECT_EQ(word(&p, 0, T(1)), 65535); /* counting down at once */
        EXPECT_EQ(word(&p, 0, T(40000)), 65536 - 40000);
        EXPECT_EQ(p.irq_at, T(65536));            /* the first IRQ 0: 54.9 ms on */
        EXPECT_EQ(in(&p, 0x61, T0) & 0x2f, 0x20); /* gate 2 low, OUT 2 high (mode 3, held) */
        EXPECT_EQ(in(&p, 0x43, T0), 0xff);
        uint8_t v = 0;
        EXPECT_FALSE(vpit_io(&p, 0x44, true, &v, T0));
        EXPECT_FALSE(vpit_io(&p, 0x3f, false, &v, T0));
        EXPECT_FALSE(vpit_io(&p, 0x60, true, &v, T0));
}

TEST(irq0_edges_each_period_missed_ones_count_once)
{
        struct vpit p;

        vpit_init(&p, HZ2, T0);
        EXPECT_FALSE(vpit_update(&p, T0));
        EXPECT_FALSE(vpit_update(&p, T(65536) - 1));
        EXPECT_TRUE(vpit_update(&p, T(65536)));
        EXPECT_FALSE(vpit_update(&p, T(65536)));
        EXPECT_EQ(p.irq_at, T(2 * 65536));
        /* Ten periods without a look: one edge, and the next is the next period's end. */
        EXPECT_TRUE(vpit_update(&p, T(12 * 65536 + 5)));
        EXPECT_FALSE(vpit_update(&p, T(12 * 65536 + 6)));
        EXPECT_EQ(p.irq_at, T(13 * 65536));
        /* OUT is low for the one clock before each reload. */
        EXPECT_EQ(status(&p, 0, T(13 * 65536 - 1)) & 0x80, 0);
        EXPECT_EQ(status(&p, 0, T(13 * 65536)) & 0x80, 0x80);
}

TEST(irq0_deadline_is_exact_at_a_real_tsc_rate)
{
        static const uint64_t rates[] = {2596190000ull, 3000000000ull, 1000000000ull, 7};
        for (unsigned i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
                struct vpit p;
                uint64_t now = 123456789012345ull;

                vpit_init(&p, rates[i], now);
                for (unsigned k = 0; k < 50; k++) {
                        uint64_t at = p.irq_at;

                        EXPECT_TRUE(at > now);
                        EXPECT_FALSE(vpit_update(&p, at - 1));
                        EXPECT_TRUE(vpit_update(&p, at));
                        now = at;
                }
                /* 50 periods of 65536 clocks (2.746 s) to within a cycle; a 7 Hz TSC sees
                 * several periods per cycle, each update's edges counting once. */
                uint64_t want = 123456789012345ull + 50ull * 65536 * rates[i] / VPIT_HZ;
                EXPECT_TRUE(rates[i] < VPIT_HZ || (now >= want && now <= want + 1));
        }
}

TEST(control_word_stops_the_count_and_irq0)
{
        struct vpit p;

        vpit_init(&p, HZ2, T0);
        out(&p, 0x43, 0x34, T(10)); /* mode 2 again, no count yet */
        EXPECT_EQ(p.irq_at, UINT64_MAX);
        EXPECT_FALSE(vpit_update(&p, T(1000000)));
        EXPECT_EQ(status(&p, 0, T(11)), 0xf4); /* OUT high, null count */
        out(&p, 0x40, 0x00, T(20));
        EXPECT_EQ(p.irq_at, UINT64_MAX); /* word access: half a count */
        out(&p, 0x40, 0x10, T(20));      /* 0x1000 */
        EXPECT_EQ(p.irq_at, T(20 + 0x1000));
        EXPECT_EQ(status(&p, 0, T(21)), 0xb4);
        EXPECT_EQ(word(&p, 0, T(20 + 0x1000 - 1)), 1);
        EXPECT_EQ(word(&p, 0, T(20 + 0x1000)), 0x1000); /* reloaded */
}

TEST(mode_0_interrupts_once_on_terminal_count)
{
        struct vpit p;

        vpit_init(&p, HZ2, T0);
        program(&p, 0, 0, 100, T0);
        EXPECT_EQ(status(&p, 0, T(99)) & 0x80, 0); /* OUT low while counting */
        EXPECT_FALSE(vpit_update(&p, T(99)));
        EXPECT_EQ(status(&p, 0, T(100)) & 0x80, 0x80);
        EXPECT_TRUE(vpit_update(&p, T(100)));
        EXPECT_EQ(p.irq_at, UINT64_MAX);
        EXPECT_FALSE(vpit_update(&p, T(100000)));
        EXPECT_EQ(word(&p, 0, T(101)), 0xffff); /* counts on past 0 */
        EXPECT_EQ(status(&p, 0, T(65536 + 101)) & 0x80, 0x80);
        /* A control word alone: mode 0's OUT goes low. */
        out(&p, 0x43, 0x30, T(200000));
        EXPECT_EQ(status(&p, 0, T(200001)) & 0x80, 0);
}

TEST(mode_3_square_wave_counts_by_two)
{
        struct vpit p;

        vpit_init(&p, HZ2, T0);
        program(&p, 0, 3, 1000, T0);
        EXPECT_EQ(word(&p, 0, T(1)), 998);
        EXPECT_EQ(word(&p, 0, T(499)), 2);
        EXPECT_EQ(word(&p, 0, T(500)), 1000);
        EXPECT_EQ(word(&p, 0, T(501)), 998);
        EXPECT_EQ(status(&p, 0, T(499)) & 0x80, 0x80); /* high for the first half */
        EXPECT_EQ(status(&p, 0, T(500)) & 0x80, 0);
        EXPECT_EQ(status(&p, 0, T(999)) & 0x80, 0);
        EXPECT_EQ(status(&p, 0, T(1000)) & 0x80, 0x80);
        EXPECT_EQ(p.irq_at, T(1000));
        /* Modes 6 and 7 are 2 and 3. */
        out(&p, 0x43, 0x3e, T(2000));
        EXPECT_EQ(status(&p, 0, T(2000)) & 0x3f, 0x36);
        out(&p, 0x43, 0x3c, T(2000));
        EXPECT_EQ(status(&p, 0, T(2000)) & 0x3f, 0x34);
}

TEST(mode_4_strobe_one_clock_after_terminal_count)
{
        struct vpit p;

        vpit_init(&p, HZ2, T0);
        program(&p, 0, 4, 50, T0);
        EXPECT_EQ(p.irq_at, T(51));
        EXPECT_EQ(status(&p, 0, T(49)) & 0x80, 0x80);
        EXPECT_EQ(status(&p, 0, T(50)) & 0x80, 0);
        EXPECT_EQ(status(&p, 0, T(51)) & 0x80, 0x80);
        EXPECT_TRUE(vpit_update(&p, T(51)));
        EXPECT_FALSE(vpit_update(&p, T(65536 + 51)));
}

TEST(short_periods_reach_irq0_at_most_every_200us)
{
        struct vpit p;

        vpit_init(&p, HZ2, T0);
        program(&p, 0, 2, 2, T0);
        EXPECT_EQ(word(&p, 0, T(1)), 1); /* the count runs at the PIT's rate */
        EXPECT_EQ(word(&p, 0, T(2)), 2);
        EXPECT_EQ(p.irq_at, T(VPIT_MIN_IRQ_PERIOD));
        EXPECT_TRUE(vpit_update(&p, T(VPIT_MIN_IRQ_PERIOD)));
        EXPECT_EQ(p.irq_at, T(2 * VPIT_MIN_IRQ_PERIOD));
        /* A count of 1 (illegal in mode 2): no division by zero, OUT stays high. */
        program(&p, 0, 2, 1, T(1000));
        EXPECT_EQ(word(&p, 0, T(1005)), 1);
        EXPECT_EQ(status(&p, 0, T(1005)) & 0x80, 0x80);
        program(&p, 0, 3, 1, T(1000));
        EXPECT_EQ(word(&p, 0, T(1005)), 1);
}

TEST(counter_latch_holds_until_read)
{
        struct vpit p;

        vpit_init(&p, HZ2, T0);
        out(&p, 0x43, 0x00, T(100)); /* latch channel 0: 65436 */
        out(&p, 0x43, 0x00, T(200)); /* ignored: still latched */
        EXPECT_EQ(in(&p, 0x40, T(300)), 65436 & 0xff);
        EXPECT_EQ(in(&p, 0x40, T(400)), 65436 >> 8);
        EXPECT_EQ(word(&p, 0, T(500)), 65036); /* live again */
        /* Read-back: status and count of channels 0 and 2; status first. */
        out(&p, 0x43, 0xca, T(600));
        EXPECT_EQ(in(&p, 0x40, T(700)), 0xb4);
        EXPECT_EQ(word(&p, 0, T(800)), 64936);
        EXPECT_EQ(in(&p, 0x42, T(900)), 0x36 | 0x80);
        EXPECT_EQ(word(&p, 2, T(900)), 0); /* held by its low gate since T0 */
        /* Read-back of nothing (bits 3:1 clear) changes nothing. */
        out(&p, 0x43, 0xc0, T(1000));
        EXPECT_EQ(word(&p, 0, T(1000)), 64536);
}

TEST(lsb_and_msb_access)
{
        struct vpit p;

        vpit_init(&p, HZ2, T0);
        out(&p, 0x43, 0x54, T0); /* channel 1, LSB only, mode 2 */
        out(&p, 0x41, 0x80, T0);
        EXPECT_EQ(in(&p, 0x41, T(0x10)), 0x70);
        EXPECT_EQ(in(&p, 0x41, T(0x10)), 0x70); /* no flip-flop */
        out(&p, 0x43, 0x64, T0);                /* MSB only */
        out(&p, 0x41, 0x02, T0);                /* 0x200 */
        EXPECT_EQ(in(&p, 0x41, T(0x101)), 0x00);
        EXPECT_EQ(in(&p, 0x41, T(0x100)), 0x01);
        /* A word read left half done by a control word starts again with the LSB. */
        program(&p, 1, 2, 0x1234, T0);
        EXPECT_EQ(in(&p, 0x41, T0), 0x34);
        program(&p, 1, 2, 0x5678, T0);
        EXPECT_EQ(in(&p, 0x41, T0), 0x78);
        EXPECT_EQ(in(&p, 0x41, T0), 0x56);
}

TEST(bcd_bit_kept_counting_binary)
{
        struct vpit p;

        vpit_init(&p, HZ2, T0);
        out(&p, 0x43, 0x31, T0); /* word, mode 0, BCD */
        out(&p, 0x40, 0x00, T0);
        out(&p, 0x40, 0x10, T0); /* 0x1000: counted as 4096 (documented) */
        EXPECT_EQ(status(&p, 0, T0) & 0x3f, 0x31);
        EXPECT_EQ(word(&p, 0, T(1)), 0x0fff);
        EXPECT_EQ(p.irq_at, T(0x1000));
}

TEST(channel_2_gate_and_port_61)
{
        struct vpit p;

        vpit_init(&p, HZ2, T0);
        /* As SeaBIOS and Linux calibrate: gate on, speaker off, mode 0 with 0x800. */
        out(&p, 0x61, 0x01, T0);
        program(&p, 2, 0, 0x800, T0);
        EXPECT_EQ(in(&p, 0x61, T(0x7ff)) & 0x23, 0x01); /* OUT 2 low */
        EXPECT_EQ(in(&p, 0x61, T(0x800)) & 0x23, 0x21);
        EXPECT_EQ(p.irq_at, T(65536)); /* channel 0 unaffected */
        /* A low gate holds mode 0; raising it resumes the count where it was. */
        program(&p, 2, 0, 1000, T(10000));
        out(&p, 0x61, 0x00, T(10100));
        EXPECT_EQ(word(&p, 2, T(20000)), 900);
        out(&p, 0x61, 0x03, T(20000));
        EXPECT_EQ(word(&p, 2, T(20050)), 850);
        EXPECT_EQ(in(&p, 0x61, T(20050)) & 0x0f, 0x03);
        /* Mode 2: a low gate forces OUT high, a rising one reloads. */
        program(&p, 2, 2, 100, T(30000));
        EXPECT_EQ(word(&p, 2, T(30040)), 60);
        out(&p, 0x61, 0x00, T(30040));
        out(&p, 0x61, 0x01, T(30050));
        EXPECT_EQ(word(&p, 2, T(30060)), 90);
        /* Mode 1: the gate's rising edge triggers. */
        program(&p, 2, 1, 100, T(40000));
        out(&p, 0x61, 0x00, T(40050));
        out(&p, 0x61, 0x01, T(40060));
        EXPECT_EQ(in(&p, 0x61, T(40159)) & 0x20, 0);
        EXPECT_EQ(in(&p, 0x61, T(40160)) & 0x20, 0x20);
        /* Bits 4-7 are not written; bit 4 toggles every 18 clocks. */
        out(&p, 0x61, 0xf0, T(50000));
        EXPECT_EQ(in(&p, 0x61, T(50000)) & 0x0f, 0);
        uint8_t a = in(&p, 0x61, T(18 * 3000)) & 0x10, b = in(&p, 0x61, T(18 * 3001)) & 0x10;
        EXPECT_NE(a, b);
}

TEST(snapshot_round_trip_and_refusals)
{
        struct vpit p, q;
        uint8_t buf[128];
        char why[128];
        struct snap_buf b = {.buf = buf, .cap = sizeof(buf)};

        vpit_init(&p, HZ2, T0);
        program(&p, 0, 3, 1234, T(5));
        program(&p, 2, 0, 777, T(6));
        out(&p, 0x61, 0x01, T(7));
        out(&p, 0x43, 0x80, T(8)); /* channel 2 latched */
        vpit_save(&p, &b);
        EXPECT_EQ(b.len, 112);
        vpit_init(&q, HZ2, 0);
        for (int apply = 0; apply < 2; apply++) {
                struct snap_rd r = {
                    .p = buf, .len = b.len, .apply = apply, .why = why, .why_len = sizeof(why)};

                EXPECT_EQ(vpit_load(&q, &r), 0);
        }
        EXPECT_EQ(memcmp(&p, &q, sizeof(p)), 0);
        EXPECT_EQ(word(&q, 2, T(500)), 777 - 1); /* the latch (at T(8)) came along */
        /* Values no guest could make: count 0, count 65537, RW 0, mode 6, a ctrl bit 6, a
         * flag 2, channel 0's gate low, channel 2's gate unlike port 0x61, port 0x61 bit 4,
         * a pad byte. */
        static const struct {
                unsigned off;
                uint8_t val[4];
                unsigned n;
        } bad[] = {{16, {0, 0, 0, 0}, 4}, {16, {1, 0, 1, 0}, 4}, {22, {0x06}, 1}, {22, {0x3c}, 1},
                   {22, {0x76}, 1},       {25, {2}, 1},          {26, {0}, 1},    {64 + 26, {0}, 1},
                   {104, {0x10}, 1},      {105, {1}, 1}};
        for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                uint8_t copy[112];
                struct snap_rd r = {.p = copy, .len = 112, .why = why, .why_len = sizeof(why)};

                memcpy(copy, buf, sizeof(copy));
                memcpy(copy + bad[i].off, bad[i].val, bad[i].n);
                q = p;
                EXPECT_EQ(vpit_load(&q, &r), -KEEL_EINVAL);
                EXPECT_EQ(memcmp(&p, &q, sizeof(p)), 0);
        }
        struct snap_rd r = {.p = buf, .len = 111, .why = why, .why_len = sizeof(why)};
        EXPECT_EQ(vpit_load(&q, &r), -KEEL_EINVAL);
}

TEST_MAIN()
