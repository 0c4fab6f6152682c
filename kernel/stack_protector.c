/*
 * The image's -fstack-protector-strong runtime (image only: host builds use their libc's).
 * GCC reads the canary from the global __stack_chk_guard (x86_64: -mstack-protector-guard=
 * global; arm64's default) and calls __stack_chk_fail when a function's copy of it was
 * overwritten before it returned.
 *
 * The canary is set once, by efi_main before it calls any protected function, from the CPU's
 * random number instruction or the firmware's RNG (boot/efi_main.c, docs/boot.md). It lives in
 * the relro part of the image, which Keel's own page tables map read-only: after boot nothing
 * can change it.
 */
#include <stdint.h>

#include <keel/check.h>
#include <keel/stack_protector.h>

uintptr_t __stack_chk_guard __attribute__((section(".data.rel.ro.keel_stack_guard"))) =
    0x4b65656c00dead00ull;

noreturn void __stack_chk_fail(void);

noreturn void __stack_chk_fail(void)
{
        panic("stack-protector canary overwritten: a stack buffer overrun in the function "
              "containing %p",
              __builtin_return_address(0));
}

__attribute__((no_stack_protector)) void stack_protector_init(uint64_t seed)
{
        /* The low byte zero: a string copy running over the end stops short of the rest. */
        __stack_chk_guard = (uintptr_t)(seed & ~0xffull);
}
