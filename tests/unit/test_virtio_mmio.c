/*
 * Tests for vmm/virtio_mmio.c: identity registers, the Linux handshake, feature negotiation
 * refusals, every illegal status transition, queue setup validation, interrupts, reset, and
 * the one log line of a violation. The device is a virtio-blk over a small image.
 */
#include <keel/check.h>
#include <keel/errno.h>
#include <vmm/virtio.h>

#include "log_capture.h"
#include "test.h"
#include "virtio_fake_driver.h"

#define QBASE (FV_BASE + 0x1000)
#define V1    VIRTIO_BIT(VIRTIO_F_VERSION_1)

static uint8_t disk[64 * 512];
static struct virtio_blk blk;

static struct fake_vm *setup(void)
{
        struct fake_vm *v = fv_new();

        virtio_blk_init(&blk, disk, sizeof(disk), false, "vm1", 0);
        if (fv_attach(v, &blk.vdev, "vm1/virtio-blk0") == 0)
                virtio_blk_attach(&blk, &v->t);
        return v;
}

static uint32_t status(struct fake_vm *v)
{
        return fv_rd(v, VIRTIO_MMIO_STATUS);
}

static void set_status(struct fake_vm *v, uint32_t s)
{
        fv_wr(v, VIRTIO_MMIO_STATUS, s);
}

/* ACKNOWLEDGE, DRIVER, accept `features`, try FEATURES_OK; returns the status read back. */
static uint32_t negotiate(struct fake_vm *v, uint64_t features)
{
        set_status(v, 0);
        set_status(v, VIRTIO_STATUS_ACKNOWLEDGE);
        set_status(v, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
        fv_wr(v, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
        fv_wr(v, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
        fv_wr(v, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
        fv_wr(v, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
        set_status(v, status(v) | VIRTIO_STATUS_FEATURES_OK);
        return status(v);
}

TEST(init_rejects_bad_devices)
{
        struct fake_vm *v = fv_new();
        struct virtio_device d = {.device_id = 2, .num_queues = 1, .queue_max = 16, .features = V1};
        static bool (*const notify)(void *, struct virtio_mmio *, unsigned) = NULL;

        d.queue_notify = notify;
        EXPECT_EQ(fv_attach(v, &d, "x"), -KEEL_EINVAL); /* no notify callback */
        virtio_blk_init(&blk, disk, sizeof(disk), false, "vm1", 0);
        d = blk.vdev;
        d.queue_max = 24;
        EXPECT_EQ(fv_attach(v, &d, "x"), -KEEL_EINVAL);
        d.queue_max = 512;
        EXPECT_EQ(fv_attach(v, &d, "x"), -KEEL_EINVAL);
        d.queue_max = 16;
        d.num_queues = VIRTIO_MAX_QUEUES + 1;
        EXPECT_EQ(fv_attach(v, &d, "x"), -KEEL_EINVAL);
        d.num_queues = 1;
        d.features = 0;
        EXPECT_EQ(fv_attach(v, &d, "x"), -KEEL_EINVAL);
        d.features = V1;
        EXPECT_EQ(fv_attach(v, &d, "x"), 0);
        fv_free(v);
}

TEST(identity_registers)
{
        struct fake_vm *v = setup();

        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_VERSION), 2);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BLOCK);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_VENDOR_ID), 0x4b45454c);
        EXPECT_EQ(status(v), 0);
        fv_wr(v, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_DEVICE_FEATURES), 1); /* VERSION_1 = bit 32 */
        fv_wr(v, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
        uint32_t lo = fv_rd(v, VIRTIO_MMIO_DEVICE_FEATURES);
        EXPECT_TRUE(lo & (1u << VIRTIO_RING_F_EVENT_IDX));
        EXPECT_TRUE(lo & (1u << VIRTIO_RING_F_INDIRECT_DESC));
        EXPECT_TRUE(lo & (1u << VIRTIO_BLK_F_FLUSH));
        EXPECT_FALSE(lo & (1u << VIRTIO_BLK_F_RO));
        fv_wr(v, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_DEVICE_FEATURES), 0);
        /* Registers are 32-bit: other widths and unaligned offsets read 0. */
        uint64_t x = 1;
        virtio_mmio_read(&v->t, VIRTIO_MMIO_MAGIC_VALUE, 2, &x);
        EXPECT_EQ(x, 0);
        virtio_mmio_read(&v->t, VIRTIO_MMIO_MAGIC_VALUE + 1, 4, &x);
        EXPECT_EQ(x, 0);
        virtio_mmio_write(&v->t, VIRTIO_MMIO_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE);
        EXPECT_EQ(status(v), 0);
        /* Through the bus ops too. */
        virtio_mmio_ops.read(&v->t, VIRTIO_MMIO_VERSION, 4, &x);
        EXPECT_EQ(x, 2);
        fv_free(v);
}

TEST(linux_handshake)
{
        struct fake_vm *v = setup();
        struct drv_q q;

        dq_layout(&q, 0, 128, QBASE);
        EXPECT_EQ(fv_linux_init(v, FV_ALL_FEATURES, &q, 1), 0);
        EXPECT_EQ(status(v), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
        EXPECT_TRUE(virtio_mmio_running(&v->t));
        EXPECT_TRUE(v->t.queues[0].event_idx);
        EXPECT_TRUE(v->t.queues[0].indirect);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_NUM_MAX), 128);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_DESC_LOW), (uint32_t)q.desc);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_DEVICE_LOW), (uint32_t)q.used);
        /* Queue 1 does not exist. */
        fv_wr(v, VIRTIO_MMIO_QUEUE_SEL, 1);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_READY), 0);
        /* Linux's remove: reset, then per queue QueueSel, QueueReady = 0, QueueReady reads 0. */
        set_status(v, 0);
        EXPECT_EQ(status(v), 0);
        fv_wr(v, VIRTIO_MMIO_QUEUE_SEL, 0);
        fv_wr(v, VIRTIO_MMIO_QUEUE_READY, 0);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_READY), 0);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_DESC_LOW), 0);
        /* And it can be brought up again with fewer features. */
        EXPECT_EQ(fv_linux_init(v, V1, &q, 1), 0);
        EXPECT_FALSE(v->t.queues[0].event_idx);
        fv_free(v);
}

TEST(feature_negotiation_refusals)
{
        struct fake_vm *v = setup();

        /* Without VERSION_1. */
        EXPECT_FALSE(negotiate(v, VIRTIO_BIT(VIRTIO_BLK_F_FLUSH)) & VIRTIO_STATUS_FEATURES_OK);
        EXPECT_EQ(status(v), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
        /* A feature the device does not offer (RO on a writable disk; bit 40). */
        EXPECT_FALSE(negotiate(v, V1 | VIRTIO_BIT(VIRTIO_BLK_F_RO)) & VIRTIO_STATUS_FEATURES_OK);
        EXPECT_FALSE(negotiate(v, V1 | VIRTIO_BIT(40)) & VIRTIO_STATUS_FEATURES_OK);
        /* A bit in a feature window beyond 63. */
        set_status(v, 0);
        set_status(v, VIRTIO_STATUS_ACKNOWLEDGE);
        set_status(v, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
        fv_wr(v, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
        fv_wr(v, VIRTIO_MMIO_DRIVER_FEATURES, 1);
        fv_wr(v, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 2);
        fv_wr(v, VIRTIO_MMIO_DRIVER_FEATURES, 4);
        set_status(v, status(v) | VIRTIO_STATUS_FEATURES_OK);
        EXPECT_FALSE(status(v) & VIRTIO_STATUS_FEATURES_OK);
        /* Features written outside the DRIVER step do not count. */
        set_status(v, 0);
        set_status(v, VIRTIO_STATUS_ACKNOWLEDGE);
        fv_wr(v, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
        fv_wr(v, VIRTIO_MMIO_DRIVER_FEATURES, 1);
        set_status(v, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
        set_status(v, status(v) | VIRTIO_STATUS_FEATURES_OK);
        EXPECT_FALSE(status(v) & VIRTIO_STATUS_FEATURES_OK);
        /* The accepted set: VERSION_1 and a subset of the offer. */
        EXPECT_TRUE(negotiate(v, V1 | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH)) & VIRTIO_STATUS_FEATURES_OK);
        /* Features cannot change after FEATURES_OK. */
        fv_wr(v, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
        fv_wr(v, VIRTIO_MMIO_DRIVER_FEATURES, 0);
        EXPECT_EQ(v->t.driver_features, V1 | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH));
        fv_free(v);
}

/*
 * From each step of the sequence, every driver-written value except the next step, the
 * current value, 0 (reset) and FAILED values is refused and leaves Status unchanged.
 */
TEST(every_illegal_status_transition)
{
        static const uint32_t steps[] = {
            0,
            VIRTIO_STATUS_ACKNOWLEDGE,
            VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER,
            VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK,
            VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
                VIRTIO_STATUS_DRIVER_OK,
        };
        struct fake_vm *v = setup();
        unsigned refused = 0;

        for (unsigned s = 0; s < ARRAY_SIZE(steps); s++) {
                for (uint32_t val = 1; val < 0x100; val++) {
                        if (val & (VIRTIO_STATUS_FAILED | VIRTIO_STATUS_NEEDS_RESET))
                                continue;
                        /* Walk to step s the legal way. */
                        set_status(v, 0);
                        for (unsigned k = 1; k <= s; k++) {
                                set_status(v, steps[k]);
                                if (k == 2) { /* accept VERSION_1 so FEATURES_OK can stick */
                                        fv_wr(v, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
                                        fv_wr(v, VIRTIO_MMIO_DRIVER_FEATURES, 1);
                                }
                        }
                        ASSERT_TRUE(status(v) == steps[s]);
                        set_status(v, val);
                        bool legal =
                            val == steps[s] || (s + 1 < ARRAY_SIZE(steps) && val == steps[s + 1]);
                        if (legal) {
                                EXPECT_EQ(status(v), val);
                        } else {
                                EXPECT_EQ(status(v), steps[s]);
                                refused++;
                        }
                }
        }
        EXPECT_EQ(refused, 5 * 63 - 8); /* 0x01-0x3f from 5 steps, minus 8 legal */
        /* Writes above bit 7 are not a status. */
        set_status(v, 0);
        set_status(v, 0x101);
        EXPECT_EQ(status(v), 0);
        fv_free(v);
}

TEST(failed_and_needs_reset_bits)
{
        struct fake_vm *v = setup();

        /* FAILED from any step; then only a reset is accepted. */
        set_status(v, VIRTIO_STATUS_FAILED);
        EXPECT_EQ(status(v), VIRTIO_STATUS_FAILED);
        set_status(v, VIRTIO_STATUS_ACKNOWLEDGE);
        EXPECT_EQ(status(v), VIRTIO_STATUS_FAILED);
        set_status(v, 0);
        set_status(v, VIRTIO_STATUS_ACKNOWLEDGE);
        set_status(v, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_FAILED);
        EXPECT_EQ(status(v), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_FAILED);
        EXPECT_FALSE(virtio_mmio_running(&v->t));
        /* NEEDS_RESET is the device's: a driver cannot set it. */
        set_status(v, 0);
        set_status(v, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_NEEDS_RESET);
        EXPECT_EQ(status(v), VIRTIO_STATUS_ACKNOWLEDGE);
        fv_free(v);
}

TEST(queue_registers_only_in_setup_window)
{
        struct fake_vm *v = setup();
        struct drv_q q;

        dq_layout(&q, 0, 16, QBASE);
        /* Before FEATURES_OK: ignored. */
        set_status(v, VIRTIO_STATUS_ACKNOWLEDGE);
        set_status(v, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
        fv_wr(v, VIRTIO_MMIO_QUEUE_NUM, 16);
        fv_wr(v, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)q.desc);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_NUM), 128);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_DESC_LOW), 0);
        /* After DRIVER_OK: ignored. */
        EXPECT_EQ(fv_linux_init(v, FV_ALL_FEATURES, &q, 1), 0);
        fv_wr(v, VIRTIO_MMIO_QUEUE_READY, 0);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_READY), 1);
        fv_wr(v, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)q.desc + 0x1000);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_DESC_LOW), (uint32_t)q.desc);
        /* While ready (before DRIVER_OK): addresses and size frozen. */
        EXPECT_TRUE(negotiate(v, V1) & VIRTIO_STATUS_FEATURES_OK);
        fv_wr(v, VIRTIO_MMIO_QUEUE_NUM, 16);
        fv_wr(v, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)q.desc);
        fv_wr(v, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)q.avail);
        fv_wr(v, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)q.used);
        fv_wr(v, VIRTIO_MMIO_QUEUE_READY, 1);
        ASSERT_TRUE(fv_rd(v, VIRTIO_MMIO_QUEUE_READY) == 1);
        fv_wr(v, VIRTIO_MMIO_QUEUE_NUM, 8);
        fv_wr(v, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)q.used + 4);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_NUM), 16);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_DEVICE_LOW), (uint32_t)q.used);
        /* Un-ready in the window makes them writable again. */
        fv_wr(v, VIRTIO_MMIO_QUEUE_READY, 0);
        fv_wr(v, VIRTIO_MMIO_QUEUE_NUM, 8);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_NUM), 8);
        /* A missing queue takes nothing. */
        fv_wr(v, VIRTIO_MMIO_QUEUE_SEL, 3);
        fv_wr(v, VIRTIO_MMIO_QUEUE_NUM, 8);
        fv_wr(v, VIRTIO_MMIO_QUEUE_READY, 1);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_READY), 0);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_NUM), 0);
        fv_free(v);
}

/* Set queue 0 up with the given values after FEATURES_OK; returns QueueReady read back. */
static uint32_t try_queue(struct fake_vm *v, uint32_t num, uint64_t desc, uint64_t avail,
                          uint64_t used)
{
        negotiate(v, V1);
        fv_wr(v, VIRTIO_MMIO_QUEUE_SEL, 0);
        fv_wr(v, VIRTIO_MMIO_QUEUE_NUM, num);
        fv_wr(v, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
        fv_wr(v, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
        fv_wr(v, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)avail);
        fv_wr(v, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(avail >> 32));
        fv_wr(v, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
        fv_wr(v, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(used >> 32));
        fv_wr(v, VIRTIO_MMIO_QUEUE_READY, 1);
        return fv_rd(v, VIRTIO_MMIO_QUEUE_READY);
}

TEST(queue_setup_validation)
{
        struct fake_vm *v = setup();
        struct drv_q q;
        const uint64_t end = FV_BASE + FV_SIZE;

        dq_layout(&q, 0, 16, QBASE);
        EXPECT_EQ(try_queue(v, 16, q.desc, q.avail, q.used), 1);
        /* QueueNum: not a power of two, zero, above the maximum (the write is refused). */
        negotiate(v, V1);
        fv_wr(v, VIRTIO_MMIO_QUEUE_NUM, 12);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_NUM), 128);
        fv_wr(v, VIRTIO_MMIO_QUEUE_NUM, 0);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_NUM), 128);
        fv_wr(v, VIRTIO_MMIO_QUEUE_NUM, 256);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_NUM), 128);
        /* Alignment: desc 16, driver 2, device 4. */
        EXPECT_EQ(try_queue(v, 16, q.desc + 8, q.avail, q.used), 0);
        EXPECT_EQ(try_queue(v, 16, q.desc, q.avail + 1, q.used), 0);
        EXPECT_EQ(try_queue(v, 16, q.desc, q.avail, q.used + 2), 0);
        /* Inside RAM, whole ring, no wrap-around, upper halves count. */
        EXPECT_EQ(try_queue(v, 16, end - 16 * 8, q.avail, q.used), 0);
        EXPECT_EQ(try_queue(v, 16, q.desc, end - 8, q.used), 0);
        EXPECT_EQ(try_queue(v, 16, q.desc, q.avail, end - 100), 0);
        EXPECT_EQ(try_queue(v, 16, q.desc | 1ull << 32, q.avail, q.used), 0);
        EXPECT_EQ(try_queue(v, 16, 0xfffffffffffffff0ull, q.avail, q.used), 0);
        EXPECT_EQ(try_queue(v, 16, 0, q.avail, q.used), 0);
        /* Right at the end is fine. */
        EXPECT_EQ(try_queue(v, 16, end - 16 * 16, q.avail, q.used), 1);
        /* QueueReady values other than 0 and 1 are refused. */
        negotiate(v, V1);
        EXPECT_EQ(try_queue(v, 16, q.desc, q.avail, q.used), 1);
        negotiate(v, V1);
        fv_wr(v, VIRTIO_MMIO_QUEUE_READY, 2);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_QUEUE_READY), 0);
        fv_free(v);
}

TEST(interrupt_ack_and_reset)
{
        struct fake_vm *v = setup();

        virtio_mmio_config_changed(&v->t);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_CONFIG_GENERATION), 1);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_INT_CONFIG_CHANGE);
        EXPECT_TRUE(v->irq_level);
        fv_wr(v, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_INT_USED_BUFFER);
        EXPECT_TRUE(v->irq_level);
        fv_wr(v, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_INT_CONFIG_CHANGE);
        EXPECT_FALSE(v->irq_level);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
        /* A reset drops a pending interrupt. */
        virtio_mmio_config_changed(&v->t);
        set_status(v, 0);
        EXPECT_FALSE(v->irq_level);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
        /* Read-only registers ignore writes. */
        fv_wr(v, VIRTIO_MMIO_MAGIC_VALUE, 0);
        EXPECT_EQ(fv_rd(v, VIRTIO_MMIO_MAGIC_VALUE), VIRTIO_MMIO_MAGIC);
        fv_free(v);
}

TEST(notify_before_driver_ok_is_ignored)
{
        struct fake_vm *v = setup();
        struct drv_q q;

        dq_layout(&q, 0, 16, QBASE);
        EXPECT_EQ(try_queue(v, 16, q.desc, q.avail, q.used), 1);
        dq_desc(v, &q, 0, FV_BASE + 0x10000, 16, VIRTQ_DESC_F_NEXT, 1);
        dq_desc(v, &q, 1, FV_BASE + 0x10100, 1, VIRTQ_DESC_F_WRITE, 0);
        dq_avail(v, &q, 0);
        dq_notify(v, &q);
        EXPECT_EQ(dq_used_idx(v, &q), 0);
        /* After DRIVER_OK the same notify is served. */
        set_status(v, status(v) | VIRTIO_STATUS_DRIVER_OK);
        dq_notify(v, &q);
        EXPECT_EQ(dq_used_idx(v, &q), 1);
        /* Notify for a queue that does not exist: nothing. */
        fv_wr(v, VIRTIO_MMIO_QUEUE_NOTIFY, 7);
        EXPECT_EQ(status(v) & VIRTIO_STATUS_NEEDS_RESET, 0);
        fv_free(v);
}

TEST(violation_sets_needs_reset_and_logs_one_line)
{
        struct fake_vm *v = setup();
        struct drv_q q;

        capture_start();
        dq_layout(&q, 0, 16, QBASE);
        ASSERT_TRUE(fv_linux_init(v, FV_ALL_FEATURES, &q, 1) == 0);
        dq_desc(v, &q, 0, FV_BASE + 0x10000, 16, VIRTQ_DESC_F_NEXT, 0); /* loop */
        dq_avail(v, &q, 0);
        dq_notify(v, &q);
        EXPECT_TRUE(status(v) & VIRTIO_STATUS_NEEDS_RESET);
        EXPECT_TRUE(fv_rd(v, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG_CHANGE);
        EXPECT_TRUE(v->irq_level);
        /* More notifies: no more processing, no more lines. */
        dq_notify(v, &q);
        dq_notify(v, &q);
        EXPECT_CONTAINS(logbuf, "vm1/virtio-blk0");
        EXPECT_CONTAINS(logbuf, "loop");
        int lines = 0;
        for (const char *p = logbuf; *p; p++)
                lines += *p == '\n';
        EXPECT_EQ(lines, 1);
        /* Linux writes status | bit with the NEEDS_RESET bit in it: still legal. */
        EXPECT_EQ(dq_used_idx(v, &q), 0);
        /* Reset and bring-up clear it. */
        memset(fv_ptr(v, q.desc), 0, 4096);
        dq_layout(&q, 0, 16, QBASE);
        EXPECT_EQ(fv_linux_init(v, FV_ALL_FEATURES, &q, 1), 0);
        EXPECT_FALSE(status(v) & VIRTIO_STATUS_NEEDS_RESET);
        EXPECT_TRUE(fv_canaries_ok(v));
        log_set_sink(NULL);
        fv_free(v);
}

TEST(log_budget_bounds_a_noisy_guest)
{
        struct fake_vm *v = setup();

        capture_start();
        for (int i = 0; i < 1000; i++)
                fv_wr(v, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_DRIVER_OK);
        int lines = 0;
        for (const char *p = logbuf; *p; p++)
                lines += *p == '\n';
        EXPECT_EQ(lines, VIRTIO_LOG_BUDGET + 1);
        EXPECT_CONTAINS(logbuf, "suppressed");
        log_set_sink(NULL);
        fv_free(v);
}

/* Empty slots: the identity of a placeholder transport at each slot's start, the rest 0. */
TEST(empty_transport_slots)
{
        const uint64_t slot = 0x1000;
        uint64_t v;

        for (uint64_t base = 0; base < 3 * slot; base += slot) {
                virtio_mmio_empty_ops.read((void *)&slot, base + VIRTIO_MMIO_MAGIC_VALUE, 4, &v);
                EXPECT_EQ(v, VIRTIO_MMIO_MAGIC);
                virtio_mmio_empty_ops.read((void *)&slot, base + VIRTIO_MMIO_VERSION, 4, &v);
                EXPECT_EQ(v, 2);
                virtio_mmio_empty_ops.read((void *)&slot, base + VIRTIO_MMIO_DEVICE_ID, 4, &v);
                EXPECT_EQ(v, 0);
                virtio_mmio_empty_ops.read((void *)&slot, base + VIRTIO_MMIO_VENDOR_ID, 4, &v);
                EXPECT_EQ(v, VIRTIO_MMIO_VENDOR);
                virtio_mmio_empty_ops.write((void *)&slot, base + VIRTIO_MMIO_STATUS, 4, 0xff);
                virtio_mmio_empty_ops.read((void *)&slot, base + VIRTIO_MMIO_STATUS, 4, &v);
                EXPECT_EQ(v, 0);
                virtio_mmio_empty_ops.read((void *)&slot, base + VIRTIO_MMIO_QUEUE_NUM_MAX, 4, &v);
                EXPECT_EQ(v, 0);
                v = 1;
                virtio_mmio_empty_ops.read((void *)&slot, base + VIRTIO_MMIO_MAGIC_VALUE, 1, &v);
                EXPECT_EQ(v, 0); /* registers are 32-bit: other widths read 0 */
        }
}

/*
 * A ring of 128 requests is served in pieces of VIRTIO_NOTIFY_BUDGET: the transport asks for
 * the notification to be executed again (what a second vCPU refilling the ring needs, so the
 * exit ends), then nothing more once the ring is drained; other writes never ask.
 */
TEST(notify_served_in_bounded_pieces)
{
        struct fake_vm *v = setup();
        struct drv_q q;
        uint64_t x;

        dq_layout(&q, 0, 128, QBASE);
        EXPECT_EQ(fv_linux_init(v, V1, &q, 1), 0);
        dq_desc(v, &q, 0, FV_BASE + 0x10000, 16, VIRTQ_DESC_F_NEXT, 1);
        dq_desc(v, &q, 1, FV_BASE + 0x10100, 1, VIRTQ_DESC_F_WRITE, 0);
        for (unsigned i = 0; i < 128; i++)
                dq_avail(v, &q, 0);
        fv_put16(v, FV_BASE + 0x10000, VIRTIO_BLK_T_FLUSH);
        virtio_mmio_ops.write(&v->t, VIRTIO_MMIO_QUEUE_NOTIFY, 4, 0);
        EXPECT_EQ(dq_used_idx(v, &q), VIRTIO_NOTIFY_BUDGET);
        EXPECT_TRUE(virtio_mmio_ops.again(&v->t));
        EXPECT_FALSE(virtio_mmio_ops.again(&v->t)); /* the answer is for that write only */
        virtio_mmio_ops.write(&v->t, VIRTIO_MMIO_QUEUE_NOTIFY, 4, 0);
        EXPECT_EQ(dq_used_idx(v, &q), 2 * VIRTIO_NOTIFY_BUDGET);
        EXPECT_FALSE(virtio_mmio_ops.again(&v->t)); /* 128 = 2 pieces: drained */
        for (unsigned i = 0; i < VIRTIO_NOTIFY_BUDGET + 1; i++)
                dq_avail(v, &q, 0);
        virtio_mmio_ops.write(&v->t, VIRTIO_MMIO_QUEUE_NOTIFY, 4, 0);
        virtio_mmio_ops.read(&v->t, VIRTIO_MMIO_STATUS, 4, &x);
        EXPECT_TRUE(virtio_mmio_ops.again(&v->t)); /* a read in between changes nothing */
        virtio_mmio_ops.write(&v->t, VIRTIO_MMIO_QUEUE_NOTIFY, 4, 0);
        virtio_mmio_ops.write(&v->t, VIRTIO_MMIO_INTERRUPT_ACK, 4, 1);
        EXPECT_FALSE(virtio_mmio_ops.again(&v->t)); /* another register write */
        EXPECT_EQ(dq_used_idx(v, &q), 3 * VIRTIO_NOTIFY_BUDGET + 1);
        EXPECT_EQ(status(v) & VIRTIO_STATUS_NEEDS_RESET, 0);
        EXPECT_TRUE(fv_canaries_ok(v));
        fv_free(v);
}

TEST_MAIN()
