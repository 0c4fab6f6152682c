/*
 * Guest FPU, SSE and AVX state. Keel itself never touches these registers (it is built with
 * general registers only), so while a vCPU runs they are simply the guest's. When several
 * vCPUs share a CPU each keeps its own copy: saved when its run ends (XSAVE of everything
 * its XCR0 enables and SSE, or FXSAVE without XSAVE), restored when its next run starts, on
 * whichever CPU that is. A fresh vCPU starts from the architectural init state.
 *
 * XSAVE and XRSTOR act only on the components XCR0 enables, but a guest may use SSE with an
 * XCR0 of x87 alone (it never enabled XSAVE: CR4.OSFXSR is enough for SSE). So around its
 * save and restore XCR0 also has SSE, and the XMM registers and MXCSR are always switched;
 * otherwise the next vCPU on the CPU would find this one's.
 */
#include <string.h>

#include <arch/fpu.h>
#include <arch/mm.h>
#include <arch/x86.h>
#include <arch/x86_checks.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/palloc.h>

#define CR4_OSXSAVE   (1ull << 18)
#define CPUID1_XSAVE  (1u << 26)
#define CPUID1_FXSR   (1u << 24) /* EDX */
#define FXSAVE_MXCSR  24
#define MXCSR_DEFAULT 0x1f80u
#define XCR0_X87      1ull
#define XCR0_SSE      2ull

static int have_xsave = -1;     /* -1: not looked yet */
static uint64_t area_pages = 1; /* the save area: every component the CPU has fits */

static bool xsave_supported(void)
{
        if (have_xsave < 0) {
                uint32_t r[4];

                x86_cpuid(1, 0, r);
                have_xsave = (r[2] & CPUID1_XSAVE) != 0;
                if (!have_xsave) {
                        CHECK(r[3] & CPUID1_FXSR); /* every x86-64 CPU has FXSAVE */
                } else {
                        /* ECX: the size for every component the CPU supports, whether or
                         * not Keel shows it: a guest's XSETBV is not intercepted on SVM, so
                         * it may enable one that CPUID hides (AMX's tile data alone is 8 KiB
                         * on Sapphire Rapids), and XSAVE must never write past the area. */
                        x86_cpuid(0xd, 0, r);
                        area_pages = ((uint64_t)r[2] + PAGE_SIZE - 1) / PAGE_SIZE;
                        CHECK(area_pages >= 1 && area_pages <= 16);
                }
        }
        return have_xsave;
}

static void xsetbv0(uint64_t v)
{
        __asm__ volatile("xsetbv" ::"c"(0), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

void x86_fpu_cpu_enable(void)
{
        uint64_t cr4 = x86_read_cr4(), want = cr4 | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;

        if (xsave_supported())
                want |= CR4_OSXSAVE;
        if (want != cr4)
                x86_write_cr4(want);
}

int x86_fpu_init(struct vcpu *vcpu)
{
        hpa_t pa;
        int err;
        uint8_t *area;

        xsave_supported(); /* sizes the area */
        err = palloc_alloc(&keel_palloc, area_pages, PAGE_SIZE, &pa);
        if (err)
                return err;
        area = hva_ptr(arch_hpa_to_hva(pa)); /* zeroed: XSTATE_BV 0 = every component init */
        memcpy(area + FXSAVE_MXCSR, &(uint32_t){MXCSR_DEFAULT}, 4);
        /* FXRSTOR has no init state: its x87 control word must be the reset value. */
        memcpy(area, &(uint16_t){0x37f}, 2);
        vcpu->arch.fpu = area;
        vcpu->arch.fpu_pa = pa;
        vcpu->arch.xcr0 = XCR0_X87;
        return 0;
}

void x86_fpu_free(struct vcpu *vcpu)
{
        if (!vcpu->arch.fpu)
                return;
        CHECK(palloc_free(&keel_palloc, vcpu->arch.fpu_pa, area_pages) == 0);
        vcpu->arch.fpu = NULL;
}

void x86_fpu_load(struct vcpu *vcpu)
{
        uint64_t x = vcpu->arch.xcr0, rfbm = x | XCR0_SSE;

        if (xsave_supported()) {
                xsetbv0(rfbm);
                __asm__ volatile("xrstor64 %0" ::"m"(*(uint8_t *)vcpu->arch.fpu),
                                 "a"((uint32_t)rfbm), "d"((uint32_t)(rfbm >> 32))
                                 : "memory");
                if (rfbm != x)
                        xsetbv0(x);
        } else {
                __asm__ volatile("fxrstor64 %0" ::"m"(*(uint8_t(*)[512])vcpu->arch.fpu) : "memory");
        }
}

void x86_fpu_save(struct vcpu *vcpu)
{
        if (xsave_supported()) {
                uint64_t x = x86_xgetbv0(); /* the guest's own XSETBV may have changed it */
                uint64_t rfbm = x | XCR0_SSE;

                vcpu->arch.xcr0 = x;
                if (rfbm != x)
                        xsetbv0(rfbm);
                __asm__ volatile("xsave64 %0"
                                 : "=m"(*(uint8_t *)vcpu->arch.fpu)
                                 : "a"((uint32_t)rfbm), "d"((uint32_t)(rfbm >> 32))
                                 : "memory");
                xsetbv0(XCR0_X87); /* nothing of the guest's choice stays for the next one */
        } else {
                __asm__ volatile("fxsave64 %0" : "=m"(*(uint8_t(*)[512])vcpu->arch.fpu)::"memory");
        }
}

/*
 * The guest's registers are live during its exits (Keel uses general registers only). They
 * go through FXSAVE / FXRSTOR rather than a MOVQ / MOVDQU of Keel's: an MMX instruction would
 * take a pending x87 exception of the guest's (#MF) inside Keel, and these check for none.
 * MMX register n is physical x87 register n, ST((n - TOS) & 7) in the image; an MMX
 * instruction makes TOS 0 and every tag valid, and a write sets the exponent bits.
 */
void x86_fpu_vreg(int n, uint8_t v[16], bool write)
{
        uint8_t a[512] __attribute__((aligned(16))), st[8][16];
        unsigned top;

        __asm__ volatile("fxsave64 %0" : "=m"(a));
        top = (a[3] >> 3) & 7; /* FSW bits 13:11 */
        if (n < 16) {
                if (!write) {
                        memcpy(v, a + 160 + 16 * n, 16);
                        return;
                }
                memcpy(a + 160 + 16 * n, v, 16);
        } else if (!write) {
                memcpy(v, a + 32 + 16 * ((unsigned)(n - 16 - (int)top) & 7), 8);
                memset(v + 8, 0, 8);
                return;
        } else {
                for (unsigned i = 0; i < 8; i++)
                        memcpy(st[i], a + 32 + 16 * ((i - top) & 7), 16);
                if (v) {
                        memcpy(st[n - 16], v, 8);
                        st[n - 16][8] = st[n - 16][9] = 0xff;
                }
                memcpy(a + 32, st, sizeof(st));
                a[3] &= ~0x38;
                a[4] = 0xff; /* abridged tag word */
        }
        __asm__ volatile("fxrstor64 %0" ::"m"(a));
}

size_t x86_fpu_area_size(void)
{
        xsave_supported();
        return area_pages * PAGE_SIZE;
}

/*
 * A save area and XCR0 from outside (a snapshot): would x86_fpu_load take them without a
 * fault in Keel? XRSTOR (SDM vol. 1 13.8) faults on a component in XSTATE_BV outside the
 * requested set, on a compacted or non-zero reserved header, and FXRSTOR / XRSTOR on MXCSR
 * bits outside MXCSR_MASK (taken as 0xffff: every x86-64 CPU has DAZ); XSETBV on an XCR0 the
 * CPU refuses.
 */
bool x86_fpu_area_valid(const uint8_t *area, uint64_t xcr0)
{
        uint32_t mxcsr, r[4];
        uint64_t hdr[8];

        memcpy(&mxcsr, area + FXSAVE_MXCSR, 4);
        if (mxcsr >> 16)
                return false;
        if (!xsave_supported())
                return xcr0 == XCR0_X87;
        x86_cpuid(0xd, 0, r);
        if (!x86_xcr0_valid(xcr0, r[0] | (uint64_t)r[3] << 32))
                return false;
        memcpy(hdr, area + 512, sizeof(hdr));
        if (hdr[0] & ~(xcr0 | XCR0_SSE))
                return false;
        for (unsigned i = 1; i < 8; i++)
                if (hdr[i])
                        return false;
        return true;
}
