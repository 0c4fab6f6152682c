/*
 * Hooks every arch implements for the generic kernel (declared once here, defined in
 * arch/<isa>/). The fake arch (arch/fake) implements them for host unit tests.
 */
#ifndef KEEL_ARCH_H
#define KEEL_ARCH_H

#include <stdnoreturn.h>

#include <keel/addr.h>

/*
 * Keel's own serial console, from UEFI entry on: x86 drives COM1, arm64 the UART the ACPI
 * SPCR table names (`rsdp` may be 0: the arch then uses its default or stays silent).
 */
void arch_console_init(hpa_t rsdp);
void arch_console_write(const char *s, unsigned long len);
/* A byte typed on Keel's serial console, or -1 if none is waiting (polled). */
int arch_console_getc(void);

/*
 * A 64-bit random number from the CPU's own generator (x86: RDRAND, arm64: RNDR) into *out;
 * false if the CPU has none or it failed. Never instrumented by the stack protector (it runs
 * before the canary is set).
 */
bool arch_random_u64(uint64_t *out);

/*
 * Map [base, base + size) of device memory (a PCI BAR: docs/pci.md) into Keel's own map:
 * identity, read+write, uncached (x86 UC, arm64 Device-nGnRE), never executable; pages
 * already mapped uncached at their own address are fine. 0, -KEEL_EEXIST if a page is
 * already mapped otherwise (cacheable: RAM or firmware memory), or pt_map's error. Boot CPU,
 * before the other CPUs start. Never touches a guest's map.
 */
int arch_map_device(hpa_t base, uint64_t size);
/*
 * A full barrier for device DMA: Keel's earlier stores to memory a device reads (queue
 * entries) are visible to it before any later store (a doorbell), and later loads of memory
 * a device wrote see what it wrote before the completion Keel observed.
 */
void arch_dma_barrier(void);

/* Stop this CPU for good (interrupts off, halt in a loop). */
noreturn void arch_halt(void);
/* Print the current CPU's registers on the console (used by panic). */
void arch_dump_state(void);

#endif
