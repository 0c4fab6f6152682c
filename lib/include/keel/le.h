/*
 * Little-endian fields in byte buffers (boot protocols, ACPI and GPT tables, device
 * structures, gdb packets): read or write an n-byte field (n <= 8) at any alignment. One
 * definition for every file that parses or builds such bytes.
 */
#ifndef KEEL_LE_H
#define KEEL_LE_H

#include <stdint.h>

static inline uint64_t get_le(const void *p, unsigned n)
{
        const uint8_t *b = p;
        uint64_t v = 0;

        while (n--)
                v = v << 8 | b[n];
        return v;
}

static inline void put_le(void *p, uint64_t v, unsigned n)
{
        uint8_t *b = p;

        for (unsigned i = 0; i < n; i++, v >>= 8)
                b[i] = (uint8_t)v;
}

static inline uint16_t get_le16(const void *p)
{
        return (uint16_t)get_le(p, 2);
}

static inline uint32_t get_le32(const void *p)
{
        return (uint32_t)get_le(p, 4);
}

static inline uint64_t get_le64(const void *p)
{
        return get_le(p, 8);
}

#endif
