/*
 * ACPI tables for x86 Linux guests (docs/acpi.md). Keel describes a hardware-reduced ACPI
 * platform: RSDP -> XSDT -> {FADT -> DSDT, MADT}. The FADT has no PM1/GPE blocks and no PM
 * timer; power-off and reset go through the FADT's sleep control and reset registers, which
 * are I/O ports that the VMM emulates (ACPI_SLEEP_CONTROL_PORT, ACPI_RESET_PORT below). The MADT
 * lists one local APIC per vCPU and one I/O APIC; the DSDT describes the virtio-mmio devices
 * (_HID "LNRO0005"), optionally COM1, and \_S5.
 *
 * acpi_build() writes the tables into a host buffer that stands for the guest-physical window
 * [base, base + cap): every pointer inside the tables is a guest-physical address within it.
 * acpi_install() does the same directly into a VM's memory.
 */
#ifndef VMM_ACPI_H
#define VMM_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <keel/addr.h>

struct gmem;

/* The guest-physical window of a Linux VM's tables (e820: reserved/ACPI). */
#define ACPI_WINDOW_BASE 0xe0000ull
#define ACPI_WINDOW_SIZE 0x20000ull

/* Interrupt controllers. */
#define ACPI_LAPIC_ADDR      0xfee00000u
#define ACPI_IOAPIC_ADDR     0xfec00000u
#define ACPI_IOAPIC_GSI_BASE 0
#define ACPI_IOAPIC_PINS     24
/* CPUs the builder describes: APIC IDs 0..254 in LAPIC entries (0xff is the xAPIC broadcast
 * ID), 255 and above in x2APIC entries (ACPI 6.5, 5.2.12.12); a VM has at most VM_MAX_VCPUS. */
#define ACPI_MAX_CPUS     1024
#define ACPI_MAX_XAPIC_ID 254
#define ACPI_MAX_VIRTIO   32

/* COM1 as described in the DSDT. */
#define ACPI_COM1_PORT 0x3f8
#define ACPI_COM1_GSI  4

/*
 * The emulated registers (8-bit I/O ports) named by the FADT.
 *
 * Sleep control (write): bits 4-2 SLP_TYP, bit 5 SLP_EN. Writing SLP_EN with SLP_TYP =
 * ACPI_SLP_TYP_S5 (the value \_S5 gives) powers the VM off: Linux writes 0x34. Other values
 * are no sleep state Keel offers and may be ignored.
 * Sleep status (read/write): bit 7 WAK_STS, write 1 to clear. Linux clears it before writing
 * the sleep control register and then polls it; reading 0 keeps it waiting for the power-off.
 * Reset (write): ACPI_RESET_VALUE resets (reboots) the VM; Linux writes it for `reboot`.
 */
#define ACPI_SLEEP_CONTROL_PORT  0x600
#define ACPI_SLEEP_STATUS_PORT   0x601
#define ACPI_RESET_PORT          0x602
#define ACPI_RESET_VALUE         0x01
#define ACPI_SLEEP_SLP_TYP_SHIFT 2
#define ACPI_SLEEP_SLP_TYP_MASK  0x1c
#define ACPI_SLEEP_SLP_EN        0x20
#define ACPI_SLEEP_WAK_STS       0x80
#define ACPI_SLP_TYP_S5          5

/* True if `value` written to the sleep control register requests S5 (power off). */
bool acpi_sleep_control_is_poweroff(uint8_t value);

struct acpi_virtio_mmio {
        uint64_t base; /* below 4 GiB (Memory32Fixed) */
        uint32_t size;
        uint32_t gsi; /* an I/O APIC pin */
};

struct acpi_config {
        unsigned num_cpus; /* 1..ACPI_MAX_CPUS, APIC IDs 0..num_cpus-1 */
        uint8_t ioapic_id;
        const struct acpi_virtio_mmio *virtio;
        unsigned num_virtio; /* 0..ACPI_MAX_VIRTIO, DSDT devices \_SB.V000, V001, ... */
        bool com1;           /* describe COM1 (PNP0501, 0x3f8-0x3ff, IRQ 4) as \_SB.COM1 */
};

/* Where the tables went: guest-physical RSDP, and each table's offset from the base. */
struct acpi_tables {
        gpa_t rsdp;
        uint32_t size; /* bytes used from the base */
        uint32_t xsdt, fadt, madt, dsdt;
};

/*
 * Build the tables for the window that starts at guest-physical `base` (16-byte aligned; the
 * tables must end below 4 GiB) into buf[0, cap), which the caller copies to `base`. buf[0, cap)
 * is zeroed first. Returns the bytes used (> 0) and fills *out; -KEEL_ENOSPC if cap is too
 * small (buf untouched), -KEEL_EINVAL for a bad configuration or base (logged).
 */
int acpi_build(const struct acpi_config *cfg, gpa_t base, void *buf, size_t cap,
               struct acpi_tables *out);
/*
 * acpi_build() straight into guest memory: the window [base, base + size) must lie inside one
 * RAM region of m (-KEEL_EFAULT otherwise).
 */
int acpi_install(const struct acpi_config *cfg, const struct gmem *m, gpa_t base, uint64_t size,
                 struct acpi_tables *out);

/* Sum of the bytes, mod 256 (0 for a table with a correct checksum). */
uint8_t acpi_checksum(const void *p, size_t n);

/* The tables' layouts (ACPI 6.0). All little-endian, packed. */
#define ACPI_OEM_ID       "KEEL  "
#define ACPI_CREATOR_ID   "KEEL"
#define ACPI_HV_VENDOR_ID "KEEL"

struct acpi_rsdp {
        char signature[8]; /* "RSD PTR " */
        uint8_t checksum;  /* of the first 20 bytes */
        char oem_id[6];
        uint8_t revision; /* 2: ACPI 2.0+ */
        uint32_t rsdt_address;
        uint32_t length;
        uint64_t xsdt_address;
        uint8_t extended_checksum; /* of the whole structure */
        uint8_t reserved[3];
} __attribute__((packed));

#define ACPI_RSDP_V1_LEN 20

struct acpi_header {
        char signature[4];
        uint32_t length;
        uint8_t revision;
        uint8_t checksum;
        char oem_id[6];
        char oem_table_id[8];
        uint32_t oem_revision;
        char creator_id[4];
        uint32_t creator_revision;
} __attribute__((packed));

/* Generic Address Structure. */
struct acpi_gas {
        uint8_t space_id;
        uint8_t bit_width;
        uint8_t bit_offset;
        uint8_t access_size;
        uint64_t address;
} __attribute__((packed));

#define ACPI_GAS_SYSTEM_IO   1
#define ACPI_GAS_ACCESS_BYTE 1

struct acpi_fadt {
        struct acpi_header hdr;
        uint32_t firmware_ctrl;
        uint32_t dsdt;
        uint8_t reserved0;
        uint8_t preferred_pm_profile;
        uint16_t sci_int;
        uint32_t smi_cmd;
        uint8_t acpi_enable;
        uint8_t acpi_disable;
        uint8_t s4bios_req;
        uint8_t pstate_cnt;
        uint32_t pm1a_evt_blk;
        uint32_t pm1b_evt_blk;
        uint32_t pm1a_cnt_blk;
        uint32_t pm1b_cnt_blk;
        uint32_t pm2_cnt_blk;
        uint32_t pm_tmr_blk;
        uint32_t gpe0_blk;
        uint32_t gpe1_blk;
        uint8_t pm1_evt_len;
        uint8_t pm1_cnt_len;
        uint8_t pm2_cnt_len;
        uint8_t pm_tmr_len;
        uint8_t gpe0_blk_len;
        uint8_t gpe1_blk_len;
        uint8_t gpe1_base;
        uint8_t cst_cnt;
        uint16_t p_lvl2_lat;
        uint16_t p_lvl3_lat;
        uint16_t flush_size;
        uint16_t flush_stride;
        uint8_t duty_offset;
        uint8_t duty_width;
        uint8_t day_alrm;
        uint8_t mon_alrm;
        uint8_t century;
        uint16_t iapc_boot_arch;
        uint8_t reserved1;
        uint32_t flags;
        struct acpi_gas reset_reg;
        uint8_t reset_value;
        uint16_t arm_boot_arch;
        uint8_t minor_version;
        uint64_t x_firmware_ctrl;
        uint64_t x_dsdt;
        struct acpi_gas x_pm1a_evt_blk;
        struct acpi_gas x_pm1b_evt_blk;
        struct acpi_gas x_pm1a_cnt_blk;
        struct acpi_gas x_pm1b_cnt_blk;
        struct acpi_gas x_pm2_cnt_blk;
        struct acpi_gas x_pm_tmr_blk;
        struct acpi_gas x_gpe0_blk;
        struct acpi_gas x_gpe1_blk;
        struct acpi_gas sleep_control_reg;
        struct acpi_gas sleep_status_reg;
        uint64_t hypervisor_vendor_id;
} __attribute__((packed));

#define ACPI_FADT_REVISION      6
#define ACPI_FADT_MINOR_VERSION 0
#define ACPI_FADT_PWR_BUTTON    (1u << 4) /* no fixed-feature power button */
#define ACPI_FADT_SLP_BUTTON    (1u << 5) /* no fixed-feature sleep button */
#define ACPI_FADT_RESET_REG_SUP (1u << 10)
#define ACPI_FADT_HW_REDUCED    (1u << 20)
/* IAPC_BOOT_ARCH: no LEGACY_DEVICES, no 8042, so Linux probes neither. */
#define ACPI_IAPC_VGA_NOT_PRESENT      (1u << 2)
#define ACPI_IAPC_MSI_NOT_SUPPORTED    (1u << 3)
#define ACPI_IAPC_CMOS_RTC_NOT_PRESENT (1u << 5)

struct acpi_madt {
        struct acpi_header hdr;
        uint32_t lapic_address;
        uint32_t flags; /* bit 0 PCAT_COMPAT: 0, no 8259 pair */
} __attribute__((packed));

#define ACPI_MADT_REVISION 4

struct acpi_madt_lapic {
        uint8_t type; /* 0 */
        uint8_t length;
        uint8_t processor_uid;
        uint8_t apic_id;
        uint32_t flags; /* bit 0 enabled */
} __attribute__((packed));

/* Processor local x2APIC, for an APIC ID above ACPI_MAX_XAPIC_ID. */
struct acpi_madt_x2apic {
        uint8_t type; /* 9 */
        uint8_t length;
        uint16_t reserved;
        uint32_t x2apic_id;
        uint32_t flags; /* bit 0 enabled */
        uint32_t processor_uid;
} __attribute__((packed));

struct acpi_madt_ioapic {
        uint8_t type; /* 1 */
        uint8_t length;
        uint8_t ioapic_id;
        uint8_t reserved;
        uint32_t address;
        uint32_t gsi_base;
} __attribute__((packed));

/*
 * Interrupt source override. With COM1 described, ISA IRQ 4 is overridden to GSI 4, active
 * high, LEVEL-triggered: Keel's UART drives its line as a level (asserted while an interrupt
 * is pending), and a level pin cannot lose an interrupt the way an edge pin does when a new
 * cause arrives while the line is still high.
 */
struct acpi_madt_iso {
        uint8_t type; /* 2 */
        uint8_t length;
        uint8_t bus; /* 0: ISA */
        uint8_t source;
        uint32_t gsi;
        uint16_t flags; /* MPS INTI: polarity bits 1:0, trigger bits 3:2 */
} __attribute__((packed));

#define ACPI_MADT_ISO_ACTIVE_HIGH 0x1
#define ACPI_MADT_ISO_LEVEL       0xc

#define ACPI_MADT_TYPE_LAPIC    0
#define ACPI_MADT_TYPE_IOAPIC   1
#define ACPI_MADT_TYPE_ISO      2 /* interrupt source override */
#define ACPI_MADT_TYPE_X2APIC   9
#define ACPI_MADT_LAPIC_ENABLED 1u

#define ACPI_DSDT_REVISION 2 /* 64-bit AML integers */
#define ACPI_XSDT_REVISION 1

#endif
