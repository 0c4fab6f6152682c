/*
 * snapcount: the snapshot tests' guest (tests/integration, cases snapshot and arm64_snapshot;
 * docs/snapshot.md). It fills all of its RAM above its image with a pattern that depends on
 * the address and the round, then for SNAP_ROUNDS rounds checks every word against the last
 * round's pattern, rewrites it with this round's, folds the round's words into a running
 * checksum and prints "snapcount: round N sum S". Everything it prints is a function of the
 * round alone, so a VM restored from a snapshot must print, from the round after the snapshot
 * on, exactly the lines it printed the first time: a word that is not what this guest wrote is
 * a FAIL (its RAM was not restored), a round that starts over or skips shows its registers
 * were not. It also reads its counter (TSC, CNTVCT) each round: one below the last round's is
 * a FAIL (a restore must let it go on from its value at the snapshot, also after Keel
 * restarted: integration.snapdisk).
 */
#include "guest.h"

#define SNAP_ROUNDS 100

int64_t guest_main(void)
{
        uint64_t start = guest_free_ram_start();
        uint64_t end = guest_ram_end();
        volatile uint64_t *words = (volatile uint64_t *)(uintptr_t)start;
        uint64_t n = (end - start) / 8, sum = 0, last = guest_counter();

        guest_printf("snapcount: %lu KiB at %p..%p, %u rounds\n",
                     (unsigned long)((end - start) >> 10), (void *)(uintptr_t)start,
                     (void *)(uintptr_t)end, SNAP_ROUNDS);
        for (uint64_t i = 0; i < n; i++)
                words[i] = guest_ram_pattern(start + 8 * i, 0);
        for (uint64_t round = 1; round <= SNAP_ROUNDS; round++) {
                uint64_t fold = 0;

                for (uint64_t i = 0; i < n; i++) {
                        uint64_t a = start + 8 * i, want = guest_ram_pattern(a, round - 1),
                                 got = words[i];

                        if (got != want) {
                                guest_printf("FAIL: snapcount: round %lu: word at %p is %lx, "
                                             "expected %lx\n",
                                             (unsigned long)round, (void *)(uintptr_t)a,
                                             (unsigned long)got, (unsigned long)want);
                                return 1;
                        }
                        words[i] = guest_ram_pattern(a, round);
                        fold += got * (i | 1);
                }
                uint64_t now = guest_counter();

                if (now < last) {
                        guest_printf("FAIL: snapcount: round %lu: the counter went back from "
                                     "%lx to %lx\n",
                                     (unsigned long)round, (unsigned long)last, (unsigned long)now);
                        return 1;
                }
                last = now;
                sum = (sum ^ fold) * 0x100000001b3ull;
                sum = sum << 27 | sum >> 37;
                guest_printf("snapcount: round %lu sum %lx\n", (unsigned long)round,
                             (unsigned long)sum);
        }
        guest_printf("snapcount: done, %u rounds, sum %lx\n", SNAP_ROUNDS, (unsigned long)sum);
        return 0;
}
