/*
 * The <string.h> of the UEFI image: the subset of ISO C string functions Keel's core uses,
 * implemented by the image's C library (picolibc on arm64, with lib/mem_words.c's memcpy and
 * memset; newlib on x86_64). Only the image build sees this header (host builds use glibc's);
 * docs/lib.md gives the exact semantics.
 */
#ifndef KEEL_FREESTANDING_STRING_H
#define KEEL_FREESTANDING_STRING_H

#include <stddef.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t maxlen);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
char *strrchr(const char *s, int c);

#endif
