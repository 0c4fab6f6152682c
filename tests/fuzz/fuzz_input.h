/*
 * The fuzzers' input cursor: the fuzzer's bytes taken front to back, a fixed-size piece at a
 * time (shared by the register-sequence targets: apic, uart, vgic, virtio_mmio).
 */
#ifndef KEEL_FUZZ_INPUT_H
#define KEEL_FUZZ_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct in {
        const uint8_t *p;
        size_t n;
};

/* The next `len` bytes into `dst`; false (nothing taken) once fewer are left. */
static inline bool take(struct in *in, void *dst, size_t len)
{
        if (in->n < len)
                return false;
        memcpy(dst, in->p, len);
        in->p += len;
        in->n -= len;
        return true;
}

#endif
