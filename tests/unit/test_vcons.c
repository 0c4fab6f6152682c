/*
 * Tests for vmm/vcons.c, a VM's console front end on its own: lines and their prefix, '\r',
 * non-printable bytes, long lines, partial lines shown when idle, the flush at VM stop, the
 * byte count, prefixes that are missing or too long, and raw mode with its history.
 */
#include <pthread.h>

#include <keel/log.h>
#include <vmm/vcons.h>

#include "log_capture.h"
#include "test.h"

#define ESC_TEST_LONG 256 /* vcons.c's ESC_MAX */

static void puts_c(struct vcons *c, const char *s)
{
        while (*s)
                vcons_putc(c, (uint8_t)*s++);
}

TEST(init_resets_everything)
{
        struct vcons c;

        memset(&c, 0xee, sizeof(c));
        vcons_init(&c, "i");
        EXPECT_STREQ(c.prefix, "i");
        EXPECT_EQ(c.len, 0);
        EXPECT_FALSE(c.line_open);
        EXPECT_EQ(c.tx_bytes, 0);
}

TEST(lines_get_prefix_and_bytes_are_counted)
{
        struct vcons c;

        vcons_init(&c, "vm1");
        capture_start();
        puts_c(&c, "hello\nworld");
        EXPECT_STREQ(logbuf, "[vm1] hello\n");
        EXPECT_EQ(c.len, 5);
        puts_c(&c, "!\r\n");
        EXPECT_STREQ(logbuf, "[vm1] hello\n[vm1] world!\n");
        EXPECT_EQ(c.tx_bytes, 14); /* '\r' and '\n' count: bytes the guest sent */
        EXPECT_EQ(c.len, 0);
        puts_c(&c, "\n\r\r\n");
        EXPECT_STREQ(logbuf, "[vm1] hello\n[vm1] world!\n[vm1] \n[vm1] \n");
        log_set_sink(NULL);
}

TEST(non_printable_bytes_shown_as_dots)
{
        struct vcons c;

        vcons_init(&c, "np");
        capture_start();
        vcons_putc(&c, 0x00);
        vcons_putc(&c, 0x7f);
        vcons_putc(&c, 0xc3);
        vcons_putc(&c, 0x07);
        puts_c(&c, "a\tb\n");
        EXPECT_STREQ(logbuf, "[np] ....a\tb\n");
        log_set_sink(NULL);
}

TEST(escape_sequences_are_dropped_whole)
{
        struct vcons c;
        char long_osc[ESC_TEST_LONG + 8];

        vcons_init(&c, "es");
        capture_start();
        /* busybox's prompt asks for the cursor position: ESC [ 6 n, once shown as ".[6n" */
        puts_c(&c, "keel-sh# \x1b[6necho\n");
        /* colours, cursor moves with parameters and intermediates, a private mode */
        puts_c(&c, "\x1b[1;31mred\x1b[0m \x1b[?25l\x1b[2J\x1b[10;20H\x1b[ qok\n");
        /* OSC (window title) ended by BEL and by ST; two-byte and charset sequences */
        puts_c(&c, "\x1b]0;title\x07"
                   "a\x1b]2;t\x1b\\b\x1b"
                   "7\x1b"
                   "8\x1b(Bc\n");
        /* a lone ESC before a control byte, and a CSI broken by a control byte */
        puts_c(&c, "x\x1b\ty\x1b[1\x01z\n");
        EXPECT_STREQ(logbuf, "[es] keel-sh# echo\n[es] red ok\n[es] abc\n[es] x\ty.z\n");
        /* Never across a line end, and never without bound. */
        capture_start();
        puts_c(&c, "\x1b]0;no end\nnext\n");
        memset(long_osc, 'q', sizeof(long_osc));
        long_osc[0] = 0x1b;
        long_osc[1] = ']';
        long_osc[sizeof(long_osc) - 1] = 0;
        puts_c(&c, long_osc);
        puts_c(&c, "\n");
        /* bytes 1-256 of the sequence dropped, the 7 after them shown */
        EXPECT_STREQ(logbuf, "[es] \n[es] next\n[es] qqqqqqq\n");
        log_set_sink(NULL);
}

TEST(long_lines_are_emitted_in_pieces)
{
        struct vcons c;
        char want[3 * VCONS_LINE_MAX];
        int n;

        vcons_init(&c, "f");
        capture_start();
        for (unsigned i = 0; i < VCONS_LINE_MAX; i++)
                vcons_putc(&c, (uint8_t)('a' + i % 26));
        EXPECT_STREQ(logbuf, ""); /* exactly full: nothing until the next byte */
        EXPECT_EQ(c.len, VCONS_LINE_MAX);
        puts_c(&c, "XY\n");
        n = snprintf(want, sizeof(want), "[f] ");
        for (unsigned i = 0; i < VCONS_LINE_MAX; i++)
                want[n++] = (char)('a' + i % 26);
        snprintf(want + n, sizeof(want) - n, "\n[f] XY\n");
        EXPECT_STREQ(logbuf, want);
        log_set_sink(NULL);
}

TEST(partial_line_shown_when_idle_then_flushed)
{
        struct vcons c;

        vcons_init(&c, "sh");
        capture_start();
        vcons_show_partial(&c); /* nothing pending: nothing shown */
        vcons_flush(&c);
        EXPECT_STREQ(logbuf, "");
        puts_c(&c, "~ # ");
        vcons_show_partial(&c);
        EXPECT_STREQ(logbuf, "[sh] ~ # ");
        EXPECT_TRUE(c.line_open);
        puts_c(&c, "ls");
        vcons_show_partial(&c);
        vcons_show_partial(&c);
        EXPECT_STREQ(logbuf, "[sh] ~ # ls");
        puts_c(&c, "\nnext\n");
        EXPECT_STREQ(logbuf, "[sh] ~ # ls\n[sh] next\n");
        EXPECT_FALSE(c.line_open);
        /* An open line is finished at a stop, even with nothing new; only once. */
        puts_c(&c, "$ ");
        vcons_show_partial(&c);
        vcons_flush(&c);
        vcons_flush(&c);
        EXPECT_STREQ(logbuf, "[sh] ~ # ls\n[sh] next\n[sh] $ \n");
        /* A partial line not yet shown is flushed with its prefix. */
        puts_c(&c, "bye");
        vcons_flush(&c);
        EXPECT_STREQ(logbuf, "[sh] ~ # ls\n[sh] next\n[sh] $ \n[sh] bye\n");
        log_set_sink(NULL);
}

TEST(missing_and_long_prefixes)
{
        struct vcons c;
        char longname[100], want[100];

        vcons_init(&c, NULL);
        capture_start();
        puts_c(&c, "x\n");
        EXPECT_STREQ(logbuf, "[] x\n");
        /* At most 64 bytes of prefix reach the console. */
        memset(longname, 'n', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        vcons_init(&c, longname);
        capture_start();
        puts_c(&c, "y\n");
        snprintf(want, sizeof(want), "[%.64s] y\n", longname);
        EXPECT_STREQ(logbuf, want);
        log_set_sink(NULL);
}

TEST(an_open_line_is_ended_for_other_writers)
{
        struct vcons a, b;

        vcons_init(&a, "a");
        vcons_init(&b, "b");
        capture_start();
        puts_c(&a, "login: ");
        vcons_show_partial(&a); /* a's prompt waits for input */
        puts_c(&b, "booting\n");
        EXPECT_STREQ(logbuf, "[a] login: \n[b] booting\n");
        /* a's next piece starts a new, prefixed line */
        puts_c(&a, "root\n");
        EXPECT_STREQ(logbuf, "[a] login: \n[b] booting\n[a] root\n");
        /* Keel's own lines end it too; a stop with nothing new then prints nothing more */
        puts_c(&a, "# ");
        vcons_show_partial(&a);
        log_printf(LOG_LEVEL_INFO, "keel: vm a stopped");
        vcons_flush(&a);
        EXPECT_STREQ(logbuf, "[a] login: \n[b] booting\n[a] root\n[a] # \nkeel: vm a stopped\n");
        log_set_sink(NULL);
}

/*
 * Every vCPU of a VM writes its console at once (UART bytes, print hypercalls) while the boot
 * CPU flushes it at a stop: no byte is lost from the count, the line is not left past its
 * buffer, and every byte reaches the sink (the fake arch's log lock does not tell threads
 * apart, so the sink counts atomically).
 */
#define CONS_THREADS 4
#define CONS_BYTES   2000000

static struct vcons race_c;
static unsigned long race_sunk;
static pthread_barrier_t cons_start;

static void race_sink(const char *s, unsigned long len)
{
        (void)s;
        __atomic_add_fetch(&race_sunk, len, __ATOMIC_RELAXED);
}

static void *cons_thread(void *arg)
{
        unsigned id = (unsigned)(uintptr_t)arg;
        uint8_t buf[7] = {'a', 'b', 'c', 'd', 'e', 'f', 'g'};

        pthread_barrier_wait(&cons_start);
        for (unsigned i = 0; i < CONS_BYTES / 8; i++) {
                if (id == 0 && i % 64 == 0)
                        vcons_flush(&race_c);
                else if (id == 1 && i % 64 == 0)
                        vcons_show_partial(&race_c);
                if (i % 2)
                        vcons_write(&race_c, buf, sizeof(buf));
                else
                        for (unsigned k = 0; k < sizeof(buf); k++)
                                vcons_putc(&race_c, buf[k]);
                vcons_putc(&race_c, i % 97 == 0 ? '\n' : 'x');
        }
        return NULL;
}

TEST(writers_on_every_cpu_at_once)
{
        pthread_t t[CONS_THREADS];

        vcons_init(&race_c, "race");
        pthread_barrier_init(&cons_start, NULL, CONS_THREADS);
        log_set_level(LOG_LEVEL_INFO);
        log_set_sink(race_sink);
        for (unsigned i = 0; i < CONS_THREADS; i++)
                ASSERT_TRUE(pthread_create(&t[i], NULL, cons_thread, (void *)(uintptr_t)i) == 0);
        for (unsigned i = 0; i < CONS_THREADS; i++)
                pthread_join(t[i], NULL);
        pthread_barrier_destroy(&cons_start);
        EXPECT_EQ(race_c.tx_bytes, (uint64_t)CONS_THREADS * (CONS_BYTES / 8) * 8);
        EXPECT_TRUE(race_c.len <= VCONS_LINE_MAX);
        vcons_flush(&race_c);
        /* Every byte but the newlines' own (they end lines) was sunk, plus prefixes and ends. */
        EXPECT_TRUE(race_sunk >=
                    race_c.tx_bytes - (uint64_t)CONS_THREADS * (CONS_BYTES / 8 / 97 + 1));
        log_set_sink(NULL);
}

TEST(raw_mode_focused_vm_as_is_others_kept_then_replayed)
{
        static struct vcons_hist ha, hb;
        struct vcons a, b;

        memset(&a, 0, sizeof(a));
        memset(&b, 0, sizeof(b));
        vcons_init(&a, "a");
        vcons_init(&b, "b");
        a.hist = &ha;
        b.hist = &hb;
        capture_start();
        puts_c(&a, "half");
        vcons_raw_focus(&a, &ha); /* a's unfinished prefixed line ends first */
        EXPECT_STREQ(logbuf, "[a] half\n");
        puts_c(&a, "x\033[6n\r\n\001");
        vcons_write(&b, (const uint8_t *)"b1\033[1mB\n", 8);
        EXPECT_STREQ(logbuf, "[a] half\nx\033[6n\r\n\001"); /* b's bytes kept, not shown */
        EXPECT_EQ(hb.len, 8);
        EXPECT_EQ(b.tx_bytes, 8);
        capture_start();
        vcons_raw_focus(&b, &hb); /* a's open line ends, then b's history, as it came */
        EXPECT_STREQ(logbuf, "\nb1\033[1mB\n");
        EXPECT_EQ(hb.len, 0);
        vcons_write(&b, (const uint8_t *)"", 0); /* empty: nothing out, nothing read */
        puts_c(&b, "z");
        puts_c(&a, "later");
        EXPECT_STREQ(logbuf, "\nb1\033[1mB\nz");
        LOG_INFO("a line of Keel's own"); /* starts on a line of its own */
        EXPECT_STREQ(logbuf, "\nb1\033[1mB\nz\nkeel: a line of Keel's own\n");
        EXPECT_EQ(ha.len, 5);
        capture_start();
        puts_c(&b, "y");
        vcons_raw_off(); /* the monitor has the focus: b's open line ends, prefixed again */
        puts_c(&b, "p\033[2Jq\n");
        EXPECT_STREQ(logbuf, "y\n[b] pq\n");
        log_set_sink(NULL);
}

TEST(raw_mode_history_keeps_the_latest_bytes)
{
        static struct vcons_hist ha, hb;
        struct vcons a, b;
        static char want[VCONS_HIST_MAX + 1];

        memset(&a, 0, sizeof(a));
        memset(&b, 0, sizeof(b));
        vcons_init(&a, "a");
        vcons_init(&b, "b");
        a.hist = &ha;
        b.hist = &hb;
        vcons_raw_focus(&a, &ha);
        for (unsigned i = 0; i < VCONS_HIST_MAX + 100; i++)
                vcons_putc(&b, (uint8_t)('a' + i % 26));
        EXPECT_EQ(hb.len, VCONS_HIST_MAX);
        EXPECT_TRUE(hb.lost);
        for (unsigned i = 0; i < VCONS_HIST_MAX; i++)
                want[i] = (char)('a' + (i + 100) % 26);
        want[VCONS_HIST_MAX] = 0;
        /* b is freed (it stopped): its history outlives it and is shown when focused */
        vcons_forget(&b);
        capture_start();
        vcons_raw_focus(NULL, &hb);
        EXPECT_CONTAINS(logbuf, "older output of this VM was dropped");
        EXPECT_CONTAINS(logbuf, want); /* the oldest 100 bytes went, in order after the wrap */
        EXPECT_FALSE(hb.lost);
        EXPECT_EQ(hb.len, 0);
        /* the focus on a VM not built: every built VM's output is kept */
        puts_c(&a, "kept");
        EXPECT_EQ(ha.len, 4);
        /* a VM without a history page (no memory) drops its background output */
        a.hist = NULL;
        puts_c(&a, "gone");
        EXPECT_EQ(a.tx_bytes, 8);
        vcons_raw_off();
        log_set_sink(NULL);
}

TEST_MAIN()
