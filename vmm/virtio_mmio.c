/*
 * The virtio-mmio transport, version 2 (virtio 1.1, 4.2). One struct virtio_mmio per device;
 * its 0x200-byte window holds the registers (0x000-0x0ff, 32-bit accesses only) and the
 * device's config space (from 0x100, accesses of 1, 2, 4 or 8 bytes).
 *
 * Device status is a state machine driven by the driver's writes to Status; a write is the
 * new whole value and is accepted only if the (old, new) pair is in `status_edges` below,
 * except 0 (reset, from anywhere) and FAILED (added from anywhere; only a reset leaves it).
 * DEVICE_NEEDS_RESET belongs to the device: the driver's copy of that bit is ignored.
 * Refused writes leave Status unchanged and are logged (within the device's log budget).
 */
#include <string.h>

#include <keel/errno.h>
#include <keel/log.h>
#include <vmm/snapshot.h>
#include <vmm/virtio.h>

#define ST_ACK  VIRTIO_STATUS_ACKNOWLEDGE
#define ST_DRV  VIRTIO_STATUS_DRIVER
#define ST_FOK  VIRTIO_STATUS_FEATURES_OK
#define ST_DOK  VIRTIO_STATUS_DRIVER_OK
#define ST_NR   VIRTIO_STATUS_NEEDS_RESET
#define ST_FAIL VIRTIO_STATUS_FAILED

/* The driver's initialization sequence (3.1.1): each step adds one bit. */
static const struct {
        uint8_t from, to;
} status_edges[] = {
    {0, ST_ACK},
    {ST_ACK, ST_ACK | ST_DRV},
    {ST_ACK | ST_DRV, ST_ACK | ST_DRV | ST_FOK},
    {ST_ACK | ST_DRV | ST_FOK, ST_ACK | ST_DRV | ST_FOK | ST_DOK},
    /* Writing the current value again changes nothing. */
    {ST_ACK, ST_ACK},
    {ST_ACK | ST_DRV, ST_ACK | ST_DRV},
    {ST_ACK | ST_DRV | ST_FOK, ST_ACK | ST_DRV | ST_FOK},
    {ST_ACK | ST_DRV | ST_FOK | ST_DOK, ST_ACK | ST_DRV | ST_FOK | ST_DOK},
};

static bool log_allowed(struct virtio_mmio *t)
{
        if (t->log_budget == 0)
                return false;
        if (--t->log_budget == 0)
                log_printf(LOG_LEVEL_WARN,
                           "virtio %s: log budget used up, further warnings suppressed", t->name);
        return true;
}

#define VWARN(t, fmt, ...)                                                                       \
        do {                                                                                     \
                if (log_allowed(t))                                                              \
                        log_printf(LOG_LEVEL_WARN, "virtio %s: " fmt, (t)->name, ##__VA_ARGS__); \
        } while (0)

static void update_irq(struct virtio_mmio *t)
{
        irq_set_level(&t->irq, t->interrupt_status != 0);
}

static void device_reset(struct virtio_mmio *t)
{
        t->status = 0;
        t->dev_features_sel = t->drv_features_sel = 0;
        t->driver_features = 0;
        t->driver_features_bad = false;
        t->queue_sel = 0;
        t->interrupt_status = 0;
        for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
                virtq_reset(&t->queues[i], t->mem, i < t->dev->num_queues ? t->dev->queue_max : 0);
        update_irq(t);
        if (t->dev->reset)
                t->dev->reset(t->dev->ctx);
}

int virtio_mmio_init(struct virtio_mmio *t, const struct virtio_device *dev, const struct gmem *mem,
                     struct irq_line irq, const char *name)
{
        if (!t || !dev || !mem || dev->num_queues == 0 || dev->num_queues > VIRTIO_MAX_QUEUES ||
            dev->queue_max == 0 || dev->queue_max > VIRTQ_MAX_SIZE ||
            (dev->queue_max & (dev->queue_max - 1)) ||
            !(dev->features & VIRTIO_BIT(VIRTIO_F_VERSION_1)) || !dev->queue_notify)
                return -KEEL_EINVAL;
        memset(t, 0, sizeof(*t));
        t->dev = dev;
        t->mem = mem;
        t->irq = irq;
        t->name = name ? name : "?";
        t->log_budget = VIRTIO_LOG_BUDGET;
        device_reset(t);
        return 0;
}

struct virtq *virtio_mmio_queue(struct virtio_mmio *t, unsigned q)
{
        return q < t->dev->num_queues ? &t->queues[q] : NULL;
}

bool virtio_mmio_running(const struct virtio_mmio *t)
{
        return (t->status & ST_DOK) && !(t->status & ST_FAIL);
}

bool virtio_mmio_queue_done(struct virtio_mmio *t, unsigned qi)
{
        struct virtq *q = virtio_mmio_queue(t, qi);
        bool used;

        if (!q)
                return false;
        used = virtq_need_interrupt(q);
        if (used)
                t->interrupt_status |= VIRTIO_INT_USED_BUFFER;
        if (q->broken && !q->reported) {
                q->reported = true;
                t->status |= ST_NR;
                t->interrupt_status |= VIRTIO_INT_CONFIG_CHANGE;
                VWARN(t, "queue %u: %s; device needs reset", qi, q->error ? q->error : "violation");
        }
        update_irq(t);
        return used;
}

void virtio_mmio_config_changed(struct virtio_mmio *t)
{
        t->config_generation++;
        t->interrupt_status |= VIRTIO_INT_CONFIG_CHANGE;
        update_irq(t);
}

static bool features_acceptable(struct virtio_mmio *t)
{
        uint64_t extra = t->driver_features & ~t->dev->features;

        if (t->driver_features_bad) {
                VWARN(t, "driver accepted a feature bit beyond 63");
                return false;
        }
        if (extra) {
                VWARN(t, "driver accepted features 0x%llx the device did not offer",
                      (unsigned long long)extra);
                return false;
        }
        if (!(t->driver_features & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
                VWARN(t, "driver did not accept VIRTIO_F_VERSION_1");
                return false;
        }
        return true;
}

static void write_status(struct virtio_mmio *t, uint32_t v)
{
        uint32_t cur = t->status & ~ST_NR;

        if (v == 0) {
                device_reset(t);
                return;
        }
        v &= ~ST_NR;
        if (cur & ST_FAIL) {
                VWARN(t, "status write 0x%x after FAILED ignored (reset first)", v);
                return;
        }
        if (v & ST_FAIL) {
                VWARN(t, "driver set FAILED (status 0x%x)", v);
                t->status |= ST_FAIL;
                return;
        }
        bool ok = false;
        for (size_t i = 0; i < sizeof(status_edges) / sizeof(status_edges[0]); i++)
                if (status_edges[i].from == cur && status_edges[i].to == v)
                        ok = true;
        if (!ok) {
                VWARN(t, "illegal status transition 0x%x -> 0x%x refused", cur, v);
                return;
        }
        if ((v & ST_FOK) && !(cur & ST_FOK)) {
                if (!features_acceptable(t))
                        return; /* FEATURES_OK not kept: the driver reads it back and gives up */
                for (unsigned i = 0; i < t->dev->num_queues; i++) {
                        t->queues[i].event_idx =
                            t->driver_features & VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX);
                        t->queues[i].indirect =
                            t->driver_features & VIRTIO_BIT(VIRTIO_RING_F_INDIRECT_DESC);
                }
        }
        t->status = v | (t->status & ST_NR);
}

/* Queue registers are writable between FEATURES_OK and DRIVER_OK, for an existing queue. */
static struct virtq *setup_queue(struct virtio_mmio *t, const char *reg)
{
        struct virtq *q = virtio_mmio_queue(t, t->queue_sel);
        uint32_t st = t->status;

        if (!(st & ST_FOK) || (st & (ST_DOK | ST_FAIL))) {
                VWARN(t, "%s written in status 0x%x (only between FEATURES_OK and DRIVER_OK)", reg,
                      st);
                return NULL;
        }
        if (!q) {
                VWARN(t, "%s written for missing queue %u", reg, t->queue_sel);
                return NULL;
        }
        return q;
}

static void set_addr_half(struct virtio_mmio *t, gpa_t *a, bool high, uint32_t v, const char *reg)
{
        struct virtq *q = setup_queue(t, reg);
        uint64_t x;

        if (!q)
                return;
        if (q->ready) {
                VWARN(t, "%s written while queue %u is ready", reg, t->queue_sel);
                return;
        }
        x = gpa_raw(*a);
        x = high ? (x & 0xffffffffull) | (uint64_t)v << 32 : (x & ~0xffffffffull) | v;
        *a = gpa(x);
}

static void write_queue_ready(struct virtio_mmio *t, uint32_t v)
{
        struct virtq *q = setup_queue(t, "QueueReady");
        const char *why;

        if (!q)
                return;
        if (v == 0) {
                q->ready = false;
                return;
        }
        if (v != 1) {
                VWARN(t, "QueueReady value %u refused", v);
                return;
        }
        if (q->ready)
                return;
        why = virtq_check_setup(q);
        if (why) {
                VWARN(t, "queue %u not made ready: %s", t->queue_sel, why);
                return;
        }
        q->last_avail = q->used_idx = q->signalled_used = 0;
        q->broken = q->reported = false;
        q->error = NULL;
        q->popped = q->pushed = 0;
        q->ready = true;
}

static void write_queue_num(struct virtio_mmio *t, uint32_t v)
{
        struct virtq *q = setup_queue(t, "QueueNum");

        if (!q)
                return;
        if (q->ready) {
                VWARN(t, "QueueNum written while queue %u is ready", t->queue_sel);
                return;
        }
        if (v == 0 || (v & (v - 1)) || v > q->num_max) {
                VWARN(t, "QueueNum %u refused (power of two <= %u)", v, q->num_max);
                return;
        }
        q->num = (uint16_t)v;
}

static void queue_notify(struct virtio_mmio *t, uint32_t qi)
{
        struct virtq *q = virtio_mmio_queue(t, qi);

        if (!q || !virtio_mmio_running(t) || !q->ready || q->broken)
                return;
        t->notify_again = t->dev->queue_notify(t->dev->ctx, t, qi);
        if (!t->dev->signals_used)
                virtio_mmio_queue_done(t, qi);
}

static uint32_t read_reg(struct virtio_mmio *t, uint64_t off)
{
        struct virtq *q = virtio_mmio_queue(t, t->queue_sel);

        switch (off) {
        case VIRTIO_MMIO_MAGIC_VALUE:
                return VIRTIO_MMIO_MAGIC;
        case VIRTIO_MMIO_VERSION:
                return 2;
        case VIRTIO_MMIO_DEVICE_ID:
                return t->dev->device_id;
        case VIRTIO_MMIO_VENDOR_ID:
                return VIRTIO_MMIO_VENDOR;
        case VIRTIO_MMIO_DEVICE_FEATURES:
                return t->dev_features_sel < 2
                           ? (uint32_t)(t->dev->features >> (32 * t->dev_features_sel))
                           : 0;
        case VIRTIO_MMIO_QUEUE_NUM_MAX:
                return q ? q->num_max : 0;
        case VIRTIO_MMIO_QUEUE_NUM:
                return q ? q->num : 0;
        case VIRTIO_MMIO_QUEUE_READY:
                return q ? q->ready : 0;
        case VIRTIO_MMIO_INTERRUPT_STATUS:
                return t->interrupt_status;
        case VIRTIO_MMIO_STATUS:
                return t->status;
        case VIRTIO_MMIO_QUEUE_DESC_LOW:
                return q ? (uint32_t)gpa_raw(q->desc) : 0;
        case VIRTIO_MMIO_QUEUE_DESC_HIGH:
                return q ? (uint32_t)(gpa_raw(q->desc) >> 32) : 0;
        case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
                return q ? (uint32_t)gpa_raw(q->avail) : 0;
        case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
                return q ? (uint32_t)(gpa_raw(q->avail) >> 32) : 0;
        case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
                return q ? (uint32_t)gpa_raw(q->used) : 0;
        case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
                return q ? (uint32_t)(gpa_raw(q->used) >> 32) : 0;
        case VIRTIO_MMIO_CONFIG_GENERATION:
                return t->config_generation;
        default:
                return 0; /* write-only and reserved registers */
        }
}

static void write_reg(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
        struct virtq *q = virtio_mmio_queue(t, t->queue_sel);

        switch (off) {
        case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
                t->dev_features_sel = v;
                break;
        case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
                t->drv_features_sel = v;
                break;
        case VIRTIO_MMIO_DRIVER_FEATURES:
                if ((t->status & ~ST_NR) != (ST_ACK | ST_DRV)) {
                        VWARN(t, "DriverFeatures written in status 0x%x ignored", t->status);
                        break;
                }
                if (t->drv_features_sel >= 2) {
                        if (v)
                                t->driver_features_bad = true;
                        break;
                }
                if (t->drv_features_sel == 0)
                        t->driver_features = (t->driver_features & ~0xffffffffull) | v;
                else
                        t->driver_features = (t->driver_features & 0xffffffffull) | (uint64_t)v
                                                                                        << 32;
                break;
        case VIRTIO_MMIO_QUEUE_SEL:
                t->queue_sel = v;
                break;
        case VIRTIO_MMIO_QUEUE_NUM:
                write_queue_num(t, v);
                break;
        case VIRTIO_MMIO_QUEUE_READY:
                write_queue_ready(t, v);
                break;
        case VIRTIO_MMIO_QUEUE_NOTIFY:
                queue_notify(t, v);
                break;
        case VIRTIO_MMIO_INTERRUPT_ACK:
                t->interrupt_status &= ~v;
                update_irq(t);
                break;
        case VIRTIO_MMIO_STATUS:
                write_status(t, v);
                break;
        case VIRTIO_MMIO_QUEUE_DESC_LOW:
        case VIRTIO_MMIO_QUEUE_DESC_HIGH:
                if (q)
                        set_addr_half(t, &q->desc, off == VIRTIO_MMIO_QUEUE_DESC_HIGH, v,
                                      "QueueDesc");
                else
                        setup_queue(t, "QueueDesc");
                break;
        case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
        case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
                if (q)
                        set_addr_half(t, &q->avail, off == VIRTIO_MMIO_QUEUE_DRIVER_HIGH, v,
                                      "QueueDriver");
                else
                        setup_queue(t, "QueueDriver");
                break;
        case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
        case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
                if (q)
                        set_addr_half(t, &q->used, off == VIRTIO_MMIO_QUEUE_DEVICE_HIGH, v,
                                      "QueueDevice");
                else
                        setup_queue(t, "QueueDevice");
                break;
        default:
                VWARN(t, "write 0x%x to read-only or reserved register 0x%llx ignored", v,
                      (unsigned long long)off);
                break;
        }
}

static bool config_access_ok(uint64_t offset, unsigned size)
{
        return (size == 1 || size == 2 || size == 4 || size == 8) && offset >= VIRTIO_MMIO_CONFIG &&
               offset + size <= VIRTIO_MMIO_REGION_SIZE;
}

void virtio_mmio_read(struct virtio_mmio *t, uint64_t offset, unsigned size, uint64_t *val)
{
        *val = 0;
        if (offset >= VIRTIO_MMIO_CONFIG) {
                if (config_access_ok(offset, size) && t->dev->config_read)
                        t->dev->config_read(t->dev->ctx, offset - VIRTIO_MMIO_CONFIG, size, val);
                return;
        }
        if (size != 4 || offset % 4) {
                VWARN(t, "%u-byte read at register 0x%llx (registers are 32-bit)", size,
                      (unsigned long long)offset);
                return;
        }
        *val = read_reg(t, offset);
}

void virtio_mmio_write(struct virtio_mmio *t, uint64_t offset, unsigned size, uint64_t val)
{
        t->notify_again = false;
        if (offset >= VIRTIO_MMIO_CONFIG) {
                if (config_access_ok(offset, size) && t->dev->config_write)
                        t->dev->config_write(t->dev->ctx, offset - VIRTIO_MMIO_CONFIG, size, val);
                return;
        }
        if (size != 4 || offset % 4) {
                VWARN(t, "%u-byte write at register 0x%llx ignored (registers are 32-bit)", size,
                      (unsigned long long)offset);
                return;
        }
        write_reg(t, offset, (uint32_t)val);
}

void virtio_config_bytes(const uint8_t *cfg, size_t n, uint64_t off, unsigned size, uint64_t *val)
{
        uint64_t v = 0;

        if (off > n || size > n - off) {
                *val = 0;
                return;
        }
        for (unsigned i = 0; i < size; i++)
                v |= (uint64_t)cfg[off + i] << (8 * i);
        *val = v;
}

bool virtio_mmio_write_again(struct virtio_mmio *t)
{
        bool again = t->notify_again;

        t->notify_again = false;
        return again;
}

static bool ops_again(void *dev)
{
        return virtio_mmio_write_again(dev);
}

static void ops_read(void *dev, uint64_t offset, unsigned size, uint64_t *val)
{
        virtio_mmio_read(dev, offset, size, val);
}

static void ops_write(void *dev, uint64_t offset, unsigned size, uint64_t val)
{
        virtio_mmio_write(dev, offset, size, val);
}

const struct mmio_ops virtio_mmio_ops = {.read = ops_read, .write = ops_write, .again = ops_again};

static void empty_read(void *dev, uint64_t offset, unsigned size, uint64_t *val)
{
        uint64_t slot = *(const uint64_t *)dev;

        *val = 0;
        if (size != 4 || !slot)
                return;
        switch (offset % slot) {
        case VIRTIO_MMIO_MAGIC_VALUE:
                *val = VIRTIO_MMIO_MAGIC;
                break;
        case VIRTIO_MMIO_VERSION:
                *val = 2;
                break;
        case VIRTIO_MMIO_VENDOR_ID:
                *val = VIRTIO_MMIO_VENDOR;
                break;
        }
}

static void empty_write(void *dev, uint64_t offset, unsigned size, uint64_t val)
{
        (void)dev;
        (void)offset;
        (void)size;
        (void)val;
}

const struct mmio_ops virtio_mmio_empty_ops = {.read = empty_read, .write = empty_write};

/* ---- Snapshots ---- */

struct vmmio_snap { /* no padding: every byte is checked */
        uint64_t driver_features;
        uint32_t status, dev_features_sel, drv_features_sel, queue_sel, interrupt_status, gen;
        uint8_t features_bad, notify_again, queues, pad[5];
};

struct virtq_snap {
        uint64_t desc, avail, used, popped, pushed;
        uint16_t num, last_avail, used_idx, signalled_used;
        uint8_t ready, event_idx, indirect, broken, reported, pad[3];
};

__attribute__((cold)) void virtio_mmio_save(const struct virtio_mmio *t, struct snap_buf *b)
{
        struct vmmio_snap s = {.driver_features = t->driver_features,
                               .status = t->status,
                               .dev_features_sel = t->dev_features_sel,
                               .drv_features_sel = t->drv_features_sel,
                               .queue_sel = t->queue_sel,
                               .interrupt_status = t->interrupt_status,
                               .gen = t->config_generation,
                               .features_bad = t->driver_features_bad,
                               .notify_again = t->notify_again,
                               .queues = (uint8_t)t->dev->num_queues};

        snap_put(b, &s, sizeof(s));
        for (unsigned i = 0; i < t->dev->num_queues; i++) {
                const struct virtq *q = &t->queues[i];
                struct virtq_snap v = {gpa_raw(q->desc), gpa_raw(q->avail), gpa_raw(q->used),
                                       q->popped,        q->pushed,         q->num,
                                       q->last_avail,    q->used_idx,       q->signalled_used,
                                       q->ready,         q->event_idx,      q->indirect,
                                       q->broken,        q->reported,       {0}};

                snap_put(b, &v, sizeof(v));
        }
}

static bool status_valid(uint32_t st)
{
        st &= ~(ST_NR | ST_FAIL);
        if (!st)
                return true;
        for (size_t i = 0; i < sizeof(status_edges) / sizeof(status_edges[0]); i++)
                if (status_edges[i].to == st)
                        return true;
        return false;
}

__attribute__((cold)) int virtio_mmio_load(struct virtio_mmio *t, struct snap_rd *r)
{
        struct virtq_snap v[VIRTIO_MAX_QUEUES];
        struct vmmio_snap s;
        bool fok, bad;

        if (!snap_get(r, &s, sizeof(s)))
                return -KEEL_EINVAL;
        if (s.queues != t->dev->num_queues)
                return snap_fail(r, "%s: %u queues, this device has %u", t->name, s.queues,
                                 t->dev->num_queues);
        if (!snap_get(r, v, s.queues * sizeof(v[0])))
                return -KEEL_EINVAL;
        fok = s.status & ST_FOK;
        bad = !status_valid(s.status) || (s.features_bad | s.notify_again) > 1 ||
              (s.interrupt_status & ~3u) || s.pad[0] | s.pad[1] | s.pad[2] | s.pad[3] | s.pad[4] ||
              (fok && (s.features_bad || (s.driver_features & ~t->dev->features) ||
                       !(s.driver_features & VIRTIO_BIT(VIRTIO_F_VERSION_1))));
        for (unsigned i = 0; i < s.queues && !bad; i++) {
                struct virtq q = t->queues[i];

                q.desc = gpa(v[i].desc), q.avail = gpa(v[i].avail), q.used = gpa(v[i].used);
                q.num = v[i].num;
                bad =
                    (v[i].ready | v[i].broken | v[i].reported) > 1 ||
                    v[i].event_idx != (fok && (s.driver_features >> VIRTIO_RING_F_EVENT_IDX & 1)) ||
                    v[i].indirect !=
                        (fok && (s.driver_features >> VIRTIO_RING_F_INDIRECT_DESC & 1)) ||
                    (v[i].reported && !v[i].broken) || v[i].pushed > v[i].popped ||
                    v[i].pad[0] | v[i].pad[1] | v[i].pad[2] ||
                    (v[i].ready ? !fok || virtq_check_setup(&q)
                                : !q.num || (q.num & (q.num - 1)) || q.num > q.num_max);
        }
        if (bad)
                return snap_fail(r, "%s: a register or queue holds a value the device cannot have",
                                 t->name);
        if (!r->apply)
                return 0;
        t->driver_features = s.driver_features, t->status = s.status;
        t->dev_features_sel = s.dev_features_sel, t->drv_features_sel = s.drv_features_sel;
        t->queue_sel = s.queue_sel, t->interrupt_status = s.interrupt_status;
        t->config_generation = s.gen, t->driver_features_bad = s.features_bad;
        t->notify_again = s.notify_again;
        for (unsigned i = 0; i < s.queues; i++) {
                struct virtq *q = &t->queues[i];

                q->desc = gpa(v[i].desc), q->avail = gpa(v[i].avail), q->used = gpa(v[i].used);
                q->popped = v[i].popped, q->pushed = v[i].pushed, q->num = v[i].num;
                q->last_avail = v[i].last_avail, q->used_idx = v[i].used_idx;
                q->signalled_used = v[i].signalled_used, q->ready = v[i].ready;
                q->event_idx = v[i].event_idx, q->indirect = v[i].indirect;
                q->broken = v[i].broken, q->reported = v[i].reported;
                q->error = q->broken ? "broken when the snapshot was taken" : NULL;
        }
        return 0;
}
