/*
 * The fake arch: lets the generic core (allocator, page tables, VMM, config) run as an
 * ordinary host process for unit tests. Host-physical addresses are host pointers (as on the
 * real machine, where Keel identity-maps memory); halting aborts the test process.
 */
#include <stdio.h>
#include <stdlib.h>

#include <drivers/pci.h>
#include <keel/addr.h>
#include <keel/arch.h>
#include <keel/smp.h>
#include <keel/time.h>

noreturn void arch_halt(void)
{
        fflush(stdout);
        abort();
}

void arch_dump_state(void)
{
        fprintf(stderr, "(fake arch: no registers to dump)\n");
}

/* Host tests run the core on one thread: always CPU 0. */
unsigned arch_cpu_index(void)
{
        return 0;
}

/* CPU indices the host tests size per-CPU tables for (keel/smp.h); tests may change it. */
unsigned fake_cpu_slots = 1;

unsigned arch_cpu_slots(void)
{
        return fake_cpu_slots;
}

/* Idling is a no-op: the tests' devices are threads, their "interrupts" calls. */
void arch_cpu_idle(void)
{
}

/* A counter the tests move by hand (fake_tsc), at 1 GHz: one tick per nanosecond. */
uint64_t fake_tsc;

uint64_t arch_tsc(void)
{
        return fake_tsc;
}

uint64_t arch_tsc_khz(void)
{
        return 1000000;
}

/* A deterministic MSI message for host tests of drivers/pci.c (x86's shape). */
int arch_msi_message(unsigned cpu, uint8_t vector, uint64_t *addr, uint32_t *data)
{
        *addr = 0xfee00000u | cpu << 12;
        *data = vector;
        return 0;
}

void arch_msi_describe(char *buf, unsigned len)
{
        snprintf(buf, len, "fake arch: x86-shaped messages");
}

int arch_map_device(hpa_t base, uint64_t size)
{
        (void)base;
        (void)size;
        return 0; /* host memory is already addressable */
}

void arch_dma_barrier(void)
{
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
