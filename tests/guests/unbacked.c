/*
 * unbacked (x86_64): accesses guest-physical addresses with nothing behind them, neither RAM
 * nor a device, with the VM's default config (unbacked = abort). A PC answers such a read
 * with all ones and drops such a write (docs/x86-interrupts.md), and so must Keel: loads of
 * 1, 2, 4 and 8 bytes just past RAM and at 0xff000000 (where kvm-unit-tests' `emulator`
 * writes) read all ones, written values do not stick, a zero-extending load extends the ones,
 * and the last page of RAM is left as it was. Failures print "FAIL: ..."; the exit code is
 * their number.
 */
#include "guest.h"

#define PAGE_SIZE 4096u

static unsigned failures;

static void expect(const char *what, uint64_t addr, uint64_t got, uint64_t want)
{
        if (got != want) {
                guest_printf("FAIL: %s at 0x%lx read 0x%lx, expected 0x%lx\n", what, addr, got,
                             want);
                failures++;
        }
}

static void probe(uint64_t addr)
{
        volatile uint8_t *b = (volatile uint8_t *)(uintptr_t)addr;
        volatile uint16_t *h = (volatile uint16_t *)(uintptr_t)addr;
        volatile uint32_t *w = (volatile uint32_t *)(uintptr_t)addr;
        volatile uint64_t *d = (volatile uint64_t *)(uintptr_t)addr;
        uint32_t zx;

        expect("1-byte load", addr, *b, 0xff);
        expect("2-byte load", addr, *h, 0xffff);
        expect("4-byte load", addr, *w, 0xffffffffu);
        expect("8-byte load", addr, *d, ~0ull);
        __asm__ volatile("movzbl (%1), %0" : "=r"(zx) : "r"(b) : "memory");
        expect("movzbl", addr, zx, 0xff);
        *d = 0x1122334455667788ull;
        *w = 0;
        *b = 0x5a;
        expect("8-byte load after writes", addr, *d, ~0ull);
        expect("4-byte load at +4 after writes", addr + 4, w[1], 0xffffffffu);
}

int64_t guest_main(void)
{
        uint64_t end = guest_ram_end();
        volatile uint64_t *last = (volatile uint64_t *)(uintptr_t)(end - PAGE_SIZE);
        const uint64_t n = PAGE_SIZE / 8;

        for (uint64_t i = 0; i < n; i++)
                last[i] = 0xa5a5000000000000ull | i;
        guest_printf("unbacked: probing 0x%lx (RAM ends at 0x%lx) and 0xff000000\n", end + 0x1000,
                     end);
        probe(end + 0x1000);
        probe(end + 0x1ff8);
        probe(0xff000000ull);
        for (uint64_t i = 0; i < n; i++)
                if (last[i] != (0xa5a5000000000000ull | i)) {
                        guest_printf("FAIL: RAM word at 0x%lx changed to 0x%lx\n",
                                     end - PAGE_SIZE + 8 * i, last[i]);
                        failures++;
                        break;
                }
        if (!failures)
                guest_printf("unbacked: 3 addresses read all ones, writes dropped, RAM intact\n");
        return failures;
}
