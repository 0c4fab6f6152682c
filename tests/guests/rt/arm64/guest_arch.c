/*
 * arm64 part of the test guests' runtime: the libc copies the compiler may call (plain byte
 * loops: with the MMU off every access must be aligned, so no wider tricks) and the report of
 * an unexpected exception.
 */
#include "guest.h"

/* Exit code after an exception (the runtime's codes are 0xd0 and up). */
#define RT_EXIT_EXCEPTION 0xd2

void *memset(void *d, int c, size_t n)
{
        unsigned char *p = d;

        while (n--)
                *p++ = (unsigned char)c;
        return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
        unsigned char *p = d;
        const unsigned char *q = s;

        while (n--)
                *p++ = *q++;
        return d;
}

void guest_exception(uint64_t vector, uint64_t esr, uint64_t elr, uint64_t far)
{
        static const char *const from[] = {"EL1 with SP_EL0", "EL1 with SP_EL1", "EL0 (AArch64)",
                                           "EL0 (AArch32)"};
        static const char *const kind[] = {"synchronous", "IRQ", "FIQ", "SError"};

        guest_printf("FAIL: %s exception from %s: ESR_EL1 0x%lx (EC 0x%lx), ELR_EL1 0x%lx, "
                     "FAR_EL1 0x%lx\n",
                     kind[vector & 3], from[(vector >> 2) & 3], esr, (esr >> 26) & 0x3f, elr, far);
        guest_exit(RT_EXIT_EXCEPTION);
}
