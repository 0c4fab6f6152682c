/*
 * Keel's hypercalls (ABI in vmm/include/vmm/hypercall.h and docs/hypercalls.md). The arch
 * decodes the registers into a struct hc_call, checks the caller runs in guest kernel mode
 * and calls hypercall_dispatch. Every argument is guest-controlled: addresses go through
 * gmem only, lengths are bounded before anything is copied.
 */
#include <string.h>

#include <keel/check.h>
#include <keel/errno.h>
#include <vmm/gmem.h>
#include <vmm/hypercall.h>
#include <vmm/vm.h>
#ifdef KEEL_DEBUG_HYPERCALLS
#include <keel/debug_fault.h>
#endif

_Static_assert(sizeof(struct keel_vm_info) == 64, "keel_vm_info layout is part of the ABI");
_Static_assert(sizeof(((struct keel_vm_info *)0)->name) == VM_NAME_MAX,
               "keel_vm_info.name holds a whole VM name");

/* PRINT goes to the VM's console like its UART's bytes: same prefix, same line buffer. */
static int64_t hc_print(struct vm *vm, uint64_t ga, uint64_t len)
{
        char buf[KEEL_HC_PRINT_MAX];

        if (len > KEEL_HC_PRINT_MAX)
                return -KEEL_E2BIG;
        if (gmem_read(&vm->mem, gpa(ga), buf, len) < 0)
                return -KEEL_EFAULT;
        vcons_write(&vm->console, (const uint8_t *)buf, len);
        return (int64_t)len;
}

static uint64_t lowest_ram_base(const struct gmem *m)
{
        uint64_t base = UINT64_MAX;

        for (unsigned i = 0; i < m->count; i++)
                if (gpa_raw(m->regions[i].base) < base)
                        base = gpa_raw(m->regions[i].base);
        return m->count ? base : 0;
}

/* Out of line: its buffer would give hypercall_dispatch, and so every hypercall, a stack canary. */
static __attribute__((noinline, cold)) int64_t hc_vm_info(struct vm *vm, uint64_t ga, uint64_t size)
{
        struct keel_vm_info info;
        size_t n;

        if (size < sizeof(info))
                return -KEEL_EINVAL;
        memset(&info, 0, sizeof(info));
        info.abi_version = KEEL_HC_ABI_VERSION;
        info.vm_id = vm->id;
        info.ram_base = lowest_ram_base(&vm->mem);
        info.ram_size = gmem_total(&vm->mem);
        info.vcpu_count = vm->vcpu_count;
        n = strnlen(vm->name, sizeof(info.name) - 1);
        memcpy(info.name, vm->name, n);
        /* Only sizeof(info) bytes are written, so only they need to be guest RAM. */
        if (gmem_write(&vm->mem, gpa(ga), &info, sizeof(info)) < 0)
                return -KEEL_EFAULT;
        return (int64_t)sizeof(info);
}

bool hypercall_dispatch(struct vcpu *vcpu, struct hc_call *call)
{
        struct vm *vm;

        CHECK(vcpu && vcpu->vm && call);
        vm = vcpu->vm;
        switch (call->nr) {
        case KEEL_HC_VERSION:
                call->ret = KEEL_HC_ABI_VERSION;
                return true;
        case KEEL_HC_PRINT:
                call->ret = hc_print(vm, call->arg[0], call->arg[1]);
                return true;
        case KEEL_HC_EXIT:
                call->ret = 0;
                vm_exit(vm, (int64_t)call->arg[0]);
                return false;
        case KEEL_HC_VM_INFO:
                call->ret = hc_vm_info(vm, call->arg[0], call->arg[1]);
                return true;
#ifdef KEEL_DEBUG_HYPERCALLS
        case KEEL_HC_DEBUG_FAULT:
                /* Returns only for an unknown `what` (or a protection that failed: then the
                 * integration test fails, as no panic report comes). */
                call->ret = debug_fault(call->arg[0]);
                return true;
#endif
        default:
                call->ret = -KEEL_ENOSYS;
                return true;
        }
}
