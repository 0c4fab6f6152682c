/* Architectural checks on emulated guest writes: see arch/x86_checks.h. */
#include <arch/x86.h>
#include <arch/x86_checks.h>
#include <keel/errno.h>

bool x86_xcr0_valid(uint64_t xcr0, uint64_t supported)
{
        uint64_t avx512 = xcr0 & X86_XCR0_AVX512;

        if (xcr0 & ~supported)
                return false;
        if (!(xcr0 & X86_XCR0_X87))
                return false;
        if ((xcr0 & X86_XCR0_AVX) && !(xcr0 & X86_XCR0_SSE))
                return false;
        if (avx512 && (avx512 != X86_XCR0_AVX512 || !(xcr0 & X86_XCR0_AVX)))
                return false;
        if ((xcr0 & X86_XCR0_MPX) && (xcr0 & X86_XCR0_MPX) != X86_XCR0_MPX)
                return false;
        if ((xcr0 & X86_XCR0_AMX) && (xcr0 & X86_XCR0_AMX) != X86_XCR0_AMX)
                return false;
        return true;
}

bool x86_pat_valid(uint64_t pat)
{
        for (unsigned i = 0; i < 8; i++) {
                uint8_t type = (uint8_t)(pat >> (8 * i));

                if (type == 2 || type == 3 || type >= 8)
                        return false;
        }
        return true;
}

bool x86_canonical(uint64_t addr)
{
        return (uint64_t)((int64_t)(addr << 16) >> 16) == addr;
}

int x86_efer_write(uint64_t old, uint64_t val, uint64_t cr0, uint64_t *out)
{
        if (val & ~X86_EFER_GUEST_BITS)
                return -KEEL_EPERM;
        if ((cr0 & X86_CR0_PG) && ((old ^ val) & X86_EFER_LME))
                return -KEEL_EPERM;
        *out = (val & ~X86_EFER_LMA) | (old & X86_EFER_LMA);
        return 0;
}
