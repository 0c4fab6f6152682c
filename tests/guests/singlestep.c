/*
 * singlestep (x86_64): single-steps (RFLAGS.TF) over instructions Keel completes for the
 * guest, which the CPU itself never finishes: CPUID, the hypercall instruction, RDMSR of
 * EFER (intercepted on SVM), IN from the UART, a load from an address with nothing
 * behind it (emulated as a PC answers it) and a NOP as the CPU's own case. Each must
 * raise exactly one #DB, a trap: RIP the instruction after it, DR6.BS set (SDM vol. 3
 * 17.3.1.4), as on hardware and under KVM (kvm-unit-tests' `debug`, "Single-step #DB on
 * emulated instructions"). Failures print "FAIL: ..."; the exit code is their number.
 */
#include "guest.h"

#define DR6_BS (1ull << 14)

volatile uint64_t db_count, db_rip, db_dr6;

/* #DB: record RIP and DR6, clear TF in the interrupted RFLAGS and DR6, return. */
__asm__(".text\n"
        "db_stub:\n\t"
        "push %rax\n\t"
        "mov 8(%rsp), %rax\n\t"
        "mov %rax, db_rip(%rip)\n\t"
        "mov %dr6, %rax\n\t"
        "mov %rax, db_dr6(%rip)\n\t"
        "incq db_count(%rip)\n\t"
        "andq $~0x100, 24(%rsp)\n\t"
        "mov $0xffff0ff0, %eax\n\t"
        "mov %rax, %dr6\n\t"
        "pop %rax\n\t"
        "iretq\n");
extern char db_stub[];

static uint64_t idt[2 * 2] __attribute__((aligned(16)));

static void idt_load(void)
{
        uint64_t a = (uint64_t)(uintptr_t)db_stub;
        struct {
                uint16_t limit;
                uint64_t base;
        } __attribute__((packed)) d = {sizeof(idt) - 1, (uint64_t)(uintptr_t)idt};

        /* vector 1: 64-bit interrupt gate, present, DPL 0, CS 0x08 (the entry GDT's) */
        idt[2] = (a & 0xffff) | (0x08ull << 16) | (0x8eull << 40) | ((a >> 16 & 0xffff) << 48);
        idt[3] = a >> 32;
        __asm__ volatile("lidt %0" ::"m"(d));
}

/*
 * Sets TF with POPF (which itself does not trap: TF was clear when it began), then runs
 * `insn`, after which the #DB comes; `after` gets the address that follows the instruction.
 */
#define STEP(after, insn, ...)                     \
        __asm__ volatile("lea 1f(%%rip), %0\n\t"   \
                         "pushfq\n\t"              \
                         "orq $0x100, (%%rsp)\n\t" \
                         "popfq\n\t" insn "\n"     \
                         "1:"                      \
                         : "=&r"(after)__VA_ARGS__)

static unsigned failures;

static void check(const char *what, uint64_t after)
{
        uint64_t n = db_count, rip = db_rip, dr6 = db_dr6;

        db_count = 0;
        if (n == 1 && rip == after && (dr6 & DR6_BS)) {
                guest_printf("ok: %s: one #DB at 0x%lx, DR6 0x%lx\n", what, rip, dr6);
                return;
        }
        guest_printf("FAIL: %s: %lu #DB, last at 0x%lx (expected 0x%lx), DR6 0x%lx\n", what, n, rip,
                     after, dr6);
        failures++;
}

int64_t guest_main(void)
{
        uint64_t after, a, c, d, b;
        volatile uint64_t *nothing = (volatile uint64_t *)(uintptr_t)(guest_ram_end() + 0x1000);

        idt_load();
        STEP(after, "nop");
        check("NOP (the CPU's own)", after);

        a = 0, c = 0;
        STEP(after, "cpuid", , "+a"(a), "+c"(c), "=b"(b), "=d"(d));
        check("CPUID", after);

        a = GUEST_HC_ID(KEEL_HC_VERSION);
        if ((keel_hc_vendor ? keel_hc_vendor : keel_hc_detect()) == 2)
                STEP(after, "vmcall", , "+a"(a));
        else
                STEP(after, "vmmcall", , "+a"(a));
        check("hypercall VERSION", after);
        if (a != KEEL_HC_ABI_VERSION) {
                guest_printf("FAIL: VERSION returned %lu under single-step\n", a);
                failures++;
        }

        c = 0xc0000080; /* EFER: SVM intercepts it */
        STEP(after, "rdmsr", , "+c"(c), "=a"(a), "=d"(d));
        check("RDMSR EFER", after);

        d = 0x3fd;
        STEP(after, "inb %%dx, %%al", , "+d"(d), "=a"(a));
        check("IN from the UART's LSR", after);

        __asm__ volatile("lea 1f(%%rip), %0\n\t"
                         "pushfq\n\t"
                         "orq $0x100, (%%rsp)\n\t"
                         "popfq\n\t"
                         "mov (%2), %1\n"
                         "1:"
                         : "=&r"(after), "=r"(a)
                         : "r"(nothing));
        check("load from an address with nothing behind it", after);
        if (a != ~0ull) {
                guest_printf("FAIL: that load returned 0x%lx\n", a);
                failures++;
        }

        if (!failures)
                guest_printf("singlestep: 6 instructions, one #DB trap after each\n");
        return failures;
}
