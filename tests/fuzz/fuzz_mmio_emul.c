/*
 * libFuzzer target for the MMIO instruction emulator (arch/x86_64/mmio_emul.c). Input: one
 * mode byte, 8 bytes of device value, then the instruction bytes. The instruction is decoded
 * and emulated against a register file and a device that returns the fuzzed value; abort()s
 * if an invariant breaks:
 *  - the result is 0, -KEEL_ENOTSUP or -KEEL_EFAULT (the device fails every 7th input);
 *  - on success RIP advanced by the instruction's length (mode-truncated), there were one or
 *    two device accesses (a second one only as a write after a read, or as the upper half of
 *    a 16-byte SSE move: the same direction, 8 bytes at the trapped address + 8), every other
 *    access at the trapped address with a size of 1, 2, 4 or 8, and at most one register
 *    changed (two for MUL / IMUL of rDX:rAX: rAX and rDX);
 *  - the vector register value (regs->vec) changed only for the loads x86_mmio_vreg names;
 *  - on refusal there was no device access and nothing changed;
 *  - only arithmetic flags change in RFLAGS.
 * String instructions (MOVS CMPS STOS LODS SCAS, any prefixes) go to x86_emulate_string
 * instead, with a budget of 1..8 iterations, rCX, DF and a memory whose N-th access fails or
 * asks for re-execution taken from the device-value bytes; abort()s unless:
 *  - the result is the number of iterations n (0..budget) or -KEEL_ENOTSUP (then no access
 *    and nothing changed); x86_string_operands agrees on string or not;
 *  - every access has the element size, its address is DS:rSI / ES:rDI (x86_string_operands
 *    before the run), stepped by the element size, up with DF clear, down with it set;
 *  - with REP, rCX went down by n; rSI and rDI moved by n elements (those it uses; within
 *    the address size); only rSI, rDI, rCX and (LODS) rAX change, flags only by CMPS/SCAS;
 *  - RIP is either unchanged or advanced by the length, and advanced only when the
 *    instruction is complete (no REP, rCX 0, or REPE/REPNE's condition); unchanged with n
 *    below the budget only when an access failed or asked for re-execution.
 * INS/OUTS go to x86_emulate_string_io the same way, with a port that logs its accesses;
 * abort()s unless the result is n (0..budget) or -KEEL_ENOTSUP exactly for other
 * instructions (then nothing accessed or changed); every port access is at DX with the
 * element size (1, 2, 4); OUTS wrote the port n times, INS read it n times (n + 1 when the
 * store after the last read was refused); only rCX and rSI (OUTS) / rDI (INS) change, by n
 * elements; RIP unchanged or advanced by the length, advanced only when complete.
 * DIV / IDIV's X86_EMUL_DIVIDE_ERROR: one read, nothing changed; X86_EMUL_LOAD_SYSSEG (LLDT,
 * LTR, MOV Sreg, Ew): one 2-byte read, RIP advanced, no general register changed.
 * Every input also goes to x86_emulate_stack and x86_far_pointer with the string side's
 * memory (abort()s unless: 0, X86_EMUL_GP, -KEEL_EFAULT or -KEEL_ENOTSUP; nothing changed but
 * on 0; on 0 accesses of 2 or 8 bytes (far pointer: the offset's size, then 2), at most rSP,
 * rBP and one other register changed), and the device value, taken as a descriptor, to
 * x86_seg_desc for every kind (abort()s unless 0 with P set in the attributes, the selector
 * kept (CS: its RPL made the CPL), or a #GP / #NP / #SS fault with the selector's index, or 1
 * for a far JMP to a system descriptor).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arch/decode.h>
#include <arch/mmio_emul.h>
#include <keel/errno.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define GPA 0xd0000040ull

struct dev {
        uint64_t value;
        bool fail;
        unsigned n;
        bool write[3];
        uint64_t gpa[3];
        unsigned size[3];
};

static bool access_fn(void *ctx, uint64_t gpa, unsigned size, bool write, uint64_t *val)
{
        struct dev *d = ctx;

        if ((gpa != GPA && gpa != GPA + 8) || (size != 1 && size != 2 && size != 4 && size != 8))
                abort();
        if (d->n < 3) {
                d->write[d->n] = write;
                d->gpa[d->n] = gpa;
                d->size[d->n] = size;
        }
        d->n++;
        if (d->fail)
                return false;
        if (!write)
                *val = d->value; /* deliberately not masked to `size` */
        return true;
}

/* The string side: a memory whose accesses are logged, the `fail`-th one refused and the
 * `again`-th one done but asking for re-execution (0: never). */
struct smem {
        unsigned n, fail, again;
        uint64_t lin[64];
        unsigned size[64];
        bool write[64];
        uint64_t value;
};

static int smem_access(void *ctx, uint64_t lin, unsigned size, bool write, uint64_t *val)
{
        struct smem *m = ctx;
        unsigned k = ++m->n;

        if (size != 1 && size != 2 && size != 4 && size != 8)
                abort();
        if (k <= 64) {
                m->lin[k - 1] = lin;
                m->size[k - 1] = size;
                m->write[k - 1] = write;
        }
        if (k == m->fail)
                return -KEEL_EFAULT;
        if (!write)
                *val = m->value * k; /* deliberately not masked to `size` */
        return k == m->again ? 1 : 0;
}

struct sio {
        struct smem m; /* first: smem_access takes it */
        unsigned ins, outs;
        uint16_t dx;
        unsigned esize;
};

static void sio_port(void *ctx, uint16_t port, unsigned size, bool in, uint32_t *val)
{
        struct sio *s = ctx;

        if (port != s->dx || size != s->esize)
                abort();
        if (in) {
                s->ins++;
                *val = 0xa5a5a5a5u; /* not masked to `size` */
        } else {
                s->outs++;
        }
}

static uint64_t amask(unsigned asize)
{
        return asize == 8 ? ~0ull : (1ull << (8 * asize)) - 1;
}

static void fuzz_string(const struct x86_insn *in, const uint8_t *v)
{
        static const uint64_t seg[6] = {0x1000, 0x2000, 0x3000, 0x4000, 0x50000, 0x60000};
        struct x86_emul_regs r, r0;
        struct smem m;
        uint64_t lin[2], am = amask(in->addr_size), step;
        unsigned esize, budget = 1 + (v[0] & 7), used;
        int which, n;
        bool rep = (in->prefixes & (X86_PFX_REP | X86_PFX_REPNE)) != 0, done;
        bool cmp = (in->opcode & ~1u) == 0xa6 || (in->opcode & ~1u) == 0xae;
        bool lods = (in->opcode & ~1u) == 0xac;

        memset(&m, 0, sizeof(m));
        m.fail = v[1] & 15;
        m.again = (v[1] >> 4) & 15;
        memcpy(&m.value, v, 8);
        for (int i = 0; i < 16; i++)
                r.gpr[i] = 0x0123456789abcdefull * (uint64_t)(i + 1);
        r.gpr[1] = v[2] & 15;                             /* rCX */
        r.gpr[6] = 0xfffffffffffffff0ull + (v[3] & 31);   /* rSI near wrapping */
        r.gpr[7] = (v[3] & 0x80) ? 0xfff8ull : 0x8000ull; /* rDI */
        r.rip = 0x1000;
        r.cr0 = 0x80050033;
        r.rflags = 0x202 | ((v[4] & 1) ? X86_RFLAGS_DF : 0) | ((uint64_t)v[5] & X86_RFLAGS_ARITH);
        r0 = r;
        which = x86_string_operands(in, &r, seg, lin, &esize);
        n = x86_emulate_string(in, &r, seg, budget, smem_access, &m);
        if ((which == -KEEL_ENOTSUP) != (n == -KEEL_ENOTSUP))
                abort();
        if (n == -KEEL_ENOTSUP) {
                if (m.n || memcmp(&r, &r0, sizeof(r)) != 0)
                        abort();
                return;
        }
        if (n < 0 || (unsigned)n > budget || which < 0)
                abort();
        used = (unsigned)which;
        /* Accesses: element size; the first ones at the operands x86_string_operands gave. */
        step = (r0.rflags & X86_RFLAGS_DF) ? -(uint64_t)esize : esize;
        for (unsigned k = 0, it = 0, a = 0; k < m.n && k < 64; k++) {
                bool dst = (used == 2) || (used == 3 && a == 1);
                uint64_t reg = dst ? r0.gpr[7] : r0.gpr[6];
                uint64_t want_ea = (reg + it * step) & am;
                uint64_t want =
                    dst ? lin[1] - (r0.gpr[7] & am) + want_ea : lin[0] - (r0.gpr[6] & am) + want_ea;

                if (in->mode != X86_MODE_LONG64)
                        want &= 0xffffffffull;
                if (m.size[k] != esize || m.lin[k] != want)
                        abort();
                if (++a == (used == 3 ? 2u : 1u)) {
                        a = 0;
                        it++;
                }
        }
        /* Registers. */
        for (int i = 0; i < 16; i++)
                if (r.gpr[i] != r0.gpr[i] && i != 1 && i != 6 && i != 7 && !(i == 0 && lods))
                        abort();
        if (rep && ((r0.gpr[1] - (uint64_t)n) & am) != (r.gpr[1] & am))
                abort();
        if (!rep && r.gpr[1] != r0.gpr[1])
                abort();
        if ((used & 1) && ((r0.gpr[6] + (uint64_t)n * step) & am) != (r.gpr[6] & am))
                abort();
        if ((used & 2) && ((r0.gpr[7] + (uint64_t)n * step) & am) != (r.gpr[7] & am))
                abort();
        if (!(used & 1) && r.gpr[6] != r0.gpr[6])
                abort();
        if (!(used & 2) && r.gpr[7] != r0.gpr[7])
                abort();
        if ((r.rflags & ~X86_RFLAGS_ARITH) != (r0.rflags & ~X86_RFLAGS_ARITH) ||
            (!cmp && r.rflags != r0.rflags))
                abort();
        /* RIP: advanced only when complete; unchanged below the budget only after a refusal
         * or a re-execution request. */
        done = r.rip != r0.rip;
        if (done) {
                uint64_t rip = r0.rip + in->len;

                if (in->mode == X86_MODE_PROT32)
                        rip &= 0xffffffffull;
                else if (in->mode != X86_MODE_LONG64)
                        rip &= 0xffff;
                if (r.rip != rip)
                        abort();
                if (rep && (r.gpr[1] & am) != 0 &&
                    !(cmp && ((in->last_rep == 0xf3) != ((r.rflags & X86_RFLAGS_ZF) != 0))))
                        abort();
                if (!rep && n != 1)
                        abort();
        } else if ((unsigned)n < budget && (m.fail == 0 || m.fail > m.n) &&
                   (m.again == 0 || m.again > m.n)) {
                abort();
        }
}

static void fuzz_string_io(const struct x86_insn *in, const uint8_t *v)
{
        static const uint64_t seg[6] = {0x1000, 0x2000, 0x3000, 0x4000, 0x50000, 0x60000};
        struct x86_emul_regs r, r0;
        struct sio s;
        uint64_t am = amask(in->addr_size);
        unsigned budget = 1 + (v[0] & 7);
        bool io = in->encoding == X86_ENC_LEGACY && in->map == X86_MAP_PRIMARY &&
                  (in->opcode & 0xfc) == 0x6c;
        bool ins = io && !(in->opcode & 2), rep = (in->prefixes & (X86_PFX_REP | X86_PFX_REPNE));
        int n, moved = ins ? 7 : 6;
        uint64_t step;

        memset(&s, 0, sizeof(s));
        s.m.fail = v[1] & 15;
        s.m.again = (v[1] >> 4) & 15;
        memcpy(&s.m.value, v, 8);
        for (int i = 0; i < 16; i++)
                r.gpr[i] = 0x0123456789abcdefull * (uint64_t)(i + 1);
        r.gpr[1] = v[2] & 15;
        r.gpr[2] = 0xabcd0000u | v[6];
        r.gpr[6] = 0xfffffffffffffff0ull + (v[3] & 31);
        r.gpr[7] = (v[3] & 0x80) ? 0xfff8ull : 0x8000ull;
        r.rip = 0x1000;
        r.cr0 = 0x80050033;
        r.rflags = 0x202 | ((v[4] & 1) ? X86_RFLAGS_DF : 0);
        r0 = r;
        s.dx = (uint16_t)r.gpr[2];
        s.esize = in->op_size == 8 ? 4 : in->op_size;
        n = x86_emulate_string_io(in, &r, seg, budget, smem_access, sio_port, &s);
        if ((n == -KEEL_ENOTSUP) != !io)
                abort();
        if (n == -KEEL_ENOTSUP) {
                if (s.m.n || s.ins || s.outs || memcmp(&r, &r0, sizeof(r)) != 0)
                        abort();
                return;
        }
        if (n < 0 || (unsigned)n > budget)
                abort();
        if (ins ? (s.outs || (s.ins != (unsigned)n && s.ins != (unsigned)n + 1))
                : (s.ins || s.outs != (unsigned)n))
                abort();
        step = (r0.rflags & X86_RFLAGS_DF) ? -(uint64_t)s.esize : s.esize;
        for (int i = 0; i < 16; i++)
                if (r.gpr[i] != r0.gpr[i] && i != 1 && i != moved)
                        abort();
        if (((r0.gpr[moved] + (uint64_t)n * step) & am) != (r.gpr[moved] & am))
                abort();
        if (rep ? ((r0.gpr[1] - (uint64_t)n) & am) != (r.gpr[1] & am) : r.gpr[1] != r0.gpr[1])
                abort();
        if (r.rflags != r0.rflags)
                abort();
        if (r.rip != r0.rip) {
                uint64_t rip = r0.rip + in->len;

                if (in->mode == X86_MODE_PROT32)
                        rip &= 0xffffffffull;
                else if (in->mode != X86_MODE_LONG64)
                        rip &= 0xffff;
                if (r.rip != rip || (rep && (r.gpr[1] & am) != 0) || (!rep && n != 1))
                        abort();
        }
}

static void fuzz_stack(const struct x86_insn *in, const uint8_t *v)
{
        static const uint64_t seg[6] = {0, 0, 0, 0, 0x50000, 0x60000};
        struct x86_emul_regs r, r0;
        struct smem m;
        unsigned changed = 0;
        uint64_t off = 0;
        uint16_t sel = 0;
        int rc;

        memset(&m, 0, sizeof(m));
        m.fail = v[1] & 3;
        memcpy(&m.value, v, 8);
        for (int i = 0; i < 16; i++)
                r.gpr[i] = 0x00007f0000001000ull * (uint64_t)(i + 1) ^ v[i & 7];
        r.rip = 0x401000 + v[2];
        r.rflags = 0x202;
        r.cr0 = 0;
        r0 = r;
        rc = x86_emulate_stack(in, &r, seg, smem_access, &m);
        if (rc != 0 && rc != X86_EMUL_GP && rc != -KEEL_EFAULT && rc != -KEEL_ENOTSUP)
                abort();
        if (rc != 0 && memcmp(&r, &r0, sizeof(r)) != 0)
                abort();
        if (rc == -KEEL_ENOTSUP && m.n != 0)
                abort();
        if (rc == 0) {
                for (int i = 0; i < 16; i++)
                        changed += i != 4 && i != 5 && r.gpr[i] != r0.gpr[i];
                if (changed > 1 || m.n == 0 || m.n > 2)
                        abort();
                for (unsigned k = 0; k < m.n; k++)
                        if (m.size[k] != 2 && m.size[k] != 8)
                                abort();
        }
        memset(&m, 0, sizeof(m));
        m.fail = v[1] & 3;
        rc = x86_far_pointer(in, &r0, seg, smem_access, &m, &off, &sel);
        if (rc != 0 && rc != -KEEL_EFAULT && rc != -KEEL_ENOTSUP)
                abort();
        if ((rc == -KEEL_ENOTSUP && m.n != 0) || (rc == 0 && (m.n != 2 || m.size[1] != 2)))
                abort();
}

static void fuzz_seg_desc(const uint8_t *v)
{
        uint64_t desc[2];
        struct x86_sysseg s;
        uint16_t sel = (uint16_t)(v[0] | v[1] << 8);
        unsigned cpl = v[2] & 3;
        bool lm = v[2] & 4;

        memcpy(&desc[0], v, 8);
        desc[1] = desc[0] * 0x9e3779b97f4a7c15ull;
        for (int k = SEG_LOAD_TR; k <= SEG_LOAD_CS; k++) {
                uint32_t f = x86_seg_desc((enum x86_seg_load)k, lm, cpl, sel, desc, &s);
                unsigned vec = (f >> 16) & 0x7fff;

                if (f == 0 &&
                    (!(s.attr & 0x80) || s.sel != (k == SEG_LOAD_CS ? (sel & ~3u) | cpl : sel)))
                        abort();
                if (f == 1 && k != SEG_LOAD_CS)
                        abort();
                if (f > 1 && (!(f >> 31) || (vec != 11 && vec != 12 && vec != 13) ||
                              (f & 0xffff) != (sel & 0xfffcu)))
                        abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const enum x86_cpu_mode modes[4] = {X86_MODE_REAL16, X86_MODE_PROT16,
                                                   X86_MODE_PROT32, X86_MODE_LONG64};
        struct x86_emul_regs r, r0;
        struct x86_insn in;
        struct dev d;
        unsigned changed = 0;
        uint64_t rip;
        int rc, vreg;
        bool vload = false;

        if (size < 10)
                return 0;
        memset(&d, 0, sizeof(d));
        memcpy(&d.value, data + 1, 8);
        d.fail = (data[0] >> 2) % 7 == 0;
        if (x86_decode(data + 9, size - 9, modes[data[0] & 3], &in) != 0)
                return 0;
        fuzz_string(&in, data + 1);
        fuzz_string_io(&in, data + 1);
        fuzz_stack(&in, data + 1);
        fuzz_seg_desc(data + 1);
        for (int i = 0; i < 16; i++)
                r.gpr[i] = 0x0123456789abcdefull * (uint64_t)(i + 1);
        r.rip = 0xfffffffffffffff0ull + (data[0] >> 4);
        r.cr0 = 0x80050033 ^ data[1];
        r.rflags = 0x202 | ((uint64_t)data[0] << 4 & X86_RFLAGS_ARITH);
        memset(r.vec, 0xc3, sizeof(r.vec));
        r0 = r;
        vreg = x86_mmio_vreg(&in, &vload);
        if (vreg < -1 || vreg > 23)
                abort();
        rc = x86_emulate_mmio(&in, &r, GPA, access_fn, &d);
        if (rc != 0 && rc != -KEEL_ENOTSUP && rc != -KEEL_EFAULT && rc != X86_EMUL_DIVIDE_ERROR &&
            rc != X86_EMUL_LOAD_SYSSEG)
                abort();
        if (rc == X86_EMUL_DIVIDE_ERROR &&
            (d.n != 1 || d.write[0] || memcmp(&r, &r0, sizeof(r)) != 0))
                abort();
        if (rc == X86_EMUL_LOAD_SYSSEG) {
                if (d.n != 1 || d.write[0] || d.size[0] != 2 || r.rip == r0.rip ||
                    memcmp(r.gpr, r0.gpr, sizeof(r.gpr)) != 0)
                        abort();
                return 0;
        }
        if ((r.rflags & ~X86_RFLAGS_ARITH) != (r0.rflags & ~X86_RFLAGS_ARITH))
                abort();
        for (int i = 0; i < 16; i++)
                changed += r.gpr[i] != r0.gpr[i];
        if (changed >
            ((in.opcode == 0xf6 || in.opcode == 0xf7) && in.map == X86_MAP_PRIMARY ? 2u : 1u))
                abort();
        if (memcmp(r.vec, r0.vec, sizeof(r.vec)) != 0 && (rc != 0 || vreg < 0 || !vload))
                abort();
        if (rc == -KEEL_ENOTSUP && (d.n != 0 || changed || memcmp(&r, &r0, sizeof(r)) != 0))
                abort();
        if (rc == -KEEL_EFAULT && (d.n == 0 || r.rip != r0.rip || changed))
                abort();
        if (rc == 0) {
                rip = r0.rip + in.len;
                if (in.mode == X86_MODE_PROT32)
                        rip &= 0xffffffffull;
                else if (in.mode != X86_MODE_LONG64)
                        rip &= 0xffff;
                if (r.rip != rip || d.n < 1 || d.n > 2 || d.gpa[0] != GPA)
                        abort();
                if (d.n == 2 && (d.write[0] || !d.write[1] || d.gpa[1] != GPA) &&
                    (vreg < 0 || d.write[0] != d.write[1] || d.gpa[1] != GPA + 8 ||
                     d.size[0] != 8 || d.size[1] != 8))
                        abort();
        }
        return 0;
}
