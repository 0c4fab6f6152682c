/*
 * GPT reader (drivers/include/drivers/gpt.h; UEFI 2.10, 5.2-5.3). Everything read from the
 * disk is checked before it is believed: the protective MBR's 0xEE record, each header's
 * signature, revision, size, CRC32, its own LBA, the usable range and the entry array inside
 * the disk and outside the usable range, the entry size (128 * 2^n) and count, the array's
 * CRC32, and every used entry inside the usable range and apart from the others. The entry
 * array is streamed a block at a time (no buffer beyond one block).
 */
#include <stdio.h>
#include <string.h>

#include <drivers/gpt.h>
#include <keel/errno.h>
#include <keel/le.h>

#define HDR_MIN_SIZE 92
#define ENTRY_MIN    128
#define WHY_MAX      128

const uint8_t gpt_esp_type[16] = {0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11,
                                  0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b};

struct hdr {
        uint64_t my_lba, alternate, first_usable, last_usable, entries_lba;
        uint32_t count, entry_size, array_crc;
        uint8_t disk_guid[16];
};

/* IEEE 802.3 CRC32 as UEFI uses it (reflected 0xEDB88320, inverted in and out); bitwise, so
 * no table in the image. */
uint32_t gpt_crc32(uint32_t crc, const void *p, size_t n)
{
        const uint8_t *b = p;

        crc = ~crc;
        while (n--) {
                crc ^= *b++;
                for (int i = 0; i < 8; i++)
                        crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
        }
        return ~crc;
}

static const char hex[] = "0123456789ABCDEF";

/* Text order of the GUID's 16 bytes: the first three fields are little-endian on disk. */
static const uint8_t guid_order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};

void gpt_guid_format(const uint8_t g[16], char out[37])
{
        char *o = out;

        for (unsigned i = 0; i < 16; i++) {
                if (i == 4 || i == 6 || i == 8 || i == 10)
                        *o++ = '-';
                *o++ = hex[g[guid_order[i]] >> 4];
                *o++ = hex[g[guid_order[i]] & 15];
        }
        *o = 0;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

bool gpt_guid_parse(const char *s, size_t len, uint8_t g[16])
{
        unsigned i = 0;

        if (len != 36)
                return false;
        for (size_t k = 0; k < len; k++) {
                if (k == 8 || k == 13 || k == 18 || k == 23) {
                        if (s[k] != '-')
                                return false;
                        continue;
                }
                int hi = hexval(s[k]), lo = k + 1 < len ? hexval(s[k + 1]) : -1;
                if (hi < 0 || lo < 0)
                        return false;
                g[guid_order[i++]] = (uint8_t)(hi << 4 | lo);
                k++;
        }
        return i == 16;
}

static bool guid_zero(const uint8_t g[16])
{
        for (unsigned i = 0; i < 16; i++)
                if (g[i])
                        return false;
        return true;
}

/* UTF-16LE (up to 36 units, NUL-terminated or not) to UTF-8. */
static void name_utf8(const uint8_t *p, char *out)
{
        size_t o = 0;

        for (unsigned i = 0; i < 36; i++) {
                uint32_t c = (uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8;

                if (!c)
                        break;
                if (c >= 0xd800 && c < 0xdc00 && i + 1 < 36) {
                        uint32_t lo = (uint32_t)p[2 * i + 2] | (uint32_t)p[2 * i + 3] << 8;
                        if (lo >= 0xdc00 && lo < 0xe000) {
                                c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
                                i++;
                        } else {
                                c = 0xfffd;
                        }
                } else if (c >= 0xd800 && c < 0xe000) {
                        c = 0xfffd;
                }
                if (c < 0x80) {
                        out[o++] = (char)c;
                } else if (c < 0x800) {
                        out[o++] = (char)(0xc0 | c >> 6);
                        out[o++] = (char)(0x80 | (c & 0x3f));
                } else if (c < 0x10000) {
                        out[o++] = (char)(0xe0 | c >> 12);
                        out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
                        out[o++] = (char)(0x80 | (c & 0x3f));
                } else {
                        out[o++] = (char)(0xf0 | c >> 18);
                        out[o++] = (char)(0x80 | ((c >> 12) & 0x3f));
                        out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
                        out[o++] = (char)(0x80 | (c & 0x3f));
                }
        }
        out[o] = 0; /* at most 36 * 3 bytes: 4-byte forms take two units */
}

static bool ranges_meet(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
        return a0 <= b1 && b0 <= a1;
}

/* Read and check the header at `lba`; its entry array too. 0, -KEEL_ENOENT (why set) or a
 * read error. With `out`, the used entries are collected into it. */
static int read_copy(const struct gpt_disk *d, uint64_t lba, struct hdr *h, struct gpt *out,
                     char *why, size_t wlen)
{
        uint8_t *b = d->buf;
        uint32_t hsize, crc;
        int err = d->read(d->ctx, lba, b);

        if (err)
                return err;
        if (memcmp(b, "EFI PART", 8)) {
                snprintf(why, wlen, "no \"EFI PART\" signature");
                return -KEEL_ENOENT;
        }
        hsize = get_le32(b + 12);
        if (get_le32(b + 8) >> 16 != 1 || hsize < HDR_MIN_SIZE || hsize > d->block_size) {
                snprintf(why, wlen, "revision %#x or header size %u not supported", get_le32(b + 8),
                         hsize);
                return -KEEL_ENOENT;
        }
        crc = get_le32(b + 16);
        memset(b + 16, 0, 4);
        if (gpt_crc32(0, b, hsize) != crc) {
                snprintf(why, wlen, "header CRC32 mismatch");
                return -KEEL_ENOENT;
        }
        h->my_lba = get_le64(b + 24);
        h->alternate = get_le64(b + 32);
        h->first_usable = get_le64(b + 40);
        h->last_usable = get_le64(b + 48);
        memcpy(h->disk_guid, b + 56, 16);
        h->entries_lba = get_le64(b + 72);
        h->count = get_le32(b + 80);
        h->entry_size = get_le32(b + 84);
        h->array_crc = get_le32(b + 88);

        if (h->my_lba != lba || !h->alternate || h->alternate >= d->blocks || h->alternate == lba) {
                snprintf(why, wlen, "MyLBA %llu / AlternateLBA %llu wrong for LBA %llu of %llu",
                         (unsigned long long)h->my_lba, (unsigned long long)h->alternate,
                         (unsigned long long)lba, (unsigned long long)d->blocks);
                return -KEEL_ENOENT;
        }
        if (h->entry_size < ENTRY_MIN || h->entry_size > 4096 ||
            (h->entry_size & (h->entry_size - 1)) || !h->count || h->count > GPT_MAX_ENTRIES) {
                snprintf(why, wlen, "%u entries of %u bytes not supported (128 * 2^n bytes, 1..%u)",
                         h->count, h->entry_size, GPT_MAX_ENTRIES);
                return -KEEL_ENOENT;
        }
        uint64_t array_bytes = (uint64_t)h->count * h->entry_size;
        uint64_t array_blocks = (array_bytes + d->block_size - 1) / d->block_size;
        if (h->first_usable > h->last_usable || h->last_usable >= d->blocks ||
            h->first_usable < 2 || h->entries_lba < 1 || h->entries_lba >= d->blocks ||
            array_blocks > d->blocks - h->entries_lba ||
            ranges_meet(h->entries_lba, h->entries_lba + array_blocks - 1, h->first_usable,
                        h->last_usable) ||
            ranges_meet(lba, lba, h->first_usable, h->last_usable) ||
            ranges_meet(h->entries_lba, h->entries_lba + array_blocks - 1, lba, lba) ||
            ranges_meet(h->alternate, h->alternate, h->first_usable, h->last_usable)) {
                snprintf(why, wlen,
                         "usable LBAs %llu-%llu or entry array at %llu (%llu blocks) not "
                         "apart inside the disk",
                         (unsigned long long)h->first_usable, (unsigned long long)h->last_usable,
                         (unsigned long long)h->entries_lba, (unsigned long long)array_blocks);
                return -KEEL_ENOENT;
        }

        /* The array: CRC32 over count * entry_size bytes; entries checked as they pass. */
        char entry_why[WHY_MAX] = "";
        unsigned used = 0;
        uint64_t off = 0;
        crc = 0;
        for (uint64_t blk = 0; blk < array_blocks; blk++) {
                err = d->read(d->ctx, h->entries_lba + blk, b);
                if (err)
                        return err;
                uint32_t n = array_bytes - off < d->block_size ? (uint32_t)(array_bytes - off)
                                                               : d->block_size;
                crc = gpt_crc32(crc, b, n);
                for (uint32_t at = 0; at < n; at += ENTRY_MIN, off += ENTRY_MIN) {
                        const uint8_t *e = b + at;
                        uint64_t first = get_le64(e + 32), last = get_le64(e + 40);
                        unsigned index = (unsigned)(off / h->entry_size) + 1;

                        if (off % h->entry_size || guid_zero(e) || entry_why[0])
                                continue;
                        if (first > last || first < h->first_usable || last > h->last_usable) {
                                snprintf(entry_why, sizeof(entry_why),
                                         "partition %u (LBAs %llu-%llu) outside the usable "
                                         "LBAs %llu-%llu",
                                         index, (unsigned long long)first, (unsigned long long)last,
                                         (unsigned long long)h->first_usable,
                                         (unsigned long long)h->last_usable);
                                continue;
                        }
                        if (used == GPT_MAX_PARTS) {
                                snprintf(entry_why, sizeof(entry_why), "more than %u partitions",
                                         GPT_MAX_PARTS);
                                continue;
                        }
                        if (out) {
                                struct gpt_part *p = &out->part[used];
                                memcpy(p->type, e, 16);
                                memcpy(p->uuid, e + 16, 16);
                                p->first = first;
                                p->last = last;
                                p->attrs = get_le64(e + 48);
                                p->index = index;
                                name_utf8(e + 56, p->name);
                        }
                        used++;
                }
        }
        if (crc != h->array_crc) {
                snprintf(why, wlen, "entry array CRC32 mismatch");
                return -KEEL_ENOENT;
        }
        if (entry_why[0]) {
                snprintf(why, wlen, "%s", entry_why);
                return -KEEL_ENOENT;
        }
        if (!out)
                return 0;
        for (unsigned i = 0; i < used; i++)
                for (unsigned j = i + 1; j < used; j++)
                        if (ranges_meet(out->part[i].first, out->part[i].last, out->part[j].first,
                                        out->part[j].last)) {
                                snprintf(why, wlen, "partitions %u and %u overlap",
                                         out->part[i].index, out->part[j].index);
                                return -KEEL_ENOENT;
                        }
        out->count = used;
        memcpy(out->disk_guid, h->disk_guid, 16);
        out->first_usable = h->first_usable;
        out->last_usable = h->last_usable;
        return 0;
}

static bool same_layout(const struct hdr *a, const struct hdr *b)
{
        return !memcmp(a->disk_guid, b->disk_guid, 16) && a->array_crc == b->array_crc &&
               a->count == b->count && a->entry_size == b->entry_size &&
               a->first_usable == b->first_usable && a->last_usable == b->last_usable;
}

int gpt_read(const struct gpt_disk *d, struct gpt *out)
{
        const uint8_t *b = d->buf;
        char pwhy[WHY_MAX], bwhy[WHY_MAX];
        struct hdr ph, bh;
        int perr, berr, err;

        memset(out, 0, sizeof(*out));
        if (d->blocks < 4 || d->block_size < 512 || d->block_size > 4096 ||
            (d->block_size & (d->block_size - 1))) {
                snprintf(out->error, sizeof(out->error), "disk too small or odd block size");
                return -KEEL_ENOENT;
        }
        err = d->read(d->ctx, 0, d->buf);
        if (err)
                return err;
        bool pmbr = b[510] == 0x55 && b[511] == 0xaa;
        for (unsigned i = 0; pmbr && i < 4; i++)
                if (b[446 + 16 * i + 4] == 0xee)
                        break;
                else if (i == 3)
                        pmbr = false;
        if (!pmbr) {
                snprintf(out->error, sizeof(out->error),
                         "no protective MBR (no 0xEE partition record at LBA 0): not a GPT disk");
                return -KEEL_ENOENT;
        }

        perr = read_copy(d, 1, &ph, out, pwhy, sizeof(pwhy));
        if (perr && perr != -KEEL_ENOENT)
                return perr;
        /* The backup is where the primary says, or at the disk's last LBA (5.3.2). */
        uint64_t blba = perr ? d->blocks - 1 : ph.alternate;
        berr = read_copy(d, blba, &bh, perr ? out : NULL, bwhy, sizeof(bwhy));
        if (berr && berr != -KEEL_ENOENT)
                return berr;
        if (perr && berr) {
                snprintf(out->error, sizeof(out->error),
                         "no valid GPT: primary at LBA 1: %s; backup at LBA %llu: %s", pwhy,
                         (unsigned long long)blba, bwhy);
                return -KEEL_ENOENT;
        }
        if (perr) {
                out->used_backup = true;
                snprintf(out->warning, sizeof(out->warning),
                         "primary GPT at LBA 1 invalid (%s): using the backup at LBA %llu", pwhy,
                         (unsigned long long)blba);
        } else if (berr) {
                snprintf(out->warning, sizeof(out->warning),
                         "backup GPT at LBA %llu invalid (%s): using the primary",
                         (unsigned long long)blba, bwhy);
        } else if (!same_layout(&ph, &bh) || bh.alternate != 1) {
                snprintf(out->warning, sizeof(out->warning),
                         "backup GPT at LBA %llu differs from the primary: using the primary",
                         (unsigned long long)blba);
        }
        return 0;
}
