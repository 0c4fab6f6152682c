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
 * Leaves are as large as alignment and the format allow (4 KiB, 2 MiB, 1 GiB); pt_remap and
 * pt_unmap split a large leaf that a change covers only in part.
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
        /*
         * A valid entry may only be replaced by another valid one (a block by a table, a
         * new output) after it was made invalid and the TLB invalidated (arm64).
         */
        bool break_before_make;
};

struct pt {
        const struct pt_format *fmt;
        struct palloc *pa;
        hpa_t root;
        uint64_t table_pages; /* table pages owned, for accounting and tests */
        /*
         * Set by the owner once the tables are live (NULL before): invalidates every cached
         * translation of [in, in+size). Called between break and make, for formats with
         * break_before_make; other TLB maintenance after pt_remap / pt_unmap is the caller's.
         */
        void (*flush)(const struct pt *pt, uint64_t in, uint64_t size);
};

int pt_init(struct pt *pt, const struct pt_format *fmt, struct palloc *pa);
/*
 * Map [in, in+size) to [out, out+size). in, out and size must be 4 KiB aligned; uses the
 * largest leaf (up to fmt->max_leaf_level) whose alignment both sides allow. Overlap with an
 * existing mapping is -KEEL_EEXIST, overflow -KEEL_EINVAL, no memory -KEEL_ENOMEM; in every
 * error case the live mapping is unchanged.
 */
int pt_map(struct pt *pt, uint64_t in, hpa_t out, uint64_t size, unsigned attrs);
/*
 * Map [in, in+size) to [out, out+size) whatever was mapped there. A large leaf the range
 * covers only in part is split first (the part outside keeps its translation and
 * attributes); a slot already split keeps its table (smaller leaves, no merge). Errors as
 * pt_map, minus -KEEL_EEXIST; on error nothing visible changed. The caller invalidates the
 * TLB for the range afterwards.
 */
int pt_remap(struct pt *pt, uint64_t in, hpa_t out, uint64_t size, unsigned attrs);
/*
 * Unmap [in, in+size), splitting large leaves it covers in part; pages already unmapped are
 * fine. Tables stay (freed by pt_destroy). -KEEL_EINVAL / -KEEL_ENOMEM (a split needs a table
 * page) change nothing. The caller invalidates the TLB for the range afterwards.
 */
int pt_unmap(struct pt *pt, uint64_t in, uint64_t size);
/* Number of present leaves per level (0: 4 KiB, 1: 2 MiB, 2: 1 GiB). */
void pt_count_leaves(const struct pt *pt, uint64_t leaves[PT_LEVELS - 1]);
/* Translate one input address. -KEEL_ENOENT if unmapped. `level` may be NULL. */
int pt_lookup(const struct pt *pt, uint64_t in, hpa_t *out, unsigned *attrs, unsigned *level);
/* Free every table page (not the mapped memory). The pt is unusable afterwards. */
void pt_destroy(struct pt *pt);

#endif
