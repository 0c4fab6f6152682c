/*
 * The fast path of the guest page-table walker (arch/gwalk.h): x86_code_peek, which the
 * exit path uses to look at an intercepted instruction's bytes in place (SVM without
 * NRIP-save: x86_plain_insn_length). Compiled for speed with the exit path
 * (arch/x86_64/CMakeLists.txt); the full walk, gwalk.c, is built for size.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <keel/addr.h>
#include <vmm/gmem.h>
#include <arch/gwalk.h>

#include "gwalk_bits.h"

/*
 * The guest RAM region the fast path reads through: when the VM has a single region (every
 * VM today) the bounds check is one subtraction and one comparison per access; otherwise
 * the general gmem_peek.
 */
struct peek_ram {
        const struct gmem *m;
        uint64_t base, size;
        const uint8_t *host;
};

static inline __attribute__((always_inline)) const void *peek(const struct peek_ram *r, uint64_t ga,
                                                              uint64_t len)
{
        uint64_t off = ga - r->base;

        if (!r->host)
                return gmem_peek(r->m, gpa(ga), len);
        return off < r->size && len <= r->size - off ? r->host + off : NULL;
}

/* Entry `linear >> shift` of the long-mode table at `table`, remembered in `c`; 0 (not
 * present) if the entry is not in RAM. */
static inline __attribute__((always_inline)) uint64_t peek_pte(const struct peek_ram *r,
                                                               struct x86_code_cache *c,
                                                               uint64_t table, uint64_t linear,
                                                               unsigned shift)
{
        const uint64_t *e = peek(r, table + ((linear >> shift) & 511) * 8, 8);

        if (!e)
                return 0;
        c->pte[c->levels] = e;
        c->val[c->levels++] = *e;
        return c->val[c->levels - 1];
}

static __attribute__((noinline)) const uint8_t *code_walk(const struct gmem *m,
                                                          const struct x86_paging *p,
                                                          uint64_t linear, struct x86_code_cache *c)
{
        struct peek_ram r = {.m = m};
        uint64_t e, page, rsvd, mask = PAGE_SIZE - 1;

        if (m->count == 1) {
                r.base = gpa_raw(m->regions[0].base);
                r.size = m->regions[0].size;
                r.host = hva_ptr(arch_hpa_to_hva(m->regions[0].backing));
        }
        /*
         * Anything the full walk must look at declines: a reserved NX bit, PS in the PML4E,
         * a 1 GiB page the CPU does not have, an entry whose Accessed bit the full walk has
         * to set. (Address bits above MAXPHYADDR name no RAM, so peek declines them.)
         */
        rsvd = (p->efer & X86_PG_EFER_NXE) ? 0 : PTE_NX;
        c->levels = 0;
        e = peek_pte(&r, c, p->cr3 & PTE_ADDR, linear, 39);
        if ((e & (PTE_P | PTE_A | PTE_PS)) != (PTE_P | PTE_A) || (e & rsvd))
                return NULL;
        e = peek_pte(&r, c, e & PTE_ADDR, linear, 30);
        if ((e & (PTE_P | PTE_A)) != (PTE_P | PTE_A) || (e & rsvd))
                return NULL;
        if (e & PTE_PS) {
                if (!x86_gwalk_gbpages)
                        return NULL;
                mask = (1ull << 30) - 1;
                goto leaf;
        }
        e = peek_pte(&r, c, e & PTE_ADDR, linear, 21);
        if ((e & (PTE_P | PTE_A)) != (PTE_P | PTE_A) || (e & rsvd))
                return NULL;
        if (e & PTE_PS) {
                mask = (1ull << 21) - 1;
                goto leaf;
        }
        e = peek_pte(&r, c, e & PTE_ADDR, linear, 12);
        if ((e & (PTE_P | PTE_A)) != (PTE_P | PTE_A) || (e & rsvd))
                return NULL;
leaf:
        /* Reserved address bits of a large page (above the PAT bit): the slow walk reports
         * those properly. */
        page = e & PTE_ADDR;
        if (mask != PAGE_SIZE - 1 && (page & mask & ~0x1fffull))
                return NULL;
        page = (page & ~mask) | (linear & mask & ~(PAGE_SIZE - 1));
        return peek(&r, page, PAGE_SIZE);
}

/* A walk for x86_code_peek, remembered in `cache` (if any); levels = 0 when it fails. */
static __attribute__((noinline)) const uint8_t *code_peek_miss(const struct gmem *m,
                                                               const struct x86_paging *p,
                                                               uint64_t linear, unsigned off,
                                                               struct x86_code_cache *cache)
{
        struct x86_code_cache local;
        struct x86_code_cache *c = cache ? cache : &local;

        c->cr3 = p->cr3;
        c->lin_page = linear >> PAGE_SHIFT;
        c->page = code_walk(m, p, linear, c);
        if (!c->page) {
                c->levels = 0;
                return NULL;
        }
        return c->page + off;
}

const uint8_t *x86_code_peek(const struct gmem *m, const struct x86_paging *p, uint64_t linear,
                             size_t len, struct x86_code_cache *c)
{
        unsigned off = linear & (PAGE_SIZE - 1);

        if (off + len > PAGE_SIZE)
                return NULL;
        if (!(p->cr0 & X86_PG_CR0_PG))
                return linear > LIN32 ? NULL : gmem_peek(m, gpa(linear), len);
        if (!(p->efer & X86_PG_EFER_LMA) || (p->cr4 & X86_PG_CR4_LA57) ||
            (uint64_t)((int64_t)(linear << 16) >> 16) != linear)
                return NULL;
        if (c && c->levels && c->cr3 == p->cr3 && c->lin_page == linear >> PAGE_SHIFT) {
                unsigned i = 0;

                while (i < c->levels && *c->pte[i] == c->val[i])
                        i++;
                if (i == c->levels)
                        return c->page + off;
        }
        return code_peek_miss(m, p, linear, off, c);
}
