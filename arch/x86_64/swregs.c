/*
 * Guest registers switched by Keel at vCPU run boundaries (arch/swregs.h,
 * docs/x86-state.md). Each CPU remembers the values it holds (live[]): Keel never changes
 * these registers itself, so after a save they stay exactly what was saved until the next
 * load on that CPU, which then writes only what differs. Reads are cheap next to writes:
 * MOV to a debug register and WRMSR serialise the CPU.
 */
#include <stdbool.h>
#include <string.h>

#include <arch/swregs.h>
#include <arch/x86.h>
#include <keel/smp.h>

#define CPUID_80000001_EDX_RDTSCP (1u << 27)
#define CPUID_7_ECX_RDPID         (1u << 22)

static struct x86_swregs *live; /* per CPU (keel/smp.h), from the boot CPU's enable */
static bool have_tsc_aux;

#define DR_ACCESS(n)                                                     \
        static uint64_t read_dr##n(void)                                 \
        {                                                                \
                uint64_t v;                                              \
                __asm__ volatile("mov %%dr" #n ", %0" : "=r"(v));        \
                return v;                                                \
        }                                                                \
        static void write_dr##n(uint64_t v)                              \
        {                                                                \
                __asm__ volatile("mov %0, %%dr" #n ::"r"(v) : "memory"); \
        }
DR_ACCESS(0)
DR_ACCESS(1)
DR_ACCESS(2)
DR_ACCESS(3)
DR_ACCESS(6)
#undef DR_ACCESS

static void write_cr2(uint64_t v)
{
        __asm__ volatile("mov %0, %%cr2" ::"r"(v) : "memory");
}

static bool cpu_has_tsc_aux(void)
{
        uint32_t r[4];

        x86_cpuid(0x80000000, 0, r);
        if (r[0] >= 0x80000001) {
                x86_cpuid(0x80000001, 0, r);
                if (r[3] & CPUID_80000001_EDX_RDTSCP)
                        return true;
        }
        x86_cpuid(0, 0, r);
        if (r[0] >= 7) {
                x86_cpuid(7, 0, r);
                if (r[2] & CPUID_7_ECX_RDPID)
                        return true;
        }
        return false;
}

void x86_swregs_reset(struct x86_swregs *r)
{
        memset(r, 0, sizeof(*r));
        r->dr6 = 0xffff0ff0;
}

/* The registers of `set` as this CPU holds them. */
static void read_hw(struct x86_swregs *r, unsigned set)
{
        if (set & X86_SWREGS_DR0_3) {
                r->dr[0] = read_dr0();
                r->dr[1] = read_dr1();
                r->dr[2] = read_dr2();
                r->dr[3] = read_dr3();
        }
        if (set & X86_SWREGS_DR6_CR2) {
                r->dr6 = read_dr6();
                r->cr2 = x86_read_cr2();
        }
        if (set & X86_SWREGS_TSC_AUX)
                r->tsc_aux = x86_rdmsr(MSR_TSC_AUX);
        if (set & X86_SWREGS_SYSCALL) {
                r->kernel_gs_base = x86_rdmsr(MSR_KERNEL_GS_BASE);
                r->star = x86_rdmsr(MSR_STAR);
                r->lstar = x86_rdmsr(MSR_LSTAR);
                r->cstar = x86_rdmsr(MSR_CSTAR);
                r->sfmask = x86_rdmsr(MSR_SFMASK);
        }
}

static unsigned usable(unsigned set)
{
        return have_tsc_aux ? set : set & ~X86_SWREGS_TSC_AUX;
}

bool x86_swregs_have_tsc_aux(void)
{
        return have_tsc_aux;
}

void x86_swregs_cpu_enable(void)
{
        have_tsc_aux = cpu_has_tsc_aux(); /* the same answer on every CPU */
        if (arch_cpu_index() == 0)
                live = percpu_table(sizeof(*live), "switched-register records");
        read_hw(&live[arch_cpu_index()], usable(X86_SWREGS_DR0_3 | X86_SWREGS_DR6_CR2 |
                                                X86_SWREGS_TSC_AUX | X86_SWREGS_SYSCALL));
}

#define LOAD(field, write)                     \
        do {                                   \
                if (cpu->field != r->field) {  \
                        write;                 \
                        cpu->field = r->field; \
                }                              \
        } while (0)

void x86_swregs_load(const struct x86_swregs *r, unsigned set)
{
        struct x86_swregs *cpu = &live[arch_cpu_index()];

        set = usable(set);
        if (set & X86_SWREGS_DR0_3) {
                LOAD(dr[0], write_dr0(r->dr[0]));
                LOAD(dr[1], write_dr1(r->dr[1]));
                LOAD(dr[2], write_dr2(r->dr[2]));
                LOAD(dr[3], write_dr3(r->dr[3]));
        }
        if (set & X86_SWREGS_DR6_CR2) {
                LOAD(dr6, write_dr6(r->dr6));
                LOAD(cr2, write_cr2(r->cr2));
        }
        if (set & X86_SWREGS_TSC_AUX)
                LOAD(tsc_aux, x86_wrmsr(MSR_TSC_AUX, r->tsc_aux));
        if (set & X86_SWREGS_SYSCALL) {
                LOAD(kernel_gs_base, x86_wrmsr(MSR_KERNEL_GS_BASE, r->kernel_gs_base));
                LOAD(star, x86_wrmsr(MSR_STAR, r->star));
                LOAD(lstar, x86_wrmsr(MSR_LSTAR, r->lstar));
                LOAD(cstar, x86_wrmsr(MSR_CSTAR, r->cstar));
                LOAD(sfmask, x86_wrmsr(MSR_SFMASK, r->sfmask));
        }
}

#undef LOAD

void x86_swregs_save(struct x86_swregs *r, unsigned set)
{
        struct x86_swregs *cpu = &live[arch_cpu_index()];

        set = usable(set);
        read_hw(r, set);
        if (set & X86_SWREGS_DR0_3)
                memcpy(cpu->dr, r->dr, sizeof(cpu->dr));
        if (set & X86_SWREGS_DR6_CR2) {
                cpu->dr6 = r->dr6;
                cpu->cr2 = r->cr2;
        }
        if (set & X86_SWREGS_TSC_AUX)
                cpu->tsc_aux = r->tsc_aux;
        if (set & X86_SWREGS_SYSCALL) {
                cpu->kernel_gs_base = r->kernel_gs_base;
                cpu->star = r->star;
                cpu->lstar = r->lstar;
                cpu->cstar = r->cstar;
                cpu->sfmask = r->sfmask;
        }
}
