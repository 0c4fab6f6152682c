/*
 * x86 vCPUs: the MSRs Keel emulates, the same on every vendor (an MSR exit's read or write;
 * docs/x86-interrupts.md for IA32_APIC_BASE and the TSC deadline). Split from vcpu.c so that
 * it is built for size: vcpu.c is on the measured exit path (-O2, docs/benchmarks.md), MSR
 * exits are not.
 */
#include <arch/platform.h>
#include <arch/swregs.h>
#include <arch/x86.h>
#include <arch/x86_checks.h>
#include <arch/x86_vcpu.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <keel/spinlock.h>
#include <vmm/vmm.h>

static void report_msr_once(struct vcpu *vcpu, uint32_t msr, const char *what)
{
        struct vm_arch *a = &vcpu->vm->arch;

        if (!vm_report_seen(a->unknown_msrs, &a->unknown_msr_count, X86_UNCLAIMED_PORTS_LOGGED,
                            msr))
                LOG_DEBUG("vm %s: %s of unknown MSR %#x: #GP injected; reported once per MSR",
                          vcpu->vm->name, what, msr);
}

/*
 * MSRs of the Linux platform (Keel's LAPIC model). Others that Linux reads while it boots are
 * answered with "nothing there" values; writes to those are ignored. Anything else gets #GP.
 */
#define MSR_TSC_DEADLINE 0x6e0u
#define MSR_KVM_PV_EOI   0x4b564d04u /* KVM's PV EOI (platform.c, docs/x86-interrupts.md) */
#define APIC_BASE_ADDR   0xfee00000ull
#define APIC_BASE_EN     (1u << 11) /* xAPIC global enable */
#define APIC_BASE_BSP    (1u << 8)  /* vCPU 0 is the bootstrap processor */

static uint64_t apic_base(const struct vcpu *vcpu)
{
        return APIC_BASE_ADDR | (vcpu->arch.apic_off ? 0 : APIC_BASE_EN) |
               (vcpu->id == 0 ? APIC_BASE_BSP : 0);
}

/*
 * IA32_APIC_BASE: the base stays at 0xfee00000 and x2APIC mode (EXTD) is not offered, so
 * only EN may change. Clearing it resets the LAPIC (SDM 10.4.3; kvm-unit-tests' reset_apic
 * clears and sets it) and, as the SDM says, clears CPUID.1:EDX.APIC until EN is set again;
 * setting it again leaves the reset state (software-disabled until the guest writes SVR).
 * While EN is clear the LAPIC takes no interrupts, IPIs or NMIs and its page reads all ones
 * (platform.c). Anything else: false, and the guest gets #GP: a moved base (Keel does not
 * relocate the LAPIC), EXTD (reserved: CPUID hides x2APIC), a changed BSP flag (fixed: vCPU 0
 * is the BSP), reserved bits (docs/x86-interrupts.md).
 */
static bool apic_base_write(struct vcpu *vcpu, uint64_t val)
{
        struct spin_held h;

        if ((val & ~(uint64_t)APIC_BASE_EN) != (apic_base(vcpu) & ~(uint64_t)APIC_BASE_EN))
                return false;
        h = spin_lock(&vcpu->vm->dev_lock);
        if (!(val & APIC_BASE_EN) && !vcpu->arch.apic_off)
                vlapic_reset(&vcpu->arch.lapic);
        vcpu->arch.apic_off = !(val & APIC_BASE_EN);
        vcpu->arch.lapic.global_off = vcpu->arch.apic_off;
        vcpu->arch.cpuid.lapic = !vcpu->arch.apic_off;
        spin_unlock(h);
        return true;
}

static const uint32_t msrs_read_zero[] = {
    0x0000008b, /* PATCH_LEVEL / BIOS_SIGN_ID */
    0x000000fe, /* MTRRcap: no MTRRs */
    0x00000179, /* MCG_CAP: no machine-check banks */
    0x0000017a, /* MCG_STATUS */
    0x000002ff, /* MTRRdefType */
    0xc0010000, /* PERF_CTL0-3 and PERF_CTR0-3: AMD's legacy counters always exist; */
    0xc0010001, /* Keel's never count (the PMU is not virtualized: CPUID shows no */
    0xc0010002, /* PERFCTR_CORE), kvm-unit-tests clears them at boot */
    0xc0010003, 0xc0010004, 0xc0010005, 0xc0010006, 0xc0010007, 0xc0010010, /* SYSCFG */
    0xc0010015,                                                             /* HWCR */
    0xc0010055, /* INT_PENDING_MSG: Linux checks it for the AMD E400 erratum */
    0xc0010114, /* VM_CR */
    0xc0010140, /* OSVW_ID_LENGTH */
    0xc0010141, /* OSVW_STATUS */
    0xc0011029, /* DE_CFG */
};

static bool msr_reads_zero(uint32_t msr)
{
        for (unsigned i = 0; i < ARRAY_SIZE(msrs_read_zero); i++)
                if (msrs_read_zero[i] == msr)
                        return true;
        return false;
}

/*
 * IA32_MISC_ENABLE (SDM vol. 4, table 2-2), which Linux reads on Intel CPUs (verify_cpu: the
 * XD-disable bit), per vCPU. It starts with fast strings on, branch trace and PEBS
 * unavailable (bits 11, 12, read-only), performance monitoring unavailable (bit 7 clear,
 * read-only: no PMU is exposed). The bits software may change hold what the guest writes, as
 * on the CPU (and in KVM): fast strings (0), TM1 (3), Enhanced SpeedStep (16), ENABLE
 * MONITOR FSM (18), limit CPUID maxval (22), xTPR disable (23), XD bit disable (34). Keel
 * emulates none of their effects: CPUID keeps hiding MONITOR and keeps its maximum leaf,
 * NX stays usable. A write that changes a read-only bit leaves it; reserved bits: #GP.
 */
#define MSR_MISC_ENABLE   0x1a0u
#define MISC_ENABLE_RESET ((1ull << 0) | (1ull << 11) | (1ull << 12))
#define MISC_ENABLE_WRITABLE                                                                     \
        ((1ull << 0) | (1ull << 3) | (1ull << 16) | (1ull << 18) | (1ull << 22) | (1ull << 23) | \
         (1ull << 34))
#define MISC_ENABLE_RO ((1ull << 7) | (1ull << 11) | (1ull << 12))

/* A platform vCPU's IA32_MISC_ENABLE at reset. */
void x86_misc_enable_reset(struct vcpu *vcpu)
{
        vcpu->arch.misc_enable = MISC_ENABLE_RESET;
}

static bool misc_enable_write(struct vcpu *vcpu, uint64_t val)
{
        if (val & ~(MISC_ENABLE_WRITABLE | MISC_ENABLE_RO))
                return false;
        vcpu->arch.misc_enable =
            (val & MISC_ENABLE_WRITABLE) | (vcpu->arch.misc_enable & MISC_ENABLE_RO);
        return true;
}

int x86_msr_read(struct vcpu *vcpu, uint32_t msr, uint64_t *val)
{
        struct vm_arch *a = &vcpu->vm->arch;

        /* Reads pass through; an exit means the CPU has no TSC_AUX (below: #GP). */
        if (msr == MSR_TSC_AUX && x86_swregs_have_tsc_aux()) {
                *val = x86_rdmsr(MSR_TSC_AUX);
                return 0;
        }
        if (a->platform) {
                if (msr == MSR_APIC_BASE) {
                        *val = apic_base(vcpu);
                        return 0;
                }
                if (msr == MSR_TSC_DEADLINE) {
                        struct spin_held h = spin_lock(&vcpu->vm->dev_lock);

                        *val = vlapic_tsc_deadline_read(&vcpu->arch.lapic);
                        spin_unlock(h);
                        return 0;
                }
                if (msr == MSR_MISC_ENABLE) {
                        *val = vcpu->arch.misc_enable;
                        return 0;
                }
                if (msr == MSR_KVM_PV_EOI) {
                        *val = vcpu->arch.lapic.pv_eoi;
                        return 0;
                }
                if (msr_reads_zero(msr)) {
                        *val = 0;
                        return 0;
                }
        }
        report_msr_once(vcpu, msr, "read");
        return -KEEL_EPERM;
}

int x86_msr_write(struct vcpu *vcpu, uint32_t msr, uint64_t val)
{
        struct vm_arch *a = &vcpu->vm->arch;

        /*
         * TSC_AUX, where the CPU has it: bits 63:32 are reserved (#GP; QEMU's TCG and Bochs
         * take them). The CPU holds the guest's TSC_AUX for the whole run (swregs.c).
         */
        if (msr == MSR_TSC_AUX && x86_swregs_have_tsc_aux()) {
                if (!X86_TSC_AUX_VALID(val))
                        return -KEEL_EPERM;
                x86_wrmsr(MSR_TSC_AUX, val);
                return 0;
        }
        if (a->platform) {
                if (msr == MSR_APIC_BASE && apic_base_write(vcpu, val))
                        return 0;
                if (msr == MSR_TSC_DEADLINE) {
                        struct spin_held h = spin_lock(&vcpu->vm->dev_lock);

                        vlapic_tsc_deadline_write(&vcpu->arch.lapic, val);
                        spin_unlock(h);
                        return 0;
                }
                if (msr == MSR_MISC_ENABLE)
                        return misc_enable_write(vcpu, val) ? 0 : -KEEL_EPERM;
                if (msr == MSR_KVM_PV_EOI)
                        return x86_pv_eoi_msr(vcpu, val) ? 0 : -KEEL_EPERM;
                if (msr_reads_zero(msr))
                        return 0;
        }
        report_msr_once(vcpu, msr, "write");
        return -KEEL_EPERM;
}
