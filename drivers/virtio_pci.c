/*
 * virtio over PCI, the driver side of the modern transport (virtio 1.2, 4.1.4: the vendor
 * capabilities, 4.1.4.3 the common configuration, 4.1.4.4 notifications, 3.1.1 the
 * initialisation sequence) and of the split virtqueue (2.7). drivers/include/drivers/virtio_pci.h
 * says what it promises; docs/virtio-pci.md what it negotiates.
 */
#include <stdio.h>
#include <string.h>

#include <drivers/virtio_pci.h>
#include <keel/arch.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <keel/palloc.h>
#include <keel/time.h>

/* The common configuration structure (4.1.4.3). */
#define CC_DFSELECT   0x00
#define CC_DF         0x04
#define CC_GFSELECT   0x08
#define CC_GF         0x0c
#define CC_MSIX       0x10
#define CC_NUMQ       0x12
#define CC_STATUS     0x14
#define CC_GENERATION 0x15
#define CC_Q_SELECT   0x16
#define CC_Q_SIZE     0x18
#define CC_Q_MSIX     0x1a
#define CC_Q_ENABLE   0x1c
#define CC_Q_NOFF     0x1e
#define CC_Q_DESC     0x20
#define CC_Q_DRIVER   0x28
#define CC_Q_DEVICE   0x30
#define CC_LEN        0x38
#define NO_VECTOR     0xffff
#define RESET_WAIT_MS 1000

/* Where the parts of a queue lie in its page (2.7: 16-, 2- and 4-byte alignment). */
#define RING_AVAIL           1024
#define RING_USED            2048
#define DESC_F_NEXT          1
#define DESC_F_WRITE         2
#define AVAIL_F_NO_INTERRUPT 1

static uint32_t mmio_read(volatile void *p, unsigned width)
{
        return width == 1   ? *(volatile uint8_t *)p
               : width == 2 ? *(volatile uint16_t *)p
                            : *(volatile uint32_t *)p;
}

static void mmio_write(volatile void *p, unsigned width, uint32_t v)
{
        if (width == 1)
                *(volatile uint8_t *)p = (uint8_t)v;
        else if (width == 2)
                *(volatile uint16_t *)p = (uint16_t)v;
        else
                *(volatile uint32_t *)p = v;
}

static const struct virtio_pci_io mmio_io = {mmio_read, mmio_write};
const struct virtio_pci_io *virtio_pci_io = &mmio_io;

static uint8_t rd8(volatile uint8_t *b, unsigned off)
{
        return (uint8_t)virtio_pci_io->read(b + off, 1);
}

static uint16_t rd16(volatile uint8_t *b, unsigned off)
{
        return (uint16_t)virtio_pci_io->read(b + off, 2);
}

static uint32_t rd32(volatile uint8_t *b, unsigned off)
{
        return virtio_pci_io->read(b + off, 4);
}

static void wr8(volatile uint8_t *b, unsigned off, uint8_t v)
{
        virtio_pci_io->write(b + off, 1, v);
}

static void wr16(volatile uint8_t *b, unsigned off, uint16_t v)
{
        virtio_pci_io->write(b + off, 2, v);
}

static void wr32(volatile uint8_t *b, unsigned off, uint32_t v)
{
        virtio_pci_io->write(b + off, 4, v);
}

/* 64-bit fields as two 32-bit writes, low first (4.1.3.1 allows it). */
static void wr64(volatile uint8_t *b, unsigned off, uint64_t v)
{
        wr32(b, off, (uint32_t)v);
        wr32(b, off + 4, (uint32_t)(v >> 32));
}

/* The first capability of `type` whose structure lies in an assigned memory BAR and is at
 * least `min` bytes long, mapped; NULL if none. */
static volatile uint8_t *find_cap(struct virtio_pci *v, uint8_t type, uint32_t min, uint32_t *len,
                                  uint32_t *mult, int *err)
{
        const struct pci_dev *d = v->pci;

        for (unsigned i = 0; i < d->virtio_count; i++) {
                const struct pci_virtio_cap *c = &d->virtio[i];
                const struct pci_bar *b;

                if (c->cfg_type != type || c->bar > 5 || c->length < min)
                        continue;
                b = &d->bar[c->bar];
                if ((b->kind != PCI_BAR_MEM32 && b->kind != PCI_BAR_MEM64) || !b->base ||
                    c->offset > b->size || c->length > b->size - c->offset)
                        continue;
                *err = arch_map_device(hpa(b->base), b->size);
                if (*err) {
                        LOG_WARN("virtio %s: cannot map BAR%u %#llx+%#llx: %s", v->name, c->bar,
                                 (unsigned long long)b->base, (unsigned long long)b->size,
                                 keel_strerror(*err));
                        return NULL;
                }
                *len = c->length;
                if (mult)
                        *mult = c->notify_mult;
                return hva_ptr(arch_hpa_to_hva(hpa(b->base + c->offset)));
        }
        return NULL;
}

static uint64_t deadline_after(uint64_t ms)
{
        uint64_t khz = arch_tsc_khz();

        return arch_tsc() + ms * (khz ? khz : 4000000);
}

bool virtio_pci_reset(struct virtio_pci *v)
{
        uint64_t end = deadline_after(RESET_WAIT_MS);

        wr8(v->common, CC_STATUS, 0);
        /* 4.1.4.3.2: the reset is done when device_status reads 0 again. */
        while (rd8(v->common, CC_STATUS) != 0)
                if (arch_tsc() > end)
                        return false;
        return true;
}

int virtio_pci_init(struct virtio_pci *v, struct pci_dev *d, uint32_t min_device_len)
{
        uint32_t len;
        int err = 0;

        memset(v, 0, sizeof(*v));
        v->pci = d;
        pci_name(d, v->name, sizeof(v->name));
        v->common = find_cap(v, 1, CC_LEN, &len, NULL, &err);
        if (!v->common && !err) {
                LOG_WARN("virtio %s: %04x:%04x has no virtio 1 common configuration "
                         "(legacy-only device): not used",
                         v->name, d->vendor, d->device);
                return -KEEL_ENODEV;
        }
        if (!err)
                v->notify = find_cap(v, 2, 2, &v->notify_len, &v->notify_mult, &err);
        if (!err)
                v->isr = find_cap(v, 3, 1, &len, NULL, &err);
        if (!err)
                v->device = find_cap(v, 4, min_device_len, &v->device_len, NULL, &err);
        if (err)
                return err;
        if (!v->notify || !v->isr || !v->device) {
                LOG_WARN("virtio %s: no usable %s structure (a virtio capability in a memory "
                         "BAR%s): not used",
                         v->name,
                         !v->notify ? "notify"
                         : !v->isr  ? "ISR"
                                    : "device configuration",
                         v->device ? "" : " of the device's size");
                return -KEEL_ENODEV;
        }
        if (!virtio_pci_reset(v)) {
                LOG_WARN("virtio %s: did not reset within %u ms (status %#x): not used", v->name,
                         RESET_WAIT_MS, rd8(v->common, CC_STATUS));
                return -KEEL_ENODEV;
        }
        wr16(v->common, CC_MSIX, NO_VECTOR); /* polled: no configuration-change interrupt */
        wr8(v->common, CC_STATUS, VPCI_S_ACKNOWLEDGE);
        wr8(v->common, CC_STATUS, VPCI_S_ACKNOWLEDGE | VPCI_S_DRIVER);
        return 0;
}

uint64_t virtio_pci_device_features(struct virtio_pci *v)
{
        uint64_t f;

        wr32(v->common, CC_DFSELECT, 0);
        f = rd32(v->common, CC_DF);
        wr32(v->common, CC_DFSELECT, 1);
        return f | (uint64_t)rd32(v->common, CC_DF) << 32;
}

int virtio_pci_negotiate(struct virtio_pci *v, uint64_t wanted)
{
        uint64_t offered = virtio_pci_device_features(v);

        if (!(offered & VPCI_BIT(VPCI_F_VERSION_1))) {
                LOG_WARN("virtio %s: the device does not offer VERSION_1 (features %#llx): "
                         "legacy-only, not used",
                         v->name, (unsigned long long)offered);
                return -KEEL_ENODEV;
        }
        /* Keel's DMA addresses are physical, so a device that needs ACCESS_PLATFORM (behind an
         * IOMMU Keel does not program) gets what it would get from any IOMMU-less driver. */
        v->features =
            offered & (wanted | VPCI_BIT(VPCI_F_VERSION_1) | VPCI_BIT(VPCI_F_ACCESS_PLATFORM));
        wr32(v->common, CC_GFSELECT, 0);
        wr32(v->common, CC_GF, (uint32_t)v->features);
        wr32(v->common, CC_GFSELECT, 1);
        wr32(v->common, CC_GF, (uint32_t)(v->features >> 32));
        wr8(v->common, CC_STATUS, VPCI_S_ACKNOWLEDGE | VPCI_S_DRIVER | VPCI_S_FEATURES_OK);
        if (!(rd8(v->common, CC_STATUS) & VPCI_S_FEATURES_OK)) {
                LOG_WARN("virtio %s: the device refused features %#llx (FEATURES_OK not "
                         "kept): not used",
                         v->name, (unsigned long long)v->features);
                return -KEEL_ENODEV;
        }
        return 0;
}

int virtio_pci_queue_setup(struct virtio_pci *v, struct vq *q, uint16_t index, uint16_t max)
{
        uint16_t size, noff;
        uint64_t off;
        hpa_t pa;
        int err;

        if (index >= rd16(v->common, CC_NUMQ)) {
                LOG_WARN("virtio %s: no queue %u (the device has %u): not used", v->name, index,
                         rd16(v->common, CC_NUMQ));
                return -KEEL_ENODEV;
        }
        wr16(v->common, CC_Q_SELECT, index);
        size = rd16(v->common, CC_Q_SIZE);
        noff = rd16(v->common, CC_Q_NOFF);
        off = (uint64_t)noff * v->notify_mult;
        if (!size || off + 2 > v->notify_len) {
                LOG_WARN("virtio %s: queue %u: size %u, notify offset %u * %u outside the "
                         "%u-byte notify structure: not used",
                         v->name, index, size, noff, v->notify_mult, v->notify_len);
                return -KEEL_ENODEV;
        }
        /* Split queues have power-of-two sizes (2.7); the device may offer any maximum. */
        while (max > size)
                max /= 2;
        err = palloc_alloc(&keel_palloc, 1, PAGE_SIZE, &pa); /* zeroed */
        if (err)
                return err;
        memset(q, 0, sizeof(*q));
        q->index = index;
        q->size = max;
        q->ring = hva_ptr(arch_hpa_to_hva(pa));
        q->ring_pa = pa;
        q->notify = v->notify + off;
        q->num_free = max;
        for (uint16_t i = 0; i < max; i++)
                q->next[i] = (uint16_t)(i + 1);
        /* Polled: no interrupt after each used buffer (2.7.7). */
        *(volatile uint16_t *)(q->ring + RING_AVAIL) = AVAIL_F_NO_INTERRUPT;
        wr16(v->common, CC_Q_SIZE, max);
        wr16(v->common, CC_Q_MSIX, NO_VECTOR);
        wr64(v->common, CC_Q_DESC, hpa_raw(pa));
        wr64(v->common, CC_Q_DRIVER, hpa_raw(pa) + RING_AVAIL);
        wr64(v->common, CC_Q_DEVICE, hpa_raw(pa) + RING_USED);
        arch_dma_barrier();
        wr16(v->common, CC_Q_ENABLE, 1);
        return 0;
}

void virtio_pci_driver_ok(struct virtio_pci *v)
{
        arch_dma_barrier();
        wr8(v->common, CC_STATUS,
            VPCI_S_ACKNOWLEDGE | VPCI_S_DRIVER | VPCI_S_FEATURES_OK | VPCI_S_DRIVER_OK);
}

uint8_t virtio_pci_status(const struct virtio_pci *v)
{
        return rd8(v->common, CC_STATUS);
}

void virtio_pci_stop(struct virtio_pci *v)
{
        bool reset = virtio_pci_reset(v);

        wr8(v->common, CC_STATUS, VPCI_S_FAILED);
        if (v->pci->host)
                pci_write16(v->pci->host, v->pci, PCI_COMMAND,
                            pci_read16(v->pci->host, v->pci, PCI_COMMAND) &
                                (uint16_t)~PCI_CMD_MASTER);
        if (!reset)
                LOG_WARN("virtio %s: did not reset within %u ms; bus mastering turned off", v->name,
                         RESET_WAIT_MS);
}

uint8_t virtio_pci_config_generation(const struct virtio_pci *v)
{
        return rd8(v->common, CC_GENERATION);
}

uint32_t virtio_pci_cfg32(const struct virtio_pci *v, uint32_t off)
{
        return off + 4 <= v->device_len ? rd32(v->device, off) : 0;
}

uint16_t virtio_pci_cfg16(const struct virtio_pci *v, uint32_t off)
{
        return off + 2 <= v->device_len ? rd16(v->device, off) : 0;
}

uint8_t virtio_pci_cfg8(const struct virtio_pci *v, uint32_t off)
{
        return off + 1 <= v->device_len ? rd8(v->device, off) : 0;
}

/* ---- the split virtqueue, driver side (2.7) -------------------------------------------- */

struct desc {
        uint64_t addr;
        uint32_t len;
        uint16_t flags, next;
};

int vq_add(struct vq *q, const struct vq_buf *b, unsigned n)
{
        volatile struct desc *table = (volatile struct desc *)q->ring;
        volatile uint16_t *avail = (volatile uint16_t *)(q->ring + RING_AVAIL);
        uint16_t head = q->free_head, d = head;

        if (!n || n > q->num_free)
                return -KEEL_EAGAIN;
        for (unsigned i = 0; i < n; i++) {
                table[d].addr = hpa_raw(b[i].pa);
                table[d].len = b[i].len;
                table[d].flags =
                    (uint16_t)((b[i].write ? DESC_F_WRITE : 0) | (i + 1 < n ? DESC_F_NEXT : 0));
                table[d].next = i + 1 < n ? q->next[d] : 0;
                if (i + 1 < n)
                        d = q->next[d];
        }
        q->free_head = q->next[d];
        q->num_free = (uint16_t)(q->num_free - n);
        q->chain[head] = (uint8_t)n;
        q->in_flight++;
        avail[2 + q->avail_idx % q->size] = head;
        arch_dma_barrier(); /* the descriptors and the ring entry before the index */
        q->avail_idx++;
        avail[1] = q->avail_idx;
        return head;
}

void vq_kick(struct vq *q)
{
        arch_dma_barrier(); /* the index before the notification */
        wr16(q->notify, 0, q->index);
}

int vq_get_used(struct vq *q, uint16_t *head, uint32_t *len, const char **why)
{
        volatile uint16_t *used = (volatile uint16_t *)(q->ring + RING_USED);
        volatile uint32_t *elem;
        uint16_t idx = used[1], id, d;

        if (idx == q->last_used)
                return 0;
        if ((uint16_t)(idx - q->last_used) > q->in_flight) {
                *why = "the used index moved past the requests in flight";
                return -KEEL_EIO;
        }
        arch_dma_barrier(); /* the entry after the index that published it */
        elem = (volatile uint32_t *)(q->ring + RING_USED + 4) + 2 * (q->last_used % q->size);
        if (elem[0] >= q->size || !q->chain[elem[0]]) {
                *why = "a used entry names a descriptor that heads no request in flight";
                return -KEEL_EIO;
        }
        id = (uint16_t)elem[0];
        *len = elem[1];
        q->last_used++;
        /* Free the chain from Keel's own links, not from the descriptor table. */
        d = id;
        for (unsigned i = 1; i < q->chain[id]; i++)
                d = q->next[d];
        q->next[d] = q->free_head;
        q->free_head = id;
        q->num_free = (uint16_t)(q->num_free + q->chain[id]);
        q->chain[id] = 0;
        q->in_flight--;
        *head = id;
        return 1;
}
