/*
 * libFuzzer target for what Keel reads of the firmware's ACPI tables: finding a table through
 * the RSDP and the RSDT/XSDT (drivers/acpi_tables.c, both arches) and the x86 MADT's CPU list
 * (arch/x86_64/madt.c), as kernel/main's SMP start-up chains them.
 *
 * Tables are found by physical address, and on the fake arch a physical address is a host
 * pointer. So the input describes firmware memory with addresses relative to a window: the
 * harness maps the window below 4 GiB (MAP_32BIT, so 32-bit RSDT entries can name it), and
 * turns every address field the parser will follow (RSDP's RSDT and XSDT addresses, the
 * entries of the SDT they name) into window base + (value % window size), correcting the
 * checksum bytes so that a structure whose checksum was right stays right. Firmware is
 * trusted to point at memory; what is fuzzed is everything the tables say.
 *
 * Input: bytes 0-35 the RSDP; the rest is the window's first bytes (the window is 64 KiB, then
 * 16 MiB + 128 KiB of zeros, readable, for table lengths that run past it; lengths above
 * 16 KiB, 1 KiB for the RSDT/XSDT, are mostly taken modulo that, see clamp_len). The RSDP is placed
 * in the last page of the mapping; an extended length above 4 KiB in it is set to 36 (the parser
 * sums that many bytes of what follows the RSDP, which firmware keeps readable). Invariants (abort
 * on violation):
 *   - acpi_find_table returns NULL or a table inside the window, with the signature asked
 *     for, a length of at least 36 that it reports, and a byte sum of 0;
 *   - x86_madt_cpus on the MADT found (or the window's start as one) lists distinct enabled
 *     ids, never MADT_APIC_ID_NONE; its total is exact while it does not exceed `max` and
 *     only grows as `max` shrinks (repeats past `max` are counted, as madt.h says); the ids
 *     it stores with a smaller `max` are the first ones it stores with a larger one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <arch/madt.h>
#include <drivers/acpi_tables.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WIN      0x10000ull
#define MAX_LEN  0x4000u                         /* tables */
#define MAX_SDT  0x400u                          /* the RSDT / XSDT: 97 or 48 entries at most */
#define WIN_MAP  (WIN + (16ull << 20) + 2 * WIN) /* what the largest table length reaches */
#define RSDP_AT  (WIN_MAP - 0x1000) /* the RSDP, in the last page, beyond any clamped table */
#define RSDP_LEN 36

static uint8_t *win;

static uint8_t sum(const uint8_t *p, size_t n)
{
        uint8_t s = 0;

        for (size_t i = 0; i < n; i++)
                s += p[i];
        return s;
}

/*
 * A table length above `max` becomes its remainder: the parser checksums up to 16 MiB per
 * table, and summing megabytes of zeros for each of many entries would slow the fuzzer down
 * to a few inputs per second. (A length field inside the SDT's entries is left alone: then
 * the input is merely slow.)
 */
static void clamp_len(uint8_t *t, uint32_t max)
{
        uint32_t n = acpi_u32(t + 4);

        if (n > max) {
                n %= max;
                memcpy(t + 4, &n, 4);
        }
}

/* Rewrite `width` bytes at p to the window address of their value; returns that address. */
static uint8_t *rebase(uint8_t *p, unsigned width)
{
        uint64_t v = 0, a;

        memcpy(&v, p, width);
        a = (uint64_t)(uintptr_t)win + v % WIN;
        memcpy(p, &a, width);
        return (uint8_t *)(uintptr_t)a;
}

static const uint8_t *check_table(const char *sig, uint32_t *len)
{
        const uint8_t *t = acpi_find_table(hpa((uint64_t)(uintptr_t)(win + RSDP_AT)), sig, len);

        if (!t)
                return NULL;
        if (t < win || t >= win + WIN_MAP || *len < 36 || t + *len > win + WIN_MAP)
                abort();
        if (memcmp(t, sig, 4) != 0 || sum(t, *len) != 0 || acpi_u32(t + 4) != *len)
                abort();
        return t;
}

static void check_madt(const uint8_t *madt, uint32_t len)
{
        uint32_t ids[64], few[4];
        unsigned total = x86_madt_cpus(madt, len, ids, 64), n = total < 64 ? total : 64;
        unsigned total4 = x86_madt_cpus(madt, len, few, 4);

        /* Repeats among ids past `max` are counted (documented): more, never fewer. */
        if (total4 < total || (total <= 4 && total4 != total) ||
            x86_madt_cpus(madt, len, NULL, 0) < total4)
                abort();
        if (memcmp(few, ids, sizeof(uint32_t) * (n < 4 ? n : 4)) != 0)
                abort();
        for (unsigned i = 0; i < n; i++) {
                if (ids[i] == MADT_APIC_ID_NONE)
                        abort();
                for (unsigned j = 0; j < i; j++)
                        if (ids[i] == ids[j])
                                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t *rsdp;
        uint32_t len = 0, sdt_off, ext_len;
        const uint8_t *madt;
        uint8_t s20, s_ext;
        bool x;

        if (size < RSDP_LEN)
                return 0;
        if (!win) {
                win = mmap(NULL, WIN_MAP, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
                if (win == MAP_FAILED || (uintptr_t)win + WIN_MAP > (1ull << 32))
                        abort();
        }
        memset(win, 0, WIN);
        memset(win + RSDP_AT, 0, WIN_MAP - RSDP_AT);
        memcpy(win, data + RSDP_LEN, size - RSDP_LEN < WIN ? size - RSDP_LEN : WIN);
        rsdp = win + RSDP_AT;
        memcpy(rsdp, data, RSDP_LEN);
        if (acpi_u32(rsdp + 20) > 0x1000)
                memcpy(rsdp + 20, &(uint32_t){RSDP_LEN}, 4);

        /*
         * The parser's view: revision >= 2 with a right extended sum means the XSDT. Rebasing
         * keeps both sums: the RSDT address is in the first 20 bytes (checksum byte 8), both
         * addresses in the extended part (checksum byte 32).
         */
        ext_len = acpi_u32(rsdp + 20) < RSDP_LEN ? RSDP_LEN : acpi_u32(rsdp + 20);
        x = rsdp[15] >= 2 && sum(rsdp, ext_len) == 0;
        s20 = sum(rsdp, 20);
        s_ext = sum(rsdp, ext_len);
        rebase(rsdp + 16, 4);
        rebase(rsdp + 24, 8);
        rsdp[8] += (uint8_t)(s20 - sum(rsdp, 20));
        rsdp[32] += (uint8_t)(s_ext - sum(rsdp, ext_len));
        sdt_off = (uint32_t)((x ? acpi_u64(rsdp + 24) : acpi_u32(rsdp + 16)) - (uintptr_t)win);
        if (sdt_off + 36 <= WIN) {
                uint8_t *sdt = win + sdt_off;
                uint32_t n, entry = x ? 8 : 4, full;
                uint8_t s_sdt;

                clamp_len(sdt, MAX_SDT);
                n = full = acpi_u32(sdt + 4);

                if (n > WIN - sdt_off)
                        n = (uint32_t)(WIN - sdt_off);
                s_sdt = n == full ? sum(sdt, n) : 0;
                for (uint32_t off = 36; off + entry <= n; off += entry)
                        rebase(sdt + off, entry);
                /* Then the lengths, unless that would rewrite an entry. */
                for (uint32_t off = 36; off + entry <= n; off += entry) {
                        uint8_t *t = (uint8_t *)(uintptr_t)(entry == 8 ? acpi_u64(sdt + off)
                                                                       : acpi_u32(sdt + off));

                        if (t + 8 <= sdt || t + 4 >= sdt + n)
                                clamp_len(t, MAX_LEN);
                }
                if (n == full)
                        sdt[9] += (uint8_t)(s_sdt - sum(sdt, n));
        }

        check_table("FACP", &len);
        madt = check_table("APIC", &len);
        if (madt)
                check_madt(madt, len);
        check_madt(win, (uint32_t)(size - RSDP_LEN < WIN ? size - RSDP_LEN : WIN));
        return 0;
}
