/*
 * The guest's GICv3 (pure C, host-tested): an emulated distributor (GICD) and one emulated
 * redistributor per vCPU (GICR), with interrupts delivered through the hardware virtual CPU
 * interface's list registers (ICH_LR<n>_EL2). The guest uses the ICC_* system registers,
 * which the virtual interface serves; only the GICD/GICR frames trap (vgic_dist_ops,
 * vgic_redist_ops with dev = struct vgic *) and ICC_SGI1R_EL1 (vgic_sgi1r). This file never
 * touches a system register: the arch reads and writes the ICH registers and calls these.
 *
 * The guest sees a GIC with one Security state (GICD_CTLR.DS = 1, as on KVM: the virtual CPU
 * interface has no Secure side), affinity routing always on (ARE RAO/WI), no LPIs/ITS, no
 * 1-of-N routing, INTIDs 0..31 banked per vCPU and SPIs 32..32+nr_spis-1. A vCPU's affinity
 * is Aff0 = its index % 16, Aff1 = its index / 16, Aff3..Aff2 = 0 (vgic_vcpu_mpidr; the arch
 * sets VMPIDR_EL2 and the device tree to match): without range selectors (GICD_TYPER.RSS = 0,
 * RS is RES0) ICC_SGI1R_EL1's target list names Aff0 values 0..15 only, so 16 vCPUs share an
 * Aff1 value and each is an SGI target. Guests use Group 1; Group 0 interrupts go to the LRs
 * with group 0 (a vFIQ) when GICD_CTLR.EnableGrp0 is set.
 *
 * Layout (guest-physical, see VGIC_GICD_BASE/VGIC_GICR_BASE): the distributor is 64 KiB; the
 * redistributor region holds nr_vcpus frames of 128 KiB (RD_base, then SGI_base at
 * +0x10000), offset / VGIC_GICR_STRIDE = vCPU index; VGIC_MAX_VCPUS of them end at
 * 0x088a0000, below the PL011 (0x09000000).
 *
 * LR protocol. The model (struct vgic) is the single source of truth whenever no vCPU runs
 * with its LRs loaded; the LRs are a cache that the guest updates (acknowledge: pending ->
 * active, EOI: active -> invalid) while it runs. Per vCPU, around every guest entry:
 *
 *   1. n = vgic_flush_lrs(vgic, vcpu, lrs, nr_lrs, &underflow): write lrs[0..nr_lrs-1] to
 *      ICH_LR0..ICH_LR<nr_lrs-1>_EL2 (entries n.. are 0 = invalid); set ICH_HCR_EL2.UIE if
 *      `underflow` (more pending interrupts than LRs: the maintenance interrupt when the
 *      LRs drain gives an exit at which the rest go in). The LRs hold, first, every
 *      interrupt in flight on this vCPU (active, maybe also pending), then the pending,
 *      enabled interrupts of an enabled group, highest priority (lowest value) first, ties
 *      by lower INTID; an INTID never appears twice. Level-sensitive interrupts carry the
 *      EOI bit (HW = 0), so the guest's deactivation raises a maintenance interrupt.
 *   2. Run the guest.
 *   3. After the exit, before anything else touches this vCPU's interrupts: read
 *      ICH_LR0..n-1 back and call vgic_sync_lrs(vgic, vcpu, lrs, n). It folds the guest's
 *      work into the model: a pending state the guest acknowledged is consumed, the active
 *      state follows the LR, edge events that arrived while the guest ran stay pending, and
 *      a level interrupt whose line is still high is pending again (the resample).
 *
 * Between flush and sync, an edge interrupt's pending state lives in the LR (the model's
 * latch records only newer edges): GICD/GICR ISPENDR reads from another vCPU may then show
 * it clear, and ICPENDR/ICACTIVER writes from another vCPU to an interrupt in flight in a
 * running vCPU's LRs are overridden by that vCPU's sync. An SPI stays on the vCPU it is in
 * flight on (in an LR, or active) until it is deactivated, even if IROUTER changes. A flush
 * with no sync since the previous flush takes the previous LR contents back unchanged.
 * Callers serialize every call on one struct vgic (one lock per VM).
 */
#ifndef ARCH_ARM64_VGIC_H
#define ARCH_ARM64_VGIC_H

#include <stdbool.h>
#include <stdint.h>

#include <arch/vcpu_affinity.h>
#include <vmm/mmio.h>

#define VGIC_MAX_VCPUS  64 /* bits of vgic_kick_mask's mask */
#define VGIC_MAX_SPIS   96 /* INTIDs 32..127 */
#define VGIC_NR_PRIVATE 32 /* SGIs 0..15, PPIs 16..31, banked per vCPU */
#define VGIC_MAX_LRS    16 /* ICH_VTR_EL2.ListRegs allows at most 16 */
#define VGIC_VTIMER_PPI 27 /* EL1 virtual timer */
#define VGIC_PTIMER_PPI 30 /* EL1 physical timer */

/* Guest-physical layout (the arch registers these on the VM's MMIO bus). */
#define VGIC_GICD_BASE           0x08000000ull
#define VGIC_GICD_SIZE           0x10000ull
#define VGIC_GICR_BASE           0x080a0000ull
#define VGIC_GICR_STRIDE         0x20000ull
#define VGIC_GICR_SGI_BASE       0x10000ull /* SGI_base frame inside a vCPU's redistributor */
#define VGIC_GICR_SIZE(nr_vcpus) ((uint64_t)(nr_vcpus)*VGIC_GICR_STRIDE)

/* ICH_LR<n>_EL2 fields. */
#define VGIC_LR_VINTID_MASK 0xffffffffull
#define VGIC_LR_EOI         (1ull << 41) /* HW = 0: maintenance interrupt on deactivation */
#define VGIC_LR_PRIO_SHIFT  48
#define VGIC_LR_PRIO_MASK   (0xffull << VGIC_LR_PRIO_SHIFT)
#define VGIC_LR_GROUP1      (1ull << 60)
#define VGIC_LR_HW          (1ull << 61)
#define VGIC_LR_PENDING     (1ull << 62)
#define VGIC_LR_ACTIVE      (1ull << 63)
#define VGIC_LR_STATE_MASK  (VGIC_LR_PENDING | VGIC_LR_ACTIVE)

/* GICD_CTLR bits the guest sees (one Security state). */
#define VGIC_GICD_CTLR_ENABLE_G0 (1u << 0)
#define VGIC_GICD_CTLR_ENABLE_G1 (1u << 1)  /* EnableGrp1A in the two-state Non-secure view */
#define VGIC_GICD_CTLR_ARE       (1u << 4)  /* ARE_NS in the two-state Non-secure view: RAO/WI */
#define VGIC_GICD_CTLR_DS        (1u << 6)  /* RAO/WI */
#define VGIC_GICD_CTLR_RWP       (1u << 31) /* reads 0: writes take effect at once */

/* One interrupt's state (an SGI/PPI of one vCPU, or an SPI). */
struct vgic_irq {
        bool enabled;
        bool pending_latch; /* edge event, ISPENDR or SGI; cleared by ack (or ICPENDR) */
        bool line;          /* input level (set_level / set_ppi_level) */
        bool active;
        bool group1;
        bool edge;     /* GICD_ICFGR/GICR_ICFGR: edge-triggered (SGIs always) */
        bool in_lr;    /* put in an LR by the last flush, not synced yet */
        bool news;     /* made pending since its vCPU's last flush: worth a kick even while
                        * in_lr or active, which may be stale for a running vCPU */
        uint8_t owner; /* SPIs: vCPU it is in flight on (in an LR or active), or VGIC_NO_VCPU */
        uint8_t priority;
        uint64_t route; /* SPIs: GICD_IROUTER (Aff3 39:32, Aff2 23:16, Aff1 15:8, Aff0 7:0) */
};

/* What the last flush put in one LR: sync compares the LR read back against it. */
struct vgic_lr_slot {
        uint16_t intid;
        uint8_t state; /* LR bits 63:62 as written; bit 2: the edge latch moved into the LR */
};

struct vgic_cpu {
        struct vgic_irq priv[VGIC_NR_PRIVATE];
        bool processor_sleep; /* GICR_WAKER.ProcessorSleep (ChildrenAsleep follows it) */
        bool flushed;         /* lr[] describes LRs not synced yet */
        uint8_t nr_lr;
        struct vgic_lr_slot lr[VGIC_MAX_LRS];
};

/* Guest-caused oddities and arch slips, counted (silently ignored otherwise): the arch can
 * log the first one of each kind. */
struct vgic_stats {
        uint64_t dist_unknown;   /* GICD access to an offset with no register */
        uint64_t redist_unknown; /* GICR access to an offset with no register (or no vCPU) */
        uint64_t last_unknown;   /* offset of the latest such access (region-relative) */
        uint64_t bad_access;     /* wrong size or alignment for the register: RAZ/WI */
        uint64_t sgi_dropped;    /* ICC_SGI1R_EL1 naming no existing vCPU */
        uint64_t lr_mismatch;    /* sync: an LR's vINTID is not what flush put there */
        uint64_t reflush;        /* flush with no sync since the previous one */
};

struct vgic {
        unsigned nr_vcpus;
        unsigned nr_spis;
        uint32_t ctlr;        /* VGIC_GICD_CTLR_ENABLE_G0 | VGIC_GICD_CTLR_ENABLE_G1 */
        struct vgic_cpu *cpu; /* nr_vcpus of them: the caller's memory (vgic_init) */
        struct vgic_irq spi[VGIC_MAX_SPIS]; /* spi[i] is INTID 32 + i */
        struct vgic_stats stats;
};

/*
 * Reset state: everything disabled, inactive, not pending, Group 1, priority 0, SPIs level-
 * triggered and routed to vCPU 0, PPIs level, SGIs edge; redistributors asleep
 * (ProcessorSleep = 1). nr_vcpus 1..VGIC_MAX_VCPUS with `cpus` an array of that many (the
 * caller's, sized when the VM is built; vgic_init fills it), nr_spis 0..VGIC_MAX_SPIS, else
 * -KEEL_EINVAL (and *vgic is left as a GIC with no vCPU, on which every call is harmless).
 */
int vgic_init(struct vgic *vgic, struct vgic_cpu *cpus, unsigned nr_vcpus, unsigned nr_spis);

/* irq.h's set_level (ctrl = struct vgic *, pin = INTID): drive SPI `intid`'s input line.
 * Edge-triggered: a rising edge latches pending. INTIDs that are no SPI are ignored. */
void vgic_set_level(void *vgic, unsigned intid, bool level);

/* Drive PPI `intid` (16..31) of `vcpu` (e.g. VGIC_VTIMER_PPI from the virtual timer);
 * anything else is ignored. */
void vgic_set_ppi_level(struct vgic *vgic, unsigned vcpu, unsigned intid, bool level);

/* A trapped write of `icc_sgi1r_value` to ICC_SGI1R_EL1 by `from_vcpu`: pend SGI INTID[27:24]
 * on the vCPUs in TargetList/RS/Aff3..Aff1, or on every other vCPU if IRM. Only SGIs that
 * are Group 1 on the target are generated (one Security state). */
void vgic_sgi1r(struct vgic *vgic, unsigned from_vcpu, uint64_t icc_sgi1r_value);

/* Step 1 of the protocol above. Fills all nr_lrs entries of lrs (at most VGIC_MAX_LRS get
 * an interrupt), returns how many are in use; *want_underflow (may be NULL) is set to
 * whether interrupts to deliver were left out. A vcpu that does not exist gets no LRs. */
unsigned vgic_flush_lrs(struct vgic *vgic, unsigned vcpu, uint64_t *lrs, unsigned nr_lrs,
                        bool *want_underflow);

/* Step 3: lrs[0..nr_lrs-1] as read back after the exit (nr_lrs = flush's return value). */
void vgic_sync_lrs(struct vgic *vgic, unsigned vcpu, const uint64_t *lrs, unsigned nr_lrs);

/*
 * Whether `vcpu` has an interrupt to take: pending, not active, enabled, its group enabled
 * in GICD_CTLR (for WFI: call after vgic_sync_lrs). It ignores the guest's CPU-interface
 * state (ICC_PMR_EL1 priority mask, running priority, ICC_IGRPEN1_EL1), which lives in
 * ICH_VMCR_EL2/ICH_AP1R: a masked interrupt wakes the vCPU, which then waits again.
 */
bool vgic_has_pending(const struct vgic *vgic, unsigned vcpu);

/*
 * The vCPUs other than `from_vcpu` (bit n = vCPU n) that have an interrupt to take which their
 * list registers do not hold yet (pending, enabled, group enabled, not active, not in an LR):
 * after `from_vcpu` changed the model (an SGI, a GICD/GICR write, a device's line), those are
 * the vCPUs whose CPUs must be kicked so that they leave the guest (or their wait) and flush.
 */
uint64_t vgic_kick_mask(const struct vgic *vgic, unsigned from_vcpu);

extern const struct mmio_ops vgic_dist_ops, vgic_redist_ops;

/* Snapshots (vmm/snapshot.h) of a VM whose vCPUs are off their CPUs (LRs synced): GICD_CTLR,
 * each vCPU's redistributor (ProcessorSleep, its SGIs and PPIs) and the SPIs; load checks
 * every field against what the guest could have set and applies in the apply pass. */
struct snap_buf;
struct snap_rd;
void vgic_save(const struct vgic *vgic, struct snap_buf *b);
int vgic_load(struct vgic *vgic, struct snap_rd *r);

#endif
