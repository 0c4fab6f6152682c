/*
 * libFuzzer target for the x86 interrupt controller models: the local APICs
 * (arch/x86_64/vlapic.c) and the I/O APIC (arch/x86_64/vioapic.c) of one VM, wired as the SVM
 * backend wires them (I/O APIC deliveries to the LAPICs whose destination matches, EOIs of
 * level vectors back to the I/O APIC, IPIs through vlapic_ipi_deliver), under a fake TSC that
 * only the input advances.
 *
 * Input: byte 0: bits 0-1 the number of vCPUs - 1 (1..4 LAPICs), bit 2: the APs wait for
 * SIPI; then operations, each a byte (bits 0-3 the kind, bits 4-5 the vCPU) and its operands:
 *   0 LAPIC write: register byte (offset = byte * 16 in the page), le32 value
 *   1 LAPIC read: register byte
 *   2 LAPIC raw access: le16 offset (in the page), size byte (1, 2, 4, 8), le32 value (writes)
 *   3 time: le32 delta (<< (vCPU bits * 8)), then every LAPIC's timers are updated
 *   4 the vCPU takes its highest deliverable interrupt (vlapic_pending + vlapic_accept)
 *   5 vlapic_set_irq: vector byte, level byte
 *   6 I/O APIC IOREGSEL write: byte;  7 IOWIN write: le32;  8 IOWIN read
 *   9 I/O APIC input pin: byte (pin % 24, bit 7 = level)
 *  10 IA32_TSC_DEADLINE write: le32 delta from now (0: disarm); 11 read
 *  12 CR8 write: byte;  13 I/O APIC raw access: offset byte, size byte, le32 value
 * Invariants (abort on violation):
 *   - ID and version read their constants; every register reads the same twice in a row;
 *     writing back what a register reads leaves it reading the same (the write masks are
 *     idempotent); an access that is not 32-bit and aligned reads 0 (LAPIC) and is counted;
 *   - vectors 0-15 are never in IRR, ISR or TMR; PPR is max(TPR, the highest in-service
 *     class); vlapic_pending is -1 or a vector in IRR whose class is above PPR and no higher
 *     IRR vector is deliverable; accepting moves it from IRR to ISR;
 *   - a disabled LAPIC has no deliverable vector and all its LVTs masked;
 *   - after the timers are updated at `now`, the next deadline is later than `now`;
 *     the current count never exceeds the initial count;
 *   - the I/O APIC delivers only vectors of unmasked entries in fixed or lowest-priority mode,
 *     its entries never show delivery status busy, remote IRR only on level entries, and its
 *     version register reads its constant;
 *   - an IPI's wake mask names only LAPICs that exist, and only LAPICs waiting for SIPI are
 *     started.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arch/vioapic.h>
#include <arch/vlapic.h>

#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_CPUS 4

struct machine {
        uint64_t now;
        unsigned n;
        struct vlapic lapic[MAX_CPUS];
        struct vlapic *all[MAX_CPUS];
        struct vioapic io;
};

static struct machine m;

static bool bit(const uint32_t *v, unsigned vec)
{
        return v[vec / 32] >> (vec % 32) & 1;
}

static uint64_t m_now(void *ctx)
{
        return ((struct machine *)ctx)->now;
}

static void m_eoi(void *ctx, uint8_t vector)
{
        vioapic_eoi(&((struct machine *)ctx)->io, vector);
}

static void m_send_ipi(void *ctx, struct vlapic *src)
{
        struct machine *mm = ctx;
        bool waiting[MAX_CPUS];
        uint64_t started = 0, woken;

        for (unsigned i = 0; i < mm->n; i++)
                waiting[i] = mm->lapic[i].wait_sipi;
        woken = vlapic_ipi_deliver(src, mm->all, mm->n, &started);
        if (woken >> mm->n || started >> mm->n)
                abort();
        for (unsigned i = 0; i < mm->n; i++)
                if ((started >> i & 1) && (!waiting[i] || mm->lapic[i].wait_sipi))
                        abort();
}

static bool m_deliver(void *ctx, uint8_t dest, bool logical, uint8_t vector, bool level,
                      bool lowest)
{
        struct machine *mm = ctx;
        bool found = false, taken = false;

        /* Only a vector of an unmasked entry in fixed or lowest-priority mode is sent. */
        for (unsigned p = 0; p < VIOAPIC_PINS; p++) {
                uint64_t e = mm->io.rte[p];
                unsigned mode = (e >> 8) & 7;

                if ((e & 0xff) == vector && !(e & VIOAPIC_RTE_MASKED) && mode <= 1 &&
                    (mode == 1) == lowest && !!(e & VIOAPIC_RTE_LEVEL) == level)
                        found = true;
        }
        if (!found)
                abort();
        for (unsigned i = 0; i < mm->n && !(lowest && taken); i++)
                if (vlapic_match_dest(&mm->lapic[i], dest, logical) &&
                    vlapic_set_irq(&mm->lapic[i], vector, level))
                        taken = true;
        return taken;
}

static uint32_t lapic_rd(struct vlapic *l, uint32_t off)
{
        uint64_t v = 0xdeadbeefdeadbeefull;

        vlapic_mmio_ops.read(l, off, 4, &v);
        if (v >> 32)
                abort();
        return (uint32_t)v;
}

static void lapic_wr(struct vlapic *l, uint32_t off, uint32_t v)
{
        vlapic_mmio_ops.write(l, off, 4, v);
}

static int highest(const uint32_t *v)
{
        for (int i = 7; i >= 0; i--)
                if (v[i])
                        return i * 32 + 31 - __builtin_clz(v[i]);
        return -1;
}

static void check_lapic(struct vlapic *l)
{
        int isrv = highest(l->isr), v = vlapic_pending(l);
        uint32_t tpr = vlapic_tpr(l), ppr = vlapic_ppr(l);
        uint32_t expect_ppr =
            (tpr >> 4) >= (uint32_t)(isrv < 0 ? 0 : isrv >> 4) ? tpr : (uint32_t)isrv & 0xf0;

        if ((l->irr[0] & 0xffff) || (l->isr[0] & 0xffff) || (l->tmr[0] & 0xffff))
                abort();
        if (ppr != expect_ppr || lapic_rd(l, VLAPIC_REG_PPR) != ppr)
                abort();
        if (lapic_rd(l, VLAPIC_REG_ID) != (uint32_t)l->id << 24 ||
            lapic_rd(l, VLAPIC_REG_VER) != VLAPIC_VERSION)
                abort();
        if (!(l->svr & VLAPIC_SVR_ENABLE)) {
                if (v != -1)
                        abort();
                for (unsigned i = 0; i < VLAPIC_LVT_COUNT; i++)
                        if (!(l->lvt[i] & VLAPIC_LVT_MASKED))
                                abort();
        } else {
                int top = highest(l->irr);

                /* The highest IRR vector is the one to deliver, if its class beats PPR. */
                if (top >= 0 && (uint32_t)(top & 0xf0) > (ppr & 0xf0) ? v != top : v != -1)
                        abort();
        }
        if (lapic_rd(l, VLAPIC_REG_TMCCT) > lapic_rd(l, VLAPIC_REG_TMICT))
                abort();
}

static void check_ioapic(struct vioapic *io)
{
        for (unsigned p = 0; p < VIOAPIC_PINS; p++) {
                uint64_t e = io->rte[p];

                if ((e & VIOAPIC_RTE_DELIVS) ||
                    ((e & VIOAPIC_RTE_REMOTE_IRR) && !(e & VIOAPIC_RTE_LEVEL)))
                        abort();
                if (vioapic_read_reg(io, VIOAPIC_REG_REDIR + 2 * p) != (uint32_t)e)
                        abort();
        }
        if (vioapic_read_reg(io, VIOAPIC_REG_VER) != VIOAPIC_VERSION)
                abort();
}

/* A register reads the same twice, and writing back what it reads changes nothing visible. */
static void check_register(struct vlapic *l, uint32_t off)
{
        uint32_t a = lapic_rd(l, off), b = lapic_rd(l, off);

        if (a != b)
                abort();
        switch (off) {
        case VLAPIC_REG_TPR:
        case VLAPIC_REG_LDR:
        case VLAPIC_REG_DFR:
        case VLAPIC_REG_SVR:
        case VLAPIC_REG_CMCI:
        case VLAPIC_REG_THERM:
        case VLAPIC_REG_PERF:
        case VLAPIC_REG_LINT0:
        case VLAPIC_REG_LINT1:
        case VLAPIC_REG_ERROR:
        case VLAPIC_REG_TDCR:
        case VLAPIC_REG_ICR_HI:
                lapic_wr(l, off, a);
                if (lapic_rd(l, off) != a)
                        abort();
                break;
        default:
                break;
        }
}

static void op(struct in *in, uint8_t kind)
{
        struct vlapic *l = &m.lapic[(kind >> 4 & 3) % m.n];
        uint8_t b[2];
        uint16_t off16;
        uint32_t v32;
        uint64_t v64;

        switch (kind & 15) {
        case 0:
                if (take(in, b, 1) && take(in, &v32, 4)) {
                        lapic_wr(l, (uint32_t)b[0] << 4, v32);
                        check_register(l, (uint32_t)b[0] << 4);
                }
                break;
        case 1:
                if (take(in, b, 1))
                        check_register(l, (uint32_t)b[0] << 4);
                break;
        case 2:
                if (take(in, &off16, 2) && take(in, b, 1) && take(in, &v32, 4)) {
                        unsigned sz = 1u << (b[0] & 3);
                        uint64_t before = l->stats.bad_access;

                        off16 &= 0xfff;
                        if (b[0] & 4) {
                                vlapic_mmio_ops.write(l, off16, sz, v32);
                        } else {
                                vlapic_mmio_ops.read(l, off16, sz, &v64);
                                if ((sz != 4 || off16 % 4) && v64 != 0)
                                        abort();
                        }
                        if ((sz != 4 || off16 % 4) && l->stats.bad_access != before + 1)
                                abort();
                }
                break;
        case 3:
                if (take(in, &v32, 4)) {
                        m.now += (uint64_t)v32 << (8 * (kind >> 4 & 3));
                        for (unsigned i = 0; i < m.n; i++) {
                                vlapic_timer_update(&m.lapic[i], m.now);
                                if (vlapic_next_deadline(&m.lapic[i]) <= m.now)
                                        abort();
                        }
                }
                break;
        case 4: {
                int vec = vlapic_pending(l);

                if (vec >= 0) {
                        vlapic_accept(l, (uint8_t)vec);
                        if (!bit(l->isr, (unsigned)vec))
                                abort();
                }
                break;
        }
        case 5:
                if (take(in, b, 2))
                        vlapic_set_irq(l, b[0], b[1] & 1);
                break;
        case 6:
                if (take(in, b, 1))
                        vioapic_mmio_ops.write(&m.io, VIOAPIC_IOREGSEL, 4, b[0]);
                break;
        case 7:
                if (take(in, &v32, 4))
                        vioapic_mmio_ops.write(&m.io, VIOAPIC_IOWIN, 4, v32);
                break;
        case 8:
                vioapic_mmio_ops.read(&m.io, VIOAPIC_IOWIN, 4, &v64);
                if (v64 >> 32)
                        abort();
                break;
        case 9:
                if (take(in, b, 1))
                        vioapic_set_level(&m.io, b[0] % VIOAPIC_PINS, b[0] >> 7);
                break;
        case 10:
                if (take(in, &v32, 4))
                        vlapic_tsc_deadline_write(l, v32 ? m.now + v32 : 0);
                break;
        case 11:
                v64 = vlapic_tsc_deadline_read(l);
                if (v64 != vlapic_tsc_deadline_read(l))
                        abort();
                break;
        case 12:
                if (take(in, b, 1)) {
                        vlapic_set_tpr(l, b[0]);
                        if (vlapic_tpr(l) != b[0])
                                abort();
                }
                break;
        case 13:
                if (take(in, b, 2) && take(in, &v32, 4)) {
                        unsigned sz = 1u << (b[1] & 3);

                        if (b[1] & 4)
                                vioapic_mmio_ops.write(&m.io, b[0] & 0x1f, sz, v32);
                        else
                                vioapic_mmio_ops.read(&m.io, b[0] & 0x1f, sz, &v64);
                }
                break;
        default:
                break;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct in in = {data, size};
        struct vlapic_env env = {.now = m_now, .eoi_vector = m_eoi, .send_ipi = m_send_ipi};
        struct vioapic_cb cb = {.deliver = m_deliver, .ctx = &m};
        uint8_t sel, kind;

        if (!take(&in, &sel, 1))
                return 0;
        memset(&m, 0, sizeof(m));
        m.now = 1000;
        m.n = (sel & 3) + 1u;
        env.ctx = &m;
        vioapic_init(&m.io, &cb);
        for (unsigned i = 0; i < m.n; i++) {
                vlapic_init(&m.lapic[i], i, &env);
                m.lapic[i].wait_sipi = i > 0 && (sel & 4);
                m.all[i] = &m.lapic[i];
        }
        while (take(&in, &kind, 1)) {
                op(&in, kind);
                for (unsigned i = 0; i < m.n; i++)
                        check_lapic(&m.lapic[i]);
                check_ioapic(&m.io);
        }
        return 0;
}
