/*
 * kernel/include/keel/hash.h. Per 8-byte little-endian word w: h = rotl((h ^ w) * P, 27), with P
 * FNV-1a's 64-bit prime. Each step is a bijection of h for a fixed w (xor, multiplication by an
 * odd number and rotation all are), so a change confined to one word always reaches the
 * result; the rotation carries the product's well-mixed high bits down to the low ones. The
 * end mixes in the length and avalanches (MurmurHash3's fmix64 constants).
 */
#include <string.h>

#include <keel/hash.h>

#define HASH64_PRIME 0x100000001b3ull

static inline uint64_t step(uint64_t h, uint64_t w)
{
        h = (h ^ w) * HASH64_PRIME;
        return h << 27 | h >> 37;
}

uint64_t hash64_update(uint64_t h, const void *p, size_t len)
{
        const uint8_t *b = p;
        uint64_t w;

        for (; len >= 8; len -= 8, b += 8) {
                memcpy(&w, b, 8);
                h = step(h, w);
        }
        if (len) {
                w = 0;
                memcpy(&w, b, len);
                h = step(h, w ^ 0x80ull << 56);
        }
        return h;
}

uint64_t hash64_final(uint64_t h, uint64_t total)
{
        h = step(h, total);
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53ull;
        return h ^ h >> 33;
}
