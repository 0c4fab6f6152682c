/*
 * Per-CPU tables sized from the firmware's CPU count (keel/smp.h): every table one allocation
 * from the page allocator, arch_cpu_slots() entries long, zeroed.
 */
#include <keel/addr.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/palloc.h>
#include <keel/smp.h>

void *percpu_table(size_t size, const char *what)
{
        size_t pages = align_up(size * arch_cpu_slots(), PAGE_SIZE) / PAGE_SIZE;
        hpa_t pa;
        int err;

        CHECK(size > 0 && arch_cpu_slots() >= 1);
        err = palloc_alloc(&keel_palloc, pages, PAGE_SIZE, &pa);
        if (err)
                panic("no memory for the per-CPU %s of %u CPUs: %s", what, arch_cpu_slots(),
                      keel_strerror(err));
        return hva_ptr(arch_hpa_to_hva(pa)); /* zeroed by the allocator */
}
