/*
 * Address types. Keel never mixes the three address spaces it deals with:
 *   hpa_t  host-physical   (what the MMU of the real machine sees)
 *   gpa_t  guest-physical  (what a VM believes is physical; only vmm/gmem.c turns it into
 *                           something the host can touch, after a bounds check)
 *   hva_t  host-virtual    (a pointer Keel may dereference)
 * Each is a single-member struct so that using one where another is expected, or a guest
 * address as a pointer, is a compile error.
 */
#ifndef KEEL_ADDR_H
#define KEEL_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
        uint64_t pa;
} hpa_t;

typedef struct {
        uint64_t ga;
} gpa_t;

typedef struct {
        uintptr_t va;
} hva_t;

#define PAGE_SHIFT      12
#define PAGE_SIZE       (1ull << PAGE_SHIFT)
#define LARGE_PAGE_SIZE (1ull << 21) /* 2 MiB */

static inline hpa_t hpa(uint64_t pa)
{
        return (hpa_t){pa};
}

static inline gpa_t gpa(uint64_t ga)
{
        return (gpa_t){ga};
}

static inline hva_t hva(uintptr_t va)
{
        return (hva_t){va};
}

static inline uint64_t hpa_raw(hpa_t a)
{
        return a.pa;
}

static inline uint64_t gpa_raw(gpa_t a)
{
        return a.ga;
}

static inline void *hva_ptr(hva_t a)
{
        return (void *)a.va;
}

static inline hva_t hva_from_ptr(const void *p)
{
        return (hva_t){(uintptr_t)p};
}

static inline hpa_t hpa_add(hpa_t a, uint64_t off)
{
        return (hpa_t){a.pa + off};
}

static inline gpa_t gpa_add(gpa_t a, uint64_t off)
{
        return (gpa_t){a.ga + off};
}

static inline bool is_aligned(uint64_t v, uint64_t align)
{
        return (v & (align - 1)) == 0;
}

static inline uint64_t align_up(uint64_t v, uint64_t align)
{
        return (v + align - 1) & ~(align - 1);
}

static inline uint64_t align_down(uint64_t v, uint64_t align)
{
        return v & ~(align - 1);
}

/*
 * Host-physical to host-virtual and back: arch_hpa_to_hva / arch_hva_to_hpa, inline in the
 * arch's same-named header.
 */
#include <arch/mm.h>

#endif
