/*
 * virtio-blk (virtio 1.1, 5.2) with two backends (docs/storage.md): a disk image held in
 * Keel's memory (writes change that buffer only, lost when Keel reboots; the file on the ESP
 * is never written), or a range of blocks of a disk Keel drives (drivers/blkdev.h), where
 * the device moves data by DMA straight between the disk and the guest's buffers, translated
 * through the VM's own guest-physical map, and a request is acknowledged (used element,
 * interrupt) only from the device's done(). One request queue.
 *
 * A request is a chain whose device-readable part starts with the 16-byte header
 * {le32 type; le32 reserved; le64 sector} and whose device-writable part ends with the status
 * byte; data lies between (readable for T_OUT, writable for T_IN and GET_ID). The layout is
 * taken from the lengths, not from descriptor boundaries. A chain without header or status
 * byte, or with data in the wrong direction, is a violation (the queue stops, the device
 * needs reset); a well-formed request the disk cannot serve completes with IOERR or UNSUPP.
 */
#include <stdio.h>
#include <string.h>

#include <arch/relax.h>
#include <keel/errno.h>
#include <vmm/virtio.h>

#define BLK_HDR_BYTES 16
#define BLK_CFG_BYTES 36

/* FLUSH is offered where a completed write may still sit in a volatile cache (the RAM
 * backend offers it as it always did; its flush has nothing to do). */
static uint64_t blk_features(bool ro, bool flush)
{
        uint64_t f = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX) |
                     VIRTIO_BIT(VIRTIO_RING_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) |
                     VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE);

        if (flush)
                f |= VIRTIO_BIT(VIRTIO_BLK_F_FLUSH);
        return ro ? f | VIRTIO_BIT(VIRTIO_BLK_F_RO) : f;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
        for (unsigned i = 0; i < n; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * Config space: capacity (le64, sectors) at 0, size_max (le32) at 8, seg_max (le32) at 12,
 * geometry at 16 (not offered: 0), blk_size (le32) at 20, the rest 0. Read-only.
 */
static void blk_config_read(void *ctx, uint64_t off, unsigned size, uint64_t *val)
{
        const struct virtio_blk *b = ctx;
        uint8_t cfg[BLK_CFG_BYTES] = {0};

        put_le(cfg, b->sectors, 8);
        put_le(cfg + 8, VIRTIO_BLK_SIZE_MAX, 4);
        put_le(cfg + 12, VIRTIO_BLK_QUEUE_SIZE - 2, 4); /* header and status take two */
        put_le(cfg + 20, VIRTIO_BLK_SECTOR * b->spb, 4);
        virtio_config_bytes(cfg, sizeof(cfg), off, size, val);
}

/* The [sector, sector + bytes) range as a byte offset into the image, or false. */
static bool blk_range(const struct virtio_blk *b, uint64_t sector, uint64_t bytes, uint64_t *off)
{
        if (bytes % VIRTIO_BLK_SECTOR || sector > b->sectors ||
            bytes / VIRTIO_BLK_SECTOR > b->sectors - sector)
                return false;
        *off = sector * VIRTIO_BLK_SECTOR;
        return true;
}

static uint32_t le32_of(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Serve one popped chain; pushes its used element unless the queue broke. Data bytes moved. */
static uint64_t blk_request(struct virtio_blk *b, struct virtq *q, const struct virtq_chain *c)
{
        uint8_t hdr[BLK_HDR_BYTES], st = VIRTIO_BLK_S_OK;
        uint64_t data_out, data_in, off, written = 0;

        if (c->read_len < BLK_HDR_BYTES) {
                virtq_fail(q, "block request without a 16-byte device-readable header");
                return 0;
        }
        if (c->write_len < 1) {
                virtq_fail(q, "block request without a device-writable status byte");
                return 0;
        }
        if (virtq_chain_read(q, c, 0, hdr, sizeof(hdr)) != sizeof(hdr))
                return 0;
        uint32_t type = le32_of(hdr);
        uint64_t sector = (uint64_t)le32_of(hdr + 8) | (uint64_t)le32_of(hdr + 12) << 32;
        data_out = c->read_len - BLK_HDR_BYTES;
        data_in = c->write_len - 1;

        switch (type) {
        case VIRTIO_BLK_T_IN:
                if (data_out) {
                        virtq_fail(q, "block read with device-readable data buffers");
                        return 0;
                }
                if (!blk_range(b, sector, data_in, &off)) {
                        st = VIRTIO_BLK_S_IOERR;
                        break;
                }
                if (virtq_chain_write(q, c, 0, b->data + off, data_in) != (int64_t)data_in)
                        return 0;
                written = data_in;
                b->reads++;
                break;
        case VIRTIO_BLK_T_OUT:
                if (data_in) {
                        virtq_fail(q, "block write with device-writable data buffers");
                        return 0;
                }
                if (b->ro || !blk_range(b, sector, data_out, &off)) {
                        st = VIRTIO_BLK_S_IOERR;
                        break;
                }
                /* Into the image before the used element is published (virtq_push). */
                if (virtq_chain_read(q, c, BLK_HDR_BYTES, b->data + off, data_out) !=
                    (int64_t)data_out)
                        return 0;
                b->writes++;
                break;
        case VIRTIO_BLK_T_FLUSH:
                /* The buffer is the backing store: nothing is cached in front of it. */
                b->flushes++;
                break;
        case VIRTIO_BLK_T_GET_ID: {
                uint64_t n = data_in < VIRTIO_BLK_ID_BYTES ? data_in : VIRTIO_BLK_ID_BYTES;
                if (virtq_chain_write(q, c, 0, b->serial, n) != (int64_t)n)
                        return 0;
                written = n;
                break;
        }
        default:
                st = VIRTIO_BLK_S_UNSUPP;
                break;
        }
        if (st != VIRTIO_BLK_S_OK)
                b->errors++;
        if (virtq_chain_write(q, c, data_in, &st, 1) != 1)
                return 0;
        virtq_push(q, c->head, (uint32_t)(written + 1));
        return written + (type == VIRTIO_BLK_T_OUT && st == VIRTIO_BLK_S_OK ? data_out : 0);
}

/* ---- blkdev backend ---------------------------------------------------------------------- */

static bool dev_in(const struct virtio_blk_io *io)
{
        return io->type == VIRTIO_BLK_T_IN;
}

/*
 * The guest range holding data byte `off` of the request (T_OUT: the readable part from byte
 * 16; T_IN: the writable part without its last byte) and how many data bytes follow in it.
 */
static bool data_at(const struct virtq_chain *c, bool in, uint64_t off, gpa_t *a, uint64_t *len)
{
        unsigned i = in ? c->nread : 0, end = in ? c->nseg : c->nread;
        uint64_t p = in ? off : off + BLK_HDR_BYTES, pend = in ? c->write_len - 1 : c->read_len;
        uint64_t base = 0;

        for (; i < end && p < pend; i++) {
                if (p < base + c->seg[i].len) {
                        uint64_t n = base + c->seg[i].len - p;
                        *a = gpa_add(c->seg[i].addr, p - base);
                        *len = n < pend - p ? n : pend - p;
                        return true;
                }
                base += c->seg[i].len;
        }
        return false;
}

/*
 * Segments for the next piece straight into guest RAM: runs of guest buffers that meet the
 * device's rules (address a multiple of seg_align, length a multiple of the block size, the
 * piece within max_segs and max_transfer). 0 if the next buffer does not: it is bounced.
 */
static uint32_t direct_piece(struct virtio_blk *b, struct virtq *q)
{
        struct virtio_blk_io *io = &b->io;
        const struct blkdev *d = b->dev;
        uint64_t off = io->off, total = 0;
        unsigned n = 0, max = d->max_segs < VIRTIO_BLK_DEV_SEGS ? d->max_segs : VIRTIO_BLK_DEV_SEGS;

        while (off < io->total && n < max) {
                gpa_t a;
                uint64_t len;
                hpa_t pa;

                if (!data_at(&b->chain, dev_in(io), off, &a, &len))
                        break;
                if (len > io->total - off)
                        len = io->total - off;
                if (len > d->max_transfer - total)
                        len = d->max_transfer - total;
                len -= len % d->block_size;
                if (!len || gmem_translate(q->mem, a, len, &pa) ||
                    (hpa_raw(pa) & (d->seg_align - 1)))
                        break;
                io->seg[n++] = (struct blk_seg){.pa = pa, .len = (uint32_t)len};
                total += len;
                off += len;
        }
        io->req.nseg = n;
        return (uint32_t)total;
}

static void dev_done(struct blk_req *r, int status);

/* Submit the request's next piece. False if it could not be (status set to IOERR). */
static bool submit_piece(struct virtio_blk *b, struct virtq *q)
{
        struct virtio_blk_io *io = &b->io;
        struct blkdev *d = b->dev;
        uint32_t len = 0;
        int err;

        io->req = (struct blk_req){.op = BLK_FLUSH, .done = dev_done, .ctx = b, .seg = io->seg};
        io->bounced = false;
        if (io->type != VIRTIO_BLK_T_FLUSH) {
                len = direct_piece(b, q);
                if (!len) {
                        uint64_t left = io->total - io->off;
                        len = left < b->bounce_bytes ? (uint32_t)left : b->bounce_bytes;
                        io->bounced = true;
                        b->bounced++;
                        io->seg[0] = (struct blk_seg){.pa = b->bounce_pa, .len = len};
                        io->req.nseg = 1;
                        if (!dev_in(io) && virtq_chain_read(q, &b->chain, BLK_HDR_BYTES + io->off,
                                                            b->bounce, len) != (int64_t)len)
                                return false; /* the queue broke */
                }
                io->req.op = dev_in(io) ? BLK_READ : BLK_WRITE;
                io->req.lba = io->lba;
                io->req.blocks = len / d->block_size;
        }
        io->piece_len = len;
        io->flush_sent = true;
        io->piece_out = true;
        __atomic_store_n(&io->completed, 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(&io->gen, io->gen + 1, __ATOMIC_SEQ_CST);
        __atomic_store_n(&io->waiting, 1, __ATOMIC_SEQ_CST);
        err = d->ops->submit(d, &io->req);
        if (err) {
                __atomic_store_n(&io->waiting, 0, __ATOMIC_SEQ_CST);
                io->piece_out = false;
                io->status = VIRTIO_BLK_S_IOERR;
                return false;
        }
        /* A polled device: wait here for it (the vCPU waits; docs/storage.md). */
        while (d->ops->poll && !__atomic_load_n(&io->completed, __ATOMIC_SEQ_CST)) {
                d->ops->poll(d);
                if (!__atomic_load_n(&io->completed, __ATOMIC_SEQ_CST))
                        arch_cpu_relax();
        }
        __atomic_store_n(&io->waiting, 0, __ATOMIC_SEQ_CST);
        return true;
}

/* The piece out has completed (the caller claimed it): account for it. */
static void piece_done(struct virtio_blk *b, struct virtq *q)
{
        struct virtio_blk_io *io = &b->io;

        io->piece_out = false;
        if (io->stale)
                return;
        if (io->dev_status) {
                io->status = VIRTIO_BLK_S_IOERR;
                return;
        }
        if (io->bounced && dev_in(io) &&
            virtq_chain_write(q, &b->chain, io->off, b->bounce, io->piece_len) !=
                (int64_t)io->piece_len)
                return; /* the queue broke */
        io->off += io->piece_len;
        io->lba += io->piece_len / b->dev->block_size;
}

/* Finish the chain being served: status byte, used element (the acknowledgement). */
static void request_done(struct virtio_blk *b, struct virtq *q)
{
        struct virtio_blk_io *io = &b->io;
        uint8_t st = io->status;
        uint64_t data_in = dev_in(io) || io->type == VIRTIO_BLK_T_GET_ID ? io->total : 0;

        io->active = false;
        if (io->stale || q->broken)
                return;
        if (st != VIRTIO_BLK_S_OK)
                b->errors++;
        else if (io->type == VIRTIO_BLK_T_IN)
                b->reads++;
        else if (io->type == VIRTIO_BLK_T_OUT)
                b->writes++;
        else if (io->type == VIRTIO_BLK_T_FLUSH)
                b->flushes++;
        if (virtq_chain_write(q, &b->chain, b->chain.write_len - 1, &st, 1) != 1)
                return;
        virtq_push(q, b->chain.head, (uint32_t)((st == VIRTIO_BLK_S_OK ? data_in : 0) + 1));
}

/*
 * Whether completed piece number `gen` is ours to finish: the submitter (after submit() or
 * its polling) and a later done() may both see it completed; the first claim wins, and a
 * done() that waited for the lock while the submitter went on cannot take a later piece.
 */
static bool claim(struct virtio_blk_io *io, unsigned gen)
{
        unsigned expect = gen - 1;

        return __atomic_compare_exchange_n(&io->claimed, &expect, gen, false, __ATOMIC_SEQ_CST,
                                           __ATOMIC_SEQ_CST);
}

/*
 * Start a popped chain: validate it as the RAM backend does; requests the disk cannot serve
 * complete at once, reads, writes and flushes become pieces.
 */
static void dev_start(struct virtio_blk *b, struct virtq *q)
{
        struct virtio_blk_io *io = &b->io;
        const struct virtq_chain *c = &b->chain;
        uint8_t hdr[BLK_HDR_BYTES];
        uint64_t data_out, data_in, bytes, sector;

        if (c->read_len < BLK_HDR_BYTES) {
                virtq_fail(q, "block request without a 16-byte device-readable header");
                return;
        }
        if (c->write_len < 1) {
                virtq_fail(q, "block request without a device-writable status byte");
                return;
        }
        if (virtq_chain_read(q, c, 0, hdr, sizeof(hdr)) != sizeof(hdr))
                return;
        unsigned gen = io->gen, claimed = io->claimed; /* kept: a late done() names its piece */
        memset(io, 0, sizeof(*io));
        io->gen = gen;
        io->claimed = claimed;
        io->active = true;
        io->type = le32_of(hdr);
        sector = (uint64_t)le32_of(hdr + 8) | (uint64_t)le32_of(hdr + 12) << 32;
        data_out = c->read_len - BLK_HDR_BYTES;
        data_in = c->write_len - 1;
        bytes = io->type == VIRTIO_BLK_T_IN ? data_in : data_out;

        switch (io->type) {
        case VIRTIO_BLK_T_IN:
        case VIRTIO_BLK_T_OUT:
                if ((io->type == VIRTIO_BLK_T_IN && data_out) ||
                    (io->type == VIRTIO_BLK_T_OUT && data_in)) {
                        virtq_fail(q, io->type == VIRTIO_BLK_T_IN
                                          ? "block read with device-readable data buffers"
                                          : "block write with device-writable data buffers");
                        io->active = false;
                        return;
                }
                /* Inside the range, whole device blocks (no read-modify-write). */
                if ((io->type == VIRTIO_BLK_T_OUT && b->ro) || bytes % VIRTIO_BLK_SECTOR ||
                    sector > b->sectors || bytes / VIRTIO_BLK_SECTOR > b->sectors - sector ||
                    sector % b->spb || (bytes / VIRTIO_BLK_SECTOR) % b->spb)
                        io->status = VIRTIO_BLK_S_IOERR;
                io->lba = b->start + sector / b->spb;
                io->total = bytes;
                break;
        case VIRTIO_BLK_T_FLUSH:
                break;
        case VIRTIO_BLK_T_GET_ID: {
                uint64_t n = data_in < VIRTIO_BLK_ID_BYTES ? data_in : VIRTIO_BLK_ID_BYTES;
                if (virtq_chain_write(q, c, 0, b->serial, n) != (int64_t)n) {
                        io->active = false;
                        return;
                }
                io->total = io->off = n; /* written: nothing for the disk to do */
                break;
        }
        default:
                io->status = VIRTIO_BLK_S_UNSUPP;
                break;
        }
}

/*
 * Serve chains until one waits for the device, the ring is empty or the budget is spent.
 * Under the device's lock. True if chains are left for the notification's next execution.
 */
static bool dev_run(struct virtio_blk *b, struct virtq *q, bool budget)
{
        struct virtio_blk_io *io = &b->io;
        unsigned served = 0;

        for (;;) {
                if (io->active) {
                        if (io->piece_out)
                                return false; /* done() will come */
                        bool more = io->status == VIRTIO_BLK_S_OK && !q->broken && !io->stale &&
                                    (io->type == VIRTIO_BLK_T_FLUSH ? !io->flush_sent
                                                                    : io->off < io->total);
                        if (!more) {
                                request_done(b, q);
                                served++;
                                continue;
                        }
                        if (!submit_piece(b, q))
                                continue; /* IOERR or broken: finished next round */
                        if (__atomic_load_n(&io->completed, __ATOMIC_SEQ_CST) && claim(io, io->gen))
                                piece_done(b, q);
                        continue;
                }
                if (q->broken)
                        return false;
                if (budget && served >= VIRTIO_NOTIFY_BUDGET)
                        return virtq_end_batch(q);
                if (virtq_pop(q, &b->chain) > 0)
                        dev_start(b, q);
                else if (!virtq_end_batch(q))
                        return false;
        }
}

/*
 * The device completed a piece: called inside submit() or poll() (Keel is waiting: it only
 * marks) or later, from another CPU: then it takes the device's lock and carries on.
 */
static void dev_done(struct blk_req *r, int status)
{
        struct virtio_blk *b = r->ctx;
        struct virtio_blk_io *io = &b->io;
        unsigned gen = __atomic_load_n(&io->gen, __ATOMIC_SEQ_CST); /* the piece out */

        io->dev_status = status;
        __atomic_store_n(&io->completed, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&io->waiting, __ATOMIC_SEQ_CST))
                return;
        struct spin_held h = spin_lock(b->lock);
        if (claim(io, gen)) {
                struct virtq *q = virtio_mmio_queue(b->t, 0);
                piece_done(b, q);
                if (io->stale)
                        io->active = false;
                else if (virtio_mmio_running(b->t))
                        dev_run(b, q, false);
                virtio_mmio_queue_done(b->t, 0);
        }
        spin_unlock(h);
}

static bool blk_queue_notify(void *ctx, struct virtio_mmio *t, unsigned qi)
{
        struct virtio_blk *b = ctx;
        struct virtq *q = virtio_mmio_queue(t, qi);
        unsigned served = 0;
        uint64_t bytes = 0;

        if (!q)
                return false;
        if (b->dev)
                return dev_run(b, q, true);
        do {
                while (!q->broken && virtq_pop(q, &b->chain) > 0) {
                        bytes += blk_request(b, q, &b->chain);
                        if (++served == VIRTIO_NOTIFY_BUDGET || bytes >= VIRTIO_NOTIFY_BYTES)
                                return !q->broken && virtq_end_batch(q);
                }
        } while (!q->broken && virtq_end_batch(q));
        return false;
}

/* The driver reset the device: a piece with the device still completes (its DMA into guest
 * RAM cannot be called back), but nothing of it reaches the new rings. */
static void blk_reset(void *ctx)
{
        struct virtio_blk *b = ctx;

        if (b->io.piece_out)
                b->io.stale = true;
        else
                b->io.active = false;
}

int virtio_blk_init(struct virtio_blk *b, uint8_t *data, uint64_t size, bool read_only,
                    const char *vm, unsigned index)
{
        if (!b || (!data && size))
                return -KEEL_EINVAL;
        memset(b, 0, sizeof(*b));
        b->data = data;
        b->sectors = size / VIRTIO_BLK_SECTOR;
        b->size = b->sectors * VIRTIO_BLK_SECTOR;
        b->ro = read_only;
        b->spb = 1;
        /* 20 bytes, zero-padded; a longer name is cut (the spec's id has no terminator). */
        snprintf(b->serial, sizeof(b->serial), "keel-%s-%u", vm ? vm : "vm", index);
        b->vdev = (struct virtio_device){
            .device_id = VIRTIO_ID_BLOCK,
            .num_queues = 1,
            .queue_max = VIRTIO_BLK_QUEUE_SIZE,
            .features = blk_features(read_only, true),
            .ctx = b,
            .config_read = blk_config_read,
            .config_write = NULL, /* no writable field is offered */
            .queue_notify = blk_queue_notify,
            .reset = blk_reset,
        };
        return 0;
}

void virtio_blk_attach(struct virtio_blk *b, struct virtio_mmio *t)
{
        b->t = t;
}

int virtio_blk_init_blkdev(struct virtio_blk *b, struct blkdev *dev, uint64_t start,
                           uint64_t blocks, bool read_only, struct spinlock *lock, uint8_t *bounce,
                           hpa_t bounce_pa, uint32_t bounce_bytes, const char *vm, unsigned index)
{
        int err;

        if (dev && bounce_bytes > dev->max_transfer)
                bounce_bytes = dev->max_transfer;
        if (dev)
                bounce_bytes -= bounce_bytes % dev->block_size;
        if (!dev || !lock || !bounce || !bounce_bytes || start > dev->blocks ||
            blocks > dev->blocks - start)
                return -KEEL_EINVAL;
        err = virtio_blk_init(b, NULL, 0, read_only || dev->read_only, vm, index);
        if (err)
                return err;
        b->dev = dev;
        b->start = start;
        b->spb = dev->block_size / VIRTIO_BLK_SECTOR;
        b->sectors = blocks * b->spb;
        b->size = b->sectors * VIRTIO_BLK_SECTOR;
        b->lock = lock;
        b->bounce = bounce;
        b->bounce_pa = bounce_pa;
        b->bounce_bytes = bounce_bytes;
        b->vdev.features = blk_features(b->ro, dev->volatile_cache);
        return 0;
}

void virtio_blk_quiesce(struct virtio_blk *b)
{
        while (b->dev && __atomic_load_n(&b->io.piece_out, __ATOMIC_SEQ_CST)) {
                if (b->dev->ops->poll)
                        b->dev->ops->poll(b->dev);
                arch_cpu_relax();
        }
}
