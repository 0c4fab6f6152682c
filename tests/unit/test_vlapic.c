/* Tests for arch/x86_64/vlapic.c: registers, priorities, EOI, timers with a fake clock. */
#include <stdint.h>

#include <arch/vlapic.h>

#include "test.h"

struct fake_env {
        uint64_t now;
        unsigned eois;
        uint8_t eoi_vec[16];
};

static uint64_t fake_now(void *ctx)
{
        return ((struct fake_env *)ctx)->now;
}

static void fake_eoi(void *ctx, uint8_t vector)
{
        struct fake_env *f = ctx;

        if (f->eois < 16)
                f->eoi_vec[f->eois] = vector;
        f->eois++;
}

static void setup(struct vlapic *l, struct fake_env *f, unsigned id)
{
        struct vlapic_env env = {.now = fake_now, .eoi_vector = fake_eoi, .ctx = f};

        memset(f, 0, sizeof(*f));
        f->now = 1000;
        vlapic_init(l, id, &env);
}

/* Through the MMIO ops, as the guest does. */
static uint32_t rd(struct vlapic *l, uint32_t off)
{
        uint64_t v = 0xdeadbeefdeadbeefull;

        vlapic_mmio_ops.read(l, off, 4, &v);
        return (uint32_t)v;
}

static void wr(struct vlapic *l, uint32_t off, uint32_t v)
{
        vlapic_mmio_ops.write(l, off, 4, v);
}

static void enable(struct vlapic *l)
{
        wr(l, VLAPIC_REG_SVR, VLAPIC_SVR_ENABLE | 0xff);
}

/* Inject and accept the pending vector; returns it or -1. */
static int take(struct vlapic *l)
{
        int v = vlapic_pending(l);

        if (v >= 0)
                vlapic_accept(l, (uint8_t)v);
        return v;
}

TEST(reset_values)
{
        struct vlapic l;
        struct fake_env f;

        setup(&l, &f, 3);
        EXPECT_EQ(rd(&l, VLAPIC_REG_ID), 3u << 24);
        EXPECT_EQ(rd(&l, VLAPIC_REG_VER), 0x50014);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TPR), 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_PPR), 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_LDR), 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_DFR), 0xffffffffu);
        EXPECT_EQ(rd(&l, VLAPIC_REG_SVR), 0xff);
        for (uint32_t off = VLAPIC_REG_TIMER; off <= VLAPIC_REG_ERROR; off += 0x10)
                EXPECT_EQ(rd(&l, off), VLAPIC_LVT_MASKED);
        EXPECT_EQ(rd(&l, VLAPIC_REG_CMCI), VLAPIC_LVT_MASKED);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMICT), 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMCCT), 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TDCR), 0);
        for (uint32_t off = VLAPIC_REG_ISR; off < VLAPIC_REG_ESR; off += 0x10)
                EXPECT_EQ(rd(&l, off), 0);
        EXPECT_EQ(l.stats.reserved_access, 0);
}

TEST(global_disable_resets)
{
        struct vlapic l;
        struct fake_env f;

        setup(&l, &f, 2);
        enable(&l);
        wr(&l, VLAPIC_REG_TPR, 0x20);
        wr(&l, VLAPIC_REG_TIMER, 0x40);
        EXPECT_TRUE(vlapic_set_irq(&l, 0x50, false));
        l.wait_sipi = true;
        l.stats.reserved_access = 7;
        vlapic_reset(&l);
        /* The reset state, with the ID, the SIPI wait and the statistics kept. */
        EXPECT_EQ(rd(&l, VLAPIC_REG_ID), 2u << 24);
        EXPECT_EQ(rd(&l, VLAPIC_REG_SVR), 0xff);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TPR), 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TIMER), VLAPIC_LVT_MASKED);
        EXPECT_EQ(rd(&l, VLAPIC_REG_IRR + 0x20), 0);
        EXPECT_EQ(vlapic_pending(&l), -1);
        EXPECT_TRUE(l.wait_sipi);
        EXPECT_EQ(l.stats.reserved_access, 7);
        EXPECT_TRUE(l.env.now == fake_now);
        /* Software-enabled again, it delivers. */
        enable(&l);
        EXPECT_TRUE(vlapic_set_irq(&l, 0x50, false));
        EXPECT_EQ(take(&l), 0x50);
}

TEST(register_write_masks_and_read_only)
{
        struct vlapic l;
        struct fake_env f;

        setup(&l, &f, 1);
        wr(&l, VLAPIC_REG_ID, 0x07000000);
        EXPECT_EQ(rd(&l, VLAPIC_REG_ID), 1u << 24);
        wr(&l, VLAPIC_REG_VER, 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_VER), 0x50014);
        wr(&l, VLAPIC_REG_TPR, 0xffffff5a);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TPR), 0x5a);
        wr(&l, VLAPIC_REG_LDR, 0x12345678);
        EXPECT_EQ(rd(&l, VLAPIC_REG_LDR), 0x12000000);
        wr(&l, VLAPIC_REG_DFR, 0x0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_DFR), 0x0fffffff);
        wr(&l, VLAPIC_REG_SVR, 0xfffff1ff);
        EXPECT_EQ(rd(&l, VLAPIC_REG_SVR), 0x1ff);
        wr(&l, VLAPIC_REG_TIMER, 0xffffffff);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TIMER), 0x000700ff);
        wr(&l, VLAPIC_REG_TIMER, 0);
        wr(&l, VLAPIC_REG_LINT0, 0xffffffff);
        EXPECT_EQ(rd(&l, VLAPIC_REG_LINT0), 0x0001a7ff);
        wr(&l, VLAPIC_REG_ERROR, 0xffffffff);
        EXPECT_EQ(rd(&l, VLAPIC_REG_ERROR), 0x000100ff);
        wr(&l, VLAPIC_REG_PERF, 0xffffffff);
        EXPECT_EQ(rd(&l, VLAPIC_REG_PERF), 0x000107ff);
        wr(&l, VLAPIC_REG_TDCR, 0xffffffff);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TDCR), 0xb);
        wr(&l, VLAPIC_REG_ICR_HI, 0xffffffff);
        EXPECT_EQ(rd(&l, VLAPIC_REG_ICR_HI), 0xff000000);
        /* Read-only bitmaps and computed registers ignore writes. */
        wr(&l, VLAPIC_REG_IRR + 0x10, 0xffffffff);
        wr(&l, VLAPIC_REG_ISR + 0x70, 0xffffffff);
        wr(&l, VLAPIC_REG_PPR, 0xff);
        wr(&l, VLAPIC_REG_TMCCT, 0x1234);
        EXPECT_EQ(rd(&l, VLAPIC_REG_IRR + 0x10), 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_ISR + 0x70), 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMCCT), 0);
        EXPECT_EQ(l.stats.reserved_access, 0);
        EXPECT_EQ(l.stats.bad_access, 0);
}

TEST(bad_sizes_and_reserved_offsets)
{
        struct vlapic l;
        struct fake_env f;
        uint64_t v;

        setup(&l, &f, 0);
        enable(&l);
        wr(&l, VLAPIC_REG_TPR, 0x20);
        /* Non-32-bit and misaligned accesses: ignored, read 0, counted. */
        vlapic_mmio_ops.write(&l, VLAPIC_REG_TPR, 1, 0x40);
        vlapic_mmio_ops.write(&l, VLAPIC_REG_TPR, 8, 0x40);
        vlapic_mmio_ops.write(&l, VLAPIC_REG_TPR + 1, 4, 0x40);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TPR), 0x20);
        v = 0x55;
        vlapic_mmio_ops.read(&l, VLAPIC_REG_TPR, 2, &v);
        EXPECT_EQ(v, 0);
        v = 0x55;
        vlapic_mmio_ops.read(&l, VLAPIC_REG_VER + 2, 4, &v);
        EXPECT_EQ(v, 0);
        v = 0x55;
        vlapic_mmio_ops.read(&l, 0x1000, 4, &v);
        EXPECT_EQ(v, 0);
        EXPECT_EQ(l.stats.bad_access, 6);
        EXPECT_EQ(l.stats.reserved_access, 0);

        /* Reserved registers read 0 and report an illegal register address in ESR. */
        EXPECT_EQ(rd(&l, 0x000), 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_VER + 4), 0);
        wr(&l, 0x3f0, 0x30); /* x2APIC SELF IPI: not in xAPIC mode */
        EXPECT_EQ(rd(&l, 0x3f0), 0);
        EXPECT_EQ(vlapic_pending(&l), -1);
        EXPECT_EQ(l.stats.reserved_access, 4);
        EXPECT_EQ(rd(&l, VLAPIC_REG_ESR), 0);
        wr(&l, VLAPIC_REG_ESR, 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_ESR), VLAPIC_ESR_ILLEGAL_REG);
        wr(&l, VLAPIC_REG_ESR, 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_ESR), 0);
}

TEST(accept_priority_and_nesting)
{
        struct vlapic l;
        struct fake_env f;

        setup(&l, &f, 0);
        enable(&l);
        EXPECT_EQ(vlapic_pending(&l), -1);
        EXPECT_TRUE(vlapic_set_irq(&l, 0x31, false));
        EXPECT_TRUE(vlapic_set_irq(&l, 0x52, false));
        EXPECT_EQ(rd(&l, VLAPIC_REG_IRR + 0x10), 1u << 0x11);
        EXPECT_EQ(rd(&l, VLAPIC_REG_IRR + 0x20), 1u << 0x12);
        EXPECT_EQ(rd(&l, VLAPIC_REG_APR), 0x50);
        /* Highest first. */
        EXPECT_EQ(take(&l), 0x52);
        EXPECT_EQ(rd(&l, VLAPIC_REG_ISR + 0x20), 1u << 0x12);
        EXPECT_EQ(rd(&l, VLAPIC_REG_IRR + 0x20), 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_PPR), 0x50);
        /* 0x31 is below the in-service class. */
        EXPECT_EQ(vlapic_pending(&l), -1);
        /* Same class as in service does not nest; a higher class does. */
        vlapic_set_irq(&l, 0x5f, false);
        EXPECT_EQ(vlapic_pending(&l), -1);
        vlapic_set_irq(&l, 0x60, false);
        EXPECT_EQ(take(&l), 0x60);
        EXPECT_EQ(rd(&l, VLAPIC_REG_PPR), 0x60);
        /* EOI retires the highest in service. */
        wr(&l, VLAPIC_REG_EOI, 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_PPR), 0x50);
        EXPECT_EQ(vlapic_pending(&l), -1);
        wr(&l, VLAPIC_REG_EOI, 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_PPR), 0);
        EXPECT_EQ(take(&l), 0x5f);
        wr(&l, VLAPIC_REG_EOI, 0);
        EXPECT_EQ(take(&l), 0x31);
        wr(&l, VLAPIC_REG_EOI, 0);
        EXPECT_EQ(vlapic_pending(&l), -1);
        /* Edge vectors do not broadcast EOI; extra EOIs are harmless. */
        wr(&l, VLAPIC_REG_EOI, 0);
        EXPECT_EQ(f.eois, 0);
        /* Accepting something not pending is counted and changes nothing. */
        vlapic_accept(&l, 0x40);
        EXPECT_EQ(l.stats.bad_accept, 1);
        EXPECT_EQ(rd(&l, VLAPIC_REG_ISR + 0x20), 0);
}

TEST(tpr_masks_by_class)
{
        struct vlapic l;
        struct fake_env f;

        setup(&l, &f, 0);
        enable(&l);
        wr(&l, VLAPIC_REG_TPR, 0x45);
        EXPECT_EQ(rd(&l, VLAPIC_REG_PPR), 0x45);
        vlapic_set_irq(&l, 0x4f, false);
        EXPECT_EQ(vlapic_pending(&l), -1);
        EXPECT_EQ(rd(&l, VLAPIC_REG_APR), 0x45);
        vlapic_set_irq(&l, 0x50, false);
        EXPECT_EQ(vlapic_pending(&l), 0x50);
        EXPECT_EQ(rd(&l, VLAPIC_REG_APR), 0x50);
        wr(&l, VLAPIC_REG_TPR, 0xf0);
        EXPECT_EQ(vlapic_pending(&l), -1);
        vlapic_set_tpr(&l, 0x30);
        EXPECT_EQ(vlapic_tpr(&l), 0x30);
        EXPECT_EQ(vlapic_pending(&l), 0x50);
        /* TPR below an in-service class: PPR is the ISR class. */
        take(&l);
        EXPECT_EQ(rd(&l, VLAPIC_REG_PPR), 0x50);
        EXPECT_EQ(vlapic_ppr(&l), 0x50);
        EXPECT_EQ(vlapic_pending(&l), -1);
}

TEST(level_eoi_broadcast)
{
        struct vlapic l;
        struct fake_env f;

        setup(&l, &f, 0);
        enable(&l);
        vlapic_set_irq(&l, 0x41, true);
        vlapic_set_irq(&l, 0x30, false);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMR + 0x20), 1u << 1);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMR + 0x10), 0);
        EXPECT_EQ(take(&l), 0x41);
        wr(&l, VLAPIC_REG_EOI, 0);
        EXPECT_EQ(f.eois, 1);
        EXPECT_EQ(f.eoi_vec[0], 0x41);
        EXPECT_EQ(take(&l), 0x30);
        wr(&l, VLAPIC_REG_EOI, 0);
        EXPECT_EQ(f.eois, 1);
        /* An edge interrupt on a vector clears its TMR bit. */
        vlapic_set_irq(&l, 0x41, false);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMR + 0x20), 0);
        take(&l);
        wr(&l, VLAPIC_REG_EOI, 0);
        EXPECT_EQ(f.eois, 1);
}

/* KVM's paravirtual EOI: when the guest may end what is in service by clearing its flag, and
 * the EOI Keel then performs (vlapic_eoi) is the register's. */
TEST(pv_eoi_ok_only_for_edge_with_nothing_waiting)
{
        struct vlapic l;
        struct fake_env f;

        setup(&l, &f, 0);
        enable(&l);
        EXPECT_FALSE(vlapic_pv_eoi_ok(&l)); /* nothing in service */
        vlapic_set_irq(&l, 0x50, false);
        EXPECT_FALSE(vlapic_pv_eoi_ok(&l)); /* waiting, not in service */
        EXPECT_EQ(take(&l), 0x50);
        EXPECT_TRUE(vlapic_pv_eoi_ok(&l));
        vlapic_set_irq(&l, 0x40, false); /* a lower class waits: its EOI must exit */
        EXPECT_FALSE(vlapic_pv_eoi_ok(&l));
        vlapic_set_irq(&l, 0x60, true); /* nests above: level-triggered */
        EXPECT_EQ(take(&l), 0x60);
        EXPECT_FALSE(vlapic_pv_eoi_ok(&l));
        vlapic_eoi(&l); /* the level one goes to the I/O APIC */
        EXPECT_EQ(f.eois, 1);
        EXPECT_EQ(f.eoi_vec[0], 0x60);
        EXPECT_FALSE(vlapic_pv_eoi_ok(&l)); /* 0x40 still waits */
        vlapic_eoi(&l);
        EXPECT_EQ(take(&l), 0x40);
        EXPECT_TRUE(vlapic_pv_eoi_ok(&l));
        vlapic_eoi(&l);
        EXPECT_EQ(f.eois, 1);
        EXPECT_FALSE(vlapic_pv_eoi_ok(&l));
        EXPECT_EQ(rd(&l, VLAPIC_REG_ISR + 0x20), 0);
        /* Reset and INIT turn it off. */
        l.pv_eoi = 0x1001;
        l.pv_eoi_set = true;
        vlapic_reset(&l);
        EXPECT_EQ(l.pv_eoi, 0);
        EXPECT_FALSE(l.pv_eoi_set);
}

TEST(illegal_vectors_and_error_interrupt)
{
        struct vlapic l;
        struct fake_env f;

        setup(&l, &f, 0);
        enable(&l);
        wr(&l, VLAPIC_REG_ERROR, 0xfe);
        for (unsigned v = 0; v < 16; v++)
                EXPECT_FALSE(vlapic_set_irq(&l, (uint8_t)v, false));
        EXPECT_EQ(l.stats.illegal_vector, 16);
        for (uint32_t off = VLAPIC_REG_IRR; off < VLAPIC_REG_IRR + 0x70; off += 0x10)
                EXPECT_EQ(rd(&l, off), 0);
        /* The error LVT fired once (errors accumulate until the ESR write). */
        EXPECT_EQ(take(&l), 0xfe);
        EXPECT_EQ(vlapic_pending(&l), -1);
        wr(&l, VLAPIC_REG_ESR, 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_ESR), VLAPIC_ESR_RECV_ILLEGAL);
        /* Sending an illegal vector. */
        wr(&l, VLAPIC_REG_ICR_LO, 0x00040005); /* self, fixed, vector 5 */
        wr(&l, VLAPIC_REG_ESR, 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_ESR), VLAPIC_ESR_SEND_ILLEGAL);
        EXPECT_EQ(l.stats.illegal_vector, 17);
        /* That error raised the error interrupt again; it waits for the first one's EOI. */
        EXPECT_EQ(vlapic_pending(&l), -1);
        wr(&l, VLAPIC_REG_EOI, 0);
        EXPECT_EQ(take(&l), 0xfe);
        wr(&l, VLAPIC_REG_EOI, 0);
        /* Masked error LVT: logged only. */
        wr(&l, VLAPIC_REG_ERROR, VLAPIC_LVT_MASKED | 0xfe);
        vlapic_set_irq(&l, 3, false);
        EXPECT_EQ(vlapic_pending(&l), -1);
        /* An illegal error vector does not recurse. */
        wr(&l, VLAPIC_REG_ERROR, 0x02);
        wr(&l, VLAPIC_REG_ESR, 0);
        vlapic_set_irq(&l, 4, false);
        EXPECT_EQ(vlapic_pending(&l), -1);
        wr(&l, VLAPIC_REG_ESR, 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_ESR), VLAPIC_ESR_RECV_ILLEGAL);
}

TEST(software_disabled)
{
        struct vlapic l;
        struct fake_env f;

        setup(&l, &f, 0);
        /* Reset: disabled, nothing accepted or delivered, LVTs cannot be unmasked. */
        EXPECT_FALSE(vlapic_set_irq(&l, 0x40, false));
        EXPECT_EQ(l.stats.disabled_drop, 1);
        EXPECT_EQ(vlapic_pending(&l), -1);
        wr(&l, VLAPIC_REG_TIMER, 0x30);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TIMER), VLAPIC_LVT_MASKED | 0x30);
        enable(&l);
        wr(&l, VLAPIC_REG_TIMER, 0x30);
        wr(&l, VLAPIC_REG_LINT0, 0x700);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TIMER), 0x30);
        vlapic_set_irq(&l, 0x40, false);
        EXPECT_EQ(vlapic_pending(&l), 0x40);
        /* Disable: pending is held but not delivered, every LVT gets masked. */
        wr(&l, VLAPIC_REG_SVR, 0xff);
        EXPECT_EQ(vlapic_pending(&l), -1);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TIMER), VLAPIC_LVT_MASKED | 0x30);
        EXPECT_EQ(rd(&l, VLAPIC_REG_LINT0), VLAPIC_LVT_MASKED | 0x700);
        EXPECT_EQ(rd(&l, VLAPIC_REG_IRR + 0x20), 1);
        enable(&l);
        EXPECT_EQ(vlapic_pending(&l), 0x40);
}

TEST(ipis)
{
        struct vlapic l;
        struct fake_env f;

        setup(&l, &f, 2);
        enable(&l);
        /* Fixed IPI to own physical ID. */
        wr(&l, VLAPIC_REG_ICR_HI, 2u << 24);
        wr(&l, VLAPIC_REG_ICR_LO, 0x00004041);
        EXPECT_EQ(take(&l), 0x41);
        wr(&l, VLAPIC_REG_EOI, 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_ICR_LO) & (1u << 12), 0); /* delivery idle */
        /* Another ID: dropped and counted. */
        wr(&l, VLAPIC_REG_ICR_HI, 3u << 24);
        wr(&l, VLAPIC_REG_ICR_LO, 0x00004042);
        EXPECT_EQ(vlapic_pending(&l), -1);
        EXPECT_EQ(l.stats.ipi_dropped, 1);
        /* Self shorthand, all-including-self, all-excluding-self. */
        wr(&l, VLAPIC_REG_ICR_LO, 0x00040043);
        EXPECT_EQ(take(&l), 0x43);
        wr(&l, VLAPIC_REG_EOI, 0);
        wr(&l, VLAPIC_REG_ICR_LO, 0x00080044);
        EXPECT_EQ(take(&l), 0x44);
        wr(&l, VLAPIC_REG_EOI, 0);
        wr(&l, VLAPIC_REG_ICR_LO, 0x000c0045);
        EXPECT_EQ(vlapic_pending(&l), -1);
        /* Logical flat. */
        wr(&l, VLAPIC_REG_LDR, 0x04000000);
        wr(&l, VLAPIC_REG_ICR_HI, 0x0c000000);
        wr(&l, VLAPIC_REG_ICR_LO, 0x00000846);
        EXPECT_EQ(take(&l), 0x46);
        wr(&l, VLAPIC_REG_EOI, 0);
        wr(&l, VLAPIC_REG_ICR_HI, 0x03000000);
        wr(&l, VLAPIC_REG_ICR_LO, 0x00000847);
        EXPECT_EQ(vlapic_pending(&l), -1);
        EXPECT_EQ(l.stats.ipi_dropped, 2);
        /* INIT, SIPI to a running LAPIC: ignored; SMI: dropped. */
        wr(&l, VLAPIC_REG_ICR_HI, 2u << 24);
        wr(&l, VLAPIC_REG_ICR_LO, 0x00004500);
        wr(&l, VLAPIC_REG_ICR_LO, 0x00004698);
        wr(&l, VLAPIC_REG_ICR_LO, 0x00004200);
        EXPECT_EQ(vlapic_pending(&l), -1);
        EXPECT_EQ(l.stats.ipi_dropped, 5);
        /* NMI to its own ID: pending, no vector in IRR. */
        EXPECT_FALSE(l.nmi_pending);
        wr(&l, VLAPIC_REG_ICR_LO, 0x00004400);
        EXPECT_TRUE(l.nmi_pending);
        EXPECT_EQ(vlapic_pending(&l), -1);
        EXPECT_EQ(l.stats.ipi_dropped, 5);
        EXPECT_TRUE(vlapic_take_nmi(&l));
        EXPECT_FALSE(vlapic_take_nmi(&l));
}

TEST(nmi_ipis)
{
        struct vlapic l;
        struct fake_env f;

        setup(&l, &f, 2);
        enable(&l);
        /* Self, by ID (the vector is ignored), all-including-self: pending once. */
        wr(&l, VLAPIC_REG_ICR_LO, 0x00040400);
        EXPECT_TRUE(vlapic_take_nmi(&l));
        wr(&l, VLAPIC_REG_ICR_HI, 2u << 24);
        wr(&l, VLAPIC_REG_ICR_LO, 0x000044ff);
        EXPECT_TRUE(vlapic_take_nmi(&l));
        EXPECT_EQ(vlapic_pending(&l), -1);
        EXPECT_EQ(l.stats.illegal_vector, 0);
        /* Many before the CPU takes one: two are kept (one runs, one waits for its IRET), the
         * others collapse into them. */
        for (unsigned i = 0; i < 100; i++)
                wr(&l, VLAPIC_REG_ICR_LO, 0x00080400);
        EXPECT_TRUE(vlapic_take_nmi(&l));
        EXPECT_TRUE(vlapic_take_nmi(&l));
        EXPECT_FALSE(vlapic_take_nmi(&l));
        EXPECT_EQ(l.stats.nmi_collapsed, 98);
        EXPECT_EQ(l.stats.ipi_dropped, 0);
        /* All-excluding-self on a lone LAPIC: nobody. */
        wr(&l, VLAPIC_REG_ICR_LO, 0x000c0400);
        EXPECT_FALSE(vlapic_take_nmi(&l));
        /* Software-disabled: NMIs are still accepted (SDM 10.4.7.2); globally off: not. */
        wr(&l, VLAPIC_REG_SVR, 0xff);
        wr(&l, VLAPIC_REG_ICR_LO, 0x00040400);
        EXPECT_TRUE(vlapic_take_nmi(&l));
        l.global_off = true;
        wr(&l, VLAPIC_REG_ICR_LO, 0x00040400);
        EXPECT_FALSE(vlapic_take_nmi(&l));
        /* A pending NMI survives the global-disable reset (it is the CPU's). */
        l.global_off = false;
        wr(&l, VLAPIC_REG_ICR_LO, 0x00040400);
        vlapic_reset(&l);
        EXPECT_TRUE(vlapic_take_nmi(&l));
}

/*
 * kvm-unit-tests' apic "multiple nmi": vCPU 0 sends itself an NMI while vCPU 1 sends it one; both
 * are handled (two NMIs) whichever reaches the LAPIC first, as long as the guest was handling
 * none; while it handles one (the backend says so at the next entry), only one waits.
 */
TEST(nmi_two_at_once)
{
        struct vlapic l;
        struct fake_env f;

        setup(&l, &f, 0);
        enable(&l);
        /* Both arrive before the CPU's next entry: the first runs, the second after its IRET. */
        wr(&l, VLAPIC_REG_ICR_LO, 0x00040400);
        wr(&l, VLAPIC_REG_ICR_LO, 0x00040400);
        EXPECT_EQ(l.stats.nmi_collapsed, 0);
        EXPECT_TRUE(vlapic_take_nmi(&l));
        EXPECT_TRUE(l.nmi_pending);
        vlapic_nmi_blocked(&l); /* entries during the handler keep the waiting one */
        EXPECT_TRUE(vlapic_take_nmi(&l));
        EXPECT_FALSE(vlapic_take_nmi(&l));
        /* The guest handles one (taken) when two more arrive: one waits, the other collapses. */
        wr(&l, VLAPIC_REG_ICR_LO, 0x00040400);
        EXPECT_TRUE(vlapic_take_nmi(&l));
        wr(&l, VLAPIC_REG_ICR_LO, 0x00040400);
        wr(&l, VLAPIC_REG_ICR_LO, 0x00040400);
        vlapic_nmi_blocked(&l);
        EXPECT_EQ(l.stats.nmi_collapsed, 1);
        EXPECT_TRUE(vlapic_take_nmi(&l));
        EXPECT_FALSE(vlapic_take_nmi(&l));
        /* Both survive the global-disable reset (they are the CPU's). */
        wr(&l, VLAPIC_REG_ICR_LO, 0x00040400);
        wr(&l, VLAPIC_REG_ICR_LO, 0x00040400);
        vlapic_reset(&l);
        EXPECT_TRUE(l.nmi_pending && l.nmi_latched);
        EXPECT_TRUE(vlapic_take_nmi(&l));
        EXPECT_TRUE(vlapic_take_nmi(&l));
        EXPECT_FALSE(vlapic_take_nmi(&l));
}

TEST(match_dest)
{
        struct vlapic l;
        struct fake_env f;

        setup(&l, &f, 5);
        EXPECT_TRUE(vlapic_match_dest(&l, 5, false));
        EXPECT_TRUE(vlapic_match_dest(&l, 0xff, false));
        EXPECT_FALSE(vlapic_match_dest(&l, 4, false));
        /* LDR 0: logical matches nothing. */
        EXPECT_FALSE(vlapic_match_dest(&l, 0xff, true));
        wr(&l, VLAPIC_REG_LDR, 0x01000000);
        EXPECT_TRUE(vlapic_match_dest(&l, 0x01, true));
        EXPECT_TRUE(vlapic_match_dest(&l, 0xff, true));
        EXPECT_FALSE(vlapic_match_dest(&l, 0x02, true));
        /* Cluster model: cluster 2, member bit 1. */
        wr(&l, VLAPIC_REG_DFR, 0x0fffffff);
        wr(&l, VLAPIC_REG_LDR, 0x22000000);
        EXPECT_TRUE(vlapic_match_dest(&l, 0x23, true));
        EXPECT_TRUE(vlapic_match_dest(&l, 0xf2, true));
        EXPECT_FALSE(vlapic_match_dest(&l, 0x32, true));
        EXPECT_FALSE(vlapic_match_dest(&l, 0x21, true));
}

static void timer_setup(struct vlapic *l, struct fake_env *f, uint32_t lvt, uint32_t dcr)
{
        setup(l, f, 0);
        enable(l);
        wr(l, VLAPIC_REG_TDCR, dcr);
        wr(l, VLAPIC_REG_TIMER, lvt);
}

TEST(oneshot_fires_once)
{
        struct vlapic l;
        struct fake_env f;

        timer_setup(&l, &f, VLAPIC_TIMER_ONESHOT | 0x30, 0xb); /* divide by 1 */
        EXPECT_EQ(vlapic_next_deadline(&l), UINT64_MAX);
        wr(&l, VLAPIC_REG_TMICT, 100);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMICT), 100);
        EXPECT_EQ(vlapic_next_deadline(&l), 1100);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMCCT), 100);
        f.now = 1040;
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMCCT), 60);
        vlapic_timer_update(&l, f.now);
        EXPECT_EQ(vlapic_pending(&l), -1);
        f.now = 1099;
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMCCT), 1);
        f.now = 1100;
        vlapic_timer_update(&l, f.now);
        EXPECT_EQ(take(&l), 0x30);
        wr(&l, VLAPIC_REG_EOI, 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMCCT), 0);
        EXPECT_EQ(vlapic_next_deadline(&l), UINT64_MAX);
        f.now = 5000;
        vlapic_timer_update(&l, f.now);
        EXPECT_EQ(vlapic_pending(&l), -1);
        /* Initial count 0 stops a running timer. */
        wr(&l, VLAPIC_REG_TMICT, 10);
        wr(&l, VLAPIC_REG_TMICT, 0);
        f.now = 6000;
        vlapic_timer_update(&l, f.now);
        EXPECT_EQ(vlapic_pending(&l), -1);
        EXPECT_EQ(vlapic_next_deadline(&l), UINT64_MAX);
}

TEST(periodic_reloads)
{
        struct vlapic l;
        struct fake_env f;

        timer_setup(&l, &f, VLAPIC_TIMER_PERIODIC | 0x31, 0x0); /* divide by 2 */
        wr(&l, VLAPIC_REG_TMICT, 50);                           /* period 100 TSC ticks */
        EXPECT_EQ(vlapic_next_deadline(&l), 1100);
        f.now = 1099;
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMCCT), 1);
        EXPECT_EQ(vlapic_pending(&l), -1);
        f.now = 1100;
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMCCT), 50); /* reloaded; the read also fired */
        EXPECT_EQ(take(&l), 0x31);
        wr(&l, VLAPIC_REG_EOI, 0);
        EXPECT_EQ(vlapic_next_deadline(&l), 1200);
        f.now = 1150;
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMCCT), 25);
        f.now = 1200;
        vlapic_timer_update(&l, f.now);
        EXPECT_EQ(take(&l), 0x31);
        wr(&l, VLAPIC_REG_EOI, 0);
        /* Several missed periods coalesce into one interrupt; the phase is kept. */
        f.now = 1730;
        vlapic_timer_update(&l, f.now);
        EXPECT_EQ(take(&l), 0x31);
        wr(&l, VLAPIC_REG_EOI, 0);
        EXPECT_EQ(vlapic_pending(&l), -1);
        EXPECT_EQ(vlapic_next_deadline(&l), 1800);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMCCT), 35);
}

TEST(periodic_min_period)
{
        struct vlapic l;
        struct fake_env f;
        struct vlapic_env env = {
            .now = fake_now, .eoi_vector = fake_eoi, .ctx = &f, .min_period = 500};

        memset(&f, 0, sizeof(f));
        f.now = 1000;
        vlapic_init(&l, 0, &env);
        enable(&l);
        wr(&l, VLAPIC_REG_TDCR, 0xb); /* divide by 1 */
        wr(&l, VLAPIC_REG_TIMER, VLAPIC_TIMER_PERIODIC | 0x40);
        wr(&l, VLAPIC_REG_TMICT, 1); /* a period of one TSC tick */
        EXPECT_EQ(vlapic_next_deadline(&l), 1001);
        vlapic_timer_update(&l, 1001);
        EXPECT_EQ(take(&l), 0x40);
        wr(&l, VLAPIC_REG_EOI, 0);
        /* The next expiry comes min_period later, not one tick later. */
        EXPECT_EQ(vlapic_next_deadline(&l), 1501);
        vlapic_timer_update(&l, 1500);
        EXPECT_EQ(vlapic_pending(&l), -1);
        vlapic_timer_update(&l, 1501);
        EXPECT_EQ(take(&l), 0x40);
        wr(&l, VLAPIC_REG_EOI, 0);
        /* Missed periods still coalesce, keeping the min_period phase. */
        vlapic_timer_update(&l, 3200);
        EXPECT_EQ(take(&l), 0x40);
        EXPECT_EQ(vlapic_next_deadline(&l), 3501);
        /* A period longer than min_period is kept as it is. */
        wr(&l, VLAPIC_REG_EOI, 0);
        f.now = 3300;
        wr(&l, VLAPIC_REG_TMICT, 800);
        EXPECT_EQ(vlapic_next_deadline(&l), 4100);
        vlapic_timer_update(&l, 4100);
        EXPECT_EQ(take(&l), 0x40);
        EXPECT_EQ(vlapic_next_deadline(&l), 4900);
}

TEST(divide_values)
{
        static const struct {
                uint32_t dcr;
                unsigned div;
        } t[] = {{0x0, 2},  {0x1, 4},  {0x2, 8},   {0x3, 16},
                 {0x8, 32}, {0x9, 64}, {0xa, 128}, {0xb, 1}};

        for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                struct vlapic l;
                struct fake_env f;

                timer_setup(&l, &f, VLAPIC_TIMER_ONESHOT | 0x40, t[i].dcr);
                wr(&l, VLAPIC_REG_TMICT, 1000);
                EXPECT_EQ(vlapic_next_deadline(&l), 1000 + 1000ull * t[i].div);
                f.now = 1000 + 10ull * t[i].div;
                EXPECT_EQ(rd(&l, VLAPIC_REG_TMCCT), 990);
                f.now = 1000 + 1000ull * t[i].div - 1;
                vlapic_timer_update(&l, f.now);
                EXPECT_EQ(vlapic_pending(&l), -1);
                f.now++;
                vlapic_timer_update(&l, f.now);
                EXPECT_EQ(vlapic_pending(&l), 0x40);
        }
}

TEST(divide_change_keeps_remaining_count)
{
        struct vlapic l;
        struct fake_env f;

        timer_setup(&l, &f, VLAPIC_TIMER_ONESHOT | 0x40, 0xb); /* /1 */
        wr(&l, VLAPIC_REG_TMICT, 100);
        f.now = 1060;                 /* 40 left */
        wr(&l, VLAPIC_REG_TDCR, 0x1); /* /4 */
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMCCT), 40);
        EXPECT_EQ(vlapic_next_deadline(&l), 1060 + 160);
        f.now = 1060 + 80;
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMCCT), 20);
}

TEST(current_count_decreases)
{
        struct vlapic l;
        struct fake_env f;
        uint32_t prev;

        timer_setup(&l, &f, VLAPIC_TIMER_ONESHOT | VLAPIC_LVT_MASKED | 0x40, 0x3); /* /16 */
        wr(&l, VLAPIC_REG_TMICT, 0xffffffff);
        prev = rd(&l, VLAPIC_REG_TMCCT);
        EXPECT_EQ(prev, 0xffffffffu);
        for (unsigned i = 0; i < 100; i++) {
                uint32_t cur;

                f.now += 12345 + i * 977;
                cur = rd(&l, VLAPIC_REG_TMCCT);
                EXPECT_TRUE(cur < prev);
                prev = cur;
        }
        /* Masked: counted, no deadline reported, no interrupt on expiry. */
        EXPECT_EQ(vlapic_next_deadline(&l), UINT64_MAX);
        f.now += 0xffffffffull * 16;
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMCCT), 0);
        EXPECT_EQ(vlapic_pending(&l), -1);
}

TEST(masked_lvt_timer)
{
        struct vlapic l;
        struct fake_env f;

        timer_setup(&l, &f, VLAPIC_TIMER_PERIODIC | VLAPIC_LVT_MASKED | 0x50, 0xb);
        wr(&l, VLAPIC_REG_TMICT, 100);
        f.now = 1250;
        vlapic_timer_update(&l, f.now);
        EXPECT_EQ(vlapic_pending(&l), -1);
        /* Unmasking does not deliver the expiries that happened while masked. */
        wr(&l, VLAPIC_REG_TIMER, VLAPIC_TIMER_PERIODIC | 0x50);
        EXPECT_EQ(vlapic_pending(&l), -1);
        EXPECT_EQ(vlapic_next_deadline(&l), 1300);
        f.now = 1300;
        vlapic_timer_update(&l, f.now);
        EXPECT_EQ(vlapic_pending(&l), 0x50);
}

TEST(oneshot_periodic_switch)
{
        struct vlapic l;
        struct fake_env f;

        timer_setup(&l, &f, VLAPIC_TIMER_PERIODIC | 0x50, 0xb);
        wr(&l, VLAPIC_REG_TMICT, 100);
        f.now = 1330; /* fired three times (coalesced), 70 left in this period */
        vlapic_timer_update(&l, f.now);
        EXPECT_EQ(take(&l), 0x50);
        wr(&l, VLAPIC_REG_EOI, 0);
        wr(&l, VLAPIC_REG_TIMER, VLAPIC_TIMER_ONESHOT | 0x50);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMCCT), 70);
        EXPECT_EQ(vlapic_next_deadline(&l), 1400);
        f.now = 1400;
        vlapic_timer_update(&l, f.now);
        EXPECT_EQ(take(&l), 0x50);
        wr(&l, VLAPIC_REG_EOI, 0);
        f.now = 1500;
        vlapic_timer_update(&l, f.now);
        EXPECT_EQ(vlapic_pending(&l), -1);
}

TEST(tsc_deadline)
{
        struct vlapic l;
        struct fake_env f;

        timer_setup(&l, &f, VLAPIC_TIMER_ONESHOT | 0x60, 0xb);
        /* Not in TSC-deadline mode: MSR reads 0, writes ignored. */
        vlapic_tsc_deadline_write(&l, 5000);
        EXPECT_EQ(vlapic_tsc_deadline_read(&l), 0);
        EXPECT_EQ(vlapic_next_deadline(&l), UINT64_MAX);

        wr(&l, VLAPIC_REG_TIMER, VLAPIC_TIMER_DEADLINE | 0x60);
        /* Initial count is ignored in this mode. */
        wr(&l, VLAPIC_REG_TMICT, 10);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMICT), 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMCCT), 0);
        vlapic_tsc_deadline_write(&l, 5000);
        EXPECT_EQ(vlapic_tsc_deadline_read(&l), 5000);
        EXPECT_EQ(vlapic_next_deadline(&l), 5000);
        f.now = 4999;
        vlapic_timer_update(&l, f.now);
        EXPECT_EQ(vlapic_pending(&l), -1);
        f.now = 5000;
        vlapic_timer_update(&l, f.now);
        EXPECT_EQ(take(&l), 0x60);
        wr(&l, VLAPIC_REG_EOI, 0);
        /* Firing disarms and clears the MSR. */
        EXPECT_EQ(vlapic_tsc_deadline_read(&l), 0);
        EXPECT_EQ(vlapic_next_deadline(&l), UINT64_MAX);
        f.now = 9000;
        vlapic_timer_update(&l, f.now);
        EXPECT_EQ(vlapic_pending(&l), -1);

        /* Writing 0 disarms. */
        vlapic_tsc_deadline_write(&l, 10000);
        vlapic_tsc_deadline_write(&l, 0);
        EXPECT_EQ(vlapic_next_deadline(&l), UINT64_MAX);
        f.now = 20000;
        vlapic_timer_update(&l, f.now);
        EXPECT_EQ(vlapic_pending(&l), -1);

        /* A deadline in the past fires at once. */
        vlapic_tsc_deadline_write(&l, 100);
        EXPECT_EQ(vlapic_pending(&l), 0x60);
        EXPECT_EQ(vlapic_tsc_deadline_read(&l), 0);
        take(&l);
        wr(&l, VLAPIC_REG_EOI, 0);

        /* Leaving TSC-deadline mode disarms. */
        vlapic_tsc_deadline_write(&l, 30000);
        wr(&l, VLAPIC_REG_TIMER, VLAPIC_TIMER_ONESHOT | 0x60);
        wr(&l, VLAPIC_REG_TIMER, VLAPIC_TIMER_DEADLINE | 0x60);
        EXPECT_EQ(vlapic_tsc_deadline_read(&l), 0);
        f.now = 40000;
        vlapic_timer_update(&l, f.now);
        EXPECT_EQ(vlapic_pending(&l), -1);

        /* Masked: the deadline passes silently and disarms. */
        wr(&l, VLAPIC_REG_TIMER, VLAPIC_TIMER_DEADLINE | VLAPIC_LVT_MASKED | 0x60);
        vlapic_tsc_deadline_write(&l, 41000);
        EXPECT_EQ(vlapic_next_deadline(&l), UINT64_MAX);
        f.now = 42000;
        EXPECT_EQ(vlapic_tsc_deadline_read(&l), 0);
        EXPECT_EQ(vlapic_pending(&l), -1);
}

TEST(entering_deadline_mode_disarms_count)
{
        struct vlapic l;
        struct fake_env f;

        timer_setup(&l, &f, VLAPIC_TIMER_ONESHOT | 0x60, 0xb);
        wr(&l, VLAPIC_REG_TMICT, 100);
        wr(&l, VLAPIC_REG_TIMER, VLAPIC_TIMER_DEADLINE | 0x60);
        f.now = 5000;
        vlapic_timer_update(&l, f.now);
        EXPECT_EQ(vlapic_pending(&l), -1);
        /* The reserved mode 11b runs no timer. */
        wr(&l, VLAPIC_REG_TIMER, (3u << 17) | 0x60);
        wr(&l, VLAPIC_REG_TMICT, 100);
        vlapic_tsc_deadline_write(&l, 1);
        f.now = 100000;
        vlapic_timer_update(&l, f.now);
        EXPECT_EQ(vlapic_pending(&l), -1);
        EXPECT_EQ(vlapic_next_deadline(&l), UINT64_MAX);
}

TEST(timer_illegal_vector)
{
        struct vlapic l;
        struct fake_env f;

        timer_setup(&l, &f, VLAPIC_TIMER_ONESHOT | 0x05, 0xb);
        wr(&l, VLAPIC_REG_TMICT, 1);
        f.now += 1;
        vlapic_timer_update(&l, f.now);
        EXPECT_EQ(vlapic_pending(&l), -1);
        wr(&l, VLAPIC_REG_ESR, 0);
        EXPECT_EQ(rd(&l, VLAPIC_REG_ESR), VLAPIC_ESR_RECV_ILLEGAL);
}

TEST(huge_values_do_not_overflow)
{
        struct vlapic l;
        struct fake_env f;

        /* Largest count and divider, clock near the top of the range. */
        timer_setup(&l, &f, VLAPIC_TIMER_PERIODIC | 0x70, 0xa); /* /128 */
        f.now = UINT64_MAX - 1000;
        wr(&l, VLAPIC_REG_TMICT, 0xffffffff);
        EXPECT_EQ(vlapic_next_deadline(&l), UINT64_MAX);
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMCCT), 0xffffffffu);
        f.now = UINT64_MAX;
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMCCT), 0xffffffffu - 7);
        vlapic_timer_update(&l, UINT64_MAX);
        EXPECT_EQ(vlapic_pending(&l), -1);

        /* Periodic catch-up over an enormous gap. */
        timer_setup(&l, &f, VLAPIC_TIMER_PERIODIC | 0x70, 0xb);
        wr(&l, VLAPIC_REG_TMICT, 1);
        vlapic_timer_update(&l, UINT64_MAX - 1);
        EXPECT_EQ(take(&l), 0x70);
        EXPECT_EQ(vlapic_next_deadline(&l), UINT64_MAX);
        f.now = UINT64_MAX - 1;
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMCCT), 1);

        /* One-shot over the whole range. */
        timer_setup(&l, &f, VLAPIC_TIMER_ONESHOT | 0x70, 0xa);
        wr(&l, VLAPIC_REG_TMICT, 0xffffffff);
        EXPECT_EQ(vlapic_next_deadline(&l), 1000 + (0xffffffffull << 7));
        f.now = UINT64_MAX;
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMCCT), 0);
        EXPECT_EQ(take(&l), 0x70);

        /* TSC deadline at the maximum. */
        timer_setup(&l, &f, VLAPIC_TIMER_DEADLINE | 0x70, 0);
        vlapic_tsc_deadline_write(&l, UINT64_MAX);
        EXPECT_EQ(vlapic_next_deadline(&l), UINT64_MAX);
        vlapic_timer_update(&l, UINT64_MAX - 1);
        EXPECT_EQ(vlapic_pending(&l), -1);
        vlapic_timer_update(&l, UINT64_MAX);
        EXPECT_EQ(vlapic_pending(&l), 0x70);
}

TEST(clock_going_backwards_is_harmless)
{
        struct vlapic l;
        struct fake_env f;

        timer_setup(&l, &f, VLAPIC_TIMER_ONESHOT | 0x40, 0xb);
        wr(&l, VLAPIC_REG_TMICT, 100);
        f.now = 500;
        EXPECT_EQ(rd(&l, VLAPIC_REG_TMCCT), 100);
        vlapic_timer_update(&l, f.now);
        EXPECT_EQ(vlapic_pending(&l), -1);
}

/* ---- IPIs between the LAPICs of one VM (vlapic_ipi_deliver through env.send_ipi) ---- */

#define GROUP_N 4

struct group {
        struct fake_env f;
        struct vlapic l[GROUP_N];
        struct vlapic *all[GROUP_N];
        uint64_t changed, started; /* of the last IPI */
        unsigned sends;
};

static void group_send(void *ctx, struct vlapic *src)
{
        struct group *g = ctx;

        g->sends++;
        g->changed = vlapic_ipi_deliver(src, g->all, GROUP_N, &g->started);
}

/* LAPIC i has APIC ID i; 0 runs, the others wait for SIPI unless `running`. */
static void group_setup(struct group *g, bool running)
{
        struct vlapic_env env = {
            .now = fake_now, .eoi_vector = fake_eoi, .send_ipi = group_send, .ctx = g};

        memset(g, 0, sizeof(*g));
        g->f.now = 1000;
        for (unsigned i = 0; i < GROUP_N; i++) {
                vlapic_init(&g->l[i], i, &env);
                g->l[i].wait_sipi = !running && i != 0;
                g->all[i] = &g->l[i];
                enable(&g->l[i]);
        }
}

static void send(struct group *g, unsigned from, uint8_t dest, uint32_t lo)
{
        wr(&g->l[from], VLAPIC_REG_ICR_HI, (uint32_t)dest << 24);
        wr(&g->l[from], VLAPIC_REG_ICR_LO, lo);
}

TEST(ipi_init_sipi)
{
        struct group g;

        group_setup(&g, false);
        /* A fixed IPI to a LAPIC waiting for SIPI: not delivered, counted at the sender. */
        send(&g, 0, 1, 0x00004041);
        EXPECT_EQ(g.sends, 1);
        EXPECT_EQ(g.changed, 0);
        EXPECT_EQ(g.l[0].stats.ipi_dropped, 1);
        /* INIT (assert): the AP's LAPIC is reset (disabled) and keeps waiting. */
        send(&g, 0, 1, 0x0000c500);
        EXPECT_EQ(g.changed, 1u << 1);
        EXPECT_EQ(g.started, 0);
        EXPECT_TRUE(g.l[1].wait_sipi);
        EXPECT_EQ(g.l[1].svr, 0xff);
        EXPECT_EQ(rd(&g.l[1], VLAPIC_REG_ID), 1u << 24);
        /* INIT level de-assert: nothing at all. */
        send(&g, 0, 0, 0x00088500);
        EXPECT_EQ(g.changed, 0);
        EXPECT_EQ(g.l[0].stats.ipi_dropped, 1);
        /* SIPI vector 0x9a: released. */
        send(&g, 0, 1, 0x0000069a);
        EXPECT_EQ(g.changed, 1u << 1);
        EXPECT_EQ(g.started, 1u << 1);
        EXPECT_FALSE(g.l[1].wait_sipi);
        EXPECT_EQ(g.l[1].sipi_vector, 0x9a);
        /* The second SIPI of the protocol: ignored (the AP runs), no new start. */
        send(&g, 0, 1, 0x00000611);
        EXPECT_EQ(g.started, 0);
        EXPECT_EQ(g.l[1].sipi_vector, 0x9a);
        EXPECT_EQ(g.l[0].stats.ipi_dropped, 2);
        /* INIT to a running vCPU: ignored, counted at the target. */
        send(&g, 0, 1, 0x00004500);
        EXPECT_EQ(g.changed, 0);
        EXPECT_EQ(g.l[1].stats.init_ignored, 1);
        EXPECT_FALSE(g.l[1].wait_sipi);
        /* SIPI to all excluding self: the two still waiting start together. */
        send(&g, 1, 0, 0x000c0620);
        EXPECT_EQ(g.started, (1u << 2) | (1u << 3));
        EXPECT_EQ(g.l[2].sipi_vector, 0x20);
        EXPECT_EQ(g.l[3].sipi_vector, 0x20);
        /* INIT and SIPI to self are illegal: dropped. */
        send(&g, 0, 0, 0x00044500);
        send(&g, 0, 0, 0x00040620);
        EXPECT_EQ(g.changed, 0);
        EXPECT_EQ(g.l[0].stats.ipi_dropped, 5);
}

TEST(ipi_destinations)
{
        struct group g;

        group_setup(&g, true);
        /* Physical: one LAPIC, or all with 0xff; another ID: nobody. */
        send(&g, 0, 2, 0x00004050);
        EXPECT_EQ(g.changed, 1u << 2);
        EXPECT_EQ(take(&g.l[2]), 0x50);
        wr(&g.l[2], VLAPIC_REG_EOI, 0);
        EXPECT_EQ(vlapic_pending(&g.l[1]), -1);
        send(&g, 1, 0xff, 0x00004051);
        EXPECT_EQ(g.changed, 0xfu);
        for (unsigned i = 0; i < GROUP_N; i++)
                EXPECT_EQ(take(&g.l[i]), 0x51);
        send(&g, 1, 9, 0x00004052);
        EXPECT_EQ(g.changed, 0);
        EXPECT_EQ(g.l[1].stats.ipi_dropped, 1);
        /* Logical flat: LDR bit i for LAPIC i (Linux's flat mode); a mask names several. */
        for (unsigned i = 0; i < GROUP_N; i++)
                wr(&g.l[i], VLAPIC_REG_LDR, (1u << i) << 24);
        send(&g, 0, 0x0a, 0x00004853);
        EXPECT_EQ(g.changed, (1u << 1) | (1u << 3));
        /* Lowest priority to the same mask: one of them. */
        send(&g, 0, 0x0c, 0x00004954);
        EXPECT_EQ(g.changed, 1u << 2);
        /* Logical cluster: cluster 1, members 0x3 (LAPICs 2 and 3 here). */
        for (unsigned i = 0; i < GROUP_N; i++) {
                wr(&g.l[i], VLAPIC_REG_DFR, 0x0fffffff);
                wr(&g.l[i], VLAPIC_REG_LDR, ((i / 2) << 28 | (1u << (i % 2)) << 24));
        }
        send(&g, 0, 0x13, 0x00004855);
        EXPECT_EQ(g.changed, (1u << 2) | (1u << 3));
        /* A software-disabled LAPIC does not accept. */
        wr(&g.l[3], VLAPIC_REG_SVR, 0xff);
        send(&g, 0, 3, 0x00004056);
        EXPECT_EQ(g.changed, 0);
        EXPECT_EQ(g.l[3].stats.disabled_drop, 1);
}

/* ---- A VM's largest LAPIC group: VLAPIC_MAX_GROUP (64) vCPUs, APIC IDs 0..63 ---- */

struct big {
        struct fake_env f;
        struct vlapic l[VLAPIC_MAX_GROUP];
        struct vlapic *all[VLAPIC_MAX_GROUP];
        uint64_t changed, started;
};

static void big_send_ipi(void *ctx, struct vlapic *src)
{
        struct big *b = ctx;

        b->changed = vlapic_ipi_deliver(src, b->all, VLAPIC_MAX_GROUP, &b->started);
}

static void big_setup(struct big *b)
{
        struct vlapic_env env = {.now = fake_now, .send_ipi = big_send_ipi, .ctx = b};

        memset(b, 0, sizeof(*b));
        b->f.now = 1000;
        for (unsigned i = 0; i < VLAPIC_MAX_GROUP; i++) {
                vlapic_init(&b->l[i], i, &env);
                b->l[i].wait_sipi = i != 0;
                b->all[i] = &b->l[i];
        }
}

static void big_send(struct big *b, unsigned from, uint8_t dest, uint32_t lo)
{
        wr(&b->l[from], VLAPIC_REG_ICR_HI, (uint32_t)dest << 24);
        wr(&b->l[from], VLAPIC_REG_ICR_LO, lo);
}

TEST(ipi_64_vcpus)
{
        static struct big b;

        big_setup(&b);
        enable(&b.l[0]);
        /* Linux's bring-up of the last APs: INIT, then SIPI, to APIC IDs above 31. */
        big_send(&b, 0, 63, 0x0000c500);
        EXPECT_EQ(b.changed, 1ull << 63);
        big_send(&b, 0, 63, 0x00000608);
        EXPECT_EQ(b.started, 1ull << 63);
        EXPECT_FALSE(b.l[63].wait_sipi);
        /* SIPI to all excluding self: every other AP starts, in one mask. */
        big_send(&b, 0, 0, 0x000c0609);
        EXPECT_EQ(b.started, ~1ull & ~(1ull << 63));
        for (unsigned i = 0; i < VLAPIC_MAX_GROUP; i++)
                enable(&b.l[i]);
        /* Physical destinations: each ID reaches its own LAPIC and no other. */
        for (unsigned i = 0; i < VLAPIC_MAX_GROUP; i++) {
                big_send(&b, (i + 1) % VLAPIC_MAX_GROUP, (uint8_t)i, 0x00004040 + (i & 0xf));
                EXPECT_EQ(b.changed, 1ull << i);
                EXPECT_EQ(take(&b.l[i]), 0x40 + (i & 0xf));
        }
        /* An ID no vCPU has: nobody. */
        big_send(&b, 5, 64, 0x00004050);
        EXPECT_EQ(b.changed, 0);
        /* Physical broadcast (0xff) and all-including-self: all 64. */
        big_send(&b, 40, 0xff, 0x00004051);
        EXPECT_EQ(b.changed, ~0ull);
        big_send(&b, 40, 0, 0x00084052);
        EXPECT_EQ(b.changed, ~0ull);
        big_send(&b, 40, 0, 0x000c4053); /* all excluding self */
        EXPECT_EQ(b.changed, ~0ull & ~(1ull << 40));
        /* Logical cluster model: 15 clusters of 4; cluster 13 member 2 is LAPIC 53. */
        for (unsigned i = 0; i < VLAPIC_MAX_GROUP; i++) {
                wr(&b.l[i], VLAPIC_REG_DFR, 0x0fffffff);
                wr(&b.l[i], VLAPIC_REG_LDR, (i / 4) << 28 | (1u << (i % 4)) << 24);
        }
        big_send(&b, 0, 0xd2, 0x00004854);
        EXPECT_EQ(b.changed, 1ull << 53);
        big_send(&b, 0, 0xdf, 0x00004855); /* cluster 13, all four */
        EXPECT_EQ(b.changed, 0xfull << 52);
        big_send(&b, 0, 0xf1, 0x00004856); /* member 0 of every cluster */
        {
                uint64_t want = 0;

                for (unsigned i = 0; i < VLAPIC_MAX_GROUP; i += 4)
                        want |= 1ull << i;
                EXPECT_EQ(b.changed, want);
        }
        /* Lowest priority to a cluster: one of them, and only one. */
        big_send(&b, 0, 0xef, 0x00004957);
        EXPECT_EQ(b.changed, 1ull << 56);
}

TEST(ipi_shorthands)
{
        struct group g;

        group_setup(&g, true);
        send(&g, 1, 0, 0x00044060); /* self */
        EXPECT_EQ(g.changed, 1u << 1);
        send(&g, 1, 0, 0x00084061); /* all including self */
        EXPECT_EQ(g.changed, 0xfu);
        send(&g, 1, 0, 0x000c4062); /* all excluding self */
        EXPECT_EQ(g.changed, 0xfu & ~(1u << 1));
        /* The shorthand overrides the destination field. */
        send(&g, 1, 3, 0x00044063);
        EXPECT_EQ(g.changed, 1u << 1);
        EXPECT_EQ(take(&g.l[1]), 0x63);
        EXPECT_EQ(take(&g.l[3]), 0x62);
        /* Illegal vectors: the sender's ESR, nobody receives. */
        send(&g, 2, 0, 0x000c400f);
        EXPECT_EQ(g.changed, 0);
        wr(&g.l[2], VLAPIC_REG_ESR, 0);
        EXPECT_EQ(rd(&g.l[2], VLAPIC_REG_ESR), VLAPIC_ESR_SEND_ILLEGAL);
        /* SMI and reserved modes: dropped and counted. */
        send(&g, 2, 0, 0x000c4200);
        send(&g, 2, 0, 0x000c4300);
        send(&g, 2, 0, 0x000c4700);
        EXPECT_EQ(g.changed, 0);
        EXPECT_EQ(g.l[2].stats.ipi_dropped, 3);
        /* NMI to all excluding self: the others, once each; again: latched behind it (their
         * CPUs are kicked); a third time: they collapse, no change. */
        send(&g, 2, 0, 0x000c4400);
        EXPECT_EQ(g.changed, 0xfu & ~(1u << 2));
        send(&g, 2, 0, 0x000c4400);
        EXPECT_EQ(g.changed, 0xfu & ~(1u << 2));
        send(&g, 2, 0, 0x000c4400);
        EXPECT_EQ(g.changed, 0);
        EXPECT_EQ(g.l[2].stats.ipi_dropped, 3);
        EXPECT_EQ(g.l[0].stats.nmi_collapsed, 1);
        EXPECT_FALSE(g.l[2].nmi_pending);
        /* By logical destination (flat), and to a LAPIC waiting for SIPI: not taken there. */
        for (unsigned i = 0; i < GROUP_N; i++)
                while (vlapic_take_nmi(&g.l[i]))
                        ;
        wr(&g.l[3], VLAPIC_REG_LDR, 0x08000000);
        send(&g, 0, 0x08, 0x00004c00);
        EXPECT_EQ(g.changed, 1u << 3);
        EXPECT_TRUE(vlapic_take_nmi(&g.l[3]));
        g.l[1].wait_sipi = true;
        send(&g, 0, 1, 0x00004400);
        EXPECT_EQ(g.changed, 0);
        EXPECT_FALSE(g.l[1].nmi_pending);
}

/* One fixed logical IPI from LAPIC 0 with the given LDRs (DFR: cluster or flat on all). */
static uint32_t logical_send(struct group *g, bool cluster, uint8_t ldr0, uint8_t ldr1,
                             uint8_t dest)
{
        const uint8_t ldr[GROUP_N] = {ldr0, ldr1, 0, 0};

        for (unsigned i = 0; i < GROUP_N; i++) {
                wr(&g->l[i], VLAPIC_REG_DFR, cluster ? 0x0fffffff : 0xffffffff);
                wr(&g->l[i], VLAPIC_REG_LDR, (uint32_t)ldr[i] << 24);
                memset(g->l[i].irr, 0, sizeof(g->l[i].irr));
        }
        send(g, 0, dest, 0x000008f1);
        return g->changed;
}

/*
 * kvm-unit-tests' test_logical_ipi_xapic (x86/apic.c), every destination it tries: logical
 * flat (8 bits, one per LAPIC) and cluster (cluster in bits 7:4, members in 3:0), one and two
 * targets; IDs that are not there are ignored. Cluster 0xf is the broadcast cluster.
 */
TEST(logical_destinations_as_kvm_unit_tests)
{
        struct group g;
        unsigned bad = 0;

        group_setup(&g, true);
        for (unsigned i = 0; i < 8; i++)
                for (unsigned k = 0; k < 0xff; k++)
                        if (!((1u << i) & k))
                                bad += logical_send(&g, false, 0, (uint8_t)(1u << i),
                                                    (uint8_t)((1u << i) | k)) != 2u;
        EXPECT_EQ(bad, 0);
        for (unsigned c = 0; c < 0xf; c++)
                for (unsigned i = 0; i < 4; i++)
                        for (unsigned k = 0; k < 0x10; k++)
                                if (!((1u << i) & k))
                                        bad +=
                                            logical_send(&g, true, 0, (uint8_t)(c << 4 | 1u << i),
                                                         (uint8_t)(c << 4 | 1u << i | k)) != 2u;
        EXPECT_EQ(bad, 0);
        for (unsigned i = 0; i < 8; i++)
                for (unsigned j = 0; j < 8; j++)
                        for (unsigned k = 0; k < 0x100 && i != j; k++) {
                                uint8_t both = (uint8_t)(1u << i | 1u << j);

                                if (both & k)
                                        continue;
                                bad += logical_send(&g, false, (uint8_t)(1u << i),
                                                    (uint8_t)(1u << j), (uint8_t)(both | k)) != 3u;
                                bad +=
                                    logical_send(&g, false, both, both, (uint8_t)(both | k)) != 3u;
                        }
        EXPECT_EQ(bad, 0);
        for (unsigned c = 0; c < 0xf; c++)
                for (unsigned i = 0; i < 4; i++)
                        for (unsigned j = 0; j < 4; j++)
                                for (unsigned k = 0; k < 0x10 && i != j; k++) {
                                        uint8_t both = (uint8_t)(c << 4 | 1u << i | 1u << j);

                                        if ((both & 0xf) & k)
                                                continue;
                                        bad += logical_send(&g, true, (uint8_t)(c << 4 | 1u << i),
                                                            (uint8_t)(c << 4 | 1u << j),
                                                            (uint8_t)(both | k)) != 3u;
                                        bad += logical_send(&g, true, both, both,
                                                            (uint8_t)(both | k)) != 3u;
                                }
        EXPECT_EQ(bad, 0);
        /* Another cluster, and the broadcast cluster 0xf. */
        EXPECT_EQ(logical_send(&g, true, 0x31, 0x42, 0x33), 1u);
        EXPECT_EQ(logical_send(&g, true, 0x31, 0x42, 0xf3), 3u);
}

TEST_MAIN()
