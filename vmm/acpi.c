/*
 * ACPI table generation for x86 Linux guests (vmm/include/vmm/acpi.h, docs/acpi.md).
 *
 * Layout of the window, each table 16-byte aligned:
 *   RSDP (at the base, so a legacy scan of 0xe0000-0xfffff finds it too), XSDT, FADT, MADT,
 *   DSDT.
 * The DSDT's AML is measured first, so that the whole size is known, and checked against the
 * room, before a single byte is written.
 */
#include <string.h>

#include <keel/errno.h>
#include <keel/log.h>
#include <vmm/acpi.h>
#include <vmm/aml.h>
#include <vmm/gmem.h>

#define ACPI_TABLE_ALIGN      16
#define ACPI_XSDT_ENTRIES     2 /* FADT, MADT */
#define ACPI_OEM_REVISION     1
#define ACPI_CREATOR_REVISION 1

_Static_assert(ACPI_MAX_VIRTIO <= 1000, "DSDT device names have three digits");
#define ACPI_4GIB (1ull << 32)

_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP size");
_Static_assert(sizeof(struct acpi_header) == 36, "header size");
_Static_assert(sizeof(struct acpi_gas) == 12, "GAS size");
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT size");
_Static_assert(sizeof(struct acpi_madt) == 44, "MADT size");
_Static_assert(sizeof(struct acpi_madt_lapic) == 8, "MADT LAPIC size");
_Static_assert(sizeof(struct acpi_madt_ioapic) == 12, "MADT IOAPIC size");
_Static_assert(sizeof(struct acpi_madt_x2apic) == 16, "MADT x2APIC size");
_Static_assert(sizeof(struct acpi_madt_iso) == 10, "MADT ISO size");

bool acpi_sleep_control_is_poweroff(uint8_t value)
{
        return (value & ACPI_SLEEP_SLP_EN) &&
               ((value & ACPI_SLEEP_SLP_TYP_MASK) >> ACPI_SLEEP_SLP_TYP_SHIFT) == ACPI_SLP_TYP_S5;
}

uint8_t acpi_checksum(const void *p, size_t n)
{
        const uint8_t *b = p;
        uint8_t sum = 0;

        for (size_t i = 0; i < n; i++)
                sum = (uint8_t)(sum + b[i]);
        return sum;
}

static int acpi_check_config(const struct acpi_config *cfg)
{
        if (cfg->num_cpus < 1 || cfg->num_cpus > ACPI_MAX_CPUS) {
                LOG_ERR("acpi: %u vCPUs (1..%u supported)", cfg->num_cpus, ACPI_MAX_CPUS);
                return -KEEL_EINVAL;
        }
        if (cfg->num_virtio > ACPI_MAX_VIRTIO || (cfg->num_virtio && !cfg->virtio)) {
                LOG_ERR("acpi: %u virtio-mmio devices (at most %u)", cfg->num_virtio,
                        ACPI_MAX_VIRTIO);
                return -KEEL_EINVAL;
        }
        for (unsigned i = 0; i < cfg->num_virtio; i++) {
                const struct acpi_virtio_mmio *d = &cfg->virtio[i];

                if (!d->size || d->base >= ACPI_4GIB || d->size > ACPI_4GIB - d->base) {
                        LOG_ERR("acpi: virtio-mmio %u at 0x%llx size 0x%x: not a range below "
                                "4 GiB",
                                i, (unsigned long long)d->base, d->size);
                        return -KEEL_EINVAL;
                }
                if ((uint32_t)(d->gsi - ACPI_IOAPIC_GSI_BASE) >= ACPI_IOAPIC_PINS) {
                        LOG_ERR("acpi: virtio-mmio %u: GSI %u is not an I/O APIC pin", i, d->gsi);
                        return -KEEL_EINVAL;
                }
        }
        return 0;
}

/* The DSDT's definition block (everything after the header). */
static void dsdt_aml(const struct acpi_config *cfg, struct aml *a)
{
        struct aml_mark sb, dev, pkg;
        struct aml_rt rt;

        sb = aml_scope_begin(a, "\\_SB");
        for (unsigned i = 0; i < cfg->num_virtio; i++) {
                const struct acpi_virtio_mmio *d = &cfg->virtio[i];
                /* V000, V001, ...: i < ACPI_MAX_VIRTIO <= 1000 */
                char name[5] = {'V', (char)('0' + i / 100 % 10), (char)('0' + i / 10 % 10),
                                (char)('0' + i % 10), 0};

                dev = aml_device_begin(a, name);
                aml_name_hid(a, "LNRO0005");
                aml_name_integer(a, "_UID", i);
                aml_name(a, "_CRS");
                rt = aml_rt_begin(a);
                aml_rt_memory32_fixed(a, true, (uint32_t)d->base, d->size);
                /* Edge, as Firecracker's and QEMU's arm virt's virtio-mmio: the EOI then
                 * concerns the LAPIC alone, so a paravirtual EOI can end it (platform.c). */
                aml_rt_interrupt(a, AML_IRQ_EDGE, AML_IRQ_ACTIVE_HIGH, AML_IRQ_EXCLUSIVE, d->gsi);
                aml_rt_end(a, rt);
                aml_end(a, dev);
        }
        if (cfg->com1) {
                dev = aml_device_begin(a, "COM1");
                aml_name_hid(a, "PNP0501");
                aml_name_integer(a, "_UID", 1);
                aml_method_return_integer(a, "_STA", 0xF);
                aml_name(a, "_CRS");
                rt = aml_rt_begin(a);
                aml_rt_io(a, ACPI_COM1_PORT, ACPI_COM1_PORT, 1, 8);
                aml_rt_irq_noflags(a, ACPI_COM1_GSI);
                aml_rt_end(a, rt);
                aml_end(a, dev);
        }
        aml_end(a, sb);

        /* \_S5: SLP_TYPa, SLP_TYPb, reserved, reserved. */
        aml_name(a, "\\_S5");
        pkg = aml_package_begin(a, 4);
        aml_integer(a, ACPI_SLP_TYP_S5);
        aml_integer(a, ACPI_SLP_TYP_S5);
        aml_integer(a, 0);
        aml_integer(a, 0);
        aml_end(a, pkg);
}

static void acpi_header_init(struct acpi_header *h, const char *sig, uint32_t len, uint8_t rev,
                             const char *table_id)
{
        memcpy(h->signature, sig, 4);
        h->length = len;
        h->revision = rev;
        memcpy(h->oem_id, ACPI_OEM_ID, 6);
        memcpy(h->oem_table_id, table_id, 8);
        h->oem_revision = ACPI_OEM_REVISION;
        memcpy(h->creator_id, ACPI_CREATOR_ID, 4);
        h->creator_revision = ACPI_CREATOR_REVISION;
}

/* Set a table's checksum (its header at p, its length in the header). */
static void acpi_table_sum(uint8_t *p)
{
        struct acpi_header h;

        memcpy(&h, p, sizeof(h));
        p[offsetof(struct acpi_header, checksum)] = 0;
        p[offsetof(struct acpi_header, checksum)] = (uint8_t)-acpi_checksum(p, h.length);
}

static struct acpi_gas gas_io8(uint16_t port)
{
        return (struct acpi_gas){.space_id = ACPI_GAS_SYSTEM_IO,
                                 .bit_width = 8,
                                 .bit_offset = 0,
                                 .access_size = ACPI_GAS_ACCESS_BYTE,
                                 .address = port};
}

static void build_rsdp(uint8_t *p, uint64_t xsdt)
{
        struct acpi_rsdp r;

        memset(&r, 0, sizeof(r));
        memcpy(r.signature, "RSD PTR ", 8);
        memcpy(r.oem_id, ACPI_OEM_ID, 6);
        r.revision = 2;
        r.rsdt_address = 0; /* no RSDT: ACPI 2.0+ OSes use the XSDT */
        r.length = sizeof(r);
        r.xsdt_address = xsdt;
        r.checksum = (uint8_t)-acpi_checksum(&r, ACPI_RSDP_V1_LEN);
        r.extended_checksum = (uint8_t)-acpi_checksum(&r, sizeof(r));
        memcpy(p, &r, sizeof(r));
}

static void build_xsdt(uint8_t *p, uint64_t fadt, uint64_t madt)
{
        struct acpi_header h;
        uint64_t entries[ACPI_XSDT_ENTRIES] = {fadt, madt};

        memset(&h, 0, sizeof(h));
        acpi_header_init(&h, "XSDT", sizeof(h) + sizeof(entries), ACPI_XSDT_REVISION, "KEELXSDT");
        memcpy(p, &h, sizeof(h));
        memcpy(p + sizeof(h), entries, sizeof(entries));
        acpi_table_sum(p);
}

static void build_fadt(uint8_t *p, uint64_t dsdt)
{
        struct acpi_fadt f;

        memset(&f, 0, sizeof(f));
        acpi_header_init(&f.hdr, "FACP", sizeof(f), ACPI_FADT_REVISION, "KEELFACP");
        /* Both DSDT pointers, equal (the 32-bit one only if it fits). */
        f.dsdt = dsdt < ACPI_4GIB ? (uint32_t)dsdt : 0;
        f.x_dsdt = dsdt;
        f.iapc_boot_arch = ACPI_IAPC_VGA_NOT_PRESENT | ACPI_IAPC_MSI_NOT_SUPPORTED |
                           ACPI_IAPC_CMOS_RTC_NOT_PRESENT;
        f.flags = ACPI_FADT_HW_REDUCED | ACPI_FADT_RESET_REG_SUP | ACPI_FADT_PWR_BUTTON |
                  ACPI_FADT_SLP_BUTTON;
        f.reset_reg = gas_io8(ACPI_RESET_PORT);
        f.reset_value = ACPI_RESET_VALUE;
        f.minor_version = ACPI_FADT_MINOR_VERSION;
        f.sleep_control_reg = gas_io8(ACPI_SLEEP_CONTROL_PORT);
        f.sleep_status_reg = gas_io8(ACPI_SLEEP_STATUS_PORT);
        memcpy(&f.hypervisor_vendor_id, ACPI_HV_VENDOR_ID, 4);
        memcpy(p, &f, sizeof(f));
        acpi_table_sum(p);
}

/* CPUs 0..ACPI_MAX_XAPIC_ID get LAPIC entries, the rest x2APIC entries. */
static unsigned madt_xapic_cpus(const struct acpi_config *cfg)
{
        return cfg->num_cpus <= ACPI_MAX_XAPIC_ID ? cfg->num_cpus : ACPI_MAX_XAPIC_ID + 1;
}

static uint32_t madt_size(const struct acpi_config *cfg)
{
        unsigned xapic = madt_xapic_cpus(cfg);

        return (uint32_t)(sizeof(struct acpi_madt) + xapic * sizeof(struct acpi_madt_lapic) +
                          (cfg->num_cpus - xapic) * sizeof(struct acpi_madt_x2apic) +
                          sizeof(struct acpi_madt_ioapic) +
                          (cfg->com1 ? sizeof(struct acpi_madt_iso) : 0));
}

static void build_madt(uint8_t *p, const struct acpi_config *cfg)
{
        struct acpi_madt m;
        struct acpi_madt_ioapic io;
        size_t off = sizeof(m);

        memset(&m, 0, sizeof(m));
        acpi_header_init(&m.hdr, "APIC", madt_size(cfg), ACPI_MADT_REVISION, "KEELAPIC");
        m.lapic_address = ACPI_LAPIC_ADDR;
        m.flags = 0;
        memcpy(p, &m, sizeof(m));
        for (unsigned i = 0; i < madt_xapic_cpus(cfg); i++) {
                struct acpi_madt_lapic l = {.type = ACPI_MADT_TYPE_LAPIC,
                                            .length = sizeof(l),
                                            .processor_uid = (uint8_t)i,
                                            .apic_id = (uint8_t)i,
                                            .flags = ACPI_MADT_LAPIC_ENABLED};

                memcpy(p + off, &l, sizeof(l));
                off += sizeof(l);
        }
        for (unsigned i = madt_xapic_cpus(cfg); i < cfg->num_cpus; i++) {
                struct acpi_madt_x2apic x = {.type = ACPI_MADT_TYPE_X2APIC,
                                             .length = sizeof(x),
                                             .x2apic_id = i,
                                             .flags = ACPI_MADT_LAPIC_ENABLED,
                                             .processor_uid = i};

                memcpy(p + off, &x, sizeof(x));
                off += sizeof(x);
        }
        io = (struct acpi_madt_ioapic){.type = ACPI_MADT_TYPE_IOAPIC,
                                       .length = sizeof(io),
                                       .ioapic_id = cfg->ioapic_id,
                                       .address = ACPI_IOAPIC_ADDR,
                                       .gsi_base = ACPI_IOAPIC_GSI_BASE};
        memcpy(p + off, &io, sizeof(io));
        off += sizeof(io);
        if (cfg->com1) {
                struct acpi_madt_iso iso = {.type = ACPI_MADT_TYPE_ISO,
                                            .length = sizeof(iso),
                                            .bus = 0,
                                            .source = ACPI_COM1_GSI,
                                            .gsi = ACPI_COM1_GSI,
                                            .flags =
                                                ACPI_MADT_ISO_ACTIVE_HIGH | ACPI_MADT_ISO_LEVEL};

                memcpy(p + off, &iso, sizeof(iso));
        }
        acpi_table_sum(p);
}

static uint64_t acpi_align(uint64_t v)
{
        return align_up(v, ACPI_TABLE_ALIGN);
}

int acpi_build(const struct acpi_config *cfg, gpa_t base, void *buf, size_t cap,
               struct acpi_tables *out)
{
        uint64_t b = gpa_raw(base), xsdt, fadt, madt, dsdt, end;
        struct acpi_header h;
        struct aml a;
        long aml_len;
        uint8_t *p = buf;
        int err = acpi_check_config(cfg);

        if (err)
                return err;
        if (!is_aligned(b, ACPI_TABLE_ALIGN)) {
                LOG_ERR("acpi: window base 0x%llx not 16-byte aligned", (unsigned long long)b);
                return -KEEL_EINVAL;
        }

        aml_init(&a, NULL, 0);
        dsdt_aml(cfg, &a);
        aml_len = aml_finish(&a);
        if (aml_len < 0) { /* a malformed name or value: Keel's own bug */
                LOG_ERR("acpi: DSDT code: %s", keel_strerror((int)aml_len));
                return (int)aml_len;
        }

        xsdt = acpi_align(sizeof(struct acpi_rsdp));
        fadt = acpi_align(xsdt + sizeof(struct acpi_header) + ACPI_XSDT_ENTRIES * 8);
        madt = acpi_align(fadt + sizeof(struct acpi_fadt));
        dsdt = acpi_align(madt + madt_size(cfg));
        end = dsdt + sizeof(struct acpi_header) + (uint64_t)aml_len;
        if (b >= ACPI_4GIB || end > ACPI_4GIB - b) {
                LOG_ERR("acpi: tables at 0x%llx would not lie below 4 GiB", (unsigned long long)b);
                return -KEEL_EINVAL;
        }
        if (!buf || end > cap) {
                LOG_ERR("acpi: tables need %llu bytes, the window has %llu",
                        (unsigned long long)end, (unsigned long long)(buf ? cap : 0));
                return -KEEL_ENOSPC;
        }

        memset(p, 0, cap);
        build_rsdp(p, b + xsdt);
        build_xsdt(p + xsdt, b + fadt, b + madt);
        build_fadt(p + fadt, b + dsdt);
        build_madt(p + madt, cfg);

        memset(&h, 0, sizeof(h));
        acpi_header_init(&h, "DSDT", (uint32_t)(end - dsdt), ACPI_DSDT_REVISION, "KEELDSDT");
        memcpy(p + dsdt, &h, sizeof(h));
        aml_init(&a, p + dsdt + sizeof(h), (size_t)aml_len);
        dsdt_aml(cfg, &a);
        if (aml_finish(&a) != aml_len) {
                LOG_ERR("acpi: DSDT code changed size between measuring and writing");
                return -KEEL_EINVAL;
        }
        acpi_table_sum(p + dsdt);

        out->rsdp = base;
        out->size = (uint32_t)end;
        out->xsdt = (uint32_t)xsdt;
        out->fadt = (uint32_t)fadt;
        out->madt = (uint32_t)madt;
        out->dsdt = (uint32_t)dsdt;
        return (int)end;
}

int acpi_install(const struct acpi_config *cfg, const struct gmem *m, gpa_t base, uint64_t size,
                 struct acpi_tables *out)
{
        hpa_t h;
        int err = gmem_translate(m, base, size, &h);

        if (err) {
                LOG_ERR("acpi: window 0x%llx+0x%llx is not in guest RAM",
                        (unsigned long long)gpa_raw(base), (unsigned long long)size);
                return err;
        }
        return acpi_build(cfg, base, hva_ptr(arch_hpa_to_hva(h)), (size_t)size, out);
}
