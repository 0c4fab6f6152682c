/*
 * Tests for arch/x86_64/linux_boot.c: synthetic bzImages (valid, and every refusal), the
 * placement of kernel, initrd and command line, every boot_params field Keel writes, the e820
 * map; and, if present, the real Debian kernel in /tmp/deb/k/boot (skipped when absent).
 */
#include <dirent.h>

#include <arch/linux_boot.h>
#include <keel/errno.h>
#include <keel/log.h>

#include "log_capture.h"
#include "test.h"

#define KiB    1024ull
#define MiB    (1024ull * 1024)
#define RAM_SZ (32 * MiB)
#define FILL   0xee

#define SETUP_SECTS 3
#define SETUP_BYTES ((SETUP_SECTS + 1) * 512)
#define KBYTES      (64 * KiB + 123) /* protected-mode kernel bytes in the file */
#define IMG_SZ      (SETUP_BYTES + KBYTES)
#define PREF        (16 * MiB)
#define INIT_SIZE   (4 * MiB)
#define ACPI_BASE   0xe0000ull
#define ACPI_SIZE   0x10000ull
#define RSDP        0xe0000ull

#include "guest_ram.h"
static uint8_t img[IMG_SZ];
static uint8_t initrd[3 * MiB];
static struct gmem mem;

static void put(uint8_t *p, unsigned off, unsigned len, uint64_t v)
{
        for (unsigned i = 0; i < len; i++)
                p[off + i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get(const uint8_t *p, uint64_t off, unsigned len)
{
        uint64_t v = 0;

        for (unsigned i = 0; i < len; i++)
                v |= (uint64_t)p[off + i] << (8 * i);
        return v;
}

/* A valid protocol 2.15 bzImage: relocatable, 64-bit, pref_address 16 MiB, init_size 4 MiB. */
static void make_image(void)
{
        memset(img, 0, sizeof(img));
        for (unsigned i = 0; i < 0x1f1; i++)
                img[i] = (uint8_t)(0x5a ^ i); /* boot sector junk: must not be copied */
        img[0x1f1] = SETUP_SECTS;
        put(img, 0x1f2, 2, 1);          /* root_flags */
        put(img, 0x1f4, 4, 0x1234);     /* syssize */
        put(img, 0x1fa, 2, 0xffff);     /* vid_mode */
        put(img, 0x1fc, 2, 0x0801);     /* root_dev */
        put(img, 0x1fe, 2, 0xaa55);     /* boot_flag */
        img[0x200] = 0xeb;              /* jmp short */
        img[0x201] = 0x6a;              /* header ends at 0x26c */
        memcpy(img + 0x202, "HdrS", 4); /* magic */
        put(img, 0x206, 2, 0x020f);     /* version */
        put(img, 0x20e, 2, 0x3c0);      /* kernel_version */
        put(img, 0x211, 1, 0x01);       /* loadflags: LOADED_HIGH */
        put(img, 0x214, 4, 0x100000);   /* code32_start */
        put(img, 0x22c, 4, 0x7fffffff); /* initrd_addr_max */
        put(img, 0x230, 4, 0x200000);   /* kernel_alignment */
        put(img, 0x234, 1, 1);          /* relocatable_kernel */
        put(img, 0x235, 1, 21);         /* min_alignment */
        put(img, 0x236, 2, 0x0003);     /* xloadflags: KERNEL_64 | CAN_BE_LOADED_ABOVE_4G */
        put(img, 0x238, 4, 0x7ff);      /* cmdline_size */
        put(img, 0x248, 4, 0x2cc);      /* payload_offset */
        put(img, 0x24c, 4, 0x1000);     /* payload_length */
        put(img, 0x258, 8, PREF);       /* pref_address */
        put(img, 0x260, 4, INIT_SIZE);  /* init_size */
        put(img, 0x264, 4, 0x190);      /* handover_offset */
        put(img, 0x268, 4, 0x200);      /* kernel_info_offset */
        for (unsigned i = 0x26c; i < SETUP_BYTES; i++)
                img[i] = 0x77; /* setup code after the header: must not be copied */
        for (unsigned i = SETUP_BYTES; i < IMG_SZ; i++)
                img[i] = (uint8_t)(i * 7 + 3);
}

static void setup(void)
{
        gmem_init(&mem);
        ram_fill_map(&mem, 0);
        make_image();
        for (size_t i = 0; i < sizeof(initrd); i++)
                initrd[i] = (uint8_t)(i * 13 + 1);
        capture_start();
}

static struct linux_boot_req req(void)
{
        return (struct linux_boot_req){
            .name = "vmlinuz-test",
            .kernel = img,
            .kernel_size = IMG_SZ,
            .cmdline = "console=ttyS0 root=/dev/vda",
            .rsdp_gpa = RSDP,
            .ram_size = RAM_SZ,
            .acpi_base = gpa(ACPI_BASE),
            .acpi_size = ACPI_SIZE,
        };
}

/* Cheaper check for loops: the zero page, the command line and the kernel's first page. */
static bool boot_areas_untouched(void)
{
        static const uint64_t spots[] = {LINUX_BOOT_PARAMS_GPA, LINUX_CMDLINE_GPA, 0x100000,
                                         0x200000, PREF};

        for (size_t s = 0; s < sizeof(spots) / sizeof(spots[0]); s++)
                for (size_t i = 0; i < 4096; i++)
                        if (ram[spots[s] + i] != FILL)
                                return false;
        return true;
}

static const uint8_t *bp(void)
{
        return ram + LINUX_BOOT_PARAMS_GPA;
}

static void expect_e820(unsigned i, uint64_t addr, uint64_t size, uint32_t type)
{
        unsigned off = BP_E820_TABLE + i * BP_E820_ENTRY_SIZE;

        EXPECT_EQ(get(bp(), off, 8), addr);
        EXPECT_EQ(get(bp(), off + 8, 8), size);
        EXPECT_EQ(get(bp(), off + 16, 4), type);
}

/* ---- the valid image ---- */

TEST(valid_image_placement_and_boot_params)
{
        struct linux_boot_req r;
        struct linux_boot_info info;
        const char *cl = "console=ttyS0 root=/dev/vda";

        setup();
        r = req();
        ASSERT_TRUE(linux_boot_load(&mem, &r, &info) == 0);
        EXPECT_STREQ(logbuf, "");

        /* Info. */
        EXPECT_EQ(gpa_raw(info.kernel_load), PREF);
        EXPECT_EQ(gpa_raw(info.entry64), PREF + 0x200);
        EXPECT_EQ(gpa_raw(info.kernel_end), PREF + INIT_SIZE);
        EXPECT_EQ(gpa_raw(info.boot_params), 0x7000);
        EXPECT_EQ(gpa_raw(info.cmdline), 0x20000);
        EXPECT_EQ(info.cmdline_len, strlen(cl));
        EXPECT_EQ(gpa_raw(info.initrd), 0);
        EXPECT_EQ(info.initrd_size, 0);
        EXPECT_EQ(info.protocol, 0x020f);

        /* Kernel: the bytes after the setup code, exactly at pref_address. */
        EXPECT_EQ(memcmp(ram + PREF, img + SETUP_BYTES, KBYTES), 0);
        EXPECT_EQ(ram[PREF - 1], FILL);
        EXPECT_EQ(ram[PREF + KBYTES], FILL);

        /* Command line, NUL-terminated, nothing after. */
        EXPECT_EQ(memcmp(ram + 0x20000, cl, strlen(cl) + 1), 0);
        EXPECT_EQ(ram[0x20000 + strlen(cl) + 1], FILL);
        EXPECT_EQ(ram[0x20000 - 1], FILL);

        /* Zero page: zero below the header except the fields Keel sets. */
        EXPECT_EQ(ram[0x7000 - 1], FILL);
        EXPECT_EQ(ram[0x8000], FILL);
        for (unsigned i = 0; i < BP_HDR; i++) {
                if (i >= BP_ACPI_RSDP_ADDR && i < BP_ACPI_RSDP_ADDR + 8)
                        continue;
                if (i == BP_E820_ENTRIES)
                        continue;
                if (bp()[i] != 0) {
                        TEST_FAIL_AT(__FILE__, __LINE__, "boot_params[0x%x] = 0x%x", i, bp()[i]);
                        break;
                }
        }
        EXPECT_EQ(get(bp(), BP_ACPI_RSDP_ADDR, 8), RSDP);
        EXPECT_EQ(get(bp(), BP_EXT_RAMDISK_IMAGE, 4), 0);
        EXPECT_EQ(get(bp(), BP_EXT_RAMDISK_SIZE, 4), 0);
        EXPECT_EQ(get(bp(), BP_EXT_CMD_LINE_PTR, 4), 0);
        EXPECT_EQ(bp()[BP_SENTINEL], 0);

        /* The setup header is the image's, except the loader-written fields. */
        for (unsigned i = BP_HDR; i < 0x26c; i++) {
                if (i == BP_TYPE_OF_LOADER || (i >= BP_CMD_LINE_PTR && i < BP_CMD_LINE_PTR + 4))
                        continue;
                if (bp()[i] != img[i]) {
                        TEST_FAIL_AT(__FILE__, __LINE__, "header byte 0x%x: 0x%x != 0x%x", i,
                                     bp()[i], img[i]);
                        break;
                }
        }
        EXPECT_EQ(bp()[BP_TYPE_OF_LOADER], 0xff);
        EXPECT_EQ(bp()[BP_LOADFLAGS], 0x01);
        EXPECT_EQ(get(bp(), BP_CMD_LINE_PTR, 4), 0x20000);
        EXPECT_EQ(get(bp(), BP_RAMDISK_IMAGE, 4), 0);
        EXPECT_EQ(get(bp(), BP_RAMDISK_SIZE, 4), 0);
        EXPECT_EQ(get(bp(), BP_SETUP_DATA, 8), 0);
        EXPECT_EQ(get(bp(), BP_VERSION, 2), 0x020f);
        EXPECT_EQ(get(bp(), BP_INIT_SIZE, 4), INIT_SIZE);
        /* Past the header (setup code in the file) nothing is copied. */
        for (unsigned i = 0x26c; i < BP_E820_TABLE; i++) {
                if (bp()[i] != 0) {
                        TEST_FAIL_AT(__FILE__, __LINE__, "boot_params[0x%x] = 0x%x", i, bp()[i]);
                        break;
                }
        }

        /* e820: low RAM, reserved, ACPI, reserved, high RAM. */
        EXPECT_EQ(bp()[BP_E820_ENTRIES], 5);
        EXPECT_EQ(info.e820_count, 5);
        expect_e820(0, 0, 0x9fc00, E820_RAM);
        expect_e820(1, 0x9fc00, ACPI_BASE - 0x9fc00, E820_RESERVED);
        expect_e820(2, ACPI_BASE, ACPI_SIZE, E820_ACPI);
        expect_e820(3, ACPI_BASE + ACPI_SIZE, 0x100000 - ACPI_BASE - ACPI_SIZE, E820_RESERVED);
        expect_e820(4, 0x100000, RAM_SZ - 0x100000, E820_RAM);
        EXPECT_EQ(info.e820[2].type, E820_ACPI);
        EXPECT_EQ(info.e820[4].size, RAM_SZ - 0x100000);
        for (unsigned i = BP_E820_TABLE + 5 * BP_E820_ENTRY_SIZE; i < BP_SIZE; i++) {
                if (bp()[i] != 0) {
                        TEST_FAIL_AT(__FILE__, __LINE__, "boot_params[0x%x] = 0x%x", i, bp()[i]);
                        break;
                }
        }
        log_set_sink(NULL);
}

TEST(e820_acpi_window_at_edges_and_absent)
{
        struct linux_boot_req r;
        struct linux_boot_info info;

        /* ACPI window ending at 1 MiB: no trailing reserved entry. */
        setup();
        r = req();
        r.acpi_base = gpa(0xf0000);
        r.acpi_size = 0x10000;
        ASSERT_TRUE(linux_boot_load(&mem, &r, &info) == 0);
        EXPECT_EQ(bp()[BP_E820_ENTRIES], 4);
        expect_e820(1, 0x9fc00, 0xf0000 - 0x9fc00, E820_RESERVED);
        expect_e820(2, 0xf0000, 0x10000, E820_ACPI);
        expect_e820(3, 0x100000, RAM_SZ - 0x100000, E820_RAM);

        /* No ACPI: one reserved entry. */
        setup();
        r = req();
        r.acpi_size = 0;
        ASSERT_TRUE(linux_boot_load(&mem, &r, &info) == 0);
        EXPECT_EQ(bp()[BP_E820_ENTRIES], 3);
        expect_e820(0, 0, 0x9fc00, E820_RAM);
        expect_e820(1, 0x9fc00, 0x100000 - 0x9fc00, E820_RESERVED);
        expect_e820(2, 0x100000, RAM_SZ - 0x100000, E820_RAM);
        log_set_sink(NULL);
}

/*
 * RAM above the hole below 4 GiB (x86 VMs larger than 3 GiB, arch/ram_layout.h): the e820
 * map lists it after the low RAM; the kernel and initrd stay low. Not backed, or below the
 * low RAM: refused before anything is written.
 */
TEST(e820_high_ram)
{
        static uint8_t high[64 * KiB] __attribute__((aligned(4096)));
        const uint64_t hb = 4ull << 30;
        struct linux_boot_req r;
        struct linux_boot_info info;

        setup();
        ASSERT_TRUE(gmem_add_region(&mem, gpa(hb), sizeof(high), hpa((uintptr_t)high)) == 0);
        memset(high, FILL, sizeof(high));
        r = req();
        r.high_base = hb;
        r.high_size = sizeof(high);
        r.initrd = initrd;
        r.initrd_size = sizeof(initrd);
        ASSERT_TRUE(linux_boot_load(&mem, &r, &info) == 0);
        EXPECT_EQ(bp()[BP_E820_ENTRIES], 6);
        EXPECT_EQ(info.e820_count, 6);
        expect_e820(4, 0x100000, RAM_SZ - 0x100000, E820_RAM);
        expect_e820(5, hb, sizeof(high), E820_RAM);
        EXPECT_EQ(gpa_raw(info.initrd) + sizeof(initrd) <= RAM_SZ, true);
        for (size_t i = 0; i < sizeof(high); i += 4096)
                EXPECT_EQ(high[i], FILL); /* nothing is loaded there */

        /* high RAM the gmem does not back (one page more), or overlapping the low RAM */
        const uint64_t bad[][2] = {
            {hb, sizeof(high) + 4096}, {hb - 4096, 8192}, {RAM_SZ - 4096, 4096}};
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
                setup();
                ASSERT_TRUE(gmem_add_region(&mem, gpa(hb), sizeof(high), hpa((uintptr_t)high)) ==
                            0);
                r = req();
                r.high_base = bad[k][0];
                r.high_size = bad[k][1];
                EXPECT_EQ(linux_boot_load(&mem, &r, &info), -KEEL_EFAULT);
                EXPECT_CONTAINS(logbuf, "high RAM [0x");
                EXPECT_TRUE(ram_untouched());
        }
        log_set_sink(NULL);
}

TEST(initrd_at_top_of_ram)
{
        struct linux_boot_req r;
        struct linux_boot_info info;
        uint64_t isz = 2 * MiB + 5, at = (RAM_SZ - isz) & ~0xfffull;

        setup();
        r = req();
        r.initrd = initrd;
        r.initrd_size = isz;
        ASSERT_TRUE(linux_boot_load(&mem, &r, &info) == 0);
        EXPECT_EQ(gpa_raw(info.initrd), at);
        EXPECT_EQ(info.initrd_size, isz);
        EXPECT_EQ(at % 4096, 0);
        EXPECT_EQ(memcmp(ram + at, initrd, isz), 0);
        EXPECT_EQ(ram[at - 1], FILL);
        EXPECT_EQ(ram[at + isz], FILL);
        EXPECT_EQ(get(bp(), BP_RAMDISK_IMAGE, 4), at);
        EXPECT_EQ(get(bp(), BP_RAMDISK_SIZE, 4), isz);
        EXPECT_EQ(get(bp(), BP_EXT_RAMDISK_IMAGE, 4), 0);
        EXPECT_EQ(get(bp(), BP_EXT_RAMDISK_SIZE, 4), 0);
        log_set_sink(NULL);
}

TEST(initrd_below_initrd_addr_max)
{
        struct linux_boot_req r;
        struct linux_boot_info info;
        uint64_t max = 24 * MiB + 0x1234; /* last byte the initrd may occupy */
        uint64_t isz = 1 * MiB;

        /* Without XLF_CAN_BE_LOADED_ABOVE_4G, initrd_addr_max bounds the initrd. */
        setup();
        put(img, 0x236, 2, 0x0001);
        put(img, 0x22c, 4, max);
        r = req();
        r.initrd = initrd;
        r.initrd_size = isz;
        ASSERT_TRUE(linux_boot_load(&mem, &r, &info) == 0);
        /* top = align_down(max + 1, 4 KiB) = 24 MiB + 0x1000 */
        EXPECT_EQ(gpa_raw(info.initrd), 23 * MiB + 0x1000);
        EXPECT_TRUE(gpa_raw(info.initrd) + isz - 1 <= max);
        EXPECT_EQ(memcmp(ram + 23 * MiB + 0x1000, initrd, isz), 0);

        /* With it, the initrd may go anywhere in RAM: the top. */
        setup();
        put(img, 0x22c, 4, max);
        r = req();
        r.initrd = initrd;
        r.initrd_size = isz;
        ASSERT_TRUE(linux_boot_load(&mem, &r, &info) == 0);
        EXPECT_EQ(gpa_raw(info.initrd), RAM_SZ - isz);
        log_set_sink(NULL);
}

TEST(protocol_2_12_has_no_rsdp_field)
{
        struct linux_boot_req r;
        struct linux_boot_info info;

        setup();
        put(img, 0x206, 2, 0x020c);
        img[0x201] = 0x66; /* header ends at 0x268 */
        r = req();
        ASSERT_TRUE(linux_boot_load(&mem, &r, &info) == 0);
        EXPECT_EQ(info.protocol, 0x020c);
        EXPECT_EQ(get(bp(), BP_ACPI_RSDP_ADDR, 8), 0);
        /* The copied header stops where the image says it ends. */
        EXPECT_EQ(get(bp(), 0x264, 4), 0x190);
        EXPECT_EQ(get(bp(), 0x268, 4), 0);

        /* 2.14: the field is filled. */
        setup();
        put(img, 0x206, 2, 0x020e);
        r = req();
        ASSERT_TRUE(linux_boot_load(&mem, &r, &info) == 0);
        EXPECT_EQ(get(bp(), BP_ACPI_RSDP_ADDR, 8), RSDP);
        log_set_sink(NULL);
}

TEST(load_address_choice)
{
        struct linux_boot_req r;
        struct linux_boot_info info;

        /* Not relocatable: 1 MiB, whatever pref_address says. */
        setup();
        img[0x234] = 0;
        r = req();
        ASSERT_TRUE(linux_boot_load(&mem, &r, &info) == 0);
        EXPECT_EQ(gpa_raw(info.kernel_load), 0x100000);
        EXPECT_EQ(gpa_raw(info.entry64), 0x100200);
        EXPECT_EQ(memcmp(ram + 0x100000, img + SETUP_BYTES, KBYTES), 0);

        /* Relocatable, pref_address below 1 MiB: 1 MiB aligned up to kernel_alignment. */
        setup();
        put(img, 0x258, 8, 0);
        r = req();
        ASSERT_TRUE(linux_boot_load(&mem, &r, &info) == 0);
        EXPECT_EQ(gpa_raw(info.kernel_load), 0x200000);

        /* Relocatable, unaligned pref_address: aligned up. */
        setup();
        put(img, 0x258, 8, 5 * MiB + 1);
        r = req();
        ASSERT_TRUE(linux_boot_load(&mem, &r, &info) == 0);
        EXPECT_EQ(gpa_raw(info.kernel_load), 6 * MiB);
        EXPECT_EQ(memcmp(ram + 6 * MiB, img + SETUP_BYTES, KBYTES), 0);

        /* init_size smaller than the file's kernel: the kernel's area covers the bytes. */
        setup();
        put(img, 0x260, 4, 0x1000);
        r = req();
        ASSERT_TRUE(linux_boot_load(&mem, &r, &info) == 0);
        EXPECT_EQ(gpa_raw(info.kernel_end), PREF + ((KBYTES + 4095) & ~4095ull));
        log_set_sink(NULL);
}

TEST(setup_sects_zero_means_four)
{
        static uint8_t big[5 * 512 + 4096];
        struct linux_boot_req r;
        struct linux_boot_info info;

        setup();
        memset(big, 0, sizeof(big));
        memcpy(big, img, 0x26c);
        big[0x1f1] = 0;
        for (unsigned i = 5 * 512; i < sizeof(big); i++)
                big[i] = (uint8_t)(i ^ 0x3c);
        r = req();
        r.kernel = big;
        r.kernel_size = sizeof(big);
        ASSERT_TRUE(linux_boot_load(&mem, &r, &info) == 0);
        EXPECT_EQ(memcmp(ram + PREF, big + 5 * 512, 4096), 0);
        EXPECT_EQ(ram[PREF + 4096], FILL);
        log_set_sink(NULL);
}

TEST(command_line_limits)
{
        char line[40];
        struct linux_boot_req r;
        struct linux_boot_info info;

        /* Exactly cmdline_size bytes is fine. */
        setup();
        put(img, 0x238, 4, 16);
        memset(line, 'a', 16);
        line[16] = '\0';
        r = req();
        r.cmdline = line;
        ASSERT_TRUE(linux_boot_load(&mem, &r, &info) == 0);
        EXPECT_EQ(info.cmdline_len, 16);
        EXPECT_EQ(memcmp(ram + 0x20000, line, 17), 0);

        /* One more is refused, and nothing is written. */
        setup();
        put(img, 0x238, 4, 16);
        memset(line, 'a', 17);
        line[17] = '\0';
        r = req();
        r.cmdline = line;
        EXPECT_EQ(linux_boot_load(&mem, &r, &info), -KEEL_E2BIG);
        EXPECT_CONTAINS(logbuf, "vmlinuz-test: the command line is 17 bytes, the kernel accepts "
                                "at most 16");
        EXPECT_TRUE(ram_untouched());

        /* NULL command line: empty. */
        setup();
        r = req();
        r.cmdline = NULL;
        ASSERT_TRUE(linux_boot_load(&mem, &r, &info) == 0);
        EXPECT_EQ(info.cmdline_len, 0);
        EXPECT_EQ(ram[0x20000], 0);
        EXPECT_EQ(ram[0x20001], FILL);
        log_set_sink(NULL);
}

TEST(ram_in_two_regions)
{
        static uint8_t hi[RAM_SZ - 17 * MiB] __attribute__((aligned(4096)));
        struct linux_boot_req r;
        struct linux_boot_info info;
        uint64_t split = PREF + 0x8000; /* inside the kernel */

        setup();
        memset(hi, FILL, sizeof(hi));
        gmem_init(&mem);
        ASSERT_TRUE(gmem_add_region(&mem, gpa(0), split, hpa((uintptr_t)ram)) == 0);
        ASSERT_TRUE(gmem_add_region(&mem, gpa(split), sizeof(hi), hpa((uintptr_t)hi)) == 0);
        r = req();
        r.ram_size = split + sizeof(hi);
        ASSERT_TRUE(linux_boot_load(&mem, &r, &info) == 0);
        EXPECT_EQ(memcmp(ram + PREF, img + SETUP_BYTES, 0x8000), 0);
        EXPECT_EQ(memcmp(hi, img + SETUP_BYTES + 0x8000, KBYTES - 0x8000), 0);

        /* A hole in the middle: refused before writing. */
        setup();
        memset(hi, FILL, sizeof(hi));
        gmem_init(&mem);
        ASSERT_TRUE(gmem_add_region(&mem, gpa(0), split, hpa((uintptr_t)ram)) == 0);
        ASSERT_TRUE(
            gmem_add_region(&mem, gpa(split + 4096), sizeof(hi) - 4096, hpa((uintptr_t)hi)) == 0);
        r = req();
        r.ram_size = split + sizeof(hi);
        EXPECT_EQ(linux_boot_load(&mem, &r, &info), -KEEL_EFAULT);
        EXPECT_CONTAINS(logbuf, "is not all backed");
        EXPECT_TRUE(ram_untouched());
        log_set_sink(NULL);
}

/* ---- refusals ---- */

/* Loads the current img (size n) and expects `err`, a message and untouched RAM. */
static void expect_refused(size_t n, int err, const char *msg, const char *file, int line)
{
        struct linux_boot_req r = req();
        struct linux_boot_info info;
        int rc;

        r.kernel_size = n;
        loglen = 0;
        logbuf[0] = '\0';
        rc = linux_boot_load(&mem, &r, &info);
        if (rc != err)
                TEST_FAIL_AT(file, line, "rc %d, expected %d (log: %s)", rc, err, logbuf);
        if (!strstr(logbuf, msg))
                TEST_FAIL_AT(file, line, "log \"%s\" lacks \"%s\"", logbuf, msg);
        if (!strstr(logbuf, "vmlinuz-test"))
                TEST_FAIL_AT(file, line, "log \"%s\" does not name the file", logbuf);
        if (!ram_untouched())
                TEST_FAIL_AT(file, line, "guest RAM was written");
}
#define REFUSED(n, err, msg) expect_refused((n), (err), (msg), __FILE__, __LINE__)

TEST(refuse_not_bzimage)
{
        setup();
        REFUSED(0, -KEEL_ENOEXEC, "not a bzImage (0 bytes, too short for a setup header)");
        REFUSED(0x205, -KEEL_ENOEXEC, "too short for a setup header");
        img[0x203] = 'x';
        REFUSED(IMG_SZ, -KEEL_ENOEXEC, "not a bzImage (no HdrS magic)");
        make_image();
        put(img, 0x1fe, 2, 0x55aa);
        REFUSED(IMG_SZ, -KEEL_ENOEXEC, "not a bzImage (boot flag 0x55aa, expected 0xaa55)");
        make_image();
        img[0x211] = 0;
        REFUSED(IMG_SZ, -KEEL_ENOTSUP, "lack LOADED_HIGH");
        log_set_sink(NULL);
}

TEST(refuse_old_protocol)
{
        setup();
        put(img, 0x206, 2, 0x020a);
        REFUSED(IMG_SZ, -KEEL_ENOTSUP, "boot protocol 2.10 is too old (Keel needs 2.12+)");
        put(img, 0x206, 2, 0x020b);
        REFUSED(IMG_SZ, -KEEL_ENOTSUP, "boot protocol 2.11 is too old");
        put(img, 0x206, 2, 0x0100);
        REFUSED(IMG_SZ, -KEEL_ENOTSUP, "boot protocol 1.00 is too old");
        log_set_sink(NULL);
}

TEST(refuse_no_64bit_entry)
{
        setup();
        put(img, 0x236, 2, 0x0002);
        REFUSED(IMG_SZ, -KEEL_ENOTSUP,
                "no 64-bit entry point (xloadflags 0x0002 lack XLF_KERNEL_64)");
        log_set_sink(NULL);
}

TEST(refuse_bad_alignment)
{
        setup();
        put(img, 0x230, 4, 0x300000);
        REFUSED(IMG_SZ, -KEEL_ENOTSUP, "kernel_alignment 0x300000 is not a power of two");
        put(img, 0x230, 4, 0);
        REFUSED(IMG_SZ, -KEEL_ENOTSUP, "kernel_alignment 0x0 is not a power of two");
        /* Irrelevant when the kernel is not relocatable. */
        img[0x234] = 0;
        {
                struct linux_boot_req r = req();
                struct linux_boot_info info;

                EXPECT_EQ(linux_boot_load(&mem, &r, &info), 0);
        }
        log_set_sink(NULL);
}

TEST(refuse_too_big_for_ram)
{
        setup();
        put(img, 0x260, 4, 20 * MiB);
        REFUSED(IMG_SZ, -KEEL_E2BIG,
                "vmlinuz-test: needs 36 MiB (loaded at 16 MiB + init_size 20 MiB) but the VM "
                "has 32 MiB");
        /* Exactly fitting is fine. */
        put(img, 0x260, 4, 16 * MiB);
        {
                struct linux_boot_req r = req();
                struct linux_boot_info info;

                EXPECT_EQ(linux_boot_load(&mem, &r, &info), 0);
                EXPECT_EQ(gpa_raw(info.kernel_end), RAM_SZ);
        }
        /* pref_address past RAM, and a huge one that would overflow. */
        setup();
        put(img, 0x258, 8, 64 * MiB);
        REFUSED(IMG_SZ, -KEEL_E2BIG, "but the VM has 32 MiB");
        put(img, 0x258, 8, ~0ull - 4096);
        REFUSED(IMG_SZ, -KEEL_E2BIG, "pref_address 0xffffffffffffefff is out of range");
        log_set_sink(NULL);
}

TEST(refuse_truncated_everywhere)
{
        /* Every length short of setup code + 1 kernel byte is refused without writing. */
        setup();
        for (size_t n = 0; n <= SETUP_BYTES; n++) {
                struct linux_boot_req r = req();
                struct linux_boot_info info;
                int rc;

                r.kernel_size = n;
                rc = linux_boot_load(&mem, &r, &info);
                if (rc != -KEEL_ENOEXEC) {
                        TEST_FAIL_AT(__FILE__, __LINE__, "size %zu: rc %d", n, rc);
                        break;
                }
                if (!boot_areas_untouched()) {
                        TEST_FAIL_AT(__FILE__, __LINE__, "size %zu: RAM written", n);
                        break;
                }
        }
        EXPECT_TRUE(ram_untouched());
        /* Specific messages: inside the header fields, and past the header. */
        REFUSED(0x207, -KEEL_ENOEXEC, "field at 0x206 is past the end of the file (519 bytes)");
        REFUSED(0x262, -KEEL_ENOEXEC, "field at 0x260 is past the end of the file");
        REFUSED(0x26b, -KEEL_ENOEXEC, "setup header (to 0x26c) is past the end of the file");
        REFUSED(SETUP_BYTES, -KEEL_ENOEXEC,
                "setup_sects 3: the setup code (2048 bytes) leaves "
                "no kernel in the file (2048 bytes)");
        /* One kernel byte is loadable. */
        {
                struct linux_boot_req r = req();
                struct linux_boot_info info;

                r.kernel_size = SETUP_BYTES + 1;
                EXPECT_EQ(linux_boot_load(&mem, &r, &info), 0);
                EXPECT_EQ(ram[PREF], img[SETUP_BYTES]);
                EXPECT_EQ(ram[PREF + 1], FILL);
        }
        log_set_sink(NULL);
}

TEST(refuse_short_header_and_huge_setup)
{
        setup();
        img[0x201] = 0x10; /* header would end at 0x212: before init_size */
        REFUSED(IMG_SZ, -KEEL_ENOEXEC, "setup header ends at 0x212, before init_size");
        make_image();
        img[0x1f1] = 0xff; /* 128 KiB of setup code in a 66 KiB file */
        REFUSED(IMG_SZ, -KEEL_ENOEXEC, "setup_sects 255: the setup code (131072 bytes)");
        make_image();
        /* A header claiming to run past boot_params' header area is clamped, not trusted. */
        img[0x201] = 0xff;
        {
                struct linux_boot_req r = req();
                struct linux_boot_info info;

                memset(img + 0x26c, 0x99, SETUP_BYTES - 0x26c);
                EXPECT_EQ(linux_boot_load(&mem, &r, &info), 0);
                EXPECT_EQ(bp()[BP_HDR_MAX_END - 1], 0x99);
                EXPECT_EQ(bp()[BP_HDR_MAX_END], 0);
                EXPECT_EQ(bp()[BP_E820_ENTRIES], 5);
                EXPECT_EQ(get(bp(), BP_E820_TABLE, 8), 0);
                EXPECT_EQ(get(bp(), BP_E820_TABLE + 8, 8), 0x9fc00);
                EXPECT_EQ(get(bp(), BP_SETUP_DATA, 8), 0); /* 0x99... in the file */
        }
        log_set_sink(NULL);
}

TEST(refuse_initrd_that_does_not_fit)
{
        struct linux_boot_req r;
        struct linux_boot_info info;

        /* Kernel area ends at 20 MiB; RAM 32 MiB: 12 MiB for the initrd. 3 MiB fits, but not
         * below an initrd_addr_max of 22 MiB. */
        setup();
        put(img, 0x236, 2, 0x0001);
        put(img, 0x22c, 4, 22 * MiB - 1);
        r = req();
        r.initrd = initrd;
        r.initrd_size = 3 * MiB;
        r.initrd_name = "initrd.img-test";
        EXPECT_EQ(linux_boot_load(&mem, &r, &info), -KEEL_E2BIG);
        EXPECT_CONTAINS(logbuf, "vmlinuz-test: initrd.img-test (3 MiB) does not fit between the "
                                "end of kernel vmlinuz-test (20 MiB) and the initrd limit 22 MiB");
        EXPECT_TRUE(ram_untouched());

        /* 2 MiB fits exactly: [20 MiB, 22 MiB). */
        r.initrd_size = 2 * MiB;
        EXPECT_EQ(linux_boot_load(&mem, &r, &info), 0);
        EXPECT_EQ(gpa_raw(info.initrd), 20 * MiB);

        /* Larger than all the RAM above the kernel. */
        setup();
        r = req();
        r.initrd = initrd;
        r.initrd_size = 13 * MiB; /* only the first 3 MiB are read if it were copied */
        EXPECT_EQ(linux_boot_load(&mem, &r, &info), -KEEL_E2BIG);
        EXPECT_CONTAINS(logbuf, "initrd (13 MiB) does not fit");
        EXPECT_TRUE(ram_untouched());

        /* initrd_addr_max below the kernel. */
        setup();
        put(img, 0x236, 2, 0x0001);
        put(img, 0x22c, 4, 8 * MiB);
        r = req();
        r.initrd = initrd;
        r.initrd_size = 4096;
        EXPECT_EQ(linux_boot_load(&mem, &r, &info), -KEEL_E2BIG);
        EXPECT_TRUE(ram_untouched());
        log_set_sink(NULL);
}

TEST(refuse_bad_request)
{
        struct linux_boot_req r;
        struct linux_boot_info info;

        setup();
        r = req();
        r.ram_size = 1 * MiB;
        EXPECT_EQ(linux_boot_load(&mem, &r, &info), -KEEL_EINVAL);
        EXPECT_CONTAINS(logbuf, "at least 2 MiB");
        r = req();
        r.acpi_base = gpa(0x90000);
        EXPECT_EQ(linux_boot_load(&mem, &r, &info), -KEEL_EINVAL);
        EXPECT_CONTAINS(logbuf, "ACPI window [0x90000, +0x10000) is outside [0x9fc00, 0x100000)");
        r = req();
        r.acpi_base = gpa(0xf8000);
        EXPECT_EQ(linux_boot_load(&mem, &r, &info), -KEEL_EINVAL);
        r = req();
        r.acpi_base = gpa(~0ull - 10);
        EXPECT_EQ(linux_boot_load(&mem, &r, &info), -KEEL_EINVAL);
        r = req();
        r.ram_size = 2 * RAM_SZ; /* more than the gmem backs */
        EXPECT_EQ(linux_boot_load(&mem, &r, &info), -KEEL_EFAULT);
        r = req();
        r.initrd_size = 10; /* size without data */
        EXPECT_EQ(linux_boot_load(&mem, &r, &info), -KEEL_EINVAL);
        EXPECT_TRUE(ram_untouched());
        log_set_sink(NULL);
}

/* ---- the real Debian kernel, if unpacked in /tmp/deb/k/boot ---- */

static bool read_file(const char *path, uint8_t **data, size_t *size)
{
        FILE *f = fopen(path, "rb");
        long n;

        if (!f)
                return false;
        if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) != 0) {
                fclose(f);
                return false;
        }
        *data = malloc((size_t)n);
        if (!*data || fread(*data, 1, (size_t)n, f) != (size_t)n) {
                free(*data);
                fclose(f);
                return false;
        }
        *size = (size_t)n;
        fclose(f);
        return true;
}

TEST(debian_bzimage_if_present)
{
        const char *dir = "/tmp/deb/k/boot";
        char path[512] = "";
        DIR *d = opendir(dir);
        struct dirent *e;
        uint8_t *k = NULL, *vram;
        size_t ksz = 0;
        uint64_t vram_sz = 256 * MiB;
        struct gmem vm;
        struct linux_boot_req r;
        struct linux_boot_info info;

        if (d) {
                while ((e = readdir(d)) != NULL)
                        if (strncmp(e->d_name, "vmlinuz-", 8) == 0) {
                                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                                break;
                        }
                closedir(d);
        }
        if (!path[0] || !read_file(path, &k, &ksz)) {
                printf("debian_bzimage_if_present: no %s/vmlinuz-*, skipped\n", dir);
                return;
        }
        vram = aligned_alloc(4096, vram_sz);
        ASSERT_TRUE(vram != NULL);
        memset(vram, FILL, vram_sz);
        gmem_init(&vm);
        ASSERT_TRUE(gmem_add_region(&vm, gpa(0), vram_sz, hpa((uintptr_t)vram)) == 0);
        capture_start();
        r = (struct linux_boot_req){.name = path,
                                    .kernel = k,
                                    .kernel_size = ksz,
                                    .cmdline = "console=ttyS0",
                                    .rsdp_gpa = RSDP,
                                    .ram_size = vram_sz,
                                    .acpi_base = gpa(ACPI_BASE),
                                    .acpi_size = ACPI_SIZE};
        EXPECT_EQ(linux_boot_load(&vm, &r, &info), 0);
        EXPECT_STREQ(logbuf, "");
        printf("%s: protocol %u.%02u, loaded at 0x%llx, entry64 0x%llx, area ends 0x%llx\n", path,
               info.protocol >> 8, info.protocol & 0xff,
               (unsigned long long)gpa_raw(info.kernel_load),
               (unsigned long long)gpa_raw(info.entry64),
               (unsigned long long)gpa_raw(info.kernel_end));
        EXPECT_TRUE(info.protocol >= 0x020c && info.protocol < 0x0300);
        EXPECT_EQ(gpa_raw(info.entry64), gpa_raw(info.kernel_load) + 0x200);
        EXPECT_TRUE(gpa_raw(info.kernel_load) >= 0x100000);
        EXPECT_EQ(gpa_raw(info.kernel_load) % get(k, 0x230, 4), 0);
        EXPECT_TRUE(gpa_raw(info.kernel_end) <= vram_sz);
        EXPECT_EQ(get(vram + 0x7000, BP_ACPI_RSDP_ADDR, 8), RSDP);
        EXPECT_EQ(vram[0x7000 + BP_TYPE_OF_LOADER], 0xff);
        {
                uint64_t ss = k[0x1f1] ? k[0x1f1] : 4;

                ss = (ss + 1) * 512;
                EXPECT_EQ(memcmp(vram + gpa_raw(info.kernel_load), k + ss, ksz - ss), 0);
        }

        /* The same kernel in too little RAM: refused with the sizes. */
        r.ram_size = 64 * MiB;
        EXPECT_EQ(linux_boot_load(&vm, &r, &info), -KEEL_E2BIG);
        EXPECT_CONTAINS(logbuf, "but the VM has 64 MiB");
        printf("%s", logbuf);
        log_set_sink(NULL);
        free(vram);
        free(k);
}

TEST_MAIN()
