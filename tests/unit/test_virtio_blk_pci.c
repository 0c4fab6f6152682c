/*
 * Tests for drivers/virtio_pci.c and drivers/virtio_blk_pci.c against the virtio-blk-pci
 * device model of tests/unit/vblk_model.h (registers answered on access, the available ring
 * processed on notify, used entries published at once or when the test says).
 */
#include <stdlib.h>
#include <string.h>

#include <drivers/virtio_blk_pci.h>
#include <keel/errno.h>
#include <keel/palloc.h>
#include <keel/time.h>

#include "log_capture.h"
#include "pci_fake.h"
#include "test.h"

#include "vblk_model.h"

/* Each test's model memory stays allocated and reachable: the driver keeps its devices. */
static void *kept[32];
static unsigned nkept;

static void *keep(void *p)
{
        if (nkept < sizeof(kept) / sizeof(kept[0]))
                kept[nkept++] = p;
        return p;
}

static struct fake_pci fake;
static struct pci_host host;
static struct pci_dev devs[2];

#define F_SIZE_MAX 1
#define F_SEG_MAX  2
#define F_RO       5
#define F_BLK_SIZE 6
#define F_FLUSH    9
#define F_V1       32
#define BIT(b)     (1ull << (b))

/* A model offering `features` and a host holding it as 0000:00:05.0, the driver registered. */
static void start(uint64_t features, uint16_t qmax, bool scratch)
{
        struct mem_range r;
        struct pci_dev *d;
        void *ram = keep(aligned_alloc(4096, 4 << 20));

        memset(&m, 0, sizeof(m));
        m.bar = keep(aligned_alloc(BAR_SIZE, BAR_SIZE));
        memset(m.bar, 0, BAR_SIZE);
        m.offered = features;
        m.qmax = m.qsize = qmax;
        m.capacity = BLOCKS;
        m.seg_max = 126;
        m.blk_size = 512;
        m.error_sector = -1;
        for (unsigned i = 0; i < sizeof(m.disk); i++)
                m.disk[i] = (uint8_t)(i * 13);
        if (scratch)
                memcpy(m.disk, "KEEL-VBLK-SCRATCH", 17);
        r = (struct mem_range){hpa((uint64_t)(uintptr_t)ram), (4 << 20) / PAGE_SIZE};
        EXPECT_EQ(palloc_init(&keel_palloc, &r, 1), 0);
        virtio_pci_io = &model_io;

        memset(&fake, 0, sizeof(fake));
        fake.count = 1;
        fake.fn[0].a = (struct pci_addr){0, 0, 5, 0};
        pci_host_init(&host, &fake_pci_ops, &fake);
        pci_set_table(&host, devs, 2);
        d = &host.dev[host.dev_count++];
        memset(d, 0, sizeof(*d));
        d->addr = fake.fn[0].a;
        d->vendor = 0x1af4;
        d->device = 0x1042;
        d->class = 0x010000;
        d->bar[4] = (struct pci_bar){PCI_BAR_MEM64, true, (uint64_t)(uintptr_t)m.bar, BAR_SIZE};
        d->virtio[0] = (struct pci_virtio_cap){1, 4, 0, 0x1000, 0};
        d->virtio[1] = (struct pci_virtio_cap){3, 4, 0x1000, 0x1000, 0};
        d->virtio[2] = (struct pci_virtio_cap){4, 4, 0x2000, 0x1000, 0};
        d->virtio[3] = (struct pci_virtio_cap){2, 4, 0x3000, 0x1000, 4};
        d->virtio_count = 4;
        vblk_register(&host);
        capture_start();
}

static struct vblk *last(void)
{
        return vblk_count() ? vblk_get(vblk_count() - 1) : NULL;
}

static hpa_t buffer(unsigned pages)
{
        hpa_t pa;

        EXPECT_EQ(palloc_alloc(&keel_palloc, pages, PAGE_SIZE, &pa), 0);
        return pa;
}

/* A request and what its done() saw. */
struct rq {
        struct blk_req r;
        struct blk_seg seg[2];
        int status, calls, order;
};

static int done_order;

static void rq_done(struct blk_req *r, int status)
{
        struct rq *q = r->ctx;

        q->status = status;
        q->calls++;
        q->order = ++done_order;
}

static void rq_init(struct rq *q, uint8_t op, uint64_t lba, uint32_t blocks, hpa_t pa)
{
        memset(q, 0, sizeof(*q));
        q->seg[0] = (struct blk_seg){pa, blocks * 512};
        q->r = (struct blk_req){.op = op,
                                .lba = lba,
                                .blocks = blocks,
                                .seg = q->seg,
                                .nseg = op == BLK_FLUSH ? 0 : 1,
                                .done = rq_done,
                                .ctx = q};
}

static int submit(struct vblk *v, struct rq *q)
{
        return v->blk.ops->submit(&v->blk, &q->r);
}

#define FULL (BIT(F_V1) | BIT(F_SEG_MAX) | BIT(F_BLK_SIZE) | BIT(F_FLUSH))

TEST(a_legacy_only_device_and_a_refused_feature_set_are_not_taken)
{
        unsigned before = vblk_count();

        start(BIT(F_SEG_MAX) | BIT(F_FLUSH), 64, false);
        pci_bind(&host);
        EXPECT_EQ(vblk_count(), before);
        EXPECT_CONTAINS(logbuf, "keel: virtio 0000:00:05.0: the device does not offer VERSION_1 "
                                "(features 0x204): legacy-only, not used");
        EXPECT_CONTAINS(logbuf, "driver virtio-blk refused it");
        EXPECT_EQ(fake.fn[0].cfg[4] & PCI_CMD_MASTER, 0);

        start(FULL, 64, false);
        m.refuse_features_ok = true;
        pci_bind(&host);
        EXPECT_EQ(vblk_count(), before);
        EXPECT_CONTAINS(logbuf, "the device refused features 0x100000244 (FEATURES_OK not kept)");

        start(FULL, 64, false);
        host.dev[0].virtio_count = 0; /* no capabilities at all */
        pci_bind(&host);
        EXPECT_EQ(vblk_count(), before);
        EXPECT_CONTAINS(logbuf, "has no virtio 1 common configuration (legacy-only device)");

        start(FULL, 64, false);
        m.reset_stuck = true;
        pci_bind(&host);
        EXPECT_EQ(vblk_count(), before);
        EXPECT_CONTAINS(logbuf, "did not reset within 1000 ms");
        EXPECT_TRUE(m.bad == NULL);
}

TEST(geometry_and_the_scratch_selftest)
{
        unsigned before = vblk_count();
        struct vblk *v;
        struct blkdev *b;

        start(FULL | BIT(F_SIZE_MAX) | (1ull << 12) /* MQ: not taken */, 128, true);
        m.size_max = 65536;
        pci_bind(&host);
        ASSERT_TRUE(vblk_count() == before + 1);
        v = last();
        EXPECT_TRUE(m.bad == NULL);
        EXPECT_EQ(m.driver_f, FULL | BIT(F_SIZE_MAX));
        EXPECT_EQ(m.status, 15);
        EXPECT_EQ(m.qsize, 64);
        EXPECT_CONTAINS(logbuf, "keel: virtio-blk 0000:00:05.0: vblk0: 256 blocks of 512 bytes (0 "
                                "MiB), read-write, volatile write cache (FLUSH), 62 segments, 64 "
                                "KiB per request, queue 64, polled");
        EXPECT_CONTAINS(logbuf, "keel: virtio-blk 0000:00:05.0: vblk0 scratch disk: wrote blocks "
                                "1-16 (4 requests in flight), flushed and read back: ok");
        EXPECT_CONTAINS(logbuf, "taken by driver virtio-blk");
        b = blkdev_find("vblk0");
        ASSERT_TRUE(b == &v->blk);
        EXPECT_EQ(b->blocks, BLOCKS);
        EXPECT_EQ(b->block_size, 512);
        EXPECT_EQ(b->max_segs, 62);
        EXPECT_EQ(b->max_transfer, 65536);
        EXPECT_TRUE(b->volatile_cache);
        EXPECT_FALSE(b->read_only);
        /* The pattern reached blocks 1-16; the FUA write's flush and the explicit one. */
        EXPECT_EQ(m.disk[512], 0x3c);
        EXPECT_EQ(m.disk[513], 0x43);
        EXPECT_EQ(m.disk[17 * 512 + 3], (uint8_t)((17 * 512 + 3) * 13));
        EXPECT_EQ(m.writes, 4);
        EXPECT_EQ(m.flushes, 2);
        EXPECT_EQ(m.reads, 3);
        EXPECT_EQ(m.max_data_descs, 2); /* the read-back's two segments */
        EXPECT_EQ(v->q.num_free, 64);
}

TEST(several_in_flight_complete_out_of_order_and_an_io_error_fails_one)
{
        struct rq q[4];
        struct vblk *v;
        hpa_t pa;
        uint8_t *p;
        const unsigned order[] = {2, 0, 3, 1};

        start(FULL, 64, false);
        pci_bind(&host);
        v = last();
        ASSERT_TRUE(v && !v->failed);
        m.hold = true;
        m.error_sector = 40;
        pa = buffer(4);
        p = hva_ptr(arch_hpa_to_hva(pa));
        rq_init(&q[0], BLK_READ, 0, 2, pa);
        rq_init(&q[1], BLK_WRITE, 5, 1, hpa_add(pa, 4096));
        memset(p + 4096, 0xab, 512);
        rq_init(&q[2], BLK_READ, 9, 4, hpa_add(pa, 8192));
        rq_init(&q[3], BLK_READ, 40, 1, hpa_add(pa, 12288));
        for (unsigned i = 0; i < 4; i++)
                EXPECT_EQ(submit(v, &q[i]), 0);
        EXPECT_EQ(v->q.in_flight, 4);
        v->blk.ops->poll(&v->blk);
        for (unsigned i = 0; i < 4; i++)
                EXPECT_EQ(q[i].calls, 0);
        done_order = 0;
        release(order, 4);
        v->blk.ops->poll(&v->blk);
        for (unsigned i = 0; i < 4; i++)
                EXPECT_EQ(q[i].calls, 1);
        EXPECT_EQ(q[2].order, 1);
        EXPECT_EQ(q[0].order, 2);
        EXPECT_EQ(q[3].order, 3);
        EXPECT_EQ(q[1].order, 4);
        EXPECT_EQ(q[0].status, 0);
        EXPECT_EQ(q[1].status, 0);
        EXPECT_EQ(q[2].status, 0);
        EXPECT_EQ(q[3].status, -KEEL_EIO);
        EXPECT_CONTAINS(logbuf, "vblk1: read of 1 blocks at 40: I/O error");
        EXPECT_TRUE(v->failed == NULL);
        EXPECT_EQ(p[0], 0);
        EXPECT_EQ(p[1], 13);
        EXPECT_EQ(p[8192], (uint8_t)(9 * 512 * 13));
        EXPECT_EQ(m.disk[5 * 512], 0xab);
        EXPECT_EQ(v->q.num_free, 64);
        EXPECT_EQ(v->q.in_flight, 0);
        /* Refused before the device sees them. */
        rq_init(&q[0], BLK_READ, 255, 2, pa); /* past the end */
        EXPECT_EQ(submit(v, &q[0]), -KEEL_EINVAL);
        rq_init(&q[0], BLK_READ, 0, 2, pa);
        q[0].seg[0].len = 1000; /* not whole blocks */
        EXPECT_EQ(submit(v, &q[0]), -KEEL_EINVAL);
        EXPECT_TRUE(m.bad == NULL);
}

TEST(a_full_queue_says_again_and_takes_the_request_after_a_completion)
{
        struct rq q[3];
        struct vblk *v;
        hpa_t pa;
        const unsigned first = 0;

        start(FULL, 8, false);
        pci_bind(&host);
        v = last();
        ASSERT_TRUE(v && !v->failed);
        EXPECT_EQ(v->q.size, 8);
        EXPECT_EQ(v->blk.max_segs, 6);
        m.hold = true;
        pa = buffer(1);
        for (unsigned i = 0; i < 3; i++)
                rq_init(&q[i], BLK_READ, i, 1, pa);
        EXPECT_EQ(submit(v, &q[0]), 0);
        EXPECT_EQ(submit(v, &q[1]), 0);
        EXPECT_EQ(submit(v, &q[2]), -KEEL_EAGAIN); /* 6 of 8 descriptors used, 3 needed */
        EXPECT_EQ(q[2].calls, 0);
        release(&first, 1);
        v->blk.ops->poll(&v->blk);
        EXPECT_EQ(q[0].calls, 1);
        EXPECT_EQ(submit(v, &q[2]), 0);
        m.nheld = 0;
        m.hold = false;
        EXPECT_TRUE(m.bad == NULL);
}

TEST(a_request_never_completed_times_out_and_fails_the_device)
{
        struct rq q[2];
        struct vblk *v;
        hpa_t pa;

        start(FULL, 64, false);
        pci_bind(&host);
        v = last();
        ASSERT_TRUE(v && !v->failed);
        m.never = true;
        pa = buffer(1);
        rq_init(&q[0], BLK_READ, 0, 1, pa);
        rq_init(&q[1], BLK_FLUSH, 0, 0, pa);
        EXPECT_EQ(submit(v, &q[0]), 0);
        EXPECT_EQ(submit(v, &q[1]), 0);
        v->blk.ops->poll(&v->blk);
        EXPECT_EQ(q[0].calls, 0);
        fake_tsc += (VBLK_TIMEOUT_MS + 1) * 1000000ull;
        v->blk.ops->poll(&v->blk);
        EXPECT_EQ(q[0].calls, 1);
        EXPECT_EQ(q[1].calls, 1);
        EXPECT_EQ(q[0].status, -KEEL_EIO);
        EXPECT_EQ(q[1].status, -KEEL_EIO);
        EXPECT_CONTAINS(logbuf, "keel: virtio-blk 0000:00:05.0: vblk3 failed: a request timed "
                                "out (status 0xf); no more I/O to it");
        EXPECT_EQ(m.status, 128);                         /* reset, then FAILED */
        EXPECT_EQ(fake.fn[0].cfg[4] & PCI_CMD_MASTER, 0); /* no more DMA */
        EXPECT_EQ(submit(v, &q[0]), -KEEL_EIO);
        v->blk.ops->poll(&v->blk);
        EXPECT_EQ(q[0].calls, 1);
}

/* Found by fuzz.vblk_pci: the deadline was checked only in a poll that reaped nothing. */
TEST(a_request_starved_while_others_complete_still_times_out)
{
        struct rq q[2];
        struct vblk *v;
        hpa_t pa;
        const unsigned second = 1;

        start(FULL, 64, false);
        pci_bind(&host);
        v = last();
        ASSERT_TRUE(v && !v->failed);
        m.hold = true;
        pa = buffer(1);
        rq_init(&q[0], BLK_READ, 0, 1, pa);
        rq_init(&q[1], BLK_READ, 1, 1, pa);
        EXPECT_EQ(submit(v, &q[0]), 0);
        EXPECT_EQ(submit(v, &q[1]), 0);
        fake_tsc += (VBLK_TIMEOUT_MS + 1) * 1000000ull;
        release(&second, 1); /* the device completes the second, never the first */
        v->blk.ops->poll(&v->blk);
        EXPECT_EQ(q[1].calls, 1);
        EXPECT_EQ(q[1].status, 0);
        EXPECT_EQ(q[0].calls, 1);
        EXPECT_EQ(q[0].status, -KEEL_EIO);
        EXPECT_CONTAINS(logbuf, "failed: a request timed out");
}

TEST(needs_reset_fails_the_device_and_its_requests)
{
        struct rq q;
        struct vblk *v;
        hpa_t pa;

        start(FULL, 64, false);
        pci_bind(&host);
        v = last();
        ASSERT_TRUE(v && !v->failed);
        m.hold = true;
        pa = buffer(1);
        rq_init(&q, BLK_WRITE, 3, 1, pa);
        EXPECT_EQ(submit(v, &q), 0);
        m.status |= 64;
        v->blk.ops->poll(&v->blk);
        EXPECT_EQ(q.calls, 1);
        EXPECT_EQ(q.status, -KEEL_EIO);
        EXPECT_CONTAINS(logbuf, "failed: the device set DEVICE_NEEDS_RESET");
        EXPECT_TRUE(v->failed != NULL);
}

TEST(a_used_entry_for_no_request_in_flight_fails_the_device_without_a_crash)
{
        struct rq q;
        struct vblk *v;
        hpa_t pa;

        start(FULL, 64, false);
        pci_bind(&host);
        v = last();
        ASSERT_TRUE(v && !v->failed);
        m.hold = true;
        pa = buffer(1);
        rq_init(&q, BLK_READ, 3, 1, pa);
        EXPECT_EQ(submit(v, &q), 0);
        publish(40, 1); /* descriptor 40 heads nothing */
        v->blk.ops->poll(&v->blk);
        EXPECT_EQ(q.calls, 1);
        EXPECT_EQ(q.status, -KEEL_EIO);
        EXPECT_CONTAINS(logbuf, "failed: a used entry names a descriptor that heads no request in "
                                "flight");
        EXPECT_EQ(v->blk.ops->submit(&v->blk, &q.r), -KEEL_EIO);
}

TEST(read_only_without_flush_and_4k_blocks)
{
        struct rq q;
        struct vblk *v;
        hpa_t pa;
        uint8_t *p;

        start(BIT(F_V1) | BIT(F_RO) | BIT(F_BLK_SIZE), 64, true);
        m.blk_size = 4096;
        pci_bind(&host);
        v = last();
        ASSERT_TRUE(v && !v->failed);
        EXPECT_CONTAINS(logbuf, "32 blocks of 4096 bytes (0 MiB), read-only, no FLUSH: writes "
                                "durable when completed, 1 segment,");
        EXPECT_CONTAINS(logbuf, "not a writable scratch disk: nothing written");
        EXPECT_TRUE(v->blk.read_only);
        EXPECT_FALSE(v->blk.volatile_cache);
        EXPECT_EQ(v->blk.block_size, 4096);
        EXPECT_EQ(m.writes, 0);
        pa = buffer(1);
        p = hva_ptr(arch_hpa_to_hva(pa));
        rq_init(&q, BLK_WRITE, 1, 1, pa);
        q.seg[0].len = 4096;
        EXPECT_EQ(submit(v, &q), -KEEL_EINVAL); /* read-only */
        rq_init(&q, BLK_FLUSH, 0, 0, pa);
        EXPECT_EQ(submit(v, &q), 0); /* nothing to flush: done at once */
        EXPECT_EQ(q.calls, 1);
        EXPECT_EQ(m.flushes, 0);
        rq_init(&q, BLK_READ, 1, 1, pa); /* block 1 = sectors 8-15 */
        q.seg[0].len = 4096;
        EXPECT_EQ(submit(v, &q), 0);
        v->blk.ops->poll(&v->blk);
        EXPECT_EQ(q.status, 0);
        EXPECT_EQ(p[0], (uint8_t)(4096 * 13));
        EXPECT_TRUE(m.bad == NULL);
}

TEST_MAIN()
