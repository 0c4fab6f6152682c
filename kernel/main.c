/*
 * Keel's kernel after ExitBootServices: take the CPU, start the page allocator, enable
 * virtualization, then build and run every VM of the config one after another. A VM that
 * fails to build or misbehaves is stopped and reported; the others run regardless. At the
 * end a summary compares each VM's outcome with what the config expected.
 */
#include <stdio.h>
#include <string.h>

#include <keel/arch.h>
#include <keel/boot.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <keel/palloc.h>
#include <keel/smp.h>
#include <vmm/config.h>
#include <vmm/loader.h>
#include <vmm/virtio.h>
#include <vmm/vm.h>
#include <vmm/vmm.h>

/* The VMs of the config, allocated at boot (large: not stored in keel.efi). */
static struct vm *vms;

#define VMS_PAGES (align_up(sizeof(struct vm) * KEEL_MAX_VMS, PAGE_SIZE) / PAGE_SIZE)

/* Emulated devices of a Linux VM (a Keel-owned copy per VM slot). */
struct vm_devices {
        struct virtio_mmio blk_t, con_t;
        struct virtio_blk blk;
        struct virtio_console con;
        char blk_name[VM_NAME_MAX + 16], con_name[VM_NAME_MAX + 16];
};

/* Allocated from the page allocator while a Linux VM exists (large: not in keel.efi). */
static struct vm_devices *devices[KEEL_MAX_VMS];

#define VM_DEVICES_PAGES (align_up(sizeof(struct vm_devices), PAGE_SIZE) / PAGE_SIZE)

/* virtio-console output joins the VM's console lines, prefixed with its name. */
static void console_sink(void *ctx, const uint8_t *buf, size_t len)
{
        struct vm *vm = ctx;

        for (size_t i = 0; i < len; i++)
                vcons_putc(&vm->console, buf[i]);
}

/*
 * Put a virtio device on the VM's MMIO bus in the arch's next slot; `event_idx` false takes
 * VIRTIO_RING_F_EVENT_IDX out of its offered features (config event_idx = no).
 */
static int add_virtio(struct vm *vm, struct virtio_mmio *t, struct virtio_device *dev,
                      bool event_idx, const char *name, struct vm_virtio_desc *desc, unsigned n)
{
        int err;

        if (!event_idx)
                dev->features &= ~(1ull << VIRTIO_RING_F_EVENT_IDX);
        arch_virtio_slot(n, &desc->base, &desc->size, &desc->gsi);
        err = virtio_mmio_init(t, dev, &vm->mem, arch_irq_line(vm, desc->gsi), name);
        if (!err)
                err = mmio_bus_add(&vm->mmio, desc->base, desc->size, &virtio_mmio_ops, t, name);
        return err;
}

/* A Linux VM: virtio disk (if configured) and console, then the arch's platform and boot. */
static int vm_build_linux(struct vm *vm, const struct vm_config *vc, const struct boot_vm_files *f)
{
        struct vm_devices *d;
        struct vm_virtio_desc desc[2];
        unsigned n = 0;
        hpa_t pa;
        int err = palloc_alloc(&keel_palloc, VM_DEVICES_PAGES, PAGE_SIZE, &pa);

        if (err) {
                vm_stop(vm, VM_STOP_LOAD_FAILED, "no memory for its devices");
                return err;
        }
        d = devices[vm->id] = hva_ptr(arch_hpa_to_hva(pa)); /* zeroed by the allocator */
        if (f->disk.size) {
                snprintf(d->blk_name, sizeof(d->blk_name), "%s/virtio-blk0", vm->name);
                err = virtio_blk_init(&d->blk, (uint8_t *)f->disk.data, f->disk.size,
                                      vc->disk_readonly, vm->name, 0);
                if (!err)
                        err = add_virtio(vm, &d->blk_t, &d->blk.vdev, !vc->no_event_idx,
                                         d->blk_name, &desc[n], n);
                if (!err) {
                        virtio_blk_attach(&d->blk, &d->blk_t);
                        n++;
                }
        }
        if (!err) {
                snprintf(d->con_name, sizeof(d->con_name), "%s/virtio-console0", vm->name);
                err = virtio_console_init(&d->con, console_sink, vm);
                if (!err)
                        err = add_virtio(vm, &d->con_t, &d->con.vdev, !vc->no_event_idx,
                                         d->con_name, &desc[n], n);
                if (!err) {
                        virtio_console_attach(&d->con, &d->con_t);
                        n++;
                }
        }
        if (err) {
                vm_stop(vm, VM_STOP_LOAD_FAILED, "cannot set up its virtio devices: %s",
                        keel_strerror(err));
                return err;
        }
        err = arch_vm_load_linux(vm, f, vc->cmdline, desc, n);
        if (err)
                vm_stop(vm, VM_STOP_LOAD_FAILED, "kernel %s not booted: %s", vc->kernel,
                        keel_strerror(err));
        return err;
}

/* A test guest: a flat or ELF image in the documented entry state. */
static int vm_build_image(struct vm *vm, const struct vm_config *vc, const struct boot_image *img)
{
        struct load_request req = {
            .name = vc->image,
            .data = img->data,
            .size = img->size,
            .format = vc->format,
            .elf_machine = arch_elf_machine(),
            /* Offsets into the VM's RAM (the parser fills in the defaults). */
            .load = gpa(gpa_raw(arch_guest_ram_base()) + vc->load),
            .has_entry = vc->has_entry,
            .entry = gpa(gpa_raw(arch_guest_ram_base()) + vc->entry),
        };
        gpa_t entry;
        int err;

        arch_guest_reserved(&req.reserved_base, &req.reserved_size);
        err = loader_load(&vm->mem, &req, &entry);
        if (err) {
                vm_stop(vm, VM_STOP_LOAD_FAILED, "image %s not loaded: %s", vc->image,
                        keel_strerror(err));
                return err;
        }
        err = arch_vcpu_setup(&vm->vcpus[0], entry);
        if (err)
                vm_stop(vm, VM_STOP_LOAD_FAILED, "cannot set up its vCPU: %s", keel_strerror(err));
        return err;
}

/* Allocate and map the VM's RAM, then build the guest of its kind. */
static int vm_build(struct vm *vm, const struct vm_config *vc, const struct boot_vm_files *f)
{
        uint64_t pages = vc->memory / PAGE_SIZE;
        hpa_t ram;
        int err;

        err = palloc_alloc(&keel_palloc, pages, LARGE_PAGE_SIZE, &ram);
        if (err == -KEEL_ENOMEM)
                err = palloc_alloc(&keel_palloc, pages, PAGE_SIZE, &ram);
        if (err) {
                vm_stop(
                    vm, VM_STOP_LOAD_FAILED,
                    "no %llu MiB contiguous run of free memory (largest free run %llu MiB)",
                    (unsigned long long)(vc->memory >> 20),
                    (unsigned long long)(palloc_largest_run(&keel_palloc, PAGE_SIZE) * PAGE_SIZE >>
                                         20));
                return err;
        }
        err = gmem_add_region(&vm->mem, arch_guest_ram_base(), vc->memory, ram);
        CHECK(err == 0);
        err = arch_vm_setup(vm);
        if (err) {
                vm_stop(vm, VM_STOP_LOAD_FAILED, "cannot build its nested page tables: %s",
                        keel_strerror(err));
                return err;
        }
        err = vc->kernel[0] ? vm_build_linux(vm, vc, f) : vm_build_image(vm, vc, &f->image);
        if (err)
                return err;
        LOG_INFO("keel: vm %s: %llu MiB at host %#llx, %s %s (%llu bytes)", vm->name,
                 (unsigned long long)(vc->memory >> 20), (unsigned long long)hpa_raw(ram),
                 vc->kernel[0] ? "kernel" : "image", f->image.path,
                 (unsigned long long)f->image.size);
        return 0;
}

static void vm_release(struct vm *vm)
{
        arch_vm_teardown(vm);
        if (devices[vm->id] && devices[vm->id]->blk.t) {
                const struct virtio_blk *b = &devices[vm->id]->blk;

                LOG_INFO("keel: vm %s: virtio-blk0: %llu reads, %llu writes, %llu flushes, %llu "
                         "errors",
                         vm->name, (unsigned long long)b->reads, (unsigned long long)b->writes,
                         (unsigned long long)b->flushes, (unsigned long long)b->errors);
        }
        if (devices[vm->id]) {
                int err = palloc_free(&keel_palloc, arch_hva_to_hpa(hva_from_ptr(devices[vm->id])),
                                      VM_DEVICES_PAGES);

                CHECK(err == 0);
                devices[vm->id] = NULL;
        }
        for (unsigned i = 0; i < vm->mem.count; i++) {
                const struct gmem_region *r = &vm->mem.regions[i];
                int err = palloc_free(&keel_palloc, r->backing, r->size / PAGE_SIZE);

                CHECK(err == 0);
        }
        vm->mem.count = 0;
}

static void outcome(const struct vm *vm, char *buf, size_t len)
{
        if (vm->stop_reason == VM_STOP_EXIT)
                snprintf(buf, len, "exit %lld", (long long)vm->exit_code);
        else
                snprintf(buf, len, "%s", vm_stop_reason_name(vm->stop_reason));
}

static bool as_expected(const struct vm *vm, const struct vm_config *vc, char *buf, size_t len)
{
        if (vc->has_expect_exit) {
                snprintf(buf, len, "exit %lld", (long long)vc->expect_exit);
                return vm->stop_reason == VM_STOP_EXIT && vm->exit_code == vc->expect_exit;
        }
        if (vc->has_expect_stop) {
                snprintf(buf, len, "%s", vm_stop_reason_name(vc->expect_stop));
                return vm->stop_reason == vc->expect_stop;
        }
        /* No expectation: a clean exit with code 0 is the success. */
        snprintf(buf, len, "exit 0");
        return vm->stop_reason == VM_STOP_EXIT && vm->exit_code == 0;
}

/* Where each application processor goes once it is up: idle for now (the scheduler later). */
static void ap_idle_entry(unsigned index)
{
        (void)index;
        for (;;)
                arch_cpu_idle();
}

_Noreturn void kernel_main(const struct boot_info *bi)
{
        const struct keel_config *cfg = bi->config;
        unsigned unexpected = 0;
        char desc[200];
        hpa_t vms_pa;
        int err;

        LOG_INFO("keel: boot services exited after %u memory-map fetch%s", bi->map_tries,
                 bi->map_tries == 1 ? "" : "es");
        err = palloc_init(&keel_palloc, bi->usable, bi->usable_count);
        if (err)
                panic("no usable memory for the page allocator: %s", keel_strerror(err));
        LOG_INFO("keel: page allocator: %llu MiB free in %u ranges",
                 (unsigned long long)(palloc_free_pages(&keel_palloc) * PAGE_SIZE >> 20),
                 keel_palloc.count);
        err = palloc_alloc(&keel_palloc, VMS_PAGES, PAGE_SIZE, &vms_pa);
        if (err)
                panic("no memory for the VM table: %s", keel_strerror(err));
        vms = hva_ptr(arch_hpa_to_hva(vms_pa)); /* zeroed by the allocator */
        arch_cpu_setup(bi);
        if (cfg->selftest == SELFTEST_EXCEPTION) {
                /* Proves the trap path: Keel must dump its registers and panic, never go on. */
                LOG_INFO("keel: selftest: raising an invalid-opcode exception inside Keel");
                __builtin_trap();
        }
        arch_virt_enable();
        arch_virt_describe(desc, sizeof(desc));
        LOG_INFO("keel: virtualization on: %s", desc);
        arch_smp_start(bi, ap_idle_entry);

        for (unsigned i = 0; i < cfg->vm_count; i++) {
                struct vm *vm = &vms[i];

                vm_init(vm, i, cfg->vms[i].name);
                LOG_INFO("keel: vm %s: starting", vm->name);
                if (vm_build(vm, &cfg->vms[i], &bi->vm_files[i]) == 0 &&
                    vm_set_state(vm, VM_RUNNING) == 0)
                        arch_vcpu_run(&vm->vcpus[0]);
                if (vm->state != VM_STOPPED)
                        vm_stop(vm, VM_STOP_UNHANDLED, "vCPU returned without stopping the VM");
                arch_vcpu_exit_summary(&vm->vcpus[0], desc, sizeof(desc));
                LOG_INFO("keel: vm %s: %llu exits (%s)", vm->name,
                         (unsigned long long)vm->vcpus[0].exits, desc);
                vm_release(vm);
        }

        LOG_INFO("keel: summary");
        for (unsigned i = 0; i < cfg->vm_count; i++) {
                char got[48], want[48];
                bool ok;

                outcome(&vms[i], got, sizeof(got));
                ok = as_expected(&vms[i], &cfg->vms[i], want, sizeof(want));
                unexpected += !ok;
                LOG_INFO("keel:   %s: %s (expected %s): %s", vms[i].name, got, want,
                         ok ? "ok" : "UNEXPECTED");
        }
        if (unexpected)
                LOG_INFO("keel: result: FAIL (%u of %u VM%s not as expected)", unexpected,
                         cfg->vm_count, cfg->vm_count == 1 ? "" : "s");
        else
                LOG_INFO("keel: result: PASS (%u VM%s as expected)", cfg->vm_count,
                         cfg->vm_count == 1 ? "" : "s");
        LOG_INFO("keel: %llu MiB free after all VMs ended",
                 (unsigned long long)(palloc_free_pages(&keel_palloc) * PAGE_SIZE >> 20));
        if (cfg->finish == FINISH_DEBUG_EXIT)
                arch_test_finish(unexpected == 0);
        LOG_INFO("keel: all VMs ended; halting");
        arch_halt();
}
