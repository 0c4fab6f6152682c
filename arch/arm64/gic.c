/*
 * Keel's side of the physical GICv3: find the distributor, the CPUs and this CPU's
 * redistributor (ACPI MADT), enable the private interrupts Keel takes (the kick SGI 1,
 * maintenance 25, hypervisor timer 26, virtual timer 27, EL1 physical timer 30), and the CPU
 * interface at EL2 with EOImode 1, so that Keel can drop the priority of a guest timer's
 * interrupt and leave its deactivation to the guest (a list register with the HW bit links the
 * two; vgic_hw.c).
 */
#include <arch/cpu.h>
#include <arch/percpu.h>
#include <arch/sysreg.h>
#include <drivers/acpi_tables.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <keel/palloc.h>
#include <keel/smp.h>

#define MADT_GICC 0x0b
#define MADT_GICD 0x0c
#define MADT_GICR 0x0e
#define MADT_V2M  0x0d /* GIC MSI frame (GICv2m) */
#define MADT_ITS  0x0f

#define GICD_CTLR        0x0000
#define GICR_TYPER       0x0008
#define GICR_WAKER       0x0014
#define GICR_SGI_BASE    0x10000
#define GICR_IGROUPR0    (GICR_SGI_BASE + 0x080)
#define GICR_ISENABLER0  (GICR_SGI_BASE + 0x100)
#define GICR_ICACTIVER0  (GICR_SGI_BASE + 0x380)
#define GICR_IPRIORITYR  (GICR_SGI_BASE + 0x400)
#define GICR_TYPER_LAST  (1ull << 4)
#define GICR_TYPER_VLPIS (1ull << 1)

/* Keel's private interrupts: the kick SGI, the PPIs 25..27 and the EL1 physical timer's 30. */
#define KEEL_PPIS                                                                   \
        ((1u << INTID_KICK) | (1u << INTID_MAINTENANCE) | (1u << INTID_HYP_TIMER) | \
         (1u << INTID_VTIMER) | (1u << INTID_PTIMER))

/* The MADT's next interrupt-controller structure at or after *off (NULL at the end). */
static const uint8_t *madt_next(const uint8_t *madt, uint32_t len, uint32_t *off)
{
        const uint8_t *e = madt + *off;

        if (*off + 2 > len || e[1] < 2 || *off + e[1] > len)
                return NULL;
        *off += e[1];
        return e;
}

/*
 * One pass over the MADT, counting GICR structures and GICC frames; once out->rd has room,
 * the GICR regions go there, or (use_frames: there are none) each enabled GICC's frame.
 */
static void gic_scan(const uint8_t *madt, uint32_t len, struct arm64_gic_info *out, bool use_frames,
                     unsigned *gicr, unsigned *frames)
{
        uint32_t off = 44;
        const uint8_t *e;

        *gicr = *frames = 0;
        while ((e = madt_next(madt, len, &off))) {
                if (e[0] == MADT_GICD && e[1] >= 16)
                        out->gicd = acpi_u64(e + 8);
                else if (e[0] == MADT_ITS && e[1] >= 20 && !out->its)
                        out->its = acpi_u64(e + 8);
                else if (e[0] == MADT_V2M && e[1] >= 24 && !out->v2m)
                        out->v2m = acpi_u64(e + 8);
                else if (e[0] == MADT_GICR && e[1] >= 16 && acpi_u32(e + 12)) {
                        if (out->rd && !use_frames && *gicr < out->rd_count)
                                out->rd[*gicr] =
                                    (struct arm64_gicr_region){acpi_u64(e + 4), acpi_u32(e + 12)};
                        ++*gicr;
                } else if (e[0] == MADT_GICC && e[1] >= 76 && (acpi_u32(e + 12) & 1) &&
                           acpi_u64(e + 60)) {
                        if (out->rd && use_frames && *frames < out->rd_count)
                                out->rd[*frames] =
                                    (struct arm64_gicr_region){acpi_u64(e + 60), GICR_FRAME_SIZE};
                        ++*frames;
                }
        }
}

int arm64_gic_find(hpa_t rsdp, struct arm64_gic_info *out)
{
        uint32_t len;
        const uint8_t *madt = acpi_find_table(rsdp, "APIC", &len);
        unsigned gicr, frames;
        hpa_t pa;

        *out = (struct arm64_gic_info){0};
        if (!madt)
                return -KEEL_ENOENT;
        gic_scan(madt, len, out, false, &gicr, &frames);
        out->rd_count = gicr ? gicr : frames;
        if (!out->gicd || !out->rd_count)
                return -KEEL_ENOENT;
        if (palloc_alloc(&keel_palloc,
                         align_up(out->rd_count * sizeof(*out->rd), PAGE_SIZE) / PAGE_SIZE,
                         PAGE_SIZE, &pa))
                return -KEEL_ENOMEM;
        out->rd = hva_ptr(arch_hpa_to_hva(pa));
        gic_scan(madt, len, out, gicr == 0, &gicr, &frames); /* again, now with room */
        return 0;
}

int arm64_madt_cpus(hpa_t rsdp, struct arm64_madt_cpu *out, unsigned max, unsigned *count)
{
        uint32_t len, off = 44;
        const uint8_t *madt = acpi_find_table(rsdp, "APIC", &len), *e;
        unsigned n = 0;

        *count = 0;
        if (!madt)
                return -KEEL_ENOENT;
        while ((e = madt_next(madt, len, &off))) {
                if (e[0] != MADT_GICC || e[1] < 76)
                        continue;
                if (n < max)
                        out[n] = (struct arm64_madt_cpu){
                            .mpidr = acpi_u64(e + 68) & MPIDR_AFF_MASK,
                            .gicr = acpi_u64(e + 60),
                            .enabled = acpi_u32(e + 12) & 1,
                        };
                n++;
        }
        *count = n;
        return 0;
}

static inline uint32_t mmio_read32(uint64_t a)
{
        return *(volatile uint32_t *)(uintptr_t)a;
}

static inline uint64_t mmio_read64(uint64_t a)
{
        return *(volatile uint64_t *)(uintptr_t)a;
}

static inline void mmio_write32(uint64_t a, uint32_t v)
{
        *(volatile uint32_t *)(uintptr_t)a = v;
}

static inline void mmio_write8(uint64_t a, uint8_t v)
{
        *(volatile uint8_t *)(uintptr_t)a = v;
}

/* This CPU's redistributor: the frame whose GICR_TYPER affinity matches MPIDR_EL1. */
static uint64_t find_my_gicr(const struct arm64_gic_info *gi)
{
        uint64_t mpidr = read_sysreg(mpidr_el1);
        uint32_t aff = (uint32_t)((mpidr & 0xffffff) | ((mpidr >> 32) & 0xff) << 24);

        for (unsigned i = 0; i < gi->rd_count; i++) {
                const struct arm64_gicr_region *g = &gi->rd[i];

                for (uint64_t r = g->base; r - g->base < g->size;) {
                        uint64_t typer = mmio_read64(r + GICR_TYPER);

                        if ((uint32_t)(typer >> 32) == aff)
                                return r;
                        if (typer & GICR_TYPER_LAST)
                                break;
                        r += (typer & GICR_TYPER_VLPIS) ? 0x40000 : 0x20000;
                }
        }
        return 0;
}

/*
 * This CPU's part (each CPU runs it for itself): its redistributor awake with Keel's SGI and PPIs
 * in group 1 at a middle priority, enabled; its CPU interface at EL2 with EOImode 1.
 */
void arm64_gic_cpu_init(const struct arm64_gic_info *gi)
{
        uint64_t gicr = find_my_gicr(gi);

        if (!gicr)
                panic("no GICv3 redistributor for this CPU (MPIDR %#llx) in the MADT's %u "
                      "regions",
                      (unsigned long long)read_sysreg(mpidr_el1), gi->rd_count);
        arm64_this_cpu()->gicr = gicr;
        mmio_write32(gicr + GICR_WAKER, mmio_read32(gicr + GICR_WAKER) & ~2u);
        for (unsigned i = 0; i < 1000 && (mmio_read32(gicr + GICR_WAKER) & 4u); i++)
                ;
        mmio_write32(gicr + GICR_IGROUPR0, mmio_read32(gicr + GICR_IGROUPR0) | KEEL_PPIS);
        for (unsigned i = 0; i < 32; i++)
                if (KEEL_PPIS & (1u << i))
                        mmio_write8(gicr + GICR_IPRIORITYR + i, 0x80);
        mmio_write32(gicr + GICR_ICACTIVER0, KEEL_PPIS);
        mmio_write32(gicr + GICR_ISENABLER0, KEEL_PPIS);

        write_sysreg(ICC_SRE_EL2, read_sysreg(ICC_SRE_EL2) | 0xf); /* SRE, DFB, DIB, Enable */
        isb();
        write_sysreg(ICC_PMR_EL1, 0xff);
        write_sysreg(ICC_CTLR_EL1, read_sysreg(ICC_CTLR_EL1) | 2u); /* EOImode 1 */
        write_sysreg(ICC_IGRPEN1_EL1, 1);
        isb();
}

void arm64_gic_init(const struct arm64_gic_info *gi)
{
        arm64_gic_cpu_init(gi);
        mmio_write32(gi->gicd + GICD_CTLR, mmio_read32(gi->gicd + GICD_CTLR) | 2u);
        LOG_INFO("GICv3: distributor %#llx, this CPU's redistributor %#llx",
                 (unsigned long long)gi->gicd, (unsigned long long)arm64_this_cpu()->gicr);
}

unsigned arm64_gic_ack(void)
{
        unsigned intid = (unsigned)read_sysreg(ICC_IAR1_EL1) & 0xffffff;

        dsb_sy();
        return intid;
}

void arm64_gic_eoi(unsigned intid)
{
        write_sysreg(ICC_EOIR1_EL1, intid);
        isb();
}

void arm64_gic_deactivate(unsigned intid)
{
        write_sysreg(ICC_DIR_EL1, intid);
        isb();
}

unsigned arm64_gic_nr_lrs(void)
{
        return (unsigned)(read_sysreg(ICH_VTR_EL2) & 0x1f) + 1;
}

#define LR_CASE(n, crm, op2)                                     \
        case n:                                                  \
                if (write)                                       \
                        write_sysreg(S3_4_C12_##crm##_##op2, v); \
                else                                             \
                        v = read_sysreg(S3_4_C12_##crm##_##op2); \
                break;

static uint64_t lr_access(unsigned n, bool write, uint64_t v)
{
        switch (n) {
                LR_CASE(0, C12, 0)
                LR_CASE(1, C12, 1)
                LR_CASE(2, C12, 2)
                LR_CASE(3, C12, 3)
                LR_CASE(4, C12, 4)
                LR_CASE(5, C12, 5)
                LR_CASE(6, C12, 6)
                LR_CASE(7, C12, 7)
                LR_CASE(8, C13, 0)
                LR_CASE(9, C13, 1)
                LR_CASE(10, C13, 2)
                LR_CASE(11, C13, 3)
                LR_CASE(12, C13, 4)
                LR_CASE(13, C13, 5)
                LR_CASE(14, C13, 6)
                LR_CASE(15, C13, 7)
        default:
                CHECK(false);
        }
        return v;
}

uint64_t arm64_read_lr(unsigned n)
{
        return lr_access(n, false, 0);
}

void arm64_write_lr(unsigned n, uint64_t v)
{
        lr_access(n, true, v);
}

void arm64_gic_clear_active(unsigned intid)
{
        uint64_t gicr = arm64_this_cpu()->gicr;

        if (gicr && intid < 32)
                mmio_write32(gicr + GICR_ICACTIVER0, 1u << intid);
}
