/*
 * Block devices Keel drives itself (docs/storage.md): the one interface between a disk
 * driver (NVMe namespaces, virtio-blk-pci disks) and what uses the disks (a VM's virtio-blk
 * device, GPT, Keel's own self-tests). A driver registers one `struct blkdev` per disk it
 * serves; a user finds it by name and submits requests.
 *
 * Requests are asynchronous in shape: submit() queues a request and returns; the driver calls
 * its done() exactly once when the device has completed it (from its poll(), from Keel's
 * pollers, or inside submit()), never from an interrupt handler: done() may take locks (a
 * VM's device lock) and submit more, which a handler must not (keel/irq.h), so a driver's
 * handler defers its completions to the pollers (irq_poll_soon). A driver that is still
 * polled may complete inside submit(); callers must allow that. Data moves by DMA between the
 * device and the request's segments, which are host-physical ranges the caller owns until done()
 * (guest RAM translated through the VM's own mapping, or Keel pages allocated for I/O), never Keel
 * memory a guest could name.
 */
#ifndef DRIVERS_BLKDEV_H
#define DRIVERS_BLKDEV_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/addr.h>

enum blk_op {
        BLK_READ,
        BLK_WRITE,
        BLK_FLUSH, /* the device's volatile write cache to non-volatile media */
};

/* One host-physical piece of a request's data. */
struct blk_seg {
        hpa_t pa;
        uint32_t len;
};

struct blk_req {
        uint8_t op;      /* enum blk_op */
        bool fua;        /* BLK_WRITE: on media before done() (the driver flushes if it must) */
        uint64_t lba;    /* in the device's blocks */
        uint32_t blocks; /* READ/WRITE: the segments' lengths add up to blocks * block_size */
        const struct blk_seg *seg;
        unsigned nseg;
        /* Called once, with 0 or -KEEL_EIO (the device failed the request or timed out). */
        void (*done)(struct blk_req *r, int status);
        void *ctx;                /* the caller's */
        struct blk_req *drv_next; /* the driver's */
        uint32_t drv_tag;         /* the driver's */
};

struct blkdev;

struct blkdev_ops {
        /*
         * 0: accepted, done() will be (or already was) called. -KEEL_EAGAIN: the device's
         * queue is full; retry after a completion. -KEEL_EINVAL: the request is malformed for
         * this device (range, alignment, too many segments): done() is not called. -KEEL_EIO:
         * the device has failed: done() is not called.
         */
        int (*submit)(struct blkdev *d, struct blk_req *r);
        /* Reap completions (calls done()); may be NULL for a device that completes in submit. */
        void (*poll)(struct blkdev *d);
};

#define BLKDEV_NAME_MAX 24
#define BLKDEV_MAX      16

struct blkdev {
        char name[BLKDEV_NAME_MAX]; /* "nvme0n1", "vblk0": what the config names */
        uint64_t blocks;
        uint32_t block_size;   /* bytes, a power of two >= 512 */
        uint32_t max_transfer; /* bytes per request */
        uint32_t seg_align;    /* every segment's address is a multiple of this, and its length
                                  a multiple of block_size */
        unsigned max_segs;     /* segments per request */
        bool volatile_cache;   /* completed writes need BLK_FLUSH (or fua) to be durable */
        bool read_only;
        bool polled; /* no device interrupt: completions come only from poll() */
        const struct blkdev_ops *ops;
        void *priv;      /* the driver's */
        uint64_t writes; /* write requests guest disks sent it since boot (atomic; snapshots) */
};

/* Register `d` (the driver's storage, kept for ever). -KEEL_ENOSPC past BLKDEV_MAX,
 * -KEEL_EEXIST for a name already taken, -KEEL_EINVAL for a bad geometry. */
int blkdev_register(struct blkdev *d);
unsigned blkdev_count(void);
struct blkdev *blkdev_get(unsigned i);
struct blkdev *blkdev_find(const char *name);

/* Submit and wait for it (boot code, tests): polls the device until done(). 0 or an error. */
int blkdev_sync(struct blkdev *d, struct blk_req *r);

/*
 * A user waiting for requests of a `polled` device (no interrupt will wake an idle CPU for
 * them) holds polling on while they are out: an idle CPU then polls again at once instead of
 * sleeping (vmm/vmtable.c). Holds nest; blkdev_poll_wanted() is true while any is held.
 */
void blkdev_poll_hold(bool on);
bool blkdev_poll_wanted(void);

/* Forget every registration (host tests only). */
void blkdev_reset_for_test(void);

#endif
