/*
 * x86 MMIO instruction emulation (contract in arch/mmio_emul.h). The instruction was decoded
 * by x86_decode from guest memory, so every field is guest-controlled: only the listed
 * legacy opcodes with a memory operand are accepted, everything else is -KEEL_ENOTSUP.
 */
#include <arch/mmio_emul.h>
#include <keel/errno.h>

enum alu_op {
        ALU_ADD = 0,
        ALU_OR = 1,
        ALU_ADC = 2, /* not emulated */
        ALU_SBB = 3, /* not emulated */
        ALU_AND = 4,
        ALU_SUB = 5,
        ALU_XOR = 6,
        ALU_CMP = 7,
        ALU_TEST = 8,
};

/* What the instruction does with its memory operand. */
enum kind {
        K_STORE_REG, /* mem <- reg */
        K_STORE_IMM, /* mem <- imm */
        K_LOAD,      /* reg <- mem (same size) */
        K_LOAD_ZX,   /* reg <- zero-extended mem of src_size */
        K_LOAD_SX,   /* reg <- sign-extended mem of src_size */
        K_ALU_MEM,   /* mem <- mem op reg/imm (CMP/TEST: flags only) */
        K_ALU_REG,   /* reg <- reg op mem (CMP: flags only) */
};

struct op {
        enum kind kind;
        enum alu_op alu;
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

/* Computes a op b on `size` bytes; *flags gets the new arithmetic flags. */
static uint64_t alu(enum alu_op op, uint64_t a, uint64_t b, unsigned size, uint64_t *flags)
{
        uint64_t m = size_mask(size), sign = 1ull << (8 * size - 1), res, f = 0;

        a &= m;
        b &= m;
        switch (op) {
        case ALU_ADD:
                res = (a + b) & m;
                if (res < a)
                        f |= X86_RFLAGS_CF;
                if ((a ^ res) & (b ^ res) & sign)
                        f |= X86_RFLAGS_OF;
                if ((a ^ b ^ res) & 0x10)
                        f |= X86_RFLAGS_AF;
                break;
        case ALU_SUB:
        case ALU_CMP:
                res = (a - b) & m;
                if (a < b)
                        f |= X86_RFLAGS_CF;
                if ((a ^ b) & (a ^ res) & sign)
                        f |= X86_RFLAGS_OF;
                if ((a ^ b ^ res) & 0x10)
                        f |= X86_RFLAGS_AF;
                break;
        case ALU_OR:
                res = a | b;
                f |= *flags & X86_RFLAGS_AF; /* undefined: unchanged */
                break;
        case ALU_XOR:
                res = a ^ b;
                f |= *flags & X86_RFLAGS_AF;
                break;
        default: /* AND, TEST */
                res = a & b;
                f |= *flags & X86_RFLAGS_AF;
                break;
        }
        if (res == 0)
                f |= X86_RFLAGS_ZF;
        if (res & sign)
                f |= X86_RFLAGS_SF;
        if (parity_even(res))
                f |= X86_RFLAGS_PF;
        *flags = (*flags & ~X86_RFLAGS_ARITH) | f;
        return res;
}

static bool alu_supported(enum alu_op op)
{
        return op != ALU_ADC && op != ALU_SBB;
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

        if (in->map == X86_MAP_0F) {
                switch (opc) {
                case 0xb6: /* MOVZX Gv, Eb */
                case 0xb7: /* MOVZX Gv, Ew */
                case 0xbe: /* MOVSX Gv, Eb */
                case 0xbf: /* MOVSX Gv, Ew */
                        o->kind = (opc & 8) ? K_LOAD_SX : K_LOAD_ZX;
                        o->msize = (opc & 1) ? 2 : 1;
                        return true;
                default:
                        return false;
                }
        }
        if (in->map != X86_MAP_PRIMARY)
                return false;

        if (opc < 0x40 && (opc & 7) < 4) { /* ALU Eb,Gb Ev,Gv Gb,Eb Gv,Ev */
                o->alu = (enum alu_op)(opc >> 3);
                o->kind = (opc & 2) ? K_ALU_REG : K_ALU_MEM;
                return alu_supported(o->alu);
        }
        switch (opc) {
        case 0x63: /* MOVSXD Gv, Ed (64-bit mode; ARPL elsewhere) */
                if (in->mode != X86_MODE_LONG64)
                        return false;
                o->kind = osz == 8 ? K_LOAD_SX : K_LOAD;
                o->msize = osz == 8 ? 4 : osz;
                return true;
        case 0x80: /* grp1 Eb, Ib */
        case 0x81: /* grp1 Ev, Iz */
        case 0x83: /* grp1 Ev, Ib (sign-extended) */
                o->alu = (enum alu_op)in->reg;
                o->kind = K_ALU_MEM;
                o->reg = X86_REG_NONE;
                return alu_supported(o->alu);
        case 0x84: /* TEST Eb, Gb */
        case 0x85: /* TEST Ev, Gv */
                o->alu = ALU_TEST;
                o->kind = K_ALU_MEM;
                return true;
        case 0xf6: /* grp3 /0: TEST Eb, Ib */
        case 0xf7: /* grp3 /0: TEST Ev, Iz */
                if (in->reg != 0)
                        return false;
                o->alu = ALU_TEST;
                o->kind = K_ALU_MEM;
                o->reg = X86_REG_NONE;
                return true;
        case 0x88: /* MOV Eb, Gb */
        case 0x89: /* MOV Ev, Gv */
                o->kind = K_STORE_REG;
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

/* classify() plus the checks x86_emulate_mmio makes before any access. */
static bool emulatable(const struct x86_insn *insn, struct op *o)
{
        if (insn->encoding != X86_ENC_LEGACY || !insn->has_mem || (insn->prefixes & X86_PFX_LOCK))
                return false;
        if (!classify(insn, o))
                return false;
        return (o->size == 1 || o->size == 2 || o->size == 4 || o->size == 8) &&
               (o->msize == 1 || o->msize == 2 || o->msize == 4 || o->msize == 8) &&
               (o->reg == X86_REG_NONE || (o->reg >= 0 && o->reg <= 15));
}

int x86_mmio_operand(const struct x86_insn *insn, const struct x86_emul_regs *regs,
                     const uint64_t seg_base[6], uint64_t *linear, unsigned *size)
{
        struct op o;
        uint64_t ea = (uint64_t)insn->disp;
        uint64_t base = 0;

        if (!emulatable(insn, &o))
                return -KEEL_ENOTSUP;
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
        *linear = base + ea;
        if (insn->mode != X86_MODE_LONG64)
                *linear &= 0xffffffffull;
        *size = o.msize;
        return 0;
}

int x86_emulate_mmio(const struct x86_insn *insn, struct x86_emul_regs *regs, uint64_t gpa,
                     x86_mmio_access_fn fn, void *ctx)
{
        struct op o;
        uint64_t val, src, res, flags;

        if (!emulatable(insn, &o))
                return -KEEL_ENOTSUP;

        switch (o.kind) {
        case K_STORE_REG:
                val = reg_get(insn, regs, o.reg, o.size);
                if (!fn(ctx, gpa, o.msize, true, &val))
                        return -KEEL_EFAULT;
                break;
        case K_STORE_IMM:
                val = (uint64_t)x86_insn_imm_sext(insn) & size_mask(o.size);
                if (!fn(ctx, gpa, o.msize, true, &val))
                        return -KEEL_EFAULT;
                break;
        case K_LOAD:
        case K_LOAD_ZX:
        case K_LOAD_SX:
                val = 0;
                if (!fn(ctx, gpa, o.msize, false, &val))
                        return -KEEL_EFAULT;
                val &= size_mask(o.msize);
                if (o.kind == K_LOAD_SX)
                        val = sext(val, o.msize);
                reg_set(insn, regs, o.reg, o.size, val);
                break;
        case K_ALU_MEM:
                val = 0;
                if (!fn(ctx, gpa, o.msize, false, &val))
                        return -KEEL_EFAULT;
                src = o.reg == X86_REG_NONE ? (uint64_t)x86_insn_imm_sext(insn)
                                            : reg_get(insn, regs, o.reg, o.size);
                flags = regs->rflags;
                res = alu(o.alu, val, src, o.size, &flags);
                if (o.alu != ALU_CMP && o.alu != ALU_TEST && !fn(ctx, gpa, o.msize, true, &res))
                        return -KEEL_EFAULT;
                regs->rflags = flags;
                break;
        case K_ALU_REG:
                val = 0;
                if (!fn(ctx, gpa, o.msize, false, &val))
                        return -KEEL_EFAULT;
                flags = regs->rflags;
                res = alu(o.alu, reg_get(insn, regs, o.reg, o.size), val, o.size, &flags);
                if (o.alu != ALU_CMP)
                        reg_set(insn, regs, o.reg, o.size, res);
                regs->rflags = flags;
                break;
        }
        regs->rip = next_rip(insn, regs->rip);
        return 0;
}
