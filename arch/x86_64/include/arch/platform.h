/*
 * The x86 platform of Linux VMs (arch/x86_64/platform.c): LAPIC/IOAPIC models, interrupt
 * injection decisions, halts, console input and the ACPI power registers.
 */
#ifndef ARCH_PLATFORM_H
#define ARCH_PLATFORM_H

#include <stdbool.h>
#include <stdint.h>

#include <vmm/vm.h>

/*
 * Locking: the LAPICs, the I/O APIC and the devices of a VM are under vm->dev_lock; these
 * functions take it themselves (x86_platform_io is called with it held).
 */
/*
 * Highest vector the vCPU's LAPIC wants delivered now (timers updated first), else the 8259
 * pair's if its INT reaches the vCPU (vCPU 0, LINT0 ExtINT or LAPIC disabled), or -1.
 */
int x86_pending_irq(struct vcpu *vcpu);
/* Before an entry, right before x86_pending_irq (no lock held), which arms the guest's timers
 * again after this one's re-arming: Keel's pollers if their time has come (irq_poll_entry),
 * so that a busy guest's own exits serve a poll time with slack. */
void x86_entry_poll(void);
/*
 * The backend injects what x86_pending_irq gave (`vector`, still pending): returns the vector
 * to put in the event, the acceptance's (LAPIC: its highest, IRR -> ISR; PIC: the INTA cycle's,
 * which may be the spurious IRQ 7/15 vector if the request went away meanwhile).
 */
uint8_t x86_irq_injected(struct vcpu *vcpu, uint8_t vector);
/*
 * KVM's MSR_KVM_PV_EOI_EN written (msr.c; vlapic.pv_eoi): false for #GP (bit 1 set, or bit 0
 * set with the 4-byte flag not in guest RAM). A flag Keel had set is withdrawn first.
 */
bool x86_pv_eoi_msr(struct vcpu *vcpu, uint64_t val);
/*
 * An NMI is pending for the vCPU (a racy read, without dev_lock: a stale false delays it to
 * the next entry, which the sender's kick causes; a stale true is settled by x86_take_nmi).
 */
static inline bool x86_nmi_pending(struct vcpu *vcpu)
{
        return __atomic_load_n(&vcpu->arch.lapic.nmi_pending, __ATOMIC_RELAXED);
}
/* Consume the pending NMI: true if there was one, which the backend then injects. */
bool x86_take_nmi(struct vcpu *vcpu);
/* At an entry with an NMI pending while the guest handles one: only that one may wait. */
void x86_nmi_blocked(struct vcpu *vcpu);
/*
 * HLT (already skipped): true if the guest may wait, and then the vCPU either resumes at
 * once (an interrupt is deliverable) or leaves its CPU blocked (vcpu->arch.leave). False if
 * nothing could ever wake the vCPU (no platform, or interrupts disabled): the caller stops
 * the VM.
 */
bool x86_halt(struct vcpu *vcpu, bool interrupts_enabled);
/* x86_halt said false: stop the VM (halted), HLT at `rip` with interrupts enabled or not. */
void x86_stop_halted(struct vcpu *vcpu, uint64_t rip, bool interrupts_enabled);
/* An NMI is pending and the guest can take it (not inside its NMI handler). */
bool x86_nmi_wakes(struct vcpu *vcpu);
/* Move bytes queued for the VM (its console input ring) into its UART. */
void x86_poll_console(struct vm *vm);
/*
 * A physical interrupt exit: take the interrupts (Keel's tick among them), feed the UART,
 * and end the vCPU's run if its time slice is over.
 */
void x86_host_interrupt(struct vcpu *vcpu);
/* Hand the vCPUs that start-up IPIs released to the scheduler (call without dev_lock). */
void x86_start_released(struct vm *vm);
/* Frees pc_testdev's iomem pages, if the VM has them (arch_vm_teardown). */
void x86_testdev_mem_free(struct vm *vm);
/* Platform I/O ports (ACPI sleep and reset registers, the 8259 pair, Multiboot VMs' PIT,
 * pc_testdev); false if
 * `port` is not one. x86_platform_port: the same for a VM with the platform. */
bool x86_platform_port(struct vcpu *vcpu, uint16_t port, unsigned size, bool in, uint32_t *val);
static inline bool x86_platform_io(struct vcpu *vcpu, uint16_t port, unsigned size, bool in,
                                   uint32_t *val)
{
        return vcpu->vm->arch.platform && x86_platform_port(vcpu, port, size, in, val);
}

#endif
