/*
 * hostile_witness: the well-behaved VM that runs in the same boot as each hostile guest
 * (tests/integration, cases hostile_*). It fills all of its RAM above its image with a
 * pattern that depends on the address and the round, then, WITNESS_ROUNDS times, checks
 * every word and rewrites the region with the next round's pattern, asking Keel for its ABI
 * version once a round (Keel still answers). A word that changed behind its back is a FAIL
 * and exit 1; a wrong VERSION, exit 2. At the end it prints how much it checked and exits 0:
 * whatever the hostile VM did, this VM's memory and progress were untouched.
 */
#include "guest.h"

#define WITNESS_ROUNDS 64

int64_t guest_main(void)
{
        uint64_t start = guest_free_ram_start();
        uint64_t end = guest_ram_end();
        volatile uint64_t *words = (volatile uint64_t *)(uintptr_t)start;
        uint64_t n = (end - start) / 8, checked = 0;

        guest_printf("witness: %lu KiB at %p..%p, %u rounds\n",
                     (unsigned long)((end - start) >> 10), (void *)(uintptr_t)start,
                     (void *)(uintptr_t)end, WITNESS_ROUNDS);
        for (uint64_t i = 0; i < n; i++)
                words[i] = guest_ram_pattern(start + 8 * i, 0);
        for (uint64_t round = 0; round < WITNESS_ROUNDS; round++) {
                for (uint64_t i = 0; i < n; i++) {
                        uint64_t a = start + 8 * i, want = guest_ram_pattern(a, round),
                                 got = words[i];

                        if (got != want) {
                                guest_printf("FAIL: witness: round %lu: word at %p is %lx, "
                                             "expected %lx\n",
                                             (unsigned long)round, (void *)(uintptr_t)a,
                                             (unsigned long)got, (unsigned long)want);
                                return 1;
                        }
                        words[i] = guest_ram_pattern(a, round + 1);
                }
                checked += n;
                if (hc_version() != KEEL_HC_ABI_VERSION) {
                        guest_printf("FAIL: witness: VERSION wrong in round %lu\n",
                                     (unsigned long)round);
                        return 2;
                }
                if ((round + 1) % 16 == 0)
                        guest_printf("witness: round %lu ok\n", (unsigned long)round + 1);
        }
        guest_printf("witness: all %u rounds ok, %lu words checked\n", WITNESS_ROUNDS,
                     (unsigned long)checked);
        return 0;
}
