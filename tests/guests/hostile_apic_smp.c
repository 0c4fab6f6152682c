/*
 * hostile_apic_smp (x86_64, booted as a Linux kernel with `vcpus = 2`: mklinux.py, `kernel =`):
 * the two vCPUs race on the interrupt controllers (docs/x86-interrupts.md, "Several vCPUs"):
 *   1. vCPU 0 starts vCPU 1 with INIT-SIPI-SIPI into a real-mode trampoline copied to 0x8000,
 *      which takes it to long mode on Keel's page tables;
 *   2. IPI storms both ways at once (N fixed IPIs each, handlers EOI): each vCPU takes at
 *      least one and at most N (a vector already requested coalesces), and a last, different
 *      vector sent afterwards arrives exactly once on each;
 *   3. both write the same I/O APIC redirection entries through IOREGSEL/IOWIN at once (each
 *      pair can be split by the other vCPU's: any entry may get any of the values); then
 *      vCPU 0 alone masks every entry and reads each back masked, the version intact;
 *   4. vCPU 0 rewrites one page-table entry (shared: both run on the same tables) between
 *      the LAPIC page and a RAM page while vCPU 1 reads through it: every read gives the
 *      LAPIC version or the RAM page's marker, nothing else (Keel emulates the access the
 *      tables named when it trapped, or lets the instruction run again);
 *   5. vCPU 1 halts with interrupts off (Keel parks it) while vCPU 0 sends it N NMIs by APIC ID
 *      and N to all excluding self: vCPU 1 takes between 1 and 2N (each wakes it; those that
 *      arrive while one is pending collapse), vCPU 0 none; once they are over, one more NMI
 *      is taken exactly once;
 * then exits 0; a wrong result is a FAIL line and exit 1.
 */
#include "smp_x86.h"

#define N          2000
#define VEC_TO_AP  0x51
#define VEC_TO_BSP 0x52
#define VEC_LAST   0x53
#define WINDOW_VA  0x400000ull /* 2 MiB slot 2 of Keel's first page directory */
#define KEEL_PD0   0x3000ull   /* Keel's page directory for guest-physical 0..1 GiB */
#define RAM_MARKER 0x6b65656cu

static volatile uint64_t ap_stage, ap_done_ipis, ap_reads, ap_bad, ap_lapic, ap_ram;
static volatile uint64_t bsp_go;
static uint64_t win_pt[512] __attribute__((aligned(4096)));
static volatile uint32_t ram_page[1024] __attribute__((aligned(4096)));
static unsigned failed, checks;

static void expect(const char *what, uint64_t got, uint64_t want)
{
        checks++;
        if (got == want)
                return;
        failed++;
        guest_printf("FAIL: hostile_apic_smp: %s: %lu, expected %lu\n", what, (unsigned long)got,
                     (unsigned long)want);
}

static void wait_stage(volatile uint64_t *v, uint64_t want)
{
        for (uint64_t i = 0; *v < want; i++)
                if (i > 4000000000ull) {
                        guest_printf("FAIL: hostile_apic_smp: waited for stage %lu for ever\n",
                                     (unsigned long)want);
                        guest_exit(1);
                }
}

static void ioapic_race(void)
{
        for (unsigned i = 0; i < N; i++) {
                unsigned reg = 0x10 + i % 48;

                ioapic_write(reg, (i & 1 ? 0x10000u : 0x1a0ffu) | irq_cpu() << 4);
        }
}

/* vCPU 1 is halted with interrupts off for good (ap_stage 5): NMIs wake it, one by one. */
static void nmi_storm(void)
{
        uint64_t before = nmi_count[1], own = nmi_count[0], got, last;

        for (unsigned i = 0; i < N; i++)
                lapic_icr(1u << 24, ICR_NMI);
        for (unsigned i = 0; i < N; i++)
                lapic_icr(0, ICR_ALL_EXCL_SELF | ICR_NMI);
        /* Until vCPU 1 has taken them all: no change for a while. */
        do {
                last = nmi_count[1];
                for (volatile unsigned i = 0; i < 20000000; i++)
                        ;
        } while (nmi_count[1] != last);
        got = nmi_count[1] - before;
        checks++;
        if (got < 1 || got > 2 * N) {
                failed++;
                guest_printf("FAIL: hostile_apic_smp: NMIs taken by vCPU 1: %lu of %u\n",
                             (unsigned long)got, 2 * N);
        }
        expect("NMIs taken by vCPU 0 (the sender)", nmi_count[0] - own, 0);
        expect("NMIs nested", nmi_max_depth, 1);
        last = nmi_count[1];
        lapic_icr(1u << 24, ICR_NMI);
        for (unsigned i = 0; i < 100000000 && nmi_count[1] == last; i++)
                ;
        for (volatile unsigned i = 0; i < 20000000; i++)
                ;
        expect("one more NMI to the halted vCPU 1", nmi_count[1] - last, 1);
        guest_printf("hostile_apic_smp: %u NMIs to vCPU 1 halted with interrupts off: it took "
                     "between 1 and %u, the sender none, and one more after them once\n",
                     2 * N, 2 * N);
}

void ap_main(void);
void ap_main(void)
{
        smp_ap_tables();
        lapic_write(LAPIC_SVR, 0x1ff);
        irq_eoi[1] = 1;
        ap_stage = 1;
        irq_enable();
        /* 2: IPI storm towards vCPU 0 while vCPU 0 storms this one. */
        wait_stage(&bsp_go, 1);
        for (unsigned i = 0; i < N; i++)
                lapic_icr(0u << 24, VEC_TO_BSP);
        ap_stage = 2;
        wait_stage(&bsp_go, 2);
        lapic_icr(0u << 24, VEC_LAST);
        for (unsigned i = 0; i < 100000000 && !irq_count[1][VEC_LAST]; i++)
                ;
        ap_stage = 3;
        /* 3: the I/O APIC race. */
        wait_stage(&bsp_go, 3);
        ioapic_race();
        ap_stage = 4;
        /* 4: reads through the window vCPU 0 keeps remapping. */
        wait_stage(&bsp_go, 4);
        while (bsp_go == 4) {
                uint32_t v = *(volatile uint32_t *)(uintptr_t)(WINDOW_VA + 0x30);

                ap_reads++;
                if (v == LAPIC_VERSION_VALUE)
                        ap_lapic++;
                else if (v == RAM_MARKER)
                        ap_ram++;
                else
                        ap_bad++;
        }
        ap_stage = 5;
        irq_disable();
        for (;;)
                __asm__ volatile("hlt");
}

int64_t guest_main(void)
{
        uint64_t got;

        hx_gdt_init();
        hx_idt_init();
        irq_idt_init();
        nmi_idt_init();
        if (!irq_linux_entry_ok()) {
                guest_printf("FAIL: hostile_apic_smp: not entered through the Linux boot path\n");
                return 1;
        }
        lapic_write(LAPIC_SVR, 0x1ff);
        irq_eoi[0] = 1;

        /* 1: vCPU 1 through the trampoline. */
        smp_start_ap(ap_main);
        wait_stage(&ap_stage, 1);
        guest_printf("hostile_apic_smp: vCPU 1 started through INIT-SIPI-SIPI, in long mode\n");

        /* 2: IPI storms both ways. */
        irq_enable();
        bsp_go = 1;
        for (unsigned i = 0; i < N; i++)
                lapic_icr(1u << 24, VEC_TO_AP);
        wait_stage(&ap_stage, 2);
        bsp_go = 2;
        lapic_icr(1u << 24, VEC_LAST);
        wait_stage(&ap_stage, 3);
        for (unsigned i = 0; i < 100000000 && !irq_count[0][VEC_LAST]; i++)
                ;
        irq_disable();
        got = irq_count[1][VEC_TO_AP];
        checks++;
        if (got < 1 || got > N || irq_count[0][VEC_TO_BSP] < 1 || irq_count[0][VEC_TO_BSP] > N) {
                failed++;
                guest_printf("FAIL: hostile_apic_smp: IPIs taken: vCPU 1 %lu, vCPU 0 %lu of %u\n",
                             (unsigned long)got, (unsigned long)irq_count[0][VEC_TO_BSP], N);
        }
        expect("last IPI on vCPU 0", irq_count[0][VEC_LAST], 1);
        expect("last IPI on vCPU 1", irq_count[1][VEC_LAST], 1);
        guest_printf("hostile_apic_smp: %u IPIs each way at once: each vCPU took between 1 and "
                     "%u, and the last one\n",
                     N, N);

        /* 3: both vCPUs on the same redirection entries. */
        bsp_go = 3;
        ioapic_race();
        wait_stage(&ap_stage, 4);
        for (unsigned pin = 0; pin < 24; pin++) {
                ioapic_write(0x10 + 2 * pin, 0x10000);
                ioapic_write(0x11 + 2 * pin, 0);
                expect("redirection entry masked again", ioapic_read(0x10 + 2 * pin), 0x10000);
        }
        expect("I/O APIC version", ioapic_read(1), IOAPIC_VERSION_VALUE);
        guest_printf("hostile_apic_smp: both vCPUs wrote the same redirection entries %u times "
                     "each; all masked again afterwards\n",
                     N);

        /* 4: one PTE flipped between the LAPIC and RAM while vCPU 1 reads through it. */
        for (unsigned i = 0; i < 1024; i++)
                ram_page[i] = RAM_MARKER;
        win_pt[0] = gpa_of(ram_page) | HX_PTE_P | HX_PTE_RW;
        *(volatile uint64_t *)(uintptr_t)(KEEL_PD0 + 8 * (WINDOW_VA >> 21)) =
            gpa_of(win_pt) | HX_PTE_P | HX_PTE_RW;
        hx_flush_tlb();
        bsp_go = 4;
        for (unsigned i = 0; i < 4 * N; i++) {
                *(volatile uint64_t *)&win_pt[0] =
                    (i & 1 ? LAPIC_BASE | 0x10 : gpa_of(ram_page)) | HX_PTE_P | HX_PTE_RW;
                __asm__ volatile("invlpg (%0)" : : "r"(WINDOW_VA) : "memory");
                (void)*(volatile uint32_t *)(uintptr_t)(WINDOW_VA + 0x30);
        }
        bsp_go = 5;
        wait_stage(&ap_stage, 5);
        expect("reads through the window that were neither LAPIC nor RAM", ap_bad, 0);
        guest_printf("hostile_apic_smp: %lu reads through a PTE flipped %u times between the "
                     "LAPIC and RAM: only their values\n",
                     (unsigned long)ap_reads, 4 * N);
        nmi_storm();
        if (failed) {
                guest_printf("hostile_apic_smp: %u of %u checks failed\n", failed, checks);
                return 1;
        }
        guest_printf("hostile_apic_smp: all %u checks passed\n", checks);
        return 0;
}
