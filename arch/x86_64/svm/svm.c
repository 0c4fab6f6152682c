/*
 * AMD SVM backend of the x86 vCPU interface: detection, enabling, one VMCB per vCPU, one
 * ASID per VM, nested paging, and the exit handler. What the guest sees (CPUID, ports,
 * hypercalls) is emulated in arch/x86_64/vcpu.c; this file only knows the VMCB.
 *
 * Without NRIP-save (QEMU TCG has none) the next RIP comes from decoding the intercepted
 * instruction (x86_insn_length), never from a guessed length. IOIO exits always carry the
 * next RIP in EXITINFO2.
 */
#include <stddef.h>

#include <arch/cpu.h>
#include <arch/host_timer.h>
#include <arch/mmio_emul.h>
#include <arch/platform.h>
#include <arch/pt_x86.h>
#include <arch/swregs.h>
#include <arch/x86.h>
#include <arch/x86_checks.h>
#include <arch/x86_vcpu.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <keel/smp.h>
#include <keel/time.h>
#include <vmm/gdb.h>

#include "svm.h"
#include "../x86_snap.h"

_Static_assert(offsetof(struct x86_gprs, rbx) == 8, "svm_run_guest gprs layout");
_Static_assert(offsetof(struct x86_gprs, rsi) == 32, "svm_run_guest gprs layout");
_Static_assert(offsetof(struct x86_gprs, r8) == 56, "svm_run_guest gprs layout");
_Static_assert(offsetof(struct x86_gprs, r15) == 112, "svm_run_guest gprs layout");

/* Detection, enabling and the VMCB of a new vCPU: svm_setup.c (built for size). */

static void inject_exception(struct vmcb *vmcb, unsigned vector, bool has_error, uint32_t error)
{
        vmcb->control.event_inj = vector | SVM_EVT_TYPE_EXC | SVM_EVT_VALID |
                                  (has_error ? SVM_EVT_ERR_VALID | ((uint64_t)error << 32) : 0);
}

static void svm_inject_exc(struct vcpu *vcpu, unsigned vector, bool has_error, uint32_t error)
{
        inject_exception(vcpu->arch.vmcb, vector, has_error, error);
}

static void svm_seg(struct vcpu *vcpu, unsigned which, struct x86_sysseg *s, bool write,
                    uint64_t *gdt_base, uint32_t *gdt_limit)
{
        struct vmcb *vmcb = vcpu->arch.vmcb;
        struct vmcb_seg *r = which == X86_SEG_TR     ? &vmcb->save.tr
                             : which == X86_SEG_LDTR ? &vmcb->save.ldtr
                                                     : &vmcb->save.es + which;

        *gdt_base = vmcb->save.gdtr.base;
        *gdt_limit = vmcb->save.gdtr.limit;
        if (write)
                *r = (struct vmcb_seg){s->sel, s->attr, s->limit, s->base};
        else
                *s = (struct x86_sysseg){r->selector, r->attrib, r->limit, r->base};
}

static void svm_inject_pf(struct vcpu *vcpu, uint64_t cr2, uint32_t error)
{
        struct vmcb *vmcb = vcpu->arch.vmcb;

        vmcb->save.cr2 = cr2;
        inject_exception(vmcb, X86_VEC_PF, true, error);
}

/* What the vendor-neutral instruction code needs to know about the guest's CPU state. */
static struct x86_guest_ctx guest_ctx(const struct vmcb *vmcb)
{
        return (struct x86_guest_ctx){
            .cr0 = vmcb->save.cr0,
            .cr3 = vmcb->save.cr3,
            .cr4 = vmcb->save.cr4,
            .efer = vmcb->save.efer,
            .cs_base = vmcb->save.cs.base,
            .cs_l = vmcb->save.cs.attrib & SVM_ATTR_L,
            .cs_db = vmcb->save.cs.attrib & SVM_ATTR_DB,
            .cpl = vmcb->save.cpl,
            .rip = vmcb->save.rip,
        };
}

/*
 * A triple fault (SHUTDOWN intercept): what it takes to understand it afterwards (APM: the
 * VMCB's guest state is as at the shutdown, not architecturally defined), then the stop.
 * Out of line: it must not weigh on the exit path's frame.
 */
static __attribute__((noinline, cold)) void report_shutdown(struct vcpu *vcpu, struct vmcb *vmcb)
{
        struct x86_guest_ctx ctx = guest_ctx(vmcb);
        char rip_walk[64], cr2_walk[64];

        LOG_WARN(
            "vm %s: vCPU %u shut down: rsp %#llx cs %#x cr0 %#llx cr2 %#llx "
            "cr3 %#llx cr4 %#llx efer %#llx idtr %#llx/%#x gdtr %#llx/%#x "
            "rflags %#llx exit_int_info %#llx event_inj %#llx",
            vcpu->vm->name, vcpu->id, (unsigned long long)vmcb->save.rsp, vmcb->save.cs.selector,
            (unsigned long long)vmcb->save.cr0, (unsigned long long)vmcb->save.cr2,
            (unsigned long long)vmcb->save.cr3, (unsigned long long)vmcb->save.cr4,
            (unsigned long long)vmcb->save.efer, (unsigned long long)vmcb->save.idtr.base,
            vmcb->save.idtr.limit, (unsigned long long)vmcb->save.gdtr.base, vmcb->save.gdtr.limit,
            (unsigned long long)vmcb->save.rflags, (unsigned long long)vmcb->control.exit_int_info,
            (unsigned long long)vmcb->control.event_inj);
        x86_describe_walk(vcpu, &ctx, ctx.rip, true, rip_walk, sizeof(rip_walk));
        x86_describe_walk(vcpu, &ctx, vmcb->save.cr2, false, cr2_walk, sizeof(cr2_walk));
        LOG_WARN("vm %s: vCPU %u: its page tables as they are now: rip %#llx -> %s, cr2 "
                 "%#llx -> %s",
                 vcpu->vm->name, vcpu->id, (unsigned long long)ctx.rip, rip_walk,
                 (unsigned long long)vmcb->save.cr2, cr2_walk);
        vm_stop(vcpu->vm, VM_STOP_TRIPLE_FAULT, "shutdown (triple fault) at rip %#llx",
                (unsigned long long)vmcb->save.rip);
}

/* skip_insn without NRIP-save or fast path: fetch and decode the instruction fully. */
static __attribute__((noinline)) bool skip_insn_slow(struct vcpu *vcpu, struct vmcb *vmcb,
                                                     enum x86_insn_id id)
{
        struct x86_guest_ctx ctx = guest_ctx(vmcb);
        unsigned len = x86_insn_length(vcpu, &ctx, id);

        if (!len)
                return false;
        vmcb->save.rip += len;
        return true;
}

/*
 * Move RIP past the intercepted instruction `id`. False if the VM was stopped. The instruction
 * has executed, so an interrupt shadow it was in (after STI or MOV SS) ends with it: `sti;
 * hlt; cli` must take the interrupt that ends the HLT before the CLI.
 */
static inline __attribute__((always_inline)) bool skip_insn(struct vcpu *vcpu, struct vmcb *vmcb,
                                                            enum x86_insn_id id)
{
        vmcb->control.int_state &= ~(uint64_t)SVM_INT_SHADOW;
        if (svm_found.nrips) {
                vmcb->save.rip = vmcb->control.next_rip;
                return true;
        }
        if ((vmcb->save.efer & X86_EFER_LMA) && (vmcb->save.cs.attrib & SVM_ATTR_L)) {
                struct x86_paging pg = {vmcb->save.cr0, vmcb->save.cr3, vmcb->save.cr4,
                                        vmcb->save.efer};
                unsigned len = x86_plain_insn_length(&vcpu->vm->mem, &pg, &vcpu->arch.code,
                                                     vmcb->save.rip, id);

                if (len) {
                        vmcb->save.rip += len;
                        return true;
                }
        }
        return skip_insn_slow(vcpu, vmcb, id);
}

/* The VMCB field that holds address MSR `msr` (FS/GS base, KERNEL_GS_BASE, LSTAR, CSTAR). */
static uint64_t *addr_msr_field(struct vmcb *vmcb, uint32_t msr)
{
        switch (msr) {
        case MSR_FS_BASE:
                return &vmcb->save.fs.base;
        case MSR_GS_BASE:
                return &vmcb->save.gs.base;
        case MSR_KERNEL_GS_BASE:
                return &vmcb->save.kernel_gs_base;
        case MSR_LSTAR:
                return &vmcb->save.lstar;
        default:
                CHECK(msr == MSR_CSTAR);
                return &vmcb->save.cstar;
        }
}

static void handle_msr(struct vcpu *vcpu, struct vmcb *vmcb)
{
        struct x86_gprs *g = &vcpu->arch.gprs;
        uint32_t msr = (uint32_t)g->rcx;
        bool write = vmcb->control.exit_info1 & 1;
        uint64_t val = (g->rdx << 32) | (uint32_t)g->rax;
        int err = 0;

        switch (msr) {
        case MSR_EFER:
                if (!write) {
                        val = vmcb->save.efer & ~X86_EFER_SVME;
                        break;
                }
                err = x86_efer_write(vmcb->save.efer & ~X86_EFER_SVME, val, vmcb->save.cr0, &val);
                if (!err) /* keep SVME, which VMRUN requires */
                        vmcb->save.efer = val | X86_EFER_SVME;
                break;
        case MSR_PAT:
                if (!write)
                        val = vmcb->save.g_pat;
                else if (!x86_pat_valid(val))
                        err = -KEEL_EPERM; /* a reserved type would fail VMRUN */
                else
                        vmcb->save.g_pat = val;
                break;
        case MSR_TSC:
                if (!write)
                        val = x86_rdtsc() + vmcb->control.tsc_offset;
                else
                        vmcb->control.tsc_offset = vcpu->arch.tsc_offset = val - x86_rdtsc();
                break;
        case MSR_FS_BASE:
        case MSR_GS_BASE:
        case MSR_KERNEL_GS_BASE:
        case MSR_LSTAR:
        case MSR_CSTAR: {
                /* Only writes exit: the CPU's canonical check, then the VMCB (VMLOAD's). */
                uint64_t *field = addr_msr_field(vmcb, msr);

                if (!write)
                        val = *field;
                else if (!x86_canonical(val))
                        err = -KEEL_EPERM;
                else
                        *field = val;
                break;
        }
        default:
                err = write ? x86_msr_write(vcpu, msr, val) : x86_msr_read(vcpu, msr, &val);
                break;
        }
        if (err) {
                inject_exception(vmcb, X86_VEC_GP, true, 0);
                return;
        }
        if (!skip_insn(vcpu, vmcb, write ? X86_INSN_WRMSR : X86_INSN_RDMSR))
                return;
        if (!write) {
                g->rax = (uint32_t)val;
                g->rdx = val >> 32;
        }
}

/*
 * CR8 on SVM: with V_INTR_MASKING the guest's MOV to/from CR8 use the VMCB's V_TPR without an
 * exit, while the LAPIC model holds the architectural TPR (PPR, injection, MMIO reads). CR8 is
 * TPR[7:4] (SDM 10.8.6.1): a V_TPR that changed since Keel last wrote it is a CR8 write (TPR =
 * CR8 << 4), taken before anything reads the LAPIC (an MMIO access, a HLT, an entry); before
 * each entry V_TPR gets the LAPIC's TPR, which an MMIO write or a reset may have changed.
 * Linux-platform VMs only: plain VMs have no LAPIC.
 */
static void tpr_from_guest(struct vcpu *vcpu, const struct vmcb *vmcb)
{
        uint8_t v = vmcb->control.int_ctl & 0xf;
        struct spin_held h;

        if (v == vcpu->arch.v_tpr || !vcpu->vm->arch.platform)
                return;
        h = spin_lock(&vcpu->vm->dev_lock);
        vlapic_set_tpr(&vcpu->arch.lapic, (uint32_t)v << 4);
        spin_unlock(h);
        vcpu->arch.v_tpr = v;
}

static void tpr_to_guest(struct vcpu *vcpu, struct vmcb *vmcb)
{
        uint8_t v = (uint8_t)(vlapic_tpr(&vcpu->arch.lapic) >> 4);

        vmcb->control.int_ctl = (vmcb->control.int_ctl & ~0xfull) | v;
        vcpu->arch.v_tpr = v;
}

/* guest_ctx plus the segment bases, for an instruction with memory operands Keel emulates. */
static struct x86_guest_ctx guest_ctx_segs(const struct vmcb *vmcb)
{
        struct x86_guest_ctx ctx = guest_ctx(vmcb);

        ctx.seg_base[X86_SEG_ES] = vmcb->save.es.base;
        ctx.seg_base[X86_SEG_CS] = vmcb->save.cs.base;
        ctx.seg_base[X86_SEG_SS] = vmcb->save.ss.base;
        ctx.seg_base[X86_SEG_DS] = vmcb->save.ds.base;
        ctx.seg_base[X86_SEG_FS] = vmcb->save.fs.base;
        ctx.seg_base[X86_SEG_GS] = vmcb->save.gs.base;
        ctx.cr0_seen = vmcb->save.cr0;
        return ctx;
}

/* INS/OUTS: emulated from the decoded instruction (QEMU's TCG has no decode assists, which
 * would give the segment); an interrupt shadow ends once an iteration has run. */
static __attribute__((noinline)) void string_io(struct vcpu *vcpu, struct vmcb *vmcb, uint16_t port,
                                                unsigned size, bool in)
{
        struct x86_guest_ctx ctx = guest_ctx_segs(vmcb);

        tpr_from_guest(vcpu, vmcb); /* its memory operand may be the LAPIC page */
        if (x86_emulate_string_io_exit(vcpu, &ctx, port, size, in, &vmcb->save.rip,
                                       vmcb->save.rflags))
                vmcb->control.int_state &= ~(uint64_t)SVM_INT_SHADOW;
}

static void handle_ioio(struct vcpu *vcpu, struct vmcb *vmcb)
{
        uint64_t info = vmcb->control.exit_info1;
        uint16_t port = (uint16_t)(info >> 16);
        unsigned size = (info >> SVM_IOIO_SZ_SHIFT) & 7; /* one-hot: 1, 2 or 4 bytes */

        size = size == 4 ? 4 : size == 2 ? 2 : 1;
        if (info & SVM_IOIO_STR) {
                string_io(vcpu, vmcb, port, size, info & SVM_IOIO_IN);
                return;
        }
        x86_emulate_io(vcpu, port, size, info & SVM_IOIO_IN);
        vmcb->save.rip = vmcb->control.exit_info2; /* IOIO always reports the next RIP */
        /* Completed: an interrupt shadow it ran in ends (`sti; out`), as in skip_insn. */
        vmcb->control.int_state &= ~(uint64_t)SVM_INT_SHADOW;
}

static void handle_npf(struct vcpu *vcpu, struct vmcb *vmcb)
{
        uint64_t err = vmcb->control.exit_info1, addr = vmcb->control.exit_info2;
        const char *what = (err & (1u << 4)) ? "instruction fetch" : (err & 2) ? "write" : "read";

        if (!gmem_contains(&vcpu->vm->mem, gpa(addr), 1)) {
                struct x86_guest_ctx ctx = guest_ctx_segs(vmcb);
                bool in_walk = err & (1ull << 33); /* a guest page-table entry, not the data */

                tpr_from_guest(vcpu, vmcb);
                if (!(err & (1u << 4)) &&
                    x86_emulate_mmio_exit(vcpu, &ctx, addr, in_walk, &vmcb->save.rsp,
                                          &vmcb->save.rip, &vmcb->save.rflags)) {
                        /* Completed: an interrupt shadow it ran in ends (as in skip_insn);
                         * a MOV SS starts one. */
                        if (vmcb->save.rip != ctx.rip)
                                vmcb->control.int_state &= ~(uint64_t)SVM_INT_SHADOW;
                        if (vcpu->arch.ss_shadow)
                                vmcb->control.int_state |= SVM_INT_SHADOW;
                        vcpu->arch.ss_shadow = false;
                        return;
                }
                x86_stop_outside_ram(vcpu, what, in_walk, addr, vmcb->save.rip);
                return;
        }
        vm_stop(vcpu->vm, VM_STOP_UNHANDLED,
                "nested page fault inside RAM at %#llx (error %#llx, rip %#llx)",
                (unsigned long long)addr, (unsigned long long)err,
                (unsigned long long)vmcb->save.rip);
}

/*
 * Keel completed an instruction for a guest that single-steps (RFLAGS.TF): the trap-class
 * #DB the CPU raises after it, DR6.BS set (SDM vol. 3 17.3.1.4), as if the CPU had run it.
 */
static __attribute__((noinline, cold)) void single_step_trap(struct vcpu *vcpu, struct vmcb *vmcb)
{
        if (vcpu->debug_step) { /* gdb's step: it ends here, the guest sees no #DB */
                if (vcpu->arch.gdb_tf)
                        vmcb->save.rflags &= ~X86_RFLAGS_TF;
                vcpu->arch.gdb_tf = false;
                vm_debug_stepped(vcpu);
                return;
        }
        vmcb->save.dr6 |= X86_DR6_BS;
        vmcb->control.event_inj = X86_VEC_DB | SVM_EVT_TYPE_EXC | SVM_EVT_VALID;
}

/*
 * Under gdb: INT3 (a #BP intercept, RIP at the INT3) or INT n (the INTn intercept). One of
 * gdb's breakpoints stops the VM; the guest's own INT3 / INT n is delivered as the CPU would
 * (past the instruction, so the handler returns after it).
 */
static __attribute__((noinline, cold)) void svm_debug_int(struct vcpu *vcpu, struct vmcb *vmcb)
{
        struct x86_paging pg = {vmcb->save.cr0, vmcb->save.cr3, vmcb->save.cr4, vmcb->save.efer};
        uint64_t pc = vmcb->save.cs.base + vmcb->save.rip;
        const uint8_t *op = x86_code_peek(&vcpu->vm->mem, &pg, pc, 1, &vcpu->arch.code);
        const uint8_t *vec = NULL;

        if (op && *op == 0xcd)
                vec = x86_code_peek(&vcpu->vm->mem, &pg, pc + 1, 1, &vcpu->arch.code);
        if (op && *op == 0xcc) {
                if (vm_debug_break(vcpu, pc))
                        return;
                vmcb->save.rip++;
                inject_exception(vmcb, X86_VEC_BP, false, 0);
        } else if (vec) {
                vmcb->save.rip += 2;
                vmcb->control.event_inj = *vec | SVM_EVT_TYPE_SOFT | SVM_EVT_VALID;
        } else {
                vm_stop(vcpu->vm, VM_STOP_BAD_INSN,
                        "software interrupt at rip %#llx that is neither INT3 nor INT n",
                        (unsigned long long)vmcb->save.rip);
        }
}

/*
 * gdb's hardware breakpoints (vmm/gdb.h) live in DR0-DR3 and DR7 while gdb has any: the
 * guest's own values are kept in gdb_dr and its MOV to or from DR0-DR3 and DR7 is intercepted
 * and served from there (so gdb's stay armed and the guest reads what it wrote). The guest's
 * own breakpoints do not fire meanwhile. Without decode assists (QEMU's TCG has none) the
 * instruction is decoded here: legacy prefixes, REX, 0F 21 / 0F 23, ModRM.
 */
static __attribute__((noinline, cold)) void svm_guest_mov_dr(struct vcpu *vcpu, struct vmcb *vmcb)
{
        struct x86_paging pg = {vmcb->save.cr0, vmcb->save.cr3, vmcb->save.cr4, vmcb->save.efer};
        unsigned code = (unsigned)vmcb->control.exit_code, dr = code & 0xf;
        bool write = code >= SVM_EXIT_WRITE_DR0,
             wide = (vmcb->save.efer & X86_EFER_LMA) && (vmcb->save.cs.attrib & SVM_ATTR_L);
        uint8_t insn[15];
        size_t got = 0, i = 0;
        unsigned rex = 0;
        uint64_t *reg;

        /* got: the bytes fetched, 0 if none could be (it returns that count, not 0, on
         * success: a test of its result for non-zero refused every MOV DR until 2026-12-07). */
        (void)x86_fetch_insn(&vcpu->vm->mem, &pg, vmcb->save.cs.base + vmcb->save.rip, insn, &got);
        /* Legacy prefixes: 26 2e 36 3e, 64-67, f2 f3. */
        while (i < got &&
               ((insn[i] & 0xe7) == 0x26 || (insn[i] & 0xfc) == 0x64 || (insn[i] & 0xfe) == 0xf2))
                i++;
        if (wide && i < got && (insn[i] & 0xf0) == 0x40)
                rex = insn[i++];
        if (i + 3 > got || insn[i] != 0x0f || insn[i + 1] != (write ? 0x23 : 0x21)) {
                vm_stop(vcpu->vm, VM_STOP_BAD_INSN, "undecodable MOV DR at rip %#llx",
                        (unsigned long long)vmcb->save.rip);
                return;
        }
        if (rex & 4) { /* REX.R: DR8-DR15 do not exist */
                inject_exception(vmcb, X86_VEC_UD, false, 0);
                return;
        }
        /* ModRM.rm (+ REX.B) to the register; RSP is the VMCB's. */
        reg = x86_gpr(&vcpu->arch.gprs, &vmcb->save.rsp, (insn[i + 2] & 7) | (rex & 1) << 3);
        if (!x86_gdb_guest_dr(vcpu, dr, reg, write, wide)) {
                inject_exception(vmcb, X86_VEC_GP, true, 0);
                return;
        }
        vmcb->save.rip += i + 3;
}

#define SVM_DR_GDB (0x8fu | 0x8fu << 16) /* DR0-DR3 and DR7, reads and writes */

static void write_dr7(uint64_t v)
{
        __asm__ volatile("mov %0, %%dr7" ::"r"(v) : "memory");
}

/*
 * Start of a run while a session is on (or just ended): gdb's hardware breakpoints into DR0-3
 * (the vCPU's switched copy, arch/swregs.h) and the VMCB's DR7, or the guest's own values
 * back once gdb has none. QEMU's TCG (7.2) does not arm breakpoints from the VMCB's DR7 at
 * VMRUN, only when a MOV to a debug register runs: Keel writes its own DR7 with the same
 * value, for the run (svm_vcpu_run clears it at the run's end); on a CPU that restores the
 * host's DR7 at #VMEXIT this arms gdb's addresses in Keel as well during the run.
 */
static __attribute__((noinline, cold)) void svm_gdb_hw_load(struct vcpu *vcpu, struct vmcb *vmcb)
{
        int on = x86_gdb_hw_switch(vcpu, &vmcb->save.dr7);

        if (!on)
                return;
        if (on > 0)
                vmcb->control.intercept_dr |= SVM_DR_GDB;
        else
                vmcb->control.intercept_dr &= ~SVM_DR_GDB;
        write_dr7(on > 0 ? vmcb->save.dr7 : 0x400);
}

/*
 * Instructions CPUID hides, intercepted so that they never reach the physical CPU: RDPMC
 * gets #GP (no PMU), MONITOR/MWAIT(X) and RDPRU #UD. Out of the exit switch: its cases widen
 * the switch's range, which costs the CPUID and VMMCALL paths (bench: VMMCALL 265 -> 267).
 */
static __attribute__((noinline, cold)) bool hidden_insn(struct vcpu *vcpu, struct vmcb *vmcb)
{
        bool rf;

        switch (vmcb->control.exit_code) {
        case SVM_EXIT_EXCP_BASE + X86_VEC_DB: /* gdb's step, else the NMI code's (nmi_exit) */
                if (vcpu->arch.gdb_hw && x86_gdb_db_hit(vcpu, &vmcb->save.dr6, &rf)) {
                        /* One of gdb's hardware breakpoints: an instruction breakpoint is a
                         * fault (RIP at it), so the guest resumes with RF set to run it. */
                        if (rf)
                                vmcb->save.rflags |= X86_RFLAGS_RF;
                        if (vcpu->arch.gdb_tf)
                                vmcb->save.rflags &= ~X86_RFLAGS_TF;
                        vcpu->arch.gdb_tf = false;
                        vmcb->save.dr6 &= ~X86_DR6_BS;
                        return true;
                }
                if (!vcpu->debug_step || vcpu->arch.nmi_step)
                        return false;
                if (vcpu->arch.gdb_tf)
                        vmcb->save.rflags &= ~X86_RFLAGS_TF;
                vcpu->arch.gdb_tf = false;
                vmcb->save.dr6 &= ~X86_DR6_BS;
                vm_debug_stepped(vcpu);
                return true;
        case SVM_EXIT_EXCP_BASE + X86_VEC_BP:
        case SVM_EXIT_SWINT: /* QEMU's TCG reports INT3 as an INTn intercept */
                svm_debug_int(vcpu, vmcb);
                return true;
        case SVM_EXIT_READ_DR0:
        case SVM_EXIT_READ_DR0 + 1:
        case SVM_EXIT_READ_DR0 + 2:
        case SVM_EXIT_READ_DR0 + 3:
        case SVM_EXIT_READ_DR0 + 7:
        case SVM_EXIT_WRITE_DR0:
        case SVM_EXIT_WRITE_DR0 + 1:
        case SVM_EXIT_WRITE_DR0 + 2:
        case SVM_EXIT_WRITE_DR0 + 3:
        case SVM_EXIT_WRITE_DR0 + 7:
                svm_guest_mov_dr(vcpu, vmcb);
                return true;
        case SVM_EXIT_RDPMC:
                inject_exception(vmcb, X86_VEC_GP, true, 0);
                return true;
        case SVM_EXIT_MONITOR:
        case SVM_EXIT_MWAIT:
        case SVM_EXIT_MWAIT_ARM:
        case SVM_EXIT_RDPRU:
                inject_exception(vmcb, X86_VEC_UD, false, 0);
                return true;
        default:
                return false;
        }
}

/*
 * NMIs (docs/x86-interrupts.md). SVM has no NMI blocking of its own for an injected NMI (the
 * vNMI feature aside, which QEMU's TCG lacks): Keel keeps it (vcpu->arch.nmi_blocked) from
 * the injection to the guest's next IRET, as the CPU does. The IRET intercept says an IRET is
 * about to run; once RIP has left it, it ran. With an NMI pending at that moment Keel sets
 * RFLAGS.TF and intercepts #DB, so that the single-step trap after the IRET (TF as it was
 * before the IRET decides) gives an exit right after it, where the NMI is delivered: a
 * nested NMI arrives after the outer handler's IRET, not inside it, not later.
 */
#define SVM_EXIT_DB (SVM_EXIT_EXCP_BASE + X86_VEC_DB)

/* The IRET that the intercept announced has run: NMIs are no longer blocked. */
static void nmi_unblocked(struct vcpu *vcpu, struct vmcb *vmcb)
{
        vcpu->arch.nmi_blocked = false;
        vcpu->arch.nmi_iret_wait = false;
        vmcb->control.intercept1 &= ~SVM_INTERCEPT_IRET;
}

/* The exits that only NMI handling enables (IRET, #DB), out of the hot switch. */
static __attribute__((noinline, cold)) bool nmi_exit(struct vcpu *vcpu, struct vmcb *vmcb)
{
        struct vcpu_arch *a = &vcpu->arch;

        switch (vmcb->control.exit_code) {
        case SVM_EXIT_IRET:
                vmcb->control.intercept1 &= ~SVM_INTERCEPT_IRET;
                a->nmi_iret_wait = true;
                a->nmi_iret_rip = vmcb->save.rip;
                return true;
        case SVM_EXIT_DB:
                vmcb->control.intercept_exc &= ~(1u << X86_VEC_DB);
                if (a->nmi_step) {
                        a->nmi_step = false;
                        if (vmcb->save.rip != a->nmi_iret_rip)
                                nmi_unblocked(vcpu, vmcb);
                        if (!a->nmi_step_tf)
                                return true; /* Keel's own trap: the guest never sees it */
                }
                /* The guest's own single-step trap: its #DB. */
                inject_exception(vmcb, X86_VEC_DB, false, 0);
                return true;
        default:
                return false;
        }
}

/* Generic reasons of the exit codes up to WBINVD: the classes svm_handle_exit counts. */
static const uint8_t svm_reasons[SVM_EXIT_WBINVD + 1] = {
    [SVM_EXIT_CPUID] = EXIT_CPUID, [SVM_EXIT_VMMCALL] = EXIT_HYPERCALL, [SVM_EXIT_IOIO] = EXIT_IO,
    [SVM_EXIT_MSR] = EXIT_MSR,     [SVM_EXIT_INTR] = EXIT_INTR,         [SVM_EXIT_NMI] = EXIT_INTR,
    [SVM_EXIT_SMI] = EXIT_INTR,    [SVM_EXIT_VINTR] = EXIT_IRQ_WINDOW,  [SVM_EXIT_HLT] = EXIT_HALT,
    [SVM_EXIT_INVD] = EXIT_CACHE,  [SVM_EXIT_WBINVD] = EXIT_CACHE, /* the rest: 0, EXIT_OTHER */
};

static inline enum exit_reason svm_exit_reason(uint64_t code)
{
        if (code < sizeof(svm_reasons))
                return (enum exit_reason)svm_reasons[code];
        return code == SVM_EXIT_NPF ? EXIT_MMIO : EXIT_OTHER;
}

/* Tracing is on: the exit's entry (its cost now includes these few instructions). */
static __attribute__((noinline, cold)) void svm_exit_traced(struct vcpu *vcpu, struct vmcb *vmcb,
                                                            uint64_t rip)
{
        uint32_t cost = x86_rdtsc_low() - vcpu->arch.exit_tsc;

        exit_trace_record(&vcpu->stats, svm_exit_reason(vmcb->control.exit_code),
                          x86_rdtsc() - cost, cost, rip, vmcb->control.exit_info1,
                          (uint32_t)vmcb->control.exit_code);
}

/*
 * Whether the guest is at a HLT that Keel may treat as such: not under gdb or single-step,
 * not at a 16-bit IP of 0xffff (which wraps; left to the CPU).
 */
static __attribute__((noinline, cold)) bool at_hlt(struct vcpu *vcpu, struct vmcb *vmcb)
{
        struct x86_paging pg = {vmcb->save.cr0, vmcb->save.cr3, vmcb->save.cr4, vmcb->save.efer};
        uint64_t rip = vmcb->save.rip;
        const uint8_t *op;

        if (vcpu->arch.gdb_armed || (vmcb->save.rflags & X86_RFLAGS_TF))
                return false;
        if (!(vmcb->save.cs.attrib & (SVM_ATTR_L | SVM_ATTR_DB)) && rip >= 0xffff)
                return false;
        op = x86_code_peek(&vcpu->vm->mem, &pg, vmcb->save.cs.base + rip, 1, &vcpu->arch.code);
        return op && *op == 0xf4;
}

/*
 * An interrupt is about to be injected, with RIP at a HLT (docs/x86-interrupts.md). QEMU 7.2's
 * SVM can be inside STI's shadow there without saying so in the VMCB: it opens the window
 * Keel asked for right after an STI, and a physical interrupt can make the vCPU exit
 * between the STI and the HLT. An interrupt injected there would run before the HLT, which
 * then waits for the next interrupt, for ever for a guest whose only source it was. So:
 * - after a VINTR exit, Keel runs the HLT itself (RIP past it), ended at once by the
 *   interrupt: what the CPU does when the window opens as the HLT begins (on a CPU that
 *   waits for the shadow, the HLT's own exit comes first);
 * - after a physical-interrupt exit, nothing is injected: the HLT exits (Keel intercepts it),
 *   and the interrupt goes in after it. RIP is not touched there: doing as after VINTR was
 *   tried, and SMP Linux guests then now and then jumped to a wild RIP (2026-12-07).
 * True if the injection is to wait for the HLT's exit.
 */
static __attribute__((noinline, cold)) bool hlt_before_irq(struct vcpu *vcpu, struct vmcb *vmcb)
{
        if (!at_hlt(vcpu, vmcb))
                return false;
        if (vmcb->control.exit_code == SVM_EXIT_INTR)
                return true;
        vmcb->save.rip++;
        vmcb->control.int_state &= ~(uint64_t)SVM_INT_SHADOW;
        return false;
}

/*
 * Statistics of the exit (vmm/exitstats.h), at the end of its handling: ticks[reason] += the
 * TSC's low half now - its low half just after the exit (vcpu->arch.exit_tsc; a handling of
 * 2^32 ticks or more would wrap: Keel never waits inside an exit). This is on every exit's
 * path, so it is written out (docs/benchmarks.md): the reason from a table, no second switch,
 * nothing kept in registers across the handler and nothing live into the trace's call. In C
 * the compiler kept the reason in a stack slot: 16 instructions per exit, this is 11.
 */
static inline __attribute__((always_inline)) void svm_exit_done(struct vcpu *vcpu,
                                                                struct vmcb *vmcb, uint64_t rip)
{
        uint64_t r = vmcb->control.exit_code; /* then its reason */

        __asm__ volatile(
            "cmp %[n], %[r]\n\t"
            "jae 3f\n\t"
            "movzbl (%[table], %[r]), %k[r]\n"
            "2:\n\t"
            "rdtsc\n\t"
            "sub %[at], %%eax\n\t"
            "add %%rax, %c[ticks](%[vcpu], %[r], 8)\n\t"
            ".pushsection .text.unlikely\n"
            "3:\n\t"
            "cmp %[npf], %[r]\n\t"
            "mov %[other], %k[r]\n\t" /* flags kept */
            "jne 2b\n\t"
            "mov %[mmio], %k[r]\n\t"
            "jmp 2b\n\t"
            ".popsection"
            : [r] "+r"(r), "+m"(vcpu->stats.ticks)
            : [n] "i"(sizeof(svm_reasons)), [table] "r"(svm_reasons), [at] "m"(vcpu->arch.exit_tsc),
              [vcpu] "r"(vcpu), [ticks] "i"(offsetof(struct vcpu, stats.ticks)),
              [npf] "i"(SVM_EXIT_NPF), [other] "i"(EXIT_OTHER), [mmio] "i"(EXIT_MMIO)
            : "rax", "rdx", "cc");
        if (__builtin_expect(vcpu->stats.trace, 0))
                svm_exit_traced(vcpu, vmcb, rip);
}

static void svm_handle_exit(struct vcpu *vcpu, struct vmcb *vmcb)
{
        struct vmcb_control *c = &vmcb->control;
        uint64_t *count = vcpu->stats.count;
        uint64_t rip = vmcb->save.rip;

        /* An event whose delivery the exit interrupted is delivered again on the next entry. */
        c->event_inj = (c->exit_int_info & SVM_EVT_VALID) ? c->exit_int_info : 0;

        switch (c->exit_code) {
        case SVM_EXIT_CPUID:
                count[X86_EXIT_CPUID]++;
                if (skip_insn(vcpu, vmcb, X86_INSN_CPUID))
                        x86_emulate_cpuid(vcpu, vmcb->save.cr4);
                break;
        case SVM_EXIT_VMMCALL:
                count[X86_EXIT_HYPERCALL]++;
                if (vmcb->save.cpl != 0) {
                        x86_hypercall(vcpu, vmcb->save.cpl); /* stops the VM */
                        break;
                }
                if (skip_insn(vcpu, vmcb, X86_INSN_VMMCALL))
                        x86_hypercall(vcpu, 0);
                break;
        case SVM_EXIT_IOIO:
                count[X86_EXIT_IO]++;
                handle_ioio(vcpu, vmcb);
                break;
        case SVM_EXIT_MSR:
                count[X86_EXIT_MSR]++;
                handle_msr(vcpu, vmcb);
                break;
        case SVM_EXIT_NPF:
                count[X86_EXIT_MMIO]++;
                handle_npf(vcpu, vmcb);
                break;
        case SVM_EXIT_INTR:
        case SVM_EXIT_NMI:
        case SVM_EXIT_SMI:
                count[X86_EXIT_INTR]++;
                /* Physical events are Keel's: let them reach its IDT, then resume the guest. */
                x86_host_interrupt(vcpu);
                break;
        case SVM_EXIT_VINTR:
                count[X86_EXIT_IRQ_WINDOW]++;
                /* The guest can take interrupts again: svm_inject_irq does it on entry. */
                c->int_ctl &= ~(SVM_INT_V_IRQ | SVM_INT_V_IGN_TPR);
                c->intercept1 &= ~SVM_INTERCEPT_VINTR;
                break;
        case SVM_EXIT_HLT:
                count[X86_EXIT_HLT]++;
                /* An IRET of the NMI handler that ran before the HLT unblocked NMIs. */
                if (vcpu->arch.nmi_iret_wait && vmcb->save.rip != vcpu->arch.nmi_iret_rip)
                        nmi_unblocked(vcpu, vmcb);
                tpr_from_guest(vcpu, vmcb);
                if (skip_insn(vcpu, vmcb, X86_INSN_HLT) &&
                    x86_halt(vcpu, vmcb->save.rflags & X86_RFLAGS_IF))
                        break;
                if (vcpu->vm->state != VM_RUNNING)
                        break;
                x86_stop_halted(vcpu, vmcb->save.rip, vmcb->save.rflags & X86_RFLAGS_IF);
                break;
        case SVM_EXIT_INVD:
        case SVM_EXIT_WBINVD:
                /* No device of the VM does DMA: nothing to flush (docs/x86-state.md). */
                count[X86_EXIT_CACHE]++;
                skip_insn(vcpu, vmcb,
                          c->exit_code == SVM_EXIT_INVD ? X86_INSN_INVD : X86_INSN_WBINVD);
                break;
        case SVM_EXIT_SHUTDOWN:
                count[X86_EXIT_OTHER]++;
                report_shutdown(vcpu, vmcb);
                break;
        case SVM_EXIT_VMRUN:
        case SVM_EXIT_VMLOAD:
        case SVM_EXIT_VMSAVE:
        case SVM_EXIT_STGI:
        case SVM_EXIT_CLGI:
        case SVM_EXIT_SKINIT:
        case SVM_EXIT_INVLPGA:
                count[X86_EXIT_OTHER]++;
                inject_exception(vmcb, X86_VEC_UD, false, 0);
                break;
        case SVM_EXIT_INVALID:
        case SVM_EXIT_INVALID32: /* QEMU 7.2 stores VMEXIT_INVALID as 32 bits */
                count[X86_EXIT_OTHER]++;
                vm_stop(vcpu->vm, VM_STOP_ENTRY_FAILED,
                        "VMRUN refused the guest state (VMEXIT_INVALID) at rip %#llx: cr0 %#llx "
                        "cr4 %#llx efer %#llx",
                        (unsigned long long)vmcb->save.rip, (unsigned long long)vmcb->save.cr0,
                        (unsigned long long)vmcb->save.cr4, (unsigned long long)vmcb->save.efer);
                break;
        default:
                count[X86_EXIT_OTHER]++;
                if (hidden_insn(vcpu, vmcb) || nmi_exit(vcpu, vmcb))
                        break;
                vm_stop(vcpu->vm, VM_STOP_UNHANDLED,
                        "SVM exit %#llx (info1 %#llx, info2 %#llx) at rip %#llx",
                        (unsigned long long)c->exit_code, (unsigned long long)c->exit_info1,
                        (unsigned long long)c->exit_info2, (unsigned long long)vmcb->save.rip);
                break;
        }
        /* Moved past an instruction it emulated, with no fault of its own to deliver. */
        if (__builtin_expect((vmcb->save.rflags & X86_RFLAGS_TF) != 0, 0) &&
            vmcb->save.rip != rip && !(c->event_inj & SVM_EVT_VALID))
                single_step_trap(vcpu, vmcb);
        svm_exit_done(vcpu, vmcb, rip);
}

/*
 * One guest run, inline in the run loop so that Keel's callee-saved registers are saved once
 * per svm_vcpu_run rather than once per exit (the asm clobbers them all). Contract: called
 * with interrupts off. CLGI; VMSAVE Keel's state to host_pa; VMLOAD the guest; load the
 * guest GPRs (RAX and RSP live in the VMCB); STI, so that physical interrupts arriving in
 * the guest cause an INTR exit (V_INTR_MASKING) while GIF keeps them pending; VMRUN. On
 * #VMEXIT (GIF=0, RAX = guest VMCB): store the guest GPRs, VMSAVE the guest, VMLOAD Keel,
 * CLI, STGI. Stack while the guest runs: host_pa, vmcb_pa, g, rbp. -mno-red-zone makes the
 * pushes safe. Offsets of struct x86_gprs are checked by the _Static_asserts above.
 */
static inline __attribute__((always_inline)) void
svm_run_guest(uint64_t vmcb_pa, struct x86_gprs *g, uint64_t host_pa)
{
        __asm__ volatile("push %%rbp\n\t"
                         "push %%rsi\n\t"
                         "push %%rdi\n\t"
                         "clgi\n\t"
                         "vmsave\n\t"
                         "push %%rax\n\t"
                         "mov %%rdi, %%rax\n\t"
                         "vmload\n\t"
                         "mov 8(%%rsi), %%rbx\n\t"
                         "mov 16(%%rsi), %%rcx\n\t"
                         "mov 24(%%rsi), %%rdx\n\t"
                         "mov 40(%%rsi), %%rdi\n\t"
                         "mov 48(%%rsi), %%rbp\n\t"
                         "mov 56(%%rsi), %%r8\n\t"
                         "mov 64(%%rsi), %%r9\n\t"
                         "mov 72(%%rsi), %%r10\n\t"
                         "mov 80(%%rsi), %%r11\n\t"
                         "mov 88(%%rsi), %%r12\n\t"
                         "mov 96(%%rsi), %%r13\n\t"
                         "mov 104(%%rsi), %%r14\n\t"
                         "mov 112(%%rsi), %%r15\n\t"
                         "mov 32(%%rsi), %%rsi\n\t"
                         "sti\n\t"
                         "vmrun\n\t"
                         "vmsave\n\t"
                         "mov 16(%%rsp), %%rax\n\t"
                         "mov %%rbx, 8(%%rax)\n\t"
                         "mov %%rcx, 16(%%rax)\n\t"
                         "mov %%rdx, 24(%%rax)\n\t"
                         "mov %%rsi, 32(%%rax)\n\t"
                         "mov %%rdi, 40(%%rax)\n\t"
                         "mov %%rbp, 48(%%rax)\n\t"
                         "mov %%r8, 56(%%rax)\n\t"
                         "mov %%r9, 64(%%rax)\n\t"
                         "mov %%r10, 72(%%rax)\n\t"
                         "mov %%r11, 80(%%rax)\n\t"
                         "mov %%r12, 88(%%rax)\n\t"
                         "mov %%r13, 96(%%rax)\n\t"
                         "mov %%r14, 104(%%rax)\n\t"
                         "mov %%r15, 112(%%rax)\n\t"
                         "pop %%rax\n\t"
                         "vmload\n\t"
                         "cli\n\t"
                         "stgi\n\t"
                         "add $8, %%rsp\n\t"
                         "pop %%rsi\n\t"
                         "pop %%rbp"
                         : "+a"(host_pa), "+D"(vmcb_pa), "+S"(g)
                         :
                         : "rbx", "rcx", "rdx", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
                           "r15", "memory", "cc");
}

/*
 * Before an entry with an NMI pending (or NMIs blocked): inject it if NMIs are not blocked
 * and nothing else is queued, with the IRET intercept on to see the handler's end. Blocked
 * at an IRET that has not run yet: single-step over it. Otherwise (an event already queued,
 * an interrupt shadow, or inside the handler) it waits for a later entry: the next IRET's
 * intercept, or at the latest Keel's timer a millisecond on. False if RFLAGS.TF is Keel's
 * for this entry (then no interrupt may be injected: its frame would carry that TF).
 */
static __attribute__((noinline)) bool svm_inject_nmi(struct vcpu *vcpu, struct vmcb *vmcb)
{
        struct vcpu_arch *a = &vcpu->arch;
        struct vmcb_control *c = &vmcb->control;

        if (a->nmi_iret_wait && vmcb->save.rip != a->nmi_iret_rip) {
                /* The IRET ran without an NMI waiting, or it faulted while Keel stepped. */
                nmi_unblocked(vcpu, vmcb);
                a->nmi_step = false;
                c->intercept_exc &= ~(1u << X86_VEC_DB);
        }
        if (a->nmi_step)
                return false;
        if (!x86_nmi_pending(vcpu))
                return true;
        if (!a->nmi_blocked) {
                if ((c->event_inj & SVM_EVT_VALID) || (c->int_state & SVM_INT_SHADOW)) {
                        /* SVM has no NMI window: an exit within a tick period at the latest. */
                        arch_timer_by(x86_rdtsc() + arch_tsc_khz());
                        return true;
                }
                if (!x86_take_nmi(vcpu))
                        return true;
                c->event_inj = X86_VEC_NMI | SVM_EVT_TYPE_NMI | SVM_EVT_VALID;
                a->nmi_blocked = true;
                c->intercept1 |= SVM_INTERCEPT_IRET;
                return true;
        }
        x86_nmi_blocked(vcpu);
        if (!a->nmi_iret_wait || (c->event_inj & SVM_EVT_VALID))
                return true;
        a->nmi_step = true;
        a->nmi_step_tf = (vmcb->save.rflags & X86_RFLAGS_TF) != 0;
        vmcb->save.rflags |= X86_RFLAGS_TF;
        c->intercept_exc |= 1u << X86_VEC_DB;
        return false;
}

/*
 * Before an entry (after the CR8 sync and any NMI): deliver the LAPIC's highest pending vector if
 * the guest can take it now (RFLAGS.IF, no interrupt shadow, no event already queued), else ask for
 * a VINTR exit at the moment it can.
 */
static void svm_inject_irq(struct vcpu *vcpu, struct vmcb *vmcb)
{
        struct vmcb_control *c = &vmcb->control;
        int vector;

        tpr_from_guest(vcpu, vmcb);
        tpr_to_guest(vcpu, vmcb);
        if ((vcpu->arch.nmi_blocked || x86_nmi_pending(vcpu)) && !svm_inject_nmi(vcpu, vmcb))
                return;
        x86_entry_poll(); /* just before x86_pending_irq, which arms the guest's timers again */
        vector = x86_pending_irq(vcpu);
        if (vector < 0)
                return;
        if (!(c->event_inj & SVM_EVT_VALID) && (vmcb->save.rflags & X86_RFLAGS_IF) &&
            !(c->int_state & SVM_INT_SHADOW)) {
                if ((c->exit_code == SVM_EXIT_VINTR || c->exit_code == SVM_EXIT_INTR) &&
                    hlt_before_irq(vcpu, vmcb))
                        return;
                /* type 0: external */
                c->event_inj = (uint64_t)x86_irq_injected(vcpu, (uint8_t)vector) | SVM_EVT_VALID;
                return;
        }
        c->int_ctl |= SVM_INT_V_IRQ | SVM_INT_V_IGN_TPR;
        c->intercept1 |= SVM_INTERCEPT_VINTR;
}

/*
 * gdb (vmm/gdb.h): while a session is on, #BP and #DB exit; a vCPU gdb steps runs with
 * RFLAGS.TF. At the start of a run only, so exits pay nothing for it.
 */
static __attribute__((noinline, cold)) void svm_debug_entry(struct vcpu *vcpu, struct vmcb *vmcb)
{
        bool on = vcpu->vm->debug;

        svm_gdb_hw_load(vcpu, vmcb);
        vcpu->arch.gdb_armed = on;
        if (on) {
                vmcb->control.intercept_exc |= (1u << X86_VEC_DB) | (1u << X86_VEC_BP);
                vmcb->control.intercept1 |= SVM_INTERCEPT_INTN;
        } else {
                /* #DB stays while the NMI code steps over an IRET (svm_inject_nmi). */
                vmcb->control.intercept_exc &= ~(1u << X86_VEC_BP);
                if (!vcpu->arch.nmi_step)
                        vmcb->control.intercept_exc &= ~(1u << X86_VEC_DB);
                vmcb->control.intercept1 &= ~SVM_INTERCEPT_INTN;
        }
        if (on && vcpu->debug_step && !(vmcb->save.rflags & X86_RFLAGS_TF)) {
                vmcb->save.rflags |= X86_RFLAGS_TF;
                vcpu->arch.gdb_tf = true;
        }
        if (!on && vcpu->arch.gdb_tf) {
                vmcb->save.rflags &= ~X86_RFLAGS_TF;
                vcpu->arch.gdb_tf = false;
        }
}

__attribute__((cold)) static void svm_debug_state(struct vcpu *vcpu, struct x86_debug_state *st,
                                                  bool write)
{
        struct vmcb *vmcb = vcpu->arch.vmcb;

        if (write) {
                vmcb->save.rsp = st->rsp;
                vmcb->save.rip = st->rip;
                vmcb->save.rflags = st->rflags;
                return;
        }
        x86_debug_from_save(&vmcb->save, st);
}

static void svm_vcpu_run(struct vcpu *vcpu)
{
        struct vmcb *vmcb = vcpu->arch.vmcb;
        struct x86_gprs *g = &vcpu->arch.gprs;
        uint64_t vmcb_pa = hpa_raw(vcpu->arch.vmcb_pa),
                 host_pa = hpa_raw(svm_host_vmcb_pa[arch_cpu_index()]);
        uint8_t tlb_control = vcpu->vm->arch.asid >= svm_found.asids ? 1 : 0;
        bool platform = vcpu->vm->arch.platform;

        /*
         * Since its last run the vCPU may have run on another CPU, whose TLB saw the guest's
         * page-table changes while this one kept stale entries: the first entry of each run
         * flushes (TCG has no flush-by-ASID, so that is the whole TLB).
         */
        vmcb->control.tlb_control = 1;
        if (__builtin_expect(vcpu->vm->debug || vcpu->arch.gdb_armed, 0))
                svm_debug_entry(vcpu, vmcb);
        while (vcpu->vm->state == VM_RUNNING && !vcpu->arch.leave) {
                if (platform)
                        svm_inject_irq(vcpu, vmcb);
                vmcb->save.rax = g->rax;
                svm_run_guest(vmcb_pa, g, host_pa);
                vcpu->arch.exit_tsc = x86_rdtsc_low(); /* the exit's cost from here */
                g->rax = vmcb->save.rax;
                vmcb->control.tlb_control = tlb_control;
                vcpu->exits++;
                svm_handle_exit(vcpu, vmcb);
        }
        if (__builtin_expect(vcpu->arch.gdb_hw, 0))
                write_dr7(0x400); /* Keel runs without gdb's breakpoints (svm_gdb_hw_load) */
}

static const struct pt_format *svm_second_level(void)
{
        return svm_found.npt_1g ? &x86_pt_npt_1g : &x86_pt_npt;
}

const struct x86_vendor svm_vendor = {
    .name = "AMD SVM",
    .probe = svm_probe,
    .describe = svm_describe,
    .enable = svm_enable,
    .second_level = svm_second_level,
    .vcpu_init = svm_vcpu_init,
    .vcpu_run = svm_vcpu_run,
    .vcpu_free = svm_vcpu_free,
    /* The VMCB holds DR6, DR7 and CR2; VMLOAD/VMSAVE switch the SYSCALL MSRs. */
    .swregs = X86_SWREGS_DR0_3 | X86_SWREGS_TSC_AUX,
    .inject_pf = svm_inject_pf,
    .inject_exc = svm_inject_exc,
    .seg = svm_seg,
    .debug_state = svm_debug_state,
};
