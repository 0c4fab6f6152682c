/*
 * Snapshots of a paused VM (docs/snapshot.md): its RAM, every vCPU's registers and its device
 * models' state, in a versioned, self-describing byte format with a checksum, so that the VM
 * can later be restored to continue exactly where it was.
 *
 * Format (little-endian): a struct snap_header (magic, format version, arch, VM geometry),
 * then sections, each a struct snap_section (tag, index, length) and its payload, in a fixed
 * order (RAM regions, vCPUs, devices, end), then the 64-bit checksum (keel/hash.h) of every
 * byte before it. Generic code writes the header, RAM and the generic part of each vCPU; the
 * arch writes the rest through the arch_snapshot_* hooks below, and each device model has its
 * own save/load functions next to its code.
 *
 * Loading treats the snapshot as hostile input: it is read twice, first only to check every
 * field (nothing of the VM changes; the first problem refuses it with a one-line reason), then
 * to apply it, which can no longer fail.
 */
#ifndef VMM_SNAPSHOT_H
#define VMM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <keel/addr.h>

struct vm;
struct vcpu;

#define SNAP_MAGIC   "KEELSNAP"
#define SNAP_VERSION 3

/* Device models a snapshot holds (snap_header.devices); a restore needs the same set. */
#define SNAP_DEV_UART     (1u << 0) /* x86 16550 (vmm/vuart.c), arm64 PL011 (vmm/pl011.c) */
#define SNAP_DEV_RTC      (1u << 1) /* x86 CMOS RTC (vmm/rtc_cmos.c), arm64 PL031 (vmm/pl031.c) */
#define SNAP_DEV_TESTDEV  (1u << 2) /* x86 pc_testdev's latch */
#define SNAP_DEV_PLATFORM (1u << 3) /* Linux platform: x86 I/O APIC and LAPICs; arm64 GIC */
#define SNAP_DEV_VBLK     (1u << 4) /* virtio-mmio disk (vmm/virtio_blk.c) */
#define SNAP_DEV_VCON     (1u << 5) /* virtio-mmio console (vmm/virtio_console.c) */
#define SNAP_DEV_PIC      (1u << 6) /* x86 Linux platform's 8259 pair (arch/x86_64/vpic.c) */
#define SNAP_DEV_PIT      (1u << 7) /* x86 Multiboot VMs' 8254 PIT (arch/x86_64/vpit.c) */

struct snap_header {
        char magic[8];     /* SNAP_MAGIC, no NUL */
        uint32_t version;  /* SNAP_VERSION */
        uint32_t arch;     /* the arch's ELF machine: 62 x86_64, 183 aarch64 */
        uint64_t size;     /* of the whole snapshot, header and checksum included */
        uint64_t ram_base; /* the VM's RAM: one region, guest-physical */
        uint64_t ram_size;
        uint32_t vcpus;   /* vCPU sections that follow */
        uint32_t devices; /* SNAP_DEV_* */
        char name[32];    /* the VM's name when it was taken (NUL-terminated; not checked) */
        /* Keel's counter (arch_tsc) when it was taken: with each vCPU's counter offset it
         * gives the guest's counter then, from which a restore lets it continue. */
        uint64_t counter;
        uint64_t generation; /* on a partition: which of its two slots is newer (0 in memory) */
};

enum snap_tag {
        SNAP_TAG_RAM = 1,        /* index 0: the RAM, ram_size bytes */
        SNAP_TAG_VCPU = 2,       /* index: vCPU id; generic part, then the arch's */
        SNAP_TAG_DEVICES = 3,    /* the arch's devices (arch_snapshot_vm_*) */
        SNAP_TAG_END = 0x454e44, /* length 0 */
};

struct snap_section {
        uint32_t tag, index;
        uint64_t len; /* payload bytes after this */
};

/* A snapshot being written: into buf[0, cap); overflow set if it did not fit. */
struct snap_buf {
        uint8_t *buf;
        size_t cap, len;
        bool overflow;
};

/* A snapshot (or one section of it) being read; why: the first reason to refuse it. */
struct snap_rd {
        const uint8_t *p;
        size_t len, pos;
        bool apply; /* second pass: change the VM (everything was checked by the first) */
        /* Keel's counter now minus the header's counter: how far the arch moves each vCPU's
         * counter offset (and anything in Keel's counter's units) so that the guest's counter
         * goes on from its value at the snapshot. */
        uint64_t shift;
        char *why;
        size_t why_len;
};

void snap_put(struct snap_buf *b, const void *p, size_t n);
/* n bytes into p; false (and why says the section ends early) if fewer are left. */
bool snap_get(struct snap_rd *r, void *p, size_t n);
/* Refuse the snapshot: why = "<what>" (printf-style); returns -KEEL_EINVAL. */
int snap_fail(struct snap_rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The most bytes a snapshot of `vm` takes. */
uint64_t snapshot_max_size(const struct vm *vm);
/*
 * Write the whole state of `vm` (paused, none of its vCPUs on a CPU) into b; its length is
 * b->len. -KEEL_ENOSPC if it did not fit, -KEEL_ENOTSUP (why says which part) if the VM has
 * state Keel cannot save yet.
 */
int snapshot_save(struct vm *vm, struct snap_buf *b, char *why, size_t why_len);
/*
 * Check `len` bytes at `data` as a snapshot for `vm` (built from the same config, paused or
 * created, none of its vCPUs on a CPU) and, only if all of it is good, put the VM in that
 * state. -KEEL_EINVAL with a one-line reason in why if refused (the VM unchanged).
 */
int snapshot_load(struct vm *vm, const uint8_t *data, size_t len, char *why, size_t why_len);

/*
 * Keel's in-memory snapshots, one per VM, in a store the caller keeps across the VM's resets
 * and rebuilds (the VM table's slot): take one of `vm` (replacing the store's earlier one),
 * restore the store's into it. 0 or -KEEL_E* with a one-line message in msg either way.
 */
struct snapshot_store {
        hpa_t pa;
        uint64_t pages, len; /* pages 0: none */
        uint64_t disk_sum;   /* the checksum of the snapshot this boot wrote to its partition */
};

int snapshot_take(struct snapshot_store *s, struct vm *vm, char *msg, size_t len);
int snapshot_restore(const struct snapshot_store *s, struct vm *vm, char *msg, size_t len);
/* A header's magic, format version and arch: 0, or -KEEL_EINVAL with the first problem. */
int snap_header_check(const struct snap_header *h, char *why, size_t n);
/* The checksum of `len` bytes of snapshot (its last 8 bytes excluded), as stored there. */
uint64_t snap_checksum(const uint8_t *data, size_t len);

/*
 * Snapshots on a partition (vmm/snapdisk.c): the VM's `snapshot = DEV:part=...` as
 * vdisk_plan_snapshots resolved it. The snapshot lies from the partition's first block.
 */
struct blkdev;
struct snap_part {
        struct blkdev *dev;
        uint64_t start, blocks; /* the partition, in the device's blocks */
        const char *name;       /* as the config wrote it: "nvme0n1:part=NAME" */
        const char *disk;       /* the VM's disk on Keel's storage ("nvme0n1:part=..."), or NULL */
};

/*
 * Take the VM's snapshot (in memory, as snapshot_take) and write it to p, flushed; the memory
 * is freed again. s keeps the new snapshot's checksum (so a restore in this boot knows it).
 * Refused, with nothing written, if it does not fit the partition (msg says how big it must
 * be). 0 or -KEEL_E* with a one-line message either way.
 */
int snapshot_take_part(struct snapshot_store *s, struct vm *vm, const struct snap_part *p,
                       char *msg, size_t len);
/*
 * Read the snapshot from p and restore it (snapshot_load) after snapshot_part_check. A VM with
 * a disk on Keel's storage (p->disk) is restored only from the snapshot this boot wrote (s):
 * the disk's write count (docs/snapshot.md) does not survive a restart of Keel.
 */
int snapshot_restore_part(const struct snapshot_store *s, struct vm *vm, const struct snap_part *p,
                          char *msg, size_t len);
/*
 * The header found at a partition's first block, for vm `vm` and a partition of `room` bytes:
 * the magic, format version, arch, VM name and size (at most room). 0, or -KEEL_EINVAL with
 * the first problem in why.
 */
int snapshot_part_check(const struct snap_header *h, const char *vm, uint64_t room, char *why,
                        size_t n);

/*
 * Arch hooks (arch/<arch>/snapshot.c). The arch's bytes per vCPU and for the VM's devices at
 * most; the SNAP_DEV_* set the VM has; 0 if the VM can be snapshotted, else -KEEL_ENOTSUP with
 * the reason in why.
 */
size_t arch_snapshot_max(const struct vm *vm);
uint32_t arch_snapshot_devices(const struct vm *vm);
int arch_snapshot_check(const struct vm *vm, char *why, size_t len);
void arch_snapshot_vcpu_save(struct vcpu *vcpu, struct snap_buf *b);
int arch_snapshot_vcpu_load(struct vcpu *vcpu, struct snap_rd *r);
void arch_snapshot_vm_save(struct vm *vm, struct snap_buf *b);
int arch_snapshot_vm_load(struct vm *vm, struct snap_rd *r);
/*
 * The VM's virtio devices (vmm/build.c, which made them; the host tests' stand-in has none),
 * after the arch's in the devices section: their bytes at most, their SNAP_DEV_* set, save,
 * load (as arch_snapshot_vm_load).
 */
uint64_t vm_devices_snap_max(const struct vm *vm);
uint32_t vm_devices_snap_set(const struct vm *vm);
void vm_devices_save(struct vm *vm, struct snap_buf *b);
int vm_devices_load(struct vm *vm, struct snap_rd *r);

#endif
