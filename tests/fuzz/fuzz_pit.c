/*
 * libFuzzer target for the guest's 8254 PIT (arch/x86_64/vpit.c), driven as a VM drives it:
 * guest port accesses at TSC times the input chooses, and the platform's IRQ 0 polls.
 *
 * Input: a u32 TSC frequency (at least 2^20 Hz: a real TSC's; the model's clock arithmetic
 * holds for 2^64 / 1193182 s of uptime at any rate) and a u32 start time; a flags byte, bit 0: the
 * next 112 bytes are a snapshot section for vpit_load first (both passes; refused: the PIT
 * unchanged and a reason given; accepted: saved again it is the same bytes); then operations,
 * each a kind byte (bits 0-1) and its operands:
 *   0 port write: port byte (bits 0-2 pick 0x40, 0x41, 0x42, 0x43, 0x61, 0x44, 0x3f, 0x60),
 *     value byte;  1 port read: port byte
 *   2 time passes: a u16, shifted left by the kind byte's bits 2-6
 *   3 vpit_update (the platform's poll before an entry)
 * Invariants (abort on violation):
 *   - only 0x40-0x43 and 0x61 are claimed; another port changes nothing;
 *   - every channel's count is 1-65536, its control word a real one (RW 1-3, mode 0-5);
 *     channels 0 and 1 keep their gate high, channel 2's follows port 0x61 bit 0, which
 *     keeps only bits 3:0;
 *   - channel 0's deadline is never in the past after a poll: irq_at > now (no host-timer
 *     storm), and a poll reports an edge only once irq_at is reached;
 *   - in modes 2 and 3 the deadline after a reported edge is at most one period ahead (once
 *     counting started) and at least VPIT_MIN_IRQ_PERIOD clocks after the edge;
 *   - every state reached saves and loads back unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arch/vpit.h>
#include <vmm/snapshot.h>

#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint16_t ports[8] = {0x40, 0x41, 0x42, 0x43, 0x61, 0x44, 0x3f, 0x60};

static struct vpit p;
static uint64_t now;

/* TSC cycles for n PIT clocks, rounded down (the model rounds its deadlines up). */
static uint64_t tsc_for(uint64_t n)
{
        return n / VPIT_HZ * p.hz + n % VPIT_HZ * p.hz / VPIT_HZ;
}

static void check(void)
{
        if (p.port_b > 0x0f || !p.ch[0].gate || !p.ch[1].gate || p.ch[2].gate != (p.port_b & 1))
                abort();
        for (unsigned i = 0; i < 3; i++) {
                const struct vpit_chan *c = &p.ch[i];

                if (c->count < 1 || c->count > 65536 || c->ctrl > 0x3f || !(c->ctrl & 0x30) ||
                    (c->ctrl >> 1 & 7) > 5)
                        abort();
        }
}

static void update(void)
{
        uint64_t before = p.irq_at;
        const struct vpit_chan *c = &p.ch[0];
        unsigned m = c->ctrl >> 1 & 7;
        bool edge = vpit_update(&p, now);

        if (edge != (now >= before) || p.irq_at <= now)
                abort();
        if (edge && c->running && (m == 2 || m == 3) && p.irq_at != UINT64_MAX && c->start <= now) {
                uint64_t per = c->count < VPIT_MIN_IRQ_PERIOD ? VPIT_MIN_IRQ_PERIOD : c->count;

                if (p.irq_at - now > tsc_for(per) + 2 ||
                    p.irq_at - before + 1 < tsc_for(VPIT_MIN_IRQ_PERIOD))
                        abort();
        }
}

static void port_op(struct in *in, bool write)
{
        uint8_t sel, v = 0;
        struct vpit copy = p;
        bool claimed;

        if (!take(in, &sel, 1) || (write && !take(in, &v, 1)))
                return;
        claimed = vpit_io(&p, ports[sel & 7], !write, &v, now);
        if (claimed != ((sel & 7) < 5))
                abort();
        if (!claimed && memcmp(&copy, &p, sizeof(p)))
                abort();
}

/* Save and load into another PIT: a state the guest reached is always accepted. */
static void round_trip(void)
{
        uint8_t buf[112];
        char why[96];
        struct snap_buf b = {.buf = buf, .cap = sizeof(buf)};
        struct vpit q;

        vpit_save(&p, &b);
        if (b.len != sizeof(buf) || b.overflow)
                abort();
        vpit_init(&q, p.hz, 0);
        for (int pass = 0; pass < 2; pass++) {
                struct snap_rd r = {.p = buf,
                                    .len = sizeof(buf),
                                    .apply = pass == 1,
                                    .why = why,
                                    .why_len = sizeof(why)};

                if (vpit_load(&q, &r))
                        abort();
        }
        if (memcmp(&p, &q, sizeof(p)))
                abort();
}

static void load(struct in *in)
{
        uint8_t sec[112], again[112];
        char why[96];
        struct vpit before = p;
        struct snap_buf b = {.buf = again, .cap = sizeof(again)};
        int err = 0;

        if (!take(in, sec, sizeof(sec)))
                return;
        for (int pass = 0; pass < 2 && !err; pass++) {
                struct snap_rd r = {.p = sec,
                                    .len = sizeof(sec),
                                    .apply = pass == 1,
                                    .why = why,
                                    .why_len = sizeof(why)};

                why[0] = '\0';
                err = vpit_load(&p, &r);
                if (r.pos > sizeof(sec) || (err && (pass || !why[0])))
                        abort();
        }
        if (err) {
                if (memcmp(&before, &p, sizeof(p)))
                        abort();
                return;
        }
        vpit_save(&p, &b);
        if (b.len != sizeof(sec) || memcmp(again, sec, sizeof(sec)))
                abort();
        /* A loaded deadline may lie anywhere: the first poll settles it. */
        if (p.irq_at <= now)
                vpit_update(&p, now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct in in = {data, size};
        uint32_t hz, start;
        uint16_t dt;
        uint8_t flags, kind;

        if (!take(&in, &hz, 4) || !take(&in, &start, 4) || !take(&in, &flags, 1))
                return 0;
        now = start;
        vpit_init(&p, hz | 1u << 20, now);
        if (flags & 1)
                load(&in);
        check();
        while (take(&in, &kind, 1)) {
                switch (kind & 3) {
                case 0:
                case 1:
                        port_op(&in, !(kind & 1));
                        break;
                case 2:
                        if (take(&in, &dt, 2))
                                now += (uint64_t)dt << (kind >> 2 & 31);
                        break;
                case 3:
                        update();
                        break;
                }
                check();
        }
        round_trip();
        return 0;
}
