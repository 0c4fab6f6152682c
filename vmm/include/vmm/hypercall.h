/*
 * Keel's hypercall ABI, the same numbers on every arch (docs/hypercalls.md):
 *   x86:   VMMCALL (AMD) / VMCALL (Intel); RAX = number, RBX, RCX, RDX, RSI = arguments,
 *          result in RAX.
 *   arm64: HVC #0 under the SMC Calling Convention (Arm DEN0028): x0 = the SMCCC function ID
 *          KEEL_HC_ARM64_FID(number) (a fast SMC64 call of the vendor-specific hypervisor
 *          service), x1..x4 = arguments, result in x0.
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

/*
 * Test builds only (keel-debug.efi, CMake option KEEL_DEBUG_HYPERCALLS; never keel.efi):
 * (what) -> does not return; Keel faults inside itself on purpose (KEEL_DEBUG_FAULT_*), to
 * show that the fault ends in Keel's panic report. A release Keel treats 4 as unknown.
 */
#define KEEL_HC_DEBUG_FAULT 4

#define KEEL_DEBUG_FAULT_WRITE_TEXT 1 /* write to Keel's text */
#define KEEL_DEBUG_FAULT_EXEC_DATA  2 /* call into Keel's data */
#define KEEL_DEBUG_FAULT_STACK      3 /* recurse until the stack runs into its guard page */
#define KEEL_DEBUG_FAULT_SMASH      4 /* overrun a stack buffer (the stack protector's canary) */

/* The calls are the numbers 0 .. KEEL_HC_COUNT - 1. */
#ifdef KEEL_DEBUG_HYPERCALLS
#define KEEL_HC_COUNT 5
#else
#define KEEL_HC_COUNT 4
#endif

/*
 * arm64: SMCCC function IDs. Bit 31 fast call, bit 30 SMC64, bits 29:24 owning entity 6
 * (vendor-specific hypervisor service), bits 15:0 the function: Keel's calls are 0..0xfeff
 * of that range, the service's general queries the SMC32 IDs 0x8600ff01 (Call UID: x0..x3 =
 * KEEL_HC_ARM64_UID0..3) and 0x8600ff03 (Revision: x0 = major, x1 = minor). Every other ID
 * (and HVC with a non-zero immediate, and SMC for these) gets SMCCC NOT_SUPPORTED, -1.
 */
#define KEEL_HC_ARM64_FID_BASE 0xc6000000u
#define KEEL_HC_ARM64_FID(nr)  (KEEL_HC_ARM64_FID_BASE | (uint32_t)(nr))
#define KEEL_HC_ARM64_CALL_UID 0x8600ff01u
#define KEEL_HC_ARM64_REVISION 0x8600ff03u
/* UUID 2b3f6a3e-9d4c-4b1e-8a57-4b45454c0001, in the words SMCCC's Call UID returns. */
#define KEEL_HC_ARM64_UID0          0x3e6a3f2bu
#define KEEL_HC_ARM64_UID1          0x1e4b4c9du
#define KEEL_HC_ARM64_UID2          0x454b578au
#define KEEL_HC_ARM64_UID3          0x01004c45u
#define KEEL_HC_SMCCC_NOT_SUPPORTED (-1)

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
