/*
 * x86 application processors (docs/smp.md): the ACPI MADT lists the CPUs (Local APIC and
 * x2APIC entries), the boot CPU starts each other enabled one in turn with INIT-SIPI-SIPI
 * through its LAPIC's ICR, on the real-mode trampoline (ap_trampoline.S) in the page below
 * 1 MiB the boot stage reserved (boot_info.low_page). The AP comes up in long mode on Keel's
 * page tables and its own stack, takes its own GDT and TSS, the shared IDT, the boot CPU's
 * control registers, its LAPIC tick and virtualization, reports, and calls ap_entry.
 *
 * One AP at a time: the boot CPU waits until the AP has set itself up (it allocates pages,
 * and the page allocator is not thread-safe) before it starts the next, so the trampoline's
 * parameters and the start state below serve one AP at a time.
 */
#include <string.h>

#include <arch/ap_boot.h>
#include <arch/cpu.h>
#include <arch/host_timer.h>
#include <arch/madt.h>
#include <arch/relax.h>
#include <arch/x86.h>
#include <drivers/acpi_tables.h>
#include <keel/arch.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <keel/palloc.h>
#include <keel/smp.h>
#include <keel/time.h>
#include <vmm/vmm.h>

#define MADT_MAX_LISTED 256
#define ICR_INIT        0x4500u /* INIT, level assert */
#define ICR_FIXED       0x4000u /* fixed, level assert, | vector */
#define KICK_VECTOR     0x21u   /* arch_cpu_kick: makes the CPU leave its guest */
#define ICR_STARTUP     0x4600u /* start-up, level assert, | vector */
#define AP_ANSWER_MS    100     /* after the second SIPI */
#define AP_SETUP_MS     5000    /* once it answered: its own set-up (Keel code) */

/* An AP's memory from the page allocator: stack, IST stacks (double fault, NMI), GDT+TSS. */
#define AP_STACK_SIZE (64 * 1024)
#define AP_IST_SIZE   (16 * 1024)
#define AP_MEM_SIZE   (AP_STACK_SIZE + 2 * AP_IST_SIZE + PAGE_SIZE)
#define AP_MEM_PAGES  (AP_MEM_SIZE / PAGE_SIZE)

/*
 * arch_cpu_index: the LAPIC id of the running CPU looked up in this table. Chosen over a
 * per-CPU GS base because it needs nothing from the vCPU run loops: the LAPIC id register
 * belongs to the physical CPU, and guests never reach it (their LAPIC is Keel's model), so it
 * is right at any instant, between VMLOAD and VMRUN or inside an exit handler alike, on SVM
 * and VMX. The cost is one x2APIC MSR read or one uncached xAPIC MMIO read plus a scan of
 * KEEL_MAX_CPUS entries.
 */
static uint32_t cpu_apic_id[KEEL_MAX_CPUS];
static bool cpus_known; /* cpu_apic_id valid (after the boot CPU's LAPIC is known) */

/* The AP being started: STARTING until it answers (ARRIVED) or the boot CPU gives up. */
enum ap_state { AP_IDLE, AP_STARTING, AP_ARRIVED, AP_ONLINE, AP_ABANDONED };

static struct {
        volatile int state;
        uint8_t *mem;
        void (*entry)(unsigned index);
        uint64_t cr4, pat;
} ap;

unsigned arch_cpu_index(void)
{
        uint32_t id;

        if (!cpus_known)
                return 0;
        id = x86_lapic_id();
        for (unsigned i = 0; i < KEEL_MAX_CPUS; i++)
                if (cpu_apic_id[i] == id)
                        return i;
        return 0; /* cannot happen: every CPU running Keel is in the table before it runs C */
}

void arch_cpu_idle(void)
{
        x86_wait_for_interrupt();
}

void arch_cpu_kick(unsigned cpu)
{
        /* Any vector but the tick's: the trap handler acknowledges it, the guest has exited. */
        if (cpu < KEEL_MAX_CPUS && cpu != arch_cpu_index() && cpu_apic_id[cpu] != MADT_APIC_ID_NONE)
                x86_lapic_send_ipi(cpu_apic_id[cpu], ICR_FIXED | KICK_VECTOR);
}

void x86_smp_init_boot_cpu(void)
{
        for (unsigned i = 0; i < KEEL_MAX_CPUS; i++)
                cpu_apic_id[i] = MADT_APIC_ID_NONE;
        cpu_apic_id[0] = x86_lapic_id();
        cpus_known = true;
}

static void delay_us(uint64_t us)
{
        uint64_t end = x86_rdtsc() + arch_tsc_khz() * us / 1000;

        while (x86_rdtsc() < end)
                arch_cpu_relax();
}

/* Wait up to `ms` for the AP to leave `from`; the state it is in then. */
static int wait_state(int from, unsigned ms)
{
        uint64_t end = x86_rdtsc() + arch_tsc_khz() * ms;
        int s;

        while ((s = __atomic_load_n(&ap.state, __ATOMIC_ACQUIRE)) == from && x86_rdtsc() < end)
                arch_cpu_relax();
        return s;
}

/* The AP's first C code, on its own stack; interrupts off. */
static void ap_main(uint64_t arg)
{
        int expected = AP_STARTING;
        unsigned index = (unsigned)arg;

        /* Too late (the boot CPU gave up and sent INIT): do nothing at all. */
        if (!__atomic_compare_exchange_n(&ap.state, &expected, AP_ARRIVED, false, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE))
                for (;;)
                        __asm__ volatile("cli; hlt");
        x86_ap_cpu_setup(ap.mem + AP_STACK_SIZE + 2 * AP_IST_SIZE,
                         ap.mem + AP_STACK_SIZE + AP_IST_SIZE,
                         ap.mem + AP_STACK_SIZE + 2 * AP_IST_SIZE);
        x86_write_cr4(ap.cr4);
        x86_wrmsr(MSR_PAT, ap.pat);
        x86_ap_time_init();
        arch_virt_enable();
        LOG_INFO("keel: cpu %u up (APIC id %u)", index, x86_lapic_id());
        __atomic_store_n(&ap.state, AP_ONLINE, __ATOMIC_RELEASE);
        ap.entry(index);
        panic("ap_entry returned on cpu %u", index);
}

/* Start the AP with APIC id `id` as CPU `index`; whether it came up. */
static bool start_ap(uint8_t *tramp, uint32_t id, unsigned index)
{
        uint32_t vector = (uint32_t)((uintptr_t)tramp >> 12);
        hpa_t mem;
        int s, err = palloc_alloc(&keel_palloc, AP_MEM_PAGES, PAGE_SIZE, &mem);

        if (err) {
                LOG_WARN("keel: no memory for the stacks of the CPU with APIC id %u (%s); left "
                         "out",
                         id, keel_strerror(err));
                return false;
        }
        ap.mem = hva_ptr(arch_hpa_to_hva(mem));
        *(uint64_t *)(tramp + AP_TR_STACK) = (uint64_t)(uintptr_t)(ap.mem + AP_STACK_SIZE);
        *(uint64_t *)(tramp + AP_TR_ARG) = index;
        cpu_apic_id[index] = id;
        __atomic_store_n(&ap.state, AP_STARTING, __ATOMIC_RELEASE);

        x86_lapic_send_ipi(id, ICR_INIT);
        delay_us(10000);
        x86_lapic_send_ipi(id, ICR_STARTUP | vector);
        delay_us(200);
        if (__atomic_load_n(&ap.state, __ATOMIC_ACQUIRE) == AP_STARTING)
                x86_lapic_send_ipi(id, ICR_STARTUP | vector);
        s = wait_state(AP_STARTING, AP_ANSWER_MS);
        if (s == AP_STARTING) {
                int expected = AP_STARTING;

                if (__atomic_compare_exchange_n(&ap.state, &expected, AP_ABANDONED, false,
                                                __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                        /* Back to wait-for-SIPI, wherever it was: it never runs again. */
                        x86_lapic_send_ipi(id, ICR_INIT);
                        delay_us(10000);
                        cpu_apic_id[index] = MADT_APIC_ID_NONE;
                        err = palloc_free(&keel_palloc, mem, AP_MEM_PAGES);
                        CHECK(err == 0);
                        LOG_WARN("keel: CPU with APIC id %u did not answer within %u ms of its "
                                 "second SIPI; left out",
                                 id, AP_ANSWER_MS);
                        return false;
                }
                s = expected; /* it answered just now */
        }
        if (s == AP_ARRIVED)
                s = wait_state(AP_ARRIVED, AP_SETUP_MS);
        if (s != AP_ONLINE)
                panic("cpu %u (APIC id %u) answered but did not finish its set-up in %u ms", index,
                      id, AP_SETUP_MS);
        return true;
}

/* Enabled LAPIC ids of the firmware's MADT (arch/madt.h); 0 without one. */
static unsigned madt_cpus(const struct boot_info *bi, uint32_t *ids, unsigned max)
{
        uint32_t len;
        const uint8_t *madt = acpi_find_table(bi->rsdp, "APIC", &len);

        return madt ? x86_madt_cpus(madt, len, ids, max) : 0;
}

unsigned arch_smp_start(const struct boot_info *bi, void (*ap_entry)(unsigned index))
{
        static uint32_t ids[MADT_MAX_LISTED];
        uint32_t self = x86_lapic_id();
        unsigned listed = madt_cpus(bi, ids, MADT_MAX_LISTED), online = 1;
        uint64_t tramp_pa = hpa_raw(bi->low_page), cr3 = x86_read_cr3();
        uint8_t *tramp = hva_ptr(arch_hpa_to_hva(bi->low_page));

        if (listed <= 1) {
                LOG_INFO("keel: 1 CPU online (%u in the ACPI MADT)", listed);
                return 1;
        }
        if (!tramp_pa || tramp_pa >= 0x100000 || (tramp_pa & (PAGE_SIZE - 1)) ||
            !x86_keel_maps(tramp_pa) || cr3 >> 32) {
                LOG_WARN("keel: cannot start the other CPUs: %s; running on the boot CPU only",
                         !tramp_pa || tramp_pa >= 0x100000 ? "no free page below 1 MiB"
                         : cr3 >> 32                       ? "Keel's page tables lie above 4 GiB"
                                     : "the trampoline page is not identity-mapped");
                LOG_INFO("keel: 1 CPU online (%u in the ACPI MADT)", listed);
                return 1;
        }
        memcpy(tramp, x86_ap_trampoline, (size_t)(x86_ap_trampoline_end - x86_ap_trampoline));
        *(uint64_t *)(tramp + AP_TR_CR3) = cr3;
        *(uint64_t *)(tramp + AP_TR_EFER) =
            x86_rdmsr(MSR_EFER) & ~(X86_EFER_LMA | X86_EFER_SVME); /* SVME: the vendor's */
        *(uint64_t *)(tramp + AP_TR_CR0) = x86_read_cr0();
        *(uint64_t *)(tramp + AP_TR_ENTRY) = (uint64_t)(uintptr_t)ap_main;
        ap.entry = ap_entry;
        ap.cr4 = x86_read_cr4() & ~(1ull << 13); /* VMXE: the vendor's enable sets it */
        ap.pat = x86_rdmsr(MSR_PAT);

        for (unsigned i = 0; i < listed && i < MADT_MAX_LISTED; i++) {
                if (ids[i] == self)
                        continue;
                if (online == KEEL_MAX_CPUS) {
                        LOG_WARN("keel: the ACPI MADT lists %u CPUs; Keel uses %u", listed,
                                 KEEL_MAX_CPUS);
                        break;
                }
                if (!x86_lapic_x2apic() && ids[i] > 0xfe) {
                        LOG_WARN("keel: CPU with APIC id %u needs x2APIC mode; left out", ids[i]);
                        continue;
                }
                online += start_ap(tramp, ids[i], online);
        }
        LOG_INFO("keel: %u CPU%s online (%u in the ACPI MADT)", online, online == 1 ? "" : "s",
                 listed);
        return online;
}
