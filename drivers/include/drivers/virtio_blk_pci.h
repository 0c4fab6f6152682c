/*
 * Keel's virtio-blk driver over the modern virtio-pci transport (drivers/virtio_pci.h,
 * docs/virtio-pci.md): each device it takes (1af4:1042, or a transitional 1af4:1001 that has
 * the virtio 1 capabilities) is one block device `vblk<N>` (drivers/blkdev.h) with one
 * request queue of up to 64 descriptors and several requests in flight. Polled: requests
 * complete from vblk_reap (blkdev poll()), which an interrupt handler may call as well.
 * A request the device has not completed within timeout_ms fails the device: it is reset
 * and stopped, and every request in flight completes with -KEEL_EIO.
 */
#ifndef DRIVERS_VIRTIO_BLK_PCI_H
#define DRIVERS_VIRTIO_BLK_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include <drivers/blkdev.h>
#include <drivers/virtio_pci.h>
#include <keel/spinlock.h>

#define VBLK_MAX           8
#define VBLK_MAX_TRANSFER  (1u << 20) /* bytes per request Keel offers at most */
#define VBLK_TIMEOUT_MS    10000
#define VBLK_SCRATCH_MAGIC "KEEL-VBLK-SCRATCH"

/* virtio-blk feature bits (5.2.3) Keel negotiates. */
#define VBLK_F_SIZE_MAX 1
#define VBLK_F_SEG_MAX  2
#define VBLK_F_RO       5
#define VBLK_F_BLK_SIZE 6
#define VBLK_F_FLUSH    9

struct vblk {
        struct virtio_pci vp;
        struct vq q;
        struct blkdev blk;    /* "vblk<index>" */
        struct spinlock lock; /* the queue and the tables below */
        uint8_t *hdr;         /* a page: 16-byte request headers by head, status bytes at 1024 */
        hpa_t hdr_pa;
        struct blk_req *req[VQ_MAX_SIZE]; /* by head descriptor */
        uint64_t started[VQ_MAX_SIZE];    /* arch_tsc() at submit */
        uint8_t fua_flush[VQ_MAX_SIZE];   /* the chain is the FLUSH after a FUA write */
        uint64_t timeout_ms;
        uint64_t sectors;   /* capacity, 512-byte sectors */
        uint32_t max_descs; /* data descriptors per request */
        const char *failed; /* why it refuses I/O, or NULL */
        unsigned index;
};

/* Register the driver with `h` (before pci_scan / pci_boot). */
void vblk_register(struct pci_host *h);

/* The devices the driver took, in probe order. */
unsigned vblk_count(void);
struct vblk *vblk_get(unsigned i);

/* Forget every device (host tests and the fuzzer only; their memory is the caller's). */
void vblk_reset_for_test(void);

/* Reap the device's completions and call their done(); check for a timeout or NEEDS_RESET. */
void vblk_reap(struct vblk *v);

#endif
