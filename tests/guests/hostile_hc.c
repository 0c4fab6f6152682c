/*
 * hostile_hc: hypercalls with every number and hostile arguments (docs/hypercalls.md). Keel
 * must answer each with its documented result and change nothing else:
 *   - every number from 0 to 1100 (2, EXIT, left out) and huge ones, some of whose low bits
 *     are a real call's number (a dispatcher that truncated would run PRINT or EXIT): ENOSYS
 *     (arm64: SMCCC NOT_SUPPORTED; the numbers go in as the runtime's GUEST_HC_ID makes
 *     them) (PRINT and VM_INFO: the error their arguments deserve), the argument registers
 *     kept;
 *   - PRINT and VM_INFO at the last bytes of RAM (fine) and one byte further (EFAULT,
 *     nothing written), below RAM, at 2^63, near 2^64 and wrapping past it, lengths of 1025,
 *     2^63 and 2^64-1 (E2BIG), sizes of 63 (EINVAL) and 2^64-1 (fine: 64 bytes written);
 *   - x86: PRINT and VM_INFO on the guest's own live page tables (its PML4, after it moved
 *     CR3 to tables of its own): allowed, they are guest RAM; the guest keeps running.
 * Exit 0 with "hostile_hc: all N checks passed"; each failed check prints FAIL.
 */
#include "guest.h"

#ifdef __x86_64__
#include "hostile_x86.h"
#endif

static unsigned checks, failed;

static void expect(const char *what, uint64_t arg, int64_t got, int64_t want)
{
        checks++;
        if (got == want)
                return;
        failed++;
        guest_printf("FAIL: %s (%lx) = %ld, expected %ld\n", what, (unsigned long)arg, (long)got,
                     (long)want);
}

/* A hypercall that also reports whether the four argument registers came back unchanged. */
static int64_t hc_raw(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, bool *kept)
{
#ifdef __x86_64__
        uint64_t r = nr, b = a0, c = a1, d = a2, s = a3;

        if ((keel_hc_vendor ? keel_hc_vendor : keel_hc_detect()) == 2)
                __asm__ volatile("vmcall"
                                 : "+a"(r), "+b"(b), "+c"(c), "+d"(d), "+S"(s)
                                 :
                                 : "memory");
        else
                __asm__ volatile("vmmcall"
                                 : "+a"(r), "+b"(b), "+c"(c), "+d"(d), "+S"(s)
                                 :
                                 : "memory");
        *kept = b == a0 && c == a1 && d == a2 && s == a3;
        return (int64_t)r;
#else
        register uint64_t x0 __asm__("x0") = GUEST_HC_ID(nr);
        register uint64_t x1 __asm__("x1") = a0;
        register uint64_t x2 __asm__("x2") = a1;
        register uint64_t x3 __asm__("x3") = a2;
        register uint64_t x4 __asm__("x4") = a3;

        __asm__ volatile("hvc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3), "+r"(x4) : : "memory");
        *kept = x1 == a0 && x2 == a1 && x3 == a2 && x4 == a3;
        return (int64_t)x0;
#endif
}

/* What call `nr` must return for the sweep's arguments (gpa = RAM end, 64). */
static int64_t sweep_want(uint64_t nr)
{
        switch (nr) {
        case KEEL_HC_VERSION:
                return KEEL_HC_ABI_VERSION;
        case KEEL_HC_PRINT:
        case KEEL_HC_VM_INFO:
                return -KEEL_EFAULT;
        }
        return GUEST_HC_UNKNOWN;
}

static void sweep(void)
{
        static const uint64_t huge[] = {
            1ull << 32,
            (1ull << 32) | 1,
            (1ull << 32) | 2,
            0xffffffff00000002ull,
            0xffffffff00000003ull,
            1ull << 63,
            (1ull << 63) | 2,
            0x7fffffffffffffffull,
            0xfffffffffffffffeull,
            0xffffffffffffffffull,
            0x100000000000002ull,
            0x10000,
            0xffffffffull,
            0x7fffffffull,
            0x40000000ull,
            0xff02ull,
        };
        uint64_t end = guest_ram_end(), unkept = 0;
        unsigned bad = 0;

        for (uint64_t nr = 0; nr <= 1100 + ARRAY_SIZE(huge); nr++) {
                uint64_t n = nr <= 1100 ? nr : huge[nr - 1101];
                bool kept;
                int64_t r;

                if (n == KEEL_HC_EXIT)
                        continue;
                r = hc_raw(n, end, 64, 0x5a5a5a5a5a5a5a5aull, ~0ull, &kept);
                checks++;
                if (r != sweep_want(n) || !kept) {
                        if (bad++ < 8)
                                guest_printf("FAIL: hypercall %lx returned %ld (expected %ld), "
                                             "argument registers %s\n",
                                             (unsigned long)n, (long)r, (long)sweep_want(n),
                                             kept ? "kept" : "CHANGED");
                        unkept += !kept;
                        failed++;
                }
        }
        guest_printf("hostile_hc: swept hypercalls 0..1100 and %u huge numbers: %u wrong, %lu with "
                     "argument registers changed\n",
                     (unsigned)ARRAY_SIZE(huge), bad, (unsigned long)unkept);
}

static const char edge_line[] = "hostile_hc: printed from the last bytes of RAM\n";

static void print_edges(void)
{
        uint64_t base = guest_ram_base, end = guest_ram_end();
        uint64_t len = sizeof(edge_line) - 1, at = end - len;

        memcpy((void *)(uintptr_t)at, edge_line, len);
        expect("PRINT last bytes of RAM", at, hc_print_gpa(at, len), (int64_t)len);
        expect("PRINT one byte past RAM", at + 1, hc_print_gpa(at + 1, len), -KEEL_EFAULT);
        expect("PRINT len 0 at RAM end", end, hc_print_gpa(end, 0), -KEEL_EFAULT);
        expect("PRINT len 0 at the last byte", end - 1, hc_print_gpa(end - 1, 0), 0);
        expect("PRINT len 1025", base, hc_print_gpa(base + 0x100000, 1025), -KEEL_E2BIG);
        expect("PRINT len 2^63", base, hc_print_gpa(base + 0x100000, 1ull << 63), -KEEL_E2BIG);
        expect("PRINT len 2^64-1", base, hc_print_gpa(base + 0x100000, ~0ull), -KEEL_E2BIG);
        expect("PRINT wrapping 2^64", ~0ull - 5, hc_print_gpa(~0ull - 5, 10), -KEEL_EFAULT);
        expect("PRINT at 2^64-1024", 0, hc_print_gpa(0ull - 1024, 1024), -KEEL_EFAULT);
        expect("PRINT at 2^64-1", ~0ull, hc_print_gpa(~0ull, 1), -KEEL_EFAULT);
        expect("PRINT at 2^63", 1ull << 63, hc_print_gpa(1ull << 63, 16), -KEEL_EFAULT);
        expect("PRINT at 2^63 + RAM", 1ull << 63, hc_print_gpa((1ull << 63) + base + 0x100000, 16),
               -KEEL_EFAULT);
        expect("PRINT from below RAM", base - 1, hc_print_gpa(base - 1, 2), -KEEL_EFAULT);
        expect("PRINT 1024 crossing RAM end", end - 512, hc_print_gpa(end - 512, 1024),
               -KEEL_EFAULT);
        expect("PRINT crossing 4 GiB", 0xfffffff0ull, hc_print_gpa(0xfffffff0ull, 32),
               -KEEL_EFAULT);
}

static void vm_info_edges(void)
{
        uint64_t base = guest_ram_base, end = guest_ram_end();
        volatile uint8_t *tail = (volatile uint8_t *)(uintptr_t)(end - 64);
        const struct keel_vm_info *info = (const struct keel_vm_info *)(uintptr_t)(end - 64);
        bool untouched = true;

        for (unsigned i = 0; i < 64; i++)
                tail[i] = 0xa5;
        expect("VM_INFO one byte past RAM", end - 63, hc_vm_info_gpa(end - 63, 64), -KEEL_EFAULT);
        expect("VM_INFO at RAM end", end, hc_vm_info_gpa(end, 64), -KEEL_EFAULT);
        expect("VM_INFO near 2^64", ~0ull - 63, hc_vm_info_gpa(~0ull - 63, 64), -KEEL_EFAULT);
        expect("VM_INFO wrapping 2^64", ~0ull - 31, hc_vm_info_gpa(~0ull - 31, ~0ull),
               -KEEL_EFAULT);
        expect("VM_INFO at 2^63", 1ull << 63, hc_vm_info_gpa(1ull << 63, 64), -KEEL_EFAULT);
        expect("VM_INFO below RAM", base - 32, hc_vm_info_gpa(base - 32, 64), -KEEL_EFAULT);
        expect("VM_INFO size 63", end - 64, hc_vm_info_gpa(end - 64, 63), -KEEL_EINVAL);
        expect("VM_INFO size 0", end - 64, hc_vm_info_gpa(end - 64, 0), -KEEL_EINVAL);
        for (unsigned i = 0; i < 64; i++)
                untouched &= tail[i] == 0xa5;
        expect("bytes left as they were by the failed VM_INFOs", 0, untouched, 1);
        expect("VM_INFO last 64 bytes, size 2^64-1", end - 64, hc_vm_info_gpa(end - 64, ~0ull), 64);
        expect("VM_INFO ram_size there", info->ram_size, (int64_t)info->ram_size,
               (int64_t)guest_ram_size);
        expect("VM_INFO name there", 0, strcmp(info->name, "hc"), 0);
}

#ifdef __x86_64__
static const char pt_line[] = "hostile_hc: printed from the live PML4\n";

/* PRINT from and VM_INFO into the page-table page the CPU is walking right now. */
static void own_page_tables(void)
{
        uint64_t *slots = &hx_pml4[256]; /* the upper half: entries nothing here uses */
        uint64_t at = gpa_of(slots);
        bool zero = true;

        hx_paging_init();
        memcpy(slots, pt_line, sizeof(pt_line) - 1);
        expect("PRINT from the live PML4", at, hc_print_gpa(at, sizeof(pt_line) - 1),
               (int64_t)sizeof(pt_line) - 1);
        expect("VM_INFO into the live PML4", at, hc_vm_info_gpa(at, 64), 64);
        expect("VM_INFO ram_size in the PML4", 0,
               (int64_t)((const struct keel_vm_info *)slots)->ram_size, (int64_t)guest_ram_size);
        memset(slots, 0, 64);
        __asm__ volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" ::: "rax", "memory");
        for (unsigned i = 0; i < 256; i++)
                zero &= i == 0 || hx_pml4[i] == 0;
        expect("PML4 lower half intact", hx_pml4[0],
               zero && (hx_pml4[0] & ~0x60ull) == (gpa_of(hx_pdpt) | 7), 1); /* A, D aside */
        guest_printf("hostile_hc: still running on its own page tables\n");
}
#endif

int64_t guest_main(void)
{
        guest_printf("hostile_hc: RAM %p..%p\n", (void *)(uintptr_t)guest_ram_base,
                     (void *)(uintptr_t)guest_ram_end());
        sweep();
        print_edges();
        vm_info_edges();
#ifdef __x86_64__
        own_page_tables();
#endif
        if (failed) {
                guest_printf("FAIL: hostile_hc: %u of %u checks failed\n", failed, checks);
                return 1;
        }
        guest_printf("hostile_hc: all %u checks passed\n", checks);
        return 0;
}
