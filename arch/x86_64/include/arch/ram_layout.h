/*
 * An x86 VM's RAM in its guest-physical space, as on a PC (docs/guest-entry.md): low RAM
 * from 0 up to at most 3 GiB, then the hole [3 GiB, 4 GiB) that holds all the VM's device
 * space (virtio-mmio from 0xd0000000, the I/O APIC at 0xfec00000, the LAPIC at 0xfee00000),
 * then the rest of the RAM from 4 GiB. Pure: host-unit-tested (tests/unit/test_ram_layout.c).
 */
#ifndef ARCH_RAM_LAYOUT_H
#define ARCH_RAM_LAYOUT_H

#include <stdint.h>

#include <vmm/gmem.h>

#define X86_RAM_LOW_MAX   0xc0000000ull  /* low RAM ends here at most: the hole starts */
#define X86_RAM_HIGH_BASE 0x100000000ull /* the rest of the RAM starts here */
#define X86_RAM_MAX       (64ull << 30)  /* the config's limit (docs/config.md): to 65 GiB */
/* Where a VM's devices start (virtio-mmio, then the I/O APIC, LAPIC): inside the hole. */
#define X86_GUEST_DEVICES_BASE 0xd0000000ull
_Static_assert(X86_GUEST_DEVICES_BASE >= X86_RAM_LOW_MAX, "devices lie in the RAM hole");

/* The ranges of a VM with `size` bytes of RAM into out[0..1]: their count, 0 if none fits. */
static inline unsigned x86_ram_layout(uint64_t size, struct gmem_range out[2])
{
        if (size == 0 || size > X86_RAM_MAX)
                return 0;
        out[0] = (struct gmem_range){0, size < X86_RAM_LOW_MAX ? size : X86_RAM_LOW_MAX};
        if (size <= X86_RAM_LOW_MAX)
                return 1;
        out[1] = (struct gmem_range){X86_RAM_HIGH_BASE, size - X86_RAM_LOW_MAX};
        return 2;
}

#endif
