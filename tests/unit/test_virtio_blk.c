/*
 * Tests for vmm/virtio_blk.c through the MMIO transport and real rings in a fake guest RAM:
 * read, write, flush and GET_ID round trips, read-only disks, out-of-range and overflowing
 * sectors, unsupported types, malformed requests (NEEDS_RESET), EVENT_IDX both ways and
 * indirect requests.
 */
#include <keel/check.h>
#include <keel/errno.h>
#include <vmm/virtio.h>

#include "log_capture.h"
#include "test.h"
#include "virtio_fake_driver.h"

#define QBASE   (FV_BASE + 0x1000)
#define HDR     (FV_BASE + 0x8000)
#define DATA    (FV_BASE + 0x10000)
#define STATUS  (FV_BASE + 0x9000)
#define ITAB    (FV_BASE + 0xa000)
#define SECTORS 64

static uint8_t disk[SECTORS * 512];
static struct virtio_blk blk;
static struct drv_q q;

static struct fake_vm *setup(bool ro, uint64_t features)
{
        struct fake_vm *v = fv_new();

        for (size_t i = 0; i < sizeof(disk); i++)
                disk[i] = (uint8_t)(i / 512 * 7 + i);
        virtio_blk_init(&blk, disk, sizeof(disk), ro, "vm1", 0);
        fv_attach(v, &blk.vdev, "vm1/virtio-blk0");
        virtio_blk_attach(&blk, &v->t);
        dq_layout(&q, 0, 16, QBASE);
        if (fv_linux_init(v, features, &q, 1) < 0)
                q.num = 0;
        return v;
}

static void put_hdr(struct fake_vm *v, uint32_t type, uint64_t sector)
{
        uint8_t *h = fv_ptr(v, HDR);

        memset(h, 0, 16);
        memcpy(h, &type, 4);
        memcpy(h + 8, &sector, 8);
}

/*
 * Submit header + one data buffer (dlen bytes at DATA, device-writable if `in`) + status as
 * descriptors 0..2 (no data descriptor if dlen == 0), notify; returns the status byte.
 */
static uint8_t request(struct fake_vm *v, uint32_t type, uint64_t sector, uint32_t dlen, bool in)
{
        uint16_t st_desc = dlen ? 2 : 1;

        put_hdr(v, type, sector);
        *(uint8_t *)fv_ptr(v, STATUS) = 0xee;
        dq_desc(v, &q, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
        if (dlen)
                dq_desc(v, &q, 1, DATA, dlen, VIRTQ_DESC_F_NEXT | (in ? VIRTQ_DESC_F_WRITE : 0), 2);
        dq_desc(v, &q, st_desc, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
        dq_avail(v, &q, 0);
        dq_notify(v, &q);
        return *(uint8_t *)fv_ptr(v, STATUS);
}

static uint32_t last_used_len(struct fake_vm *v)
{
        uint32_t id, len;

        dq_used_elem(v, &q, (uint16_t)(dq_used_idx(v, &q) - 1), &id, &len);
        return len;
}

TEST(config_space)
{
        struct fake_vm *v = setup(false, FV_ALL_FEATURES);

        ASSERT_TRUE(q.num);
        EXPECT_EQ(fv_cfg(v, 0, 8), SECTORS);
        EXPECT_EQ(fv_cfg(v, 0, 4), SECTORS);
        EXPECT_EQ(fv_cfg(v, 4, 4), 0);
        EXPECT_EQ(fv_cfg(v, 8, 4), VIRTIO_BLK_SIZE_MAX);
        EXPECT_EQ(fv_cfg(v, 12, 4), VIRTIO_BLK_QUEUE_SIZE - 2);
        EXPECT_EQ(fv_cfg(v, 20, 4), 512);
        EXPECT_EQ(fv_cfg(v, 0, 1), SECTORS);
        EXPECT_EQ(fv_cfg(v, 0x80, 4), 0); /* past the config image */
        EXPECT_EQ(fv_cfg(v, 0xfc, 8), 0); /* past the window */
        uint64_t x = 5;
        virtio_mmio_read(&v->t, VIRTIO_MMIO_CONFIG, 3, &x); /* odd size */
        EXPECT_EQ(x, 0);
        virtio_mmio_write(&v->t, VIRTIO_MMIO_CONFIG, 4, 1234); /* read-only: ignored */
        EXPECT_EQ(fv_cfg(v, 0, 8), SECTORS);
        fv_free(v);
}

TEST(read_write_flush_get_id)
{
        struct fake_vm *v = setup(false, FV_ALL_FEATURES);

        ASSERT_TRUE(q.num);
        /* Read sectors 3-4. */
        EXPECT_EQ(request(v, VIRTIO_BLK_T_IN, 3, 1024, true), VIRTIO_BLK_S_OK);
        EXPECT_EQ(memcmp(fv_ptr(v, DATA), disk + 3 * 512, 1024), 0);
        EXPECT_EQ(last_used_len(v), 1025);
        EXPECT_EQ(dq_used_idx(v, &q), 1);
        EXPECT_TRUE(fv_ack(v) & VIRTIO_INT_USED_BUFFER);
        EXPECT_FALSE(v->irq_level);
        /* Write sector 10, then read it back through the ring. */
        memset(fv_ptr(v, DATA), 0x5a, 512);
        EXPECT_EQ(request(v, VIRTIO_BLK_T_OUT, 10, 512, false), VIRTIO_BLK_S_OK);
        EXPECT_EQ(disk[10 * 512], 0x5a);
        EXPECT_EQ(disk[11 * 512 - 1], 0x5a);
        EXPECT_NE(disk[11 * 512], 0x5a);
        EXPECT_EQ(last_used_len(v), 1);
        memset(fv_ptr(v, DATA), 0, 512);
        EXPECT_EQ(request(v, VIRTIO_BLK_T_IN, 10, 512, true), VIRTIO_BLK_S_OK);
        EXPECT_EQ(*(uint8_t *)fv_ptr(v, DATA + 100), 0x5a);
        /* Last sector. */
        EXPECT_EQ(request(v, VIRTIO_BLK_T_IN, SECTORS - 1, 512, true), VIRTIO_BLK_S_OK);
        /* Flush. */
        EXPECT_EQ(request(v, VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
        EXPECT_EQ(blk.flushes, 1);
        /* GET_ID: 20 bytes, zero-padded. */
        memset(fv_ptr(v, DATA), 0xff, 20);
        EXPECT_EQ(request(v, VIRTIO_BLK_T_GET_ID, 0, 20, true), VIRTIO_BLK_S_OK);
        EXPECT_EQ(memcmp(fv_ptr(v, DATA), "keel-vm1-0\0\0\0\0\0\0\0\0\0\0", 20), 0);
        EXPECT_EQ(last_used_len(v), 21);
        EXPECT_EQ(blk.reads, 3);
        EXPECT_EQ(blk.writes, 1);
        EXPECT_EQ(dq_used_idx(v, &q), 6);
        EXPECT_FALSE(fv_rd(v, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
        EXPECT_TRUE(fv_canaries_ok(v));
        fv_free(v);
}

TEST(serial_is_truncated_to_20_bytes)
{
        struct virtio_blk b;

        virtio_blk_init(&b, disk, sizeof(disk), false, "a-very-long-vm-name", 12);
        EXPECT_EQ(strlen(b.serial), 20);
        EXPECT_EQ(memcmp(b.serial, "keel-a-very-long-vm-", 20), 0);
        /* A partial last sector is not exposed. */
        virtio_blk_init(&b, disk, 1000, false, "x", 0);
        EXPECT_EQ(b.sectors, 1);
}

TEST(read_only_disk)
{
        struct fake_vm *v = setup(true, FV_ALL_FEATURES);

        ASSERT_TRUE(q.num);
        fv_wr(v, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
        EXPECT_TRUE(fv_rd(v, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << VIRTIO_BLK_F_RO));
        uint8_t before = disk[512];
        memset(fv_ptr(v, DATA), 0x77, 512);
        EXPECT_EQ(request(v, VIRTIO_BLK_T_OUT, 1, 512, false), VIRTIO_BLK_S_IOERR);
        EXPECT_EQ(disk[512], before);
        EXPECT_EQ(request(v, VIRTIO_BLK_T_IN, 1, 512, true), VIRTIO_BLK_S_OK);
        EXPECT_EQ(request(v, VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
        EXPECT_EQ(blk.errors, 1);
        fv_free(v);
}

TEST(out_of_range_sectors)
{
        struct fake_vm *v = setup(false, FV_ALL_FEATURES);

        ASSERT_TRUE(q.num);
        EXPECT_EQ(request(v, VIRTIO_BLK_T_IN, SECTORS, 512, true), VIRTIO_BLK_S_IOERR);
        EXPECT_EQ(request(v, VIRTIO_BLK_T_IN, SECTORS - 1, 1024, true), VIRTIO_BLK_S_IOERR);
        EXPECT_EQ(request(v, VIRTIO_BLK_T_OUT, SECTORS - 1, 1024, false), VIRTIO_BLK_S_IOERR);
        /* sector * 512 and sector + count overflow 64 bits. */
        EXPECT_EQ(request(v, VIRTIO_BLK_T_IN, 0xffffffffffffffffull, 512, true),
                  VIRTIO_BLK_S_IOERR);
        EXPECT_EQ(request(v, VIRTIO_BLK_T_OUT, 1ull << 55, 512, false), VIRTIO_BLK_S_IOERR);
        EXPECT_EQ(request(v, VIRTIO_BLK_T_IN, 0x007fffffffffffffull, 1024, true),
                  VIRTIO_BLK_S_IOERR);
        /* Not a whole number of sectors. */
        EXPECT_EQ(request(v, VIRTIO_BLK_T_IN, 0, 100, true), VIRTIO_BLK_S_IOERR);
        /* Zero-length read at the end: empty range, fine. */
        EXPECT_EQ(request(v, VIRTIO_BLK_T_IN, SECTORS, 0, true), VIRTIO_BLK_S_OK);
        /* Unsupported types. */
        EXPECT_EQ(request(v, 11 /* DISCARD */, 0, 0, false), VIRTIO_BLK_S_UNSUPP);
        EXPECT_EQ(request(v, 0xdeadbeef, 0, 512, true), VIRTIO_BLK_S_UNSUPP);
        EXPECT_FALSE(fv_rd(v, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
        EXPECT_TRUE(fv_canaries_ok(v));
        fv_free(v);
}

/* A malformed request must set NEEDS_RESET, raise a config interrupt, not complete. */
static void expect_needs_reset(struct fake_vm *v, const char *what)
{
        EXPECT_TRUE(fv_rd(v, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
        EXPECT_TRUE(fv_rd(v, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG_CHANGE);
        EXPECT_EQ(dq_used_idx(v, &q), 0);
        EXPECT_CONTAINS(logbuf, what);
        EXPECT_CONTAINS(logbuf, "vm1/virtio-blk0");
        EXPECT_TRUE(fv_canaries_ok(v));
}

TEST(malformed_requests)
{
        struct fake_vm *v;

        capture_start();
        /* Header too short. */
        v = setup(false, FV_ALL_FEATURES);
        dq_desc(v, &q, 0, HDR, 8, VIRTQ_DESC_F_NEXT, 1);
        dq_desc(v, &q, 1, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
        dq_avail(v, &q, 0);
        dq_notify(v, &q);
        expect_needs_reset(v, "header");
        fv_free(v);
        /* No status byte. */
        capture_start();
        v = setup(false, FV_ALL_FEATURES);
        put_hdr(v, VIRTIO_BLK_T_FLUSH, 0);
        dq_desc(v, &q, 0, HDR, 16, 0, 0);
        dq_avail(v, &q, 0);
        dq_notify(v, &q);
        expect_needs_reset(v, "status byte");
        fv_free(v);
        /* Read whose data the device would have to read (wrong direction). */
        capture_start();
        v = setup(false, FV_ALL_FEATURES);
        request(v, VIRTIO_BLK_T_IN, 0, 512, false);
        expect_needs_reset(v, "block read with device-readable data");
        fv_free(v);
        /* Write whose data is device-writable. */
        capture_start();
        v = setup(false, FV_ALL_FEATURES);
        request(v, VIRTIO_BLK_T_OUT, 0, 512, true);
        expect_needs_reset(v, "block write with device-writable data");
        EXPECT_EQ(blk.writes, 0);
        fv_free(v);
        /* Data buffer outside RAM. */
        capture_start();
        v = setup(false, FV_ALL_FEATURES);
        put_hdr(v, VIRTIO_BLK_T_IN, 0);
        dq_desc(v, &q, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
        dq_desc(v, &q, 1, FV_BASE + FV_SIZE - 256, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
        dq_desc(v, &q, 2, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
        dq_avail(v, &q, 0);
        dq_notify(v, &q);
        expect_needs_reset(v, "outside guest RAM");
        fv_free(v);
        log_set_sink(NULL);
}

TEST(header_split_across_descriptors)
{
        struct fake_vm *v = setup(false, FV_ALL_FEATURES);

        ASSERT_TRUE(q.num);
        put_hdr(v, VIRTIO_BLK_T_IN, 2);
        dq_desc(v, &q, 0, HDR, 5, VIRTQ_DESC_F_NEXT, 1);
        dq_desc(v, &q, 1, HDR + 5, 11, VIRTQ_DESC_F_NEXT, 2);
        dq_desc(v, &q, 2, DATA, 300, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 3);
        dq_desc(v, &q, 3, DATA + 0x1000, 212, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 4);
        dq_desc(v, &q, 4, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
        dq_avail(v, &q, 0);
        dq_notify(v, &q);
        EXPECT_EQ(*(uint8_t *)fv_ptr(v, STATUS), VIRTIO_BLK_S_OK);
        EXPECT_EQ(memcmp(fv_ptr(v, DATA), disk + 1024, 300), 0);
        EXPECT_EQ(memcmp(fv_ptr(v, DATA + 0x1000), disk + 1024 + 300, 212), 0);
        fv_free(v);
}

TEST(indirect_request)
{
        struct fake_vm *v = setup(false, FV_ALL_FEATURES);

        ASSERT_TRUE(q.num);
        put_hdr(v, VIRTIO_BLK_T_OUT, 5);
        memset(fv_ptr(v, DATA), 0x42, 1024);
        dq_idesc(v, ITAB, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
        dq_idesc(v, ITAB, 1, DATA, 1024, VIRTQ_DESC_F_NEXT, 2);
        dq_idesc(v, ITAB, 2, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
        dq_desc(v, &q, 7, ITAB, 48, VIRTQ_DESC_F_INDIRECT, 0);
        dq_avail(v, &q, 7);
        dq_notify(v, &q);
        EXPECT_EQ(*(uint8_t *)fv_ptr(v, STATUS), VIRTIO_BLK_S_OK);
        EXPECT_EQ(disk[5 * 512], 0x42);
        EXPECT_EQ(disk[7 * 512 - 1], 0x42);
        uint32_t id, len;
        dq_used_elem(v, &q, 0, &id, &len);
        EXPECT_EQ(id, 7);
        fv_free(v);

        /* Not negotiated: a violation. */
        capture_start();
        v = setup(false, VIRTIO_BIT(VIRTIO_F_VERSION_1));
        ASSERT_TRUE(q.num);
        dq_desc(v, &q, 7, ITAB, 48, VIRTQ_DESC_F_INDIRECT, 0);
        dq_avail(v, &q, 7);
        dq_notify(v, &q);
        expect_needs_reset(v, "INDIRECT");
        log_set_sink(NULL);
        fv_free(v);
}

TEST(event_idx_both_ways)
{
        struct fake_vm *v = setup(false, FV_ALL_FEATURES);

        ASSERT_TRUE(q.num);
        /* Driver: interrupt me only when used->idx passes 2 (i.e. after the third request). */
        dq_set_used_event(v, &q, 2);
        request(v, VIRTIO_BLK_T_FLUSH, 0, 0, false);
        EXPECT_EQ(v->irq_raises, 0);
        EXPECT_EQ(dq_avail_event(v, &q), 1); /* device: notify me at the next buffer */
        request(v, VIRTIO_BLK_T_FLUSH, 0, 0, false);
        EXPECT_EQ(v->irq_raises, 0);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
        request(v, VIRTIO_BLK_T_FLUSH, 0, 0, false);
        EXPECT_EQ(v->irq_raises, 1);
        EXPECT_EQ(dq_used_idx(v, &q), 3);
        EXPECT_EQ(dq_avail_event(v, &q), 3);
        fv_ack(v);
        /* Several requests in one notify: all served, avail_event at the end. */
        for (uint16_t i = 0; i < 4; i++) {
                put_hdr(v, VIRTIO_BLK_T_FLUSH, 0);
                dq_desc(v, &q, (uint16_t)(2 * i), HDR, 16, VIRTQ_DESC_F_NEXT,
                        (uint16_t)(2 * i + 1));
                dq_desc(v, &q, (uint16_t)(2 * i + 1), STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
                dq_avail(v, &q, (uint16_t)(2 * i));
        }
        dq_set_used_event(v, &q, 3);
        dq_notify(v, &q);
        EXPECT_EQ(dq_used_idx(v, &q), 7);
        EXPECT_EQ(dq_avail_event(v, &q), 7);
        EXPECT_EQ(v->irq_raises, 2);
        fv_free(v);

        /* Without EVENT_IDX, every completion interrupts unless NO_INTERRUPT. */
        v = setup(false, VIRTIO_BIT(VIRTIO_F_VERSION_1));
        ASSERT_TRUE(q.num);
        request(v, VIRTIO_BLK_T_FLUSH, 0, 0, false);
        EXPECT_EQ(v->irq_raises, 1);
        fv_ack(v);
        fv_put16(v, q.avail, VIRTQ_AVAIL_F_NO_INTERRUPT);
        request(v, VIRTIO_BLK_T_FLUSH, 0, 0, false);
        EXPECT_EQ(v->irq_raises, 1);
        EXPECT_EQ(dq_used_idx(v, &q), 2);
        fv_free(v);
}

TEST(hostile_ring_through_the_device)
{
        struct fake_vm *v = setup(false, FV_ALL_FEATURES);

        capture_start();
        ASSERT_TRUE(q.num);
        /* avail->idx jumps by more than the queue size. */
        fv_put16(v, q.avail + 2, 17);
        dq_notify(v, &q);
        expect_needs_reset(v, "avail->idx");
        /* The device stays stopped until reset. */
        fv_put16(v, q.avail + 2, 1);
        dq_notify(v, &q);
        EXPECT_EQ(dq_used_idx(v, &q), 0);
        log_set_sink(NULL);
        fv_free(v);
}

TEST_MAIN()
