/*
 * x86_64 part of the test guests' runtime: the libc copies the compiler may call, with the
 * string instructions.
 */
#include "guest.h"

void *memset(void *d, int c, size_t n)
{
        void *ret = d;

        __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
        return ret;
}

void *memcpy(void *d, const void *s, size_t n)
{
        void *ret = d;

        __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
        return ret;
}

int guest_hc_intel;

int guest_hc_detect(void)
{
        uint32_t a = 0, b, c, d;

        __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(d));
        /* "GenuineIntel": EBX "Genu", EDX "ineI", ECX "ntel" */
        guest_hc_intel = (b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e) ? 2 : 1;
        return guest_hc_intel;
}
