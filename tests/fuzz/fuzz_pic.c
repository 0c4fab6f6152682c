/*
 * libFuzzer target for the guest's 8259A pair (arch/x86_64/vpic.c), driven as a VM drives it:
 * guest port accesses, device lines, and the vCPU's INTA cycles.
 *
 * Input: byte 0 bit 0: start in the state SeaBIOS leaves (vpic_bios_state), else reset; bit 1:
 * the next 32 bytes are a snapshot section for vpic_load first (both passes; refused: the pair
 * unchanged and a reason given; accepted: saved again it is the same bytes); then operations,
 * each a kind byte (bits 0-2) and its operands:
 *   0 port write: port byte (bits 0-2 pick 0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1, 0x22, 0x4d2),
 *     value byte;  1 port read: port byte
 *   2 device line: byte (IRQ = bits 0-3, level = bit 7)
 *   3 INTA cycle (the vCPU takes what vpic_pending says, or a spurious one)
 *   4 vpic_bios_state
 * Invariants (abort on violation):
 *   - only the pair's and the ELCR's ports are claimed; another port changes nothing;
 *   - level (ELCR) inputs: IRR follows the line; ELCR bits outside 0xf8 / 0xde never set;
 *   - the IMR reads what the last OCW1 wrote (0 after ICW1); the priority and ICW state stay
 *     in range;
 *   - vpic_pending is -1 or the vector of an unmasked request in IRR (the master's, or the
 *     slave's behind the cascade), and the INTA cycle right after gives that vector, sets its
 *     ISR bit unless auto-EOI and counts a delivery; with nothing pending INTA gives the
 *     master's IR7 vector and counts a spurious one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arch/vpic.h>
#include <vmm/snapshot.h>

#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint16_t ports[8] = {0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1, 0x22, 0x4d2};

static struct vpic p;
static int imr_shadow[2];

static void check_chips(void)
{
        static const uint8_t elcr_mask[2] = {0xf8, 0xde};

        for (unsigned i = 0; i < 2; i++) {
                const struct vpic_chip *c = &p.chip[i];

                if (c->elcr & ~elcr_mask[i] || (c->irr ^ c->lines) & c->elcr)
                        abort();
                if (c->lowest > 7 || (c->icw != 0 && (c->icw < 2 || c->icw > 4)))
                        abort();
                if (imr_shadow[i] >= 0 && c->imr != imr_shadow[i])
                        abort();
        }
}

/* The vector vpic_pending gives must be an unmasked request's. */
static void check_pending(int v)
{
        const struct vpic_chip *m = &p.chip[0], *s = &p.chip[1];
        unsigned ir = (unsigned)v & 7;

        if (v < 0 || m->base == s->base)
                return; /* (equal bases: the vector does not say which chip) */
        if ((v & 0xf8) == m->base && !(m->irr & ~m->imr & (1u << ir)))
                abort();
        if ((v & 0xf8) != m->base) {
                if ((v & 0xf8) != s->base || !(m->irr & ~m->imr & 4))
                        abort();
                if (ir != 7 && !(s->irr & ~s->imr & (1u << ir)))
                        abort();
        }
}

static void inta(void)
{
        int v = vpic_pending(&p);
        struct vpic_stats st = p.stats;
        uint8_t got;

        check_pending(v);
        got = vpic_intack(&p);
        if (v < 0) {
                if (got != (p.chip[0].base | 7) || p.stats.spurious != st.spurious + 1)
                        abort();
                return;
        }
        if (got != v)
                abort();
        if (p.stats.deliveries + p.stats.spurious != st.deliveries + st.spurious + 1)
                abort();
}

static void port_op(struct in *in, bool write)
{
        uint8_t sel, v = 0, before = 0;
        struct vpic copy = p;
        uint16_t port;
        unsigned i;
        bool claimed;

        if (!take(in, &sel, 1) || (write && !take(in, &v, 1)))
                return;
        port = ports[sel & 7];
        i = port == 0xa0 || port == 0xa1;
        before = p.chip[i].icw;
        claimed = vpic_io(&p, port, !write, &v);
        if (claimed != ((sel & 7) < 6))
                abort();
        if (!claimed) {
                if (memcmp(&copy, &p, sizeof(p)))
                        abort();
                return;
        }
        if (!write || port >= 0x4d0)
                return;
        if (!(port & 1) && (v & 0x10))
                imr_shadow[i] = 0; /* ICW1 clears the IMR */
        else if ((port & 1) && before == 0)
                imr_shadow[i] = v; /* OCW1 */
}

static void load(struct in *in)
{
        uint8_t sec[32], again[32];
        char why[96];
        struct vpic before = p;
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
                err = vpic_load(&p, &r);
                if (r.pos > sizeof(sec) || (err && (pass || !why[0])))
                        abort();
        }
        if (err) {
                if (memcmp(&before, &p, sizeof(p)))
                        abort();
                return;
        }
        vpic_save(&p, &b);
        if (b.len != sizeof(sec) || memcmp(again, sec, sizeof(sec)))
                abort();
        imr_shadow[0] = p.chip[0].imr;
        imr_shadow[1] = p.chip[1].imr;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct in in = {data, size};
        uint8_t flags, kind, b;

        if (!take(&in, &flags, 1))
                return 0;
        vpic_init(&p);
        imr_shadow[0] = imr_shadow[1] = 0xff;
        if (flags & 1) {
                vpic_bios_state(&p);
                imr_shadow[0] = VPIC_BIOS_IMR_MASTER;
                imr_shadow[1] = VPIC_BIOS_IMR_SLAVE;
        }
        if (flags & 2)
                load(&in);
        check_chips();
        while (take(&in, &kind, 1)) {
                switch (kind & 7) {
                case 0:
                case 1:
                        port_op(&in, !(kind & 1));
                        break;
                case 2:
                        if (take(&in, &b, 1))
                                vpic_set_irq(&p, b & 15, b & 0x80);
                        break;
                case 3:
                        inta();
                        break;
                case 4:
                        vpic_bios_state(&p);
                        imr_shadow[0] = VPIC_BIOS_IMR_MASTER;
                        imr_shadow[1] = VPIC_BIOS_IMR_SLAVE;
                        break;
                }
                check_chips();
                check_pending(vpic_pending(&p));
        }
        return 0;
}
