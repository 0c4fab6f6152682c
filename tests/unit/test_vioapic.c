/* Tests for arch/x86_64/vioapic.c: registers, edge and level pins, remote IRR, polarity,
 * masking, and the EOI loop through a real vlapic. */
#include <stdint.h>

#include <arch/vioapic.h>
#include <arch/vlapic.h>
#include <vmm/irq.h>

#include "test.h"

struct sink {
        unsigned n;
        uint8_t dest, vector;
        bool logical, level;
        bool refuse;
};

static bool sink_deliver(void *ctx, uint8_t dest, bool logical, uint8_t vector, bool level,
                         bool lowest)
{
        (void)lowest;
        struct sink *s = ctx;

        s->n++;
        s->dest = dest;
        s->logical = logical;
        s->vector = vector;
        s->level = level;
        return !s->refuse;
}

static void setup(struct vioapic *io, struct sink *s)
{
        struct vioapic_cb cb = {.deliver = sink_deliver, .ctx = s};

        memset(s, 0, sizeof(*s));
        vioapic_init(io, &cb);
}

static uint32_t rd(struct vioapic *io, uint32_t reg)
{
        uint64_t v = 0xdeadbeef;

        vioapic_mmio_ops.write(io, VIOAPIC_IOREGSEL, 4, reg);
        vioapic_mmio_ops.read(io, VIOAPIC_IOWIN, 4, &v);
        return (uint32_t)v;
}

static void wr(struct vioapic *io, uint32_t reg, uint32_t val)
{
        vioapic_mmio_ops.write(io, VIOAPIC_IOREGSEL, 4, reg);
        vioapic_mmio_ops.write(io, VIOAPIC_IOWIN, 4, val);
}

static void route(struct vioapic *io, unsigned pin, uint32_t lo, uint8_t dest)
{
        wr(io, VIOAPIC_REG_REDIR + 2 * pin + 1, (uint32_t)dest << 24);
        wr(io, VIOAPIC_REG_REDIR + 2 * pin, lo);
}

#define LEVEL  ((uint32_t)VIOAPIC_RTE_LEVEL)
#define MASKED ((uint32_t)VIOAPIC_RTE_MASKED)
#define LOW    ((uint32_t)VIOAPIC_RTE_POLARITY)
#define RIRR   ((uint32_t)VIOAPIC_RTE_REMOTE_IRR)

TEST(registers)
{
        struct vioapic io;
        struct sink s;
        uint64_t v;

        setup(&io, &s);
        EXPECT_EQ(rd(&io, VIOAPIC_REG_VER), 0x00170011);
        EXPECT_EQ(rd(&io, VIOAPIC_REG_ID), 0);
        wr(&io, VIOAPIC_REG_ID, 0xffffffff);
        EXPECT_EQ(rd(&io, VIOAPIC_REG_ID), 0x0f000000);
        EXPECT_EQ(rd(&io, VIOAPIC_REG_ARB), 0x0f000000);
        wr(&io, VIOAPIC_REG_VER, 0);
        wr(&io, VIOAPIC_REG_ARB, 0);
        EXPECT_EQ(rd(&io, VIOAPIC_REG_VER), 0x00170011);
        EXPECT_EQ(rd(&io, VIOAPIC_REG_ARB), 0x0f000000);
        for (unsigned pin = 0; pin < VIOAPIC_PINS; pin++) {
                EXPECT_EQ(rd(&io, VIOAPIC_REG_REDIR + 2 * pin), MASKED);
                EXPECT_EQ(rd(&io, VIOAPIC_REG_REDIR + 2 * pin + 1), 0);
        }
        /* Writable bits only: delivery status and remote IRR are read-only. */
        wr(&io, VIOAPIC_REG_REDIR + 2 * 23, 0xffffffff);
        wr(&io, VIOAPIC_REG_REDIR + 2 * 23 + 1, 0xffffffff);
        EXPECT_EQ(rd(&io, VIOAPIC_REG_REDIR + 2 * 23), 0x0001afff);
        EXPECT_EQ(rd(&io, VIOAPIC_REG_REDIR + 2 * 23 + 1), 0xff000000);
        EXPECT_EQ(io.rte[23], 0xff0000000001afffull);
        /* IOREGSEL keeps its low 8 bits. */
        vioapic_mmio_ops.write(&io, VIOAPIC_IOREGSEL, 4, 0x1234);
        vioapic_mmio_ops.read(&io, VIOAPIC_IOREGSEL, 4, &v);
        EXPECT_EQ(v, 0x34);
        EXPECT_EQ(io.stats.bad_regsel, 0);
        EXPECT_EQ(io.stats.bad_access, 0);
}

TEST(bad_ioregsel_and_accesses)
{
        struct vioapic io;
        struct sink s;
        static const uint32_t bad[] = {0x03, 0x0f, 0x40, 0x41, 0x80, 0xff};
        uint64_t v;

        setup(&io, &s);
        for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                wr(&io, bad[i], 0xffffffff);
                EXPECT_EQ(rd(&io, bad[i]), 0);
        }
        EXPECT_EQ(io.stats.bad_regsel, 12);
        for (unsigned pin = 0; pin < VIOAPIC_PINS; pin++)
                EXPECT_EQ(io.rte[pin], VIOAPIC_RTE_MASKED);
        /* A register number above 0xff wraps in IOREGSEL, it does not escape the table. */
        wr(&io, 0x110, 0x31);
        EXPECT_EQ(rd(&io, VIOAPIC_REG_REDIR), 0x31);

        /* Wrong size or offset: ignored, reads 0. */
        wr(&io, VIOAPIC_REG_REDIR, 0x31);
        vioapic_mmio_ops.write(&io, VIOAPIC_IOWIN, 1, 0x55);
        vioapic_mmio_ops.write(&io, VIOAPIC_IOWIN, 8, 0x55);
        vioapic_mmio_ops.write(&io, 0x4, 4, 0x55);
        vioapic_mmio_ops.write(&io, 0x14, 4, 0x55);
        v = 0x77;
        vioapic_mmio_ops.read(&io, VIOAPIC_IOWIN, 2, &v);
        EXPECT_EQ(v, 0);
        v = 0x77;
        vioapic_mmio_ops.read(&io, 0x8, 4, &v);
        EXPECT_EQ(v, 0);
        EXPECT_EQ(io.stats.bad_access, 6);
        EXPECT_EQ(rd(&io, VIOAPIC_REG_REDIR), 0x31);
        EXPECT_EQ(s.n, 0);
}

TEST(edge_pin)
{
        struct vioapic io;
        struct sink s;

        setup(&io, &s);
        route(&io, 4, 0x24, 0);
        EXPECT_EQ(s.n, 0);
        vioapic_set_level(&io, 4, true);
        EXPECT_EQ(s.n, 1);
        EXPECT_EQ(s.vector, 0x24);
        EXPECT_EQ(s.dest, 0);
        EXPECT_FALSE(s.level);
        EXPECT_FALSE(s.logical);
        /* Staying high is not a new edge. */
        vioapic_set_level(&io, 4, true);
        EXPECT_EQ(s.n, 1);
        vioapic_set_level(&io, 4, false);
        EXPECT_EQ(s.n, 1);
        vioapic_set_level(&io, 4, true);
        EXPECT_EQ(s.n, 2);
        /* No remote IRR for edge pins; EOI does nothing. */
        EXPECT_EQ(rd(&io, VIOAPIC_REG_REDIR + 8) & RIRR, 0);
        vioapic_eoi(&io, 0x24);
        EXPECT_EQ(s.n, 2);
}

TEST(edge_masked_latches_nothing)
{
        struct vioapic io;
        struct sink s;

        setup(&io, &s);
        route(&io, 3, MASKED | 0x23, 0);
        vioapic_set_level(&io, 3, true);
        vioapic_set_level(&io, 3, false);
        route(&io, 3, 0x23, 0);
        EXPECT_EQ(s.n, 0);
        /* Even while still high at unmask time. */
        route(&io, 3, MASKED | 0x23, 0);
        vioapic_set_level(&io, 3, true);
        route(&io, 3, 0x23, 0);
        EXPECT_EQ(s.n, 0);
}

TEST(level_pin_remote_irr)
{
        struct vioapic io;
        struct sink s;

        setup(&io, &s);
        route(&io, 5, LEVEL | 0x35, 0);
        vioapic_set_level(&io, 5, true);
        EXPECT_EQ(s.n, 1);
        EXPECT_TRUE(s.level);
        EXPECT_EQ(rd(&io, VIOAPIC_REG_REDIR + 10) & RIRR, RIRR);
        /* Asserted again, or the line toggled: nothing until EOI. */
        vioapic_set_level(&io, 5, true);
        EXPECT_EQ(s.n, 1);
        /* The guest cannot write remote IRR. */
        wr(&io, VIOAPIC_REG_REDIR + 10, LEVEL | 0x35);
        EXPECT_EQ(rd(&io, VIOAPIC_REG_REDIR + 10) & RIRR, RIRR);
        EXPECT_EQ(s.n, 1);
        /* EOI of another vector changes nothing. */
        vioapic_eoi(&io, 0x36);
        EXPECT_EQ(s.n, 1);
        /* EOI while still asserted: re-delivered. */
        vioapic_eoi(&io, 0x35);
        EXPECT_EQ(s.n, 2);
        EXPECT_EQ(rd(&io, VIOAPIC_REG_REDIR + 10) & RIRR, RIRR);
        /* Deasserted, then EOI: remote IRR clear, nothing sent. */
        vioapic_set_level(&io, 5, false);
        vioapic_eoi(&io, 0x35);
        EXPECT_EQ(s.n, 2);
        EXPECT_EQ(rd(&io, VIOAPIC_REG_REDIR + 10) & RIRR, 0);
        vioapic_set_level(&io, 5, true);
        EXPECT_EQ(s.n, 3);
}

TEST(level_masked_delivers_on_unmask)
{
        struct vioapic io;
        struct sink s;

        setup(&io, &s);
        route(&io, 6, MASKED | LEVEL | 0x36, 0);
        vioapic_set_level(&io, 6, true);
        EXPECT_EQ(s.n, 0);
        EXPECT_EQ(rd(&io, VIOAPIC_REG_REDIR + 12) & RIRR, 0);
        route(&io, 6, LEVEL | 0x36, 0);
        EXPECT_EQ(s.n, 1);
        EXPECT_EQ(s.vector, 0x36);
        /* Deasserted while masked: nothing on unmask. */
        vioapic_eoi(&io, 0x36);
        EXPECT_EQ(s.n, 2);
        route(&io, 6, MASKED | LEVEL | 0x36, 0);
        vioapic_set_level(&io, 6, false);
        vioapic_eoi(&io, 0x36);
        route(&io, 6, LEVEL | 0x36, 0);
        EXPECT_EQ(s.n, 2);
        /* Masked while awaiting EOI: the EOI clears remote IRR but nothing is sent. */
        vioapic_set_level(&io, 6, true);
        EXPECT_EQ(s.n, 3);
        route(&io, 6, MASKED | LEVEL | 0x36, 0);
        vioapic_eoi(&io, 0x36);
        EXPECT_EQ(s.n, 3);
        EXPECT_EQ(rd(&io, VIOAPIC_REG_REDIR + 12) & RIRR, 0);
}

TEST(polarity)
{
        struct vioapic io;
        struct sink s;

        setup(&io, &s);
        /* Active-low level pin: a low line is asserted. */
        route(&io, 7, MASKED | LOW | LEVEL | 0x37, 0);
        vioapic_set_level(&io, 7, true);
        route(&io, 7, LOW | LEVEL | 0x37, 0);
        EXPECT_EQ(s.n, 0);
        vioapic_set_level(&io, 7, false);
        EXPECT_EQ(s.n, 1);
        vioapic_set_level(&io, 7, true);
        vioapic_eoi(&io, 0x37);
        EXPECT_EQ(s.n, 1);
        /* Active-low edge pin: the falling edge sends. */
        route(&io, 8, LOW | 0x38, 0);
        vioapic_set_level(&io, 8, true);
        EXPECT_EQ(s.n, 1);
        vioapic_set_level(&io, 8, false);
        EXPECT_EQ(s.n, 2);
        EXPECT_EQ(s.vector, 0x38);
        /* A low line with active-low polarity is active without any transition: unmasking
         * an active-low level pin that nobody drives delivers. */
        route(&io, 9, LOW | LEVEL | 0x39, 0);
        EXPECT_EQ(s.n, 3);
        EXPECT_EQ(s.vector, 0x39);
}

TEST(destination_and_modes)
{
        struct vioapic io;
        struct sink s;

        setup(&io, &s);
        route(&io, 1, (uint32_t)VIOAPIC_RTE_LOGICAL | (1u << 8) | 0x41, 0x01);
        vioapic_set_level(&io, 1, true);
        EXPECT_EQ(s.n, 1);
        EXPECT_TRUE(s.logical);
        EXPECT_EQ(s.dest, 0x01);
        EXPECT_EQ(s.vector, 0x41);
        route(&io, 2, 0x42, 0xab);
        vioapic_set_level(&io, 2, true);
        EXPECT_EQ(s.dest, 0xab);
        EXPECT_FALSE(s.logical);
        /* SMI, NMI, INIT, ExtINT, reserved: not delivered, counted. */
        for (uint32_t mode = 2; mode < 8; mode++) {
                route(&io, 10, (mode << 8) | 0x50, 0);
                vioapic_set_level(&io, 10, true);
                vioapic_set_level(&io, 10, false);
        }
        EXPECT_EQ(s.n, 2);
        EXPECT_EQ(io.stats.dropped, 6);
        EXPECT_EQ(io.stats.deliveries, 2);
}

TEST(refused_level_does_not_set_remote_irr)
{
        struct vioapic io;
        struct sink s;

        setup(&io, &s);
        s.refuse = true;
        route(&io, 11, LEVEL | 0x4b, 0);
        vioapic_set_level(&io, 11, true);
        EXPECT_EQ(s.n, 1);
        EXPECT_EQ(rd(&io, VIOAPIC_REG_REDIR + 22) & RIRR, 0);
        EXPECT_EQ(io.stats.dropped, 1);
        /* Rewriting the entry (e.g. retargeting) retries. */
        s.refuse = false;
        route(&io, 11, LEVEL | 0x4b, 0);
        EXPECT_EQ(s.n, 2);
        EXPECT_EQ(rd(&io, VIOAPIC_REG_REDIR + 22) & RIRR, RIRR);
}

TEST(switch_to_edge_clears_remote_irr)
{
        struct vioapic io;
        struct sink s;

        setup(&io, &s);
        route(&io, 12, LEVEL | 0x4c, 0);
        vioapic_set_level(&io, 12, true);
        EXPECT_EQ(rd(&io, VIOAPIC_REG_REDIR + 24) & RIRR, RIRR);
        route(&io, 12, 0x4c, 0);
        EXPECT_EQ(rd(&io, VIOAPIC_REG_REDIR + 24) & RIRR, 0);
        EXPECT_EQ(s.n, 1);
}

/* The full loop: irq_line -> vioapic -> vlapic -> EOI -> vioapic. */
struct machine {
        struct vioapic io;
        struct vlapic lapic;
        uint64_t now;
};

static uint64_t m_now(void *ctx)
{
        return ((struct machine *)ctx)->now;
}

static void m_eoi(void *ctx, uint8_t vector)
{
        vioapic_eoi(&((struct machine *)ctx)->io, vector);
}

static bool m_deliver(void *ctx, uint8_t dest, bool logical, uint8_t vector, bool level,
                      bool lowest)
{
        (void)lowest;
        struct machine *m = ctx;

        return vlapic_match_dest(&m->lapic, dest, logical) &&
               vlapic_set_irq(&m->lapic, vector, level);
}

static void lapic_wr(struct machine *m, uint32_t off, uint32_t v)
{
        vlapic_mmio_ops.write(&m->lapic, off, 4, v);
}

TEST(with_vlapic_level_redelivery)
{
        struct machine m;
        struct vlapic_env env = {.now = m_now, .eoi_vector = m_eoi, .ctx = &m};
        struct vioapic_cb cb = {.deliver = m_deliver, .ctx = &m};
        struct irq_line line = {.set_level = vioapic_set_level, .ctrl = &m.io, .pin = 5};

        m.now = 0;
        vioapic_init(&m.io, &cb);
        vlapic_init(&m.lapic, 0, &env);
        route(&m.io, 5, LEVEL | 0x25, 0);

        /* LAPIC disabled: refused, no remote IRR, retried when the entry is rewritten. */
        irq_set_level(&line, true);
        EXPECT_EQ(vlapic_pending(&m.lapic), -1);
        EXPECT_EQ(m.io.rte[5] & VIOAPIC_RTE_REMOTE_IRR, 0);
        lapic_wr(&m, VLAPIC_REG_SVR, 0x1ff);
        route(&m.io, 5, LEVEL | 0x25, 0);
        EXPECT_EQ(vlapic_pending(&m.lapic), 0x25);

        vlapic_accept(&m.lapic, 0x25);
        /* The device still asserts: EOI re-delivers. */
        lapic_wr(&m, VLAPIC_REG_EOI, 0);
        EXPECT_EQ(vlapic_pending(&m.lapic), 0x25);
        vlapic_accept(&m.lapic, 0x25);
        /* The handler quiesced the device, then EOI: nothing more. */
        irq_set_level(&line, false);
        lapic_wr(&m, VLAPIC_REG_EOI, 0);
        EXPECT_EQ(vlapic_pending(&m.lapic), -1);
        EXPECT_EQ(m.io.rte[5] & VIOAPIC_RTE_REMOTE_IRR, 0);
        /* Wrong physical destination: not accepted. */
        route(&m.io, 5, LEVEL | 0x25, 1);
        irq_set_level(&line, true);
        EXPECT_EQ(vlapic_pending(&m.lapic), -1);
        /* An illegal vector from the I/O APIC is refused by the LAPIC. */
        /* (Masked first, as a guest reprograms an entry: the destination write alone would
         * send the old vector.) */
        wr(&m.io, VIOAPIC_REG_REDIR + 10, MASKED | LEVEL | 0x05);
        route(&m.io, 5, MASKED | LEVEL | 0x05, 0);
        EXPECT_EQ(vlapic_pending(&m.lapic), -1);
        route(&m.io, 5, LEVEL | 0x05, 0);
        EXPECT_EQ(vlapic_pending(&m.lapic), -1);
        EXPECT_EQ(m.lapic.stats.illegal_vector, 1);
        EXPECT_EQ(m.io.rte[5] & VIOAPIC_RTE_REMOTE_IRR, 0);
}

TEST_MAIN()
