/*
 * Guest-physical memory: the only way Keel touches a guest's memory. A VM's RAM is a list of
 * regions, each a guest-physical range backed by one contiguous host-physical run; regions
 * that follow each other without a gap are one run of guest RAM (a VM's RAM may come from
 * several host runs: vmm/build.c). Every access names a guest-physical range that must be
 * all RAM: a range that reaches a gap, wraps around 2^64 or lies (partly) outside guest RAM
 * is -KEEL_EFAULT and nothing is copied. gmem_translate and gmem_peek, which hand out one
 * host address, need the range inside ONE region. A gpa_t is never turned into a pointer
 * anywhere else.
 */
#ifndef VMM_GMEM_H
#define VMM_GMEM_H

#include <keel/addr.h>

#define GMEM_MAX_REGIONS 8

struct gmem_region {
        gpa_t base;
        uint64_t size;
        hpa_t backing;
};

/* A guest-physical range (no backing): where a VM's RAM goes (arch_guest_ram_layout). */
struct gmem_range {
        uint64_t base, size;
};

struct gmem {
        struct gmem_region regions[GMEM_MAX_REGIONS];
        unsigned count;
};

void gmem_init(struct gmem *m);
/* Overlap with an existing region, zero size, unaligned (4 KiB) or overflowing: -KEEL_EINVAL. */
int gmem_add_region(struct gmem *m, gpa_t base, uint64_t size, hpa_t backing);
/* True if every byte of [a, a+len) is guest RAM (len 0 counts as inside if a is). */
bool gmem_contains(const struct gmem *m, gpa_t a, uint64_t len);
/* Host-physical address of [a, a+len), which must lie inside one region. */
int gmem_translate(const struct gmem *m, gpa_t a, uint64_t len, hpa_t *out);
int gmem_read(const struct gmem *m, gpa_t src, void *dst, uint64_t len);
/*
 * Read-only host view of [a, a+len) for hot paths that look at a few guest bytes in place
 * (guest page-table entries, intercepted instruction bytes): one region must hold the whole
 * range (no wrap-around), else NULL; callers look inside one page, and region edges are
 * page-aligned. Valid while the VM's RAM is; never kept. Inline: it runs several times per exit.
 */
static inline __attribute__((always_inline)) const void *gmem_peek(const struct gmem *m, gpa_t a,
                                                                   uint64_t len)
{
        const struct gmem_region *r = m->regions, *end = m->regions + m->count;

        for (; r < end; r++) {
                uint64_t off = gpa_raw(a) - gpa_raw(r->base); /* wraps to huge below the base */

                if (off < r->size)
                        return len <= r->size - off
                                   ? hva_ptr(arch_hpa_to_hva(hpa_add(r->backing, off)))
                                   : NULL;
        }
        return NULL;
}
int gmem_write(const struct gmem *m, gpa_t dst, const void *src, uint64_t len);
int gmem_fill(const struct gmem *m, gpa_t dst, int byte, uint64_t len);
/* Sum of region sizes. */
uint64_t gmem_total(const struct gmem *m);
/*
 * The lowest run of guest RAM starting at or above `from`: [*base, *base + *size), all the
 * regions that follow each other from there without a gap. False if no region starts there.
 * Firmware tables and memory maps walk a VM's RAM with it.
 */
bool gmem_next_run(const struct gmem *m, uint64_t from, uint64_t *base, uint64_t *size);

#endif
