/*
 * Virtio 1.1 over MMIO (version 2), split in three parts as in Firecracker:
 *   - the transport (vmm/virtio_mmio.c): the 0x200-byte register window, the device-status
 *     state machine, feature negotiation, queue setup and the interrupt status;
 *   - the split virtqueue (vmm/virtqueue.c): popping and validating descriptor chains from
 *     guest RAM, publishing used elements, event-index interrupt suppression;
 *   - devices (vmm/virtio_blk.c, vmm/virtio_console.c): a struct virtio_device of callbacks.
 * Everything guest-controlled is validated; guest RAM is touched only through vmm/gmem.h.
 * See docs/virtio.md.
 */
#ifndef VMM_VIRTIO_H
#define VMM_VIRTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <drivers/blkdev.h>
#include <keel/addr.h>
#include <keel/spinlock.h>
#include <vmm/gmem.h>
#include <vmm/irq.h>
#include <vmm/mmio.h>

/* Register offsets of the MMIO transport (virtio 1.1, 4.2.2). */
#define VIRTIO_MMIO_MAGIC_VALUE         0x000
#define VIRTIO_MMIO_VERSION             0x004
#define VIRTIO_MMIO_DEVICE_ID           0x008
#define VIRTIO_MMIO_VENDOR_ID           0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES     0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES     0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL           0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX       0x034
#define VIRTIO_MMIO_QUEUE_NUM           0x038
#define VIRTIO_MMIO_QUEUE_READY         0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY        0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS    0x060
#define VIRTIO_MMIO_INTERRUPT_ACK       0x064
#define VIRTIO_MMIO_STATUS              0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW      0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH     0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW    0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH   0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW    0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH   0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION   0x0fc
#define VIRTIO_MMIO_CONFIG              0x100
#define VIRTIO_MMIO_REGION_SIZE         0x200

#define VIRTIO_MMIO_MAGIC  0x74726976u /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x4b45454cu /* "KEEL" */

/* Device status bits (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1u
#define VIRTIO_STATUS_DRIVER      2u
#define VIRTIO_STATUS_DRIVER_OK   4u
#define VIRTIO_STATUS_FEATURES_OK 8u
#define VIRTIO_STATUS_NEEDS_RESET 64u
#define VIRTIO_STATUS_FAILED      128u

/* InterruptStatus bits. */
#define VIRTIO_INT_USED_BUFFER   1u
#define VIRTIO_INT_CONFIG_CHANGE 2u

/* Feature bits shared by all devices (6). */
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1          32
#define VIRTIO_BIT(b)               (1ull << (b))

/* Split virtqueue descriptor flags and ring flags (2.6). */
#define VIRTQ_DESC_F_NEXT          1
#define VIRTQ_DESC_F_WRITE         2
#define VIRTQ_DESC_F_INDIRECT      4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1

/* Limits of Keel's implementation. */
#define VIRTQ_MAX_SIZE        256        /* largest QueueNumMax a device may offer */
#define VIRTQ_MAX_CHAIN_BYTES (1u << 30) /* total length of one chain's descriptors */
#define VIRTIO_MAX_QUEUES     2          /* queues per device (blk 1, console 2) */
#define VIRTIO_LOG_BUDGET     32         /* warning lines one device may log, ever */
/*
 * Chains one notification exit serves at most. A driver (another vCPU) can keep a ring full
 * for as long as it likes: past the budget the notification is served in further exits (the
 * guest's store executed again), so the vCPU stays interruptible and the host CPU schedulable.
 */
#define VIRTIO_NOTIFY_BUDGET 64
/* Data bytes one notification exit moves: it stops after the chain that reaches this. */
#define VIRTIO_NOTIFY_BYTES (1u << 20)

/* One descriptor of a popped chain: a guest range the device may read or write. */
struct virtq_seg {
        gpa_t addr;
        uint32_t len;
        bool write; /* device-writable */
};

/*
 * A popped descriptor chain. Readable segments come first ([0, nread)), then writable ones
 * ([nread, nseg)); every segment was checked to lie inside guest RAM.
 */
struct virtq_chain {
        uint16_t head;
        unsigned nseg, nread;
        uint64_t read_len, write_len;
        struct virtq_seg seg[VIRTQ_MAX_SIZE];
};

/* A split virtqueue as the device sees it. */
struct virtq {
        /* Set by the transport's queue registers. */
        uint16_t num_max, num;
        bool ready;
        gpa_t desc, avail, used;
        /* Set at DRIVER_OK from the negotiated features. */
        bool event_idx, indirect;
        /* Device state. */
        const struct gmem *mem;
        uint16_t last_avail;     /* next avail ring slot to pop */
        uint16_t used_idx;       /* our copy of used->idx */
        uint16_t signalled_used; /* used_idx at the last interrupt decision */
        bool broken;             /* a violation was found: no more processing until reset */
        bool reported;           /* the transport logged it and set NEEDS_RESET */
        const char *error;       /* what was wrong (static string), when broken */
        uint64_t popped, pushed; /* chains popped / used elements published since reset */
};

/* Ring geometry (bytes) of a queue of `num` entries, event-index fields included. */
uint64_t virtq_desc_bytes(uint16_t num);
uint64_t virtq_avail_bytes(uint16_t num);
uint64_t virtq_used_bytes(uint16_t num);

/* Forget all state (reset): addresses 0, not ready, QueueNum = num_max. */
void virtq_reset(struct virtq *q, const struct gmem *mem, uint16_t num_max);
/*
 * Whether the driver's settings (num, alignment, rings inside guest RAM) are acceptable for
 * QueueReady = 1. Returns NULL if so, else a static string naming the problem.
 */
const char *virtq_check_setup(const struct virtq *q);
/*
 * Pop the next available chain into *c. Returns 1 if one was popped, 0 if the ring is empty
 * (or the queue is broken / not ready), -KEEL_EFAULT on a violation: the queue is then
 * broken (q->error says why) and nothing more is popped until reset.
 */
int virtq_pop(struct virtq *q, struct virtq_chain *c);
/*
 * Publish a used element for chain `head`, `len` bytes written by the device. The element
 * is visible before used->idx moves (write barrier). 0 or -KEEL_EFAULT (queue broken).
 */
int virtq_push(struct virtq *q, uint16_t head, uint32_t len);
/*
 * After a batch of pushes: with EVENT_IDX, ask the driver for a notification at the next
 * buffer (avail_event) and re-check for buffers that arrived meanwhile. Returns true if more
 * buffers are available (the caller processes them again).
 */
bool virtq_end_batch(struct virtq *q);
/*
 * Whether the driver wants an interrupt for the used elements published since the last
 * call (used_event with EVENT_IDX, else VIRTQ_AVAIL_F_NO_INTERRUPT).
 */
bool virtq_need_interrupt(struct virtq *q);
/*
 * Copy bytes of the chain's readable part, from offset `off` of that part, into buf;
 * copy buf into the writable part at offset `off`. Return the number of bytes copied
 * (short at the part's end) or -KEEL_EFAULT (queue broken).
 */
int64_t virtq_chain_read(struct virtq *q, const struct virtq_chain *c, uint64_t off, void *buf,
                         uint64_t len);
int64_t virtq_chain_write(struct virtq *q, const struct virtq_chain *c, uint64_t off,
                          const void *buf, uint64_t len);
/* Mark the queue broken with a reason (a device found a malformed request). */
void virtq_fail(struct virtq *q, const char *why);

struct virtio_mmio;

/*
 * A device model. `ctx` is passed back to every callback. Config accesses name an offset
 * inside the config space (0 = register 0x100) and a size of 1, 2, 4 or 8.
 */
struct virtio_device {
        uint32_t device_id;
        unsigned num_queues; /* <= VIRTIO_MAX_QUEUES */
        uint16_t queue_max;  /* QueueNumMax of every queue, a power of two <= 256 */
        uint64_t features;   /* offered, VIRTIO_F_VERSION_1 included */
        void *ctx;
        void (*config_read)(void *ctx, uint64_t off, unsigned size, uint64_t *val);
        void (*config_write)(void *ctx, uint64_t off, unsigned size, uint64_t val);
        /*
         * The driver notified queue `q` (ready, device DRIVER_OK and not broken). Serve at
         * most VIRTIO_NOTIFY_BUDGET chains; return true if more are waiting (the transport
         * then has the guest execute its notification again: see virtio_mmio_ops.again).
         */
        bool (*queue_notify)(void *ctx, struct virtio_mmio *t, unsigned q);
        /* queue_notify raises the used-buffer interrupt itself (virtio_mmio_queue_done) when
         * it decides to (interrupt moderation); else the transport does after it. */
        bool signals_used;
        /* The driver reset the device (status 0). */
        void (*reset)(void *ctx);
};

/* The MMIO transport of one device. */
struct virtio_mmio {
        const struct virtio_device *dev;
        const struct gmem *mem;
        struct irq_line irq;
        const char *name; /* e.g. "vm1/virtio-blk0", for log lines */
        uint32_t status;
        uint32_t dev_features_sel, drv_features_sel;
        uint64_t driver_features;
        bool driver_features_bad; /* a bit was written in a selector window beyond 63 */
        uint32_t queue_sel;
        uint32_t interrupt_status;
        uint32_t config_generation;
        unsigned log_budget;
        bool notify_again; /* the last QueueNotify write left chains for its next execution */
        struct virtq queues[VIRTIO_MAX_QUEUES];
};

/* The transport's register callbacks for mmio_bus_add (dev = struct virtio_mmio *). */
extern const struct mmio_ops virtio_mmio_ops;
/*
 * Empty transports (dev = const uint64_t *, the slot size: one region may span several slots):
 * MagicValue, Version 2, DeviceID 0 and VendorID at each slot's start, every other register 0,
 * writes ignored. DeviceID 0 is a placeholder a driver ignores without error (virtio 1.1,
 * 4.2.3.1.1), like QEMU virt's unused virtio-mmio slots.
 */
extern const struct mmio_ops virtio_mmio_empty_ops;

/*
 * Bind a transport to a device, guest RAM and interrupt line; the device starts reset.
 * -KEEL_EINVAL if the device description is unusable (Keel's own bug).
 */
int virtio_mmio_init(struct virtio_mmio *t, const struct virtio_device *dev, const struct gmem *mem,
                     struct irq_line irq, const char *name);
/* Register access at `offset` of the 0x200-byte window (what virtio_mmio_ops call). */
void virtio_mmio_read(struct virtio_mmio *t, uint64_t offset, unsigned size, uint64_t *val);
void virtio_mmio_write(struct virtio_mmio *t, uint64_t offset, unsigned size, uint64_t val);
/*
 * Whether the last register write was a QueueNotify whose queue still has chains waiting
 * beyond VIRTIO_NOTIFY_BUDGET (what virtio_mmio_ops.again answers; the answer clears it).
 */
bool virtio_mmio_write_again(struct virtio_mmio *t);
/* Queue `q` of the transport, or NULL. */
struct virtq *virtio_mmio_queue(struct virtio_mmio *t, unsigned q);
/* Whether the device may process queues (DRIVER_OK, not FAILED). */
bool virtio_mmio_running(const struct virtio_mmio *t);
/*
 * After a device processed queue `q` (from queue_notify or on its own, e.g. console
 * input): report a violation (NEEDS_RESET, config interrupt, one log line) or raise the
 * used-buffer interrupt if the driver wants one (then true).
 */
bool virtio_mmio_queue_done(struct virtio_mmio *t, unsigned q);
/* The device's config space changed: bump ConfigGeneration and interrupt. */
void virtio_mmio_config_changed(struct virtio_mmio *t);
/*
 * Helper for devices' config_read: the little-endian value of cfg[off, off+size), 0 if that
 * range is not inside the n-byte config image.
 */
void virtio_config_bytes(const uint8_t *cfg, size_t n, uint64_t off, unsigned size, uint64_t *val);

/* ---- virtio-blk (5.2) ---- */

#define VIRTIO_ID_BLOCK       2
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX  2
#define VIRTIO_BLK_F_RO       5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH    9
#define VIRTIO_BLK_T_IN       0
#define VIRTIO_BLK_T_OUT      1
#define VIRTIO_BLK_T_FLUSH    4
#define VIRTIO_BLK_T_GET_ID   8
#define VIRTIO_BLK_S_OK       0
#define VIRTIO_BLK_S_IOERR    1
#define VIRTIO_BLK_S_UNSUPP   2
#define VIRTIO_BLK_SECTOR     512
#define VIRTIO_BLK_ID_BYTES   20
#define VIRTIO_BLK_QUEUE_SIZE 128
#define VIRTIO_BLK_SIZE_MAX   (1u << 20) /* advertised largest segment */

/* Data pieces one device request of the blkdev backend carries at most. */
#define VIRTIO_BLK_DEV_SEGS 32
/*
 * Requests of a blkdev-backed device taken from the ring and not yet completed, at most
 * (docs/storage.md: "The I/O path"). Further chains wait in the guest's ring, in order.
 */
#define VIRTIO_BLK_INFLIGHT 32
#define VIRTIO_BLK_DRV_BUSY (1ull << 63) /* in virtio_blk.done_bits */
/*
 * Interrupt moderation of a blkdev-backed device (docs/storage.md): while the guest keeps
 * more than one request outstanding, the used-buffer interrupt of a completion is held back
 * until VIRTIO_BLK_BATCH used elements wait for it, the first of them has waited
 * VIRTIO_BLK_HOLD_US (then Keel's pollers raise it: at the next entry of a CPU into a guest,
 * VIRTIO_BLK_SLACK_US later at the latest) or a vCPU of the VM halts (virtio_blk_idle): only
 * a busy guest waits for it.
 */
#define VIRTIO_BLK_BATCH    16
#define VIRTIO_BLK_HOLD_US  4000
#define VIRTIO_BLK_SLACK_US 1000

enum virtio_blk_io_state {
        VBIO_FREE,  /* the slot holds no request */
        VBIO_READY, /* a request whose next piece is to be submitted (or which is finished) */
        VBIO_OUT,   /* a piece of it is with the device: its done() will come */
};

/*
 * One request of a blkdev-backed device (a slot). A request is served as pieces, one device
 * request at a time each: guest buffers straight (DMA into guest RAM) or through the bounce
 * pages. Written under the device's lock, except dev_status (by done(), before it posts the
 * slot's bit in done_bits).
 */
struct virtio_blk_io {
        uint8_t state;       /* enum virtio_blk_io_state */
        bool stale;          /* the driver reset the device meanwhile: drop the result */
        bool bounced;        /* the piece out went through the bounce pages */
        bool flush_sent;     /* T_FLUSH: its device flush was submitted */
        uint8_t status;      /* VIRTIO_BLK_S_* so far */
        uint8_t index;       /* of this slot */
        uint32_t type;       /* VIRTIO_BLK_T_* */
        uint64_t seq;        /* order in which the chains were taken from the ring */
        uint64_t lba;        /* device block of the next piece */
        uint64_t off, total; /* data bytes done / of the request */
        uint32_t piece_len;  /* data bytes of the piece out */
        int dev_status;      /* done()'s status of the piece out */
        struct virtio_blk *blk;
        struct blk_req req;
        struct blk_seg seg[VIRTIO_BLK_DEV_SEGS];
        struct virtq_chain chain;
};

struct virtio_blk {
        struct virtio_device vdev;
        struct virtio_mmio *t;
        uint8_t *data;    /* RAM backend: the disk image, owned by Keel (not persistent) */
        uint64_t size;    /* bytes, a multiple of 512 (a partial last sector is not exposed) */
        uint64_t sectors; /* capacity */
        bool ro;
        char serial[VIRTIO_BLK_ID_BYTES + 1];
        uint64_t reads, writes, flushes, errors, bounced;
        struct virtq_chain chain;
        /* blkdev backend (dev != NULL): blocks [start, start + sectors / spb) of dev. */
        struct blkdev *dev;
        uint64_t start;
        uint32_t spb;          /* 512-byte sectors per device block */
        struct spinlock *lock; /* the VM's device lock: every field below is under it... */
        uint8_t *bounce;       /* Keel pages for pieces the device cannot take in place */
        hpa_t bounce_pa;
        uint32_t bounce_bytes;
        int bounce_owner;   /* slot whose piece uses the bounce pages, or -1 */
        bool full;          /* the device refused a piece (-KEEL_EAGAIN): later ones wait */
        bool stopping;      /* virtio_blk_quiesce: nothing more is taken or submitted */
        unsigned active;    /* slots not FREE */
        unsigned out;       /* slots OUT (pieces with the device) */
        uint64_t next_seq;  /* seq of the next chain taken */
        uint64_t max_out;   /* most pieces with the device at once (statistics) */
        uint64_t done_bits; /* ...except these two, atomic: slots whose piece completed, and
                               VIRTIO_BLK_DRV_BUSY while a driver call runs under the lock */
        unsigned callers;   /* done() calls running (virtio_blk_quiesce waits for 0) */
        /* Interrupt moderation: held (atomic: the poller peeks) while used elements wait for
         * their interrupt, since held_at; deep while the guest kept more than one request
         * outstanding in its last batch (peak: the most since the last interrupt). */
        bool held, deep;
        unsigned peak;
        uint64_t held_at;
        uint64_t interrupts;         /* used-buffer interrupts raised (statistics) */
        uint64_t notifies;           /* the driver's notifications (statistics) */
        struct virtio_blk *next_mod; /* the moderation poller's list */
        bool listed;
        struct virtio_blk_io io[VIRTIO_BLK_INFLIGHT];
};

/*
 * A block device over `data` (size bytes; capacity = size / 512 sectors). The serial is
 * "keel-<vm>-<index>" (truncated to 20 bytes). Then bind it with
 * virtio_mmio_init(t, &b->vdev, ...) and call virtio_blk_attach(b, t).
 */
int virtio_blk_init(struct virtio_blk *b, uint8_t *data, uint64_t size, bool read_only,
                    const char *vm, unsigned index);
/*
 * A block device over `blocks` blocks of `dev` from block `start` (docs/storage.md). `lock`
 * is the lock the transport's register accesses run under (the VM's dev_lock); `bounce`
 * (host-virtual, at host-physical bounce_pa, bounce_bytes a multiple of the block size) is
 * Keel memory for requests whose guest buffers break the device's alignment rules.
 */
int virtio_blk_init_blkdev(struct virtio_blk *b, struct blkdev *dev, uint64_t start,
                           uint64_t blocks, bool read_only, struct spinlock *lock, uint8_t *bounce,
                           hpa_t bounce_pa, uint32_t bounce_bytes, const char *vm, unsigned index);
void virtio_blk_attach(struct virtio_blk *b, struct virtio_mmio *t);
/*
 * Before the VM's RAM and devices are given back (its vCPUs no longer run): take nothing
 * more from the ring, drop the requests not yet with the device, and wait (polling the
 * device) until no piece is out and no done() still runs. The device serves nothing after.
 */
void virtio_blk_quiesce(struct virtio_blk *b);
/*
 * A vCPU of the device's VM waits for an interrupt (HLT, WFI), under the lock: a used-buffer
 * interrupt held back for moderation is raised now (the guest has nothing else to do), with
 * the chains posted meanwhile taken first.
 */
void virtio_blk_idle(struct virtio_blk *b);
/*
 * With the VM's vCPUs paused (e.g. to save its device state): serve every chain the ring
 * holds and wait until each request taken is completed and its used element published, the
 * interrupt raised as the driver asked. Afterwards no request is in flight and the device
 * state is only the rings' (b->active == 0); the device keeps working. Without the lock held.
 */
void virtio_blk_drain(struct virtio_blk *b);

/* ---- virtio-console (5.3) ---- */

#define VIRTIO_ID_CONSOLE         3
#define VIRTIO_CONSOLE_QUEUE_SIZE 64
#define VIRTIO_CONSOLE_RX         0
#define VIRTIO_CONSOLE_TX         1
/*
 * Bytes of one transmit chain that reach Keel's console (Linux's hvc sends at most a page);
 * the rest is dropped and counted. With VIRTIO_NOTIFY_BYTES it bounds one exit's output.
 */
#define VIRTIO_CONSOLE_TX_MAX (64u << 10)

/* Where transmitted bytes go (e.g. a wrapper around vcons_putc). */
typedef void (*virtio_console_sink_fn)(void *sink_ctx, const uint8_t *buf, size_t len);

struct virtio_console {
        struct virtio_device vdev;
        struct virtio_mmio *t;
        virtio_console_sink_fn sink;
        void *sink_ctx;
        uint64_t tx_bytes, tx_dropped, rx_bytes, rx_dropped;
        struct virtq_chain chain;
};

int virtio_console_init(struct virtio_console *c, virtio_console_sink_fn sink, void *sink_ctx);
void virtio_console_attach(struct virtio_console *c, struct virtio_mmio *t);
/*
 * Input for the guest: fill receiveq buffers with up to len bytes. Bytes that find no buffer
 * (driver not ready, queue empty or broken) are dropped and counted in rx_dropped. Returns
 * the number of bytes delivered.
 */
size_t console_input(struct virtio_console *c, const uint8_t *bytes, size_t len);

/*
 * Snapshots (vmm/snapshot.h). A transport: its registers and each queue's setup and positions
 * (the rings themselves are in guest RAM); load checks them as a driver could have set them
 * (Status a state of the init sequence, features offered, ready queues inside RAM) and does
 * not drive the interrupt line (the interrupt controller's own state says it). A virtio-blk
 * device, drained first (virtio_blk_drain): a RAM disk's bytes; for a disk on Keel's storage
 * only that disk's write count, and load refuses it if the disk was written since.
 */
#define VIRTIO_SNAP_MAX 256 /* bytes of a transport's, or a disk's (but a RAM disk's bytes) */
struct snap_buf;
struct snap_rd;
void virtio_mmio_save(const struct virtio_mmio *t, struct snap_buf *b);
int virtio_mmio_load(struct virtio_mmio *t, struct snap_rd *r);
void virtio_blk_save(const struct virtio_blk *b, struct snap_buf *b2);
int virtio_blk_load(struct virtio_blk *b, struct snap_rd *r);

#endif
