/*
 * The guest's 8254 PIT (Intel 8254 data sheet; port 0x61 as on the PC/AT): the counter latch
 * and read-back commands, LSB, MSB and word access with their flip-flops, modes 0-5 and their
 * OUT levels, channel 2's gate. Binary counting only: the BCD bit is kept (the status byte
 * shows it) but counts stay binary (image room; no PC OS counts the PIT in BCD). Counting is
 * a function of the TSC: nothing runs between accesses. docs/x86-interrupts.md.
 */
#include <stddef.h>
#include <string.h>

#include <arch/vpit.h>
#include <keel/errno.h>
#include <vmm/snapshot.h>

#define RW_LSB  1
#define RW_MSB  2
#define RW_WORD 3

static unsigned mode_of(const struct vpit_chan *c)
{
        return c->ctrl >> 1 & 7;
}

/*
 * PIT clocks in `dt` TSC cycles (rounded down), and the TSC cycles until clock `n` (rounded
 * up): exact inverses, so an edge is never served early; no overflow for a TSC below 15 THz
 * and times below 2^64 / 1193182 s (490,000 years).
 */
static uint64_t clocks(const struct vpit *p, uint64_t dt)
{
        return dt / p->hz * VPIT_HZ + dt % p->hz * VPIT_HZ / p->hz;
}

static uint64_t cycles(const struct vpit *p, uint64_t n)
{
        return n / VPIT_HZ * p->hz + (n % VPIT_HZ * p->hz + VPIT_HZ - 1) / VPIT_HZ;
}

/* Clocks counted since `start`: none before it, none while a low gate holds modes 0, 2-4. */
static uint64_t elapsed(const struct vpit *p, const struct vpit_chan *c, uint64_t now)
{
        unsigned m = mode_of(c);

        if (!c->gate && m != 1 && m != 5)
                now = c->held;
        return now > c->start ? clocks(p, now - c->start) : 0;
}

/* The counting element now (0 for 65536) and, in bit 16, OUT. */
static uint32_t sample(const struct vpit *p, const struct vpit_chan *c, uint64_t now)
{
        unsigned m = mode_of(c);
        uint64_t n = c->count, d = elapsed(p, c, now), v;
        bool o;

        v = n - d; /* modes 0, 1, 4, 5: on past the terminal count */
        switch (m) {
        case 0: /* OUT high from the terminal count on */
        case 1:
                o = d >= n;
                break;
        case 2: /* n .. 1, reloaded; OUT low for the clock before each reload */
                v = n - d % n;
                o = n == 1 || d % n != n - 1;
                break;
        case 3: /* square wave: by two, twice per period; OUT high for the first (larger) half */
                v = n - 2 * d % n;
                o = d % n < (n + 1) / 2;
                break;
        default: /* 4, 5: OUT low for the clock after the terminal count */
                o = d != n;
        }
        if (!c->running) { /* after the control word: mode 0 low, the others high */
                v = n;
                o = m != 0;
        } else if (!c->gate && (m == 2 || m == 3)) {
                o = true;
        }
        return (uint32_t)(v & 0xffff) | (uint32_t)o << 16;
}

static uint16_t counter(const struct vpit *p, const struct vpit_chan *c, uint64_t now)
{
        return (uint16_t)sample(p, c, now);
}

static bool out(const struct vpit *p, const struct vpit_chan *c, uint64_t now)
{
        return sample(p, c, now) >> 16;
}

/*
 * Channel 0's next rising OUT edge after `now` (its gate is high): each period in modes 2 and
 * 3 (at most every VPIT_MIN_IRQ_PERIOD clocks), else once: at the terminal count in modes 0
 * and 1, a clock later in 4 and 5.
 */
static void arm(struct vpit *p, uint64_t now)
{
        const struct vpit_chan *c = &p->ch[0];
        unsigned m = mode_of(c);
        uint64_t n = c->count, d = elapsed(p, c, now);

        if (m == 2 || m == 3) {
                if (n < VPIT_MIN_IRQ_PERIOD)
                        n = VPIT_MIN_IRQ_PERIOD;
                n *= d / n + 1;
        } else {
                n += m >= 4;
        }
        n = c->running && n > d ? c->start + cycles(p, n) : 0;
        p->irq_at = n > c->start ? n : UINT64_MAX; /* none, or wrapped (a restored start) */
}

bool vpit_update(struct vpit *p, uint64_t now)
{
        if (now < p->irq_at)
                return false;
        arm(p, now);
        return true;
}

/* A count written (all its bytes): counting starts from it now, in every mode (QEMU does the
 * same; an 8254 in mode 2 or 3 would finish the period in progress first). */
static void load(struct vpit *p, unsigned i, uint32_t n, uint64_t now)
{
        struct vpit_chan *c = &p->ch[i];

        c->count = n ? n : 65536;
        c->start = now;
        c->running = true;
        c->null_count = false;
        if (i == 0)
                arm(p, now);
}

static void latch(const struct vpit *p, struct vpit_chan *c, bool count, bool status, uint64_t now)
{
        if (count && !c->latched) {
                c->latch = counter(p, c, now);
                c->latched = true;
        }
        if (status && !c->status_latched) {
                c->status = (uint8_t)(out(p, c, now) << 7 | c->null_count << 6 | c->ctrl);
                c->status_latched = true;
        }
}

static void control(struct vpit *p, uint8_t v, uint64_t now)
{
        struct vpit_chan *c = &p->ch[v >> 6 & 3];

        if (v >> 6 == 3) { /* read-back: counters in bits 3:1; bit 5 clear: counts, 4: status */
                for (unsigned i = 0; i < 3; i++)
                        if (v & 2u << i)
                                latch(p, &p->ch[i], !(v & 0x20), !(v & 0x10), now);
                return;
        }
        if (!(v & 0x30)) { /* counter latch command */
                latch(p, c, true, false, now);
                return;
        }
        if ((v & 0x0c) == 0x0c)
                v &= ~0x08; /* modes 6 and 7 are 2 and 3 */
        c->ctrl = v & 0x3f;
        c->running = c->latched = c->status_latched = c->read_msb = c->write_msb = false;
        c->null_count = true;
        if (c == p->ch)
                p->irq_at = UINT64_MAX;
}

static uint8_t read_data(const struct vpit *p, struct vpit_chan *c, uint64_t now)
{
        unsigned rw = c->ctrl >> 4 & 3;
        uint16_t v;
        bool hi = rw == RW_MSB || (rw == RW_WORD && c->read_msb);

        if (c->status_latched) {
                c->status_latched = false;
                return c->status;
        }
        v = c->latched ? c->latch : counter(p, c, now);
        if (rw == RW_WORD)
                c->read_msb = !c->read_msb;
        if (!c->read_msb)
                c->latched = false; /* its last byte read */
        return (uint8_t)(hi ? v >> 8 : v);
}

static void write_data(struct vpit *p, unsigned i, uint8_t v, uint64_t now)
{
        struct vpit_chan *c = &p->ch[i];

        switch (c->ctrl >> 4 & 3) {
        case RW_LSB:
                load(p, i, v, now);
                return;
        case RW_MSB:
                load(p, i, (uint32_t)v << 8, now);
                return;
        }
        c->write_msb = !c->write_msb;
        if (c->write_msb)
                c->lsb = v;
        else
                load(p, i, c->lsb | (uint32_t)v << 8, now);
}

/* Channel 2's gate (port 0x61 bit 0): low holds modes 0, 2-4; a rising edge restarts modes
 * 1-3 and 5 from the count, and resumes 0 and 4 where they were held. */
static void gate(struct vpit_chan *c, bool g, uint64_t now)
{
        unsigned m = mode_of(c);

        if (!g)
                c->held = now;
        else if ((m == 0 || m == 4) && c->start < c->held)
                c->start += now - c->held;
        else
                c->start = now;
        c->gate = g;
}

bool vpit_io(struct vpit *p, uint16_t port, bool in, uint8_t *val, uint64_t now)
{
        unsigned i = (unsigned)port - VPIT_PORT;
        struct vpit_chan *c2 = &p->ch[2];

        if (port == VPIT_PORT_B) {
                if (in) /* bit 4 toggles every 18 clocks (15 us, the refresh), bit 5 is OUT 2 */
                        *val = (uint8_t)(p->port_b | (clocks(p, now) / 18 & 1) << 4 |
                                         out(p, c2, now) << 5);
                else if ((*val & 1) != c2->gate)
                        gate(c2, *val & 1, now);
                if (!in)
                        p->port_b = *val & 0x0f;
                return true;
        }
        if (i > 3)
                return false;
        if (i == 3) {
                if (in)
                        *val = 0xff; /* the control word is write-only: nothing drives the bus */
                else
                        control(p, *val, now);
        } else if (in) {
                *val = read_data(p, &p->ch[i], now);
        } else {
                write_data(p, i, *val, now);
        }
        return true;
}

void vpit_init(struct vpit *p, uint64_t hz, uint64_t now)
{
        memset(p, 0, sizeof(*p));
        p->hz = hz;
        for (unsigned i = 0; i < 3; i++) {
                struct vpit_chan *c = &p->ch[i];

                c->ctrl = i ? 0x36 : 0x34; /* word access, mode 3 / mode 2, binary */
                c->count = 65536;
                c->start = c->held = now;
                c->running = true;
                c->gate = i != 2;
        }
        arm(p, now);
}

/* Snapshots: the channels, irq_at and port 0x61, as laid out in struct vpit up to hz. */
#define VPIT_SNAP_SIZE offsetof(struct vpit, hz)
_Static_assert(sizeof(struct vpit_chan) == 32 && offsetof(struct vpit_chan, lsb) == 24 &&
                   offsetof(struct vpit, port_b) == 104 && VPIT_SNAP_SIZE == 112 &&
                   sizeof(bool) == 1,
               "vpit layout");

__attribute__((cold)) void vpit_save(const struct vpit *p, struct snap_buf *b)
{
        snap_put(b, p, VPIT_SNAP_SIZE);
}

__attribute__((cold)) int vpit_load(struct vpit *p, struct snap_rd *r)
{
        struct vpit v;
        const uint8_t *s = (const uint8_t *)&v; /* its bytes: the bools are read once checked */
        bool bad = false;

        if (!snap_get(r, &v, VPIT_SNAP_SIZE))
                return -KEEL_EINVAL;
        /* Each channel's flags (its bytes 25-31) 0 or 1, the pad after port_b (104) zero. */
        for (unsigned f = 0; f < VPIT_SNAP_SIZE; f++)
                bad |= f < 96 ? (f & 31) > 24 && s[f] > 1 : f > 104 && s[f];
        if (!bad) {
                bad = v.port_b > 0x0f || !v.ch[0].gate || !v.ch[1].gate ||
                      v.ch[2].gate != (v.port_b & 1);
                for (unsigned i = 0; i < 3; i++)
                        bad |= v.ch[i].count - 1 >= 65536 || v.ch[i].ctrl > 0x3f ||
                               !(v.ch[i].ctrl & 0x30) || mode_of(&v.ch[i]) > 5;
        }
        if (bad)
                return snap_fail(r, "8254: a register holds a value the PIT cannot have");
        if (r->apply) {
                /* Its times are Keel's counter's: on by as much as that moved since (the
                 * guest's TSC goes on the same way, vmm/snapshot.h). */
                for (unsigned i = 0; i < 3; i++) {
                        v.ch[i].start += r->shift;
                        v.ch[i].held += r->shift;
                }
                if (v.irq_at != UINT64_MAX)
                        v.irq_at += r->shift;
                memcpy(p, &v, VPIT_SNAP_SIZE);
        }
        return 0;
}
