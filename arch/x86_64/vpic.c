/*
 * The guest's 8259A pair (Intel 8259A data sheet, as in a PIIX): ICW1-4, OCW1-3, fully nested
 * and rotating priority, specific and non-specific EOI, auto-EOI, special mask, poll, IRR/ISR
 * reads, edge and (ELCR) level inputs, the slave on the master's IR2. docs/x86-interrupts.md.
 */
#include <stddef.h>
#include <string.h>

#include <arch/vpic.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <vmm/snapshot.h>

#define CASCADE_IR 2

/* The highest-priority bit of `bits` as an IR number 0-7 (rotated by `lowest`), or 8. */
static unsigned prio(const struct vpic_chip *c, uint8_t bits)
{
        for (unsigned i = 1; i <= 8; i++) {
                unsigned ir = (c->lowest + i) & 7;

                if (bits & (1u << ir))
                        return ir;
        }
        return 8;
}

/* Rank of IR `ir` (0 = highest priority) under the current rotation. */
static unsigned rank(const struct vpic_chip *c, unsigned ir)
{
        return (ir - c->lowest - 1) & 7;
}

/* The IR this chip would raise INT for, or -1: the highest unmasked request above every
 * in-service level that still blocks (special mask: masked levels don't; special fully
 * nested master: the cascade's doesn't). */
static int chip_irq(const struct vpic_chip *c, bool master)
{
        uint8_t in = c->isr;
        unsigned req = prio(c, c->irr & ~c->imr), cur;

        if (req == 8)
                return -1;
        if (c->special_mask)
                in &= ~c->imr;
        if (master && c->sfnm)
                in &= ~(1u << CASCADE_IR);
        cur = prio(c, in);
        return cur == 8 || rank(c, req) < rank(c, cur) ? (int)req : -1;
}

static void chip_line(struct vpic_chip *c, unsigned ir, bool level)
{
        uint8_t bit = 1u << ir;

        if (c->elcr & bit)
                c->irr = level ? c->irr | bit : c->irr & ~bit;
        else if (level && !(c->lines & bit))
                c->irr |= bit; /* rising edge: latched until acknowledged */
        c->lines = level ? c->lines | bit : c->lines & ~bit;
}

/* The slave's INT output is the master's IR2 input (edge-triggered: ELCR bit 2 is fixed 0). */
static void cascade(struct vpic *p)
{
        chip_line(&p->chip[0], CASCADE_IR, chip_irq(&p->chip[1], false) >= 0);
}

static void chip_ack(struct vpic_chip *c, unsigned ir)
{
        uint8_t bit = 1u << ir;

        if (!(c->elcr & bit))
                c->irr &= ~bit;
        if (!c->auto_eoi)
                c->isr |= bit;
        else if (c->rotate_aeoi)
                c->lowest = (uint8_t)ir;
}

static void chip_reset(struct vpic_chip *c)
{
        uint8_t lines = c->lines, elcr = c->elcr;

        memset(c, 0, sizeof(*c));
        c->lines = lines;
        c->elcr = elcr;
        c->irr = lines & elcr; /* level inputs still asserted; edges must come again */
        c->lowest = 7;
}

void vpic_init(struct vpic *p)
{
        memset(p, 0, sizeof(*p));
        for (unsigned i = 0; i < 2; i++) {
                p->chip[i].lowest = 7;
                p->chip[i].imr = 0xff;
        }
}

void vpic_bios_state(struct vpic *p)
{
        static const uint8_t seq[2][5] = {{0x11, 0x08, 0x04, 0x01, VPIC_BIOS_IMR_MASTER},
                                          {0x11, 0x70, 0x02, 0x01, VPIC_BIOS_IMR_SLAVE}};

        for (unsigned i = 0; i < 2; i++)
                for (unsigned j = 0; j < 5; j++) {
                        uint8_t v = seq[i][j];

                        vpic_io(p, (uint16_t)((i ? VPIC_SLAVE_PORT : VPIC_MASTER_PORT) + !!j),
                                false, &v);
                }
}

void vpic_set_irq(void *ctrl, unsigned irq, bool level)
{
        struct vpic *p = ctrl;

        CHECK(irq < 16);
        chip_line(&p->chip[irq >> 3], irq & 7, level);
        cascade(p);
}

static int inta(struct vpic *p, bool ack)
{
        struct vpic_chip *m = &p->chip[0], *s = &p->chip[1];
        int ir = chip_irq(m, true), sir;

        if (ir < 0) {
                if (!ack)
                        return -1;
                p->stats.spurious++;
                return m->base | 7;
        }
        if (ack)
                chip_ack(m, (unsigned)ir);
        if (ir != CASCADE_IR || m->single) {
                p->stats.deliveries += ack;
                return m->base + ir;
        }
        sir = chip_irq(s, false);
        if (sir < 0) {
                p->stats.spurious += ack;
                return s->base | 7;
        }
        if (ack) {
                chip_ack(s, (unsigned)sir);
                p->stats.deliveries++;
                cascade(p);
        }
        return s->base + sir;
}

int vpic_pending(const struct vpic *p)
{
        return inta((struct vpic *)p, false);
}

uint8_t vpic_intack(struct vpic *p)
{
        return (uint8_t)inta(p, true);
}

/* OCW2 (bits 7:5 = R, SL, EOI). */
static void ocw2(struct vpic_chip *c, uint8_t v)
{
        unsigned ir = v & 7, cmd = v >> 5;

        switch (cmd) {
        case 0: /* rotate in auto-EOI: clear / set */
        case 4:
                c->rotate_aeoi = cmd == 4;
                return;
        case 1: /* non-specific EOI (with rotation: 5) */
        case 5:
                ir = prio(c, c->isr);
                if (ir == 8)
                        return;
                break;
        case 6: /* set priority */
                c->lowest = (uint8_t)ir;
                return;
        case 2: /* no operation */
                return;
        }
        c->isr &= ~(1u << ir); /* 1, 5, 3 (specific), 7 (specific, rotate) */
        if (cmd & 4)
                c->lowest = (uint8_t)ir;
}

static void write_cmd(struct vpic_chip *c, uint8_t v)
{
        if (v & 0x10) { /* ICW1 */
                chip_reset(c);
                c->need_icw4 = v & 1;
                c->single = v & 2;
                c->icw = 2;
        } else if (v & 0x08) { /* OCW3 */
                if (v & 0x02)
                        c->read_isr = v & 1;
                if (v & 0x40)
                        c->special_mask = (v & 0x20) != 0;
                c->poll = (v & 0x04) != 0;
        } else {
                ocw2(c, v);
        }
}

static void write_data(struct vpic_chip *c, uint8_t v)
{
        switch (c->icw) {
        case 2:
                c->base = v & 0xf8;
                c->icw = c->single ? (c->need_icw4 ? 4 : 0) : 3;
                return;
        case 3: /* the cascade wiring is fixed: IR2 / ID 2 */
                c->icw = c->need_icw4 ? 4 : 0;
                return;
        case 4:
                c->auto_eoi = v & 2;
                c->sfnm = v & 0x10;
                c->icw = 0;
                return;
        }
        c->imr = v; /* OCW1 */
}

/* Poll command: the next read is 0x80 | IR of the highest request (acknowledged) or 0. */
static uint8_t poll(struct vpic *p, unsigned i)
{
        struct vpic_chip *c = &p->chip[i];
        int ir = chip_irq(c, i == 0);

        c->poll = false;
        if (ir < 0)
                return 0;
        chip_ack(c, (unsigned)ir);
        if (i)
                p->chip[0].irr &= ~(1u << CASCADE_IR);
        return (uint8_t)(0x80 | ir);
}

static const uint8_t elcr_mask[2] = {0xf8, 0xde}; /* IRQ 0-2, 8, 13: always edge */

bool vpic_io(struct vpic *p, uint16_t port, bool in, uint8_t *val)
{
        unsigned i;
        struct vpic_chip *c;

        if ((port & ~1u) == VPIC_ELCR_PORT) {
                c = &p->chip[port & 1];
                if (in) {
                        *val = c->elcr;
                        return true;
                }
                c->elcr = *val & elcr_mask[port & 1];
                c->irr = (c->irr & ~c->elcr) | (c->lines & c->elcr);
        } else if ((port & ~1u) == VPIC_MASTER_PORT || (port & ~1u) == VPIC_SLAVE_PORT) {
                i = port >= VPIC_SLAVE_PORT;
                c = &p->chip[i];
                if (in) {
                        *val = c->poll       ? poll(p, i)
                               : (port & 1)  ? c->imr
                               : c->read_isr ? c->isr
                                             : c->irr;
                        cascade(p);
                        return true;
                }
                if (port & 1)
                        write_data(c, *val);
                else
                        write_cmd(c, *val);
        } else {
                return false;
        }
        cascade(p);
        return true;
}

/* Snapshots: each chip's 8 registers and 8 flags, as they are in struct vpic_chip. */
_Static_assert(sizeof(struct vpic_chip) == 16 && sizeof(bool) == 1, "vpic_chip layout");

__attribute__((cold)) void vpic_save(const struct vpic *p, struct snap_buf *b)
{
        snap_put(b, p->chip, sizeof(p->chip));
}

__attribute__((cold)) int vpic_load(struct vpic *p, struct snap_rd *r)
{
        uint8_t s[2][16];
        bool bad = false;

        if (!snap_get(r, s, sizeof(s)))
                return -KEEL_EINVAL;
        for (unsigned i = 0; i < 2; i++) {
                struct vpic_chip c;

                for (unsigned f = offsetof(struct vpic_chip, need_icw4); f < 16; f++)
                        bad |= s[i][f] > 1;
                if (bad)
                        break;
                memcpy(&c, s[i], sizeof(c));
                bad |= (c.elcr & ~elcr_mask[i]) || (c.base & 7) || c.lowest > 7 ||
                       (c.icw && (c.icw < 2 || c.icw > 4)) || ((c.irr ^ c.lines) & c.elcr);
        }
        if (bad)
                return snap_fail(r, "8259: a register holds a value the 8259 pair cannot have");
        if (r->apply)
                memcpy(p->chip, s, sizeof(s));
        return 0;
}
