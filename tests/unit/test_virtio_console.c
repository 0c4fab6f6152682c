/*
 * Tests for vmm/virtio_console.c: transmit to the sink, input into receive buffers (split
 * across buffers, dropped and counted without any), wrong-direction buffers (NEEDS_RESET).
 */
#include <keel/check.h>
#include <keel/errno.h>
#include <vmm/virtio.h>

#include "log_capture.h"
#include "test.h"
#include "virtio_fake_driver.h"

#define RXQ (FV_BASE + 0x1000)
#define TXQ (FV_BASE + 0x3000)
#define BUF (FV_BASE + 0x10000)

static struct virtio_console con;
static struct drv_q qs[2];
static char out[256];
static size_t outlen;

static void sink(void *ctx, const uint8_t *buf, size_t len)
{
        EXPECT_TRUE(ctx == &outlen);
        if (len > sizeof(out) - 1 - outlen)
                len = sizeof(out) - 1 - outlen;
        memcpy(out + outlen, buf, len);
        outlen += len;
        out[outlen] = 0;
}

static struct fake_vm *setup(bool init)
{
        struct fake_vm *v = fv_new();

        outlen = 0;
        out[0] = 0;
        virtio_console_init(&con, sink, &outlen);
        fv_attach(v, &con.vdev, "vm2/virtio-console");
        virtio_console_attach(&con, &v->t);
        dq_layout(&qs[0], VIRTIO_CONSOLE_RX, 8, RXQ);
        dq_layout(&qs[1], VIRTIO_CONSOLE_TX, 8, TXQ);
        if (init && fv_linux_init(v, FV_ALL_FEATURES, qs, 2) < 0)
                qs[0].num = 0;
        return v;
}

TEST(identity_and_config)
{
        struct fake_vm *v = setup(true);

        ASSERT_TRUE(qs[0].num);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_DEVICE_ID), 3);
        fv_wr(v, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_DEVICE_FEATURES) & 7, 0); /* no SIZE/MULTIPORT/EMERG */
        EXPECT_EQ(fv_cfg(v, 0, 4), 0);
        EXPECT_EQ(fv_cfg(v, 4, 4), 0);
        fv_wr(v, VIRTIO_MMIO_QUEUE_SEL, 1);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_NUM_MAX), VIRTIO_CONSOLE_QUEUE_SIZE);
        fv_wr(v, VIRTIO_MMIO_QUEUE_SEL, 2);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
        fv_free(v);
}

TEST(transmit)
{
        struct fake_vm *v = setup(true);

        ASSERT_TRUE(qs[0].num);
        memcpy(fv_ptr(v, BUF), "hello ", 6);
        memcpy(fv_ptr(v, BUF + 0x100), "world\n", 6);
        dq_desc(v, &qs[1], 0, BUF, 6, VIRTQ_DESC_F_NEXT, 1);
        dq_desc(v, &qs[1], 1, BUF + 0x100, 6, 0, 0);
        dq_avail(v, &qs[1], 0);
        /* A long buffer, more than one copy chunk. */
        memset(fv_ptr(v, BUF + 0x200), 'x', 150);
        dq_desc(v, &qs[1], 2, BUF + 0x200, 150, 0, 0);
        dq_avail(v, &qs[1], 2);
        dq_notify(v, &qs[1]);
        EXPECT_EQ(outlen, 162);
        EXPECT_EQ(memcmp(out, "hello world\nxxx", 15), 0);
        EXPECT_EQ(dq_used_idx(v, &qs[1]), 2);
        uint32_t id, len;
        dq_used_elem(v, &qs[1], 0, &id, &len);
        EXPECT_EQ(id, 0);
        EXPECT_EQ(len, 0);
        EXPECT_EQ(con.tx_bytes, 162);
        EXPECT_EQ(dq_avail_event(v, &qs[1]), 2);
        /* Notifying the receive queue does not consume its buffers. */
        dq_desc(v, &qs[0], 0, BUF + 0x800, 16, VIRTQ_DESC_F_WRITE, 0);
        dq_avail(v, &qs[0], 0);
        dq_notify(v, &qs[0]);
        EXPECT_EQ(dq_used_idx(v, &qs[0]), 0);
        fv_free(v);
}

TEST(transmit_writable_buffer_needs_reset)
{
        struct fake_vm *v = setup(true);

        capture_start();
        ASSERT_TRUE(qs[0].num);
        dq_desc(v, &qs[1], 0, BUF, 6, VIRTQ_DESC_F_WRITE, 0);
        dq_avail(v, &qs[1], 0);
        dq_notify(v, &qs[1]);
        EXPECT_TRUE(fv_rd(v, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
        EXPECT_TRUE(fv_rd(v, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG_CHANGE);
        EXPECT_CONTAINS(logbuf, "vm2/virtio-console");
        EXPECT_CONTAINS(logbuf, "transmit queue");
        EXPECT_EQ(outlen, 0);
        EXPECT_EQ(dq_used_idx(v, &qs[1]), 0);
        log_set_sink(NULL);
        fv_free(v);
}

TEST(input_fills_receive_buffers)
{
        struct fake_vm *v = setup(true);

        ASSERT_TRUE(qs[0].num);
        for (uint16_t i = 0; i < 3; i++) {
                dq_desc(v, &qs[0], i, BUF + 0x100ull * i, 4, VIRTQ_DESC_F_WRITE, 0);
                dq_avail(v, &qs[0], i);
        }
        EXPECT_EQ(console_input(&con, (const uint8_t *)"abcdefghij", 10), 10);
        EXPECT_EQ(dq_used_idx(v, &qs[0]), 3);
        uint32_t id, len;
        dq_used_elem(v, &qs[0], 2, &id, &len);
        EXPECT_EQ(id, 2);
        EXPECT_EQ(len, 2);
        EXPECT_EQ(memcmp(fv_ptr(v, BUF + 0x100), "efgh", 4), 0);
        EXPECT_EQ(memcmp(fv_ptr(v, BUF + 0x200), "ij", 2), 0);
        EXPECT_TRUE(v->irq_level);
        fv_ack(v);
        /* No buffer left: dropped and counted. */
        EXPECT_EQ(console_input(&con, (const uint8_t *)"zz", 2), 0);
        EXPECT_EQ(con.rx_dropped, 2);
        EXPECT_EQ(con.rx_bytes, 10);
        EXPECT_FALSE(v->irq_level);
        /* One buffer for more input than it holds. */
        dq_desc(v, &qs[0], 5, BUF + 0x400, 4, VIRTQ_DESC_F_WRITE, 0);
        dq_avail(v, &qs[0], 5);
        EXPECT_EQ(console_input(&con, (const uint8_t *)"123456", 6), 4);
        EXPECT_EQ(con.rx_dropped, 4);
        EXPECT_EQ(dq_avail_event(v, &qs[0]), 4);
        EXPECT_TRUE(fv_canaries_ok(v));
        fv_free(v);
}

TEST(input_before_driver_ok_is_dropped)
{
        struct fake_vm *v = setup(false);

        EXPECT_EQ(console_input(&con, (const uint8_t *)"abc", 3), 0);
        EXPECT_EQ(con.rx_dropped, 3);
        /* Unattached device: also dropped, no crash. */
        struct virtio_console c2;
        virtio_console_init(&c2, NULL, NULL);
        EXPECT_EQ(console_input(&c2, (const uint8_t *)"abc", 3), 0);
        EXPECT_EQ(c2.rx_dropped, 3);
        fv_free(v);
}

TEST(readable_receive_buffer_needs_reset)
{
        struct fake_vm *v = setup(true);

        capture_start();
        ASSERT_TRUE(qs[0].num);
        dq_desc(v, &qs[0], 0, BUF, 4, 0, 0);
        dq_avail(v, &qs[0], 0);
        EXPECT_EQ(console_input(&con, (const uint8_t *)"abc", 3), 0);
        EXPECT_TRUE(fv_rd(v, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
        EXPECT_CONTAINS(logbuf, "receive queue");
        EXPECT_EQ(con.rx_dropped, 3);
        /* Transmit still works: only the broken queue stopped. */
        memcpy(fv_ptr(v, BUF + 0x100), "ok\n", 3);
        dq_desc(v, &qs[1], 0, BUF + 0x100, 3, 0, 0);
        dq_avail(v, &qs[1], 0);
        dq_notify(v, &qs[1]);
        EXPECT_STREQ(out, "ok\n");
        log_set_sink(NULL);
        fv_free(v);
}

TEST_MAIN()
