/*
 * The guest's local APIC, xAPIC mode (arch/x86_64/include/arch/vlapic.h). Follows SDM vol. 3
 * ch. 10 and APM vol. 2 ch. 16; what is and is not modelled is in docs/x86-interrupts.md.
 *
 * Registers not listed in the header are reserved: they read 0, ignore writes and set the
 * ESR's illegal-register-address bit. Read-only registers ignore writes. Everything a guest
 * writes is masked to the bits the architecture defines.
 */
#include <stddef.h>
#include <string.h>

#include <arch/vlapic.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <vmm/snapshot.h>

/* Writable bits. */
#define TPR_MASK       0x000000ffu
#define LDR_MASK       0xff000000u
#define DFR_MASK       0xf0000000u
#define DFR_FIXED      0x0fffffffu /* reads as ones */
#define SVR_MASK       0x000003ffu /* vector, enable, focus checking */
#define ICR_LO_MASK    0x000ccfffu /* vector, mode, dest mode, level, trigger, shorthand */
#define ICR_HI_MASK    0xff000000u
#define TDCR_MASK      0x0000000bu
#define LVT_TIMER_MASK 0x000700ffu /* vector, mask, mode */
#define LVT_LINT_MASK  0x0001a7ffu /* vector, delivery mode, polarity, trigger, mask */
#define LVT_OTHER_MASK 0x000107ffu /* vector, delivery mode, mask */
#define LVT_ERROR_MASK 0x000100ffu /* vector, mask */

#define ICR_VECTOR(v)    ((v)&0xffu)
#define ICR_MODE(v)      (((v) >> 8) & 7u)
#define ICR_LOGICAL      (1u << 11)
#define ICR_SHORTHAND(v) (((v) >> 18) & 3u)

static void vlapic_set_bit(uint32_t *map, uint8_t v)
{
        map[v >> 5] |= 1u << (v & 31);
}

static void vlapic_clear_bit(uint32_t *map, uint8_t v)
{
        map[v >> 5] &= ~(1u << (v & 31));
}

static bool vlapic_test_bit(const uint32_t *map, uint8_t v)
{
        return (map[v >> 5] >> (v & 31)) & 1u;
}

/* Highest set bit of a 256-bit map, or -1. */
static int vlapic_highest(const uint32_t *map)
{
        for (int i = 7; i >= 0; i--)
                if (map[i])
                        return i * 32 + 31 - __builtin_clz(map[i]);
        return -1;
}

static bool vlapic_enabled(const struct vlapic *l)
{
        return (l->svr & VLAPIC_SVR_ENABLE) != 0;
}

static uint64_t vlapic_now(const struct vlapic *l)
{
        return l->env.now(l->env.ctx);
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void vlapic_init(struct vlapic *l, unsigned apic_id, const struct vlapic_env *env)
{
        CHECK(env && env->now);
        CHECK(apic_id <= 0xff);
        memset(l, 0, sizeof(*l));
        l->id = (uint8_t)apic_id;
        l->dfr = 0xffffffffu;
        l->svr = 0xff;
        for (unsigned i = 0; i < VLAPIC_LVT_COUNT; i++)
                l->lvt[i] = VLAPIC_LVT_MASKED;
        l->env = *env;
}

void vlapic_reset(struct vlapic *l)
{
        struct vlapic_env env = l->env;
        struct vlapic_stats stats = l->stats;
        bool wait = l->wait_sipi, nmi = l->nmi_pending, latched = l->nmi_latched;
        bool off = l->global_off;
        uint8_t vector = l->sipi_vector;

        vlapic_init(l, l->id, &env);
        l->stats = stats;
        l->wait_sipi = wait;
        l->sipi_vector = vector;
        l->nmi_pending = nmi;
        l->nmi_latched = latched;
        l->global_off = off;
}

bool vlapic_take_nmi(struct vlapic *l)
{
        bool nmi = l->nmi_pending;

        l->nmi_pending = l->nmi_latched; /* the second one waits for the first's IRET */
        l->nmi_latched = false;
        return nmi;
}

void vlapic_nmi_blocked(struct vlapic *l)
{
        if (l->nmi_latched)
                l->stats.nmi_collapsed++;
        l->nmi_latched = false;
}

/* ---- Errors ---- */

static void vlapic_error(struct vlapic *l, uint32_t bits)
{
        uint32_t lvt = l->lvt[VLAPIC_LVT_ERROR];
        bool fresh = (l->esr_pending & bits) != bits;

        l->esr_pending |= bits;
        /* The error interrupt; an illegal error vector only logs (no recursion). */
        if (fresh && !(lvt & VLAPIC_LVT_MASKED) && vlapic_enabled(l) && (lvt & 0xff) >= 16) {
                vlapic_set_bit(l->irr, (uint8_t)lvt);
                vlapic_clear_bit(l->tmr, (uint8_t)lvt);
        }
}

/* ---- Priorities and acceptance ---- */

uint32_t vlapic_ppr(const struct vlapic *l)
{
        int isrv = vlapic_highest(l->isr);
        uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;

        if ((l->tpr & 0xf0) >= isr_class)
                return l->tpr & 0xff;
        return isr_class;
}

static uint32_t vlapic_apr(const struct vlapic *l)
{
        int isrv = vlapic_highest(l->isr), irrv = vlapic_highest(l->irr);
        uint32_t tpr = l->tpr & 0xf0;
        uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;
        uint32_t irr_class = irrv < 0 ? 0 : (uint32_t)irrv & 0xf0;
        uint32_t m;

        if (tpr >= irr_class && tpr > isr_class)
                return l->tpr & 0xff;
        m = tpr > isr_class ? tpr : isr_class;
        return m > irr_class ? m : irr_class;
}

uint32_t vlapic_tpr(const struct vlapic *l)
{
        return l->tpr;
}

void vlapic_set_tpr(struct vlapic *l, uint32_t tpr)
{
        l->tpr = tpr & TPR_MASK;
}

bool vlapic_set_irq(struct vlapic *l, uint8_t vector, bool level)
{
        if (vector < 16) {
                l->stats.illegal_vector++;
                vlapic_error(l, VLAPIC_ESR_RECV_ILLEGAL);
                return false;
        }
        if (!vlapic_enabled(l) || l->global_off) {
                l->stats.disabled_drop++;
                return false;
        }
        vlapic_set_bit(l->irr, vector);
        if (level)
                vlapic_set_bit(l->tmr, vector);
        else
                vlapic_clear_bit(l->tmr, vector);
        return true;
}

int vlapic_pending(const struct vlapic *l)
{
        int v;

        if (!vlapic_enabled(l))
                return -1;
        v = vlapic_highest(l->irr);
        if (v < 0 || ((uint32_t)v & 0xf0) <= (vlapic_ppr(l) & 0xf0))
                return -1;
        return v;
}

void vlapic_accept(struct vlapic *l, uint8_t vector)
{
        if (!vlapic_test_bit(l->irr, vector)) {
                l->stats.bad_accept++;
                return;
        }
        vlapic_clear_bit(l->irr, vector);
        vlapic_set_bit(l->isr, vector);
}

void vlapic_eoi(struct vlapic *l)
{
        int v = vlapic_highest(l->isr);

        if (v < 0)
                return;
        vlapic_clear_bit(l->isr, (uint8_t)v);
        if (vlapic_test_bit(l->tmr, (uint8_t)v) && l->env.eoi_vector)
                l->env.eoi_vector(l->env.ctx, (uint8_t)v);
}

bool vlapic_pv_eoi_ok(const struct vlapic *l)
{
        int v = vlapic_highest(l->isr);

        return v >= 0 && !vlapic_test_bit(l->tmr, (uint8_t)v) && vlapic_highest(l->irr) < 0;
}

bool vlapic_match_dest(const struct vlapic *l, uint8_t dest, bool logical)
{
        uint8_t ldr = (uint8_t)(l->ldr >> 24);

        if (!logical)
                return dest == 0xff || dest == l->id;
        if ((l->dfr >> 28) == 0xf) /* flat */
                return (dest & ldr) != 0;
        /* cluster: high nibble cluster (0xf = all), low nibble member bits */
        if ((dest >> 4) != 0xf && (dest >> 4) != (ldr >> 4))
                return false;
        return (dest & ldr & 0xf) != 0;
}

/* ---- IPIs ---- */

/* Does the IPI from `src` (shorthand / destination of its ICR) name `dst`? */
static bool vlapic_ipi_names(const struct vlapic *src, const struct vlapic *dst)
{
        switch (ICR_SHORTHAND(src->icr_lo)) {
        case 0:
                return vlapic_match_dest(dst, (uint8_t)(src->icr_hi >> 24),
                                         (src->icr_lo & ICR_LOGICAL) != 0);
        case 1: /* self */
                return dst == src;
        case 2: /* all including self */
                return true;
        default: /* all excluding self */
                return dst != src;
        }
}

/* INIT: the LAPIC's reset state, ID kept, waiting for SIPI again. */
static void vlapic_init_reset(struct vlapic *l)
{
        struct vlapic_env env = l->env;
        struct vlapic_stats stats = l->stats;

        vlapic_init(l, l->id, &env);
        l->stats = stats;
        l->wait_sipi = true;
}

uint64_t vlapic_ipi_deliver(struct vlapic *src, struct vlapic *const all[], unsigned n,
                            uint64_t *started)
{
        uint32_t lo = src->icr_lo;
        uint8_t vector = (uint8_t)ICR_VECTOR(lo);
        uint32_t mode = ICR_MODE(lo);
        uint64_t changed = 0;
        bool named = false, collapsed = false;

        *started = 0;
        CHECK(n <= VLAPIC_MAX_GROUP);
        switch (mode) {
        case VLAPIC_DM_FIXED:
        case VLAPIC_DM_LOWEST:
                if (vector < 16) {
                        src->stats.illegal_vector++;
                        vlapic_error(src, VLAPIC_ESR_SEND_ILLEGAL);
                        return 0;
                }
                break;
        case VLAPIC_DM_INIT:
                /* Level de-assert (trigger level, level 0): only synchronises arbitration IDs. */
                if ((lo & (1u << 15)) && !(lo & (1u << 14)))
                        return 0;
                /* fall through */
        case VLAPIC_DM_STARTUP:
                if (ICR_SHORTHAND(lo) == 1) { /* not to self */
                        src->stats.ipi_dropped++;
                        return 0;
                }
                break;
        case VLAPIC_DM_NMI:
                break;
        default: /* SMI, reserved */
                src->stats.ipi_dropped++;
                return 0;
        }
        for (unsigned i = 0; i < n; i++) {
                struct vlapic *l = all[i];

                if (!vlapic_ipi_names(src, l))
                        continue;
                named = true;
                switch (mode) {
                case VLAPIC_DM_FIXED:
                case VLAPIC_DM_LOWEST:
                        if (l->wait_sipi || !vlapic_set_irq(l, vector, false))
                                continue;
                        changed |= 1ull << i;
                        if (mode == VLAPIC_DM_LOWEST)
                                return changed; /* one of them: the first that accepts */
                        break;
                case VLAPIC_DM_NMI:
                        if (l->wait_sipi || l->global_off)
                                continue;
                        if (l->nmi_pending && l->nmi_latched) {
                                l->stats.nmi_collapsed++;
                                collapsed = true; /* taken, not dropped: no change */
                                continue;
                        }
                        if (l->nmi_pending)
                                l->nmi_latched = true; /* kicked: its CPU decides at entry */
                        l->nmi_pending = true;
                        changed |= 1ull << i;
                        break;
                case VLAPIC_DM_INIT:
                        if (!l->wait_sipi) {
                                l->stats.init_ignored++;
                                continue;
                        }
                        vlapic_init_reset(l);
                        changed |= 1ull << i;
                        break;
                default: /* start-up */
                        if (!l->wait_sipi)
                                continue; /* a second SIPI, or a running vCPU: ignored */
                        l->wait_sipi = false;
                        l->sipi_vector = vector;
                        changed |= 1ull << i;
                        *started |= 1ull << i;
                        break;
                }
        }
        if (!changed && !collapsed && (named || ICR_SHORTHAND(lo) != 3))
                src->stats.ipi_dropped++;
        return changed;
}

static void vlapic_send_ipi(struct vlapic *l)
{
        struct vlapic *const self[1] = {l};
        uint64_t started;

        if (l->env.send_ipi)
                l->env.send_ipi(l->env.ctx, l);
        else
                (void)vlapic_ipi_deliver(l, self, 1, &started);
}

/* ---- Timer ---- */

static unsigned vlapic_timer_shift(const struct vlapic *l)
{
        uint32_t v = ((l->timer_dcr >> 1) & 4u) | (l->timer_dcr & 3u);

        return (v + 1) & 7u; /* 000b -> /2 ... 110b -> /128, 111b -> /1 */
}

static uint32_t vlapic_timer_mode(const struct vlapic *l)
{
        return l->lvt[VLAPIC_LVT_TIMER] & VLAPIC_TIMER_MODE;
}

static bool vlapic_counting(const struct vlapic *l)
{
        uint32_t mode = vlapic_timer_mode(l);

        return l->timer_running && (mode == VLAPIC_TIMER_ONESHOT || mode == VLAPIC_TIMER_PERIODIC);
}

/* Counts elapsed since timer_start, saturated at UINT64_MAX >> shift (never overflows). */
static uint64_t vlapic_elapsed_counts(const struct vlapic *l, uint64_t now)
{
        if (now <= l->timer_start)
                return 0;
        return (now - l->timer_start) >> vlapic_timer_shift(l);
}

/* Counts consumed within the current period (one-shot: since load, capped at icr). */
static uint32_t vlapic_timer_consumed(const struct vlapic *l, uint64_t now)
{
        uint64_t e = vlapic_elapsed_counts(l, now);
        uint64_t icr = l->timer_icr;

        if (vlapic_timer_mode(l) == VLAPIC_TIMER_PERIODIC)
                return (uint32_t)(((e % icr) + l->timer_offset) % icr);
        if (e >= icr - l->timer_offset)
                return l->timer_icr;
        return (uint32_t)(e + l->timer_offset);
}

static uint32_t vlapic_current_count(const struct vlapic *l, uint64_t now)
{
        if (!vlapic_counting(l))
                return 0;
        return l->timer_icr - vlapic_timer_consumed(l, now);
}

/* Start counting at `now` with `consumed` counts of the period already gone. */
static void vlapic_timer_start(struct vlapic *l, uint64_t now, uint32_t consumed)
{
        uint64_t left = (uint64_t)(l->timer_icr - consumed) << vlapic_timer_shift(l);

        l->timer_running = true;
        l->timer_start = now;
        l->timer_offset = consumed;
        l->timer_next = sat_add(now, left);
}

static void vlapic_timer_fire(struct vlapic *l)
{
        uint32_t lvt = l->lvt[VLAPIC_LVT_TIMER];

        if (!(lvt & VLAPIC_LVT_MASKED))
                vlapic_set_irq(l, (uint8_t)lvt, false);
}

void vlapic_timer_update(struct vlapic *l, uint64_t now)
{
        uint32_t mode = vlapic_timer_mode(l);

        if (mode == VLAPIC_TIMER_DEADLINE) {
                if (l->tsc_deadline && now >= l->tsc_deadline) {
                        l->tsc_deadline = 0;
                        vlapic_timer_fire(l);
                }
                return;
        }
        /* A saturated expiry lies beyond the TSC's range: never. */
        if (!vlapic_counting(l) || now < l->timer_next || l->timer_next == UINT64_MAX)
                return;
        if (mode == VLAPIC_TIMER_PERIODIC) {
                uint64_t period = (uint64_t)l->timer_icr << vlapic_timer_shift(l);
                uint64_t missed;

                if (period < l->env.min_period)
                        period = l->env.min_period;
                missed = (now - l->timer_next) / period + 1;

                /* Expiries missed while Keel was not looking coalesce into one interrupt. */
                if (missed > (UINT64_MAX - l->timer_next) / period)
                        l->timer_next = UINT64_MAX;
                else
                        l->timer_next += missed * period;
        } else {
                l->timer_running = false;
        }
        vlapic_timer_fire(l);
}

uint64_t vlapic_next_deadline(const struct vlapic *l)
{
        if (l->lvt[VLAPIC_LVT_TIMER] & VLAPIC_LVT_MASKED)
                return UINT64_MAX;
        if (vlapic_timer_mode(l) == VLAPIC_TIMER_DEADLINE)
                return l->tsc_deadline ? l->tsc_deadline : UINT64_MAX;
        return vlapic_counting(l) ? l->timer_next : UINT64_MAX;
}

static void vlapic_timer_disarm(struct vlapic *l)
{
        l->timer_running = false;
        l->timer_icr = 0;
        l->tsc_deadline = 0;
}

static void vlapic_write_lvt_timer(struct vlapic *l, uint32_t value, uint64_t now)
{
        uint32_t old_mode = vlapic_timer_mode(l);
        uint32_t new_mode = value & VLAPIC_TIMER_MODE;
        bool count_modes =
            (old_mode == VLAPIC_TIMER_ONESHOT || old_mode == VLAPIC_TIMER_PERIODIC) &&
            (new_mode == VLAPIC_TIMER_ONESHOT || new_mode == VLAPIC_TIMER_PERIODIC);

        uint32_t consumed = 0;

        /* Expiries before the write happen under the old setting (e.g. masked: lost). */
        vlapic_timer_update(l, now);
        if (vlapic_counting(l))
                consumed = vlapic_timer_consumed(l, now);
        if (old_mode != new_mode && !count_modes) {
                /* Into or out of TSC-deadline (or the reserved mode 11b): disarmed. */
                vlapic_timer_disarm(l);
        }
        l->lvt[VLAPIC_LVT_TIMER] = value;
        if (old_mode == VLAPIC_TIMER_PERIODIC && new_mode == VLAPIC_TIMER_ONESHOT &&
            vlapic_counting(l)) {
                /* The count in progress ends the one-shot. */
                vlapic_timer_start(l, now, consumed);
        }
}

static void vlapic_write_tmict(struct vlapic *l, uint32_t value, uint64_t now)
{
        uint32_t mode = vlapic_timer_mode(l);

        if (mode != VLAPIC_TIMER_ONESHOT && mode != VLAPIC_TIMER_PERIODIC)
                return; /* ignored in TSC-deadline (and reserved) mode */
        l->timer_icr = value;
        l->timer_running = false;
        if (value)
                vlapic_timer_start(l, now, 0);
}

static void vlapic_write_tdcr(struct vlapic *l, uint32_t value, uint64_t now)
{
        uint32_t consumed = 0;
        bool counting;

        vlapic_timer_update(l, now);
        counting = vlapic_counting(l);
        if (counting)
                consumed = vlapic_timer_consumed(l, now);
        l->timer_dcr = value & TDCR_MASK;
        /* The remaining count continues at the new rate. */
        if (counting)
                vlapic_timer_start(l, now, consumed % l->timer_icr);
}

uint64_t vlapic_tsc_deadline_read(struct vlapic *l)
{
        if (vlapic_timer_mode(l) != VLAPIC_TIMER_DEADLINE)
                return 0;
        vlapic_timer_update(l, vlapic_now(l));
        return l->tsc_deadline;
}

void vlapic_tsc_deadline_write(struct vlapic *l, uint64_t value)
{
        if (vlapic_timer_mode(l) != VLAPIC_TIMER_DEADLINE)
                return;
        l->tsc_deadline = value;
        if (value)
                vlapic_timer_update(l, vlapic_now(l));
}

/* ---- Registers ---- */

static int vlapic_lvt_index(uint32_t offset)
{
        if (offset == VLAPIC_REG_CMCI)
                return VLAPIC_LVT_CMCI;
        if (offset >= VLAPIC_REG_TIMER && offset <= VLAPIC_REG_ERROR)
                return VLAPIC_LVT_TIMER + (int)((offset - VLAPIC_REG_TIMER) >> 4);
        return -1;
}

static const uint32_t vlapic_lvt_mask[VLAPIC_LVT_COUNT] = {
    [VLAPIC_LVT_CMCI] = LVT_OTHER_MASK,    [VLAPIC_LVT_TIMER] = LVT_TIMER_MASK,
    [VLAPIC_LVT_THERMAL] = LVT_OTHER_MASK, [VLAPIC_LVT_PERF] = LVT_OTHER_MASK,
    [VLAPIC_LVT_LINT0] = LVT_LINT_MASK,    [VLAPIC_LVT_LINT1] = LVT_LINT_MASK,
    [VLAPIC_LVT_ERROR] = LVT_ERROR_MASK,
};

static void vlapic_reserved(struct vlapic *l)
{
        l->stats.reserved_access++;
        vlapic_error(l, VLAPIC_ESR_ILLEGAL_REG);
}

uint32_t vlapic_read(struct vlapic *l, uint32_t offset)
{
        int lvt;

        if (offset >= VLAPIC_SIZE || (offset & 3)) {
                l->stats.bad_access++;
                return 0;
        }
        if (offset & 0xf) {
                vlapic_reserved(l);
                return 0;
        }
        if (offset >= VLAPIC_REG_ISR && offset < VLAPIC_REG_ESR) {
                unsigned i = (offset >> 4) & 7;

                if (offset < VLAPIC_REG_TMR)
                        return l->isr[i];
                if (offset < VLAPIC_REG_IRR)
                        return l->tmr[i];
                return l->irr[i];
        }
        lvt = vlapic_lvt_index(offset);
        if (lvt >= 0)
                return l->lvt[lvt];
        switch (offset) {
        case VLAPIC_REG_ID:
                return (uint32_t)l->id << 24;
        case VLAPIC_REG_VER:
                return VLAPIC_VERSION;
        case VLAPIC_REG_TPR:
                return l->tpr;
        case VLAPIC_REG_APR:
                return vlapic_apr(l);
        case VLAPIC_REG_PPR:
                return vlapic_ppr(l);
        case VLAPIC_REG_EOI: /* write-only */
        case VLAPIC_REG_RRD: /* remote read: never valid */
                return 0;
        case VLAPIC_REG_LDR:
                return l->ldr;
        case VLAPIC_REG_DFR:
                return l->dfr;
        case VLAPIC_REG_SVR:
                return l->svr;
        case VLAPIC_REG_ESR:
                return l->esr;
        case VLAPIC_REG_ICR_LO:
                return l->icr_lo; /* delivery status (bit 12) always idle */
        case VLAPIC_REG_ICR_HI:
                return l->icr_hi;
        case VLAPIC_REG_TMICT:
                return l->timer_icr;
        case VLAPIC_REG_TMCCT: {
                uint64_t now = vlapic_now(l);

                vlapic_timer_update(l, now);
                return vlapic_current_count(l, now);
        }
        case VLAPIC_REG_TDCR:
                return l->timer_dcr;
        default:
                vlapic_reserved(l);
                return 0;
        }
}

static void vlapic_write_svr(struct vlapic *l, uint32_t value)
{
        /* Expiries up to now happen under the old setting. */
        vlapic_timer_update(l, vlapic_now(l));
        l->svr = value & SVR_MASK;
        if (!vlapic_enabled(l)) {
                /* Software disable masks every LVT entry (SDM 10.4.7.2). */
                for (unsigned i = 0; i < VLAPIC_LVT_COUNT; i++)
                        l->lvt[i] |= VLAPIC_LVT_MASKED;
        }
}

void vlapic_write(struct vlapic *l, uint32_t offset, uint32_t value)
{
        int lvt;

        if (offset >= VLAPIC_SIZE || (offset & 3)) {
                l->stats.bad_access++;
                return;
        }
        if (offset & 0xf) {
                vlapic_reserved(l);
                return;
        }
        lvt = vlapic_lvt_index(offset);
        if (lvt >= 0) {
                value &= vlapic_lvt_mask[lvt];
                if (!vlapic_enabled(l))
                        value |= VLAPIC_LVT_MASKED; /* cannot unmask while disabled */
                if (lvt == VLAPIC_LVT_TIMER)
                        vlapic_write_lvt_timer(l, value, vlapic_now(l));
                else
                        l->lvt[lvt] = value;
                return;
        }
        switch (offset) {
        case VLAPIC_REG_TPR:
                vlapic_set_tpr(l, value);
                break;
        case VLAPIC_REG_EOI:
                vlapic_eoi(l);
                break;
        case VLAPIC_REG_LDR:
                l->ldr = value & LDR_MASK;
                break;
        case VLAPIC_REG_DFR:
                l->dfr = (value & DFR_MASK) | DFR_FIXED;
                break;
        case VLAPIC_REG_SVR:
                vlapic_write_svr(l, value);
                break;
        case VLAPIC_REG_ESR:
                l->esr = l->esr_pending;
                l->esr_pending = 0;
                break;
        case VLAPIC_REG_ICR_LO:
                l->icr_lo = value & ICR_LO_MASK;
                vlapic_send_ipi(l);
                break;
        case VLAPIC_REG_ICR_HI:
                l->icr_hi = value & ICR_HI_MASK;
                break;
        case VLAPIC_REG_TMICT:
                vlapic_write_tmict(l, value, vlapic_now(l));
                break;
        case VLAPIC_REG_TDCR:
                vlapic_write_tdcr(l, value, vlapic_now(l));
                break;
        case VLAPIC_REG_ID:
        case VLAPIC_REG_VER:
        case VLAPIC_REG_APR:
        case VLAPIC_REG_PPR:
        case VLAPIC_REG_RRD:
        case VLAPIC_REG_TMCCT:
                break; /* read-only */
        default:
                if (offset >= VLAPIC_REG_ISR && offset < VLAPIC_REG_ESR)
                        break; /* ISR/TMR/IRR: read-only */
                vlapic_reserved(l);
                break;
        }
}

/* ---- MMIO ---- */

static void vlapic_mmio_read(void *dev, uint64_t offset, unsigned size, uint64_t *val)
{
        struct vlapic *l = dev;

        if (size != 4 || offset >= VLAPIC_SIZE || (offset & 3)) {
                l->stats.bad_access++;
                *val = 0;
                return;
        }
        *val = vlapic_read(l, (uint32_t)offset);
}

static void vlapic_mmio_write(void *dev, uint64_t offset, unsigned size, uint64_t val)
{
        struct vlapic *l = dev;

        if (size != 4 || offset >= VLAPIC_SIZE || (offset & 3)) {
                l->stats.bad_access++;
                return;
        }
        vlapic_write(l, (uint32_t)offset, (uint32_t)val);
}

const struct mmio_ops vlapic_mmio_ops = {
    .read = vlapic_mmio_read,
    .write = vlapic_mmio_write,
};

/* ---- Snapshots ---- */

struct vlapic_snap { /* no padding: every byte is checked */
        uint64_t timer_start, timer_next, tsc_deadline, pv_eoi;
        uint32_t tpr, ldr, dfr, svr, esr, esr_pending, isr[8], tmr[8], irr[8];
        uint32_t lvt[VLAPIC_LVT_COUNT], icr_lo, icr_hi, timer_icr, timer_dcr, timer_offset;
        uint8_t id, timer_running, wait_sipi, sipi_vector, nmi_pending, global_off, nmi_latched,
            pv_eoi_set;
};

__attribute__((cold)) void vlapic_save(const struct vlapic *l, struct snap_buf *b)
{
        struct vlapic_snap s = {
            .timer_start = l->timer_start,
            .timer_next = l->timer_next,
            .tsc_deadline = l->tsc_deadline,
            .pv_eoi = l->pv_eoi,
            .tpr = l->tpr,
            .ldr = l->ldr,
            .dfr = l->dfr,
            .svr = l->svr,
            .esr = l->esr,
            .esr_pending = l->esr_pending,
            .icr_lo = l->icr_lo,
            .icr_hi = l->icr_hi,
            .timer_icr = l->timer_icr,
            .timer_dcr = l->timer_dcr,
            .timer_offset = l->timer_offset,
            .id = l->id,
            .timer_running = l->timer_running,
            .wait_sipi = l->wait_sipi,
            .sipi_vector = l->sipi_vector,
            .nmi_pending = l->nmi_pending,
            .nmi_latched = l->nmi_latched,
            .global_off = l->global_off,
            .pv_eoi_set = l->pv_eoi_set,
        };

        memcpy(s.isr, l->isr, sizeof(s.isr));
        memcpy(s.tmr, l->tmr, sizeof(s.tmr));
        memcpy(s.irr, l->irr, sizeof(s.irr));
        memcpy(s.lvt, l->lvt, sizeof(s.lvt));
        snap_put(b, &s, sizeof(s));
}

__attribute__((cold)) int vlapic_load(struct vlapic *l, struct snap_rd *r)
{
        const uint32_t esr_bits =
            VLAPIC_ESR_SEND_ILLEGAL | VLAPIC_ESR_RECV_ILLEGAL | VLAPIC_ESR_ILLEGAL_REG;
        struct vlapic_snap s;
        bool bad;

        if (!snap_get(r, &s, sizeof(s)))
                return -KEEL_EINVAL;
        if (s.id != l->id)
                return snap_fail(r, "LAPIC: APIC ID %u, this one's is %u", s.id, l->id);
        bad = (s.tpr & ~TPR_MASK) || (s.ldr & ~LDR_MASK) || (s.dfr & ~DFR_MASK) != DFR_FIXED ||
              (s.svr & ~SVR_MASK) || (s.esr & ~esr_bits) || (s.esr_pending & ~esr_bits) ||
              (s.icr_lo & ~ICR_LO_MASK) || (s.icr_hi & ~ICR_HI_MASK) ||
              (s.timer_dcr & ~TDCR_MASK) || (s.isr[0] | s.tmr[0] | s.irr[0]) & 0xffff ||
              (s.timer_running | s.wait_sipi | s.nmi_pending | s.global_off | s.pv_eoi_set) > 1 ||
              (s.pv_eoi && (s.pv_eoi & 3) != 1) || s.pv_eoi_set > (s.pv_eoi != 0) ||
              s.nmi_latched > s.nmi_pending ||
              (s.timer_running && (!s.timer_icr || s.timer_offset >= s.timer_icr));
        for (unsigned i = 0; i < VLAPIC_LVT_COUNT; i++)
                bad |= (s.lvt[i] & ~vlapic_lvt_mask[i]) ||
                       (!(s.svr & VLAPIC_SVR_ENABLE) && !(s.lvt[i] & VLAPIC_LVT_MASKED));
        if (bad)
                return snap_fail(r,
                                 "LAPIC %u: a register or the timer holds a value the LAPIC "
                                 "cannot have",
                                 s.id);
        if (!r->apply)
                return 0;
        l->timer_start = s.timer_start, l->timer_next = s.timer_next;
        l->tsc_deadline = s.tsc_deadline, l->tpr = s.tpr, l->ldr = s.ldr, l->dfr = s.dfr;
        l->svr = s.svr, l->esr = s.esr, l->esr_pending = s.esr_pending, l->icr_lo = s.icr_lo;
        l->icr_hi = s.icr_hi, l->timer_icr = s.timer_icr, l->timer_dcr = s.timer_dcr;
        l->timer_offset = s.timer_offset, l->timer_running = s.timer_running;
        l->wait_sipi = s.wait_sipi, l->sipi_vector = s.sipi_vector;
        l->nmi_pending = s.nmi_pending, l->nmi_latched = s.nmi_latched;
        l->global_off = s.global_off, l->pv_eoi = s.pv_eoi, l->pv_eoi_set = s.pv_eoi_set;
        memcpy(l->isr, s.isr, sizeof(s.isr));
        memcpy(l->tmr, s.tmr, sizeof(s.tmr));
        memcpy(l->irr, s.irr, sizeof(s.irr));
        memcpy(l->lvt, s.lvt, sizeof(s.lvt));
        return 0;
}
