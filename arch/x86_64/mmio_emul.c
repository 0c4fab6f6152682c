/*
 * x86 MMIO instruction emulation (contract in arch/mmio_emul.h). The instruction was decoded
 * by x86_decode from guest memory, so every field is guest-controlled: only the listed
 * legacy opcodes with a memory operand are accepted, everything else is -KEEL_ENOTSUP.
 */
#include <string.h>

#include <arch/mmio_emul.h>
#include <keel/errno.h>

enum alu_op {
        ALU_ADD = 0,
        ALU_OR = 1,
        ALU_ADC = 2,
        ALU_SBB = 3,
        ALU_AND = 4,
        ALU_SUB = 5,
        ALU_XOR = 6,
        ALU_CMP = 7,
        ALU_TEST = 8,
        ALU_INC = 9,  /* a + 1, CF kept */
        ALU_DEC = 10, /* a - 1, CF kept */
        ALU_NEG = 11, /* 0 - a */
        ALU_NOT = 12, /* ~a, no flags */
};

/* What the instruction does with its memory operand. */
enum kind {
        K_STORE_REG, /* mem <- reg */
        K_STORE_IMM, /* mem <- imm */
        K_STORE_MSW, /* mem16 <- CR0[15:0] (SMSW) */
        K_LOAD,      /* reg <- mem (same size) */
        K_LOAD_ZX,   /* reg <- zero-extended mem of src_size */
        K_LOAD_SX,   /* reg <- sign-extended mem of src_size */
        K_ALU_MEM,   /* mem <- mem op reg/imm (CMP/TEST: flags only) */
        K_ALU_REG,   /* reg <- reg op mem (CMP: flags only) */
        K_UNARY,     /* mem <- op mem (INC DEC NEG NOT) */
        K_XCHG,      /* mem <-> reg */
        K_XADD,      /* mem <- mem + reg, reg <- old mem */
        K_CMPXCHG,   /* rAX == mem ? mem <- reg : rAX <- mem (and mem written back) */
        K_BT,        /* CF <- bit of mem; BTS BTR BTC then write it set, clear, flipped */
        K_SCAN,      /* reg <- index of mem's lowest (BSF) or highest (BSR: alt) set bit */
        K_IMUL,      /* reg <- reg (0F AF) or imm (69 6B) * mem, signed, truncated */
        K_MUL,       /* rDX:rAX (bytes: AX) <- rAX * mem; unsigned (F6/F7 /4), signed (/5: alt) */
        K_DIV,       /* rAX, rDX (bytes: AL, AH) <- rDX:rAX (AX) / mem; DIV (/6), IDIV (/7: alt) */
        K_LOAD_SYS,  /* LLDT LTR: regs->sys_sel <- mem16, the caller loads it */
        K_SHXD,      /* mem <- mem:reg shifted left (SHLD), right (SHRD: alt) by imm8 or CL */
        K_CMOV,      /* reg <- mem if condition `alt` (0F 40+cc); the read is made either way */
        K_VLOAD,     /* MMX/XMM register (regs->vec) <- msize bytes of mem, zero-extended */
        K_VSTORE,    /* mem <- the register's low msize bytes */
};

/* Which bit test (K_BT): the low two bits of 0F A3/AB/B3/BB >> 3 and of 0F BA /4../7. */
enum bt_op {
        BT_TEST = 0,
        BT_SET = 1,
        BT_RESET = 2,
        BT_COMPLEMENT = 3,
};

struct op {
        enum kind kind;
        enum alu_op alu;
        enum bt_op bt;
        uint8_t alt;    /* K_SCAN K_MUL K_SHXD: the second form; K_CMOV: the condition */
        int reg;        /* register operand, or X86_REG_NONE for an immediate */
        unsigned size;  /* operand size (destination size for loads) */
        unsigned msize; /* memory access size */
};

static uint64_t size_mask(unsigned size)
{
        return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

static uint64_t sext(uint64_t v, unsigned size)
{
        switch (size) {
        case 1:
                return (uint64_t)(int64_t)(int8_t)v;
        case 2:
                return (uint64_t)(int64_t)(int16_t)v;
        case 4:
                return (uint64_t)(int64_t)(int32_t)v;
        default:
                return v;
        }
}

/* A byte register 4..7 is AH CH DH BH when the instruction has no REX prefix. */
static bool high_byte(const struct x86_insn *in, int reg, unsigned size)
{
        return size == 1 && !in->rex && reg >= 4 && reg <= 7;
}

static uint64_t reg_get(const struct x86_insn *in, const struct x86_emul_regs *r, int reg,
                        unsigned size)
{
        if (high_byte(in, reg, size))
                return (r->gpr[reg - 4] >> 8) & 0xff;
        return r->gpr[reg] & size_mask(size);
}

static void reg_set(const struct x86_insn *in, struct x86_emul_regs *r, int reg, unsigned size,
                    uint64_t v)
{
        if (high_byte(in, reg, size)) {
                r->gpr[reg - 4] = (r->gpr[reg - 4] & ~0xff00ull) | ((v & 0xff) << 8);
                return;
        }
        switch (size) {
        case 1:
        case 2:
                r->gpr[reg] = (r->gpr[reg] & ~size_mask(size)) | (v & size_mask(size));
                break;
        case 4:
                r->gpr[reg] = v & 0xffffffffull; /* 32-bit writes zero-extend */
                break;
        default:
                r->gpr[reg] = v;
                break;
        }
}

static bool parity_even(uint64_t v)
{
        uint8_t b = (uint8_t)v;

        b ^= b >> 4;
        b ^= b >> 2;
        b ^= b >> 1;
        return !(b & 1);
}

/*
 * Computes a op b on `size` bytes; *flags gets the new arithmetic flags as the CPU sets them.
 * CF of *flags is the carry (borrow) in of ADC (SBB); INC and DEC keep it; NOT changes no
 * flag. AND, OR, XOR and TEST clear AF, which the SDM leaves undefined, as AMD's and Intel's
 * CPUs, QEMU and Bochs all do (the host tests compare with the CPU they run on).
 */
static uint64_t alu(enum alu_op op, uint64_t a, uint64_t b, unsigned size, uint64_t *flags)
{
        uint64_t m = size_mask(size), sign = 1ull << (8 * size - 1), res, f = 0;
        uint64_t cin = *flags & X86_RFLAGS_CF;

        a &= m;
        b &= m;
        switch (op) {
        case ALU_INC:
        case ALU_ADD:
        case ALU_ADC:
                if (op == ALU_INC)
                        b = 1;
                if (op != ALU_ADC)
                        cin = 0;
                res = (a + b + cin) & m;
                if (res < a || (cin && res == a))
                        f |= X86_RFLAGS_CF;
                if ((a ^ res) & (b ^ res) & sign)
                        f |= X86_RFLAGS_OF;
                if ((a ^ b ^ res) & 0x10)
                        f |= X86_RFLAGS_AF;
                break;
        case ALU_NEG:
        case ALU_DEC:
        case ALU_SUB:
        case ALU_SBB:
        case ALU_CMP:
                if (op == ALU_NEG) {
                        b = a;
                        a = 0;
                }
                if (op == ALU_DEC)
                        b = 1;
                if (op != ALU_SBB)
                        cin = 0;
                res = (a - b - cin) & m;
                if (a < b || (cin && a == b))
                        f |= X86_RFLAGS_CF;
                if ((a ^ b) & (a ^ res) & sign)
                        f |= X86_RFLAGS_OF;
                if ((a ^ b ^ res) & 0x10)
                        f |= X86_RFLAGS_AF;
                break;
        case ALU_NOT:
                return ~a & m;
        case ALU_OR:
                res = a | b;
                break;
        case ALU_XOR:
                res = a ^ b;
                break;
        default: /* AND, TEST */
                res = a & b;
                break;
        }
        if (op == ALU_INC || op == ALU_DEC)
                f = (f & ~X86_RFLAGS_CF) | (*flags & X86_RFLAGS_CF);
        if (res == 0)
                f |= X86_RFLAGS_ZF;
        if (res & sign)
                f |= X86_RFLAGS_SF;
        if (parity_even(res))
                f |= X86_RFLAGS_PF;
        *flags = (*flags & ~X86_RFLAGS_ARITH) | f;
        return res;
}

/* Does the instruction write its memory operand (false: it only reads it)? */
static bool writes_memory(const struct op *o)
{
        switch (o->kind) {
        case K_ALU_MEM:
                return o->alu != ALU_CMP && o->alu != ALU_TEST;
        case K_BT:
                return o->bt != BT_TEST;
        case K_STORE_REG:
        case K_STORE_IMM:
        case K_STORE_MSW:
        case K_UNARY:
        case K_XCHG:
        case K_XADD:
        case K_CMPXCHG:
        case K_SHXD:
        case K_VSTORE:
                return true;
        default:
                return false;
        }
}

/*
 * SSE and MMX moves between a register and memory; the mandatory prefix (the last of F2/F3,
 * else 66) picks the form. o->reg is XMM n (REX.R counts) or 16 + MMX n (it does not).
 *   0F 10/11 MOVUPS (66: MOVUPD, F3: MOVSS, F2: MOVSD)   0F 28/29 MOVAPS (66: MOVAPD)
 *   0F 6E/7E MOVD/MOVQ mm (66: xmm), 64-bit with REX.W  F3 0F 7E MOVQ xmm <- m64
 *   0F 6F/7F MOVQ mm (66: MOVDQA, F3: MOVDQU)            66 0F D6 MOVQ m64 <- xmm
 */
static bool classify_vec(const struct x86_insn *in, struct op *o)
{
        unsigned pfx = in->last_rep ? in->last_rep : (in->prefixes & X86_PFX_OPSIZE) ? 0x66 : 0;
        uint8_t opc = in->opcode;
        bool mmx = pfx == 0, store = opc & 1;
        unsigned msize = 16;

        switch (opc) {
        case 0x10:
        case 0x11:
                mmx = false;
                msize = pfx == 0xf3 ? 4 : pfx == 0xf2 ? 8 : 16;
                break;
        case 0x28:
        case 0x29:
                mmx = false;
                if (pfx > 0x66)
                        return false;
                break;
        case 0x6e:
        case 0x7e:
                store = opc == 0x7e && pfx != 0xf3;
                msize = pfx == 0xf3 ? 8 : in->rex_w ? 8 : 4;
                if (pfx == 0xf2 || (pfx == 0xf3 && opc == 0x6e))
                        return false;
                break;
        case 0x6f:
        case 0x7f:
                store = opc == 0x7f;
                msize = mmx ? 8 : 16;
                if (pfx == 0xf2)
                        return false;
                break;
        case 0xd6:
                msize = 8;
                store = true;
                if (pfx != 0x66)
                        return false;
                break;
        default:
                return false;
        }
        o->kind = store ? K_VSTORE : K_VLOAD;
        o->size = 8;
        o->msize = msize;
        o->reg = mmx ? 16 + in->reg : in->modrm_reg;
        return true;
}

/* Classifies an instruction of the 0F map; false for anything not emulated. */
static bool classify_0f(const struct x86_insn *in, struct op *o)
{
        uint8_t opc = in->opcode;

        switch (opc) {
        case 0x00: /* grp6: /0 SLDT /1 STR Ew (store), /2 LLDT /3 LTR Ew (load): 16 bits */
                if (in->reg > 3 || in->mode == X86_MODE_REAL16)
                        return false; /* VERR VERW; real and virtual-8086 mode: #UD first */
                o->kind = in->reg < 2 ? K_STORE_MSW : K_LOAD_SYS;
                o->size = o->msize = 2;
                o->reg = X86_REG_NONE;
                return true;
        case 0x01: /* grp7: /4 SMSW Ew (a word to memory whatever the operand size) */
                if (in->reg != 4)
                        return false;
                o->kind = K_STORE_MSW;
                o->size = o->msize = 2;
                o->reg = X86_REG_NONE;
                return true;
        case 0xb6: /* MOVZX Gv, Eb */
        case 0xb7: /* MOVZX Gv, Ew */
        case 0xbe: /* MOVSX Gv, Eb */
        case 0xbf: /* MOVSX Gv, Ew */
                o->kind = (opc & 8) ? K_LOAD_SX : K_LOAD_ZX;
                o->msize = (opc & 1) ? 2 : 1;
                return true;
        case 0xa3: /* BT Ev, Gv */
        case 0xab: /* BTS Ev, Gv */
        case 0xb3: /* BTR Ev, Gv */
        case 0xbb: /* BTC Ev, Gv */
                o->kind = K_BT;
                o->bt = (enum bt_op)((opc >> 3) & 3);
                return true;
        case 0xba: /* grp8 Ev, Ib: /4 BT /5 BTS /6 BTR /7 BTC (/0../3 do not decode) */
                if (in->reg < 4)
                        return false;
                o->kind = K_BT;
                o->bt = (enum bt_op)(in->reg & 3);
                o->reg = X86_REG_NONE;
                return true;
        case 0xb0: /* CMPXCHG Eb, Gb */
        case 0xb1: /* CMPXCHG Ev, Gv */
                o->kind = K_CMPXCHG;
                return true;
        case 0xc0: /* XADD Eb, Gb */
        case 0xc1: /* XADD Ev, Gv */
                o->kind = K_XADD;
                return true;
        case 0xa4: /* SHLD Ev, Gv, Ib */
        case 0xa5: /* SHLD Ev, Gv, CL */
        case 0xac: /* SHRD Ev, Gv, Ib */
        case 0xad: /* SHRD Ev, Gv, CL */
                o->kind = K_SHXD;
                o->alt = opc;
                return true;
        case 0xaf: /* IMUL Gv, Ev */
                o->kind = K_IMUL;
                return true;
        case 0xbc: /* BSF Gv, Ev */
        case 0xbd: /* BSR Gv, Ev */
                if (in->last_rep == 0xf3)
                        return false; /* TZCNT, LZCNT (or BSF, BSR on CPUs without them) */
                o->kind = K_SCAN;
                o->alt = opc & 1;
                return true;
        default:
                if ((opc & 0xf0) == 0x40) { /* CMOVcc Gv, Ev */
                        o->kind = K_CMOV;
                        o->alt = opc & 15;
                        return true;
                }
                return classify_vec(in, o);
        }
}

/* Classifies the instruction; false for anything not emulated. */
static bool classify(const struct x86_insn *in, struct op *o)
{
        unsigned osz = in->op_size;
        uint8_t opc = in->opcode;

        o->reg = in->modrm_reg;
        o->size = osz;
        o->msize = osz;
        o->alu = ALU_ADD;
        o->bt = BT_TEST;
        o->alt = 0;

        if (in->map == X86_MAP_0F)
                return classify_0f(in, o);
        if (in->map != X86_MAP_PRIMARY)
                return false;

        if (opc < 0x40 && (opc & 7) < 4) { /* ALU Eb,Gb Ev,Gv Gb,Eb Gv,Ev */
                o->alu = (enum alu_op)(opc >> 3);
                o->kind = (opc & 2) ? K_ALU_REG : K_ALU_MEM;
                return true;
        }
        switch (opc) {
        case 0x69: /* IMUL Gv, Ev, Iz */
        case 0x6b: /* IMUL Gv, Ev, Ib (sign-extended) */
                o->kind = K_IMUL;
                o->alt = 1;
                return true;
        case 0x63: /* MOVSXD Gv, Ed (64-bit mode; ARPL elsewhere) */
                if (in->mode != X86_MODE_LONG64)
                        return false;
                o->kind = osz == 8 ? K_LOAD_SX : K_LOAD;
                o->msize = osz == 8 ? 4 : osz;
                return true;
        case 0x80: /* grp1 Eb, Ib */
        case 0x81: /* grp1 Ev, Iz */
        case 0x82: /* grp1 Eb, Ib (alias of 80; not in 64-bit mode, where it does not decode) */
        case 0x83: /* grp1 Ev, Ib (sign-extended) */
                o->alu = (enum alu_op)in->reg;
                o->kind = K_ALU_MEM;
                o->reg = X86_REG_NONE;
                return true;
        case 0x84: /* TEST Eb, Gb */
        case 0x85: /* TEST Ev, Gv */
                o->alu = ALU_TEST;
                o->kind = K_ALU_MEM;
                return true;
        case 0x86: /* XCHG Eb, Gb */
        case 0x87: /* XCHG Ev, Gv */
                o->kind = K_XCHG;
                return true;
        case 0xf6: /* grp3 Eb */
        case 0xf7: /* grp3 Ev */
                switch (in->reg) {
                case 0: /* TEST E, I */
                case 1: /* TEST E, I (the undocumented alias the CPUs run alike) */
                        o->alu = ALU_TEST;
                        o->kind = K_ALU_MEM;
                        o->reg = X86_REG_NONE;
                        return true;
                case 2: /* NOT */
                case 3: /* NEG */
                        o->alu = in->reg == 2 ? ALU_NOT : ALU_NEG;
                        o->kind = K_UNARY;
                        o->reg = X86_REG_NONE;
                        return true;
                default: /* /4 MUL /5 IMUL /6 DIV /7 IDIV */
                        o->kind = in->reg < 6 ? K_MUL : K_DIV;
                        o->alt = in->reg & 1;
                        o->reg = 0;
                        return true;
                }
        case 0xfe: /* grp4 Eb: /0 INC /1 DEC */
        case 0xff: /* grp5 Ev: /0 INC /1 DEC (the rest: calls, jumps, push) */
                if (in->reg > 1)
                        return false;
                o->alu = in->reg == 0 ? ALU_INC : ALU_DEC;
                o->kind = K_UNARY;
                o->reg = X86_REG_NONE;
                return true;
        case 0x88: /* MOV Eb, Gb */
        case 0x89: /* MOV Ev, Gv */
                o->kind = K_STORE_REG;
                return true;
        case 0x8c: /* MOV Ew, Sreg: regs->sys_sel, 16 bits to memory */
        case 0x8e: /* MOV Sreg, Ew: the caller loads regs->sys_sel (not CS: #UD) */
                if (in->reg > 5 || (opc == 0x8e && in->reg == X86_SEG_CS))
                        return false;
                o->kind = opc == 0x8c ? K_STORE_MSW : K_LOAD_SYS;
                o->size = o->msize = 2;
                o->reg = X86_REG_NONE;
                return true;
        case 0x8a: /* MOV Gb, Eb */
        case 0x8b: /* MOV Gv, Ev */
                o->kind = K_LOAD;
                return true;
        case 0xa0: /* MOV AL, moffs */
        case 0xa1: /* MOV rAX, moffs */
                o->kind = K_LOAD;
                o->reg = 0;
                return true;
        case 0xa2: /* MOV moffs, AL */
        case 0xa3: /* MOV moffs, rAX */
                o->kind = K_STORE_REG;
                o->reg = 0;
                return true;
        case 0xc6: /* MOV Eb, Ib */
        case 0xc7: /* MOV Ev, Iz */
                if (in->reg != 0)
                        return false;
                o->kind = K_STORE_IMM;
                o->reg = X86_REG_NONE;
                return true;
        default:
                return false;
        }
}

static uint64_t next_rip(const struct x86_insn *in, uint64_t rip)
{
        rip += in->len;
        switch (in->mode) {
        case X86_MODE_LONG64:
                return rip;
        case X86_MODE_PROT32:
                return rip & 0xffffffffull;
        default:
                return rip & 0xffffull;
        }
}

/* classify() plus the checks x86_emulate_mmio makes before any access. A LOCK prefix (which
 * the decoder accepts only on the read-modify-write forms) changes nothing: the device sees
 * one read and one write, as it would from the CPU. */
static bool emulatable(const struct x86_insn *insn, struct op *o)
{
        if (insn->encoding != X86_ENC_LEGACY || !insn->has_mem)
                return false;
        if (!classify(insn, o))
                return false;
        return (o->size == 1 || o->size == 2 || o->size == 4 || o->size == 8) &&
               (o->msize == 1 || o->msize == 2 || o->msize == 4 || o->msize == 8 ||
                o->msize == 16) &&
               (o->reg == X86_REG_NONE || (o->reg >= 0 && o->reg <= 23));
}

/*
 * BT, BTS, BTR, BTC with a register bit offset address memory beyond the operand: the offset
 * is signed (of the operand size), and the operand accessed is the one `offset >> log2(bits)`
 * operands away (SDM vol. 2 "BT": the bit base plus the offset). With an immediate the offset
 * is taken modulo the operand's bits. *bit gets the bit number inside the accessed operand.
 */
static int64_t bt_displacement(const struct x86_insn *insn, const struct op *o,
                               const struct x86_emul_regs *regs, unsigned *bit)
{
        unsigned bits = 8 * o->size;
        int64_t off;

        if (o->reg == X86_REG_NONE) {
                *bit = (unsigned)(insn->imm & (bits - 1));
                return 0;
        }
        off = (int64_t)sext(regs->gpr[o->reg] & size_mask(o->size), o->size);
        *bit = (unsigned)((uint64_t)off & (bits - 1));
        /* Arithmetic shift (floor division by the operand's bits), then bytes. */
        return (off < 0 ? -(int64_t)((uint64_t)(-(off + 1)) / bits) - 1 : off / (int64_t)bits) *
               (int64_t)o->size;
}

/* The linear address of the memory operand (plus `extra` bytes to its effective address). */
static uint64_t operand_linear(const struct x86_insn *insn, const struct x86_emul_regs *regs,
                               const uint64_t seg_base[6], uint64_t extra)
{
        uint64_t ea = (uint64_t)insn->disp + extra, base = 0, linear;

        if (insn->mem_base >= 0 && insn->mem_base <= 15)
                ea += regs->gpr[insn->mem_base];
        if (insn->mem_index >= 0 && insn->mem_index <= 15)
                ea += regs->gpr[insn->mem_index] * insn->mem_scale;
        if (insn->rip_relative)
                ea += regs->rip + insn->len;
        if (insn->addr_size == 4)
                ea &= 0xffffffffull;
        else if (insn->addr_size == 2)
                ea &= 0xffffull;
        if (insn->mem_seg <= X86_SEG_GS &&
            (insn->mode != X86_MODE_LONG64 || insn->mem_seg == X86_SEG_FS ||
             insn->mem_seg == X86_SEG_GS))
                base = seg_base[insn->mem_seg];
        linear = base + ea;
        return insn->mode != X86_MODE_LONG64 ? linear & 0xffffffffull : linear;
}

int x86_mmio_operand(const struct x86_insn *insn, const struct x86_emul_regs *regs,
                     const uint64_t seg_base[6], uint64_t *linear, unsigned *size)
{
        struct op o;
        unsigned bit;

        if (!emulatable(insn, &o))
                return -KEEL_ENOTSUP;
        *linear =
            operand_linear(insn, regs, seg_base,
                           o.kind == K_BT ? (uint64_t)bt_displacement(insn, &o, regs, &bit) : 0);
        *size = o.msize;
        return 0;
}

/* The source operand of an ALU instruction: its register, or its immediate (sign-extended
 * from 8 bits for 83, else already of the operand's size). */
static uint64_t alu_source(const struct x86_insn *insn, const struct x86_emul_regs *regs,
                           const struct op *o)
{
        return o->reg == X86_REG_NONE ? (uint64_t)x86_insn_imm_sext(insn)
                                      : reg_get(insn, regs, o->reg, o->size);
}

/* Condition code cc (the low nibble of Jcc, SETcc, CMOVcc) on `f`. */
static bool condition(unsigned cc, uint64_t f)
{
        bool cf = f & X86_RFLAGS_CF, zf = f & X86_RFLAGS_ZF, sf = f & X86_RFLAGS_SF;
        bool of = f & X86_RFLAGS_OF, r;

        switch (cc >> 1) {
        case 0: /* O */
                r = of;
                break;
        case 1: /* B */
                r = cf;
                break;
        case 2: /* E */
                r = zf;
                break;
        case 3: /* BE */
                r = cf || zf;
                break;
        case 4: /* S */
                r = sf;
                break;
        case 5: /* P */
                r = f & X86_RFLAGS_PF;
                break;
        case 6: /* L */
                r = sf != of;
                break;
        default: /* LE */
                r = zf || sf != of;
                break;
        }
        return r != (cc & 1);
}

/*
 * a * b of `size` bytes, signed (IMUL) or not (MUL): the low half, *hi the high half. CF and
 * OF are set when the product does not fit the low half (SDM vol. 2 "MUL", "IMUL"); SF ZF AF
 * PF, which the SDM leaves undefined, are kept.
 */
static uint64_t mul(uint64_t a, uint64_t b, unsigned size, bool sign, uint64_t *hi, uint64_t *flags)
{
        uint64_t m = size_mask(size), lo;
        unsigned __int128 p;
        bool big;

        if (sign)
                p = (unsigned __int128)((__int128)(int64_t)sext(a, size) * (int64_t)sext(b, size));
        else
                p = (unsigned __int128)(a & m) * (b & m);
        lo = (uint64_t)p & m;
        *hi = (uint64_t)(p >> (8 * size)) & m;
        big = sign ? (__int128)p != (__int128)(int64_t)sext(lo, size) : *hi != 0;
        *flags =
            (*flags & ~(X86_RFLAGS_CF | X86_RFLAGS_OF)) | (big ? X86_RFLAGS_CF | X86_RFLAGS_OF : 0);
        return lo;
}

/*
 * DIV / IDIV (`sign`) of the dividend hi:lo (`size` bytes each; for sizes below 8 the caller
 * passes the whole 2*size-byte dividend in lo, hi 0) by v: *q, *r the quotient and remainder
 * (the remainder has the dividend's sign). False for a zero divisor or a quotient that does
 * not fit `size` bytes: the CPU's #DE (SDM vol. 2 "DIV", "IDIV").
 */
static bool divide(uint64_t hi, uint64_t lo, uint64_t v, unsigned size, bool sign, uint64_t *q,
                   uint64_t *r)
{
        unsigned bits = 8 * size;
        uint64_t m = size_mask(size), top = 1ull << (bits - 1);
        uint64_t dm = size == 8 ? ~0ull : size_mask(2 * size); /* the dividend's bits in lo */
        bool na = false, nv = false;

        v &= m;
        if (sign) {
                na = size == 8 ? hi >> 63 : (lo >> (2 * bits - 1)) & 1;
                nv = (v & top) != 0;
                if (na) { /* magnitude of the 2*size-byte dividend */
                        hi = ~hi + (lo == 0);
                        lo = -lo & dm;
                }
                if (nv)
                        v = -v & m;
        }
        if (v == 0)
                return false;
        if (size < 8) {
                *q = lo / v;
                *r = lo % v;
        } else {
                if (hi >= v)
                        return false;               /* the quotient needs more than 64 bits */
                for (unsigned i = 0; i < 64; i++) { /* restoring division, one bit a step */
                        bool carry = hi >> 63;

                        hi = hi << 1 | lo >> 63;
                        lo <<= 1;
                        if (carry || hi >= v) {
                                hi -= v;
                                lo |= 1;
                        }
                }
                *q = lo;
                *r = hi;
        }
        if (*q > (sign ? top - !(na != nv) : m))
                return false;
        *q = (na != nv ? -*q : *q) & m;
        *r = (na ? -*r : *r) & m;
        return true;
}

/*
 * SHLD (0F A4/A5) or SHRD (0F AC/AD) of d with bits of s shifted in, by count (1..31, 1..63
 * for 64 bits: the caller masked it and handles 0, which changes nothing). A 16-bit count
 * above 16 shifts through d:s:d, as Intel's CPUs, QEMU and Bochs do (the SDM: undefined).
 * CF is the last bit shifted out, OF whether the sign changed (the SDM defines it for a count
 * of 1), SF ZF PF from the result, AF kept.
 */
static uint64_t shxd(uint8_t opc, uint64_t d, uint64_t s, unsigned count, unsigned size,
                     uint64_t *flags)
{
        unsigned bits = 8 * size;
        uint64_t m = size_mask(size), res, f = 0;
        unsigned __int128 x;

        d &= m;
        s &= m;
        if (opc < 0xa8) { /* left: d at the top, then s, then (16-bit) d again */
                x = ((unsigned __int128)d << 64) | ((unsigned __int128)s << (64 - bits)) |
                    (bits == 16 ? (unsigned __int128)d << 32 : 0);
                res = (uint64_t)(x >> (64 - count)) & m;
                f = (uint64_t)(x >> (64 + bits - count)) & 1;
        } else { /* right: d at the bottom, then s, then (16-bit) d again */
                x = d | ((unsigned __int128)s << bits) |
                    (bits == 16 ? (unsigned __int128)d << 32 : 0);
                res = (uint64_t)(x >> count) & m;
                f = (uint64_t)(x >> (count - 1)) & 1;
        }
        if ((res ^ d) >> (bits - 1) & 1)
                f |= X86_RFLAGS_OF;
        if (res == 0)
                f |= X86_RFLAGS_ZF;
        if (res >> (bits - 1) & 1)
                f |= X86_RFLAGS_SF;
        if (parity_even(res))
                f |= X86_RFLAGS_PF;
        *flags = (*flags & ~(X86_RFLAGS_ARITH & ~X86_RFLAGS_AF)) | f;
        return res;
}

/* A vector move (K_VLOAD, K_VSTORE): 16 bytes as two 8-byte accesses, low half first. */
static int emulate_vec(const struct x86_insn *insn, const struct op *o, struct x86_emul_regs *regs,
                       uint64_t gpa, x86_mmio_access_fn fn, void *ctx)
{
        bool write = o->kind == K_VSTORE;
        uint64_t v[2] = {0, 0};

        if (write)
                memcpy(v, regs->vec, sizeof(v));
        if (!fn(ctx, gpa, o->msize < 16 ? o->msize : 8, write, &v[0]) ||
            (o->msize == 16 && !fn(ctx, gpa + 8, 8, write, &v[1])))
                return -KEEL_EFAULT;
        if (!write) {
                if (o->msize < 16)
                        v[0] &= size_mask(o->msize);
                memcpy(regs->vec, v, sizeof(v)); /* loads zero the rest of the register */
        }
        regs->rip = next_rip(insn, regs->rip);
        return 0;
}

int x86_mmio_vreg(const struct x86_insn *insn, bool *load)
{
        struct op o;

        if (!emulatable(insn, &o) || (o.kind != K_VLOAD && o.kind != K_VSTORE))
                return -1;
        *load = o.kind == K_VLOAD;
        return o.reg;
}

int x86_emulate_mmio(const struct x86_insn *insn, struct x86_emul_regs *regs, uint64_t gpa,
                     x86_mmio_access_fn fn, void *ctx)
{
        struct op o;
        uint64_t val, res, flags, hi;
        unsigned bit;

        if (!emulatable(insn, &o))
                return -KEEL_ENOTSUP;
        if (o.kind == K_VLOAD || o.kind == K_VSTORE)
                return emulate_vec(insn, &o, regs, gpa, fn, ctx);

        val = 0;
        switch (o.kind) {
        case K_STORE_REG:
        case K_STORE_IMM:
        case K_STORE_MSW:
                break;
        default:
                if (!fn(ctx, gpa, o.msize, false, &val))
                        return -KEEL_EFAULT;
                val &= size_mask(o.msize);
                break;
        }
        flags = regs->rflags;
        switch (o.kind) {
        case K_STORE_REG:
                res = reg_get(insn, regs, o.reg, o.size);
                break;
        case K_STORE_IMM:
                res = (uint64_t)x86_insn_imm_sext(insn) & size_mask(o.size);
                break;
        case K_STORE_MSW: /* SMSW, or SLDT / STR (0F 00): the caller's selector */
                res = insn->opcode == 0x01 && insn->map == X86_MAP_0F ? regs->cr0 & 0xffff
                                                                      : regs->sys_sel;
                break;
        case K_LOAD_SYS:
                regs->sys_sel = (uint16_t)val;
                regs->rip = next_rip(insn, regs->rip);
                return X86_EMUL_LOAD_SYSSEG;
        case K_LOAD:
        case K_LOAD_ZX:
        case K_LOAD_SX:
                reg_set(insn, regs, o.reg, o.size, o.kind == K_LOAD_SX ? sext(val, o.msize) : val);
                regs->rip = next_rip(insn, regs->rip);
                return 0;
        case K_CMOV: /* a false condition still writes a 32-bit destination (zero-extends) */
                reg_set(insn, regs, o.reg, o.size,
                        condition(o.alt, flags) ? val : reg_get(insn, regs, o.reg, o.size));
                regs->rip = next_rip(insn, regs->rip);
                return 0;
        case K_SCAN: /* a zero source sets ZF and leaves the destination as it was, a 32-bit
                      * one zero-extended as by Intel's CPUs and QEMU (AMD keeps all 64 bits;
                      * the SDM: undefined); CF OF SF AF PF, undefined, are kept */
                flags &= ~X86_RFLAGS_ZF;
                if (val == 0)
                        flags |= X86_RFLAGS_ZF;
                reg_set(insn, regs, o.reg, o.size,
                        val == 0 ? reg_get(insn, regs, o.reg, o.size)
                        : o.alt  ? 63u - (unsigned)__builtin_clzll(val)
                                 : (unsigned)__builtin_ctzll(val));
                regs->rflags = flags;
                regs->rip = next_rip(insn, regs->rip);
                return 0;
        case K_IMUL:
                res = mul(o.alt ? (uint64_t)x86_insn_imm_sext(insn)
                                : reg_get(insn, regs, o.reg, o.size),
                          val, o.size, true, &hi, &flags);
                reg_set(insn, regs, o.reg, o.size, res);
                regs->rflags = flags;
                regs->rip = next_rip(insn, regs->rip);
                return 0;
        case K_MUL: {
                uint64_t lo = mul(reg_get(insn, regs, 0, o.size), val, o.size, o.alt, &hi, &flags);

                if (o.size == 1) {
                        reg_set(insn, regs, 0, 2, hi << 8 | lo); /* AX */
                } else {
                        reg_set(insn, regs, 0, o.size, lo);
                        reg_set(insn, regs, 2, o.size, hi);
                }
                regs->rflags = flags;
                regs->rip = next_rip(insn, regs->rip);
                return 0;
        }
        case K_DIV: { /* flags: undefined, kept */
                uint64_t q, rem, ax = regs->gpr[0];

                if (!divide(o.size == 8 ? regs->gpr[2] & size_mask(o.size) : 0,
                            o.size == 1   ? ax & 0xffff
                            : o.size == 8 ? ax
                                          : (ax & size_mask(o.size)) |
                                                (regs->gpr[2] & size_mask(o.size)) << (8 * o.size),
                            val, o.size, o.alt, &q, &rem))
                        return X86_EMUL_DIVIDE_ERROR;
                if (o.size == 1) {
                        reg_set(insn, regs, 0, 2, rem << 8 | q); /* AX = AH:AL */
                } else {
                        reg_set(insn, regs, 0, o.size, q);
                        reg_set(insn, regs, 2, o.size, rem);
                }
                regs->rip = next_rip(insn, regs->rip);
                return 0;
        }
        case K_SHXD: {
                unsigned count =
                    (unsigned)(o.alt & 1 ? regs->gpr[1] : insn->imm) & (o.size == 8 ? 63 : 31);

                if (count == 0) { /* nothing changes: no write either */
                        regs->rip = next_rip(insn, regs->rip);
                        return 0;
                }
                res = shxd(o.alt, val, reg_get(insn, regs, o.reg, o.size), count, o.size, &flags);
                break;
        }
        case K_ALU_MEM:
        case K_UNARY:
                res = alu(o.alu, val, o.kind == K_UNARY ? 0 : alu_source(insn, regs, &o), o.size,
                          &flags);
                break;
        case K_ALU_REG:
                res = alu(o.alu, reg_get(insn, regs, o.reg, o.size), val, o.size, &flags);
                if (o.alu != ALU_CMP)
                        reg_set(insn, regs, o.reg, o.size, res);
                regs->rflags = flags;
                regs->rip = next_rip(insn, regs->rip);
                return 0;
        case K_XCHG:
        case K_XADD:
                res = reg_get(insn, regs, o.reg, o.size);
                if (o.kind == K_XADD)
                        res = alu(ALU_ADD, val, res, o.size, &flags);
                break;
        case K_CMPXCHG:
                /* Flags of rAX - mem. Equal: mem <- reg. Not: rAX <- mem, and the CPU writes
                 * the old value back (SDM vol. 2 "CMPXCHG": a write cycle either way). */
                alu(ALU_CMP, reg_get(insn, regs, 0, o.size), val, o.size, &flags);
                res = (flags & X86_RFLAGS_ZF) ? reg_get(insn, regs, o.reg, o.size) : val;
                break;
        case K_BT:
                bt_displacement(insn, &o, regs, &bit);
                flags = (flags & ~X86_RFLAGS_CF) | ((val >> bit) & 1);
                res = o.bt == BT_SET          ? val | (1ull << bit)
                      : o.bt == BT_RESET      ? val & ~(1ull << bit)
                      : o.bt == BT_COMPLEMENT ? val ^ (1ull << bit)
                                              : val;
                break;
        default:
                return -KEEL_ENOTSUP; /* not reached: classify() knows no other kind */
        }
        if (writes_memory(&o) && !fn(ctx, gpa, o.msize, true, &res))
                return -KEEL_EFAULT;
        /* Registers only once every access succeeded. */
        switch (o.kind) {
        case K_XCHG:
        case K_XADD:
                reg_set(insn, regs, o.reg, o.size, val);
                break;
        case K_CMPXCHG:
                if (!(flags & X86_RFLAGS_ZF))
                        reg_set(insn, regs, 0, o.size, val);
                break;
        default:
                break;
        }
        regs->rflags = flags;
        regs->rip = next_rip(insn, regs->rip);
        return 0;
}

static bool canonical(uint64_t a)
{
        return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}

uint32_t x86_seg_desc(enum x86_seg_load kind, bool long_mode, unsigned cpl, uint16_t sel,
                      const uint64_t desc[2], struct x86_sysseg *out)
{
        uint64_t lo = desc[0];
        unsigned access = (lo >> 40) & 0xff, type = access & 0x1f; /* S and the type */
        unsigned dpl = (access >> 5) & 3, rpl = sel & 3;
        bool code = type & 8, sys = kind == SEG_LOAD_TR || kind == SEG_LOAD_LDTR;
        uint32_t gp = X86_FAULT(13, sel & 0xfffc), np = X86_FAULT(11, sel & 0xfffc);

        switch (kind) {
        case SEG_LOAD_TR: /* an available TSS: 64/32-bit, or 16-bit outside long mode */
                if (type != 9 && (type != 1 || long_mode))
                        return gp;
                break;
        case SEG_LOAD_LDTR:
                if (type != 2)
                        return gp;
                break;
        case SEG_LOAD_SS: /* a writable data segment, RPL = DPL = CPL; absent: #SS */
                if (rpl != cpl || (type & 0x1a) != 0x12 || dpl != cpl)
                        return gp;
                np = X86_FAULT(12, sel & 0xfffc);
                break;
        case SEG_LOAD_DATA: /* data or readable code; DPL >= CPL, RPL unless conforming code */
                if (!(type & 0x10) || (code && !(type & 2)) ||
                    ((!code || !(type & 4)) && (rpl > dpl || cpl > dpl)))
                        return gp;
                break;
        default: /* SEG_LOAD_CS: a code segment (a gate is not emulated: 1) */
                if ((type & 0x18) != 0x18)
                        return (type & 0x10) ? gp : 1;
                if ((type & 4) ? dpl > cpl : rpl > cpl || dpl != cpl)
                        return gp;
                if (long_mode && (lo >> 53 & 3) == 3)
                        return gp; /* L and D both set */
                sel = (uint16_t)((sel & ~3u) | cpl);
                break;
        }
        if (sys && long_mode && ((desc[1] >> 40) & 0x1f) != 0)
                return gp; /* the upper half's type must be 0 */
        if (!(access & 0x80))
                return np;
        out->sel = sel;
        /* A TSS becomes busy, a code or data segment accessed (the caller writes it back). */
        out->attr = (uint16_t)(access |
                               (kind == SEG_LOAD_TR ? 2
                                : sys               ? 0
                                                    : 1) |
                               ((lo >> 44) & 0xf00));
        out->limit = (uint32_t)((lo & 0xffff) | ((lo >> 32) & 0xf0000));
        if (lo & (1ull << 55)) /* G: 4 KiB units */
                out->limit = out->limit << 12 | 0xfff;
        out->base = ((lo >> 16) & 0xffffff) | ((lo >> 32) & 0xff000000ull);
        if (sys && long_mode) {
                out->base |= desc[1] << 32;
                if (!canonical(out->base))
                        return gp;
        }
        return 0;
}

/* ---- stack instructions and near branches (64-bit mode) -------------------------------- */

int x86_emulate_stack(const struct x86_insn *insn, struct x86_emul_regs *regs,
                      const uint64_t seg_base[6], x86_linear_access_fn fn, void *ctx)
{
        struct x86_emul_regs r = *regs;
        unsigned osz = insn->op_size, op = insn->opcode, sub = insn->reg;
        uint64_t v = 0, next = r.rip + insn->len, *rsp = &r.gpr[4];
        bool mem = insn->has_mem, push = false;
        int rc = 0;

        if (insn->mode != X86_MODE_LONG64 || insn->encoding != X86_ENC_LEGACY ||
            insn->map != X86_MAP_PRIMARY)
                return -KEEL_ENOTSUP;
        if ((op == 0xff && mem && (sub == 2 || sub == 4)) || op == 0xe8 || op == 0xc2 || op == 0xc3)
                osz = 8; /* near branches: 64-bit in 64-bit mode */
        if (osz != 2 && osz != 8)
                return -KEEL_ENOTSUP;
        r.rip = next;
        switch (op) {
        case 0x50 ... 0x57: /* PUSH r */
                v = reg_get(insn, &r, (op & 7) | (insn->rex_b ? 8 : 0), osz);
                push = true;
                break;
        case 0x68: /* PUSH imm (sign-extended) */
        case 0x6a:
                v = (uint64_t)x86_insn_imm_sext(insn);
                push = true;
                break;
        case 0xe8: /* CALL rel32 */
                v = next;
                r.rip = next + (uint64_t)x86_insn_imm_sext(insn);
                push = true;
                break;
        case 0xff: /* /2 CALL m, /4 JMP m, /6 PUSH m */
                if (!mem || (sub != 2 && sub != 4 && sub != 6))
                        return -KEEL_ENOTSUP;
                rc = fn(ctx, operand_linear(insn, regs, seg_base, 0), osz, false, &v);
                if (rc < 0)
                        return rc;
                v &= size_mask(osz);
                if (sub == 6) {
                        push = true;
                        break;
                }
                r.rip = v;
                v = next;
                push = sub == 2;
                break;
        case 0x58 ... 0x5f: /* POP r */
        case 0x8f:          /* /0 POP m */
        case 0xc2:          /* RET imm16 */
        case 0xc3:          /* RET */
        case 0xc9:          /* LEAVE: rSP <- rBP, POP rBP */
                if (op == 0x8f && (!mem || sub != 0))
                        return -KEEL_ENOTSUP;
                if (op == 0xc9)
                        *rsp = r.gpr[5];
                rc = fn(ctx, *rsp, osz, false, &v); /* SS has no base in 64-bit mode */
                if (rc < 0)
                        return rc;
                v &= size_mask(osz);
                *rsp += osz;
                if (op == 0x8f) /* an rSP base is the incremented one (SDM "POP") */
                        rc = fn(ctx,
                                operand_linear(insn, regs, seg_base, insn->mem_base == 4 ? osz : 0),
                                osz, true, &v);
                else if (op >= 0xc2 && op <= 0xc3)
                        r.rip = v, *rsp += op == 0xc2 ? insn->imm : 0;
                else
                        reg_set(insn, &r, op == 0xc9 ? 5 : (op & 7) | (insn->rex_b ? 8 : 0), osz,
                                v);
                break;
        case 0xc8: /* ENTER imm16, 0 (a nesting level other than 0 is not emulated) */
                if (insn->imm2 & 31)
                        return -KEEL_ENOTSUP;
                v = r.gpr[5];
                push = true;
                break;
        default:
                return -KEEL_ENOTSUP;
        }
        if (!canonical(r.rip))
                return X86_EMUL_GP; /* #GP(0) before anything is pushed (SDM "CALL", "RET") */
        if (push) {
                rc = fn(ctx, *rsp - osz, osz, true, &v);
                *rsp -= osz;
        }
        if (op == 0xc8) {
                reg_set(insn, &r, 5, osz, *rsp);
                *rsp -= insn->imm;
        }
        if (rc < 0)
                return rc;
        *regs = r;
        return 0;
}

int x86_far_pointer(const struct x86_insn *insn, const struct x86_emul_regs *regs,
                    const uint64_t seg_base[6], x86_linear_access_fn fn, void *ctx,
                    uint64_t *offset, uint16_t *sel)
{
        uint64_t at, v = 0;
        unsigned osz = insn->op_size;
        int rc;

        if (insn->encoding != X86_ENC_LEGACY || insn->map != X86_MAP_PRIMARY ||
            insn->opcode != 0xff || insn->reg != 5 || !insn->has_mem ||
            insn->mode == X86_MODE_REAL16 || (osz != 2 && osz != 4 && osz != 8))
                return -KEEL_ENOTSUP;
        at = operand_linear(insn, regs, seg_base, 0);
        rc = fn(ctx, at, osz, false, offset);
        if (rc >= 0)
                rc = fn(ctx, at + osz, 2, false, &v);
        if (rc < 0)
                return rc;
        *offset &= size_mask(osz);
        *sel = (uint16_t)v;
        return 0;
}

/* ---- string instructions ---------------------------------------------------------------- */

enum str_op {
        STR_MOVS,
        STR_CMPS,
        STR_STOS,
        STR_LODS,
        STR_SCAS,
        STR_INS,  /* port DX -> ES:rDI */
        STR_OUTS, /* DS:rSI -> port DX */
};

#define STR_SRC 1u /* reads DS:rSI (segment override allowed) */
#define STR_DST 2u /* reads or writes ES:rDI */

/* The string instruction `insn` is, with its element size; false for anything else, and for
 * INS/OUTS unless `io` (x86_emulate_string_io), for the others if `io`. */
static bool string_op(const struct x86_insn *insn, bool io, enum str_op *op, unsigned *size)
{
        if (insn->encoding != X86_ENC_LEGACY || insn->map != X86_MAP_PRIMARY)
                return false;
        switch (insn->opcode & ~1u) {
        case 0x6c:
                *op = STR_INS;
                break;
        case 0x6e:
                *op = STR_OUTS;
                break;
        case 0xa4:
                *op = STR_MOVS;
                break;
        case 0xa6:
                *op = STR_CMPS;
                break;
        case 0xaa:
                *op = STR_STOS;
                break;
        case 0xac:
                *op = STR_LODS;
                break;
        case 0xae:
                *op = STR_SCAS;
                break;
        default:
                return false;
        }
        if ((*op == STR_INS || *op == STR_OUTS) != io)
                return false;
        *size = insn->op_size;
        if (io && *size == 8)
                *size = 4; /* REX.W does not widen port I/O */
        return *size == 1 || *size == 2 || *size == 4 || *size == 8;
}

static unsigned string_operands_of(enum str_op op)
{
        switch (op) {
        case STR_MOVS:
        case STR_CMPS:
                return STR_SRC | STR_DST;
        case STR_LODS:
        case STR_OUTS:
                return STR_SRC;
        default:
                return STR_DST;
        }
}

/* Writes an address-size register (rSI, rDI, rCX) as the CPU does: 32-bit zero-extends,
 * 16-bit keeps the rest. */
static void areg_set(struct x86_emul_regs *r, int reg, unsigned asize, uint64_t v)
{
        if (asize == 2)
                r->gpr[reg] = (r->gpr[reg] & ~0xffffull) | (v & 0xffff);
        else if (asize == 4)
                r->gpr[reg] = v & 0xffffffffull;
        else
                r->gpr[reg] = v;
}

/* Linear address of DS:rSI (src) or ES:rDI (dst). */
static uint64_t string_linear(const struct x86_insn *insn, const struct x86_emul_regs *r,
                              const uint64_t seg_base[6], bool dst)
{
        uint64_t ea = r->gpr[dst ? 7 : 6] & size_mask(insn->addr_size);
        unsigned seg = dst ? X86_SEG_ES : insn->seg_override;

        if (seg > X86_SEG_GS)
                seg = X86_SEG_DS;
        if (insn->mode == X86_MODE_LONG64)
                return (seg == X86_SEG_FS || seg == X86_SEG_GS) ? seg_base[seg] + ea : ea;
        return (seg_base[seg] + ea) & 0xffffffffull;
}

int x86_string_operands(const struct x86_insn *insn, const struct x86_emul_regs *regs,
                        const uint64_t seg_base[6], uint64_t linear[2], unsigned *size)
{
        enum str_op op;
        unsigned which;

        if (!string_op(insn, false, &op, size))
                return -KEEL_ENOTSUP;
        if ((insn->prefixes & (X86_PFX_REP | X86_PFX_REPNE)) &&
            (regs->gpr[1] & size_mask(insn->addr_size)) == 0)
                return 0; /* REP with rCX = 0: no access at all */
        which = string_operands_of(op);
        linear[0] = string_linear(insn, regs, seg_base, false);
        linear[1] = string_linear(insn, regs, seg_base, true);
        return (int)which;
}

#define STEP_AGAIN                                                                              \
        1           /* done, but a device wants it executed again: the iteration does not count \
                     */
#define STEP_LAST 2 /* done and counts, but the batch ends here (INS to a device asking again) */

/* INS's store: check the destination, read the port, store. */
static int ins_step(const struct x86_insn *insn, unsigned size, const struct x86_emul_regs *r,
                    const uint64_t seg_base[6], x86_linear_access_fn fn, x86_port_access_fn port,
                    void *ctx)
{
        uint64_t at = string_linear(insn, r, seg_base, true), v;
        uint32_t pv = 0;
        int rc = fn(ctx, at, size, true, NULL);

        if (rc < 0)
                return rc;
        port(ctx, (uint16_t)r->gpr[2], size, true, &pv);
        v = pv & size_mask(size);
        rc = fn(ctx, at, size, true, &v);
        return rc < 0 ? rc : rc ? STEP_LAST : 0;
}

/* One iteration into *r (a copy): its accesses, then rSI/rDI stepped. < 0: an access was not
 * done (nothing of this iteration counts); else 0 or STEP_AGAIN / STEP_LAST. */
static int string_step(const struct x86_insn *insn, enum str_op op, unsigned size,
                       struct x86_emul_regs *r, const uint64_t seg_base[6], x86_linear_access_fn fn,
                       x86_port_access_fn port, void *ctx)
{
        unsigned which = string_operands_of(op), asize = insn->addr_size;
        uint64_t src = 0, dst = 0, step = (r->rflags & X86_RFLAGS_DF) ? -(uint64_t)size : size;
        int rc, again = 0;

        if (which & STR_SRC) {
                rc = fn(ctx, string_linear(insn, r, seg_base, false), size, false, &src);
                if (rc < 0)
                        return rc;
                again |= rc;
                src &= size_mask(size);
        }
        switch (op) {
        case STR_MOVS:
                dst = src;
                rc = fn(ctx, string_linear(insn, r, seg_base, true), size, true, &dst);
                break;
        case STR_STOS:
                dst = r->gpr[0] & size_mask(size);
                rc = fn(ctx, string_linear(insn, r, seg_base, true), size, true, &dst);
                break;
        case STR_CMPS:
        case STR_SCAS:
                rc = fn(ctx, string_linear(insn, r, seg_base, true), size, false, &dst);
                dst &= size_mask(size);
                break;
        case STR_INS:
                rc = ins_step(insn, size, r, seg_base, fn, port, ctx);
                if (rc == STEP_LAST) {
                        areg_set(r, 7, asize, r->gpr[7] + step);
                        return STEP_LAST;
                }
                break;
        case STR_OUTS: {
                uint32_t pv = (uint32_t)src;

                if (!again) /* else the iteration is done again: one port write only */
                        port(ctx, (uint16_t)r->gpr[2], size, false, &pv);
                rc = 0;
                break;
        }
        default: /* LODS */
                rc = 0;
                break;
        }
        if (rc < 0)
                return rc;
        again |= rc;
        if (again)
                return STEP_AGAIN;
        switch (op) {
        case STR_CMPS:
                alu(ALU_CMP, src, dst, size, &r->rflags);
                break;
        case STR_SCAS:
                alu(ALU_CMP, r->gpr[0], dst, size, &r->rflags);
                break;
        case STR_LODS:
                reg_set(insn, r, 0, size, src);
                break;
        default:
                break;
        }
        if (which & STR_SRC)
                areg_set(r, 6, asize, r->gpr[6] + step);
        if (which & STR_DST)
                areg_set(r, 7, asize, r->gpr[7] + step);
        return 0;
}

static int string_run(const struct x86_insn *insn, struct x86_emul_regs *regs,
                      const uint64_t seg_base[6], unsigned budget, x86_linear_access_fn fn,
                      x86_port_access_fn port, void *ctx)
{
        bool rep = (insn->prefixes & (X86_PFX_REP | X86_PFX_REPNE)) != 0;
        uint64_t amask = size_mask(insn->addr_size);
        enum str_op op;
        unsigned size;
        int done = 0;

        if (!string_op(insn, port != NULL, &op, &size))
                return -KEEL_ENOTSUP;
        for (;;) {
                struct x86_emul_regs r = *regs;
                uint64_t count = regs->gpr[1] & amask;
                int rc;

                if (rep && count == 0)
                        break; /* complete */
                if ((unsigned)done == budget)
                        return done; /* the guest executes it again for the rest */
                rc = string_step(insn, op, size, &r, seg_base, fn, port, ctx);
                if (rc != 0 && rc != STEP_LAST)
                        return done; /* before this iteration: RIP stays on the instruction */
                done++;
                if (rep)
                        areg_set(&r, 1, insn->addr_size, count - 1);
                *regs = r;
                if (!rep)
                        break;
                if (rc == STEP_LAST && count - 1 != 0)
                        return done; /* RIP stays: the guest executes it again for the rest */
                /* REPE / REPNE end CMPS and SCAS on the comparison (the last of F3/F2). */
                if ((op == STR_CMPS || op == STR_SCAS) &&
                    ((insn->last_rep == 0xf3) != ((regs->rflags & X86_RFLAGS_ZF) != 0)))
                        break;
        }
        regs->rip = next_rip(insn, regs->rip);
        return done;
}

int x86_emulate_string(const struct x86_insn *insn, struct x86_emul_regs *regs,
                       const uint64_t seg_base[6], unsigned budget, x86_linear_access_fn fn,
                       void *ctx)
{
        return string_run(insn, regs, seg_base, budget, fn, NULL, ctx);
}

int x86_emulate_string_io(const struct x86_insn *insn, struct x86_emul_regs *regs,
                          const uint64_t seg_base[6], unsigned budget, x86_linear_access_fn mem,
                          x86_port_access_fn port, void *ctx)
{
        return port ? string_run(insn, regs, seg_base, budget, mem, port, ctx) : -KEEL_ENOTSUP;
}
