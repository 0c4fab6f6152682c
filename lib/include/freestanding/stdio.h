/*
 * The <stdio.h> of the UEFI image: only bounded formatting (lib/newlib.c, lib/picolibc.c, over
 * the C library's integer-only printf core). There is no FILE, no printf and no floating point;
 * docs/lib.md lists the supported conversions.
 */
#ifndef KEEL_FREESTANDING_STDIO_H
#define KEEL_FREESTANDING_STDIO_H

#include <stdarg.h>
#include <stddef.h>

int snprintf(char *restrict buf, size_t size, const char *restrict fmt, ...)
    __attribute__((format(printf, 3, 4)));
int vsnprintf(char *restrict buf, size_t size, const char *restrict fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
