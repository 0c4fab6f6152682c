/*
 * arm64 part of the guest SDK's runtime: the hypercall (HVC #0 with an SMCCC function ID)
 * and the VM's PL011 at 0x09000000 (keel_arch.h, shared with Keel's test guests), the MMU,
 * TLS (ELF variant I: TPIDR_EL0 points at a 16-byte TCB followed by the TLS block) and the
 * report of an unexpected exception.
 *
 * The MMU: the C library is built for Normal memory (unaligned accesses, exclusives), which
 * the MMU-off state (every data access Device) does not give. One level-1 table with 1 GiB
 * blocks identity-maps the first GiB (the devices: PL011, GIC, virtio-mmio) as Device-nGnRnE
 * and each GiB that holds RAM as Normal write-back; 39-bit virtual addresses (T0SZ 25), so
 * translation starts at level 1, TTBR1 walks off. Caches are turned on with the MMU.
 */
#include "sdk.h"

#include "keel_arch.h"

#define PTE_BLOCK      1ull
#define PTE_ATTR(i)    ((uint64_t)(i) << 2) /* MAIR_EL1 index */
#define PTE_SH_INNER   (3ull << 8)
#define PTE_AF         (1ull << 10)
#define PTE_PXN        (1ull << 53)
#define PTE_UXN        (1ull << 54)
#define MAIR_DEVICE    0x00ull /* index 0: Device-nGnRnE */
#define MAIR_NORMAL_WB 0xffull /* index 1: Normal, inner/outer write-back, allocate */
#define TCR_T0SZ_39    25ull
#define TCR_IRGN0_WB   (1ull << 8)
#define TCR_ORGN0_WB   (1ull << 10)
#define TCR_SH0_INNER  (3ull << 12)
#define TCR_EPD1       (1ull << 23)
#define TCR_IPS_SHIFT  32
#define SCTLR_M        (1ull << 0)
#define SCTLR_A        (1ull << 1)
#define SCTLR_C        (1ull << 2)
#define SCTLR_I        (1ull << 12)

static uint64_t l1_table[512] __attribute__((aligned(4096)));

#define read_sysreg(name)                                                \
        ({                                                               \
                uint64_t v_;                                             \
                __asm__ volatile("mrs %0, " #name : "=r"(v_)::"memory"); \
                v_;                                                      \
        })
#define write_sysreg(name, v) \
        __asm__ volatile("msr " #name ", %0" : : "r"((uint64_t)(v)) : "memory")

int64_t keel_hypercall(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3)
{
        return keel_arch_hypercall(KEEL_HC_ARM64_FID(nr), a0, a1, a2, a3);
}

void sdk_arch_uart_putc(char c)
{
        for (unsigned i = 0; i < 100000 && !keel_uart_tx_ready(); i++)
                ;
        keel_uart_tx(c);
}

int sdk_arch_uart_getc(void)
{
        return keel_uart_rx();
}

void sdk_arch_early(uint64_t ram_base, uint64_t ram_size)
{
        uint64_t parange = read_sysreg(ID_AA64MMFR0_EL1) & 7;
        uint64_t normal = PTE_BLOCK | PTE_ATTR(1) | PTE_SH_INNER | PTE_AF;

        l1_table[0] = PTE_BLOCK | PTE_ATTR(0) | PTE_AF | PTE_PXN | PTE_UXN;
        for (uint64_t gib = ram_base >> 30; gib <= (ram_base + ram_size - 1) >> 30 && gib < 512;
             gib++)
                l1_table[gib] = (gib << 30) | normal;
        write_sysreg(MAIR_EL1, MAIR_DEVICE | MAIR_NORMAL_WB << 8);
        write_sysreg(TCR_EL1, TCR_T0SZ_39 | TCR_IRGN0_WB | TCR_ORGN0_WB | TCR_SH0_INNER | TCR_EPD1 |
                                  (parange > 5 ? 5 : parange) << TCR_IPS_SHIFT);
        write_sysreg(TTBR0_EL1, (uintptr_t)l1_table);
        __asm__ volatile("dsb ish; isb; tlbi vmalle1; dsb ish; isb" ::: "memory");
        write_sysreg(SCTLR_EL1, (read_sysreg(SCTLR_EL1) | SCTLR_M | SCTLR_C | SCTLR_I) & ~SCTLR_A);
        __asm__ volatile("isb" ::: "memory");
}

uintptr_t sdk_arch_tls_init(uintptr_t at)
{
        /* The linker puts TLS variables at tp + align_up(16, p_align) + offset. */
        uintptr_t align = sdk_tls_align() < 16 ? 16 : sdk_tls_align();
        uintptr_t tp = sdk_align_up(at, align);
        uintptr_t block = tp + sdk_align_up(16, sdk_tls_align());

        sdk_tls_fill(block);
        write_sysreg(TPIDR_EL0, tp);
        return block + sdk_tls_size();
}

void sdk_arch_exception(uint64_t vector, uint64_t esr, uint64_t elr, uint64_t far);

void sdk_arch_exception(uint64_t vector, uint64_t esr, uint64_t elr, uint64_t far)
{
        keel_console_report("keel-sdk: unexpected exception, vector ", vector);
        keel_console_report(", ESR_EL1 ", esr);
        keel_console_report(", ELR_EL1 ", elr);
        keel_console_report(", FAR_EL1 ", far);
        keel_console_putc('\n');
        keel_exit(KEEL_EXIT_EXCEPTION);
}
