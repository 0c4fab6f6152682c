/* arm64 CPU-level services shared by the arm64 sources (cpu.c, gic.c, vcpu.c). */
#ifndef ARCH_CPU_H
#define ARCH_CPU_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/boot.h>
#include <keel/smp.h>

struct vcpu_arch;

/* entry.S */
unsigned arm64_guest_run(struct vcpu_arch *ctx);
void arm64_mmu_switch(uint64_t ttbr0, uint64_t tcr, uint64_t mair, uint64_t sctlr);
/* entry.S: set PSTATE.PAN (only on a CPU with FEAT_PAN: ID_AA64MMFR1_EL1.PAN != 0). */
void arm64_pan_enable(void);
_Noreturn void arm64_enter_kernel_on(const struct boot_info *bi, void *stack_top);
uint64_t arm64_semihosting(uint64_t op, const void *param);
void arm64_fp_clear(void);
/* FP/SIMD registers of a vCPU (arch/arm64/fp.S). */
struct arm64_fp_regs;
void arm64_fp_save(struct arm64_fp_regs *r);
void arm64_fp_load(const struct arm64_fp_regs *r);
/* SVE (only where the CPU has it): vector length in bytes; save / load an area of
 * 34 * VL + VL / 8 bytes (Z0-Z31, P0-P15, FFR). */
unsigned long arm64_sve_vl(void);
void arm64_sve_save(void *area);
void arm64_sve_load(const void *area);
extern char arm64_vectors[];
/* A secondary's PSCI CPU_ON entry (x0 = its percpu); [arm64_mmu_switch, arm64_ap_entry_end) is
 * the code it runs with its MMU off. */
extern char arm64_ap_entry[], arm64_ap_entry_end[];

/* Exception kinds returned by arm64_guest_run. */
#define ARM64_KIND_SYNC    0
#define ARM64_KIND_IRQ     1
#define ARM64_KIND_FIQ     2
#define ARM64_KIND_SERROR  3
#define ARM64_KIND_AARCH32 4

/* gic.c: Keel's side of the physical GICv3 (this CPU's redistributor, CPU interface). */
struct arm64_gic_info {
        uint64_t gicd;     /* physical base from the ACPI MADT */
        uint64_t its, v2m; /* the first GIC ITS / GICv2m MSI frame the MADT lists, or 0 */
        /*
         * Where the redistributors are: every GICR structure's region or, without any, the
         * frame (GICR_FRAME_SIZE) each enabled GICC entry names; from the page allocator,
         * as many as the MADT lists.
         */
        struct arm64_gicr_region {
                uint64_t base, size;
        } * rd;
        unsigned rd_count;
};
#define GICR_FRAME_SIZE 0x20000 /* RD_base and SGI_base: what Keel touches */
int arm64_gic_find(hpa_t rsdp, struct arm64_gic_info *out);
/* A CPU of the MADT (GICC entry): affinity as MPIDR_EL1 holds it, its redistributor if named. */
#define MPIDR_AFF_MASK 0xff00ffffffull
struct arm64_madt_cpu {
        uint64_t mpidr, gicr;
        bool enabled;
};
/* The MADT's GICC entries in table order (the first `max` of `*count`); -KEEL_ENOENT: no MADT. */
int arm64_madt_cpus(hpa_t rsdp, struct arm64_madt_cpu *out, unsigned max, unsigned *count);
/*
 * Boot CPU: this CPU's part and the distributor. arm64_gic_cpu_init is the per-CPU part only
 * (redistributor, CPU interface), which each secondary runs for itself. Both enable the private
 * interrupts Keel handles (maintenance, hypervisor timer, virtual timer).
 */
void arm64_gic_init(const struct arm64_gic_info *gi);
void arm64_gic_cpu_init(const struct arm64_gic_info *gi);
/* Acknowledge the highest pending interrupt (INTID_SPURIOUS if none). */
unsigned arm64_gic_ack(void);
/* Priority drop (EOImode 1); arm64_gic_deactivate ends it. */
void arm64_gic_eoi(unsigned intid);
void arm64_gic_deactivate(unsigned intid);
/* End the active state of private interrupt `intid` whatever it is (redistributor write). */
void arm64_gic_clear_active(unsigned intid);
/* Number of list registers. */
unsigned arm64_gic_nr_lrs(void);
uint64_t arm64_read_lr(unsigned n);
void arm64_write_lr(unsigned n, uint64_t v);

/* cpu.c: clean [p, p + len) to the point of coherency (for readers with caches off). */
void arm64_dcache_clean_poc(const void *p, uint64_t len);
/* cpu.c: the EL2 controls for running guests (CPTR, VTCR, CNTHCTL, HCR...), on each CPU. */
void arm64_virt_cpu_enable(void);
/* cpu.c: a secondary's set-up after arm64_ap_entry (virtualization, timer, GIC). */
void arm64_secondary_setup(void);

/* Timer: counter frequency (Hz), counter now; Keel's one-shot hypervisor timer. */
uint64_t arm64_cntfrq(void);
void arm64_hyp_timer_arm(uint64_t ticks_from_now);
void arm64_hyp_timer_stop(void);

#endif
