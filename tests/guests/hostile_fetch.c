/*
 * hostile_fetch (x86_64): intercepted instructions in awkward places, for Keel's instruction
 * fetch and decoder (it decodes them to step over them: no NRIP-save under QEMU TCG).
 * The guest's own page tables (hostile_x86.h) map page A, and page B after it not present.
 * Each instruction sits at the very end of A, so the fetch of up to 15 bytes Keel makes
 * runs into B; after it the CPU faults on B (#PF with CR2 = B, at RIP = B: Keel stepped over
 * exactly the instruction), which returns to the caller:
 *   CPUID (plain, with REX.W and segment prefixes, with 13 operand-size prefixes: 15 bytes),
 *   VMMCALL/VMCALL (VERSION), RDMSR of PAT and of an unknown MSR (#GP, RIP unchanged), OUT
 *   and IN on the UART's scratch register, HLT is left out (it stops the VM);
 * CPUID with 14 prefixes (16 bytes, longer than any instruction): #GP or #UD at its start.
 * Exit 0 with "hostile_fetch: all N checks passed".
 *
 * Built twice more, each ending in a stop the config expects:
 *   HOSTILE_FETCH_OUTSIDE: jumps to a page its tables map to guest-physical 256 MiB,
 *   outside its RAM (stop outside-ram, an instruction fetch);
 * and once as HOSTILE_STRING_IO: string port I/O, which Keel emulates (INS/OUTS, REP, DF,
 * address size, segment override, at most 128 iterations per exit), on the UART: REP OUTSB
 * up and down print lines; REP INSB of 1000 bytes from the scratch register fills them all;
 * FS: and 67 (ESI, its upper half ignored and cleared) reach the right bytes; REP OUTSB with
 * RCX = 2^64-1 from 5 bytes before the not-present page B prints those 5 and takes #PF
 * (error 0, CR2 = page B) with RSI at page B and RCX down by 5; REP INSB into it the same
 * with error 2 (a write), the port not read for the faulting byte; with DF = 1 and RCX =
 * 2^64-1 from inside page B, #PF at once; exits 0.
 */
#include "guest.h"
#include "hostile_x86.h"

#define PAGE_A (HX_PT_BASE + 0x1000)
#define PAGE_B (HX_PT_BASE + 0x2000)

static unsigned checks, failed;

static void check(bool ok, const char *what, uint64_t v)
{
        checks++;
        if (ok)
                return;
        failed++;
        guest_printf("FAIL: hostile_fetch: %s (%lx)\n", what, (unsigned long)v);
}

struct regs {
        uint64_t rax, rbx, rcx, rdx;
};

/* Runs `len` bytes placed at the end of page A with the given registers, by CALL. */
static struct regs run_at_end(const uint8_t *bytes, unsigned len, struct regs in)
{
        uint8_t *at = (uint8_t *)(uintptr_t)(PAGE_B - len);

        memcpy(at, bytes, len);
        hx_last_vector = ~0ull;
        hx_last_cr2 = 0;
        hx_resume_ret = 1;
        __asm__ volatile("call *%4"
                         : "+a"(in.rax), "+b"(in.rbx), "+c"(in.rcx), "+d"(in.rdx)
                         : "r"(gpa_of(at))
                         : "rsi", "rdi", "r8", "r9", "r10", "r11", "memory");
        hx_resume_ret = 0;
        return in;
}

/* The instruction ran and Keel stepped over exactly it: the CPU then faulted on page B. */
static bool stepped_over(void)
{
        return hx_last_vector == 14 && hx_last_cr2 == PAGE_B && hx_last_rip == PAGE_B;
}

static void cpuid_at_end(const char *what, const uint8_t *bytes, unsigned len)
{
        struct regs r = run_at_end(bytes, len, (struct regs){.rax = 0x40000000});

        check(stepped_over(), what, hx_last_rip);
        check(r.rbx == 0x6c65654b && r.rcx == 0x6c65654b && r.rdx == 0x6c65654b,
              "CPUID 0x40000000 signature at the page end", r.rbx);
}

static __attribute__((unused)) void fetch_checks(void)
{
        static const uint8_t cpuid[] = {0x0f, 0xa2};
        static const uint8_t cpuid_rex[] = {0x2e, 0x3e, 0x26, 0x48, 0x0f, 0xa2};
        uint8_t long15[15], long16[16];
        static const uint8_t vmmcall[] = {0x0f, 0x01, 0xd9}, vmcall[] = {0x0f, 0x01, 0xc1};
        static const uint8_t rdmsr[] = {0x0f, 0x32};
        static const uint8_t out_in[] = {0xee, 0x30, 0xc0, 0xec}; /* out; xor al,al; in */
        struct regs r;

        cpuid_at_end("CPUID at the page end", cpuid, sizeof(cpuid));
        cpuid_at_end("CPUID with segment prefixes and REX.W", cpuid_rex, sizeof(cpuid_rex));
        memset(long15, 0x66, sizeof(long15));
        long15[13] = 0x0f;
        long15[14] = 0xa2;
        cpuid_at_end("CPUID of 15 bytes (13 prefixes)", long15, sizeof(long15));

        memset(long16, 0x66, sizeof(long16));
        long16[14] = 0x0f;
        long16[15] = 0xa2;
        run_at_end(long16, sizeof(long16), (struct regs){.rax = 0});
        check((hx_last_vector == 13 || hx_last_vector == 6) && hx_last_rip == PAGE_B - 16,
              "CPUID of 16 bytes: not #GP/#UD at its start (vector)", hx_last_vector);

        r = run_at_end(keel_hc_detect() == 2 ? vmcall : vmmcall, 3,
                       (struct regs){.rax = KEEL_HC_VERSION});
        check(stepped_over() && r.rax == KEEL_HC_ABI_VERSION, "hypercall at the page end", r.rax);

        r = run_at_end(rdmsr, sizeof(rdmsr), (struct regs){.rcx = 0x277}); /* PAT */
        check(stepped_over() && (r.rdx << 32 | (uint32_t)r.rax) == 0x0007040600070406ull,
              "RDMSR PAT at the page end", r.rax);
        run_at_end(rdmsr, sizeof(rdmsr), (struct regs){.rcx = 0x12345});
        check(hx_last_vector == 13 && hx_last_rip == PAGE_B - 2,
              "RDMSR of an unknown MSR at the page end: not #GP at it (vector)", hx_last_vector);

        r = run_at_end(out_in, sizeof(out_in), (struct regs){.rax = 0x5a, .rdx = 0x3ff});
        check(stepped_over() && (r.rax & 0xff) == 0x5a, "OUT, IN of the UART scratch register",
              r.rax);
        guest_printf("hostile_fetch: CPUID, hypercall, RDMSR, OUT, IN at a page end stepped "
                     "over exactly\n");
}

#define SCRATCH 0x3ff /* the UART's scratch register */

/* `rep outsb` / `rep insb` with the given registers; returns RSI or RDI and RCX after it (a
 * #PF skips the 2-byte instruction: hx_resume_len). */
static uint64_t rep_outsb(uint64_t rsi, uint64_t *rcx, bool down)
{
        hx_last_vector = ~0ull;
        hx_resume_len = 2;
        __asm__ volatile("cmp $0, %3\n\t"
                         "je 1f\n\t"
                         "std\n"
                         "1: rep outsb\n\t"
                         "cld"
                         : "+S"(rsi), "+c"(*rcx)
                         : "d"(0x3f8), "r"((uint64_t)down)
                         : "memory", "cc");
        hx_resume_len = 0;
        return rsi;
}

static uint64_t rep_insb(uint64_t rdi, uint64_t *rcx)
{
        hx_last_vector = ~0ull;
        hx_resume_len = 2;
        __asm__ volatile("cld; rep insb" : "+D"(rdi), "+c"(*rcx) : "d"(SCRATCH) : "memory");
        hx_resume_len = 0;
        return rdi;
}

static __attribute__((unused)) int64_t string_io_checks(void)
{
        static const char up[] = "hostile_fetch: rep outsb up\n";
        static const char down[] = "\nnwod bstuo per :hctef_elitsoh"; /* printed backwards */
        static uint8_t buf[1024];
        uint8_t *a_end = (uint8_t *)(uintptr_t)PAGE_B;
        uint64_t rcx, at;
        unsigned bad = 0;

        rcx = sizeof(up) - 1;
        at = rep_outsb(gpa_of(up), &rcx, false);
        check(at == gpa_of(up) + sizeof(up) - 1 && rcx == 0, "rep outsb up: RSI, RCX", at);
        rcx = sizeof(down) - 1;
        at = rep_outsb(gpa_of(down) + sizeof(down) - 2, &rcx, true);
        check(at == gpa_of(down) - 1 && rcx == 0, "rep outsb down: RSI, RCX", at);

        outb(SCRATCH, 0xa5);
        rcx = 1000;
        at = rep_insb(gpa_of(buf), &rcx);
        for (unsigned i = 0; i < 1000; i++)
                bad += buf[i] != 0xa5;
        check(at == gpa_of(buf) + 1000 && rcx == 0 && bad == 0 && buf[1000] == 0,
              "rep insb of 1000 bytes from the scratch register", bad);

        /* fs: addr32 rep outsb: FS.base + ESI, RSI's upper half ignored, then cleared. */
        {
                static const char fs_line[] = "hostile_fetch: fs: addr32 rep outsb\n";
                uint64_t base = gpa_of(fs_line) - 0x100, rsi = 0xabcd000000000100ull;

                __asm__ volatile("wrmsr" ::"c"(0xc0000100u), "a"((uint32_t)base),
                                 "d"((uint32_t)(base >> 32)));
                rcx = sizeof(fs_line) - 1;
                __asm__ volatile(".byte 0x64, 0x67, 0xf3, 0x6e"
                                 : "+S"(rsi), "+c"(rcx)
                                 : "d"(0x3f8)
                                 : "memory");
                check(rsi == 0x100 + sizeof(fs_line) - 1 && rcx == 0, "fs: addr32 rep outsb: RSI",
                      rsi);
        }

        /* Hostile: RCX = 2^64-1 running into the not-present page B. */
        memcpy(a_end - 5, "<PF>\n", 5);
        rcx = ~0ull;
        at = rep_outsb(gpa_of(a_end - 5), &rcx, false);
        check(hx_last_vector == 14 && hx_last_error == 0 && hx_last_cr2 == PAGE_B,
              "rep outsb into page B: #PF, error 0, CR2", hx_last_cr2);
        check(at == PAGE_B && rcx == ~0ull - 5, "rep outsb into page B: RSI, RCX", rcx);
        outb(SCRATCH, 0x3c);
        a_end[-1] = a_end[-2] = a_end[-3] = 0;
        rcx = 10;
        at = rep_insb(gpa_of(a_end - 2), &rcx);
        check(hx_last_vector == 14 && hx_last_error == 2 && hx_last_cr2 == PAGE_B,
              "rep insb into page B: #PF, error 2, CR2", hx_last_error);
        check(at == PAGE_B && rcx == 8 && a_end[-1] == 0x3c && a_end[-2] == 0x3c && a_end[-3] == 0,
              "rep insb into page B: RDI, RCX, bytes", rcx);
        rcx = ~0ull;
        at = rep_outsb(PAGE_B + 4, &rcx, true);
        check(hx_last_vector == 14 && hx_last_cr2 == PAGE_B + 4 && at == PAGE_B + 4 && rcx == ~0ull,
              "rep outsb down from page B: #PF at once", hx_last_cr2);
        if (failed) {
                guest_printf("FAIL: hostile_fetch: %u of %u string I/O checks failed\n", failed,
                             checks);
                return 1;
        }
        guest_printf("hostile_fetch: string I/O: all %u checks passed\n", checks);
        return 0;
}

int64_t guest_main(void)
{
        hx_paging_init();
        hx_gdt_init();
        hx_idt_init();
        hx_pt[2] = 0; /* page B: not present */
        hx_flush_tlb();
#if defined(HOSTILE_FETCH_OUTSIDE)
        hx_pt[2] = 0x10000000ull | HX_PTE_P | HX_PTE_RW;
        hx_flush_tlb();
        guest_printf("hostile_fetch: jumping to %lx, mapped to guest-physical 0x10000000\n",
                     (unsigned long)PAGE_B);
        ((void (*)(void))(uintptr_t)PAGE_B)();
        guest_printf("FAIL: hostile_fetch: came back from outside RAM\n");
        return 1;
#elif defined(HOSTILE_STRING_IO)
        return string_io_checks();
#else
        fetch_checks();
        if (failed) {
                guest_printf("FAIL: hostile_fetch: %u of %u checks failed\n", failed, checks);
                return 1;
        }
        guest_printf("hostile_fetch: all %u checks passed\n", checks);
        return 0;
#endif
}
