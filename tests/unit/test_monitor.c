/*
 * Tests for vmm/monitor.c: routing typed bytes to the focused VM, the Ctrl-] escapes (split
 * across calls too), focus changes, the command line's editing and limits, and every monitor
 * command against a fake VM table that follows vm.h's lifecycle.
 */
#include <keel/errno.h>
#include <vmm/monitor.h>

#include "test.h"

enum fake_state { F_CREATED, F_RUNNING, F_PAUSED, F_STOPPED };

static const char *const state_names[] = {"created", "running", "paused", "stopped"};

struct fake_vm {
        const char *name;
        enum fake_state state;
        uint64_t exits, run_us, keel_bytes;
        char in[256]; /* bytes input() passed to it */
        size_t in_len;
        unsigned in_calls;
};

struct fake {
        unsigned count;
        struct fake_vm vms[10];
        char out[65536]; /* everything write() got, NUL-terminated */
        size_t out_len;
        unsigned actions;
        unsigned last_vm;
        enum monitor_action last_action;
};

static struct fake F;
static struct monitor M;

static unsigned f_count(void *ctx)
{
        return ((struct fake *)ctx)->count;
}

static void f_info(void *ctx, unsigned vm, struct monitor_vm_info *i)
{
        struct fake_vm *v = &((struct fake *)ctx)->vms[vm];

        ASSERT_TRUE(vm < ((struct fake *)ctx)->count);
        i->name = v->name;
        i->state = state_names[v->state];
        i->stop = v->state == F_STOPPED ? "exit" : NULL;
        i->vcpus = 1;
        i->exits = v->exits;
        i->run_us = v->run_us;
        i->keel_bytes = v->keel_bytes;
}

/* vm.h's lifecycle: anything else is -KEEL_EPERM. */
static int f_action(void *ctx, unsigned vm, enum monitor_action a)
{
        struct fake *f = ctx;
        struct fake_vm *v = &f->vms[vm];
        static const struct {
                unsigned from; /* bit mask of states */
                enum fake_state to;
        } t[MONITOR_ACTION_COUNT] = {
            [MONITOR_START] = {1u << F_CREATED, F_RUNNING},
            [MONITOR_STOP] = {1u << F_CREATED | 1u << F_RUNNING | 1u << F_PAUSED, F_STOPPED},
            [MONITOR_PAUSE] = {1u << F_RUNNING, F_PAUSED},
            [MONITOR_RESUME] = {1u << F_PAUSED, F_RUNNING},
            [MONITOR_RESET] = {1u << F_PAUSED | 1u << F_STOPPED, F_CREATED},
        };

        f->actions++;
        f->last_vm = vm;
        f->last_action = a;
        if (vm >= f->count || (unsigned)a >= MONITOR_ACTION_COUNT)
                return -KEEL_EINVAL;
        if (!(t[a].from & (1u << v->state)))
                return -KEEL_EPERM;
        v->state = t[a].to;
        return 0;
}

/* A stopped VM's input is dropped, as the kernel's ops do. */
static void f_input(void *ctx, unsigned vm, const uint8_t *buf, size_t n)
{
        struct fake_vm *v = &((struct fake *)ctx)->vms[vm];

        ASSERT_TRUE(vm < ((struct fake *)ctx)->count);
        ASSERT_TRUE(n > 0);
        v->in_calls++;
        if (v->state == F_STOPPED)
                return;
        ASSERT_TRUE(v->in_len + n < sizeof(v->in));
        memcpy(v->in + v->in_len, buf, n);
        v->in_len += n;
        v->in[v->in_len] = '\0';
}

static void f_write(void *ctx, const char *s, size_t n)
{
        struct fake *f = ctx;

        ASSERT_TRUE(n > 0);
        ASSERT_TRUE(f->out_len + n < sizeof(f->out));
        memcpy(f->out + f->out_len, s, n);
        f->out_len += n;
        f->out[f->out_len] = '\0';
}

static const struct monitor_ops ops = {
    .count = f_count,
    .info = f_info,
    .action = f_action,
    .input = f_input,
    .write = f_write,
};

/* Three VMs: "web" running, "db" running, "build" created. */
static void setup(void)
{
        memset(&F, 0, sizeof(F));
        F.count = 3;
        F.vms[0] = (struct fake_vm){.name = "web",
                                    .state = F_RUNNING,
                                    .exits = 1234,
                                    .run_us = 3000000,
                                    .keel_bytes = 155648};
        F.vms[1] =
            (struct fake_vm){.name = "db", .state = F_RUNNING, .exits = 7, .run_us = 1000000};
        F.vms[2] = (struct fake_vm){.name = "build", .state = F_CREATED};
        monitor_init(&M, &ops, &F);
}

static void type(const char *s)
{
        monitor_input(&M, (const uint8_t *)s, strlen(s));
}

static void type_bytes(const char *s)
{
        for (; *s; s++)
                monitor_input(&M, (const uint8_t *)s, 1);
}

static void clear_out(void)
{
        F.out_len = 0;
        F.out[0] = '\0';
}

/* What typing `s` writes. */
static const char *reply(const char *s)
{
        clear_out();
        type(s);
        return F.out;
}

/* Focus on the monitor, output cleared. */
static void to_monitor(void)
{
        type("\x1dm");
        ASSERT_TRUE(monitor_focus(&M) == -1);
        clear_out();
}

TEST(boot_focus_is_first_vm_and_input_is_routed)
{
        setup();
        EXPECT_EQ(monitor_focus(&M), 0);
        EXPECT_STREQ(F.out, ""); /* init prints nothing */
        monitor_announce(&M);
        EXPECT_STREQ(F.out, "keel: console: input to vm web (Ctrl-] ? for help)\n");
        clear_out();
        type("ls -l\r");
        EXPECT_STREQ(F.vms[0].in, "ls -l\r");
        EXPECT_EQ(F.vms[0].in_calls, 1); /* one run, one call */
        EXPECT_EQ(F.vms[1].in_len, 0);
        EXPECT_STREQ(F.out, ""); /* no echo: that is the guest's business */
}

TEST(no_vms_means_monitor_focus)
{
        memset(&F, 0, sizeof(F));
        monitor_init(&M, &ops, &F);
        EXPECT_EQ(monitor_focus(&M), -1);
        monitor_announce(&M);
        EXPECT_STREQ(F.out, "keel: console: monitor (type help)\nkeel> ");
        clear_out();
        type("\x1dn\x1d"
             "1\x1d\x1d");
        EXPECT_EQ(monitor_focus(&M), -1);
        EXPECT_STREQ(F.out, "\nkeel: console: no vms\nkeel> \nkeel: console: no vms\nkeel> "
                            "\nkeel: console: no vm has input (Ctrl-] ? for help)\nkeel> ");
        EXPECT_STREQ(reply("list\r"), "list\n  # name             state    vcpus        exits      "
                                      "cpu time share   keel mem stop\nkeel> ");
}

TEST(escape_digits_focus_vms)
{
        setup();
        type("\x1d"
             "2");
        EXPECT_EQ(monitor_focus(&M), 1);
        EXPECT_STREQ(F.out, "keel: console: input to vm db (Ctrl-] ? for help)\n");
        type("abc");
        EXPECT_STREQ(F.vms[1].in, "abc");
        EXPECT_EQ(F.vms[0].in_len, 0);
        clear_out();
        type("\x1d"
             "3x");
        EXPECT_EQ(monitor_focus(&M), 2);
        /* not running: the focus line says so */
        EXPECT_STREQ(F.out, "keel: console: input to vm build, created (Ctrl-] ? for help)\n");
        EXPECT_STREQ(F.vms[2].in, "x");
        type("\x1d"
             "1y");
        EXPECT_EQ(monitor_focus(&M), 0);
        EXPECT_STREQ(F.vms[0].in, "y");
        /* the escape bytes reach nobody */
        EXPECT_STREQ(F.vms[1].in, "abc");
}

TEST(escape_out_of_range_vm_keeps_focus)
{
        setup();
        type("\x1d"
             "4z\x1d"
             "8");
        EXPECT_EQ(monitor_focus(&M), 0);
        EXPECT_STREQ(F.out,
                     "keel: console: no vm 4 (vms: 1-3)\nkeel: console: no vm 8 (vms: 1-3)\n");
        EXPECT_STREQ(F.vms[0].in, "z");
        clear_out();
        /* '9' and '0' are not focus keys */
        type("\x1d"
             "9\x1d"
             "0");
        EXPECT_STREQ(F.out, "keel: console: Ctrl-] 9 ignored (Ctrl-] ? for help)\n"
                            "keel: console: Ctrl-] 0 ignored (Ctrl-] ? for help)\n");
        EXPECT_EQ(monitor_focus(&M), 0);
        EXPECT_EQ(F.vms[0].in_len, 1);
}

TEST(escape_eight_vms)
{
        setup();
        F.count = 10;
        for (unsigned i = 3; i < 10; i++)
                F.vms[i] = (struct fake_vm){.name = "x", .state = F_RUNNING};
        monitor_init(&M, &ops, &F);
        type("\x1d"
             "8");
        EXPECT_EQ(monitor_focus(&M), 7);
        /* VMs beyond 8 are reached with n */
        type("\x1dn\x1dn\x1dn");
        EXPECT_EQ(monitor_focus(&M), 0);
}

/* Past the escape keys: `console VM` gives any VM the input, by number or name. */
TEST(console_command_reaches_any_vm)
{
        setup();
        F.count = 10;
        for (unsigned i = 3; i < 10; i++)
                F.vms[i] = (struct fake_vm){.name = "x", .state = F_RUNNING};
        F.vms[9].name = "tenth";
        monitor_init(&M, &ops, &F);
        to_monitor();
        EXPECT_CONTAINS(reply("console 10\r"), "keel: console: input to vm tenth (Ctrl-] ? for");
        EXPECT_EQ(monitor_focus(&M), 9);
        type("hi");
        EXPECT_STREQ(F.vms[9].in, "hi");
        to_monitor();
        type("console db\r");
        EXPECT_EQ(monitor_focus(&M), 1);
        to_monitor();
        EXPECT_CONTAINS(reply("console nope\r"), "keel: monitor: no vm nope (list shows them)\n");
        EXPECT_EQ(monitor_focus(&M), -1);
        EXPECT_CONTAINS(reply("console\r"), "keel: monitor: usage: console VM\n");
        EXPECT_EQ(monitor_focus(&M), -1);
}

/* `list WORD` keeps the VMs whose state or stop reason is WORD or whose name starts with it. */
TEST(list_filters_and_counts_many_vms)
{
        const char *r;

        setup();
        F.count = 10;
        for (unsigned i = 3; i < 10; i++)
                F.vms[i] = (struct fake_vm){.name = "x", .state = F_RUNNING};
        monitor_init(&M, &ops, &F);
        to_monitor();
        r = reply("list\r");
        EXPECT_CONTAINS(r, " 10 x ");
        EXPECT_CONTAINS(r, "10 of 10 vms shown\n");
        r = reply("list created\r");
        EXPECT_CONTAINS(r, "  3 build ");
        EXPECT_TRUE(strstr(r, " web ") == NULL);
        EXPECT_CONTAINS(r, "1 of 10 vms shown\n");
        r = reply("list w\r");
        EXPECT_CONTAINS(r, "  1 web ");
        EXPECT_CONTAINS(r, "1 of 10 vms shown\n");
        EXPECT_CONTAINS(reply("list a b\r"), "keel: monitor: usage: list [WORD]\n");
}

TEST(escape_next_cycles_and_returns_from_monitor)
{
        setup();
        type("\x1dn");
        EXPECT_EQ(monitor_focus(&M), 1);
        type("\x1dn");
        EXPECT_EQ(monitor_focus(&M), 2);
        type("\x1dn");
        EXPECT_EQ(monitor_focus(&M), 0);
        type("\x1d"
             "2\x1dm");
        EXPECT_EQ(monitor_focus(&M), -1);
        clear_out();
        type("\x1dn"); /* back to the VM that had input */
        EXPECT_EQ(monitor_focus(&M), 1);
        EXPECT_STREQ(F.out, "\nkeel: console: input to vm db (Ctrl-] ? for help)\n");
}

TEST(escape_monitor_and_help)
{
        setup();
        type("\x1dm");
        EXPECT_EQ(monitor_focus(&M), -1);
        EXPECT_STREQ(F.out, "keel: console: monitor (type help)\nkeel> ");
        EXPECT_STREQ(reply("\x1d?"),
                     "\nkeel: console: Ctrl-] then: 1-8 input to that vm, n next vm, m "
                     "monitor, ? this help, Ctrl-] a literal Ctrl-] (any vm: monitor "
                     "console VM)\nkeel> ");
        /* help from a VM's focus: no prompt */
        type("\x1d"
             "1");
        EXPECT_CONTAINS(reply("\x1d?"), "keel: console: Ctrl-] then: 1-8");
        EXPECT_FALSE(strstr(F.out, "keel> "));
        EXPECT_EQ(monitor_focus(&M), 0);
        EXPECT_EQ(F.vms[0].in_len, 0);
}

TEST(escape_twice_sends_literal_escape)
{
        setup();
        type("a\x1d\x1d"
             "b");
        EXPECT_EQ(F.vms[0].in_len, 3);
        EXPECT_EQ(memcmp(F.vms[0].in,
                         "a\x1d"
                         "b",
                         3),
                  0);
        EXPECT_STREQ(F.out, "");
        EXPECT_EQ(monitor_focus(&M), 0);
        /* the literal does not start another escape */
        type("\x1d\x1d"
             "2");
        EXPECT_EQ(monitor_focus(&M), 0);
        EXPECT_EQ(memcmp(F.vms[0].in,
                         "a\x1d"
                         "b\x1d"
                         "2",
                         5),
                  0);
}

TEST(escape_unknown_is_ignored_with_note)
{
        setup();
        type("\x1dq\x1d\x01\x1d ");
        EXPECT_STREQ(F.out, "keel: console: Ctrl-] q ignored (Ctrl-] ? for help)\n"
                            "keel: console: Ctrl-] 0x01 ignored (Ctrl-] ? for help)\n"
                            "keel: console: Ctrl-] 0x20 ignored (Ctrl-] ? for help)\n");
        EXPECT_EQ(F.vms[0].in_len, 0);
        EXPECT_EQ(monitor_focus(&M), 0);
        /* in the monitor the prompt and the typed line come back after the note */
        to_monitor();
        type("li\x1dZ");
        EXPECT_STREQ(F.out, "li\nkeel: console: Ctrl-] Z ignored (Ctrl-] ? for help)\nkeel> li");
}

TEST(escape_split_across_calls)
{
        setup();
        type("ab\x1d");
        EXPECT_STREQ(F.vms[0].in, "ab");
        EXPECT_EQ(monitor_focus(&M), 0);
        type("2cd");
        EXPECT_EQ(monitor_focus(&M), 1);
        EXPECT_STREQ(F.vms[0].in, "ab");
        EXPECT_STREQ(F.vms[1].in, "cd");
        type("\x1d");
        type("\x1d");
        EXPECT_EQ(F.vms[1].in_len, 3);
        EXPECT_EQ(F.vms[1].in[2], 0x1d);
}

TEST(byte_by_byte_input_equals_bulk)
{
        char bulk[sizeof(F.out)];
        const char *script = "hi\x1d"
                             "2there\x1d\x1dx\x1dmlist\r\npause db\rbogux\x7fs\n"
                             "\x1d"
                             "1done";
        struct fake_vm vms[3];

        setup();
        type(script);
        memcpy(bulk, F.out, sizeof(bulk));
        memcpy(vms, F.vms, sizeof(vms));
        setup();
        type_bytes(script);
        EXPECT_STREQ(F.out, bulk);
        for (unsigned i = 0; i < 3; i++) {
                EXPECT_EQ(F.vms[i].in_len, vms[i].in_len);
                EXPECT_EQ(memcmp(F.vms[i].in, vms[i].in, vms[i].in_len), 0);
                EXPECT_EQ(F.vms[i].state, vms[i].state);
        }
        EXPECT_STREQ(F.vms[0].in, "hidone");
        EXPECT_EQ(memcmp(F.vms[1].in, "there\x1dx", 7), 0);
        EXPECT_EQ(F.vms[1].state, F_PAUSED);
        EXPECT_CONTAINS(F.out, "unknown command bogus");
}

TEST(stopped_vm_input_goes_to_ops_which_drop_it)
{
        setup();
        F.vms[0].state = F_STOPPED;
        type("lost");
        EXPECT_EQ(F.vms[0].in_calls, 1);
        EXPECT_EQ(F.vms[0].in_len, 0);
}

TEST(monitor_echo_and_prompt)
{
        setup();
        to_monitor();
        type("he");
        EXPECT_STREQ(F.out, "he");
        type("\r");
        EXPECT_CONTAINS(F.out, "he\nkeel: monitor: unknown command he (type help)\nkeel> ");
        clear_out();
        type("\r"); /* empty line: just a new prompt */
        EXPECT_STREQ(F.out, "\nkeel> ");
        /* nothing reaches a VM while the monitor has input */
        for (unsigned i = 0; i < 3; i++)
                EXPECT_EQ(F.vms[i].in_calls, 0);
}

TEST(monitor_crlf_is_one_line_lf_alone_ends_too)
{
        setup();
        to_monitor();
        type("\r\n");
        EXPECT_STREQ(F.out, "\nkeel> ");
        EXPECT_STREQ(reply("\n\n"), "\nkeel> \nkeel> ");
        EXPECT_STREQ(reply("\r\r"), "\nkeel> \nkeel> ");
}

TEST(monitor_backspace_and_del)
{
        setup();
        to_monitor();
        type("lisx\x7f\bt");
        EXPECT_STREQ(F.out, "lisx\b \b\b \bt");
        EXPECT_EQ(M.len, 3);
        clear_out();
        type("\x7f\x7f\x7f\x7f\x7f"); /* more than there is: stops at the prompt */
        EXPECT_EQ(M.len, 0);
        EXPECT_STREQ(F.out, "\b \b\b \b\b \b");
        type("list\r");
        EXPECT_CONTAINS(F.out, "  1 web");
}

TEST(monitor_ctrl_c_tab_controls_and_arrow_keys)
{
        setup();
        to_monitor();
        type("stop web\x03");
        EXPECT_STREQ(F.out, "stop web^C\nkeel> ");
        EXPECT_EQ(F.actions, 0);
        clear_out();
        /* arrows (CSI and SS3 forms), other controls and high bytes are not part of a line */
        type("\x1b[A\x1b[1;5C\x1bOBpa\x01\x80\xffuse\tdb\r");
        EXPECT_EQ(F.actions, 1);
        EXPECT_EQ(F.vms[1].state, F_PAUSED);
        EXPECT_CONTAINS(F.out, "pause db\n");
}

TEST(monitor_overlong_line_refused)
{
        char line[MONITOR_LINE_MAX + 20];

        setup();
        to_monitor();
        memset(line, 'a', sizeof(line));
        line[sizeof(line) - 1] = '\0';
        type(line);
        EXPECT_EQ(M.len, MONITOR_LINE_MAX);
        EXPECT_EQ(F.out_len, MONITOR_LINE_MAX); /* what did not fit is not echoed */
        type("\r");
        EXPECT_CONTAINS(F.out, "keel: monitor: line too long (at most 64 characters), ignored\n");
        EXPECT_FALSE(strstr(F.out, "unknown command"));
        /* the next line is fine again */
        clear_out();
        type("pause 1\r");
        EXPECT_EQ(F.vms[0].state, F_PAUSED);
        /* exactly MONITOR_LINE_MAX fits */
        clear_out();
        memset(line, ' ', MONITOR_LINE_MAX);
        memcpy(line + MONITOR_LINE_MAX - 8, "resume 1", 8);
        line[MONITOR_LINE_MAX] = '\0';
        type(line);
        type("\n");
        EXPECT_EQ(F.vms[0].state, F_RUNNING);
        EXPECT_CONTAINS(F.out, "keel: monitor: vm web is running\n");
}

TEST(monitor_help)
{
        setup();
        to_monitor();
        type("help\r");
        EXPECT_CONTAINS(F.out, "help\ncommands:\n  help       this list\n  list [WORD] ");
        EXPECT_CONTAINS(F.out, "  start VM   run a created vm\n");
        EXPECT_CONTAINS(F.out, "  stop VM    ");
        EXPECT_CONTAINS(F.out, "  pause VM   ");
        EXPECT_CONTAINS(F.out, "  resume VM  ");
        EXPECT_CONTAINS(F.out, "  reset VM   ");
        EXPECT_CONTAINS(F.out, "VM is the number list shows, or the name\nCtrl-] then: 1-8");
        EXPECT_CONTAINS(reply("help me\r"), "keel: monitor: usage: help\n");
}

TEST(monitor_list)
{
        setup();
        F.vms[2].state = F_STOPPED;
        to_monitor();
        type("  list  \r");
        EXPECT_STREQ(
            F.out,
            "  list  \n"
            "  # name             state    vcpus        exits      cpu time share   keel mem "
            "stop\n"
            "  1 web              running      1         1234         3.000 s   75%    152 KiB\n"
            "  2 db               running      1            7         1.000 s   25%      0 KiB\n"
            "  3 build            stopped      1            0         0.000 s    0%      0 KiB "
            "exit\n"
            "keel> ");
        /* nothing has run: no share */
        F.vms[0].run_us = F.vms[1].run_us = 0;
        EXPECT_CONTAINS(reply("list\r"), "         0.000 s     -      0 KiB\n");
        EXPECT_STREQ(reply("list 1 2\r"), "list 1 2\nkeel: monitor: usage: list [WORD]\nkeel> ");
        EXPECT_CONTAINS(reply("list 1\r"), "0 of 3 vms shown\n"); /* no name starts with 1 */
}

TEST(monitor_list_huge_times)
{
        setup();
        F.vms[0].run_us = UINT64_MAX;
        F.vms[1].run_us = UINT64_MAX / 2;
        F.vms[2].run_us = UINT64_MAX / 2;
        to_monitor();
        type("list\r");
        EXPECT_CONTAINS(F.out, "18446744073709.551 s  100%    152 KiB\n");
        EXPECT_CONTAINS(F.out, " 9223372036854.775 s   50%      0 KiB\n");
}

TEST(monitor_actions_by_index_and_name)
{
        static const struct {
                const char *line;
                unsigned vm;
                enum monitor_action a;
                enum fake_state after;
                const char *reply;
        } cases[] = {
            {"start 3\r", 2, MONITOR_START, F_RUNNING, "keel: monitor: vm build is running\n"},
            {"pause build\r", 2, MONITOR_PAUSE, F_PAUSED, "keel: monitor: vm build is paused\n"},
            {"resume 3\r", 2, MONITOR_RESUME, F_RUNNING, "keel: monitor: vm build is running\n"},
            {"stop db\r", 1, MONITOR_STOP, F_STOPPED, "keel: monitor: vm db is stopped\n"},
            {"reset 2\r", 1, MONITOR_RESET, F_CREATED, "keel: monitor: vm db is created\n"},
            {"start  db \r", 1, MONITOR_START, F_RUNNING, "keel: monitor: vm db is running\n"},
            {"pause 1\r", 0, MONITOR_PAUSE, F_PAUSED, "keel: monitor: vm web is paused\n"},
            {"reset web\r", 0, MONITOR_RESET, F_CREATED, "keel: monitor: vm web is created\n"},
        };

        setup();
        to_monitor();
        for (unsigned k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
                clear_out();
                type(cases[k].line);
                EXPECT_EQ(F.actions, k + 1);
                EXPECT_EQ(F.last_vm, cases[k].vm);
                EXPECT_EQ(F.last_action, cases[k].a);
                EXPECT_EQ(F.vms[cases[k].vm].state, cases[k].after);
                EXPECT_CONTAINS(F.out, cases[k].reply);
                EXPECT_FALSE(strstr(F.out, "cannot"));
        }
}

TEST(monitor_refused_actions_report_strerror)
{
        setup();
        to_monitor();
        type("resume web\r");
        EXPECT_CONTAINS(F.out, "keel: monitor: cannot resume vm web (running): not permitted\n");
        EXPECT_EQ(F.vms[0].state, F_RUNNING);
        EXPECT_CONTAINS(reply("reset 1\r"),
                        "keel: monitor: cannot reset vm web (running): not permitted\n");
        EXPECT_CONTAINS(reply("start web\r"),
                        "keel: monitor: cannot start vm web (running): not permitted\n");
        EXPECT_CONTAINS(reply("pause build\r"),
                        "keel: monitor: cannot pause vm build (created): not permitted\n");
        type("stop 3\rstop 3\r");
        EXPECT_CONTAINS(F.out, "keel: monitor: cannot stop vm build (stopped): not permitted\n");
        EXPECT_EQ(F.actions, 6);
}

TEST(monitor_unknown_vm_and_usage)
{
        static const char *const bad[] = {"0", "4", "-1", "1x", "we", "webs", "99999999999999"};

        setup();
        to_monitor();
        for (unsigned k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
                char line[64], want[96];

                clear_out();
                snprintf(line, sizeof(line), "stop %s\r", bad[k]);
                snprintf(want, sizeof(want), "keel: monitor: no vm %s (list shows them)\n", bad[k]);
                type(line);
                EXPECT_CONTAINS(F.out, want);
        }
        EXPECT_CONTAINS(reply("stop\rpause 1 2\rreset   \r"), "keel: monitor: usage: stop VM\n");
        EXPECT_CONTAINS(F.out, "keel: monitor: usage: pause VM\n");
        EXPECT_CONTAINS(F.out, "keel: monitor: usage: reset VM\n");
        EXPECT_CONTAINS(reply("STOP 1\rstopp 1\r"),
                        "keel: monitor: unknown command STOP (type help)\n");
        EXPECT_CONTAINS(F.out, "keel: monitor: unknown command stopp (type help)\n");
        EXPECT_EQ(F.actions, 0);
        for (unsigned i = 0; i < 3; i++)
                EXPECT_NE(F.vms[i].state, F_STOPPED);
}

/* A VM whose name is digits: the index wins while it is in range, the name otherwise. */
TEST(monitor_numeric_names)
{
        setup();
        F.vms[1].name = "1";
        F.vms[2].name = "42";
        to_monitor();
        type("pause 1\r");
        EXPECT_EQ(F.last_vm, 0);
        type("stop 42\r");
        EXPECT_EQ(F.last_vm, 2);
        EXPECT_EQ(F.vms[2].state, F_STOPPED);
}

TEST(monitor_keeps_typed_line_across_focus_changes)
{
        setup();
        to_monitor();
        type("pau");
        type("\x1d"
             "2");
        EXPECT_STREQ(F.out, "pau\nkeel: console: input to vm db (Ctrl-] ? for help)\n");
        type("xyz");
        EXPECT_STREQ(F.vms[1].in, "xyz");
        EXPECT_STREQ(reply("\x1dm"), "keel: console: monitor (type help)\nkeel> pau");
        type("se db\r");
        EXPECT_EQ(F.vms[1].state, F_PAUSED);
        /* Ctrl-] m in the monitor: the line again, the prompt again */
        EXPECT_STREQ(reply("li\x1dm"), "li\nkeel: console: monitor (type help)\nkeel> li");
}

TEST(redraw_only_in_the_monitor)
{
        setup();
        monitor_redraw(&M);
        EXPECT_STREQ(F.out, "");
        to_monitor();
        type("sto");
        clear_out();
        monitor_redraw(&M);
        EXPECT_STREQ(F.out, "keel> sto");
        type("p 2\r");
        EXPECT_EQ(F.vms[1].state, F_STOPPED);
}

TEST(action_on_focused_vm_keeps_focus)
{
        setup();
        type("\x1dmstop web\r\x1dn");
        EXPECT_EQ(monitor_focus(&M), 0);
        EXPECT_CONTAINS(F.out, "keel: console: input to vm web, stopped (Ctrl-] ? for help)\n");
        type("gone");
        EXPECT_EQ(F.vms[0].in_len, 0);
        EXPECT_EQ(F.vms[0].in_calls, 1);
}

/* gdb VM [port]: the console goes to gdb until monitor_gdb_done; errors name what to do. */
static char gdb_in[256];
static size_t gdb_in_len;
static int gdb_ret;
static bool gdb_port;
static unsigned gdb_vm;

static int f_gdb(void *ctx, unsigned vm, bool port)
{
        (void)ctx;
        gdb_vm = vm;
        gdb_port = port;
        return gdb_ret;
}

static void f_gdb_input(void *ctx, const uint8_t *buf, size_t n)
{
        (void)ctx;
        ASSERT_TRUE(gdb_in_len + n < sizeof(gdb_in));
        memcpy(gdb_in + gdb_in_len, buf, n);
        gdb_in_len += n;
}

static const struct monitor_ops gdb_ops = {
    .count = f_count,
    .info = f_info,
    .action = f_action,
    .input = f_input,
    .write = f_write,
    .gdb = f_gdb,
    .gdb_input = f_gdb_input,
};

TEST(gdb_command_hands_the_console_to_gdb)
{
        setup();
        monitor_init(&M, &gdb_ops, &F);
        gdb_in_len = 0;
        gdb_ret = 0;
        type("\x1dm");
        type("gdb db\r");
        EXPECT_EQ(gdb_vm, 1);
        EXPECT_FALSE(gdb_port);
        EXPECT_CONTAINS(F.out, "vm db stopped for gdb on this console");
        F.out_len = 0;
        F.out[0] = '\0';
        type("$g#67\x1dm\x03");
        EXPECT_EQ(gdb_in_len, 8); /* every byte, Ctrl-] and Ctrl-C too */
        EXPECT_EQ(memcmp(gdb_in, "$g#67\x1dm\x03", 8), 0);
        EXPECT_STREQ(F.out, "");
        monitor_gdb_done(&M);
        EXPECT_CONTAINS(F.out, "keel> ");
        type("list\r");
        EXPECT_EQ(gdb_in_len, 8);
        EXPECT_CONTAINS(F.out, "web");
}

TEST(gdb_command_errors)
{
        setup();
        monitor_init(&M, &gdb_ops, &F);
        type("\x1dm");
        gdb_ret = 0;
        type("gdb web port\r");
        EXPECT_TRUE(gdb_port);
        EXPECT_CONTAINS(F.out, "the debug port serves vm web");
        type("gdb web com9\r");
        EXPECT_CONTAINS(F.out, "usage: gdb VM [port]");
        type("gdb nosuch\r");
        EXPECT_CONTAINS(F.out, "no vm nosuch (list shows them)");
        gdb_ret = -KEEL_ENODEV;
        type("gdb web port\r");
        EXPECT_CONTAINS(F.out, "no debug port for gdb; use gdb web on the console");
        gdb_ret = -KEEL_EBUSY;
        type("gdb web\r");
        EXPECT_CONTAINS(F.out, "already debugging a vm");
        gdb_ret = -KEEL_ENOTSUP;
        type("gdb web\r");
        EXPECT_CONTAINS(F.out, "cannot debug vm web: gdb is not supported on this arch");
        gdb_ret = -KEEL_EPERM;
        type("gdb build\r");
        EXPECT_CONTAINS(F.out, "cannot debug vm build (created): not permitted");
        setup(); /* ops without gdb */
        type("\x1dmgdb web\r");
        EXPECT_CONTAINS(F.out, "gdb is not available here");
}

/* Exit statistics and traces: "web" has two vCPUs, "db" one, "build" none yet (not built). */
static struct exit_stats fstats[3][2];
static struct exit_trace_entry frings[3][2][EXIT_TRACE_LEN];
static unsigned trace_calls;

static void fs_info(void *ctx, unsigned vm, struct monitor_vm_info *i)
{
        f_info(ctx, vm, i);
        i->vcpus = vm == 0 ? 2 : 1;
        i->counter_khz = 2000000; /* 2 GHz: a tick is half a nanosecond */
}

static struct exit_stats *fs_vcpu_stats(void *ctx, unsigned vm, unsigned vcpu)
{
        (void)ctx;
        if (vm == 2 || vcpu >= (vm == 0 ? 2u : 1u))
                return NULL;
        return &fstats[vm][vcpu];
}

static int fs_trace(void *ctx, unsigned vm, bool on)
{
        (void)ctx;
        trace_calls++;
        for (unsigned c = 0; c < 2; c++) {
                if (on)
                        exit_trace_enable(&fstats[vm][c], frings[vm][c]);
                else
                        exit_trace_disable(&fstats[vm][c]);
        }
        return 0;
}

static const struct monitor_ops stats_ops = {
    .count = f_count,
    .info = fs_info,
    .action = f_action,
    .input = f_input,
    .write = f_write,
    .vcpu_stats = fs_vcpu_stats,
    .trace = fs_trace,
};

/* One exit as an arch accounts it. */
static void fs_exit(unsigned vm, unsigned vcpu, enum exit_reason r, uint64_t at, uint64_t cost,
                    uint64_t pc)
{
        struct exit_stats *s = &fstats[vm][vcpu];

        s->count[r]++;
        if (exit_stats_end(s, r, cost))
                exit_trace_record(s, r, at, cost, pc, 0x1f, r == EXIT_CPUID ? 0x72 : 0x81);
}

static void stats_setup(void)
{
        setup();
        memset(fstats, 0, sizeof(fstats));
        trace_calls = 0;
        monitor_init(&M, &stats_ops, &F);
        to_monitor();
}

/* Lines of `out` that start with `prefix`. */
static unsigned lines_starting(const char *out, const char *prefix)
{
        unsigned n = 0;

        for (const char *p = out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                n += strncmp(p, prefix, strlen(prefix)) == 0;
        return n;
}

TEST(stats_per_vcpu_and_total)
{
        stats_setup();
        for (unsigned k = 0; k < 1000; k++)
                fs_exit(0, 0, EXIT_CPUID, k * 1000, 263, 0x100000);
        for (unsigned k = 0; k < 10; k++)
                fs_exit(0, 1, EXIT_CPUID, k, 500, 0x100000);
        fs_exit(0, 1, EXIT_MMIO, 0, 4001, 0x100000);
        EXPECT_STREQ(reply("stats web\r"),
                     "stats web\n"
                     "keel: monitor: vm web: exits by reason, cost in counter ticks (2000000 kHz)\n"
                     "vcpu reason             exits            ticks mean ticks    mean ns\n"
                     "   0 cpuid               1000           263000        263        131\n"
                     "   0 total               1000           263000        263        131\n"
                     "   1 cpuid                 10             5000        500        250\n"
                     "   1 mmio                   1             4001       4001       2000\n"
                     "   1 total                 11             9001        818        409\n"
                     " all cpuid               1010           268000        265        132\n"
                     " all mmio                   1             4001       4001       2000\n"
                     " all total               1011           272001        269        134\n"
                     "keel> ");
        /* One vCPU: no per-vCPU lines; by number as well as by name. */
        fs_exit(1, 0, EXIT_HYPERCALL, 0, 258, 0x100010);
        EXPECT_CONTAINS(reply("stats 2\r"), "vm db: exits by reason");
        EXPECT_EQ(lines_starting(F.out, "   0 "), 0);
        EXPECT_CONTAINS(F.out,
                        " all hypercall              1              258        258        129\n");
}

TEST(stats_clear_counts_from_zero)
{
        stats_setup();
        fs_exit(1, 0, EXIT_HYPERCALL, 0, 258, 0);
        EXPECT_STREQ(reply("stats db clear\r"),
                     "stats db clear\nkeel: monitor: vm db: exit statistics cleared\nkeel> ");
        EXPECT_CONTAINS(reply("stats db\r"),
                        " all total                  0                0          0          0\n");
        EXPECT_EQ(lines_starting(F.out, " all hypercall"), 0);
        fs_exit(1, 0, EXIT_HYPERCALL, 0, 100, 0);
        EXPECT_CONTAINS(reply("stats db\r"),
                        " all hypercall              1              100        100         50\n");
}

TEST(stats_and_trace_errors)
{
        stats_setup();
        EXPECT_CONTAINS(reply("stats\r"), "keel: monitor: usage: stats VM [clear]\n");
        EXPECT_CONTAINS(reply("stats web now\r"), "keel: monitor: usage: stats VM [clear]\n");
        EXPECT_CONTAINS(reply("stats web clear now\r"), "usage: stats VM [clear]\n");
        EXPECT_CONTAINS(reply("stats nosuch\r"), "keel: monitor: no vm nosuch (list shows them)\n");
        EXPECT_CONTAINS(reply("stats build\r"),
                        "keel: monitor: vm build (created) has no exit statistics now: they "
                        "start with the vm (start build)\n");
        EXPECT_CONTAINS(reply("trace web\r"),
                        "keel: monitor: usage: trace VM on|off|show [N]|clear\n");
        EXPECT_CONTAINS(reply("trace web onn\r"), "usage: trace VM on|off|show [N]|clear\n");
        EXPECT_CONTAINS(reply("trace web on 5\r"), "usage: trace VM on|off|show [N]|clear\n");
        EXPECT_CONTAINS(reply("trace web show 5 6\r"), "usage: trace VM on|off|show [N]|clear\n");
        EXPECT_CONTAINS(reply("trace nosuch on\r"),
                        "keel: monitor: no vm nosuch (list shows them)\n");
        EXPECT_CONTAINS(reply("trace build on\r"), "vm build (created) has no exit statistics now");
        EXPECT_CONTAINS(reply("trace web show 0\r"),
                        "keel: monitor: trace web show N: N is 1 to 256, not 0\n");
        EXPECT_CONTAINS(reply("trace web show 257\r"), "N is 1 to 256, not 257\n");
        EXPECT_CONTAINS(reply("trace web show 99999999999\r"), "N is 1 to 256, not 99999999999\n");
        EXPECT_CONTAINS(reply("trace web show x\r"), "N is 1 to 256, not x\n");
        EXPECT_EQ(trace_calls, 0);
        setup(); /* ops without statistics */
        to_monitor();
        EXPECT_CONTAINS(reply("stats web\r"),
                        "keel: monitor: exit statistics are not available here\n");
        EXPECT_CONTAINS(reply("trace web on\r"), "exit statistics are not available here\n");
}

TEST(trace_on_show_merges_vcpus_by_counter)
{
        stats_setup();
        fs_exit(0, 0, EXIT_CPUID, 1, 5, 0xdead); /* before trace on: not recorded */
        EXPECT_STREQ(reply("trace web on\r"),
                     "trace web on\nkeel: monitor: vm web: exit trace on\nkeel> ");
        EXPECT_EQ(trace_calls, 1);
        EXPECT_CONTAINS(reply("trace web show\r"), "keel: monitor: vm web: no exits traced yet\n");
        fs_exit(0, 0, EXIT_CPUID, 100, 263, 0x101000);
        fs_exit(0, 1, EXIT_HYPERCALL, 150, 258, 0x102000);
        fs_exit(0, 0, EXIT_CPUID, 200, 263, 0x101002);
        fs_exit(0, 1, EXIT_HYPERCALL, 250, 258, 0x102004);
        EXPECT_STREQ(reply("trace web show 3\r"),
                     "trace web show 3\n"
                     "keel: monitor: vm web: exit trace on, 4 exits recorded since it was cleared\n"
                     "vcpu          counter reason        code                 pc               "
                     "info       cost\n"
                     "   1              150 hypercall     0x81 0x0000000000102000 "
                     "0x000000000000001f        258\n"
                     "   0              200 cpuid         0x72 0x0000000000101002 "
                     "0x000000000000001f        263\n"
                     "   1              250 hypercall     0x81 0x0000000000102004 "
                     "0x000000000000001f        258\n"
                     "keel> ");
        EXPECT_STREQ(reply("trace web off\r"),
                     "trace web off\nkeel: monitor: vm web: exit trace off\nkeel> ");
        fs_exit(0, 0, EXIT_CPUID, 300, 263, 0x101004);
        EXPECT_CONTAINS(reply("trace web show\r"), "exit trace off, 4 exits recorded");
        EXPECT_EQ(lines_starting(F.out, "   0 "), 2);
        EXPECT_EQ(lines_starting(F.out, "   1 "), 2);
        EXPECT_STREQ(reply("trace web clear\r"),
                     "trace web clear\nkeel: monitor: vm web: exit trace cleared\nkeel> ");
        EXPECT_CONTAINS(reply("trace web show\r"), "exit trace off, 0 exits recorded");
        EXPECT_CONTAINS(F.out, "keel: monitor: vm web: no exits traced (trace VM on starts it)\n");
}

TEST(trace_show_is_bounded)
{
        stats_setup();
        type("trace web on\r");
        for (unsigned k = 0; k < 1000; k++)
                fs_exit(0, k % 2, EXIT_CPUID, k, 263, 0x100000 + k);
        reply("trace web show\r");
        EXPECT_EQ(lines_starting(F.out, "   0 ") + lines_starting(F.out, "   1 "), 32);
        /* the newest 32, oldest first */
        EXPECT_CONTAINS(F.out, "   0              968 cpuid ");
        EXPECT_CONTAINS(F.out, "   1              999 cpuid ");
        EXPECT_EQ(lines_starting(F.out, "   1              967 "), 0);
        reply("trace web show 256\r");
        EXPECT_EQ(lines_starting(F.out, "   0 ") + lines_starting(F.out, "   1 "), 256);
        EXPECT_CONTAINS(F.out, "1000 exits recorded");
        reply("trace web show 1\r");
        EXPECT_EQ(lines_starting(F.out, "   1              999 cpuid "), 1);
        EXPECT_EQ(lines_starting(F.out, "   0 "), 0);
}

TEST(help_lists_stats_and_trace)
{
        stats_setup();
        reply("help\r");
        EXPECT_CONTAINS(F.out, "  stats VM [clear] exits by reason");
        EXPECT_CONTAINS(F.out, "  trace VM on|off|show [N]|clear record each exit");
}

TEST_MAIN()
