/*
 * storm: a guest that exits as often as it can, forever (a storm of hypercalls): Keel's time
 * spent handling its exits counts against its own slices, so the other VMs run on.
 */
#include "guest.h"

int64_t guest_main(void)
{
        uint64_t n = 0;

        guest_printf("storm: hypercalls as fast as it can, forever\n");
        for (;;) {
                if (hc_version() != KEEL_HC_ABI_VERSION) {
                        guest_printf("FAIL: VERSION changed after %lu calls\n", (unsigned long)n);
                        return 1;
                }
                n++;
        }
}
