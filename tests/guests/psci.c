/*
 * psci (arm64 only): Keel's PSCI 1.0 over both conduits, HVC and SMC (arch/arm64/psci.c):
 *   SMCCC_VERSION 1.1, PSCI_VERSION 1.0, FEATURES of supported and unknown functions,
 *   CPU_ON of the running vCPU (ALREADY_ON) and of a vCPU that does not exist
 *   (INVALID_PARAMETERS), AFFINITY_INFO (vCPU 0 on), MIGRATE_INFO_TYPE (no trusted OS),
 *   an unknown PSCI function (NOT_SUPPORTED), an unknown SMC outside PSCI (-1),
 * then SYSTEM_OFF through SMC: the VM must stop as poweroff (returning is a failure).
 */
#include "guest.h"

#define SMCCC_VERSION      0x80000000ull
#define PSCI_VERSION       0x84000000ull
#define PSCI_CPU_ON_64     0xc4000003ull
#define PSCI_AFFINITY_64   0xc4000004ull
#define PSCI_MIGRATE_INFO  0x84000006ull
#define PSCI_SYSTEM_OFF    0x84000008ull
#define PSCI_FEATURES      0x8400000aull
#define PSCI_UNKNOWN       0x8400001full
#define NOT_SUPPORTED      -1
#define INVALID_PARAMETERS -2
#define ALREADY_ON         -4

static unsigned failed;

static int64_t call(bool smc, uint64_t f, uint64_t a1, uint64_t a2, uint64_t a3)
{
        register uint64_t x0 __asm__("x0") = f;
        register uint64_t x1 __asm__("x1") = a1;
        register uint64_t x2 __asm__("x2") = a2;
        register uint64_t x3 __asm__("x3") = a3;

        if (smc)
                __asm__ volatile("smc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) : : "memory");
        else
                __asm__ volatile("hvc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) : : "memory");
        return (int64_t)x0;
}

static void expect(bool smc, const char *what, int64_t got, int64_t want)
{
        const char *via = smc ? "smc" : "hvc";

        if (got == want) {
                guest_printf("ok: %s %s = %ld\n", via, what, got);
                return;
        }
        failed++;
        guest_printf("FAIL: %s %s = %ld, expected %ld\n", via, what, got, want);
}

int64_t guest_main(void)
{
        for (int smc = 0; smc <= 1; smc++) {
                expect(smc, "SMCCC_VERSION", call(smc, SMCCC_VERSION, 0, 0, 0), 0x10001);
                expect(smc, "PSCI_VERSION", call(smc, PSCI_VERSION, 0, 0, 0), 0x10000);
                expect(smc, "FEATURES(CPU_ON)", call(smc, PSCI_FEATURES, PSCI_CPU_ON_64, 0, 0), 0);
                expect(smc, "FEATURES(unknown)", call(smc, PSCI_FEATURES, PSCI_UNKNOWN, 0, 0),
                       NOT_SUPPORTED);
                expect(smc, "CPU_ON(self)", call(smc, PSCI_CPU_ON_64, 0, 0x40100000, 0),
                       ALREADY_ON);
                expect(smc, "CPU_ON(vCPU 5)", call(smc, PSCI_CPU_ON_64, 5, 0x40100000, 0),
                       INVALID_PARAMETERS);
                expect(smc, "AFFINITY_INFO(0)", call(smc, PSCI_AFFINITY_64, 0, 0, 0), 0);
                expect(smc, "MIGRATE_INFO_TYPE", call(smc, PSCI_MIGRATE_INFO, 0, 0, 0), 2);
                expect(smc, "unknown PSCI function", call(smc, PSCI_UNKNOWN, 0, 0, 0),
                       NOT_SUPPORTED);
        }
        expect(true, "non-PSCI function", call(true, 0xc2000001ull, 0, 0, 0), -1);
        if (failed) {
                guest_printf("psci: %u checks failed\n", failed);
                return (int64_t)failed;
        }
        guest_printf("psci: all checks passed; SYSTEM_OFF through smc\n");
        call(true, PSCI_SYSTEM_OFF, 0, 0, 0);
        guest_printf("FAIL: SYSTEM_OFF returned\n");
        return 100;
}
