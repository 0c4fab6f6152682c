/*
 * Keel's configuration file (docs/config.md): plain text, '#' comments, global keys first,
 * then one [vm NAME] section per VM. Parsed into a fixed-size struct without allocation, so
 * the same parser runs in the image, in host unit tests and under libFuzzer.
 */
#ifndef VMM_CONFIG_H
#define VMM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <keel/log.h>
#include <vmm/loader.h>
#include <vmm/vm.h>

#define CONFIG_PATH_MAX    128
#define CONFIG_ERR_MAX     256
#define CONFIG_CMDLINE_MAX 1008         /* a config line holds at most 1024 characters */
#define CONFIG_VCPUS_MAX   VM_MAX_VCPUS /* vcpus = 1..64 */

enum finish_action {
        FINISH_HALT = 0,   /* print the summary and halt the CPU */
        FINISH_DEBUG_EXIT, /* also write pass (0) / fail (1) to QEMU's isa-debug-exit at 0xf4 */
};

/* Developer self-tests Keel runs after taking the machine, before any VM. */
enum selftest {
        SELFTEST_NONE = 0,
        SELFTEST_EXCEPTION, /* take an invalid-opcode exception inside Keel: dump and panic */
};

/* How a `kernel =` is booted (key boot). */
enum kernel_boot {
        KERNEL_BOOT_LINUX = 0, /* the Linux boot protocol (bzImage / arm64 Image) */
        KERNEL_BOOT_MULTIBOOT, /* Multiboot version 1 (x86) */
};

/* Where a VM's virtio-blk disk comes from (key disk; docs/storage.md). */
enum disk_kind {
        DISK_FILE = 0, /* `disk = FILE` read into RAM from the ESP, or no disk (disk[] empty) */
        DISK_WHOLE,    /* DEV:whole */
        DISK_PART,     /* DEV:part=NAME (GPT partition name) */
        DISK_PARTUUID, /* DEV:partuuid=GUID (GPT unique partition GUID) */
        DISK_LBA,      /* DEV:lba=START+COUNT (device blocks) */
};

#define CONFIG_DISK_DEV_MAX  24  /* = BLKDEV_NAME_MAX */
#define CONFIG_DISK_PART_MAX 112 /* = GPT_NAME_MAX */

struct disk_source {
        enum disk_kind kind;
        unsigned line; /* of the disk = line */
        char dev[CONFIG_DISK_DEV_MAX];
        char part[CONFIG_DISK_PART_MAX];
        uint8_t uuid[16]; /* on-disk byte order */
        uint64_t lba, count;
};

struct vm_config {
        char name[VM_NAME_MAX];
        unsigned line;   /* line of the [vm NAME] header, for messages */
        uint64_t memory; /* bytes, multiple of 2 MiB, >= 2 MiB */
        /* The guest: either `image` (flat/ELF test guests) or `kernel` (a Linux bzImage). */
        char image[CONFIG_PATH_MAX];
        char kernel[CONFIG_PATH_MAX];
        char initrd[CONFIG_PATH_MAX];     /* optional, Linux only */
        char cmdline[CONFIG_CMDLINE_MAX]; /* optional, Linux only */
        char disk[CONFIG_PATH_MAX];       /* optional virtio-blk disk image, Linux only */
        struct disk_source disk_dev;      /* or a disk Keel drives (disk[] then empty) */
        bool disk_readonly;
        bool no_event_idx;      /* event_idx = no: virtio devices do not offer EVENT_IDX */
        bool no_virtio_console; /* virtio_console = no: no virtio-console device */
        enum kernel_boot boot;
        enum image_format format;
        bool has_load;
        uint64_t load;
        bool has_entry;
        uint64_t entry;
        /* What a test expects: an exit code, or a stop reason. At most one is set. */
        bool has_expect_exit;
        int64_t expect_exit;
        bool has_expect_stop;
        enum vm_stop_reason expect_stop;
        /* Scheduling (docs/scheduler.md). */
        uint32_t weight; /* CPU share: SCHED_WEIGHT_MIN..SCHED_WEIGHT_MAX, default 256 */
        int cpu;         /* physical CPU its vCPUs are pinned to (<= KEEL_CPU_INDEX_MAX), or
                            SCHED_NO_PIN (-1, the default); whether it exists is checked at boot */
        uint32_t vcpus;  /* 1..CONFIG_VCPUS_MAX, default 1 */
        /* unbacked = stop: a guest access to a guest-physical address with nothing behind it
         * stops the VM (outside-ram) instead of getting the architecture's fault. */
        bool unbacked_stop;
        /* pc_testdev = yes (x86 kernel = VMs): QEMU's pc-testdev IRQ-line ports, for
         * kvm-unit-tests (docs/config.md). */
        bool pc_testdev;
        /* snapshot = DEV:part=NAME | DEV:partuuid=GUID: the partition `snapshot VM` writes
         * (docs/snapshot.md); kind DISK_FILE: none, snapshots stay in memory. */
        struct disk_source snap_dev;
};

struct keel_config {
        enum log_level log_level;
        enum finish_action finish;
        enum selftest selftest;
        bool console_raw; /* console = raw: the focused VM's output unprefixed (vmm/vcons.h) */
        unsigned vm_count;
        /* The caller's room for vm_max VMs (config_vm_room of the text: as many as it has). */
        struct vm_config *vms;
        unsigned vm_max;
};

/*
 * Parse `len` bytes of `text` into `out`, whose vms / vm_max the caller has set (kept; the
 * rest is overwritten). On error returns a negative code and writes one line to `err`:
 * "<filename>:<line>: <problem>" (line 0 for whole-file problems such as no VM at all).
 * How many VMs a config may have is bounded only by the room the caller gives.
 */
int config_parse(const char *text, uint64_t len, const char *filename, struct keel_config *out,
                 char *err, uint64_t errlen);
/* How many VMs `text` can name at most (its '[' characters; at least 1): the room to give. */
unsigned config_vm_room(const char *text, uint64_t len);

#endif
