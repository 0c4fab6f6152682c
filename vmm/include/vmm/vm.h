/*
 * VMs and vCPUs, independent of the virtualization backend. Arch state is embedded as the
 * `arch` member, whose type comes from the same-named <arch/vm.h> of the arch being built
 * (Bao's pattern), so generic code never sees SVM, VMX or EL2 details.
 *
 * Lifecycle (vm_set_state refuses anything else with -KEEL_EPERM):
 *   created -> running -> paused -> running
 *   created | running | paused -> stopped
 *   paused | stopped -> created   (reset)
 */
#ifndef VMM_VM_H
#define VMM_VM_H

#include <keel/addr.h>
#include <keel/sched.h>
#include <keel/spinlock.h>
#include <vmm/exitstats.h>
#include <vmm/gmem.h>
#include <vmm/mmio.h>
#include <vmm/vcons.h>
#include <arch/vm.h>

#define VM_NAME_MAX 32
/*
 * vCPUs per VM (config vcpus =): the interrupt paths name a VM's vCPUs in one 64-bit mask
 * (kicks, IPI and SGI targets), and on x86 the xAPIC's 8-bit IDs give room for them. A VM
 * with more than VM_OVERCOMMIT_VCPUS vCPUs must also have a CPU online for each (vmtable.c):
 * a large guest time-sliced on fewer CPUs would spin on its own locks. How many VMs: memory
 * and the config.
 */
#define VM_MAX_VCPUS        64
#define VM_OVERCOMMIT_VCPUS 8

enum vm_state {
        VM_CREATED = 0,
        VM_RUNNING,
        VM_PAUSED,
        VM_STOPPED,
};

/* Why a VM stopped. Names (vm_stop_reason_name) are used in reports and in the config. */
enum vm_stop_reason {
        VM_STOP_NONE = 0,
        VM_STOP_EXIT,          /* "exit": the guest called the exit hypercall */
        VM_STOP_TRIPLE_FAULT,  /* "triple-fault": shutdown intercept */
        VM_STOP_OUTSIDE_RAM,   /* "outside-ram": access to guest-physical memory it does not have */
        VM_STOP_BAD_HYPERCALL, /* "bad-hypercall": hypercall from guest user mode */
        VM_STOP_HALTED,        /* "halted": HLT with nothing that could ever wake it */
        VM_STOP_BAD_INSN,     /* "bad-instruction": an intercepted instruction Keel cannot decode */
        VM_STOP_UNHANDLED,    /* "unhandled-exit": an exit Keel does not handle */
        VM_STOP_ENTRY_FAILED, /* "entry-failed": the CPU refused to enter the guest */
        VM_STOP_LOAD_FAILED,  /* "load-failed": the VM could not be built */
        VM_STOP_POWEROFF,     /* "poweroff": the guest powered itself off (ACPI) */
        VM_STOP_REBOOT,       /* "reboot": the guest asked for a reset (ACPI) */
        VM_STOP_MONITOR,      /* "monitor": stopped or reset from Keel's monitor */
        VM_STOP_REASON_COUNT,
};

/* One of gdb's hardware breakpoints (type 1) or watchpoints (2 write, 3 read, 4 access), as
 * the Z packets number them; len: bytes watched (a breakpoint's is gdb's kind, unused). */
#define VM_DEBUG_HW_MAX 8
struct vm_debug_hw {
        uint64_t addr;
        uint64_t len;
        uint8_t type;
};

struct vm;

struct vcpu {
        struct vm *vm;
        unsigned id;
        uint64_t exits;
        struct exit_stats stats; /* by reason, with their cost, and the trace (vmm/exitstats.h) */
        bool started; /* runs (vCPU 0 from the VM's start; others once the guest starts them) */
        struct sched_entity sched; /* its place on the run queues (keel/sched.h) */
        bool debug_step; /* gdb: single-step its next instruction, then stop (vmm/gdb.h) */
        struct vcpu_arch arch;
};

struct vm_devices;

struct vm {
        char name[VM_NAME_MAX];
        unsigned id;
        volatile enum vm_state state; /* read by its vCPUs' CPUs at every exit */
        struct spinlock lock;         /* state changes and the stop record */
        /*
         * The VM's emulated devices and interrupt controllers, shared by its vCPUs, which may
         * run on several CPUs at once: the arch holds it around each device access and
         * interrupt-controller update (never while the guest runs).
         */
        struct spinlock dev_lock;
        struct gmem mem;
        struct mmio_bus mmio; /* emulated devices outside RAM */
        struct vcons console; /* console front end of the VM's serial devices, print hypercall */
        struct vcpu *vcpus;   /* vcpu_count of them, the memory vm_init was given */
        unsigned vcpu_count;
        /* Config unbacked = stop: an access to a guest-physical address with nothing behind
         * it stops the VM rather than faulting in the guest (docs/config.md). */
        bool unbacked_stop;
        /* Config pc_testdev = yes (docs/config.md): x86's test IRQ-line ports. */
        bool pc_testdev;
        /* gdb (vmm/gdb.h): a session is on, so the arch traps breakpoint instructions;
         * the vCPU (index + 1) whose breakpoint or step stopped it, 0 if none; why (enum
         * gdb_stop of vmm/gdbstub.h) and, for a watchpoint, the data address. gdb's hardware
         * breakpoints and watchpoints, changed only while the VM is stopped for gdb; the arch
         * loads them at the start of each run while `debug`. */
        bool debug;
        unsigned debug_stop;
        uint8_t debug_why;
        uint64_t debug_addr;
        unsigned debug_hw_n;
        struct vm_debug_hw debug_hw[VM_DEBUG_HW_MAX];

        enum vm_stop_reason stop_reason;
        int64_t exit_code;     /* valid when stop_reason == VM_STOP_EXIT */
        char stop_detail[256]; /* one line: what happened, where (MMIO reports carry bytes) */

        struct vm_devices *devices; /* the device models vm_build made (vmm/build.c) */
        struct vm_arch arch;
};

/*
 * Initialise the generic part: name, id, state created, empty memory, console front end
 * (prefixed with the name), its `n` vCPUs (1..VM_MAX_VCPUS) in `vcpus`, the caller's memory
 * (the VM table allocates both when it builds a VM). The arch's serial device model is set
 * up by the arch.
 */
void vm_init(struct vm *vm, unsigned id, const char *name, struct vcpu *vcpus, unsigned n);
int vm_set_state(struct vm *vm, enum vm_state to);
const char *vm_state_name(enum vm_state s);
const char *vm_stop_reason_name(enum vm_stop_reason r);
/* Reverse of vm_stop_reason_name; -KEEL_EINVAL if unknown. */
int vm_stop_reason_parse(const char *name, enum vm_stop_reason *out);

/*
 * Stop the VM for `reason`, recording a one-line detail (printf-style) and printing
 * "keel: vm <name> stopped: <reason>: <detail>" on the console. Flushes its console first.
 * Stopping a stopped VM keeps the first reason.
 */
void vm_stop(struct vm *vm, enum vm_stop_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * Guest oddities reported once each (an unclaimed port, an unknown MSR or system register):
 * true if `key` is already among seen[0..*count) or the table of `max` entries is full (stay
 * quiet rather than flood the console); otherwise records it and returns false.
 */
bool vm_report_seen(uint32_t *seen, unsigned *count, unsigned max, uint32_t key);
/* Record a clean exit with `code` (exit hypercall). */
void vm_exit(struct vm *vm, int64_t code);

#endif
