/*
 * Hooks the arch provides to the VMM core (declared once here; x86_64 picks SVM or, later,
 * VMX at run time behind them; arm64 implements them with EL2).
 */
#ifndef VMM_VMM_H
#define VMM_VMM_H

#include <stdbool.h>
#include <stddef.h>

#include <keel/boot.h>
#include <vmm/irq.h>
#include <vmm/vm.h>

/*
 * Can this CPU run VMs? Called before ExitBootServices. On failure writes one sentence to
 * `why` naming what is missing and what the user can do, and returns -KEEL_ENODEV.
 */
int arch_virt_probe(char *why, size_t len);
/* Take the machine: Keel's own GDT/IDT/page tables, interrupts quiet. After ExitBootServices. */
void arch_cpu_setup(const struct boot_info *bi);
/* Enable virtualization on this CPU (after arch_cpu_setup). Errors are Keel bugs: panics. */
void arch_virt_enable(void);
/* One line describing the virtualization features found, for the boot log. */
void arch_virt_describe(char *buf, size_t len);

/* Build the arch part of a VM whose RAM is already in vm->mem: second-level tables etc. */
int arch_vm_setup(struct vm *vm);
/* The VM's second-level tables (NPT, EPT, stage 2) once arch_vm_setup succeeded. */
const struct pt *arch_vm_guest_pt(const struct vm *vm);
/* Put vCPU 0 at `entry` in the documented entry state (docs/guest-entry.md). */
int arch_vcpu_setup(struct vcpu *vcpu, gpa_t entry);
/* Where a VM's RAM starts (0 on x86; 0x40000000 on arm64, as on QEMU's virt machine). */
gpa_t arch_guest_ram_base(void);
/*
 * Where a VM's `size` bytes of RAM lie in its guest-physical space: the ranges, lowest first
 * (the first from arch_guest_ram_base()), written to out[]; returns their count, 0 if the
 * arch cannot place that much. x86: as on a PC, RAM up to 3 GiB, the device space in
 * [3 GiB, 4 GiB), the rest from 4 GiB; arm64: one block from 1 GiB.
 */
#define VM_RAM_RANGES 2
unsigned arch_guest_ram_layout(uint64_t size, struct gmem_range out[VM_RAM_RANGES]);
/* Guest-physical range the arch keeps for boot structures (loaders must not overwrite it). */
void arch_guest_reserved(gpa_t *base, uint64_t *size);
/* ELF e_machine value of this arch's guests. */
uint16_t arch_elf_machine(void);
/* A virtio-mmio device of a VM, as the arch's firmware tables describe it. */
struct vm_virtio_desc {
        gpa_t base;
        uint64_t size;
        unsigned gsi;
};

/* Where the arch puts virtio-mmio device `n` of a VM, and its interrupt (GSI / SPI). */
void arch_virtio_slot(unsigned n, gpa_t *base, uint64_t *size, unsigned *gsi);
/* The VM's interrupt line `gsi`, for a device model. */
struct irq_line arch_irq_line(struct vm *vm, unsigned gsi);
/*
 * Make the VM a Linux machine and load the kernel of `f` (initrd, command line) into its
 * RAM: interrupt controllers, firmware tables describing `devs`, boot protocol, vCPU 0 at
 * the kernel's entry. Errors are logged with the file's name.
 */
int arch_vm_load_linux(struct vm *vm, const struct boot_vm_files *f, const char *cmdline,
                       const struct vm_virtio_desc *devs, unsigned ndevs);

/*
 * Make the VM a Multiboot (version 1) machine, as QEMU's `-kernel` gives one to a Multiboot
 * kernel: the platform of a Linux VM without its virtio devices, the kernel of `f` loaded, its
 * initrd (if any) as the one module, the command line "<kernel path> <cmdline>", vCPU 0 at the
 * kernel's entry in 32-bit protected mode (docs/guest-entry.md). Errors are logged with the
 * file's name; an arch without Multiboot says so and returns -KEEL_ENOTSUP.
 */
int arch_vm_load_multiboot(struct vm *vm, const struct boot_vm_files *f, const char *cmdline);

/* Why arch_vcpu_run returned. */
enum vcpu_run_result {
        VCPU_RUN_LEFT = 1,  /* the VM left the running state (stopped, paused by the monitor) */
        VCPU_RUN_BLOCKED,   /* the guest waits for an interrupt (HLT/WFI) and none is pending */
        VCPU_RUN_PREEMPTED, /* its time slice ended (arch_tsc() passed the deadline) */
};

/*
 * Run the vCPU on this CPU until its VM is no longer VM_RUNNING, the guest waits for an
 * interrupt that is not pending, or Keel's timer finds arch_tsc() >= deadline. Feeds the
 * VM's serial device from its console input ring (vcons_input_pop) while it runs.
 */
enum vcpu_run_result arch_vcpu_run(struct vcpu *vcpu, uint64_t deadline);
/*
 * May a blocked vCPU run again: an interrupt pending for it, its timer due, or input waiting
 * in its console ring? Called on any CPU while the vCPU is not running.
 */
bool arch_vcpu_ready(struct vcpu *vcpu);
/*
 * The guest started a further vCPU (x86: INIT-SIPI through its LAPIC; arm64: PSCI CPU_ON)
 * whose state the arch has set up: it joins the run queues (vCPU 0 joins when its VM
 * starts). Safe on any CPU; a vCPU already on the run queues stays as it is (vmm/vmtable.c).
 */
void vm_vcpu_started(struct vcpu *vcpu);
/* "io 12, mmio 3, ..." : the vCPU's exits by reason, for the end-of-VM report. */
void arch_vcpu_exit_summary(const struct vcpu *vcpu, char *buf, size_t len);
/*
 * One line summing up what the guest probed that nothing answers (x86: absent I/O ports and
 * unknown MSRs; arm64: system registers not emulated), logged when the VM is released; false
 * if there was nothing. Each probe is logged as it happens at log = debug (x86) or warn (arm64).
 */
bool arch_vm_probe_summary(const struct vm *vm, char *buf, size_t len);
/* Release the arch part of a VM (tables, control blocks). */
void arch_vm_teardown(struct vm *vm);
/* Under test: report the overall result to the emulator and end it. Returns if it cannot. */
void arch_test_finish(bool pass);

#endif
