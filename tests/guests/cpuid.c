/*
 * cpuid: checks the CPUID view Keel gives its guests. Built as an ELF linked at 0x200000 (not
 * the flat images' 0x100000) so that it also tests the ELF loader: segments at their
 * addresses, .bss zeroed (rt/guest.c checks), entry from e_entry.
 *
 * Each failed check prints "FAIL: <check>" and sets its own bit in the exit code, so the code
 * says which checks failed; 0 means all held.
 */
#include "guest.h"

enum {
        BAD_HV_MAX_LEAF = 1 << 0,   /* 0x40000000 EAX != 0x40000001 */
        BAD_HV_SIGNATURE = 1 << 1,  /* 0x40000000 EBX,ECX,EDX != "KeelKeelKeel" */
        BAD_HV_ABI = 1 << 2,        /* 0x40000001 EAX != 1 */
        BAD_HV_PRESENT = 1 << 3,    /* leaf 1 ECX bit 31 (hypervisor present) clear */
        BAD_VMX_VISIBLE = 1 << 4,   /* leaf 1 ECX bit 5 (VMX) set */
        BAD_SVM_VISIBLE = 1 << 5,   /* 0x80000001 ECX bit 2 (SVM) set */
        BAD_SVM_LEAF = 1 << 6,      /* 0x8000000A not all zero (or not the top basic leaf) */
        BAD_EXT_MAX_LEAF = 1 << 7,  /* 0x80000000 EAX < 0x80000001: cannot check SVM */
        BAD_ELF_PLACEMENT = 1 << 8, /* not running where the ELF was linked */
};

static unsigned failures, checks, failed;

/* Makes the ELF's data segment end in three pages of .bss the loader must zero (the runtime
 * checks all of .bss at entry). */
static volatile uint8_t zeroed_by_loader[3 * 4096];

static void check(bool ok, unsigned bit, const char *what, struct cpuid_regs r)
{
        checks++;
        if (ok) {
                guest_printf("ok: %s\n", what);
                return;
        }
        failures |= bit;
        failed++;
        guest_printf("FAIL: %s (eax=%x ebx=%x ecx=%x edx=%x)\n", what, r.eax, r.ebx, r.ecx, r.edx);
}

int64_t guest_main(void)
{
        struct cpuid_regs r, ext;
        char sig[13];

        r.eax = r.ebx = r.ecx = r.edx = 0;
        check(gpa_of(__image_start) == 0x200000 && guest_entry_state.rip == 0x200000 &&
                  zeroed_by_loader[sizeof(zeroed_by_loader) - 1] == 0,
              BAD_ELF_PLACEMENT, "ELF image linked at 0x200000 runs there", r);

        r = cpuid(0x40000000, 0);
        memcpy(sig + 0, &r.ebx, 4);
        memcpy(sig + 4, &r.ecx, 4);
        memcpy(sig + 8, &r.edx, 4);
        sig[12] = '\0';
        check(r.eax == 0x40000001, BAD_HV_MAX_LEAF, "0x40000000 EAX = 0x40000001", r);
        check(strcmp(sig, "KeelKeelKeel") == 0, BAD_HV_SIGNATURE,
              "0x40000000 EBX,ECX,EDX = \"KeelKeelKeel\"", r);

        r = cpuid(0x40000001, 0);
        check(r.eax == KEEL_HC_ABI_VERSION, BAD_HV_ABI, "0x40000001 EAX = ABI version 1", r);

        r = cpuid(1, 0);
        check(r.ecx & (1u << 31), BAD_HV_PRESENT, "leaf 1 ECX[31] hypervisor present", r);
        check(!(r.ecx & (1u << 5)), BAD_VMX_VISIBLE, "leaf 1 ECX[5] VMX hidden", r);

        ext = cpuid(0x80000000, 0);
        check(ext.eax >= 0x80000001, BAD_EXT_MAX_LEAF, "0x80000000 EAX >= 0x80000001", ext);
        if (ext.eax >= 0x80000001) {
                r = cpuid(0x80000001, 0);
                check(!(r.ecx & (1u << 2)), BAD_SVM_VISIBLE, "0x80000001 ECX[2] SVM hidden", r);
        }
        /*
         * The SVM leaf is zero where it exists. Beyond the max extended leaf (Intel hosts) a
         * CPU answers with its highest basic leaf, and so does Keel: then that is the check.
         */
        r = cpuid(0x8000000a, 0);
        if (ext.eax >= 0x8000000a) {
                check(!r.eax && !r.ebx && !r.ecx && !r.edx, BAD_SVM_LEAF, "0x8000000A all zero", r);
        } else {
                struct cpuid_regs top = cpuid(cpuid(0, 0).eax, 0);

                check(r.eax == top.eax && r.ebx == top.ebx && r.ecx == top.ecx && r.edx == top.edx,
                      BAD_SVM_LEAF, "0x8000000A beyond the max extended leaf = highest basic leaf",
                      r);
        }

        if (failures) {
                guest_printf("cpuid: FAIL: %u of %u checks failed (exit code 0x%x)\n", failed,
                             checks, failures);
                return failures;
        }
        guest_printf("cpuid: all %u checks passed\n", checks);
        return 0;
}
