/* arm64 CPU-level services shared by the arm64 sources (cpu.c, gic.c, vcpu.c). */
#ifndef ARCH_CPU_H
#define ARCH_CPU_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/boot.h>

struct vcpu_arch;

/* entry.S */
unsigned arm64_guest_run(struct vcpu_arch *ctx);
void arm64_mmu_switch(uint64_t ttbr0, uint64_t tcr, uint64_t mair, uint64_t sctlr);
_Noreturn void arm64_enter_kernel_on(const struct boot_info *bi, void *stack_top);
uint64_t arm64_semihosting(uint64_t op, const void *param);
void arm64_fp_clear(void);
/* FP/SIMD registers of a vCPU (arch/arm64/fp.S). */
struct arm64_fp_regs;
void arm64_fp_save(struct arm64_fp_regs *r);
void arm64_fp_load(const struct arm64_fp_regs *r);
extern char arm64_vectors[];

/* Exception kinds returned by arm64_guest_run. */
#define ARM64_KIND_SYNC    0
#define ARM64_KIND_IRQ     1
#define ARM64_KIND_FIQ     2
#define ARM64_KIND_SERROR  3
#define ARM64_KIND_AARCH32 4

/* gic.c: Keel's side of the physical GICv3 (this CPU's redistributor, CPU interface). */
struct arm64_gic_info {
        uint64_t gicd, gicr; /* physical bases from the ACPI MADT */
        uint64_t gicr_size;
};
int arm64_gic_find(hpa_t rsdp, struct arm64_gic_info *out);
/* Enable the private interrupts Keel handles (maintenance, hypervisor timer, virtual timer). */
void arm64_gic_init(const struct arm64_gic_info *gi);
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

/* Timer: counter frequency (Hz), counter now; Keel's one-shot hypervisor timer. */
uint64_t arm64_cntfrq(void);
void arm64_hyp_timer_arm(uint64_t ticks_from_now);
void arm64_hyp_timer_stop(void);

#endif
