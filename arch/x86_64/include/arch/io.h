/* Register access for Keel's own devices: x86 port I/O. */
#ifndef ARCH_IO_H
#define ARCH_IO_H

#include <arch/x86.h>

static inline void io_write8(uint16_t port, uint8_t v)
{
        x86_outb(port, v);
}

static inline uint8_t io_read8(uint16_t port)
{
        return x86_inb(port);
}

#endif
