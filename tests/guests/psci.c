/*
 * psci (arm64 only): Keel's PSCI 1.0 over both conduits, HVC and SMC (arch/arm64/psci.c):
 *   SMCCC_VERSION 1.1, PSCI_VERSION 1.0, FEATURES of supported and unknown functions,
 *   CPU_ON of the running vCPU (ALREADY_ON) and of a vCPU that does not exist
 *   (INVALID_PARAMETERS), AFFINITY_INFO (vCPU 0 on), MIGRATE_INFO_TYPE (no trusted OS),
 *   an unknown PSCI function (NOT_SUPPORTED), an unknown SMC outside PSCI (-1),
 * then, in a VM with two vCPUs (arm64_guests.cfg: vcpus = 2), a second vCPU: CPU_ON with an
 * entry point outside RAM or misaligned (INVALID_ADDRESS), an MPIDR with Aff1 or a high bit
 * set (INVALID_PARAMETERS), AFFINITY_INFO(1) off, then twice: CPU_ON(1) with a context id
 * that becomes its x0 and stack (the PSCI entry state is checked: EL1h, DAIF masked, MMU
 * off), CPU_ON(1) while it runs (ALREADY_ON), AFFINITY_INFO(1) on, then it turns itself off
 * with CPU_OFF and AFFINITY_INFO(1) reads off again,
 * then SYSTEM_OFF through SMC: the VM must stop as poweroff (returning is a failure).
 */
#include "guest.h"

#define SMCCC_VERSION      0x80000000ull
#define PSCI_VERSION       0x84000000ull
#define PSCI_CPU_OFF       0x84000002ull
#define PSCI_CPU_ON_64     0xc4000003ull
#define PSCI_AFFINITY_64   0xc4000004ull
#define PSCI_MIGRATE_INFO  0x84000006ull
#define PSCI_SYSTEM_OFF    0x84000008ull
#define PSCI_FEATURES      0x8400000aull
#define PSCI_UNKNOWN       0x8400001full
#define NOT_SUPPORTED      -1
#define INVALID_PARAMETERS -2
#define ALREADY_ON         -4
#define INVALID_ADDRESS    -9

static unsigned failed;

/* The second vCPU: SP = x0 = the context id (its stack top), then secondary_main. */
void secondary_entry(void);
void secondary_main(uint64_t ctx);
__asm__(".text\n"
        ".globl secondary_entry\n"
        ".balign 4\n"
        "secondary_entry:\n"
        "        mov sp, x0\n"
        "        bl secondary_main\n"
        "1:      wfi\n"
        "        b 1b\n");

static uint8_t secondary_stack[2][2048] __attribute__((aligned(16)));
/* Written by the second vCPU (plain aligned stores: the MMU is off, Device memory). */
static volatile uint64_t sec_ctx, sec_el, sec_daif, sec_sctlr, sec_runs, sec_go;

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

void secondary_main(uint64_t ctx)
{
        uint64_t v;

        __asm__ volatile("mrs %0, CurrentEL" : "=r"(v));
        sec_el = v;
        __asm__ volatile("mrs %0, DAIF" : "=r"(v));
        sec_daif = v;
        __asm__ volatile("mrs %0, SCTLR_EL1" : "=r"(v));
        sec_sctlr = v;
        sec_ctx = ctx;
        sec_runs = sec_runs + 1;
        while (sec_go != sec_runs)
                ;
        call(false, PSCI_CPU_OFF, 0, 0, 0);
        sec_runs = 1000; /* CPU_OFF returned: vCPU 0 reports it */
}

/* Spin until `*p` reads `want` (the other vCPU runs at once, or after our slice). */
static bool wait_for(volatile uint64_t *p, uint64_t want)
{
        for (unsigned long i = 0; i < 200000000ul; i++)
                if (*p == want)
                        return true;
        return false;
}

static void second_vcpu(void)
{
        uint64_t entry = (uint64_t)(uintptr_t)secondary_entry;

        expect(false, "CPU_ON(1, entry outside RAM)", call(false, PSCI_CPU_ON_64, 1, 0x1000, 0),
               INVALID_ADDRESS);
        expect(false, "CPU_ON(1, entry misaligned)", call(false, PSCI_CPU_ON_64, 1, entry + 2, 0),
               INVALID_ADDRESS);
        expect(false, "CPU_ON(Aff1 1)", call(false, PSCI_CPU_ON_64, 0x100, entry, 0),
               INVALID_PARAMETERS);
        expect(false, "CPU_ON(bit 40)", call(false, PSCI_CPU_ON_64, 1ull << 40 | 1, entry, 0),
               INVALID_PARAMETERS);
        expect(false, "AFFINITY_INFO(1) before", call(false, PSCI_AFFINITY_64, 1, 0, 0), 1);
        for (unsigned run = 1; run <= 2; run++) {
                uint64_t ctx = (uint64_t)(uintptr_t)secondary_stack[run - 1] + 2048;

                expect(run == 2, "CPU_ON(1)", call(run == 2, PSCI_CPU_ON_64, 1, entry, ctx), 0);
                if (!wait_for(&sec_runs, run)) {
                        failed++;
                        guest_printf("FAIL: vCPU 1 did not run (run %u)\n", run);
                        return;
                }
                expect(false, "vCPU 1 x0 = context id", sec_ctx == ctx, 1);
                expect(false, "vCPU 1 at EL1", sec_el, 4);
                expect(false, "vCPU 1 DAIF masked", sec_daif, 0x3c0);
                expect(false, "vCPU 1 MMU off", sec_sctlr & 1, 0);
                expect(false, "CPU_ON(1) while on", call(false, PSCI_CPU_ON_64, 1, entry, ctx),
                       ALREADY_ON);
                expect(false, "AFFINITY_INFO(1) on", call(false, PSCI_AFFINITY_64, 1, 0, 0), 0);
                sec_go = run;
                for (unsigned long i = 0; i < 200000000ul; i++)
                        if (call(false, PSCI_AFFINITY_64, 1, 0, 0) == 1)
                                break;
                expect(false, "AFFINITY_INFO(1) after CPU_OFF",
                       call(false, PSCI_AFFINITY_64, 1, 0, 0), 1);
        }
        expect(false, "vCPU 1 stayed off", sec_runs, 2);
        guest_printf("psci: second vCPU started twice and turned itself off\n");
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
        second_vcpu();
        if (failed) {
                guest_printf("psci: %u checks failed\n", failed);
                return (int64_t)failed;
        }
        guest_printf("psci: all checks passed; SYSTEM_OFF through smc\n");
        call(true, PSCI_SYSTEM_OFF, 0, 0, 0);
        guest_printf("FAIL: SYSTEM_OFF returned\n");
        return 100;
}
