/*
 * The one x86 vCPU interface. Intel VT-x and AMD SVM are backends (struct x86_vendor) picked
 * at run time by arch/x86_64/vcpu.c, so a single keel.efi serves both vendors (Jailhouse's
 * vcpu_vendor_* split, with xvisor's run-time choice). Backends translate their exits into
 * calls to the common emulation below; everything the guest sees that does not depend on the
 * vendor (CPUID policy, I/O ports, MSR policy, hypercalls) lives in vcpu.c.
 */
#ifndef ARCH_X86_VCPU_H
#define ARCH_X86_VCPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <arch/decode.h>
#include <arch/gwalk.h>
#include <keel/pt.h>
#include <vmm/vm.h>

/* Guest entry state (docs/guest-entry.md): what arch_vcpu_setup asks a backend to load. */
struct x86_entry_state {
        uint64_t rip, rsp, rflags;
        uint64_t cr0, cr3, cr4, efer;
        uint64_t gdt_base;
        uint16_t gdt_limit;
        uint16_t cs, ds;
        /* Real mode (an AP after SIPI): 16-bit segments of limit 0xffff, CS base cs_base,
         * data segments base 0, IDT limit 0xffff; efer 0. */
        bool real_mode;
        uint64_t cs_base;
        /* 32-bit protected mode, paging off (a Multiboot kernel): flat 4 GiB segments, CS a
         * 32-bit code segment; efer 0. */
        bool prot32;
};

/* Registers gdb reaches that the backend holds (arch/x86_64/gdb.c). */
struct x86_debug_state {
        uint64_t rsp, rip, rflags;
        uint16_t sel[6]; /* CS SS DS ES FS GS */
        uint64_t cs_base, cr0, cr3, cr4, efer;
};

struct x86_sysseg;

struct x86_vendor {
        const char *name;
        /* Can this CPU run VMs with this backend? -KEEL_ENODEV with a sentence in `why`. */
        int (*probe)(char *why, size_t len);
        void (*describe)(char *buf, size_t len);
        void (*enable)(void);
        /* Entry format of the second-level tables (NPT / EPT). */
        const struct pt_format *(*second_level)(void);
        int (*vcpu_init)(struct vcpu *vcpu, const struct x86_entry_state *st);
        /* Run until the VM leaves VM_RUNNING or an exit sets vcpu->arch.leave. */
        void (*vcpu_run)(struct vcpu *vcpu);
        void (*vcpu_free)(struct vcpu *vcpu);
        /* The X86_SWREGS_* sets the guest reaches and the backend does not switch. */
        unsigned swregs;
        /*
         * Make the vCPU's next entry deliver #PF with this error code and CR2 = `cr2`,
         * RIP unchanged (a fault Keel's own walk of the guest's tables found). Called from
         * the exit handler, on the CPU running the vCPU.
         */
        void (*inject_pf)(struct vcpu *vcpu, uint64_t cr2, uint32_t error);
        /* The same for another exception (not #PF): `vector`, with `error` if has_error. */
        void (*inject_exc)(struct vcpu *vcpu, unsigned vector, bool has_error, uint32_t error);
        /*
         * The guest's segment register `which` (ES CS SS DS FS GS as enum x86_seg, then
         * X86_SEG_LDTR, X86_SEG_TR of arch/mmio_emul.h): read into *s, or (write) loaded
         * from it (attr without P: a null selector); *gdt_base, *gdt_limit get its GDTR.
         */
        void (*seg)(struct vcpu *vcpu, unsigned which, struct x86_sysseg *s, bool write,
                    uint64_t *gdt_base, uint32_t *gdt_limit);
        /*
         * gdb: read (or write back rsp, rip, rflags of) the vCPU's state, the vCPU not
         * running. NULL: the backend does not support gdb yet.
         */
        void (*debug_state)(struct vcpu *vcpu, struct x86_debug_state *st, bool write);
};

/*
 * gdb's hardware breakpoints and watchpoints (vm->debug_hw, at most 4: entry i is DRi) as
 * DR0-DR3 (into dr) and the DR7 that enables them (arch/x86_64/gdb.c).
 */
uint64_t x86_gdb_dr7(const struct vm *vm, uint64_t dr[4]);
/*
 * At the start of a vCPU's run while a gdb session is on (or just ended): gdb's breakpoints
 * into the vCPU's switched DR0-DR3 (loaded into the CPU) and *dr7 (the VMCB's / VMCS's DR7),
 * the guest's own DR0-DR3 and DR7 kept aside in gdb_dr the first time; once gdb has none,
 * the guest's values back. 1: gdb's are loaded (intercept the guest's MOV DR), -1: the
 * guest's are back (stop intercepting), 0: nothing to do.
 */
int x86_gdb_hw_switch(struct vcpu *v, uint64_t *dr7);
/*
 * The guest's MOV to (write) or from DR`dr` (0-3 or 7) while gdb's breakpoints are loaded,
 * served from the values kept aside: *reg the general-purpose register, `wide` in 64-bit
 * mode (else 32 bits). False: the write faults (#GP: DR7 bits 63:32 set).
 */
bool x86_gdb_guest_dr(struct vcpu *v, unsigned dr, uint64_t *reg, bool write, bool wide);
/*
 * A #DB while gdb's breakpoints are loaded, with the guest's DR6 as the CPU left it: if one
 * of gdb's (DR6.B0-B3) hit, report it (vm_debug_hw_hit), clear its bits from *dr6 and return
 * true; *rf_needed says the hit was an instruction breakpoint (a fault: resume with RF).
 */
bool x86_gdb_db_hit(struct vcpu *v, uint64_t *dr6, bool *rf_needed);

/* The backend's debug_state; false if it has none (vcpu.c picks the backend). */
bool x86_debug_state(struct vcpu *vcpu, struct x86_debug_state *st, bool write);

extern const struct x86_vendor svm_vendor, vmx_vendor;

/* Is the backend picked at boot AMD SVM (else Intel VT-x)? */
bool x86_vendor_is_svm(void);

/*
 * Put vCPU `vcpu` at `entry` in 64-bit mode on Keel's boot page tables (docs/guest-entry.md)
 * with the GDT at gdt_base (already in guest memory), CS = cs, data segments = ds, RDI = the
 * RAM size, RSI = rsi.
 */
int x86_vcpu_setup_state(struct vcpu *vcpu, gpa_t entry, uint64_t gdt_base, uint16_t gdt_limit,
                         uint16_t cs, uint16_t ds, uint64_t rsi);
/*
 * Put vCPU `vcpu` at `entry` in the Multiboot machine state (Multiboot 0.6.96, 3.2): 32-bit
 * protected mode with paging off, flat segments CS = cs and DS..SS = ds of the GDT at
 * gdt_base, EFLAGS.IF clear, EAX = eax, EBX = ebx, the other registers 0.
 */
int x86_vcpu_setup_prot32(struct vcpu *vcpu, gpa_t entry, uint64_t gdt_base, uint16_t gdt_limit,
                          uint16_t cs, uint16_t ds, uint32_t eax, uint32_t ebx);

/* Common emulation used by the backends. Registers are in vcpu->arch.gprs. */
/* CPUID as the guest sees it (its CR4 decides OSXSAVE/PKE bits). */
void x86_emulate_cpuid(struct vcpu *vcpu, uint64_t guest_cr4);
/* Port I/O of `size` bytes (1, 2, 4); IN writes the low bytes of RAX. */
void x86_emulate_io(struct vcpu *vcpu, uint16_t port, unsigned size, bool in);
/* Hypercall from guest privilege level `cpl`. False if the VM was stopped. */
bool x86_hypercall(struct vcpu *vcpu, unsigned cpl);
/*
 * MSRs without vendor state. 0 = done; -KEEL_EPERM = the guest gets #GP (unknown MSR:
 * reported once per MSR and VM).
 */
int x86_msr_read(struct vcpu *vcpu, uint32_t msr, uint64_t *val);
int x86_msr_write(struct vcpu *vcpu, uint32_t msr, uint64_t val);
/* A platform vCPU's IA32_MISC_ENABLE back to its reset value. */
void x86_misc_enable_reset(struct vcpu *vcpu);

/* The guest's paging and code-segment state, for fetching the intercepted instruction. */
struct x86_guest_ctx {
        uint64_t cr0, cr3, cr4, efer;
        uint64_t cs_base;
        bool cs_l, cs_db;
        unsigned cpl;
        uint64_t rip;
        /* ES CS SS DS FS GS bases (enum x86_seg order): filled for device accesses only. */
        uint64_t seg_base[6];
        /* CR0 as the guest reads it (SMSW; VMX: its read shadow for Keel's bits): the same. */
        uint64_t cr0_seen;
};

/*
 * Fast path of x86_insn_length, inline so that a constant `expect` folds into byte compares:
 * in 64-bit mode, when the bytes at `rip` are exactly the prefix-free opcode of `expect`,
 * that opcode's length; 0 in every other case (prefixes, another mode, a page boundary),
 * where the caller uses x86_insn_length.
 */
static inline unsigned x86_plain_insn_length(const struct gmem *m, const struct x86_paging *pg,
                                             struct x86_code_cache *cache, uint64_t rip,
                                             enum x86_insn_id expect)
{
        static const uint8_t cpuid[] = {0x0f, 0xa2}, vmmcall[] = {0x0f, 0x01, 0xd9};
        static const uint8_t rdmsr[] = {0x0f, 0x32}, wrmsr[] = {0x0f, 0x30}, hlt[] = {0xf4};
        const uint8_t *op, *code;
        unsigned len;

        switch (expect) {
        case X86_INSN_CPUID:
                op = cpuid, len = sizeof(cpuid);
                break;
        case X86_INSN_VMMCALL:
                op = vmmcall, len = sizeof(vmmcall);
                break;
        case X86_INSN_RDMSR:
                op = rdmsr, len = sizeof(rdmsr);
                break;
        case X86_INSN_WRMSR:
                op = wrmsr, len = sizeof(wrmsr);
                break;
        case X86_INSN_HLT:
                op = hlt, len = sizeof(hlt);
                break;
        default:
                return 0;
        }
        code = x86_code_peek(m, pg, rip, len, cache);
        if (!code)
                return 0;
        for (unsigned i = 0; i < len; i++)
                if (code[i] != op[i])
                        return 0;
        return len;
}

/*
 * Length of the intercepted instruction at ctx->rip by a full fetch and decode; it must
 * decode to `expect` (the instruction the exit names; INVD or WBINVD for either). Backends try
 * x86_plain_insn_length first. On failure the VM is stopped (bad-instruction) with the bytes in the
 * report, and 0 is returned.
 */
unsigned x86_insn_length(struct vcpu *vcpu, const struct x86_guest_ctx *ctx,
                         enum x86_insn_id expect);

/*
 * What Keel's own walk of the guest's page tables (ctx's CR0/CR3/CR4/EFER, memory as it is
 * now) makes of linear address `gva`: "gpa 0x..." or why it is not mapped, into buf. For
 * reports (a triple fault's), so that what the CPU saw can be told from what memory holds.
 */
void x86_describe_walk(const struct vcpu *vcpu, const struct x86_guest_ctx *ctx, uint64_t gva,
                       bool fetch, char *buf, size_t len);

/* The CPU mode the guest context runs in (for the decoder). */
enum x86_cpu_mode x86_guest_mode(const struct x86_guest_ctx *ctx);

/*
 * A nested page fault (not a fetch) at guest-physical `gpa` outside RAM: if a device of the
 * VM's MMIO bus is there, or nothing is and the VM's config says unbacked = abort (a PC's
 * answer: reads all ones, writes dropped), decode the instruction at ctx->rip and emulate the
 * access (registers in vcpu->arch.gprs plus *rsp, *rip, *rflags are updated). Returns false
 * if no device is at `gpa` and the VM stops for that (unbacked = stop, or a page walk: the
 * caller reports an access outside RAM); true otherwise, also when the VM was
 * stopped because the instruction could not be decoded or emulated, or when nothing was
 * done because the decoded operand does not lead to `gpa` (the guest re-executes).
 * `in_walk`: the fault came from the guest's own page walk (a page-table entry at `gpa`,
 * SVM EXITINFO1 bit 33, VMX qualification bit 7 set and 8 clear): not a device access, the
 * VM is stopped. ctx->seg_base must be filled.
 */
bool x86_emulate_mmio_exit(struct vcpu *vcpu, const struct x86_guest_ctx *ctx, uint64_t gpa,
                           bool in_walk, uint64_t *rsp, uint64_t *rip, uint64_t *rflags);
/*
 * General register `n` (0-15, higher bits ignored) of `g` in the decoder's numbering (ModRM,
 * REX, a VMX exit qualification's): rax rcx rdx rbx rsp rbp rsi rdi r8-r15; number 4 is
 * `rsp`, where the backend keeps RSP (NULL if the caller has none).
 */
uint64_t *x86_gpr(struct x86_gprs *g, uint64_t *rsp, unsigned n);

/*
 * A nested page fault / EPT violation outside the VM's RAM that no device took (an
 * instruction fetch, or x86_emulate_mmio_exit false): stop the VM (outside-ram) with `what`
 * ("read", "write", "instruction fetch"; a page-table access if `in_walk`) at `gpa`, `rip`.
 */
void x86_stop_outside_ram(struct vcpu *vcpu, const char *what, bool in_walk, uint64_t gpa,
                          uint64_t rip);

/*
 * A string port I/O exit (INS/OUTS, REP or not) for `port`, `size` bytes, IN or OUT, as the
 * exit reports it: decode the instruction at ctx->rip, which must be that INS/OUTS with DX =
 * `port` (else it changed since the exit: nothing is done, the guest executes it again), and
 * run up to X86_STRING_BUDGET iterations (x86_emulate_string_io): memory through the guest's
 * page tables with its own permissions (#PF injected as the CPU would), RAM, devices or
 * nothing; rCX, rSI, rDI in vcpu->arch.gprs and *rip updated. `rflags` gives DF. True if at
 * least one iteration was done or the instruction completed (an interrupt shadow it ran in
 * ends); false also when the VM was stopped. ctx->seg_base must be filled.
 */
bool x86_emulate_string_io_exit(struct vcpu *vcpu, const struct x86_guest_ctx *ctx, uint16_t port,
                                unsigned size, bool in, uint64_t *rip, uint64_t rflags);

/* Shared by vcpu.c, vcpu_setup.c and vcpu_emul.c (those two built for size). Hidden: the exit
 * path reads it PC-relative, not through the GOT. */
extern __attribute__((visibility("hidden"))) const struct x86_vendor *x86_vops;
/* vcpu_setup.c: an AP released by a start-up IPI with `vector`, at its first run. */
int x86_vcpu_start_real_mode(struct vcpu *vcpu, uint8_t vector);
/* vcpu_setup.c: `pages` pages for a backend's per-CPU or global structure (`what`, named with
 * its vendor: "SVM host VMCB"), or a panic naming it: they are set up at boot. */
hpa_t x86_alloc_or_panic(uint64_t pages, const char *what);
void x86_format_bytes(char *hex, size_t size, const uint8_t *bytes, size_t n);
int x86_fetch_decode(struct vcpu *vcpu, const struct x86_guest_ctx *ctx,
                     uint8_t bytes[X86_MAX_INSN_LEN], size_t *fetched, struct x86_insn *insn);
bool x86_fetch_walk_failed(struct vcpu *vcpu, const struct x86_guest_ctx *ctx, int err,
                           size_t fetched);
bool x86_port_access(struct vcpu *vcpu, uint16_t port, unsigned size, bool in, uint32_t *val);

#endif
