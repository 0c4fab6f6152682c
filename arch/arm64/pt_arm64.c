/*
 * arm64 descriptors for the generic page-table builder (formats in arch/pt_arm64.h). Pure C:
 * builds and decodes 64-bit values, never touches a translation register or the TLB.
 */
#include <keel/check.h>
#include <keel/pt.h>

#include <arch/pt_arm64.h>

static uint64_t leaf_mask(unsigned level)
{
        return ARM64_PTE_ADDR_MASK & ~((1ull << (12 + 9 * level)) - 1);
}

static pte_t arm64_table(hpa_t next)
{
        CHECK((hpa_raw(next) & ~ARM64_PTE_ADDR_MASK) == 0);
        return hpa_raw(next) | ARM64_PTE_VALID | ARM64_PTE_TABLE;
}

/* Address, type (page or block), AF and XN: what both stages' leaves share. */
static pte_t leaf_common(hpa_t pa, unsigned level, unsigned attrs)
{
        pte_t e = hpa_raw(pa) | ARM64_PTE_VALID | ARM64_PTE_AF;

        CHECK(level <= 2 && (hpa_raw(pa) & ~leaf_mask(level)) == 0);
        if (level == 0)
                e |= ARM64_PTE_TABLE; /* a level-3 page descriptor */
        if (!(attrs & PT_EXEC))
                e |= ARM64_PTE_XN;
        if (!(attrs & PT_UNCACHED))
                e |= ARM64_PTE_SH_INNER;
        return e;
}

static pte_t el2_leaf(hpa_t pa, unsigned level, unsigned attrs)
{
        pte_t e = leaf_common(pa, level, attrs) | ARM64_PTE_AP1;

        e |= ARM64_PTE_ATTRIDX((attrs & PT_UNCACHED) ? ARM64_MAIR_DEVICE : ARM64_MAIR_NORMAL);
        if (!(attrs & PT_WRITE))
                e |= ARM64_PTE_AP_RO;
        return e;
}

static pte_t s2_leaf(hpa_t pa, unsigned level, unsigned attrs)
{
        pte_t e = leaf_common(pa, level, attrs);

        e |= (attrs & PT_UNCACHED) ? ARM64_S2_MEMATTR_DEV : ARM64_S2_MEMATTR_WB;
        if (attrs & PT_READ)
                e |= ARM64_S2_AP_R;
        if (attrs & PT_WRITE)
                e |= ARM64_S2_AP_W;
        return e;
}

static bool arm64_present(pte_t e)
{
        return e & ARM64_PTE_VALID;
}

static bool arm64_is_leaf(pte_t e, unsigned level)
{
        /* Level 3 (generic 0) holds pages; above, bit 1 clear marks a block. */
        return level == 0 || (level <= 2 && !(e & ARM64_PTE_TABLE));
}

/* A block keeps only the address bits of its size; tables and pages use bits 47:12. */
static hpa_t arm64_addr(pte_t e, unsigned level)
{
        return hpa(e & (arm64_is_leaf(e, level) ? leaf_mask(level) : ARM64_PTE_ADDR_MASK));
}

static unsigned el2_attrs(pte_t e, unsigned level)
{
        unsigned a = PT_READ;

        (void)level;
        if (!(e & ARM64_PTE_AP_RO))
                a |= PT_WRITE;
        if (!(e & ARM64_PTE_XN))
                a |= PT_EXEC;
        if ((e & ARM64_PTE_ATTRIDX(7)) == ARM64_PTE_ATTRIDX(ARM64_MAIR_DEVICE))
                a |= PT_UNCACHED;
        return a;
}

static unsigned s2_attrs(pte_t e, unsigned level)
{
        unsigned a = 0;

        (void)level;
        if (e & ARM64_S2_AP_R)
                a |= PT_READ;
        if (e & ARM64_S2_AP_W)
                a |= PT_WRITE;
        if (!(e & ARM64_PTE_XN))
                a |= PT_EXEC;
        if ((e & (0xfull << 2)) == ARM64_S2_MEMATTR_DEV)
                a |= PT_UNCACHED;
        return a;
}

/*
 * Both stages share the table shape and the decoding of addresses; leaves differ. Blocks at
 * every level the 4 KiB granule has them (1 GiB, 2 MiB); changing a valid descriptor's output
 * or size (a block split into a table) needs break-before-make (Arm ARM D8.16.1).
 */
#define ARM64_FORMAT(fmt_name, leaf_fn, attrs_fn)                                                  \
        {                                                                                          \
                .name = fmt_name, .table = arm64_table, .leaf = leaf_fn, .present = arm64_present, \
                .is_leaf = arm64_is_leaf, .addr = arm64_addr, .attrs = attrs_fn,                   \
                .max_leaf_level = 2, .break_before_make = true,                                    \
        }

const struct pt_format arm64_pt_el2 = ARM64_FORMAT("arm64-el2", el2_leaf, el2_attrs);
const struct pt_format arm64_pt_s2 = ARM64_FORMAT("arm64-stage2", s2_leaf, s2_attrs);
