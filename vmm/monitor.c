/*
 * Console input routing and Keel's monitor (vmm/include/vmm/monitor.h, docs/console.md).
 * Bytes for the focused VM are passed on in runs, as they came; Ctrl-] starts an escape; with
 * the monitor focused, bytes edit its command line, which runs at CR or LF.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <keel/errno.h>
#include <vmm/monitor.h>

#define OUT_MAX 320 /* a line: the snapshot messages name partitions by GUID (docs/snapshot.md) */

static const char escape_help[] =
    "Ctrl-] then: 1-8 input to that vm, n next vm, m monitor, ? this help, Ctrl-] a literal "
    "Ctrl-] (any vm: monitor console VM)";

#define CMD_HELP    (-1)
#define CMD_LIST    (-2)
#define CMD_GDB     (-3)
#define CMD_STATS   (-4)
#define CMD_TRACE   (-5)
#define CMD_CONS    (-6)
#define CMD_SNAP    (-7)
#define CMD_RESTORE (-8)

struct command {
        const char *name;
        int action; /* enum monitor_action, or one of CMD_*: no VM argument */
        const char *usage, *help;
};

static const struct command commands[] = {
    {"help", CMD_HELP, "help", "this list"},
    {"list", CMD_LIST, "list [WORD]",
     "the vms: state, vcpus, exits, cpu time and share, stop reason; WORD: only those whose "
     "state or stop reason is WORD or whose name starts with it"},
    {"console", CMD_CONS, "console VM", "typed input to a vm (Ctrl-] m: back here)"},
    {"start", MONITOR_START, "start VM", "run a created vm"},
    {"stop", MONITOR_STOP, "stop VM", "stop a vm (reset makes it new)"},
    {"pause", MONITOR_PAUSE, "pause VM", "stop running a vm for now"},
    {"resume", MONITOR_RESUME, "resume VM", "go on running a paused vm"},
    {"reset", MONITOR_RESET, "reset VM", "a paused or stopped vm back to created"},
    {"gdb", CMD_GDB, "gdb VM [port]",
     "stop a vm for gdb on this console (port: gdb on the debug port)"},
    {"stats", CMD_STATS, "stats VM [clear]",
     "exits by reason per vcpu: count, cost in counter ticks and ns; clear: from zero"},
    {"trace", CMD_TRACE, "trace VM on|off|show [N]|clear",
     "record each exit (reason, pc, info, cost); show the last N (32)"},
    {"snapshot", CMD_SNAP, "snapshot VM",
     "save a paused vm's whole state (in memory or on its partition)"},
    {"restore", CMD_RESTORE, "restore VM", "a paused or created vm back to its snapshot"},
};

#define TRACE_SHOW_DEFAULT 32
#define TRACE_SHOW_MAX     EXIT_TRACE_LEN

#define VM_INDEX_MAX 100000 /* digits beyond this are not an index any more */

static void out(struct monitor *m, const char *s, size_t n)
{
        if (n)
                m->ops->write(m->ctx, s, n);
}

/* "head" and the formatted text, cut to OUT_MAX - 1 bytes (still one whole line). */
static void outv(struct monitor *m, const char *head, const char *fmt, va_list ap)
{
        char buf[OUT_MAX];
        size_t h = strlen(head);
        int n;

        memcpy(buf, head, h);
        n = vsnprintf(buf + h, sizeof(buf) - h, fmt, ap);
        if (n < 0)
                return;
        n += (int)h;
        if ((size_t)n >= sizeof(buf)) { /* cut short: still one whole line */
                n = sizeof(buf) - 1;
                buf[n - 1] = '\n';
        }
        out(m, buf, (size_t)n);
}

static void outf(struct monitor *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void outf(struct monitor *m, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        outv(m, "", fmt, ap);
        va_end(ap);
}

/* The monitor's own line: "keel: monitor: " and the formatted text (outf). */
static void say(struct monitor *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct monitor *m, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        outv(m, "keel: monitor: ", fmt, ap);
        va_end(ap);
}

static void vm_info(struct monitor *m, unsigned vm, struct monitor_vm_info *i)
{
        memset(i, 0, sizeof(*i));
        m->ops->info(m->ctx, vm, i);
        if (!i->name)
                i->name = "";
        if (!i->state)
                i->state = "?";
        if (!i->stop)
                i->stop = "";
}

static void prompt(struct monitor *m)
{
        out(m, "keel> ", 6);
        out(m, m->line, m->len);
}

/*
 * A note from the console between typed lines: with the monitor focused the cursor is behind
 * the prompt, so the note goes on a line of its own and the prompt (and what was typed) is
 * shown again after it.
 */
static void note_begin(struct monitor *m)
{
        if (m->in_monitor)
                out(m, "\n", 1);
}

static void note_end(struct monitor *m)
{
        if (m->in_monitor)
                prompt(m);
}

static void focus_line(struct monitor *m)
{
        struct monitor_vm_info i;

        if (m->in_monitor) {
                outf(m, "keel: console: monitor (type help)\n");
                return;
        }
        vm_info(m, m->focus, &i);
        if (strcmp(i.state, "running") == 0)
                outf(m, "keel: console: input to vm %s (Ctrl-] ? for help)\n", i.name);
        else
                outf(m, "keel: console: input to vm %s, %s (Ctrl-] ? for help)\n", i.name, i.state);
}

static void focus_changed(struct monitor *m)
{
        if (m->ops->focus)
                m->ops->focus(m->ctx, m->in_monitor ? -1 : (int)m->focus);
}

static void set_focus(struct monitor *m, bool monitor, unsigned vm)
{
        note_begin(m);
        m->in_monitor = monitor;
        if (!monitor)
                m->focus = vm;
        focus_line(m);
        focus_changed(m);
        note_end(m);
}

/* The byte after Ctrl-]. */
static void escape(struct monitor *m, uint8_t c)
{
        const uint8_t lit = MONITOR_ESCAPE;

        if (c >= '1' && c < '1' + MONITOR_ESC_VMS) {
                if ((unsigned)(c - '1') < m->count) {
                        set_focus(m, false, c - '1');
                        return;
                }
                note_begin(m);
                if (m->count)
                        outf(m, "keel: console: no vm %c (vms: 1-%u)\n", c, m->count);
                else
                        outf(m, "keel: console: no vms\n");
                note_end(m);
                return;
        }
        if (c == 'm') {
                set_focus(m, true, 0);
                return;
        }
        if (c == 'n' && m->count) {
                /* From the monitor: back to the VM that had input last. */
                set_focus(m, false, m->in_monitor ? m->focus : (m->focus + 1) % m->count);
                return;
        }
        if (c == MONITOR_ESCAPE && !m->in_monitor) {
                m->ops->input(m->ctx, m->focus, &lit, 1);
                return;
        }
        note_begin(m);
        if (c == '?')
                outf(m, "keel: console: %s\n", escape_help);
        else if (c == 'n')
                outf(m, "keel: console: no vms\n");
        else if (c == MONITOR_ESCAPE)
                outf(m, "keel: console: no vm has input (Ctrl-] ? for help)\n");
        else if (c > 0x20 && c < 0x7f)
                outf(m, "keel: console: Ctrl-] %c ignored (Ctrl-] ? for help)\n", c);
        else
                outf(m, "keel: console: Ctrl-] 0x%02x ignored (Ctrl-] ? for help)\n", c);
        note_end(m);
}

/* VM argument: its 1-based index, else its name; -KEEL_ENOENT if neither. */
static int find_vm(struct monitor *m, const char *arg, unsigned *vm)
{
        struct monitor_vm_info i;
        unsigned v = 0;
        const char *p;

        for (p = arg; *p >= '0' && *p <= '9' && v <= VM_INDEX_MAX; p++)
                v = v * 10 + (unsigned)(*p - '0');
        if (p != arg && !*p && v >= 1 && v <= m->count) {
                *vm = v - 1;
                return 0;
        }
        for (unsigned k = 0; k < m->count; k++) {
                vm_info(m, k, &i);
                if (strcmp(i.name, arg) == 0) {
                        *vm = k;
                        return 0;
                }
        }
        return -KEEL_ENOENT;
}

/* run * 100 / total without overflow; total > 0, run <= total. */
static unsigned share(uint64_t run, uint64_t total)
{
        if (run > total)
                return 100;
        if (run <= UINT64_MAX / 100)
                return (unsigned)(run * 100 / total);
        return (unsigned)(run / (total / 100));
}

static void list(struct monitor *m, const char *only)
{
        struct monitor_vm_info i;
        uint64_t total = 0;
        unsigned shown = 0;
        char pct[8];

        for (unsigned k = 0; k < m->count; k++) {
                vm_info(m, k, &i);
                total = i.run_us > UINT64_MAX - total ? UINT64_MAX : total + i.run_us;
        }
        outf(m, "  # name             state    vcpus        exits      cpu time share   keel mem "
                "stop\n");
        for (unsigned k = 0; k < m->count; k++) {
                vm_info(m, k, &i);
                if (only && strcmp(i.state, only) && strcmp(i.stop, only) &&
                    strncmp(i.name, only, strlen(only)))
                        continue;
                shown++;
                if (total)
                        snprintf(pct, sizeof(pct), "%u%%", share(i.run_us, total));
                else
                        snprintf(pct, sizeof(pct), "-");
                outf(m, "%3u %-16s %-8s %5u %12llu %9llu.%03llu s %5s %6llu KiB%s%s\n", k + 1,
                     i.name, i.state, i.vcpus, (unsigned long long)i.exits,
                     (unsigned long long)(i.run_us / 1000000),
                     (unsigned long long)(i.run_us / 1000 % 1000), pct,
                     (unsigned long long)(i.keel_bytes >> 10), i.stop[0] ? " " : "", i.stop);
        }
        if (only || m->count > MONITOR_ESC_VMS)
                outf(m, "%u of %u vms shown\n", shown, m->count);
}

static void help(struct monitor *m)
{
        outf(m, "commands:\n");
        for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
                outf(m, "  %-10s %s\n", commands[k].usage, commands[k].help);
        outf(m, "VM is the number list shows, or the name\n%s\n", escape_help);
}

static void vm_command(struct monitor *m, const struct command *c, const char *arg)
{
        struct monitor_vm_info i;
        unsigned vm;
        int r;

        if (find_vm(m, arg, &vm) < 0) {
                say(m, "no vm %s (list shows them)\n", arg);
                return;
        }
        r = m->ops->action(m->ctx, vm, (enum monitor_action)c->action);
        vm_info(m, vm, &i);
        if (r < 0)
                say(m, "cannot %s vm %s (%s): %s\n", c->name, i.name, i.state, keel_strerror(r));
        else
                say(m, "vm %s is %s\n", i.name, i.state);
}

/* gdb VM [port]: hand this console (or the debug port) to a gdb session on the VM. */
static void gdb_command(struct monitor *m, const char *arg, const char *where)
{
        struct monitor_vm_info i;
        bool port = where != NULL;
        unsigned vm;
        int r;

        if (where && strcmp(where, "port") != 0) {
                say(m, "usage: gdb VM [port]\n");
                return;
        }
        if (find_vm(m, arg, &vm) < 0) {
                say(m, "no vm %s (list shows them)\n", arg);
                return;
        }
        if (!m->ops->gdb) {
                say(m, "gdb is not available here\n");
                return;
        }
        r = m->ops->gdb(m->ctx, vm, port);
        vm_info(m, vm, &i);
        if (r == -KEEL_ENODEV)
                say(m,
                    "this machine has no debug port for gdb; use gdb %s on "
                    "the console\n",
                    arg);
        else if (r == -KEEL_EBUSY)
                say(m, "gdb is already debugging a vm (one at a time: detach it "
                       "first)\n");
        else if (r == -KEEL_ENOTSUP)
                say(m,
                    "cannot debug vm %s: gdb is not supported on this "
                    "arch or virtualization backend yet (docs/debugging.md)\n",
                    i.name);
        else if (r < 0)
                say(m, "cannot debug vm %s (%s): %s\n", i.name, i.state, keel_strerror(r));
        else if (port)
                say(m,
                    "the debug port serves vm %s from gdb's next "
                    "connection\n",
                    i.name);
        else {
                say(m,
                    "vm %s stopped for gdb on this console: connect gdb "
                    "now (detach to come back)\n",
                    i.name);
                m->to_gdb = true;
        }
}

/* Counter ticks to nanoseconds without overflow; 0 if the frequency is unknown. */
static uint64_t ticks_ns(uint64_t ticks, uint64_t khz)
{
        if (!khz)
                return 0;
        return ticks / khz * 1000000 + ticks % khz * 1000000 / khz;
}

static void stats_line(struct monitor *m, const char *who, const char *reason, uint64_t count,
                       uint64_t ticks, uint64_t khz)
{
        uint64_t mean = count ? ticks / count : 0;

        outf(m, "%4s %-11s %12llu %16llu %10llu %10llu\n", who, reason, (unsigned long long)count,
             (unsigned long long)ticks, (unsigned long long)mean,
             (unsigned long long)ticks_ns(mean, khz));
}

/* The lines of one vCPU's (who) or the VM's totals: each reason with exits, then "total". */
static void stats_lines(struct monitor *m, const char *who, const struct exit_totals *t,
                        uint64_t khz)
{
        uint64_t count = 0, ticks = 0;

        for (unsigned r = 0; r < EXIT_REASONS; r++) {
                if (!t->count[r])
                        continue;
                stats_line(m, who, exit_reason_name(r), t->count[r], t->ticks[r], khz);
                count += t->count[r];
                ticks += t->ticks[r];
        }
        stats_line(m, who, "total", count, ticks, khz);
}

/* The VM's vCPUs' statistics, or a message saying why there are none (false). */
static bool vm_has_stats(struct monitor *m, unsigned vm, const struct monitor_vm_info *i)
{
        if (!m->ops->vcpu_stats || !m->ops->trace) {
                say(m, "exit statistics are not available here\n");
                return false;
        }
        if (!m->ops->vcpu_stats(m->ctx, vm, 0)) {
                say(m,
                    "vm %s (%s) has no exit statistics now: they start with "
                    "the vm (start %s)\n",
                    i->name, i->state, i->name);
                return false;
        }
        return true;
}

/* stats VM [clear] */
static void stats_command(struct monitor *m, unsigned vm, const char *what)
{
        struct exit_totals all = {0};
        struct monitor_vm_info i;
        struct exit_stats *s;
        unsigned c;

        vm_info(m, vm, &i);
        if (!vm_has_stats(m, vm, &i))
                return;
        if (what) {
                for (c = 0; (s = m->ops->vcpu_stats(m->ctx, vm, c)) != NULL; c++)
                        exit_stats_clear(s);
                say(m, "vm %s: exit statistics cleared\n", i.name);
                return;
        }
        say(m, "vm %s: exits by reason, cost in counter ticks (%llu kHz)\n", i.name,
            (unsigned long long)i.counter_khz);
        outf(m, "%4s %-11s %12s %16s %10s %10s\n", "vcpu", "reason", "exits", "ticks", "mean ticks",
             "mean ns");
        for (c = 0; (s = m->ops->vcpu_stats(m->ctx, vm, c)) != NULL; c++) {
                struct exit_totals t = {0};
                char who[8];

                exit_stats_add(s, &t);
                for (unsigned r = 0; r < EXIT_REASONS; r++) {
                        all.count[r] += t.count[r];
                        all.ticks[r] += t.ticks[r];
                }
                if (i.vcpus > 1) {
                        snprintf(who, sizeof(who), "%u", c);
                        stats_lines(m, who, &t, i.counter_khz);
                }
        }
        stats_lines(m, "all", &all, i.counter_khz);
}

/* The trace's entries of a vCPU still to show: [pos, end); head when the show began. */
struct trace_cursor {
        struct exit_stats *s;
        uint64_t pos, end, head;
};

/* The vCPU whose next entry (forward: at pos; else: at end - 1) is oldest / newest. */
static int trace_pick(struct trace_cursor *cur, unsigned n, bool forward,
                      struct exit_trace_entry *out)
{
        int best = -1;

        for (unsigned c = 0; c < n; c++) {
                struct exit_trace_entry e = {0};

                while (cur[c].pos < cur[c].end) {
                        if (exit_trace_get(cur[c].s, forward ? cur[c].pos : cur[c].end - 1, &e))
                                break;
                        /* Overwritten since: older than anything still there. */
                        cur[c].pos = forward ? cur[c].pos + 1 : cur[c].end;
                }
                if (cur[c].pos >= cur[c].end)
                        continue;
                if (best < 0 || (forward ? e.tsc < out->tsc : e.tsc > out->tsc)) {
                        best = (int)c;
                        *out = e;
                }
        }
        return best;
}

/* trace VM show N: the last N entries of all its vCPUs, oldest first. */
static void trace_show(struct monitor *m, unsigned vm, const struct monitor_vm_info *i,
                       unsigned max)
{
        struct trace_cursor cur[MONITOR_TRACE_VCPUS];
        struct exit_trace_entry e;
        unsigned n = 0, shown = 0;
        uint64_t recorded = 0;
        bool on = false;
        int c;

        for (; n < MONITOR_TRACE_VCPUS; n++) {
                struct exit_stats *s = m->ops->vcpu_stats(m->ctx, vm, n);
                uint64_t first, head;

                if (!s)
                        break;
                on |= __atomic_load_n(&s->trace, __ATOMIC_RELAXED);
                exit_trace_span(s, &first, &head);
                recorded += head - s->trace_base;
                cur[n] = (struct trace_cursor){.s = s, .pos = first, .end = head, .head = head};
        }
        /* Back from the newest to the N-th newest: where each vCPU's part starts. */
        for (unsigned k = 0; k < max && (c = trace_pick(cur, n, false, &e)) >= 0; k++)
                cur[c].end--;
        for (unsigned k = 0; k < n; k++) {
                cur[k].pos = cur[k].end;
                cur[k].end = cur[k].head;
        }
        say(m, "vm %s: exit trace %s, %llu exits recorded since it was cleared\n", i->name,
            on ? "on" : "off", (unsigned long long)recorded);
        outf(m, "%4s %16s %-11s %6s %18s %18s %10s\n", "vcpu", "counter", "reason", "code", "pc",
             "info", "cost");
        while (shown < max && (c = trace_pick(cur, n, true, &e)) >= 0) {
                cur[c].pos++;
                shown++;
                outf(m, "%4d %16llu %-11s %#6x 0x%016llx 0x%016llx %10u\n", c,
                     (unsigned long long)e.tsc, exit_reason_name(e.reason), e.code,
                     (unsigned long long)e.pc, (unsigned long long)e.info, e.cost);
        }
        if (!shown)
                say(m, "vm %s: no exits traced%s\n", i->name,
                    on ? " yet" : " (trace VM on starts it)");
}

/* Decimal 1..TRACE_SHOW_MAX, or 0. */
static unsigned show_count(const char *w)
{
        unsigned v = 0;

        for (; *w >= '0' && *w <= '9' && v <= TRACE_SHOW_MAX; w++)
                v = v * 10 + (unsigned)(*w - '0');
        return *w || v > TRACE_SHOW_MAX ? 0 : v;
}

/* trace VM on|off|show [N]|clear */
static void trace_command(struct monitor *m, unsigned vm, const char *op, const char *arg)
{
        struct monitor_vm_info i;
        struct exit_stats *s;
        unsigned max = TRACE_SHOW_DEFAULT;
        int r;

        vm_info(m, vm, &i);
        if (strcmp(op, "show") == 0 && arg && !(max = show_count(arg))) {
                say(m, "trace %s show N: N is 1 to %u, not %s\n", i.name, TRACE_SHOW_MAX, arg);
                return;
        }
        if (!vm_has_stats(m, vm, &i))
                return;
        if (strcmp(op, "show") == 0) {
                trace_show(m, vm, &i, max);
        } else if (strcmp(op, "clear") == 0) {
                for (unsigned c = 0; (s = m->ops->vcpu_stats(m->ctx, vm, c)) != NULL; c++)
                        exit_trace_clear(s);
                say(m, "vm %s: exit trace cleared\n", i.name);
        } else {
                r = m->ops->trace(m->ctx, vm, strcmp(op, "on") == 0);
                if (r < 0)
                        say(m, "cannot trace vm %s (%s): %s\n", i.name, i.state, keel_strerror(r));
                else
                        say(m, "vm %s: exit trace %s\n", i.name, op);
        }
}

/* stats and trace: check the words, find the VM. */
static void exits_command(struct monitor *m, const struct command *c, char *arg, char *w2, char *w3,
                          bool more)
{
        bool trace = c->action == CMD_TRACE;
        bool ok;
        unsigned vm;

        if (trace)
                ok = w2 && (strcmp(w2, "show") == 0
                                ? !more
                                : !w3 && (strcmp(w2, "on") == 0 || strcmp(w2, "off") == 0 ||
                                          strcmp(w2, "clear") == 0));
        else
                ok = arg && !w3 && (!w2 || strcmp(w2, "clear") == 0);
        if (!arg || !ok) {
                say(m, "usage: %s\n", c->usage);
                return;
        }
        if (find_vm(m, arg, &vm) < 0) {
                say(m, "no vm %s (list shows them)\n", arg);
                return;
        }
        if (trace)
                trace_command(m, vm, w2, w3);
        else
                stats_command(m, vm, w2);
}

/* snapshot VM, restore VM: the ops' one-line answer. */
static void snapshot_command(struct monitor *m, const struct command *c, const char *arg, bool more)
{
        char msg[OUT_MAX - 16];
        unsigned vm;

        if (!arg || more) {
                say(m, "usage: %s\n", c->usage);
        } else if (find_vm(m, arg, &vm) < 0) {
                say(m, "no vm %s (list shows them)\n", arg);
        } else if (!m->ops->snapshot) {
                say(m, "snapshots are not available here\n");
        } else {
                msg[0] = '\0';
                m->ops->snapshot(m->ctx, vm, c->action == CMD_RESTORE, msg, sizeof(msg));
                say(m, "%s\n", msg);
        }
}

/* Splits off the next space-separated word of *p (NUL-terminating it); NULL if none. */
static char *word(char **p)
{
        char *w = *p;

        while (*w == ' ')
                w++;
        if (!*w)
                return NULL;
        *p = w;
        while (**p && **p != ' ')
                (*p)++;
        if (**p)
                *(*p)++ = '\0';
        return w;
}

static void run_line(struct monitor *m)
{
        char *p = m->line, *cmd, *arg;
        unsigned vm;
        const struct command *c = NULL;

        m->line[m->len] = '\0';
        if (m->overlong) {
                say(m, "line too long (at most %u characters), ignored\n", MONITOR_LINE_MAX);
                return;
        }
        cmd = word(&p);
        if (!cmd)
                return;
        for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
                if (strcmp(cmd, commands[k].name) == 0)
                        c = &commands[k];
        if (!c) {
                say(m, "unknown command %s (type help)\n", cmd);
                return;
        }
        arg = word(&p);
        if (c->action == CMD_STATS || c->action == CMD_TRACE) {
                char *w2 = arg ? word(&p) : NULL, *w3 = w2 ? word(&p) : NULL;

                exits_command(m, c, arg, w2, w3, w3 && word(&p));
                return;
        }
        if (c->action == CMD_GDB) {
                char *where = arg ? word(&p) : NULL;

                if (!arg || word(&p))
                        say(m, "usage: %s\n", c->usage);
                else
                        gdb_command(m, arg, where);
                return;
        }
        if (c->action == CMD_LIST && !word(&p)) {
                list(m, arg);
                return;
        }
        if (c->action == CMD_CONS) {
                if (!arg || word(&p))
                        say(m, "usage: %s\n", c->usage);
                else if (find_vm(m, arg, &vm) < 0)
                        say(m, "no vm %s (list shows them)\n", arg);
                else
                        set_focus(m, false, vm);
                return;
        }
        if (c->action == CMD_SNAP || c->action == CMD_RESTORE) {
                snapshot_command(m, c, arg, arg && word(&p));
                return;
        }
        if ((c->action < 0) != !arg || word(&p)) {
                say(m, "usage: %s\n", c->usage);
                return;
        }
        if (c->action >= 0)
                vm_command(m, c, arg);
        else
                help(m);
}

static void new_line(struct monitor *m)
{
        m->len = 0;
        m->overlong = false;
        if (m->in_monitor) /* not after `console VM` */
                prompt(m);
}

/* One byte for the command line. */
static void line_byte(struct monitor *m, uint8_t c)
{
        bool after_cr = m->after_cr;

        m->after_cr = false;
        if (m->term_seq) { /* a terminal's escape sequence (arrow keys): swallowed */
                if (m->term_seq == 1 && (c == '[' || c == 'O')) {
                        m->term_seq = 2;
                        return;
                }
                if (m->term_seq == 2 && c >= 0x20 && c < 0x40)
                        return;
                m->term_seq = 0;
                if (c >= 0x20)
                        return;
        }
        switch (c) {
        case '\n':
                if (after_cr)
                        return;
                /* fall through */
        case '\r':
                m->after_cr = c == '\r';
                out(m, "\n", 1);
                run_line(m);
                new_line(m);
                return;
        case 0x03: /* Ctrl-C: drop the line */
                out(m, "^C\n", 3);
                new_line(m);
                return;
        case 0x08:
        case 0x7f:
                if (m->len) {
                        m->len--;
                        out(m, "\b \b", 3);
                }
                return;
        case 0x1b:
                m->term_seq = 1;
                return;
        case '\t':
                c = ' ';
                break;
        default:
                if (c < 0x20 || c >= 0x7f)
                        return;
        }
        if (m->len == MONITOR_LINE_MAX) {
                m->overlong = true;
                return;
        }
        m->line[m->len++] = (char)c;
        out(m, m->line + m->len - 1, 1);
}

void monitor_init(struct monitor *m, const struct monitor_ops *ops, void *ctx)
{
        memset(m, 0, sizeof(*m));
        spin_init(&m->lock);
        m->ops = ops;
        m->ctx = ctx;
        m->count = ops->count(ctx);
        m->in_monitor = m->count == 0;
}

void monitor_announce(struct monitor *m)
{
        struct spin_held h = spin_lock(&m->lock);

        focus_line(m);
        focus_changed(m);
        note_end(m);
        spin_unlock(h);
}

void monitor_redraw(struct monitor *m)
{
        struct spin_held h = spin_lock(&m->lock);

        note_end(m);
        spin_unlock(h);
}

void monitor_input(struct monitor *m, const uint8_t *buf, size_t n)
{
        struct spin_held h = spin_lock(&m->lock);
        size_t run = 0; /* bytes for the focused VM before buf[k] */

        if (m->to_gdb) { /* the console is gdb's until it detaches */
                m->ops->gdb_input(m->ctx, buf, n);
                spin_unlock(h);
                return;
        }
        for (size_t k = 0; k < n; k++) {
                uint8_t c = buf[k];

                if (!m->esc && c != MONITOR_ESCAPE && !m->in_monitor) {
                        run++;
                        continue;
                }
                if (run)
                        m->ops->input(m->ctx, m->focus, buf + k - run, run);
                run = 0;
                if (m->esc) {
                        m->esc = false;
                        escape(m, c);
                } else if (c == MONITOR_ESCAPE) {
                        m->esc = true;
                } else {
                        line_byte(m, c);
                }
        }
        if (run)
                m->ops->input(m->ctx, m->focus, buf + n - run, run);
        spin_unlock(h);
}

void monitor_gdb_done(struct monitor *m)
{
        struct spin_held h = spin_lock(&m->lock);

        m->to_gdb = false;
        new_line(m);
        spin_unlock(h);
}

int monitor_focus(const struct monitor *m)
{
        return m->in_monitor ? -1 : (int)m->focus;
}
