/*
 * The SMC Calling Convention's calls other than Keel's own hypercalls (Arm DEN0028): SMCCC
 * 1.1's SMCCC_VERSION and SMCCC_ARCH_FEATURES, PSCI 1.0 (DEN0022) over HVC or SMC, the
 * vendor-specific hypervisor service's Call UID and Revision over HVC, and NOT_SUPPORTED for
 * every other function ID (function IDs in x0, results in x0). CPU_ON starts a further vCPU of the
 * VM (its entry state is set when it next runs, on its own CPU: arm64_vcpu_power_on), CPU_OFF parks
 * the caller until a CPU_ON (the VM halts when its last vCPU goes off). The powered flags change
 * under the VM's dev_lock; the scheduler is called only after it is released.
 */
#include <stdarg.h>
#include <stdio.h>

#include <keel/log.h>
#include <keel/spinlock.h>
#include <vmm/hypercall.h>
#include <vmm/vm.h>
#include <vmm/vmm.h>

#include "arm64_priv.h"

#define SMCCC_VERSION       0x80000000u
#define SMCCC_ARCH_FEATURES 0x80000001u
#define PSCI_VERSION        0x84000000u
#define PSCI_CPU_SUSPEND    0x84000001u
#define PSCI_CPU_OFF        0x84000002u
#define PSCI_CPU_ON         0x84000003u
#define PSCI_AFFINITY_INFO  0x84000004u
#define PSCI_MIGRATE_INFO   0x84000006u
#define PSCI_SYSTEM_OFF     0x84000008u
#define PSCI_SYSTEM_RESET   0x84000009u
#define PSCI_FEATURES       0x8400000au
#define PSCI_64(f)          ((f) | 0x40000000u)

#define PSCI_SUCCESS         0
#define PSCI_NOT_SUPPORTED   -1
#define PSCI_INVALID_PARAMS  -2
#define PSCI_ALREADY_ON      -4
#define PSCI_ON_PENDING      -5
#define PSCI_INVALID_ADDRESS -9
#define PSCI_TOS_NOT_PRESENT 2

static bool supported(uint32_t f)
{
        switch (f) {
        case PSCI_VERSION:
        case PSCI_CPU_OFF:
        case PSCI_CPU_ON:
        case PSCI_64(PSCI_CPU_ON):
        case PSCI_AFFINITY_INFO:
        case PSCI_64(PSCI_AFFINITY_INFO):
        case PSCI_MIGRATE_INFO:
        case PSCI_SYSTEM_OFF:
        case PSCI_SYSTEM_RESET:
        case PSCI_FEATURES:
        case SMCCC_VERSION:
        case SMCCC_ARCH_FEATURES:
                return true;
        }
        return false;
}

/* A vCPU by MPIDR affinity (vgic_vcpu_mpidr: Aff1 = index / 16, Aff0 = index % 16; Aff3,
 * Aff2 and every other bit 0), or NULL. */
static struct vcpu *vcpu_by_mpidr(struct vm *vm, uint64_t mpidr)
{
        unsigned i = vgic_mpidr_vcpu(mpidr, vm->vcpu_count);

        return i < vm->vcpu_count ? &vm->vcpus[i] : NULL;
}

/* CPU_ON: target MPIDR, entry point (in RAM, 4-byte aligned) and context id (x0 there). */
static __attribute__((noinline)) int64_t cpu_on(struct vcpu *vcpu, uint64_t mpidr, uint64_t entry,
                                                uint64_t ctx)
{
        struct vm *vm = vcpu->vm;
        struct vcpu *target = vcpu_by_mpidr(vm, mpidr);
        struct spin_held held;
        int64_t r = PSCI_SUCCESS;

        if (!target)
                return PSCI_INVALID_PARAMS;
        if ((entry & 3) || !gmem_contains(&vm->mem, gpa(entry), 4))
                return PSCI_INVALID_ADDRESS;
        held = spin_lock(&vm->dev_lock);
        if (target->arch.on_pending)
                r = PSCI_ON_PENDING;
        else if (target->arch.powered)
                r = PSCI_ALREADY_ON;
        else
                arm64_vcpu_power_on(target, entry, ctx);
        spin_unlock(held);
        if (r == PSCI_SUCCESS) {
                vm_vcpu_started(target); /* a vCPU once CPU_OFF is still queued (blocked) */
                arm64_kick_vcpus(vm, 1ull << target->id);
        }
        return r;
}

/* SYSTEM_OFF, SYSTEM_RESET: under the lock, as vm_stop flushes the console devices write to. */
static __attribute__((noinline)) void system_stop(struct vm *vm, enum vm_stop_reason why,
                                                  const char *what)
{
        struct spin_held held = spin_lock(&vm->dev_lock);

        vm_stop(vm, why, "PSCI %s", what);
        spin_unlock(held);
}

/* CPU_OFF: the caller leaves its CPU (blocked: ready() is false until a CPU_ON). */
static __attribute__((noinline)) void cpu_off(struct vcpu *vcpu)
{
        struct vm *vm = vcpu->vm;
        struct spin_held held = spin_lock(&vm->dev_lock);
        unsigned on = 0;

        vcpu->arch.powered = false;
        vcpu->arch.leave = VCPU_RUN_BLOCKED;
        for (unsigned i = 0; i < vm->vcpu_count && i < VM_MAX_VCPUS; i++)
                on += vm->vcpus[i].arch.powered;
        if (!on) /* under the lock: vm_stop flushes the console the devices write to */
                vm_stop(vm, VM_STOP_HALTED, "PSCI CPU_OFF on its last running vCPU");
        spin_unlock(held);
}

void arm64_smccc_call(struct vcpu *vcpu, uint64_t *x, bool hvc)
{
        struct vm *vm = vcpu->vm;
        uint32_t f = (uint32_t)x[0];
        struct vcpu *target;
        int64_t r;

        if (x[0] >> 32) { /* SMCCC: the function ID is W0; bits 63:32 must be 0 */
                x[0] = (uint64_t)PSCI_NOT_SUPPORTED;
                return;
        }
        switch (f) {
        case SMCCC_VERSION:
                r = 0x10001; /* SMCCC 1.1 */
                break;
        case SMCCC_ARCH_FEATURES:
                /* Of the architecture calls only these two; no SoC ID, no workarounds. */
                r = (uint32_t)x[1] == SMCCC_VERSION || (uint32_t)x[1] == SMCCC_ARCH_FEATURES
                        ? PSCI_SUCCESS
                        : PSCI_NOT_SUPPORTED;
                break;
        case KEEL_HC_ARM64_CALL_UID:
                if (!hvc)
                        goto unknown;
                x[1] = KEEL_HC_ARM64_UID1;
                x[2] = KEEL_HC_ARM64_UID2;
                x[3] = KEEL_HC_ARM64_UID3;
                r = KEEL_HC_ARM64_UID0;
                break;
        case KEEL_HC_ARM64_REVISION:
                if (!hvc)
                        goto unknown;
                x[1] = 0; /* minor */
                r = KEEL_HC_ABI_VERSION;
                break;
        case PSCI_VERSION:
                r = 0x10000; /* PSCI 1.0 */
                break;
        case PSCI_FEATURES:
                r = supported((uint32_t)x[1]) ? PSCI_SUCCESS : PSCI_NOT_SUPPORTED;
                break;
        case PSCI_MIGRATE_INFO:
                r = PSCI_TOS_NOT_PRESENT;
                break;
        case PSCI_CPU_ON:
        case PSCI_64(PSCI_CPU_ON):
                if (f == PSCI_CPU_ON) /* SMC32: 32-bit arguments */
                        r = cpu_on(vcpu, (uint32_t)x[1], (uint32_t)x[2], (uint32_t)x[3]);
                else
                        r = cpu_on(vcpu, x[1], x[2], x[3]);
                break;
        case PSCI_AFFINITY_INFO:
        case PSCI_64(PSCI_AFFINITY_INFO):
                target = vcpu_by_mpidr(vm, f == PSCI_AFFINITY_INFO ? (uint32_t)x[1] : x[1]);
                /* 0 ON, 1 OFF, 2 ON_PENDING (started, not yet run) */
                r = !target || x[2]           ? PSCI_INVALID_PARAMS
                    : target->arch.on_pending ? 2
                    : target->arch.powered    ? 0
                                              : 1;
                break;
        case PSCI_CPU_OFF:
                cpu_off(vcpu);
                return;
        case PSCI_SYSTEM_OFF:
                system_stop(vm, VM_STOP_POWEROFF, "SYSTEM_OFF");
                return;
        case PSCI_SYSTEM_RESET:
                system_stop(vm, VM_STOP_REBOOT, "SYSTEM_RESET");
                return;
        default:
        unknown:
                r = PSCI_NOT_SUPPORTED; /* SMCCC: unknown function identifier */
                break;
        }
        x[0] = (uint64_t)r;
}

void arm64_report_once(struct vm *vm, uint32_t *seen, unsigned *count, unsigned max, uint32_t key,
                       const char *fmt, ...)
{
        char line[160];
        va_list ap;

        if (vm_report_seen(seen, count, max, key))
                return;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        LOG_WARN("vm %s: %s", vm->name, line);
}
