/*
 * The guest's I/O APIC (arch/x86_64/include/arch/vioapic.h), after the 82093AA datasheet.
 *
 * A pin is "active" when its input level differs from its polarity bit (active low inverts).
 * Edge pins send one message per inactive -> active transition while unmasked; level pins
 * send while active, unmasked and remote IRR clear, set remote IRR when the local APIC
 * accepted the message, and clear it on the EOI broadcast of their vector, after which a still
 * active line sends again. Delivery status always reads idle: messages are delivered at once.
 */
#include <stddef.h>
#include <string.h>

#include <arch/vioapic.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <vmm/snapshot.h>

#define RTE_LO_MASK 0x0001afffull /* vector, mode, dest mode, polarity, trigger, mask */
#define RTE_HI_MASK 0xff000000ull /* destination */
#define ID_MASK     0x0f000000u

#define RTE_VECTOR(e) ((uint8_t)((e)&0xff))
#define RTE_MODE(e)   ((unsigned)(((e) >> 8) & 7))
#define RTE_DEST(e)   ((uint8_t)((e) >> 56))

void vioapic_init(struct vioapic *io, const struct vioapic_cb *cb)
{
        CHECK(cb && cb->deliver);
        memset(io, 0, sizeof(*io));
        for (unsigned i = 0; i < VIOAPIC_PINS; i++)
                io->rte[i] = VIOAPIC_RTE_MASKED;
        io->cb = *cb;
}

static bool vioapic_active(const struct vioapic *io, unsigned pin)
{
        bool in = (io->input >> pin) & 1u;

        return in != ((io->rte[pin] & VIOAPIC_RTE_POLARITY) != 0);
}

/* Send pin's interrupt message; returns whether a local APIC accepted it. */
static bool vioapic_send(struct vioapic *io, unsigned pin)
{
        uint64_t e = io->rte[pin];
        bool level = (e & VIOAPIC_RTE_LEVEL) != 0;

        /* Fixed and lowest priority; SMI, NMI, INIT, ExtINT are not modelled. */
        if (RTE_MODE(e) > 1) {
                io->stats.dropped++;
                return false;
        }
        if (!io->cb.deliver(io->cb.ctx, RTE_DEST(e), (e & VIOAPIC_RTE_LOGICAL) != 0, RTE_VECTOR(e),
                            level, RTE_MODE(e) == 1)) {
                io->stats.dropped++;
                return false;
        }
        io->stats.deliveries++;
        return true;
}

/* A level pin that is active, unmasked and not awaiting EOI sends now. */
static void vioapic_service_level(struct vioapic *io, unsigned pin)
{
        uint64_t e = io->rte[pin];

        if (!(e & VIOAPIC_RTE_LEVEL) || (e & (VIOAPIC_RTE_MASKED | VIOAPIC_RTE_REMOTE_IRR)))
                return;
        if (!vioapic_active(io, pin))
                return;
        if (vioapic_send(io, pin))
                io->rte[pin] |= VIOAPIC_RTE_REMOTE_IRR;
}

void vioapic_set_level(void *ctrl, unsigned pin, bool level)
{
        struct vioapic *io = ctrl;
        bool was_active;

        CHECK(pin < VIOAPIC_PINS); /* the pin comes from Keel's own wiring */
        was_active = vioapic_active(io, pin);
        if (level)
                io->input |= 1u << pin;
        else
                io->input &= ~(1u << pin);
        if (io->rte[pin] & VIOAPIC_RTE_LEVEL) {
                vioapic_service_level(io, pin);
                return;
        }
        if (!was_active && vioapic_active(io, pin) && !(io->rte[pin] & VIOAPIC_RTE_MASKED))
                vioapic_send(io, pin);
}

void vioapic_eoi(struct vioapic *io, uint8_t vector)
{
        for (unsigned pin = 0; pin < VIOAPIC_PINS; pin++) {
                uint64_t e = io->rte[pin];

                if (!(e & VIOAPIC_RTE_LEVEL) || !(e & VIOAPIC_RTE_REMOTE_IRR) ||
                    RTE_VECTOR(e) != vector)
                        continue;
                io->rte[pin] &= ~VIOAPIC_RTE_REMOTE_IRR;
                vioapic_service_level(io, pin);
        }
}

uint32_t vioapic_read_reg(struct vioapic *io, uint32_t reg)
{
        switch (reg) {
        case VIOAPIC_REG_ID:
                return io->id;
        case VIOAPIC_REG_VER:
                return VIOAPIC_VERSION;
        case VIOAPIC_REG_ARB:
                return io->id; /* arbitration ID = APIC ID after reset */
        }
        if (reg >= VIOAPIC_REG_REDIR && reg < VIOAPIC_REG_REDIR + 2 * VIOAPIC_PINS) {
                uint64_t e = io->rte[(reg - VIOAPIC_REG_REDIR) / 2];

                return (reg & 1) ? (uint32_t)(e >> 32) : (uint32_t)e;
        }
        io->stats.bad_regsel++;
        return 0;
}

void vioapic_write_reg(struct vioapic *io, uint32_t reg, uint32_t value)
{
        unsigned pin;
        uint64_t e;

        if (reg == VIOAPIC_REG_ID) {
                io->id = value & ID_MASK;
                return;
        }
        if (reg == VIOAPIC_REG_VER || reg == VIOAPIC_REG_ARB)
                return; /* read-only */
        if (reg < VIOAPIC_REG_REDIR || reg >= VIOAPIC_REG_REDIR + 2 * VIOAPIC_PINS) {
                io->stats.bad_regsel++;
                return;
        }
        pin = (reg - VIOAPIC_REG_REDIR) / 2;
        e = io->rte[pin];
        if (reg & 1) {
                e = (e & 0xffffffffull) | (((uint64_t)value & RTE_HI_MASK) << 32);
        } else {
                e = (e & ~RTE_LO_MASK) | ((uint64_t)value & RTE_LO_MASK);
                /* Remote IRR is meaningless for edge pins: switching to edge clears it. */
                if (!(e & VIOAPIC_RTE_LEVEL))
                        e &= ~VIOAPIC_RTE_REMOTE_IRR;
        }
        io->rte[pin] = e;
        /* Unmasking (or retargeting) an active level pin delivers it. */
        vioapic_service_level(io, pin);
}

static void vioapic_mmio_read(void *dev, uint64_t offset, unsigned size, uint64_t *val)
{
        struct vioapic *io = dev;

        *val = 0;
        if (size != 4 || (offset != VIOAPIC_IOREGSEL && offset != VIOAPIC_IOWIN)) {
                io->stats.bad_access++;
                return;
        }
        if (offset == VIOAPIC_IOREGSEL)
                *val = io->regsel;
        else
                *val = vioapic_read_reg(io, io->regsel);
}

static void vioapic_mmio_write(void *dev, uint64_t offset, unsigned size, uint64_t val)
{
        struct vioapic *io = dev;

        if (size != 4 || (offset != VIOAPIC_IOREGSEL && offset != VIOAPIC_IOWIN)) {
                io->stats.bad_access++;
                return;
        }
        if (offset == VIOAPIC_IOREGSEL)
                io->regsel = (uint32_t)val & 0xff;
        else
                vioapic_write_reg(io, io->regsel, (uint32_t)val);
}

const struct mmio_ops vioapic_mmio_ops = {
    .read = vioapic_mmio_read,
    .write = vioapic_mmio_write,
};

/* ---- Snapshots ---- */

struct vioapic_snap {
        uint64_t rte[VIOAPIC_PINS];
        uint32_t regsel, id, input, pad;
};

__attribute__((cold)) void vioapic_save(const struct vioapic *io, struct snap_buf *b)
{
        struct vioapic_snap s = {.regsel = io->regsel, .id = io->id, .input = io->input};

        memcpy(s.rte, io->rte, sizeof(s.rte));
        snap_put(b, &s, sizeof(s));
}

__attribute__((cold)) int vioapic_load(struct vioapic *io, struct snap_rd *r)
{
        const uint64_t rte_bits = RTE_LO_MASK | RTE_HI_MASK << 32 | VIOAPIC_RTE_REMOTE_IRR;
        struct vioapic_snap s;
        bool bad;

        if (!snap_get(r, &s, sizeof(s)))
                return -KEEL_EINVAL;
        bad = (s.regsel & ~0xffu) || (s.id & ~ID_MASK) || (s.input >> VIOAPIC_PINS) || s.pad;
        for (unsigned i = 0; i < VIOAPIC_PINS; i++)
                bad |= (s.rte[i] & ~rte_bits) ||
                       ((s.rte[i] & VIOAPIC_RTE_REMOTE_IRR) && !(s.rte[i] & VIOAPIC_RTE_LEVEL));
        if (bad)
                return snap_fail(r, "I/O APIC: a register or redirection entry holds a value the "
                                    "I/O APIC cannot have");
        if (!r->apply)
                return 0;
        io->regsel = s.regsel, io->id = s.id, io->input = s.input;
        memcpy(io->rte, s.rte, sizeof(s.rte));
        return 0;
}
