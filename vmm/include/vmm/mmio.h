/*
 * Emulated MMIO: a VM's devices that live at guest-physical addresses outside its RAM
 * (virtio-mmio, later the x86 LAPIC/IOAPIC). An access there traps (NPF on x86, stage-2
 * abort on arm64); the arch decodes the instruction and calls mmio_bus_access. Devices see
 * an offset inside their region, an access size of 1, 2, 4 or 8 bytes, and a value.
 */
#ifndef VMM_MMIO_H
#define VMM_MMIO_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/addr.h>

#define MMIO_MAX_REGIONS 16

struct mmio_ops {
        /* Read `size` bytes at `offset`: store the value (zero-extended) in *val. */
        void (*read)(void *dev, uint64_t offset, unsigned size, uint64_t *val);
        /* Write the low `size` bytes of `val` at `offset`. */
        void (*write)(void *dev, uint64_t offset, unsigned size, uint64_t val);
        /*
         * Optional. Asked after each write: true if the device did only part of the work the
         * write asked for (a bounded piece, so that one exit cannot hold the CPU for as long
         * as the guest likes) and wants the instruction executed again; the arch then leaves
         * the guest's PC on it. The answer is for that write only.
         */
        bool (*again)(void *dev);
};

struct mmio_region {
        gpa_t base;
        uint64_t size;
        const struct mmio_ops *ops;
        void *dev;
        const char *name;
};

struct mmio_bus {
        struct mmio_region regions[MMIO_MAX_REGIONS];
        unsigned count;
};

void mmio_bus_init(struct mmio_bus *bus);
/* Overlap, zero size, wrap-around: -KEEL_EINVAL; full: -KEEL_ENOSPC. */
int mmio_bus_add(struct mmio_bus *bus, gpa_t base, uint64_t size, const struct mmio_ops *ops,
                 void *dev, const char *name);
/* The region holding all of [a, a+size), or NULL. */
const struct mmio_region *mmio_bus_find(const struct mmio_bus *bus, gpa_t a, unsigned size);
/*
 * Perform an access. Returns false if no region holds [a, a+size) (the caller stops the VM:
 * access outside RAM and devices). Sizes other than 1, 2, 4, 8 are the caller's bug.
 */
bool mmio_bus_access(const struct mmio_bus *bus, gpa_t a, unsigned size, bool write, uint64_t *val);
/*
 * After a write that mmio_bus_access performed at `a`: whether the device wants the guest's
 * instruction executed again (its `again` op; the PC is then not advanced).
 */
bool mmio_bus_write_again(const struct mmio_bus *bus, gpa_t a);

#endif
