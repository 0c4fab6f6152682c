/*
 * A fake PCI Express configuration space for host tests of drivers/pci.c: functions given as
 * 4 KiB images (captured from QEMU, tests/unit/pci/README.md, or made by a test) with the
 * write semantics the walk relies on: BARs keep only their address bits above the BAR's size
 * (so the write-ones probe reads the size back), the command register and a bridge's bus
 * numbers are writable, MSI-X enable/mask are writable, everything else is read-only. It
 * records a BAR probed while decode was on (the walk must turn decode off around probes).
 */
#ifndef KEEL_TEST_PCI_FAKE_H
#define KEEL_TEST_PCI_FAKE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drivers/pci.h>

#define FAKE_PCI_MAX 16

struct fake_fn {
        struct pci_addr a;
        uint8_t cfg[PCI_CFG_SIZE];
        uint64_t bar_size[6]; /* 0: not implemented; a 64-bit BAR's size is in its low slot */
};

struct fake_pci {
        struct fake_fn fn[FAKE_PCI_MAX];
        unsigned count;
        unsigned probed_with_decode; /* BAR writes of all ones while decode was on */
        unsigned reads, writes;
};

static inline uint32_t fake_get32(const uint8_t *p)
{
        return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void fake_put32(uint8_t *p, uint32_t v)
{
        for (unsigned i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static inline struct fake_fn *fake_lookup(struct fake_pci *f, struct pci_addr a)
{
        for (unsigned i = 0; i < f->count; i++)
                if (f->fn[i].a.seg == a.seg && f->fn[i].a.bus == a.bus && f->fn[i].a.dev == a.dev &&
                    f->fn[i].a.fn == a.fn)
                        return &f->fn[i];
        return NULL;
}

static inline uint32_t fake_read32(void *ctx, struct pci_addr a, uint16_t off)
{
        struct fake_pci *f = ctx;
        struct fake_fn *fn = fake_lookup(f, a);

        f->reads++;
        if (off & 3 || off >= PCI_CFG_SIZE)
                abort(); /* the walk must never ask for this */
        return fn ? fake_get32(fn->cfg + off) : 0xffffffffu;
}

/* Which BAR (and whether the upper half of a 64-bit one) `off` is; -1 if none. */
static inline int fake_bar_at(const struct fake_fn *fn, uint16_t off, bool *upper)
{
        unsigned nbars = (fn->cfg[PCI_HEADER_TYPE] & 0x7f) == 1 ? 2 : 6;
        int i = (off - PCI_BAR0) / 4;

        if (off < PCI_BAR0 || i >= (int)nbars)
                return -1;
        *upper = false;
        if (i > 0 && !fn->bar_size[i] && fn->bar_size[i - 1] &&
            (fake_get32(fn->cfg + PCI_BAR0 + 4 * (i - 1)) & 7) == 4) {
                *upper = true;
                return i - 1;
        }
        return i;
}

static inline void fake_write32(void *ctx, struct pci_addr a, uint16_t off, uint32_t v)
{
        struct fake_pci *f = ctx;
        struct fake_fn *fn = fake_lookup(f, a);
        bool upper;
        int bar;

        f->writes++;
        if (off & 3 || off >= PCI_CFG_SIZE)
                abort();
        if (!fn)
                return;
        if (off == PCI_COMMAND) {
                fn->cfg[4] = (uint8_t)v;
                fn->cfg[5] = (uint8_t)(v >> 8) & 0x07;
                return;
        }
        if (off == PCI_PRIMARY_BUS && (fn->cfg[PCI_HEADER_TYPE] & 0x7f) == 1) {
                fake_put32(fn->cfg + off,
                           (fake_get32(fn->cfg + off) & 0xff000000u) | (v & 0xffffffu));
                return;
        }
        bar = fake_bar_at(fn, off, &upper);
        if (bar >= 0) {
                uint64_t size = fn->bar_size[bar];
                uint32_t old = fake_get32(fn->cfg + off);

                if (v == 0xffffffffu && (fn->cfg[4] & (PCI_CMD_IO | PCI_CMD_MEMORY)))
                        f->probed_with_decode++;
                if (!size)
                        return; /* not implemented: reads 0 */
                if (upper)
                        fake_put32(fn->cfg + off, v & (uint32_t)(~(size - 1) >> 32));
                else if (old & 1)
                        fake_put32(fn->cfg + off, (v & ~(uint32_t)(size - 1) & 0xfffcu) | 1);
                else
                        fake_put32(fn->cfg + off, (v & ~(uint32_t)(size - 1)) | (old & 0xf));
                return;
        }
        /* MSI-X message control: enable and function mask. */
        for (unsigned p = fn->cfg[PCI_CAP_PTR] & 0xfc, n = 0; p >= 0x40 && n < 48;
             p = fn->cfg[p + 1] & 0xfc, n++) {
                if (fn->cfg[p] == PCI_CAP_MSIX && off == p) {
                        fn->cfg[p + 3] = (uint8_t)((fn->cfg[p + 3] & 0x3f) | ((v >> 24) & 0xc0));
                        return;
                }
        }
}

static const struct pci_cfg_ops fake_pci_ops = {fake_read32, fake_write32};

/*
 * Load a fixture file (tests/unit/pci/NAME.txt): "device SSSS:BB:DD.F", "resource START END
 * FLAGS" lines (sysfs order: BAR0..5 first), "OFF: 16 hex bytes" rows. Returns the count.
 */
static inline unsigned fake_pci_load(struct fake_pci *f, const char *path)
{
        FILE *fp = fopen(path, "r");
        char line[256];
        struct fake_fn *cur = NULL;
        unsigned res = 0;

        memset(f, 0, sizeof(*f));
        if (!fp)
                return 0;
        while (fgets(line, sizeof(line), fp)) {
                unsigned seg, bus, dev, fn, off, b[16];
                unsigned long long start, end, flags;

                if (sscanf(line, "device %x:%x:%x.%x", &seg, &bus, &dev, &fn) == 4) {
                        if (f->count == FAKE_PCI_MAX)
                                break;
                        cur = &f->fn[f->count++];
                        cur->a = (struct pci_addr){(uint16_t)seg, (uint8_t)bus, (uint8_t)dev,
                                                   (uint8_t)fn};
                        res = 0;
                } else if (cur &&
                           sscanf(line, "resource %llx %llx %llx", &start, &end, &flags) == 3) {
                        if (res < 6 && end > start)
                                cur->bar_size[res] = end - start + 1;
                        res++;
                } else if (cur &&
                           sscanf(line, "%x: %x %x %x %x %x %x %x %x %x %x %x %x %x %x %x %x", &off,
                                  &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &b[6], &b[7], &b[8],
                                  &b[9], &b[10], &b[11], &b[12], &b[13], &b[14], &b[15]) == 17 &&
                           off + 16 <= PCI_CFG_SIZE) {
                        for (unsigned i = 0; i < 16; i++)
                                cur->cfg[off + i] = (uint8_t)b[i];
                }
        }
        fclose(fp);
        return f->count;
}

#endif
