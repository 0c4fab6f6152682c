/*
 * The CPUs an ACPI MADT lists (x86: Processor Local APIC and Local x2APIC entries), pure C so
 * the host tests cover it (arch/x86_64/madt.c, docs/smp.md).
 */
#ifndef ARCH_MADT_H
#define ARCH_MADT_H

#include <stdint.h>

#define MADT_APIC_ID_NONE 0xffffffffu

/*
 * The APIC ids of the enabled CPUs of `madt` (the whole table, `len` bytes, header included),
 * in table order, each once; at most `max` go to `ids`. Returns how many distinct enabled ids
 * the table lists (may exceed `max`; ids past the first `max` are not checked for repeats).
 * Malformed entries (too short, past the end) end the scan.
 */
unsigned x86_madt_cpus(const uint8_t *madt, uint32_t len, uint32_t *ids, unsigned max);

#endif
