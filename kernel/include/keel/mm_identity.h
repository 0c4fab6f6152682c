/*
 * arch_hpa_to_hva / arch_hva_to_hpa for an arch whose host-virtual addresses equal
 * host-physical ones: x86_64 (Keel identity-maps all physical memory, docs/memory.md) and the
 * fake arch of the host tests (its "physical" addresses are host pointers). Included by those
 * arches' <arch/mm.h>; inline because it is on every exit path.
 */
#ifndef KEEL_MM_IDENTITY_H
#define KEEL_MM_IDENTITY_H

static inline hva_t arch_hpa_to_hva(hpa_t a)
{
        return hva((uintptr_t)hpa_raw(a));
}

static inline hpa_t arch_hva_to_hpa(hva_t a)
{
        return hpa((uint64_t)a.va);
}

#endif
