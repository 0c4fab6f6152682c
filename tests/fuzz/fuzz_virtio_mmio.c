/*
 * libFuzzer target for the virtio-mmio register interface (vmm/virtio_mmio.c) with the real
 * virtio-blk and virtio-console backends behind it, over fuzzed guest RAM (the fake driver's
 * 256 KiB at FV_BASE with canary pages around it).
 *
 * Input: byte 0 selects the device (bit 0: 0 virtio-blk, 1 virtio-console; bit 1: read-only
 * disk; bit 2: the disk on a block device (the blkdev backend) of the harness's own, which
 * completes requests only when told, in any order; bit 3: that device wants page-aligned
 * segments (bouncing); bits 4-6: its queue's room - 1 (-KEEL_EAGAIN past it)); bytes 1-2 (le16) the
 * length of a blob copied to the start of guest RAM; then the blob; then a sequence of operations,
 * each one kind byte and its operands: kind >> 4 != 0xf: a register access; kind bits 0-1: size 1,
 * 2, 4 or 8; bit 2: write; bit 3: offset bit 8; the next byte: offset bits 0-7 (so the whole 0x200
 * window); a write takes 4 more bytes of value (an 8-byte write repeats them in the high half)
 *   0xf0: poke 4 bytes of guest RAM: le16 word index, 4 bytes
 *   0xf1: console input: a length byte, that many bytes
 *   0xf2: bump the selected queue's avail->idx (in guest RAM) by the next byte
 *   0xf3: the block device completes one pending request: the next byte's bits 0-5 pick it,
 *       bit 6 fails it (-KEEL_EIO), bit 7 completes every pending one instead
 * Invariants (abort on violation):
 *   - MagicValue, Version, DeviceID, VendorID read their constants; every read is
 *     zero-extended to its size; a register access that is not 32-bit and aligned reads 0 and
 *     changes nothing, nor does a write to a read-only or reserved register;
 *   - Status (without NEEDS_RESET) is always one of the states of the initialization sequence,
 *     maybe with FAILED; DRIVER_OK implies FEATURES_OK; writing 0 resets: Status, interrupts,
 *     and every queue not ready;
 *   - InterruptStatus holds only bits 0-1 and the interrupt line's level is (InterruptStatus
 *     != 0) after every access;
 *   - a ready queue has a power-of-two size <= QueueNumMax and its rings inside guest RAM;
 *     used->idx equals the device's count of pushed elements, which never exceeds the chains
 *     popped; a broken queue means NEEDS_RESET (once reported);
 *   - the config space reads back the same twice (capacity = sectors for virtio-blk);
 *   - a read-only disk is never written; memory outside guest RAM is never written;
 *   - blkdev backend: every piece the device holds is one slot out and the other way round,
 *     slots out <= slots in use <= VIRTIO_BLK_INFLIGHT; the device's DMA is only to or from
 *     guest RAM and the bounce pages; after the input every request completes and
 *     virtio_blk_quiesce leaves nothing out.
 */
#include <stdint.h>
#include <stdlib.h>

#include <keel/errno.h>
#include <keel/log.h>
#include <keel/spinlock.h>
#include <vmm/virtio.h>

#include "fuzz_fake_vm.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DISK_SECTORS 16

static uint8_t disk[DISK_SECTORS * 512], disk_copy[DISK_SECTORS * 512];
static struct virtio_blk blk;
static struct virtio_console con;

/* The blkdev backend's device: requests pend until the input completes them. */
#define BD_MAX 64
static struct blkdev bdev;
static struct blk_req *bd_pending[BD_MAX];
static unsigned bd_n, bd_room;
static struct spinlock bd_lock;
static uint8_t bd_bounce[8192] __attribute__((aligned(4096)));
static struct fake_vm *bd_vm;

static void bd_perform(struct blk_req *r)
{
        uint64_t at = r->lba * 512;

        for (unsigned i = 0; i < r->nseg; i++) {
                uint8_t *p = (uint8_t *)(uintptr_t)hpa_raw(r->seg[i].pa);
                bool in_ram = p >= bd_vm->ram && p + r->seg[i].len <= bd_vm->ram + FV_SIZE;
                bool in_bounce =
                    p >= bd_bounce && p + r->seg[i].len <= bd_bounce + sizeof(bd_bounce);

                if (!in_ram && !in_bounce)
                        abort(); /* DMA outside the VM's RAM and its bounce pages */
                if (at + r->seg[i].len > sizeof(disk))
                        abort(); /* outside the VM's blocks */
                if (r->op == BLK_READ)
                        memcpy(p, disk + at, r->seg[i].len);
                else if (r->op == BLK_WRITE)
                        memcpy(disk + at, p, r->seg[i].len);
                at += r->seg[i].len;
        }
}

static void bd_complete(unsigned i, int status)
{
        struct blk_req *r = bd_pending[i];

        memmove(&bd_pending[i], &bd_pending[i + 1], (bd_n - i - 1) * sizeof(r));
        bd_n--;
        bd_perform(r);
        r->done(r, status);
}

static int bd_submit(struct blkdev *d, struct blk_req *r)
{
        uint64_t total = 0;

        if (r->op != BLK_FLUSH) {
                if (!r->nseg || r->nseg > d->max_segs || !r->blocks ||
                    r->lba + r->blocks > d->blocks)
                        abort(); /* virtio_blk checks the range before it submits */
                for (unsigned i = 0; i < r->nseg; i++) {
                        if (r->seg[i].len % d->block_size || hpa_raw(r->seg[i].pa) % d->seg_align)
                                abort();
                        total += r->seg[i].len;
                }
                if (total != (uint64_t)r->blocks * d->block_size || total > d->max_transfer)
                        abort();
        }
        if (bd_n == bd_room)
                return -KEEL_EAGAIN;
        bd_pending[bd_n++] = r;
        return 0;
}

static void bd_poll(struct blkdev *d)
{
        (void)d;
        while (bd_n)
                bd_complete(0, 0);
}

static const struct blkdev_ops bd_ops = {.submit = bd_submit, .poll = bd_poll};

static void sink(void *ctx, const uint8_t *buf, size_t len)
{
        (void)ctx;
        (void)buf;
        (void)len;
}

/* Registers a write may change something through (all others are read-only or reserved). */
static bool writable(uint64_t off)
{
        switch (off) {
        case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
        case VIRTIO_MMIO_DRIVER_FEATURES:
        case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
        case VIRTIO_MMIO_QUEUE_SEL:
        case VIRTIO_MMIO_QUEUE_NUM:
        case VIRTIO_MMIO_QUEUE_READY:
        case VIRTIO_MMIO_QUEUE_NOTIFY:
        case VIRTIO_MMIO_INTERRUPT_ACK:
        case VIRTIO_MMIO_STATUS:
        case VIRTIO_MMIO_QUEUE_DESC_LOW:
        case VIRTIO_MMIO_QUEUE_DESC_HIGH:
        case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
        case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
        case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
        case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
                return true;
        default:
                return false;
        }
}

static bool legal_status(uint32_t s)
{
        static const uint32_t seq[] = {
            0,
            VIRTIO_STATUS_ACKNOWLEDGE,
            VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER,
            VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK,
            VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
                VIRTIO_STATUS_DRIVER_OK,
        };

        s &= ~(VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED);
        for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++)
                if (s == seq[i])
                        return true;
        return false;
}

/* The transport's state, without the log budget (which every refused access may spend). */
static void snapshot(const struct virtio_mmio *t, struct virtio_mmio *s)
{
        memcpy(s, t, sizeof(*s));
        s->log_budget = 0;
}

static void check_transport(struct fake_vm *v, bool console)
{
        struct virtio_mmio *t = &v->t;

        if (!legal_status(t->status))
                abort();
        if ((t->status & VIRTIO_STATUS_DRIVER_OK) && !(t->status & VIRTIO_STATUS_FEATURES_OK))
                abort();
        if (t->interrupt_status & ~3u)
                abort();
        if (v->irq_level != (t->interrupt_status != 0))
                abort();
        for (unsigned i = 0; i < t->dev->num_queues; i++) {
                const struct virtq *q = &t->queues[i];

                if (q->pushed > q->popped || q->used_idx != (uint16_t)q->pushed)
                        abort();
                if (q->broken && q->reported && !(t->status & VIRTIO_STATUS_NEEDS_RESET))
                        abort();
                if (!q->ready)
                        continue;
                if (q->num == 0 || (q->num & (q->num - 1)) || q->num > q->num_max)
                        abort();
                if (!gmem_contains(&v->mem, q->desc, 16ull * q->num) ||
                    !gmem_contains(&v->mem, q->used, 6 + 8ull * q->num))
                        abort();
                if (q->pushed && fv_get16(v, gpa_raw(q->used) + 2) != q->used_idx)
                        abort();
        }
        if (console && t->dev->num_queues != 2)
                abort();
        if (!console && blk.dev) {
                unsigned out = 0, active = 0;

                for (unsigned i = 0; i < VIRTIO_BLK_INFLIGHT; i++) {
                        out += blk.io[i].state == VBIO_OUT;
                        active += blk.io[i].state != VBIO_FREE;
                }
                if (out != blk.out || active != blk.active || out != bd_n ||
                    blk.active > VIRTIO_BLK_INFLIGHT || blk.callers)
                        abort();
        }
}

static void check_read(struct fake_vm *v, uint64_t off, unsigned sz, uint64_t val)
{
        if (sz < 8 && (val >> (8 * sz)) != 0)
                abort();
        if (off >= VIRTIO_MMIO_CONFIG) {
                uint64_t again;

                virtio_mmio_read(&v->t, off, sz, &again);
                if (again != val)
                        abort();
                if (v->t.dev == &blk.vdev && off == VIRTIO_MMIO_CONFIG && sz == 8 &&
                    val != blk.sectors)
                        abort();
                return;
        }
        if (sz != 4 || off % 4) {
                if (val != 0)
                        abort();
                return;
        }
        switch (off) {
        case VIRTIO_MMIO_MAGIC_VALUE:
                if (val != VIRTIO_MMIO_MAGIC)
                        abort();
                break;
        case VIRTIO_MMIO_VERSION:
                if (val != 2)
                        abort();
                break;
        case VIRTIO_MMIO_DEVICE_ID:
                if (val != v->t.dev->device_id)
                        abort();
                break;
        case VIRTIO_MMIO_VENDOR_ID:
                if (val != VIRTIO_MMIO_VENDOR)
                        abort();
                break;
        case VIRTIO_MMIO_QUEUE_READY:
                if (val > 1)
                        abort();
                break;
        case VIRTIO_MMIO_STATUS:
                if (val != v->t.status)
                        abort();
                break;
        default:
                break;
        }
}

static void reg_access(struct fake_vm *v, uint8_t kind, struct in *in, bool console)
{
        static struct virtio_mmio before, after;
        unsigned sz = 1u << (kind & 3);
        bool write = kind & 4;
        uint8_t lo;
        uint32_t val32 = 0;
        uint64_t off, val;

        if (!take(in, &lo, 1) || (write && !take(in, &val32, 4)))
                return;
        off = (uint64_t)(kind & 8) << 5 | lo;
        if (!write) {
                virtio_mmio_read(&v->t, off, sz, &val);
                check_read(v, off, sz, val);
                return;
        }
        val = sz == 8 ? (uint64_t)val32 << 32 | val32 : val32;
        snapshot(&v->t, &before);
        virtio_mmio_write(&v->t, off, sz, val);
        snapshot(&v->t, &after);
        if (off < VIRTIO_MMIO_CONFIG && (sz != 4 || off % 4 || !writable(off)) &&
            memcmp(&before, &after, sizeof(before)) != 0)
                abort();
        if (off == VIRTIO_MMIO_STATUS && sz == 4 && val32 == 0) {
                if (v->t.status != 0 || v->t.interrupt_status != 0 || v->irq_level)
                        abort();
                for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
                        if (v->t.queues[i].ready)
                                abort();
        }
        (void)console;
}

static void special(struct fake_vm *v, uint8_t kind, struct in *in, bool console)
{
        uint16_t word;
        uint8_t b[4], len;
        const struct virtq *q;

        switch (kind & 3) {
        case 0:
                if (take(in, &word, 2) && take(in, b, 4))
                        memcpy(v->ram + 4ull * word, b, 4); /* 64 Ki words = 256 KiB of RAM */
                break;
        case 1:
                if (!take(in, &len, 1))
                        break;
                if (len > in->n)
                        len = (uint8_t)in->n;
                if (console)
                        console_input(&con, in->p, len);
                in->p += len;
                in->n -= len;
                break;
        case 3:
                if (!take(in, b, 1) || !bd_n)
                        break;
                if (b[0] & 0x80)
                        bd_poll(&bdev);
                else
                        bd_complete((b[0] & 0x3f) % bd_n, (b[0] & 0x40) ? -KEEL_EIO : 0);
                break;
        case 2:
                q = virtio_mmio_queue(&v->t, v->t.queue_sel);
                if (!take(in, b, 1) || !q || !gmem_contains(&v->mem, q->avail, 4))
                        break;
                fv_put16(v, gpa_raw(q->avail) + 2,
                         (uint16_t)(fv_get16(v, gpa_raw(q->avail) + 2) + b[0]));
                break;
        default:
                break;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct in in = {data, size};
        uint8_t sel, kind;
        uint16_t blob;
        bool console, ro, on_dev;
        const struct virtio_device *dev;
        struct fake_vm *v;

        if (!take(&in, &sel, 1) || !take(&in, &blob, 2))
                return 0;
        console = sel & 1;
        ro = !console && (sel & 2);
        on_dev = !console && (sel & 4);
        log_set_sink(NULL);
        v = fz_vm();
        if (blob > in.n)
                blob = (uint16_t)in.n;
        memcpy(v->ram, in.p, blob);
        in.p += blob;
        in.n -= blob;

        if (console) {
                virtio_console_init(&con, sink, NULL);
                dev = &con.vdev;
        } else {
                for (size_t i = 0; i < sizeof(disk); i++)
                        disk[i] = (uint8_t)(i * 7 + i / 512);
                memcpy(disk_copy, disk, sizeof(disk));
                if (on_dev) {
                        memset(&bdev, 0, sizeof(bdev));
                        strcpy(bdev.name, "fz0");
                        bdev.blocks = DISK_SECTORS;
                        bdev.block_size = 512;
                        bdev.max_transfer = 2048;
                        bdev.seg_align = (sel & 8) ? 4096 : 4;
                        bdev.max_segs = 3;
                        bdev.volatile_cache = true;
                        bdev.ops = &bd_ops;
                        bd_n = 0;
                        bd_room = 1 + ((sel >> 4) & 7);
                        bd_vm = v;
                        spin_init(&bd_lock);
                        if (virtio_blk_init_blkdev(&blk, &bdev, 0, DISK_SECTORS, ro, &bd_lock,
                                                   bd_bounce, hpa((uint64_t)(uintptr_t)bd_bounce),
                                                   sizeof(bd_bounce), "fz", 0))
                                abort();
                } else {
                        virtio_blk_init(&blk, disk, sizeof(disk), ro, "fz", 0);
                }
                dev = &blk.vdev;
        }
        if (fv_attach(v, dev, "fuzz") < 0)
                abort();
        if (console)
                virtio_console_attach(&con, &v->t);
        else
                virtio_blk_attach(&blk, &v->t);

        while (take(&in, &kind, 1)) {
                if (kind >> 4 == 0xf)
                        special(v, kind, &in, console);
                else
                        reg_access(v, kind, &in, console);
                check_transport(v, console);
        }
        if (on_dev) {
                virtio_blk_quiesce(&blk); /* completes what is out, takes nothing more */
                if (blk.out || bd_n || blk.callers)
                        abort();
                check_transport(v, console);
        }
        if (ro && memcmp(disk, disk_copy, sizeof(disk)) != 0)
                abort();
        if (!fv_canaries_ok(v))
                abort();
        return 0;
}
