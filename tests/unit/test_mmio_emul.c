/*
 * Tests for arch/x86_64/mmio_emul.c: hand-assembled encodings (checked against GNU as at
 * development time) decoded by x86_decode and run against a fake register file and a fake
 * device: values, access sizes, zero/sign extension, partial and high-byte registers, RIP,
 * RFLAGS, refusals. On an x86-64 host the flags of ADD/SUB/CMP/AND/OR/XOR/TEST are also
 * compared with the real CPU's for many operand pairs.
 */
#include <arch/decode.h>
#include <arch/mmio_emul.h>
#include <keel/errno.h>

#include "test.h"

#define DEV      0xd0000010ull
#define RIP0     0x401000ull
#define FL0      0x202ull
#define CR0_SEEN 0x80050033ull /* PG AM WP NE ET MP PE: SMSW stores 0x0033 */
#define NONE     0xffu
#define RAX      0
#define RCX      1
#define RDX      2
#define RBX      3
#define RSP      4
#define RBP      5
#define RSI      6
#define RDI      7
#define R8       8
#define R15      15

/* Fake device: one register; logs every access. */
struct fake_dev {
        uint64_t value; /* what a read returns (garbage above `size` is masked by the emulator) */
        bool fail;      /* the access callback reports "nothing there" */
        bool fail_write;
        unsigned n;
        struct {
                uint64_t gpa;
                unsigned size;
                bool write;
                uint64_t val;
        } log[4];
};

static bool dev_access(void *ctx, uint64_t gpa, unsigned size, bool write, uint64_t *val)
{
        struct fake_dev *d = ctx;

        if (d->fail || (write && d->fail_write))
                return false;
        if (d->n < 4) {
                d->log[d->n].gpa = gpa;
                d->log[d->n].size = size;
                d->log[d->n].write = write;
                d->log[d->n].val = write ? *val : 0;
        }
        d->n++;
        if (write) {
                d->value = *val;
        } else {
                *val = d->value;
        }
        return true;
}

static uint64_t reg0(int i)
{
        return 0x8877665544332211ull ^ ((uint64_t)i * 0x0101010101010101ull) ^ 0xf0;
}

static void regs_init(struct x86_emul_regs *r)
{
        for (int i = 0; i < 16; i++)
                r->gpr[i] = reg0(i);
        r->rip = RIP0;
        r->rflags = FL0;
        r->cr0 = CR0_SEEN;
}

/* Decodes `b` for `mode` and emulates it. *len gets the decoded length. */
static int run_mode(const uint8_t *b, size_t n, enum x86_cpu_mode mode, struct x86_emul_regs *r,
                    struct fake_dev *d, unsigned *len)
{
        struct x86_insn in;
        int rc = x86_decode(b, n, mode, &in);

        if (rc)
                return 1000 + rc; /* decoder refusal: distinct from the emulator's codes */
        if (len)
                *len = in.len;
        return x86_emulate_mmio(&in, r, DEV, dev_access, d);
}

#define BYTES(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

/* Only register `except` may differ from the initial file (NONE: none may). */
static void expect_other_regs(const struct x86_emul_regs *r, unsigned except, const char *file,
                              int line)
{
        for (unsigned i = 0; i < 16; i++)
                if (i != except && r->gpr[i] != reg0((int)i))
                        TEST_FAIL_AT(file, line, "gpr[%u] changed to 0x%llx", i,
                                     (unsigned long long)r->gpr[i]);
}

/*
 * Runs one 64-bit instruction with the device holding `devval`, expects success, one access
 * of `size` bytes (write: of `wval`), RIP advanced by the instruction's length, and register
 * `reg` (NONE: no register) equal to `regval` with every other register unchanged.
 */
static void check(const uint8_t *b, size_t n, uint64_t devval, unsigned size, bool write,
                  uint64_t wval, unsigned reg, uint64_t regval, const char *file, int line)
{
        struct x86_emul_regs r;
        struct fake_dev d = {.value = devval};
        unsigned len = 0;
        int rc;

        regs_init(&r);
        rc = run_mode(b, n, X86_MODE_LONG64, &r, &d, &len);
        if (rc != 0) {
                TEST_FAIL_AT(file, line, "rc %d", rc);
                return;
        }
        if (len != n)
                TEST_FAIL_AT(file, line, "decoded length %u, expected %zu", len, n);
        if (r.rip != RIP0 + n)
                TEST_FAIL_AT(file, line, "rip 0x%llx", (unsigned long long)r.rip);
        if (d.n != 1 || d.log[0].gpa != DEV || d.log[0].size != size || d.log[0].write != write) {
                TEST_FAIL_AT(file, line, "access: n %u gpa 0x%llx size %u write %d", d.n,
                             (unsigned long long)d.log[0].gpa, d.log[0].size, d.log[0].write);
                return;
        }
        if (write && d.log[0].val != wval)
                TEST_FAIL_AT(file, line, "wrote 0x%llx, expected 0x%llx",
                             (unsigned long long)d.log[0].val, (unsigned long long)wval);
        if (reg != NONE && r.gpr[reg] != regval)
                TEST_FAIL_AT(file, line, "gpr[%u] = 0x%llx, expected 0x%llx", reg,
                             (unsigned long long)r.gpr[reg], (unsigned long long)regval);
        expect_other_regs(&r, reg, file, line);
        if (r.rflags != FL0)
                TEST_FAIL_AT(file, line, "rflags changed: 0x%llx", (unsigned long long)r.rflags);
}
#define STORE(bytes, size, wval) check(bytes, 0, size, true, wval, NONE, 0, __FILE__, __LINE__)
#define LOAD(bytes, devval, size, reg, regval) \
        check(bytes, devval, size, false, 0, reg, regval, __FILE__, __LINE__)

/* Garbage above the access size, which the emulator must ignore. */
#define DV 0xdeadbeefcafef00dull

TEST(mov_stores_all_sizes)
{
        STORE(BYTES(0x89, 0x08), 4, reg0(RCX) & 0xffffffff);             /* mov [rax], ecx */
        STORE(BYTES(0x48, 0x89, 0x08), 8, reg0(RCX));                    /* mov [rax], rcx */
        STORE(BYTES(0x66, 0x89, 0x08), 2, reg0(RCX) & 0xffff);           /* mov [rax], cx */
        STORE(BYTES(0x88, 0x08), 1, reg0(RCX) & 0xff);                   /* mov [rax], cl */
        STORE(BYTES(0x88, 0x28), 1, (reg0(RCX) >> 8) & 0xff);            /* mov [rax], ch */
        STORE(BYTES(0x88, 0x21), 1, (reg0(RAX) >> 8) & 0xff);            /* mov [rcx], ah */
        STORE(BYTES(0x88, 0x36), 1, (reg0(RDX) >> 8) & 0xff);            /* mov [rsi], dh */
        STORE(BYTES(0x88, 0x3e), 1, (reg0(RBX) >> 8) & 0xff);            /* mov [rsi], bh */
        STORE(BYTES(0x40, 0x88, 0x28), 1, reg0(RBP) & 0xff);             /* mov [rax], bpl */
        STORE(BYTES(0x40, 0x88, 0x20), 1, reg0(RSP) & 0xff);             /* mov [rax], spl */
        STORE(BYTES(0x44, 0x88, 0x00), 1, reg0(R8) & 0xff);              /* mov [rax], r8b */
        STORE(BYTES(0x4c, 0x89, 0x38), 8, reg0(R15));                    /* mov [rax], r15 */
        STORE(BYTES(0x45, 0x89, 0x38), 4, reg0(R15) & 0xffffffff);       /* mov [r8], r15d */
        STORE(BYTES(0x89, 0x54, 0xb7, 0x10), 4, reg0(RDX) & 0xffffffff); /* SIB + disp8 */
        STORE(BYTES(0x89, 0x15, 0x00, 0x10, 0x00, 0x00), 4,
              reg0(RDX) & 0xffffffff);                             /* mov [rip+0x1000], edx */
        STORE(BYTES(0x65, 0x89, 0x08), 4, reg0(RCX) & 0xffffffff); /* gs: override */
}

TEST(mov_immediate_stores)
{
        STORE(BYTES(0xc7, 0x00, 0x78, 0x56, 0x34, 0x12), 4, 0x12345678);
        STORE(BYTES(0x48, 0xc7, 0x00, 0xf0, 0xff, 0xff, 0xff), 8, 0xfffffffffffffff0ull);
        STORE(BYTES(0x48, 0xc7, 0x00, 0x78, 0x56, 0x34, 0x12), 8, 0x12345678);
        STORE(BYTES(0x66, 0xc7, 0x00, 0x34, 0x12), 2, 0x1234);
        STORE(BYTES(0xc6, 0x00, 0xab), 1, 0xab);
        STORE(BYTES(0xc7, 0x40, 0x08, 0xff, 0xff, 0xff, 0xff), 4, 0xffffffff); /* disp8 */
}

TEST(mov_loads_partial_registers)
{
        uint64_t c = reg0(RCX);

        LOAD(BYTES(0x8b, 0x08), DV, 4, RCX, 0xcafef00d);                        /* zero-extends */
        LOAD(BYTES(0x48, 0x8b, 0x08), DV, 8, RCX, DV);                          /* mov rcx, [rax] */
        LOAD(BYTES(0x66, 0x8b, 0x08), DV, 2, RCX, (c & ~0xffffull) | 0xf00d);   /* keeps 63:16 */
        LOAD(BYTES(0x8a, 0x08), DV, 1, RCX, (c & ~0xffull) | 0x0d);             /* keeps 63:8 */
        LOAD(BYTES(0x8a, 0x28), DV, 1, RCX, (c & ~0xff00ull) | 0x0d00);         /* ch */
        LOAD(BYTES(0x8a, 0x20), DV, 1, RAX, (reg0(RAX) & ~0xff00ull) | 0x0d00); /* ah */
        LOAD(BYTES(0x8a, 0x3e), DV, 1, RBX, (reg0(RBX) & ~0xff00ull) | 0x0d00); /* bh */
        LOAD(BYTES(0x40, 0x8a, 0x28), DV, 1, RBP, (reg0(RBP) & ~0xffull) | 0x0d); /* bpl */
        LOAD(BYTES(0x40, 0x8a, 0x38), DV, 1, RDI, (reg0(RDI) & ~0xffull) | 0x0d); /* dil */
        LOAD(BYTES(0x44, 0x8b, 0x38), DV, 4, R15, 0xcafef00d);                    /* r15d */
        LOAD(BYTES(0x4c, 0x8b, 0x38), DV, 8, R15, DV);                            /* r15 */
        LOAD(BYTES(0x66, 0x44, 0x8b, 0x00), DV, 2, R8, (reg0(R8) & ~0xffffull) | 0xf00d);
        LOAD(BYTES(0x8b, 0x0c, 0x25, 0x00, 0x00, 0x00, 0x50), 7, 4, RCX, 7); /* abs via SIB */
}

TEST(movzx_movsx_movsxd)
{
        uint64_t c = reg0(RCX);

        LOAD(BYTES(0x0f, 0xb6, 0x08), DV, 1, RCX, 0x0d); /* movzx ecx, b */
        LOAD(BYTES(0x0f, 0xb6, 0x08), 0x80, 1, RCX, 0x80);
        LOAD(BYTES(0x0f, 0xb7, 0x08), DV, 2, RCX, 0xf00d);       /* movzx ecx, w */
        LOAD(BYTES(0x48, 0x0f, 0xb7, 0x08), DV, 2, RCX, 0xf00d); /* movzx rcx, w */
        LOAD(BYTES(0x66, 0x0f, 0xb6, 0x08), 0x80, 1, RCX, (c & ~0xffffull) | 0x80); /* cx */
        LOAD(BYTES(0x0f, 0xb6, 0x28), 0x80, 1, RBP, 0x80); /* movzx ebp: reg 5 is ebp, not ch */
        LOAD(BYTES(0x0f, 0xbe, 0x08), 0x80, 1, RCX, 0xffffff80); /* movsx ecx, b */
        LOAD(BYTES(0x0f, 0xbe, 0x08), 0x7f, 1, RCX, 0x7f);
        LOAD(BYTES(0x48, 0x0f, 0xbe, 0x08), 0xff, 1, RCX, ~0ull); /* movsx rcx, b */
        LOAD(BYTES(0x48, 0x0f, 0xbf, 0x08), 0x8000, 2, RCX, 0xffffffffffff8000ull);
        LOAD(BYTES(0x0f, 0xbf, 0x08), 0x18000, 2, RCX, 0xffff8000); /* movsx ecx, w */
        LOAD(BYTES(0x66, 0x0f, 0xbe, 0x08), 0x80, 1, RCX, (c & ~0xffffull) | 0xff80);
        LOAD(BYTES(0x48, 0x63, 0x08), 0x80000000, 4, RCX, 0xffffffff80000000ull); /* movsxd */
        LOAD(BYTES(0x48, 0x63, 0x08), 0x7fffffff, 4, RCX, 0x7fffffff);
        LOAD(BYTES(0x63, 0x08), 0x180000000ull, 4, RCX, 0x80000000); /* 32-bit: zero-extends */
}

TEST(moffs_forms)
{
        LOAD(BYTES(0xa1, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x00, 0x00, 0x00), DV, 4, RAX, 0xcafef00d);
        LOAD(BYTES(0x48, 0xa1, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x00, 0x00, 0x00), DV, 8, RAX, DV);
        LOAD(BYTES(0x66, 0xa1, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x00, 0x00, 0x00), DV, 2, RAX,
             (reg0(RAX) & ~0xffffull) | 0xf00d);
        LOAD(BYTES(0xa0, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x00, 0x00, 0x00), DV, 1, RAX,
             (reg0(RAX) & ~0xffull) | 0x0d);
        STORE(BYTES(0xa2, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x00, 0x00, 0x00), 1, reg0(RAX) & 0xff);
        STORE(BYTES(0xa3, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x00, 0x00, 0x00), 4,
              reg0(RAX) & 0xffffffff);
        STORE(BYTES(0x48, 0xa3, 0x08, 0x00, 0x00, 0xd0, 0x00, 0x00, 0x00, 0x00), 8, reg0(RAX));
        /* 67: 32-bit moffs. */
        STORE(BYTES(0x67, 0xa3, 0x00, 0x00, 0x00, 0xd0), 4, reg0(RAX) & 0xffffffff);
}

/* ---- read-modify-write and compare forms ---- */

struct alu_case {
        const uint8_t *b;
        size_t n;
        uint64_t rcx;  /* ecx/cx/cl value before */
        uint64_t mem;  /* device value before */
        bool writes;   /* expects a write back */
        uint64_t wval; /* value written */
        uint64_t rcx_after;
        uint64_t flags; /* expected arithmetic flags */
        unsigned size;
};

static void run_alu(const struct alu_case *c, const char *file, int line)
{
        struct x86_emul_regs r;
        struct fake_dev d = {.value = c->mem};
        int rc;

        regs_init(&r);
        r.gpr[RCX] = c->rcx;
        /* Every arithmetic flag set before, so that cleared ones show. */
        r.rflags = FL0 | X86_RFLAGS_ARITH;
        rc = run_mode(c->b, c->n, X86_MODE_LONG64, &r, &d, NULL);
        if (rc) {
                TEST_FAIL_AT(file, line, "rc %d", rc);
                return;
        }
        if (d.n != (c->writes ? 2u : 1u) || d.log[0].write || d.log[0].size != c->size)
                TEST_FAIL_AT(file, line, "accesses %u, first write %d size %u", d.n, d.log[0].write,
                             d.log[0].size);
        if (c->writes && (!d.log[1].write || d.log[1].val != c->wval || d.log[1].size != c->size))
                TEST_FAIL_AT(file, line, "write-back 0x%llx, expected 0x%llx",
                             (unsigned long long)d.log[1].val, (unsigned long long)c->wval);
        if (r.gpr[RCX] != c->rcx_after)
                TEST_FAIL_AT(file, line, "rcx 0x%llx, expected 0x%llx",
                             (unsigned long long)r.gpr[RCX], (unsigned long long)c->rcx_after);
        if (r.rflags != (FL0 | c->flags))
                TEST_FAIL_AT(file, line, "rflags 0x%llx, expected 0x%llx",
                             (unsigned long long)r.rflags, (unsigned long long)(FL0 | c->flags));
        if (r.rip != RIP0 + c->n)
                TEST_FAIL_AT(file, line, "rip");
}
#define ALU(...)                                    \
        do {                                        \
                struct alu_case _c = {__VA_ARGS__}; \
                run_alu(&_c, __FILE__, __LINE__);   \
        } while (0)

#define CF X86_RFLAGS_CF
#define PF X86_RFLAGS_PF
#define AF X86_RFLAGS_AF
#define ZF X86_RFLAGS_ZF
#define SF X86_RFLAGS_SF
#define OF X86_RFLAGS_OF

TEST(alu_memory_forms)
{
        /* and [rax], ecx: AF (undefined) cleared as the CPUs do, CF/OF cleared, PF of 0x00. */
        ALU(BYTES(0x21, 0x08), 0x0f0f0f0f, 0xff00ff00, true, 0x0f000f00, 0x0f0f0f0f, PF, 4);
        /* or [rax], ecx */
        ALU(BYTES(0x09, 0x08), 0x80000001, 0x2, true, 0x80000003, 0x80000001, SF | PF, 4);
        /* xor [rax], ecx: zero */
        ALU(BYTES(0x31, 0x08), 0x1234, 0x1234, true, 0, 0x1234, ZF | PF, 4);
        /* cmp ecx, [rax]: 1 - 2 */
        ALU(BYTES(0x3b, 0x08), 1, 2, false, 0, 1, CF | SF | AF | PF, 4);
        /* cmp [rax], ecx: 0x80000000 - 1 overflows */
        ALU(BYTES(0x39, 0x08), 1, 0x80000000, false, 0, 1, OF | AF | PF, 4);
        /* test [rax], ecx */
        ALU(BYTES(0x85, 0x08), 0xf0, 0x0f, false, 0, 0xf0, ZF | PF, 4);
        /* test dword [rax], imm32 */
        ALU(BYTES(0xf7, 0x00, 0x78, 0x56, 0x34, 0x12), 0, 0x10000000, false, 0, 0, PF, 4);
        /* test byte [rax], 0x80: SF, odd parity */
        ALU(BYTES(0xf6, 0x00, 0x80), 0, 0x80, false, 0, 0, SF, 1);
        /* and dword [rax], -2 (imm8 sign-extended) */
        ALU(BYTES(0x83, 0x20, 0xfe), 0, 0x3, true, 0x2, 0, 0, 4);
        /* or dword [rax], 0x100 */
        ALU(BYTES(0x81, 0x08, 0x00, 0x01, 0x00, 0x00), 0, 0x1, true, 0x101, 0, 0, 4);
        /* cmp byte [rax], 5 with 3 */
        ALU(BYTES(0x80, 0x38, 0x05), 0, 3, false, 0, 0, CF | SF | AF, 1);
        /* cmp qword [rax], -1 */
        ALU(BYTES(0x48, 0x83, 0x38, 0xff), 0, ~0ull, false, 0, 0, ZF | PF, 8);
        /* add [rax], ecx: carry out */
        ALU(BYTES(0x01, 0x08), 1, 0xffffffff, true, 0, 1, CF | ZF | PF | AF, 4);
        /* add [rax], ecx: signed overflow */
        ALU(BYTES(0x01, 0x08), 1, 0x7fffffff, true, 0x80000000, 1, OF | SF | AF | PF, 4);
        /* sub dword [rax], 1 */
        ALU(BYTES(0x83, 0x28, 0x01), 0, 0x10, true, 0xf, 0, AF | PF, 4);
        /* and ecx, [rax]: register destination, 32-bit zero-extends */
        ALU(BYTES(0x23, 0x08), 0xffffffff0000ffffull, 0x12345678, false, 0, 0x5678, PF, 4);
        /* sub ecx, [rax] */
        ALU(BYTES(0x2b, 0x08), 5, 7, false, 0, 0xfffffffe, CF | SF | AF, 4);
        /* or cl, [rax]: byte register destination keeps the rest */
        ALU(BYTES(0x0a, 0x08), 0x1100, 0x01, false, 0, 0x1101, 0, 1);
        /* add word [rax], cx */
        ALU(BYTES(0x66, 0x01, 0x08), 0x8000, 0x8000, true, 0, 0x8000, CF | OF | ZF | PF, 2);
        /* and ch, [rax] with a high-byte register */
        ALU(BYTES(0x22, 0x28), 0xff00, 0x0f, false, 0, 0x0f00, PF, 1);
}

#if defined(__x86_64__)
/* Flags of the real CPU for `op b, a` (AT&T: a is the destination), AF included. */
#define HW_OP(name, insn, type, cons)                                                \
        static uint64_t hw_##name(uint64_t a, uint64_t b, uint64_t *res)             \
        {                                                                            \
                type x = (type)a, y = (type)b;                                       \
                uint64_t ax;                                                         \
                __asm__(insn " %[y], %[x]\n\tlahf\n\tseto %%al"                      \
                        : [x] "+" cons(x), "=&a"(ax)                                 \
                        : [y] cons(y)                                                \
                        : "cc");                                                     \
                *res = x;                                                            \
                return ((ax >> 8) & (CF | PF | AF | ZF | SF)) | ((ax & 1) ? OF : 0); \
        }
#define HW_SIZES(op)                      \
        HW_OP(op##8, #op, uint8_t, "q")   \
        HW_OP(op##16, #op, uint16_t, "r") \
        HW_OP(op##32, #op, uint32_t, "r") HW_OP(op##64, #op, uint64_t, "r")
HW_SIZES(add)
HW_SIZES(sub)
HW_SIZES(cmp)
HW_SIZES(and)
HW_SIZES(or)
HW_SIZES(xor)
HW_SIZES(test)

typedef uint64_t (*hw_fn)(uint64_t, uint64_t, uint64_t *);

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
        rnd_state ^= rnd_state << 13;
        rnd_state ^= rnd_state >> 7;
        rnd_state ^= rnd_state << 17;
        return rnd_state;
}

TEST(alu_flags_match_the_cpu)
{
        static const struct {
                uint8_t opc; /* Ev,Gv form; the byte form is opc - 1 */
                bool writes, logical;
                hw_fn hw[4];
        } ops[] = {
            {0x01, true, false, {hw_add8, hw_add16, hw_add32, hw_add64}},
            {0x29, true, false, {hw_sub8, hw_sub16, hw_sub32, hw_sub64}},
            {0x39, false, false, {hw_cmp8, hw_cmp16, hw_cmp32, hw_cmp64}},
            {0x21, true, true, {hw_and8, hw_and16, hw_and32, hw_and64}},
            {0x09, true, true, {hw_or8, hw_or16, hw_or32, hw_or64}},
            {0x31, true, true, {hw_xor8, hw_xor16, hw_xor32, hw_xor64}},
            {0x85, false, true, {hw_test8, hw_test16, hw_test32, hw_test64}},
        };
        static const uint64_t edge[] = {0,
                                        1,
                                        0x7f,
                                        0x80,
                                        0xff,
                                        0x7fff,
                                        0x8000,
                                        0xffff,
                                        0x7fffffff,
                                        0x80000000,
                                        0xffffffff,
                                        0x7fffffffffffffffull,
                                        0x8000000000000000ull,
                                        ~0ull};
        unsigned fails = 0;

        for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
                for (unsigned s = 0; s < 4; s++) {
                        for (unsigned k = 0; k < 600 && fails < 5; k++) {
                                uint64_t a, b, hw_res, hw_fl, mask;
                                uint8_t enc[3];
                                size_t n = 0;
                                struct x86_emul_regs r;
                                struct fake_dev d;
                                int rc;

                                if (k < 14 * 14) {
                                        a = edge[k / 14];
                                        b = edge[k % 14];
                                } else {
                                        a = rnd() >> (rnd() & 63);
                                        b = rnd() >> (rnd() & 63);
                                }
                                if (s == 1)
                                        enc[n++] = 0x66;
                                if (s == 3)
                                        enc[n++] = 0x48;
                                enc[n++] = (uint8_t)(s == 0 ? ops[o].opc - 1 : ops[o].opc);
                                enc[n++] = 0x08; /* [rax], ecx */
                                regs_init(&r);
                                r.gpr[RCX] = b;
                                r.rflags = FL0 | (rnd() & X86_RFLAGS_ARITH);
                                memset(&d, 0, sizeof(d));
                                d.value = a;
                                hw_fl = ops[o].hw[s](a, b, &hw_res);
                                rc = run_mode(enc, n, X86_MODE_LONG64, &r, &d, NULL);
                                mask = X86_RFLAGS_ARITH;
                                if (rc || (r.rflags & mask) != (hw_fl & mask) ||
                                    (r.rflags & ~X86_RFLAGS_ARITH) != FL0 ||
                                    d.n != (ops[o].writes ? 2u : 1u) ||
                                    (ops[o].writes && d.log[1].val != hw_res)) {
                                        TEST_FAIL_AT(__FILE__, __LINE__,
                                                     "op %02x size %u a 0x%llx b 0x%llx: rc %d "
                                                     "flags 0x%llx cpu 0x%llx, wrote 0x%llx cpu "
                                                     "0x%llx",
                                                     enc[n - 2], 1u << s, (unsigned long long)a,
                                                     (unsigned long long)b, rc,
                                                     (unsigned long long)r.rflags,
                                                     (unsigned long long)hw_fl,
                                                     (unsigned long long)d.log[1].val,
                                                     (unsigned long long)hw_res);
                                        fails++;
                                }
                        }
                }
        }
}

/*
 * Every read-modify-write and compare instruction against the real CPU: the same instruction
 * with the same memory value, register operand, rAX and RFLAGS runs on the host's own memory
 * (a pointer in a register; 128 bytes below RSP skipped, which PUSHF would clobber in the red
 * zone) and through the emulator on the fake device. Compared: the value written back, the
 * register operand and rAX (all 64 bits: zero-extension, CMPXCHG's rAX on success and
 * failure), and every arithmetic flag (also the logical ones' AF, undefined in the SDM; BT*
 * define only CF, the rest must stay as they were in the emulation). BT* with a register bit
 * offset address an element before or after the operand: the address from x86_mmio_operand
 * must be the element the CPU changed.
 */
#define HW_RMW(name, text)                                                           \
        static uint64_t name(void *p, uint64_t *y_io, uint64_t *rax_io, uint64_t fl) \
        {                                                                            \
                uint64_t y = *y_io, a = *rax_io, f;                                  \
                __asm__ volatile("sub $128, %%rsp\n\tpush %[fi]\n\tpopfq\n\t" text   \
                                 "\n\tpushfq\n\tpop %[f]\n\tadd $128, %%rsp"         \
                                 : [f] "=&r"(f), [y] "+q"(y), "+a"(a)                \
                                 : [fi] "r"(fl), [p] "r"(p)                          \
                                 : "cc", "memory");                                  \
                *y_io = y;                                                           \
                *rax_io = a;                                                         \
                return f;                                                            \
        }
HW_RMW(cpu_add8, "addb %b[y], (%[p])")
HW_RMW(cpu_add16, "addw %w[y], (%[p])")
HW_RMW(cpu_add32, "addl %k[y], (%[p])")
HW_RMW(cpu_add64, "addq %q[y], (%[p])")
HW_RMW(cpu_adc8, "adcb %b[y], (%[p])")
HW_RMW(cpu_adc16, "adcw %w[y], (%[p])")
HW_RMW(cpu_adc32, "adcl %k[y], (%[p])")
HW_RMW(cpu_adc64, "adcq %q[y], (%[p])")
HW_RMW(cpu_sub8, "subb %b[y], (%[p])")
HW_RMW(cpu_sub16, "subw %w[y], (%[p])")
HW_RMW(cpu_sub32, "subl %k[y], (%[p])")
HW_RMW(cpu_sub64, "subq %q[y], (%[p])")
HW_RMW(cpu_sbb8, "sbbb %b[y], (%[p])")
HW_RMW(cpu_sbb16, "sbbw %w[y], (%[p])")
HW_RMW(cpu_sbb32, "sbbl %k[y], (%[p])")
HW_RMW(cpu_sbb64, "sbbq %q[y], (%[p])")
HW_RMW(cpu_cmp8, "cmpb %b[y], (%[p])")
HW_RMW(cpu_cmp16, "cmpw %w[y], (%[p])")
HW_RMW(cpu_cmp32, "cmpl %k[y], (%[p])")
HW_RMW(cpu_cmp64, "cmpq %q[y], (%[p])")
HW_RMW(cpu_and8, "andb %b[y], (%[p])")
HW_RMW(cpu_and16, "andw %w[y], (%[p])")
HW_RMW(cpu_and32, "andl %k[y], (%[p])")
HW_RMW(cpu_and64, "andq %q[y], (%[p])")
HW_RMW(cpu_or8, "orb %b[y], (%[p])")
HW_RMW(cpu_or16, "orw %w[y], (%[p])")
HW_RMW(cpu_or32, "orl %k[y], (%[p])")
HW_RMW(cpu_or64, "orq %q[y], (%[p])")
HW_RMW(cpu_xor8, "xorb %b[y], (%[p])")
HW_RMW(cpu_xor16, "xorw %w[y], (%[p])")
HW_RMW(cpu_xor32, "xorl %k[y], (%[p])")
HW_RMW(cpu_xor64, "xorq %q[y], (%[p])")
HW_RMW(cpu_test8, "testb %b[y], (%[p])")
HW_RMW(cpu_test16, "testw %w[y], (%[p])")
HW_RMW(cpu_test32, "testl %k[y], (%[p])")
HW_RMW(cpu_test64, "testq %q[y], (%[p])")
HW_RMW(cpu_inc8, "incb (%[p])")
HW_RMW(cpu_inc16, "incw (%[p])")
HW_RMW(cpu_inc32, "incl (%[p])")
HW_RMW(cpu_inc64, "incq (%[p])")
HW_RMW(cpu_dec8, "decb (%[p])")
HW_RMW(cpu_dec16, "decw (%[p])")
HW_RMW(cpu_dec32, "decl (%[p])")
HW_RMW(cpu_dec64, "decq (%[p])")
HW_RMW(cpu_not8, "notb (%[p])")
HW_RMW(cpu_not16, "notw (%[p])")
HW_RMW(cpu_not32, "notl (%[p])")
HW_RMW(cpu_not64, "notq (%[p])")
HW_RMW(cpu_neg8, "negb (%[p])")
HW_RMW(cpu_neg16, "negw (%[p])")
HW_RMW(cpu_neg32, "negl (%[p])")
HW_RMW(cpu_neg64, "negq (%[p])")
HW_RMW(cpu_xchg8, "xchgb %b[y], (%[p])")
HW_RMW(cpu_xchg16, "xchgw %w[y], (%[p])")
HW_RMW(cpu_xchg32, "xchgl %k[y], (%[p])")
HW_RMW(cpu_xchg64, "xchgq %q[y], (%[p])")
HW_RMW(cpu_xadd8, "xaddb %b[y], (%[p])")
HW_RMW(cpu_xadd16, "xaddw %w[y], (%[p])")
HW_RMW(cpu_xadd32, "xaddl %k[y], (%[p])")
HW_RMW(cpu_xadd64, "xaddq %q[y], (%[p])")
HW_RMW(cpu_cmpxchg8, "cmpxchgb %b[y], (%[p])")
HW_RMW(cpu_cmpxchg16, "cmpxchgw %w[y], (%[p])")
HW_RMW(cpu_cmpxchg32, "cmpxchgl %k[y], (%[p])")
HW_RMW(cpu_cmpxchg64, "cmpxchgq %q[y], (%[p])")
HW_RMW(cpu_bt16, "btw %w[y], (%[p])")
HW_RMW(cpu_bt32, "btl %k[y], (%[p])")
HW_RMW(cpu_bt64, "btq %q[y], (%[p])")
HW_RMW(cpu_bts16, "btsw %w[y], (%[p])")
HW_RMW(cpu_bts32, "btsl %k[y], (%[p])")
HW_RMW(cpu_bts64, "btsq %q[y], (%[p])")
HW_RMW(cpu_btr16, "btrw %w[y], (%[p])")
HW_RMW(cpu_btr32, "btrl %k[y], (%[p])")
HW_RMW(cpu_btr64, "btrq %q[y], (%[p])")
HW_RMW(cpu_btc16, "btcw %w[y], (%[p])")
HW_RMW(cpu_btc32, "btcl %k[y], (%[p])")
HW_RMW(cpu_btc64, "btcq %q[y], (%[p])")

typedef uint64_t (*hw_rmw_fn)(void *, uint64_t *, uint64_t *, uint64_t);

enum rmw_kind {
        RMW_ARITH,
        RMW_LOGIC,
        RMW_READ_ARITH,
        RMW_READ_LOGIC,
        RMW_XCHG,
        RMW_BT,
        RMW_BT_READ
};

static const struct {
        const char *name;
        uint8_t op[2], oplen; /* opcode of the 16/32/64-bit form (after 66 / REX.W) */
        uint8_t modrm;        /* [rax] with ecx or the group's /digit */
        enum rmw_kind kind;
        hw_rmw_fn hw[4];
} rmw_ops[] = {
    {"add", {0x01}, 1, 0x08, RMW_ARITH, {cpu_add8, cpu_add16, cpu_add32, cpu_add64}},
    {"adc", {0x11}, 1, 0x08, RMW_ARITH, {cpu_adc8, cpu_adc16, cpu_adc32, cpu_adc64}},
    {"sub", {0x29}, 1, 0x08, RMW_ARITH, {cpu_sub8, cpu_sub16, cpu_sub32, cpu_sub64}},
    {"sbb", {0x19}, 1, 0x08, RMW_ARITH, {cpu_sbb8, cpu_sbb16, cpu_sbb32, cpu_sbb64}},
    {"cmp", {0x39}, 1, 0x08, RMW_READ_ARITH, {cpu_cmp8, cpu_cmp16, cpu_cmp32, cpu_cmp64}},
    {"and", {0x21}, 1, 0x08, RMW_LOGIC, {cpu_and8, cpu_and16, cpu_and32, cpu_and64}},
    {"or", {0x09}, 1, 0x08, RMW_LOGIC, {cpu_or8, cpu_or16, cpu_or32, cpu_or64}},
    {"xor", {0x31}, 1, 0x08, RMW_LOGIC, {cpu_xor8, cpu_xor16, cpu_xor32, cpu_xor64}},
    {"test", {0x85}, 1, 0x08, RMW_READ_LOGIC, {cpu_test8, cpu_test16, cpu_test32, cpu_test64}},
    {"inc", {0xff}, 1, 0x00, RMW_ARITH, {cpu_inc8, cpu_inc16, cpu_inc32, cpu_inc64}},
    {"dec", {0xff}, 1, 0x08, RMW_ARITH, {cpu_dec8, cpu_dec16, cpu_dec32, cpu_dec64}},
    {"not", {0xf7}, 1, 0x10, RMW_ARITH, {cpu_not8, cpu_not16, cpu_not32, cpu_not64}},
    {"neg", {0xf7}, 1, 0x18, RMW_ARITH, {cpu_neg8, cpu_neg16, cpu_neg32, cpu_neg64}},
    {"xchg", {0x87}, 1, 0x08, RMW_XCHG, {cpu_xchg8, cpu_xchg16, cpu_xchg32, cpu_xchg64}},
    {"xadd", {0x0f, 0xc1}, 2, 0x08, RMW_ARITH, {cpu_xadd8, cpu_xadd16, cpu_xadd32, cpu_xadd64}},
    {"cmpxchg",
     {0x0f, 0xb1},
     2,
     0x08,
     RMW_ARITH,
     {cpu_cmpxchg8, cpu_cmpxchg16, cpu_cmpxchg32, cpu_cmpxchg64}},
    {"bt", {0x0f, 0xa3}, 2, 0x08, RMW_BT_READ, {NULL, cpu_bt16, cpu_bt32, cpu_bt64}},
    {"bts", {0x0f, 0xab}, 2, 0x08, RMW_BT, {NULL, cpu_bts16, cpu_bts32, cpu_bts64}},
    {"btr", {0x0f, 0xb3}, 2, 0x08, RMW_BT, {NULL, cpu_btr16, cpu_btr32, cpu_btr64}},
    {"btc", {0x0f, 0xbb}, 2, 0x08, RMW_BT, {NULL, cpu_btc16, cpu_btc32, cpu_btc64}},
};

/* Encodes rmw_ops[o] for size 1 << s: 66 / REX.W, the opcode (its byte form one lower). */
static size_t rmw_encode(size_t o, unsigned s, uint8_t *enc)
{
        size_t n = 0;

        if (s == 1)
                enc[n++] = 0x66;
        if (s == 3)
                enc[n++] = 0x48;
        for (unsigned i = 0; i < rmw_ops[o].oplen; i++)
                enc[n++] = rmw_ops[o].op[i];
        if (s == 0)
                enc[n - 1]--; /* 01 -> 00, FF -> FE, F7 -> F6, 0F C1 -> 0F C0, ... */
        enc[n++] = rmw_ops[o].modrm;
        return n;
}

/* One comparison; false (after reporting) on a difference. */
static bool rmw_one(size_t o, unsigned s, uint64_t mem, uint64_t y, uint64_t rax, uint64_t fl,
                    int line)
{
        unsigned size = 1u << s;
        uint64_t m = size == 8 ? ~0ull : (1ull << (8 * size)) - 1;
        enum rmw_kind kind = rmw_ops[o].kind;
        bool bt = kind == RMW_BT || kind == RMW_BT_READ;
        /* Eight elements; the operand is the fourth, so BT offsets of -3..+4 elements fit. */
        uint64_t buf[8] = {0}, before[8], hy = y, hrax = rax, hfl, mask;
        uint8_t *base = (uint8_t *)buf + 3 * size, enc[6];
        size_t n = rmw_encode(o, s, enc);
        struct x86_emul_regs r;
        struct x86_insn in;
        struct fake_dev d;
        uint64_t lin, seg[6] = {0}, idx;
        unsigned lsize;
        int rc;

        for (unsigned i = 0; i < 8; i++)
                buf[i] = rnd();
        memcpy(base, &mem, size);
        memcpy(before, buf, sizeof(buf));
        hfl = rmw_ops[o].hw[s](base, &hy, &hrax, fl);

        regs_init(&r);
        r.gpr[RAX] = (uint64_t)(uintptr_t)base;
        r.gpr[RCX] = y;
        if (x86_decode(enc, n, X86_MODE_LONG64, &in) != 0 ||
            x86_mmio_operand(&in, &r, seg, &lin, &lsize) != 0 || lsize != size) {
                TEST_FAIL_AT(__FILE__, line, "%s size %u: not decoded or no operand",
                             rmw_ops[o].name, size);
                return false;
        }
        idx = (lin - (uint64_t)(uintptr_t)buf) / size;
        if (lin < (uint64_t)(uintptr_t)buf || (lin - (uint64_t)(uintptr_t)buf) % size || idx >= 8 ||
            (!bt && lin != (uint64_t)(uintptr_t)base)) {
                TEST_FAIL_AT(__FILE__, line, "%s size %u offset %lld: operand at %+lld bytes",
                             rmw_ops[o].name, size, (long long)y,
                             (long long)(lin - (uint64_t)(uintptr_t)base));
                return false;
        }
        memset(&d, 0, sizeof(d));
        memcpy(&d.value, (uint8_t *)before + idx * size, size);
        r.gpr[RAX] = rax;
        r.rflags = fl;
        rc = x86_emulate_mmio(&in, &r, DEV, dev_access, &d);

        mask = X86_RFLAGS_ARITH;
        if (bt)
                mask = X86_RFLAGS_CF;
        bool ok = rc == 0 && (r.rflags & mask) == (hfl & mask) &&
                  (r.rflags & ~mask) == (fl & ~mask) && r.gpr[RCX] == hy && r.gpr[RAX] == hrax;
        bool writes = kind != RMW_READ_ARITH && kind != RMW_READ_LOGIC && kind != RMW_BT_READ;
        uint64_t cpu_val = 0;

        memcpy(&cpu_val, (uint8_t *)buf + idx * size, size);
        if (writes)
                ok = ok && d.n == 2 && d.log[1].write && d.log[1].size == size &&
                     (d.log[1].val & m) == cpu_val;
        else
                ok = ok && d.n == 1 && memcmp(buf, before, sizeof(buf)) == 0;
        /* The CPU changed no element other than the one the emulation addressed. */
        for (unsigned i = 0; i < 8 * 8; i++)
                if (i / size != idx && ((uint8_t *)buf)[i] != ((uint8_t *)before)[i])
                        ok = false;
        if (!ok)
                TEST_FAIL_AT(__FILE__, line,
                             "%s size %u mem 0x%llx y 0x%llx rax 0x%llx fl 0x%llx: rc %d, flags "
                             "0x%llx cpu 0x%llx, wrote 0x%llx (%u accesses) cpu 0x%llx, rcx "
                             "0x%llx cpu 0x%llx, rax 0x%llx cpu 0x%llx",
                             rmw_ops[o].name, size, (unsigned long long)mem, (unsigned long long)y,
                             (unsigned long long)rax, (unsigned long long)fl, rc,
                             (unsigned long long)r.rflags, (unsigned long long)hfl,
                             (unsigned long long)d.log[1].val, d.n, (unsigned long long)cpu_val,
                             (unsigned long long)r.gpr[RCX], (unsigned long long)hy,
                             (unsigned long long)r.gpr[RAX], (unsigned long long)hrax);
        return ok;
}

TEST(rmw_instructions_match_the_cpu)
{
        static const uint64_t edge[] = {0,      1,      0x7f,       0x80,       0xff,
                                        0x7fff, 0x8000, 0x7fffffff, 0x80000000, ~0ull};
        unsigned fails = 0;

        for (size_t o = 0; o < sizeof(rmw_ops) / sizeof(rmw_ops[0]); o++) {
                bool bt = rmw_ops[o].kind == RMW_BT || rmw_ops[o].kind == RMW_BT_READ;

                for (unsigned s = bt ? 1 : 0; s < 4; s++) {
                        unsigned bits = 8u << s;

                        for (unsigned k = 0; k < 1200 && fails < 8; k++) {
                                uint64_t mem, y, rax, fl;

                                if (k < 100) {
                                        mem = edge[k / 10];
                                        y = edge[k % 10];
                                } else {
                                        mem = rnd() >> (rnd() & 63);
                                        y = rnd() >> (rnd() & 63);
                                }
                                /* BT*: bit offsets from 3 elements before to 4 after. */
                                if (bt)
                                        y = (uint64_t)((int64_t)(rnd() % (7 * bits)) -
                                                       3 * (int64_t)bits);
                                rax = (k & 1) ? mem : rnd(); /* CMPXCHG: equal half the time */
                                fl = FL0 | (rnd() & X86_RFLAGS_ARITH);
                                if (!rmw_one(o, s, mem, y, rax, fl, __LINE__))
                                        fails++;
                        }
                }
        }
}
#endif

/* ---- other modes ---- */

TEST(protected_and_real_mode)
{
        struct x86_emul_regs r;
        struct fake_dev d;
        unsigned len;

        /* 32-bit: mov [eax], ecx is 4 bytes; 66: 2 bytes; EIP wraps at 4 GiB. */
        regs_init(&r);
        memset(&d, 0, sizeof(d));
        r.rip = 0xfffffffe;
        EXPECT_EQ(run_mode(BYTES(0x89, 0x08), X86_MODE_PROT32, &r, &d, &len), 0);
        EXPECT_EQ(d.log[0].size, 4);
        EXPECT_EQ(d.log[0].val, reg0(RCX) & 0xffffffff);
        EXPECT_EQ(r.rip, 0);
        regs_init(&r);
        memset(&d, 0, sizeof(d));
        EXPECT_EQ(run_mode(BYTES(0x66, 0x89, 0x08), X86_MODE_PROT32, &r, &d, &len), 0);
        EXPECT_EQ(d.log[0].size, 2);
        EXPECT_EQ(r.rip, RIP0 + 3);
        /* 32-bit: 63 is ARPL, not MOVSXD. */
        regs_init(&r);
        memset(&d, 0, sizeof(d));
        EXPECT_EQ(run_mode(BYTES(0x63, 0x08), X86_MODE_PROT32, &r, &d, &len), -KEEL_ENOTSUP);
        EXPECT_EQ(d.n, 0);
        /* 16-bit: mov [bx+si], cx is 2 bytes; mov cx, [bx+si] keeps the upper bits. */
        regs_init(&r);
        memset(&d, 0, sizeof(d));
        d.value = 0xabcd;
        r.rip = 0xffff;
        EXPECT_EQ(run_mode(BYTES(0x8b, 0x08), X86_MODE_REAL16, &r, &d, &len), 0);
        EXPECT_EQ(d.log[0].size, 2);
        EXPECT_EQ(r.gpr[RCX], (reg0(RCX) & ~0xffffull) | 0xabcd);
        EXPECT_EQ(r.rip, 1);
        /* 16-bit with 66: 32-bit access. */
        regs_init(&r);
        memset(&d, 0, sizeof(d));
        EXPECT_EQ(run_mode(BYTES(0x66, 0x89, 0x08), X86_MODE_REAL16, &r, &d, &len), 0);
        EXPECT_EQ(d.log[0].size, 4);
}

/* ---- refusals ---- */

static void refused(const uint8_t *b, size_t n, const char *file, int line)
{
        struct x86_emul_regs r;
        struct fake_dev d = {.value = DV};
        int rc;

        regs_init(&r);
        rc = run_mode(b, n, X86_MODE_LONG64, &r, &d, NULL);
        if (rc != -KEEL_ENOTSUP)
                TEST_FAIL_AT(file, line, "rc %d, expected -KEEL_ENOTSUP", rc);
        if (d.n != 0)
                TEST_FAIL_AT(file, line, "%u device accesses", d.n);
        if (r.rip != RIP0 || r.rflags != FL0)
                TEST_FAIL_AT(file, line, "rip/rflags changed");
        expect_other_regs(&r, NONE, file, line);
}
#define REFUSED(bytes) refused(bytes, __FILE__, __LINE__)

TEST(refusals)
{
        REFUSED(BYTES(0xf3, 0xa5));             /* rep movsd: x86_emulate_string's */
        REFUSED(BYTES(0xa5));                   /* movsd */
        REFUSED(BYTES(0xf3, 0xab));             /* rep stosd */
        REFUSED(BYTES(0xc5, 0xf9, 0x7e, 0x00)); /* vmovd [rax], xmm0 */
        REFUSED(BYTES(0xc5, 0xfa, 0x6f, 0x00)); /* vmovdqu xmm0, [rax] */
        REFUSED(BYTES(0x0f, 0xc3, 0x08));       /* movnti [rax], ecx */
        REFUSED(BYTES(0x89, 0xc8));             /* mov eax, ecx: no memory operand */
        REFUSED(BYTES(0x0f, 0xb6, 0xc8));       /* movzx ecx, al */
        REFUSED(BYTES(0x21, 0xc8));             /* and eax, ecx */
        REFUSED(BYTES(0x87, 0xc8));             /* xchg eax, ecx */
        REFUSED(BYTES(0xff, 0xc0));             /* inc eax */
        REFUSED(BYTES(0x0f, 0xa3, 0xc8));       /* bt eax, ecx */
        REFUSED(BYTES(0x8d, 0x08));             /* lea ecx, [rax] */
        REFUSED(BYTES(0x0f, 0xc7, 0x08));       /* cmpxchg8b [rax] */
        REFUSED(BYTES(0xd1, 0x20));             /* shl dword [rax], 1 */
        REFUSED(BYTES(0xff, 0x30));             /* push qword [rax]: x86_emulate_stack's */
        REFUSED(BYTES(0xff, 0x10));             /* call [rax]: x86_emulate_stack's */
        REFUSED(BYTES(0x0f, 0x94, 0x00));       /* sete [rax] */
        REFUSED(BYTES(0x0f, 0x01, 0xe0));       /* smsw eax: no memory operand */
        REFUSED(BYTES(0x0f, 0x01, 0x08));       /* sidt [rax] */
        REFUSED(BYTES(0x0f, 0x01, 0x30));       /* lmsw [rax] */
        REFUSED(BYTES(0xf3, 0x0f, 0xbc, 0x08)); /* tzcnt ecx, [rax] */
        REFUSED(BYTES(0xf3, 0x0f, 0xbd, 0x08)); /* lzcnt ecx, [rax] */
        REFUSED(BYTES(0xf2, 0x0f, 0x6f, 0x08)); /* no F2 form of 0F 6F */
        REFUSED(BYTES(0xf3, 0x0f, 0x6e, 0x08)); /* no F3 form of 0F 6E */
        REFUSED(BYTES(0xf2, 0x0f, 0x28, 0x08)); /* no F2 form of 0F 28 */
        REFUSED(BYTES(0x0f, 0xd6, 0x08));       /* 0F D6 is MOVQ only with 66 */
        REFUSED(BYTES(0xc5, 0xf8, 0x10, 0x08)); /* vmovups xmm1, [rax] */
        REFUSED(BYTES(0x0f, 0x10, 0xc8));       /* movups xmm1, xmm0: no memory operand */
}

/*
 * SSE and MMX moves: the access sizes (16 bytes as two 8-byte halves, low first), the
 * register x86_mmio_vreg names (XMM n with REX.R, 16 + MMX n without) and which way, the
 * value stored from regs->vec, a load's zero-extension of the register.
 */
static void vec_case(const uint8_t *b, size_t n, int vreg, bool load, unsigned size,
                     const char *file, int line)
{
        static const uint8_t pat[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
        struct x86_emul_regs r;
        struct fake_dev d = {.value = 0x8877665544332211ull};
        struct x86_insn in;
        bool ld = !load;
        unsigned accesses = size == 16 ? 2 : 1;
        uint64_t want[2] = {0, 0};

        if (x86_decode(b, n, X86_MODE_LONG64, &in) != 0) {
                TEST_FAIL_AT(file, line, "not decoded");
                return;
        }
        if (x86_mmio_vreg(&in, &ld) != vreg || ld != load)
                TEST_FAIL_AT(file, line, "vreg %d load %d", x86_mmio_vreg(&in, &ld), ld);
        regs_init(&r);
        memcpy(r.vec, pat, 16);
        if (x86_emulate_mmio(&in, &r, DEV, dev_access, &d) != 0 || r.rip != RIP0 + n ||
            r.rflags != FL0 || d.n != accesses) {
                TEST_FAIL_AT(file, line, "rc, rip, flags or %u accesses", d.n);
                return;
        }
        expect_other_regs(&r, NONE, file, line);
        for (unsigned i = 0; i < accesses; i++)
                if (d.log[i].gpa != DEV + 8 * i || d.log[i].size != (size == 16 ? 8 : size) ||
                    d.log[i].write == load)
                        TEST_FAIL_AT(file, line, "access %u: gpa %#llx size %u write %d", i,
                                     (unsigned long long)d.log[i].gpa, d.log[i].size,
                                     d.log[i].write);
        if (load) {
                want[0] = size == 4 ? 0x44332211ull : 0x8877665544332211ull;
                want[1] = size == 16 ? 0x8877665544332211ull : 0;
                if (memcmp(r.vec, want, 16) != 0)
                        TEST_FAIL_AT(file, line, "register %#llx %#llx",
                                     (unsigned long long)((uint64_t *)r.vec)[0],
                                     (unsigned long long)((uint64_t *)r.vec)[1]);
        } else {
                memcpy(want, pat, 16);
                if (d.log[0].val != want[0] || (size == 16 && d.log[1].val != want[1]))
                        TEST_FAIL_AT(file, line, "stored %#llx %#llx",
                                     (unsigned long long)d.log[0].val,
                                     (unsigned long long)d.log[1].val);
        }
}
#define VEC(bytes, vreg, load, size) vec_case(bytes, vreg, load, size, __FILE__, __LINE__)

TEST(sse_and_mmx_moves)
{
        VEC(BYTES(0x0f, 0x10, 0x08), 1, true, 16);              /* movups xmm1, [rax] */
        VEC(BYTES(0x66, 0x0f, 0x11, 0x10), 2, false, 16);       /* movupd [rax], xmm2 */
        VEC(BYTES(0xf3, 0x0f, 0x10, 0x18), 3, true, 4);         /* movss xmm3, [rax] */
        VEC(BYTES(0xf2, 0x0f, 0x11, 0x20), 4, false, 8);        /* movsd [rax], xmm4 */
        VEC(BYTES(0x44, 0x0f, 0x29, 0x08), 9, false, 16);       /* movaps [rax], xmm9 */
        VEC(BYTES(0x66, 0x0f, 0x28, 0x08), 1, true, 16);        /* movapd xmm1, [rax] */
        VEC(BYTES(0x66, 0x44, 0x0f, 0x6f, 0x38), 15, true, 16); /* movdqa xmm15, [rax] */
        VEC(BYTES(0xf3, 0x0f, 0x7f, 0x28), 5, false, 16);       /* movdqu [rax], xmm5 */
        VEC(BYTES(0x66, 0x0f, 0x7f, 0x28), 5, false, 16);       /* movdqa [rax], xmm5 */
        VEC(BYTES(0x66, 0xf3, 0x0f, 0x6f, 0x08), 1, true, 16);  /* movdqu (66 too) */
        VEC(BYTES(0x66, 0x0f, 0x6e, 0x08), 1, true, 4);         /* movd xmm1, [rax] */
        VEC(BYTES(0x66, 0x48, 0x0f, 0x7e, 0x08), 1, false, 8);  /* movq [rax], xmm1 */
        VEC(BYTES(0xf3, 0x0f, 0x7e, 0x08), 1, true, 8);         /* movq xmm1, [rax] */
        VEC(BYTES(0x66, 0x0f, 0xd6, 0x08), 1, false, 8);        /* movq [rax], xmm1 */
        VEC(BYTES(0x0f, 0x6f, 0x10), 16 + 2, true, 8);          /* movq mm2, [rax] */
        VEC(BYTES(0x0f, 0x7f, 0x10), 16 + 2, false, 8);         /* movq [rax], mm2 */
        VEC(BYTES(0x0f, 0x7e, 0x08), 16 + 1, false, 4);         /* movd [rax], mm1 */
        VEC(BYTES(0x48, 0x0f, 0x6e, 0x08), 16 + 1, true, 8);    /* movq mm1, [rax] */
        VEC(BYTES(0x44, 0x0f, 0x6e, 0x08), 16 + 1, true, 4);    /* REX.R: still mm1 */
        /* kvm-unit-tests' emulator: movdqu 0x1000(%r12), %xmm0 style, with a displacement */
        VEC(BYTES(0xf3, 0x41, 0x0f, 0x6f, 0x84, 0x24, 0x00, 0x10, 0x00, 0x00), 0, true, 16);
        /* Not vector moves. */
        {
                struct x86_insn in;
                bool ld;

                ASSERT_TRUE(x86_decode(BYTES(0x8b, 0x08), X86_MODE_LONG64, &in) == 0);
                EXPECT_EQ(x86_mmio_vreg(&in, &ld), -1);
                ASSERT_TRUE(x86_decode(BYTES(0x0f, 0x10, 0xc8), X86_MODE_LONG64, &in) == 0);
                EXPECT_EQ(x86_mmio_vreg(&in, &ld), -1);
        }
}

/* The 16-byte access's second half fails: -KEEL_EFAULT, the register and RIP unchanged. */
TEST(sse_load_failure_leaves_the_register)
{
        struct x86_emul_regs r, r0;
        struct fake_dev d = {.value = 1};
        struct x86_insn in;

        ASSERT_TRUE(x86_decode(BYTES(0x0f, 0x10, 0x08), X86_MODE_LONG64, &in) == 0);
        regs_init(&r);
        memset(r.vec, 0x5a, 16);
        r0 = r;
        d.fail = true;
        EXPECT_EQ(x86_emulate_mmio(&in, &r, DEV, dev_access, &d), -KEEL_EFAULT);
        EXPECT_TRUE(memcmp(&r, &r0, sizeof(r)) == 0);
}

/* The checks of kvm-unit-tests' emulator test (x86/emulator.c) on its MMIO page. */
TEST(kvm_unit_tests_emulator_values)
{
        /* bsfw 0x1000(%r12), %ax with 0xc000 there: ax = 14 */
        LOAD(BYTES(0x66, 0x41, 0x0f, 0xbc, 0x84, 0x24, 0x00, 0x10, 0x00, 0x00), 0xc000, 2, RAX,
             (reg0(RAX) & ~0xffffull) | 14);
        /* bsrq (%rax), %rcx with 0xc00000000000: 47 */
        {
                struct x86_emul_regs r;
                struct fake_dev d = {.value = 0xc00000000000ull};

                regs_init(&r);
                EXPECT_EQ(run_mode(BYTES(0x48, 0x0f, 0xbd, 0x08), X86_MODE_LONG64, &r, &d, NULL),
                          0);
                EXPECT_EQ(r.gpr[RCX], 47);
                EXPECT_EQ(r.rflags & X86_RFLAGS_ZF, 0);
                /* bsfq of 0: ZF set, destination kept */
                d.value = 0;
                regs_init(&r);
                EXPECT_EQ(run_mode(BYTES(0x48, 0x0f, 0xbc, 0x08), X86_MODE_LONG64, &r, &d, NULL),
                          0);
                EXPECT_EQ(r.gpr[RCX], reg0(RCX));
                EXPECT_EQ(r.rflags, FL0 | X86_RFLAGS_ZF);
                /* imulw $311, (%rax), %cx: 0x5678 * 311 = ...0bc8 */
                d.value = 0x1234567812345678ull;
                regs_init(&r);
                EXPECT_EQ(
                    run_mode(BYTES(0x66, 0x69, 0x08, 0x37, 0x01), X86_MODE_LONG64, &r, &d, NULL),
                    0);
                EXPECT_EQ(r.gpr[RCX], (reg0(RCX) & ~0xffffull) | 0x0bc8);
                /* imulq (%rax), %rcx... with rcx = 51: 0xA06D39EBA06D39E8 */
                regs_init(&r);
                r.gpr[RCX] = 51;
                EXPECT_EQ(run_mode(BYTES(0x48, 0x0f, 0xaf, 0x08), X86_MODE_LONG64, &r, &d, NULL),
                          0);
                EXPECT_EQ(r.gpr[RCX], 0xa06d39eba06d39e8ull);
                /* mulq: rdx:rax */
                regs_init(&r);
                r.gpr[RAX] = 0x1111111111111111ull;
                d.value = 0x3333333333333333ull;
                EXPECT_EQ(run_mode(BYTES(0x48, 0xf7, 0x20), X86_MODE_LONG64, &r, &d, NULL), 0);
                EXPECT_EQ(r.gpr[RAX], 0x2fc962fc962fc963ull);
                EXPECT_EQ(r.gpr[RDX], 0x369d0369d0369d0ull);
                /* shld $3... by cl = 3: (0x12345678 << 3) | 5 */
                regs_init(&r);
                r.gpr[RCX] = 3;
                r.gpr[RDX] = 0xaaaaaaaa;
                d.value = 0x12345678;
                d.n = 0;
                EXPECT_EQ(run_mode(BYTES(0x0f, 0xa5, 0x10), X86_MODE_LONG64, &r, &d, NULL), 0);
                EXPECT_EQ(d.n, 2);
                EXPECT_EQ(d.log[1].val, (0x12345678ull << 3 | 5) & 0xffffffffull);
                /* shrd %cl with 0x55555555: (0x12345678 >> 3) | (5 << 29) */
                regs_init(&r);
                r.gpr[RCX] = 3;
                r.gpr[RDX] = 0x55555555;
                d.value = 0x12345678;
                d.n = 0;
                EXPECT_EQ(run_mode(BYTES(0x0f, 0xad, 0x10), X86_MODE_LONG64, &r, &d, NULL), 0);
                EXPECT_EQ(d.log[1].val, 0x12345678ull >> 3 | 5ull << 29);
                /* shld by 0: read, no write, nothing changes */
                regs_init(&r);
                d.n = 0;
                EXPECT_EQ(run_mode(BYTES(0x0f, 0xa4, 0x10, 0x00), X86_MODE_LONG64, &r, &d, NULL),
                          0);
                EXPECT_EQ(d.n, 1);
                EXPECT_EQ(r.rflags, FL0);
                /* cmovnel (%rax), %eax with ZF set: not moved, upper half cleared */
                regs_init(&r);
                r.rflags |= X86_RFLAGS_ZF;
                EXPECT_EQ(run_mode(BYTES(0x0f, 0x45, 0x00), X86_MODE_LONG64, &r, &d, NULL), 0);
                EXPECT_EQ(r.gpr[RAX], reg0(RAX) & 0xffffffffull);
        }
}

#if defined(__x86_64__)
/*
 * BSF BSR, IMUL (all forms), MUL, SHLD SHRD and CMOVcc against the host CPU: the same
 * instruction on the host's memory at [rbx] with the same rAX, rCX, rDX and RFLAGS, and
 * through the emulator. Compared: the three registers, the memory written, and the flags
 * the SDM defines (the others must be kept by the emulation). Not compared, as the SDM
 * leaves them undefined: BSF/BSR's destination for a zero source (Intel's CPUs clear the top
 * half of a 32-bit one), SHLD/SHRD with a 16-bit count above 16 and OF for counts above 1.
 */
#define HW_X(name, text)                                                           \
        static uint64_t name(void *p, uint64_t r[3], uint64_t fl)                  \
        {                                                                          \
                uint64_t a = r[0], c = r[1], d = r[2], f;                          \
                __asm__ volatile("sub $128, %%rsp\n\tpush %[fi]\n\tpopfq\n\t" text \
                                 "\n\tpushfq\n\tpop %[f]\n\tadd $128, %%rsp"       \
                                 : [f] "=&r"(f), "+a"(a), "+c"(c), "+d"(d)         \
                                 : [fi] "r"(fl), "b"(p)                            \
                                 : "cc", "memory");                                \
                r[0] = a;                                                          \
                r[1] = c;                                                          \
                r[2] = d;                                                          \
                return f;                                                          \
        }
HW_X(x_bsf16, "bsfw (%%rbx), %%cx")
HW_X(x_bsf32, "bsfl (%%rbx), %%ecx")
HW_X(x_bsf64, "bsfq (%%rbx), %%rcx")
HW_X(x_bsr16, "bsrw (%%rbx), %%cx")
HW_X(x_bsr32, "bsrl (%%rbx), %%ecx")
HW_X(x_bsr64, "bsrq (%%rbx), %%rcx")
HW_X(x_imul2_16, "imulw (%%rbx), %%cx")
HW_X(x_imul2_32, "imull (%%rbx), %%ecx")
HW_X(x_imul2_64, "imulq (%%rbx), %%rcx")
HW_X(x_imul8_16, "imulw $-77, (%%rbx), %%cx")
HW_X(x_imul8_32, "imull $-77, (%%rbx), %%ecx")
HW_X(x_imul8_64, "imulq $-77, (%%rbx), %%rcx")
HW_X(x_imulz_16, "imulw $0x7ab1, (%%rbx), %%cx")
HW_X(x_imulz_32, "imull $0x87654321, (%%rbx), %%ecx")
HW_X(x_imulz_64, "imulq $-0x789abcdf, (%%rbx), %%rcx")
HW_X(x_mul8, "mulb (%%rbx)")
HW_X(x_mul16, "mulw (%%rbx)")
HW_X(x_mul32, "mull (%%rbx)")
HW_X(x_mul64, "mulq (%%rbx)")
HW_X(x_imul1_8, "imulb (%%rbx)")
HW_X(x_imul1_16, "imulw (%%rbx)")
HW_X(x_imul1_32, "imull (%%rbx)")
HW_X(x_imul1_64, "imulq (%%rbx)")
HW_X(x_shldc16, "shldw %%cl, %%dx, (%%rbx)")
HW_X(x_shldc32, "shldl %%cl, %%edx, (%%rbx)")
HW_X(x_shldc64, "shldq %%cl, %%rdx, (%%rbx)")
HW_X(x_shrdc16, "shrdw %%cl, %%dx, (%%rbx)")
HW_X(x_shrdc32, "shrdl %%cl, %%edx, (%%rbx)")
HW_X(x_shrdc64, "shrdq %%cl, %%rdx, (%%rbx)")
HW_X(x_shld1_32, "shldl $1, %%edx, (%%rbx)")
HW_X(x_shrd13_16, "shrdw $13, %%dx, (%%rbx)")
HW_X(x_shld45_64, "shldq $45, %%rdx, (%%rbx)")
HW_X(x_cmovo, "cmovol (%%rbx), %%ecx")
HW_X(x_cmovno, "cmovnol (%%rbx), %%ecx")
HW_X(x_cmovb, "cmovbl (%%rbx), %%ecx")
HW_X(x_cmovae, "cmovael (%%rbx), %%ecx")
HW_X(x_cmove, "cmovew (%%rbx), %%cx")
HW_X(x_cmovne, "cmovneq (%%rbx), %%rcx")
HW_X(x_cmovbe, "cmovbel (%%rbx), %%ecx")
HW_X(x_cmova, "cmoval (%%rbx), %%ecx")
HW_X(x_cmovs, "cmovsl (%%rbx), %%ecx")
HW_X(x_cmovns, "cmovnsl (%%rbx), %%ecx")
HW_X(x_cmovp, "cmovpl (%%rbx), %%ecx")
HW_X(x_cmovnp, "cmovnpl (%%rbx), %%ecx")
HW_X(x_cmovl, "cmovll (%%rbx), %%ecx")
HW_X(x_cmovge, "cmovgel (%%rbx), %%ecx")
HW_X(x_cmovle, "cmovlel (%%rbx), %%ecx")
HW_X(x_cmovg, "cmovgl (%%rbx), %%ecx")

#define XF_SCAN  1 /* BSF BSR */
#define XF_SHIFT 2 /* SHLD SHRD: count from CL or the immediate */

static const struct {
        const char *name;
        uint8_t enc[8], len; /* the same instruction, for the emulator */
        unsigned size, kind;
        uint64_t flags; /* defined */
        bool writes;
        uint64_t (*hw)(void *, uint64_t *, uint64_t);
} x_ops[] = {
    {"bsf16", {0x66, 0x0f, 0xbc, 0x0b}, 4, 2, XF_SCAN, ZF, false, x_bsf16},
    {"bsf32", {0x0f, 0xbc, 0x0b}, 3, 4, XF_SCAN, ZF, false, x_bsf32},
    {"bsf64", {0x48, 0x0f, 0xbc, 0x0b}, 4, 8, XF_SCAN, ZF, false, x_bsf64},
    {"bsr16", {0x66, 0x0f, 0xbd, 0x0b}, 4, 2, XF_SCAN, ZF, false, x_bsr16},
    {"bsr32", {0x0f, 0xbd, 0x0b}, 3, 4, XF_SCAN, ZF, false, x_bsr32},
    {"bsr64", {0x48, 0x0f, 0xbd, 0x0b}, 4, 8, XF_SCAN, ZF, false, x_bsr64},
    {"imul2_16", {0x66, 0x0f, 0xaf, 0x0b}, 4, 2, 0, CF | OF, false, x_imul2_16},
    {"imul2_32", {0x0f, 0xaf, 0x0b}, 3, 4, 0, CF | OF, false, x_imul2_32},
    {"imul2_64", {0x48, 0x0f, 0xaf, 0x0b}, 4, 8, 0, CF | OF, false, x_imul2_64},
    {"imul8_16", {0x66, 0x6b, 0x0b, 0xb3}, 4, 2, 0, CF | OF, false, x_imul8_16},
    {"imul8_32", {0x6b, 0x0b, 0xb3}, 3, 4, 0, CF | OF, false, x_imul8_32},
    {"imul8_64", {0x48, 0x6b, 0x0b, 0xb3}, 4, 8, 0, CF | OF, false, x_imul8_64},
    {"imulz_16", {0x66, 0x69, 0x0b, 0xb1, 0x7a}, 5, 2, 0, CF | OF, false, x_imulz_16},
    {"imulz_32", {0x69, 0x0b, 0x21, 0x43, 0x65, 0x87}, 6, 4, 0, CF | OF, false, x_imulz_32},
    {"imulz_64", {0x48, 0x69, 0x0b, 0x21, 0x43, 0x65, 0x87}, 7, 8, 0, CF | OF, false, x_imulz_64},
    {"mul8", {0xf6, 0x23}, 2, 1, 0, CF | OF, false, x_mul8},
    {"mul16", {0x66, 0xf7, 0x23}, 3, 2, 0, CF | OF, false, x_mul16},
    {"mul32", {0xf7, 0x23}, 2, 4, 0, CF | OF, false, x_mul32},
    {"mul64", {0x48, 0xf7, 0x23}, 3, 8, 0, CF | OF, false, x_mul64},
    {"imul1_8", {0xf6, 0x2b}, 2, 1, 0, CF | OF, false, x_imul1_8},
    {"imul1_16", {0x66, 0xf7, 0x2b}, 3, 2, 0, CF | OF, false, x_imul1_16},
    {"imul1_32", {0xf7, 0x2b}, 2, 4, 0, CF | OF, false, x_imul1_32},
    {"imul1_64", {0x48, 0xf7, 0x2b}, 3, 8, 0, CF | OF, false, x_imul1_64},
    {"shldc16", {0x66, 0x0f, 0xa5, 0x13}, 4, 2, XF_SHIFT, CF | SF | ZF | PF, true, x_shldc16},
    {"shldc32", {0x0f, 0xa5, 0x13}, 3, 4, XF_SHIFT, CF | SF | ZF | PF, true, x_shldc32},
    {"shldc64", {0x48, 0x0f, 0xa5, 0x13}, 4, 8, XF_SHIFT, CF | SF | ZF | PF, true, x_shldc64},
    {"shrdc16", {0x66, 0x0f, 0xad, 0x13}, 4, 2, XF_SHIFT, CF | SF | ZF | PF, true, x_shrdc16},
    {"shrdc32", {0x0f, 0xad, 0x13}, 3, 4, XF_SHIFT, CF | SF | ZF | PF, true, x_shrdc32},
    {"shrdc64", {0x48, 0x0f, 0xad, 0x13}, 4, 8, XF_SHIFT, CF | SF | ZF | PF, true, x_shrdc64},
    {"shld1_32", {0x0f, 0xa4, 0x13, 1}, 4, 4, XF_SHIFT, CF | SF | ZF | PF | OF, true, x_shld1_32},
    {"shrd13_16",
     {0x66, 0x0f, 0xac, 0x13, 13},
     5,
     2,
     XF_SHIFT,
     CF | SF | ZF | PF,
     true,
     x_shrd13_16},
    {"shld45_64",
     {0x48, 0x0f, 0xa4, 0x13, 45},
     5,
     8,
     XF_SHIFT,
     CF | SF | ZF | PF,
     true,
     x_shld45_64},
    {"cmovo", {0x0f, 0x40, 0x0b}, 3, 4, 0, 0, false, x_cmovo},
    {"cmovno", {0x0f, 0x41, 0x0b}, 3, 4, 0, 0, false, x_cmovno},
    {"cmovb", {0x0f, 0x42, 0x0b}, 3, 4, 0, 0, false, x_cmovb},
    {"cmovae", {0x0f, 0x43, 0x0b}, 3, 4, 0, 0, false, x_cmovae},
    {"cmove", {0x66, 0x0f, 0x44, 0x0b}, 4, 2, 0, 0, false, x_cmove},
    {"cmovne", {0x48, 0x0f, 0x45, 0x0b}, 4, 8, 0, 0, false, x_cmovne},
    {"cmovbe", {0x0f, 0x46, 0x0b}, 3, 4, 0, 0, false, x_cmovbe},
    {"cmova", {0x0f, 0x47, 0x0b}, 3, 4, 0, 0, false, x_cmova},
    {"cmovs", {0x0f, 0x48, 0x0b}, 3, 4, 0, 0, false, x_cmovs},
    {"cmovns", {0x0f, 0x49, 0x0b}, 3, 4, 0, 0, false, x_cmovns},
    {"cmovp", {0x0f, 0x4a, 0x0b}, 3, 4, 0, 0, false, x_cmovp},
    {"cmovnp", {0x0f, 0x4b, 0x0b}, 3, 4, 0, 0, false, x_cmovnp},
    {"cmovl", {0x0f, 0x4c, 0x0b}, 3, 4, 0, 0, false, x_cmovl},
    {"cmovge", {0x0f, 0x4d, 0x0b}, 3, 4, 0, 0, false, x_cmovge},
    {"cmovle", {0x0f, 0x4e, 0x0b}, 3, 4, 0, 0, false, x_cmovle},
    {"cmovg", {0x0f, 0x4f, 0x0b}, 3, 4, 0, 0, false, x_cmovg},
};

static bool x_one(size_t o, uint64_t mem, const uint64_t in[3], uint64_t fl)
{
        unsigned size = x_ops[o].size, count = 0;
        uint64_t m = size == 8 ? ~0ull : (1ull << (8 * size)) - 1, hw_regs[3], hfl, mask;
        uint64_t buf = mem, flm = x_ops[o].flags, kept;
        struct x86_emul_regs r;
        struct fake_dev d = {.value = mem};
        bool ok;
        int rc;

        memcpy(hw_regs, in, sizeof(hw_regs));
        hfl = x_ops[o].hw(&buf, hw_regs, fl);
        regs_init(&r);
        r.gpr[RAX] = in[0];
        r.gpr[RCX] = in[1];
        r.gpr[RDX] = in[2];
        r.rflags = fl;
        rc = run_mode(x_ops[o].enc, x_ops[o].len, X86_MODE_LONG64, &r, &d, NULL);
        if (x_ops[o].kind == XF_SHIFT) {
                const uint8_t *opc = memchr(x_ops[o].enc, 0x0f, x_ops[o].len) + 1;

                count = (*opc & 1) ? (unsigned)in[1] : x_ops[o].enc[x_ops[o].len - 1];
                count &= size == 8 ? 63 : 31;
                if (size == 2 && count > 16)
                        return true; /* undefined */
                if (count == 0)
                        flm = 0;
                if (count == 1)
                        flm |= OF; /* defined for a count of 1 */
        }
        if (x_ops[o].kind == XF_SCAN && (mem & m) == 0)
                /* Undefined: the emulation keeps it, a 32-bit one zero-extended (Intel, QEMU;
                 * AMD keeps all of it). */
                hw_regs[1] = size == 4 ? in[1] & 0xffffffffull : in[1];
        mask = X86_RFLAGS_ARITH;
        kept = ~flm & ~(x_ops[o].kind == XF_SHIFT && count > 1 ? OF : 0); /* OF: computed */
        ok = rc == 0 && (r.rflags & flm) == (hfl & flm) && (r.rflags & kept) == (fl & kept) &&
             r.gpr[RAX] == hw_regs[0] && r.gpr[RCX] == hw_regs[1] && r.gpr[RDX] == hw_regs[2];
        if (x_ops[o].writes && count != 0)
                ok = ok && d.n == 2 && d.log[1].write && d.log[1].size == size &&
                     (d.log[1].val & m) == (buf & m);
        else
                ok = ok && d.n == 1;
        if (!ok)
                TEST_FAIL_AT(__FILE__, __LINE__,
                             "%s mem 0x%llx rax 0x%llx rcx 0x%llx rdx 0x%llx fl 0x%llx: rc %d, "
                             "flags 0x%llx cpu 0x%llx, rax 0x%llx cpu 0x%llx, rcx 0x%llx cpu "
                             "0x%llx, rdx 0x%llx cpu 0x%llx, wrote 0x%llx (%u) cpu 0x%llx",
                             x_ops[o].name, (unsigned long long)mem, (unsigned long long)in[0],
                             (unsigned long long)in[1], (unsigned long long)in[2],
                             (unsigned long long)fl, rc, (unsigned long long)(r.rflags & mask),
                             (unsigned long long)(hfl & mask), (unsigned long long)r.gpr[RAX],
                             (unsigned long long)hw_regs[0], (unsigned long long)r.gpr[RCX],
                             (unsigned long long)hw_regs[1], (unsigned long long)r.gpr[RDX],
                             (unsigned long long)hw_regs[2], (unsigned long long)d.log[1].val, d.n,
                             (unsigned long long)buf);
        return ok;
}

TEST(scan_mul_shift_cmov_match_the_cpu)
{
        static const uint64_t edge[] = {0,      1,      0x7f,       0x80,       0xff,
                                        0x7fff, 0x8000, 0x7fffffff, 0x80000000, ~0ull};
        unsigned fails = 0;

        for (size_t o = 0; o < sizeof(x_ops) / sizeof(x_ops[0]); o++) {
                for (unsigned k = 0; k < 1500 && fails < 8; k++) {
                        uint64_t mem, in[3], fl;

                        if (k < 100) {
                                mem = edge[k / 10];
                                in[1] = edge[k % 10];
                        } else {
                                mem = rnd() >> (rnd() & 63);
                                in[1] = rnd() >> (rnd() & 63);
                        }
                        in[0] = (k & 2) ? rnd() : in[1];
                        in[2] = rnd() >> (rnd() & 63);
                        if (x_ops[o].kind == XF_SHIFT && (k & 1))
                                in[1] = rnd() & 63; /* CL */
                        fl = FL0 | (rnd() & X86_RFLAGS_ARITH);
                        if (!x_one(o, mem, in, fl))
                                fails++;
                }
        }
}
#endif

/* SMSW to memory stores CR0's low word as the guest reads it, whatever the operand size
 * (kvm-unit-tests' emulator: `smsw 0x1000(%r12)` on its MMIO page). */
TEST(smsw_stores_a_word)
{
        STORE(BYTES(0x0f, 0x01, 0x20), 2, CR0_SEEN & 0xffff);       /* smsw [rax] */
        STORE(BYTES(0x48, 0x0f, 0x01, 0x20), 2, CR0_SEEN & 0xffff); /* rex.w smsw [rax] */
        STORE(BYTES(0x66, 0x0f, 0x01, 0x20), 2, CR0_SEEN & 0xffff); /* smsw (66) [rax] */
        STORE(BYTES(0x41, 0x0f, 0x01, 0xa4, 0x24, 0x00, 0x10, 0x00, 0x00), 2,
              CR0_SEEN & 0xffff); /* smsw 0x1000(%r12) */
}

TEST(device_failure_leaves_state)
{
        static const uint8_t loads[][3] = {
            {0x8b, 0x08}, {0x89, 0x08}, {0x21, 0x08}, {0x23, 0x08}, {0x0f, 0xb6, 0x08}};
        static const size_t lens[] = {2, 2, 2, 2, 3};

        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
                struct x86_emul_regs r;
                struct fake_dev d = {.value = DV, .fail = true};

                regs_init(&r);
                EXPECT_EQ(run_mode(loads[i], lens[i], X86_MODE_LONG64, &r, &d, NULL), -KEEL_EFAULT);
                EXPECT_EQ(r.rip, RIP0);
                EXPECT_EQ(r.rflags, FL0);
                expect_other_regs(&r, NONE, __FILE__, __LINE__);
        }
        /* Read-modify-write whose write fails: flags and RIP untouched. */
        {
                struct x86_emul_regs r;
                struct fake_dev d = {.value = 3, .fail_write = true};

                regs_init(&r);
                EXPECT_EQ(run_mode(BYTES(0x83, 0x20, 0x01), X86_MODE_LONG64, &r, &d, NULL),
                          -KEEL_EFAULT);
                EXPECT_EQ(d.n, 1);
                EXPECT_EQ(r.rip, RIP0);
                EXPECT_EQ(r.rflags, FL0);
        }
}

/* ---- the operand's linear address (checked against the trapped gpa by the caller) -------- */

static int operand_of(const uint8_t *b, size_t n, enum x86_cpu_mode mode, const uint64_t *gpr,
                      const uint64_t seg[6], uint64_t *linear, unsigned *size)
{
        struct x86_insn insn;
        struct x86_emul_regs r = {.rip = RIP0, .rflags = FL0};

        memcpy(r.gpr, gpr, sizeof(r.gpr));
        if (x86_decode(b, n, mode, &insn) != 0)
                return -1;
        return x86_mmio_operand(&insn, &r, seg, linear, size);
}

TEST(operand_address_64bit)
{
        uint64_t gpr[16] = {0}, seg[6] = {0x1000, 0x2000, 0x3000, 0x4000, 0x50000, 0x60000};
        uint64_t lin;
        unsigned size;
        /* mov %eax, 0x10(%rbx,%rcx,4) */
        static const uint8_t m1[] = {0x89, 0x44, 0x8b, 0x10};
        /* mov %fs:0x20(%rdx), %rax */
        static const uint8_t m2[] = {0x64, 0x48, 0x8b, 0x42, 0x20};
        /* movb $1, 0x100(%rip) */
        static const uint8_t m3[] = {0xc6, 0x05, 0x00, 0x01, 0x00, 0x00, 0x01};
        /* mov %ax, %ds:(%rsi): DS has no base in 64-bit mode */
        static const uint8_t m4[] = {0x3e, 0x66, 0x89, 0x06};

        gpr[RBX] = 0xfee00000;
        gpr[RCX] = 0x8;
        gpr[RDX] = 0xd0000000;
        gpr[RSI] = 0xd0000040;
        ASSERT_TRUE(operand_of(m1, sizeof(m1), X86_MODE_LONG64, gpr, seg, &lin, &size) == 0);
        EXPECT_EQ(lin, 0xfee00030ull);
        EXPECT_EQ(size, 4);
        ASSERT_TRUE(operand_of(m2, sizeof(m2), X86_MODE_LONG64, gpr, seg, &lin, &size) == 0);
        EXPECT_EQ(lin, 0x50000ull + 0xd0000020ull);
        EXPECT_EQ(size, 8);
        ASSERT_TRUE(operand_of(m3, sizeof(m3), X86_MODE_LONG64, gpr, seg, &lin, &size) == 0);
        EXPECT_EQ(lin, RIP0 + sizeof(m3) + 0x100);
        EXPECT_EQ(size, 1);
        ASSERT_TRUE(operand_of(m4, sizeof(m4), X86_MODE_LONG64, gpr, seg, &lin, &size) == 0);
        EXPECT_EQ(lin, 0xd0000040ull);
        EXPECT_EQ(size, 2);
}

TEST(operand_address_32bit_and_real_mode)
{
        uint64_t gpr[16] = {0}, seg[6] = {0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0x6000};
        uint64_t lin;
        unsigned size;
        /* 32-bit: mov %eax, 4(%ebp): SS-based, wraps at 4 GiB */
        static const uint8_t p1[] = {0x89, 0x45, 0x04};
        /* 16-bit: mov %al, (%bx,%si) with DS */
        static const uint8_t r1[] = {0x88, 0x00};

        gpr[RBP] = 0xfffffffe;
        ASSERT_TRUE(operand_of(p1, sizeof(p1), X86_MODE_PROT32, gpr, seg, &lin, &size) == 0);
        EXPECT_EQ(lin, (0x3000ull + 0xfffffffeull + 4) & 0xffffffffull);
        EXPECT_EQ(size, 4);
        gpr[RBX] = 0xfff0;
        gpr[RSI] = 0x20; /* the 16-bit sum wraps at 64 KiB */
        ASSERT_TRUE(operand_of(r1, sizeof(r1), X86_MODE_REAL16, gpr, seg, &lin, &size) == 0);
        EXPECT_EQ(lin, 0x4000ull + 0x10);
        EXPECT_EQ(size, 1);
}

TEST(operand_refused_like_the_emulation)
{
        uint64_t gpr[16] = {0}, seg[6] = {0}, lin = 0;
        unsigned size = 0;
        static const uint8_t shift[] = {0xd1, 0x23}; /* shll (%rbx) */
        static const uint8_t reg[] = {0x89, 0xc3};   /* mov %eax, %ebx */

        EXPECT_EQ(operand_of(shift, sizeof(shift), X86_MODE_LONG64, gpr, seg, &lin, &size),
                  -KEEL_ENOTSUP);
        EXPECT_EQ(operand_of(reg, sizeof(reg), X86_MODE_LONG64, gpr, seg, &lin, &size),
                  -KEEL_ENOTSUP);
}

/* ---- more read-modify-write details ---- */

TEST(lock_bt_offsets_cmpxchg_and_group_82)
{
        struct x86_emul_regs r;
        struct fake_dev d;
        uint64_t gpr[16] = {0}, seg[6] = {0}, lin;
        unsigned size;

        /* LOCK is accepted: one read, one write, as without it. */
        regs_init(&r);
        memset(&d, 0, sizeof(d));
        d.value = 0x10;
        EXPECT_EQ(run_mode(BYTES(0xf0, 0x09, 0x08), X86_MODE_LONG64, &r, &d, NULL), 0);
        EXPECT_EQ(d.n, 2);
        EXPECT_EQ(d.log[1].val, 0x10 | (reg0(RCX) & 0xffffffff));
        /* lock bts [rax], rcx with rcx = 70: the second qword, bit 6. */
        regs_init(&r);
        memset(&d, 0, sizeof(d));
        r.gpr[RCX] = 70;
        EXPECT_EQ(run_mode(BYTES(0xf0, 0x48, 0x0f, 0xab, 0x08), X86_MODE_LONG64, &r, &d, NULL), 0);
        EXPECT_EQ(d.log[1].val, 0x40);
        EXPECT_EQ(r.rflags & X86_RFLAGS_CF, 0);
        /* The operand's address: bt [rbx], ecx with ecx = -1 is the dword before; 31 the same
         * dword; 32 the next; with an immediate the offset is modulo 32 (same dword). */
        static const uint8_t bt_reg[] = {0x0f, 0xa3, 0x0b}, bt_imm[] = {0x0f, 0xba, 0x23, 0x63};
        gpr[RBX] = 0x1000;
        gpr[RCX] = 0xffffffff;
        ASSERT_TRUE(operand_of(bt_reg, sizeof(bt_reg), X86_MODE_LONG64, gpr, seg, &lin, &size) ==
                    0);
        EXPECT_EQ(lin, 0xffcull);
        EXPECT_EQ(size, 4);
        gpr[RCX] = 31;
        ASSERT_TRUE(operand_of(bt_reg, sizeof(bt_reg), X86_MODE_LONG64, gpr, seg, &lin, &size) ==
                    0);
        EXPECT_EQ(lin, 0x1000ull);
        gpr[RCX] = 0x100000020ull; /* only the operand size's bits count: ecx = 32 */
        ASSERT_TRUE(operand_of(bt_reg, sizeof(bt_reg), X86_MODE_LONG64, gpr, seg, &lin, &size) ==
                    0);
        EXPECT_EQ(lin, 0x1004ull);
        ASSERT_TRUE(operand_of(bt_imm, sizeof(bt_imm), X86_MODE_LONG64, gpr, seg, &lin, &size) ==
                    0);
        EXPECT_EQ(lin, 0x1000ull);
        /* bt [rax], 0x63 tests bit 3 of the dword (99 mod 32); no write. */
        regs_init(&r);
        memset(&d, 0, sizeof(d));
        d.value = 0x8;
        EXPECT_EQ(run_mode(BYTES(0x0f, 0xba, 0x20, 0x63), X86_MODE_LONG64, &r, &d, NULL), 0);
        EXPECT_EQ(d.n, 1);
        EXPECT_EQ(r.rflags, FL0 | X86_RFLAGS_CF);
        /* cmpxchg on a mismatch: the old value written back, eax loaded (zero-extended). */
        regs_init(&r);
        memset(&d, 0, sizeof(d));
        d.value = 0x55;
        EXPECT_EQ(run_mode(BYTES(0x0f, 0xb1, 0x08), X86_MODE_LONG64, &r, &d, NULL), 0);
        EXPECT_EQ(d.n, 2);
        EXPECT_EQ(d.log[1].val, 0x55);
        EXPECT_EQ(r.gpr[RAX], 0x55);
        EXPECT_EQ(r.gpr[RCX], reg0(RCX));
        /* 82 /0 (add byte, imm8) in 32-bit mode; it does not decode in 64-bit mode. */
        regs_init(&r);
        memset(&d, 0, sizeof(d));
        d.value = 0xff;
        EXPECT_EQ(run_mode(BYTES(0x82, 0x00, 0x01), X86_MODE_PROT32, &r, &d, NULL), 0);
        EXPECT_EQ(d.log[1].size, 1);
        EXPECT_EQ(d.log[1].val, 0);
        EXPECT_EQ(r.rflags, FL0 | X86_RFLAGS_CF | X86_RFLAGS_ZF | X86_RFLAGS_PF | X86_RFLAGS_AF);
        /* inc keeps CF; a failed write-back leaves everything as it was. */
        regs_init(&r);
        memset(&d, 0, sizeof(d));
        r.rflags = FL0 | X86_RFLAGS_CF;
        d.value = 0x7f;
        EXPECT_EQ(run_mode(BYTES(0xfe, 0x00), X86_MODE_LONG64, &r, &d, NULL), 0);
        EXPECT_EQ(d.log[1].val, 0x80);
        EXPECT_EQ(r.rflags, FL0 | X86_RFLAGS_CF | X86_RFLAGS_OF | X86_RFLAGS_SF | X86_RFLAGS_AF);
        regs_init(&r);
        memset(&d, 0, sizeof(d));
        d.fail_write = true;
        EXPECT_EQ(run_mode(BYTES(0x87, 0x08), X86_MODE_LONG64, &r, &d, NULL), -KEEL_EFAULT);
        EXPECT_EQ(r.rip, RIP0);
        expect_other_regs(&r, NONE, __FILE__, __LINE__);
}

/* ---- string instructions ---- */

#define LRAM 0x10000ull    /* linear "RAM": 256 bytes */
#define LDEV 0xd0000000ull /* linear device: 256 bytes, reads give a pattern */

struct fake_mem {
        uint8_t ram[256];
        unsigned n, reads, writes;
        uint64_t fault_at, again_at; /* linear addresses (0: none) */
        struct {
                uint64_t lin;
                unsigned size;
                bool write;
                uint64_t val;
        } log[64];
};

static uint64_t dev_pattern(uint64_t lin, unsigned size)
{
        uint64_t v = 0;

        for (unsigned i = 0; i < size; i++)
                v |= (uint64_t)(uint8_t)(0xa0 + lin + i) << (8 * i);
        return v;
}

static int mem_access(void *ctx, uint64_t lin, unsigned size, bool write, uint64_t *val)
{
        struct fake_mem *m = ctx;

        if (lin == m->fault_at)
                return -KEEL_EFAULT;
        if (m->n < 64) {
                m->log[m->n].lin = lin;
                m->log[m->n].size = size;
                m->log[m->n].write = write;
                m->log[m->n].val = write ? *val : 0;
        }
        m->n++;
        if (lin >= LRAM && lin + size <= LRAM + 256) {
                if (write)
                        memcpy(m->ram + (lin - LRAM), val, size);
                else
                        memcpy(val, m->ram + (lin - LRAM), size);
        } else if (!write) {
                *val = dev_pattern(lin, size) | 0xdead000000000000ull * (size < 8);
        }
        if (write)
                m->writes++;
        else
                m->reads++;
        return lin == m->again_at ? 1 : 0;
}

static int run_string(const uint8_t *b, size_t n, enum x86_cpu_mode mode, struct x86_emul_regs *r,
                      struct fake_mem *m, unsigned budget)
{
        static const uint64_t seg[6] = {0, 0, 0, 0, 0, 0};
        struct x86_insn in;
        int rc = x86_decode(b, n, mode, &in);

        if (rc)
                return 1000 + rc;
        return x86_emulate_string(&in, r, seg, budget, mem_access, m);
}

TEST(string_movs_stos_lods)
{
        struct x86_emul_regs r;
        struct fake_mem m;

        /* rep movsb: device -> RAM, 5 bytes. */
        regs_init(&r);
        memset(&m, 0, sizeof(m));
        r.gpr[RSI] = LDEV + 0x10;
        r.gpr[RDI] = LRAM + 8;
        r.gpr[RCX] = 5;
        EXPECT_EQ(run_string(BYTES(0xf3, 0xa4), X86_MODE_LONG64, &r, &m, 128), 5);
        EXPECT_EQ(r.gpr[RCX], 0);
        EXPECT_EQ(r.gpr[RSI], LDEV + 0x15);
        EXPECT_EQ(r.gpr[RDI], LRAM + 13);
        EXPECT_EQ(r.rip, RIP0 + 2);
        EXPECT_EQ(m.ram[8], 0xb0);
        EXPECT_EQ(m.ram[12], 0xb4);
        EXPECT_EQ(m.reads, 5);
        EXPECT_EQ(m.writes, 5);
        EXPECT_EQ(r.rflags, FL0);
        /* rep stosd down (DF): RAM -> device order, eax, 3 dwords at descending addresses. */
        regs_init(&r);
        memset(&m, 0, sizeof(m));
        r.rflags = FL0 | X86_RFLAGS_DF;
        r.gpr[RDI] = LDEV + 0x40;
        r.gpr[RCX] = 3;
        EXPECT_EQ(run_string(BYTES(0xf3, 0xab), X86_MODE_LONG64, &r, &m, 128), 3);
        EXPECT_EQ(m.n, 3);
        EXPECT_EQ(m.log[0].lin, LDEV + 0x40);
        EXPECT_EQ(m.log[2].lin, LDEV + 0x38);
        EXPECT_EQ(m.log[2].size, 4);
        EXPECT_TRUE(m.log[2].write);
        EXPECT_EQ(m.log[2].val, reg0(RAX) & 0xffffffff);
        EXPECT_EQ(r.gpr[RDI], LDEV + 0x34);
        EXPECT_EQ(r.gpr[RSI], reg0(RSI));
        /* lodsq without REP: one read, rax loaded, rcx untouched. */
        regs_init(&r);
        memset(&m, 0, sizeof(m));
        r.gpr[RSI] = LDEV;
        EXPECT_EQ(run_string(BYTES(0x48, 0xad), X86_MODE_LONG64, &r, &m, 128), 1);
        EXPECT_EQ(r.gpr[RAX], dev_pattern(LDEV, 8));
        EXPECT_EQ(r.gpr[RSI], LDEV + 8);
        EXPECT_EQ(r.gpr[RCX], reg0(RCX));
        EXPECT_EQ(r.rip, RIP0 + 2);
        /* lodsb keeps rax's upper bytes; lodsd zero-extends. */
        regs_init(&r);
        memset(&m, 0, sizeof(m));
        r.gpr[RSI] = LDEV + 1;
        EXPECT_EQ(run_string(BYTES(0xac), X86_MODE_LONG64, &r, &m, 128), 1);
        EXPECT_EQ(r.gpr[RAX], (reg0(RAX) & ~0xffull) | 0xa1);
        regs_init(&r);
        memset(&m, 0, sizeof(m));
        r.gpr[RSI] = LDEV + 1;
        EXPECT_EQ(run_string(BYTES(0xad), X86_MODE_LONG64, &r, &m, 128), 1);
        EXPECT_EQ(r.gpr[RAX], dev_pattern(LDEV + 1, 4));
        /* REP with rcx = 0: no access, done. */
        regs_init(&r);
        memset(&m, 0, sizeof(m));
        r.gpr[RCX] = 0;
        EXPECT_EQ(run_string(BYTES(0xf3, 0xa5), X86_MODE_LONG64, &r, &m, 128), 0);
        EXPECT_EQ(m.n, 0);
        EXPECT_EQ(r.rip, RIP0 + 2);
}

TEST(string_cmps_scas)
{
        struct x86_emul_regs r;
        struct fake_mem m;

        /* repe cmpsb of RAM against the device's pattern: equal for 3 bytes, then not. */
        regs_init(&r);
        memset(&m, 0, sizeof(m));
        for (unsigned i = 0; i < 8; i++)
                m.ram[i] = (uint8_t)(0xa0 + 0x20 + i);
        m.ram[3] = 0x01;
        r.gpr[RSI] = LRAM;
        r.gpr[RDI] = LDEV + 0x20;
        r.gpr[RCX] = 8;
        EXPECT_EQ(run_string(BYTES(0xf3, 0xa6), X86_MODE_LONG64, &r, &m, 128), 4);
        EXPECT_EQ(r.gpr[RCX], 4);
        EXPECT_EQ(r.gpr[RSI], LRAM + 4);
        EXPECT_EQ(r.rip, RIP0 + 2);
        /* 0x01 - 0xc3: borrow, no zero; flags as CMP src, dst. */
        EXPECT_EQ(r.rflags & X86_RFLAGS_ARITH, X86_RFLAGS_CF | X86_RFLAGS_AF);
        /* repne scasb for 0xa5 in the device: found at the 6th byte. */
        regs_init(&r);
        memset(&m, 0, sizeof(m));
        r.gpr[RAX] = 0xa5;
        r.gpr[RDI] = LDEV;
        r.gpr[RCX] = 100;
        EXPECT_EQ(run_string(BYTES(0xf2, 0xae), X86_MODE_LONG64, &r, &m, 128), 6);
        EXPECT_EQ(r.gpr[RCX], 94);
        EXPECT_EQ(r.gpr[RDI], LDEV + 6);
        EXPECT_EQ(r.rflags & X86_RFLAGS_ZF, X86_RFLAGS_ZF);
        /* scasw without REP: one comparison of ax with the word. */
        regs_init(&r);
        memset(&m, 0, sizeof(m));
        r.gpr[RAX] = 0x1234;
        r.gpr[RDI] = LDEV;
        EXPECT_EQ(run_string(BYTES(0x66, 0xaf), X86_MODE_LONG64, &r, &m, 128), 1);
        EXPECT_EQ(r.gpr[RDI], LDEV + 2);
        EXPECT_EQ(r.rflags & X86_RFLAGS_ZF, 0);
}

TEST(string_bounded_and_stopped)
{
        struct x86_emul_regs r;
        struct fake_mem m;

        /* Budget 4 of 10: 4 done, RIP stays; the next call finishes. */
        regs_init(&r);
        memset(&m, 0, sizeof(m));
        r.gpr[RDI] = LDEV;
        r.gpr[RCX] = 10;
        EXPECT_EQ(run_string(BYTES(0xf3, 0xaa), X86_MODE_LONG64, &r, &m, 4), 4);
        EXPECT_EQ(r.gpr[RCX], 6);
        EXPECT_EQ(r.gpr[RDI], LDEV + 4);
        EXPECT_EQ(r.rip, RIP0);
        EXPECT_EQ(run_string(BYTES(0xf3, 0xaa), X86_MODE_LONG64, &r, &m, 128), 6);
        EXPECT_EQ(r.gpr[RCX], 0);
        EXPECT_EQ(r.rip, RIP0 + 2);
        EXPECT_EQ(m.n, 10);
        /* An access not done at the third element: two done, registers there, RIP stays. */
        regs_init(&r);
        memset(&m, 0, sizeof(m));
        r.gpr[RSI] = LDEV;
        r.gpr[RDI] = LRAM;
        r.gpr[RCX] = 8;
        m.fault_at = LRAM + 2;
        EXPECT_EQ(run_string(BYTES(0xf3, 0xa4), X86_MODE_LONG64, &r, &m, 128), 2);
        EXPECT_EQ(r.gpr[RCX], 6);
        EXPECT_EQ(r.gpr[RSI], LDEV + 2);
        EXPECT_EQ(r.gpr[RDI], LRAM + 2);
        EXPECT_EQ(r.rip, RIP0);
        /* ... at the first: nothing changes. */
        regs_init(&r);
        memset(&m, 0, sizeof(m));
        r.gpr[RSI] = LDEV;
        r.gpr[RCX] = 8;
        m.fault_at = LDEV;
        {
                struct x86_emul_regs r0 = r;

                EXPECT_EQ(run_string(BYTES(0xf3, 0xac), X86_MODE_LONG64, &r, &m, 128), 0);
                EXPECT_TRUE(memcmp(&r, &r0, sizeof(r)) == 0);
        }
        /* A device asking for the second store again: one counts. */
        regs_init(&r);
        memset(&m, 0, sizeof(m));
        r.gpr[RDI] = LDEV;
        r.gpr[RCX] = 8;
        m.again_at = LDEV + 1;
        EXPECT_EQ(run_string(BYTES(0xf3, 0xaa), X86_MODE_LONG64, &r, &m, 128), 1);
        EXPECT_EQ(r.gpr[RCX], 7);
        EXPECT_EQ(r.gpr[RDI], LDEV + 1);
        EXPECT_EQ(r.rip, RIP0);
}

TEST(string_address_sizes_and_segments)
{
        static const uint64_t seg[6] = {0x10000, 0x20000, 0x30000, 0x40000, 0x50000, 0x60000};
        struct x86_emul_regs r;
        struct x86_insn in;
        uint64_t lin[2];
        unsigned size;

        /* 64-bit with 67: esi/edi/ecx; esi wraps to 0 and the upper half is cleared. */
        regs_init(&r);
        r.gpr[RSI] = 0x12345678ffffffffull;
        r.gpr[RCX] = 0xffffffff00000001ull;
        ASSERT_TRUE(x86_decode(BYTES(0x67, 0xf3, 0xac), X86_MODE_LONG64, &in) == 0);
        EXPECT_EQ(x86_string_operands(&in, &r, seg, lin, &size), 1);
        EXPECT_EQ(lin[0], 0xffffffffull);
        EXPECT_EQ(size, 1);
        /* movs: DS has no base in 64-bit mode, FS has; ES none. */
        r.gpr[RDI] = 0x2000;
        ASSERT_TRUE(x86_decode(BYTES(0x64, 0xa5), X86_MODE_LONG64, &in) == 0);
        EXPECT_EQ(x86_string_operands(&in, &r, seg, lin, &size), 3);
        EXPECT_EQ(lin[0], 0x50000ull + 0x12345678ffffffffull);
        EXPECT_EQ(lin[1], 0x2000ull);
        EXPECT_EQ(size, 4);
        /* Real mode: DS and ES bases, 16-bit SI wraps and keeps the upper bits. */
        regs_init(&r);
        r.gpr[RSI] = 0xabcd0000ffffull;
        r.gpr[RDI] = 0x10;
        r.gpr[RCX] = 1;
        ASSERT_TRUE(x86_decode(BYTES(0xa4), X86_MODE_REAL16, &in) == 0);
        EXPECT_EQ(x86_string_operands(&in, &r, seg, lin, &size), 3);
        EXPECT_EQ(lin[0], 0x40000ull + 0xffff);
        EXPECT_EQ(lin[1], 0x10000ull + 0x10);
        {
                struct fake_mem m;

                memset(&m, 0, sizeof(m));
                EXPECT_EQ(x86_emulate_string(&in, &r, seg, 128, mem_access, &m), 1);
                EXPECT_EQ(r.gpr[RSI], 0xabcd00000000ull);
                EXPECT_EQ(r.gpr[RDI], 0x11);
                EXPECT_EQ(r.gpr[RCX], 1); /* no REP */
                EXPECT_EQ(r.rip, (RIP0 + 1) & 0xffff);
        }
        /* REP with cx = 0 in 16-bit code although rcx is not 0: no operand. */
        r.gpr[RCX] = 0x10000;
        ASSERT_TRUE(x86_decode(BYTES(0xf3, 0xa4), X86_MODE_REAL16, &in) == 0);
        EXPECT_EQ(x86_string_operands(&in, &r, seg, lin, &size), 0);
        /* Not string instructions. */
        ASSERT_TRUE(x86_decode(BYTES(0x89, 0x08), X86_MODE_LONG64, &in) == 0);
        EXPECT_EQ(x86_string_operands(&in, &r, seg, lin, &size), -KEEL_ENOTSUP);
        EXPECT_EQ(x86_emulate_string(&in, &r, seg, 128, mem_access, NULL), -KEEL_ENOTSUP);
        ASSERT_TRUE(x86_decode(BYTES(0x6c), X86_MODE_LONG64, &in) == 0); /* insb */
        EXPECT_EQ(x86_string_operands(&in, &r, seg, lin, &size), -KEEL_ENOTSUP);
}

TEST_MAIN()

/* ---- string port I/O (INS, OUTS) ---- */

struct fake_io {
        struct fake_mem m; /* first: mem_access takes it */
        unsigned probes, ins, outs;
        uint16_t port;
        uint32_t out[32]; /* values written to the port, in order */
};

/* mem_access, plus INS's check-only call (val NULL): refused where the access would fail. */
static int io_mem(void *ctx, uint64_t lin, unsigned size, bool write, uint64_t *val)
{
        struct fake_io *f = ctx;

        if (!val) {
                f->probes++;
                return lin == f->m.fault_at ? -KEEL_EFAULT : 0;
        }
        return mem_access(ctx, lin, size, write, val);
}

static void io_port(void *ctx, uint16_t port, unsigned size, bool in, uint32_t *val)
{
        struct fake_io *f = ctx;

        f->port = port;
        if (in) {
                *val = 0xc0c1c2c0u + f->ins++; /* the callee may leave garbage above size */
                return;
        }
        if (f->outs < 32)
                f->out[f->outs] = size == 4 ? *val : *val & ((1u << (8 * size)) - 1);
        f->outs++;
}

static int run_io(const uint8_t *b, size_t n, struct x86_emul_regs *r, struct fake_io *f,
                  const uint64_t seg[6], unsigned budget)
{
        struct x86_insn in;
        int rc = x86_decode(b, n, X86_MODE_LONG64, &in);

        if (rc)
                return 1000 + rc;
        return x86_emulate_string_io(&in, r, seg, budget, io_mem, io_port, f);
}

static const uint64_t noseg[6];

/* kvm-unit-tests' emulator test_stringio: rep outsb of 15 bytes to port 0xe0, up then down. */
TEST(string_io_outs)
{
        struct x86_emul_regs r;
        struct fake_io f;

        regs_init(&r);
        memset(&f, 0, sizeof(f));
        memcpy(f.m.ram, "abcdefghijklmnop", 16);
        r.gpr[RSI] = LRAM;
        r.gpr[RCX] = 15;
        r.gpr[RDX] = 0xffff00e0; /* DX only */
        EXPECT_EQ(run_io(BYTES(0xf3, 0x6e), &r, &f, noseg, 128), 15);
        EXPECT_EQ(f.outs, 15);
        EXPECT_EQ(f.port, 0xe0);
        EXPECT_EQ(f.out[0], 'a');
        EXPECT_EQ(f.out[14], 'o');
        EXPECT_EQ(r.gpr[RSI], LRAM + 15);
        EXPECT_EQ(r.gpr[RCX], 0);
        EXPECT_EQ(r.gpr[RDI], reg0(RDI));
        EXPECT_EQ(r.rip, RIP0 + 2);
        EXPECT_EQ(f.m.writes, 0);
        EXPECT_EQ(r.rflags, FL0);
        /* Down (DF): from the last byte to the first. */
        regs_init(&r);
        memset(&f, 0, sizeof(f));
        memcpy(f.m.ram, "abcdefghijklmnop", 16);
        r.rflags = FL0 | X86_RFLAGS_DF;
        r.gpr[RSI] = LRAM + 14;
        r.gpr[RCX] = 15;
        r.gpr[RDX] = 0xe0;
        EXPECT_EQ(run_io(BYTES(0xf3, 0x6e), &r, &f, noseg, 128), 15);
        EXPECT_EQ(f.out[0], 'o');
        EXPECT_EQ(f.out[14], 'a');
        EXPECT_EQ(r.gpr[RSI], LRAM - 1);
        EXPECT_EQ(r.rip, RIP0 + 2);
        /* outsd (REX.W does not widen it), fs: override, no REP: one dword from FS:rSI. */
        {
                static const uint64_t seg[6] = {0, 0, 0, 0x7000, LRAM - 0x40, 0};

                regs_init(&r);
                memset(&f, 0, sizeof(f));
                memcpy(f.m.ram + 8, "\x11\x22\x33\x44\x55", 5);
                r.gpr[RSI] = 0x48;
                r.gpr[RDX] = 0x3f8;
                EXPECT_EQ(run_io(BYTES(0x64, 0x48, 0x6f), &r, &f, seg, 128), 1);
                EXPECT_EQ(f.outs, 1);
                EXPECT_EQ(f.out[0], 0x44332211u);
                EXPECT_EQ(f.m.log[0].lin, LRAM + 8);
                EXPECT_EQ(f.m.log[0].size, 4);
                EXPECT_EQ(r.gpr[RSI], 0x4c);
                EXPECT_EQ(r.gpr[RCX], reg0(RCX));
                EXPECT_EQ(r.rip, RIP0 + 3);
        }
        /* 67: esi, the upper half ignored and cleared; ecx counts. */
        regs_init(&r);
        memset(&f, 0, sizeof(f));
        f.m.ram[0] = 0x5a;
        r.gpr[RSI] = 0xabcd000000000000ull | LRAM;
        r.gpr[RCX] = 0x1200000001ull;
        r.gpr[RDX] = 0x80;
        EXPECT_EQ(run_io(BYTES(0x67, 0xf3, 0x6e), &r, &f, noseg, 128), 1);
        EXPECT_EQ(f.out[0], 0x5a);
        EXPECT_EQ(r.gpr[RSI], LRAM + 1);
        EXPECT_EQ(r.gpr[RCX], 0);
        EXPECT_EQ(r.rip, RIP0 + 3);
}

TEST(string_io_ins)
{
        struct x86_emul_regs r;
        struct fake_io f;

        /* rep insw: each element checked, read from the port, stored. */
        regs_init(&r);
        memset(&f, 0, sizeof(f));
        r.gpr[RDI] = LRAM + 16;
        r.gpr[RCX] = 4;
        r.gpr[RDX] = 0x1f0;
        EXPECT_EQ(run_io(BYTES(0x66, 0xf3, 0x6d), &r, &f, noseg, 128), 4);
        EXPECT_EQ(f.ins, 4);
        EXPECT_EQ(f.probes, 4);
        EXPECT_EQ(f.port, 0x1f0);
        EXPECT_EQ(f.m.ram[16], 0xc0);
        EXPECT_EQ(f.m.ram[17], 0xc2);
        EXPECT_EQ(f.m.ram[22], 0xc3);
        EXPECT_EQ(f.m.ram[24], 0);
        EXPECT_EQ(f.m.log[3].size, 2);
        EXPECT_EQ(r.gpr[RDI], LRAM + 24);
        EXPECT_EQ(r.gpr[RSI], reg0(RSI));
        EXPECT_EQ(r.gpr[RCX], 0);
        EXPECT_EQ(r.rip, RIP0 + 3);
        /* The third destination faults: two done, no port read for it, RIP stays. */
        regs_init(&r);
        memset(&f, 0, sizeof(f));
        r.gpr[RDI] = LRAM;
        r.gpr[RCX] = 5;
        f.m.fault_at = LRAM + 2;
        EXPECT_EQ(run_io(BYTES(0xf3, 0x6c), &r, &f, noseg, 128), 2);
        EXPECT_EQ(f.ins, 2);
        EXPECT_EQ(r.gpr[RDI], LRAM + 2);
        EXPECT_EQ(r.gpr[RCX], 3);
        EXPECT_EQ(r.rip, RIP0);
        /* Bounded: 128 of 300, RIP stays; DF steps down. */
        regs_init(&r);
        memset(&f, 0, sizeof(f));
        r.rflags = FL0 | X86_RFLAGS_DF;
        r.gpr[RDI] = LDEV + 200;
        r.gpr[RCX] = 300;
        EXPECT_EQ(run_io(BYTES(0xf3, 0x6c), &r, &f, noseg, 128), 128);
        EXPECT_EQ(f.ins, 128);
        EXPECT_EQ(r.gpr[RCX], 172);
        EXPECT_EQ(r.gpr[RDI], LDEV + 200 - 128);
        EXPECT_EQ(r.rip, RIP0);
        /* A device asking for its store again: that iteration counts (its port read is not
         * repeated) and ends the batch; the last one completes the instruction. */
        regs_init(&r);
        memset(&f, 0, sizeof(f));
        r.gpr[RDI] = LDEV;
        r.gpr[RCX] = 3;
        f.m.again_at = LDEV + 1;
        EXPECT_EQ(run_io(BYTES(0xf3, 0x6c), &r, &f, noseg, 128), 2);
        EXPECT_EQ(f.ins, 2);
        EXPECT_EQ(r.gpr[RCX], 1);
        EXPECT_EQ(r.gpr[RDI], LDEV + 2);
        EXPECT_EQ(r.rip, RIP0);
        f.m.again_at = LDEV + 2;
        EXPECT_EQ(run_io(BYTES(0xf3, 0x6c), &r, &f, noseg, 128), 1);
        EXPECT_EQ(r.gpr[RCX], 0);
        EXPECT_EQ(r.rip, RIP0 + 2);
        /* REP with rcx = 0: nothing, complete. */
        regs_init(&r);
        memset(&f, 0, sizeof(f));
        r.gpr[RCX] = 0;
        EXPECT_EQ(run_io(BYTES(0xf3, 0x6d), &r, &f, noseg, 128), 0);
        EXPECT_EQ(f.ins + f.probes + f.m.n, 0);
        EXPECT_EQ(r.rip, RIP0 + 2);
}

TEST(string_io_refusals)
{
        struct x86_emul_regs r, r0;
        struct fake_io f;
        struct x86_insn in;

        regs_init(&r);
        r0 = r;
        memset(&f, 0, sizeof(f));
        EXPECT_EQ(run_io(BYTES(0xf3, 0xa4), &r, &f, noseg, 128), -KEEL_ENOTSUP); /* movsb */
        EXPECT_EQ(run_io(BYTES(0xec), &r, &f, noseg, 128), -KEEL_ENOTSUP);       /* in al, dx */
        EXPECT_TRUE(memcmp(&r, &r0, sizeof(r)) == 0);
        EXPECT_EQ(f.m.n + f.ins + f.outs, 0);
        /* INS/OUTS are not memory string instructions, nor without a port callback. */
        ASSERT_TRUE(x86_decode(BYTES(0x6e), X86_MODE_LONG64, &in) == 0);
        EXPECT_EQ(x86_emulate_string(&in, &r, noseg, 128, mem_access, &f), -KEEL_ENOTSUP);
        EXPECT_EQ(x86_emulate_string_io(&in, &r, noseg, 128, io_mem, NULL, &f), -KEEL_ENOTSUP);
}

/* ---- DIV / IDIV, system and segment registers, stack instructions ---- */

/* Does DIV / IDIV of `size` fault (#DE), by 128-bit arithmetic (SDM vol. 2 "DIV", "IDIV")? */
static bool div_faults(unsigned size, bool sign, uint64_t ax, uint64_t dx, uint64_t mem)
{
        unsigned bits = 8 * size;
        uint64_t m = size == 8 ? ~0ull : (1ull << bits) - 1;
        unsigned __int128 u =
            size == 1 ? ax & 0xffff : (unsigned __int128)(dx & m) << bits | (ax & m);
        uint64_t v = mem & m;
        __int128 a, b, q, lim = (__int128)1 << (bits - 1);

        if (v == 0)
                return true;
        if (!sign)
                return u / v > m;
        a = size == 8 ? (__int128)u : (__int128)(u << (128 - 2 * bits)) >> (128 - 2 * bits);
        b = (__int128)(int64_t)(v << (64 - bits)) >> (64 - bits);
        if (b == -1) {
                if (size == 8 && u == (unsigned __int128)1 << 127)
                        return true; /* -(-2^127) */
                q = -a;
        } else {
                q = a / b;
        }
        return q < -lim || q > lim - 1;
}

#if defined(__x86_64__)
#define HW_DIV(fn, text)                                                                 \
        static void fn(const uint64_t *m, uint64_t *ax, uint64_t *dx)                    \
        {                                                                                \
                __asm__ volatile(text : "+a"(*ax), "+d"(*dx) : "b"(m) : "cc", "memory"); \
        }
HW_DIV(hw_div8, "divb (%%rbx)")
HW_DIV(hw_div16, "divw (%%rbx)")
HW_DIV(hw_div32, "divl (%%rbx)")
HW_DIV(hw_div64, "divq (%%rbx)")
HW_DIV(hw_idiv8, "idivb (%%rbx)")
HW_DIV(hw_idiv16, "idivw (%%rbx)")
HW_DIV(hw_idiv32, "idivl (%%rbx)")
HW_DIV(hw_idiv64, "idivq (%%rbx)")

/* DIV / IDIV on device memory: #DE exactly where the arithmetic says, else rAX and rDX as
 * the host CPU computes them (only inputs that do not fault run on it). */
TEST(div_idiv_match_the_cpu)
{
        static const struct {
                uint8_t enc[3], len;
                unsigned size;
                bool sign;
                void (*hw)(const uint64_t *, uint64_t *, uint64_t *);
        } ops[] = {
            {{0xf6, 0x33}, 2, 1, false, hw_div8},  {{0x66, 0xf7, 0x33}, 3, 2, false, hw_div16},
            {{0xf7, 0x33}, 2, 4, false, hw_div32}, {{0x48, 0xf7, 0x33}, 3, 8, false, hw_div64},
            {{0xf6, 0x3b}, 2, 1, true, hw_idiv8},  {{0x66, 0xf7, 0x3b}, 3, 2, true, hw_idiv16},
            {{0xf7, 0x3b}, 2, 4, true, hw_idiv32}, {{0x48, 0xf7, 0x3b}, 3, 8, true, hw_idiv64},
        };
        static const uint64_t edge[] = {0,          1,          2,          7,          0x7f,
                                        0x80,       0xff,       0x7fff,     0x8000,     0xffff,
                                        0x7fffffff, 0x80000000, 0xffffffff, 1ull << 63, ~0ull};
        unsigned fails = 0, faults = 0, ran = 0;

        for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
                for (unsigned k = 0; k < 3000 && fails < 8; k++) {
                        uint64_t mem, ax, dx, hax, hdx;
                        struct x86_emul_regs r;
                        struct fake_dev d;
                        bool de;
                        int rc;

                        if (k < 225) {
                                mem = edge[k % 15];
                                ax = edge[k / 15];
                                dx = (k & 1) ? 0 : edge[(k * 7) % 15];
                        } else {
                                mem = rnd() >> (rnd() & 63);
                                ax = rnd();
                                dx = (k & 3) == 0 ? rnd() : (k & 1) ? 0 : ~0ull * (rnd() & 1);
                        }
                        mem = (k & 4) ? -mem : mem;
                        de = div_faults(ops[o].size, ops[o].sign, ax, dx, mem);
                        regs_init(&r);
                        r.gpr[RAX] = ax;
                        r.gpr[RDX] = dx;
                        d = (struct fake_dev){.value = mem};
                        rc = run_mode(ops[o].enc, ops[o].len, X86_MODE_LONG64, &r, &d, NULL);
                        if (de) {
                                faults++;
                                if (rc != X86_EMUL_DIVIDE_ERROR || r.gpr[RAX] != ax ||
                                    r.gpr[RDX] != dx || r.rip != RIP0 || d.n != 1) {
                                        TEST_FAIL_AT(__FILE__, __LINE__,
                                                     "op %zu mem %#llx ax %#llx dx %#llx: rc %d, "
                                                     "want #DE",
                                                     o, (unsigned long long)mem,
                                                     (unsigned long long)ax, (unsigned long long)dx,
                                                     rc);
                                        fails++;
                                }
                                continue;
                        }
                        hax = ax;
                        hdx = dx;
                        ops[o].hw(&mem, &hax, &hdx);
                        ran++;
                        if (rc != 0 || r.gpr[RAX] != hax || r.gpr[RDX] != hdx ||
                            r.rip != RIP0 + ops[o].len || r.rflags != FL0) {
                                TEST_FAIL_AT(
                                    __FILE__, __LINE__,
                                    "op %zu mem %#llx ax %#llx dx %#llx: rc %d rax %#llx "
                                    "cpu %#llx rdx %#llx cpu %#llx",
                                    o, (unsigned long long)mem, (unsigned long long)ax,
                                    (unsigned long long)dx, rc, (unsigned long long)r.gpr[RAX],
                                    (unsigned long long)hax, (unsigned long long)r.gpr[RDX],
                                    (unsigned long long)hdx);
                                fails++;
                        }
                }
        }
        EXPECT_TRUE(faults > 100 && ran > 1000); /* both sides exercised */
}
#endif

/* kvm-unit-tests' test_muldiv: divq by 0 faults, 123456789012345:123456789012345 / 987654321098765.
 */
TEST(divq_kvm_unit_tests_values)
{
        struct x86_emul_regs r;
        struct fake_dev d = {.value = 0};

        regs_init(&r);
        r.gpr[RAX] = 1;
        r.gpr[RDX] = 2;
        EXPECT_EQ(run_mode(BYTES(0x48, 0xf7, 0x33), X86_MODE_LONG64, &r, &d, NULL),
                  X86_EMUL_DIVIDE_ERROR);
        EXPECT_EQ(r.gpr[RAX], 1u);
        EXPECT_EQ(r.rip, RIP0);
        d = (struct fake_dev){.value = 987654321098765ull};
        r.gpr[RAX] = r.gpr[RDX] = 123456789012345ull;
        EXPECT_EQ(run_mode(BYTES(0x48, 0xf7, 0x33), X86_MODE_LONG64, &r, &d, NULL), 0);
        EXPECT_EQ(r.gpr[RAX], 0x1ffffffb1b963b33ull);
        EXPECT_EQ(r.gpr[RDX], 0x273ba4384ede2ull);
}

/* SLDT, STR and MOV Ew, Sreg store the caller's selector as a word; LLDT, LTR and MOV Sreg,
 * Ew read one and leave the load to the caller; MOV CS, Ew and 0F 00 /4 are refused. */
TEST(system_and_segment_selectors)
{
        struct x86_emul_regs r;
        struct fake_dev d = {.value = 0xdead0028};
        static const struct {
                uint8_t enc[4], len;
                bool load;
        } ok[] = {
            {{0x0f, 0x00, 0x00}, 3, false},       /* sldt (%rax) */
            {{0x0f, 0x00, 0x08}, 3, false},       /* str (%rax) */
            {{0x48, 0x0f, 0x00, 0x08}, 4, false}, /* rex.w str (%rax): still a word */
            {{0x8c, 0x10}, 2, false},             /* mov %ss, (%rax) */
            {{0x66, 0x8c, 0x08}, 3, false},       /* data16 mov %cs, (%rax) */
            {{0x0f, 0x00, 0x10}, 3, true},        /* lldt (%rax) */
            {{0x0f, 0x00, 0x18}, 3, true},        /* ltr (%rax) */
            {{0x8e, 0x10}, 2, true},              /* mov (%rax), %ss */
            {{0x8e, 0x28}, 2, true},              /* mov (%rax), %gs */
        };

        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                int rc;

                regs_init(&r);
                r.sys_sel = 0x1234;
                d = (struct fake_dev){.value = 0xdead0028}; /* a store changes it */
                rc = run_mode(ok[i].enc, ok[i].len, X86_MODE_LONG64, &r, &d, NULL);
                EXPECT_EQ(rc, ok[i].load ? X86_EMUL_LOAD_SYSSEG : 0);
                EXPECT_EQ(d.n, 1u);
                EXPECT_EQ(d.log[0].size, 2u);
                EXPECT_EQ(d.log[0].write, !ok[i].load);
                if (!ok[i].load) {
                        EXPECT_EQ(d.log[0].val, 0x1234u);
                } else {
                        EXPECT_EQ(r.sys_sel, 0x28u);
                }
                EXPECT_EQ(r.rip, RIP0 + ok[i].len);
                expect_other_regs(&r, NONE, __FILE__, __LINE__);
        }
        regs_init(&r);
        d.n = 0;
        EXPECT_TRUE(run_mode(BYTES(0x8e, 0x08), X86_MODE_LONG64, &r, &d, NULL) != 0); /* mov cs */
        EXPECT_EQ(run_mode(BYTES(0x0f, 0x00, 0x20), X86_MODE_LONG64, &r, &d, NULL),
                  -KEEL_ENOTSUP); /* verr */
        EXPECT_EQ(run_mode(BYTES(0x0f, 0x00, 0x18), X86_MODE_REAL16, &r, &d, NULL),
                  -KEEL_ENOTSUP); /* ltr in real mode: #UD on the CPU */
        EXPECT_EQ(d.n, 0u);
}

/* A GDT descriptor: base, limit (20 bits), access byte, flags nibble (G D/B L AVL). */
static uint64_t gdt_desc(uint32_t base, uint32_t limit, unsigned access, unsigned flags)
{
        return (limit & 0xffffull) | (uint64_t)(base & 0xffffff) << 16 | (uint64_t)access << 40 |
               (uint64_t)(limit >> 16 & 0xf) << 48 | (uint64_t)(flags & 0xf) << 52 |
               (uint64_t)(base >> 24) << 56;
}

TEST(segment_descriptor_checks)
{
        struct x86_sysseg s;
        uint64_t d[2] = {gdt_desc(0x12345678, 0x67, 0x89, 0), 0xffff8000};

        /* LTR of an available 64-bit TSS: busy, base with the upper half. */
        EXPECT_EQ(x86_seg_desc(SEG_LOAD_TR, true, 0, 0x28, d, &s), 0u);
        EXPECT_EQ(s.attr, 0x8bu);
        EXPECT_EQ(s.base, 0xffff800012345678ull);
        EXPECT_EQ(s.limit, 0x67u);
        EXPECT_EQ(s.sel, 0x28u);
        d[1] = 0x8000; /* base 0x800012345678 is not canonical */
        EXPECT_EQ(x86_seg_desc(SEG_LOAD_TR, true, 0, 0x28, d, &s), X86_FAULT(13, 0x28));
        d[1] = 0;
        d[0] = gdt_desc(0, 0x67, 0x8b, 0); /* busy TSS */
        EXPECT_EQ(x86_seg_desc(SEG_LOAD_TR, true, 0, 0x2b, d, &s), X86_FAULT(13, 0x28));
        d[0] = gdt_desc(0, 0x67, 0x09, 0); /* absent */
        EXPECT_EQ(x86_seg_desc(SEG_LOAD_TR, true, 0, 0x28, d, &s), X86_FAULT(11, 0x28));
        d[0] = gdt_desc(0, 0x67, 0x81, 0); /* 16-bit TSS: only outside long mode */
        EXPECT_EQ(x86_seg_desc(SEG_LOAD_TR, true, 0, 0x28, d, &s), X86_FAULT(13, 0x28));
        EXPECT_EQ(x86_seg_desc(SEG_LOAD_TR, false, 0, 0x28, d, &s), 0u);
        EXPECT_EQ(s.attr, 0x83u);
        d[0] = gdt_desc(0x1000, 0xfff, 0x82, 0x8); /* LDT, 4 KiB granularity */
        d[1] = 1ull << 40;                         /* upper type not 0 */
        EXPECT_EQ(x86_seg_desc(SEG_LOAD_LDTR, true, 0, 0x30, d, &s), X86_FAULT(13, 0x30));
        d[1] = 0;
        EXPECT_EQ(x86_seg_desc(SEG_LOAD_LDTR, true, 0, 0x30, d, &s), 0u);
        EXPECT_EQ(s.limit, 0xffffffu);
        EXPECT_EQ(s.attr, 0x882u);
        /* SS: writable data, RPL = DPL = CPL (kvm-unit-tests: KERNEL_DS | 3 at CPL 0). */
        d[0] = gdt_desc(0, 0xfffff, 0x93, 0xc);
        EXPECT_EQ(x86_seg_desc(SEG_LOAD_SS, true, 0, 0x10, d, &s), 0u);
        EXPECT_EQ(s.attr, 0xc93u);
        EXPECT_EQ(x86_seg_desc(SEG_LOAD_SS, true, 0, 0x13, d, &s), X86_FAULT(13, 0x10));
        EXPECT_EQ(x86_seg_desc(SEG_LOAD_SS, true, 3, 0x13, d, &s), X86_FAULT(13, 0x10));
        d[0] = gdt_desc(0, 0xfffff, 0x91, 0xc); /* read-only */
        EXPECT_EQ(x86_seg_desc(SEG_LOAD_SS, true, 0, 0x10, d, &s), X86_FAULT(13, 0x10));
        d[0] = gdt_desc(0, 0xfffff, 0x13, 0xc); /* absent: #SS */
        EXPECT_EQ(x86_seg_desc(SEG_LOAD_SS, true, 0, 0x10, d, &s), X86_FAULT(12, 0x10));
        /* DS: data or readable code, DPL >= max(CPL, RPL) unless conforming. */
        d[0] = gdt_desc(0, 0xfffff, 0x93, 0xc);
        EXPECT_EQ(x86_seg_desc(SEG_LOAD_DATA, true, 3, 0x10, d, &s), X86_FAULT(13, 0x10));
        d[0] = gdt_desc(0, 0xfffff, 0xf3, 0xc);
        EXPECT_EQ(x86_seg_desc(SEG_LOAD_DATA, true, 3, 0x13, d, &s), 0u);
        d[0] = gdt_desc(0, 0xfffff, 0x98, 0xa); /* execute-only code */
        EXPECT_EQ(x86_seg_desc(SEG_LOAD_DATA, true, 0, 0x08, d, &s), X86_FAULT(13, 0x08));
        /* CS: a far JMP to 64-bit code at CPL 0; RPL made the CPL; L and D both: #GP. */
        d[0] = gdt_desc(0, 0xfffff, 0x9b, 0xa);
        EXPECT_EQ(x86_seg_desc(SEG_LOAD_CS, true, 0, 0x08, d, &s), 0u);
        EXPECT_EQ(s.attr, 0xa9bu);
        d[0] = gdt_desc(0, 0xfffff, 0x9b, 0xe);
        EXPECT_EQ(x86_seg_desc(SEG_LOAD_CS, true, 0, 0x08, d, &s), X86_FAULT(13, 0x08));
        d[0] = gdt_desc(0, 0xfffff, 0x9a, 0xa);
        EXPECT_EQ(x86_seg_desc(SEG_LOAD_CS, true, 3, 0x0b, d, &s), X86_FAULT(13, 0x08));
        d[0] = gdt_desc(0, 0xfffff, 0x9e, 0xa); /* conforming DPL 0 from CPL 3 */
        EXPECT_EQ(x86_seg_desc(SEG_LOAD_CS, true, 3, 0x08, d, &s), 0u);
        EXPECT_EQ(s.sel, 0x0bu);
        d[0] = gdt_desc(0, 0, 0x8c, 0); /* a call gate: not emulated */
        EXPECT_EQ(x86_seg_desc(SEG_LOAD_CS, true, 0, 0x40, d, &s), 1u);
}

/* The stack side of kvm-unit-tests' test_push / test_pop / leave / enter on fake memory. */
static int run_stack(const uint8_t *b, size_t n, struct x86_emul_regs *r, struct fake_mem *m)
{
        static const uint64_t seg[6] = {0, 0, 0, 0, 0x1000, 0};
        struct x86_insn in;
        int rc = x86_decode(b, n, X86_MODE_LONG64, &in);

        if (rc)
                return 1000 + rc;
        return x86_emulate_stack(&in, r, seg, mem_access, m);
}

static uint64_t ram64(const struct fake_mem *m, uint64_t lin)
{
        uint64_t v;

        memcpy(&v, m->ram + (lin - LRAM), 8);
        return v;
}

TEST(stack_instructions)
{
        struct x86_emul_regs r;
        struct fake_mem m;
        uint64_t top = LRAM + 128;

        memset(&m, 0, sizeof(m));
        regs_init(&r);
        r.gpr[RSP] = top;
        EXPECT_EQ(run_stack(BYTES(0x6a, 0xf9), &r, &m), 0); /* pushq $-7 */
        EXPECT_EQ(ram64(&m, top - 8), (uint64_t)-7);
        EXPECT_EQ(r.gpr[RSP], top - 8);
        EXPECT_EQ(r.rip, RIP0 + 2);
        r.gpr[RBX] = (uint64_t)-17;
        EXPECT_EQ(run_stack(BYTES(0x53), &r, &m), 0); /* push %rbx */
        EXPECT_EQ(ram64(&m, top - 16), (uint64_t)-17);
        EXPECT_EQ(run_stack(BYTES(0x68, 0x0d, 0x1c, 0x94, 0xff), &r, &m), 0); /* pushq $-7070707 */
        EXPECT_EQ(ram64(&m, top - 24), (uint64_t)-7070707);
        r.gpr[R8] = LRAM; /* pushq (%r8): a memory operand */
        memcpy(m.ram, &(uint64_t){0x123456789abcdefull}, 8);
        EXPECT_EQ(run_stack(BYTES(0x41, 0xff, 0x30), &r, &m), 0);
        EXPECT_EQ(ram64(&m, top - 32), 0x123456789abcdefull);
        EXPECT_EQ(r.gpr[RSP], top - 32);
        /* popq 8(%rsp): the address uses the incremented rSP (SDM "POP") */
        EXPECT_EQ(run_stack(BYTES(0x8f, 0x44, 0x24, 0x08), &r, &m), 0);
        EXPECT_EQ(r.gpr[RSP], top - 24);
        EXPECT_EQ(ram64(&m, top - 16), 0x123456789abcdefull);
        EXPECT_EQ(run_stack(BYTES(0x41, 0x59), &r, &m), 0); /* pop %r9 */
        EXPECT_EQ(r.gpr[9], (uint64_t)-7070707);
        EXPECT_EQ(run_stack(BYTES(0x66, 0x58), &r, &m), 0); /* popw %ax: 2 bytes */
        EXPECT_EQ(r.gpr[RAX], (reg0(RAX) & ~0xffffull) | 0xcdef);
        EXPECT_EQ(r.gpr[RSP], top - 14);
        /* ret: RIP from the stack; ret $16 also drops 16 bytes */
        r.gpr[RSP] = top - 8;
        memcpy(m.ram + 120, &(uint64_t){0x401234}, 8);
        EXPECT_EQ(run_stack(BYTES(0xc3), &r, &m), 0);
        EXPECT_EQ(r.rip, 0x401234u);
        EXPECT_EQ(r.gpr[RSP], top);
        r.gpr[RSP] = top - 8;
        EXPECT_EQ(run_stack(BYTES(0xc2, 0x10, 0x00), &r, &m), 0);
        EXPECT_EQ(r.gpr[RSP], top + 16);
        /* leave: rSP <- rBP, pop rBP (kvm-unit-tests: 0x778899) */
        memcpy(m.ram + 120, &(uint64_t){0x778899}, 8);
        r.gpr[RBP] = top - 8;
        EXPECT_EQ(run_stack(BYTES(0xc9), &r, &m), 0);
        EXPECT_EQ(r.gpr[RBP], 0x778899u);
        EXPECT_EQ(r.gpr[RSP], top);
        /* enter $0x1238, $0: push rBP, rBP <- rSP, rSP -= 0x1238 */
        r.gpr[RBP] = 0xaa55aa55bb66bb66ull;
        EXPECT_EQ(run_stack(BYTES(0xc8, 0x38, 0x12, 0x00), &r, &m), 0);
        EXPECT_EQ(r.gpr[RBP], top - 8);
        EXPECT_EQ(r.gpr[RSP], top - 8 - 0x1238);
        EXPECT_EQ(ram64(&m, top - 8), 0xaa55aa55bb66bb66ull);
        r.gpr[RSP] = top;
        EXPECT_EQ(run_stack(BYTES(0xc8, 0x08, 0x00, 0x01), &r, &m), -KEEL_ENOTSUP); /* level 1 */
        /* call rel32 and call *(%r8): the return address pushed */
        r.rip = RIP0;
        EXPECT_EQ(run_stack(BYTES(0xe8, 0x10, 0x00, 0x00, 0x00), &r, &m), 0);
        EXPECT_EQ(r.rip, RIP0 + 5 + 0x10);
        EXPECT_EQ(ram64(&m, top - 8), RIP0 + 5);
        memcpy(m.ram, &(uint64_t){0x402000}, 8);
        r.rip = RIP0;
        EXPECT_EQ(run_stack(BYTES(0x41, 0xff, 0x10), &r, &m), 0);
        EXPECT_EQ(r.rip, 0x402000u);
        EXPECT_EQ(ram64(&m, top - 16), RIP0 + 3);
        /* jmp *(%r8) to a non-canonical address: #GP(0), nothing changed */
        memcpy(m.ram, &(uint64_t){0xaaaaaaaaaaaaaaaaull}, 8);
        {
                struct x86_emul_regs before = r;

                EXPECT_EQ(run_stack(BYTES(0x41, 0xff, 0x20), &r, &m), X86_EMUL_GP);
                EXPECT_TRUE(memcmp(&r, &before, sizeof(r)) == 0);
                /* a failed stack write leaves everything */
                m.fault_at = r.gpr[RSP] - 8;
                EXPECT_EQ(run_stack(BYTES(0x53), &r, &m), -KEEL_EFAULT);
                EXPECT_TRUE(memcmp(&r, &before, sizeof(r)) == 0);
        }
        /* not stack instructions, or not 64-bit mode */
        EXPECT_EQ(run_stack(BYTES(0xff, 0x00), &r, &m), -KEEL_ENOTSUP); /* inc (%rax) */
        {
                struct x86_insn in;

                EXPECT_EQ(x86_decode(BYTES(0x50), X86_MODE_PROT32, &in), 0);
                EXPECT_EQ(x86_emulate_stack(&in, &r, (const uint64_t[6]){0}, mem_access, &m),
                          -KEEL_ENOTSUP);
        }
}

/* The far pointer of kvm-unit-tests' `rex64 ljmp *(mem)`: 8-byte offset, then the selector. */
TEST(far_pointer)
{
        static const uint64_t seg[6] = {0};
        struct x86_emul_regs r;
        struct fake_mem m;
        struct x86_insn in;
        uint64_t off = 0;
        uint16_t sel = 0;

        memset(&m, 0, sizeof(m));
        regs_init(&r);
        r.gpr[RAX] = LRAM;
        memcpy(m.ram, &(uint64_t){0x401800}, 8);
        memcpy(m.ram + 8, &(uint16_t){0x08}, 2);
        EXPECT_EQ(x86_decode(BYTES(0x48, 0xff, 0x28), X86_MODE_LONG64, &in), 0);
        EXPECT_EQ(x86_far_pointer(&in, &r, seg, mem_access, &m, &off, &sel), 0);
        EXPECT_EQ(off, 0x401800u);
        EXPECT_EQ(sel, 0x08u);
        EXPECT_EQ(m.log[1].lin, LRAM + 8);
        EXPECT_EQ(x86_decode(BYTES(0xff, 0x28), X86_MODE_LONG64, &in), 0); /* m16:32 */
        EXPECT_EQ(x86_far_pointer(&in, &r, seg, mem_access, &m, &off, &sel), 0);
        EXPECT_EQ(m.log[3].lin, LRAM + 4);
        EXPECT_EQ(x86_decode(BYTES(0xff, 0x20), X86_MODE_LONG64, &in), 0); /* near jmp */
        EXPECT_EQ(x86_far_pointer(&in, &r, seg, mem_access, &m, &off, &sel), -KEEL_ENOTSUP);
}

#if defined(__x86_64__)
/*
 * Stack instructions on the host CPU with its rSP and rBP pointed into a buffer (the two are
 * swapped in and out around the instruction: rSI holds rSP, rDI rBP, rAX the operand).
 */
#define HW_STK(fn, text)                                                           \
        static void fn(uint64_t *sp, uint64_t *bp, uint64_t *ax)                   \
        {                                                                          \
                __asm__ volatile("xchg %%rsp, %%rsi\n\txchg %%rbp, %%rdi\n\t" text \
                                 "\n\txchg %%rbp, %%rdi\n\txchg %%rsp, %%rsi"      \
                                 : "+S"(*sp), "+D"(*bp), "+a"(*ax)                 \
                                 :                                                 \
                                 : "memory");                                      \
        }
HW_STK(hs_push_imm8, "pushq $-7")
HW_STK(hs_push_imm32, "pushq $-7070707")
HW_STK(hs_push_rax, "push %%rax")
HW_STK(hs_pushw_ax, "pushw %%ax")
HW_STK(hs_pop_rax, "pop %%rax")
HW_STK(hs_popw_ax, "popw %%ax")
HW_STK(hs_enter, "enter $0x38, $0")
HW_STK(hs_enterw, "enterw $0x10, $0")
HW_STK(hs_leave, "leave")
HW_STK(hs_leavew, "leavew")

/* The same instructions emulated on fake memory holding the same bytes: rSP, rBP, rAX (as
 * offsets into the buffer) and the buffer's bytes above the lower rSP must match. */
TEST(stack_instructions_match_the_cpu)
{
        static const struct {
                const char *name;
                uint8_t enc[5], len;
                void (*hw)(uint64_t *, uint64_t *, uint64_t *);
                /* rBP after: 0 a buffer address, 1 one (ENTER: rBP before is a value, not
                 * an address, pushed the same on both sides), 16 one in BP (the rest
                 * kept), else the bytes popped */
                unsigned popped_bp;
        } ops[] = {
            {"push imm8", {0x6a, 0xf9}, 2, hs_push_imm8, 0},
            {"push imm32", {0x68, 0x0d, 0x1c, 0x94, 0xff}, 5, hs_push_imm32, 0},
            {"push rax", {0x50}, 1, hs_push_rax, 0},
            {"pushw ax", {0x66, 0x50}, 2, hs_pushw_ax, 0},
            {"pop rax", {0x58}, 1, hs_pop_rax, 0},
            {"popw ax", {0x66, 0x58}, 2, hs_popw_ax, 0},
            {"enter", {0xc8, 0x38, 0x00, 0x00}, 4, hs_enter, 1},
            {"enterw", {0x66, 0xc8, 0x10, 0x00, 0x00}, 5, hs_enterw, 16},
            {"leave", {0xc9}, 1, hs_leave, 8},
            {"leavew", {0x66, 0xc9}, 2, hs_leavew, 2},
        };
        static uint8_t host[32768] __attribute__((aligned(16)));
        uint8_t *win = host + 16384; /* the 256 bytes that mirror the fake RAM at LRAM */

        for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
                for (unsigned k = 0; k < 8; k++) {
                        uint64_t off = 96 + 2 * k, boff = 160 + 8 * k, ax = rnd();
                        uint64_t sp = (uint64_t)(uintptr_t)win + off;
                        uint64_t bp = (uint64_t)(uintptr_t)win + boff, hax = ax;
                        struct x86_emul_regs r;
                        struct fake_mem m;
                        uint64_t low, bp0;
                        int rc;

                        memset(&m, 0, sizeof(m));
                        for (unsigned i = 0; i < 256; i++)
                                win[i] = m.ram[i] = (uint8_t)rnd();
                        regs_init(&r);
                        r.gpr[RSP] = LRAM + off;
                        r.gpr[RBP] = LRAM + boff;
                        if (ops[o].popped_bp == 1 || ops[o].popped_bp == 16)
                                r.gpr[RBP] = bp = rnd();
                        r.gpr[RAX] = ax;
                        bp0 = r.gpr[RBP];
                        rc = run_stack(ops[o].enc, ops[o].len, &r, &m);
                        ops[o].hw(&sp, &bp, &hax);
                        low = sp - (uint64_t)(uintptr_t)win;
                        if (r.gpr[RSP] - LRAM < low)
                                low = r.gpr[RSP] - LRAM;
                        if (rc != 0 || r.gpr[RSP] - LRAM != sp - (uint64_t)(uintptr_t)win ||
                            r.gpr[RAX] != hax || r.rip != RIP0 + ops[o].len ||
                            (ops[o].popped_bp <= 1 &&
                             r.gpr[RBP] - LRAM != bp - (uint64_t)(uintptr_t)win) ||
                            (ops[o].popped_bp == 16 &&
                             (r.gpr[RBP] != (bp0 & ~0xffffull) + (r.gpr[RBP] & 0xffff) ||
                              ((r.gpr[RBP] - LRAM) & 0xffff) !=
                                  ((bp - (uint64_t)(uintptr_t)win) & 0xffff))) ||
                            (ops[o].popped_bp == 8 && r.gpr[RBP] != bp) ||
                            (ops[o].popped_bp == 2 &&
                             r.gpr[RBP] != ((LRAM + boff) & ~0xffffull) + (bp & 0xffff)) ||
                            memcmp(win + low, m.ram + low, 256 - low) != 0)
                                TEST_FAIL_AT(
                                    __FILE__, __LINE__,
                                    "%s k %u: rc %d rsp +%#llx cpu +%#llx rax %#llx cpu "
                                    "%#llx rbp %#llx cpu %#llx",
                                    ops[o].name, k, rc, (unsigned long long)(r.gpr[RSP] - LRAM),
                                    (unsigned long long)(sp - (uint64_t)(uintptr_t)win),
                                    (unsigned long long)r.gpr[RAX], (unsigned long long)hax,
                                    (unsigned long long)r.gpr[RBP], (unsigned long long)bp);
                }
        }
}
#endif
