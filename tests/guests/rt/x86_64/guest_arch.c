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

int keel_hc_vendor;
