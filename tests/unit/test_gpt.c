/*
 * The GPT reader (drivers/gpt.c) on a disk partitioned by sgdisk (tests/unit/gpt/README.md)
 * and on copies of it broken one field at a time, each re-sealed with correct CRCs where the
 * point is a check beyond the CRC.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drivers/gpt.h>
#include <keel/errno.h>

#include "test.h"

#define BLOCKS 8192u
#define BS     512u

struct disk {
        uint8_t *data;
        uint64_t blocks;
        unsigned reads;
        uint64_t fail_lba; /* a read of this LBA fails with -KEEL_EIO (0: none) */
        uint8_t buf[BS];
};

static int disk_read(void *ctx, uint64_t lba, void *buf)
{
        struct disk *k = ctx;

        k->reads++;
        if (lba >= k->blocks)
                return -KEEL_EINVAL; /* the parser must never ask */
        if (k->fail_lba && lba == k->fail_lba)
                return -KEEL_EIO;
        memcpy(buf, k->data + lba * BS, BS);
        return 0;
}

static uint8_t image[BLOCKS * BS];

static void load(struct disk *k)
{
        FILE *f = fopen(KEEL_SOURCE_DIR "/tests/unit/gpt/sgdisk_3parts.bin", "rb");
        uint8_t rec[8 + BS];

        EXPECT_TRUE(f != NULL);
        memset(k, 0, sizeof(*k));
        k->blocks = BLOCKS;
        k->data = image;
        memset(image, 0, sizeof(image));
        while (f && fread(rec, sizeof(rec), 1, f) == 1) {
                uint64_t lba = 0;
                for (int i = 7; i >= 0; i--)
                        lba = lba << 8 | rec[i];
                EXPECT_TRUE(lba < BLOCKS);
                memcpy(k->data + lba * BS, rec + 8, BS);
        }
        if (f)
                fclose(f);
}

static int run(struct disk *k, struct gpt *g)
{
        struct gpt_disk d = {
            .blocks = k->blocks, .block_size = BS, .read = disk_read, .ctx = k, .buf = k->buf};

        return gpt_read(&d, g);
}

static void put32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> 8 * i);
}

static void put64(uint8_t *p, uint64_t v)
{
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> 8 * i);
}

static uint32_t get32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Recompute the array and header CRCs of the copy whose header is at `hlba`. */
static void seal(struct disk *k, uint64_t hlba)
{
        uint8_t *h = k->data + hlba * BS;
        uint64_t alba = 0;
        for (int i = 7; i >= 0; i--)
                alba = alba << 8 | h[72 + i];
        uint32_t bytes = get32(h + 80) * get32(h + 84);
        if (alba < BLOCKS && bytes <= (BLOCKS - alba) * BS)
                put32(h + 88, gpt_crc32(0, k->data + alba * BS, bytes));
        put32(h + 16, 0);
        put32(h + 16, gpt_crc32(0, h, get32(h + 12) <= BS ? get32(h + 12) : 92));
}

static uint8_t *entry(struct disk *k, uint64_t array_lba, unsigned n)
{
        return k->data + array_lba * BS + (n - 1) * 128;
}

static struct gpt g;

TEST(sgdisk_disk_lists_its_partitions)
{
        struct disk k;
        char s[37];

        load(&k);
        EXPECT_EQ(run(&k, &g), 0);
        EXPECT_STREQ(g.warning, "");
        EXPECT_TRUE(!g.used_backup);
        EXPECT_EQ(g.count, 3);
        EXPECT_EQ(g.first_usable, 34);
        EXPECT_EQ(g.last_usable, 8158);
        gpt_guid_format(g.disk_guid, s);
        EXPECT_STREQ(s, "11111111-2222-3333-4444-555555555555");
        EXPECT_STREQ(g.part[0].name, "EFI");
        EXPECT_TRUE(!memcmp(g.part[0].type, gpt_esp_type, 16));
        EXPECT_EQ(g.part[0].first, 2048);
        EXPECT_EQ(g.part[0].last, 4095);
        EXPECT_STREQ(g.part[1].name, "alpha");
        EXPECT_EQ(g.part[1].index, 2);
        EXPECT_EQ(g.part[1].first, 4096);
        EXPECT_EQ(g.part[1].last, 6143);
        gpt_guid_format(g.part[1].uuid, s);
        EXPECT_STREQ(s, "AAAAAAAA-0000-0000-0000-000000000002");
        gpt_guid_format(g.part[1].type, s);
        EXPECT_STREQ(s, "0FC63DAF-8483-4772-8E79-3D69D8477DE4"); /* sgdisk's 8300 */
        EXPECT_STREQ(g.part[2].name, "b\xc3\xaa"
                                     "ta-\xce\xb2");
        EXPECT_EQ(g.part[2].last, 8158);
}

TEST(guid_text_round_trip_and_refusals)
{
        uint8_t b[16];
        char s[37];

        EXPECT_TRUE(gpt_guid_parse("c12a7328-f81f-11d2-ba4b-00a0c93ec93b", 36, b));
        EXPECT_TRUE(!memcmp(b, gpt_esp_type, 16));
        gpt_guid_format(b, s);
        EXPECT_STREQ(s, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
        EXPECT_TRUE(!gpt_guid_parse("c12a7328-f81f-11d2-ba4b-00a0c93ec93", 35, b));
        EXPECT_TRUE(!gpt_guid_parse("c12a7328+f81f-11d2-ba4b-00a0c93ec93b", 36, b));
        EXPECT_TRUE(!gpt_guid_parse("g12a7328-f81f-11d2-ba4b-00a0c93ec93b", 36, b));
}

TEST(corrupt_primary_uses_backup_with_a_warning)
{
        struct disk k;

        load(&k);
        k.data[1 * BS + 40] ^= 1; /* FirstUsableLBA: header CRC no longer matches */
        EXPECT_EQ(run(&k, &g), 0);
        EXPECT_TRUE(g.used_backup);
        EXPECT_CONTAINS(g.warning, "primary GPT at LBA 1 invalid (header CRC32 mismatch)");
        EXPECT_CONTAINS(g.warning, "backup at LBA 8191");
        EXPECT_EQ(g.count, 3);
        EXPECT_STREQ(g.part[1].name, "alpha");

        load(&k);
        entry(&k, 2, 2)[33] ^= 0x10; /* a partition's first LBA: the array CRC fails */
        EXPECT_EQ(run(&k, &g), 0);
        EXPECT_CONTAINS(g.warning, "entry array CRC32 mismatch");
        EXPECT_EQ(g.part[1].first, 4096);
}

TEST(corrupt_backup_warns_and_uses_primary)
{
        struct disk k;

        load(&k);
        memcpy(k.data + 8191 * BS, "EFI PARX", 8);
        EXPECT_EQ(run(&k, &g), 0);
        EXPECT_TRUE(!g.used_backup);
        EXPECT_CONTAINS(g.warning, "backup GPT at LBA 8191 invalid (no \"EFI PART\"");
}

TEST(both_copies_bad_means_no_gpt)
{
        struct disk k;

        load(&k);
        k.data[1 * BS + 50] ^= 4;
        k.data[8191 * BS + 50] ^= 4;
        EXPECT_EQ(run(&k, &g), -KEEL_ENOENT);
        EXPECT_CONTAINS(g.error, "no valid GPT: primary at LBA 1: header CRC32 mismatch; "
                                 "backup at LBA 8191: header CRC32 mismatch");
        EXPECT_EQ(g.count, 0);
}

TEST(no_protective_mbr)
{
        struct disk k;

        load(&k);
        k.data[446 + 4] = 0x83;
        EXPECT_EQ(run(&k, &g), -KEEL_ENOENT);
        EXPECT_CONTAINS(g.error, "no protective MBR");
        load(&k);
        k.data[511] = 0;
        EXPECT_EQ(run(&k, &g), -KEEL_ENOENT);
}

/* A primary with valid CRCs but a bad field must fall back to the backup, naming the field. */
static void check_sealed(void (*edit)(struct disk *), const char *why)
{
        struct disk k;

        load(&k);
        edit(&k);
        seal(&k, 1);
        EXPECT_EQ(run(&k, &g), 0);
        EXPECT_TRUE(g.used_backup);
        if (!strstr(g.warning, why))
                TEST_FAIL_AT(__FILE__, __LINE__, "warning '%s' lacks '%s'", g.warning, why);
        /* The same edit in both copies: no GPT at all. */
        load(&k);
        edit(&k);
        seal(&k, 1);
        memcpy(k.data + 8191 * BS, k.data + 1 * BS, BS); /* backup := primary (wrong MyLBA) */
        EXPECT_EQ(run(&k, &g), -KEEL_ENOENT);
}

static void overlap(struct disk *k)
{
        put64(entry(k, 2, 3) + 32, 6000); /* partition 3 starts inside partition 2 */
}

static void outside_usable(struct disk *k)
{
        put64(entry(k, 2, 3) + 40, 8159);
}

static void reversed(struct disk *k)
{
        put64(entry(k, 2, 2) + 32, 6144);
        put64(entry(k, 2, 2) + 40, 6143);
}

static void entry_size_100(struct disk *k)
{
        put32(k->data + BS + 84, 100);
}

static void entry_count_huge(struct disk *k)
{
        put32(k->data + BS + 80, 0x100000);
}

static void entry_count_zero(struct disk *k)
{
        put32(k->data + BS + 80, 0);
}

static void header_size_big(struct disk *k)
{
        put32(k->data + BS + 12, 513);
}

static void my_lba_wrong(struct disk *k)
{
        put64(k->data + BS + 24, 2);
}

static void alternate_outside(struct disk *k)
{
        put64(k->data + BS + 32, 8192);
}

static void array_in_usable(struct disk *k)
{
        put64(k->data + BS + 40, 20); /* FirstUsableLBA inside the array LBAs 2-33 */
}

static void last_usable_outside(struct disk *k)
{
        put64(k->data + BS + 48, 8192);
}

static void array_past_end(struct disk *k)
{
        put64(k->data + BS + 72, 8180);
}

static void revision_2(struct disk *k)
{
        put32(k->data + BS + 8, 0x00020000);
}

TEST(sealed_bad_fields_are_refused)
{
        check_sealed(overlap, "partitions 2 and 3 overlap");
        check_sealed(outside_usable,
                     "partition 3 (LBAs 6144-8159) outside the usable LBAs 34-8158");
        check_sealed(reversed, "partition 2 (LBAs 6144-6143) outside");
        check_sealed(entry_size_100, "128 entries of 100 bytes not supported");
        check_sealed(entry_count_huge, "1048576 entries of 128 bytes not supported");
        check_sealed(entry_count_zero, "0 entries");
        check_sealed(header_size_big, "header size 513 not supported");
        check_sealed(my_lba_wrong, "MyLBA 2 / AlternateLBA 8191 wrong for LBA 1");
        check_sealed(alternate_outside, "AlternateLBA 8192");
        check_sealed(array_in_usable, "usable LBAs 20-8158 or entry array at 2 (32 blocks)");
        check_sealed(last_usable_outside, "usable LBAs 34-8192");
        check_sealed(array_past_end, "entry array at 8180");
        check_sealed(revision_2, "revision 0x20000");
}

TEST(read_errors_are_returned)
{
        struct disk k;

        load(&k);
        k.fail_lba = 1;
        EXPECT_EQ(run(&k, &g), -KEEL_EIO);
        k.fail_lba = 8191;
        EXPECT_EQ(run(&k, &g), -KEEL_EIO);
        k.fail_lba = 5; /* inside the primary array */
        EXPECT_EQ(run(&k, &g), -KEEL_EIO);
}

TEST(small_or_odd_disks)
{
        struct disk k;
        struct gpt_disk d;

        load(&k);
        d = (struct gpt_disk){
            .blocks = 3, .block_size = BS, .read = disk_read, .ctx = &k, .buf = k.buf};
        EXPECT_EQ(gpt_read(&d, &g), -KEEL_ENOENT);
        d.blocks = BLOCKS;
        d.block_size = 768;
        EXPECT_EQ(gpt_read(&d, &g), -KEEL_ENOENT);
        /* The same image seen as a smaller disk: its backup and usable range lie past the end. */
        k.blocks = 4096;
        d = (struct gpt_disk){
            .blocks = 4096, .block_size = BS, .read = disk_read, .ctx = &k, .buf = k.buf};
        EXPECT_EQ(gpt_read(&d, &g), -KEEL_ENOENT);
}

TEST(crc32_check_value)
{
        EXPECT_EQ(gpt_crc32(0, "123456789", 9), 0xcbf43926u);
        EXPECT_EQ(gpt_crc32(gpt_crc32(0, "1234", 4), "56789", 5), 0xcbf43926u);
}

TEST_MAIN()
