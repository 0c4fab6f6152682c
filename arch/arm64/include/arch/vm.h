/*
 * arm64 parts of VMs and vCPUs, embedded in the generic struct vm / struct vcpu (Bao's
 * pattern): stage-2 tables and VMID, the emulated GICv3 and PL011, and each vCPU's saved
 * registers. The first fields of struct vcpu_arch are read and written by entry.S at the
 * offsets below (checked with static asserts in vcpu.c).
 */
#ifndef ARCH_VM_H
#define ARCH_VM_H

#include <stdbool.h>
#include <stdint.h>

#include <arch/vcpu_ctx.h>
#include <arch/vgic.h>
#include <keel/addr.h>
#include <keel/pt.h>
#include <vmm/exitstats.h>
#include <vmm/pl011.h>
#include <vmm/pl031.h>

/* Exits as the arm64 layer counts them: the generic reasons (vmm/exitstats.h). */
enum arm64_exit_class {
        ARM64_EXIT_HVC = EXIT_HYPERCALL,
        ARM64_EXIT_SMC = EXIT_SMC,
        ARM64_EXIT_MMIO = EXIT_MMIO, /* stage-2 data abort: device access or outside RAM */
        ARM64_EXIT_WFI = EXIT_HALT,
        ARM64_EXIT_SYSREG = EXIT_SYSREG,
        ARM64_EXIT_IRQ = EXIT_INTR, /* physical interrupt (timer, maintenance, Keel's tick) */
        ARM64_EXIT_OTHER = EXIT_OTHER,
};

/* EL1 state of a vCPU, loaded when it runs and saved when it stops. */
struct arm64_el1_regs {
        uint64_t sp_el0, sp_el1, elr_el1, spsr_el1;
        uint64_t sctlr, cpacr, ttbr0, ttbr1, tcr, mair, amair, vbar, contextidr;
        uint64_t esr, far, afsr0, afsr1, par, tpidr_el0, tpidrro_el0, tpidr_el1;
        uint64_t cntkctl, cntv_ctl, cntv_cval, cntp_ctl, cntp_cval, csselr, mdscr;
        /* Self-hosted debug: breakpoints and watchpoints (as many as the CPU has), the OS
         * lock and double lock, DCC interrupt enables (not the claim tags nor DBGPRCR_EL1:
         * QEMU 7.2's CPUs have neither, so touching them would fault in Keel). */
        uint64_t dbgbvr[16], dbgbcr[16], dbgwvr[16], dbgwcr[16];
        uint64_t oslk, osdlr, mdccint;
        /* Only where the CPU has the feature (pointer auth, SVE, SME): */
        uint64_t apkeys[10]; /* APIA, APIB, APDA, APDB, APGA keys: LO, HI each */
        uint64_t zcr;        /* ZCR_EL1: its SVE vector length */
        uint64_t tpidr2;     /* TPIDR2_EL0 (SME itself is hidden and trapped) */
};

#define ARM64_MAX_LRS 16

/* FP/SIMD registers of a vCPU that is not running (arch/arm64/fp.S: offsets fixed). */
struct arm64_fp_regs {
        __uint128_t q[32];
        uint64_t fpcr, fpsr;
};

struct vcpu_arch {
        uint64_t x[31];  /* x0..x30: entry.S, offset 0 */
        uint64_t pc;     /* ELR_EL2, VCPU_CTX_PC */
        uint64_t pstate; /* SPSR_EL2 */
        uint64_t esr;    /* VCPU_CTX_ESR: syndrome of the last exit */
        uint64_t far, hpfar;
        struct arm64_el1_regs el1;
        uint64_t lrs[ARM64_MAX_LRS]; /* list registers as last written */
        unsigned lrs_used;           /* how many of lrs[] hold interrupts in flight */
        uint64_t vmcr;               /* ICH_VMCR_EL2: the guest's CPU-interface settings */
        uint64_t ap0r0, ap1r0;       /* ICH_AP{0,1}R0_EL2: active priorities (5 priority bits) */
        bool powered;                /* PSCI: on (vCPU 0 from the start; others by CPU_ON) */
        bool on_pending;             /* CPU_ON'd: takes the entry state below when it next runs */
        uint64_t on_entry, on_ctx;   /* CPU_ON's entry point and context id (x0) */
        bool fresh;                  /* never ran: FP/SIMD registers to be cleared first */
        /* SVE registers while it does not run (arch/arm64/fp.S), where SVE is; else NULL. */
        void *sve;
        hpa_t sve_pa;
        /* Per guest timer (0 virtual, 1 physical): its PPI is pending because its physical
         * interrupt fired (arm64_timer_fired), and the physical one is left active. */
        bool timer_latched[2];
        /* CNTVOFF_EL2 while it runs: its virtual counter (CNTVCT, in which CNTV_CVAL counts)
         * is the physical counter minus this; 0 until a restore moves it (docs/snapshot.md). */
        uint64_t cntvoff;
        struct arm64_fp_regs fp;
        uint64_t deadline; /* counter value at which the current run's slice ends */
        /* gdb (vcpu.c): this run single-steps for gdb, or has gdb's hardware breakpoints
         * and watchpoints in the debug registers (then the guest's own stay in el1, unsaved);
         * the guest's MDSCR_EL1 and OS lock, which both change in the CPU, as they were. */
        bool gdb_step, gdb_hw;
        uint64_t gdb_mdscr, gdb_oslk;
        unsigned leave; /* 0, or the enum vcpu_run_result that ends the current run */
};

struct vm_arch {
        struct pt s2; /* guest-physical -> host-physical (stage 2) */
        bool s2_ready;
        uint16_t vmid;
        bool platform; /* Linux machine: GIC, PL011, device tree */
        struct vgic vgic;
        struct pl011 uart;
        struct pl031 rtc;   /* the real-time clock of a Linux machine */
        unsigned sve_pages; /* of each vCPU's SVE area (vcpu_arch.sve) */
        /* The redistributors' state, one per vCPU (vgic.cpu points here): pages from the
         * page allocator, sized from the vCPU count when the VM is built. */
        hpa_t vgic_cpus_pa;
        unsigned vgic_cpus_pages;
        bool unbacked_reported;      /* an access to an IPA with nothing there was logged */
        uint32_t unknown_sysregs[8]; /* trapped system registers already reported */
        unsigned unknown_sysreg_count;
};

#endif
