/*
 * AMD SVM (AMD64 APM vol. 2, chapter 15 and appendix B): the VMCB layout, exit codes and
 * intercept bits Keel uses. Offsets are checked at compile time against the APM.
 */
#ifndef ARCH_X86_SVM_H
#define ARCH_X86_SVM_H

#include <stddef.h>
#include <stdint.h>

#include <stdbool.h>

#include <keel/addr.h>

#define SVM_ATTR_L  (1u << 9)  /* segment attrib: 64-bit code */
#define SVM_ATTR_DB (1u << 10) /* segment attrib: default operand size 32 */

struct vmcb_seg {
        uint16_t selector;
        uint16_t attrib; /* access byte bits 0-7, AVL 8, L 9, D/B 10, G 11 */
        uint32_t limit;
        uint64_t base;
};

struct vmcb_control {
        uint32_t intercept_cr;  /* 0x000: reads 0-15, writes 16-31 */
        uint32_t intercept_dr;  /* 0x004 */
        uint32_t intercept_exc; /* 0x008 */
        uint32_t intercept1;    /* 0x00c */
        uint32_t intercept2;    /* 0x010 */
        uint32_t intercept3;    /* 0x014 */
        uint8_t reserved0[0x3c - 0x18];
        uint16_t pause_filter_thresh; /* 0x03c */
        uint16_t pause_filter_count;  /* 0x03e */
        uint64_t iopm_base_pa;        /* 0x040 */
        uint64_t msrpm_base_pa;       /* 0x048 */
        uint64_t tsc_offset;          /* 0x050 */
        uint32_t asid;                /* 0x058 */
        uint8_t tlb_control;          /* 0x05c */
        uint8_t reserved1[3];
        uint64_t int_ctl;       /* 0x060: V_TPR, V_IRQ, V_INTR_MASKING (24), ... */
        uint64_t int_state;     /* 0x068: interrupt shadow */
        uint64_t exit_code;     /* 0x070 */
        uint64_t exit_info1;    /* 0x078 */
        uint64_t exit_info2;    /* 0x080 */
        uint64_t exit_int_info; /* 0x088 */
        uint64_t np_control;    /* 0x090: bit 0 NP_ENABLE */
        uint64_t avic_apic_bar; /* 0x098 */
        uint64_t ghcb_pa;       /* 0x0a0 */
        uint64_t event_inj;     /* 0x0a8 */
        uint64_t n_cr3;         /* 0x0b0 */
        uint64_t virt_ext;      /* 0x0b8 */
        uint32_t clean;         /* 0x0c0 */
        uint32_t reserved2;
        uint64_t next_rip; /* 0x0c8 */
        uint8_t insn_len;  /* 0x0d0 */
        uint8_t insn_bytes[15];
        uint8_t reserved3[0x400 - 0xe0];
};

struct vmcb_save {
        struct vmcb_seg es, cs, ss, ds, fs, gs, gdtr, ldtr, idtr, tr; /* 0x400 - 0x49f */
        uint8_t reserved0[0x4cb - 0x4a0];
        uint8_t cpl; /* 0x4cb */
        uint32_t reserved1;
        uint64_t efer; /* 0x4d0 */
        uint8_t reserved2[0x548 - 0x4d8];
        uint64_t cr4;    /* 0x548 */
        uint64_t cr3;    /* 0x550 */
        uint64_t cr0;    /* 0x558 */
        uint64_t dr7;    /* 0x560 */
        uint64_t dr6;    /* 0x568 */
        uint64_t rflags; /* 0x570 */
        uint64_t rip;    /* 0x578 */
        uint8_t reserved3[0x5d8 - 0x580];
        uint64_t rsp; /* 0x5d8 */
        uint8_t reserved4[0x5f8 - 0x5e0];
        uint64_t rax;            /* 0x5f8 */
        uint64_t star;           /* 0x600 */
        uint64_t lstar;          /* 0x608 */
        uint64_t cstar;          /* 0x610 */
        uint64_t sfmask;         /* 0x618 */
        uint64_t kernel_gs_base; /* 0x620 */
        uint64_t sysenter_cs;    /* 0x628 */
        uint64_t sysenter_esp;   /* 0x630 */
        uint64_t sysenter_eip;   /* 0x638 */
        uint64_t cr2;            /* 0x640 */
        uint8_t reserved5[0x668 - 0x648];
        uint64_t g_pat;  /* 0x668 */
        uint64_t dbgctl; /* 0x670 */
};

struct vmcb {
        struct vmcb_control control;
        struct vmcb_save save;
};

_Static_assert(offsetof(struct vmcb, control.iopm_base_pa) == 0x40, "vmcb iopm");
_Static_assert(offsetof(struct vmcb, control.asid) == 0x58, "vmcb asid");
_Static_assert(offsetof(struct vmcb, control.exit_code) == 0x70, "vmcb exit code");
_Static_assert(offsetof(struct vmcb, control.event_inj) == 0xa8, "vmcb event_inj");
_Static_assert(offsetof(struct vmcb, control.next_rip) == 0xc8, "vmcb next_rip");
_Static_assert(offsetof(struct vmcb, save) == 0x400, "vmcb save area");
_Static_assert(offsetof(struct vmcb, save.cpl) == 0x4cb, "vmcb cpl");
_Static_assert(offsetof(struct vmcb, save.efer) == 0x4d0, "vmcb efer");
_Static_assert(offsetof(struct vmcb, save.cr4) == 0x548, "vmcb cr4");
_Static_assert(offsetof(struct vmcb, save.rip) == 0x578, "vmcb rip");
_Static_assert(offsetof(struct vmcb, save.rsp) == 0x5d8, "vmcb rsp");
_Static_assert(offsetof(struct vmcb, save.rax) == 0x5f8, "vmcb rax");
_Static_assert(offsetof(struct vmcb, save.cr2) == 0x640, "vmcb cr2");
_Static_assert(offsetof(struct vmcb, save.g_pat) == 0x668, "vmcb g_pat");
_Static_assert(sizeof(struct vmcb) <= 4096, "vmcb fits a page");

/* intercept1 */
#define SVM_INTERCEPT_INTR     (1u << 0)
#define SVM_INTERCEPT_NMI      (1u << 1)
#define SVM_INTERCEPT_SMI      (1u << 2)
#define SVM_INTERCEPT_INIT     (1u << 3)
#define SVM_INTERCEPT_VINTR    (1u << 4)
#define SVM_INTERCEPT_RDPMC    (1u << 15)
#define SVM_INTERCEPT_CPUID    (1u << 18)
#define SVM_INTERCEPT_IRET     (1u << 20)
#define SVM_INTERCEPT_INTN     (1u << 21)
#define SVM_INTERCEPT_INVD     (1u << 22)
#define SVM_INTERCEPT_HLT      (1u << 24)
#define SVM_INTERCEPT_INVLPGA  (1u << 26)
#define SVM_INTERCEPT_IOIO     (1u << 27)
#define SVM_INTERCEPT_MSR      (1u << 28)
#define SVM_INTERCEPT_TASKSW   (1u << 29)
#define SVM_INTERCEPT_SHUTDOWN (1u << 31)
/* intercept2 */
#define SVM_INTERCEPT_VMRUN   (1u << 0)
#define SVM_INTERCEPT_VMMCALL (1u << 1)
#define SVM_INTERCEPT_VMLOAD  (1u << 2)
#define SVM_INTERCEPT_VMSAVE  (1u << 3)
#define SVM_INTERCEPT_STGI    (1u << 4)
#define SVM_INTERCEPT_CLGI    (1u << 5)
#define SVM_INTERCEPT_SKINIT  (1u << 6)
#define SVM_INTERCEPT_WBINVD  (1u << 9)
#define SVM_INTERCEPT_MONITOR (1u << 10) /* MONITOR and MONITORX */
#define SVM_INTERCEPT_MWAIT   (1u << 11) /* MWAIT and MWAITX, armed or not */
#define SVM_INTERCEPT_XSETBV  (1u << 13)
#define SVM_INTERCEPT_RDPRU   (1u << 14)

/* Exit codes. */
#define SVM_EXIT_READ_DR0  0x20 /* + n; writes: 0x30 + n */
#define SVM_EXIT_WRITE_DR0 0x30
#define SVM_EXIT_EXCP_BASE 0x40
#define SVM_EXIT_INTR      0x60
#define SVM_EXIT_NMI       0x61
#define SVM_EXIT_SMI       0x62
#define SVM_EXIT_INIT      0x63
#define SVM_EXIT_VINTR     0x64
#define SVM_EXIT_RDPMC     0x6f
#define SVM_EXIT_CPUID     0x72
#define SVM_EXIT_IRET      0x74
#define SVM_EXIT_SWINT     0x75
#define SVM_EXIT_INVD      0x76
#define SVM_EXIT_HLT       0x78
#define SVM_EXIT_INVLPGA   0x7a
#define SVM_EXIT_IOIO      0x7b
#define SVM_EXIT_MSR       0x7c
#define SVM_EXIT_TASKSW    0x7d
#define SVM_EXIT_SHUTDOWN  0x7f
#define SVM_EXIT_VMRUN     0x80
#define SVM_EXIT_VMMCALL   0x81
#define SVM_EXIT_VMLOAD    0x82
#define SVM_EXIT_VMSAVE    0x83
#define SVM_EXIT_STGI      0x84
#define SVM_EXIT_CLGI      0x85
#define SVM_EXIT_SKINIT    0x86
#define SVM_EXIT_WBINVD    0x89
#define SVM_EXIT_MONITOR   0x8a
#define SVM_EXIT_MWAIT     0x8b
#define SVM_EXIT_MWAIT_ARM 0x8c
#define SVM_EXIT_XSETBV    0x8d
#define SVM_EXIT_RDPRU     0x8e
#define SVM_EXIT_NPF       0x400
#define SVM_EXIT_INVALID   ((uint64_t)-1)
#define SVM_EXIT_INVALID32 0xffffffffull /* the same, as QEMU 7.2's nested SVM writes it */

/* EXITINFO1 of IOIO. */
#define SVM_IOIO_IN       (1u << 0)
#define SVM_IOIO_STR      (1u << 2)
#define SVM_IOIO_REP      (1u << 3)
#define SVM_IOIO_SZ_SHIFT 4 /* bits 4-6: 8, 16, 32 bit */

/* int_ctl and int_state. */
#define SVM_INT_V_IRQ     (1ull << 8)
#define SVM_INT_V_IGN_TPR (1ull << 20)
#define SVM_INT_SHADOW    (1ull << 0)

/* EVENTINJ / EXITINTINFO. */
#define SVM_EVT_VALID     (1ull << 31)
#define SVM_EVT_ERR_VALID (1ull << 11)
#define SVM_EVT_TYPE_NMI  (2ull << 8)
#define SVM_EVT_TYPE_EXC  (3ull << 8)
#define SVM_EVT_TYPE_SOFT (4ull << 8)

/* CPUID 0x8000000A EDX. */
#define SVM_FEAT_NPT        (1u << 0)
#define SVM_FEAT_NRIPS      (1u << 3)
#define SVM_FEAT_CLEAN      (1u << 5)
#define SVM_FEAT_FLUSH_ASID (1u << 6)
#define SVM_FEAT_DECODE     (1u << 7)

#define VM_CR_SVMDIS (1u << 4)
#define VM_CR_LOCK   (1u << 3)

/* What svm_check_caps needs from CPUID and VM_CR. */
#define SVM_CPUID_SVM (1u << 2) /* CPUID 8000_0001h ECX */
struct svm_cpuid {
        uint32_t max_ext_leaf;              /* CPUID 8000_0000h EAX */
        uint32_t ext1_ecx, ext1_edx;        /* CPUID 8000_0001h ECX, EDX */
        uint32_t svm_eax, svm_ebx, svm_edx; /* CPUID 8000_000Ah */
        uint64_t vm_cr;                     /* MSR VM_CR, 0 if SVM is absent */
};

struct svm_caps {
        uint32_t revision;
        uint32_t asids;
        bool npt, npt_1g, nrips, decode_assists, clean_bits, flush_by_asid;
};

/*
 * Decide from CPUID and VM_CR whether Keel can use SVM (pure, host-tested). Returns 0 and
 * fills *caps, or -KEEL_ENODEV with one sentence in `why` saying what is missing and what
 * the user can do about it.
 */
int svm_check_caps(const struct svm_cpuid *id, struct svm_caps *caps, char *why, size_t len);

/* svm_setup.c: the backend's set-up, for svm.c's vendor operations (arch/x86_vcpu.h). */
struct vcpu;
struct x86_entry_state;
/* Hidden: the exit path reads them PC-relative, not through the GOT (a load per exit). */
extern __attribute__((visibility("hidden"))) struct svm_caps svm_found; /* from svm_probe */
/* Per CPU: the VMCB VMSAVE/VMLOAD keep Keel's state in. */
extern __attribute__((visibility("hidden"))) hpa_t *svm_host_vmcb_pa;
int svm_probe(char *why, size_t len);
void svm_describe(char *buf, size_t len);
void svm_enable(void);
int svm_vcpu_init(struct vcpu *vcpu, const struct x86_entry_state *st);
void svm_vcpu_free(struct vcpu *vcpu);

#endif
