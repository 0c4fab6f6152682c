/*
 * sveswitch (arm64), two VMs pinned to one CPU: each keeps its own SVE state while the other
 * runs in between (docs/arm64.md, FP/SIMD and SVE state per vCPU). Each VM sets the longest
 * vector length ZCR_EL1 allows, fills Z0-Z31 (all VL bytes) and P0-P15 with a pattern of its
 * own, then for SVE_MS milliseconds stores them all again and again and compares: they must
 * hold its own values however often the VM was descheduled (counted as gaps in the counter).
 * Keel lost vCPU 0's SVE save area when it set the vCPU up (found with 64 VMs beside a Linux
 * VM whose init then died of SIGSEGV); a Z register's upper bits or a P register from the
 * other VM is what that looks like here. Without SVE it says so and exits 77.
 * Exits 0, or 1 after FAIL lines.
 */
#include "guest.h"

#define write_sysreg(name, v) __asm__ volatile("msr " #name ", %0" : : "r"((uint64_t)(v)))

#define SVE_MS 1500
#define VL_MAX 256 /* bytes: the architecture's longest vector */

static uint8_t zset[32 * VL_MAX], zget[32 * VL_MAX], pset[16 * VL_MAX / 8], pget[16 * VL_MAX / 8];

static uint64_t sve_vl(void)
{
        uint64_t vl;

        __asm__ volatile(".arch_extension sve\n rdvl %0, #1" : "=r"(vl));
        return vl;
}

static void sve_load(void)
{
        __asm__ volatile(".arch_extension sve\n"
                         "ldr z0, [%0, #0, mul vl]\n"
                         "ldr z1, [%0, #1, mul vl]\n"
                         "ldr z2, [%0, #2, mul vl]\n"
                         "ldr z3, [%0, #3, mul vl]\n"
                         "ldr z4, [%0, #4, mul vl]\n"
                         "ldr z5, [%0, #5, mul vl]\n"
                         "ldr z6, [%0, #6, mul vl]\n"
                         "ldr z7, [%0, #7, mul vl]\n"
                         "ldr z8, [%0, #8, mul vl]\n"
                         "ldr z9, [%0, #9, mul vl]\n"
                         "ldr z10, [%0, #10, mul vl]\n"
                         "ldr z11, [%0, #11, mul vl]\n"
                         "ldr z12, [%0, #12, mul vl]\n"
                         "ldr z13, [%0, #13, mul vl]\n"
                         "ldr z14, [%0, #14, mul vl]\n"
                         "ldr z15, [%0, #15, mul vl]\n"
                         "ldr z16, [%0, #16, mul vl]\n"
                         "ldr z17, [%0, #17, mul vl]\n"
                         "ldr z18, [%0, #18, mul vl]\n"
                         "ldr z19, [%0, #19, mul vl]\n"
                         "ldr z20, [%0, #20, mul vl]\n"
                         "ldr z21, [%0, #21, mul vl]\n"
                         "ldr z22, [%0, #22, mul vl]\n"
                         "ldr z23, [%0, #23, mul vl]\n"
                         "ldr z24, [%0, #24, mul vl]\n"
                         "ldr z25, [%0, #25, mul vl]\n"
                         "ldr z26, [%0, #26, mul vl]\n"
                         "ldr z27, [%0, #27, mul vl]\n"
                         "ldr z28, [%0, #28, mul vl]\n"
                         "ldr z29, [%0, #29, mul vl]\n"
                         "ldr z30, [%0, #30, mul vl]\n"
                         "ldr z31, [%0, #31, mul vl]\n"
                         :
                         : "r"(zset)
                         : "memory");
        __asm__ volatile(".arch_extension sve\n"
                         "ldr p0, [%0, #0, mul vl]\n"
                         "ldr p1, [%0, #1, mul vl]\n"
                         "ldr p2, [%0, #2, mul vl]\n"
                         "ldr p3, [%0, #3, mul vl]\n"
                         "ldr p4, [%0, #4, mul vl]\n"
                         "ldr p5, [%0, #5, mul vl]\n"
                         "ldr p6, [%0, #6, mul vl]\n"
                         "ldr p7, [%0, #7, mul vl]\n"
                         "ldr p8, [%0, #8, mul vl]\n"
                         "ldr p9, [%0, #9, mul vl]\n"
                         "ldr p10, [%0, #10, mul vl]\n"
                         "ldr p11, [%0, #11, mul vl]\n"
                         "ldr p12, [%0, #12, mul vl]\n"
                         "ldr p13, [%0, #13, mul vl]\n"
                         "ldr p14, [%0, #14, mul vl]\n"
                         "ldr p15, [%0, #15, mul vl]\n"
                         :
                         : "r"(pset)
                         : "memory");
}

static void sve_store(void)
{
        __asm__ volatile(".arch_extension sve\n"
                         "str z0, [%0, #0, mul vl]\n"
                         "str z1, [%0, #1, mul vl]\n"
                         "str z2, [%0, #2, mul vl]\n"
                         "str z3, [%0, #3, mul vl]\n"
                         "str z4, [%0, #4, mul vl]\n"
                         "str z5, [%0, #5, mul vl]\n"
                         "str z6, [%0, #6, mul vl]\n"
                         "str z7, [%0, #7, mul vl]\n"
                         "str z8, [%0, #8, mul vl]\n"
                         "str z9, [%0, #9, mul vl]\n"
                         "str z10, [%0, #10, mul vl]\n"
                         "str z11, [%0, #11, mul vl]\n"
                         "str z12, [%0, #12, mul vl]\n"
                         "str z13, [%0, #13, mul vl]\n"
                         "str z14, [%0, #14, mul vl]\n"
                         "str z15, [%0, #15, mul vl]\n"
                         "str z16, [%0, #16, mul vl]\n"
                         "str z17, [%0, #17, mul vl]\n"
                         "str z18, [%0, #18, mul vl]\n"
                         "str z19, [%0, #19, mul vl]\n"
                         "str z20, [%0, #20, mul vl]\n"
                         "str z21, [%0, #21, mul vl]\n"
                         "str z22, [%0, #22, mul vl]\n"
                         "str z23, [%0, #23, mul vl]\n"
                         "str z24, [%0, #24, mul vl]\n"
                         "str z25, [%0, #25, mul vl]\n"
                         "str z26, [%0, #26, mul vl]\n"
                         "str z27, [%0, #27, mul vl]\n"
                         "str z28, [%0, #28, mul vl]\n"
                         "str z29, [%0, #29, mul vl]\n"
                         "str z30, [%0, #30, mul vl]\n"
                         "str z31, [%0, #31, mul vl]\n"
                         :
                         : "r"(zget)
                         : "memory");
        __asm__ volatile(".arch_extension sve\n"
                         "str p0, [%0, #0, mul vl]\n"
                         "str p1, [%0, #1, mul vl]\n"
                         "str p2, [%0, #2, mul vl]\n"
                         "str p3, [%0, #3, mul vl]\n"
                         "str p4, [%0, #4, mul vl]\n"
                         "str p5, [%0, #5, mul vl]\n"
                         "str p6, [%0, #6, mul vl]\n"
                         "str p7, [%0, #7, mul vl]\n"
                         "str p8, [%0, #8, mul vl]\n"
                         "str p9, [%0, #9, mul vl]\n"
                         "str p10, [%0, #10, mul vl]\n"
                         "str p11, [%0, #11, mul vl]\n"
                         "str p12, [%0, #12, mul vl]\n"
                         "str p13, [%0, #13, mul vl]\n"
                         "str p14, [%0, #14, mul vl]\n"
                         "str p15, [%0, #15, mul vl]\n"
                         :
                         : "r"(pget)
                         : "memory");
}

int64_t guest_main(void)
{
        uint64_t t0, last, now, gaps = 0, rounds = 0, bad = 0, tag, vl;
        uint64_t freq = read_sysreg(CNTFRQ_EL0);
        struct keel_vm_info info;
        unsigned failed = 0, checks = 0;

        if (!((read_sysreg(ID_AA64PFR0_EL1) >> 32) & 0xf)) {
                guest_printf("sveswitch: SKIP: no SVE\n");
                return 77;
        }
        write_sysreg(CPACR_EL1, read_sysreg(CPACR_EL1) | 3ull << 16 | 3ull << 20); /* ZEN, FPEN */
        __asm__ volatile("isb");
        write_sysreg(S3_0_C1_C2_0, 0xf); /* ZCR_EL1.LEN: the longest the CPU and Keel allow */
        __asm__ volatile("isb");
        vl = sve_vl();
        hc_vm_info_gpa(gpa_of(&info), sizeof(info));
        tag = info.vm_id + 1;
        if (vl < 16 || vl > VL_MAX || vl % 16) {
                guest_printf("FAIL: sveswitch: vector length %lu bytes\n", (unsigned long)vl);
                return 1;
        }
        for (uint64_t i = 0; i < 32 * vl; i++)
                zset[i] = (uint8_t)(tag * 131 + i * 7 + (i >> 8) + 1);
        for (uint64_t i = 0; i < 16 * vl / 8; i++)
                pset[i] = (uint8_t)(tag * 29 + i * 13 + 5);
        sve_load();
        guest_printf("sveswitch: tag %lu, vector length %lu bytes, Z0-Z31 and P0-P15 set\n",
                     (unsigned long)tag, (unsigned long)vl);

        t0 = last = guest_counter();
        while (last - t0 < freq / 1000 * SVE_MS) {
                uint64_t before = bad;

                sve_store();
                for (uint64_t i = 0; i < 32 * vl; i++)
                        bad += zget[i] != zset[i];
                for (uint64_t i = 0; i < 16 * vl / 8; i++)
                        bad += pget[i] != pset[i];
                if (bad != before)
                        sve_load(); /* its own values again, to see whether it happens again */
                rounds++;
                now = guest_counter();
                gaps += now - last > freq / 1000; /* more than 1 ms away: another VM ran */
                last = now;
        }
        checks++;
        if (bad) {
                failed++;
                guest_printf("FAIL: sveswitch: %lu bytes of Z/P registers over %lu rounds were "
                             "not its own\n",
                             (unsigned long)bad, (unsigned long)rounds);
        }
        checks++;
        if (!gaps) {
                failed++;
                guest_printf("FAIL: sveswitch: never descheduled: the test proved nothing\n");
        }
        guest_printf("sveswitch: %lu foreign bytes in %lu rounds, descheduled %lu times\n",
                     (unsigned long)bad, (unsigned long)rounds, (unsigned long)gaps);
        if (failed) {
                guest_printf("sveswitch: %u of %u checks failed\n", failed, checks);
                return 1;
        }
        guest_printf("sveswitch: all %u checks passed\n", checks);
        return 0;
}
