/* Tests for arch/arm64/vgic.c: GICD/GICR registers as Linux programs them, SPI/PPI/SGI
 * inputs, the list-register flush/sync protocol (level resample, edge consumption, priority
 * order, overflow), and hostile MMIO. */
#include <stdint.h>

#include <arch/vgic.h>
#include <keel/errno.h>
#include <vmm/irq.h>

#include "test.h"

/* Redistributor state for the vgic under test (the arch allocates it per VM). */
static struct vgic_cpu test_cpus[VGIC_MAX_VCPUS];

#define GICD_CTLR       0x0000
#define GICD_TYPER      0x0004
#define GICD_IIDR       0x0008
#define GICD_IGROUPR    0x0080
#define GICD_ISENABLER  0x0100
#define GICD_ICENABLER  0x0180
#define GICD_ISPENDR    0x0200
#define GICD_ICPENDR    0x0280
#define GICD_ISACTIVER  0x0300
#define GICD_ICACTIVER  0x0380
#define GICD_IPRIORITYR 0x0400
#define GICD_ICFGR      0x0c00
#define GICD_IROUTER    0x6000
#define GIC_PIDR2       0xffe8

#define GICR_TYPER  0x0008
#define GICR_WAKER  0x0014
#define SGI_IGROUPR 0x0080
#define SGI_ISENABL 0x0100
#define SGI_ICENABL 0x0180
#define SGI_ISPENDR 0x0200
#define SGI_ICACTIV 0x0380
#define SGI_IPRIO   0x0400
#define SGI_ICFGR0  0x0c00
#define SGI_ICFGR1  0x0c04

#define CTLR_LINUX 0x13u /* ARE_NS | EnableGrp1A | EnableGrp1, as Linux writes it */

static uint64_t dread(struct vgic *g, uint64_t off, unsigned size)
{
        uint64_t v = 0xdeadbeefdeadbeefull;

        vgic_dist_ops.read(g, off, size, &v);
        return v;
}

static uint32_t dr(struct vgic *g, uint64_t off)
{
        return (uint32_t)dread(g, off, 4);
}

static void dw(struct vgic *g, uint64_t off, uint32_t v)
{
        vgic_dist_ops.write(g, off, 4, v);
}

static uint64_t rread(struct vgic *g, unsigned vcpu, uint64_t off, unsigned size)
{
        uint64_t v = 0xdeadbeefdeadbeefull;

        vgic_redist_ops.read(g, vcpu * VGIC_GICR_STRIDE + off, size, &v);
        return v;
}

static uint32_t sr(struct vgic *g, unsigned vcpu, uint64_t off)
{
        return (uint32_t)rread(g, vcpu, VGIC_GICR_SGI_BASE + off, 4);
}

static void sw(struct vgic *g, unsigned vcpu, uint64_t off, uint32_t v)
{
        vgic_redist_ops.write(g, vcpu * VGIC_GICR_STRIDE + VGIC_GICR_SGI_BASE + off, 4, v);
}

static void set_prio(struct vgic *g, unsigned intid, uint8_t prio)
{
        if (intid < 32)
                return;
        vgic_dist_ops.write(g, GICD_IPRIORITYR + intid, 1, prio);
}

static void set_edge(struct vgic *g, unsigned intid, bool edge)
{
        uint64_t off = GICD_ICFGR + intid / 16 * 4;
        uint32_t bit = 2u << (2 * (intid % 16));
        uint32_t v = dr(g, off);

        dw(g, off, edge ? v | bit : v & ~bit);
}

static void enable_spi(struct vgic *g, unsigned intid)
{
        dw(g, GICD_ISENABLER + intid / 32 * 4, 1u << (intid % 32));
}

static bool bit_of(struct vgic *g, uint64_t base, unsigned intid)
{
        return (dr(g, base + intid / 32 * 4) >> (intid % 32)) & 1u;
}

/* What Linux's GICv3 driver does at boot (gic_dist_init, gic_cpu_init per CPU). */
static void linux_init(struct vgic *g)
{
        uint32_t typer = dr(g, GICD_TYPER);
        unsigned nr_irqs = ((typer & 0x1f) + 1) * 32;

        dw(g, GICD_CTLR, 0);
        while (dr(g, GICD_CTLR) & VGIC_GICD_CTLR_RWP)
                ;
        for (unsigned i = 32; i < nr_irqs; i += 32) {
                dw(g, GICD_IGROUPR + i / 8, ~0u);
                dw(g, GICD_ICACTIVER + i / 8, ~0u);
                dw(g, GICD_ICENABLER + i / 8, ~0u);
        }
        for (unsigned i = 32; i < nr_irqs; i += 16)
                dw(g, GICD_ICFGR + i / 4, 0);
        for (unsigned i = 32; i < nr_irqs; i += 4)
                dw(g, GICD_IPRIORITYR + i, 0xa0a0a0a0u);
        dw(g, GICD_CTLR, CTLR_LINUX);
        for (unsigned i = 32; i < nr_irqs; i++)
                vgic_dist_ops.write(g, GICD_IROUTER + 8 * i, 8, 0);
        for (unsigned c = 0; c < g->nr_vcpus; c++) {
                uint64_t waker = rread(g, c, GICR_WAKER, 4);

                vgic_redist_ops.write(g, c * VGIC_GICR_STRIDE + GICR_WAKER, 4, waker & ~2ull);
                while (rread(g, c, GICR_WAKER, 4) & 4)
                        ;
                sw(g, c, SGI_IGROUPR, ~0u);
                sw(g, c, SGI_ICACTIV, ~0u);
                sw(g, c, SGI_ICENABL, ~0u);
                for (unsigned i = 0; i < 32; i += 4)
                        sw(g, c, SGI_IPRIO + i, 0xa0a0a0a0u);
                sw(g, c, SGI_ISENABL, 0xffffu); /* IPIs */
        }
}

static void setup(struct vgic *g, unsigned nr_vcpus, unsigned nr_spis)
{
        ASSERT_TRUE(vgic_init(g, test_cpus, nr_vcpus, nr_spis) == 0);
        linux_init(g);
}

static unsigned lr_intid(uint64_t lr)
{
        return (unsigned)(lr & VGIC_LR_VINTID_MASK);
}

static unsigned lr_prio(uint64_t lr)
{
        return (unsigned)((lr & VGIC_LR_PRIO_MASK) >> VGIC_LR_PRIO_SHIFT);
}

/* What the virtual CPU interface does when the guest acknowledges / deactivates. */
static void guest_ack(uint64_t *lr)
{
        *lr = (*lr & ~VGIC_LR_STATE_MASK) | VGIC_LR_ACTIVE;
}

static void guest_eoi(uint64_t *lr)
{
        *lr &= ~VGIC_LR_ACTIVE;
}

/* Flush into `lrs` (nr entries) and check the invariants every flush must keep. */
static unsigned flush(struct vgic *g, unsigned vcpu, uint64_t *lrs, unsigned nr, bool *under)
{
        unsigned n = vgic_flush_lrs(g, vcpu, lrs, nr, under);

        EXPECT_TRUE(n <= nr && n <= VGIC_MAX_LRS);
        for (unsigned i = 0; i < nr; i++) {
                if (i >= n) {
                        EXPECT_EQ(lrs[i], 0);
                        continue;
                }
                EXPECT_NE(lrs[i] & VGIC_LR_STATE_MASK, 0);
                EXPECT_EQ(lrs[i] & VGIC_LR_HW, 0);
                EXPECT_TRUE(lr_intid(lrs[i]) < 32 + g->nr_spis);
                for (unsigned j = 0; j < i; j++)
                        EXPECT_NE(lr_intid(lrs[i]), lr_intid(lrs[j]));
        }
        return n;
}

TEST(init_ranges)
{
        struct vgic g;
        uint64_t lrs[4] = {1, 2, 3, 4};
        bool under = true;

        EXPECT_EQ(vgic_init(&g, test_cpus, 0, 32), -KEEL_EINVAL);
        EXPECT_EQ(vgic_init(&g, test_cpus, VGIC_MAX_VCPUS + 1, 32), -KEEL_EINVAL);
        EXPECT_EQ(vgic_init(&g, test_cpus, 1, VGIC_MAX_SPIS + 1), -KEEL_EINVAL);
        /* A failed init leaves a GIC on which every call is harmless. */
        vgic_set_level(&g, 40, true);
        vgic_sgi1r(&g, 0, 1);
        EXPECT_EQ(vgic_flush_lrs(&g, 0, lrs, 4, &under), 0);
        EXPECT_EQ(lrs[0] | lrs[3], 0);
        EXPECT_FALSE(under);
        EXPECT_FALSE(vgic_has_pending(&g, 0));
        EXPECT_EQ(rread(&g, 0, GICR_TYPER, 8), 0);

        EXPECT_EQ(vgic_init(&g, test_cpus, VGIC_MAX_VCPUS, VGIC_MAX_SPIS), 0);
        EXPECT_EQ(dr(&g, GICD_TYPER) & 0x1f, 3); /* 128 INTIDs */
        EXPECT_EQ(vgic_init(&g, test_cpus, 1, 0), 0);
        EXPECT_EQ(dr(&g, GICD_TYPER) & 0x1f, 0);
        EXPECT_EQ(vgic_init(&g, test_cpus, 1, 40), 0);
        EXPECT_EQ(dr(&g, GICD_TYPER) & 0x1f, 2); /* rounded up; 72..95 are RAZ/WI */
        dw(&g, GICD_ISENABLER + 8, ~0u);
        EXPECT_EQ(dr(&g, GICD_ISENABLER + 8), 0xffu); /* 64..71 */
}

TEST(linux_init_sequence)
{
        struct vgic g;
        uint32_t typer;

        ASSERT_TRUE(vgic_init(&g, test_cpus, 2, 64) == 0);
        typer = dr(&g, GICD_TYPER);
        EXPECT_EQ(typer & 0x1f, 2);         /* ITLinesNumber: 96 INTIDs */
        EXPECT_EQ((typer >> 19) & 0x1f, 9); /* IDbits: 10 */
        EXPECT_EQ((typer >> 17) & 1, 0);    /* no LPIs */
        EXPECT_EQ((typer >> 10) & 1, 0);    /* one Security state */
        EXPECT_EQ((dr(&g, GIC_PIDR2) >> 4) & 0xf, 3);
        EXPECT_EQ(dr(&g, GICD_CTLR), 0x50); /* ARE, DS; groups off */
        EXPECT_EQ(dr(&g, GICD_IIDR), 0x4b000000u);
        EXPECT_EQ(dr(&g, 0xfff0), 0x0d);
        EXPECT_EQ(dr(&g, 0xfffc), 0xb1);
        EXPECT_EQ(rread(&g, 0, GICR_WAKER, 4), 6); /* asleep at reset */

        linux_init(&g);
        EXPECT_EQ(dr(&g, GICD_CTLR), 0x53);
        EXPECT_EQ(dr(&g, GICD_IGROUPR + 4), ~0u);
        EXPECT_EQ(dr(&g, GICD_IGROUPR + 12), 0); /* beyond the SPIs */
        EXPECT_EQ(dr(&g, GICD_IGROUPR), 0);      /* banked: in the redistributor */
        EXPECT_EQ(dr(&g, GICD_IPRIORITYR + 32), 0xa0a0a0a0u);
        EXPECT_EQ(dr(&g, GICD_IPRIORITYR + 0), 0);
        EXPECT_EQ(dread(&g, GICD_IPRIORITYR + 33, 1), 0xa0);
        EXPECT_EQ(dr(&g, GICD_ICFGR + 8), 0);
        EXPECT_EQ(dread(&g, GICD_IROUTER + 8 * 40, 8), 0);
        for (unsigned c = 0; c < 2; c++) {
                EXPECT_EQ(rread(&g, c, GICR_WAKER, 4), 0);
                EXPECT_EQ(sr(&g, c, SGI_IGROUPR), ~0u);
                EXPECT_EQ(sr(&g, c, SGI_ISENABL), 0xffffu);
                EXPECT_EQ(sr(&g, c, SGI_IPRIO + 28), 0xa0a0a0a0u);
                EXPECT_EQ(sr(&g, c, SGI_ICFGR0), 0xaaaaaaaau); /* SGIs: edge, RO */
                EXPECT_EQ(sr(&g, c, SGI_ICFGR1), 0);           /* PPIs: level */
                EXPECT_EQ((rread(&g, c, 0xffe8, 4) >> 4) & 0xf, 3);
        }
        /* The timer PPI, enabled the way the arch timer driver does it. */
        sw(&g, 1, SGI_ISENABL, 1u << VGIC_VTIMER_PPI);
        EXPECT_EQ(sr(&g, 1, SGI_ISENABL), 0xffffu | 1u << VGIC_VTIMER_PPI);
        EXPECT_EQ(sr(&g, 0, SGI_ISENABL), 0xffffu);
        sw(&g, 0, SGI_ICFGR0, 0);
        EXPECT_EQ(sr(&g, 0, SGI_ICFGR0), 0xaaaaaaaau);
        /* CTLR: ARE and DS stay set, RWP reads 0. */
        dw(&g, GICD_CTLR, 0);
        EXPECT_EQ(dr(&g, GICD_CTLR), 0x50);
        dw(&g, GICD_CTLR, ~0u);
        EXPECT_EQ(dr(&g, GICD_CTLR), 0x53);
        EXPECT_EQ(g.stats.dist_unknown + g.stats.redist_unknown + g.stats.bad_access, 0);
}

TEST(redistributor_typer_last)
{
        struct vgic g;

        ASSERT_TRUE(vgic_init(&g, test_cpus, 1, 32) == 0);
        EXPECT_EQ(rread(&g, 0, GICR_TYPER, 8), 0x10);
        ASSERT_TRUE(vgic_init(&g, test_cpus, VGIC_MAX_VCPUS, 32) == 0);
        /* Linux's walk: frame after frame until Last. */
        for (unsigned c = 0;; c++) {
                uint64_t t;

                ASSERT_TRUE(c < VGIC_MAX_VCPUS);
                EXPECT_EQ((rread(&g, c, 0xffe8, 4) >> 4) & 0xf, 3);
                t = rread(&g, c, GICR_TYPER, 8);
                EXPECT_EQ(t >> 32, (c / 16) << 8 | c % 16); /* Aff1.Aff0 = vgic_vcpu_mpidr(c) */
                EXPECT_EQ((t >> 8) & 0xffff, c);            /* Processor_Number */
                EXPECT_EQ(rread(&g, c, GICR_TYPER, 4), t & 0xffffffffu);
                EXPECT_EQ(rread(&g, c, GICR_TYPER + 4, 4), t >> 32);
                if (t & 0x10) {
                        EXPECT_EQ(c, VGIC_MAX_VCPUS - 1);
                        break;
                }
        }
        /* Past the last frame: nothing, counted. */
        EXPECT_EQ(rread(&g, VGIC_MAX_VCPUS, GICR_TYPER, 8), 0);
        EXPECT_EQ(g.stats.redist_unknown, 1);
        /* 2-byte access to TYPER: RAZ, counted. */
        EXPECT_EQ(rread(&g, 0, GICR_TYPER, 2), 0);
        EXPECT_EQ(g.stats.bad_access, 1);
        /* TYPER and IIDR are read-only. */
        vgic_redist_ops.write(&g, GICR_TYPER, 8, ~0ull);
        EXPECT_EQ(rread(&g, 0, GICR_TYPER, 8), 0);
        EXPECT_EQ(rread(&g, 0, 4, 4), 0x4b000000u);
}

/* vCPU index <-> MPIDR affinity: Aff0 0..15 (SGI target lists), Aff1 beyond 16 vCPUs. */
TEST(affinity_mapping)
{
        bool seen[0x10000] = {false};

        for (unsigned i = 0; i < VGIC_MAX_VCPUS; i++) {
                uint64_t m = vgic_vcpu_mpidr(i);

                EXPECT_TRUE((m & 0xff) < 16);
                EXPECT_EQ(m >> 8, i / 16);
                EXPECT_FALSE(seen[m]);
                seen[m] = true;
                EXPECT_EQ(vgic_mpidr_vcpu(m, VGIC_MAX_VCPUS), i);
                EXPECT_EQ(vgic_mpidr_vcpu(m, i), VGIC_NO_VCPU); /* not among i vCPUs */
        }
        EXPECT_EQ(vgic_vcpu_mpidr(17), 0x101);
        EXPECT_EQ(vgic_vcpu_mpidr(63), 0x30f);
        EXPECT_EQ(vgic_mpidr_vcpu(0x10, 64), VGIC_NO_VCPU);           /* Aff0 16 */
        EXPECT_EQ(vgic_mpidr_vcpu(0x400, 64), VGIC_NO_VCPU);          /* vCPU 64 */
        EXPECT_EQ(vgic_mpidr_vcpu(0x10001, 64), VGIC_NO_VCPU);        /* Aff2 */
        EXPECT_EQ(vgic_mpidr_vcpu(0x100000001ull, 64), VGIC_NO_VCPU); /* Aff3 */
        EXPECT_EQ(vgic_mpidr_vcpu(0x80000001ull, 64), VGIC_NO_VCPU);  /* MPIDR bit 31 */
        EXPECT_EQ(vgic_mpidr_vcpu(0xff0f, 64), VGIC_NO_VCPU);
}

/* 64 vCPUs: a redistributor frame each, found by offset; TYPER names its affinity. */
TEST(redistributors_64)
{
        struct vgic g;

        setup(&g, 9, 32);
        EXPECT_EQ(dr(&g, GICD_TYPER) >> 5 & 7, 7); /* CPUNumber saturates: 8 or more PEs */
        setup(&g, 64, 32);
        EXPECT_EQ(dr(&g, GICD_TYPER) >> 5 & 7, 7);
        for (unsigned c = 0; c < 64; c++) {
                uint64_t t = rread(&g, c, GICR_TYPER, 8);

                EXPECT_EQ(t >> 32, vgic_vcpu_mpidr(c));
                EXPECT_EQ((t >> 8) & 0xffff, c);
                EXPECT_EQ((t & 0x10) != 0, c == 63);
                /* Its own SGI frame: enabling SGI 3 on vCPU c touches vCPU c only. */
                sw(&g, c, SGI_ICENABL, 1u << 3);
        }
        sw(&g, 45, SGI_ISENABL, 1u << 3);
        for (unsigned c = 0; c < 64; c++)
                EXPECT_EQ(sr(&g, c, SGI_ISENABL) >> 3 & 1, c == 45);
        EXPECT_EQ(g.stats.redist_unknown, 0);
        EXPECT_EQ(rread(&g, 64, GICR_TYPER, 8), 0); /* past the last frame */
        EXPECT_EQ(g.stats.redist_unknown, 1);
}

/* SGIs to vCPUs beyond 16 (ICC_SGI1R_EL1 with Aff1) and SPIs routed there. */
TEST(sgi_spi_64)
{
        struct vgic g;

        setup(&g, 64, 32);
        /* vCPU 0 sends SGI 2 to Aff1 3, target list bit 5: vCPU 53 only. */
        vgic_sgi1r(&g, 0, 3ull << 16 | 2ull << 24 | 1u << 5);
        EXPECT_EQ(vgic_kick_mask(&g, 0), 1ull << 53);
        for (unsigned c = 0; c < 64; c++)
                EXPECT_EQ(vgic_has_pending(&g, c), c == 53);
        /* Aff1 3, bits 0 and 15: vCPUs 48 and 63. */
        vgic_sgi1r(&g, 0, 3ull << 16 | 4ull << 24 | 0x8001u);
        EXPECT_EQ(vgic_kick_mask(&g, 0), 1ull << 48 | 1ull << 53 | 1ull << 63);
        /* Aff1 4 (vCPUs 64..) and a range selector (Aff0 16..): none exists, counted. */
        vgic_sgi1r(&g, 0, 4ull << 16 | 1ull << 24 | 1u);
        EXPECT_EQ(g.stats.sgi_dropped, 1);
        vgic_sgi1r(&g, 0, 1ull << 44 | 1ull << 24 | 1u);
        EXPECT_EQ(g.stats.sgi_dropped, 2);
        EXPECT_EQ(vgic_kick_mask(&g, 0), 1ull << 48 | 1ull << 53 | 1ull << 63);
        /* IRM: every vCPU but the sender (vCPU 63). */
        vgic_sgi1r(&g, 63, 1ull << 40 | 5ull << 24);
        EXPECT_EQ(vgic_kick_mask(&g, 63), ~0ull >> 1);

        setup(&g, 64, 32);
        /* SPI 40 routed to Aff1 3, Aff0 2 (vCPU 50). */
        set_edge(&g, 40, false);
        enable_spi(&g, 40);
        vgic_dist_ops.write(&g, GICD_IROUTER + 8 * 40, 8, 0x302);
        vgic_set_level(&g, 40, true);
        EXPECT_EQ(vgic_kick_mask(&g, VGIC_NO_VCPU), 1ull << 50);
        EXPECT_TRUE(vgic_has_pending(&g, 50));
        EXPECT_FALSE(vgic_has_pending(&g, 2));
        /* Routed to Aff0 16 (no such vCPU): nobody takes it. */
        vgic_dist_ops.write(&g, GICD_IROUTER + 8 * 40, 8, 0x10);
        EXPECT_EQ(vgic_kick_mask(&g, VGIC_NO_VCPU), 0);
        for (unsigned c = 0; c < 64; c++)
                EXPECT_FALSE(vgic_has_pending(&g, c));
}

TEST(level_spi_resample)
{
        struct vgic g;
        uint64_t lrs[4];
        bool under;
        struct irq_line line = {.set_level = vgic_set_level, .ctrl = &g, .pin = 40};

        setup(&g, 1, 64);
        enable_spi(&g, 40);
        EXPECT_EQ(flush(&g, 0, lrs, 4, &under), 0);
        vgic_sync_lrs(&g, 0, lrs, 0);

        irq_set_level(&line, true);
        EXPECT_TRUE(vgic_has_pending(&g, 0));
        ASSERT_TRUE(flush(&g, 0, lrs, 4, &under) == 1);
        EXPECT_FALSE(under);
        EXPECT_EQ(lr_intid(lrs[0]), 40);
        EXPECT_EQ(lrs[0] & VGIC_LR_STATE_MASK, VGIC_LR_PENDING);
        EXPECT_TRUE(lrs[0] & VGIC_LR_EOI);
        EXPECT_TRUE(lrs[0] & VGIC_LR_GROUP1);
        EXPECT_EQ(lr_prio(lrs[0]), 0xa0);

        /* The guest acknowledges; an exit; sync keeps it in flight. */
        guest_ack(&lrs[0]);
        vgic_sync_lrs(&g, 0, lrs, 1);
        EXPECT_TRUE(bit_of(&g, GICD_ISACTIVER, 40));
        EXPECT_TRUE(bit_of(&g, GICD_ISPENDR, 40)); /* the line is still high */
        EXPECT_FALSE(vgic_has_pending(&g, 0));     /* but nothing new to take */
        ASSERT_TRUE(flush(&g, 0, lrs, 4, &under) == 1);
        EXPECT_EQ(lr_intid(lrs[0]), 40);
        EXPECT_EQ(lrs[0] & VGIC_LR_STATE_MASK, VGIC_LR_STATE_MASK);
        EXPECT_TRUE(lrs[0] & VGIC_LR_EOI);

        /* EOI from pending+active leaves it pending: delivered again. */
        guest_eoi(&lrs[0]);
        vgic_sync_lrs(&g, 0, lrs, 1);
        EXPECT_FALSE(bit_of(&g, GICD_ISACTIVER, 40));
        ASSERT_TRUE(flush(&g, 0, lrs, 4, &under) == 1);
        EXPECT_EQ(lrs[0] & VGIC_LR_STATE_MASK, VGIC_LR_PENDING);

        /* Ack and EOI in one run (LR invalid, EOI maintenance exit), line still high:
         * the resample makes it pending again. */
        guest_ack(&lrs[0]);
        guest_eoi(&lrs[0]);
        EXPECT_EQ(lrs[0] & VGIC_LR_STATE_MASK, 0);
        vgic_sync_lrs(&g, 0, lrs, 1);
        EXPECT_TRUE(vgic_has_pending(&g, 0));
        ASSERT_TRUE(flush(&g, 0, lrs, 4, &under) == 1);
        EXPECT_EQ(lr_intid(lrs[0]), 40);
        EXPECT_EQ(lrs[0] & VGIC_LR_STATE_MASK, VGIC_LR_PENDING);
        EXPECT_TRUE(lrs[0] & VGIC_LR_EOI);

        /* Ack; the handler clears the device (an MMIO exit) so the line drops. */
        guest_ack(&lrs[0]);
        vgic_sync_lrs(&g, 0, lrs, 1);
        irq_set_level(&line, false);
        ASSERT_TRUE(flush(&g, 0, lrs, 4, &under) == 1);
        EXPECT_EQ(lrs[0] & VGIC_LR_STATE_MASK, VGIC_LR_ACTIVE);
        guest_eoi(&lrs[0]);
        vgic_sync_lrs(&g, 0, lrs, 1);
        EXPECT_FALSE(vgic_has_pending(&g, 0));
        EXPECT_EQ(flush(&g, 0, lrs, 4, &under), 0);
        vgic_sync_lrs(&g, 0, lrs, 0);
        EXPECT_FALSE(bit_of(&g, GICD_ISPENDR, 40));
        EXPECT_FALSE(bit_of(&g, GICD_ISACTIVER, 40));
}

TEST(level_soft_pending)
{
        struct vgic g;
        uint64_t lrs[4];

        setup(&g, 1, 32);
        enable_spi(&g, 33);
        /* ISPENDR on a level interrupt with its line low: pending until acknowledged. */
        dw(&g, GICD_ISPENDR + 4, 1u << 1);
        EXPECT_TRUE(bit_of(&g, GICD_ISPENDR, 33));
        ASSERT_TRUE(flush(&g, 0, lrs, 4, NULL) == 1);
        vgic_sync_lrs(&g, 0, lrs, 1); /* not taken yet */
        EXPECT_TRUE(bit_of(&g, GICD_ISPENDR, 33));
        ASSERT_TRUE(flush(&g, 0, lrs, 4, NULL) == 1);
        guest_ack(&lrs[0]);
        vgic_sync_lrs(&g, 0, lrs, 1);
        EXPECT_FALSE(bit_of(&g, GICD_ISPENDR, 33));
        ASSERT_TRUE(flush(&g, 0, lrs, 4, NULL) == 1);
        guest_eoi(&lrs[0]);
        vgic_sync_lrs(&g, 0, lrs, 1);
        EXPECT_EQ(flush(&g, 0, lrs, 4, NULL), 0);
        vgic_sync_lrs(&g, 0, lrs, 0);

        /* ICPENDR does not clear a level interrupt whose line is high. */
        vgic_set_level(&g, 33, true);
        dw(&g, GICD_ICPENDR + 4, 1u << 1);
        EXPECT_TRUE(bit_of(&g, GICD_ISPENDR, 33));
        vgic_set_level(&g, 33, false);
        EXPECT_FALSE(bit_of(&g, GICD_ISPENDR, 33));
}

TEST(edge_consumed_once)
{
        struct vgic g;
        uint64_t lrs[4];

        setup(&g, 1, 64);
        set_edge(&g, 50, true);
        EXPECT_EQ(dr(&g, GICD_ICFGR + 12), 2u << 4);
        enable_spi(&g, 50);
        vgic_set_level(&g, 50, true);
        vgic_set_level(&g, 50, true); /* no new edge */
        ASSERT_TRUE(flush(&g, 0, lrs, 4, NULL) == 1);
        EXPECT_EQ(lrs[0] & VGIC_LR_STATE_MASK, VGIC_LR_PENDING);
        EXPECT_FALSE(lrs[0] & VGIC_LR_EOI);

        /* Not taken during this run: still pending after sync, still one LR. */
        vgic_sync_lrs(&g, 0, lrs, 1);
        EXPECT_TRUE(bit_of(&g, GICD_ISPENDR, 50));
        ASSERT_TRUE(flush(&g, 0, lrs, 4, NULL) == 1);
        EXPECT_EQ(lrs[0] & VGIC_LR_STATE_MASK, VGIC_LR_PENDING);

        guest_ack(&lrs[0]);
        vgic_sync_lrs(&g, 0, lrs, 1);
        EXPECT_FALSE(bit_of(&g, GICD_ISPENDR, 50));
        ASSERT_TRUE(flush(&g, 0, lrs, 4, NULL) == 1);
        EXPECT_EQ(lrs[0] & VGIC_LR_STATE_MASK, VGIC_LR_ACTIVE);
        guest_eoi(&lrs[0]);
        vgic_sync_lrs(&g, 0, lrs, 1);
        EXPECT_EQ(flush(&g, 0, lrs, 4, NULL), 0); /* consumed once, line high or not */
        vgic_sync_lrs(&g, 0, lrs, 0);

        /* A new edge while the previous one sits in an LR is not lost. */
        vgic_set_level(&g, 50, false);
        vgic_set_level(&g, 50, true);
        ASSERT_TRUE(flush(&g, 0, lrs, 4, NULL) == 1);
        vgic_set_level(&g, 50, false); /* during the run */
        vgic_set_level(&g, 50, true);
        guest_ack(&lrs[0]);
        vgic_sync_lrs(&g, 0, lrs, 1);
        ASSERT_TRUE(flush(&g, 0, lrs, 4, NULL) == 1);
        EXPECT_EQ(lrs[0] & VGIC_LR_STATE_MASK, VGIC_LR_STATE_MASK);
        guest_eoi(&lrs[0]);
        vgic_sync_lrs(&g, 0, lrs, 1);
        ASSERT_TRUE(flush(&g, 0, lrs, 4, NULL) == 1);
        EXPECT_EQ(lrs[0] & VGIC_LR_STATE_MASK, VGIC_LR_PENDING);
        guest_ack(&lrs[0]);
        guest_eoi(&lrs[0]);
        vgic_sync_lrs(&g, 0, lrs, 1);
        EXPECT_EQ(flush(&g, 0, lrs, 4, NULL), 0);
}

TEST(priority_order_and_overflow)
{
        struct vgic g;
        uint64_t lrs[6];
        bool under = false;
        static const struct {
                unsigned intid;
                uint8_t prio;
        } irqs[] = {{40, 0xc0}, {41, 0x20}, {42, 0x80}, {43, 0x20}, {44, 0x40}, {45, 0xf0}};
        static const unsigned expect_first[4] = {41, 43, 44, 42};

        setup(&g, 1, 32);
        for (unsigned i = 0; i < 6; i++) {
                set_prio(&g, irqs[i].intid, irqs[i].prio);
                set_edge(&g, irqs[i].intid, true);
                enable_spi(&g, irqs[i].intid);
                vgic_set_level(&g, irqs[i].intid, true);
        }
        lrs[4] = lrs[5] = 0x1234;
        ASSERT_TRUE(flush(&g, 0, lrs, 4, &under) == 4);
        EXPECT_TRUE(under);
        EXPECT_EQ(lrs[4], 0x1234); /* only nr_lrs entries are written */
        for (unsigned i = 0; i < 4; i++)
                EXPECT_EQ(lr_intid(lrs[i]), expect_first[i]);
        /* The guest takes the two highest and finishes one of them. */
        guest_ack(&lrs[0]);
        guest_eoi(&lrs[0]);
        guest_ack(&lrs[1]);
        vgic_sync_lrs(&g, 0, lrs, 4);
        ASSERT_TRUE(flush(&g, 0, lrs, 4, &under) == 4);
        EXPECT_TRUE(under);
        EXPECT_EQ(lr_intid(lrs[0]), 43); /* in flight first */
        EXPECT_EQ(lrs[0] & VGIC_LR_STATE_MASK, VGIC_LR_ACTIVE);
        EXPECT_EQ(lr_intid(lrs[1]), 44);
        EXPECT_EQ(lr_intid(lrs[2]), 42);
        EXPECT_EQ(lr_intid(lrs[3]), 40);
        for (unsigned i = 0; i < 4; i++) {
                guest_ack(&lrs[i]);
                guest_eoi(&lrs[i]);
        }
        vgic_sync_lrs(&g, 0, lrs, 4);
        ASSERT_TRUE(flush(&g, 0, lrs, 6, &under) == 1);
        EXPECT_FALSE(under);
        EXPECT_EQ(lr_intid(lrs[0]), 45);
        EXPECT_EQ(lr_prio(lrs[0]), 0xf0);
        guest_ack(&lrs[0]);
        vgic_sync_lrs(&g, 0, lrs, 1);

        /* An active low-priority interrupt keeps its LR ahead of pending ones. */
        vgic_set_level(&g, 41, false);
        vgic_set_level(&g, 41, true);
        ASSERT_TRUE(flush(&g, 0, lrs, 1, &under) == 1);
        EXPECT_TRUE(under);
        EXPECT_EQ(lr_intid(lrs[0]), 45);
        EXPECT_EQ(lrs[0] & VGIC_LR_STATE_MASK, VGIC_LR_ACTIVE);
        guest_eoi(&lrs[0]);
        vgic_sync_lrs(&g, 0, lrs, 1);
        ASSERT_TRUE(flush(&g, 0, lrs, 1, &under) == 1);
        EXPECT_FALSE(under);
        EXPECT_EQ(lr_intid(lrs[0]), 41);

        /* No LRs at all: everything left out. */
        vgic_sync_lrs(&g, 0, lrs, 1);
        EXPECT_EQ(flush(&g, 0, lrs, 0, &under), 0);
        EXPECT_TRUE(under);
        vgic_sync_lrs(&g, 0, lrs, 0);
}

TEST(more_lrs_than_supported)
{
        struct vgic g;
        uint64_t lrs[VGIC_MAX_LRS + 4];
        bool under;

        setup(&g, 1, 32);
        for (unsigned i = 32; i < 64; i++) {
                set_edge(&g, i, true);
                enable_spi(&g, i);
                vgic_set_level(&g, i, true);
        }
        ASSERT_TRUE(flush(&g, 0, lrs, VGIC_MAX_LRS + 4, &under) == VGIC_MAX_LRS);
        EXPECT_TRUE(under);
        for (unsigned i = 0; i < VGIC_MAX_LRS; i++)
                EXPECT_EQ(lr_intid(lrs[i]), 32 + i); /* equal priority: by INTID */
}

TEST(sgi_self_others_broadcast)
{
        struct vgic g;
        uint64_t lrs[4];

        setup(&g, 3, 32);
        /* To self: TargetList bit 0, INTID 1. */
        vgic_sgi1r(&g, 0, 1ull << 24 | 1);
        EXPECT_TRUE(vgic_has_pending(&g, 0));
        EXPECT_FALSE(vgic_has_pending(&g, 1));
        EXPECT_EQ(sr(&g, 0, SGI_ISPENDR), 1u << 1);
        ASSERT_TRUE(flush(&g, 0, lrs, 4, NULL) == 1);
        EXPECT_EQ(lr_intid(lrs[0]), 1);
        EXPECT_FALSE(lrs[0] & VGIC_LR_EOI); /* edge */
        guest_ack(&lrs[0]);
        guest_eoi(&lrs[0]);
        vgic_sync_lrs(&g, 0, lrs, 1);
        EXPECT_FALSE(vgic_has_pending(&g, 0));

        /* To vCPUs 1 and 2 from 0. */
        vgic_sgi1r(&g, 0, 3ull << 24 | 6);
        EXPECT_FALSE(vgic_has_pending(&g, 0));
        EXPECT_EQ(sr(&g, 1, SGI_ISPENDR), 1u << 3);
        EXPECT_EQ(sr(&g, 2, SGI_ISPENDR), 1u << 3);
        ASSERT_TRUE(flush(&g, 2, lrs, 4, NULL) == 1);
        EXPECT_EQ(lr_intid(lrs[0]), 3);
        guest_ack(&lrs[0]);
        vgic_sync_lrs(&g, 2, lrs, 1);

        /* IRM: everyone but the sender. */
        vgic_sgi1r(&g, 1, 1ull << 40 | 5ull << 24);
        EXPECT_EQ(sr(&g, 0, SGI_ISPENDR), 1u << 5);
        EXPECT_EQ(sr(&g, 1, SGI_ISPENDR), 1u << 3);
        EXPECT_EQ(sr(&g, 2, SGI_ISPENDR), 1u << 5);

        /* Nonexistent targets: other clusters, RS, Aff0 beyond the vCPUs. */
        vgic_sgi1r(&g, 0, 1ull << 16 | 7ull << 24 | 1);
        vgic_sgi1r(&g, 0, 1ull << 44 | 7ull << 24 | 1);
        vgic_sgi1r(&g, 0, 7ull << 24 | 1u << 8);
        EXPECT_EQ(g.stats.sgi_dropped, 3);
        vgic_sgi1r(&g, 9, 7ull << 24 | 1); /* no such sender */
        for (unsigned c = 0; c < 3; c++)
                EXPECT_EQ(sr(&g, c, SGI_ISPENDR) & (1u << 7), 0);

        /* A Group 0 SGI is not generated by ICC_SGI1R_EL1; a disabled one stays pending. */
        sw(&g, 0, SGI_IGROUPR, ~0u & ~(1u << 9));
        vgic_sgi1r(&g, 1, 9ull << 24 | 1);
        EXPECT_EQ(sr(&g, 0, SGI_ISPENDR) & (1u << 9), 0);
        sw(&g, 0, SGI_ICENABL, 1u << 10);
        vgic_sgi1r(&g, 1, 10ull << 24 | 1);
        EXPECT_TRUE(sr(&g, 0, SGI_ISPENDR) & (1u << 10));
        ASSERT_TRUE(flush(&g, 0, lrs, 4, NULL) == 1);
        EXPECT_EQ(lr_intid(lrs[0]), 5);
        vgic_sync_lrs(&g, 0, lrs, 1);
}

TEST(ppi_timer)
{
        struct vgic g;
        uint64_t lrs[4];

        setup(&g, 2, 32);
        sw(&g, 1, SGI_ISENABL, 1u << VGIC_VTIMER_PPI);
        vgic_set_ppi_level(&g, 1, VGIC_VTIMER_PPI, true);
        EXPECT_FALSE(vgic_has_pending(&g, 0));
        EXPECT_TRUE(vgic_has_pending(&g, 1));
        EXPECT_EQ(flush(&g, 0, lrs, 4, NULL), 0);
        vgic_sync_lrs(&g, 0, lrs, 0);
        ASSERT_TRUE(flush(&g, 1, lrs, 4, NULL) == 1);
        EXPECT_EQ(lr_intid(lrs[0]), VGIC_VTIMER_PPI);
        EXPECT_TRUE(lrs[0] & VGIC_LR_EOI);
        guest_ack(&lrs[0]);
        vgic_sync_lrs(&g, 1, lrs, 1);
        /* The guest reprograms the timer: the arch lowers the line. */
        vgic_set_ppi_level(&g, 1, VGIC_VTIMER_PPI, false);
        ASSERT_TRUE(flush(&g, 1, lrs, 4, NULL) == 1);
        EXPECT_EQ(lrs[0] & VGIC_LR_STATE_MASK, VGIC_LR_ACTIVE);
        guest_eoi(&lrs[0]);
        vgic_sync_lrs(&g, 1, lrs, 1);
        EXPECT_FALSE(vgic_has_pending(&g, 1));
        EXPECT_EQ(flush(&g, 1, lrs, 4, NULL), 0);
        vgic_sync_lrs(&g, 1, lrs, 0);

        /* Ignored: no such vCPU, not a PPI. */
        vgic_set_ppi_level(&g, 2, VGIC_VTIMER_PPI, true);
        vgic_set_ppi_level(&g, 0, 5, true);
        vgic_set_ppi_level(&g, 0, 32, true);
        vgic_set_ppi_level(&g, 0, ~0u, true);
        EXPECT_EQ(sr(&g, 0, SGI_ISPENDR), 0);
        EXPECT_EQ(dr(&g, GICD_ISPENDR + 4), 0);

        /* A PPI configured edge latches on the rising edge only. */
        sw(&g, 0, SGI_ICFGR1, 2u << (2 * (VGIC_VTIMER_PPI - 16)));
        EXPECT_EQ(sr(&g, 0, SGI_ICFGR1), 2u << (2 * (VGIC_VTIMER_PPI - 16)));
        vgic_set_ppi_level(&g, 0, VGIC_VTIMER_PPI, true);
        vgic_set_ppi_level(&g, 0, VGIC_VTIMER_PPI, false);
        EXPECT_EQ(sr(&g, 0, SGI_ISPENDR), 1u << VGIC_VTIMER_PPI);
}

TEST(disabled_not_delivered)
{
        struct vgic g;
        uint64_t lrs[4];

        setup(&g, 2, 32);
        vgic_set_level(&g, 35, true);
        EXPECT_TRUE(bit_of(&g, GICD_ISPENDR, 35));
        EXPECT_FALSE(vgic_has_pending(&g, 0));
        EXPECT_EQ(flush(&g, 0, lrs, 4, NULL), 0);
        vgic_sync_lrs(&g, 0, lrs, 0);

        /* Group 1 disabled in GICD_CTLR. */
        enable_spi(&g, 35);
        dw(&g, GICD_CTLR, 0);
        EXPECT_FALSE(vgic_has_pending(&g, 0));
        EXPECT_EQ(flush(&g, 0, lrs, 4, NULL), 0);
        vgic_sync_lrs(&g, 0, lrs, 0);
        dw(&g, GICD_CTLR, CTLR_LINUX);
        EXPECT_TRUE(vgic_has_pending(&g, 0));

        /* Routed to a vCPU that does not exist, or to vCPU 1. */
        vgic_dist_ops.write(&g, GICD_IROUTER + 8 * 35, 8, 5);
        EXPECT_FALSE(vgic_has_pending(&g, 0));
        EXPECT_FALSE(vgic_has_pending(&g, 1));
        vgic_dist_ops.write(&g, GICD_IROUTER + 8 * 35, 8, 1ull << 8 | 1);
        EXPECT_FALSE(vgic_has_pending(&g, 1));
        vgic_dist_ops.write(&g, GICD_IROUTER + 8 * 35, 4, 1);
        EXPECT_EQ(dread(&g, GICD_IROUTER + 8 * 35, 8), 1);
        vgic_dist_ops.write(&g, GICD_IROUTER + 8 * 35 + 4, 4, 0x1ff);
        EXPECT_EQ(dread(&g, GICD_IROUTER + 8 * 35, 8), 0xff00000001ull);
        EXPECT_EQ(dread(&g, GICD_IROUTER + 8 * 35 + 4, 4), 0xff);
        EXPECT_FALSE(vgic_has_pending(&g, 1));
        vgic_dist_ops.write(&g, GICD_IROUTER + 8 * 35, 8, 1ull << 31 | 1); /* IRM: RAZ/WI */
        EXPECT_EQ(dread(&g, GICD_IROUTER + 8 * 35, 8), 1);
        EXPECT_FALSE(vgic_has_pending(&g, 0));
        EXPECT_TRUE(vgic_has_pending(&g, 1));
        EXPECT_EQ(flush(&g, 0, lrs, 4, NULL), 0);
        vgic_sync_lrs(&g, 0, lrs, 0);
        ASSERT_TRUE(flush(&g, 1, lrs, 4, NULL) == 1);
        EXPECT_EQ(lr_intid(lrs[0]), 35);
        vgic_sync_lrs(&g, 1, lrs, 1);

        /* Group 0: only with EnableGrp0, and as a Group 0 LR. */
        dw(&g, GICD_IGROUPR + 4, ~0u & ~(1u << 3));
        dw(&g, GICD_CTLR, 0x12);
        EXPECT_FALSE(vgic_has_pending(&g, 1));
        dw(&g, GICD_CTLR, 0x11);
        ASSERT_TRUE(flush(&g, 1, lrs, 4, NULL) == 1);
        EXPECT_FALSE(lrs[0] & VGIC_LR_GROUP1);
        vgic_sync_lrs(&g, 1, lrs, 1);

        /* ICENABLER: gone from the LRs at the next flush, still pending. */
        dw(&g, GICD_ICENABLER + 4, 1u << 3);
        EXPECT_EQ(flush(&g, 1, lrs, 4, NULL), 0);
        vgic_sync_lrs(&g, 1, lrs, 0);
        EXPECT_TRUE(bit_of(&g, GICD_ISPENDR, 35));
}

TEST(active_spi_stays_on_its_vcpu)
{
        struct vgic g;
        uint64_t lrs[4];

        setup(&g, 2, 32);
        set_edge(&g, 36, true);
        enable_spi(&g, 36);
        vgic_set_level(&g, 36, true);
        ASSERT_TRUE(flush(&g, 0, lrs, 4, NULL) == 1);
        /* While vCPU 0 runs with it in an LR, the guest moves it to vCPU 1. */
        vgic_dist_ops.write(&g, GICD_IROUTER + 8 * 36, 8, 1);
        vgic_set_level(&g, 36, false);
        vgic_set_level(&g, 36, true);
        EXPECT_FALSE(vgic_has_pending(&g, 1));
        {
                uint64_t other[4];

                EXPECT_EQ(flush(&g, 1, other, 4, NULL), 0);
                vgic_sync_lrs(&g, 1, other, 0);
        }
        guest_ack(&lrs[0]);
        vgic_sync_lrs(&g, 0, lrs, 1);
        /* Active on vCPU 0, pending again: stays on vCPU 0 until deactivated. */
        EXPECT_FALSE(vgic_has_pending(&g, 1));
        ASSERT_TRUE(flush(&g, 0, lrs, 4, NULL) == 1);
        EXPECT_EQ(lrs[0] & VGIC_LR_STATE_MASK, VGIC_LR_STATE_MASK);
        guest_eoi(&lrs[0]); /* the second edge is not taken on vCPU 0 */
        vgic_sync_lrs(&g, 0, lrs, 1);
        /* Deactivated: the pending edge follows IROUTER now. */
        EXPECT_FALSE(vgic_has_pending(&g, 0));
        EXPECT_TRUE(vgic_has_pending(&g, 1));
        EXPECT_EQ(flush(&g, 0, lrs, 4, NULL), 0);
        vgic_sync_lrs(&g, 0, lrs, 0);
        ASSERT_TRUE(flush(&g, 1, lrs, 4, NULL) == 1);
        EXPECT_EQ(lr_intid(lrs[0]), 36);
        vgic_sync_lrs(&g, 1, lrs, 1);

        /* ICACTIVER of an active SPI that is not in an LR frees it. */
        dw(&g, GICD_ISACTIVER + 4, 1u << 4);
        EXPECT_TRUE(bit_of(&g, GICD_ISACTIVER, 36));
        ASSERT_TRUE(flush(&g, 1, lrs, 4, NULL) == 1);
        EXPECT_EQ(lrs[0] & VGIC_LR_ACTIVE, VGIC_LR_ACTIVE);
        vgic_sync_lrs(&g, 1, lrs, 1);
        dw(&g, GICD_ICACTIVER + 4, 1u << 4);
        EXPECT_FALSE(bit_of(&g, GICD_ISACTIVER, 36));
        vgic_dist_ops.write(&g, GICD_IROUTER + 8 * 36, 8, 0);
        EXPECT_TRUE(vgic_has_pending(&g, 0));
}

/* Whom to kick after a vCPU changed the model: others with news their LRs do not hold. */
/*
 * A running vCPU handles an SGI from its LR and stays in the guest (no exit: the model still
 * shows the SGI in an LR). The same SGI sent again must kick it; otherwise it waits for that
 * vCPU's next exit, the end of its slice (kvm-unit-tests micro-bench's IPI: 10 ms each).
 */
TEST(kick_mask_resent_sgi_while_in_lr)
{
        struct vgic g;
        uint64_t lrs[4];

        setup(&g, 2, 32);
        vgic_sgi1r(&g, 0, 3ull << 24 | 2);
        EXPECT_EQ(vgic_kick_mask(&g, 0), 2u);
        ASSERT_TRUE(flush(&g, 1, lrs, 4, NULL) == 1);
        EXPECT_EQ(vgic_kick_mask(&g, 0), 0); /* in its LR: nothing new */
        guest_ack(&lrs[0]);
        guest_eoi(&lrs[0]); /* handled by the guest, not synced: no exit yet */
        vgic_sgi1r(&g, 0, 3ull << 24 | 2);
        EXPECT_EQ(vgic_kick_mask(&g, 0), 2u);
        /* The kicked vCPU exits, syncs and flushes: delivered, no more news. */
        vgic_sync_lrs(&g, 1, lrs, 1);
        ASSERT_TRUE(flush(&g, 1, lrs, 4, NULL) == 1);
        EXPECT_EQ(lr_intid(lrs[0]), 3);
        EXPECT_EQ(vgic_kick_mask(&g, 0), 0);
        /* Still active in the model (acknowledged, not synced): a new one is news as well. */
        guest_ack(&lrs[0]);
        vgic_sgi1r(&g, 0, 3ull << 24 | 2);
        EXPECT_EQ(vgic_kick_mask(&g, 0), 2u);
}

TEST(kick_mask_sgis_and_spis)
{
        struct vgic g;
        uint64_t lrs[4];

        setup(&g, 3, 32);
        EXPECT_EQ(vgic_kick_mask(&g, 0), 0);
        /* SGI 2 from vCPU 0 to vCPUs 1 and 2: both kicked, never the sender. */
        vgic_sgi1r(&g, 0, 2ull << 24 | 6);
        EXPECT_EQ(vgic_kick_mask(&g, 0), 6u);
        EXPECT_EQ(vgic_kick_mask(&g, 1), 4u);
        /* vCPU 1 flushed it into an LR: no longer news for it. */
        ASSERT_TRUE(flush(&g, 1, lrs, 4, NULL) == 1);
        EXPECT_EQ(vgic_kick_mask(&g, 0), 4u);
        guest_ack(&lrs[0]);
        vgic_sync_lrs(&g, 1, lrs, 1); /* active now, not pending: nothing to deliver */
        EXPECT_EQ(vgic_kick_mask(&g, 0), 4u);
        ASSERT_TRUE(flush(&g, 2, lrs, 4, NULL) == 1);
        guest_ack(&lrs[0]);
        guest_eoi(&lrs[0]);
        vgic_sync_lrs(&g, 2, lrs, 1);
        EXPECT_EQ(vgic_kick_mask(&g, 0), 0);

        /* IRM broadcast from vCPU 2. */
        vgic_sgi1r(&g, 2, 1ull << 40 | 4ull << 24);
        EXPECT_EQ(vgic_kick_mask(&g, 2), 3u);
        for (unsigned c = 0; c < 2; c++) {
                ASSERT_TRUE(flush(&g, c, lrs, 4, NULL) >= 1);
                for (unsigned i = 0; i < 4; i++)
                        if (lr_intid(lrs[i]) == 4) {
                                guest_ack(&lrs[i]);
                                guest_eoi(&lrs[i]);
                        }
                vgic_sync_lrs(&g, c, lrs, 4);
        }
        EXPECT_EQ(vgic_kick_mask(&g, 2) & 1u, 0);

        /* An SPI follows GICD_IROUTER: routed to vCPU 2, raised by a device vCPU 0 serves. */
        set_edge(&g, 40, false);
        enable_spi(&g, 40);
        vgic_dist_ops.write(&g, GICD_IROUTER + 8 * 40, 8, 2);
        vgic_set_level(&g, 40, true);
        EXPECT_EQ(vgic_kick_mask(&g, 0) & 4u, 4u);
        EXPECT_EQ(vgic_kick_mask(&g, 2) & 4u, 0); /* its own: no kick */
        /* Routed nowhere (Aff1 set): nobody. */
        vgic_dist_ops.write(&g, GICD_IROUTER + 8 * 40, 8, 1ull << 8);
        EXPECT_EQ(vgic_kick_mask(&g, 0) & 4u, 0);
        /* A disabled group or interrupt is no news. */
        vgic_dist_ops.write(&g, GICD_IROUTER + 8 * 40, 8, 1);
        EXPECT_EQ(vgic_kick_mask(&g, 0) & 2u, 2u);
        dw(&g, GICD_ICENABLER + 4, 1u << 8);
        EXPECT_EQ(vgic_kick_mask(&g, 0) & 2u, 0);
        dw(&g, GICD_ISENABLER + 4, 1u << 8);
        dw(&g, GICD_CTLR, 0);
        EXPECT_EQ(vgic_kick_mask(&g, 0), 0);
        /* No vCPUs (a failed init): nothing. */
        EXPECT_TRUE(vgic_init(&g, test_cpus, 0, 0) != 0);
        EXPECT_EQ(vgic_kick_mask(&g, 0), 0);
}

TEST(protocol_slips)
{
        struct vgic g;
        uint64_t lrs[4];
        bool under = true;

        setup(&g, 1, 32);
        set_edge(&g, 33, true);
        enable_spi(&g, 33);
        vgic_set_level(&g, 33, true);
        /* Flush twice without sync: the edge is not lost, nor duplicated. */
        ASSERT_TRUE(flush(&g, 0, lrs, 4, NULL) == 1);
        ASSERT_TRUE(flush(&g, 0, lrs, 4, NULL) == 1);
        EXPECT_EQ(g.stats.reflush, 1);
        EXPECT_EQ(lrs[0] & VGIC_LR_STATE_MASK, VGIC_LR_PENDING);
        /* An LR read back with another vINTID: counted, state kept. */
        lrs[0] = (lrs[0] & ~VGIC_LR_VINTID_MASK) | 34;
        vgic_sync_lrs(&g, 0, lrs, 1);
        EXPECT_EQ(g.stats.lr_mismatch, 1);
        EXPECT_TRUE(bit_of(&g, GICD_ISPENDR, 33));
        /* Sync without flush, bad vCPUs, NULL arrays. */
        vgic_sync_lrs(&g, 0, lrs, 4);
        vgic_sync_lrs(&g, 7, lrs, 4);
        EXPECT_EQ(vgic_flush_lrs(&g, 7, lrs, 4, &under), 0);
        EXPECT_FALSE(under);
        EXPECT_EQ(lrs[0], 0);
        EXPECT_EQ(vgic_flush_lrs(&g, 0, NULL, 4, &under), 0);
        EXPECT_TRUE(under);
        vgic_sync_lrs(&g, 0, NULL, 0);
        EXPECT_TRUE(bit_of(&g, GICD_ISPENDR, 33));
        EXPECT_FALSE(vgic_has_pending(&g, 7));
        /* INTIDs that are no SPI. */
        vgic_set_level(&g, 0, true);
        vgic_set_level(&g, 27, true);
        vgic_set_level(&g, 64, true);
        vgic_set_level(&g, 1023, true);
        vgic_set_level(&g, ~0u, true);
        EXPECT_EQ(sr(&g, 0, SGI_ISPENDR), 0);
}

TEST(unknown_and_bad_sizes)
{
        struct vgic g;

        setup(&g, 1, 32);
        EXPECT_EQ(dread(&g, 0x5000, 4), 0);
        EXPECT_EQ(g.stats.dist_unknown, 1);
        EXPECT_EQ(g.stats.last_unknown, 0x5000);
        vgic_dist_ops.write(&g, 0x0040, 4, 33); /* SETSPI_NSR: no MBIS */
        EXPECT_EQ(g.stats.dist_unknown, 2);
        EXPECT_FALSE(bit_of(&g, GICD_ISPENDR, 33));
        EXPECT_EQ(rread(&g, 0, 0x0100, 4), 0);
        EXPECT_EQ(g.stats.redist_unknown, 1);
        EXPECT_EQ(g.stats.last_unknown, 0x100);

        /* 64-bit access to a 32-bit register, 2-byte priority access, misaligned. */
        EXPECT_EQ(dread(&g, GICD_CTLR, 8), 0);
        vgic_dist_ops.write(&g, GICD_CTLR, 8, 0);
        EXPECT_EQ(dr(&g, GICD_CTLR), 0x53);
        EXPECT_EQ(dread(&g, GICD_IPRIORITYR + 32, 2), 0);
        EXPECT_EQ(dread(&g, GICD_ISENABLER + 2, 4), 0);
        EXPECT_EQ(dread(&g, GICD_IROUTER + 8 * 32 + 2, 4), 0);
        EXPECT_EQ(g.stats.bad_access, 5);
        EXPECT_EQ(g.stats.dist_unknown, 2);

        /* Byte access to priorities. */
        vgic_dist_ops.write(&g, GICD_IPRIORITYR + 34, 1, 0x12345);
        EXPECT_EQ(dr(&g, GICD_IPRIORITYR + 32), 0xa045a0a0u);
        vgic_redist_ops.write(&g, VGIC_GICR_SGI_BASE + SGI_IPRIO + 27, 1, 0x10);
        EXPECT_EQ(sr(&g, 0, SGI_IPRIO + 24), 0x10a0a0a0u);

        /* Known RAZ/WI registers are not counted. */
        vgic_dist_ops.write(&g, 0x0800 + 40, 1, 0xff); /* ITARGETSR */
        vgic_dist_ops.write(&g, 0x0d04, 4, ~0u);       /* IGRPMODR */
        EXPECT_EQ(dr(&g, 0x0d04), 0);
        EXPECT_EQ(sr(&g, 0, 0x0d00), 0);
        EXPECT_EQ(rread(&g, 0, 0x0070, 8), 0); /* PROPBASER */
        EXPECT_EQ(g.stats.dist_unknown, 2);
        EXPECT_EQ(g.stats.redist_unknown, 1);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return rng_state;
}

static void hammer(struct vgic *g, const struct mmio_ops *ops, uint64_t end)
{
        static const unsigned sizes[] = {1, 2, 4, 8};

        for (uint64_t off = 0; off < end; off++) {
                for (unsigned s = 0; s < 4; s++) {
                        uint64_t v = 0;

                        ops->read(g, off, sizes[s], &v);
                        if (sizes[s] < 8)
                                EXPECT_EQ(v >> (8 * sizes[s]), 0);
                        ops->write(g, off, sizes[s], rng());
                }
        }
        for (unsigned i = 0; i < 10000; i++) {
                uint64_t v;
                uint64_t off = rng();
                unsigned size = (unsigned)(rng() % 20);

                ops->read(g, off, size, &v);
                ops->write(g, off, size, rng());
                ops->read(g, off & 0x3ffff, size, &v);
                ops->write(g, off & 0x3ffff, size, rng());
        }
}

TEST(hostile_mmio)
{
        struct vgic g;
        uint64_t lrs[VGIC_MAX_LRS];

        setup(&g, 2, VGIC_MAX_SPIS);
        for (unsigned i = 32; i < 128; i++)
                vgic_set_level(&g, i, i & 1);
        vgic_set_ppi_level(&g, 1, VGIC_VTIMER_PPI, true);
        hammer(&g, &vgic_dist_ops, 0x20000);
        hammer(&g, &vgic_redist_ops, 4 * VGIC_GICR_STRIDE);
        for (unsigned round = 0; round < 200; round++) {
                for (unsigned c = 0; c < 3; c++) {
                        unsigned nr = (unsigned)(rng() % (VGIC_MAX_LRS + 1));
                        unsigned n = flush(&g, c, lrs, nr, NULL);

                        for (unsigned i = 0; i < n; i++)
                                lrs[i] ^= rng() & (VGIC_LR_STATE_MASK | 0xff);
                        vgic_sync_lrs(&g, c, lrs, n);
                        vgic_sgi1r(&g, c, rng());
                        vgic_set_level(&g, (unsigned)rng(), rng() & 1);
                        vgic_set_level(&g, (unsigned)(rng() % 160), rng() & 1);
                }
                vgic_dist_ops.write(&g, rng() % 0x10000, 4, rng());
                vgic_redist_ops.write(&g, rng() % 0x40000, 4, rng());
        }
        /* Every access to GICD 0x10000.. and to the frames of vCPUs 2 and 3 was counted. */
        EXPECT_TRUE(g.stats.dist_unknown >= 0x10000 * 8);
        EXPECT_TRUE(g.stats.redist_unknown >= 2 * VGIC_GICR_STRIDE * 8);
        EXPECT_TRUE(g.stats.bad_access > 0);

        /* Still a working GIC after a sane re-init by the guest. */
        for (unsigned c = 0; c < 2; c++) {
                vgic_sync_lrs(&g, c, lrs, 0);
                sw(&g, c, 0x0280, ~0u); /* ICPENDR0 */
        }
        for (unsigned i = 32; i < 128; i += 32)
                dw(&g, GICD_ICPENDR + i / 8, ~0u);
        for (unsigned i = 32; i < 128; i++)
                vgic_set_level(&g, i, false);
        vgic_set_ppi_level(&g, 1, VGIC_VTIMER_PPI, false);
        linux_init(&g);
        EXPECT_FALSE(vgic_has_pending(&g, 0));
        EXPECT_EQ(flush(&g, 0, lrs, 4, NULL), 0);
        vgic_sync_lrs(&g, 0, lrs, 0);
        enable_spi(&g, 100);
        vgic_set_level(&g, 100, true);
        ASSERT_TRUE(flush(&g, 0, lrs, 4, NULL) == 1);
        EXPECT_EQ(lr_intid(lrs[0]), 100);
}

TEST_MAIN()
