/*
 * The gdb remote-protocol packet layer (vmm/include/vmm/gdbstub.h, docs/debugging.md). gdb
 * is not trusted more than a guest: every field is parsed with bounds, a packet that does not
 * parse gets "E22", and nothing a packet says can make the stub read or write outside its own
 * buffers. Replies are run-length encoded.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <keel/errno.h>
#include <vmm/gdbstub.h>

#define SIGTRAP 5
#define E_INVAL "E22"

static const char hexdig[] = "0123456789abcdef";

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* A hex number of at most 16 digits at *p, moving *p past it; false if none or too long. */
static bool parse_hex(const char **p, uint64_t *out)
{
        uint64_t v = 0;
        unsigned n = 0;
        int d;

        while ((d = hexval(**p)) >= 0) {
                if (++n > 16)
                        return false;
                v = v << 4 | (unsigned)d;
                (*p)++;
        }
        *out = v;
        return n > 0;
}

static bool expect(const char **p, char c)
{
        if (**p != c)
                return false;
        (*p)++;
        return true;
}

/* n bytes from 2n hex digits at p; false if any is not a digit. */
static bool unhex(const char *p, uint8_t *buf, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                int hi = hexval(p[2 * i]), lo = hi < 0 ? -1 : hexval(p[2 * i + 1]);

                if (lo < 0)
                        return false;
                buf[i] = (uint8_t)(hi << 4 | lo);
        }
        return true;
}

/* The reply being built: s->reply[0..len). */
struct out {
        struct gdb_stub *s;
        size_t len;
};

static void put(struct out *o, const char *str, size_t n)
{
        size_t room = GDB_PACKET_MAX - o->len;

        if (n > room)
                n = room; /* callers size their replies; this only guards */
        memcpy(o->s->reply + o->len, str, n);
        o->len += n;
}

static void puts_(struct out *o, const char *str)
{
        put(o, str, strlen(str));
}

static void put_hex(struct out *o, const uint8_t *buf, size_t n)
{
        for (size_t i = 0; i < n && o->len + 2 <= GDB_PACKET_MAX; i++) {
                o->s->reply[o->len++] = hexdig[buf[i] >> 4];
                o->s->reply[o->len++] = hexdig[buf[i] & 15];
        }
}

static void put_num(struct out *o, uint64_t v, unsigned min_digits)
{
        char d[16];
        unsigned n = 0;

        do {
                d[n++] = hexdig[v & 15];
                v >>= 4;
        } while (v && n < 16);
        while (n < min_digits)
                d[n++] = '0';
        while (n)
                put(o, &d[--n], 1);
}

/* Frame reply[0..len) as $...#cs with run-length encoding, send it and keep it for '-'. */
static void send(struct gdb_stub *s, size_t len)
{
        char *f = s->last;
        size_t n = 0;
        uint8_t sum = 0;

        f[n++] = '$';
        for (size_t i = 0; i < len;) {
                char c = s->reply[i];
                size_t run = 1;

                while (i + run < len && s->reply[i + run] == c && run < 98)
                        run++;
                f[n++] = c;
                sum += (uint8_t)c;
                i++;
                run--; /* repeats after the first */
                if (run >= 3) {
                        /* count char = run + 29; '#' (6) and '$' (7) must not appear */
                        if (run == 6 || run == 7)
                                run = 5;
                        f[n++] = '*';
                        f[n++] = (char)(run + 29);
                        sum += (uint8_t)'*' + (uint8_t)(run + 29);
                        i += run;
                }
        }
        f[n++] = '#';
        f[n++] = hexdig[sum >> 4];
        f[n++] = hexdig[sum & 15];
        s->last_len = n;
        s->ops->write(s->ctx, f, n);
}

static void send_str(struct gdb_stub *s, const char *str)
{
        struct out o = {s, 0};

        puts_(&o, str);
        send(s, o.len);
}

static void send_err(struct gdb_stub *s, int err)
{
        struct out o = {s, 0};

        put(&o, "E", 1);
        put_num(&o, (uint64_t)(err < 0 ? -err : err) & 0xff, 2);
        send(s, o.len);
}

static void stop_reply(struct gdb_stub *s)
{
        struct out o = {s, 0};

        put(&o, "T", 1);
        put_num(&o, s->stop_signal, 2);
        puts_(&o, "thread:");
        put_num(&o, s->stop_thread + 1u, 2);
        put(&o, ";", 1);
        if (s->stop_why != GDB_STOP_SIGNAL) {
                static const char why[][8] = {
                    [GDB_STOP_SWBREAK] = "swbreak", [GDB_STOP_HWBREAK] = "hwbreak",
                    [GDB_STOP_WATCH] = "watch",     [GDB_STOP_RWATCH] = "rwatch",
                    [GDB_STOP_AWATCH] = "awatch",
                };

                puts_(&o, why[s->stop_why]);
                put(&o, ":", 1);
                if (s->stop_why >= GDB_STOP_WATCH)
                        put_num(&o, s->stop_addr, 1);
                put(&o, ";", 1);
        }
        send(s, o.len);
}

/* A thread id of H / T / vCont: -1 (all), 0 (any) or 1..threads(); sets *t 0-based. */
static bool parse_thread(struct gdb_stub *s, const char **p, unsigned *t, bool *all)
{
        uint64_t v;

        *all = false;
        if (**p == '-' && (*p)[1] == '1') {
                *p += 2;
                *all = true;
                *t = s->g_thread;
                return true;
        }
        if (!parse_hex(p, &v) || v > s->ops->threads(s->ctx))
                return false;
        *t = v == 0 ? s->g_thread : (unsigned)v - 1;
        return true;
}

static void read_regs(struct gdb_stub *s)
{
        struct out o = {s, 0};
        uint8_t buf[GDB_REG_MAX];
        size_t n;

        for (unsigned r = 0; (n = s->ops->reg_read(s->ctx, s->g_thread, r, buf)) > 0; r++) {
                if (n > GDB_REG_MAX || o.len + 2 * n > GDB_PACKET_MAX) {
                        send_str(s, "E14");
                        return;
                }
                put_hex(&o, buf, n);
        }
        send(s, o.len);
}

static void write_regs(struct gdb_stub *s, const char *p, size_t len)
{
        uint8_t buf[GDB_REG_MAX];
        size_t off = 0, n;

        if (len % 2) {
                send_str(s, E_INVAL);
                return;
        }
        /* Registers in order while the data lasts (gdb may send fewer than we described). */
        for (unsigned r = 0; off < len && (n = s->ops->reg_read(s->ctx, s->g_thread, r, buf)) > 0;
             r++) {
                if (n > GDB_REG_MAX || off + 2 * n > len || !unhex(p + off, buf, n)) {
                        send_str(s, E_INVAL);
                        return;
                }
                off += 2 * n;
                if (s->ops->reg_write(s->ctx, s->g_thread, r, buf, n) < 0) {
                        send_str(s, "E01");
                        return;
                }
        }
        send_str(s, off == len ? "OK" : E_INVAL);
}

static void read_reg(struct gdb_stub *s, const char *p)
{
        struct out o = {s, 0};
        uint8_t buf[GDB_REG_MAX];
        uint64_t r;
        size_t n;

        if (!parse_hex(&p, &r) || *p || r > 1000) {
                send_str(s, E_INVAL);
                return;
        }
        n = s->ops->reg_read(s->ctx, s->g_thread, (unsigned)r, buf);
        if (!n || n > GDB_REG_MAX) {
                send_str(s, "E0e");
                return;
        }
        put_hex(&o, buf, n);
        send(s, o.len);
}

static void write_reg(struct gdb_stub *s, const char *p, size_t len)
{
        const char *end = p + len;
        uint8_t buf[GDB_REG_MAX], cur[GDB_REG_MAX];
        uint64_t r;
        size_t n;

        if (!parse_hex(&p, &r) || !expect(&p, '=') || r > 1000) {
                send_str(s, E_INVAL);
                return;
        }
        n = s->ops->reg_read(s->ctx, s->g_thread, (unsigned)r, cur);
        if (!n || n > GDB_REG_MAX) {
                send_str(s, "E0e");
                return;
        }
        if ((size_t)(end - p) != 2 * n || !unhex(p, buf, n)) {
                send_str(s, E_INVAL);
                return;
        }
        send_str(s, s->ops->reg_write(s->ctx, s->g_thread, (unsigned)r, buf, n) < 0 ? "E01" : "OK");
}

/* "ADDR,LEN" and what follows; false if it does not parse or LEN is too large. */
static bool addr_len(const char **p, uint64_t *addr, uint64_t *n, uint64_t max)
{
        return parse_hex(p, addr) && expect(p, ',') && parse_hex(p, n) && *n <= max &&
               *addr + *n >= *addr;
}

static void read_mem(struct gdb_stub *s, const char *p)
{
        struct out o = {s, 0};
        uint8_t *buf = s->mem;
        uint64_t addr, n;

        if (!addr_len(&p, &addr, &n, GDB_PACKET_MAX / 2) || *p) {
                send_str(s, E_INVAL);
                return;
        }
        if (s->ops->mem_read(s->ctx, s->g_thread, addr, s->phys, buf, n) < 0) {
                send_str(s, "E0e"); /* EFAULT's low bits: gdb shows "Cannot access memory" */
                return;
        }
        put_hex(&o, buf, n);
        send(s, o.len);
}

/* M (hex data) or X (binary, already unescaped by the framing). */
static void write_mem(struct gdb_stub *s, const char *p, size_t len, bool binary)
{
        const char *end = p + len;
        uint8_t *buf = s->mem;
        uint64_t addr, n;

        if (!addr_len(&p, &addr, &n, sizeof(s->mem)) || !expect(&p, ':')) {
                send_str(s, E_INVAL);
                return;
        }
        if (binary) {
                if ((uint64_t)(end - p) != n) {
                        send_str(s, E_INVAL);
                        return;
                }
                memcpy(buf, p, n);
        } else if ((uint64_t)(end - p) != 2 * n || !unhex(p, buf, n)) {
                send_str(s, E_INVAL);
                return;
        }
        if (n && s->ops->mem_write(s->ctx, s->g_thread, addr, s->phys, buf, n) < 0) {
                send_str(s, "E0e");
                return;
        }
        send_str(s, "OK");
}

static void breakpoint(struct gdb_stub *s, const char *p, bool insert)
{
        uint64_t type, addr, kind;
        int r;

        if (!parse_hex(&p, &type) || type > GDB_WP_ACCESS || !expect(&p, ',') ||
            !parse_hex(&p, &addr) || !expect(&p, ',') || !parse_hex(&p, &kind) ||
            (*p && *p != ';')) {
                send_str(s, E_INVAL);
                return;
        }
        r = s->ops->bp(s->ctx, s->g_thread, (enum gdb_bp)type, insert, addr, kind);
        if (r == -KEEL_ENOTSUP)
                send_str(s, "");
        else if (r < 0)
                send_err(s, r);
        else
                send_str(s, "OK");
}

static void resume(struct gdb_stub *s, int step)
{
        s->running = true;
        s->want_stop = true;
        s->ops->resume(s->ctx, step);
}

/* c [ADDR] / s [ADDR]: resuming at another address is not supported. */
static void cont(struct gdb_stub *s, const char *p, bool step)
{
        if (*p) {
                send_str(s, E_INVAL);
                return;
        }
        resume(s, step ? (int)s->g_thread : -1);
}

/* vCont;ACTION[:TID];...: the first s or S names the thread that steps; others continue. */
static void vcont(struct gdb_stub *s, const char *p)
{
        int step = -1;

        if (!*p) {
                send_str(s, E_INVAL);
                return;
        }
        while (*p) {
                char a;
                unsigned t = s->g_thread;
                bool all = true;
                uint64_t sig;

                if (!expect(&p, ';')) {
                        send_str(s, E_INVAL);
                        return;
                }
                a = *p++;
                if (a == 'C' || a == 'S') {
                        if (!parse_hex(&p, &sig) || sig > 255) {
                                send_str(s, E_INVAL);
                                return;
                        }
                } else if (a != 'c' && a != 's') {
                        send_str(s, E_INVAL);
                        return;
                }
                if (expect(&p, ':') && !parse_thread(s, &p, &t, &all)) {
                        send_str(s, E_INVAL);
                        return;
                }
                if ((a == 's' || a == 'S') && step < 0)
                        step = (int)t;
        }
        resume(s, step);
}

static void set_thread(struct gdb_stub *s, const char *p)
{
        unsigned t;
        bool all;
        char op = *p++;

        if ((op != 'g' && op != 'c') || !parse_thread(s, &p, &t, &all) || *p) {
                send_str(s, E_INVAL);
                return;
        }
        if (op == 'g')
                s->g_thread = t;
        send_str(s, "OK");
}

static void thread_alive(struct gdb_stub *s, const char *p)
{
        uint64_t t;

        if (!parse_hex(&p, &t) || *p || t == 0 || t > s->ops->threads(s->ctx))
                send_str(s, "E01");
        else
                send_str(s, "OK");
}

static void thread_list(struct gdb_stub *s)
{
        struct out o = {s, 0};
        unsigned n = s->ops->threads(s->ctx);

        put(&o, "m", 1);
        for (unsigned t = 0; t < n; t++) {
                if (t)
                        put(&o, ",", 1);
                put_num(&o, t + 1u, 1);
        }
        send(s, o.len);
}

/* qXfer:features:read:target.xml:OFF,LEN; the XML goes out escaped as binary data. */
static void xfer_features(struct gdb_stub *s, const char *p)
{
        static const char annex[] = "target.xml:";
        struct out o = {s, 0};
        size_t len;
        const char *xml = s->ops->target_xml(s->ctx, &len);
        uint64_t off, n;

        if (strncmp(p, annex, sizeof(annex) - 1) != 0) {
                send_str(s, "E00");
                return;
        }
        p += sizeof(annex) - 1;
        if (!addr_len(&p, &off, &n, UINT64_MAX) || *p) {
                send_str(s, E_INVAL);
                return;
        }
        if (off >= len) {
                send_str(s, "l");
                return;
        }
        if (n > GDB_PACKET_MAX / 2 - 1)
                n = GDB_PACKET_MAX / 2 - 1; /* each byte escaped takes two */
        if (n > len - off)
                n = len - off;
        put(&o, off + n < len ? "m" : "l", 1);
        for (size_t i = 0; i < n; i++) {
                char c = xml[off + i];

                if (c == '#' || c == '$' || c == '}' || c == '*') {
                        char esc[2] = {'}', (char)(c ^ 0x20)};

                        put(&o, esc, 2);
                } else {
                        put(&o, &c, 1);
                }
        }
        send(s, o.len);
}

static void rcmd_reply(struct gdb_stub *s, const char *text)
{
        struct out o = {s, 0};

        put(&o, "O", 1);
        put_hex(&o, (const uint8_t *)text, strlen(text));
        send(s, o.len);
        send_str(s, "OK");
}

/* qRcmd,HEX: gdb's `monitor` command. */
static void rcmd(struct gdb_stub *s, const char *p, size_t len)
{
        char cmd[64];
        size_t n = len / 2;

        if (len % 2 || n >= sizeof(cmd) || !unhex(p, (uint8_t *)cmd, n)) {
                send_str(s, E_INVAL);
                return;
        }
        cmd[n] = '\0';
        if (strcmp(cmd, "phys") == 0) {
                s->phys = true;
                rcmd_reply(s, "memory addresses are guest-physical\n");
        } else if (strcmp(cmd, "virt") == 0) {
                s->phys = false;
                rcmd_reply(s, "memory addresses are guest-virtual (the vCPU's page tables)\n");
        } else if (strcmp(cmd, "help") == 0) {
                rcmd_reply(s, "monitor phys: m/M/X addresses are guest-physical\n"
                              "monitor virt: guest-virtual, through the selected vCPU's page "
                              "tables (the default)\n");
        } else {
                rcmd_reply(s, "unknown monitor command (monitor help lists them)\n");
        }
}

static bool starts(const char *p, const char *prefix)
{
        return strncmp(p, prefix, strlen(prefix)) == 0;
}

static void query(struct gdb_stub *s, const char *p, size_t len)
{
        if (starts(p, "qSupported")) {
                send_str(s,
                         "PacketSize=1000;qXfer:features:read+;swbreak+;hwbreak+;vContSupported+");
        } else if (starts(p, "qXfer:features:read:")) {
                xfer_features(s, p + 20);
        } else if (strcmp(p, "qfThreadInfo") == 0) {
                thread_list(s);
        } else if (strcmp(p, "qsThreadInfo") == 0) {
                send_str(s, "l");
        } else if (strcmp(p, "qC") == 0) {
                struct out o = {s, 0};

                puts_(&o, "QC");
                put_num(&o, s->stop_thread + 1u, 1);
                send(s, o.len);
        } else if (starts(p, "qAttached")) {
                send_str(s, "1");
        } else if (starts(p, "qRcmd,")) {
                rcmd(s, p + 6, len - 6);
        } else {
                send_str(s, "");
        }
}

/* One whole packet, checksum right, in s->pkt[0..s->len) (NUL-terminated; X data may hold NULs). */
static void packet(struct gdb_stub *s)
{
        const char *p = s->pkt;
        size_t len = s->len;

        s->pkt[len] = '\0';
        switch (len ? p[0] : 0) {
        case '?':
                stop_reply(s);
                break;
        case 'q':
                query(s, p, len);
                break;
        case 'H':
                set_thread(s, p + 1);
                break;
        case 'T':
                thread_alive(s, p + 1);
                break;
        case 'g':
                if (len == 1)
                        read_regs(s);
                else
                        send_str(s, E_INVAL);
                break;
        case 'G':
                write_regs(s, p + 1, len - 1);
                break;
        case 'p':
                read_reg(s, p + 1);
                break;
        case 'P':
                write_reg(s, p + 1, len - 1);
                break;
        case 'm':
                read_mem(s, p + 1);
                break;
        case 'M':
                write_mem(s, p + 1, len - 1, false);
                break;
        case 'X':
                write_mem(s, p + 1, len - 1, true);
                break;
        case 'Z':
        case 'z':
                breakpoint(s, p + 1, p[0] == 'Z');
                break;
        case 'c':
        case 's':
                cont(s, p + 1, p[0] == 's');
                break;
        case 'v':
                if (strcmp(p, "vCont?") == 0)
                        send_str(s, "vCont;c;C;s;S");
                else if (starts(p, "vCont"))
                        vcont(s, p + 5);
                else
                        send_str(s, "");
                break;
        case 'D':
                send_str(s, "OK");
                s->ended = true;
                s->ops->detach(s->ctx);
                break;
        case 'k':
                s->ended = true;
                s->ops->detach(s->ctx);
                break;
        default:
                send_str(s, "");
                break;
        }
}

/* One byte while stopped. */
static void rx_byte(struct gdb_stub *s, uint8_t c)
{
        switch (s->rx) {
        case GDB_RX_IDLE:
                if (c == '$') {
                        s->rx = GDB_RX_DATA;
                        s->len = 0;
                        s->sum = 0;
                        s->overlong = false;
                } else if (c == '-' && s->last_len) {
                        s->ops->write(s->ctx, s->last, s->last_len);
                } else if (c == 0x03) {
                        stop_reply(s); /* already stopped: say so again */
                }
                return; /* '+' and anything else between packets: nothing */
        case GDB_RX_DATA:
        case GDB_RX_ESC:
                if (c == '#' && s->rx == GDB_RX_DATA) {
                        s->rx = GDB_RX_SUM1;
                        return;
                }
                s->sum += c;
                if (c == '}' && s->rx == GDB_RX_DATA) {
                        s->rx = GDB_RX_ESC;
                        return;
                }
                if (s->rx == GDB_RX_ESC)
                        c ^= 0x20;
                s->rx = GDB_RX_DATA;
                if (s->len < GDB_PACKET_MAX)
                        s->pkt[s->len++] = (char)c;
                else
                        s->overlong = true;
                return;
        case GDB_RX_SUM1:
                s->sum_hi = c;
                s->rx = GDB_RX_SUM2;
                return;
        case GDB_RX_SUM2: {
                int hi = hexval((char)s->sum_hi), lo = hexval((char)c);

                s->rx = GDB_RX_IDLE;
                if (hi < 0 || lo < 0 || (uint8_t)(hi << 4 | lo) != s->sum) {
                        s->ops->write(s->ctx, "-", 1);
                        return;
                }
                s->ops->write(s->ctx, "+", 1);
                if (s->overlong)
                        send_str(s, E_INVAL);
                else
                        packet(s);
                return;
        }
        }
}

static void serve(struct gdb_stub *s, const uint8_t *buf, size_t n)
{
        for (size_t i = 0; i < n && !s->ended; i++) {
                if (s->running) { /* a resume in this buffer: keep the rest */
                        gdb_input(s, buf + i, n - i);
                        return;
                }
                rx_byte(s, buf[i]);
        }
}

void gdb_init(struct gdb_stub *s, const struct gdb_ops *ops, void *ctx)
{
        memset(s, 0, sizeof(*s));
        s->ops = ops;
        s->ctx = ctx;
        s->running = true;
        s->stop_signal = SIGTRAP;
}

void gdb_input(struct gdb_stub *s, const uint8_t *buf, size_t n)
{
        if (s->ended)
                return;
        if (!s->running) {
                serve(s, buf, n);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                /* Ctrl-C outside a packet (a packet's data cannot hold a raw 0x03 byte). */
                if (buf[i] == 0x03 && s->rx == GDB_RX_IDLE) {
                        s->ops->interrupt(s->ctx);
                        continue;
                }
                if (s->kept < GDB_INBUF)
                        s->inbuf[s->kept++] = buf[i];
        }
}

void gdb_stopped(struct gdb_stub *s, unsigned t, uint8_t signal, enum gdb_stop why, uint64_t addr)
{
        size_t kept = s->kept;

        if (s->ended || !s->running)
                return;
        s->running = false;
        s->stop_thread = t;
        s->g_thread = t;
        s->stop_signal = signal;
        s->stop_why = why <= GDB_STOP_AWATCH ? why : GDB_STOP_SIGNAL;
        s->stop_addr = addr;
        if (s->want_stop)
                stop_reply(s);
        s->want_stop = false;
        s->kept = 0;
        memcpy(s->held, s->inbuf, kept);
        serve(s, s->held, kept);
}

void gdb_exited(struct gdb_stub *s, uint8_t code)
{
        struct out o = {s, 0};

        if (s->ended)
                return;
        s->ended = true;
        put(&o, "W", 1);
        put_num(&o, code, 2);
        send(s, o.len);
}

/* Bytes of p before its first byte in `stop` or its end (strcspn, which the image lacks). */
static size_t span_to(const char *p, const char *stop)
{
        size_t n = 0;

        while (p[n] && !strchr(stop, p[n]))
                n++;
        return n;
}

struct xml_out {
        char *buf;
        size_t cap, len;
};

static void xml_put(struct xml_out *o, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(o->len < o->cap ? o->buf + o->len : NULL,
                      o->len < o->cap ? o->cap - o->len : 0, fmt, ap);
        va_end(ap);
        if (n > 0)
                o->len += (size_t)n;
}

/* The <reg> elements of the names in [p, end), with the attributes "BITS[,TYPE[,GROUP]]". */
static void xml_regs(struct xml_out *o, const char *p, const char *end, const char *attr,
                     size_t attr_len)
{
        struct {
                const char *s;
                int n;
        } f[3];

        for (unsigned i = 0; i < 3; i++) {
                size_t n = 0;

                while (n < attr_len && attr[n] != ',')
                        n++;
                f[i].s = attr;
                f[i].n = (int)n;
                n += n < attr_len;
                attr += n;
                attr_len -= n;
        }
        while (p < end) {
                size_t n = span_to(p, " :");
                const char *dash = NULL, *num;
                unsigned lo = 0, hi = 0;

                for (size_t k = 0; k < n; k++)
                        if (p[k] == '-')
                                dash = p + k;
                num = dash ? dash : p + n;
                if (dash) {
                        while (num > p && num[-1] >= '0' && num[-1] <= '9')
                                num--;
                        for (const char *d = num; d < dash; d++)
                                lo = lo * 10 + (unsigned)(*d - '0');
                        for (const char *d = dash + 1; d < p + n; d++)
                                hi = hi * 10 + (unsigned)(*d - '0');
                }
                /* %.*u: no digits for a name without a range (precision 0, value 0). */
                for (unsigned i = lo; i <= hi; i++)
                        xml_put(o, "<reg name=\"%.*s%.*u\" bitsize=\"%.*s\"%s%.*s%s%s%.*s%s/>",
                                (int)(num - p), p, dash ? 1 : 0, i, f[0].n, f[0].s,
                                f[1].n ? " type=\"" : "", f[1].n, f[1].s, f[1].n ? "\"" : "",
                                f[2].n ? " group=\"" : "", f[2].n, f[2].s, f[2].n ? "\"" : "");
                p += n;
                while (p < end && *p == ' ')
                        p++;
        }
}

size_t gdb_xml_expand(char *buf, size_t cap, const char *spec)
{
        struct xml_out o = {buf, cap, 0};
        const char *p = spec;

        if (cap)
                buf[0] = '\0';
        while (*p) {
                size_t n = span_to(p, "[{");
                const char *names = NULL; /* first name still waiting for its attributes */
                char open;

                xml_put(&o, "%.*s", (int)n, p);
                p += n;
                open = *p;
                if (!*p++)
                        break;
                while (*p && *p != ']' && *p != '}') {
                        if (*p == ' ') {
                                p++;
                                continue;
                        }
                        if (!names)
                                names = p;
                        p += span_to(p, " :]}");
                        if (*p == ':') {
                                size_t a = span_to(++p, " ]}");

                                if (open == '{') /* a flag field: NAME:BIT */
                                        xml_put(
                                            &o,
                                            "<field name=\"%.*s\" start=\"%.*s\" end=\"%.*s\"/>",
                                            (int)(p - 1 - names), names, (int)a, p, (int)a, p);
                                else
                                        xml_regs(&o, names, p - 1, p, a);
                                names = NULL;
                                p += a;
                        }
                }
                p += *p == ']' || *p == '}';
        }
        return o.len;
}
