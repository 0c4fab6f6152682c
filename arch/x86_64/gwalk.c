/*
 * Guest page-table walker: see arch/gwalk.h. Written from the Intel SDM Vol. 3 chapter 4
 * (Paging) and the AMD APM Vol. 2 chapter 5 (Page Translation and Protection).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <keel/addr.h>
#include <keel/errno.h>
#include <vmm/gmem.h>
#include <arch/gwalk.h>

#define PTE_P    (1ull << 0)
#define PTE_RW   (1ull << 1)
#define PTE_US   (1ull << 2)
#define PTE_PS   (1ull << 7)
#define PTE_NX   (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull /* bits 51:12 */
#define LIN32    0xffffffffull

/* Rights accumulated along the walk. */
struct rights {
        bool rw, us, nx;
};

static int fault(struct x86_xlate *out, uint8_t why, uint32_t err)
{
        out->fault = why;
        out->pf_error = err;
        return -KEEL_EFAULT;
}

static int read_pte64(const struct gmem *m, uint64_t addr, uint64_t *e)
{
        return gmem_read(m, gpa(addr), e, sizeof(*e));
}

static int read_pte32(const struct gmem *m, uint64_t addr, uint64_t *e)
{
        uint32_t v;
        int r = gmem_read(m, gpa(addr), &v, sizeof(v));

        *e = v;
        return r;
}

static uint32_t acc_bits(unsigned access, bool nx_on)
{
        uint32_t err = 0;

        if (access & X86_ACC_WRITE)
                err |= X86_PF_W;
        if (access & X86_ACC_USER)
                err |= X86_PF_U;
        if ((access & X86_ACC_FETCH) && nx_on)
                err |= X86_PF_I;
        return err;
}

/* Permission check of a complete translation. */
static int check_rights(const struct x86_paging *p, const struct rights *rt, unsigned access,
                        bool nx_on, struct x86_xlate *out)
{
        bool user = access & X86_ACC_USER;
        bool bad = false;

        if ((access & X86_ACC_WRITE) && !rt->rw && (user || (p->cr0 & X86_PG_CR0_WP)))
                bad = true;
        if (user && !rt->us)
                bad = true;
        if (access & X86_ACC_FETCH) {
                if (rt->nx)
                        bad = true;
                if (!user && rt->us && (p->cr4 & X86_PG_CR4_SMEP))
                        bad = true;
        }
        if (bad)
                return fault(out, X86_XLATE_PF, X86_PF_P | acc_bits(access, nx_on));
        return 0;
}

static void take(struct rights *rt, uint64_t e, bool nx_on)
{
        rt->rw = rt->rw && (e & PTE_RW);
        rt->us = rt->us && (e & PTE_US);
        rt->nx = rt->nx || (nx_on && (e & PTE_NX));
}

/*
 * The 64-bit-entry levels shared by long mode (from level 3) and PAE (from level 1, after
 * the PDPTE). Level 0 maps 4 KiB; levels 1 and 2 may map 2 MiB / 1 GiB with PS.
 */
static int walk64(const struct gmem *m, const struct x86_paging *p, uint64_t gva, unsigned access,
                  uint64_t table, int level, struct rights *rt, bool nx_on, struct x86_xlate *out)
{
        uint32_t miss = acc_bits(access, nx_on);

        for (;; level--) {
                unsigned shift = 12 + 9 * (unsigned)level;
                uint64_t e;

                if (read_pte64(m, table + ((gva >> shift) & 511) * 8, &e))
                        return fault(out, X86_XLATE_BAD_TABLE, 0);
                if (!(e & PTE_P))
                        return fault(out, X86_XLATE_PF, miss);
                take(rt, e, nx_on);
                if (level == 0 || ((level == 1 || level == 2) && (e & PTE_PS))) {
                        uint64_t size = 1ull << shift;

                        out->page_size = size;
                        out->gpa = gpa(((e & PTE_ADDR) & ~(size - 1)) | (gva & (size - 1)));
                        return check_rights(p, rt, access, nx_on, out);
                }
                table = e & PTE_ADDR;
        }
}

int x86_translate(const struct gmem *m, const struct x86_paging *p, uint64_t gva, unsigned access,
                  struct x86_xlate *out)
{
        struct rights rt = {true, true, false};
        bool nx_on = (p->efer & X86_PG_EFER_NXE) != 0;
        uint64_t e;

        out->fault = X86_XLATE_OK;
        out->pf_error = 0;
        out->gpa = gpa(0);
        out->page_size = PAGE_SIZE;

        if (!(p->cr0 & X86_PG_CR0_PG)) {
                out->gpa = gpa(gva & LIN32);
                return 0;
        }
        if (p->efer & X86_PG_EFER_LMA) {
                if (p->cr4 & X86_PG_CR4_LA57)
                        return -KEEL_ENOTSUP;
                if ((uint64_t)((int64_t)(gva << 16) >> 16) != gva)
                        return fault(out, X86_XLATE_NONCANON, 0);
                return walk64(m, p, gva, access, p->cr3 & PTE_ADDR, 3, &rt, nx_on, out);
        }
        gva &= LIN32;
        if (p->cr4 & X86_PG_CR4_PAE) {
                /* PDPTEs carry no RW/US/NX rights. */
                uint64_t pdpt = p->cr3 & 0xffffffe0ull;

                if (read_pte64(m, pdpt + (gva >> 30) * 8, &e))
                        return fault(out, X86_XLATE_BAD_TABLE, 0);
                if (!(e & PTE_P))
                        return fault(out, X86_XLATE_PF, acc_bits(access, nx_on));
                return walk64(m, p, gva, access, e & PTE_ADDR, 1, &rt, nx_on, out);
        }

        /* 32-bit paging: no NX. */
        nx_on = false;
        if (read_pte32(m, (p->cr3 & 0xfffff000ull) + (gva >> 22) * 4, &e))
                return fault(out, X86_XLATE_BAD_TABLE, 0);
        if (!(e & PTE_P))
                return fault(out, X86_XLATE_PF, acc_bits(access, false));
        take(&rt, e, false);
        if ((e & PTE_PS) && (p->cr4 & X86_PG_CR4_PSE)) {
                /* 4 MiB page: PA bits 31:22 from 31:22, PA bits 39:32 from PDE bits 20:13. */
                uint64_t base = (e & 0xffc00000ull) | (((e >> 13) & 0xffull) << 32);

                out->page_size = 1ull << 22;
                out->gpa = gpa(base | (gva & 0x3fffffull));
                return check_rights(p, &rt, access, false, out);
        }
        if (read_pte32(m, (e & 0xfffff000ull) + ((gva >> 12) & 0x3ff) * 4, &e))
                return fault(out, X86_XLATE_BAD_TABLE, 0);
        if (!(e & PTE_P))
                return fault(out, X86_XLATE_PF, acc_bits(access, false));
        take(&rt, e, false);
        out->gpa = gpa((e & 0xfffff000ull) | (gva & 0xfff));
        return check_rights(p, &rt, access, false, out);
}

int x86_gva_to_gpa(const struct gmem *m, const struct x86_paging *p, uint64_t gva, bool write,
                   gpa_t *out)
{
        struct x86_xlate x;
        int r = x86_translate(m, p, gva, write ? X86_ACC_WRITE : 0, &x);

        if (r)
                return r;
        *out = x.gpa;
        return 0;
}

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
        uint64_t e, page, mask = PAGE_SIZE - 1;

        if (m->count == 1) {
                r.base = gpa_raw(m->regions[0].base);
                r.size = m->regions[0].size;
                r.host = hva_ptr(arch_hpa_to_hva(m->regions[0].backing));
        }
        c->levels = 0;
        e = peek_pte(&r, c, p->cr3 & PTE_ADDR, linear, 39);
        if (!(e & PTE_P))
                return NULL;
        e = peek_pte(&r, c, e & PTE_ADDR, linear, 30);
        if ((e & (PTE_P | PTE_PS)) == (PTE_P | PTE_PS)) {
                mask = (1ull << 30) - 1;
                goto leaf;
        }
        if (!(e & PTE_P))
                return NULL;
        e = peek_pte(&r, c, e & PTE_ADDR, linear, 21);
        if ((e & (PTE_P | PTE_PS)) == (PTE_P | PTE_PS)) {
                mask = (1ull << 21) - 1;
                goto leaf;
        }
        if (!(e & PTE_P))
                return NULL;
        e = peek_pte(&r, c, e & PTE_ADDR, linear, 12);
        if (!(e & PTE_P))
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

int x86_fetch_insn(const struct gmem *m, const struct x86_paging *p, uint64_t linear_rip,
                   uint8_t buf[15], size_t *fetched)
{
        struct x86_xlate x;
        size_t first = PAGE_SIZE - (linear_rip & (PAGE_SIZE - 1));
        int r;

        *fetched = 0;
        if (first > 15)
                first = 15;
        r = x86_translate(m, p, linear_rip, 0, &x);
        if (r)
                return r;
        /* A 4 KiB page lies inside one gmem region or entirely outside guest RAM. */
        if (gmem_read(m, x.gpa, buf, first))
                return -KEEL_EFAULT;
        *fetched = first;
        if (first == 15)
                return 15;
        /* The rest lies on the next linear page (x86_translate wraps it at 4 GiB outside long
         * mode; in long mode a non-canonical next page simply ends the fetch). */
        if (x86_translate(m, p, linear_rip + first, 0, &x) == 0 &&
            gmem_read(m, x.gpa, buf + first, 15 - first) == 0)
                *fetched = 15;
        return (int)*fetched;
}
