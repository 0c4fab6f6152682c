/*
 * The arm64 Linux machine: a GICv3 (emulated distributor and redistributor, list registers
 * for delivery), the PL011 with its interrupt, virtio-mmio slots, the device tree Keel writes
 * for each VM, and the arm64 boot protocol (Image at a 2 MiB boundary + text_offset, x0 = the
 * DTB's address, MMU off, EL1h, interrupts masked). Layout: arch/arm64_linux.h, docs/arm64.md.
 */
#include <stdio.h>
#include <string.h>

#include <arch/arm64_linux.h>
#include <arch/cpu.h>
#include <arch/sysreg.h>
#include <arch/vgic.h>
#include <arch/vm.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <keel/palloc.h>
#include <keel/wallclock.h>
#include <vmm/virtio.h>
#include <vmm/vm.h>
#include <vmm/vmm.h>

#include "arm64_priv.h"

#define DTB_PAGES (ARM64_LINUX_DTB_SIZE / PAGE_SIZE)

/*
 * The virtio-mmio slots after the VM's devices answer as empty transports (DeviceID 0), as
 * QEMU virt's unused ones do; they are not in the device tree. A guest that probes the first
 * slot by its fixed address (kvm-unit-tests' micro-bench) reads a placeholder, not an abort.
 */
static const uint64_t empty_slot = ARM64_VIRTIO_SIZE;

void arch_virtio_slot(unsigned n, gpa_t *base, uint64_t *size, unsigned *gsi)
{
        *base = gpa(ARM64_VIRTIO_BASE + n * ARM64_VIRTIO_SIZE);
        *size = ARM64_VIRTIO_SIZE;
        *gsi = ARM64_VIRTIO_SPI + n;
}

/*
 * A virtio device's SPI (dev_lock held). It may be raised from any CPU (a disk's completion
 * comes from a poller or another CPU's handler, vmm/virtio_blk.c), so the vCPU it targets is
 * kicked out of the guest or its idle wait to take it now, as x86's I/O APIC does.
 */
static void spi_set_level_kick(void *ctx, unsigned intid, bool level)
{
        struct vm *vm = ctx;

        vgic_set_level(&vm->arch.vgic, intid, level);
        if (level)
                arm64_kick_vcpus(vm, vgic_kick_mask(&vm->arch.vgic, VGIC_NO_VCPU));
}

struct irq_line arch_irq_line(struct vm *vm, unsigned gsi)
{
        return (struct irq_line){spi_set_level_kick, vm, 32 + gsi};
}

/* The PL011's and PL031's: raised by the vCPU that accessed them, which kicks afterwards. */
static struct irq_line spi_line(struct vm *vm, unsigned gsi)
{
        return (struct irq_line){vgic_set_level, &vm->arch.vgic, 32 + gsi};
}

/* The GIC on the VM's bus, the PL011 and the PL031 wired to it. */
static int platform_init(struct vm *vm)
{
        struct vm_arch *a = &vm->arch;
        struct irq_line uart_irq, rtc_irq;
        size_t bytes = (size_t)vm->vcpu_count * sizeof(struct vgic_cpu);
        unsigned pages = (unsigned)((bytes + PAGE_SIZE - 1) / PAGE_SIZE);
        int err;

        /* One redistributor per vCPU, sized from the count (freed by arch_vm_teardown). */
        CHECK(!a->vgic_cpus_pages);
        err = palloc_alloc(&keel_palloc, pages, PAGE_SIZE, &a->vgic_cpus_pa);
        if (err)
                return err;
        a->vgic_cpus_pages = pages;
        err = vgic_init(&a->vgic, hva_ptr(arch_hpa_to_hva(a->vgic_cpus_pa)), vm->vcpu_count,
                        ARM64_NR_SPIS);

        if (!err)
                err = mmio_bus_add(&vm->mmio, gpa(VGIC_GICD_BASE), VGIC_GICD_SIZE, &vgic_dist_ops,
                                   &a->vgic, "gicd");
        if (!err)
                err = mmio_bus_add(&vm->mmio, gpa(VGIC_GICR_BASE), VGIC_GICR_SIZE(vm->vcpu_count),
                                   &vgic_redist_ops, &a->vgic, "gicr");
        pl031_init(&a->rtc, wallclock_ns);
        if (!err)
                err = mmio_bus_add(&vm->mmio, gpa(ARM64_PL031_BASE), PL031_SIZE, &pl031_ops,
                                   &a->rtc, "pl031");
        if (err)
                return err;
        uart_irq = spi_line(vm, ARM64_PL011_SPI);
        pl011_set_irq(&a->uart, &uart_irq);
        rtc_irq = spi_line(vm, ARM64_PL031_SPI);
        pl031_set_irq(&a->rtc, &rtc_irq);
        a->platform = true;
        return 0;
}

/*
 * Clean what Keel wrote to the point of coherency: the guest starts with caches off. Region by
 * region: a VM's RAM may come from several host runs (vmm/build.c).
 */
static void clean_dcache(const struct gmem *m, gpa_t a, uint64_t len)
{
        while (len) {
                uint64_t n = 0;

                for (unsigned i = 0; i < m->count && !n; i++) {
                        const struct gmem_region *r = &m->regions[i];
                        uint64_t off = gpa_raw(a) - gpa_raw(r->base);

                        if (off >= r->size)
                                continue;
                        n = r->size - off < len ? r->size - off : len;
                        arm64_dcache_clean_poc(hva_ptr(arch_hpa_to_hva(hpa_add(r->backing, off))),
                                               n);
                }
                if (!n)
                        return;
                a = gpa_add(a, n);
                len -= n;
        }
}

static int load_failed(struct vm *vm, const char *what, const char *why, int err)
{
        LOG_ERR("vm %s: %s: %s", vm->name, what, why);
        return err;
}

int arch_vm_load_multiboot(struct vm *vm, const struct boot_vm_files *f, const char *cmdline)
{
        (void)cmdline;
        LOG_ERR("vm %s: kernel %s: Multiboot is an x86 boot protocol; on arm64 boot a Linux "
                "Image (remove boot = multiboot)",
                vm->name, f->image.path);
        return -KEEL_ENOTSUP;
}

int arch_vm_load_linux(struct vm *vm, const struct boot_vm_files *f, const char *cmdline,
                       const struct vm_virtio_desc *devs, unsigned ndevs)
{
        struct vcpu_arch *c = &vm->vcpus[0].arch;
        struct arm64_image_info img;
        struct arm64_layout lay;
        struct arm64_linux_vm desc;
        const char *why = NULL;
        uint64_t ram = gmem_total(&vm->mem);
        size_t dtb_size;
        hpa_t dtb_pa;
        void *dtb;
        int err;

        if (ndevs > ARM64_LINUX_MAX_VIRTIO)
                return -KEEL_E2BIG;
        if (vm->pc_testdev)
                return load_failed(vm, f->image.path,
                                   "pc_testdev = yes is QEMU's PC test device, for x86 VMs "
                                   "(remove it)",
                                   -KEEL_ENOTSUP);
        err = arm64_image_parse(f->image.data, f->image.size, &img, &why);
        if (err)
                return load_failed(vm, f->image.path, why, err);
        err = arm64_linux_plan(&(struct arm64_layout_req){.ram_base = ARM64_RAM_BASE,
                                                          .ram_size = ram,
                                                          .image = &img,
                                                          .initrd_size = f->initrd.size,
                                                          .dtb_size = ARM64_LINUX_DTB_SIZE},
                               &lay, &why);
        if (err)
                return load_failed(vm, f->image.path, why, err);
        err = platform_init(vm);
        if (!err && ndevs < ARM64_LINUX_MAX_VIRTIO)
                err = mmio_bus_add(&vm->mmio, gpa(ARM64_VIRTIO_BASE + ndevs * ARM64_VIRTIO_SIZE),
                                   (ARM64_LINUX_MAX_VIRTIO - ndevs) * ARM64_VIRTIO_SIZE,
                                   &virtio_mmio_empty_ops, (void *)&empty_slot, "virtio-empty");
        if (err)
                return err;

        desc = (struct arm64_linux_vm){
            .ram_base = ARM64_RAM_BASE,
            .ram_size = ram,
            .vcpus = vm->vcpu_count,
            .cmdline = cmdline,
            .initrd_start = lay.initrd_start,
            .initrd_end = lay.initrd_end,
            .gicd_base = VGIC_GICD_BASE,
            .gicd_size = VGIC_GICD_SIZE,
            .gicr_base = VGIC_GICR_BASE,
            .gicr_size = VGIC_GICR_SIZE(vm->vcpu_count),
            .uart = {ARM64_PL011_BASE, ARM64_PL011_SIZE, ARM64_PL011_SPI},
            .rtc = {ARM64_PL031_BASE, PL031_SIZE, ARM64_PL031_SPI},
            .virtio_count = ndevs,
        };
        for (unsigned i = 0; i < ndevs; i++)
                desc.virtio[i] =
                    (struct arm64_linux_mmio_dev){gpa_raw(devs[i].base), devs[i].size, devs[i].gsi};
        err = palloc_alloc(&keel_palloc, DTB_PAGES, PAGE_SIZE, &dtb_pa);
        if (err)
                return err;
        dtb = hva_ptr(arch_hpa_to_hva(dtb_pa));
        err = arm64_linux_fdt(&desc, dtb, ARM64_LINUX_DTB_SIZE, &dtb_size, &why);
        if (!err)
                err = gmem_write(&vm->mem, gpa(lay.dtb), dtb, dtb_size);
        CHECK(palloc_free(&keel_palloc, dtb_pa, DTB_PAGES) == 0);
        if (err)
                return why ? load_failed(vm, "device tree", why, err) : err;

        err = gmem_write(&vm->mem, gpa(lay.kernel_entry), f->image.data, f->image.size);
        if (!err && f->initrd.size)
                err = gmem_write(&vm->mem, gpa(lay.initrd_start), f->initrd.data, f->initrd.size);
        if (err)
                return err;
        clean_dcache(&vm->mem, gpa(lay.kernel_entry), f->image.size);
        clean_dcache(&vm->mem, gpa(lay.initrd_start), f->initrd.size);
        clean_dcache(&vm->mem, gpa(lay.dtb), dtb_size);

        err = arch_vcpu_setup(&vm->vcpus[0], gpa(lay.kernel_entry));
        if (err)
                return err;
        memset(c->x, 0, sizeof(c->x));
        c->x[0] = lay.dtb; /* booting.rst: x0 = DTB, x1..x3 = 0 */
        LOG_INFO("vm %s: arm64 Image at %#llx (%llu KiB with bss), initrd %llu bytes at "
                 "%#llx, device tree %zu bytes at %#llx",
                 vm->name, (unsigned long long)lay.kernel_entry,
                 (unsigned long long)(img.image_size >> 10), (unsigned long long)f->initrd.size,
                 (unsigned long long)lay.initrd_start, dtb_size, (unsigned long long)lay.dtb);
        return 0;
}
