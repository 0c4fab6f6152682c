/*
 * Tests for drivers/pci.c against config spaces captured from QEMU 7.2 (tests/unit/pci/,
 * README.md there): q35 and arm64 virt with an NVMe, a virtio-blk-pci on bus 0 and one behind
 * a pcie-root-port. The walk, BAR sizing (decode off around it, registers restored), the
 * capability lists, driver matching and enabling, and refusals of malformed devices.
 */
#include <stdlib.h>
#include <string.h>

#include <drivers/pci.h>
#include <keel/errno.h>

#include "log_capture.h"
#include "pci_fake.h"
#include "test.h"

static struct fake_pci fake, orig;
static struct pci_host host;
static struct pci_dev devs[64];

static void load(const char *name)
{
        char path[512];

        snprintf(path, sizeof(path), "%s/tests/unit/pci/%s", KEEL_SOURCE_DIR, name);
        EXPECT_TRUE(fake_pci_load(&fake, path) > 0);
        orig = fake;
        pci_host_init(&host, &fake_pci_ops, &fake);
        pci_set_table(&host, devs, 64);
        (void)pci_add_segment(&host, &(struct pci_segment){0, 0, 0, 0xff});
        capture_start();
}

static struct fake_fn *fn_at(unsigned bus, unsigned dev, unsigned fn)
{
        return fake_lookup(&fake, (struct pci_addr){0, (uint8_t)bus, (uint8_t)dev, (uint8_t)fn});
}

static struct pci_dev *dev_at(unsigned bus, unsigned dev, unsigned fn)
{
        for (unsigned i = 0; i < host.dev_count; i++)
                if (host.dev[i].addr.bus == bus && host.dev[i].addr.dev == dev &&
                    host.dev[i].addr.fn == fn)
                        return &host.dev[i];
        return NULL;
}

/* Every register but the command register reads as before the walk. */
static void expect_restored(void)
{
        for (unsigned i = 0; i < fake.count; i++)
                for (unsigned off = 0; off < PCI_CFG_SIZE; off += 4)
                        if (off != PCI_COMMAND &&
                            fake_get32(fake.fn[i].cfg + off) != fake_get32(orig.fn[i].cfg + off))
                                TEST_FAIL_AT(__FILE__, __LINE__, "function %u register %#x changed",
                                             i, off);
}

TEST(q35_walk_finds_every_function_behind_the_root_port_too)
{
        load("q35.txt");
        EXPECT_EQ(pci_scan(&host), 8);
        EXPECT_EQ(host.buses, 2);
        EXPECT_EQ(fake.probed_with_decode, 0);
        expect_restored();
        EXPECT_TRUE(dev_at(1, 0, 0) != NULL);
        EXPECT_EQ(dev_at(1, 0, 0)->device, 0x1042); /* modern virtio-blk behind the port */
        EXPECT_TRUE(dev_at(0, 3, 0)->bridge);
        EXPECT_EQ(dev_at(0, 3, 0)->secondary, 1);
        EXPECT_EQ(dev_at(0, 3, 0)->subordinate, 1);
        EXPECT_CONTAINS(logbuf, "keel: pci 0000:00:03.0 bridge to buses 0x1-0x1");
        EXPECT_CONTAINS(logbuf, "keel: pci: 8 functions on 2 buses of 1 segment, 0 taken");
        for (unsigned i = 0; i < host.dev_count; i++)
                EXPECT_TRUE(host.dev[i].bad == NULL);
}

TEST(q35_nvme_bars_and_caps)
{
        struct pci_dev *d;

        load("q35.txt");
        pci_scan(&host);
        d = pci_find(&host, 0x1b36, 0x0010, 0);
        EXPECT_TRUE(d != NULL);
        EXPECT_EQ(d->class, 0x010802);
        EXPECT_EQ(d->bar[0].kind, PCI_BAR_MEM64);
        EXPECT_FALSE(d->bar[0].prefetch);
        EXPECT_EQ(d->bar[0].base, 0xfe600000);
        EXPECT_EQ(d->bar[0].size, 0x4000);
        EXPECT_EQ(d->bar[1].kind, PCI_BAR_NONE); /* the upper half */
        EXPECT_EQ(d->cap_msix, 0x40);
        EXPECT_EQ(d->msix_size, 65);
        EXPECT_EQ(d->msix_table_bir, 0);
        EXPECT_EQ(d->msix_table_off, 0x2000);
        EXPECT_EQ(d->msix_pba_off, 0x3000);
        EXPECT_EQ(d->cap_pcie, 0x80);
        EXPECT_EQ(d->pcie_type, 9);
        EXPECT_CONTAINS(logbuf, "keel: pci 0000:00:01.0 1b36:0010 class 010802 (NVMe)");
        EXPECT_CONTAINS(logbuf, "keel: pci 0000:00:01.0 BAR0 mem64 0xfe600000 size 0x4000");
        EXPECT_CONTAINS(logbuf, "MSI-X 65 table BAR0+0x2000 PBA BAR0+0x3000");
        EXPECT_CONTAINS(logbuf, "keel: pci 0000:00:01.0 1b36:0010: no driver");
}

TEST(q35_virtio_caps_io_bar_and_extended_caps)
{
        struct pci_dev *d, *rp;
        static const uint8_t types[] = {5, 2, 4, 3, 1}; /* list order */

        load("q35.txt");
        pci_scan(&host);
        d = dev_at(0, 2, 0);
        EXPECT_EQ(d->vendor, 0x1af4);
        EXPECT_EQ(d->device, 0x1001); /* transitional on bus 0 */
        EXPECT_EQ(d->bar[0].kind, PCI_BAR_IO);
        EXPECT_EQ(d->bar[0].base, 0xc000);
        EXPECT_EQ(d->bar[0].size, 0x80);
        EXPECT_EQ(d->bar[4].kind, PCI_BAR_MEM64);
        EXPECT_TRUE(d->bar[4].prefetch);
        EXPECT_EQ(d->bar[4].size, 0x4000);
        EXPECT_EQ(d->virtio_count, 5);
        for (unsigned i = 0; i < 5 && i < d->virtio_count; i++)
                EXPECT_EQ(d->virtio[i].cfg_type, types[i]);
        EXPECT_EQ(d->virtio[4].bar, 4); /* common configuration */
        EXPECT_EQ(d->virtio[4].offset, 0);
        EXPECT_EQ(d->virtio[4].length, 0x1000);
        EXPECT_EQ(d->virtio[1].offset, 0x3000); /* notify */
        rp = dev_at(0, 3, 0);
        EXPECT_EQ(rp->pcie_type, 4);
        EXPECT_EQ(rp->extcap_count, 2);
        EXPECT_EQ(rp->extcap[0], 0x0001); /* AER */
        EXPECT_EQ(rp->extcap[1], 0x000d); /* ACS */
        EXPECT_CONTAINS(logbuf, "PCIe root port; MSI-X 1 table BAR0+0 PBA BAR0+0x800; ext 0x1 0xd");
}

TEST(arm64_virt_walk)
{
        struct pci_dev *d;

        load("virt.txt");
        EXPECT_EQ(pci_scan(&host), 5);
        EXPECT_EQ(fake.probed_with_decode, 0);
        expect_restored();
        d = dev_at(1, 0, 0);
        EXPECT_EQ(d->device, 0x1042);
        EXPECT_EQ(d->bar[4].base, 0x8000000000ull);
        EXPECT_EQ(d->bar[4].size, 0x4000);
        EXPECT_EQ(d->bar[1].base, 0x10000000);
        EXPECT_EQ(d->virtio_count, 5);
        EXPECT_EQ(pci_find(&host, 0x1b36, 0x0008, 0)->class >> 8, 0x0600);
        EXPECT_EQ(pci_find(&host, 0x1b36, 0x0010, 0)->msix_size, 65);
}

/* ---- drivers -------------------------------------------------------------------------- */

static struct pci_dev *probed[8];
static unsigned nprobed;
static int probe_result;

static int probe(struct pci_dev *d)
{
        if (nprobed < 8)
                probed[nprobed++] = d;
        /* The driver may touch its registers: memory decode and bus mastering are on. */
        EXPECT_EQ(pci_read16(&host, d, PCI_COMMAND) & (PCI_CMD_MEMORY | PCI_CMD_MASTER),
                  PCI_CMD_MEMORY | PCI_CMD_MASTER);
        return probe_result;
}

static const struct pci_driver nvme_drv = {"nvme-test", PCI_ANY_ID, PCI_ANY_ID,
                                           0x010802,    0xffffff,   probe};
static const struct pci_driver vblk_drv = {"virtio-blk-test", 0x1af4, 0x1042, 0, 0, probe};

TEST(drivers_take_matching_functions_and_only_they_master)
{
        load("q35.txt");
        nprobed = 0;
        probe_result = 0;
        EXPECT_EQ(pci_register_driver(&host, &nvme_drv), 0);
        EXPECT_EQ(pci_register_driver(&host, &vblk_drv), 0);
        /* The firmware left bus mastering on for the transitional virtio-blk. */
        fn_at(0, 2, 0)->cfg[4] |= PCI_CMD_MASTER;
        /* And off on the root port, which the device behind it needs. */
        fn_at(0, 3, 0)->cfg[4] &= (uint8_t) ~(PCI_CMD_MASTER | PCI_CMD_MEMORY);
        pci_scan(&host);
        EXPECT_EQ(nprobed, 2);
        EXPECT_TRUE(dev_at(0, 1, 0)->driver == &nvme_drv);
        EXPECT_TRUE(dev_at(1, 0, 0)->driver == &vblk_drv);
        EXPECT_TRUE(dev_at(0, 2, 0)->driver == NULL);
        EXPECT_EQ(fn_at(0, 1, 0)->cfg[4] & 6, 6);
        EXPECT_EQ(fn_at(1, 0, 0)->cfg[4] & 6, 6);
        EXPECT_EQ(fn_at(0, 3, 0)->cfg[4] & 6, 6); /* the bridge above it */
        EXPECT_EQ(fn_at(0, 2, 0)->cfg[4] & PCI_CMD_MASTER, 0);
        EXPECT_CONTAINS(logbuf, "keel: pci 0000:00:01.0 taken by driver nvme-test");
        EXPECT_CONTAINS(logbuf, "keel: pci 0000:01:00.0 taken by driver virtio-blk-test");
        EXPECT_CONTAINS(logbuf, "keel: pci 0000:00:02.0 1af4:1001: no driver");
        EXPECT_CONTAINS(logbuf, "2 taken by drivers");
}

TEST(a_refusing_driver_leaves_no_bus_mastering)
{
        load("q35.txt");
        nprobed = 0;
        probe_result = -KEEL_ENODEV;
        (void)pci_register_driver(&host, &nvme_drv);
        pci_scan(&host);
        EXPECT_EQ(nprobed, 1);
        EXPECT_TRUE(dev_at(0, 1, 0)->driver == NULL);
        EXPECT_EQ(fn_at(0, 1, 0)->cfg[4] & PCI_CMD_MASTER, 0);
        EXPECT_CONTAINS(logbuf, "driver nvme-test refused it");
        EXPECT_CONTAINS(logbuf, "0 taken by drivers");
}

TEST(msix_entry_and_enable)
{
        uint32_t table[65 * 4];
        struct pci_dev *d;

        load("q35.txt");
        pci_scan(&host);
        d = dev_at(0, 1, 0);
        memset(table, 0xff, sizeof(table));
        EXPECT_EQ(pci_msix_program(d, table, 3, 2, 0x41), 0);
        EXPECT_EQ(table[12], 0xfee02000u); /* the fake arch's message for CPU 2 */
        EXPECT_EQ(table[13], 0);
        EXPECT_EQ(table[14], 0x41);
        EXPECT_EQ(table[15], 0); /* unmasked */
        EXPECT_EQ(pci_msix_program(d, table, 65, 0, 0x41), -KEEL_EINVAL);
        pci_msix_enable(&host, d, true);
        EXPECT_EQ(fn_at(0, 1, 0)->cfg[0x43] & 0xc0, 0x80);
        EXPECT_TRUE(fn_at(0, 1, 0)->cfg[5] & (PCI_CMD_INTX_OFF >> 8));
        pci_msix_enable(&host, d, false);
        EXPECT_EQ(fn_at(0, 1, 0)->cfg[0x43] & 0xc0, 0);
}

/* ---- hostile devices ------------------------------------------------------------------ */

static void expect_bad(unsigned bus, unsigned dev, const char *why)
{
        struct pci_dev *d = dev_at(bus, dev, 0);

        EXPECT_TRUE(d != NULL);
        if (!d)
                return;
        EXPECT_TRUE(d->bad != NULL);
        EXPECT_TRUE(d->driver == NULL);
        if (d->bad)
                EXPECT_CONTAINS(d->bad, why);
        EXPECT_CONTAINS(logbuf, "left alone");
}

TEST(capability_loop_is_refused)
{
        load("q35.txt");
        nprobed = 0;
        probe_result = 0;
        (void)pci_register_driver(&host, &nvme_drv);
        fn_at(0, 1, 0)->cfg[0x81] = 0x60; /* PCIe cap -> PM cap (0x60) -> ... */
        fn_at(0, 1, 0)->cfg[0x61] = 0x80; /* PM cap -> PCIe cap: a loop */
        pci_scan(&host);
        expect_bad(0, 1, "capability list loops");
        EXPECT_EQ(nprobed, 0);
        EXPECT_EQ(fn_at(0, 1, 0)->cfg[4] & PCI_CMD_MASTER, 0);
}

TEST(capability_pointer_outside_the_device_area)
{
        load("q35.txt");
        fn_at(0, 1, 0)->cfg[0x34] = 0x20;
        pci_scan(&host);
        expect_bad(0, 1, "capability pointer 0x20");
        load("q35.txt");
        fn_at(0, 1, 0)->cfg[0x81] = 0xfc; /* a 16-byte capability cannot start there */
        pci_scan(&host);
        expect_bad(0, 1, "capability pointer 0xfc");
}

TEST(extended_capability_loop_and_pointer)
{
        load("q35.txt");
        fake_put32(fn_at(0, 3, 0)->cfg + 0x148, 0x1000d | 0x100u << 20); /* ACS -> AER */
        pci_scan(&host);
        expect_bad(0, 3, "extended capability list loops");
        EXPECT_TRUE(dev_at(1, 0, 0) == NULL); /* nothing behind a bad bridge */
        load("q35.txt");
        fake_put32(fn_at(0, 3, 0)->cfg + 0x148, 0x1000d | 0x40u << 20);
        pci_scan(&host);
        expect_bad(0, 3, "below 0x100");
}

TEST(msix_table_outside_its_bar)
{
        load("q35.txt");
        fake_put32(fn_at(0, 1, 0)->cfg + 0x44, 0x3c00); /* 65 entries from 0x3c00 pass 0x4000 */
        pci_scan(&host);
        expect_bad(0, 1, "MSI-X table");
        load("q35.txt");
        fake_put32(fn_at(0, 1, 0)->cfg + 0x44, 0x2002); /* BIR 2: no BAR there */
        pci_scan(&host);
        expect_bad(0, 1, "MSI-X table");
}

TEST(virtio_cap_outside_its_bar)
{
        load("q35.txt");
        fake_put32(fn_at(0, 2, 0)->cfg + 0x60 + 12, 0x2001); /* device cfg 0x2000+ past BAR4 */
        pci_scan(&host);
        expect_bad(0, 2, "virtio capability type 4");
}

TEST(bar_over_ram_or_keel)
{
        load("q35.txt");
        (void)pci_forbid(&host, 0xfe600000 - 0x1000, 0x2000, "RAM");
        pci_scan(&host);
        expect_bad(0, 1, "BAR0 0xfe600000+0x4000 overlaps RAM");
        EXPECT_TRUE(dev_at(0, 2, 0)->bad == NULL);
}

TEST(bar_size_probe_that_is_no_size)
{
        load("q35.txt");
        fn_at(0, 3, 0)->bar_size[0] = 0x3000; /* write-ones reads back non-contiguous bits */
        pci_scan(&host);
        expect_bad(0, 3, "not a size");
        load("q35.txt");
        fake_put32(fn_at(0, 3, 0)->cfg + 0x10, 0xfe605800); /* not aligned to its 4 KiB */
        pci_scan(&host);
        expect_bad(0, 3, "not aligned to its size 0x1000");
}

TEST(bridge_bus_numbers_checked)
{
        load("q35.txt");
        fn_at(0, 3, 0)->cfg[0x19] = 0; /* secondary bus 0: not below bus 0 */
        fn_at(0, 3, 0)->cfg[0x1a] = 1;
        pci_scan(&host);
        expect_bad(0, 3, "bridge buses 0-0x1");
        load("q35.txt");
        fn_at(0, 3, 0)->cfg[0x19] = 0;
        fn_at(0, 3, 0)->cfg[0x1a] = 0;
        pci_scan(&host);
        EXPECT_CONTAINS(logbuf, "bridge left unconfigured by the firmware");
        EXPECT_TRUE(dev_at(0, 3, 0)->bad == NULL);
        /* Its bus is not reached through it, but the walk of every bus finds it. */
        EXPECT_TRUE(dev_at(1, 0, 0) != NULL);
}

TEST(bridges_to_the_same_bus_and_deep_chains)
{
        struct fake_fn *rp;

        load("q35.txt");
        /* A second root port at 00:04.0 claiming bus 1 too. */
        rp = &fake.fn[fake.count++];
        *rp = *fn_at(0, 3, 0);
        rp->a.dev = 4;
        orig = fake;
        pci_scan(&host);
        expect_bad(0, 4, "already walked");
        EXPECT_EQ(host.dev_count, 9);
}

TEST(a_full_table_says_so_and_stops_recording)
{
        load("q35.txt");
        pci_set_table(&host, devs, 3);
        EXPECT_EQ(pci_scan(&host), 3);
        EXPECT_TRUE(host.full);
        EXPECT_CONTAINS(logbuf, "more than 3 functions: the rest are not recorded");
}

TEST(sixty_four_bit_bar_as_the_last)
{
        load("q35.txt");
        fake_put32(fn_at(0, 3, 0)->cfg + 0x14, 0x4); /* a bridge's BAR1 of type 64-bit */
        fn_at(0, 3, 0)->bar_size[1] = 0x1000;
        pci_scan(&host);
        expect_bad(0, 3, "BAR1 is 64-bit but the last one");
}

/* ---- MCFG ----------------------------------------------------------------------------- */

static uint8_t mcfg[44 + 3 * 16];

static void mcfg_entry(unsigned i, uint64_t base, uint16_t seg, uint8_t start, uint8_t end)
{
        uint8_t *e = mcfg + 44 + 16 * i;

        fake_put32(e, (uint32_t)base);
        fake_put32(e + 4, (uint32_t)(base >> 32));
        e[8] = (uint8_t)seg;
        e[9] = (uint8_t)(seg >> 8);
        e[10] = start;
        e[11] = end;
}

TEST(mcfg_entries)
{
        struct pci_segment s[2];
        unsigned n = 0;

        memset(mcfg, 0, sizeof(mcfg));
        mcfg_entry(0, 0xb0000000, 0, 0, 0xff);
        mcfg_entry(1, 0x4010000000ull, 1, 0x10, 0x1f);
        EXPECT_EQ(pci_mcfg_parse(mcfg, 44 + 32, s, 2, &n), 0);
        EXPECT_EQ(n, 2);
        EXPECT_EQ(s[1].ecam, 0x4010000000ull);
        EXPECT_EQ(s[1].seg, 1);
        EXPECT_EQ(s[1].bus_start, 0x10);
        EXPECT_EQ(pci_segment_window(&s[1]), 16ull << 20);
        EXPECT_EQ(pci_segment_window(&s[0]), 256ull << 20);
        EXPECT_EQ(pci_mcfg_parse(mcfg, 44 + 30, s, 2, &n), -KEEL_EINVAL);
        mcfg_entry(2, 0xc0000000, 1, 0x1f, 0x20); /* segment 1's buses 0x1f twice */
        EXPECT_EQ(pci_mcfg_parse(mcfg, 44 + 48, s, 2, &n), -KEEL_EINVAL);
        mcfg_entry(1, 0xb0080000, 1, 0, 0); /* not 1 MiB aligned */
        EXPECT_EQ(pci_mcfg_parse(mcfg, 44 + 32, s, 2, &n), -KEEL_EINVAL);
        mcfg_entry(1, 0xb0000000, 1, 5, 4); /* end before start */
        EXPECT_EQ(pci_mcfg_parse(mcfg, 44 + 32, s, 2, &n), -KEEL_EINVAL);
        mcfg_entry(1, 0xfffffffffff00000ull, 1, 0, 1); /* wraps */
        EXPECT_EQ(pci_mcfg_parse(mcfg, 44 + 32, s, 2, &n), -KEEL_EINVAL);
}

TEST_MAIN()
