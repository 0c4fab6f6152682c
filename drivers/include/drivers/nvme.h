/*
 * Keel's NVMe driver (docs/nvme.md): a PCI driver for NVM Express controllers (class 010802)
 * on Keel's PCI layer. Per controller: reset and enable, the admin queue, Identify
 * controller and namespaces, one I/O queue pair; read, write and flush, polled (completion
 * interrupts are not used yet). Commands time out after the controller's CAP.TO; a timed
 * out or fatal (CSTS.CFS) controller is reported and refuses further I/O, Keel goes on.
 *
 * DMA goes only into pages Keel allocated for this (queues, the Identify page, the PRP list
 * page) and into the caller's buffer of each read or write, which must be host-physically
 * contiguous memory the device may touch.
 */
#ifndef DRIVERS_NVME_H
#define DRIVERS_NVME_H

#include <stdbool.h>
#include <stdint.h>

#include <drivers/blkdev.h>
#include <drivers/pci.h>
#include <keel/addr.h>
#include <keel/spinlock.h>

#define NVME_MAX_CTRLS 4
#define NVME_MAX_NS    8

struct nvme_ctrl;

struct nvme_ns {
        uint32_t nsid;
        uint64_t blocks;
        uint32_t block_size;
        struct blkdev blk; /* "nvme<controller>n<nsid>", registered at probe */
        struct nvme_ctrl *ctrl;
};

struct nvme_queue {
        volatile uint8_t *sq;  /* entries of 64 bytes */
        volatile uint32_t *cq; /* entries of 16 bytes */
        hpa_t sq_pa, cq_pa;
        uint16_t size, sq_tail, sq_head, cq_head, cid;
        uint8_t phase;
        uint16_t qid;
};

struct nvme_ctrl {
        struct pci_dev *pci;
        volatile uint8_t *regs;
        uint64_t cap;
        uint64_t timeout_ms; /* CAP.TO */
        struct nvme_queue admin, io;
        hpa_t page_pa; /* Identify data; then the I/O queue's PRP list */
        uint8_t *page;
        char model[41], serial[21], firmware[9];
        uint32_t nn;
        bool vwc;              /* a volatile write cache: flush before claiming durability */
        uint32_t max_transfer; /* bytes per command (MDTS, at most one PRP list page) */
        struct nvme_ns ns[NVME_MAX_NS];
        unsigned ns_count;
        const char *failed;   /* why it refuses I/O, or NULL */
        struct spinlock lock; /* the I/O queue and the PRP list page */
        unsigned index;       /* probe order: the N of nvmeN */
        char name[16];
};

/* Register the driver with `h` (before pci_scan / pci_boot). */
void nvme_register(struct pci_host *h);

/* The controllers the driver took, in probe order. */
unsigned nvme_count(void);
struct nvme_ctrl *nvme_get(unsigned i);

/*
 * Read or write `count` blocks from `lba` of namespace index `ns` (0 = the first active one)
 * to/from `buf`, host-physically contiguous, count * block_size bytes, at most max_transfer.
 * 0, -KEEL_EINVAL (out of range, too long, misaligned buffer), or -KEEL_EIO (the command
 * failed, timed out, or the controller has failed: each reported once with a line).
 */
int nvme_read(struct nvme_ctrl *c, unsigned ns, uint64_t lba, uint32_t count, hpa_t buf);
int nvme_write(struct nvme_ctrl *c, unsigned ns, uint64_t lba, uint32_t count, hpa_t buf);
/* The device's volatile write cache to non-volatile media (a no-op success without one). */
int nvme_flush(struct nvme_ctrl *c, unsigned ns);

#endif
