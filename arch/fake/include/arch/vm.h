/* Fake arch (host unit tests): arch parts of VMs and vCPUs. */
#ifndef ARCH_VM_H
#define ARCH_VM_H

#include <stdint.h>

struct vm_arch {
        uint64_t cookie;
};

struct vcpu_arch {
        uint64_t regs[16];
        unsigned cpl;
        uint64_t counter_offset; /* its counter: fake_tsc + this (as x86's TSC offset) */
};

#endif
