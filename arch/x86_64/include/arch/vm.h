/*
 * x86 parts of VMs and vCPUs, embedded in the generic struct vm / struct vcpu. Vendor state
 * (SVM's VMCB, later VMX's VMCS) hangs off here, but the vendor is only known to
 * arch/x86_64/vcpu.c, which picks the backend at run time.
 */
#ifndef ARCH_VM_H
#define ARCH_VM_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/addr.h>
#include <arch/cpuid_policy.h>
#include <arch/gwalk.h>
#include <arch/ram_layout.h>
#include <arch/swregs.h>
#include <arch/vioapic.h>
#include <arch/vlapic.h>
#include <arch/vpic.h>
#include <arch/vpit.h>
#include <keel/pt.h>
#include <vmm/exitstats.h>
#include <vmm/rtc_cmos.h>
#include <vmm/vuart.h>

/* Guest general-purpose registers not held by the VMCB. Offsets are used by svm_run_guest. */
struct x86_gprs {
        uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp;
        uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
};

#define X86_UNCLAIMED_PORTS_LOGGED 16

struct vm_arch {
        bool platform;          /* Linux platform: LAPIC, IOAPIC, ACPI (arch/platform.h) */
        struct vuart uart;      /* COM1 (ports 0x3f8-0x3ff), transmitting to the VM's console */
        struct rtc_cmos rtc;    /* the PC's RTC and CMOS RAM (ports 0x70-0x71) */
        uint32_t testdev_latch; /* pc_testdev = yes: what ports 0xe0-0xe3 hold */
        /* pc_testdev = yes: its 64 KiB of RAM-like device memory at 0xff000000 (Keel's pages,
         * host-virtual; reached only through the MMIO emulator), else NULL */
        uint8_t *testdev_mem;
        struct vioapic ioapic;
        struct vpic pic; /* the 8259A pair, ISA IRQs 0-15 beside the I/O APIC */
        bool has_pit;    /* Multiboot VMs: the 8254 PIT (pit) on ports 0x40-0x43 and 0x61 */
        struct vpit pit;
        /*
         * Under vm->dev_lock: the vCPU whose device access holds the lock (the LAPIC page is
         * the same address on every vCPU: the access goes to this vCPU's LAPIC).
         */
        struct vcpu *dev_vcpu;
        /* vCPUs a start-up IPI released, to be handed to the scheduler (atomic bit mask). */
        uint64_t start_mask;
        struct pt npt; /* guest-physical -> host-physical (NPT; EPT later) */
        uint32_t asid;
        bool npt_ready;
        /* I/O ports already reported as unclaimed (each reported once per VM). */
        uint32_t unclaimed_ports[X86_UNCLAIMED_PORTS_LOGGED];
        unsigned unclaimed_count;
        uint32_t unknown_msrs[X86_UNCLAIMED_PORTS_LOGGED];
        unsigned unknown_msr_count;
        bool unbacked_reported; /* an access to a guest-physical address with nothing there */
};

/* Exit reasons as the x86 layer counts them, whatever the vendor: the generic ones
 * (vmm/exitstats.h, docs/debugging.md). */
enum x86_exit_class {
        X86_EXIT_CPUID = EXIT_CPUID,
        X86_EXIT_HYPERCALL = EXIT_HYPERCALL,
        X86_EXIT_IO = EXIT_IO,
        X86_EXIT_MSR = EXIT_MSR,
        X86_EXIT_MMIO = EXIT_MMIO, /* nested page fault: device access or outside RAM */
        X86_EXIT_INTR = EXIT_INTR, /* physical interrupt, NMI or SMI */
        X86_EXIT_IRQ_WINDOW = EXIT_IRQ_WINDOW,
        X86_EXIT_HLT = EXIT_HALT,
        X86_EXIT_CACHE = EXIT_CACHE, /* INVD, WBINVD: no-ops */
        X86_EXIT_OTHER = EXIT_OTHER,
};

struct vcpu_arch {
        struct x86_gprs gprs;
        struct x86_cpuid_ctx cpuid; /* host limits and vCPU facts for the CPUID policy */
        struct x86_code_cache code; /* last code-page walk, for instruction lengths */
        void *vmcb;                 /* vendor control block, host-virtual */
        hpa_t vmcb_pa;
        /* The guest's TSC is Keel's (arch_tsc) plus this; the backend's VMCB or VMCS holds
         * the same. Its LAPIC's timer counts in the guest's TSC. */
        uint64_t tsc_offset;
        bool launched;
        /* An emulated MOV SS completed: the backend sets the MOV-SS interrupt shadow. */
        bool ss_shadow;
        void *fpu; /* FPU/SSE/AVX save area (arch/fpu.h), host-virtual */
        hpa_t fpu_pa;
        /* Debug registers and MSRs Keel switches at run boundaries (arch/swregs.h). */
        struct x86_swregs swregs;
        uint64_t xcr0;        /* the guest's XCR0 while it does not run */
        uint64_t deadline;    /* TSC at which the current run's time slice ends */
        unsigned leave;       /* 0, or the enum vcpu_run_result that ends the current run */
        uint32_t exit_tsc;    /* TSC's low half just after the last exit: its cost from there */
        struct vlapic lapic;  /* its local APIC, APIC ID = vCPU index (under vm->dev_lock) */
        bool start_pending;   /* released by SIPI: enter real mode at its first run */
        bool parked;          /* HLT with interrupts off on an SMP VM: never runs again */
        bool apic_off;        /* IA32_APIC_BASE.EN cleared: the LAPIC was reset, reads EN 0 */
        uint64_t misc_enable; /* IA32_MISC_ENABLE as the guest reads it (vcpu.c) */
        uint8_t v_tpr;        /* SVM: the VMCB's V_TPR as Keel last wrote or took it */
        /*
         * NMIs (docs/x86-interrupts.md): the pending one is the LAPIC's (lapic.nmi_pending);
         * the rest is the backend's. nmi_blocked: the guest is handling an NMI, until its IRET
         * (SVM tracks it here; VT-x's virtual-NMI blocking is in the VMCS and copied here at
         * a HLT). SVM only: the IRET was intercepted at nmi_iret_rip and has not been seen
         * to complete (nmi_iret_wait); Keel single-steps over it (nmi_step, the guest's own
         * RFLAGS.TF in nmi_step_tf) to deliver a pending NMI right after it.
         */
        bool nmi_blocked, nmi_iret_wait, nmi_step, nmi_step_tf;
        uint64_t nmi_iret_rip;
        bool gdb_tf;    /* Keel set RFLAGS.TF for a gdb single step */
        bool gdb_armed; /* gdb's intercepts are set (svm_debug_entry, vmx_debug_entry) */
        /* gdb's hardware breakpoints are in DR0-3 and DR7, the guest's own DR0-3 and DR7 in
         * gdb_dr (its MOV DR are intercepted and served from there; x86_gdb_hw_switch). */
        bool gdb_hw;
        uint64_t gdb_dr[5];
};

#endif
