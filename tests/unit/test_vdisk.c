/*
 * `disk = DEV:...` from config text to blocks (vmm/config.c, vmm/vdisk.c): the syntax and its
 * refusals, GPT partitions by name and GUID on the sgdisk-made disk of test_gpt, the rule for
 * the disk holding Keel's EFI system partition, unknown disks and partitions, and overlaps
 * between VMs (refused naming both config lines unless both only read).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drivers/blkdev.h>
#include <keel/errno.h>
#include <vmm/config.h>
#include <vmm/vdisk.h>

#include "test.h"

#define BS 512u

static uint8_t esp_disk[8192 * BS];   /* the sgdisk fixture: 1 'EFI' (ESP), 2 alpha, 3 beta */
static uint8_t plain_disk[4096 * BS]; /* no GPT */
static struct blkdev devs[2];
static struct vm_config cfg_vms[8];
static struct keel_config cfg = {.vms = cfg_vms, .vm_max = 8};
static struct vdisk plan[8];
static struct vdisk_scratch scratch;
static char err[CONFIG_ERR_MAX];

static int submit(struct blkdev *d, struct blk_req *r)
{
        uint8_t *disk = d->priv;

        if (r->op != BLK_READ || r->nseg != 1 || r->lba + r->blocks > d->blocks)
                return -KEEL_EINVAL; /* the plan only reads */
        memcpy((void *)(uintptr_t)hpa_raw(r->seg[0].pa), disk + r->lba * BS, r->seg[0].len);
        r->done(r, 0);
        return 0;
}

static const struct blkdev_ops ops = {.submit = submit};

static void disks(void)
{
        static bool loaded;

        if (!loaded) {
                FILE *f = fopen(KEEL_SOURCE_DIR "/tests/unit/gpt/sgdisk_3parts.bin", "rb");
                uint8_t rec[8 + BS];
                while (f && fread(rec, sizeof(rec), 1, f) == 1) {
                        uint64_t lba = 0;
                        for (int i = 7; i >= 0; i--)
                                lba = lba << 8 | rec[i];
                        memcpy(esp_disk + lba * BS, rec + 8, BS);
                }
                if (f)
                        fclose(f);
                loaded = true;
        }
        blkdev_reset_for_test();
        const char *names[2] = {"nvme0n1", "vblk0"};
        uint8_t *data[2] = {esp_disk, plain_disk};
        uint64_t blocks[2] = {8192, 4096};
        for (unsigned i = 0; i < 2; i++) {
                memset(&devs[i], 0, sizeof(devs[i]));
                strcpy(devs[i].name, names[i]);
                devs[i].blocks = blocks[i];
                devs[i].block_size = BS;
                devs[i].max_transfer = 65536;
                devs[i].seg_align = 4;
                devs[i].max_segs = 8;
                devs[i].ops = &ops;
                devs[i].priv = data[i];
                ASSERT_TRUE(blkdev_register(&devs[i]) == 0);
        }
}

/* One VM per disk value, in order; line of VM i's disk = line is 3 + 5 * i. */
static int plan_for(const char **values, const bool *ro, unsigned n, const uint8_t *boot_esp)
{
        char text[4096];
        size_t used = 0;
        int r;

        for (unsigned i = 0; i < n; i++)
                used += (size_t)snprintf(
                    text + used, sizeof(text) - used,
                    "[vm v%u]\nkernel = k\ndisk = %s\ndisk_readonly = %s\nmemory = 16M\n", i,
                    values[i], ro && ro[i] ? "yes" : "no");
        r = config_parse(text, used, "keel.cfg", &cfg, err, sizeof(err));
        if (r)
                return r;
        disks();
        vdisk_plan(&cfg, boot_esp, &scratch, plan);
        return 0;
}

TEST(partitions_by_name_and_guid)
{
        const char *v[] = {"nvme0n1:part=alpha",
                           "nvme0n1:partuuid=aaaaaaaa-0000-0000-0000-000000000003"};

        ASSERT_TRUE(plan_for(v, NULL, 2, NULL) == 0);
        EXPECT_TRUE(plan[0].dev == &devs[0]);
        EXPECT_EQ(plan[0].start, 4096);
        EXPECT_EQ(plan[0].blocks, 2048);
        EXPECT_FALSE(plan[0].ro);
        EXPECT_TRUE(plan[1].dev == &devs[0]);
        EXPECT_EQ(plan[1].start, 6144);
        EXPECT_EQ(plan[1].blocks, 8158 - 6144 + 1);
        EXPECT_EQ(cfg.vms[0].disk[0], 0); /* not a file to read from the ESP */
        EXPECT_EQ(cfg.vms[0].disk_dev.line, 3);
}

TEST(keels_esp_disk_only_by_named_partition)
{
        const char *v[] = {"nvme0n1:whole", "nvme0n1:lba=6144+10", "nvme0n1:part=EFI"};

        ASSERT_TRUE(plan_for(v, NULL, 3, NULL) == 0);
        EXPECT_TRUE(plan[0].dev == NULL);
        EXPECT_STREQ(plan[0].why,
                     "config line 3: disk = nvme0n1:whole: nvme0n1 holds Keel's own EFI system "
                     "partition (partition 1): a VM gets it only as a named partition "
                     "(nvme0n1:part=NAME)");
        EXPECT_TRUE(plan[1].dev == NULL);
        EXPECT_CONTAINS(plan[1].why, "config line 8: disk = nvme0n1:lba=6144+10: nvme0n1 holds");
        EXPECT_TRUE(plan[2].dev == NULL);
        EXPECT_STREQ(plan[2].why, "config line 13: disk = nvme0n1:part=EFI: partition 1 'EFI' of "
                                  "nvme0n1 is an EFI system partition: never given to a guest");
}

TEST(the_boot_partition_guid_decides_which_disk_is_keels)
{
        const char *v[] = {"nvme0n1:whole", "nvme0n1:part=EFI"};
        uint8_t elsewhere[16] = {1, 2, 3};
        uint8_t here[16];

        /* Keel booted from another disk: this one may be given whole; its ESP still not. */
        ASSERT_TRUE(plan_for(v, NULL, 1, elsewhere) == 0);
        EXPECT_TRUE(plan[0].dev == &devs[0]);
        EXPECT_EQ(plan[0].blocks, 8192);
        ASSERT_TRUE(plan_for(v + 1, NULL, 1, elsewhere) == 0);
        EXPECT_TRUE(plan[0].dev == NULL);
        /* Booted from partition 2 (whatever its type): the disk is Keel's, partition 2 too. */
        ASSERT_TRUE(gpt_guid_parse("AAAAAAAA-0000-0000-0000-000000000002", 36, here));
        ASSERT_TRUE(plan_for(v, NULL, 1, here) == 0);
        EXPECT_CONTAINS(plan[0].why, "holds Keel's own EFI system partition (partition 2)");
        const char *alpha[] = {"nvme0n1:part=alpha"};
        ASSERT_TRUE(plan_for(alpha, NULL, 1, here) == 0);
        EXPECT_CONTAINS(plan[0].why, "partition 2 'alpha' of nvme0n1 is an EFI system partition");
}

TEST(unknown_disks_and_partitions_name_what_exists)
{
        const char *v[] = {"nvme9n1:whole", "nvme0n1:part=gamma", "vblk0:part=x",
                           "nvme0n1:partuuid=AAAAAAAA-0000-0000-0000-000000000009"};

        ASSERT_TRUE(plan_for(v, NULL, 4, NULL) == 0);
        EXPECT_STREQ(plan[0].why, "config line 3: disk = nvme9n1:whole: no disk nvme9n1 (Keel's "
                                  "disks: nvme0n1, vblk0)");
        EXPECT_STREQ(plan[1].why, "config line 8: disk = nvme0n1:part=gamma: nvme0n1 has no such "
                                  "partition (its partitions: 1 'EFI', 2 'alpha', 3 'b\xc3\xaa"
                                  "ta-\xce\xb2')");
        EXPECT_CONTAINS(plan[2].why, "vblk0 has no usable GPT: no protective MBR");
        EXPECT_CONTAINS(plan[3].why, "partuuid=AAAAAAAA-0000-0000-0000-000000000009: nvme0n1 "
                                     "has no such partition");
        for (unsigned i = 0; i < 4; i++)
                EXPECT_TRUE(plan[i].dev == NULL);
}

TEST(lba_ranges_inside_the_disk)
{
        const char *v[] = {"vblk0:lba=0+4096", "vblk0:lba=4000+97"};
        bool ro[] = {true, true};

        ASSERT_TRUE(plan_for(v, ro, 2, NULL) == 0);
        EXPECT_TRUE(plan[0].dev == &devs[1]);
        EXPECT_TRUE(plan[0].ro);
        EXPECT_TRUE(plan[1].dev == NULL);
        EXPECT_CONTAINS(plan[1].why, "blocks 4000+97 end past vblk0's 4096 blocks");
}

TEST(overlaps_refused_naming_both_lines_unless_both_read_only)
{
        const char *v[] = {"nvme0n1:part=alpha",
                           "nvme0n1:partuuid=AAAAAAAA-0000-0000-0000-000000000003",
                           "nvme0n1:partuuid=AAAAAAAA-0000-0000-0000-000000000002"};
        bool ro[] = {false, false, true};

        ASSERT_TRUE(plan_for(v, ro, 3, NULL) == 0);
        EXPECT_TRUE(plan[0].dev != NULL);
        EXPECT_STREQ(plan[1].why, "");
        EXPECT_TRUE(plan[2].dev == NULL);
        EXPECT_STREQ(plan[2].why,
                     "config line 13: disk = nvme0n1:partuuid=AAAAAAAA-0000-0000-0000-"
                     "000000000002: blocks 4096-6143 of nvme0n1 overlap blocks 4096-6143 of "
                     "[vm v0] (config line 3): two VMs share blocks only when both have "
                     "disk_readonly = yes");
        /* Both read-only: shared. */
        bool both[] = {true, false, true};
        ASSERT_TRUE(plan_for(v, both, 3, NULL) == 0);
        EXPECT_TRUE(plan[2].dev != NULL);
        /* Ranges that touch by one block. */
        const char *w[] = {"vblk0:lba=0+100", "vblk0:lba=100+10", "vblk0:lba=109+1", "vblk0:whole"};
        ASSERT_TRUE(plan_for(w, NULL, 4, NULL) == 0);
        EXPECT_TRUE(plan[0].dev && plan[1].dev);
        EXPECT_TRUE(plan[2].dev == NULL);
        EXPECT_CONTAINS(plan[2].why, "blocks 109-109 of vblk0 overlap blocks 100-109 of [vm v1] "
                                     "(config line 8)");
        EXPECT_CONTAINS(plan[3].why, "overlap blocks 0-99 of [vm v0] (config line 3)");
}

TEST(config_syntax)
{
        const char *bad[][2] = {
            {"nvme0n1:bogus", "expected DEV:whole, DEV:part=NAME"},
            {"nvme0n1:", "expected DEV:whole"},
            {":whole", "the disk's name (before ':') must be 1 to 23"},
            {"nv/me:whole", "only letters, digits"},
            {"nvme0n1:lba=5", "lba wants START+COUNT"},
            {"nvme0n1:lba=5+0", "empty or wraps"},
            {"nvme0n1:lba=18446744073709551615+2", "empty or wraps"},
            {"nvme0n1:lba=x+2", "lba wants START+COUNT"},
            {"nvme0n1:partuuid=1234", "partuuid wants a GUID"},
            {"nvme0n1:part=", "expected DEV:whole"},
        };
        for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                const char *v[] = {bad[i][0]};
                EXPECT_EQ(plan_for(v, NULL, 1, NULL), -KEEL_EINVAL);
                if (!strstr(err, bad[i][1]) || !strstr(err, "keel.cfg:3:"))
                        TEST_FAIL_AT(__FILE__, __LINE__, "%s: '%s'", bad[i][0], err);
        }
        const char *ok[] = {"nvme0n1:lba=0x10+0x20", "file.img"};
        ASSERT_TRUE(plan_for(ok, NULL, 2, NULL) == 0);
        EXPECT_EQ(cfg.vms[0].disk_dev.lba, 16);
        EXPECT_EQ(cfg.vms[0].disk_dev.count, 32);
        EXPECT_EQ(cfg.vms[1].disk_dev.kind, DISK_FILE);
        EXPECT_STREQ(cfg.vms[1].disk, "file.img");
        EXPECT_TRUE(plan[1].dev == NULL);
        EXPECT_STREQ(plan[1].why, "");
}

/* snapshot = DEV:part=... (docs/snapshot.md): resolved as disks are, a VM's alone. */
TEST(snapshot_partitions)
{
        static const char text[] =
            "[vm a]\nimage = x\nmemory = 16M\nsnapshot = nvme0n1:part=alpha\n"
            "[vm b]\nkernel = k\nmemory = 16M\ndisk = nvme0n1:part=alpha\n"
            "[vm c]\nimage = x\nmemory = 16M\n"
            "snapshot = nvme0n1:partuuid=AAAAAAAA-0000-0000-0000-000000000003\n"
            "[vm d]\nimage = x\nmemory = 16M\nsnapshot = \"nvme0n1:part=b\xc3\xaata-\xce\xb2\"\n"
            "[vm e]\nimage = x\nmemory = 16M\nsnapshot = nvme0n1:part=EFI\n"
            "[vm f]\nimage = x\nmemory = 16M\nsnapshot = vblk0:part=x\n";
        static struct vdisk snaps[8];

        ASSERT_TRUE(config_parse(text, sizeof(text) - 1, "keel.cfg", &cfg, err, sizeof(err)) == 0);
        disks();
        vdisk_plan(&cfg, NULL, &scratch, plan);
        vdisk_plan_snapshots(&cfg, NULL, &scratch, plan, snaps);
        EXPECT_TRUE(plan[1].dev == &devs[0]); /* b's disk is given; a's snapshot is refused */
        EXPECT_TRUE(snaps[0].dev == NULL);
        EXPECT_STREQ(snaps[0].why, "config line 4: snapshot = nvme0n1:part=alpha: blocks "
                                   "4096-6143 of nvme0n1 are also [vm b]'s disk (config line 8): "
                                   "a snapshot partition must be its VM's alone");
        EXPECT_TRUE(snaps[1].dev == NULL && !snaps[1].why[0]); /* b has no snapshot key */
        EXPECT_TRUE(snaps[2].dev == &devs[0]);
        EXPECT_EQ(snaps[2].start, 6144);
        EXPECT_EQ(snaps[2].blocks, 8158 - 6144 + 1);
        EXPECT_TRUE(snaps[3].dev == NULL);
        EXPECT_STREQ(snaps[3].why,
                     "config line 16: snapshot = nvme0n1:part=b\xc3\xaata-\xce\xb2: blocks "
                     "6144-8158 of nvme0n1 are also [vm c]'s snapshot (config line "
                     "12): a snapshot partition must be its VM's alone");
        EXPECT_STREQ(snaps[4].why, "config line 20: snapshot = nvme0n1:part=EFI: partition 1 'EFI' "
                                   "of nvme0n1 is an EFI system partition: never given to a guest");
        EXPECT_CONTAINS(snaps[5].why,
                        "config line 24: snapshot = vblk0:part=x: vblk0 has no usable "
                        "GPT");
        EXPECT_TRUE(snaps[4].dev == NULL && snaps[5].dev == NULL);
        /* Read-only disks hold no snapshot. */
        devs[0].read_only = true;
        vdisk_plan_snapshots(&cfg, NULL, &scratch, plan, snaps);
        EXPECT_STREQ(snaps[2].why, "config line 12: snapshot = "
                                   "nvme0n1:partuuid=AAAAAAAA-0000-0000-0000-000000000003: "
                                   "nvme0n1 is read-only");
        /* The syntax: GPT partitions only. */
        const char *bad[] = {"nvme0n1:whole", "nvme0n1:lba=0+8", "snap.img", "nvme0n1:part="};
        for (unsigned i = 0; i < 4; i++) {
                char t[160];
                int n = snprintf(t, sizeof(t), "[vm a]\nimage = x\nmemory = 16M\nsnapshot = %s\n",
                                 bad[i]);
                EXPECT_EQ(config_parse(t, (uint64_t)n, "keel.cfg", &cfg, err, sizeof(err)),
                          -KEEL_EINVAL);
                if (!strstr(err, "keel.cfg:4: snapshot = ") ||
                    !strstr(err, "expected DEV:part=NAME or DEV:partuuid=GUID"))
                        TEST_FAIL_AT(__FILE__, __LINE__, "%s: '%s'", bad[i], err);
        }
}

TEST_MAIN()
