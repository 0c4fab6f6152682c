/*
 * x86_64 helpers of the hostile guests (tests/guests/hostile_*.c), included once per guest:
 *   - page tables of the guest's own (hx_paging_init): guest-physical 0..1 GiB identity
 *     mapped, user-accessible, with 2 MiB pages, except HX_PT_BASE..+2 MiB which has a 4 KiB
 *     table (hx_pt) the guest can change page by page;
 *   - a GDT with user segments and a TSS (hx_gdt_init), so that exceptions from CPL 3 reach
 *     a CPL 0 stack;
 *   - an IDT whose 32 exception vectors go to hx_trap (hx_idt_init): it counts the vector
 *     in hx_trap_count[] and records the last one, then resumes hx_resume_len bytes after
 *     the faulting instruction (set hx_resume_len before the instruction that must fault)
 *     or, with hx_resume_rip set, at that address, or, with hx_resume_ret set, at the return
 *     address on top of the faulting code's stack (code reached by CALL; hx_resume_ret = 4:
 *     a 4-byte one, code in a 32-bit segment); CR2 of a #PF in
 *     hx_last_cr2. An exception nobody expected (all 0) prints FAIL and exits 0xee.
 */
#ifndef HOSTILE_X86_H
#define HOSTILE_X86_H

#include "guest.h"

#define HX_SEL_KCODE 0x08
#define HX_SEL_KDATA 0x10
#define HX_SEL_UDATA (0x18 | 3)
#define HX_SEL_UCODE (0x20 | 3)
#define HX_SEL_TSS   0x28

#define HX_PTE_P  0x1ull
#define HX_PTE_RW 0x2ull
#define HX_PTE_US 0x4ull
#define HX_PTE_PS 0x80ull

#define HX_PT_BASE 0x400000ull /* the 2 MiB mapped by hx_pt (guest RAM must reach past it) */

static uint64_t hx_pml4[512] __attribute__((aligned(4096)));
static uint64_t hx_pdpt[512] __attribute__((aligned(4096)));
static uint64_t hx_pd[512] __attribute__((aligned(4096)));
static uint64_t hx_pt[512] __attribute__((aligned(4096)));
static uint8_t hx_kstack[8192] __attribute__((aligned(16)));

static inline void hx_flush_tlb(void)
{
        __asm__ volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" ::: "rax", "memory");
}

static inline void hx_paging_init(void)
{
        for (uint64_t i = 0; i < 512; i++) {
                hx_pd[i] = (i << 21) | HX_PTE_P | HX_PTE_RW | HX_PTE_US | HX_PTE_PS;
                hx_pt[i] = (HX_PT_BASE + (i << 12)) | HX_PTE_P | HX_PTE_RW | HX_PTE_US;
        }
        hx_pd[HX_PT_BASE >> 21] = gpa_of(hx_pt) | HX_PTE_P | HX_PTE_RW | HX_PTE_US;
        hx_pdpt[0] = gpa_of(hx_pd) | HX_PTE_P | HX_PTE_RW | HX_PTE_US;
        hx_pml4[0] = gpa_of(hx_pdpt) | HX_PTE_P | HX_PTE_RW | HX_PTE_US;
        __asm__ volatile("mov %0, %%cr3" : : "r"(gpa_of(hx_pml4)) : "memory");
}

struct __attribute__((packed)) hx_tss {
        uint32_t reserved0;
        uint64_t rsp[3];
        uint64_t reserved1;
        uint64_t ist[7];
        uint64_t reserved2;
        uint16_t reserved3, iomap;
};

static struct hx_tss hx_tss_area __attribute__((aligned(16)));
static uint64_t hx_gdt[7] __attribute__((aligned(16))) = {
    0,
    0x00af9a000000ffffull, /* 0x08: 64-bit code, DPL 0 */
    0x00cf92000000ffffull, /* 0x10: data, DPL 0 */
    0x00cff2000000ffffull, /* 0x18: data, DPL 3 */
    0x00affa000000ffffull, /* 0x20: 64-bit code, DPL 3 */
    0,                     /* 0x28: TSS (16 bytes), filled in hx_gdt_init */
    0,
};

struct __attribute__((packed)) hx_dtr {
        uint16_t limit;
        uint64_t base;
};

static inline void hx_gdt_init(void)
{
        uint64_t t = gpa_of(&hx_tss_area), lim = sizeof(hx_tss_area) - 1;
        struct hx_dtr g = {.limit = sizeof(hx_gdt) - 1, .base = gpa_of(hx_gdt)};

        hx_tss_area.rsp[0] = gpa_of(hx_kstack + sizeof(hx_kstack));
        hx_tss_area.iomap = sizeof(hx_tss_area);
        hx_gdt[5] = (lim & 0xffff) | ((t & 0xffffff) << 16) | (0x89ull << 40) |
                    (((lim >> 16) & 0xf) << 48) | (((t >> 24) & 0xff) << 56);
        hx_gdt[6] = t >> 32;
        __asm__ volatile("lgdt %0\n\t"
                         "pushq %1\n\t"
                         "leaq 1f(%%rip), %%rax\n\t"
                         "pushq %%rax\n\t"
                         "lretq\n"
                         "1:\n\t"
                         "mov %2, %%ds\n\t"
                         "mov %2, %%es\n\t"
                         "mov %2, %%ss\n\t"
                         "ltr %w3"
                         :
                         : "m"(g), "i"(HX_SEL_KCODE), "r"((uint64_t)HX_SEL_KDATA),
                           "r"((uint64_t)HX_SEL_TSS)
                         : "rax", "memory");
}

/* What the exception stubs push, lowest address first (struct hx_frame *). */
struct hx_frame {
        uint64_t rbx, r11, r10, r9, r8, rdi, rsi, rdx, rcx, rax;
        uint64_t vector, error;
        uint64_t rip, cs, rflags, rsp, ss;
};

static volatile uint64_t hx_trap_count[32];
static volatile uint64_t hx_last_vector = ~0ull, hx_last_error, hx_last_rip;
static volatile uint64_t hx_resume_len, hx_resume_rip, hx_resume_ret, hx_last_cr2;

void hx_trap(struct hx_frame *f);
void hx_trap(struct hx_frame *f)
{
        hx_last_vector = f->vector;
        hx_last_error = f->error;
        hx_last_rip = f->rip;
        if (f->vector < 32)
                hx_trap_count[f->vector]++;
        if (f->vector == 14)
                __asm__ volatile("mov %%cr2, %0" : "=r"(hx_last_cr2));
        if (hx_resume_ret == 4) { /* the same from a 32-bit code segment */
                f->rip = *(const uint32_t *)(uintptr_t)f->rsp;
                f->rsp += 4;
                hx_resume_ret = 0;
                return;
        }
        if (hx_resume_ret) { /* return to the caller of the code that faulted */
                f->rip = *(const uint64_t *)(uintptr_t)f->rsp;
                f->rsp += 8;
                hx_resume_ret = 0;
                return;
        }
        if (hx_resume_rip) {
                f->rip = hx_resume_rip;
                f->cs = HX_SEL_KCODE;
                f->ss = HX_SEL_KDATA;
                f->rsp = gpa_of(hx_kstack + sizeof(hx_kstack) / 2);
                f->rflags &= ~0x200ull;
                hx_resume_rip = 0;
                return;
        }
        if (hx_resume_len) {
                f->rip += hx_resume_len;
                hx_resume_len = 0;
                return;
        }
        guest_printf("FAIL: unexpected exception %lu (error %lx) at rip %lx\n",
                     (unsigned long)f->vector, (unsigned long)f->error, (unsigned long)f->rip);
        guest_exit(0xee);
}

/* Vectors with an error code: 8, 10-14, 17, 21, 29, 30; the others push a 0. */
#define HX_STUB(n, err)                           \
        ".balign 16\n"                            \
        "hx_stub_" #n ":\n" err "pushq $" #n "\n" \
        "jmp hx_trap_common\n"
#define HX_NOERR "pushq $0\n"

__asm__(".text\n"
        ".globl hx_stubs\n"
        "hx_stubs:\n" HX_STUB(0, HX_NOERR) HX_STUB(1, HX_NOERR) HX_STUB(2, HX_NOERR) HX_STUB(
            3, HX_NOERR) HX_STUB(4, HX_NOERR) HX_STUB(5, HX_NOERR) HX_STUB(6, HX_NOERR)
            HX_STUB(7, HX_NOERR) HX_STUB(8, "") HX_STUB(9, HX_NOERR) HX_STUB(10, "") HX_STUB(11, "")
                HX_STUB(12, "") HX_STUB(13, "") HX_STUB(14, "") HX_STUB(15, HX_NOERR)
                    HX_STUB(16, HX_NOERR) HX_STUB(17, "") HX_STUB(18, HX_NOERR)
                        HX_STUB(19, HX_NOERR) HX_STUB(20, HX_NOERR) HX_STUB(21, "")
                            HX_STUB(22, HX_NOERR) HX_STUB(23, HX_NOERR) HX_STUB(24, HX_NOERR)
                                HX_STUB(25, HX_NOERR) HX_STUB(26, HX_NOERR) HX_STUB(27, HX_NOERR)
                                    HX_STUB(28, HX_NOERR) HX_STUB(29, "") HX_STUB(30, "") HX_STUB(
                                        31,
                                        HX_NOERR) "hx_trap_common:\n"
                                                  "pushq %rax\n pushq %rcx\n pushq %rdx\n pushq "
                                                  "%rsi\n pushq %rdi\n"
                                                  "pushq %r8\n pushq %r9\n pushq %r10\n pushq "
                                                  "%r11\n pushq %rbx\n"
                                                  "mov %rsp, %rdi\n"
                                                  "mov %rsp, %rbx\n"
                                                  "and $-16, %rsp\n"
                                                  "call hx_trap\n"
                                                  "mov %rbx, %rsp\n"
                                                  "popq %rbx\n popq %r11\n popq %r10\n popq %r9\n "
                                                  "popq %r8\n popq %rdi\n"
                                                  "popq %rsi\n popq %rdx\n popq %rcx\n popq %rax\n"
                                                  "add $16, %rsp\n"
                                                  "iretq\n");

extern char hx_stubs[];

struct __attribute__((packed)) hx_gate {
        uint16_t off0, sel;
        uint8_t ist, type;
        uint16_t off1;
        uint32_t off2, zero;
};

static struct hx_gate hx_idt[256] __attribute__((aligned(16)));

/* Interrupt gates (IF cleared on entry), DPL 3 so INT n from ring 3 reaches them too. */
static inline void hx_idt_init(void)
{
        struct hx_dtr d = {.limit = sizeof(hx_idt) - 1, .base = gpa_of(hx_idt)};

        for (unsigned v = 0; v < 32; v++) {
                uint64_t h = gpa_of(hx_stubs) + 16 * v;

                hx_idt[v] = (struct hx_gate){.off0 = (uint16_t)h,
                                             .sel = HX_SEL_KCODE,
                                             .type = 0xee,
                                             .off1 = (uint16_t)(h >> 16),
                                             .off2 = (uint32_t)(h >> 32)};
        }
        __asm__ volatile("lidt %0" : : "m"(d) : "memory");
}

/* Drops to CPL 3 at `fn` on `stack_top` with IOPL 3 (the UART stays reachable), IF off. */
static inline noreturn void hx_enter_user(void (*fn)(void), void *stack_top)
{
        __asm__ volatile("pushq %0\n\t"
                         "pushq %1\n\t"
                         "pushq %2\n\t"
                         "pushq %3\n\t"
                         "pushq %4\n\t"
                         "iretq"
                         :
                         : "i"(HX_SEL_UDATA), "r"(gpa_of(stack_top)), "i"(0x3002),
                           "i"(HX_SEL_UCODE), "r"(gpa_of((const void *)fn))
                         : "memory");
        __builtin_unreachable();
}

#endif
