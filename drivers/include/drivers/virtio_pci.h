/*
 * The driver side of virtio over PCI, modern transport only (virtio 1.2, 4.1; docs/virtio-pci.md),
 * and the driver side of a split virtqueue (2.7), for Keel's own virtio drivers (virtio-blk-pci
 * today, virtio_blk_pci.c). The transport finds the common, notify, ISR and device-specific
 * structures through the vendor capabilities drivers/pci.c recorded, maps their BARs as
 * device memory, runs the status handshake and feature negotiation, and sets queues up; the
 * device driver on top knows only features, its config space and its queues.
 *
 * Everything read from the device is checked: a structure outside its BAR or too short, a
 * notify offset outside the notify structure, a queue size of 0, a used-ring entry for a
 * descriptor Keel did not make available, a used index that moves past what is in flight. A
 * bad device gets one line and is not used (or stops being used); it never makes Keel crash.
 */
#ifndef DRIVERS_VIRTIO_PCI_H
#define DRIVERS_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include <drivers/pci.h>
#include <keel/addr.h>

/* Device status bits (2.1) and transport feature bits (6). */
#define VPCI_S_ACKNOWLEDGE     1u
#define VPCI_S_DRIVER          2u
#define VPCI_S_DRIVER_OK       4u
#define VPCI_S_FEATURES_OK     8u
#define VPCI_S_NEEDS_RESET     64u
#define VPCI_S_FAILED          128u
#define VPCI_F_VERSION_1       32
#define VPCI_F_ACCESS_PLATFORM 33
#define VPCI_BIT(b)            (1ull << (b))

/* Keel's queues: one page holds the descriptor table, the available and the used ring. */
#define VQ_MAX_SIZE 64

/*
 * How the transport touches a device's registers (width 1, 2 or 4 bytes): MMIO through
 * Keel's uncached map. Host tests point virtio_pci_io at a device model of their own, which
 * then answers every register access as it happens (select registers, reset).
 */
struct virtio_pci_io {
        uint32_t (*read)(volatile void *p, unsigned width);
        void (*write)(volatile void *p, unsigned width, uint32_t v);
};

extern const struct virtio_pci_io *virtio_pci_io;

struct virtio_pci {
        struct pci_dev *pci;
        char name[16]; /* "seg:bus:dev.fn" */
        volatile uint8_t *common, *isr, *device, *notify;
        uint32_t device_len, notify_len, notify_mult;
        uint64_t features; /* negotiated */
};

/* One buffer of a descriptor chain: device-writable or device-readable. */
struct vq_buf {
        hpa_t pa;
        uint32_t len;
        bool write;
};

struct vq {
        uint16_t index, size;
        volatile uint8_t *ring; /* the page: descriptors, then avail at 1024, used at 2048 */
        hpa_t ring_pa;
        volatile uint8_t *notify;
        uint16_t avail_idx, last_used, num_free, free_head, in_flight;
        /* Keel's own copy of the chains' links: the device cannot corrupt the free list. */
        uint16_t next[VQ_MAX_SIZE];
        uint8_t chain[VQ_MAX_SIZE]; /* descriptors of the chain headed here; 0: not in flight */
};

/*
 * Find the common, notify, ISR and device structures (the first of each type in a memory BAR
 * with the minimum length), map their BARs, reset the device and set ACKNOWLEDGE | DRIVER.
 * 0, or -KEEL_ENODEV with a `keel: virtio NAME: ...` line (legacy-only device, a structure
 * missing or too short, a reset that does not finish), or arch_map_device's error.
 */
int virtio_pci_init(struct virtio_pci *v, struct pci_dev *d, uint32_t min_device_len);
uint64_t virtio_pci_device_features(struct virtio_pci *v);
/*
 * Write `wanted` & the device's features (VERSION_1 must be among them) and set FEATURES_OK;
 * 0, or -KEEL_ENODEV with a line if the device did not keep FEATURES_OK.
 */
int virtio_pci_negotiate(struct virtio_pci *v, uint64_t wanted);
/*
 * Set queue `index` up with at most `max` entries (a power of two <= VQ_MAX_SIZE) in a page
 * from palloc: its size is the smaller of `max` and the device's. 0, -KEEL_ENODEV with a line
 * (no such queue, size 0, notify address outside the notify structure), -KEEL_ENOMEM.
 */
int virtio_pci_queue_setup(struct virtio_pci *v, struct vq *q, uint16_t index, uint16_t max);
void virtio_pci_driver_ok(struct virtio_pci *v);
uint8_t virtio_pci_status(const struct virtio_pci *v);
/* Write 0 to device_status and wait (bounded) until it reads 0: false if it did not. */
bool virtio_pci_reset(struct virtio_pci *v);
/*
 * The device must not touch memory any more (a failed device: the caller is about to give its
 * requests' buffers back): reset it, set FAILED, and turn bus mastering off.
 */
void virtio_pci_stop(struct virtio_pci *v);
uint8_t virtio_pci_config_generation(const struct virtio_pci *v);
/* A device-config field, `off` + width inside the device structure (checked at init). */
uint32_t virtio_pci_cfg32(const struct virtio_pci *v, uint32_t off);
uint16_t virtio_pci_cfg16(const struct virtio_pci *v, uint32_t off);
uint8_t virtio_pci_cfg8(const struct virtio_pci *v, uint32_t off);

/*
 * Make a chain of `n` buffers available (device-readable ones first): its head descriptor,
 * or -KEEL_EAGAIN if fewer than `n` descriptors are free. The caller notifies (vq_kick).
 */
int vq_add(struct vq *q, const struct vq_buf *b, unsigned n);
void vq_kick(struct vq *q);
/*
 * The next used entry: 1 and its chain's head in *head (the chain's descriptors freed), 0 if
 * the device has used nothing new, -KEEL_EIO if what it wrote is impossible (*why says what:
 * an index moving past what is in flight, an id that heads no chain in flight).
 */
int vq_get_used(struct vq *q, uint16_t *head, uint32_t *len, const char **why);

#endif
