/*
 * hostile_mmio (arm64): the PL011 (the only device of an image VM) at every offset and
 * width, and accesses Keel cannot emulate:
 *   - reads of 1, 2, 4 and 8 bytes at every offset of its 4 KiB aligned to the width: the
 *     registers at word offsets answer (FR, the PrimeCell ID bytes), everything else reads 0;
 *     sign-extending loads (LDRSB, LDRSH into X and W registers) of an ID byte;
 *   - writes of 1, 2 and 8 bytes at offsets that are no register (not a multiple of 4, or
 *     8 bytes wide) and to the read-only ID registers: ignored, the UART still prints;
 *   - then, by default, LDP of FR: a load pair has no syndrome, Keel cannot emulate it and
 *     must stop the VM with bad-instruction, naming it; with HOSTILE_MMIO_FETCH, a jump to
 *     the PL011's address: an instruction fetch from a device, stop outside-ram; with
 *     HOSTILE_MMIO_STRADDLE, an 8-byte store at its last word, which crosses the end of the
 *     device: stop bad-instruction, saying so.
 */
#include "guest.h"

static unsigned checks, failed;

static void check(bool ok, const char *what, uint64_t off, uint64_t v)
{
        checks++;
        if (ok)
                return;
        if (failed++ < 8)
                guest_printf("FAIL: hostile_mmio: %s at +%lx: %lx\n", what, (unsigned long)off,
                             (unsigned long)v);
}

static uint64_t rd(unsigned size, uint64_t off)
{
        return mmio_rd(PL011_BASE + off, size);
}

static void wr(unsigned size, uint64_t off, uint64_t v)
{
        mmio_wr(PL011_BASE + off, size, v);
}

/* PL011 PrimeCell and peripheral ID bytes at 0xfe0..0xffc (vmm/pl011.c). */
static bool is_id(uint64_t off)
{
        return off >= 0xfe0 && off <= 0xffc && !(off & 3);
}

static void sweep(void)
{
        uint64_t id[8], fr = rd(4, 0x18);

        for (unsigned i = 0; i < 8; i++)
                id[i] = rd(4, 0xfe0 + 4 * i);
        check(id[4] == 0x0d && id[5] == 0xf0 && id[6] == 0x05 && id[7] == 0xb1, "PrimeCell ID",
              0xff0, id[4]);
        for (unsigned size = 1; size <= 8; size *= 2)
                for (uint64_t off = 0; off < 0x1000; off += size) {
                        uint64_t v = rd(size, off);

                        if (size == 8 || (off & 3))
                                check(v == 0, "no register, yet not 0", off, v);
                        else if (is_id(off))
                                check(v == id[(off - 0xfe0) / 4], "ID byte differs", off, v);
                        else if (off == 0x18)
                                check(v == fr, "FR differs", off, v);
                }
        {
                uint64_t a = PL011_BASE + 0xffc, x, w, h;

                __asm__ volatile("ldrsb %0, [%3]\n ldrsb %w1, [%3]\n ldrsh %2, [%3]"
                                 : "=&r"(x), "=&r"(w), "=&r"(h)
                                 : "r"(a)
                                 : "memory");
                check(x == 0xffffffffffffffb1ull, "LDRSB X of ID byte 0xb1", 0xffc, x);
                check(w == 0xffffffb1ull, "LDRSB W of ID byte 0xb1", 0xffc, w);
                check(h == 0xb1, "LDRSH X of ID 0xb1 (bit 15 clear)", 0xffc, h);
        }
        for (uint64_t off = 0; off < 0x1000; off++) {
                if (off & 3) {
                        wr(1, off, 0x41);
                        if (!(off & 1))
                                wr(2, off, 0x4141);
                }
                if (!(off & 7))
                        wr(8, off, 0x4141414141414141ull);
        }
        for (uint64_t off = 0xfe0; off < 0x1000; off += 4)
                wr(4, off, 0);
        for (unsigned i = 0; i < 8; i++)
                check(rd(4, 0xfe0 + 4 * i) == id[i], "ID changed by a write", 0xfe0 + 4 * i,
                      rd(4, 0xfe0 + 4 * i));
        guest_printf("hostile_mmio: %u PL011 reads and writes at every offset and width: %s\n",
                     checks, failed ? "FAILED" : "as expected");
}

int64_t guest_main(void)
{
        sweep();
        if (failed) {
                guest_printf("FAIL: hostile_mmio: %u of %u checks failed\n", failed, checks);
                return 1;
        }
#if defined(HOSTILE_MMIO_STRADDLE)
        guest_printf("hostile_mmio: 8-byte store at the PL011's last word\n");
        wr(8, 0xffc, 0);
#elif defined(HOSTILE_MMIO_FETCH)
        guest_printf("hostile_mmio: jumping to the PL011 at %lx\n", (unsigned long)PL011_BASE);
        ((void (*)(void))(uintptr_t)PL011_BASE)();
#else
        {
                uint64_t a = PL011_BASE + 0x18, x, y;

                guest_printf("hostile_mmio: LDP of FR\n");
                __asm__ volatile("ldp %w0, %w1, [%2]" : "=r"(x), "=r"(y) : "r"(a) : "memory");
                guest_printf("FAIL: hostile_mmio: LDP came back (%lx %lx)\n", (unsigned long)x,
                             (unsigned long)y);
        }
#endif
        return 1;
}
