/*
 * The blkdev backend of vmm/virtio_blk.c against a fake disk of the test's own
 * (drivers/blkdev.h): DMA segments are host-physical addresses inside the guest's RAM, the
 * partition offset and bounds, bouncing of buffers the device cannot take, FLUSH, device
 * errors, and the acknowledgement rule: a write's used element and interrupt come only from
 * the device's done(), whether it comes inside submit(), from poll() or later.
 */
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/spinlock.h>
#include <vmm/virtio.h>

#include "test.h"
#include "virtio_fake_driver.h"

#define QBASE  (FV_BASE + 0x1000)
#define HDR    (FV_BASE + 0x8000)
#define STATUS (FV_BASE + 0x9000)
#define DATA   (FV_BASE + 0x10000)
#define BOUNCE 8192u
#define BLOCKS 256u

enum mode { INLINE, POLLED, LATER };

static struct {
        enum mode mode;
        uint32_t bs;
        uint8_t disk[BLOCKS * 4096];
        struct blk_req *pending;
        unsigned submits, polls, flushes, segs_in_ram, segs_in_bounce;
        int fail; /* status of the next completions */
} fk;

static struct blkdev dev;
static struct virtio_blk blk;
static struct drv_q q;
static struct spinlock lock;
static uint8_t bounce[BOUNCE] __attribute__((aligned(4096)));
static struct fake_vm *vm;

static void perform(struct blk_req *r)
{
        uint64_t at = r->lba * fk.bs;

        for (unsigned i = 0; i < r->nseg; i++) {
                uint8_t *p = (uint8_t *)(uintptr_t)hpa_raw(r->seg[i].pa);
                if (p >= vm->ram && p + r->seg[i].len <= vm->ram + FV_SIZE)
                        fk.segs_in_ram++;
                else if (p >= bounce && p + r->seg[i].len <= bounce + BOUNCE)
                        fk.segs_in_bounce++;
                else
                        TEST_FAIL_AT(__FILE__, __LINE__, "segment outside guest RAM and bounce");
                if (r->op == BLK_READ)
                        memcpy(p, fk.disk + at, r->seg[i].len);
                else if (r->op == BLK_WRITE)
                        memcpy(fk.disk + at, p, r->seg[i].len);
                at += r->seg[i].len;
        }
        if (r->op == BLK_FLUSH)
                fk.flushes++;
}

static void complete(void)
{
        struct blk_req *r = fk.pending;

        ASSERT_TRUE(r != NULL);
        fk.pending = NULL;
        perform(r);
        r->done(r, fk.fail);
}

static int fake_submit(struct blkdev *d, struct blk_req *r)
{
        uint64_t total = 0;

        fk.submits++;
        if (r->op != BLK_FLUSH) {
                if (!r->nseg || r->nseg > d->max_segs || !r->blocks ||
                    r->lba + r->blocks > d->blocks)
                        return -KEEL_EINVAL;
                for (unsigned i = 0; i < r->nseg; i++) {
                        if (r->seg[i].len % d->block_size || hpa_raw(r->seg[i].pa) % d->seg_align)
                                return -KEEL_EINVAL;
                        total += r->seg[i].len;
                }
                if (total != (uint64_t)r->blocks * d->block_size || total > d->max_transfer)
                        return -KEEL_EINVAL;
        }
        fk.pending = r;
        if (fk.mode == INLINE)
                complete();
        return 0;
}

static void fake_poll(struct blkdev *d)
{
        (void)d;
        if (fk.pending && ++fk.polls % 3 == 0)
                complete();
}

static const struct blkdev_ops ops_inline = {.submit = fake_submit, .poll = NULL};
static const struct blkdev_ops ops_polled = {.submit = fake_submit, .poll = fake_poll};

/* A disk of 512- or 4096-byte blocks; the VM gets blocks [start, start + blocks). */
static void setup(enum mode mode, uint32_t bs, uint32_t seg_align, uint64_t start, uint64_t blocks,
                  bool vwc)
{
        memset(&fk, 0, sizeof(fk));
        fk.mode = mode;
        fk.bs = bs;
        for (size_t i = 0; i < sizeof(fk.disk); i++)
                fk.disk[i] = (uint8_t)(i * 13 + i / 4096);
        memset(&dev, 0, sizeof(dev));
        strcpy(dev.name, "fake0");
        dev.blocks = BLOCKS;
        dev.block_size = bs;
        dev.max_transfer = 4 * bs;
        dev.seg_align = seg_align;
        dev.max_segs = 4;
        dev.volatile_cache = vwc;
        dev.ops = mode == POLLED ? &ops_polled : &ops_inline;
        spin_init(&lock);
        vm = fv_new();
        ASSERT_TRUE(virtio_blk_init_blkdev(&blk, &dev, start, blocks, false, &lock, bounce,
                                           hpa((uint64_t)(uintptr_t)bounce), BOUNCE, "vm1",
                                           0) == 0);
        fv_attach(vm, &blk.vdev, "vm1/virtio-blk0");
        virtio_blk_attach(&blk, &vm->t);
        dq_layout(&q, 0, 16, QBASE);
        ASSERT_TRUE(fv_linux_init(vm, FV_ALL_FEATURES, &q, 1) >= 0);
}

/* Header, data as `nbuf` descriptors of dlen/nbuf bytes each from `data`, status byte. */
static void post(uint32_t type, uint64_t sector, uint64_t data, uint32_t dlen, unsigned nbuf)
{
        uint8_t *h = fv_ptr(vm, HDR);
        bool in = type == VIRTIO_BLK_T_IN;
        uint16_t d = 1;

        memset(h, 0, 16);
        memcpy(h, &type, 4);
        memcpy(h + 8, &sector, 8);
        *(uint8_t *)fv_ptr(vm, STATUS) = 0xee;
        dq_desc(vm, &q, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
        for (unsigned i = 0; dlen && i < nbuf; i++, d++)
                dq_desc(vm, &q, d, data + i * (dlen / nbuf), dlen / nbuf,
                        VIRTQ_DESC_F_NEXT | (in ? VIRTQ_DESC_F_WRITE : 0), (uint16_t)(d + 1));
        dq_desc(vm, &q, d, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
        dq_avail(vm, &q, 0);
        dq_notify(vm, &q);
}

static uint8_t status(void)
{
        return *(uint8_t *)fv_ptr(vm, STATUS);
}

static void done_vm(void)
{
        EXPECT_TRUE(fv_canaries_ok(vm));
        fv_free(vm);
}

TEST(read_write_at_the_partition_offset_straight_into_guest_ram)
{
        setup(INLINE, 512, 4, 100, 50, true);
        EXPECT_EQ(fv_cfg(vm, 0, 8), 50); /* capacity: the range, not the disk */
        EXPECT_EQ(fv_cfg(vm, 20, 4), 512);
        EXPECT_TRUE(fv_rd(vm, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << VIRTIO_BLK_F_FLUSH));
        post(VIRTIO_BLK_T_IN, 3, DATA, 1024, 2);
        EXPECT_EQ(status(), VIRTIO_BLK_S_OK);
        EXPECT_EQ(memcmp(fv_ptr(vm, DATA), fk.disk + 103 * 512, 1024), 0);
        EXPECT_EQ(dq_used_idx(vm, &q), 1);
        EXPECT_EQ(fk.segs_in_ram, 2);
        EXPECT_EQ(fk.segs_in_bounce, 0);
        memset(fv_ptr(vm, DATA), 0x5a, 2048);
        post(VIRTIO_BLK_T_OUT, 49, DATA, 512, 1); /* the last sector */
        EXPECT_EQ(status(), VIRTIO_BLK_S_OK);
        EXPECT_EQ(fk.disk[149 * 512], 0x5a);
        EXPECT_NE(fk.disk[150 * 512], 0x5a);
        EXPECT_NE(fk.disk[149 * 512 - 1], 0x5a);
        /* Past the range (not the disk): refused, the disk untouched. */
        post(VIRTIO_BLK_T_OUT, 49, DATA, 1024, 1);
        EXPECT_EQ(status(), VIRTIO_BLK_S_IOERR);
        EXPECT_NE(fk.disk[150 * 512], 0x5a);
        post(VIRTIO_BLK_T_IN, 50, DATA, 512, 1);
        EXPECT_EQ(status(), VIRTIO_BLK_S_IOERR);
        post(VIRTIO_BLK_T_IN, UINT64_MAX, DATA, 512, 1);
        EXPECT_EQ(status(), VIRTIO_BLK_S_IOERR);
        /* Longer than max_transfer (4 blocks) and more buffers than max_segs: split. */
        memset(fv_ptr(vm, DATA), 0x77, 8 * 512);
        post(VIRTIO_BLK_T_OUT, 10, DATA, 8 * 512, 8);
        EXPECT_EQ(status(), VIRTIO_BLK_S_OK);
        EXPECT_EQ(fk.disk[110 * 512], 0x77);
        EXPECT_EQ(fk.disk[118 * 512 - 1], 0x77);
        EXPECT_NE(fk.disk[118 * 512], 0x77);
        post(VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0);
        EXPECT_EQ(status(), VIRTIO_BLK_S_OK);
        EXPECT_EQ(fk.flushes, 1);
        EXPECT_EQ(blk.writes, 2);
        EXPECT_EQ(blk.flushes, 1);
        EXPECT_EQ(blk.bounced, 0);
        done_vm();
}

TEST(no_volatile_cache_no_flush_feature)
{
        setup(INLINE, 512, 4, 0, 10, false);
        EXPECT_FALSE(fv_rd(vm, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << VIRTIO_BLK_F_FLUSH));
        done_vm();
}

TEST(write_acknowledged_only_after_done)
{
        setup(LATER, 512, 4, 0, 64, true);
        memset(fv_ptr(vm, DATA), 0x42, 512);
        uint32_t irqs = vm->irq_raises;
        post(VIRTIO_BLK_T_OUT, 7, DATA, 512, 1);
        /* With the device: no used element, no status, no interrupt, and the notify returned. */
        EXPECT_TRUE(fk.pending != NULL);
        EXPECT_EQ(dq_used_idx(vm, &q), 0);
        EXPECT_EQ(status(), 0xee);
        EXPECT_EQ(vm->irq_raises, irqs);
        EXPECT_NE(fk.disk[7 * 512], 0x42);
        /* A second notify meanwhile takes nothing new to the device. */
        dq_notify(vm, &q);
        EXPECT_EQ(fk.submits, 1);
        complete(); /* the device's done(), as from another CPU: takes the lock */
        EXPECT_EQ(fk.disk[7 * 512], 0x42);
        EXPECT_EQ(status(), VIRTIO_BLK_S_OK);
        EXPECT_EQ(dq_used_idx(vm, &q), 1);
        EXPECT_EQ(vm->irq_raises, irqs + 1);
        EXPECT_FALSE(__atomic_load_n(&lock.locked, __ATOMIC_SEQ_CST));
        /* A failed write: IOERR, acknowledged only then too. */
        fk.fail = -KEEL_EIO;
        post(VIRTIO_BLK_T_OUT, 8, DATA, 512, 1);
        EXPECT_EQ(status(), 0xee);
        complete();
        EXPECT_EQ(status(), VIRTIO_BLK_S_IOERR);
        EXPECT_EQ(blk.errors, 1);
        done_vm();
}

TEST(reset_while_with_the_device_drops_the_result)
{
        setup(LATER, 512, 4, 0, 64, true);
        post(VIRTIO_BLK_T_IN, 1, DATA, 512, 1);
        fv_wr(vm, VIRTIO_MMIO_STATUS, 0); /* the driver resets the device */
        complete();
        EXPECT_EQ(status(), 0xee);
        EXPECT_FALSE(blk.io.active);
        virtio_blk_quiesce(&blk); /* nothing out: returns */
        done_vm();
}

TEST(polled_device_completes_before_the_notify_returns)
{
        setup(POLLED, 512, 4, 0, 64, true);
        memset(fv_ptr(vm, DATA), 0x31, 1024);
        post(VIRTIO_BLK_T_OUT, 2, DATA, 1024, 1);
        EXPECT_EQ(status(), VIRTIO_BLK_S_OK);
        EXPECT_EQ(dq_used_idx(vm, &q), 1);
        EXPECT_TRUE(fk.polls >= 3);
        EXPECT_EQ(fk.disk[2 * 512], 0x31);
        done_vm();
}

TEST(misaligned_buffers_are_bounced)
{
        setup(INLINE, 512, 4096, 0, 64, true); /* the device wants page-aligned segments */
        for (unsigned i = 0; i < 3 * 512; i++)
                *(uint8_t *)fv_ptr(vm, DATA + 8 + i) = (uint8_t)(i * 7);
        post(VIRTIO_BLK_T_OUT, 4, DATA + 8, 3 * 512, 1);
        EXPECT_EQ(status(), VIRTIO_BLK_S_OK);
        EXPECT_EQ(memcmp(fk.disk + 4 * 512, fv_ptr(vm, DATA + 8), 3 * 512), 0);
        EXPECT_TRUE(blk.bounced >= 1);
        EXPECT_EQ(fk.segs_in_ram, 0);
        memset(fv_ptr(vm, DATA + 8), 0, 3 * 512);
        post(VIRTIO_BLK_T_IN, 4, DATA + 8, 3 * 512, 3); /* three 512-byte buffers */
        EXPECT_EQ(status(), VIRTIO_BLK_S_OK);
        EXPECT_EQ(memcmp(fk.disk + 4 * 512, fv_ptr(vm, DATA + 8), 3 * 512), 0);
        /* Buffers that are not whole blocks (700 + 324 bytes) are bounced too. */
        memset(fv_ptr(vm, DATA + 0x2000), 0x66, 1024);
        post(VIRTIO_BLK_T_OUT, 20, DATA + 0x2000, 1024, 1);
        EXPECT_EQ(status(), VIRTIO_BLK_S_OK);
        EXPECT_EQ(fk.disk[21 * 512 + 511], 0x66);
        done_vm();
}

TEST(uneven_buffers_are_bounced_on_a_4k_disk)
{
        setup(INLINE, 4096, 4, 10, 20, true);
        EXPECT_EQ(fv_cfg(vm, 0, 8), 160);   /* 20 blocks of 4 KiB in 512-byte sectors */
        EXPECT_EQ(fv_cfg(vm, 20, 4), 4096); /* blk_size */
        /* 4 KiB in buffers of 700 and 3396 bytes: not block multiples. */
        for (unsigned i = 0; i < 4096; i++)
                *(uint8_t *)fv_ptr(vm, DATA + i) = (uint8_t)(i * 3);
        uint8_t *h = fv_ptr(vm, HDR);
        uint32_t type = VIRTIO_BLK_T_OUT;
        uint64_t sector = 8;
        memset(h, 0, 16);
        memcpy(h, &type, 4);
        memcpy(h + 8, &sector, 8);
        dq_desc(vm, &q, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
        dq_desc(vm, &q, 1, DATA, 700, VIRTQ_DESC_F_NEXT, 2);
        dq_desc(vm, &q, 2, DATA + 700, 3396, VIRTQ_DESC_F_NEXT, 3);
        dq_desc(vm, &q, 3, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
        dq_avail(vm, &q, 0);
        dq_notify(vm, &q);
        EXPECT_EQ(status(), VIRTIO_BLK_S_OK);
        EXPECT_EQ(memcmp(fk.disk + 11 * 4096, fv_ptr(vm, DATA), 4096), 0);
        EXPECT_EQ(blk.bounced, 1);
        /* Not whole device blocks: refused (no read-modify-write). */
        post(VIRTIO_BLK_T_OUT, 9, DATA, 4096, 1);
        EXPECT_EQ(status(), VIRTIO_BLK_S_IOERR);
        post(VIRTIO_BLK_T_IN, 8, DATA, 512, 1);
        EXPECT_EQ(status(), VIRTIO_BLK_S_IOERR);
        done_vm();
}

TEST(init_refuses_ranges_outside_the_disk)
{
        struct virtio_blk b;

        setup(INLINE, 512, 4, 0, 1, true);
        EXPECT_EQ(virtio_blk_init_blkdev(&b, &dev, 200, 57, false, &lock, bounce,
                                         hpa((uint64_t)(uintptr_t)bounce), BOUNCE, "x", 0),
                  -KEEL_EINVAL);
        EXPECT_EQ(virtio_blk_init_blkdev(&b, &dev, 200, 56, false, &lock, bounce,
                                         hpa((uint64_t)(uintptr_t)bounce), BOUNCE, "x", 0),
                  0);
        EXPECT_EQ(virtio_blk_init_blkdev(&b, &dev, 0, 1, false, &lock, bounce,
                                         hpa((uint64_t)(uintptr_t)bounce), 100, "x", 0),
                  -KEEL_EINVAL);
        done_vm();
}

TEST_MAIN()
