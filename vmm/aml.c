/*
 * AML byte-code builder (vmm/include/vmm/aml.h).
 *
 * Invariant: while a->len <= a->cap, buf[0, len) holds every byte emitted so far. The first
 * write that does not fit sets -KEEL_ENOSPC; from then on len only counts (it is > cap, so no
 * later write, whatever its size, can reach the buffer again).
 */
#include <string.h>

#include <keel/errno.h>
#include <vmm/aml.h>
#include <keel/le.h>

#define AML_NAMESEG_LEN 4
#define AML_MAX_SEGS    255

/* Small resource descriptors (ACPI 6.4, 6.4.2): tag byte = type << 3 | length. */
#define AML_RES_IRQ_NOFLAGS 0x22 /* IRQ descriptor, 2 data bytes */
#define AML_RES_IO          0x47 /* I/O port descriptor, 7 data bytes */
#define AML_RES_END_TAG     0x79 /* End tag, 1 data byte (checksum) */
/* Large resource descriptors (6.4.3): tag byte, 16-bit length. */
#define AML_RES_MEMORY32_FIXED 0x86
#define AML_RES_EXT_IRQ        0x89

#define AML_IO_DECODE16        0x01
#define AML_MEM_READ_WRITE     0x01
#define AML_EXT_IRQ_CONSUMER   0x01
#define AML_EXT_IRQ_EDGE       0x02
#define AML_EXT_IRQ_ACTIVE_LOW 0x04
#define AML_EXT_IRQ_SHARED     0x08
#define AML_METHOD_MAX_ARGS    7

static void aml_fail(struct aml *a, int err)
{
        if (!a->err)
                a->err = err;
}

void aml_init(struct aml *a, void *buf, size_t cap)
{
        a->buf = buf;
        a->cap = buf ? cap : 0;
        a->len = 0;
        a->err = 0;
}

long aml_finish(const struct aml *a)
{
        if (a->err)
                return a->err;
        return (long)a->len;
}

size_t aml_length(const struct aml *a)
{
        return a->len;
}

static bool aml_fits(const struct aml *a, size_t n)
{
        return a->len <= a->cap && n <= a->cap - a->len;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
        if (!a->buf) {
                /* measuring */
        } else if (aml_fits(a, n)) {
                if (n)
                        memcpy(a->buf + a->len, p, n);
        } else {
                aml_fail(a, -KEEL_ENOSPC);
        }
        a->len += n;
}

void aml_byte(struct aml *a, uint8_t b)
{
        aml_bytes(a, &b, 1);
}

/* Insert n bytes at offset off (<= len), moving what follows. */
static void aml_insert(struct aml *a, size_t off, const uint8_t *p, size_t n)
{
        if (off > a->len) { /* a mark from another builder: a bug of the caller */
                aml_fail(a, -KEEL_EINVAL);
                return;
        }
        if (!a->buf) {
                /* measuring */
        } else if (aml_fits(a, n)) {
                memmove(a->buf + off + n, a->buf + off, a->len - off);
                memcpy(a->buf + off, p, n);
        } else {
                aml_fail(a, -KEEL_ENOSPC);
        }
        a->len += n;
}

unsigned aml_pkglen_encode(uint32_t total, uint8_t out[4])
{
        unsigned follow;

        if (total <= 0x3F) {
                out[0] = (uint8_t)total;
                return 1;
        }
        if (total <= 0xFFF)
                follow = 1;
        else if (total <= 0xFFFFF)
                follow = 2;
        else if (total <= AML_PKGLEN_MAX)
                follow = 3;
        else
                return 0;
        /* Lead byte: bits 7-6 = following byte count, bits 3-0 = the low nibble. */
        out[0] = (uint8_t)(follow << 6 | (total & 0xF));
        for (unsigned i = 1; i <= follow; i++)
                out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
        return follow + 1;
}

unsigned aml_pkglen_size(size_t body_len)
{
        static const uint32_t max_total[] = {0x3F, 0xFFF, 0xFFFFF, AML_PKGLEN_MAX};

        for (unsigned n = 1; n <= 4; n++)
                if (body_len <= max_total[n - 1] - n)
                        return n;
        return 0;
}

/* Integer data object encoding into out (up to 9 bytes); returns the byte count. */
static unsigned aml_integer_encode(uint64_t v, uint8_t out[9])
{
        unsigned width;

        if (v == 0) {
                out[0] = AML_ZERO_OP;
                return 1;
        }
        if (v == 1) {
                out[0] = AML_ONE_OP;
                return 1;
        }
        if (v <= 0xFF) {
                out[0] = AML_BYTE_PREFIX;
                width = 1;
        } else if (v <= 0xFFFF) {
                out[0] = AML_WORD_PREFIX;
                width = 2;
        } else if (v <= 0xFFFFFFFF) {
                out[0] = AML_DWORD_PREFIX;
                width = 4;
        } else {
                out[0] = AML_QWORD_PREFIX;
                width = 8;
        }
        put_le(out + 1, v, width);
        return width + 1;
}

void aml_integer(struct aml *a, uint64_t v)
{
        uint8_t enc[9];

        aml_bytes(a, enc, aml_integer_encode(v, enc));
}

void aml_string(struct aml *a, const char *s)
{
        size_t n = strlen(s);

        for (size_t i = 0; i < n; i++) {
                if ((uint8_t)s[i] > 0x7F) {
                        aml_fail(a, -KEEL_EINVAL);
                        return;
                }
        }
        aml_byte(a, AML_STRING_PREFIX);
        aml_bytes(a, s, n);
        aml_byte(a, 0);
}

static bool nameseg_char(char c, bool first)
{
        return (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

/* Length of the name segment at s (up to '.' or the end), 0 if malformed. */
static size_t nameseg_len(const char *s)
{
        size_t n = 0;

        while (s[n] && s[n] != '.') {
                if (n == AML_NAMESEG_LEN || !nameseg_char(s[n], n == 0))
                        return 0;
                n++;
        }
        return n;
}

void aml_namestring(struct aml *a, const char *name)
{
        const char *p = name;
        unsigned segs = 0;
        uint8_t prefix[2];

        if (*p == '\\') {
                aml_byte(a, AML_ROOT_CHAR);
                p++;
        } else {
                while (*p == '^') {
                        aml_byte(a, AML_PARENT_CHAR);
                        p++;
                }
        }
        if (!*p) {
                aml_byte(a, AML_NULL_NAME);
                return;
        }
        /* Validate and count the segments first. */
        for (const char *q = p;;) {
                size_t n = nameseg_len(q);

                if (!n || ++segs > AML_MAX_SEGS) {
                        aml_fail(a, -KEEL_EINVAL);
                        return;
                }
                q += n;
                if (!*q)
                        break;
                q++; /* '.' */
        }
        if (segs == 2) {
                aml_byte(a, AML_DUAL_NAME);
        } else if (segs > 2) {
                prefix[0] = AML_MULTI_NAME;
                prefix[1] = (uint8_t)segs;
                aml_bytes(a, prefix, 2);
        }
        while (segs--) {
                size_t n = nameseg_len(p);
                char seg[AML_NAMESEG_LEN] = {'_', '_', '_', '_'};

                memcpy(seg, p, n);
                aml_bytes(a, seg, AML_NAMESEG_LEN);
                p += n + 1;
        }
}

static int hex_digit(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

bool aml_eisaid_value(const char *id, uint32_t *out)
{
        uint32_t v = 0;

        if (strnlen(id, 8) != 7)
                return false;
        /* Three letters, 5 bits each ('A' = 1), then four hex digits. */
        for (unsigned i = 0; i < 3; i++) {
                if (id[i] < 'A' || id[i] > 'Z')
                        return false;
                v = v << 5 | (uint32_t)(id[i] - 0x40);
        }
        for (unsigned i = 3; i < 7; i++) {
                int d = hex_digit(id[i]);

                if (d < 0)
                        return false;
                v = v << 4 | (uint32_t)d;
        }
        /* Bit 31 is 0, the letters are bits 30-16, the digits 15-0. Byte-swapped so that the
         * little-endian DWord has the most significant byte first in memory. */
        *out = (v >> 24) | (v >> 8 & 0xFF00) | (v << 8 & 0xFF0000) | (v << 24);
        return true;
}

void aml_eisaid(struct aml *a, const char *id)
{
        uint32_t v;
        uint8_t enc[5] = {AML_DWORD_PREFIX};

        if (!aml_eisaid_value(id, &v)) {
                aml_fail(a, -KEEL_EINVAL);
                return;
        }
        put_le(enc + 1, v, 4);
        aml_bytes(a, enc, sizeof(enc));
}

void aml_name(struct aml *a, const char *name)
{
        aml_byte(a, AML_NAME_OP);
        aml_namestring(a, name);
}

void aml_name_integer(struct aml *a, const char *name, uint64_t v)
{
        aml_name(a, name);
        aml_integer(a, v);
}

void aml_name_string(struct aml *a, const char *name, const char *s)
{
        aml_name(a, name);
        aml_string(a, s);
}

void aml_name_eisaid(struct aml *a, const char *name, const char *id)
{
        aml_name(a, name);
        aml_eisaid(a, id);
}

void aml_name_hid(struct aml *a, const char *hid)
{
        uint32_t v;

        if (aml_eisaid_value(hid, &v))
                aml_name_eisaid(a, "_HID", hid);
        else
                aml_name_string(a, "_HID", hid);
}

static struct aml_mark aml_mark_here(const struct aml *a)
{
        return (struct aml_mark){.body = a->len};
}

void aml_end(struct aml *a, struct aml_mark m)
{
        uint8_t enc[4];
        size_t body;
        unsigned n;

        if (m.body > a->len) {
                aml_fail(a, -KEEL_EINVAL);
                return;
        }
        body = a->len - m.body;
        n = aml_pkglen_size(body);
        if (!n) {
                aml_fail(a, -KEEL_E2BIG);
                return;
        }
        aml_pkglen_encode((uint32_t)(body + n), enc);
        aml_insert(a, m.body, enc, n);
}

struct aml_mark aml_scope_begin(struct aml *a, const char *name)
{
        struct aml_mark m;

        aml_byte(a, AML_SCOPE_OP);
        m = aml_mark_here(a);
        aml_namestring(a, name);
        return m;
}

struct aml_mark aml_device_begin(struct aml *a, const char *name)
{
        static const uint8_t op[2] = {AML_EXT_OP_PREFIX, AML_EXT_DEVICE_OP};
        struct aml_mark m;

        aml_bytes(a, op, sizeof(op));
        m = aml_mark_here(a);
        aml_namestring(a, name);
        return m;
}

struct aml_mark aml_package_begin(struct aml *a, unsigned count)
{
        struct aml_mark m;

        aml_byte(a, AML_PACKAGE_OP);
        m = aml_mark_here(a);
        if (count > 0xFF)
                aml_fail(a, -KEEL_EINVAL);
        aml_byte(a, (uint8_t)count);
        return m;
}

struct aml_mark aml_method_begin(struct aml *a, const char *name, unsigned nargs)
{
        struct aml_mark m;

        aml_byte(a, AML_METHOD_OP);
        m = aml_mark_here(a);
        aml_namestring(a, name);
        if (nargs > AML_METHOD_MAX_ARGS)
                aml_fail(a, -KEEL_EINVAL);
        /* MethodFlags: ArgCount in bits 2-0, NotSerialized, SyncLevel 0. */
        aml_byte(a, (uint8_t)(nargs & AML_METHOD_MAX_ARGS));
        return m;
}

void aml_return_integer(struct aml *a, uint64_t v)
{
        aml_byte(a, AML_RETURN_OP);
        aml_integer(a, v);
}

void aml_method_return_integer(struct aml *a, const char *name, uint64_t v)
{
        struct aml_mark m = aml_method_begin(a, name, 0);

        aml_return_integer(a, v);
        aml_end(a, m);
}

void aml_buffer(struct aml *a, const void *data, size_t n)
{
        struct aml_mark m;

        aml_byte(a, AML_BUFFER_OP);
        m = aml_mark_here(a);
        aml_integer(a, n);
        aml_bytes(a, data, n);
        aml_end(a, m);
}

struct aml_rt aml_rt_begin(struct aml *a)
{
        struct aml_rt rt;

        aml_byte(a, AML_BUFFER_OP);
        rt.pkg = aml_mark_here(a);
        return rt;
}

void aml_rt_end(struct aml *a, struct aml_rt rt)
{
        static const uint8_t end_tag[2] = {AML_RES_END_TAG, 0}; /* checksum 0: none */
        uint8_t size[9];

        if (rt.pkg.body > a->len) {
                aml_fail(a, -KEEL_EINVAL);
                return;
        }
        aml_bytes(a, end_tag, sizeof(end_tag));
        /* BufferSize in front of the descriptors, then the PkgLength in front of that. */
        aml_insert(a, rt.pkg.body, size, aml_integer_encode(a->len - rt.pkg.body, size));
        aml_end(a, rt.pkg);
}

void aml_rt_memory32_fixed(struct aml *a, bool read_write, uint32_t base, uint32_t length)
{
        uint8_t d[12] = {AML_RES_MEMORY32_FIXED, 9, 0};

        d[3] = read_write ? AML_MEM_READ_WRITE : 0;
        put_le(d + 4, base, 4);
        put_le(d + 8, length, 4);
        aml_bytes(a, d, sizeof(d));
}

void aml_rt_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t length)
{
        uint8_t d[8] = {AML_RES_IO, AML_IO_DECODE16};

        put_le(d + 2, min, 2);
        put_le(d + 4, max, 2);
        d[6] = align;
        d[7] = length;
        aml_bytes(a, d, sizeof(d));
}

void aml_rt_irq_noflags(struct aml *a, unsigned irq)
{
        uint8_t d[3] = {AML_RES_IRQ_NOFLAGS};

        if (irq > 15) {
                aml_fail(a, -KEEL_EINVAL);
                return;
        }
        put_le(d + 1, 1u << irq, 2);
        aml_bytes(a, d, sizeof(d));
}

void aml_rt_interrupt(struct aml *a, enum aml_irq_trigger trigger, enum aml_irq_polarity polarity,
                      enum aml_irq_sharing sharing, uint32_t gsi)
{
        uint8_t d[9] = {AML_RES_EXT_IRQ, 6, 0}; /* 6: flags, count, one 32-bit number */
        uint8_t flags = AML_EXT_IRQ_CONSUMER;

        if (trigger == AML_IRQ_EDGE)
                flags |= AML_EXT_IRQ_EDGE;
        if (polarity == AML_IRQ_ACTIVE_LOW)
                flags |= AML_EXT_IRQ_ACTIVE_LOW;
        if (sharing == AML_IRQ_SHARED)
                flags |= AML_EXT_IRQ_SHARED;
        d[3] = flags;
        d[4] = 1;
        put_le(d + 5, gsi, 4);
        aml_bytes(a, d, sizeof(d));
}
