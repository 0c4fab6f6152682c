/*
 * Debugging a VM with gdb (docs/debugging.md): one session at a time, over the arch's debug
 * port (x86: COM2) or over Keel's console (the monitor's `gdb VM`). vmm/gdb.c serves it on
 * the boot CPU on top of the packet layer (vmm/gdbstub.h) and the arch hooks below. While gdb
 * has the VM stopped the VM is paused (vm.h); the other VMs run on.
 */
#ifndef VMM_GDB_H
#define VMM_GDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vmm/vm.h>

/* --- Arch hooks (arch/<isa>/gdb.c). Called with the vCPU not running. --- */

/* Can gdb debug this vCPU's VM here (the backend has what the hooks below need)? */
bool arch_gdb_supported(struct vcpu *v);
/* The target description gdb reads (qXfer:features:read:target.xml). */
const char *arch_gdb_target_xml(size_t *len);
/* Register `reg` in the description's order, target byte order: its size, 0 past the last. */
size_t arch_gdb_reg_read(struct vcpu *v, unsigned reg, uint8_t *buf);
/* 0, or -KEEL_EINVAL for a value the vCPU cannot take (the register is unchanged). */
int arch_gdb_reg_write(struct vcpu *v, unsigned reg, const uint8_t *buf, size_t size);
/* Guest-virtual to guest-physical through the vCPU's own page tables (as it would access). */
int arch_gdb_translate(struct vcpu *v, uint64_t gva, gpa_t *gpa);
/* The software breakpoint instruction into buf (x86: INT3; arm64: BRK): its size. */
size_t arch_gdb_break_insn(uint8_t *buf);
/*
 * gdb's hardware breakpoints and watchpoints (vm->debug_hw) as they would become with one
 * more: 0 if every vCPU can have all of them at once; -KEEL_ENOTSUP for a kind the arch
 * lacks (gdb hears "not supported"), -KEEL_ENOSPC for more than its slots, -KEEL_EINVAL for
 * a length or alignment it cannot watch.
 */
int arch_gdb_hw_check(struct vcpu *v, const struct vm_debug_hw *hw, unsigned n);
/* The arch's second serial port for gdb (x86: COM2), if the machine has one. */
bool arch_gdb_port_present(void);
int arch_gdb_port_getc(void);
void arch_gdb_port_write(const char *s, size_t n);
/*
 * The arch traps breakpoint instructions while vm->debug and single-steps a vCPU while
 * vcpu->debug_step (it reads both at the start of each run), and reports through these:
 * A breakpoint instruction at guest-virtual `pc` trapped: true if it is one of gdb's (the VM
 * is being stopped); false: the guest's own, which the arch delivers to the guest.
 */
bool vm_debug_break(struct vcpu *v, uint64_t pc);
/* A single step of a vCPU gdb asked to step has completed: the VM is being stopped. */
void vm_debug_stepped(struct vcpu *v);
/*
 * Hardware breakpoint or watchpoint i of vm->debug_hw hit (the arch loads them while
 * vm->debug): the VM is being stopped. addr: the data address of a watchpoint's access.
 */
void vm_debug_hw_hit(struct vcpu *v, unsigned i, uint64_t addr);

/* --- The session (vmm/gdb.c, boot CPU only). --- */

/* The VM table's part: kick a VM's vCPUs off their CPUs, resume a paused VM. */
struct gdb_host {
        struct vm *(*vm)(unsigned i); /* VM i of the table, NULL past the last */
        void (*kick)(struct vm *vm);
        void (*console_write)(const char *s, size_t n); /* for a session on the console */
        void (*console_done)(void);                     /* that session ended */
};

void gdb_setup(const struct gdb_host *host);
/*
 * Start a session for VM i on Keel's console (`port` false: the monitor then passes what is
 * typed to gdb_console_input until console_done) or make the debug port serve VM i from its
 * next connection (`port` true). 0, -KEEL_EBUSY (a session is open), -KEEL_ENODEV (no port),
 * -KEEL_EPERM (the VM is not running or paused), -KEEL_ENOMEM.
 */
int gdb_attach(unsigned i, bool port);
void gdb_console_input(const uint8_t *buf, size_t n);
/* The boot CPU's round: read the port, report stops, end sessions. */
void gdb_poll(void);
/* A session holds a pointer to `vm` (the VM table keeps its memory until it ends). */
bool gdb_holds(const struct vm *vm);

#endif
