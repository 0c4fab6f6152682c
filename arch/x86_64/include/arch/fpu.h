/* A vCPU's FPU/SSE/AVX registers, switched with its runs (arch/x86_64/fpu.c). */
#ifndef ARCH_FPU_H
#define ARCH_FPU_H

#include <vmm/vm.h>

/* This CPU may run FXSAVE/XSAVE and XSETBV (CR4.OSFXSR, CR4.OSXSAVE): every CPU, once. */
void x86_fpu_cpu_enable(void);
/* A save area in the init state (one page). -KEEL_ENOMEM. */
int x86_fpu_init(struct vcpu *vcpu);
void x86_fpu_free(struct vcpu *vcpu);
/* Start of a run on this CPU: the vCPU's XCR0 and registers. */
void x86_fpu_load(struct vcpu *vcpu);
/* End of a run: the registers (and XCR0) back into the vCPU's area. */
void x86_fpu_save(struct vcpu *vcpu);
/*
 * During a run (an exit's emulation): the guest's XMM register n (0-15) or MMX register
 * n - 16, read into v (MMX: 8 bytes, then zeros; no side effect) or written from it. An MMX
 * write has an MMX instruction's side effects on the x87 state (TOS 0, every tag valid);
 * with v NULL only those (after an emulated MMX store).
 */
void x86_fpu_vreg(int n, uint8_t v[16], bool write);

/* Bytes of a save area (the same for every vCPU on this machine). */
size_t x86_fpu_area_size(void);
/* Would x86_fpu_load take this area and XCR0 (from a snapshot) without faulting? */
bool x86_fpu_area_valid(const uint8_t *area, uint64_t xcr0);

#endif
