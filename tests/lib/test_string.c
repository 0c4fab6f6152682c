/*
 * Differential tests of the image's string functions (newlib, and lib/mem_words.c's memcpy /
 * memset; linked as klib_*, tests/lib/CMakeLists.txt) against glibc: exhaustive small
 * cases, every alignment, overlap in both directions, size 0, NUL bytes inside buffers and
 * bytes with the high bit set. Comparisons are checked by sign only, as ISO C specifies.
 */
#include <stdbool.h>

#include "test.h"

#define KEEL_KLIB_DECLARE_ONLY
#include <keel/klib_prefix.h>

static int sign(int v)
{
        return (v > 0) - (v < 0);
}

/* Deterministic bytes: xorshift64* with a fixed seed. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 0x2545f4914f6cdd1dull;
}

static void fill_random(unsigned char *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                p[i] = (unsigned char)rng();
}

#define BUF 160

TEST(memcpy_all_alignments_and_sizes)
{
        unsigned char src[BUF], a[BUF], b[BUF];

        for (size_t so = 0; so < 16; so++) {
                for (size_t dof = 0; dof < 16; dof++) {
                        for (size_t n = 0; n <= 100; n++) {
                                fill_random(src, BUF);
                                fill_random(a, BUF);
                                memcpy(b, a, BUF);
                                EXPECT_TRUE(klib_memcpy(a + dof, src + so, n) == a + dof);
                                memcpy(b + dof, src + so, n);
                                if (memcmp(a, b, BUF) != 0) {
                                        TEST_FAIL_AT(__FILE__, __LINE__,
                                                     "memcpy so=%zu do=%zu n=%zu", so, dof, n);
                                        return;
                                }
                        }
                }
        }
}

TEST(memcpy_size_zero_touches_nothing)
{
        unsigned char a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};

        EXPECT_TRUE(klib_memcpy(a, b, 0) == a);
        EXPECT_EQ(a[0], 1);
        EXPECT_TRUE(klib_memcpy(NULL, NULL, 0) == NULL);
        EXPECT_TRUE(klib_memmove(NULL, NULL, 0) == NULL);
        EXPECT_TRUE(klib_memset(NULL, 0, 0) == NULL);
        EXPECT_EQ(klib_memcmp(NULL, NULL, 0), 0);
        EXPECT_EQ(klib_strncmp(NULL, NULL, 0), 0);
        EXPECT_EQ(klib_strnlen(NULL, 0), 0);
}

TEST(memmove_every_overlap)
{
        unsigned char a[BUF], b[BUF];

        /* Every source / destination offset pair within a small window, every length: covers
         * dst < src, dst == src, dst > src, overlapping and disjoint. */
        for (size_t so = 0; so < 40; so++) {
                for (size_t dof = 0; dof < 40; dof++) {
                        for (size_t n = 0; n <= 60; n++) {
                                fill_random(a, BUF);
                                memcpy(b, a, BUF);
                                EXPECT_TRUE(klib_memmove(a + dof, a + so, n) == a + dof);
                                memmove(b + dof, b + so, n);
                                if (memcmp(a, b, BUF) != 0) {
                                        TEST_FAIL_AT(__FILE__, __LINE__,
                                                     "memmove so=%zu do=%zu n=%zu", so, dof, n);
                                        return;
                                }
                        }
                }
        }
}

TEST(memmove_between_objects)
{
        unsigned char x[64], y[64], z[64];

        fill_random(x, sizeof(x));
        fill_random(y, sizeof(y));
        memcpy(z, y, sizeof(z));
        klib_memmove(y + 3, x + 5, 50);
        memmove(z + 3, x + 5, 50);
        EXPECT_EQ(memcmp(y, z, sizeof(y)), 0);
}

TEST(memset_all_alignments_values_and_sizes)
{
        static const int values[] = {0, 1, 0x7f, 0x80, 0xff, -1, -128, 0x100, 0x1ab, 0x12345678};
        unsigned char a[BUF], b[BUF];

        for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
                for (size_t off = 0; off < 16; off++) {
                        for (size_t n = 0; n <= 100; n++) {
                                fill_random(a, BUF);
                                memcpy(b, a, BUF);
                                EXPECT_TRUE(klib_memset(a + off, values[v], n) == a + off);
                                memset(b + off, values[v], n);
                                if (memcmp(a, b, BUF) != 0) {
                                        TEST_FAIL_AT(__FILE__, __LINE__,
                                                     "memset v=%d off=%zu n=%zu", values[v], off,
                                                     n);
                                        return;
                                }
                        }
                }
        }
}

/* The interesting byte values for comparisons: NUL, low, around the sign bit, high. */
static const unsigned char cmp_bytes[] = {0x00, 0x01, 'a', 0x7f, 0x80, 0xff};
#define NCMP (sizeof(cmp_bytes) / sizeof(cmp_bytes[0]))

/* Fills p with the base-NCMP digits of k; n bytes. */
static void bytes_from_index(unsigned char *p, size_t n, size_t k)
{
        for (size_t i = 0; i < n; i++) {
                p[i] = cmp_bytes[k % NCMP];
                k /= NCMP;
        }
}

TEST(memcmp_exhaustive_small)
{
        unsigned char a[4], b[4];

        for (size_t n = 0; n <= 3; n++) {
                size_t count = 1;

                for (size_t i = 0; i < n; i++)
                        count *= NCMP;
                for (size_t i = 0; i < count; i++) {
                        for (size_t j = 0; j < count; j++) {
                                bytes_from_index(a, n, i);
                                bytes_from_index(b, n, j);
                                for (size_t m = 0; m <= n; m++) {
                                        if (sign(klib_memcmp(a, b, m)) != sign(memcmp(a, b, m))) {
                                                TEST_FAIL_AT(__FILE__, __LINE__,
                                                             "memcmp n=%zu i=%zu j=%zu m=%zu", n, i,
                                                             j, m);
                                                return;
                                        }
                                }
                        }
                }
        }
}

TEST(memcmp_difference_at_every_position)
{
        unsigned char a[BUF], b[BUF];

        for (size_t off = 0; off < 8; off++) {
                for (size_t pos = 0; pos < 80; pos++) {
                        for (size_t k = 0; k < NCMP; k++) {
                                fill_random(a, BUF);
                                memcpy(b, a, BUF);
                                b[off + pos] = cmp_bytes[k];
                                for (size_t n = pos; n <= pos + 2; n++) {
                                        EXPECT_EQ(sign(klib_memcmp(a + off, b + off, n)),
                                                  sign(memcmp(a + off, b + off, n)));
                                        EXPECT_EQ(sign(klib_memcmp(b + off, a + off, n)),
                                                  sign(memcmp(b + off, a + off, n)));
                                }
                        }
                }
        }
        /* The sign is that of the unsigned byte difference: 0x80 > 0x7f, 0xff > 0x01. */
        EXPECT_TRUE(klib_memcmp("\x80", "\x7f", 1) > 0);
        EXPECT_TRUE(klib_memcmp("\x01", "\xff", 1) < 0);
        /* Bytes after a NUL still count for memcmp. */
        EXPECT_TRUE(klib_memcmp("a\0b", "a\0c", 3) < 0);
}

TEST(strlen_strnlen)
{
        char s[BUF];

        for (size_t off = 0; off < 16; off++) {
                for (size_t len = 0; len < 100; len++) {
                        for (size_t i = 0; i < len; i++)
                                s[off + i] =
                                    (char)(1 + rng() % 255); /* any non-NUL, high bit too */
                        s[off + len] = '\0';
                        s[off + len + 1] = 'x';
                        EXPECT_EQ(klib_strlen(s + off), strlen(s + off));
                        for (size_t max = 0; max <= len + 2; max++)
                                EXPECT_EQ(klib_strnlen(s + off, max), strnlen(s + off, max));
                        EXPECT_EQ(klib_strnlen(s + off, SIZE_MAX), len);
                }
        }
}

TEST(strnlen_never_reads_past_maxlen)
{
        /* Exactly-sized heap arrays without a terminator: ASan flags any read past them. */
        for (size_t n = 1; n <= 40; n++) {
                char *p = malloc(n);

                ASSERT_TRUE(p != NULL);
                memset(p, 'z', n);
                EXPECT_EQ(klib_strnlen(p, n), n);
                p[n - 1] = '\0';
                EXPECT_EQ(klib_strnlen(p, n), n - 1);
                EXPECT_EQ(klib_strlen(p), n - 1);
                free(p);
        }
}

/* All strings over cmp_bytes minus NUL of length 0..3, for the string comparisons. */
#define NSTR (1 + 5 + 25 + 125)

static void string_from_index(char *s, size_t k)
{
        size_t len = k == 0 ? 0 : k < 6 ? 1 : k < 31 ? 2 : 3;

        k -= len == 0 ? 0 : len == 1 ? 1 : len == 2 ? 6 : 31;
        for (size_t i = 0; i < len; i++) {
                s[i] = (char)cmp_bytes[1 + k % (NCMP - 1)];
                k /= NCMP - 1;
        }
        s[len] = '\0';
        /* Garbage after the terminator, which must never matter. */
        s[len + 1] = (char)0x80;
        s[len + 2] = 'q';
}

TEST(strcmp_strncmp_exhaustive_small)
{
        char a[8], b[8];

        for (size_t i = 0; i < NSTR; i++) {
                string_from_index(a, i);
                for (size_t j = 0; j < NSTR; j++) {
                        string_from_index(b, j);
                        if (sign(klib_strcmp(a, b)) != sign(strcmp(a, b))) {
                                TEST_FAIL_AT(__FILE__, __LINE__, "strcmp i=%zu j=%zu", i, j);
                                return;
                        }
                        for (size_t n = 0; n <= 5; n++) {
                                if (sign(klib_strncmp(a, b, n)) != sign(strncmp(a, b, n))) {
                                        TEST_FAIL_AT(__FILE__, __LINE__,
                                                     "strncmp i=%zu j=%zu n=%zu", i, j, n);
                                        return;
                                }
                        }
                        EXPECT_EQ(sign(klib_strncmp(a, b, SIZE_MAX)), sign(strcmp(a, b)));
                }
        }
}

TEST(strcmp_edge_cases)
{
        EXPECT_EQ(klib_strcmp("", ""), 0);
        EXPECT_TRUE(klib_strcmp("", "a") < 0);
        EXPECT_TRUE(klib_strcmp("a", "") > 0);
        EXPECT_TRUE(klib_strcmp("abc", "abd") < 0);
        EXPECT_TRUE(klib_strcmp("ab", "abc") < 0);
        EXPECT_TRUE(klib_strcmp("\xff", "\x01") > 0); /* unsigned char order */
        EXPECT_TRUE(klib_strcmp("\x80", "\x7f") > 0);
        /* strncmp stops at a NUL common to both, whatever follows it. */
        EXPECT_EQ(klib_strncmp("ab\0x", "ab\0y", 4), 0);
        EXPECT_TRUE(klib_strncmp("abcx", "abcy", 4) < 0);
        EXPECT_EQ(klib_strncmp("abcx", "abcy", 3), 0);
        /* strncmp reads no further than n: compare exactly-sized unterminated heap arrays. */
        char *x = malloc(3), *y = malloc(3);

        ASSERT_TRUE(x && y);
        memcpy(x, "abc", 3);
        memcpy(y, "abc", 3);
        EXPECT_EQ(klib_strncmp(x, y, 3), 0);
        y[2] = (char)0xc3;
        EXPECT_TRUE(klib_strncmp(x, y, 3) < 0);
        free(x);
        free(y);
}

/*
 * newlib 3.3's strrchr tests `c` for zero as an int but searches for (char)c: with c = 0x100 or
 * -256 it finds the terminator, steps past it and reads on beyond the string. Keel calls
 * neither strchr nor strrchr; docs/lib.md tells callers never to pass such a `c`.
 */
static bool strrchr_safe(int c)
{
        return c == 0 || (char)c != 0;
}

TEST(strchr_strrchr_every_char)
{
        /* Repeats, high-bit bytes, and a character that appears only after the terminator. */
        static const char text[] = "ab\x80z\xff"
                                   "ab\x80\x01~\xff\0q";
        const char *s = text;

        for (int c = -300; c <= 600; c++) {
                if (klib_strchr(s, c) != strchr(s, c)) {
                        TEST_FAIL_AT(__FILE__, __LINE__, "strchr c=%d", c);
                        return;
                }
                if (strrchr_safe(c) && klib_strrchr(s, c) != strrchr(s, c)) {
                        TEST_FAIL_AT(__FILE__, __LINE__, "strrchr c=%d", c);
                        return;
                }
                for (size_t off = 0; off <= strlen(s); off++) {
                        EXPECT_TRUE(klib_strchr(s + off, c) == strchr(s + off, c));
                        if (strrchr_safe(c))
                                EXPECT_TRUE(klib_strrchr(s + off, c) == strrchr(s + off, c));
                }
        }
        /* Searching for NUL finds the terminator; 'q' after it is not found. */
        EXPECT_TRUE(klib_strchr(s, '\0') == s + strlen(s));
        EXPECT_TRUE(klib_strrchr(s, '\0') == s + strlen(s));
        EXPECT_TRUE(klib_strchr(s, 'q') == NULL);
        EXPECT_TRUE(klib_strrchr(s, 0) == s + strlen(s));
        EXPECT_TRUE(klib_strchr("", 'a') == NULL);
        EXPECT_TRUE(klib_strrchr("", 'a') == NULL);
}

TEST(strchr_random_strings)
{
        char s[64];

        for (int iter = 0; iter < 500; iter++) {
                size_t len = rng() % 60;

                for (size_t i = 0; i < len; i++)
                        s[i] = (char)(1 + rng() % 5 * 51); /* few distinct values: many repeats */
                s[len] = '\0';
                for (int c = -256; c < 512; c++) {
                        EXPECT_TRUE(klib_strchr(s, c) == strchr(s, c));
                        if (strrchr_safe(c))
                                EXPECT_TRUE(klib_strrchr(s, c) == strrchr(s, c));
                }
        }
}

TEST_MAIN()
