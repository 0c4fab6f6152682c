/*
 * The emulated GICv3 (vgic.c, the model) meets the hardware's virtual CPU interface here:
 * list registers are written before each guest entry and read back after each exit
 * (the protocol in arch/vgic.h), the guest's CPU-interface state (ICH_VMCR_EL2) is kept per
 * vCPU, and the virtual timer is linked to its physical interrupt: Keel only drops the
 * physical INTID 27's priority, and the list register carries HW = 1 with pINTID 27, so the
 * guest's EOI deactivates the physical interrupt and the timer can fire again. No storm of
 * exits while the guest has not handled a tick, no trap on the guest's timer registers.
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
        write_sysreg(vmpidr_el2, (1ull << 31) | vcpu->id);
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

                if (i < n && (lr & VGIC_LR_VINTID_MASK) == VGIC_VTIMER_PPI)
                        lr = (lr & ~LR_PINTID_MASK) | VGIC_LR_HW |
                             (uint64_t)INTID_VTIMER << LR_PINTID_SHIFT;
                arm64_write_lr(i, lr);
        }
        c->lrs_used = n;
        write_sysreg(ICH_HCR_EL2, ICH_HCR_EN | (underflow ? ICH_HCR_UIE : 0));
}

void arm64_vgic_sync(struct vcpu *vcpu)
{
        struct vcpu_arch *c = &vcpu->arch;
        struct spin_held held;

        for (unsigned i = 0; i < c->lrs_used; i++)
                c->lrs[i] = arm64_read_lr(i);
        held = spin_lock(&vcpu->vm->dev_lock);
        vgic_sync_lrs(&vcpu->vm->arch.vgic, vcpu->id, c->lrs, c->lrs_used);
        spin_unlock(held);
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
        /* A tick the guest never finished must not keep the physical timer interrupt busy. */
        arm64_gic_clear_active(INTID_VTIMER);
}

void arm64_vtimer_fired(struct vcpu *vcpu)
{
        struct vgic *g = &vcpu->vm->arch.vgic;

        /*
         * A one-shot pending state (like a GICR_ISPENDR0 write): the HW link, not the model's
         * line, tells when the timer may fire again.
         */
        if (vcpu->id < g->nr_vcpus)
                g->cpu[vcpu->id].priv[VGIC_VTIMER_PPI].pending_latch = true;
}
