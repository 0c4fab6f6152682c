/*
 * x86 long-mode page-table entries for the generic builder: Keel's own tables and AMD nested
 * page tables (formats and the reasons for each bit in arch/pt_x86.h and docs/memory.md).
 * Pure C: builds and decodes 64-bit values, never touches CR3 or the TLB.
 */
#include <keel/check.h>
#include <keel/pt.h>

#include <arch/pt_x86.h>

/* Every non-leaf entry: the leaf alone decides what an access may do. */
#define X86_TABLE_BITS (X86_PTE_P | X86_PTE_RW | X86_PTE_US | X86_PTE_A)

static uint64_t leaf_addr_mask(unsigned level)
{
        switch (level) {
        case 0:
                return X86_PTE_ADDR_MASK;
        case 1:
                return X86_PTE_ADDR_MASK_2M;
        default:
                return X86_PTE_ADDR_MASK_1G;
        }
}

static pte_t x86_table(hpa_t next)
{
        CHECK((hpa_raw(next) & ~X86_PTE_ADDR_MASK) == 0);
        return hpa_raw(next) | X86_TABLE_BITS;
}

static pte_t x86_leaf_common(hpa_t pa, unsigned level, unsigned attrs)
{
        pte_t e = X86_PTE_P | X86_PTE_A | X86_PTE_D;

        CHECK(level <= 2 && (hpa_raw(pa) & ~leaf_addr_mask(level)) == 0);
        e |= hpa_raw(pa);
        if (level > 0)
                e |= X86_PTE_PS;
        if (attrs & PT_WRITE)
                e |= X86_PTE_RW;
        if (attrs & PT_UNCACHED)
                e |= X86_PTE_PCD | X86_PTE_PWT;
        return e;
}

static pte_t x86_host_leaf(hpa_t pa, unsigned level, unsigned attrs)
{
        pte_t e = x86_leaf_common(pa, level, attrs);

        if (attrs & PT_USER)
                e |= X86_PTE_US;
        return e;
}

/* W^X host leaves: NX unless PT_EXEC (needs EFER.NXE, which Keel sets before using them). */
static pte_t x86_host_nx_leaf(hpa_t pa, unsigned level, unsigned attrs)
{
        pte_t e = x86_host_leaf(pa, level, attrs);

        if (!(attrs & PT_EXEC))
                e |= X86_PTE_NX;
        return e;
}

static pte_t x86_npt_leaf(hpa_t pa, unsigned level, unsigned attrs)
{
        return x86_leaf_common(pa, level, attrs) | X86_PTE_US;
}

static bool x86_present(pte_t e)
{
        return e & X86_PTE_P;
}

static bool x86_is_leaf(pte_t e, unsigned level)
{
        if (level == 0)
                return true;
        /* PS is reserved in a PML4E; in a PDPTE/PDE it marks a 1 GiB / 2 MiB leaf. */
        return level <= 2 && (e & X86_PTE_PS);
}

static hpa_t x86_addr(pte_t e, unsigned level)
{
        if (level > 0 && x86_is_leaf(e, level))
                return hpa(e & leaf_addr_mask(level));
        return hpa(e & X86_PTE_ADDR_MASK);
}

/* What the entry actually permits (so PT_READ always, PT_EXEC unless NX is set). */
static unsigned x86_attrs(pte_t e, unsigned level)
{
        unsigned a = PT_READ;

        (void)level;
        if (e & X86_PTE_RW)
                a |= PT_WRITE;
        if (!(e & X86_PTE_NX))
                a |= PT_EXEC;
        if (e & X86_PTE_US)
                a |= PT_USER;
        if (e & X86_PTE_PCD)
                a |= PT_UNCACHED;
        return a;
}

const struct pt_format x86_pt_host = {
    .name = "x86-host",
    .table = x86_table,
    .leaf = x86_host_leaf,
    .present = x86_present,
    .is_leaf = x86_is_leaf,
    .addr = x86_addr,
    .attrs = x86_attrs,
    .max_leaf_level = 1,
};

const struct pt_format x86_pt_host_1g = {
    .name = "x86-host-1g",
    .table = x86_table,
    .leaf = x86_host_leaf,
    .present = x86_present,
    .is_leaf = x86_is_leaf,
    .addr = x86_addr,
    .attrs = x86_attrs,
    .max_leaf_level = 2,
};

const struct pt_format x86_pt_host_nx = {
    .name = "x86-host-nx",
    .table = x86_table,
    .leaf = x86_host_nx_leaf,
    .present = x86_present,
    .is_leaf = x86_is_leaf,
    .addr = x86_addr,
    .attrs = x86_attrs,
    .max_leaf_level = 1,
};

const struct pt_format x86_pt_npt = {
    .name = "x86-npt",
    .table = x86_table,
    .leaf = x86_npt_leaf,
    .present = x86_present,
    .is_leaf = x86_is_leaf,
    .addr = x86_addr,
    .attrs = x86_attrs,
    .max_leaf_level = 1,
};

const struct pt_format x86_pt_npt_1g = {
    .name = "x86-npt-1g",
    .table = x86_table,
    .leaf = x86_npt_leaf,
    .present = x86_present,
    .is_leaf = x86_is_leaf,
    .addr = x86_addr,
    .attrs = x86_attrs,
    .max_leaf_level = 2,
};

/*
 * Intel EPT (SDM 29.3.2): bits 0-2 read/write/execute, in leaves bits 5:3 the memory type
 * (6 = write-back, 0 = uncacheable for PT_UNCACHED) and bit 7 for 2 MiB / 1 GiB leaves.
 * Non-leaf entries allow everything; the leaf decides.
 */
static pte_t ept_table(hpa_t next)
{
        CHECK((hpa_raw(next) & ~X86_PTE_ADDR_MASK) == 0);
        return hpa_raw(next) | X86_EPT_RWX;
}

static pte_t ept_leaf(hpa_t pa, unsigned level, unsigned attrs)
{
        pte_t e = hpa_raw(pa);

        CHECK(level <= 2 && (hpa_raw(pa) & ~leaf_addr_mask(level)) == 0);
        if (level > 0)
                e |= X86_PTE_PS;
        if (attrs & PT_READ)
                e |= X86_EPT_R;
        if (attrs & PT_WRITE)
                e |= X86_EPT_W;
        if (attrs & PT_EXEC)
                e |= X86_EPT_X;
        if (!(attrs & PT_UNCACHED))
                e |= X86_EPT_MT_WB;
        return e;
}

static bool ept_present(pte_t e)
{
        return e & X86_EPT_RWX;
}

static unsigned ept_attrs(pte_t e, unsigned level)
{
        unsigned a = 0;

        (void)level;
        if (e & X86_EPT_R)
                a |= PT_READ;
        if (e & X86_EPT_W)
                a |= PT_WRITE;
        if (e & X86_EPT_X)
                a |= PT_EXEC;
        if (!(e & X86_EPT_MT_WB))
                a |= PT_UNCACHED;
        return a;
}

/* The two EPT formats differ only in the largest leaf the CPU's EPT allows. */
#define X86_EPT_FORMAT(fmt_name, max_leaf)                                                      \
        {                                                                                       \
                .name = fmt_name, .table = ept_table, .leaf = ept_leaf, .present = ept_present, \
                .is_leaf = x86_is_leaf, .addr = x86_addr, .attrs = ept_attrs,                   \
                .max_leaf_level = max_leaf,                                                     \
        }

const struct pt_format x86_pt_ept_1g = X86_EPT_FORMAT("x86-ept-1g", 2);
const struct pt_format x86_pt_ept = X86_EPT_FORMAT("x86-ept", 1);
const struct pt_format x86_pt_ept_4k = X86_EPT_FORMAT("x86-ept-4k", 0);
