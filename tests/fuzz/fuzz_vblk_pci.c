/*
 * libFuzzer target for what Keel's virtio-blk-pci driver reads from a device
 * (drivers/virtio_pci.c, drivers/virtio_blk_pci.c): the device model of tests/unit/vblk_model.h
 * with a fuzzed configuration, then a fuzzed sequence of driver requests and device actions,
 * well-formed or not.
 *
 * Input: 16 bytes of configuration (offered features as 8 bytes; queue maximum; seg_max;
 * size_max as 2 bytes << 9; blk_size exponent; capacity in sectors as 2 bytes; flags: bit 0
 * refuse FEATURES_OK), then ops of 4 bytes (kind, a, b, c) while bytes remain:
 *   0 submit a read, 1 a write (FUA if c & 1), of (a % 3) + 1 segments of one block each at
 *   block b; 2 submit a flush; 3 the device completes held chain a (status byte c when b & 1,
 *   else what it wrote); 4 it publishes a used entry of its own (id a | b << 8, len c); 5 it
 *   writes used->idx = a | b << 8; 6 it sets status bits a; 7 poll; 8 the clock moves a * 64 ms.
 *
 * Invariants (abort on violation):
 *   - done() is called at most once per request, with 0 or -KEEL_EIO, and never for a submit
 *     that returned an error;
 *   - while the device has not failed: the queue's free descriptors plus those of the chains
 *     in flight are its size, and the chains in flight are the requests accepted and not done;
 *   - the driver never builds a malformed chain (the model's m.bad stays NULL);
 *   - at the end, after two polls 11 s apart, every accepted request has been completed (the
 *     second for the FLUSH a FUA write reaped in the first one queues).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <drivers/virtio_blk_pci.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <keel/palloc.h>

#include "../unit/vblk_model.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NREQ    48
#define RAM_MIB 1

struct rq {
        struct blk_req r;
        struct blk_seg seg[3];
        int calls, status;
        bool accepted;
};

static struct rq rqs[NREQ];
static unsigned nrq;
static void *ram, *bar;
static struct fake_pci fake;
static struct pci_host host;
static struct pci_dev devs[1];

static void rq_done(struct blk_req *r, int status)
{
        struct rq *q = r->ctx;

        if (q->calls++ || (status != 0 && status != -KEEL_EIO))
                abort();
        q->status = status;
}

static void quiet(const char *s, unsigned long len)
{
        (void)s;
        (void)len;
}

static void check(struct vblk *v)
{
        unsigned outstanding = 0, descs = v->q.num_free;

        if (m.bad)
                abort();
        if (v->failed)
                return;
        for (unsigned i = 0; i < nrq; i++)
                outstanding += rqs[i].accepted && !rqs[i].calls;
        for (unsigned i = 0; i < v->q.size; i++)
                descs += v->q.chain[i];
        if (descs != v->q.size || v->q.in_flight != outstanding)
                abort();
}

static void submit(struct vblk *v, uint8_t op, const uint8_t *o, hpa_t buf)
{
        struct rq *q;
        unsigned nseg = o[1] % 3 + 1;
        int err;

        if (nrq == NREQ)
                return;
        q = &rqs[nrq++];
        memset(q, 0, sizeof(*q));
        for (unsigned i = 0; i < nseg; i++)
                q->seg[i] = (struct blk_seg){hpa_add(buf, 4096ull * (nrq % 8) + 512 * i),
                                             v->blk.block_size > 512 ? v->blk.block_size : 512};
        q->r = (struct blk_req){.op = op,
                                .fua = o[3] & 1,
                                .lba = o[2],
                                .blocks = nseg,
                                .seg = q->seg,
                                .nseg = op == BLK_FLUSH ? 0 : nseg,
                                .done = rq_done,
                                .ctx = q};
        err = v->blk.ops->submit(&v->blk, &q->r);
        if (err && q->calls)
                abort();
        q->accepted = !err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct in in = {data, size};
        uint8_t cfg[16], o[4];
        struct mem_range r;
        struct pci_dev *d;
        struct vblk *v;
        hpa_t buf;

        if (!take(&in, cfg, sizeof(cfg)))
                return 0;
        if (!ram) {
                ram = aligned_alloc(4096, RAM_MIB << 20);
                bar = aligned_alloc(BAR_SIZE, BAR_SIZE);
                log_set_sink(quiet);
        }
        r = (struct mem_range){hpa((uint64_t)(uintptr_t)ram), (RAM_MIB << 20) / PAGE_SIZE};
        if (palloc_init(&keel_palloc, &r, 1))
                abort();
        blkdev_reset_for_test();
        vblk_reset_for_test();
        memset(&m, 0, sizeof(m));
        m.bar = bar;
        memset(bar, 0, BAR_SIZE);
        memcpy(&m.offered, cfg, 8);
        m.qmax = m.qsize = cfg[8];
        m.seg_max = cfg[9];
        m.size_max = (uint32_t)(cfg[10] | cfg[11] << 8) << 9;
        m.blk_size = 1u << (cfg[12] % 20);
        m.capacity = cfg[13] | cfg[14] << 8;
        m.refuse_features_ok = cfg[15] & 1;
        m.error_sector = -1;
        virtio_pci_io = &model_io;

        memset(&fake, 0, sizeof(fake));
        fake.count = 1;
        fake.fn[0].a = (struct pci_addr){0, 0, 5, 0};
        pci_host_init(&host, &fake_pci_ops, &fake);
        pci_set_table(&host, devs, 1);
        d = &host.dev[host.dev_count++];
        memset(d, 0, sizeof(*d));
        d->addr = fake.fn[0].a;
        d->vendor = 0x1af4;
        d->device = 0x1042;
        d->class = 0x010000;
        d->bar[4] = (struct pci_bar){PCI_BAR_MEM64, true, (uint64_t)(uintptr_t)bar, BAR_SIZE};
        d->virtio[0] = (struct pci_virtio_cap){1, 4, 0, 0x1000, 0};
        d->virtio[1] = (struct pci_virtio_cap){3, 4, 0x1000, 0x1000, 0};
        d->virtio[2] = (struct pci_virtio_cap){4, 4, 0x2000, 0x1000, 0};
        d->virtio[3] = (struct pci_virtio_cap){2, 4, 0x3000, 0x1000, 4};
        d->virtio_count = 4;
        vblk_register(&host);
        pci_bind(&host);
        if (m.bad)
                abort();
        v = vblk_get(0);
        if (!v)
                return 0;
        if (palloc_alloc(&keel_palloc, 8 * 16, PAGE_SIZE, &buf))
                return 0; /* room for 8 requests of up to 3 blocks of 64 KiB at most */
        m.hold = true;
        nrq = 0;
        while (take(&in, o, sizeof(o))) {
                switch (o[0] % 9) {
                case 0:
                case 1:
                        submit(v, o[0] % 9 ? BLK_WRITE : BLK_READ, o, buf);
                        break;
                case 2:
                        submit(v, BLK_FLUSH, o, buf);
                        break;
                case 3:
                        if (m.nheld && m.used) {
                                unsigned k = o[1] % m.nheld;
                                struct held h = m.held[k];

                                m.held[k] = m.held[--m.nheld];
                                if (o[2] & 1) {
                                        uint8_t *st = (uint8_t *)v->hdr + 1024 + h.head;

                                        *st = o[3];
                                }
                                publish(h.head, h.len);
                        }
                        break;
                case 4:
                        if (m.used)
                                publish((uint16_t)(o[1] | o[2] << 8), o[3]);
                        break;
                case 5: {
                        uint16_t idx = (uint16_t)(o[1] | o[2] << 8);

                        if (m.used)
                                memcpy(hp(m.used) + 2, &idx, 2);
                        break;
                }
                case 6:
                        m.status |= o[1];
                        break;
                case 7:
                        v->blk.ops->poll(&v->blk);
                        break;
                default:
                        fake_tsc += o[1] * 64000000ull;
                        break;
                }
                check(v);
        }
        /* Twice: a FUA write reaped in the first poll has its FLUSH queued only then. */
        for (unsigned round = 0; round < 2; round++) {
                fake_tsc += (VBLK_TIMEOUT_MS + 1000) * 1000000ull;
                v->blk.ops->poll(&v->blk);
                check(v);
        }
        for (unsigned i = 0; i < nrq; i++)
                if (rqs[i].accepted && rqs[i].calls != 1)
                        abort();
        return 0;
}
