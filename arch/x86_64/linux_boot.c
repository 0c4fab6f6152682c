/*
 * Linux x86 boot protocol loader (contract in arch/linux_boot.h, layout in
 * docs/linux-boot.md). The bzImage is untrusted input: every field is read through a
 * bounds-checked accessor, every sum is checked for overflow, and the whole request is
 * validated before the first byte of guest RAM is written.
 */
#include <stdio.h>
#include <string.h>

#include <arch/linux_boot.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <keel/le.h>

#define KiB 1024ull
#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)

/* ---- bounds-checked little-endian reads from the image ---- */

struct image {
        const uint8_t *p;
        uint64_t size;
};

static bool img_has(const struct image *im, uint64_t off, uint64_t len)
{
        return off <= im->size && len <= im->size - off;
}

/* Reads `len` (1..8) bytes at `off`; false if they are not all inside the file. */
static bool img_get(const struct image *im, uint64_t off, unsigned len, uint64_t *v)
{
        uint64_t x = 0;

        if (!img_has(im, off, len))
                return false;
        for (unsigned i = 0; i < len; i++)
                x |= (uint64_t)im->p[off + i] << (8 * i);
        *v = x;
        return true;
}

/* Human-readable size: "128 MiB", "79.6 MiB" (tenths rounded up), "1500 KiB", "12 bytes". */
static const char *fmt_size(char *buf, size_t n, uint64_t v)
{
        if (v != 0 && v % MiB == 0) {
                snprintf(buf, n, "%llu MiB", (unsigned long long)(v / MiB));
        } else if (v >= MiB) {
                uint64_t tenths = v / (MiB / 10) + (v % (MiB / 10) != 0);

                snprintf(buf, n, "%llu.%llu MiB", (unsigned long long)(tenths / 10),
                         (unsigned long long)(tenths % 10));
        } else if (v != 0 && v % KiB == 0)
                snprintf(buf, n, "%llu KiB", (unsigned long long)(v / KiB));
        else
                snprintf(buf, n, "%llu bytes", (unsigned long long)v);
        return buf;
}

/* ---- the setup header ---- */

struct setup_hdr {
        uint16_t version;
        uint64_t hdr_end; /* first byte after the header (0x202 + byte at 0x201) */
        uint64_t setup_size;
        uint8_t loadflags;
        uint16_t xloadflags;
        uint32_t initrd_addr_max;
        uint32_t kernel_alignment;
        uint8_t relocatable;
        uint32_t cmdline_size;
        uint64_t pref_address;
        uint32_t init_size;
};

#define FIELD(off, len, dst)                                                                    \
        do {                                                                                    \
                uint64_t _v;                                                                    \
                if (!img_get(im, (off), (len), &_v)) {                                          \
                        LOG_ERR("%s: setup header truncated: field at 0x%x is past the end of " \
                                "the file (%llu bytes)",                                        \
                                name, (unsigned)(off), (unsigned long long)im->size);           \
                        return -KEEL_ENOEXEC;                                                   \
                }                                                                               \
                (dst) = (__typeof__(dst))_v;                                                    \
        } while (0)

static int parse_header(const char *name, const struct image *im, struct setup_hdr *h)
{
        uint64_t boot_flag, magic, jump_hi, setup_sects;

        memset(h, 0, sizeof(*h));
        if (!img_has(im, 0, BP_HEADER_MAGIC + 4)) {
                LOG_ERR("%s: not a bzImage (%llu bytes, too short for a setup header)", name,
                        (unsigned long long)im->size);
                return -KEEL_ENOEXEC;
        }
        img_get(im, BP_BOOT_FLAG, 2, &boot_flag);
        img_get(im, BP_HEADER_MAGIC, 4, &magic);
        if (magic != 0x53726448) { /* "HdrS" */
                LOG_ERR("%s: not a bzImage (no HdrS magic)", name);
                return -KEEL_ENOEXEC;
        }
        if (boot_flag != 0xaa55) {
                LOG_ERR("%s: not a bzImage (boot flag 0x%04llx, expected 0xaa55)", name,
                        (unsigned long long)boot_flag);
                return -KEEL_ENOEXEC;
        }
        FIELD(BP_VERSION, 2, h->version);
        if (h->version < LINUX_BOOT_MIN_VERSION) {
                LOG_ERR("%s: boot protocol %u.%02u is too old (Keel needs 2.12+)", name,
                        h->version >> 8, h->version & 0xff);
                return -KEEL_ENOTSUP;
        }
        img_get(im, BP_JUMP + 1, 1, &jump_hi);
        h->hdr_end = BP_HEADER_MAGIC + jump_hi;
        if (h->hdr_end < BP_HDR_MIN_END) {
                LOG_ERR("%s: setup header ends at 0x%llx, before init_size (protocol %u.%02u "
                        "needs at least 0x%x)",
                        name, (unsigned long long)h->hdr_end, h->version >> 8, h->version & 0xff,
                        BP_HDR_MIN_END);
                return -KEEL_ENOEXEC;
        }
        if (h->hdr_end > BP_HDR_MAX_END)
                h->hdr_end = BP_HDR_MAX_END;

        FIELD(BP_SETUP_SECTS, 1, setup_sects);
        FIELD(BP_LOADFLAGS, 1, h->loadflags);
        FIELD(BP_INITRD_ADDR_MAX, 4, h->initrd_addr_max);
        FIELD(BP_KERNEL_ALIGNMENT, 4, h->kernel_alignment);
        FIELD(BP_RELOCATABLE_KERNEL, 1, h->relocatable);
        FIELD(BP_XLOADFLAGS, 2, h->xloadflags);
        FIELD(BP_CMDLINE_SIZE, 4, h->cmdline_size);
        FIELD(BP_PREF_ADDRESS, 8, h->pref_address);
        FIELD(BP_INIT_SIZE, 4, h->init_size);
        if (!img_has(im, 0, h->hdr_end)) {
                LOG_ERR("%s: setup header (to 0x%llx) is past the end of the file (%llu bytes)",
                        name, (unsigned long long)h->hdr_end, (unsigned long long)im->size);
                return -KEEL_ENOEXEC;
        }

        if (setup_sects == 0)
                setup_sects = 4;
        h->setup_size = (setup_sects + 1) * 512;
        if (h->setup_size >= im->size) {
                LOG_ERR("%s: setup_sects %llu: the setup code (%llu bytes) leaves no kernel in "
                        "the file (%llu bytes)",
                        name, (unsigned long long)setup_sects, (unsigned long long)h->setup_size,
                        (unsigned long long)im->size);
                return -KEEL_ENOEXEC;
        }
        if (!(h->loadflags & LINUX_LOADFLAG_LOADED_HIGH)) {
                LOG_ERR("%s: not a bzImage (loadflags 0x%02x lack LOADED_HIGH: a zImage)", name,
                        h->loadflags);
                return -KEEL_ENOTSUP;
        }
        if (!(h->xloadflags & LINUX_XLF_KERNEL_64)) {
                LOG_ERR("%s: no 64-bit entry point (xloadflags 0x%04x lack XLF_KERNEL_64)", name,
                        h->xloadflags);
                return -KEEL_ENOTSUP;
        }
        if (h->relocatable &&
            (h->kernel_alignment == 0 || (h->kernel_alignment & (h->kernel_alignment - 1)) ||
             h->kernel_alignment > GiB)) {
                LOG_ERR("%s: kernel_alignment 0x%x is not a power of two up to 1 GiB", name,
                        h->kernel_alignment);
                return -KEEL_ENOTSUP;
        }
        return 0;
}

/* ---- placement ---- */

struct layout {
        uint64_t load, need, kernel_end;
        uint64_t cmdline_len;
        uint64_t initrd;
        unsigned e820_count;
        struct e820_entry e820[8];
};

/*
 * Where the protected-mode kernel goes. A relocatable kernel is loaded at pref_address
 * (aligned up to kernel_alignment, at least 1 MiB): Linux's decompressor never runs below
 * that address (LOAD_PHYSICAL_ADDR, which pref_address advertises), so a lower load address
 * would not save memory. A non-relocatable kernel must be at 1 MiB.
 */
static int place_kernel(const char *name, const struct setup_hdr *h, uint64_t kbytes, uint64_t ram,
                        struct layout *l)
{
        char a[32], b[32], c[32], d[32];
        uint64_t load = LINUX_DEFAULT_LOAD_GPA;

        if (h->relocatable) {
                uint64_t al = h->kernel_alignment;

                if (h->pref_address > load)
                        load = h->pref_address;
                if (load > UINT64_MAX - al) {
                        LOG_ERR("%s: pref_address 0x%llx is out of range", name,
                                (unsigned long long)h->pref_address);
                        return -KEEL_E2BIG;
                }
                load = align_up(load, al);
        }
        l->load = load;
        l->need = h->init_size > kbytes ? h->init_size : kbytes;
        l->need = align_up(l->need, PAGE_SIZE);
        if (load >= ram || l->need > ram - load) {
                LOG_ERR("%s: needs %s (loaded at %s + init_size %s) but the VM has %s", name,
                        fmt_size(a, sizeof(a),
                                 load > UINT64_MAX - l->need ? UINT64_MAX : load + l->need),
                        fmt_size(b, sizeof(b), load), fmt_size(c, sizeof(c), h->init_size),
                        fmt_size(d, sizeof(d), ram));
                return -KEEL_E2BIG;
        }
        l->kernel_end = load + l->need;
        return 0;
}

static int place_initrd(const char *name, const char *iname, const struct setup_hdr *h,
                        uint64_t isize, uint64_t ram, struct layout *l)
{
        char a[32], b[32], c[32], d[32];
        uint64_t top = ram;

        if (!(h->xloadflags & LINUX_XLF_ABOVE_4G)) {
                uint64_t lim = (uint64_t)h->initrd_addr_max + 1; /* last byte + 1 */

                if (top > lim)
                        top = lim;
                if (top > 4 * GiB)
                        top = 4 * GiB;
        }
        top = align_down(top, PAGE_SIZE);
        if (top < l->kernel_end || isize > top - l->kernel_end) {
                LOG_ERR("%s: %s (%s) does not fit between the end of kernel %s (%s) and the "
                        "initrd limit %s (initrd_addr_max 0x%x, RAM %s)",
                        name, iname, fmt_size(a, sizeof(a), isize), name,
                        fmt_size(b, sizeof(b), l->kernel_end), fmt_size(c, sizeof(c), top),
                        h->initrd_addr_max, fmt_size(d, sizeof(d), ram));
                return -KEEL_E2BIG;
        }
        l->initrd = align_down(top - isize, PAGE_SIZE);
        return 0;
}

static void e820_add(struct layout *l, uint64_t addr, uint64_t end, uint32_t type)
{
        if (end <= addr)
                return;
        l->e820[l->e820_count++] = (struct e820_entry){addr, end - addr, type};
}

static void build_e820(const struct linux_boot_req *req, struct layout *l)
{
        uint64_t ab = gpa_raw(req->acpi_base), ae = ab + req->acpi_size;

        l->e820_count = 0;
        e820_add(l, 0, LINUX_LOW_RAM_END, E820_RAM);
        if (req->acpi_size) {
                e820_add(l, LINUX_LOW_RAM_END, ab, E820_RESERVED);
                e820_add(l, ab, ae, E820_ACPI);
                e820_add(l, ae, LINUX_HIGH_RAM_START, E820_RESERVED);
        } else {
                e820_add(l, LINUX_LOW_RAM_END, LINUX_HIGH_RAM_START, E820_RESERVED);
        }
        e820_add(l, LINUX_HIGH_RAM_START, req->ram_size, E820_RAM);
        if (req->high_size)
                e820_add(l, req->high_base, req->high_base + req->high_size, E820_RAM);
}

/* ---- the zero page ---- */

static void build_boot_params(uint8_t *bp, const struct image *im, const struct setup_hdr *h,
                              const struct linux_boot_req *req, const struct layout *l,
                              uint64_t isize)
{
        uint8_t lf;

        memset(bp, 0, BP_SIZE);
        memcpy(bp + BP_HDR, im->p + BP_HDR, h->hdr_end - BP_HDR);

        bp[BP_TYPE_OF_LOADER] = LINUX_TYPE_OF_LOADER;
        lf = bp[BP_LOADFLAGS];
        bp[BP_LOADFLAGS] = lf | LINUX_LOADFLAG_LOADED_HIGH;
        put_le(bp + BP_CMD_LINE_PTR, LINUX_CMDLINE_GPA, 4);
        put_le(bp + BP_EXT_CMD_LINE_PTR, LINUX_CMDLINE_GPA >> 32, 4);
        put_le(bp + BP_RAMDISK_IMAGE, isize ? l->initrd : 0, 4);
        put_le(bp + BP_RAMDISK_SIZE, isize, 4);
        put_le(bp + BP_EXT_RAMDISK_IMAGE, isize ? l->initrd >> 32 : 0, 4);
        put_le(bp + BP_EXT_RAMDISK_SIZE, isize >> 32, 4);
        if (h->hdr_end >= BP_SETUP_DATA + 8)
                put_le(bp + BP_SETUP_DATA, 0, 8); /* no setup_data list */
        if (h->version >= LINUX_BOOT_RSDP_VERSION)
                put_le(bp + BP_ACPI_RSDP_ADDR, req->rsdp_gpa, 8);

        bp[BP_E820_ENTRIES] = (uint8_t)l->e820_count;
        for (unsigned i = 0; i < l->e820_count; i++) {
                unsigned off = BP_E820_TABLE + i * BP_E820_ENTRY_SIZE;

                put_le(bp + off, l->e820[i].addr, 8);
                put_le(bp + off + 8, l->e820[i].size, 8);
                put_le(bp + off + 16, l->e820[i].type, 4);
        }
}

static int check_request(const struct gmem *m, const struct linux_boot_req *req, const char *name)
{
        char a[32];
        uint64_t ab = gpa_raw(req->acpi_base);

        if (!req->kernel && req->kernel_size) {
                LOG_ERR("%s: no kernel data", name);
                return -KEEL_EINVAL;
        }
        if (req->initrd_size && !req->initrd) {
                LOG_ERR("%s: no initrd data", name);
                return -KEEL_EINVAL;
        }
        if (req->ram_size < 2 * MiB || !is_aligned(req->ram_size, PAGE_SIZE)) {
                LOG_ERR("%s: a Linux VM needs a page-aligned RAM size of at least 2 MiB, not %s",
                        name, fmt_size(a, sizeof(a), req->ram_size));
                return -KEEL_EINVAL;
        }
        if (req->acpi_size && (ab < LINUX_LOW_RAM_END || ab > LINUX_HIGH_RAM_START ||
                               req->acpi_size > LINUX_HIGH_RAM_START - ab)) {
                LOG_ERR("%s: ACPI window [0x%llx, +0x%llx) is outside [0x%llx, 0x%llx)", name,
                        (unsigned long long)ab, (unsigned long long)req->acpi_size,
                        LINUX_LOW_RAM_END, LINUX_HIGH_RAM_START);
                return -KEEL_EINVAL;
        }
        if (!gmem_contains(m, gpa(0), req->ram_size)) {
                LOG_ERR("%s: guest RAM [0, %s) is not all backed", name,
                        fmt_size(a, sizeof(a), req->ram_size));
                return -KEEL_EFAULT;
        }
        if (req->high_size && (req->high_base < req->ram_size ||
                               !gmem_contains(m, gpa(req->high_base), req->high_size))) {
                LOG_ERR("%s: high RAM [0x%llx, +%s) is not all backed", name,
                        (unsigned long long)req->high_base, fmt_size(a, sizeof(a), req->high_size));
                return -KEEL_EFAULT;
        }
        return 0;
}

int linux_boot_load(struct gmem *m, const struct linux_boot_req *req, struct linux_boot_info *out)
{
        static const uint8_t nul;
        const char *name = req->name ? req->name : "kernel";
        const char *iname = req->initrd_name ? req->initrd_name : "initrd";
        const char *cmdline = req->cmdline ? req->cmdline : "";
        uint64_t isize = req->initrd ? req->initrd_size : 0;
        struct image im = {req->kernel, req->kernel ? req->kernel_size : 0};
        uint8_t bp[BP_SIZE];
        struct setup_hdr h;
        struct layout l;
        uint64_t kbytes, cmax;
        int rc;

        memset(out, 0, sizeof(*out));
        memset(&l, 0, sizeof(l));
        rc = check_request(m, req, name);
        if (rc)
                return rc;
        rc = parse_header(name, &im, &h);
        if (rc)
                return rc;
        kbytes = im.size - h.setup_size;

        /* Command line: at most cmdline_size bytes, below the reserved area at 0x9fc00. */
        cmax = LINUX_CMDLINE_MAX_GPA - LINUX_CMDLINE_GPA - 1;
        if (h.cmdline_size < cmax)
                cmax = h.cmdline_size;
        l.cmdline_len = strnlen(cmdline, cmax + 1);
        if (l.cmdline_len > cmax) {
                LOG_ERR("%s: the command line is %zu bytes, the kernel accepts at most %llu", name,
                        strlen(cmdline), (unsigned long long)cmax);
                return -KEEL_E2BIG;
        }

        rc = place_kernel(name, &h, kbytes, req->ram_size, &l);
        if (rc)
                return rc;
        if (isize) {
                rc = place_initrd(name, iname, &h, isize, req->ram_size, &l);
                if (rc)
                        return rc;
        }
        build_e820(req, &l);
        build_boot_params(bp, &im, &h, req, &l, isize);

        /* Validated: copy. Every range is inside [0, ram_size), which is backed. */
        rc = gmem_write(m, gpa(l.load), im.p + h.setup_size, kbytes);
        if (!rc && isize)
                rc = gmem_write(m, gpa(l.initrd), req->initrd, isize);
        if (!rc)
                rc = gmem_write(m, gpa(LINUX_CMDLINE_GPA), cmdline, l.cmdline_len);
        if (!rc)
                rc = gmem_write(m, gpa(LINUX_CMDLINE_GPA + l.cmdline_len), &nul, 1);
        if (!rc)
                rc = gmem_write(m, gpa(LINUX_BOOT_PARAMS_GPA), bp, sizeof(bp));
        if (rc) {
                LOG_ERR("%s: copying into guest RAM failed: %s", name, keel_strerror(rc));
                return rc;
        }

        out->entry64 = gpa(l.load + 0x200);
        out->boot_params = gpa(LINUX_BOOT_PARAMS_GPA);
        out->kernel_load = gpa(l.load);
        out->kernel_end = gpa(l.kernel_end);
        out->cmdline = gpa(LINUX_CMDLINE_GPA);
        out->cmdline_len = l.cmdline_len;
        out->initrd = gpa(isize ? l.initrd : 0);
        out->initrd_size = isize;
        out->protocol = h.version;
        out->e820_count = l.e820_count;
        memcpy(out->e820, l.e820, sizeof(l.e820));
        return 0;
}
