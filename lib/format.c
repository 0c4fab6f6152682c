/*
 * Bounded formatting for the UEFI image: snprintf / vsnprintf with the subset of C99
 * conversions Keel uses, byte-for-byte like glibc for everything supported (docs/lib.md):
 *
 *   conversions  d i u x X o c s p %
 *   flags        - 0 space + #
 *   width        digits or *, precision .digits or .* (a negative * precision means none)
 *   length       hh h l ll z j t (on d i u x X o only)
 *
 * There is no floating point (the image is built without SSE). A conversion that is not
 * supported -- %f %e %g %a %n %lc %ls ..., or a directive cut short by the end of the format --
 * is copied to the output literally and consumes no argument (a '*' already read stays read).
 *
 * The return value is the length of the complete output (C99), or -1 if that would exceed
 * INT_MAX or a width / precision does not fit an int (as glibc, which sets EOVERFLOW). The
 * output is truncated to size - 1 bytes and always NUL-terminated when size > 0; size 0 writes
 * nothing and buf may then be NULL. Padding is counted, not generated, past the end of buf,
 * so huge widths cost no time.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* From the compiler, not <limits.h>: the image's include path has only GCC's own headers. */
#define FMT_INT_MAX  __INT_MAX__
#define FMT_INT_MIN  (-__INT_MAX__ - 1)
#define FMT_CHAR_BIT __CHAR_BIT__

_Static_assert(sizeof(uintmax_t) <= sizeof(unsigned long long), "uintmax_t wider than ll");
_Static_assert(sizeof(ptrdiff_t) == sizeof(size_t), "%zd / %tu need same-sized types");

/* The output sink: writes what fits in buf[0 .. size-2], counts everything. */
struct fmt_out {
        char *buf;
        size_t size;
        size_t len;    /* length of the complete output so far, <= INT_MAX */
        bool overflow; /* the complete output would exceed INT_MAX */
};

static bool fmt_reserve(struct fmt_out *o, size_t n)
{
        if (o->overflow || n > (size_t)FMT_INT_MAX - o->len) {
                o->overflow = true;
                return false;
        }
        return true;
}

/* Room left in buf before the byte reserved for the terminating NUL. */
static size_t fmt_room(const struct fmt_out *o)
{
        return o->size > 0 && o->len < o->size - 1 ? o->size - 1 - o->len : 0;
}

static void fmt_put(struct fmt_out *o, const char *s, size_t n)
{
        size_t room;

        if (!fmt_reserve(o, n))
                return;
        room = fmt_room(o);
        for (size_t i = 0; i < n && i < room; i++)
                o->buf[o->len + i] = s[i];
        o->len += n;
}

static void fmt_fill(struct fmt_out *o, char c, size_t n)
{
        size_t room;

        if (!fmt_reserve(o, n))
                return;
        room = fmt_room(o);
        for (size_t i = 0; i < n && i < room; i++)
                o->buf[o->len + i] = c;
        o->len += n;
}

enum {
        F_LEFT = 1 << 0,  /* '-' */
        F_ZERO = 1 << 1,  /* '0' */
        F_SPACE = 1 << 2, /* ' ' */
        F_PLUS = 1 << 3,  /* '+' */
        F_ALT = 1 << 4,   /* '#' */
};

enum fmt_len { L_NONE, L_HH, L_H, L_L, L_LL, L_Z, L_J, L_T };

struct fmt_spec {
        unsigned flags;
        size_t width;
        bool has_prec;
        size_t prec;
        enum fmt_len len;
};

/* Pads s (n bytes) with spaces to the field width, on the left unless '-'. */
static void fmt_field(struct fmt_out *o, const struct fmt_spec *sp, const char *s, size_t n)
{
        size_t pad = sp->width > n ? sp->width - n : 0;

        if (!(sp->flags & F_LEFT))
                fmt_fill(o, ' ', pad);
        fmt_put(o, s, n);
        if (sp->flags & F_LEFT)
                fmt_fill(o, ' ', pad);
}

/*
 * An integer: [spaces] [sign or 0x] [zeros] [digits] [spaces]. 'sign' is the sign / prefix
 * text already chosen by the caller; zeros come from the precision, from '#' on octal and,
 * when there is no precision and no '-', from the '0' flag filling the width.
 */
static void fmt_number(struct fmt_out *o, const struct fmt_spec *sp, unsigned long long mag,
                       unsigned base, bool upper, const char *prefix)
{
        const char *digit = upper ? "0123456789ABCDEF" : "0123456789abcdef";
        char tmp[sizeof(unsigned long long) * FMT_CHAR_BIT / 3 + 1];
        size_t nd = 0, zeros, plen = strlen(prefix), body, pad;

        while (mag != 0) {
                tmp[sizeof(tmp) - 1 - nd] = digit[mag % base];
                mag /= base;
                nd++;
        }
        /* Default precision 1: zero prints "0"; precision 0 with value 0 prints no digit. */
        zeros = sp->has_prec ? sp->prec : 1;
        zeros = zeros > nd ? zeros - nd : 0;
        /* '#' on octal: the first digit must be a 0 (digits never start with one here). */
        if ((sp->flags & F_ALT) && base == 8 && zeros == 0)
                zeros = 1;
        body = plen + zeros + nd;
        pad = sp->width > body ? sp->width - body : 0;

        if (!(sp->flags & F_LEFT) && (!(sp->flags & F_ZERO) || sp->has_prec))
                fmt_fill(o, ' ', pad);
        fmt_put(o, prefix, plen);
        if (!(sp->flags & F_LEFT) && (sp->flags & F_ZERO) && !sp->has_prec)
                fmt_fill(o, '0', pad);
        fmt_fill(o, '0', zeros);
        fmt_put(o, tmp + sizeof(tmp) - nd, nd);
        if (sp->flags & F_LEFT)
                fmt_fill(o, ' ', pad);
}

static const char *fmt_sign(const struct fmt_spec *sp, bool negative)
{
        if (negative)
                return "-";
        if (sp->flags & F_PLUS)
                return "+";
        if (sp->flags & F_SPACE)
                return " ";
        return "";
}

static long long fmt_arg_signed(enum fmt_len len, va_list *ap)
{
        switch (len) {
        case L_HH:
                return (signed char)va_arg(*ap, int);
        case L_H:
                return (short)va_arg(*ap, int);
        case L_L:
                return va_arg(*ap, long);
        case L_LL:
                return va_arg(*ap, long long);
        case L_Z: /* the signed type of size_t's width */
        case L_T:
                return va_arg(*ap, ptrdiff_t);
        case L_J:
                return va_arg(*ap, intmax_t);
        case L_NONE:
        default:
                return va_arg(*ap, int);
        }
}

static unsigned long long fmt_arg_unsigned(enum fmt_len len, va_list *ap)
{
        switch (len) {
        case L_HH:
                return (unsigned char)va_arg(*ap, unsigned int);
        case L_H:
                return (unsigned short)va_arg(*ap, unsigned int);
        case L_L:
                return va_arg(*ap, unsigned long);
        case L_LL:
                return va_arg(*ap, unsigned long long);
        case L_Z: /* the unsigned type of ptrdiff_t's width */
        case L_T:
                return va_arg(*ap, size_t);
        case L_J:
                return va_arg(*ap, uintmax_t);
        case L_NONE:
        default:
                return va_arg(*ap, unsigned int);
        }
}

/* Reads a decimal field; false if it does not fit an int. */
static bool fmt_parse_int(const char **pp, size_t *out)
{
        const char *p = *pp;
        unsigned long long v = 0;
        bool ok = true;

        while (*p >= '0' && *p <= '9') {
                if (ok) {
                        v = v * 10 + (size_t)(*p - '0');
                        if (v > FMT_INT_MAX)
                                ok = false;
                }
                p++;
        }
        *pp = p;
        *out = (size_t)v;
        return ok;
}

/*
 * Formats one directive; *pp points just after its '%' and is advanced past it (up to and
 * including its conversion character, or to the end of an incomplete directive). Returns false
 * if the directive is not supported: the caller then copies it literally.
 */
static bool fmt_directive(struct fmt_out *o, const char **pp, va_list *ap)
{
        const char *p = *pp;
        struct fmt_spec sp = {0};
        unsigned long long mag;
        long long sval;
        const char *s;
        char c;
        int star;

        for (;; p++) {
                if (*p == '-')
                        sp.flags |= F_LEFT;
                else if (*p == '0')
                        sp.flags |= F_ZERO;
                else if (*p == ' ')
                        sp.flags |= F_SPACE;
                else if (*p == '+')
                        sp.flags |= F_PLUS;
                else if (*p == '#')
                        sp.flags |= F_ALT;
                else
                        break;
        }

        if (*p == '*') {
                p++;
                star = va_arg(*ap, int);
                if (star < 0) {
                        sp.flags |= F_LEFT;
                        if (star == FMT_INT_MIN)
                                o->overflow = true; /* -INT_MIN does not fit an int */
                        else
                                sp.width = (size_t)-star;
                } else {
                        sp.width = (size_t)star;
                }
        } else if (!fmt_parse_int(&p, &sp.width)) {
                o->overflow = true;
        }

        if (*p == '.') {
                p++;
                sp.has_prec = true;
                if (*p == '*') {
                        p++;
                        star = va_arg(*ap, int);
                        if (star < 0)
                                sp.has_prec = false; /* as if omitted */
                        else
                                sp.prec = (size_t)star;
                } else if (!fmt_parse_int(&p, &sp.prec)) {
                        o->overflow = true;
                }
        }

        if (*p == 'h') {
                p++;
                sp.len = L_H;
                if (*p == 'h') {
                        p++;
                        sp.len = L_HH;
                }
        } else if (*p == 'l') {
                p++;
                sp.len = L_L;
                if (*p == 'l') {
                        p++;
                        sp.len = L_LL;
                }
        } else if (*p == 'z') {
                p++;
                sp.len = L_Z;
        } else if (*p == 'j') {
                p++;
                sp.len = L_J;
        } else if (*p == 't') {
                p++;
                sp.len = L_T;
        }

        c = *p;
        if (c == '\0') {
                *pp = p; /* cut short by the end of the format */
                return false;
        }
        p++;
        *pp = p;
        if (o->overflow)
                return true; /* a width or precision too large for an int: the result is -1 */

        switch (c) {
        case 'd':
        case 'i':
                sval = fmt_arg_signed(sp.len, ap);
                mag = sval < 0 ? -(unsigned long long)sval : (unsigned long long)sval;
                fmt_number(o, &sp, mag, 10, false, fmt_sign(&sp, sval < 0));
                return true;
        case 'u':
                fmt_number(o, &sp, fmt_arg_unsigned(sp.len, ap), 10, false, "");
                return true;
        case 'o':
                fmt_number(o, &sp, fmt_arg_unsigned(sp.len, ap), 8, false, "");
                return true;
        case 'x':
        case 'X':
                mag = fmt_arg_unsigned(sp.len, ap);
                /* '#' prefixes 0x / 0X to non-zero values only. */
                fmt_number(o, &sp, mag, 16, c == 'X',
                           (sp.flags & F_ALT) && mag != 0 ? (c == 'X' ? "0X" : "0x") : "");
                return true;
        case '%':
                /* glibc ignores any flags, width or precision given to %%. */
                fmt_put(o, "%", 1);
                return true;
        default:
                break;
        }

        if (sp.len != L_NONE)
                return false; /* %lc, %ls, %hp ...: not supported */

        switch (c) {
        case 'c': {
                char ch = (char)(unsigned char)va_arg(*ap, int);

                /* Padded with spaces even with '0', like glibc; precision is ignored. */
                fmt_field(o, &sp, &ch, 1);
                return true;
        }
        case 's':
                s = va_arg(*ap, const char *);
                if (s == NULL) {
                        /* glibc prints "(null)", or nothing if the precision would cut it. */
                        s = !sp.has_prec || sp.prec >= 6 ? "(null)" : "";
                }
                /* With a precision, never read past it: the array need not be terminated. */
                fmt_field(o, &sp, s, sp.has_prec ? strnlen(s, sp.prec) : strlen(s));
                return true;
        case 'p': {
                void *ptr = va_arg(*ap, void *);

                if (ptr == NULL) {
                        /* glibc: "(nil)", space-padded to the width; precision ignored. */
                        fmt_field(o, &sp, "(nil)", 5);
                        return true;
                }
                /* glibc: like %#lx, but '+' and ' ' apply and "0x" is always there. */
                sp.flags &= ~(unsigned)F_ALT;
                fmt_number(o, &sp, (uintptr_t)ptr, 16, false,
                           (sp.flags & F_PLUS)    ? "+0x"
                           : (sp.flags & F_SPACE) ? " 0x"
                                                  : "0x");
                return true;
        }
        default:
                return false;
        }
}

int vsnprintf(char *restrict buf, size_t size, const char *restrict fmt, va_list ap)
{
        struct fmt_out o = {.buf = buf, .size = size};
        const char *p = fmt, *start;
        va_list args;

        /* A copy, so that helpers can take its address (va_list may be an array type). */
        va_copy(args, ap);
        while (*p != '\0' && !o.overflow) {
                if (*p != '%') {
                        start = p;
                        while (*p != '\0' && *p != '%')
                                p++;
                        fmt_put(&o, start, (size_t)(p - start));
                        continue;
                }
                start = p++;
                /* Unsupported or incomplete: copied literally, '%' to the character parsing stopped
                 * at. */
                if (!fmt_directive(&o, &p, &args))
                        fmt_put(&o, start, (size_t)(p - start));
        }
        va_end(args);

        if (size > 0)
                buf[o.len < size - 1 ? o.len : size - 1] = '\0';
        return o.overflow ? -1 : (int)o.len;
}

int snprintf(char *restrict buf, size_t size, const char *restrict fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vsnprintf(buf, size, fmt, ap);
        va_end(ap);
        return r;
}
