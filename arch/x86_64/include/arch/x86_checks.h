/*
 * Architectural checks on guest writes that Keel emulates (pure C, host-tested): the values
 * the CPU itself would refuse with #GP. A backend that loads a refused value into the VMCB /
 * VMCS would fail the next VM entry, and one that executes it in root mode (XSETBV on VMX)
 * would fault inside Keel; so every such write goes through these checks first and the guest
 * gets #GP instead. Rules: Intel SDM vol. 1 13.3 and vol. 2 XSETBV, vol. 3 11.12.2 (PAT),
 * vol. 4 IA32_EFER; AMD APM vol. 2 3.1.7 (EFER), 7.8.1 (PAT), 11.5.2 (XCR0).
 */
#ifndef ARCH_X86_CHECKS_H
#define ARCH_X86_CHECKS_H

#include <stdbool.h>
#include <stdint.h>

/* XCR0 state components (CPUID.(EAX=0xD,ECX=0):EDX:EAX lists the supported ones). */
#define X86_XCR0_X87       (1ull << 0)
#define X86_XCR0_SSE       (1ull << 1)
#define X86_XCR0_AVX       (1ull << 2)
#define X86_XCR0_BNDREGS   (1ull << 3)
#define X86_XCR0_BNDCSR    (1ull << 4)
#define X86_XCR0_OPMASK    (1ull << 5)
#define X86_XCR0_ZMM_HI256 (1ull << 6)
#define X86_XCR0_HI16_ZMM  (1ull << 7)
#define X86_XCR0_AVX512    (X86_XCR0_OPMASK | X86_XCR0_ZMM_HI256 | X86_XCR0_HI16_ZMM)
#define X86_XCR0_MPX       (X86_XCR0_BNDREGS | X86_XCR0_BNDCSR)
#define X86_XCR0_TILECFG   (1ull << 17)
#define X86_XCR0_TILEDATA  (1ull << 18)
#define X86_XCR0_AMX       (X86_XCR0_TILECFG | X86_XCR0_TILEDATA)

/*
 * Would XSETBV with ECX = 0 accept `xcr0` on a CPU whose supported components are
 * `supported`? False for: a component not supported, x87 clear, AVX without SSE, the three
 * AVX-512 components neither all set nor all clear or set without AVX, the two MPX
 * components unpaired, the two AMX components unpaired. (CPL and the XCR number are the
 * caller's to check.)
 */
bool x86_xcr0_valid(uint64_t xcr0, uint64_t supported);

/* Does every byte of `pat` hold a defined memory type (0, 1, 4, 5, 6, 7)? */
bool x86_pat_valid(uint64_t pat);

/*
 * WRMSR to EFER: the bits a guest may set (SCE, LME, LMA, NXE: Keel hides SVME and the rest).
 * x86_efer_write checks `val` against the guest's current EFER `old` and CR0 `cr0`: #GP
 * (-KEEL_EPERM) for a bit outside X86_EFER_GUEST_BITS, or an LME that changes while CR0.PG
 * is set (setting LME with paging on, clearing it in long mode). Otherwise 0 and *out = the
 * new EFER: `val` with LMA kept as it was (LMA is the CPU's: it follows CR0.PG and LME).
 */
/*
 * Is `addr` canonical for 48-bit linear addresses (bits 63:47 all equal; Keel hides LA57)?
 * WRMSR of a non-canonical FS_BASE, GS_BASE, KERNEL_GS_BASE, LSTAR or CSTAR is #GP (and of
 * SYSENTER_ESP/EIP on Intel: AMD keeps 32 bits of those).
 */
bool x86_canonical(uint64_t addr);

/* WRMSR to TSC_AUX: bits 63:32 are reserved (#GP). */
#define X86_TSC_AUX_VALID(v) (((v) >> 32) == 0)

#define X86_EFER_GUEST_BITS ((1ull << 0) | (1ull << 8) | (1ull << 10) | (1ull << 11))
int x86_efer_write(uint64_t old, uint64_t val, uint64_t cr0, uint64_t *out);

#endif
