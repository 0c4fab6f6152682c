/*
 * x86 instruction decoder (pure C, host-tested and fuzzed; docs/x86-decoder.md).
 *
 * Two users:
 *  - next-RIP without NRIP-save: on AMD CPUs that do not report the address of the next
 *    instruction on an intercept (QEMU TCG), Keel fetches the intercepted instruction, decodes
 *    it and checks it is the instruction the exit names (x86_insn_identify) before adding
 *    `len` to RIP. Lengths are therefore computed from real opcode tables, never guessed.
 *  - MMIO emulation: the decoded ModRM/SIB/displacement/immediate fields describe the memory
 *    operand and the register/immediate source of the mov family.
 *
 * Coverage: every opcode of the one-byte and 0F two-byte maps, the 0F 38 / 0F 3A three-byte
 * maps, 3DNow! (0F 0F, opcode in the trailing byte), VEX (C4/C5), EVEX (62, maps 1/2/3/5/6)
 * and AMD XOP (8F, maps 8/9/A). Lengths are exact for every valid encoding; opcodes that are
 * always #UD, or #UD in the given mode, are rejected with -KEEL_EINVAL, as are a LOCK prefix
 * on an instruction that cannot be locked, legacy 66/F2/F3/F0/REX before VEX/EVEX/XOP, and
 * register forms of memory-only opcodes (LEA, LES, ...). Semantics that differ between
 * vendors follow AMD (Keel's SVM target): in 64-bit mode a 66 prefix on a near branch
 * (E8, E9, 0F 8x, ...) makes it a 16-bit branch with a rel16 (Intel ignores the prefix);
 * LOCK MOV CRn (0F 20/0F 22) is the CR8 alias and accepted.
 */
#ifndef ARCH_X86_DECODE_H
#define ARCH_X86_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define X86_MAX_INSN_LEN 15

enum x86_cpu_mode {
        X86_MODE_REAL16, /* real mode (and virtual-8086): 16-bit, no VEX/EVEX/XOP */
        X86_MODE_PROT16, /* protected mode, 16-bit code segment (CS.D = 0) */
        X86_MODE_PROT32, /* protected or compatibility mode, 32-bit code segment (CS.D = 1) */
        X86_MODE_LONG64, /* 64-bit mode (EFER.LMA = 1, CS.L = 1) */
};

/* Encoding of the opcode. */
enum x86_encoding {
        X86_ENC_LEGACY = 0,
        X86_ENC_VEX2, /* C5 xx */
        X86_ENC_VEX3, /* C4 xx xx */
        X86_ENC_EVEX, /* 62 xx xx xx */
        X86_ENC_XOP,  /* 8F xx xx (AMD) */
};

/* Opcode map the `opcode` byte belongs to. */
enum x86_opmap {
        X86_MAP_PRIMARY = 0, /* one-byte map */
        X86_MAP_0F,
        X86_MAP_0F38,
        X86_MAP_0F3A,
        X86_MAP_3DNOW, /* 0F 0F modrm ... opcode: `opcode` is the trailing byte (also in imm) */
        X86_MAP_EVEX5, /* EVEX map 5 (AVX512-FP16) */
        X86_MAP_EVEX6, /* EVEX map 6 (AVX512-FP16) */
        X86_MAP_XOP8,
        X86_MAP_XOP9,
        X86_MAP_XOPA,
};

/* Segment registers, in the hardware (ModRM.reg of 8C/8E) order. */
enum x86_seg {
        X86_SEG_ES = 0,
        X86_SEG_CS = 1,
        X86_SEG_SS = 2,
        X86_SEG_DS = 3,
        X86_SEG_FS = 4,
        X86_SEG_GS = 5,
        X86_SEG_NONE = 7,
};

/* General-purpose register numbers: 0 rAX, 1 rCX, 2 rDX, 3 rBX, 4 rSP, 5 rBP, 6 rSI, 7 rDI,
 * 8..15 r8..r15. */
#define X86_REG_NONE (-1)

/* Legacy prefix flags (x86_insn.prefixes). */
#define X86_PFX_OPSIZE (1u << 0) /* 66 */
#define X86_PFX_ADSIZE (1u << 1) /* 67 */
#define X86_PFX_LOCK   (1u << 2) /* F0 */
#define X86_PFX_REPNE  (1u << 3) /* F2 */
#define X86_PFX_REP    (1u << 4) /* F3 */
#define X86_PFX_SEG    (1u << 5) /* any segment override (see seg_override) */

struct x86_insn {
        uint8_t len;  /* total length in bytes, 1..15 */
        uint8_t mode; /* enum x86_cpu_mode decoded for */

        /* Prefixes. prefix_len counts every byte before the opcode (or before the VEX/EVEX/XOP
         * escape): legacy prefixes, REX bytes that were ignored because a legacy prefix followed
         * them, and the effective REX. */
        uint8_t prefix_len;
        uint8_t prefixes;     /* X86_PFX_* */
        uint8_t last_rep;     /* 0, 0xF2 or 0xF3: the last of F2/F3 (the mandatory prefix) */
        uint8_t seg_override; /* enum x86_seg of the last segment prefix, or X86_SEG_NONE */
        uint8_t rex;          /* effective REX byte (0x40..0x4F) or 0; 64-bit mode only */
        bool rex_w, rex_r, rex_x, rex_b; /* from REX, or the VEX/EVEX/XOP equivalents */

        /* Opcode. */
        uint8_t encoding;   /* enum x86_encoding */
        uint8_t map;        /* enum x86_opmap */
        uint8_t opcode;     /* the opcode byte within `map` */
        uint8_t opcode_off; /* offset of the opcode byte (3DNow!: of the trailing byte) */
        /* Bytes between the prefixes and the opcode: 1 for 0F, 2 for 0F 38 / 0F 3A / 0F 0F, or
         * the whole VEX/EVEX/XOP prefix (2, 3, 4, 3). So len = prefix_len + escape_len +
         * (1 unless 3DNow!) + has_modrm + has_sib + disp_size + imm_size + imm2_size. */
        uint8_t escape_len;
        /* VEX/EVEX/XOP payload (zero for legacy): vvvv un-inverted, L (EVEX: L'L), pp. */
        uint8_t vex_vvvv, vex_l, vex_pp;

        /* ModRM / SIB. reg and rm are the raw 3-bit fields; modrm_reg / modrm_rm add REX.R /
         * REX.B (rm only when mod == 3: a register operand). */
        bool has_modrm;
        uint8_t modrm, mod, reg, rm;
        uint8_t modrm_reg, modrm_rm;
        bool has_sib;
        uint8_t sib, scale, index, base; /* raw fields */

        /* Memory operand (ModRM with mod != 3, or the moffs of A0-A3). Effective address =
         * (mem_base or 0) + (mem_index or 0) * mem_scale + disp (+ next RIP if rip_relative),
         * truncated to addr_size bytes. 16-bit addressing is expressed the same way (BX+SI:
         * base rBX, index rSI, scale 1). mem_seg is the segment used: the override if one
         * applies (in 64-bit mode only FS/GS do), otherwise SS for rSP/rBP bases, else DS.
         * String instructions (MOVS, STOS, ...) and other implicit operands are not described. */
        bool has_mem;
        bool rip_relative; /* 64-bit mode, mod 00 rm 101: relative to the next instruction */
        int8_t mem_base;   /* register number or X86_REG_NONE */
        int8_t mem_index;  /* register number or X86_REG_NONE */
        uint8_t mem_scale; /* 1, 2, 4, 8 */
        uint8_t mem_seg;   /* enum x86_seg */

        int64_t disp;      /* sign-extended displacement (moffs: its value) */
        uint8_t disp_size; /* 0, 1, 2, 4 or 8 (8: 64-bit moffs only) */
        uint8_t disp_off;

        /* Immediates, zero-extended raw little-endian values (x86_insn_imm_sext to sign-extend).
         * imm2 is the second immediate of ENTER (Ib), of the far pointer of 9A/EA (selector) and
         * of SSE4a EXTRQ/INSERTQ (the index byte). For 3DNow! imm is the opcode byte. */
        uint64_t imm;
        uint8_t imm_size; /* 0, 1, 2, 4 or 8 */
        uint8_t imm_off;
        uint16_t imm2;
        uint8_t imm2_size; /* 0, 1 or 2 */

        /* Effective sizes in bytes. op_size is 1 for byte-operand opcodes (88, 8A, C6, B0+r, 80,
         * F6, ...), else 2/4/8 per mode, 66 and REX.W (and the 64-bit default of stack ops and
         * near branches). For MOVZX/MOVSX op_size is the destination size; the source is a byte
         * for 0F B6/BE and a word for 0F B7/BF. For VEX/EVEX/XOP op_size is 8 with W=1, else 4. */
        uint8_t op_size;
        uint8_t addr_size; /* 2, 4 or 8 */
};

/*
 * Decode one instruction from `bytes[0..avail)` for `mode` into *out (always fully
 * overwritten). Returns 0 on success, -KEEL_EINVAL for an invalid encoding (including one
 * that would exceed 15 bytes), -KEEL_EAGAIN if the first `avail` bytes are a valid but
 * incomplete prefix of an instruction (the caller may fetch more, e.g. across a page
 * boundary, and retry). Never reads at or beyond bytes[avail] nor bytes[15].
 */
int x86_decode(const uint8_t *bytes, size_t avail, enum x86_cpu_mode mode, struct x86_insn *out);

/* Immediate sign-extended from imm_size bytes to 64 bits. */
static inline int64_t x86_insn_imm_sext(const struct x86_insn *in)
{
        switch (in->imm_size) {
        case 1:
                return (int8_t)in->imm;
        case 2:
                return (int16_t)in->imm;
        case 4:
                return (int32_t)in->imm;
        default:
                return (int64_t)in->imm;
        }
}

/* The instructions an SVM intercept can name, for checking that a decoded instruction is the
 * one the exit reported (see x86_insn_identify). */
enum x86_insn_id {
        X86_INSN_OTHER = 0,
        X86_INSN_CPUID,       /* 0F A2 */
        X86_INSN_RDMSR,       /* 0F 32 */
        X86_INSN_WRMSR,       /* 0F 30 */
        X86_INSN_RDTSC,       /* 0F 31 */
        X86_INSN_RDTSCP,      /* 0F 01 F9 */
        X86_INSN_RDPMC,       /* 0F 33 */
        X86_INSN_HLT,         /* F4 */
        X86_INSN_PAUSE,       /* F3 90 */
        X86_INSN_INVD,        /* 0F 08 */
        X86_INSN_WBINVD,      /* 0F 09 (also F3 0F 09 WBNOINVD) */
        X86_INSN_VMMCALL,     /* 0F 01 D9 */
        X86_INSN_VMCALL,      /* 0F 01 C1 */
        X86_INSN_VMRUN,       /* 0F 01 D8 */
        X86_INSN_VMLOAD,      /* 0F 01 DA */
        X86_INSN_VMSAVE,      /* 0F 01 DB */
        X86_INSN_STGI,        /* 0F 01 DC */
        X86_INSN_CLGI,        /* 0F 01 DD */
        X86_INSN_SKINIT,      /* 0F 01 DE */
        X86_INSN_INVLPGA,     /* 0F 01 DF */
        X86_INSN_XSETBV,      /* 0F 01 D1 */
        X86_INSN_MONITOR,     /* 0F 01 C8 (and MONITORX 0F 01 FA) */
        X86_INSN_MWAIT,       /* 0F 01 C9 (and MWAITX 0F 01 FB) */
        X86_INSN_INVLPG,      /* 0F 01 /7, memory operand */
        X86_INSN_IN,          /* E4, E5, EC, ED */
        X86_INSN_OUT,         /* E6, E7, EE, EF */
        X86_INSN_INS,         /* 6C, 6D */
        X86_INSN_OUTS,        /* 6E, 6F */
        X86_INSN_MOV_TO_CR,   /* 0F 22 */
        X86_INSN_MOV_FROM_CR, /* 0F 20 */
        X86_INSN_MOV_TO_DR,   /* 0F 23 */
        X86_INSN_MOV_FROM_DR, /* 0F 21 */
        X86_INSN_CLTS,        /* 0F 06 */
        X86_INSN_LMSW,        /* 0F 01 /6 */
        X86_INSN_SMSW,        /* 0F 01 /4 */
        X86_INSN_INT3,        /* CC */
        X86_INSN_INTN,        /* CD ib */
        X86_INSN_ICEBP,       /* F1 */
};

/*
 * Which of the instructions above a successfully decoded instruction is (X86_INSN_OTHER if
 * none). Legacy encoding only; the 0F 01 register forms must carry no 66/F2/F3 prefix (those
 * select other instructions), and PAUSE needs F3. Prefixes the CPU ignores (segment
 * overrides, 66 on CPUID, ...) are allowed: the length still counts them.
 */
enum x86_insn_id x86_insn_identify(const struct x86_insn *in);

#endif
