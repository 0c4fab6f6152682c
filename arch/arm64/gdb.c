/*
 * arm64 side of a gdb session (vmm/include/vmm/gdb.h, docs/debugging.md): the registers in
 * the order of gdb's aarch64 core and fpu features, guest-virtual translation through the
 * guest's own stage-1 tables (its TCR/TTBRs as saved when the vCPU left), BRK #0 as the
 * software breakpoint. The traps themselves (MDCR_EL2.TDE while a session is on, BRK and
 * software-step exits) are in vcpu.c. QEMU's virt machine has one PL011, so there is no
 * debug port: gdb reaches a VM over Keel's console (the monitor's `gdb VM`).
 */
#include <string.h>

#include <arch/sysreg.h>
#include <arch/vm.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <vmm/gdb.h>
#include <vmm/gdbstub.h>
#include <vmm/gmem.h>

#include "arm64_priv.h"

/* gdb's register numbers of this description. */
enum {
        R_X0 = 0, /* .. x30 */
        R_SP = 31,
        R_PC = 32,
        R_CPSR = 33,
        R_V0 = 34, /* .. v31 */
        R_FPSR = 66,
        R_FPCR = 67,
        R_COUNT = 68,
};

/*
 * gdb_xml_expand's spec of the description (vmm/gdbstub.h): gdb's aarch64 core and FP/SIMD
 * features, in the register order of the enum above.
 */
static const char xml_spec[] = "<?xml version=\"1.0\"?><!DOCTYPE target SYSTEM \"gdb-target.dtd\">"
                               "<target version=\"1.0\"><architecture>aarch64</architecture>"
                               "<feature name=\"org.gnu.gdb.aarch64.core\">"
                               "[x0-30:64 sp:64,data_ptr pc:64,code_ptr cpsr:32]"
                               "</feature><feature name=\"org.gnu.gdb.aarch64.fpu\">"
                               "[v0-31:128,uint128 fpsr fpcr:32]"
                               "</feature></target>";

/* Written out at the first request (only one gdb session exists at a time: vmm/gdb.c). */
static char xml[3072];

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

/* The stack pointer the vCPU uses now: SP_EL1 in EL1h, else SP_EL0. */
static uint64_t *cur_sp(struct vcpu_arch *c)
{
        return (c->pstate & PSR_MODE_MASK) == PSR_MODE_EL1H ? &c->el1.sp_el1 : &c->el1.sp_el0;
}

size_t arch_gdb_reg_read(struct vcpu *v, unsigned reg, uint8_t *buf)
{
        struct vcpu_arch *c = &v->arch;

        if (reg < R_SP) {
                put_le(buf, c->x[reg], 8);
                return 8;
        }
        switch (reg) {
        case R_SP:
                put_le(buf, *cur_sp(c), 8);
                return 8;
        case R_PC:
                put_le(buf, c->pc, 8);
                return 8;
        case R_CPSR: /* without the SS bit Keel sets for a step */
                put_le(buf, c->pstate & ~(uint64_t)PSR_SS, 4);
                return 4;
        case R_FPSR:
                put_le(buf, c->fp.fpsr, 4);
                return 4;
        case R_FPCR:
                put_le(buf, c->fp.fpcr, 4);
                return 4;
        }
        if (reg >= R_V0 && reg < R_FPSR) {
                __uint128_t q = c->fp.q[reg - R_V0];

                put_le(buf, (uint64_t)q, 8);
                put_le(buf + 8, (uint64_t)(q >> 64), 8);
                return 16;
        }
        return 0;
}

/* PSTATE values a vCPU may take: AArch64 EL0t, EL1t or EL1h, and only the bits that exist
 * at EL1 (NZCV, DAIF, SS, IL, PAN, UAO, DIT, TCO, SSBS, BTYPE). */
#define PSTATE_MODES_OK(m) ((m) == 0x0 || (m) == 0x4 || (m) == PSR_MODE_EL1H)
#define PSTATE_WRITABLE    0xf3f033cfull

int arch_gdb_reg_write(struct vcpu *v, unsigned reg, const uint8_t *buf, size_t size)
{
        struct vcpu_arch *c = &v->arch;
        uint64_t val = get_le(buf, size < 8 ? size : 8);

        if (reg < R_SP) {
                c->x[reg] = val;
                return 0;
        }
        switch (reg) {
        case R_SP:
                *cur_sp(c) = val;
                return 0;
        case R_PC:
                c->pc = val;
                return 0;
        case R_CPSR:
                if (!PSTATE_MODES_OK(val & 0x1f) || (val & ~PSTATE_WRITABLE))
                        return -KEEL_EINVAL; /* EL2/EL3, AArch32, or bits that do not exist */
                c->pstate = (val & ~(uint64_t)PSR_SS) | (c->pstate & PSR_SS);
                return 0;
        case R_FPSR:
                c->fp.fpsr = val & 0xffffffffull;
                return 0;
        case R_FPCR:
                c->fp.fpcr = val & 0xffffffffull;
                return 0;
        }
        if (reg >= R_V0 && reg < R_FPSR && size == 16) {
                c->fp.q[reg - R_V0] =
                    (__uint128_t)get_le(buf + 8, 8) << 64 | (__uint128_t)get_le(buf, 8);
                c->fresh = false; /* the next run loads these, not zeros */
                return 0;
        }
        return -KEEL_EINVAL;
}

/*
 * The guest's stage-1 walk (EL1&0 regime, AArch64 descriptors) as the MMU does it for a read:
 * TTBR0 or TTBR1 by the top of the address (TBI honoured), the granule of that half (4, 16
 * or 64 KiB), the start level from TnSZ, table and block descriptors, 48-bit output
 * addresses. With SCTLR_EL1.M clear the address is its own IPA. Permissions are not checked:
 * gdb may read what the guest could not.
 */
#define TCR_EPD0 (1ull << 7)
#define TCR_EPD1 (1ull << 23)
#define TCR_TBI0 (1ull << 37)
#define TCR_TBI1 (1ull << 38)
#define OA_MASK  0x0000fffffffff000ull

int arch_gdb_translate(struct vcpu *v, uint64_t gva, gpa_t *out)
{
        const struct arm64_el1_regs *r = &v->arch.el1;
        bool hi = (gva >> 55) & 1;
        bool tbi = r->tcr & (hi ? TCR_TBI1 : TCR_TBI0);
        unsigned tsz = (unsigned)(hi ? (r->tcr >> 16) : r->tcr) & 0x3f;
        unsigned tg = (unsigned)(hi ? (r->tcr >> 30) : (r->tcr >> 14)) & 3;
        unsigned gshift, stride, va_bits, nbits, start, shift = 0;
        uint64_t table, desc = 0, top;

        if (!(r->sctlr & 1)) {
                *out = gpa(gva);
                return 0;
        }
        if (r->tcr & (hi ? TCR_EPD1 : TCR_EPD0))
                return -KEEL_EFAULT;
        /* TG0: 0 4K, 1 64K, 2 16K; TG1: 1 16K, 2 4K, 3 64K. */
        if (hi)
                gshift = tg == 1 ? 14 : tg == 3 ? 16 : 12;
        else
                gshift = tg == 1 ? 16 : tg == 2 ? 14 : 12;
        tsz = tsz < 16 ? 16 : tsz; /* no 52-bit VAs */
        if (tsz > 48)
                return -KEEL_EFAULT;
        va_bits = 64 - tsz;
        /* The bits from the VA size up (to 55 with TBI) must all equal the selector. */
        nbits = (tbi ? 56 : 64) - va_bits;
        top = (gva >> va_bits) & ((1ull << nbits) - 1);
        if (top != (hi ? (1ull << nbits) - 1 : 0))
                return -KEEL_EFAULT;
        stride = gshift - 3;
        start = 4 - (va_bits - gshift + stride - 1) / stride;
        table = (hi ? r->ttbr1 : r->ttbr0) & 0x0000fffffffffffeull; /* BADDR: no ASID, CnP */
        for (unsigned level = start; level <= 3; level++) {
                unsigned bits;

                shift = gshift + (3 - level) * stride;
                bits = level == start ? va_bits - shift : stride;
                if (gmem_read(&v->vm->mem, gpa(table + ((gva >> shift) & ((1ull << bits) - 1)) * 8),
                              &desc, 8))
                        return -KEEL_EFAULT;
                if (!(desc & 1))
                        return -KEEL_EFAULT;
                if (level == 3) {
                        if (!(desc & 2))
                                return -KEEL_EFAULT;
                        break;
                }
                if (!(desc & 2)) { /* a block: 4K granule at levels 1-2, 16K/64K at level 2 */
                        if (level == 0 || (level == 1 && gshift != 12))
                                return -KEEL_EFAULT;
                        break;
                }
                table = desc & OA_MASK & ~((1ull << gshift) - 1);
        }
        *out = gpa((desc & OA_MASK & ~((1ull << shift) - 1)) | (gva & ((1ull << shift) - 1)));
        return 0;
}

size_t arch_gdb_break_insn(uint8_t *buf)
{
        put_le(buf, 0xd4200000, 4); /* BRK #0 */
        return 4;
}

bool arch_gdb_supported(struct vcpu *v)
{
        (void)v;
        return true;
}

/*
 * Hardware breakpoints and watchpoints: as many as the CPU has breakpoint and watchpoint
 * registers (ID_AA64DFR0_EL1.BRPs, WRPs; vcpu.c loads them). A watchpoint covers 1-8 bytes
 * inside one aligned doubleword, or a power-of-two range of 8 bytes to 2 GiB aligned to its
 * size; loads, stores or both.
 */
int arch_gdb_hw_check(struct vcpu *v, const struct vm_debug_hw *hw, unsigned n)
{
        unsigned nb = 0, nw = 0;

        (void)v;
        for (unsigned i = 0; i < n; i++) {
                uint64_t a = hw[i].addr, len = hw[i].len;

                if (hw[i].type == GDB_BP_HW) {
                        nb++;
                        continue;
                }
                nw++;
                if (len == 0 || ((a & 7) + len > 8 &&
                                 ((len & (len - 1)) || (a & (len - 1)) || len > (1ull << 31))))
                        return -KEEL_EINVAL;
        }
        if (nb > arm64_debug_slots(false) || nw > arm64_debug_slots(true))
                return -KEEL_ENOSPC;
        return 0;
}

/* QEMU's virt machine, like most arm64 boards, has one UART: Keel's console. */
bool arch_gdb_port_present(void)
{
        return false;
}

int arch_gdb_port_getc(void)
{
        return -1;
}

void arch_gdb_port_write(const char *s, size_t n)
{
        (void)s;
        (void)n;
}
