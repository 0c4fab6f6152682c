/*
 * archcheck: writes the CPU must refuse with #GP, whose values Keel emulates or loads into
 * the VMCB/VMCS (docs/x86-state.md): XSETBV with every XCR0 rule broken that the CPU's
 * components allow to test, PAT with a reserved memory type, EFER with LME cleared in long
 * mode or a reserved bit set; after each accepted XSETBV, CPUID leaf 0xD's two sizes for
 * the new XCR0. Each must fault (a small IDT catches #GP and #UD and resumes
 * after the instruction), and the good values next to them must not. Then WBINVD and INVD,
 * which Keel intercepts and treats as no-ops (ARCHCHECK_FLUSHES each; the driver checks
 * Keel's count of them). Failures print "FAIL: ..."; the exit code is their number.
 */
#include "guest.h"

#define ARCHCHECK_FLUSHES 4

#define MSR_EFER 0xc0000080u
#define MSR_PAT  0x00000277u
#define VEC_UD   6
#define VEC_GP   13

/* The vector of the last fault caught (0: none), and where the handler resumes. */
volatile uint64_t fault_vector, fault_resume;

/*
 * #UD has no error code, #GP has one: both handlers make the interrupted RIP fault_resume,
 * record the vector and return.
 */
__asm__(".text\n"
        "ud_stub:\n\t"
        "movq $6, fault_vector(%rip)\n\t"
        "jmp 1f\n"
        "gp_stub:\n\t"
        "add $8, %rsp\n\t"
        "movq $13, fault_vector(%rip)\n"
        "1:\n\t"
        "push %rax\n\t"
        "mov fault_resume(%rip), %rax\n\t"
        "mov %rax, 8(%rsp)\n\t"
        "pop %rax\n\t"
        "iretq\n");
extern char ud_stub[], gp_stub[];

static uint64_t idt[2 * 32] __attribute__((aligned(16)));

static void set_gate(unsigned vec, void *handler)
{
        uint64_t a = (uint64_t)(uintptr_t)handler;

        /* 64-bit interrupt gate, present, DPL 0, CS 0x08 (the entry GDT's code segment) */
        idt[2 * vec] =
            (a & 0xffff) | (0x08ull << 16) | (0x8eull << 40) | ((a >> 16 & 0xffff) << 48);
        idt[2 * vec + 1] = a >> 32;
}

static void idt_load(void)
{
        struct {
                uint16_t limit;
                uint64_t base;
        } __attribute__((packed)) d = {sizeof(idt) - 1, (uint64_t)(uintptr_t)idt};

        set_gate(VEC_UD, ud_stub);
        set_gate(VEC_GP, gp_stub);
        __asm__ volatile("lidt %0" ::"m"(d));
}

/* Each try_* runs one instruction and returns the vector it raised (0 if none). */
static unsigned try_wrmsr(uint32_t msr, uint64_t v)
{
        fault_vector = 0;
        __asm__ volatile("lea 1f(%%rip), %%r11\n\t"
                         "mov %%r11, fault_resume(%%rip)\n\t"
                         "wrmsr\n"
                         "1:" ::"c"(msr),
                         "a"((uint32_t)v), "d"((uint32_t)(v >> 32))
                         : "r11", "memory");
        return (unsigned)fault_vector;
}

static unsigned try_xsetbv(uint32_t xcr, uint64_t v)
{
        fault_vector = 0;
        __asm__ volatile("lea 1f(%%rip), %%r11\n\t"
                         "mov %%r11, fault_resume(%%rip)\n\t"
                         "xsetbv\n"
                         "1:" ::"c"(xcr),
                         "a"((uint32_t)v), "d"((uint32_t)(v >> 32))
                         : "r11", "memory");
        return (unsigned)fault_vector;
}

static uint64_t xgetbv0(void)
{
        uint32_t lo, hi;

        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        return (uint64_t)hi << 32 | lo;
}

static unsigned checks, failed;

static void expect_vector(const char *what, uint64_t val, unsigned got, unsigned want)
{
        checks++;
        if (got == want) {
                guest_printf("ok: %s %lx: %s\n", what, (unsigned long)val,
                             want ? "#GP" : "accepted");
                return;
        }
        failed++;
        guest_printf("FAIL: %s %lx: vector %u, expected %u\n", what, (unsigned long)val, got, want);
}

static void expect_eq(const char *what, uint64_t got, uint64_t want)
{
        checks++;
        if (got == want)
                return;
        failed++;
        guest_printf("FAIL: %s = %lx, expected %lx\n", what, (unsigned long)got,
                     (unsigned long)want);
}

/*
 * CPUID.(0xD, 0).EBX and, with XSAVEC, CPUID.(0xD, 1).EBX for the XCR0 just set: the standard
 * area's size (the end of the highest enabled component) and the compacted one (the enabled
 * components in order, 64-byte aligned where CPUID.(0xD, i).ECX bit 1 says so), both counted
 * from the legacy region and header (576 bytes), from the components' own subleaves.
 */
static void check_xsave_sizes(uint64_t xcr0)
{
        uint32_t standard = 576, compacted = 576;
        struct cpuid_regs r;

        for (unsigned i = 2; i < 63; i++) {
                if (!(xcr0 & (1ull << i)))
                        continue;
                r = cpuid(0xd, i);
                if (r.ebx + r.eax > standard)
                        standard = r.ebx + r.eax;
                if (r.ecx & 2)
                        compacted = (compacted + 63) & ~63u;
                compacted += r.eax;
        }
        guest_printf("archcheck: XCR0 %lx: XSAVE area %u bytes, compacted %u\n",
                     (unsigned long)xcr0, standard, compacted);
        expect_eq("CPUID.(0xD,0).EBX", cpuid(0xd, 0).ebx, standard);
        r = cpuid(0xd, 1);
        if (r.eax & 2) /* XSAVEC */
                expect_eq("CPUID.(0xD,1).EBX", r.ebx, compacted);
}

static void test_xsetbv(void)
{
        uint64_t s, base, cr4;
        struct cpuid_regs r;

        if (!(cpuid(1, 0).ecx & (1u << 26))) {
                guest_printf("archcheck: no XSAVE: XSETBV not tested\n");
                return;
        }
        cr4 = read_cr(4) | (1ull << 18); /* OSXSAVE */
        __asm__ volatile("mov %0, %%cr4" ::"r"(cr4));
        r = cpuid(0xd, 0);
        s = r.eax | (uint64_t)r.edx << 32;
        base = s & 0x7; /* x87, SSE, AVX as far as supported */
        guest_printf("archcheck: XCR0 components %lx\n", (unsigned long)s);

        expect_vector("XSETBV ecx=1", 1, try_xsetbv(1, 1), VEC_GP);
        expect_vector("XSETBV x87 clear", 0, try_xsetbv(0, 0), VEC_GP);
        expect_vector("XSETBV x87 clear", 2, try_xsetbv(0, 2), VEC_GP);
        expect_vector("XSETBV reserved bit 63", 1ull << 63, try_xsetbv(0, 1 | 1ull << 63), VEC_GP);
        for (unsigned bit = 1; bit < 63; bit++)
                if (!(s & (1ull << bit))) {
                        expect_vector("XSETBV unsupported", 1 | 1ull << bit,
                                      try_xsetbv(0, 1 | 1ull << bit), VEC_GP);
                        break;
                }
        if (s & 4)
                expect_vector("XSETBV AVX without SSE", 5, try_xsetbv(0, 5), VEC_GP);
        if ((s & 0xe0) == 0xe0) {
                expect_vector("XSETBV AVX-512 opmask alone", base | 0x20,
                              try_xsetbv(0, base | 0x20), VEC_GP);
                expect_vector("XSETBV AVX-512 two of three", base | 0x60,
                              try_xsetbv(0, base | 0x60), VEC_GP);
                expect_vector("XSETBV AVX-512 without AVX", 0xe3, try_xsetbv(0, 0xe3), VEC_GP);
                expect_vector("XSETBV AVX-512", base | 0xe0, try_xsetbv(0, base | 0xe0), 0);
                expect_eq("XGETBV after AVX-512", xgetbv0(), base | 0xe0);
                check_xsave_sizes(base | 0xe0);
        }
        if ((s & 0x18) == 0x18) {
                expect_vector("XSETBV MPX BNDREGS alone", 0x9, try_xsetbv(0, 0x9), VEC_GP);
                expect_vector("XSETBV MPX BNDCSR alone", 0x11, try_xsetbv(0, 0x11), VEC_GP);
        }
        if ((s & 0x60000) == 0x60000) {
                expect_vector("XSETBV AMX TILECFG alone", base | 0x20000,
                              try_xsetbv(0, base | 0x20000), VEC_GP);
                expect_vector("XSETBV AMX TILEDATA alone", base | 0x40000,
                              try_xsetbv(0, base | 0x40000), VEC_GP);
        }
        expect_vector("XSETBV", base, try_xsetbv(0, base), 0);
        expect_eq("XGETBV", xgetbv0(), base);
        check_xsave_sizes(base);
        expect_vector("XSETBV x87 only", 1, try_xsetbv(0, 1), 0);
        expect_eq("XGETBV", xgetbv0(), 1);
        check_xsave_sizes(1);
}

static void test_pat(void)
{
        static const unsigned reserved[] = {2, 3, 8, 0xff};
        uint64_t reset = rdmsr(MSR_PAT);

        expect_eq("PAT at entry", reset, 0x0007040600070406ull);
        for (unsigned i = 0; i < ARRAY_SIZE(reserved); i++)
                for (unsigned byte = 0; byte < 8; byte += 7) {
                        uint64_t v = (reset & ~(0xffull << (8 * byte))) | (uint64_t)reserved[i]
                                                                              << (8 * byte);

                        expect_vector("WRMSR PAT", v, try_wrmsr(MSR_PAT, v), VEC_GP);
                }
        expect_eq("PAT after refused writes", rdmsr(MSR_PAT), reset);
        expect_vector("WRMSR PAT", 0x0001050400070406ull, try_wrmsr(MSR_PAT, 0x0001050400070406ull),
                      0);
        expect_eq("PAT", rdmsr(MSR_PAT), 0x0001050400070406ull);
        expect_vector("WRMSR PAT", reset, try_wrmsr(MSR_PAT, reset), 0);
}

static void test_efer(void)
{
        uint64_t efer = rdmsr(MSR_EFER);

        expect_eq("EFER LME and LMA at entry", efer & 0x500, 0x500);
        expect_vector("WRMSR EFER LME clear in long mode", efer & ~0x100ull,
                      try_wrmsr(MSR_EFER, efer & ~0x100ull), VEC_GP);
        expect_vector("WRMSR EFER LME and LMA clear", efer & ~0x500ull,
                      try_wrmsr(MSR_EFER, efer & ~0x500ull), VEC_GP);
        expect_vector("WRMSR EFER reserved bit 1", efer | 2, try_wrmsr(MSR_EFER, efer | 2), VEC_GP);
        expect_vector("WRMSR EFER reserved bit 9", efer | 0x200, try_wrmsr(MSR_EFER, efer | 0x200),
                      VEC_GP);
        expect_vector("WRMSR EFER SVME (hidden)", efer | 0x1000, try_wrmsr(MSR_EFER, efer | 0x1000),
                      VEC_GP);
        expect_vector("WRMSR EFER reserved bit 63", efer | 1ull << 63,
                      try_wrmsr(MSR_EFER, efer | 1ull << 63), VEC_GP);
        expect_eq("EFER after refused writes", rdmsr(MSR_EFER), efer);
        expect_vector("WRMSR EFER unchanged", efer, try_wrmsr(MSR_EFER, efer), 0);
        expect_vector("WRMSR EFER SCE toggled", efer ^ 1, try_wrmsr(MSR_EFER, efer ^ 1), 0);
        expect_eq("EFER SCE toggled", rdmsr(MSR_EFER), efer ^ 1);
        expect_vector("WRMSR EFER restored", efer, try_wrmsr(MSR_EFER, efer), 0);
}

static void test_cache_flushes(void)
{
        for (unsigned i = 0; i < ARCHCHECK_FLUSHES; i++) {
                __asm__ volatile("wbinvd" ::: "memory");
                __asm__ volatile("invd" ::: "memory");
        }
        guest_printf("archcheck: %u WBINVD and %u INVD completed\n", ARCHCHECK_FLUSHES,
                     ARCHCHECK_FLUSHES);
}

int64_t guest_main(void)
{
        idt_load();
        test_xsetbv();
        test_pat();
        test_efer();
        test_cache_flushes();
        if (failed)
                guest_printf("archcheck: %u of %u checks failed\n", failed, checks);
        else
                guest_printf("archcheck: all %u checks passed\n", checks);
        return failed;
}
