/* Tests for arch/x86_64/vpic.c: the ICW sequence, masking, priority and rotation, EOIs,
 * the cascade, ELCR level inputs, IRR/ISR reads, poll, auto-EOI and spurious INTAs. */
#include <stdint.h>

#include <arch/vpic.h>
#include <keel/errno.h>
#include <vmm/snapshot.h>

#include "test.h"

static void out(struct vpic *p, uint16_t port, uint8_t v)
{
        EXPECT_TRUE(vpic_io(p, port, false, &v));
}

static uint8_t in(struct vpic *p, uint16_t port)
{
        uint8_t v = 0x5a;

        EXPECT_TRUE(vpic_io(p, port, true, &v));
        return v;
}

/* Linux's init_8259A: bases 0x30 / 0x38, then the masks. */
static void linux_init(struct vpic *p, uint8_t imr0, uint8_t imr1)
{
        out(p, 0x20, 0x11);
        out(p, 0x21, 0x30);
        out(p, 0x21, 0x04);
        out(p, 0x21, 0x01);
        out(p, 0xa0, 0x11);
        out(p, 0xa1, 0x38);
        out(p, 0xa1, 0x02);
        out(p, 0xa1, 0x01);
        out(p, 0x21, imr0);
        out(p, 0xa1, imr1);
}

static void pulse(struct vpic *p, unsigned irq)
{
        vpic_set_irq(p, irq, true);
        vpic_set_irq(p, irq, false);
}

TEST(reset_state_masks_everything)
{
        struct vpic p;

        vpic_init(&p);
        EXPECT_EQ(in(&p, 0x21), 0xff);
        EXPECT_EQ(in(&p, 0xa1), 0xff);
        pulse(&p, 4);
        EXPECT_EQ(vpic_pending(&p), -1);
        EXPECT_EQ(in(&p, 0x20), 0x10); /* IRR latched the edge although masked */
        uint8_t v = 0;
        EXPECT_FALSE(vpic_io(&p, 0x22, false, &v));
        EXPECT_FALSE(vpic_io(&p, 0x4d2, true, &v));
}

TEST(icw_sequence_sets_bases_and_clears_the_mask)
{
        struct vpic p;

        vpic_init(&p);
        out(&p, 0x20, 0x11);
        EXPECT_EQ(in(&p, 0x21), 0x00); /* ICW1 clears IMR */
        out(&p, 0x21, 0x30);           /* ICW2: low 3 bits ignored below */
        out(&p, 0x21, 0x04);
        out(&p, 0x21, 0x01);
        out(&p, 0x21, 0xa5); /* now OCW1 */
        EXPECT_EQ(in(&p, 0x21), 0xa5);
        EXPECT_EQ(p.chip[0].base, 0x30);
        /* ICW1 without ICW4, single: ICW2 is the last. */
        out(&p, 0xa0, 0x12);
        out(&p, 0xa1, 0x77);
        out(&p, 0xa1, 0x3c);
        EXPECT_EQ(p.chip[1].base, 0x70);
        EXPECT_EQ(in(&p, 0xa1), 0x3c);
}

TEST(bios_state_is_seabios)
{
        struct vpic p;

        vpic_init(&p);
        vpic_bios_state(&p);
        EXPECT_EQ(in(&p, 0x21), VPIC_BIOS_IMR_MASTER);
        EXPECT_EQ(in(&p, 0xa1), VPIC_BIOS_IMR_SLAVE);
        pulse(&p, 0);
        EXPECT_EQ(vpic_pending(&p), 0x08);
        EXPECT_EQ(vpic_intack(&p), 0x08);
        out(&p, 0x20, 0x20);
        pulse(&p, 8);
        EXPECT_EQ(vpic_intack(&p), 0x70);
        out(&p, 0xa0, 0x20);
        out(&p, 0x20, 0x20);
        pulse(&p, 11); /* masked by SeaBIOS */
        EXPECT_EQ(vpic_pending(&p), -1);
        out(&p, 0xa1, VPIC_BIOS_IMR_SLAVE & ~0x08);
        EXPECT_EQ(vpic_intack(&p), 0x73); /* the edge stayed latched in IRR */
}

TEST(priority_isr_blocks_lower_and_eoi)
{
        struct vpic p;

        vpic_init(&p);
        linux_init(&p, 0x00, 0x00);
        pulse(&p, 5);
        EXPECT_EQ(vpic_intack(&p), 0x35);
        EXPECT_EQ(p.chip[0].isr, 0x20);
        pulse(&p, 6); /* lower: waits */
        EXPECT_EQ(vpic_pending(&p), -1);
        pulse(&p, 3); /* higher: nests */
        EXPECT_EQ(vpic_intack(&p), 0x33);
        out(&p, 0x20, 0x0b); /* OCW3: read ISR */
        EXPECT_EQ(in(&p, 0x20), 0x28);
        out(&p, 0x20, 0x20); /* non-specific EOI: the highest, IR3 */
        EXPECT_EQ(in(&p, 0x20), 0x20);
        EXPECT_EQ(vpic_pending(&p), -1);
        out(&p, 0x20, 0x65); /* specific EOI IR5 */
        EXPECT_EQ(vpic_intack(&p), 0x36);
        out(&p, 0x20, 0x0a); /* OCW3: read IRR */
        EXPECT_EQ(in(&p, 0x20), 0x00);
        EXPECT_EQ(p.stats.deliveries, 3);
}

TEST(masking_holds_requests)
{
        struct vpic p;

        vpic_init(&p);
        linux_init(&p, 0xff & ~0x04, 0xff);
        pulse(&p, 1);
        pulse(&p, 9);
        EXPECT_EQ(vpic_pending(&p), -1);
        out(&p, 0xa1, 0xfd); /* unmask IRQ 9 */
        EXPECT_EQ(vpic_intack(&p), 0x39);
        out(&p, 0x21, 0xf9); /* unmask IRQ 1: above the in-service IR2, so it nests */
        EXPECT_EQ(vpic_intack(&p), 0x31);
        pulse(&p, 3);
        out(&p, 0x21, 0xf1); /* IR3 is below both in-service levels */
        EXPECT_EQ(vpic_pending(&p), -1);
        out(&p, 0x20, 0x20); /* EOI IR1: IR2 still blocks */
        EXPECT_EQ(vpic_pending(&p), -1);
        out(&p, 0xa0, 0x20);
        out(&p, 0x20, 0x20);
        EXPECT_EQ(vpic_intack(&p), 0x33);
}

TEST(rotation)
{
        struct vpic p;

        vpic_init(&p);
        linux_init(&p, 0x00, 0xff);
        out(&p, 0x20, 0xc4); /* set priority: IR4 lowest, IR5 highest */
        pulse(&p, 1);
        pulse(&p, 6);
        EXPECT_EQ(vpic_intack(&p), 0x36);
        out(&p, 0x20, 0xa0); /* rotate on non-specific EOI: IR6 becomes lowest */
        EXPECT_EQ(p.chip[0].lowest, 6);
        EXPECT_EQ(vpic_intack(&p), 0x31);
        out(&p, 0x20, 0xe1); /* rotate on specific EOI IR1 */
        EXPECT_EQ(p.chip[0].lowest, 1);
        EXPECT_EQ(p.chip[0].isr, 0);
}

TEST(cascade_and_spurious)
{
        struct vpic p;

        vpic_init(&p);
        linux_init(&p, 0x00, 0x00);
        pulse(&p, 12);
        EXPECT_EQ(vpic_pending(&p), 0x3c);
        EXPECT_EQ(vpic_intack(&p), 0x3c);
        EXPECT_EQ(p.chip[0].isr, 0x04);
        EXPECT_EQ(p.chip[1].isr, 0x10);
        out(&p, 0xa0, 0x20);
        out(&p, 0x20, 0x20);
        /* An INTA with nothing asked: the master's IR7 vector, no ISR bit. */
        EXPECT_EQ(vpic_intack(&p), 0x37);
        EXPECT_EQ(p.chip[0].isr, 0);
        EXPECT_EQ(p.stats.spurious, 1);
        /* A level request that goes away before the INTA: IRQ 7 (the master lost it). */
        out(&p, 0x4d0, 0x20);
        vpic_set_irq(&p, 5, true);
        EXPECT_EQ(vpic_pending(&p), 0x35);
        vpic_set_irq(&p, 5, false);
        EXPECT_EQ(vpic_intack(&p), 0x37);
        /* The slave lost a level request behind the latched cascade edge: IRQ 15. */
        out(&p, 0x4d1, 0x08);
        vpic_set_irq(&p, 11, true);
        out(&p, 0xa1, 0x08); /* slave output drops; the master's IR2 edge stays latched */
        EXPECT_EQ(vpic_intack(&p), 0x3f);
        EXPECT_EQ(p.chip[1].isr, 0);
        EXPECT_EQ(p.stats.spurious, 3);
}

TEST(elcr_level_inputs)
{
        struct vpic p;

        vpic_init(&p);
        linux_init(&p, 0x00, 0x00);
        out(&p, 0x4d0, 0xff);
        out(&p, 0x4d1, 0xff);
        EXPECT_EQ(in(&p, 0x4d0), 0xf8); /* IRQ 0-2 are edge-only */
        EXPECT_EQ(in(&p, 0x4d1), 0xde); /* IRQ 8 and 13 too */
        vpic_set_irq(&p, 10, true);
        EXPECT_EQ(vpic_intack(&p), 0x3a);
        out(&p, 0xa0, 0x20);
        out(&p, 0x20, 0x20);
        /* Still high: delivered again after the EOIs. */
        EXPECT_EQ(vpic_intack(&p), 0x3a);
        vpic_set_irq(&p, 10, false);
        out(&p, 0xa0, 0x20);
        out(&p, 0x20, 0x20);
        EXPECT_EQ(vpic_pending(&p), -1);
        /* Edge input held high: one interrupt only. */
        out(&p, 0x4d0, 0x00);
        vpic_set_irq(&p, 3, true);
        EXPECT_EQ(vpic_intack(&p), 0x33);
        out(&p, 0x20, 0x20);
        vpic_set_irq(&p, 3, true);
        EXPECT_EQ(vpic_pending(&p), -1);
}

TEST(auto_eoi_poll_special_mask)
{
        struct vpic p;

        vpic_init(&p);
        out(&p, 0x20, 0x11);
        out(&p, 0x21, 0x08);
        out(&p, 0x21, 0x04);
        out(&p, 0x21, 0x03); /* ICW4: auto-EOI */
        pulse(&p, 0);
        EXPECT_EQ(vpic_intack(&p), 0x08);
        EXPECT_EQ(p.chip[0].isr, 0);
        /* Poll: the next read is 0x80 | IR, acknowledged. */
        out(&p, 0xa0, 0x11);
        out(&p, 0xa1, 0x70);
        out(&p, 0xa1, 0x02);
        out(&p, 0xa1, 0x01);
        pulse(&p, 14);
        out(&p, 0xa0, 0x0c);
        EXPECT_EQ(in(&p, 0xa0), 0x86);
        EXPECT_EQ(p.chip[1].isr, 0x40);
        EXPECT_EQ(vpic_pending(&p), -1);
        out(&p, 0xa0, 0x0c);
        EXPECT_EQ(in(&p, 0xa1), 0x00); /* nothing left */
        /* Special mask: a masked in-service level no longer blocks lower ones. */
        pulse(&p, 15);
        EXPECT_EQ(vpic_pending(&p), -1);
        out(&p, 0xa1, 0x40);
        out(&p, 0xa0, 0x68);
        EXPECT_EQ(vpic_intack(&p), 0x77);
}

TEST(snapshot_round_trip_and_refusals)
{
        struct vpic p, q;
        uint8_t buf[64];
        char why[128];
        struct snap_buf b = {.buf = buf, .cap = sizeof(buf)};

        vpic_init(&p);
        linux_init(&p, 0x12, 0x34);
        out(&p, 0x4d1, 0x08);
        vpic_set_irq(&p, 11, true);
        pulse(&p, 5);
        EXPECT_EQ(vpic_intack(&p), 0x3b); /* the cascade (IR2) is above IR5 */
        vpic_save(&p, &b);
        EXPECT_EQ(b.len, 32);
        vpic_init(&q);
        for (int apply = 0; apply < 2; apply++) {
                struct snap_rd r = {
                    .p = buf, .len = b.len, .apply = apply, .why = why, .why_len = sizeof(why)};

                EXPECT_EQ(vpic_load(&q, &r), 0);
        }
        EXPECT_EQ(memcmp(p.chip, q.chip, sizeof(p.chip)), 0);
        /* Values no guest could make: an ELCR bit of IRQ 8, a base with low bits, a flag 2,
         * a level input whose IRR disagrees with its line; and a short section. */
        static const struct {
                unsigned off;
                uint8_t val;
        } bad[] = {{16 + 4, 0x01}, {5, 0x31}, {8 + 3, 2}, {16 + 3, 0x00}, {6, 8}, {7, 1}};
        for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                uint8_t copy[32];
                struct snap_rd r = {.p = copy, .len = 32, .why = why, .why_len = sizeof(why)};

                memcpy(copy, buf, sizeof(copy));
                copy[bad[i].off] = bad[i].val;
                q = p;
                EXPECT_EQ(vpic_load(&q, &r), -KEEL_EINVAL);
                EXPECT_EQ(memcmp(&p, &q, sizeof(p)), 0);
        }
        struct snap_rd r = {.p = buf, .len = 31, .why = why, .why_len = sizeof(why)};
        EXPECT_EQ(vpic_load(&q, &r), -KEEL_EINVAL);
}

TEST_MAIN()
