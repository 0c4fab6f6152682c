/*
 * GUID Partition Tables (UEFI 2.10, chapter 5), read and validated by Keel before any part of
 * a disk is given to a VM (docs/storage.md). Pure: the disk is read one block at a time
 * through a callback, so the same code runs in the image (over a blkdev), in host unit tests
 * and under libFuzzer.
 */
#ifndef DRIVERS_GPT_H
#define DRIVERS_GPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GPT_MAX_PARTS   128  /* used entries Keel accepts on one disk */
#define GPT_MAX_ENTRIES 1024 /* NumberOfPartitionEntries Keel accepts */
#define GPT_NAME_MAX    112  /* a 36-unit UTF-16 name as UTF-8, NUL included */
#define GPT_MSG_MAX     320

/* The EFI system partition's type GUID, C12A7328-F81F-11D2-BA4B-00A0C93EC93B, as on disk. */
extern const uint8_t gpt_esp_type[16];

struct gpt_part {
        uint8_t type[16]; /* GUIDs in their on-disk byte order */
        uint8_t uuid[16];
        uint64_t first, last; /* LBAs, inclusive */
        uint64_t attrs;
        unsigned index;          /* entry number, from 1 (what `sgdisk -p` calls the partition) */
        char name[GPT_NAME_MAX]; /* UTF-8; unpaired surrogates become U+FFFD */
};

struct gpt {
        uint8_t disk_guid[16];
        uint64_t first_usable, last_usable;
        bool used_backup; /* the primary was invalid */
        unsigned count;
        struct gpt_part part[GPT_MAX_PARTS];
        char warning[GPT_MSG_MAX]; /* "" or one line: what was wrong with one of the copies */
        char error[GPT_MSG_MAX];   /* why gpt_read failed */
};

struct gpt_disk {
        uint64_t blocks;
        uint32_t block_size; /* a power of two, 512..4096 */
        /* Read block `lba` into buf (block_size bytes): 0, or a negative error. */
        int (*read)(void *ctx, uint64_t lba, void *buf);
        void *ctx;
        void *buf; /* block_size bytes of scratch */
};

/*
 * Read and check the protective MBR, the primary GPT and its backup. 0: out holds the
 * partitions of the primary (or, if the primary is invalid, of a valid backup, with a
 * warning). -KEEL_ENOENT: no usable GPT (out->error says why); a read error is returned as
 * it came (-KEEL_EIO).
 */
int gpt_read(const struct gpt_disk *d, struct gpt *out);

/* "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX" (upper case, 36 characters + NUL). */
void gpt_guid_format(const uint8_t g[16], char out[37]);
/* Parse that text form (either case) into on-disk byte order; false if malformed. */
bool gpt_guid_parse(const char *s, size_t len, uint8_t g[16]);

uint32_t gpt_crc32(uint32_t crc, const void *p, size_t n);

#endif
