/*
 * Building a VM from its config and releasing it (vmm/build.c). The boot CPU only.
 */
#ifndef VMM_BUILD_H
#define VMM_BUILD_H

#include <stddef.h>

#include <keel/boot.h>
#include <vmm/config.h>
#include <vmm/vm.h>

/*
 * Allocate and map the VM's RAM, then build the guest of its kind (image, Multiboot or Linux
 * kernel with its devices). On failure the VM is stopped with a one-line reason naming what
 * is missing, and the error returned; what was allocated stays for vm_release.
 */
int vm_build(struct vm *vm, const struct vm_config *vc, const struct boot_vm_files *f);
/*
 * Decide, once at boot before any VM is built, which blocks of Keel's disks each VM's
 * `disk = DEV:...` gets (vmm/vdisk.h); a VM whose disk is refused stops load-failed with
 * the reason when it is built.
 */
void vm_disks_plan(const struct boot_info *bi);
/*
 * Give back everything vm_build took: arch tables, devices, RAM. Only once the VM has stopped
 * and every one of its vCPUs has left the scheduler (no CPU can touch it any more).
 */
void vm_release(struct vm *vm);

/*
 * One of the VM's vCPUs waits for an interrupt (the arch's HLT / WFI exit, under dev_lock):
 * its devices raise what interrupt moderation holds back (virtio_blk_idle).
 */
void vm_devices_idle(struct vm *vm);

/*
 * Drain the VM's disk on a physical device (virtio_blk_drain): serve what its ring holds and
 * wait until no request is in flight, the disk working on afterwards (a snapshot is taken or
 * restored only then; vmm/snapshot.h). Its vCPUs must be off every CPU, so no new one comes.
 */
void vm_disks_quiesce(struct vm *vm);

/*
 * The partition the VM's `snapshot =` names, into p (its names written into names[0, n)), or
 * false when its config names none: snapshots stay in memory.
 */
struct snap_part;
bool vm_snap_part(const struct vm *vm, const struct vm_config *vc, struct snap_part *p, char *names,
                  size_t n);

#endif
