/*
 * arm64 SMP (keel/smp.h, docs/smp.md): the CPUs of the ACPI MADT (GICC entries) started with
 * the firmware's PSCI CPU_ON over the conduit the FADT names, per-CPU data in TPIDR_EL2, and
 * the idle wait. A secondary enters at arm64_ap_entry (entry.S) with the MMU off, takes Keel's
 * EL2 state from its struct arm64_percpu, then runs arm64_ap_main here.
 */
#include <stddef.h>
#include <string.h>

#include <arch/cpu.h>
#include <arch/percpu.h>
#include <arch/relax.h>
#include <arch/sysreg.h>
#include <drivers/acpi_tables.h>
#include <keel/addr.h>
#include <keel/arch.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/hostmap.h>
#include <keel/log.h>
#include <keel/palloc.h>
#include <keel/smp.h>
#include <keel/time.h>

_Static_assert(offsetof(struct arm64_percpu, guest) == PERCPU_GUEST, "entry.S offset");
_Static_assert(offsetof(struct arm64_percpu, el2_mair) == PERCPU_EL2_MAIR, "entry.S offset");
_Static_assert(offsetof(struct arm64_percpu, el2_tcr) == PERCPU_EL2_TCR, "entry.S offset");
_Static_assert(offsetof(struct arm64_percpu, el2_ttbr0) == PERCPU_EL2_TTBR0, "entry.S offset");
_Static_assert(offsetof(struct arm64_percpu, el2_sctlr) == PERCPU_EL2_SCTLR, "entry.S offset");
_Static_assert(offsetof(struct arm64_percpu, el2_vbar) == PERCPU_EL2_VBAR, "entry.S offset");
_Static_assert(offsetof(struct arm64_percpu, stack_top) == PERCPU_STACK_TOP, "entry.S offset");
_Static_assert(offsetof(struct arm64_percpu, trap_stack_top) == PERCPU_TRAP_STACK,
               "entry.S offset");
_Static_assert(offsetof(struct arm64_percpu, trap_x1) == PERCPU_TRAP_X1, "entry.S offset");
_Static_assert(offsetof(struct arm64_percpu, trap_sp) == PERCPU_TRAP_SP, "entry.S offset");

#define PSCI_CPU_ON_64      0xc4000003u
#define PSCI_ALREADY_ON     (-4)
#define FADT_ARM_BOOT_ARCH  129 /* ACPI 5.1+: ARM boot architecture flags (2 bytes) */
#define FADT_PSCI_COMPLIANT (1u << 0)
#define FADT_PSCI_USE_HVC   (1u << 1)
/*
 * A secondary's memory: the page of its per-CPU data, a guard page, its trap stack (where
 * Keel's vectors report a fault from), a guard page, its 64 KiB stack.
 */
#define AP_TRAP_PAGES  3
#define AP_STACK_PAGES 16
#define AP_TRAP_OFF    (2 * PAGE_SIZE)
#define AP_STACK_OFF   (AP_TRAP_OFF + AP_TRAP_PAGES * PAGE_SIZE + PAGE_SIZE)
#define AP_PAGES       (AP_STACK_OFF / PAGE_SIZE + AP_STACK_PAGES)
#define AP_CHECKIN_MS  1000
#define IDLE_WAKE_MS   10 /* arch_cpu_idle wakes at least this often */

/* struct arm64_percpu.state of a secondary. */
enum { CPU_STARTING = 1, CPU_UP, CPU_ONLINE, CPU_ABANDONED };

static struct arm64_percpu boot_cpu;
/* TPIDR_EL2 is Keel's: before that (UEFI boot services log too) the firmware's value. */
static bool percpu_ready;
/*
 * Every CPU online, by index (the boot CPU at 0); written by the boot CPU only. One entry
 * until arm64_smp_prepare sizes the tables from the MADT (arch_cpu_slots entries).
 */
static struct arm64_percpu *boot_entry[1], **cpus = boot_entry;
static unsigned slots = 1;
/*
 * From arm64_smp_prepare, before Keel's tables exist (their guard pages are never mapped, and
 * Keel never changes a live mapping): the memory of secondaries, used in order. A slot whose
 * CPU was started but never checked in is not reused (it may still run).
 */
static hpa_t *ap_slot;
static unsigned ap_slots, next_slot = 1;
/* The MADT's GICC entries, read once by arm64_smp_prepare. */
static struct arm64_madt_cpu *madt;
static unsigned madt_count;

void arm64_percpu_boot_init(void *trap_stack_top)
{
        boot_cpu.index = 0;
        boot_cpu.trap_stack_top = (uint64_t)(uintptr_t)trap_stack_top;
        boot_cpu.mpidr = read_sysreg(mpidr_el1) & MPIDR_AFF_MASK;
        cpus[0] = &boot_cpu;
        write_sysreg(tpidr_el2, (uint64_t)(uintptr_t)&boot_cpu);
        isb();
        percpu_ready = true;
}

unsigned arch_cpu_index(void)
{
        return percpu_ready ? arm64_this_cpu()->index : 0;
}

unsigned arch_cpu_slots(void)
{
        return slots;
}

/* A zeroed boot-time table of `bytes` from the page allocator, or NULL. */
static void *boot_table(size_t bytes)
{
        hpa_t pa;

        if (palloc_alloc(&keel_palloc, align_up(bytes, PAGE_SIZE) / PAGE_SIZE, PAGE_SIZE, &pa))
                return NULL;
        return hva_ptr(arch_hpa_to_hva(pa));
}

void arm64_ap_main(struct arm64_percpu *pc);

/* A secondary, on its own stack with Keel's EL2 tables and vectors (from arm64_ap_entry). */
void arm64_ap_main(struct arm64_percpu *pc)
{
        int expected = CPU_STARTING;

        arm64_secondary_setup();
        if (!__atomic_compare_exchange_n(&pc->state, &expected, CPU_UP, false, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE))
                arch_halt(); /* too late: the boot CPU gave up on this CPU and reported it */
        LOG_INFO("cpu %u up (MPIDR %#llx)", pc->index, (unsigned long long)pc->mpidr);
        __atomic_store_n(&pc->state, CPU_ONLINE, __ATOMIC_RELEASE);
        pc->ap_entry(pc->index);
        panic("cpu %u: its entry function returned", pc->index);
}

static const char *psci_error_name(int64_t ret)
{
        static const char *const names[] = {
            "",           "NOT_SUPPORTED",    "INVALID_PARAMETERS", "DENIED",   "ALREADY_ON",
            "ON_PENDING", "INTERNAL_FAILURE", "NOT_PRESENT",        "DISABLED", "INVALID_ADDRESS",
        };

        return ret < 0 && -ret < (int64_t)(sizeof(names) / sizeof(names[0])) ? names[-ret]
                                                                             : "unknown";
}

static int64_t psci_smc(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3)
{
        register uint64_t x0 __asm__("x0") = fn;
        register uint64_t x1 __asm__("x1") = a1;
        register uint64_t x2 __asm__("x2") = a2;
        register uint64_t x3 __asm__("x3") = a3;

        /* SMCCC: x4-x17 are not preserved by firmware before SMCCC 1.1. */
        __asm__ volatile("smc #0"
                         : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3)
                         :
                         : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14",
                           "x15", "x16", "x17", "memory");
        return (int64_t)x0;
}

/*
 * The firmware's PSCI conduit from the FADT's ARM boot flags: 0 when it is SMC (the only one
 * EL2 can call: an HVC from EL2 is taken by Keel's own vectors), else why not.
 */
static const char *psci_conduit(hpa_t rsdp)
{
        uint32_t len;
        const uint8_t *fadt = acpi_find_table(rsdp, "FACP", &len);
        unsigned flags;

        if (!fadt)
                return "no ACPI FADT names the firmware's PSCI";
        if (len < FADT_ARM_BOOT_ARCH + 2)
                return "the ACPI FADT has no ARM boot flags (older than ACPI 5.1)";
        flags = fadt[FADT_ARM_BOOT_ARCH] | fadt[FADT_ARM_BOOT_ARCH + 1] << 8;
        if (!(flags & FADT_PSCI_COMPLIANT))
                return "the firmware is not PSCI-compliant (FADT ARM boot flags)";
        if (flags & FADT_PSCI_USE_HVC)
                return "the firmware's PSCI is over HVC, which Keel at EL2 cannot call";
        return NULL;
}

static bool wait_checkin(struct arm64_percpu *pc)
{
        uint64_t start = arch_tsc(), limit = arm64_cntfrq() / 1000 * AP_CHECKIN_MS;
        int expected = CPU_STARTING;

        while (arch_tsc() - start < limit) {
                if (__atomic_load_n(&pc->state, __ATOMIC_ACQUIRE) == CPU_ONLINE)
                        return true;
                arch_cpu_relax();
        }
        if (__atomic_compare_exchange_n(&pc->state, &expected, CPU_ABANDONED, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                return false;
        /* It checked in just now and is logging its line: let it finish. */
        while (__atomic_load_n(&pc->state, __ATOMIC_ACQUIRE) != CPU_ONLINE)
                arch_cpu_relax();
        return true;
}

/*
 * Start the CPU with affinity `mpidr` as index `index`: its per-CPU data and stack, PSCI
 * CPU_ON, wait for it. False (reported in one line) if it did not come up; its memory then
 * stays allocated, as a late CPU may still be using it.
 */
static bool start_cpu(uint64_t mpidr, unsigned index, void (*ap_entry)(unsigned))
{
        struct arm64_percpu *pc;
        hpa_t pa;
        int64_t ret;

        if (next_slot > ap_slots) {
                LOG_WARN("cpu MPIDR %#llx not started: no memory for its stack",
                         (unsigned long long)mpidr);
                return false;
        }
        pa = ap_slot[next_slot];
        pc = hva_ptr(arch_hpa_to_hva(pa)); /* a CPU whose CPU_ON failed may have left it written */
        memset(pc, 0, sizeof(*pc));
        pc->el2_mair = read_sysreg(mair_el2);
        pc->el2_tcr = read_sysreg(tcr_el2);
        pc->el2_ttbr0 = read_sysreg(ttbr0_el2);
        pc->el2_sctlr = read_sysreg(sctlr_el2);
        pc->el2_vbar = read_sysreg(vbar_el2);
        pc->stack_top = (uint64_t)(uintptr_t)pc + AP_PAGES * PAGE_SIZE;
        pc->trap_stack_top = (uint64_t)(uintptr_t)pc + AP_TRAP_OFF + AP_TRAP_PAGES * PAGE_SIZE;
        pc->index = index;
        pc->mpidr = mpidr;
        pc->ap_entry = ap_entry;
        pc->state = CPU_STARTING;
        arm64_dcache_clean_poc(pc, sizeof(*pc)); /* it reads these with its caches off */
        ret = psci_smc(PSCI_CPU_ON_64, mpidr, (uint64_t)(uintptr_t)arm64_ap_entry, hpa_raw(pa));
        if (ret) {
                LOG_WARN("cpu MPIDR %#llx not started: PSCI CPU_ON returned %lld (%s)",
                         (unsigned long long)mpidr, (long long)ret, psci_error_name(ret));
                return false; /* it never ran: the next CPU takes its slot */
        }
        next_slot++;
        if (!wait_checkin(pc)) {
                LOG_WARN("cpu MPIDR %#llx did not come up within %u ms: left out",
                         (unsigned long long)mpidr, AP_CHECKIN_MS);
                return false;
        }
        __atomic_store_n(&cpus[index], pc, __ATOMIC_RELEASE);
        return true;
}

int arm64_smp_prepare(const struct boot_info *bi, struct hostmap *m)
{
        struct arm64_percpu **table;
        unsigned count, want;

        if (arm64_madt_cpus(bi->rsdp, NULL, 0, &count) || count <= 1)
                return 0;
        /* The tables sized from the MADT; three guard pages per CPU in Keel's map. */
        want = m->count + 2 * count + HOSTMAP_MAX_REGIONS;
        madt = boot_table(count * sizeof(*madt));
        table = boot_table(count * sizeof(*table));
        ap_slot = boot_table(count * sizeof(*ap_slot));
        if (!madt || !table || !ap_slot ||
            hostmap_grow(m, boot_table(want * sizeof(struct hostmap_region)), want)) {
                LOG_WARN("no memory for the per-CPU tables of %u CPUs: running on the boot "
                         "CPU only",
                         count);
                return 0;
        }
        arm64_madt_cpus(bi->rsdp, madt, count, &madt_count);
        table[0] = cpus[0];
        cpus = table;
        want = count - 1;
        for (unsigned i = 1; i <= want; i++) {
                uint64_t base;
                int err = palloc_alloc(&keel_palloc, AP_PAGES, PAGE_SIZE, &ap_slot[i]);

                if (err) {
                        LOG_WARN("no memory for the stacks of secondary CPUs %u and later "
                                 "(%s)",
                                 i, keel_strerror(err));
                        break;
                }
                base = hpa_raw(ap_slot[i]);
                err = hostmap_add(m, base + AP_TRAP_OFF - PAGE_SIZE, PAGE_SIZE, HOSTMAP_GUARD,
                                  "guard page below the trap stack of", (int)i);
                if (!err)
                        err = hostmap_add(m, base + AP_STACK_OFF - PAGE_SIZE, PAGE_SIZE,
                                          HOSTMAP_GUARD, "guard page below the stack of", (int)i);
                if (err)
                        return err;
                ap_slots = i;
        }
        slots = 1 + ap_slots;
        return 0;
}

unsigned arch_smp_start(const struct boot_info *bi, void (*ap_entry)(unsigned index))
{
        const char *why;
        unsigned count = madt_count, online = 1;
        uintptr_t code;

        if (arm64_madt_cpus(bi->rsdp, NULL, 0, &count) || count == 0)
                LOG_WARN("no GICC entries in the ACPI MADT: running on the boot CPU only");
        count = madt_count; /* 0 if arm64_smp_prepare found at most one or had no memory */
        why = count > 1 ? psci_conduit(bi->rsdp) : NULL;
        if (why) {
                LOG_WARN("secondary CPUs not started: %s", why);
                count = 0;
        }
        /* A secondary fetches these instructions with its MMU and caches off. */
        code = (uintptr_t)arm64_mmu_switch;
        arm64_dcache_clean_poc((const void *)code, (uintptr_t)arm64_ap_entry_end - code);
        for (unsigned i = 0; i < count; i++) {
                if (!madt[i].enabled || madt[i].mpidr == boot_cpu.mpidr)
                        continue;
                online += start_cpu(madt[i].mpidr, online, ap_entry);
        }
        LOG_INFO("%u CPU%s online", online, online == 1 ? "" : "s");
        return online;
}

/*
 * SGI INTID_KICK to the CPU's MPIDR (ICC_SGI1R_EL1: Aff3.Aff2.Aff1, RS = Aff0 / 16, the target
 * list bit Aff0 % 16). A guest it runs exits with an IRQ (handle_irqs acknowledges the SGI and
 * the run loop looks at the VM's state and interrupts again); an idle CPU wakes from its WFI.
 */
void arch_cpu_kick(unsigned cpu)
{
        const struct arm64_percpu *pc;
        uint64_t aff, v;

        if (cpu >= slots || cpu == arch_cpu_index())
                return;
        pc = __atomic_load_n(&cpus[cpu], __ATOMIC_ACQUIRE);
        if (!pc)
                return;
        aff = pc->mpidr;
        v = (aff & 0xff00) << 8 | (aff & 0xff0000) << 16 | ((aff >> 32) & 0xff) << 48 |
            (uint64_t)INTID_KICK << 24 | ((aff >> 4) & 0xf) << 44 | 1ull << (aff & 0xf);
        /* Everything written before (the vGIC model, the VM's state) first. */
        __asm__ volatile("dsb ish" ::: "memory");
        write_sysreg(ICC_SGI1R_EL1, v);
        isb();
}

void arm64_idle_wake_by(uint64_t cnt)
{
        struct arm64_percpu *pc;

        if (!percpu_ready)
                return;
        pc = arm64_this_cpu();
        if (!pc->wake_at || cnt < pc->wake_at)
                pc->wake_at = cnt ? cnt : 1;
}

/* While a vCPU runs, CNTHP is armed for its slice's end or sooner (arch_vcpu_run). */
void arch_timer_by(uint64_t tsc)
{
        struct arm64_percpu *pc;

        arm64_idle_wake_by(tsc);
        if (!percpu_ready)
                return;
        pc = arm64_this_cpu();
        if (pc->run_until && tsc < read_sysreg(cnthp_cval_el2)) {
                write_sysreg(cnthp_cval_el2, tsc);
                isb();
        }
}

void arch_cpu_idle(void)
{
        uint64_t wake = arch_tsc() + arm64_cntfrq() / 1000 * IDLE_WAKE_MS;

        /* A blocked vCPU's timer (arm64_idle_wake_by, from this round's ready() polls). */
        if (percpu_ready && arm64_this_cpu()->wake_at) {
                if (arm64_this_cpu()->wake_at < wake)
                        wake = arm64_this_cpu()->wake_at;
                arm64_this_cpu()->wake_at = 0;
        }
        write_sysreg(cnthp_cval_el2, wake);
        write_sysreg(cnthp_ctl_el2, CNT_CTL_ENABLE);
        isb();
        __asm__ volatile("dsb sy; wfi" ::: "memory");
        /* Off first: its level-sensitive interrupt would otherwise be pending again at once. */
        arm64_hyp_timer_stop();
        for (unsigned n = 0; n < 16; n++) {
                unsigned intid = arm64_gic_ack();

                if (intid >= INTID_SPURIOUS)
                        break;
                arm64_gic_eoi(intid);
                /* INTID_KICK: it woke this CPU, nothing more to do. */
                /* No vCPU runs here: nobody to tell. */
                if (intid == INTID_VTIMER)
                        write_sysreg(cntv_ctl_el0, read_sysreg(cntv_ctl_el0) | CNT_CTL_IMASK);
                if (intid == INTID_PTIMER)
                        write_sysreg(cntp_ctl_el0, read_sysreg(cntp_ctl_el0) | CNT_CTL_IMASK);
                arm64_gic_deactivate(intid);
        }
}
