/*
 * One generic 4-level page-table builder for every translation Keel manages: its own host
 * page tables, AMD nested page tables (NPT), and later Intel EPT and arm64 stage-2. The
 * entry format is supplied by the arch through a struct pt_format (Hafnium's arch PTE hooks);
 * this file only knows the radix-tree shape (512 entries per 4 KiB table, 9 bits a level).
 *
 * Level numbering: 0 maps 4 KiB, 1 maps 2 MiB, 2 maps 1 GiB, 3 is the root (PML4).
 *
 * Updates are prepare/commit (Hafnium): pt_map first allocates every table the new range
 * needs without changing any live entry; only when that succeeded are the leaf entries
 * written. So a failed pt_map (out of memory, overlap) leaves the visible mapping unchanged.
 */
#ifndef KEEL_PT_H
#define KEEL_PT_H

#include <keel/addr.h>
#include <keel/palloc.h>

typedef uint64_t pte_t;

#define PT_LEVELS  4
#define PT_ENTRIES 512

/* Generic attributes; the format turns them into its bits. */
#define PT_READ     (1u << 0)
#define PT_WRITE    (1u << 1)
#define PT_EXEC     (1u << 2)
#define PT_USER     (1u << 3) /* NPT needs U=1 on every level: guest accesses count as user */
#define PT_UNCACHED (1u << 4)
#define PT_RWX      (PT_READ | PT_WRITE | PT_EXEC)

struct pt_format {
        const char *name;
        /* Entry pointing at a next-level table. */
        pte_t (*table)(hpa_t next);
        /* Leaf entry mapping `pa` at `level` (0, 1 or 2) with generic attributes. */
        pte_t (*leaf)(hpa_t pa, unsigned level, unsigned attrs);
        bool (*present)(pte_t e);
        /* True if `e` (present, at `level` >= 1) is a leaf rather than a table pointer. */
        bool (*is_leaf)(pte_t e, unsigned level);
        /* Physical address held by `e` (table or leaf at `level`). */
        hpa_t (*addr)(pte_t e, unsigned level);
        /* Generic attributes of a leaf. */
        unsigned (*attrs)(pte_t e, unsigned level);
        /* Highest level that may hold a leaf (1 = 2 MiB pages, 2 = 1 GiB pages). */
        unsigned max_leaf_level;
};

struct pt {
        const struct pt_format *fmt;
        struct palloc *pa;
        hpa_t root;
        uint64_t table_pages; /* table pages owned, for accounting and tests */
};

int pt_init(struct pt *pt, const struct pt_format *fmt, struct palloc *pa);
/*
 * Map [in, in+size) to [out, out+size). in, out and size must be 4 KiB aligned; uses the
 * largest leaf (up to fmt->max_leaf_level) whose alignment both sides allow. Overlap with an
 * existing mapping is -KEEL_EEXIST, overflow -KEEL_EINVAL, no memory -KEEL_ENOMEM; in every
 * error case the live mapping is unchanged.
 */
int pt_map(struct pt *pt, uint64_t in, hpa_t out, uint64_t size, unsigned attrs);
/* Translate one input address. -KEEL_ENOENT if unmapped. `level` may be NULL. */
int pt_lookup(const struct pt *pt, uint64_t in, hpa_t *out, unsigned *attrs, unsigned *level);
/* Free every table page (not the mapped memory). The pt is unusable afterwards. */
void pt_destroy(struct pt *pt);

#endif
