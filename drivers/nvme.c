/*
 * Keel's NVMe driver (drivers/include/drivers/nvme.h, docs/nvme.md), after the NVM Express
 * Base Specification 2.0: registers (3.1), controller initialisation (3.5.1), queues and
 * their entries (4.1-4.6), Identify (5.17), Create I/O queues (5.4, 5.5), and the NVM
 * command set's Read, Write and Flush; Set Features Number of Queues (5.27.1.5). I/O is
 * asynchronous: each I/O queue keeps a table of its outstanding commands, indexed by command
 * id, with a PRP list and a deadline each; completions are reaped by the queue's MSI-X
 * interrupt handler or by polling (keel/irq.h).
 */
#include <stdio.h>
#include <string.h>

#include <drivers/nvme.h>
#include <keel/arch.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/irq.h>
#include <keel/log.h>
#include <keel/palloc.h>
#include <keel/smp.h>
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
#define ADM_SET_FEAT  0x09
#define FEAT_NQUEUES  0x07
#define NVM_FLUSH     0x00
#define NVM_WRITE     0x01
#define NVM_READ      0x02

#define ADMIN_ENTRIES 32
#define PRP_PER_PAGE  (PAGE_SIZE / 8)

struct sqe {
        uint32_t cdw0, nsid, rsvd[2];
        uint64_t mptr, prp1, prp2;
        uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};

static struct nvme_ctrl ctrls[NVME_MAX_CTRLS];
static unsigned nctrls;
static struct pci_host *nvme_host; /* the host the driver was registered with */
static bool polling;               /* poll_all registered with keel/irq.h */

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

/*
 * Mark `c` failed (once, whichever CPU sees it first) and stop its DMA: CC.EN = 0 and bus
 * mastering off, before any outstanding request is handed back to its owner.
 */
static void fail(struct nvme_ctrl *c, const char *why)
{
        const char *none = NULL;

        if (!__atomic_compare_exchange_n(&c->failed, &none, why, false, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE))
                return;
        LOG_WARN("nvme %s: failed: %s (CSTS %#x); no more I/O to it", c->name, why,
                 rd32(c, REG_CSTS));
        wr32(c, REG_CC, rd32(c, REG_CC) & ~CC_EN);
        if (c->host)
                pci_write16(c->host, c->pci, PCI_COMMAND,
                            (uint16_t)(pci_read16(c->host, c->pci, PCI_COMMAND) & ~PCI_CMD_MASTER));
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
                                LOG_WARN("nvme %s: command %#x on queue %u failed: status "
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
                        LOG_WARN("nvme %s: %s after %llu ms", c->name, why,
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
                        LOG_WARN("nvme %s: namespace %u: block size 2^%u (format %u) not "
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

/* Slots and a PRP list per slot for I/O queue `q` (it holds at most size - 1 commands). */
static int io_tables_alloc(struct nvme_ctrl *c, struct nvme_queue *q)
{
        unsigned slots = q->size - 1u, per = c->max_transfer / PAGE_SIZE * 8u;
        uint64_t pages;
        hpa_t pa;
        int err;

        q->prp_stride = 64;
        while (q->prp_stride < per)
                q->prp_stride *= 2; /* a power of two: no list crosses a page */
        pages = align_up((uint64_t)slots * q->prp_stride, PAGE_SIZE) / PAGE_SIZE;
        err = palloc_alloc(&keel_palloc, pages, PAGE_SIZE, &q->prp_pa);
        if (err)
                return err;
        q->prp = hva_ptr(arch_hpa_to_hva(q->prp_pa));
        err = palloc_alloc(&keel_palloc,
                           align_up(slots * sizeof(struct nvme_slot), PAGE_SIZE) / PAGE_SIZE,
                           PAGE_SIZE, &pa);
        if (err)
                return err;
        q->slot = hva_ptr(arch_hpa_to_hva(pa));
        return 0;
}

static void irq_handler(void *arg);

/*
 * How completions reach Keel: MSI-X, one vector per I/O queue aimed at the queue's CPU, if
 * the function has the capability with an entry per queue and the arch takes device
 * interrupts; otherwise polling, with the reason in c->mode.
 */
static void choose_mode(struct nvme_ctrl *c)
{
        const struct pci_dev *d = c->pci;
        const struct pci_bar *bar = &d->bar[d->msix_table_bir];
        uint64_t addr;
        uint32_t data;
        uint8_t first = 0;

        c->msix = NULL;
        if (!d->cap_msix || d->msix_size < 2) {
                snprintf(c->mode, sizeof(c->mode), "polled (no MSI-X)");
                return;
        }
        if (d->msix_size < c->nio + 1)
                c->nio = d->msix_size - 1u;
        if (d->msix_table_bir != 0 && arch_map_device(hpa(bar->base), bar->size)) {
                snprintf(c->mode, sizeof(c->mode), "polled (MSI-X table not mapped)");
                return;
        }
        for (unsigned i = 0; i < c->nio; i++) {
                struct nvme_queue *q = &c->io[i];
                int err = irq_alloc(q->cpu, irq_handler, q, &q->vector);

                if (err) {
                        for (unsigned j = 0; j < c->nio; j++)
                                c->io[j].vector = 0; /* (a vector taken stays unused) */
                        snprintf(c->mode, sizeof(c->mode), "polled (%s)",
                                 err == -KEEL_ENOTSUP ? "no device interrupts on this arch"
                                                      : "no free vector");
                        return;
                }
                if (!i)
                        first = q->vector;
        }
        if (arch_msi_message(0, first, &addr, &data)) {
                for (unsigned j = 0; j < c->nio; j++)
                        c->io[j].vector = 0;
                snprintf(c->mode, sizeof(c->mode), "polled (no MSI address for CPU 0)");
                return;
        }
        c->msix =
            (volatile uint32_t *)hva_ptr(arch_hpa_to_hva(hpa(bar->base))) + d->msix_table_off / 4;
        for (unsigned i = 0; i <= c->nio; i++)
                c->msix[4 * i + 3] = 1; /* masked until its queue's CPU is known */
        if (c->host)
                pci_msix_enable(c->host, c->pci, true);
        if (c->nio == 1)
                snprintf(c->mode, sizeof(c->mode), "MSI-X vector %#x", first);
        else
                snprintf(c->mode, sizeof(c->mode), "MSI-X vectors %#x-%#x", first,
                         first + c->nio - 1);
}

/* Create I/O queue pair `q` in the controller: its CQ (MSI-X entry qid), then its SQ. */
static int create_pair(struct nvme_ctrl *c, struct nvme_queue *q)
{
        struct sqe cq = {.cdw0 = ADM_CREATE_CQ,
                         .prp1 = hpa_raw(q->cq_pa),
                         .cdw10 = (uint32_t)(q->size - 1) << 16 | q->qid,
                         /* IV = entry qid, IEN, PC; polled: IV 0 (QEMU refuses another while
                          * MSI-X is off) */
                         .cdw11 = q->vector ? (uint32_t)q->qid << 16 | 3u : 1u};
        struct sqe sq = {.cdw0 = ADM_CREATE_SQ,
                         .prp1 = hpa_raw(q->sq_pa),
                         .cdw10 = (uint32_t)(q->size - 1) << 16 | q->qid,
                         .cdw11 = (uint32_t)q->qid << 16 | 1};
        int err = run(c, &c->admin, &cq, NULL);

        return err ? err : run(c, &c->admin, &sq, NULL);
}

/* Number of Queues (5.27.1.5), then each pair: CQ (its MSI-X entry = qid), SQ. */
static int create_io_queues(struct nvme_ctrl *c)
{
        uint16_t size =
            NVME_IO_DEPTH < CAP_MQES(c->cap) ? NVME_IO_DEPTH : (uint16_t)CAP_MQES(c->cap);
        struct sqe feat = {.cdw0 = ADM_SET_FEAT,
                           .cdw10 = FEAT_NQUEUES,
                           .cdw11 = (NVME_MAX_IOQ - 1u) << 16 | (NVME_MAX_IOQ - 1u)};
        uint32_t dw0 = 0;
        int err;

        c->nio = 1;
        if (run(c, &c->admin, &feat, &dw0) == 0) {
                unsigned granted = (dw0 & 0xffff) < (dw0 >> 16) ? (dw0 & 0xffff) : (dw0 >> 16);

                c->nio = granted + 1 < NVME_MAX_IOQ ? granted + 1 : NVME_MAX_IOQ;
        } else if (c->failed) {
                return -KEEL_EIO;
        }
        /* Doorbells of every queue inside BAR0. */
        while (c->nio > 1 &&
               REG_DB + 2 * (c->nio + 1) * (4u << CAP_DSTRD(c->cap)) > c->pci->bar[0].size)
                c->nio--;
        for (unsigned i = 0; i < c->nio; i++) {
                c->io[i].cpu = i;
                c->io[i].vector = 0;
        }
        choose_mode(c);
        for (unsigned i = 0; i < c->nio; i++) {
                struct nvme_queue *q = &c->io[i];
                uint16_t qid = (uint16_t)(i + 1);
                uint8_t vector = q->vector;

                err = queue_alloc(q, qid, size);
                if (!err)
                        err = io_tables_alloc(c, q);
                if (err)
                        return err;
                q->ctrl = c;
                q->cpu = i;
                q->vector = vector;
                spin_init(&q->lock);
                err = create_pair(c, q);
                if (err)
                        return err;
                if (vector && q->cpu == 0 && pci_msix_program(c->pci, c->msix, qid, 0, vector) == 0)
                        q->msix_on = true;
        }
        return 0;
}

/* Reset, admin queue, enable (3.5.1). */
static int enable(struct nvme_ctrl *c)
{
        int err;

        if (!(c->cap & CAP_CSS_NVM) || CAP_MPSMIN(c->cap) != 0) {
                LOG_WARN("nvme %s: no NVM command set or no 4 KiB pages (CAP %#llx): not "
                         "used",
                         c->name, (unsigned long long)c->cap);
                return -KEEL_ENODEV;
        }
        if (rd32(c, REG_CC) & CC_EN)
                wr32(c, REG_CC, rd32(c, REG_CC) & ~CC_EN);
        if (!wait_ready(c, false)) {
                LOG_WARN("nvme %s: did not reset within %llu ms (CSTS %#x)", c->name,
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
                LOG_WARN("nvme %s: not ready within %llu ms of enabling (CSTS %#x)", c->name,
                         (unsigned long long)c->timeout_ms, rd32(c, REG_CSTS));
                return -KEEL_EIO;
        }
        return 0;
}

/* ---- I/O: asynchronous, a table of outstanding commands per queue ------------------------ */

/* blk_req.drv_tag while the driver holds it: commands outstanding, and two flags. */
#define TAG_COUNT 0xffffu
#define TAG_ERROR (1u << 16) /* a command of it failed: done(-KEEL_EIO) */
#define TAG_FLUSH (1u << 17) /* FUA on a volatile cache: a Flush once its writes are done */

static struct nvme_queue *queue_of_cpu(struct nvme_ctrl *c)
{
        return &c->io[arch_cpu_index() % c->nio];
}

/* PRP1/PRP2 for a segment (4.3): a second page, or the slot's PRP list. */
static void prps(const struct nvme_queue *q, uint16_t cid, hpa_t buf, uint64_t len, struct sqe *cmd)
{
        uint64_t b = hpa_raw(buf), first = PAGE_SIZE - (b & (PAGE_SIZE - 1));
        uint64_t *list = (uint64_t *)(q->prp + (size_t)cid * q->prp_stride);
        unsigned n = 0;

        cmd->prp1 = b;
        if (len <= first)
                return;
        if (len <= first + PAGE_SIZE) {
                cmd->prp2 = b + first;
                return;
        }
        for (uint64_t p = b + first; p < b + len; p += PAGE_SIZE) {
                CHECK(n < q->prp_stride / 8); /* segments are at most max_transfer long */
                list[n++] = p;
        }
        cmd->prp2 = hpa_raw(q->prp_pa) + (uint64_t)cid * q->prp_stride;
}

static uint16_t free_slot(const struct nvme_queue *q)
{
        for (uint16_t i = 0; i < q->size - 1; i++)
                if (!q->slot[i].req)
                        return i;
        CHECK(false); /* callers count q->inflight first */
        return 0;
}

/* One command into the queue's SQ for `r` (the doorbell is the caller's). */
static void place(struct nvme_ctrl *c, struct nvme_queue *q, struct spin_held h, struct blk_req *r,
                  struct sqe *cmd, const struct blk_seg *seg)
{
        uint16_t cid = free_slot(q);

        (void)h;
        cmd->cdw0 = (cmd->cdw0 & 0xff) | (uint32_t)cid << 16;
        if (seg)
                prps(q, cid, seg->pa, seg->len, cmd);
        memcpy((void *)(q->sq + 64u * q->sq_tail), cmd, sizeof(*cmd));
        q->sq_tail = (uint16_t)((q->sq_tail + 1) % q->size);
        q->slot[cid] = (struct nvme_slot){
            .req = r, .deadline = deadline_after(c->timeout_ms), .opcode = (uint8_t)cmd->cdw0};
        q->inflight++;
}

static void ring(struct nvme_ctrl *c, struct nvme_queue *q)
{
        arch_dma_barrier(); /* the entries before the doorbell */
        *doorbell(c, q->qid, false) = q->sq_tail;
}

/* Point the queue's MSI-X entry at its CPU, once that CPU's interrupt address is known (the
 * other CPUs start after the driver probed). */
static void msix_arm(struct nvme_ctrl *c, struct nvme_queue *q, struct spin_held h)
{
        (void)h;
        if (!q->vector || q->msix_on)
                return;
        if (pci_msix_program(c->pci, c->msix, q->qid, q->cpu, q->vector) == 0)
                q->msix_on = true;
}

/* Hand the request back: chained on `*list`, done() after the lock is dropped. */
static void finish(struct blk_req *r, struct blk_req **list)
{
        r->drv_next = *list;
        *list = r;
}

static void call_done(struct blk_req *list)
{
        while (list) {
                struct blk_req *r = list, *next = r->drv_next;

                r->drv_next = NULL;
                r->done(r, (r->drv_tag & TAG_ERROR) ? -KEEL_EIO : 0);
                list = next;
        }
}

/* One command of `r` ended (failed: `err`). Its last: a FUA write's Flush, or done. */
static void command_ended(struct nvme_ctrl *c, struct nvme_queue *q, struct spin_held h,
                          struct blk_req *r, bool err, struct blk_req **list, bool *rang)
{
        if (err)
                r->drv_tag |= TAG_ERROR;
        if (--r->drv_tag & TAG_COUNT)
                return;
        if ((r->drv_tag & (TAG_FLUSH | TAG_ERROR)) == TAG_FLUSH && !c->failed) {
                const struct nvme_ns *n = ((struct blkdev *)r->drv_next)->priv;
                struct sqe cmd = {.cdw0 = NVM_FLUSH, .nsid = n->nsid};

                /* NVMe does not order commands: the Flush goes only after the writes ended. */
                r->drv_tag = 1;
                r->drv_next = NULL;
                place(c, q, h, r, &cmd, NULL);
                *rang = true;
                return;
        }
        finish(r, list);
}

/* Fail every outstanding command of `q` (the controller failed). */
static void drain(struct nvme_ctrl *c, struct nvme_queue *q, struct spin_held h,
                  struct blk_req **list)
{
        bool rang = false;

        for (uint16_t i = 0; q->inflight && i < q->size - 1; i++) {
                struct blk_req *r = q->slot[i].req;

                if (!r)
                        continue;
                q->slot[i].req = NULL;
                q->inflight--;
                command_ended(c, q, h, r, true, list, &rang);
        }
}

/* Completion entries (4.6), a timeout or CSTS.CFS; the caller holds q's lock. */
static void reap(struct nvme_ctrl *c, struct nvme_queue *q, struct spin_held h, bool in_irq,
                 struct blk_req **list)
{
        bool rang = false, any = false;
        uint64_t now;

        while (!c->failed) {
                volatile uint32_t *e = q->cq + 4u * q->cq_head;
                uint32_t dw3 = e[3], status;
                uint16_t cid, sqhd;
                struct blk_req *r;

                if (((dw3 >> 16) & 1) != q->phase)
                        break;
                arch_dma_barrier(); /* the entry's other words after its phase */
                status = (dw3 >> 17) & 0x7fff;
                cid = (uint16_t)(dw3 & 0xffff);
                sqhd = (uint16_t)(e[2] & 0xffff);
                if (++q->cq_head == q->size) {
                        q->cq_head = 0;
                        q->phase ^= 1;
                }
                any = true;
                if (cid >= q->size - 1 || !q->slot[cid].req || sqhd >= q->size) {
                        fail(c, "a completion for a command Keel did not submit");
                        break;
                }
                q->sq_head = sqhd;
                r = q->slot[cid].req;
                q->slot[cid].req = NULL;
                q->inflight--;
                if (in_irq)
                        q->by_irq++;
                else
                        q->by_poll++;
                if (status)
                        LOG_WARN("nvme %s: command %#x on queue %u failed: status type %u "
                                 "code %#x",
                                 c->name, q->slot[cid].opcode, q->qid, (status >> 8) & 7,
                                 status & 0xff);
                command_ended(c, q, h, r, status != 0, list, &rang);
        }
        if (any && !c->failed)
                *doorbell(c, q->qid, true) = q->cq_head;
        if (rang)
                ring(c, q);
        if (!c->failed && q->inflight) {
                uint32_t csts = rd32(c, REG_CSTS);

                if (csts == 0xffffffffu)
                        fail(c, "the controller is gone (registers read all ones)");
                else if (csts & CSTS_CFS)
                        fail(c, "controller fatal status");
        }
        now = arch_tsc();
        for (uint16_t i = 0; !c->failed && q->inflight && i < q->size - 1; i++)
                if (q->slot[i].req && now > q->slot[i].deadline) {
                        LOG_WARN("nvme %s: command %#x (id %u) on queue %u timed out after "
                                 "%llu ms",
                                 c->name, q->slot[i].opcode, i, q->qid,
                                 (unsigned long long)c->timeout_ms);
                        fail(c, "a command timed out");
                }
        if (c->failed)
                drain(c, q, h, list);
}

static void poll_queue(struct nvme_ctrl *c, struct nvme_queue *q, bool in_irq)
{
        struct blk_req *list = NULL;
        struct spin_held h;

        if (!spin_trylock(&q->lock)) {
                /* Its holder reaps once more before it lets go. */
                __atomic_store_n(&q->irq_missed, true, __ATOMIC_RELEASE);
                return;
        }
        h = (struct spin_held){&q->lock};
        do {
                __atomic_store_n(&q->irq_missed, false, __ATOMIC_RELAXED);
                if (q->inflight)
                        reap(c, q, h, in_irq, &list);
        } while (__atomic_load_n(&q->irq_missed, __ATOMIC_ACQUIRE));
        spin_unlock(h);
        call_done(list);
}

void nvme_poll(struct nvme_ctrl *c)
{
        for (unsigned i = 0; i < c->nio; i++)
                poll_queue(c, &c->io[i],
                           __atomic_exchange_n(&c->io[i].irq_pending, false, __ATOMIC_ACQUIRE));
}

/*
 * The queue's MSI-X vector. A completion's done() takes its user's locks (a VM's device
 * lock), which an interrupt handler must not wait for (keel/irq.h): the handler only asks
 * for the pollers, which reap the queue on this CPU as soon as it leaves the interrupt
 * window (its completions counted as by interrupt).
 */
static void irq_handler(void *arg)
{
        struct nvme_queue *q = arg;

        __atomic_fetch_add(&q->interrupts, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&q->irq_pending, true, __ATOMIC_RELEASE);
        irq_poll_soon();
}

/* ---- Recovery: a failed controller reset and back in service --------------------------- */

enum { RESET_IDLE, RESET_WAIT_OFF, RESET_WAIT_ON, RESET_GAVE_UP };

/* A queue's pages and state as at creation (its commands were all drained). */
static void queue_clear(struct nvme_queue *q)
{
        memset((void *)q->sq, 0, PAGE_SIZE);
        memset((void *)q->cq, 0, PAGE_SIZE);
        q->sq_tail = q->sq_head = q->cq_head = q->cid = 0;
        q->phase = 1;
        q->inflight = 0;
        q->irq_missed = false;
}

static void give_up(struct nvme_ctrl *c, const char *why)
{
        c->reset_state = RESET_GAVE_UP;
        LOG_WARN("nvme %s: reset %u of %u failed: %s (CSTS %#x); it stays failed", c->name,
                 c->resets, NVME_MAX_RESETS, why, rd32(c, REG_CSTS));
        wr32(c, REG_CC, rd32(c, REG_CC) & ~CC_EN);
        if (c->host)
                pci_write16(c->host, c->pci, PCI_COMMAND,
                            (uint16_t)(pci_read16(c->host, c->pci, PCI_COMMAND) & ~PCI_CMD_MASTER));
}

/*
 * One step of bringing a failed, drained controller back (3.5.1 again), the caller holding
 * every queue's lock: wait for CSTS.RDY = 0 (CC.EN = 0 was written when it failed), then the
 * admin queue and CC.EN = 1, then, once ready, its I/O queues again in their own pages. The
 * two waits are polled from later rounds, never spun, each bounded by CAP.TO.
 */
static void recover_step(struct nvme_ctrl *c)
{
        uint32_t csts = rd32(c, REG_CSTS);

        switch (c->reset_state) {
        case RESET_IDLE:
                if (c->resets == NVME_MAX_RESETS) {
                        c->reset_state = RESET_GAVE_UP;
                        LOG_WARN("nvme %s: failed again after %u resets: it stays failed", c->name,
                                 NVME_MAX_RESETS);
                        return;
                }
                c->resets++;
                LOG_WARN("nvme %s: resetting it (%u of at most %u)", c->name, c->resets,
                         NVME_MAX_RESETS);
                wr32(c, REG_CC, rd32(c, REG_CC) & ~CC_EN);
                c->reset_deadline = deadline_after(c->timeout_ms);
                c->reset_state = RESET_WAIT_OFF;
                return;
        case RESET_WAIT_OFF:
                if (csts != 0xffffffffu && !(csts & CSTS_RDY)) {
                        queue_clear(&c->admin);
                        wr32(c, REG_AQA, (ADMIN_ENTRIES - 1) << 16 | (ADMIN_ENTRIES - 1));
                        wr64(c, REG_ASQ, hpa_raw(c->admin.sq_pa));
                        wr64(c, REG_ACQ, hpa_raw(c->admin.cq_pa));
                        if (c->host)
                                pci_write16(c->host, c->pci, PCI_COMMAND,
                                            (uint16_t)(pci_read16(c->host, c->pci, PCI_COMMAND) |
                                                       PCI_CMD_MASTER));
                        arch_dma_barrier();
                        wr32(c, REG_CC, CC_IOCQES_16 | CC_IOSQES_64 | CC_EN);
                        c->reset_deadline = deadline_after(c->timeout_ms);
                        c->reset_state = RESET_WAIT_ON;
                } else if (arch_tsc() > c->reset_deadline) {
                        give_up(c, "not disabled within CAP.TO");
                }
                return;
        case RESET_WAIT_ON: {
                struct sqe feat = {.cdw0 = ADM_SET_FEAT,
                                   .cdw10 = FEAT_NQUEUES,
                                   .cdw11 = (c->nio - 1u) << 16 | (c->nio - 1u)};
                const char *why = c->failed;
                bool ok;

                if (csts == 0xffffffffu || (csts & CSTS_CFS)) {
                        give_up(c, "fatal status after enabling");
                        return;
                }
                if (!(csts & CSTS_RDY)) {
                        if (arch_tsc() > c->reset_deadline)
                                give_up(c, "not ready within CAP.TO");
                        return;
                }
                /* run() refuses a failed controller: in service for the admin commands. */
                __atomic_store_n(&c->failed, NULL, __ATOMIC_RELEASE);
                ok = run(c, &c->admin, &feat, NULL) == 0;

                for (unsigned i = 0; ok && i < c->nio; i++) {
                        queue_clear(&c->io[i]);
                        ok = create_pair(c, &c->io[i]) == 0;
                }
                if (!ok) {
                        const char *none = NULL;

                        (void)__atomic_compare_exchange_n(&c->failed, &none, why, false,
                                                          __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
                        give_up(c, "its queues could not be created again");
                        return;
                }
                c->reset_state = RESET_IDLE;
                LOG_WARN("nvme %s: reset and back in service (it had failed: %s)", c->name, why);
                return;
        }
        default:
                return;
        }
}

/* A failed controller whose queues are all drained takes its next recovery step. */
static void recover(struct nvme_ctrl *c)
{
        struct spin_held held[NVME_MAX_IOQ];
        unsigned n = 0;
        bool drained = true;

        if (c->reset_state == RESET_GAVE_UP || !spin_trylock(&c->reset_lock))
                return;
        for (; n < c->nio && spin_trylock(&c->io[n].lock); n++) {
                held[n] = (struct spin_held){&c->io[n].lock};
                drained = drained && !c->io[n].inflight;
        }
        if (n == c->nio && drained && c->failed)
                recover_step(c);
        while (n--)
                spin_unlock(held[n]);
        spin_unlock((struct spin_held){&c->reset_lock});
}

/* Every controller, from each CPU's scheduling round (keel/irq.h): completions, timeouts,
 * and a failed controller's recovery. */
static void poll_all(void *arg)
{
        (void)arg;
        for (unsigned i = 0; i < nctrls; i++) {
                nvme_poll(&ctrls[i]);
                if (ctrls[i].failed)
                        recover(&ctrls[i]);
        }
}

/*
 * The namespace as a Keel block device (drivers/include/drivers/blkdev.h): one command per
 * segment (each at most max_transfer), all placed in the CPU's queue at once and the
 * doorbell rung; done() when the last has completed, with -KEEL_EIO if any failed. A FUA
 * write on a volatile cache is followed by a Flush once its writes completed.
 */
static int blk_submit(struct blkdev *d, struct blk_req *r)
{
        struct nvme_ns *n = d->priv;
        struct nvme_ctrl *c = n->ctrl;
        struct nvme_queue *q;
        struct blk_req *list = NULL;
        struct spin_held h;
        uint64_t lba = r->lba, total = 0;
        unsigned need;

        if (c->failed)
                return -KEEL_EIO;
        if (r->op == BLK_FLUSH) {
                need = c->vwc ? 1 : 0;
        } else {
                if ((r->op != BLK_READ && r->op != BLK_WRITE) || !r->nseg ||
                    r->nseg > d->max_segs || !r->blocks || r->lba >= n->blocks ||
                    r->blocks > n->blocks - r->lba)
                        return -KEEL_EINVAL;
                need = 0;
                for (unsigned i = 0; i < r->nseg; i++) {
                        if (!r->seg[i].len || r->seg[i].len % n->block_size ||
                            (hpa_raw(r->seg[i].pa) & (d->seg_align - 1)))
                                return -KEEL_EINVAL;
                        total += r->seg[i].len;
                        need += (r->seg[i].len + c->max_transfer - 1) / c->max_transfer;
                }
                /* Commands that could never be in flight together: never accepted. */
                if (total != (uint64_t)r->blocks * n->block_size || need > c->io[0].size - 1u)
                        return -KEEL_EINVAL;
        }
        if (!need) { /* a Flush without a volatile cache: nothing to do */
                r->drv_tag = 0;
                r->done(r, 0);
                return 0;
        }
        q = queue_of_cpu(c);
        h = spin_lock(&q->lock);
        if (c->failed || q->size - 1 - q->inflight < need) {
                spin_unlock(h);
                return c->failed ? -KEEL_EIO : -KEEL_EAGAIN;
        }
        msix_arm(c, q, h);
        r->drv_tag = need | (r->op == BLK_WRITE && r->fua && c->vwc ? TAG_FLUSH : 0);
        r->drv_next = (struct blk_req *)(void *)d; /* the namespace, for a FUA's Flush */
        if (r->op == BLK_FLUSH) {
                struct sqe cmd = {.cdw0 = NVM_FLUSH, .nsid = n->nsid};

                place(c, q, h, r, &cmd, NULL);
        }
        /* A command per segment, or per max_transfer of a longer one. */
        for (unsigned i = 0; r->op != BLK_FLUSH && i < r->nseg; i++)
                for (uint32_t off = 0; off < r->seg[i].len; off += c->max_transfer) {
                        struct blk_seg part = {hpa_add(r->seg[i].pa, off),
                                               r->seg[i].len - off < c->max_transfer
                                                   ? r->seg[i].len - off
                                                   : c->max_transfer};
                        uint32_t count = part.len / n->block_size;
                        struct sqe cmd = {.cdw0 = r->op == BLK_READ ? NVM_READ : NVM_WRITE,
                                          .nsid = n->nsid,
                                          .cdw10 = (uint32_t)lba,
                                          .cdw11 = (uint32_t)(lba >> 32),
                                          .cdw12 = count - 1};

                        place(c, q, h, r, &cmd, &part);
                        lba += count;
                }
        ring(c, q);
        /* An interrupt that came while this CPU held the lock (another CPU's handler). */
        if (__atomic_load_n(&q->irq_missed, __ATOMIC_ACQUIRE)) {
                __atomic_store_n(&q->irq_missed, false, __ATOMIC_RELAXED);
                reap(c, q, h, false, &list);
        }
        spin_unlock(h);
        call_done(list);
        return 0;
}

static void blk_poll(struct blkdev *d)
{
        nvme_poll(((struct nvme_ns *)d->priv)->ctrl);
}

static const struct blkdev_ops blk_ops = {.submit = blk_submit, .poll = blk_poll};

/* Submit `r` on namespace `ns` and wait for it, retrying while the queue is full. */
static int sync_req(struct nvme_ctrl *c, unsigned ns, struct blk_req *r)
{
        int err;

        if (ns >= c->ns_count)
                return -KEEL_EINVAL;
        while ((err = blkdev_sync(&c->ns[ns].blk, r)) == -KEEL_EAGAIN)
                nvme_poll(c);
        return err;
}

static int rw_sync(struct nvme_ctrl *c, unsigned ns, uint8_t op, uint64_t lba, uint32_t count,
                   hpa_t buf)
{
        struct blk_seg seg;
        struct blk_req r = {.op = op, .lba = lba, .blocks = count, .seg = &seg, .nseg = 1};

        if (ns >= c->ns_count || !count || count > c->max_transfer / c->ns[ns].block_size)
                return -KEEL_EINVAL;
        seg = (struct blk_seg){buf, count * c->ns[ns].block_size};
        return sync_req(c, ns, &r);
}

int nvme_read(struct nvme_ctrl *c, unsigned ns, uint64_t lba, uint32_t count, hpa_t buf)
{
        return rw_sync(c, ns, BLK_READ, lba, count, buf);
}

int nvme_write(struct nvme_ctrl *c, unsigned ns, uint64_t lba, uint32_t count, hpa_t buf)
{
        return rw_sync(c, ns, BLK_WRITE, lba, count, buf);
}

int nvme_flush(struct nvme_ctrl *c, unsigned ns)
{
        struct blk_req r = {.op = BLK_FLUSH};

        return sync_req(c, ns, &r);
}

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
                n->blk.seg_align = 4;                 /* PRP entries are dword aligned (4.3) */
                n->blk.max_segs = c->io[0].size - 1u; /* a command each, all at once */
                n->blk.volatile_cache = c->vwc;
                n->blk.read_only = false;
                n->blk.polled = !c->msix;
                n->blk.ops = &blk_ops;
                n->blk.priv = n;
                err = blkdev_register(&n->blk);
                if (err)
                        LOG_WARN("nvme %s: namespace %u not offered as a disk: %s", c->name,
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
#define INFLIGHT_REQS      32 /* the in-flight self-test's requests, a block each */

struct inflight {
        unsigned done, failed;
};

static void inflight_done(struct blk_req *r, int status)
{
        struct inflight *t = r->ctx;

        __atomic_fetch_add(status ? &t->failed : &t->done, 1, __ATOMIC_RELEASE);
}

/* Wait for `n` of t's requests, idling (interrupts taken) when the queue has a vector. */
static bool inflight_wait(struct nvme_ctrl *c, struct inflight *t, unsigned n)
{
        uint64_t end = deadline_after(2 * c->timeout_ms);

        while (__atomic_load_n(&t->done, __ATOMIC_ACQUIRE) +
                   __atomic_load_n(&t->failed, __ATOMIC_ACQUIRE) <
               n) {
                if (queue_of_cpu(c)->msix_on)
                        arch_cpu_idle(); /* the completion's interrupt or the tick wakes it */
                nvme_poll(c);
                if (arch_tsc() > end)
                        return false; /* cannot happen: the driver times out its commands */
        }
        return t->failed == 0;
}

/*
 * INFLIGHT_REQS single-block writes of distinct patterns to blocks 17.., all submitted before
 * any completes, a Flush, the same number of reads into other buffers at once, compared. The
 * completions' line says how many were reaped in the interrupt handler and how many polled.
 */
static void selftest_inflight(struct nvme_ctrl *c, struct blk_req *req, struct blk_seg *seg,
                              uint8_t *buf, hpa_t pa)
{
        struct nvme_ns *ns = &c->ns[0];
        struct nvme_queue *q = queue_of_cpu(c);
        uint32_t bs = ns->block_size;
        uint64_t by_irq = q->by_irq, by_poll = q->by_poll, irqs = q->interrupts;
        unsigned most = 0, submitted = 0;
        struct inflight t = {0, 0};
        struct blk_req fl = {.op = BLK_FLUSH};
        bool ok = false;

        for (unsigned i = 0; i < INFLIGHT_REQS * bs; i++)
                buf[i] = (uint8_t)(i / bs * 31 + i + 3);
        memset(buf + INFLIGHT_REQS * bs, 0, INFLIGHT_REQS * bs);
        for (unsigned pass = 0; pass < 2; pass++) {
                for (unsigned i = 0; i < INFLIGHT_REQS; i++) {
                        unsigned off = (pass * INFLIGHT_REQS + i) * bs;

                        seg[i] = (struct blk_seg){hpa_add(pa, off), bs};
                        req[i] = (struct blk_req){.op = pass ? BLK_READ : BLK_WRITE,
                                                  .lba = 1 + SELFTEST_BLOCKS + i,
                                                  .blocks = 1,
                                                  .seg = &seg[i],
                                                  .nseg = 1,
                                                  .done = inflight_done,
                                                  .ctx = &t};
                        if (ns->blk.ops->submit(&ns->blk, &req[i]))
                                break;
                        submitted++;
                        if (q->inflight > most)
                                most = q->inflight;
                }
                ok = inflight_wait(c, &t, submitted);
                if (ok && !pass)
                        ok = blkdev_sync(&ns->blk, &fl) == 0;
                if (!ok || submitted != (pass + 1) * INFLIGHT_REQS)
                        break;
        }
        if (!ok || submitted != 2 * INFLIGHT_REQS)
                LOG_WARN("nvme %s: in-flight self-test: %u of %u requests submitted, %u "
                         "failed",
                         c->name, submitted, 2 * INFLIGHT_REQS, t.failed);
        else if (memcmp(buf, buf + INFLIGHT_REQS * bs, INFLIGHT_REQS * bs) != 0)
                LOG_WARN("nvme %s: in-flight self-test: blocks %u-%u read back differ", c->name,
                         1 + SELFTEST_BLOCKS, SELFTEST_BLOCKS + INFLIGHT_REQS);
        else
                LOG_INFO("nvme %s: in-flight self-test: %u writes, then %u reads of "
                         "blocks %u-%u, up to %u in flight: ok",
                         c->name, INFLIGHT_REQS, INFLIGHT_REQS, 1 + SELFTEST_BLOCKS,
                         SELFTEST_BLOCKS + INFLIGHT_REQS, most);
        LOG_INFO("nvme %s: queue %u: %llu completions in the interrupt handler, %llu polled; "
                 "%llu interrupts (%s)",
                 c->name, q->qid, (unsigned long long)(q->by_irq - by_irq),
                 (unsigned long long)(q->by_poll - by_poll),
                 (unsigned long long)(q->interrupts - irqs), c->mode);
}

static void selftest_inflight_alloc(struct nvme_ctrl *c)
{
        uint64_t bytes = 2ull * INFLIGHT_REQS * c->ns[0].block_size;
        uint64_t tables =
            align_up(INFLIGHT_REQS * (sizeof(struct blk_req) + sizeof(struct blk_seg)), PAGE_SIZE);
        uint64_t pages = (align_up(bytes, PAGE_SIZE) + tables) / PAGE_SIZE;
        uint8_t *p;
        hpa_t pa;

        if (palloc_alloc(&keel_palloc, pages, PAGE_SIZE, &pa))
                return;
        p = hva_ptr(arch_hpa_to_hva(pa));
        selftest_inflight(c, (struct blk_req *)(void *)(p + align_up(bytes, PAGE_SIZE)),
                          (struct blk_seg *)(void *)(p + align_up(bytes, PAGE_SIZE) +
                                                     INFLIGHT_REQS * sizeof(struct blk_req)),
                          p, pa);
        (void)palloc_free(&keel_palloc, pa, pages);
}

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
                LOG_WARN("nvme %s: reading block 0 of namespace %u failed", c->name, ns->nsid);
                goto out;
        }
        for (unsigned i = 0; i < ns->block_size; i++)
                sum = (sum ^ rbuf[i]) * 16777619u;
        if (memcmp(rbuf, NVME_SCRATCH_MAGIC, sizeof(NVME_SCRATCH_MAGIC) - 1) != 0) {
                LOG_INFO("nvme %s: namespace %u block 0 read (FNV-1a %#x); not a "
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
                LOG_WARN("nvme %s: scratch self-test: I/O failed", c->name);
        else if (memcmp(wbuf, rbuf, bytes) != 0)
                LOG_WARN("nvme %s: scratch self-test: blocks 1-%u read back differ", c->name,
                         SELFTEST_BLOCKS);
        else
                LOG_INFO("nvme %s: scratch namespace %u: wrote, flushed and read back "
                         "blocks 1-%u: ok",
                         c->name, ns->nsid, SELFTEST_BLOCKS);
        if (!err && ns->blocks >= 1 + SELFTEST_BLOCKS + INFLIGHT_REQS)
                selftest_inflight_alloc(c);
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
        c->index = nctrls;
        c->pci = d;
        c->host = nvme_host;
        spin_init(&c->reset_lock);
        pci_name(d, c->name, sizeof(c->name));
        err = arch_map_device(hpa(bar->base), bar->size);
        if (err) {
                LOG_WARN("nvme %s: cannot map BAR0 %#llx+%#llx: %s", c->name,
                         (unsigned long long)bar->base, (unsigned long long)bar->size,
                         keel_strerror(err));
                return err;
        }
        c->regs = hva_ptr(arch_hpa_to_hva(hpa(bar->base)));
        c->cap = rd64(c, REG_CAP);
        c->timeout_ms = CAP_TO(c->cap) ? 500ull * CAP_TO(c->cap) : 500;
        /* Doorbells of queues 0 and 1 inside BAR0. */
        if (REG_DB + 4 * (4u << CAP_DSTRD(c->cap)) > bar->size) {
                LOG_WARN("nvme %s: doorbell stride %u does not fit BAR0: not used", c->name,
                         4u << CAP_DSTRD(c->cap));
                return -KEEL_ENODEV;
        }
        err = palloc_alloc(&keel_palloc, 1, PAGE_SIZE, &c->page_pa);
        if (err)
                return err;
        if (!polling && irq_poll_register(poll_all, NULL) == 0)
                polling = true;
        c->page = hva_ptr(arch_hpa_to_hva(c->page_pa));
        err = enable(c);
        if (!err)
                err = identify_all(c);
        if (!err)
                err = create_io_queues(c);
        if (err) {
                wr32(c, REG_CC, rd32(c, REG_CC) & ~CC_EN); /* stop its DMA before the pages go */
                (void)wait_ready(c, false);
                if (c->msix && c->host)
                        pci_msix_enable(c->host, d, false);
                /* Its queue pages stay allocated: a controller that did not reset may still
                 * write them. */
                LOG_WARN("nvme %s: not used (%s)", c->name, keel_strerror(err));
                return err;
        }
        nctrls++;
        LOG_INFO("nvme %s: %s, serial %s, firmware %s, NVMe %u.%u, %u namespace%s, %s, "
                 "%u KiB per command, %u I/O queue%s of %u, %s",
                 c->name, c->model, c->serial, c->firmware, rd32(c, REG_VS) >> 16,
                 (rd32(c, REG_VS) >> 8) & 0xff, c->ns_count, c->ns_count == 1 ? "" : "s",
                 c->vwc ? "volatile write cache" : "no volatile write cache", c->max_transfer >> 10,
                 c->nio, c->nio == 1 ? "" : "s", c->io[0].size, c->mode);
        for (unsigned i = 0; i < c->ns_count; i++)
                LOG_INFO("nvme %s: namespace %u: %llu blocks of %u bytes (%llu MiB)", c->name,
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

void nvme_reset_for_test(void)
{
        memset(ctrls, 0, sizeof(ctrls));
        nctrls = 0;
        polling = false;
}

void nvme_register(struct pci_host *h)
{
        nvme_host = h;
        if (pci_register_driver(h, &nvme_driver))
                LOG_WARN("nvme: the PCI driver table is full: NVMe not driven");
}
