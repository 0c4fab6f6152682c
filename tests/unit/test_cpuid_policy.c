/* Tests of the guest CPUID policy (arch/x86_64/cpuid_policy.c): one test per rule. */
#include <stdint.h>
#include <string.h>

#include <vmm/hypercall.h>
#include <arch/cpuid_policy.h>

#include "test.h"

#define ALL    0xffffffffu
#define BIT(n) (1u << (n))

static const struct x86_cpuid_ctx ctx = {.max_basic = 0x16, .max_ext = 0x80000021u};

static void run(uint32_t leaf, uint32_t sub, const uint32_t host[4], const struct x86_cpuid_ctx *c,
                uint32_t out[4])
{
        memset(out, 0x5a, 4 * sizeof(uint32_t));
        x86_cpuid_policy(leaf, sub, host, c, out);
}

TEST(leaf1_features)
{
        const uint32_t host[4] = {0x00a20f12, 0x07100800 | 0x05000000, ALL, ALL};
        uint32_t out[4];

        run(1, 0, host, &ctx, out);
        EXPECT_EQ(out[0], 0x00a20f12);                            /* family/model/stepping kept */
        EXPECT_EQ(out[1] >> 24, 0);                               /* initial APIC ID */
        EXPECT_EQ((out[1] >> 16) & 0xff, 1);                      /* one logical processor */
        EXPECT_EQ(out[1] & 0xffff, 0x0800);                       /* CLFLUSH size, brand kept */
        EXPECT_EQ(out[2] & BIT(5), 0);                            /* VMX */
        EXPECT_EQ(out[2] & BIT(3), 0);                            /* MONITOR */
        EXPECT_EQ(out[2] & BIT(21), 0);                           /* x2APIC */
        EXPECT_EQ(out[2] & BIT(24), 0);                           /* TSC-deadline */
        EXPECT_EQ(out[2] & BIT(31), BIT(31));                     /* hypervisor present */
        EXPECT_EQ(out[2] & BIT(27), 0);                           /* OSXSAVE: guest CR4 has none */
        EXPECT_EQ(out[2] & BIT(26), BIT(26));                     /* XSAVE kept */
        EXPECT_EQ(out[2] & BIT(0), BIT(0));                       /* SSE3 kept */
        EXPECT_EQ(out[3] & BIT(28), 0);                           /* HTT */
        EXPECT_EQ(out[3] & BIT(9), 0);                            /* no APIC model: no APIC */
        EXPECT_EQ(out[3] & (BIT(0) | BIT(25)), BIT(0) | BIT(25)); /* FPU, SSE kept */

        /* The hypervisor bit is set even if the host does not have it. */
        const uint32_t bare[4] = {0, 0, 0, 0};
        run(1, 0, bare, &ctx, out);
        EXPECT_EQ(out[2], BIT(31));
        EXPECT_EQ(out[1], 1u << 16);
}

/* With Keel's LAPIC model the APIC and its TSC-deadline timer are shown, x2APIC is not. */
TEST(leaf1_with_lapic_model)
{
        const uint32_t host[4] = {0, 0, ALL, ALL};
        struct x86_cpuid_ctx c = ctx;
        uint32_t out[4];

        c.lapic = true;
        run(1, 0, host, &c, out);
        EXPECT_EQ(out[3] & BIT(9), BIT(9));
        EXPECT_EQ(out[2] & BIT(24), BIT(24));
        EXPECT_EQ(out[2] & BIT(21), 0);
        /* Shown even if the host's CPUID lacks TSC-deadline: the model provides it. */
        const uint32_t bare[4] = {0, 0, 0, BIT(9)};
        run(1, 0, bare, &c, out);
        EXPECT_EQ(out[2] & BIT(24), BIT(24));
}

TEST(leaf1_reflects_guest_state)
{
        const uint32_t host[4] = {0, 0, BIT(26) | BIT(27), 0};
        struct x86_cpuid_ctx c = ctx;
        uint32_t out[4];

        c.guest_cr4 = 1ull << 18; /* OSXSAVE */
        c.apic_id = 3;
        run(1, 0, host, &c, out);
        EXPECT_EQ(out[2] & BIT(27), BIT(27));
        EXPECT_EQ(out[1] >> 24, 3);
        /* No XSAVE on the host: no OSXSAVE whatever CR4 says. */
        const uint32_t noxsave[4] = {0, 0, 0, 0};
        run(1, 0, noxsave, &c, out);
        EXPECT_EQ(out[2] & BIT(27), 0);
}

TEST(leaf7_subleaf0)
{
        const uint32_t host[4] = {2, ALL, ALL, ALL};
        struct x86_cpuid_ctx c = ctx;
        uint32_t out[4];

        run(7, 0, host, &c, out);
        EXPECT_EQ(out[0], 2);
        EXPECT_EQ(out[1] & BIT(2), 0);      /* SGX */
        EXPECT_EQ(out[1] & BIT(25), 0);     /* PT */
        EXPECT_EQ(out[1] & BIT(14), 0);     /* MPX */
        EXPECT_EQ(out[1] & BIT(5), BIT(5)); /* AVX2 kept */
        EXPECT_EQ(out[2] & BIT(16), 0);     /* LA57 */
        EXPECT_EQ(out[2] & BIT(7), 0);      /* CET_SS */
        EXPECT_EQ(out[2] & BIT(31), 0);     /* PKS: IA32_PKRS not switched */
        EXPECT_EQ(out[2] & BIT(4), 0);      /* OSPKE: guest CR4.PKE clear */
        EXPECT_EQ(out[2] & BIT(3), BIT(3)); /* PKU kept */
        EXPECT_EQ(out[3] & BIT(20), 0);     /* CET_IBT */
        EXPECT_EQ(out[3] & BIT(29), 0);     /* ARCH_CAPABILITIES */
        c.guest_cr4 = 1ull << 22;
        run(7, 0, host, &c, out);
        EXPECT_EQ(out[2] & BIT(4), BIT(4));
        /* Other subleaves are passed through. */
        run(7, 1, host, &c, out);
        EXPECT_EQ(out[1], ALL);
        EXPECT_EQ(out[2], ALL);
}

TEST(zeroed_leaves)
{
        const uint32_t host[4] = {ALL, ALL, ALL, ALL};
        static const uint32_t leaves[] = {5,    6,           0xa,         0xb,        0x12,
                                          0x14, 0x8000000au, 0x8000001eu, 0x8000001fu};
        uint32_t out[4];

        for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
                run(leaves[i], 0, host, &ctx, out);
                for (int r = 0; r < 4; r++)
                        if (out[r] != 0)
                                TEST_FAIL_AT(__FILE__, __LINE__, "leaf %#x reg %d = %#x", leaves[i],
                                             r, out[r]);
        }
        /* Leaf 0xD subleaf 0 is the host's, without MPX's components (hidden in leaf 7). */
        run(0xd, 0, host, &ctx, out);
        EXPECT_EQ(out[0], ALL & ~(BIT(3) | BIT(4)));
        EXPECT_EQ(out[3], ALL);
        /* XSAVE subleaf 1: XSAVES hidden, no supervisor states (no IA32_XSS), XSAVEOPT kept;
         * EBX the compacted size of XCR0 (x87 only here). */
        run(0xd, 1, host, &ctx, out);
        EXPECT_EQ(out[0], ALL & ~BIT(3));
        EXPECT_EQ(out[1], 576);
        EXPECT_EQ(out[2], 0);
        EXPECT_EQ(out[3], 0);
        /* Leaf 7: no TSC_ADJUST MSR. */
        run(7, 0, host, &ctx, out);
        EXPECT_EQ(out[1] & BIT(1), 0);
}

/*
 * Leaf 0xD subleaf 1's EBX is the compacted (XSAVEC) size of the guest's XCR0, from the
 * components' sizes and alignment, whatever the host says: Bochs' Skylake-X answers 2688
 * (the standard format's size) where XCR0 0xe7 compacts to 2432.
 */
TEST(leaf_d_compacted_size)
{
        const uint32_t host[4] = {0xf, 2688, ALL, ALL}; /* XSAVEOPT, XSAVEC, XGETBV1, XSAVES */
        struct x86_cpuid_ctx c = ctx;
        uint32_t out[4];

        c.xsave_size[2] = 256;  /* AVX */
        c.xsave_size[5] = 64;   /* AVX-512 opmask */
        c.xsave_size[6] = 512;  /* ZMM_Hi256 */
        c.xsave_size[7] = 1024; /* Hi16_ZMM */
        c.xsave_size[9] = 8;    /* PKRU */
        c.xcr0 = 0xe7;
        run(0xd, 1, host, &c, out);
        EXPECT_EQ(out[0], 0x7); /* XSAVES hidden */
        EXPECT_EQ(out[1], 576 + 256 + 64 + 512 + 1024);
        EXPECT_EQ(out[2], 0);
        EXPECT_EQ(out[3], 0);
        c.xcr0 = 1; /* x87 only: the legacy region and the header */
        run(0xd, 1, host, &c, out);
        EXPECT_EQ(out[1], 576);
        c.xcr0 = 0x7;
        run(0xd, 1, host, &c, out);
        EXPECT_EQ(out[1], 832);
        /* PKRU (8 bytes) right after AVX; AMX's TILECFG, 64-byte aligned, after PKRU starts
         * on the next 64 bytes. */
        c.xcr0 = 0x207;
        run(0xd, 1, host, &c, out);
        EXPECT_EQ(out[1], 840);
        c.xsave_size[17] = 64;
        c.xcr0 = 0x20207;
        run(0xd, 1, host, &c, out);
        EXPECT_EQ(out[1], 840 + 64);
        c.xsave_align64 = 1ull << 17;
        run(0xd, 1, host, &c, out);
        EXPECT_EQ(out[1], 896 + 64);
        /* A component the host does not list (size 0) counts for nothing. */
        c.xcr0 = 0x1f;
        run(0xd, 1, host, &c, out);
        EXPECT_EQ(out[1], 832);
        /* Subleaf 0 and the components' own subleaves keep the host's data. */
        const uint32_t l0[4] = {0x2e7, 2696, 2696, 0};
        run(0xd, 0, l0, &c, out);
        EXPECT_EQ(out[1], 2696);
        EXPECT_EQ(out[2], 2696);
        const uint32_t avx[4] = {256, 576, 0, 0};
        run(0xd, 2, avx, &c, out);
        EXPECT_EQ(out[0], 256);
        EXPECT_EQ(out[1], 576);
}

/* MPX is hidden in leaf 7, so leaf 0xD lists neither of its components nor describes them. */
TEST(leaf_d_hides_mpx)
{
        const uint32_t l0[4] = {0x2ff, 2696, 2696, 0}, bnd[4] = {64, 960, 0, 0};
        uint32_t out[4];

        run(0xd, 0, l0, &ctx, out);
        EXPECT_EQ(out[0], 0x2e7);
        run(0xd, 3, bnd, &ctx, out);
        EXPECT_EQ(out[0] | out[1] | out[2] | out[3], 0);
        run(0xd, 4, bnd, &ctx, out);
        EXPECT_EQ(out[0] | out[1] | out[2] | out[3], 0);
        run(7, 0, (const uint32_t[4]){0, ALL, 0, 0}, &ctx, out);
        EXPECT_EQ(out[1] & BIT(14), 0);
}

TEST(extended_leaves)
{
        const uint32_t host[4] = {ALL, ALL, ALL, ALL};
        uint32_t out[4];

        run(0x80000001u, 0, host, &ctx, out);
        EXPECT_EQ(out[2] & BIT(2), 0);      /* SVM */
        EXPECT_EQ(out[2] & BIT(22), 0);     /* TopologyExtensions */
        EXPECT_EQ(out[2] & BIT(29), 0);     /* MONITORX */
        EXPECT_EQ(out[2] & BIT(0), BIT(0)); /* LAHF/SAHF kept */
        EXPECT_EQ(out[3], ALL);             /* LM, NX, ... kept */
        run(0x80000007u, 0, host, &ctx, out);
        EXPECT_EQ(out[3], BIT(8)); /* invariant TSC only */
        EXPECT_EQ(out[0], 0);
        run(0x80000008u, 0, host, &ctx, out);
        EXPECT_EQ(out[0], ALL);
        EXPECT_EQ(out[1], ALL & ~BIT(4)); /* RDPRU hidden (intercepted: #UD) */
        EXPECT_EQ(out[2], 0);
}

TEST(hypervisor_leaves)
{
        const uint32_t host[4] = {0x12, 0x34, 0x56, 0x78};
        uint32_t out[4];
        char sig[13];

        run(0x40000000u, 0, host, &ctx, out);
        EXPECT_EQ(out[0], 0x40000001u);
        EXPECT_EQ(out[1], 0x6c65654bu);
        memcpy(sig, &out[1], 12);
        sig[12] = 0;
        EXPECT_STREQ(sig, "KeelKeelKeel");
        run(0x40000001u, 0, host, &ctx, out);
        EXPECT_EQ(out[0], KEEL_HC_ABI_VERSION);
        EXPECT_EQ(out[1], 0);
        EXPECT_EQ(out[2], 0);
        EXPECT_EQ(out[3], 0);
        for (uint32_t leaf = 0x40000002u; leaf <= 0x400000ffu; leaf += 0x1d) {
                run(leaf, 0, host, &ctx, out);
                EXPECT_EQ(out[0] | out[1] | out[2] | out[3], 0);
        }
        /* KVM's block: only for a vCPU with Keel's LAPIC (the PV EOI is the LAPIC's). */
        run(0x40000100u, 0, host, &ctx, out);
        EXPECT_EQ(out[0] | out[1] | out[2] | out[3], 0);
        run(0x40000101u, 0, host, &ctx, out);
        EXPECT_EQ(out[0] | out[1] | out[2] | out[3], 0);
        {
                struct x86_cpuid_ctx c = ctx;

                c.lapic = true;
                run(0x40000100u, 0, host, &c, out);
                EXPECT_EQ(out[0], 0x40000101u);
                memcpy(sig, &out[1], 12);
                EXPECT_EQ(memcmp(sig, "KVMKVMKVM\0\0\0", 12), 0);
                run(0x40000101u, 0, host, &c, out);
                EXPECT_EQ(out[0], 1u << 6); /* KVM_FEATURE_PV_EOI and nothing else */
                EXPECT_EQ(out[1] | out[2] | out[3], 0);
                run(0x40000102u, 0, host, &c, out);
                EXPECT_EQ(out[0] | out[1] | out[2] | out[3], 0);
                run(0x40000200u, 0, host, &c, out);
                EXPECT_EQ(out[0] | out[1] | out[2] | out[3], 0);
        }
        /* Host data is never needed for them: the host leaf is the leaf itself. */
        EXPECT_EQ(x86_cpuid_host_leaf(0x40000000u, &ctx), 0x40000000u);
}

TEST(out_of_range_leaves)
{
        uint32_t out[4];

        /* In range: the leaf itself. */
        EXPECT_EQ(x86_cpuid_host_leaf(0x16, &ctx), 0x16);
        EXPECT_EQ(x86_cpuid_host_leaf(0x80000021u, &ctx), 0x80000021u);
        EXPECT_EQ(x86_cpuid_host_leaf(0x80000000u, &ctx), 0x80000000u);
        /* Above either maximum, or in no range: the highest basic leaf. */
        EXPECT_EQ(x86_cpuid_host_leaf(0x17, &ctx), 0x16);
        EXPECT_EQ(x86_cpuid_host_leaf(0x3fffffffu, &ctx), 0x16);
        EXPECT_EQ(x86_cpuid_host_leaf(0x80000022u, &ctx), 0x16);
        EXPECT_EQ(x86_cpuid_host_leaf(0x50000000u, &ctx), 0x16);
        EXPECT_EQ(x86_cpuid_host_leaf(0xc0000000u, &ctx), 0x16);
        EXPECT_EQ(x86_cpuid_host_leaf(0xffffffffu, &ctx), 0x16);
        /* A host without extended leaves. */
        struct x86_cpuid_ctx c = {.max_basic = 0xd, .max_ext = 0};
        EXPECT_EQ(x86_cpuid_host_leaf(0x80000000u, &c), 0xd);

        /* The policy of the highest basic leaf applies to the returned data: with max_basic
         * = 6 (thermal: zeroed), leaf 0x20 returns zeros; with max_basic = 1, leaf 5 returns
         * leaf 1 data with its rules (hypervisor bit set, VMX clear). */
        const uint32_t host[4] = {ALL, ALL, ALL, ALL};
        c.max_basic = 6;
        run(0x20, 0, host, &c, out);
        EXPECT_EQ(out[0] | out[1] | out[2] | out[3], 0);
        c.max_basic = 1;
        run(5, 0, host, &c, out);
        EXPECT_EQ(out[2] & BIT(5), 0);
        EXPECT_EQ(out[2] & BIT(31), BIT(31));
        run(0x80000001u, 0, host, &c, out);
        EXPECT_EQ(out[2] & BIT(5), 0);
        EXPECT_EQ(out[1] >> 24, 0);
        /* Leaf 0 itself is passed through (vendor string, max basic leaf). */
        const uint32_t l0[4] = {0x10, 0x68747541, 0x444d4163, 0x69746e65};
        run(0, 0, l0, &ctx, out);
        EXPECT_EQ(out[0], 0x10);
        EXPECT_EQ(out[1], 0x68747541);
}

TEST(output_may_alias_input)
{
        uint32_t r[4] = {0, 0, ALL, 0};

        x86_cpuid_policy(1, 0, r, &ctx, r);
        EXPECT_EQ(r[2] & BIT(5), 0);
        EXPECT_EQ(r[2] & BIT(31), BIT(31));
}

TEST_MAIN()
