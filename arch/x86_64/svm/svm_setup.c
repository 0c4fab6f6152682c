/*
 * The AMD SVM backend's set-up (svm.c has the exit path): detection, enabling on each CPU
 * with the shared I/O and MSR permission maps, and a new vCPU's VMCB. Built for size, out of
 * the exit path's -O2 files (arch/x86_64/CMakeLists.txt).
 */
#include <stdio.h>
#include <string.h>

#include <arch/cpu.h>
#include <arch/swregs.h>
#include <arch/x86.h>
#include <arch/x86_vcpu.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/palloc.h>
#include <keel/smp.h>
#include <vmm/vm.h>

#include "svm.h"
#include "../x86_snap.h"

#define IOPM_PAGES  3
#define MSRPM_PAGES 2

struct svm_caps svm_found;

static hpa_t iopm_pa, msrpm_pa; /* shared by all CPUs */
/* Per CPU (arch_cpu_index, keel/smp.h; from the boot CPU's enable): VM_HSAVE_PA's page, and
 * the VMCB VMSAVE/VMLOAD keep Keel's state in (svm.h). */
static hpa_t *hsave_pa;
hpa_t *svm_host_vmcb_pa;

int svm_probe(char *why, size_t len)
{
        struct svm_cpuid id = {0};
        uint32_t r[4];

        x86_cpuid(0x80000000, 0, r);
        id.max_ext_leaf = r[0];
        if (id.max_ext_leaf >= 0x80000001) {
                x86_cpuid(0x80000001, 0, r);
                id.ext1_ecx = r[2];
                id.ext1_edx = r[3];
        }
        if (id.max_ext_leaf >= 0x8000000a) {
                x86_cpuid(0x8000000a, 0, r);
                id.svm_eax = r[0];
                id.svm_ebx = r[1];
                id.svm_edx = r[3];
        }
        /* VM_CR exists only where SVM does. */
        if (id.ext1_ecx & SVM_CPUID_SVM)
                id.vm_cr = x86_rdmsr(MSR_VM_CR);
        return svm_check_caps(&id, &svm_found, why, len);
}

void svm_describe(char *buf, size_t len)
{
        snprintf(buf, len,
                 "AMD SVM revision %u, %u ASIDs, nested paging (%s pages), NRIP-save %s, decode "
                 "assists %s, VMCB clean bits %s, flush-by-ASID %s",
                 svm_found.revision, svm_found.asids, svm_found.npt_1g ? "1 GiB" : "2 MiB",
                 svm_found.nrips ? "yes" : "no (next RIP decoded)",
                 svm_found.decode_assists ? "yes" : "no", svm_found.clean_bits ? "yes" : "no",
                 svm_found.flush_by_asid ? "yes" : "no");
}

/* Let the guest read (`reads`) and write (`writes`) `msr` without an exit. */
static void msrpm_pass_through(uint8_t *pm, uint32_t msr, bool reads, bool writes)
{
        uint32_t base, bit;

        if (msr < 0x2000) {
                base = 0;
        } else if (msr >= 0xc0000000 && msr < 0xc0002000) {
                base = 0x800;
                msr -= 0xc0000000;
        } else {
                CHECK(msr >= 0xc0010000 && msr < 0xc0012000);
                base = 0x1000;
                msr -= 0xc0010000;
        }
        bit = msr * 2; /* read bit, then write bit */
        pm[base + bit / 8] &= (uint8_t) ~(((reads ? 1u : 0) | (writes ? 2u : 0)) << (bit % 8));
}

/* On each CPU (the boot CPU first, which also builds the shared permission maps). */
void svm_enable(void)
{
        /*
         * The guest's own: switched by VMLOAD/VMSAVE per exit, or (TSC_AUX) by Keel per run
         * (svm_vendor.swregs; docs/x86-state.md). Writes of the addresses and of TSC_AUX exit,
         * for the CPU's own checks (handle_msr, x86_msr_write): QEMU's TCG leaves them out.
         */
        static const uint32_t pass_through[] = {
            MSR_STAR, MSR_SFMASK, MSR_SYSENTER_CS, MSR_SYSENTER_ESP, MSR_SYSENTER_EIP,
        };
        static const uint32_t pass_reads[] = {
            MSR_FS_BASE, MSR_GS_BASE, MSR_KERNEL_GS_BASE, MSR_LSTAR, MSR_CSTAR,
        };
        unsigned cpu = arch_cpu_index();
        uint8_t *msrpm;

        if (cpu == 0) {
                hsave_pa = percpu_table(sizeof(*hsave_pa), "host save areas");
                svm_host_vmcb_pa = percpu_table(sizeof(*svm_host_vmcb_pa), "host VMCBs");
        }
        hsave_pa[cpu] = x86_alloc_or_panic(1, "SVM host save area");
        svm_host_vmcb_pa[cpu] = x86_alloc_or_panic(1, "SVM host VMCB");
        x86_wrmsr(MSR_EFER, x86_rdmsr(MSR_EFER) | X86_EFER_SVME);
        x86_wrmsr(MSR_VM_HSAVE_PA, hpa_raw(hsave_pa[cpu]));
        if (cpu)
                return;
        iopm_pa = x86_alloc_or_panic(IOPM_PAGES, "SVM I/O permission map");
        msrpm_pa = x86_alloc_or_panic(MSRPM_PAGES, "SVM MSR permission map");
        /* Intercept every port and every MSR except the pass-through list. */
        memset(hva_ptr(arch_hpa_to_hva(iopm_pa)), 0xff, IOPM_PAGES * PAGE_SIZE);
        msrpm = hva_ptr(arch_hpa_to_hva(msrpm_pa));
        memset(msrpm, 0xff, MSRPM_PAGES * PAGE_SIZE);
        for (unsigned i = 0; i < ARRAY_SIZE(pass_through); i++)
                msrpm_pass_through(msrpm, pass_through[i], true, true);
        for (unsigned i = 0; i < ARRAY_SIZE(pass_reads); i++)
                msrpm_pass_through(msrpm, pass_reads[i], true, false);
        /* Without RDTSCP and RDPID the CPU has no TSC_AUX: intercepted, #GP (x86_msr_*). */
        if (x86_swregs_have_tsc_aux())
                msrpm_pass_through(msrpm, MSR_TSC_AUX, true, false);
}

int svm_vcpu_init(struct vcpu *vcpu, const struct x86_entry_state *st)
{
        struct vm *vm = vcpu->vm;
        struct vmcb *vmcb;
        hpa_t pa;
        int err;

        err = palloc_alloc(&keel_palloc, 1, PAGE_SIZE, &pa);
        if (err)
                return err;
        vmcb = hva_ptr(arch_hpa_to_hva(pa));
        vcpu->arch.vmcb = vmcb;
        vcpu->arch.vmcb_pa = pa;
        vcpu->arch.launched = false;
        vmcb->control.tsc_offset = vcpu->arch.tsc_offset; /* 0, or as a restore set it */

        vmcb->control.intercept1 = SVM_INTERCEPT_INTR | SVM_INTERCEPT_NMI | SVM_INTERCEPT_SMI |
                                   SVM_INTERCEPT_INIT | SVM_INTERCEPT_RDPMC | SVM_INTERCEPT_CPUID |
                                   SVM_INTERCEPT_INVD | SVM_INTERCEPT_HLT | SVM_INTERCEPT_INVLPGA |
                                   SVM_INTERCEPT_IOIO | SVM_INTERCEPT_MSR | SVM_INTERCEPT_TASKSW |
                                   SVM_INTERCEPT_SHUTDOWN;
        /*
         * SVM is hidden from the guest: every SVM instruction is intercepted and gets #UD. So
         * do MONITOR/MWAIT(X) and RDPRU, which CPUID hides (they would wait on, or read, the
         * physical CPU), and RDPMC gets #GP: no PMU is exposed (docs/x86-state.md).
         */
        vmcb->control.intercept2 = SVM_INTERCEPT_VMRUN | SVM_INTERCEPT_VMMCALL |
                                   SVM_INTERCEPT_VMLOAD | SVM_INTERCEPT_VMSAVE |
                                   SVM_INTERCEPT_STGI | SVM_INTERCEPT_CLGI | SVM_INTERCEPT_SKINIT |
                                   SVM_INTERCEPT_WBINVD | SVM_INTERCEPT_MONITOR |
                                   SVM_INTERCEPT_MWAIT | SVM_INTERCEPT_RDPRU;
        vmcb->control.iopm_base_pa = hpa_raw(iopm_pa);
        vmcb->control.msrpm_base_pa = hpa_raw(msrpm_pa);
        /* One ASID per VM; with more VMs than ASIDs they share and flush on every entry. */
        vmcb->control.asid = 1 + (vm->arch.asid - 1) % (svm_found.asids - 1);
        vmcb->control.tlb_control = 1;      /* flush everything on the first entry */
        vmcb->control.int_ctl = 1ull << 24; /* V_INTR_MASKING: host IF governs host interrupts */
        vmcb->control.np_control = 1;
        vmcb->control.n_cr3 = hpa_raw(vm->arch.npt.root);

        x86_entry_save(st, &vmcb->save);
        return 0;
}

void svm_vcpu_free(struct vcpu *vcpu)
{
        int err = palloc_free(&keel_palloc, vcpu->arch.vmcb_pa, 1);

        CHECK(err == 0);
        vcpu->arch.vmcb = NULL;
}
