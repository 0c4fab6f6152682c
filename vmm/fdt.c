/*
 * Flattened device tree writer (vmm/include/vmm/fdt.h).
 *
 * The buffer holds, while building, the header (filled in by fdt_finish), the memory
 * reservation block and the structure block growing from the front, and the strings block
 * at the very end: a new name is appended by moving the block down by the name's length, so
 * the offsets of the names already there never change. fdt_finish() moves the strings block
 * right behind the structure block. Invariant: off + strings_len <= cap.
 */
#include <string.h>

#include <keel/errno.h>
#include <vmm/fdt.h>

static void put_be32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be64(uint8_t *p, uint64_t v)
{
        put_be32(p, (uint32_t)(v >> 32));
        put_be32(p + 4, (uint32_t)v);
}

static size_t align4(size_t n)
{
        return (n + 3) & ~(size_t)3;
}

static void fail(struct fdt *f, int err)
{
        if (!f->err)
                f->err = err;
}

/* True if the builder may go on; a call after fdt_finish() is an error. */
static bool usable(struct fdt *f)
{
        if (f->finished)
                fail(f, -KEEL_EINVAL);
        return !f->err;
}

/* Room for n more bytes at the front: a pointer to them (zeroed), or NULL (ENOSPC). */
static uint8_t *reserve(struct fdt *f, size_t n)
{
        uint8_t *p;

        if (n > f->cap - f->strings_len - f->off) {
                fail(f, -KEEL_ENOSPC);
                return NULL;
        }
        p = f->buf + f->off;
        memset(p, 0, n);
        f->off += n;
        return p;
}

static bool is_alnum(char c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alpha(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_node_char(char c)
{
        return is_alnum(c) || c == ',' || c == '.' || c == '_' || c == '+' || c == '-';
}

static bool is_prop_char(char c)
{
        return is_node_char(c) || c == '?' || c == '#';
}

/* node-name[@unit-address] (devicetree spec 2.2.1). */
static bool node_name_ok(const char *name)
{
        size_t n = 0;

        if (!is_alpha(name[0]))
                return false;
        while (name[n] && name[n] != '@') {
                if (!is_node_char(name[n]))
                        return false;
                n++;
        }
        if (n > FDT_NAME_MAX)
                return false;
        if (name[n] == '\0')
                return true;
        name += n + 1; /* the unit address */
        if (name[0] == '\0')
                return false;
        for (; *name; name++)
                if (!is_node_char(*name))
                        return false;
        return true;
}

/* Devicetree spec 2.2.4. */
static bool prop_name_ok(const char *name)
{
        size_t n = 0;

        for (; name[n]; n++)
                if (!is_prop_char(name[n]) || n >= FDT_NAME_MAX)
                        return false;
        return n > 0;
}

/* Offset of `name` in the strings block, added if not there yet; -1 on ENOSPC. */
static long string_offset(struct fdt *f, const char *name)
{
        const char *block = (const char *)f->buf + (f->cap - f->strings_len);
        size_t len = strlen(name) + 1;
        size_t at = 0;

        while (at < f->strings_len) {
                size_t slen = strlen(block + at) + 1;

                if (slen == len && memcmp(block + at, name, len) == 0)
                        return (long)at;
                at += slen;
        }
        if (len > f->cap - f->strings_len - f->off) {
                fail(f, -KEEL_ENOSPC);
                return -1;
        }
        memmove(f->buf + (f->cap - f->strings_len - len), block, f->strings_len);
        memcpy(f->buf + (f->cap - len), name, len);
        f->strings_len += len;
        return (long)(f->strings_len - len);
}

/* True if the open node already has a property whose name is at nameoff. */
static bool prop_exists(const struct fdt *f, uint32_t nameoff)
{
        size_t at = f->props_off;

        while (at < f->off) {
                /* Only FDT_PROP tokens lie in [props_off, off) while props_ok holds. */
                uint32_t len = get_be32(f->buf + at + 4);

                if (get_be32(f->buf + at + 8) == nameoff)
                        return true;
                at += 12 + align4(len);
        }
        return false;
}

void fdt_init(struct fdt *f, void *buf, size_t cap)
{
        memset(f, 0, sizeof(*f));
        f->buf = buf;
        f->cap = cap;
        if (!buf && cap) {
                f->cap = 0;
                fail(f, -KEEL_EINVAL);
                return;
        }
        if (cap < FDT_HEADER_SIZE) {
                fail(f, -KEEL_ENOSPC);
                return;
        }
        memset(buf, 0, FDT_HEADER_SIZE);
        f->off = FDT_HEADER_SIZE;
}

void fdt_set_boot_cpuid(struct fdt *f, uint32_t cpuid)
{
        if (usable(f))
                f->boot_cpuid = cpuid;
}

void fdt_add_reservation(struct fdt *f, uint64_t addr, uint64_t size)
{
        uint8_t *p;

        if (!usable(f))
                return;
        if (f->struct_off) {
                fail(f, -KEEL_EINVAL);
                return;
        }
        if (size == 0)
                return; /* a zero-size entry would end the block */
        p = reserve(f, FDT_RSV_ENTRY_SIZE);
        if (!p)
                return;
        put_be64(p, addr);
        put_be64(p + 8, size);
}

void fdt_begin_node(struct fdt *f, const char *name)
{
        size_t len;
        uint8_t *p;

        if (!usable(f))
                return;
        if (f->depth == 0 ? (f->root_done || name[0] != '\0') : !node_name_ok(name)) {
                fail(f, -KEEL_EINVAL);
                return;
        }
        if (!f->struct_off) {
                if (!reserve(f, FDT_RSV_ENTRY_SIZE)) /* the block's terminating entry */
                        return;
                f->struct_off = f->off;
        }
        len = strlen(name) + 1;
        p = reserve(f, 4 + align4(len));
        if (!p)
                return;
        put_be32(p, FDT_BEGIN_NODE);
        memcpy(p + 4, name, len);
        f->root_done = true;
        f->depth++;
        f->props_ok = true;
        f->props_off = f->off;
}

void fdt_end_node(struct fdt *f)
{
        uint8_t *p;

        if (!usable(f))
                return;
        if (f->depth == 0) {
                fail(f, -KEEL_EINVAL);
                return;
        }
        p = reserve(f, 4);
        if (!p)
                return;
        put_be32(p, FDT_END_NODE);
        f->depth--;
        f->props_ok = false; /* the parent now has a child */
}

/* Writes a property's token, length and name offset; returns its len data bytes (zeroed). */
static uint8_t *prop_begin(struct fdt *f, const char *name, size_t len)
{
        long nameoff;
        uint8_t *p;

        if (!usable(f))
                return NULL;
        if (f->depth == 0 || !f->props_ok || !prop_name_ok(name) || len > UINT32_MAX) {
                fail(f, -KEEL_EINVAL);
                return NULL;
        }
        nameoff = string_offset(f, name);
        if (nameoff < 0)
                return NULL;
        if (prop_exists(f, (uint32_t)nameoff)) {
                fail(f, -KEEL_EINVAL);
                return NULL;
        }
        if (len > SIZE_MAX - 15) {
                fail(f, -KEEL_ENOSPC);
                return NULL;
        }
        p = reserve(f, 12 + align4(len));
        if (!p)
                return NULL;
        put_be32(p, FDT_PROP);
        put_be32(p + 4, (uint32_t)len);
        put_be32(p + 8, (uint32_t)nameoff);
        return p + 12;
}

void fdt_prop(struct fdt *f, const char *name, const void *data, size_t len)
{
        uint8_t *p = prop_begin(f, name, len);

        if (p && len)
                memcpy(p, data, len);
}

void fdt_prop_empty(struct fdt *f, const char *name)
{
        prop_begin(f, name, 0);
}

void fdt_prop_u32(struct fdt *f, const char *name, uint32_t v)
{
        uint8_t *p = prop_begin(f, name, 4);

        if (p)
                put_be32(p, v);
}

void fdt_prop_u64(struct fdt *f, const char *name, uint64_t v)
{
        uint8_t *p = prop_begin(f, name, 8);

        if (p)
                put_be64(p, v);
}

void fdt_prop_cells(struct fdt *f, const char *name, const uint32_t *cells, size_t n)
{
        uint8_t *p;

        if (n > SIZE_MAX / 4) {
                if (usable(f))
                        fail(f, -KEEL_ENOSPC);
                return;
        }
        p = prop_begin(f, name, n * 4);
        if (!p)
                return;
        for (size_t i = 0; i < n; i++)
                put_be32(p + 4 * i, cells[i]);
}

void fdt_prop_string(struct fdt *f, const char *name, const char *s)
{
        fdt_prop(f, name, s, strlen(s) + 1);
}

void fdt_prop_strings(struct fdt *f, const char *name, const char *const *strs, size_t n)
{
        size_t total = 0;
        uint8_t *p;

        for (size_t i = 0; i < n; i++) {
                size_t len = strlen(strs[i]) + 1;

                if (len > SIZE_MAX - total) {
                        if (usable(f))
                                fail(f, -KEEL_ENOSPC);
                        return;
                }
                total += len;
        }
        p = prop_begin(f, name, total);
        if (!p)
                return;
        for (size_t i = 0; i < n; i++) {
                size_t len = strlen(strs[i]) + 1;

                memcpy(p, strs[i], len);
                p += len;
        }
}

int fdt_finish(struct fdt *f, size_t *size)
{
        size_t struct_size, total;
        uint8_t *p;

        if (!usable(f))
                return f->err;
        if (!f->root_done || f->depth != 0) {
                fail(f, -KEEL_EINVAL);
                return f->err;
        }
        p = reserve(f, 4);
        if (!p)
                return f->err;
        put_be32(p, FDT_END);
        struct_size = f->off - f->struct_off;
        total = f->off + f->strings_len;
        if (total > UINT32_MAX) {
                fail(f, -KEEL_ENOSPC);
                return f->err;
        }
        memmove(f->buf + f->off, f->buf + (f->cap - f->strings_len), f->strings_len);

        p = f->buf;
        put_be32(p + 0, FDT_MAGIC);
        put_be32(p + 4, (uint32_t)total);
        put_be32(p + 8, (uint32_t)f->struct_off);   /* off_dt_struct */
        put_be32(p + 12, (uint32_t)f->off);         /* off_dt_strings */
        put_be32(p + 16, FDT_HEADER_SIZE);          /* off_mem_rsvmap */
        put_be32(p + 20, FDT_VERSION);              /* version */
        put_be32(p + 24, FDT_LAST_COMP_VERSION);    /* last_comp_version */
        put_be32(p + 28, f->boot_cpuid);            /* boot_cpuid_phys */
        put_be32(p + 32, (uint32_t)f->strings_len); /* size_dt_strings */
        put_be32(p + 36, (uint32_t)struct_size);    /* size_dt_struct */
        f->finished = true;
        if (size)
                *size = total;
        return 0;
}
