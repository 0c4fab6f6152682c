/* The CPUs of an ACPI MADT (arch/madt.h). */
#include <stdbool.h>

#include <arch/madt.h>

#define MADT_ENTRIES 44 /* after the SDT header, the LAPIC address and the flags */
#define MADT_LAPIC   0
#define MADT_X2APIC  9
#define MADT_ENABLED 1u

/* Little-endian, unaligned (drivers/acpi_tables.h is not part of the host-tested core). */
static uint32_t u32le(const uint8_t *p)
{
        return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

unsigned x86_madt_cpus(const uint8_t *madt, uint32_t len, uint32_t *ids, unsigned max)
{
        unsigned n = 0, total = 0;

        for (uint32_t off = MADT_ENTRIES; off + 2 <= len; off += madt[off + 1]) {
                const uint8_t *e = madt + off;
                uint32_t id, flags;
                bool seen = false;

                if (e[1] < 2 || off + e[1] > len)
                        break;
                if (e[0] == MADT_LAPIC && e[1] >= 8) {
                        id = e[3];
                        flags = u32le(e + 4);
                } else if (e[0] == MADT_X2APIC && e[1] >= 16) {
                        id = u32le(e + 4);
                        flags = u32le(e + 8);
                } else {
                        continue;
                }
                if (!(flags & MADT_ENABLED) || id == MADT_APIC_ID_NONE)
                        continue;
                for (unsigned i = 0; i < n; i++)
                        seen |= ids[i] == id;
                if (seen)
                        continue;
                total++;
                if (n < max)
                        ids[n++] = id;
        }
        return total;
}
