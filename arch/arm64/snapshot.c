/*
 * arm64 parts of snapshots (vmm/snapshot.h, docs/snapshot.md): a vCPU's general registers,
 * PC and PSTATE, its EL1 system registers (with the virtual and physical EL1 timers and the
 * debug registers), FP/SIMD and, where the CPU has SVE, its SVE registers, and its PSCI power
 * state and its CNTVOFF (moved by the restore's shift, vmm/snapshot.h); the VM's PL011.
 * Stage 2, the VMID and HCR_EL2 are Keel's and never come from a snapshot.
 */
#include <stdio.h>
#include <string.h>

#include <keel/addr.h>
#include <keel/errno.h>
#include <vmm/snapshot.h>
#include <vmm/vm.h>

/* PSTATE bits a guest at EL1 or EL0 may hold (Arm ARM C5.2.19 SPSR_EL2, AArch64): NZCV, TCO,
 * DIT, UAO, PAN, SS, IL, SSBS, BTYPE, DAIF and M[3:0]; M[4] (AArch32) is refused. */
#define PSTATE_ALLOWED 0xf3f01fcfull
#define PSTATE_M       0x1full
/* ICH_VMCR_EL2: VENG0, VENG1, VAckCtl, VFIQEn, VCBPR, VEOIM, VBPR1, VBPR0, VPMR. */
#define ICH_VMCR_BITS 0xfffc021full

struct arm64_vcpu_snap {
        uint64_t x[31], pc, pstate;
        struct arm64_el1_regs el1;
        uint64_t on_entry, on_ctx;
        uint64_t vmcr, ap0r0, ap1r0; /* the GIC CPU interface */
        uint8_t powered, on_pending, fresh, latched0, latched1, pad[3];
        uint64_t cntvoff;  /* CNTVOFF_EL2: with the header's counter, the virtual counter */
        uint64_t sve_size; /* then the SVE registers (0 where the CPU has no SVE) */
};

size_t arch_snapshot_max(const struct vm *vm)
{
        /* per vCPU, and also the devices: PL011, PL031, the GIC (520 bytes a vCPU, 16 an SPI) */
        return sizeof(struct arm64_vcpu_snap) + sizeof(struct arm64_fp_regs) +
               (size_t)vm->arch.sve_pages * PAGE_SIZE + 2048 + 520 * vm->vcpu_count;
}

uint32_t arch_snapshot_devices(const struct vm *vm)
{
        return SNAP_DEV_UART | (vm->arch.platform ? SNAP_DEV_RTC | SNAP_DEV_PLATFORM : 0);
}

int arch_snapshot_check(const struct vm *vm, char *why, size_t len)
{
        (void)vm, (void)why, (void)len;
        return 0;
}

__attribute__((cold)) void arch_snapshot_vcpu_save(struct vcpu *vcpu, struct snap_buf *b)
{
        const struct vcpu_arch *c = &vcpu->arch;
        const struct vm_arch *a = &vcpu->vm->arch;
        struct arm64_vcpu_snap s;

        memset(&s, 0, sizeof(s));
        memcpy(s.x, c->x, sizeof(s.x));
        s.pc = c->pc;
        s.pstate = c->pstate;
        s.el1 = c->el1;
        s.on_entry = c->on_entry;
        s.on_ctx = c->on_ctx;
        s.vmcr = c->vmcr;
        s.ap0r0 = c->ap0r0;
        s.ap1r0 = c->ap1r0;
        s.powered = c->powered;
        s.on_pending = c->on_pending;
        s.fresh = c->fresh;
        s.latched0 = c->timer_latched[0];
        s.latched1 = c->timer_latched[1];
        s.cntvoff = c->cntvoff;
        s.sve_size = vcpu->arch.sve ? (uint64_t)a->sve_pages * PAGE_SIZE : 0;
        snap_put(b, &s, sizeof(s));
        snap_put(b, &c->fp, sizeof(c->fp));
        if (s.sve_size)
                snap_put(b, vcpu->arch.sve, s.sve_size);
}

__attribute__((cold)) int arch_snapshot_vcpu_load(struct vcpu *vcpu, struct snap_rd *r)
{
        struct vcpu_arch *c = &vcpu->arch;
        struct vm_arch *a = &vcpu->vm->arch;
        struct arm64_vcpu_snap s;
        struct arm64_fp_regs fp;
        uint64_t m, sve_size = vcpu->arch.sve ? (uint64_t)a->sve_pages * PAGE_SIZE : 0;
        const uint8_t *sve;

        if (!snap_get(r, &s, sizeof(s)) || !snap_get(r, &fp, sizeof(fp)))
                return -KEEL_EINVAL;
        m = s.pstate & PSTATE_M;
        if ((s.pstate & ~PSTATE_ALLOWED) || (m != 0 && m != 4 && m != 5))
                return snap_fail(r, "vCPU %u: PSTATE %#llx is not an AArch64 EL0 or EL1 state",
                                 vcpu->id, (unsigned long long)s.pstate);
        if (s.powered > 1 || s.on_pending > 1 || s.fresh > 1 || s.latched0 > 1 || s.latched1 > 1 ||
            s.pad[0] || s.pad[1] || s.pad[2])
                return snap_fail(r, "vCPU %u: a flag is neither 0 nor 1", vcpu->id);
        if ((s.vmcr & ~ICH_VMCR_BITS) || (s.ap0r0 | s.ap1r0) >> 32)
                return snap_fail(r,
                                 "vCPU %u: GIC CPU interface ICH_VMCR %#llx or active priorities",
                                 vcpu->id, (unsigned long long)s.vmcr);
        if (s.sve_size != sve_size)
                return snap_fail(r, "vCPU %u: %llu bytes of SVE registers, this CPU has %llu",
                                 vcpu->id, (unsigned long long)s.sve_size,
                                 (unsigned long long)sve_size);
        if (sve_size > r->len - r->pos)
                return snap_fail(r, "vCPU %u: its SVE registers run past its section", vcpu->id);
        sve = r->p + r->pos;
        r->pos += sve_size;
        if (!r->apply)
                return 0;
        memcpy(c->x, s.x, sizeof(c->x));
        c->pc = s.pc;
        c->pstate = s.pstate;
        c->el1 = s.el1;
        /*
         * The virtual counter goes on from its value at the snapshot, however far the
         * physical one moved since (even across a restart), and CNTV_CVAL with it. The
         * physical counter cannot be offset (no FEAT_ECV): CNTP_CVAL moves with it, so that
         * the physical timer has as long to go as at the snapshot.
         */
        c->cntvoff = s.cntvoff + r->shift;
        c->el1.cntp_cval = s.el1.cntp_cval + r->shift;
        c->on_entry = s.on_entry;
        c->on_ctx = s.on_ctx;
        c->vmcr = s.vmcr;
        c->ap0r0 = s.ap0r0;
        c->ap1r0 = s.ap1r0;
        c->powered = s.powered;
        c->on_pending = s.on_pending;
        c->fresh = s.fresh;
        c->timer_latched[0] = s.latched0;
        c->timer_latched[1] = s.latched1;
        c->fp = fp;
        if (sve_size)
                memcpy(vcpu->arch.sve, sve, sve_size);
        c->leave = 0;
        return 0;
}

__attribute__((cold)) void arch_snapshot_vm_save(struct vm *vm, struct snap_buf *b)
{
        pl011_save(&vm->arch.uart, b);
        if (vm->arch.platform) {
                pl031_save(&vm->arch.rtc, b);
                vgic_save(&vm->arch.vgic, b); /* last: the devices' loads drive its lines */
        }
}

__attribute__((cold)) int arch_snapshot_vm_load(struct vm *vm, struct snap_rd *r)
{
        int err = pl011_load(&vm->arch.uart, r);

        if (!err && vm->arch.platform)
                err = pl031_load(&vm->arch.rtc, r);
        if (!err && vm->arch.platform)
                err = vgic_load(&vm->arch.vgic, r);
        return err;
}
