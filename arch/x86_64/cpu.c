/*
 * Keel takes the x86-64 CPU: its own GDT (with a TSS whose IST stacks catch double faults
 * and NMIs on a known-good stack), IDT, identity-mapped page tables, quiet legacy PICs, and
 * the trap handler that turns an exception inside Keel into a register dump and a panic.
 */
#include <stdio.h>
#include <string.h>

#include <arch/cpu.h>
#include <arch/host_timer.h>
#include <arch/pt_x86.h>
#include <arch/x86.h>
#include <drivers/pci.h>
#include <drivers/uart16550.h>
#include <keel/arch.h>
#include <keel/boot.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/hostmap.h>
#include <keel/image.h>
#include <keel/irq.h>
#include <keel/log.h>
#include <keel/pt.h>
#include <keel/strlist.h>
#include <vmm/vmm.h>

#define KEEL_STACK_SIZE (64 * 1024)
#define IST_STACK_SIZE  (16 * 1024)

/*
 * Keel's stacks live in the boot stage's stack area (loader data, allocated before
 * ExitBootServices, so not stored in keel.efi): the kernel stack, then the two IST stacks,
 * each above an unmapped guard page (docs/memory.md), so running off the bottom of one faults
 * instead of overwriting what lies below.
 */
#define KSTACK_BOTTOM PAGE_SIZE
#define KSTACK_TOP    (KSTACK_BOTTOM + KEEL_STACK_SIZE)
#define DF_BOTTOM     (KSTACK_TOP + PAGE_SIZE)
#define DF_TOP        (DF_BOTTOM + IST_STACK_SIZE)
#define NMI_BOTTOM    (DF_TOP + PAGE_SIZE)
#define NMI_TOP       (NMI_BOTTOM + IST_STACK_SIZE)
_Static_assert(NMI_TOP <= BOOT_STACK_AREA, "stacks and guard pages fit the area");
static uint8_t *stack_area;
static bool wx_nx; /* Keel's tables use NX (the CPU has it; EFER.NXE on) */

struct tss64 {
        uint32_t reserved0;
        uint64_t rsp[3];
        uint64_t reserved1;
        uint64_t ist[7];
        uint64_t reserved2;
        uint16_t reserved3;
        uint16_t iomap_base;
} __attribute__((packed));

struct idt_entry {
        uint16_t offset_lo;
        uint16_t selector;
        uint8_t ist;
        uint8_t type;
        uint16_t offset_mid;
        uint32_t offset_hi;
        uint32_t reserved;
} __attribute__((packed));

struct descriptor_ptr {
        uint16_t limit;
        uint64_t base;
} __attribute__((packed));

/* A CPU's GDT (null, code 0x08, data 0x10, 16-byte TSS descriptor at 0x18) and its TSS. */
struct cpu_tables {
        uint64_t gdt[5] __attribute__((aligned(16)));
        struct tss64 tss;
};

_Static_assert(sizeof(struct cpu_tables) <= X86_CPU_TABLES_SIZE, "AP tables fit their space");

static struct cpu_tables bsp_tables;
static struct idt_entry keel_idt[256] __attribute__((aligned(16)));
static struct pt keel_pt;

/* Build and load a CPU's GDT and TSS; its IST stacks take double faults (1) and NMIs (2). */
static void gdt_load(struct cpu_tables *t, uint64_t ist_df_top, uint64_t ist_nmi_top)
{
        uint64_t base = (uint64_t)(uintptr_t)&t->tss;
        uint64_t limit = sizeof(t->tss) - 1;
        struct descriptor_ptr gdtr;

        t->tss.ist[0] = ist_df_top;
        t->tss.ist[1] = ist_nmi_top;
        t->tss.iomap_base = sizeof(t->tss);

        t->gdt[0] = 0;
        t->gdt[1] = 0x00af9b000000ffffull; /* 64-bit code, DPL 0 */
        t->gdt[2] = 0x00cf93000000ffffull; /* data, DPL 0 */
        /* 16-byte available 64-bit TSS descriptor. */
        t->gdt[3] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
                    (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
        t->gdt[4] = base >> 32;

        gdtr.limit = sizeof(t->gdt) - 1;
        gdtr.base = (uint64_t)(uintptr_t)t->gdt;
        x86_load_gdt(&gdtr, KEEL_TSS);
}

static void gdt_setup(const struct boot_info *bi)
{
        stack_area = hva_ptr(bi->stack_area);
        gdt_load(&bsp_tables, (uint64_t)(uintptr_t)(stack_area + DF_TOP),
                 (uint64_t)(uintptr_t)(stack_area + NMI_TOP));
}

static void idt_load(void)
{
        struct descriptor_ptr idtr;

        idtr.limit = sizeof(keel_idt) - 1;
        idtr.base = (uint64_t)(uintptr_t)keel_idt;
        __asm__ volatile("lidt %0" ::"m"(idtr));
}

static void idt_setup(void)
{
        for (unsigned v = 0; v < 256; v++) {
                uint64_t addr =
                    (uint64_t)(uintptr_t)(x86_isr_stubs +
                                          X86_ISR_GROUP_SIZE * (v / X86_ISR_GROUP_STUBS) +
                                          X86_ISR_STUB_SIZE * (v % X86_ISR_GROUP_STUBS));

                keel_idt[v] = (struct idt_entry){
                    .offset_lo = addr & 0xffff,
                    .selector = KEEL_CS,
                    .ist = v == X86_VEC_DF    ? 1
                           : v == X86_VEC_NMI ? 2
                                              : 0,
                    .type = 0x8e, /* present, DPL 0, 64-bit interrupt gate */
                    .offset_mid = (addr >> 16) & 0xffff,
                    .offset_hi = addr >> 32,
                };
        }
        idt_load();
}

void x86_ap_cpu_setup(void *tables, void *ist_df_top, void *ist_nmi_top)
{
        gdt_load(tables, (uint64_t)(uintptr_t)ist_df_top, (uint64_t)(uintptr_t)ist_nmi_top);
        idt_load();
}

bool x86_keel_maps(uint64_t pa)
{
        hpa_t out;
        unsigned attrs, level;

        return pt_lookup(&keel_pt, pa, &out, &attrs, &level) == 0 && hpa_raw(out) == pa &&
               !(attrs & PT_UNCACHED);
}

int x86_stack_guards(struct hostmap *m, const uint8_t *stack, const uint8_t *df, const uint8_t *nmi,
                     int cpu)
{
        int err = hostmap_add(m, (uintptr_t)stack - PAGE_SIZE, PAGE_SIZE, HOSTMAP_GUARD,
                              "guard page below the kernel stack of", cpu);

        if (!err)
                err = hostmap_add(m, (uintptr_t)df - PAGE_SIZE, PAGE_SIZE, HOSTMAP_GUARD,
                                  "guard page below the double-fault stack of", cpu);
        if (!err)
                err = hostmap_add(m, (uintptr_t)nmi - PAGE_SIZE, PAGE_SIZE, HOSTMAP_GUARD,
                                  "guard page below the NMI stack of", cpu);
        return err;
}

static bool cpuid_bit(uint32_t leaf, unsigned reg, unsigned bit)
{
        uint32_t r[4];

        x86_cpuid(leaf & 0x80000000u, 0, r);
        if (r[0] < leaf)
                return false;
        x86_cpuid(leaf, 0, r);
        return (r[reg] >> bit) & 1;
}

/* The MCFG's ECAM windows: uncached in Keel's own map wherever they are (docs/pci.md). */
static struct {
        uint64_t base, size;
} ecam[PCI_MAX_SEGMENTS];
static unsigned necam;

static int ecam_regions(const struct boot_info *bi)
{
        struct pci_segment seg[PCI_MAX_SEGMENTS];
        unsigned n = pci_ecam_windows(bi->rsdp, seg, PCI_MAX_SEGMENTS);

        for (unsigned i = 0; i < n; i++) {
                uint64_t base = seg[i].ecam + ((uint64_t)seg[i].bus_start << 20);
                int err = hostmap_add(&keel_hostmap, base, pci_segment_window(&seg[i]),
                                      PT_READ | PT_WRITE | PT_UNCACHED, "the PCI ECAM window",
                                      HOSTMAP_NO_CPU);

                if (err == -KEEL_EEXIST)
                        continue; /* two segments' windows overlap: the first one maps it */
                if (err)
                        return err;
                ecam[necam].base = base;
                ecam[necam++].size = pci_segment_window(&seg[i]);
        }
        return 0;
}

/*
 * Keel's own page tables (docs/memory.md): an identity map of all physical memory, 2 MiB pages
 * where the permissions allow, write-back except the 3-4 GiB hole where the chipset's MMIO
 * (LAPIC, IOAPIC, flash) lives, which is uncached. W^X: Keel's text is read+execute, its
 * rodata and relro read-only, the AP trampoline page read+execute, the guard pages below every
 * stack unmapped, and everything else (data, bss, stacks, the page allocator's memory and so
 * every guest's RAM, per-CPU data, MMIO) read+write and never executable. Then CR0.WP (Keel's
 * own writes honour read-only pages), SMEP and SMAP where the CPU has them.
 */
static void paging_setup(const struct boot_info *bi)
{
        const uint64_t gib = 1ull << 30;
        const unsigned rw = PT_READ | PT_WRITE;
        uint64_t top = align_up(bi->phys_top > 4 * gib ? bi->phys_top : 4 * gib, gib);
        uint64_t cr4 = x86_read_cr4();
        bool smep = cpuid_bit(7, 1, 7), smap = cpuid_bit(7, 1, 20);
        int err;

        wx_nx = cpuid_bit(0x80000001u, 3, 20);
        err = keel_image_regions(&keel_hostmap);
        if (!err)
                err = x86_stack_guards(&keel_hostmap, stack_area + KSTACK_BOTTOM,
                                       stack_area + DF_BOTTOM, stack_area + NMI_BOTTOM, 0);
        if (err)
                panic("cannot record Keel's memory regions: %s", keel_strerror(err));
        err = pt_init(&keel_pt, wx_nx ? &x86_pt_host_nx : &x86_pt_host, &keel_palloc);
        /* The APs start on these tables, with the control registers set below. */
        if (!err)
                err = x86_smp_prepare(bi, &keel_hostmap, hpa_raw(keel_pt.root),
                                      x86_rdmsr(MSR_EFER) | (wx_nx ? X86_EFER_NXE : 0),
                                      x86_read_cr0() | X86_CR0_WP);
        if (!err)
                err = ecam_regions(bi);
        if (!err)
                err = hostmap_map_range(&keel_hostmap, &keel_pt, 0, 3 * gib, rw);
        if (!err)
                err = hostmap_map_range(&keel_hostmap, &keel_pt, 3 * gib, gib, rw | PT_UNCACHED);
        if (!err && top > 4 * gib)
                err = hostmap_map_range(&keel_hostmap, &keel_pt, 4 * gib, top - 4 * gib, rw);
        for (unsigned i = 0; !err && i < necam; i++)
                if (ecam[i].base >= top)
                        err = hostmap_map_range(&keel_hostmap, &keel_pt, ecam[i].base, ecam[i].size,
                                                rw | PT_UNCACHED);
        if (err)
                panic("cannot build Keel's page tables for %llu GiB: %s",
                      (unsigned long long)(top / gib), keel_strerror(err));
        /* NX is a reserved bit until NXE is on: first NXE, then the tables that use it. */
        if (wx_nx)
                x86_wrmsr(MSR_EFER, x86_rdmsr(MSR_EFER) | X86_EFER_NXE);
        x86_write_cr0(x86_read_cr0() | X86_CR0_WP);
        x86_write_cr3(hpa_raw(keel_pt.root));
        cr4 |= (smep ? X86_CR4_SMEP : 0) | (smap ? X86_CR4_SMAP : 0);
        x86_write_cr4(cr4);
        LOG_INFO("own GDT, IDT and page tables active (identity map of %llu GiB, %llu "
                 "table pages)",
                 (unsigned long long)(top / gib), (unsigned long long)keel_pt.table_pages);
        keel_image_log();
        if (wx_nx)
                LOG_INFO("W^X: text r-x, rodata and relro r--, the rest rw- and NX; guard "
                         "pages below the stacks; SMEP %s, SMAP %s",
                         smep ? "on" : "absent", smap ? "on" : "absent");
        else
                LOG_WARN("this CPU has no NX: Keel's data and guests' RAM stay executable "
                         "(text and rodata are still read-only); SMEP %s, SMAP %s",
                         smep ? "on" : "absent", smap ? "on" : "absent");
}

/* Mask both legacy 8259 PICs: Keel uses no legacy interrupts. */
static void pic_mask_all(void)
{
        x86_outb(0x21, 0xff);
        x86_outb(0xa1, 0xff);
}

void arch_cpu_setup(const struct boot_info *bi)
{
        x86_cli();
        gdt_setup(bi);
        idt_setup();
        pic_mask_all();
        paging_setup(bi);
        x86_time_init();
        x86_smp_init_boot_cpu();
}

static void keel_enter(const void *arg)
{
        kernel_main(arg);
}

_Noreturn void arch_enter_kernel(const struct boot_info *bi)
{
        x86_call_on_stack(keel_enter, bi, (uint8_t *)hva_ptr(bi->stack_area) + KSTACK_TOP);
}

/* The exceptions' names by vector (keel/strlist.h); an empty one is "reserved". */
#define EXCEPTION_NAMES 32
static const char exception_names[] = "divide error\0"
                                      "debug\0"
                                      "NMI\0"
                                      "breakpoint\0"
                                      "overflow\0"
                                      "bound range\0"
                                      "invalid opcode\0"
                                      "device not available\0"
                                      "double fault\0"
                                      "coprocessor overrun\0"
                                      "invalid TSS\0"
                                      "segment not present\0"
                                      "stack fault\0"
                                      "general protection\0"
                                      "page fault\0"
                                      "\0"
                                      "x87 FP error\0"
                                      "alignment check\0"
                                      "machine check\0"
                                      "SIMD FP error\0"
                                      "virtualization\0"
                                      "control protection\0"
                                      "\0"
                                      "\0"
                                      "\0"
                                      "\0"
                                      "\0"
                                      "\0"
                                      "hypervisor injection\0"
                                      "VMM communication\0"
                                      "security\0"
                                      "\0";

static void dump_frame(const struct x86_trap_frame *f)
{
        log_printf(LOG_LEVEL_ERROR, "  rip %016llx  cs %04llx  rflags %016llx",
                   (unsigned long long)f->rip, (unsigned long long)f->cs,
                   (unsigned long long)f->rflags);
        log_printf(LOG_LEVEL_ERROR, "  rsp %016llx  ss %04llx  error %016llx",
                   (unsigned long long)f->rsp, (unsigned long long)f->ss,
                   (unsigned long long)f->error);
        log_printf(LOG_LEVEL_ERROR, "  rax %016llx  rbx %016llx  rcx %016llx",
                   (unsigned long long)f->rax, (unsigned long long)f->rbx,
                   (unsigned long long)f->rcx);
        log_printf(LOG_LEVEL_ERROR, "  rdx %016llx  rsi %016llx  rdi %016llx",
                   (unsigned long long)f->rdx, (unsigned long long)f->rsi,
                   (unsigned long long)f->rdi);
        log_printf(LOG_LEVEL_ERROR, "  rbp %016llx  r8  %016llx  r9  %016llx",
                   (unsigned long long)f->rbp, (unsigned long long)f->r8,
                   (unsigned long long)f->r9);
        log_printf(LOG_LEVEL_ERROR, "  r10 %016llx  r11 %016llx  r12 %016llx",
                   (unsigned long long)f->r10, (unsigned long long)f->r11,
                   (unsigned long long)f->r12);
        log_printf(LOG_LEVEL_ERROR, "  r13 %016llx  r14 %016llx  r15 %016llx",
                   (unsigned long long)f->r13, (unsigned long long)f->r14,
                   (unsigned long long)f->r15);
}

/* Name what a page fault in Keel ran into (error code: SDM vol. 3A 4.7, APM vol. 2 8.4.2). */
static void report_page_fault(uint64_t error, uint64_t cr2)
{
        char where[96];
        const char *what;

        hostmap_describe(&keel_hostmap, cr2, where, sizeof(where));
        if (error & 0x8)
                what = "reserved bit set in a page-table entry";
        else if (!(error & 0x1))
                what = (error & 0x10) ? "instruction fetch from an unmapped page"
                                      : "access to an unmapped page";
        else if (error & 0x10)
                what = "instruction fetch from a non-executable page (NX or SMEP)";
        else if (error & 0x2)
                what = "write to a read-only page";
        else
                what = "read refused by the page tables (SMAP?)";
        log_printf(LOG_LEVEL_ERROR | LOG_KEEL, "page fault: %s at %#llx %s", what,
                   (unsigned long long)cr2, where);
}

/*
 * A double fault with CR2 in a guard page: a stack ran into it, and the page fault could not be
 * delivered on that stack (this handler runs on the double-fault IST stack).
 */
static void report_stack_overflow(uint64_t cr2)
{
        const struct hostmap_region *r = hostmap_find(&keel_hostmap, cr2);
        char where[96];

        if (!r || r->attrs != HOSTMAP_GUARD)
                return;
        hostmap_describe(&keel_hostmap, cr2, where, sizeof(where));
        log_printf(LOG_LEVEL_ERROR | LOG_KEEL, "stack overflow: cr2 %#llx is %s",
                   (unsigned long long)cr2, where);
}

void x86_trap(struct x86_trap_frame *f)
{
        const char *name;

        if (f->vector == X86_VEC_NMI) {
                LOG_WARN("NMI received (rip %llx), ignored", (unsigned long long)f->rip);
                return;
        }
        if (f->vector >= 32) {
                /* Keel's tick, a driver's device vector (keel/irq.h); anything else is a
                 * stray interrupt: acknowledge it. */
                if (f->vector == HOST_TICK_VECTOR)
                        x86_host_tick();
                else
                        (void)irq_dispatch(f->vector);
                if (f->vector != 0xff)
                        x86_lapic_eoi();
                return;
        }
        name = keel_strlist_at(exception_names, EXCEPTION_NAMES, f->vector);
        log_printf(LOG_LEVEL_ERROR | LOG_KEEL,
                   "exception %llu (%s) in Keel, error code %#llx, rip %#llx",
                   (unsigned long long)f->vector, *name ? name : "reserved",
                   (unsigned long long)f->error, (unsigned long long)f->rip);
        if (f->vector == X86_VEC_PF) {
                uint64_t cr2 = x86_read_cr2();

                /* What a page fault inside Keel needs to be understood afterwards: was it a
                 * fetch, do Keel's own tables (as built) map the address, and are they the
                 * ones loaded (CR3 below; a #VMEXIT reloads CR3 from the host save area). */
                log_printf(LOG_LEVEL_ERROR,
                           "  cr2 %016llx (%s; Keel's tables at %#llx %s it), cpu %u",
                           (unsigned long long)cr2, (f->error & 0x10) ? "fetch" : "data",
                           (unsigned long long)hpa_raw(keel_pt.root),
                           x86_keel_maps(cr2 & ~0xfffull) ? "map" : "do not map", arch_cpu_index());
                report_page_fault(f->error, cr2);
        }
        if (f->vector == X86_VEC_DF)
                report_stack_overflow(x86_read_cr2());
        dump_frame(f);
        log_printf(LOG_LEVEL_ERROR, "  cr0 %016llx  cr3 %016llx  cr4 %016llx",
                   (unsigned long long)x86_read_cr0(), (unsigned long long)x86_read_cr3(),
                   (unsigned long long)x86_read_cr4());
        log_printf(LOG_LEVEL_ERROR | LOG_KEEL, "panic: exception %llu in Keel: system halted",
                   (unsigned long long)f->vector);
        arch_halt();
}

void arch_dump_state(void)
{
        uint64_t rsp;

        __asm__ volatile("mov %%rsp, %0" : "=r"(rsp));
        log_printf(LOG_LEVEL_ERROR, "  rsp %016llx  rflags %016llx  cr2 %016llx",
                   (unsigned long long)rsp, (unsigned long long)x86_read_rflags(),
                   (unsigned long long)x86_read_cr2());
        log_printf(LOG_LEVEL_ERROR, "  cr0 %016llx  cr3 %016llx  cr4 %016llx",
                   (unsigned long long)x86_read_cr0(), (unsigned long long)x86_read_cr3(),
                   (unsigned long long)x86_read_cr4());
        log_printf(LOG_LEVEL_ERROR, "  return address %p", __builtin_return_address(0));
}

__attribute__((no_stack_protector)) bool arch_random_u64(uint64_t *out)
{
        uint32_t r[4];

        x86_cpuid(1, 0, r);
        if (!(r[2] & (1u << 30))) /* CPUID.1:ECX.RDRAND */
                return false;
        /* RDRAND may fail transiently (CF = 0); Intel's guidance is to retry 10 times. */
        for (unsigned i = 0; i < 10; i++) {
                uint64_t v;
                uint8_t ok;

                __asm__ volatile("rdrand %0; setc %1" : "=r"(v), "=qm"(ok));
                if (ok) {
                        *out = v;
                        return true;
                }
        }
        return false;
}

noreturn void arch_halt(void)
{
        for (;;)
                __asm__ volatile("cli; hlt");
}

void arch_test_finish(bool pass)
{
        /* QEMU's isa-debug-exit: exit status (value << 1) | 1, so 1 = pass, 3 = fail. */
        x86_outl(0xf4, pass ? 0 : 1);
}

/* x86's console is COM1 (the PC's first serial port), whatever the firmware tables say. */
void arch_console_init(hpa_t rsdp)
{
        (void)rsdp;
        uart16550_init(COM1_PORT);
}

void arch_console_write(const char *s, unsigned long len)
{
        uart16550_com1_write(s, len);
}

int arch_map_device(hpa_t base, uint64_t size)
{
        /* A page that was not present is never cached by the TLB: nothing to flush. */
        return hostmap_map_device(&keel_pt, base, size);
}

void arch_dma_barrier(void)
{
        /* Stores are not reordered with stores, loads not with loads; UC accesses are in order. */
        __asm__ volatile("mfence" ::: "memory");
}
