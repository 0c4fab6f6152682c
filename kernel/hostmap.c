/*
 * Keel's own memory map with W^X permissions (API and contract in keel/hostmap.h, design in
 * docs/memory.md). Pure: records regions and turns them into pt_map calls.
 */
#include <stdio.h>

#include <keel/errno.h>
#include <keel/hostmap.h>

struct hostmap keel_hostmap;

#define KNOWN_ATTRS (PT_READ | PT_WRITE | PT_EXEC | PT_UNCACHED)

static bool attrs_ok(unsigned attrs)
{
        if (attrs & ~KNOWN_ATTRS)
                return false;
        if ((attrs & PT_WRITE) && (attrs & PT_EXEC))
                return false; /* W^X */
        return attrs == HOSTMAP_GUARD || (attrs & PT_READ);
}

int hostmap_add(struct hostmap *m, uint64_t base, uint64_t size, unsigned attrs, const char *what,
                int cpu)
{
        struct hostmap_region *r = hostmap_regions(m);
        unsigned i;

        if (!is_aligned(base, PAGE_SIZE) || !is_aligned(size, PAGE_SIZE) || size == 0 ||
            base + size < base || !attrs_ok(attrs))
                return -KEEL_EINVAL;
        for (i = 0; i < m->count; i++)
                if (base < r[i].base + r[i].size && r[i].base < base + size)
                        return -KEEL_EEXIST;
        if (m->count == (m->max ? m->max : HOSTMAP_MAX_REGIONS))
                return -KEEL_ENOSPC;
        for (i = m->count; i > 0 && r[i - 1].base > base; i--)
                r[i] = r[i - 1];
        r[i] = (struct hostmap_region){base, size, attrs, what, cpu};
        m->count++;
        return 0;
}

int hostmap_grow(struct hostmap *m, struct hostmap_region *room, unsigned max)
{
        if (!room || max <= m->count)
                return -KEEL_EINVAL;
        for (unsigned i = 0; i < m->count; i++)
                room[i] = hostmap_regions(m)[i];
        m->grown = room;
        m->max = max;
        return 0;
}

static int map_piece(struct pt *pt, uint64_t base, uint64_t end, unsigned attrs)
{
        if (base >= end || attrs == HOSTMAP_GUARD)
                return 0;
        return pt_map(pt, base, hpa(base), end - base, attrs);
}

int hostmap_map_range(const struct hostmap *m, struct pt *pt, uint64_t base, uint64_t size,
                      unsigned attrs)
{
        uint64_t end = base + size, at = base;
        int err;

        if (!is_aligned(base, PAGE_SIZE) || !is_aligned(size, PAGE_SIZE) || size == 0 ||
            end < base || !attrs_ok(attrs) || attrs == HOSTMAP_GUARD)
                return -KEEL_EINVAL;
        /* Regions are sorted and disjoint: one pass, the gaps get `attrs`. */
        for (unsigned i = 0; i < m->count && at < end; i++) {
                const struct hostmap_region *r = &hostmap_regions(m)[i];
                uint64_t r_end = r->base + r->size;

                if (r_end <= at || r->base >= end)
                        continue;
                err = map_piece(pt, at, r->base > at ? r->base : at, attrs);
                if (!err)
                        err = map_piece(pt, r->base > at ? r->base : at, r_end < end ? r_end : end,
                                        r->attrs);
                if (err)
                        return err;
                at = r_end < end ? r_end : end;
        }
        return map_piece(pt, at, end, attrs);
}

int hostmap_map_device(struct pt *pt, hpa_t base, uint64_t size)
{
        uint64_t start = align_down(hpa_raw(base), PAGE_SIZE);
        uint64_t end = align_up(hpa_raw(base) + size, PAGE_SIZE);

        if (!size || end <= start)
                return -KEEL_EINVAL;
        for (uint64_t p = start; p < end; p += PAGE_SIZE) {
                unsigned attrs;
                hpa_t out;
                int err;

                if (pt_lookup(pt, p, &out, &attrs, NULL) == 0) {
                        if (!(attrs & PT_UNCACHED) || hpa_raw(out) != p)
                                return -KEEL_EEXIST;
                        continue;
                }
                err = pt_map(pt, p, hpa(p), PAGE_SIZE, PT_READ | PT_WRITE | PT_UNCACHED);
                if (err)
                        return err;
        }
        return 0;
}

const struct hostmap_region *hostmap_find(const struct hostmap *m, uint64_t addr)
{
        for (unsigned i = 0; i < m->count; i++)
                if (addr >= hostmap_regions(m)[i].base &&
                    addr - hostmap_regions(m)[i].base < hostmap_regions(m)[i].size)
                        return &hostmap_regions(m)[i];
        return NULL;
}

void hostmap_describe(const struct hostmap *m, uint64_t addr, char *buf, size_t len)
{
        const struct hostmap_region *r = hostmap_find(m, addr);

        if (!r)
                snprintf(buf, len, "outside Keel's own regions");
        else if (r->cpu != HOSTMAP_NO_CPU)
                snprintf(buf, len, "in the %s cpu %d", r->what, r->cpu);
        else
                snprintf(buf, len, "in %s", r->what);
}
