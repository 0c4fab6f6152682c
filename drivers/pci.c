/*
 * Keel's PCI Express layer (API and contract in drivers/include/drivers/pci.h, design in
 * docs/pci.md). Pure: config space only through h->ops, so the host tests and the fuzzer run
 * the same code against captured config-space images.
 */
#include <stdio.h>
#include <string.h>

#include <drivers/pci.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <keel/le.h>

struct pci_host keel_pci;

#define MCFG_ENTRIES 44
#define MCFG_ENTRY   16

uint64_t pci_segment_window(const struct pci_segment *s)
{
        return (uint64_t)(s->bus_end - s->bus_start + 1) << 20;
}

int pci_mcfg_parse(const uint8_t *mcfg, uint32_t len, struct pci_segment *out, unsigned max,
                   unsigned *count)
{
        unsigned n = 0;

        if (len < MCFG_ENTRIES || (len - MCFG_ENTRIES) % MCFG_ENTRY)
                return -KEEL_EINVAL;
        for (uint32_t off = MCFG_ENTRIES; off < len; off += MCFG_ENTRY) {
                const uint8_t *e = mcfg + off;
                struct pci_segment s = {
                    .ecam = get_le32(e) | (uint64_t)get_le32(e + 4) << 32,
                    .seg = (uint16_t)(e[8] | e[9] << 8),
                    .bus_start = e[10],
                    .bus_end = e[11],
                };
                uint64_t lo = s.ecam + ((uint64_t)s.bus_start << 20);

                if (s.bus_end < s.bus_start || (s.ecam & 0xfffff) || lo < s.ecam ||
                    lo + pci_segment_window(&s) < lo)
                        return -KEEL_EINVAL;
                for (unsigned i = 0; i < n && i < max; i++)
                        if (out[i].seg == s.seg && s.bus_start <= out[i].bus_end &&
                            out[i].bus_start <= s.bus_end)
                                return -KEEL_EINVAL;
                if (n < max)
                        out[n] = s;
                n++;
        }
        *count = n < max ? n : max;
        return 0;
}

void pci_host_init(struct pci_host *h, const struct pci_cfg_ops *ops, void *ctx)
{
        memset(h, 0, sizeof(*h));
        h->ops = ops;
        h->ctx = ctx;
}

void pci_set_table(struct pci_host *h, struct pci_dev *table, unsigned max)
{
        h->dev = table;
        h->dev_max = table ? max : 0;
        h->dev_count = 0;
}

int pci_add_segment(struct pci_host *h, const struct pci_segment *s)
{
        if (h->seg_count == PCI_MAX_SEGMENTS)
                return -KEEL_ENOSPC;
        h->seg[h->seg_count++] = *s;
        return 0;
}

int pci_forbid(struct pci_host *h, uint64_t base, uint64_t size, const char *what)
{
        if (h->forbid_count == PCI_MAX_FORBID)
                return -KEEL_ENOSPC;
        h->forbid[h->forbid_count++] = (struct pci_range){base, size, what};
        return 0;
}

int pci_register_driver(struct pci_host *h, const struct pci_driver *drv)
{
        if (h->driver_count == PCI_MAX_DRIVERS)
                return -KEEL_ENOSPC;
        h->drivers[h->driver_count++] = drv;
        return 0;
}

static uint32_t cfg_read(struct pci_host *h, struct pci_addr a, uint16_t off)
{
        return h->ops->read32(h->ctx, a, off & 0xffc);
}

static void cfg_write(struct pci_host *h, struct pci_addr a, uint16_t off, uint32_t v)
{
        h->ops->write32(h->ctx, a, off & 0xffc, v);
}

uint32_t pci_read32(struct pci_host *h, const struct pci_dev *d, uint16_t off)
{
        return cfg_read(h, d->addr, off);
}

uint16_t pci_read16(struct pci_host *h, const struct pci_dev *d, uint16_t off)
{
        return (uint16_t)(cfg_read(h, d->addr, off) >> (8 * (off & 2)));
}

void pci_write32(struct pci_host *h, const struct pci_dev *d, uint16_t off, uint32_t val)
{
        cfg_write(h, d->addr, off, val);
}

/*
 * A 16-bit write as a read-modify-write of its dword. Only used on registers whose other
 * half is read-only or write-1-to-clear-safe: the status register's RW1C bits are written
 * as 0 (they are read back as-is, so mask them).
 */
void pci_write16(struct pci_host *h, const struct pci_dev *d, uint16_t off, uint16_t val)
{
        uint32_t v = cfg_read(h, d->addr, off), shift = 8 * (off & 2);

        if ((off & 0xffc) == PCI_COMMAND)
                v &= 0x0000ffffu; /* never write back the status register's RW1C bits */
        v = (v & ~(0xffffu << shift)) | (uint32_t)val << shift;
        cfg_write(h, d->addr, off, v);
}

const char *pci_name(const struct pci_dev *d, char *buf, unsigned len)
{
        snprintf(buf, len, "%04x:%02x:%02x.%u", d->addr.seg, d->addr.bus, d->addr.dev, d->addr.fn);
        return buf;
}

struct pci_dev *pci_find(struct pci_host *h, uint16_t vendor, uint16_t device, unsigned n)
{
        for (unsigned i = 0; i < h->dev_count; i++) {
                struct pci_dev *d = &h->dev[i];

                if ((vendor == PCI_ANY_ID || d->vendor == vendor) &&
                    (device == PCI_ANY_ID || d->device == device) && n-- == 0)
                        return d;
        }
        return NULL;
}

/* ---- one function ------------------------------------------------------------------- */

static const char *bar_kind_name(const struct pci_bar *b)
{
        switch (b->kind) {
        case PCI_BAR_IO:
                return "io";
        case PCI_BAR_MEM32:
                return b->prefetch ? "mem32 pref" : "mem32";
        case PCI_BAR_MEM64:
                return b->prefetch ? "mem64 pref" : "mem64";
        default:
                return "none";
        }
}

/* The size a write-ones probe read back as `mask` (address bits only) gives, 0 if invalid. */
static uint64_t size_of_mask(uint64_t mask)
{
        uint64_t size = mask & -mask; /* lowest writable address bit */

        if (!mask)
                return 0;
        /* Every address bit above the lowest writable one must be writable too. */
        if ((mask | (size - 1)) != ~0ull)
                return 0;
        return size;
}

/*
 * Size and check the BARs of `d` (nbars of them), decode off around the probes and every
 * register restored after. Returns NULL or why the function is bad.
 */
static const char *read_bars(struct pci_host *h, struct pci_dev *d, unsigned nbars, char *why,
                             unsigned why_len)
{
        uint32_t cmd = cfg_read(h, d->addr, PCI_COMMAND) & 0xffff;
        const char *bad = NULL;

        cfg_write(h, d->addr, PCI_COMMAND, cmd & ~(PCI_CMD_IO | PCI_CMD_MEMORY));
        for (unsigned i = 0; i < nbars; i++) {
                uint16_t off = PCI_BAR0 + 4 * i;
                uint32_t lo = cfg_read(h, d->addr, off), hi = 0, mlo, mhi = 0xffffffffu;
                struct pci_bar *b = &d->bar[i];
                uint64_t mask;

                cfg_write(h, d->addr, off, 0xffffffffu);
                mlo = cfg_read(h, d->addr, off);
                cfg_write(h, d->addr, off, lo);
                if (lo & 1) {
                        b->kind = PCI_BAR_IO;
                        b->base = lo & ~3u;
                        mask = (mlo & ~3u) | 0xffffffff00000000ull;
                        if ((mlo & ~3u) && !(mlo & 0xffff0000u))
                                mask |= 0xffff0000u; /* 16-bit I/O decoders read 0 above */
                } else {
                        unsigned type = (lo >> 1) & 3;

                        b->prefetch = lo & 8;
                        if (type == 1 || type == 3) {
                                if (!bad) {
                                        snprintf(why, why_len, "BAR%u has reserved type %u", i,
                                                 type);
                                        bad = why;
                                }
                                continue;
                        }
                        if (type == 2) {
                                if (i + 1 == nbars) {
                                        if (!bad) {
                                                snprintf(why, why_len,
                                                         "BAR%u is 64-bit but the last one", i);
                                                bad = why;
                                        }
                                        continue;
                                }
                                hi = cfg_read(h, d->addr, off + 4);
                                cfg_write(h, d->addr, off + 4, 0xffffffffu);
                                mhi = cfg_read(h, d->addr, off + 4);
                                cfg_write(h, d->addr, off + 4, hi);
                                b->kind = PCI_BAR_MEM64;
                                i++; /* the upper half is no BAR of its own */
                        } else {
                                b->kind = PCI_BAR_MEM32;
                        }
                        b->base = (lo & ~0xfu) | (uint64_t)hi << 32;
                        mask = (mlo & ~0xfu) | (uint64_t)mhi << 32;
                }
                if (!(mask & 0xffffffffu) && b->kind != PCI_BAR_MEM64) {
                        *b = (struct pci_bar){0}; /* not implemented */
                        continue;
                }
                if (!mask || (b->kind == PCI_BAR_MEM64 && !(uint32_t)mask && !(mask >> 32))) {
                        *b = (struct pci_bar){0};
                        continue;
                }
                b->size = size_of_mask(mask);
                if (!bad && !b->size) {
                        snprintf(why, why_len, "BAR%u size probe read %#llx (not a size)",
                                 (unsigned)(b - d->bar), (unsigned long long)mask);
                        bad = why;
                } else if (!bad && (b->base & (b->size - 1))) {
                        snprintf(why, why_len, "BAR%u at %#llx is not aligned to its size %#llx",
                                 (unsigned)(b - d->bar), (unsigned long long)b->base,
                                 (unsigned long long)b->size);
                        bad = why;
                }
                if (!bad && b->kind != PCI_BAR_IO && b->base) {
                        for (unsigned f = 0; f < h->forbid_count; f++) {
                                const struct pci_range *r = &h->forbid[f];

                                if (b->base < r->base + r->size && r->base < b->base + b->size) {
                                        snprintf(why, why_len,
                                                 "BAR%u %#llx+%#llx overlaps %s (%#llx+%#llx)",
                                                 (unsigned)(b - d->bar),
                                                 (unsigned long long)b->base,
                                                 (unsigned long long)b->size, r->what,
                                                 (unsigned long long)r->base,
                                                 (unsigned long long)r->size);
                                        bad = why;
                                        break;
                                }
                        }
                }
        }
        cfg_write(h, d->addr, PCI_COMMAND, cmd);
        return bad;
}

/* A memory BAR `bir` that holds [off, off + len), as a capability's structure must. */
static bool in_bar(const struct pci_dev *d, unsigned bir, uint64_t off, uint64_t len)
{
        const struct pci_bar *b;

        if (bir >= 6)
                return false;
        b = &d->bar[bir];
        return (b->kind == PCI_BAR_MEM32 || b->kind == PCI_BAR_MEM64) && off <= b->size &&
               len <= b->size - off;
}

static const char *read_caps(struct pci_host *h, struct pci_dev *d, char *why, unsigned why_len)
{
        uint8_t seen[256 / 32] = {0};
        unsigned ptr;

        if (!(cfg_read(h, d->addr, PCI_COMMAND) >> 16 & PCI_STATUS_CAPS))
                return NULL;
        ptr = cfg_read(h, d->addr, PCI_CAP_PTR) & 0xfc;
        while (ptr) {
                uint32_t head, w1, w2, w3;
                unsigned id;

                if (ptr < 0x40 || ptr > 0x100 - 16) {
                        snprintf(why, why_len, "capability pointer %#x outside the device's area",
                                 ptr);
                        return why;
                }
                if (seen[ptr / 32] & (1u << (ptr % 32 / 4))) {
                        snprintf(why, why_len, "capability list loops at %#x", ptr);
                        return why;
                }
                seen[ptr / 32] |= 1u << (ptr % 32 / 4);
                head = cfg_read(h, d->addr, ptr);
                w1 = cfg_read(h, d->addr, ptr + 4);
                w2 = cfg_read(h, d->addr, ptr + 8);
                w3 = cfg_read(h, d->addr, ptr + 12);
                id = head & 0xff;
                if (id == PCI_CAP_MSI && !d->cap_msi) {
                        d->cap_msi = (uint8_t)ptr;
                        d->msi_vectors = (uint16_t)(1u << ((head >> 17) & 7));
                        if (d->msi_vectors > 32) {
                                snprintf(why, why_len, "MSI capability asks for %u vectors",
                                         d->msi_vectors);
                                return why;
                        }
                } else if (id == PCI_CAP_MSIX && !d->cap_msix) {
                        d->cap_msix = (uint8_t)ptr;
                        d->msix_size = (uint16_t)((head >> 16 & 0x7ff) + 1);
                        d->msix_table_bir = w1 & 7;
                        d->msix_table_off = w1 & ~7u;
                        d->msix_pba_bir = w2 & 7;
                        d->msix_pba_off = w2 & ~7u;
                        if (!in_bar(d, d->msix_table_bir, d->msix_table_off,
                                    16ull * d->msix_size) ||
                            !in_bar(d, d->msix_pba_bir, d->msix_pba_off,
                                    8ull * ((d->msix_size + 63) / 64))) {
                                snprintf(why, why_len,
                                         "MSI-X table BAR%u+%#x or PBA BAR%u+%#x (%u entries) "
                                         "outside its BAR",
                                         d->msix_table_bir, d->msix_table_off, d->msix_pba_bir,
                                         d->msix_pba_off, d->msix_size);
                                return why;
                        }
                } else if (id == PCI_CAP_PCIE && !d->cap_pcie) {
                        d->cap_pcie = (uint8_t)ptr;
                        d->pcie_type = (head >> 20) & 0xf;
                } else if (id == PCI_CAP_VENDOR && d->vendor == PCI_VENDOR_VIRTIO) {
                        struct pci_virtio_cap v = {
                            .cfg_type = (uint8_t)(head >> 24),
                            .bar = w1 & 0xff,
                            .offset = w2,
                            .length = w3,
                        };

                        if (v.cfg_type == 2 && ((head >> 16) & 0xff) >= 20)
                                v.notify_mult = cfg_read(h, d->addr, ptr + 16);

                        if (((head >> 16) & 0xff) < 16) {
                                snprintf(why, why_len, "virtio capability at %#x is %u bytes", ptr,
                                         (head >> 16) & 0xff);
                                return why;
                        }
                        /* Types 1-4 name a structure in a BAR; 5 (PCI cfg access) does not. */
                        if (v.cfg_type >= 1 && v.cfg_type <= 4 &&
                            !in_bar(d, v.bar, v.offset, v.length)) {
                                snprintf(why, why_len,
                                         "virtio capability type %u at BAR%u+%#x+%#x outside "
                                         "its BAR",
                                         v.cfg_type, v.bar, v.offset, v.length);
                                return why;
                        }
                        if (!d->cap_virtio)
                                d->cap_virtio = (uint8_t)ptr;
                        if (d->virtio_count < PCI_MAX_VIRTIO)
                                d->virtio[d->virtio_count++] = v;
                }
                ptr = (head >> 8) & 0xfc;
        }
        return NULL;
}

static const char *read_extcaps(struct pci_host *h, struct pci_dev *d, char *why, unsigned why_len)
{
        unsigned ptr = PCI_EXT_CAP_START, steps = 0;

        if (!d->cap_pcie)
                return NULL; /* only PCIe functions have extended config space */
        while (ptr) {
                uint32_t head = cfg_read(h, d->addr, (uint16_t)ptr);

                if (ptr == PCI_EXT_CAP_START && (head == 0 || head == 0xffffffffu))
                        return NULL; /* no extended capabilities */
                /* At most (4096 - 256) / 4 distinct headers: more is a loop. */
                if (++steps > (PCI_CFG_SIZE - PCI_EXT_CAP_START) / 4) {
                        snprintf(why, why_len, "extended capability list loops");
                        return why;
                }
                if (d->extcap_count < PCI_MAX_EXTCAPS)
                        d->extcap[d->extcap_count++] = head & 0xffff;
                ptr = head >> 20 & 0xffc;
                if (ptr && ptr < PCI_EXT_CAP_START) {
                        snprintf(why, why_len, "extended capability pointer %#x below 0x100", ptr);
                        return why;
                }
        }
        return NULL;
}

static const char *class_name(uint32_t class)
{
        switch (class >> 8) {
        case 0x0108:
                return (class & 0xff) == 2 ? "NVMe" : "NVM";
        case 0x0100:
                return "SCSI or virtio storage";
        case 0x0106:
                return "SATA";
        case 0x0200:
                return "Ethernet";
        case 0x0300:
                return "VGA";
        case 0x0600:
                return "host bridge";
        case 0x0601:
                return "ISA bridge";
        case 0x0604:
                return "PCI bridge";
        case 0x0c05:
                return "SMBus";
        default:
                break;
        }
        switch (class >> 16) {
        case 0x01:
                return "storage";
        case 0x02:
                return "network";
        case 0x03:
                return "display";
        case 0x06:
                return "bridge";
        case 0x0c:
                return "serial bus";
        default:
                return "other";
        }
}

static const char *pcie_type_name(unsigned t)
{
        static const char *const names[] = {"endpoint",
                                            "legacy endpoint",
                                            "?",
                                            "?",
                                            "root port",
                                            "upstream port",
                                            "downstream port",
                                            "PCIe-PCI bridge",
                                            "PCI-PCIe bridge",
                                            "integrated endpoint",
                                            "event collector"};

        return t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

static void log_dev(const struct pci_dev *d)
{
        char name[16], line[200];
        int n;

        pci_name(d, name, sizeof(name));
        LOG_INFO("pci %s %04x:%04x class %06x (%s) rev %u%s", name, d->vendor, d->device, d->class,
                 class_name(d->class), d->revision,
                 d->vendor == PCI_VENDOR_VIRTIO ? " virtio" : "");
        for (unsigned i = 0; i < 6; i++) {
                const struct pci_bar *b = &d->bar[i];

                if (b->kind == PCI_BAR_NONE)
                        continue;
                if (b->base)
                        LOG_INFO("pci %s BAR%u %s %#llx size %#llx", name, i, bar_kind_name(b),
                                 (unsigned long long)b->base, (unsigned long long)b->size);
                else
                        LOG_INFO("pci %s BAR%u %s unassigned size %#llx", name, i, bar_kind_name(b),
                                 (unsigned long long)b->size);
        }
        n = snprintf(line, sizeof(line), "keel: pci %s caps:", name);
        if (d->cap_pcie)
                n +=
                    snprintf(line + n, sizeof(line) - n, " PCIe %s;", pcie_type_name(d->pcie_type));
        if (d->cap_msi)
                n += snprintf(line + n, sizeof(line) - n, " MSI %u;", d->msi_vectors);
        if (d->cap_msix)
                n +=
                    snprintf(line + n, sizeof(line) - n, " MSI-X %u table BAR%u+%#x PBA BAR%u+%#x;",
                             d->msix_size, d->msix_table_bir, d->msix_table_off, d->msix_pba_bir,
                             d->msix_pba_off);
        if (d->virtio_count) {
                n += snprintf(line + n, sizeof(line) - n, " virtio");
                for (unsigned i = 0; i < d->virtio_count && n < (int)sizeof(line); i++)
                        n += snprintf(line + n, sizeof(line) - n, " %u@BAR%u+%#x",
                                      d->virtio[i].cfg_type, d->virtio[i].bar, d->virtio[i].offset);
                if (n < (int)sizeof(line))
                        n += snprintf(line + n, sizeof(line) - n, ";");
        }
        if (d->extcap_count && n < (int)sizeof(line)) {
                n += snprintf(line + n, sizeof(line) - n, " ext");
                for (unsigned i = 0; i < d->extcap_count && n < (int)sizeof(line); i++)
                        n += snprintf(line + n, sizeof(line) - n, " %#x", d->extcap[i]);
                if (n < (int)sizeof(line))
                        n += snprintf(line + n, sizeof(line) - n, ";");
        }
        if (!d->cap_pcie && !d->cap_msi && !d->cap_msix && !d->virtio_count)
                n += snprintf(line + n, sizeof(line) - n, " none");
        else if (n > 0 && n < (int)sizeof(line) && line[n - 1] == ';')
                line[n - 1] = '\0';
        log_printf(LOG_LEVEL_INFO, "%s", line);
        if (d->bridge)
                LOG_INFO("pci %s bridge to buses %#x-%#x", name, d->secondary, d->subordinate);
}

/* ---- the walk ----------------------------------------------------------------------- */

struct walk {
        struct pci_host *h;
        const struct pci_segment *s;
        uint8_t visited[256 / 8];
};

static bool visited(const struct walk *w, unsigned bus)
{
        return w->visited[bus / 8] & (1u << (bus % 8));
}

static void scan_bus(struct walk *w, unsigned bus, unsigned depth);

static void bad_dev(struct pci_dev *d, const char *why)
{
        char name[16];

        d->bad = why;
        LOG_WARN("pci %s %04x:%04x left alone: %s", pci_name(d, name, sizeof(name)), d->vendor,
                 d->device, why);
}

/* The buses a bad bridge claims are not walked, not even as root buses. */
static void fence(struct walk *w, const struct pci_dev *d)
{
        for (unsigned b = d->secondary; b && b <= d->subordinate && b <= w->s->bus_end; b++)
                w->visited[b / 8] |= 1u << (b % 8);
}

static void bridge_walk(struct walk *w, struct pci_dev *d, unsigned bus, unsigned depth)
{
        unsigned sec = d->secondary, sub = d->subordinate;
        char name[16];

        pci_name(d, name, sizeof(name));
        if (sec == 0 && sub == 0) {
                LOG_WARN("pci %s bridge left unconfigured by the firmware (no bus "
                         "numbers): nothing behind it is enumerated",
                         name);
                return;
        }
        if (sec <= bus || sub < sec || sec < w->s->bus_start || sub > w->s->bus_end) {
                snprintf(d->reason, sizeof(d->reason),
                         "bridge buses %#x-%#x not below bus %#x inside %#x-%#x", sec, sub, bus,
                         w->s->bus_start, w->s->bus_end);
                bad_dev(d, d->reason);
                if (sec > bus)
                        fence(w, d);
                return;
        }
        if (depth >= PCI_MAX_DEPTH) {
                snprintf(d->reason, sizeof(d->reason), "bridges nested deeper than %u",
                         PCI_MAX_DEPTH);
                bad_dev(d, d->reason);
                fence(w, d);
                return;
        }
        if (visited(w, sec)) {
                snprintf(d->reason, sizeof(d->reason),
                         "bridge to bus %#x, which was already walked", sec);
                bad_dev(d, d->reason);
                return;
        }
        scan_bus(w, sec, depth + 1);
}

static void scan_fn(struct walk *w, unsigned bus, unsigned dev, unsigned fn, unsigned depth,
                    bool *multi)
{
        struct pci_host *h = w->h;
        struct pci_addr a = {w->s->seg, (uint8_t)bus, (uint8_t)dev, (uint8_t)fn};
        uint32_t id = cfg_read(h, a, PCI_VENDOR_ID), cr, ht;
        struct pci_dev *d;
        const char *bad;
        unsigned nbars;

        if ((id & 0xffff) == 0xffff || (id & 0xffff) == 0)
                return;
        ht = cfg_read(h, a, PCI_HEADER_TYPE & 0xffc) >> 16 & 0xff;
        if (fn == 0)
                *multi = ht & 0x80;
        if (h->dev_count == h->dev_max) {
                if (!h->full)
                        LOG_WARN("pci: more than %u functions: the rest are not recorded",
                                 h->dev_max);
                h->full = true;
                return;
        }
        d = &h->dev[h->dev_count++];
        memset(d, 0, sizeof(*d));
        cr = cfg_read(h, a, PCI_CLASS_REVISION);
        d->addr = a;
        d->vendor = (uint16_t)id;
        d->device = (uint16_t)(id >> 16);
        d->class = cr >> 8;
        d->revision = (uint8_t)cr;
        d->header = ht & 0x7f;
        d->bridge = d->header == 1;
        nbars = d->header == 0 ? 6 : d->header == 1 ? 2 : 0;
        if (d->header > 1) {
                snprintf(d->reason, sizeof(d->reason), "header type %u", d->header);
                bad = d->reason;
        } else {
                bad = read_bars(h, d, nbars, d->reason, sizeof(d->reason));
                if (!bad)
                        bad = read_caps(h, d, d->reason, sizeof(d->reason));
                if (!bad)
                        bad = read_extcaps(h, d, d->reason, sizeof(d->reason));
        }
        if (d->bridge) {
                uint32_t buses = cfg_read(h, a, PCI_PRIMARY_BUS);

                d->secondary = (uint8_t)(buses >> 8);
                d->subordinate = (uint8_t)(buses >> 16);
        }
        log_dev(d);
        if (bad) {
                bad_dev(d, bad);
                if (d->bridge)
                        fence(w, d);
                return;
        }
        if (d->bridge)
                bridge_walk(w, d, bus, depth);
}

static void scan_bus(struct walk *w, unsigned bus, unsigned depth)
{
        bool any = false;

        w->visited[bus / 8] |= 1u << (bus % 8);
        for (unsigned dev = 0; dev < 32; dev++) {
                bool multi = false;
                unsigned before = w->h->dev_count;

                scan_fn(w, bus, dev, 0, depth, &multi);
                any |= w->h->dev_count != before;
                for (unsigned fn = 1; multi && fn < 8; fn++)
                        scan_fn(w, bus, dev, fn, depth, &multi);
        }
        if (any)
                w->h->buses++;
}

unsigned pci_scan(struct pci_host *h)
{
        static struct walk w; /* 40 bytes of bitmap: not on Keel's stack in a recursion */

        h->dev_count = 0;
        h->buses = 0;
        h->full = false;
        for (unsigned i = 0; i < h->seg_count; i++) {
                memset(&w, 0, sizeof(w));
                w.h = h;
                w.s = &h->seg[i];
                scan_bus(&w, w.s->bus_start, 0);
                /* Other root buses of the segment: every bus no bridge led to. */
                for (unsigned bus = w.s->bus_start + 1u; bus <= w.s->bus_end; bus++)
                        if (!visited(&w, bus))
                                scan_bus(&w, bus, 0);
        }
        pci_bind(h);
        return h->dev_count;
}

/* ---- drivers ------------------------------------------------------------------------ */

static bool matches(const struct pci_driver *drv, const struct pci_dev *d)
{
        return (drv->vendor == PCI_ANY_ID || drv->vendor == d->vendor) &&
               (drv->device == PCI_ANY_ID || drv->device == d->device) &&
               ((d->class ^ drv->class) & drv->class_mask) == 0;
}

/* Memory decode and bus mastering on `d` and on every bridge above it. */
static void enable_path(struct pci_host *h, struct pci_dev *d, bool on)
{
        uint16_t cmd = pci_read16(h, d, PCI_COMMAND);

        if (on)
                cmd |= PCI_CMD_MEMORY | PCI_CMD_MASTER;
        else
                cmd &= (uint16_t)~PCI_CMD_MASTER;
        pci_write16(h, d, PCI_COMMAND, cmd);
        if (!on)
                return;
        for (unsigned i = 0; i < h->dev_count; i++) {
                struct pci_dev *b = &h->dev[i];

                if (b->bridge && !b->bad && b->addr.seg == d->addr.seg &&
                    d->addr.bus >= b->secondary && d->addr.bus <= b->subordinate &&
                    (pci_read16(h, b, PCI_COMMAND) & (PCI_CMD_MEMORY | PCI_CMD_MASTER)) !=
                        (PCI_CMD_MEMORY | PCI_CMD_MASTER))
                        pci_write16(h, b, PCI_COMMAND,
                                    pci_read16(h, b, PCI_COMMAND) | PCI_CMD_MEMORY |
                                        PCI_CMD_MASTER);
        }
}

void pci_bind(struct pci_host *h)
{
        unsigned taken = 0;

        for (unsigned i = 0; i < h->dev_count; i++) {
                struct pci_dev *d = &h->dev[i];
                char name[16];

                if (d->bad && !d->bridge && (pci_read16(h, d, PCI_COMMAND) & PCI_CMD_MASTER))
                        enable_path(h, d, false); /* left alone, but no DMA from it */
                if (d->bad || d->driver || d->bridge)
                        continue;
                pci_name(d, name, sizeof(name));
                for (unsigned k = 0; k < h->driver_count && !d->driver; k++) {
                        const struct pci_driver *drv = h->drivers[k];
                        int err;

                        if (!matches(drv, d))
                                continue;
                        enable_path(h, d, true);
                        d->host = h;
                        err = drv->probe(d);
                        if (!err) {
                                d->driver = drv;
                                LOG_INFO("pci %s taken by driver %s", name, drv->name);
                        } else {
                                enable_path(h, d, false);
                                LOG_WARN("pci %s: driver %s refused it: %s", name, drv->name,
                                         keel_strerror(err));
                        }
                }
                if (d->driver) {
                        taken++;
                        continue;
                }
                /* Not Keel's: no DMA from it, whatever the firmware left on. */
                if (pci_read16(h, d, PCI_COMMAND) & PCI_CMD_MASTER)
                        enable_path(h, d, false);
                LOG_INFO("pci %s %04x:%04x: no driver", name, d->vendor, d->device);
        }
        LOG_INFO("pci: %u function%s on %u bus%s of %u segment%s, %u taken by drivers",
                 h->dev_count, h->dev_count == 1 ? "" : "s", h->buses, h->buses == 1 ? "" : "es",
                 h->seg_count, h->seg_count == 1 ? "" : "s", taken);
}

/* ---- MSI-X -------------------------------------------------------------------------- */

int pci_msix_program(struct pci_dev *d, volatile uint32_t *table, unsigned entry, unsigned cpu,
                     uint8_t vector)
{
        uint64_t addr;
        uint32_t data;
        int err;

        if (!d->cap_msix || entry >= d->msix_size)
                return -KEEL_EINVAL;
        err = arch_msi_message(cpu, vector, &addr, &data);
        if (err)
                return err;
        table[4 * entry + 3] = 1; /* masked while it changes */
        table[4 * entry + 0] = (uint32_t)addr;
        table[4 * entry + 1] = (uint32_t)(addr >> 32);
        table[4 * entry + 2] = data;
        table[4 * entry + 3] = 0;
        return 0;
}

void pci_msix_enable(struct pci_host *h, struct pci_dev *d, bool on)
{
        uint16_t ctl, cmd;

        if (!d->cap_msix)
                return;
        ctl = pci_read16(h, d, d->cap_msix + 2);
        ctl = on ? (uint16_t)((ctl | PCI_MSIX_ENABLE) & ~PCI_MSIX_MASKALL)
                 : (uint16_t)(ctl & ~PCI_MSIX_ENABLE);
        pci_write16(h, d, d->cap_msix + 2, ctl);
        cmd = pci_read16(h, d, PCI_COMMAND);
        pci_write16(h, d, PCI_COMMAND,
                    on ? (uint16_t)(cmd | PCI_CMD_INTX_OFF) : (uint16_t)(cmd & ~PCI_CMD_INTX_OFF));
}
