/*
 * libFuzzer target for the Multiboot version 1 loader (vmm/multiboot.c), whose input is the
 * kernel file a config names with boot = multiboot. Guest RAM is a buffer with canary pages on
 * both sides, filled with a pattern before each load.
 *
 * Input: byte 0 RAM (2 + byte % 7 MiB), byte 1 the module count (% 3, the modules' bytes are
 * the image's first bytes), bytes 2-3 (le16) the first module's size in 64-byte units, byte 4
 * the command line (one of a few), bytes 5-7 unused; the rest is the kernel.
 * Invariants (abort on violation; a CHECK failing inside the loader aborts too):
 *   - memory outside guest RAM is never written (canaries), a refused kernel leaves guest RAM
 *     untouched;
 *   - on success: the entry is inside RAM; the kernel and the modules lie inside RAM, outside
 *     the reserved range [0, 1 MiB), apart from each other, each module page aligned and holding
 *     its bytes; the reserved range outside the info area is untouched; the information
 *     structure says what the loader reported (flags, mem_upper, modules, map) and points only
 *     into the info area, its command lines NUL-terminated there.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <keel/log.h>
#include <vmm/multiboot.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MiB          (1024ull * 1024)
#define FUZZ_RAM_MAX (8 * MiB)
#define INFO         0x9000ull
#define LOW          0x100000ull

#include "fuzz_ram.h"

static uint32_t r32(uint64_t off)
{
        uint32_t v;

        memcpy(&v, ram + off, 4);
        return v;
}

static bool apart(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
        return a + alen <= b || b + blen <= a;
}

static bool in_info(uint64_t a, uint64_t len)
{
        return a >= INFO && a + len <= INFO + MULTIBOOT_INFO_AREA;
}

/* A NUL-terminated string inside the info area at `a`. */
static bool info_string(uint64_t a)
{
        return in_info(a, 1) && memchr(ram + a, 0, INFO + MULTIBOOT_INFO_AREA - a) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const cmdlines[4] = {NULL, "", "guests/k.flat -smp 2", "x"};
        struct multiboot_module mods[2];
        struct multiboot_out o;
        struct multiboot_req r;
        struct gmem m;
        const uint8_t *img = data + 8;
        uint64_t n, ram_size, msize;
        uint16_t units;

        if (size < 8)
                return 0;
        n = size - 8;
        log_set_sink(NULL);
        ram_size = (2 + data[0] % 7) * MiB;
        memcpy(&units, data + 2, 2);
        msize = 64ull * units;
        if (msize > n)
                msize = n;
        mods[0] = (struct multiboot_module){"m0", img, msize, "m0 arg"};
        mods[1] = (struct multiboot_module){"m1", img, n < 100 ? n : 100, NULL};
        {
                const struct multiboot_mmap map[3] = {
                    {0, 0x9fc00, MULTIBOOT_MEM_RAM},
                    {0x9fc00, LOW - 0x9fc00, MULTIBOOT_MEM_RESERVED},
                    {LOW, ram_size - LOW, MULTIBOOT_MEM_RAM},
                };

                r = (struct multiboot_req){
                    .name = "fz",
                    .image = img,
                    .size = n,
                    .cmdline = cmdlines[data[4] & 3],
                    .mods = mods,
                    .nmods = data[1] % 3,
                    .ram_size = ram_size,
                    .mmap = map,
                    .nmmap = 3,
                    .info = gpa(INFO),
                    .reserved_base = gpa(0),
                    .reserved_size = LOW,
                };
                ram_setup(&m, ram_size);
                if (multiboot_load(&m, &r, &o) != 0) {
                        if (memcmp(ram, pattern, ram_size) != 0)
                                abort();
                        check_canaries();
                        return 0;
                }
        }
        check_canaries();
        if (gpa_raw(o.entry) >= ram_size || gpa_raw(o.info) != INFO)
                abort();
        if (o.kernel_lo >= o.kernel_hi || o.kernel_lo < LOW || o.kernel_hi > ram_size)
                abort();
        if (memcmp(ram, pattern, INFO) != 0 ||
            memcmp(ram + INFO + MULTIBOOT_INFO_AREA, pattern, LOW - INFO - MULTIBOOT_INFO_AREA))
                abort();
        for (unsigned i = 0; i < r.nmods; i++) {
                uint64_t s = o.mod_start[i], len = o.mod_end[i] - s;

                if (s % 4096 || o.mod_end[i] < s || len != mods[i].size || s < LOW ||
                    o.mod_end[i] > ram_size ||
                    !apart(s, len ? len : 1, o.kernel_lo, o.kernel_hi - o.kernel_lo))
                        abort();
                if (len && memcmp(ram + s, mods[i].data, len) != 0)
                        abort();
                for (unsigned j = 0; j < i; j++)
                        if (!apart(s, len ? len : 1, o.mod_start[j],
                                   o.mod_end[j] - o.mod_start[j] ? o.mod_end[j] - o.mod_start[j]
                                                                 : 1))
                                abort();
                if (r32(r32(INFO + MBI_MODS_ADDR) + 16 * i) != s ||
                    r32(r32(INFO + MBI_MODS_ADDR) + 16 * i + 4) != o.mod_end[i] ||
                    !info_string(r32(r32(INFO + MBI_MODS_ADDR) + 16 * i + 8)))
                        abort();
        }
        if (r32(INFO + MBI_FLAGS) != 0x24d || r32(INFO + MBI_MEM_LOWER) != 640 ||
            r32(INFO + MBI_MEM_UPPER) != o.mem_upper || o.mem_upper != (ram_size - LOW) / 1024 ||
            r32(INFO + MBI_MODS_COUNT) != r.nmods || !in_info(r32(INFO + MBI_MODS_ADDR), 16 * 2) ||
            r32(INFO + MBI_MMAP_LENGTH) != 72 || !in_info(r32(INFO + MBI_MMAP_ADDR), 72) ||
            !info_string(r32(INFO + MBI_CMDLINE)) || !info_string(r32(INFO + MBI_LOADER_NAME)))
                abort();
        if (strcmp((char *)ram + r32(INFO + MBI_CMDLINE), r.cmdline ? r.cmdline : "") != 0)
                abort();
        return 0;
}
