/*
 * Building a VM from its config: its RAM, second-level tables, the guest of its kind (a test
 * image, a Multiboot kernel, a Linux kernel with its virtio devices), and giving all of it
 * back once the VM has stopped and no CPU runs its vCPUs (vmm/vmtable.c decides when).
 * Only the boot CPU builds and releases VMs (the page allocator is its alone).
 */
#include <stdio.h>
#include <string.h>

#include <keel/arch.h>
#include <keel/boot.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <keel/palloc.h>
#include <keel/pt.h>
#include <vmm/build.h>
#include <vmm/config.h>
#include <vmm/loader.h>
#include <vmm/snapshot.h>
#include <vmm/vdisk.h>
#include <vmm/virtio.h>
#include <vmm/vm.h>
#include <vmm/vmm.h>

#define VM_BOUNCE_BYTES (32u << 10)

/* Emulated devices of a Linux VM (a Keel-owned copy per VM slot). */
struct vm_devices {
        struct virtio_mmio blk_t, con_t;
        struct virtio_blk blk;
        struct virtio_console con;
        char blk_name[VM_NAME_MAX + 16], con_name[VM_NAME_MAX + 16];
        /* Keel pages for disk requests whose guest buffers a device cannot take in place. */
        uint8_t bounce[VM_BOUNCE_BYTES] __attribute__((aligned(PAGE_SIZE)));
};

/* Each VM's disk = DEV:... as vdisk_plan decided it at boot ([i] for config->vms[i]). */
static struct vdisk *disk_plan;
/* Each VM's snapshot = DEV:part=... (vdisk_plan_snapshots), likewise. */
static struct vdisk *snap_plan;

#define GUEST_HUGE_PAGE  (1ull << 30) /* the 1 GiB leaf of NPT, EPT and stage 2 */
#define VM_DEVICES_PAGES (align_up(sizeof(struct vm_devices), PAGE_SIZE) / PAGE_SIZE)
#define SCRATCH_PAGES    (align_up(sizeof(struct vdisk_scratch), PAGE_SIZE) / PAGE_SIZE)

/* virtio-console output joins the VM's console lines, prefixed with its name. */
static void console_sink(void *ctx, const uint8_t *buf, size_t len)
{
        struct vm *vm = ctx;

        vcons_write(&vm->console, buf, len);
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
        d = vm->devices = hva_ptr(arch_hpa_to_hva(pa)); /* zeroed by the allocator */
        if (vc->disk_dev.kind != DISK_FILE) {
                const struct vdisk *vd = &disk_plan[vm->id];

                if (!vd->dev) {
                        vm_stop(vm, VM_STOP_LOAD_FAILED, "%s", vd->why);
                        return -KEEL_ENODEV;
                }
                snprintf(d->blk_name, sizeof(d->blk_name), "%s/virtio-blk0", vm->name);
                err = virtio_blk_init_blkdev(
                    &d->blk, vd->dev, vd->start, vd->blocks, vd->ro, &vm->dev_lock, d->bounce,
                    arch_hva_to_hpa(hva_from_ptr(d->bounce)), sizeof(d->bounce), vm->name, 0);
                if (!err)
                        err = add_virtio(vm, &d->blk_t, &d->blk.vdev, !vc->no_event_idx,
                                         d->blk_name, &desc[n], n);
                if (!err) {
                        virtio_blk_attach(&d->blk, &d->blk_t);
                        n++;
                        LOG_INFO("vm %s: virtio-blk0 on %s blocks %llu-%llu (%llu MiB)%s", vm->name,
                                 vd->dev->name, (unsigned long long)vd->start,
                                 (unsigned long long)(vd->start + vd->blocks - 1),
                                 (unsigned long long)(vd->blocks * vd->dev->block_size >> 20),
                                 vd->ro ? ", read-only" : "");
                }
        } else if (f->disk.size) {
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
        if (!err && !vc->no_virtio_console) {
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

/* A Multiboot kernel (boot = multiboot): the arch's platform and loader, no virtio devices. */
static int vm_build_multiboot(struct vm *vm, const struct vm_config *vc,
                              const struct boot_vm_files *f)
{
        int err = arch_vm_load_multiboot(vm, f, vc->cmdline);

        if (err)
                vm_stop(vm, VM_STOP_LOAD_FAILED, "Multiboot kernel %s not booted: %s", vc->kernel,
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

/*
 * Back guest-physical [base, base + size) with host memory: one run if palloc has one (at
 * the largest alignment the second-level tables can use, docs/memory.md: 1 GiB where the
 * guest range is 1 GiB aligned and at least that large, else 2 MiB, else any page), else the
 * largest 1 GiB or 2 MiB aligned runs there are, one gmem region each.
 */
static int vm_add_ram(struct vm *vm, uint64_t base, uint64_t size)
{
        while (size) {
                uint64_t chunk = size;
                hpa_t ram;
                int err = -KEEL_ENOMEM;

                if (size >= GUEST_HUGE_PAGE && is_aligned(base, GUEST_HUGE_PAGE))
                        err = palloc_alloc(&keel_palloc, size / PAGE_SIZE, GUEST_HUGE_PAGE, &ram);
                if (err == -KEEL_ENOMEM)
                        err = palloc_alloc(&keel_palloc, size / PAGE_SIZE, LARGE_PAGE_SIZE, &ram);
                if (err == -KEEL_ENOMEM)
                        err = palloc_alloc(&keel_palloc, size / PAGE_SIZE, PAGE_SIZE, &ram);
                for (uint64_t al = GUEST_HUGE_PAGE; err == -KEEL_ENOMEM && al >= LARGE_PAGE_SIZE;
                     al = al == GUEST_HUGE_PAGE ? LARGE_PAGE_SIZE : 0) {
                        chunk = align_down(palloc_largest_run(&keel_palloc, al) * PAGE_SIZE, al);
                        if (chunk && chunk < size)
                                err = palloc_alloc(&keel_palloc, chunk / PAGE_SIZE, al, &ram);
                }
                if (err)
                        return err;
                err = gmem_add_region(&vm->mem, gpa(base), chunk, ram);
                if (err) {
                        CHECK(palloc_free(&keel_palloc, ram, chunk / PAGE_SIZE) == 0);
                        return err; /* -KEEL_ENOSPC: more runs than a VM may have */
                }
                base += chunk;
                size -= chunk;
        }
        return 0;
}

int vm_build(struct vm *vm, const struct vm_config *vc, const struct boot_vm_files *f)
{
        struct gmem_range ranges[VM_RAM_RANGES];
        unsigned nranges = arch_guest_ram_layout(vc->memory, ranges);
        uint64_t leaves[PT_LEVELS - 1];
        char runs[20];
        int err = 0;

        CHECK(nranges > 0); /* the config keeps memory = inside [2M, 64G], which fits */
        if (vc->snap_dev.kind != DISK_FILE) {
                const struct vdisk *sp = &snap_plan[vm->id];

                if (!sp->dev) {
                        vm_stop(vm, VM_STOP_LOAD_FAILED, "%s", sp->why);
                        return -KEEL_ENODEV;
                }
                LOG_INFO("vm %s: snapshots on %s blocks %llu-%llu", vm->name, sp->dev->name,
                         (unsigned long long)sp->start,
                         (unsigned long long)(sp->start + sp->blocks - 1));
        }
        for (unsigned i = 0; i < nranges && !err; i++)
                err = vm_add_ram(vm, ranges[i].base, ranges[i].size);
        if (err) {
                vm_stop(
                    vm, VM_STOP_LOAD_FAILED,
                    "no %llu MiB of free memory in at most %u runs (largest free run %llu "
                    "MiB); lower memory = or give the machine more",
                    (unsigned long long)(vc->memory >> 20), GMEM_MAX_REGIONS,
                    (unsigned long long)(palloc_largest_run(&keel_palloc, PAGE_SIZE) * PAGE_SIZE >>
                                         20));
                return err;
        }
        err = arch_vm_setup(vm);
        if (err) {
                vm_stop(vm, VM_STOP_LOAD_FAILED, "cannot build its nested page tables: %s",
                        keel_strerror(err));
                return err;
        }
        if (!vc->kernel[0])
                err = vm_build_image(vm, vc, &f->image);
        else if (vc->boot == KERNEL_BOOT_MULTIBOOT)
                err = vm_build_multiboot(vm, vc, f);
        else
                err = vm_build_linux(vm, vc, f);
        if (err)
                return err;
        pt_count_leaves(arch_vm_guest_pt(vm), leaves);
        runs[0] = '\0';
        if (vm->mem.count > 1)
                snprintf(runs, sizeof(runs), " (%u host runs)", vm->mem.count);
        LOG_INFO(
            "vm %s: %llu MiB at host %#llx%s, %s %s (%llu bytes); second-level tables "
            "%llu pages, leaves %llu x 1G %llu x 2M %llu x 4K",
            vm->name, (unsigned long long)(vc->memory >> 20),
            (unsigned long long)hpa_raw(vm->mem.regions[0].backing), runs,
            vc->kernel[0] ? "kernel" : "image", f->image.path, (unsigned long long)f->image.size,
            (unsigned long long)arch_vm_guest_pt(vm)->table_pages, (unsigned long long)leaves[2],
            (unsigned long long)leaves[1], (unsigned long long)leaves[0]);
        return 0;
}

void vm_disks_plan(const struct boot_info *bi)
{
        hpa_t pa;
        int err = palloc_alloc(
            &keel_palloc,
            2 * align_up(sizeof(struct vdisk) * bi->config->vm_count, PAGE_SIZE) / PAGE_SIZE,
            PAGE_SIZE, &pa);
        struct vdisk_scratch *s;

        if (err)
                panic("no memory to plan the VMs' disks: %s", keel_strerror(err));
        disk_plan = hva_ptr(arch_hpa_to_hva(pa));
        snap_plan = (void *)((uint8_t *)disk_plan +
                             align_up(sizeof(struct vdisk) * bi->config->vm_count, PAGE_SIZE));
        err = palloc_alloc(&keel_palloc, SCRATCH_PAGES, PAGE_SIZE, &pa);
        if (err)
                panic("no memory to read the disks' GPTs: %s", keel_strerror(err));
        s = hva_ptr(arch_hpa_to_hva(pa));
        vdisk_plan(bi->config, bi->has_esp_uuid ? bi->esp_uuid : NULL, s, disk_plan);
        vdisk_plan_snapshots(bi->config, bi->has_esp_uuid ? bi->esp_uuid : NULL, s, disk_plan,
                             snap_plan);
        CHECK(palloc_free(&keel_palloc, pa, SCRATCH_PAGES) == 0);
}

void vm_release(struct vm *vm)
{
        if (vm->devices && vm->devices->blk.t)
                virtio_blk_quiesce(&vm->devices->blk); /* no DMA into RAM about to be freed */
        arch_vm_teardown(vm);
        if (vm->devices && vm->devices->blk.t) {
                const struct virtio_blk *b = &vm->devices->blk;

                LOG_INFO("vm %s: virtio-blk0: %llu reads, %llu writes, %llu flushes, %llu "
                         "errors, %llu bounced, at most %llu in flight, %llu interrupts, %llu "
                         "notifies",
                         vm->name, (unsigned long long)b->reads, (unsigned long long)b->writes,
                         (unsigned long long)b->flushes, (unsigned long long)b->errors,
                         (unsigned long long)b->bounced, (unsigned long long)b->max_out,
                         (unsigned long long)b->interrupts, (unsigned long long)b->notifies);
        }
        if (vm->devices) {
                int err = palloc_free(&keel_palloc, arch_hva_to_hpa(hva_from_ptr(vm->devices)),
                                      VM_DEVICES_PAGES);

                CHECK(err == 0);
                vm->devices = NULL;
        }
        for (unsigned i = 0; i < vm->mem.count; i++) {
                const struct gmem_region *r = &vm->mem.regions[i];
                int err = palloc_free(&keel_palloc, r->backing, r->size / PAGE_SIZE);

                CHECK(err == 0);
        }
        vm->mem.count = 0;
}

__attribute__((cold)) bool vm_snap_part(const struct vm *vm, const struct vm_config *vc,
                                        struct snap_part *p, char *names, size_t n)
{
        const struct vdisk *v = &snap_plan[vm->id];

        if (vc->snap_dev.kind == DISK_FILE || !v->dev)
                return false;
        *p = (struct snap_part){
            .dev = v->dev, .start = v->start, .blocks = v->blocks, .name = names};
        vdisk_spec_text(&vc->snap_dev, names, (unsigned)(n / 2));
        if (vc->disk_dev.kind != DISK_FILE) {
                p->disk = names + n / 2;
                vdisk_spec_text(&vc->disk_dev, names + n / 2, (unsigned)(n / 2));
        }
        return true;
}

void vm_devices_idle(struct vm *vm)
{
        if (vm->devices && vm->devices->blk.t && vm->devices->blk.dev)
                virtio_blk_idle(&vm->devices->blk);
}

void vm_disks_quiesce(struct vm *vm)
{
        if (vm->devices && vm->devices->blk.t)
                virtio_blk_drain(&vm->devices->blk); /* the disk keeps working afterwards */
}

/* Snapshots (vmm/snapshot.h): the transports and the disk, then the console's transport. */
__attribute__((cold)) uint64_t vm_devices_snap_max(const struct vm *vm)
{
        const struct vm_devices *d = vm->devices;

        return d ? 2 * VIRTIO_SNAP_MAX + (d->blk.t && !d->blk.dev ? d->blk.size : 0) : 0;
}

__attribute__((cold)) uint32_t vm_devices_snap_set(const struct vm *vm)
{
        const struct vm_devices *d = vm->devices;

        return !d ? 0 : (d->blk.t ? SNAP_DEV_VBLK : 0) | (d->con.t ? SNAP_DEV_VCON : 0);
}

__attribute__((cold)) void vm_devices_save(struct vm *vm, struct snap_buf *b)
{
        struct vm_devices *d = vm->devices;

        if (d && d->blk.t) {
                virtio_mmio_save(&d->blk_t, b);
                virtio_blk_save(&d->blk, b);
        }
        if (d && d->con.t)
                virtio_mmio_save(&d->con_t, b);
}

__attribute__((cold)) int vm_devices_load(struct vm *vm, struct snap_rd *r)
{
        struct vm_devices *d = vm->devices;
        int err = 0;

        if (d && d->blk.t)
                err = virtio_mmio_load(&d->blk_t, r);
        if (!err && d && d->blk.t)
                err = virtio_blk_load(&d->blk, r);
        if (!err && d && d->con.t)
                err = virtio_mmio_load(&d->con_t, r);
        return err;
}
