/*
 * The freestanding string functions of the UEFI image (declared in
 * lib/include/freestanding/string.h), with ISO C / glibc semantics: comparisons return the
 * sign of the difference of the first differing bytes taken as unsigned char, and strchr /
 * strrchr search for (char)c, so searching for '\0' finds the terminator.
 *
 * This file must be compiled with -fno-builtin and -fno-tree-loop-distribute-patterns:
 * otherwise GCC may recognise the byte loops below as "a memset" / "a memcpy" and compile
 * them into calls to memset / memcpy, i.e. into infinite self-recursion. The host tests
 * (tests/lib) check that the image-style object of this file contains no call at all.
 */
#include <stdint.h>
#include <string.h>

/* A machine word that may alias any object, for the aligned middle part of memcpy / memset. */
typedef unsigned long __attribute__((may_alias)) lib_word;
#define LIB_WORD sizeof(lib_word)

/* A macro, not a function: string.o must contain no call at all, even at -O0. */
#define LIB_ALIGNED(p) (((uintptr_t)(p) & (LIB_WORD - 1)) == 0)

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
        unsigned char *d = dst;
        const unsigned char *s = src;

        /* Word copies only when both pointers can be word-aligned at the same time. */
        if ((((uintptr_t)d ^ (uintptr_t)s) & (LIB_WORD - 1)) == 0) {
                while (n > 0 && !LIB_ALIGNED(d)) {
                        *d++ = *s++;
                        n--;
                }
                while (n >= LIB_WORD) {
                        *(lib_word *)d = *(const lib_word *)s;
                        d += LIB_WORD;
                        s += LIB_WORD;
                        n -= LIB_WORD;
                }
        }
        while (n > 0) {
                *d++ = *s++;
                n--;
        }
        return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
        unsigned char *d = dst;
        const unsigned char *s = src;

        /* Integer comparison: the pointers may point into different objects. */
        if ((uintptr_t)d <= (uintptr_t)s || (uintptr_t)d >= (uintptr_t)s + n) {
                /* Forward: safe when the destination starts before the source or does not overlap.
                 */
                while (n > 0) {
                        *d++ = *s++;
                        n--;
                }
        } else {
                /* The destination overlaps the source's tail: copy from the end. */
                while (n > 0) {
                        n--;
                        d[n] = s[n];
                }
        }
        return dst;
}

void *memset(void *dst, int c, size_t n)
{
        unsigned char *d = dst;
        unsigned char b = (unsigned char)c;
        lib_word w;

        while (n > 0 && !LIB_ALIGNED(d)) {
                *d++ = b;
                n--;
        }
        if (n >= LIB_WORD) {
                /* b in every byte: ~0 / 0xff is 0x0101...01 for any word size. */
                w = ((lib_word) ~(lib_word)0 / 0xff) * b;
                while (n >= LIB_WORD) {
                        *(lib_word *)d = w;
                        d += LIB_WORD;
                        n -= LIB_WORD;
                }
        }
        while (n > 0) {
                *d++ = b;
                n--;
        }
        return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
        const unsigned char *x = a, *y = b;

        for (size_t i = 0; i < n; i++) {
                if (x[i] != y[i])
                        return (int)x[i] - (int)y[i];
        }
        return 0;
}

size_t strlen(const char *s)
{
        size_t n = 0;

        while (s[n] != '\0')
                n++;
        return n;
}

size_t strnlen(const char *s, size_t maxlen)
{
        size_t n = 0;

        /* Never reads s[maxlen]: s need not be terminated within maxlen bytes. */
        while (n < maxlen && s[n] != '\0')
                n++;
        return n;
}

int strcmp(const char *a, const char *b)
{
        const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;

        while (*x != '\0' && *x == *y) {
                x++;
                y++;
        }
        return (int)*x - (int)*y;
}

int strncmp(const char *a, const char *b, size_t n)
{
        const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;

        for (size_t i = 0; i < n; i++) {
                if (x[i] != y[i])
                        return (int)x[i] - (int)y[i];
                if (x[i] == '\0')
                        break;
        }
        return 0;
}

char *strchr(const char *s, int c)
{
        char ch = (char)c;

        for (;; s++) {
                if (*s == ch)
                        return (char *)s;
                if (*s == '\0')
                        return NULL;
        }
}

char *strrchr(const char *s, int c)
{
        char ch = (char)c;
        const char *last = NULL;

        for (;; s++) {
                if (*s == ch)
                        last = s;
                if (*s == '\0')
                        return (char *)last;
        }
}
