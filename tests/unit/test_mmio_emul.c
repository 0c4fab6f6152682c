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

#define DEV  0xd0000010ull
#define RIP0 0x401000ull
#define FL0  0x202ull
#define NONE 0xffu
#define RAX  0
#define RCX  1
#define RDX  2
#define RBX  3
#define RSP  4
#define RBP  5
#define RSI  6
#define RDI  7
#define R8   8
#define R15  15

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
        /* and [rax], ecx: AF (undefined) kept, CF/OF cleared, PF of the low byte 0x00. */
        ALU(BYTES(0x21, 0x08), 0x0f0f0f0f, 0xff00ff00, true, 0x0f000f00, 0x0f0f0f0f, PF | AF, 4);
        /* or [rax], ecx */
        ALU(BYTES(0x09, 0x08), 0x80000001, 0x2, true, 0x80000003, 0x80000001, SF | PF | AF, 4);
        /* xor [rax], ecx: zero */
        ALU(BYTES(0x31, 0x08), 0x1234, 0x1234, true, 0, 0x1234, ZF | PF | AF, 4);
        /* cmp ecx, [rax]: 1 - 2 */
        ALU(BYTES(0x3b, 0x08), 1, 2, false, 0, 1, CF | SF | AF | PF, 4);
        /* cmp [rax], ecx: 0x80000000 - 1 overflows */
        ALU(BYTES(0x39, 0x08), 1, 0x80000000, false, 0, 1, OF | AF | PF, 4);
        /* test [rax], ecx */
        ALU(BYTES(0x85, 0x08), 0xf0, 0x0f, false, 0, 0xf0, ZF | PF | AF, 4);
        /* test dword [rax], imm32 */
        ALU(BYTES(0xf7, 0x00, 0x78, 0x56, 0x34, 0x12), 0, 0x10000000, false, 0, 0, PF | AF, 4);
        /* test byte [rax], 0x80: SF, odd parity */
        ALU(BYTES(0xf6, 0x00, 0x80), 0, 0x80, false, 0, 0, SF | AF, 1);
        /* and dword [rax], -2 (imm8 sign-extended) */
        ALU(BYTES(0x83, 0x20, 0xfe), 0, 0x3, true, 0x2, 0, AF, 4);
        /* or dword [rax], 0x100 */
        ALU(BYTES(0x81, 0x08, 0x00, 0x01, 0x00, 0x00), 0, 0x1, true, 0x101, 0, AF, 4);
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
        ALU(BYTES(0x23, 0x08), 0xffffffff0000ffffull, 0x12345678, false, 0, 0x5678, PF | AF, 4);
        /* sub ecx, [rax] */
        ALU(BYTES(0x2b, 0x08), 5, 7, false, 0, 0xfffffffe, CF | SF | AF, 4);
        /* or cl, [rax]: byte register destination keeps the rest */
        ALU(BYTES(0x0a, 0x08), 0x1100, 0x01, false, 0, 0x1101, AF, 1);
        /* add word [rax], cx */
        ALU(BYTES(0x66, 0x01, 0x08), 0x8000, 0x8000, true, 0, 0x8000, CF | OF | ZF | PF, 2);
        /* and ch, [rax] with a high-byte register */
        ALU(BYTES(0x22, 0x28), 0xff00, 0x0f, false, 0, 0x0f00, AF | PF, 1);
}

#if defined(__x86_64__)
/* Flags of the real CPU for `op b, a` (AT&T: a is the destination). AF masked by the caller
 * for the logical instructions. */
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
                                mask = X86_RFLAGS_ARITH & ~(ops[o].logical ? AF : 0);
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
        REFUSED(BYTES(0xf0, 0x09, 0x08));             /* lock or [rax], ecx */
        REFUSED(BYTES(0xf0, 0x48, 0x0f, 0xab, 0x08)); /* lock bts [rax], rcx */
        REFUSED(BYTES(0xf3, 0xa5));                   /* rep movsd */
        REFUSED(BYTES(0xa5));                         /* movsd */
        REFUSED(BYTES(0xf3, 0xab));                   /* rep stosd */
        REFUSED(BYTES(0xc5, 0xf9, 0x7e, 0x00));       /* vmovd [rax], xmm0 */
        REFUSED(BYTES(0xc5, 0xfa, 0x6f, 0x00));       /* vmovdqu xmm0, [rax] */
        REFUSED(BYTES(0x0f, 0x10, 0x00));             /* movups xmm0, [rax] */
        REFUSED(BYTES(0x0f, 0xc3, 0x08));             /* movnti [rax], ecx */
        REFUSED(BYTES(0x89, 0xc8));                   /* mov eax, ecx: no memory operand */
        REFUSED(BYTES(0x0f, 0xb6, 0xc8));             /* movzx ecx, al */
        REFUSED(BYTES(0x21, 0xc8));                   /* and eax, ecx */
        REFUSED(BYTES(0x11, 0x08));                   /* adc [rax], ecx */
        REFUSED(BYTES(0x19, 0x08));                   /* sbb [rax], ecx */
        REFUSED(BYTES(0x83, 0x10, 0x01));             /* adc dword [rax], 1 */
        REFUSED(BYTES(0x87, 0x08));                   /* xchg [rax], ecx */
        REFUSED(BYTES(0xff, 0x00));                   /* inc dword [rax] */
        REFUSED(BYTES(0xf7, 0x10));                   /* not dword [rax] */
        REFUSED(BYTES(0xf7, 0x18));                   /* neg dword [rax] */
        REFUSED(BYTES(0x0f, 0xa3, 0x08));             /* bt [rax], ecx */
        REFUSED(BYTES(0x8d, 0x08));                   /* lea ecx, [rax] */
        REFUSED(BYTES(0x0f, 0xc7, 0x08));             /* cmpxchg8b [rax] */
        REFUSED(BYTES(0x0f, 0xb1, 0x08));             /* cmpxchg [rax], ecx */
        REFUSED(BYTES(0x8e, 0x18));                   /* mov ds, [rax] */
        REFUSED(BYTES(0xd1, 0x20));                   /* shl dword [rax], 1 */
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
        static const uint8_t locked[] = {0xf0, 0x01, 0x03}; /* lock add %eax, (%rbx) */
        static const uint8_t reg[] = {0x89, 0xc3};          /* mov %eax, %ebx */

        EXPECT_EQ(operand_of(locked, sizeof(locked), X86_MODE_LONG64, gpr, seg, &lin, &size),
                  -KEEL_ENOTSUP);
        EXPECT_EQ(operand_of(reg, sizeof(reg), X86_MODE_LONG64, gpr, seg, &lin, &size),
                  -KEEL_ENOTSUP);
}

TEST_MAIN()
