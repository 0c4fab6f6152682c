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
 *   HOSTILE_STRING_IO: REP OUTSB with RCX = 2^64-1 and DF = 1 (Keel does not emulate string
 *   I/O: stop unhandled-exit, naming it).
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

        r = run_at_end(guest_hc_detect() == 2 ? vmcall : vmmcall, 3,
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
        guest_printf("hostile_fetch: rep outsb with RCX = 2^64-1 and DF = 1\n");
        __asm__ volatile("std\n rep outsb\n cld"
                         :
                         : "S"(gpa_of(hx_pd) + 4095), "c"(~0ull), "d"(0x3f8)
                         : "memory");
        guest_printf("FAIL: hostile_fetch: string I/O came back\n");
        return 1;
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
