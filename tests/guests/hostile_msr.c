/*
 * hostile_msr (x86_64): the MSR space and the instructions around it, against the policy of
 * docs/x86-state.md. Built twice from this source: hostile_msr.bin, a flat image (no LAPIC:
 * CPUID.1:EDX.APIC is 0), and hostile_msr_apic.linux, booted as a Linux kernel (Keel's LAPIC
 * model and the MSRs of the Linux platform); the guest tells which from CPUID. Each check
 * has one expected outcome:
 *   - CPUID: MONITOR, VMX, x2APIC, SVM, RDPRU hidden; with MPX hidden in leaf 7, leaf 0xD
 *     lists no MPX component and its subleaves 3 and 4 are empty;
 *   - MONITOR, MWAIT, MONITORX, MWAITX: #UD (hidden); RDPMC: #GP (no PMU); RDPRU: #UD;
 *   - EFER: SVME, reserved bits: #GP, unchanged; LME cleared in long mode: #GP; NXE and SCE
 *     toggle and read back;
 *   - the SVM and VMX control MSRs (VM_HSAVE_PA, IGNNE, SMM_CTL, SMM_BASE/ADDR/MASK,
 *     SVM_KEY, TSC_RATIO, FEATURE_CONTROL, 0x480-0x493): #GP on read and on write; VM_CR
 *     reads 0 in a Linux VM (#GP otherwise) and keeps reading 0 whatever is written;
 *   - non-canonical FS_BASE, GS_BASE, KERNEL_GS_BASE, LSTAR, CSTAR: #GP, value kept;
 *     SYSENTER_ESP/EIP likewise on Intel (on AMD, which has no 64-bit SYSENTER, they pass
 *     through: the CPU's answer, #GP or accepted); TSC_AUX with bits 63:32 set: #GP,
 *     RDTSCP still sees the value written before;
 *   - IA32_APIC_BASE (Linux VM): 0xfee00900 on vCPU 0; moving the base, EXTD (x2APIC is
 *     hidden), EXTD without EN, clearing BSP, reserved bits: #GP each, value kept; EN
 *     cleared: accepted, CPUID.1:EDX.APIC reads 0 until EN is set again; then the LAPIC is
 *     in its reset state (SVR 0xff) and delivers a self-IPI once software-enabled. Flat VM:
 *     #GP on read and write;
 *   - the sweep: RDMSR of every index in 0..0x1fff, 0x40000000..0x400000ff,
 *     0xc0000000..0xc0001fff, 0xc0010000..0xc0011fff and 3000 pseudo-random others: #GP
 *     (error code 0) or a value, never another exception, and a value exactly for the MSRs
 *     docs/x86-state.md lists for this kind of VM; each one read that changes nothing the
 *     guest runs on is written back (accepted), then written with two garbage values (#GP
 *     or accepted) and restored; a garbage write to every index that did not read: #GP.
 * Prints one line per part and "hostile_msr: all N checks passed", exit 0; a failed check
 * is a FAIL line and exit 1.
 */
#include "irq_x86.h"

#define MSR_TSC             0x10u
#define MSR_APIC_BASE       0x1bu
#define MSR_FEATURE_CONTROL 0x3au
#define MSR_PATCH_LEVEL     0x8bu
#define MSR_MTRRCAP         0xfeu
#define MSR_SYSENTER_CS     0x174u
#define MSR_SYSENTER_ESP    0x175u
#define MSR_SYSENTER_EIP    0x176u
#define MSR_MCG_CAP         0x179u
#define MSR_MCG_STATUS      0x17au
#define MSR_MISC_ENABLE     0x1a0u
#define MSR_PAT             0x277u
#define MSR_MTRR_DEF_TYPE   0x2ffu
#define MSR_EFER            0xc0000080u
#define MSR_STAR            0xc0000081u
#define MSR_LSTAR           0xc0000082u
#define MSR_CSTAR           0xc0000083u
#define MSR_SFMASK          0xc0000084u
#define MSR_FS_BASE         0xc0000100u
#define MSR_GS_BASE         0xc0000101u
#define MSR_KERNEL_GS_BASE  0xc0000102u
#define MSR_TSC_AUX         0xc0000103u
#define MSR_TSC_RATIO       0xc0000104u
#define MSR_VM_CR           0xc0010114u
#define MSR_VM_HSAVE_PA     0xc0010117u

#define EFER_SCE  (1ull << 0)
#define EFER_LME  (1ull << 8)
#define EFER_LMA  (1ull << 10)
#define EFER_NXE  (1ull << 11)
#define EFER_SVME (1ull << 12)

#define APIC_BASE_BSP  (1ull << 8)
#define APIC_BASE_EXTD (1ull << 10)
#define APIC_BASE_EN   (1ull << 11)

#define VEC_UD   6
#define VEC_GP   13
#define NO_FAULT 255u

static unsigned checks, failed;
static bool platform, intel;

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *fmt, ...)
{
        va_list ap;

        checks++;
        if (ok)
                return;
        if (++failed > 40)
                return;
        guest_puts("FAIL: hostile_msr: ");
        va_start(ap, fmt);
        guest_vprintf(fmt, ap);
        va_end(ap);
        guest_puts("\n");
}

/*
 * One faulting instruction of `len` bytes: the IDT (hostile_x86.h) resumes after it. Returns
 * the vector it raised, NO_FAULT if none; a #GP's error code must be 0 (checked here).
 */
static unsigned fault_begin(unsigned len)
{
        hx_last_vector = ~0ull;
        hx_last_error = 0;
        hx_resume_len = len;
        return 0;
}

static unsigned fault_end(void)
{
        hx_resume_len = 0;
        if (hx_last_vector == ~0ull)
                return NO_FAULT;
        if (hx_last_vector == VEC_GP && hx_last_error != 0)
                check(false, "#GP with error code 0x%lx", (unsigned long)hx_last_error);
        return (unsigned)hx_last_vector;
}

static unsigned rdmsr_v(uint32_t msr, uint64_t *val)
{
        uint32_t lo = 0, hi = 0;

        fault_begin(2);
        __asm__ volatile("rdmsr" : "+a"(lo), "+d"(hi) : "c"(msr) : "memory");
        *val = ((uint64_t)hi << 32) | lo;
        return fault_end();
}

static unsigned wrmsr_v(uint32_t msr, uint64_t v)
{
        fault_begin(2);
        __asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
        return fault_end();
}

static uint64_t rdmsr_ok(uint32_t msr)
{
        uint64_t v;
        unsigned vec = rdmsr_v(msr, &v);

        check(vec == NO_FAULT, "RDMSR 0x%x: vector %u, expected a value", msr, vec);
        return v;
}

/* A write that must fault with `want` and leave the MSR as it was (when it reads). */
static void expect_wr_fault(uint32_t msr, uint64_t v, unsigned want, bool readable,
                            const char *what)
{
        uint64_t before = 0, after = 0;

        if (readable)
                rdmsr_v(msr, &before);
        unsigned vec = wrmsr_v(msr, v);

        check(vec == want, "WRMSR 0x%x = 0x%lx (%s): vector %u, expected %u", msr, (unsigned long)v,
              what, vec, want);
        if (readable) {
                rdmsr_v(msr, &after);
                check(after == before, "WRMSR 0x%x = 0x%lx (%s) changed it: 0x%lx -> 0x%lx", msr,
                      (unsigned long)v, what, (unsigned long)before, (unsigned long)after);
        }
}

static void expect_wr_ok(uint32_t msr, uint64_t v, uint64_t readback, const char *what)
{
        unsigned vec = wrmsr_v(msr, v);
        uint64_t got = 0;

        check(vec == NO_FAULT, "WRMSR 0x%x = 0x%lx (%s): vector %u, expected no fault", msr,
              (unsigned long)v, what, vec);
        rdmsr_v(msr, &got);
        check(got == readback, "WRMSR 0x%x = 0x%lx (%s): reads 0x%lx, expected 0x%lx", msr,
              (unsigned long)v, what, (unsigned long)got, (unsigned long)readback);
}

/* ---- CPUID and the instructions it governs ---- */

#define BIT(n) (1u << (n))

static unsigned run_bytes(const uint8_t *bytes, unsigned len, uint32_t eax, uint32_t ecx)
{
        static uint8_t code[32] __attribute__((aligned(32)));
        uint64_t target = gpa_of(code);

        memcpy(code, bytes, len);
        code[len] = 0xc3; /* ret */
        fault_begin(len);
        __asm__ volatile("call *%0"
                         : "+r"(target), "+a"(eax), "+c"(ecx)
                         : "d"(0ull)
                         : "rsi", "rdi", "r8", "r9", "r10", "r11", "memory");
        return fault_end();
}

static void cpuid_part(void)
{
        struct cpuid_regs l0 = cpuid(0, 0), l1 = cpuid(1, 0), x0 = cpuid(0x80000000, 0);
        struct cpuid_regs x1 = {0}, x8 = {0}, l7 = {0};
        unsigned n = 0;

        if (x0.eax >= 0x80000001)
                x1 = cpuid(0x80000001, 0);
        if (x0.eax >= 0x80000008)
                x8 = cpuid(0x80000008, 0);
        if (l0.eax >= 7)
                l7 = cpuid(7, 0);
        check(!(l1.ecx & BIT(3)), "CPUID.1:ECX.MONITOR shown");
        check(!(l1.ecx & BIT(5)), "CPUID.1:ECX.VMX shown");
        check(!(l1.ecx & BIT(21)), "CPUID.1:ECX.x2APIC shown");
        check(!(x1.ecx & BIT(2)), "CPUID.80000001:ECX.SVM shown");
        check(!(x1.ecx & BIT(29)), "CPUID.80000001:ECX.MONITORX shown");
        check(!(x8.ebx & BIT(4)), "CPUID.80000008:EBX.RDPRU shown");
        check(!(l7.ebx & BIT(14)), "CPUID.7:EBX.MPX shown");
        if (l0.eax >= 0xd && !(l7.ebx & BIT(14))) {
                struct cpuid_regs d0 = cpuid(0xd, 0), d3 = cpuid(0xd, 3), d4 = cpuid(0xd, 4);

                check(!(d0.eax & (BIT(3) | BIT(4))),
                      "CPUID.(0xD,0).EAX = 0x%x lists MPX (BNDREGS, BNDCSR) while leaf 7 hides it",
                      d0.eax);
                check(!(d3.eax | d3.ebx | d3.ecx | d3.edx),
                      "CPUID.(0xD,3) = 0x%x 0x%x 0x%x 0x%x for hidden MPX", d3.eax, d3.ebx, d3.ecx,
                      d3.edx);
                check(!(d4.eax | d4.ebx | d4.ecx | d4.edx),
                      "CPUID.(0xD,4) = 0x%x 0x%x 0x%x 0x%x for hidden MPX", d4.eax, d4.ebx, d4.ecx,
                      d4.edx);
                n++;
        }
        guest_printf("hostile_msr: CPUID hides MONITOR, VMX, SVM, x2APIC, RDPRU and MPX "
                     "(leaf 0xD %s)\n",
                     n ? "consistent" : "absent");
}

static void insn_part(void)
{
        static const uint8_t monitor[] = {0x0f, 0x01, 0xc8}, mwait[] = {0x0f, 0x01, 0xc9},
                             monitorx[] = {0x0f, 0x01, 0xfa}, mwaitx[] = {0x0f, 0x01, 0xfb},
                             rdpmc[] = {0x0f, 0x33}, rdpru[] = {0x0f, 0x01, 0xfd};
        static uint64_t line[8] __attribute__((aligned(64)));
        static const uint32_t counters[] = {0, 1, 3, 0x40000000u, 0x40000001u, 0x80000000u};
        unsigned v;

        /* MONITOR takes its address in RAX: a line of our own. */
        v = run_bytes(monitor, sizeof(monitor), (uint32_t)gpa_of(line), 0);
        check(v == VEC_UD, "MONITOR: vector %u, expected #UD", v);
        v = run_bytes(mwait, sizeof(mwait), 0, 0);
        check(v == VEC_UD, "MWAIT: vector %u, expected #UD", v);
        v = run_bytes(monitorx, sizeof(monitorx), (uint32_t)gpa_of(line), 0);
        check(v == VEC_UD, "MONITORX: vector %u, expected #UD", v);
        v = run_bytes(mwaitx, sizeof(mwaitx), 0, 0);
        check(v == VEC_UD, "MWAITX: vector %u, expected #UD", v);
        for (unsigned i = 0; i < ARRAY_SIZE(counters); i++) {
                v = run_bytes(rdpmc, sizeof(rdpmc), 0, counters[i]);
                check(v == VEC_GP, "RDPMC ECX=0x%x: vector %u, expected #GP", counters[i], v);
        }
        v = run_bytes(rdpru, sizeof(rdpru), 0, 0);
        check(v == VEC_UD, "RDPRU ECX=0: vector %u, expected #UD", v);
        v = run_bytes(rdpru, sizeof(rdpru), 0, 1);
        check(v == VEC_UD, "RDPRU ECX=1: vector %u, expected #UD", v);
        guest_printf("hostile_msr: MONITOR, MWAIT, MONITORX, MWAITX, RDPRU: #UD; RDPMC: #GP\n");
}

/* ---- EFER ---- */

static void efer_part(void)
{
        static const unsigned reserved[] = {1, 2, 7, 9, 13, 15, 16, 17, 18, 20, 21, 32, 47, 63};
        struct cpuid_regs x1 = cpuid(0x80000001, 0);
        uint64_t e = rdmsr_ok(MSR_EFER);

        check((e & (EFER_LME | EFER_LMA)) == (EFER_LME | EFER_LMA), "EFER 0x%lx: not in long mode",
              (unsigned long)e);
        check(!(e & EFER_SVME), "EFER reads SVME: 0x%lx", (unsigned long)e);
        expect_wr_fault(MSR_EFER, e | EFER_SVME, VEC_GP, true, "SVME: SVM is hidden");
        for (unsigned i = 0; i < ARRAY_SIZE(reserved); i++)
                expect_wr_fault(MSR_EFER, e | (1ull << reserved[i]), VEC_GP, true, "reserved bit");
        if (!(x1.edx & BIT(25))) /* FFXSR */
                expect_wr_fault(MSR_EFER, e | (1ull << 14), VEC_GP, true, "FFXSR not shown");
        expect_wr_fault(MSR_EFER, e & ~EFER_LME, VEC_GP, true, "LME cleared while LMA = 1");
        if (x1.edx & BIT(20)) { /* NX */
                expect_wr_ok(MSR_EFER, e ^ EFER_NXE, e ^ EFER_NXE, "NXE toggled");
                expect_wr_ok(MSR_EFER, e, e, "NXE back");
        }
        expect_wr_ok(MSR_EFER, e ^ EFER_SCE, e ^ EFER_SCE, "SCE toggled");
        expect_wr_ok(MSR_EFER, e, e, "SCE back");
        /* LMA is read-only: writing it clear changes nothing (it follows CR0.PG and LME). */
        expect_wr_ok(MSR_EFER, e & ~EFER_LMA, e, "LMA written 0");
        guest_printf("hostile_msr: EFER: SVME, %u reserved bits, LME cleared in long mode: #GP; "
                     "NXE, SCE kept\n",
                     (unsigned)ARRAY_SIZE(reserved));
}

/* PAT (a reserved memory type: #GP) and TSC (written, then counts on from there). */
static void pat_tsc_part(void)
{
        uint64_t pat = rdmsr_ok(MSR_PAT), t;

        check(pat == 0x0007040600070406ull, "PAT 0x%lx, expected the reset value",
              (unsigned long)pat);
        expect_wr_fault(MSR_PAT, (pat & ~0xffull) | 2, VEC_GP, true, "PAT type 2");
        expect_wr_fault(MSR_PAT, (pat & ~(0xffull << 56)) | (8ull << 56), VEC_GP, true,
                        "PAT type 8");
        expect_wr_ok(MSR_PAT, 0x0606060606060606ull, 0x0606060606060606ull, "PAT all WB");
        expect_wr_ok(MSR_PAT, pat, pat, "PAT back");
        check(wrmsr_v(MSR_TSC, 1ull << 40) == NO_FAULT, "WRMSR TSC refused");
        t = rdmsr_ok(MSR_TSC);
        check(t >= 1ull << 40 && t < (1ull << 40) + (1ull << 36), "TSC 0x%lx after writing 2^40",
              (unsigned long)t);
        /* RDTSC does not exit: the CPU adds the vCPU's TSC offset itself (VT-x: only with
         * "use TSC offsetting" on, which Keel once left off). */
        t = rdtsc();
        check(t >= 1ull << 40 && t < (1ull << 40) + (1ull << 36), "RDTSC 0x%lx after writing 2^40",
              (unsigned long)t);
        guest_printf("hostile_msr: PAT reserved types: #GP; TSC written and read back by RDMSR "
                     "and RDTSC\n");
}

/* ---- SVM and VMX control MSRs ---- */

static void virt_msrs_part(void)
{
        static const uint32_t gone[] = {
            MSR_VM_HSAVE_PA,
            0xc0010115u /* IGNNE */,
            0xc0010116u /* SMM_CTL */,
            0xc0010111u /* SMM_BASE */,
            0xc0010112u /* SMM_ADDR */,
            0xc0010113u /* SMM_MASK */,
            0xc0010118u /* SVM_KEY */,
            MSR_TSC_RATIO,
            MSR_FEATURE_CONTROL,
        };
        static const uint64_t values[] = {0, 0x1000, 0x5, ~0ull};
        unsigned n = 0;
        uint64_t v;

        for (unsigned i = 0; i < ARRAY_SIZE(gone) + 0x14; i++) {
                uint32_t msr = i < ARRAY_SIZE(gone) ? gone[i] : 0x480u + (i - ARRAY_SIZE(gone));
                unsigned vec = rdmsr_v(msr, &v);

                check(vec == VEC_GP, "RDMSR 0x%x (SVM/VMX control): vector %u, expected #GP", msr,
                      vec);
                for (unsigned j = 0; j < ARRAY_SIZE(values); j++)
                        expect_wr_fault(msr, values[j], VEC_GP, false, "SVM/VMX control");
                n++;
        }
        /* VM_CR: in a Linux VM it reads 0 (SVMDIS clear, unlocked) and ignores writes. */
        if (platform) {
                check(rdmsr_ok(MSR_VM_CR) == 0, "VM_CR reads non-zero");
                expect_wr_ok(MSR_VM_CR, 0, 0, "VM_CR 0");
                expect_wr_ok(MSR_VM_CR, 0x18, 0, "VM_CR LOCK | SVMDIS: ignored");
                expect_wr_ok(MSR_VM_CR, ~0ull, 0, "VM_CR all ones: ignored");
        } else {
                check(rdmsr_v(MSR_VM_CR, &v) == VEC_GP, "VM_CR readable without the platform");
                expect_wr_fault(MSR_VM_CR, 0x18, VEC_GP, false, "VM_CR");
        }
        n++;
        guest_printf("hostile_msr: %u SVM and VMX control MSRs: #GP on read and write; VM_CR "
                     "%s\n",
                     n, platform ? "reads 0, writes ignored" : "#GP");
}

/* ---- canonical addresses, TSC_AUX ---- */

static void canonical_part(void)
{
        static const uint32_t addr_msrs[] = {MSR_FS_BASE,     MSR_GS_BASE, MSR_KERNEL_GS_BASE,
                                             MSR_LSTAR,       MSR_CSTAR,   MSR_SYSENTER_ESP,
                                             MSR_SYSENTER_EIP};
        static const uint64_t bad[] = {0x0000800000000000ull, 0xffff7fffffffffffull,
                                       0x8000000000000000ull, 0x00ff000000001000ull};
        struct cpuid_regs x1 = cpuid(0x80000001, 0), l7 = cpuid(7, 0);
        bool tsc_aux = (x1.edx & BIT(27)) || (l7.ecx & BIT(22));

        for (unsigned i = 0; i < ARRAY_SIZE(addr_msrs); i++) {
                uint32_t msr = addr_msrs[i];
                bool sysenter = msr == MSR_SYSENTER_ESP || msr == MSR_SYSENTER_EIP;
                uint64_t old = rdmsr_ok(msr);

                for (unsigned j = 0; j < ARRAY_SIZE(bad); j++) {
                        if (sysenter && !intel) {
                                /*
                                 * AMD has no 64-bit SYSENTER and Keel passes these through:
                                 * the CPU's answer, #GP with the value kept (Bochs) or
                                 * accepted, 32 bits kept (AMD) or all 64 (QEMU).
                                 */
                                uint64_t before = 0, got = 0;
                                unsigned vec;

                                rdmsr_v(msr, &before);
                                vec = wrmsr_v(msr, bad[j]);
                                rdmsr_v(msr, &got);
                                check((vec == VEC_GP && got == before) ||
                                          (vec == NO_FAULT &&
                                           (got == bad[j] || got == (uint32_t)bad[j])),
                                      "WRMSR 0x%x = 0x%lx on AMD: vector %u, reads 0x%lx", msr,
                                      (unsigned long)bad[j], vec, (unsigned long)got);
                                continue;
                        }
                        expect_wr_fault(msr, bad[j], VEC_GP, true, "non-canonical");
                }
                if (sysenter && !intel) {
                        uint64_t got = 0;
                        unsigned vec = wrmsr_v(msr, 0xffff800000001000ull);

                        rdmsr_v(msr, &got);
                        check(vec == NO_FAULT && (got == 0xffff800000001000ull || got == 0x1000),
                              "WRMSR 0x%x canonical on AMD: vector %u, reads 0x%lx", msr, vec,
                              (unsigned long)got);
                } else {
                        expect_wr_ok(msr, 0xffff800000001000ull, 0xffff800000001000ull,
                                     "canonical");
                }
                expect_wr_ok(msr, old, old, "restored");
        }
        if (tsc_aux) {
                uint64_t old = rdmsr_ok(MSR_TSC_AUX);

                expect_wr_ok(MSR_TSC_AUX, 0xdeadbeef, 0xdeadbeef, "TSC_AUX");
                expect_wr_fault(MSR_TSC_AUX, 1ull << 32, VEC_GP, true, "TSC_AUX bit 32");
                expect_wr_fault(MSR_TSC_AUX, ~0ull, VEC_GP, true, "TSC_AUX all ones");
                if (x1.edx & BIT(27)) {
                        uint32_t aux;

                        __asm__ volatile("rdtscp" : "=c"(aux)::"rax", "rdx");
                        check(aux == 0xdeadbeef, "RDTSCP: TSC_AUX 0x%x, expected 0xdeadbeef", aux);
                }
                expect_wr_ok(MSR_TSC_AUX, old, old, "TSC_AUX restored");
        } else {
                uint64_t v;

                check(rdmsr_v(MSR_TSC_AUX, &v) == VEC_GP,
                      "TSC_AUX readable while CPUID shows neither RDTSCP nor RDPID");
                expect_wr_fault(MSR_TSC_AUX, 5, VEC_GP, false, "TSC_AUX without RDTSCP/RDPID");
        }
        guest_printf("hostile_msr: non-canonical FS_BASE, GS_BASE, KERNEL_GS_BASE, LSTAR, CSTAR, "
                     "SYSENTER_ESP/EIP (%s): as the CPU; TSC_AUX %s\n",
                     intel ? "#GP" : "AMD: the CPU's answer",
                     tsc_aux ? "bits 63:32: #GP" : "absent: #GP");
}

/* ---- IA32_APIC_BASE ---- */

static void apic_base_part(void)
{
        uint64_t v, base;
        unsigned vec;

        if (!platform) {
                vec = rdmsr_v(MSR_APIC_BASE, &v);
                check(vec == VEC_GP, "APIC_BASE without an APIC: vector %u, expected #GP", vec);
                expect_wr_fault(MSR_APIC_BASE, 0xfee00900, VEC_GP, false, "no APIC");
                guest_printf("hostile_msr: no APIC: IA32_APIC_BASE #GP\n");
                return;
        }
        base = rdmsr_ok(MSR_APIC_BASE);
        check(base == 0xfee00900, "IA32_APIC_BASE = 0x%lx, expected 0xfee00900",
              (unsigned long)base);
        expect_wr_ok(MSR_APIC_BASE, base, base, "unchanged");
        expect_wr_fault(MSR_APIC_BASE, 0xfed00900, VEC_GP, true, "base moved");
        expect_wr_fault(MSR_APIC_BASE, 0xfee01900, VEC_GP, true, "base moved by a page");
        expect_wr_fault(MSR_APIC_BASE, base | APIC_BASE_EXTD, VEC_GP, true, "x2APIC, hidden");
        expect_wr_fault(MSR_APIC_BASE, base & ~APIC_BASE_BSP, VEC_GP, true, "BSP cleared");
        expect_wr_fault(MSR_APIC_BASE, base | 1, VEC_GP, true, "reserved bit 0");
        expect_wr_fault(MSR_APIC_BASE, base | 0x200, VEC_GP, true, "reserved bit 9");
        expect_wr_fault(MSR_APIC_BASE, base | (1ull << 63), VEC_GP, true, "reserved bit 63");
        /* Disabled: the reset state, no APIC in CPUID until it is enabled again. */
        expect_wr_ok(MSR_APIC_BASE, base & ~APIC_BASE_EN, base & ~APIC_BASE_EN, "EN cleared");
        check(!(cpuid(1, 0).edx & BIT(9)), "CPUID.1:EDX.APIC still set with the APIC disabled");
        /* Its page is not decoded: all ones at any size, writes dropped (SDM 10.4.3). */
        lapic_write(LAPIC_TPR, 0x20);
        *(volatile uint8_t *)(uintptr_t)(LAPIC_BASE + 0x81) = 0x5a;
        check(lapic_read(LAPIC_VERSION) == 0xffffffffu,
              "disabled APIC: version register reads 0x%x, expected all ones",
              lapic_read(LAPIC_VERSION));
        check(lapic_read(LAPIC_TPR) == 0xffffffffu, "disabled APIC: TPR reads 0x%x after a write",
              lapic_read(LAPIC_TPR));
        check(*(volatile uint8_t *)(uintptr_t)(LAPIC_BASE + 0x31) == 0xff,
              "disabled APIC: a byte read is not 0xff");
        expect_wr_fault(MSR_APIC_BASE, (base & ~APIC_BASE_EN) | APIC_BASE_EXTD, VEC_GP, true,
                        "EXTD without EN");
        expect_wr_ok(MSR_APIC_BASE, base, base, "EN set again");
        check(cpuid(1, 0).edx & BIT(9), "CPUID.1:EDX.APIC clear with the APIC enabled");
        check(lapic_read(LAPIC_SVR) == 0xff, "SVR after re-enable: 0x%x, expected 0xff",
              lapic_read(LAPIC_SVR));
        check(lapic_read(LAPIC_VERSION) == LAPIC_VERSION_VALUE, "LAPIC version 0x%x",
              lapic_read(LAPIC_VERSION));
        check(lapic_read(LAPIC_TPR) == 0, "TPR after re-enable: 0x%x (a write while disabled?)",
              lapic_read(LAPIC_TPR));
        lapic_write(LAPIC_SVR, 0x1ff);
        irq_eoi[0] = 1;
        {
                uint64_t before = irq_count[0][0x77];

                lapic_icr(0, ICR_SELF | 0x77);
                irq_window();
                check(irq_count[0][0x77] - before == 1, "self-IPI after re-enable: %lu taken",
                      (unsigned long)(irq_count[0][0x77] - before));
        }
        guest_printf("hostile_msr: IA32_APIC_BASE: move, x2APIC, BSP, reserved bits: #GP; "
                     "disable and enable: LAPIC reset, self-IPI delivered\n");
}

/* ---- IA32_MISC_ENABLE (Linux VMs) ---- */

static void misc_enable_part(void)
{
        uint64_t v, old;

        if (!platform) {
                check(rdmsr_v(MSR_MISC_ENABLE, &v) == VEC_GP, "MISC_ENABLE without a platform");
                return;
        }
        old = rdmsr_ok(MSR_MISC_ENABLE);
        check(old == 0x1801, "IA32_MISC_ENABLE = 0x%lx, expected 0x1801", (unsigned long)old);
        /* kvm-unit-tests' msr test: every writable bit, the read-only ones as read. */
        expect_wr_ok(MSR_MISC_ENABLE, 0x400c51809ull, 0x400c51809ull, "writable bits");
        expect_wr_ok(MSR_MISC_ENABLE, 0x400c50089ull, 0x400c51809ull, "read-only bits changed");
        expect_wr_fault(MSR_MISC_ENABLE, old | 2, VEC_GP, true, "reserved bit 1");
        expect_wr_fault(MSR_MISC_ENABLE, old | (1ull << 35), VEC_GP, true, "reserved bit 35");
        expect_wr_ok(MSR_MISC_ENABLE, 0, 0x1800, "cleared");
        expect_wr_ok(MSR_MISC_ENABLE, old, old, "restored");
        guest_printf("hostile_msr: IA32_MISC_ENABLE: writable bits kept, read-only bits as they "
                     "were, reserved bits #GP\n");
}

/* ---- the sweep ---- */

/* MSRs this VM must be able to read (docs/x86-state.md), by kind of VM. */
static bool expect_readable(uint32_t msr, bool tsc_aux)
{
        static const uint32_t always[] = {
            MSR_TSC,     MSR_SYSENTER_CS, MSR_SYSENTER_ESP,   MSR_SYSENTER_EIP, MSR_PAT,
            MSR_EFER,    MSR_STAR,        MSR_LSTAR,          MSR_CSTAR,        MSR_SFMASK,
            MSR_FS_BASE, MSR_GS_BASE,     MSR_KERNEL_GS_BASE,
        };
        static const uint32_t linux_vm[] = {
            MSR_APIC_BASE,  MSR_PATCH_LEVEL, MSR_MTRRCAP,       MSR_MCG_CAP,
            MSR_MCG_STATUS, MSR_MISC_ENABLE, MSR_MTRR_DEF_TYPE, 0x6e0u /* TSC_DEADLINE */,
            0xc0010000u,    0xc0010001u,     0xc0010002u,       0xc0010003u,
            0xc0010004u,    0xc0010005u,     0xc0010006u,       0xc0010007u,
            0xc0010010u,    0xc0010015u,     0xc0010055u,       MSR_VM_CR,
            0xc0010140u,    0xc0010141u,     0xc0011029u,
        };

        if (msr == MSR_TSC_AUX)
                return tsc_aux;
        for (unsigned i = 0; i < ARRAY_SIZE(always); i++)
                if (always[i] == msr)
                        return true;
        if (platform)
                for (unsigned i = 0; i < ARRAY_SIZE(linux_vm); i++)
                        if (linux_vm[i] == msr)
                                return true;
        return false;
}

/* Tested on their own above: a change would alter what the guest runs on. */
static bool excluded(uint32_t msr)
{
        static const uint32_t list[] = {
            MSR_TSC,          MSR_APIC_BASE,
            MSR_SYSENTER_CS,  MSR_SYSENTER_ESP,
            MSR_SYSENTER_EIP, MSR_PAT,
            MSR_EFER,         MSR_STAR,
            MSR_LSTAR,        MSR_CSTAR,
            MSR_SFMASK,       MSR_FS_BASE,
            MSR_GS_BASE,      MSR_KERNEL_GS_BASE,
            MSR_TSC_AUX,      0x6e0u /* TSC_DEADLINE */,
        };

        for (unsigned i = 0; i < ARRAY_SIZE(list); i++)
                if (list[i] == msr)
                        return true;
        return false;
}

struct sweep {
        unsigned reads, values, gp, written_back, garbage_ok, garbage_gp, unread_gp;
};

static void sweep_one(uint32_t msr, bool tsc_aux, struct sweep *s)
{
        static const uint64_t garbage[] = {0x5a5aa5a5deadbeefull, ~0ull};
        uint64_t v;
        unsigned vec = rdmsr_v(msr, &v);
        bool want = expect_readable(msr, tsc_aux);

        s->reads++;
        if (vec != NO_FAULT) {
                check(vec == VEC_GP, "RDMSR 0x%x: vector %u, expected #GP or a value", msr, vec);
                check(!want, "RDMSR 0x%x: #GP, but it is one the VM has", msr);
                s->gp++;
                return;
        }
        s->values++;
        check(want, "RDMSR 0x%x = 0x%lx: a value, but the VM has no such MSR", msr,
              (unsigned long)v);
        if (excluded(msr))
                return;
        vec = wrmsr_v(msr, v);
        check(vec == NO_FAULT, "WRMSR 0x%x of the value read (0x%lx): vector %u", msr,
              (unsigned long)v, vec);
        s->written_back++;
        for (unsigned i = 0; i < ARRAY_SIZE(garbage); i++) {
                vec = wrmsr_v(msr, garbage[i]);
                check(vec == NO_FAULT || vec == VEC_GP, "WRMSR 0x%x garbage: vector %u", msr, vec);
                if (vec == NO_FAULT) {
                        s->garbage_ok++;
                        check(wrmsr_v(msr, v) == NO_FAULT, "WRMSR 0x%x: restore refused", msr);
                } else {
                        s->garbage_gp++;
                }
        }
}

/* A garbage write to an MSR that did not read: #GP (the sweep's write half). */
static void sweep_write_unread(uint32_t msr, bool tsc_aux, struct sweep *s)
{
        if (expect_readable(msr, tsc_aux))
                return;
        unsigned vec = wrmsr_v(msr, 0x5a5aa5a5deadbeefull ^ msr);

        check(vec == VEC_GP, "WRMSR 0x%x (no such MSR) garbage: vector %u, expected #GP", msr, vec);
        s->unread_gp++;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rng(void)
{
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return (uint32_t)(rng_state >> 16);
}

static bool in_swept_range(uint32_t msr)
{
        return msr < 0x2000 || (msr >= 0x40000000u && msr < 0x40000100u) ||
               (msr >= 0xc0000000u && msr < 0xc0002000u) ||
               (msr >= 0xc0010000u && msr < 0xc0012000u);
}

static void sweep_part(void)
{
        static const uint32_t ranges[][2] = {
            {0, 0x2000},
            {0x40000000u, 0x40000100u},
            {0xc0000000u, 0xc0002000u},
            {0xc0010000u, 0xc0012000u},
        };
        struct cpuid_regs x1 = cpuid(0x80000001, 0), l7 = cpuid(7, 0);
        bool tsc_aux = (x1.edx & BIT(27)) || (l7.ecx & BIT(22));
        struct sweep s = {0};
        unsigned randoms = 0;

        for (unsigned r = 0; r < ARRAY_SIZE(ranges); r++)
                for (uint32_t msr = ranges[r][0]; msr < ranges[r][1]; msr++)
                        sweep_one(msr, tsc_aux, &s);
        while (randoms < 3000) {
                uint32_t msr = rng();

                if (in_swept_range(msr))
                        continue;
                sweep_one(msr, tsc_aux, &s);
                sweep_write_unread(msr, tsc_aux, &s);
                randoms++;
        }
        for (unsigned r = 0; r < ARRAY_SIZE(ranges); r++)
                for (uint32_t msr = ranges[r][0]; msr < ranges[r][1]; msr++)
                        sweep_write_unread(msr, tsc_aux, &s);
        guest_printf("hostile_msr: swept %u MSRs (%u random): %u values, %u #GP, nothing else\n",
                     s.reads, randoms, s.values, s.gp);
        guest_printf("hostile_msr: %u written back, garbage %u accepted / %u #GP; %u garbage "
                     "writes to absent MSRs: #GP each\n",
                     s.written_back, s.garbage_ok, s.garbage_gp, s.unread_gp);
}

int64_t guest_main(void)
{
        struct cpuid_regs l0 = cpuid(0, 0);

        hx_gdt_init();
        hx_idt_init();
        irq_idt_init();
        intel = l0.ebx == 0x756e6547; /* "Genu" */
        platform = cpuid(1, 0).edx & BIT(9);
        guest_printf("hostile_msr: %s VM on %s\n", platform ? "Linux (LAPIC)" : "flat",
                     intel ? "Intel" : "AMD");
        cpuid_part();
        insn_part();
        efer_part();
        pat_tsc_part();
        virt_msrs_part();
        canonical_part();
        apic_base_part();
        misc_enable_part();
        sweep_part();
        if (failed) {
                guest_printf("FAIL: hostile_msr: %u of %u checks failed\n", failed, checks);
                return 1;
        }
        guest_printf("hostile_msr: all %u checks passed\n", checks);
        return 0;
}
