/*
 * hostile_hc_user (x86_64): a hypercall from CPL 3 with hostile arguments: EXIT(0) with
 * every other argument register at 2^64-1. Only the guest kernel may call Keel
 * (docs/hypercalls.md), so the VM must stop with "bad-hypercall"; a Keel that ran the call
 * would end it with exit code 0 instead, which the config does not expect.
 */
#include "guest.h"
#include "hostile_x86.h"

static uint8_t user_stack[4096] __attribute__((aligned(16)));

static noreturn void user_main(void)
{
        int64_t r;

        guest_printf("hostile_hc_user: at CPL 3, calling EXIT(0) with arguments 2^64-1\n");
        r = keel_hypercall(KEEL_HC_EXIT, 0, ~0ull, ~0ull, ~0ull);
        guest_printf("FAIL: hostile_hc_user: the hypercall returned %ld at CPL 3\n", (long)r);
        __asm__ volatile("ud2");
        for (;;)
                ;
}

int64_t guest_main(void)
{
        hx_paging_init();
        hx_gdt_init();
        hx_idt_init();
        hx_enter_user(user_main, user_stack + sizeof(user_stack));
}
