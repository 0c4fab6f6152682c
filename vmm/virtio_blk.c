/*
 * virtio-blk (virtio 1.1, 5.2) over a disk image held in Keel's memory. The image is the
 * backing store: writes change that buffer only, so they are lost when Keel reboots (the
 * file on the ESP is never written). One request queue.
 *
 * A request is a chain whose device-readable part starts with the 16-byte header
 * {le32 type; le32 reserved; le64 sector} and whose device-writable part ends with the status
 * byte; data lies between (readable for T_OUT, writable for T_IN and GET_ID). The layout is
 * taken from the lengths, not from descriptor boundaries. A chain without header or status
 * byte, or with data in the wrong direction, is a violation (the queue stops, the device
 * needs reset); a well-formed request the disk cannot serve completes with IOERR or UNSUPP.
 */
#include <stdio.h>
#include <string.h>

#include <keel/errno.h>
#include <vmm/virtio.h>

#define BLK_HDR_BYTES 16
#define BLK_CFG_BYTES 36

static uint64_t blk_features(bool ro)
{
        uint64_t f = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX) |
                     VIRTIO_BIT(VIRTIO_RING_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) |
                     VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
                     VIRTIO_BIT(VIRTIO_BLK_F_FLUSH);

        return ro ? f | VIRTIO_BIT(VIRTIO_BLK_F_RO) : f;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
        for (unsigned i = 0; i < n; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * Config space: capacity (le64, sectors) at 0, size_max (le32) at 8, seg_max (le32) at 12,
 * geometry at 16 (not offered: 0), blk_size (le32) at 20, the rest 0. Read-only.
 */
static void blk_config_read(void *ctx, uint64_t off, unsigned size, uint64_t *val)
{
        const struct virtio_blk *b = ctx;
        uint8_t cfg[BLK_CFG_BYTES] = {0};

        put_le(cfg, b->sectors, 8);
        put_le(cfg + 8, VIRTIO_BLK_SIZE_MAX, 4);
        put_le(cfg + 12, VIRTIO_BLK_QUEUE_SIZE - 2, 4); /* header and status take two */
        put_le(cfg + 20, VIRTIO_BLK_SECTOR, 4);
        virtio_config_bytes(cfg, sizeof(cfg), off, size, val);
}

/* The [sector, sector + bytes) range as a byte offset into the image, or false. */
static bool blk_range(const struct virtio_blk *b, uint64_t sector, uint64_t bytes, uint64_t *off)
{
        if (bytes % VIRTIO_BLK_SECTOR || sector > b->sectors ||
            bytes / VIRTIO_BLK_SECTOR > b->sectors - sector)
                return false;
        *off = sector * VIRTIO_BLK_SECTOR;
        return true;
}

static uint32_t le32_of(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Serve one popped chain; pushes its used element unless the queue broke. Data bytes moved. */
static uint64_t blk_request(struct virtio_blk *b, struct virtq *q, const struct virtq_chain *c)
{
        uint8_t hdr[BLK_HDR_BYTES], st = VIRTIO_BLK_S_OK;
        uint64_t data_out, data_in, off, written = 0;

        if (c->read_len < BLK_HDR_BYTES) {
                virtq_fail(q, "block request without a 16-byte device-readable header");
                return 0;
        }
        if (c->write_len < 1) {
                virtq_fail(q, "block request without a device-writable status byte");
                return 0;
        }
        if (virtq_chain_read(q, c, 0, hdr, sizeof(hdr)) != sizeof(hdr))
                return 0;
        uint32_t type = le32_of(hdr);
        uint64_t sector = (uint64_t)le32_of(hdr + 8) | (uint64_t)le32_of(hdr + 12) << 32;
        data_out = c->read_len - BLK_HDR_BYTES;
        data_in = c->write_len - 1;

        switch (type) {
        case VIRTIO_BLK_T_IN:
                if (data_out) {
                        virtq_fail(q, "block read with device-readable data buffers");
                        return 0;
                }
                if (!blk_range(b, sector, data_in, &off)) {
                        st = VIRTIO_BLK_S_IOERR;
                        break;
                }
                if (virtq_chain_write(q, c, 0, b->data + off, data_in) != (int64_t)data_in)
                        return 0;
                written = data_in;
                b->reads++;
                break;
        case VIRTIO_BLK_T_OUT:
                if (data_in) {
                        virtq_fail(q, "block write with device-writable data buffers");
                        return 0;
                }
                if (b->ro || !blk_range(b, sector, data_out, &off)) {
                        st = VIRTIO_BLK_S_IOERR;
                        break;
                }
                /* Into the image before the used element is published (virtq_push). */
                if (virtq_chain_read(q, c, BLK_HDR_BYTES, b->data + off, data_out) !=
                    (int64_t)data_out)
                        return 0;
                b->writes++;
                break;
        case VIRTIO_BLK_T_FLUSH:
                /* The buffer is the backing store: nothing is cached in front of it. */
                b->flushes++;
                break;
        case VIRTIO_BLK_T_GET_ID: {
                uint64_t n = data_in < VIRTIO_BLK_ID_BYTES ? data_in : VIRTIO_BLK_ID_BYTES;
                if (virtq_chain_write(q, c, 0, b->serial, n) != (int64_t)n)
                        return 0;
                written = n;
                break;
        }
        default:
                st = VIRTIO_BLK_S_UNSUPP;
                break;
        }
        if (st != VIRTIO_BLK_S_OK)
                b->errors++;
        if (virtq_chain_write(q, c, data_in, &st, 1) != 1)
                return 0;
        virtq_push(q, c->head, (uint32_t)(written + 1));
        return written + (type == VIRTIO_BLK_T_OUT && st == VIRTIO_BLK_S_OK ? data_out : 0);
}

static bool blk_queue_notify(void *ctx, struct virtio_mmio *t, unsigned qi)
{
        struct virtio_blk *b = ctx;
        struct virtq *q = virtio_mmio_queue(t, qi);
        unsigned served = 0;
        uint64_t bytes = 0;

        if (!q)
                return false;
        do {
                while (!q->broken && virtq_pop(q, &b->chain) > 0) {
                        bytes += blk_request(b, q, &b->chain);
                        if (++served == VIRTIO_NOTIFY_BUDGET || bytes >= VIRTIO_NOTIFY_BYTES)
                                return !q->broken && virtq_end_batch(q);
                }
        } while (!q->broken && virtq_end_batch(q));
        return false;
}

static void blk_reset(void *ctx)
{
        (void)ctx; /* requests complete synchronously: nothing in flight */
}

int virtio_blk_init(struct virtio_blk *b, uint8_t *data, uint64_t size, bool read_only,
                    const char *vm, unsigned index)
{
        if (!b || (!data && size))
                return -KEEL_EINVAL;
        memset(b, 0, sizeof(*b));
        b->data = data;
        b->sectors = size / VIRTIO_BLK_SECTOR;
        b->size = b->sectors * VIRTIO_BLK_SECTOR;
        b->ro = read_only;
        /* 20 bytes, zero-padded; a longer name is cut (the spec's id has no terminator). */
        snprintf(b->serial, sizeof(b->serial), "keel-%s-%u", vm ? vm : "vm", index);
        b->vdev = (struct virtio_device){
            .device_id = VIRTIO_ID_BLOCK,
            .num_queues = 1,
            .queue_max = VIRTIO_BLK_QUEUE_SIZE,
            .features = blk_features(read_only),
            .ctx = b,
            .config_read = blk_config_read,
            .config_write = NULL, /* no writable field is offered */
            .queue_notify = blk_queue_notify,
            .reset = blk_reset,
        };
        return 0;
}

void virtio_blk_attach(struct virtio_blk *b, struct virtio_mmio *t)
{
        b->t = t;
}
