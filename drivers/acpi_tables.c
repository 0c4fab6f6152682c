/* Finding the firmware's ACPI tables (drivers/include/drivers/acpi_tables.h). */
#include <string.h>

#include <drivers/acpi_tables.h>

#define ACPI_HEADER_LEN 36

static bool checksum_ok(const uint8_t *p, uint32_t len)
{
        uint8_t sum = 0;

        for (uint32_t i = 0; i < len; i++)
                sum += p[i];
        return sum == 0;
}

static const uint8_t *table_at(uint64_t pa, uint32_t *len)
{
        const uint8_t *t = hva_ptr(arch_hpa_to_hva(hpa(pa)));
        uint32_t n;

        if (!pa)
                return NULL;
        n = acpi_u32(t + 4);
        if (n < ACPI_HEADER_LEN || n > (16u << 20) || !checksum_ok(t, n))
                return NULL;
        *len = n;
        return t;
}

const uint8_t *acpi_find_table(hpa_t rsdp, const char *sig, uint32_t *len)
{
        const uint8_t *r = hva_ptr(arch_hpa_to_hva(rsdp));
        const uint8_t *sdt;
        uint32_t sdt_len, entry;
        bool x;

        if (!hpa_raw(rsdp) || memcmp(r, "RSD PTR ", 8) != 0 || !checksum_ok(r, 20))
                return NULL;
        x = r[15] >= 2 && checksum_ok(r, acpi_u32(r + 20) < 36 ? 36 : acpi_u32(r + 20));
        sdt = table_at(x ? acpi_u64(r + 24) : acpi_u32(r + 16), &sdt_len);
        if (!sdt)
                return NULL;
        entry = x ? 8 : 4;
        for (uint32_t off = ACPI_HEADER_LEN; off + entry <= sdt_len; off += entry) {
                uint64_t pa = x ? acpi_u64(sdt + off) : acpi_u32(sdt + off);
                uint32_t n;
                const uint8_t *t = table_at(pa, &n);

                if (t && memcmp(t, sig, 4) == 0) {
                        *len = n;
                        return t;
                }
        }
        return NULL;
}
