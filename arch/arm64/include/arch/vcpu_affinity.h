/*
 * A vCPU's MPIDR affinity (pure, host-tested): vCPU i has Aff0 = i % 16, Aff1 = i / 16,
 * Aff3..Aff2 = 0. Without range selectors (the guest's GICD_TYPER.RSS = 0, so ICC_SGI1R_EL1.RS
 * is RES0) a targeted SGI names Aff0 values 0..15 only: 16 vCPUs share each Aff1 value, and
 * every vCPU is an SGI target. The vGIC (GICR_TYPER, GICD_IROUTER, ICC_SGI1R_EL1), VMPIDR_EL2,
 * the device tree's cpu nodes and PSCI's target CPUs all use this mapping.
 */
#ifndef ARCH_ARM64_VCPU_AFFINITY_H
#define ARCH_ARM64_VCPU_AFFINITY_H

#include <stdint.h>

#define VGIC_NO_VCPU 0xff

/* The affinity of vCPU `idx` as MPIDR_EL1, GICR_TYPER and GICD_IROUTER hold it (Aff1 15:8,
 * Aff0 7:0): Aff0 = idx % 16, Aff1 = idx / 16. */
static inline uint64_t vgic_vcpu_mpidr(unsigned idx)
{
        return (uint64_t)(idx / 16) << 8 | idx % 16;
}

/* The vCPU of `nr_vcpus` whose affinity is `aff` (Aff3 39:32, Aff2 23:16, Aff1 15:8, Aff0 7:0,
 * every other bit 0), or VGIC_NO_VCPU if there is none. */
static inline unsigned vgic_mpidr_vcpu(uint64_t aff, unsigned nr_vcpus)
{
        unsigned idx = (unsigned)((aff >> 8 & 0xff) * 16 + (aff & 0xff));

        if ((aff & ~0xffffull) || (aff & 0xff) >= 16 || idx >= nr_vcpus)
                return VGIC_NO_VCPU;
        return idx;
}

#endif
