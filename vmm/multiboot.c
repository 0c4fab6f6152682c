/*
 * Multiboot version 1 guest loader (contract in vmm/include/vmm/multiboot.h; the
 * specification is Multiboot 0.6.96). The kernel file is untrusted input: every field is read
 * through a bounds-checked accessor, all address arithmetic is done in 64 bits on 32-bit
 * values or checked for overflow, and the whole request is validated before the first byte of
 * guest RAM is written.
 */
#include <stdio.h>
#include <string.h>

#include <keel/check.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <vmm/multiboot.h>
#include <keel/le.h>

#define PAGE   0x1000ull
#define GiB4   0x100000000ull
#define LOW_KB 640u

/* ELF32 (System V gABI), the subset read here. */
#define EI_CLASS    4
#define EI_DATA     5
#define ELFCLASS32  1
#define ELFCLASS64  2
#define ELFDATA2LSB 1
#define ET_EXEC     2
#define EM_386      3
#define PT_LOAD     1
#define EH32_SIZE   52
#define PH32_SIZE   32

struct seg {
        uint64_t file_off, filesz, paddr, memsz;
};

/* Offsets given to these lie inside the file / the page: the callers check them first. */
static uint32_t le32(const uint8_t *p, uint64_t off)
{
        return get_le32(p + off);
}

static uint16_t le16(const uint8_t *p, uint64_t off)
{
        return get_le16(p + off);
}

static void put32(uint8_t *p, unsigned off, uint32_t v)
{
        put_le(p + off, v, 4);
}

static void put64(uint8_t *p, unsigned off, uint64_t v)
{
        put_le(p + off, v, 8);
}

static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
        if (alen == 0 || blen == 0)
                return false;
        return a <= b ? b - a < alen : a - b < blen;
}

#define REFUSE(req, err, fmt, ...)                                     \
        do {                                                           \
                LOG_ERR("image %s: " fmt, (req)->name, ##__VA_ARGS__); \
                return (err);                                          \
        } while (0)

/* Finds the header: its offset in the file, or -1. */
static int64_t find_header(const uint8_t *p, uint64_t size)
{
        uint64_t end = size < MULTIBOOT_SEARCH ? size : MULTIBOOT_SEARCH;

        for (uint64_t off = 0; off + 12 <= end; off += 4) {
                uint32_t magic = le32(p, off), flags = le32(p, off + 4), sum = le32(p, off + 8);

                if (magic == MULTIBOOT_HEADER_MAGIC && (uint32_t)(magic + flags + sum) == 0)
                        return (int64_t)off;
        }
        return -1;
}

/* Checks that [at, at + len) may receive part of the kernel or a module (len > 0). */
static int check_target(const struct gmem *m, const struct multiboot_req *req, const char *what,
                        uint64_t at, uint64_t len)
{
        uint64_t ram = req->ram_size < GiB4 ? req->ram_size : GiB4;

        if (len > ram)
                REFUSE(req, -KEEL_E2BIG, "%s (%llu bytes) does not fit in the VM's %llu MiB of RAM",
                       what, (unsigned long long)len, (unsigned long long)(req->ram_size >> 20));
        if (at >= ram || len > ram - at || !gmem_contains(m, gpa(at), len))
                REFUSE(req, -KEEL_EFAULT,
                       "%s at 0x%llx-0x%llx is not inside the VM's RAM below 4 GiB (RAM ends at "
                       "0x%llx)",
                       what, (unsigned long long)at, (unsigned long long)(at + len - 1),
                       (unsigned long long)ram);
        if (overlap(at, len, gpa_raw(req->reserved_base), req->reserved_size))
                REFUSE(req, -KEEL_EFAULT,
                       "%s at 0x%llx-0x%llx overlaps 0x%llx-0x%llx, which Keel keeps for boot "
                       "structures",
                       what, (unsigned long long)at, (unsigned long long)(at + len - 1),
                       (unsigned long long)gpa_raw(req->reserved_base),
                       (unsigned long long)(gpa_raw(req->reserved_base) + req->reserved_size - 1));
        return 0;
}

/* The a.out kludge (flag 16): one segment from the header's address fields (3.1.3). */
static int plan_aout(const struct gmem *m, const struct multiboot_req *req, uint64_t hdr,
                     struct seg *s, uint64_t *entry)
{
        const uint8_t *p = req->image;
        uint32_t header_addr, load_addr, load_end, bss_end;
        uint64_t start;

        if (hdr + 32 > req->size)
                REFUSE(req, -KEEL_ENOEXEC,
                       "Multiboot header at 0x%llx: its address fields are past the end of the "
                       "file",
                       (unsigned long long)hdr);
        header_addr = le32(p, hdr + 12);
        load_addr = le32(p, hdr + 16);
        load_end = le32(p, hdr + 20);
        bss_end = le32(p, hdr + 24);
        *entry = le32(p, hdr + 28);
        if (load_addr > header_addr || header_addr - load_addr > hdr)
                REFUSE(req, -KEEL_ENOEXEC,
                       "Multiboot load_addr 0x%x is above header_addr 0x%x or before the file's "
                       "start",
                       load_addr, header_addr);
        start = hdr - (header_addr - load_addr);
        s->file_off = start;
        s->paddr = load_addr;
        if (load_end == 0) {
                s->filesz = req->size - start;
        } else {
                if (load_end < load_addr || load_end - load_addr > req->size - start)
                        REFUSE(req, -KEEL_ENOEXEC,
                               "Multiboot load_end_addr 0x%x is before load_addr 0x%x or past the "
                               "end of the file",
                               load_end, load_addr);
                s->filesz = load_end - load_addr;
        }
        s->memsz = s->filesz;
        if (bss_end != 0) {
                if (bss_end < load_addr + s->filesz)
                        REFUSE(req, -KEEL_ENOEXEC,
                               "Multiboot bss_end_addr 0x%x is before the end of the loaded part "
                               "(0x%llx)",
                               bss_end, (unsigned long long)(load_addr + s->filesz));
                s->memsz = bss_end - load_addr;
        }
        if (s->memsz == 0)
                REFUSE(req, -KEEL_ENOEXEC, "Multiboot address fields load nothing");
        return check_target(m, req, "the kernel", s->paddr, s->memsz);
}

/* An ELF32 executable's PT_LOAD segments: how many (into segs[], at most `max`), or an error. */
static int plan_elf32(const struct gmem *m, const struct multiboot_req *req, struct seg *segs,
                      unsigned max, uint64_t *entry)
{
        const uint8_t *p = req->image;
        uint64_t phoff;
        unsigned phnum, n = 0;

        if (req->size < EH32_SIZE || memcmp(p, "\177ELF", 4) != 0)
                REFUSE(req, -KEEL_ENOEXEC,
                       "a Multiboot kernel without address fields (header flag 16) must be an "
                       "ELF file, and this is not one");
        if (p[EI_CLASS] == ELFCLASS64)
                REFUSE(req, -KEEL_ENOEXEC,
                       "a 64-bit ELF Multiboot kernel is not supported (as on QEMU): link it as "
                       "ELF32 (e.g. objcopy -O elf32-i386)");
        if (p[EI_CLASS] != ELFCLASS32 || p[EI_DATA] != ELFDATA2LSB)
                REFUSE(req, -KEEL_ENOEXEC, "not a little-endian ELF32 file (class %u, data %u)",
                       p[EI_CLASS], p[EI_DATA]);
        if (le16(p, 16) != ET_EXEC || le16(p, 18) != EM_386)
                REFUSE(req, -KEEL_ENOEXEC,
                       "ELF type %u, machine %u: a Multiboot kernel is an i386 executable (type 2, "
                       "machine 3)",
                       le16(p, 16), le16(p, 18));
        *entry = le32(p, 24);
        phoff = le32(p, 28);
        phnum = le16(p, 44);
        if (phnum == 0 || le16(p, 42) != PH32_SIZE)
                REFUSE(req, -KEEL_ENOEXEC, "ELF program headers: %u of %u bytes each (expected %u)",
                       phnum, le16(p, 42), PH32_SIZE);
        if (phoff > req->size || (uint64_t)phnum * PH32_SIZE > req->size - phoff)
                REFUSE(req, -KEEL_ENOEXEC,
                       "ELF program headers (%u at 0x%llx) lie outside the %llu-byte file", phnum,
                       (unsigned long long)phoff, (unsigned long long)req->size);
        for (unsigned i = 0; i < phnum; i++) {
                uint64_t ph = phoff + (uint64_t)i * PH32_SIZE;
                struct seg s = {le32(p, ph + 4), le32(p, ph + 16), le32(p, ph + 12),
                                le32(p, ph + 20)};
                char what[32];
                int r;

                if (le32(p, ph) != PT_LOAD || s.memsz == 0)
                        continue;
                if (s.filesz > s.memsz || s.file_off > req->size ||
                    s.filesz > req->size - s.file_off)
                        REFUSE(req, -KEEL_ENOEXEC,
                               "ELF segment %u: 0x%llx bytes at file offset 0x%llx (memory size "
                               "0x%llx) do not fit the %llu-byte file",
                               i, (unsigned long long)s.filesz, (unsigned long long)s.file_off,
                               (unsigned long long)s.memsz, (unsigned long long)req->size);
                if (n == max)
                        REFUSE(req, -KEEL_ENOEXEC, "more than %u loadable ELF segments", max);
                snprintf(what, sizeof(what), "ELF segment %u", i);
                r = check_target(m, req, what, s.paddr, s.memsz);
                if (r)
                        return r;
                segs[n++] = s;
        }
        if (n == 0)
                REFUSE(req, -KEEL_ENOEXEC, "no loadable (PT_LOAD) ELF segment");
        return (int)n;
}

#define MAX_SEGS 16

int multiboot_load(struct gmem *m, const struct multiboot_req *req, struct multiboot_out *out)
{
        const uint8_t *p = req->image;
        uint8_t info[MB_STR_OFF];
        struct seg segs[MAX_SEGS];
        unsigned nsegs, str = 0;
        uint64_t entry = 0, hdr, lo = ~0ull, hi = 0, next, upper = 0, ib = gpa_raw(req->info);
        uint32_t flags;
        int64_t found;
        int r;

        memset(out, 0, sizeof(*out));
        if (!p || req->size == 0)
                REFUSE(req, -KEEL_ENOEXEC, "the kernel is empty");
        if (req->nmods > MULTIBOOT_MAX_MODS || req->nmmap == 0 || req->nmmap > MULTIBOOT_MAX_MMAP)
                REFUSE(req, -KEEL_EINVAL, "%u modules, %u memory map entries (at most %u and %u)",
                       req->nmods, req->nmmap, MULTIBOOT_MAX_MODS, MULTIBOOT_MAX_MMAP);
        if (ib >= GiB4 || !gmem_contains(m, req->info, MULTIBOOT_INFO_AREA) ||
            ib < gpa_raw(req->reserved_base) ||
            ib - gpa_raw(req->reserved_base) + MULTIBOOT_INFO_AREA > req->reserved_size)
                REFUSE(req, -KEEL_EINVAL,
                       "the Multiboot info area at 0x%llx is not in reserved RAM",
                       (unsigned long long)ib);
        found = find_header(p, req->size);
        if (found < 0)
                REFUSE(req, -KEEL_ENOEXEC,
                       "no Multiboot header (magic 0x1badb002 with its checksum, 4-byte aligned) "
                       "in the first 8192 bytes: not a Multiboot kernel");
        hdr = (uint64_t)found;
        flags = le32(p, hdr + 4);
        if (flags & 0xffffu & ~MULTIBOOT_KNOWN_FLAGS)
                REFUSE(req, -KEEL_ENOEXEC,
                       "Multiboot header flags 0x%x ask for something Keel does not provide "
                       "(mandatory bits 0x%x unknown)",
                       flags, flags & 0xffffu & ~MULTIBOOT_KNOWN_FLAGS);

        /* Validate: the kernel's pieces, the entry, the modules, the strings. */
        if (flags & MULTIBOOT_AOUT_KLUDGE) {
                r = plan_aout(m, req, hdr, &segs[0], &entry);
                nsegs = 1;
                out->aout = true;
        } else {
                r = plan_elf32(m, req, segs, MAX_SEGS, &entry);
                nsegs = r > 0 ? (unsigned)r : 0;
        }
        if (r < 0)
                return r;
        if (entry >= req->ram_size || !gmem_contains(m, gpa(entry), 1))
                REFUSE(req, -KEEL_EFAULT, "entry point 0x%llx is not inside the VM's RAM",
                       (unsigned long long)entry);
        for (unsigned i = 0; i < nsegs; i++) {
                if (segs[i].paddr < lo)
                        lo = segs[i].paddr;
                if (segs[i].paddr + segs[i].memsz > hi)
                        hi = segs[i].paddr + segs[i].memsz;
        }
        next = (hi + PAGE - 1) & ~(PAGE - 1);
        for (unsigned i = 0; i < req->nmods; i++) {
                const struct multiboot_module *mod = &req->mods[i];
                char what[160];
                uint64_t len = mod->size ? mod->size : 1; /* an empty module still has a place */

                snprintf(what, sizeof(what), "module %s", mod->name ? mod->name : "?");
                r = check_target(m, req, what, next, len);
                if (r)
                        return r;
                out->mod_start[i] = next;
                out->mod_end[i] = next + mod->size;
                next = (next + len + PAGE - 1) & ~(PAGE - 1);
        }
        {
                uint64_t room = MULTIBOOT_INFO_AREA - MB_STR_OFF;
                uint64_t need = strlen(req->cmdline ? req->cmdline : "") + 1;

                for (unsigned i = 0; i < req->nmods; i++)
                        need += strlen(req->mods[i].cmdline ? req->mods[i].cmdline : "") + 1;
                if (need > room)
                        REFUSE(req, -KEEL_EINVAL,
                               "command lines of %llu bytes do not fit the %llu-byte info area",
                               (unsigned long long)need, (unsigned long long)room);
        }
        for (unsigned i = 0; i < req->nmmap; i++) {
                const struct multiboot_mmap *e = &req->mmap[i];

                if (e->type == MULTIBOOT_MEM_RAM && e->addr == 0x100000)
                        upper = e->size;
        }
        out->mem_lower = LOW_KB;
        out->mem_upper = (uint32_t)((upper < GiB4 - 0x100000 ? upper : GiB4 - 0x100000) >> 10);

        /* Write: the kernel, the modules, the strings, the map, the module list, the info. */
        for (unsigned i = 0; i < nsegs; i++) {
                CHECK(gmem_write(m, gpa(segs[i].paddr), p + segs[i].file_off, segs[i].filesz) == 0);
                if (segs[i].memsz > segs[i].filesz)
                        CHECK(gmem_fill(m, gpa(segs[i].paddr + segs[i].filesz), 0,
                                        segs[i].memsz - segs[i].filesz) == 0);
        }
        memset(info, 0, sizeof(info));
        CHECK(gmem_fill(m, req->info, 0, MULTIBOOT_INFO_AREA) == 0);
        {
                const char *s = req->cmdline ? req->cmdline : "";
                uint64_t len = strlen(s) + 1;

                CHECK(gmem_write(m, gpa(ib + MB_STR_OFF), s, len) == 0);
                put32(info, MBI_CMDLINE, (uint32_t)(ib + MB_STR_OFF));
                str = (unsigned)len;
        }
        for (unsigned i = 0; i < req->nmods; i++) {
                const struct multiboot_module *mod = &req->mods[i];
                const char *s = mod->cmdline ? mod->cmdline : "";
                uint64_t len = strlen(s) + 1;
                unsigned e = MB_MODS_OFF + 16 * i;

                if (mod->size)
                        CHECK(gmem_write(m, gpa(out->mod_start[i]), mod->data, mod->size) == 0);
                CHECK(gmem_write(m, gpa(ib + MB_STR_OFF + str), s, len) == 0);
                put32(info, e, (uint32_t)out->mod_start[i]);
                put32(info, e + 4, (uint32_t)out->mod_end[i]);
                put32(info, e + 8, (uint32_t)(ib + MB_STR_OFF + str));
                str += (unsigned)len;
        }
        for (unsigned i = 0; i < req->nmmap; i++) {
                unsigned e = MB_MMAP_OFF + 24 * i;

                put32(info, e, 20); /* size of the rest of the entry */
                put64(info, e + 4, req->mmap[i].addr);
                put64(info, e + 12, req->mmap[i].size);
                put32(info, e + 20, req->mmap[i].type);
        }
        memcpy(info + MB_NAME_OFF, "Keel", 5);
        put32(info, MBI_FLAGS,
              MBI_FLAG_MEMORY | MBI_FLAG_CMDLINE | MBI_FLAG_MODS | MBI_FLAG_MMAP | MBI_FLAG_LOADER);
        put32(info, MBI_MEM_LOWER, out->mem_lower);
        put32(info, MBI_MEM_UPPER, out->mem_upper);
        put32(info, MBI_MODS_COUNT, req->nmods);
        put32(info, MBI_MODS_ADDR, (uint32_t)(ib + MB_MODS_OFF));
        put32(info, MBI_MMAP_LENGTH, 24 * req->nmmap);
        put32(info, MBI_MMAP_ADDR, (uint32_t)(ib + MB_MMAP_OFF));
        put32(info, MBI_LOADER_NAME, (uint32_t)(ib + MB_NAME_OFF));
        CHECK(gmem_write(m, req->info, info, sizeof(info)) == 0);

        out->entry = gpa(entry);
        out->info = req->info;
        out->kernel_lo = lo;
        out->kernel_hi = hi;
        return 0;
}
