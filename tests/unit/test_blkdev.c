/*
 * The block-device registry (drivers/blkdev.c): what a driver may register, lookup by name,
 * and blkdev_sync over a device that completes only when polled.
 */
#include <string.h>

#include <drivers/blkdev.h>
#include <keel/errno.h>

#include "test.h"

struct fake {
        struct blk_req *pending;
        unsigned polls, submits;
        int status;
};

static int fake_submit(struct blkdev *d, struct blk_req *r)
{
        struct fake *f = d->priv;

        if (r->op == BLK_WRITE && d->read_only)
                return -KEEL_EINVAL;
        f->submits++;
        f->pending = r;
        return 0;
}

static void fake_poll(struct blkdev *d)
{
        struct fake *f = d->priv;

        /* Completes on the third poll: blkdev_sync must keep polling. */
        if (f->pending && ++f->polls == 3) {
                struct blk_req *r = f->pending;

                f->pending = NULL;
                r->done(r, f->status);
        }
}

static const struct blkdev_ops fake_ops = {.submit = fake_submit, .poll = fake_poll};

static void make(struct blkdev *d, const char *name, struct fake *f)
{
        memset(d, 0, sizeof(*d));
        memset(f, 0, sizeof(*f));
        strcpy(d->name, name);
        d->blocks = 1024;
        d->block_size = 512;
        d->max_transfer = 65536;
        d->seg_align = 4;
        d->max_segs = 8;
        d->ops = &fake_ops;
        d->priv = f;
}

TEST(register_validates_geometry)
{
        struct blkdev d;
        struct fake f;

        blkdev_reset_for_test();
        make(&d, "", &f);
        EXPECT_EQ(blkdev_register(&d), -KEEL_EINVAL);
        make(&d, "d0", &f);
        d.block_size = 768;
        EXPECT_EQ(blkdev_register(&d), -KEEL_EINVAL);
        make(&d, "d0", &f);
        d.blocks = 0;
        EXPECT_EQ(blkdev_register(&d), -KEEL_EINVAL);
        make(&d, "d0", &f);
        d.seg_align = 3;
        EXPECT_EQ(blkdev_register(&d), -KEEL_EINVAL);
        make(&d, "d0", &f);
        memset(d.name, 'x', sizeof(d.name)); /* no terminator */
        EXPECT_EQ(blkdev_register(&d), -KEEL_EINVAL);
        EXPECT_EQ(blkdev_count(), 0u);
}

TEST(names_are_unique_and_found)
{
        static struct blkdev d[BLKDEV_MAX + 1];
        static struct fake f[BLKDEV_MAX + 1];
        char name[16];

        blkdev_reset_for_test();
        for (unsigned i = 0; i < BLKDEV_MAX; i++) {
                snprintf(name, sizeof(name), "nvme0n%u", i + 1);
                make(&d[i], name, &f[i]);
                EXPECT_EQ(blkdev_register(&d[i]), 0);
        }
        make(&d[BLKDEV_MAX], "nvme0n1", &f[BLKDEV_MAX]);
        EXPECT_EQ(blkdev_register(&d[BLKDEV_MAX]), -KEEL_EEXIST);
        make(&d[BLKDEV_MAX], "vblk0", &f[BLKDEV_MAX]);
        EXPECT_EQ(blkdev_register(&d[BLKDEV_MAX]), -KEEL_ENOSPC);
        EXPECT_EQ(blkdev_count(), (unsigned)BLKDEV_MAX);
        EXPECT_TRUE(blkdev_find("nvme0n3") == &d[2]);
        EXPECT_TRUE(blkdev_find("nvme0n") == NULL);
        EXPECT_TRUE(blkdev_find("vblk0") == NULL);
        EXPECT_TRUE(blkdev_get(BLKDEV_MAX) == NULL);
}

TEST(sync_polls_until_done)
{
        struct blkdev d;
        struct fake f;
        struct blk_seg seg = {.pa = hpa(0x1000), .len = 512};
        struct blk_req r = {.op = BLK_READ, .lba = 7, .blocks = 1, .seg = &seg, .nseg = 1};

        blkdev_reset_for_test();
        make(&d, "d0", &f);
        EXPECT_EQ(blkdev_register(&d), 0);
        EXPECT_EQ(blkdev_sync(&d, &r), 0);
        EXPECT_EQ(f.polls, 3u);
        f.polls = 0;
        f.status = -KEEL_EIO;
        EXPECT_EQ(blkdev_sync(&d, &r), -KEEL_EIO);
        d.read_only = true;
        r.op = BLK_WRITE;
        EXPECT_EQ(blkdev_sync(&d, &r), -KEEL_EINVAL); /* refused at submit: no wait */
        EXPECT_EQ(f.submits, 2u);
}

TEST_MAIN()
