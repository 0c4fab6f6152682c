/*
 * Multiboot version 1 guest loader (pure C, host-tested and fuzzed; docs/guest-entry.md): the
 * kernel (an ELF32 executable, or any file with the header's address fields), its modules,
 * the command lines and the Multiboot information structure with a memory map, written into
 * guest RAM through the gmem API as QEMU's `-kernel` does for such a kernel.
 *
 * Everything is validated before the first byte is written, so a refused kernel leaves guest
 * RAM untouched. Every refusal is logged (LOG_ERR) with the file's name and the reason and
 * returns:
 *   no Multiboot header in the first 8192 bytes (magic, checksum,
 *   4-byte aligned), header truncated, mandatory flag Keel does not
 *   know, not ELF32 without the address fields, bad ELF32 (class,
 *   machine, type, headers or segments outside the file), address
 *   fields inconsistent                                            -KEEL_ENOEXEC
 *   kernel, a segment or a module larger than RAM                  -KEEL_E2BIG
 *   kernel or module outside RAM below 4 GiB, overlapping the
 *   reserved range, entry outside RAM                              -KEEL_EFAULT
 *   bad request (too many modules or map entries, command lines
 *   longer than the info area holds)                               -KEEL_EINVAL
 */
#ifndef VMM_MULTIBOOT_H
#define VMM_MULTIBOOT_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/addr.h>
#include <vmm/gmem.h>

#define MULTIBOOT_HEADER_MAGIC     0x1badb002u
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2badb002u /* EAX at entry */
#define MULTIBOOT_SEARCH           8192        /* the header lies in the file's first 8 KiB */

/* Header flags (Multiboot 0.6.96, 3.1.2). Bits 0-15 are mandatory: unknown ones refuse. */
#define MULTIBOOT_PAGE_ALIGN  (1u << 0)  /* modules page aligned (Keel always aligns them) */
#define MULTIBOOT_MEMORY_INFO (1u << 1)  /* mem_* and the map (Keel always gives them) */
#define MULTIBOOT_VIDEO_MODE  (1u << 2)  /* a video mode: Keel has no display, gives none */
#define MULTIBOOT_AOUT_KLUDGE (1u << 16) /* load from the header's address fields */
#define MULTIBOOT_KNOWN_FLAGS (MULTIBOOT_PAGE_ALIGN | MULTIBOOT_MEMORY_INFO | MULTIBOOT_VIDEO_MODE)

/* Information structure flags Keel sets (3.3). */
#define MBI_FLAG_MEMORY  (1u << 0)
#define MBI_FLAG_CMDLINE (1u << 2)
#define MBI_FLAG_MODS    (1u << 3)
#define MBI_FLAG_MMAP    (1u << 6)
#define MBI_FLAG_LOADER  (1u << 9)
/* Offsets in the information structure. */
#define MBI_FLAGS       0
#define MBI_MEM_LOWER   4
#define MBI_MEM_UPPER   8
#define MBI_CMDLINE     16
#define MBI_MODS_COUNT  20
#define MBI_MODS_ADDR   24
#define MBI_MMAP_LENGTH 44
#define MBI_MMAP_ADDR   48
#define MBI_LOADER_NAME 64
#define MBI_SIZE        88

/*
 * The info area, MULTIBOOT_INFO_AREA bytes at req->info: the structure at +0, the memory map
 * at +MB_MMAP_OFF, the module list at +MB_MODS_OFF, the boot loader's name at
 * +MB_NAME_OFF, the command lines (kernel's first, then each module's) from +MB_STR_OFF.
 */
#define MULTIBOOT_INFO_AREA 0x2000u
#define MB_MMAP_OFF         0x100u
#define MB_MODS_OFF         0x300u
#define MB_NAME_OFF         0x380u
#define MB_STR_OFF          0x400u
#define MULTIBOOT_MAX_MODS  4
#define MULTIBOOT_MAX_MMAP  16 /* 24 bytes each: fits before MB_MODS_OFF */

/* Memory map entry types (as e820's). */
#define MULTIBOOT_MEM_RAM      1
#define MULTIBOOT_MEM_RESERVED 2

struct multiboot_mmap {
        uint64_t addr, size;
        uint32_t type;
};

struct multiboot_module {
        const char *name; /* for messages */
        const void *data;
        uint64_t size;
        const char *cmdline; /* NULL: empty */
};

struct multiboot_req {
        const char *name; /* the kernel's path, for messages */
        const void *image;
        uint64_t size;
        const char *cmdline; /* the kernel's whole command line (QEMU: "path args"); NULL: "" */
        const struct multiboot_module *mods;
        unsigned nmods;
        /* Guest RAM below 4 GiB is [0, ram_size), all backed by the gmem (the kernel and its
         * modules go there); the map the guest is shown, which may list more RAM above. */
        uint64_t ram_size;
        const struct multiboot_mmap *mmap;
        unsigned nmmap;
        gpa_t info;          /* the info area (MULTIBOOT_INFO_AREA bytes, inside RAM) */
        gpa_t reserved_base; /* kernel and modules must not overlap it (info area inside) */
        uint64_t reserved_size;
};

struct multiboot_out {
        gpa_t entry;                   /* 32-bit protected mode, paging off, EAX = 0x2badb002 */
        gpa_t info;                    /* EBX */
        uint64_t kernel_lo, kernel_hi; /* [lo, hi): what the kernel occupies (with its bss) */
        uint64_t mod_start[MULTIBOOT_MAX_MODS], mod_end[MULTIBOOT_MAX_MODS];
        uint32_t mem_lower, mem_upper; /* KiB, as in the information structure */
        bool aout;                     /* loaded through the header's address fields */
};

int multiboot_load(struct gmem *m, const struct multiboot_req *req, struct multiboot_out *out);

#endif
