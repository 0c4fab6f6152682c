/*
 * Guest image loader (contract and error codes in vmm/include/vmm/loader.h). An image is
 * validated completely before the first byte is copied, so a refused image leaves guest RAM
 * untouched. All range arithmetic is checked for overflow: the image, its headers and its
 * addresses are all untrusted input.
 */
#include <stdio.h>
#include <string.h>

#include <keel/check.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <vmm/loader.h>

#define MiB (1024ull * 1024)
#define KiB 1024ull

/* The subset of ELF64 (System V gABI) the loader reads. Both targets are little endian. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "ELF headers are read in place");

#define EI_NIDENT   16
#define EI_CLASS    4
#define EI_DATA     5
#define EI_VERSION  6
#define ELFCLASS64  2
#define ELFDATA2LSB 1
#define EV_CURRENT  1
#define ET_EXEC     2
#define ET_DYN      3
#define PT_LOAD     1
#define PN_XNUM     0xffff
#define EM_X86_64   62
#define EM_AARCH64  183

static const uint8_t elf_magic[4] = {0x7f, 'E', 'L', 'F'};

struct elf64_ehdr {
        uint8_t e_ident[EI_NIDENT];
        uint16_t e_type;
        uint16_t e_machine;
        uint32_t e_version;
        uint64_t e_entry;
        uint64_t e_phoff;
        uint64_t e_shoff;
        uint32_t e_flags;
        uint16_t e_ehsize;
        uint16_t e_phentsize;
        uint16_t e_phnum;
        uint16_t e_shentsize;
        uint16_t e_shnum;
        uint16_t e_shstrndx;
};

struct elf64_phdr {
        uint32_t p_type;
        uint32_t p_flags;
        uint64_t p_offset;
        uint64_t p_vaddr;
        uint64_t p_paddr;
        uint64_t p_filesz;
        uint64_t p_memsz;
        uint64_t p_align;
};

_Static_assert(sizeof(struct elf64_ehdr) == 64, "ELF64 header size");
_Static_assert(sizeof(struct elf64_phdr) == 56, "ELF64 program header size");

/* "20 MiB", "12 KiB" or "1234 bytes": whatever states the size exactly. */
static const char *fmt_size(char *buf, size_t len, uint64_t v)
{
        if (v && v % MiB == 0)
                snprintf(buf, len, "%llu MiB", (unsigned long long)(v / MiB));
        else if (v && v % KiB == 0)
                snprintf(buf, len, "%llu KiB", (unsigned long long)(v / KiB));
        else
                snprintf(buf, len, "%llu bytes", (unsigned long long)v);
        return buf;
}

static const char *machine_name(uint16_t m)
{
        switch (m) {
        case EM_X86_64:
                return "x86-64";
        case EM_AARCH64:
                return "AArch64";
        default:
                return "another machine";
        }
}

/* True if [a, a+alen) and [b, b+blen) share a byte; never overflows. */
static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
        if (alen == 0 || blen == 0)
                return false;
        return a <= b ? b - a < alen : a - b < blen;
}

/*
 * Checks that `len` bytes at `at` (len > 0) may receive part of the image: `what` names the
 * piece in messages ("" for a flat image, "segment 2: " for an ELF segment).
 */
static int check_target(const struct gmem *m, const struct load_request *req, const char *what,
                        uint64_t at, uint64_t len)
{
        uint64_t ram = gmem_total(m);
        char s1[32], s2[32];

        if (len > ram) {
                LOG_ERR("image %s: %s%s does not fit in the VM's %s of RAM at 0x%llx", req->name,
                        what, fmt_size(s1, sizeof(s1), len), fmt_size(s2, sizeof(s2), ram),
                        (unsigned long long)at);
                return -KEEL_E2BIG;
        }
        if (at + len < at) {
                LOG_ERR("image %s: %s0x%llx + %s wraps around the address space", req->name, what,
                        (unsigned long long)at, fmt_size(s1, sizeof(s1), len));
                return -KEEL_EFAULT;
        }
        if (!gmem_contains(m, gpa(at), len)) {
                LOG_ERR("image %s: %s0x%llx-0x%llx is not inside the VM's RAM", req->name, what,
                        (unsigned long long)at, (unsigned long long)(at + len - 1));
                return -KEEL_EFAULT;
        }
        if (ranges_overlap(at, len, gpa_raw(req->reserved_base), req->reserved_size)) {
                LOG_ERR("image %s: %s0x%llx-0x%llx overlaps 0x%llx-0x%llx, which Keel reserves "
                        "for boot structures",
                        req->name, what, (unsigned long long)at, (unsigned long long)(at + len - 1),
                        (unsigned long long)gpa_raw(req->reserved_base),
                        (unsigned long long)(gpa_raw(req->reserved_base) + req->reserved_size - 1));
                return -KEEL_EFAULT;
        }
        return 0;
}

static int check_entry(const struct gmem *m, const struct load_request *req, uint64_t entry)
{
        if (!gmem_contains(m, gpa(entry), 1)) {
                LOG_ERR("image %s: entry point 0x%llx is not inside the VM's RAM", req->name,
                        (unsigned long long)entry);
                return -KEEL_EFAULT;
        }
        return 0;
}

static int load_flat(struct gmem *m, const struct load_request *req, gpa_t *entry)
{
        uint64_t at = gpa_raw(req->load);
        uint64_t e = req->has_entry ? gpa_raw(req->entry) : at;
        int r;

        r = check_target(m, req, "", at, req->size);
        if (r < 0)
                return r;
        r = check_entry(m, req, e);
        if (r < 0)
                return r;
        CHECK(gmem_write(m, req->load, req->data, req->size) == 0);
        *entry = gpa(e);
        return 0;
}

#define ELF_REFUSE(req, fmt, ...)                                      \
        do {                                                           \
                LOG_ERR("image %s: " fmt, (req)->name, ##__VA_ARGS__); \
                return -KEEL_ENOEXEC;                                  \
        } while (0)

static int elf_check_header(const struct load_request *req, const struct elf64_ehdr *eh)
{
        if (eh->e_ident[EI_CLASS] != ELFCLASS64)
                ELF_REFUSE(req, "not a 64-bit ELF file (class %u)", eh->e_ident[EI_CLASS]);
        if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
                ELF_REFUSE(req, "not a little-endian ELF file (data encoding %u)",
                           eh->e_ident[EI_DATA]);
        if (eh->e_ident[EI_VERSION] != EV_CURRENT || eh->e_version != EV_CURRENT)
                ELF_REFUSE(req, "unknown ELF version (ident %u, header %u)",
                           eh->e_ident[EI_VERSION], eh->e_version);
        if (eh->e_type == ET_DYN)
                ELF_REFUSE(req, "position-independent ELF (ET_DYN) is not supported yet; link the "
                                "guest as a static executable (ET_EXEC)");
        if (eh->e_type != ET_EXEC)
                ELF_REFUSE(req, "ELF type %u is not an executable (ET_EXEC)", eh->e_type);
        if (eh->e_machine != req->elf_machine)
                ELF_REFUSE(req, "built for %s (e_machine %u), this VM runs %s (e_machine %u)",
                           machine_name(eh->e_machine), eh->e_machine,
                           machine_name(req->elf_machine), req->elf_machine);
        if (eh->e_phnum == 0)
                ELF_REFUSE(req, "no program headers, nothing to load");
        if (eh->e_phnum == PN_XNUM)
                ELF_REFUSE(req, "extended program header numbering is not supported");
        if (eh->e_phentsize != sizeof(struct elf64_phdr))
                ELF_REFUSE(req, "program header size %u, expected %zu", eh->e_phentsize,
                           sizeof(struct elf64_phdr));
        if (eh->e_phoff > req->size ||
            (uint64_t)eh->e_phnum * sizeof(struct elf64_phdr) > req->size - eh->e_phoff)
                ELF_REFUSE(
                    req, "program headers (%u at offset 0x%llx) lie outside the %llu-byte file",
                    eh->e_phnum, (unsigned long long)eh->e_phoff, (unsigned long long)req->size);
        return 0;
}

static void elf_phdr(const struct load_request *req, const struct elf64_ehdr *eh, unsigned i,
                     struct elf64_phdr *ph)
{
        const uint8_t *p = req->data;

        memcpy(ph, p + eh->e_phoff + (uint64_t)i * sizeof(*ph), sizeof(*ph));
}

/* Validates PT_LOAD segment `i`: 1 if it occupies memory, 0 if it is empty, or an error. */
static int elf_check_segment(const struct gmem *m, const struct load_request *req, unsigned i,
                             const struct elf64_phdr *ph)
{
        char what[24];
        int r;

        if (ph->p_filesz > ph->p_memsz)
                ELF_REFUSE(req, "segment %u: file size 0x%llx exceeds its memory size 0x%llx", i,
                           (unsigned long long)ph->p_filesz, (unsigned long long)ph->p_memsz);
        if (ph->p_offset > req->size || ph->p_filesz > req->size - ph->p_offset)
                ELF_REFUSE(req, "segment %u: bytes 0x%llx+0x%llx lie outside the %llu-byte file", i,
                           (unsigned long long)ph->p_offset, (unsigned long long)ph->p_filesz,
                           (unsigned long long)req->size);
        if (ph->p_memsz == 0)
                return 0;
        snprintf(what, sizeof(what), "segment %u: ", i);
        r = check_target(m, req, what, ph->p_paddr, ph->p_memsz);
        return r < 0 ? r : 1;
}

static bool has_elf_magic(const struct load_request *req)
{
        return req->size >= sizeof(elf_magic) &&
               memcmp(req->data, elf_magic, sizeof(elf_magic)) == 0;
}

static int load_elf(struct gmem *m, const struct load_request *req, gpa_t *entry)
{
        const uint8_t *data = req->data;
        struct elf64_ehdr eh;
        struct elf64_phdr ph;
        unsigned loadable = 0;
        int r;

        if (!has_elf_magic(req))
                ELF_REFUSE(req, "not an ELF file (no ELF magic)");
        if (req->size < sizeof(eh))
                ELF_REFUSE(req, "truncated ELF header (%llu of %zu bytes)",
                           (unsigned long long)req->size, sizeof(eh));
        memcpy(&eh, data, sizeof(eh));
        r = elf_check_header(req, &eh);
        if (r < 0)
                return r;

        /* Pass 1: validate every segment; nothing is written yet. */
        for (unsigned i = 0; i < eh.e_phnum; i++) {
                elf_phdr(req, &eh, i, &ph);
                if (ph.p_type != PT_LOAD)
                        continue;
                r = elf_check_segment(m, req, i, &ph);
                if (r < 0)
                        return r;
                loadable += (unsigned)r;
        }
        if (!loadable)
                ELF_REFUSE(req, "no loadable (PT_LOAD) segment");
        r = check_entry(m, req, eh.e_entry);
        if (r < 0)
                return r;

        /* Pass 2: copy the file bytes and zero the rest of each segment (its bss). */
        for (unsigned i = 0; i < eh.e_phnum; i++) {
                elf_phdr(req, &eh, i, &ph);
                if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
                        continue;
                CHECK(gmem_write(m, gpa(ph.p_paddr), data + ph.p_offset, ph.p_filesz) == 0);
                if (ph.p_memsz > ph.p_filesz)
                        CHECK(gmem_fill(m, gpa(ph.p_paddr + ph.p_filesz), 0,
                                        ph.p_memsz - ph.p_filesz) == 0);
        }
        *entry = gpa(eh.e_entry);
        return 0;
}

int loader_load(struct gmem *m, const struct load_request *req, gpa_t *entry)
{
        enum image_format f = req->format;

        if (req->size == 0) {
                LOG_ERR("image %s: the image is empty", req->name);
                return -KEEL_ENOEXEC;
        }
        if (f == IMAGE_AUTO)
                f = has_elf_magic(req) ? IMAGE_ELF : IMAGE_FLAT;
        switch (f) {
        case IMAGE_FLAT:
                return load_flat(m, req, entry);
        case IMAGE_ELF:
                return load_elf(m, req, entry);
        default:
                LOG_ERR("image %s: unknown image format %d", req->name, (int)f);
                return -KEEL_EINVAL;
        }
}
