/* x86_64 device vectors for keel/irq.h: above the tick (0x20) and the kick IPI (0x21). */
#ifndef ARCH_IRQ_H
#define ARCH_IRQ_H

#define ARCH_IRQ_FIRST 0x30
#define ARCH_IRQ_COUNT 32

#endif
