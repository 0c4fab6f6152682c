/*
 * x86 vCPUs, vendor-neutral half: picks the backend (SVM now, VMX later) at run time, builds
 * each VM's second-level tables and guest entry state, and emulates what the guest sees the
 * same way on every vendor: CPUID, port I/O, MSRs, hypercalls, instruction lengths.
 */
#include <stdio.h>
#include <string.h>

#include <arch/cpuid_policy.h>
#include <arch/decode.h>
#include <arch/fpu.h>
#include <arch/gwalk.h>
#include <arch/host_timer.h>
#include <arch/mmio_emul.h>
#include <arch/platform.h>
#include <arch/swregs.h>
#include <arch/x86.h>
#include <arch/x86_checks.h>
#include <arch/x86_vcpu.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <keel/wallclock.h>
#include <keel/spinlock.h>
#include <vmm/hypercall.h>
#include <vmm/vmm.h>

#define COM1_BASE 0x3f8
#define RTC_BASE  0x70 /* index, data */

/* The backend chosen at boot (vcpu_emul.c uses it too). */
const struct x86_vendor *x86_vops;

void arch_vcpu_exit_summary(const struct vcpu *vcpu, char *buf, size_t len)
{
        static const char *const names[EXIT_REASONS] = {
            [EXIT_CPUID] = "cpuid",
            [EXIT_HYPERCALL] = "hypercall",
            [EXIT_IO] = "io",
            [EXIT_MSR] = "msr",
            [EXIT_MMIO] = "mmio",
            [EXIT_INTR] = "interrupt",
            [EXIT_IRQ_WINDOW] = "irq-window",
            [EXIT_HALT] = "hlt",
            [EXIT_CACHE] = "cache-flush",
            [EXIT_OTHER] = "other",
        };

        exit_stats_summary(&vcpu->stats, names, buf, len);
}

enum vcpu_run_result arch_vcpu_run(struct vcpu *vcpu, uint64_t deadline)
{
        vcpu->arch.deadline = deadline;
        vcpu->arch.leave = 0;
        if (vcpu->arch.start_pending) {
                int err;

                vcpu->arch.start_pending = false;
                err = x86_vcpu_start_real_mode(vcpu, vcpu->arch.lapic.sipi_vector);
                if (err) {
                        vm_stop(vcpu->vm, VM_STOP_UNHANDLED, "cannot start vCPU %u: %s", vcpu->id,
                                keel_strerror(err));
                        return VCPU_RUN_LEFT;
                }
        }
        x86_poll_console(vcpu->vm);
        x86_fpu_load(vcpu);
        x86_swregs_load(&vcpu->arch.swregs, x86_vops->swregs);
        x86_host_timer_run(deadline);
        x86_vops->vcpu_run(vcpu);
        x86_host_timer_idle();
        x86_swregs_save(&vcpu->arch.swregs, x86_vops->swregs);
        x86_fpu_save(vcpu);
        if (vcpu->vm->state != VM_RUNNING)
                return VCPU_RUN_LEFT;
        CHECK(vcpu->arch.leave == VCPU_RUN_BLOCKED || vcpu->arch.leave == VCPU_RUN_PREEMPTED);
        return (enum vcpu_run_result)vcpu->arch.leave;
}

/*
 * Exit fast paths (CPUID, hypercall, port I/O) without the stack protector: their only
 * address-taken locals are fixed-size out-parameters that Keel's own code fills (no
 * guest-sized copy lands on their stack; those happen in callees that keep it), and its check
 * cost every such exit 8 to 10 instructions (docs/benchmarks.md).
 */
__attribute__((no_stack_protector)) void x86_emulate_cpuid(struct vcpu *vcpu, uint64_t guest_cr4)
{
        struct x86_gprs *g = &vcpu->arch.gprs;
        struct x86_cpuid_ctx *ctx = &vcpu->arch.cpuid;
        uint32_t leaf = (uint32_t)g->rax, r[4];

        ctx->guest_cr4 = guest_cr4;
        if (leaf == 0xd && ctx->xsave)
                ctx->xcr0 = x86_xgetbv0(); /* the guest's (fpu.c) */
        x86_cpuid(x86_cpuid_host_leaf(leaf, ctx), (uint32_t)g->rcx, r);
        x86_cpuid_policy(leaf, (uint32_t)g->rcx, r, ctx, r);
        g->rax = r[0];
        g->rbx = r[1];
        g->rcx = r[2];
        g->rdx = r[3];
}

/*
 * One port access of `size` bytes: true if a device claimed it (*val read or written), false
 * if none did (reported once per port; the caller gives reads all ones). Inline in both its
 * users so that the single-port exit path stays as it was.
 */
static inline __attribute__((always_inline)) bool port_access(struct vcpu *vcpu, uint16_t port,
                                                              unsigned size, bool in, uint32_t *val)
{
        struct vm *vm = vcpu->vm;
        struct spin_held h = spin_lock(&vm->dev_lock);
        bool claimed = x86_platform_io(vcpu, port, size, in, val);

        if (!claimed && port >= COM1_BASE && port < COM1_BASE + 8) {
                vuart_access(&vm->arch.uart, port - COM1_BASE, !in, val);
                claimed = true;
        } else if (!claimed && port >= RTC_BASE && port < RTC_BASE + 2) {
                rtc_cmos_access(&vm->arch.rtc, port - RTC_BASE, !in, val, wallclock_ns());
                claimed = true;
        }
        spin_unlock(h);
        if (claimed)
                return true;
        if (!vm_report_seen(vm->arch.unclaimed_ports, &vm->arch.unclaimed_count,
                            X86_UNCLAIMED_PORTS_LOGGED, port))
                LOG_DEBUG("vm %s: unclaimed I/O port %#x (%s, %u byte%s): reads return all "
                          "ones, writes are ignored; reported once per port",
                          vm->name, port, in ? "read" : "write", size, size == 1 ? "" : "s");
        return false;
}

/* port_access for the string I/O emulation (vcpu_emul.c), off the single-port path. */
bool x86_port_access(struct vcpu *vcpu, uint16_t port, unsigned size, bool in, uint32_t *val)
{
        return port_access(vcpu, port, size, in, val);
}

__attribute__((no_stack_protector)) void x86_emulate_io(struct vcpu *vcpu, uint16_t port,
                                                        unsigned size, bool in)
{
        struct x86_gprs *g = &vcpu->arch.gprs;
        uint64_t mask = size >= 4 ? 0xffffffffull : (1ull << (8 * size)) - 1;
        uint32_t val = (uint32_t)(g->rax & mask);

        if (port_access(vcpu, port, size, in, &val)) {
                if (in)
                        g->rax = (g->rax & ~mask) | (val & mask);
                return;
        }
        /* Unclaimed: reads float high, writes vanish, as on a bus with nothing behind it. */
        if (in)
                g->rax = size == 4 ? 0xffffffffull : (g->rax | mask);
}

__attribute__((no_stack_protector)) bool x86_hypercall(struct vcpu *vcpu, unsigned cpl)
{
        struct x86_gprs *g = &vcpu->arch.gprs;
        struct hc_call call = {
            .nr = g->rax,
            .arg = {g->rbx, g->rcx, g->rdx, g->rsi},
        };
        bool cont;

        if (cpl != 0) {
                vm_stop(
                    vcpu->vm, VM_STOP_BAD_HYPERCALL,
                    "hypercall %llu from user mode (CPL %u): only the guest kernel may call Keel",
                    (unsigned long long)call.nr, cpl);
                return false;
        }
        cont = hypercall_dispatch(vcpu, &call);
        g->rax = (uint64_t)call.ret;
        return cont;
}

/* "N absent I/O ports (0x61, ...)" from a report-once table, the list cut to fit. */
static __attribute__((cold)) size_t probe_list(char *buf, size_t len, const uint32_t *keys,
                                               unsigned count, const char *what)
{
        unsigned n = count < X86_UNCLAIMED_PORTS_LOGGED ? count : X86_UNCLAIMED_PORTS_LOGGED;
        size_t at = (size_t)snprintf(buf, len, "%s%u %s%s (",
                                     count >= X86_UNCLAIMED_PORTS_LOGGED ? "at least " : "", n,
                                     what, n == 1 ? "" : "s");

        for (unsigned i = 0; i < n && at < len; i++)
                at += (size_t)snprintf(buf + at, len - at, "%s%#x", i ? " " : "", keys[i]);
        if (at < len)
                at += (size_t)snprintf(buf + at, len - at, ")");
        return at < len ? at : len;
}

__attribute__((cold)) bool arch_vm_probe_summary(const struct vm *vm, char *buf, size_t len)
{
        const struct vm_arch *a = &vm->arch;
        unsigned ports = __atomic_load_n(&a->unclaimed_count, __ATOMIC_ACQUIRE);
        unsigned msrs = __atomic_load_n(&a->unknown_msr_count, __ATOMIC_ACQUIRE);
        size_t at = 0;

        if (!ports && !msrs)
                return false;
        at = (size_t)snprintf(buf, len, "probed ");
        if (ports && at < len)
                at += probe_list(buf + at, len - at, a->unclaimed_ports, ports, "absent I/O port");
        if (ports && msrs && at < len)
                at += (size_t)snprintf(buf + at, len - at, " and ");
        if (msrs && at < len)
                at += probe_list(buf + at, len - at, a->unknown_msrs, msrs, "unknown MSR");
        if (at < len)
                snprintf(buf + at, len - at, ": %s%s%s (log = debug names each when it happens)",
                         ports ? "reads gave all ones, writes were ignored" : "",
                         ports && msrs ? "; " : "", msrs ? "the MSRs got #GP" : "");
        return true;
}

/* "0f a2 ..." for a report. */
__attribute__((cold)) void x86_format_bytes(char *hex, size_t size, const uint8_t *bytes, size_t n)
{
        size_t used = 0;

        hex[0] = 0;
        for (size_t i = 0; i < n && used < size; i++)
                used += (size_t)snprintf(hex + used, size - used, "%s%02x", i ? " " : "", bytes[i]);
}

enum x86_cpu_mode x86_guest_mode(const struct x86_guest_ctx *ctx)
{
        if (!(ctx->cr0 & X86_CR0_PE))
                return X86_MODE_REAL16;
        if ((ctx->efer & X86_EFER_LMA) && ctx->cs_l)
                return X86_MODE_LONG64;
        return ctx->cs_db ? X86_MODE_PROT32 : X86_MODE_PROT16;
}

__attribute__((cold)) void x86_describe_walk(const struct vcpu *vcpu,
                                             const struct x86_guest_ctx *ctx, uint64_t gva,
                                             bool fetch, char *buf, size_t len)
{
        static const char *const why[] = {[X86_XLATE_PF] = "not mapped",
                                          [X86_XLATE_NONCANON] = "non-canonical",
                                          [X86_XLATE_BAD_TABLE] = "a table outside RAM"};
        struct x86_paging pg = {ctx->cr0, ctx->cr3, ctx->cr4, ctx->efer};
        struct x86_xlate x;
        int err = x86_translate(&vcpu->vm->mem, &pg, gva, fetch ? X86_ACC_FETCH : 0, &x);

        if (!err)
                snprintf(buf, len, "gpa %#llx", (unsigned long long)gpa_raw(x.gpa));
        else if (err == -KEEL_EFAULT && x.fault == X86_XLATE_BAD_TABLE)
                snprintf(buf, len, "a table entry at %#llx, outside RAM",
                         (unsigned long long)gpa_raw(x.gpa));
        else if (err == -KEEL_EFAULT && x.fault < ARRAY_SIZE(why) && why[x.fault])
                snprintf(buf, len, "%s (#PF error %#x)", why[x.fault], x.pf_error);
        else
                snprintf(buf, len, "not walked (%s)", keel_strerror(err));
}

/* The linear address of ctx->rip (CS.base + RIP, wrapping at 4 GiB outside 64-bit mode). */
static uint64_t code_linear(const struct x86_guest_ctx *ctx, enum x86_cpu_mode mode)
{
        return mode == X86_MODE_LONG64 ? ctx->rip : (uint32_t)(ctx->cs_base + ctx->rip);
}

/*
 * Fetch the instruction at ctx->rip through the guest's page tables and decode it. Returns 0
 * or a negative code; *fetched stays 0 if not even its first byte could be fetched.
 */
int x86_fetch_decode(struct vcpu *vcpu, const struct x86_guest_ctx *ctx,
                     uint8_t bytes[X86_MAX_INSN_LEN], size_t *fetched, struct x86_insn *insn)
{
        struct x86_paging pg = {ctx->cr0, ctx->cr3, ctx->cr4, ctx->efer};
        enum x86_cpu_mode mode = x86_guest_mode(ctx);
        int err;

        *fetched = 0;
        err = x86_fetch_insn(&vcpu->vm->mem, &pg, code_linear(ctx, mode), bytes, fetched);
        if (err < 0) {
                *fetched = 0;
                return err;
        }
        return x86_decode(bytes, *fetched, mode, insn);
}

/*
 * After a fetch_decode that failed with `err` having `fetched` bytes, when what stopped it is
 * the guest's tables as they are now (the CPU used an older translation from its TLB, or
 * another vCPU changed them since): a page fault there is the guest's, as the CPU would have
 * raised it on these tables (CR2 = the first byte it could not fetch: the instruction's
 * start, or the start of its second page; RIP unchanged); a table outside RAM stops the VM
 * as the CPU's own walk would (outside-ram). True if it was one of those.
 */
__attribute__((cold)) bool x86_fetch_walk_failed(struct vcpu *vcpu, const struct x86_guest_ctx *ctx,
                                                 int err, size_t fetched)
{
        struct x86_paging pg = {ctx->cr0, ctx->cr3, ctx->cr4, ctx->efer};
        enum x86_cpu_mode mode = x86_guest_mode(ctx);
        uint64_t at = code_linear(ctx, mode);
        unsigned acc = X86_ACC_FETCH | (ctx->cpl == 3 ? X86_ACC_USER : 0);
        struct x86_xlate x;

        if (fetched) {
                /* Short only because the next page failed, and the decoder wanted more. */
                if (err != -KEEL_EAGAIN || fetched >= X86_MAX_INSN_LEN)
                        return false;
                at += fetched;
                if (mode != X86_MODE_LONG64)
                        at = (uint32_t)at;
        }
        if (x86_translate(&vcpu->vm->mem, &pg, at, acc, &x) != -KEEL_EFAULT)
                return false;
        if (x.fault == X86_XLATE_PF) {
                x86_vops->inject_pf(vcpu, at, x.pf_error);
                return true;
        }
        if (x.fault == X86_XLATE_BAD_TABLE) {
                vm_stop(vcpu->vm, VM_STOP_OUTSIDE_RAM,
                        "its page tables point at guest-physical %#llx, outside its RAM (Keel's "
                        "walk for the instruction at rip %#llx)",
                        (unsigned long long)gpa_raw(x.gpa), (unsigned long long)ctx->rip);
                return true;
        }
        return false;
}

/*
 * Is `got` the instruction an exit for `expect` may stand for? The exit's own, or the other
 * cache flush: QEMU 7.2's TCG reports INVD with SVM's WBINVD exit code (both are no-ops here).
 */
static bool insn_matches(enum x86_insn_id got, enum x86_insn_id expect)
{
        if (expect == X86_INSN_INVD || expect == X86_INSN_WBINVD)
                return got == X86_INSN_INVD || got == X86_INSN_WBINVD;
        return got == expect;
}

unsigned x86_insn_length(struct vcpu *vcpu, const struct x86_guest_ctx *ctx,
                         enum x86_insn_id expect)
{
        uint8_t bytes[X86_MAX_INSN_LEN];
        size_t fetched;
        struct x86_insn insn;
        int err = x86_fetch_decode(vcpu, ctx, bytes, &fetched, &insn);

        if (err < 0 && x86_fetch_walk_failed(vcpu, ctx, err, fetched))
                return 0; /* a #PF for the guest, or stopped */
        if (err < 0 && !fetched) {
                char walk[64];

                x86_describe_walk(vcpu, ctx, code_linear(ctx, x86_guest_mode(ctx)), true, walk,
                                  sizeof(walk));
                vm_stop(vcpu->vm, VM_STOP_BAD_INSN,
                        "cannot fetch the intercepted instruction at rip %#llx: %s",
                        (unsigned long long)ctx->rip, walk);
                return 0;
        }
        if (err || !insn_matches(x86_insn_identify(&insn), expect)) {
                char hex[3 * X86_MAX_INSN_LEN + 1];

                x86_format_bytes(hex, sizeof(hex), bytes, fetched);
                vm_stop(vcpu->vm, VM_STOP_BAD_INSN,
                        "intercepted instruction at rip %#llx does not decode as expected (%s): %s",
                        (unsigned long long)ctx->rip,
                        err ? keel_strerror(err) : "other instruction", hex);
                return 0;
        }
        return insn.len;
}

bool x86_debug_state(struct vcpu *vcpu, struct x86_debug_state *st, bool write)
{
        if (!x86_vops->debug_state)
                return false;
        if (st) /* NULL: only whether the backend has it */
                x86_vops->debug_state(vcpu, st, write);
        return true;
}

bool x86_vendor_is_svm(void)
{
        return x86_vops == &svm_vendor;
}
