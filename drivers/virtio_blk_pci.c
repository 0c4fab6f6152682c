/*
 * virtio-blk over virtio-pci, the driver (virtio 1.2, 5.2;
 * drivers/include/drivers/virtio_blk_pci.h, docs/virtio-pci.md). A request is one descriptor chain:
 * the 16-byte header (type, sector) from Keel's header page, the request's segments
 * (device-writable for a read), the status byte (device-writable, in the same page). Several chains
 * are in flight; the used ring is reaped by vblk_reap, which checks every id the device returns and
 * every status byte.
 */
#include <stdio.h>
#include <string.h>

#include <drivers/virtio_blk_pci.h>
#include <keel/arch.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/irq.h>
#include <keel/log.h>
#include <keel/palloc.h>
#include <keel/time.h>

#define T_IN       0
#define T_OUT      1
#define T_FLUSH    4
#define S_OK       0
#define S_IOERR    1
#define S_UNSUPP   2
#define STATUS_OFF 1024
#define CFG_LEN    24 /* capacity, size_max, seg_max, geometry, blk_size (5.2.4) */
#define CFG_TRIES  8

_Static_assert(sizeof(struct vblk) <= PAGE_SIZE, "struct vblk fits its page");
_Static_assert(STATUS_OFF >= 16 * VQ_MAX_SIZE && STATUS_OFF + VQ_MAX_SIZE <= PAGE_SIZE,
               "headers and status bytes fit the header page");

static struct vblk *vblks[VBLK_MAX];
static unsigned nvblks;

unsigned vblk_count(void)
{
        return nvblks;
}

struct vblk *vblk_get(unsigned i)
{
        return i < nvblks ? vblks[i] : NULL;
}

void vblk_reset_for_test(void)
{
        nvblks = 0;
        memset(vblks, 0, sizeof(vblks));
}

static uint64_t ms_to_ticks(uint64_t ms)
{
        uint64_t khz = arch_tsc_khz();

        return ms * (khz ? khz : 4000000);
}

static bool has(const struct vblk *v, unsigned bit)
{
        return v->vp.features & VPCI_BIT(bit);
}

/* Completions collected under the lock, called after it is dropped (done() may submit). */
struct done_list {
        struct blk_req *head, *tail;
};

static void push_done(struct done_list *l, struct blk_req *r, int status)
{
        r->drv_tag = status ? 1 : 0;
        r->drv_next = NULL;
        if (l->tail)
                l->tail->drv_next = r;
        else
                l->head = r;
        l->tail = r;
}

static void call_done(struct done_list *l)
{
        for (struct blk_req *r = l->head, *next; r; r = next) {
                next = r->drv_next;
                r->done(r, r->drv_tag ? -KEEL_EIO : 0);
        }
}

/* Stop the device (no more DMA) and fail everything in flight. Lock held. */
static void fail(struct vblk *v, struct spin_held h, const char *why, struct done_list *l)
{
        (void)h;
        if (v->failed)
                return;
        v->failed = why;
        LOG_WARN("virtio-blk %s: %s failed: %s (status %#x); no more I/O to it", v->vp.name,
                 v->blk.name, why, virtio_pci_status(&v->vp));
        virtio_pci_stop(&v->vp);
        for (unsigned i = 0; i < VQ_MAX_SIZE; i++)
                if (v->req[i]) {
                        push_done(l, v->req[i], -KEEL_EIO);
                        v->req[i] = NULL;
                }
}

/* Queue one chain: header, data, status. Lock held. 0 or -KEEL_EAGAIN. */
static int queue_chain(struct vblk *v, struct spin_held h, struct blk_req *r, uint32_t type,
                       bool fua_flush)
{
        struct vq_buf b[VQ_MAX_SIZE];
        uint16_t head = v->q.free_head; /* vq_add takes the free list's head first */
        unsigned n = 0;
        uint8_t *hdr;
        int got;

        (void)h;
        if (v->q.num_free < 2)
                return -KEEL_EAGAIN;
        hdr = v->hdr + 16 * head;
        memset(hdr, 0, 16);
        hdr[0] = (uint8_t)type;
        if (type != T_FLUSH) {
                uint64_t sector = r->lba * (v->blk.block_size / 512);

                memcpy(hdr + 8, &sector, 8); /* little-endian, as the device wants (5.2.6) */
        }
        v->hdr[STATUS_OFF + head] = 0xff; /* not a status the device may write */
        b[n++] = (struct vq_buf){hpa_add(v->hdr_pa, 16ull * head), 16, false};
        for (unsigned i = 0; type != T_FLUSH && i < r->nseg; i++)
                b[n++] = (struct vq_buf){r->seg[i].pa, r->seg[i].len, type == T_IN};
        b[n++] = (struct vq_buf){hpa_add(v->hdr_pa, STATUS_OFF + head), 1, true};
        got = vq_add(&v->q, b, n);
        if (got < 0)
                return got;
        CHECK(got == head);
        v->req[head] = r;
        v->started[head] = arch_tsc();
        v->fua_flush[head] = fua_flush;
        vq_kick(&v->q);
        return 0;
}

static int blk_submit(struct blkdev *d, struct blk_req *r)
{
        struct vblk *v = d->priv;
        uint64_t total = 0;
        struct spin_held h;
        int err;

        if (r->op == BLK_FLUSH && !has(v, VBLK_F_FLUSH)) {
                if (v->failed)
                        return -KEEL_EIO;
                r->done(r, 0); /* no volatile cache to flush (docs/virtio-pci.md) */
                return 0;
        }
        if (r->op != BLK_FLUSH) {
                if ((r->op != BLK_READ && r->op != BLK_WRITE) || !r->nseg ||
                    r->nseg > v->max_descs || !r->blocks || r->lba >= d->blocks ||
                    r->blocks > d->blocks - r->lba || (r->op == BLK_WRITE && d->read_only))
                        return -KEEL_EINVAL;
                for (unsigned i = 0; i < r->nseg; i++) {
                        if (!r->seg[i].len || r->seg[i].len % d->block_size)
                                return -KEEL_EINVAL;
                        total += r->seg[i].len;
                }
                if (total != (uint64_t)r->blocks * d->block_size || total > d->max_transfer)
                        return -KEEL_EINVAL;
        }
        h = spin_lock(&v->lock);
        if (v->failed)
                err = -KEEL_EIO;
        else
                err = queue_chain(v, h, r,
                                  r->op == BLK_READ    ? T_IN
                                  : r->op == BLK_WRITE ? T_OUT
                                                       : T_FLUSH,
                                  false);
        spin_unlock(h);
        return err;
}

/* One used chain: its request done, or (a FUA write on a cached device) its FLUSH queued. */
static void complete(struct vblk *v, struct spin_held h, uint16_t head, struct done_list *l)
{
        struct blk_req *r = v->req[head];
        uint8_t st = v->hdr[STATUS_OFF + head];

        v->req[head] = NULL;
        if (st != S_OK) {
                LOG_WARN("virtio-blk %s: %s: %s of %u blocks at %llu: %s", v->vp.name, v->blk.name,
                         v->fua_flush[head]   ? "flush after a write"
                         : r->op == BLK_READ  ? "read"
                         : r->op == BLK_WRITE ? "write"
                                              : "flush",
                         r->blocks, (unsigned long long)r->lba,
                         st == S_IOERR    ? "I/O error"
                         : st == S_UNSUPP ? "unsupported"
                                          : "no valid status byte");
                push_done(l, r, -KEEL_EIO);
                return;
        }
        if (r->op == BLK_WRITE && r->fua && !v->fua_flush[head] && has(v, VBLK_F_FLUSH) &&
            queue_chain(v, h, r, T_FLUSH, true) == 0)
                return; /* done when the flush is (the write's chain freed >= 3 descriptors) */
        push_done(l, r, 0);
}

void vblk_reap(struct vblk *v)
{
        struct done_list l = {NULL, NULL};
        struct spin_held h = spin_lock(&v->lock);
        bool progress = false;

        while (!v->failed) {
                const char *why = NULL;
                uint32_t len;
                uint16_t head;
                int got = vq_get_used(&v->q, &head, &len, &why);

                if (got < 0)
                        fail(v, h, why, &l);
                if (got <= 0)
                        break;
                progress = true;
                complete(v, h, head, &l);
        }
        /* The device's status only when it completed nothing (an MMIO read); the deadlines
         * always, so a device that completes others cannot starve one request for ever. */
        if (!v->failed && !progress && v->q.in_flight) {
                uint8_t st = virtio_pci_status(&v->vp);

                if (st == 0xff)
                        fail(v, h, "the device is gone (status reads 0xff)", &l);
                else if (st & VPCI_S_NEEDS_RESET)
                        fail(v, h, "the device set DEVICE_NEEDS_RESET", &l);
                else if (!(st & VPCI_S_DRIVER_OK))
                        fail(v, h, "the device left DRIVER_OK", &l);
        }
        if (!v->failed && v->q.in_flight) {
                uint64_t now = arch_tsc(), limit = ms_to_ticks(v->timeout_ms);

                for (unsigned i = 0; i < VQ_MAX_SIZE && !v->failed; i++)
                        if (v->req[i] && now - v->started[i] > limit)
                                fail(v, h, "a request timed out", &l);
        }
        spin_unlock(h);
        call_done(&l);
}

static void blk_poll(struct blkdev *d)
{
        vblk_reap(d->priv);
}

static const struct blkdev_ops blk_ops = {.submit = blk_submit, .poll = blk_poll};

/*
 * From every CPU's scheduling round (keel/irq.h): these disks have no interrupts, and a VM's
 * disk (vmm/virtio_blk.c) does not wait for its requests, so this is what completes them.
 * The in-flight count is only a hint (a racy read: the next round looks again).
 */
static bool polling;

static void poll_all(void *arg)
{
        unsigned n = __atomic_load_n(&nvblks, __ATOMIC_ACQUIRE);

        (void)arg;
        for (unsigned i = 0; i < n; i++)
                if (__atomic_load_n(&vblks[i]->q.in_flight, __ATOMIC_RELAXED))
                        vblk_reap(vblks[i]);
}

/* ---- the boot self-test ----------------------------------------------------------------- */

struct st_wait {
        unsigned left;
        int err;
};

static void st_done(struct blk_req *r, int status)
{
        struct st_wait *w = r->ctx;

        if (status)
                w->err = status;
        w->left--;
}

/* Submit `n` requests at once and wait for all of them (each is bounded by the timeout). */
static int st_run(struct vblk *v, struct blk_req *rs, unsigned n)
{
        struct st_wait w = {n, 0};

        for (unsigned i = 0; i < n; i++) {
                int err;

                rs[i].done = st_done;
                rs[i].ctx = &w;
                while ((err = blk_submit(&v->blk, &rs[i])) == -KEEL_EAGAIN)
                        vblk_reap(v); /* a small queue: room comes with completions */
                if (err) {
                        w.err = err;
                        w.left -= n - i;
                        break;
                }
        }
        while (w.left)
                vblk_reap(v);
        return w.err;
}

/*
 * Writes only where the disk's owner allowed it: a disk whose block 0 begins with
 * VBLK_SCRATCH_MAGIC gets a pattern over blocks 1-16 as four writes in flight at once (the
 * last with FUA), a flush, and two reads of two segments each, compared. Any other disk is
 * only read (block 0).
 */
#define ST_BLOCKS 16

static void selftest(struct vblk *v)
{
        uint32_t bs = v->blk.block_size;
        uint64_t bytes = (uint64_t)ST_BLOCKS * bs;
        uint64_t pages = 2 * align_up(bytes, PAGE_SIZE) / PAGE_SIZE;
        struct blk_req rq[4];
        struct blk_seg seg[4];
        uint32_t sum = 2166136261u;
        uint8_t *wbuf, *rbuf;
        hpa_t pa, rpa;
        int err;

        if (palloc_alloc(&keel_palloc, pages, PAGE_SIZE, &pa))
                return;
        rpa = hpa_add(pa, pages / 2 * PAGE_SIZE);
        wbuf = hva_ptr(arch_hpa_to_hva(pa));
        rbuf = hva_ptr(arch_hpa_to_hva(rpa));
        seg[0] = (struct blk_seg){rpa, bs};
        rq[0] = (struct blk_req){.op = BLK_READ, .lba = 0, .blocks = 1, .seg = seg, .nseg = 1};
        if (st_run(v, rq, 1)) {
                LOG_WARN("virtio-blk %s: %s: reading block 0 failed", v->vp.name, v->blk.name);
                goto out;
        }
        for (unsigned i = 0; i < bs; i++)
                sum = (sum ^ rbuf[i]) * 16777619u;
        if (memcmp(rbuf, VBLK_SCRATCH_MAGIC, sizeof(VBLK_SCRATCH_MAGIC) - 1) != 0 ||
            v->blk.read_only || v->blk.blocks < 1 + ST_BLOCKS) {
                LOG_INFO("virtio-blk %s: %s block 0 read (FNV-1a %#x); not a writable "
                         "scratch disk: nothing written",
                         v->vp.name, v->blk.name, sum);
                goto out;
        }
        for (uint64_t i = 0; i < bytes; i++)
                wbuf[i] = (uint8_t)(i * 7 + (i >> 9) + 0x3c);
        memset(rbuf, 0, bytes);
        for (unsigned i = 0; i < 4; i++) {
                seg[i] = (struct blk_seg){hpa_add(pa, i * bytes / 4), (uint32_t)(bytes / 4)};
                rq[i] = (struct blk_req){.op = BLK_WRITE,
                                         .fua = i == 3,
                                         .lba = 1 + i * ST_BLOCKS / 4,
                                         .blocks = ST_BLOCKS / 4,
                                         .seg = &seg[i],
                                         .nseg = 1};
        }
        err = st_run(v, rq, 4);
        if (!err) {
                rq[0] = (struct blk_req){.op = BLK_FLUSH};
                err = st_run(v, rq, 1);
        }
        if (!err) {
                for (unsigned i = 0; i < 4; i++)
                        seg[i] =
                            (struct blk_seg){hpa_add(rpa, i * bytes / 4), (uint32_t)(bytes / 4)};
                for (unsigned i = 0; i < 2; i++)
                        rq[i] = (struct blk_req){.op = BLK_READ,
                                                 .lba = 1 + i * ST_BLOCKS / 2,
                                                 .blocks = ST_BLOCKS / 2,
                                                 .seg = &seg[2 * i],
                                                 .nseg = v->max_descs >= 2 ? 2 : 1};
                if (v->max_descs < 2)
                        for (unsigned i = 0; i < 2; i++) {
                                seg[2 * i].len *= 2; /* one segment of both halves */
                        }
                err = st_run(v, rq, 2);
        }
        if (err)
                LOG_WARN("virtio-blk %s: %s scratch self-test: I/O failed", v->vp.name,
                         v->blk.name);
        else if (memcmp(wbuf, rbuf, bytes) != 0)
                LOG_WARN("virtio-blk %s: %s scratch self-test: blocks 1-%u read back "
                         "differ",
                         v->vp.name, v->blk.name, ST_BLOCKS);
        else
                LOG_INFO("virtio-blk %s: %s scratch disk: wrote blocks 1-%u (4 requests in "
                         "flight), flushed and read back: ok",
                         v->vp.name, v->blk.name, ST_BLOCKS);
out:
        (void)palloc_free(&keel_palloc, pa, pages);
}

/* ---- probe ------------------------------------------------------------------------------ */

/* Capacity, size_max, seg_max and blk_size, read until config_generation holds (4.1.4.3.1). */
static bool read_config(struct vblk *v, uint32_t *size_max, uint32_t *seg_max, uint32_t *blk_size)
{
        for (unsigned t = 0; t < CFG_TRIES; t++) {
                uint8_t gen = virtio_pci_config_generation(&v->vp);

                v->sectors = virtio_pci_cfg32(&v->vp, 0) | (uint64_t)virtio_pci_cfg32(&v->vp, 4)
                                                               << 32;
                *size_max = virtio_pci_cfg32(&v->vp, 8);
                *seg_max = virtio_pci_cfg32(&v->vp, 12);
                *blk_size = virtio_pci_cfg32(&v->vp, 20);
                if (virtio_pci_config_generation(&v->vp) == gen)
                        return true;
        }
        return false;
}

/* Check the device's geometry and fill v->blk; NULL or why the disk is not used. */
static const char *geometry(struct vblk *v)
{
        uint32_t size_max, seg_max, bs = 512, segs;

        if (!read_config(v, &size_max, &seg_max, &bs))
                return "its configuration kept changing while read";
        if (!has(v, VBLK_F_BLK_SIZE))
                bs = 512;
        if (bs < 512 || bs > 65536 || (bs & (bs - 1)))
                return "block size not a power of two from 512 to 65536";
        if (v->sectors / (bs / 512) == 0)
                return "capacity below one block";
        if (v->q.size < 3)
                return "queue too small for a request";
        /* Without SEG_MAX the device promises nothing: one data segment, as Linux assumes. */
        segs = has(v, VBLK_F_SEG_MAX) ? seg_max : 1;
        if (!segs)
                return "seg_max 0";
        v->max_descs = segs < v->q.size - 2u ? segs : v->q.size - 2u;
        v->blk.max_transfer = VBLK_MAX_TRANSFER;
        /* size_max bounds each segment; a request no longer than it keeps every one inside. */
        if (has(v, VBLK_F_SIZE_MAX) && size_max < v->blk.max_transfer)
                v->blk.max_transfer = size_max & ~(bs - 1);
        if (v->blk.max_transfer < bs)
                return "size_max below one block";
        v->blk.blocks = v->sectors / (bs / 512);
        v->blk.block_size = bs;
        v->blk.seg_align = 1; /* descriptors take any address */
        v->blk.max_segs = v->max_descs;
        v->blk.volatile_cache = has(v, VBLK_F_FLUSH);
        v->blk.read_only = has(v, VBLK_F_RO);
        v->blk.polled = true; /* docs/virtio-pci.md: no interrupts yet */
        v->blk.ops = &blk_ops;
        v->blk.priv = v;
        return NULL;
}

static int probe(struct pci_dev *d)
{
        struct vblk *v;
        const char *why;
        hpa_t pa;
        int err;

        if (nvblks == VBLK_MAX)
                return -KEEL_ENOSPC;
        err = palloc_alloc(&keel_palloc, 2, PAGE_SIZE, &pa); /* struct vblk; headers */
        if (err)
                return err;
        v = hva_ptr(arch_hpa_to_hva(pa));
        v->hdr_pa = hpa_add(pa, PAGE_SIZE);
        v->hdr = hva_ptr(arch_hpa_to_hva(v->hdr_pa));
        spin_init(&v->lock);
        v->index = nvblks;
        v->timeout_ms = VBLK_TIMEOUT_MS;
        err = virtio_pci_init(&v->vp, d, CFG_LEN);
        if (!err)
                err = virtio_pci_negotiate(&v->vp,
                                           VPCI_BIT(VBLK_F_SIZE_MAX) | VPCI_BIT(VBLK_F_SEG_MAX) |
                                               VPCI_BIT(VBLK_F_RO) | VPCI_BIT(VBLK_F_BLK_SIZE) |
                                               VPCI_BIT(VBLK_F_FLUSH));
        if (err) {
                if (v->vp.common)
                        virtio_pci_stop(&v->vp);
                (void)palloc_free(&keel_palloc, pa, 2); /* the device was given no address */
                return err;
        }
        err = virtio_pci_queue_setup(&v->vp, &v->q, 0, VQ_MAX_SIZE);
        snprintf(v->blk.name, sizeof(v->blk.name), "vblk%u", v->index);
        why = err ? NULL : geometry(v);
        if (!err && why) {
                LOG_WARN("virtio-blk %s: %s: not used", v->vp.name, why);
                err = -KEEL_ENODEV;
        }
        if (!err) {
                virtio_pci_driver_ok(&v->vp);
                if (virtio_pci_status(&v->vp) & (VPCI_S_NEEDS_RESET | VPCI_S_FAILED)) {
                        LOG_WARN("virtio-blk %s: status %#x after DRIVER_OK: not used", v->vp.name,
                                 virtio_pci_status(&v->vp));
                        err = -KEEL_ENODEV;
                }
        }
        if (!err)
                err = blkdev_register(&v->blk);
        if (err) {
                /* Its pages stay allocated: a device that did not reset may still write them. */
                virtio_pci_stop(&v->vp);
                return err;
        }
        __atomic_store_n(&vblks[nvblks], v, __ATOMIC_RELAXED);
        __atomic_store_n(&nvblks, nvblks + 1, __ATOMIC_RELEASE);
        if (!polling && irq_poll_register(poll_all, NULL) == 0)
                polling = true;
        LOG_INFO("virtio-blk %s: %s: %llu blocks of %u bytes (%llu MiB), %s, %s, %u "
                 "segment%s, %u KiB per request, queue %u, polled",
                 v->vp.name, v->blk.name, (unsigned long long)v->blk.blocks, v->blk.block_size,
                 (unsigned long long)(v->sectors >> 11),
                 v->blk.read_only ? "read-only" : "read-write",
                 v->blk.volatile_cache ? "volatile write cache (FLUSH)"
                                       : "no FLUSH: writes durable when completed",
                 v->max_descs, v->max_descs == 1 ? "" : "s", v->blk.max_transfer >> 10, v->q.size);
        selftest(v);
        return 0;
}

/* Modern virtio-blk, and the transitional id (its virtio 1 interface is what Keel uses). */
static const struct pci_driver vblk_modern = {
    .name = "virtio-blk",
    .vendor = PCI_VENDOR_VIRTIO,
    .device = 0x1042,
    .class_mask = 0,
    .probe = probe,
};

static const struct pci_driver vblk_transitional = {
    .name = "virtio-blk",
    .vendor = PCI_VENDOR_VIRTIO,
    .device = 0x1001,
    .class_mask = 0,
    .probe = probe,
};

void vblk_register(struct pci_host *h)
{
        if (pci_register_driver(h, &vblk_modern) || pci_register_driver(h, &vblk_transitional))
                LOG_WARN("virtio-blk: the PCI driver table is full: virtio-blk-pci not "
                         "driven");
}
