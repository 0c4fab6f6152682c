/*
 * msrswitch: runs as two VMs pinned to the same CPU (tests/integration/configs/x86state.cfg).
 * Each first checks that it starts with the reset values (0, and DR6's B0-B3 clear): not the
 * values a VM that ran before it on the CPU left. Then it writes values of its own (from its VM
 * id) to the registers a guest reaches without an exit, which Keel must switch per vCPU
 * (docs/x86-state.md): TSC_AUX (when CPUID lists RDTSCP or RDPID), DR0-DR3, DR6's B0-B3, CR2,
 * KERNEL_GS_BASE, STAR, LSTAR, CSTAR and SFMASK; and its SSE registers (XMM0-XMM15, MXCSR),
 * which Keel saves and restores with the vCPU's FPU state, used here with XCR0 left at its
 * reset value (x87 only) as by a guest that never enables XSAVE. Then
 * it reads them all back, MSRSWITCH_LOOPS times, long enough to span many time slices: the
 * other VM runs in between (the driver checks, from Keel's report, that each VM ran in
 * several runs) and must never show through. A mismatch prints "FAIL: ..." once per
 * register; the exit code is the number of registers that ever read wrong.
 */
#include "guest.h"

#define MSRSWITCH_LOOPS 100000

#define MSR_STAR           0xc0000081u
#define MSR_LSTAR          0xc0000082u
#define MSR_CSTAR          0xc0000083u
#define MSR_SFMASK         0xc0000084u
#define MSR_KERNEL_GS_BASE 0xc0000102u
#define MSR_TSC_AUX        0xc0000103u

enum {
        R_DR0,
        R_DR1,
        R_DR2,
        R_DR3,
        R_DR6,
        R_CR2,
        R_KGS,
        R_STAR,
        R_LSTAR,
        R_CSTAR,
        R_SFMASK,
        R_TSC_AUX,
        R_RDTSCP,
        R_RDPID,
        R_XMM0,
        R_MXCSR = R_XMM0 + 16,
        R_COUNT
};

static const char *const names[R_COUNT] = {
    "DR0",
    "DR1",
    "DR2",
    "DR3",
    "DR6 B0-B3",
    "CR2",
    "KERNEL_GS_BASE",
    "STAR",
    "LSTAR",
    "CSTAR",
    "SFMASK",
    "TSC_AUX (RDMSR)",
    "TSC_AUX (RDTSCP)",
    "TSC_AUX (RDPID)",
    "XMM0 low",
    "XMM1 low",
    "XMM2 low",
    "XMM3 low",
    "XMM4 low",
    "XMM5 low",
    "XMM6 low",
    "XMM7 low",
    "XMM8 low",
    "XMM9 low",
    "XMM10 low",
    "XMM11 low",
    "XMM12 low",
    "XMM13 low",
    "XMM14 low",
    "XMM15 low",
    "MXCSR",
};

#define MXCSR_RESET 0x1f80u

static uint64_t want[R_COUNT];
static bool tested[R_COUNT], wrong[R_COUNT];

static void wrmsr(uint32_t msr, uint64_t v)
{
        __asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

#define DR(n)                                                     \
        static uint64_t read_dr##n(void)                          \
        {                                                         \
                uint64_t v;                                       \
                __asm__ volatile("mov %%dr" #n ", %0" : "=r"(v)); \
                return v;                                         \
        }                                                         \
        static void write_dr##n(uint64_t v)                       \
        {                                                         \
                __asm__ volatile("mov %0, %%dr" #n ::"r"(v));     \
        }
DR(0)
DR(1)
DR(2)
DR(3)
DR(6)
#undef DR

/* The low quadword of each XMM register (the guest is built without SSE: only these touch
 * them). */
#define XMM(n)                                                      \
        static uint64_t read_xmm##n(void)                           \
        {                                                           \
                uint64_t v;                                         \
                __asm__ volatile("movq %%xmm" #n ", %0" : "=r"(v)); \
                return v;                                           \
        }                                                           \
        static void write_xmm##n(uint64_t v)                        \
        {                                                           \
                __asm__ volatile("movq %0, %%xmm" #n ::"r"(v));     \
        }
XMM(0)
XMM(1)
XMM(2)
XMM(3)
XMM(4)
XMM(5)
XMM(6)
XMM(7)
XMM(8)
XMM(9)
XMM(10)
XMM(11)
XMM(12)
XMM(13)
XMM(14)
XMM(15)
#undef XMM

static uint64_t (*const read_xmm[16])(void) = {
    read_xmm0, read_xmm1, read_xmm2,  read_xmm3,  read_xmm4,  read_xmm5,  read_xmm6,  read_xmm7,
    read_xmm8, read_xmm9, read_xmm10, read_xmm11, read_xmm12, read_xmm13, read_xmm14, read_xmm15,
};
static void (*const write_xmm[16])(uint64_t) = {
    write_xmm0,  write_xmm1,  write_xmm2,  write_xmm3,  write_xmm4,  write_xmm5,
    write_xmm6,  write_xmm7,  write_xmm8,  write_xmm9,  write_xmm10, write_xmm11,
    write_xmm12, write_xmm13, write_xmm14, write_xmm15,
};

static uint64_t read_mxcsr(void)
{
        uint32_t v;

        __asm__ volatile("stmxcsr %0" : "=m"(v));
        return v;
}

static void write_mxcsr(uint32_t v)
{
        __asm__ volatile("ldmxcsr %0" ::"m"(v));
}

/* The value a register has after reset (the check at entry). */
static uint64_t reset_value(unsigned i)
{
        return i == R_MXCSR ? MXCSR_RESET : 0;
}

static uint64_t read_tsc_aux_rdtscp(void)
{
        uint32_t lo, hi, aux;

        __asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
        return aux;
}

static uint64_t read_tsc_aux_rdpid(void)
{
        uint64_t v;

        __asm__ volatile("rdpid %0" : "=r"(v));
        return v;
}

static void read_all(uint64_t got[R_COUNT])
{
        got[R_DR0] = read_dr0();
        got[R_DR1] = read_dr1();
        got[R_DR2] = read_dr2();
        got[R_DR3] = read_dr3();
        got[R_DR6] = read_dr6() & 0xf;
        got[R_CR2] = read_cr(2);
        got[R_KGS] = rdmsr(MSR_KERNEL_GS_BASE);
        got[R_STAR] = rdmsr(MSR_STAR);
        got[R_LSTAR] = rdmsr(MSR_LSTAR);
        got[R_CSTAR] = rdmsr(MSR_CSTAR);
        got[R_SFMASK] = rdmsr(MSR_SFMASK);
        if (tested[R_TSC_AUX])
                got[R_TSC_AUX] = rdmsr(MSR_TSC_AUX);
        if (tested[R_RDTSCP])
                got[R_RDTSCP] = read_tsc_aux_rdtscp();
        if (tested[R_RDPID])
                got[R_RDPID] = read_tsc_aux_rdpid();
        for (unsigned n = 0; n < 16; n++)
                got[R_XMM0 + n] = read_xmm[n]();
        got[R_MXCSR] = read_mxcsr();
}

int64_t guest_main(void)
{
        struct keel_vm_info info;
        uint64_t tag, got[R_COUNT];
        unsigned bad = 0, ntested = 0;
        bool rdtscp, rdpid;

        if (hc_vm_info_gpa(gpa_of(&info), sizeof(info)) != (int64_t)sizeof(info)) {
                guest_printf("FAIL: VM_INFO\n");
                return 1;
        }
        tag = info.vm_id + 1;
        rdtscp = cpuid(0x80000000, 0).eax >= 0x80000001 && (cpuid(0x80000001, 0).edx & (1u << 27));
        rdpid = cpuid(0, 0).eax >= 7 && (cpuid(7, 0).ecx & (1u << 22));

        /* Values of this VM only: addresses canonical, SFMASK and TSC_AUX 32-bit. */
        want[R_DR0] = 0x400000 + (tag << 12) + 0x00;
        want[R_DR1] = 0x400000 + (tag << 12) + 0x10;
        want[R_DR2] = 0x400000 + (tag << 12) + 0x20;
        want[R_DR3] = 0x400000 + (tag << 12) + 0x30;
        want[R_DR6] = tag & 0xf;
        want[R_CR2] = 0x7000000 + (tag << 12);
        want[R_KGS] = 0xffff800000000000ull + (tag << 12);
        want[R_STAR] = 0x0023001000000000ull + tag;
        want[R_LSTAR] = 0xffffffff81000000ull + (tag << 8);
        want[R_CSTAR] = 0xffffffff82000000ull + (tag << 8);
        want[R_SFMASK] = 0x40000 + tag;
        want[R_TSC_AUX] = want[R_RDTSCP] = want[R_RDPID] = 0x100 + tag;
        for (unsigned n = 0; n < 16; n++)
                want[R_XMM0 + n] = 0x5353000000000000ull | tag << 16 | n;
        want[R_MXCSR] = MXCSR_RESET | (tag & 3) << 13; /* rounding control */
        for (unsigned i = 0; i < R_COUNT; i++)
                tested[i] = i < R_TSC_AUX || i >= R_XMM0;
        tested[R_TSC_AUX] = rdtscp || rdpid;
        tested[R_RDTSCP] = rdtscp;
        tested[R_RDPID] = rdpid;

        read_all(got);
        for (unsigned i = 0; i < R_COUNT; i++) {
                if (!tested[i] || got[i] == reset_value(i))
                        continue;
                wrong[i] = true;
                bad++;
                guest_printf("FAIL: %s = %lx at entry, expected its reset value %lx\n", names[i],
                             (unsigned long)got[i], (unsigned long)reset_value(i));
        }
        write_dr0(want[R_DR0]);
        write_dr1(want[R_DR1]);
        write_dr2(want[R_DR2]);
        write_dr3(want[R_DR3]);
        write_dr6(0xffff0ff0 | want[R_DR6]);
        __asm__ volatile("mov %0, %%cr2" ::"r"(want[R_CR2]));
        wrmsr(MSR_KERNEL_GS_BASE, want[R_KGS]);
        wrmsr(MSR_STAR, want[R_STAR]);
        wrmsr(MSR_LSTAR, want[R_LSTAR]);
        wrmsr(MSR_CSTAR, want[R_CSTAR]);
        wrmsr(MSR_SFMASK, want[R_SFMASK]);
        if (tested[R_TSC_AUX])
                wrmsr(MSR_TSC_AUX, want[R_TSC_AUX]);
        for (unsigned n = 0; n < 16; n++)
                write_xmm[n](want[R_XMM0 + n]);
        write_mxcsr((uint32_t)want[R_MXCSR]);

        for (unsigned i = 0; i < R_COUNT; i++)
                ntested += tested[i];
        guest_printf("msrswitch: tag %lu, %u registers (TSC_AUX: RDTSCP %s, RDPID %s)\n",
                     (unsigned long)tag, ntested, rdtscp ? "yes" : "no", rdpid ? "yes" : "no");
        for (unsigned n = 0; n < MSRSWITCH_LOOPS; n++) {
                read_all(got);
                for (unsigned i = 0; i < R_COUNT; i++) {
                        if (!tested[i] || wrong[i] || got[i] == want[i])
                                continue;
                        wrong[i] = true;
                        bad++;
                        guest_printf("FAIL: %s = %lx after %u loops, expected %lx\n", names[i],
                                     (unsigned long)got[i], n, (unsigned long)want[i]);
                }
        }
        if (!bad)
                guest_printf("msrswitch: all %u registers kept their values over %u loops\n",
                             ntested, MSRSWITCH_LOOPS);
        return bad;
}
