/*
 * Tests for drivers/virtio_pci.c and drivers/virtio_blk_pci.c against a virtio-blk-pci device
 * model of the test's own: a 16 KiB "BAR4" (host memory: on the fake arch a host-physical
 * address is a host pointer) holding the common configuration at 0, ISR at 0x1000, the block
 * configuration at 0x2000 and the notify structure at 0x3000 (multiplier 4). The transport's
 * register accesses reach the model through virtio_pci_io, so select registers and reset
 * answer as they happen; a notify processes the available ring at once (descriptor chains:
 * header, data, status) on a 256-block RAM disk, and publishes the used entries at once or,
 * in hold mode, when the test says, in the order it says. Faults it can inject: never
 * complete, DEVICE_NEEDS_RESET, a used entry for a descriptor not in flight, an I/O error on
 * one block, no VERSION_1, FEATURES_OK refused. Each register read moves Keel's clock
 * (fake_tsc, 1 tick = 1 ns) by 1 us, so the driver's bounded waits end.
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

extern uint64_t fake_tsc;

#define BAR_SIZE 0x4000
#define BLOCKS   256
#define HELD_MAX 64

struct held {
        uint16_t head;
        uint32_t len;
};

static struct model {
        uint8_t *bar;
        uint8_t disk[BLOCKS * 512];
        uint64_t offered, driver_f;
        uint32_t dfsel, gfsel;
        uint8_t status, generation;
        uint16_t qsel, qmax, qsize, qenable;
        uint64_t desc, avail, used;
        uint16_t last_avail, used_idx;
        uint64_t capacity;
        uint32_t seg_max, size_max, blk_size;
        bool hold, never, refuse_features_ok, reset_stuck;
        int error_sector; /* -1: none */
        struct held held[HELD_MAX];
        unsigned nheld;
        unsigned reads, writes, flushes, notifies, max_data_descs;
        const char *bad; /* what the driver did wrong, or NULL */
} m;

static uint8_t *hp(uint64_t pa)
{
        return (uint8_t *)(uintptr_t)pa;
}

static void publish(uint16_t head, uint32_t len)
{
        uint8_t *u = hp(m.used);
        uint32_t *e = (uint32_t *)(u + 4) + 2 * (m.used_idx % m.qsize);

        e[0] = head;
        e[1] = len;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        m.used_idx++;
        memcpy(u + 2, &m.used_idx, 2);
}

struct vdesc {
        uint64_t addr;
        uint32_t len;
        uint16_t flags, next;
};

/* One chain: check its shape, do the I/O, write the status byte. */
static void run_chain(uint16_t head)
{
        struct vdesc *t = (struct vdesc *)hp(m.desc);
        struct vdesc c[HELD_MAX + 2];
        unsigned n = 0, data;
        uint16_t d = head;
        uint32_t type, written = 1;
        uint64_t sector, off;
        uint8_t st = 0;

        for (;;) {
                if (d >= m.qsize || n == m.qsize) {
                        m.bad = "a chain past the queue";
                        return;
                }
                c[n++] = t[d];
                if (!(t[d].flags & 1))
                        break;
                d = t[d].next;
        }
        if (n < 2 || c[0].len != 16 || (c[0].flags & 2) || c[n - 1].len != 1 ||
            !(c[n - 1].flags & 2)) {
                m.bad = "a chain without a readable 16-byte header and a writable status byte";
                return;
        }
        memcpy(&type, hp(c[0].addr), 4);
        memcpy(&sector, hp(c[0].addr) + 8, 8);
        data = n - 2;
        if (data > m.max_data_descs)
                m.max_data_descs = data;
        off = sector * 512;
        for (unsigned i = 1; i + 1 < n; i++) {
                if (type == 4 || !!(c[i].flags & 2) != (type == 0)) {
                        m.bad = "a data descriptor of the wrong direction";
                        return;
                }
                if (off + c[i].len > sizeof(m.disk)) {
                        st = 1;
                        break;
                }
                if (m.error_sector >= 0 && (uint64_t)m.error_sector * 512 >= off &&
                    (uint64_t)m.error_sector * 512 < off + c[i].len)
                        st = 1;
                else if (type == 0)
                        memcpy(hp(c[i].addr), m.disk + off, c[i].len);
                else if (type == 1)
                        memcpy(m.disk + off, hp(c[i].addr), c[i].len);
                if (type == 0)
                        written += c[i].len;
                off += c[i].len;
        }
        if (type == 0)
                m.reads++;
        else if (type == 1)
                m.writes++;
        else if (type == 4)
                m.flushes++;
        else
                st = 2;
        *hp(c[n - 1].addr) = st;
        if (m.hold) {
                m.held[m.nheld++] = (struct held){head, written};
                return;
        }
        publish(head, written);
}

static void notify(void)
{
        uint8_t *a = hp(m.avail);
        uint16_t idx;

        m.notifies++;
        if (!m.qenable || !(m.status & 4)) {
                if (!(m.status & 4))
                        m.bad = "a notify before DRIVER_OK";
                return;
        }
        memcpy(&idx, a + 2, 2);
        while (m.last_avail != idx && !m.never) {
                uint16_t head;

                memcpy(&head, a + 4 + 2 * (m.last_avail % m.qsize), 2);
                m.last_avail++;
                run_chain(head);
        }
}

static void reset_device(void)
{
        m.status = 0;
        m.driver_f = 0;
        m.qsize = m.qmax;
        m.qenable = 0;
        m.desc = m.avail = m.used = 0;
        m.last_avail = m.used_idx = 0;
        m.nheld = 0;
}

static uint32_t cfg_read(unsigned off, unsigned w)
{
        uint8_t cfg[0x40] = {0};

        memcpy(cfg, &m.capacity, 8);
        memcpy(cfg + 8, &m.size_max, 4);
        memcpy(cfg + 12, &m.seg_max, 4);
        memcpy(cfg + 20, &m.blk_size, 4);
        if (off + w > sizeof(cfg))
                return 0;
        return w == 1   ? cfg[off]
               : w == 2 ? (uint32_t)cfg[off] | cfg[off + 1] << 8
                        : fake_get32(cfg + off);
}

static uint32_t model_read(volatile void *p, unsigned w)
{
        uintptr_t off = (uintptr_t)p - (uintptr_t)m.bar;

        fake_tsc += 1000;
        if (off >= BAR_SIZE) {
                m.bad = "a read outside the BAR";
                return 0;
        }
        if (off >= 0x2000 && off < 0x3000)
                return cfg_read((unsigned)(off - 0x2000), w);
        if (off >= 0x1000)
                return 0;
        switch (off) {
        case 0x00:
                return m.dfsel;
        case 0x04:
                return m.dfsel == 0   ? (uint32_t)m.offered
                       : m.dfsel == 1 ? (uint32_t)(m.offered >> 32)
                                      : 0;
        case 0x12:
                return 1;
        case 0x14:
                return m.reset_stuck ? 0x0f : m.status;
        case 0x15:
                return m.generation;
        case 0x16:
                return m.qsel;
        case 0x18:
                return m.qsel == 0 ? m.qsize : 0;
        case 0x1c:
                return m.qenable;
        case 0x1e:
                return 0; /* queue_notify_off */
        default:
                return 0;
        }
}

static void model_write(volatile void *p, unsigned w, uint32_t v)
{
        uintptr_t off = (uintptr_t)p - (uintptr_t)m.bar;

        (void)w;
        if (off >= BAR_SIZE || (off >= 0x1000 && off < 0x3000)) {
                m.bad = "a write outside the common and notify structures";
                return;
        }
        if (off >= 0x3000) {
                if (off != 0x3000 || v != 0)
                        m.bad = "a notify of another queue or address";
                notify();
                return;
        }
        switch (off) {
        case 0x00:
                m.dfsel = v;
                break;
        case 0x08:
                m.gfsel = v;
                break;
        case 0x0c:
                if (m.gfsel < 2)
                        m.driver_f = (m.driver_f & ~(0xffffffffull << (32 * m.gfsel))) |
                                     (uint64_t)v << (32 * m.gfsel);
                break;
        case 0x14:
                if (v == 0) {
                        reset_device();
                        break;
                }
                if ((v & 8) && !(m.status & 8)) {
                        if ((m.driver_f & ~m.offered) || !(m.driver_f & (1ull << 32)) ||
                            m.refuse_features_ok)
                                v &= ~8u;
                }
                if ((v & 4) && !(v & 8))
                        m.bad = "DRIVER_OK without FEATURES_OK";
                m.status = (uint8_t)(v | (m.status & 64));
                break;
        case 0x16:
                m.qsel = (uint16_t)v;
                break;
        case 0x18:
                if (v > m.qmax || (v & (v - 1)))
                        m.bad = "a queue size the device did not offer";
                m.qsize = (uint16_t)v;
                break;
        case 0x1c:
                m.qenable = (uint16_t)v;
                break;
        case 0x20:
                m.desc = (m.desc & ~0xffffffffull) | v;
                break;
        case 0x24:
                m.desc = (m.desc & 0xffffffffull) | (uint64_t)v << 32;
                break;
        case 0x28:
                m.avail = (m.avail & ~0xffffffffull) | v;
                break;
        case 0x2c:
                m.avail = (m.avail & 0xffffffffull) | (uint64_t)v << 32;
                break;
        case 0x30:
                m.used = (m.used & ~0xffffffffull) | v;
                break;
        case 0x34:
                m.used = (m.used & 0xffffffffull) | (uint64_t)v << 32;
                break;
        default:
                break;
        }
}

static const struct virtio_pci_io model_io = {model_read, model_write};

/* Publish the held completions in the order given (indexes into the held list). */
static void release(const unsigned *order, unsigned n)
{
        for (unsigned i = 0; i < n; i++)
                publish(m.held[order[i]].head, m.held[order[i]].len);
}

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
