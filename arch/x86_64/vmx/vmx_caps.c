/*
 * VT-x feature check and control computation (pure C, host-tested in
 * tests/unit/test_vmx_caps.c): every VMCS control value comes from the capability MSRs (the
 * TRUE_* ones when IA32_VMX_BASIC bit 55 says they exist), never from constants, so the
 * bits a CPU forces to 1 are set and no bit it forbids is.
 */
#include <stdio.h>

#include <arch/pt_x86.h>
#include <arch/x86.h>
#include <keel/errno.h>
#include <keel/strlist.h>

#include "vmx.h"

bool vmx_ctl(uint64_t msr, uint32_t want, uint32_t optional, uint32_t *out)
{
        uint32_t must1 = (uint32_t)msr, may1 = (uint32_t)(msr >> 32);

        if (want & ~may1)
                return false;
        *out = must1 | want | (optional & may1);
        return true;
}

static int refuse(char *why, size_t len, const char *what)
{
        snprintf(why, len, "this CPU's VT-x lacks %s, which Keel needs", what);
        return -KEEL_ENODEV;
}

int vmx_check_caps(const struct vmx_msrs *m, struct vmx_caps *caps, char *why, size_t len)
{
        bool true_ctls = m->basic & VMX_BASIC_TRUE_CTLS;
        uint64_t pin = true_ctls ? m->true_pin : m->pin, proc = true_ctls ? m->true_proc : m->proc;
        uint64_t exit = true_ctls ? m->true_exit : m->exit;
        uint64_t entry = true_ctls ? m->true_entry : m->entry;

        *caps = (struct vmx_caps){.revision = (uint32_t)m->basic & 0x7fffffff};
        if (!vmx_ctl(pin, PIN_EXT_INTR | PIN_NMI, PIN_PREEMPT | PIN_VIRT_NMI, &caps->pin))
                return refuse(why, len, "external-interrupt and NMI exiting");
        /* NMI-window exiting is set per entry; it exists only with virtual NMIs. */
        caps->virt_nmi = (caps->pin & PIN_VIRT_NMI) && ((uint32_t)(proc >> 32) & PROC_NMI_WINDOW);
        if (!caps->virt_nmi)
                caps->pin &= ~PIN_VIRT_NMI | (uint32_t)pin;
        /*
         * CR8 accesses exit where allowed: they would change Keel's own TPR. MONITOR, MWAIT
         * and RDPMC always exit (#UD, #UD, #GP: CPUID hides them), or a guest would wait on,
         * or read, the physical CPU. MOV-DR exiting (KVM needs it too) is set per run, only
         * while gdb has hardware breakpoints in the VM (vmx.c).
         */
        if (!vmx_ctl(proc,
                     PROC_HLT | PROC_MWAIT | PROC_RDPMC | PROC_MONITOR | PROC_MOV_DR |
                         PROC_IO_BITMAPS | PROC_MSR_BITMAPS | PROC_SECONDARY | PROC_TSC_OFFSET,
                     PROC_CR8_LOAD | PROC_CR8_STORE, &caps->proc))
                return refuse(
                    why, len,
                    "HLT, MWAIT, MONITOR, RDPMC and MOV-DR exiting, TSC offsetting, I/O and MSR "
                    "bitmaps or secondary controls");
        caps->proc &= ~PROC_MOV_DR | (uint32_t)proc;
        /* With EPT the guest owns CR3 and INVLPG: drop the exits the CPU lets us drop. */
        caps->proc &= ~((PROC_CR3_LOAD | PROC_CR3_STORE | PROC_INVLPG) & ~(uint32_t)proc);
        /* WBINVD exits where it can: a guest's cache flush must not stall the host's CPU. */
        if (!vmx_ctl(m->proc2, PROC2_EPT,
                     PROC2_VPID | PROC2_UNRESTRICTED | PROC2_RDTSCP | PROC2_INVPCID | PROC2_XSAVES |
                         PROC2_WBINVD,
                     &caps->proc2))
                return refuse(why, len, "EPT (extended page tables)");
        if (!(m->ept_vpid & EPT_CAP_WALK4) || !(m->ept_vpid & EPT_CAP_WB))
                return refuse(why, len, "4-level EPT with write-back paging structures");
        /*
         * The guest's DR7 (and DEBUGCTL) in the VMCS: the TRUE controls let "save / load debug
         * controls" be 0, and then the guest's DR7 would be the 0x400 every exit leaves.
         */
        if (!vmx_ctl(exit, EXIT_HOST_64 | EXIT_SAVE_EFER | EXIT_LOAD_EFER | EXIT_SAVE_DEBUG,
                     EXIT_SAVE_PAT | EXIT_LOAD_PAT | EXIT_SAVE_PREEMPT, &caps->exit))
                return refuse(why, len, "64-bit hosts, EFER and DR7 switching on VM exit");
        if (!vmx_ctl(entry, ENTRY_LOAD_EFER | ENTRY_LOAD_DEBUG, ENTRY_LOAD_PAT, &caps->entry) ||
            !((uint32_t)(entry >> 32) & ENTRY_IA32E))
                return refuse(why, len, "64-bit guests, EFER and DR7 loading on VM entry");
        caps->entry &= ~ENTRY_IA32E; /* set per entry from the guest's EFER.LMA */
        /* Without the save at exits each entry restarts the count from the value Keel wrote:
         * then the timer only ends a stretch without exits that is longer than the slice. */
        caps->preempt = caps->pin & PIN_PREEMPT;
        caps->preempt_shift = (uint8_t)(m->misc & 0x1f);
        caps->unrestricted = caps->proc2 & PROC2_UNRESTRICTED;
        caps->vpid = (caps->proc2 & PROC2_VPID) && (m->ept_vpid & VPID_CAP_INVVPID) &&
                     (m->ept_vpid & VPID_CAP_INVVPID_ALL);
        if (!caps->vpid)
                caps->proc2 &= ~PROC2_VPID;
        caps->ept_2m = m->ept_vpid & EPT_CAP_2M;
        /* 1 GiB leaves only with 2 MiB ones: a split of a 1 GiB leaf makes 2 MiB leaves. */
        caps->ept_1g = caps->ept_2m && (m->ept_vpid & EPT_CAP_1G);
        caps->invept = (m->ept_vpid & EPT_CAP_INVEPT) && (m->ept_vpid & EPT_CAP_INVEPT_ALL);
        caps->invvpid = caps->vpid;
        caps->cr0_fixed0 = m->cr0_fixed0;
        caps->cr0_fixed1 = m->cr0_fixed1;
        caps->cr4_fixed0 = m->cr4_fixed0;
        caps->cr4_fixed1 = m->cr4_fixed1;
        if (caps->unrestricted) /* real mode and unpaged guests are allowed */
                caps->cr0_fixed0 &= ~(X86_CR0_PE | X86_CR0_PG);
        return 0;
}

const char *vmx_insn_error_name(uint32_t err)
{
        /* By number (SDM vol. 3, 31.4, "VM Instruction Error Numbers"; keel/strlist.h); an
         * empty entry has no name. */
        static const char names[] =
            "\0"                                                       /* 0 */
            "VMCALL executed in VMX root operation\0"                  /* 1 */
            "VMCLEAR with invalid physical address\0"                  /* 2 */
            "VMCLEAR with VMXON pointer\0"                             /* 3 */
            "VMLAUNCH with non-clear VMCS\0"                           /* 4 */
            "VMRESUME with non-launched VMCS\0"                        /* 5 */
            "VMRESUME after VMXOFF\0"                                  /* 6 */
            "VM entry with invalid control field(s)\0"                 /* 7 */
            "VM entry with invalid host-state field(s)\0"              /* 8 */
            "VMPTRLD with invalid physical address\0"                  /* 9 */
            "VMPTRLD with VMXON pointer\0"                             /* 10 */
            "VMPTRLD with incorrect VMCS revision identifier\0"        /* 11 */
            "VMREAD/VMWRITE from/to unsupported VMCS component\0"      /* 12 */
            "VMWRITE to read-only VMCS component\0"                    /* 13 */
            "\0"                                                       /* 14 */
            "VMXON executed in VMX root operation\0"                   /* 15 */
            "VM entry with invalid executive-VMCS pointer\0"           /* 16 */
            "VM entry with non-launched executive VMCS\0"              /* 17 */
            "VM entry with executive-VMCS pointer not VMXON pointer\0" /* 18 */
            "\0"                                                       /* 19 */
            "\0"                                                       /* 20 */
            "\0"                                                       /* 21 */
            "\0"                                                       /* 22 */
            "\0"                                                       /* 23 */
            "\0"                                                       /* 24 */
            "\0"                                                       /* 25 */
            "VM entry with events blocked by MOV SS\0"                 /* 26 */
            "\0"                                                       /* 27 */
            "invalid operand to INVEPT/INVVPID";                       /* 28, the last */
        const char *name = keel_strlist_at(names, 29, err);

        return name && *name ? name : "unknown";
}

#define AR_TYPE(ar) ((ar)&0xf)
#define AR_S        (1u << 4)
#define AR_P        (1u << 7)
#define AR_L        (1u << 13)
#define AR_DB       (1u << 14)
#define AR_UNUSABLE (1u << 16)
#define RFLAGS_RES0 (0xffffffffffc00000ull | (1u << 15) | (1u << 5) | (1u << 3))

const char *vmx_check_guest_state(const struct vmx_guest_state *g, const struct vmx_caps *caps,
                                  const char **rule)
{
        bool ia32e = g->entry_ctls & ENTRY_IA32E;

#define FAIL(field, text)     \
        do {                  \
                *rule = text; \
                return field; \
        } while (0)
        if ((g->cr0 & caps->cr0_fixed0) != caps->cr0_fixed0 || (g->cr0 & ~caps->cr0_fixed1))
                FAIL("GUEST_CR0", "bits fixed by IA32_VMX_CR0_FIXED0/1");
        if ((g->cr0 & X86_CR0_PG) && !(g->cr0 & X86_CR0_PE))
                FAIL("GUEST_CR0", "PG without PE");
        if ((g->cr4 & caps->cr4_fixed0) != caps->cr4_fixed0 || (g->cr4 & ~caps->cr4_fixed1))
                FAIL("GUEST_CR4", "bits fixed by IA32_VMX_CR4_FIXED0/1");
        if (ia32e && (!(g->cr0 & X86_CR0_PG) || !(g->cr4 & X86_CR4_PAE)))
                FAIL("GUEST_CR0/CR4", "an IA-32e mode guest needs CR0.PG and CR4.PAE");
        if (!!(g->efer & X86_EFER_LMA) != ia32e)
                FAIL("GUEST_EFER", "LMA must equal the IA-32e mode guest entry control");
        if ((g->cr0 & X86_CR0_PG) && !!(g->efer & X86_EFER_LME) != !!(g->efer & X86_EFER_LMA))
                FAIL("GUEST_EFER", "with paging on, LME must equal LMA");
        if ((g->rflags & RFLAGS_RES0) || !(g->rflags & 2))
                FAIL("GUEST_RFLAGS", "reserved bits (bit 1 must be 1, 3/5/15/22-63 zero)");
        if (!(g->cs_ar & AR_P) || !(g->cs_ar & AR_S) || !(AR_TYPE(g->cs_ar) & 8))
                FAIL("GUEST_CS_AR", "CS must be a present code segment");
        if (ia32e && (g->cs_ar & AR_L) && (g->cs_ar & AR_DB))
                FAIL("GUEST_CS_AR", "L and D/B both set");
        if (!(g->ss_ar & AR_UNUSABLE) && (g->ss_sel & 3) != (g->cs_sel & 3) && !caps->unrestricted)
                FAIL("GUEST_SS_SEL", "SS.RPL must equal CS.RPL");
        if ((g->tr_ar & AR_UNUSABLE) || !(g->tr_ar & AR_P) || (g->tr_ar & AR_S) ||
            (AR_TYPE(g->tr_ar) != 11 && (ia32e || AR_TYPE(g->tr_ar) != 3)) || (g->tr_sel & 4))
                FAIL("GUEST_TR_AR", "TR must be a present busy TSS from the GDT");
        if (!(g->ldtr_ar & AR_UNUSABLE) && (AR_TYPE(g->ldtr_ar) != 2 || !(g->ldtr_ar & AR_P)))
                FAIL("GUEST_LDTR_AR", "LDTR must be unusable or a present LDT");
        if (g->activity > 3)
                FAIL("GUEST_ACTIVITY_STATE", "not a defined activity state");
#undef FAIL
        *rule = NULL;
        return NULL;
}
