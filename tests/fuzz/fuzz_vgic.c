/*
 * libFuzzer target for the arm64 guest GICv3 model (arch/arm64/vgic.c, pure C): distributor
 * and redistributor MMIO, SPI/PPI input lines, ICC_SGI1R_EL1 writes and the list-register
 * flush/sync protocol, with a fuzzed "guest" acknowledging and completing what the LRs hold.
 *
 * Input: byte 0: vCPUs - 1 (bits 0-2); byte 1: SPIs (values above VGIC_MAX_SPIS must make
 * vgic_init refuse, and the harmless GIC it leaves is fuzzed too); then operations, a kind
 * byte (bits 0-3 the kind, bits 4-7 the vCPU mod the count) and operands:
 *   0 GICD access: le16 offset, size byte (bits 0-1: 1, 2, 4, 8; bit 2: write), le32 value
 *   1 GICR access: the same, with the size byte's bit 3 selecting the SGI_base frame and
 *     bits 4-6 the frame's vCPU (up to 7, so frames that do not exist too)
 *   2 SPI line: INTID byte, level byte;  3 PPI line: INTID byte, level byte
 *   4 ICC_SGI1R_EL1: le64 value;  5 flush: LR count byte (1..16);  6 sync
 *   7 the guest acts on LR byte % 16: bits 4-5: 0 acknowledge (pending -> active),
 *     1 deactivate (-> invalid), 2 acknowledge and deactivate, 3 no change
 * Invariants (abort on violation):
 *   - a flush fills at most min(count, VGIC_MAX_LRS) LRs and zeroes the rest; no INTID twice;
 *     every LR names an INTID that exists (< 32 + SPIs), is pending or active, never HW, and
 *     level interrupts carry the EOI bit; after the active ones, the pending ones come in
 *     priority order (ties by lower INTID); an SPI is in flight on one vCPU at a time;
 *   - vgic_kick_mask names only other, existing vCPUs, each with something to take:
 *     vgic_has_pending, or an enabled interrupt of its made pending since its last flush
 *     (`news`: the model kicks for it even while it shows the interrupt active or in an LR,
 *     which may be stale for a running vCPU);
 *   - reads are zero-extended to their size, a register reads the same twice, GICD_CTLR
 *     reads ARE and DS set and RWP clear, GICD_TYPER names the SPIs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arch/vcpu_affinity.h>
#include <arch/vgic.h>

#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vgic g;
static struct vgic_cpu fuzz_cpus[VGIC_MAX_VCPUS];
static uint64_t lrs[VGIC_MAX_VCPUS][VGIC_MAX_LRS];
static unsigned nr_used[VGIC_MAX_VCPUS];
static bool flushed[VGIC_MAX_VCPUS];

static unsigned lr_intid(uint64_t lr)
{
        return (unsigned)(lr & VGIC_LR_VINTID_MASK);
}

static unsigned lr_prio(uint64_t lr)
{
        return (unsigned)((lr & VGIC_LR_PRIO_MASK) >> VGIC_LR_PRIO_SHIFT);
}

static const struct vgic_irq *irq_of(unsigned vcpu, unsigned intid)
{
        return intid < VGIC_NR_PRIVATE ? &g.cpu[vcpu].priv[intid] : &g.spi[intid - 32];
}

static void check_flush(unsigned vcpu, unsigned nr, unsigned n)
{
        const uint64_t *lr = lrs[vcpu];
        bool seen_pending_only = false;
        uint64_t prev = 0;

        if (n > nr || n > VGIC_MAX_LRS)
                abort();
        for (unsigned i = n; i < nr; i++)
                if (lr[i])
                        abort();
        for (unsigned i = 0; i < n; i++) {
                unsigned id = lr_intid(lr[i]);

                if (id >= 32 + g.nr_spis || !(lr[i] & VGIC_LR_STATE_MASK) || (lr[i] & VGIC_LR_HW))
                        abort();
                if (!irq_of(vcpu, id)->edge && !(lr[i] & VGIC_LR_EOI))
                        abort();
                for (unsigned j = 0; j < i; j++)
                        if (lr_intid(lr[j]) == id)
                                abort();
                if (lr[i] & VGIC_LR_ACTIVE) {
                        if (seen_pending_only)
                                abort(); /* in-flight interrupts come first */
                        continue;
                }
                if (seen_pending_only && (lr_prio(lr[i]) < lr_prio(prev) ||
                                          (lr_prio(lr[i]) == lr_prio(prev) && id < lr_intid(prev))))
                        abort();
                /* Pending-only entries that were not in flight before follow priority order. */
                if (!irq_of(vcpu, id)->active) {
                        seen_pending_only = true;
                        prev = lr[i];
                }
        }
}

/* No SPI is in the flushed, unsynced LRs of two vCPUs. */
static void check_spi_owners(void)
{
        static uint8_t where[32 + VGIC_MAX_SPIS];

        memset(where, 0xff, sizeof(where));
        for (unsigned c = 0; c < g.nr_vcpus; c++) {
                if (!flushed[c])
                        continue;
                for (unsigned i = 0; i < nr_used[c]; i++) {
                        unsigned id = lr_intid(lrs[c][i]);

                        if (id < 32 || id >= 32 + VGIC_MAX_SPIS)
                                continue;
                        if (where[id] != 0xff && where[id] != c)
                                abort();
                        where[id] = (uint8_t)c;
                }
        }
}

/* Something for vCPU c to take (the kick invariant above). */
static bool kick_reason(unsigned c)
{
        if (vgic_has_pending(&g, c))
                return true;
        for (unsigned i = 0; i < VGIC_NR_PRIVATE; i++)
                if (g.cpu[c].priv[i].news && g.cpu[c].priv[i].enabled)
                        return true;
        for (unsigned i = 0; i < g.nr_spis && i < VGIC_MAX_SPIS; i++) {
                const struct vgic_irq *irq = &g.spi[i];
                unsigned home = irq->owner != VGIC_NO_VCPU
                                    ? irq->owner
                                    : vgic_mpidr_vcpu(irq->route, g.nr_vcpus);

                if (irq->news && irq->enabled && home == c)
                        return true;
        }
        return false;
}

static void check_kick(unsigned from)
{
        uint64_t mask = vgic_kick_mask(&g, from);

        if ((g.nr_vcpus < 64 && mask >> g.nr_vcpus) || (from < 64 && mask >> from & 1))
                abort();
        for (unsigned c = 0; c < g.nr_vcpus; c++)
                if ((mask >> c & 1) && !kick_reason(c))
                        abort();
}

static void mmio(const struct mmio_ops *ops, uint64_t off, uint8_t how, uint32_t v32)
{
        unsigned sz = 1u << (how & 3);
        uint64_t v, again;

        if (how & 4) {
                ops->write(&g, off, sz, sz == 8 ? (uint64_t)v32 << 32 | v32 : v32);
                return;
        }
        ops->read(&g, off, sz, &v);
        if (sz < 8 && v >> (8 * sz))
                abort();
        ops->read(&g, off, sz, &again);
        if (again != v)
                abort();
}

static void op(struct in *in, uint8_t kind)
{
        unsigned vcpu = g.nr_vcpus ? (kind >> 4) % g.nr_vcpus : 0;
        uint8_t b[2];
        uint16_t off;
        uint32_t v32;
        uint64_t v64;
        bool under;

        switch (kind & 15) {
        case 0:
                if (take(in, &off, 2) && take(in, b, 1) && take(in, &v32, 4))
                        mmio(&vgic_dist_ops, off, b[0], v32);
                break;
        case 1:
                if (take(in, &off, 2) && take(in, b, 1) && take(in, &v32, 4))
                        mmio(&vgic_redist_ops,
                             (uint64_t)(b[0] >> 4 & 7) * VGIC_GICR_STRIDE +
                                 ((b[0] & 8) ? VGIC_GICR_SGI_BASE : 0) + off,
                             b[0], v32);
                break;
        case 2:
                if (take(in, b, 2))
                        vgic_set_level(&g, b[0], b[1] & 1);
                break;
        case 3:
                if (take(in, b, 2))
                        vgic_set_ppi_level(&g, vcpu, b[0], b[1] & 1);
                break;
        case 4:
                if (take(in, &v64, 8))
                        vgic_sgi1r(&g, vcpu, v64);
                break;
        case 5:
                if (take(in, b, 1)) {
                        unsigned nr = 1u + (b[0] & 15);

                        memset(lrs[vcpu], 0xa5, sizeof(lrs[vcpu]));
                        nr_used[vcpu] = vgic_flush_lrs(&g, vcpu, lrs[vcpu], nr, &under);
                        flushed[vcpu] = true;
                        check_flush(vcpu, nr, nr_used[vcpu]);
                        check_spi_owners();
                }
                break;
        case 6:
                vgic_sync_lrs(&g, vcpu, lrs[vcpu], nr_used[vcpu]);
                flushed[vcpu] = false;
                break;
        case 7:
                if (take(in, b, 1)) {
                        uint64_t *lr = &lrs[vcpu][b[0] & 15];
                        unsigned what = b[0] >> 4 & 3;

                        if ((b[0] & 15) >= nr_used[vcpu])
                                break;
                        if ((what == 0 || what == 2) && (*lr & VGIC_LR_PENDING))
                                *lr = (*lr & ~VGIC_LR_STATE_MASK) | VGIC_LR_ACTIVE;
                        if (what == 1 || what == 2) {
                                if ((*lr & VGIC_LR_STATE_MASK) == VGIC_LR_ACTIVE)
                                        *lr &= ~VGIC_LR_STATE_MASK;
                                else if (*lr & VGIC_LR_ACTIVE)
                                        *lr &= ~VGIC_LR_ACTIVE;
                        }
                }
                break;
        default:
                break;
        }
        if (g.nr_vcpus)
                check_kick(vcpu);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct in in = {data, size};
        uint8_t sel[2], kind;
        uint64_t v;
        int rc;

        if (!take(&in, sel, 2))
                return 0;
        memset(lrs, 0, sizeof(lrs));
        memset(nr_used, 0, sizeof(nr_used));
        memset(flushed, 0, sizeof(flushed));
        rc = vgic_init(&g, fuzz_cpus, (sel[0] & 31) + 1u, sel[1]); /* Aff1 0..1 */
        if ((rc == 0) != (sel[1] <= VGIC_MAX_SPIS))
                abort();
        if (rc == 0) {
                vgic_dist_ops.read(&g, 0x0000, 4, &v); /* GICD_CTLR */
                if (!(v & VGIC_GICD_CTLR_ARE) || !(v & VGIC_GICD_CTLR_DS) ||
                    (v & VGIC_GICD_CTLR_RWP))
                        abort();
                vgic_dist_ops.read(&g, 0x0004, 4, &v); /* GICD_TYPER.ITLinesNumber */
                if (32 * ((v & 0x1f) + 1) < 32 + g.nr_spis)
                        abort();
        }
        while (take(&in, &kind, 1)) {
                op(&in, kind);
                if (rc == 0) {
                        vgic_dist_ops.read(&g, 0x0000, 4, &v);
                        if (!(v & VGIC_GICD_CTLR_ARE) || !(v & VGIC_GICD_CTLR_DS) ||
                            (v & VGIC_GICD_CTLR_RWP))
                                abort();
                }
        }
        return 0;
}
