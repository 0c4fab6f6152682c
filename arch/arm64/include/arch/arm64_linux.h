/*
 * Booting Linux on an arm64 VM, the pure part (host-tested): the Image header
 * (Documentation/arch/arm64/booting.rst), where kernel, initrd and device tree go in guest
 * RAM, and the VM's flattened device tree.
 *
 * The Image is untrusted input. Every refusal returns a negative code and sets *why (when
 * why is not NULL) to a static, human-readable reason naming what is wrong:
 *   arm64_image_parse():  file shorter than the 64-byte header, no "ARM\x64" magic,
 *                         big-endian kernel, image_size 0 (kernel older than 3.17, whose
 *                         memory needs are unknown), image_size smaller than the file,
 *                         text_offset + image_size overflowing                -KEEL_EINVAL
 *   arm64_linux_plan():   bad request (RAM range wrapping around, DTB size 0 or above
 *                         2 MiB, no image)                                     -KEEL_EINVAL
 *                         RAM too small for kernel + DTB (+ initrd), or the
 *                         kernel not below 2^48 when its flags require it      -KEEL_ENOMEM
 *   arm64_linux_fdt():    bad description (no vCPU or more than
 *                         ARM64_LINUX_MAX_VCPUS, redistributor region smaller than
 *                         vcpus * 128 KiB, more than ARM64_LINUX_MAX_VIRTIO virtio devices,
 *                         an SPI above 987, a zero-size region, initrd_end < initrd_start)
 *                                                                              -KEEL_EINVAL
 *                         buffer too small                                     -KEEL_ENOSPC
 */
#ifndef ARCH_ARM64_LINUX_H
#define ARCH_ARM64_LINUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The Image header (booting.rst, "Call the kernel image"); all fields little-endian. */
#define ARM64_IMAGE_HDR_SIZE    64
#define ARM64_IMAGE_TEXT_OFFSET 0x08        /* u64 */
#define ARM64_IMAGE_SIZE        0x10        /* u64: effective size, 0 before Linux 3.17 */
#define ARM64_IMAGE_FLAGS       0x18        /* u64 */
#define ARM64_IMAGE_MAGIC_OFF   0x38        /* u32 */
#define ARM64_IMAGE_MAGIC       0x644d5241u /* "ARM\x64" */

#define ARM64_IMAGE_FLAG_BE         (1ull << 0) /* kernel is big-endian */
#define ARM64_IMAGE_FLAG_PAGE_SHIFT 1           /* bits 1-2: 0 unspecified, 1 4K, 2 16K, 3 64K */
#define ARM64_IMAGE_FLAG_PAGE_MASK  (3ull << 1)
#define ARM64_IMAGE_FLAG_PHYS_ANY   (1ull << 3) /* 0: close to the RAM base; 1: below 2^48 */

#define ARM64_LINUX_KERNEL_ALIGN (2ull << 20)  /* the Image sits text_offset past a 2 MiB base */
#define ARM64_LINUX_DTB_MAX      (2ull << 20)  /* booting.rst: the DTB must not exceed 2 MiB */
#define ARM64_LINUX_DTB_SIZE     (64ull << 10) /* what Keel reserves for a VM's DTB */
#define ARM64_LINUX_INITRD_ALIGN 4096ull

struct arm64_image_info {
        uint64_t file_size;   /* bytes of the Image file */
        uint64_t text_offset; /* load offset from a 2 MiB aligned base */
        uint64_t image_size;  /* bytes from the load address the kernel owns (>= file_size) */
        uint64_t flags;
        unsigned page_size; /* 4096, 16384, 65536, or 0 if the header leaves it unspecified */
        bool phys_any;      /* ARM64_IMAGE_FLAG_PHYS_ANY */
};

/* Validates the Image in image[0, size) and fills *out. */
int arm64_image_parse(const void *image, uint64_t size, struct arm64_image_info *out,
                      const char **why);

struct arm64_layout_req {
        uint64_t ram_base; /* guest-physical RAM [ram_base, ram_base + ram_size) */
        uint64_t ram_size;
        const struct arm64_image_info *image;
        uint64_t initrd_size; /* 0: no initrd */
        uint64_t dtb_size;    /* room for the DTB, at most ARM64_LINUX_DTB_MAX */
};

/*
 * Where everything goes. The kernel is placed as low as possible (booting.rst recommends it):
 * at the first 2 MiB boundary of RAM plus text_offset, owning image_size bytes from there.
 * The DTB goes at the start of the last 2 MiB aligned block of RAM that holds dtb_size bytes
 * (so it never straddles a 2 MiB boundary), the initrd right below the DTB (page aligned),
 * but inside the 1 GiB aligned 32 GiB window booting.rst requires around the kernel.
 */
struct arm64_layout {
        uint64_t kernel_base;  /* 2 MiB aligned */
        uint64_t kernel_entry; /* kernel_base + text_offset: copy the Image here, enter here */
        uint64_t kernel_end;   /* kernel_entry + image_size */
        uint64_t dtb;          /* 2 MiB aligned */
        uint64_t dtb_end;      /* dtb + dtb_size */
        uint64_t initrd_start; /* page aligned; 0 if no initrd */
        uint64_t initrd_end;   /* initrd_start + initrd_size; 0 if no initrd */
};

int arm64_linux_plan(const struct arm64_layout_req *req, struct arm64_layout *out,
                     const char **why);

/* The VM's device tree. */
/* vCPU i is cpu@<reg>, reg its MPIDR affinity: Aff1 = i / 16, Aff0 = i % 16 (vgic_vcpu_mpidr) */
#define ARM64_LINUX_MAX_VCPUS   64
#define ARM64_LINUX_MAX_VIRTIO  8
#define ARM64_LINUX_SPI_MAX     987        /* SPI numbers 0..987 are INTIDs 32..1019 */
#define ARM64_LINUX_GICR_STRIDE 0x20000ull /* a GICv3 redistributor: RD and SGI frames */
#define ARM64_LINUX_PHANDLE_GIC 1
#define ARM64_LINUX_PHANDLE_CLK 2

struct arm64_linux_mmio_dev {
        uint64_t base;
        uint64_t size;
        uint32_t spi; /* SPI number as the DT writes it: INTID - 32 */
};

struct arm64_linux_vm {
        uint64_t ram_base;
        uint64_t ram_size;
        unsigned vcpus;
        const char *cmdline;   /* NULL: empty */
        uint64_t initrd_start; /* initrd_start == initrd_end: no initrd */
        uint64_t initrd_end;
        uint64_t gicd_base; /* GICv3 distributor */
        uint64_t gicd_size;
        uint64_t gicr_base; /* one redistributor region, ARM64_LINUX_GICR_STRIDE per vCPU */
        uint64_t gicr_size;
        struct arm64_linux_mmio_dev uart; /* PL011, also the stdout-path */
        struct arm64_linux_mmio_dev rtc;  /* PL031; size 0: none */
        unsigned virtio_count;
        struct arm64_linux_mmio_dev virtio[ARM64_LINUX_MAX_VIRTIO];
};

/*
 * Writes the DTB of `vm` into buf[0, cap) and sets *size to its length. Nodes: / (dummy-virt,
 * interrupt-parent the GIC), memory@, cpus/cpu@N (PSCI enable method), psci (HVC), intc@
 * (GICv3; #address-cells 0, which dtc wants in an interrupt provider), timer (PPIs 13, 14, 11, 10),
 * apb-pclk (24 MHz fixed clock), pl011@, pl031@ (if any), virtio_mmio@ each, chosen (bootargs,
 * stdout-path, linux,initrd-start/-end).
 */
int arm64_linux_fdt(const struct arm64_linux_vm *vm, void *buf, size_t cap, size_t *size,
                    const char **why);

#endif
