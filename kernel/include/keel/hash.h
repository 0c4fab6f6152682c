/*
 * A 64-bit checksum of Keel's own (kernel/hash.c) for data Keel reads back later and must be
 * able to tell from corrupted data (snapshots, docs/snapshot.md). Not cryptographic: it finds
 * accidental damage, not a forger.
 */
#ifndef KEEL_HASH_H
#define KEEL_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH64_INIT 0x4b45454c534e4150ull /* "KEELSNAP" */

/*
 * Continue hash `h` (HASH64_INIT to start) over `len` bytes at `p`. Runs of bytes may be fed
 * in pieces only at multiples of 8 bytes (the last piece may be any length); hash64_final ends
 * it. Any change confined to one 8-byte word of the input changes the result.
 */
uint64_t hash64_update(uint64_t h, const void *p, size_t len);
/* The final value of a hash over `total` bytes. */
uint64_t hash64_final(uint64_t h, uint64_t total);

#endif
