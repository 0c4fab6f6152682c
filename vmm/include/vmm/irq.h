/*
 * A device's interrupt output. The arch wires it to its interrupt controller model (an I/O
 * APIC pin on x86, a GIC SPI on arm64); devices only drive the line's level, which is how
 * both virtio-mmio and the 16550 behave (the interrupt stays asserted while its cause does).
 */
#ifndef VMM_IRQ_H
#define VMM_IRQ_H

#include <stdbool.h>
#include <stddef.h>

struct irq_line {
        void (*set_level)(void *ctrl, unsigned pin, bool level);
        void *ctrl;
        unsigned pin;
};

static inline void irq_set_level(const struct irq_line *l, bool level)
{
        if (l && l->set_level)
                l->set_level(l->ctrl, l->pin, level);
}

#endif
