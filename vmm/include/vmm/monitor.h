/*
 * The console input side and Keel's monitor (docs/console.md). Every VM's output shares Keel's
 * one serial console (vcons prefixes each line with the VM's name); the bytes typed on that
 * console go to monitor_input, which routes them to the VM that has input focus or to the
 * monitor's command line.
 *
 * Escape key Ctrl-] (0x1d, as in telnet and virsh), then: '1'..'8' focus that VM, 'n' the
 * next VM, 'm' the monitor, '?' one line of help, Ctrl-] a literal 0x1d to the focused VM;
 * any other byte is ignored with a note. An escape may be split across monitor_input calls.
 *
 * The monitor's command line (prompt "keel> ", echoed, backspace / DEL, Ctrl-C drops the line,
 * CR or LF ends it, at most MONITOR_LINE_MAX bytes): help, list, start VM, stop VM, pause VM,
 * resume VM, reset VM, gdb VM [port], stats VM [clear], trace VM on|off|show [N]|clear,
 * snapshot VM, restore VM; VM is
 * a 1-based index as shown by list, or a name. After `gdb VM` (without port) every byte typed goes
 * to ops->gdb_input until monitor_gdb_done.
 *
 * The monitor knows VMs only through struct monitor_ops: VMs are numbered 0..count()-1 there
 * (the user sees 1..count()). It holds no VM state of its own beyond the focus, so the VM
 * table may change state under it; count() must not change after monitor_init.
 *
 * Calls are serialised by the monitor's lock (any CPU may feed it); the ops are called with the
 * lock held and must not call back into the monitor.
 */
#ifndef VMM_MONITOR_H
#define VMM_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <keel/spinlock.h>
#include <vmm/exitstats.h>

#define MONITOR_ESCAPE      0x1d /* Ctrl-] */
#define MONITOR_LINE_MAX    64   /* bytes of a command line, without its end */
#define MONITOR_ESC_VMS     8    /* Ctrl-] 1..8 */
#define MONITOR_TRACE_VCPUS 8    /* trace show merges the rings of at most this many vCPUs */

enum monitor_action {
        MONITOR_START = 0, /* created -> running */
        MONITOR_STOP,      /* created | running | paused -> stopped */
        MONITOR_PAUSE,     /* running -> paused */
        MONITOR_RESUME,    /* paused -> running */
        MONITOR_RESET,     /* paused | stopped -> created */
        MONITOR_ACTION_COUNT,
};

/* What `list` shows of one VM; info() fills it (the monitor zeroes it first). */
struct monitor_vm_info {
        const char *name;  /* the VM's name; NULL reads as "" */
        const char *state; /* vm_state_name: "created", "running", "paused", "stopped" */
        const char *stop;  /* why it stopped (vm_stop_reason_name), NULL or "" if it did not */
        unsigned vcpus;
        uint64_t exits;       /* all vCPUs' exits */
        uint64_t run_us;      /* time its vCPUs have run, microseconds; 0 if not measured */
        uint64_t counter_khz; /* the exit statistics' counter (vmm/exitstats.h); 0: unknown */
        uint64_t keel_bytes;  /* Keel's own memory for it beyond its RAM (docs/benchmarks.md) */
};

struct monitor_ops {
        unsigned (*count)(void *ctx);
        void (*info)(void *ctx, unsigned vm, struct monitor_vm_info *out);
        /* Change a VM's state; 0 or -KEEL_E* (-KEEL_EPERM: its state refuses). */
        int (*action)(void *ctx, unsigned vm, enum monitor_action a);
        /*
         * Bytes typed for the VM's console. The ops decide what a VM that cannot take them
         * (stopped, full receive FIFO) gets: drop them, never buffer without bound.
         */
        void (*input)(void *ctx, unsigned vm, const uint8_t *buf, size_t n);
        /* Monitor output for Keel's console (lines end in '\n'; the prompt does not). */
        void (*write)(void *ctx, const char *s, size_t n);
        /*
         * Optional (NULL: `gdb` says it is not available). Start a gdb session on the VM, on
         * this console (port false) or over the debug port: 0 or -KEEL_E* (vmm/gdb.h).
         */
        int (*gdb)(void *ctx, unsigned vm, bool port);
        /* What is typed while gdb has the console. */
        void (*gdb_input)(void *ctx, const uint8_t *buf, size_t n);
        /*
         * Optional (NULL: `stats` and `trace` say they are not available). The exit statistics
         * of the VM's vCPU `vcpu` (vmm/exitstats.h: the monitor reads them and moves their
         * clear points), NULL past its last vCPU or while the VM has none (not built).
         */
        struct exit_stats *(*vcpu_stats)(void *ctx, unsigned vm, unsigned vcpu);
        /* Tracing of the VM's exits on or off (every vCPU): 0 or -KEEL_E*. */
        int (*trace)(void *ctx, unsigned vm, bool on);
        /*
         * Optional: the input focus is now VM `vm`, or the monitor (-1); called after the
         * console's focus line (at monitor_announce and at every switch).
         */
        void (*focus)(void *ctx, int vm);
        /*
         * Optional (NULL: `snapshot` and `restore` say they are not available). Take the VM's
         * snapshot, or restore it from its snapshot (vmm/snapshot.h): 0 or -KEEL_E*, and in
         * either case one line for the user in msg (no "keel: monitor: ", no newline).
         */
        int (*snapshot)(void *ctx, unsigned vm, bool restore, char *msg, size_t len);
};

struct monitor {
        struct spinlock lock;
        const struct monitor_ops *ops;
        void *ctx;
        unsigned count;   /* ops->count() at monitor_init */
        unsigned focus;   /* VM with input focus, when !in_monitor */
        bool in_monitor;  /* typed bytes go to the command line */
        bool esc;         /* Ctrl-] seen, its second byte not yet */
        uint8_t term_seq; /* command line: 1 after ESC, 2 inside ESC [ / ESC O: swallowed */
        bool after_cr;    /* last line ended with CR: a following LF is part of it */
        bool overlong;    /* the current line exceeded MONITOR_LINE_MAX: refused at its end */
        bool to_gdb;      /* a gdb session has the console (gdb VM) */
        unsigned len;     /* bytes in line */
        char line[MONITOR_LINE_MAX + 1];
};

/*
 * Input focus on VM 0 (on the monitor if there is no VM), empty command line. Prints nothing;
 * `ops` and `ctx` are kept, not copied.
 */
void monitor_init(struct monitor *m, const struct monitor_ops *ops, void *ctx);
/* Print the focus line ("keel: console: input to vm NAME (Ctrl-] ? for help)"), e.g. at boot. */
void monitor_announce(struct monitor *m);
/*
 * With the monitor focused: the prompt and what has been typed of the command line, again. For
 * the kernel to call after other output (a VM's line) has ended the console line the prompt
 * was on; does nothing while a VM has the input.
 */
void monitor_redraw(struct monitor *m);
/* Bytes typed on Keel's console. */
void monitor_input(struct monitor *m, const uint8_t *buf, size_t n);
/* The console's gdb session ended: input goes to the monitor's command line again. */
void monitor_gdb_done(struct monitor *m);
/* The VM with input focus, or -1 if the monitor has it. */
int monitor_focus(const struct monitor *m);

#endif
