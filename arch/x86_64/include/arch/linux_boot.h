/*
 * Linux x86 boot protocol loader (pure C, host-tested; docs/linux-boot.md). Loads a bzImage
 * for its 64-bit entry point: the protected-mode kernel, the command line, an optional
 * initrd and the "zero page" (struct boot_params with the copied setup header and the e820
 * map) into low guest RAM [0, ram_size), all through the gmem API; the e820 map also lists
 * the RAM above the hole below 4 GiB (high_base, high_size).
 *
 * Everything is validated before the first byte is written, so a refused image leaves guest
 * RAM untouched. Every refusal is logged (LOG_ERR) with the file's name and the reason and
 * returns:
 *   not a bzImage (too short, no 0xAA55, no "HdrS"),
 *   setup header or setup code past the end of the file,
 *   no protected-mode kernel after the setup code                 -KEEL_ENOEXEC
 *   boot protocol older than 2.12, no LOADED_HIGH, no 64-bit
 *   entry (XLF_KERNEL_64), bad kernel_alignment                   -KEEL_ENOTSUP
 *   kernel (load address + init_size) larger than RAM, command
 *   line longer than cmdline_size, initrd that does not fit
 *   between the kernel and min(initrd_addr_max, RAM end)          -KEEL_E2BIG
 *   bad request (RAM smaller than 2 MiB, ACPI window outside
 *   [0x9fc00, 0x100000), missing data)                            -KEEL_EINVAL
 *   guest RAM [0, ram_size) or [high_base, +high_size) not backed
 *   by the gmem, or high RAM below ram_size                        -KEEL_EFAULT
 */
#ifndef ARCH_LINUX_BOOT_H
#define ARCH_LINUX_BOOT_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/addr.h>
#include <vmm/gmem.h>

/* Fixed guest-physical layout of a Linux VM (docs/linux-boot.md). */
#define LINUX_BOOT_PARAMS_GPA  0x7000ull   /* boot_params, 4 KiB */
#define LINUX_CMDLINE_GPA      0x20000ull  /* command line, NUL-terminated */
#define LINUX_LOW_RAM_END      0x9fc00ull  /* e820: RAM [0, here), then reserved */
#define LINUX_HIGH_RAM_START   0x100000ull /* e820: RAM [1 MiB, ram_size), then high RAM */
#define LINUX_DEFAULT_LOAD_GPA 0x100000ull /* non-relocatable kernels */
#define LINUX_CMDLINE_MAX_GPA  LINUX_LOW_RAM_END

/* Boot protocol constants (Documentation/arch/x86/boot.rst). */
#define LINUX_BOOT_MIN_VERSION     0x020c /* 2.12: xloadflags, 64-bit entry */
#define LINUX_BOOT_RSDP_VERSION    0x020e /* 2.14: acpi_rsdp_addr */
#define LINUX_LOADFLAG_LOADED_HIGH 0x01
#define LINUX_XLF_KERNEL_64        0x0001
#define LINUX_XLF_ABOVE_4G         0x0002
#define LINUX_TYPE_OF_LOADER       0xff /* "undefined" boot loader */
#define LINUX_BOOT_CS              0x10 /* __BOOT_CS: flat 64-bit code */
#define LINUX_BOOT_DS              0x18 /* __BOOT_DS: flat data */

/* e820 entry types. */
#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3

/* Offsets inside the image / boot_params (the setup header sits at the same offset in both). */
#define BP_ACPI_RSDP_ADDR     0x070 /* u64, protocol 2.14+ */
#define BP_EXT_RAMDISK_IMAGE  0x0c0 /* u32 */
#define BP_EXT_RAMDISK_SIZE   0x0c4 /* u32 */
#define BP_EXT_CMD_LINE_PTR   0x0c8 /* u32 */
#define BP_E820_ENTRIES       0x1e8 /* u8 */
#define BP_SENTINEL           0x1ef /* u8: must stay 0 */
#define BP_HDR                0x1f1 /* start of the setup header */
#define BP_SETUP_SECTS        0x1f1 /* u8 */
#define BP_BOOT_FLAG          0x1fe /* u16 0xAA55 */
#define BP_JUMP               0x200 /* u16; byte 0x201 + 0x202 = end of the header */
#define BP_HEADER_MAGIC       0x202 /* "HdrS" */
#define BP_VERSION            0x206 /* u16 */
#define BP_TYPE_OF_LOADER     0x210 /* u8 */
#define BP_LOADFLAGS          0x211 /* u8 */
#define BP_RAMDISK_IMAGE      0x218 /* u32 */
#define BP_RAMDISK_SIZE       0x21c /* u32 */
#define BP_CMD_LINE_PTR       0x228 /* u32 */
#define BP_INITRD_ADDR_MAX    0x22c /* u32 */
#define BP_KERNEL_ALIGNMENT   0x230 /* u32 */
#define BP_RELOCATABLE_KERNEL 0x234 /* u8 */
#define BP_XLOADFLAGS         0x236 /* u16 */
#define BP_CMDLINE_SIZE       0x238 /* u32 */
#define BP_SETUP_DATA         0x250 /* u64 */
#define BP_PREF_ADDRESS       0x258 /* u64 */
#define BP_INIT_SIZE          0x260 /* u32 */
#define BP_HDR_MIN_END        0x264 /* the header must reach past init_size */
#define BP_HDR_MAX_END        0x290 /* start of boot_params padding: copy no further */
#define BP_E820_TABLE         0x2d0 /* entries {u64 addr, u64 size, u32 type} */
#define BP_E820_ENTRY_SIZE    20
#define BP_E820_MAX           128
#define BP_SIZE               0x1000

struct linux_boot_req {
        const char *name; /* the kernel's path, for messages */
        const void *kernel;
        uint64_t kernel_size;
        const void *initrd; /* NULL or initrd_size 0: no initrd */
        uint64_t initrd_size;
        const char *initrd_name; /* for messages; NULL reads "initrd" */
        const char *cmdline;     /* NULL: empty */
        uint64_t rsdp_gpa;       /* 0: not passed (acpi_rsdp_addr needs protocol 2.14) */
        /* e820 input: low RAM is [0, ram_size) (the kernel and initrd go there), more RAM
         * [high_base, +high_size) above it (high_size 0: none; x86 VMs: from 4 GiB,
         * arch/ram_layout.h), both backed by the gmem; the ACPI tables are
         * [acpi_base, +acpi_size), which must lie inside [0x9fc00, 0x100000) (acpi_size 0: no
         * ACPI entry). */
        uint64_t ram_size;
        uint64_t high_base, high_size;
        gpa_t acpi_base;
        uint64_t acpi_size;
};

struct e820_entry {
        uint64_t addr;
        uint64_t size;
        uint32_t type;
};

struct linux_boot_info {
        gpa_t entry64;     /* 64-bit entry: kernel_load + 0x200; RSI = boot_params */
        gpa_t boot_params; /* LINUX_BOOT_PARAMS_GPA */
        gpa_t kernel_load; /* where the protected-mode kernel was copied */
        gpa_t kernel_end;  /* kernel_load + max(init_size, kernel bytes): the kernel's area */
        gpa_t cmdline;     /* LINUX_CMDLINE_GPA */
        uint64_t cmdline_len;
        gpa_t initrd; /* 0 if none */
        uint64_t initrd_size;
        uint16_t protocol; /* boot protocol version, e.g. 0x020f */
        unsigned e820_count;
        struct e820_entry e820[8]; /* the map written to boot_params */
};

/*
 * Loads the bzImage of `req` into `m` (which must back guest RAM [0, req->ram_size) and
 * [req->high_base, +req->high_size)) and
 * fills *out. The caller then enters at out->entry64 in 64-bit mode with RSI = boot_params,
 * CS = LINUX_BOOT_CS, DS/ES/SS = LINUX_BOOT_DS, an identity map covering RAM, interrupts off.
 */
int linux_boot_load(struct gmem *m, const struct linux_boot_req *req, struct linux_boot_info *out);

#endif
