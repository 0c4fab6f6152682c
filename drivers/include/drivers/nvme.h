/*
 * Keel's NVMe driver (docs/nvme.md): a PCI driver for NVM Express controllers (class 010802)
 * on Keel's PCI layer. Per controller: reset and enable, the admin queue, Identify
 * controller and namespaces, up to NVME_MAX_IOQ I/O queue pairs (one per host CPU, as many
 * as the controller grants); read, write and flush, asynchronous: up to a queue's depth of
 * commands in flight, completed by MSI-X interrupts where the arch delivers them (x86_64),
 * otherwise by polling (blkdev poll() and every CPU's scheduling round). Each command times
 * out after the controller's CAP.TO; a timed out command, a completion Keel cannot match or
 * CSTS.CFS fails the controller: it is disabled (CC.EN = 0, bus mastering off), every
 * outstanding request completes with -KEEL_EIO and later ones are refused until the
 * scheduling rounds have reset it (at most NVME_MAX_RESETS times); Keel goes on.
 *
 * DMA goes only into pages Keel allocated for this (queues, the Identify page, the PRP lists)
 * and into the segments of each request, which must be memory the device may touch.
 */
#ifndef DRIVERS_NVME_H
#define DRIVERS_NVME_H

#include <stdbool.h>
#include <stdint.h>

#include <drivers/blkdev.h>
#include <drivers/pci.h>
#include <keel/addr.h>
#include <keel/spinlock.h>

#define NVME_MAX_CTRLS  4
#define NVME_MAX_NS     8
#define NVME_MAX_IOQ    4  /* I/O queue pairs per controller */
#define NVME_IO_DEPTH   64 /* entries per I/O queue (or CAP.MQES); one fewer in flight */
#define NVME_MAX_RESETS 3  /* a failed controller is reset at most this often */

struct nvme_ctrl;

struct nvme_ns {
        uint32_t nsid;
        uint64_t blocks;
        uint32_t block_size;
        struct blkdev blk; /* "nvme<controller>n<nsid>", registered at probe */
        struct nvme_ctrl *ctrl;
};

/* An I/O command in flight: its request (NULL: the slot is free) and deadline. */
struct nvme_slot {
        struct blk_req *req;
        uint64_t deadline; /* arch_tsc() */
        uint8_t opcode;
};

struct nvme_queue {
        volatile uint8_t *sq;  /* entries of 64 bytes */
        volatile uint32_t *cq; /* entries of 16 bytes */
        hpa_t sq_pa, cq_pa;
        uint16_t size, sq_tail, sq_head, cq_head, cid;
        uint8_t phase;
        uint16_t qid;
        struct nvme_ctrl *ctrl;
        /* I/O queues only. Lock order: one queue lock at a time, none held calling done(). */
        struct spinlock lock;
        struct nvme_slot *slot; /* size - 1 of them, indexed by command id */
        uint8_t *prp;           /* a PRP list of prp_stride bytes per slot */
        hpa_t prp_pa;
        uint32_t prp_stride;
        unsigned inflight;
        unsigned cpu;             /* the CPU it belongs to: its interrupt goes there */
        uint8_t vector;           /* its MSI-X vector (entry qid), 0: polled */
        bool msix_on;             /* its MSI-X entry programmed (once the CPU is known) */
        bool irq_missed;          /* a poll found the lock taken: the holder reaps again */
        bool irq_pending;         /* an interrupt came: the next poll counts it as by_irq */
        uint64_t interrupts;      /* taken on its vector */
        uint64_t by_irq, by_poll; /* commands completed in the handler / by polling */
};

struct nvme_ctrl {
        struct pci_dev *pci;
        struct pci_host *host;
        volatile uint8_t *regs;
        volatile uint32_t *msix; /* its MSI-X table, NULL: polled */
        uint64_t cap;
        uint64_t timeout_ms; /* CAP.TO */
        struct nvme_queue admin, io[NVME_MAX_IOQ];
        unsigned nio;
        hpa_t page_pa; /* Identify data */
        uint8_t *page;
        char model[41], serial[21], firmware[9];
        char mode[48]; /* "MSI-X vectors 0x30-0x33" or "polled (why)" */
        uint32_t nn;
        bool vwc;              /* a volatile write cache: flush before claiming durability */
        uint32_t max_transfer; /* bytes per command (MDTS, at most one PRP list page) */
        struct nvme_ns ns[NVME_MAX_NS];
        unsigned ns_count;
        const char *failed; /* why it refuses I/O, or NULL */
        /* Recovery from the scheduling rounds (at most NVME_MAX_RESETS times). */
        struct spinlock reset_lock;
        uint8_t reset_state;
        unsigned resets;
        uint64_t reset_deadline;
        unsigned index; /* probe order: the N of nvmeN */
        char name[16];
};

/* Register the driver with `h` (before pci_scan / pci_boot). */
void nvme_register(struct pci_host *h);

/* The controllers the driver took, in probe order. */
unsigned nvme_count(void);
struct nvme_ctrl *nvme_get(unsigned i);

/*
 * Read or write `count` blocks from `lba` of namespace index `ns` (0 = the first active one)
 * to/from `buf`, host-physically contiguous, count * block_size bytes, at most max_transfer;
 * submitted like any request and waited for (boot code, tests). 0, -KEEL_EINVAL (out of
 * range, too long, misaligned buffer), or -KEEL_EIO (the command failed, timed out, or the
 * controller has failed: each reported once with a line).
 */
int nvme_read(struct nvme_ctrl *c, unsigned ns, uint64_t lba, uint32_t count, hpa_t buf);
int nvme_write(struct nvme_ctrl *c, unsigned ns, uint64_t lba, uint32_t count, hpa_t buf);
/* The device's volatile write cache to non-volatile media (a no-op success without one). */
int nvme_flush(struct nvme_ctrl *c, unsigned ns);

/* Reap every queue of `c`: completions, timeouts, a failed controller's requests. */
void nvme_poll(struct nvme_ctrl *c);

/* Forget every controller (host tests only: their models are gone). */
void nvme_reset_for_test(void);

#endif
