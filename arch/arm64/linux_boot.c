/*
 * arm64 Linux boot, the pure part (contract in arch/arm64_linux.h): the Image header, the
 * guest RAM layout and the VM's device tree. The Image is untrusted: every read is inside
 * the checked header and every sum is checked for overflow.
 */
#include <stdio.h>
#include <string.h>

#include <arch/arm64_linux.h>
#include <arch/vcpu_affinity.h>
#include <keel/errno.h>
#include <vmm/fdt.h>
#include <keel/le.h>

#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)

/* booting.rst: the initrd and the kernel lie in one 1 GiB aligned window of up to 32 GiB. */
#define INITRD_WINDOW_ALIGN GiB
#define INITRD_WINDOW_SIZE  (32 * GiB)
#define PHYS_ANY_LIMIT      (1ull << 48)

static int refuse(const char **why, int err, const char *reason)
{
        if (why)
                *why = reason;
        return err;
}

int arm64_image_parse(const void *image, uint64_t size, struct arm64_image_info *out,
                      const char **why)
{
        static const unsigned page_sizes[4] = {0, 4096, 16384, 65536};
        const uint8_t *p = image;
        struct arm64_image_info info;

        if (!image || size < ARM64_IMAGE_HDR_SIZE)
                return refuse(why, -KEEL_EINVAL,
                              "file shorter than the 64-byte arm64 Image header");
        if (get_le(p + ARM64_IMAGE_MAGIC_OFF, 4) != ARM64_IMAGE_MAGIC)
                return refuse(why, -KEEL_EINVAL,
                              "no \"ARM\\x64\" magic at offset 0x38: not an arm64 Linux Image "
                              "(a compressed vmlinuz must be decompressed first)");
        memset(&info, 0, sizeof(info));
        info.file_size = size;
        info.text_offset = get_le(p + ARM64_IMAGE_TEXT_OFFSET, 8);
        info.image_size = get_le(p + ARM64_IMAGE_SIZE, 8);
        info.flags = get_le(p + ARM64_IMAGE_FLAGS, 8);
        if (info.image_size == 0)
                return refuse(why, -KEEL_EINVAL,
                              "image_size is 0: a kernel older than Linux 3.17, whose memory "
                              "needs the header does not give");
        if (info.flags & ARM64_IMAGE_FLAG_BE)
                return refuse(why, -KEEL_EINVAL,
                              "big-endian kernel (flags bit 0): need little-endian");
        if (info.image_size < size)
                return refuse(why, -KEEL_EINVAL,
                              "image_size in the header is smaller than the file");
        if (info.image_size > UINT64_MAX - ARM64_LINUX_KERNEL_ALIGN ||
            info.text_offset > UINT64_MAX - ARM64_LINUX_KERNEL_ALIGN - info.image_size)
                return refuse(why, -KEEL_EINVAL, "text_offset + image_size overflow");
        info.page_size =
            page_sizes[(info.flags & ARM64_IMAGE_FLAG_PAGE_MASK) >> ARM64_IMAGE_FLAG_PAGE_SHIFT];
        info.phys_any = (info.flags & ARM64_IMAGE_FLAG_PHYS_ANY) != 0;
        *out = info;
        return 0;
}

static uint64_t align_down(uint64_t v, uint64_t a)
{
        return v & ~(a - 1);
}

/* v rounded up to a (a power of two), or false if that overflows. */
static bool align_up(uint64_t v, uint64_t a, uint64_t *out)
{
        if (v > UINT64_MAX - (a - 1))
                return false;
        *out = align_down(v + (a - 1), a);
        return true;
}

int arm64_linux_plan(const struct arm64_layout_req *req, struct arm64_layout *out, const char **why)
{
        const struct arm64_image_info *im = req->image;
        struct arm64_layout l;
        uint64_t ram_end, kspan, top, window;

        if (!im)
                return refuse(why, -KEEL_EINVAL, "no kernel image");
        if (req->ram_size == 0 || req->ram_base > UINT64_MAX - req->ram_size)
                return refuse(why, -KEEL_EINVAL, "guest RAM range is empty or wraps around");
        if (req->dtb_size == 0 || req->dtb_size > ARM64_LINUX_DTB_MAX)
                return refuse(why, -KEEL_EINVAL, "DTB size must be between 1 byte and 2 MiB");
        ram_end = req->ram_base + req->ram_size;
        memset(&l, 0, sizeof(l));

        /* The kernel: text_offset past the first 2 MiB boundary, image_size bytes. */
        kspan = im->image_size > im->file_size ? im->image_size : im->file_size;
        if (!align_up(req->ram_base, ARM64_LINUX_KERNEL_ALIGN, &l.kernel_base) ||
            l.kernel_base >= ram_end || im->text_offset > ram_end - l.kernel_base ||
            kspan > ram_end - l.kernel_base - im->text_offset)
                return refuse(why, -KEEL_ENOMEM, "guest RAM too small for the kernel's image_size");
        l.kernel_entry = l.kernel_base + im->text_offset;
        l.kernel_end = l.kernel_entry + kspan;
        if (im->phys_any && l.kernel_end > PHYS_ANY_LIMIT)
                return refuse(why, -KEEL_ENOMEM,
                              "the kernel must lie below 2^48 (Image flags bit 3) but guest RAM "
                              "starts too high");

        /* The DTB: the start of the last 2 MiB block of RAM that holds it, above the kernel. */
        l.dtb = align_down(ram_end - req->dtb_size, ARM64_LINUX_KERNEL_ALIGN);
        if (req->dtb_size > req->ram_size || l.dtb < l.kernel_end)
                return refuse(why, -KEEL_ENOMEM,
                              "guest RAM too small for the kernel's image_size and the DTB above "
                              "it");
        l.dtb_end = l.dtb + req->dtb_size;

        /* The initrd: right below the DTB, inside the kernel's 32 GiB window. */
        if (req->initrd_size) {
                window = align_down(l.kernel_entry, INITRD_WINDOW_ALIGN);
                top = l.dtb;
                if (window <= UINT64_MAX - INITRD_WINDOW_SIZE && window + INITRD_WINDOW_SIZE < top)
                        top = window + INITRD_WINDOW_SIZE;
                if (top < l.kernel_end)
                        return refuse(why, -KEEL_ENOMEM,
                                      "no room for the initrd in the 32 GiB window around the "
                                      "kernel");
                if (req->initrd_size > top - l.kernel_end ||
                    align_down(top - req->initrd_size, ARM64_LINUX_INITRD_ALIGN) < l.kernel_end)
                        return refuse(why, -KEEL_ENOMEM,
                                      "guest RAM too small for kernel, initrd and DTB");
                l.initrd_start = align_down(top - req->initrd_size, ARM64_LINUX_INITRD_ALIGN);
                l.initrd_end = l.initrd_start + req->initrd_size;
        }
        *out = l;
        return 0;
}

/* ---- the device tree ---- */

static bool region_ok(uint64_t base, uint64_t size)
{
        return size != 0 && base <= UINT64_MAX - size;
}

static void prop_reg(struct fdt *f, uint64_t base, uint64_t size)
{
        const uint32_t cells[4] = {(uint32_t)(base >> 32), (uint32_t)base, (uint32_t)(size >> 32),
                                   (uint32_t)size};

        fdt_prop_cells(f, "reg", cells, 4);
}

static void prop_spi(struct fdt *f, uint32_t spi)
{
        const uint32_t cells[3] = {0 /* SPI */, spi, 4 /* level high */};

        fdt_prop_cells(f, "interrupts", cells, 3);
}

/* "name@<base in lowercase hex>"; the longest is "virtio_mmio@" + 16 digits. */
static void node_at(char *buf, size_t n, const char *name, uint64_t base)
{
        snprintf(buf, n, "%s@%llx", name, (unsigned long long)base);
}

static int vm_check(const struct arm64_linux_vm *vm, const char **why)
{
        if (vm->vcpus == 0 || vm->vcpus > ARM64_LINUX_MAX_VCPUS)
                return refuse(why, -KEEL_EINVAL, "number of vCPUs must be 1 to 64");
        if (!region_ok(vm->ram_base, vm->ram_size))
                return refuse(why, -KEEL_EINVAL, "RAM range is empty or wraps around");
        if (!region_ok(vm->gicd_base, vm->gicd_size) || !region_ok(vm->gicr_base, vm->gicr_size))
                return refuse(why, -KEEL_EINVAL, "GIC region is empty or wraps around");
        if (vm->gicr_size / ARM64_LINUX_GICR_STRIDE < vm->vcpus)
                return refuse(why, -KEEL_EINVAL,
                              "GIC redistributor region smaller than 128 KiB per vCPU");
        if (!region_ok(vm->uart.base, vm->uart.size) || vm->uart.spi > ARM64_LINUX_SPI_MAX)
                return refuse(why, -KEEL_EINVAL, "PL011 region empty or SPI above 987");
        if (vm->rtc.size &&
            (!region_ok(vm->rtc.base, vm->rtc.size) || vm->rtc.spi > ARM64_LINUX_SPI_MAX))
                return refuse(why, -KEEL_EINVAL, "PL031 region wraps around or SPI above 987");
        if (vm->virtio_count > ARM64_LINUX_MAX_VIRTIO)
                return refuse(why, -KEEL_EINVAL, "more than 8 virtio-mmio devices");
        for (unsigned i = 0; i < vm->virtio_count; i++)
                if (!region_ok(vm->virtio[i].base, vm->virtio[i].size) ||
                    vm->virtio[i].spi > ARM64_LINUX_SPI_MAX)
                        return refuse(why, -KEEL_EINVAL,
                                      "virtio-mmio region empty or SPI above 987");
        if (vm->initrd_end < vm->initrd_start)
                return refuse(why, -KEEL_EINVAL, "initrd ends before it starts");
        return 0;
}

int arm64_linux_fdt(const struct arm64_linux_vm *vm, void *buf, size_t cap, size_t *size,
                    const char **why)
{
        static const char *const psci_compat[] = {"arm,psci-1.0", "arm,psci-0.2"};
        static const char *const uart_compat[] = {"arm,pl011", "arm,primecell"};
        static const char *const uart_clock_names[] = {"uartclk", "apb_pclk"};
        static const char *const rtc_compat[] = {"arm,pl031", "arm,primecell"};
        static const uint32_t timer_irqs[] = {
            1, 13, 4, /* secure physical timer */
            1, 14, 4, /* non-secure physical timer */
            1, 11, 4, /* virtual timer */
            1, 10, 4, /* hypervisor timer */
        };
        static const uint32_t uart_clocks[] = {ARM64_LINUX_PHANDLE_CLK, ARM64_LINUX_PHANDLE_CLK};
        char name[40], uart_path[48];
        struct fdt f;
        int rc;

        rc = vm_check(vm, why);
        if (rc)
                return rc;
        fdt_init(&f, buf, cap);

        fdt_begin_node(&f, "");
        fdt_prop_u32(&f, "#address-cells", 2);
        fdt_prop_u32(&f, "#size-cells", 2);
        fdt_prop_string(&f, "compatible", "linux,dummy-virt");
        fdt_prop_string(&f, "model", "Keel arm64 virtual machine");
        fdt_prop_u32(&f, "interrupt-parent", ARM64_LINUX_PHANDLE_GIC);

        node_at(name, sizeof(name), "memory", vm->ram_base);
        fdt_begin_node(&f, name);
        fdt_prop_string(&f, "device_type", "memory");
        prop_reg(&f, vm->ram_base, vm->ram_size);
        fdt_end_node(&f);

        fdt_begin_node(&f, "cpus");
        fdt_prop_u32(&f, "#address-cells", 1);
        fdt_prop_u32(&f, "#size-cells", 0);
        for (unsigned i = 0; i < vm->vcpus; i++) {
                uint32_t mpidr = (uint32_t)vgic_vcpu_mpidr(i); /* as VMPIDR_EL2 gives it */

                node_at(name, sizeof(name), "cpu", mpidr);
                fdt_begin_node(&f, name);
                fdt_prop_string(&f, "device_type", "cpu");
                fdt_prop_string(&f, "compatible", "arm,armv8");
                fdt_prop_u32(&f, "reg", mpidr);
                fdt_prop_string(&f, "enable-method", "psci");
                fdt_end_node(&f);
        }
        fdt_end_node(&f);

        fdt_begin_node(&f, "psci");
        fdt_prop_strings(&f, "compatible", psci_compat, 2);
        fdt_prop_string(&f, "method", "hvc");
        fdt_end_node(&f);

        node_at(name, sizeof(name), "intc", vm->gicd_base);
        fdt_begin_node(&f, name);
        {
                const uint32_t reg[8] = {
                    (uint32_t)(vm->gicd_base >> 32), (uint32_t)vm->gicd_base,
                    (uint32_t)(vm->gicd_size >> 32), (uint32_t)vm->gicd_size,
                    (uint32_t)(vm->gicr_base >> 32), (uint32_t)vm->gicr_base,
                    (uint32_t)(vm->gicr_size >> 32), (uint32_t)vm->gicr_size,
                };

                fdt_prop_string(&f, "compatible", "arm,gic-v3");
                fdt_prop_u32(&f, "#interrupt-cells", 3);
                fdt_prop_empty(&f, "interrupt-controller");
                /* No children; dtc wants #address-cells in an interrupt provider. */
                fdt_prop_u32(&f, "#address-cells", 0);
                fdt_prop_cells(&f, "reg", reg, 8);
                fdt_prop_u32(&f, "#redistributor-regions", 1);
                fdt_prop_u32(&f, "phandle", ARM64_LINUX_PHANDLE_GIC);
        }
        fdt_end_node(&f);

        fdt_begin_node(&f, "timer");
        fdt_prop_string(&f, "compatible", "arm,armv8-timer");
        fdt_prop_cells(&f, "interrupts", timer_irqs, sizeof(timer_irqs) / sizeof(timer_irqs[0]));
        fdt_prop_empty(&f, "always-on");
        fdt_end_node(&f);

        fdt_begin_node(&f, "apb-pclk");
        fdt_prop_string(&f, "compatible", "fixed-clock");
        fdt_prop_u32(&f, "#clock-cells", 0);
        fdt_prop_u32(&f, "clock-frequency", 24000000);
        fdt_prop_string(&f, "clock-output-names", "clk24mhz");
        fdt_prop_u32(&f, "phandle", ARM64_LINUX_PHANDLE_CLK);
        fdt_end_node(&f);

        node_at(name, sizeof(name), "pl011", vm->uart.base);
        snprintf(uart_path, sizeof(uart_path), "/%s", name);
        fdt_begin_node(&f, name);
        fdt_prop_strings(&f, "compatible", uart_compat, 2);
        prop_reg(&f, vm->uart.base, vm->uart.size);
        prop_spi(&f, vm->uart.spi);
        fdt_prop_strings(&f, "clock-names", uart_clock_names, 2);
        fdt_prop_cells(&f, "clocks", uart_clocks, 2);
        fdt_end_node(&f);

        if (vm->rtc.size) {
                node_at(name, sizeof(name), "pl031", vm->rtc.base);
                fdt_begin_node(&f, name);
                fdt_prop_strings(&f, "compatible", rtc_compat, 2);
                prop_reg(&f, vm->rtc.base, vm->rtc.size);
                prop_spi(&f, vm->rtc.spi);
                fdt_prop_string(&f, "clock-names", "apb_pclk");
                fdt_prop_u32(&f, "clocks", ARM64_LINUX_PHANDLE_CLK);
                fdt_end_node(&f);
        }

        for (unsigned i = 0; i < vm->virtio_count; i++) {
                node_at(name, sizeof(name), "virtio_mmio", vm->virtio[i].base);
                fdt_begin_node(&f, name);
                fdt_prop_string(&f, "compatible", "virtio,mmio");
                prop_reg(&f, vm->virtio[i].base, vm->virtio[i].size);
                prop_spi(&f, vm->virtio[i].spi);
                fdt_prop_empty(&f, "dma-coherent");
                fdt_end_node(&f);
        }

        fdt_begin_node(&f, "chosen");
        fdt_prop_string(&f, "bootargs", vm->cmdline ? vm->cmdline : "");
        fdt_prop_string(&f, "stdout-path", uart_path);
        if (vm->initrd_end > vm->initrd_start) {
                fdt_prop_u64(&f, "linux,initrd-start", vm->initrd_start);
                fdt_prop_u64(&f, "linux,initrd-end", vm->initrd_end);
        }
        fdt_end_node(&f);

        fdt_end_node(&f);
        rc = fdt_finish(&f, size);
        if (rc == -KEEL_ENOSPC)
                return refuse(why, rc, "device tree does not fit in its buffer");
        if (rc)
                return refuse(why, rc, "malformed device tree");
        return 0;
}
