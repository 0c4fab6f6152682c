/* Declarations shared by the arm64 sources only (not an arch hook header). */
#ifndef ARM64_PRIV_H
#define ARM64_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include <vmm/vm.h>

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

/* The guest's machine (docs/arm64.md), laid out like QEMU's virt board. */
#define ARM64_RAM_BASE    0x40000000ull
#define ARM64_PL011_BASE  0x09000000ull
#define ARM64_PL011_SIZE  0x1000ull
#define ARM64_PL011_SPI   1
#define ARM64_PL031_BASE  0x09010000ull
#define ARM64_PL031_SPI   2
#define ARM64_VIRTIO_BASE 0x0a000000ull
#define ARM64_VIRTIO_SIZE 0x1000ull
#define ARM64_VIRTIO_SPI  16
#define ARM64_NR_SPIS     64

/* ISS encoding of a trapped MSR/MRS, without Rt and direction. */
#define SYSREG_ENC(op0, op1, crn, crm, op2)                                      \
        ((uint32_t)(op0) << 20 | (uint32_t)(op2) << 17 | (uint32_t)(op1) << 14 | \
         (uint32_t)(crn) << 10 | (uint32_t)(crm) << 1)

/* vcpu.c: the CPU's breakpoint (false) or watchpoint (true) registers (ID_AA64DFR0_EL1). */
unsigned arm64_debug_slots(bool watch);

/* Log `fmt` once per distinct `key` (up to `max` keys remembered in `seen`). */
void arm64_report_once(struct vm *vm, uint32_t *seen, unsigned *count, unsigned max, uint32_t key,
                       const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/*
 * psci.c: an SMCCC call that is not one of Keel's hypercalls (those vcpu.c serves itself):
 * the Arm architecture calls (SMCCC_VERSION, SMCCC_ARCH_FEATURES), PSCI, and over HVC the
 * vendor-specific hypervisor service's queries (Call UID, Revision); every other function
 * ID gets NOT_SUPPORTED (-1). Result in x[0] (x[0..3] for Call UID).
 */
void arm64_smccc_call(struct vcpu *vcpu, uint64_t *x, bool hvc);

/* vcpu.c: PSCI CPU_ON of a powered-off vCPU (caller holds the VM's dev_lock): it takes the
 * PSCI entry state (pc = entry, x0 = ctx, EL1h, DAIF masked, MMU off) when it next runs. */
void arm64_vcpu_power_on(struct vcpu *vcpu, uint64_t entry, uint64_t ctx);
/* vcpu.c: make the vCPUs in `mask` (bit = vCPU index) look at their interrupts now: kick the
 * CPU of each one that runs or waits (blocked) on a queue. Without the dev_lock held. */
void arm64_kick_vcpus(struct vm *vm, uint64_t mask);

/* idregs.c: ID register (op0 3, op1 0, CRn 0, CRm, op2) as the guest sees it (CRm 1..7),
 * and the masking alone (of the hardware value `hw`). */
uint64_t arm64_id_reg(unsigned crm, unsigned op2);
uint64_t arm64_id_sanitize(unsigned crm, unsigned op2, uint64_t hw);

/* vgic_hw.c: the emulated GIC's list registers around guest entries. */
void arm64_vgic_load(struct vcpu *vcpu);
void arm64_vgic_flush(struct vcpu *vcpu, unsigned nr_lrs);
void arm64_vgic_sync(struct vcpu *vcpu);
void arm64_vgic_put(struct vcpu *vcpu);
/* A guest timer fired (physical INTID_VTIMER or INTID_PTIMER, priority dropped, still
 * active; dev_lock held): its PPI is pending. */
void arm64_timer_fired(struct vcpu *vcpu, unsigned intid);

#endif
