/*
 * The blkdev backend of vmm/virtio_blk.c against a fake disk of the test's own
 * (drivers/blkdev.h): DMA segments are host-physical addresses inside the guest's RAM, the
 * partition offset and bounds, bouncing of buffers the device cannot take, FLUSH, device
 * errors, and the acknowledgement rule: a write's used element and interrupt come only from
 * the device's done(), whether it comes inside submit(), from poll() or later.
 */
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/irq.h>
#include <keel/spinlock.h>
#include <vmm/virtio.h>

#include <pthread.h>
#include <sched.h>

#include "test.h"
#include "virtio_fake_driver.h"

#define QBASE  (FV_BASE + 0x1000)
#define HDR    (FV_BASE + 0x8000)
#define STATUS (FV_BASE + 0x9000)
#define DATA   (FV_BASE + 0x10000)
#define BOUNCE 8192u
#define BLOCKS 256u

enum mode { INLINE, POLLED, LATER, THREAD };

extern uint64_t fake_tsc;      /* Keel's clock in host tests (arch/fake): 1 tick = 1 ns */
extern uint64_t fake_timer_at; /* the earliest arch_timer_by (arch/fake) */

#define FK_MAX 64

static struct {
        enum mode mode;
        uint32_t bs;
        uint8_t disk[BLOCKS * 4096];
        struct blk_req *pending[FK_MAX]; /* submitted, not completed, in submission order */
        unsigned npending, room;         /* room: most pending at once (-KEEL_EAGAIN past it) */
        uint64_t lbas[256];              /* lba of each accepted submission, in order */
        uint8_t ops[256];
        unsigned submits, accepted, polls, flushes, segs_in_ram, segs_in_bounce, most_pending;
        int fail;            /* status of the next completions */
        unsigned inline_pct; /* LATER: % of submits that complete a random pending one inside */
} fk;

static struct blkdev dev;
static struct virtio_blk blk;
static struct drv_q q;
static struct spinlock lock;
static uint8_t bounce[BOUNCE] __attribute__((aligned(4096)));
static struct fake_vm *vm;
static struct fake_vm *vm1, *vm2; /* two VMs on the same device (the shared-queue test) */
static uint8_t bounce2[BOUNCE] __attribute__((aligned(4096)));

static void perform(struct blk_req *r)
{
        uint64_t at = r->lba * fk.bs;

        for (unsigned i = 0; i < r->nseg; i++) {
                uint8_t *p = (uint8_t *)(uintptr_t)hpa_raw(r->seg[i].pa);
                if (p >= vm->ram && p + r->seg[i].len <= vm->ram + FV_SIZE)
                        __atomic_fetch_add(&fk.segs_in_ram, 1, __ATOMIC_RELAXED);
                else if (p >= bounce && p + r->seg[i].len <= bounce + BOUNCE)
                        __atomic_fetch_add(&fk.segs_in_bounce, 1, __ATOMIC_RELAXED);
                else if (vm2 && ((p >= vm2->ram && p + r->seg[i].len <= vm2->ram + FV_SIZE) ||
                                 (p >= vm1->ram && p + r->seg[i].len <= vm1->ram + FV_SIZE) ||
                                 (p >= bounce2 && p + r->seg[i].len <= bounce2 + BOUNCE)))
                        ; /* the other VM's */
                else
                        TEST_FAIL_AT(__FILE__, __LINE__, "segment outside guest RAM and bounce");
                if (r->op == BLK_READ)
                        memcpy(p, fk.disk + at, r->seg[i].len);
                else if (r->op == BLK_WRITE)
                        memcpy(fk.disk + at, p, r->seg[i].len);
                at += r->seg[i].len;
        }
        if (r->op == BLK_FLUSH)
                __atomic_fetch_add(&fk.flushes, 1, __ATOMIC_RELAXED);
}

/* The device completes its i-th pending request (in submission order). */
static void complete_at(unsigned i)
{
        ASSERT_TRUE(i < fk.npending);
        struct blk_req *r = fk.pending[i];
        memmove(&fk.pending[i], &fk.pending[i + 1], (fk.npending - i - 1) * sizeof(r));
        fk.npending--;
        perform(r);
        r->done(r, fk.fail);
}

/* The oldest pending request completes (as from another CPU: done() takes the lock). */
static void complete(void)
{
        complete_at(0);
}

/*
 * THREAD: the device is a thread of its own that completes pending requests in random order
 * (done() from "another CPU", without Keel's lock), and one submit in eight completes inside
 * submit() (as NVMe does when it reaps a missed interrupt).
 */
static pthread_mutex_t dev_mu = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local unsigned rng = 12345; /* per thread: both draw */

static unsigned rnd(void)
{
        rng = rng * 1103515245u + 12345u;
        return rng >> 16;
}

/* Take a random pending request (under dev_mu), or NULL. */
static struct blk_req *take_random(void)
{
        struct blk_req *r = NULL;

        pthread_mutex_lock(&dev_mu);
        if (fk.npending) {
                unsigned i = rnd() % fk.npending;
                r = fk.pending[i];
                memmove(&fk.pending[i], &fk.pending[i + 1], (fk.npending - i - 1) * sizeof(r));
                fk.npending--;
        }
        pthread_mutex_unlock(&dev_mu);
        return r;
}

static int thread_submit(struct blk_req *r)
{
        struct blk_req *now = NULL;

        pthread_mutex_lock(&dev_mu);
        if (fk.npending == fk.room) {
                pthread_mutex_unlock(&dev_mu);
                return -KEEL_EAGAIN;
        }
        fk.accepted++;
        fk.pending[fk.npending++] = r;
        bool inline_done = rnd() % 8 == 0;
        pthread_mutex_unlock(&dev_mu);
        if (inline_done && (now = take_random()) != NULL) {
                perform(now);
                now->done(now, 0);
        }
        return 0;
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
        if (fk.mode == THREAD)
                return thread_submit(r);
        if (fk.npending == fk.room)
                return -KEEL_EAGAIN;
        if (fk.accepted < 256) {
                fk.lbas[fk.accepted] = r->lba;
                fk.ops[fk.accepted] = r->op;
        }
        fk.accepted++;
        fk.pending[fk.npending++] = r;
        if (fk.npending > fk.most_pending)
                fk.most_pending = fk.npending;
        if (fk.mode == INLINE)
                complete();
        else if (fk.inline_pct && rnd() % 100 < fk.inline_pct)
                complete_at(rnd() % fk.npending);
        return 0;
}

/* Every third poll completes everything pending. */
static void fake_poll(struct blkdev *d)
{
        (void)d;
        if (fk.npending && ++fk.polls % 3 == 0)
                while (fk.npending)
                        complete();
}

static const struct blkdev_ops ops_inline = {.submit = fake_submit, .poll = NULL};
static const struct blkdev_ops ops_polled = {.submit = fake_submit, .poll = fake_poll};

/* Another user's requests hold the device's queue until the first poll. */
static void poll_gives_room(struct blkdev *d)
{
        fk.room = FK_MAX;
        fake_poll(d);
}

/* A poll completes one pending request, the oldest. */
static void poll_one(struct blkdev *d)
{
        (void)d;
        fk.polls++;
        if (fk.npending)
                complete();
}

static const struct blkdev_ops ops_one_per_poll = {.submit = fake_submit, .poll = poll_one};

static const struct blkdev_ops ops_room_after_poll = {.submit = fake_submit,
                                                      .poll = poll_gives_room};

static uint16_t qsize = 16;

/* A disk of 512- or 4096-byte blocks; the VM gets blocks [start, start + blocks). */
static void setup(enum mode mode, uint32_t bs, uint32_t seg_align, uint64_t start, uint64_t blocks,
                  bool vwc)
{
        memset(&fk, 0, sizeof(fk));
        fk.mode = mode;
        fk.room = FK_MAX;
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
        dq_layout(&q, 0, qsize, QBASE);
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
        EXPECT_EQ(fk.npending, 1);
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
        EXPECT_EQ(blk.active, 0);
        virtio_blk_quiesce(&blk); /* nothing out: returns */
        done_vm();
}

TEST(polled_device_completes_from_its_poller_not_in_the_notify)
{
        setup(POLLED, 512, 4, 0, 64, true);
        memset(fv_ptr(vm, DATA), 0x31, 1024);
        post(VIRTIO_BLK_T_OUT, 2, DATA, 1024, 1);
        /* The vCPU does not wait for the disk: the notify returned with the write out. */
        EXPECT_EQ(fk.polls, 0);
        EXPECT_EQ(fk.npending, 1);
        EXPECT_EQ(status(), 0xee);
        EXPECT_EQ(dq_used_idx(vm, &q), 0);
        /* Keel's pollers (irq_poll_all, any CPU): the third poll completes it. */
        for (int i = 0; i < 3; i++)
                dev.ops->poll(&dev);
        EXPECT_EQ(status(), VIRTIO_BLK_S_OK);
        EXPECT_EQ(dq_used_idx(vm, &q), 1);
        EXPECT_EQ(fk.disk[2 * 512], 0x31);
        EXPECT_FALSE(__atomic_load_n(&lock.locked, __ATOMIC_SEQ_CST));
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

/* Request k of several at once: descriptors 3k.., its own header and status byte; not notified. */
static void queue_req(unsigned k, uint32_t type, uint64_t sector, uint64_t data, uint32_t dlen)
{
        uint8_t *h = fv_ptr(vm, HDR + 16ull * k);
        uint16_t d = (uint16_t)(3 * k);
        bool in = type == VIRTIO_BLK_T_IN;

        memset(h, 0, 16);
        memcpy(h, &type, 4);
        memcpy(h + 8, &sector, 8);
        *(uint8_t *)fv_ptr(vm, STATUS + k) = 0xee;
        dq_desc(vm, &q, d, HDR + 16ull * k, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(d + 1));
        if (dlen) {
                dq_desc(vm, &q, (uint16_t)(d + 1), data, dlen,
                        VIRTQ_DESC_F_NEXT | (in ? VIRTQ_DESC_F_WRITE : 0), (uint16_t)(d + 2));
                dq_desc(vm, &q, (uint16_t)(d + 2), STATUS + k, 1, VIRTQ_DESC_F_WRITE, 0);
        } else {
                dq_desc(vm, &q, (uint16_t)(d + 1), STATUS + k, 1, VIRTQ_DESC_F_WRITE, 0);
        }
        dq_avail(vm, &q, d);
}

static uint8_t status_of(unsigned k)
{
        return *(uint8_t *)fv_ptr(vm, STATUS + k);
}

/* The request (k) of used element n. */
static unsigned used_req(uint16_t n)
{
        uint32_t id, len;

        dq_used_elem(vm, &q, n, &id, &len);
        return id / 3;
}

TEST(one_notify_takes_every_chain_and_they_complete_out_of_order)
{
        setup(LATER, 512, 4, 0, 64, true);
        for (unsigned k = 0; k < 4; k++)
                memset(fv_ptr(vm, DATA + 0x1000 * k), 0x10 + k, 512);
        queue_req(0, VIRTIO_BLK_T_OUT, 10, DATA, 512);
        queue_req(1, VIRTIO_BLK_T_IN, 20, DATA + 0x1000, 512);
        queue_req(2, VIRTIO_BLK_T_OUT, 30, DATA + 0x2000, 512);
        queue_req(3, VIRTIO_BLK_T_IN, 40, DATA + 0x3000, 1024);
        uint32_t irqs = vm->irq_raises;
        dq_notify(vm, &q);
        /* All four with the device at once; nothing acknowledged; the notify returned. */
        EXPECT_EQ(fk.npending, 4);
        EXPECT_EQ(blk.out, 4);
        EXPECT_EQ(dq_used_idx(vm, &q), 0);
        EXPECT_EQ(vm->irq_raises, irqs);
        /* The device finishes them in the order 2, 0, 3, 1. */
        complete_at(2);
        EXPECT_EQ(dq_used_idx(vm, &q), 1);
        EXPECT_EQ(used_req(0), 2);
        EXPECT_EQ(status_of(2), VIRTIO_BLK_S_OK);
        EXPECT_EQ(status_of(0), 0xee);
        EXPECT_EQ(fk.disk[30 * 512], 0x12);
        EXPECT_EQ(vm->irq_raises, irqs + 1);
        complete_at(0);
        fv_ack(vm);
        complete_at(1); /* request 3 */
        EXPECT_EQ(status_of(3), VIRTIO_BLK_S_OK);
        EXPECT_EQ(memcmp(fv_ptr(vm, DATA + 0x3000), fk.disk + 40 * 512, 1024), 0);
        EXPECT_EQ(status_of(1), 0xee);
        complete_at(0); /* request 1 */
        EXPECT_EQ(dq_used_idx(vm, &q), 4);
        EXPECT_EQ(used_req(1), 0);
        EXPECT_EQ(used_req(2), 3);
        EXPECT_EQ(used_req(3), 1);
        uint32_t id, len;
        dq_used_elem(vm, &q, 2, &id, &len);
        EXPECT_EQ(len, 1025); /* the data read and the status byte */
        EXPECT_EQ(memcmp(fv_ptr(vm, DATA + 0x1000), fk.disk + 20 * 512, 512), 0);
        EXPECT_EQ(blk.reads, 2);
        EXPECT_EQ(blk.writes, 2);
        EXPECT_EQ(blk.active, 0);
        EXPECT_EQ(blk.max_out, 4);
        EXPECT_FALSE(__atomic_load_n(&lock.locked, __ATOMIC_SEQ_CST));
        done_vm();
}

TEST(event_idx_no_notify_needed_while_requests_are_out)
{
        setup(LATER, 512, 4, 0, 64, true);
        queue_req(0, VIRTIO_BLK_T_IN, 0, DATA, 512);
        dq_notify(vm, &q);
        EXPECT_EQ(fk.npending, 1);
        /* One out: the driver is not asked to notify for the next (avail_event stays 0)... */
        EXPECT_EQ(dq_avail_event(vm, &q), 0);
        queue_req(1, VIRTIO_BLK_T_IN, 1, DATA + 0x1000, 512); /* posted without a notify */
        EXPECT_EQ(fk.npending, 1);
        /* ...the completion takes it. */
        complete_at(0);
        EXPECT_EQ(fk.npending, 1);
        EXPECT_EQ(fk.lbas[1], 1);
        EXPECT_EQ(dq_avail_event(vm, &q), 0);
        complete_at(0); /* nothing out, ring empty: now notify at the next chain */
        EXPECT_EQ(dq_avail_event(vm, &q), 2);
        EXPECT_EQ(dq_used_idx(vm, &q), 2);
        done_vm();
}

TEST(a_full_device_queue_holds_the_rest_in_order_none_dropped)
{
        setup(LATER, 512, 4, 0, 64, true);
        fk.room = 2;
        for (unsigned k = 0; k < 5; k++)
                queue_req(k, VIRTIO_BLK_T_IN, 5 * k, DATA + 0x1000 * k, 512);
        dq_notify(vm, &q);
        EXPECT_EQ(fk.npending, 2); /* the device took two; the third got -KEEL_EAGAIN */
        EXPECT_EQ(blk.active, 5);
        EXPECT_TRUE(blk.full);
        complete_at(1); /* room for one more: the third, not a later one */
        EXPECT_EQ(fk.npending, 2);
        EXPECT_EQ(fk.lbas[2], 10);
        complete_at(0);
        complete_at(0);
        complete_at(0);
        EXPECT_EQ(fk.npending, 1);
        complete_at(0);
        EXPECT_EQ(fk.accepted, 5);
        for (unsigned k = 0; k < 5; k++) {
                EXPECT_EQ(fk.lbas[k], 5 * k); /* submitted in the ring's order */
                EXPECT_EQ(status_of(k), VIRTIO_BLK_S_OK);
        }
        EXPECT_EQ(dq_used_idx(vm, &q), 5);
        EXPECT_EQ(blk.errors, 0);
        EXPECT_EQ(blk.active, 0);
        done_vm();
}

TEST(a_full_device_with_nothing_of_ours_out_is_polled_until_it_takes_it)
{
        setup(POLLED, 512, 4, 0, 64, true);
        fk.room = 0; /* another user's requests fill the device's queue */
        queue_req(0, VIRTIO_BLK_T_IN, 1, DATA, 512);
        /* Nothing of this disk is out, so no done() of it would retry: the notify polls the
         * device until the room comes (here: the fake gives room after a poll). */
        fk.room = 0;
        dev.ops = &ops_room_after_poll;
        dq_notify(vm, &q);
        EXPECT_EQ(fk.accepted, 1);
        EXPECT_EQ(fk.room, FK_MAX); /* it polled */
        for (int i = 0; i < 3 && fk.npending; i++)
                dev.ops->poll(&dev);
        EXPECT_EQ(status_of(0), VIRTIO_BLK_S_OK);
        done_vm();
}

TEST(more_chains_than_slots_wait_in_the_ring)
{
        qsize = 128;
        setup(LATER, 512, 4, 0, 64, true);
        qsize = 16;
        for (unsigned k = 0; k < VIRTIO_BLK_INFLIGHT + 8; k++)
                queue_req(k, VIRTIO_BLK_T_IN, k, DATA + 512 * k, 512);
        dq_notify(vm, &q);
        EXPECT_EQ(fk.npending, VIRTIO_BLK_INFLIGHT);
        EXPECT_EQ(blk.active, VIRTIO_BLK_INFLIGHT);
        /* With EVENT_IDX the driver is not asked to notify again while they wait. */
        EXPECT_EQ(dq_avail_event(vm, &q), 0);
        for (unsigned n = 0; n < 8; n++)
                complete_at(0); /* each frees a slot: a waiting chain is taken */
        EXPECT_EQ(fk.npending, VIRTIO_BLK_INFLIGHT);
        EXPECT_EQ(fk.accepted, VIRTIO_BLK_INFLIGHT + 8);
        EXPECT_EQ(dq_avail_event(vm, &q), 0);
        while (fk.npending)
                complete_at(fk.npending - 1);
        EXPECT_EQ(dq_used_idx(vm, &q), VIRTIO_BLK_INFLIGHT + 8);
        /* Idle: notify me next, once the held interrupt is raised (its bound, Keel's pollers). */
        fake_tsc += VIRTIO_BLK_HOLD_US * 1000ull;
        irq_poll_all();
        EXPECT_FALSE(blk.held);
        EXPECT_EQ(dq_avail_event(vm, &q), VIRTIO_BLK_INFLIGHT + 8);
        for (unsigned k = 0; k < VIRTIO_BLK_INFLIGHT + 8; k++) {
                EXPECT_EQ(status_of(k), VIRTIO_BLK_S_OK);
                EXPECT_EQ(fk.lbas[k], k);
        }
        EXPECT_EQ(blk.max_out, VIRTIO_BLK_INFLIGHT);
        done_vm();
}

TEST(a_flush_waits_for_the_writes_taken_before_it)
{
        setup(LATER, 512, 4, 0, 64, true);
        memset(fv_ptr(vm, DATA), 0x61, 0x3000);
        queue_req(0, VIRTIO_BLK_T_OUT, 1, DATA, 512);
        queue_req(1, VIRTIO_BLK_T_OUT, 2, DATA + 0x1000, 512);
        queue_req(2, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
        queue_req(3, VIRTIO_BLK_T_OUT, 3, DATA + 0x2000, 512);
        dq_notify(vm, &q);
        /* The writes before and after went; the flush waits for the two before it. */
        EXPECT_EQ(fk.npending, 3);
        EXPECT_EQ(fk.ops[2], BLK_WRITE);
        EXPECT_EQ(fk.lbas[2], 3);
        complete_at(2); /* the later write: the flush still waits */
        EXPECT_EQ(fk.accepted, 3);
        complete_at(0);
        EXPECT_EQ(fk.accepted, 3);
        complete_at(0); /* the last write before it: now the flush goes */
        EXPECT_EQ(fk.accepted, 4);
        EXPECT_EQ(fk.ops[3], BLK_FLUSH);
        EXPECT_EQ(status_of(2), 0xee); /* acknowledged only when the device flushed */
        complete_at(0);
        EXPECT_EQ(status_of(2), VIRTIO_BLK_S_OK);
        EXPECT_EQ(fk.flushes, 1);
        EXPECT_EQ(dq_used_idx(vm, &q), 4);
        done_vm();
}

TEST(reset_with_requests_in_flight_then_the_new_rings_work)
{
        setup(LATER, 512, 4, 0, 64, true);
        for (unsigned k = 0; k < 3; k++)
                queue_req(k, VIRTIO_BLK_T_IN, k, DATA + 0x1000 * k, 512);
        dq_notify(vm, &q);
        EXPECT_EQ(fk.npending, 3);
        fv_wr(vm, VIRTIO_MMIO_STATUS, 0); /* the driver resets the device */
        complete_at(1);
        /* Set up again while two are still out (their slots stay taken until done()). */
        dq_layout(&q, 0, 16, QBASE);
        memset(fv_ptr(vm, QBASE), 0, 0x1000);
        ASSERT_TRUE(fv_linux_init(vm, FV_ALL_FEATURES, &q, 1) >= 0);
        queue_req(0, VIRTIO_BLK_T_IN, 9, DATA + 0x4000, 512);
        dq_notify(vm, &q);
        EXPECT_EQ(fk.npending, 3);
        complete_at(0); /* old ones: dropped, never reach the new ring */
        complete_at(0);
        EXPECT_EQ(dq_used_idx(vm, &q), 0);
        EXPECT_EQ(status_of(1), 0xee);
        EXPECT_EQ(status_of(2), 0xee);
        complete_at(0);
        EXPECT_EQ(dq_used_idx(vm, &q), 1);
        EXPECT_EQ(used_req(0), 0);
        EXPECT_EQ(status_of(0), VIRTIO_BLK_S_OK);
        EXPECT_EQ(blk.active, 0);
        EXPECT_EQ(blk.reads, 1);
        done_vm();
}

TEST(quiesce_waits_for_pieces_out_and_takes_nothing_more)
{
        setup(POLLED, 512, 4, 0, 64, true);
        for (unsigned k = 0; k < 3; k++)
                queue_req(k, VIRTIO_BLK_T_IN, k, DATA + 0x1000 * k, 512);
        dq_notify(vm, &q);
        EXPECT_EQ(blk.out, 3);
        queue_req(3, VIRTIO_BLK_T_IN, 3, DATA + 0x3000, 512); /* not notified */
        virtio_blk_quiesce(&blk);                             /* polls the device */
        EXPECT_EQ(blk.out, 0);
        EXPECT_EQ(fk.npending, 0);
        EXPECT_EQ(fk.accepted, 3);
        EXPECT_EQ(blk.callers, 0);
        /* A later notify (the VM is going away) takes nothing. */
        dq_notify(vm, &q);
        EXPECT_EQ(fk.accepted, 3);
        done_vm();
}

TEST(drain_completes_everything_the_ring_holds)
{
        setup(POLLED, 512, 4, 0, 64, true);
        for (unsigned k = 0; k < 3; k++)
                queue_req(k, VIRTIO_BLK_T_IN, k, DATA + 0x1000 * k, 512);
        dq_notify(vm, &q);
        queue_req(3, VIRTIO_BLK_T_IN, 3, DATA + 0x3000, 512); /* not notified yet */
        virtio_blk_drain(&blk);
        EXPECT_EQ(blk.active, 0);
        EXPECT_EQ(dq_used_idx(vm, &q), 4);
        for (unsigned k = 0; k < 4; k++)
                EXPECT_EQ(status_of(k), VIRTIO_BLK_S_OK);
        /* The device goes on working. */
        queue_req(4, VIRTIO_BLK_T_IN, 4, DATA + 0x4000, 512);
        dq_notify(vm, &q);
        virtio_blk_drain(&blk);
        EXPECT_EQ(status_of(4), VIRTIO_BLK_S_OK);
        done_vm();
}

TEST(a_hostile_chain_breaks_the_queue_with_requests_in_flight)
{
        setup(LATER, 512, 4, 0, 64, true);
        queue_req(0, VIRTIO_BLK_T_IN, 0, DATA, 512);
        queue_req(1, VIRTIO_BLK_T_OUT, 1, DATA + 0x1000, 512);
        dq_notify(vm, &q);
        EXPECT_EQ(fk.npending, 2);
        /* Request 2: a read whose data buffer is device-readable (a violation), and a good
         * one after it in the same notify. */
        queue_req(2, VIRTIO_BLK_T_OUT, 2, DATA + 0x2000, 512);
        uint32_t in = VIRTIO_BLK_T_IN;
        memcpy(fv_ptr(vm, HDR + 32), &in, 4);
        queue_req(3, VIRTIO_BLK_T_IN, 3, DATA + 0x3000, 512);
        dq_notify(vm, &q);
        EXPECT_TRUE(fv_rd(vm, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
        EXPECT_EQ(fk.accepted, 2); /* nothing after the violation reaches the disk */
        /* The two out still complete (their DMA cannot be called back), unacknowledged. */
        complete_at(1);
        complete_at(0);
        EXPECT_EQ(dq_used_idx(vm, &q), 0);
        EXPECT_EQ(status_of(0), 0xee);
        EXPECT_EQ(blk.active, 0);
        EXPECT_EQ(blk.out, 0);
        /* A reset and a new setup make it work again. */
        dq_layout(&q, 0, 16, QBASE);
        memset(fv_ptr(vm, QBASE), 0, 0x1000);
        ASSERT_TRUE(fv_linux_init(vm, FV_ALL_FEATURES, &q, 1) >= 0);
        queue_req(0, VIRTIO_BLK_T_IN, 0, DATA, 512);
        dq_notify(vm, &q);
        complete_at(0);
        EXPECT_EQ(status_of(0), VIRTIO_BLK_S_OK);
        virtio_blk_quiesce(&blk);
        done_vm();
}

TEST(bounced_pieces_take_turns_on_the_bounce_pages)
{
        setup(LATER, 512, 4096, 0, 64, true); /* page-aligned segments only: all bounced */
        for (unsigned k = 0; k < 3; k++) {
                memset(fv_ptr(vm, DATA + 0x1000 * k + 8), 0x70 + k, 512);
                queue_req(k, VIRTIO_BLK_T_OUT, 8 * k, DATA + 0x1000 * k + 8, 512);
        }
        dq_notify(vm, &q);
        EXPECT_EQ(fk.npending, 1); /* one piece on the bounce pages at a time */
        complete_at(0);
        EXPECT_EQ(fk.npending, 1);
        complete_at(0);
        complete_at(0);
        for (unsigned k = 0; k < 3; k++) {
                EXPECT_EQ(status_of(k), VIRTIO_BLK_S_OK);
                EXPECT_EQ(fk.disk[8 * k * 512], 0x70 + k);
        }
        EXPECT_EQ(blk.bounced, 3);
        done_vm();
}

static volatile bool dev_stop;

static void *device_thread(void *arg)
{
        (void)arg;
        while (!__atomic_load_n(&dev_stop, __ATOMIC_ACQUIRE)) {
                struct blk_req *r = take_random();
                if (!r) {
                        sched_yield();
                        continue;
                }
                perform(r);
                r->done(r, 0);
        }
        return NULL;
}

#define STRESS_REQS  16
#define STRESS_POSTS 3000

/*
 * A vCPU thread posts reads and writes (one at a time per sector, alternating) under the
 * device lock, as the transport's register access holds it, while the device thread completes
 * them in random order: every request is acknowledged exactly once, with the right data.
 */
TEST(completions_from_another_thread_while_the_vcpu_posts)
{
        uint8_t last[STRESS_REQS], outstanding[STRESS_REQS] = {0}, seen[STRESS_REQS] = {0};
        unsigned posted = 0, acked = 0;
        uint16_t used_seen = 0;
        pthread_t th;

        qsize = 64;
        setup(THREAD, 512, 4, 0, 64, true);
        qsize = 16;
        fk.room = 6; /* smaller than the requests: -KEEL_EAGAIN happens */
        for (unsigned k = 0; k < STRESS_REQS; k++)
                last[k] = fk.disk[k * 4 * 512 + 511];
        dev_stop = false;
        ASSERT_TRUE(pthread_create(&th, NULL, device_thread, NULL) == 0);
        for (unsigned round = 0; posted < STRESS_POSTS || acked < posted; round++) {
                struct spin_held h = spin_lock(&lock);
                uint16_t now = dq_used_idx(vm, &q);

                __atomic_thread_fence(__ATOMIC_ACQUIRE);
                for (; used_seen != now; used_seen++) {
                        unsigned k = used_req(used_seen);
                        ASSERT_TRUE(k < STRESS_REQS && outstanding[k]);
                        EXPECT_EQ(status_of(k), VIRTIO_BLK_S_OK);
                        if (seen[k] & 1) /* a read: the last write's data */
                                EXPECT_EQ(*(uint8_t *)fv_ptr(vm, DATA + 0x1000 * k + 511), last[k]);
                        outstanding[k] = 0;
                        acked++;
                }
                for (unsigned k = 0; posted < STRESS_POSTS && k < STRESS_REQS; k++) {
                        if (outstanding[k] || rnd() % 3)
                                continue;
                        bool rd = ++seen[k] & 1;
                        if (!rd) {
                                last[k] = (uint8_t)(round + k);
                                memset(fv_ptr(vm, DATA + 0x1000 * k), last[k], 512);
                        } else {
                                memset(fv_ptr(vm, DATA + 0x1000 * k), 0, 512);
                        }
                        queue_req(k, rd ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT, 4 * k,
                                  DATA + 0x1000 * k, 512);
                        outstanding[k] = 1;
                        posted++;
                }
                dq_notify(vm, &q);
                spin_unlock(h);
                if (round > 1000 * STRESS_POSTS)
                        break; /* a lost completion: reported below */
                sched_yield();
        }
        __atomic_store_n(&dev_stop, true, __ATOMIC_RELEASE);
        pthread_join(th, NULL);
        EXPECT_EQ(acked, posted);
        EXPECT_EQ(posted, STRESS_POSTS);
        EXPECT_EQ(blk.active, 0);
        EXPECT_EQ(blk.errors, 0);
        EXPECT_TRUE(blk.max_out > 1);
        virtio_blk_quiesce(&blk);
        EXPECT_EQ(blk.callers, 0);
        for (unsigned k = 0; k < STRESS_REQS; k++)
                EXPECT_EQ(fk.disk[k * 4 * 512 + 511], last[k]);
        done_vm();
}

/* Request k (descriptors 10k..): header, n data buffers of len bytes from `data`, status. */
static void queue_req_n(unsigned k, uint32_t type, uint64_t sector, uint64_t data, unsigned n,
                        uint32_t len)
{
        uint8_t *h = fv_ptr(vm, HDR + 16ull * k);
        uint16_t d = (uint16_t)(10 * k);
        bool in = type == VIRTIO_BLK_T_IN;

        memset(h, 0, 16);
        memcpy(h, &type, 4);
        memcpy(h + 8, &sector, 8);
        *(uint8_t *)fv_ptr(vm, STATUS + k) = 0xee;
        dq_desc(vm, &q, d, HDR + 16ull * k, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(d + 1));
        for (unsigned i = 0; i < n; i++)
                dq_desc(vm, &q, (uint16_t)(d + 1 + i), data + (uint64_t)i * len, len,
                        VIRTQ_DESC_F_NEXT | (in ? VIRTQ_DESC_F_WRITE : 0), (uint16_t)(d + 2 + i));
        dq_desc(vm, &q, (uint16_t)(d + 1 + n), STATUS + k, 1, VIRTQ_DESC_F_WRITE, 0);
        dq_avail(vm, &q, d);
}

struct side {
        struct fake_vm *vm;
        struct drv_q q;
        struct virtio_blk *blk;
        uint8_t outstanding[8];
        uint16_t used_seen;
        unsigned posted, acked;
};

/* Make `s` the VM the helpers above talk to. */
static void use(struct side *s)
{
        vm = s->vm;
        q = s->q;
}

static void unuse(struct side *s)
{
        s->q = q;
}

/*
 * Two VMs' disks on one device whose queue holds 3 requests (as two VMs share an NVMe queue):
 * reads, multi-piece writes (8 buffers for max_segs 4 and 4 blocks per request) and
 * flushes, posted at random; the device completes at random, sometimes inside submit() and
 * then maybe the other VM's request (NVMe reaps a missed interrupt there). Every request
 * completes, OK, and no disk is left waiting with nothing out.
 */
TEST(two_disks_on_one_small_device_queue_all_complete)
{
        static struct virtio_blk blk2;
        static struct spinlock lock2;
        struct side sd[2];

        qsize = 128;
        setup(INLINE, 512, 4, 0, 64, true);
        qsize = 16;
        fk.mode = LATER;
        fk.room = 3;
        memset(sd, 0, sizeof(sd));
        sd[0] = (struct side){.vm = vm, .q = q, .blk = &blk};
        vm1 = vm;
        vm2 = fv_new();
        spin_init(&lock2);
        ASSERT_TRUE(virtio_blk_init_blkdev(&blk2, &dev, 128, 64, false, &lock2, bounce2,
                                           hpa((uint64_t)(uintptr_t)bounce2), BOUNCE, "vm2",
                                           0) == 0);
        fv_attach(vm2, &blk2.vdev, "vm2/virtio-blk0");
        virtio_blk_attach(&blk2, &vm2->t);
        sd[1] = (struct side){.vm = vm2, .blk = &blk2};
        dq_layout(&sd[1].q, 0, 128, QBASE);
        ASSERT_TRUE(fv_linux_init(vm2, FV_ALL_FEATURES, &sd[1].q, 1) >= 0);
        fk.inline_pct = 15;
        dev.ops = &ops_one_per_poll;
        unsigned idle = 0;
        for (unsigned step = 0; step < 20000 && idle < 1000; step++) {
                unsigned r = rnd();
                struct side *s = &sd[r & 1];
                bool posting = step < 15000;

                use(s);
                /* Acknowledgements the driver sees. */
                for (uint16_t now = dq_used_idx(vm, &q); s->used_seen != now; s->used_seen++) {
                        uint32_t id, len;
                        dq_used_elem(vm, &q, s->used_seen, &id, &len);
                        ASSERT_TRUE(id % 10 == 0 && id / 10 < 8 && s->outstanding[id / 10]);
                        EXPECT_EQ(status_of(id / 10), VIRTIO_BLK_S_OK);
                        s->outstanding[id / 10] = 0;
                        s->acked++;
                }
                if (posting && (r >> 1) % 3 == 0) {
                        unsigned k = (r >> 3) % 8, kind = (r >> 6) % 4;
                        if (!s->outstanding[k]) {
                                if (kind == 3)
                                        queue_req_n(k, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0);
                                else
                                        queue_req_n(k, kind ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
                                                    8 * k, DATA + 0x1000 * k, kind == 2 ? 8 : 2,
                                                    512);
                                s->outstanding[k] = 1;
                                s->posted++;
                                dq_notify(vm, &q);
                        }
                } else if (fk.npending && (r >> 1) % 3 == 1) {
                        complete_at((r >> 3) % fk.npending);
                }
                unuse(s);
                if (!posting && !fk.npending)
                        idle++;
                if (!posting && fk.npending)
                        complete_at(0);
        }
        for (unsigned i = 0; i < 2; i++) {
                use(&sd[i]);
                for (uint16_t now = dq_used_idx(vm, &q); sd[i].used_seen != now; sd[i].used_seen++)
                        sd[i].acked++;
                unuse(&sd[i]);
                EXPECT_TRUE(sd[i].posted > 100);
                EXPECT_EQ(sd[i].acked, sd[i].posted);
                EXPECT_EQ(sd[i].blk->active, 0);
                EXPECT_EQ(sd[i].blk->errors, 0);
        }
        EXPECT_EQ(fk.npending, 0);
        use(&sd[0]);
        fv_free(vm2);
        vm2 = NULL;
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

/* ---- interrupt moderation (docs/storage.md) ---------------------------------------------- */

/* The guest's interrupt handler as Linux's with EVENT_IDX: acknowledge, take the used
 * elements, ask for an interrupt at the next one (used_event = the used index seen). */
static void guest_isr(void)
{
        fv_ack(vm);
        dq_set_used_event(vm, &q, dq_used_idx(vm, &q));
}

TEST(moderation_one_request_at_a_time_interrupts_at_once)
{
        setup(LATER, 512, 4, 0, 64, true);
        for (unsigned k = 0; k < 5; k++) {
                unsigned irqs = vm->irq_raises;

                guest_isr();
                queue_req(k, VIRTIO_BLK_T_IN, k, DATA + 0x1000 * k, 512);
                dq_notify(vm, &q);
                EXPECT_EQ(fk.npending, 1);
                complete();
                /* Nothing else outstanding: no reason to wait. */
                EXPECT_EQ(dq_used_idx(vm, &q), k + 1);
                EXPECT_EQ(vm->irq_raises, irqs + 1);
                EXPECT_FALSE(blk.held);
        }
        EXPECT_EQ(blk.interrupts, 5);
        done_vm();
}

/* A 64-entry queue (the test sets qsize back to 16), six 512-byte reads posted and notified
 * at Keel's time `tsc`. */
static void six_reads_out(uint64_t tsc)
{
        qsize = 64;
        setup(LATER, 512, 4, 0, 64, true);
        fake_tsc = tsc;
        for (unsigned k = 0; k < 6; k++)
                queue_req(k, VIRTIO_BLK_T_IN, k, DATA + 0x1000 * k, 512);
        dq_notify(vm, &q);
}

TEST(moderation_many_outstanding_one_interrupt_per_batch_within_the_bound)
{
        const uint64_t bound = VIRTIO_BLK_HOLD_US * 1000ull; /* fake_tsc: 1 GHz */
        const uint64_t slack = VIRTIO_BLK_SLACK_US * 1000ull;

        six_reads_out(1000000000ull);
        EXPECT_EQ(fk.npending, 6);
        irq_poll_deferred(); /* a poll time an earlier test asked for, long past: served */
        EXPECT_EQ(irq_poll_next(), UINT64_MAX);
        fake_timer_at = UINT64_MAX;
        /* The first completion of a guest not yet seen working at depth: at once. */
        unsigned irqs = vm->irq_raises;
        complete();
        EXPECT_EQ(vm->irq_raises, irqs + 1);
        guest_isr();
        /* Now it is (6 outstanding): the next completions are published, their interrupt held. */
        complete();
        complete();
        EXPECT_EQ(dq_used_idx(vm, &q), 3);
        EXPECT_EQ(vm->irq_raises, irqs + 1);
        EXPECT_TRUE(blk.held);
        /* The pollers are asked for from the bound on (a CPU's entry into a guest serves it:
         * irq_poll_entry), this CPU's timer VIRTIO_BLK_SLACK_US later; no poll hold (which
         * would keep a busy CPU's tick going). */
        EXPECT_EQ(irq_poll_next(), 1000000000ull + bound + slack);
        EXPECT_EQ(fake_timer_at, 1000000000ull + bound + slack);
        EXPECT_FALSE(blkdev_poll_wanted());
        /* A request posted meanwhile without a notify (requests are out: none is asked)... */
        EXPECT_EQ(dq_avail_event(vm, &q), 0);
        queue_req(6, VIRTIO_BLK_T_IN, 6, DATA + 0x6000, 512);
        fake_tsc += bound - 1;
        irq_poll_all(); /* Keel's pollers: not yet, and the time still asked for */
        EXPECT_FALSE(irq_poll_entry());
        EXPECT_EQ(vm->irq_raises, irqs + 1);
        EXPECT_EQ(fk.npending, 3);
        EXPECT_EQ(irq_poll_next(), 1000000000ull + bound + slack);
        fake_tsc += 1;
        EXPECT_TRUE(irq_poll_entry()); /* an entry at the bound: raised, the new chain taken */
        EXPECT_EQ(vm->irq_raises, irqs + 2);
        EXPECT_FALSE(blk.held);
        EXPECT_EQ(irq_poll_next(), UINT64_MAX); /* served, nothing else waits */
        EXPECT_EQ(fk.npending, 4);
        EXPECT_EQ(fk.lbas[6], 6);
        guest_isr();
        /* A completion after the bound raises at once, without a poller. */
        complete();
        EXPECT_TRUE(blk.held);
        fake_tsc += bound;
        complete();
        EXPECT_EQ(vm->irq_raises, irqs + 3);
        EXPECT_FALSE(blk.held);
        guest_isr();
        while (fk.npending)
                complete();
        /* Nothing out, the interrupt held: the driver is not asked to notify yet (the pass
         * that raises it looks at the ring first, then asks). */
        EXPECT_TRUE(blk.held);
        EXPECT_TRUE(dq_avail_event(vm, &q) != 7);
        fake_tsc += bound;
        irq_poll_all();
        EXPECT_EQ(dq_avail_event(vm, &q), 7);
        EXPECT_EQ(dq_used_idx(vm, &q), 7);
        EXPECT_EQ(vm->irq_raises, irqs + 4);
        for (unsigned k = 0; k < 7; k++)
                EXPECT_EQ(status_of(k), VIRTIO_BLK_S_OK);
        EXPECT_FALSE(blk.held);
        qsize = 16;
        done_vm();
}

TEST(moderation_a_full_batch_raises_at_once)
{
        qsize = 64;
        setup(LATER, 512, 4, 0, 64, true);
        fake_tsc = 5000000000ull;
        for (unsigned k = 0; k < VIRTIO_BLK_BATCH + 1; k++)
                queue_req(k, VIRTIO_BLK_T_IN, k, DATA, 512);
        dq_notify(vm, &q);
        EXPECT_EQ(fk.npending, VIRTIO_BLK_BATCH + 1);
        unsigned irqs = vm->irq_raises;
        complete(); /* the first: at once */
        guest_isr();
        for (unsigned k = 1; k < VIRTIO_BLK_BATCH; k++)
                complete();
        EXPECT_EQ(vm->irq_raises, irqs + 1);
        EXPECT_TRUE(blk.held);
        complete(); /* the batch's 16th: at once, no time passed */
        EXPECT_EQ(vm->irq_raises, irqs + 2);
        EXPECT_FALSE(blk.held);
        EXPECT_EQ(dq_used_idx(vm, &q), VIRTIO_BLK_BATCH + 1);
        EXPECT_EQ(blk.interrupts, 2);
        qsize = 16;
        done_vm();
}

TEST(moderation_a_vcpu_waiting_for_an_interrupt_gets_the_held_one_at_once)
{
        six_reads_out(7000000000ull);
        unsigned irqs = vm->irq_raises;
        complete(); /* the first: at once */
        guest_isr();
        complete();
        complete();
        EXPECT_TRUE(blk.held);
        EXPECT_EQ(vm->irq_raises, irqs + 1);
        /* Nothing idles the guest yet: a vCPU still running leaves it held... */
        queue_req(6, VIRTIO_BLK_T_IN, 6, DATA + 0x6000, 512);
        irq_poll_all();
        EXPECT_TRUE(blk.held);
        /* ...one halting (no time has passed) raises it, the chain posted meanwhile taken. */
        struct spin_held h = spin_lock(&lock);
        virtio_blk_idle(&blk);
        spin_unlock(h);
        EXPECT_FALSE(blk.held);
        EXPECT_EQ(vm->irq_raises, irqs + 2);
        EXPECT_EQ(dq_used_idx(vm, &q), 3);
        EXPECT_EQ(fk.npending, 4);
        /* Nothing held: an idle vCPU changes nothing. */
        h = spin_lock(&lock);
        virtio_blk_idle(&blk);
        spin_unlock(h);
        EXPECT_EQ(vm->irq_raises, irqs + 2);
        guest_isr();
        while (fk.npending)
                complete();
        fake_tsc += VIRTIO_BLK_HOLD_US * 1000ull;
        irq_poll_all();
        for (unsigned k = 0; k < 7; k++)
                EXPECT_EQ(status_of(k), VIRTIO_BLK_S_OK);
        qsize = 16;
        done_vm();
}

TEST(moderation_a_reset_while_held_releases_the_hold)
{
        qsize = 64;
        setup(LATER, 512, 4, 0, 64, true);
        for (unsigned k = 0; k < 4; k++)
                queue_req(k, VIRTIO_BLK_T_IN, k, DATA, 512);
        dq_notify(vm, &q);
        complete();
        guest_isr();
        complete();
        EXPECT_TRUE(blk.held);
        fv_wr(vm, VIRTIO_MMIO_STATUS, 0);
        EXPECT_FALSE(blk.held);
        while (fk.npending)
                complete(); /* stale: they touch nothing */
        qsize = 16;
        done_vm();
}

TEST_MAIN()
