/*
 * libFuzzer target for the guest image loaders, whose input is the image file a config names:
 * flat and ELF64 images (vmm/loader.c), the x86 Linux bzImage (arch/x86_64/linux_boot.c) and
 * the arm64 Linux Image header with its memory plan (arch/arm64/linux_boot.c). Guest RAM is a
 * buffer with canary pages on both sides, filled with a pattern before each load.
 *
 * Input: byte 0 selects the loader (% 3: 0 loader_load, 1 linux_boot_load, 2 arm64), bytes
 * 1-7 its parameters (below), the rest is the image.
 *   loader_load: byte 1 % 3 the format (auto, flat, ELF), byte 2 the flat load address in
 *     4 KiB pages, byte 3 bit 0: an entry is given, bytes 4-7 (le32) that entry; RAM is
 *     [0, 2 MiB) with [0x1000, 0x3000) reserved for boot structures.
 *   linux_boot_load: byte 1 the command line (one of a few), bytes 2-3 (le16) the initrd size
 *     in 256-byte units (its bytes come from the image), byte 4 RAM (2 + byte % 3 MiB), byte 5
 *     bit 0 ACPI tables at 0xe0000 with the RSDP passed.
 *   arm64: bytes 1-2 (le16) RAM base in 2 MiB units above 0x40000000 (odd values: not 2 MiB
 *     aligned by 64 KiB), byte 3 RAM size in MiB (+ 1), bytes 4-5 the initrd size in pages,
 *     bytes 6-7 the DTB room in pages (0 too).
 * Invariants (abort on violation; a CHECK failing inside a loader aborts too):
 *   - memory outside guest RAM is never written (canaries), a refused image leaves guest RAM
 *     untouched;
 *   - loader_load: the entry is inside RAM, the reserved range is untouched, a flat image
 *     sits at its load address;
 *   - linux_boot_load: the kernel, the initrd, the command line and boot_params lie inside
 *     RAM and do not overlap; the entry is kernel_load + 0x200; the command line is
 *     NUL-terminated; boot_params' sentinel is 0 and its e820 map is the one reported,
 *     sorted, non-overlapping, with RAM entries inside RAM;
 *   - arm64: image_size >= the file, the page size is 0/4K/16K/64K; a plan keeps the kernel
 *     (2 MiB aligned base + text_offset), the DTB (2 MiB aligned, not straddling a 2 MiB
 *     boundary) and the initrd (page aligned) inside RAM and apart from each other.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arch/arm64_linux.h>
#include <arch/linux_boot.h>
#include <keel/log.h>
#include <vmm/loader.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MiB          (1024ull * 1024)
#define FUZZ_RAM_MAX (4 * MiB)
#define RES_LO       0x1000ull
#define RES_SZ       0x2000ull

#include "fuzz_ram.h"

static bool untouched(uint64_t from, uint64_t len)
{
        return memcmp(ram + from, pattern, len) == 0;
}

static bool apart(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
        return a + alen <= b || b + blen <= a;
}

static void fuzz_loader(const uint8_t *p, const uint8_t *img, size_t n)
{
        static const enum image_format fmt[3] = {IMAGE_AUTO, IMAGE_FLAT, IMAGE_ELF};
        struct gmem m;
        uint32_t e32;
        gpa_t entry = gpa(0);
        struct load_request r = {
            .name = "fz",
            .data = img,
            .size = n,
            .format = fmt[p[1] % 3],
            .elf_machine = 62,
            .load = gpa((uint64_t)p[2] << 12),
            .has_entry = p[3] & 1,
            .reserved_base = gpa(RES_LO),
            .reserved_size = RES_SZ,
        };

        memcpy(&e32, p + 4, 4);
        r.entry = gpa(e32);
        ram_setup(&m, 2 * MiB);
        if (loader_load(&m, &r, &entry) != 0) {
                if (!untouched(0, 2 * MiB))
                        abort();
                return;
        }
        if (gpa_raw(entry) >= 2 * MiB || !untouched(RES_LO, RES_SZ))
                abort();
        if (r.format == IMAGE_FLAT && memcmp(ram + gpa_raw(r.load), img, n) != 0)
                abort();
}

static void check_e820(const struct linux_boot_info *o, uint64_t ram_size)
{
        const uint8_t *bp = ram + LINUX_BOOT_PARAMS_GPA;

        if (bp[BP_SENTINEL] != 0 || bp[BP_E820_ENTRIES] != o->e820_count || o->e820_count > 8)
                abort();
        for (unsigned i = 0; i < o->e820_count; i++) {
                const struct e820_entry *e = &o->e820[i];
                struct e820_entry w;

                memcpy(&w.addr, bp + BP_E820_TABLE + 20 * i, 8);
                memcpy(&w.size, bp + BP_E820_TABLE + 20 * i + 8, 8);
                memcpy(&w.type, bp + BP_E820_TABLE + 20 * i + 16, 4);
                if (w.addr != e->addr || w.size != e->size || w.type != e->type || !e->size)
                        abort();
                if (e->type == E820_RAM && e->addr + e->size > ram_size)
                        abort();
                if (i && o->e820[i - 1].addr + o->e820[i - 1].size > e->addr)
                        abort();
        }
}

static void fuzz_bzimage(const uint8_t *p, const uint8_t *img, size_t n)
{
        static const char *const cmdlines[4] = {NULL, "", "console=ttyS0 root=/dev/vda rw", "x"};
        struct gmem m;
        struct linux_boot_info o;
        uint16_t units;
        uint64_t ram_size = (2 + p[4] % 3) * MiB, isize;
        struct linux_boot_req r = {
            .name = "fz",
            .kernel = img,
            .kernel_size = n,
            .cmdline = cmdlines[p[1] & 3],
            .ram_size = ram_size,
        };

        memcpy(&units, p + 2, 2);
        isize = 256ull * units;
        if (isize > n)
                isize = n;
        r.initrd = isize ? img : NULL;
        r.initrd_size = isize;
        if (p[5] & 1) {
                r.acpi_base = gpa(0xe0000);
                r.acpi_size = 0x1000;
                r.rsdp_gpa = 0xe0000;
        }
        ram_setup(&m, ram_size);
        if (linux_boot_load(&m, &r, &o) != 0) {
                if (!untouched(0, ram_size))
                        abort();
                return;
        }
        uint64_t kl = gpa_raw(o.kernel_load), ke = gpa_raw(o.kernel_end), ini = gpa_raw(o.initrd);
        if (kl >= ke || ke > ram_size || gpa_raw(o.entry64) != kl + 0x200)
                abort();
        if (o.initrd_size != isize || (isize && (ini + isize > ram_size || ini % 4096)))
                abort();
        if (ram[LINUX_CMDLINE_GPA + o.cmdline_len] != 0 ||
            memchr(ram + LINUX_CMDLINE_GPA, 0, o.cmdline_len))
                abort();
        if (!apart(kl, ke - kl, LINUX_BOOT_PARAMS_GPA, BP_SIZE) ||
            !apart(kl, ke - kl, LINUX_CMDLINE_GPA, o.cmdline_len + 1) ||
            (isize && (!apart(ini, isize, kl, ke - kl) ||
                       !apart(ini, isize, LINUX_BOOT_PARAMS_GPA, BP_SIZE) ||
                       !apart(ini, isize, LINUX_CMDLINE_GPA, o.cmdline_len + 1))))
                abort();
        if (isize && memcmp(ram + ini, img, isize) != 0)
                abort();
        check_e820(&o, ram_size);
}

static void fuzz_arm64(const uint8_t *p, const uint8_t *img, size_t n)
{
        struct arm64_image_info info;
        struct arm64_layout_req req;
        struct arm64_layout l;
        const char *why = NULL;
        uint16_t base_units, ipages, dpages;

        if (arm64_image_parse(img, n, &info, &why) != 0) {
                if (!why)
                        abort();
                return;
        }
        if (info.file_size != n || info.image_size < n ||
            (info.page_size != 0 && info.page_size != 4096 && info.page_size != 16384 &&
             info.page_size != 65536))
                abort();
        memcpy(&base_units, p + 1, 2);
        memcpy(&ipages, p + 4, 2);
        memcpy(&dpages, p + 6, 2);
        req = (struct arm64_layout_req){
            .ram_base = 0x40000000ull + (uint64_t)(base_units >> 1) * (2 * MiB) +
                        (base_units & 1) * 0x10000,
            .ram_size = ((uint64_t)p[3] + 1) * MiB,
            .image = &info,
            .initrd_size = 4096ull * ipages,
            .dtb_size = 4096ull * dpages,
        };
        why = NULL;
        if (arm64_linux_plan(&req, &l, &why) != 0) {
                if (!why)
                        abort();
                return;
        }
        uint64_t lo = req.ram_base, hi = req.ram_base + req.ram_size;
        if (l.kernel_base % (2 * MiB) || l.kernel_entry != l.kernel_base + info.text_offset ||
            l.kernel_end != l.kernel_entry + info.image_size || l.kernel_entry < lo ||
            l.kernel_end > hi)
                abort();
        if (l.dtb % (2 * MiB) || l.dtb_end != l.dtb + req.dtb_size || l.dtb < lo ||
            l.dtb_end > hi || (req.dtb_size && (l.dtb_end - 1) / (2 * MiB) != l.dtb / (2 * MiB)) ||
            !apart(l.dtb, req.dtb_size, l.kernel_entry, info.image_size))
                abort();
        if (req.initrd_size) {
                if (l.initrd_start % 4096 || l.initrd_end != l.initrd_start + req.initrd_size ||
                    l.initrd_start < lo || l.initrd_end > hi ||
                    !apart(l.initrd_start, req.initrd_size, l.kernel_entry, info.image_size) ||
                    !apart(l.initrd_start, req.initrd_size, l.dtb, req.dtb_size))
                        abort();
        } else if (l.initrd_start || l.initrd_end) {
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 8)
                return 0;
        log_set_sink(NULL);
        switch (data[0] % 3) {
        case 0:
                fuzz_loader(data, data + 8, size - 8);
                break;
        case 1:
                fuzz_bzimage(data, data + 8, size - 8);
                break;
        default:
                fuzz_arm64(data, data + 8, size - 8);
                break;
        }
        check_canaries();
        return 0;
}
