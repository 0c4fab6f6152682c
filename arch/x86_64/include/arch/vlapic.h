/*
 * The guest's local APIC in xAPIC mode (pure C, host-tested), one per vCPU. The register page
 * is at guest-physical 0xfee00000 (4 KiB, vlapic_mmio_ops with dev = struct vlapic *); x2APIC
 * is not offered and MSR APIC_BASE is the caller's (fixed 0xfee00900). See docs/x86-interrupts.md.
 *
 * Use from the SVM backend (the caller serializes all calls for one vlapic):
 *   vlapic_timer_update(l, arch_tsc());      // fire expired timers into IRR
 *   int v = vlapic_pending(l);               // highest deliverable vector or -1
 *   if (v >= 0 && guest can take it) { inject v (EVENTINJ); vlapic_accept(l, v); }
 *   wait/HLT bound: vlapic_next_deadline(l)  // TSC of the next timer expiry or UINT64_MAX
 * MSR 0x6e0 (IA32_TSC_DEADLINE): vlapic_tsc_deadline_read / vlapic_tsc_deadline_write.
 *
 * The timer's one-shot and periodic modes count at TSC frequency / divide value; the
 * TSC-deadline mode compares against the TSC (guest TSC == host TSC).
 */
#ifndef ARCH_X86_VLAPIC_H
#define ARCH_X86_VLAPIC_H

#include <stdbool.h>
#include <stdint.h>

#include <vmm/mmio.h>

#define VLAPIC_BASE    0xfee00000ull
#define VLAPIC_SIZE    0x1000ull
#define VLAPIC_VERSION 0x00050014u /* version 0x14, max LVT entry 5 */

/* Register offsets in the xAPIC page. */
#define VLAPIC_REG_ID     0x020
#define VLAPIC_REG_VER    0x030
#define VLAPIC_REG_TPR    0x080
#define VLAPIC_REG_APR    0x090
#define VLAPIC_REG_PPR    0x0a0
#define VLAPIC_REG_EOI    0x0b0
#define VLAPIC_REG_RRD    0x0c0
#define VLAPIC_REG_LDR    0x0d0
#define VLAPIC_REG_DFR    0x0e0
#define VLAPIC_REG_SVR    0x0f0
#define VLAPIC_REG_ISR    0x100 /* 8 registers, 0x10 apart */
#define VLAPIC_REG_TMR    0x180
#define VLAPIC_REG_IRR    0x200
#define VLAPIC_REG_ESR    0x280
#define VLAPIC_REG_CMCI   0x2f0
#define VLAPIC_REG_ICR_LO 0x300
#define VLAPIC_REG_ICR_HI 0x310
#define VLAPIC_REG_TIMER  0x320
#define VLAPIC_REG_THERM  0x330
#define VLAPIC_REG_PERF   0x340
#define VLAPIC_REG_LINT0  0x350
#define VLAPIC_REG_LINT1  0x360
#define VLAPIC_REG_ERROR  0x370
#define VLAPIC_REG_TMICT  0x380
#define VLAPIC_REG_TMCCT  0x390
#define VLAPIC_REG_TDCR   0x3e0

#define VLAPIC_SVR_ENABLE     (1u << 8)
#define VLAPIC_LVT_MASKED     (1u << 16)
#define VLAPIC_TIMER_MODE     (3u << 17)
#define VLAPIC_TIMER_ONESHOT  (0u << 17)
#define VLAPIC_TIMER_PERIODIC (1u << 17)
#define VLAPIC_TIMER_DEADLINE (2u << 17)

/* ESR bits Keel reports. */
#define VLAPIC_ESR_SEND_ILLEGAL (1u << 5)
#define VLAPIC_ESR_RECV_ILLEGAL (1u << 6)
#define VLAPIC_ESR_ILLEGAL_REG  (1u << 7)

#define VLAPIC_MSR_TSC_DEADLINE 0x6e0

/* LVT entries, in register order (0x2f0, then 0x320..0x370). */
enum vlapic_lvt {
        VLAPIC_LVT_CMCI,
        VLAPIC_LVT_TIMER,
        VLAPIC_LVT_THERMAL,
        VLAPIC_LVT_PERF,
        VLAPIC_LVT_LINT0,
        VLAPIC_LVT_LINT1,
        VLAPIC_LVT_ERROR,
        VLAPIC_LVT_COUNT
};

struct vlapic;

/* What the vlapic needs from its surroundings. */
struct vlapic_env {
        /* Current TSC (guest TSC == host TSC). Required. */
        uint64_t (*now)(void *ctx);
        /*
         * The guest EOIed a level-triggered vector (TMR bit set): the caller broadcasts it to
         * the I/O APIC (vioapic_eoi). May be NULL. Called after the ISR bit is cleared, so it
         * may re-enter vlapic_set_irq.
         */
        void (*eoi_vector)(void *ctx, uint8_t vector);
        /*
         * The guest wrote ICR low: send the IPI it describes (the caller delivers it to its
         * VM's LAPICs with vlapic_ipi_deliver, and wakes what it changed). NULL: a lone LAPIC,
         * which delivers to itself (vlapic_ipi_deliver with itself as the only LAPIC).
         */
        void (*send_ipi)(void *ctx, struct vlapic *src);
        void *ctx;
        /*
         * The shortest time, in TSC ticks, between two expiries of a periodic timer (0: no
         * limit). A shorter period (initial count x divide) reloads after this long instead,
         * as KVM's min_timer_period_us does: at initial count 1 and divide 1 the timer would
         * expire every TSC tick and the guest's interrupted code would never run again.
         */
        uint64_t min_period;
};

/* Counters the caller can log: all are guest-caused and otherwise silent. */
struct vlapic_stats {
        uint64_t bad_access;      /* MMIO not 32-bit or not 4-byte aligned: ignored / read 0 */
        uint64_t reserved_access; /* reserved offsets (read 0, ESR illegal register address) */
        uint64_t illegal_vector;  /* vectors 0-15 sent or received (ESR bits 5/6) */
        uint64_t ipi_dropped;     /* IPIs no LAPIC took; SMI and reserved delivery modes */
        uint64_t nmi_collapsed;   /* NMIs that arrived while one was already pending */
        uint64_t disabled_drop;   /* interrupts that arrived while the APIC was disabled */
        uint64_t bad_accept;      /* vlapic_accept of a vector not pending (caller bug) */
        uint64_t init_ignored;    /* INIT to a LAPIC not waiting for SIPI (a running vCPU) */
};

/* ICR delivery modes (bits 10:8). */
#define VLAPIC_DM_FIXED   0u
#define VLAPIC_DM_LOWEST  1u
#define VLAPIC_DM_SMI     2u
#define VLAPIC_DM_NMI     4u
#define VLAPIC_DM_INIT    5u
#define VLAPIC_DM_STARTUP 6u

struct vlapic {
        uint8_t id; /* APIC ID (ID register bits 31:24, read-only) */
        uint32_t tpr, ldr, dfr, svr;
        uint32_t esr;         /* value the guest reads */
        uint32_t esr_pending; /* errors detected since the last ESR write */
        uint32_t isr[8], tmr[8], irr[8];
        uint32_t lvt[VLAPIC_LVT_COUNT];
        uint32_t icr_lo, icr_hi;
        /* Timer, one-shot/periodic: counter = icr - (((now - start) >> shift) + offset). */
        uint32_t timer_icr;    /* initial count */
        uint32_t timer_dcr;    /* divide configuration register */
        bool timer_running;    /* one-shot/periodic armed */
        uint64_t timer_start;  /* TSC the counts are measured from */
        uint32_t timer_offset; /* counts already elapsed at timer_start (< timer_icr) */
        uint64_t timer_next;   /* TSC of the next expiry while running */
        uint64_t tsc_deadline; /* IA32_TSC_DEADLINE, 0 = disarmed */
        /*
         * Wait-for-SIPI (an AP before its start, or after INIT): the vCPU does not run; a
         * start-up IPI clears it and sets sipi_vector (the vCPU starts at CS = vector << 8,
         * IP = 0). The caller sets it for the APs after vlapic_init.
         */
        bool wait_sipi;
        uint8_t sipi_vector;
        /*
         * An NMI the LAPIC accepted (IPI delivery mode NMI) that the CPU has not taken yet. The
         * vCPU's backend takes it (vlapic_take_nmi) when the guest's NMIs are not blocked.
         * nmi_latched: a second one that came while one was pending; it is taken after the
         * first one's handler, unless the guest was already handling an NMI (the backend then
         * calls vlapic_nmi_blocked, which drops it): one running and one waiting at most, as
         * KVM does, so two NMIs sent at the same moment are both taken. More collapse
         * (counted). Kept across vlapic_reset: they are the CPU's, not the LAPIC's.
         */
        bool nmi_pending, nmi_latched;
        /*
         * IA32_APIC_BASE.EN clear (SDM 10.4.3): the caller's. The LAPIC then takes no
         * interrupt, NMI or IPI and its page does not answer (the caller's page handler).
         */
        bool global_off;
        /*
         * KVM's paravirtual EOI (docs/x86-interrupts.md): MSR 0x4b564d04 as the guest wrote it
         * (0: off; else bit 0 set and bits 63:2 the guest-physical address of its flag), and
         * whether Keel has set the flag's bit 0, which lets the guest end what is in service by
         * clearing it instead of writing EOI. The flag is guest memory: the caller's.
         */
        uint64_t pv_eoi;
        bool pv_eoi_set;
        struct vlapic_env env;
        struct vlapic_stats stats;
};

/* Reset state (SDM 10.4.7.1): everything 0, DFR all ones, SVR 0xff (disabled), LVTs masked. */
void vlapic_init(struct vlapic *l, unsigned apic_id, const struct vlapic_env *env);

/*
 * The LAPIC globally disabled through IA32_APIC_BASE.EN (SDM 10.4.3): back to the reset state
 * of vlapic_init, keeping its ID, environment, wait-for-SIPI state and statistics.
 */
void vlapic_reset(struct vlapic *l);

/*
 * An interrupt for `vector` arrives (from the I/O APIC, a self-IPI or an LVT). `level` sets
 * the vector's TMR bit (level-triggered: the EOI is broadcast). Returns false if it was not
 * accepted: vector < 16 (ESR receive-illegal, counted) or the APIC is software-disabled.
 */
bool vlapic_set_irq(struct vlapic *l, uint8_t vector, bool level);

/* The pending NMI, consumed: true if there was one (the caller delivers it). */
bool vlapic_take_nmi(struct vlapic *l);
/* The guest is handling an NMI and one is pending: a latched second one collapses into it. */
void vlapic_nmi_blocked(struct vlapic *l);

/* Highest vector in IRR whose priority class is above PPR, or -1 (also when disabled). */
int vlapic_pending(const struct vlapic *l);

/* The vector was injected into the guest: IRR -> ISR. */
void vlapic_accept(struct vlapic *l, uint8_t vector);

/* EOI: the highest in-service vector retires (a level-triggered one goes to env.eoi_vector). */
void vlapic_eoi(struct vlapic *l);

/*
 * Whether the guest may end what is in service with a paravirtual EOI (vlapic.pv_eoi): a vector
 * is in service, the highest one is edge-triggered (an I/O APIC needs the EOI of a level-
 * triggered one at once) and nothing waits in IRR (what waits is delivered at the EOI's exit).
 */
bool vlapic_pv_eoi_ok(const struct vlapic *l);

/* Processor priority (PPR register value) from TPR and the highest in-service vector. */
uint32_t vlapic_ppr(const struct vlapic *l);

/* TPR register (bits 7:0); for a CR8 access CR8 = TPR >> 4. */
uint32_t vlapic_tpr(const struct vlapic *l);
void vlapic_set_tpr(struct vlapic *l, uint32_t tpr);

/*
 * Destination match for an interrupt message (I/O APIC redirection entry or IPI): physical
 * mode: dest == ID or 0xff; logical mode: flat model (DFR 0xf...) dest & LDR[31:24] != 0,
 * cluster model (DFR 0x0...) same cluster (or 0xf) and dest[3:0] & LDR[27:24] != 0.
 */
bool vlapic_match_dest(const struct vlapic *l, uint8_t dest, bool logical);

/* TSC of the next unmasked timer expiry (may be in the past), UINT64_MAX if none. */
uint64_t vlapic_next_deadline(const struct vlapic *l);

/* Fire the timers expired at `now`: the timer vector goes into IRR unless masked. */
void vlapic_timer_update(struct vlapic *l, uint64_t now);

/* MSR IA32_TSC_DEADLINE: reads 0 and writes are ignored unless the LVT timer is in
 * TSC-deadline mode; writing 0 disarms; a deadline not after now fires at once. */
uint64_t vlapic_tsc_deadline_read(struct vlapic *l);
void vlapic_tsc_deadline_write(struct vlapic *l, uint64_t value);

/* Register access by offset in the page (only 32-bit aligned accesses are architectural). */
uint32_t vlapic_read(struct vlapic *l, uint32_t offset);
void vlapic_write(struct vlapic *l, uint32_t offset, uint32_t value);

/*
 * Deliver the IPI in src's ICR (icr_lo, icr_hi) to the LAPICs all[0..n) of one VM, src among
 * them (n <= VLAPIC_MAX_GROUP): fixed (to every LAPIC the destination or shorthand names), lowest
 * priority (to the first enabled one of those), NMI (the vector is ignored; every LAPIC named that
 * is not globally disabled or waiting for SIPI gets nmi_pending, also when software-disabled,
 * SDM 10.4.7.2, or nmi_latched if one is pending; with both set it is absorbed, counted, and not
 * reported as changed),
 * INIT (LAPICs waiting for SIPI are reset and keep waiting; running ones ignore it,
 * counted), start-up (LAPICs waiting for SIPI leave that state with sipi_vector set). SMI and
 * reserved modes are dropped and counted (src->stats.ipi_dropped), as is an IPI that no LAPIC
 * accepted (all-excluding-self with no other LAPIC excepted); vectors 0-15 of fixed/lowest
 * IPIs set src's ESR send-illegal bit.
 * Returns the bit mask of indices whose interrupt state changed (to wake them); *started
 * gets the mask of those a SIPI released.
 */
#define VLAPIC_MAX_GROUP 64 /* LAPICs of one VM: bits of the masks below */
uint64_t vlapic_ipi_deliver(struct vlapic *src, struct vlapic *const all[], unsigned n,
                            uint64_t *started);

extern const struct mmio_ops vlapic_mmio_ops;

/* Snapshots (vmm/snapshot.h): every register, the timer (its TSC points as they are: time goes
 * on) and the SIPI and NMI state; not the environment or statistics. load checks every field
 * against what a guest could have written (APIC ID = this LAPIC's) and changes the LAPIC only
 * in the apply pass. */
struct snap_buf;
struct snap_rd;
void vlapic_save(const struct vlapic *l, struct snap_buf *b);
int vlapic_load(struct vlapic *l, struct snap_rd *r);

#endif
