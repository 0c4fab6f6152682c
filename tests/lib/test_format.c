/*
 * Differential tests of the x86_64 image's snprintf / vsnprintf (lib/newlib.c over newlib, as
 * klib_snprintf / klib_vsnprintf) against glibc.
 *
 * Every comparison runs both implementations on the same format and arguments at many buffer
 * sizes (every size from 0 to len + 2 for most cases), and requires the same return value and
 * the same bytes in the buffer including the terminator position, with a guard zone after the
 * buffer that neither may touch. Three sources of formats:
 *   - hand-written cases (valid ones are checked by -Wformat through check_fmt's attribute;
 *     deliberately odd ones go through check_odd, which has no format attribute);
 *   - an exhaustive sweep of one directive: every flag set x widths x precisions (digits and
 *     '*') x length modifiers x conversions x interesting values;
 *   - a deterministic pseudo-random sweep (fixed seed) of multi-directive formats built from
 *     the supported grammar. Each format draws all its arguments from one type class, so that
 *     every argument is read with its exact type.
 * Where newlib differs from glibc (only in formats Keel does not write, docs/lib.md), the sweeps
 * leave the combination out and newlib_differs_from_glibc pins newlib's behaviour.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "test.h"

#define KEEL_KLIB_DECLARE_ONLY
#include <keel/klib_prefix.h>

_Static_assert(_Generic((ptrdiff_t)0, ssize_t : 1, default : 0), "%zd reads ptrdiff_t here");
_Static_assert(_Generic((size_t)0, unsigned long : 1, default : 0), "size_t is unsigned long");

#define GUARD    16
#define REF_MAX  8192
#define GUARD_CH ((char)0xa5)

static unsigned long checks_done;

/*
 * Compares klib_vsnprintf with glibc's vsnprintf on fmt / ap. all_sizes: every size from 0 to
 * len + 2, else a sample. Returns false (after reporting) on the first difference.
 */
static bool check_va(const char *file, int line, bool all_sizes, const char *fmt, va_list ap)
{
        static char ref[REF_MAX], got[REF_MAX + GUARD], exp[REF_MAX + GUARD];
        size_t sizes[8], nsizes = 0, len;
        va_list c;
        int r;

        va_copy(c, ap);
        r = vsnprintf(ref, sizeof(ref), fmt, c);
        va_end(c);
        if (r < 0 || (size_t)r >= sizeof(ref) - 4) {
                TEST_FAIL_AT(file, line, "reference output too long or failed for \"%s\"", fmt);
                return false;
        }
        len = (size_t)r;
        if (!all_sizes) {
                sizes[nsizes++] = 0;
                sizes[nsizes++] = 1;
                sizes[nsizes++] = len / 2;
                sizes[nsizes++] = len;
                sizes[nsizes++] = len + 1;
                sizes[nsizes++] = len + 2;
                sizes[nsizes++] = REF_MAX;
        }
        for (size_t i = 0; all_sizes ? i <= len + 2 : i < nsizes; i++) {
                size_t n = all_sizes ? i : sizes[i];
                int rg, rk;

                memset(exp, GUARD_CH, n + GUARD);
                memset(got, GUARD_CH, n + GUARD);
                va_copy(c, ap);
                rg = vsnprintf(exp, n, fmt, c);
                va_end(c);
                va_copy(c, ap);
                rk = klib_vsnprintf(got, n, fmt, c);
                va_end(c);
                checks_done++;
                if (rk != rg || memcmp(got, exp, n + GUARD) != 0) {
                        size_t show = n < len + 1 ? n : len + 1;

                        TEST_FAIL_AT(
                            file, line,
                            "format \"%s\" size %zu: klib returned %d \"%.*s\", glibc %d \"%.*s\"",
                            fmt, n, rk, (int)show, got, rg, (int)show, exp);
                        return false;
                }
        }
        /* size 0 with a NULL buffer: only the length. */
        va_copy(c, ap);
        r = klib_vsnprintf(NULL, 0, fmt, c);
        va_end(c);
        if (r != (int)len) {
                TEST_FAIL_AT(file, line, "format \"%s\" with NULL, 0: %d != %zu", fmt, r, len);
                return false;
        }
        return true;
}

static bool check_at(const char *file, int line, bool all_sizes, const char *fmt, ...)
{
        va_list ap;
        bool ok;

        va_start(ap, fmt);
        ok = check_va(file, line, all_sizes, fmt, ap);
        va_end(ap);
        return ok;
}

/* For well-formed formats: -Wformat checks them. */
static bool check_fmt_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool check_fmt_at(const char *file, int line, const char *fmt, ...)
{
        va_list ap;
        bool ok;

        va_start(ap, fmt);
        ok = check_va(file, line, true, fmt, ap);
        va_end(ap);
        return ok;
}

#define CHECK_FMT(...) check_fmt_at(__FILE__, __LINE__, __VA_ARGS__)
/* Deliberately odd formats (flags ISO leaves undefined, NULL %s, ...) that glibc defines. */
#define CHECK_ODD(...) check_at(__FILE__, __LINE__, true, __VA_ARGS__)

/* klib only: fixed expectation (formats glibc handles differently or cannot be asked). */
static void expect_klib_at(const char *file, int line, int want_ret, const char *want,
                           const char *fmt, ...)
{
        char buf[256];
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = klib_vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (r != want_ret || strcmp(buf, want) != 0)
                TEST_FAIL_AT(file, line, "format \"%s\": got %d \"%s\", want %d \"%s\"", fmt, r,
                             buf, want_ret, want);
}

#define EXPECT_KLIB(ret, want, ...) expect_klib_at(__FILE__, __LINE__, ret, want, __VA_ARGS__)

/* Deterministic randomness: xorshift64* with a fixed seed. */
static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rng(void)
{
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 0x2545f4914f6cdd1dull;
}

static unsigned rnd(unsigned n)
{
        return (unsigned)(rng() % n);
}

/* 64 bits with an interesting shape: edges of every width, small numbers, random widths. */
static uint64_t interesting_bits(void)
{
        static const uint64_t edges[] = {
            0,
            1,
            7,
            8,
            9,
            10,
            15,
            16,
            0x7f,
            0x80,
            0xff,
            0x100,
            0x7fff,
            0x8000,
            0xffff,
            0x10000,
            0x7fffffff,
            0x80000000,
            0xffffffff,
            0x100000000ull,
            0x7fffffffffffffffull,
            0x8000000000000000ull,
            UINT64_MAX,
            UINT64_MAX - 1,
        };

        switch (rnd(4)) {
        case 0:
                return edges[rnd(sizeof(edges) / sizeof(edges[0]))];
        case 1:
                return 0 - edges[rnd(sizeof(edges) / sizeof(edges[0]))];
        case 2:
                return rng() >> rnd(64);
        default:
                return rng();
        }
}

TEST(plain_text_and_percent)
{
        CHECK_ODD(""); /* valid, but -Wformat-zero-length would object */
        CHECK_FMT("hello, world");
        CHECK_FMT("%%");
        CHECK_FMT("100%% sure %%%%");
        CHECK_FMT("\x80\xff\xc3\xa9 high bytes");
}

TEST(integers)
{
        CHECK_FMT("%d %d %d %d %d", 0, 1, -1, INT_MAX, INT_MIN);
        CHECK_FMT("%i|%5i|%-5i|%05i|%+i|% i|%+05i|% 05i", 42, 42, 42, -42, 42, 42, -42, 42);
        CHECK_FMT("%u %u %u", 0u, 1u, UINT_MAX);
        CHECK_FMT("%x %X %#x %#X %#x %#010x %#-10x|", 0xbeefu, 0xbeefu, 0xbeefu, 0xbeefu, 0u, 255u,
                  255u);
        CHECK_FMT("%o %#o %#o %#.0o %#.5o %#5o %#05o", 8u, 8u, 0u, 0u, 8u, 8u, 8u);
        CHECK_FMT("%.0d|%.0u|%.0x|%#.0x|%#.0o|%5.0d|%-5.0d|%+.0d|% .0d", 0, 0u, 0u, 0u, 0u, 0, 0, 0,
                  0);
        CHECK_ODD("%.5d|%.5d|%8.5d|%-8.5d|%08.5d|%+.3d|%.3x", 42, -42, 42, -42, 42, 7, 0xau);
        CHECK_FMT("%hhd %hhd %hhu %hhx %hd %hd %hu %hx", 300, -129, 511, 0x1ff, 70000, -32769,
                  70000, 0x1ffff);
        CHECK_FMT("%ld %ld %lu %lx", LONG_MAX, LONG_MIN, ULONG_MAX, ULONG_MAX);
        CHECK_FMT("%lld %lld %llu %llx %llo %#llo", LLONG_MAX, LLONG_MIN, ULLONG_MAX, ULLONG_MAX,
                  ULLONG_MAX, ULLONG_MAX);
        CHECK_FMT("%zu %zx %zd %zd", SIZE_MAX, (size_t)0x1234, (ssize_t)-5, (ssize_t)PTRDIFF_MAX);
        CHECK_FMT("%td %td %tu %tx", PTRDIFF_MIN, (ptrdiff_t)-1, (size_t)7, (size_t)SIZE_MAX);
        CHECK_FMT("%jd %jd %ju %jx", INTMAX_MIN, INTMAX_MAX, UINTMAX_MAX, (uintmax_t)0xabc);
        CHECK_ODD("%-+ #0d|%0-5d|%-05d|% +d|%+ d", 1, 2, 3, 4, 5);
        CHECK_FMT("%60d|%-60x|%.60o|%060i", 1, 2u, 3u, -4);
        CHECK_FMT("%" PRIu64 " %" PRIx64 " %" PRId32, UINT64_MAX, (uint64_t)1 << 63, INT32_MIN);
}

TEST(stars)
{
        CHECK_FMT("%*d|%-*d|%*d|%0*d", 5, 1, 5, 2, -5, 3, 5, -4);
        CHECK_FMT("%.*d|%.*d|%.*d|%*.*x", 3, 1, 0, 0, -1, 0, 8, 4, 0xabu);
        CHECK_FMT("%*s|%-*s|%.*s|%*.*s", 6, "ab", 6, "ab", 1, "ab", -6, 1, "ab");
        CHECK_FMT("%*c|%-*c|%*c", 3, 'x', 3, 'y', -3, 'z');
        CHECK_FMT("%0*d", -6, 42); /* a negative '*' width is '-' with the absolute width */
        CHECK_FMT("%*d", 0, 7);
}

TEST(chars_and_strings)
{
        CHECK_FMT("%c%c%c|%3c|%-3c|", 'a', 0x80, 0x1ff, 'b', 'c');
        CHECK_FMT("[%c]", 0); /* a NUL in the output counts and is copied */
        CHECK_FMT("%c", 0x100 + 'q');
        CHECK_FMT("%s|%10s|%-10s|%.2s|%10.2s|%-10.2s|%.0s|%.10s", "abc", "abc", "abc", "abc", "abc",
                  "abc", "abc", "abc");
        CHECK_FMT("%s%s%s", "", "\x80\xff", "");
        CHECK_ODD("%s|%10s|%-10s|%.6s|%.7s", NULL, NULL, NULL, NULL, NULL);
        CHECK_ODD("%-05s|%#s|%+s|% s|%#c|%+c|%.3c", "ab", "a", "b", "c", 'd', 'e', 'f');
}

TEST(string_precision_reads_no_further)
{
        /* Exactly-sized heap arrays without a NUL: ASan flags any read beyond the precision. */
        for (int n = 1; n <= 20; n++) {
                char *p = malloc((size_t)n);

                ASSERT_TRUE(p != NULL);
                for (int i = 0; i < n; i++)
                        p[i] = (char)('a' + i);
                CHECK_FMT("%.*s|", n, p);
                CHECK_FMT("%-30.*s|", n, p);
                CHECK_FMT("%.*s|", n - 1, p);
                free(p);
        }
}

TEST(pointers)
{
        int x;

        CHECK_FMT("%p|%20p|%-20p|", (void *)&x, (void *)&x, (void *)&x);
        CHECK_FMT("%p %p %p", (void *)1, (void *)0xdeadbeef, (void *)UINTPTR_MAX);
        CHECK_ODD("%#p|%020p|%.10p|%-20.10p", (void *)0x1234, (void *)0x1234, (void *)0x1234,
                  (void *)0x1234);
}

TEST(mixed)
{
        CHECK_FMT("vm %s: gpa %#llx size %zu exit %d (%c) at %p%%", "guest0", 0x7fff0000ull,
                  (size_t)4096, -22, 'E', (void *)0x1000);
        CHECK_FMT("%*.*s=%-*lld|%#*lx|%0*zu", 10, 3, "register", 25, LLONG_MIN, -20, 0xfeedul, 12,
                  (size_t)99);
        CHECK_FMT("%hhx%hx%x%lx%llx%zx%jx%tx", 0xffu, 0xffffu, 0xffffffffu, ULONG_MAX, ULLONG_MAX,
                  SIZE_MAX, UINTMAX_MAX, (size_t)1);
}

TEST(truncation_and_termination)
{
        char buf[8];

        memset(buf, 'x', sizeof(buf));
        EXPECT_EQ(klib_snprintf(buf, 4, "%s", "abcdef"), 6);
        EXPECT_STREQ(buf, "abc");
        EXPECT_EQ(buf[4], 'x');
        memset(buf, 'x', sizeof(buf));
        EXPECT_EQ(klib_snprintf(buf, 1, "%d", 12345), 5);
        EXPECT_EQ(buf[0], '\0');
        EXPECT_EQ(buf[1], 'x');
        memset(buf, 'x', sizeof(buf));
        EXPECT_EQ(klib_snprintf(buf, 0, "%d", 12345), 5);
        EXPECT_EQ(buf[0], 'x');
        EXPECT_EQ(klib_snprintf(NULL, 0, "%s-%d", "abc", -1), 6);
        EXPECT_EQ(klib_snprintf(buf, sizeof(buf), "%s", ""), 0);
        EXPECT_STREQ(buf, "");
}

/*
 * Where newlib (the x86_64 image's library) differs from glibc: only in formats Keel never
 * writes (docs/lib.md lists them). Checked here so that the list stays true.
 */
TEST(newlib_differs_from_glibc)
{
        /* A width applies to %%; '0' pads %s and %c with zeros. */
        EXPECT_KLIB(17, "    %|%    |0000%", "%5%|%-5%|%05%");
        EXPECT_KLIB(11, "000ab|0000x", "%05s|%05c", "ab", 'x');
        /* A NULL %s is "(null)" cut to the precision (glibc prints nothing below 6). */
        EXPECT_KLIB(9, "(nul|  (|", "%.4s|%3.1s|%.0s", (char *)NULL, (char *)NULL, (char *)NULL);
        /* A NULL %p is 0x0 (glibc: (nil)); '+' and ' ' do not apply to %p. */
        EXPECT_KLIB(15, "0x0|       0x0|", "%p|%10p|", NULL, NULL);
        EXPECT_KLIB(13, "0x1234|0x1234", "%+p|% p", (void *)0x1234, (void *)0x1234);
        /* An unknown or floating-point conversion prints its letter alone and takes no argument;
         * a directive cut short by the end of the format prints nothing. */
        EXPECT_KLIB(7, "af b 42", "a%f b %d", 42);
        EXPECT_KLIB(13, "y|    y|y  |Y", "%y|%5y|%-3.2y|%#Y");
        EXPECT_KLIB(1, "a", "a%-5l");
}

/*
 * Exhaustive single directives: every flag subset, widths and precisions written as digits or
 * as '*' (including negative '*' values), every length modifier, every conversion, a few
 * values. The '*' arguments are ints and the value has its exact type.
 */
static const char *const width_forms[] = {"", "1", "2", "5", "13", "*", "*", "*"};
static const int width_stars[] = {0, 0, 0, 0, 0, 7, -7, 0};
static const char *const prec_forms[] = {"", ".", ".0", ".1", ".3", ".17", ".*", ".*", ".*"};
static const int prec_stars[] = {0, 0, 0, 0, 0, 0, 4, -1, 0};
#define NW (sizeof(width_forms) / sizeof(width_forms[0]))
#define NP (sizeof(prec_forms) / sizeof(prec_forms[0]))

#define CHECK_DIRECTIVE(fmt, ws, ps, T, v)                                                  \
        do {                                                                                \
                bool sw_ = strchr(width_forms[ws], '*'), sp_ = strchr(prec_forms[ps], '*'); \
                int w_ = width_stars[ws], p_ = prec_stars[ps];                              \
                bool ok_;                                                                   \
                if (sw_ && sp_)                                                             \
                        ok_ = check_at(__FILE__, __LINE__, false, fmt, w_, p_, (T)(v));     \
                else if (sw_)                                                               \
                        ok_ = check_at(__FILE__, __LINE__, false, fmt, w_, (T)(v));         \
                else if (sp_)                                                               \
                        ok_ = check_at(__FILE__, __LINE__, false, fmt, p_, (T)(v));         \
                else                                                                        \
                        ok_ = check_at(__FILE__, __LINE__, false, fmt, (T)(v));             \
                if (!ok_)                                                                   \
                        return;                                                             \
        } while (0)

/* Bits of directive_fmt's flags, in the order of its flag_chars. */
#define FLAG_ZERO  (1u << 1)
#define FLAG_SPACE (1u << 2)
#define FLAG_PLUS  (1u << 3)

static void directive_fmt(char *out, unsigned flags, size_t ws, size_t ps, const char *mod,
                          char conv)
{
        static const char flag_chars[] = "-0 +#";
        char *p = out;

        *p++ = '<';
        *p++ = '%';
        for (unsigned i = 0; i < 5; i++) {
                if (flags & (1u << i))
                        *p++ = flag_chars[i];
        }
        p += sprintf(p, "%s%s%s%c>", width_forms[ws], prec_forms[ps], mod, conv);
}

TEST(exhaustive_integer_directives)
{
        static const char *const mods[] = {"", "hh", "h", "l", "ll", "z", "j", "t"};
        static const char convs[] = "diuxXo";
        char fmt[64];

        for (unsigned flags = 0; flags < 32; flags++) {
                for (size_t ws = 0; ws < NW; ws++) {
                        for (size_t ps = 0; ps < NP; ps++) {
                                for (size_t m = 0; m < sizeof(mods) / sizeof(mods[0]); m++) {
                                        for (size_t c = 0; c < sizeof(convs) - 1; c++) {
                                                bool sgn = convs[c] == 'd' || convs[c] == 'i';
                                                uint64_t v = interesting_bits();

                                                directive_fmt(fmt, flags, ws, ps, mods[m],
                                                              convs[c]);
                                                if (v % 3 == 0)
                                                        v = 0; /* zero is special everywhere */
                                                switch (m) {
                                                case 0:
                                                case 1:
                                                case 2: /* promoted to int */
                                                        if (sgn)
                                                                CHECK_DIRECTIVE(fmt, ws, ps, int,
                                                                                v);
                                                        else
                                                                CHECK_DIRECTIVE(fmt, ws, ps,
                                                                                unsigned, v);
                                                        break;
                                                case 3:
                                                        if (sgn)
                                                                CHECK_DIRECTIVE(fmt, ws, ps, long,
                                                                                v);
                                                        else
                                                                CHECK_DIRECTIVE(fmt, ws, ps,
                                                                                unsigned long, v);
                                                        break;
                                                case 4:
                                                        if (sgn)
                                                                CHECK_DIRECTIVE(fmt, ws, ps,
                                                                                long long, v);
                                                        else
                                                                CHECK_DIRECTIVE(fmt, ws, ps,
                                                                                unsigned long long,
                                                                                v);
                                                        break;
                                                case 6:
                                                        if (sgn)
                                                                CHECK_DIRECTIVE(fmt, ws, ps,
                                                                                intmax_t, v);
                                                        else
                                                                CHECK_DIRECTIVE(fmt, ws, ps,
                                                                                uintmax_t, v);
                                                        break;
                                                default: /* z, t */
                                                        if (sgn)
                                                                CHECK_DIRECTIVE(fmt, ws, ps,
                                                                                ptrdiff_t, v);
                                                        else
                                                                CHECK_DIRECTIVE(fmt, ws, ps, size_t,
                                                                                v);
                                                        break;
                                                }
                                        }
                                }
                        }
                }
        }
}

TEST(exhaustive_char_string_pointer_directives)
{
        static const char *const strs[] = {"",  "a", "hello", "\x80\xff\x01", "a long-ish string!",
                                           NULL};
        static const uintptr_t ptrs[] = {0, 1, 0x1000, 0xdeadbeef, UINTPTR_MAX};
        char fmt[64];

        /* Not compared (newlib differs, test newlib_differs_from_glibc): '0' on %c / %s, a NULL
         * %s with a precision below 6, a NULL %p, '+' and ' ' on %p. */
        for (unsigned flags = 0; flags < 32; flags++) {
                for (size_t ws = 0; ws < NW; ws++) {
                        for (size_t ps = 0; ps < NP; ps++) {
                                bool short_prec = (ps >= 1 && ps <= 4) || ps == 6 || ps == 8;

                                directive_fmt(fmt, flags, ws, ps, "", 'p');
                                for (size_t p = 1; !(flags & (FLAG_SPACE | FLAG_PLUS)) &&
                                                   p < sizeof(ptrs) / sizeof(ptrs[0]);
                                     p++)
                                        CHECK_DIRECTIVE(fmt, ws, ps, void *, ptrs[p]);
                                if (flags & FLAG_ZERO)
                                        continue;
                                directive_fmt(fmt, flags, ws, ps, "", 'c');
                                CHECK_DIRECTIVE(fmt, ws, ps, int, rnd(3) ? 'A' + rnd(60) : rng());
                                directive_fmt(fmt, flags, ws, ps, "", 's');
                                for (size_t s = 0; s < sizeof(strs) / sizeof(strs[0]); s++) {
                                        if (!strs[s] && short_prec)
                                                continue;
                                        CHECK_DIRECTIVE(fmt, ws, ps, const char *, strs[s]);
                                }
                        }
                }
        }
}

/*
 * Random multi-directive formats. A class fixes the argument type of every directive of a
 * format, so each call passes NARGS arguments of that one type (extra ones are ignored).
 */
enum arg_kind {
        K_INT,
        K_UINT,
        K_LONG,
        K_ULONG,
        K_LLONG,
        K_ULLONG,
        K_SSIZE,
        K_SIZE,
        K_INTMAX,
        K_UINTMAX,
        K_STR,
        K_PTR,
        K_COUNT
};

struct arg_class {
        const char *convs;
        const char *mods[3];
        bool stars; /* '*' arguments are ints: only in the int class */
};

static const struct arg_class classes[K_COUNT] = {
    [K_INT] = {"dic", {"", "hh", "h"}, true},
    [K_UINT] = {"uxXo", {"", "hh", "h"}, false},
    [K_LONG] = {"di", {"l"}, false},
    [K_ULONG] = {"uxXo", {"l"}, false},
    [K_LLONG] = {"di", {"ll"}, false},
    [K_ULLONG] = {"uxXo", {"ll"}, false},
    [K_SSIZE] = {"di", {"z", "t"}, false},
    [K_SIZE] = {"uxXo", {"z", "t"}, false},
    [K_INTMAX] = {"di", {"j"}, false},
    [K_UINTMAX] = {"uxXo", {"j"}, false},
    [K_STR] = {"s", {""}, false},
    [K_PTR] = {"p", {""}, false},
};

#define NARGS 16

/* What each argument of a generated format is: a '*' value or a conversion's value. */
enum arg_role { R_WIDTH, R_PREC, R_VALUE };

static const char *const texts[] = {"",   "",         "x",        "abc ", " ",    "[",
                                    "]=", "\xc3\xa9", "\x80\xff", "%%",   "%%%%", "0x"};

static size_t gen_format(char *fmt, const struct arg_class *cl, enum arg_role *roles)
{
        size_t nroles = 0, ndir = 1 + rnd(5), nmods = 0;
        char *p = fmt;

        while (nmods < 3 && cl->mods[nmods])
                nmods++;
        p += sprintf(p, "%s", texts[rnd(sizeof(texts) / sizeof(texts[0]))]);
        for (size_t d = 0; d < ndir; d++) {
                const char *conv = cl->convs;
                char cv = conv[rnd((unsigned)strlen(conv))];

                *p++ = '%';
                for (unsigned f = rnd(5); f > 0; f--) {
                        char fl = "-0 +#"[rnd(5)];

                        /* Where newlib differs from glibc (newlib_differs_from_glibc). */
                        if ((fl == '0' && (cv == 'c' || cv == 's')) ||
                            ((fl == '+' || fl == ' ') && cv == 'p'))
                                continue;
                        *p++ = fl;
                }
                switch (rnd(5)) {
                case 0:
                case 1:
                        break;
                case 2:
                case 3:
                        p += sprintf(p, "%u", 1 + rnd(25));
                        break;
                default:
                        if (cl->stars) {
                                *p++ = '*';
                                roles[nroles++] = R_WIDTH;
                        } else {
                                p += sprintf(p, "%u", rnd(3));
                        }
                }
                switch (rnd(8)) {
                case 0:
                case 1:
                case 2:
                case 3:
                        break;
                case 4:
                        *p++ = '.';
                        break;
                case 5:
                case 6:
                        p += sprintf(p, ".%u", rnd(25));
                        break;
                default:
                        if (cl->stars) {
                                p += sprintf(p, ".*");
                                roles[nroles++] = R_PREC;
                        } else {
                                p += sprintf(p, ".%u", rnd(3));
                        }
                }
                /* %c takes no length modifier in the int class. */
                p += sprintf(p, "%s%c", cv == 'c' ? "" : cl->mods[rnd((unsigned)nmods)], cv);
                roles[nroles++] = R_VALUE;
                p += sprintf(p, "%s", texts[rnd(sizeof(texts) / sizeof(texts[0]))]);
        }
        *p = '\0';
        return nroles;
}

static const char *random_string(void)
{
        static const char *const pool[] = {"",
                                           "a",
                                           "ab",
                                           "hello world",
                                           "\x80\xff",
                                           "\t\n",
                                           "0123456789abcdefghijklmnopqrstuvwxyz"};
        return pool[rnd(sizeof(pool) / sizeof(pool[0]))];
}

/* A value for one argument of the given role, as 64 bits (cast to the class type). */
static uint64_t random_arg(enum arg_role role)
{
        if (role == R_WIDTH)
                return (uint64_t)(int64_t)((int)rnd(61) - 30);
        if (role == R_PREC)
                return (uint64_t)(int64_t)((int)rnd(36) - 5);
        return interesting_bits();
}

#define CALL_ALL(T, conv_expr)                                                                   \
        do {                                                                                     \
                T a_[NARGS];                                                                     \
                for (size_t i_ = 0; i_ < NARGS; i_++) {                                          \
                        uint64_t bits = random_arg(i_ < nroles ? roles[i_] : R_VALUE);           \
                        (void)bits;                                                              \
                        a_[i_] = conv_expr;                                                      \
                }                                                                                \
                ok = check_at(__FILE__, __LINE__, all, fmt, a_[0], a_[1], a_[2], a_[3], a_[4],   \
                              a_[5], a_[6], a_[7], a_[8], a_[9], a_[10], a_[11], a_[12], a_[13], \
                              a_[14], a_[15]);                                                   \
        } while (0)

TEST(random_formats)
{
        enum arg_role roles[NARGS];
        char fmt[256];
        bool ok = true;

        for (int iter = 0; iter < 3000 && ok; iter++) {
                for (int k = 0; k < K_COUNT && ok; k++) {
                        size_t nroles = gen_format(fmt, &classes[k], roles);
                        bool all = iter % 8 == 0; /* every size for one format in eight */

                        ASSERT_TRUE(nroles <= NARGS);
                        switch ((enum arg_kind)k) {
                        case K_INT:
                                CALL_ALL(int, (int)bits);
                                break;
                        case K_UINT:
                                CALL_ALL(unsigned, (unsigned)bits);
                                break;
                        case K_LONG:
                                CALL_ALL(long, (long)bits);
                                break;
                        case K_ULONG:
                                CALL_ALL(unsigned long, (unsigned long)bits);
                                break;
                        case K_LLONG:
                                CALL_ALL(long long, (long long)bits);
                                break;
                        case K_ULLONG:
                                CALL_ALL(unsigned long long, (unsigned long long)bits);
                                break;
                        case K_SSIZE:
                                CALL_ALL(ptrdiff_t, (ptrdiff_t)bits);
                                break;
                        case K_SIZE:
                                CALL_ALL(size_t, (size_t)bits);
                                break;
                        case K_INTMAX:
                                CALL_ALL(intmax_t, (intmax_t)bits);
                                break;
                        case K_UINTMAX:
                                CALL_ALL(uintmax_t, (uintmax_t)bits);
                                break;
                        case K_STR:
                                CALL_ALL(const char *, random_string());
                                break;
                        case K_PTR:
                                CALL_ALL(void *, (void *)(uintptr_t)(bits ? bits : 1));
                                break;
                        case K_COUNT:
                                break;
                        }
                }
        }
        EXPECT_TRUE(checks_done > 100000); /* the sweeps really ran */
        printf("%lu buffer comparisons\n", checks_done);
}

TEST_MAIN()
