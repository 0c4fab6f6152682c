/*
 * x86 MMIO instruction emulation (pure C, host-tested and fuzzed). When a guest access to an
 * emulated device traps (nested page fault outside RAM), the exit handler fetches and
 * decodes the instruction (arch/decode.h) and calls x86_emulate_mmio with the faulting
 * guest-physical address. The access size comes from the instruction; the memory operand's
 * address is the trapped gpa (the effective address is not recomputed).
 *
 * Supported (legacy encoding, memory operand; a LOCK prefix, which the decoder accepts only on
 * the read-modify-write forms, changes nothing: the device sees the same accesses):
 *   MOV    88 89 8A 8B (r/m <-> reg), C6 /0 C7 /0 (r/m <- imm, imm32 sign-extended under
 *          REX.W), A0-A3 (AL/rAX <-> moffs)
 *   MOVZX  0F B6 0F B7, MOVSX 0F BE 0F BF, MOVSXD 63 (64-bit mode)
 *   ADD OR ADC SBB AND SUB XOR CMP: 00-3B (the Eb,Gb Ev,Gv Gb,Eb Gv,Ev forms), 80 81 82 83
 *          /0../7 (83: imm8 sign-extended); TEST 84 85, F6/F7 /0 /1
 *   INC DEC FE/FF /0 /1; NOT NEG F6/F7 /2 /3
 *   XCHG 86 87; XADD 0F C0 0F C1; CMPXCHG 0F B0 0F B1 (on a mismatch the old value is
 *          written back, as the CPU's write cycle does)
 *   BT BTS BTR BTC 0F A3 AB B3 BB (register bit offset: signed, it may select an operand
 *          before or after the addressed one) and 0F BA /4../7 (imm8 modulo the size)
 *   SMSW   0F 01 /4: stores CR0's low 16 bits (regs->cr0) as a word whatever the operand size
 *   SLDT STR 0F 00 /0 /1, MOV Ew, Sreg 8C: store regs->sys_sel (the caller's LDTR, TR,
 *          segment register) as a word; LLDT LTR 0F 00 /2 /3 (not in real or virtual-8086
 *          mode, where the CPU raises #UD), MOV Sreg, Ew 8E (not CS): read a word into
 *          regs->sys_sel, RIP advanced, and return X86_EMUL_LOAD_SYSSEG: the caller checks
 *          and loads the selector (x86_seg_desc), or injects the fault and keeps the old
 *          registers
 *   BSF BSR 0F BC 0F BD (not F3: TZCNT LZCNT; a zero source: ZF, the destination kept, a
 *          32-bit one zero-extended as on Intel); CMOVcc 0F 40-4F (reads either way)
 *   IMUL   0F AF, 69, 6B; MUL IMUL F6/F7 /4 /5 (rDX:rAX, bytes AX)
 *   DIV IDIV F6/F7 /6 /7 (rDX:rAX, bytes AX; a zero divisor or a quotient too large for the
 *          operand size: X86_EMUL_DIVIDE_ERROR after the read; flags, undefined, are kept)
 *   SHLD SHRD 0F A4 A5 AC AD (imm8 or CL, masked to 31 / 63; a count of 0 writes nothing)
 *   SSE / MMX moves (see x86_mmio_vreg): MOVUPS MOVUPD MOVAPS MOVAPD MOVSS MOVSD MOVDQA
 *          MOVDQU (0F 10 11 28 29 6F 7F), MOVD / MOVQ (0F 6E 7E, F3 0F 7E, 66 0F D6) with an
 *          XMM or MMX register; 16 bytes are two 8-byte accesses, low half first
 * A read-modify-write is one read, then one write of the same size at the same address.
 * Register writes follow the hardware: 8/16-bit destinations keep the other bits, 32-bit
 * ones zero-extend to 64; without REX, byte registers 4-7 are AH CH DH BH. The arithmetic
 * instructions set CF PF AF ZF SF OF as the CPU does (INC/DEC keep CF; the logical ones clear
 * AF, which the SDM calls undefined, as the CPUs do; BT* change only CF, NOT none; BSF BSR
 * set ZF, MUL IMUL CF and OF, SHLD SHRD CF OF SF ZF PF: the flags the SDM leaves undefined
 * are kept).
 *
 * Returns 0 and advances RIP by insn->len on success;
 *   X86_EMUL_DIVIDE_ERROR  DIV / IDIV faults: the caller injects #DE; registers and RIP are
 *                  unchanged (the device saw the read)
 *   -KEEL_ENOTSUP  anything else (other opcodes, VEX/EVEX/XOP, a register operand where memory
 *                  is required): the caller stops the VM and reports the bytes
 *   -KEEL_EFAULT   the access callback failed (no device there); registers, RIP and RFLAGS
 *                  are unchanged (a read-modify-write whose write failed after its read too)
 *
 * String instructions MOVS CMPS STOS LODS SCAS (A4-A7, AA-AF) have two implicit operands,
 * DS:rSI (any segment override) and ES:rDI, either of which may be RAM or a device:
 * x86_emulate_string runs them through an access callback by linear address, REP / REPE /
 * REPNE included, a bounded number of iterations per call.
 */
#ifndef ARCH_MMIO_EMUL_H
#define ARCH_MMIO_EMUL_H

#include <stdbool.h>
#include <stdint.h>

#include <arch/decode.h>

#define X86_RFLAGS_CF (1ull << 0)
#define X86_RFLAGS_PF (1ull << 2)
#define X86_RFLAGS_AF (1ull << 4)
#define X86_RFLAGS_ZF (1ull << 6)
#define X86_RFLAGS_SF (1ull << 7)
#define X86_RFLAGS_DF (1ull << 10)
#define X86_RFLAGS_OF (1ull << 11)
#define X86_RFLAGS_ARITH                                                                 \
        (X86_RFLAGS_CF | X86_RFLAGS_PF | X86_RFLAGS_AF | X86_RFLAGS_ZF | X86_RFLAGS_SF | \
         X86_RFLAGS_OF)

struct x86_emul_regs {
        uint64_t gpr[16]; /* decoder numbering: rax rcx rdx rbx rsp rbp rsi rdi r8..r15 */
        uint64_t rip, rflags;
        uint64_t cr0; /* as the guest reads it (SMSW); never written */
        /* SLDT / STR: the selector they store (the caller's LDTR / TR); LLDT / LTR: the
         * selector read, for the caller to load (X86_EMUL_LOAD_SYSSEG) */
        uint16_t sys_sel;
        /* The MMX or XMM register x86_mmio_vreg names: its value (MMX: the low 8 bytes) in,
         * and out after a load, zero-extended. */
        uint8_t vec[16];
};

/*
 * One device access of `size` (1, 2, 4 or 8) bytes at `gpa`. A read stores the value
 * (zero-extended) in *val; a write takes the low `size` bytes of *val. False: nothing there.
 */
typedef bool (*x86_mmio_access_fn)(void *ctx, uint64_t gpa, unsigned size, bool write,
                                   uint64_t *val);

#define X86_EMUL_DIVIDE_ERROR 1 /* x86_emulate_mmio: the guest gets #DE */
#define X86_EMUL_LOAD_SYSSEG  2 /* x86_emulate_mmio: LLDT / LTR of regs->sys_sel, caller's */
#define X86_EMUL_GP           3 /* x86_emulate_stack: the guest gets #GP(0) */

/* LDTR or TR as the CPU holds it; attr in SVM's packed form (access byte 0-7, AVL 8, L 9,
 * D/B 10, G 11). */
struct x86_sysseg {
        uint16_t sel, attr;
        uint32_t limit;
        uint64_t base;
};

/* A fault for the guest: vector and error code in one value (0: none). */
#define X86_FAULT(vec, err) (1u << 31 | (uint32_t)(vec) << 16 | (uint32_t)(err))

/* What a selector is loaded into (x86_seg_desc). */
enum x86_seg_load {
        SEG_LOAD_TR,   /* LTR */
        SEG_LOAD_LDTR, /* LLDT */
        SEG_LOAD_SS,   /* MOV SS */
        SEG_LOAD_DATA, /* MOV DS / ES / FS / GS */
        SEG_LOAD_CS,   /* far JMP */
};

/*
 * Loading the non-null GDT selector `sel` (the caller checked TI and the GDT limit, and CPL 0
 * for LTR / LLDT) whose descriptor is desc[0] and, for TR and LDTR in long mode, desc[1] (the
 * upper 8 bytes), at privilege `cpl` (SDM vol. 2 "LTR", "LLDT", "MOV", "JMP"): *out as the
 * register then holds it and 0, or the fault for the guest: #GP(sel) for a descriptor of
 * another type or privilege (TR: an available 32/64-bit TSS, or 16-bit outside long mode;
 * LDTR: an LDT; SS: a writable data segment with RPL = DPL = CPL; DS..GS: data or readable
 * code, DPL >= CPL and RPL unless conforming; CS: code, conforming DPL <= CPL, else RPL <= CPL
 * and DPL = CPL, not L and D both), a nonzero upper type or a non-canonical base; #SS(sel)
 * for an absent SS, #NP(sel) for any other. 1 for a far JMP to a gate (not emulated). The
 * loaded TSS type is busy, a code or data segment accessed: the caller writes the descriptor
 * back when that changed it. CS gets RPL = CPL.
 */
uint32_t x86_seg_desc(enum x86_seg_load kind, bool long_mode, unsigned cpl, uint16_t sel,
                      const uint64_t desc[2], struct x86_sysseg *out);

#define X86_SEG_LDTR 6 /* the vendor's seg hook: after ES CS SS DS FS GS */
#define X86_SEG_TR   7

int x86_emulate_mmio(const struct x86_insn *insn, struct x86_emul_regs *regs, uint64_t gpa,
                     x86_mmio_access_fn fn, void *ctx);

/*
 * The vector register an SSE / MMX move x86_emulate_mmio would emulate uses: 0-15 for XMM n,
 * 16 + n for MMX n, and *load true when the move writes it (regs->vec then holds the new
 * value); -1 for any other instruction. The caller fills regs->vec from it before.
 */
int x86_mmio_vreg(const struct x86_insn *insn, bool *load);

/*
 * The memory operand of an instruction x86_emulate_mmio would emulate: its linear address
 * (segment base `seg_base[insn->mem_seg]` plus the effective address from `regs`, truncated
 * as the mode does; in 64-bit mode only FS and GS have a base) and the access size. So the
 * caller can check that the trapped guest-physical address is the one this instruction
 * touches (a guest may rewrite the instruction from another vCPU between the exit and the
 * fetch, or make one access straddle RAM and a device). 0, or -KEEL_ENOTSUP as
 * x86_emulate_mmio would return it.
 */
int x86_mmio_operand(const struct x86_insn *insn, const struct x86_emul_regs *regs,
                     const uint64_t seg_base[6], uint64_t *linear, unsigned *size);

/*
 * One access of a string instruction at linear address `linear` (`size` 1, 2, 4 or 8; a read
 * stores the value in *val, a write takes its low `size` bytes). Returns 0 when done, 1 when
 * done but a device did only part of the work and wants the instruction executed again, and
 * a negative code when it was not done: the callback has then queued the guest's fault (a
 * #PF) or recorded why it refused. A write with val = NULL (INS only) checks that the write
 * would be done, without doing it: 0 or a negative code as above.
 */
typedef int (*x86_linear_access_fn)(void *ctx, uint64_t linear, unsigned size, bool write,
                                    uint64_t *val);

/*
 * The first iteration's operands of string instruction `insn`: linear[0] = DS:rSI (or the
 * override's segment; in 64-bit mode only FS and GS have a base), linear[1] = ES:rDI, each
 * truncated to the address size and, outside 64-bit mode, to 32 bits; *size the element
 * size. Returns which are used (bit 0 the source, bit 1 the destination), 0 for a REP with
 * rCX = 0 (no access), or -KEEL_ENOTSUP if `insn` is not a string instruction.
 */
int x86_string_operands(const struct x86_insn *insn, const struct x86_emul_regs *regs,
                        const uint64_t seg_base[6], uint64_t linear[2], unsigned *size);

/*
 * Run string instruction `insn` for at most `budget` (> 0) iterations: each reads its source
 * and then reads (CMPS, SCAS) or writes (MOVS, STOS) its destination through `fn`, sets
 * rAX (LODS) or the flags of source - destination (CMPS; SCAS: rAX - destination), then
 * steps rSI and rDI by the element size (down with RFLAGS.DF) and, with REP, decrements rCX
 * (all three of the address size). REP ends at rCX = 0, REPE (F3) CMPS/SCAS also when ZF is
 * clear, REPNE (F2) when it is set. Once the instruction is complete RIP advances; otherwise
 * (budget used up, an access not done, or a device asking for it again, in which case that
 * iteration does not count) RIP stays, registers hold the iterations done, and the guest
 * executes the instruction again for the rest, as after an interrupt between iterations.
 * Returns the number of iterations done (0 with RIP advanced: REP with rCX = 0; 0 with RIP
 * unchanged: the first one was not done), or -KEEL_ENOTSUP for anything else.
 */
int x86_emulate_string(const struct x86_insn *insn, struct x86_emul_regs *regs,
                       const uint64_t seg_base[6], unsigned budget, x86_linear_access_fn fn,
                       void *ctx);

/*
 * Stack instructions and near branches in 64-bit mode, whose stack slot or memory operand
 * (either may be the device) go by linear address through `fn` (as x86_emulate_string's):
 * PUSH r / imm / m (50-57, 68, 6A, FF /6), POP r / m (58-5F, 8F /0: an rSP base is the
 * incremented one), CALL rel32 / m (E8, FF /2), JMP m (FF /4), RET (C3, C2 iw), LEAVE (C9),
 * ENTER iw, 0 (C8; another nesting level is not emulated). Operand size 8, or 2 with 66 (near
 * branches: always 8). A target that is not canonical: X86_EMUL_GP, nothing pushed. Returns 0
 * with the registers and RIP updated once every access succeeded, a negative code from `fn`
 * (nothing changed), or -KEEL_ENOTSUP for anything else (and outside 64-bit mode, where the
 * stack size would be SS's).
 */
int x86_emulate_stack(const struct x86_insn *insn, struct x86_emul_regs *regs,
                      const uint64_t seg_base[6], x86_linear_access_fn fn, void *ctx);

/*
 * The far pointer of JMP m16:16/32/64 (FF /5; outside real and virtual-8086 mode), read
 * through `fn` by linear address: *offset (of the operand size) and *sel. 0, a negative code
 * from `fn`, or -KEEL_ENOTSUP for another instruction. The caller loads CS (x86_seg_desc).
 */
int x86_far_pointer(const struct x86_insn *insn, const struct x86_emul_regs *regs,
                    const uint64_t seg_base[6], x86_linear_access_fn fn, void *ctx,
                    uint64_t *offset, uint16_t *sel);

/*
 * One port access of a string I/O instruction: IN reads `size` (1, 2, 4) bytes from `port`
 * into *val, OUT writes its low `size` bytes. Port I/O cannot fail: nothing there reads all
 * ones.
 */
typedef void (*x86_port_access_fn)(void *ctx, uint16_t port, unsigned size, bool in, uint32_t *val);

/*
 * String port I/O, INS (6C 6D: port DX -> ES:rDI) and OUTS (6E 6F: DS:rSI, any segment
 * override -> port DX), with REP, as x86_emulate_string runs the memory string instructions:
 * at most `budget` iterations, rSI / rDI stepped by the element size (down with RFLAGS.DF) in
 * the address size, rCX counted down with REP, RIP advanced once complete, otherwise left for
 * the guest to execute it again. The memory access goes through `mem`; INS first calls it with
 * val = NULL, which must only check that the write would be allowed (and otherwise queue the
 * guest's fault), so that a faulting destination does not cost a port read, as on the CPU.
 * An iteration whose memory access is not done does not count and does no port access after
 * it; a device asking for a store again ends the batch after that iteration (its port read
 * is not repeated). Returns the iterations done, or -KEEL_ENOTSUP if `insn` is not INS/OUTS.
 * Port permission (IOPL, the TSS bitmap) is the CPU's: checked before the exit.
 */
int x86_emulate_string_io(const struct x86_insn *insn, struct x86_emul_regs *regs,
                          const uint64_t seg_base[6], unsigned budget, x86_linear_access_fn mem,
                          x86_port_access_fn port, void *ctx);

#endif
