/*
 * arm64 test guests that take exceptions themselves (timers, aborts, system registers):
 * exception vectors whose synchronous (current EL, SP_ELx) entry calls guest_sync() and whose
 * IRQ entry calls guest_irq(), with the caller-saved registers kept; every other vector
 * goes to the runtime's report (guest_exception: exit 0xd2). Include it in one source file
 * of a guest, which defines guest_sync and guest_irq, and call exc_install() first.
 * Also: system-register writes, MMIO of any width, the counter, and the guest's GICv3.
 */
#ifndef GUEST_EXC_H
#define GUEST_EXC_H

#include "guest.h"

#define write_sysreg(name, v) \
        __asm__ volatile("msr " #name ", %0" : : "r"((uint64_t)(v)) : "memory")

/* A synchronous exception from EL1: returns the address to go on at (ELR_EL1 for a retry). */
uint64_t guest_sync(uint64_t esr, uint64_t elr, uint64_t far);
void guest_irq(void);
void exc_vectors(void);
void exc_sync_common(void);

#define EXC_SAVE                                                                           \
        "stp x29, x30, [sp, #-176]!\n"                                                     \
        "stp x0, x1, [sp, #16]\n stp x2, x3, [sp, #32]\n stp x4, x5, [sp, #48]\n"          \
        "stp x6, x7, [sp, #64]\n stp x8, x9, [sp, #80]\n stp x10, x11, [sp, #96]\n"        \
        "stp x12, x13, [sp, #112]\n stp x14, x15, [sp, #128]\n stp x16, x17, [sp, #144]\n" \
        "str x18, [sp, #160]\n"
#define EXC_RESTORE                                                                        \
        "ldp x0, x1, [sp, #16]\n ldp x2, x3, [sp, #32]\n ldp x4, x5, [sp, #48]\n"          \
        "ldp x6, x7, [sp, #64]\n ldp x8, x9, [sp, #80]\n ldp x10, x11, [sp, #96]\n"        \
        "ldp x12, x13, [sp, #112]\n ldp x14, x15, [sp, #128]\n ldp x16, x17, [sp, #144]\n" \
        "ldr x18, [sp, #160]\n"                                                            \
        "ldp x29, x30, [sp], #176\n"

__asm__(".text\n"
        ".balign 2048\n"
        ".globl exc_vectors\n"
        "exc_vectors:\n"
        ".irp n, 0, 1, 2, 3\n"
        ".balign 128\n"
        "mov x0, #\\n\n"
        "b exc_sync_common\n"
        ".endr\n"
        ".balign 128\n" /* 4: synchronous, current EL with SP_ELx */
        EXC_SAVE "mrs x0, ESR_EL1\n mrs x1, ELR_EL1\n mrs x2, FAR_EL1\n"
        "bl guest_sync\n"
        "msr ELR_EL1, x0\n" EXC_RESTORE "eret\n"
        ".balign 128\n" /* 5: IRQ, current EL with SP_ELx */
        EXC_SAVE "bl guest_irq\n" EXC_RESTORE "eret\n"
        ".irp n, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15\n"
        ".balign 128\n"
        "mov x0, #\\n\n"
        "b exc_sync_common\n"
        ".endr\n"
        "exc_sync_common:\n"
        "mrs x1, ESR_EL1\n mrs x2, ELR_EL1\n mrs x3, FAR_EL1\n"
        "bl guest_exception\n"
        "1: wfi\n b 1b\n");

static inline void exc_install(void)
{
        write_sysreg(VBAR_EL1, gpa_of((void *)exc_vectors));
        __asm__ volatile("isb");
}

static inline void irq_unmask(void)
{
        __asm__ volatile("msr daifclr, #2; isb" ::: "memory");
}

static inline void irq_mask(void)
{
        __asm__ volatile("msr daifset, #2; isb" ::: "memory");
}

static inline uint64_t rd(uint64_t a, unsigned w)
{
        return mmio_rd(a, w);
}

static inline void wr(uint64_t a, unsigned w, uint64_t v)
{
        mmio_wr(a, w, v);
}

/* The guest's GICv3 (Keel's Linux machine: docs/arm64.md). */
#define GICD            0x08000000ull
#define GICR0           0x080a0000ull
#define GICR_SGI        0x10000ull
#define GICR_ISENABLER0 (GICR0 + GICR_SGI + 0x100)
#define GICR_ICENABLER0 (GICR0 + GICR_SGI + 0x180)
#define GICR_ISPENDR0   (GICR0 + GICR_SGI + 0x200)
#define GICR_ICPENDR0   (GICR0 + GICR_SGI + 0x280)
#define GICR_ISACTIVER0 (GICR0 + GICR_SGI + 0x300)
#define GICR_ICACTIVER0 (GICR0 + GICR_SGI + 0x380)
#define ICC_IAR1_EL1    S3_0_C12_C12_0
#define ICC_EOIR1_EL1   S3_0_C12_C12_1

/* vCPU `cpu`'s redistributor (128 KiB each, in vCPU order). */
#define GICR(cpu) (GICR0 + 0x20000ull * (cpu))

/* This vCPU's (`cpu`) GIC: its redistributor awake, SGIs and PPIs group 1, priority 0xa0, all
 * disabled and idle; the CPU interface on with every priority unmasked. */
static inline void gic_cpu_init(unsigned cpu)
{
        uint64_t sgi = GICR(cpu) + GICR_SGI;

        wr(GICR(cpu) + 0x14, 4, 0);     /* GICR_WAKER: ProcessorSleep 0 */
        wr(sgi + 0x80, 4, 0xffffffff);  /* IGROUPR0 */
        wr(sgi + 0x180, 4, 0xffffffff); /* ICENABLER0 */
        wr(sgi + 0x280, 4, 0xffffffff); /* ICPENDR0 */
        wr(sgi + 0x380, 4, 0xffffffff); /* ICACTIVER0 */
        for (unsigned i = 0; i < 8; i++)
                wr(sgi + 0x400 + 4 * i, 4, 0xa0a0a0a0); /* IPRIORITYR */
        write_sysreg(S3_0_C12_C12_5, 7);                /* ICC_SRE_EL1 */
        __asm__ volatile("isb");
        write_sysreg(S3_0_C4_C6_0, 0xff); /* ICC_PMR_EL1 */
        write_sysreg(S3_0_C12_C12_7, 1);  /* ICC_IGRPEN1_EL1 */
        __asm__ volatile("isb");
}

/* vCPU 0's GIC: the distributor on (affinity routing, group 1), then gic_cpu_init(0). */
static inline void gic_init(void)
{
        wr(GICD, 4, 0x12); /* GICD_CTLR: ARE, EnableGrp1 */
        gic_cpu_init(0);
}

#endif
