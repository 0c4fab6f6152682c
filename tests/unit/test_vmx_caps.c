/*
 * VT-x capability logic (arch/x86_64/vmx/vmx_caps.c): controls computed from the capability
 * MSRs (allowed-0 in bits 31:0, allowed-1 in 63:32), TRUE_* MSRs preferred when
 * IA32_VMX_BASIC bit 55 says so, refusals naming what is missing, and the guest-state checks
 * that name the field at fault after a failed VM entry.
 */
#include <string.h>

#include <keel/errno.h>

#include "../../arch/x86_64/vmx/vmx.h"
#include "test.h"

#define CTL(must1, may1) ((uint64_t)(may1) << 32 | (uint32_t)(must1))

/* A Skylake-like CPU: what Bochs' corei7_skylake_x reports, roughly. */
static struct vmx_msrs skylake(void)
{
        return (struct vmx_msrs){
            .basic = VMX_BASIC_TRUE_CTLS | 4,
            .pin = CTL(0x16, 0x7f),
            .true_pin = CTL(0x16, 0x7f),
            .proc = CTL(0x0401e172, 0xfff9fffe),
            .true_proc = CTL(0x04006172, 0xfff9fffe),
            .proc2 = CTL(0, 0x001fffff),
            .exit = CTL(0x00036dff, 0x003fefff),
            .true_exit = CTL(0x00036dfb, 0x003fefff),
            .entry = CTL(0x000011ff, 0x0000f3ff),
            .true_entry = CTL(0x000011fb, 0x0000f3ff),
            .ept_vpid = EPT_CAP_WALK4 | EPT_CAP_WB | EPT_CAP_2M | EPT_CAP_INVEPT |
                        EPT_CAP_INVEPT_ALL | VPID_CAP_INVVPID | VPID_CAP_INVVPID_ALL,
            .cr0_fixed0 = 0x80000021,
            .cr0_fixed1 = 0xffffffff,
            .cr4_fixed0 = 0x2000,
            .cr4_fixed1 = 0x3767ff,
        };
}

TEST(ctl_from_msr)
{
        uint32_t v;

        EXPECT_TRUE(vmx_ctl(CTL(0x16, 0x7f), 0x9, 0x20, &v));
        EXPECT_EQ(v, 0x16 | 0x9 | 0x20);
        /* An optional bit the CPU does not allow is left out; a wanted one refuses. */
        EXPECT_TRUE(vmx_ctl(CTL(0x16, 0x1f), 0x9, 0x20, &v));
        EXPECT_EQ(v, 0x16 | 0x9);
        EXPECT_TRUE(!vmx_ctl(CTL(0x16, 0x17), 0x9, 0, &v));
}

TEST(skylake_controls)
{
        struct vmx_msrs m = skylake();
        struct vmx_caps c;
        char why[200] = "";

        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), 0);
        EXPECT_EQ(c.revision, 4);
        EXPECT_EQ(c.pin & (PIN_EXT_INTR | PIN_NMI), PIN_EXT_INTR | PIN_NMI);
        EXPECT_EQ(c.proc & (PROC_HLT | PROC_IO_BITMAPS | PROC_MSR_BITMAPS | PROC_SECONDARY),
                  PROC_HLT | PROC_IO_BITMAPS | PROC_MSR_BITMAPS | PROC_SECONDARY);
        /* TRUE controls let CR3 exiting go (0x04006172 has no bits 15/16). */
        EXPECT_EQ(c.proc & (PROC_CR3_LOAD | PROC_CR3_STORE), 0);
        EXPECT_EQ(c.proc & (PROC_CR8_LOAD | PROC_CR8_STORE), PROC_CR8_LOAD | PROC_CR8_STORE);
        /* the guest's TSC is Keel's plus the vCPU's offset (a snapshot's restore moves it) */
        EXPECT_EQ(c.proc & PROC_TSC_OFFSET, PROC_TSC_OFFSET);
        /* MONITOR, MWAIT and RDPMC exit: a guest must not wait on or read the physical CPU. */
        EXPECT_EQ(c.proc & (PROC_MONITOR | PROC_MWAIT | PROC_RDPMC),
                  PROC_MONITOR | PROC_MWAIT | PROC_RDPMC);
        EXPECT_EQ(c.proc2 & (PROC2_EPT | PROC2_VPID | PROC2_UNRESTRICTED),
                  PROC2_EPT | PROC2_VPID | PROC2_UNRESTRICTED);
        EXPECT_TRUE(c.unrestricted && c.vpid && c.ept_2m && c.invept);
        EXPECT_FALSE(c.ept_1g);
        /* EPT 1 GiB pages (bit 17) count only beside 2 MiB ones (bit 16). */
        m.ept_vpid |= EPT_CAP_1G;
        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), 0);
        EXPECT_TRUE(c.ept_2m && c.ept_1g);
        m.ept_vpid &= ~EPT_CAP_2M;
        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), 0);
        EXPECT_TRUE(!c.ept_2m && !c.ept_1g);
        m.ept_vpid = skylake().ept_vpid;
        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), 0);
        EXPECT_EQ(c.exit & (EXIT_HOST_64 | EXIT_SAVE_EFER | EXIT_LOAD_EFER),
                  EXIT_HOST_64 | EXIT_SAVE_EFER | EXIT_LOAD_EFER);
        EXPECT_EQ(c.entry & ENTRY_IA32E, 0); /* per entry, from the guest's EFER */
        EXPECT_EQ(c.entry & ENTRY_LOAD_EFER, ENTRY_LOAD_EFER);
        /* Every must-be-1 bit of the TRUE MSRs is set. */
        EXPECT_EQ(c.proc & 0x04006172, 0x04006172);
        EXPECT_EQ(c.exit & 0x00036dfb, 0x00036dfb);
        /* Unrestricted guest relaxes PE and PG in CR0_FIXED0, not NE. */
        EXPECT_EQ(c.cr0_fixed0, 0x20);
}

TEST(without_true_msrs)
{
        struct vmx_msrs m = skylake();
        struct vmx_caps c;
        char why[200];

        m.basic &= ~VMX_BASIC_TRUE_CTLS;
        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), 0);
        /* The plain MSR forces CR3 exiting: it stays on. */
        EXPECT_EQ(c.proc & (PROC_CR3_LOAD | PROC_CR3_STORE), PROC_CR3_LOAD | PROC_CR3_STORE);
}

TEST(refusals)
{
        struct vmx_msrs m;
        struct vmx_caps c;
        char why[200];

        m = skylake();
        m.proc2 = CTL(0, 0x001fffff & ~PROC2_EPT);
        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), -KEEL_ENODEV);
        EXPECT_CONTAINS(why, "EPT");
        m = skylake();
        m.ept_vpid &= ~EPT_CAP_WB;
        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), -KEEL_ENODEV);
        EXPECT_CONTAINS(why, "write-back");
        m = skylake();
        m.true_proc = CTL(0x04006172, 0x7ff9fffe); /* no secondary controls */
        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), -KEEL_ENODEV);
        EXPECT_CONTAINS(why, "secondary");
        m = skylake();
        m.true_proc = CTL(0x04006172, 0xfff9fffe & ~PROC_RDPMC); /* RDPMC cannot exit */
        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), -KEEL_ENODEV);
        EXPECT_CONTAINS(why, "RDPMC");
        m = skylake();
        m.true_entry = CTL(0x000011fb, 0x0000f1ff); /* no IA-32e mode guest */
        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), -KEEL_ENODEV);
        EXPECT_CONTAINS(why, "64-bit guests");
        /* Without unrestricted guest PE and PG stay fixed; without INVVPID no VPID. */
        m = skylake();
        m.proc2 = CTL(0, 0x001fffff & ~PROC2_UNRESTRICTED);
        m.ept_vpid &= ~VPID_CAP_INVVPID;
        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), 0);
        EXPECT_TRUE(!c.unrestricted && !c.vpid);
        EXPECT_EQ(c.proc2 & PROC2_VPID, 0);
        EXPECT_EQ(c.cr0_fixed0, 0x80000021);
}

TEST(debug_controls_and_mov_dr)
{
        struct vmx_msrs m = skylake();
        struct vmx_caps c;
        char why[200];

        /* The TRUE MSRs let save / load debug controls be 0 (0x36dfb, 0x11fb): Keel sets
         * them, or the guest's DR7 would not survive an exit. */
        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), 0);
        EXPECT_EQ(c.exit & EXIT_SAVE_DEBUG, EXIT_SAVE_DEBUG);
        EXPECT_EQ(c.entry & ENTRY_LOAD_DEBUG, ENTRY_LOAD_DEBUG);
        /* MOV-DR exiting must be possible, and is off until gdb loads breakpoints. */
        EXPECT_EQ(c.proc & PROC_MOV_DR, 0);
        m.true_proc = CTL(0x04006172 | PROC_MOV_DR, 0xfff9fffe); /* a CPU that forces it */
        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), 0);
        EXPECT_EQ(c.proc & PROC_MOV_DR, PROC_MOV_DR);
        m.true_proc = CTL(0x04006172, 0xfff9fffe & ~PROC_MOV_DR);
        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), -KEEL_ENODEV);
        EXPECT_CONTAINS(why, "MOV-DR");
        m = skylake();
        m.true_exit = CTL(0x00036dfb, 0x003fefff & ~EXIT_SAVE_DEBUG);
        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), -KEEL_ENODEV);
        EXPECT_CONTAINS(why, "DR7");
        m = skylake();
        m.true_entry = CTL(0x000011fb, 0x0000f3ff & ~ENTRY_LOAD_DEBUG);
        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), -KEEL_ENODEV);
        EXPECT_CONTAINS(why, "DR7");
}

TEST(wbinvd_exits_where_the_cpu_allows)
{
        struct vmx_msrs m = skylake();
        struct vmx_caps c;
        char why[200];

        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), 0);
        EXPECT_EQ(c.proc2 & PROC2_WBINVD, PROC2_WBINVD);
        m.proc2 = CTL(0, 0x001fffff & ~PROC2_WBINVD); /* optional: no refusal without it */
        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), 0);
        EXPECT_EQ(c.proc2 & PROC2_WBINVD, 0);
}

static struct vmx_guest_state good_guest(void)
{
        return (struct vmx_guest_state){
            .cr0 = 0x80000031,
            .cr4 = 0x2020,
            .efer = 0x500,
            .rflags = 2,
            .entry_ctls = ENTRY_IA32E | ENTRY_LOAD_EFER,
            .cs_ar = 0xa09b,
            .ss_ar = 0xc093,
            .tr_ar = 0x8b,
            .ldtr_ar = 1u << 16,
            .cs_sel = 8,
            .ss_sel = 0x10,
        };
}

TEST(guest_state_checks)
{
        struct vmx_msrs m = skylake();
        struct vmx_caps c;
        struct vmx_guest_state g;
        const char *rule;
        char why[200];

        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), 0);
        g = good_guest();
        EXPECT_TRUE(vmx_check_guest_state(&g, &c, &rule) == NULL);
        g = good_guest();
        g.cr0 &= ~0x20ull; /* NE */
        EXPECT_STREQ(vmx_check_guest_state(&g, &c, &rule), "GUEST_CR0");
        g = good_guest();
        g.cr4 &= ~0x2000ull; /* VMXE */
        EXPECT_STREQ(vmx_check_guest_state(&g, &c, &rule), "GUEST_CR4");
        g = good_guest();
        g.efer &= ~0x400ull; /* LMA without IA-32e */
        EXPECT_STREQ(vmx_check_guest_state(&g, &c, &rule), "GUEST_EFER");
        g = good_guest();
        g.rflags = 0;
        EXPECT_STREQ(vmx_check_guest_state(&g, &c, &rule), "GUEST_RFLAGS");
        g = good_guest();
        g.cs_ar |= 1u << 14; /* L and D */
        EXPECT_STREQ(vmx_check_guest_state(&g, &c, &rule), "GUEST_CS_AR");
        g = good_guest();
        g.tr_ar = 0x89; /* available, not busy */
        EXPECT_STREQ(vmx_check_guest_state(&g, &c, &rule), "GUEST_TR_AR");
        g = good_guest();
        g.ldtr_ar = 0x82 & ~0x80u;
        EXPECT_STREQ(vmx_check_guest_state(&g, &c, &rule), "GUEST_LDTR_AR");
        EXPECT_TRUE(rule != NULL);
        EXPECT_STREQ(vmx_insn_error_name(7), "VM entry with invalid control field(s)");
        EXPECT_STREQ(vmx_insn_error_name(99), "unknown");
}

/* The names' table is one string (keel/strlist.h): every number finds its own entry, the
 * holes and the numbers past the last have none. */
TEST(insn_error_names)
{
        EXPECT_STREQ(vmx_insn_error_name(0), "unknown");
        EXPECT_STREQ(vmx_insn_error_name(1), "VMCALL executed in VMX root operation");
        EXPECT_STREQ(vmx_insn_error_name(13), "VMWRITE to read-only VMCS component");
        EXPECT_STREQ(vmx_insn_error_name(14), "unknown");
        EXPECT_STREQ(vmx_insn_error_name(15), "VMXON executed in VMX root operation");
        EXPECT_STREQ(vmx_insn_error_name(18),
                     "VM entry with executive-VMCS pointer not VMXON pointer");
        EXPECT_STREQ(vmx_insn_error_name(19), "unknown");
        EXPECT_STREQ(vmx_insn_error_name(26), "VM entry with events blocked by MOV SS");
        EXPECT_STREQ(vmx_insn_error_name(27), "unknown");
        EXPECT_STREQ(vmx_insn_error_name(28), "invalid operand to INVEPT/INVVPID");
        EXPECT_STREQ(vmx_insn_error_name(29), "unknown");
        EXPECT_STREQ(vmx_insn_error_name(0xffffffffu), "unknown");
}

TEST(preemption_timer_when_offered)
{
        struct vmx_msrs m = skylake();
        struct vmx_caps c;
        char why[200] = "";

        m.misc = 5;                                /* the timer counts at the TSC rate >> 5 */
        m.true_exit = CTL(0x00036dfb, 0x007fefff); /* and may save its count at exits */
        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), 0);
        EXPECT_TRUE(c.preempt);
        EXPECT_EQ(c.preempt_shift, 5);
        EXPECT_EQ(c.pin & PIN_PREEMPT, PIN_PREEMPT);
        EXPECT_EQ(c.exit & EXIT_SAVE_PREEMPT, EXIT_SAVE_PREEMPT);
        /* A CPU without it still runs guests: the host tick alone ends slices. */
        m.true_pin = m.pin = CTL(0x16, 0x3f);
        m.true_exit = m.exit = CTL(0x00036dfb, 0x003befff);
        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), 0);
        EXPECT_FALSE(c.preempt);
        EXPECT_EQ(c.pin & PIN_PREEMPT, 0);
        EXPECT_EQ(c.exit & EXIT_SAVE_PREEMPT, 0);
}

TEST(virtual_nmis_when_offered)
{
        struct vmx_msrs m = skylake();
        struct vmx_caps c;
        char why[200] = "";

        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), 0);
        EXPECT_TRUE(c.virt_nmi);
        EXPECT_EQ(c.pin & PIN_VIRT_NMI, PIN_VIRT_NMI);
        EXPECT_EQ(c.proc & PROC_NMI_WINDOW, 0); /* set per entry, only while one waits */
        /* Virtual NMIs without NMI-window exiting: neither is used. */
        m.true_proc = m.proc = CTL(0x04006172, 0xfff9fffe & ~PROC_NMI_WINDOW);
        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), 0);
        EXPECT_FALSE(c.virt_nmi);
        EXPECT_EQ(c.pin & PIN_VIRT_NMI, 0);
        /* No virtual NMIs: the guest still runs, without NMIs. */
        m = skylake();
        m.true_pin = m.pin = CTL(0x16, 0x5f);
        EXPECT_EQ(vmx_check_caps(&m, &c, why, sizeof(why)), 0);
        EXPECT_FALSE(c.virt_nmi);
        EXPECT_EQ(c.pin & PIN_VIRT_NMI, 0);
}

TEST_MAIN()
