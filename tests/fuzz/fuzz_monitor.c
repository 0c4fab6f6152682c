/*
 * libFuzzer target for the console input router and monitor (vmm/monitor.c). The input is
 * typed on the console, against a fake VM table that follows vm.h's lifecycle.
 *
 * Input: byte 0: bits 0-3 the number of VMs (0..15), bits 4-7 the size of the pieces the rest
 * is fed in (0: all at once); bytes 1..count: each VM's initial state (low 2 bits) and CPU
 * time (the byte, shifted into the high bits on odd VMs, so shares overflow a naive product)
 * and its exit statistics (counts, ticks and 300 trace entries derived from the byte; a stopped
 * VM has none). The rest is typed twice, on two monitors: in those pieces and byte by byte.
 *
 * Invariants (abort on violation): both runs write the same output and deliver the same bytes
 * to the same VMs with the same actions; no VM receives more bytes than were typed; the ops
 * only see VMs that exist and non-empty buffers; the command line stays within
 * MONITOR_LINE_MAX; the focus is on a VM that exists or on the monitor; the output has no
 * control bytes but '\n' and '\b'.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keel/errno.h>
#include <vmm/monitor.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define VMS     15
#define OUT_MAX (1 << 16)

static const char *const names[VMS] = {"a",   "b", "web", "1", "2", "10", "x-y", "n",
                                       "db0", "m", "z",   "q", "r", "s",  "t"};
static const char *const states[] = {"created", "running", "paused", "stopped"};

struct fake {
        unsigned count;
        uint8_t state[VMS];
        uint64_t run_us[VMS];
        uint64_t in_hash[VMS], in_bytes[VMS], action_hash;
        struct exit_stats stats[VMS];
        struct exit_trace_entry ring[VMS][EXIT_TRACE_LEN];
        char out[OUT_MAX];
        size_t out_len; /* bytes written, even beyond `out` */
};

static struct fake fa, fb;

static void fail(const char *what)
{
        fprintf(stderr, "fuzz_monitor: invariant violated: %s\n", what);
        abort();
}

static uint64_t mix(uint64_t h, uint64_t v)
{
        return (h ^ v) * 0x100000001b3ull;
}

static unsigned f_count(void *ctx)
{
        return ((struct fake *)ctx)->count;
}

static void f_info(void *ctx, unsigned vm, struct monitor_vm_info *i)
{
        struct fake *f = ctx;

        if (vm >= f->count)
                fail("info on a VM that does not exist");
        i->name = names[vm];
        i->state = states[f->state[vm]];
        i->stop = f->state[vm] == 3 ? "exit" : NULL;
        i->vcpus = 1;
        i->exits = f->run_us[vm] * 3;
        i->run_us = f->run_us[vm];
}

static int f_action(void *ctx, unsigned vm, enum monitor_action a)
{
        /* allowed source states per action (bit per state), and the target */
        static const uint8_t from[MONITOR_ACTION_COUNT] = {0x1, 0x7, 0x2, 0x4, 0xc};
        static const uint8_t to[MONITOR_ACTION_COUNT] = {1, 3, 2, 1, 0};
        struct fake *f = ctx;

        if (vm >= f->count || (unsigned)a >= MONITOR_ACTION_COUNT)
                fail("action on a VM that does not exist or an unknown action");
        f->action_hash = mix(mix(f->action_hash, vm), a);
        if (!(from[a] & (1u << f->state[vm])))
                return -KEEL_EPERM;
        f->state[vm] = to[a];
        return 0;
}

static void f_input(void *ctx, unsigned vm, const uint8_t *buf, size_t n)
{
        struct fake *f = ctx;

        if (vm >= f->count)
                fail("input for a VM that does not exist");
        if (!n)
                fail("empty input call");
        for (size_t k = 0; k < n; k++)
                f->in_hash[vm] = mix(f->in_hash[vm], buf[k]);
        f->in_bytes[vm] += n;
}

static void f_write(void *ctx, const char *s, size_t n)
{
        struct fake *f = ctx;

        if (!n)
                fail("empty write");
        for (size_t k = 0; k < n; k++) {
                unsigned char c = (unsigned char)s[k];

                if ((c < 0x20 && c != '\n' && c != '\b') || c >= 0x7f)
                        fail("control byte in the output");
                if (f->out_len + k < OUT_MAX)
                        f->out[f->out_len + k] = (char)c;
        }
        f->out_len += n;
}

static struct exit_stats *f_vcpu_stats(void *ctx, unsigned vm, unsigned vcpu)
{
        struct fake *f = ctx;

        if (vm >= f->count)
                fail("statistics of a VM that does not exist");
        return vcpu == 0 && f->state[vm] != 3 ? &f->stats[vm] : NULL;
}

static int f_trace(void *ctx, unsigned vm, bool on)
{
        struct fake *f = ctx;

        if (vm >= f->count || f->state[vm] == 3)
                fail("trace of a VM without statistics");
        if (on)
                exit_trace_enable(&f->stats[vm], f->ring[vm]);
        else
                exit_trace_disable(&f->stats[vm]);
        return 0;
}

static const struct monitor_ops ops = {
    .count = f_count,
    .info = f_info,
    .action = f_action,
    .input = f_input,
    .write = f_write,
    .vcpu_stats = f_vcpu_stats,
    .trace = f_trace,
};

static void check(const struct monitor *m, const struct fake *f)
{
        int focus = monitor_focus(m);

        if (m->len > MONITOR_LINE_MAX)
                fail("command line beyond MONITOR_LINE_MAX");
        if (focus >= (int)f->count || (focus < 0) != m->in_monitor || (!f->count && focus >= 0))
                fail("focus on a VM that does not exist");
}

static void setup(struct fake *f, struct monitor *m, const uint8_t *data, unsigned count)
{
        memset(f, 0, sizeof(*f));
        f->count = count;
        for (unsigned k = 0; k < count; k++) {
                f->state[k] = data[1 + k] & 3;
                f->run_us[k] = (uint64_t)data[1 + k] << (k & 1 ? 56 : 8);
                for (unsigned r = 0; r < EXIT_REASONS; r++) {
                        f->stats[k].count[r] = (uint64_t)data[1 + k] * r;
                        f->stats[k].ticks[r] = f->stats[k].count[r] * 263 << (k & 1 ? 40 : 0);
                }
                exit_trace_enable(&f->stats[k], f->ring[k]);
                for (unsigned e = 0; e < 300; e++)
                        exit_trace_record(&f->stats[k], (enum exit_reason)(e % EXIT_REASONS),
                                          e * data[1 + k], e, 0x100000 + e, e, e);
                exit_trace_disable(&f->stats[k]);
        }
        monitor_init(m, &ops, f);
        monitor_announce(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct monitor ma, mb;
        unsigned count, piece;
        uint64_t delivered = 0;

        if (size < 1)
                return 0;
        count = data[0] & 15;
        piece = data[0] >> 4;
        if (size < 1 + count)
                return 0;
        setup(&fa, &ma, data, count);
        setup(&fb, &mb, data, count);
        for (size_t k = 1 + count; k < size;) {
                size_t n = piece ? piece : size - k;

                if (n > size - k)
                        n = size - k;
                monitor_input(&ma, data + k, n);
                check(&ma, &fa);
                k += n;
        }
        for (size_t k = 1 + count; k < size; k++) {
                monitor_input(&mb, data + k, 1);
                check(&mb, &fb);
        }
        if (fa.out_len != fb.out_len ||
            memcmp(fa.out, fb.out, fa.out_len < OUT_MAX ? fa.out_len : OUT_MAX) != 0)
                fail("output depends on how the input was split");
        if (fa.action_hash != fb.action_hash || memcmp(fa.state, fb.state, sizeof(fa.state)))
                fail("actions depend on how the input was split");
        for (unsigned k = 0; k < count; k++) {
                if (fa.in_hash[k] != fb.in_hash[k] || fa.in_bytes[k] != fb.in_bytes[k])
                        fail("VM input depends on how the input was split");
                delivered += fa.in_bytes[k];
        }
        if (delivered > size - 1 - count)
                fail("more bytes delivered than typed");
        if (ma.focus != mb.focus || ma.in_monitor != mb.in_monitor || ma.len != mb.len ||
            memcmp(ma.line, mb.line, ma.len) != 0)
                fail("monitor state depends on how the input was split");
        return 0;
}
