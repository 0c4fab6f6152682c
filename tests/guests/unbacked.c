/*
 * unbacked (x86_64): accesses guest-physical addresses with nothing behind them, neither RAM
 * nor a device, with the VM's default config (unbacked = abort). A PC answers such a read
 * with all ones and drops such a write (docs/x86-interrupts.md), and so must Keel: loads of
 * 1, 2, 4 and 8 bytes just past RAM and at 0xff000000 (where kvm-unit-tests' `emulator`
 * writes) read all ones, written values do not stick, a zero-extending load extends the ones,
 * and the last page of RAM is left as it was.
 *
 * Then the instructions a guest may aim at such memory besides moves (kvm-unit-tests'
 * `emulator` runs them at 0xff000000): ADD OR ADC SBB AND SUB XOR CMP (register, imm8
 * sign-extended and imm32 forms), TEST, INC DEC NEG NOT, XCHG, XADD, CMPXCHG (equal and not),
 * BT BTS BTR BTC (register bit offsets that select the operand before or after, and
 * immediates), MOVZX/MOVSX, BSF BSR, IMUL MUL, SHLD SHRD, CMOVcc, and SSE/MMX moves (the
 * register read back with the CPU's own moves; an MMX move's x87 side effects: TOS 0), with
 * and without LOCK, each run twice: on the unbacked address and
 * on a RAM word holding what that address reads (all ones). The CPU's own result on RAM is
 * the reference: the flags, the register operand and rAX must be the same (the memory result
 * is dropped). Then string instructions: REP MOVSB/STOSB/LODSB/CMPSB/SCASB of 1000 elements
 * (more than Keel does per exit) between RAM and the unbacked page, both directions and DF,
 * against the same instruction on two RAM buffers.
 *
 * Built a second time as a Linux-wrapped guest (UNBACKED_LAPIC, unbacked_lapic.linux), which
 * has a local APIC: the same instructions on a device register that keeps 32-bit values, the
 * LAPIC timer's initial count (0xfee00380, the timer masked), whose value is read back and
 * compared with the RAM word's. Failures print "FAIL: ..."; the exit code is their number.
 */
#include "guest.h"

#define PAGE_SIZE 4096u

static unsigned failures;

static void expect(const char *what, uint64_t addr, uint64_t got, uint64_t want)
{
        if (got != want) {
                guest_printf("FAIL: %s at 0x%lx read 0x%lx, expected 0x%lx\n", what, addr, got,
                             want);
                failures++;
        }
}

static void probe(uint64_t addr)
{
        volatile uint8_t *b = (volatile uint8_t *)(uintptr_t)addr;
        volatile uint16_t *h = (volatile uint16_t *)(uintptr_t)addr;
        volatile uint32_t *w = (volatile uint32_t *)(uintptr_t)addr;
        volatile uint64_t *d = (volatile uint64_t *)(uintptr_t)addr;
        uint32_t zx;

        expect("1-byte load", addr, *b, 0xff);
        expect("2-byte load", addr, *h, 0xffff);
        expect("4-byte load", addr, *w, 0xffffffffu);
        expect("8-byte load", addr, *d, ~0ull);
        __asm__ volatile("movzbl (%1), %0" : "=r"(zx) : "r"(b) : "memory");
        expect("movzbl", addr, zx, 0xff);
        *d = 0x1122334455667788ull;
        *w = 0;
        *b = 0x5a;
        expect("8-byte load after writes", addr, *d, ~0ull);
        expect("4-byte load at +4 after writes", addr + 4, w[1], 0xffffffffu);
}

/* ---- the same instruction on RAM and on the unbacked address / device register ---- */

struct run {
        uint64_t fl, y, a;
};

#define ARITH_FLAGS ((uint64_t)0x8d5) /* CF PF AF ZF SF OF */

/* Runs `text` with %[p] the memory operand's address, %[y] a register operand, rAX, and
 * RFLAGS = fl (arithmetic bits; IF kept off); returns RFLAGS after. */
#define OP(fn, text)                                                                       \
        static void fn(volatile void *p, struct run *r, uint64_t fl)                       \
        {                                                                                  \
                uint64_t y = r->y, a = r->a, f;                                            \
                __asm__ volatile("pushq %[fi]\n\tpopfq\n\t" text "\n\tpushfq\n\tpopq %[f]" \
                                 : [f] "=&r"(f), [y] "+r"(y), "+a"(a)                      \
                                 : [fi] "r"(fl | 2), [p] "r"(p)                            \
                                 : "cc", "memory", "rdx");                                 \
                r->y = y;                                                                  \
                r->a = a;                                                                  \
                r->fl = f;                                                                 \
        }

OP(op_add, "addl %k[y], (%[p])")
OP(op_addb_imm, "addb $0x81, (%[p])")
OP(op_or, "orl %k[y], (%[p])")
OP(op_adc, "adcl %k[y], (%[p])")
OP(op_adcq_imm8, "adcq $-3, (%[p])")
OP(op_sbb, "sbbl %k[y], (%[p])")
OP(op_sbb_load, "sbbl (%[p]), %k[y]")
OP(op_and_imm, "andl $0x0ff00ff0, (%[p])")
OP(op_sub_imm8, "subl $-128, (%[p])")
OP(op_xor, "xorl %k[y], (%[p])")
OP(op_cmp, "cmpl %k[y], (%[p])")
OP(op_cmp_load, "cmpl (%[p]), %k[y]")
OP(op_test, "testl %k[y], (%[p])")
OP(op_test_imm, "testl $0x80000001, (%[p])")
OP(op_inc, "incl (%[p])")
OP(op_dec, "decl (%[p])")
OP(op_neg, "negl (%[p])")
OP(op_not, "notl (%[p])")
OP(op_lock_add, "lock addl %k[y], (%[p])")
OP(op_lock_dec, "lock decl (%[p])")
OP(op_xchg, "xchgl %k[y], (%[p])")
OP(op_xadd, "lock xaddl %k[y], (%[p])")
OP(op_cmpxchg, "lock cmpxchgl %k[y], (%[p])")
OP(op_bt, "btl %k[y], (%[p])")
OP(op_bts, "lock btsl %k[y], (%[p])")
OP(op_btr, "btrl %k[y], (%[p])")
OP(op_btc, "btcl %k[y], (%[p])")
OP(op_btc_imm, "btcl $37, (%[p])")
OP(op_movzx, "movzwl (%[p]), %k[y]")
OP(op_movsx, "movsbq (%[p]), %q[y]")
/* BSF of 0 keeps the destination (the SDM: undefined); a 32-bit one's top half is cleared by
 * QEMU and Intel's CPUs, kept by Bochs and AMD's: y is zero-extended first. */
OP(op_bsf, "movl %k[y], %k[y]\n\tbsfl (%[p]), %k[y]")
OP(op_bsr, "bsrw (%[p]), %w[y]")
OP(op_imul, "imull (%[p]), %k[y]")
OP(op_imul_imm, "imulq $-77, (%[p]), %q[y]")
OP(op_mul, "mull (%[p])")
OP(op_shld, "shldl $5, %k[y], (%[p])")
OP(op_shrd, "shrdl $1, %k[y], (%[p])")
OP(op_cmovne, "cmovnel (%[p]), %k[y]")
/* The vector register Keel fills (read back with the CPU's own moves), and the x87 state an
 * MMX move leaves (FSTSW into AX: TOS 0 after it, with two values pushed before). */
OP(op_movdqu_lo, "movdqu (%[p]), %%xmm3\n\tmovq %%xmm3, %q[y]")
OP(op_movups_hi, "movups (%[p]), %%xmm9\n\tpsrldq $8, %%xmm9\n\tmovq %%xmm9, %q[y]")
OP(op_movd_xmm, "pcmpeqd %%xmm2, %%xmm2\n\tmovd (%[p]), %%xmm2\n\tpsrldq $2, %%xmm2\n\t"
                "movq %%xmm2, %q[y]")
OP(op_movups_st, "movq %q[y], %%xmm4\n\tmovups %%xmm4, (%[p])\n\tmovq %%xmm4, %q[y]")
OP(op_movq_mmx, "fninit\n\tfld1\n\tfld1\n\tmovq (%[p]), %%mm2\n\tfnstsw %%ax\n\t"
                "movq %%mm2, %q[y]\n\tfninit")
OP(op_movq_mmx_st, "fninit\n\tfld1\n\tmovq %q[y], %%mm5\n\tmovd %%mm5, (%[p])\n\t"
                   "fnstsw %%ax\n\tmovq %%mm5, %q[y]\n\tfninit")

typedef void (*op_fn)(volatile void *, struct run *, uint64_t);

static const struct {
        const char *name;
        op_fn fn;
        bool bit_offset; /* y is a bit offset: the operand may be the dword before or after */
        bool word;       /* accesses fewer than 4 bytes (not on the LAPIC, which takes only 4) */
} ops[] = {
    {"add", op_add, false, false},
    {"add byte imm", op_addb_imm, false, true},
    {"or", op_or, false, false},
    {"adc", op_adc, false, false},
    {"adc qword imm8", op_adcq_imm8, false, true},
    {"sbb", op_sbb, false, false},
    {"sbb (load)", op_sbb_load, false, false},
    {"and imm32", op_and_imm, false, false},
    {"sub imm8", op_sub_imm8, false, false},
    {"xor", op_xor, false, false},
    {"cmp", op_cmp, false, false},
    {"cmp (load)", op_cmp_load, false, false},
    {"test", op_test, false, false},
    {"test imm", op_test_imm, false, false},
    {"inc", op_inc, false, false},
    {"dec", op_dec, false, false},
    {"neg", op_neg, false, false},
    {"not", op_not, false, false},
    {"lock add", op_lock_add, false, false},
    {"lock dec", op_lock_dec, false, false},
    {"xchg", op_xchg, false, false},
    {"lock xadd", op_xadd, false, false},
    {"lock cmpxchg", op_cmpxchg, false, false},
    {"bt", op_bt, true, false},
    {"lock bts", op_bts, true, false},
    {"btr", op_btr, true, false},
    {"btc", op_btc, true, false},
    {"btc imm", op_btc_imm, false, false},
    {"movzwl", op_movzx, false, true},
    {"movsbq", op_movsx, false, true},
    {"bsf", op_bsf, false, false},
    {"bsr word", op_bsr, false, true},
    {"imul", op_imul, false, false},
    {"imul qword imm8", op_imul_imm, false, true},
    {"mul", op_mul, false, false},
    {"shld", op_shld, false, false},
    {"shrd", op_shrd, false, false},
    {"cmovne", op_cmovne, false, false},
    {"movdqu", op_movdqu_lo, false, true},
    {"movups (high half)", op_movups_hi, false, true},
    {"movd xmm", op_movd_xmm, false, false},
    {"movups store", op_movups_st, false, true},
    {"movq mm (TOS 6)", op_movq_mmx, false, true},
    {"movd mm store", op_movq_mmx_st, false, false},
};

/* The flags an instruction defines (the SDM leaves the others undefined: QEMU's TCG and the
 * CPUs differ there). */
static uint64_t defined_flags(op_fn fn)
{
        if (fn == op_bsf || fn == op_bsr)
                return 0x40; /* ZF */
        if (fn == op_imul || fn == op_imul_imm || fn == op_mul)
                return 0x801; /* CF OF */
        if (fn == op_shld)
                return 0xc5; /* CF PF ZF SF (OF: a count of 1 only) */
        if (fn == op_shrd)
                return 0x8c5; /* CF PF ZF SF OF (a count of 1) */
        return ARITH_FLAGS;
}

/* Operand pairs: memory value (the device's; all ones for unbacked memory), y, rAX. */
static const uint32_t mem_vals[] = {0xffffffffu, 0, 1, 0x7fffffffu, 0x80000000u, 0x12345678u};
static const uint64_t y_vals[] = {0, 1, 0xffffffffu, 0x80000000u, 0x1111ffff00000f0full};
static const uint64_t bit_offsets[] = {0, 5, 31, 32, 63, (uint64_t)-1, (uint64_t)-32, 40};

/* [1] is the operand; [0] and [2] for bit offsets, [1]..[4] for 16-byte moves */
static volatile uint32_t ram_words[8];

/*
 * One instruction on RAM and at `mmio` (`dev_val` what a 4-byte read there gives before;
 * `readback`: it keeps what is written, compare it with RAM after).
 */
static void compare_op(unsigned i, uint64_t mmio, uint32_t dev_val, uint64_t y, uint64_t a,
                       uint64_t fl, bool readback)
{
        struct run ram = {0, y, a}, dev = {0, y, a};
        volatile uint32_t *d = (volatile uint32_t *)(uintptr_t)mmio;
        uint32_t after;

        for (unsigned k = 0; k < 8; k++) /* the neighbours (bit offsets, 16 bytes) as the device */
                ram_words[k] = dev_val;
        if (readback)
                *d = dev_val;
        ops[i].fn(&ram_words[1], &ram, fl);
        ops[i].fn(d, &dev, fl);
        after = readback ? *d : ram_words[1];
        /* BT*: only CF is defined (QEMU's TCG changes the others, the CPUs and Keel do not). */
        uint64_t mask = ops[i].bit_offset || ops[i].fn == op_btc_imm ? 1 : defined_flags(ops[i].fn);

        if ((ram.fl & mask) != (dev.fl & mask) || ram.y != dev.y || ram.a != dev.a ||
            after != ram_words[1]) {
                guest_printf("FAIL: %s at 0x%lx (memory 0x%x, y 0x%lx, rax 0x%lx, flags 0x%lx): "
                             "flags 0x%lx y 0x%lx rax 0x%lx memory 0x%x, on RAM flags 0x%lx y "
                             "0x%lx rax 0x%lx memory 0x%x\n",
                             ops[i].name, mmio, dev_val, y, a, fl, dev.fl & ARITH_FLAGS, dev.y,
                             dev.a, after, ram.fl & ARITH_FLAGS, ram.y, ram.a, ram_words[1]);
                failures++;
        }
}

/* Every op with every operand pair and two flag settings; `readback` on a device that keeps
 * 32-bit values (only 4-byte ops then), else on unbacked memory (reads all ones). */
static unsigned ops_at(uint64_t mmio, bool readback)
{
        unsigned n = 0;

        for (unsigned i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
                if (readback && ops[i].word)
                        continue;
                for (unsigned m = 0; m < sizeof(mem_vals) / sizeof(mem_vals[0]); m++) {
                        uint32_t v = readback ? mem_vals[m] : 0xffffffffu;
                        unsigned ny =
                            ops[i].bit_offset ? sizeof(bit_offsets) / 8 : sizeof(y_vals) / 8;

                        if (!readback && m > 0)
                                break; /* unbacked memory has one value */
                        for (unsigned k = 0; k < ny; k++) {
                                uint64_t y = ops[i].bit_offset ? bit_offsets[k] : y_vals[k];

                                /* The LAPIC's neighbouring registers hold other values. */
                                if (readback && ops[i].bit_offset && y > 31)
                                        continue;
                                /* rAX: the memory value half the time (CMPXCHG equal). */
                                uint64_t a = (k & 1) ? v : 0x5555aaaa0000ffffull;

                                compare_op(i, mmio, v, y, a, 0, readback);
                                compare_op(i, mmio, v, y, a, ARITH_FLAGS, readback);
                                n += 2;
                        }
                }
        }
        return n;
}

/* ---- string instructions ---- */

struct sregs {
        uint64_t si, di, cx, a, fl;
};

/* `text` with rSI, rDI, rCX, rAX and RFLAGS (DF as asked) in and out. */
#define SOP(fn, text)                                                                              \
        static void fn(struct sregs *r)                                                            \
        {                                                                                          \
                uint64_t f;                                                                        \
                __asm__ volatile("pushq %[fi]\n\tpopfq\n\t" text "\n\tpushfq\n\tpopq %[f]\n\tcld"  \
                                 : [f] "=&r"(f), "+S"(r->si), "+D"(r->di), "+c"(r->cx), "+a"(r->a) \
                                 : [fi] "r"(r->fl | 2)                                             \
                                 : "cc", "memory");                                                \
                r->fl = f;                                                                         \
        }

SOP(s_rep_movsb, "rep movsb")
SOP(s_rep_stosb, "rep stosb")
SOP(s_rep_lodsb, "rep lodsb")
SOP(s_repe_cmpsb, "repe cmpsb")
SOP(s_repne_scasb, "repne scasb")
SOP(s_repe_scasl, "repe scasl")
SOP(s_movsl, "movsl")
SOP(s_stosl, "stosl")
SOP(s_lodsl, "lodsl")
SOP(s_cmpsl, "cmpsl")
SOP(s_rep_movsq, "rep movsq")

#define SBUF 1200
static uint8_t buf_a[SBUF], buf_b[SBUF], buf_c[SBUF];

/*
 * Runs `fn` from `dev` (operands in the unbacked page / at the device register) and from `ram`
 * (the same operands in RAM); rCX, rAX and the flags must end equal, rSI and rDI must have
 * moved by the same amount.
 */
static void sregs_compare(const char *what, void (*fn)(struct sregs *), struct sregs dev,
                          struct sregs ram)
{
        struct sregs d = dev, r = ram;

        fn(&d);
        fn(&r);
        if (d.cx != r.cx || d.a != r.a || (d.fl & ARITH_FLAGS) != (r.fl & ARITH_FLAGS) ||
            d.si - dev.si != r.si - ram.si || d.di - dev.di != r.di - ram.di) {
                guest_printf("FAIL: %s: rcx %lu rax 0x%lx flags 0x%lx si %ld di %ld, on RAM rcx "
                             "%lu rax 0x%lx flags 0x%lx si %ld di %ld\n",
                             what, d.cx, d.a, d.fl & ARITH_FLAGS, (long)(d.si - dev.si),
                             (long)(d.di - dev.di), r.cx, r.a, r.fl & ARITH_FLAGS,
                             (long)(r.si - ram.si), (long)(r.di - ram.di));
                failures++;
        }
}

static bool all_bytes(const uint8_t *b, unsigned n, uint8_t v)
{
        for (unsigned i = 0; i < n; i++)
                if (b[i] != v)
                        return false;
        return true;
}

/*
 * REP string instructions of 1000 elements between RAM and the unbacked page at `u` (reads
 * all ones), each against the same run with buf_c (all ones) standing in for the page and
 * buf_b for the RAM destination.
 */
static unsigned strings_unbacked(uint64_t u)
{
        uint64_t c = (uint64_t)(uintptr_t)buf_c, a = (uint64_t)(uintptr_t)buf_a;
        uint64_t b = (uint64_t)(uintptr_t)buf_b;

        for (unsigned i = 0; i < SBUF; i++)
                buf_c[i] = 0xff;
        /* rep movsb from the page: 1000 bytes of all ones. */
        for (unsigned i = 0; i < SBUF; i++)
                buf_a[i] = 0;
        sregs_compare("rep movsb from unbacked", s_rep_movsb, (struct sregs){u, a, 1000, 7, 0},
                      (struct sregs){c, b, 1000, 7, 0});
        if (!all_bytes(buf_a, 1000, 0xff) || buf_a[1000] != 0) {
                guest_printf("FAIL: rep movsb from unbacked: the 1000 bytes are not all ones\n");
                failures++;
        }
        /* rep movsb to the page, downwards: the writes vanish, the registers step back. */
        for (unsigned i = 0; i < SBUF; i++)
                buf_b[i] = 0;
        sregs_compare("std; rep movsb to unbacked", s_rep_movsb,
                      (struct sregs){a + 999, u + 999, 1000, 7, 1u << 10},
                      (struct sregs){a + 999, b + 999, 1000, 7, 1u << 10});
        /* rep stosb to the page. */
        sregs_compare("rep stosb to unbacked", s_rep_stosb, (struct sregs){0, u, 1000, 0x5a, 0},
                      (struct sregs){0, b, 1000, 0x5a, 0});
        /* rep lodsb: the last byte loaded. */
        sregs_compare("rep lodsb from unbacked", s_rep_lodsb, (struct sregs){u, 0, 1000, 0x1234, 0},
                      (struct sregs){c, 0, 1000, 0x1234, 0});
        /* repe cmpsb: RAM of all ones with a different byte at 300 stops there. */
        for (unsigned i = 0; i < SBUF; i++)
                buf_a[i] = 0xff;
        buf_a[300] = 0x7f;
        sregs_compare("repe cmpsb against unbacked", s_repe_cmpsb, (struct sregs){a, u, 1000, 0, 0},
                      (struct sregs){a, c, 1000, 0, 0});
        /* repne scasb for a byte never found; repe scasl for all ones (found everywhere). */
        sregs_compare("repne scasb of unbacked", s_repne_scasb, (struct sregs){0, u, 1000, 0x12, 0},
                      (struct sregs){0, c, 1000, 0x12, 0});
        sregs_compare("repe scasl of unbacked", s_repe_scasl,
                      (struct sregs){0, u, 250, 0xffffffffull, 0},
                      (struct sregs){0, c, 250, 0xffffffffull, 0});
        /* rep movsq from the page into RAM, 100 quadwords. */
        for (unsigned i = 0; i < SBUF; i++)
                buf_a[i] = 0;
        sregs_compare("rep movsq from unbacked", s_rep_movsq, (struct sregs){u, a, 100, 0, 0},
                      (struct sregs){c, b, 100, 0, 0});
        if (!all_bytes(buf_a, 800, 0xff) || buf_a[800] != 0) {
                guest_printf("FAIL: rep movsq from unbacked: the 800 bytes are not all ones\n");
                failures++;
        }
        /* The single-element forms, upwards and down. */
        sregs_compare("movsl from unbacked", s_movsl, (struct sregs){u + 8, a, 0, 0, 0},
                      (struct sregs){c + 8, b, 0, 0, 0});
        sregs_compare("std; stosl to unbacked", s_stosl,
                      (struct sregs){0, u + 8, 0, 0x77, 1u << 10},
                      (struct sregs){0, b + 8, 0, 0x77, 1u << 10});
        sregs_compare("std; lodsl from unbacked", s_lodsl,
                      (struct sregs){u + 16, 0, 0, 0x1111111111111111ull, 1u << 10},
                      (struct sregs){c + 16, 0, 0, 0x1111111111111111ull, 1u << 10});
        sregs_compare("cmpsl against unbacked", s_cmpsl, (struct sregs){a, u, 0, 0, 0},
                      (struct sregs){a, c, 0, 0, 0});
        return 12;
}

#ifdef UNBACKED_LAPIC
/* The single-element string instructions on a 32-bit device register `reg`. */
static unsigned strings_device(uint64_t reg)
{
        volatile uint32_t *d = (volatile uint32_t *)(uintptr_t)reg;
        uint32_t src = 0x0badcafe, dst = 0;
        struct sregs r;

        r = (struct sregs){(uint64_t)(uintptr_t)&src, reg, 0, 0, 0};
        s_movsl(&r);
        if (*d != 0x0badcafe || r.si != (uint64_t)(uintptr_t)&src + 4 || r.di != reg + 4) {
                guest_printf("FAIL: movsl to the device register: it holds 0x%x\n", *d);
                failures++;
        }
        *d = 0x600df00d;
        r = (struct sregs){reg, (uint64_t)(uintptr_t)&dst, 0, 0, 0};
        s_movsl(&r);
        if (dst != 0x600df00d) {
                guest_printf("FAIL: movsl from the device register: read 0x%x\n", dst);
                failures++;
        }
        r = (struct sregs){0, reg, 0, 0xffffffff13572468ull, 0};
        s_stosl(&r);
        if (*d != 0x13572468) {
                guest_printf("FAIL: stosl to the device register: it holds 0x%x\n", *d);
                failures++;
        }
        r = (struct sregs){reg, 0, 0, 0xffffffffffffffffull, 1u << 10};
        s_lodsl(&r);
        if (r.a != 0x13572468 || r.si != reg - 4) {
                guest_printf("FAIL: std; lodsl from the device register: rax 0x%lx\n", r.a);
                failures++;
        }
        /* cmpsl RAM - device against RAM - RAM. */
        src = 0x13572467;
        dst = 0x13572468;
        sregs_compare(
            "cmpsl against the device register", s_cmpsl,
            (struct sregs){(uint64_t)(uintptr_t)&src, reg, 0, 0, 0},
            (struct sregs){(uint64_t)(uintptr_t)&src, (uint64_t)(uintptr_t)&dst, 0, 0, 0});
        return 5;
}
#endif

int64_t guest_main(void)
{
        uint64_t end = guest_ram_end();
        volatile uint64_t *last = (volatile uint64_t *)(uintptr_t)(end - PAGE_SIZE);
        const uint64_t n = PAGE_SIZE / 8;

        for (uint64_t i = 0; i < n; i++)
                last[i] = 0xa5a5000000000000ull | i;
        guest_printf("unbacked: probing 0x%lx (RAM ends at 0x%lx) and 0xff000000\n", end + 0x1000,
                     end);
        probe(end + 0x1000);
        probe(end + 0x1ff8);
        probe(0xff000000ull);
        for (uint64_t i = 0; i < n; i++)
                if (last[i] != (0xa5a5000000000000ull | i)) {
                        guest_printf("FAIL: RAM word at 0x%lx changed to 0x%lx\n",
                                     end - PAGE_SIZE + 8 * i, last[i]);
                        failures++;
                        break;
                }
        if (!failures)
                guest_printf("unbacked: 3 addresses read all ones, writes dropped, RAM intact\n");
        {
                unsigned runs = ops_at(0xff000000ull, false) + ops_at(end + 0x1ff0, false);
                unsigned ns = strings_unbacked(0xff000000ull);

#ifdef UNBACKED_LAPIC
                /* The LAPIC timer's initial count (the LVT timer stays masked). */
                runs += ops_at(0xfee00380ull, true);
                ns += strings_device(0xfee00380ull);
                *(volatile uint32_t *)(uintptr_t)0xfee00380ull = 0;
#endif
                if (!failures)
                        guest_printf("unbacked: %u read-modify-write and compare runs and %u "
                                     "string instructions as on RAM\n",
                                     runs, ns);
        }
        return failures;
}
