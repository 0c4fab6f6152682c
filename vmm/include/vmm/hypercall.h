/*
 * Keel's hypercall ABI, the same numbers on every arch (docs/hypercalls.md):
 *   x86:   VMMCALL (AMD) / VMCALL (Intel); RAX = number, RBX, RCX, RDX, RSI = arguments,
 *          result in RAX.
 *   arm64: HVC #0; x0 = number, x1..x4 = arguments, result in x0.
 * Results >= 0 are success; a negative result is -KEEL_E* (Linux errno numbers).
 * Only the guest kernel may call: a hypercall from user mode stops the VM (bad-hypercall).
 */
#ifndef VMM_HYPERCALL_H
#define VMM_HYPERCALL_H

#include <stdbool.h>
#include <stdint.h>

#define KEEL_HC_VERSION 0 /* () -> ABI version */
#define KEEL_HC_PRINT   1 /* (gpa, len) -> len; len <= KEEL_HC_PRINT_MAX */
#define KEEL_HC_EXIT    2 /* (code) -> does not return; VM stops with exit code */
#define KEEL_HC_VM_INFO 3 /* (gpa, size) -> bytes written; fills struct keel_vm_info */

#define KEEL_HC_ABI_VERSION 1
#define KEEL_HC_PRINT_MAX   1024

/* Layout shared with guests (little endian, no padding surprises). */
struct keel_vm_info {
        uint32_t abi_version;
        uint32_t vm_id;
        uint64_t ram_base;
        uint64_t ram_size;
        uint32_t vcpu_count;
        uint32_t reserved;
        char name[32]; /* NUL-terminated */
};

struct vcpu;

struct hc_call {
        uint64_t nr;
        uint64_t arg[4];
        int64_t ret;
};

/*
 * Executes a hypercall for `vcpu`. Fills call->ret. Returns true if the vCPU should continue,
 * false if the VM was stopped (exit hypercall).
 */
bool hypercall_dispatch(struct vcpu *vcpu, struct hc_call *call);

#endif
