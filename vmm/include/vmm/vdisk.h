/*
 * Which blocks of which of Keel's disks each VM's `disk = DEV:...` names (docs/storage.md),
 * decided once for the whole config before any VM is built: GPTs read and checked, the rule
 * that the disk holding Keel's own EFI system partition is used only through named
 * partitions and never gives away an EFI system partition, and no two VMs on the same blocks
 * unless both only read them.
 */
#ifndef VMM_VDISK_H
#define VMM_VDISK_H

#include <stdbool.h>
#include <stdint.h>

#include <drivers/blkdev.h>
#include <drivers/gpt.h>
#include <vmm/config.h>

#define VDISK_WHY_MAX 400

struct vdisk {
        struct blkdev *dev;     /* NULL: no such disk for this VM (why says why, if it asked) */
        uint64_t start, blocks; /* in the device's blocks */
        bool ro;
        char why[VDISK_WHY_MAX]; /* the VM stops load-failed with this */
};

/* Memory the plan reads GPTs with (Keel pages: the block is the device's DMA target). */
struct vdisk_scratch {
        uint8_t block[4096] __attribute__((aligned(4096)));
        struct gpt gpt;
};

/*
 * out[i] for cfg->vms[i] (only `disk = DEV:...` VMs get a device). boot_esp: the unique GUID
 * of the partition Keel was loaded from, or NULL when the firmware did not say (then every
 * disk with an EFI system partition counts as holding Keel's). Logs one warning line per
 * disk whose GPT had a bad copy.
 */
void vdisk_plan(const struct keel_config *cfg, const uint8_t *boot_esp, struct vdisk_scratch *s,
                struct vdisk *out);

/*
 * out[i]: the partition cfg->vms[i]'s `snapshot = DEV:part=...` names (docs/snapshot.md),
 * after vdisk_plan gave `disks`: resolved as a disk is (never an EFI system partition), and
 * refused (out[i].dev NULL, why naming the config lines) if any VM's disk or an earlier VM's
 * snapshot partition shares a block with it, or the disk is read-only.
 */
void vdisk_plan_snapshots(const struct keel_config *cfg, const uint8_t *boot_esp,
                          struct vdisk_scratch *s, const struct vdisk *disks, struct vdisk *out);

/* "nvme0n1:part=NAME" and the like, as the config wrote it. */
void vdisk_spec_text(const struct disk_source *d, char *buf, unsigned n);

#endif
