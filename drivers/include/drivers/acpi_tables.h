/*
 * Reading the firmware's ACPI tables (Keel's own machine, not a guest's): find a table by
 * signature through the RSDP's XSDT (or RSDT), checksums verified. Tables are read through
 * the identity map.
 */
#ifndef DRIVERS_ACPI_TABLES_H
#define DRIVERS_ACPI_TABLES_H

#include <stdint.h>

#include <keel/addr.h>

/* The table with signature `sig` (4 characters), or NULL (no RSDP, not present, bad sum). */
const uint8_t *acpi_find_table(hpa_t rsdp, const char *sig, uint32_t *len);

static inline uint32_t acpi_u32(const uint8_t *p)
{
        return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t acpi_u64(const uint8_t *p)
{
        return acpi_u32(p) | (uint64_t)acpi_u32(p + 4) << 32;
}

#endif
