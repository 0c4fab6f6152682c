/*
 * Keel's own map of memory and its permissions (docs/memory.md, "Keel's own mappings: W^X").
 *
 * The arch builds Keel's identity map range by range with hostmap_map_range; inside a range,
 * every page gets the range's attributes unless a region of the hostmap covers it: then it
 * gets the region's attributes, or stays unmapped if the region is a guard (attrs 0). The
 * regions are Keel's image parts (text read+execute, rodata and relro read-only, data and bss
 * read+write), the guard pages below every CPU stack, and the few arch pages with their own
 * rule (x86: the AP trampoline page, read+execute). Nothing may be writable and executable:
 * hostmap_add and hostmap_map_range refuse PT_WRITE | PT_EXEC.
 *
 * Regions are only recorded, never removed; the table is written by the boot CPU before any
 * other CPU runs and read afterwards (fault reports name the region a faulting address is in).
 */
#ifndef KEEL_HOSTMAP_H
#define KEEL_HOSTMAP_H

#include <keel/addr.h>
#include <keel/pt.h>

#define HOSTMAP_MAX_REGIONS 64
#define HOSTMAP_GUARD       0u /* attrs of a guard region: never mapped */
#define HOSTMAP_NO_CPU      (-1)

struct hostmap_region {
        uint64_t base, size; /* page aligned, size > 0 */
        unsigned attrs;      /* PT_READ/PT_WRITE/PT_EXEC/PT_UNCACHED, or HOSTMAP_GUARD */
        const char *what;    /* static text: "Keel text", "guard page below the stack of" */
        int cpu;             /* the CPU a stack or guard belongs to, or HOSTMAP_NO_CPU */
};

struct hostmap {
        /* Sorted by base, never overlapping: `fixed`, or the room hostmap_grow gave it. */
        struct hostmap_region fixed[HOSTMAP_MAX_REGIONS];
        struct hostmap_region *grown;
        unsigned count, max; /* max 0: HOSTMAP_MAX_REGIONS in fixed */
};

static inline struct hostmap_region *hostmap_regions(const struct hostmap *m)
{
        return m->grown ? m->grown : (struct hostmap_region *)m->fixed;
}

/*
 * Move the table into `room` (`max` regions, more than it holds): a machine with many CPUs
 * records three guard pages per CPU. -KEEL_EINVAL if `max` is not above the count.
 */
int hostmap_grow(struct hostmap *m, struct hostmap_region *room, unsigned max);

/* Keel's own: filled by the arch while it builds its page tables. */
extern struct hostmap keel_hostmap;

/*
 * Record [base, base + size) with `attrs`. -KEEL_EINVAL: unaligned, empty or wrapping range,
 * unknown attribute bits, writable and executable, or a mapped region without PT_READ;
 * -KEEL_EEXIST: it overlaps a recorded region; -KEEL_ENOSPC: the table is full. Nothing is
 * recorded on error.
 */
int hostmap_add(struct hostmap *m, uint64_t base, uint64_t size, unsigned attrs, const char *what,
                int cpu);

/*
 * Identity-map [base, base + size) into `pt`: the pages of recorded regions with their
 * attributes (guards not at all), the rest with `attrs`. Pages of the range already mapped in
 * `pt` are an error (-KEEL_EEXIST) as in pt_map; so are W+X `attrs` (-KEEL_EINVAL). Regions
 * outside the range are left alone: the arch maps each range that holds one.
 */
int hostmap_map_range(const struct hostmap *m, struct pt *pt, uint64_t base, uint64_t size,
                      unsigned attrs);
/*
 * Identity-map device memory [base, base + size) (widened to whole pages) into `pt`:
 * read+write, uncached, never executable; pages already mapped uncached at their own address
 * are kept. 0, -KEEL_EINVAL for an empty or wrapping range, -KEEL_EEXIST if a page is mapped
 * otherwise (cacheable: RAM or firmware memory), or pt_map's error. The arch's
 * arch_map_device calls it on Keel's own table and then makes the entries visible.
 */
int hostmap_map_device(struct pt *pt, hpa_t base, uint64_t size);

/* The region holding `addr`, or NULL. */
const struct hostmap_region *hostmap_find(const struct hostmap *m, uint64_t addr);

/*
 * One phrase for a fault report: "in Keel text", "in the guard page below the stack of cpu 1",
 * or "outside Keel's own regions".
 */
void hostmap_describe(const struct hostmap *m, uint64_t addr, char *buf, size_t len);

#endif
