/*
 * x86 instruction decoder: see arch/decode.h and docs/x86-decoder.md.
 *
 * The tables below were written from the opcode maps of the Intel SDM (Vol. 2, Appendix A)
 * and the AMD APM (Vol. 3, Appendix A). One entry per opcode says whether a ModRM byte
 * follows, which immediate follows, and how the opcode behaves in 64-bit mode; group
 * opcodes whose length or validity depends on ModRM.reg are finished in code.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <keel/errno.h>
#include <arch/decode.h>

/* Immediate kinds (low 4 bits of an entry). */
enum {
        I_NONE = 0,
        I_B,     /* imm8 */
        I_W,     /* imm16 */
        I_Z,     /* imm16 or imm32 by operand size (imm32 for 64-bit operands) */
        I_V,     /* imm16/32/64 by operand size (B8+r only) */
        I_ENTER, /* imm16, imm8 */
        I_AP,    /* far pointer: offset16/32 then selector16 */
        I_MOFFS, /* offset of address size (A0-A3) */
        I_GRP3,  /* F6/F7: /0 and /1 (TEST) take an immediate (Ib or Iz) */
        I_SSE4A, /* 0F 78: 66/F2 forms (EXTRQ/INSERTQ) take imm8, imm8; VMREAD none */
};

#define I_MASK 0x000fu
#define F_M    0x0010u /* ModRM follows */
#define F_I64  0x0020u /* invalid in 64-bit mode */
#define F_D64  0x0040u /* 64-bit default operand size in 64-bit mode (stack ops) */
#define F_F64  0x0080u /* near branch: 64-bit operand size in 64-bit mode (66: 16, AMD) */
#define F_BYTE 0x0100u /* byte operand size */
#define F_INV  0x0200u /* always invalid (#UD) */
#define F_MEM  0x0400u /* memory operand required: mod == 3 is #UD */
#define F_REG  0x0800u /* ModRM always a register form: mod is ignored (MOV CR/DR) */
#define F_PFX  0x1000u /* legacy prefix or escape byte: handled before the table */

#define M   F_M
#define B   F_BYTE
#define Ib  I_B
#define Iw  I_W
#define Iz  I_Z
#define I64 F_I64
#define D64 F_D64
#define F64 F_F64
#define INV F_INV
#define MEM F_MEM
#define PFX F_PFX

/* clang-format off */
static const uint16_t one_byte[256] = {
	/* 00 */ M|B, M, M|B, M, Ib|B, Iz, I64, I64,
	/* 08 */ M|B, M, M|B, M, Ib|B, Iz, I64, PFX,
	/* 10 */ M|B, M, M|B, M, Ib|B, Iz, I64, I64,
	/* 18 */ M|B, M, M|B, M, Ib|B, Iz, I64, I64,
	/* 20 */ M|B, M, M|B, M, Ib|B, Iz, PFX, I64,
	/* 28 */ M|B, M, M|B, M, Ib|B, Iz, PFX, I64,
	/* 30 */ M|B, M, M|B, M, Ib|B, Iz, PFX, I64,
	/* 38 */ M|B, M, M|B, M, Ib|B, Iz, PFX, I64,
	/* 40 inc/dec (REX in 64-bit mode) */
	0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0,
	/* 50 push, 58 pop */
	D64, D64, D64, D64, D64, D64, D64, D64,
	D64, D64, D64, D64, D64, D64, D64, D64,
	/* 60 pusha, popa, bound (EVEX), arpl/movsxd, fs, gs, 66, 67 */
	I64, I64, M|MEM|I64, M, PFX, PFX, PFX, PFX,
	/* 68 push Iz, imul Iz, push Ib, imul Ib, ins, outs */
	Iz|D64, M|Iz, Ib|D64, M|Ib, B, 0, B, 0,
	/* 70 jcc rel8 */
	Ib|F64, Ib|F64, Ib|F64, Ib|F64, Ib|F64, Ib|F64, Ib|F64, Ib|F64,
	Ib|F64, Ib|F64, Ib|F64, Ib|F64, Ib|F64, Ib|F64, Ib|F64, Ib|F64,
	/* 80 grp1, test, xchg */
	M|Ib|B, M|Iz, M|Ib|B|I64, M|Ib, M|B, M, M|B, M,
	/* 88 mov, mov Sw, lea, mov Sw, pop Ev (XOP) */
	M|B, M, M|B, M, M, M|MEM, M, M|D64,
	/* 90 xchg/nop, cbw, cwd, call far, fwait, pushf, popf, sahf, lahf */
	0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, I_AP|I64, 0, D64, D64, 0, 0,
	/* a0 mov moffs, movs, cmps */
	I_MOFFS|B, I_MOFFS, I_MOFFS|B, I_MOFFS, B, 0, B, 0,
	/* a8 test, stos, lods, scas */
	Ib|B, Iz, B, 0, B, 0, B, 0,
	/* b0 mov r8, imm8; b8 mov r, imm */
	Ib|B, Ib|B, Ib|B, Ib|B, Ib|B, Ib|B, Ib|B, Ib|B,
	I_V, I_V, I_V, I_V, I_V, I_V, I_V, I_V,
	/* c0 grp2 Ib, ret Iw, ret, les (VEX3), lds (VEX2), grp11 */
	M|Ib|B, M|Ib, Iw|F64, F64, M|MEM|I64, M|MEM|I64, M|Ib|B, M|Iz,
	/* c8 enter, leave, retf Iw, retf, int3, int Ib, into, iret */
	I_ENTER|D64, D64, Iw, 0, 0, Ib, I64, 0,
	/* d0 grp2, aam, aad, salc, xlat, x87 */
	M|B, M, M|B, M, Ib|I64, Ib|I64, I64, 0,
	M, M, M, M, M, M, M, M,
	/* e0 loopne, loope, loop, jcxz, in, in, out, out */
	Ib|F64, Ib|F64, Ib|F64, Ib|F64, Ib|B, Ib, Ib|B, Ib,
	/* e8 call, jmp, jmp far, jmp rel8, in dx, in dx, out dx, out dx */
	Iz|F64, Iz|F64, I_AP|I64, Ib|F64, B, 0, B, 0,
	/* f0 lock, int1, repne, rep, hlt, cmc, grp3, grp3 */
	PFX, 0, PFX, PFX, 0, 0, M|I_GRP3|B, M|I_GRP3,
	/* f8 clc, stc, cli, sti, cld, std, grp4, grp5 */
	0, 0, 0, 0, 0, 0, M|B, M,
};

static const uint16_t two_byte[256] = {
	/* 00 grp6, grp7, lar, lsl, -, syscall, clts, sysret */
	M, M, M, M, INV, 0, 0, 0,
	/* 08 invd, wbinvd, -, ud2, -, prefetch, femms, 3dnow */
	0, 0, INV, 0, INV, M, 0, PFX,
	/* 10 sse, 18 prefetch/hint nops */
	M, M, M, M, M, M, M, M,
	M, M, M, M, M, M, M, M,
	/* 20 mov cr/dr (register forms only), 24-27 mov tr: gone */
	M|F_REG, M|F_REG, M|F_REG, M|F_REG, INV, INV, INV, INV,
	M, M, M, M, M, M, M, M,
	/* 30 wrmsr, rdtsc, rdmsr, rdpmc, sysenter, sysexit, -, getsec */
	0, 0, 0, 0, 0, 0, INV, 0,
	/* 38 3-byte escape, -, 3-byte escape, - */
	PFX, INV, PFX, INV, INV, INV, INV, INV,
	/* 40 cmovcc */
	M, M, M, M, M, M, M, M,
	M, M, M, M, M, M, M, M,
	/* 50-6f sse/mmx */
	M, M, M, M, M, M, M, M,
	M, M, M, M, M, M, M, M,
	M, M, M, M, M, M, M, M,
	M, M, M, M, M, M, M, M,
	/* 70 pshuf Ib, grp12-14 Ib, pcmpeq, emms */
	M|Ib, M|Ib, M|Ib, M|Ib, M, M, M, 0,
	/* 78 vmread/extrq/insertq, vmwrite/extrq/insertq, -, -, haddpd.. */
	M|I_SSE4A, M, INV, INV, M, M, M, M,
	/* 80 jcc rel16/32 */
	Iz|F64, Iz|F64, Iz|F64, Iz|F64, Iz|F64, Iz|F64, Iz|F64, Iz|F64,
	Iz|F64, Iz|F64, Iz|F64, Iz|F64, Iz|F64, Iz|F64, Iz|F64, Iz|F64,
	/* 90 setcc */
	M|B, M|B, M|B, M|B, M|B, M|B, M|B, M|B,
	M|B, M|B, M|B, M|B, M|B, M|B, M|B, M|B,
	/* a0 push fs, pop fs, cpuid, bt, shld Ib, shld cl, -, - */
	D64, D64, 0, M, M|Ib, M, INV, INV,
	/* a8 push gs, pop gs, rsm, bts, shrd Ib, shrd cl, grp15, imul */
	D64, D64, 0, M, M|Ib, M, M, M,
	/* b0 cmpxchg, lss, btr, lfs, lgs, movzx */
	M|B, M, M|MEM, M, M|MEM, M|MEM, M, M,
	/* b8 popcnt, ud1, grp8 Ib, btc, bsf/tzcnt, bsr/lzcnt, movsx */
	M, M, M|Ib, M, M, M, M, M,
	/* c0 xadd, cmpps Ib, movnti, pinsrw Ib, pextrw Ib, shufps Ib, grp9 */
	M|B, M, M|Ib, M|MEM, M|Ib, M|Ib, M|Ib, M,
	/* c8 bswap */
	0, 0, 0, 0, 0, 0, 0, 0,
	/* d0-ff sse/mmx, ff ud0 */
	M, M, M, M, M, M, M, M,
	M, M, M, M, M, M, M, M,
	M, M, M, M, M, M, M, M,
	M, M, M, M, M, M, M, M,
	M, M, M, M, M, M, M, M,
	M, M, M, M, M, M, M, M,
};
/* clang-format on */

#undef M
#undef B
#undef Ib
#undef Iw
#undef Iz
#undef I64
#undef D64
#undef F64
#undef INV
#undef MEM
#undef PFX

struct dec {
        const uint8_t *bytes;
        size_t avail;
        unsigned pos;
};

/* Room for n more bytes at the cursor? -KEEL_EINVAL past 15, -KEEL_EAGAIN past avail. */
static inline int need(const struct dec *d, unsigned n)
{
        if (d->pos + n > X86_MAX_INSN_LEN)
                return -KEEL_EINVAL;
        if (d->pos + n > d->avail)
                return -KEEL_EAGAIN;
        return 0;
}

/* Little-endian value of n (1, 2, 4 or 8) bytes at the cursor; need() was checked. */
static uint64_t take(struct dec *d, unsigned n)
{
        uint64_t v = 0;

        for (unsigned i = 0; i < n; i++)
                v |= (uint64_t)d->bytes[d->pos + i] << (8 * i);
        d->pos += n;
        return v;
}

static int64_t sext(uint64_t v, unsigned size)
{
        switch (size) {
        case 1:
                return (int8_t)v;
        case 2:
                return (int16_t)v;
        case 4:
                return (int32_t)v;
        default:
                return (int64_t)v;
        }
}

/* Base and index registers of the eight 16-bit addressing forms. */
static const int8_t base16[8] = {3, 3, 5, 5, 6, 7, 5, 3};
static const int8_t index16[8] = {6,           7, 6, 7, X86_REG_NONE, X86_REG_NONE, X86_REG_NONE,
                                  X86_REG_NONE};

/* ModRM, SIB and displacement. `regonly`: the ModRM names registers whatever mod says. */
static int decode_modrm(struct dec *d, struct x86_insn *in, bool regonly)
{
        int r = need(d, 1);
        unsigned disp = 0;

        if (r)
                return r;
        in->has_modrm = true;
        in->modrm = d->bytes[d->pos++];
        in->mod = in->modrm >> 6;
        in->reg = (in->modrm >> 3) & 7;
        in->rm = in->modrm & 7;
        in->modrm_reg = in->reg | (in->rex_r ? 8 : 0);
        in->modrm_rm = in->rm | (in->rex_b ? 8 : 0);
        in->mem_base = X86_REG_NONE;
        in->mem_index = X86_REG_NONE;
        if (in->mod == 3 || regonly)
                return 0;

        in->has_mem = true;
        in->mem_scale = 1;
        if (in->addr_size == 2) {
                if (in->mod == 0 && in->rm == 6) {
                        disp = 2;
                } else {
                        in->mem_base = base16[in->rm];
                        in->mem_index = index16[in->rm];
                        disp = in->mod == 1 ? 1 : in->mod == 2 ? 2 : 0;
                }
        } else {
                unsigned base = in->rm;

                if (in->rm == 4) {
                        r = need(d, 1);
                        if (r)
                                return r;
                        in->has_sib = true;
                        in->sib = d->bytes[d->pos++];
                        in->scale = in->sib >> 6;
                        in->index = (in->sib >> 3) & 7;
                        in->base = in->sib & 7;
                        in->mem_scale = (uint8_t)(1u << in->scale);
                        if (in->index != 4 || in->rex_x)
                                in->mem_index = (int8_t)(in->index | (in->rex_x ? 8 : 0));
                        base = in->base;
                }
                if (in->mod == 0 && base == 5) {
                        /* No base: disp32. Without SIB in 64-bit mode: RIP-relative. */
                        disp = 4;
                        if (!in->has_sib && in->mode == X86_MODE_LONG64)
                                in->rip_relative = true;
                } else {
                        in->mem_base = (int8_t)(base | (in->rex_b ? 8 : 0));
                        disp = in->mod == 1 ? 1 : in->mod == 2 ? 4 : 0;
                }
        }
        if (disp) {
                r = need(d, disp);
                if (r)
                        return r;
                in->disp_off = (uint8_t)d->pos;
                in->disp_size = (uint8_t)disp;
                in->disp = sext(take(d, disp), disp);
        }
        return 0;
}

static int take_imm(struct dec *d, struct x86_insn *in, unsigned size)
{
        int r;

        if (!size)
                return 0;
        r = need(d, size);
        if (r)
                return r;
        in->imm_off = (uint8_t)d->pos;
        in->imm_size = (uint8_t)size;
        in->imm = take(d, size);
        return 0;
}

static int take_imm2(struct dec *d, struct x86_insn *in, unsigned size)
{
        int r = need(d, size);

        if (r)
                return r;
        in->imm2_size = (uint8_t)size;
        in->imm2 = (uint16_t)take(d, size);
        return 0;
}

/* Can a LOCK prefix apply to this (legacy, memory-operand) instruction? */
static bool lockable(const struct x86_insn *in)
{
        uint8_t op = in->opcode;

        if (in->map == X86_MAP_0F && (op == 0x20 || op == 0x22))
                return true; /* AMD: LOCK MOV CR0 is MOV CR8 */
        if (!in->has_mem)
                return false;
        if (in->map == X86_MAP_PRIMARY) {
                if (op < 0x38 && (op & 7) < 2)
                        return true; /* add, or, adc, sbb, and, sub, xor Eb/Ev,G */
                switch (op) {
                case 0x80:
                case 0x81:
                case 0x82:
                case 0x83:
                        return in->reg != 7; /* not cmp */
                case 0x86:
                case 0x87:
                        return true;
                case 0xf6:
                case 0xf7:
                        return in->reg == 2 || in->reg == 3; /* not, neg */
                case 0xfe:
                case 0xff:
                        return in->reg < 2; /* inc, dec */
                }
                return false;
        }
        if (in->map == X86_MAP_0F) {
                switch (op) {
                case 0xab:
                case 0xb3:
                case 0xbb:
                case 0xb0:
                case 0xb1:
                case 0xc0:
                case 0xc1:
                        return true;
                case 0xba:
                        return in->reg >= 5; /* bts, btr, btc */
                case 0xc7:
                        return in->reg == 1; /* cmpxchg8b/16b */
                }
        }
        return false;
}

/* Validity rules of group opcodes that the table cannot express. */
static bool group_valid(const struct x86_insn *in)
{
        if (in->map == X86_MAP_PRIMARY) {
                switch (in->opcode) {
                case 0x8c: /* mov Ev, Sreg */
                        return in->reg <= 5;
                case 0x8e: /* mov Sreg, Ew: not CS */
                        return in->reg <= 5 && in->reg != 1;
                case 0x8f: /* pop Ev (the XOP forms were taken earlier) */
                        return in->reg == 0;
                case 0xc6: /* mov Eb, Ib; xabort */
                case 0xc7: /* mov Ev, Iz; xbegin */
                        return in->reg == 0 || in->modrm == 0xf8;
                case 0xfe:
                        return in->reg < 2;
                case 0xff:
                        if (in->reg == 7)
                                return false;
                        if (in->reg == 3 || in->reg == 5) /* far call/jmp through memory */
                                return in->mod != 3;
                        return true;
                }
                return true;
        }
        if (in->map == X86_MAP_0F) {
                switch (in->opcode) {
                case 0x00:
                        return in->reg < 6;
                case 0xb8: /* popcnt needs F3 (0F B8 alone is IA-64 JMPE) */
                        return in->last_rep == 0xf3;
                case 0xba:
                        return in->reg >= 4;
                case 0xc7:
                        return in->reg != 0;
                }
        }
        return true;
}

/* VEX/EVEX/XOP: immediates by map and opcode. */
static unsigned vex_imm_size(uint8_t map, uint8_t op)
{
        switch (map) {
        case X86_MAP_0F:
                return ((op >= 0x70 && op <= 0x73) || op == 0xc2 || (op >= 0xc4 && op <= 0xc6)) ? 1
                                                                                                : 0;
        case X86_MAP_0F3A:
        case X86_MAP_XOP8:
                return 1;
        case X86_MAP_XOPA:
                return 4;
        default:
                return 0;
        }
}

/* C4/C5/62/8F at the cursor (after the legacy prefixes): VEX/EVEX/XOP rather than LES, LDS,
 * BOUND, POP? Needs the next byte. Returns 1 if so, 0 if legacy, or an error. */
static int is_vex_like(const struct dec *d, const struct x86_insn *in, uint8_t op)
{
        uint8_t next;
        int r;

        if (in->mode == X86_MODE_REAL16)
                return 0;
        if (op != 0xc4 && op != 0xc5 && op != 0x62 && op != 0x8f)
                return 0;
        if (op != 0x8f && in->mode == X86_MODE_LONG64)
                return 1;
        r = need(d, 2);
        if (r)
                return r;
        next = d->bytes[d->pos + 1];
        if (op == 0x8f)
                return (next & 0x1f) >= 8;
        return (next & 0xc0) == 0xc0;
}

static int decode_vex(struct dec *d, struct x86_insn *in, uint8_t esc)
{
        unsigned hdr = esc == 0xc5 ? 2 : esc == 0x62 ? 4 : 3;
        uint8_t p0, p1, mmm;
        int r;

        /* 66, F2, F3, LOCK or REX before VEX/EVEX/XOP is #UD. */
        if (in->prefixes & (X86_PFX_OPSIZE | X86_PFX_LOCK | X86_PFX_REPNE | X86_PFX_REP) || in->rex)
                return -KEEL_EINVAL;
        r = need(d, hdr);
        if (r)
                return r;
        p0 = d->bytes[d->pos + 1];
        p1 = hdr > 2 ? d->bytes[d->pos + 2] : 0;
        bool is64 = in->mode == X86_MODE_LONG64;

        if (esc == 0xc5) {
                in->encoding = X86_ENC_VEX2;
                in->map = X86_MAP_0F;
                in->rex_r = is64 && !(p0 & 0x80);
                in->vex_vvvv = (~p0 >> 3) & 0xf;
                in->vex_l = (p0 >> 2) & 1;
                in->vex_pp = p0 & 3;
        } else {
                mmm = p0 & 0x1f;
                in->rex_r = is64 && !(p0 & 0x80);
                in->rex_x = is64 && !(p0 & 0x40);
                in->rex_b = is64 && !(p0 & 0x20);
                in->rex_w = (p1 & 0x80) != 0;
                in->vex_vvvv = (~p1 >> 3) & 0xf;
                in->vex_pp = p1 & 3;
                if (esc == 0x62) {
                        uint8_t p2 = d->bytes[d->pos + 3];

                        /* P0 bit 3 must be 0 and P1 bit 2 must be 1; map in bits 2:0. */
                        if ((p0 & 0x08) || !(p1 & 0x04))
                                return -KEEL_EINVAL;
                        mmm = p0 & 7;
                        in->encoding = X86_ENC_EVEX;
                        in->vex_l = (p2 >> 5) & 3;
                        switch (mmm) {
                        case 1:
                                in->map = X86_MAP_0F;
                                break;
                        case 2:
                                in->map = X86_MAP_0F38;
                                break;
                        case 3:
                                in->map = X86_MAP_0F3A;
                                break;
                        case 5:
                                in->map = X86_MAP_EVEX5;
                                break;
                        case 6:
                                in->map = X86_MAP_EVEX6;
                                break;
                        default:
                                return -KEEL_EINVAL;
                        }
                } else {
                        in->vex_l = (p1 >> 2) & 1;
                        if (esc == 0xc4) {
                                in->encoding = X86_ENC_VEX3;
                                if (mmm < 1 || mmm > 3)
                                        return -KEEL_EINVAL;
                                in->map = (uint8_t)(X86_MAP_0F + mmm - 1);
                        } else {
                                in->encoding = X86_ENC_XOP;
                                if (mmm < 8 || mmm > 10)
                                        return -KEEL_EINVAL;
                                in->map = (uint8_t)(X86_MAP_XOP8 + mmm - 8);
                        }
                }
        }
        in->escape_len = (uint8_t)hdr;
        d->pos += hdr;
        r = need(d, 1);
        if (r)
                return r;
        in->opcode_off = (uint8_t)d->pos;
        in->opcode = d->bytes[d->pos++];
        in->op_size = in->rex_w ? 8 : 4;
        /* Every VEX/EVEX/XOP instruction has a ModRM except VZEROUPPER/VZEROALL (VEX 0F 77). */
        if (!(in->map == X86_MAP_0F && in->opcode == 0x77 && in->encoding != X86_ENC_EVEX)) {
                r = decode_modrm(d, in, false);
                if (r)
                        return r;
        }
        return take_imm(d, in, vex_imm_size(in->map, in->opcode));
}

static void set_mem_seg(struct x86_insn *in)
{
        bool ss = in->mem_base == 4 || in->mem_base == 5;

        if (!in->has_mem)
                return;
        if (in->mode == X86_MODE_LONG64)
                in->mem_seg = (in->seg_override == X86_SEG_FS || in->seg_override == X86_SEG_GS)
                                  ? in->seg_override
                                  : (ss ? X86_SEG_SS : X86_SEG_DS);
        else if (in->seg_override != X86_SEG_NONE)
                in->mem_seg = in->seg_override;
        else
                in->mem_seg = ss ? X86_SEG_SS : X86_SEG_DS;
}

int x86_decode(const uint8_t *bytes, size_t avail, enum x86_cpu_mode mode, struct x86_insn *out)
{
        struct dec d = {.bytes = bytes, .avail = avail, .pos = 0};
        struct x86_insn *in = out;
        bool is64 = mode == X86_MODE_LONG64;
        uint16_t ent;
        uint8_t op;
        unsigned imm = 0;
        int r;

        memset(in, 0, sizeof(*in));
        in->seg_override = X86_SEG_NONE;
        in->mem_seg = X86_SEG_NONE;
        in->mem_base = X86_REG_NONE;
        in->mem_index = X86_REG_NONE;
        if ((unsigned)mode > X86_MODE_LONG64)
                return -KEEL_EINVAL;
        in->mode = (uint8_t)mode;

        /* Legacy prefixes and REX. A REX counts only immediately before the opcode. */
        for (;;) {
                r = need(&d, 1);
                if (r)
                        return r;
                op = bytes[d.pos];
                switch (op) {
                case 0x26:
                case 0x2e:
                case 0x36:
                case 0x3e:
                        in->seg_override =
                            (uint8_t)((op >> 3) & 3); /* 26 ES, 2E CS, 36 SS, 3E DS */
                        in->prefixes |= X86_PFX_SEG;
                        break;
                case 0x64:
                case 0x65:
                        in->seg_override = (uint8_t)(X86_SEG_FS + (op - 0x64));
                        in->prefixes |= X86_PFX_SEG;
                        break;
                case 0x66:
                        in->prefixes |= X86_PFX_OPSIZE;
                        break;
                case 0x67:
                        in->prefixes |= X86_PFX_ADSIZE;
                        break;
                case 0xf0:
                        in->prefixes |= X86_PFX_LOCK;
                        break;
                case 0xf2:
                        in->prefixes |= X86_PFX_REPNE;
                        in->last_rep = op;
                        break;
                case 0xf3:
                        in->prefixes |= X86_PFX_REP;
                        in->last_rep = op;
                        break;
                default:
                        if (is64 && (op & 0xf0) == 0x40) {
                                in->rex = op;
                                d.pos++;
                                continue;
                        }
                        goto prefixes_done;
                }
                in->rex = 0; /* a legacy prefix after REX cancels it */
                d.pos++;
        }
prefixes_done:
        in->prefix_len = (uint8_t)d.pos;
        if (in->rex) {
                in->rex_w = (in->rex & 8) != 0;
                in->rex_r = (in->rex & 4) != 0;
                in->rex_x = (in->rex & 2) != 0;
                in->rex_b = (in->rex & 1) != 0;
        }

        /* Address and operand size. */
        switch (mode) {
        case X86_MODE_REAL16:
        case X86_MODE_PROT16:
                in->addr_size = (in->prefixes & X86_PFX_ADSIZE) ? 4 : 2;
                in->op_size = (in->prefixes & X86_PFX_OPSIZE) ? 4 : 2;
                break;
        case X86_MODE_PROT32:
                in->addr_size = (in->prefixes & X86_PFX_ADSIZE) ? 2 : 4;
                in->op_size = (in->prefixes & X86_PFX_OPSIZE) ? 2 : 4;
                break;
        case X86_MODE_LONG64:
                in->addr_size = (in->prefixes & X86_PFX_ADSIZE) ? 4 : 8;
                in->op_size = in->rex_w ? 8 : (in->prefixes & X86_PFX_OPSIZE) ? 2 : 4;
                break;
        }

        op = bytes[d.pos];
        r = is_vex_like(&d, in, op);
        if (r < 0)
                return r;
        if (r) {
                r = decode_vex(&d, in, op);
                if (r)
                        return r;
                goto done;
        }

        in->opcode_off = (uint8_t)d.pos;
        if (op != 0x0f) {
                in->map = X86_MAP_PRIMARY;
                in->opcode = op;
                d.pos++;
                ent = one_byte[op];
        } else {
                r = need(&d, 2);
                if (r)
                        return r;
                op = bytes[d.pos + 1];
                if (op == 0x38 || op == 0x3a) {
                        r = need(&d, 3);
                        if (r)
                                return r;
                        in->map = op == 0x38 ? X86_MAP_0F38 : X86_MAP_0F3A;
                        in->escape_len = 2;
                        in->opcode = bytes[d.pos + 2];
                        in->opcode_off = (uint8_t)(d.pos + 2);
                        d.pos += 3;
                        /* Every 0F 38 / 0F 3A opcode has a ModRM; 0F 3A ones an imm8. */
                        ent = F_M | (in->map == X86_MAP_0F3A ? I_B : I_NONE);
                } else if (op == 0x0f) {
                        /* 3DNow!: 0F 0F ModRM [SIB] [disp] opcode-byte. */
                        in->map = X86_MAP_3DNOW;
                        in->escape_len = 2;
                        d.pos += 2;
                        ent = F_M | I_B;
                } else {
                        in->map = X86_MAP_0F;
                        in->escape_len = 1;
                        in->opcode = op;
                        in->opcode_off = (uint8_t)(d.pos + 1);
                        d.pos += 2;
                        ent = two_byte[op];
                }
        }

        if (ent & F_INV)
                return -KEEL_EINVAL;
        if (is64 && (ent & F_I64))
                return -KEEL_EINVAL;
        if (is64 && (ent & (F_D64 | F_F64)) && !in->rex_w)
                in->op_size = (in->prefixes & X86_PFX_OPSIZE) ? 2 : 8;

        if (ent & F_M) {
                r = decode_modrm(&d, in, (ent & F_REG) != 0);
                if (r)
                        return r;
                if ((ent & F_MEM) && in->mod == 3)
                        return -KEEL_EINVAL;
                if (!group_valid(in))
                        return -KEEL_EINVAL;
                if (is64 && in->map == X86_MAP_PRIMARY && in->opcode == 0xff &&
                    (in->reg == 2 || in->reg == 4 || in->reg == 6) && !in->rex_w)
                        in->op_size = (in->prefixes & X86_PFX_OPSIZE) ? 2 : 8;
                if (is64 && in->map == X86_MAP_PRIMARY && in->opcode == 0x8f && !in->rex_w)
                        in->op_size = (in->prefixes & X86_PFX_OPSIZE) ? 2 : 8;
        }
        if (ent & F_BYTE)
                in->op_size = 1;

        switch (ent & I_MASK) {
        case I_B:
                imm = 1;
                break;
        case I_W:
                imm = 2;
                break;
        case I_Z:
                imm = in->op_size == 2 ? 2 : 4;
                break;
        case I_V:
                imm = in->op_size;
                break;
        case I_ENTER:
                r = take_imm(&d, in, 2);
                if (r)
                        return r;
                r = take_imm2(&d, in, 1);
                if (r)
                        return r;
                break;
        case I_AP:
                r = take_imm(&d, in, in->op_size == 2 ? 2 : 4);
                if (r)
                        return r;
                r = take_imm2(&d, in, 2);
                if (r)
                        return r;
                break;
        case I_MOFFS:
                r = need(&d, in->addr_size);
                if (r)
                        return r;
                in->has_mem = true;
                in->mem_scale = 1;
                in->disp_off = (uint8_t)d.pos;
                in->disp_size = in->addr_size;
                in->disp = sext(take(&d, in->addr_size), in->addr_size);
                break;
        case I_GRP3:
                if (in->reg < 2)
                        imm = (ent & F_BYTE) ? 1 : in->op_size == 2 ? 2 : 4;
                break;
        case I_SSE4A:
                if (in->last_rep == 0xf3)
                        return -KEEL_EINVAL;
                if (in->last_rep == 0xf2 || (in->prefixes & X86_PFX_OPSIZE)) {
                        r = take_imm(&d, in, 1);
                        if (r)
                                return r;
                        r = take_imm2(&d, in, 1);
                        if (r)
                                return r;
                }
                break;
        }
        r = take_imm(&d, in, imm);
        if (r)
                return r;
        if (in->map == X86_MAP_3DNOW) {
                in->opcode = (uint8_t)in->imm;
                in->opcode_off = in->imm_off;
        }

        if ((in->prefixes & X86_PFX_LOCK) && !lockable(in))
                return -KEEL_EINVAL;
done:
        set_mem_seg(in);
        in->len = (uint8_t)d.pos;
        return 0;
}

enum x86_insn_id x86_insn_identify(const struct x86_insn *in)
{
        if (in->encoding != X86_ENC_LEGACY)
                return X86_INSN_OTHER;
        if (in->map == X86_MAP_PRIMARY) {
                switch (in->opcode) {
                case 0xf4:
                        return X86_INSN_HLT;
                case 0x90:
                        return (in->last_rep == 0xf3 && !in->rex_b) ? X86_INSN_PAUSE
                                                                    : X86_INSN_OTHER;
                case 0xe4:
                case 0xe5:
                case 0xec:
                case 0xed:
                        return X86_INSN_IN;
                case 0xe6:
                case 0xe7:
                case 0xee:
                case 0xef:
                        return X86_INSN_OUT;
                case 0x6c:
                case 0x6d:
                        return X86_INSN_INS;
                case 0x6e:
                case 0x6f:
                        return X86_INSN_OUTS;
                case 0xcc:
                        return X86_INSN_INT3;
                case 0xcd:
                        return X86_INSN_INTN;
                case 0xf1:
                        return X86_INSN_ICEBP;
                }
                return X86_INSN_OTHER;
        }
        if (in->map != X86_MAP_0F)
                return X86_INSN_OTHER;
        switch (in->opcode) {
        case 0xa2:
                return X86_INSN_CPUID;
        case 0x30:
                return X86_INSN_WRMSR;
        case 0x31:
                return X86_INSN_RDTSC;
        case 0x32:
                return X86_INSN_RDMSR;
        case 0x33:
                return X86_INSN_RDPMC;
        case 0x08:
                return X86_INSN_INVD;
        case 0x09:
                return X86_INSN_WBINVD;
        case 0x06:
                return X86_INSN_CLTS;
        case 0x20:
                return X86_INSN_MOV_FROM_CR;
        case 0x22:
                return X86_INSN_MOV_TO_CR;
        case 0x21:
                return X86_INSN_MOV_FROM_DR;
        case 0x23:
                return X86_INSN_MOV_TO_DR;
        case 0x01:
                break;
        default:
                return X86_INSN_OTHER;
        }
        /* 0F 01: memory forms by reg, register forms by the whole ModRM byte. */
        if (in->prefixes & (X86_PFX_OPSIZE | X86_PFX_REPNE | X86_PFX_REP))
                return X86_INSN_OTHER;
        if (in->mod != 3) {
                switch (in->reg) {
                case 4:
                        return X86_INSN_SMSW;
                case 6:
                        return X86_INSN_LMSW;
                case 7:
                        return X86_INSN_INVLPG;
                }
                return X86_INSN_OTHER;
        }
        switch (in->modrm) {
        case 0xc1:
                return X86_INSN_VMCALL;
        case 0xc8:
        case 0xfa:
                return X86_INSN_MONITOR;
        case 0xc9:
        case 0xfb:
                return X86_INSN_MWAIT;
        case 0xd1:
                return X86_INSN_XSETBV;
        case 0xd8:
                return X86_INSN_VMRUN;
        case 0xd9:
                return X86_INSN_VMMCALL;
        case 0xda:
                return X86_INSN_VMLOAD;
        case 0xdb:
                return X86_INSN_VMSAVE;
        case 0xdc:
                return X86_INSN_STGI;
        case 0xdd:
                return X86_INSN_CLGI;
        case 0xde:
                return X86_INSN_SKINIT;
        case 0xdf:
                return X86_INSN_INVLPGA;
        case 0xf9:
                return X86_INSN_RDTSCP;
        }
        if (in->reg == 4)
                return X86_INSN_SMSW;
        if (in->reg == 6)
                return X86_INSN_LMSW;
        return X86_INSN_OTHER;
}
