/*
 * Guest CPUID policy: see arch/cpuid_policy.h and the table in docs/x86-decoder.md. Bit
 * positions are from the Intel SDM (CPUID instruction) and the AMD APM Vol. 3 (Appendix E).
 * Rule of thumb: hide what Keel does not virtualize (VMX/SVM, PMU, x2APIC, MONITOR/MWAIT,
 * SGX, PT, CET, RDT, LA57, MPX, RDPRU, power/thermal MSRs, the host topology), reflect
 * guest-controlled state (OSXSAVE, OSPKE), announce Keel in the hypervisor range.
 */
#include <stdbool.h>
#include <stdint.h>

#include <vmm/hypercall.h>
#include <arch/cpuid_policy.h>

#define BIT(n) (1u << (n))

enum { EAX, EBX, ECX, EDX };

/* Leaf 1 */
#define L1_ECX_HIDE                                                                            \
        (BIT(2) /* DTES64 */ | BIT(3) /* MONITOR */ | BIT(4) /* DS-CPL */ | BIT(5) /* VMX */ | \
         BIT(6) /* SMX */ | BIT(7) /* EIST */ | BIT(8) /* TM2 */ | BIT(15) /* PDCM */ |        \
         BIT(18) /* DCA */ | BIT(21) /* x2APIC */ | BIT(24) /* TSC-deadline */ |               \
         BIT(27) /* OSXSAVE: host's, replaced by the guest's */)
#define L1_ECX_TSC_DEADLINE BIT(24)
#define L1_EDX_APIC         BIT(9)
#define L1_ECX_XSAVE        BIT(26)
#define L1_ECX_OSXSAVE      BIT(27)
#define L1_ECX_HV           BIT(31)
#define L1_EDX_HIDE                                                               \
        (BIT(18) /* PSN */ | BIT(21) /* DS */ | BIT(22) /* ACPI thermal MSRs */ | \
         BIT(28) /* HTT */ | BIT(29) /* TM */ | BIT(31) /* PBE */)

/* Leaf 7 subleaf 0 */
#define L7_EBX_HIDE                                                             \
        (BIT(1) /* TSC_ADJUST MSR */ | BIT(2) /* SGX */ | BIT(12) /* RDT-M */ | \
         BIT(14) /* MPX */ | BIT(15) /* RDT-A */ | BIT(25) /* Intel PT */)
#define L7_ECX_PKU   BIT(3)
#define L7_ECX_OSPKE BIT(4)
#define L7_ECX_HIDE                                                                         \
        (L7_ECX_OSPKE /* host's, replaced */ | BIT(5) /* WAITPKG */ | BIT(7) /* CET_SS */ | \
         BIT(16) /* LA57: the walker does not do 5-level paging */ | BIT(30) /* SGX_LC */ | \
         BIT(31) /* PKS: IA32_PKRS is not switched per vCPU */)
#define L7_EDX_HIDE                                                                            \
        (BIT(18) /* PCONFIG */ | BIT(20) /* CET_IBT */ | BIT(29) /* ARCH_CAPABILITIES MSR */ | \
         BIT(30) /* CORE_CAPABILITIES MSR */)

/* Leaf 0x80000001 */
#define LX1_ECX_HIDE                                                                        \
        (BIT(1) /* CmpLegacy */ | BIT(2) /* SVM */ | BIT(3) /* ExtApicSpace */ |            \
         BIT(10) /* IBS */ | BIT(12) /* SKINIT */ | BIT(13) /* WDT */ | BIT(15) /* LWP */ | \
         BIT(22) /* TopologyExtensions */ | BIT(23) /* PerfCtrExtCore */ |                  \
         BIT(24) /* PerfCtrExtNB */ | BIT(28) /* PerfCtrExtLLC */ | BIT(29) /* MONITORX */)

/* Leaf 0xD subleaf 0: MPX's two state components (BNDREGS, BNDCSR), hidden with MPX. */
#define LD_EAX_MPX (BIT(3) | BIT(4))

/* Leaf 0x80000008 EBX */
#define LX8_EBX_RDPRU BIT(4) /* RDPRU would read the physical CPU's MPERF/APERF */

/* Leaf 0x80000007 EDX: only the invariant TSC is kept. */
#define LX7_EDX_KEEP BIT(8)

#define CR4_OSXSAVE (1ull << 18)
#define CR4_PKE     (1ull << 22)

static bool in_hv_range(uint32_t leaf)
{
        return x86_cpuid_in_hv_range(leaf);
}

static void zero(uint32_t r[4])
{
        r[EAX] = r[EBX] = r[ECX] = r[EDX] = 0;
}

uint32_t x86_xsave_compacted_size(const struct x86_cpuid_ctx *ctx, uint64_t mask)
{
        uint32_t size = X86_XSAVE_LEGACY;

        for (unsigned i = 2; i < X86_XSAVE_COMPONENTS; i++) {
                if (!(mask & (1ull << i)) || ctx->xsave_size[i] == 0)
                        continue;
                if (ctx->xsave_align64 & (1ull << i))
                        size = (size + 63) & ~63u;
                size += ctx->xsave_size[i];
        }
        return size;
}

void x86_cpuid_policy(uint32_t leaf, uint32_t subleaf, const uint32_t host[4],
                      const struct x86_cpuid_ctx *ctx, uint32_t out[4])
{
        uint32_t r[4] = {host[0], host[1], host[2], host[3]};

        if (in_hv_range(leaf)) {
                zero(r);
                if (leaf == X86_CPUID_HV_BASE) {
                        r[EAX] = X86_CPUID_HV_MAX;
                        r[EBX] = X86_CPUID_KEEL_EBX;
                        r[ECX] = X86_CPUID_KEEL_ECX;
                        r[EDX] = X86_CPUID_KEEL_EDX;
                } else if (leaf == X86_CPUID_HV_BASE + 1) {
                        r[EAX] = KEEL_HC_ABI_VERSION;
                } else if (leaf == X86_CPUID_KVM_BASE && ctx->lapic) {
                        r[EAX] = X86_CPUID_KVM_BASE + 1;
                        r[EBX] = X86_CPUID_KVM_EBX;
                        r[ECX] = X86_CPUID_KVM_ECX;
                        r[EDX] = X86_CPUID_KVM_EDX;
                } else if (leaf == X86_CPUID_KVM_BASE + 1 && ctx->lapic) {
                        r[EAX] = X86_CPUID_KVM_PV_EOI;
                }
                goto out;
        }

        switch (x86_cpuid_host_leaf(leaf, ctx)) {
        case 0x1:
                /* One logical processor per package, APIC ID of the vCPU. */
                r[EBX] = (r[EBX] & 0xffffu) | (1u << 16) | ((uint32_t)ctx->apic_id << 24);
                r[ECX] &= ~L1_ECX_HIDE;
                r[ECX] |= L1_ECX_HV;
                if ((r[ECX] & L1_ECX_XSAVE) && (ctx->guest_cr4 & CR4_OSXSAVE))
                        r[ECX] |= L1_ECX_OSXSAVE;
                r[EDX] &= ~L1_EDX_HIDE;
                if (ctx->lapic)
                        r[ECX] |= L1_ECX_TSC_DEADLINE;
                else
                        r[EDX] &= ~L1_EDX_APIC;
                break;
        case 0x4:
                /* Deterministic cache parameters: no cores or threads share anything. */
                r[EAX] &= ~((0x3fu << 26) | (0xfffu << 14));
                break;
        case 0x5:  /* MONITOR/MWAIT: hidden */
        case 0x6:  /* thermal and power management */
        case 0xa:  /* architectural PMU */
        case 0xb:  /* extended topology (x2APIC IDs) */
        case 0xf:  /* RDT monitoring */
        case 0x10: /* RDT allocation */
        case 0x12: /* SGX */
        case 0x14: /* processor trace */
        case 0x1b: /* PCONFIG */
        case 0x1f: /* V2 extended topology */
                zero(r);
                break;
        case 0x7:
                if (subleaf != 0)
                        break;
                r[EBX] &= ~L7_EBX_HIDE;
                r[ECX] &= ~L7_ECX_HIDE;
                if ((r[ECX] & L7_ECX_PKU) && (ctx->guest_cr4 & CR4_PKE))
                        r[ECX] |= L7_ECX_OSPKE;
                r[EDX] &= ~L7_EDX_HIDE;
                break;
        case 0xd:
                /* XSAVES and the supervisor states (IA32_XSS) are hidden: no XSS MSR. EBX:
                 * the compacted size for the guest's XCR0 (x86_xsave_compacted_size). */
                if (subleaf == 1) {
                        r[EAX] &= ~BIT(3);
                        r[EBX] = x86_xsave_compacted_size(ctx, ctx->xcr0);
                        r[ECX] = r[EDX] = 0;
                }
                /* MPX is hidden in leaf 7: so are its components (XSETBV refuses them on VMX). */
                if (subleaf == 0)
                        r[EAX] &= ~LD_EAX_MPX;
                if (subleaf == 3 || subleaf == 4)
                        zero(r);
                break;
        case 0x80000001u:
                r[ECX] &= ~LX1_ECX_HIDE;
                break;
        case 0x80000007u:
                r[EAX] = r[EBX] = r[ECX] = 0;
                r[EDX] &= LX7_EDX_KEEP;
                break;
        case 0x80000008u:
                r[EBX] &= ~LX8_EBX_RDPRU; /* intercepted: #UD */
                r[ECX] = 0;               /* core count, APIC ID size, TSC size: one core */
                break;
        case 0x8000000au: /* SVM features */
        case 0x8000001bu: /* IBS */
        case 0x8000001du: /* cache topology (TopologyExtensions hidden) */
        case 0x8000001eu: /* extended APIC ID, core and node IDs */
        case 0x8000001fu: /* SEV */
        case 0x80000020u: /* platform QoS */
        case 0x80000022u: /* extended performance monitoring */
        case 0x80000026u: /* extended CPU topology */
                zero(r);
                break;
        }
out:
        out[EAX] = r[EAX];
        out[EBX] = r[EBX];
        out[ECX] = r[ECX];
        out[EDX] = r[EDX];
}
