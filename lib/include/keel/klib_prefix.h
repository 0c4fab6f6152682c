/*
 * Host-test renaming of the image's C library (docs/lib.md). The differential tests link it next
 * to glibc: newlib's archive gets its names renamed by objcopy, and lib/newlib.c and
 * lib/mem_words.c are compiled for the host with "-include keel/klib_prefix.h": every public
 * name below becomes klib_<name>, and tests compare klib_<name> against glibc's <name>.
 *
 * The klib_* prototypes are always declared. A test defines KEEL_KLIB_DECLARE_ONLY before
 * including this header to get the prototypes without the renaming macros (so that its own
 * calls to memcpy, snprintf, ... still reach glibc). The image never includes this header.
 */
#ifndef KEEL_KLIB_PREFIX_H
#define KEEL_KLIB_PREFIX_H

#include <stdarg.h>
#include <stddef.h>

void *klib_memcpy(void *restrict dst, const void *restrict src, size_t n);
void *klib_memmove(void *dst, const void *src, size_t n);
void *klib_memset(void *dst, int c, size_t n);
int klib_memcmp(const void *a, const void *b, size_t n);
size_t klib_strlen(const char *s);
size_t klib_strnlen(const char *s, size_t maxlen);
int klib_strcmp(const char *a, const char *b);
int klib_strncmp(const char *a, const char *b, size_t n);
char *klib_strchr(const char *s, int c);
char *klib_strrchr(const char *s, int c);
int klib_snprintf(char *restrict buf, size_t size, const char *restrict fmt, ...)
    __attribute__((format(printf, 3, 4)));
int klib_vsnprintf(char *restrict buf, size_t size, const char *restrict fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#ifndef KEEL_KLIB_DECLARE_ONLY
#define memcpy    klib_memcpy
#define memmove   klib_memmove
#define memset    klib_memset
#define memcmp    klib_memcmp
#define strlen    klib_strlen
#define strnlen   klib_strnlen
#define strcmp    klib_strcmp
#define strncmp   klib_strncmp
#define strchr    klib_strchr
#define strrchr   klib_strrchr
#define snprintf  klib_snprintf
#define vsnprintf klib_vsnprintf
#endif

#endif
