/*
 * The virtio fuzzers' guest: the unit tests' fake VM (tests/unit/virtio_fake_driver.h), made
 * once and cleaned for every input. A fresh fv_new per input costs a few milliseconds under
 * ASan (the 264 KiB buffer is mapped anew and faulted in by the memset), which would leave
 * these targets at a few hundred inputs per second.
 */
#ifndef KEEL_FUZZ_FAKE_VM_H
#define KEEL_FUZZ_FAKE_VM_H

#include <stdlib.h>
#include <string.h>

#include "virtio_fake_driver.h"

/* The fake VM with zeroed RAM, intact canaries, the interrupt line low and no transport. */
static inline struct fake_vm *fz_vm(void)
{
        static struct fake_vm *v;

        if (!v) {
                v = fv_new();
                return v;
        }
        if (!fv_canaries_ok(v))
                abort(); /* the previous input should have been caught already */
        memset(v->ram, 0, FV_SIZE);
        memset(&v->t, 0, sizeof(v->t));
        v->irq_level = false;
        v->irq_raises = 0;
        return v;
}

#endif
