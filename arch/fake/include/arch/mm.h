/*
 * Host-physical <-> host-virtual. Keel identity-maps all physical memory (docs/memory.md),
 * so both directions are the identity; on the fake arch of the host tests "physical"
 * addresses are host pointers, which is the same identity. Inline: it is on every exit path.
 */
#ifndef ARCH_MM_H
#define ARCH_MM_H

static inline hva_t arch_hpa_to_hva(hpa_t a)
{
        return hva((uintptr_t)hpa_raw(a));
}

static inline hpa_t arch_hva_to_hpa(hva_t a)
{
        return hpa((uint64_t)a.va);
}

#endif
