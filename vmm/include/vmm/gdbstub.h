/*
 * The gdb remote-protocol stub of one debugging session (docs/debugging.md): the packet layer
 * only (framing, checksums, escapes, run-length replies and the packets below), pure and
 * host-tested. It knows the target only through struct gdb_ops; vmm/gdb.c plugs a VM in,
 * whose vCPUs are gdb's threads 1..threads().
 *
 * Packets: qSupported, qXfer:features:read (target.xml), qfThreadInfo / qsThreadInfo, qC,
 * qAttached, qRcmd (`monitor phys`, `monitor virt`, `monitor help`), H, T, g/G, p/P, m/M, X,
 * Z0-Z4 / z0-z4, c, s, vCont (c, s, C, S; signals are ignored), ?, D, k, Ctrl-C (0x03
 * outside a packet); anything else gets the empty reply ("not supported"). A packet that
 * cannot be parsed gets "E22"; one whose checksum is wrong gets '-' (gdb sends it again).
 *
 * While the target runs (after c, s or vCont) the stub answers nothing: it keeps what gdb
 * sends (at most GDB_INBUF bytes; more is dropped) and acts on Ctrl-C at once; gdb_stopped
 * sends the stop reply and then serves what was kept.
 */
#ifndef VMM_GDBSTUB_H
#define VMM_GDBSTUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GDB_PACKET_MAX 4096 /* PacketSize we announce: data bytes of one packet */
#define GDB_INBUF      4096 /* bytes kept while the target runs */
#define GDB_REG_MAX    64   /* bytes of one register */

/* Breakpoint kinds, as the Z packets number them. */
enum gdb_bp {
        GDB_BP_SW = 0,
        GDB_BP_HW = 1,
        GDB_WP_WRITE = 2,
        GDB_WP_READ = 3,
        GDB_WP_ACCESS = 4,
};

/* Why the target stopped, for the stop reply's reason (swbreak, hwbreak, watch, ...). */
enum gdb_stop {
        GDB_STOP_SIGNAL = 0, /* a step, Ctrl-C: no reason field */
        GDB_STOP_SWBREAK,
        GDB_STOP_HWBREAK,
        GDB_STOP_WATCH, /* the data address follows: write watchpoint */
        GDB_STOP_RWATCH,
        GDB_STOP_AWATCH,
};

struct gdb_ops {
        unsigned (*threads)(void *ctx); /* vCPUs: gdb threads 1..threads() */
        /*
         * Register `reg` (gdb's number in the target description) of thread `t` (0-based)
         * into buf in target byte order: its size, 0 if there is no such register.
         */
        size_t (*reg_read)(void *ctx, unsigned t, unsigned reg, uint8_t *buf);
        /* Write register `reg` from its `size` bytes; 0 or -KEEL_E*. */
        int (*reg_write)(void *ctx, unsigned t, unsigned reg, const uint8_t *buf, size_t size);
        /*
         * Guest memory at `addr`: guest-virtual through thread t's page tables, or
         * guest-physical if `phys`. 0 or -KEEL_E* (nothing is partly done).
         */
        int (*mem_read)(void *ctx, unsigned t, uint64_t addr, bool phys, uint8_t *buf, size_t n);
        int (*mem_write)(void *ctx, unsigned t, uint64_t addr, bool phys, const uint8_t *buf,
                         size_t n);
        /* Insert or remove a breakpoint / watchpoint; 0, -KEEL_ENOTSUP (empty reply), -KEEL_E*. */
        int (*bp)(void *ctx, unsigned t, enum gdb_bp type, bool insert, uint64_t addr,
                  uint64_t kind);
        /* Let the target run: every thread, `step` (0-based) single-stepping if >= 0. */
        void (*resume)(void *ctx, int step);
        /* Ctrl-C: stop the target; gdb_stopped follows once it has. */
        void (*interrupt)(void *ctx);
        /* gdb detached (D) or killed (k): undo breakpoints, let the target run, end. */
        void (*detach)(void *ctx);
        /* The target description (target.xml) and its length. */
        const char *(*target_xml)(void *ctx, size_t *len);
        /* Bytes for gdb. */
        void (*write)(void *ctx, const char *s, size_t n);
};

enum gdb_rx {
        GDB_RX_IDLE, /* between packets */
        GDB_RX_DATA, /* after '$' */
        GDB_RX_ESC,  /* after '}' inside a packet */
        GDB_RX_SUM1, /* after '#' */
        GDB_RX_SUM2, /* after the first checksum digit */
};

struct gdb_stub {
        const struct gdb_ops *ops;
        void *ctx;
        bool running;      /* resumed: no replies until gdb_stopped */
        bool want_stop;    /* gdb waits for a stop reply (it sent c, s or vCont) */
        bool ended;        /* detached or killed */
        bool phys;         /* m/M/X address guest-physical (monitor phys) */
        unsigned g_thread; /* H g: thread for registers and memory (0-based) */
        unsigned stop_thread;
        uint8_t stop_signal;
        enum gdb_stop stop_why;
        uint64_t stop_addr; /* a watchpoint's data address */
        enum gdb_rx rx;
        uint8_t sum, sum_hi;
        bool overlong;
        size_t len; /* bytes in pkt */
        char pkt[GDB_PACKET_MAX + 1];
        size_t kept; /* bytes in inbuf (kept while running) */
        uint8_t inbuf[GDB_INBUF];
        uint8_t held[GDB_INBUF];     /* inbuf's bytes being served after a stop */
        uint8_t mem[GDB_PACKET_MAX]; /* guest memory of an m, M or X packet */
        size_t last_len;             /* the last reply, framed, for a '-' */
        char last[2 * GDB_PACKET_MAX + 8];
        char reply[2 * GDB_PACKET_MAX + 8]; /* a reply being built */
};

/*
 * A session on a target that is being stopped (`running`, no stop reply owed): the caller
 * stops it and calls gdb_stopped, which then serves what gdb has sent meanwhile.
 */
void gdb_init(struct gdb_stub *s, const struct gdb_ops *ops, void *ctx);
/* Bytes from gdb. */
void gdb_input(struct gdb_stub *s, const uint8_t *buf, size_t n);
/*
 * The target has stopped: thread `t` (0-based) for `signal` (5 = SIGTRAP for a breakpoint or
 * a step, 2 = SIGINT for Ctrl-C), `why` at one of gdb's breakpoints (software or hardware: its
 * PC is the breakpoint's address) or watchpoints (`addr`: the data address). Sends the stop
 * reply if gdb waits for one.
 */
void gdb_stopped(struct gdb_stub *s, unsigned t, uint8_t signal, enum gdb_stop why, uint64_t addr);
/* The target has ended with exit status `code`: "W" reply, the session ends. */
void gdb_exited(struct gdb_stub *s, uint8_t code);

/*
 * A target description written out from a compact spec (the arch's gdb.c keeps only the
 * spec): the spec is copied as it is except a register list in brackets, "[NAME ...]", and a
 * flag-field list in braces, "{NAME:BIT ...}". In a register list a name may end in a range
 * "N-M" (r8-15: r8 .. r15), and ":BITS[,TYPE[,GROUP]]" after a name gives those attributes to
 * it and to every name since the previous such list, each name becoming
 * <reg name="NAME" bitsize="BITS" type="TYPE" group="GROUP"/> (no type or group attribute when
 * the spec has none); in a field list each NAME:BIT becomes
 * <field name="NAME" start="BIT" end="BIT"/>. Writes at most `cap` bytes to buf,
 * NUL-terminated if cap > 0, and returns the length of the whole text, as snprintf does.
 */
size_t gdb_xml_expand(char *buf, size_t cap, const char *spec);
/* True once gdb has detached or killed the session. */
static inline bool gdb_ended(const struct gdb_stub *s)
{
        return s->ended;
}

#endif
