/*
 * Guest CPUID policy (pure C, host-tested): what a guest sees for each CPUID leaf, computed
 * from the host's answer for that leaf. The table of rules is in docs/x86-decoder.md.
 *
 * Use on a CPUID intercept (leaf = guest EAX, subleaf = guest ECX):
 *   uint32_t host[4], out[4];
 *   uint32_t q = x86_cpuid_host_leaf(leaf, &ctx);
 *   x86_cpuid(q, subleaf, host);          // real CPUID of the leaf the policy needs
 *   x86_cpuid_policy(leaf, subleaf, host, &ctx, out);
 *
 * Leaves out of range: like Intel CPUs, a leaf above the host's maximum basic leaf, or above
 * its maximum extended leaf, or in no known range at all, returns the data of the highest
 * basic leaf (with that leaf's policy applied), whatever the host vendor does (AMD returns
 * zeros). The hypervisor range 0x40000000-0x4FFFFFFF is always Keel's and never the host's.
 */
#ifndef ARCH_X86_CPUID_POLICY_H
#define ARCH_X86_CPUID_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#define X86_CPUID_HV_BASE  0x40000000u
#define X86_CPUID_HV_MAX   0x40000001u /* highest Keel hypervisor leaf */
#define X86_CPUID_HV_LAST  0x4fffffffu /* end of the range reserved for hypervisors */
#define X86_CPUID_KEEL_EBX 0x6c65654bu /* "Keel" */
#define X86_CPUID_KEEL_ECX 0x6c65654bu
#define X86_CPUID_KEEL_EDX 0x6c65654bu
/*
 * KVM's paravirtual interface in the next block of the range, where Linux also looks for it
 * (docs/x86-interrupts.md, "Paravirtual EOI"), for a vCPU with Keel's LAPIC: the signature
 * "KVMKVMKVM\0\0\0" and of KVM's features only PV EOI (MSR 0x4b564d04).
 */
#define X86_CPUID_KVM_BASE   0x40000100u
#define X86_CPUID_KVM_EBX    0x4b4d564bu
#define X86_CPUID_KVM_ECX    0x564b4d56u
#define X86_CPUID_KVM_EDX    0x4du
#define X86_CPUID_KVM_PV_EOI (1u << 6)

/* XSAVE state components: bits of XCR0 (0: x87, 1: SSE, 2 up: one CPUID.(0xD, i) each). */
#define X86_XSAVE_COMPONENTS 64
#define X86_XSAVE_LEGACY     576u /* legacy region (512) and XSAVE header (64) */

struct x86_cpuid_ctx {
        uint32_t max_basic; /* host CPUID.0.EAX */
        uint32_t max_ext;   /* host CPUID.80000000h.EAX (below 0x80000000: no extended leaves) */
        uint64_t guest_cr4; /* guest CR4: OSXSAVE (bit 18) and PKE (bit 22) are reflected */
        uint8_t apic_id;    /* initial APIC ID of the vCPU (leaf 1 EBX[31:24]) */
        /* The VM has Keel's local APIC model: leaf 1 shows APIC and the TSC-deadline timer
         * (which the model implements); without it both are hidden. */
        bool lapic;
        /* The guest's XCR0 when it asks for leaf 0xD (the caller sets it then, from the CPU's
         * XCR0 when the host has XSAVE: fpu.c loads the guest's for the whole run). */
        uint64_t xcr0;
        bool xsave; /* the host has XSAVE */
        /* Each user state component from 2 up, from the host's CPUID.(0xD, i): its size (EAX;
         * 0 for one CPUID.(0xD, 0) EDX:EAX does not list) and whether it is 64-byte aligned in
         * the compacted format (ECX bit 1). Leaf 0xD subleaf 1's EBX is computed from them. */
        uint32_t xsave_size[X86_XSAVE_COMPONENTS];
        uint64_t xsave_align64;
};

/*
 * Bytes of a compacted XSAVE area (XSAVEC; SDM vol. 1 13.4.3) holding the user components in
 * `mask`: the legacy region and header, then each component in order, aligned to 64 bytes
 * where it asks for it. CPUID.(0xD, 1).EBX is this for XCR0 | IA32_XSS, and Linux sizes its
 * XSAVEC buffers from it; the guest has no IA32_XSS (XSAVES is hidden), so Keel answers for
 * the guest's XCR0 alone. (Bochs 2.7 returns the standard format's size there, which Linux
 * reports as "XSAVE consistency problem" with a kernel warning.)
 */
uint32_t x86_xsave_compacted_size(const struct x86_cpuid_ctx *ctx, uint64_t mask);

/* The leaf whose host data x86_cpuid_policy needs for guest leaf `leaf` (the leaf itself,
 * or the highest basic leaf when out of range). For hypervisor leaves the host data is
 * ignored, so any query (or none) will do. */
static inline bool x86_cpuid_in_hv_range(uint32_t leaf)
{
        return leaf >= X86_CPUID_HV_BASE && leaf <= X86_CPUID_HV_LAST;
}

/* Inline: it runs on every intercepted CPUID. */
static inline uint32_t x86_cpuid_host_leaf(uint32_t leaf, const struct x86_cpuid_ctx *ctx)
{
        if (x86_cpuid_in_hv_range(leaf) || leaf <= ctx->max_basic)
                return leaf;
        if (ctx->max_ext >= 0x80000000u && leaf >= 0x80000000u && leaf <= ctx->max_ext)
                return leaf;
        return ctx->max_basic;
}

/* Guest view of CPUID(leaf, subleaf). host = EAX, EBX, ECX, EDX of the real CPUID of
 * x86_cpuid_host_leaf(leaf) with the same subleaf. out may alias host. */
void x86_cpuid_policy(uint32_t leaf, uint32_t subleaf, const uint32_t host[4],
                      const struct x86_cpuid_ctx *ctx, uint32_t out[4]);

#endif
