/*
 * Guest-physical memory (contract in vmm/include/vmm/gmem.h). This is the one place where a
 * guest-physical address becomes something the host can dereference, and only after the
 * whole range was found inside one region. All arithmetic is done on offsets inside a
 * region, so no sum of guest-controlled values can wrap.
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

/* The region holding all of [a, a+len), or NULL. len 0 needs a itself inside a region. */
static inline const struct gmem_region *gmem_find(const struct gmem *m, gpa_t a, uint64_t len)
{
        uint64_t ga = gpa_raw(a);

        for (unsigned i = 0; i < m->count; i++) {
                const struct gmem_region *r = &m->regions[i];
                uint64_t rb = gpa_raw(r->base);

                if (ga < rb || ga - rb >= r->size)
                        continue;
                return len <= r->size - (ga - rb) ? r : NULL;
        }
        return NULL;
}

bool gmem_contains(const struct gmem *m, gpa_t a, uint64_t len)
{
        return gmem_find(m, a, len) != NULL;
}

int gmem_translate(const struct gmem *m, gpa_t a, uint64_t len, hpa_t *out)
{
        const struct gmem_region *r = gmem_find(m, a, len);

        if (!r)
                return -KEEL_EFAULT;
        *out = hpa_add(r->backing, gpa_raw(a) - gpa_raw(r->base));
        return 0;
}

/* Host pointer to [a, a+len) after the bounds check, or NULL. */
static inline void *gmem_ptr(const struct gmem *m, gpa_t a, uint64_t len)
{
        hpa_t h;

        if (gmem_translate(m, a, len, &h) < 0)
                return NULL;
        return hva_ptr(arch_hpa_to_hva(h));
}

int gmem_read(const struct gmem *m, gpa_t src, void *dst, uint64_t len)
{
        void *p = gmem_ptr(m, src, len);

        if (!p)
                return -KEEL_EFAULT;
        if (len)
                memcpy(dst, p, len);
        return 0;
}

int gmem_write(const struct gmem *m, gpa_t dst, const void *src, uint64_t len)
{
        void *p = gmem_ptr(m, dst, len);

        if (!p)
                return -KEEL_EFAULT;
        if (len)
                memcpy(p, src, len);
        return 0;
}

int gmem_fill(const struct gmem *m, gpa_t dst, int byte, uint64_t len)
{
        void *p = gmem_ptr(m, dst, len);

        if (!p)
                return -KEEL_EFAULT;
        memset(p, byte, len);
        return 0;
}

uint64_t gmem_total(const struct gmem *m)
{
        uint64_t total = 0;

        for (unsigned i = 0; i < m->count; i++)
                total += m->regions[i].size;
        return total;
}
