/*
 * Tests for vmm/gdbstub.c, the gdb remote-protocol packet layer, against a fake target
 * (gdb_fake_target.h): framing and checksums, acks and retransmission, escapes, run-length
 * replies, every packet it serves, the stop / resume protocol with Ctrl-C, and malformed
 * packets.
 */
#include <stdio.h>
#include <stdlib.h>

#include "gdb_fake_target.h"
#include "test.h"

static struct fake_target f;
static struct gdb_stub stub;

/* A stub on a stopped target (thread 0), output cleared. */
static void setup(void)
{
        memset(&f, 0, sizeof(f));
        f.step = -2;
        gdb_init(&stub, &fake_gdb_ops, &f);
        gdb_stopped(&stub, 0, 5, GDB_STOP_SIGNAL, 0);
}

static void clear_out(void)
{
        f.out_len = 0;
        f.out[0] = '\0';
}

/* Send `body` framed with its right checksum. */
static void send_pkt(const char *body)
{
        char buf[8192];
        unsigned sum = 0;
        int n;

        for (const char *p = body; *p; p++)
                sum += (uint8_t)*p;
        n = snprintf(buf, sizeof(buf), "$%s#%02x", body, sum & 0xff);
        gdb_input(&stub, (const uint8_t *)buf, (size_t)n);
}

/* Expand run-length encoding of a framed reply's body ($...#cs -> body), checking the sum. */
static void decode_reply(const char *framed, char *body, size_t max)
{
        const char *p = framed;
        unsigned sum = 0, want;
        size_t n = 0;

        if (*p++ != '$') {
                snprintf(body, max, "<not a packet: %s>", framed);
                return;
        }
        for (; *p && *p != '#'; p++) {
                sum += (uint8_t)*p;
                if (*p == '*' && n) {
                        int rep = p[1] - 29;

                        sum += (uint8_t)p[1];
                        for (int i = 0; i < rep && n < max - 1; i++, n++)
                                body[n] = body[n - 1];
                        p++;
                        continue;
                }
                if (n < max - 1)
                        body[n++] = *p;
        }
        body[n] = '\0';
        if (*p != '#' || sscanf(p + 1, "%2x", &want) != 1 || want != (sum & 0xff))
                snprintf(body, max, "<bad checksum: %s>", framed);
}

/* Send a packet, expect '+' then one reply; return the reply's body. */
static const char *ask(const char *body)
{
        static char reply[8192];

        clear_out();
        send_pkt(body);
        if (f.out[0] != '+')
                return "<no ack>";
        decode_reply(f.out + 1, reply, sizeof(reply));
        return reply;
}

TEST(framing_ack_and_checksum)
{
        setup();
        clear_out();
        gdb_input(&stub, (const uint8_t *)"$?#3f", 5);
        EXPECT_STREQ(f.out, "+$T05thread:01;#07");
        clear_out();
        gdb_input(&stub, (const uint8_t *)"$?#3e", 5); /* wrong sum */
        EXPECT_STREQ(f.out, "-");
        clear_out();
        gdb_input(&stub, (const uint8_t *)"$?#zz", 5); /* not hex */
        EXPECT_STREQ(f.out, "-");
        clear_out();
        gdb_input(&stub, (const uint8_t *)"-", 1); /* gdb asks again: the last reply */
        EXPECT_STREQ(f.out, "$T05thread:01;#07");
        clear_out();
        gdb_input(&stub, (const uint8_t *)"+++junk", 7); /* between packets: nothing */
        EXPECT_STREQ(f.out, "");
}

TEST(packet_split_byte_by_byte)
{
        const char *pkt = "$m1000,4#8e";

        setup();
        f.vmem[0] = 0xde;
        f.vmem[3] = 0x01;
        clear_out();
        for (const char *p = pkt; *p; p++)
                gdb_input(&stub, (const uint8_t *)p, 1);
        EXPECT_EQ(f.out[0], '+');
        EXPECT_CONTAINS(f.out, "$de0*!1#"); /* 0 then 4 more: run-length */
}

TEST(supported_and_unknown)
{
        setup();
        EXPECT_CONTAINS(ask("qSupported:multiprocess+;swbreak+"), "qXfer:features:read+");
        EXPECT_CONTAINS(ask("qSupported"), "PacketSize=1000");
        EXPECT_STREQ(ask("vMustReplyEmpty"), "");
        EXPECT_STREQ(ask("qTStatus"), "");
        EXPECT_STREQ(ask("!"), "");
        EXPECT_STREQ(ask("qAttached"), "1");
        EXPECT_STREQ(ask("vCont?"), "vCont;c;C;s;S");
}

TEST(features_xml_in_pieces_escaped)
{
        char all[1024] = "";
        char q[64];

        setup();
        for (unsigned off = 0;; off += 10) {
                const char *r;

                snprintf(q, sizeof(q), "qXfer:features:read:target.xml:%x,a", off);
                r = ask(q);
                EXPECT_TRUE(r[0] == 'm' || r[0] == 'l');
                /* unescape */
                for (const char *p = r + 1; *p; p++) {
                        char c = *p;

                        if (c == '}')
                                c = (char)(*++p ^ 0x20);
                        strncat(all, &c, 1);
                }
                if (r[0] == 'l')
                        break;
                if (off > 1000)
                        break;
        }
        EXPECT_STREQ(all, fake_xml);
        EXPECT_STREQ(ask("qXfer:features:read:target.xml:ffff,10"), "l");
        EXPECT_STREQ(ask("qXfer:features:read:other.xml:0,10"), "E00");
        EXPECT_STREQ(ask("qXfer:features:read:target.xml:0"), "E22");
}

TEST(threads)
{
        setup();
        EXPECT_STREQ(ask("qfThreadInfo"), "m1,2,3");
        EXPECT_STREQ(ask("qsThreadInfo"), "l");
        EXPECT_STREQ(ask("qC"), "QC1");
        EXPECT_STREQ(ask("T2"), "OK");
        EXPECT_STREQ(ask("T4"), "E01");
        EXPECT_STREQ(ask("T0"), "E01");
        EXPECT_STREQ(ask("Hg3"), "OK");
        EXPECT_EQ(stub.g_thread, 2);
        EXPECT_STREQ(ask("Hg4"), "E22");
        EXPECT_EQ(stub.g_thread, 2);
        EXPECT_STREQ(ask("Hg0"), "OK"); /* any: stays */
        EXPECT_EQ(stub.g_thread, 2);
        EXPECT_STREQ(ask("Hc-1"), "OK");
        EXPECT_STREQ(ask("Hx1"), "E22");
}

TEST(registers_in_order_and_per_thread)
{
        setup();
        f.regs[0][0] = 0x1122334455667788ull;
        f.regs[0][2] = 0xaabbccdd;
        f.regs[1][3] = 0x1234;
        EXPECT_STREQ(ask("g"), "8877665544332211"
                               "0000000000000000"
                               "ddccbbaa"
                               "0000");
        EXPECT_STREQ(ask("Hg2"), "OK");
        EXPECT_STREQ(ask("p3"), "3412");
        EXPECT_STREQ(ask("p4"), "E0e");
        EXPECT_STREQ(ask("P1=0100000000000080"), "OK");
        EXPECT_EQ(f.regs[1][1], 0x8000000000000001ull);
        EXPECT_EQ(f.regs[0][1], 0);
        EXPECT_STREQ(ask("P1=01"), "E22"); /* wrong size */
        EXPECT_STREQ(ask("P9=01"), "E0e");
        EXPECT_STREQ(ask("P1"), "E22");
        EXPECT_STREQ(ask("G0100000000000000020000000000000003000000"), "OK"); /* one short */
        EXPECT_EQ(f.regs[1][0], 1);
        EXPECT_EQ(f.regs[1][1], 2);
        EXPECT_EQ(f.regs[1][2], 3);
        EXPECT_EQ(f.regs[1][3], 0x1234);
        EXPECT_STREQ(ask("G01000000000000000200000000000000030000000400ff"), "E22"); /* long */
        EXPECT_STREQ(ask("G0g"), "E22");
        EXPECT_STREQ(ask("gx"), "E22");
}

TEST(memory_virtual_physical_and_binary)
{
        setup();
        EXPECT_STREQ(ask("M1004,3:a1b2c3"), "OK");
        EXPECT_EQ(f.vmem[4], 0xa1);
        EXPECT_EQ(f.vmem[6], 0xc3);
        EXPECT_STREQ(ask("m1003,5"), "00a1b2c300");
        EXPECT_STREQ(ask("m10fe,2"), "0000");
        EXPECT_STREQ(ask("m10ff,2"), "E0e");
        EXPECT_STREQ(ask("m10ff,2000"), "E22");          /* more than a reply holds */
        EXPECT_STREQ(ask("m1100,1"), "E0e");             /* outside: gdb's "Cannot access memory" */
        EXPECT_STREQ(ask("mffffffffffffffff,2"), "E22"); /* wraps */
        EXPECT_STREQ(ask("m1000"), "E22");
        EXPECT_STREQ(ask("M1000,2:a1"), "E22");
        EXPECT_STREQ(ask("M1000,1:zz"), "E22");
        /* X: binary, with '}' escapes for '#', '$', '}' and '*' */
        {
                char pkt[] = "X1010,4:a}\x03}]}\x0a";

                EXPECT_STREQ(ask(pkt), "OK");
                EXPECT_EQ(f.vmem[0x10], 'a');
                EXPECT_EQ(f.vmem[0x11], '#');
                EXPECT_EQ(f.vmem[0x12], '}');
                EXPECT_EQ(f.vmem[0x13], '*');
        }
        EXPECT_STREQ(ask("X1010,0:"), "OK");
        EXPECT_STREQ(ask("X1010,2:a"), "E22");
        /* guest-physical through monitor phys (qRcmd, hex of the command) */
        EXPECT_STREQ(ask("m40,1"), "E0e");
        clear_out();
        send_pkt("qRcmd,70687973"); /* "phys" */
        EXPECT_CONTAINS(f.out, "$O");
        EXPECT_CONTAINS(f.out, "$OK#9a");
        f.pmem[1] = 0x5a;
        EXPECT_STREQ(ask("m41,1"), "5a");
        EXPECT_STREQ(ask("m1000,1"), "E0e");
        send_pkt("qRcmd,76697274"); /* "virt" */
        EXPECT_STREQ(ask("m1010,1"), "61");
        EXPECT_STREQ(ask("qRcmd,7"), "E22");
}

TEST(run_length_replies)
{
        char q[32];

        setup();
        /* 256 zero bytes = 512 '0's: encoded far shorter, and decodes back */
        snprintf(q, sizeof(q), "m%x,%x", FAKE_VBASE, FAKE_VSIZE);
        clear_out();
        send_pkt(q);
        EXPECT_TRUE(f.out_len < 100);
        {
                const char *r = ask(q);

                EXPECT_EQ(strlen(r), 2 * FAKE_VSIZE);
                EXPECT_EQ(strspn(r, "0"), 2 * FAKE_VSIZE);
        }
        /* every run length from 1 to 40 decodes back (7 and 8 repeats must avoid '#' '$') */
        for (unsigned run = 1; run <= 40; run++) {
                char want[128];
                const char *r;

                memset(f.vmem, 0, sizeof(f.vmem));
                memset(f.vmem, 0x11, run);
                f.vmem[run] = 0x22;
                snprintf(q, sizeof(q), "m1000,%x", run + 1);
                clear_out();
                send_pkt(q);
                EXPECT_TRUE(strchr(f.out + 2, '$') == NULL);
                EXPECT_EQ(strchr(f.out + 2, '#') - f.out, (long)f.out_len - 3);
                r = ask(q);
                memset(want, '1', 2 * run);
                strcpy(want + 2 * run, "22");
                EXPECT_STREQ(r, want);
        }
}

TEST(breakpoints)
{
        setup();
        EXPECT_STREQ(ask("Z0,1000,1"), "OK");
        EXPECT_EQ(f.nbps, 1);
        EXPECT_EQ(f.bps[0], 0x1000);
        EXPECT_STREQ(ask("Z0,1004,1;X1,0"), "OK"); /* with a condition list: ignored */
        EXPECT_STREQ(ask("z0,1000,1"), "OK");
        EXPECT_EQ(f.nbps, 1);
        EXPECT_EQ(f.bps[0], 0x1004);
        EXPECT_STREQ(ask("Z2,1000,4"), ""); /* the fake has no watchpoints */
        EXPECT_STREQ(ask("Z5,1000,4"), "E22");
        EXPECT_STREQ(ask("Z0,1000"), "E22");
        EXPECT_STREQ(ask("Z0,1001,1"), "OK");
        EXPECT_STREQ(ask("Z0,1002,1"), "OK");
        EXPECT_STREQ(ask("Z0,1003,1"), "OK");
        EXPECT_STREQ(ask("Z0,1005,1"), "E1c"); /* ENOSPC */
}

TEST(continue_stop_reply_and_ctrl_c)
{
        setup();
        clear_out();
        send_pkt("c");
        EXPECT_STREQ(f.out, "+"); /* no reply while it runs */
        EXPECT_EQ(f.resumed, 1);
        EXPECT_EQ(f.step, -1);
        EXPECT_TRUE(stub.running);
        gdb_input(&stub, (const uint8_t *)"\x03", 1);
        EXPECT_EQ(f.interrupts, 1);
        clear_out();
        gdb_stopped(&stub, 1, 2, GDB_STOP_SIGNAL, 0);
        EXPECT_STREQ(f.out, "$T02thread:02;#05");
        EXPECT_EQ(stub.g_thread, 1);
        /* a second stop report is ignored: it is stopped */
        clear_out();
        gdb_stopped(&stub, 2, 5, GDB_STOP_SIGNAL, 0);
        EXPECT_STREQ(f.out, "");
        EXPECT_STREQ(ask("?"), "T02thread:02;");
}

TEST(step_and_vcont)
{
        setup();
        EXPECT_STREQ(ask("Hg2"), "OK");
        clear_out();
        send_pkt("s");
        EXPECT_EQ(f.step, 1);
        gdb_stopped(&stub, 1, 5, GDB_STOP_SIGNAL, 0);
        clear_out();
        send_pkt("vCont;s:3;c");
        EXPECT_EQ(f.step, 2);
        gdb_stopped(&stub, 2, 5, GDB_STOP_SIGNAL, 0);
        clear_out();
        send_pkt("vCont;c");
        EXPECT_EQ(f.step, -1);
        gdb_stopped(&stub, 0, 5, GDB_STOP_SIGNAL, 0);
        EXPECT_STREQ(ask("vCont;x"), "E22");
        EXPECT_STREQ(ask("vCont;s:9"), "E22");
        EXPECT_STREQ(ask("vCont"), "E22");
        EXPECT_STREQ(ask("c1000"), "E22");
        EXPECT_EQ(f.resumed, 3);
}

TEST(input_while_running_is_kept_then_served)
{
        setup();
        clear_out();
        send_pkt("c");
        send_pkt("g"); /* gdb should not, but: kept */
        EXPECT_STREQ(f.out, "+");
        clear_out();
        gdb_stopped(&stub, 0, 5, GDB_STOP_SIGNAL, 0);
        EXPECT_CONTAINS(f.out, "$T05thread:01;#07+$");
}

TEST(attach_sends_no_unasked_stop_reply)
{
        memset(&f, 0, sizeof(f));
        gdb_init(&stub, &fake_gdb_ops, &f);
        send_pkt("qSupported"); /* kept until it has stopped */
        EXPECT_STREQ(f.out, "");
        gdb_stopped(&stub, 0, 5, GDB_STOP_SIGNAL, 0);
        EXPECT_EQ(f.out[0], '+');
        EXPECT_CONTAINS(f.out, "PacketSize");
        EXPECT_TRUE(strstr(f.out, "T05") == NULL);
}

TEST(detach_and_kill_end_the_session)
{
        setup();
        EXPECT_STREQ(ask("D"), "OK");
        EXPECT_EQ(f.detached, 1);
        EXPECT_TRUE(gdb_ended(&stub));
        clear_out();
        send_pkt("g");
        EXPECT_STREQ(f.out, "");
        setup();
        clear_out();
        send_pkt("k");
        EXPECT_EQ(f.detached, 1);
        EXPECT_TRUE(gdb_ended(&stub));
}

TEST(overlong_packet_refused)
{
        static char big[GDB_PACKET_MAX + 100];

        setup();
        memset(big, 'm', sizeof(big) - 1);
        EXPECT_STREQ(ask(big), "E22");
        EXPECT_STREQ(ask("?"), "T05thread:01;");
}

TEST(swbreak_and_exit)
{
        setup();
        EXPECT_CONTAINS(ask("qSupported"), "swbreak+");
        clear_out();
        send_pkt("c");
        gdb_stopped(&stub, 2, 5, GDB_STOP_SWBREAK, 0);
        EXPECT_CONTAINS(f.out, "$T05thread:03;swbreak:;#");
        clear_out();
        send_pkt("c");
        gdb_exited(&stub, 0x2a);
        EXPECT_STREQ(f.out, "+$W2a#ea");
        EXPECT_TRUE(gdb_ended(&stub));
}

/* Hardware breakpoint and watchpoint stops: their reason, a watchpoint's data address in hex. */
TEST(hw_stop_reasons)
{
        static const struct {
                enum gdb_stop why;
                uint64_t addr;
                const char *want;
        } cases[] = {
            {GDB_STOP_HWBREAK, 0x1234, "T05thread:02;hwbreak:;"},
            {GDB_STOP_WATCH, 0x10a8, "T05thread:02;watch:10a8;"},
            {GDB_STOP_RWATCH, 0xffff800000000010ull, "T05thread:02;rwatch:ffff800000000010;"},
            {GDB_STOP_AWATCH, 0, "T05thread:02;awatch:0;"},
            {GDB_STOP_SIGNAL, 0x99, "T05thread:02;"},
        };

        setup();
        EXPECT_CONTAINS(ask("qSupported:swbreak+;hwbreak+"), "hwbreak+");
        for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char reply[128];

                clear_out();
                send_pkt("c");
                gdb_stopped(&stub, 1, 5, cases[i].why, cases[i].addr);
                EXPECT_TRUE(f.out[0] == '+');
                decode_reply(f.out + 1, reply, sizeof(reply)); /* run-length encoded */
                EXPECT_STREQ(reply, cases[i].want);
                EXPECT_STREQ(ask("?"), cases[i].want); /* the last stop, asked again */
        }
}

/* The compact target-description spec the arches keep (arch/<isa>/gdb.c). */
TEST(xml_expand_spec)
{
        static const char spec[] =
            "<t a=\"1\">x</t>[r8-10 rip:64,code_ptr cs:32 st0-1:80,ext,float]"
            "<f>[v31-31:128]</f><g>{CF:0 OF:11}</g>";
        static const char want[] =
            "<t a=\"1\">x</t><reg name=\"r8\" bitsize=\"64\" type=\"code_ptr\"/>"
            "<reg name=\"r9\" bitsize=\"64\" type=\"code_ptr\"/>"
            "<reg name=\"r10\" bitsize=\"64\" type=\"code_ptr\"/>"
            "<reg name=\"rip\" bitsize=\"64\" type=\"code_ptr\"/><reg name=\"cs\" bitsize=\"32\"/>"
            "<reg name=\"st0\" bitsize=\"80\" type=\"ext\" group=\"float\"/>"
            "<reg name=\"st1\" bitsize=\"80\" type=\"ext\" group=\"float\"/>"
            "<f><reg name=\"v31\" bitsize=\"128\"/></f><g><field name=\"CF\" start=\"0\" "
            "end=\"0\"/>"
            "<field name=\"OF\" start=\"11\" end=\"11\"/></g>";
        char buf[1024], small[8];

        EXPECT_EQ(gdb_xml_expand(buf, sizeof(buf), spec), sizeof(want) - 1);
        EXPECT_STREQ(buf, want);
        /* Too small a buffer: cut and terminated, the full length returned. */
        EXPECT_EQ(gdb_xml_expand(small, sizeof(small), spec), sizeof(want) - 1);
        EXPECT_STREQ(small, "<t a=\"1");
        EXPECT_EQ(gdb_xml_expand(NULL, 0, "[a:8]"), strlen("<reg name=\"a\" bitsize=\"8\"/>"));
}

TEST_MAIN()
