/*
 * usermode: drops to CPL 3 and executes VMMCALL there. Only the guest kernel may make
 * hypercalls, so Keel must stop the VM with "bad-hypercall". If the VMMCALL returns, the guest
 * says so and executes ud2 (a triple fault, which does not match the expectation either).
 *
 * Ring 3 needs user-accessible pages and user segments, so the guest first installs its own
 * page tables (0..1 GiB identity, 2 MiB pages, U/S set) and GDT. RFLAGS.IOPL = 3 lets ring 3
 * reach the UART. No TSS or IDT: nothing ever returns to ring 0.
 */
#include "guest.h"

#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UDATA (0x18 | 3)
#define SEL_UCODE (0x20 | 3)

#define PTE_P  0x1ull
#define PTE_RW 0x2ull
#define PTE_US 0x4ull
#define PTE_PS 0x80ull

static uint64_t pml4[512] __attribute__((aligned(4096)));
static uint64_t pdpt[512] __attribute__((aligned(4096)));
static uint64_t pd[512] __attribute__((aligned(4096)));
static uint8_t user_stack[4096] __attribute__((aligned(16)));

static const uint64_t gdt[] __attribute__((aligned(16))) = {
    0,
    0x00af9a000000ffffull, /* 0x08: 64-bit code, DPL 0 */
    0x00cf92000000ffffull, /* 0x10: data, DPL 0 */
    0x00cff2000000ffffull, /* 0x18: data, DPL 3 */
    0x00affa000000ffffull, /* 0x20: 64-bit code, DPL 3 */
};

struct __attribute__((packed)) gdtr {
        uint16_t limit;
        uint64_t base;
};

static unsigned current_cpl(void)
{
        uint16_t cs;

        __asm__ volatile("mov %%cs, %0" : "=r"(cs));
        return cs & 3;
}

static noreturn void user_main(void)
{
        int64_t r;

        guest_printf("usermode: now at CPL %u, executing VMMCALL\n", current_cpl());
        r = hc_version();
        guest_printf("FAIL: VMMCALL from CPL %u returned %ld\n", current_cpl(), r);
        __asm__ volatile("ud2");
        for (;;)
                ;
}

static void install_page_tables(void)
{
        for (uint64_t i = 0; i < 512; i++)
                pd[i] = (i << 21) | PTE_P | PTE_RW | PTE_US | PTE_PS;
        pdpt[0] = gpa_of(pd) | PTE_P | PTE_RW | PTE_US;
        pml4[0] = gpa_of(pdpt) | PTE_P | PTE_RW | PTE_US;
        __asm__ volatile("mov %0, %%cr3" : : "r"(gpa_of(pml4)) : "memory");
}

static void install_gdt(void)
{
        struct gdtr g = {.limit = sizeof(gdt) - 1, .base = gpa_of(gdt)};

        __asm__ volatile("lgdt %0\n\t"
                         "pushq %1\n\t"
                         "leaq 1f(%%rip), %%rax\n\t"
                         "pushq %%rax\n\t"
                         "lretq\n"
                         "1:\n\t"
                         "mov %2, %%ds\n\t"
                         "mov %2, %%es\n\t"
                         "mov %2, %%ss"
                         :
                         : "m"(g), "i"(SEL_KCODE), "r"((uint64_t)SEL_KDATA)
                         : "rax", "memory");
}

int64_t guest_main(void)
{
        guest_printf("usermode: at CPL %u, switching to ring 3\n", current_cpl());
        if (hc_version() != KEEL_HC_ABI_VERSION) {
                guest_printf("FAIL: VMMCALL from CPL 0 did not return the ABI version\n");
                return 1;
        }
        install_page_tables();
        install_gdt();
        __asm__ volatile("pushq %0\n\t" /* SS */
                         "pushq %1\n\t" /* RSP */
                         "pushq %2\n\t" /* RFLAGS: IOPL 3, interrupts off */
                         "pushq %3\n\t" /* CS */
                         "pushq %4\n\t" /* RIP */
                         "iretq"
                         :
                         : "i"(SEL_UDATA), "r"(gpa_of(user_stack + sizeof(user_stack) - 8)),
                           "i"(0x3002), "i"(SEL_UCODE), "r"(gpa_of(user_main))
                         : "memory");
        __builtin_unreachable();
}
