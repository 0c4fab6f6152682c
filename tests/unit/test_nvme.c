/*
 * Tests for drivers/nvme.c against an NVMe controller model of the test's own, run by a
 * thread: registers in a 16 KiB "BAR" (host memory: on the fake arch a host-physical address
 * is a host pointer), admin and I/O queues in the pages the driver allocates, Identify, Create
 * I/O CQ/SQ, Read/Write/Flush on a 64-block RAM disk with PRP1/PRP2/PRP lists. Faults it can
 * inject: never ready, an I/O command never completed, an error status for one LBA, fatal
 * status (CSTS.CFS). Keel's clock (the fake arch's fake_tsc, 1 tick = 1 ns) follows the
 * host's CLOCK_MONOTONIC, moved by the model's thread; CAP.TO is 500 ms.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <drivers/nvme.h>
#include <keel/errno.h>
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

enum fault { F_NONE, F_NEVER_READY, F_HANG_IO, F_ERROR_LBA13, F_CFS_IO };

static struct model {
        volatile uint8_t *regs;
        uint8_t disk[BLOCKS * BLOCK];
        enum fault fault;
        bool vwc;
        unsigned flushes, reads, writes;
        /* queue state: [0] admin, [1] I/O */
        uint64_t sq[2], cq[2];
        uint16_t qsize[2], sq_head[2], cq_tail[2];
        uint8_t phase[2];
        bool ready, stop;
        pthread_t thread;
} m;

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

static void complete(unsigned q, uint16_t cid, uint16_t sqhd, uint16_t status)
{
        uint32_t *e = (uint32_t *)mem(m.cq[q]) + 4u * m.cq_tail[q];

        e[0] = 0;
        e[1] = 0;
        e[2] = sqhd | (uint32_t)q << 16;
        __atomic_store_n(&e[3], cid | (uint32_t)m.phase[q] << 16 | (uint32_t)status << 17,
                         __ATOMIC_RELEASE);
        if (++m.cq_tail[q] == m.qsize[q]) {
                m.cq_tail[q] = 0;
                m.phase[q] ^= 1;
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

static uint16_t admin(const uint32_t *c)
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
        case 0x05: /* Create I/O CQ */
        case 0x01: /* Create I/O SQ */
                if (q != 1)
                        return 0x101; /* invalid queue identifier */
                if ((c[0] & 0xff) == 0x05)
                        m.cq[1] = c[6] | (uint64_t)c[7] << 32;
                else
                        m.sq[1] = c[6] | (uint64_t)c[7] << 32;
                m.qsize[1] = (uint16_t)((c[10] >> 16) + 1);
                m.phase[1] = 1;
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
        if (m.fault == F_CFS_IO) {
                set32(0x1c, reg32(0x1c) | 2);
                return -1;
        }
        if ((c[0] & 0xff) == 0x00) {
                m.flushes++;
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
        return 0;
}

static void *controller(void *arg)
{
        (void)arg;
        while (!__atomic_load_n(&m.stop, __ATOMIC_ACQUIRE)) {
                uint32_t cc = reg32(0x14);

                __atomic_store_n(&fake_tsc, now_ns(), __ATOMIC_RELAXED);

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
                        m.ready = false;
                        set32(0x1c, 0);
                }
                for (unsigned q = 0; m.ready && q < 2; q++) {
                        uint32_t tail = reg32(0x1000 + 8 * q);

                        while (m.sq[q] && m.sq_head[q] != tail) {
                                const uint32_t *c =
                                    (const uint32_t *)mem(m.sq[q]) + 16u * m.sq_head[q];
                                int st;

                                m.sq_head[q] = (uint16_t)((m.sq_head[q] + 1) % m.qsize[q]);
                                st = q == 0 ? admin(c) : io(c);
                                if (st >= 0)
                                        complete(q, (uint16_t)(c[0] >> 16), m.sq_head[q],
                                                 (uint16_t)st);
                        }
                }
        }
        return NULL;
}

/* Each test's model memory stays allocated (and reachable): the driver keeps its controllers. */
static void *bar, *ram, *kept[16];
static unsigned nkept;
static struct fake_pci fake;
static struct pci_host host;
static struct pci_dev devs[4];

/* A controller model and a PCI host holding it as 0000:00:04.0, the driver registered. */
static void start(enum fault f, bool vwc, bool scratch)
{
        struct mem_range r;
        struct pci_dev *d;

        memset(&m, 0, sizeof(m));
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
        if (scratch)
                memcpy(m.disk, "KEEL-NVME-SCRATCH", 17);
        for (unsigned i = BLOCK; i < sizeof(m.disk); i++)
                m.disk[i] = (uint8_t)(i * 13);
        *(volatile uint64_t *)m.regs = 63 | 1ull << 24 | 1ull << 37; /* MQES, TO, NVM */
        *(volatile uint32_t *)(m.regs + 8) = 0x00010400;
        __atomic_store_n(&fake_tsc, now_ns(), __ATOMIC_RELAXED);
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
        nvme_register(&host);
        capture_start();
}

static void stop(void)
{
        __atomic_store_n(&m.stop, true, __ATOMIC_RELEASE);
        pthread_join(m.thread, NULL);
        /* The driver's controllers keep pointers into these: the tests that follow only use
         * their own. */
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

/* First: the driver keeps at most NVME_MAX_CTRLS (4) controllers, the tests below take 4. */
TEST(a_controller_that_never_gets_ready_is_not_taken)
{
        unsigned before = nvme_count();

        start(F_NEVER_READY, true, false);
        pci_bind(&host);
        EXPECT_EQ(nvme_count(), before);
        EXPECT_CONTAINS(logbuf, "not ready within 500 ms of enabling");
        EXPECT_CONTAINS(logbuf, "driver nvme refused it");
        EXPECT_EQ(fake.fn[0].cfg[4] & PCI_CMD_MASTER, 0);
        EXPECT_EQ(*(volatile uint32_t *)(m.regs + 0x14) & 1, 0); /* disabled again */
        stop();
}

TEST(identify_io_and_the_scratch_selftest)
{
        struct nvme_ctrl *c;
        unsigned before = nvme_count();
        hpa_t pa;
        uint8_t *p;

        start(F_NONE, true, true);
        pci_bind(&host);
        ASSERT_TRUE(nvme_count() == before + 1);
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
                                "KiB per command, polled");
        EXPECT_CONTAINS(logbuf, "namespace 1: 64 blocks of 512 bytes (0 MiB)");
        EXPECT_CONTAINS(logbuf,
                        "scratch namespace 1: wrote, flushed and read back blocks 1-16: ok");
        EXPECT_CONTAINS(logbuf, "taken by driver nvme");
        /* The self-test's pattern reached the device's blocks 1-16 and was flushed. */
        EXPECT_EQ(m.disk[BLOCK], 0x5a);
        EXPECT_EQ(m.disk[BLOCK + 1], 0x61);
        EXPECT_EQ(m.writes, 1);
        EXPECT_EQ(m.flushes, 1);
        EXPECT_EQ(m.disk[17 * BLOCK + 5], (uint8_t)((17 * BLOCK + 5) * 13)); /* untouched */

        /* 32 blocks from a buffer 512 bytes into a page: PRP1 + a PRP list of 4 pages. */
        pa = buffer(5);
        p = hva_ptr(arch_hpa_to_hva(pa));
        EXPECT_EQ(nvme_read(c, 0, 32, 32, hpa_add(pa, 512)), 0);
        for (unsigned i = 0; i < 32 * BLOCK; i++)
                if (p[512 + i] != (uint8_t)((32 * BLOCK + i) * 13)) {
                        TEST_FAIL_AT(__FILE__, __LINE__, "byte %u read wrong", i);
                        break;
                }
        for (unsigned i = 0; i < 32 * BLOCK; i++)
                p[512 + i] = (uint8_t)(i ^ 0xa5);
        EXPECT_EQ(nvme_write(c, 0, 30, 32, hpa_add(pa, 512)), 0);
        EXPECT_EQ(m.disk[30 * BLOCK + 7], 7 ^ 0xa5);
        EXPECT_EQ(m.disk[62 * BLOCK - 1], (uint8_t)((32 * BLOCK - 1) ^ 0xa5));
        EXPECT_EQ(nvme_flush(c, 0), 0);
        EXPECT_EQ(m.flushes, 2);
        /* Refused before the device sees them. */
        EXPECT_EQ(nvme_read(c, 0, 60, 5, pa), -KEEL_EINVAL);            /* past the end */
        EXPECT_EQ(nvme_read(c, 0, 0, 33, pa), -KEEL_EINVAL);            /* over MDTS */
        EXPECT_EQ(nvme_read(c, 1, 0, 1, pa), -KEEL_EINVAL);             /* no such namespace */
        EXPECT_EQ(nvme_read(c, 0, 0, 1, hpa_add(pa, 2)), -KEEL_EINVAL); /* misaligned */
        EXPECT_EQ(m.reads, 3); /* the self-test's two and ours */
        stop();
}

TEST(without_a_volatile_cache_flush_sends_nothing_and_no_scratch_no_write)
{
        struct nvme_ctrl *c;
        unsigned before = nvme_count();

        start(F_NONE, false, false);
        pci_bind(&host);
        ASSERT_TRUE(nvme_count() == before + 1);
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
        EXPECT_CONTAINS(logbuf, "command 0x2 on queue 1 timed out after 500 ms");
        EXPECT_TRUE(c->failed != NULL);
        m.fault = F_NONE;
        t0 = arch_tsc();
        EXPECT_EQ(nvme_read(c, 0, 0, 1, pa), -KEEL_EIO); /* refused at once */
        EXPECT_TRUE(arch_tsc() - t0 < 100000000ull);
        EXPECT_EQ(nvme_flush(c, 0), -KEEL_EIO);
        stop();
}

TEST_MAIN()
