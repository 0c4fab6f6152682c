/*
 * Snapshots on a partition (vmm/include/vmm/snapshot.h, docs/snapshot.md): with `snapshot =
 * DEV:part=NAME` in its config, `snapshot VM` writes the VM's snapshot (vmm/snapshot.c's
 * format) into the one of the partition's two slots that does not hold the newest good
 * snapshot, and flushes the device; `restore VM` reads back the newest good one, also after
 * Keel restarted, so a snapshot cut short by an error or a power cut leaves the earlier one. The
 * snapshot is built in memory first and that memory is freed once it is on the device. Rarely run:
 * built for size.
 */
#include <stdio.h>
#include <string.h>

#include <arch/relax.h>
#include <drivers/blkdev.h>
#include <keel/arch.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/hash.h>
#include <keel/log.h>
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
                         "its header says %llu bytes, a slot of the partition holds %llu: the "
                         "snapshot is corrupted",
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

/*
 * The partition holds two slots of p->blocks / 2 blocks each, slot k from block k * (p->blocks
 * / 2); each holds a snapshot or not. The newest is the one with the greater generation in
 * its header (vmm/snapshot.h) whose header and checksum are good.
 */
struct slots {
        struct snap_header h[2];
        bool ok[2];           /* its header passes snapshot_part_check */
        char why[2][128];     /* else why not */
        unsigned order[2], n; /* the slots with good headers, newest first */
};

static uint64_t slot_blocks(const struct snap_part *p)
{
        return p->blocks / 2;
}

/* Both slots' headers; 0, -KEEL_ENOMEM or -KEEL_EIO. */
static int slots_read(const struct snap_part *p, const char *vm, struct slots *sl)
{
        uint64_t room = slot_blocks(p) * p->dev->block_size;
        hpa_t pa;
        int err = 0;

        memset(sl, 0, sizeof(*sl));
        if (palloc_alloc(&keel_palloc, 1, PAGE_SIZE, &pa))
                return -KEEL_ENOMEM;
        for (unsigned k = 0; k < 2 && !err; k++) {
                err = part_rw(p, false, k * slot_blocks(p), pa, 1);
                memcpy(&sl->h[k], hva_ptr(arch_hpa_to_hva(pa)), sizeof(sl->h[k]));
                sl->ok[k] = !err && !snapshot_part_check(&sl->h[k], vm, room, sl->why[k],
                                                         sizeof(sl->why[k]));
                if (sl->ok[k])
                        sl->order[sl->n++] = k;
        }
        CHECK(palloc_free(&keel_palloc, pa, 1) == 0);
        if (sl->n == 2 && sl->h[1].generation > sl->h[0].generation)
                sl->order[0] = 1, sl->order[1] = 0;
        return err;
}

#define VERIFY_PAGES 16

/* Does slot k's snapshot (its header good) match its checksum? Read in pieces. */
static int slot_verify(const struct snap_part *p, unsigned k, uint64_t size, bool *good)
{
        uint32_t bs = p->dev->block_size;
        uint64_t h = HASH64_INIT, done = 0, stored = 0, body = size - 8;
        hpa_t pa;
        int err = 0;

        if (palloc_alloc(&keel_palloc, VERIFY_PAGES, PAGE_SIZE, &pa))
                return -KEEL_ENOMEM;
        while (!err && done < size) {
                uint64_t n =
                    size - done < VERIFY_PAGES * PAGE_SIZE ? size - done : VERIFY_PAGES * PAGE_SIZE;
                const uint8_t *buf = hva_ptr(arch_hpa_to_hva(pa));

                err = part_rw(p, false, k * slot_blocks(p) + done / bs, pa, (n + bs - 1) / bs);
                if (err)
                        break;
                for (uint64_t i = done < body ? body - done : 0; i < n; i++) /* the sum's */
                        stored |= (uint64_t)buf[i] << 8 * (done + i - body);
                if (done < body)
                        h = hash64_update(h, buf, done + n <= body ? n : body - done);
                done += n;
        }
        CHECK(palloc_free(&keel_palloc, pa, VERIFY_PAGES) == 0);
        *good = !err && hash64_final(h, body) == stored;
        return err;
}

int snapshot_take_part(struct snapshot_store *s, struct vm *vm, const struct snap_part *p,
                       char *msg, size_t len)
{
        struct snapshot_store t = {0};
        struct slots sl;
        uint32_t bs = p->dev->block_size;
        uint64_t blocks, gen = 1, sum;
        unsigned target = 0;
        bool kept = false;
        uint8_t *buf;
        int err = snapshot_take(&t, vm, msg, len);

        if (err)
                return err;
        buf = hva_ptr(arch_hpa_to_hva(t.pa));
        blocks = (t.len + bs - 1) / bs;
        if (blocks > slot_blocks(p)) {
                snprintf(msg, len,
                         "cannot snapshot vm %s: it takes %llu KiB, %s holds %llu KiB: make the "
                         "partition at least %llu blocks of %u bytes (two snapshots)",
                         vm->name, (unsigned long long)(t.len + 1023) >> 10, p->name,
                         (unsigned long long)(p->blocks * bs >> 10), (unsigned long long)blocks * 2,
                         bs);
                err = -KEEL_ENOSPC;
                goto out;
        }
        /* Into the slot that does not hold the newest good snapshot. */
        err = slots_read(p, vm->name, &sl);
        if (!err && sl.n) {
                unsigned c = sl.order[0];

                gen = sl.h[c].generation + 1;
                err = slot_verify(p, c, sl.h[c].size, &kept);
                target = kept ? !c : c;
        }
        if (err) {
                snprintf(msg, len, "cannot snapshot vm %s: %s %s first; nothing written", vm->name,
                         err == -KEEL_EIO ? "I/O error reading" : "no memory to read", p->name);
                goto out;
        }
        memcpy(buf + offsetof(struct snap_header, generation), &gen, sizeof(gen));
        sum = snap_checksum(buf, t.len);
        memcpy(buf + t.len - 8, &sum, 8);
        if (part_rw(p, true, target * slot_blocks(p), t.pa, blocks)) {
                snprintf(msg, len, "cannot snapshot vm %s: writing %s failed (I/O error); %s",
                         vm->name, p->name,
                         kept ? "its earlier snapshot is kept" : "it holds no good snapshot now");
                err = -KEEL_EIO;
        } else {
                s->disk_sum = sum;
                snprintf(msg, len,
                         "vm %s: snapshot on %s (slot %u, generation %llu), %llu KiB (RAM %llu "
                         "KiB), flushed; restore %s brings it back, also after Keel restarts",
                         vm->name, p->name, target, (unsigned long long)gen,
                         (unsigned long long)(t.len >> 10),
                         (unsigned long long)(gmem_total(&vm->mem) >> 10), vm->name);
        }
out:
        CHECK(palloc_free(&keel_palloc, t.pa, t.pages) == 0);
        return err;
}

/* Read slot k's snapshot (of `size` bytes) and restore it: 0, or -KEEL_E* (why if EINVAL). */
static int slot_restore(const struct snapshot_store *s, struct vm *vm, const struct snap_part *p,
                        unsigned k, uint64_t size, char *why, size_t n)
{
        uint32_t bs = p->dev->block_size;
        uint64_t pages = (size + PAGE_SIZE - 1) / PAGE_SIZE, sum;
        const uint8_t *buf;
        hpa_t pa;
        int err;

        if (palloc_alloc(&keel_palloc, pages, PAGE_SIZE, &pa))
                return -KEEL_ENOMEM;
        buf = hva_ptr(arch_hpa_to_hva(pa));
        err = part_rw(p, false, k * slot_blocks(p), pa, (size + bs - 1) / bs);
        if (!err) {
                memcpy(&sum, buf + size - 8, 8);
                if (p->disk && sum != s->disk_sum) {
                        snprintf(why, n,
                                 "it was written before Keel last started, and vm %s's disk %s "
                                 "may have been written since (no write count survives a "
                                 "restart): take a new snapshot",
                                 vm->name, p->disk);
                        err = -KEEL_EINVAL;
                } else {
                        err = snapshot_load(vm, buf, size, why, n);
                }
        }
        CHECK(palloc_free(&keel_palloc, pa, pages) == 0);
        return err;
}

int snapshot_restore_part(const struct snapshot_store *s, struct vm *vm, const struct snap_part *p,
                          char *msg, size_t len)
{
        struct slots sl;
        char why[200], first[200];
        unsigned k = 0, i;
        int err = slots_read(p, vm->name, &sl);

        first[0] = '\0';
        for (i = 0; !err && i < sl.n; i++) {
                k = sl.order[i];
                err = slot_restore(s, vm, p, k, sl.h[k].size, why, sizeof(why));
                if (err != -KEEL_EINVAL)
                        break;
                LOG_WARN("vm %s: snapshot in %s slot %u (generation %llu) refused: %s", vm->name,
                         p->name, k, (unsigned long long)sl.h[k].generation, why);
                if (!i)
                        snprintf(first, sizeof(first), "%s", why);
                err = 0;
        }
        if (err == -KEEL_ENOMEM) {
                snprintf(msg, len,
                         "cannot restore vm %s: no %llu KiB run of free memory to read %s into",
                         vm->name,
                         (unsigned long long)(i < sl.n ? sl.h[k].size + 1023 : PAGE_SIZE) >> 10,
                         p->name);
        } else if (err) {
                snprintf(msg, len, "cannot restore vm %s: reading %s failed (I/O error)", vm->name,
                         p->name);
        } else if (i < sl.n) {
                snprintf(msg, len,
                         "vm %s: restored from its snapshot on %s (slot %u, generation %llu%s); "
                         "it is paused (resume %s)",
                         vm->name, p->name, k, (unsigned long long)sl.h[k].generation,
                         i ? ", the older: the newer one is refused" : "", vm->name);
        } else {
                /* None good: the newest one's reason, or a header's. */
                snprintf(msg, len, "cannot restore vm %s: snapshot refused: %s: %s", vm->name,
                         p->name,
                         sl.n                             ? first
                         : strncmp(sl.why[0], "not a", 5) ? sl.why[0]
                                                          : sl.why[1]);
                err = -KEEL_EINVAL;
        }
        return err;
}
