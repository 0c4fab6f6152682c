/*
 * virtio-console (virtio 1.1, 5.3) with a single port: no VIRTIO_CONSOLE_F_MULTIPORT, so
 * queue 0 is the port's receiveq (host to guest) and queue 1 its transmitq (guest to host).
 * Transmitted bytes go to a sink callback (Keel's console with the VM's prefix); input from
 * Keel fills receiveq buffers through console_input. Buffers in the wrong direction
 * (writable on transmitq, readable on receiveq) are a violation: the queue stops and the
 * device needs reset. The config space (cols, rows, max_nr_ports, emerg_wr) reads as 0:
 * none of the features that give its fields meaning is offered.
 */
#include <string.h>

#include <keel/errno.h>
#include <vmm/virtio.h>

#define CONSOLE_CFG_BYTES 12
#define TX_CHUNK          64

static void console_config_read(void *ctx, uint64_t off, unsigned size, uint64_t *val)
{
        static const uint8_t cfg[CONSOLE_CFG_BYTES];

        (void)ctx;
        virtio_config_bytes(cfg, sizeof(cfg), off, size, val);
}

/* Send one chain to the sink (at most VIRTIO_CONSOLE_TX_MAX bytes of it): bytes read. */
static uint64_t console_tx(struct virtio_console *c, struct virtq *q)
{
        const struct virtq_chain *ch = &c->chain;
        uint64_t len = ch->read_len;
        uint8_t buf[TX_CHUNK];

        if (ch->nseg != ch->nread) {
                virtq_fail(q, "device-writable buffer on the transmit queue");
                return 0;
        }
        if (len > VIRTIO_CONSOLE_TX_MAX) {
                c->tx_dropped += len - VIRTIO_CONSOLE_TX_MAX;
                len = VIRTIO_CONSOLE_TX_MAX;
        }
        for (uint64_t off = 0; off < len;) {
                uint64_t n = len - off < TX_CHUNK ? len - off : TX_CHUNK;
                if (virtq_chain_read(q, ch, off, buf, n) != (int64_t)n)
                        return off;
                if (c->sink)
                        c->sink(c->sink_ctx, buf, n);
                c->tx_bytes += n;
                off += n;
        }
        virtq_push(q, ch->head, 0);
        return len;
}

static bool console_queue_notify(void *ctx, struct virtio_mmio *t, unsigned qi)
{
        struct virtio_console *c = ctx;
        struct virtq *q = virtio_mmio_queue(t, qi);
        unsigned served = 0;
        uint64_t bytes = 0;

        /* Receive buffers are only consumed when input arrives (console_input). */
        if (!q || qi != VIRTIO_CONSOLE_TX)
                return false;
        do {
                while (!q->broken && virtq_pop(q, &c->chain) > 0) {
                        bytes += console_tx(c, q);
                        if (++served == VIRTIO_NOTIFY_BUDGET || bytes >= VIRTIO_CONSOLE_TX_MAX)
                                return !q->broken && virtq_end_batch(q);
                }
        } while (!q->broken && virtq_end_batch(q));
        return false;
}

static void console_reset(void *ctx)
{
        (void)ctx;
}

int virtio_console_init(struct virtio_console *c, virtio_console_sink_fn sink, void *sink_ctx)
{
        if (!c)
                return -KEEL_EINVAL;
        memset(c, 0, sizeof(*c));
        c->sink = sink;
        c->sink_ctx = sink_ctx;
        c->vdev = (struct virtio_device){
            .device_id = VIRTIO_ID_CONSOLE,
            .num_queues = 2,
            .queue_max = VIRTIO_CONSOLE_QUEUE_SIZE,
            .features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX) |
                        VIRTIO_BIT(VIRTIO_RING_F_INDIRECT_DESC),
            .ctx = c,
            .config_read = console_config_read,
            .config_write = NULL,
            .queue_notify = console_queue_notify,
            .reset = console_reset,
        };
        return 0;
}

void virtio_console_attach(struct virtio_console *c, struct virtio_mmio *t)
{
        c->t = t;
}

size_t console_input(struct virtio_console *c, const uint8_t *bytes, size_t len)
{
        struct virtio_mmio *t = c->t;
        struct virtq *q = t ? virtio_mmio_queue(t, VIRTIO_CONSOLE_RX) : NULL;
        size_t done = 0;

        if (q && virtio_mmio_running(t) && q->ready) {
                while (done < len && !q->broken) {
                        if (virtq_pop(q, &c->chain) <= 0) {
                                /* Ring empty: ask for a notification, retry once if one raced in.
                                 */
                                if (q->broken || !virtq_end_batch(q))
                                        break;
                                continue;
                        }
                        if (c->chain.nread) {
                                virtq_fail(q, "device-readable buffer on the receive queue");
                                break;
                        }
                        uint64_t n = len - done;
                        if (n > c->chain.write_len)
                                n = c->chain.write_len;
                        if (virtq_chain_write(q, &c->chain, 0, bytes + done, n) != (int64_t)n)
                                break;
                        if (virtq_push(q, c->chain.head, (uint32_t)n) < 0)
                                break;
                        done += n;
                }
                if (!q->broken)
                        virtq_end_batch(q);
                virtio_mmio_queue_done(t, VIRTIO_CONSOLE_RX);
        }
        c->rx_bytes += done;
        c->rx_dropped += len - done;
        return done;
}
