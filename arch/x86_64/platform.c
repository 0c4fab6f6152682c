/*
 * The x86 platform of a Linux VM: Keel's local APIC and I/O APIC models on the VM's MMIO
 * bus, interrupt lines (GSI = I/O APIC pin), COM1's interrupt and input, the guest's ACPI
 * tables, the Linux boot protocol, and what a halted vCPU waits for. Vendor-neutral: the SVM
 * (and later VMX) backend asks x86_pending_irq / x86_halt and reports x86_irq_injected.
 *
 * VMs that run a plain image (the test guests) have none of this: x86_platform_on is false
 * and they keep the minimal platform of docs/guest-entry.md.
 */
#include <stdio.h>
#include <string.h>

#include <arch/cpu.h>
#include <arch/host_timer.h>
#include <arch/linux_boot.h>
#include <arch/platform.h>
#include <arch/x86.h>
#include <arch/x86_vcpu.h>
#include <drivers/uart16550.h>
#include <keel/arch.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/irq.h>
#include <keel/log.h>
#include <keel/palloc.h>
#include <keel/sched.h>
#include <keel/smp.h>
#include <keel/spinlock.h>
#include <keel/time.h>
#include <vmm/acpi.h>
#include <vmm/build.h>
#include <vmm/config.h>
#include <vmm/multiboot.h>
#include <vmm/vmm.h>

#define RESET_VECTOR          0xffff0ull
#define KBC_STATUS_PORT       0x64
#define KBC_CMD_RESET         0xfe
#define RESET_CONTROL_PORT    0xcf9
#define RESET_CONTROL_RST_CPU 0x04
/* QEMU's pc-testdev (config pc_testdev = yes): writing V to 0x2000 + n sets line n to V & 1. */
#define PC_TESTDEV_IRQ_PORT 0x2000
#define PC_TESTDEV_LINES    24
#define PC_TESTDEV_LATCH    0xe0 /* 0xe0-0xe3 */
/* Its "iomem": memory that reads back what was written, behind the MMIO emulator. */
#define PC_TESTDEV_IOMEM      0xff000000ull
#define PC_TESTDEV_IOMEM_SIZE 0x10000ull

#define VIRTIO_MMIO_BASE  X86_GUEST_DEVICES_BASE
#define VIRTIO_MMIO_SLOT  0x1000ull
#define VIRTIO_FIRST_GSI  5
#define LINUX_CMDLINE_MAX 1100 /* the command line Keel passes, tsc_early_khz included */

/* The LAPIC's clock: the vCPU's own TSC, in which the guest reads and sets its timer. */
static uint64_t tsc_now(void *ctx)
{
        const struct vcpu *vcpu = ctx;

        return arch_tsc() + vcpu->arch.tsc_offset;
}

static void lapic_eoi_vector(void *ctx, uint8_t vector)
{
        struct vcpu *vcpu = ctx;

        vioapic_eoi(&vcpu->vm->arch.ioapic, vector);
}

/*
 * Another vCPU's interrupt state changed (under vm->dev_lock): if it is running on another
 * CPU, make that CPU leave the guest so that the vCPU sees it at its next entry; a blocked
 * vCPU's CPU (maybe idle) is woken to poll arch_vcpu_ready. Racy reads of the scheduler's
 * fields are fine: a stale RUNNING costs one spurious exit, a vCPU that just started to run
 * takes its interrupts on entry.
 */
static void wake_vcpu(struct vcpu *target)
{
        enum sched_state st = __atomic_load_n(&target->sched.state, __ATOMIC_ACQUIRE);

        if (st == SCHED_RUNNING || st == SCHED_BLOCKED)
                arch_cpu_kick(__atomic_load_n(&target->sched.cpu, __ATOMIC_RELAXED));
}

/*
 * The 8259 pair's INT output reaches vCPU 0 through its LINT0 when that is unmasked in
 * ExtINT mode (virtual wire), and when its LAPIC is disabled (IA32_APIC_BASE.EN clear or SVR
 * software-disabled, as after reset: the INTR pin then goes to the core).
 */
static bool pic_to(const struct vcpu *v)
{
        const struct vlapic *l = &v->arch.lapic;

        return v->id == 0 && (!(l->svr & VLAPIC_SVR_ENABLE) ||
                              (l->lvt[VLAPIC_LVT_LINT0] & (VLAPIC_LVT_MASKED | 0x700)) == 0x700);
}

/* The PIC's state changed (under dev_lock): wake vCPU 0 if it now has an interrupt for it. */
static void pic_changed(struct vm *vm)
{
        if (pic_to(&vm->vcpus[0]) && vpic_pending(&vm->arch.pic) >= 0)
                wake_vcpu(&vm->vcpus[0]);
}

static void pic_line(struct vm *vm, unsigned irq, bool level)
{
        vpic_set_irq(&vm->arch.pic, irq, level);
        pic_changed(vm);
}

/* ISA IRQ `irq` as QEMU's PC wires it: I/O APIC pin `irq` (IRQ 0: pin 2) and, below 16, the
 * 8259's (pc_testdev's lines 16-23 reach the I/O APIC only). */
static void isa_irq(struct vm *vm, unsigned irq, bool level)
{
        vioapic_set_level(&vm->arch.ioapic, irq ? irq : 2, level);
        if (irq < 16)
                pic_line(vm, irq, level);
}

/* A device's line (irq.h, ctrl = the VM): I/O APIC pin `gsi`, and ISA IRQ `gsi` on the PIC as
 * on a PC (GSI 2 is ISA IRQ 0's I/O APIC pin; the PIC's IR2 is the cascade). */
static void isa_set_level(void *ctrl, unsigned gsi, bool level)
{
        struct vm *vm = ctrl;

        vioapic_set_level(&vm->arch.ioapic, gsi, level);
        if (gsi < 16 && gsi != 2)
                pic_line(vm, gsi, level);
}

static bool ioapic_deliver(void *ctx, uint8_t dest, bool logical, uint8_t vector, bool level,
                           bool lowest)
{
        struct vm *vm = ctx;
        bool taken = false;

        for (unsigned i = 0; i < vm->vcpu_count; i++) {
                struct vcpu *v = &vm->vcpus[i];

                if (v->arch.lapic.wait_sipi || !vlapic_match_dest(&v->arch.lapic, dest, logical))
                        continue;
                if (!vlapic_set_irq(&v->arch.lapic, vector, level))
                        continue;
                taken = true;
                wake_vcpu(v);
                if (lowest)
                        break; /* lowest priority: the first that accepts */
        }
        return taken;
}

/* A vCPU wrote its ICR (under vm->dev_lock): deliver to the VM's LAPICs. */
static void lapic_send_ipi(void *ctx, struct vlapic *src)
{
        struct vcpu *vcpu = ctx;
        struct vm *vm = vcpu->vm;
        struct vlapic *all[VLAPIC_MAX_GROUP];
        uint64_t changed, started;

        _Static_assert(VM_MAX_VCPUS <= VLAPIC_MAX_GROUP, "a LAPIC mask bit per vCPU");

        for (unsigned i = 0; i < vm->vcpu_count; i++)
                all[i] = &vm->vcpus[i].arch.lapic;
        changed = vlapic_ipi_deliver(src, all, vm->vcpu_count, &started);
        for (unsigned i = 0; i < vm->vcpu_count; i++) {
                struct vcpu *v = &vm->vcpus[i];

                if (started & (1ull << i)) {
                        v->arch.start_pending = true;
                } else if (changed & (1ull << i)) {
                        /* An NMI wakes a vCPU parked with interrupts off (x86_halt). */
                        if (v->arch.lapic.nmi_pending)
                                v->arch.parked = false;
                        if (i != vcpu->id)
                                wake_vcpu(v);
                }
        }
        if (started)
                __atomic_or_fetch(&vm->arch.start_mask, started, __ATOMIC_RELEASE);
}

void x86_start_released(struct vm *vm)
{
        uint64_t mask = __atomic_exchange_n(&vm->arch.start_mask, 0, __ATOMIC_ACQUIRE);

        for (unsigned i = 0; i < vm->vcpu_count; i++)
                if (mask & (1ull << i)) {
                        LOG_INFO("vm %s: vCPU %u started (SIPI vector %#x)", vm->name, i,
                                 vm->vcpus[i].arch.lapic.sipi_vector);
                        vm_vcpu_started(&vm->vcpus[i]);
                }
}

/*
 * KVM's paravirtual EOI (vlapic.pv_eoi, docs/x86-interrupts.md), under vm->dev_lock. The flag
 * is bit 0 of the byte at the MSR's address, in guest RAM; Keel reads and writes it only while
 * the vCPU is out of the guest, and the guest clears it with one instruction (Linux: BTR)
 * in place of writing EOI. Reading it costs nothing while Keel has not set it.
 */
static gpa_t pv_eoi_flag(const struct vlapic *l)
{
        return gpa(l->pv_eoi & ~3ull);
}

/* Before the LAPIC's state is used: a flag Keel set that the guest has cleared was its EOI.
 * A flag that cannot be read counts as cleared. */
static void pv_eoi_sync(struct vcpu *vcpu)
{
        struct vlapic *l = &vcpu->arch.lapic;
        const volatile uint8_t *flag;

        if (!l->pv_eoi_set)
                return;
        flag = gmem_peek(&vcpu->vm->mem, pv_eoi_flag(l), 1);
        if (flag && (*flag & 1))
                return;
        l->pv_eoi_set = false;
        vlapic_eoi(l);
}

/* Before an entry, after pv_eoi_sync: the flag is set while the guest may end what is in
 * service with it (vlapic_pv_eoi_ok) and cleared (withdrawn) when it may no longer. */
static void pv_eoi_arm(struct vcpu *vcpu)
{
        static const uint8_t flag[2] = {0, 1};
        struct vlapic *l = &vcpu->arch.lapic;
        bool want = (l->pv_eoi & 1) && vlapic_pv_eoi_ok(l);

        if (want != l->pv_eoi_set &&
            gmem_write(&vcpu->vm->mem, pv_eoi_flag(l), &flag[want], 1) == 0)
                l->pv_eoi_set = want;
}

bool x86_pv_eoi_msr(struct vcpu *vcpu, uint64_t val)
{
        struct vlapic *l = &vcpu->arch.lapic;
        struct spin_held h;

        if ((val & 2) || ((val & 1) && !gmem_contains(&vcpu->vm->mem, gpa(val & ~3ull), 4)))
                return false;
        h = spin_lock(&vcpu->vm->dev_lock);
        pv_eoi_sync(vcpu);
        l->pv_eoi &= ~1ull; /* the old flag withdrawn, if Keel had set it */
        pv_eoi_arm(vcpu);
        l->pv_eoi = val;
        spin_unlock(h);
        return true;
}

/*
 * The LAPIC page: the accessing vCPU's own LAPIC (dev = the VM, under its dev_lock). With
 * IA32_APIC_BASE.EN clear the LAPIC does not decode its page (SDM 10.4.3): as on a PC with
 * nothing there, and as KVM does, reads give all ones and writes are dropped, whatever the
 * access size.
 */
static void lapic_page_read(void *dev, uint64_t offset, unsigned size, uint64_t *val)
{
        struct vm *vm = dev;
        struct vcpu *v = vm->arch.dev_vcpu;

        if (v->arch.apic_off) {
                *val = size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
                return;
        }
        pv_eoi_sync(v);
        vlapic_mmio_ops.read(&v->arch.lapic, offset, size, val);
}

static void lapic_page_write(void *dev, uint64_t offset, unsigned size, uint64_t val)
{
        struct vm *vm = dev;
        struct vcpu *v = vm->arch.dev_vcpu;

        if (v->arch.apic_off)
                return;
        pv_eoi_sync(v);
        vlapic_mmio_ops.write(&v->arch.lapic, offset, size, val);
}

static const struct mmio_ops lapic_page_ops = {
    .read = lapic_page_read,
    .write = lapic_page_write,
};

/* pc_testdev's iomem (dev = its bytes, under the VM's dev_lock): little-endian RAM. */
static void testdev_mem_read(void *dev, uint64_t offset, unsigned size, uint64_t *val)
{
        memcpy(val, (uint8_t *)dev + offset, size);
}

static void testdev_mem_write(void *dev, uint64_t offset, unsigned size, uint64_t val)
{
        memcpy((uint8_t *)dev + offset, &val, size);
}

static const struct mmio_ops testdev_mem_ops = {
    .read = testdev_mem_read,
    .write = testdev_mem_write,
};

/* pc_testdev = yes: its iomem pages (zeroed; arch_vm_teardown frees them) on the bus. */
static int testdev_mem_init(struct vm *vm)
{
        hpa_t pa;
        int err = palloc_alloc(&keel_palloc, PC_TESTDEV_IOMEM_SIZE / PAGE_SIZE, PAGE_SIZE, &pa);

        if (err)
                return err;
        vm->arch.testdev_mem = hva_ptr(arch_hpa_to_hva(pa));
        return mmio_bus_add(&vm->mmio, gpa(PC_TESTDEV_IOMEM), PC_TESTDEV_IOMEM_SIZE,
                            &testdev_mem_ops, vm->arch.testdev_mem, "pc-testdev-iomem");
}

void x86_testdev_mem_free(struct vm *vm)
{
        if (!vm->arch.testdev_mem)
                return;
        CHECK(palloc_free(&keel_palloc, arch_hva_to_hpa(hva_from_ptr(vm->arch.testdev_mem)),
                          PC_TESTDEV_IOMEM_SIZE / PAGE_SIZE) == 0);
        vm->arch.testdev_mem = NULL;
}

struct irq_line arch_irq_line(struct vm *vm, unsigned gsi)
{
        return (struct irq_line){isa_set_level, vm, gsi};
}

void arch_virtio_slot(unsigned n, gpa_t *base, uint64_t *size, unsigned *gsi)
{
        *base = gpa(VIRTIO_MMIO_BASE + n * VIRTIO_MMIO_SLOT);
        *size = VIRTIO_MMIO_SLOT;
        *gsi = VIRTIO_FIRST_GSI + n;
}

/*
 * The shortest period of a guest's periodic LAPIC timer (as KVM's min_timer_period_us): a
 * shorter one would interrupt the guest's code before it ran an instruction (found by
 * hostile_lapic: initial count 1, divide 1).
 */
#define LAPIC_MIN_PERIOD_US 200

static int platform_init(struct vm *vm)
{
        struct vm_arch *a = &vm->arch;
        const struct vioapic_cb cb = {ioapic_deliver, vm};
        struct irq_line com1 = arch_irq_line(vm, ACPI_COM1_GSI);
        int err;

        for (unsigned i = 0; i < vm->vcpu_count; i++) {
                struct vcpu *v = &vm->vcpus[i];
                const struct vlapic_env env = {tsc_now, lapic_eoi_vector, lapic_send_ipi, v,
                                               tsc_from_us(LAPIC_MIN_PERIOD_US)};

                vlapic_init(&v->arch.lapic, i, &env);
                v->arch.lapic.wait_sipi = i != 0; /* APs wait for the guest's INIT-SIPI-SIPI */
                v->arch.apic_off = false;
                v->arch.v_tpr = 0;
                v->arch.nmi_blocked = v->arch.nmi_iret_wait = v->arch.nmi_step = false;
                x86_misc_enable_reset(v);
        }
        vioapic_init(&a->ioapic, &cb);
        vpic_init(&a->pic);
        a->pit.irq_at = UINT64_MAX; /* no PIT unless a Multiboot VM's (vpit_init) */
        err = mmio_bus_add(&vm->mmio, gpa(VLAPIC_BASE), VLAPIC_SIZE, &lapic_page_ops, vm, "lapic");
        if (!err)
                err = mmio_bus_add(&vm->mmio, gpa(VIOAPIC_BASE), VIOAPIC_SIZE, &vioapic_mmio_ops,
                                   &a->ioapic, "ioapic");
        if (!err && vm->pc_testdev)
                err = testdev_mem_init(vm);
        if (err)
                return err;
        vuart_set_irq(&a->uart, &com1);
        a->platform = true;
        for (unsigned i = 0; i < vm->vcpu_count; i++)
                vm->vcpus[i].arch.cpuid.lapic = true;
        return 0;
}

/*
 * The reset vector (0xffff0): Linux's last-resort reboot switches to real mode and jumps there,
 * into firmware. Keel's "firmware" is this stub, which resets the VM through the reset control
 * register: mov dx, 0xcf9; mov al, 6; out dx, al; hlt; jmp $-1.
 */
static int write_reset_stub(struct vm *vm)
{
        static const uint8_t reset_stub[] = {0xba, 0xf9, 0x0c, 0xb0, 0x06, 0xee, 0xf4, 0xeb, 0xfd};

        return gmem_write(&vm->mem, gpa(RESET_VECTOR), reset_stub, sizeof(reset_stub));
}

/* The VM's RAM (arch/ram_layout.h): *low bytes from 0, *high bytes from *hb (0: none). */
static void ram_runs(const struct vm *vm, uint64_t *low, uint64_t *hb, uint64_t *high)
{
        *low = *high = 0;
        gmem_next_run(&vm->mem, 0, hb, low); /* from 0: linux_boot / multiboot check that */
        gmem_next_run(&vm->mem, *low, hb, high);
}

/* Linux's flat GDT: __BOOT_CS = 0x10 (64-bit code), __BOOT_DS = 0x18. */
#define LINUX_GDT 0x500

int arch_vm_load_linux(struct vm *vm, const struct boot_vm_files *f, const char *cmdline,
                       const struct vm_virtio_desc *devs, unsigned ndevs)
{
        static const uint64_t gdt[4] = {0, 0, 0x00af9b000000ffffull, 0x00cf93000000ffffull};
        struct acpi_virtio_mmio virtio[ACPI_MAX_VIRTIO];
        struct acpi_config acfg = {.num_cpus = vm->vcpu_count, .ioapic_id = 1, .com1 = true};
        struct acpi_tables tables;
        struct linux_boot_info info;
        struct linux_boot_req req;
        char line[LINUX_CMDLINE_MAX];
        uint64_t ram, hb, high;
        int err;

        ram_runs(vm, &ram, &hb, &high);
        if (ndevs > ACPI_MAX_VIRTIO)
                return -KEEL_E2BIG;
        err = platform_init(vm);
        if (err)
                return err;
        for (unsigned i = 0; i < ndevs; i++)
                virtio[i] = (struct acpi_virtio_mmio){gpa_raw(devs[i].base), (uint32_t)devs[i].size,
                                                      devs[i].gsi};
        acfg.virtio = virtio;
        acfg.num_virtio = ndevs;
        err = acpi_install(&acfg, &vm->mem, gpa(ACPI_WINDOW_BASE), ACPI_WINDOW_SIZE, &tables);
        if (err < 0) { /* >= 0: bytes used */
                LOG_ERR("vm %s: cannot write its ACPI tables: %s", vm->name, keel_strerror(err));
                return err;
        }
        err = write_reset_stub(vm);
        if (err)
                return err;
        /*
         * Linux must not calibrate the TSC against a PIT it does not have. With several vCPUs
         * it would also call the TSC unsynchronized (no invariant-TSC bit, e.g. under QEMU)
         * and fall back to jiffies, but every vCPU reads the same host TSC (Keel's own
         * clock, which it keeps in step across CPUs): tsc=reliable says so.
         */
        snprintf(line, sizeof(line), "%s%stsc_early_khz=%llu%s", cmdline ? cmdline : "",
                 cmdline && cmdline[0] ? " " : "", (unsigned long long)arch_tsc_khz(),
                 vm->vcpu_count > 1 ? " tsc=reliable" : "");
        req = (struct linux_boot_req){
            .name = f->image.path,
            .kernel = f->image.data,
            .kernel_size = f->image.size,
            .initrd = f->initrd.size ? f->initrd.data : NULL,
            .initrd_size = f->initrd.size,
            .initrd_name = f->initrd.path,
            .cmdline = line,
            .rsdp_gpa = gpa_raw(tables.rsdp),
            .ram_size = ram,
            .high_base = hb,
            .high_size = high,
            .acpi_base = gpa(ACPI_WINDOW_BASE),
            .acpi_size = ACPI_WINDOW_SIZE,
        };
        err = linux_boot_load(&vm->mem, &req, &info);
        if (err < 0)
                return err;
        err = gmem_write(&vm->mem, gpa(LINUX_GDT), gdt, sizeof(gdt));
        if (err)
                return err;
        LOG_INFO("vm %s: Linux boot protocol %u.%02u, kernel at %#llx, initrd %llu bytes at "
                 "%#llx, ACPI RSDP at %#llx",
                 vm->name, info.protocol >> 8, info.protocol & 0xff,
                 (unsigned long long)gpa_raw(info.kernel_load),
                 (unsigned long long)info.initrd_size, (unsigned long long)gpa_raw(info.initrd),
                 (unsigned long long)gpa_raw(tables.rsdp));
        return x86_vcpu_setup_state(&vm->vcpus[0], info.entry64, LINUX_GDT, sizeof(gdt) - 1,
                                    LINUX_BOOT_CS, LINUX_BOOT_DS, gpa_raw(info.boot_params));
}

/*
 * A Multiboot VM's layout: the top of conventional memory holds the info area and the GDT
 * (the ACPI tables and the reset stub lie above, up to 1 MiB), all kept from the kernel and
 * its module and reserved in the memory map. The rest of low memory is the kernel's: some
 * load there (kvm-unit-tests' realmode at 0x8000), as QEMU's -kernel allows.
 */
#define MULTIBOOT_KEEL_LOW 0x9c000ull /* [here, 1 MiB): Keel's */
#define MULTIBOOT_INFO_GPA 0x9c000ull /* MULTIBOOT_INFO_AREA (8 KiB) */
#define MULTIBOOT_GDT      0x9e000ull
#define MULTIBOOT_CS       0x10 /* flat 32-bit code */
#define MULTIBOOT_DS       0x18
#define MULTIBOOT_LOW_END  0x100000ull

/*
 * What a real-mode guest finds of SeaBIOS (ending an interrupt it does not handle itself):
 * every vector of the interrupt vector table at the PC BIOS's dummy IRET (F000:FF53), the
 * master 8259's (8-15) at its IRQ 0 entry (F000:FEA5), the slave's (0x70-0x77) just after
 * it. Each handler sends its 8259s a non-specific EOI and returns: push ax; mov al, 0x20;
 * [out 0xa0, al;] out 0x20, al; pop ax; iret. (SeaBIOS's IRQ 0 handler also counts ticks in
 * the BIOS data area and calls INT 0x1c; these do not.) Written before the kernel, which
 * may load over it.
 */
#define BIOS_IRQ_MASTER 0xf000fea5u /* segment:offset */
#define BIOS_IRQ_SLAVE  0xf000feacu
#define BIOS_IRET       0xf000ff53u

static int write_bios_vectors(struct vm *vm)
{
        static const uint8_t irq[] = {0x50, 0xb0, 0x20, 0xe6, 0x20, 0x58, 0xcf, /* FEA5 */
                                      0x50, 0xb0, 0x20, 0xe6, 0xa0, 0xe6, 0x20, 0x58, 0xcf};
        uint32_t *ivt;
        hpa_t pa;
        int err = gmem_translate(&vm->mem, gpa(0), 1024, &pa);

        if (!err)
                err = gmem_write(&vm->mem, gpa(0xffea5), irq, sizeof(irq));
        if (!err)
                err = gmem_fill(&vm->mem, gpa(0xfff53), 0xcf, 1); /* iret */
        if (err)
                return err;
        ivt = hva_ptr(arch_hpa_to_hva(pa));
        for (unsigned v = 0; v < 256; v++)
                ivt[v] = (v & ~7u) == 8      ? BIOS_IRQ_MASTER
                         : (v & ~7u) == 0x70 ? BIOS_IRQ_SLAVE
                                             : BIOS_IRET;
        return 0;
}

int arch_vm_load_multiboot(struct vm *vm, const struct boot_vm_files *f, const char *cmdline)
{
        static const uint64_t gdt[4] = {0, 0, 0x00cf9b000000ffffull, 0x00cf93000000ffffull};
        struct acpi_config acfg = {.num_cpus = vm->vcpu_count, .ioapic_id = 1, .com1 = true};
        struct acpi_tables tables;
        struct multiboot_module mod;
        struct multiboot_out out;
        struct multiboot_req req;
        char line[CONFIG_PATH_MAX + CONFIG_CMDLINE_MAX + 2];
        uint64_t ram, hb, high;
        struct multiboot_mmap map[4] = {
            {0, MULTIBOOT_KEEL_LOW, MULTIBOOT_MEM_RAM},
            {MULTIBOOT_KEEL_LOW, MULTIBOOT_LOW_END - MULTIBOOT_KEEL_LOW, MULTIBOOT_MEM_RESERVED},
            {MULTIBOOT_LOW_END, 0, MULTIBOOT_MEM_RAM},
            {0, 0, MULTIBOOT_MEM_RAM},
        };
        int err;

        ram_runs(vm, &ram, &hb, &high);
        map[2].size = ram - MULTIBOOT_LOW_END;
        map[3] = (struct multiboot_mmap){hb, high, MULTIBOOT_MEM_RAM};
        err = platform_init(vm);
        if (err)
                return err;
        /* No firmware: the PICs, the PIT and the real-mode vectors as SeaBIOS leaves them. */
        vpic_bios_state(&vm->arch.pic);
        vpit_init(&vm->arch.pit, arch_tsc_khz() * 1000, arch_tsc());
        vm->arch.has_pit = true;
        err = acpi_install(&acfg, &vm->mem, gpa(ACPI_WINDOW_BASE), ACPI_WINDOW_SIZE, &tables);
        if (err < 0) {
                LOG_ERR("vm %s: cannot write its ACPI tables: %s", vm->name, keel_strerror(err));
                return err;
        }
        err = write_reset_stub(vm);
        if (!err)
                err = gmem_write(&vm->mem, gpa(MULTIBOOT_GDT), gdt, sizeof(gdt));
        if (!err)
                err = write_bios_vectors(vm);
        if (err)
                return err;
        /* As QEMU's -kernel: the kernel's command line starts with its file name. */
        snprintf(line, sizeof(line), "%s%s%s", f->image.path, cmdline && cmdline[0] ? " " : "",
                 cmdline ? cmdline : "");
        mod = (struct multiboot_module){f->initrd.path, f->initrd.data, f->initrd.size,
                                        f->initrd.path};
        req = (struct multiboot_req){
            .name = f->image.path,
            .image = f->image.data,
            .size = f->image.size,
            .cmdline = line,
            .mods = &mod,
            .nmods = f->initrd.path && f->initrd.path[0] ? 1 : 0,
            .ram_size = ram,
            .mmap = map,
            .nmmap = high ? 4 : 3,
            .info = gpa(MULTIBOOT_INFO_GPA),
            .reserved_base = gpa(MULTIBOOT_KEEL_LOW),
            .reserved_size = MULTIBOOT_LOW_END - MULTIBOOT_KEEL_LOW,
        };
        err = multiboot_load(&vm->mem, &req, &out);
        if (err)
                return err;
        LOG_INFO("vm %s: Multiboot kernel at %#llx-%#llx, entry %#llx, %u module(s), ACPI "
                 "RSDP at %#llx",
                 vm->name, (unsigned long long)out.kernel_lo, (unsigned long long)out.kernel_hi,
                 (unsigned long long)gpa_raw(out.entry), req.nmods,
                 (unsigned long long)gpa_raw(tables.rsdp));
        return x86_vcpu_setup_prot32(&vm->vcpus[0], out.entry, MULTIBOOT_GDT, sizeof(gdt) - 1,
                                     MULTIBOOT_CS, MULTIBOOT_DS, MULTIBOOT_BOOTLOADER_MAGIC,
                                     (uint32_t)gpa_raw(out.info));
}

/* Under vm->dev_lock. */
static int pending_irq_locked(struct vcpu *vcpu)
{
        struct vm *vm = vcpu->vm;
        int v;

        /* The PIT counts in Keel's TSC, the LAPIC's timer in the vCPU's own. */
        if (vpit_update(&vm->arch.pit, arch_tsc())) { /* OUT 0 rose: IRQ 0's edge (no PIT: never) */
                isa_irq(vm, 0, true);
                isa_irq(vm, 0, false);
        }
        vlapic_timer_update(&vcpu->arch.lapic, tsc_now(vcpu));
        v = vlapic_pending(&vcpu->arch.lapic);
        return v < 0 && pic_to(vcpu) ? vpic_pending(&vcpu->vm->arch.pic) : v;
}

void x86_entry_poll(void)
{
        if (irq_poll_entry())
                x86_host_tick(); /* the timer for what is left: what it waited for may be gone */
}

/*
 * Before each entry and when the scheduler polls a blocked vCPU (on the CPU that would run
 * it): also make the host timer fire at the LAPIC timer's next expiry or the PIT's next IRQ 0
 * edge, so that it is delivered then rather than at the next host tick.
 */
int x86_pending_irq(struct vcpu *vcpu)
{
        struct spin_held h;
        uint64_t next, now, pit;
        int v;

        if (!vcpu->vm->arch.platform)
                return -1;
        h = spin_lock(&vcpu->vm->dev_lock);
        pv_eoi_sync(vcpu);
        v = pending_irq_locked(vcpu);
        if (v < 0) /* else x86_irq_injected arms it, or the flag waits for the window */
                pv_eoi_arm(vcpu);
        next = vlapic_next_deadline(&vcpu->arch.lapic);
        pit = vcpu->vm->arch.pit.irq_at; /* in Keel's TSC; no PIT: UINT64_MAX */
        spin_unlock(h);
        if (next != UINT64_MAX) { /* in the guest's TSC: as far ahead in Keel's */
                now = tsc_now(vcpu);
                next = next > now ? next - now : 0;
                now = arch_tsc();
                next = next > UINT64_MAX - now ? UINT64_MAX : now + next;
        }
        if (pit < next)
                next = pit;
        if (next != UINT64_MAX)
                arch_timer_by(next);
        return v;
}

bool x86_take_nmi(struct vcpu *vcpu)
{
        struct spin_held h = spin_lock(&vcpu->vm->dev_lock);
        bool nmi = vlapic_take_nmi(&vcpu->arch.lapic);

        spin_unlock(h);
        return nmi;
}

void x86_nmi_blocked(struct vcpu *vcpu)
{
        struct spin_held h = spin_lock(&vcpu->vm->dev_lock);

        vlapic_nmi_blocked(&vcpu->arch.lapic);
        spin_unlock(h);
}

bool x86_nmi_wakes(struct vcpu *vcpu)
{
        return x86_nmi_pending(vcpu) && !vcpu->arch.nmi_blocked;
}

uint8_t x86_irq_injected(struct vcpu *vcpu, uint8_t vector)
{
        struct spin_held h = spin_lock(&vcpu->vm->dev_lock);
        int v = vlapic_pending(&vcpu->arch.lapic);

        /* The LAPIC's highest now (another vCPU may have added one), else the PIC's INTA. */
        if (v < 0 && pic_to(vcpu))
                v = vpic_intack(&vcpu->vm->arch.pic);
        else
                vlapic_accept(&vcpu->arch.lapic, v < 0 ? vector : (uint8_t)v);
        pv_eoi_arm(vcpu);
        spin_unlock(h);
        return v < 0 ? vector : (uint8_t)v;
}

static void poll_console_locked(struct vm *vm)
{
        uint8_t buf[16];
        size_t room, n;

        if (!vcons_input_pending(&vm->console))
                return;
        room = vuart_rx_room(&vm->arch.uart);
        n = vcons_input_pop(&vm->console, buf, room < sizeof(buf) ? room : sizeof(buf));
        if (n)
                vuart_input(&vm->arch.uart, buf, n);
}

void x86_poll_console(struct vm *vm)
{
        struct spin_held h;

        if (!vm->arch.platform || !vcons_input_pending(&vm->console))
                return;
        h = spin_lock(&vm->dev_lock);
        poll_console_locked(vm);
        spin_unlock(h);
}

void x86_stop_halted(struct vcpu *vcpu, uint64_t rip, bool interrupts_enabled)
{
        vm_stop(vcpu->vm, VM_STOP_HALTED,
                "HLT at rip %#llx with interrupts %s and no virtual interrupt source to wake it",
                (unsigned long long)rip, interrupts_enabled ? "enabled" : "disabled");
}

bool x86_halt(struct vcpu *vcpu, bool interrupts_enabled)
{
        struct vm *vm = vcpu->vm;
        struct spin_held h;
        unsigned awake = 0;

        if (!vm->arch.platform)
                return false;
        if (x86_nmi_wakes(vcpu))
                return true; /* the backend delivers it at the next entry */
        h = spin_lock(&vm->dev_lock);
        if (!interrupts_enabled) {
                /*
                 * With interrupts off only an NMI or INIT could wake it (INIT is not delivered to
                 * a running vCPU here). Alone, that is a hang: the caller stops the VM. On an SMP
                 * VM it is how Linux parks a CPU it stops (poweroff, panic): the vCPU never
                 * runs again unless another vCPU sends it an NMI, and the VM stops when all its
                 * started vCPUs are parked.
                 */
                bool parked = vm->vcpu_count > 1;

                vcpu->arch.parked = parked;
                for (unsigned i = 0; i < vm->vcpu_count; i++)
                        if (!vm->vcpus[i].arch.lapic.wait_sipi && !vm->vcpus[i].arch.parked)
                                awake++;
                spin_unlock(h);
                /* Decided under the lock: an NMI may unpark it as soon as it is dropped. */
                if (!parked || !awake)
                        return false;
                vcpu->arch.leave = VCPU_RUN_BLOCKED;
                return true;
        }
        vcons_show_partial(&vm->console); /* a prompt waits for input: show it */
        vm_devices_idle(vm);
        poll_console_locked(vm);
        if (pending_irq_locked(vcpu) < 0)
                vcpu->arch.leave = VCPU_RUN_BLOCKED; /* the scheduler polls arch_vcpu_ready */
        spin_unlock(h);
        return true;
}

bool arch_vcpu_ready(struct vcpu *vcpu)
{
        if (!vcpu->vm->arch.platform)
                return true;
        if (x86_nmi_wakes(vcpu))
                return true;
        if (vcpu->arch.parked)
                return false;
        return vcons_input_pending(&vcpu->vm->console) || x86_pending_irq(vcpu) >= 0;
}

void x86_host_interrupt(struct vcpu *vcpu)
{
        x86_service_interrupts();
        irq_poll_deferred(); /* a device handler's completions, outside interrupt context */
        x86_poll_console(vcpu->vm);
        if (x86_rdtsc() >= vcpu->arch.deadline)
                vcpu->arch.leave = VCPU_RUN_PREEMPTED;
}

int arch_console_getc(void)
{
        return uart16550_getc(COM1_PORT);
}

/*
 * The 8259 pair's, the ELCR's and (Multiboot VMs) the PIT's ports: true if `port` is one. Out
 * of line: its byte local would give x86_platform_io a stack-protector check, and a call in
 * its middle saved registers, on every port exit.
 */
static __attribute__((noinline)) bool pic_io(struct vm *vm, uint16_t port, unsigned size, bool in,
                                             uint32_t *val)
{
        uint8_t b = (uint8_t)*val;

        /* Byte accesses only: 8-bit ports (a wider access is left unclaimed). */
        if (size != 1)
                return false;
        /* The PIT's: a new channel 0 count reaches the host timer at the next entry. */
        if (!vm->arch.has_pit || !vpit_io(&vm->arch.pit, port, in, &b, arch_tsc())) {
                if (!vpic_io(&vm->arch.pic, port, in, &b))
                        return false;
                pic_changed(vm);
        }
        if (in)
                *val = b;
        return true;
}

bool x86_platform_port(struct vcpu *vcpu, uint16_t port, unsigned size, bool in, uint32_t *val)
{
        struct vm *vm = vcpu->vm;

        if (vm->pc_testdev && port >= PC_TESTDEV_IRQ_PORT &&
            port < PC_TESTDEV_IRQ_PORT + PC_TESTDEV_LINES) {
                unsigned line = port - PC_TESTDEV_IRQ_PORT;

                if (in)
                        *val = 0;
                else
                        isa_irq(vm, line, *val & 1);
                return true;
        }
        if (vm->pc_testdev && port >= PC_TESTDEV_LATCH && port < PC_TESTDEV_LATCH + 4) {
                /* Four bytes that read back what was written, at any offset and width. */
                unsigned shift = 8 * (port - PC_TESTDEV_LATCH);
                uint32_t mask = (size >= 4 ? ~0u : (1u << (8 * size)) - 1) << shift;

                if (in)
                        *val = (vm->arch.testdev_latch & mask) >> shift;
                else
                        vm->arch.testdev_latch =
                            (vm->arch.testdev_latch & ~mask) | ((*val << shift) & mask);
                return true;
        }
        switch (port) {
        case ACPI_SLEEP_CONTROL_PORT:
                if (!in && acpi_sleep_control_is_poweroff((uint8_t)*val))
                        vm_stop(vm, VM_STOP_POWEROFF,
                                "the guest powered off (ACPI sleep state S5)");
                else if (in)
                        *val = 0;
                return true;
        case ACPI_SLEEP_STATUS_PORT:
                if (in)
                        *val = 0;
                return true;
        case ACPI_RESET_PORT:
                if (!in && (uint8_t)*val == ACPI_RESET_VALUE)
                        vm_stop(vm, VM_STOP_REBOOT,
                                "the guest asked for a reset (ACPI reset register)");
                else if (in)
                        *val = 0;
                return true;
        case KBC_STATUS_PORT:
                /* The PC's other reset paths, which Linux tries after ACPI's: the keyboard
                 * controller's pulse-reset command and the reset control register. */
                if (!in && (uint8_t)*val == KBC_CMD_RESET)
                        vm_stop(vm, VM_STOP_REBOOT,
                                "the guest asked for a reset (keyboard controller)");
                else if (in)
                        *val = 0; /* no controller: input buffer never full */
                return true;
        case RESET_CONTROL_PORT:
                if (!in && (*val & RESET_CONTROL_RST_CPU))
                        vm_stop(vm, VM_STOP_REBOOT, "the guest asked for a reset (port 0xcf9)");
                else if (in)
                        *val = 0;
                return true;
        }
        return pic_io(vm, port, size, in, val); /* last: a tail call, no registers to keep */
}
