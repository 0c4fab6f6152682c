/* Spin-wait hint for this arch (PAUSE), used by keel/spinlock.h. */
#ifndef ARCH_RELAX_H
#define ARCH_RELAX_H

static inline void arch_cpu_relax(void)
{
        __asm__ volatile("pause" ::: "memory");
}

#endif
