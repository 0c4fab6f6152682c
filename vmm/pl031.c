/*
 * PL031 RTC model (vmm/pl031.h). Registers (PL031 TRM): 0x000 RTCDR counter (read-only),
 * 0x004 RTCMR match, 0x008 RTCLR load, 0x00c RTCCR (bit 0 start: always started, as QEMU's),
 * 0x010 RTCIMSC, 0x014 RTCRIS, 0x018 RTCMIS, 0x01c RTCICR (write 1 clears), and the PrimeCell
 * identification registers at 0xfe0-0xffc that the AMBA bus driver matches on. 32-bit
 * registers; other sizes and offsets read 0 and ignore writes.
 */
#include <string.h>

#include <keel/errno.h>
#include <vmm/pl031.h>
#include <vmm/snapshot.h>

#define RTCDR   0x000
#define RTCMR   0x004
#define RTCLR   0x008
#define RTCCR   0x00c
#define RTCIMSC 0x010
#define RTCRIS  0x014
#define RTCMIS  0x018
#define RTCICR  0x01c
#define RTCID   0xfe0

/* PeriphID0-3 (part 0x031, designer 0x41 Arm, revision 1) and PCellID0-3. */
static const uint8_t pl031_id[8] = {0x31, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1};

void pl031_init(struct pl031 *p, uint64_t (*now_ns)(void))
{
        memset(p, 0, sizeof(*p));
        p->now_ns = now_ns;
}

static uint32_t counter(const struct pl031 *p)
{
        return (uint32_t)((int64_t)(p->now_ns() / 1000000000ull) + p->offset);
}

static void drive(struct pl031 *p)
{
        bool level = p->ris && p->imsc;

        if (level != p->level) {
                p->level = level;
                irq_set_level(&p->irq, level);
        }
}

/* Latch a match: the counter has reached RTCMR since it was written (modulo 2^32). */
static void update(struct pl031 *p)
{
        uint32_t now = counter(p);

        if (p->armed && now - p->armed_at >= p->match - p->armed_at) {
                p->armed = false;
                p->ris = true;
        }
        drive(p);
}

void pl031_set_irq(struct pl031 *p, const struct irq_line *line)
{
        p->irq = line ? *line : (struct irq_line){0};
        irq_set_level(&p->irq, p->level);
}

static void pl031_read(void *dev, uint64_t off, unsigned size, uint64_t *val)
{
        struct pl031 *p = dev;

        *val = 0;
        if (size != 4 || off & 3)
                return;
        update(p);
        switch (off) {
        case RTCDR:
                *val = counter(p);
                return;
        case RTCMR:
                *val = p->match;
                return;
        case RTCLR:
                *val = p->load;
                return;
        case RTCCR:
                *val = 1;
                return;
        case RTCIMSC:
                *val = p->imsc;
                return;
        case RTCRIS:
                *val = p->ris;
                return;
        case RTCMIS:
                *val = p->ris && p->imsc;
                return;
        default:
                if (off >= RTCID && off < RTCID + 4 * sizeof(pl031_id))
                        *val = pl031_id[(off - RTCID) / 4];
        }
}

static void pl031_write(void *dev, uint64_t off, unsigned size, uint64_t val)
{
        struct pl031 *p = dev;
        uint32_t v = (uint32_t)val;

        if (size != 4 || off & 3)
                return;
        switch (off) {
        case RTCMR:
                p->match = v;
                p->armed_at = counter(p);
                p->armed = true;
                break;
        case RTCLR:
                p->load = v;
                p->offset = (int64_t)v - (int64_t)(p->now_ns() / 1000000000ull);
                p->armed_at = v; /* a match counts from the new time */
                break;
        case RTCIMSC:
                p->imsc = v & 1;
                break;
        case RTCICR:
                if (v & 1)
                        p->ris = false;
                break;
        default:
                break; /* RTCCR: started for good; read-only registers */
        }
        update(p);
}

const struct mmio_ops pl031_ops = {.read = pl031_read, .write = pl031_write};

/* --- snapshots (vmm/snapshot.h) --- */

struct pl031_snap {
        int64_t offset;
        uint32_t match, load, armed_at;
        uint8_t armed, ris, imsc, pad;
};

__attribute__((cold)) void pl031_save(const struct pl031 *p, struct snap_buf *b)
{
        struct pl031_snap s = {p->offset, p->match, p->load, p->armed_at,
                               p->armed,  p->ris,   p->imsc, 0};

        snap_put(b, &s, sizeof(s));
}

__attribute__((cold)) int pl031_load(struct pl031 *p, struct snap_rd *r)
{
        struct pl031_snap s;

        if (!snap_get(r, &s, sizeof(s)))
                return -KEEL_EINVAL;
        if (s.armed > 1 || s.ris > 1 || s.imsc > 1 || s.pad)
                return snap_fail(r, "PL031 RTC: a flag is neither 0 nor 1");
        /* RTCLR gives offsets within 2^32 s of Keel's clock; far beyond, counter() overflows. */
        if (s.offset < -(1ll << 40) || s.offset > (1ll << 40))
                return snap_fail(r, "PL031 RTC: offset of %lld s from Keel's clock",
                                 (long long)s.offset);
        if (!r->apply)
                return 0;
        p->offset = s.offset, p->match = s.match, p->load = s.load, p->armed_at = s.armed_at;
        p->armed = s.armed, p->ris = s.ris, p->imsc = s.imsc;
        update(p);
        return 0;
}
