/*
 * libFuzzer target for the split virtqueue and the two virtio devices: the input becomes the
 * guest's RAM (rings, descriptors, indirect tables, request headers and data are all fuzzed),
 * the transport is brought up the way Linux does it, then the device processes its queues.
 *
 * Input: byte 0 selects the setup
 *   bit 0      device: 0 virtio-blk, 1 virtio-console
 *   bit 1      negotiate VIRTIO_RING_F_EVENT_IDX
 *   bit 2      negotiate VIRTIO_RING_F_INDIRECT_DESC
 *   bit 3      read-only disk
 *   bits 4-6   log2 of the queue size (0 -> 1 ... 7 -> 128)
 * byte 1: rounds of (bump avail->idx by byte, notify / input); the rest is copied into guest
 * RAM from its first byte (rings at fixed offsets 0, 0x1000 and 0x2000 of each queue's page
 * block; everything else is data the descriptors may point to).
 *
 * Invariants (abort on violation): memory outside the guest RAM is never touched (canary
 * pages around it, and ASan); used->idx in guest RAM equals the device's count of pushed
 * elements, which never exceeds the chains popped; a broken queue means NEEDS_RESET is set.
 */
#include <stdint.h>
#include <stdlib.h>

#include <keel/log.h>
#include <vmm/virtio.h>

#include "fuzz_fake_vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t disk[16 * 512];
static struct virtio_blk blk;
static struct virtio_console con;

static void sink(void *ctx, const uint8_t *buf, size_t len)
{
        (void)ctx;
        (void)buf;
        (void)len;
}

static void check_queue(struct fake_vm *v, const struct drv_q *dq, unsigned qi)
{
        const struct virtq *q = &v->t.queues[qi];

        if (q->pushed > q->popped)
                abort();
        if (q->used_idx != (uint16_t)q->pushed)
                abort();
        if (q->pushed && dq_used_idx(v, dq) != q->used_idx)
                abort();
        if (q->broken && !(v->t.status & VIRTIO_STATUS_NEEDS_RESET))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 2)
                return 0;
        uint8_t sel = data[0], rounds = data[1] & 7;
        bool console = sel & 1;
        uint16_t num = (uint16_t)(1u << ((sel >> 4) & 7));
        uint64_t features = VIRTIO_BIT(VIRTIO_F_VERSION_1);
        struct drv_q qs[2];
        unsigned nq = console ? 2 : 1;
        const struct virtio_device *dev;

        if (sel & 2)
                features |= VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX);
        if (sel & 4)
                features |= VIRTIO_BIT(VIRTIO_RING_F_INDIRECT_DESC);
        if (console && num > VIRTIO_CONSOLE_QUEUE_SIZE)
                num = VIRTIO_CONSOLE_QUEUE_SIZE;

        log_set_sink(NULL);
        struct fake_vm *v = fz_vm();
        size_t n = size - 2 < FV_SIZE ? size - 2 : FV_SIZE;
        memcpy(v->ram, data + 2, n);

        if (console) {
                virtio_console_init(&con, sink, NULL);
                dev = &con.vdev;
        } else {
                memset(disk, 0x3c, sizeof(disk));
                virtio_blk_init(&blk, disk, sizeof(disk), sel & 8, "fz", 0);
                dev = &blk.vdev;
        }
        if (fv_attach(v, dev, "fuzz") < 0)
                abort();
        if (console)
                virtio_console_attach(&con, &v->t);
        for (unsigned i = 0; i < nq; i++)
                dq_layout(&qs[i], i, num, FV_BASE + 0x4000ull * i);
        /* The rings' contents came from the input: keep them (fv_linux_init writes none). */
        if (fv_linux_init(v, features, qs, nq) < 0)
                abort();

        for (unsigned r = 0; r <= rounds; r++) {
                uint8_t bump = 2 + r < size ? data[2 + r] : 0;
                for (unsigned i = 0; i < nq; i++) {
                        if (r)
                                fv_put16(v, qs[i].avail + 2,
                                         (uint16_t)(fv_get16(v, qs[i].avail + 2) + (bump & 15)));
                        if (console && i == VIRTIO_CONSOLE_RX)
                                console_input(&con, data, size < 300 ? size : 300);
                        else
                                dq_notify(v, &qs[i]);
                        check_queue(v, &qs[i], i);
                }
        }
        if (!fv_canaries_ok(v))
                abort();
        return 0;
}
