/*
 * A fake gdb target for the packet layer's tests and fuzzer (vmm/gdbstub.c): three threads,
 * each with four registers of sizes 8, 8, 4, 2 (little-endian, from regs[]), 256 bytes of
 * virtual memory at 0x1000 and 64 of physical at 0x40, software breakpoints only (at most 4);
 * it records what the stub asked of it and keeps gdb's output.
 */
#ifndef GDB_FAKE_TARGET_H
#define GDB_FAKE_TARGET_H

#include <string.h>

#include <keel/errno.h>
#include <vmm/gdbstub.h>

#define FAKE_THREADS 3
#define FAKE_REGS    4
#define FAKE_VBASE   0x1000u
#define FAKE_VSIZE   256u
#define FAKE_PBASE   0x40u
#define FAKE_PSIZE   64u
#define FAKE_BPS     4
#define FAKE_OUT     (1 << 16)

static const unsigned fake_reg_size[FAKE_REGS] = {8, 8, 4, 2};

struct fake_target {
        uint64_t regs[FAKE_THREADS][FAKE_REGS];
        uint8_t vmem[FAKE_VSIZE], pmem[FAKE_PSIZE];
        uint64_t bps[FAKE_BPS];
        unsigned nbps;
        int resumed, step, interrupts, detached;
        char out[FAKE_OUT];
        size_t out_len; /* bytes written, also beyond out */
};

static unsigned fake_threads(void *ctx)
{
        (void)ctx;
        return FAKE_THREADS;
}

static size_t fake_reg_read(void *ctx, unsigned t, unsigned reg, uint8_t *buf)
{
        struct fake_target *f = ctx;

        if (t >= FAKE_THREADS)
                __builtin_trap();
        if (reg >= FAKE_REGS)
                return 0;
        for (unsigned i = 0; i < fake_reg_size[reg]; i++)
                buf[i] = (uint8_t)(f->regs[t][reg] >> (8 * i));
        return fake_reg_size[reg];
}

static int fake_reg_write(void *ctx, unsigned t, unsigned reg, const uint8_t *buf, size_t size)
{
        struct fake_target *f = ctx;
        uint64_t v = 0;

        if (t >= FAKE_THREADS || reg >= FAKE_REGS || size != fake_reg_size[reg])
                __builtin_trap();
        for (unsigned i = 0; i < size; i++)
                v |= (uint64_t)buf[i] << (8 * i);
        f->regs[t][reg] = v;
        return 0;
}

static uint8_t *fake_mem(struct fake_target *f, uint64_t addr, bool phys, size_t n)
{
        uint64_t base = phys ? FAKE_PBASE : FAKE_VBASE, size = phys ? FAKE_PSIZE : FAKE_VSIZE;

        if (addr < base || n > size || addr - base > size - n)
                return NULL;
        return (phys ? f->pmem : f->vmem) + (addr - base);
}

static int fake_mem_read(void *ctx, unsigned t, uint64_t addr, bool phys, uint8_t *buf, size_t n)
{
        uint8_t *m = fake_mem(ctx, addr, phys, n);

        if (t >= FAKE_THREADS)
                __builtin_trap();
        if (!m)
                return -KEEL_EFAULT;
        memcpy(buf, m, n);
        return 0;
}

static int fake_mem_write(void *ctx, unsigned t, uint64_t addr, bool phys, const uint8_t *buf,
                          size_t n)
{
        uint8_t *m = fake_mem(ctx, addr, phys, n);

        if (t >= FAKE_THREADS)
                __builtin_trap();
        if (!m)
                return -KEEL_EFAULT;
        memcpy(m, buf, n);
        return 0;
}

static int fake_bp(void *ctx, unsigned t, enum gdb_bp type, bool insert, uint64_t addr,
                   uint64_t kind)
{
        struct fake_target *f = ctx;

        (void)kind;
        if (t >= FAKE_THREADS)
                __builtin_trap();
        if (type != GDB_BP_SW)
                return -KEEL_ENOTSUP;
        for (unsigned i = 0; i < f->nbps; i++) {
                if (f->bps[i] != addr)
                        continue;
                if (insert)
                        return 0;
                f->bps[i] = f->bps[--f->nbps];
                return 0;
        }
        if (!insert)
                return 0;
        if (f->nbps == FAKE_BPS)
                return -KEEL_ENOSPC;
        f->bps[f->nbps++] = addr;
        return 0;
}

static void fake_resume(void *ctx, int step)
{
        struct fake_target *f = ctx;

        if (step >= FAKE_THREADS)
                __builtin_trap();
        f->resumed++;
        f->step = step;
}

static void fake_interrupt(void *ctx)
{
        ((struct fake_target *)ctx)->interrupts++;
}

static void fake_detach(void *ctx)
{
        ((struct fake_target *)ctx)->detached++;
}

static const char fake_xml[] = "<?xml version=\"1.0\"?><target><architecture>fake</architecture>"
                               "<!-- # $ } * need escapes --></target>";

static const char *fake_target_xml(void *ctx, size_t *len)
{
        (void)ctx;
        *len = sizeof(fake_xml) - 1;
        return fake_xml;
}

static void fake_write(void *ctx, const char *s, size_t n)
{
        struct fake_target *f = ctx;

        for (size_t i = 0; i < n; i++, f->out_len++)
                if (f->out_len < FAKE_OUT - 1)
                        f->out[f->out_len] = s[i];
        f->out[f->out_len < FAKE_OUT - 1 ? f->out_len : FAKE_OUT - 1] = '\0';
}

static const struct gdb_ops fake_gdb_ops = {
    .threads = fake_threads,
    .reg_read = fake_reg_read,
    .reg_write = fake_reg_write,
    .mem_read = fake_mem_read,
    .mem_write = fake_mem_write,
    .bp = fake_bp,
    .resume = fake_resume,
    .interrupt = fake_interrupt,
    .detach = fake_detach,
    .target_xml = fake_target_xml,
    .write = fake_write,
};

#endif
