/*
 * Guest registers that the guest reaches directly (no exit) but that the VMCB / VMCS does
 * not switch: Keel keeps a copy per vCPU and switches them itself at the boundaries of a
 * vCPU's run on a CPU (arch_vcpu_run), never per exit: Keel itself does not use them, so
 * between a run's exits they may stay the guest's. Which registers a backend needs switched
 * is its x86_vendor.swregs; the full list of what a guest reaches, and who switches it, is
 * docs/x86-state.md.
 */
#ifndef ARCH_SWREGS_H
#define ARCH_SWREGS_H

#include <stdbool.h>
#include <stdint.h>

struct x86_swregs {
        uint64_t dr[4];   /* DR0-DR3: breakpoint addresses */
        uint64_t dr6;     /* VMX only: SVM's VMCB holds DR6 (and DR7) */
        uint64_t cr2;     /* VMX only: SVM's VMCB holds CR2 */
        uint64_t tsc_aux; /* what RDTSCP and RDPID return */
        /* VMX only: SVM's VMLOAD/VMSAVE switch these */
        uint64_t kernel_gs_base, star, lstar, cstar, sfmask;
};

/* Sets of registers, for x86_vendor.swregs. */
#define X86_SWREGS_DR0_3   (1u << 0)
#define X86_SWREGS_DR6_CR2 (1u << 1)
#define X86_SWREGS_TSC_AUX (1u << 2) /* only where the CPU has TSC_AUX (RDTSCP or RDPID) */
#define X86_SWREGS_SYSCALL (1u << 3) /* KERNEL_GS_BASE, STAR, LSTAR, CSTAR, SFMASK */

/* The values after RESET / INIT: all 0 but DR6 (0xffff0ff0). */
void x86_swregs_reset(struct x86_swregs *r);
/* On each CPU before its first vCPU run: what the CPU holds now. */
void x86_swregs_cpu_enable(void);
/* Does the CPU have TSC_AUX (RDTSCP or RDPID)? Where it has not, the backends intercept the
 * MSR (#GP) rather than pass it through (QEMU's TCG would keep one value for every VM). */
bool x86_swregs_have_tsc_aux(void);
/*
 * Start of a run on this CPU: the vCPU's registers of `set`; only those that differ from
 * what the CPU already holds are written (a vCPU that runs again where it ran last, or
 * whose values equal the last one's, costs no write).
 */
void x86_swregs_load(const struct x86_swregs *r, unsigned set);
/* End of a run: the guest's registers of `set` back into its copy. */
void x86_swregs_save(struct x86_swregs *r, unsigned set);

#endif
