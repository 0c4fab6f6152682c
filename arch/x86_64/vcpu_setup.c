/*
 * x86 vCPUs, vendor-neutral set-up (vcpu.c has the exit path): picks the backend (SVM or
 * VT-x) at run time, builds each VM's second-level tables, and a vCPU's entry state (64-bit,
 * 32-bit protected, or real mode after a start-up IPI). Built for size, out of the exit
 * path's -O2 files (arch/x86_64/CMakeLists.txt).
 */
#include <stdio.h>
#include <string.h>

#include <arch/cpuid_policy.h>
#include <arch/fpu.h>
#include <arch/gwalk.h>
#include <arch/platform.h>
#include <arch/ram_layout.h>
#include <arch/swregs.h>
#include <arch/x86.h>
#include <arch/x86_vcpu.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/palloc.h>
#include <vmm/vmm.h>

/* Guest-physical layout of the boot structures (docs/guest-entry.md). */
#define GUEST_GDT      0x500
#define GUEST_PML4     0x1000
#define GUEST_PDPT     0x2000
#define GUEST_PD       0x3000
#define GUEST_STACK    0x80000
#define GUEST_RESERVED 0x100000
#define GUEST_MAP_MIN  (4ull << 30)
#define GUEST_MAP_MAX  (65ull << 30) /* 64 GiB of RAM ends there; its 65 PDs end at 0x44000 */

static const struct x86_vendor *const vendors[] = {&svm_vendor, &vmx_vendor};

int arch_virt_probe(char *why, size_t len)
{
        char reason[ARRAY_SIZE(vendors)][240];
        size_t n = 0;

        for (unsigned i = 0; i < ARRAY_SIZE(vendors); i++) {
                if (vendors[i]->probe(reason[i], sizeof(reason[i])) == 0) {
                        x86_vops = vendors[i];
                        return 0;
                }
        }
        for (unsigned i = 0; i < ARRAY_SIZE(vendors) && n < len; i++)
                n += (size_t)snprintf(why + n, len - n, "%s%s", i ? "; " : "", reason[i]);
        return -KEEL_ENODEV;
}

/* The CPU's physical-address width and 1 GiB pages, which bound how it walks guest tables. */
static unsigned host_maxphyaddr(void)
{
        uint32_t r[4];

        x86_cpuid(0x80000000, 0, r);
        if (r[0] < 0x80000008)
                return 36; /* SDM: without the leaf, MAXPHYADDR is 36 (32 without PAE) */
        x86_cpuid(0x80000008, 0, r);
        return r[0] & 0xff;
}

static bool host_gbpages(void)
{
        uint32_t r[4];

        x86_cpuid(0x80000000, 0, r);
        if (r[0] < 0x80000001)
                return false;
        x86_cpuid(0x80000001, 0, r);
        return r[3] & (1u << 26);
}

void arch_virt_describe(char *buf, size_t len)
{
        CHECK(x86_vops);
        x86_vops->describe(buf, len);
}

void arch_virt_enable(void)
{
        CHECK(x86_vops);
        x86_fpu_cpu_enable(); /* each CPU (APs too) before it switches a guest's FPU state */
        x86_swregs_cpu_enable();
        x86_gwalk_set_cpu(host_maxphyaddr(), host_gbpages()); /* the same on every CPU */
        x86_vops->enable();
}

uint16_t arch_elf_machine(void)
{
        return 62; /* EM_X86_64 */
}

gpa_t arch_guest_ram_base(void)
{
        return gpa(0);
}

unsigned arch_guest_ram_layout(uint64_t size, struct gmem_range out[VM_RAM_RANGES])
{
        return x86_ram_layout(size, out);
}

void arch_guest_reserved(gpa_t *base, uint64_t *size)
{
        *base = gpa(0);
        *size = GUEST_RESERVED;
}

__attribute__((cold)) int arch_vm_setup(struct vm *vm)
{
        struct vm_arch *a = &vm->arch;
        int err;

        vuart_init(&a->uart, &vm->console);
        rtc_cmos_init(&a->rtc);
        err = pt_init(&a->npt, x86_vops->second_level(), &keel_palloc);
        if (err)
                return err;
        a->npt_ready = true;
        for (unsigned i = 0; i < vm->mem.count; i++) {
                const struct gmem_region *r = &vm->mem.regions[i];

                err = pt_map(&a->npt, gpa_raw(r->base), r->backing, r->size, PT_RWX | PT_USER);
                if (err)
                        return err;
        }
        a->asid = vm->id + 1;
        return 0;
}

const struct pt *arch_vm_guest_pt(const struct vm *vm)
{
        return &vm->arch.npt;
}

__attribute__((cold)) void arch_vm_teardown(struct vm *vm)
{
        for (unsigned i = 0; i < vm->vcpu_count; i++) {
                if (vm->vcpus[i].arch.vmcb)
                        x86_vops->vcpu_free(&vm->vcpus[i]);
                x86_fpu_free(&vm->vcpus[i]);
        }
        if (vm->arch.npt_ready)
                pt_destroy(&vm->arch.npt);
        vm->arch.npt_ready = false;
        x86_testdev_mem_free(vm);
}

/*
 * The guest's boot page tables: an identity map of guest-physical memory with 2 MiB pages,
 * [0, 4 GiB) (so that accesses beyond RAM reach the nested tables and are reported) and, for
 * a test image, up to the end of its RAM above 4 GiB. A Linux VM's map stays [0, 4 GiB): the
 * boot protocol needs only its kernel, zero page and command line mapped, all in low RAM,
 * and its zero page at 0x7000 lies where a fifth page directory would.
 */
static int write_page_tables(struct vm *vm, uint64_t *map_size)
{
        uint64_t end = 0, base = 0, size = 0, map = GUEST_MAP_MIN;
        uint64_t entry = GUEST_PDPT | 0x3;
        int err;

        while (gmem_next_run(&vm->mem, end, &base, &size))
                end = base + size;
        if (!vm->arch.platform && end > map)
                map = align_up(end, 1ull << 30);

        if (map > GUEST_MAP_MAX)
                return -KEEL_E2BIG;
        err = gmem_write(&vm->mem, gpa(GUEST_PML4), &entry, sizeof(entry));
        for (uint64_t gib = 0; !err && gib < map >> 30; gib++) {
                entry = (GUEST_PD + gib * PAGE_SIZE) | 0x3;
                err = gmem_write(&vm->mem, gpa(GUEST_PDPT + gib * 8), &entry, sizeof(entry));
        }
        for (uint64_t pd = 0; !err && pd < map >> 21; pd++) {
                entry = (pd << 21) | 0x83; /* present, writable, 2 MiB page */
                err = gmem_write(&vm->mem, gpa(GUEST_PD + pd * 8), &entry, sizeof(entry));
        }
        *map_size = map;
        return err;
}

/* The host's XSAVE components (CPUID.(0xD, i)): leaf 0xD subleaf 1's size comes from them. */
static void xsave_layout(struct x86_cpuid_ctx *ctx)
{
        uint32_t r[4];
        uint64_t user;

        memset(ctx->xsave_size, 0, sizeof(ctx->xsave_size));
        ctx->xsave_align64 = 0;
        ctx->xcr0 = 1; /* x87: XCR0's reset value, and all there is without XSAVE */
        x86_cpuid(1, 0, r);
        ctx->xsave = (r[2] & (1u << 26)) != 0;
        if (!ctx->xsave || ctx->max_basic < 0xd)
                return;
        x86_cpuid(0xd, 0, r);
        user = r[0] | (uint64_t)r[3] << 32;
        for (unsigned i = 2; i < X86_XSAVE_COMPONENTS; i++)
                if (user & (1ull << i)) {
                        x86_cpuid(0xd, i, r);
                        ctx->xsave_size[i] = r[0];
                        if (r[2] & 2)
                                ctx->xsave_align64 |= 1ull << i;
                }
}

/* Registers, counters, CPUID facts, caches and FPU of a vCPU about to (re)start. */
static int vcpu_common_init(struct vcpu *vcpu)
{
        uint32_t r[4];

        memset(&vcpu->arch.gprs, 0, sizeof(vcpu->arch.gprs));
        x86_cpuid(0, 0, r);
        vcpu->arch.cpuid.max_basic = r[0];
        x86_cpuid(0x80000000, 0, r);
        vcpu->arch.cpuid.max_ext = r[0];
        vcpu->arch.cpuid.apic_id = (uint8_t)vcpu->id;
        xsave_layout(&vcpu->arch.cpuid);
        x86_code_cache_reset(&vcpu->arch.code);
        x86_swregs_reset(&vcpu->arch.swregs);
        if (!vcpu->arch.fpu)
                return x86_fpu_init(vcpu);
        return 0;
}

__attribute__((cold)) int x86_vcpu_setup_state(struct vcpu *vcpu, gpa_t entry, uint64_t gdt_base,
                                               uint16_t gdt_limit, uint16_t cs, uint16_t ds,
                                               uint64_t rsi)
{
        struct vm *vm = vcpu->vm;
        struct x86_entry_state st = {
            .rip = gpa_raw(entry),
            .rsp = GUEST_STACK,
            .rflags = 0x2,
            .cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE | X86_CR0_WP | X86_CR0_PG,
            .cr3 = GUEST_PML4,
            .cr4 = X86_CR4_PAE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT,
            .efer = X86_EFER_LME | X86_EFER_LMA,
            .gdt_base = gdt_base,
            .gdt_limit = gdt_limit,
            .cs = cs,
            .ds = ds,
        };
        uint64_t map;
        int err;

        if (gmem_total(&vm->mem) < GUEST_RESERVED + PAGE_SIZE)
                return -KEEL_E2BIG;
        err = write_page_tables(vm, &map);
        if (err)
                return err;
        err = vcpu_common_init(vcpu);
        if (err)
                return err;
        vcpu->arch.gprs.rdi = gmem_total(&vm->mem);
        vcpu->arch.gprs.rsi = rsi;
        return x86_vops->vcpu_init(vcpu, &st);
}

int x86_vcpu_setup_prot32(struct vcpu *vcpu, gpa_t entry, uint64_t gdt_base, uint16_t gdt_limit,
                          uint16_t cs, uint16_t ds, uint32_t eax, uint32_t ebx)
{
        struct x86_entry_state st = {
            .prot32 = true,
            .rip = gpa_raw(entry),
            .rsp = 0,
            .rflags = 0x2,
            .cr0 = X86_CR0_PE | X86_CR0_ET,
            .gdt_base = gdt_base,
            .gdt_limit = gdt_limit,
            .cs = cs,
            .ds = ds,
        };
        int err = vcpu_common_init(vcpu);

        if (err)
                return err;
        vcpu->arch.gprs.rax = eax;
        vcpu->arch.gprs.rbx = ebx;
        return x86_vops->vcpu_init(vcpu, &st);
}

/*
 * An AP released by a start-up IPI with vector `vector`, at its first run on its CPU: the
 * state after INIT (SDM vol. 3 table 9-1, APM vol. 2 table 14-1) in real mode at
 * CS = vector << 8 (base vector << 12), IP = 0; EDX holds the processor signature.
 */
int x86_vcpu_start_real_mode(struct vcpu *vcpu, uint8_t vector)
{
        struct x86_entry_state st = {
            .real_mode = true,
            .rip = 0,
            .rsp = 0,
            .rflags = 0x2,
            .cr0 = X86_CR0_ET,
            .gdt_base = 0,
            .gdt_limit = 0xffff,
            .cs = (uint16_t)(vector << 8),
            .cs_base = (uint64_t)vector << 12,
            .ds = 0,
        };
        uint32_t r[4];
        int err;

        if (!gmem_contains(&vcpu->vm->mem, gpa(st.cs_base), PAGE_SIZE)) {
                vm_stop(vcpu->vm, VM_STOP_UNHANDLED,
                        "vCPU %u got a start-up IPI to %#llx, outside the VM's RAM", vcpu->id,
                        (unsigned long long)st.cs_base);
                return -KEEL_EINVAL;
        }
        err = vcpu_common_init(vcpu);
        if (err)
                return err;
        x86_cpuid(1, 0, r);
        vcpu->arch.gprs.rdx = r[0];
        if (vcpu->arch.vmcb)
                x86_vops->vcpu_free(vcpu);
        return x86_vops->vcpu_init(vcpu, &st);
}

hpa_t x86_alloc_or_panic(uint64_t pages, const char *what)
{
        hpa_t pa;
        int err = palloc_alloc(&keel_palloc, pages, PAGE_SIZE, &pa);

        if (err)
                panic("cannot allocate the %s: %s", what, keel_strerror(err));
        return pa;
}

int arch_vcpu_setup(struct vcpu *vcpu, gpa_t entry)
{
        static const uint64_t gdt[3] = {0, 0x00af9b000000ffffull, 0x00cf93000000ffffull};
        int err = gmem_write(&vcpu->vm->mem, gpa(GUEST_GDT), gdt, sizeof(gdt));

        if (err)
                return err;
        return x86_vcpu_setup_state(vcpu, entry, GUEST_GDT, sizeof(gdt) - 1, 0x08, 0x10, 0);
}
