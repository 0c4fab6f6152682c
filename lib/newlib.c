/*
 * The x86_64 image's snprintf / vsnprintf over newlib (tools/build-newlib, docs/lib.md):
 * newlib's integer-only, string-only printf core through _vsniprintf_r, with a struct _reent
 * of the caller's own on the stack, so that nothing global is touched (no _impure_ptr, and the
 * errno newlib may set lands in that struct and is dropped). Compiled against newlib's
 * headers, not the image's lib/include/freestanding.
 *
 * Also the three allocator entry points tools/build-newlib renames vfprintf.c's calls to:
 * newlib allocates only for asprintf's growing buffers (__SMBF), which _vsniprintf_r never
 * creates, so reaching one is a bug in Keel; and the locale of the ' flag, the "C" locale's.
 */
#include <locale.h>
#include <reent.h>
#include <stdarg.h>
#include <stdio.h>

#include <keel/check.h>

void *__keel_newlib_malloc_forbidden(struct _reent *r, size_t n);
void *__keel_newlib_realloc_forbidden(struct _reent *r, void *p, size_t n);
void __keel_newlib_free_forbidden(struct _reent *r, void *p);
struct lconv *__keel_newlib_localeconv(struct _reent *r);

int vsnprintf(char *restrict buf, size_t size, const char *restrict fmt, va_list ap)
{
        struct _reent r = {0};

        return _vsniprintf_r(&r, buf, size, fmt, ap);
}

int snprintf(char *restrict buf, size_t size, const char *restrict fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, size, fmt, ap);
        va_end(ap);
        return n;
}

void *__keel_newlib_malloc_forbidden(struct _reent *r, size_t n)
{
        (void)r;
        panic("newlib asked for %zu bytes: the image has no malloc (docs/lib.md)", n);
}

void *__keel_newlib_realloc_forbidden(struct _reent *r, void *p, size_t n)
{
        (void)r;
        (void)p;
        panic("newlib asked to grow a buffer to %zu bytes: the image has no malloc (docs/lib.md)",
              n);
}

void __keel_newlib_free_forbidden(struct _reent *r, void *p)
{
        (void)r;
        (void)p;
        panic("newlib freed memory: the image has no malloc (docs/lib.md)");
}

struct lconv *__keel_newlib_localeconv(struct _reent *r)
{
        static struct lconv c_locale = {.decimal_point = ".", .thousands_sep = "", .grouping = ""};

        (void)r;
        return &c_locale;
}
