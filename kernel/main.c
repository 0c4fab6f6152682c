/*
 * Keel's kernel after ExitBootServices: take the CPU, start the page allocator, enumerate
 * PCI (Keel's own devices, docs/pci.md), enable virtualization, start the other CPUs, then
 * hand over to the VMM (vmm/vmtable.c), which builds and runs the VMs of the config on every
 * CPU.
 */
#include <drivers/pci.h>
#include <keel/arch.h>
#include <keel/boot.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <keel/palloc.h>
#include <keel/smp.h>
#include <keel/wallclock.h>
#include <vmm/config.h>
#include <vmm/vmm.h>
#include <vmm/vmtable.h>

_Noreturn void kernel_main(const struct boot_info *bi)
{
        char desc[200];
        unsigned ncpus;
        int err;

        LOG_INFO("boot services exited after %u memory-map fetch%s", bi->map_tries,
                 bi->map_tries == 1 ? "" : "es");
        err = palloc_init(&keel_palloc, bi->usable, bi->usable_count);
        if (err)
                panic("no usable memory for the page allocator: %s", keel_strerror(err));
        LOG_INFO("page allocator: %llu MiB free in %u ranges",
                 (unsigned long long)(palloc_free_pages(&keel_palloc) * PAGE_SIZE >> 20),
                 keel_palloc.count);
        arch_cpu_setup(bi);
        wallclock_init(bi->wall_ns, bi->wall_tsc);
        if (bi->config->selftest == SELFTEST_EXCEPTION) {
                /* Proves the trap path: Keel must dump its registers and panic, never go on. */
                LOG_INFO("selftest: raising an invalid-opcode exception inside Keel");
                __builtin_trap();
        }
        pci_boot(bi); /* Keel's own devices, before any VM: docs/pci.md */
        arch_virt_enable();
        arch_virt_describe(desc, sizeof(desc));
        LOG_INFO("virtualization on: %s", desc);
        ncpus = arch_smp_start(bi, vmm_ap_main);
        CHECK(ncpus >= 1 && ncpus <= arch_cpu_slots());
        vmm_main(bi, ncpus);
}
