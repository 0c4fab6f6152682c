/*
 * Invariants of Keel itself. CHECK is always on (Hafnium): a failed CHECK is a bug in Keel,
 * never something a guest or the user can cause, and it panics with file:line. Errors a
 * guest or a user can cause are returned as -KEEL_E* codes and reported, never CHECKed.
 */
#ifndef KEEL_CHECK_H
#define KEEL_CHECK_H

#include <stdnoreturn.h>

noreturn void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A failed CHECK in the release image: panic("CHECK failed at FILE:LINE"), one call per CHECK
 * of two arguments rather than panic's three and its variadic set-up. */
noreturn void check_failed(const char *file, int line) __attribute__((cold));

/*
 * The release image (keel.efi) names the file and line only: the condition's text of every
 * CHECK took 3.3 KB of its rodata. The test build (keel-debug.efi, KEEL_DEBUG_HYPERCALLS) and
 * the host builds (unit tests, fuzzers) print the condition too.
 */
#if defined(KEEL_HOST) || defined(KEEL_DEBUG_HYPERCALLS)
#define CHECK(cond)                                                                    \
        do {                                                                           \
                if (!(cond))                                                           \
                        panic("CHECK failed at %s:%d: %s", __FILE__, __LINE__, #cond); \
        } while (0)
#else
#define CHECK(cond)                                       \
        do {                                              \
                if (!(cond))                              \
                        check_failed(__FILE__, __LINE__); \
        } while (0)
#endif

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
