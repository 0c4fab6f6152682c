/*
 * The physical page allocator (contract in keel/palloc.h, design in docs/memory.md).
 *
 * Each usable range carries its own bookkeeping, carved from its first pages:
 *   word [0, W)   allocation bitmap, bit i set = page i of the range is allocated;
 *   word [W, 2W)  dirty bitmap, bit i set = page i is free and was never zeroed by Keel
 *                 (firmware left it as it was);
 * where W = ceil(pages / 64). Allocation bits past `pages` in the last word are set, so a
 * scan for free pages never runs off the end; dirty bits there are clear.
 *
 * Invariants (per range): free == number of clear allocation bits below `pages`; a set dirty
 * bit implies a clear allocation bit; every free page whose dirty bit is clear is all zero
 * (palloc_free scrubs). So palloc_alloc only has to zero pages that are still dirty, and the
 * firmware's leftovers are zeroed lazily instead of all at boot.
 */
#include <string.h>

#include <keel/addr.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <keel/palloc.h>
#include <keel/spinlock.h>

struct palloc keel_palloc;

#define WORD_BITS 64u
#define FULL_WORD (~0ull)

static uint64_t bitmap_words(uint64_t pages)
{
        return (pages + WORD_BITS - 1) / WORD_BITS;
}

static uint64_t *dirty_bitmap(const struct palloc_range *r)
{
        return r->bitmap + bitmap_words(r->pages);
}

/* Mask of bits [lo, hi) within one word, 0 <= lo < hi <= 64. */
static uint64_t word_mask(unsigned lo, unsigned hi)
{
        uint64_t m = hi == WORD_BITS ? FULL_WORD : (1ull << hi) - 1;

        return m & ~((1ull << lo) - 1);
}

/* Sets (value true) or clears bits [from, to). */
static void bits_assign(uint64_t *bm, uint64_t from, uint64_t to, bool value)
{
        while (from < to) {
                uint64_t w = from / WORD_BITS;
                unsigned lo = from % WORD_BITS;
                uint64_t end = to - from < WORD_BITS - lo ? to : from + (WORD_BITS - lo);
                uint64_t m = word_mask(lo, (unsigned)(end - w * WORD_BITS));

                if (value)
                        bm[w] |= m;
                else
                        bm[w] &= ~m;
                from = end;
        }
}

/*
 * First bit in [from, limit) whose value is `value`, or `limit` if none. Whole words that
 * cannot contain such a bit are skipped, so long runs cost one comparison per 64 pages.
 */
static uint64_t bits_find(const uint64_t *bm, uint64_t from, uint64_t limit, bool value)
{
        while (from < limit) {
                uint64_t w = from / WORD_BITS;
                uint64_t word = value ? bm[w] : ~bm[w];

                word &= FULL_WORD << (from % WORD_BITS);
                if (word) {
                        uint64_t i = w * WORD_BITS + (uint64_t)__builtin_ctzll(word);

                        return i < limit ? i : limit;
                }
                from = (w + 1) * WORD_BITS;
        }
        return limit;
}

static hpa_t page_hpa(const struct palloc_range *r, uint64_t i)
{
        return hpa_add(r->base, i << PAGE_SHIFT);
}

static void zero_page(hpa_t page)
{
        memset(hva_ptr(arch_hpa_to_hva(page)), 0, PAGE_SIZE);
}

/* Index of the first page at or after `i` whose address is a multiple of `align`. */
static bool align_index(const struct palloc_range *r, uint64_t i, uint64_t align, uint64_t *out)
{
        uint64_t a = hpa_raw(page_hpa(r, i));
        uint64_t up = align_up(a, align);

        if (up < a) /* wrapped past 2^64 */
                return false;
        *out = i + ((up - a) >> PAGE_SHIFT);
        return true;
}

/* First fit inside one range: index of `pages` free pages starting on an `align` boundary. */
static bool range_find(const struct palloc_range *r, uint64_t pages, uint64_t align, uint64_t *out)
{
        uint64_t i = 0;

        if (pages > r->free)
                return false;
        for (;;) {
                uint64_t start, busy;

                i = bits_find(r->bitmap, i, r->pages, false);
                if (!align_index(r, i, align, &start) || start >= r->pages ||
                    r->pages - start < pages)
                        return false;
                busy = bits_find(r->bitmap, start, start + pages, true);
                if (busy == start + pages) {
                        *out = start;
                        return true;
                }
                i = busy + 1;
        }
}

static bool valid_align(uint64_t align)
{
        return align >= PAGE_SIZE && (align & (align - 1)) == 0;
}

int palloc_alloc(struct palloc *pa, uint64_t pages, uint64_t align, hpa_t *out)
{
        struct spin_held h;

        if (!pages || !valid_align(align) || !out)
                return -KEEL_EINVAL;
        h = spin_lock(&pa->lock);
        if (pages > pa->free_pages) {
                spin_unlock(h);
                return -KEEL_ENOMEM;
        }
        for (unsigned k = 0; k < pa->count; k++) {
                struct palloc_range *r = &pa->ranges[k];
                uint64_t *dirty = dirty_bitmap(r);
                uint64_t start, end, i, zero_from, zero_to;

                if (!range_find(r, pages, align, &start))
                        continue;
                /* Taken under the lock; the dirty pages are zeroed after it, by their owner:
                 * [zero_from, zero_to) spans them (clean pages in between are zero already, so
                 * zeroing them again is harmless); empty if none is dirty. */
                end = start + pages;
                zero_from = bits_find(dirty, start, end, true);
                zero_to = zero_from;
                for (i = zero_from; i < end; i = bits_find(dirty, i + 1, end, true))
                        zero_to = i + 1;
                bits_assign(dirty, start, end, false);
                bits_assign(r->bitmap, start, end, true);
                r->free -= pages;
                pa->free_pages -= pages;
                spin_unlock(h);
                for (i = zero_from; i < zero_to; i++)
                        zero_page(page_hpa(r, i));
                *out = page_hpa(r, start);
                return 0;
        }
        spin_unlock(h);
        return -KEEL_ENOMEM;
}

/* The range and first page index of an allocated run [b, b + pages), under the lock. */
static struct palloc_range *allocated_run(struct palloc *pa, uint64_t b, uint64_t pages,
                                          uint64_t *first, struct spin_held h)
{
        (void)h;
        if (!pages || !is_aligned(b, PAGE_SIZE))
                return NULL;
        for (unsigned k = 0; k < pa->count; k++) {
                struct palloc_range *r = &pa->ranges[k];
                uint64_t rb = hpa_raw(r->base);

                if (b < rb || ((b - rb) >> PAGE_SHIFT) >= r->pages)
                        continue;
                *first = (b - rb) >> PAGE_SHIFT;
                if (pages > r->pages - *first ||
                    bits_find(r->bitmap, *first, *first + pages, false) != *first + pages)
                        return NULL;
                return r;
        }
        return NULL;
}

/*
 * Checked under the lock, scrubbed outside it (the run stays allocated, so no other CPU can
 * be handed it meanwhile), then given back under the lock again.
 */
int palloc_free(struct palloc *pa, hpa_t base, uint64_t pages)
{
        uint64_t b = hpa_raw(base), first = 0;
        struct spin_held h = spin_lock(&pa->lock);
        struct palloc_range *r = allocated_run(pa, b, pages, &first, h);

        spin_unlock(h);
        if (!r) {
                LOG_ERR("palloc: refusing to free %llu page(s) at 0x%llx: not an allocated run",
                        (unsigned long long)pages, (unsigned long long)b);
                return -KEEL_EINVAL;
        }
        for (uint64_t i = first; i < first + pages; i++)
                zero_page(page_hpa(r, i));
        h = spin_lock(&pa->lock);
        /* Freed twice at once by two CPUs: a bug in Keel, not a guest's doing. */
        CHECK(allocated_run(pa, b, pages, &first, h) == r);
        bits_assign(r->bitmap, first, first + pages, false);
        r->free += pages;
        pa->free_pages += pages;
        spin_unlock(h);
        return 0;
}

uint64_t palloc_free_pages(const struct palloc *pa)
{
        return __atomic_load_n(&pa->free_pages, __ATOMIC_RELAXED);
}

uint64_t palloc_largest_run(struct palloc *pa, uint64_t align)
{
        uint64_t best = 0;
        struct spin_held h;

        if (!valid_align(align))
                return 0;
        h = spin_lock(&pa->lock);
        for (unsigned k = 0; k < pa->count; k++) {
                const struct palloc_range *r = &pa->ranges[k];
                uint64_t i = 0;

                while (i < r->pages) {
                        uint64_t start, end, first;

                        start = bits_find(r->bitmap, i, r->pages, false);
                        if (start == r->pages)
                                break;
                        end = bits_find(r->bitmap, start, r->pages, true);
                        if (align_index(r, start, align, &first) && first < end &&
                            end - first > best)
                                best = end - first;
                        i = end;
                }
        }
        spin_unlock(h);
        return best;
}

/*
 * Adds the merged input range [start, end) (bytes, any alignment) as one allocator range.
 * Physical page 0 is never used: on the real machine it is the NULL pointer.
 */
static void add_range(struct palloc *pa, uint64_t start, uint64_t end)
{
        struct palloc_range *r;
        uint64_t n, meta, words;
        uint64_t *bm;

        if (align_up(start, PAGE_SIZE) < start) /* within the last page below 2^64 */
                return;
        start = align_up(start, PAGE_SIZE);
        end = align_down(end, PAGE_SIZE);
        if (start < PAGE_SIZE)
                start = PAGE_SIZE;
        if (end <= start)
                return;
        n = (end - start) >> PAGE_SHIFT;
        /* Two bitmaps sized for all n pages (a slight overestimate: fewer remain usable). */
        meta = align_up(2 * bitmap_words(n) * sizeof(uint64_t), PAGE_SIZE) >> PAGE_SHIFT;
        if (n <= meta)
                return;
        if (pa->count == PALLOC_MAX_RANGES) {
                log_printf(LOG_LEVEL_WARN, "palloc: more than %u ranges, ignoring 0x%llx-0x%llx",
                           PALLOC_MAX_RANGES, (unsigned long long)start, (unsigned long long)end);
                return;
        }
        r = &pa->ranges[pa->count++];
        bm = hva_ptr(arch_hpa_to_hva(hpa(start)));
        r->base = hpa(start + (meta << PAGE_SHIFT));
        r->pages = n - meta;
        r->bitmap = bm;
        r->free = r->pages;
        words = bitmap_words(r->pages);
        memset(bm, 0, 2 * words * sizeof(uint64_t));
        bits_assign(bm, r->pages, words * WORD_BITS, true);
        bits_assign(dirty_bitmap(r), 0, r->pages, true);
        pa->total_pages += r->pages;
        pa->free_pages += r->pages;
}

/* Byte end of an input range; false if it wraps past 2^64. */
static bool range_end(const struct mem_range *m, uint64_t *end)
{
        if (m->pages > (UINT64_MAX >> PAGE_SHIFT))
                return false;
        *end = hpa_raw(m->base) + (m->pages << PAGE_SHIFT);
        return *end >= hpa_raw(m->base);
}

int palloc_init(struct palloc *pa, const struct mem_range *ranges, unsigned count)
{
        uint64_t prev = 0, cur_start = 0, cur_end = 0;
        bool first = true, have = false;

        memset(pa, 0, sizeof(*pa));
        if (count && !ranges)
                return -KEEL_EINVAL;
        /* Validate everything before writing a single bitmap into the ranges. */
        for (unsigned i = 0; i < count; i++) {
                uint64_t end;

                if (!range_end(&ranges[i], &end)) {
                        LOG_ERR("palloc: range 0x%llx + %llu pages wraps",
                                (unsigned long long)hpa_raw(ranges[i].base),
                                (unsigned long long)ranges[i].pages);
                        return -KEEL_EINVAL;
                }
        }
        for (unsigned i = 0; i < count; i++) {
                for (unsigned j = i + 1; j < count; j++) {
                        uint64_t bi = hpa_raw(ranges[i].base), bj = hpa_raw(ranges[j].base);
                        uint64_t ei = 0, ej = 0;

                        range_end(&ranges[i], &ei);
                        range_end(&ranges[j], &ej);
                        if (ranges[i].pages && ranges[j].pages && bi < ej && bj < ei) {
                                LOG_ERR("palloc: ranges 0x%llx-0x%llx and 0x%llx-0x%llx overlap",
                                        (unsigned long long)bi, (unsigned long long)ei,
                                        (unsigned long long)bj, (unsigned long long)ej);
                                return -KEEL_EINVAL;
                        }
                }
        }
        /*
         * Visit the non-empty ranges in increasing address order (no two share a base now) and
         * merge the ones that touch, so that a run may cross firmware's descriptor boundaries.
         */
        for (;;) {
                const struct mem_range *next = NULL;
                uint64_t end;

                for (unsigned i = 0; i < count; i++) {
                        uint64_t b = hpa_raw(ranges[i].base);

                        if (!ranges[i].pages || (!first && b <= prev))
                                continue;
                        if (!next || b < hpa_raw(next->base))
                                next = &ranges[i];
                }
                if (!next)
                        break;
                first = false;
                prev = hpa_raw(next->base);
                range_end(next, &end);
                if (have && prev == cur_end) {
                        cur_end = end;
                        continue;
                }
                if (have)
                        add_range(pa, cur_start, cur_end);
                cur_start = prev;
                cur_end = end;
                have = true;
        }
        if (have)
                add_range(pa, cur_start, cur_end);
        if (!pa->count) {
                LOG_ERR("palloc: no usable memory");
                return -KEEL_ENOMEM;
        }
        return 0;
}
