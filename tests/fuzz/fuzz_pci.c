/*
 * libFuzzer target for Keel's PCI config-space walk (drivers/pci.c): the functions of a fake
 * ECAM (tests/unit/pci_fake.h, the unit tests' model: BARs keep their address bits above the
 * BAR's size, the command register and bridge bus numbers are writable) made from the input.
 *
 * Input, per function while bytes remain (at most FAKE_PCI_MAX): 1 byte address (bus = b >> 5
 * & 3, device = b & 31, function 0; repeats skipped), 6 bytes of BAR sizes (0: none, else
 * 16 << (b % 36)), 2 bytes n (little endian, taken modulo 1025), then n bytes of its config
 * space from offset 0 (the rest zero). Forbidden ranges: RAM at 1-2 GiB, Keel at 1 MiB. A
 * driver matching everything takes every function it is offered.
 *
 * Invariants (abort on violation):
 *   - the walk ends (libFuzzer's timeout) and never reads outside config space (the fake
 *     aborts on an offset not 4-aligned or >= 4096);
 *   - no BAR is written with all ones while the function decodes;
 *   - afterwards every register but the command register reads as before;
 *   - a good function's BARs: power-of-two sizes, bases aligned, memory BARs clear of the
 *     forbidden ranges; its MSI-X table and PBA and its virtio structures inside memory BARs;
 *     a good bridge's buses are above its own and ordered;
 *   - only good, non-bridge functions are offered to the driver, each once; those it took
 *     have memory decode and bus mastering on; good functions it did not take (none here, as
 *     it takes all) and bad ones are never given to it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <keel/log.h>

#include "../unit/pci_fake.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fake_pci fake, before;
static struct pci_host host;
static struct pci_dev devs[FAKE_PCI_MAX];
static unsigned offered[FAKE_PCI_MAX];

static int probe(struct pci_dev *d)
{
        unsigned i = (unsigned)(d - host.dev);

        if (i >= FAKE_PCI_MAX || d->bad || d->bridge || offered[i]++)
                abort();
        return 0;
}

static const struct pci_driver any = {"any", PCI_ANY_ID, PCI_ANY_ID, 0, 0, probe};

static bool in_bar(const struct pci_dev *d, unsigned bir, uint64_t off, uint64_t len)
{
        const struct pci_bar *b = &d->bar[bir];

        return bir < 6 && (b->kind == PCI_BAR_MEM32 || b->kind == PCI_BAR_MEM64) &&
               off + len <= b->size;
}

static void check_dev(const struct pci_dev *d)
{
        for (unsigned i = 0; i < 6; i++) {
                const struct pci_bar *b = &d->bar[i];

                if (b->kind == PCI_BAR_NONE)
                        continue;
                if (!b->size || (b->size & (b->size - 1)) || (b->base & (b->size - 1)))
                        abort();
                if (b->kind != PCI_BAR_IO && b->base)
                        for (unsigned f = 0; f < host.forbid_count; f++)
                                if (b->base < host.forbid[f].base + host.forbid[f].size &&
                                    host.forbid[f].base < b->base + b->size)
                                        abort();
        }
        if (d->cap_msix &&
            (!in_bar(d, d->msix_table_bir, d->msix_table_off, 16ull * d->msix_size) ||
             !in_bar(d, d->msix_pba_bir, d->msix_pba_off, 8)))
                abort();
        for (unsigned i = 0; i < d->virtio_count; i++)
                if (d->virtio[i].cfg_type >= 1 && d->virtio[i].cfg_type <= 4 &&
                    !in_bar(d, d->virtio[i].bar, d->virtio[i].offset, d->virtio[i].length))
                        abort();
        if (d->bridge && (d->secondary || d->subordinate) &&
            (d->secondary <= d->addr.bus || d->subordinate < d->secondary))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct in in = {data, size};
        uint8_t a, sizes[6], nb[2];

        memset(&fake, 0, sizeof(fake));
        memset(offered, 0, sizeof(offered));
        while (fake.count < FAKE_PCI_MAX && take(&in, &a, 1) && take(&in, sizes, 6) &&
               take(&in, nb, 2)) {
                struct pci_addr pa = {0, (uint8_t)(a >> 5 & 3), (uint8_t)(a & 31), 0};
                struct fake_fn *fn;
                size_t n = (size_t)(nb[0] | nb[1] << 8) % 1025;

                if (n > in.n)
                        n = in.n;
                if (fake_lookup(&fake, pa)) {
                        in.p += n;
                        in.n -= n;
                        continue;
                }
                fn = &fake.fn[fake.count++];
                fn->a = pa;
                take(&in, fn->cfg, n);
                for (unsigned i = 0; i < 6; i++)
                        fn->bar_size[i] = sizes[i] ? 16ull << (sizes[i] % 36) : 0;
        }
        /* The registers as the fake holds them (low BAR bits it would not keep, dropped). */
        for (unsigned i = 0; i < fake.count; i++) {
                uint8_t cmd = fake.fn[i].cfg[4];

                fake.fn[i].cfg[4] = 0;
                for (unsigned b = 0; b < 6; b++)
                        fake_write32(&fake, fake.fn[i].a, (uint16_t)(PCI_BAR0 + 4 * b),
                                     fake_get32(fake.fn[i].cfg + PCI_BAR0 + 4 * b));
                fake.fn[i].cfg[4] = cmd;
        }
        fake.probed_with_decode = 0;
        before = fake;

        log_set_level(LOG_LEVEL_ERROR); /* the walk's lines are not what is fuzzed */
        pci_host_init(&host, &fake_pci_ops, &fake);
        pci_set_table(&host, devs, FAKE_PCI_MAX);
        (void)pci_add_segment(&host, &(struct pci_segment){0, 0, 0, 3});
        (void)pci_forbid(&host, 1ull << 30, 1ull << 30, "RAM");
        (void)pci_forbid(&host, 1ull << 20, 1ull << 20, "Keel's image");
        (void)pci_register_driver(&host, &any);
        pci_scan(&host);

        if (fake.probed_with_decode || host.dev_count > fake.count)
                abort();
        for (unsigned i = 0; i < fake.count; i++)
                for (unsigned off = 0; off < PCI_CFG_SIZE; off += 4)
                        if (off != PCI_COMMAND &&
                            fake_get32(fake.fn[i].cfg + off) != fake_get32(before.fn[i].cfg + off))
                                abort();
        for (unsigned i = 0; i < host.dev_count; i++) {
                const struct pci_dev *d = &host.dev[i];
                const struct fake_fn *fn = fake_lookup(&fake, d->addr);

                if (!fn)
                        abort();
                if (d->bad) {
                        if (offered[i] || d->driver)
                                abort();
                        continue;
                }
                check_dev(d);
                if (!d->bridge && (!offered[i] || d->driver != &any || (fn->cfg[4] & 6) != 6))
                        abort();
        }
        return 0;
}
