/*
 * x86 MMIO instruction emulation (pure C, host-tested and fuzzed). When a guest access to an
 * emulated device traps (nested page fault outside RAM), the exit handler fetches and
 * decodes the instruction (arch/decode.h) and calls x86_emulate_mmio with the faulting
 * guest-physical address. The access size comes from the instruction; the memory operand's
 * address is the trapped gpa (the effective address is not recomputed).
 *
 * Supported (legacy encoding, memory operand, no LOCK):
 *   MOV    88 89 8A 8B (r/m <-> reg), C6 /0 C7 /0 (r/m <- imm, imm32 sign-extended under
 *          REX.W), A0-A3 (AL/rAX <-> moffs)
 *   MOVZX  0F B6 0F B7, MOVSX 0F BE 0F BF, MOVSXD 63 (64-bit mode)
 *   AND OR XOR: 20-23 08-0B 30-33, 80/81/83 /1 /4 /6 (read-modify-write when the memory
 *          operand is the destination: one read, then one write)
 *   ADD SUB: 00-03 28-2B, 80/81/83 /0 /5 (likewise)
 *   CMP    38-3B, 80/81/83 /7;  TEST 84 85, F6/F7 /0 (read only)
 * Register writes follow the hardware: 8/16-bit destinations keep the other bits, 32-bit
 * ones zero-extend to 64; without REX, byte registers 4-7 are AH CH DH BH. The arithmetic
 * instructions set CF PF AF ZF SF OF as the CPU does (AF is left unchanged by the logical
 * ones, where the SDM calls it undefined).
 *
 * Returns 0 and advances RIP by insn->len on success;
 *   -KEEL_ENOTSUP  anything else (other opcodes, LOCK, VEX/EVEX/XOP, a register operand
 *                  where memory is required): the caller stops the VM and reports the bytes
 *   -KEEL_EFAULT   the access callback failed (no device there); registers are unchanged
 *                  unless a read-modify-write's write failed after its read
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
#define X86_RFLAGS_OF (1ull << 11)
#define X86_RFLAGS_ARITH                                                                 \
        (X86_RFLAGS_CF | X86_RFLAGS_PF | X86_RFLAGS_AF | X86_RFLAGS_ZF | X86_RFLAGS_SF | \
         X86_RFLAGS_OF)

struct x86_emul_regs {
        uint64_t gpr[16]; /* decoder numbering: rax rcx rdx rbx rsp rbp rsi rdi r8..r15 */
        uint64_t rip, rflags;
};

/*
 * One device access of `size` (1, 2, 4 or 8) bytes at `gpa`. A read stores the value
 * (zero-extended) in *val; a write takes the low `size` bytes of *val. False: nothing there.
 */
typedef bool (*x86_mmio_access_fn)(void *ctx, uint64_t gpa, unsigned size, bool write,
                                   uint64_t *val);

int x86_emulate_mmio(const struct x86_insn *insn, struct x86_emul_regs *regs, uint64_t gpa,
                     x86_mmio_access_fn fn, void *ctx);

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

#endif
