/*
 * The emulated GICv3 (vgic.c, the model) meets the hardware's virtual CPU interface here:
 * list registers are written before each guest entry and read back after each exit
 * (the protocol in arch/vgic.h), the guest's CPU-interface state (ICH_VMCR_EL2) is kept per
 * vCPU, and the guest's EL1 timers (virtual, INTID 27, and physical, INTID 30: both belong to
 * the guest while it runs) are linked to their physical interrupts: Keel only drops the
 * physical interrupt's priority, and the list register carries HW = 1 with the same pINTID,
 * so the guest's EOI deactivates the physical interrupt and the timer can fire again. No storm
 * of exits while the guest has not handled a tick, no trap on the guest's timer registers.
 * A timer's PPI is pending exactly while its output is asserted: at every exit, one that
 * fired but whose condition no longer holds (the guest disabled, masked or reprogrammed it
 * before acknowledging) stops being pending, and its physical interrupt is deactivated so
 * that it fires again when the condition next holds.
 */
#include <arch/cpu.h>
#include <arch/sysreg.h>
#include <arch/vgic.h>
#include <arch/vm.h>
#include <keel/spinlock.h>
#include <vmm/vm.h>

#include "arm64_priv.h"

#define ICH_HCR_EN      (1ull << 0)
#define ICH_HCR_UIE     (1ull << 1)
#define LR_PINTID_SHIFT 32
#define LR_PINTID_MASK  (0x1fffull << LR_PINTID_SHIFT)

void arm64_vgic_load(struct vcpu *vcpu)
{
        write_sysreg(ICH_VMCR_EL2, vcpu->arch.vmcr);
        /* Active priorities of a handler the guest was in when it last left the CPU. */
        write_sysreg(S3_4_C12_C9_0, vcpu->arch.ap1r0); /* ICH_AP1R0_EL2 */
        write_sysreg(S3_4_C12_C8_0, vcpu->arch.ap0r0); /* ICH_AP0R0_EL2 */
        write_sysreg(vmpidr_el2, (1ull << 31) | vgic_vcpu_mpidr(vcpu->id));
        write_sysreg(ICH_HCR_EL2, ICH_HCR_EN);
        isb();
}

void arm64_vgic_flush(struct vcpu *vcpu, unsigned nr_lrs)
{
        struct vcpu_arch *c = &vcpu->arch;
        bool underflow = false;
        /* The model is shared with the VM's other vCPUs (SPIs, SGIs they send, GICR writes). */
        struct spin_held held = spin_lock(&vcpu->vm->dev_lock);
        unsigned n = vgic_flush_lrs(&vcpu->vm->arch.vgic, vcpu->id, c->lrs, nr_lrs, &underflow);

        spin_unlock(held);

        for (unsigned i = 0; i < nr_lrs; i++) {
                uint64_t lr = c->lrs[i];

                uint64_t vintid = lr & VGIC_LR_VINTID_MASK;

                if (i < n && (vintid == VGIC_VTIMER_PPI || vintid == VGIC_PTIMER_PPI))
                        lr = (lr & ~(LR_PINTID_MASK | VGIC_LR_EOI)) | VGIC_LR_HW |
                             vintid << LR_PINTID_SHIFT;
                arm64_write_lr(i, lr);
        }
        c->lrs_used = n;
        write_sysreg(ICH_HCR_EL2, ICH_HCR_EN | (underflow ? ICH_HCR_UIE : 0));
}

/* The timer's output: enabled, not masked, condition met (ISTATUS). */
static bool timer_asserted(uint64_t ctl)
{
        return (ctl & (CNT_CTL_ENABLE | CNT_CTL_IMASK | CNT_CTL_ISTATUS)) ==
               (CNT_CTL_ENABLE | CNT_CTL_ISTATUS);
}

/*
 * After the LRs are folded back (dev_lock held): a timer PPI latched by its physical
 * interrupt that the guest has not acknowledged stops being pending once the timer's output
 * is no longer asserted. Returns the mask (bit 0 virtual, bit 1 physical) of the physical
 * interrupts to deactivate.
 */
static unsigned timers_resample(struct vcpu *vcpu, struct vgic *g)
{
        static const unsigned ppi[2] = {VGIC_VTIMER_PPI, VGIC_PTIMER_PPI};
        struct vcpu_arch *c = &vcpu->arch;
        unsigned drop = 0;

        for (unsigned t = 0; t < 2; t++) {
                struct vgic_irq *irq = &g->cpu[vcpu->id].priv[ppi[t]];
                uint64_t ctl;

                if (!c->timer_latched[t])
                        continue;
                if (!irq->pending_latch || irq->active) {
                        c->timer_latched[t] = false; /* acknowledged: the guest's EOI ends it */
                        continue;
                }
                ctl = t ? read_sysreg(cntp_ctl_el0) : read_sysreg(cntv_ctl_el0);
                if (timer_asserted(ctl))
                        continue;
                irq->pending_latch = false;
                c->timer_latched[t] = false;
                drop |= 1u << t;
        }
        return drop;
}

void arm64_vgic_sync(struct vcpu *vcpu)
{
        struct vcpu_arch *c = &vcpu->arch;
        struct vgic *g = &vcpu->vm->arch.vgic;
        struct spin_held held;
        unsigned drop = 0;

        for (unsigned i = 0; i < c->lrs_used; i++)
                c->lrs[i] = arm64_read_lr(i);
        held = spin_lock(&vcpu->vm->dev_lock);
        vgic_sync_lrs(g, vcpu->id, c->lrs, c->lrs_used);
        if ((c->timer_latched[0] || c->timer_latched[1]) && vcpu->id < g->nr_vcpus)
                drop = timers_resample(vcpu, g);
        spin_unlock(held);
        if (drop & 1)
                arm64_gic_clear_active(INTID_VTIMER);
        if (drop & 2)
                arm64_gic_clear_active(INTID_PTIMER);
}

void arm64_vgic_put(struct vcpu *vcpu)
{
        unsigned n = arm64_gic_nr_lrs();

        vcpu->arch.vmcr = read_sysreg(ICH_VMCR_EL2);
        vcpu->arch.ap1r0 = read_sysreg(S3_4_C12_C9_0);
        vcpu->arch.ap0r0 = read_sysreg(S3_4_C12_C8_0);
        for (unsigned i = 0; i < n && i < ARM64_MAX_LRS; i++)
                arm64_write_lr(i, 0);
        write_sysreg(ICH_HCR_EL2, 0);
        isb();
        /* A tick the guest never finished must not keep a physical timer interrupt busy. */
        arm64_gic_clear_active(INTID_VTIMER);
        arm64_gic_clear_active(INTID_PTIMER);
}

void arm64_timer_fired(struct vcpu *vcpu, unsigned intid)
{
        struct vgic *g = &vcpu->vm->arch.vgic;
        unsigned t = intid == INTID_PTIMER;

        /*
         * Pending until the guest acknowledges it or the timer's output drops
         * (timers_resample); the HW link, not the model's line, tells when it may fire again.
         */
        if (vcpu->id < g->nr_vcpus) {
                struct vgic_irq *irq =
                    &g->cpu[vcpu->id].priv[t ? VGIC_PTIMER_PPI : VGIC_VTIMER_PPI];

                /*
                 * Still active: the guest is in its handler of this tick, and the physical
                 * interrupt fired again only because a vCPU switch deactivated it
                 * (arm64_vgic_put) while the timer still asserted. The same level, not a new
                 * one: it stays active, the list register's HW link ends it at the guest's
                 * EOI, and it fires again after that only if the timer still asserts. Latched
                 * here, the guest took it a second time after its EOI with the timer already
                 * masked (hostile_gic's slow-handler check: 10 interrupts in 5 rounds).
                 */
                if (irq->active)
                        return;
                irq->pending_latch = true;
                vcpu->arch.timer_latched[t] = true;
        }
}
