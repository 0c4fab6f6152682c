/*
 * hostile_virtio (booted as a Linux kernel: mklinux.py, `kernel =`, with a `disk`, so it has
 * Keel's virtio-mmio block and console devices; docs/virtio.md): a small driver that does
 * everything wrong, one check at a time, and prints one line per check with what the device
 * did: "refused" (a register write left the register as it was), "needs reset" (the device
 * set DEVICE_NEEDS_RESET and raised a config-change interrupt), "ignored" (nothing used, no
 * reset), or "completed <status>" (a used element with the request's status byte).
 *   1. the status/feature handshake in wrong orders and with wrong features;
 *   2. queue registers at the wrong time or with wrong values: QueueNum 0, > QueueNumMax, not
 *      a power of two; rings outside RAM, straddling its end, wrapping 2^64, misaligned, on
 *      devices, overlapping each other;
 *   3. notifications for queues that do not exist, are not ready, before DRIVER_OK, after a
 *      reset with a request in flight;
 *   4. descriptor chains that loop, are longer than the queue, name descriptors outside the
 *      table, buffers outside RAM or wrapping 2^64; avail->idx far ahead; indirect tables
 *      without the feature, nested, looping, outside RAM, empty, too long;
 *   5. block requests with sectors outside the disk, huge or odd lengths, the header or the
 *      status in a descriptor of the wrong direction, unknown types; the console's queues
 *      with buffers in the wrong direction;
 *   6. one notification of 128 requests is served in two pieces: the used-buffer
 *      interrupt of the first piece is taken before the notifying store completes (Keel has
 *      the store executed again until the ring is drained, so the vCPU stays interruptible
 *      and the host CPU schedulable however long another vCPU keeps the ring full);
 *   7. (x86, `vcpus = 2`) vCPU 1 rewrites descriptors, ring entries and avail->idx at random
 *      while vCPU 0 notifies; afterwards a good request still works.
 * After each violation the device is reset and set up again; a last good request must work.
 * Exit 0 if every check gave the expected outcome, else 1.
 */
#include "guest.h"

#ifdef __x86_64__
#include "smp_x86.h"
#define VIRTIO_BASE  0xd0000000ull
#define FOREIGN_MMIO 0xfee00000ull /* the LAPIC */
static inline uint32_t mmio_r32(uint64_t a)
{
        return *(volatile uint32_t *)(uintptr_t)a;
}
static inline void mmio_w32(uint64_t a, uint32_t v)
{
        *(volatile uint32_t *)(uintptr_t)a = v;
}
#else
#include "exc.h"
#define VIRTIO_BASE  0x0a000000ull
#define FOREIGN_MMIO GICD /* the GIC distributor */
static inline uint32_t mmio_r32(uint64_t a)
{
        return mmio_read32(a);
}
static inline void mmio_w32(uint64_t a, uint32_t v)
{
        mmio_write32(a, v);
}
#endif
#define VIRTIO_SLOT 0x1000ull

/* Registers (virtio 1.2, 4.2.2). */
#define R_MAGIC      0x000
#define R_DEVICE_ID  0x008
#define R_DEV_FEAT   0x010
#define R_DEV_FSEL   0x014
#define R_DRV_FEAT   0x020
#define R_DRV_FSEL   0x024
#define R_QSEL       0x030
#define R_QNUM_MAX   0x034
#define R_QNUM       0x038
#define R_QREADY     0x044
#define R_NOTIFY     0x050
#define R_INT_STATUS 0x060
#define R_INT_ACK    0x064
#define R_STATUS     0x070
#define R_DESC_LO    0x080
#define R_DESC_HI    0x084
#define R_AVAIL_LO   0x090
#define R_AVAIL_HI   0x094
#define R_USED_LO    0x0a0
#define R_USED_HI    0x0a4
#define R_CONFIG     0x100

#define S_ACK   1u
#define S_DRV   2u
#define S_DOK   4u
#define S_FOK   8u
#define S_NR    64u
#define S_FAIL  128u
#define S_SETUP (S_ACK | S_DRV | S_FOK)

#define F_INDIRECT (1ull << 28)
#define F_VERSION1 (1ull << 32)

#define D_NEXT     1
#define D_WRITE    2
#define D_INDIRECT 4

#define T_IN     0
#define T_OUT    1
#define T_FLUSH  4
#define T_GET_ID 8

/* What the device did with a request (outcome()); 0..255: completed with that status. */
#define O_RESET   0x100
#define O_IGNORED 0x200

#define QN 16 /* the queue size used (the block device offers 128) */

struct vdesc {
        uint64_t addr;
        uint32_t len;
        uint16_t flags, next;
};

struct vavail {
        uint16_t flags, idx, ring[QN], used_event;
};

struct vused {
        uint16_t flags, idx;
        struct {
                uint32_t id, len;
        } ring[QN];
        uint16_t avail_event;
};

struct blk_hdr {
        uint32_t type, reserved;
        uint64_t sector;
};

/* The descriptor table has a page of its own: a request reads a sector into it. */
static volatile union {
        struct vdesc d[QN];
        uint8_t page[4096];
} desc_page __attribute__((aligned(4096)));
#define desc (desc_page.d)
static volatile struct vdesc itab[2 * QN] __attribute__((aligned(16)));
static volatile struct vdesc itab2[4] __attribute__((aligned(16)));
static volatile struct vavail avail __attribute__((aligned(4096)));
static volatile struct vused used __attribute__((aligned(4096)));
static volatile uint8_t overlap[4096] __attribute__((aligned(4096)));
static volatile struct blk_hdr hdr __attribute__((aligned(16)));
static volatile uint8_t bstatus[64] __attribute__((aligned(64)));
static volatile uint8_t data[4096] __attribute__((aligned(4096)));
static volatile uint8_t flood[8192] __attribute__((aligned(4096))); /* 128 lines of 64 bytes */

static uint64_t blk, con; /* the devices' register windows */
static uint64_t vbase;    /* the one being driven */
static uint16_t last_used;
static uint64_t capacity;
static unsigned failed, checks;

static uint32_t vr(unsigned off)
{
        return mmio_r32(vbase + off);
}

static void vw(unsigned off, uint32_t v)
{
        __atomic_thread_fence(__ATOMIC_SEQ_CST); /* ring writes before the device looks */
        mmio_w32(vbase + off, v);
}

static const char *outcome_name(int o, char *buf, size_t n)
{
        static const char *const st[] = {"OK", "IOERR", "UNSUPP"};

        if (o == O_RESET)
                return "needs reset";
        if (o == O_IGNORED)
                return "ignored";
        if (o < 3)
                guest_snprintf(buf, n, "completed %s", st[o]);
        else
                guest_snprintf(buf, n, "completed status %d", o);
        return buf;
}

static void expect(const char *what, int got, int want)
{
        char a[32], b[32];

        checks++;
        if (got == want) {
                guest_printf("hostile_virtio: %s: %s\n", what, outcome_name(got, a, sizeof(a)));
                return;
        }
        failed++;
        guest_printf("FAIL: hostile_virtio: %s: %s, expected %s\n", what,
                     outcome_name(got, a, sizeof(a)), outcome_name(want, b, sizeof(b)));
}

/* A register check: `ok` means the device refused (or accepted, per `what`) as it should. */
static void expect_reg(const char *what, const char *result, uint64_t got, uint64_t want)
{
        checks++;
        if (got == want) {
                guest_printf("hostile_virtio: %s: %s\n", what, result);
                return;
        }
        failed++;
        guest_printf("FAIL: hostile_virtio: %s: read 0x%lx, expected 0x%lx\n", what,
                     (unsigned long)got, (unsigned long)want);
}

static void clear_rings(void)
{
        memset((void *)desc, 0, sizeof(desc));
        memset((void *)&avail, 0, sizeof(avail));
        memset((void *)&used, 0, sizeof(used));
        last_used = 0;
}

static void write_features(uint64_t f)
{
        vw(R_DRV_FSEL, 0);
        vw(R_DRV_FEAT, (uint32_t)f);
        vw(R_DRV_FSEL, 1);
        vw(R_DRV_FEAT, (uint32_t)(f >> 32));
}

/* Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK: whether FEATURES_OK was kept. */
static bool negotiate(uint64_t f)
{
        vw(R_STATUS, 0);
        vw(R_STATUS, S_ACK);
        vw(R_STATUS, S_ACK | S_DRV);
        write_features(f);
        vw(R_STATUS, S_SETUP);
        return vr(R_STATUS) == S_SETUP;
}

static void queue_regs(unsigned q, uint32_t n, uint64_t d, uint64_t a, uint64_t u)
{
        vw(R_QSEL, q);
        vw(R_QNUM, n);
        vw(R_DESC_LO, (uint32_t)d);
        vw(R_DESC_HI, (uint32_t)(d >> 32));
        vw(R_AVAIL_LO, (uint32_t)a);
        vw(R_AVAIL_HI, (uint32_t)(a >> 32));
        vw(R_USED_LO, (uint32_t)u);
        vw(R_USED_HI, (uint32_t)(u >> 32));
}

/* The whole good set-up of queue q of device `dev` with `f`; false (and FAIL) if refused. */
static bool start(uint64_t dev, unsigned q, uint64_t f)
{
        vbase = dev;
        clear_rings();
        if (!negotiate(f))
                goto bad;
        queue_regs(q, QN, gpa_of(desc), gpa_of(&avail), gpa_of(&used));
        vw(R_QREADY, 1);
        if (vr(R_QREADY) != 1)
                goto bad;
        vw(R_STATUS, S_SETUP | S_DOK);
        if (vr(R_STATUS) != (S_SETUP | S_DOK))
                goto bad;
        return true;
bad:
        failed++;
        checks++;
        guest_printf("FAIL: hostile_virtio: a good set-up was refused (status 0x%x)\n",
                     vr(R_STATUS));
        return false;
}

static void put_desc(volatile struct vdesc *t, unsigned i, uint64_t addr, uint32_t len,
                     uint16_t flags, uint16_t next)
{
        t[i].addr = addr;
        t[i].len = len;
        t[i].flags = flags;
        t[i].next = next;
}

/* Offer chain `head` and notify queue q. */
static void submit(unsigned q, uint16_t head)
{
        avail.ring[avail.idx % QN] = head;
        avail.idx = (uint16_t)(avail.idx + 1);
        vw(R_NOTIFY, q);
}

/* What the device did since the last look: a used element, NEEDS_RESET, or nothing. */
static int outcome(volatile uint8_t *st)
{
        if (used.idx != last_used) {
                last_used = used.idx;
                return st ? *st : 0;
        }
        if (vr(R_STATUS) & S_NR) {
                if (!(vr(R_INT_STATUS) & 2)) {
                        failed++;
                        guest_printf("FAIL: hostile_virtio: NEEDS_RESET without a config-change "
                                     "interrupt\n");
                }
                vw(R_INT_ACK, 3);
                return O_RESET;
        }
        return O_IGNORED;
}

/* A block request: header, optional data (device-writable for T_IN), status byte. */
static int blk_req(uint32_t type, uint64_t sector, uint64_t buf, uint32_t len)
{
        unsigned n = 0;

        hdr.type = type;
        hdr.reserved = 0;
        hdr.sector = sector;
        bstatus[0] = 0xee;
        put_desc(desc, n, gpa_of(&hdr), sizeof(hdr), D_NEXT, (uint16_t)(n + 1));
        n++;
        if (len || buf) {
                put_desc(desc, n, buf, len, (type == T_OUT ? 0 : D_WRITE) | D_NEXT,
                         (uint16_t)(n + 1));
                n++;
        }
        put_desc(desc, n, gpa_of(bstatus), 1, D_WRITE, 0);
        submit(0, 0);
        return outcome(bstatus);
}

/* ---- 1. The handshake ---- */

static void handshake(void)
{
        vbase = blk;
        vw(R_STATUS, 0);
        vw(R_STATUS, S_DOK);
        expect_reg("DRIVER_OK written after reset", "refused", vr(R_STATUS), 0);
        vw(R_STATUS, S_ACK);
        vw(R_STATUS, S_ACK | S_FOK);
        expect_reg("FEATURES_OK before DRIVER", "refused", vr(R_STATUS), S_ACK);
        vw(R_STATUS, S_ACK | S_DRV);
        vw(R_STATUS, S_ACK | S_DRV | S_DOK);
        expect_reg("DRIVER_OK before FEATURES_OK", "refused", vr(R_STATUS), S_ACK | S_DRV);
        vw(R_STATUS, S_DRV);
        expect_reg("ACKNOWLEDGE cleared", "refused", vr(R_STATUS), S_ACK | S_DRV);
        vw(R_STATUS, S_ACK | S_DRV | 0x30);
        expect_reg("unknown status bits 0x30", "refused", vr(R_STATUS), S_ACK | S_DRV);
        vw(R_STATUS, 0x1003);
        expect_reg("status value above 0xff", "refused", vr(R_STATUS), S_ACK | S_DRV);
        vw(R_QSEL, 0);
        vw(R_QREADY, 1);
        expect_reg("QueueReady before FEATURES_OK", "refused", vr(R_QREADY), 0);

        expect_reg("FEATURES_OK with a feature not offered (bit 0)", "not kept",
                   negotiate(F_VERSION1 | 1), false);
        expect_reg("FEATURES_OK without VERSION_1", "not kept", negotiate(0), false);
        vw(R_STATUS, 0);
        vw(R_STATUS, S_ACK);
        vw(R_STATUS, S_ACK | S_DRV);
        write_features(F_VERSION1);
        vw(R_DRV_FSEL, 2);
        vw(R_DRV_FEAT, 1);
        vw(R_STATUS, S_SETUP);
        expect_reg("FEATURES_OK with a bit in feature window 2", "not kept", vr(R_STATUS),
                   S_ACK | S_DRV);
        vw(R_STATUS, 0);
        vw(R_STATUS, S_ACK);
        write_features(F_VERSION1); /* before DRIVER: ignored, so VERSION_1 is missing */
        vw(R_STATUS, S_ACK | S_DRV);
        vw(R_STATUS, S_SETUP);
        expect_reg("DriverFeatures written before DRIVER", "ignored (FEATURES_OK not kept)",
                   vr(R_STATUS), S_ACK | S_DRV);
        vw(R_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
        expect_reg("FEATURES_OK and DRIVER_OK in one write", "refused", vr(R_STATUS),
                   S_ACK | S_DRV);

        /* Features written after FEATURES_OK: INDIRECT_DESC stays off. */
        if (start(blk, 0, F_VERSION1)) {
                write_features(F_VERSION1 | F_INDIRECT);
                put_desc(itab, 0, gpa_of(&hdr), sizeof(hdr), D_NEXT, 1);
                put_desc(itab, 1, gpa_of(bstatus), 1, D_WRITE, 0);
                hdr.type = T_FLUSH;
                put_desc(desc, 0, gpa_of(itab), 32, D_INDIRECT, 0);
                submit(0, 0);
                expect("INDIRECT_DESC accepted after FEATURES_OK, then used", outcome(bstatus),
                       O_RESET);
        }
        /* FAILED: the device stops until reset. */
        if (start(blk, 0, F_VERSION1)) {
                vw(R_STATUS, S_SETUP | S_DOK | S_FAIL);
                vw(R_STATUS, S_SETUP | S_DOK);
                expect_reg("status write after the driver gave up (bit 128)", "refused",
                           vr(R_STATUS), S_SETUP | S_DOK | S_FAIL);
                expect("request after the driver gave up", blk_req(T_FLUSH, 0, 0, 0), O_IGNORED);
        }
}

/* ---- 2. Queue registers ---- */

/* Set queue 0 up with rings at d, a, u (after FEATURES_OK): whether QueueReady reads 1. */
static bool try_rings(uint32_t n, uint64_t d, uint64_t a, uint64_t u)
{
        vbase = blk;
        clear_rings();
        negotiate(F_VERSION1);
        queue_regs(0, n, d, a, u);
        vw(R_QREADY, 1);
        return vr(R_QREADY) == 1;
}

static void queue_registers(void)
{
        uint64_t d = gpa_of(desc), a = gpa_of(&avail), u = gpa_of(&used);
        uint64_t end = guest_ram_end();
        static const uint32_t bad_num[] = {0, 3, 24, 256, 0x10000, 0xffffffffu};
        char what[96];

        vbase = blk;
        negotiate(F_VERSION1);
        vw(R_QSEL, 0);
        expect_reg("QueueNumMax of the block queue", "128", vr(R_QNUM_MAX), 128);
        vw(R_QNUM, QN);
        for (unsigned i = 0; i < ARRAY_SIZE(bad_num); i++) {
                vw(R_QNUM, bad_num[i]);
                guest_snprintf(what, sizeof(what), "QueueNum %u", bad_num[i]);
                expect_reg(what, "refused", vr(R_QNUM), QN);
        }
        vw(R_QSEL, 1);
        expect_reg("QueueNumMax of a queue that does not exist", "0", vr(R_QNUM_MAX), 0);
        vw(R_QNUM, 4);
        vw(R_QREADY, 1);
        expect_reg("QueueReady of a queue that does not exist", "refused", vr(R_QREADY), 0);
        vw(R_QSEL, 0xffffffffu);
        vw(R_QREADY, 1);
        expect_reg("QueueReady of queue 0xffffffff", "refused", vr(R_QREADY), 0);

        static const struct {
                const char *what;
                uint32_t n;
                uint64_t d, a, u;
        } bad[] = {
            {"descriptor table at RAM end", QN, 0, 0, 0},
            {"descriptor table straddling RAM end", QN, 1, 0, 0},
            {"descriptor table wrapping 2^64", QN, 2, 0, 0},
            {"descriptor table at 2^40", QN, 3, 0, 0},
            {"descriptor table misaligned (+8)", QN, 4, 0, 0},
            {"driver ring at RAM end", QN, 0, 1, 0},
            {"driver ring straddling RAM end", QN, 0, 2, 0},
            {"driver ring odd", QN, 0, 3, 0},
            {"device ring at RAM end", QN, 0, 0, 1},
            {"device ring straddling RAM end", QN, 0, 0, 2},
            {"device ring misaligned (+2)", QN, 0, 0, 3},
            {"device ring wrapping 2^64", QN, 0, 0, 4},
            {"rings on the device's own registers", QN, 5, 5, 5},
            {"rings on another device (interrupt controller)", QN, 6, 6, 6},
            {"128 entries with the table 1 KiB before RAM end", 128, 7, 0, 0},
        };
        for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
                uint64_t dd = d, aa = a, uu = u;
                switch (bad[i].d) {
                case 1:
                        dd = end - 16 * QN / 2;
                        break;
                case 2:
                        dd = 0xfffffffffffffff0ull;
                        break;
                case 3:
                        dd = 1ull << 40;
                        break;
                case 4:
                        dd = d + 8;
                        break;
                case 5:
                        dd = blk;
                        break;
                case 6:
                        dd = FOREIGN_MMIO;
                        break;
                case 7:
                        dd = end - 1024;
                        break;
                default:
                        if (bad[i].d == 0 && (bad[i].a | bad[i].u) == 0)
                                dd = end;
                        break;
                }
                switch (bad[i].a) {
                case 1:
                        aa = end;
                        break;
                case 2:
                        aa = end - 4;
                        break;
                case 3:
                        aa = a + 1;
                        break;
                case 5:
                        aa = blk;
                        break;
                case 6:
                        aa = FOREIGN_MMIO;
                        break;
                }
                switch (bad[i].u) {
                case 1:
                        uu = end;
                        break;
                case 2:
                        uu = end - 8;
                        break;
                case 3:
                        uu = u + 2;
                        break;
                case 4:
                        uu = 0xfffffffffffffffcull;
                        break;
                case 5:
                        uu = blk;
                        break;
                case 6:
                        uu = FOREIGN_MMIO;
                        break;
                }
                expect_reg(bad[i].what, "QueueReady refused", try_rings(bad[i].n, dd, aa, uu),
                           false);
        }
        if (guest_ram_base >= 0x100000) {
                expect_reg("rings below RAM", "QueueReady refused",
                           try_rings(QN, guest_ram_base - 0x10000, a, u), false);
        }

        /* A ready queue's registers, and the queue registers after DRIVER_OK. */
        expect_reg("good rings", "QueueReady accepted", try_rings(QN, d, a, u), true);
        vw(R_QNUM, 4);
        vw(R_DESC_LO, (uint32_t)(end - 16));
        vw(R_USED_HI, 1);
        expect_reg("QueueNum written while the queue is ready", "refused", vr(R_QNUM), QN);
        expect_reg("QueueDesc written while the queue is ready", "refused", vr(R_DESC_LO),
                   (uint32_t)d);
        expect_reg("QueueDeviceHigh written while the queue is ready", "refused", vr(R_USED_HI),
                   (uint32_t)(u >> 32));
        vw(R_QREADY, 2);
        expect_reg("QueueReady 2", "ignored", vr(R_QREADY), 1);
        vw(R_STATUS, S_SETUP | S_DOK);
        vw(R_QREADY, 0);
        vw(R_QNUM, 8);
        expect_reg("QueueReady 0 after DRIVER_OK", "refused", vr(R_QREADY), 1);
        expect_reg("QueueNum after DRIVER_OK", "refused", vr(R_QNUM), QN);
        expect("a request after those writes", blk_req(T_FLUSH, 0, 0, 0), 0);

        /* Overlapping rings: all three on one page; avail->idx 1 and ring[0] 0 make
         * descriptor 0 {addr 0x10000, len 0}: a chain without the block header. */
        uint64_t o = gpa_of(overlap);
        memset((void *)overlap, 0, sizeof(overlap));
        if (try_rings(QN, o, o, o)) {
                vw(R_STATUS, S_SETUP | S_DOK);
                last_used = 0;
                *(volatile uint16_t *)(overlap + 2) = 1;
                vw(R_NOTIFY, 0);
                int got = vr(R_STATUS) & S_NR ? O_RESET : O_IGNORED;
                vw(R_INT_ACK, 3);
                expect("descriptor table, driver and device ring on one page", got, O_RESET);
        } else {
                expect_reg("overlapping rings", "QueueReady accepted", 0, 1);
        }
}

/* ---- 3. Notifications ---- */

static void notifications(void)
{
        /* A request posted before DRIVER_OK: nothing until DRIVER_OK, then served. */
        vbase = blk;
        clear_rings();
        negotiate(F_VERSION1);
        queue_regs(0, QN, gpa_of(desc), gpa_of(&avail), gpa_of(&used));
        vw(R_QREADY, 1);
        hdr.type = T_FLUSH;
        put_desc(desc, 0, gpa_of(&hdr), sizeof(hdr), D_NEXT, 1);
        put_desc(desc, 1, gpa_of(bstatus), 1, D_WRITE, 0);
        bstatus[0] = 0xee;
        submit(0, 0);
        expect("notify before DRIVER_OK", outcome(bstatus), O_IGNORED);
        vw(R_STATUS, S_SETUP | S_DOK);
        vw(R_NOTIFY, 0);
        expect("the same request after DRIVER_OK", outcome(bstatus), 0);

        /* Queues that do not exist. */
        static const uint32_t none[] = {1, 2, 7, 0x10000, 0xffffffffu};
        char what[64];
        hdr.type = T_FLUSH;
        avail.ring[avail.idx % QN] = 0;
        avail.idx = (uint16_t)(avail.idx + 1);
        for (unsigned i = 0; i < ARRAY_SIZE(none); i++) {
                vw(R_NOTIFY, none[i]);
                guest_snprintf(what, sizeof(what), "notify of queue %u (none)", none[i]);
                expect(what, outcome(bstatus), O_IGNORED);
        }
        vw(R_NOTIFY, 0);
        expect("queue 0 notified after them", outcome(bstatus), 0);

        /* Reset with a request in flight, then a notify: nothing. */
        hdr.type = T_FLUSH;
        avail.ring[avail.idx % QN] = 0;
        avail.idx = (uint16_t)(avail.idx + 1);
        vw(R_STATUS, 0);
        vw(R_NOTIFY, 0);
        expect("notify after a reset with a request posted", outcome(bstatus), O_IGNORED);

        /* A queue that was never made ready (its rings were refused). */
        clear_rings();
        negotiate(F_VERSION1);
        queue_regs(0, QN, guest_ram_end(), gpa_of(&avail), gpa_of(&used));
        vw(R_QREADY, 1);
        vw(R_STATUS, S_SETUP | S_DOK);
        vw(R_NOTIFY, 0);
        expect("notify of a queue that is not ready", outcome(NULL), O_IGNORED);

        /* The console's receive queue, never set up; its transmit queue with a writable buffer. */
        if (start(con, 1, F_VERSION1)) {
                vw(R_NOTIFY, 0);
                expect("console: notify of the receive queue (not ready)", outcome(NULL),
                       O_IGNORED);
                static const char msg[] = "hostile_virtio: through virtio-console\n";
                memcpy((void *)data, msg, sizeof(msg) - 1);
                put_desc(desc, 0, gpa_of(data), sizeof(msg) - 1, 0, 0);
                submit(1, 0);
                expect("console: transmit", outcome(NULL), 0);
                put_desc(desc, 0, gpa_of(data), 16, D_WRITE, 0);
                submit(1, 0);
                expect("console: device-writable buffer on the transmit queue", outcome(NULL),
                       O_RESET);
                uint16_t before = used.idx;
                put_desc(desc, 0, gpa_of(data), 16, 0, 0);
                submit(1, 0);
                expect_reg("console: a good buffer on the broken queue", "not used", used.idx,
                           before);
        }
        /* 128 KiB in one transmit chain (16 x 8 KiB): Keel's console gets the first 64 KiB. */
        if (start(con, 1, F_VERSION1)) {
                static const char line[] = "hostile_virtio: flood ";
                for (unsigned i = 0; i < sizeof(flood); i++)
                        flood[i] = i % 64 == 63                ? '\n'
                                   : i % 64 < sizeof(line) - 1 ? (uint8_t)line[i % 64]
                                                               : 'x';
                for (unsigned i = 0; i < QN; i++)
                        put_desc(desc, i, gpa_of(flood), sizeof(flood), i + 1 < QN ? D_NEXT : 0,
                                 (uint16_t)(i + 1));
                submit(1, 0);
                expect("console: 128 KiB in one transmit chain", outcome(NULL), 0);
        }
        if (start(con, 1, F_VERSION1)) {
                put_desc(desc, 0, guest_ram_end() - 8, 16, 0, 0);
                submit(1, 0);
                expect("console: transmit buffer straddling RAM end", outcome(NULL), O_RESET);
        }
}

/* ---- 4. Chains ---- */

/* A fresh device (features f) with a chain whose descriptors the caller wrote: outcome. */
static int chain(uint64_t f, void (*build)(void))
{
        if (!start(blk, 0, f))
                return -1;
        hdr.type = T_IN;
        hdr.sector = 0;
        bstatus[0] = 0xee;
        build();
        submit(0, 0);
        return outcome(bstatus);
}

/* The good request shapes, in the main table and in an indirect one. */
static void good_chain(volatile struct vdesc *t)
{
        put_desc(t, 0, gpa_of(&hdr), sizeof(hdr), D_NEXT, 1);
        put_desc(t, 1, gpa_of(data), 512, D_WRITE | D_NEXT, 2);
        put_desc(t, 2, gpa_of(bstatus), 1, D_WRITE, 0);
}

static void good_chain_main(void)
{
        good_chain(desc);
}
static void b_loop2(void)
{
        good_chain(desc);
        desc[1].next = 0;
}
static void b_loop1(void)
{
        good_chain(desc);
        put_desc(desc, 0, gpa_of(&hdr), sizeof(hdr), D_NEXT, 0);
}
static void b_next_oob(void)
{
        good_chain(desc);
        desc[1].next = QN;
}
static void b_next_huge(void)
{
        good_chain(desc);
        desc[1].next = 0xffff;
}
static void b_long(void) /* QN + 1 descriptors: the whole table, then back to its start */
{
        put_desc(desc, 0, gpa_of(&hdr), sizeof(hdr), D_NEXT, 1);
        for (unsigned i = 1; i < QN; i++)
                put_desc(desc, i, gpa_of(data), 8, D_WRITE | D_NEXT, (uint16_t)((i + 1) % QN));
}
static void b_head_oob(void) /* chains() posts head QN itself */
{
        good_chain(desc);
}
static void b_buf_end(void)
{
        good_chain(desc);
        desc[1].addr = guest_ram_end();
}
static void b_buf_straddle(void)
{
        good_chain(desc);
        desc[1].addr = guest_ram_end() - 256;
}
static void b_buf_wrap(void)
{
        good_chain(desc);
        desc[1].addr = 0xfffffffffffff000ull;
        desc[1].len = 0x2000;
}
static void b_buf_device(void)
{
        good_chain(desc);
        desc[1].addr = blk;
}
static void b_buf_huge(void)
{
        good_chain(desc);
        desc[1].addr = guest_ram_base;
        desc[1].len = 0xfffffe00u;
}
static void b_zero_len_outside(void) /* a 0-byte buffer is never touched: not checked */
{
        good_chain(desc);
        desc[1].addr = 0xfffffffffffff000ull;
        desc[1].len = 0;
}
static void b_hdr_write(void)
{
        good_chain(desc);
        desc[0].flags |= D_WRITE;
}
static void b_status_read(void)
{
        good_chain(desc);
        desc[2].flags = 0;
        desc[1].flags = D_NEXT; /* all readable: no writable part at all */
}
static void b_read_after_write(void)
{
        good_chain(desc);
        desc[1].flags = D_WRITE | D_NEXT;
        desc[2].flags = 0; /* a readable descriptor after a writable one */
}
static void b_in_readable_data(void)
{
        good_chain(desc);
        desc[1].flags = D_NEXT;
}
static void b_out_writable_data(void)
{
        good_chain(desc);
        hdr.type = T_OUT;
}
static void b_short_hdr(void)
{
        good_chain(desc);
        desc[0].len = 8;
}
static void b_no_status(void)
{
        put_desc(desc, 0, gpa_of(&hdr), sizeof(hdr), 0, 0);
}
static void b_indirect(void)
{
        good_chain(itab);
        put_desc(desc, 0, gpa_of(itab), 48, D_INDIRECT, 0);
}
static void b_ind_nested(void)
{
        good_chain(itab2);
        put_desc(itab, 0, gpa_of(itab2), 48, D_INDIRECT, 0);
        put_desc(desc, 0, gpa_of(itab), 16, D_INDIRECT, 0);
}
static void b_ind_loop(void)
{
        good_chain(itab);
        itab[2].flags = D_WRITE | D_NEXT;
        itab[2].next = 0;
        put_desc(desc, 0, gpa_of(itab), 48, D_INDIRECT, 0);
}
static void b_ind_outside(void)
{
        put_desc(desc, 0, guest_ram_end(), 48, D_INDIRECT, 0);
}
static void b_ind_straddle(void)
{
        put_desc(desc, 0, guest_ram_end() - 32, 48, D_INDIRECT, 0);
}
static void b_ind_wrap(void)
{
        put_desc(desc, 0, 0xfffffffffffffff0ull, 48, D_INDIRECT, 0);
}
static void b_ind_zero(void)
{
        good_chain(itab);
        put_desc(desc, 0, gpa_of(itab), 0, D_INDIRECT, 0);
}
static void b_ind_odd_len(void)
{
        good_chain(itab);
        put_desc(desc, 0, gpa_of(itab), 40, D_INDIRECT, 0);
}
static void b_ind_too_long(void)
{
        for (unsigned i = 0; i < 2 * QN; i++)
                put_desc(itab, i, gpa_of(data), 8, D_WRITE | D_NEXT, (uint16_t)(i + 1));
        put_desc(itab, 0, gpa_of(&hdr), sizeof(hdr), D_NEXT, 1);
        put_desc(desc, 0, gpa_of(itab), 16 * (QN + 1), D_INDIRECT, 0);
}
static void b_ind_next(void)
{
        good_chain(itab);
        put_desc(desc, 0, gpa_of(itab), 48, D_INDIRECT | D_NEXT, 1);
        put_desc(desc, 1, gpa_of(bstatus), 1, D_WRITE, 0);
}
static void b_ind_after(void)
{
        good_chain(itab);
        put_desc(desc, 0, gpa_of(&hdr), sizeof(hdr), D_NEXT, 1);
        put_desc(desc, 1, gpa_of(itab), 48, D_INDIRECT, 0);
}
static void b_ind_next_oob(void)
{
        good_chain(itab);
        itab[1].next = 3;
        put_desc(desc, 0, gpa_of(itab), 48, D_INDIRECT, 0);
}

static void chains(void)
{
        static const struct {
                const char *what;
                uint64_t f;
                void (*build)(void);
                int want;
        } c[] = {
            {"good request (1 sector)", F_VERSION1, good_chain_main, 0},
            {"chain 0 -> 1 -> 0", F_VERSION1, b_loop2, O_RESET},
            {"descriptor naming itself as next", F_VERSION1, b_loop1, O_RESET},
            {"next = queue size", F_VERSION1, b_next_oob, O_RESET},
            {"next = 0xffff", F_VERSION1, b_next_huge, O_RESET},
            {"chain through the whole table and around", F_VERSION1, b_long, O_RESET},
            {"head index = queue size", F_VERSION1, b_head_oob, O_RESET},
            {"buffer at RAM end", F_VERSION1, b_buf_end, O_RESET},
            {"buffer straddling RAM end", F_VERSION1, b_buf_straddle, O_RESET},
            {"buffer wrapping 2^64", F_VERSION1, b_buf_wrap, O_RESET},
            {"buffer on the device's registers", F_VERSION1, b_buf_device, O_RESET},
            {"buffer of 4 GiB - 512 from RAM start", F_VERSION1, b_buf_huge, O_RESET},
            {"zero-length buffer outside RAM", F_VERSION1, b_zero_len_outside, 0},
            {"header device-writable", F_VERSION1, b_hdr_write, O_RESET},
            {"status byte device-readable", F_VERSION1, b_status_read, O_RESET},
            {"readable descriptor after a writable one", F_VERSION1, b_read_after_write, O_RESET},
            {"read with device-readable data", F_VERSION1, b_in_readable_data, O_RESET},
            {"write with device-writable data", F_VERSION1, b_out_writable_data, O_RESET},
            {"8-byte header", F_VERSION1, b_short_hdr, O_RESET},
            {"no status byte", F_VERSION1, b_no_status, O_RESET},
            {"indirect table, feature not negotiated", F_VERSION1, b_indirect, O_RESET},
            {"good indirect request", F_VERSION1 | F_INDIRECT, b_indirect, 0},
            {"nested indirect table", F_VERSION1 | F_INDIRECT, b_ind_nested, O_RESET},
            {"indirect chain 0 -> 1 -> 2 -> 0", F_VERSION1 | F_INDIRECT, b_ind_loop, O_RESET},
            {"indirect table at RAM end", F_VERSION1 | F_INDIRECT, b_ind_outside, O_RESET},
            {"indirect table straddling RAM end", F_VERSION1 | F_INDIRECT, b_ind_straddle, O_RESET},
            {"indirect table wrapping 2^64", F_VERSION1 | F_INDIRECT, b_ind_wrap, O_RESET},
            {"indirect table of length 0", F_VERSION1 | F_INDIRECT, b_ind_zero, O_RESET},
            {"indirect table of length 40", F_VERSION1 | F_INDIRECT, b_ind_odd_len, O_RESET},
            {"indirect table of queue size + 1 entries", F_VERSION1 | F_INDIRECT, b_ind_too_long,
             O_RESET},
            {"indirect descriptor with NEXT", F_VERSION1 | F_INDIRECT, b_ind_next, O_RESET},
            {"indirect descriptor after a direct one", F_VERSION1 | F_INDIRECT, b_ind_after,
             O_RESET},
            {"indirect next beyond its table", F_VERSION1 | F_INDIRECT, b_ind_next_oob, O_RESET},
        };
        char what[96];

        for (unsigned i = 0; i < ARRAY_SIZE(c); i++) {
                int got;
                if (c[i].build == b_head_oob) {
                        if (!start(blk, 0, c[i].f))
                                continue;
                        good_chain(desc);
                        avail.ring[avail.idx % QN] = QN;
                        avail.idx = (uint16_t)(avail.idx + 1);
                        vw(R_NOTIFY, 0);
                        got = outcome(bstatus);
                } else {
                        got = chain(c[i].f, c[i].build);
                }
                guest_snprintf(what, sizeof(what), "chain: %s", c[i].what);
                expect(what, got, c[i].want);
        }

        /* avail->idx far ahead, and behind. */
        static const uint16_t jumps[] = {QN + 1, 1000, 0xffff};
        for (unsigned i = 0; i < ARRAY_SIZE(jumps); i++) {
                if (!start(blk, 0, F_VERSION1))
                        continue;
                good_chain(desc);
                avail.idx = jumps[i];
                vw(R_NOTIFY, 0);
                guest_snprintf(what, sizeof(what), "avail->idx moved by %u at once", jumps[i]);
                expect(what, outcome(bstatus), O_RESET);
        }
        /* Exactly QN at once is allowed: QN requests served. */
        if (start(blk, 0, F_VERSION1)) {
                good_chain(desc);
                for (unsigned i = 0; i < QN; i++)
                        avail.ring[i] = 0;
                avail.idx = QN;
                vw(R_NOTIFY, 0);
                expect_reg("avail->idx moved by the queue size at once", "all served", used.idx,
                           QN);
        }
}

/* ---- 5. Block requests ---- */

static void block_requests(void)
{
        if (!start(blk, 0, F_VERSION1))
                return;
        vbase = blk;
        capacity = vr(R_CONFIG) | (uint64_t)vr(R_CONFIG + 4) << 32;
        guest_printf("hostile_virtio: disk of %lu sectors\n", (unsigned long)capacity);
        for (unsigned i = 0; i < 512; i++)
                data[i] = (uint8_t)(i * 7 + 3);
        expect("write of sector 1", blk_req(T_OUT, 1, gpa_of(data), 512), 0);
        memset((void *)data, 0, 512);
        expect("read of sector 1", blk_req(T_IN, 1, gpa_of(data), 512), 0);
        unsigned bad = 0;
        for (unsigned i = 0; i < 512; i++)
                bad += data[i] != (uint8_t)(i * 7 + 3);
        expect_reg("sector 1 read back", "as written", bad, 0);
        expect("GET_ID", blk_req(T_GET_ID, 0, gpa_of(data), 20), 0);
        expect_reg("GET_ID serial", "keel-virtio-0", memcmp((void *)data, "keel-virtio-0", 14), 0);
        expect("FLUSH", blk_req(T_FLUSH, 0, 0, 0), 0);
        expect("read of the last sector", blk_req(T_IN, capacity - 1, gpa_of(data), 512), 0);
        expect("read at the capacity", blk_req(T_IN, capacity, gpa_of(data), 512), 1);
        expect("read of 2 sectors from the last", blk_req(T_IN, capacity - 1, gpa_of(data), 1024),
               1);
        expect("read at sector 2^64 - 1", blk_req(T_IN, ~0ull, gpa_of(data), 512), 1);
        expect("read at sector 2^55 (byte offset overflows)",
               blk_req(T_IN, 1ull << 55, gpa_of(data), 512), 1);
        expect("write at sector 2^64 - 1", blk_req(T_OUT, ~0ull, gpa_of(data), 512), 1);
        expect("read of 100 bytes", blk_req(T_IN, 0, gpa_of(data), 100), 1);
        expect("read of 0 bytes", blk_req(T_IN, 0, gpa_of(data), 0), 0);
        /* Longer than the disk, inside RAM: the guest's image and what follows. */
        uint64_t big = (capacity + 8) * 512;
        if (big < guest_ram_size - 0x200000)
                expect("read longer than the disk",
                       blk_req(T_IN, 0, guest_ram_base + 0x200000, (uint32_t)big), 1);
        expect("unknown request type 99", blk_req(99, 0, 0, 0), 2);
        expect("unknown request type 0xffffffff", blk_req(0xffffffffu, 0, gpa_of(data), 512), 2);
        /* Data into the descriptor table the request came from (the chain was read first). */
        expect("read into its own descriptor table", blk_req(T_IN, 1, gpa_of(desc), 512), 0);
        clear_rings();
        /* The device still works after all of that. */
        if (start(blk, 0, F_VERSION1))
                expect("a good request at the end", blk_req(T_IN, 1, gpa_of(data), 512), 0);
}

/* ---- 6: a notification served in pieces; 7 (x86): two vCPUs ---- */

/*
 * The race's own rings and buffers: every address vCPU 1 writes into a descriptor is inside
 * this area (reaching at most 64 KiB further, still inside it) or outside RAM, so whatever
 * the device writes for a random request lands here and not on the guest's code or tables.
 */
#define RACE_BYTES 0x40000
static volatile uint8_t race[RACE_BYTES] __attribute__((aligned(4096)));
#define RDESC      ((volatile struct vdesc *)(race))
#define RAVAIL     ((volatile struct vavail *)(race + 0x1000))
#define RUSED      ((volatile struct vused *)(race + 0x2000))
#define RITAB      ((volatile struct vdesc *)(race + 0x3000))
#define RBUF       (race + 0x4000)
#define RUSED_ADDR gpa_of(race + 0x2000)

#ifdef __x86_64__
#define RACE_ROUNDS 3000u

static volatile uint64_t ap_stage, bsp_go, ap_scribbles;

static void wait_for(volatile uint64_t *v, uint64_t want)
{
        for (uint64_t i = 0; *v < want; i++)
                if (i > 4000000000ull) {
                        guest_printf("FAIL: hostile_virtio: waited for stage %lu for ever\n",
                                     (unsigned long)want);
                        guest_exit(1);
                }
}

static uint64_t xorshift(uint64_t x)
{
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return x;
}

void ap_main(void);
void ap_main(void)
{
        uint64_t x = 0x9e3779b97f4a7c15ull;

        smp_ap_tables();
        lapic_write(LAPIC_SVR, 0x1ff);
        irq_eoi[1] = 1;
        ap_stage = 1;
        /* 7: rewrite descriptors, ring entries and avail->idx at random. */
        wait_for(&bsp_go, 1);
        while (bsp_go == 1) {
                static const uint32_t lens[] = {0,    1,       16,          512,
                                                4096, 0x10000, 0x80000000u, 0xffffffffu};
                const uint64_t addrs[] = {
                    gpa_of(RBUF),  gpa_of(RBUF + 0x7000), gpa_of(RBUF + 0x1f000), gpa_of(RDESC),
                    gpa_of(RITAB), guest_ram_end() - 8,   0xfffffffffffff000ull,  blk};
                x = xorshift(x);
                unsigned i = (unsigned)(x % QN);
                RDESC[i].addr = addrs[(x >> 8) & 7];
                RDESC[i].len = lens[(x >> 11) & 7];
                RDESC[i].flags = (uint16_t)((x >> 14) & 7);
                RDESC[i].next = (uint16_t)((x >> 17) % (QN + 2));
                RITAB[(x >> 24) % (2 * QN)] = RDESC[i];
                RAVAIL->ring[(x >> 32) % QN] = (uint16_t)((x >> 36) % (QN + 1));
                *(volatile uint32_t *)RBUF = (uint32_t)((x >> 40) % 10); /* a header's type */
                *(volatile uint64_t *)(RBUF + 8) = (x >> 44) & 1 ? (x >> 45) : (x >> 45) % 128;
                if (((x >> 50) & 3) == 0)
                        RAVAIL->idx = (uint16_t)(RAVAIL->idx + ((x >> 52) & 3));
                if (((x >> 54) & 0x3ff) == 0)
                        RAVAIL->idx = (uint16_t)(x >> 56);
                ap_scribbles++;
        }
        ap_stage = 2;
        ap_stage = 3;
        for (;;)
                __asm__ volatile("cli; hlt");
}

static void two_vcpus(void)
{
        uint64_t rounds = 0, resets = 0, completed = 0;

        smp_start_ap(ap_main);
        wait_for(&ap_stage, 1);
        guest_printf("hostile_virtio: vCPU 1 started\n");

        vbase = blk;
        negotiate(F_VERSION1 | F_INDIRECT);
        queue_regs(0, QN, gpa_of(RDESC), gpa_of(RAVAIL), gpa_of(RUSED));
        vw(R_QREADY, 1);
        vw(R_STATUS, S_SETUP | S_DOK);
        bsp_go = 1;
        for (; rounds < RACE_ROUNDS; rounds++) {
                uint16_t before = RUSED->idx;
                vw(R_NOTIFY, 0);
                if (RUSED->idx != before)
                        completed++;
                if (vr(R_STATUS) & S_NR) {
                        resets++;
                        vw(R_INT_ACK, 3);
                        negotiate(F_VERSION1 | F_INDIRECT);
                        queue_regs(0, QN, gpa_of(RDESC), gpa_of(RAVAIL), gpa_of(RUSED));
                        RAVAIL->idx = 0;
                        vw(R_QREADY, 1);
                        vw(R_STATUS, S_SETUP | S_DOK);
                }
        }
        bsp_go = 2;
        wait_for(&ap_stage, 2);
        guest_printf("hostile_virtio: %lu notifications while vCPU 1 rewrote the rings %lu "
                     "times: %lu with used elements, %lu times NEEDS_RESET\n",
                     (unsigned long)rounds, (unsigned long)ap_scribbles, (unsigned long)completed,
                     (unsigned long)resets);
        if (start(blk, 0, F_VERSION1))
                expect("a good request after the race", blk_req(T_IN, 1, gpa_of(data), 512), 0);
}

#endif

/*
 * 6. One notification of 128 requests (a full block queue) is served in two pieces of
 * VIRTIO_NOTIFY_BUDGET (64): the used-buffer interrupt of the first piece is taken before
 * the notifying store completes, with 64 requests used (x86: I/O APIC pin 5, edge; arm64:
 * SPI 16, INTID 48, level, the handler acknowledges it at the device).
 */
static volatile unsigned used_at_irq;

static void virtio_irq_seen(void)
{
        if (used_at_irq == 0xffff)
                used_at_irq = *(volatile uint16_t *)(RUSED_ADDR + 2);
}

#ifdef __x86_64__
#define VEC_VIRTIO 0x62

static void on_virtio_irq(unsigned cpu, unsigned vector)
{
        if (cpu == 0 && vector == VEC_VIRTIO)
                virtio_irq_seen();
}

static void virtio_irq_on(void)
{
        ioapic_write(0x11 + 2 * 5, 0);          /* to APIC ID 0 */
        ioapic_write(0x10 + 2 * 5, VEC_VIRTIO); /* fixed, edge, active high, unmasked */
        irq_hook = on_virtio_irq;
        irq_enable();
}

static void virtio_irq_off(void)
{
        irq_disable();
        irq_hook = 0;
        ioapic_write(0x10 + 2 * 5, 0x10000);
}
#else
#define VIRTIO_INTID 48 /* SPI 16: the first virtio slot */

/* IRQ: acknowledge, note the virtio interrupt (and lower its line), EOI. */
void guest_irq(void)
{
        uint64_t intid = read_sysreg(ICC_IAR1_EL1);

        if (intid >= 1020)
                return;
        if (intid == VIRTIO_INTID) {
                virtio_irq_seen();
                mmio_w32(blk + R_INT_ACK, 3);
        }
        write_sysreg(ICC_EOIR1_EL1, intid);
}

/* No synchronous exception is expected: the runtime's report (vector 4). */
uint64_t guest_sync(uint64_t esr, uint64_t elr, uint64_t far)
{
        guest_exception(4, esr, elr, far);
}

static void virtio_irq_on(void)
{
        exc_install();
        gic_init();
        mmio_w32(GICD + 0x80 + 4 * (VIRTIO_INTID / 32), ~0u);      /* IGROUPR: group 1 */
        mmio_w32(GICD + 0x400 + (VIRTIO_INTID & ~3u), 0xa0a0a0a0); /* IPRIORITYR */
        mmio_w32(GICD + 0x6000 + 8 * VIRTIO_INTID, 0);             /* IROUTER: Aff 0 */
        mmio_w32(GICD + 0x6004 + 8 * VIRTIO_INTID, 0);
        mmio_w32(GICD + 0x100 + 4 * (VIRTIO_INTID / 32), 1u << (VIRTIO_INTID % 32)); /* enable */
        irq_unmask();
}

static void virtio_irq_off(void)
{
        irq_mask();
        mmio_w32(GICD + 0x180 + 4 * (VIRTIO_INTID / 32), 1u << (VIRTIO_INTID % 32)); /* off */
}
#endif

static void notify_in_pieces(void)
{
        volatile uint16_t *ring = (volatile uint16_t *)(race + 0x1000 + 4);

        memset((void *)race, 0, 0x3000);
        vbase = blk;
        negotiate(F_VERSION1);
        queue_regs(0, 128, gpa_of(race), gpa_of(race + 0x1000), RUSED_ADDR);
        vw(R_QREADY, 1);
        vw(R_STATUS, S_SETUP | S_DOK);
        hdr.type = T_FLUSH;
        put_desc((volatile struct vdesc *)race, 0, gpa_of(&hdr), sizeof(hdr), D_NEXT, 1);
        put_desc((volatile struct vdesc *)race, 1, gpa_of(bstatus), 1, D_WRITE, 0);
        for (unsigned i = 0; i < 128; i++)
                ring[i] = 0;
        *(volatile uint16_t *)(race + 0x1000 + 2) = 128;
        used_at_irq = 0xffff;
        virtio_irq_on();
        vw(R_NOTIFY, 0);
        virtio_irq_off();
        vw(R_INT_ACK, 3);
        expect_reg("128 requests in one notification: used when its interrupt came", "64",
                   used_at_irq, 64);
        expect_reg("128 requests in one notification: used when the store completed", "128",
                   *(volatile uint16_t *)(RUSED_ADDR + 2), 128);
}

int64_t guest_main(void)
{
#ifdef __x86_64__
        hx_gdt_init();
        hx_idt_init();
        irq_idt_init();
        if (!irq_linux_entry_ok()) {
                guest_printf("FAIL: hostile_virtio: not entered through the Linux boot path\n");
                return 1;
        }
        lapic_write(LAPIC_SVR, 0x1ff);
        irq_eoi[0] = 1;
#else
        /* Booted as Linux: x0 is the device tree, which Keel puts at the start of the last
         * 2 MiB of RAM (RAM starts at 0x40000000). */
        uint64_t dtb = guest_entry_state.x[0];
        if (mmio_read32(dtb) != 0xedfe0dd0u) {
                guest_printf("FAIL: hostile_virtio: x0 = 0x%lx is not a device tree\n",
                             (unsigned long)dtb);
                return 1;
        }
        guest_ram_base = 0x40000000;
        guest_ram_size = dtb + 0x200000 - guest_ram_base;
#endif
        guest_printf("hostile_virtio: RAM 0x%lx..0x%lx\n", (unsigned long)guest_ram_base,
                     (unsigned long)guest_ram_end());
        blk = VIRTIO_BASE;
        con = VIRTIO_BASE + VIRTIO_SLOT;
        if (mmio_r32(blk + R_MAGIC) != 0x74726976u || mmio_r32(blk + R_DEVICE_ID) != 2 ||
            mmio_r32(con + R_MAGIC) != 0x74726976u || mmio_r32(con + R_DEVICE_ID) != 3) {
                guest_printf("FAIL: hostile_virtio: no virtio-blk at 0x%lx and console after it\n",
                             (unsigned long)blk);
                return 1;
        }
        handshake();
        queue_registers();
        notifications();
        chains();
        block_requests();
        notify_in_pieces();
#ifdef __x86_64__
        two_vcpus();
#endif
        if (failed) {
                guest_printf("hostile_virtio: %u of %u checks failed\n", failed, checks);
                return 1;
        }
        guest_printf("hostile_virtio: all %u checks passed\n", checks);
        return 0;
}
