/*
 * hypercalls: exercises every hypercall and its error cases (docs/hypercalls.md):
 *   VERSION                -> KEEL_HC_ABI_VERSION
 *   PRINT ok               -> len, the text appears as this VM's line
 *   PRINT len 0            -> 0
 *   PRINT too long         -> -E2BIG
 *   PRINT bad gpa          -> -EFAULT (outside RAM, crossing the end of RAM, wrapping 2^64)
 *   VM_INFO ok             -> sizeof(struct keel_vm_info); fields consistent with the RAM
 *                             Keel passed at entry (x86_64: RDI, arm64: x0/x1); only that
 *                             many bytes written; the name printed for the test driver
 *   VM_INFO too small      -> -EINVAL, buffer untouched
 *   VM_INFO bad gpa        -> -EFAULT
 *   unknown numbers        -> -ENOSYS (x86), SMCCC NOT_SUPPORTED -1 (arm64)
 *   arm64: SMCCC_VERSION 1.1, SMCCC_ARCH_FEATURES, the vendor hypervisor service's Call UID
 *   and Revision, an unknown SMCCC function ID (1337) -> NOT_SUPPORTED
 * Each failure prints "FAIL: ..." and the exit code is the number of failed checks.
 */
#include "guest.h"

static unsigned checks, failed;

static void expect(const char *what, int64_t got, int64_t want)
{
        checks++;
        if (got == want) {
                guest_printf("ok: %s = %ld\n", what, got);
                return;
        }
        failed++;
        guest_printf("FAIL: %s = %ld, expected %ld\n", what, got, want);
}

static void expect_true(const char *what, bool ok)
{
        checks++;
        if (ok) {
                guest_printf("ok: %s\n", what);
                return;
        }
        failed++;
        guest_printf("FAIL: %s\n", what);
}

static void test_print(void)
{
        static const char msg[] = "printed by KEEL_HC_PRINT\n";
        static char big[KEEL_HC_PRINT_MAX + 1];
        uint64_t end = guest_ram_end();

        expect("PRINT ok", hc_print(msg, sizeof(msg) - 1), sizeof(msg) - 1);
        expect("PRINT len 0", hc_print(msg, 0), 0);
        /* The maximum length is accepted; one more byte is refused. */
        memset(big, 'x', sizeof(big));
        big[KEEL_HC_PRINT_MAX - 1] = '\n';
        expect("PRINT len max", hc_print(big, KEEL_HC_PRINT_MAX), KEEL_HC_PRINT_MAX);
        expect("PRINT too long", hc_print(big, KEEL_HC_PRINT_MAX + 1), -KEEL_E2BIG);
        expect("PRINT huge len", hc_print(big, ~0ull), -KEEL_E2BIG);
        expect("PRINT gpa outside RAM", hc_print_gpa(end + 0x1000, 8), -KEEL_EFAULT);
        expect("PRINT crossing end of RAM", hc_print_gpa(end - 4, 8), -KEEL_EFAULT);
        expect("PRINT wrapping 2^64", hc_print_gpa(~0ull - 3, 8), -KEEL_EFAULT);
}

static void test_vm_info(void)
{
        /* Room for the struct plus a canary that must stay untouched. */
        static union {
                struct keel_vm_info info;
                uint8_t bytes[sizeof(struct keel_vm_info) + 16];
        } buf;
        const size_t n = sizeof(struct keel_vm_info);
        struct keel_vm_info *info = &buf.info;
        bool untouched = true, canary_ok = true, name_ok = false;

        memset(&buf, 0xa5, sizeof(buf));
        expect("VM_INFO too small", hc_vm_info_gpa(gpa_of(&buf), n - 1), -KEEL_EINVAL);
        for (size_t i = 0; i < sizeof(buf); i++)
                untouched &= buf.bytes[i] == 0xa5;
        expect_true("VM_INFO too small leaves the buffer alone", untouched);
        expect("VM_INFO gpa outside RAM", hc_vm_info_gpa(guest_ram_end() + 0x1000, n),
               -KEEL_EFAULT);
        expect("VM_INFO crossing end of RAM", hc_vm_info_gpa(guest_ram_end() - n / 2, n),
               -KEEL_EFAULT);

        expect("VM_INFO ok", hc_vm_info_gpa(gpa_of(&buf), sizeof(buf)), n);
        for (size_t i = n; i < sizeof(buf); i++)
                canary_ok &= buf.bytes[i] == 0xa5;
        expect_true("VM_INFO writes only sizeof(struct keel_vm_info) bytes", canary_ok);
        expect("VM_INFO abi_version", info->abi_version, KEEL_HC_ABI_VERSION);
        expect("VM_INFO ram_base", (int64_t)info->ram_base, (int64_t)guest_ram_base);
        expect("VM_INFO ram_size = " GUEST_RAM_SIZE_REG " at entry", (int64_t)info->ram_size,
               (int64_t)guest_ram_size);
        expect("VM_INFO vcpu_count", info->vcpu_count, 1);
        for (size_t i = 0; i < sizeof(info->name); i++) {
                if (info->name[i] == '\0') {
                        name_ok = i > 0;
                        break;
                }
        }
        expect_true("VM_INFO name non-empty and NUL-terminated", name_ok);
        /* The test driver checks this line against the VM's name in the config. */
        if (name_ok)
                guest_printf("vm_info: name=%s id=%u ram_size=0x%lx\n", info->name, info->vm_id,
                             info->ram_size);
}

#ifdef __aarch64__
/* An SMCCC call over HVC #0 with a raw function ID; x1..x3 come back in r[1..3]. */
static int64_t smccc_hvc(uint64_t fid, uint64_t arg, uint64_t r[4])
{
        register uint64_t x0 __asm__("x0") = fid;
        register uint64_t x1 __asm__("x1") = arg;
        register uint64_t x2 __asm__("x2") = 0;
        register uint64_t x3 __asm__("x3") = 0;

        __asm__ volatile("hvc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) : : "memory");
        r[0] = x0;
        r[1] = x1;
        r[2] = x2;
        r[3] = x3;
        return (int64_t)x0;
}

/* The SMCCC calls every SMCCC 1.1 caller may make, and Keel's place among them. */
static void smccc_checks(void)
{
        uint64_t r[4];

        expect("SMCCC_VERSION", smccc_hvc(0x80000000, 0, r), 0x10001);
        expect("SMCCC_ARCH_FEATURES(SMCCC_ARCH_FEATURES)", smccc_hvc(0x80000001, 0x80000001, r), 0);
        expect("SMCCC_ARCH_FEATURES(WORKAROUND_1)", smccc_hvc(0x80000001, 0x80008000, r), -1);
        expect("SMCCC_ARCH_FEATURES(1337)", smccc_hvc(0x80000001, 1337, r), -1);
        expect("PSCI_FEATURES(SMCCC_ARCH_FEATURES)", smccc_hvc(0x8400000a, 0x80000001, r), 0);
        expect("unknown SMCCC function 1337", smccc_hvc(1337, 0, r), -1);
        expect("unknown vendor hypervisor function 0xc6000004", smccc_hvc(0xc6000004, 0, r), -1);
        expect("VERSION as SMC32 0x86000000 (Keel's calls are SMC64)", smccc_hvc(0x86000000, 0, r),
               -1);
        expect("VERSION as 0xc6000000", smccc_hvc(KEEL_HC_ARM64_FID(KEEL_HC_VERSION), 0, r),
               KEEL_HC_ABI_VERSION);
        smccc_hvc(KEEL_HC_ARM64_CALL_UID, 0, r);
        expect_true("vendor hypervisor Call UID is Keel's",
                    r[0] == KEEL_HC_ARM64_UID0 && r[1] == KEEL_HC_ARM64_UID1 &&
                        r[2] == KEEL_HC_ARM64_UID2 && r[3] == KEEL_HC_ARM64_UID3);
        expect("vendor hypervisor Revision", smccc_hvc(KEEL_HC_ARM64_REVISION, 0, r),
               KEEL_HC_ABI_VERSION);
}
#endif

int64_t guest_main(void)
{
        expect("VERSION", hc_version(), KEEL_HC_ABI_VERSION);
        test_print();
        test_vm_info();
        expect("unknown hypercall 4", keel_hypercall(4, 0, 0, 0, 0), GUEST_HC_UNKNOWN);
        expect("unknown hypercall 0x1234", keel_hypercall(0x1234, 1, 2, 3, 4), GUEST_HC_UNKNOWN);
        expect("unknown hypercall 2^64-1", keel_hypercall(~0ull, 0, 0, 0, 0), GUEST_HC_UNKNOWN);
#ifdef __aarch64__
        smccc_checks();
#endif
        /* Still alive and well after all the refusals. */
        expect("VERSION again", hc_version(), KEEL_HC_ABI_VERSION);
        if (failed) {
                guest_printf("hypercalls: FAIL: %u of %u checks failed\n", failed, checks);
                return failed;
        }
        guest_printf("hypercalls: all %u checks passed\n", checks);
        return 0;
}
