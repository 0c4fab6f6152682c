/*
 * Host-test helpers for the virtio tests: a fake guest RAM (a gmem region over an
 * aligned_alloc buffer with canary pages on both sides; hpa == pointer on the fake arch), an
 * interrupt line that records its level, and a minimal split-ring driver that lays out rings
 * and descriptors in that RAM and talks to the transport the way Linux's virtio_mmio does.
 */
#ifndef KEEL_TEST_VIRTIO_FAKE_DRIVER_H
#define KEEL_TEST_VIRTIO_FAKE_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vmm/virtio.h>

#define FV_BASE        0x100000ull     /* guest-physical base of the fake RAM */
#define FV_SIZE        (256 * 1024ull) /* its size */
#define FV_CANARY      4096ull
#define FV_CANARY_BYTE 0xa5

struct fake_vm {
        uint8_t *buf, *ram;
        struct gmem mem;
        struct virtio_mmio t;
        bool irq_level;
        unsigned irq_raises;
};

static void fv_irq(void *ctrl, unsigned pin, bool level)
{
        struct fake_vm *v = ctrl;

        (void)pin;
        if (level && !v->irq_level)
                v->irq_raises++;
        v->irq_level = level;
}

static inline struct fake_vm *fv_new(void)
{
        struct fake_vm *v = calloc(1, sizeof(*v));

        v->buf = aligned_alloc(4096, FV_SIZE + 2 * FV_CANARY);
        memset(v->buf, FV_CANARY_BYTE, FV_CANARY);
        memset(v->buf + FV_CANARY + FV_SIZE, FV_CANARY_BYTE, FV_CANARY);
        v->ram = v->buf + FV_CANARY;
        memset(v->ram, 0, FV_SIZE);
        gmem_init(&v->mem);
        gmem_add_region(&v->mem, gpa(FV_BASE), FV_SIZE, hpa((uint64_t)(uintptr_t)v->ram));
        return v;
}

static inline bool fv_canaries_ok(const struct fake_vm *v)
{
        for (uint64_t i = 0; i < FV_CANARY; i++)
                if (v->buf[i] != FV_CANARY_BYTE ||
                    v->buf[FV_CANARY + FV_SIZE + i] != FV_CANARY_BYTE)
                        return false;
        return true;
}

static inline void fv_free(struct fake_vm *v)
{
        free(v->buf);
        free(v);
}

static inline int fv_attach(struct fake_vm *v, const struct virtio_device *d, const char *name)
{
        return virtio_mmio_init(&v->t, d, &v->mem, (struct irq_line){fv_irq, v, 5}, name);
}

/* Host pointer of guest address a (the test is the driver: it may touch its own RAM). */
static inline void *fv_ptr(struct fake_vm *v, uint64_t a)
{
        return v->ram + (a - FV_BASE);
}

static inline uint32_t fv_rd(struct fake_vm *v, uint64_t off)
{
        uint64_t x;

        virtio_mmio_read(&v->t, off, 4, &x);
        return (uint32_t)x;
}

static inline void fv_wr(struct fake_vm *v, uint64_t off, uint32_t val)
{
        virtio_mmio_write(&v->t, off, 4, val);
}

static inline uint64_t fv_cfg(struct fake_vm *v, uint64_t off, unsigned size)
{
        uint64_t x;

        virtio_mmio_read(&v->t, VIRTIO_MMIO_CONFIG + off, size, &x);
        return x;
}

/* Driver side of one split queue. */
struct drv_q {
        unsigned index;
        uint16_t num;
        uint64_t desc, avail, used;
        uint16_t avail_idx, last_used;
};

/* Rings of queue `q` at guest address `base` (desc 16-aligned, used 4-aligned). */
static inline void dq_layout(struct drv_q *q, unsigned index, uint16_t num, uint64_t base)
{
        memset(q, 0, sizeof(*q));
        q->index = index;
        q->num = num;
        q->desc = base;
        q->avail = base + 16ull * num;
        q->used = (q->avail + 6 + 2ull * num + 3) & ~3ull;
}

static inline void dq_desc(struct fake_vm *v, const struct drv_q *q, uint16_t i, uint64_t addr,
                           uint32_t len, uint16_t flags, uint16_t next)
{
        uint8_t *d = fv_ptr(v, q->desc + 16ull * i);

        memcpy(d, &addr, 8);
        memcpy(d + 8, &len, 4);
        memcpy(d + 12, &flags, 2);
        memcpy(d + 14, &next, 2);
}

/* A descriptor in an indirect table at guest address `table`. */
static inline void dq_idesc(struct fake_vm *v, uint64_t table, uint16_t i, uint64_t addr,
                            uint32_t len, uint16_t flags, uint16_t next)
{
        uint8_t *d = fv_ptr(v, table + 16ull * i);

        memcpy(d, &addr, 8);
        memcpy(d + 8, &len, 4);
        memcpy(d + 12, &flags, 2);
        memcpy(d + 14, &next, 2);
}

static inline uint16_t fv_get16(struct fake_vm *v, uint64_t a)
{
        uint16_t x;

        memcpy(&x, fv_ptr(v, a), 2);
        return x;
}

static inline void fv_put16(struct fake_vm *v, uint64_t a, uint16_t x)
{
        memcpy(fv_ptr(v, a), &x, 2);
}

static inline uint32_t fv_get32(struct fake_vm *v, uint64_t a)
{
        uint32_t x;

        memcpy(&x, fv_ptr(v, a), 4);
        return x;
}

/* Make chain `head` available (without notifying). */
static inline void dq_avail(struct fake_vm *v, struct drv_q *q, uint16_t head)
{
        fv_put16(v, q->avail + 4 + 2ull * (q->avail_idx % q->num), head);
        q->avail_idx++;
        __atomic_thread_fence(__ATOMIC_RELEASE);
        fv_put16(v, q->avail + 2, q->avail_idx);
}

static inline void dq_notify(struct fake_vm *v, const struct drv_q *q)
{
        fv_wr(v, VIRTIO_MMIO_QUEUE_NOTIFY, q->index);
}

static inline uint16_t dq_used_idx(struct fake_vm *v, const struct drv_q *q)
{
        return fv_get16(v, q->used + 2);
}

/* Used element number n (not modulo). */
static inline void dq_used_elem(struct fake_vm *v, const struct drv_q *q, uint16_t n, uint32_t *id,
                                uint32_t *len)
{
        *id = fv_get32(v, q->used + 4 + 8ull * (n % q->num));
        *len = fv_get32(v, q->used + 8 + 8ull * (n % q->num));
}

static inline void dq_set_used_event(struct fake_vm *v, const struct drv_q *q, uint16_t e)
{
        fv_put16(v, q->avail + 4 + 2ull * q->num, e);
}

static inline uint16_t dq_avail_event(struct fake_vm *v, const struct drv_q *q)
{
        return fv_get16(v, q->used + 4 + 8ull * q->num);
}

/*
 * The initialization Linux's virtio_mmio + virtio core perform: reset, ACKNOWLEDGE, DRIVER,
 * read both feature windows, write the accepted ones, FEATURES_OK and read it back, set up
 * each queue (QueueSel, QueueReady must read 0, QueueNumMax, QueueNum, the six address
 * registers, QueueReady = 1), DRIVER_OK. Returns 0, or -1 at the first refusal.
 */
static inline int fv_linux_init(struct fake_vm *v, uint64_t accept, struct drv_q *qs, unsigned nq)
{
        uint64_t offered;

        if (fv_rd(v, VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC ||
            fv_rd(v, VIRTIO_MMIO_VERSION) != 2 || fv_rd(v, VIRTIO_MMIO_DEVICE_ID) == 0)
                return -1;
        fv_wr(v, VIRTIO_MMIO_STATUS, 0);
        fv_wr(v, VIRTIO_MMIO_STATUS, fv_rd(v, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_ACKNOWLEDGE);
        fv_wr(v, VIRTIO_MMIO_STATUS, fv_rd(v, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER);
        fv_wr(v, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
        offered = (uint64_t)fv_rd(v, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
        fv_wr(v, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
        offered |= fv_rd(v, VIRTIO_MMIO_DEVICE_FEATURES);
        accept &= offered;
        fv_wr(v, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
        fv_wr(v, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(accept >> 32));
        fv_wr(v, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
        fv_wr(v, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)accept);
        fv_wr(v, VIRTIO_MMIO_STATUS, fv_rd(v, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_FEATURES_OK);
        if (!(fv_rd(v, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK)) {
                fv_wr(v, VIRTIO_MMIO_STATUS, fv_rd(v, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_FAILED);
                return -1;
        }
        for (unsigned i = 0; i < nq; i++) {
                struct drv_q *q = &qs[i];
                fv_wr(v, VIRTIO_MMIO_QUEUE_SEL, q->index);
                if (fv_rd(v, VIRTIO_MMIO_QUEUE_READY) != 0)
                        return -1;
                uint32_t max = fv_rd(v, VIRTIO_MMIO_QUEUE_NUM_MAX);
                if (max == 0 || q->num > max)
                        return -1;
                fv_wr(v, VIRTIO_MMIO_QUEUE_NUM, q->num);
                fv_wr(v, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)q->desc);
                fv_wr(v, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(q->desc >> 32));
                fv_wr(v, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)q->avail);
                fv_wr(v, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(q->avail >> 32));
                fv_wr(v, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)q->used);
                fv_wr(v, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(q->used >> 32));
                fv_wr(v, VIRTIO_MMIO_QUEUE_READY, 1);
                if (fv_rd(v, VIRTIO_MMIO_QUEUE_READY) != 1)
                        return -1;
        }
        fv_wr(v, VIRTIO_MMIO_STATUS, fv_rd(v, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
        return fv_rd(v, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK ? 0 : -1;
}

/* Linux's interrupt handler: read InterruptStatus, acknowledge it all. */
static inline uint32_t fv_ack(struct fake_vm *v)
{
        uint32_t s = fv_rd(v, VIRTIO_MMIO_INTERRUPT_STATUS);

        fv_wr(v, VIRTIO_MMIO_INTERRUPT_ACK, s);
        return s;
}

#define FV_ALL_FEATURES (~0ull)

#endif
