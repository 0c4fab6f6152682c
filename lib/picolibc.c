/*
 * The arm64 image's snprintf / vsnprintf over picolibc (Debian's picolibc-aarch64-linux-gnu,
 * docs/lib.md): picolibc's integer-only printf core, __i_vfprintf, writing into a FILE of
 * Keel's own on the stack. picolibc's own snprintf / vsnprintf are not used: they are
 * compiled with FP/SIMD (q registers save the variadic FP arguments and copy the FILE), and
 * at EL2 those registers still hold the guest's values (Keel saves them only on a vCPU
 * switch), so the image must never run them. Compiled against picolibc's headers, not the
 * image's lib/include/freestanding.
 */
#include <stdarg.h>
#include <stdio.h>

int __i_vfprintf(FILE *stream, const char *fmt, va_list ap);

/* A string output: `file` first, so put() gets back to the rest from its FILE pointer. */
struct keel_strout {
        FILE file;
        char *buf;
        size_t size;
        size_t len; /* bytes of the complete output so far */
};

static int strout_put(char c, FILE *f)
{
        struct keel_strout *o = (struct keel_strout *)f;

        if (o->len + 1 < o->size)
                o->buf[o->len] = c;
        o->len++;
        return (unsigned char)c;
}

int vsnprintf(char *restrict buf, size_t size, const char *restrict fmt, va_list ap)
{
        struct keel_strout o = {
            .file = FDEV_SETUP_STREAM(strout_put, NULL, NULL, _FDEV_SETUP_WRITE),
            .buf = buf,
            .size = size,
        };
        int n = __i_vfprintf(&o.file, fmt, ap);

        if (size > 0)
                buf[o.len < size ? o.len : size - 1] = '\0';
        return n;
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
