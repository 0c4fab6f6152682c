/*
 * Snapshots on a partition (vmm/include/vmm/snapshot.h, docs/snapshot.md): with `snapshot =
 * DEV:part=NAME` in its config, `snapshot VM` writes the VM's snapshot (vmm/snapshot.c's
 * format, unchanged) from the partition's first block and flushes the device, and `restore
 * VM` reads it back from there, also after Keel restarted. The snapshot is built in memory
 * first and that memory is freed once it is on the device. Rarely run: built for size.
 */
#include <stdio.h>
#include <string.h>

#include <arch/relax.h>
#include <drivers/blkdev.h>
#include <keel/arch.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/palloc.h>
#include <vmm/snapshot.h>
#include <vmm/vm.h>
#include <vmm/vmm.h>

#define IO_DEPTH 8 /* requests in flight at once */

int snapshot_part_check(const struct snap_header *h, const char *vm, uint64_t room, char *why,
                        size_t n)
{
        if (snap_header_check(h, why, n))
                ;
        else if (strncmp(h->name, vm, sizeof(h->name)) ||
                 strnlen(h->name, sizeof(h->name)) == sizeof(h->name))
                snprintf(why, n, "it is a snapshot of vm %.31s, not of vm %s", h->name, vm);
        else if (h->size < sizeof(*h) + 8 || h->size > room)
                snprintf(why, n,
                         "its header says %llu bytes, the partition holds %llu: the snapshot is "
                         "corrupted",
                         (unsigned long long)h->size, (unsigned long long)room);
        else
                return 0;
        return -KEEL_EINVAL;
}

struct part_io {
        struct blk_req req[IO_DEPTH];
        struct blk_seg seg[IO_DEPTH];
        unsigned busy; /* bit i: req[i] is with the device (atomic) */
        int err;       /* the first failure (atomic) */
};

/* Runs wherever the device completes (any CPU's pollers, or inside submit/poll). */
static void part_io_done(struct blk_req *r, int status)
{
        struct part_io *io = r->ctx;

        if (status)
                __atomic_store_n(&io->err, status, __ATOMIC_RELAXED);
        __atomic_fetch_and(&io->busy, ~(1u << (r - io->req)), __ATOMIC_RELEASE);
}

/*
 * `blocks` blocks from `lba` of p's partition to or from the contiguous Keel pages at pa, up
 * to IO_DEPTH requests in flight; a write is followed by a flush where the device has a
 * volatile cache. 0 or -KEEL_EIO.
 */
static int part_rw(const struct snap_part *p, bool write, uint64_t lba, hpa_t pa, uint64_t blocks)
{
        struct blkdev *d = p->dev;
        struct part_io io = {0};
        uint32_t per = d->max_transfer / d->block_size, bs = d->block_size;
        uint64_t next = 0;

        if (per * bs > PAGE_SIZE)
                per = per * bs / PAGE_SIZE * PAGE_SIZE / bs; /* segments stay page aligned */
        while (next < blocks || __atomic_load_n(&io.busy, __ATOMIC_ACQUIRE)) {
                unsigned i = (unsigned)__builtin_ctz(~__atomic_load_n(&io.busy, __ATOMIC_ACQUIRE));

                if (next < blocks && !__atomic_load_n(&io.err, __ATOMIC_RELAXED) && i < IO_DEPTH) {
                        uint32_t n = blocks - next < per ? (uint32_t)(blocks - next) : per;
                        int err;

                        io.seg[i] =
                            (struct blk_seg){.pa = hpa(hpa_raw(pa) + next * bs), .len = n * bs};
                        io.req[i] = (struct blk_req){.op = write ? BLK_WRITE : BLK_READ,
                                                     .lba = p->start + lba + next,
                                                     .blocks = n,
                                                     .seg = &io.seg[i],
                                                     .nseg = 1,
                                                     .done = part_io_done,
                                                     .ctx = &io};
                        __atomic_fetch_or(&io.busy, 1u << i, __ATOMIC_RELAXED);
                        err = d->ops->submit(d, &io.req[i]);
                        if (!err) {
                                next += n;
                                continue;
                        }
                        __atomic_fetch_and(&io.busy, ~(1u << i), __ATOMIC_RELAXED);
                        if (err != -KEEL_EAGAIN)
                                io.err = -KEEL_EIO;
                }
                if (__atomic_load_n(&io.err, __ATOMIC_RELAXED) && next < blocks)
                        next = blocks; /* submit no more; wait for what is out */
                if (d->ops->poll)
                        d->ops->poll(d);
                arch_cpu_relax();
        }
        if (!io.err && write && d->volatile_cache) {
                struct blk_req f = {.op = BLK_FLUSH};
                io.err = blkdev_sync(d, &f);
        }
        return io.err ? -KEEL_EIO : 0;
}

int snapshot_take_part(struct snapshot_store *s, struct vm *vm, const struct snap_part *p,
                       char *msg, size_t len)
{
        struct snapshot_store t = {0};
        uint32_t bs = p->dev->block_size;
        uint64_t blocks;
        int err = snapshot_take(&t, vm, msg, len);

        if (err)
                return err;
        blocks = (t.len + bs - 1) / bs;
        if (blocks > p->blocks) {
                snprintf(msg, len,
                         "cannot snapshot vm %s: it takes %llu KiB, %s holds %llu KiB: make the "
                         "partition at least %llu blocks of %u bytes",
                         vm->name, (unsigned long long)(t.len + 1023) >> 10, p->name,
                         (unsigned long long)(p->blocks * bs >> 10), (unsigned long long)blocks,
                         bs);
                err = -KEEL_ENOSPC;
        } else if (part_rw(p, true, 0, t.pa, blocks)) {
                snprintf(msg, len,
                         "cannot snapshot vm %s: writing %s failed (I/O error); the snapshot "
                         "there is damaged, take a new one",
                         vm->name, p->name);
                err = -KEEL_EIO;
        } else {
                memcpy(&s->disk_sum, (uint8_t *)hva_ptr(arch_hpa_to_hva(t.pa)) + t.len - 8, 8);
                snprintf(msg, len,
                         "vm %s: snapshot on %s, %llu KiB (RAM %llu KiB), flushed; restore %s "
                         "brings it back, also after Keel restarts",
                         vm->name, p->name, (unsigned long long)(t.len >> 10),
                         (unsigned long long)(gmem_total(&vm->mem) >> 10), vm->name);
        }
        CHECK(palloc_free(&keel_palloc, t.pa, t.pages) == 0);
        return err;
}

int snapshot_restore_part(const struct snapshot_store *s, struct vm *vm, const struct snap_part *p,
                          char *msg, size_t len)
{
        uint32_t bs = p->dev->block_size;
        uint64_t pages = 1, size = 0, sum;
        char why[200];
        hpa_t pa;
        const uint8_t *buf;
        int err;

        if (palloc_alloc(&keel_palloc, 1, PAGE_SIZE, &pa))
                goto no_memory;
        buf = hva_ptr(arch_hpa_to_hva(pa));
        err = part_rw(p, false, 0, pa, 1);
        if (!err) { /* the header says how much to read */
                err = snapshot_part_check((const void *)buf, vm->name, p->blocks * bs, why,
                                          sizeof(why));
                size = ((const struct snap_header *)buf)->size;
                CHECK(palloc_free(&keel_palloc, pa, 1) == 0);
                if (err)
                        goto refused;
                pages = (size + PAGE_SIZE - 1) / PAGE_SIZE; /* whole blocks: bs divides pages */
                if (palloc_alloc(&keel_palloc, pages, PAGE_SIZE, &pa))
                        goto no_memory;
                buf = hva_ptr(arch_hpa_to_hva(pa));
                err = part_rw(p, false, 0, pa, (size + bs - 1) / bs);
        }
        if (err) {
                snprintf(msg, len, "cannot restore vm %s: reading %s failed (I/O error)", vm->name,
                         p->name);
        } else {
                memcpy(&sum, buf + size - 8, 8);
                if (p->disk && sum != s->disk_sum) {
                        snprintf(why, sizeof(why),
                                 "it was written before Keel last started, and vm %s's disk %s "
                                 "may have been written since (no write count survives a "
                                 "restart): take a new snapshot",
                                 vm->name, p->disk);
                        err = -KEEL_EINVAL;
                } else {
                        err = snapshot_load(vm, buf, size, why, sizeof(why));
                }
        }
        CHECK(palloc_free(&keel_palloc, pa, pages) == 0);
        if (!err)
                snprintf(msg, len,
                         "vm %s: restored from its snapshot on %s; it is paused (resume %s)",
                         vm->name, p->name, vm->name);
        if (err != -KEEL_EINVAL)
                return err;
refused:
        snprintf(msg, len, "cannot restore vm %s: snapshot refused: %s: %s", vm->name, p->name,
                 why);
        return -KEEL_EINVAL;
no_memory:
        snprintf(msg, len, "cannot restore vm %s: no %llu KiB run of free memory to read %s into",
                 vm->name, (unsigned long long)(pages * PAGE_SIZE >> 10), p->name);
        return -KEEL_ENOMEM;
}
