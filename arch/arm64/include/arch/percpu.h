/*
 * arm64 per-CPU data. TPIDR_EL2 holds this CPU's struct arm64_percpu from arch_cpu_setup (boot
 * CPU) or arm64_ap_entry (secondaries) on, so arch_cpu_index() is one register read and one
 * load. The offsets are used by entry.S (assembler-safe part; checked in smp.c).
 */
#ifndef ARCH_PERCPU_H
#define ARCH_PERCPU_H

#define PERCPU_GUEST      0 /* struct vcpu_arch * arm64_guest_run entered (entry.S) */
#define PERCPU_EL2_MAIR   8 /* Keel's EL2 state, read by arm64_ap_entry with the MMU off */
#define PERCPU_EL2_TCR    16
#define PERCPU_EL2_TTBR0  24
#define PERCPU_EL2_SCTLR  32
#define PERCPU_EL2_VBAR   40
#define PERCPU_STACK_TOP  48
#define PERCPU_TRAP_STACK 56 /* top of the stack Keel's trap vectors switch to */
#define PERCPU_TRAP_X1    64 /* the vectors' scratch: the interrupted x1 */
#define PERCPU_TRAP_SP    72 /* the interrupted sp, for the report */

#ifndef __ASSEMBLER__
#include <stdint.h>

struct vcpu_arch;

struct arm64_percpu {
        struct vcpu_arch *guest; /* the vCPU on this CPU while it runs a guest (entry.S) */
        /* Copied from the boot CPU; read by a secondary with its MMU still off. */
        uint64_t el2_mair, el2_tcr, el2_ttbr0, el2_sctlr, el2_vbar;
        uint64_t stack_top;
        /*
         * Keel's own trap vectors leave the interrupted stack at once (it may be the one that
         * overflowed into its guard page) for this one, and report from there (entry.S).
         */
        uint64_t trap_stack_top, trap_x1, trap_sp;
        unsigned index;             /* arch_cpu_index() */
        uint64_t mpidr;             /* MPIDR_EL1 affinity of this CPU */
        uint64_t gicr;              /* this CPU's GICv3 redistributor (gic.c) */
        int state;                  /* smp.c: starting, up, online, abandoned */
        void (*ap_entry)(unsigned); /* what a secondary calls once it is up */
        uint64_t wake_at;           /* arch_cpu_idle wakes by this CNTPCT at the latest; 0: none */
        uint64_t run_until;         /* the running vCPU's slice end (arch_vcpu_run); 0: none */
};

static inline struct arm64_percpu *arm64_this_cpu(void)
{
        struct arm64_percpu *p;

        __asm__ volatile("mrs %0, tpidr_el2" : "=r"(p));
        return p;
}

/*
 * smp.c: the boot CPU's per-CPU data, installed in TPIDR_EL2 by arch_cpu_setup (before its
 * vectors), with the top of its trap stack.
 */
void arm64_percpu_boot_init(void *trap_stack_top);

struct hostmap;
struct boot_info;
/*
 * smp.c, before Keel's EL2 tables are built: allocate the per-CPU data and stacks of every
 * secondary the ACPI MADT lists, and the per-CPU tables sized from that count (arch_cpu_slots),
 * and record their guard pages.
 * 0 or -KEEL_E* (from hostmap_add).
 */
int arm64_smp_prepare(const struct boot_info *bi, struct hostmap *m);

/* smp.c: this CPU's next idle wait ends by CNTPCT `cnt` at the latest (a blocked vCPU's
 * timer); each arch_cpu_idle uses the earliest noted since the last one, then forgets it. */
void arm64_idle_wake_by(uint64_t cnt);
#endif

#endif
