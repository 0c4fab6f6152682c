/*
 * ioport: accesses two I/O ports no device claims (0x2f8, where a second UART would be, and
 * 0x1234) with every width, several times each. Reads must return all ones, writes must be
 * ignored (a later read still returns all ones) and the VM must keep running. Keel logs an
 * unclaimed port once per VM however often it is touched, which the test driver counts.
 *
 * Exit: 0, or the number of failed checks.
 */
#include "guest.h"

#define ROUNDS 5

static const uint16_t ports[] = {0x2f8, 0x1234};

int64_t guest_main(void)
{
        unsigned failed = 0, accesses = 0;

        for (unsigned i = 0; i < ARRAY_SIZE(ports); i++) {
                uint16_t port = ports[i];

                for (unsigned round = 0; round < ROUNDS; round++) {
                        uint8_t b;
                        uint16_t w;
                        uint32_t l;

                        outb(port, (uint8_t)(0x5a + round));
                        outw(port, (uint16_t)(0x1234 + round));
                        outl(port, 0xdeadbeef + round);
                        b = inb(port);
                        w = inw(port);
                        l = inl(port);
                        accesses += 6;
                        if (b != 0xff || w != 0xffff || l != 0xffffffffu) {
                                failed++;
                                guest_printf("FAIL: port 0x%x round %u read b=0x%x w=0x%x l=0x%x\n",
                                             port, round, b, w, l);
                        }
                }
        }
        if (failed) {
                guest_printf("ioport: FAIL: %u bad reads\n", failed);
                return failed;
        }
        guest_printf("ioport: %u accesses to ports 0x2f8 and 0x1234 ok\n", accesses);
        return 0;
}
