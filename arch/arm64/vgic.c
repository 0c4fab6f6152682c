/*
 * The guest's GICv3 (arch/arm64/include/arch/vgic.h): distributor and redistributor register
 * emulation, interrupt inputs, and the list-register flush/sync protocol.
 *
 * An interrupt is pending when its latch is set (edge event, ISPENDR, SGI) or, for a level-
 * sensitive one, while its input line is high. Every index into the model comes from
 * irq_at(), which returns NULL for anything that does not exist, so no guest value (offset,
 * INTID, affinity) can reach outside the arrays.
 */
#include <stddef.h>
#include <string.h>

#include <arch/vgic.h>
#include <keel/errno.h>
#include <vmm/snapshot.h>

/* Distributor frame offsets. */
#define GICD_CTLR        0x0000
#define GICD_TYPER       0x0004
#define GICD_IIDR        0x0008
#define GICD_TYPER2      0x000c
#define GICD_STATUSR     0x0010
#define GICD_IGROUPR     0x0080
#define GICD_ISENABLER   0x0100
#define GICD_ICENABLER   0x0180
#define GICD_ISPENDR     0x0200
#define GICD_ICPENDR     0x0280
#define GICD_ISACTIVER   0x0300
#define GICD_ICACTIVER   0x0380
#define GICD_IPRIORITYR  0x0400
#define GICD_ITARGETSR   0x0800
#define GICD_ICFGR       0x0c00
#define GICD_IGRPMODR    0x0d00
#define GICD_NSACR       0x0e00
#define GICD_SGIR        0x0f00
#define GICD_CPENDSGIR   0x0f10
#define GICD_SPENDSGIR   0x0f20
#define GICD_IROUTER     0x6000 /* + 8 * INTID, INTID 32..1019 */
#define GICD_IROUTER_END (GICD_IROUTER + 8 * 1020)

/* Redistributor RD_base frame offsets. */
#define GICR_CTLR      0x0000
#define GICR_IIDR      0x0004
#define GICR_TYPER     0x0008
#define GICR_STATUSR   0x0010
#define GICR_WAKER     0x0014
#define GICR_PROPBASER 0x0070
#define GICR_PENDBASER 0x0078

/* Redistributor SGI_base frame offsets (relative to SGI_base). */
#define GICR_IGROUPR0    0x0080
#define GICR_ISENABLER0  0x0100
#define GICR_ICENABLER0  0x0180
#define GICR_ISPENDR0    0x0200
#define GICR_ICPENDR0    0x0280
#define GICR_ISACTIVER0  0x0300
#define GICR_ICACTIVER0  0x0380
#define GICR_IPRIORITYR0 0x0400
#define GICR_ICFGR0      0x0c00
#define GICR_ICFGR1      0x0c04
#define GICR_IGRPMODR0   0x0d00
#define GICR_NSACR       0x0e00

/* Identification registers, at the end of GICD and of each RD_base frame. */
#define GIC_PIDR4 0xffd0
#define GIC_PIDR2 0xffe8
#define GIC_CIDR0 0xfff0
#define GIC_CIDR3 0xfffc

#define PIDR2_ARCHREV_GICV3 0x30 /* ArchRev, bits 7:4 = 3 */

/* GICD_IIDR/GICR_IIDR: ProductID 'K' (Keel), no JEP106 implementer code claimed. */
#define VGIC_IIDR (0x4bu << 24)

/* GICD_TYPER fields. */
#define TYPER_CPUNUMBER_SHIFT 5
#define TYPER_IDBITS_SHIFT    19 /* number of INTID bits - 1 */
#define TYPER_NO1N            (1u << 25)

/* GICR_TYPER fields. */
#define GICR_TYPER_LAST       (1ull << 4)
#define GICR_TYPER_PROC_SHIFT 8
#define GICR_TYPER_AFF_SHIFT  32

/* GICR_WAKER bits. */
#define WAKER_PROCESSOR_SLEEP (1u << 1)
#define WAKER_CHILDREN_ASLEEP (1u << 2)

/* GICD_IROUTER: Aff3 (39:32), Aff2, Aff1, Aff0 (23:0); IRM is RAZ/WI (No1N). */
#define ROUTE_MASK     0x000000ff00ffffffull
#define ROUTE_LO_MASK  0x00ffffffu
#define ROUTE_HI_SHIFT 32

/* ICC_SGI1R_EL1 fields. */
#define SGI1R_TARGETS(v) ((unsigned)((v)&0xffff))
#define SGI1R_AFF1(v)    (((v) >> 16) & 0xff)
#define SGI1R_INTID(v)   ((unsigned)(((v) >> 24) & 0xf))
#define SGI1R_AFF2(v)    (((v) >> 32) & 0xff)
#define SGI1R_IRM        (1ull << 40)
#define SGI1R_RS(v)      ((unsigned)(((v) >> 44) & 0xf))
#define SGI1R_AFF3(v)    (((v) >> 48) & 0xff)

#define LR_STATE_SHIFT 62
#define ST_PENDING     ((uint8_t)(VGIC_LR_PENDING >> LR_STATE_SHIFT))
#define ST_ACTIVE      ((uint8_t)(VGIC_LR_ACTIVE >> LR_STATE_SHIFT))
#define ST_MOVED_LATCH 0x4 /* flush moved the edge latch into the LR (slot only) */

/* ---- The model ---- */

/* The interrupt `intid` as `vcpu` sees it (vcpu only matters for INTIDs < 32), or NULL. */
static struct vgic_irq *irq_at(struct vgic *g, unsigned vcpu, unsigned intid)
{
        if (intid < VGIC_NR_PRIVATE) {
                if (vcpu >= g->nr_vcpus || vcpu >= VGIC_MAX_VCPUS)
                        return NULL;
                return &g->cpu[vcpu].priv[intid];
        }
        if (intid - VGIC_NR_PRIVATE >= g->nr_spis || intid - VGIC_NR_PRIVATE >= VGIC_MAX_SPIS)
                return NULL;
        return &g->spi[intid - VGIC_NR_PRIVATE];
}

static bool irq_pending(const struct vgic_irq *irq)
{
        return irq->pending_latch || (!irq->edge && irq->line);
}

static bool group_enabled(const struct vgic *g, const struct vgic_irq *irq)
{
        return (g->ctlr & (irq->group1 ? VGIC_GICD_CTLR_ENABLE_G1 : VGIC_GICD_CTLR_ENABLE_G0)) != 0;
}

/* Pending and allowed to reach a CPU interface. */
static bool irq_deliverable(const struct vgic *g, const struct vgic_irq *irq)
{
        return irq_pending(irq) && irq->enabled && group_enabled(g, irq);
}

/* The vCPU an SPI goes to: the one it is in flight on, else its IROUTER target. */
static unsigned spi_home(const struct vgic *g, const struct vgic_irq *irq)
{
        if (irq->owner != VGIC_NO_VCPU)
                return irq->owner;
        return vgic_mpidr_vcpu(irq->route & ROUTE_MASK, g->nr_vcpus);
}

static void irq_drive(struct vgic_irq *irq, bool level)
{
        if (irq->edge && level && !irq->line)
                irq->pending_latch = true;
        if (level && !irq->line)
                irq->news = true;
        irq->line = level;
}

static void irq_reset(struct vgic_irq *irq, bool edge)
{
        memset(irq, 0, sizeof(*irq));
        irq->group1 = true;
        irq->edge = edge;
        irq->owner = VGIC_NO_VCPU;
}

int vgic_init(struct vgic *vgic, struct vgic_cpu *cpus, unsigned nr_vcpus, unsigned nr_spis)
{
        memset(vgic, 0, sizeof(*vgic));
        if (!cpus || nr_vcpus == 0 || nr_vcpus > VGIC_MAX_VCPUS || nr_spis > VGIC_MAX_SPIS)
                return -KEEL_EINVAL;
        memset(cpus, 0, nr_vcpus * sizeof(*cpus));
        vgic->cpu = cpus;
        vgic->nr_vcpus = nr_vcpus;
        vgic->nr_spis = nr_spis;
        for (unsigned c = 0; c < nr_vcpus; c++) {
                vgic->cpu[c].processor_sleep = true;
                for (unsigned i = 0; i < VGIC_NR_PRIVATE; i++)
                        irq_reset(&vgic->cpu[c].priv[i], i < 16);
        }
        for (unsigned i = 0; i < VGIC_MAX_SPIS; i++)
                irq_reset(&vgic->spi[i], false);
        return 0;
}

void vgic_set_level(void *vgic, unsigned intid, bool level)
{
        struct vgic_irq *irq;

        if (intid < VGIC_NR_PRIVATE)
                return;
        irq = irq_at(vgic, VGIC_NO_VCPU, intid);
        if (irq)
                irq_drive(irq, level);
}

void vgic_set_ppi_level(struct vgic *vgic, unsigned vcpu, unsigned intid, bool level)
{
        struct vgic_irq *irq;

        if (intid < 16 || intid >= VGIC_NR_PRIVATE)
                return;
        irq = irq_at(vgic, vcpu, intid);
        if (irq)
                irq_drive(irq, level);
}

static void sgi_pend(struct vgic *g, unsigned vcpu, unsigned intid)
{
        struct vgic_irq *irq = irq_at(g, vcpu, intid);

        if (irq && irq->group1) {
                irq->pending_latch = true;
                irq->news = true;
        }
}

void vgic_sgi1r(struct vgic *vgic, unsigned from_vcpu, uint64_t v)
{
        unsigned intid = SGI1R_INTID(v), targets = SGI1R_TARGETS(v);

        if (from_vcpu >= vgic->nr_vcpus)
                return;
        if (v & SGI1R_IRM) {
                for (unsigned c = 0; c < vgic->nr_vcpus; c++)
                        if (c != from_vcpu)
                                sgi_pend(vgic, c, intid);
                return;
        }
        if (targets == 0)
                return;
        /* Aff0 values are 0..15 (vgic_vcpu_mpidr): a target list with RS != 0 names none. */
        if (SGI1R_RS(v) || SGI1R_AFF2(v) || SGI1R_AFF3(v)) {
                vgic->stats.sgi_dropped++;
                return;
        }
        for (unsigned b = 0; b < 16; b++) {
                unsigned c = vgic_mpidr_vcpu(SGI1R_AFF1(v) << 8 | b, vgic->nr_vcpus);

                if (!(targets & (1u << b)))
                        continue;
                if (c != VGIC_NO_VCPU)
                        sgi_pend(vgic, c, intid);
                else
                        vgic->stats.sgi_dropped++;
        }
}

/* ---- List registers ---- */

struct lr_cand {
        unsigned key; /* active first, then priority: lower is better */
        uint16_t intid;
};

/* Fold one LR's final state back into the model (see the protocol in vgic.h). */
static void lr_fold(struct vgic *g, unsigned vcpu, const struct vgic_lr_slot *slot, uint8_t out)
{
        struct vgic_irq *irq = irq_at(g, vcpu, slot->intid);
        bool p_in = slot->state & ST_PENDING, p_out = out & ST_PENDING;
        bool a_out = out & ST_ACTIVE;

        if (!irq)
                return;
        if (p_out && (slot->state & ST_MOVED_LATCH))
                irq->pending_latch = true; /* not acknowledged: the event is still pending */
        else if (p_in && !p_out && !(slot->state & ST_MOVED_LATCH))
                irq->pending_latch = false; /* level: acknowledging consumes a soft pend */
        irq->active = a_out;
        irq->in_lr = false;
        if (slot->intid >= VGIC_NR_PRIVATE)
                irq->owner = a_out ? (uint8_t)vcpu : VGIC_NO_VCPU;
}

static void lrs_fold(struct vgic *g, unsigned vcpu, const uint64_t *lrs, unsigned nr_lrs)
{
        struct vgic_cpu *c = &g->cpu[vcpu];

        for (unsigned i = 0; i < c->nr_lr && i < VGIC_MAX_LRS; i++) {
                const struct vgic_lr_slot *slot = &c->lr[i];
                uint8_t out = slot->state & (ST_PENDING | ST_ACTIVE);

                if (lrs && i < nr_lrs && (lrs[i] & VGIC_LR_VINTID_MASK) == slot->intid)
                        out = (uint8_t)(lrs[i] >> LR_STATE_SHIFT);
                else if (lrs)
                        g->stats.lr_mismatch++;
                lr_fold(g, vcpu, slot, out);
        }
        c->nr_lr = 0;
        c->flushed = false;
}

void vgic_sync_lrs(struct vgic *vgic, unsigned vcpu, const uint64_t *lrs, unsigned nr_lrs)
{
        if (vcpu >= vgic->nr_vcpus || !vgic->cpu[vcpu].flushed)
                return;
        lrs_fold(vgic, vcpu, lrs, nr_lrs);
}

/* Insert into best[0..*n) (sorted by key, ties keep INTID order, capacity max). Returns
 * false if something was left out (the candidate or the one it pushed out). */
static bool cand_insert(struct lr_cand *best, unsigned *n, unsigned max, struct lr_cand c)
{
        unsigned pos = *n;
        bool dropped = false;

        while (pos > 0 && best[pos - 1].key > c.key)
                pos--;
        if (pos >= max)
                return false;
        if (*n == max)
                dropped = true;
        else
                (*n)++;
        for (unsigned j = *n - 1; j > pos; j--)
                best[j] = best[j - 1];
        best[pos] = c;
        return !dropped;
}

/* What an interrupt would put in an LR on this vCPU (ST_* bits), 0 if nothing. */
static uint8_t irq_lr_state(const struct vgic *g, const struct vgic_irq *irq)
{
        uint8_t st = 0;

        if (irq->active)
                st |= ST_ACTIVE;
        if (irq_deliverable(g, irq))
                st |= ST_PENDING;
        return st;
}

unsigned vgic_flush_lrs(struct vgic *vgic, unsigned vcpu, uint64_t *lrs, unsigned nr_lrs,
                        bool *want_underflow)
{
        struct lr_cand best[VGIC_MAX_LRS];
        unsigned max, n = 0, nr_irqs;
        bool left_out = false;
        struct vgic_cpu *c;

        if (!lrs)
                nr_lrs = 0;
        for (unsigned i = 0; i < nr_lrs; i++)
                lrs[i] = 0;
        if (want_underflow)
                *want_underflow = false;
        if (vcpu >= vgic->nr_vcpus)
                return 0;
        c = &vgic->cpu[vcpu];
        if (c->flushed) {
                vgic->stats.reflush++;
                lrs_fold(vgic, vcpu, NULL, 0);
        }
        max = nr_lrs < VGIC_MAX_LRS ? nr_lrs : VGIC_MAX_LRS;
        nr_irqs = VGIC_NR_PRIVATE + vgic->nr_spis;
        for (unsigned intid = 0; intid < nr_irqs; intid++) {
                struct vgic_irq *irq = irq_at(vgic, vcpu, intid);
                struct lr_cand cand;
                uint8_t st;

                if (!irq)
                        continue;
                if (intid >= VGIC_NR_PRIVATE && spi_home(vgic, irq) != vcpu)
                        continue;
                irq->news = false; /* this vCPU sees it now (in an LR or by underflow) */
                st = irq_lr_state(vgic, irq);
                if (!st)
                        continue;
                cand.key = ((st & ST_ACTIVE) ? 0u : 0x100u) | irq->priority;
                cand.intid = (uint16_t)intid;
                if (!cand_insert(best, &n, max, cand))
                        left_out = true;
        }
        for (unsigned i = 0; i < n; i++) {
                struct vgic_irq *irq = irq_at(vgic, vcpu, best[i].intid);
                uint8_t st = irq_lr_state(vgic, irq);
                uint64_t lr = best[i].intid | (uint64_t)irq->priority << VGIC_LR_PRIO_SHIFT |
                              (uint64_t)(st & (ST_PENDING | ST_ACTIVE)) << LR_STATE_SHIFT;

                if (irq->group1)
                        lr |= VGIC_LR_GROUP1;
                if (!irq->edge)
                        lr |= VGIC_LR_EOI;
                if ((st & ST_PENDING) && irq->edge && irq->pending_latch) {
                        irq->pending_latch = false; /* the LR holds the event now */
                        st |= ST_MOVED_LATCH;
                }
                irq->in_lr = true;
                if (best[i].intid >= VGIC_NR_PRIVATE)
                        irq->owner = (uint8_t)vcpu;
                c->lr[i] = (struct vgic_lr_slot){.intid = best[i].intid, .state = st};
                lrs[i] = lr;
        }
        c->nr_lr = (uint8_t)n;
        c->flushed = true;
        if (want_underflow)
                *want_underflow = left_out;
        return n;
}

bool vgic_has_pending(const struct vgic *vgic, unsigned vcpu)
{
        if (vcpu >= vgic->nr_vcpus || vcpu >= VGIC_MAX_VCPUS)
                return false;
        for (unsigned i = 0; i < VGIC_NR_PRIVATE; i++) {
                const struct vgic_irq *irq = &vgic->cpu[vcpu].priv[i];

                if (!irq->active && irq_deliverable(vgic, irq))
                        return true;
        }
        for (unsigned i = 0; i < vgic->nr_spis && i < VGIC_MAX_SPIS; i++) {
                const struct vgic_irq *irq = &vgic->spi[i];

                if (!irq->active && irq_deliverable(vgic, irq) && spi_home(vgic, irq) == vcpu)
                        return true;
        }
        return false;
}

/*
 * Worth kicking the vCPU for: deliverable and not already in its LRs, or made pending since
 * its last flush. A running vCPU may have consumed an LR or ended an active state that the
 * model still shows (in_lr and active are synced at its next exit): a new SGI of the same
 * INTID would otherwise wait for that exit, the end of its slice.
 */
static bool irq_news(const struct vgic *g, const struct vgic_irq *irq)
{
        return irq_deliverable(g, irq) && (irq->news || (!irq->active && !irq->in_lr));
}

uint64_t vgic_kick_mask(const struct vgic *vgic, unsigned from_vcpu)
{
        uint64_t mask = 0, all;

        if (vgic->nr_vcpus > VGIC_MAX_VCPUS || vgic->nr_vcpus == 0)
                return 0;
        all = ~0ull >> (64 - vgic->nr_vcpus);
        for (unsigned c = 0; c < vgic->nr_vcpus; c++) {
                if (c == from_vcpu)
                        continue;
                for (unsigned i = 0; i < VGIC_NR_PRIVATE; i++)
                        if (irq_news(vgic, &vgic->cpu[c].priv[i])) {
                                mask |= 1ull << c;
                                break;
                        }
        }
        for (unsigned i = 0; i < vgic->nr_spis && i < VGIC_MAX_SPIS && mask != all; i++) {
                const struct vgic_irq *irq = &vgic->spi[i];
                unsigned home;

                if (!irq_news(vgic, irq))
                        continue;
                home = spi_home(vgic, irq);
                if (home < vgic->nr_vcpus && home != from_vcpu)
                        mask |= 1ull << home;
        }
        return mask;
}

/* ---- Register helpers shared by GICD and GICR ---- */

enum bitreg { BR_GROUP, BR_SENABLE, BR_CENABLE, BR_SPEND, BR_CPEND, BR_SACTIVE, BR_CACTIVE };

static bool bitreg_get(const struct vgic_irq *irq, enum bitreg r)
{
        switch (r) {
        case BR_GROUP:
                return irq->group1;
        case BR_SENABLE:
        case BR_CENABLE:
                return irq->enabled;
        case BR_SPEND:
        case BR_CPEND:
                return irq_pending(irq);
        case BR_SACTIVE:
        case BR_CACTIVE:
                return irq->active;
        }
        return false;
}

static void bitreg_set(struct vgic_irq *irq, unsigned intid, enum bitreg r, bool bit)
{
        if (r == BR_GROUP) {
                irq->group1 = bit;
                return;
        }
        if (!bit)
                return;
        switch (r) {
        case BR_SENABLE:
                irq->enabled = true;
                break;
        case BR_CENABLE:
                irq->enabled = false;
                break;
        case BR_SPEND:
                irq->pending_latch = true;
                irq->news = true;
                break;
        case BR_CPEND:
                irq->pending_latch = false; /* a high level line keeps it pending */
                break;
        case BR_SACTIVE:
                irq->active = true;
                break;
        case BR_CACTIVE:
                irq->active = false;
                if (intid >= VGIC_NR_PRIVATE && !irq->in_lr)
                        irq->owner = VGIC_NO_VCPU;
                break;
        case BR_GROUP:
                break;
        }
}

/* One 32-bit register of 1-bit fields for INTIDs first..first+31. */
static uint32_t bitreg_access(struct vgic *g, unsigned vcpu, unsigned first, enum bitreg r,
                              bool write, uint32_t v)
{
        uint32_t out = 0;

        for (unsigned i = 0; i < 32; i++) {
                struct vgic_irq *irq = irq_at(g, vcpu, first + i);

                if (!irq)
                        continue;
                if (write)
                        bitreg_set(irq, first + i, r, (v >> i) & 1u);
                else if (bitreg_get(irq, r))
                        out |= 1u << i;
        }
        return out;
}

/* IPRIORITYR bytes starting at INTID first (size 1 or 4, checked by the caller). */
static uint32_t prio_access(struct vgic *g, unsigned vcpu, unsigned first, unsigned size,
                            bool write, uint32_t v)
{
        uint32_t out = 0;

        for (unsigned i = 0; i < size; i++) {
                struct vgic_irq *irq = irq_at(g, vcpu, first + i);

                if (!irq)
                        continue;
                if (write)
                        irq->priority = (uint8_t)(v >> (8 * i));
                else
                        out |= (uint32_t)irq->priority << (8 * i);
        }
        return out;
}

/* ICFGR: 2 bits per INTID (bit 1 = edge) for INTIDs first..first+15; SGIs are edge, RO. */
static uint32_t cfg_access(struct vgic *g, unsigned vcpu, unsigned first, bool write, uint32_t v)
{
        uint32_t out = 0;

        for (unsigned i = 0; i < 16; i++) {
                struct vgic_irq *irq = irq_at(g, vcpu, first + i);

                if (!irq)
                        continue;
                if (write && first + i >= 16)
                        irq->edge = (v >> (2 * i + 1)) & 1u;
                else if (!write && irq->edge)
                        out |= 2u << (2 * i);
        }
        return out;
}

/* Identification registers (offset in 0xffd0..0xffff, 32-bit). */
static uint32_t id_reg(uint64_t off)
{
        static const uint8_t cidr[4] = {0x0d, 0xf0, 0x05, 0xb1};

        if (off == GIC_PIDR2)
                return PIDR2_ARCHREV_GICV3;
        if (off >= GIC_CIDR0 && off <= GIC_CIDR3)
                return cidr[(off - GIC_CIDR0) / 4];
        return 0;
}

static bool size_is(uint64_t off, unsigned size, unsigned want)
{
        return size == want && (off & (want - 1)) == 0;
}

static uint64_t size_mask(unsigned size)
{
        return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

/*
 * Registers common to both frames: bit registers, priorities, ICFGR (GICD and SGI_base
 * share the layout; INTIDs the frame does not hold read as zero). Returns false if `off` is
 * none of them.
 */
static bool irqreg_access(struct vgic *g, unsigned vcpu, uint64_t off, unsigned size, bool write,
                          uint64_t *val)
{
        static const struct {
                uint64_t base;
                enum bitreg r;
        } bitregs[] = {
            {GICD_IGROUPR, BR_GROUP},     {GICD_ISENABLER, BR_SENABLE},
            {GICD_ICENABLER, BR_CENABLE}, {GICD_ISPENDR, BR_SPEND},
            {GICD_ICPENDR, BR_CPEND},     {GICD_ISACTIVER, BR_SACTIVE},
            {GICD_ICACTIVER, BR_CACTIVE},
        };
        uint32_t v = (uint32_t)*val;

        for (unsigned i = 0; i < sizeof(bitregs) / sizeof(bitregs[0]); i++) {
                if (off < bitregs[i].base || off >= bitregs[i].base + 0x80)
                        continue;
                if (!size_is(off, size, 4)) {
                        g->stats.bad_access++;
                        return true;
                }
                *val = bitreg_access(g, vcpu, (unsigned)(off - bitregs[i].base) * 8, bitregs[i].r,
                                     write, v);
                return true;
        }
        if (off >= GICD_IPRIORITYR && off < GICD_IPRIORITYR + 0x3fc) {
                if (!size_is(off, size, 1) && !size_is(off, size, 4)) {
                        g->stats.bad_access++;
                        return true;
                }
                *val = prio_access(g, vcpu, (unsigned)(off - GICD_IPRIORITYR), size, write, v);
                return true;
        }
        if (off >= GICD_ICFGR && off < GICD_ICFGR + 0x100) {
                if (!size_is(off, size, 4)) {
                        g->stats.bad_access++;
                        return true;
                }
                *val = cfg_access(g, vcpu, (unsigned)(off - GICD_ICFGR) * 4, write, v);
                return true;
        }
        return false;
}

/* Known registers that read as zero and ignore writes, at any size. */
static bool dist_razwi(uint64_t off)
{
        return off == GICD_TYPER2 || off == GICD_STATUSR ||
               (off >= GICD_ITARGETSR && off < GICD_ITARGETSR + 0x400) ||
               (off >= GICD_IGRPMODR && off < GICD_IGRPMODR + 0x80) ||
               (off >= GICD_NSACR && off < GICD_NSACR + 0x100) || off == GICD_SGIR ||
               (off >= GICD_CPENDSGIR && off < GICD_SPENDSGIR + 0x10) ||
               (off >= GIC_PIDR4 && off < GIC_CIDR3 + 4); /* other ID registers */
}

static uint32_t dist_typer(const struct vgic *g)
{
        unsigned lines = (VGIC_NR_PRIVATE + g->nr_spis + 31) / 32 - 1;
        unsigned cpus = g->nr_vcpus ? g->nr_vcpus - 1 : 0;

        /* CPUNumber (the PEs without affinity routing) saturates at 7: 8 or more. */
        return lines | (cpus > 7 ? 7 : cpus) << TYPER_CPUNUMBER_SHIFT | 9u << TYPER_IDBITS_SHIFT |
               TYPER_NO1N;
}

static void irouter_access(struct vgic *g, uint64_t off, unsigned size, bool write, uint64_t *val)
{
        uint64_t rel = off - GICD_IROUTER;
        struct vgic_irq *irq;
        unsigned half = (unsigned)(rel & 7);

        if (!size_is(off, size, 8) && !size_is(off, size, 4)) {
                g->stats.bad_access++;
                *val = 0;
                return;
        }
        /* INTIDs 0..31 have no IROUTER (reserved, RAZ/WI) and irq_at() gives none for them. */
        irq = (unsigned)(rel / 8) >= VGIC_NR_PRIVATE ? irq_at(g, VGIC_NO_VCPU, (unsigned)(rel / 8))
                                                     : NULL;
        if (!irq) {
                *val = 0;
                return;
        }
        if (!write) {
                *val = size == 8 ? irq->route : (uint32_t)(irq->route >> (8 * half));
                return;
        }
        if (size == 8)
                irq->route = *val & ROUTE_MASK;
        else if (half == 0)
                irq->route = (irq->route & ~0xffffffffull) | (*val & ROUTE_LO_MASK);
        else
                irq->route = (irq->route & 0xffffffffull) | (*val & 0xff) << ROUTE_HI_SHIFT;
        *val = 0;
}

static void dist_access(struct vgic *g, uint64_t off, unsigned size, bool write, uint64_t *val)
{
        uint32_t v = (uint32_t)*val;

        if (off >= GICD_IROUTER && off < GICD_IROUTER_END) {
                irouter_access(g, off, size, write, val);
                return;
        }
        if (off == GICD_CTLR || off == GICD_TYPER || off == GICD_IIDR || off == GIC_PIDR2 ||
            (off >= GIC_CIDR0 && off <= GIC_CIDR3)) {
                *val = 0;
                if (!size_is(off, size, 4)) {
                        g->stats.bad_access++;
                        return;
                }
                if (write) {
                        if (off == GICD_CTLR)
                                g->ctlr = v & (VGIC_GICD_CTLR_ENABLE_G0 | VGIC_GICD_CTLR_ENABLE_G1);
                        return;
                }
                if (off == GICD_CTLR)
                        *val = g->ctlr | VGIC_GICD_CTLR_ARE | VGIC_GICD_CTLR_DS;
                else if (off == GICD_TYPER)
                        *val = dist_typer(g);
                else if (off == GICD_IIDR)
                        *val = VGIC_IIDR;
                else
                        *val = id_reg(off);
                return;
        }
        /* INTIDs 0..31 map to no SPI: GICD's banked registers are RAZ/WI under ARE. */
        if (irqreg_access(g, VGIC_NO_VCPU, off, size, write, val)) {
                if (write)
                        *val = 0;
                return;
        }
        *val = 0;
        if (!dist_razwi(off)) {
                g->stats.dist_unknown++;
                g->stats.last_unknown = off;
        }
}

static void vgic_dist_read(void *dev, uint64_t offset, unsigned size, uint64_t *val)
{
        uint64_t v = 0;

        dist_access(dev, offset, size, false, &v);
        *val = v & size_mask(size);
}

static void vgic_dist_write(void *dev, uint64_t offset, unsigned size, uint64_t val)
{
        uint64_t v = val & size_mask(size);

        dist_access(dev, offset, size, true, &v);
}

const struct mmio_ops vgic_dist_ops = {
    .read = vgic_dist_read,
    .write = vgic_dist_write,
};

/* ---- Redistributor ---- */

static uint64_t redist_typer(const struct vgic *g, unsigned vcpu)
{
        uint64_t t = vgic_vcpu_mpidr(vcpu) << GICR_TYPER_AFF_SHIFT | (uint64_t)vcpu
                                                                         << GICR_TYPER_PROC_SHIFT;

        if (vcpu + 1 == g->nr_vcpus)
                t |= GICR_TYPER_LAST;
        return t;
}

static void rd_access(struct vgic *g, unsigned vcpu, uint64_t off, unsigned size, bool write,
                      uint64_t *val)
{
        struct vgic_cpu *c = &g->cpu[vcpu];
        uint64_t in = *val;

        *val = 0;
        if (off == GICR_TYPER || off == GICR_TYPER + 4) {
                if (size_is(off, size, 8))
                        *val = write ? 0 : redist_typer(g, vcpu);
                else if (size_is(off, size, 4))
                        *val = write ? 0 : (uint32_t)(redist_typer(g, vcpu) >> (8 * (off & 4)));
                else
                        g->stats.bad_access++;
                return;
        }
        if (off == GICR_PROPBASER || off == GICR_PENDBASER || off == GICR_PROPBASER + 4 ||
            off == GICR_PENDBASER + 4)
                return; /* no LPIs: RAZ/WI */
        if (off == GICR_CTLR || off == GICR_IIDR || off == GICR_STATUSR || off == GICR_WAKER ||
            (off >= GIC_PIDR4 && off <= GIC_CIDR3)) {
                if (!size_is(off, size, 4)) {
                        g->stats.bad_access++;
                        return;
                }
                if (off == GICR_WAKER) {
                        if (write)
                                c->processor_sleep = (in & WAKER_PROCESSOR_SLEEP) != 0;
                        else if (c->processor_sleep)
                                *val = WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP;
                } else if (!write && off == GICR_IIDR) {
                        *val = VGIC_IIDR;
                } else if (!write && off >= GIC_PIDR4) {
                        *val = id_reg(off);
                }
                return; /* CTLR (no LPIs, nothing to wait for), STATUSR: RAZ/WI */
        }
        g->stats.redist_unknown++;
        g->stats.last_unknown = (uint64_t)vcpu * VGIC_GICR_STRIDE + off;
}

static void sgi_access(struct vgic *g, unsigned vcpu, uint64_t off, unsigned size, bool write,
                       uint64_t *val)
{
        bool known = off == GICR_IGROUPR0 || off == GICR_ISENABLER0 || off == GICR_ICENABLER0 ||
                     off == GICR_ISPENDR0 || off == GICR_ICPENDR0 || off == GICR_ISACTIVER0 ||
                     off == GICR_ICACTIVER0 ||
                     (off >= GICR_IPRIORITYR0 && off < GICR_IPRIORITYR0 + VGIC_NR_PRIVATE) ||
                     off == GICR_ICFGR0 || off == GICR_ICFGR1;

        if (known && irqreg_access(g, vcpu, off, size, write, val)) {
                if (write)
                        *val = 0;
                return;
        }
        *val = 0;
        if (off == GICR_IGRPMODR0 || off == GICR_NSACR)
                return;
        g->stats.redist_unknown++;
        g->stats.last_unknown = (uint64_t)vcpu * VGIC_GICR_STRIDE + VGIC_GICR_SGI_BASE + off;
}

static void redist_access(struct vgic *g, uint64_t offset, unsigned size, bool write, uint64_t *val)
{
        uint64_t idx = offset / VGIC_GICR_STRIDE, off = offset % VGIC_GICR_STRIDE;

        if (idx >= g->nr_vcpus || idx >= VGIC_MAX_VCPUS) {
                *val = 0;
                g->stats.redist_unknown++;
                g->stats.last_unknown = offset;
                return;
        }
        if (off >= VGIC_GICR_SGI_BASE)
                sgi_access(g, (unsigned)idx, off - VGIC_GICR_SGI_BASE, size, write, val);
        else
                rd_access(g, (unsigned)idx, off, size, write, val);
}

static void vgic_redist_read(void *dev, uint64_t offset, unsigned size, uint64_t *val)
{
        uint64_t v = 0;

        redist_access(dev, offset, size, false, &v);
        *val = v & size_mask(size);
}

static void vgic_redist_write(void *dev, uint64_t offset, unsigned size, uint64_t val)
{
        uint64_t v = val & size_mask(size);

        redist_access(dev, offset, size, true, &v);
}

const struct mmio_ops vgic_redist_ops = {
    .read = vgic_redist_read,
    .write = vgic_redist_write,
};

/* ---- Snapshots ---- */

enum { IRQ_EN, IRQ_LATCH, IRQ_LINE, IRQ_ACTIVE, IRQ_G1, IRQ_EDGE, IRQ_NEWS, IRQ_FLAGS };

struct vgic_irq_snap {
        uint64_t route;
        uint8_t flags, owner, priority, pad[5];
};

static void irq_snap_put(const struct vgic_irq *i, struct snap_buf *b)
{
        struct vgic_irq_snap s = {
            .route = i->route,
            .flags = (uint8_t)(i->enabled << IRQ_EN | i->pending_latch << IRQ_LATCH |
                               i->line << IRQ_LINE | i->active << IRQ_ACTIVE | i->group1 << IRQ_G1 |
                               i->edge << IRQ_EDGE | i->news << IRQ_NEWS),
            .owner = i->owner,
            .priority = i->priority};

        snap_put(b, &s, sizeof(s));
}

__attribute__((cold)) void vgic_save(const struct vgic *vgic, struct snap_buf *b)
{
        snap_put(b, &vgic->ctlr, sizeof(vgic->ctlr));
        for (unsigned c = 0; c < vgic->nr_vcpus; c++) {
                uint8_t sleep = vgic->cpu[c].processor_sleep;

                snap_put(b, &sleep, 1);
                for (unsigned i = 0; i < VGIC_NR_PRIVATE; i++)
                        irq_snap_put(&vgic->cpu[c].priv[i], b);
        }
        for (unsigned i = 0; i < vgic->nr_spis; i++)
                irq_snap_put(&vgic->spi[i], b);
}

/* The next interrupt `intid` of the snapshot into *irq (checked; *irq changed only if apply). */
static int irq_snap_get(struct vgic *g, struct snap_rd *r, unsigned intid, struct vgic_irq *irq)
{
        struct vgic_irq_snap s;
        bool spi = intid >= VGIC_NR_PRIVATE;

        if (!snap_get(r, &s, sizeof(s)))
                return -KEEL_EINVAL;
        if ((s.flags >> IRQ_FLAGS) || s.pad[0] | s.pad[1] | s.pad[2] | s.pad[3] | s.pad[4] ||
            (intid < 16 && !(s.flags >> IRQ_EDGE & 1)) ||
            (spi ? (s.route & ~ROUTE_MASK) ||
                       (s.owner != VGIC_NO_VCPU &&
                        (s.owner >= g->nr_vcpus || !(s.flags >> IRQ_ACTIVE & 1)))
                 : s.route || s.owner != VGIC_NO_VCPU))
                return snap_fail(r, "GIC: INTID %u holds a state the GIC cannot have", intid);
        if (r->apply)
                *irq = (struct vgic_irq){.enabled = s.flags >> IRQ_EN & 1,
                                         .pending_latch = s.flags >> IRQ_LATCH & 1,
                                         .line = s.flags >> IRQ_LINE & 1,
                                         .active = s.flags >> IRQ_ACTIVE & 1,
                                         .group1 = s.flags >> IRQ_G1 & 1,
                                         .edge = s.flags >> IRQ_EDGE & 1,
                                         .news = s.flags >> IRQ_NEWS & 1,
                                         .owner = s.owner,
                                         .priority = s.priority,
                                         .route = s.route};
        return 0;
}

__attribute__((cold)) int vgic_load(struct vgic *vgic, struct snap_rd *r)
{
        uint32_t ctlr;
        int err = 0;

        if (!snap_get(r, &ctlr, sizeof(ctlr)))
                return -KEEL_EINVAL;
        if (ctlr & ~(VGIC_GICD_CTLR_ENABLE_G0 | VGIC_GICD_CTLR_ENABLE_G1))
                return snap_fail(r, "GIC: GICD_CTLR %#x", ctlr);
        if (r->apply)
                vgic->ctlr = ctlr;
        for (unsigned c = 0; !err && c < vgic->nr_vcpus; c++) {
                struct vgic_cpu *cpu = &vgic->cpu[c];
                uint8_t sleep;

                if (!snap_get(r, &sleep, 1))
                        return -KEEL_EINVAL;
                if (sleep > 1)
                        return snap_fail(r, "GIC: vCPU %u: ProcessorSleep %u", c, sleep);
                if (r->apply) {
                        cpu->processor_sleep = sleep;
                        cpu->flushed = false; /* synced: no LR holds anything of the model's */
                        cpu->nr_lr = 0;
                }
                for (unsigned i = 0; !err && i < VGIC_NR_PRIVATE; i++)
                        err = irq_snap_get(vgic, r, i, &cpu->priv[i]);
        }
        for (unsigned i = 0; !err && i < vgic->nr_spis; i++)
                err = irq_snap_get(vgic, r, VGIC_NR_PRIVATE + i, &vgic->spi[i]);
        return err;
}
