/* Device vectors of the fake arch (host tests): x86's range, dispatched by the tests. */
#ifndef ARCH_IRQ_H
#define ARCH_IRQ_H

#define ARCH_IRQ_FIRST 0x30
#define ARCH_IRQ_COUNT 32

#endif
