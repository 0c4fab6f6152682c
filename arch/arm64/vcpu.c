/*
 * arm64 vCPUs at EL2 (no VHE): stage-2 tables and VMIDs, the EL1 state a vCPU owns, the run
 * loop and its exits (HVC/SMC: Keel's hypercalls and PSCI; stage-2 data aborts: MMIO through
 * the syndrome; WFI; trapped system registers; physical interrupts), and the vGIC's list
 * registers around each entry. docs/arm64.md describes the design.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <arch/cpu.h>
#include <arch/percpu.h>
#include <arch/pt_arm64.h>
#include <arch/sysreg.h>
#include <arch/vm.h>
#include <drivers/pl011.h>
#include <keel/arch.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/irq.h>
#include <keel/log.h>
#include <keel/smp.h>
#include <keel/spinlock.h>
#include <keel/time.h>
#include <vmm/build.h>
#include <vmm/gdb.h>
#include <vmm/gdbstub.h>
#include <vmm/hypercall.h>
#include <vmm/vm.h>
#include <vmm/vmm.h>

#include "arm64_priv.h"

_Static_assert(offsetof(struct vcpu_arch, pc) == VCPU_CTX_PC, "entry.S offset");
_Static_assert(offsetof(struct vcpu_arch, esr) == VCPU_CTX_ESR, "entry.S offset");

#define GUEST_RAM_BASE  ARM64_RAM_BASE
#define GUEST_RESERVED  0x100000ull /* boot data and the test guests' stack */
#define GUEST_STACK_TOP 0x80000ull
#define EM_AARCH64      183
#define SCTLR_EL1_RESET 0x30d00800ull /* RES1 bits; MMU and caches off */
#define PSTATE_ENTRY    (PSR_MODE_EL1H | PSR_D | PSR_A | PSR_I | PSR_F)

static uint64_t hcr_guest;
static unsigned nr_brps, nr_wrps; /* breakpoints and watchpoints of the CPU (1..16 each) */
static unsigned nr_lrs;
/* EL1 features whose registers a vCPU owns beyond the base set (same on every CPU). */
static bool have_pauth, have_sve, have_sme;

gpa_t arch_guest_ram_base(void)
{
        return gpa(GUEST_RAM_BASE);
}

unsigned arch_guest_ram_layout(uint64_t size, struct gmem_range out[VM_RAM_RANGES])
{
        if (size == 0 || size > UINT64_MAX - GUEST_RAM_BASE)
                return 0;
        out[0] = (struct gmem_range){GUEST_RAM_BASE, size}; /* nothing lies above a VM's RAM */
        return 1;
}

void arch_guest_reserved(gpa_t *base, uint64_t *size)
{
        *base = gpa(GUEST_RAM_BASE);
        *size = GUEST_RESERVED;
}

uint16_t arch_elf_machine(void)
{
        return EM_AARCH64;
}

void arch_virt_enable(void)
{
        uint64_t isar1 = read_sysreg(id_aa64isar1_el1);
        uint64_t pfr0 = read_sysreg(id_aa64pfr0_el1), pfr1 = read_sysreg(id_aa64pfr1_el1);

        /*
         * FB and BSU_IS as on KVM: a vCPU may move between CPUs and its VM's other vCPUs run
         * on other CPUs, so its local TLB/I-cache maintenance and barriers act on all of them.
         */
        hcr_guest = HCR_VM | HCR_SWIO | HCR_FMO | HCR_IMO | HCR_AMO | HCR_TWI | HCR_TSC |
                    HCR_TIDCP | HCR_RW | HCR_FB | HCR_BSU_IS | HCR_TID3;
        if ((pfr0 >> 28) & 0xf) /* RAS: its error records are hidden (idregs.c) */
                hcr_guest |= HCR_TERR;
        if (isar1 & (0xffull << 4 | 0xffull << 24)) /* APA/API or GPA/GPI: pointer auth */
                hcr_guest |= HCR_API | HCR_APK;
        have_pauth = hcr_guest & HCR_API;
        have_sve = (pfr0 >> 32) & 0xf;
        nr_brps = ((read_sysreg(id_aa64dfr0_el1) >> 12) & 0xf) + 1;
        nr_wrps = ((read_sysreg(id_aa64dfr0_el1) >> 20) & 0xf) + 1;
        /* SME is hidden and trapped (CPTR_EL2.TSM, Keel's own accesses to SMCR too): only
         * TPIDR2_EL0, which that does not trap, is switched. */
        have_sme = (pfr1 >> 24) & 0xf;
        arm64_virt_cpu_enable(); /* this CPU's EL2 controls (cpu.c; each secondary runs it too) */
        nr_lrs = arm64_gic_nr_lrs();
        if (nr_lrs > ARM64_MAX_LRS)
                nr_lrs = ARM64_MAX_LRS;
}

int arch_vm_setup(struct vm *vm)
{
        struct vm_arch *a = &vm->arch;
        /* VMID = the VM's number + 1 (0 unused): 8 bits, or 16 where VTCR_EL2.VS is set. */
        unsigned vmid_max = ((read_sysreg(id_aa64mmfr1_el1) >> 4) & 0xf) == 2 ? 65535 : 255;
        int err;

        if (vm->id + 1 > vmid_max) { /* a VMID another VM has: their TLB entries would mix */
                vm_stop(vm, VM_STOP_LOAD_FAILED,
                        "it is VM number %u, but this CPU has %u-bit VMIDs, enough for %u VMs: "
                        "give the config fewer VMs",
                        vm->id + 1, vmid_max == 255 ? 8 : 16, vmid_max);
                return -KEEL_ENOSPC;
        }
        err = pt_init(&a->s2, &arm64_pt_s2, &keel_palloc);
        if (err)
                return err;
        for (unsigned i = 0; i < vm->mem.count && !err; i++) {
                const struct gmem_region *r = &vm->mem.regions[i];

                err = pt_map(&a->s2, gpa_raw(r->base), r->backing, r->size, PT_RWX);
        }
        if (err) {
                pt_destroy(&a->s2);
                return err;
        }
        a->s2_ready = true;
        a->vmid = (uint16_t)(vm->id + 1);
        if (have_sve) {
                unsigned long vl = arm64_sve_vl();

                a->sve_pages = (unsigned)((34 * vl + vl / 8 + PAGE_SIZE - 1) / PAGE_SIZE);
                for (unsigned i = 0; i < vm->vcpu_count && !err; i++) {
                        struct vcpu_arch *c = &vm->vcpus[i].arch;

                        err = palloc_alloc(&keel_palloc, a->sve_pages, PAGE_SIZE, &c->sve_pa);
                        if (!err) /* zeroed: a fresh vCPU's Z, P and FFR are all zero */
                                c->sve = hva_ptr(arch_hpa_to_hva(c->sve_pa));
                }
                if (err)
                        return err;
        }
        pl011_init(&a->uart, &vm->console);
        err = mmio_bus_add(&vm->mmio, gpa(ARM64_PL011_BASE), ARM64_PL011_SIZE, &pl011_ops, &a->uart,
                           "pl011");
        return err;
}

int arch_vcpu_setup(struct vcpu *vcpu, gpa_t entry)
{
        struct vcpu_arch *c = &vcpu->arch;
        const struct gmem *m = &vcpu->vm->mem;
        void *sve = c->sve; /* allocated by arch_vm_setup, before this: kept */
        hpa_t sve_pa = c->sve_pa;

        memset(c, 0, sizeof(*c));
        c->sve = sve;
        c->sve_pa = sve_pa;
        c->pc = gpa_raw(entry);
        c->pstate = PSTATE_ENTRY;
        c->x[0] = gmem_total(m);
        c->x[1] = GUEST_RAM_BASE;
        c->el1.sp_el1 = GUEST_RAM_BASE + GUEST_STACK_TOP;
        c->el1.sctlr = SCTLR_EL1_RESET;
        c->el1.oslk = 1; /* the OS lock is locked at reset */
        c->powered = true;
        c->fresh = true;
        return 0;
}

void arm64_vcpu_power_on(struct vcpu *vcpu, uint64_t entry, uint64_t ctx)
{
        struct vcpu_arch *c = &vcpu->arch;

        c->on_entry = entry;
        c->on_ctx = ctx;
        c->on_pending = true;
        c->powered = true;
}

/* PSCI CPU_ON's entry state, applied by the vCPU itself before it loads its registers. */
static __attribute__((noinline, cold)) void power_on_reset(struct vcpu *vcpu)
{
        struct vcpu_arch *c = &vcpu->arch;
        struct spin_held held = spin_lock(&vcpu->vm->dev_lock);

        memset(c->x, 0, sizeof(c->x));
        c->x[0] = c->on_ctx;
        c->pc = c->on_entry;
        c->pstate = PSTATE_ENTRY;
        memset(&c->el1, 0, sizeof(c->el1));
        c->el1.sctlr = SCTLR_EL1_RESET;
        c->el1.oslk = 1;
        c->vmcr = 0;
        c->ap0r0 = c->ap1r0 = 0;
        c->timer_latched[0] = c->timer_latched[1] = false;
        c->fresh = true;
        c->on_pending = false;
        spin_unlock(held);
}

void arm64_kick_vcpus(struct vm *vm, uint64_t mask)
{
        for (unsigned i = 0; i < vm->vcpu_count && i < VM_MAX_VCPUS && mask; i++) {
                struct sched_entity *e = &vm->vcpus[i].sched;
                enum sched_state st;

                if (!(mask & (1ull << i)))
                        continue;
                st = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);
                /* Running: leave the guest and flush. Blocked: its CPU may idle in WFI. */
                if (st == SCHED_RUNNING || st == SCHED_BLOCKED)
                        arch_cpu_kick(__atomic_load_n(&e->cpu, __ATOMIC_RELAXED));
        }
}

/* After `vcpu` changed shared interrupt state (dev_lock held): whom to kick afterwards. */
static uint64_t kick_mask(const struct vcpu *vcpu)
{
        const struct vm *vm = vcpu->vm;

        if (vm->vcpu_count < 2 || !vm->arch.platform)
                return 0;
        return vgic_kick_mask(&vm->arch.vgic, vcpu->id);
}

/* Breakpoint / watchpoint register n (an immediate in MSR/MRS: one case per n). */
#define DBG_CASES(X) \
        X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

static void dbg_load(const struct arm64_el1_regs *r)
{
        for (unsigned n = 0; n < nr_brps; n++) {
                switch (n) {
#define X(i)                                                  \
        case i:                                               \
                write_sysreg(S2_0_C0_C##i##_4, r->dbgbvr[i]); \
                write_sysreg(S2_0_C0_C##i##_5, r->dbgbcr[i]); \
                break;
                        DBG_CASES(X)
#undef X
                }
        }
        for (unsigned n = 0; n < nr_wrps; n++) {
                switch (n) {
#define X(i)                                                  \
        case i:                                               \
                write_sysreg(S2_0_C0_C##i##_6, r->dbgwvr[i]); \
                write_sysreg(S2_0_C0_C##i##_7, r->dbgwcr[i]); \
                break;
                        DBG_CASES(X)
#undef X
                }
        }
        write_sysreg(S2_0_C0_C2_0, r->mdccint); /* MDCCINT_EL1 */
        write_sysreg(S2_0_C1_C3_4, r->osdlr);   /* OSDLR_EL1 */
        write_sysreg(S2_0_C1_C0_4, r->oslk);    /* OSLAR_EL1 */
}

static void dbg_save(struct arm64_el1_regs *r)
{
        for (unsigned n = 0; n < nr_brps; n++) {
                switch (n) {
#define X(i)                                                  \
        case i:                                               \
                r->dbgbvr[i] = read_sysreg(S2_0_C0_C##i##_4); \
                r->dbgbcr[i] = read_sysreg(S2_0_C0_C##i##_5); \
                break;
                        DBG_CASES(X)
#undef X
                }
        }
        for (unsigned n = 0; n < nr_wrps; n++) {
                switch (n) {
#define X(i)                                                  \
        case i:                                               \
                r->dbgwvr[i] = read_sysreg(S2_0_C0_C##i##_6); \
                r->dbgwcr[i] = read_sysreg(S2_0_C0_C##i##_7); \
                break;
                        DBG_CASES(X)
#undef X
                }
        }
        r->mdccint = read_sysreg(S2_0_C0_C2_0);
        r->osdlr = read_sysreg(S2_0_C1_C3_4);
        r->oslk = (read_sysreg(S2_0_C1_C1_4) >> 1) & 1; /* OSLSR_EL1.OSLK */
}

unsigned arm64_debug_slots(bool watch)
{
        return watch ? nr_wrps : nr_brps;
}

/* The EL1 registers a vCPU owns, in and out of the CPU (once per run, not per exit). */
static void el1_load(const struct arm64_el1_regs *r)
{
        write_sysreg(sp_el0, r->sp_el0);
        write_sysreg(sp_el1, r->sp_el1);
        write_sysreg(elr_el1, r->elr_el1);
        write_sysreg(spsr_el1, r->spsr_el1);
        write_sysreg(sctlr_el1, r->sctlr);
        write_sysreg(cpacr_el1, r->cpacr);
        write_sysreg(ttbr0_el1, r->ttbr0);
        write_sysreg(ttbr1_el1, r->ttbr1);
        write_sysreg(tcr_el1, r->tcr);
        write_sysreg(mair_el1, r->mair);
        write_sysreg(amair_el1, r->amair);
        write_sysreg(vbar_el1, r->vbar);
        write_sysreg(contextidr_el1, r->contextidr);
        write_sysreg(esr_el1, r->esr);
        write_sysreg(far_el1, r->far);
        write_sysreg(afsr0_el1, r->afsr0);
        write_sysreg(afsr1_el1, r->afsr1);
        write_sysreg(par_el1, r->par);
        write_sysreg(tpidr_el0, r->tpidr_el0);
        write_sysreg(tpidrro_el0, r->tpidrro_el0);
        write_sysreg(tpidr_el1, r->tpidr_el1);
        write_sysreg(cntkctl_el1, r->cntkctl);
        write_sysreg(cntv_cval_el0, r->cntv_cval);
        write_sysreg(cntv_ctl_el0, r->cntv_ctl);
        write_sysreg(cntp_cval_el0, r->cntp_cval);
        write_sysreg(cntp_ctl_el0, r->cntp_ctl);
        write_sysreg(csselr_el1, r->csselr);
        write_sysreg(mdscr_el1, r->mdscr);
        dbg_load(r);
        if (have_pauth) {
                write_sysreg(S3_0_C2_C1_0, r->apkeys[0]); /* APIAKEYLO_EL1 */
                write_sysreg(S3_0_C2_C1_1, r->apkeys[1]);
                write_sysreg(S3_0_C2_C1_2, r->apkeys[2]); /* APIBKEY */
                write_sysreg(S3_0_C2_C1_3, r->apkeys[3]);
                write_sysreg(S3_0_C2_C2_0, r->apkeys[4]); /* APDAKEY */
                write_sysreg(S3_0_C2_C2_1, r->apkeys[5]);
                write_sysreg(S3_0_C2_C2_2, r->apkeys[6]); /* APDBKEY */
                write_sysreg(S3_0_C2_C2_3, r->apkeys[7]);
                write_sysreg(S3_0_C2_C3_0, r->apkeys[8]); /* APGAKEY */
                write_sysreg(S3_0_C2_C3_1, r->apkeys[9]);
        }
        if (have_sve)
                write_sysreg(S3_0_C1_C2_0, r->zcr); /* ZCR_EL1 */
        if (have_sme)
                write_sysreg(S3_3_C13_C0_5, r->tpidr2); /* TPIDR2_EL0 */
        isb();
}

static void el1_save(struct arm64_el1_regs *r)
{
        r->sp_el0 = read_sysreg(sp_el0);
        r->sp_el1 = read_sysreg(sp_el1);
        r->elr_el1 = read_sysreg(elr_el1);
        r->spsr_el1 = read_sysreg(spsr_el1);
        r->sctlr = read_sysreg(sctlr_el1);
        r->cpacr = read_sysreg(cpacr_el1);
        r->ttbr0 = read_sysreg(ttbr0_el1);
        r->ttbr1 = read_sysreg(ttbr1_el1);
        r->tcr = read_sysreg(tcr_el1);
        r->mair = read_sysreg(mair_el1);
        r->amair = read_sysreg(amair_el1);
        r->vbar = read_sysreg(vbar_el1);
        r->contextidr = read_sysreg(contextidr_el1);
        r->esr = read_sysreg(esr_el1);
        r->far = read_sysreg(far_el1);
        r->afsr0 = read_sysreg(afsr0_el1);
        r->afsr1 = read_sysreg(afsr1_el1);
        r->par = read_sysreg(par_el1);
        r->tpidr_el0 = read_sysreg(tpidr_el0);
        r->tpidrro_el0 = read_sysreg(tpidrro_el0);
        r->tpidr_el1 = read_sysreg(tpidr_el1);
        r->cntkctl = read_sysreg(cntkctl_el1);
        r->cntv_ctl = read_sysreg(cntv_ctl_el0);
        r->cntv_cval = read_sysreg(cntv_cval_el0);
        r->cntp_ctl = read_sysreg(cntp_ctl_el0);
        r->cntp_cval = read_sysreg(cntp_cval_el0);
        r->csselr = read_sysreg(csselr_el1);
        r->mdscr = read_sysreg(mdscr_el1);
        if (have_pauth) {
                r->apkeys[0] = read_sysreg(S3_0_C2_C1_0);
                r->apkeys[1] = read_sysreg(S3_0_C2_C1_1);
                r->apkeys[2] = read_sysreg(S3_0_C2_C1_2);
                r->apkeys[3] = read_sysreg(S3_0_C2_C1_3);
                r->apkeys[4] = read_sysreg(S3_0_C2_C2_0);
                r->apkeys[5] = read_sysreg(S3_0_C2_C2_1);
                r->apkeys[6] = read_sysreg(S3_0_C2_C2_2);
                r->apkeys[7] = read_sysreg(S3_0_C2_C2_3);
                r->apkeys[8] = read_sysreg(S3_0_C2_C3_0);
                r->apkeys[9] = read_sysreg(S3_0_C2_C3_1);
        }
        if (have_sve)
                r->zcr = read_sysreg(S3_0_C1_C2_0);
        if (have_sme)
                r->tpidr2 = read_sysreg(S3_3_C13_C0_5);
        /* The timers must not fire for a vCPU that is not running. */
        write_sysreg(cntv_ctl_el0, 0);
        write_sysreg(cntp_ctl_el0, 0);
        isb();
}

/* Did the exception come from the guest's EL0 (AArch64 or AArch32)? */
static bool from_el0(const struct vcpu_arch *c)
{
        return (c->pstate & PSR_MODE32) || (c->pstate & PSR_MODE_MASK) == 0;
}

/*
 * A synchronous exception taken to the guest's EL1 vectors (the vCPU's EL1 registers are
 * loaded): ESR_EL1 = esr, FAR_EL1 = far where the class has one, ELR_EL1 = the instruction
 * that caused it, SPSR_EL1 = its PSTATE; EL1h with DAIF masked at VBAR_EL1 + the vector of
 * where it came from, PAN set unless SCTLR_EL1.SPAN, DIT kept, SSBS = SCTLR_EL1.DSSBS, as
 * the architecture enters EL1.
 */
static void inject_sync(struct vcpu_arch *c, uint64_t esr, bool has_far, uint64_t far)
{
        uint64_t mode = c->pstate & PSR_MODE_MASK, off, sctlr = read_sysreg(sctlr_el1);
        uint64_t pstate = PSTATE_ENTRY | (c->pstate & PSR_DIT);

        if (!(sctlr & SCTLR_SPAN) || (c->pstate & PSR_PAN))
                pstate |= PSR_PAN;
        if (sctlr & SCTLR_DSSBS)
                pstate |= PSR_SSBS;
        if (c->pstate & PSR_MODE32)
                off = 0x600; /* lower EL, AArch32 */
        else if (mode == PSR_MODE_EL1H)
                off = 0x200;
        else if (mode == 0x4) /* EL1t */
                off = 0x000;
        else
                off = 0x400; /* lower EL, AArch64 */
        write_sysreg(esr_el1, esr);
        if (has_far)
                write_sysreg(far_el1, far);
        write_sysreg(elr_el1, c->pc);
        write_sysreg(spsr_el1, c->pstate);
        c->pc = read_sysreg(vbar_el1) + off;
        c->pstate = pstate;
}

/* An undefined-instruction exception. */
static void inject_undef(struct vcpu_arch *c)
{
        inject_sync(c, ESR_IL | (uint64_t)EC_UNKNOWN << 26, false, 0);
}

/*
 * A guest access to an IPA with nothing behind it: what the hardware does for an access
 * nothing answers, a synchronous external abort (Arm ARM, ESR_EL1: DFSC/IFSC 0b010000, FnV = 0 so
 * FAR_EL1 holds the faulting virtual address, ISV = 0, IL = 1), taken to EL1 as an instruction
 * abort or a data abort (WnR as the access), from the current EL or from EL0, as KVM injects it;
 * or, with the VM's config unbacked = stop, the VM stops.
 */
static __attribute__((noinline, cold)) void unbacked_access(struct vcpu *vcpu, bool fetch,
                                                            uint64_t ipa)
{
        struct vcpu_arch *c = &vcpu->arch;
        struct vm *vm = vcpu->vm;
        uint32_t iss = (uint32_t)ESR_ISS(c->esr);
        uint64_t far = read_sysreg(far_el2), esr;
        const char *what = fetch                ? "instruction fetch from"
                           : (iss & DABT_S1PTW) ? "page-table walk at"
                           : (iss & DABT_WNR)   ? "data write to"
                                                : "data read from";

        if (vm->unbacked_stop) {
                vm_stop(vm, VM_STOP_OUTSIDE_RAM, "%s %#llx (outside RAM and devices) at pc %#llx",
                        what, (unsigned long long)ipa, (unsigned long long)c->pc);
                return;
        }
        if (!vm->arch.unbacked_reported) {
                struct spin_held held = spin_lock(&vm->dev_lock); /* the console */

                if (!vm->arch.unbacked_reported)
                        LOG_INFO("vm %s: %s %#llx (outside RAM and devices) at pc %#llx: "
                                 "external abort injected (first such access; config "
                                 "unbacked = stop stops the VM instead)",
                                 vm->name, what, (unsigned long long)ipa,
                                 (unsigned long long)c->pc);
                vm->arch.unbacked_reported = true;
                spin_unlock(held);
        }
        if (fetch)
                esr = (uint64_t)(from_el0(c) ? EC_IABT_LOW : EC_IABT_CUR) << 26 | ESR_IL | FSC_SEA;
        else
                esr = (uint64_t)(from_el0(c) ? EC_DABT_LOW : EC_DABT_CUR) << 26 | ESR_IL |
                      (iss & DABT_WNR) | FSC_SEA;
        inject_sync(c, esr, true, far);
}

/*
 * The length of the trapped instruction (ESR_EL2.IL): 4, or 2 for a 16-bit T32 one, which
 * AArch32 EL0 code can execute (HCR_EL2.RW makes only EL1 AArch64): a WFI or load/store.
 */
static unsigned trapped_len(const struct vcpu_arch *c)
{
        return (c->esr & ESR_IL) ? 4 : 2;
}

static uint64_t *reg_ptr(struct vcpu_arch *c, unsigned r, uint64_t *zero)
{
        *zero = 0;
        return r < 31 ? &c->x[r] : zero; /* register 31 is xzr here */
}

/* Stage-2 data abort: an MMIO access described by the syndrome, or nothing there. */
static void exit_data_abort(struct vcpu *vcpu)
{
        struct vcpu_arch *c = &vcpu->arch;
        struct vm *vm = vcpu->vm;
        uint32_t iss = (uint32_t)ESR_ISS(c->esr);
        uint64_t ipa = ((read_sysreg(hpfar_el2) >> 4) << 12) | (read_sysreg(far_el2) & 0xfff);
        unsigned size = 1u << DABT_SAS(iss);
        uint64_t val, zero, *reg;
        struct spin_held held;
        uint64_t kick;
        bool again;

        vcpu->stats.count[ARM64_EXIT_MMIO]++;
        if (!(iss & DABT_S1PTW) && (iss & DABT_ISV) && mmio_bus_find(&vm->mmio, gpa(ipa), size)) {
                reg = reg_ptr(c, DABT_SRT(iss), &zero);
                val = *reg;
                /* Every device model runs under the VM's device lock (vCPUs on other CPUs). */
                held = spin_lock(&vm->dev_lock);
                mmio_bus_access(&vm->mmio, gpa(ipa), size, iss & DABT_WNR, &val);
                again = (iss & DABT_WNR) && mmio_bus_write_again(&vm->mmio, gpa(ipa));
                kick = kick_mask(vcpu);
                spin_unlock(held);
                if (kick)
                        arm64_kick_vcpus(vm, kick);
                if (again)
                        return; /* the device served part of it: the guest executes it again */
                if (!(iss & DABT_WNR)) {
                        if ((iss & DABT_SSE) && size < 8) {
                                unsigned sh = 64 - 8 * size;

                                val = (uint64_t)((int64_t)(val << sh) >> sh);
                        }
                        if (!(iss & DABT_SF))
                                val &= 0xffffffffu;
                        *reg = val;
                }
                c->pc += trapped_len(c);
                return;
        }
        if (!(iss & DABT_S1PTW) && (iss & DABT_ISV) && mmio_bus_find(&vm->mmio, gpa(ipa), 1)) {
                vm_stop(vm, VM_STOP_BAD_INSN,
                        "device access of %u bytes at %#llx crosses the end of the device at pc "
                        "%#llx",
                        size, (unsigned long long)ipa, (unsigned long long)c->pc);
                return;
        }
        if (!(iss & DABT_S1PTW) && mmio_bus_find(&vm->mmio, gpa(ipa), 1)) {
                vm_stop(vm, VM_STOP_BAD_INSN,
                        "device access at %#llx by an instruction without a syndrome (load/store "
                        "pair, writeback or SIMD) at pc %#llx",
                        (unsigned long long)ipa, (unsigned long long)c->pc);
                return;
        }
        unbacked_access(vcpu, false, ipa);
}

/* Trapped MSR/MRS: SGIs through ICC_SGI1R_EL1. */
static __attribute__((noinline)) void exit_sysreg(struct vcpu *vcpu)
{
        struct vcpu_arch *c = &vcpu->arch;
        struct vm_arch *a = &vcpu->vm->arch;
        uint32_t iss = (uint32_t)ESR_ISS(c->esr);
        uint32_t enc = iss & 0x3ffc1e; /* Op0, Op2, Op1, CRn, CRm: everything but Rt and dir */
        bool read = iss & 1;
        uint64_t zero, *reg = reg_ptr(c, (iss >> 5) & 0x1f, &zero);
        struct spin_held held;
        uint64_t kick;

        vcpu->stats.count[ARM64_EXIT_SYSREG]++;
        if (((iss >> 20) & 3) == 2 && vcpu->vm->debug) {
                /* While gdb debugs the VM, MDCR_EL2.TDE traps the debug registers (Op0 2):
                 * gdb owns debug, the guest's accesses read 0 and are ignored. */
                if (read)
                        *reg = 0;
                c->pc += 4;
                return;
        }
        if ((enc & ~(uint32_t)(7u << 17 | 0xfu << 1)) == SYSREG_ENC(3, 0, 0, 0, 0) &&
            ((iss >> 1) & 0xf) >= 1 && ((iss >> 1) & 0xf) <= 7) {
                /* The ID space (TID3): the CPU as Keel shows it; writes are undefined. */
                if (!read) {
                        inject_undef(c);
                        return;
                }
                *reg = arm64_id_reg((iss >> 1) & 0xf, (iss >> 17) & 7);
                c->pc += 4;
                return;
        }
        switch (enc) {
        case SYSREG_ENC(3, 0, 12, 11, 5): /* ICC_SGI1R_EL1 */
                if (!read && a->platform) {
                        held = spin_lock(&vcpu->vm->dev_lock);
                        vgic_sgi1r(&a->vgic, vcpu->id, *reg);
                        kick = kick_mask(vcpu);
                        spin_unlock(held);
                        arm64_kick_vcpus(vcpu->vm, kick);
                }
                c->pc += 4;
                return;
        }
        held = spin_lock(&vcpu->vm->dev_lock); /* the VM's report-once table */
        arm64_report_once(vcpu->vm, a->unknown_sysregs, &a->unknown_sysreg_count,
                          ARRAY_SIZE(a->unknown_sysregs), enc,
                          "system register S%u_%u_C%u_C%u_%u (%s at pc %#llx) not emulated: "
                          "undefined instruction injected",
                          (iss >> 20) & 3, (iss >> 14) & 7, (iss >> 10) & 0xf, (iss >> 1) & 0xf,
                          (iss >> 17) & 7, read ? "read" : "write", (unsigned long long)c->pc);
        spin_unlock(held);
        inject_undef(c);
}

/*
 * HVC #0 and SMC #0 are SMCCC calls (function ID in x0): Keel's hypercalls (HVC only, the
 * vendor-specific hypervisor service range: vmm/hypercall.h), else psci.c's SMCCC calls.
 * Anything else, such as a non-zero immediate, gets NOT_SUPPORTED.
 */
static inline __attribute__((always_inline)) bool exit_hvc(struct vcpu *vcpu, bool smc)
{
        struct vcpu_arch *c = &vcpu->arch;
        uint64_t f = c->x[0] - KEEL_HC_ARM64_FID_BASE;
        struct hc_call call;
        bool cont;

        vcpu->stats.count[smc ? ARM64_EXIT_SMC : ARM64_EXIT_HVC]++;
        if (smc)
                c->pc += 4; /* a trapped SMC returns to itself */
        if (ESR_ISS(c->esr) & 0xffff) {
                c->x[0] = (uint64_t)KEEL_HC_SMCCC_NOT_SUPPORTED;
                return true;
        }
        if (smc || f >= KEEL_HC_COUNT) {
                arm64_smccc_call(vcpu, c->x, !smc);
                return vcpu->vm->state == VM_RUNNING;
        }
        call.nr = f;
        call.arg[0] = c->x[1];
        call.arg[1] = c->x[2];
        call.arg[2] = c->x[3];
        call.arg[3] = c->x[4];
        cont = hypercall_dispatch(vcpu, &call); /* what it shares locks itself (vcons) */
        c->x[0] = (uint64_t)call.ret;
        return cont;
}

/* Physical interrupts taken while the guest ran or Keel waited: acknowledge and dispatch. */
static void handle_irqs(struct vcpu *vcpu)
{
        struct vm_arch *a = &vcpu->vm->arch;

        for (unsigned n = 0; n < 16; n++) {
                unsigned intid = arm64_gic_ack();

                if (intid >= INTID_SPURIOUS)
                        return;
                arm64_gic_eoi(intid);
                if ((intid == INTID_VTIMER || intid == INTID_PTIMER) && a->platform) {
                        struct spin_held held = spin_lock(&vcpu->vm->dev_lock);

                        /* Stays active until the guest's EOI deactivates it (HW list reg). */
                        arm64_timer_fired(vcpu, intid);
                        spin_unlock(held);
                        continue;
                }
                /* INTID_KICK (another CPU changed this VM's interrupts or state): the run
                 * loop looks at both before the next entry; deactivated below. */
                if (intid == INTID_HYP_TIMER)
                        arm64_hyp_timer_stop();
                /* No GIC in this VM: nobody to tell. */
                if (intid == INTID_VTIMER)
                        write_sysreg(cntv_ctl_el0, read_sysreg(cntv_ctl_el0) | CNT_CTL_IMASK);
                if (intid == INTID_PTIMER)
                        write_sysreg(cntp_ctl_el0, read_sysreg(cntp_ctl_el0) | CNT_CTL_IMASK);
                arm64_gic_deactivate(intid);
        }
}

/* Console input queued for the VM (its vcons ring) into its PL011. */
static void poll_console(struct vcpu *vcpu)
{
        struct vm *vm = vcpu->vm;
        uint8_t buf[32];
        struct spin_held held;
        size_t room, n;
        uint64_t kick;

        if (!vcons_input_pending(&vm->console))
                return;
        held = spin_lock(&vm->dev_lock); /* any vCPU of the VM may poll: one at a time */
        room = pl011_rx_room(&vm->arch.uart);
        n = vcons_input_pop(&vm->console, buf, room < sizeof(buf) ? room : sizeof(buf));
        if (n)
                pl011_input(&vm->arch.uart, buf, n);
        kick = kick_mask(vcpu);
        spin_unlock(held);
        arm64_kick_vcpus(vm, kick);
}

int arch_console_getc(void)
{
        return pl011_drv_getc();
}

static bool timer_armed(uint64_t ctl)
{
        return (ctl & (CNT_CTL_ENABLE | CNT_CTL_IMASK)) == CNT_CTL_ENABLE;
}

/*
 * Counter ticks until a saved (not running) timer of a vCPU fires, UINT64_MAX if it is not
 * armed: `now` is its counter (the virtual one is the physical minus the vCPU's CNTVOFF).
 */
static uint64_t timer_wait(uint64_t ctl, uint64_t cval, uint64_t now)
{
        if (!timer_armed(ctl))
                return UINT64_MAX;
        return cval > now ? cval - now : 0;
}

static uint64_t timers_wait(const struct vcpu_arch *c)
{
        uint64_t now = arch_tsc(),
                 v = timer_wait(c->el1.cntv_ctl, c->el1.cntv_cval, now - c->cntvoff),
                 p = timer_wait(c->el1.cntp_ctl, c->el1.cntp_cval, now);

        return v < p ? v : p;
}

/*
 * Not ready: the scheduler polls blocked vCPUs on the CPU that would run them, just before it
 * idles; its idle wait must end at this vCPU's timer rather than IDLE_WAKE_MS later.
 */
static void wake_at_timers(uint64_t wait)
{
        uint64_t now = arch_tsc();

        if (wait != UINT64_MAX)
                arm64_idle_wake_by(wait > UINT64_MAX - now ? UINT64_MAX : now + wait);
}

bool arch_vcpu_ready(struct vcpu *vcpu)
{
        struct vm *vm = vcpu->vm;
        uint64_t wait;

        /* Unlocked reads (called under a run-queue lock): a stale answer is polled again. */
        if (!vcpu->arch.powered)
                return false; /* PSCI CPU_OFF, or never started: only CPU_ON wakes it */
        wait = timers_wait(&vcpu->arch);
        if (vcpu->arch.on_pending || !wait)
                return true;
        /* A VM without a GIC is blocked only in a WFI with a timer armed. */
        if (vm->arch.platform &&
            (vcons_input_pending(&vm->console) || vgic_has_pending(&vm->arch.vgic, vcpu->id)))
                return true;
        wake_at_timers(wait);
        return false;
}

/* WFI: go on at once if an interrupt is pending, else give the CPU away (blocked). */
static __attribute__((noinline)) void exit_wfi(struct vcpu *vcpu)
{
        struct vcpu_arch *c = &vcpu->arch;
        struct vm *vm = vcpu->vm;
        struct spin_held held;
        bool pending;

        vcpu->stats.count[ARM64_EXIT_WFI]++;
        if ((ESR_ISS(c->esr) & 3) == 2) { /* WFIT: FEAT_WFxT is hidden (idregs.c) */
                inject_undef(c);
                return;
        }
        if (!vm->arch.platform && !timer_armed(read_sysreg(cntv_ctl_el0)) &&
            !timer_armed(read_sysreg(cntp_ctl_el0))) {
                vm_stop(vm, VM_STOP_HALTED, "WFI with no interrupt source at pc %#llx",
                        (unsigned long long)c->pc);
                return;
        }
        c->pc += trapped_len(c);
        poll_console(vcpu);
        held = spin_lock(&vm->dev_lock);
        vcons_show_partial(&vm->console);
        vm_devices_idle(vm);
        pending = vm->arch.platform && vgic_has_pending(&vm->arch.vgic, vcpu->id);
        spin_unlock(held);
        if (pending)
                return;
        c->leave = VCPU_RUN_BLOCKED; /* its timer, if armed, is due when ready() says so */
}

/*
 * gdb (vmm/gdb.h): while a session is on, MDCR_EL2.TDE sends the guest's debug exceptions
 * here. BRK: one of gdb's breakpoints stops the VM (the pc stays at it); any other BRK, and
 * the guest's own breakpoints, watchpoints and steps, go to the guest as they would have
 * without TDE (the same syndrome, from EL0 or from the guest's own EL1).
 */
static bool gdb_hw_hit(struct vcpu *vcpu, bool watch);

static __attribute__((noinline, cold)) void exit_debug(struct vcpu *vcpu, unsigned ec)
{
        struct vcpu_arch *c = &vcpu->arch;
        uint64_t esr = c->esr;

        vcpu->stats.count[ARM64_EXIT_OTHER]++;
        if (ec == EC_BRK64 && vcpu->vm->debug && vm_debug_break(vcpu, c->pc))
                return;
        if (c->gdb_hw && (ec == EC_BKPT_LOW || ec == EC_WATCHPT_LOW) &&
            gdb_hw_hit(vcpu, ec == EC_WATCHPT_LOW))
                return;
        if (ec == EC_SOFTSTP_LOW && c->gdb_step) {
                vm_debug_stepped(vcpu);
                return;
        }
        if (ec != EC_BRK64 && !from_el0(c))
                esr += 1ull << 26; /* the "same EL" class: from the guest's EL1 */
        inject_sync(c, esr, ec == EC_WATCHPT_LOW, read_sysreg(far_el2));
}

/*
 * gdb's hardware breakpoints and watchpoints (vm->debug_hw) into the CPU's debug registers
 * for a run: breakpoints from DBGBVR0/DBGBCR0 on, watchpoints from DBGWVR0/DBGWCR0 on, every
 * other register disabled (the guest's own do not fire meanwhile). Unlinked address matches
 * at EL1 and EL0 (PMC/PAC 0b11); a watchpoint of up to 8 bytes within one doubleword selects
 * its bytes (BAS), a larger one (a power of two, aligned) masks the address (MASK).
 */
static __attribute__((noinline, cold)) void gdb_hw_load(const struct vm *vm)
{
        uint64_t bvr[16] = {0}, bcr[16] = {0}, wvr[16] = {0}, wcr[16] = {0};
        unsigned nb = 0, nw = 0;

        for (unsigned i = 0; i < vm->debug_hw_n; i++) {
                const struct vm_debug_hw *h = &vm->debug_hw[i];

                if (h->type == GDB_BP_HW) {
                        bvr[nb] = h->addr & ~3ull;
                        bcr[nb++] = 0xfull << 5 | 3u << 1 | 1; /* BAS 0b1111, PMC 0b11, E */
                        continue;
                }
                /* LSC: 01 load, 10 store, 11 both */
                wcr[nw] = (uint64_t)(h->type == GDB_WP_READ    ? 1
                                     : h->type == GDB_WP_WRITE ? 2
                                                               : 3)
                              << 3 |
                          3u << 1 | 1;
                if (h->len <= 8 && (h->addr & 7) + h->len <= 8) {
                        wvr[nw] = h->addr & ~7ull;
                        wcr[nw] |= (((1ull << h->len) - 1) << (h->addr & 7)) << 5;
                } else {
                        wvr[nw] = h->addr;
                        wcr[nw] |= 0xffull << 5 | (uint64_t)__builtin_ctzll(h->len) << 24;
                }
                nw++;
        }
        for (unsigned n = 0; n < nr_brps; n++) {
                switch (n) {
#define X(i)                                            \
        case i:                                         \
                write_sysreg(S2_0_C0_C##i##_4, bvr[i]); \
                write_sysreg(S2_0_C0_C##i##_5, bcr[i]); \
                break;
                        DBG_CASES(X)
#undef X
                }
        }
        for (unsigned n = 0; n < nr_wrps; n++) {
                switch (n) {
#define X(i)                                            \
        case i:                                         \
                write_sysreg(S2_0_C0_C##i##_6, wvr[i]); \
                write_sysreg(S2_0_C0_C##i##_7, wcr[i]); \
                break;
                        DBG_CASES(X)
#undef X
                }
        }
}

/*
 * A breakpoint or watchpoint exception while gdb's are loaded: gdb's if it matches one of
 * them (the breakpoint's pc; the watched doubleword or range holding FAR_EL2), which stops
 * the VM.
 */
static __attribute__((noinline, cold)) bool gdb_hw_hit(struct vcpu *vcpu, bool watch)
{
        const struct vm *vm = vcpu->vm;
        uint64_t at = watch ? read_sysreg(far_el2) : vcpu->arch.pc;

        for (unsigned i = 0; i < vm->debug_hw_n; i++) {
                const struct vm_debug_hw *h = &vm->debug_hw[i];
                uint64_t lo = h->len <= 8 ? h->addr & ~7ull : h->addr;

                if ((h->type != GDB_BP_HW) != watch)
                        continue;
                if (!watch && (h->addr & ~3ull) != (at & ~3ull))
                        continue;
                if (watch && (at < lo || at - lo >= (h->len <= 8 ? 8 : h->len)))
                        continue;
                vm_debug_hw_hit(vcpu, i, watch && at < h->addr ? h->addr : at);
                return true;
        }
        return false;
}

/*
 * A gdb session's state in the CPU for one run: TDE; for a step MDSCR_EL1.SS and PSTATE.SS,
 * for gdb's hardware breakpoints and watchpoints MDSCR_EL1.MDE and its registers
 * (gdb_hw_load); either with the OS lock open (a locked OS lock disables both). gdb_leave
 * puts the guest's own values back into the saved registers.
 */
static __attribute__((noinline, cold)) void gdb_enter(struct vcpu *vcpu)
{
        struct vcpu_arch *c = &vcpu->arch;
        uint64_t mdscr = c->el1.mdscr;

        write_sysreg(mdcr_el2, read_sysreg(mdcr_el2) | MDCR_TDE);
        c->gdb_step = vcpu->debug_step;
        c->gdb_hw = vcpu->vm->debug_hw_n != 0;
        if (c->gdb_hw) {
                gdb_hw_load(vcpu->vm);
                mdscr |= MDSCR_MDE;
        }
        if (c->gdb_step) {
                mdscr |= MDSCR_SS;
                c->pstate |= PSR_SS;
        }
        if (c->gdb_step || c->gdb_hw) {
                c->gdb_mdscr = c->el1.mdscr;
                c->gdb_oslk = c->el1.oslk;
                write_sysreg(mdscr_el1, mdscr);
                write_sysreg(S2_0_C1_C0_4, 0); /* OSLAR_EL1: unlock */
        }
        isb();
}

static __attribute__((noinline, cold)) void gdb_leave(struct vcpu *vcpu)
{
        struct vcpu_arch *c = &vcpu->arch;

        write_sysreg(mdcr_el2, read_sysreg(mdcr_el2) & ~MDCR_TDE);
        isb();
        if (c->gdb_step || c->gdb_hw) {
                c->el1.mdscr = c->gdb_mdscr;
                c->el1.oslk = c->gdb_oslk;
        }
        if (c->gdb_step) {
                c->pstate &= ~(uint64_t)PSR_SS;
                c->gdb_step = false;
        }
        c->gdb_hw = false;
}

static void exit_sync(struct vcpu *vcpu)
{
        struct vcpu_arch *c = &vcpu->arch;
        unsigned ec = ESR_EC(c->esr);

        switch (ec) {
        case EC_HVC64:
                exit_hvc(vcpu, false);
                return;
        case EC_SMC64:
                exit_hvc(vcpu, true);
                return;
        case EC_DABT_LOW:
                exit_data_abort(vcpu);
                return;
        case EC_WFX:
                exit_wfi(vcpu);
                return;
        case EC_SYSREG:
                exit_sysreg(vcpu);
                return;
        case EC_SME: /* SME is hidden (idregs.c) and trapped: its instructions are undefined */
                vcpu->stats.count[ARM64_EXIT_OTHER]++;
                inject_undef(c);
                return;
        case EC_IABT_LOW: /* nothing executable there: RAM is mapped RWX, devices are not */
                vcpu->stats.count[ARM64_EXIT_MMIO]++;
                unbacked_access(vcpu, true,
                                ((read_sysreg(hpfar_el2) >> 4) << 12) |
                                    (read_sysreg(far_el2) & 0xfff));
                return;
        }
        if (ec == EC_BKPT_LOW || ec == EC_SOFTSTP_LOW || ec == EC_WATCHPT_LOW || ec == EC_BRK64) {
                exit_debug(vcpu, ec);
                return;
        }
        vcpu->stats.count[ARM64_EXIT_OTHER]++;
        vm_stop(vcpu->vm, VM_STOP_UNHANDLED, "exception class %#x (esr %#llx) at pc %#llx", ec,
                (unsigned long long)c->esr, (unsigned long long)c->pc);
}

/*
 * The counter for an exit's cost: CNTPCT_EL0, without an ISB (one instruction on every exit's
 * path, twice): on an out-of-order CPU the read may be taken a few instructions early.
 */
static inline __attribute__((always_inline)) uint64_t exit_counter(void)
{
        return read_sysreg(cntpct_el0);
}

/*
 * Generic reasons of the exits (the classes the handlers count): a synchronous exit's by its
 * exception class, the others at 64 + the vector's kind. A table, not a switch: this is on
 * every exit's path (docs/benchmarks.md).
 */
static const uint8_t exit_reasons[64 + 8] = {
    [EC_HVC64] = EXIT_HYPERCALL,
    [EC_SMC64] = EXIT_SMC,
    [EC_DABT_LOW] = EXIT_MMIO,
    [EC_IABT_LOW] = EXIT_MMIO,
    [EC_WFX] = EXIT_HALT,
    [EC_SYSREG] = EXIT_SYSREG,
    [64 + ARM64_KIND_IRQ] = EXIT_INTR,
    [64 + ARM64_KIND_FIQ] = EXIT_INTR, /* the rest: other */
};

/* Tracing is on: the exit's entry. The trace's code: the EC of a synchronous exit, else
 * 0x100 + the vector's kind (1 IRQ, 2 FIQ, 3 SError, 4 AArch32). */
static __attribute__((noinline, cold)) void exit_traced(struct vcpu *vcpu, unsigned kind,
                                                        enum exit_reason r, uint64_t at,
                                                        uint64_t cost, uint64_t pc)
{
        uint64_t esr = vcpu->arch.esr;

        exit_trace_record(&vcpu->stats, r, at, cost, pc, kind == ARM64_KIND_SYNC ? esr : 0,
                          kind == ARM64_KIND_SYNC ? ESR_EC(esr) : 0x100 + kind);
}

/* Statistics of the exit (vmm/exitstats.h), at the end of its handling. */
static inline __attribute__((always_inline)) void exit_done(struct vcpu *vcpu, unsigned kind,
                                                            uint64_t at, uint64_t pc)
{
        unsigned i = kind == ARM64_KIND_SYNC ? ESR_EC(vcpu->arch.esr) : 64 + (kind & 7);
        enum exit_reason r = (enum exit_reason)exit_reasons[i];
        uint64_t cost = exit_counter() - at;

        if (exit_stats_end(&vcpu->stats, r, cost))
                exit_traced(vcpu, kind, r, at, cost, pc);
}

/* CNTHP for the slice's end or the pollers' next time (keel/irq.h), whichever is first. */
static void hyp_timer_rearm(uint64_t deadline)
{
        uint64_t poll = irq_poll_next();

        write_sysreg(cnthp_cval_el2, poll < deadline ? poll : deadline);
        write_sysreg(cnthp_ctl_el2, CNT_CTL_ENABLE);
        isb();
}

enum vcpu_run_result arch_vcpu_run(struct vcpu *vcpu, uint64_t deadline)
{
        struct vcpu_arch *c = &vcpu->arch;
        struct vm *vm = vcpu->vm;
        struct vm_arch *a = &vm->arch;
        bool debug;

        if (__atomic_load_n(&c->on_pending, __ATOMIC_ACQUIRE))
                power_on_reset(vcpu);
        if (!c->powered)
                return VCPU_RUN_BLOCKED; /* off (PSCI): nothing loaded, nothing to save */
        c->deadline = deadline;
        c->leave = 0;
        poll_console(vcpu);

        write_sysreg(vttbr_el2, (uint64_t)a->vmid << 48 | hpa_raw(a->s2.root));
        write_sysreg(hcr_el2, hcr_guest);
        isb();
        __asm__ volatile("tlbi vmalls12e1\n dsb nsh\n isb" ::: "memory");
        write_sysreg(cntvoff_el2, c->cntvoff); /* before its timer's compare value */
        el1_load(&c->el1);
        debug = vm->debug;
        if (__builtin_expect(debug, 0))
                gdb_enter(vcpu);
        if (c->fresh) {
                arm64_fp_clear(); /* nothing of the previous VM's FP/SIMD state */
                c->fresh = false;
        } else {
                arm64_fp_load(&c->fp);
        }
        if (c->sve)
                arm64_sve_load(c->sve); /* after V: Z0-Z31 hold V0-V31 */
        if (a->platform)
                arm64_vgic_load(vcpu);
        /* Keel's timer ends the slice (an IRQ exit at the deadline at the latest), or comes
         * sooner for the pollers (keel/irq.h, arch_timer_by). */
        arm64_this_cpu()->run_until = deadline;
        hyp_timer_rearm(deadline);
        while (vm->state == VM_RUNNING && !c->leave) {
                uint64_t at, pc;
                unsigned kind;

                if (a->platform) {
                        /* keel/irq.h: a poll time with slack, served by this entry. */
                        if (irq_poll_entry())
                                hyp_timer_rearm(deadline);
                        arm64_vgic_flush(vcpu, nr_lrs);
                }
                kind = arm64_guest_run(c);
                at = exit_counter(); /* Keel's handling starts: the exit's cost from here */
                pc = c->pc;
                vcpu->exits++;
                if (a->platform)
                        arm64_vgic_sync(vcpu);
                switch (kind) {
                case ARM64_KIND_SYNC:
                        exit_sync(vcpu);
                        /* A stepped instruction Keel completed (or turned into an exception
                         * for the guest) is a finished step: no step exception follows. */
                        if (__builtin_expect(c->gdb_step, 0) && c->pc != pc &&
                            vm->state == VM_RUNNING)
                                vm_debug_stepped(vcpu);
                        break;
                case ARM64_KIND_IRQ:
                case ARM64_KIND_FIQ:
                        vcpu->stats.count[ARM64_EXIT_IRQ]++;
                        handle_irqs(vcpu);
                        irq_poll_deferred(); /* keel/irq.h: what a hold waits for */
                        poll_console(vcpu);
                        if (arch_tsc() >= deadline)
                                c->leave = VCPU_RUN_PREEMPTED;
                        else if (!(read_sysreg(cnthp_ctl_el2) & CNT_CTL_ENABLE))
                                hyp_timer_rearm(deadline); /* it came for the pollers */
                        break;
                case ARM64_KIND_SERROR:
                        vcpu->stats.count[ARM64_EXIT_OTHER]++;
                        vm_stop(vm, VM_STOP_UNHANDLED, "SError (esr %#llx) at pc %#llx",
                                (unsigned long long)c->esr, (unsigned long long)c->pc);
                        break;
                default:
                        vcpu->stats.count[ARM64_EXIT_OTHER]++;
                        vm_stop(vm, VM_STOP_UNHANDLED, "exception from AArch32 at pc %#llx",
                                (unsigned long long)c->pc);
                        break;
                }
                exit_done(vcpu, kind, at, pc);
        }
        arm64_hyp_timer_stop();
        arm64_this_cpu()->run_until = 0;
        if (a->platform)
                arm64_vgic_put(vcpu);
        el1_save(&c->el1);
        if (!c->gdb_hw) /* else gdb's are in the CPU; the guest cannot change its own (TDE) */
                dbg_save(&c->el1);
        if (__builtin_expect(debug, 0))
                gdb_leave(vcpu);
        arm64_fp_save(&c->fp);
        if (c->sve)
                arm64_sve_save(c->sve);
        write_sysreg(hcr_el2, HCR_RW);
        isb();
        if (vm->state != VM_RUNNING) {
                /* Its other vCPUs leave their guests now rather than at their slices' ends. */
                if (vm->vcpu_count > 1)
                        arm64_kick_vcpus(vm,
                                         (~0ull >> (64 - vm->vcpu_count)) & ~(1ull << vcpu->id));
                return VCPU_RUN_LEFT;
        }
        CHECK(c->leave == VCPU_RUN_BLOCKED || c->leave == VCPU_RUN_PREEMPTED);
        return (enum vcpu_run_result)c->leave;
}

void arch_vcpu_exit_summary(const struct vcpu *vcpu, char *buf, size_t len)
{
        static const char *const names[EXIT_REASONS] = {
            [EXIT_HYPERCALL] = "hvc", [EXIT_SMC] = "smc",       [EXIT_MMIO] = "mmio",
            [EXIT_HALT] = "wfi",      [EXIT_SYSREG] = "sysreg", [EXIT_INTR] = "irq",
            [EXIT_OTHER] = "other",
        };

        exit_stats_summary(&vcpu->stats, names, buf, len);
}

const struct pt *arch_vm_guest_pt(const struct vm *vm)
{
        return &vm->arch.s2;
}

void arch_vm_teardown(struct vm *vm)
{
        struct vm_arch *a = &vm->arch;

        if (a->s2_ready) {
                /*
                 * Every CPU the VM ran on may hold its translations (inner shareable: the
                 * broadcast form); the VMID is the VM slot's, reused by its next VM.
                 */
                write_sysreg(vttbr_el2, (uint64_t)a->vmid << 48 | hpa_raw(a->s2.root));
                isb();
                __asm__ volatile("dsb ishst\n tlbi vmalls12e1is\n dsb ish\n isb" ::: "memory");
                write_sysreg(vttbr_el2, 0);
                pt_destroy(&a->s2);
                a->s2_ready = false;
        }
        for (unsigned i = 0; i < vm->vcpu_count; i++) {
                struct vcpu_arch *c = &vm->vcpus[i].arch;

                if (c->sve)
                        CHECK(palloc_free(&keel_palloc, c->sve_pa, a->sve_pages) == 0);
                c->sve = NULL;
        }
        if (a->vgic_cpus_pages)
                CHECK(palloc_free(&keel_palloc, a->vgic_cpus_pa, a->vgic_cpus_pages) == 0);
        a->vgic_cpus_pages = 0;
        a->vgic.cpu = NULL;
        a->vgic.nr_vcpus = 0;
}

bool arch_vm_probe_summary(const struct vm *vm, char *buf, size_t len)
{
        unsigned n = __atomic_load_n(&vm->arch.unknown_sysreg_count, __ATOMIC_ACQUIRE);

        if (!n)
                return false;
        snprintf(buf, len, "%s%u system register%s not emulated (each reported above)",
                 n >= ARRAY_SIZE(vm->arch.unknown_sysregs) ? "at least " : "", n,
                 n == 1 ? "" : "s");
        return true;
}
