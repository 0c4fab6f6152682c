/*
 * The generic part of a VM: its name and id, its lifecycle state machine and the record of
 * why it stopped. Backend-specific state lives in vm->arch and is set up by the arch.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <keel/check.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <vmm/vm.h>

#define VM_STATE_COUNT (VM_STOPPED + 1)

/* allowed[from][to]: the lifecycle of vmm/vm.h. Everything not listed is refused. */
static const bool allowed[VM_STATE_COUNT][VM_STATE_COUNT] = {
    [VM_CREATED] = {[VM_RUNNING] = true, [VM_STOPPED] = true},
    [VM_RUNNING] = {[VM_PAUSED] = true, [VM_STOPPED] = true},
    [VM_PAUSED] = {[VM_RUNNING] = true, [VM_STOPPED] = true, [VM_CREATED] = true},
    [VM_STOPPED] = {[VM_CREATED] = true},
};

static const char *const state_names[VM_STATE_COUNT] = {
    [VM_CREATED] = "created",
    [VM_RUNNING] = "running",
    [VM_PAUSED] = "paused",
    [VM_STOPPED] = "stopped",
};

static const char *const reason_names[VM_STOP_REASON_COUNT] = {
    [VM_STOP_NONE] = "none",
    [VM_STOP_EXIT] = "exit",
    [VM_STOP_TRIPLE_FAULT] = "triple-fault",
    [VM_STOP_OUTSIDE_RAM] = "outside-ram",
    [VM_STOP_BAD_HYPERCALL] = "bad-hypercall",
    [VM_STOP_HALTED] = "halted",
    [VM_STOP_BAD_INSN] = "bad-instruction",
    [VM_STOP_UNHANDLED] = "unhandled-exit",
    [VM_STOP_ENTRY_FAILED] = "entry-failed",
    [VM_STOP_LOAD_FAILED] = "load-failed",
    [VM_STOP_POWEROFF] = "poweroff",
    [VM_STOP_REBOOT] = "reboot",
    [VM_STOP_MONITOR] = "monitor",
};

static void vm_clear_stop(struct vm *vm)
{
        vm->stop_reason = VM_STOP_NONE;
        vm->exit_code = 0;
        vm->stop_detail[0] = '\0';
}

void vm_init(struct vm *vm, unsigned id, const char *name, struct vcpu *vcpus, unsigned count)
{
        size_t n;

        CHECK(vm && name && vcpus && count >= 1 && count <= VM_MAX_VCPUS);
        n = strnlen(name, VM_NAME_MAX - 1);
        memcpy(vm->name, name, n);
        memset(vm->name + n, 0, VM_NAME_MAX - n);
        vm->id = id;
        spin_init(&vm->lock);
        spin_init(&vm->dev_lock);
        vm->state = VM_CREATED;
        gmem_init(&vm->mem);
        mmio_bus_init(&vm->mmio);
        vcons_init(&vm->console, vm->name);
        vm->vcpus = vcpus;
        for (unsigned i = 0; i < count; i++) {
                vm->vcpus[i].vm = vm;
                vm->vcpus[i].id = i;
                vm->vcpus[i].exits = 0;
        }
        vm->vcpu_count = count;
        vm_clear_stop(vm);
}

const char *vm_state_name(enum vm_state s)
{
        if ((unsigned)s >= VM_STATE_COUNT)
                return "unknown";
        return state_names[s];
}

const char *vm_stop_reason_name(enum vm_stop_reason r)
{
        if ((unsigned)r >= VM_STOP_REASON_COUNT)
                return "unknown";
        return reason_names[r];
}

int vm_stop_reason_parse(const char *name, enum vm_stop_reason *out)
{
        if (!name)
                return -KEEL_EINVAL;
        /* "none" is not a reason a VM can stop for, so it does not parse. */
        for (unsigned r = VM_STOP_NONE + 1; r < VM_STOP_REASON_COUNT; r++) {
                if (strcmp(name, reason_names[r]) == 0) {
                        *out = (enum vm_stop_reason)r;
                        return 0;
                }
        }
        return -KEEL_EINVAL;
}

/* vm_set_state with vm->lock held. */
static int set_state(struct vm *vm, enum vm_state to, struct spin_held held)
{
        enum vm_state from = vm->state;

        (void)held;
        if ((unsigned)from >= VM_STATE_COUNT || (unsigned)to >= VM_STATE_COUNT ||
            !allowed[from][to])
                return -KEEL_EPERM;
        vm->state = to;
        if (to == VM_CREATED)
                vm_clear_stop(vm);
        return 0;
}

int vm_set_state(struct vm *vm, enum vm_state to)
{
        struct spin_held h = spin_lock(&vm->lock);
        enum vm_state from = vm->state;
        int err = set_state(vm, to, h);

        spin_unlock(h);
        if (err)
                LOG_WARN("vm %s: refusing state change %s -> %s", vm->name, vm_state_name(from),
                         vm_state_name(to));
        return err;
}

void vm_stop(struct vm *vm, enum vm_stop_reason reason, const char *fmt, ...)
{
        va_list ap;

        struct spin_held h;

        CHECK(reason > VM_STOP_NONE && reason < VM_STOP_REASON_COUNT);
        /* The first reason is the one that matters; later ones are consequences. */
        h = spin_lock(&vm->lock);
        if (vm->stop_reason != VM_STOP_NONE) {
                spin_unlock(h);
                return;
        }
        vm->stop_reason = reason;
        va_start(ap, fmt);
        vsnprintf(vm->stop_detail, sizeof(vm->stop_detail), fmt, ap);
        va_end(ap);
        if (vm->state != VM_STOPPED)
                CHECK(set_state(vm, VM_STOPPED, h) == 0);
        spin_unlock(h);

        /* Whatever the guest wrote last comes before the line saying it stopped. */
        vcons_flush(&vm->console);
        if (reason == VM_STOP_EXIT || reason == VM_STOP_POWEROFF || reason == VM_STOP_REBOOT ||
            reason == VM_STOP_MONITOR)
                LOG_INFO("vm %s stopped: %s: %s", vm->name, vm_stop_reason_name(reason),
                         vm->stop_detail);
        else
                LOG_WARN("vm %s stopped: %s: %s", vm->name, vm_stop_reason_name(reason),
                         vm->stop_detail);
}

void vm_exit(struct vm *vm, int64_t code)
{
        if (vm->stop_reason != VM_STOP_NONE)
                return;
        vm->exit_code = code;
        vm_stop(vm, VM_STOP_EXIT, "code %lld", (long long)code);
}

/*
 * Lock-free, for every vCPU of the VM at once: a slot is claimed by moving the count up with
 * a compare-exchange that never takes it past `max`, then filled. Two vCPUs racing on the same
 * new key may both report it (at most once each); the table never overflows.
 */
bool vm_report_seen(uint32_t *seen, unsigned *count, unsigned max, uint32_t key)
{
        unsigned n = __atomic_load_n(count, __ATOMIC_ACQUIRE);

        for (;;) {
                for (unsigned i = 0; i < n && i < max; i++)
                        if (__atomic_load_n(&seen[i], __ATOMIC_RELAXED) == key)
                                return true;
                if (n >= max)
                        return true;
                if (__atomic_compare_exchange_n(count, &n, n + 1, false, __ATOMIC_ACQ_REL,
                                                __ATOMIC_ACQUIRE))
                        break;
                /* Another vCPU claimed slot n first: look at what it may have added. */
        }
        __atomic_store_n(&seen[n], key, __ATOMIC_RELAXED);
        return false;
}
