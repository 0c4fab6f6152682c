/*
 * Intel VT-x: VMCS field encodings, control bits and exit reasons Keel uses (Intel SDM vol. 3C
 * appendix B and C, chapters 24-27), and the pure capability logic of vmx_caps.c.
 */
#ifndef ARCH_X86_VMX_H
#define ARCH_X86_VMX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Capability and control MSRs. */
#define MSR_FEATURE_CONTROL     0x03au
#define FEATURE_CONTROL_LOCK    (1ull << 0)
#define FEATURE_CONTROL_VMX_SMX (1ull << 1)
#define FEATURE_CONTROL_VMX     (1ull << 2)
#define MSR_VMX_BASIC           0x480u
#define MSR_VMX_PINBASED        0x481u
#define MSR_VMX_PROCBASED       0x482u
#define MSR_VMX_EXIT            0x483u
#define MSR_VMX_ENTRY           0x484u
#define MSR_VMX_MISC            0x485u
#define MSR_VMX_CR0_FIXED0      0x486u
#define MSR_VMX_CR0_FIXED1      0x487u
#define MSR_VMX_CR4_FIXED0      0x488u
#define MSR_VMX_CR4_FIXED1      0x489u
#define MSR_VMX_PROCBASED2      0x48bu
#define MSR_VMX_EPT_VPID_CAP    0x48cu
#define MSR_VMX_TRUE_PINBASED   0x48du
#define MSR_VMX_TRUE_PROCBASED  0x48eu
#define MSR_VMX_TRUE_EXIT       0x48fu
#define MSR_VMX_TRUE_ENTRY      0x490u
#define VMX_BASIC_TRUE_CTLS     (1ull << 55)
#define X86_CR4_VMXE            (1ull << 13)
#define CPUID1_ECX_VMX          (1u << 5)
#define CPUID1_ECX_XSAVE        (1u << 26)
#define X86_CR4_OSXSAVE         (1ull << 18)

/* Pin-based controls. */
#define PIN_EXT_INTR (1u << 0)
#define PIN_NMI      (1u << 3)
#define PIN_VIRT_NMI (1u << 5)
#define PIN_PREEMPT  (1u << 6) /* VMX-preemption timer */
/* Primary processor-based controls. */
#define PROC_INTR_WINDOW (1u << 2)
#define PROC_TSC_OFFSET  (1u << 3) /* the guest's TSC is the CPU's plus VMCS_TSC_OFFSET */
#define PROC_NMI_WINDOW  (1u << 22)
#define PROC_MOV_DR      (1u << 23) /* set while gdb's breakpoints are loaded */
#define PROC_HLT         (1u << 7)
#define PROC_INVLPG      (1u << 9)
#define PROC_MWAIT       (1u << 10)
#define PROC_RDPMC       (1u << 11)
#define PROC_CR3_LOAD    (1u << 15)
#define PROC_CR3_STORE   (1u << 16)
#define PROC_CR8_LOAD    (1u << 19)
#define PROC_CR8_STORE   (1u << 20)
#define PROC_IO_BITMAPS  (1u << 25)
#define PROC_MSR_BITMAPS (1u << 28)
#define PROC_MONITOR     (1u << 29)
#define PROC_SECONDARY   (1u << 31)
/* Secondary controls. */
#define PROC2_EPT          (1u << 1)
#define PROC2_RDTSCP       (1u << 3)
#define PROC2_VPID         (1u << 5)
#define PROC2_WBINVD       (1u << 6)
#define PROC2_UNRESTRICTED (1u << 7)
#define PROC2_INVPCID      (1u << 12)
#define PROC2_XSAVES       (1u << 20)
/* VM-exit controls. */
#define EXIT_SAVE_DEBUG   (1u << 2) /* DR7 and DEBUGCTL into the VMCS */
#define EXIT_HOST_64      (1u << 9)
#define EXIT_SAVE_PAT     (1u << 18)
#define EXIT_LOAD_PAT     (1u << 19)
#define EXIT_SAVE_EFER    (1u << 20)
#define EXIT_LOAD_EFER    (1u << 21)
#define EXIT_SAVE_PREEMPT (1u << 22) /* keep the preemption timer's count across exits */
/* VM-entry controls. */
#define ENTRY_LOAD_DEBUG (1u << 2) /* DR7 and DEBUGCTL from the VMCS */
#define ENTRY_IA32E      (1u << 9)
#define ENTRY_LOAD_PAT   (1u << 14)
#define ENTRY_LOAD_EFER  (1u << 15)

/* EPT/VPID capabilities (IA32_VMX_EPT_VPID_CAP). */
#define EPT_CAP_WALK4        (1ull << 6)
#define EPT_CAP_WB           (1ull << 14)
#define EPT_CAP_2M           (1ull << 16)
#define EPT_CAP_1G           (1ull << 17)
#define EPT_CAP_INVEPT       (1ull << 20)
#define EPT_CAP_INVEPT_ALL   (1ull << 26)
#define VPID_CAP_INVVPID     (1ull << 32)
#define VPID_CAP_INVVPID_ALL (1ull << 42)

/* VMCS fields. */
enum vmcs_field {
        VMCS_VPID = 0x0000,
        VMCS_GUEST_ES_SEL = 0x0800,
        VMCS_GUEST_CS_SEL = 0x0802,
        VMCS_GUEST_SS_SEL = 0x0804,
        VMCS_GUEST_DS_SEL = 0x0806,
        VMCS_GUEST_FS_SEL = 0x0808,
        VMCS_GUEST_GS_SEL = 0x080a,
        VMCS_GUEST_LDTR_SEL = 0x080c,
        VMCS_GUEST_TR_SEL = 0x080e,
        VMCS_HOST_ES_SEL = 0x0c00,
        VMCS_HOST_CS_SEL = 0x0c02,
        VMCS_HOST_SS_SEL = 0x0c04,
        VMCS_HOST_DS_SEL = 0x0c06,
        VMCS_HOST_FS_SEL = 0x0c08,
        VMCS_HOST_GS_SEL = 0x0c0a,
        VMCS_HOST_TR_SEL = 0x0c0c,
        VMCS_IO_BITMAP_A = 0x2000,
        VMCS_IO_BITMAP_B = 0x2002,
        VMCS_MSR_BITMAP = 0x2004,
        VMCS_TSC_OFFSET = 0x2010,
        VMCS_EPT_POINTER = 0x201a,
        VMCS_GUEST_PHYS_ADDR = 0x2400,
        VMCS_LINK_POINTER = 0x2800,
        VMCS_GUEST_DEBUGCTL = 0x2802,
        VMCS_GUEST_PAT = 0x2804,
        VMCS_GUEST_EFER = 0x2806,
        VMCS_HOST_PAT = 0x2c00,
        VMCS_HOST_EFER = 0x2c02,
        VMCS_PIN_CTLS = 0x4000,
        VMCS_PROC_CTLS = 0x4002,
        VMCS_EXCEPTION_BITMAP = 0x4004,
        VMCS_CR3_TARGET_COUNT = 0x400a,
        VMCS_EXIT_CTLS = 0x400c,
        VMCS_EXIT_MSR_STORE_COUNT = 0x400e,
        VMCS_EXIT_MSR_LOAD_COUNT = 0x4010,
        VMCS_ENTRY_CTLS = 0x4012,
        VMCS_ENTRY_MSR_LOAD_COUNT = 0x4014,
        VMCS_ENTRY_INTR_INFO = 0x4016,
        VMCS_ENTRY_EXC_ERROR = 0x4018,
        VMCS_ENTRY_INSN_LEN = 0x401a,
        VMCS_PROC_CTLS2 = 0x401e,
        VMCS_INSN_ERROR = 0x4400,
        VMCS_EXIT_REASON = 0x4402,
        VMCS_EXIT_INTR_INFO = 0x4404,
        VMCS_EXIT_INTR_ERROR = 0x4406,
        VMCS_IDT_VECTORING_INFO = 0x4408,
        VMCS_IDT_VECTORING_ERROR = 0x440a,
        VMCS_EXIT_INSN_LEN = 0x440c,
        VMCS_GUEST_ES_LIMIT = 0x4800,
        VMCS_GUEST_CS_LIMIT = 0x4802,
        VMCS_GUEST_SS_LIMIT = 0x4804,
        VMCS_GUEST_DS_LIMIT = 0x4806,
        VMCS_GUEST_FS_LIMIT = 0x4808,
        VMCS_GUEST_GS_LIMIT = 0x480a,
        VMCS_GUEST_LDTR_LIMIT = 0x480c,
        VMCS_GUEST_TR_LIMIT = 0x480e,
        VMCS_GUEST_GDTR_LIMIT = 0x4810,
        VMCS_GUEST_IDTR_LIMIT = 0x4812,
        VMCS_GUEST_ES_AR = 0x4814,
        VMCS_GUEST_CS_AR = 0x4816,
        VMCS_GUEST_SS_AR = 0x4818,
        VMCS_GUEST_DS_AR = 0x481a,
        VMCS_GUEST_FS_AR = 0x481c,
        VMCS_GUEST_GS_AR = 0x481e,
        VMCS_GUEST_LDTR_AR = 0x4820,
        VMCS_GUEST_TR_AR = 0x4822,
        VMCS_GUEST_INTERRUPTIBILITY = 0x4824,
        VMCS_GUEST_ACTIVITY = 0x4826,
        VMCS_GUEST_SYSENTER_CS = 0x482a,
        VMCS_GUEST_PREEMPT_TIMER = 0x482e,
        VMCS_HOST_SYSENTER_CS = 0x4c00,
        VMCS_CR0_MASK = 0x6000,
        VMCS_CR4_MASK = 0x6002,
        VMCS_CR0_SHADOW = 0x6004,
        VMCS_CR4_SHADOW = 0x6006,
        VMCS_EXIT_QUALIFICATION = 0x6400,
        VMCS_GUEST_CR0 = 0x6800,
        VMCS_GUEST_CR3 = 0x6802,
        VMCS_GUEST_CR4 = 0x6804,
        VMCS_GUEST_ES_BASE = 0x6806,
        VMCS_GUEST_CS_BASE = 0x6808,
        VMCS_GUEST_SS_BASE = 0x680a,
        VMCS_GUEST_DS_BASE = 0x680c,
        VMCS_GUEST_FS_BASE = 0x680e,
        VMCS_GUEST_GS_BASE = 0x6810,
        VMCS_GUEST_LDTR_BASE = 0x6812,
        VMCS_GUEST_TR_BASE = 0x6814,
        VMCS_GUEST_GDTR_BASE = 0x6816,
        VMCS_GUEST_IDTR_BASE = 0x6818,
        VMCS_GUEST_DR7 = 0x681a,
        VMCS_GUEST_RSP = 0x681c,
        VMCS_GUEST_RIP = 0x681e,
        VMCS_GUEST_RFLAGS = 0x6820,
        VMCS_GUEST_PENDING_DBG = 0x6822,
        VMCS_GUEST_SYSENTER_ESP = 0x6824,
        VMCS_GUEST_SYSENTER_EIP = 0x6826,
        VMCS_HOST_CR0 = 0x6c00,
        VMCS_HOST_CR3 = 0x6c02,
        VMCS_HOST_CR4 = 0x6c04,
        VMCS_HOST_FS_BASE = 0x6c06,
        VMCS_HOST_GS_BASE = 0x6c08,
        VMCS_HOST_TR_BASE = 0x6c0a,
        VMCS_HOST_GDTR_BASE = 0x6c0c,
        VMCS_HOST_IDTR_BASE = 0x6c0e,
        VMCS_HOST_SYSENTER_ESP = 0x6c10,
        VMCS_HOST_SYSENTER_EIP = 0x6c12,
        VMCS_HOST_RSP = 0x6c14,
        VMCS_HOST_RIP = 0x6c16,
};

/* Basic exit reasons. */
#define VMX_EXIT_EXCEPTION_NMI 0
#define VMX_EXIT_EXT_INTR      1
#define VMX_EXIT_TRIPLE_FAULT  2
#define VMX_EXIT_INIT          3
#define VMX_EXIT_SIPI          4
#define VMX_EXIT_INTR_WINDOW   7
#define VMX_EXIT_NMI_WINDOW    8
#define VMX_EXIT_TASK_SWITCH   9
#define VMX_EXIT_CPUID         10
#define VMX_EXIT_GETSEC        11
#define VMX_EXIT_HLT           12
#define VMX_EXIT_INVD          13
#define VMX_EXIT_INVLPG        14
#define VMX_EXIT_RDPMC         15
#define VMX_EXIT_RDTSC         16
#define VMX_EXIT_VMCALL        18
#define VMX_EXIT_VMCLEAR       19
#define VMX_EXIT_VMXON         27
#define VMX_EXIT_CR_ACCESS     28
#define VMX_EXIT_DR_ACCESS     29
#define VMX_EXIT_IO            30
#define VMX_EXIT_RDMSR         31
#define VMX_EXIT_WRMSR         32
#define VMX_EXIT_BAD_GUEST     33
#define VMX_EXIT_BAD_MSR_LOAD  34
#define VMX_EXIT_MWAIT         36
#define VMX_EXIT_MONITOR       39
#define VMX_EXIT_PAUSE         40
#define VMX_EXIT_MCE_ENTRY     41
#define VMX_EXIT_EPT_VIOLATION 48
#define VMX_EXIT_EPT_MISCONFIG 49
#define VMX_EXIT_INVEPT        50
#define VMX_EXIT_RDTSCP        51
#define VMX_EXIT_PREEMPT_TIMER 52
#define VMX_EXIT_INVVPID       53
#define VMX_EXIT_WBINVD        54
#define VMX_EXIT_XSETBV        55
#define VMX_EXIT_RDRAND        57
#define VMX_EXIT_INVPCID       58
#define VMX_EXIT_VMFUNC        59
#define VMX_EXIT_RDSEED        61
#define VMX_EXIT_XSAVES        63
#define VMX_EXIT_XRSTORS       64
#define VMX_EXIT_ENTRY_FAIL    (1u << 31)

/* Interruption-information format (entry injection, exit info, IDT vectoring). */
#define INTR_INFO_VALID     (1u << 31)
#define INTR_INFO_ERR_VALID (1u << 11)
#define INTR_TYPE_EXT       (0u << 8)
#define INTR_TYPE_NMI       (2u << 8)
#define INTR_TYPE_HW_EXC    (3u << 8)
#define INTR_TYPE_SW_INT    (4u << 8)
#define INTR_TYPE_SW_EXC    (6u << 8)
#define INTR_TYPE_MASK      (7u << 8)

/* The capability MSRs as read from the CPU (or a test). */
struct vmx_msrs {
        uint64_t basic, pin, proc, proc2, exit, entry, misc, ept_vpid;
        uint64_t true_pin, true_proc, true_exit, true_entry; /* 0 when basic bit 55 is clear */
        uint64_t cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
};

/* What Keel will use: control values computed from the MSRs, never hard-coded. */
struct vmx_caps {
        uint32_t revision;
        uint32_t pin, proc, proc2, exit, entry; /* base values (entry without IA-32e mode) */
        bool unrestricted, vpid, ept_2m, ept_1g, invept, invvpid;
        /* The VMX-preemption timer ends a slice even if no host interrupt arrives: it counts
         * down at the TSC rate >> preempt_shift while the guest runs, kept across exits. */
        bool preempt;
        uint8_t preempt_shift;
        /* Virtual NMIs and NMI-window exiting (both, or neither is used): the guest's NMIs
         * are delivered, the CPU keeps their blocking until the guest's IRET. */
        bool virt_nmi;
        uint64_t cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
};

/*
 * A control value from its capability MSR (allowed-0 settings in bits 31:0, allowed-1 in
 * 63:32): the bits the CPU forces to 1, plus `want`, plus those of `optional` it allows.
 * False if a wanted bit is not allowed to be 1.
 */
bool vmx_ctl(uint64_t msr, uint32_t want, uint32_t optional, uint32_t *out);

/*
 * Decide from the MSRs whether Keel can use VMX and compute every control (pure, host-tested).
 * Returns 0, or -KEEL_ENODEV with one sentence in `why` naming what is missing.
 */
int vmx_check_caps(const struct vmx_msrs *m, struct vmx_caps *caps, char *why, size_t len);

/* Name of a VM-instruction error number (SDM 30.4), for reports. */
const char *vmx_insn_error_name(uint32_t err);

#endif

/* The guest state vmx_check_guest_state looks at (read back from the VMCS). */
struct vmx_guest_state {
        uint64_t cr0, cr4, efer, rflags;
        uint32_t entry_ctls;
        uint32_t cs_ar, ss_ar, tr_ar, ldtr_ar;
        uint16_t cs_sel, ss_sel, tr_sel;
        uint32_t activity;
};

/*
 * After a failed VM entry: the first guest-state field that breaks one of the SDM's entry
 * checks (26.3.1) Keel knows, with the rule it breaks; NULL if none of those is broken.
 */
const char *vmx_check_guest_state(const struct vmx_guest_state *g, const struct vmx_caps *caps,
                                  const char **rule);
