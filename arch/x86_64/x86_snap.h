/*
 * A vCPU in an x86 snapshot (arch/x86_64/snapshot.c, docs/snapshot.md), the same form on both
 * backends: AMD SVM's VMCB guest save area and event fields are the format, and the VT-x
 * backend converts its VMCS to and from them (vmx_snap_save, vmx_snap_load), so a snapshot
 * taken on one vendor loads on the other where the state allows.
 */
#ifndef ARCH_X86_SNAP_H
#define ARCH_X86_SNAP_H

#include <stdint.h>

#include <arch/fpu.h>
#include <arch/swregs.h>
#include <arch/x86_vcpu.h>
#include <vmm/snapshot.h>

#include "svm/svm.h"

enum {
        F_START_PENDING,
        F_PARKED,
        F_APIC_OFF,
        F_NMI_BLOCKED,
        F_NMI_IRET_WAIT,
        F_NMI_STEP,
        F_NMI_STEP_TF,
        F_SHADOW_MOVSS, /* VT-x: the interrupt shadow (int_state) is MOV SS's, not STI's */
        F_PDBG = 16     /* VT-x: its pending debug exceptions (B0-B3, BE, BS) from here */
};
#define SNAP_PDBG_MASK 0x500fu /* pending debug exceptions kept: B0-B3, BE (12), BS (14) */

/* Intercepts that follow the guest's state (an open interrupt or NMI window, a step past an
 * IRET): the rest is Keel's and stays as the target VM has it. */
#define SNAP_INTERCEPT1    (SVM_INTERCEPT_VINTR | SVM_INTERCEPT_IRET)
#define SNAP_INTERCEPT_EXC (1u << 1) /* #DB: the NMI step */
/* int_ctl: V_TPR, V_IRQ, V_INTR_PRIO, V_IGN_TPR, V_INTR_VECTOR. */
#define SNAP_INT_CTL (0xfull | SVM_INT_V_IRQ | 0xf0000ull | SVM_INT_V_IGN_TPR | 0xff00000000ull)
/* event_inj bits 16-30 (always 0); bits 12-15 hold VT-x's instruction length of a software
 * interrupt or exception (types 4-6), which SVM has not. */
#define EVT_RESERVED 0x7fff0000ull

struct x86_vcpu_snap {
        struct x86_gprs gprs;
        struct vmcb_save save;
        uint64_t tsc_offset, int_ctl, int_state, event_inj;
        uint32_t intercept1, intercept_exc;
        struct x86_swregs swregs;
        uint64_t xcr0, misc_enable, nmi_iret_rip;
        uint32_t flags;
        uint8_t v_tpr, has_state, pad[2];
        uint64_t fpu_size; /* then the FPU save area */
};

/* VT-x (vmx.c): the vCPU's VMCS into s (its registers Keel keeps itself already there), and
 * back: checks s for this CPU's VT-x, then (r->apply) loads it. */
void vmx_snap_save(struct vcpu *vcpu, struct x86_vcpu_snap *s);
int vmx_snap_load(struct vcpu *vcpu, struct snap_rd *r, const struct x86_vcpu_snap *s,
                  const uint8_t *fpu);
/* What both backends load alike (snapshot.c): the registers Keel keeps, the FPU area, the
 * TSC offset (moved by r->shift), the flags. */
void x86_snap_apply(struct vcpu *vcpu, const struct snap_rd *r, const struct x86_vcpu_snap *s,
                    const uint8_t *fpu);

/* A vCPU's guest state at its entry (docs/guest-entry.md) in that form: both backends'
 * vcpu_init start from it. */
void x86_entry_save(const struct x86_entry_state *st, struct vmcb_save *v);
/* gdb's registers (x86_debug_state) from that form; EFER without SVM's SVME. */
void x86_debug_from_save(const struct vmcb_save *v, struct x86_debug_state *st);

#endif
