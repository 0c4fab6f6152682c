/*
 * libFuzzer target for the gdb remote-protocol packet layer (vmm/gdbstub.c), against the fake
 * target of the unit tests (tests/unit/gdb_fake_target.h).
 *
 * Input: byte 0: bits 0-3 the size of the pieces the rest is fed in (0: all at once), bit 4:
 * the target reports a stop (thread byte 1 % 3) after every piece, bit 5: the data is framed
 * packet by packet (each run up to a NUL becomes "$run#checksum" with the right sum) rather
 * than sent raw. The rest is what gdb sends.
 *
 * Invariants (abort on violation): the stub stays inside its buffers (ASan); every reply it
 * writes is framed ($...#hh) with the right checksum and no raw '$' or '#' inside, or a lone
 * '+' / '-'; the target is only asked about threads that exist (the fake traps otherwise); a
 * reply never comes while the target runs; nothing happens after the session ended.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../unit/gdb_fake_target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fake_target f;
static struct gdb_stub stub;

static void fail(const char *what)
{
        fprintf(stderr, "fuzz_gdbstub: invariant violated: %s\n", what);
        abort();
}

static int hexv(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* Everything written since the last check: acks and well-framed packets only. */
static void check_output(size_t from)
{
        size_t n = f.out_len < FAKE_OUT - 1 ? f.out_len : FAKE_OUT - 1;

        for (size_t i = from; i < n;) {
                unsigned sum = 0;

                if (f.out[i] == '+' || f.out[i] == '-') {
                        i++;
                        continue;
                }
                if (f.out[i] != '$')
                        fail("output outside a packet");
                for (i++; i < n && f.out[i] != '#'; i++) {
                        if (f.out[i] == '$')
                                fail("raw $ inside a reply");
                        sum += (uint8_t)f.out[i];
                }
                if (i + 2 >= n + (n == FAKE_OUT - 1)) /* truncated by the fake's buffer: stop */
                        return;
                if (hexv(f.out[i + 1]) < 0 || hexv(f.out[i + 2]) < 0 ||
                    (unsigned)(hexv(f.out[i + 1]) << 4 | hexv(f.out[i + 2])) != (sum & 0xff))
                        fail("wrong checksum");
                i += 3;
        }
}

static void feed(const uint8_t *buf, size_t n)
{
        size_t before = f.out_len;
        bool was_running = stub.running, was_ended = gdb_ended(&stub);
        int resumed = f.resumed;

        gdb_input(&stub, buf, n);
        if (was_ended && f.out_len != before)
                fail("output after the session ended");
        /* While it runs only what was kept may be answered after the stop, never now. */
        if (was_running && f.out_len != before)
                fail("reply while the target runs");
        (void)resumed;
        if (before < FAKE_OUT - 1)
                check_output(before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static uint8_t framed[1 << 16];
        unsigned piece, thread;
        bool stops, frame;
        const uint8_t *in;
        size_t len;

        if (size < 2)
                return 0;
        piece = data[0] & 15;
        stops = data[0] & 16;
        frame = data[0] & 32;
        thread = data[1] % FAKE_THREADS;
        data += 2;
        size -= 2;
        memset(&f, 0, sizeof(f));
        gdb_init(&stub, &fake_gdb_ops, &f);
        gdb_stopped(&stub, 0, 5, GDB_STOP_SIGNAL, 0);
        in = data;
        len = size;
        if (frame) {
                size_t n = 0;

                for (size_t i = 0; i < size && n + 4 < sizeof(framed);) {
                        unsigned sum = 0;

                        framed[n++] = '$';
                        for (; i < size && data[i] && n + 4 < sizeof(framed); i++) {
                                framed[n++] = data[i];
                                sum += data[i];
                        }
                        i++;
                        n += (size_t)snprintf((char *)framed + n, 4, "#%02x", sum & 0xff);
                }
                in = framed;
                len = n;
        }
        if (!piece)
                piece = (unsigned)len ? (unsigned)len : 1;
        for (size_t off = 0; off < len; off += piece) {
                size_t n = len - off < piece ? len - off : piece;
                size_t before = f.out_len;

                feed(in + off, n);
                if (stops && stub.running && !gdb_ended(&stub)) {
                        /* Every stop reason, a watchpoint's address from the input. */
                        gdb_stopped(&stub, thread, 5, (enum gdb_stop)(off % 6),
                                    off < len ? (uint64_t)in[off] << 40 | off : 0);
                        if (before < FAKE_OUT - 1)
                                check_output(before);
                }
        }
        return 0;
}
