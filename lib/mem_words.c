/*
 * memcpy and memset for the arm64 image, which otherwise takes its string functions from
 * picolibc (docs/lib.md). Debian's picolibc-aarch64-linux-gnu has two builds: the default
 * one copies and fills a byte at a time (a page scrub costs 20,490 instructions under -icount
 * against 2,586 here, a 4 KiB guest-memory copy 24,653 against 3,678: docs/benchmarks.md),
 * and release/ uses Arm's optimized routines, which run on the SIMD registers -- at EL2 the
 * guest's, which Keel saves only when it switches vCPUs. So the two functions Keel runs on
 * every page it scrubs and every guest-memory copy stay here: aligned machine words in the
 * middle, general-purpose registers only. They come before libc.a on the link line, so the
 * archive's memcpy / memset members are never pulled in.
 *
 * Must be compiled with -fno-builtin and -fno-tree-loop-distribute-patterns: GCC could
 * otherwise turn the byte loops below into calls to memcpy / memset, i.e. into infinite
 * self-recursion. tests/lib checks that the image-style object contains no call at all.
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
