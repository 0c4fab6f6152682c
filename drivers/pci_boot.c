/*
 * PCI at boot on the real machine (drivers/include/drivers/pci.h, docs/pci.md): the ACPI MCFG,
 * ECAM config access through Keel's own uncached map (the arch maps every ECAM window when it
 * builds its tables, arch_pci_ecam_windows), and the ranges no BAR may overlap.
 */
#include <stdio.h>

#include <drivers/acpi_tables.h>
#include <drivers/nvme.h>
#include <drivers/pci.h>
#include <drivers/virtio_blk_pci.h>
#include <keel/boot.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <keel/palloc.h>
#include <keel/time.h>

static volatile uint32_t *ecam_ptr(const struct pci_host *h, struct pci_addr a, uint16_t off)
{
        for (unsigned i = 0; i < h->seg_count; i++) {
                const struct pci_segment *s = &h->seg[i];

                if (s->seg == a.seg && a.bus >= s->bus_start && a.bus <= s->bus_end)
                        return hva_ptr(arch_hpa_to_hva(
                            hpa(s->ecam + ((uint64_t)a.bus << 20 | (uint64_t)a.dev << 15 |
                                           (uint64_t)a.fn << 12 | off))));
        }
        return NULL;
}

static uint32_t ecam_read32(void *ctx, struct pci_addr a, uint16_t off)
{
        volatile uint32_t *p = ecam_ptr(ctx, a, off);

        return p ? *p : 0xffffffffu;
}

static void ecam_write32(void *ctx, struct pci_addr a, uint16_t off, uint32_t val)
{
        volatile uint32_t *p = ecam_ptr(ctx, a, off);

        if (p)
                *p = val;
}

const struct pci_cfg_ops pci_ecam_ops = {ecam_read32, ecam_write32};

unsigned pci_ecam_windows(hpa_t rsdp, struct pci_segment *out, unsigned max)
{
        uint32_t len;
        const uint8_t *mcfg = acpi_find_table(rsdp, "MCFG", &len);
        unsigned n = 0;

        if (!mcfg || pci_mcfg_parse(mcfg, len, out, max, &n))
                return 0;
        return n;
}

void pci_boot(const struct boot_info *bi)
{
        struct pci_host *h = &keel_pci;
        struct pci_segment seg[PCI_MAX_SEGMENTS];
        uint32_t len;
        const uint8_t *mcfg = acpi_find_table(bi->rsdp, "MCFG", &len);
        uint64_t pages = align_up(PCI_BOOT_DEVICES * sizeof(struct pci_dev), PAGE_SIZE) / PAGE_SIZE;
        unsigned n = 0;
        char msi[120];
        uint64_t start = arch_tsc();
        hpa_t table;
        int err;

        if (!mcfg) {
                LOG_INFO("pci: no ACPI MCFG table: no PCI Express enumerated");
                return;
        }
        err = pci_mcfg_parse(mcfg, len, seg, PCI_MAX_SEGMENTS, &n);
        if (err) {
                LOG_WARN("pci: the firmware's MCFG table is malformed (%u bytes): no PCI "
                         "Express enumerated",
                         len);
                return;
        }
        err = palloc_alloc(&keel_palloc, pages, PAGE_SIZE, &table);
        if (err) {
                LOG_WARN("pci: no memory for the table of functions (%llu pages): no PCI "
                         "Express enumerated",
                         (unsigned long long)pages);
                return;
        }
        pci_set_table(h, hva_ptr(arch_hpa_to_hva(table)), PCI_BOOT_DEVICES);
        /* Keel's PCI drivers (the table keeps any registered earlier). */
        nvme_register(h);
        vblk_register(h);
        h->ops = &pci_ecam_ops;
        h->ctx = h;
        h->seg_count = 0;
        h->forbid_count = 0;
        for (unsigned i = 0; i < n; i++) {
                LOG_INFO("pci: segment %u buses %#x-%#x, ECAM at %#llx", seg[i].seg,
                         seg[i].bus_start, seg[i].bus_end,
                         (unsigned long long)(seg[i].ecam + ((uint64_t)seg[i].bus_start << 20)));
                (void)pci_add_segment(h, &seg[i]);
                (void)pci_forbid(h, seg[i].ecam + ((uint64_t)seg[i].bus_start << 20),
                                 pci_segment_window(&seg[i]), "the ECAM window");
        }
        (void)pci_forbid(h, hpa_raw(bi->image_base), bi->image_size, "Keel's image");
        for (unsigned i = 0; i < bi->map_count; i++)
                if (bi->map[i].wb &&
                    pci_forbid(h, hpa_raw(bi->map[i].base), bi->map[i].pages * PAGE_SIZE, "RAM"))
                        LOG_WARN("pci: more than %u memory ranges: BARs are not checked "
                                 "against RAM above %#llx",
                                 PCI_MAX_FORBID, (unsigned long long)hpa_raw(bi->map[i].base));
        arch_msi_describe(msi, sizeof(msi));
        LOG_INFO("pci: MSI: %s", msi);
        pci_scan(h);
        if (arch_tsc_khz())
                LOG_INFO("pci: enumeration and driver set-up took %llu ms",
                         (unsigned long long)((arch_tsc() - start) / arch_tsc_khz()));
}
