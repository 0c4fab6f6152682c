/*
 * libFuzzer target for the x86 guest page-table walker (arch/x86_64/gwalk.c) over fuzzed guest
 * page tables: the input is the paging registers, an address and the start of guest RAM
 * (256 KiB at guest-physical 0, the rest zero, canary pages around it).
 *
 * Input: byte 0: mode bits (0 CR0.PG, 1 CR4.PAE, 2 EFER.LMA, 3 CR4.PSE, 4 EFER.NXE, 5 CR0.WP,
 * 6 CR4.SMEP, 7 CR4.LA57); bytes 1-4: CR3 (le32); bytes 5-12: the linear address (le64);
 * byte 13: bits 0-2 the access kind (X86_ACC_*), bits 3-7 the entry of the top-level table
 * (at CR3) whose present bit flips between two rounds of code peeks, and the peek length;
 * the rest is copied to guest RAM from address 0.
 * Invariants (abort on violation):
 *   - x86_translate returns 0, -KEEL_EFAULT or -KEEL_ENOTSUP (only for LA57 in long mode);
 *     success: a page size of 4 KiB (also without paging), 2 MiB, 4 MiB or 1 GiB and an
 *     address with the linear address's offset in that page; failure: a fault kind, and a
 *     #PF error code with W / U exactly as asked, I only for fetches, RSVD only with P;
 *   - asking for fewer rights (write, fetch) at the same privilege never fails where asking
 *     for more succeeded, and gives the same address; x86_gva_to_gpa agrees with x86_translate;
 *   - x86_fetch_insn returns bytes that are, one by one, guest RAM at the translation of
 *     their linear address; x86_code_peek returns a pointer into guest RAM whose bytes are
 *     those, and answers the same through its cache as without one, also after a
 *     page-table entry changed;
 *   - memory outside guest RAM is never touched (canaries, ASan).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arch/gwalk.h>
#include <keel/errno.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_SIZE (256 * 1024ull)
#define CANARY   4096ull
#define HDR      14

static uint8_t *buf, *ram;
static struct gmem mem;

static void check_translate(const struct x86_paging *p, uint64_t gva, unsigned acc,
                            struct x86_xlate *x, int *rc)
{
        bool long_mode = (p->cr0 & X86_PG_CR0_PG) && (p->efer & X86_PG_EFER_LMA);
        uint64_t lin = long_mode ? gva : (uint32_t)gva;

        memset(x, 0x5a, sizeof(*x));
        *rc = x86_translate(&mem, p, gva, acc, x);
        if (*rc == 0) {
                uint64_t ps = x->page_size;

                if (ps != 4096 && ps != (2ull << 20) && ps != (4ull << 20) && ps != (1ull << 30))
                        abort();
                if ((gpa_raw(x->gpa) & (ps - 1)) != (lin & (ps - 1)) || x->fault != X86_XLATE_OK)
                        abort();
                return;
        }
        if (*rc == -KEEL_ENOTSUP) {
                if (!long_mode || !(p->cr4 & X86_PG_CR4_LA57))
                        abort();
                return;
        }
        if (*rc != -KEEL_EFAULT)
                abort();
        if (x->fault != X86_XLATE_PF && x->fault != X86_XLATE_NONCANON &&
            x->fault != X86_XLATE_BAD_TABLE)
                abort();
        if (x->fault == X86_XLATE_NONCANON && !long_mode)
                abort();
        if (x->fault == X86_XLATE_PF) {
                if (!!(x->pf_error & X86_PF_W) != !!(acc & X86_ACC_WRITE) ||
                    !!(x->pf_error & X86_PF_U) != !!(acc & X86_ACC_USER) ||
                    ((x->pf_error & X86_PF_I) && !(acc & X86_ACC_FETCH)) ||
                    (x->pf_error & ~(X86_PF_P | X86_PF_W | X86_PF_U | X86_PF_I | X86_PF_RSVD)) ||
                    ((x->pf_error & X86_PF_RSVD) && !(x->pf_error & X86_PF_P)))
                        abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct x86_paging p = {0};
        struct x86_xlate x, y;
        struct x86_code_cache cache;
        uint8_t fetched[15];
        size_t nf = 0;
        uint32_t cr3;
        uint64_t gva;
        unsigned acc;
        int rc, rc2, nfetch;
        gpa_t g;

        if (size < HDR)
                return 0;
        if (!buf) {
                buf = aligned_alloc(4096, RAM_SIZE + 2 * CANARY);
                ram = buf + CANARY;
                memset(buf, 0xa5, RAM_SIZE + 2 * CANARY);
                gmem_init(&mem);
                if (gmem_add_region(&mem, gpa(0), RAM_SIZE, hpa((uint64_t)(uintptr_t)ram)) != 0)
                        abort();
        }
        memset(ram, 0, RAM_SIZE);
        memcpy(ram, data + HDR, size - HDR < RAM_SIZE ? size - HDR : RAM_SIZE);

        memcpy(&cr3, data + 1, 4);
        memcpy(&gva, data + 5, 8);
        acc = data[13] & 7;
        p.cr3 = cr3;
        p.cr0 = 1 | (data[0] & 1 ? X86_PG_CR0_PG : 0) | (data[0] & 32 ? X86_PG_CR0_WP : 0);
        p.cr4 = (data[0] & 2 ? X86_PG_CR4_PAE : 0) | (data[0] & 8 ? X86_PG_CR4_PSE : 0) |
                (data[0] & 64 ? X86_PG_CR4_SMEP : 0) | (data[0] & 128 ? X86_PG_CR4_LA57 : 0);
        p.efer = (data[0] & 4 ? X86_PG_EFER_LMA : 0) | (data[0] & 16 ? X86_PG_EFER_NXE : 0);

        /*
         * Every subset of the write and fetch rights asked for, at the same privilege (not
         * asking for user access is no subset: SMEP refuses supervisor fetches from user pages).
         */
        check_translate(&p, gva, acc, &x, &rc);
        for (unsigned sub = 0; sub < 8; sub++) {
                if ((sub & acc) != sub || (sub & X86_ACC_USER) != (acc & X86_ACC_USER))
                        continue;
                check_translate(&p, gva, sub, &y, &rc2);
                if (rc == 0 && (rc2 != 0 || gpa_raw(y.gpa) != gpa_raw(x.gpa)))
                        abort();
        }
        rc2 = x86_gva_to_gpa(&mem, &p, gva, acc & X86_ACC_WRITE, &g);
        check_translate(&p, gva, acc & X86_ACC_WRITE, &y, &rc);
        if (rc2 != rc || (rc == 0 && gpa_raw(g) != gpa_raw(y.gpa)))
                abort();

        /* Instruction fetch: each byte is RAM at its own translation. */
        nfetch = x86_fetch_insn(&mem, &p, gva, fetched, &nf);
        if (nfetch > 0) {
                if (nfetch > 15 || (size_t)nfetch != nf)
                        abort();
                for (int i = 0; i < nfetch; i++) {
                        check_translate(&p, gva + (uint64_t)i, 0, &y, &rc);
                        if (rc != 0 || !gmem_contains(&mem, y.gpa, 1) ||
                            ram[gpa_raw(y.gpa)] != fetched[i])
                                abort();
                }
        } else if (nfetch != -KEEL_EFAULT && nfetch != -KEEL_ENOTSUP) {
                abort();
        }

        /* The code peek, uncached and cached (twice: the second is a hit), agree. */
        x86_code_cache_reset(&cache);
        for (unsigned round = 0; round < 2; round++) {
                size_t len = 1 + (data[13] >> 3) % 15;
                const uint8_t *a = x86_code_peek(&mem, &p, gva, len, NULL);
                const uint8_t *b = x86_code_peek(&mem, &p, gva, len, &cache);
                const uint8_t *c = x86_code_peek(&mem, &p, gva, len, &cache);

                if (a != b || b != c)
                        abort();
                if (a) {
                        if (a < ram || a + len > ram + RAM_SIZE)
                                abort();
                        if (nfetch > 0 && memcmp(a, fetched, len < nf ? len : nf) != 0)
                                abort();
                }
                /* Change one word of RAM (maybe a table entry on the path) and ask again. */
                ram[((cr3 & ~0xfffull) + (uint64_t)(data[13] >> 3) * 8) % RAM_SIZE] ^= 0x01;
                nfetch = 0;
        }
        for (uint64_t i = 0; i < CANARY; i++)
                if (buf[i] != 0xa5 || buf[CANARY + RAM_SIZE + i] != 0xa5)
                        abort();
        return 0;
}
