/*
 * arm64 entry points: into the kernel on Keel's own stack, the switch to Keel's own EL2
 * translation tables, the EL2 exception vectors, and the guest entry/exit sequence.
 *
 * Guest entry/exit (arm64_guest_run): the host's callee-saved registers go on Keel's stack,
 * the guest's x0-x30, PC and PSTATE come from struct vcpu_arch (its pointer in this CPU's
 * struct arm64_percpu, which TPIDR_EL2 points to), then
 * ERET. An exception from the guest lands in the lower-EL vectors, which store the guest's
 * registers back, restore the host's and return from arm64_guest_run with the exception kind.
 * Nothing else happens on that path: the exit handler is C (vcpu.c).
 */
#include <arch/percpu.h>
#include <arch/vcpu_ctx.h>

#define KIND_SYNC    0
#define KIND_IRQ     1
#define KIND_FIQ     2
#define KIND_SERROR  3
#define KIND_AARCH32 4

        .text

/* _Noreturn void arch_enter_kernel_on(const struct boot_info *bi, void *stack_top) */
        .global arm64_enter_kernel_on
arm64_enter_kernel_on:
        mov     sp, x1
        mov     x29, xzr
        mov     x30, xzr
        bl      kernel_main
1:      wfi
        b       1b

/*
 * void arm64_mmu_switch(uint64_t ttbr0, uint64_t tcr, uint64_t mair, uint64_t sctlr)
 * Turns the MMU off, loads Keel's tables and attributes, turns it back on. No memory access
 * happens while the MMU is off (code is fetched from the same identity-mapped addresses).
 */
        .global arm64_mmu_switch
arm64_mmu_switch:
        dsb     sy
        mrs     x4, sctlr_el2
        bic     x4, x4, #1
        msr     sctlr_el2, x4
        isb
        tlbi    alle2
        dsb     sy
        msr     mair_el2, x2
        msr     tcr_el2, x1
        msr     ttbr0_el2, x0
        isb
        msr     sctlr_el2, x3
        isb
        ret

/*
 * A secondary CPU's entry (PSCI CPU_ON): EL2, MMU and caches off, x0 = its struct arm64_percpu
 * (physical = virtual: Keel runs identity-mapped), which the boot CPU cleaned to the point of
 * coherency. Installs Keel's vectors and EL2 translation state as the boot CPU has them, then
 * runs arm64_ap_main on the CPU's own stack with TPIDR_EL2 = its per-CPU data.
 */
        .global arm64_ap_entry
arm64_ap_entry:
        msr     daifset, #0xf
        mov     x19, x0
        msr     tpidr_el2, x19 /* before the vectors: they find the trap stack through it */
        ldr     x1, [x19, #PERCPU_EL2_VBAR]
        msr     vbar_el2, x1
        ic      iallu
        ldr     x0, [x19, #PERCPU_EL2_TTBR0]
        ldr     x1, [x19, #PERCPU_EL2_TCR]
        ldr     x2, [x19, #PERCPU_EL2_MAIR]
        ldr     x3, [x19, #PERCPU_EL2_SCTLR]
        bl      arm64_mmu_switch
        ldr     x1, [x19, #PERCPU_STACK_TOP]
        mov     sp, x1
        isb
        mov     x0, x19
        mov     x29, xzr
        mov     x30, xzr
        bl      arm64_ap_main
1:      wfi
        b       1b
        /* End of the code a secondary runs with its MMU off (from arm64_mmu_switch on). */
        .global arm64_ap_entry_end
arm64_ap_entry_end:

/* unsigned arm64_guest_run(struct vcpu_arch *ctx) */
        .global arm64_guest_run
arm64_guest_run:
        stp     x29, x30, [sp, #-96]!
        stp     x19, x20, [sp, #16]
        stp     x21, x22, [sp, #32]
        stp     x23, x24, [sp, #48]
        stp     x25, x26, [sp, #64]
        stp     x27, x28, [sp, #80]
        mrs     x1, tpidr_el2
        str     x0, [x1, #PERCPU_GUEST]
        ldp     x1, x2, [x0, #VCPU_CTX_PC]
        msr     elr_el2, x1
        msr     spsr_el2, x2
        ldp     x2, x3, [x0, #16]
        ldp     x4, x5, [x0, #32]
        ldp     x6, x7, [x0, #48]
        ldp     x8, x9, [x0, #64]
        ldp     x10, x11, [x0, #80]
        ldp     x12, x13, [x0, #96]
        ldp     x14, x15, [x0, #112]
        ldp     x16, x17, [x0, #128]
        ldp     x18, x19, [x0, #144]
        ldp     x20, x21, [x0, #160]
        ldp     x22, x23, [x0, #176]
        ldp     x24, x25, [x0, #192]
        ldp     x26, x27, [x0, #208]
        ldp     x28, x29, [x0, #224]
        ldr     x30, [x0, #240]
        ldp     x0, x1, [x0]
        eret

/* A guest exception: save the guest, return from arm64_guest_run with \kind. */
.macro GUEST_EXIT kind
        stp     x0, x1, [sp, #-16]!
        mrs     x0, tpidr_el2
        ldr     x0, [x0, #PERCPU_GUEST]
        stp     x2, x3, [x0, #16]
        stp     x4, x5, [x0, #32]
        stp     x6, x7, [x0, #48]
        stp     x8, x9, [x0, #64]
        stp     x10, x11, [x0, #80]
        stp     x12, x13, [x0, #96]
        stp     x14, x15, [x0, #112]
        stp     x16, x17, [x0, #128]
        stp     x18, x19, [x0, #144]
        stp     x20, x21, [x0, #160]
        stp     x22, x23, [x0, #176]
        stp     x24, x25, [x0, #192]
        stp     x26, x27, [x0, #208]
        stp     x28, x29, [x0, #224]
        str     x30, [x0, #240]
        ldp     x2, x3, [sp], #16
        stp     x2, x3, [x0]
        mrs     x1, elr_el2
        mrs     x2, spsr_el2
        stp     x1, x2, [x0, #VCPU_CTX_PC]
        mrs     x1, esr_el2
        str     x1, [x0, #VCPU_CTX_ESR]
        mov     x0, #\kind
        b       guest_exit_common
.endm

/*
 * An exception in Keel itself: leave the interrupted stack at once for this CPU's trap stack
 * (the interrupted one may have run into its guard page: saving anything there would fault
 * again, forever), save everything, report, panic. Scratch on the way: SP_EL0, a register of
 * the guest's EL0 (Keel halts here: no guest runs again on this CPU) and the per-CPU data
 * TPIDR_EL2 points to. Out of line, as the 32 instructions of a vector entry are too few.
 */
.macro KEEL_TRAP kind
keel_trap_\kind:
        msr     sp_el0, x0
        mrs     x0, tpidr_el2
        str     x1, [x0, #PERCPU_TRAP_X1]
        mov     x1, sp
        str     x1, [x0, #PERCPU_TRAP_SP]
        ldr     x1, [x0, #PERCPU_TRAP_STACK]
        mov     sp, x1
        ldr     x1, [x0, #PERCPU_TRAP_X1]
        mrs     x0, sp_el0
        sub     sp, sp, #272
        stp     x0, x1, [sp, #0]
        stp     x2, x3, [sp, #16]
        stp     x4, x5, [sp, #32]
        stp     x6, x7, [sp, #48]
        stp     x8, x9, [sp, #64]
        stp     x10, x11, [sp, #80]
        stp     x12, x13, [sp, #96]
        stp     x14, x15, [sp, #112]
        stp     x16, x17, [sp, #128]
        stp     x18, x19, [sp, #144]
        stp     x20, x21, [sp, #160]
        stp     x22, x23, [sp, #176]
        stp     x24, x25, [sp, #192]
        stp     x26, x27, [sp, #208]
        stp     x28, x29, [sp, #224]
        mrs     x1, tpidr_el2
        ldr     x1, [x1, #PERCPU_TRAP_SP]
        stp     x30, x1, [sp, #240]
        mov     x0, sp
        mov     x1, #\kind
        bl      arm64_keel_trap
1:      wfi
        b       1b
.endm

        KEEL_TRAP 0
        KEEL_TRAP 1
        KEEL_TRAP 2
        KEEL_TRAP 3

        .balign 2048
        .global arm64_vectors
arm64_vectors:
        /* Current EL with SP_EL0: Keel never runs on SP_EL0. */
        .balign 128
        b       keel_trap_0
        .balign 128
        b       keel_trap_1
        .balign 128
        b       keel_trap_2
        .balign 128
        b       keel_trap_3
        /* Current EL with SP_ELx: a fault in Keel. */
        .balign 128
        b       keel_trap_0
        .balign 128
        b       keel_trap_1
        .balign 128
        b       keel_trap_2
        .balign 128
        b       keel_trap_3
        /* Lower EL, AArch64: the guest. */
        .balign 128
        GUEST_EXIT KIND_SYNC
        .balign 128
        GUEST_EXIT KIND_IRQ
        .balign 128
        GUEST_EXIT KIND_FIQ
        .balign 128
        GUEST_EXIT KIND_SERROR
        /* Lower EL, AArch32: never entered (HCR_EL2.RW), stops the VM if it happens. */
        .balign 128
        GUEST_EXIT KIND_AARCH32
        .balign 128
        GUEST_EXIT KIND_AARCH32
        .balign 128
        GUEST_EXIT KIND_AARCH32
        .balign 128
        GUEST_EXIT KIND_AARCH32

guest_exit_common:
        ldp     x19, x20, [sp, #16]
        ldp     x21, x22, [sp, #32]
        ldp     x23, x24, [sp, #48]
        ldp     x25, x26, [sp, #64]
        ldp     x27, x28, [sp, #80]
        ldp     x29, x30, [sp], #96
        ret

/* void arm64_pan_enable(void): PSTATE.PAN = 1 (FEAT_PAN; encoded by hand for older assemblers). */
        .global arm64_pan_enable
arm64_pan_enable:
        .inst   0xd500419f /* msr pan, #1 */
        ret

/* Semihosting call (QEMU -semihosting): x0 = operation, x1 = parameter block. */
        .global arm64_semihosting
arm64_semihosting:
        hlt     #0xf000
        ret

/*
 * Clear the FP/SIMD registers (and with them the upper bits of the SVE Z registers) and
 * FPCR/FPSR, so a VM never sees what the one before it left there. Keel itself never uses
 * them (-mgeneral-regs-only); CPTR_EL2 does not trap them.
 */
        .global arm64_fp_clear
arm64_fp_clear:
        msr     fpcr, xzr
        msr     fpsr, xzr
        .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        movi    v\n\().2d, #0
        .endr
        ret
