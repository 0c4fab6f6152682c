/*
 * Writes the ACPI tables Keel generates for a sample Linux VM (2 vCPUs, two virtio-mmio
 * devices, COM1, window at 0xe0000) as rsdp.dat, xsdt.dat, facp.dat, apic.dat and dsdt.dat
 * into the directory given as argument, for `iasl -d` (check_iasl.py), and the used part of
 * the window as window.bin, so that the checker can follow the pointers between the tables.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keel/errno.h>
#include <vmm/acpi.h>

static uint8_t window[ACPI_WINDOW_SIZE];

static int write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
        char path[4096];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "wb");
        if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
                fprintf(stderr, "acpi_dump: %s: %s\n", path, strerror(errno));
                return -1;
        }
        return 0;
}

static uint32_t table_len(uint32_t off)
{
        uint32_t len;

        memcpy(&len, window + off + 4, 4);
        return len;
}

int main(int argc, char **argv)
{
        static const struct acpi_virtio_mmio virtio[] = {
            {.base = 0xd0000000, .size = 0x1000, .gsi = 5},
            {.base = 0xd0001000, .size = 0x1000, .gsi = 6},
        };
        const struct acpi_config cfg = {
            .num_cpus = 2, .ioapic_id = 2, .virtio = virtio, .num_virtio = 2, .com1 = true};
        struct acpi_tables t;
        int used;

        if (argc != 2) {
                fprintf(stderr, "usage: acpi_dump <output directory>\n");
                return 2;
        }
        used = acpi_build(&cfg, gpa(ACPI_WINDOW_BASE), window, sizeof(window), &t);
        if (used < 0) {
                fprintf(stderr, "acpi_dump: acpi_build: %s\n", keel_strerror(used));
                return 1;
        }
        if (write_file(argv[1], "rsdp.dat", window, sizeof(struct acpi_rsdp)) ||
            write_file(argv[1], "xsdt.dat", window + t.xsdt, table_len(t.xsdt)) ||
            write_file(argv[1], "facp.dat", window + t.fadt, table_len(t.fadt)) ||
            write_file(argv[1], "apic.dat", window + t.madt, table_len(t.madt)) ||
            write_file(argv[1], "dsdt.dat", window + t.dsdt, table_len(t.dsdt)) ||
            write_file(argv[1], "window.bin", window, t.size))
                return 1;
        printf("acpi_dump: %d bytes, RSDP at 0x%llx\n", used, (unsigned long long)gpa_raw(t.rsdp));
        return 0;
}
