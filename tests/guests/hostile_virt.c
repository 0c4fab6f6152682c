/*
 * hostile_virt: virtualization instructions and privilege games inside a guest. Each must
 * end in an exception the guest itself takes (or an SMCCC error), never in Keel trouble.
 *
 * x86_64 (own IDT, hostile_x86.h): every SVM instruction (VMRUN, VMLOAD, VMSAVE, STGI,
 * CLGI, SKINIT, INVLPGA), every VMX one (VMXON, VMCLEAR, VMPTRLD, VMPTRST, VMLAUNCH,
 * VMRESUME, VMXOFF, VMREAD, VMWRITE, INVEPT, INVVPID, VMFUNC), GETSEC and the other
 * vendor's hypercall instruction, at CPL 0: #UD each; at CPL 3 (IOPL 3): #UD or #GP each.
 *
 * arm64 (own vectors): HVC with a non-zero immediate (-1) and unknown function ids (SMCCC
 * NOT_SUPPORTED, -1, whatever the range, Keel's vendor hypervisor range included), SMC with
 * unknown ids, among them Keel's hypercall numbers (always -1: SMC is never a Keel call),
 * HVC, SMC and WFI from EL0 (undefined instruction / WFI trap taken at EL1), illegal
 * exception returns (to EL2, EL3, AArch32 EL1, EL0 with SP_EL1: illegal execution state
 * at EL1), a return to AArch32 EL0 (its SVC comes back, or the return is illegal), and
 * set/way cache maintenance (DC CISW/ISW/CSW: no exception).
 *
 * Exit 0 with "hostile_virt: all N checks passed".
 */
#include "guest.h"

#ifdef __x86_64__
#include "hostile_x86.h"
#endif

static unsigned checks, failed;

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *fmt, ...)
{
        va_list ap;

        checks++;
        if (ok)
                return;
        failed++;
        guest_puts("FAIL: ");
        va_start(ap, fmt);
        guest_vprintf(fmt, ap);
        va_end(ap);
        guest_puts("\n");
}

#ifdef __x86_64__

struct insn {
        const char *name;
        uint8_t len;
        uint8_t bytes[6];
};

static const struct insn insns[] = {
    {"VMRUN", 3, {0x0f, 0x01, 0xd8}},
    {"VMLOAD", 3, {0x0f, 0x01, 0xda}},
    {"VMSAVE", 3, {0x0f, 0x01, 0xdb}},
    {"STGI", 3, {0x0f, 0x01, 0xdc}},
    {"CLGI", 3, {0x0f, 0x01, 0xdd}},
    {"SKINIT", 3, {0x0f, 0x01, 0xde}},
    {"INVLPGA", 3, {0x0f, 0x01, 0xdf}},
    {"VMXON [rax]", 4, {0xf3, 0x0f, 0xc7, 0x30}},
    {"VMCLEAR [rax]", 4, {0x66, 0x0f, 0xc7, 0x30}},
    {"VMPTRLD [rax]", 3, {0x0f, 0xc7, 0x30}},
    {"VMPTRST [rax]", 3, {0x0f, 0xc7, 0x38}},
    {"VMLAUNCH", 3, {0x0f, 0x01, 0xc2}},
    {"VMRESUME", 3, {0x0f, 0x01, 0xc3}},
    {"VMXOFF", 3, {0x0f, 0x01, 0xc4}},
    {"VMREAD rax, rcx", 3, {0x0f, 0x78, 0xc8}},
    {"VMWRITE rcx, rax", 3, {0x0f, 0x79, 0xc8}},
    {"INVEPT rcx, [rax]", 5, {0x66, 0x0f, 0x38, 0x80, 0x08}},
    {"INVVPID rcx, [rax]", 5, {0x66, 0x0f, 0x38, 0x81, 0x08}},
    {"VMFUNC", 3, {0x0f, 0x01, 0xd4}},
    {"GETSEC", 2, {0x0f, 0x37}},
};

/* The hypercall instruction of the vendor Keel does not run on: #UD. */
static const struct insn vmcall = {"VMCALL", 3, {0x0f, 0x01, 0xc1}};
static const struct insn vmmcall = {"VMMCALL", 3, {0x0f, 0x01, 0xd9}};

static uint8_t code[64] __attribute__((aligned(64)));
static uint64_t scratch[64] __attribute__((aligned(4096)));

/* Runs `in` (followed by a RET) with RAX pointing at scratch memory; the trap skips it. */
static uint64_t run(const struct insn *in)
{
        uint64_t before = hx_trap_count[6] + hx_trap_count[13];

        memcpy(code, in->bytes, in->len);
        code[in->len] = 0xc3;
        hx_last_vector = ~0ull;
        hx_resume_len = in->len;
        __asm__ volatile("call *%1"
                         :
                         : "a"(gpa_of(scratch)), "r"(gpa_of(code)), "c"(0ull)
                         : "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory");
        hx_resume_len = 0;
        return hx_trap_count[6] + hx_trap_count[13] - before;
}

static void user_part(void);
static volatile unsigned user_ud, user_gp, user_other;

static noreturn void user_main(void)
{
        for (unsigned i = 0; i < ARRAY_SIZE(insns); i++) {
                uint64_t ud = hx_trap_count[6], gp = hx_trap_count[13];

                if (!run(&insns[i]))
                        user_other++;
                user_ud += (unsigned)(hx_trap_count[6] - ud);
                user_gp += (unsigned)(hx_trap_count[13] - gp);
        }
        /* Back to CPL 0: the breakpoint's handler resumes at user_part, in ring 0. */
        hx_resume_rip = gpa_of((const void *)user_part);
        __asm__ volatile("int3");
        for (;;)
                ;
}

static uint8_t user_stack[4096] __attribute__((aligned(16)));

static void user_part(void)
{
        uint16_t cs;

        __asm__ volatile("mov %%cs, %0" : "=r"(cs));
        check((cs & 3) == 0, "back at CPL %u after ring 3", cs & 3);
        check(user_ud + user_gp == ARRAY_SIZE(insns) && !user_other,
              "at CPL 3: %u #UD + %u #GP for %u instructions (%u without either)", user_ud, user_gp,
              (unsigned)ARRAY_SIZE(insns), user_other);
        guest_printf("hostile_virt: at CPL 3: %u #UD, %u #GP for %u instructions\n", user_ud,
                     user_gp, (unsigned)ARRAY_SIZE(insns));
        if (failed) {
                guest_printf("FAIL: hostile_virt: %u of %u checks failed\n", failed, checks);
                guest_exit(1);
        }
        guest_printf("hostile_virt: all %u checks passed\n", checks);
        guest_exit(0);
}

int64_t guest_main(void)
{
        const struct insn *other = keel_hc_detect() == 2 ? &vmmcall : &vmcall;

        hx_paging_init();
        hx_gdt_init();
        hx_idt_init();
        for (unsigned i = 0; i < ARRAY_SIZE(insns); i++) {
                uint64_t got = run(&insns[i]);

                check(got == 1 && hx_last_vector == 6, "%s at CPL 0: vector %ld, expected #UD (6)",
                      insns[i].name, (long)hx_last_vector);
        }
        run(other);
        check(hx_last_vector == 6, "%s at CPL 0: vector %ld, expected #UD", other->name,
              (long)hx_last_vector);
        check(hc_version() == KEEL_HC_ABI_VERSION, "hypercalls still work");
        guest_printf("hostile_virt: %u instructions at CPL 0: #UD each\n",
                     (unsigned)ARRAY_SIZE(insns) + 1);
        hx_enter_user(user_main, user_stack + sizeof(user_stack));
}

#else /* arm64 */

/* Filled by the vectors below: the last exception and how to resume. */
struct hv_state {
        uint64_t vector, esr, elr, count;
        uint64_t resume_pc, resume_spsr;
};

struct hv_state hv __attribute__((aligned(16)));

void hv_vectors(void);
__asm__(".text\n"
        ".balign 2048\n"
        ".globl hv_vectors\n"
        "hv_vectors:\n"
        ".irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15\n"
        ".balign 128\n"
        "stp x0, x1, [sp, #-16]!\n"
        "mov x0, #\\n\n"
        "b hv_common\n"
        ".endr\n"
        "hv_common:\n"
        "adrp x1, hv\n"
        "add x1, x1, :lo12:hv\n"
        "str x0, [x1, #0]\n"
        "mrs x0, esr_el1\n"
        "str x0, [x1, #8]\n"
        "mrs x0, elr_el1\n"
        "str x0, [x1, #16]\n"
        "ldr x0, [x1, #24]\n"
        "add x0, x0, #1\n"
        "str x0, [x1, #24]\n"
        "ldr x0, [x1, #32]\n"
        "cbz x0, 1f\n"
        "msr elr_el1, x0\n"
        "str xzr, [x1, #32]\n"
        "ldr x0, [x1, #40]\n"
        "msr spsr_el1, x0\n"
        "b 2f\n"
        "1: mrs x0, elr_el1\n"
        "add x0, x0, #4\n"
        "msr elr_el1, x0\n"
        "2: ldp x0, x1, [sp], #16\n"
        "eret\n");

#define EC(esr)          (((esr) >> 26) & 0x3f)
#define EC_UNKNOWN       0x00
#define EC_WFX           0x01
#define EC_ILLEGAL       0x0e
#define EC_SVC32         0x11
#define EC_SVC64         0x15
#define SPSR_EL1H_MASKED 0x3c5ull

static int64_t smccc(bool smc, unsigned imm, uint64_t f)
{
        register uint64_t x0 __asm__("x0") = f;
        register uint64_t x1 __asm__("x1") = 0;
        register uint64_t x2 __asm__("x2") = 0;
        register uint64_t x3 __asm__("x3") = 0;

        if (smc && imm == 0)
                __asm__ volatile("smc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) : : "memory");
        else if (smc)
                __asm__ volatile("smc #0x1234"
                                 : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3)
                                 :
                                 : "memory");
        else if (imm == 0)
                __asm__ volatile("hvc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) : : "memory");
        else
                __asm__ volatile("hvc #0xffff"
                                 : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3)
                                 :
                                 : "memory");
        return (int64_t)x0;
}

static void conduits(void)
{
        static const uint64_t smc_ids[] = {
            0,          1,          2,          3,          0x1234,     0x80000001,
            0x8000ffff, 0x8400001f, 0x84000040, 0xc2000000, 0xc3000001, 0xc6000000,
            0xbf000000, 0xf0000000, 0xffffffff, 1ull << 32, ~0ull,
        };
        static const uint64_t hvc_psci_unknown[] = {0x80000001, 0x800000ff, 0x8400001f,
                                                    0x840000ff, 0xc4000001, 0xc40000ff};
        static const uint64_t hvc_other[] = {0x8000ffff,
                                             0x84000100,
                                             0xc2000000,
                                             0xc3000001,
                                             0xbf000000,
                                             0x86000000,
                                             0x1ull << 32 | 0x84000000,
                                             1337,
                                             0xc6000004,
                                             0xc600ff00};

        for (unsigned i = 0; i < ARRAY_SIZE(smc_ids); i++)
                check(smccc(true, 0, smc_ids[i]) == -1, "smc #0 with id %lx: not -1",
                      (unsigned long)smc_ids[i]);
        check(smccc(true, 1, 2) == -1, "smc #0x1234 with id 2 (EXIT): not -1");
        check(smccc(false, 1, KEEL_HC_VERSION) == -1, "hvc #0xffff with id 0: not -1");
        check(smccc(false, 1, KEEL_HC_EXIT) == -1, "hvc #0xffff with id 2 (EXIT): not -1");
        for (unsigned i = 0; i < ARRAY_SIZE(hvc_psci_unknown); i++)
                check(smccc(false, 0, hvc_psci_unknown[i]) == -1,
                      "hvc #0 with unknown SMCCC id %lx: not NOT_SUPPORTED",
                      (unsigned long)hvc_psci_unknown[i]);
        for (unsigned i = 0; i < ARRAY_SIZE(hvc_other); i++)
                check(smccc(false, 0, hvc_other[i]) == -1,
                      "hvc #0 with unknown id %lx: not NOT_SUPPORTED", (unsigned long)hvc_other[i]);
        check(hv.count == 0, "%lu exceptions during the SMC/HVC calls at EL1",
              (unsigned long)hv.count);
        guest_printf("hostile_virt: %u SMC and HVC calls with unknown ids answered\n", checks);
}

/* EL0 code (the MMU is off: no permissions), each instruction followed by a return. */
void el0_hvc(void);
void el0_smc(void);
void el0_wfi(void);
void el0_done(void);
__asm__(".text\n.balign 4\n"
        ".globl el0_hvc\nel0_hvc: hvc #0\n svc #0\n"
        ".globl el0_smc\nel0_smc: smc #0\n svc #0\n"
        ".globl el0_wfi\nel0_wfi: wfi\n svc #0\n"
        ".globl el0_done\nel0_done: ret\n");

/*
 * ERET to `pc` with `spsr`; whatever exception comes next lands in hv and resumes at the
 * label after the ERET at EL1h. Returns the vector number taken (hv.esr holds the syndrome).
 */
static uint64_t eret_to(uint64_t pc, uint64_t spsr)
{
        static uint8_t el0_stack[1024] __attribute__((aligned(16)));
        uint64_t n = hv.count;

        hv.vector = ~0ull;
        hv.resume_spsr = SPSR_EL1H_MASKED;
        __asm__ volatile("adr x9, 1f\n"
                         "str x9, [%0]\n"
                         "msr sp_el0, %1\n"
                         "msr elr_el1, %2\n"
                         "msr spsr_el1, %3\n"
                         "eret\n"
                         "1:\n"
                         :
                         : "r"(&hv.resume_pc), "r"(gpa_of(el0_stack + sizeof(el0_stack))), "r"(pc),
                           "r"(spsr)
                         : "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11",
                           "x12", "x13", "x14", "cc", "memory");
        return hv.count - n == 1 ? hv.vector : ~0ull;
}

static void el0_and_eret(void)
{
        uint64_t v;
        unsigned base = checks;
        static uint32_t a32_code[4] __attribute__((aligned(16))) = {
            0xef000000, /* svc #0 */
            0xeafffffe, /* b . */
        };

        v = eret_to(gpa_of((void *)el0_hvc), 0);
        check(v == 8 && EC(hv.esr) == EC_UNKNOWN && hv.elr == gpa_of((void *)el0_hvc),
              "hvc at EL0: vector %ld esr %lx, expected an undefined instruction from EL0", (long)v,
              (unsigned long)hv.esr);
        v = eret_to(gpa_of((void *)el0_smc), 0);
        check(v == 8 && EC(hv.esr) == EC_UNKNOWN,
              "smc at EL0: vector %ld esr %lx, expected an undefined instruction from EL0", (long)v,
              (unsigned long)hv.esr);
        v = eret_to(gpa_of((void *)el0_wfi), 0);
        check(v == 8 && EC(hv.esr) == EC_WFX,
              "wfi at EL0 (SCTLR_EL1.nTWI = 0): vector %ld esr %lx, expected a WFI trap at EL1",
              (long)v, (unsigned long)hv.esr);
        /* Illegal exception returns: PSTATE.IL set, the next instruction faults at EL1. */
        v = eret_to(gpa_of((void *)el0_done), 0x3c9); /* EL2h */
        check(v == 4 && EC(hv.esr) == EC_ILLEGAL,
              "eret to EL2: vector %ld esr %lx, expected an illegal execution state at EL1",
              (long)v, (unsigned long)hv.esr);
        v = eret_to(gpa_of((void *)el0_done), 0x3cd); /* EL3h */
        check(v == 4 && EC(hv.esr) == EC_ILLEGAL, "eret to EL3: vector %ld esr %lx", (long)v,
              (unsigned long)hv.esr);
        v = eret_to(gpa_of((void *)el0_done), 0x3d3); /* AArch32 SVC mode */
        check(v == 4 && EC(hv.esr) == EC_ILLEGAL, "eret to AArch32 EL1: vector %ld esr %lx",
              (long)v, (unsigned long)hv.esr);
        v = eret_to(gpa_of((void *)el0_done), 0x3c1); /* EL0 with SP_EL1: reserved */
        check(v == 4 && EC(hv.esr) == EC_ILLEGAL, "eret to EL0h: vector %ld esr %lx", (long)v,
              (unsigned long)hv.esr);
        /* AArch32 EL0 (A32, user mode), if the CPU has it: its SVC comes back from AArch32. */
        v = eret_to(gpa_of(a32_code), 0x3d0);
        check((v == 12 && EC(hv.esr) == EC_SVC32) || (v == 4 && EC(hv.esr) == EC_ILLEGAL),
              "eret to AArch32 EL0: vector %ld esr %lx, expected its SVC or an illegal return",
              (long)v, (unsigned long)hv.esr);
        guest_printf("hostile_virt: AArch32 EL0 %s\n",
                     v == 12 ? "ran and its SVC came back" : "refused (illegal return)");
        guest_printf("hostile_virt: %u EL0 and exception-return checks done\n", checks - base);
}

static void set_way(void)
{
        uint64_t n = hv.count;

        for (uint64_t way = 0; way < 4; way++)
                for (uint64_t set = 0; set < 64; set++) {
                        uint64_t sw = way << 30 | set << 6;

                        __asm__ volatile("dc cisw, %0\n dc isw, %0\n dc csw, %0"
                                         :
                                         : "r"(sw)
                                         : "memory");
                }
        __asm__ volatile("dsb sy\n isb" ::: "memory");
        check(hv.count == n, "set/way maintenance raised %lu exceptions",
              (unsigned long)(hv.count - n));
        guest_printf("hostile_virt: 768 set/way cache operations done\n");
}

int64_t guest_main(void)
{
        __asm__ volatile("msr vbar_el1, %0\n isb" : : "r"(gpa_of((void *)hv_vectors)));
        conduits();
        el0_and_eret();
        set_way();
        check(hc_version() == KEEL_HC_ABI_VERSION, "hypercalls still work");
        if (failed) {
                guest_printf("FAIL: hostile_virt: %u of %u checks failed\n", failed, checks);
                return 1;
        }
        guest_printf("hostile_virt: all %u checks passed\n", checks);
        return 0;
}

#endif
