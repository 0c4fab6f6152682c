/*
 * x86_64 side of a gdb session (vmm/include/vmm/gdb.h, docs/debugging.md): the registers in
 * the order of our target description (gdb's amd64 core and SSE features), guest-virtual
 * translation through the guest's own tables (gwalk.c), INT3 as the software breakpoint, and
 * COM2 as the debug port; gdb's hardware breakpoints in the debug registers, for both
 * backends (x86_gdb_hw_switch, x86_gdb_guest_dr, x86_gdb_db_hit).
 */
#include <string.h>

#include <arch/gwalk.h>
#include <arch/swregs.h>
#include <arch/x86.h>
#include <arch/x86_vcpu.h>
#include <drivers/uart16550.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <vmm/gdb.h>
#include <vmm/gdbstub.h>

#define COM2_PORT 0x2f8

/* gdb's register numbers of this description. */
enum {
        R_RAX = 0, /* .. R15: the 16 GPRs in gdb's order rax rbx rcx rdx rsi rdi rbp rsp r8.. */
        R_RIP = 16,
        R_EFLAGS = 17,
        R_CS = 18, /* .. GS = 23 */
        R_ST0 = 24,
        R_FCTRL = 32, /* fctrl fstat ftag fiseg fioff foseg fooff fop */
        R_XMM0 = 40,
        R_MXCSR = 56,
        R_COUNT = 57,
};

/*
 * gdb_xml_expand's spec of the description (vmm/gdbstub.h): gdb's amd64 core and SSE
 * features, in the register order of the enum above.
 */
static const char xml_spec[] =
    "<?xml version=\"1.0\"?><!DOCTYPE target SYSTEM \"gdb-target.dtd\">"
    "<target version=\"1.0\"><architecture>i386:x86-64</architecture>"
    "<feature name=\"org.gnu.gdb.i386.core\">"
    "<flags id=\"i386_eflags\" size=\"4\">{CF:0 PF:2 AF:4 ZF:6 SF:7 TF:8 IF:9 DF:10 OF:11}</flags>"
    "[rax rbx rcx rdx rsi rdi:64,int64 rbp rsp:64,data_ptr r8-15:64,int64 rip:64,code_ptr "
    "eflags:32,i386_eflags cs ss ds es fs gs:32,int32 st0-7:80,i387_ext "
    "fctrl fstat ftag fiseg fioff foseg fooff fop:32,int,float]"
    "</feature><feature name=\"org.gnu.gdb.i386.sse\">"
    "[xmm0-15:128,uint128 mxcsr:32,int,vector]"
    "</feature></target>";

/* Written out at the first request (only one gdb session exists at a time: vmm/gdb.c). */
static char xml[3584];

const char *arch_gdb_target_xml(size_t *len)
{
        static size_t xml_len;

        if (!xml_len) {
                xml_len = gdb_xml_expand(xml, sizeof(xml), xml_spec);
                CHECK(xml_len < sizeof(xml));
        }
        *len = xml_len;
        return xml;
}

/* gdb's GPR order into struct x86_gprs; RSP lives in the backend (NULL). */
static uint64_t *gpr(struct vcpu *v, unsigned reg)
{
        /* gdb's rax rbx rcx rdx rsi rdi rbp rsp r8-r15 as the decoder numbers them */
        static const uint8_t number[16] = {0, 3, 1, 2, 6, 7, 5, 4, 8, 9, 10, 11, 12, 13, 14, 15};

        return x86_gpr(&v->arch.gprs, NULL, number[reg & 15]);
}

static void put_le(uint8_t *buf, uint64_t v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                buf[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *buf, size_t n)
{
        uint64_t v = 0;

        for (size_t i = 0; i < n; i++)
                v |= (uint64_t)buf[i] << (8 * i);
        return v;
}

/* FXSAVE image at the start of the vCPU's save area (the legacy region of XSAVE too). */
enum {
        FX_FCW = 0,
        FX_FSW = 2,
        FX_FTW = 4,
        FX_FOP = 6,
        FX_FIP = 8,
        FX_FCS = 12,
        FX_FDP = 16,
        FX_FDS = 20,
        FX_MXCSR = 24,
        FX_ST0 = 32,
        FX_XMM0 = 160,
        XSAVE_BV = 512
};

static size_t fp_reg(struct vcpu *v, unsigned reg, uint8_t *buf)
{
        const uint8_t *fx = v->arch.fpu;

        if (reg < R_FCTRL) {
                memcpy(buf, fx + FX_ST0 + 16 * (reg - R_ST0), 10);
                return 10;
        }
        if (reg >= R_XMM0 && reg < R_MXCSR) {
                memcpy(buf, fx + FX_XMM0 + 16 * (reg - R_XMM0), 16);
                return 16;
        }
        switch (reg) {
        case R_FCTRL:
                put_le(buf, get_le(fx + FX_FCW, 2), 4);
                break;
        case R_FCTRL + 1:
                put_le(buf, get_le(fx + FX_FSW, 2), 4);
                break;
        case R_FCTRL + 2: { /* the full tag word from FXSAVE's abridged one: valid or empty */
                uint32_t tag = 0;

                for (unsigned i = 0; i < 8; i++)
                        if (!(fx[FX_FTW] & (1u << i)))
                                tag |= 3u << (2 * i);
                put_le(buf, tag, 4);
                break;
        }
        case R_FCTRL + 3:
                put_le(buf, get_le(fx + FX_FCS, 2), 4);
                break;
        case R_FCTRL + 4:
                put_le(buf, get_le(fx + FX_FIP, 4), 4);
                break;
        case R_FCTRL + 5:
                put_le(buf, get_le(fx + FX_FDS, 2), 4);
                break;
        case R_FCTRL + 6:
                put_le(buf, get_le(fx + FX_FDP, 4), 4);
                break;
        case R_FCTRL + 7:
                put_le(buf, get_le(fx + FX_FOP, 2), 4);
                break;
        default: /* R_MXCSR */
                put_le(buf, get_le(fx + FX_MXCSR, 4), 4);
                break;
        }
        return 4;
}

size_t arch_gdb_reg_read(struct vcpu *v, unsigned reg, uint8_t *buf)
{
        struct x86_debug_state st;

        if (reg >= R_COUNT || !v->arch.vmcb || !v->arch.fpu || !x86_debug_state(v, &st, false))
                return 0;
        if (reg < R_RIP) {
                put_le(buf, reg == 7 ? st.rsp : *gpr(v, reg), 8);
                return 8;
        }
        if (reg == R_RIP) {
                put_le(buf, st.rip, 8);
                return 8;
        }
        if (reg == R_EFLAGS) { /* without the TF Keel sets for a step */
                put_le(buf, st.rflags & ~(v->arch.gdb_tf ? X86_RFLAGS_TF : 0), 4);
                return 4;
        }
        if (reg < R_ST0) {
                put_le(buf, st.sel[reg - R_CS], 4);
                return 4;
        }
        return fp_reg(v, reg, buf);
}

int arch_gdb_reg_write(struct vcpu *v, unsigned reg, const uint8_t *buf, size_t size)
{
        struct x86_debug_state st;
        uint8_t *fx = v->arch.fpu;
        uint64_t val = get_le(buf, size < 8 ? size : 8);

        if (reg >= R_COUNT || !v->arch.vmcb || !fx || !x86_debug_state(v, &st, false))
                return -KEEL_EINVAL;
        if (reg < R_RIP && reg != 7) {
                *gpr(v, reg) = val;
                return 0;
        }
        if (reg == 7 || reg == R_RIP || reg == R_EFLAGS) {
                if (reg == 7)
                        st.rsp = val;
                else if (reg == R_RIP)
                        st.rip = val;
                else /* the fixed bits as the CPU keeps them (bit 1 set, 3, 5, 15 clear) */
                        st.rflags = (val & 0x3f7fd5) | 2;
                x86_debug_state(v, &st, true);
                return 0;
        }
        if (reg < R_ST0) /* a selector without its descriptor means nothing: refused */
                return val == st.sel[reg - R_CS] ? 0 : -KEEL_EINVAL;
        /* x87 and SSE: into the save area, which the next run loads (XSTATE_BV: in use). */
        if (reg < R_FCTRL)
                memcpy(fx + FX_ST0 + 16 * (reg - R_ST0), buf, 10);
        else if (reg >= R_XMM0 && reg < R_MXCSR)
                memcpy(fx + FX_XMM0 + 16 * (reg - R_XMM0), buf, 16);
        else if (reg == R_FCTRL)
                put_le(fx + FX_FCW, val, 2);
        else if (reg == R_FCTRL + 1)
                put_le(fx + FX_FSW, val, 2);
        else if (reg == R_MXCSR && !(val & ~0xffffull))
                put_le(fx + FX_MXCSR, val, 4);
        else
                return -KEEL_EINVAL; /* tag, pointers, opcode; MXCSR's reserved bits */
        fx[XSAVE_BV] |= 3;           /* harmless past an FXSAVE image */
        return 0;
}

int arch_gdb_translate(struct vcpu *v, uint64_t gva, gpa_t *gpa)
{
        struct x86_debug_state st;
        struct x86_paging pg;

        if (!v->arch.vmcb || !x86_debug_state(v, &st, false))
                return -KEEL_ENOTSUP;
        pg = (struct x86_paging){st.cr0, st.cr3, st.cr4, st.efer};
        return x86_gva_to_gpa(&v->vm->mem, &pg, gva, false, gpa);
}

size_t arch_gdb_break_insn(uint8_t *buf)
{
        buf[0] = 0xcc; /* INT3 */
        return 1;
}

bool arch_gdb_supported(struct vcpu *v)
{
        /* Only whether the backend has the hook: the VM runs (VT-x cannot read a VMCS another
         * CPU has current). */
        return v->arch.vmcb && x86_debug_state(v, NULL, false);
}

/*
 * Hardware breakpoints and watchpoints: DR0-DR3, one per breakpoint or watchpoint (SDM vol. 3
 * 18.2): instruction breakpoints, write and read/write watchpoints of 1, 2, 4 or 8 bytes at an
 * address aligned to their length. x86 has no read-only watchpoint (rwatch).
 */
#define X86_HW_SLOTS 4

int arch_gdb_hw_check(struct vcpu *v, const struct vm_debug_hw *hw, unsigned n)
{
        (void)v;
        for (unsigned i = 0; i < n; i++) {
                if (hw[i].type == GDB_WP_READ)
                        return -KEEL_ENOTSUP;
                if (hw[i].type != GDB_BP_HW &&
                    ((hw[i].len != 1 && hw[i].len != 2 && hw[i].len != 4 && hw[i].len != 8) ||
                     (hw[i].addr & (hw[i].len - 1))))
                        return -KEEL_EINVAL;
        }
        return n > X86_HW_SLOTS ? -KEEL_ENOSPC : 0;
}

uint64_t x86_gdb_dr7(const struct vm *vm, uint64_t dr[4])
{
        /* DR7.LENn: 00 one byte, 01 two, 11 four, 10 eight; R/Wn: 00 execute, 01 write, 11
         * read or write. */
        uint64_t dr7 = 0x400;

        for (unsigned i = 0; i < X86_HW_SLOTS; i++) {
                const struct vm_debug_hw *h = &vm->debug_hw[i];
                unsigned rw, len = h->len == 2 ? 1 : h->len == 4 ? 3 : h->len == 8 ? 2 : 0;

                dr[i] = 0;
                if (i >= vm->debug_hw_n)
                        continue;
                dr[i] = h->addr;
                rw = h->type == GDB_BP_HW ? 0 : h->type == GDB_WP_WRITE ? 1 : 3;
                dr7 |= 1ull << (2 * i); /* Ln */
                dr7 |= (uint64_t)(rw | (h->type == GDB_BP_HW ? 0 : len << 2)) << (16 + 4 * i);
        }
        return dr7;
}

int x86_gdb_hw_switch(struct vcpu *v, uint64_t *dr7)
{
        struct vcpu_arch *a = &v->arch;
        bool want = v->vm->debug && v->vm->debug_hw_n;

        if (!want && !a->gdb_hw)
                return 0;
        if (!a->gdb_hw) { /* the guest's own aside */
                memcpy(a->gdb_dr, a->swregs.dr, sizeof(a->swregs.dr));
                a->gdb_dr[4] = *dr7;
        }
        a->gdb_hw = want;
        if (want) {
                *dr7 = x86_gdb_dr7(v->vm, a->swregs.dr);
        } else {
                memcpy(a->swregs.dr, a->gdb_dr, sizeof(a->swregs.dr));
                *dr7 = a->gdb_dr[4];
        }
        x86_swregs_load(&a->swregs, X86_SWREGS_DR0_3);
        return want ? 1 : -1;
}

bool x86_gdb_guest_dr(struct vcpu *v, unsigned dr, uint64_t *reg, bool write, bool wide)
{
        uint64_t *kept = &v->arch.gdb_dr[dr < 4 ? dr : 4], val = wide ? *reg : (uint32_t)*reg;

        if (!write) {
                *reg = wide ? *kept : (uint32_t)*kept;
                return true;
        }
        if (dr == 7 && (val >> 32))
                return false;
        *kept = dr == 7 ? val | 0x400 : val;
        return true;
}

bool x86_gdb_db_hit(struct vcpu *v, uint64_t *dr6, bool *rf_needed)
{
        struct vm *vm = v->vm;
        unsigned n = vm->debug_hw_n < X86_HW_SLOTS ? vm->debug_hw_n : X86_HW_SLOTS;
        unsigned hit = (unsigned)(*dr6 & ((1u << n) - 1));
        unsigned i;

        if (!hit)
                return false;
        i = (unsigned)__builtin_ctz(hit);
        *dr6 &= ~0xfull;
        *rf_needed = vm->debug_hw[i].type == GDB_BP_HW;
        vm_debug_hw_hit(v, i, vm->debug_hw[i].addr);
        return true;
}

/* COM2, if a 16550 answers there: its scratch register keeps what is written. */
bool arch_gdb_port_present(void)
{
        static int present = -1;

        if (present < 0) {
                x86_outb(COM2_PORT + 7, 0x5a);
                present = x86_inb(COM2_PORT + 7) == 0x5a;
                if (present)
                        uart16550_init(COM2_PORT);
        }
        return present;
}

int arch_gdb_port_getc(void)
{
        return uart16550_getc(COM2_PORT);
}

void arch_gdb_port_write(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                uart16550_putc(COM2_PORT, s[i]);
}
