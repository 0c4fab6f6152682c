/*
 * The generic 4-level page-table builder (contract in keel/pt.h, design in docs/memory.md).
 * It knows only the radix-tree shape; every entry is built and decoded by the arch's
 * struct pt_format.
 *
 * pt_map runs three passes over the same range, each deciding leaf-or-table per entry the
 * same way (so they agree on the tree shape):
 *   check    read-only: finds overlaps (-KEEL_EEXIST) and counts the tables still missing;
 *            if the allocator has fewer free pages than that, -KEEL_ENOMEM.
 *   prepare  allocates the missing tables and links them in. A new table is all zero, i.e.
 *            maps nothing, so linking it changes no translation.
 *   commit   writes the leaf entries; it cannot fail.
 * Nothing visible changes before commit. Since tables are single pages, "enough free pages"
 * guarantees prepare succeeds (the allocator is serialised by the caller); should it fail
 * anyway, the tables it linked stay in place, empty and invisible, until pt_destroy.
 *
 * pt_remap and pt_unmap run the same passes over entries that may be present. A large leaf
 * the range covers only in part is split in prepare: a new table of the next level holding
 * the same translation and attributes (the format re-encodes its decoded attributes, so a
 * 4 KiB piece of a 2 MiB x86 leaf gets PS clear and its PAT bit where 4 KiB leaves have it),
 * linked in place of the leaf; commit then writes the new leaves or clears them. A split
 * changes no translation, so a failed request leaves the mapping as it was.
 *
 * Tables are never freed before pt_destroy: freeing a linked table would need a TLB flush
 * (paging-structure caches may hold the pointer), which this layer does not own. The one TLB
 * maintenance it asks for is break-before-make (formats that need it: arm64), through the
 * owner's pt->flush.
 */
#include <string.h>

#include <keel/check.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <keel/pt.h>

#define PT_INDEX_BITS 9
/* Input addresses: 4 levels of 9 bits above the 12-bit page offset. */
#define PT_INPUT_LIMIT (1ull << (PAGE_SHIFT + PT_LEVELS * PT_INDEX_BITS))
/* No format Keel supports holds physical addresses of more than 52 bits. */
#define PT_OUTPUT_LIMIT (1ull << 52)
#define PT_ATTR_MASK    (PT_READ | PT_WRITE | PT_EXEC | PT_USER | PT_UNCACHED)
#define PT_ROOT_LEVEL   (PT_LEVELS - 1)

enum map_pass { PASS_CHECK, PASS_PREPARE, PASS_COMMIT };

/* What a request does to entries already present. */
enum map_kind {
        MAP_NEW,     /* pt_map: any present page is -KEEL_EEXIST */
        MAP_REPLACE, /* pt_remap: overwrites, splitting large leaves the range cuts */
        MAP_CLEAR,   /* pt_unmap: clears, splitting large leaves the range cuts */
};

struct map_op {
        struct pt *pt;
        enum map_pass pass;
        enum map_kind kind;
        uint64_t in;  /* start of the whole request */
        uint64_t out; /* host-physical address `in` maps to */
        unsigned attrs;
        uint64_t tables_missing; /* counted by PASS_CHECK */
};

static uint64_t level_size(unsigned level)
{
        return 1ull << (PAGE_SHIFT + level * PT_INDEX_BITS);
}

static unsigned level_index(uint64_t in, unsigned level)
{
        return (unsigned)(in >> (PAGE_SHIFT + level * PT_INDEX_BITS)) & (PT_ENTRIES - 1);
}

static pte_t *table_ptr(hpa_t table)
{
        return hva_ptr(arch_hpa_to_hva(table));
}

/* Entries may be live (walked by the MMU): write each one with a single 64-bit store. */
static void pte_write(pte_t *e, pte_t v)
{
        *(volatile pte_t *)e = v;
}

static pte_t pte_read(const pte_t *e)
{
        return *(const volatile pte_t *)e;
}

/* True if a present entry at `level` points to a next-level table. */
static bool entry_is_table(const struct pt_format *fmt, pte_t e, unsigned level)
{
        if (level == 0)
                return false;
        return level > fmt->max_leaf_level || !fmt->is_leaf(e, level);
}

/*
 * The entry at `level` for `va` in the table that splits `big`, a leaf one level up: the
 * matching part of its output, with its attributes.
 */
static pte_t split_entry(const struct pt_format *fmt, pte_t big, unsigned level, uint64_t va)
{
        uint64_t off = va & (level_size(level + 1) - 1) & ~(level_size(level) - 1);

        return fmt->leaf(hpa_add(fmt->addr(big, level + 1), off), level,
                         fmt->attrs(big, level + 1));
}

/*
 * Replaces a live entry. Formats that need break-before-make (arm64: a valid entry whose
 * output or size changes) get it: invalid first, then the owner's TLB invalidation of the
 * slot, then the new entry.
 */
static void pte_replace(const struct pt *pt, pte_t *e, pte_t v, uint64_t va, unsigned level)
{
        if (pt->fmt->break_before_make && pt->flush && pt->fmt->present(pte_read(e))) {
                pte_write(e, 0);
                pt->flush(pt, align_down(va, level_size(level)), level_size(level));
        }
        pte_write(e, v);
}

/* PASS_PREPARE: a new table at `level` holding what the leaf `big` above it mapped. */
static int split_leaf(struct map_op *op, pte_t *e, pte_t big, unsigned level, uint64_t va)
{
        const struct pt_format *fmt = op->pt->fmt;
        uint64_t base = align_down(va, level_size(level + 1));
        pte_t *t;
        hpa_t pa;
        int err = palloc_alloc(op->pt->pa, 1, PAGE_SIZE, &pa);

        if (err)
                return err;
        op->pt->table_pages++;
        t = table_ptr(pa);
        for (unsigned i = 0; i < PT_ENTRIES; i++)
                t[i] = split_entry(fmt, big, level, base + i * level_size(level));
        pte_replace(op->pt, e, fmt->table(pa), va, level + 1);
        return 0;
}

/*
 * One pass over [begin, end) inside the table at `level`. In PASS_CHECK `table` may be NULL:
 * a table that does not exist yet, which maps nothing if `big` is 0, or else would split the
 * leaf `big` one level up.
 */
static int map_level(struct map_op *op, pte_t *table, pte_t big, unsigned level, uint64_t begin,
                     uint64_t end)
{
        const struct pt_format *fmt = op->pt->fmt;
        uint64_t size = level_size(level);

        for (uint64_t va = begin; va < end;) {
                uint64_t next = align_down(va, size) + size;
                uint64_t chunk_end = next < end ? next : end;
                uint64_t out = op->out + (va - op->in);
                pte_t *e = table ? &table[level_index(va, level)] : NULL;
                pte_t cur = e ? pte_read(e) : big ? split_entry(fmt, big, level, va) : 0;
                bool present = fmt->present(cur);
                bool is_table = present && entry_is_table(fmt, cur, level);
                bool whole = is_aligned(va, size) && chunk_end == next;
                bool leaf_fits =
                    level == 0 || (whole && level <= fmt->max_leaf_level && is_aligned(out, size));
                pte_t *child = NULL;
                pte_t child_big = 0;
                int err;

                if (op->kind == MAP_NEW && present && !is_table)
                        return -KEEL_EEXIST;
                if (!is_table && op->kind == MAP_CLEAR && (whole || !present)) {
                        if (present && op->pass == PASS_COMMIT)
                                pte_write(e, 0);
                        va = chunk_end;
                        continue;
                }
                if (!is_table && op->kind != MAP_CLEAR && leaf_fits) {
                        if (op->pass == PASS_COMMIT)
                                pte_replace(op->pt, e, fmt->leaf(hpa(out), level, op->attrs), va,
                                            level);
                        va = chunk_end;
                        continue;
                }
                /* A table is needed here: the one present, a new one, or a split leaf. */
                CHECK(level > 0);
                if (is_table) {
                        child = table_ptr(fmt->addr(cur, level));
                } else if (op->pass == PASS_CHECK) {
                        op->tables_missing++;
                        child_big = present ? cur : 0;
                } else {
                        hpa_t t;

                        /* Commit only walks tables that check counted and prepare linked. */
                        CHECK(op->pass == PASS_PREPARE);
                        if (present) {
                                err = split_leaf(op, e, cur, level - 1, va);
                        } else {
                                err = palloc_alloc(op->pt->pa, 1, PAGE_SIZE, &t);
                                if (!err) {
                                        op->pt->table_pages++;
                                        pte_write(e, fmt->table(t));
                                }
                        }
                        if (err)
                                return err;
                        child = table_ptr(fmt->addr(pte_read(e), level));
                }
                err = map_level(op, child, child_big, level - 1, va, chunk_end);
                if (err)
                        return err;
                va = chunk_end;
        }
        return 0;
}

int pt_init(struct pt *pt, const struct pt_format *fmt, struct palloc *pa)
{
        int err;

        CHECK(fmt && fmt->table && fmt->leaf && fmt->present && fmt->is_leaf && fmt->addr &&
              fmt->attrs && fmt->max_leaf_level <= 2);
        /* Tables come zeroed from the allocator and must map nothing. */
        CHECK(!fmt->present(0));
        memset(pt, 0, sizeof(*pt));
        err = palloc_alloc(pa, 1, PAGE_SIZE, &pt->root);
        if (err)
                return err;
        pt->fmt = fmt;
        pt->pa = pa;
        pt->table_pages = 1;
        return 0;
}

/* The three passes of one request (see the top of this file). */
static int update(struct pt *pt, enum map_kind kind, uint64_t in, uint64_t out, uint64_t size,
                  unsigned attrs)
{
        struct map_op op = {.pt = pt, .kind = kind, .in = in, .out = out, .attrs = attrs};
        int err;

        CHECK(pt->fmt);
        if (!size || !is_aligned(in | out | size, PAGE_SIZE) || (attrs & ~PT_ATTR_MASK))
                return -KEEL_EINVAL;
        if (in >= PT_INPUT_LIMIT || size > PT_INPUT_LIMIT - in || out >= PT_OUTPUT_LIMIT ||
            size > PT_OUTPUT_LIMIT - out)
                return -KEEL_EINVAL;

        op.pass = PASS_CHECK;
        err = map_level(&op, table_ptr(pt->root), 0, PT_ROOT_LEVEL, in, in + size);
        if (err)
                return err;
        if (op.tables_missing > palloc_free_pages(pt->pa))
                return -KEEL_ENOMEM;
        op.pass = PASS_PREPARE;
        err = map_level(&op, table_ptr(pt->root), 0, PT_ROOT_LEVEL, in, in + size);
        if (err) {
                LOG_ERR("pt %s: preparing 0x%llx+0x%llx failed after the check passed: %s",
                        pt->fmt->name, (unsigned long long)in, (unsigned long long)size,
                        keel_strerror(err));
                return err;
        }
        op.pass = PASS_COMMIT;
        err = map_level(&op, table_ptr(pt->root), 0, PT_ROOT_LEVEL, in, in + size);
        CHECK(err == 0);
        return 0;
}

int pt_map(struct pt *pt, uint64_t in, hpa_t out, uint64_t size, unsigned attrs)
{
        return update(pt, MAP_NEW, in, hpa_raw(out), size, attrs);
}

int pt_remap(struct pt *pt, uint64_t in, hpa_t out, uint64_t size, unsigned attrs)
{
        return update(pt, MAP_REPLACE, in, hpa_raw(out), size, attrs);
}

int pt_unmap(struct pt *pt, uint64_t in, uint64_t size)
{
        return update(pt, MAP_CLEAR, in, 0, size, 0);
}

int pt_lookup(const struct pt *pt, uint64_t in, hpa_t *out, unsigned *attrs, unsigned *level)
{
        const struct pt_format *fmt = pt->fmt;
        const pte_t *table;

        CHECK(fmt);
        if (in >= PT_INPUT_LIMIT)
                return -KEEL_ENOENT;
        table = table_ptr(pt->root);
        for (unsigned l = PT_ROOT_LEVEL;; l--) {
                pte_t e = pte_read(&table[level_index(in, l)]);

                if (!fmt->present(e))
                        return -KEEL_ENOENT;
                if (entry_is_table(fmt, e, l)) {
                        table = table_ptr(fmt->addr(e, l));
                        continue;
                }
                if (out)
                        *out = hpa_add(fmt->addr(e, l), in & (level_size(l) - 1));
                if (attrs)
                        *attrs = fmt->attrs(e, l);
                if (level)
                        *level = l;
                return 0;
        }
}

static void count_leaves(const struct pt *pt, hpa_t table, unsigned level,
                         uint64_t leaves[PT_LEVELS - 1])
{
        const pte_t *t = table_ptr(table);

        for (unsigned i = 0; i < PT_ENTRIES; i++) {
                pte_t e = pte_read(&t[i]);

                if (!pt->fmt->present(e))
                        continue;
                if (entry_is_table(pt->fmt, e, level))
                        count_leaves(pt, pt->fmt->addr(e, level), level - 1, leaves);
                else
                        leaves[level]++;
        }
}

void pt_count_leaves(const struct pt *pt, uint64_t leaves[PT_LEVELS - 1])
{
        CHECK(pt->fmt);
        memset(leaves, 0, (PT_LEVELS - 1) * sizeof(leaves[0]));
        count_leaves(pt, pt->root, PT_ROOT_LEVEL, leaves);
}

static void free_table(struct pt *pt, hpa_t table, unsigned level)
{
        pte_t *t = table_ptr(table);

        for (unsigned i = 0; level > 0 && i < PT_ENTRIES; i++) {
                pte_t e = pte_read(&t[i]);

                if (pt->fmt->present(e) && entry_is_table(pt->fmt, e, level))
                        free_table(pt, pt->fmt->addr(e, level), level - 1);
        }
        CHECK(palloc_free(pt->pa, table, 1) == 0);
        CHECK(pt->table_pages > 0);
        pt->table_pages--;
}

void pt_destroy(struct pt *pt)
{
        if (!pt->fmt)
                return;
        free_table(pt, pt->root, PT_ROOT_LEVEL);
        CHECK(pt->table_pages == 0);
        memset(pt, 0, sizeof(*pt));
}
