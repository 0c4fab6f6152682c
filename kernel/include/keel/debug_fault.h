/*
 * Test builds only (keel-debug.efi; kernel/debug_fault.c): faults inside Keel on purpose, for
 * the hypercall KEEL_HC_DEBUG_FAULT (vmm/hypercall.h).
 */
#ifndef KEEL_DEBUG_FAULT_H
#define KEEL_DEBUG_FAULT_H

#include <stdint.h>

/*
 * Make the fault KEEL_DEBUG_FAULT_<what>. Each must end in Keel's panic report; returning means
 * a protection did not work (logged), or -KEEL_EINVAL for an unknown `what`.
 */
int64_t debug_fault(uint64_t what);

#endif
