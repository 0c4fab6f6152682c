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
#include <keel/errno.h>
#include <keel/time.h>
#include <string.h>
#include <vmm/snapshot.h>
#include <vmm/vm.h>
#include <vmm/vmm.h>

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

/* The earliest arch_timer_by since a test last cleared it (UINT64_MAX: none). */
uint64_t fake_timer_at = UINT64_MAX;

void arch_timer_by(uint64_t tsc)
{
        if (tsc < fake_timer_at)
                fake_timer_at = tsc;
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

/*
 * Snapshots (vmm/snapshot.h) of a fake VM: each vCPU's 16 registers, CPL (at most 3) and
 * counter offset (moved by the restore's shift, as x86's TSC offset), no devices but the VM's
 * cookie. The fake's machine number is x86_64's.
 */
uint16_t arch_elf_machine(void)
{
        return 62;
}

size_t arch_snapshot_max(const struct vm *vm)
{
        (void)vm;
        return sizeof(struct vcpu_arch) + 8;
}

uint32_t arch_snapshot_devices(const struct vm *vm)
{
        (void)vm;
        return 0;
}

int arch_snapshot_check(const struct vm *vm, char *why, size_t len)
{
        (void)vm, (void)why, (void)len;
        return 0;
}

void arch_snapshot_vcpu_save(struct vcpu *vcpu, struct snap_buf *b)
{
        uint32_t cpl = vcpu->arch.cpl;

        snap_put(b, vcpu->arch.regs, sizeof(vcpu->arch.regs));
        snap_put(b, &cpl, sizeof(cpl));
        snap_put(b, &vcpu->arch.counter_offset, sizeof(vcpu->arch.counter_offset));
}

int arch_snapshot_vcpu_load(struct vcpu *vcpu, struct snap_rd *r)
{
        uint64_t regs[16], off;
        uint32_t cpl;

        if (!snap_get(r, regs, sizeof(regs)) || !snap_get(r, &cpl, sizeof(cpl)) ||
            !snap_get(r, &off, sizeof(off)))
                return -KEEL_EINVAL;
        if (cpl > 3)
                return snap_fail(r, "vCPU %u: CPL %u", vcpu->id, cpl);
        if (r->apply) {
                memcpy(vcpu->arch.regs, regs, sizeof(regs));
                vcpu->arch.cpl = cpl;
                vcpu->arch.counter_offset = off - r->shift;
        }
        return 0;
}

void arch_snapshot_vm_save(struct vm *vm, struct snap_buf *b)
{
        snap_put(b, &vm->arch.cookie, sizeof(vm->arch.cookie));
}

int arch_snapshot_vm_load(struct vm *vm, struct snap_rd *r)
{
        uint64_t cookie;

        if (!snap_get(r, &cookie, sizeof(cookie)))
                return -KEEL_EINVAL;
        if (r->apply)
                vm->arch.cookie = cookie;
        return 0;
}

/* The image's vmm/build.c saves the virtio devices; the host tests' VMs have none. */
uint64_t vm_devices_snap_max(const struct vm *vm)
{
        (void)vm;
        return 0;
}

uint32_t vm_devices_snap_set(const struct vm *vm)
{
        (void)vm;
        return 0;
}

void vm_devices_save(struct vm *vm, struct snap_buf *b)
{
        (void)vm, (void)b;
}

int vm_devices_load(struct vm *vm, struct snap_rd *r)
{
        (void)vm, (void)r;
        return 0;
}
