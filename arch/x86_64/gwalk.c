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

#include "gwalk_bits.h"

/* Rights accumulated along the walk. */
struct rights {
        bool rw, us, nx;
};

/* The CPU's paging features (x86_gwalk_set_cpu); the defaults suit the host tests. */
static unsigned cpu_maxphyaddr = 52;
bool x86_gwalk_gbpages = true;

__attribute__((cold)) void x86_gwalk_set_cpu(unsigned maxphyaddr, bool gbpages)
{
        cpu_maxphyaddr = maxphyaddr >= 32 && maxphyaddr <= 52 ? maxphyaddr : 52;
        x86_gwalk_gbpages = gbpages;
}

/* Address bits 51:MAXPHYADDR of an entry, reserved at every level (SDM 4.5, APM 5.3.1). */
static uint64_t rsvd_addr(void)
{
        return PTE_ADDR & ~((1ull << cpu_maxphyaddr) - 1);
}

/* Entries a successful walk used, for the Accessed/Dirty update (at most 4). */
struct used {
        uint64_t addr[4], val[4];
        unsigned n;
        bool wide; /* 64-bit entries (32-bit paging: 32-bit ones) */
};

static void note(struct used *u, uint64_t addr, uint64_t val)
{
        if (u->n < 4) {
                u->addr[u->n] = addr;
                u->val[u->n++] = val;
        }
}

/*
 * Set Accessed in every entry the walk used and Dirty in the leaf for a write, as the CPU
 * does on a walk (SDM 4.8, APM 5.4.2): atomically, and only in an entry still holding the
 * value the walk read (another vCPU may have changed it since; the CPU's locked update of
 * an entry it walked is the same).
 */
static void set_ad(const struct gmem *m, const struct used *u, bool write)
{
        for (unsigned i = 0; i < u->n; i++) {
                uint64_t want = u->val[i] | PTE_A | (write && i == u->n - 1 ? PTE_D : 0);
                hpa_t h;

                if (want == u->val[i] || gmem_translate(m, gpa(u->addr[i]), u->wide ? 8 : 4, &h))
                        continue;
                if (u->wide) {
                        uint64_t old = u->val[i];

                        __atomic_compare_exchange_n((uint64_t *)hva_ptr(arch_hpa_to_hva(h)), &old,
                                                    want, false, __ATOMIC_SEQ_CST,
                                                    __ATOMIC_SEQ_CST);
                } else {
                        uint32_t old = (uint32_t)u->val[i];

                        __atomic_compare_exchange_n((uint32_t *)hva_ptr(arch_hpa_to_hva(h)), &old,
                                                    (uint32_t)want, false, __ATOMIC_SEQ_CST,
                                                    __ATOMIC_SEQ_CST);
                }
        }
}

static int fault(struct x86_xlate *out, uint8_t why, uint32_t err)
{
        out->fault = why;
        out->pf_error = err;
        return -KEEL_EFAULT;
}

/* An entry outside guest RAM: out->gpa says where. */
static int bad_table(struct x86_xlate *out, uint64_t entry)
{
        out->gpa = gpa(entry);
        return fault(out, X86_XLATE_BAD_TABLE, 0);
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

/* The W/U/I bits of a #PF error code for `access`; `fetch_i`: the CPU reports I (NX on
 * with PAE or long mode, or SMEP). */
static uint32_t acc_bits(unsigned access, bool fetch_i)
{
        uint32_t err = 0;

        if (access & X86_ACC_WRITE)
                err |= X86_PF_W;
        if (access & X86_ACC_USER)
                err |= X86_PF_U;
        if ((access & X86_ACC_FETCH) && fetch_i)
                err |= X86_PF_I;
        return err;
}

static int rsvd_fault(struct x86_xlate *out, unsigned access, bool fetch_i)
{
        return fault(out, X86_XLATE_PF, X86_PF_P | X86_PF_RSVD | acc_bits(access, fetch_i));
}

/* One walk: what was asked, what the entries allowed so far, the entries used. */
struct walk {
        const struct gmem *m;
        const struct x86_paging *p;
        unsigned access;
        bool nx_on;   /* EFER.NXE in PAE or long mode: bit 63 is NX, not reserved */
        bool fetch_i; /* a fetch's #PF reports I */
        struct rights rt;
        struct used used;
        struct x86_xlate *out;
};

/* Permission check of a complete translation, then the Accessed/Dirty update if asked. */
static int finish(struct walk *w)
{
        const struct x86_paging *p = w->p;
        bool user = w->access & X86_ACC_USER;
        bool bad = false;

        if ((w->access & X86_ACC_WRITE) && !w->rt.rw && (user || (p->cr0 & X86_PG_CR0_WP)))
                bad = true;
        if (user && !w->rt.us)
                bad = true;
        if (w->access & X86_ACC_FETCH) {
                if (w->rt.nx)
                        bad = true;
                if (!user && w->rt.us && (p->cr4 & X86_PG_CR4_SMEP))
                        bad = true;
        }
        if (bad)
                return fault(w->out, X86_XLATE_PF, X86_PF_P | acc_bits(w->access, w->fetch_i));
        if (w->access & X86_ACC_SET_AD)
                set_ad(w->m, &w->used, w->access & X86_ACC_WRITE);
        return 0;
}

static void take(struct walk *w, uint64_t e)
{
        w->rt.rw = w->rt.rw && (e & PTE_RW);
        w->rt.us = w->rt.us && (e & PTE_US);
        w->rt.nx = w->rt.nx || (w->nx_on && (e & PTE_NX));
}

/*
 * The 64-bit-entry levels shared by long mode (from level 3) and PAE (from level 1, after
 * the PDPTE). Level 0 maps 4 KiB; level 1 may map 2 MiB with PS, level 2 1 GiB (if the CPU
 * has 1 GiB pages). Reserved bits: 51:MAXPHYADDR everywhere (PAE: 62:MAXPHYADDR), NX
 * without EFER.NXE, PS in the PML4E, the address bits below a large page's size except PAT.
 */
static int walk64(struct walk *w, uint64_t gva, uint64_t table, int level)
{
        bool pae = !(w->p->efer & X86_PG_EFER_LMA);
        uint64_t rsvd = rsvd_addr() | (w->nx_on ? 0 : PTE_NX) | (pae ? 0x7ff0000000000000ull : 0);

        for (;; level--) {
                unsigned shift = 12 + 9 * (unsigned)level;
                uint64_t at = table + ((gva >> shift) & 511) * 8, e;

                if (read_pte64(w->m, at, &e))
                        return bad_table(w->out, at);
                if (!(e & PTE_P))
                        return fault(w->out, X86_XLATE_PF, acc_bits(w->access, w->fetch_i));
                if ((e & rsvd) || (level == 3 && (e & PTE_PS)) ||
                    (level == 2 && (e & PTE_PS) && !x86_gwalk_gbpages))
                        return rsvd_fault(w->out, w->access, w->fetch_i);
                note(&w->used, at, e);
                take(w, e);
                if (level == 0 || ((level == 1 || level == 2) && (e & PTE_PS))) {
                        uint64_t size = 1ull << shift;

                        /* Bits 12 (PAT) .. size: reserved above the PAT bit. */
                        if (level && (e & (size - 1) & ~0x1fffull))
                                return rsvd_fault(w->out, w->access, w->fetch_i);
                        w->out->page_size = size;
                        w->out->gpa = gpa(((e & PTE_ADDR) & ~(size - 1)) | (gva & (size - 1)));
                        return finish(w);
                }
                table = e & PTE_ADDR;
        }
}

int x86_translate(const struct gmem *m, const struct x86_paging *p, uint64_t gva, unsigned access,
                  struct x86_xlate *out)
{
        bool nx_on = (p->efer & X86_PG_EFER_NXE) != 0;
        struct walk w = {.m = m,
                         .p = p,
                         .access = access,
                         .nx_on = nx_on,
                         .fetch_i = nx_on || (p->cr4 & X86_PG_CR4_SMEP),
                         .rt = {true, true, false},
                         .used = {.wide = true},
                         .out = out};
        uint64_t e, at;

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
                return walk64(&w, gva, p->cr3 & PTE_ADDR, 3);
        }
        gva &= LIN32;
        if (p->cr4 & X86_PG_CR4_PAE) {
                /*
                 * PDPTEs carry no RW/US/NX rights. Read here at walk time, as AMD's nested
                 * paging and QEMU do (Intel loads them at MOV CR3, where reserved bits are a
                 * #GP); reserved: 63:MAXPHYADDR.
                 */
                uint64_t pdpt = p->cr3 & 0xffffffe0ull;

                at = pdpt + (gva >> 30) * 8;
                if (read_pte64(m, at, &e))
                        return bad_table(out, at);
                if (!(e & PTE_P))
                        return fault(out, X86_XLATE_PF, acc_bits(access, w.fetch_i));
                if (e & (rsvd_addr() | 0xfff0000000000000ull))
                        return rsvd_fault(out, access, w.fetch_i);
                return walk64(&w, gva, e & PTE_ADDR, 1);
        }

        /* 32-bit paging: no NX, no reserved bits but in a 4 MiB page. */
        w.nx_on = false;
        w.fetch_i = (p->cr4 & X86_PG_CR4_SMEP) != 0;
        w.used.wide = false;
        at = (p->cr3 & 0xfffff000ull) + (gva >> 22) * 4;
        if (read_pte32(m, at, &e))
                return bad_table(out, at);
        if (!(e & PTE_P))
                return fault(out, X86_XLATE_PF, acc_bits(access, w.fetch_i));
        note(&w.used, at, e);
        take(&w, e);
        if ((e & PTE_PS) && (p->cr4 & X86_PG_CR4_PSE)) {
                /*
                 * 4 MiB page: PA bits 31:22 from 31:22, PA bits 39:32 from PDE bits 20:13.
                 * Bit 21 is reserved, and so are PA bits above MAXPHYADDR.
                 */
                uint64_t base = (e & 0xffc00000ull) | (((e >> 13) & 0xffull) << 32);

                if ((e & (1ull << 21)) || (base & rsvd_addr()))
                        return rsvd_fault(out, access, w.fetch_i);
                out->page_size = 1ull << 22;
                out->gpa = gpa(base | (gva & 0x3fffffull));
                return finish(&w);
        }
        at = (e & 0xfffff000ull) + ((gva >> 12) & 0x3ff) * 4;
        if (read_pte32(m, at, &e))
                return bad_table(out, at);
        if (!(e & PTE_P))
                return fault(out, X86_XLATE_PF, acc_bits(access, w.fetch_i));
        note(&w.used, at, e);
        take(&w, e);
        out->gpa = gpa((e & 0xfffff000ull) | (gva & 0xfff));
        return finish(&w);
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

int x86_fetch_insn(const struct gmem *m, const struct x86_paging *p, uint64_t linear_rip,
                   uint8_t buf[15], size_t *fetched)
{
        struct x86_xlate x, next;
        size_t first = PAGE_SIZE - (linear_rip & (PAGE_SIZE - 1));
        int r, r_next = -KEEL_EFAULT;

        *fetched = 0;
        if (first > 15)
                first = 15;
        r = x86_translate(m, p, linear_rip, X86_ACC_SET_AD, &x);
        if (r)
                return r;
        /* The rest lies on the next linear page (x86_translate wraps it at 4 GiB outside long
         * mode; in long mode a non-canonical next page simply ends the fetch). Both walks
         * before any byte is read: their Accessed bits may land in the bytes fetched. */
        if (first < 15)
                r_next = x86_translate(m, p, linear_rip + first, X86_ACC_SET_AD, &next);
        /* A 4 KiB page lies inside one gmem region or entirely outside guest RAM. */
        if (gmem_read(m, x.gpa, buf, first))
                return -KEEL_EFAULT;
        *fetched = first;
        if (first < 15 && r_next == 0 && gmem_read(m, next.gpa, buf + first, 15 - first) == 0)
                *fetched = 15;
        return (int)*fetched;
}
