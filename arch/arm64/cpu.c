/*
 * arm64 CPU set-up at EL2: the console (the PL011 named by ACPI SPCR), the checks before
 * ExitBootServices (entered at EL2? GICv3 system registers? 48-bit physical addresses?),
 * Keel's own EL2 translation tables and exception vectors, the register dump of a fault in
 * Keel, halting, and ending an emulator run (semihosting).
 */
#include <stdio.h>
#include <string.h>

#include <arch/cpu.h>
#include <arch/percpu.h>
#include <arch/pt_arm64.h>
#include <arch/sysreg.h>
#include <drivers/acpi_tables.h>
#include <drivers/pci.h>
#include <drivers/pl011.h>
#include <keel/arch.h>
#include <keel/boot.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/hostmap.h>
#include <keel/image.h>
#include <keel/log.h>
#include <keel/pt.h>
#include <keel/time.h>
#include <vmm/vmm.h>

#define SPCR_TYPE_PL011      0x03
#define SPCR_TYPE_SBSA_32BIT 0x0d
#define SPCR_TYPE_SBSA       0x0e
#define QEMU_VIRT_PL011      0x09000000ull /* used when the firmware has no SPCR table */

/*
 * The boot CPU's stacks in the boot stage's stack area (loader data): a guard page, the trap
 * stack Keel's vectors switch to, a guard page, the kernel stack up to the area's end.
 */
#define BOOT_TRAP_BOTTOM  PAGE_SIZE
#define BOOT_TRAP_TOP     (BOOT_TRAP_BOTTOM + 3 * PAGE_SIZE)
#define BOOT_STACK_BOTTOM (BOOT_TRAP_TOP + PAGE_SIZE)
_Static_assert(BOOT_STACK_BOTTOM + 64 * 1024 <= BOOT_STACK_AREA, "a 64 KiB stack at least");

#define SCTLR_WXN (1ull << 19)

static struct pt keel_pt;
static struct arm64_gic_info gic_info;
static unsigned pa_bits;
/* The boot CPU's debug and trap controls as the firmware left them, for the secondaries. */
static uint64_t boot_mdcr, boot_hstr, boot_cptr;

void arch_console_init(hpa_t rsdp)
{
        uint32_t len;
        const uint8_t *spcr = acpi_find_table(rsdp, "SPCR", &len);
        uint64_t base = QEMU_VIRT_PL011;

        if (spcr && len >= 52 && spcr[40] == 0 /* system memory */ &&
            (spcr[36] == SPCR_TYPE_PL011 || spcr[36] == SPCR_TYPE_SBSA ||
             spcr[36] == SPCR_TYPE_SBSA_32BIT))
                base = acpi_u64(spcr + 44);
        pl011_drv_init(base);
}

void arch_console_write(const char *s, unsigned long len)
{
        pl011_drv_write(s, len);
}

static unsigned current_el(void)
{
        return (read_sysreg(CurrentEL) >> 2) & 3;
}

static const unsigned parange_bits[] = {32, 36, 40, 42, 44, 48, 52};

int arch_virt_probe(char *why, size_t len)
{
        uint64_t mmfr0, pfr0;
        unsigned el = current_el(), pr;

        if (el != 2) {
                snprintf(why, len,
                         "Keel was started at EL%u, not EL2: the firmware must start EFI "
                         "applications at EL2 (QEMU: -machine virt,virtualization=on)",
                         el);
                return -KEEL_ENODEV;
        }
        pfr0 = read_sysreg(id_aa64pfr0_el1);
        if (((pfr0 >> 24) & 0xf) == 0) {
                snprintf(why, len,
                         "this CPU has no GICv3 system-register interface: Keel needs a GICv3 "
                         "(QEMU: -machine virt,gic-version=3)");
                return -KEEL_ENODEV;
        }
        mmfr0 = read_sysreg(id_aa64mmfr0_el1);
        pr = mmfr0 & 0xf;
        pa_bits = pr < 7 ? parange_bits[pr] : 52;
        if (pa_bits < 48 || ((mmfr0 >> 28) & 0xf) == 0xf /* no 4 KiB granule */) {
                snprintf(why, len,
                         "this CPU supports %u-bit physical addresses%s; Keel's stage-2 tables "
                         "need 48 bits and the 4 KiB granule (a CPU like QEMU's -cpu max has them)",
                         pa_bits, ((mmfr0 >> 28) & 0xf) == 0xf ? " and no 4 KiB granule" : "");
                return -KEEL_ENODEV;
        }
        return 0;
}

void arch_virt_describe(char *buf, size_t len)
{
        uint64_t vtr = read_sysreg(ICH_VTR_EL2);
        uint64_t mmfr1 = read_sysreg(id_aa64mmfr1_el1);

        snprintf(buf, len, "EL2 (%s), %u-bit PA, %s VMIDs, GICv3 with %u list registers",
                 ((mmfr1 >> 8) & 0xf) ? "VHE present, not used" : "no VHE", pa_bits,
                 ((mmfr1 >> 4) & 0xf) == 2 ? "16-bit" : "8-bit", (unsigned)(vtr & 0x1f) + 1);
}

_Noreturn void arch_enter_kernel(const struct boot_info *bi)
{
        uint8_t *top = (uint8_t *)hva_ptr(bi->stack_area) + BOOT_STACK_AREA;

        arm64_enter_kernel_on(bi, top);
}

/* Map a device region page by page, tolerating pages the memory map already covered. */
static void map_device(uint64_t base, uint64_t size)
{
        for (uint64_t p = align_down(base, PAGE_SIZE); p < base + size; p += PAGE_SIZE) {
                int err = pt_map(&keel_pt, p, hpa(p), PAGE_SIZE, PT_READ | PT_WRITE | PT_UNCACHED);

                if (err && err != -KEEL_EEXIST)
                        panic("cannot map device page %#llx: %s", (unsigned long long)p,
                              keel_strerror(err));
        }
}

/*
 * The MCFG's ECAM windows, Device-nGnRE in Keel's own map (docs/pci.md): in blocks where the
 * memory map left the window unmapped, page by page where a memory-map range covers part.
 */
static void map_ecam(const struct boot_info *bi)
{
        struct pci_segment seg[PCI_MAX_SEGMENTS];
        unsigned n = pci_ecam_windows(bi->rsdp, seg, PCI_MAX_SEGMENTS);

        for (unsigned i = 0; i < n; i++) {
                uint64_t base = seg[i].ecam + ((uint64_t)seg[i].bus_start << 20);
                uint64_t size = pci_segment_window(&seg[i]);
                int err = pt_map(&keel_pt, base, hpa(base), size, PT_READ | PT_WRITE | PT_UNCACHED);

                if (err == -KEEL_EEXIST)
                        map_device(base, size);
                else if (err)
                        panic("cannot map the PCI ECAM window %#llx+%#llx: %s",
                              (unsigned long long)base, (unsigned long long)size,
                              keel_strerror(err));
        }
}

/* The regions of Keel's own map with their own permissions (keel/hostmap.h). */
static void record_regions(const struct boot_info *bi)
{
        uint64_t area = (uint64_t)(uintptr_t)hva_ptr(bi->stack_area);
        int err = keel_image_regions(&keel_hostmap);

        if (!err)
                err = hostmap_add(&keel_hostmap, area + BOOT_TRAP_BOTTOM - PAGE_SIZE, PAGE_SIZE,
                                  HOSTMAP_GUARD, "guard page below the trap stack of", 0);
        if (!err)
                err = hostmap_add(&keel_hostmap, area + BOOT_STACK_BOTTOM - PAGE_SIZE, PAGE_SIZE,
                                  HOSTMAP_GUARD, "guard page below the stack of", 0);
        if (!err)
                err = arm64_smp_prepare(bi, &keel_hostmap);
        if (err)
                panic("cannot record Keel's memory regions: %s", keel_strerror(err));
}

/*
 * Keel's own EL2 tables: every memory-map range (cacheable or device) plus Keel's devices.
 * W^X (docs/memory.md): Keel's text read+execute, rodata, relro and dynamic relocations
 * read-only, the guard pages below every stack unmapped, everything else (data, bss, stacks,
 * per-CPU data, the page allocator's memory and so every guest's RAM, the firmware's memory,
 * devices) read+write and never executable; SCTLR_EL2.WXN makes the MMU itself refuse to
 * execute any writable page. PAN is set where the CPU has it (what it does at EL2: docs).
 */
static void build_el2_tables(const struct boot_info *bi)
{
        const unsigned rw = PT_READ | PT_WRITE;
        uint64_t tcr, sctlr, mmfr1 = read_sysreg(id_aa64mmfr1_el1);
        bool pan = ((mmfr1 >> 20) & 0xf) != 0;
        int err = pt_init(&keel_pt, &arm64_pt_el2, &keel_palloc);

        if (err)
                panic("cannot allocate Keel's EL2 page tables: %s", keel_strerror(err));
        record_regions(bi);
        for (unsigned i = 0; i < bi->map_count; i++) {
                const struct boot_mem_range *r = &bi->map[i];

                err = hostmap_map_range(&keel_hostmap, &keel_pt, hpa_raw(r->base),
                                        r->pages * PAGE_SIZE, r->wb ? rw : rw | PT_UNCACHED);
                if (err)
                        panic("cannot map memory-map range %#llx+%#llx: %s",
                              (unsigned long long)hpa_raw(r->base),
                              (unsigned long long)(r->pages * PAGE_SIZE), keel_strerror(err));
        }
        if (pl011_drv_base())
                map_device(pl011_drv_base(), PAGE_SIZE);
        map_ecam(bi);
        map_device(gic_info.gicd, 0x10000);
        for (unsigned i = 0; i < gic_info.rd_count; i++)
                map_device(gic_info.rd[i].base, gic_info.rd[i].size);

        tcr = 16 /* T0SZ: 48-bit VA */ | 1ull << 8 | 1ull << 10 /* WBWA walks */ |
              3ull << 12 /* inner shareable */ | 5ull << 16 /* PS: 48 bits */ | 1ull << 23 |
              1ull << 31;
        sctlr = read_sysreg(sctlr_el2);
        sctlr |= 1u << 0 | 1u << 2 | 1u << 12 | SCTLR_WXN; /* M, C, I, WXN */
        sctlr &= ~(1ull << 1 | 1ull << 25);                /* A, EE */
        arm64_mmu_switch(hpa_raw(keel_pt.root), tcr, ARM64_MAIR_VALUE, sctlr);
        if (pan)
                arm64_pan_enable();
        LOG_INFO("EL2 translation tables: %u ranges, %llu table pages", bi->map_count,
                 (unsigned long long)keel_pt.table_pages);
        keel_image_log();
        LOG_INFO("W^X: text r-x, rodata and relro r--, the rest rw- and XN, SCTLR_EL2.WXN "
                 "on; guard pages below the stacks; PAN %s",
                 pan ? "on" : "absent");
}

void arch_cpu_setup(const struct boot_info *bi)
{
        __asm__ volatile("msr daifset, #0xf");
        /* Per-CPU data first: the vectors find their trap stack through it. */
        arm64_percpu_boot_init((uint8_t *)hva_ptr(bi->stack_area) + BOOT_TRAP_TOP);
        write_sysreg(vbar_el2, (uint64_t)(uintptr_t)arm64_vectors);
        isb();
        boot_mdcr = read_sysreg(mdcr_el2);
        boot_hstr = read_sysreg(hstr_el2);
        boot_cptr = read_sysreg(cptr_el2);
        if (arm64_gic_find(bi->rsdp, &gic_info))
                panic("no GICv3 distributor/redistributor in the ACPI MADT");
        build_el2_tables(bi);
        arm64_gic_init(&gic_info);
}

/*
 * The EL2 controls for running guests, the same on every CPU (arch_virt_enable on the boot
 * CPU, arm64_secondary_setup on the others): FP/SIMD, SVE and SME untrapped with the longest
 * vector lengths, stage-2 format, counters and timers, the virtual CPU interface off, HCR_EL2
 * as between guests.
 */
void arm64_virt_cpu_enable(void)
{
        uint64_t pfr0 = read_sysreg(id_aa64pfr0_el1), pfr1 = read_sysreg(id_aa64pfr1_el1);
        uint64_t mmfr1 = read_sysreg(id_aa64mmfr1_el1);
        uint64_t cptr = read_sysreg(cptr_el2), vtcr;

        /*
         * FP/SIMD and SVE belong to the guest while it runs: no traps. SME, trace and the
         * activity monitors are hidden from guests (idregs.c): their instructions and
         * registers trap (TSM, TTA, TAM) and are undefined for the guest.
         */
        cptr &= ~(1ull << 10 | 1ull << 31); /* TFP, TCPAC */
        cptr |= 1ull << 20 | 1ull << 30;    /* TTA, TAM */
        if ((pfr0 >> 32) & 0xf) {
                cptr &= ~(1ull << 8);            /* TZ */
                write_sysreg(S3_4_C1_C2_0, 0xf); /* ZCR_EL2: the longest vector length */
        }
        if ((pfr1 >> 24) & 0xf)
                cptr |= 1ull << 12; /* TSM */
        write_sysreg(cptr_el2, cptr);
        /*
         * The PMU, statistical profiling, the trace buffer and trace filtering are hidden
         * too: TPM, TPMCR, TPMS, TTRF trap their registers; E2PB and E2TB 0 give their buffers
         * to EL2 (EL1 accesses trap); debug exceptions go to the guest's EL1 (TDE 0). HPMN
         * stays as the firmware set it.
         */
        write_sysreg(mdcr_el2, (read_sysreg(mdcr_el2) & 0x1f) | 1ull << 5 | 1ull << 6 | 1ull << 14 |
                                   1ull << 19);
        vtcr = 16 /* T0SZ: 48-bit IPA */ | 2ull << 6 /* SL0: start at level 0 */ | 1ull << 8 |
               1ull << 10 | 3ull << 12 | 5ull << 16 /* PS: 48 bits */ | 1ull << 31;
        if (((mmfr1 >> 4) & 0xf) == 2)
                vtcr |= 1ull << 19; /* VS: 16-bit VMIDs */
        write_sysreg(vtcr_el2, vtcr);
        /*
         * EL1 reads the physical counter and owns the EL1 physical timer (EL1PCTEN, EL1PCEN):
         * it is switched per vCPU like the virtual one; Keel itself uses only CNTHP.
         */
        write_sysreg(cnthctl_el2, 3);
        write_sysreg(cntvoff_el2, 0);
        write_sysreg(cntp_ctl_el0, 0); /* whatever the firmware left running */
        write_sysreg(ICH_HCR_EL2, 0);
        write_sysreg(hcr_el2, HCR_RW);
        isb();
}

void arm64_secondary_setup(void)
{
        write_sysreg(mdcr_el2, boot_mdcr);
        write_sysreg(hstr_el2, boot_hstr);
        write_sysreg(cptr_el2, boot_cptr); /* its RES1 bits; arm64_virt_cpu_enable does the rest */
        arm64_virt_cpu_enable();
        arm64_hyp_timer_stop();
        write_sysreg(cntv_ctl_el0, 0);
        arm64_gic_cpu_init(&gic_info);
        if ((read_sysreg(id_aa64mmfr1_el1) >> 20) & 0xf)
                arm64_pan_enable();
}

void arm64_dcache_clean_poc(const void *p, uint64_t len)
{
        uint64_t line = 4ull << ((read_sysreg(ctr_el0) >> 16) & 0xf); /* DminLine, bytes */
        uintptr_t a = (uintptr_t)p;

        for (uintptr_t l = a & ~(uintptr_t)(line - 1); l < a + len; l += line)
                __asm__ volatile("dc cvac, %0" ::"r"(l) : "memory");
        dsb_sy();
}

uint64_t arch_tsc(void)
{
        isb();
        return read_sysreg(cntpct_el0);
}

uint64_t arch_tsc_khz(void)
{
        return arm64_cntfrq() / 1000;
}

uint64_t arm64_cntfrq(void)
{
        return read_sysreg(cntfrq_el0);
}

void arm64_hyp_timer_arm(uint64_t ticks_from_now)
{
        write_sysreg(cnthp_tval_el2, ticks_from_now);
        write_sysreg(cnthp_ctl_el2, CNT_CTL_ENABLE);
        isb();
}

void arm64_hyp_timer_stop(void)
{
        write_sysreg(cnthp_ctl_el2, 0);
        isb();
}

struct keel_trap_frame {
        uint64_t x[31];
        uint64_t sp;
};

static const char *const trap_kinds[] = {"synchronous exception", "IRQ", "FIQ", "SError"};

void arm64_keel_trap(struct keel_trap_frame *f, unsigned kind);

/*
 * Name what an abort in Keel ran into: ESR_EL2's EC (0x21 instruction abort, 0x25 data abort,
 * both from EL2) and its fault status code (bits 5:0: 0b0001LL translation fault, 0b0011LL
 * permission fault at level LL), WnR (bit 6) for data aborts; FAR_EL2 holds the address.
 */
static void report_abort(uint64_t esr, uint64_t far)
{
        unsigned ec = (unsigned)ESR_EC(esr), fsc = esr & 0x3f;
        const struct hostmap_region *r = hostmap_find(&keel_hostmap, far);
        char where[96];
        const char *what;

        if (ec != 0x21 && ec != 0x25)
                return;
        hostmap_describe(&keel_hostmap, far, where, sizeof(where));
        if ((fsc & 0x3c) == 0x04)
                what = ec == 0x21 ? "instruction fetch from an unmapped page"
                                  : "access to an unmapped page";
        else if ((fsc & 0x3c) == 0x0c)
                what = ec == 0x21     ? "instruction fetch from a non-executable page (XN/WXN)"
                       : (esr & 0x40) ? "write to a read-only page"
                                      : "read refused by the page tables";
        else
                what = "other abort";
        log_printf(LOG_LEVEL_ERROR | LOG_KEEL, "%s abort: %s at %#llx %s",
                   ec == 0x21 ? "instruction" : "data", what, (unsigned long long)far, where);
        if (r && r->attrs == HOSTMAP_GUARD)
                log_printf(LOG_LEVEL_ERROR | LOG_KEEL, "stack overflow: far %#llx is %s",
                           (unsigned long long)far, where);
}

void arm64_keel_trap(struct keel_trap_frame *f, unsigned kind)
{
        uint64_t esr = read_sysreg(esr_el2);

        log_printf(LOG_LEVEL_ERROR | LOG_KEEL,
                   "%s in Keel at EL2: esr 0x%llx (class 0x%llx), elr 0x%llx, far 0x%llx",
                   trap_kinds[kind & 3], (unsigned long long)esr, (unsigned long long)ESR_EC(esr),
                   (unsigned long long)read_sysreg(elr_el2),
                   (unsigned long long)read_sysreg(far_el2));
        if ((kind & 3) == 0)
                report_abort(esr, read_sysreg(far_el2));
        for (unsigned i = 0; i < 30; i += 3)
                log_printf(LOG_LEVEL_ERROR, "  x%-2u %016llx  x%-2u %016llx  x%-2u %016llx", i,
                           (unsigned long long)f->x[i], i + 1, (unsigned long long)f->x[i + 1],
                           i + 2, (unsigned long long)f->x[i + 2]);
        log_printf(LOG_LEVEL_ERROR, "  x30 %016llx  sp  %016llx  spsr %08llx",
                   (unsigned long long)f->x[30], (unsigned long long)f->sp,
                   (unsigned long long)read_sysreg(spsr_el2));
        arch_dump_state();
        log_printf(LOG_LEVEL_ERROR | LOG_KEEL, "panic: %s in Keel: system halted",
                   trap_kinds[kind & 3]);
        arch_halt();
}

void arch_dump_state(void)
{
        uint64_t sp;

        __asm__ volatile("mov %0, sp" : "=r"(sp));
        log_printf(LOG_LEVEL_ERROR, "  sp %016llx  hcr %016llx  sctlr %016llx",
                   (unsigned long long)sp, (unsigned long long)read_sysreg(hcr_el2),
                   (unsigned long long)read_sysreg(sctlr_el2));
        log_printf(LOG_LEVEL_ERROR, "  ttbr0 %016llx  vttbr %016llx  vbar %016llx",
                   (unsigned long long)read_sysreg(ttbr0_el2),
                   (unsigned long long)read_sysreg(vttbr_el2),
                   (unsigned long long)read_sysreg(vbar_el2));
        log_printf(LOG_LEVEL_ERROR, "  return address %p", __builtin_return_address(0));
}

__attribute__((no_stack_protector)) bool arch_random_u64(uint64_t *out)
{
        uint64_t v, nzcv;

        if (((read_sysreg(id_aa64isar0_el1) >> 60) & 0xf) == 0) /* FEAT_RNG */
                return false;
        /* RNDR (s3_3_c2_c4_0): NZCV = 0b0000 on success, 0b0100 if no number was ready. */
        for (unsigned i = 0; i < 10; i++) {
                __asm__ volatile("mrs %0, s3_3_c2_c4_0; mrs %1, nzcv" : "=r"(v), "=r"(nzcv));
                if (!(nzcv & (1ull << 30))) {
                        *out = v;
                        return true;
                }
        }
        return false;
}

noreturn void arch_halt(void)
{
        __asm__ volatile("msr daifset, #0xf");
        for (;;)
                __asm__ volatile("wfi");
}

void arch_test_finish(bool pass)
{
        /* Semihosting SYS_EXIT with ADP_Stopped_ApplicationExit: QEMU exits with `code`. */
        static uint64_t block[2];

        block[0] = 0x20026;
        block[1] = pass ? 0 : 1;
        arm64_semihosting(0x18, block);
}

/*
 * MSI on arm64 needs the GICv3 ITS (device and collection tables, a command queue, LPI
 * property and pending tables) or a GICv2m frame; Keel programs neither yet, so its PCI
 * drivers poll (docs/pci.md).
 */
int arch_msi_message(unsigned cpu, uint8_t vector, uint64_t *addr, uint32_t *data)
{
        (void)cpu;
        (void)vector;
        (void)addr;
        (void)data;
        return -KEEL_ENOTSUP;
}

void arch_msi_describe(char *buf, unsigned len)
{
        if (gic_info.its)
                snprintf(buf, len, "GICv3 ITS at %#llx, not programmed by Keel: drivers poll",
                         (unsigned long long)gic_info.its);
        else if (gic_info.v2m)
                snprintf(buf, len, "GICv2m frame at %#llx, not used by Keel: drivers poll",
                         (unsigned long long)gic_info.v2m);
        else
                snprintf(buf, len, "no ITS or GICv2m frame in the MADT: drivers poll");
}

int arch_map_device(hpa_t base, uint64_t size)
{
        int err = hostmap_map_device(&keel_pt, base, size);

        if (err)
                return err;
        /* The new entries visible to the table walker before the first access (no TLB entry can
         * hold an invalid translation). */
        __asm__ volatile("dsb ishst\n\tisb" ::: "memory");
        return 0;
}

void arch_dma_barrier(void)
{
        /* Full system: device memory and a DMA master are outside the inner-shareable domain. */
        __asm__ volatile("dsb sy" ::: "memory");
}
