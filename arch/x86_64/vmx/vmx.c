/*
 * Intel VT-x backend of the x86 vCPU interface: detection (CPUID, IA32_FEATURE_CONTROL, the
 * capability MSRs through vmx_caps.c), VMXON, one VMCS per vCPU with controls computed from
 * the capability MSRs, EPT from the generic page-table builder, one VPID per VM, unrestricted
 * guest when present, and the exit handler. What the guest sees (CPUID, ports, MSR policy,
 * hypercalls) is emulated in arch/x86_64/vcpu.c, exactly as for SVM.
 *
 * VMX reports the length of every intercepted instruction, so no instruction is decoded
 * except for MMIO (EPT violations outside RAM). Hypercalls use VMCALL.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <arch/cpu.h>
#include <arch/mmio_emul.h>
#include <arch/cpuid_policy.h>
#include <arch/platform.h>
#include <arch/pt_x86.h>
#include <arch/swregs.h>
#include <arch/x86.h>
#include <arch/x86_checks.h>
#include <arch/x86_vcpu.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <keel/palloc.h>
#include <keel/smp.h>
#include <vmm/gdb.h>

#include "vmx.h"
#include "../x86_snap.h"

_Static_assert(offsetof(struct x86_gprs, rdi) == 40, "vmx_run_guest gprs layout");
_Static_assert(offsetof(struct x86_gprs, r15) == 112, "vmx_run_guest gprs layout");

unsigned vmx_run_guest(struct x86_gprs *g, unsigned launched);
extern char vmx_exit_point[];

#define IO_BITMAP_PAGES 2
#define VMCS_XSS_BITMAP 0x202c

static struct vmx_caps caps;
static hpa_t io_bitmap_pa, msr_bitmap_pa; /* shared by all CPUs */
static hpa_t *vmxon_pa; /* per CPU (arch_cpu_index; keel/smp.h), from the boot CPU's enable */

static inline uint64_t vmread(enum vmcs_field f)
{
        uint64_t v;

        __asm__ volatile("vmread %1, %0" : "=rm"(v) : "r"((uint64_t)f) : "cc");
        return v;
}

static inline void vmwrite(enum vmcs_field f, uint64_t v)
{
        __asm__ volatile("vmwrite %1, %0" ::"r"((uint64_t)f), "rm"(v) : "cc");
}

/* VMX instructions report failure in CF/ZF: these return true on success. */
#define VMX_PA_INSN(name)                                                                       \
        static bool name(uint64_t pa)                                                           \
        {                                                                                       \
                bool bad;                                                                       \
                __asm__ volatile(#name " %1; setbe %0" : "=q"(bad) : "m"(pa) : "cc", "memory"); \
                return !bad;                                                                    \
        }
VMX_PA_INSN(vmxon)
VMX_PA_INSN(vmclear)
VMX_PA_INSN(vmptrld)

static void invept_all(void)
{
        struct {
                uint64_t eptp, zero;
        } d = {0, 0};

        if (caps.invept)
                __asm__ volatile("invept %0, %1" ::"m"(d), "r"(2ull) : "cc", "memory");
}

static void invvpid_all(void)
{
        struct {
                uint64_t vpid, addr;
        } d = {0, 0};

        if (caps.invvpid)
                __asm__ volatile("invvpid %0, %1" ::"m"(d), "r"(2ull) : "cc", "memory");
}

static void read_msrs(struct vmx_msrs *m)
{
#define M(f, msr, need)                                                 \
        {                                                               \
                offsetof(struct vmx_msrs, f), msr - MSR_VMX_BASIC, need \
        }
        /* need: 0 every VMX CPU has it, 1 with secondary controls, 2 with true controls. */
        static const struct {
                uint8_t off, msr, need;
        } msrs[] = {
            M(basic, MSR_VMX_BASIC, 0),
            M(pin, MSR_VMX_PINBASED, 0),
            M(proc, MSR_VMX_PROCBASED, 0),
            M(exit, MSR_VMX_EXIT, 0),
            M(entry, MSR_VMX_ENTRY, 0),
            M(misc, MSR_VMX_MISC, 0),
            M(cr0_fixed0, MSR_VMX_CR0_FIXED0, 0),
            M(cr0_fixed1, MSR_VMX_CR0_FIXED1, 0),
            M(cr4_fixed0, MSR_VMX_CR4_FIXED0, 0),
            M(cr4_fixed1, MSR_VMX_CR4_FIXED1, 0),
            M(proc2, MSR_VMX_PROCBASED2, 1),
            M(ept_vpid, MSR_VMX_EPT_VPID_CAP, 1),
            M(true_pin, MSR_VMX_TRUE_PINBASED, 2),
            M(true_proc, MSR_VMX_TRUE_PROCBASED, 2),
            M(true_exit, MSR_VMX_TRUE_EXIT, 2),
            M(true_entry, MSR_VMX_TRUE_ENTRY, 2),
        };
#undef M
        for (unsigned i = 0; i < ARRAY_SIZE(msrs); i++)
                if ((msrs[i].need != 1 || ((m->proc >> 32) & PROC_SECONDARY)) &&
                    (msrs[i].need != 2 || (m->basic & VMX_BASIC_TRUE_CTLS)))
                        *(uint64_t *)((char *)m + msrs[i].off) =
                            x86_rdmsr(MSR_VMX_BASIC + msrs[i].msr);
}

static int vmx_probe(char *why, size_t len)
{
        struct vmx_msrs m = {0};
        uint32_t r[4];
        uint64_t fc;

        x86_cpuid(1, 0, r);
        if (!(r[2] & CPUID1_ECX_VMX)) {
                snprintf(why, len,
                         "it has no Intel VT-x (VMX) either: run Keel on a CPU with one of them "
                         "(in a VM, give the virtual CPU svm or vmx)");
                return -KEEL_ENODEV;
        }
        fc = x86_rdmsr(MSR_FEATURE_CONTROL);
        if ((fc & FEATURE_CONTROL_LOCK) && !(fc & FEATURE_CONTROL_VMX)) {
                snprintf(why, len,
                         "Intel VT-x is disabled in the firmware (IA32_FEATURE_CONTROL locked "
                         "with VMX off): enable \"Intel Virtualization Technology\" in the "
                         "firmware setup");
                return -KEEL_ENODEV;
        }
        read_msrs(&m);
        return vmx_check_caps(&m, &caps, why, len);
}

static void vmx_describe(char *buf, size_t len)
{
        snprintf(buf, len, "Intel VT-x, VMCS revision %u, EPT%s, VPID %s, unrestricted guest %s",
                 caps.revision,
                 caps.ept_1g   ? " with 1 GiB pages"
                 : caps.ept_2m ? " with 2 MiB pages"
                               : " (4 KiB pages)",
                 caps.vpid ? "yes" : "no", caps.unrestricted ? "yes" : "no");
}

static const struct pt_format *vmx_second_level(void)
{
        if (caps.ept_1g)
                return &x86_pt_ept_1g;
        return caps.ept_2m ? &x86_pt_ept : &x86_pt_ept_4k;
}

/* Clear the read and (with `writes`) the write intercept of `msr` in the MSR bitmap. */
static void msr_pass_through(uint8_t *bm, uint32_t msr, bool writes)
{
        unsigned base = msr >= 0xc0000000u ? 0x400 : 0;
        uint32_t bit = msr & 0x1fff;

        bm[base + bit / 8] &= (uint8_t) ~(1u << (bit % 8));
        if (writes)
                bm[base + 0x800 + bit / 8] &= (uint8_t) ~(1u << (bit % 8));
}

/* On each CPU (the boot CPU first, which also builds the shared bitmaps). */
static void vmx_enable(void)
{
        /*
         * The guest's own: switched by the VMCS (FS/GS base, SYSENTER) or by Keel per run
         * (SYSCALL MSRs, TSC_AUX: vmx_vendor.swregs; docs/x86-state.md). The CPU checks
         * their writes in the guest (canonical addresses).
         */
        static const uint32_t pass_through[] = {
            MSR_FS_BASE, MSR_GS_BASE, MSR_KERNEL_GS_BASE, MSR_STAR,         MSR_LSTAR,
            MSR_CSTAR,   MSR_SFMASK,  MSR_SYSENTER_CS,    MSR_SYSENTER_ESP, MSR_SYSENTER_EIP,
        };
        uint64_t fc = x86_rdmsr(MSR_FEATURE_CONTROL), cr0, cr4;
        uint32_t *region, r[4];
        unsigned cpu = arch_cpu_index();
        uint8_t *msrbm;

        if (!(fc & FEATURE_CONTROL_LOCK)) /* firmware left it open: enable VMX and lock */
                x86_wrmsr(MSR_FEATURE_CONTROL, fc | FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX);
        if (cpu == 0)
                vmxon_pa = percpu_table(sizeof(*vmxon_pa), "VMXON region addresses");
        vmxon_pa[cpu] = x86_alloc_or_panic(1, "VMX VMXON region");
        if (cpu == 0) {
                io_bitmap_pa = x86_alloc_or_panic(IO_BITMAP_PAGES, "VMX I/O bitmaps");
                msr_bitmap_pa = x86_alloc_or_panic(1, "VMX MSR bitmap");
                memset(hva_ptr(arch_hpa_to_hva(io_bitmap_pa)), 0xff, IO_BITMAP_PAGES * PAGE_SIZE);
                msrbm = hva_ptr(arch_hpa_to_hva(msr_bitmap_pa));
                memset(msrbm, 0xff, PAGE_SIZE);
                for (unsigned i = 0; i < ARRAY_SIZE(pass_through); i++)
                        msr_pass_through(msrbm, pass_through[i], true);
                /*
                 * Without RDTSCP and RDPID the CPU has no TSC_AUX: intercepted, #GP. With them
                 * its writes exit for the bits 63:32 check (x86_msr_write), which Bochs skips.
                 */
                if (x86_swregs_have_tsc_aux())
                        msr_pass_through(msrbm, MSR_TSC_AUX, false);
        }
        region = hva_ptr(arch_hpa_to_hva(vmxon_pa[cpu]));
        region[0] = caps.revision;

        cr0 = (x86_read_cr0() | x86_rdmsr(MSR_VMX_CR0_FIXED0)) & x86_rdmsr(MSR_VMX_CR0_FIXED1);
        cr4 = (x86_read_cr4() | x86_rdmsr(MSR_VMX_CR4_FIXED0) | X86_CR4_VMXE) &
              x86_rdmsr(MSR_VMX_CR4_FIXED1);
        x86_cpuid(1, 0, r);
        if (r[2] & CPUID1_ECX_XSAVE) /* XSETBV exits; Keel executes it for the guest */
                cr4 |= X86_CR4_OSXSAVE;
        __asm__ volatile("mov %0, %%cr0" ::"r"(cr0) : "memory");
        x86_write_cr4(cr4);
        if (!vmxon(hpa_raw(vmxon_pa[cpu])))
                panic("VMXON failed (CR0 %#llx, CR4 %#llx, IA32_FEATURE_CONTROL %#llx)",
                      (unsigned long long)cr0, (unsigned long long)cr4,
                      (unsigned long long)x86_rdmsr(MSR_FEATURE_CONTROL));
        invept_all();
        invvpid_all();
}

/* The compressed SVM-style attribute of docs/guest-entry.md's segments, in VMX's format. */
static uint32_t vmx_ar(uint16_t attrib)
{
        return (attrib & 0xffu) | ((uint32_t)(attrib & 0xf00u) << 4);
}

/*
 * Keel's state on the CPU running the vCPU: TR, GDTR and GS base are per CPU, so this runs
 * at VMCS setup and again whenever the VMCS is made current (vmx_vcpu_run).
 */
static void write_host_state(void)
{
        struct {
                uint16_t limit;
                uint64_t base;
        } __attribute__((packed)) gdtr, idtr;
        uint16_t tr, cs, ss, ds;
        const uint8_t *tss_desc;
        uint64_t tr_base;

        __asm__ volatile("sgdt %0; sidt %1; str %2" : "=m"(gdtr), "=m"(idtr), "=r"(tr));
        __asm__ volatile("mov %%cs, %0; mov %%ss, %1; mov %%ds, %2" : "=r"(cs), "=r"(ss), "=r"(ds));
        tss_desc = (const uint8_t *)(uintptr_t)(gdtr.base + (tr & ~7u));
        tr_base = tss_desc[2] | (uint64_t)tss_desc[3] << 8 | (uint64_t)tss_desc[4] << 16 |
                  (uint64_t)tss_desc[7] << 24 | (uint64_t)tss_desc[8] << 32 |
                  (uint64_t)tss_desc[9] << 40 | (uint64_t)tss_desc[10] << 48 |
                  (uint64_t)tss_desc[11] << 56;
        vmwrite(VMCS_HOST_CS_SEL, cs);
        vmwrite(VMCS_HOST_SS_SEL, ss);
        vmwrite(VMCS_HOST_DS_SEL, ds);
        vmwrite(VMCS_HOST_ES_SEL, ds);
        vmwrite(VMCS_HOST_FS_SEL, 0);
        vmwrite(VMCS_HOST_GS_SEL, 0);
        vmwrite(VMCS_HOST_TR_SEL, tr);
        vmwrite(VMCS_HOST_CR0, x86_read_cr0());
        vmwrite(VMCS_HOST_CR3, x86_read_cr3());
        vmwrite(VMCS_HOST_CR4, x86_read_cr4());
        vmwrite(VMCS_HOST_FS_BASE, x86_rdmsr(MSR_FS_BASE));
        vmwrite(VMCS_HOST_GS_BASE, x86_rdmsr(MSR_GS_BASE));
        vmwrite(VMCS_HOST_TR_BASE, tr_base);
        vmwrite(VMCS_HOST_GDTR_BASE, gdtr.base);
        vmwrite(VMCS_HOST_IDTR_BASE, idtr.base);
        vmwrite(VMCS_HOST_SYSENTER_CS, 0);
        vmwrite(VMCS_HOST_SYSENTER_ESP, 0);
        vmwrite(VMCS_HOST_SYSENTER_EIP, 0);
        vmwrite(VMCS_HOST_EFER, x86_rdmsr(MSR_EFER));
        if (caps.exit & EXIT_LOAD_PAT)
                vmwrite(VMCS_HOST_PAT, x86_rdmsr(MSR_PAT));
        vmwrite(VMCS_HOST_RIP, (uint64_t)(uintptr_t)vmx_exit_point);
}

static void vmx_put_state(struct vcpu *vcpu, const struct vmcb_save *v, uint64_t rflags,
                          uint64_t intr, uint64_t ev, uint64_t pdbg);

static int vmx_vcpu_init(struct vcpu *vcpu, const struct x86_entry_state *st)
{
        struct vm *vm = vcpu->vm;
        uint32_t proc = caps.proc, proc2 = caps.proc2;
        uint64_t cr0_mask, cr4_mask;
        struct vmcb_save save;
        hpa_t pa;
        int err;

        if ((st->real_mode || st->prot32) && !caps.unrestricted)
                return -KEEL_ENOTSUP; /* real mode or paging off needs unrestricted guest */
        err = palloc_alloc(&keel_palloc, 1, PAGE_SIZE, &pa);
        if (err)
                return err;
        *(uint32_t *)hva_ptr(arch_hpa_to_hva(pa)) = caps.revision;
        vcpu->arch.vmcb = hva_ptr(arch_hpa_to_hva(pa));
        vcpu->arch.vmcb_pa = pa;
        vcpu->arch.launched = false;
        if (!vmclear(hpa_raw(pa)) || !vmptrld(hpa_raw(pa)))
                panic("VMCLEAR/VMPTRLD of a fresh VMCS at %#llx failed",
                      (unsigned long long)hpa_raw(pa));

        vmwrite(VMCS_PIN_CTLS, caps.pin);
        vmwrite(VMCS_PROC_CTLS, proc);
        vmwrite(VMCS_PROC_CTLS2, proc2);
        vmwrite(VMCS_EXIT_CTLS, caps.exit);
        vmwrite(VMCS_EXCEPTION_BITMAP, 0);
        vmwrite(VMCS_CR3_TARGET_COUNT, 0);
        vmwrite(VMCS_EXIT_MSR_STORE_COUNT, 0);
        vmwrite(VMCS_EXIT_MSR_LOAD_COUNT, 0);
        vmwrite(VMCS_ENTRY_MSR_LOAD_COUNT, 0);
        vmwrite(VMCS_IO_BITMAP_A, hpa_raw(io_bitmap_pa));
        vmwrite(VMCS_IO_BITMAP_B, hpa_raw(io_bitmap_pa) + PAGE_SIZE);
        vmwrite(VMCS_MSR_BITMAP, hpa_raw(msr_bitmap_pa));
        vmwrite(VMCS_EPT_POINTER, hpa_raw(vm->arch.npt.root) | 6 /* WB */ | 3 << 3 /* 4 levels */);
        if (proc2 & PROC2_VPID)
                vmwrite(VMCS_VPID, vm->arch.asid);
        if (proc2 & PROC2_XSAVES)
                vmwrite(VMCS_XSS_BITMAP, 0);
        vmwrite(VMCS_LINK_POINTER, ~0ull);
        write_host_state();

        /* Bits the CPU fixes are owned by Keel; the guest sees its own value (shadow). */
        cr0_mask = caps.cr0_fixed0 | ~caps.cr0_fixed1;
        cr4_mask = caps.cr4_fixed0 | ~caps.cr4_fixed1;
        vmwrite(VMCS_CR0_MASK, cr0_mask);
        vmwrite(VMCS_CR4_MASK, cr4_mask);
        x86_entry_save(st, &save);
        vmx_put_state(vcpu, &save, st->rflags, 0, 0, 0);
        /* The tables may hold pages of an earlier VM: no stale translations. */
        invept_all();
        invvpid_all();
        return 0;
}

static void vmx_vcpu_free(struct vcpu *vcpu)
{
        int err;

        vmclear(hpa_raw(vcpu->arch.vmcb_pa));
        err = palloc_free(&keel_palloc, vcpu->arch.vmcb_pa, 1);
        CHECK(err == 0);
        vcpu->arch.vmcb = NULL;
}

static void inject_exception(unsigned vector, bool has_error, uint32_t error)
{
        vmwrite(VMCS_ENTRY_INTR_INFO, vector | INTR_TYPE_HW_EXC | INTR_INFO_VALID |
                                          (has_error ? INTR_INFO_ERR_VALID : 0));
        if (has_error)
                vmwrite(VMCS_ENTRY_EXC_ERROR, error);
}

/* Past the intercepted instruction; the STI / MOV SS blocking it was in ends with it (svm.c). */
static inline void skip_insn(void)
{
        uint64_t blocking = vmread(VMCS_GUEST_INTERRUPTIBILITY);

        vmwrite(VMCS_GUEST_RIP, vmread(VMCS_GUEST_RIP) + vmread(VMCS_EXIT_INSN_LEN));
        if (blocking & 3)
                vmwrite(VMCS_GUEST_INTERRUPTIBILITY, blocking & ~3ull);
}

static struct x86_guest_ctx guest_ctx(void)
{
        uint32_t cs_ar = (uint32_t)vmread(VMCS_GUEST_CS_AR);

        return (struct x86_guest_ctx){
            .cr0 = vmread(VMCS_GUEST_CR0),
            .cr3 = vmread(VMCS_GUEST_CR3),
            .cr4 = vmread(VMCS_GUEST_CR4),
            .efer = vmread(VMCS_GUEST_EFER),
            .cs_base = vmread(VMCS_GUEST_CS_BASE),
            .cs_l = cs_ar & (1u << 13),
            .cs_db = cs_ar & (1u << 14),
            .cpl = (vmread(VMCS_GUEST_SS_AR) >> 5) & 3,
            .rip = vmread(VMCS_GUEST_RIP),
        };
}

static void vmx_inject_exc(struct vcpu *vcpu, unsigned vector, bool has_error, uint32_t error)
{
        (void)vcpu;
        inject_exception(vector, has_error, error);
}

/* VMX's access rights: the SVM form's flags nibble at bits 12-15, bit 16 "unusable" (for a
 * segment not present: a null selector). Fields of ES..GS, LDTR, TR are 2 apart. */
static void vmx_seg(struct vcpu *vcpu, unsigned which, struct x86_sysseg *s, bool write,
                    uint64_t *gdt_base, uint32_t *gdt_limit)
{
        unsigned d = 2 * which;
        uint64_t ar;

        (void)vcpu;
        *gdt_base = vmread(VMCS_GUEST_GDTR_BASE);
        *gdt_limit = (uint32_t)vmread(VMCS_GUEST_GDTR_LIMIT);
        if (write) {
                vmwrite(VMCS_GUEST_ES_SEL + d, s->sel);
                vmwrite(VMCS_GUEST_ES_LIMIT + d, s->limit);
                vmwrite(VMCS_GUEST_ES_BASE + d, s->base);
                vmwrite(VMCS_GUEST_ES_AR + d, (s->attr & 0xffu) | (s->attr & 0xf00u) << 4 |
                                                  ((s->attr & 0x80) ? 0 : 1u << 16));
                return;
        }
        ar = vmread(VMCS_GUEST_ES_AR + d);
        *s = (struct x86_sysseg){(uint16_t)vmread(VMCS_GUEST_ES_SEL + d),
                                 (uint16_t)((ar & 1u << 16) ? 0 : (ar & 0xff) | (ar >> 4 & 0xf00)),
                                 (uint32_t)vmread(VMCS_GUEST_ES_LIMIT + d),
                                 vmread(VMCS_GUEST_ES_BASE + d)};
}

/* CR2 is not in the VMCS: the guest's is live in the CPU while it runs (swregs saves it). */
static void vmx_inject_pf(struct vcpu *vcpu, uint64_t cr2, uint32_t error)
{
        (void)vcpu;
        __asm__ volatile("mov %0, %%cr2" ::"r"(cr2) : "memory");
        inject_exception(X86_VEC_PF, true, error);
}

static unsigned guest_cpl(void)
{
        return (vmread(VMCS_GUEST_SS_AR) >> 5) & 3;
}

static void handle_msr(struct vcpu *vcpu, bool write)
{
        struct x86_gprs *g = &vcpu->arch.gprs;
        uint32_t msr = (uint32_t)g->rcx;
        uint64_t val = (g->rdx << 32) | (uint32_t)g->rax;
        int err = 0;

        switch (msr) {
        case MSR_EFER:
                if (!write) {
                        val = vmread(VMCS_GUEST_EFER);
                        break;
                }
                /* GUEST_CR0.PG is the guest's (without unrestricted guest it is always 1) */
                err = x86_efer_write(vmread(VMCS_GUEST_EFER), val, vmread(VMCS_GUEST_CR0), &val);
                if (!err)
                        vmwrite(VMCS_GUEST_EFER, val);
                break;
        case MSR_PAT:
                if (!(caps.entry & ENTRY_LOAD_PAT))
                        err = write ? x86_msr_write(vcpu, msr, val) : x86_msr_read(vcpu, msr, &val);
                else if (!write)
                        val = vmread(VMCS_GUEST_PAT);
                else if (!x86_pat_valid(val))
                        err = -KEEL_EPERM; /* a reserved type would fail the VM entry */
                else
                        vmwrite(VMCS_GUEST_PAT, val);
                break;
        case MSR_TSC:
                if (!write)
                        val = x86_rdtsc() + vmread(VMCS_TSC_OFFSET);
                else
                        vmwrite(VMCS_TSC_OFFSET, vcpu->arch.tsc_offset = val - x86_rdtsc());
                break;
        default:
                err = write ? x86_msr_write(vcpu, msr, val) : x86_msr_read(vcpu, msr, &val);
                break;
        }
        if (err) {
                inject_exception(X86_VEC_GP, true, 0);
                return;
        }
        skip_insn();
        if (!write) {
                g->rax = (uint32_t)val;
                g->rdx = val >> 32;
        }
}

/* guest_ctx plus the segment bases and CR0 as the guest reads it, for an instruction with
 * memory operands Keel emulates. */
static struct x86_guest_ctx guest_ctx_segs(void)
{
        struct x86_guest_ctx ctx = guest_ctx();
        uint64_t mask = vmread(VMCS_CR0_MASK);

        ctx.seg_base[X86_SEG_ES] = vmread(VMCS_GUEST_ES_BASE);
        ctx.seg_base[X86_SEG_CS] = ctx.cs_base;
        ctx.seg_base[X86_SEG_SS] = vmread(VMCS_GUEST_SS_BASE);
        ctx.seg_base[X86_SEG_DS] = vmread(VMCS_GUEST_DS_BASE);
        ctx.seg_base[X86_SEG_FS] = vmread(VMCS_GUEST_FS_BASE);
        ctx.seg_base[X86_SEG_GS] = vmread(VMCS_GUEST_GS_BASE);
        ctx.cr0_seen = (ctx.cr0 & ~mask) | (vmread(VMCS_CR0_SHADOW) & mask);
        return ctx;
}

/* INS/OUTS, from the decoded instruction; STI / MOV-SS blocking ends once an iteration ran. */
static __attribute__((noinline)) void string_io(struct vcpu *vcpu, uint16_t port, unsigned size,
                                                bool in)
{
        struct x86_guest_ctx ctx = guest_ctx_segs();
        uint64_t rip = ctx.rip, blocking;

        if (!x86_emulate_string_io_exit(vcpu, &ctx, port, size, in, &rip,
                                        vmread(VMCS_GUEST_RFLAGS)))
                return;
        vmwrite(VMCS_GUEST_RIP, rip);
        blocking = vmread(VMCS_GUEST_INTERRUPTIBILITY);
        if (blocking & 3)
                vmwrite(VMCS_GUEST_INTERRUPTIBILITY, blocking & ~3ull);
}

static void handle_io(struct vcpu *vcpu, uint64_t q)
{
        uint16_t port = (uint16_t)(q >> 16);

        if (q & (1u << 4)) {
                string_io(vcpu, port, (unsigned)(q & 7) + 1, q & (1u << 3));
                return;
        }
        x86_emulate_io(vcpu, port, (unsigned)(q & 7) + 1, q & (1u << 3));
        skip_insn();
}

static uint64_t *gpr(struct vcpu *vcpu, unsigned n, uint64_t *rsp)
{
        return x86_gpr(&vcpu->arch.gprs, rsp, n);
}

/*
 * An emulated MOV to CR0 does not do what the CPU does to EFER.LMA: paging turned on with
 * EFER.LME set enters IA-32e mode (an AP's trampoline, after its real-mode start), paging
 * turned off leaves it. EFER.LMA and the IA-32e-mode-guest entry control follow CR0.PG.
 */
static void set_long_mode(uint64_t cr0)
{
        uint64_t efer = vmread(VMCS_GUEST_EFER), entry = vmread(VMCS_ENTRY_CTLS);

        if ((cr0 & X86_CR0_PG) && (efer & X86_EFER_LME))
                efer |= X86_EFER_LMA;
        else if (!(cr0 & X86_CR0_PG))
                efer &= ~X86_EFER_LMA;
        vmwrite(VMCS_GUEST_EFER, efer);
        vmwrite(VMCS_ENTRY_CTLS,
                (efer & X86_EFER_LMA) ? entry | ENTRY_IA32E : entry & ~ENTRY_IA32E);
}

/* MOV to CR0/CR4 that touches a bit Keel owns (fixed by VMX), or any CR8 access. */
static void handle_cr(struct vcpu *vcpu, uint64_t q)
{
        unsigned cr = q & 15, type = (q >> 4) & 3;
        uint64_t rsp = vmread(VMCS_GUEST_RSP), *reg = gpr(vcpu, (q >> 8) & 15, &rsp), v = *reg;

        if (cr == 8 && vcpu->vm->arch.platform) {
                /* CR8 = TPR[7:4] of the LAPIC model (SDM 10.8.6.1); bits 63:4 reserved. */
                struct spin_held h;

                if (type == 0 && (v >> 4)) {
                        inject_exception(X86_VEC_GP, true, 0);
                        return;
                }
                h = spin_lock(&vcpu->vm->dev_lock);
                if (type == 1)
                        *reg = vlapic_tpr(&vcpu->arch.lapic) >> 4;
                else
                        vlapic_set_tpr(&vcpu->arch.lapic, (uint32_t)v << 4);
                spin_unlock(h);
        } else if (cr == 8) { /* no LAPIC: reads 0, writes are dropped */
                if (type == 1)
                        *reg = 0;
        } else if (type == 0 && cr == 0) {
                if (!caps.unrestricted && (~v & (X86_CR0_PE | X86_CR0_PG))) {
                        vm_stop(
                            vcpu->vm, VM_STOP_UNHANDLED,
                            "guest turned off protected mode or paging (CR0 %#llx at rip %#llx); "
                            "this CPU's VT-x has no unrestricted guest",
                            (unsigned long long)v, (unsigned long long)vmread(VMCS_GUEST_RIP));
                        return;
                }
                if (v >> 32) {
                        inject_exception(X86_VEC_GP, true, 0);
                        return;
                }
                vmwrite(VMCS_CR0_SHADOW, v);
                vmwrite(VMCS_GUEST_CR0, (v | caps.cr0_fixed0) & caps.cr0_fixed1);
                set_long_mode(v);
        } else if (type == 0 && cr == 4) {
                if ((v & X86_CR4_VMXE) || (v & ~caps.cr4_fixed1)) {
                        inject_exception(X86_VEC_GP, true, 0);
                        return;
                }
                vmwrite(VMCS_CR4_SHADOW, v);
                vmwrite(VMCS_GUEST_CR4, (v | caps.cr4_fixed0) & caps.cr4_fixed1);
        } else {
                vm_stop(vcpu->vm, VM_STOP_UNHANDLED, "CR access exit %#llx at rip %#llx",
                        (unsigned long long)q, (unsigned long long)vmread(VMCS_GUEST_RIP));
                return;
        }
        if (((q >> 8) & 15) == 4)
                vmwrite(VMCS_GUEST_RSP, rsp);
        skip_insn();
}

/*
 * XSETBV always exits on VMX and Keel executes it in root mode, where a value the CPU refuses
 * would fault inside Keel: x86_xcr0_valid applies every rule the CPU does, against the
 * components the guest's CPUID.(EAX=0xD,ECX=0) reports (the host's without MPX's), and a
 * refused value is the guest's #GP. (On SVM XSETBV is not intercepted: the CPU checks it in the
 * guest.)
 */
static void handle_xsetbv(struct vcpu *vcpu)
{
        struct x86_gprs *g = &vcpu->arch.gprs;
        uint64_t v = (g->rdx << 32) | (uint32_t)g->rax, supported;
        uint32_t r[4];

        x86_cpuid(0xd, 0, r);
        x86_cpuid_policy(0xd, 0, r, &vcpu->arch.cpuid, r);
        supported = r[0] | (uint64_t)r[3] << 32;
        if ((uint32_t)g->rcx != 0 || guest_cpl() != 0 || !x86_xcr0_valid(v, supported)) {
                inject_exception(X86_VEC_GP, true, 0);
                return;
        }
        __asm__ volatile("xsetbv" ::"c"(0), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
        skip_insn();
}

static void handle_ept_violation(struct vcpu *vcpu, uint64_t q)
{
        uint64_t addr = vmread(VMCS_GUEST_PHYS_ADDR);
        const char *what = (q & 4) ? "instruction fetch" : (q & 2) ? "write" : "read";

        if (!gmem_contains(&vcpu->vm->mem, gpa(addr), 1)) {
                struct x86_guest_ctx ctx = guest_ctx_segs();
                uint64_t rsp = vmread(VMCS_GUEST_RSP), rip = ctx.rip;
                uint64_t rflags = vmread(VMCS_GUEST_RFLAGS);
                /* Linear address valid (bit 7) but not its translation (bit 8): a page walk. */
                bool in_walk = (q & (1u << 7)) && !(q & (1u << 8));

                if (!(q & 4) &&
                    x86_emulate_mmio_exit(vcpu, &ctx, addr, in_walk, &rsp, &rip, &rflags)) {
                        uint64_t blocking = vmread(VMCS_GUEST_INTERRUPTIBILITY);

                        vmwrite(VMCS_GUEST_RSP, rsp);
                        vmwrite(VMCS_GUEST_RIP, rip);
                        vmwrite(VMCS_GUEST_RFLAGS, rflags);
                        /* Completed: STI/MOV-SS blocking ends with it (as in skip_insn);
                         * a MOV SS starts its own. */
                        if (rip != ctx.rip)
                                blocking &= ~3ull;
                        if (vcpu->arch.ss_shadow)
                                blocking |= 2;
                        vcpu->arch.ss_shadow = false;
                        vmwrite(VMCS_GUEST_INTERRUPTIBILITY, blocking);
                        return;
                }
                x86_stop_outside_ram(vcpu, what, in_walk, addr, ctx.rip);
                return;
        }
        vm_stop(vcpu->vm, VM_STOP_UNHANDLED,
                "EPT violation inside RAM at %#llx (qualification %#llx, rip %#llx)",
                (unsigned long long)addr, (unsigned long long)q,
                (unsigned long long)vmread(VMCS_GUEST_RIP));
}

/* Which guest-state field a failed entry most likely tripped over (vmx_caps.c's checks). */
static void report_bad_guest_state(struct vcpu *vcpu, uint32_t reason)
{
        struct vmx_guest_state g = {
            .cr0 = vmread(VMCS_GUEST_CR0),
            .cr4 = vmread(VMCS_GUEST_CR4),
            .efer = vmread(VMCS_GUEST_EFER),
            .rflags = vmread(VMCS_GUEST_RFLAGS),
            .entry_ctls = (uint32_t)vmread(VMCS_ENTRY_CTLS),
            .cs_ar = (uint32_t)vmread(VMCS_GUEST_CS_AR),
            .ss_ar = (uint32_t)vmread(VMCS_GUEST_SS_AR),
            .tr_ar = (uint32_t)vmread(VMCS_GUEST_TR_AR),
            .ldtr_ar = (uint32_t)vmread(VMCS_GUEST_LDTR_AR),
            .cs_sel = (uint16_t)vmread(VMCS_GUEST_CS_SEL),
            .ss_sel = (uint16_t)vmread(VMCS_GUEST_SS_SEL),
            .tr_sel = (uint16_t)vmread(VMCS_GUEST_TR_SEL),
            .activity = (uint32_t)vmread(VMCS_GUEST_ACTIVITY),
        };
        const char *rule, *field = vmx_check_guest_state(&g, &caps, &rule);

        vm_stop(
            vcpu->vm, VM_STOP_ENTRY_FAILED,
            "VM entry failed: exit reason %u (%s), qualification %#llx; field at fault: %s%s%s%s",
            reason & 0xffff,
            (reason & 0xffff) == VMX_EXIT_BAD_GUEST      ? "invalid guest state"
            : (reason & 0xffff) == VMX_EXIT_BAD_MSR_LOAD ? "MSR loading"
                                                         : "machine check",
            (unsigned long long)vmread(VMCS_EXIT_QUALIFICATION),
            field ? field : "none of those Keel checks", field ? " (" : "", field ? rule : "",
            field ? ")" : "");
}

/*
 * The slice's end as a VMX-preemption timer count: the host tick's exit ends the slice too,
 * but a guest must not keep a CPU past its slice if that tick does not arrive.
 */
static void arm_preempt_timer(struct vcpu *vcpu)
{
        uint64_t now = x86_rdtsc(),
                 left = vcpu->arch.deadline > now ? vcpu->arch.deadline - now : 0;

        left >>= caps.preempt_shift;
        vmwrite(VMCS_GUEST_PREEMPT_TIMER, left > 0xffffffffull ? 0xffffffffull : left);
}

/*
 * Keel completed an instruction for a guest that single-steps (RFLAGS.TF): the CPU delivers
 * the #DB it would have raised after it (DR6.BS) right after VM entry, from the pending debug
 * exceptions field (SDM vol. 3 17.3.1.4, 27.7.3).
 */
static __attribute__((noinline, cold)) void single_step_trap(void)
{
        vmwrite(VMCS_GUEST_PENDING_DBG, vmread(VMCS_GUEST_PENDING_DBG) | X86_DR6_BS);
}

/* Make vCPU `vcpu`'s VMCS current on this CPU, and clear it again (in memory, off the CPU). */
static void vmcs_load(struct vcpu *vcpu)
{
        if (!vmptrld(hpa_raw(vcpu->arch.vmcb_pa)))
                panic("VMPTRLD of vCPU %u's VMCS failed", vcpu->id);
}

static void vmcs_clear(struct vcpu *vcpu)
{
        if (!vmclear(hpa_raw(vcpu->arch.vmcb_pa)))
                panic("VMCLEAR of vCPU %u's VMCS failed", vcpu->id);
}

/*
 * gdb (vmm/gdb.h) on VT-x. The registers: a vCPU's VMCS is clear between its runs
 * (vmx_vcpu_run), so the boot CPU, which calls this with the vCPU off every CPU and no VMCS
 * of its own current, loads it, reads or writes the fields and clears it again.
 */
static void vmx_get_state(struct vmcb_save *v);

static void vmx_debug_state(struct vcpu *vcpu, struct x86_debug_state *st, bool write)
{
        struct vmcb_save v;

        vmcs_load(vcpu);
        if (write) {
                vmwrite(VMCS_GUEST_RSP, st->rsp);
                vmwrite(VMCS_GUEST_RIP, st->rip);
                vmwrite(VMCS_GUEST_RFLAGS, st->rflags);
        } else {
                vmx_get_state(&v);
                x86_debug_from_save(&v, st);
        }
        vmcs_clear(vcpu);
}

/*
 * Snapshots (x86_snap.h, docs/snapshot.md): the VMCS in SVM's form. Segment access rights
 * become the VMCB's attribute (an unusable segment: P clear), CR0/CR4 what the guest reads
 * (the read shadows for Keel's bits), the interrupt shadow int_state bit 0 (MOV SS's a flag),
 * virtual-NMI blocking the NMI flag with SVM's IRET intercept, the entry's event SVM's
 * event_inj (error code in bits 32-63, a software event's instruction length in 12-15); DR6,
 * CR2 and the SYSCALL MSRs, which Keel switches on VT-x, go into the save area too. Like
 * vmx_debug_state, on the boot CPU with the vCPU off every CPU.
 */
#define SNAP_SEG(n, name)                                                            \
        {VMCS_GUEST_ES_SEL + 2 * (n), offsetof(struct vmcb_save, name.selector)},    \
            {VMCS_GUEST_ES_LIMIT + 2 * (n), offsetof(struct vmcb_save, name.limit)}, \
        {                                                                            \
                VMCS_GUEST_ES_BASE + 2 * (n), offsetof(struct vmcb_save, name.base)  \
        }
/* Fields copied as they are: as many bytes as the field's width (encoding bits 14:13). */
static const struct {
        uint16_t field, off;
} snap_fields[] = {
    SNAP_SEG(0, es),
    SNAP_SEG(1, cs),
    SNAP_SEG(2, ss),
    SNAP_SEG(3, ds),
    SNAP_SEG(4, fs),
    SNAP_SEG(5, gs),
    SNAP_SEG(6, ldtr),
    SNAP_SEG(7, tr),
    {VMCS_GUEST_GDTR_BASE, offsetof(struct vmcb_save, gdtr.base)},
    {VMCS_GUEST_GDTR_LIMIT, offsetof(struct vmcb_save, gdtr.limit)},
    {VMCS_GUEST_IDTR_BASE, offsetof(struct vmcb_save, idtr.base)},
    {VMCS_GUEST_IDTR_LIMIT, offsetof(struct vmcb_save, idtr.limit)},
    {VMCS_GUEST_CR3, offsetof(struct vmcb_save, cr3)},
    {VMCS_GUEST_DR7, offsetof(struct vmcb_save, dr7)},
    {VMCS_GUEST_RIP, offsetof(struct vmcb_save, rip)},
    {VMCS_GUEST_RSP, offsetof(struct vmcb_save, rsp)},
    {VMCS_GUEST_SYSENTER_CS, offsetof(struct vmcb_save, sysenter_cs)},
    {VMCS_GUEST_SYSENTER_ESP, offsetof(struct vmcb_save, sysenter_esp)},
    {VMCS_GUEST_SYSENTER_EIP, offsetof(struct vmcb_save, sysenter_eip)},
    {VMCS_GUEST_DEBUGCTL, offsetof(struct vmcb_save, dbgctl)},
};

static size_t field_bytes(unsigned field)
{
        unsigned w = field >> 13 & 3;

        return w == 0 ? 2 : w == 2 ? 4 : 8;
}

/* The save area's ES CS SS DS FS GS LDTR TR, in the VMCS's order of its segment fields. */
static const struct vmcb_seg *snap_seg(const struct vmcb_save *v, unsigned i)
{
        return i < 6 ? &v->es + i : i == 6 ? &v->ldtr : &v->tr;
}

/* The guest's CR0 or CR4 as it reads them: Keel's bits from the read shadow. */
static uint64_t cr_seen(enum vmcs_field cr, enum vmcs_field mask, enum vmcs_field shadow)
{
        uint64_t m = vmread(mask);

        return (vmread(cr) & ~m) | (vmread(shadow) & m);
}

/*
 * Write the guest state v (the VMCB's form: x86_snap.h) into the current VMCS, with RFLAGS
 * `rflags`, interruptibility `intr`, the entry's event `ev` (SVM's event_inj, a software
 * event's length in bits 12-15), pending debug exceptions `pdbg` and the vCPU's TSC offset.
 */
static void vmx_put_state(struct vcpu *vcpu, const struct vmcb_save *v, uint64_t rflags,
                          uint64_t intr, uint64_t ev, uint64_t pdbg)
{
        uint64_t efer = v->efer & ~X86_EFER_SVME, x;

        for (unsigned i = 0; i < ARRAY_SIZE(snap_fields); i++) {
                x = 0;
                memcpy(&x, (const uint8_t *)v + snap_fields[i].off,
                       field_bytes(snap_fields[i].field));
                vmwrite(snap_fields[i].field, x);
        }
        for (unsigned i = 0; i < 8; i++) {
                unsigned attr = snap_seg(v, i)->attrib;

                vmwrite(VMCS_GUEST_ES_AR + 2 * i, vmx_ar((uint16_t)attr) | (~attr & 0x80) << 9);
        }
        vmwrite(VMCS_CR0_SHADOW, v->cr0);
        vmwrite(VMCS_GUEST_CR0, (v->cr0 | caps.cr0_fixed0) & caps.cr0_fixed1);
        vmwrite(VMCS_CR4_SHADOW, v->cr4);
        vmwrite(VMCS_GUEST_CR4, (v->cr4 | caps.cr4_fixed0) & caps.cr4_fixed1);
        vmwrite(VMCS_GUEST_EFER, efer);
        vmwrite(VMCS_ENTRY_CTLS, (efer & X86_EFER_LMA) ? caps.entry | ENTRY_IA32E : caps.entry);
        vmwrite(VMCS_GUEST_RFLAGS, rflags);
        if (caps.entry & ENTRY_LOAD_PAT)
                vmwrite(VMCS_GUEST_PAT, v->g_pat);
        vmwrite(VMCS_GUEST_INTERRUPTIBILITY, intr);
        vmwrite(VMCS_GUEST_ACTIVITY, 0);
        vmwrite(VMCS_GUEST_PENDING_DBG, pdbg);
        vmwrite(VMCS_ENTRY_INTR_INFO, (uint32_t)ev & (0x7ff | INTR_INFO_VALID));
        vmwrite(VMCS_ENTRY_EXC_ERROR, ev >> 32);
        vmwrite(VMCS_ENTRY_INSN_LEN, ev >> 12 & 15);
        vmwrite(VMCS_TSC_OFFSET, vcpu->arch.tsc_offset);
        /* The windows are asked for again before each entry (vmx_inject_irq). */
        vmwrite(VMCS_PROC_CTLS, vmread(VMCS_PROC_CTLS) & ~(PROC_INTR_WINDOW | PROC_NMI_WINDOW));
}

/* The current VMCS's guest state in the VMCB's form (x86_snap.h). */
static void vmx_get_state(struct vmcb_save *v)
{
        uint64_t x;

        for (unsigned i = 0; i < ARRAY_SIZE(snap_fields); i++) {
                x = vmread(snap_fields[i].field);
                memcpy((uint8_t *)v + snap_fields[i].off, &x, field_bytes(snap_fields[i].field));
        }
        for (unsigned i = 0; i < 8; i++) {
                uint32_t ar = (uint32_t)vmread(VMCS_GUEST_ES_AR + 2 * i);

                ((struct vmcb_seg *)snap_seg(v, i))->attrib =
                    (uint16_t)(((ar & 0xff) | (ar >> 4 & 0xf00)) &
                               ((ar & 1u << 16) ? ~0x80u : ~0u));
        }
        v->cpl = v->ss.attrib >> 5 & 3;
        v->efer = vmread(VMCS_GUEST_EFER) | X86_EFER_SVME;
        v->cr0 = cr_seen(VMCS_GUEST_CR0, VMCS_CR0_MASK, VMCS_CR0_SHADOW);
        v->cr4 = cr_seen(VMCS_GUEST_CR4, VMCS_CR4_MASK, VMCS_CR4_SHADOW);
        v->rflags = vmread(VMCS_GUEST_RFLAGS);
        v->g_pat = (caps.entry & ENTRY_LOAD_PAT) ? vmread(VMCS_GUEST_PAT) : X86_PAT_RESET;
}

__attribute__((cold)) void vmx_snap_save(struct vcpu *vcpu, struct x86_vcpu_snap *s)
{
        struct vcpu_arch *a = &vcpu->arch;
        struct vmcb_save *v = &s->save;
        uint64_t intr, info;

        vmcs_load(vcpu);
        vmx_get_state(v);
        v->rax = a->gprs.rax;
        v->dr6 = a->swregs.dr6;
        v->cr2 = a->swregs.cr2;
        v->kernel_gs_base = a->swregs.kernel_gs_base;
        v->star = a->swregs.star;
        v->lstar = a->swregs.lstar;
        v->cstar = a->swregs.cstar;
        v->sfmask = a->swregs.sfmask;
        intr = vmread(VMCS_GUEST_INTERRUPTIBILITY);
        s->int_state = (intr & 3) != 0;
        s->flags &= ~(1u << F_NMI_BLOCKED);
        s->flags |= (uint32_t)(intr >> 1 & 1) << F_SHADOW_MOVSS |
                    (uint32_t)(intr >> 3 & 1) << F_NMI_BLOCKED |
                    ((uint32_t)vmread(VMCS_GUEST_PENDING_DBG) & SNAP_PDBG_MASK) << F_PDBG;
        s->intercept1 = (intr & 8) ? SVM_INTERCEPT_IRET : 0; /* SVM waits for the IRET so */
        info = vmread(VMCS_ENTRY_INTR_INFO);
        if (info & INTR_INFO_VALID) {
                s->event_inj = info & (0x7ff | INTR_INFO_VALID);
                if (info & INTR_INFO_ERR_VALID)
                        s->event_inj |= vmread(VMCS_ENTRY_EXC_ERROR) << 32;
                if ((info & INTR_TYPE_MASK) >= INTR_TYPE_SW_INT)
                        s->event_inj |= (vmread(VMCS_ENTRY_INSN_LEN) & 15) << 12;
        }
        /* The TPR is the LAPIC's on VT-x: SVM's V_TPR as its entries set it. */
        s->v_tpr = (uint8_t)(vlapic_tpr(&a->lapic) >> 4);
        s->int_ctl = s->v_tpr;
        vmcs_clear(vcpu);
}

__attribute__((cold)) int vmx_snap_load(struct vcpu *vcpu, struct snap_rd *r,
                                        const struct x86_vcpu_snap *s, const uint8_t *fpu)
{
        struct vcpu_arch *a = &vcpu->arch;
        const struct vmcb_save *v = &s->save;
        uint64_t ev = s->event_inj, type = ev >> 8 & 7, len = ev >> 12 & 15, rflags = v->rflags;
        uint64_t efer = v->efer & ~X86_EFER_SVME, intr = 0, x, pdbg;
        bool iret_ran = (s->flags >> F_NMI_IRET_WAIT & 1) && v->rip != s->nmi_iret_rip;
        unsigned id = vcpu->id;

        if ((s->int_ctl & 0xf) != s->v_tpr && vcpu->vm->arch.platform)
                return snap_fail(r,
                                 "vCPU %u: taken on AMD SVM with a CR8 write its LAPIC has not "
                                 "seen (resume the VM a moment and take it again)",
                                 id);
        if ((ev & SVM_EVT_VALID) &&
            ((type >= 4) != (len != 0) || ((ev & SVM_EVT_ERR_VALID) && type != 3) ||
             (type == 2 && (ev & 0xff) != 2)))
                return snap_fail(r, "vCPU %u: pending event %#llx that VT-x cannot inject", id,
                                 (unsigned long long)ev);
        if ((v->cr0 >> 32) || (v->cr4 & (X86_CR4_VMXE | ~caps.cr4_fixed1)) ||
            (!caps.unrestricted && (~v->cr0 & (X86_CR0_PE | X86_CR0_PG))) ||
            ((v->cr0 & X86_CR0_PG) && !(v->cr0 & X86_CR0_PE)) ||
            (!(efer & X86_EFER_LMA) != !((efer & X86_EFER_LME) && (v->cr0 & X86_CR0_PG))))
                return snap_fail(r,
                                 "vCPU %u: CR0 %#llx, CR4 %#llx, EFER %#llx this CPU's VT-x "
                                 "cannot enter",
                                 id, (unsigned long long)v->cr0, (unsigned long long)v->cr4,
                                 (unsigned long long)efer);
        x = v->es.attrib | v->cs.attrib | v->ss.attrib | v->ds.attrib | v->fs.attrib |
            v->gs.attrib | v->ldtr.attrib | v->tr.attrib;
        if ((v->ss.attrib >> 5 & 3) != v->cpl || (v->dbgctl & ~3ull) || (x >> 12) ||
            (!(caps.entry & ENTRY_LOAD_PAT) && v->g_pat != X86_PAT_RESET))
                return snap_fail(r,
                                 "vCPU %u: CPL %u with SS.DPL %u, segment attributes, DEBUGCTL "
                                 "or PAT VT-x cannot hold",
                                 id, v->cpl, v->ss.attrib >> 5 & 3);
        if (!r->apply)
                return 0;
        x86_snap_apply(vcpu, r, s, fpu);
        /* SVM's NMI state: blocked until the IRET, unless it ran; Keel's own TF of a step
         * over it goes. An NMI waiting for its injection blocks NMIs only once injected. */
        a->nmi_blocked = (s->flags >> F_NMI_BLOCKED & 1) && !iret_ran && caps.virt_nmi &&
                         !((ev & SVM_EVT_VALID) && type == 2);
        if ((s->flags >> F_NMI_STEP & 1) && !(s->flags >> F_NMI_STEP_TF & 1))
                rflags &= ~X86_RFLAGS_TF;
        a->nmi_iret_wait = a->nmi_step = a->nmi_step_tf = false;
        a->gprs.rax = v->rax;
        a->swregs.dr6 = v->dr6;
        a->swregs.cr2 = v->cr2;
        a->swregs.kernel_gs_base = v->kernel_gs_base;
        a->swregs.star = v->star;
        a->swregs.lstar = v->lstar;
        a->swregs.cstar = v->cstar;
        a->swregs.sfmask = v->sfmask;
        /* The shadow: STI's needs IF, and an injected interrupt or NMI ends it first. */
        if ((s->int_state & SVM_INT_SHADOW) && !((ev & SVM_EVT_VALID) && type != 3))
                intr = ((s->flags >> F_SHADOW_MOVSS & 1) || !(rflags & X86_RFLAGS_IF)) ? 2 : 1;
        /* Under a shadow the entry wants BS pending exactly when TF traps (SDM 26.3.1.5). */
        pdbg = s->flags >> F_PDBG;
        if (intr)
                pdbg = (pdbg & ~X86_DR6_BS) |
                       ((rflags & X86_RFLAGS_TF) && !(v->dbgctl & 2) ? X86_DR6_BS : 0);
        vmcs_load(vcpu);
        vmx_put_state(vcpu, v, rflags, intr | (a->nmi_blocked ? 8 : 0), ev, pdbg);
        vmcs_clear(vcpu);
        return 0;
}

/*
 * While a session is on, #BP and #DB exit (the exception bitmap) and a vCPU gdb steps runs
 * with RFLAGS.TF; set at the start of a run only, so exits pay nothing for it.
 */
static __attribute__((noinline, cold)) void vmx_debug_entry(struct vcpu *vcpu)
{
        bool on = vcpu->vm->debug;
        uint64_t flags = vmread(VMCS_GUEST_RFLAGS), dr7 = vmread(VMCS_GUEST_DR7);
        int hw = x86_gdb_hw_switch(vcpu, &dr7);

        /*
         * gdb's hardware breakpoints (x86_gdb_hw_switch): its DR7 in the VMCS, its DR0-DR3 in
         * the CPU for the run; the guest's MOV DR exits while they are loaded (vmx_guest_mov_dr),
         * unless the CPU forces MOV-DR exiting.
         */
        if (hw) {
                uint64_t proc = vmread(VMCS_PROC_CTLS);

                vmwrite(VMCS_GUEST_DR7, dr7);
                vmwrite(VMCS_PROC_CTLS,
                        hw > 0 ? proc | PROC_MOV_DR : proc & (~PROC_MOV_DR | caps.proc));
        }
        vcpu->arch.gdb_armed = on;
        vmwrite(VMCS_EXCEPTION_BITMAP, on ? 1u << X86_VEC_DB | 1u << X86_VEC_BP : 0);
        if (on && vcpu->debug_step && !(flags & X86_RFLAGS_TF)) {
                vmwrite(VMCS_GUEST_RFLAGS, flags | X86_RFLAGS_TF);
                vcpu->arch.gdb_tf = true;
        }
        if (!on && vcpu->arch.gdb_tf) {
                vmwrite(VMCS_GUEST_RFLAGS, flags & ~X86_RFLAGS_TF);
                vcpu->arch.gdb_tf = false;
        }
}

/*
 * The guest's MOV to or from a debug register while gdb's breakpoints are loaded (MOV-DR
 * exiting is on only then; the exit qualification gives the register, the direction and the
 * general-purpose register, SDM 27.2.1, "Exit Qualification for MOV DR"): DR0-DR3 and DR7 from the
 * values kept aside (x86_gdb_guest_dr), DR6 the guest's own in the CPU (VT-x reports gdb's hits in
 * the exit qualification, never in DR6). DR4 and DR5 exit only as DR6 and DR7 (CR4.DE clear; with
 * it set the CPU raised #UD first).
 */
static __attribute__((noinline, cold)) void vmx_guest_mov_dr(struct vcpu *vcpu)
{
        uint64_t q = vmread(VMCS_EXIT_QUALIFICATION), rsp = vmread(VMCS_GUEST_RSP), v;
        uint64_t *reg = gpr(vcpu, (q >> 8) & 15, &rsp);
        unsigned dr = q & 7;
        bool write = !(q & 16), wide = vmread(VMCS_GUEST_CS_AR) & (1u << 13); /* CS.L */

        if (dr >= 4)
                dr |= 2;
        if (!vcpu->arch.gdb_hw) { /* a CPU that forces MOV-DR exiting: none is known */
                vm_stop(vcpu->vm, VM_STOP_UNHANDLED, "MOV DR exit %#llx without gdb's breakpoints",
                        (unsigned long long)q);
                return;
        }
        if (dr == 6 && !write) {
                __asm__ volatile("mov %%dr6, %0" : "=r"(v));
                *reg = wide ? v : (uint32_t)v;
        } else if (dr == 6 && !((v = wide ? *reg : (uint32_t)*reg) >> 32)) {
                __asm__ volatile("mov %0, %%dr6" ::"r"(v));
        } else if (dr == 6 || !x86_gdb_guest_dr(vcpu, dr, reg, write, wide)) {
                inject_exception(X86_VEC_GP, true, 0); /* bits 63:32 of DR6 or DR7 */
                return;
        }
        vmwrite(VMCS_GUEST_RSP, rsp);
        skip_insn();
}

/*
 * An exception exit while gdb has the VM: INT3 (RIP at it) stops the VM if it is one of gdb's
 * breakpoints, else goes to the guest as the software exception it was; a #DB (DR6's bits in
 * the qualification, SDM 27.2.1: the CPU did not write DR6) is a hit of gdb's hardware
 * breakpoints or ends gdb's step, else goes to the guest with its DR6 updated as the CPU
 * would have. False for anything else (an NMI).
 */
static __attribute__((noinline, cold)) bool vmx_debug_exc(struct vcpu *vcpu)
{
        uint32_t info = (uint32_t)vmread(VMCS_EXIT_INTR_INFO);
        uint64_t q, dr6;
        bool hw, rf = false;

        if ((info & INTR_TYPE_MASK) == INTR_TYPE_NMI)
                return false;
        if ((info & 0xff) == X86_VEC_BP) {
                if (vm_debug_break(vcpu, vmread(VMCS_GUEST_CS_BASE) + vmread(VMCS_GUEST_RIP)))
                        return true;
                vmwrite(VMCS_ENTRY_INTR_INFO, X86_VEC_BP | INTR_TYPE_SW_EXC | INTR_INFO_VALID);
                vmwrite(VMCS_ENTRY_INSN_LEN, vmread(VMCS_EXIT_INSN_LEN));
                return true;
        }
        if ((info & 0xff) != X86_VEC_DB)
                return false;
        q = vmread(VMCS_EXIT_QUALIFICATION);
        /* One of gdb's hardware breakpoints (B0-B3 of its slots), or the end of its step. An
         * instruction breakpoint is a fault: the guest resumes with RF set to run it. */
        hw = vcpu->arch.gdb_hw && x86_gdb_db_hit(vcpu, &q, &rf);
        if (hw || (vcpu->debug_step && (q & X86_DR6_BS))) {
                uint64_t flags = vmread(VMCS_GUEST_RFLAGS) | (rf ? X86_RFLAGS_RF : 0);

                if (vcpu->arch.gdb_tf)
                        flags &= ~X86_RFLAGS_TF;
                vmwrite(VMCS_GUEST_RFLAGS, flags);
                vcpu->arch.gdb_tf = false;
                if (!hw)
                        vm_debug_stepped(vcpu);
                return true;
        }
        /* The guest's DR6 is in the CPU for the run (arch/swregs.h). */
        __asm__ volatile("mov %%dr6, %0" : "=r"(dr6));
        dr6 = (dr6 & ~0xfull) | (q & 0x600f);
        __asm__ volatile("mov %0, %%dr6" ::"r"(dr6));
        inject_exception(X86_VEC_DB, false, 0);
        return true;
}

/* The generic reason of a basic exit reason: the same classes as vmx_handle_exit counts. */
static inline enum exit_reason vmx_exit_reason(uint32_t reason)
{
        if (reason & VMX_EXIT_ENTRY_FAIL)
                return EXIT_OTHER;
        switch (reason & 0xffff) {
        case VMX_EXIT_CPUID:
                return EXIT_CPUID;
        case VMX_EXIT_VMCALL:
                return EXIT_HYPERCALL;
        case VMX_EXIT_IO:
                return EXIT_IO;
        case VMX_EXIT_RDMSR:
        case VMX_EXIT_WRMSR:
                return EXIT_MSR;
        case VMX_EXIT_EPT_VIOLATION:
                return EXIT_MMIO;
        case VMX_EXIT_EXT_INTR:
        case VMX_EXIT_EXCEPTION_NMI:
        case VMX_EXIT_PREEMPT_TIMER:
                return EXIT_INTR;
        case VMX_EXIT_INTR_WINDOW:
        case VMX_EXIT_NMI_WINDOW:
                return EXIT_IRQ_WINDOW;
        case VMX_EXIT_HLT:
                return EXIT_HALT;
        case VMX_EXIT_INVD:
        case VMX_EXIT_WBINVD:
                return EXIT_CACHE;
        default:
                return EXIT_OTHER;
        }
}

/* Statistics and trace of the exit (vmm/exitstats.h), at the end of its handling. */
static void vmx_exit_done(struct vcpu *vcpu, uint32_t reason, uint64_t at, uint64_t rip)
{
        enum exit_reason r = vmx_exit_reason(reason);
        uint64_t cost = x86_rdtsc() - at;

        if (exit_stats_end(&vcpu->stats, r, cost))
                exit_trace_record(&vcpu->stats, r, at, cost, rip, vmread(VMCS_EXIT_QUALIFICATION),
                                  reason & 0xffff);
}

static void vmx_handle_exit(struct vcpu *vcpu, uint32_t reason)
{
        uint64_t *count = vcpu->stats.count;
        uint32_t idt = (uint32_t)vmread(VMCS_IDT_VECTORING_INFO);
        uint64_t rip = vmread(VMCS_GUEST_RIP);

        /* An event whose delivery the exit interrupted is delivered again on the next entry. */
        if (idt & INTR_INFO_VALID) {
                vmwrite(VMCS_ENTRY_INTR_INFO, idt & ~(1u << 12));
                if (idt & INTR_INFO_ERR_VALID)
                        vmwrite(VMCS_ENTRY_EXC_ERROR, vmread(VMCS_IDT_VECTORING_ERROR));
                vmwrite(VMCS_ENTRY_INSN_LEN, vmread(VMCS_EXIT_INSN_LEN));
        }
        if (reason & VMX_EXIT_ENTRY_FAIL) {
                count[X86_EXIT_OTHER]++;
                report_bad_guest_state(vcpu, reason);
                return;
        }
        switch (reason & 0xffff) {
        case VMX_EXIT_CPUID:
                count[X86_EXIT_CPUID]++;
                skip_insn();
                /* The guest's CR4: the read shadow holds only the bits Keel owns (the
                 * mask); OSXSAVE and OSPKE, which CPUID reflects, are the guest's own. */
                x86_emulate_cpuid(vcpu, (vmread(VMCS_GUEST_CR4) & ~vmread(VMCS_CR4_MASK)) |
                                            (vmread(VMCS_CR4_SHADOW) & vmread(VMCS_CR4_MASK)));
                break;
        case VMX_EXIT_VMCALL:
                count[X86_EXIT_HYPERCALL]++;
                if (guest_cpl() != 0) {
                        x86_hypercall(vcpu, guest_cpl()); /* stops the VM */
                        break;
                }
                skip_insn();
                x86_hypercall(vcpu, 0);
                break;
        case VMX_EXIT_IO:
                count[X86_EXIT_IO]++;
                handle_io(vcpu, vmread(VMCS_EXIT_QUALIFICATION));
                break;
        case VMX_EXIT_RDMSR:
        case VMX_EXIT_WRMSR:
                count[X86_EXIT_MSR]++;
                handle_msr(vcpu, (reason & 0xffff) == VMX_EXIT_WRMSR);
                break;
        case VMX_EXIT_EPT_VIOLATION:
                count[X86_EXIT_MMIO]++;
                handle_ept_violation(vcpu, vmread(VMCS_EXIT_QUALIFICATION));
                break;
        case VMX_EXIT_EPT_MISCONFIG:
                count[X86_EXIT_OTHER]++;
                vm_stop(vcpu->vm, VM_STOP_UNHANDLED,
                        "EPT misconfiguration at guest-physical %#llx (a Keel bug in its EPT "
                        "entries; rip %#llx)",
                        (unsigned long long)vmread(VMCS_GUEST_PHYS_ADDR),
                        (unsigned long long)vmread(VMCS_GUEST_RIP));
                break;
        case VMX_EXIT_EXCEPTION_NMI:
                if (__builtin_expect(vcpu->arch.gdb_armed, 0) && vmx_debug_exc(vcpu)) {
                        count[X86_EXIT_OTHER]++;
                        break;
                }
                /* fall through */
        case VMX_EXIT_EXT_INTR:
                count[X86_EXIT_INTR]++;
                /* Physical events are Keel's: let them reach its IDT, then resume the guest. */
                if ((reason & 0xffff) == VMX_EXIT_EXCEPTION_NMI &&
                    ((uint32_t)vmread(VMCS_EXIT_INTR_INFO) & INTR_TYPE_MASK) == INTR_TYPE_NMI)
                        __asm__ volatile("int $2");
                x86_host_interrupt(vcpu);
                break;
        case VMX_EXIT_PREEMPT_TIMER:
                count[X86_EXIT_INTR]++;   /* Keel's own timer, like the host tick */
                x86_host_interrupt(vcpu); /* the slice check, as at the tick */
                if (!vcpu->arch.leave)
                        arm_preempt_timer(vcpu); /* it counted only while the guest ran */
                break;
        case VMX_EXIT_INTR_WINDOW:
                count[X86_EXIT_IRQ_WINDOW]++;
                vmwrite(VMCS_PROC_CTLS, vmread(VMCS_PROC_CTLS) & ~PROC_INTR_WINDOW);
                break;
        case VMX_EXIT_NMI_WINDOW:
                count[X86_EXIT_IRQ_WINDOW]++;
                /* The guest can take an NMI now: vmx_inject_nmi does it on entry. */
                vmwrite(VMCS_PROC_CTLS, vmread(VMCS_PROC_CTLS) & ~PROC_NMI_WINDOW);
                break;
        case VMX_EXIT_HLT:
                count[X86_EXIT_HLT]++;
                skip_insn();
                /* Whether an NMI may wake it (x86_halt, arch_vcpu_ready). */
                vcpu->arch.nmi_blocked = (vmread(VMCS_GUEST_INTERRUPTIBILITY) & 8) != 0;
                if (x86_halt(vcpu, vmread(VMCS_GUEST_RFLAGS) & X86_RFLAGS_IF))
                        break;
                if (vcpu->vm->state != VM_RUNNING)
                        break;
                x86_stop_halted(vcpu, vmread(VMCS_GUEST_RIP),
                                vmread(VMCS_GUEST_RFLAGS) & X86_RFLAGS_IF);
                break;
        case VMX_EXIT_TRIPLE_FAULT:
                count[X86_EXIT_OTHER]++;
                vm_stop(vcpu->vm, VM_STOP_TRIPLE_FAULT, "triple fault at rip %#llx",
                        (unsigned long long)vmread(VMCS_GUEST_RIP));
                break;
        case VMX_EXIT_CR_ACCESS:
                count[X86_EXIT_OTHER]++;
                handle_cr(vcpu, vmread(VMCS_EXIT_QUALIFICATION));
                break;
        case VMX_EXIT_DR_ACCESS:
                count[X86_EXIT_OTHER]++;
                vmx_guest_mov_dr(vcpu);
                break;
        case VMX_EXIT_XSETBV:
                count[X86_EXIT_OTHER]++;
                handle_xsetbv(vcpu);
                break;
        case VMX_EXIT_INVD:
        case VMX_EXIT_WBINVD:
                /* No device of the VM does DMA: nothing to flush (docs/x86-state.md). */
                count[X86_EXIT_CACHE]++;
                skip_insn();
                break;
        case VMX_EXIT_RDPMC:
                count[X86_EXIT_OTHER]++;
                inject_exception(X86_VEC_GP, true, 0); /* no PMU is exposed */
                break;
        case VMX_EXIT_GETSEC:
        case VMX_EXIT_VMCLEAR ... VMX_EXIT_VMXON:
        case VMX_EXIT_INVEPT:
        case VMX_EXIT_INVVPID:
        case VMX_EXIT_VMFUNC:
        case VMX_EXIT_RDRAND:
        case VMX_EXIT_RDSEED:
        case VMX_EXIT_MONITOR:
        case VMX_EXIT_MWAIT:
        case VMX_EXIT_XSAVES:
        case VMX_EXIT_XRSTORS:
                count[X86_EXIT_OTHER]++;
                inject_exception(X86_VEC_UD, false, 0);
                break;
        default:
                count[X86_EXIT_OTHER]++;
                vm_stop(vcpu->vm, VM_STOP_UNHANDLED,
                        "VMX exit reason %u (qualification %#llx) at rip %#llx", reason & 0xffff,
                        (unsigned long long)vmread(VMCS_EXIT_QUALIFICATION),
                        (unsigned long long)vmread(VMCS_GUEST_RIP));
                break;
        }
        /* Moved past an instruction it emulated, with no fault of its own to deliver. */
        if (__builtin_expect((vmread(VMCS_GUEST_RFLAGS) & X86_RFLAGS_TF) != 0, 0) &&
            vmread(VMCS_GUEST_RIP) != rip && !(vmread(VMCS_ENTRY_INTR_INFO) & INTR_INFO_VALID))
                single_step_trap();
}

/*
 * Before an entry: deliver the LAPIC's highest pending vector if the guest can take it now
 * (RFLAGS.IF, no STI/MOV-SS blocking, no event already queued), else ask for an
 * interrupt-window exit at the moment it can.
 */
/*
 * An NMI is pending: with virtual NMIs, inject it when the guest is not blocking NMIs (SDM
 * 24.4.2: blocking by NMI, STI or MOV SS, checked as KVM does since some CPUs refuse NMI
 * injection under STI blocking) and nothing else is queued; otherwise ask for an NMI-window
 * exit. The CPU blocks further NMIs from the injection until the guest's IRET. Without
 * virtual NMIs the NMI stays pending (docs/vmx.md).
 */
static __attribute__((noinline)) void vmx_inject_nmi(struct vcpu *vcpu)
{
        uint64_t block;

        if (!caps.virt_nmi)
                return;
        block = vmread(VMCS_GUEST_INTERRUPTIBILITY);
        if (block & 8) /* blocking by NMI: the guest is handling one */
                x86_nmi_blocked(vcpu);
        if (!(vmread(VMCS_ENTRY_INTR_INFO) & INTR_INFO_VALID) && !(block & 0xb)) {
                if (x86_take_nmi(vcpu))
                        vmwrite(VMCS_ENTRY_INTR_INFO,
                                X86_VEC_NMI | INTR_TYPE_NMI | INTR_INFO_VALID);
                return;
        }
        vmwrite(VMCS_PROC_CTLS, vmread(VMCS_PROC_CTLS) | PROC_NMI_WINDOW);
}

static void vmx_inject_irq(struct vcpu *vcpu)
{
        int vector;

        x86_entry_poll();
        if (x86_nmi_pending(vcpu))
                vmx_inject_nmi(vcpu);
        vector = x86_pending_irq(vcpu);
        if (vector < 0)
                return;
        if (!(vmread(VMCS_ENTRY_INTR_INFO) & INTR_INFO_VALID) &&
            (vmread(VMCS_GUEST_RFLAGS) & X86_RFLAGS_IF) &&
            !(vmread(VMCS_GUEST_INTERRUPTIBILITY) & 3)) {
                vector = x86_irq_injected(vcpu, (uint8_t)vector);
                vmwrite(VMCS_ENTRY_INTR_INFO, (uint32_t)vector | INTR_TYPE_EXT | INTR_INFO_VALID);
                return;
        }
        vmwrite(VMCS_PROC_CTLS, vmread(VMCS_PROC_CTLS) | PROC_INTR_WINDOW);
}

static void vmx_vcpu_run(struct vcpu *vcpu)
{
        struct x86_gprs *g = &vcpu->arch.gprs;
        bool platform = vcpu->vm->arch.platform;

        vmcs_load(vcpu);
        write_host_state(); /* this CPU's GDT, TSS and IDT */
        if (__builtin_expect(vcpu->vm->debug || vcpu->arch.gdb_armed, 0))
                vmx_debug_entry(vcpu);
        /*
         * Entries of an earlier run here may be stale: the vCPU moved (VPID-tagged), or its
         * VM's EPT root is a page an earlier, released VM used as its root on this CPU
         * (EPTP-tagged guest-physical entries; INVEPT at set-up reached only the boot CPU).
         */
        invept_all();
        invvpid_all();
        if (caps.preempt)
                arm_preempt_timer(vcpu);
        while (vcpu->vm->state == VM_RUNNING && !vcpu->arch.leave) {
                uint64_t at, rip;
                uint32_t reason;

                if (platform)
                        vmx_inject_irq(vcpu);
                if (vmx_run_guest(g, vcpu->arch.launched)) {
                        uint32_t err = (uint32_t)vmread(VMCS_INSN_ERROR);

                        vm_stop(vcpu->vm, VM_STOP_ENTRY_FAILED,
                                "%s failed: VM-instruction error %u (%s)",
                                vcpu->arch.launched ? "VMRESUME" : "VMLAUNCH", err,
                                vmx_insn_error_name(err));
                        break;
                }
                at = x86_rdtsc(); /* Keel's handling starts: the exit's cost from here */
                vcpu->arch.launched = true;
                vcpu->exits++; /* the exit cleared VMCS_ENTRY_INTR_INFO's valid bit */
                reason = (uint32_t)vmread(VMCS_EXIT_REASON);
                rip = vmread(VMCS_GUEST_RIP);
                vmx_handle_exit(vcpu, reason);
                vmx_exit_done(vcpu, reason, at, rip);
        }
        /*
         * Leave the VMCS clear (in memory, not active on this CPU), so the next run may load
         * it on any CPU; that run starts with VMLAUNCH.
         */
        vmcs_clear(vcpu);
        vcpu->arch.launched = false;
}

const struct x86_vendor vmx_vendor = {
    .name = "Intel VT-x",
    .probe = vmx_probe,
    .describe = vmx_describe,
    .enable = vmx_enable,
    .second_level = vmx_second_level,
    .vcpu_init = vmx_vcpu_init,
    .vcpu_run = vmx_vcpu_run,
    .vcpu_free = vmx_vcpu_free,
    /* The VMCS holds DR7 only, and of the SYSCALL MSRs none. */
    .swregs = X86_SWREGS_DR0_3 | X86_SWREGS_DR6_CR2 | X86_SWREGS_TSC_AUX | X86_SWREGS_SYSCALL,
    .inject_pf = vmx_inject_pf,
    .debug_state = vmx_debug_state,
    .inject_exc = vmx_inject_exc,
    .seg = vmx_seg,
};
