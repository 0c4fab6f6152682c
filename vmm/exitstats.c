/*
 * Exit statistics and the exit trace ring (vmm/include/vmm/exitstats.h): the out-of-line
 * parts. The vCPU's CPU calls exit_trace_record only; everything else is the monitor's.
 */
#include <stdio.h>
#include <string.h>

#include <vmm/exitstats.h>

static const char *const reason_names[EXIT_REASONS] = {
    [EXIT_OTHER] = "other",
    [EXIT_CPUID] = "cpuid",
    [EXIT_HYPERCALL] = "hypercall",
    [EXIT_SMC] = "smc",
    [EXIT_IO] = "io",
    [EXIT_MSR] = "msr",
    [EXIT_SYSREG] = "sysreg",
    [EXIT_MMIO] = "mmio",
    [EXIT_INTR] = "interrupt",
    [EXIT_IRQ_WINDOW] = "irq-window",
    [EXIT_HALT] = "halt",
    [EXIT_CACHE] = "cache-flush",
};

const char *exit_reason_name(unsigned reason)
{
        return reason < EXIT_REASONS ? reason_names[reason] : "?";
}

void exit_stats_summary(const struct exit_stats *s, const char *const names[EXIT_REASONS],
                        char *buf, size_t len)
{
        size_t used = 0;

        if (!len)
                return;
        buf[0] = '\0';
        for (unsigned k = 1; k <= EXIT_REASONS && used < len; k++) {
                unsigned r = k % EXIT_REASONS; /* EXIT_OTHER (0) last */
                int n;

                if (!s->count[r] || !names[r])
                        continue;
                n = snprintf(buf + used, len - used, "%s%s %llu", used ? ", " : "", names[r],
                             (unsigned long long)s->count[r]);
                if (n < 0)
                        break;
                used += (size_t)n;
        }
        if (!used)
                snprintf(buf, len, "none");
}

void exit_trace_record(struct exit_stats *s, enum exit_reason reason, uint64_t at, uint64_t cost,
                       uint64_t pc, uint64_t info, uint32_t code)
{
        /* Acquire: the ring was stored before the switch (exit_trace_enable). */
        struct exit_trace_entry *ring = __atomic_load_n(&s->ring, __ATOMIC_ACQUIRE);
        uint64_t head = s->trace_head;
        struct exit_trace_entry *e;

        if (!ring)
                return;
        /* The head stored last time before this entry's bytes (a reader's check below). */
        __atomic_thread_fence(__ATOMIC_RELEASE);
        e = &ring[head % EXIT_TRACE_LEN];
        e->tsc = at;
        e->pc = pc;
        e->info = info;
        e->cost = cost > UINT32_MAX ? UINT32_MAX : (uint32_t)cost;
        e->code = (uint16_t)code;
        e->reason = (uint16_t)reason;
        /* Release: a reader that sees the new head sees the entry whole. */
        __atomic_store_n(&s->trace_head, head + 1, __ATOMIC_RELEASE);
}

void exit_stats_add(const struct exit_stats *s, struct exit_totals *t)
{
        for (unsigned r = 0; r < EXIT_REASONS; r++) {
                uint64_t c = __atomic_load_n(&s->count[r], __ATOMIC_RELAXED);
                uint64_t k = __atomic_load_n(&s->ticks[r], __ATOMIC_RELAXED);

                /* The vCPU's counts only grow (a VM built again starts base and all at 0). */
                t->count[r] += c - s->base_count[r];
                t->ticks[r] += k - s->base_ticks[r];
        }
}

void exit_stats_clear(struct exit_stats *s)
{
        for (unsigned r = 0; r < EXIT_REASONS; r++) {
                s->base_count[r] = __atomic_load_n(&s->count[r], __ATOMIC_RELAXED);
                s->base_ticks[r] = __atomic_load_n(&s->ticks[r], __ATOMIC_RELAXED);
        }
}

void exit_trace_enable(struct exit_stats *s, struct exit_trace_entry *ring)
{
        if (!s->ring)
                __atomic_store_n(&s->ring, ring, __ATOMIC_RELEASE);
        __atomic_store_n(&s->trace, true, __ATOMIC_RELEASE);
}

void exit_trace_disable(struct exit_stats *s)
{
        __atomic_store_n(&s->trace, false, __ATOMIC_RELAXED);
}

void exit_trace_clear(struct exit_stats *s)
{
        s->trace_base = __atomic_load_n(&s->trace_head, __ATOMIC_ACQUIRE);
}

void exit_trace_span(const struct exit_stats *s, uint64_t *first, uint64_t *head)
{
        uint64_t h = __atomic_load_n(&s->trace_head, __ATOMIC_ACQUIRE);
        /* The oldest slot is the one the vCPU writes next: not readable. */
        uint64_t f = h >= EXIT_TRACE_LEN ? h - EXIT_TRACE_LEN + 1 : 0;

        if (!s->ring)
                f = h;
        *first = f > s->trace_base ? f : s->trace_base;
        *head = h;
}

bool exit_trace_get(const struct exit_stats *s, uint64_t i, struct exit_trace_entry *out)
{
        uint64_t first, head;

        exit_trace_span(s, &first, &head);
        if (i < first || i >= head)
                return false;
        memcpy(out, &s->ring[i % EXIT_TRACE_LEN], sizeof(*out));
        /* Not overwritten while it was copied (the vCPU may be a whole ring ahead now)? */
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        exit_trace_span(s, &first, &head);
        return i >= first;
}
