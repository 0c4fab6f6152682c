/*
 * Exit statistics and the exit trace (docs/debugging.md). Per vCPU: how many exits of each
 * generic reason, and the counter ticks Keel spent handling them (x86: TSC; arm64: CNTPCT),
 * from the counter read just after the world switch back to Keel to the one read when the
 * handler is done. Each arch maps its own exit codes into enum exit_reason and keeps its raw
 * code for the trace.
 *
 * Ownership, no locks: count[], ticks[], trace_head and the ring's entries are written only
 * by the CPU running the vCPU. The monitor (the boot CPU) reads them as they are (a 64-bit
 * load is whole on both arches; a sum may be a few exits behind) and owns the rest: the trace
 * switch, the ring (allocated once, freed with the VM) and the clear points (base_*), so that
 * a clear needs no help from the vCPU and works on a paused VM too.
 *
 * Hot path, tracing off: the arch adds the handler's ticks to ticks[reason] and tests
 * `trace` (one predictable branch). Tracing on: exit_trace_record writes one ring entry.
 */
#ifndef VMM_EXITSTATS_H
#define VMM_EXITSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Generic exit reasons. 0 is "other", so an arch's table of codes defaults to it. */
enum exit_reason {
        EXIT_OTHER = 0,
        EXIT_CPUID,
        EXIT_HYPERCALL,  /* VMMCALL, VMCALL, HVC */
        EXIT_SMC,        /* arm64 SMC (PSCI) */
        EXIT_IO,         /* x86 port I/O */
        EXIT_MSR,        /* x86 RDMSR / WRMSR */
        EXIT_SYSREG,     /* arm64 trapped system register */
        EXIT_MMIO,       /* nested / stage-2 fault: a device access or outside RAM */
        EXIT_INTR,       /* a physical interrupt (Keel's tick, a kick, an NMI) */
        EXIT_IRQ_WINDOW, /* x86: the guest can take an interrupt (or NMI) now */
        EXIT_HALT,       /* HLT, WFI */
        EXIT_CACHE,      /* INVD, WBINVD */
        EXIT_REASONS,
};

#define EXIT_TRACE_LEN 256 /* entries per vCPU ring: a power of two, 8 KiB */

struct exit_trace_entry {
        uint64_t tsc;    /* counter at the exit */
        uint64_t pc;     /* guest RIP / PC at the exit */
        uint64_t info;   /* SVM EXITINFO1, VMX exit qualification, arm64 ESR_EL2 */
        uint32_t cost;   /* counter ticks of Keel's handling (UINT32_MAX: that or more) */
        uint16_t code;   /* the arch's exit code: SVM exit code, VMX basic reason, arm64 EC */
        uint16_t reason; /* enum exit_reason */
};

struct exit_stats {
        /* The vCPU's CPU writes these. */
        uint64_t count[EXIT_REASONS];
        uint64_t ticks[EXIT_REASONS];
        uint64_t trace_head; /* entries ever written to ring (release-stored) */
        /* The monitor writes these. */
        bool trace;                    /* record each exit in ring */
        struct exit_trace_entry *ring; /* EXIT_TRACE_LEN entries; set before trace */
        uint64_t base_count[EXIT_REASONS], base_ticks[EXIT_REASONS]; /* at the last clear */
        uint64_t trace_base; /* trace_head at the last trace clear */
};

/* Totals of one or more vCPUs since their last clear. */
struct exit_totals {
        uint64_t count[EXIT_REASONS];
        uint64_t ticks[EXIT_REASONS];
};

/* One trace entry: the exit at counter `at`, handled in `cost` ticks (exit_stats_end). */
void exit_trace_record(struct exit_stats *s, enum exit_reason reason, uint64_t at, uint64_t cost,
                       uint64_t pc, uint64_t info, uint32_t code) __attribute__((cold));

/*
 * The arch's end of an exit: `cost` is the counter now minus the counter just after the exit.
 * The counting itself (count[reason]++) is the arch's, where it tells the exits apart. True if
 * the exit is to be traced: then the arch calls exit_trace_record with what it knows of it
 * (read only then: a VMREAD is not free).
 */
static inline __attribute__((always_inline)) bool
exit_stats_end(struct exit_stats *s, enum exit_reason reason, uint64_t cost)
{
        s->ticks[reason] += cost;
        /* A plain read (one compare with memory): the monitor's change is seen an exit late
         * at worst. */
        return __builtin_expect(s->trace, 0);
}

/* "cpuid", "hypercall", ...; "?" for a value out of range. */
const char *exit_reason_name(unsigned reason);

/*
 * "cpuid 5, mmio 7" (an arch's names for the reasons, NULL: not shown; "other" last) of all
 * the vCPU's exits, whatever was cleared; "none" without exits. For the VM's end report.
 */
void exit_stats_summary(const struct exit_stats *s, const char *const names[EXIT_REASONS],
                        char *buf, size_t len);
/* Adds the vCPU's counts and ticks since its last clear to *t. */
void exit_stats_add(const struct exit_stats *s, struct exit_totals *t);
/* From now on the vCPU's statistics count from zero (the monitor's `stats VM clear`). */
void exit_stats_clear(struct exit_stats *s);

/*
 * Tracing on (with a ring of EXIT_TRACE_LEN entries, kept from the first call on) or off.
 * The ring is the caller's to free once the vCPU no longer runs.
 */
void exit_trace_enable(struct exit_stats *s, struct exit_trace_entry *ring);
void exit_trace_disable(struct exit_stats *s);
/* Forget the entries recorded so far. */
void exit_trace_clear(struct exit_stats *s);
/*
 * The entries a reader may ask for are numbered [first, head) in the order they were written
 * (exit_trace_span). exit_trace_get copies entry i: false if it is outside that range by now
 * (the vCPU overwrote it while it was read).
 */
void exit_trace_span(const struct exit_stats *s, uint64_t *first, uint64_t *head);
bool exit_trace_get(const struct exit_stats *s, uint64_t i, struct exit_trace_entry *out);

#endif
