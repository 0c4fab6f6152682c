/*
 * What the image gives newlib and lib/newlib.c, for the host tests: the stack protector's
 * global canary (newlib is built with -mstack-protector-guard=global, glibc's x86_64 canary is
 * in TLS) and panic (lib/newlib.c's allocator traps), which fails the test.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <keel/check.h>

uintptr_t __stack_chk_guard = 0x595e9fbd94fda766ull;

void panic(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        fprintf(stderr, "panic: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
        abort();
}
