/*
 * A tiny unit-test harness for host tests. Each test file defines TEST(name) functions and
 * ends with TEST_MAIN(). The binary runs every test, prints one line per failure with
 * file:line, and closes with "N passed, M failed" (exit status 1 if any failed).
 */
#ifndef KEEL_TEST_H
#define KEEL_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct test_case {
        const char *name;
        void (*fn)(void);
};

#define TEST_MAX 512
extern struct test_case test_cases[TEST_MAX];
extern unsigned test_count;
extern int test_failed_current;

#define TEST(name)                                                                         \
        static void test_##name(void);                                                     \
        __attribute__((constructor)) static void test_register_##name(void)                \
        {                                                                                  \
                if (test_count < TEST_MAX)                                                 \
                        test_cases[test_count++] = (struct test_case){#name, test_##name}; \
        }                                                                                  \
        static void test_##name(void)

#define TEST_FAIL_AT(file, line, ...)                   \
        do {                                            \
                fprintf(stderr, "%s:%d: ", file, line); \
                fprintf(stderr, __VA_ARGS__);           \
                fprintf(stderr, "\n");                  \
                test_failed_current = 1;                \
        } while (0)

#define EXPECT_TRUE(c)                                                             \
        do {                                                                       \
                if (!(c))                                                          \
                        TEST_FAIL_AT(__FILE__, __LINE__, "expected true: %s", #c); \
        } while (0)

#define EXPECT_FALSE(c) EXPECT_TRUE(!(c))

#define EXPECT_EQ(a, b)                                                                           \
        do {                                                                                      \
                long long _a = (long long)(a), _b = (long long)(b);                               \
                if (_a != _b)                                                                     \
                        TEST_FAIL_AT(__FILE__, __LINE__,                                          \
                                     "%s == %s: %lld != %lld (0x%llx != 0x%llx)", #a, #b, _a, _b, \
                                     (unsigned long long)_a, (unsigned long long)_b);             \
        } while (0)

#define EXPECT_NE(a, b)                                                                      \
        do {                                                                                 \
                long long _a = (long long)(a), _b = (long long)(b);                          \
                if (_a == _b)                                                                \
                        TEST_FAIL_AT(__FILE__, __LINE__, "%s != %s: both %lld", #a, #b, _a); \
        } while (0)

#define EXPECT_STREQ(a, b)                                                                         \
        do {                                                                                       \
                const char *_a = (a), *_b = (b);                                                   \
                if (strcmp(_a, _b) != 0)                                                           \
                        TEST_FAIL_AT(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, _a, \
                                     _b);                                                          \
        } while (0)

#define EXPECT_CONTAINS(hay, needle)                                                           \
        do {                                                                                   \
                const char *_h = (hay), *_n = (needle);                                        \
                if (!strstr(_h, _n))                                                           \
                        TEST_FAIL_AT(__FILE__, __LINE__, "\"%s\" does not contain \"%s\"", _h, \
                                     _n);                                                      \
        } while (0)

/* Stops the current test if the condition fails (for preconditions). */
#define ASSERT_TRUE(c)                                                                \
        do {                                                                          \
                if (!(c)) {                                                           \
                        TEST_FAIL_AT(__FILE__, __LINE__, "assertion failed: %s", #c); \
                        return;                                                       \
                }                                                                     \
        } while (0)

#define TEST_MAIN()                                                               \
        struct test_case test_cases[TEST_MAX];                                    \
        unsigned test_count;                                                      \
        int test_failed_current;                                                  \
        int main(void)                                                            \
        {                                                                         \
                unsigned passed = 0, failed = 0;                                  \
                for (unsigned i = 0; i < test_count; i++) {                       \
                        test_failed_current = 0;                                  \
                        test_cases[i].fn();                                       \
                        if (test_failed_current) {                                \
                                fprintf(stderr, "FAIL %s\n", test_cases[i].name); \
                                failed++;                                         \
                        } else {                                                  \
                                passed++;                                         \
                        }                                                         \
                }                                                                 \
                printf("%u passed, %u failed\n", passed, failed);                 \
                return failed ? 1 : 0;                                            \
        }

#endif
