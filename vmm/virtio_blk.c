/*
 * virtio-blk (virtio 1.1, 5.2) with two backends (docs/storage.md): a disk image held in
 * Keel's memory (writes change that buffer only, lost when Keel reboots; the file on the ESP
 * is never written), or a range of blocks of a disk Keel drives (drivers/blkdev.h), where
 * the device moves data by DMA straight between the disk and the guest's buffers, translated
 * through the VM's own guest-physical map, and a request is acknowledged (used element,
 * interrupt) only from the device's done(). One request queue; the blkdev backend has up to
 * VIRTIO_BLK_INFLIGHT requests with the device at once and never waits for it.
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
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/irq.h>
#include <keel/time.h>
#include <vmm/snapshot.h>
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
/*
 * Up to VIRTIO_BLK_INFLIGHT requests at once (docs/storage.md, "Completion and concurrency"),
 * each in a slot of b->io. All of it runs under the VM's device lock (b->lock): the
 * notification (the transport's register access holds it) and a done() that comes later,
 * which takes it. A driver may call done() inside submit() or poll(), i.e. on this CPU with
 * the lock held: around every driver call the holder sets VIRTIO_BLK_DRV_BUSY in done_bits,
 * and a done() that finds it set only posts its slot's bit, which the holder reaps after the
 * call. A done() that finds it clear posts its bit and takes the lock (from another CPU it
 * waits for the holder, who never holds it across an interrupt window: keel/irq.h) and
 * reaps. done() never runs in an interrupt handler (drivers/blkdev.h): a driver's handler
 * defers its completions to the pollers (irq_poll_soon). Bit and flag are one word, so no
 * completion is left unreaped; done() counts itself in `callers` so that virtio_blk_quiesce
 * knows when the last one stopped touching the device.
 */

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
static uint32_t direct_piece(struct virtio_blk *b, struct virtq *q, struct virtio_blk_io *io)
{
        const struct blkdev *d = b->dev;
        uint64_t off = io->off, total = 0;
        unsigned n = 0, max = d->max_segs < VIRTIO_BLK_DEV_SEGS ? d->max_segs : VIRTIO_BLK_DEV_SEGS;

        while (off < io->total && n < max) {
                gpa_t a;
                uint64_t len;
                hpa_t pa;

                if (!data_at(&io->chain, dev_in(io), off, &a, &len))
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

/* Around a driver call under the lock: a done() inside it only posts its bit. */
static void drv_busy(struct virtio_blk *b, bool busy)
{
        if (busy)
                __atomic_fetch_or(&b->done_bits, VIRTIO_BLK_DRV_BUSY, __ATOMIC_SEQ_CST);
        else
                __atomic_fetch_and(&b->done_bits, ~VIRTIO_BLK_DRV_BUSY, __ATOMIC_SEQ_CST);
}

static void slot_free(struct virtio_blk *b, struct virtio_blk_io *io)
{
        CHECK(io->state != VBIO_FREE && b->active > 0);
        io->state = VBIO_FREE;
        b->active--;
}

/*
 * Submit the request's next piece. 0: it is out. -KEEL_EBUSY: it must be bounced and another
 * piece has the bounce pages. -KEEL_EAGAIN: the device's queue is full. -KEEL_EFAULT: the
 * queue broke. Anything else: the device refused it.
 */
static int submit_piece(struct virtio_blk *b, struct virtq *q, struct virtio_blk_io *io)
{
        struct blkdev *d = b->dev;
        uint32_t len = 0;
        int err;

        io->req = (struct blk_req){.op = BLK_FLUSH, .done = dev_done, .ctx = io, .seg = io->seg};
        io->bounced = false;
        if (io->type != VIRTIO_BLK_T_FLUSH) {
                len = direct_piece(b, q, io);
                if (!len) {
                        uint64_t left = io->total - io->off;

                        if (b->bounce_owner >= 0)
                                return -KEEL_EBUSY;
                        len = left < b->bounce_bytes ? (uint32_t)left : b->bounce_bytes;
                        io->bounced = true;
                        io->seg[0] = (struct blk_seg){.pa = b->bounce_pa, .len = len};
                        io->req.nseg = 1;
                        if (!dev_in(io) && virtq_chain_read(q, &io->chain, BLK_HDR_BYTES + io->off,
                                                            b->bounce, len) != (int64_t)len)
                                return -KEEL_EFAULT;
                }
                io->req.op = dev_in(io) ? BLK_READ : BLK_WRITE;
                io->req.lba = io->lba;
                io->req.blocks = len / d->block_size;
        }
        io->piece_len = len;
        io->state = VBIO_OUT;
        b->out++;
        if (io->bounced)
                b->bounce_owner = io->index;
        drv_busy(b, true);
        err = d->ops->submit(d, &io->req);
        drv_busy(b, false);
        if (err) {
                io->state = VBIO_READY;
                b->out--;
                if (io->bounced)
                        b->bounce_owner = -1;
                return err;
        }
        if (io->bounced)
                b->bounced++;
        if (io->req.op == BLK_WRITE)
                __atomic_add_fetch(&d->writes, 1, __ATOMIC_RELAXED);
        if (d->polled)
                blkdev_poll_hold(true);
        if (b->out > b->max_out)
                b->max_out = b->out;
        io->flush_sent = io->type == VIRTIO_BLK_T_FLUSH;
        return 0;
}

/* A piece completed (its bit reaped): account for it. */
static void piece_done(struct virtio_blk *b, struct virtq *q, struct virtio_blk_io *io)
{
        CHECK(io->state == VBIO_OUT && b->out > 0);
        io->state = VBIO_READY;
        b->out--;
        b->full = false; /* the device has room again */
        if (b->dev->polled)
                blkdev_poll_hold(false);
        if (io->stale) {
                slot_free(b, io);
        } else if (io->dev_status) {
                io->status = VIRTIO_BLK_S_IOERR;
        } else if (!io->bounced || !dev_in(io) ||
                   virtq_chain_write(q, &io->chain, io->off, b->bounce, io->piece_len) ==
                       (int64_t)io->piece_len) {
                io->off += io->piece_len;
                io->lba += io->piece_len / b->dev->block_size;
        } /* else the queue broke: the request ends unacknowledged */
        if (io->bounced)
                b->bounce_owner = -1;
}

/* Finish a request: status byte, used element (the acknowledgement), the slot freed. */
static void request_done(struct virtio_blk *b, struct virtq *q, struct virtio_blk_io *io)
{
        uint8_t st = io->status;
        uint64_t data_in = dev_in(io) || io->type == VIRTIO_BLK_T_GET_ID ? io->total : 0;

        slot_free(b, io);
        if (q->broken)
                return;
        if (st != VIRTIO_BLK_S_OK)
                b->errors++;
        else if (io->type == VIRTIO_BLK_T_IN)
                b->reads++;
        else if (io->type == VIRTIO_BLK_T_OUT)
                b->writes++;
        else if (io->type == VIRTIO_BLK_T_FLUSH)
                b->flushes++;
        if (virtq_chain_write(q, &io->chain, io->chain.write_len - 1, &st, 1) != 1)
                return;
        virtq_push(q, io->chain.head, (uint32_t)((st == VIRTIO_BLK_S_OK ? data_in : 0) + 1));
}

/*
 * A chain just popped into io->chain: validate it as the RAM backend does. Requests the disk
 * cannot serve are finished at once (READY with a status); reads, writes and flushes wait for
 * their pieces. A violation breaks the queue and frees the slot.
 */
static void dev_start(struct virtio_blk *b, struct virtq *q, struct virtio_blk_io *io)
{
        const struct virtq_chain *c = &io->chain;
        uint8_t hdr[BLK_HDR_BYTES];
        uint64_t data_out, data_in, bytes, sector;

        io->state = VBIO_READY;
        io->stale = io->bounced = io->flush_sent = false;
        io->status = VIRTIO_BLK_S_OK;
        io->seq = b->next_seq++;
        io->lba = io->off = io->total = 0;
        io->piece_len = 0;
        io->type = VIRTIO_BLK_T_GET_ID + 1; /* none, until the header is read */
        b->active++;
        if (c->read_len < BLK_HDR_BYTES) {
                virtq_fail(q, "block request without a 16-byte device-readable header");
                slot_free(b, io);
                return;
        }
        if (c->write_len < 1) {
                virtq_fail(q, "block request without a device-writable status byte");
                slot_free(b, io);
                return;
        }
        if (virtq_chain_read(q, c, 0, hdr, sizeof(hdr)) != sizeof(hdr)) {
                slot_free(b, io);
                return;
        }
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
                        slot_free(b, io);
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
                        slot_free(b, io);
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

/* Every piece whose done() posted its bit. True if there was one. */
static bool reap(struct virtio_blk *b, struct virtq *q)
{
        uint64_t bits = __atomic_fetch_and(&b->done_bits, VIRTIO_BLK_DRV_BUSY, __ATOMIC_SEQ_CST) &
                        ~VIRTIO_BLK_DRV_BUSY;

        for (unsigned i = 0; i < VIRTIO_BLK_INFLIGHT; i++)
                if (bits & (1ull << i))
                        piece_done(b, q, &b->io[i]);
        return bits != 0;
}

/* Whether a write taken from the ring before `f` is still being served (a flush waits). */
static bool earlier_writes(const struct virtio_blk *b, const struct virtio_blk_io *f)
{
        for (unsigned i = 0; i < VIRTIO_BLK_INFLIGHT; i++) {
                const struct virtio_blk_io *io = &b->io[i];

                if (io->state != VBIO_FREE && io->type == VIRTIO_BLK_T_OUT && io->seq < f->seq)
                        return true;
        }
        return false;
}

/* The READY slot taken first at or after `seq`, or NULL. */
static struct virtio_blk_io *next_ready(struct virtio_blk *b, uint64_t seq)
{
        struct virtio_blk_io *best = NULL;

        for (unsigned i = 0; i < VIRTIO_BLK_INFLIGHT; i++) {
                struct virtio_blk_io *io = &b->io[i];

                if (io->state == VBIO_READY && io->seq >= seq && (!best || io->seq < best->seq))
                        best = io;
        }
        return best;
}

/*
 * Move every READY request on, in the order they were taken: finish it, or submit its next
 * piece. After -KEEL_EAGAIN the later ones wait too (submitted as completions make room).
 * True if anything changed.
 */
static bool advance(struct virtio_blk *b, struct virtq *q)
{
        struct virtio_blk_io *io;
        bool progress = false;

        for (uint64_t seq = 0; (io = next_ready(b, seq)) != NULL; seq = io->seq + 1) {
                bool more =
                    io->status == VIRTIO_BLK_S_OK && !q->broken &&
                    (io->type == VIRTIO_BLK_T_FLUSH ? !io->flush_sent : io->off < io->total);
                int err;

                if (!more) {
                        request_done(b, q, io);
                        progress = true;
                        continue;
                }
                if (b->stopping) {
                        slot_free(b, io); /* the VM goes away: never acknowledged */
                        progress = true;
                        continue;
                }
                if (b->full)
                        continue; /* waits for room, in order */
                /* A flush covers the writes the guest saw completed; it also waits for those
                 * still being served that it took before (NVMe does not order commands). */
                if (io->type == VIRTIO_BLK_T_FLUSH && earlier_writes(b, io))
                        continue;
                err = submit_piece(b, q, io);
                if (err == -KEEL_EBUSY)
                        continue; /* its turn on the bounce pages comes at their completion */
                /* Full: retried at our next done(), or by polling the device (dev_pump). */
                if (err == -KEEL_EAGAIN && (b->out || b->dev->ops->poll)) {
                        b->full = true;
                        continue;
                }
                if (err && !q->broken)
                        io->status = VIRTIO_BLK_S_IOERR;
                progress = true;
        }
        return progress;
}

/* Take chains from the ring into free slots. True if any was taken. */
static bool take(struct virtio_blk *b, struct virtq *q, unsigned *budget)
{
        bool took = false;

        while (!b->stopping && !q->broken && b->active < VIRTIO_BLK_INFLIGHT && *budget &&
               virtio_mmio_running(b->t)) {
                struct virtio_blk_io *io = NULL;

                for (unsigned i = 0; !io && i < VIRTIO_BLK_INFLIGHT; i++)
                        if (b->io[i].state == VBIO_FREE)
                                io = &b->io[i];
                CHECK(io != NULL);
                int r = virtq_pop(q, &io->chain);
                if (r < 0)
                        break;
                if (r == 0)
                        break; /* dev_pump decides whether to ask for a notification */
                (*budget)--;
                dev_start(b, q, io);
                took = true;
        }
        return took;
}

/*
 * Interrupt moderation (docs/storage.md, "Interrupt moderation"). A device whose interrupt is
 * held is on mod_list; mod_poll, one of Keel's pollers (keel/irq.h), raises it once it has
 * waited VIRTIO_BLK_HOLD_US. The CPU that begins a hold asks for the pollers then, with
 * VIRTIO_BLK_SLACK_US of slack (irq_poll_by_slack), and a pass that leaves one held asks again
 * for it. mod_lock guards the list; it is taken before a device's lock, never after.
 */
static struct spinlock mod_lock = SPINLOCK_INIT;
static struct virtio_blk *mod_list;
static bool mod_polling; /* mod_poll registered: without it nothing is held */

static uint64_t hold_ticks(void)
{
        return tsc_from_us(VIRTIO_BLK_HOLD_US);
}

/* The pollers for a hold's bound: from then on a CPU entering a guest serves it, the timer
 * comes VIRTIO_BLK_SLACK_US later (irq_poll_by_slack): a busy guest's own exits release it. */
static void hold_poll(uint64_t bound)
{
        irq_poll_by_slack(bound, tsc_from_us(VIRTIO_BLK_SLACK_US));
}

static void hold_set(struct virtio_blk *b, bool on)
{
        if (b->held == on)
                return;
        __atomic_store_n(&b->held, on, __ATOMIC_RELAXED);
        if (on)
                hold_poll(b->held_at + hold_ticks());
}

/*
 * After a pass over the queue (under the lock): the used-buffer interrupt for the used
 * elements published since the last one (if the driver asked, used_event), now or held. Held
 * while the guest kept more than one request outstanding in its last batch, until
 * VIRTIO_BLK_BATCH wait or the first has waited VIRTIO_BLK_HOLD_US (or a vCPU halts:
 * virtio_blk_idle); `now`: not held.
 */
static void blk_signal(struct virtio_blk *b, struct virtq *q, bool now)
{
        uint16_t waiting = (uint16_t)(q->used_idx - q->signalled_used);
        unsigned outstanding = b->active + waiting;

        if (outstanding > b->peak)
                b->peak = outstanding;
        if (waiting && !now && b->deep && waiting < VIRTIO_BLK_BATCH && !q->broken &&
            !b->stopping && __atomic_load_n(&mod_polling, __ATOMIC_ACQUIRE)) {
                uint64_t t = arch_tsc();

                if (!b->held) {
                        b->held_at = t;
                        hold_set(b, true);
                        return;
                }
                if (t - b->held_at < hold_ticks())
                        return;
        }
        hold_set(b, false);
        if (waiting) {
                b->deep = b->peak > 1;
                b->peak = b->active;
        }
        if (virtio_mmio_queue_done(b->t, 0))
                b->interrupts++;
}

static bool pass(struct virtio_blk *b, struct virtq *q, bool now);

/* A pass of Keel's pollers: raise each interrupt held long enough (after taking the chains
 * posted meanwhile). A busy lock is tried again at the next pass. */
static void mod_poll(void *arg)
{
        (void)arg;
        /* Busy: another CPU's pass is at it, and asks again for what stays held (or a device
         * joins or leaves the list: the next scheduling round's pollers come soon after). */
        if (!spin_trylock(&mod_lock))
                return;
        for (struct virtio_blk *b = mod_list; b; b = b->next_mod) {
                uint64_t at;

                /* Under its lock, not by a look at `held` without it: the lock orders this
                 * pass after a hold begun before it, whose request this CPU may have just
                 * served unseen (irq_poll_by). Its lock busy: the pass holding it raises the
                 * interrupt if due; else again soon. Held on: again at the bound. */
                if (!spin_trylock(b->lock)) {
                        irq_poll_by(arch_tsc() + hold_ticks() / 8);
                        continue;
                }
                at = b->held ? b->held_at + hold_ticks() : 0;
                if (at && arch_tsc() >= at)
                        (void)pass(b, virtio_mmio_queue(b->t, 0), true);
                else if (at)
                        hold_poll(at);
                spin_unlock((struct spin_held){b->lock});
        }
        spin_unlock((struct spin_held){&mod_lock});
}

static void mod_link(struct virtio_blk *b, bool on)
{
        struct spin_held h = spin_lock(&mod_lock);
        struct virtio_blk **p = &mod_list;

        while (*p && *p != b)
                p = &(*p)->next_mod;
        if (on && !*p) {
                b->next_mod = NULL;
                *p = b;
        } else if (!on && *p) {
                *p = b->next_mod;
        }
        if (on && !mod_polling && irq_poll_register(mod_poll, NULL) == 0)
                __atomic_store_n(&mod_polling, true, __ATOMIC_RELEASE);
        spin_unlock(h);
}

/*
 * Reap completions, move requests on and take new chains until nothing changes. Under the
 * lock. True if the budget ran out with chains maybe left (the notification is executed
 * again).
 */
static bool dev_pump(struct virtio_blk *b, struct virtq *q)
{
        unsigned budget = VIRTIO_NOTIFY_BUDGET;
        bool progress;

again:
        do {
                progress = reap(b, q);
                progress |= advance(b, q);
                progress |= take(b, q, &budget);
                /* Full with nothing of ours out: no done() of ours will come to retry. Room
                 * is made by other users' requests, which the driver bounds by its timeout. */
                if (!progress && b->full && !b->out && b->dev->ops->poll) {
                        drv_busy(b, true);
                        b->dev->ops->poll(b->dev);
                        drv_busy(b, false);
                        arch_cpu_relax();
                        b->full = false;
                        progress = true;
                }
        } while (progress ||
                 (__atomic_load_n(&b->done_bits, __ATOMIC_SEQ_CST) & ~VIRTIO_BLK_DRV_BUSY));
        /*
         * With pieces out, their completions take whatever the driver posts meanwhile:
         * avail_event stays behind, so with EVENT_IDX the driver does not notify while work
         * is in flight. With none out, ask for a notification at the next chain (and look once
         * more for one that came meanwhile), unless an interrupt is held: the pass that raises
         * it (pass(), at the latest mod_poll's) takes what was posted meanwhile and asks then.
         */
        if (budget && !b->out && !b->held && b->active < VIRTIO_BLK_INFLIGHT && !b->stopping &&
            virtio_mmio_running(b->t) && virtq_end_batch(q))
                goto again;
        return budget == 0;
}

/* dev_pump, then the interrupt; if that released a hold, the notification request it
 * skipped (another pump). True as dev_pump. */
static bool pass(struct virtio_blk *b, struct virtq *q, bool now)
{
        bool held = b->held, again = dev_pump(b, q);

        blk_signal(b, q, now);
        if (held && !b->held && !again) {
                again = dev_pump(b, q);
                blk_signal(b, q, now);
        }
        return again;
}

/*
 * The device completed a piece: from inside submit() or poll() under the lock (the holder
 * reaps), or from another CPU's interrupt handler or poller (take the lock and carry on).
 */
static void dev_done(struct blk_req *r, int status)
{
        struct virtio_blk_io *io = r->ctx;
        struct virtio_blk *b = io->blk;

        __atomic_fetch_add(&b->callers, 1, __ATOMIC_SEQ_CST);
        io->dev_status = status;
        if (!(__atomic_fetch_or(&b->done_bits, 1ull << io->index, __ATOMIC_SEQ_CST) &
              VIRTIO_BLK_DRV_BUSY)) {
                struct spin_held h = spin_lock(b->lock);
                struct virtq *q = virtio_mmio_queue(b->t, 0);

                pass(b, q, false); /* with the used-buffer interrupt, if wanted, or held */
                spin_unlock(h);
        }
        __atomic_fetch_sub(&b->callers, 1, __ATOMIC_SEQ_CST); /* its last touch of b */
}

/* The RAM backend: every request served inside the notification. */
static bool ram_notify(struct virtio_blk *b, struct virtq *q)
{
        unsigned served = 0;
        uint64_t bytes = 0;

        do {
                while (!q->broken && virtq_pop(q, &b->chain) > 0) {
                        bytes += blk_request(b, q, &b->chain);
                        if (++served == VIRTIO_NOTIFY_BUDGET || bytes >= VIRTIO_NOTIFY_BYTES)
                                return !q->broken && virtq_end_batch(q);
                }
        } while (!q->broken && virtq_end_batch(q));
        return false;
}

static bool blk_queue_notify(void *ctx, struct virtio_mmio *t, unsigned qi)
{
        struct virtio_blk *b = ctx;
        struct virtq *q = virtio_mmio_queue(t, qi);
        bool again;

        if (!q)
                return false;
        b->notifies++;
        if (b->dev)
                return pass(b, q, false);
        again = ram_notify(b, q);
        if (virtio_mmio_queue_done(t, qi))
                b->interrupts++;
        return again;
}

/* The driver reset the device: a piece with the device still completes (its DMA into guest
 * RAM cannot be called back), but nothing of it reaches the new rings. Under the lock. */
static void blk_reset(void *ctx)
{
        struct virtio_blk *b = ctx;

        for (unsigned i = 0; i < VIRTIO_BLK_INFLIGHT; i++) {
                struct virtio_blk_io *io = &b->io[i];

                if (io->state == VBIO_OUT)
                        io->stale = true;
                else if (io->state == VBIO_READY)
                        slot_free(b, io);
        }
        if (b->dev) {
                hold_set(b, false); /* the rings' indexes start again at 0 */
                b->deep = false;
                b->peak = 0;
        }
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
            .signals_used = true, /* counts its interrupts; the blkdev backend moderates */
            .reset = blk_reset,
        };
        return 0;
}

void virtio_blk_attach(struct virtio_blk *b, struct virtio_mmio *t)
{
        b->t = t;
        if (b->dev)
                mod_link(b, true);
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
        b->bounce_owner = -1;
        for (unsigned i = 0; i < VIRTIO_BLK_INFLIGHT; i++) {
                b->io[i].index = (uint8_t)i;
                b->io[i].blk = b;
        }
        b->vdev.features = blk_features(b->ro, dev->volatile_cache);
        return 0;
}

/* Pump under the lock until `idle`; poll the device without it between rounds. */
static void dev_wait(struct virtio_blk *b, bool stop)
{
        for (;;) {
                struct spin_held h = spin_lock(b->lock);
                struct virtq *q = virtio_mmio_queue(b->t, 0);
                bool idle;

                if (stop)
                        b->stopping = true;
                if (stop) {
                        hold_set(b, false); /* the VM goes away: nothing more to announce */
                        idle = !dev_pump(b, q) && !b->out;
                } else {
                        idle = !pass(b, q, true) && !b->active;
                }
                spin_unlock(h);
                if (idle && !__atomic_load_n(&b->callers, __ATOMIC_SEQ_CST))
                        return;
                if (b->dev->ops->poll)
                        b->dev->ops->poll(b->dev);
                arch_cpu_relax();
        }
}

void virtio_blk_quiesce(struct virtio_blk *b)
{
        if (b->dev && b->t) {
                mod_link(b, false); /* the poller never touches it again */
                dev_wait(b, true);
        }
}

void virtio_blk_idle(struct virtio_blk *b)
{
        if (__atomic_load_n(&b->held, __ATOMIC_RELAXED))
                (void)pass(b, virtio_mmio_queue(b->t, 0), true);
}

void virtio_blk_drain(struct virtio_blk *b)
{
        if (b->dev && b->t)
                dev_wait(b, false);
}

/* ---- Snapshots ---- */

struct vblk_snap {
        uint64_t size;   /* the disk's bytes */
        uint64_t device; /* 0: a RAM disk, whose size bytes follow; 1: on a physical disk */
        uint64_t writes; /* that disk's write count (struct blkdev) */
};

__attribute__((cold)) void virtio_blk_save(const struct virtio_blk *b, struct snap_buf *b2)
{
        struct vblk_snap s = {b->size, b->dev != NULL,
                              b->dev ? __atomic_load_n(&b->dev->writes, __ATOMIC_RELAXED) : 0};

        CHECK(!b->active); /* drained (virtio_blk_drain): nothing but the rings' state */
        snap_put(b2, &s, sizeof(s));
        if (!b->dev)
                snap_put(b2, b->data, b->size);
}

__attribute__((cold)) int virtio_blk_load(struct virtio_blk *b, struct snap_rd *r)
{
        struct vblk_snap s;
        uint64_t writes;

        if (!snap_get(r, &s, sizeof(s)))
                return -KEEL_EINVAL;
        if (s.size != b->size || s.device != (b->dev != NULL) || (!b->dev && s.writes))
                return snap_fail(
                    r, "virtio-blk: a %s disk of %llu bytes, this VM's is a %s disk of %llu",
                    s.device ? "physical" : "RAM", (unsigned long long)s.size,
                    b->dev ? "physical" : "RAM", (unsigned long long)b->size);
        if (b->dev) {
                writes = __atomic_load_n(&b->dev->writes, __ATOMIC_RELAXED);
                if (s.writes != writes)
                        return snap_fail(r,
                                         "its disk %s has had %llu writes since the snapshot; "
                                         "RAM restored over a disk that moved on would corrupt its "
                                         "file systems (docs/snapshot.md: take a new snapshot)",
                                         b->dev->name, (unsigned long long)(writes - s.writes));
                return 0;
        }
        if (s.size > r->len - r->pos)
                return snap_fail(r, "virtio-blk: its disk runs past the section");
        if (r->apply)
                memcpy(b->data, r->p + r->pos, s.size);
        r->pos += s.size;
        return 0;
}
