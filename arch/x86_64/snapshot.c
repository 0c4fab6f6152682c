/*
 * x86 parts of snapshots (vmm/snapshot.h, docs/snapshot.md): a vCPU's registers (the VMCB's
 * guest state and pending event, which the VT-x backend converts its VMCS to and from:
 * x86_snap.h; the general registers, the FPU/SSE/AVX save area and XCR0, the registers Keel
 * switches itself) and the VM's devices (COM1, the
 * CMOS RTC, pc_testdev's latch). The VMCB's host side (intercepts, permission maps, ASID,
 * nested paging) is never taken from a snapshot: only the guest's state and the few intercepts
 * that follow it (interrupt and NMI windows). The TSC offset is moved by the restore's shift
 * (vmm/snapshot.h), so that the guest's TSC continues from its value at the snapshot.
 */
#include <stdio.h>
#include <string.h>

#include <arch/fpu.h>
#include <arch/x86.h>
#include <arch/x86_checks.h>
#include <arch/x86_vcpu.h>
#include <keel/errno.h>
#include <vmm/snapshot.h>
#include <vmm/vm.h>

#include "x86_snap.h"

static struct vmcb_seg flat_seg(uint16_t sel, uint16_t attrib)
{
        return (struct vmcb_seg){.selector = sel, .attrib = attrib, .limit = 0xffffffff};
}

void x86_entry_save(const struct x86_entry_state *st, struct vmcb_save *v)
{
        memset(v, 0, sizeof(*v));
        if (st->real_mode) {
                /* Real-mode segments: 64 KiB, present, accessed, read/write (code: exec/read). */
                v->cs = (struct vmcb_seg){
                    .selector = st->cs, .attrib = 0x9b, .limit = 0xffff, .base = st->cs_base};
                v->ds = (struct vmcb_seg){
                    .selector = st->ds, .attrib = 0x93, .limit = 0xffff, .base = 0};
        } else if (st->prot32) {
                v->cs = flat_seg(st->cs, 0xc9b); /* 32-bit code, G, D, present, DPL 0 */
                v->ds = flat_seg(st->ds, 0xc93);
        } else {
                v->cs = flat_seg(st->cs, 0xa9b); /* 64-bit code, G, present, DPL 0 */
                v->ds = flat_seg(st->ds, 0xc93);
        }
        v->es = v->ds;
        v->ss = v->ds;
        v->fs = v->ds;
        v->gs = v->ds;
        v->gdtr = (struct vmcb_seg){.limit = st->gdt_limit, .base = st->gdt_base};
        v->idtr = (struct vmcb_seg){.limit = st->real_mode ? 0xffff : 0, .base = 0};
        v->ldtr = (struct vmcb_seg){.attrib = 0x82, .limit = 0xffff};
        v->tr = (struct vmcb_seg){.attrib = 0x8b, .limit = 0x67};
        v->cpl = 0;
        v->efer = st->efer | X86_EFER_SVME; /* VMRUN requires SVME; the guest never sees it */
        v->cr0 = st->cr0;
        v->cr3 = st->cr3;
        v->cr4 = st->cr4;
        v->dr6 = 0xffff0ff0;
        v->dr7 = 0x400;
        v->rflags = st->rflags;
        v->rip = st->rip;
        v->rsp = st->rsp;
        v->g_pat = X86_PAT_RESET;
}

void x86_debug_from_save(const struct vmcb_save *v, struct x86_debug_state *st)
{
        *st = (struct x86_debug_state){
            .rsp = v->rsp,
            .rip = v->rip,
            .rflags = v->rflags,
            .sel = {v->cs.selector, v->ss.selector, v->ds.selector, v->es.selector, v->fs.selector,
                    v->gs.selector},
            .cs_base = v->cs.base,
            .cr0 = v->cr0,
            .cr3 = v->cr3,
            .cr4 = v->cr4,
            .efer = v->efer & ~X86_EFER_SVME,
        };
}

size_t arch_snapshot_max(const struct vm *vm)
{
        /* per vCPU, and also the devices: COM1, RTC, latch, I/O APIC, 8259 pair, PIT (112
         * bytes), every LAPIC */
        return sizeof(struct x86_vcpu_snap) + x86_fpu_area_size() + 512 + 256 * vm->vcpu_count;
}

uint32_t arch_snapshot_devices(const struct vm *vm)
{
        return SNAP_DEV_UART | SNAP_DEV_RTC | (vm->pc_testdev ? SNAP_DEV_TESTDEV : 0) |
               (vm->arch.platform ? SNAP_DEV_PLATFORM | SNAP_DEV_PIC : 0) |
               (vm->arch.has_pit ? SNAP_DEV_PIT : 0);
}

int arch_snapshot_check(const struct vm *vm, char *why, size_t len)
{
        (void)vm, (void)why, (void)len;
        return 0;
}

__attribute__((cold)) void arch_snapshot_vcpu_save(struct vcpu *vcpu, struct snap_buf *b)
{
        struct vcpu_arch *a = &vcpu->arch;
        struct vmcb *vmcb = a->vmcb;
        struct x86_vcpu_snap s;

        memset(&s, 0, sizeof(s));
        s.has_state = vmcb != NULL;
        s.tsc_offset = a->tsc_offset; /* the VMCB's too; a vCPU not set up starts with it */
        if (!vmcb) {
                snap_put(b, &s, sizeof(s));
                return;
        }
        s.gprs = a->gprs;
        s.swregs = a->swregs;
        s.xcr0 = a->xcr0;
        s.misc_enable = a->misc_enable;
        s.nmi_iret_rip = a->nmi_iret_rip;
        s.flags = (uint32_t)a->start_pending << F_START_PENDING | (uint32_t)a->parked << F_PARKED |
                  (uint32_t)a->apic_off << F_APIC_OFF | (uint32_t)a->nmi_blocked << F_NMI_BLOCKED |
                  (uint32_t)a->nmi_iret_wait << F_NMI_IRET_WAIT |
                  (uint32_t)a->nmi_step << F_NMI_STEP | (uint32_t)a->nmi_step_tf << F_NMI_STEP_TF;
        s.v_tpr = a->v_tpr;
        s.fpu_size = x86_fpu_area_size();
        if (!x86_vendor_is_svm()) {
                vmx_snap_save(vcpu, &s);
        } else {
                s.save = vmcb->save;
                s.int_ctl = vmcb->control.int_ctl & SNAP_INT_CTL;
                s.int_state = vmcb->control.int_state & SVM_INT_SHADOW;
                s.event_inj = vmcb->control.event_inj;
                s.intercept1 = vmcb->control.intercept1 & SNAP_INTERCEPT1;
                s.intercept_exc = vmcb->control.intercept_exc & SNAP_INTERCEPT_EXC;
        }
        snap_put(b, &s, sizeof(s));
        snap_put(b, a->fpu, s.fpu_size);
}

/* The guest state checks Keel makes itself; VMRUN's own consistency checks (APM vol. 2
 * 15.5.1) catch the rest, and the VM then stops entry-failed. */
static int check_vcpu(struct snap_rd *r, unsigned id, const struct x86_vcpu_snap *s,
                      const uint8_t *fpu)
{
        const struct vmcb_save *v = &s->save;

        if (s->pad[0] || s->pad[1] ||
            (s->flags & ~(((2u << F_SHADOW_MOVSS) - 1) | SNAP_PDBG_MASK << F_PDBG)))
                return snap_fail(r, "vCPU %u: unknown flags", id);
        if ((v->efer & ~(X86_EFER_GUEST_BITS | X86_EFER_SVME)) || !(v->efer & X86_EFER_SVME))
                return snap_fail(r, "vCPU %u: EFER %#llx", id, (unsigned long long)v->efer);
        if (v->cpl > 3 || !x86_pat_valid(v->g_pat) || (v->dr6 >> 32) || (v->dr7 >> 32))
                return snap_fail(r, "vCPU %u: CPL, PAT, DR6 or DR7 out of range", id);
        if ((s->int_ctl & ~SNAP_INT_CTL) || (s->int_state & ~SVM_INT_SHADOW) ||
            (s->intercept1 & ~SNAP_INTERCEPT1) || (s->intercept_exc & ~SNAP_INTERCEPT_EXC) ||
            (s->event_inj & EVT_RESERVED) || ((s->event_inj >> 8 & 7) == 1) ||
            ((s->event_inj >> 8 & 7) == 7))
                return snap_fail(r, "vCPU %u: interrupt state or pending event out of range", id);
        if (!X86_TSC_AUX_VALID(s->swregs.tsc_aux))
                return snap_fail(r, "vCPU %u: TSC_AUX %#llx", id,
                                 (unsigned long long)s->swregs.tsc_aux);
        if (s->fpu_size != x86_fpu_area_size())
                return snap_fail(r, "vCPU %u: FPU area of %llu bytes, this CPU's is %zu", id,
                                 (unsigned long long)s->fpu_size, x86_fpu_area_size());
        if (!x86_fpu_area_valid(fpu, s->xcr0))
                return snap_fail(r, "vCPU %u: FPU state or XCR0 %#llx this CPU refuses", id,
                                 (unsigned long long)s->xcr0);
        return 0;
}

__attribute__((noinline)) void x86_snap_apply(struct vcpu *vcpu, const struct snap_rd *r,
                                              const struct x86_vcpu_snap *s, const uint8_t *fpu)
{
        struct vcpu_arch *a = &vcpu->arch;

        a->gprs = s->gprs;
        a->tsc_offset = s->tsc_offset - r->shift;
        memcpy(a->fpu, fpu, s->fpu_size);
        a->swregs = s->swregs;
        a->xcr0 = s->xcr0;
        a->misc_enable = s->misc_enable;
        a->nmi_iret_rip = s->nmi_iret_rip;
        a->start_pending = s->flags >> F_START_PENDING & 1;
        a->parked = s->flags >> F_PARKED & 1;
        a->apic_off = s->flags >> F_APIC_OFF & 1;
        a->nmi_blocked = s->flags >> F_NMI_BLOCKED & 1;
        a->nmi_iret_wait = s->flags >> F_NMI_IRET_WAIT & 1;
        a->nmi_step = s->flags >> F_NMI_STEP & 1;
        a->nmi_step_tf = s->flags >> F_NMI_STEP_TF & 1;
        a->v_tpr = s->v_tpr;
        a->leave = 0;
        x86_code_cache_reset(&a->code);
}

__attribute__((cold)) int arch_snapshot_vcpu_load(struct vcpu *vcpu, struct snap_rd *r)
{
        struct vcpu_arch *a = &vcpu->arch;
        struct vmcb *vmcb = a->vmcb;
        struct x86_vcpu_snap s;
        const uint8_t *fpu;
        int err;

        if (!snap_get(r, &s, sizeof(s)))
                return -KEEL_EINVAL;
        if (s.has_state > 1)
                return snap_fail(r, "vCPU %u: state flag %u", vcpu->id, s.has_state);
        if (!s.has_state) {
                /* Never set up: whatever the VM has for it now stays, but for the TSC offset
                 * a vCPU not set up yet starts with (the others' at the snapshot, moved). */
                if (r->apply && !vmcb)
                        a->tsc_offset = s.tsc_offset - r->shift;
                return 0;
        }
        if (!vmcb)
                return snap_fail(r,
                                 "vCPU %u has not been set up in vm %s since it was built "
                                 "(restore into a VM whose vCPUs have all run)",
                                 vcpu->id, vcpu->vm->name);
        if (s.fpu_size > r->len - r->pos)
                return snap_fail(r, "vCPU %u: its FPU area runs past its section", vcpu->id);
        fpu = r->p + r->pos;
        r->pos += s.fpu_size;
        err = check_vcpu(r, vcpu->id, &s, fpu);
        if (!err && !x86_vendor_is_svm())
                return vmx_snap_load(vcpu, r, &s, fpu);
        if (!err && ((s.event_inj & 0xf000) || (s.event_inj >> 8 & 7) > 4 || s.flags >> F_PDBG))
                err = snap_fail(r,
                                "vCPU %u: a software event or debug exception pending as Intel "
                                "VT-x holds it, which AMD SVM cannot take",
                                vcpu->id);
        if (err || !r->apply)
                return err;
        vmcb->save = s.save;
        /* The guest's TSC goes on from its value at the snapshot (the LAPIC's timer counts
         * in it too), however far Keel's own counter moved since, even across a restart. */
        vmcb->control.tsc_offset = s.tsc_offset - r->shift;
        vmcb->control.int_ctl = (vmcb->control.int_ctl & ~SNAP_INT_CTL) | s.int_ctl;
        vmcb->control.int_state = s.int_state;
        vmcb->control.event_inj = s.event_inj;
        vmcb->control.intercept1 = (vmcb->control.intercept1 & ~SNAP_INTERCEPT1) | s.intercept1;
        vmcb->control.intercept_exc =
            (vmcb->control.intercept_exc & ~SNAP_INTERCEPT_EXC) | s.intercept_exc;
        vmcb->control.tlb_control = 1; /* the guest's CR3 and mappings changed under it */
        vmcb->control.clean = 0;
        x86_snap_apply(vcpu, r, &s, fpu);
        return 0;
}

__attribute__((cold)) void arch_snapshot_vm_save(struct vm *vm, struct snap_buf *b)
{
        vuart_save(&vm->arch.uart, b);
        rtc_cmos_save(&vm->arch.rtc, b);
        if (vm->pc_testdev)
                snap_put(b, &vm->arch.testdev_latch, sizeof(vm->arch.testdev_latch));
        if (!vm->arch.platform)
                return;
        vioapic_save(&vm->arch.ioapic, b);
        vpic_save(&vm->arch.pic, b);
        if (vm->arch.has_pit)
                vpit_save(&vm->arch.pit, b);
        for (unsigned c = 0; c < vm->vcpu_count; c++)
                vlapic_save(&vm->vcpus[c].arch.lapic, b);
}

__attribute__((cold)) int arch_snapshot_vm_load(struct vm *vm, struct snap_rd *r)
{
        uint32_t latch;
        int err = vuart_load(&vm->arch.uart, r);

        if (!err)
                err = rtc_cmos_load(&vm->arch.rtc, r);
        if (!err && vm->pc_testdev) {
                if (!snap_get(r, &latch, sizeof(latch)))
                        return -KEEL_EINVAL;
                if (r->apply)
                        vm->arch.testdev_latch = latch;
        }
        /* The interrupt controllers last: the devices' loads may drive their lines. */
        if (!err && vm->arch.platform)
                err = vioapic_load(&vm->arch.ioapic, r);
        if (!err && vm->arch.platform)
                err = vpic_load(&vm->arch.pic, r);
        if (!err && vm->arch.has_pit)
                err = vpit_load(&vm->arch.pit, r);
        for (unsigned c = 0; !err && vm->arch.platform && c < vm->vcpu_count; c++)
                err = vlapic_load(&vm->vcpus[c].arch.lapic, r);
        return err;
}
