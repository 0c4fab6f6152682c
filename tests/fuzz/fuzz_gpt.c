/*
 * libFuzzer target for the GPT reader (drivers/gpt.c): a whole disk image as input.
 *
 * Input: byte 0 holds flags: bit 0 re-seals the CRCs (after the fuzzer's changes, the header
 * CRC32 and entry-array CRC32 of the copies at LBA 1 and at the last LBA are recomputed, as
 * far as the header's own fields allow, so that the checks behind the CRCs are reached),
 * bit 1 picks 4096-byte blocks (else 512); the rest is the disk, cut to whole blocks
 * (at most 96 blocks). Invariants (abort on violation):
 *   - only blocks inside the disk are read;
 *   - 0 or -KEEL_ENOENT; -KEEL_ENOENT comes with an error line, 0 with none;
 *   - on 0: count <= GPT_MAX_PARTS, 2 <= first_usable <= last_usable < blocks,
 *     every partition inside [first_usable, last_usable], first <= last, pairwise disjoint,
 *     indexes distinct and >= 1, names NUL-terminated within GPT_NAME_MAX;
 *   - the same input parsed twice gives the same result (no hidden state).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <drivers/gpt.h>
#include <keel/errno.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BLOCKS 96

struct disk {
        uint8_t *img;
        uint64_t blocks;
        uint32_t bs;
};

static int rd(void *ctx, uint64_t lba, void *buf)
{
        struct disk *d = ctx;

        if (lba >= d->blocks)
                abort();
        memcpy(buf, d->img + lba * d->bs, d->bs);
        return 0;
}

static uint32_t get32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
        return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> 8 * i);
}

static void seal(struct disk *d, uint64_t lba)
{
        uint8_t *h = d->img + lba * d->bs;
        uint64_t alba = get64(h + 72), bytes = (uint64_t)get32(h + 80) * get32(h + 84);
        uint32_t hs = get32(h + 12);

        if (alba < d->blocks && bytes <= (d->blocks - alba) * d->bs)
                put32(h + 88, gpt_crc32(0, d->img + alba * d->bs, bytes));
        put32(h + 16, 0);
        put32(h + 16, gpt_crc32(0, h, hs <= d->bs ? hs : 92));
}

static struct gpt g1, g2;

static void check(const struct disk *d, int r, const struct gpt *g)
{
        if (r != 0 && r != -KEEL_ENOENT)
                abort();
        if (r) {
                if (!g->error[0] || !memchr(g->error, 0, sizeof(g->error)))
                        abort();
                return;
        }
        if (g->error[0] || g->count > GPT_MAX_PARTS || g->first_usable < 2 ||
            g->first_usable > g->last_usable || g->last_usable >= d->blocks ||
            !memchr(g->warning, 0, sizeof(g->warning)))
                abort();
        for (unsigned i = 0; i < g->count; i++) {
                const struct gpt_part *p = &g->part[i];
                if (p->first > p->last || p->first < g->first_usable || p->last > g->last_usable ||
                    !p->index || !memchr(p->name, 0, GPT_NAME_MAX))
                        abort();
                for (unsigned j = 0; j < i; j++)
                        if (g->part[j].index == p->index ||
                            (g->part[j].first <= p->last && p->first <= g->part[j].last))
                                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static uint8_t buf[4096];
        struct disk d;

        if (size < 1)
                return 0;
        d.bs = data[0] & 2 ? 4096 : 512;
        d.blocks = (size - 1) / d.bs;
        if (d.blocks > MAX_BLOCKS)
                d.blocks = MAX_BLOCKS;
        d.img = malloc(d.blocks * d.bs + 1);
        memcpy(d.img, data + 1, d.blocks * d.bs);
        if ((data[0] & 1) && d.blocks >= 4) {
                seal(&d, 1);
                seal(&d, d.blocks - 1);
        }
        struct gpt_disk gd = {
            .blocks = d.blocks, .block_size = d.bs, .read = rd, .ctx = &d, .buf = buf};
        int r1 = gpt_read(&gd, &g1);
        check(&d, r1, &g1);
        int r2 = gpt_read(&gd, &g2);
        if (r1 != r2 || memcmp(&g1, &g2, sizeof(g1)))
                abort();
        free(d.img);
        return 0;
}
