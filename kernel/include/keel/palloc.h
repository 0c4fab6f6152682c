/*
 * The physical page allocator. It manages runs of 4 KiB pages inside the usable ranges it is
 * given (on the real machine: UEFI EfiConventionalMemory only, so runtime services, ACPI,
 * MMIO and Keel's own image are never handed out). Its bookkeeping lives inside the ranges
 * themselves (carved from their start), so it needs no other memory.
 *
 * Contract:
 *  - palloc_alloc returns zeroed pages, aligned to `align` (PAGE_SIZE or LARGE_PAGE_SIZE,
 *    any power of two >= PAGE_SIZE), or -KEEL_ENOMEM when no such run exists.
 *  - palloc_free scrubs (zeroes) the pages before they become free, so nothing leaks from
 *    one VM to the next. Freeing pages that are not allocated (double free, never allocated,
 *    outside the allocator, a run only partly allocated) is refused with -KEEL_EINVAL and
 *    changes nothing.
 *  - Safe on every CPU at once: one spinlock guards the bitmaps and counts. Zeroing (of dirty
 *    pages at allocation, the scrub at free) happens outside it, on pages that are marked
 *    allocated meanwhile, so a large free does not hold up another CPU's allocation.
 */
#ifndef KEEL_PALLOC_H
#define KEEL_PALLOC_H

#include <keel/addr.h>
#include <keel/spinlock.h>

#define PALLOC_MAX_RANGES 128

struct mem_range {
        hpa_t base;     /* page aligned */
        uint64_t pages; /* number of 4 KiB pages */
};

struct palloc_range {
        hpa_t base;       /* first page handed out (after the bitmap) */
        uint64_t pages;   /* pages available for allocation */
        uint64_t *bitmap; /* 1 bit per page, set = allocated; host-virtual */
        uint64_t free;    /* free pages in this range */
};

struct palloc {
        struct spinlock lock; /* guards everything below once palloc_init has returned */
        struct palloc_range ranges[PALLOC_MAX_RANGES];
        unsigned count;
        uint64_t total_pages;
        uint64_t free_pages;
};

/*
 * Takes the usable ranges (any order, may be unaligned: they are trimmed to whole pages;
 * overlapping ranges are an error, -KEEL_EINVAL). Ranges too small to hold their bitmap and
 * one page are ignored. Returns -KEEL_ENOMEM if nothing usable remains.
 */
int palloc_init(struct palloc *pa, const struct mem_range *ranges, unsigned count);
int palloc_alloc(struct palloc *pa, uint64_t pages, uint64_t align, hpa_t *out);
int palloc_free(struct palloc *pa, hpa_t base, uint64_t pages);
uint64_t palloc_free_pages(const struct palloc *pa);
/* Largest run of free pages with the given alignment (for "too little memory" messages). */
uint64_t palloc_largest_run(struct palloc *pa, uint64_t align);

/* The allocator Keel itself uses on the real machine. */
extern struct palloc keel_palloc;

#endif
