/*
 * libFuzzer target for the MMIO instruction emulator (arch/x86_64/mmio_emul.c). Input: one
 * mode byte, 8 bytes of device value, then the instruction bytes. The instruction is decoded
 * and emulated against a register file and a device that returns the fuzzed value; abort()s
 * if an invariant breaks:
 *  - the result is 0, -KEEL_ENOTSUP or -KEEL_EFAULT (the device fails every 7th input);
 *  - on success RIP advanced by the instruction's length (mode-truncated), there were one or
 *    two device accesses (a second one only as a write after a read), every access at the
 *    trapped address with a size of 1, 2, 4 or 8, and at most one register changed;
 *  - on refusal there was no device access and nothing changed;
 *  - only arithmetic flags change in RFLAGS.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arch/decode.h>
#include <arch/mmio_emul.h>
#include <keel/errno.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define GPA 0xd0000040ull

struct dev {
        uint64_t value;
        bool fail;
        unsigned n;
        bool write[3];
};

static bool access_fn(void *ctx, uint64_t gpa, unsigned size, bool write, uint64_t *val)
{
        struct dev *d = ctx;

        if (gpa != GPA || (size != 1 && size != 2 && size != 4 && size != 8))
                abort();
        if (d->n < 3)
                d->write[d->n] = write;
        d->n++;
        if (d->fail)
                return false;
        if (!write)
                *val = d->value; /* deliberately not masked to `size` */
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const enum x86_cpu_mode modes[4] = {X86_MODE_REAL16, X86_MODE_PROT16,
                                                   X86_MODE_PROT32, X86_MODE_LONG64};
        struct x86_emul_regs r, r0;
        struct x86_insn in;
        struct dev d;
        unsigned changed = 0;
        uint64_t rip;
        int rc;

        if (size < 10)
                return 0;
        memset(&d, 0, sizeof(d));
        memcpy(&d.value, data + 1, 8);
        d.fail = (data[0] >> 2) % 7 == 0;
        if (x86_decode(data + 9, size - 9, modes[data[0] & 3], &in) != 0)
                return 0;
        for (int i = 0; i < 16; i++)
                r.gpr[i] = 0x0123456789abcdefull * (uint64_t)(i + 1);
        r.rip = 0xfffffffffffffff0ull + (data[0] >> 4);
        r.rflags = 0x202 | ((uint64_t)data[0] << 4 & X86_RFLAGS_ARITH);
        r0 = r;
        rc = x86_emulate_mmio(&in, &r, GPA, access_fn, &d);
        if (rc != 0 && rc != -KEEL_ENOTSUP && rc != -KEEL_EFAULT)
                abort();
        if ((r.rflags & ~X86_RFLAGS_ARITH) != (r0.rflags & ~X86_RFLAGS_ARITH))
                abort();
        for (int i = 0; i < 16; i++)
                changed += r.gpr[i] != r0.gpr[i];
        if (changed > 1)
                abort();
        if (rc == -KEEL_ENOTSUP && (d.n != 0 || changed || memcmp(&r, &r0, sizeof(r)) != 0))
                abort();
        if (rc == -KEEL_EFAULT && (d.n == 0 || r.rip != r0.rip || changed))
                abort();
        if (rc == 0) {
                rip = r0.rip + in.len;
                if (in.mode == X86_MODE_PROT32)
                        rip &= 0xffffffffull;
                else if (in.mode != X86_MODE_LONG64)
                        rip &= 0xffff;
                if (r.rip != rip || d.n < 1 || d.n > 2 || (d.n == 2 && (d.write[0] || !d.write[1])))
                        abort();
        }
        return 0;
}
