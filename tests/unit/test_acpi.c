/*
 * Tests for vmm/acpi.c: the table layouts against the ACPI 6.0 field offsets, every checksum,
 * the pointers between tables (guest-physical, inside the window), the FADT's hardware-reduced
 * registers, the MADT's entries, the DSDT's devices, refusal of a small window without writing
 * to it, configuration checks and installing into guest memory.
 */
#define _GNU_SOURCE /* memmem */
#include <stddef.h>

#include <keel/errno.h>
#include <vmm/acpi.h>
#include <vmm/aml.h>
#include <vmm/gmem.h>

#include "log_capture.h"
#include "test.h"

#define WIN  ACPI_WINDOW_SIZE
#define BASE ACPI_WINDOW_BASE

static uint8_t win[WIN + 256] __attribute__((aligned(4096)));

static const struct acpi_virtio_mmio two_virtio[] = {
    {.base = 0xd0000000, .size = 0x1000, .gsi = 5},
    {.base = 0xd0001000, .size = 0x1000, .gsi = 6},
};

static struct acpi_config config(unsigned cpus, unsigned nvirtio, bool com1)
{
        return (struct acpi_config){.num_cpus = cpus,
                                    .ioapic_id = 9,
                                    .virtio = two_virtio,
                                    .num_virtio = nvirtio,
                                    .com1 = com1};
}

static uint32_t rd32(const uint8_t *p)
{
        uint32_t v;

        memcpy(&v, p, 4);
        return v;
}

static uint64_t rd64(const uint8_t *p)
{
        uint64_t v;

        memcpy(&v, p, 8);
        return v;
}

/* Offset in the window of a guest-physical pointer to a table; fails if outside. */
static size_t table_at(uint64_t ga, uint64_t base, uint32_t used)
{
        EXPECT_TRUE(ga >= base && ga - base + sizeof(struct acpi_header) <= used);
        return ga >= base && ga - base < used ? (size_t)(ga - base) : 0;
}

static void check_header(const uint8_t *t, const char *sig, uint8_t rev, const char *table_id)
{
        EXPECT_TRUE(memcmp(t, sig, 4) == 0);
        EXPECT_EQ(t[8], rev);
        EXPECT_TRUE(memcmp(t + 10, "KEEL  ", 6) == 0);
        EXPECT_TRUE(memcmp(t + 16, table_id, 8) == 0);
        EXPECT_TRUE(memcmp(t + 28, "KEEL", 4) == 0);
        EXPECT_EQ(acpi_checksum(t, rd32(t + 4)), 0);
}

TEST(struct_offsets_match_spec)
{
        EXPECT_EQ(sizeof(struct acpi_rsdp), 36);
        EXPECT_EQ(offsetof(struct acpi_rsdp, checksum), 8);
        EXPECT_EQ(offsetof(struct acpi_rsdp, oem_id), 9);
        EXPECT_EQ(offsetof(struct acpi_rsdp, revision), 15);
        EXPECT_EQ(offsetof(struct acpi_rsdp, rsdt_address), 16);
        EXPECT_EQ(offsetof(struct acpi_rsdp, length), 20);
        EXPECT_EQ(offsetof(struct acpi_rsdp, xsdt_address), 24);
        EXPECT_EQ(offsetof(struct acpi_rsdp, extended_checksum), 32);

        EXPECT_EQ(sizeof(struct acpi_header), 36);
        EXPECT_EQ(offsetof(struct acpi_header, length), 4);
        EXPECT_EQ(offsetof(struct acpi_header, checksum), 9);
        EXPECT_EQ(offsetof(struct acpi_header, oem_table_id), 16);
        EXPECT_EQ(offsetof(struct acpi_header, creator_id), 28);

        EXPECT_EQ(sizeof(struct acpi_gas), 12);
        EXPECT_EQ(offsetof(struct acpi_gas, address), 4);

        /* FADT, ACPI 6.0 table 5-34. */
        EXPECT_EQ(offsetof(struct acpi_fadt, firmware_ctrl), 36);
        EXPECT_EQ(offsetof(struct acpi_fadt, dsdt), 40);
        EXPECT_EQ(offsetof(struct acpi_fadt, preferred_pm_profile), 45);
        EXPECT_EQ(offsetof(struct acpi_fadt, sci_int), 46);
        EXPECT_EQ(offsetof(struct acpi_fadt, smi_cmd), 48);
        EXPECT_EQ(offsetof(struct acpi_fadt, pm1a_evt_blk), 56);
        EXPECT_EQ(offsetof(struct acpi_fadt, pm_tmr_blk), 76);
        EXPECT_EQ(offsetof(struct acpi_fadt, gpe0_blk), 80);
        EXPECT_EQ(offsetof(struct acpi_fadt, pm1_evt_len), 88);
        EXPECT_EQ(offsetof(struct acpi_fadt, pm_tmr_len), 91);
        EXPECT_EQ(offsetof(struct acpi_fadt, p_lvl2_lat), 96);
        EXPECT_EQ(offsetof(struct acpi_fadt, century), 108);
        EXPECT_EQ(offsetof(struct acpi_fadt, iapc_boot_arch), 109);
        EXPECT_EQ(offsetof(struct acpi_fadt, flags), 112);
        EXPECT_EQ(offsetof(struct acpi_fadt, reset_reg), 116);
        EXPECT_EQ(offsetof(struct acpi_fadt, reset_value), 128);
        EXPECT_EQ(offsetof(struct acpi_fadt, arm_boot_arch), 129);
        EXPECT_EQ(offsetof(struct acpi_fadt, minor_version), 131);
        EXPECT_EQ(offsetof(struct acpi_fadt, x_firmware_ctrl), 132);
        EXPECT_EQ(offsetof(struct acpi_fadt, x_dsdt), 140);
        EXPECT_EQ(offsetof(struct acpi_fadt, x_pm1a_evt_blk), 148);
        EXPECT_EQ(offsetof(struct acpi_fadt, x_pm_tmr_blk), 208);
        EXPECT_EQ(offsetof(struct acpi_fadt, x_gpe1_blk), 232);
        EXPECT_EQ(offsetof(struct acpi_fadt, sleep_control_reg), 244);
        EXPECT_EQ(offsetof(struct acpi_fadt, sleep_status_reg), 256);
        EXPECT_EQ(offsetof(struct acpi_fadt, hypervisor_vendor_id), 268);
        EXPECT_EQ(sizeof(struct acpi_fadt), 276);

        EXPECT_EQ(offsetof(struct acpi_madt, lapic_address), 36);
        EXPECT_EQ(offsetof(struct acpi_madt, flags), 40);
        EXPECT_EQ(sizeof(struct acpi_madt), 44);
        EXPECT_EQ(sizeof(struct acpi_madt_lapic), 8);
        EXPECT_EQ(offsetof(struct acpi_madt_lapic, apic_id), 3);
        EXPECT_EQ(offsetof(struct acpi_madt_lapic, flags), 4);
        EXPECT_EQ(sizeof(struct acpi_madt_ioapic), 12);
        EXPECT_EQ(offsetof(struct acpi_madt_ioapic, address), 4);
        EXPECT_EQ(offsetof(struct acpi_madt_ioapic, gsi_base), 8);
}

TEST(checksum)
{
        EXPECT_EQ(acpi_checksum("", 0), 0);
        EXPECT_EQ(acpi_checksum("\x01\x02\xfd", 3), 0);
        EXPECT_EQ(acpi_checksum("\xff\xff", 2), 0xfe);
}

/* Build a full set and walk it from the RSDP as an OS would. */
static void check_tables(const struct acpi_config *cfg, uint64_t base)
{
        struct acpi_tables t;
        struct acpi_fadt f;
        struct acpi_madt m;
        const uint8_t *rsdp, *xsdt, *fadt, *madt, *dsdt;
        size_t off;
        int used;

        capture_start();
        used = acpi_build(cfg, gpa(base), win, WIN, &t);
        ASSERT_TRUE(used > 0);
        EXPECT_EQ(used, t.size);
        EXPECT_EQ(gpa_raw(t.rsdp), base);

        /* RSDP */
        rsdp = win;
        EXPECT_TRUE(memcmp(rsdp, "RSD PTR ", 8) == 0);
        EXPECT_EQ(acpi_checksum(rsdp, ACPI_RSDP_V1_LEN), 0);
        EXPECT_EQ(acpi_checksum(rsdp, 36), 0);
        EXPECT_TRUE(memcmp(rsdp + 9, "KEEL  ", 6) == 0);
        EXPECT_EQ(rsdp[15], 2);
        EXPECT_EQ(rd32(rsdp + 20), 36);
        off = table_at(rd64(rsdp + 24), base, t.size);
        ASSERT_TRUE(off);
        EXPECT_EQ(off, t.xsdt);
        EXPECT_EQ(off % 8, 0);

        /* XSDT: FADT and MADT */
        xsdt = win + off;
        check_header(xsdt, "XSDT", 1, "KEELXSDT");
        ASSERT_TRUE(rd32(xsdt + 4) == 36 + 2 * 8);
        off = table_at(rd64(xsdt + 36), base, t.size);
        ASSERT_TRUE(off);
        EXPECT_EQ(off, t.fadt);
        fadt = win + off;
        off = table_at(rd64(xsdt + 44), base, t.size);
        ASSERT_TRUE(off);
        EXPECT_EQ(off, t.madt);
        madt = win + off;

        /* FADT */
        check_header(fadt, "FACP", 6, "KEELFACP");
        ASSERT_TRUE(rd32(fadt + 4) == 276);
        memcpy(&f, fadt, sizeof(f));
        EXPECT_EQ(fadt[131], 0); /* minor version */
        EXPECT_TRUE(f.flags & ACPI_FADT_HW_REDUCED);
        EXPECT_TRUE(f.flags & ACPI_FADT_RESET_REG_SUP);
        EXPECT_EQ(rd32(fadt + 112), f.flags);
        /* RESET_REG: SystemIO, 8 bits at 0x602, value 1 */
        EXPECT_EQ(fadt[116], 1);
        EXPECT_EQ(fadt[117], 8);
        EXPECT_EQ(fadt[118], 0);
        EXPECT_EQ(fadt[119], 1);
        EXPECT_EQ(rd64(fadt + 120), ACPI_RESET_PORT);
        EXPECT_EQ(fadt[128], ACPI_RESET_VALUE);
        /* SLEEP_CONTROL_REG / SLEEP_STATUS_REG */
        EXPECT_EQ(fadt[244], 1);
        EXPECT_EQ(fadt[245], 8);
        EXPECT_EQ(rd64(fadt + 248), ACPI_SLEEP_CONTROL_PORT);
        EXPECT_EQ(fadt[256], 1);
        EXPECT_EQ(fadt[257], 8);
        EXPECT_EQ(rd64(fadt + 260), ACPI_SLEEP_STATUS_PORT);
        /* No PM timer, no PM1/GPE blocks, no FACS, no SCI */
        EXPECT_EQ(f.pm_tmr_blk, 0);
        EXPECT_EQ(f.pm_tmr_len, 0);
        EXPECT_EQ(f.x_pm_tmr_blk.address, 0);
        EXPECT_EQ(f.pm1a_evt_blk, 0);
        EXPECT_EQ(f.pm1a_cnt_blk, 0);
        EXPECT_EQ(f.x_pm1a_cnt_blk.address, 0);
        EXPECT_EQ(f.gpe0_blk, 0);
        EXPECT_EQ(f.firmware_ctrl, 0);
        EXPECT_EQ(f.x_firmware_ctrl, 0);
        EXPECT_EQ(f.sci_int, 0);
        EXPECT_TRUE(memcmp(fadt + 268, "KEEL\0\0\0\0", 8) == 0);
        /* DSDT pointers */
        off = table_at(rd64(fadt + 140), base, t.size);
        ASSERT_TRUE(off);
        EXPECT_EQ(off, t.dsdt);
        EXPECT_EQ(rd32(fadt + 40), rd64(fadt + 140));
        dsdt = win + off;

        /* MADT */
        check_header(madt, "APIC", ACPI_MADT_REVISION, "KEELAPIC");
        memcpy(&m, madt, sizeof(m));
        EXPECT_EQ(m.lapic_address, 0xfee00000);
        EXPECT_EQ(m.flags & 1, 0); /* PCAT_COMPAT */
        {
                unsigned xapic = cfg->num_cpus < 255 ? cfg->num_cpus : 255;

                EXPECT_EQ(m.hdr.length, 44 + 8 * xapic + 16 * (cfg->num_cpus - xapic) + 12 +
                                            (cfg->com1 ? 10 : 0));
        }
        {
                unsigned lapics = 0, x2apics = 0, ioapics = 0, isos = 0;
                const uint8_t *e = madt + 44, *end = madt + m.hdr.length;

                while (e < end) {
                        ASSERT_TRUE(e[1] >= 2 && e + e[1] <= end);
                        if (e[0] == 0) {
                                EXPECT_EQ(e[1], 8);
                                EXPECT_EQ(e[2], lapics); /* processor UID */
                                EXPECT_EQ(e[3], lapics); /* APIC ID */
                                EXPECT_EQ(rd32(e + 4), 1);
                                EXPECT_EQ(x2apics, 0); /* IDs in order: LAPICs first */
                                lapics++;
                        } else if (e[0] == 9) {
                                /* x2APIC: IDs 255 and above, after the 255 LAPIC entries. */
                                EXPECT_EQ(e[1], 16);
                                EXPECT_EQ(lapics, 255);
                                EXPECT_EQ(rd32(e + 4), 255 + x2apics);  /* x2APIC ID */
                                EXPECT_EQ(rd32(e + 8), 1);              /* enabled */
                                EXPECT_EQ(rd32(e + 12), 255 + x2apics); /* processor UID */
                                x2apics++;
                        } else if (e[0] == 1) {
                                EXPECT_EQ(e[1], 12);
                                EXPECT_EQ(e[2], cfg->ioapic_id);
                                EXPECT_EQ(rd32(e + 4), 0xfec00000);
                                EXPECT_EQ(rd32(e + 8), 0);
                                ioapics++;
                        } else if (e[0] == 2) {
                                /* COM1: ISA IRQ 4 -> GSI 4, active high, level. */
                                EXPECT_EQ(e[1], 10);
                                EXPECT_EQ(e[2], 0);
                                EXPECT_EQ(e[3], 4);
                                EXPECT_EQ(rd32(e + 4), 4);
                                EXPECT_EQ(e[8] | (e[9] << 8), 0x000d);
                                isos++;
                        } else {
                                TEST_FAIL_AT(__FILE__, __LINE__, "MADT entry type %u", e[0]);
                        }
                        e += e[1];
                }
                EXPECT_EQ(lapics + x2apics, cfg->num_cpus);
                EXPECT_EQ(ioapics, 1);
                EXPECT_EQ(isos, cfg->com1 ? 1u : 0u);
        }

        /* DSDT */
        check_header(dsdt, "DSDT", 2, "KEELDSDT");
        EXPECT_EQ(t.dsdt + rd32(dsdt + 4), t.size);
        for (unsigned i = 0; i < cfg->num_virtio; i++) {
                const struct acpi_virtio_mmio *d = &cfg->virtio[i];
                uint8_t mem[12] = {0x86, 0x09, 0x00, 0x01},
                        irq[9] = {0x89, 0x06, 0x00, 0x03, 1}; /* consumer, edge */
                char name[5] = {'V', '0', '0', (char)('0' + i), 0};
                const uint8_t *dev, *hid;

                memcpy(mem + 4, &(uint32_t){(uint32_t)d->base}, 4);
                memcpy(mem + 8, &d->size, 4);
                memcpy(irq + 5, &d->gsi, 4);
                dev = memmem(dsdt, rd32(dsdt + 4), name, 4);
                ASSERT_TRUE(dev);
                EXPECT_EQ(dev[-3], 0x5B);
                EXPECT_EQ(dev[-2], 0x82);
                hid = memmem(dev, 64, "_HID\x0dLNRO0005", 13);
                EXPECT_TRUE(hid);
                EXPECT_TRUE(memmem(dev, 64, mem, sizeof(mem)));
                EXPECT_TRUE(memmem(dev, 64, irq, sizeof(irq)));
        }
        EXPECT_EQ(memmem(dsdt, rd32(dsdt + 4), "COM1", 4) != NULL, cfg->com1);
        EXPECT_TRUE(
            memmem(dsdt, rd32(dsdt + 4), "\x08\x5c_S5_\x12\x08\x04\x0a\x05\x0a\x05\x00\x00", 14));

        /* Nothing beyond the used bytes. */
        for (size_t i = t.size; i < WIN; i++)
                if (win[i] != 0) {
                        TEST_FAIL_AT(__FILE__, __LINE__, "byte %zu after the tables", i);
                        break;
                }
        EXPECT_STREQ(logbuf, "");
}

TEST(full_set_two_virtio_com1)
{
        struct acpi_config c = config(4, 2, true);

        memset(win, 0xEE, sizeof(win));
        check_tables(&c, BASE);
}

TEST(variants)
{
        struct acpi_config c;

        c = config(1, 0, false);
        check_tables(&c, BASE);
        c = config(ACPI_MAX_CPUS, 2, false);
        check_tables(&c, BASE);
        /* A VM's largest count (VM_MAX_VCPUS): 64 LAPIC entries; the last xAPIC ID; the first
         * x2APIC ID. */
        c = config(64, 2, true);
        check_tables(&c, BASE);
        c = config(255, 0, false);
        check_tables(&c, BASE);
        c = config(256, 0, true);
        check_tables(&c, BASE);
        c = config(2, 1, true);
        check_tables(&c, 0x7ff00000); /* another base: every pointer moves with it */
}

TEST(pointers_follow_base)
{
        static uint8_t a[WIN], b[WIN];
        struct acpi_config c = config(2, 2, true);
        struct acpi_tables ta, tb;

        ASSERT_TRUE(acpi_build(&c, gpa(BASE), a, WIN, &ta) > 0);
        ASSERT_TRUE(acpi_build(&c, gpa(0x100000), b, WIN, &tb) > 0);
        EXPECT_EQ(ta.size, tb.size);
        EXPECT_EQ(gpa_raw(tb.rsdp), 0x100000);
        EXPECT_EQ(rd64(a + 24) - BASE, rd64(b + 24) - 0x100000);
        EXPECT_EQ(rd64(a + ta.fadt + 140) - BASE, rd64(b + tb.fadt + 140) - 0x100000);
        /* The DSDT and MADT do not depend on the base. */
        EXPECT_TRUE(memcmp(a + ta.dsdt, b + tb.dsdt, ta.size - ta.dsdt) == 0);
        EXPECT_TRUE(memcmp(a + ta.madt, b + tb.madt, ta.dsdt - ta.madt) == 0);
}

TEST(small_window_refused_untouched)
{
        struct acpi_config c = config(8, 2, true);
        struct acpi_tables t;
        int need;

        capture_start();
        need = acpi_build(&c, gpa(BASE), win, WIN, &t);
        ASSERT_TRUE(need > 0);
        for (int cap = 0; cap < need; cap++) {
                memset(win, 0xC5, sizeof(win));
                EXPECT_EQ(acpi_build(&c, gpa(BASE), win, (size_t)cap, &t), -KEEL_ENOSPC);
                for (size_t i = 0; i < sizeof(win); i++)
                        if (win[i] != 0xC5) {
                                TEST_FAIL_AT(__FILE__, __LINE__, "cap %d: byte %zu written", cap,
                                             i);
                                return;
                        }
        }
        EXPECT_CONTAINS(logbuf, "tables need");
        memset(win, 0xC5, sizeof(win));
        EXPECT_EQ(acpi_build(&c, gpa(BASE), win, (size_t)need, &t), need);
        EXPECT_EQ(win[need], 0xC5);
        EXPECT_EQ(acpi_build(&c, gpa(BASE), NULL, 0, &t), -KEEL_ENOSPC);
}

TEST(bad_configs)
{
        struct acpi_virtio_mmio bad[1];
        struct acpi_config c;
        struct acpi_tables t;

        capture_start();
        memset(win, 0xC5, sizeof(win));
        c = config(0, 0, false);
        EXPECT_EQ(acpi_build(&c, gpa(BASE), win, WIN, &t), -KEEL_EINVAL);
        c = config(ACPI_MAX_CPUS + 1, 0, false);
        EXPECT_EQ(acpi_build(&c, gpa(BASE), win, WIN, &t), -KEEL_EINVAL);
        c = config(1, ACPI_MAX_VIRTIO + 1, false);
        EXPECT_EQ(acpi_build(&c, gpa(BASE), win, WIN, &t), -KEEL_EINVAL);
        c = config(1, 1, false);
        c.virtio = NULL;
        EXPECT_EQ(acpi_build(&c, gpa(BASE), win, WIN, &t), -KEEL_EINVAL);

        c = config(1, 1, false);
        c.virtio = bad;
        bad[0] = (struct acpi_virtio_mmio){.base = 0xd0000000, .size = 0x1000, .gsi = 24};
        EXPECT_EQ(acpi_build(&c, gpa(BASE), win, WIN, &t), -KEEL_EINVAL);
        bad[0] = (struct acpi_virtio_mmio){.base = 0xd0000000, .size = 0, .gsi = 5};
        EXPECT_EQ(acpi_build(&c, gpa(BASE), win, WIN, &t), -KEEL_EINVAL);
        bad[0] = (struct acpi_virtio_mmio){.base = 0x100000000ull, .size = 0x1000, .gsi = 5};
        EXPECT_EQ(acpi_build(&c, gpa(BASE), win, WIN, &t), -KEEL_EINVAL);
        bad[0] = (struct acpi_virtio_mmio){.base = 0xfffff000, .size = 0x2000, .gsi = 5};
        EXPECT_EQ(acpi_build(&c, gpa(BASE), win, WIN, &t), -KEEL_EINVAL);
        bad[0] = (struct acpi_virtio_mmio){.base = 0xfffff000, .size = 0x1000, .gsi = 23};
        EXPECT_TRUE(acpi_build(&c, gpa(BASE), win, WIN, &t) > 0);

        memset(win, 0xC5, sizeof(win));
        c = config(1, 0, false);
        EXPECT_EQ(acpi_build(&c, gpa(BASE + 8), win, WIN, &t), -KEEL_EINVAL);
        EXPECT_EQ(acpi_build(&c, gpa(0xffffff00), win, WIN, &t), -KEEL_EINVAL);
        EXPECT_EQ(acpi_build(&c, gpa(0x100000000ull), win, WIN, &t), -KEEL_EINVAL);
        EXPECT_EQ(win[0], 0xC5);
        EXPECT_CONTAINS(logbuf, "GSI 24");
        EXPECT_CONTAINS(logbuf, "not 16-byte aligned");
}

TEST(install_into_guest_memory)
{
        static uint8_t ram[0x100000] __attribute__((aligned(4096)));
        static uint8_t ref[WIN];
        struct acpi_config c = config(2, 2, true);
        struct acpi_tables t, tr;
        struct gmem m;
        int used;

        gmem_init(&m);
        ASSERT_TRUE(gmem_add_region(&m, gpa(0), sizeof(ram), hpa((uint64_t)(uintptr_t)ram)) == 0);
        memset(ram, 0xEE, sizeof(ram));
        used = acpi_install(&c, &m, gpa(BASE), WIN, &t);
        ASSERT_TRUE(used > 0);
        ASSERT_TRUE(acpi_build(&c, gpa(BASE), ref, WIN, &tr) == used);
        EXPECT_TRUE(memcmp(ram + BASE, ref, WIN) == 0);
        EXPECT_EQ(ram[BASE - 1], 0xEE);
        EXPECT_EQ(gpa_raw(t.rsdp), BASE);

        capture_start();
        EXPECT_EQ(acpi_install(&c, &m, gpa(0xf0000), WIN, &t), -KEEL_EFAULT);
        EXPECT_EQ(acpi_install(&c, &m, gpa(BASE), 0x100, &t), -KEEL_ENOSPC);
        EXPECT_EQ(ram[BASE + 0x100], ref[0x100]);
}

TEST(sleep_control_decode)
{
        EXPECT_TRUE(acpi_sleep_control_is_poweroff(0x34)); /* what Linux writes */
        EXPECT_TRUE(acpi_sleep_control_is_poweroff(0x34 | 0x80 | 0x03));
        EXPECT_FALSE(acpi_sleep_control_is_poweroff(0x14)); /* SLP_TYP 5 without SLP_EN */
        EXPECT_FALSE(acpi_sleep_control_is_poweroff(0x20)); /* SLP_EN, SLP_TYP 0 */
        EXPECT_FALSE(acpi_sleep_control_is_poweroff(0x30)); /* S4 */
        EXPECT_FALSE(acpi_sleep_control_is_poweroff(0x3c)); /* SLP_TYP 7 */
        EXPECT_FALSE(acpi_sleep_control_is_poweroff(0));
}

TEST_MAIN()
