/*
 * Tests for vmm/multiboot.c: ELF32 and address-field kernels, modules, command lines, the
 * information structure and memory map as the guest reads them, and every refusal.
 */
#include <keel/errno.h>
#include <keel/log.h>
#include <vmm/multiboot.h>

#include "log_capture.h"
#include "test.h"

#define MiB    (1024ull * 1024)
#define RAM_SZ (8 * MiB)
#define INFO   0x9000ull
#define FILL   0xee

#include "guest_ram.h"
static struct gmem mem;
static const struct multiboot_mmap map[3] = {
    {0, 0x9fc00, MULTIBOOT_MEM_RAM},
    {0x9fc00, 0x100000 - 0x9fc00, MULTIBOOT_MEM_RESERVED},
    {0x100000, RAM_SZ - 0x100000, MULTIBOOT_MEM_RAM},
};

static void setup(void)
{
        gmem_init(&mem);
        ram_fill_map(&mem, 0);
        capture_start();
}

static void p16(uint8_t *p, unsigned off, uint16_t v)
{
        p[off] = (uint8_t)v;
        p[off + 1] = (uint8_t)(v >> 8);
}

static void p32(uint8_t *p, unsigned off, uint32_t v)
{
        for (unsigned i = 0; i < 4; i++)
                p[off + i] = (uint8_t)(v >> (8 * i));
}

static uint32_t r32(uint64_t gpa_off)
{
        return (uint32_t)ram[gpa_off] | (uint32_t)ram[gpa_off + 1] << 8 |
               (uint32_t)ram[gpa_off + 2] << 16 | (uint32_t)ram[gpa_off + 3] << 24;
}

static uint64_t r64(uint64_t off)
{
        return r32(off) | (uint64_t)r32(off + 4) << 32;
}

static void mb_header(uint8_t *img, unsigned off, uint32_t flags)
{
        p32(img, off, MULTIBOOT_HEADER_MAGIC);
        p32(img, off + 4, flags);
        p32(img, off + 8, 0u - (MULTIBOOT_HEADER_MAGIC + flags));
}

/*
 * An ELF32 kernel as kvm-unit-tests builds them: code at 0x4000b0 (file 0xb0, 0x100 bytes,
 * the Multiboot header at its start), data at 0x401000 (file 0x200, 0x40 bytes, memory 0x3000).
 */
static uint8_t elf[0x240];

static void make_elf(void)
{
        memset(elf, 0, sizeof(elf));
        memcpy(elf, "\177ELF\1\1\1", 7);
        p16(elf, 16, 2);
        p16(elf, 18, 3);
        p32(elf, 20, 1);
        p32(elf, 24, 0x4000bc);
        p32(elf, 28, 52);
        p16(elf, 40, 52);
        p16(elf, 42, 32);
        p16(elf, 44, 2);
        /* PT_LOAD: type, offset, vaddr, paddr, filesz, memsz, flags, align */
        p32(elf, 52, 1);
        p32(elf, 56, 0xb0);
        p32(elf, 60, 0x4000b0);
        p32(elf, 64, 0x4000b0);
        p32(elf, 68, 0x100);
        p32(elf, 72, 0x100);
        p32(elf, 84, 1);
        p32(elf, 88, 0x200);
        p32(elf, 92, 0x401000);
        p32(elf, 96, 0x401000);
        p32(elf, 100, 0x40);
        p32(elf, 104, 0x3000);
        mb_header(elf, 0xb0, 0);
        for (unsigned i = 0xbc; i < 0x1b0; i++)
                elf[i] = (uint8_t)(i * 3);
        for (unsigned i = 0x200; i < 0x240; i++)
                elf[i] = (uint8_t)(i + 7);
}

static struct multiboot_req req(const void *img, uint64_t size)
{
        return (struct multiboot_req){
            .name = "guests/k.flat",
            .image = img,
            .size = size,
            .cmdline = "guests/k.flat -x 1",
            .ram_size = RAM_SZ,
            .mmap = map,
            .nmmap = 3,
            .info = gpa(INFO),
            .reserved_base = gpa(0),
            .reserved_size = 0x100000,
        };
}

TEST(elf32_with_module_and_info)
{
        static const uint8_t env[] = "NR_CPUS=1\nMEMSIZE=8\n";
        struct multiboot_module mod = {"env", env, sizeof(env) - 1, "env"};
        struct multiboot_out o;
        struct multiboot_req r;

        setup();
        make_elf();
        r = req(elf, sizeof(elf));
        r.mods = &mod;
        r.nmods = 1;
        EXPECT_EQ(multiboot_load(&mem, &r, &o), 0);
        EXPECT_STREQ(logbuf, "");
        EXPECT_EQ(gpa_raw(o.entry), 0x4000bc);
        EXPECT_EQ(gpa_raw(o.info), INFO);
        EXPECT_EQ(memcmp(ram + 0x4000b0, elf + 0xb0, 0x100), 0);
        EXPECT_EQ(memcmp(ram + 0x401000, elf + 0x200, 0x40), 0);
        for (unsigned i = 0x40; i < 0x3000; i++)
                if (ram[0x401000 + i] != 0)
                        EXPECT_EQ(ram[0x401000 + i], 0);
        EXPECT_EQ(ram[0x404000 + sizeof(env) - 1], FILL);
        EXPECT_EQ(o.kernel_lo, 0x4000b0);
        EXPECT_EQ(o.kernel_hi, 0x404000);
        /* The module on the next page after the kernel, as QEMU places it. */
        EXPECT_EQ(o.mod_start[0], 0x404000);
        EXPECT_EQ(o.mod_end[0], 0x404000 + sizeof(env) - 1);
        EXPECT_EQ(memcmp(ram + 0x404000, env, sizeof(env) - 1), 0);

        /* The information structure as the guest reads it. */
        EXPECT_EQ(r32(INFO + MBI_FLAGS), 0x24d);
        EXPECT_EQ(r32(INFO + MBI_MEM_LOWER), 640);
        EXPECT_EQ(r32(INFO + MBI_MEM_UPPER), (RAM_SZ - MiB) / 1024);
        EXPECT_STREQ((char *)ram + r32(INFO + MBI_CMDLINE), "guests/k.flat -x 1");
        EXPECT_EQ(r32(INFO + MBI_MODS_COUNT), 1);
        {
                uint32_t ml = r32(INFO + MBI_MODS_ADDR);

                EXPECT_EQ(r32(ml), 0x404000);
                EXPECT_EQ(r32(ml + 4), 0x404000 + sizeof(env) - 1);
                EXPECT_STREQ((char *)ram + r32(ml + 8), "env");
        }
        EXPECT_EQ(r32(INFO + MBI_MMAP_LENGTH), 72);
        {
                uint32_t mm = r32(INFO + MBI_MMAP_ADDR);

                for (unsigned i = 0; i < 3; i++) {
                        EXPECT_EQ(r32(mm + 24 * i), 20);
                        EXPECT_EQ(r64(mm + 24 * i + 4), map[i].addr);
                        EXPECT_EQ(r64(mm + 24 * i + 12), map[i].size);
                        EXPECT_EQ(r32(mm + 24 * i + 20), map[i].type);
                }
        }
        EXPECT_STREQ((char *)ram + r32(INFO + MBI_LOADER_NAME), "Keel");
        /* Nothing outside the kernel, the module and the info area was written. */
        EXPECT_EQ(ram[INFO - 1], FILL);
        EXPECT_EQ(ram[INFO + MULTIBOOT_INFO_AREA], FILL);
        EXPECT_EQ(ram[0x4000af], FILL);
        log_set_sink(NULL);
}

TEST(aout_kludge)
{
        /* Header at file 0x40 = header_addr 0x200040: load 0x200000 from file 0, bss to
         * 0x203000, entry 0x200080. */
        uint8_t img[0x100];
        struct multiboot_out o;
        struct multiboot_req r;

        setup();
        for (unsigned i = 0; i < sizeof(img); i++)
                img[i] = (uint8_t)(i ^ 0x5a);
        mb_header(img, 0x40, MULTIBOOT_AOUT_KLUDGE | MULTIBOOT_PAGE_ALIGN);
        p32(img, 0x4c, 0x200040);
        p32(img, 0x50, 0x200000);
        p32(img, 0x54, 0);
        p32(img, 0x58, 0x203000);
        p32(img, 0x5c, 0x200080);
        r = req(img, sizeof(img));
        r.cmdline = NULL;
        EXPECT_EQ(multiboot_load(&mem, &r, &o), 0);
        EXPECT_TRUE(o.aout);
        EXPECT_EQ(gpa_raw(o.entry), 0x200080);
        EXPECT_EQ(memcmp(ram + 0x200000, img, sizeof(img)), 0);
        EXPECT_EQ(ram[0x200100], 0);
        EXPECT_EQ(ram[0x202fff], 0);
        EXPECT_EQ(ram[0x203000], FILL);
        EXPECT_STREQ((char *)ram + r32(INFO + MBI_CMDLINE), "");
        EXPECT_EQ(r32(INFO + MBI_MODS_COUNT), 0);

        /* load_end_addr past the file, bss_end below the loaded part, load above header. */
        p32(img, 0x54, 0x200200);
        EXPECT_EQ(multiboot_load(&mem, &r, &o), -KEEL_ENOEXEC);
        p32(img, 0x54, 0x200100);
        p32(img, 0x58, 0x2000ff);
        EXPECT_EQ(multiboot_load(&mem, &r, &o), -KEEL_ENOEXEC);
        p32(img, 0x58, 0);
        p32(img, 0x50, 0x200041);
        EXPECT_EQ(multiboot_load(&mem, &r, &o), -KEEL_ENOEXEC);
        p32(img, 0x50, 0x100000 - 0x40 + 0x40); /* load_addr 0x100000, header 0x200040 */
        p32(img, 0x4c, 0x200040);
        EXPECT_EQ(multiboot_load(&mem, &r, &o), -KEEL_ENOEXEC); /* before the file's start */
        EXPECT_NE(strstr(logbuf, "load_addr"), NULL);
        log_set_sink(NULL);
}

TEST(refusals_leave_ram_untouched)
{
        struct multiboot_out o;
        struct multiboot_req r;
        uint8_t bad[0x240];

        setup();
        make_elf();

        /* No header: not within the first 8 KiB, or a bad checksum. */
        memcpy(bad, elf, sizeof(bad));
        p32(bad, 0xb8, 0);
        r = req(bad, sizeof(bad));
        EXPECT_EQ(multiboot_load(&mem, &r, &o), -KEEL_ENOEXEC);
        EXPECT_NE(strstr(logbuf, "image guests/k.flat: no Multiboot header"), NULL);

        /* An unknown mandatory flag. */
        memcpy(bad, elf, sizeof(bad));
        mb_header(bad, 0xb0, 1u << 3);
        capture_start();
        EXPECT_EQ(multiboot_load(&mem, &r, &o), -KEEL_ENOEXEC);
        EXPECT_NE(strstr(logbuf, "mandatory bits 0x8"), NULL);
        /* ... while an unknown optional flag is fine. */
        mb_header(bad, 0xb0, 1u << 20);
        EXPECT_EQ(multiboot_load(&mem, &r, &o), 0);
        setup();

        /* ELF64, wrong machine, segment outside the file, segment in the reserved range. */
        memcpy(bad, elf, sizeof(bad));
        bad[4] = 2;
        EXPECT_EQ(multiboot_load(&mem, &r, &o), -KEEL_ENOEXEC);
        EXPECT_NE(strstr(logbuf, "64-bit ELF"), NULL);
        memcpy(bad, elf, sizeof(bad));
        p16(bad, 18, 62);
        EXPECT_EQ(multiboot_load(&mem, &r, &o), -KEEL_ENOEXEC);
        memcpy(bad, elf, sizeof(bad));
        p32(bad, 100, 0x41);
        EXPECT_EQ(multiboot_load(&mem, &r, &o), -KEEL_ENOEXEC);
        memcpy(bad, elf, sizeof(bad));
        p32(bad, 96, 0x8000);
        EXPECT_EQ(multiboot_load(&mem, &r, &o), -KEEL_EFAULT);
        EXPECT_NE(strstr(logbuf, "Keel keeps for boot structures"), NULL);
        /* A segment past RAM's end, one larger than RAM, an entry outside RAM. */
        memcpy(bad, elf, sizeof(bad));
        p32(bad, 96, RAM_SZ - 0x1000);
        EXPECT_EQ(multiboot_load(&mem, &r, &o), -KEEL_EFAULT);
        p32(bad, 96, 0x401000);
        p32(bad, 104, 0xffffffff);
        EXPECT_EQ(multiboot_load(&mem, &r, &o), -KEEL_E2BIG);
        memcpy(bad, elf, sizeof(bad));
        p32(bad, 24, RAM_SZ);
        EXPECT_EQ(multiboot_load(&mem, &r, &o), -KEEL_EFAULT);
        /* Program headers outside the file. */
        memcpy(bad, elf, sizeof(bad));
        p32(bad, 28, sizeof(bad) - 40);
        EXPECT_EQ(multiboot_load(&mem, &r, &o), -KEEL_ENOEXEC);
        /* A module that does not fit behind the kernel. */
        {
                static uint8_t big[5 * MiB];
                struct multiboot_module mod = {"big", big, sizeof(big), "big"};

                r = req(elf, sizeof(elf));
                r.mods = &mod;
                r.nmods = 1;
                EXPECT_EQ(multiboot_load(&mem, &r, &o), -KEEL_EFAULT);
                EXPECT_NE(strstr(logbuf, "module big"), NULL);
        }
        /* Too many modules, no map, an info area outside the reserved range. */
        r = req(elf, sizeof(elf));
        r.nmods = MULTIBOOT_MAX_MODS + 1;
        EXPECT_EQ(multiboot_load(&mem, &r, &o), -KEEL_EINVAL);
        r = req(elf, sizeof(elf));
        r.nmmap = 0;
        EXPECT_EQ(multiboot_load(&mem, &r, &o), -KEEL_EINVAL);
        r = req(elf, sizeof(elf));
        r.info = gpa(0x100000 - 0x1000);
        EXPECT_EQ(multiboot_load(&mem, &r, &o), -KEEL_EINVAL);
        /* An empty file. */
        r = req(elf, 0);
        EXPECT_EQ(multiboot_load(&mem, &r, &o), -KEEL_ENOEXEC);
        EXPECT_TRUE(ram_untouched());
        log_set_sink(NULL);
}

TEST(command_lines_too_long)
{
        static char line[MULTIBOOT_INFO_AREA];
        struct multiboot_out o;
        struct multiboot_req r;

        setup();
        make_elf();
        memset(line, 'a', sizeof(line) - MB_STR_OFF);
        line[sizeof(line) - MB_STR_OFF] = 0;
        r = req(elf, sizeof(elf));
        r.cmdline = line; /* one byte more than the room with its NUL */
        EXPECT_EQ(multiboot_load(&mem, &r, &o), -KEEL_EINVAL);
        EXPECT_TRUE(ram_untouched());
        line[sizeof(line) - MB_STR_OFF - 1] = 0;
        EXPECT_EQ(multiboot_load(&mem, &r, &o), 0);
        log_set_sink(NULL);
}

TEST(memory_above_4g_is_capped)
{
        struct multiboot_mmap big[2] = {{0, 0x9fc00, MULTIBOOT_MEM_RAM},
                                        {0x100000, 0x200000000ull, MULTIBOOT_MEM_RAM}};
        struct multiboot_out o;
        struct multiboot_req r;

        setup();
        make_elf();
        r = req(elf, sizeof(elf));
        r.mmap = big;
        r.nmmap = 2;
        EXPECT_EQ(multiboot_load(&mem, &r, &o), 0);
        EXPECT_EQ(o.mem_upper, (0x100000000ull - MiB) / 1024);
        log_set_sink(NULL);
}

TEST_MAIN()
