/*
 * Guest-physical memory (contract in vmm/include/vmm/gmem.h). This is the one place where a
 * guest-physical address becomes something the host can dereference, and only after the
 * whole range was found to be guest RAM. All arithmetic is done on offsets inside a region,
 * so no sum of guest-controlled values can wrap.
 */
#include <string.h>

#include <keel/errno.h>
#include <vmm/gmem.h>

void gmem_init(struct gmem *m)
{
        memset(m, 0, sizeof(*m));
}

/* True if [a, a+alen) and [b, b+blen) share a byte; never overflows. */
static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
        if (alen == 0 || blen == 0)
                return false;
        return a <= b ? b - a < alen : a - b < blen;
}

int gmem_add_region(struct gmem *m, gpa_t base, uint64_t size, hpa_t backing)
{
        uint64_t b = gpa_raw(base), h = hpa_raw(backing);

        if (size == 0 || !is_aligned(b, PAGE_SIZE) || !is_aligned(size, PAGE_SIZE) ||
            !is_aligned(h, PAGE_SIZE))
                return -KEEL_EINVAL;
        /* Both ends must be representable: base + size and backing + size may not wrap. */
        if (b + size < b || h + size < h)
                return -KEEL_EINVAL;
        for (unsigned i = 0; i < m->count; i++)
                if (ranges_overlap(b, size, gpa_raw(m->regions[i].base), m->regions[i].size))
                        return -KEEL_EINVAL;
        if (m->count >= GMEM_MAX_REGIONS)
                return -KEEL_ENOSPC;
        m->regions[m->count++] = (struct gmem_region){base, size, backing};
        return 0;
}

/* The region holding guest-physical `a`, or NULL. */
static const struct gmem_region *gmem_at(const struct gmem *m, uint64_t a)
{
        for (unsigned i = 0; i < m->count; i++) {
                const struct gmem_region *r = &m->regions[i];

                if (a - gpa_raw(r->base) < r->size) /* wraps to huge below the base */
                        return r;
        }
        return NULL;
}

/* Bytes of the region `r` (which holds `a`) from `a` to its end. */
static inline uint64_t room(const struct gmem_region *r, uint64_t a)
{
        return r->size - (a - gpa_raw(r->base));
}

bool gmem_contains(const struct gmem *m, gpa_t a, uint64_t len)
{
        uint64_t ga = gpa_raw(a);

        /* Each step moves into another region (they never overlap): at most count steps. */
        for (unsigned i = 0; i <= m->count; i++) {
                const struct gmem_region *r = gmem_at(m, ga);

                if (!r)
                        return false;
                if (len <= room(r, ga))
                        return true;
                len -= room(r, ga);
                ga += room(r, ga); /* the region's end: representable (gmem_add_region) */
        }
        return false;
}

int gmem_translate(const struct gmem *m, gpa_t a, uint64_t len, hpa_t *out)
{
        const struct gmem_region *r = gmem_at(m, gpa_raw(a));

        if (!r || len > room(r, gpa_raw(a)))
                return -KEEL_EFAULT;
        *out = hpa_add(r->backing, gpa_raw(a) - gpa_raw(r->base));
        return 0;
}

/*
 * Copy between guest RAM [a, a+len) and `buf` (to_guest), or fill it with `byte` (buf NULL),
 * region by region, after the whole range was checked: a refused range changes nothing.
 */
static int gmem_copy(const struct gmem *m, uint64_t a, uint8_t *buf, int byte, uint64_t len,
                     bool to_guest)
{
        if (!gmem_contains(m, gpa(a), len))
                return -KEEL_EFAULT;
        while (len) {
                const struct gmem_region *r = gmem_at(m, a);
                uint64_t n = len < room(r, a) ? len : room(r, a);
                uint8_t *p = hva_ptr(arch_hpa_to_hva(hpa_add(r->backing, a - gpa_raw(r->base))));

                if (!buf)
                        memset(p, byte, n);
                else if (to_guest)
                        memcpy(p, buf, n);
                else
                        memcpy(buf, p, n);
                if (buf)
                        buf += n;
                a += n;
                len -= n;
        }
        return 0;
}

int gmem_read(const struct gmem *m, gpa_t src, void *dst, uint64_t len)
{
        return gmem_copy(m, gpa_raw(src), dst, 0, len, false);
}

int gmem_write(const struct gmem *m, gpa_t dst, const void *src, uint64_t len)
{
        return gmem_copy(m, gpa_raw(dst), (uint8_t *)(uintptr_t)src, 0, len, true);
}

int gmem_fill(const struct gmem *m, gpa_t dst, int byte, uint64_t len)
{
        return gmem_copy(m, gpa_raw(dst), NULL, byte, len, true);
}

uint64_t gmem_total(const struct gmem *m)
{
        uint64_t total = 0;

        for (unsigned i = 0; i < m->count; i++)
                total += m->regions[i].size;
        return total;
}

bool gmem_next_run(const struct gmem *m, uint64_t from, uint64_t *base, uint64_t *size)
{
        const struct gmem_region *low = NULL;

        for (unsigned i = 0; i < m->count; i++) {
                uint64_t b = gpa_raw(m->regions[i].base);

                if (b >= from && (!low || b < gpa_raw(low->base)))
                        low = &m->regions[i];
        }
        if (!low)
                return false;
        *base = gpa_raw(low->base);
        *size = 0;
        /* Extend over the regions that follow without a gap (at most count of them). */
        for (const struct gmem_region *r = low; r; r = gmem_at(m, *base + *size))
                *size += r->size;
        return true;
}
