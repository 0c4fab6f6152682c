/*
 * Keel's NVMe driver (drivers/include/drivers/nvme.h, docs/nvme.md), after the NVM Express
 * Base Specification 2.0: registers (3.1), controller initialisation (3.5.1), queues and
 * their entries (4.1-4.6), Identify (5.17), Create I/O queues (5.4, 5.5), and the NVM
 * command set's Read, Write and Flush. Polled: no interrupts are enabled.
 */
#include <stdio.h>
#include <string.h>

#include <drivers/nvme.h>
#include <keel/arch.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <keel/palloc.h>
#include <keel/time.h>

#define REG_CAP  0x00
#define REG_VS   0x08
#define REG_CC   0x14
#define REG_CSTS 0x1c
#define REG_AQA  0x24
#define REG_ASQ  0x28
#define REG_ACQ  0x30
#define REG_DB   0x1000

#define CC_EN         (1u << 0)
#define CC_IOSQES_64  (6u << 16)
#define CC_IOCQES_16  (4u << 20)
#define CSTS_RDY      (1u << 0)
#define CSTS_CFS      (1u << 1)
#define CAP_MQES(c)   ((unsigned)((c)&0xffff) + 1)
#define CAP_TO(c)     ((unsigned)((c) >> 24) & 0xff) /* 500 ms units */
#define CAP_DSTRD(c)  ((unsigned)((c) >> 32) & 0xf)
#define CAP_CSS_NVM   (1ull << 37)
#define CAP_MPSMIN(c) ((unsigned)((c) >> 48) & 0xf)

#define ADM_CREATE_SQ 0x01
#define ADM_CREATE_CQ 0x05
#define ADM_IDENTIFY  0x06
#define NVM_FLUSH     0x00
#define NVM_WRITE     0x01
#define NVM_READ      0x02

#define ADMIN_ENTRIES 32
#define IO_ENTRIES    64
#define PRP_PER_PAGE  (PAGE_SIZE / 8)

struct sqe {
        uint32_t cdw0, nsid, rsvd[2];
        uint64_t mptr, prp1, prp2;
        uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};

static struct nvme_ctrl ctrls[NVME_MAX_CTRLS];
static unsigned nctrls;

unsigned nvme_count(void)
{
        return nctrls;
}

struct nvme_ctrl *nvme_get(unsigned i)
{
        return i < nctrls ? &ctrls[i] : NULL;
}

static uint32_t rd32(const struct nvme_ctrl *c, unsigned off)
{
        return *(volatile uint32_t *)(c->regs + off);
}

static void wr32(const struct nvme_ctrl *c, unsigned off, uint32_t v)
{
        *(volatile uint32_t *)(c->regs + off) = v;
}

/* 64-bit registers as two 32-bit accesses, low first (NVMe allows either width). */
static uint64_t rd64(const struct nvme_ctrl *c, unsigned off)
{
        return rd32(c, off) | (uint64_t)rd32(c, off + 4) << 32;
}

static void wr64(const struct nvme_ctrl *c, unsigned off, uint64_t v)
{
        wr32(c, off, (uint32_t)v);
        wr32(c, off + 4, (uint32_t)(v >> 32));
}

static uint64_t deadline_after(uint64_t ms)
{
        uint64_t khz = arch_tsc_khz();

        /* Before the clock is calibrated, assume 4 GHz: a deadline no shorter than asked. */
        return arch_tsc() + ms * (khz ? khz : 4000000);
}

static void fail(struct nvme_ctrl *c, const char *why)
{
        if (c->failed)
                return;
        c->failed = why;
        LOG_WARN("keel: nvme %s: failed: %s (CSTS %#x); no more I/O to it", c->name, why,
                 rd32(c, REG_CSTS));
}

/* Wait until CSTS.RDY == rdy, at most CAP.TO. False on timeout or a fatal status. */
static bool wait_ready(struct nvme_ctrl *c, bool rdy)
{
        uint64_t end = deadline_after(c->timeout_ms);

        for (;;) {
                uint32_t csts = rd32(c, REG_CSTS);

                if (csts == 0xffffffffu)
                        return false; /* the device is gone */
                if (rdy && (csts & CSTS_CFS))
                        return false;
                if (!!(csts & CSTS_RDY) == rdy)
                        return true;
                if (arch_tsc() > end)
                        return false;
        }
}

static volatile uint32_t *doorbell(const struct nvme_ctrl *c, unsigned qid, bool cq)
{
        return (volatile uint32_t *)(c->regs + REG_DB +
                                     (2 * qid + (cq ? 1 : 0)) * (4u << CAP_DSTRD(c->cap)));
}

static int queue_alloc(struct nvme_queue *q, uint16_t qid, uint16_t size)
{
        hpa_t pa;
        int err = palloc_alloc(&keel_palloc, 2, PAGE_SIZE, &pa); /* SQ page, CQ page: zeroed */

        if (err)
                return err;
        *q = (struct nvme_queue){
            .sq = hva_ptr(arch_hpa_to_hva(pa)),
            .cq = hva_ptr(arch_hpa_to_hva(hpa_add(pa, PAGE_SIZE))),
            .sq_pa = pa,
            .cq_pa = hpa_add(pa, PAGE_SIZE),
            .size = size,
            .phase = 1,
            .qid = qid,
        };
        return 0;
}

/*
 * Submit `cmd` on `q` and poll its completion. 0, or -KEEL_EIO: the command failed (its
 * status reported), timed out, or the controller has failed. *dw0: the completion's DW0.
 */
static int run(struct nvme_ctrl *c, struct nvme_queue *q, struct sqe *cmd, uint32_t *dw0)
{
        uint16_t cid = q->cid++;
        uint64_t end;

        if (c->failed)
                return -KEEL_EIO;
        if ((uint16_t)(q->sq_tail + 1) % q->size == q->sq_head) {
                fail(c, "submission queue full with nothing outstanding");
                return -KEEL_EIO;
        }
        cmd->cdw0 = (cmd->cdw0 & 0xffff) | (uint32_t)cid << 16;
        memcpy((void *)(q->sq + 64u * q->sq_tail), cmd, sizeof(*cmd));
        q->sq_tail = (uint16_t)((q->sq_tail + 1) % q->size);
        arch_dma_barrier(); /* the entry before the doorbell */
        *doorbell(c, q->qid, false) = q->sq_tail;
        end = deadline_after(c->timeout_ms);
        for (;;) {
                volatile uint32_t *e = q->cq + 4u * q->cq_head;
                uint32_t dw3 = e[3], status;

                if (((dw3 >> 16) & 1) == q->phase) {
                        arch_dma_barrier(); /* the entry's other words after its phase */
                        status = (e[3] >> 17) & 0x7fff;
                        if (dw0)
                                *dw0 = e[0];
                        q->sq_head = (uint16_t)(e[2] & 0xffff);
                        if (++q->cq_head == q->size) {
                                q->cq_head = 0;
                                q->phase ^= 1;
                        }
                        *doorbell(c, q->qid, true) = q->cq_head;
                        if ((dw3 & 0xffff) != cid || q->sq_head >= q->size) {
                                fail(c, "a completion for a command Keel did not submit");
                                return -KEEL_EIO;
                        }
                        if (status) {
                                LOG_WARN("keel: nvme %s: command %#x on queue %u failed: status "
                                         "type %u code %#x",
                                         c->name, cmd->cdw0 & 0xff, q->qid, (status >> 8) & 7,
                                         status & 0xff);
                                return -KEEL_EIO;
                        }
                        return 0;
                }
                if (rd32(c, REG_CSTS) & CSTS_CFS) {
                        fail(c, "controller fatal status");
                        return -KEEL_EIO;
                }
                if (arch_tsc() > end) {
                        char why[64];

                        snprintf(why, sizeof(why), "command %#x on queue %u timed out",
                                 cmd->cdw0 & 0xff, q->qid);
                        fail(c, "a command timed out");
                        LOG_WARN("keel: nvme %s: %s after %llu ms", c->name, why,
                                 (unsigned long long)c->timeout_ms);
                        return -KEEL_EIO;
                }
        }
}

static void copy_str(char *dst, const uint8_t *src, unsigned n)
{
        unsigned len = 0;

        for (unsigned i = 0; i < n; i++)
                dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? (char)src[i] : '?';
        for (unsigned i = 0; i < n; i++)
                if (dst[i] != ' ')
                        len = i + 1;
        dst[len] = '\0';
}

static uint64_t le64(const uint8_t *p)
{
        uint64_t v = 0;

        for (unsigned i = 0; i < 8; i++)
                v |= (uint64_t)p[i] << (8 * i);
        return v;
}

static int identify(struct nvme_ctrl *c, uint32_t cns, uint32_t nsid)
{
        struct sqe cmd = {
            .cdw0 = ADM_IDENTIFY, .nsid = nsid, .prp1 = hpa_raw(c->page_pa), .cdw10 = cns};

        memset(c->page, 0, PAGE_SIZE);
        return run(c, &c->admin, &cmd, NULL);
}

static int identify_all(struct nvme_ctrl *c)
{
        uint32_t list[NVME_MAX_NS];
        unsigned nlist = 0;
        unsigned mdts;
        int err = identify(c, 1, 0);

        if (err)
                return err;
        copy_str(c->serial, c->page + 4, 20);
        copy_str(c->model, c->page + 24, 40);
        copy_str(c->firmware, c->page + 64, 8);
        mdts = c->page[77];
        c->nn =
            c->page[516] | c->page[517] << 8 | c->page[518] << 16 | (uint32_t)c->page[519] << 24;
        c->vwc = c->page[525] & 1;
        /* MDTS is in units of the minimum page size; one PRP list page bounds Keel's too. */
        c->max_transfer = (uint32_t)(PRP_PER_PAGE * PAGE_SIZE);
        if (mdts && mdts + 12 + CAP_MPSMIN(c->cap) < 32 &&
            (1u << (mdts + 12 + CAP_MPSMIN(c->cap))) < c->max_transfer)
                c->max_transfer = 1u << (mdts + 12 + CAP_MPSMIN(c->cap));

        err = identify(c, 2, 0); /* the active namespace ids, ascending */
        if (err)
                return err;
        for (unsigned i = 0; i < PAGE_SIZE / 4 && nlist < NVME_MAX_NS; i++) {
                uint32_t id = c->page[4 * i] | c->page[4 * i + 1] << 8 | c->page[4 * i + 2] << 16 |
                              (uint32_t)c->page[4 * i + 3] << 24;

                if (!id)
                        break;
                list[nlist++] = id;
        }
        for (unsigned i = 0; i < nlist; i++) {
                unsigned flbas, lbads;
                struct nvme_ns *ns = &c->ns[c->ns_count];

                err = identify(c, 0, list[i]);
                if (err)
                        return err;
                flbas = c->page[26] & 0xf;
                lbads = c->page[128 + 4 * flbas + 2];
                if (flbas > c->page[25] || lbads < 9 || lbads > 12) {
                        LOG_WARN("keel: nvme %s: namespace %u: block size 2^%u (format %u) not "
                                 "supported: not used",
                                 c->name, list[i], lbads, flbas);
                        continue;
                }
                ns->nsid = list[i];
                ns->blocks = le64(c->page);
                ns->block_size = 1u << lbads;
                c->ns_count++;
        }
        return 0;
}

static int create_io_queues(struct nvme_ctrl *c)
{
        uint16_t size = IO_ENTRIES < CAP_MQES(c->cap) ? IO_ENTRIES : (uint16_t)CAP_MQES(c->cap);
        struct sqe cq, sq;
        int err = queue_alloc(&c->io, 1, size);

        if (err)
                return err;
        cq = (struct sqe){.cdw0 = ADM_CREATE_CQ,
                          .prp1 = hpa_raw(c->io.cq_pa),
                          .cdw10 = (uint32_t)(size - 1) << 16 | 1,
                          .cdw11 = 1 /* PC, no IEN */};
        sq = (struct sqe){.cdw0 = ADM_CREATE_SQ,
                          .prp1 = hpa_raw(c->io.sq_pa),
                          .cdw10 = (uint32_t)(size - 1) << 16 | 1,
                          .cdw11 = 1u << 16 | 1};
        err = run(c, &c->admin, &cq, NULL);
        if (!err)
                err = run(c, &c->admin, &sq, NULL);
        return err;
}

/* Reset, admin queue, enable (3.5.1). */
static int enable(struct nvme_ctrl *c)
{
        int err;

        if (!(c->cap & CAP_CSS_NVM) || CAP_MPSMIN(c->cap) != 0) {
                LOG_WARN("keel: nvme %s: no NVM command set or no 4 KiB pages (CAP %#llx): not "
                         "used",
                         c->name, (unsigned long long)c->cap);
                return -KEEL_ENODEV;
        }
        if (rd32(c, REG_CC) & CC_EN)
                wr32(c, REG_CC, rd32(c, REG_CC) & ~CC_EN);
        if (!wait_ready(c, false)) {
                LOG_WARN("keel: nvme %s: did not reset within %llu ms (CSTS %#x)", c->name,
                         (unsigned long long)c->timeout_ms, rd32(c, REG_CSTS));
                return -KEEL_EIO;
        }
        err = queue_alloc(&c->admin, 0, ADMIN_ENTRIES);
        if (err)
                return err;
        wr32(c, REG_AQA, (ADMIN_ENTRIES - 1) << 16 | (ADMIN_ENTRIES - 1));
        wr64(c, REG_ASQ, hpa_raw(c->admin.sq_pa));
        wr64(c, REG_ACQ, hpa_raw(c->admin.cq_pa));
        arch_dma_barrier();
        wr32(c, REG_CC, CC_IOCQES_16 | CC_IOSQES_64 | CC_EN); /* NVM, 4 KiB pages, RR */
        if (!wait_ready(c, true)) {
                LOG_WARN("keel: nvme %s: not ready within %llu ms of enabling (CSTS %#x)", c->name,
                         (unsigned long long)c->timeout_ms, rd32(c, REG_CSTS));
                return -KEEL_EIO;
        }
        return 0;
}

/* PRP1/PRP2 for a buffer (4.3): a second page, or the PRP list in c->page. */
static int prps(struct nvme_ctrl *c, hpa_t buf, uint64_t len, struct sqe *cmd)
{
        uint64_t b = hpa_raw(buf), first = PAGE_SIZE - (b & (PAGE_SIZE - 1));
        uint64_t *list = (uint64_t *)c->page;
        unsigned n = 0;

        if ((b & 3) || !len)
                return -KEEL_EINVAL;
        cmd->prp1 = b;
        if (len <= first)
                return 0;
        if (len <= first + PAGE_SIZE) {
                cmd->prp2 = b + first;
                return 0;
        }
        for (uint64_t p = b + first; p < b + len; p += PAGE_SIZE) {
                if (n == PRP_PER_PAGE)
                        return -KEEL_EINVAL;
                list[n++] = p;
        }
        cmd->prp2 = hpa_raw(c->page_pa);
        return 0;
}

static int rw(struct nvme_ctrl *c, unsigned ns, uint8_t op, uint64_t lba, uint32_t count, hpa_t buf)
{
        struct sqe cmd = {.cdw0 = op};
        const struct nvme_ns *n;
        uint64_t len;
        int err;

        if (ns >= c->ns_count || !count)
                return -KEEL_EINVAL;
        n = &c->ns[ns];
        len = (uint64_t)count * n->block_size;
        if (lba >= n->blocks || count > n->blocks - lba || len > c->max_transfer || count > 0x10000)
                return -KEEL_EINVAL;
        err = prps(c, buf, len, &cmd);
        if (err)
                return err;
        cmd.nsid = n->nsid;
        cmd.cdw10 = (uint32_t)lba;
        cmd.cdw11 = (uint32_t)(lba >> 32);
        cmd.cdw12 = count - 1;
        return run(c, &c->io, &cmd, NULL);
}

static int rw_locked(struct nvme_ctrl *c, unsigned ns, uint8_t op, uint64_t lba, uint32_t count,
                     hpa_t buf)
{
        struct spin_held h = spin_lock(&c->lock);
        int err = rw(c, ns, op, lba, count, buf);

        spin_unlock(h);
        return err;
}

int nvme_read(struct nvme_ctrl *c, unsigned ns, uint64_t lba, uint32_t count, hpa_t buf)
{
        return rw_locked(c, ns, NVM_READ, lba, count, buf);
}

int nvme_write(struct nvme_ctrl *c, unsigned ns, uint64_t lba, uint32_t count, hpa_t buf)
{
        return rw_locked(c, ns, NVM_WRITE, lba, count, buf);
}

int nvme_flush(struct nvme_ctrl *c, unsigned ns)
{
        struct sqe cmd = {.cdw0 = NVM_FLUSH};
        struct spin_held h;
        int err;

        if (ns >= c->ns_count)
                return -KEEL_EINVAL;
        if (!c->vwc)
                return c->failed ? -KEEL_EIO : 0;
        cmd.nsid = c->ns[ns].nsid;
        h = spin_lock(&c->lock);
        err = run(c, &c->io, &cmd, NULL);
        spin_unlock(h);
        return err;
}

/*
 * The namespace as a Keel block device (drivers/include/drivers/blkdev.h). Still polled:
 * submit() runs the commands one after another and completes the request before it returns.
 */
static int blk_submit(struct blkdev *d, struct blk_req *r)
{
        struct nvme_ns *n = d->priv;
        struct nvme_ctrl *c = n->ctrl;
        unsigned ns = (unsigned)(n - c->ns);
        uint64_t lba = r->lba, total = 0;
        int err = 0;

        if (c->failed)
                return -KEEL_EIO;
        if (r->op == BLK_FLUSH) {
                r->done(r, nvme_flush(c, ns) ? -KEEL_EIO : 0);
                return 0;
        }
        if ((r->op != BLK_READ && r->op != BLK_WRITE) || !r->nseg || r->nseg > d->max_segs ||
            !r->blocks || r->lba >= n->blocks || r->blocks > n->blocks - r->lba)
                return -KEEL_EINVAL;
        for (unsigned i = 0; i < r->nseg; i++) {
                if (!r->seg[i].len || r->seg[i].len % n->block_size ||
                    r->seg[i].len > c->max_transfer || (hpa_raw(r->seg[i].pa) & (d->seg_align - 1)))
                        return -KEEL_EINVAL;
                total += r->seg[i].len;
        }
        if (total != (uint64_t)r->blocks * n->block_size)
                return -KEEL_EINVAL;
        for (unsigned i = 0; i < r->nseg && !err; i++) {
                uint32_t count = r->seg[i].len / n->block_size;

                err = r->op == BLK_READ ? nvme_read(c, ns, lba, count, r->seg[i].pa)
                                        : nvme_write(c, ns, lba, count, r->seg[i].pa);
                lba += count;
        }
        if (!err && r->op == BLK_WRITE && r->fua)
                err = nvme_flush(c, ns);
        r->done(r, err ? -KEEL_EIO : 0);
        return 0;
}

static const struct blkdev_ops blk_ops = {.submit = blk_submit, .poll = NULL};

static void register_blkdevs(struct nvme_ctrl *c)
{
        for (unsigned i = 0; i < c->ns_count; i++) {
                struct nvme_ns *n = &c->ns[i];
                int err;

                n->ctrl = c;
                snprintf(n->blk.name, sizeof(n->blk.name), "nvme%un%u", c->index, n->nsid);
                n->blk.blocks = n->blocks;
                n->blk.block_size = n->block_size;
                n->blk.max_transfer = c->max_transfer;
                n->blk.seg_align = 4; /* PRP entries are dword aligned (4.3) */
                n->blk.max_segs = 64;
                n->blk.volatile_cache = c->vwc;
                n->blk.read_only = false;
                n->blk.ops = &blk_ops;
                n->blk.priv = n;
                err = blkdev_register(&n->blk);
                if (err)
                        LOG_WARN("keel: nvme %s: namespace %u not offered as a disk: %s", c->name,
                                 n->nsid, keel_strerror(err));
        }
}

/*
 * A boot self-test that writes only where the disk's owner allowed it: a namespace whose
 * block 0 begins with NVME_SCRATCH_MAGIC. Writes a pattern over blocks 1-16, flushes, reads
 * them back into another buffer and compares. Any other namespace is only read (block 0).
 */
#define NVME_SCRATCH_MAGIC "KEEL-NVME-SCRATCH"
#define SELFTEST_BLOCKS    16

static void selftest(struct nvme_ctrl *c)
{
        const struct nvme_ns *ns = &c->ns[0];
        uint64_t bytes = (uint64_t)SELFTEST_BLOCKS * ns->block_size;
        uint64_t pages = 2 * align_up(bytes, PAGE_SIZE) / PAGE_SIZE;
        uint32_t sum = 2166136261u;
        uint8_t *wbuf, *rbuf;
        hpa_t pa;
        int err;

        if (palloc_alloc(&keel_palloc, pages, PAGE_SIZE, &pa))
                return;
        wbuf = hva_ptr(arch_hpa_to_hva(pa));
        rbuf = wbuf + pages / 2 * PAGE_SIZE;
        err = nvme_read(c, 0, 0, 1, hpa_add(pa, pages / 2 * PAGE_SIZE));
        if (err) {
                LOG_WARN("keel: nvme %s: reading block 0 of namespace %u failed", c->name,
                         ns->nsid);
                goto out;
        }
        for (unsigned i = 0; i < ns->block_size; i++)
                sum = (sum ^ rbuf[i]) * 16777619u;
        if (memcmp(rbuf, NVME_SCRATCH_MAGIC, sizeof(NVME_SCRATCH_MAGIC) - 1) != 0) {
                LOG_INFO("keel: nvme %s: namespace %u block 0 read (FNV-1a %#x); not a "
                         "scratch disk: nothing written",
                         c->name, ns->nsid, sum);
                goto out;
        }
        if (ns->blocks < 1 + SELFTEST_BLOCKS)
                goto out;
        for (uint64_t i = 0; i < bytes; i++)
                wbuf[i] = (uint8_t)(i * 7 + (i >> 9) + 0x5a);
        memset(rbuf, 0, bytes);
        err = nvme_write(c, 0, 1, SELFTEST_BLOCKS, pa);
        if (!err)
                err = nvme_flush(c, 0);
        if (!err)
                err = nvme_read(c, 0, 1, SELFTEST_BLOCKS, hpa_add(pa, pages / 2 * PAGE_SIZE));
        if (err)
                LOG_WARN("keel: nvme %s: scratch self-test: I/O failed", c->name);
        else if (memcmp(wbuf, rbuf, bytes) != 0)
                LOG_WARN("keel: nvme %s: scratch self-test: blocks 1-%u read back differ", c->name,
                         SELFTEST_BLOCKS);
        else
                LOG_INFO("keel: nvme %s: scratch namespace %u: wrote, flushed and read back "
                         "blocks 1-%u: ok",
                         c->name, ns->nsid, SELFTEST_BLOCKS);
out:
        (void)palloc_free(&keel_palloc, pa, pages);
}

static int probe(struct pci_dev *d)
{
        struct nvme_ctrl *c;
        const struct pci_bar *bar = &d->bar[0];
        int err;

        if (nctrls == NVME_MAX_CTRLS)
                return -KEEL_ENOSPC;
        if ((bar->kind != PCI_BAR_MEM32 && bar->kind != PCI_BAR_MEM64) || !bar->base ||
            bar->size < 0x2000)
                return -KEEL_ENODEV; /* registers and at least the admin doorbells */
        c = &ctrls[nctrls];
        memset(c, 0, sizeof(*c));
        spin_init(&c->lock);
        c->index = nctrls;
        c->pci = d;
        pci_name(d, c->name, sizeof(c->name));
        err = arch_map_device(hpa(bar->base), bar->size);
        if (err) {
                LOG_WARN("keel: nvme %s: cannot map BAR0 %#llx+%#llx: %s", c->name,
                         (unsigned long long)bar->base, (unsigned long long)bar->size,
                         keel_strerror(err));
                return err;
        }
        c->regs = hva_ptr(arch_hpa_to_hva(hpa(bar->base)));
        c->cap = rd64(c, REG_CAP);
        c->timeout_ms = CAP_TO(c->cap) ? 500ull * CAP_TO(c->cap) : 500;
        /* Doorbells of queues 0 and 1 inside BAR0. */
        if (REG_DB + 4 * (4u << CAP_DSTRD(c->cap)) > bar->size) {
                LOG_WARN("keel: nvme %s: doorbell stride %u does not fit BAR0: not used", c->name,
                         4u << CAP_DSTRD(c->cap));
                return -KEEL_ENODEV;
        }
        err = palloc_alloc(&keel_palloc, 1, PAGE_SIZE, &c->page_pa);
        if (err)
                return err;
        c->page = hva_ptr(arch_hpa_to_hva(c->page_pa));
        err = enable(c);
        if (!err)
                err = identify_all(c);
        if (!err)
                err = create_io_queues(c);
        if (err) {
                wr32(c, REG_CC, rd32(c, REG_CC) & ~CC_EN); /* stop its DMA before the pages go */
                (void)wait_ready(c, false);
                /* Its queue pages stay allocated: a controller that did not reset may still
                 * write them. */
                LOG_WARN("keel: nvme %s: not used (%s)", c->name, keel_strerror(err));
                return err;
        }
        nctrls++;
        LOG_INFO("keel: nvme %s: %s, serial %s, firmware %s, NVMe %u.%u, %u namespace%s, %s, "
                 "%u KiB per command, polled",
                 c->name, c->model, c->serial, c->firmware, rd32(c, REG_VS) >> 16,
                 (rd32(c, REG_VS) >> 8) & 0xff, c->ns_count, c->ns_count == 1 ? "" : "s",
                 c->vwc ? "volatile write cache" : "no volatile write cache",
                 c->max_transfer >> 10);
        for (unsigned i = 0; i < c->ns_count; i++)
                LOG_INFO("keel: nvme %s: namespace %u: %llu blocks of %u bytes (%llu MiB)", c->name,
                         c->ns[i].nsid, (unsigned long long)c->ns[i].blocks, c->ns[i].block_size,
                         (unsigned long long)(c->ns[i].blocks * c->ns[i].block_size >> 20));
        register_blkdevs(c);
        if (c->ns_count)
                selftest(c);
        return 0;
}

static const struct pci_driver nvme_driver = {
    .name = "nvme",
    .vendor = PCI_ANY_ID,
    .device = PCI_ANY_ID,
    .class = 0x010802,
    .class_mask = 0xffffff,
    .probe = probe,
};

void nvme_register(struct pci_host *h)
{
        if (pci_register_driver(h, &nvme_driver))
                LOG_WARN("keel: nvme: the PCI driver table is full: NVMe not driven");
}
