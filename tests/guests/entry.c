/*
 * entry: checks the machine state Keel promises at guest entry (docs/guest-entry.md):
 * long mode at CPL 0 with the documented CR0, CR4, EFER and PAT; CR3 = 0x1000 holding an identity
 * map of [0, 4 GiB) with writable 2 MiB pages; the GDT at 0x500 with a 64-bit code segment
 * at 0x08 and a data segment at 0x10 loaded in CS and the data segment registers; an empty
 * IDT; RFLAGS = 0x2, RSP = 0x80000, RIP = the entry point, RDI = RAM size (as VM_INFO tells),
 * every other general-purpose register 0.
 *
 * Each failed check prints "FAIL: ..."; the exit code is the number of failed checks.
 */
#include "guest.h"

#define CR0_EXPECTED 0x80010033ull /* PG | WP | NE | ET | MP | PE */
#define CR4_EXPECTED 0x620ull      /* OSXMMEXCPT | OSFXSR | PAE */
#define MSR_EFER     0xc0000080u
#define EFER_LME     (1ull << 8)
#define EFER_LMA     (1ull << 10)
#define MSR_PAT      0x277u
#define PAT_RESET    0x0007040600070406ull

#define PTE_P    0x1ull
#define PTE_RW   0x2ull
#define PTE_PS   0x80ull
#define PTE_ADDR 0x000ffffffffff000ull
#define PDE_2M   0x000fffffffe00000ull
#define PTE_NX   (1ull << 63)

static unsigned checks, failed;

static void check(bool ok, const char *what, uint64_t got)
{
        checks++;
        if (ok) {
                guest_printf("ok: %s (0x%lx)\n", what, got);
                return;
        }
        failed++;
        guest_printf("FAIL: %s (got 0x%lx)\n", what, got);
}

/* Guest-physical address to pointer, hidden from gcc, which takes low addresses for NULL + x. */
static const volatile uint64_t *table_at(uint64_t pa)
{
        __asm__("" : "+r"(pa));
        return (const volatile uint64_t *)(uintptr_t)pa;
}

/* Walks the page tables at CR3: [0, 4 GiB) must be identity-mapped, writable, 2 MiB pages. */
static void check_identity_map(uint64_t cr3)
{
        const volatile uint64_t *pml4 = table_at(cr3 & PTE_ADDR), *pdpt;
        uint64_t bad = 0, first_bad = 0;

        check((pml4[0] & (PTE_P | PTE_RW)) == (PTE_P | PTE_RW), "PML4[0] present and writable",
              pml4[0]);
        if (!(pml4[0] & PTE_P))
                return;
        pdpt = table_at(pml4[0] & PTE_ADDR);
        for (uint64_t i = 0; i < 4; i++) {
                const volatile uint64_t *pd;

                if ((pdpt[i] & (PTE_P | PTE_RW | PTE_PS)) != (PTE_P | PTE_RW) ||
                    (pdpt[i] & PTE_NX)) {
                        if (!bad++)
                                first_bad = i << 30;
                        continue;
                }
                pd = table_at(pdpt[i] & PTE_ADDR);
                for (uint64_t j = 0; j < 512; j++) {
                        uint64_t va = (i << 30) | (j << 21), e = pd[j];

                        if ((e & (PTE_P | PTE_RW | PTE_PS)) != (PTE_P | PTE_RW | PTE_PS) ||
                            (e & PTE_NX) || (e & PDE_2M) != va) {
                                if (!bad++)
                                        first_bad = va;
                        }
                }
        }
        check(bad == 0, "[0, 4 GiB) identity-mapped, 2 MiB pages, RWX", first_bad);
}

struct __attribute__((packed)) dtr {
        uint16_t limit;
        uint64_t base;
};

static void check_descriptors(void)
{
        struct dtr gdtr, idtr;
        uint16_t cs, ds, es, ss, fs, gs;
        const volatile uint64_t *gdt;

        __asm__ volatile("sgdt %0" : "=m"(gdtr));
        __asm__ volatile("sidt %0" : "=m"(idtr));
        __asm__ volatile("mov %%cs, %0" : "=r"(cs));
        __asm__ volatile("mov %%ds, %0" : "=r"(ds));
        __asm__ volatile("mov %%es, %0" : "=r"(es));
        __asm__ volatile("mov %%ss, %0" : "=r"(ss));
        __asm__ volatile("mov %%fs, %0" : "=r"(fs));
        __asm__ volatile("mov %%gs, %0" : "=r"(gs));

        check(gdtr.base == 0x500, "GDTR base 0x500", gdtr.base);
        check(gdtr.limit == 0x17, "GDTR limit 0x17", gdtr.limit);
        check(idtr.base == 0 && idtr.limit == 0, "IDTR base 0 limit 0",
              ((uint64_t)idtr.limit << 48) | idtr.base);
        check(cs == 0x08, "CS = 0x08 (CPL 0)", cs);
        check(ds == 0x10 && es == 0x10 && ss == 0x10 && fs == 0x10 && gs == 0x10,
              "DS, ES, SS, FS, GS = 0x10",
              ((uint64_t)ds << 32) | ((uint64_t)es << 24) | ((uint64_t)ss << 16) | (fs << 8) | gs);
        if (gdtr.base != 0x500 || gdtr.limit < 0x17)
                return;
        gdt = table_at(gdtr.base);
        /* 0x08: present, DPL 0, code, L = 1, D = 0. 0x10: present, DPL 0, writable data. */
        check((gdt[1] >> 40 & 0x98) == 0x98 && (gdt[1] >> 45 & 3) == 0 && (gdt[1] >> 53 & 3) == 1,
              "GDT 0x08 is a 64-bit code segment, DPL 0", gdt[1]);
        check((gdt[2] >> 40 & 0x9a) == 0x92 && (gdt[2] >> 45 & 3) == 0,
              "GDT 0x10 is a writable data segment, DPL 0", gdt[2]);
}

static void check_registers(void)
{
        const struct guest_entry_state *s = &guest_entry_state;
        uint64_t other = s->rax | s->rbx | s->rcx | s->rdx | s->rsi | s->rbp | s->r8 | s->r9 |
                         s->r10 | s->r11 | s->r12 | s->r13 | s->r14 | s->r15;
        struct keel_vm_info info;

        check(s->rflags == 0x2, "RFLAGS = 0x2", s->rflags);
        check(s->rsp == 0x80000, "RSP = 0x80000", s->rsp);
        check(s->rip == gpa_of(__image_start), "RIP = entry point", s->rip);
        check(other == 0, "every GPR but RSP and RDI is 0", other);
        check(hc_vm_info_gpa(gpa_of(&info), sizeof(info)) == sizeof(info) &&
                  info.ram_size == s->rdi,
              "RDI = RAM size from VM_INFO", s->rdi);
        check(s->rdi && !(s->rdi & 0x1fffff), "RDI is a non-zero multiple of 2 MiB", s->rdi);
}

int64_t guest_main(void)
{
        uint64_t cr0 = read_cr(0), cr3 = read_cr(3), cr4 = read_cr(4);
        uint64_t efer = rdmsr(MSR_EFER), pat = rdmsr(MSR_PAT);

        check_registers();
        check(cr0 == CR0_EXPECTED, "CR0 = PE|MP|ET|NE|WP|PG", cr0);
        check(cr4 == CR4_EXPECTED, "CR4 = PAE|OSFXSR|OSXMMEXCPT", cr4);
        /* Exactly: the SVME bit VMRUN needs in the real guest EFER must be hidden. */
        check(efer == (EFER_LME | EFER_LMA), "EFER = LME|LMA", efer);
        check(pat == PAT_RESET, "PAT = reset value", pat);
        check(cr3 == 0x1000, "CR3 = 0x1000", cr3);
        check_identity_map(cr3);
        check_descriptors();
        if (failed) {
                guest_printf("entry: FAIL: %u of %u checks failed\n", failed, checks);
                return failed;
        }
        guest_printf("entry: all %u checks passed\n", checks);
        return 0;
}
