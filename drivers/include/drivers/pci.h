/*
 * Keel's own PCI Express layer (docs/pci.md): the segments of the ACPI MCFG table, config
 * space through ECAM, a recursive bus walk through type-1 headers, BARs, the capability and
 * extended capability lists (MSI, MSI-X, virtio vendor capabilities, PCIe), a table of the
 * functions found, and a small driver-match API: a driver registers (vendor, device, class)
 * and a probe callback; a function a driver takes gets memory decode and bus mastering, and
 * only such a function does.
 *
 * Everything read from a device is checked before it is used (a BAR overlapping RAM or Keel, a
 * capability loop, a pointer outside config space, a bridge claiming buses outside its
 * parent's): such a function is marked bad with a `keel: pci` line naming it and the reason,
 * and is left alone. Nothing a device reports can make Keel panic or loop forever.
 *
 * Config access goes through `struct pci_cfg_ops` so the host unit tests and the fuzzer run
 * the same walk against captured config-space images; the image uses ECAM (pci_ecam_ops).
 */
#ifndef DRIVERS_PCI_H
#define DRIVERS_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/addr.h>

#define PCI_MAX_SEGMENTS 8
#define PCI_BOOT_DEVICES 256 /* the table pci_boot allocates */
#define PCI_MAX_DRIVERS  8
#define PCI_MAX_FORBID   144 /* every RAM range of the memory map, Keel, ECAM */
#define PCI_MAX_DEPTH    32  /* bridges below bridges */
#define PCI_MAX_VIRTIO   6
#define PCI_MAX_EXTCAPS  8
#define PCI_ANY_ID       0xffffu

/* Config-space registers (PCI Local Bus 3.0 and PCIe Base 6.6). */
#define PCI_VENDOR_ID      0x00
#define PCI_COMMAND        0x04
#define PCI_STATUS         0x06
#define PCI_CLASS_REVISION 0x08
#define PCI_HEADER_TYPE    0x0e
#define PCI_BAR0           0x10
#define PCI_PRIMARY_BUS    0x18 /* type 1: primary, secondary, subordinate bus numbers */
#define PCI_CAP_PTR        0x34
#define PCI_CMD_IO         (1u << 0)
#define PCI_CMD_MEMORY     (1u << 1)
#define PCI_CMD_MASTER     (1u << 2)
#define PCI_CMD_INTX_OFF   (1u << 10)
#define PCI_STATUS_CAPS    (1u << 4)
#define PCI_CAP_MSI        0x05
#define PCI_CAP_VENDOR     0x09
#define PCI_CAP_PCIE       0x10
#define PCI_CAP_MSIX       0x11
#define PCI_MSIX_ENABLE    (1u << 15)
#define PCI_MSIX_MASKALL   (1u << 14)
#define PCI_EXT_CAP_START  0x100
#define PCI_CFG_SIZE       0x1000
#define PCI_VENDOR_VIRTIO  0x1af4

struct pci_addr {
        uint16_t seg;
        uint8_t bus, dev, fn;
};

/* Config-space access: 32-bit, `off` 4-byte aligned and below PCI_CFG_SIZE. */
struct pci_cfg_ops {
        uint32_t (*read32)(void *ctx, struct pci_addr a, uint16_t off);
        void (*write32)(void *ctx, struct pci_addr a, uint16_t off, uint32_t val);
};

/* One MCFG entry: ECAM at `ecam` (the address of bus 0's space), buses start..end. */
struct pci_segment {
        uint64_t ecam;
        uint16_t seg;
        uint8_t bus_start, bus_end;
};

enum pci_bar_kind { PCI_BAR_NONE, PCI_BAR_IO, PCI_BAR_MEM32, PCI_BAR_MEM64 };

struct pci_bar {
        enum pci_bar_kind kind; /* PCI_BAR_NONE: not implemented (or the upper half of a 64-bit) */
        bool prefetch;
        uint64_t base; /* as the firmware assigned it; 0 = unassigned */
        uint64_t size;
};

/* A virtio vendor capability (virtio 1.2, 4.1.4): cfg_type 1 common .. 5 PCI cfg access. */
struct pci_virtio_cap {
        uint8_t cfg_type, bar;
        uint32_t offset, length;
        uint32_t notify_mult; /* cfg_type 2: notify_off_multiplier (4.1.4.4); else 0 */
};

struct pci_dev {
        struct pci_addr addr;
        uint16_t vendor, device;
        uint32_t class; /* base class << 16 | subclass << 8 | prog-if */
        uint8_t revision, header;
        bool bridge;
        uint8_t secondary, subordinate; /* bridges only */
        struct pci_bar bar[6];
        uint8_t cap_msi, cap_msix, cap_pcie, cap_virtio; /* config offsets, 0 = absent */
        uint8_t pcie_type;                               /* PCIe capability's port type */
        uint16_t msi_vectors;                            /* 1..32 */
        uint16_t msix_size;                              /* table entries */
        uint8_t msix_table_bir, msix_pba_bir;
        uint32_t msix_table_off, msix_pba_off;
        struct pci_virtio_cap virtio[PCI_MAX_VIRTIO];
        unsigned virtio_count;
        uint16_t extcap[PCI_MAX_EXTCAPS]; /* extended capability ids, in list order */
        unsigned extcap_count;
        const char *bad; /* why Keel leaves it alone (points to reason), or NULL */
        char reason[96];
        const struct pci_driver *driver;
        void *driver_data;
        struct pci_host *host; /* set before a driver's probe: for its config accesses */
};

/* A driver: matches a function by vendor/device (PCI_ANY_ID: any) and class under a mask. */
struct pci_driver {
        const char *name;
        uint16_t vendor, device;
        uint32_t class, class_mask;
        /* 0: the driver takes the function (memory decode and bus mastering stay on). */
        int (*probe)(struct pci_dev *dev);
};

/* A host range no BAR may overlap (RAM, Keel's image, the ECAM windows). */
struct pci_range {
        uint64_t base, size;
        const char *what;
};

struct pci_host {
        const struct pci_cfg_ops *ops;
        void *ctx;
        struct pci_segment seg[PCI_MAX_SEGMENTS];
        unsigned seg_count;
        struct pci_range forbid[PCI_MAX_FORBID];
        unsigned forbid_count;
        const struct pci_driver *drivers[PCI_MAX_DRIVERS];
        unsigned driver_count;
        struct pci_dev *dev; /* the table of functions found (pci_set_table) */
        unsigned dev_count, dev_max;
        unsigned buses; /* buses that held at least one function */
        bool full;      /* more functions than dev_max: the rest were not recorded */
};

extern struct pci_host keel_pci;

/*
 * Parse an MCFG table into `out` (at most `max`): 0 and *count, or -KEEL_EINVAL (length not
 * a whole number of entries, an entry with end < start, an ECAM base not 1 MiB aligned or
 * whose window wraps, two entries of one segment with overlapping buses).
 */
int pci_mcfg_parse(const uint8_t *mcfg, uint32_t len, struct pci_segment *out, unsigned max,
                   unsigned *count);

/* Bytes of ECAM space a segment's buses take (from its bus_start). */
uint64_t pci_segment_window(const struct pci_segment *s);

/* ECAM access through Keel's own (uncached) map; ctx is the pci_host. */
extern const struct pci_cfg_ops pci_ecam_ops;

/* Reset `h` to use `ops`/`ctx` with no segments, drivers, devices or forbidden ranges. */
void pci_host_init(struct pci_host *h, const struct pci_cfg_ops *ops, void *ctx);
/* The table pci_scan fills: `max` functions at `table`. */
void pci_set_table(struct pci_host *h, struct pci_dev *table, unsigned max);
int pci_add_segment(struct pci_host *h, const struct pci_segment *s);
int pci_forbid(struct pci_host *h, uint64_t base, uint64_t size, const char *what);
/* Register before pci_scan; -KEEL_ENOSPC when the table is full. */
int pci_register_driver(struct pci_host *h, const struct pci_driver *drv);

/*
 * Walk every segment: the functions reachable from each segment's first bus through bridges,
 * then every bus of the segment's range no bridge led to (other root buses). Each function
 * gets its `keel: pci` lines; then the drivers are matched (pci_bind). Returns the number of
 * functions recorded.
 */
unsigned pci_scan(struct pci_host *h);

/* Offer every good function without a driver to the registered drivers, in order. */
void pci_bind(struct pci_host *h);

/* The n-th function matching vendor/device (PCI_ANY_ID: any), or NULL. */
struct pci_dev *pci_find(struct pci_host *h, uint16_t vendor, uint16_t device, unsigned n);

uint32_t pci_read32(struct pci_host *h, const struct pci_dev *d, uint16_t off);
uint16_t pci_read16(struct pci_host *h, const struct pci_dev *d, uint16_t off);
void pci_write32(struct pci_host *h, const struct pci_dev *d, uint16_t off, uint32_t val);
void pci_write16(struct pci_host *h, const struct pci_dev *d, uint16_t off, uint16_t val);

/* "seg:bus:dev.fn" into buf (at least 14 bytes). */
const char *pci_name(const struct pci_dev *d, char *buf, unsigned len);

/*
 * MSI-X (PCIe 6.6, 6.1.4.2): program table entry `entry` of `table` (the function's MSI-X
 * table, mapped by the caller from msix_table_bir/msix_table_off) with the message the arch
 * gives for `cpu`/`vector` (arch_msi_message), unmasked; -KEEL_EINVAL if the entry is past the
 * table, the arch's error (arm64 today: -KEEL_ENOTSUP, drivers then poll). pci_msix_enable
 * turns MSI-X on (function mask off) and INTx off.
 */
int pci_msix_program(struct pci_dev *d, volatile uint32_t *table, unsigned entry, unsigned cpu,
                     uint8_t vector);
void pci_msix_enable(struct pci_host *h, struct pci_dev *d, bool on);

/*
 * Enumerate the machine's PCI Express at boot (kernel/main.c): the MCFG from `rsdp`, the
 * ranges no BAR may overlap, then pci_scan with the drivers registered so far. No MCFG: one
 * line saying so, and no PCI.
 */
struct boot_info;
void pci_boot(const struct boot_info *bi);

/*
 * The ECAM windows of the MCFG under `rsdp` (at most `max`; 0 if none or malformed): the arch
 * maps each (from ecam + bus_start MiB, pci_segment_window bytes) uncached in Keel's own map
 * when it builds it, and in no guest's map.
 */
unsigned pci_ecam_windows(hpa_t rsdp, struct pci_segment *out, unsigned max);

/*
 * Arch hooks. arch_msi_message: the MSI address and data that deliver `vector` to Keel's CPU
 * `cpu` (x86: the LAPIC's fixed, edge message; arm64: -KEEL_ENOTSUP for now, docs/pci.md).
 * arch_msi_describe: one phrase on what MSI target the machine has and Keel uses.
 */
int arch_msi_message(unsigned cpu, uint8_t vector, uint64_t *addr, uint32_t *data);
void arch_msi_describe(char *buf, unsigned len);

#endif
