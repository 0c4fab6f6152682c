/*
 * The registry of Keel's block devices (drivers/include/drivers/blkdev.h). Drivers register
 * at boot, before any VM is built; afterwards the table only is read, so it needs no lock.
 */
#include <string.h>

#include <drivers/blkdev.h>
#include <arch/relax.h>
#include <keel/errno.h>
#include <keel/irq.h>

static struct blkdev *devs[BLKDEV_MAX];
static unsigned ndevs;

int blkdev_register(struct blkdev *d)
{
        size_t len = strnlen(d->name, sizeof(d->name));

        if (!len || len == sizeof(d->name) || !d->ops || !d->ops->submit || !d->blocks ||
            d->block_size < 512 || (d->block_size & (d->block_size - 1)) ||
            d->max_transfer < d->block_size || !d->max_segs || !d->seg_align ||
            (d->seg_align & (d->seg_align - 1)))
                return -KEEL_EINVAL;
        if (blkdev_find(d->name))
                return -KEEL_EEXIST;
        if (ndevs == BLKDEV_MAX)
                return -KEEL_ENOSPC;
        devs[ndevs++] = d;
        return 0;
}

unsigned blkdev_count(void)
{
        return ndevs;
}

struct blkdev *blkdev_get(unsigned i)
{
        return i < ndevs ? devs[i] : NULL;
}

struct blkdev *blkdev_find(const char *name)
{
        for (unsigned i = 0; i < ndevs; i++)
                if (strncmp(devs[i]->name, name, sizeof(devs[i]->name)) == 0)
                        return devs[i];
        return NULL;
}

struct sync_wait {
        volatile bool done;
        int status;
};

static void sync_done(struct blk_req *r, int status)
{
        struct sync_wait *w = r->ctx;

        w->status = status;
        w->done = true;
}

/* The driver bounds every request by its own timeout (it completes a stuck one with
 * -KEEL_EIO), so this loop ends. */
int blkdev_sync(struct blkdev *d, struct blk_req *r)
{
        struct sync_wait w = {.done = false, .status = 0};
        int err;

        r->done = sync_done;
        r->ctx = &w;
        err = d->ops->submit(d, r);
        if (err)
                return err;
        while (!w.done) {
                if (d->ops->poll)
                        d->ops->poll(d);
                if (!w.done)
                        arch_cpu_relax();
        }
        return w.status;
}

/* keel/irq.h's hold: it also makes a busy CPU poll at its host ticks. */
void blkdev_poll_hold(bool on)
{
        irq_poll_hold(on);
}

bool blkdev_poll_wanted(void)
{
        return irq_poll_wanted();
}

void blkdev_reset_for_test(void)
{
        ndevs = 0;
        memset(devs, 0, sizeof(devs));
}
