/*
 * x86 vCPUs: emulation of the exits that need an instruction decoded and carried out by Keel,
 * the same on every vendor: MMIO (an access to a device's page, docs/mmio-emulation.md) and
 * string port I/O (INS/OUTS, REP). Split from vcpu.c so that it is built for size: vcpu.c is on
 * the measured exit path (-O2, docs/benchmarks.md), these exits are not.
 */
#include <stdio.h>
#include <string.h>

#include <arch/decode.h>
#include <arch/fpu.h>
#include <arch/gwalk.h>
#include <arch/mmio_emul.h>
#include <arch/platform.h>
#include <arch/x86.h>
#include <arch/x86_checks.h>
#include <arch/x86_vcpu.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <keel/spinlock.h>
#include <vmm/vmm.h>

/* The vCPU of an emulated device access, and whether the device wants it executed again. */
struct mmio_ctx {
        struct vcpu *vcpu;
        bool again;
        bool held; /* the caller holds the device lock (a whole instruction's accesses) */
};

/* One device access, under the VM's device lock (its vCPUs may run on several CPUs). */
static bool mmio_access(void *ctx, uint64_t addr, unsigned size, bool write, uint64_t *val)
{
        struct mmio_ctx *mc = ctx;
        struct vcpu *vcpu = mc->vcpu;
        struct vm *vm = vcpu->vm;
        struct spin_held h = {0};
        bool ok;

        if (!mc->held)
                h = spin_lock(&vm->dev_lock);
        vm->arch.dev_vcpu = vcpu;
        ok = mmio_bus_access(&vm->mmio, gpa(addr), size, write, val);
        if (ok && write && mmio_bus_write_again(&vm->mmio, gpa(addr)))
                mc->again = true;
        vm->arch.dev_vcpu = NULL;
        if (!mc->held)
                spin_unlock(h);
        return ok;
}

/*
 * An access to a guest-physical address with nothing behind it (neither RAM nor a device), as
 * a PC answers it: a read returns all ones, a write is dropped (config unbacked = abort, the
 * default; docs/guest-entry.md). Keel logs the VM's first such access once.
 */
static bool unbacked_access(void *ctx, uint64_t addr, unsigned size, bool write, uint64_t *val)
{
        struct vcpu *vcpu = ((struct mmio_ctx *)ctx)->vcpu;
        struct vm *vm = vcpu->vm;

        if (!__atomic_exchange_n(&vm->arch.unbacked_reported, true, __ATOMIC_RELAXED)) {
                struct spin_held h = spin_lock(&vm->dev_lock); /* the console */

                LOG_INFO("vm %s: %s of %u bytes at guest-physical %#llx (outside RAM and "
                         "devices): %s, as on a PC (first such access; config unbacked = stop "
                         "stops the VM instead)",
                         vm->name, write ? "write" : "read", size, (unsigned long long)addr,
                         write ? "dropped" : "all ones");
                spin_unlock(h);
        }
        if (!write)
                *val = size == 8 ? ~0ull : (1ull << (8 * size)) - 1;
        return true;
}

/* Decoder register numbering (rax rcx rdx rbx rsp rbp rsi rdi r8..r15) -> struct x86_gprs. */
uint64_t *x86_gpr(struct x86_gprs *g, uint64_t *rsp, unsigned n)
{
#define GPR(r) offsetof(struct x86_gprs, r)
        static const uint8_t offset[16] = {
            GPR(rax), GPR(rcx), GPR(rdx), GPR(rbx), 0 /* rsp */, GPR(rbp), GPR(rsi), GPR(rdi),
            GPR(r8),  GPR(r9),  GPR(r10), GPR(r11), GPR(r12),    GPR(r13), GPR(r14), GPR(r15)};
#undef GPR

        n &= 15;
        return n == 4 ? rsp : (uint64_t *)((char *)g + offset[n]);
}

/* The emulation's registers back into the vCPU. */
static void commit_regs(struct vcpu *vcpu, const struct x86_emul_regs *regs, uint64_t *rsp,
                        uint64_t *rip, uint64_t *rflags)
{
        for (unsigned i = 0; i < 16; i++)
                *x86_gpr(&vcpu->arch.gprs, rsp, i) = regs->gpr[i];
        *rip = regs->rip;
        *rflags = regs->rflags;
}

/*
 * String instructions (MOVS CMPS STOS LODS SCAS) on device memory: at most this many
 * iterations per exit, then the guest executes the instruction again for the rest (taking
 * pending interrupts in between, as the CPU does between iterations).
 */
#define X86_STRING_BUDGET 128

/* What a string instruction's accesses need: the device context, the guest's paging, and why
 * an access was refused (reported if not even the first iteration was done). */
struct string_ctx {
        struct mmio_ctx mc; /* first: mmio_access and unbacked_access take it */
        const struct x86_guest_ctx *gctx;
        struct x86_paging pg;
        enum vm_stop_reason stop; /* VM_STOP_NONE: no refusal */
        char why[160];
};

static int string_access(void *ctx, uint64_t linear, unsigned size, bool write, uint64_t *val);

/*
 * An access that crosses a page boundary (a misaligned operand, as the CPU allows): as the
 * CPU splits it, each page's part goes to what that page maps (RAM, a device, nothing), a
 * byte at a time (a device sees byte accesses). A write first checks that both pages may be
 * written, so that a #PF on the second leaves the first unwritten.
 */
static __attribute__((cold, noinline)) int split_access(struct string_ctx *sc, uint64_t linear,
                                                        unsigned size, bool write, uint64_t *val)
{
        unsigned first = PAGE_SIZE - (unsigned)(linear & (PAGE_SIZE - 1));
        uint64_t v = 0, b;
        int rc;

        if (write || !val) {
                rc = string_access(sc, linear, first, true, NULL);
                if (rc >= 0)
                        rc = string_access(sc, linear + first, size - first, true, NULL);
                if (rc < 0 || !val)
                        return rc;
        }
        for (unsigned i = 0; i < size; i++) {
                b = write ? *val >> (8 * i) & 0xff : 0;
                rc = string_access(sc, linear + i, 1, write, &b);
                if (rc < 0)
                        return rc;
                v |= (b & 0xff) << (8 * i);
        }
        if (!write)
                *val = v;
        return 0;
}

/* An access of a string instruction at a linear address: RAM, a device or nothing. */
static int string_access(void *ctx, uint64_t linear, unsigned size, bool write, uint64_t *val)
{
        struct string_ctx *sc = ctx;
        struct vcpu *vcpu = sc->mc.vcpu;
        struct vm *vm = vcpu->vm;
        unsigned acc =
            X86_ACC_SET_AD | (write ? X86_ACC_WRITE : 0) | (sc->gctx->cpl == 3 ? X86_ACC_USER : 0);
        struct x86_xlate x;
        uint64_t a;

        if ((linear & (PAGE_SIZE - 1)) + size > PAGE_SIZE)
                return split_access(sc, linear, size, write, val);
        if (x86_translate(&vm->mem, &sc->pg, linear, acc, &x) != 0) {
                if (x.fault == X86_XLATE_PF) {
                        x86_vops->inject_pf(vcpu, linear, x.pf_error); /* as the CPU would */
                        return -KEEL_EFAULT;
                }
                sc->stop = x.fault == X86_XLATE_BAD_TABLE ? VM_STOP_OUTSIDE_RAM : VM_STOP_BAD_INSN;
                snprintf(sc->why, sizeof(sc->why),
                         "string instruction at rip %#llx: its operand at linear %#llx %s",
                         (unsigned long long)sc->gctx->rip, (unsigned long long)linear,
                         x.fault == X86_XLATE_BAD_TABLE ? "has page tables outside its RAM"
                                                        : "cannot be translated (non-canonical)");
                return -KEEL_EFAULT;
        }
        a = gpa_raw(x.gpa);
        if (!val && (!vm->unbacked_stop || gmem_contains(&vm->mem, x.gpa, size) ||
                     mmio_bus_find(&vm->mmio, x.gpa, 1)))
                return 0; /* INS checks its destination before the port read */
        if (gmem_contains(&vm->mem, x.gpa, size)) {
                *val = write ? *val : 0;
                return (write ? gmem_write(&vm->mem, x.gpa, val, size)
                              : gmem_read(&vm->mem, x.gpa, val, size)) == 0
                           ? 0
                           : -KEEL_EFAULT;
        }
        if (mmio_bus_find(&vm->mmio, x.gpa, 1)) {
                if (!mmio_access(&sc->mc, a, size, write, val)) {
                        sc->stop = VM_STOP_BAD_INSN;
                        snprintf(sc->why, sizeof(sc->why),
                                 "string instruction at rip %#llx: a %u-byte access at %#llx "
                                 "crosses the end of the device",
                                 (unsigned long long)sc->gctx->rip, size, (unsigned long long)a);
                        return -KEEL_EFAULT;
                }
                if (sc->mc.again) {
                        sc->mc.again = false;
                        return 1;
                }
                return 0;
        }
        if (vm->unbacked_stop) {
                sc->stop = VM_STOP_OUTSIDE_RAM;
                snprintf(sc->why, sizeof(sc->why),
                         "%s at guest-physical %#llx, outside its %llu MiB of RAM (instruction "
                         "at rip %#llx)",
                         write ? "write" : "read", (unsigned long long)a,
                         (unsigned long long)(gmem_total(&vm->mem) >> 20),
                         (unsigned long long)sc->gctx->rip);
                return -KEEL_EFAULT;
        }
        unbacked_access(&sc->mc, a, size, write, val);
        return 0;
}

/* A port access of a string I/O instruction: nothing there reads all ones. */
static void string_port(void *ctx, uint16_t port, unsigned size, bool in, uint32_t *val)
{
        struct string_ctx *sc = ctx;

        if (!x86_port_access(sc->mc.vcpu, port, size, in, val) && in)
                *val = size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
}

/*
 * A string instruction that trapped at guest-physical `addr`: one of its first iteration's
 * operands must lead there (else it changed since the exit, or its REP count is 0 now: the
 * guest executes it again). Then up to X86_STRING_BUDGET iterations; see x86_emulate_string.
 */
static void emulate_string_exit(struct vcpu *vcpu, const struct x86_guest_ctx *ctx,
                                const struct x86_insn *insn, struct x86_emul_regs *regs,
                                uint64_t addr)
{
        struct vm *vm = vcpu->vm;
        struct string_ctx sc = {.mc = {vcpu, false, false},
                                .gctx = ctx,
                                .pg = {ctx->cr0, ctx->cr3, ctx->cr4, ctx->efer},
                                .stop = VM_STOP_NONE};
        uint64_t lin[2];
        unsigned size;
        int which = x86_string_operands(insn, regs, ctx->seg_base, lin, &size), n;
        bool trapped = false;
        struct x86_xlate x;

        for (unsigned i = 0; i < 2; i++)
                if (which > 0 && (which & (1 << i)) &&
                    x86_translate(&vm->mem, &sc.pg, lin[i], 0, &x) == 0 && gpa_raw(x.gpa) == addr)
                        trapped = true;
        if (!trapped)
                return;
        n = x86_emulate_string(insn, regs, ctx->seg_base, X86_STRING_BUDGET, string_access, &sc);
        if (__atomic_load_n(&vm->arch.start_mask, __ATOMIC_RELAXED))
                x86_start_released(vm); /* start-up IPIs: outside the device lock */
        if (n == 0 && regs->rip == ctx->rip && sc.stop != VM_STOP_NONE)
                vm_stop(vm, sc.stop, "%s", sc.why);
}

bool x86_emulate_string_io_exit(struct vcpu *vcpu, const struct x86_guest_ctx *ctx, uint16_t port,
                                unsigned size, bool in, uint64_t *rip, uint64_t rflags)
{
        struct vm *vm = vcpu->vm;
        struct x86_gprs *g = &vcpu->arch.gprs;
        struct string_ctx sc = {.mc = {vcpu, false, false},
                                .gctx = ctx,
                                .pg = {ctx->cr0, ctx->cr3, ctx->cr4, ctx->efer},
                                .stop = VM_STOP_NONE};
        uint8_t bytes[X86_MAX_INSN_LEN];
        size_t fetched;
        struct x86_insn insn;
        struct x86_emul_regs regs = {.rip = ctx->rip, .rflags = rflags, .cr0 = ctx->cr0_seen};
        unsigned esize;
        int err = x86_fetch_decode(vcpu, ctx, bytes, &fetched, &insn), n;

        if (err < 0 && x86_fetch_walk_failed(vcpu, ctx, err, fetched))
                return false; /* a #PF for the guest, or stopped */
        if (err < 0) {
                vm_stop(vm, VM_STOP_BAD_INSN,
                        "cannot decode the string I/O instruction at rip %#llx (port %#x): %s",
                        (unsigned long long)ctx->rip, port, keel_strerror(err));
                return false;
        }
        esize = insn.op_size == 8 ? 4 : insn.op_size;
        /* The INS/OUTS the exit names, or it changed since (another vCPU rewrote it). */
        if (insn.encoding != X86_ENC_LEGACY || insn.map != X86_MAP_PRIMARY ||
            (insn.opcode & 0xfc) != 0x6c || ((insn.opcode & 2) == 0) != in || esize != size ||
            (uint16_t)g->rdx != port)
                return false;
        for (unsigned i = 0; i < 16; i++)
                regs.gpr[i] = *x86_gpr(g, &regs.gpr[4], i);
        n = x86_emulate_string_io(&insn, &regs, ctx->seg_base, X86_STRING_BUDGET, string_access,
                                  string_port, &sc);
        if (__atomic_load_n(&vm->arch.start_mask, __ATOMIC_RELAXED))
                x86_start_released(vm); /* start-up IPIs: outside the device lock */
        if (n <= 0 && regs.rip == ctx->rip) {
                if (sc.stop != VM_STOP_NONE)
                        vm_stop(vm, sc.stop, "%s", sc.why);
                return false;
        }
        g->rcx = regs.gpr[1];
        g->rsi = regs.gpr[6];
        g->rdi = regs.gpr[7];
        *rip = regs.rip;
        return true;
}

/* Does the trapped guest-physical `addr` lie in the page either part of [linear, linear +
 * size) maps (an operand that crosses a page boundary)? */
static bool split_trapped(struct vm *vm, const struct x86_paging *pg, uint64_t linear,
                          unsigned size, uint64_t addr)
{
        struct x86_xlate x;

        for (uint64_t a = linear; a < linear + size; a = (a | (PAGE_SIZE - 1)) + 1)
                if (x86_translate(&vm->mem, pg, a, X86_ACC_SET_AD, &x) == 0 &&
                    (gpa_raw(x.gpa) ^ addr) < PAGE_SIZE)
                        return true;
        return false;
}

/* x86_emulate_mmio's access callback for an operand that crosses a page boundary: `gpa` is
 * the operand's linear address (plus the offset of the access). */
static bool linear_access(void *ctx, uint64_t lin, unsigned size, bool write, uint64_t *val)
{
        return string_access(ctx, lin, size, write, val) >= 0;
}

/*
 * Loads `sel` into segment register `which` (enum x86_seg, X86_SEG_LDTR, X86_SEG_TR) as
 * `kind` (an operand Keel read from device memory; SDM vol. 2 "LLDT", "LTR", "MOV", "JMP"):
 * a null selector where allowed, else the descriptor from the GDT by linear address (a #PF
 * for the guest if not mapped), checked (x86_seg_desc), marked busy or accessed in the GDT,
 * loaded. 0 when done, 1 when a #PF was queued or the VM stopped, else the fault for the
 * guest (X86_FAULT).
 */
static __attribute__((cold)) uint32_t load_seg(struct vcpu *vcpu, const struct x86_guest_ctx *ctx,
                                               unsigned which, enum x86_seg_load kind, uint16_t sel)
{
        struct x86_guest_ctx sup = *ctx; /* descriptor-table accesses are supervisor ones */
        struct string_ctx sc = {.mc = {vcpu, false, false},
                                .gctx = &sup,
                                .pg = {ctx->cr0, ctx->cr3, ctx->cr4, ctx->efer},
                                .stop = VM_STOP_NONE};
        bool lm = ctx->efer & X86_EFER_LMA, sys = kind == SEG_LOAD_TR || kind == SEG_LOAD_LDTR;
        struct x86_sysseg s;
        uint64_t gdt, desc[2] = {0, 0}, upd;
        uint32_t limit, fault;

        sup.cpl = 0;
        if (sys && ctx->cpl != 0)
                return X86_FAULT(X86_VEC_GP, 0);
        x86_vops->seg(vcpu, which, &s, false, &gdt, &limit);
        if ((sel & ~3u) == 0) { /* null: LDTR, DS..GS; SS only in 64-bit mode at RPL = CPL < 3 */
                if (kind == SEG_LOAD_TR || kind == SEG_LOAD_CS ||
                    (kind == SEG_LOAD_SS && (!lm || ctx->cpl == 3 || (sel & 3) != ctx->cpl)))
                        return X86_FAULT(X86_VEC_GP, 0);
                /* FS and GS keep their base (64-bit mode: the base MSRs), as on Intel */
                s = (struct x86_sysseg){.sel = sel,
                                        .attr = kind == SEG_LOAD_SS ? (uint16_t)(ctx->cpl << 5) : 0,
                                        .base = which == X86_SEG_FS || which == X86_SEG_GS ? s.base
                                                                                           : 0};
                x86_vops->seg(vcpu, which, &s, true, &gdt, &limit);
                return 0;
        }
        if ((sel & 4) || (sel | 7u) + (sys && lm ? 8u : 0u) > limit)
                return X86_FAULT(X86_VEC_GP, sel & 0xfffc); /* in the LDT, or beyond the GDT */
        gdt += sel & ~7u;
        if (string_access(&sc, gdt, 8, false, &desc[0]) < 0 ||
            (sys && lm && string_access(&sc, gdt + 8, 8, false, &desc[1]) < 0))
                goto refused;
        fault = x86_seg_desc(kind, lm, ctx->cpl, sel, desc, &s);
        if (fault == 1) {
                vm_stop(vcpu->vm, VM_STOP_BAD_INSN,
                        "far JMP at rip %#llx through a gate (selector %#x): not emulated",
                        (unsigned long long)ctx->rip, sel);
                return 1;
        }
        if (fault)
                return fault;
        upd = (desc[0] & ~(0xffull << 40)) | (uint64_t)(s.attr & 0xff) << 40;
        if (upd != desc[0] && string_access(&sc, gdt, 8, true, &upd) < 0)
                goto refused;
        x86_vops->seg(vcpu, which, &s, true, &gdt, &limit);
        return 0;
refused:
        if (sc.stop != VM_STOP_NONE)
                vm_stop(vcpu->vm, sc.stop, "%s", sc.why);
        return 1;
}

/* A far JMP through device memory (FF /5): CS from the far pointer, then RIP. */
static __attribute__((cold)) uint32_t far_jmp(struct vcpu *vcpu, const struct x86_guest_ctx *ctx,
                                              struct string_ctx *sc, const struct x86_insn *insn,
                                              struct x86_emul_regs *regs)
{
        uint64_t off, gdt;
        uint16_t sel;
        uint32_t limit, fault;
        struct x86_sysseg old, cs;
        int rc = x86_far_pointer(insn, regs, ctx->seg_base, string_access, sc, &off, &sel);

        if (rc < 0)
                return rc == -KEEL_ENOTSUP ? 2 : 1;
        x86_vops->seg(vcpu, X86_SEG_CS, &old, false, &gdt, &limit);
        fault = load_seg(vcpu, ctx, X86_SEG_CS, SEG_LOAD_CS, sel);
        if (fault)
                return fault;
        x86_vops->seg(vcpu, X86_SEG_CS, &cs, false, &gdt, &limit);
        if ((cs.attr & (1u << 9)) && (uint64_t)((int64_t)(off << 16) >> 16) != off) {
                /* not canonical for 64-bit code: #GP(0) with the old CS */
                x86_vops->seg(vcpu, X86_SEG_CS, &old, true, &gdt, &limit);
                return X86_FAULT(X86_VEC_GP, 0);
        }
        regs->rip = (cs.attr & (1u << 9)) ? off : off & 0xffffffffull;
        return 0;
}

/*
 * The instructions whose operands go by linear address, not the trapped one (stack
 * instructions and near branches, far JMP), and the selector SLDT, STR and MOV Ew, Sreg
 * store (into regs->sys_sel; then -KEEL_ENOTSUP, as for any other instruction: the caller
 * emulates it). 0: done, the caller commits regs; 1: a fault for the guest or the VM
 * stopped; 2: a far JMP not emulated.
 */
static __attribute__((cold, noinline)) int
emulate_by_linear(struct vcpu *vcpu, const struct x86_guest_ctx *ctx, const struct x86_insn *insn,
                  struct x86_emul_regs *regs, struct string_ctx *sc)
{
        struct vm *vm = vcpu->vm;
        int err = x86_emulate_stack(insn, regs, ctx->seg_base, string_access, sc);
        uint32_t fault = 0;

        if (err == -KEEL_ENOTSUP && insn->map == X86_MAP_PRIMARY && insn->opcode == 0xff &&
            insn->reg == 5) {
                fault = far_jmp(vcpu, ctx, sc, insn, regs);
                err = fault == 0 ? 0 : fault == 2 ? 2 : -KEEL_EFAULT;
        } else if (err == -KEEL_ENOTSUP &&
                   ((insn->map == X86_MAP_0F && insn->opcode == 0x00 && insn->reg < 2) ||
                    (insn->map == X86_MAP_PRIMARY && insn->opcode == 0x8c && insn->reg < 6))) {
                struct x86_sysseg sys;
                uint64_t gdt;
                uint32_t limit;

                if (insn->opcode == 0x00 && (ctx->cr4 & X86_CR4_UMIP) && ctx->cpl > 0)
                        fault = X86_FAULT(X86_VEC_GP, 0);
                x86_vops->seg(vcpu,
                              insn->opcode == 0x8c ? insn->reg
                              : insn->reg          ? X86_SEG_TR
                                                   : X86_SEG_LDTR,
                              &sys, false, &gdt, &limit);
                regs->sys_sel = sys.sel;
        }
        if (err == -KEEL_ENOTSUP && !fault)
                return err;
        if (__atomic_load_n(&vm->arch.start_mask, __ATOMIC_RELAXED))
                x86_start_released(vm); /* start-up IPIs: outside the device lock */
        if (err == X86_EMUL_GP)
                fault = X86_FAULT(X86_VEC_GP, 0);
        if (fault > 2)
                x86_vops->inject_exc(vcpu, (fault >> 16) & 0xff, true, fault & 0xffff);
        else if (err < 0 && sc->stop != VM_STOP_NONE)
                vm_stop(vm, sc->stop, "%s", sc->why);
        return err == 0 || err == 2 ? err : 1; /* else a #PF for the guest, queued */
}

void x86_stop_outside_ram(struct vcpu *vcpu, const char *what, bool in_walk, uint64_t gpa,
                          uint64_t rip)
{
        if (in_walk)
                what = "page-table access (its page tables point there)";
        vm_stop(vcpu->vm, VM_STOP_OUTSIDE_RAM,
                "%s at guest-physical %#llx, outside its %llu MiB of RAM (rip %#llx)", what,
                (unsigned long long)gpa, (unsigned long long)(gmem_total(&vcpu->vm->mem) >> 20),
                (unsigned long long)rip);
}

bool x86_emulate_mmio_exit(struct vcpu *vcpu, const struct x86_guest_ctx *ctx, uint64_t addr,
                           bool in_walk, uint64_t *rsp, uint64_t *rip, uint64_t *rflags)
{
        struct vm *vm = vcpu->vm;
        struct x86_paging pg = {ctx->cr0, ctx->cr3, ctx->cr4, ctx->efer};
        uint8_t bytes[X86_MAX_INSN_LEN];
        size_t fetched;
        struct x86_insn insn;
        struct x86_emul_regs regs;
        struct x86_xlate x;
        uint64_t linear, string_lin[2];
        unsigned size;
        int err, vreg;
        bool vload, split = false, device = mmio_bus_find(&vm->mmio, gpa(addr), 1);
        struct string_ctx sc = {
            .mc = {vcpu, false, false}, .gctx = ctx, .pg = pg, .stop = VM_STOP_NONE};

        /* Nothing there: stop (unbacked = stop), or answer as a PC does below. */
        if (!device && (vm->unbacked_stop || in_walk))
                return false; /* the caller reports an access outside RAM */
        if (in_walk) {
                vm_stop(vm, VM_STOP_OUTSIDE_RAM,
                        "its page tables point at guest-physical %#llx, device memory outside "
                        "its RAM (rip %#llx)",
                        (unsigned long long)addr, (unsigned long long)ctx->rip);
                return true;
        }
        err = x86_fetch_decode(vcpu, ctx, bytes, &fetched, &insn);
        if (err < 0 && x86_fetch_walk_failed(vcpu, ctx, err, fetched))
                return true; /* a #PF for the guest, or stopped */
        if (err < 0) {
                vm_stop(vm, VM_STOP_BAD_INSN,
                        "cannot decode the instruction at rip %#llx that accessed device memory "
                        "at %#llx: %s",
                        (unsigned long long)ctx->rip, (unsigned long long)addr, keel_strerror(err));
                return true;
        }
        for (unsigned i = 0; i < 16; i++)
                regs.gpr[i] = *x86_gpr(&vcpu->arch.gprs, rsp, i);
        regs.rip = ctx->rip;
        regs.rflags = *rflags;
        regs.cr0 = ctx->cr0_seen;
        vreg = x86_mmio_vreg(&insn, &vload);
        if (vreg >= 0 && !vload)
                x86_fpu_vreg(vreg, regs.vec, false);
        if (x86_string_operands(&insn, &regs, ctx->seg_base, string_lin, &size) != -KEEL_ENOTSUP) {
                emulate_string_exit(vcpu, ctx, &insn, &regs, addr);
                commit_regs(vcpu, &regs, rsp, rip, rflags);
                return true;
        }
        err = emulate_by_linear(vcpu, ctx, &insn, &regs, &sc);
        if (err == 2) {
                err = -KEEL_ENOTSUP;
                goto not_emulated;
        }
        if (err == 0)
                commit_regs(vcpu, &regs, rsp, rip, rflags);
        if (err != -KEEL_ENOTSUP)
                return true;
        /*
         * The access emulated is the decoded operand's, and it must be the one that trapped.
         * Otherwise the instruction changed since (another vCPU rewrote it, or its tables):
         * let the guest run it again. An operand that crosses a page boundary goes by linear
         * address, each page's part to what that page maps (split_access).
         */
        if (x86_mmio_operand(&insn, &regs, ctx->seg_base, &linear, &size) == 0) {
                split = (linear & (PAGE_SIZE - 1)) + size > PAGE_SIZE;
                if (split && !split_trapped(vm, &pg, linear, size, addr))
                        return true;
                /* Accessed bits as the CPU's walk sets them (Dirty: set by the CPU's own walk
                 * before the nested fault). */
                if (!split && (x86_translate(&vm->mem, &pg, linear, X86_ACC_SET_AD, &x) != 0 ||
                               gpa_raw(x.gpa) != addr))
                        return true; /* re-executed: nothing emulated, RIP unchanged */
        }
        /*
         * A device's read and write of one instruction under one hold of the device lock: a
         * read-modify-write (locked or not) is atomic towards the VM's other vCPUs, as the
         * CPU's locked cycle would be (a split one: each access under the lock on its own).
         */
        struct mmio_ctx mc = {vcpu, false, device};
        if (split) {
                err = x86_emulate_mmio(&insn, &regs, linear, linear_access, &sc);
                if (err == -KEEL_EFAULT && sc.stop == VM_STOP_NONE)
                        return true; /* a #PF for the guest (string_access queued it) */
                if (err == -KEEL_EFAULT) {
                        vm_stop(vm, sc.stop, "%s", sc.why);
                        return true;
                }
        } else if (device) {
                struct spin_held h = spin_lock(&vm->dev_lock);

                err = x86_emulate_mmio(&insn, &regs, addr, mmio_access, &mc);
                spin_unlock(h);
        } else {
                err = x86_emulate_mmio(&insn, &regs, addr, unbacked_access, &mc);
        }
        if (__atomic_load_n(&vm->arch.start_mask, __ATOMIC_RELAXED))
                x86_start_released(vm); /* start-up IPIs: outside the device lock */
        if (err == X86_EMUL_DIVIDE_ERROR) {
                x86_vops->inject_exc(vcpu, X86_VEC_DE, false, 0); /* RIP stays: a fault */
                return true;
        }
        if (err == X86_EMUL_LOAD_SYSSEG) { /* LLDT, LTR (0F 00 /2 /3), MOV Sreg, Ew (8E) */
                bool mov = insn.opcode == 0x8e, ss = mov && insn.reg == X86_SEG_SS;
                uint32_t fault = load_seg(vcpu, ctx,
                                          mov             ? insn.reg
                                          : insn.reg == 3 ? X86_SEG_TR
                                                          : X86_SEG_LDTR,
                                          ss              ? SEG_LOAD_SS
                                          : mov           ? SEG_LOAD_DATA
                                          : insn.reg == 3 ? SEG_LOAD_TR
                                                          : SEG_LOAD_LDTR,
                                          regs.sys_sel);

                if (fault > 1) /* #GP, #NP, #SS: with an error code */
                        x86_vops->inject_exc(vcpu, (fault >> 16) & 0xff, true, fault & 0xffff);
                if (fault)
                        return true;
                vcpu->arch.ss_shadow = ss; /* MOV SS holds off interrupts for one instruction */
        }
        if (err < 0) {
        not_emulated:;
                char hex[3 * X86_MAX_INSN_LEN + 1];

                x86_format_bytes(hex, sizeof(hex), bytes, insn.len ? insn.len : fetched);
                vm_stop(vm, VM_STOP_BAD_INSN,
                        "cannot emulate the device access at %#llx by the instruction at rip "
                        "%#llx (%s): %s",
                        (unsigned long long)addr, (unsigned long long)ctx->rip, keel_strerror(err),
                        hex);
                return true;
        }
        if (mc.again)
                return true; /* the device served part of it: the guest executes it again */
        if (vreg >= 0 && (vload || vreg >= 16))
                x86_fpu_vreg(vreg, vload ? regs.vec : NULL, true);
        commit_regs(vcpu, &regs, rsp, rip, rflags);
        return true;
}
