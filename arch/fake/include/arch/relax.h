/* Spin-wait hint of the fake arch (host tests): a compiler barrier. */
#ifndef ARCH_RELAX_H
#define ARCH_RELAX_H

static inline void arch_cpu_relax(void)
{
        __asm__ volatile("" ::: "memory");
}

#endif
