/*
 * hostile_a32 (arm64): a guest whose EL0 runs AArch32 code (HCR_EL2.RW only makes EL1
 * AArch64; EL0 may still be AArch32, as 32-bit processes under a 64-bit Linux are), and a
 * guest WFI that waits for its virtual timer. Keel must treat exits from AArch32 EL0 as
 * exits like any other:
 *   1. an A32 loop long enough for Keel's own timer to end a slice while it runs (an IRQ
 *      exit from AArch32), then SVC back to EL1;
 *   2. with SCTLR_EL1.nTWI set (EL0 WFI not trapped to EL1, so HCR_EL2.TWI traps it to
 *      Keel) and the virtual timer armed for later: an A32 WFI (4 bytes) and a T32 WFI
 *      (2 bytes, ESR.IL = 0), each followed by SVC #0; a T32 WFI stepped over as if it had
 *      4 bytes would run the SVC #1 behind it instead;
 *   3. at EL1, WFI in a loop until the virtual timer (armed 100 ms ahead, interrupts
 *      masked) is due: on hardware a few WFIs; Keel must keep the vCPU blocked until then
 *      rather than resume it at once, again and again (at most 50 WFIs).
 * If the CPU has no AArch32 EL0 (illegal return), parts 1 and 2 are skipped and said so.
 * Exit 0 with "hostile_a32: all N checks passed".
 */
#include "guest.h"

static unsigned checks, failed;

static void check(bool ok, const char *what, uint64_t v)
{
        checks++;
        if (ok)
                return;
        failed++;
        guest_printf("FAIL: hostile_a32: %s (%lx)\n", what, (unsigned long)v);
}

/* The last exception at EL1, and where to resume (EL1h, DAIF masked). */
struct a32_state {
        uint64_t vector, esr, elr, count;
        uint64_t resume_pc;
};

struct a32_state ax __attribute__((aligned(16)));

void ax_vectors(void);
__asm__(".text\n"
        ".balign 2048\n"
        ".globl ax_vectors\n"
        "ax_vectors:\n"
        ".irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15\n"
        ".balign 128\n"
        "stp x0, x1, [sp, #-16]!\n"
        "mov x0, #\\n\n"
        "b ax_common\n"
        ".endr\n"
        "ax_common:\n"
        "adrp x1, ax\n"
        "add x1, x1, :lo12:ax\n"
        "str x0, [x1, #0]\n"
        "mrs x0, esr_el1\n"
        "str x0, [x1, #8]\n"
        "mrs x0, elr_el1\n"
        "str x0, [x1, #16]\n"
        "ldr x0, [x1, #24]\n"
        "add x0, x0, #1\n"
        "str x0, [x1, #24]\n"
        "ldr x0, [x1, #32]\n"
        "msr elr_el1, x0\n"
        "mov x0, #0x3c5\n"
        "msr spsr_el1, x0\n"
        "ldp x0, x1, [sp], #16\n"
        "eret\n");

#define EC(esr)    (((esr) >> 26) & 0x3f)
#define EC_ILLEGAL 0x0e
#define EC_SVC32   0x11
#define SPSR_USR32 0x1d0u /* AArch32 user mode, A, I, F masked */
#define SPSR_T     0x20u  /* T32 */
#define SCTLR_NTWI (1ull << 16)

static uint32_t a32_loop[] __attribute__((aligned(16))) = {
    0xe3a00302, /* mov r0, #0x8000000 */
    0xe2500001, /* 1: subs r0, r0, #1 */
    0x1afffffd, /* bne 1b */
    0xef000000, /* svc #0 */
};
static uint32_t a32_wfi[] __attribute__((aligned(16))) = {
    0xe320f003, /* wfi */
    0xef000000, /* svc #0 */
    0xef000001, /* svc #1 */
};
static uint16_t t32_wfi[] __attribute__((aligned(16))) = {
    0xbf30, /* wfi */
    0xdf00, /* svc #0 */
    0xdf01, /* svc #1 */
    0xdf02, /* svc #2 */
};

/* ERET to AArch32 EL0 at `pc`; returns the vector of the exception that came back. */
static uint64_t run_el0(uint64_t pc, uint64_t spsr)
{
        uint64_t n = ax.count;

        ax.vector = ~0ull;
        __asm__ volatile("adr x9, 1f\n"
                         "str x9, [%0]\n"
                         "msr elr_el1, %1\n"
                         "msr spsr_el1, %2\n"
                         "eret\n"
                         "1:\n"
                         :
                         : "r"(&ax.resume_pc), "r"(pc), "r"(spsr)
                         : "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11",
                           "x12", "x13", "x14", "cc", "memory");
        return ax.count - n == 1 ? ax.vector : ~0ull;
}

static uint64_t freq(void)
{
        return read_sysreg(cntfrq_el0);
}

static void arm_vtimer(uint64_t ticks)
{
        uint64_t cval = guest_counter() + ticks;

        __asm__ volatile("msr cntv_cval_el0, %0\n msr cntv_ctl_el0, %1\n isb"
                         :
                         : "r"(cval), "r"(1ull)
                         : "memory");
}

static void aarch32(void)
{
        uint64_t v, sctlr = read_sysreg(sctlr_el1);

        v = run_el0(gpa_of(a32_loop), SPSR_USR32);
        if (v == 4 && EC(ax.esr) == EC_ILLEGAL) {
                guest_printf("hostile_a32: no AArch32 at EL0 on this CPU: parts 1 and 2 skipped\n");
                return;
        }
        check(v == 12 && EC(ax.esr) == EC_SVC32 && ax.elr == gpa_of(&a32_loop[3]) + 4,
              "A32 loop at EL0 did not end in its SVC", ax.esr);
        guest_printf("hostile_a32: 128M-iteration A32 loop at EL0 ran through Keel's slices\n");

        /*
         * Each WFI with the timer armed 200 ms ahead: it waits, it does not hang. (Once
         * the timer fired while the guest ran, Keel masks it, as this VM has no GIC, and a
         * WFI after that is a hang: halted. 200 ms is far more than the slices of the
         * other VMs in this boot.)
         */
        __asm__ volatile("msr sctlr_el1, %0\n isb" : : "r"(sctlr | SCTLR_NTWI) : "memory");
        arm_vtimer(freq() / 5);
        v = run_el0(gpa_of(a32_wfi), SPSR_USR32);
        check(v == 12 && EC(ax.esr) == EC_SVC32 && (ax.esr & 0xffff) == 0 &&
                  ax.elr == gpa_of(&a32_wfi[1]) + 4,
              "A32 WFI trapped to Keel: not followed by its SVC #0", ax.esr);
        arm_vtimer(freq() / 5);
        v = run_el0(gpa_of(t32_wfi), SPSR_USR32 | SPSR_T);
        check(v == 12 && EC(ax.esr) == EC_SVC32 && (ax.esr & 0xffff) == 0 &&
                  ax.elr == gpa_of(&t32_wfi[1]) + 2,
              "T32 WFI trapped to Keel: not followed by its SVC #0 (esr, imm = svc number)",
              ax.esr);
        __asm__ volatile("msr sctlr_el1, %0\n msr cntv_ctl_el0, xzr\n isb"
                         :
                         : "r"(sctlr)
                         : "memory");
        guest_printf("hostile_a32: A32 and T32 WFI at EL0 trapped to Keel and stepped over\n");
}

static void wfi_timer(void)
{
        uint64_t wfis = 0, due;

        arm_vtimer(freq() / 10);
        __asm__ volatile("mrs %0, cntv_cval_el0" : "=r"(due));
        while (guest_counter() < due) {
                __asm__ volatile("wfi" ::: "memory");
                wfis++;
        }
        __asm__ volatile("msr cntv_ctl_el0, xzr\n isb" ::: "memory");
        check(wfis <= 50, "WFI returned too often before the timer was due (count)", wfis);
        guest_printf("hostile_a32: WFI until the timer was due: %s\n",
                     wfis <= 50 ? "woke up at most 50 times" : "woke up too often");
}

int64_t guest_main(void)
{
        __asm__ volatile("msr vbar_el1, %0\n isb" : : "r"(gpa_of((void *)ax_vectors)));
        aarch32();
        wfi_timer();
        if (failed) {
                guest_printf("FAIL: hostile_a32: %u of %u checks failed\n", failed, checks);
                return 1;
        }
        guest_printf("hostile_a32: all %u checks passed\n", checks);
        return 0;
}
