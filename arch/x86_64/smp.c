/*
 * x86 application processors (docs/smp.md): the ACPI MADT lists the CPUs (Local APIC and
 * x2APIC entries), the boot CPU starts each other enabled one in turn with INIT-SIPI-SIPI
 * through its LAPIC's ICR, on the real-mode trampoline (ap_trampoline.S) in the page below
 * 1 MiB the boot stage reserved (boot_info.low_page). The AP comes up in long mode on Keel's
 * page tables and its own stack, takes its own GDT and TSS, the shared IDT, the boot CPU's
 * control registers, its LAPIC tick and virtualization, reports, and calls ap_entry.
 *
 * One AP at a time: the boot CPU waits until the AP has set itself up before it starts the
 * next, so the trampoline's parameters and the start state below serve one AP at a time.
 *
 * Every AP's memory (stacks with guard pages below them, GDT and TSS) is allocated, and the
 * trampoline page filled, by x86_smp_prepare before Keel's page tables are built: those tables
 * leave the guard pages unmapped and the trampoline page read-only, and Keel never changes a
 * live mapping (docs/memory.md).
 */
#include <stdio.h>
#include <string.h>

#include <arch/ap_boot.h>
#include <arch/cpu.h>
#include <arch/host_timer.h>
#include <arch/madt.h>
#include <arch/relax.h>
#include <arch/x86.h>
#include <drivers/acpi_tables.h>
#include <drivers/pci.h>
#include <keel/arch.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/hostmap.h>
#include <keel/log.h>
#include <keel/palloc.h>
#include <keel/smp.h>
#include <keel/time.h>
#include <vmm/vmm.h>

#define APIC_ID_TABLE_MAX 0x10000u /* APIC ids indexed directly (arch_cpu_index) */
#define ICR_INIT          0x4500u  /* INIT, level assert */
#define ICR_FIXED         0x4000u  /* fixed, level assert, | vector */
#define KICK_VECTOR       0x21u    /* arch_cpu_kick: makes the CPU leave its guest */
#define ICR_STARTUP       0x4600u  /* start-up, level assert, | vector */
#define AP_ANSWER_MS      1000     /* after the second SIPI (TCG under load: 100 was short) */
#define AP_SETUP_MS       5000     /* once it answered: its own set-up (Keel code) */

/*
 * An AP's memory from the page allocator: a guard page, its stack, a guard page, the
 * double-fault IST stack, a guard page, the NMI IST stack, then its GDT and TSS.
 */
#define AP_STACK_SIZE (64 * 1024)
#define AP_IST_SIZE   (16 * 1024)
#define AP_STACK_OFF  PAGE_SIZE
#define AP_DF_OFF     (AP_STACK_OFF + AP_STACK_SIZE + PAGE_SIZE)
#define AP_NMI_OFF    (AP_DF_OFF + AP_IST_SIZE + PAGE_SIZE)
#define AP_TABLES_OFF (AP_NMI_OFF + AP_IST_SIZE)
#define AP_MEM_SIZE   (AP_TABLES_OFF + PAGE_SIZE)
#define AP_MEM_PAGES  (AP_MEM_SIZE / PAGE_SIZE)

/*
 * arch_cpu_index: the LAPIC id of the running CPU looked up in index_of. Chosen over a
 * per-CPU GS base because it needs nothing from the vCPU run loops: the LAPIC id register
 * belongs to the physical CPU, and guests never reach it (their LAPIC is Keel's model), so it
 * is right at any instant, between VMLOAD and VMRUN or inside an exit handler alike, on SVM
 * and VMX. The cost is one x2APIC MSR read or one uncached xAPIC MMIO read plus one load,
 * whatever the CPU count. Both tables come from the page allocator, sized from the MADT
 * (x86_smp_prepare); before that, and on a single-CPU machine, every CPU is index 0.
 */
static uint32_t *cpu_apic_id; /* by CPU index (slots entries); MADT_APIC_ID_NONE: none */
static uint16_t *index_of;    /* by APIC id below index_len: its CPU index (0: boot / none) */
static uint32_t index_len;
static uint32_t boot_apic_id; /* before cpu_apic_id exists */
static unsigned slots = 1;    /* arch_cpu_slots */
static bool cpus_known;       /* the boot CPU's LAPIC is known */

/* The AP being started: STARTING until it answers (ARRIVED) or the boot CPU gives up. */
enum ap_state { AP_IDLE, AP_STARTING, AP_ARRIVED, AP_ONLINE, AP_ABANDONED };

static struct {
        volatile int state;
        uint8_t *mem;
        void (*entry)(unsigned index);
        uint64_t cr4, pat;
} ap;

/* From x86_smp_prepare: the MADT's CPUs, the memory of the AP to run as CPU i (1 ..). */
static uint32_t *madt_ids;
static unsigned madt_listed;
static uint8_t **ap_mem;
static unsigned ap_slots;              /* ap_mem[1 .. ap_slots] allocated */
static const char *no_start;           /* why no AP can start, or NULL */
static struct x86_ap_params ap_params; /* the trampoline reads it (AP_TR_PARAMS) */

unsigned arch_cpu_index(void)
{
        uint32_t id;

        if (!cpus_known)
                return 0;
        id = x86_lapic_id();
        /* Every CPU running Keel is in the table before it runs C; the boot CPU is 0. */
        return id < index_len ? index_of[id] : 0;
}

unsigned arch_cpu_slots(void)
{
        return slots;
}

static uint32_t apic_id_of(unsigned cpu)
{
        if (cpu >= slots)
                return MADT_APIC_ID_NONE;
        return cpu_apic_id ? cpu_apic_id[cpu] : boot_apic_id;
}

void arch_cpu_idle(void)
{
        x86_wait_for_interrupt();
}

void arch_cpu_kick(unsigned cpu)
{
        /* Any vector but the tick's: the trap handler acknowledges it, the guest has exited. */
        uint32_t id = apic_id_of(cpu);

        if (cpu != arch_cpu_index() && id != MADT_APIC_ID_NONE)
                x86_lapic_send_ipi(id, ICR_FIXED | KICK_VECTOR);
}

/* MSI to Keel's CPU `cpu` (SDM 3, 11.11): fixed delivery, edge, physical destination. */
int arch_msi_message(unsigned cpu, uint8_t vector, uint64_t *addr, uint32_t *data)
{
        uint32_t id = apic_id_of(cpu);

        if (!cpus_known || id > 0xff || vector < 32)
                return -KEEL_EINVAL;
        *addr = 0xfee00000u | id << 12;
        *data = vector;
        return 0;
}

void arch_msi_describe(char *buf, unsigned len)
{
        snprintf(buf, len, "local APIC messages (0xfee00000 + APIC id << 12), fixed and edge");
}

void x86_smp_init_boot_cpu(void)
{
        boot_apic_id = x86_lapic_id();
        if (cpu_apic_id)
                cpu_apic_id[0] = boot_apic_id;
        cpus_known = true;
}

static void delay_us(uint64_t us)
{
        uint64_t end = x86_rdtsc() + tsc_from_us(us);

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
        x86_ap_cpu_setup(ap.mem + AP_TABLES_OFF, ap.mem + AP_DF_OFF + AP_IST_SIZE,
                         ap.mem + AP_NMI_OFF + AP_IST_SIZE);
        x86_write_cr4(ap.cr4);
        x86_wrmsr(MSR_PAT, ap.pat);
        x86_ap_time_init();
        arch_virt_enable();
        LOG_INFO("cpu %u up (APIC id %u)", index, x86_lapic_id());
        __atomic_store_n(&ap.state, AP_ONLINE, __ATOMIC_RELEASE);
        ap.entry(index);
        panic("ap_entry returned on cpu %u", index);
}

/* Start the AP with APIC id `id` as CPU `index`; whether it came up. */
static bool start_ap(uint8_t *tramp, uint32_t id, unsigned index)
{
        uint32_t vector = (uint32_t)((uintptr_t)tramp >> 12);
        int s;

        ap.mem = ap_mem[index];
        ap_params.stack = (uint64_t)(uintptr_t)(ap.mem + AP_STACK_OFF + AP_STACK_SIZE);
        ap_params.arg = index;
        cpu_apic_id[index] = id;
        index_of[id] = (uint16_t)index;
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
                        /* Its memory stays for the next AP, which starts as CPU `index`. */
                        cpu_apic_id[index] = MADT_APIC_ID_NONE;
                        index_of[id] = 0;
                        LOG_WARN("CPU with APIC id %u did not answer within %u ms of its "
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

/* A zeroed boot-time table of `bytes` from the page allocator, or NULL. */
static void *boot_table(size_t bytes)
{
        hpa_t pa;

        if (palloc_alloc(&keel_palloc, align_up(bytes, PAGE_SIZE) / PAGE_SIZE, PAGE_SIZE, &pa))
                return NULL;
        return hva_ptr(arch_hpa_to_hva(pa));
}

/*
 * The enabled APIC ids of the firmware's MADT (arch/madt.h) into madt_ids, and the tables
 * sized from them: CPU index -> APIC id, APIC id -> CPU index. False if there is at most one
 * CPU or no memory for the tables (then Keel runs on the boot CPU).
 */
static bool madt_tables(const struct boot_info *bi)
{
        uint32_t len, top = 1;
        const uint8_t *madt = acpi_find_table(bi->rsdp, "APIC", &len);
        unsigned n = madt ? x86_madt_cpus(madt, len, NULL, 0) : 0;

        madt_listed = n;
        if (n <= 1)
                return false;
        madt_ids = boot_table(n * sizeof(*madt_ids));
        if (madt_ids) /* n counted repeats too: the distinct ones are the first listed */
                madt_listed = x86_madt_cpus(madt, len, madt_ids, n);
        for (unsigned i = 0; madt_ids && i < madt_listed; i++)
                if (madt_ids[i] < APIC_ID_TABLE_MAX && madt_ids[i] + 1 > top)
                        top = madt_ids[i] + 1;
        cpu_apic_id = boot_table(n * sizeof(*cpu_apic_id));
        ap_mem = boot_table(n * sizeof(*ap_mem));
        index_of = boot_table(top * sizeof(*index_of));
        if (!madt_ids || !cpu_apic_id || !ap_mem || !index_of) {
                no_start = "no memory for the per-CPU tables";
                return false;
        }
        for (unsigned i = 0; i < n; i++)
                cpu_apic_id[i] = MADT_APIC_ID_NONE;
        cpu_apic_id[0] = boot_apic_id;
        index_len = top;
        return true;
}

int x86_smp_prepare(const struct boot_info *bi, struct hostmap *m, uint64_t cr3, uint64_t efer,
                    uint64_t cr0)
{
        uint64_t tramp_pa = hpa_raw(bi->low_page);
        uint8_t *tramp = hva_ptr(arch_hpa_to_hva(bi->low_page));
        unsigned want;
        int err;

        if (!madt_tables(bi))
                return 0;
        if (!tramp_pa || tramp_pa >= 0x100000 || (tramp_pa & (PAGE_SIZE - 1))) {
                no_start = "no free page below 1 MiB";
                return 0;
        }
        if (cr3 >> 32) {
                no_start = "Keel's page tables lie above 4 GiB";
                return 0;
        }
        /* Three guard pages per CPU: more than the fixed table holds on a large machine. */
        want = m->count + 3 * madt_listed + HOSTMAP_MAX_REGIONS;
        if (hostmap_grow(m, boot_table(want * sizeof(struct hostmap_region)), want)) {
                no_start = "no memory for the per-CPU tables";
                return 0;
        }
        want = madt_listed - 1;
        for (unsigned i = 1; i <= want; i++) {
                hpa_t mem;
                uint8_t *p;

                err = palloc_alloc(&keel_palloc, AP_MEM_PAGES, PAGE_SIZE, &mem);
                if (err) {
                        LOG_WARN("no memory for the stacks of CPU %u and later ones (%s); "
                                 "left out",
                                 i, keel_strerror(err));
                        break;
                }
                p = hva_ptr(arch_hpa_to_hva(mem));
                err = x86_stack_guards(m, p + AP_STACK_OFF, p + AP_DF_OFF, p + AP_NMI_OFF, (int)i);
                if (err)
                        return err;
                ap_mem[i] = p;
                ap_slots = i;
        }
        slots = 1 + ap_slots;
        memcpy(tramp, x86_ap_trampoline, (size_t)(x86_ap_trampoline_end - x86_ap_trampoline));
        *(uint64_t *)(tramp + AP_TR_CR3) = cr3;
        *(uint64_t *)(tramp + AP_TR_EFER) =
            efer & ~(X86_EFER_LMA | X86_EFER_SVME); /* SVME: the vendor's */
        *(uint64_t *)(tramp + AP_TR_CR0) = cr0;
        *(uint64_t *)(tramp + AP_TR_ENTRY) = (uint64_t)(uintptr_t)ap_main;
        *(uint64_t *)(tramp + AP_TR_PARAMS) = (uint64_t)(uintptr_t)&ap_params;
        return hostmap_add(m, tramp_pa, PAGE_SIZE, PT_READ | PT_EXEC, "AP start-up trampoline page",
                           HOSTMAP_NO_CPU);
}

unsigned arch_smp_start(const struct boot_info *bi, void (*ap_entry)(unsigned index))
{
        uint32_t self = x86_lapic_id();
        unsigned listed = madt_listed, online = 1;
        uint64_t tramp_pa = hpa_raw(bi->low_page);
        uint8_t *tramp = hva_ptr(arch_hpa_to_hva(bi->low_page));

        if (listed <= 1) {
                LOG_INFO("1 CPU online (%u in the ACPI MADT)", listed);
                return 1;
        }
        if (!no_start && !x86_keel_maps(tramp_pa))
                no_start = "the trampoline page is not identity-mapped";
        if (no_start) {
                LOG_WARN("cannot start the other CPUs: %s; running on the boot CPU only", no_start);
                LOG_INFO("1 CPU online (%u in the ACPI MADT)", listed);
                return 1;
        }
        ap.entry = ap_entry;
        ap.cr4 = x86_read_cr4() & ~(1ull << 13); /* VMXE: the vendor's enable sets it */
        ap.pat = x86_rdmsr(MSR_PAT);

        for (unsigned i = 0; i < listed; i++) {
                if (madt_ids[i] == self)
                        continue;
                if (online > ap_slots)
                        break; /* no memory for more (reported by x86_smp_prepare) */
                if ((!x86_lapic_x2apic() && madt_ids[i] > 0xfe) || madt_ids[i] >= index_len) {
                        LOG_WARN("CPU with APIC id %u %s; left out", madt_ids[i],
                                 madt_ids[i] >= index_len ? "is above Keel's APIC id table"
                                                          : "needs x2APIC mode");
                        continue;
                }
                online += start_ap(tramp, madt_ids[i], online);
        }
        LOG_INFO("%u CPU%s online (%u in the ACPI MADT)", online, online == 1 ? "" : "s", listed);
        return online;
}
