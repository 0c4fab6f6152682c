/*
 * What the boot stage (boot/, UEFI) hands to Keel's kernel after ExitBootServices. Everything
 * here lives in memory the firmware marked as loader data, which the page allocator never
 * hands out.
 */
#ifndef KEEL_BOOT_H
#define KEEL_BOOT_H

#include <keel/addr.h>
#include <keel/palloc.h>

struct keel_config;

/* Memory for Keel's stacks, allocated by the boot stage as loader data. */
#define BOOT_STACK_AREA (128 * 1024)

struct boot_image {
        const char *path; /* as written in the config */
        const void *data; /* host-virtual (identity-mapped loader data) */
        uint64_t size;
};

/* The files of one VM: its image (or Linux kernel), initrd and disk; size 0 = none. */
struct boot_vm_files {
        struct boot_image image;
        struct boot_image initrd;
        struct boot_image disk;
};

#define BOOT_MAX_MAP_RANGES 128

/* A run of the firmware's memory map: cacheable memory (wb) or device/uncached space. */
struct boot_mem_range {
        hpa_t base;
        uint64_t pages;
        bool wb;
};

struct boot_info {
        /* Usable RAM for the page allocator: EfiConventionalMemory only. */
        struct mem_range usable[PALLOC_MAX_RANGES];
        unsigned usable_count;
        uint64_t usable_bytes;
        /* Highest physical address any memory-map entry reaches (for Keel's identity map). */
        uint64_t phys_top;
        /* Every memory-map entry, adjacent ones of the same kind merged (arm64's own map). */
        struct boot_mem_range map[BOOT_MAX_MAP_RANGES];
        unsigned map_count;
        hpa_t rsdp; /* ACPI RSDP, 0 if the firmware has none */
        hpa_t image_base;
        uint64_t image_size;
        const struct keel_config *config;
        struct boot_vm_files *vm_files; /* [i] belongs to config->vms[i] */
        unsigned map_tries;             /* GetMemoryMap/ExitBootServices rounds it took */
        hva_t stack_area; /* BOOT_STACK_AREA bytes for Keel's stacks (arch carves them) */
        /* A 4 KiB page below 1 MiB reserved as loader data, 0 if the firmware had none (x86:
         * the application processors' start-up trampoline, docs/smp.md). */
        hpa_t low_page;
        /* The firmware's time of day (UEFI GetTime, as UTC) in ns since the epoch, 0 if it gave
         * none, and arch_tsc() when it was read (keel/wallclock.h). */
        uint64_t wall_ns;
        uint64_t wall_tsc;
        uint64_t entry_tsc; /* arch_tsc() when efi_main began (tools/bench-scale) */
        /* The unique GUID of the GPT partition keel.efi was loaded from (on-disk byte order),
         * if the firmware's device path names one (docs/storage.md). */
        bool has_esp_uuid;
        uint8_t esp_uuid[16];
};

/* Arch: switch to Keel's own stack and call kernel_main(bi). */
_Noreturn void arch_enter_kernel(const struct boot_info *bi);

/* The kernel's entry, called on Keel's own stack after ExitBootServices. */
_Noreturn void kernel_main(const struct boot_info *bi);

#endif
