/*
 * Tests for drivers/nvme.c against an NVMe controller model of the test's own, run by a
 * thread: registers in a 16 KiB "BAR" (host memory: on the fake arch a host-physical address
 * is a host pointer), admin and I/O queues in the pages the driver allocates, Identify, Create
 * I/O CQ/SQ (two I/O queue pairs granted by Set Features), Read/Write/Flush on a 64-block
 * RAM disk with PRP1/PRP2/PRP lists, and an MSI-X table in BAR0 at 0x2000: after completions
 * on a queue whose CQ has interrupts enabled and whose entry is unmasked it "sends" the
 * message by calling irq_dispatch(vector) from its thread, as another CPU would take it.
 * Faults it can inject: never ready, every I/O command or the one touching LBA 5 never
 * completed, an error status for one LBA, fatal status (CSTS.CFS) on the first I/O command
 * or once 8 are outstanding, I/O held until released, completions in reverse order.
 * Keel's clock (the fake arch's fake_tsc, 1 tick = 1 ns) is moved by the model's thread
 * after each of its passes, by the host time (CLOCK_MONOTONIC) since the pass before but at
 * most CLOCK_STEP_NS: a model thread that waited for a CPU on a loaded machine does not look
 * to the driver like a controller that took that long (before 2026-12-07 the clock jumped by
 * the whole wait first, so a pass after a wait of 500 ms let the driver time out commands
 * the pass was about to complete). CAP.TO is 500 ms.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <drivers/nvme.h>
#include <keel/errno.h>
#include <keel/irq.h>
#include <keel/palloc.h>
#include <keel/time.h>

#include "log_capture.h"
#include "pci_fake.h"
#include "test.h"

/* The fake arch's clock (arch/fake/fake.c): the model's thread keeps it at the host's time. */
extern uint64_t fake_tsc;

static uint64_t now_ns(void)
{
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

#define BLOCKS   64
#define BLOCK    512
#define BAR_SIZE 0x4000

enum fault {
        F_NONE,
        F_NEVER_READY,
        F_HANG_IO,
        F_HANG_LBA5,
        F_ERROR_LBA13,
        F_CFS_IO,
        F_CFS_AT_8,
        F_HOLD
};

#define NQ   3 /* admin and two I/O queues */
#define MSIX 0x2000
#define HELD 64

struct held {
        unsigned q;
        uint32_t cmd[16];
};

static struct model {
        volatile uint8_t *regs;
        uint8_t disk[BLOCKS * BLOCK];
        volatile enum fault fault;
        bool vwc, msix;
        unsigned flushes, reads, writes, interrupts;
        unsigned last_write_done, first_flush_after; /* FUA order: write count at the flush */
        /* queue state: [0] admin, [1..2] I/O */
        uint64_t sq[NQ], cq[NQ];
        uint16_t qsize[NQ], sq_head[NQ], cq_tail[NQ], iv[NQ];
        uint8_t phase[NQ];
        bool ien[NQ], pending[NQ];
        struct held held[HELD]; /* fetched, not completed yet (F_HOLD, F_CFS_AT_8) */
        unsigned nheld;
        volatile bool release;
        bool ready, stop;
        pthread_t thread;
        uint64_t clock_at; /* host time of the last clock step */
} m;

#define CLOCK_STEP_NS 1000000ull

/* After a pass: Keel's clock moves on by the host time since the last step, at most a step. */
static void clock_step(void)
{
        uint64_t now = now_ns(), d = now - m.clock_at;

        m.clock_at = now;
        __atomic_fetch_add(&fake_tsc, d < CLOCK_STEP_NS ? d : CLOCK_STEP_NS, __ATOMIC_RELEASE);
}

static uint32_t reg32(unsigned off)
{
        return __atomic_load_n((volatile uint32_t *)(m.regs + off), __ATOMIC_ACQUIRE);
}

static void set32(unsigned off, uint32_t v)
{
        __atomic_store_n((volatile uint32_t *)(m.regs + off), v, __ATOMIC_RELEASE);
}

static uint8_t *mem(uint64_t pa)
{
        return (uint8_t *)(uintptr_t)pa;
}

static void complete_dw0(unsigned q, uint16_t cid, uint16_t sqhd, uint16_t status, uint32_t dw0)
{
        uint32_t *e = (uint32_t *)mem(m.cq[q]) + 4u * m.cq_tail[q];

        e[0] = dw0;
        e[1] = 0;
        e[2] = sqhd | (uint32_t)q << 16;
        __atomic_store_n(&e[3], cid | (uint32_t)m.phase[q] << 16 | (uint32_t)status << 17,
                         __ATOMIC_RELEASE);
        if (++m.cq_tail[q] == m.qsize[q]) {
                m.cq_tail[q] = 0;
                m.phase[q] ^= 1;
        }
        if (q && m.ien[q])
                m.pending[q] = true;
}

static void complete(unsigned q, uint16_t cid, uint16_t sqhd, uint16_t status)
{
        complete_dw0(q, cid, sqhd, status, 0);
}

/* Set while the model's thread runs irq_dispatch (Keel's interrupt context). */
static bool in_handler;
static unsigned done_in_handler;

/* MSI-X: each queue's pending message goes out once its entry is unmasked. */
static void deliver_interrupts(void)
{
        for (unsigned q = 1; q < NQ; q++) {
                volatile uint32_t *e = (volatile uint32_t *)(m.regs + MSIX) + 4u * m.iv[q];

                if (!m.pending[q] || !m.msix || (e[3] & 1))
                        continue;
                m.pending[q] = false;
                m.interrupts++;
                __atomic_store_n(&in_handler, true, __ATOMIC_RELAXED);
                irq_dispatch(e[2] & 0xff);
                __atomic_store_n(&in_handler, false, __ATOMIC_RELAXED);
                irq_poll_deferred(); /* as the arch does after its interrupt window */
        }
}

/* The bytes of a transfer, page by page through PRP1, PRP2 or the PRP list. */
static void transfer(const uint32_t *c, uint64_t len, uint8_t *disk, bool to_host)
{
        uint64_t prp1 = c[6] | (uint64_t)c[7] << 32, prp2 = c[8] | (uint64_t)c[9] << 32;
        uint64_t first = 4096 - (prp1 & 4095), done = 0;
        uint64_t *list = (uint64_t *)mem(prp2);
        unsigned i = 0;

        while (done < len) {
                uint64_t pa = done == 0 ? prp1 : (len - first <= 4096 ? prp2 : list[i++]);
                uint64_t n = done == 0 ? first : 4096;

                if (n > len - done)
                        n = len - done;
                if (to_host)
                        memcpy(mem(pa), disk + done, n);
                else
                        memcpy(disk + done, mem(pa), n);
                done += n;
        }
}

static struct fake_pci fake; /* the controller's config space */

static uint16_t admin(const uint32_t *c, uint32_t *dw0)
{
        uint8_t *page = mem(c[6] | (uint64_t)c[7] << 32);
        unsigned q = c[10] & 0xffff;

        switch (c[0] & 0xff) {
        case 0x06: /* Identify */
                memset(page, 0, 4096);
                if ((c[10] & 0xff) == 1) {
                        memcpy(page + 4, "FAKE0001            ", 20);
                        memcpy(page + 24, "Keel test NVMe model                    ", 40);
                        memcpy(page + 64, "1.0     ", 8);
                        page[77] = 2; /* MDTS: 16 KiB */
                        page[516] = 1;
                        page[525] = m.vwc;
                } else if ((c[10] & 0xff) == 2) {
                        page[0] = 1;
                } else if ((c[10] & 0xff) == 0 && c[1] == 1) {
                        page[0] = BLOCKS;
                        page[8] = BLOCKS;
                        page[128 + 2] = 9;
                } else {
                        return 0x02; /* invalid field */
                }
                return 0;
        case 0x09: /* Set Features */
                if ((c[10] & 0xff) != 0x07)
                        return 0x02;
                *dw0 = (NQ - 2) << 16 | (NQ - 2); /* two I/O queue pairs, 0-based */
                return 0;
        case 0x05: /* Create I/O CQ */
        case 0x01: /* Create I/O SQ */
                if (q < 1 || q >= NQ)
                        return 0x101; /* invalid queue identifier */
                if ((c[0] & 0xff) == 0x05) {
                        /* As QEMU: a vector other than 0 only with MSI-X enabled. */
                        if ((c[11] >> 16) && !(fake.fn[0].cfg[0x43] & 0x80))
                                return 0x108; /* invalid interrupt vector */
                        m.cq[q] = c[6] | (uint64_t)c[7] << 32;
                        m.ien[q] = c[11] & 2;
                        m.iv[q] = (uint16_t)(c[11] >> 16);
                } else {
                        m.sq[q] = c[6] | (uint64_t)c[7] << 32;
                }
                m.qsize[q] = (uint16_t)((c[10] >> 16) + 1);
                m.phase[q] = 1;
                return 0;
        default:
                return 0x01; /* invalid opcode */
        }
}

static int io(const uint32_t *c)
{
        uint64_t lba = c[10] | (uint64_t)c[11] << 32;
        uint32_t n = (c[12] & 0xffff) + 1;

        if (m.fault == F_HANG_IO)
                return -1;
        if (m.fault == F_HANG_LBA5 && (c[0] & 0xff) != 0x00 && lba <= 5 && 5 < lba + n)
                return -1;
        if (m.fault == F_CFS_IO) {
                set32(0x1c, reg32(0x1c) | 2);
                return -1;
        }
        if ((c[0] & 0xff) == 0x00) {
                if (!m.flushes++)
                        m.first_flush_after = m.last_write_done;
                return 0;
        }
        if (lba + n > BLOCKS)
                return 0x80; /* LBA out of range */
        if (m.fault == F_ERROR_LBA13 && lba <= 13 && 13 < lba + n)
                return 0x281; /* media error: unrecovered read */
        if ((c[0] & 0xff) == 0x02)
                m.reads++;
        else
                m.writes++;
        transfer(c, (uint64_t)n * BLOCK, m.disk + lba * BLOCK, (c[0] & 0xff) == 0x02);
        if ((c[0] & 0xff) == 0x01)
                m.last_write_done = m.writes;
        return 0;
}

/* An I/O command fetched from queue q: now, or held (F_HOLD, F_CFS_AT_8). */
static void io_fetched(unsigned q, const uint32_t *c)
{
        int st;

        if (m.fault == F_HOLD || m.fault == F_CFS_AT_8) {
                if (m.nheld < HELD) {
                        m.held[m.nheld].q = q;
                        memcpy(m.held[m.nheld++].cmd, c, 64);
                }
                if (m.fault == F_CFS_AT_8 && m.nheld == 8)
                        set32(0x1c, reg32(0x1c) | 2);
                return;
        }
        st = io(c);
        if (st >= 0)
                complete(q, (uint16_t)(c[0] >> 16), m.sq_head[q], (uint16_t)st);
}

/* Held commands out once released (F_HOLD), last first. */
static void release_held(void)
{
        while (m.nheld) {
                struct held *h = &m.held[--m.nheld];
                int st = io(h->cmd);

                if (st >= 0)
                        complete(h->q, (uint16_t)(h->cmd[0] >> 16), m.sq_head[h->q], (uint16_t)st);
        }
}

static void *controller(void *arg)
{
        (void)arg;
        while (!__atomic_load_n(&m.stop, __ATOMIC_ACQUIRE)) {
                uint32_t cc = reg32(0x14);

                if ((cc & 1) && !m.ready && m.fault != F_NEVER_READY) {
                        uint32_t aqa = reg32(0x24);

                        m.sq[0] = reg32(0x28) | (uint64_t)reg32(0x2c) << 32;
                        m.cq[0] = reg32(0x30) | (uint64_t)reg32(0x34) << 32;
                        m.qsize[0] = (uint16_t)((aqa & 0xfff) + 1);
                        m.phase[0] = 1;
                        m.ready = true;
                        set32(0x1c, 1);
                } else if (!(cc & 1) && m.ready) {
                        memset(m.sq_head, 0, sizeof(m.sq_head));
                        memset(m.cq_tail, 0, sizeof(m.cq_tail));
                        memset(m.sq, 0, sizeof(m.sq));
                        m.nheld = 0;
                        for (unsigned q = 0; q < NQ; q++) { /* doorbells reset too */
                                set32(0x1000 + 8 * q, 0);
                                set32(0x1004 + 8 * q, 0);
                        }
                        m.ready = false;
                        set32(0x1c, 0);
                }
                for (unsigned q = 0; m.ready && q < NQ; q++) {
                        uint32_t tail = reg32(0x1000 + 8 * q);

                        while (m.sq[q] && m.sq_head[q] != tail) {
                                const uint32_t *c =
                                    (const uint32_t *)mem(m.sq[q]) + 16u * m.sq_head[q];
                                uint32_t dw0 = 0;

                                m.sq_head[q] = (uint16_t)((m.sq_head[q] + 1) % m.qsize[q]);
                                if (q == 0) {
                                        uint16_t st = admin(c, &dw0);

                                        complete_dw0(0, (uint16_t)(c[0] >> 16), m.sq_head[0], st,
                                                     dw0);
                                } else
                                        io_fetched(q, c);
                        }
                }
                if (m.ready && m.nheld && m.fault == F_HOLD && m.release)
                        release_held();
                if (m.ready)
                        deliver_interrupts();
                clock_step();
        }
        return NULL;
}

/* Each test's model memory stays allocated (and reachable): the driver keeps its controllers. */
static void *bar, *ram, *kept[32];
static unsigned nkept;
static struct pci_host host;
static struct pci_dev devs[4];

/* A controller model and a PCI host holding it as 0000:00:04.0, the driver registered. */
static void start_msix(enum fault f, bool vwc, bool scratch, bool msix)
{
        struct mem_range r;
        struct pci_dev *d;

        memset(&m, 0, sizeof(m));
        /* A fresh driver each test (the previous model is stopped): controllers, disks,
         * vectors and pollers. */
        nvme_reset_for_test();
        blkdev_reset_for_test();
        irq_reset_for_test();
        bar = aligned_alloc(BAR_SIZE, BAR_SIZE);
        ram = aligned_alloc(4096, 4 << 20);
        memset(bar, 0, BAR_SIZE);
        if (nkept + 2 <= sizeof(kept) / sizeof(kept[0])) {
                kept[nkept++] = bar;
                kept[nkept++] = ram;
        }
        r = (struct mem_range){hpa((uint64_t)(uintptr_t)ram), (4 << 20) / PAGE_SIZE};
        EXPECT_EQ(palloc_init(&keel_palloc, &r, 1), 0);
        m.regs = bar;
        m.fault = f;
        m.vwc = vwc;
        m.msix = msix;
        for (unsigned i = 0; i < 4; i++) /* MSI-X entries masked at reset */
                *(volatile uint32_t *)((uint8_t *)bar + MSIX + 16 * i + 12) = 1;
        if (scratch)
                memcpy(m.disk, "KEEL-NVME-SCRATCH", 17);
        for (unsigned i = BLOCK; i < sizeof(m.disk); i++)
                m.disk[i] = (uint8_t)(i * 13);
        *(volatile uint64_t *)m.regs = 63 | 1ull << 24 | 1ull << 37; /* MQES, TO, NVM */
        *(volatile uint32_t *)(m.regs + 8) = 0x00010400;
        __atomic_store_n(&fake_tsc, now_ns(), __ATOMIC_RELAXED);
        m.clock_at = now_ns();
        pthread_create(&m.thread, NULL, controller, NULL);

        memset(&fake, 0, sizeof(fake));
        fake.count = 1;
        fake.fn[0].a = (struct pci_addr){0, 0, 4, 0};
        pci_host_init(&host, &fake_pci_ops, &fake);
        pci_set_table(&host, devs, 4);
        d = &host.dev[host.dev_count++];
        memset(d, 0, sizeof(*d));
        d->addr = fake.fn[0].a;
        d->vendor = 0x1b36;
        d->device = 0x0010;
        d->class = 0x010802;
        d->bar[0] = (struct pci_bar){PCI_BAR_MEM64, false, (uint64_t)(uintptr_t)bar, BAR_SIZE};
        if (msix) {
                /* The capability in config space too: pci_msix_enable writes its control. */
                fake.fn[0].cfg[PCI_CAP_PTR] = 0x40;
                fake.fn[0].cfg[0x40] = PCI_CAP_MSIX;
                fake.fn[0].cfg[0x42] = 3; /* 4 entries */
                d->cap_msix = 0x40;
                d->msix_size = 4;
                d->msix_table_bir = 0;
                d->msix_table_off = MSIX;
                d->msix_pba_bir = 0;
                d->msix_pba_off = 0x3000;
        }
        nvme_register(&host);
        capture_start();
}

static void start(enum fault f, bool vwc, bool scratch)
{
        start_msix(f, vwc, scratch, false);
}

static void stop(void)
{
        __atomic_store_n(&m.stop, true, __ATOMIC_RELEASE);
        pthread_join(m.thread, NULL);
        /* The driver's controllers keep pointers into these: the tests that follow only use
         * their own. */
}

/* The model's disk after the scratch self-tests: blocks 17-48 hold the in-flight pattern. */
static uint8_t disk_byte(unsigned pos)
{
        unsigned i = pos - 17 * BLOCK;

        if (pos >= 17 * BLOCK && pos < 49 * BLOCK)
                return (uint8_t)(i / BLOCK * 31 + i + 3);
        return (uint8_t)(pos * 13);
}

static struct nvme_ctrl *last_ctrl(void)
{
        return nvme_count() ? nvme_get(nvme_count() - 1) : NULL;
}

static hpa_t buffer(unsigned pages)
{
        hpa_t pa;

        EXPECT_EQ(palloc_alloc(&keel_palloc, pages, PAGE_SIZE, &pa), 0);
        return pa;
}

TEST(a_controller_that_never_gets_ready_is_not_taken)
{

        start(F_NEVER_READY, true, false);
        pci_bind(&host);
        EXPECT_EQ(nvme_count(), 0);
        EXPECT_CONTAINS(logbuf, "not ready within 500 ms of enabling");
        EXPECT_CONTAINS(logbuf, "driver nvme refused it");
        EXPECT_EQ(fake.fn[0].cfg[4] & PCI_CMD_MASTER, 0);
        EXPECT_EQ(*(volatile uint32_t *)(m.regs + 0x14) & 1, 0); /* disabled again */
        stop();
}

TEST(identify_io_and_the_scratch_selftest)
{
        struct nvme_ctrl *c;
        hpa_t pa;
        uint8_t *p;

        start(F_NONE, true, true);
        pci_bind(&host);
        ASSERT_TRUE(nvme_count() == 1);
        c = last_ctrl();
        EXPECT_STREQ(c->model, "Keel test NVMe model");
        EXPECT_STREQ(c->serial, "FAKE0001");
        EXPECT_EQ(c->ns_count, 1);
        EXPECT_EQ(c->ns[0].blocks, BLOCKS);
        EXPECT_EQ(c->ns[0].block_size, BLOCK);
        EXPECT_EQ(c->max_transfer, 16384);
        EXPECT_TRUE(c->vwc);
        EXPECT_CONTAINS(logbuf, "keel: nvme 0000:00:04.0: Keel test NVMe model, serial FAKE0001, "
                                "firmware 1.0, NVMe 1.4, 1 namespace, volatile write cache, 16 "
                                "KiB per command, 2 I/O queues of 64, polled (no MSI-X)");
        EXPECT_CONTAINS(logbuf, "namespace 1: 64 blocks of 512 bytes (0 MiB)");
        EXPECT_CONTAINS(logbuf,
                        "scratch namespace 1: wrote, flushed and read back blocks 1-16: ok");
        EXPECT_CONTAINS(logbuf, "taken by driver nvme");
        /* The self-test's pattern reached the device's blocks 1-16 and was flushed. */
        EXPECT_EQ(m.disk[BLOCK], 0x5a);
        EXPECT_EQ(m.disk[BLOCK + 1], 0x61);
        EXPECT_CONTAINS(logbuf, "in-flight self-test: 32 writes, then 32 reads of blocks 17-48, up "
                                "to 32 in flight: ok");
        EXPECT_CONTAINS(logbuf, "queue 1: 0 completions in the interrupt handler, 65 polled; 0 "
                                "interrupts (polled (no MSI-X))");
        EXPECT_EQ(m.writes, 1 + 32);
        EXPECT_EQ(m.flushes, 2);
        EXPECT_EQ(m.disk[17 * BLOCK + 5], (uint8_t)(5 + 3));
        EXPECT_EQ(m.disk[48 * BLOCK + 5], (uint8_t)(31 * 31 + 5 + 3));
        EXPECT_EQ(m.disk[49 * BLOCK + 5], (uint8_t)((49 * BLOCK + 5) * 13)); /* untouched */

        /* 32 blocks from a buffer 512 bytes into a page: PRP1 + a PRP list of 4 pages. */
        pa = buffer(5);
        p = hva_ptr(arch_hpa_to_hva(pa));
        EXPECT_EQ(nvme_read(c, 0, 32, 32, hpa_add(pa, 512)), 0);
        for (unsigned i = 0; i < 32 * BLOCK; i++)
                if (p[512 + i] != disk_byte(32 * BLOCK + i)) {
                        TEST_FAIL_AT(__FILE__, __LINE__, "byte %u read wrong", i);
                        break;
                }
        for (unsigned i = 0; i < 32 * BLOCK; i++)
                p[512 + i] = (uint8_t)(i ^ 0xa5);
        EXPECT_EQ(nvme_write(c, 0, 30, 32, hpa_add(pa, 512)), 0);
        EXPECT_EQ(m.disk[30 * BLOCK + 7], 7 ^ 0xa5);
        EXPECT_EQ(m.disk[62 * BLOCK - 1], (uint8_t)((32 * BLOCK - 1) ^ 0xa5));
        EXPECT_EQ(nvme_flush(c, 0), 0);
        EXPECT_EQ(m.flushes, 3);
        /* Refused before the device sees them. */
        EXPECT_EQ(nvme_read(c, 0, 60, 5, pa), -KEEL_EINVAL);            /* past the end */
        EXPECT_EQ(nvme_read(c, 0, 0, 33, pa), -KEEL_EINVAL);            /* over MDTS */
        EXPECT_EQ(nvme_read(c, 1, 0, 1, pa), -KEEL_EINVAL);             /* no such namespace */
        EXPECT_EQ(nvme_read(c, 0, 0, 1, hpa_add(pa, 2)), -KEEL_EINVAL); /* misaligned */
        EXPECT_EQ(m.reads, 3 + 32); /* the self-tests' and ours */
        stop();
}

TEST(without_a_volatile_cache_flush_sends_nothing_and_no_scratch_no_write)
{
        struct nvme_ctrl *c;

        start(F_NONE, false, false);
        pci_bind(&host);
        ASSERT_TRUE(nvme_count() == 1);
        c = last_ctrl();
        EXPECT_CONTAINS(logbuf, "no volatile write cache");
        EXPECT_CONTAINS(logbuf, "not a scratch disk: nothing written");
        EXPECT_EQ(m.writes, 0);
        EXPECT_EQ(nvme_flush(c, 0), 0);
        EXPECT_EQ(m.flushes, 0);
        stop();
}

TEST(an_error_status_fails_the_command_not_the_controller)
{
        struct nvme_ctrl *c;
        hpa_t pa;

        start(F_ERROR_LBA13, true, false);
        pci_bind(&host);
        c = last_ctrl();
        ASSERT_TRUE(c && c->pci->addr.dev == 4 && !c->failed);
        pa = buffer(4);
        EXPECT_EQ(nvme_read(c, 0, 10, 8, pa), -KEEL_EIO);
        EXPECT_CONTAINS(logbuf, "command 0x2 on queue 1 failed: status type 2 code 0x81");
        EXPECT_TRUE(c->failed == NULL);
        EXPECT_EQ(nvme_read(c, 0, 20, 8, pa), 0);
        stop();
}

TEST(a_command_that_never_completes_times_out_and_fails_the_controller)
{
        struct nvme_ctrl *c;
        uint64_t t0;
        hpa_t pa;

        start(F_NONE, true, false);
        pci_bind(&host);
        c = last_ctrl();
        ASSERT_TRUE(c && !c->failed);
        m.fault = F_HANG_IO;
        pa = buffer(1);
        t0 = arch_tsc();
        EXPECT_EQ(nvme_read(c, 0, 0, 1, pa), -KEEL_EIO);
        EXPECT_TRUE(arch_tsc() - t0 >= 500000000ull); /* CAP.TO */
        EXPECT_TRUE(arch_tsc() - t0 < 5000000000ull);
        EXPECT_CONTAINS(logbuf, "failed: a command timed out");
        EXPECT_CONTAINS(logbuf, "command 0x2 (id 0) on queue 1 timed out after 500 ms");
        EXPECT_TRUE(c->failed != NULL);
        m.fault = F_NONE;
        t0 = arch_tsc();
        EXPECT_EQ(nvme_read(c, 0, 0, 1, pa), -KEEL_EIO); /* refused at once */
        EXPECT_TRUE(arch_tsc() - t0 < 100000000ull);
        EXPECT_EQ(nvme_flush(c, 0), -KEEL_EIO);
        stop();
}

/* Asynchronous requests of the tests below: what done() was called with, and how often. */
#define NREQ 64
static struct blk_req req[NREQ];
static struct blk_seg seg[NREQ][3];
static int status[NREQ];
static unsigned calls[NREQ], ndone;

static void req_done(struct blk_req *r, int st)
{
        unsigned i = (unsigned)(r - req);

        status[i] = st;
        if (__atomic_load_n(&in_handler, __ATOMIC_RELAXED))
                __atomic_fetch_add(&done_in_handler, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&calls[i], 1, __ATOMIC_RELEASE);
        __atomic_fetch_add(&ndone, 1, __ATOMIC_RELEASE);
}

static void reqs_reset(void)
{
        memset(req, 0, sizeof(req));
        memset(status, 0x55, sizeof(status));
        memset(calls, 0, sizeof(calls));
        __atomic_store_n(&ndone, 0, __ATOMIC_RELEASE);
}

/* Request i: one block at `lba` through buffer page `pa` + i * BLOCK. */
static int submit1(struct blkdev *d, unsigned i, uint8_t op, uint64_t lba, hpa_t pa)
{
        seg[i][0] = (struct blk_seg){hpa_add(pa, i * BLOCK), BLOCK};
        req[i] = (struct blk_req){
            .op = op, .lba = lba, .blocks = 1, .seg = seg[i], .nseg = 1, .done = req_done};
        return d->ops->submit(d, &req[i]);
}

/*
 * A wait of `ms` on Keel's clock, which moves only while the model's thread runs (so a loaded
 * machine lengthens it in host time rather than cutting it short), and at most a minute of
 * host time (a model that stopped must not hang the test).
 */
struct wait {
        uint64_t clock_end, host_end;
};

static struct wait wait_for(unsigned ms)
{
        return (struct wait){__atomic_load_n(&fake_tsc, __ATOMIC_ACQUIRE) + ms * 1000000ull,
                             now_ns() + 60000000000ull};
}

static bool waiting(const struct wait *w)
{
        return __atomic_load_n(&fake_tsc, __ATOMIC_ACQUIRE) < w->clock_end &&
               now_ns() < w->host_end;
}

/* Poll until `n` requests are done or `ms` pass on Keel's clock. */
static void wait_done(struct nvme_ctrl *c, unsigned n, unsigned ms)
{
        struct wait w = wait_for(ms);

        while (__atomic_load_n(&ndone, __ATOMIC_ACQUIRE) < n && waiting(&w))
                nvme_poll(c);
}

TEST(completions_out_of_order_by_msix_interrupts)
{
        uint64_t irq0, poll0;
        struct nvme_ctrl *c;
        struct blkdev *d;
        hpa_t pa;
        uint8_t *p;

        start_msix(F_NONE, true, false, true);
        pci_bind(&host);
        c = last_ctrl();
        ASSERT_TRUE(c && !c->failed);
        EXPECT_CONTAINS(logbuf, "2 I/O queues of 64, MSI-X vectors 0x");
        ASSERT_TRUE(c->io[0].msix_on && c->io[0].vector >= 0x30);
        EXPECT_TRUE(fake.fn[0].cfg[0x43] & 0x80);  /* MSI-X enabled */
        EXPECT_EQ(fake.fn[0].cfg[0x43] & 0x40, 0); /* function not masked */
        EXPECT_TRUE(fake.fn[0].cfg[5] & 0x04);     /* INTx off */
        d = &c->ns[0].blk;
        EXPECT_EQ(d->max_segs, 63);
        reqs_reset();
        pa = buffer(8);
        p = hva_ptr(arch_hpa_to_hva(pa));
        irq0 = c->io[0].by_irq;
        poll0 = c->io[0].by_poll;
        m.fault = F_HOLD;
        /* 20 reads in flight at once; the model completes them last first. */
        for (unsigned i = 0; i < 20; i++)
                EXPECT_EQ(submit1(d, i, BLK_READ, 40 + i, pa), 0);
        EXPECT_EQ(c->io[0].inflight, 20);
        m.release = true;
        /* Nobody polls: the interrupt (taken by the model's thread) completes them. */
        for (struct wait w = wait_for(2000);
             __atomic_load_n(&ndone, __ATOMIC_ACQUIRE) < 20 && waiting(&w);)
                ;
        EXPECT_EQ(ndone, 20);
        for (unsigned i = 0; i < 20; i++) {
                EXPECT_EQ(calls[i], 1);
                EXPECT_EQ(status[i], 0);
                EXPECT_EQ(p[i * BLOCK + 7], (uint8_t)(((40 + i) * BLOCK + 7) * 13));
        }
        EXPECT_EQ(c->io[0].by_irq - irq0, 20);
        EXPECT_EQ(c->io[0].by_poll - poll0, 0);
        /* done() takes its user's locks: never inside the handler, after its window. */
        EXPECT_EQ(done_in_handler, 0);
        EXPECT_TRUE(c->io[0].interrupts >= 1 && m.interrupts >= 1);
        EXPECT_TRUE(irq_count(c->io[0].vector) >= 1);
        EXPECT_EQ(c->io[0].inflight, 0);
        stop();
}

TEST(a_full_queue_says_eagain_and_a_multi_segment_request_completes_once)
{
        struct nvme_ctrl *c;
        struct blkdev *d;
        struct blk_req r;
        hpa_t pa;
        uint8_t *p;
        unsigned i;

        start(F_NONE, true, false);
        pci_bind(&host);
        c = last_ctrl();
        ASSERT_TRUE(c && !c->failed);
        EXPECT_CONTAINS(logbuf, "polled (no MSI-X)");
        d = &c->ns[0].blk;
        reqs_reset();
        pa = buffer(16);
        p = hva_ptr(arch_hpa_to_hva(pa));
        m.fault = F_HOLD;
        for (i = 0; i < 63; i++)
                EXPECT_EQ(submit1(d, i, BLK_READ, i % BLOCKS, pa), 0);
        EXPECT_EQ(c->io[0].inflight, 63);
        EXPECT_EQ(submit1(d, 63, BLK_READ, 0, pa), -KEEL_EAGAIN);
        EXPECT_EQ(calls[63], 0);
        m.release = true;
        wait_done(c, 63, 2000);
        EXPECT_EQ(ndone, 63);
        EXPECT_EQ(calls[0] + calls[62], 2);
        m.fault = F_NONE;
        EXPECT_EQ(submit1(d, 63, BLK_READ, 0, pa), 0);
        wait_done(c, 64, 2000);
        EXPECT_EQ(status[63], 0);

        /* Three segments (the second 2 blocks across a page boundary), FUA: three writes,
         * then one Flush after them, then done() once. */
        for (i = 0; i < 4 * BLOCK; i++)
                p[4096 - BLOCK + i] = (uint8_t)(i ^ 0x3c);
        memset(&r, 0, sizeof(r));
        seg[0][0] = (struct blk_seg){hpa_add(pa, 4096 - BLOCK), BLOCK};
        seg[0][1] = (struct blk_seg){hpa_add(pa, 4096), 2 * BLOCK};
        seg[0][2] = (struct blk_seg){hpa_add(pa, 4096 + 2 * BLOCK), BLOCK};
        reqs_reset();
        req[0] = (struct blk_req){.op = BLK_WRITE,
                                  .fua = true,
                                  .lba = 20,
                                  .blocks = 4,
                                  .seg = seg[0],
                                  .nseg = 3,
                                  .done = req_done};
        m.writes = m.flushes = 0;
        EXPECT_EQ(d->ops->submit(d, &req[0]), 0);
        wait_done(c, 1, 2000);
        EXPECT_EQ(calls[0], 1);
        EXPECT_EQ(status[0], 0);
        EXPECT_EQ(m.writes, 3);
        EXPECT_EQ(m.flushes, 1);
        EXPECT_EQ(m.first_flush_after, 3); /* the Flush came after all three writes */
        EXPECT_EQ(m.disk[20 * BLOCK + 1], 1 ^ 0x3c);
        EXPECT_EQ(m.disk[23 * BLOCK + 9], (uint8_t)((3 * BLOCK + 9) ^ 0x3c));
        /* One segment of 40 blocks (20 KiB, from mid-page) over MDTS (16 KiB): two reads. */
        reqs_reset();
        m.reads = 0;
        seg[0][0] = (struct blk_seg){hpa_add(pa, 1024), 40 * BLOCK};
        req[0] = (struct blk_req){
            .op = BLK_READ, .lba = 8, .blocks = 40, .seg = seg[0], .nseg = 1, .done = req_done};
        EXPECT_EQ(d->ops->submit(d, &req[0]), 0);
        wait_done(c, 1, 2000);
        EXPECT_EQ(calls[0], 1);
        EXPECT_EQ(status[0], 0);
        EXPECT_EQ(m.reads, 2);
        for (i = 0; i < 40 * BLOCK; i++)
                if (p[1024 + i] != m.disk[8 * BLOCK + i]) {
                        TEST_FAIL_AT(__FILE__, __LINE__, "byte %u of the split read wrong", i);
                        break;
                }
        /* Refused: lengths not adding up, a segment not a whole block. */
        r = req[0];
        r.blocks = 5;
        EXPECT_EQ(d->ops->submit(d, &r), -KEEL_EINVAL);
        seg[1][0] = (struct blk_seg){pa, 100};
        r = (struct blk_req){
            .op = BLK_READ, .lba = 0, .blocks = 1, .seg = seg[1], .nseg = 1, .done = req_done};
        EXPECT_EQ(d->ops->submit(d, &r), -KEEL_EINVAL);
        stop();
}

TEST(an_error_in_one_segment_fails_the_request_once)
{
        struct nvme_ctrl *c;
        struct blkdev *d;
        hpa_t pa;

        start(F_ERROR_LBA13, true, false);
        pci_bind(&host);
        c = last_ctrl();
        ASSERT_TRUE(c && !c->failed);
        d = &c->ns[0].blk;
        pa = buffer(2);
        reqs_reset();
        seg[0][0] = (struct blk_seg){pa, 2 * BLOCK};
        seg[0][1] = (struct blk_seg){hpa_add(pa, 4096), 2 * BLOCK};
        req[0] = (struct blk_req){
            .op = BLK_READ, .lba = 10, .blocks = 4, .seg = seg[0], .nseg = 2, .done = req_done};
        EXPECT_EQ(d->ops->submit(d, &req[0]), 0);
        wait_done(c, 1, 2000);
        EXPECT_EQ(calls[0], 1);
        EXPECT_EQ(status[0], -KEEL_EIO);
        EXPECT_TRUE(c->failed == NULL);
        EXPECT_EQ(c->io[0].inflight, 0);
        stop();
}

TEST(one_command_never_completing_times_out_the_others_complete)
{
        struct nvme_ctrl *c;
        struct blkdev *d;
        hpa_t pa;
        uint64_t t0;

        start(F_NONE, true, false);
        pci_bind(&host);
        c = last_ctrl();
        ASSERT_TRUE(c && !c->failed);
        d = &c->ns[0].blk;
        pa = buffer(4);
        reqs_reset();
        m.fault = F_HANG_LBA5;
        t0 = arch_tsc();
        for (unsigned i = 0; i < 8; i++)
                EXPECT_EQ(submit1(d, i, BLK_READ, 2 + i, pa), 0);
        wait_done(c, 7, 400); /* all but LBA 5's */
        EXPECT_EQ(ndone, 7);
        EXPECT_EQ(calls[3], 0);
        wait_done(c, 8, 3000);
        EXPECT_EQ(calls[3], 1);
        EXPECT_EQ(status[3], -KEEL_EIO);
        EXPECT_TRUE(arch_tsc() - t0 >= 500000000ull); /* CAP.TO */
        for (unsigned i = 0; i < 8; i++)
                if (i != 3)
                        EXPECT_EQ(status[i], 0);
        EXPECT_CONTAINS(logbuf, "on queue 1 timed out after 500 ms");
        EXPECT_CONTAINS(logbuf, "failed: a command timed out");
        /* Its DMA stopped: disabled, bus mastering off; later requests refused. */
        EXPECT_EQ(*(volatile uint32_t *)(m.regs + 0x14) & 1, 0);
        EXPECT_EQ(fake.fn[0].cfg[4] & PCI_CMD_MASTER, 0);
        EXPECT_EQ(submit1(d, 9, BLK_READ, 0, pa), -KEEL_EIO);
        stop();
}

TEST(a_failed_controller_is_reset_from_the_scheduling_rounds_and_serves_again)
{
        struct nvme_ctrl *c;
        struct blkdev *d;
        hpa_t pa;
        uint8_t *p;

        start_msix(F_NONE, true, false, true);
        pci_bind(&host);
        c = last_ctrl();
        ASSERT_TRUE(c && !c->failed);
        d = &c->ns[0].blk;
        pa = buffer(4);
        p = hva_ptr(arch_hpa_to_hva(pa));
        reqs_reset();
        m.fault = F_HANG_LBA5;
        EXPECT_EQ(submit1(d, 0, BLK_READ, 5, pa), 0);
        EXPECT_EQ(submit1(d, 1, BLK_READ, 6, pa), 0);
        wait_done(c, 2, 3000);
        EXPECT_EQ(status[0], -KEEL_EIO);
        EXPECT_EQ(status[1], 0);
        ASSERT_TRUE(c->failed != NULL);
        EXPECT_EQ(submit1(d, 2, BLK_READ, 7, pa), -KEEL_EIO);
        /* nvme_poll alone does not reset it: the scheduling rounds' poller does. */
        m.fault = F_NONE;
        for (struct wait w = wait_for(3000); c->failed && waiting(&w);)
                irq_poll_all();
        ASSERT_TRUE(c->failed == NULL);
        EXPECT_CONTAINS(logbuf, "resetting it (1 of at most 3)");
        EXPECT_CONTAINS(logbuf, "reset and back in service (it had failed: a command timed out)");
        EXPECT_TRUE(fake.fn[0].cfg[4] & PCI_CMD_MASTER);
        /* I/O again, completed by its interrupt as before. */
        EXPECT_EQ(submit1(d, 3, BLK_READ, 9, pa), 0);
        wait_done(c, 3, 2000);
        EXPECT_EQ(status[3], 0);
        EXPECT_EQ(p[3 * BLOCK + 7], (uint8_t)((9 * BLOCK + 7) * 13));
        stop();
}

TEST(a_controller_failing_after_its_resets_stays_failed)
{
        struct nvme_ctrl *c;
        struct blkdev *d;
        hpa_t pa;

        start(F_NONE, true, false);
        pci_bind(&host);
        c = last_ctrl();
        ASSERT_TRUE(c && !c->failed);
        d = &c->ns[0].blk;
        pa = buffer(1);
        for (unsigned round = 0; round <= NVME_MAX_RESETS; round++) {
                reqs_reset();
                m.fault = F_CFS_IO;
                EXPECT_EQ(submit1(d, 0, BLK_READ, 0, pa), 0);
                wait_done(c, 1, 2000);
                EXPECT_EQ(status[0], -KEEL_EIO);
                m.fault = F_NONE;
                for (struct wait w = wait_for(2000); c->failed && waiting(&w);)
                        irq_poll_all();
                EXPECT_TRUE(round < NVME_MAX_RESETS ? c->failed == NULL : c->failed != NULL);
        }
        EXPECT_CONTAINS(logbuf, "resetting it (3 of at most 3)");
        EXPECT_FALSE(strstr(logbuf, "resetting it (4 of"));
        EXPECT_CONTAINS(logbuf, "failed again after 3 resets: it stays failed");
        EXPECT_EQ(submit1(d, 1, BLK_READ, 0, pa), -KEEL_EIO);
        stop();
}

TEST(fatal_status_mid_flight_fails_every_outstanding_request)
{
        struct nvme_ctrl *c;
        struct blkdev *d;
        hpa_t pa;

        start_msix(F_NONE, true, false, true);
        pci_bind(&host);
        c = last_ctrl();
        ASSERT_TRUE(c && !c->failed);
        d = &c->ns[0].blk;
        pa = buffer(4);
        reqs_reset();
        m.fault = F_CFS_AT_8;
        for (unsigned i = 0; i < 12; i++)
                EXPECT_EQ(submit1(d, i, i & 1 ? BLK_WRITE : BLK_READ, i, pa), 0);
        wait_done(c, 12, 2000);
        EXPECT_EQ(ndone, 12);
        for (unsigned i = 0; i < 12; i++) {
                EXPECT_EQ(calls[i], 1);
                EXPECT_EQ(status[i], -KEEL_EIO);
        }
        EXPECT_CONTAINS(logbuf, "failed: controller fatal status");
        EXPECT_EQ(c->io[0].inflight, 0);
        EXPECT_EQ(submit1(d, 12, BLK_READ, 0, pa), -KEEL_EIO);
        stop();
}

TEST_MAIN()
