/* Tests for vmm/loader.c: flat and ELF64 images, every refusal with its code and message. */
#include <keel/errno.h>
#include <keel/log.h>
#include <vmm/loader.h>

#include "log_capture.h"
#include "test.h"

#define MiB     (1024ull * 1024)
#define RAM_SZ  (2 * MiB)
#define RES_LO  0x1000ull /* reserved guest range [0x1000, 0x3000) */
#define RES_SZ  0x2000ull
#define LOAD_AT 0x100000ull
#define FILL    0xee

#include "guest_ram.h"
static uint8_t huge[3 * MiB];
static struct gmem mem;

/* Guest RAM [0, 2 MiB) filled with FILL, log captured. */
static void setup(void)
{
        gmem_init(&mem);
        ram_fill_map(&mem, 0);
        capture_start();
}

static struct load_request req(const char *name, const void *data, uint64_t size,
                               enum image_format f)
{
        return (struct load_request){
            .name = name,
            .data = data,
            .size = size,
            .format = f,
            .elf_machine = 62,
            .load = gpa(LOAD_AT),
            .reserved_base = gpa(RES_LO),
            .reserved_size = RES_SZ,
        };
}

/* ---- flat ---- */

TEST(flat_ok)
{
        uint8_t img[100];
        gpa_t entry = gpa(0);
        struct load_request r;

        setup();
        for (unsigned i = 0; i < sizeof(img); i++)
                img[i] = (uint8_t)(i + 1);
        r = req("guests/ok.bin", img, sizeof(img), IMAGE_FLAT);
        EXPECT_EQ(loader_load(&mem, &r, &entry), 0);
        EXPECT_EQ(gpa_raw(entry), LOAD_AT);
        EXPECT_EQ(memcmp(ram + LOAD_AT, img, sizeof(img)), 0);
        EXPECT_EQ(ram[LOAD_AT - 1], FILL);
        EXPECT_EQ(ram[LOAD_AT + sizeof(img)], FILL);
        EXPECT_STREQ(logbuf, "");

        /* An explicit entry point. */
        r.has_entry = true;
        r.entry = gpa(LOAD_AT + 0x10);
        EXPECT_EQ(loader_load(&mem, &r, &entry), 0);
        EXPECT_EQ(gpa_raw(entry), LOAD_AT + 0x10);
        log_set_sink(NULL);
}

TEST(flat_auto_detected)
{
        uint8_t img[8] = {0x7f, 'E', 'L', 'X', 1, 2, 3, 4}; /* almost ELF magic: flat */
        gpa_t entry = gpa(0);
        struct load_request r;

        setup();
        r = req("guests/auto.bin", img, sizeof(img), IMAGE_AUTO);
        EXPECT_EQ(loader_load(&mem, &r, &entry), 0);
        EXPECT_EQ(memcmp(ram + LOAD_AT, img, sizeof(img)), 0);
        /* Shorter than the magic: flat too. */
        r.size = 3;
        EXPECT_EQ(loader_load(&mem, &r, &entry), 0);
        log_set_sink(NULL);
}

TEST(flat_fills_ram_to_the_end)
{
        gpa_t entry;
        struct load_request r;

        setup();
        r = req("guests/exact.bin", huge, RAM_SZ - LOAD_AT, IMAGE_FLAT);
        EXPECT_EQ(loader_load(&mem, &r, &entry), 0);
        EXPECT_EQ(ram[RAM_SZ - 1], 0);
        log_set_sink(NULL);
}

TEST(flat_empty)
{
        gpa_t entry = gpa(0x77);
        struct load_request r;

        setup();
        r = req("guests/empty.bin", huge, 0, IMAGE_FLAT);
        EXPECT_EQ(loader_load(&mem, &r, &entry), -KEEL_ENOEXEC);
        EXPECT_CONTAINS(logbuf, "image guests/empty.bin: ");
        EXPECT_CONTAINS(logbuf, "empty");
        EXPECT_EQ(gpa_raw(entry), 0x77);
        r.format = IMAGE_ELF;
        EXPECT_EQ(loader_load(&mem, &r, &entry), -KEEL_ENOEXEC);
        log_set_sink(NULL);
}

TEST(flat_too_big)
{
        gpa_t entry;
        struct load_request r;

        setup();
        r = req("guests/big.bin", huge, 3 * MiB, IMAGE_FLAT);
        EXPECT_EQ(loader_load(&mem, &r, &entry), -KEEL_E2BIG);
        EXPECT_CONTAINS(logbuf, "image guests/big.bin: 3 MiB does not fit in the VM's 2 MiB of "
                                "RAM at 0x100000");
        EXPECT_TRUE(strncmp(logbuf, "E ", 2) == 0);
        EXPECT_TRUE(ram_untouched());
        log_set_sink(NULL);
}

TEST(flat_outside_ram)
{
        gpa_t entry;
        struct load_request r;

        setup();
        /* Fits in RAM, but not at the load address. */
        r = req("guests/out.bin", huge, RAM_SZ - LOAD_AT + 1, IMAGE_FLAT);
        EXPECT_EQ(loader_load(&mem, &r, &entry), -KEEL_EFAULT);
        EXPECT_CONTAINS(logbuf, "image guests/out.bin: 0x100000-0x200000 is not inside");
        /* Entirely outside. */
        r = req("guests/out2.bin", huge, 16, IMAGE_FLAT);
        r.load = gpa(0x80000000);
        EXPECT_EQ(loader_load(&mem, &r, &entry), -KEEL_EFAULT);
        EXPECT_CONTAINS(logbuf, "image guests/out2.bin: ");
        /* Wrapping around 2^64. */
        r = req("guests/wrap.bin", huge, 0x2000, IMAGE_FLAT);
        r.load = gpa(0xfffffffffffff000ull);
        EXPECT_EQ(loader_load(&mem, &r, &entry), -KEEL_EFAULT);
        EXPECT_CONTAINS(logbuf, "image guests/wrap.bin: ");
        EXPECT_CONTAINS(logbuf, "wraps");
        EXPECT_TRUE(ram_untouched());
        log_set_sink(NULL);
}

TEST(flat_reserved_overlap)
{
        gpa_t entry;
        struct load_request r;

        setup();
        r = req("guests/res.bin", huge, 0x100, IMAGE_FLAT);
        r.load = gpa(RES_LO + RES_SZ - 0x80); /* tail end of the reserved range */
        EXPECT_EQ(loader_load(&mem, &r, &entry), -KEEL_EFAULT);
        EXPECT_CONTAINS(logbuf, "image guests/res.bin: ");
        EXPECT_CONTAINS(logbuf, "0x1000-0x2fff");
        EXPECT_CONTAINS(logbuf, "reserves");
        /* Ending right where the reserved range starts is fine, as is starting at its end. */
        r.load = gpa(RES_LO - 0x100);
        EXPECT_EQ(loader_load(&mem, &r, &entry), 0);
        r.load = gpa(RES_LO + RES_SZ);
        EXPECT_EQ(loader_load(&mem, &r, &entry), 0);
        /* Without a reserved range the same place is allowed. */
        setup();
        r.load = gpa(RES_LO);
        r.reserved_size = 0;
        EXPECT_EQ(loader_load(&mem, &r, &entry), 0);
        EXPECT_STREQ(logbuf, "");
        log_set_sink(NULL);
}

TEST(flat_entry_outside)
{
        gpa_t entry = gpa(0x77);
        struct load_request r;

        setup();
        r = req("guests/entry.bin", huge, 0x100, IMAGE_FLAT);
        r.has_entry = true;
        r.entry = gpa(RAM_SZ);
        EXPECT_EQ(loader_load(&mem, &r, &entry), -KEEL_EFAULT);
        EXPECT_CONTAINS(logbuf, "image guests/entry.bin: entry point 0x200000");
        EXPECT_EQ(gpa_raw(entry), 0x77);
        EXPECT_TRUE(ram_untouched());
        log_set_sink(NULL);
}

/* ---- ELF ---- */

static uint8_t elf[8192];

static void put16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

#define PH_OFF 64

static void set_phdr(unsigned i, uint32_t type, uint64_t off, uint64_t paddr, uint64_t filesz,
                     uint64_t memsz)
{
        uint8_t *p = elf + PH_OFF + 56 * i;

        put32(p + 0, type);
        put32(p + 4, 5);
        put64(p + 8, off);
        put64(p + 16, paddr + 0xffffffff80000000ull); /* vaddr differs: paddr must be used */
        put64(p + 24, paddr);
        put64(p + 32, filesz);
        put64(p + 40, memsz);
        put64(p + 48, 0x1000);
}

/*
 * A valid x86-64 executable: segment 0 at 0x100000 (0x20 bytes of file, 0x1000 in memory,
 * i.e. a bss tail), segment 1 a note (ignored), segment 2 at 0x180000 (0x10 bytes).
 * Returns the file size.
 */
static uint64_t build_elf(void)
{
        memset(elf, 0, sizeof(elf));
        elf[0] = 0x7f;
        elf[1] = 'E';
        elf[2] = 'L';
        elf[3] = 'F';
        elf[4] = 2; /* ELFCLASS64 */
        elf[5] = 1; /* little endian */
        elf[6] = 1; /* EV_CURRENT */
        put16(elf + 16, 2);
        put16(elf + 18, 62);
        put32(elf + 20, 1);
        put64(elf + 24, 0x100004);
        put64(elf + 32, PH_OFF);
        put16(elf + 52, 64);
        put16(elf + 54, 56);
        put16(elf + 56, 3);
        set_phdr(0, 1, 0x200, 0x100000, 0x20, 0x1000);
        set_phdr(1, 4, 0x300, 0x1f0000000ull, 0x10, 0x10); /* PT_NOTE far outside RAM */
        set_phdr(2, 1, 0x400, 0x180000, 0x10, 0x10);
        for (unsigned i = 0; i < 0x20; i++)
                elf[0x200 + i] = (uint8_t)(0xa0 + i);
        for (unsigned i = 0; i < 0x10; i++)
                elf[0x400 + i] = (uint8_t)(0x50 + i);
        return 0x410;
}

static void expect_elf_refused(const char *name, uint64_t size, int code, const char *msg)
{
        gpa_t entry = gpa(0x77);
        struct load_request r = req(name, elf, size, IMAGE_AUTO);
        char want[128];

        capture_start();
        EXPECT_EQ(loader_load(&mem, &r, &entry), code);
        snprintf(want, sizeof(want), "image %s: ", name);
        EXPECT_CONTAINS(logbuf, want);
        EXPECT_CONTAINS(logbuf, msg);
        EXPECT_TRUE(strncmp(logbuf, "E ", 2) == 0);
        EXPECT_EQ(gpa_raw(entry), 0x77);
        EXPECT_TRUE(ram_untouched());
}

TEST(elf_ok_with_bss)
{
        gpa_t entry = gpa(0);
        uint64_t size;
        struct load_request r;

        setup();
        size = build_elf();
        r = req("guests/ok.elf", elf, size, IMAGE_AUTO);
        EXPECT_EQ(loader_load(&mem, &r, &entry), 0);
        EXPECT_EQ(gpa_raw(entry), 0x100004);
        EXPECT_EQ(memcmp(ram + 0x100000, elf + 0x200, 0x20), 0);
        for (unsigned i = 0x20; i < 0x1000; i++)
                if (ram[0x100000 + i] != 0) {
                        TEST_FAIL_AT(__FILE__, __LINE__, "bss byte 0x%x not zeroed", i);
                        break;
                }
        EXPECT_EQ(ram[0x100000 + 0x1000], FILL);
        EXPECT_EQ(ram[0x100000 - 1], FILL);
        EXPECT_EQ(memcmp(ram + 0x180000, elf + 0x400, 0x10), 0);
        EXPECT_EQ(ram[0x180010], FILL);
        EXPECT_STREQ(logbuf, "");

        /* Forcing IMAGE_ELF gives the same result; forcing flat copies the file as is. */
        r.format = IMAGE_ELF;
        EXPECT_EQ(loader_load(&mem, &r, &entry), 0);
        r.format = IMAGE_FLAT;
        EXPECT_EQ(loader_load(&mem, &r, &entry), 0);
        EXPECT_EQ(gpa_raw(entry), LOAD_AT);
        EXPECT_EQ(memcmp(ram + LOAD_AT, elf, size), 0);
        log_set_sink(NULL);
}

TEST(elf_segment_ending_at_ram_end)
{
        gpa_t entry;
        uint64_t size;
        struct load_request r;

        setup();
        size = build_elf();
        set_phdr(2, 1, 0x400, RAM_SZ - 0x10, 0x10, 0x10);
        r = req("guests/end.elf", elf, size, IMAGE_ELF);
        EXPECT_EQ(loader_load(&mem, &r, &entry), 0);
        EXPECT_EQ(memcmp(ram + RAM_SZ - 0x10, elf + 0x400, 0x10), 0);
        log_set_sink(NULL);
}

TEST(elf_not_elf)
{
        gpa_t entry;
        uint8_t img[64] = {1, 2, 3};
        struct load_request r;

        setup();
        r = req("guests/plain.bin", img, sizeof(img), IMAGE_ELF);
        EXPECT_EQ(loader_load(&mem, &r, &entry), -KEEL_ENOEXEC);
        EXPECT_CONTAINS(logbuf, "image guests/plain.bin: not an ELF file");
        EXPECT_TRUE(ram_untouched());
        log_set_sink(NULL);
}

TEST(elf_truncated_header)
{
        setup();
        build_elf();
        expect_elf_refused("guests/trunc.elf", 40, -KEEL_ENOEXEC, "truncated ELF header");
        expect_elf_refused("guests/trunc2.elf", 63, -KEEL_ENOEXEC, "truncated ELF header");
        log_set_sink(NULL);
}

TEST(elf_bad_ident)
{
        uint64_t size;

        setup();
        size = build_elf();
        elf[4] = 1; /* ELFCLASS32 */
        expect_elf_refused("guests/class.elf", size, -KEEL_ENOEXEC, "not a 64-bit ELF");
        size = build_elf();
        elf[5] = 2; /* big endian */
        expect_elf_refused("guests/be.elf", size, -KEEL_ENOEXEC, "little-endian");
        size = build_elf();
        elf[6] = 0;
        expect_elf_refused("guests/ver.elf", size, -KEEL_ENOEXEC, "version");
        size = build_elf();
        put32(elf + 20, 2);
        expect_elf_refused("guests/ver2.elf", size, -KEEL_ENOEXEC, "header 2");
        log_set_sink(NULL);
}

TEST(elf_wrong_type)
{
        uint64_t size;

        setup();
        size = build_elf();
        put16(elf + 16, 3); /* ET_DYN */
        expect_elf_refused("guests/pie.elf", size, -KEEL_ENOEXEC, "ET_DYN");
        EXPECT_CONTAINS(logbuf, "not supported yet");
        size = build_elf();
        put16(elf + 16, 1); /* ET_REL */
        expect_elf_refused("guests/rel.elf", size, -KEEL_ENOEXEC, "ELF type 1");
        log_set_sink(NULL);
}

TEST(elf_wrong_machine)
{
        uint64_t size;

        setup();
        size = build_elf();
        put16(elf + 18, 183);
        expect_elf_refused("guests/arm.elf", size, -KEEL_ENOEXEC, "built for AArch64");
        EXPECT_CONTAINS(logbuf, "x86-64");
        log_set_sink(NULL);
}

TEST(elf_program_headers_out_of_file)
{
        uint64_t size;

        setup();
        size = build_elf();
        put64(elf + 32, size - 10);
        expect_elf_refused("guests/phoff.elf", size, -KEEL_ENOEXEC, "program headers");
        size = build_elf();
        put64(elf + 32, UINT64_MAX - 8);
        expect_elf_refused("guests/phoff2.elf", size, -KEEL_ENOEXEC, "program headers");
        size = build_elf();
        put16(elf + 56, 200); /* 200 * 56 bytes > file */
        expect_elf_refused("guests/phnum.elf", size, -KEEL_ENOEXEC, "program headers");
        size = build_elf();
        put16(elf + 54, 32);
        expect_elf_refused("guests/phent.elf", size, -KEEL_ENOEXEC, "program header size 32");
        size = build_elf();
        put16(elf + 56, 0);
        expect_elf_refused("guests/nophdr.elf", size, -KEEL_ENOEXEC, "no program headers");
        size = build_elf();
        put16(elf + 56, 0xffff);
        expect_elf_refused("guests/xnum.elf", size, -KEEL_ENOEXEC, "extended");
        log_set_sink(NULL);
}

TEST(elf_segment_data_out_of_file)
{
        uint64_t size;

        setup();
        size = build_elf();
        set_phdr(2, 1, size - 8, 0x180000, 0x10, 0x10);
        expect_elf_refused("guests/seg.elf", size, -KEEL_ENOEXEC, "segment 2: ");
        EXPECT_CONTAINS(logbuf, "outside the");
        size = build_elf();
        set_phdr(2, 1, UINT64_MAX - 4, 0x180000, 0x10, 0x10);
        expect_elf_refused("guests/seg2.elf", size, -KEEL_ENOEXEC, "segment 2: ");
        log_set_sink(NULL);
}

TEST(elf_memsz_below_filesz)
{
        uint64_t size;

        setup();
        size = build_elf();
        set_phdr(0, 1, 0x200, 0x100000, 0x20, 0x10);
        expect_elf_refused("guests/memsz.elf", size, -KEEL_ENOEXEC, "segment 0: file size 0x20");
        log_set_sink(NULL);
}

TEST(elf_empty_load_segment_with_file_bytes)
{
        uint64_t size;

        setup();
        size = build_elf();
        set_phdr(2, 1, 0x400, 0x40000000, 0x10, 0); /* memsz 0 but filesz 0x10 */
        expect_elf_refused("guests/empty-seg.elf", size, -KEEL_ENOEXEC,
                           "segment 2: file size 0x10 exceeds its memory size 0x0");
        log_set_sink(NULL);
}

TEST(elf_segment_outside_ram)
{
        uint64_t size;

        setup();
        size = build_elf();
        set_phdr(2, 1, 0x400, RAM_SZ - 8, 0x10, 0x10); /* straddles the end of RAM */
        expect_elf_refused("guests/out.elf", size, -KEEL_EFAULT, "segment 2: 0x1ffff8-0x200007");
        size = build_elf();
        set_phdr(2, 1, 0x400, 0x40000000, 0x10, 0x10);
        expect_elf_refused("guests/out2.elf", size, -KEEL_EFAULT, "is not inside the VM's RAM");
        size = build_elf();
        set_phdr(2, 1, 0x400, 0xffffffffffff0000ull, 0x10, 0x20000);
        expect_elf_refused("guests/wrap.elf", size, -KEEL_EFAULT, "wraps");
        size = build_elf();
        set_phdr(0, 1, 0x200, 0x100000, 0x20, 4 * MiB); /* bss larger than RAM */
        expect_elf_refused("guests/huge.elf", size, -KEEL_E2BIG,
                           "segment 0: 4 MiB does not fit in the VM's 2 MiB of RAM at 0x100000");
        log_set_sink(NULL);
}

TEST(elf_segment_in_reserved_range)
{
        uint64_t size;

        setup();
        size = build_elf();
        set_phdr(2, 1, 0x400, RES_LO + 0x100, 0x10, 0x10);
        expect_elf_refused("guests/res.elf", size, -KEEL_EFAULT, "reserves");
        log_set_sink(NULL);
}

TEST(elf_no_load_segment)
{
        uint64_t size;

        setup();
        size = build_elf();
        set_phdr(0, 6, 0x200, 0x100000, 0x20, 0x20); /* PT_PHDR */
        set_phdr(2, 1, 0x400, 0x40000000, 0, 0);     /* empty PT_LOAD: ignored */
        expect_elf_refused("guests/noload.elf", size, -KEEL_ENOEXEC, "no loadable");
        log_set_sink(NULL);
}

TEST(elf_entry_outside_ram)
{
        uint64_t size;

        setup();
        size = build_elf();
        put64(elf + 24, 0xffffffff80100000ull); /* a virtual address: not guest RAM */
        expect_elf_refused("guests/entry.elf", size, -KEEL_EFAULT,
                           "entry point 0xffffffff80100000");
        log_set_sink(NULL);
}

TEST(elf_late_failure_writes_nothing)
{
        uint64_t size;

        setup();
        size = build_elf();
        /* Segment 0 is fine; segment 2 is refused: segment 0 must not have been copied. */
        set_phdr(2, 1, 0x400, RAM_SZ, 0x10, 0x10);
        expect_elf_refused("guests/late.elf", size, -KEEL_EFAULT, "segment 2: ");
        log_set_sink(NULL);
}

TEST_MAIN()
