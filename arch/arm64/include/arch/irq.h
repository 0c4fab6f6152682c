/* arm64 device vectors for keel/irq.h: none yet. MSIs need the GICv3 ITS, which Keel does not
 * drive (docs/pci.md): drivers poll. */
#ifndef ARCH_IRQ_H
#define ARCH_IRQ_H

#define ARCH_IRQ_FIRST 0
#define ARCH_IRQ_COUNT 0

#endif
