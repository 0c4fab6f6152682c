/*
 * Tests for vmm/fdt.c: the header fields and block offsets, a small blob byte for byte, the
 * encodings of every property helper, deduplicated property names, 4-byte alignment of every
 * token after names and values of every length, memory reservations, sticky -KEEL_ENOSPC at
 * every buffer size short of the blob (never writing past the buffer), -KEEL_EINVAL for
 * unbalanced nodes, bad names and misplaced calls, and dtc accepting a blob.
 */
#include <unistd.h>

#include <keel/errno.h>
#include <vmm/fdt.h>

#include "test.h"

static uint32_t be32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
        return (uint64_t)be32(p) << 32 | be32(p + 4);
}

enum {
        H_MAGIC,
        H_TOTAL,
        H_STRUCT,
        H_STRINGS,
        H_RSVMAP,
        H_VERSION,
        H_LASTCOMP,
        H_CPUID,
        H_STRINGS_SIZE,
        H_STRUCT_SIZE
};

static uint32_t hdr(const uint8_t *blob, unsigned field)
{
        return be32(blob + 4 * field);
}

struct walk {
        unsigned nodes, props, max_depth;
};

/*
 * Checks a finished blob's layout independently of the writer: header, block offsets and
 * sizes, reservation block terminated, every token 4-byte aligned and known, nodes balanced
 * with one root, every name offset inside the strings block pointing at a string start.
 */
static bool check_blob(const uint8_t *b, size_t size, struct walk *w)
{
        uint32_t st = hdr(b, H_STRUCT), st_size = hdr(b, H_STRUCT_SIZE);
        uint32_t str = hdr(b, H_STRINGS), str_size = hdr(b, H_STRINGS_SIZE);
        unsigned depth = 0;
        size_t at, end;
        bool ended = false;

        memset(w, 0, sizeof(*w));
        EXPECT_EQ(hdr(b, H_MAGIC), 0xd00dfeed);
        EXPECT_EQ(hdr(b, H_TOTAL), size);
        EXPECT_EQ(hdr(b, H_RSVMAP), 40);
        EXPECT_EQ(hdr(b, H_VERSION), 17);
        EXPECT_EQ(hdr(b, H_LASTCOMP), 16);
        EXPECT_EQ(st % 4, 0);
        EXPECT_EQ(st_size % 4, 0);
        EXPECT_EQ(str, st + st_size);
        EXPECT_EQ(str + str_size, size);
        if (hdr(b, H_MAGIC) != 0xd00dfeed || str + str_size != size || str != st + st_size)
                return false;
        for (at = 40;; at += 16) {
                if (at + 16 > st)
                        return false;
                if (be64(b + at) == 0 && be64(b + at + 8) == 0)
                        break;
        }
        EXPECT_EQ(at + 16, st);
        if (str_size)
                EXPECT_EQ(b[size - 1], 0); /* the last name is terminated */
        end = st + st_size;
        for (at = st; at < end && !ended;) {
                uint32_t tok = be32(b + at), len, nameoff;
                size_t n;

                at += 4;
                switch (tok) {
                case FDT_BEGIN_NODE:
                        n = strnlen((const char *)b + at, end - at);
                        if (at + n >= end)
                                return false;
                        EXPECT_TRUE(depth > 0 || (w->nodes == 0 && n == 0));
                        at += (n + 1 + 3) & ~(size_t)3;
                        w->nodes++;
                        if (++depth > w->max_depth)
                                w->max_depth = depth;
                        break;
                case FDT_END_NODE:
                        if (depth == 0)
                                return false;
                        depth--;
                        break;
                case FDT_PROP:
                        if (depth == 0 || at + 8 > end)
                                return false;
                        len = be32(b + at);
                        nameoff = be32(b + at + 4);
                        EXPECT_TRUE(nameoff < str_size);
                        EXPECT_TRUE(nameoff == 0 || b[str + nameoff - 1] == 0);
                        at += 8 + ((len + 3) & ~3u);
                        w->props++;
                        break;
                case FDT_NOP:
                        break;
                case FDT_END:
                        ended = true;
                        break;
                default:
                        return false;
                }
        }
        EXPECT_TRUE(ended);
        EXPECT_EQ(at, end);
        EXPECT_EQ(depth, 0);
        return ended && at == end && depth == 0;
}

/* A tree using every call; returns fdt_finish's result. */
static int build_sample(struct fdt *f, void *buf, size_t cap, size_t *size)
{
        static const char *const compat[] = {"arm,pl011", "arm,primecell"};
        static const uint32_t cells[] = {0, 0x9000000, 0, 0x1000};
        static const uint8_t odd[5] = {1, 2, 3, 4, 5};

        fdt_init(f, buf, cap);
        fdt_set_boot_cpuid(f, 3);
        fdt_add_reservation(f, 0x48000000, 0x10000);
        fdt_begin_node(f, "");
        fdt_prop_u32(f, "#address-cells", 2);
        fdt_prop_u32(f, "#size-cells", 2);
        fdt_prop_string(f, "model", "test");
        fdt_begin_node(f, "pl011@9000000");
        fdt_prop_strings(f, "compatible", compat, 2);
        fdt_prop_cells(f, "reg", cells, 4);
        fdt_prop(f, "odd", odd, sizeof(odd));
        fdt_end_node(f);
        fdt_begin_node(f, "chosen");
        fdt_prop_string(f, "bootargs", "console=ttyAMA0");
        fdt_prop_u64(f, "linux,initrd-start", 0x123456789abcdef0ull);
        fdt_prop_empty(f, "always-on");
        fdt_begin_node(f, "deeper");
        fdt_prop_string(f, "model", "x");
        fdt_end_node(f);
        fdt_end_node(f);
        fdt_end_node(f);
        return fdt_finish(f, size);
}

/* A blob for an empty root node, by hand. */
TEST(empty_root_exact_bytes)
{
        static const uint8_t want[] = {
            0xd0, 0x0d, 0xfe, 0xed, 0,   0, 0, 86, /* magic, totalsize */
            0,    0,    0,    56,   0,   0, 0, 84, /* off_dt_struct, off_dt_strings */
            0,    0,    0,    40,   0,   0, 0, 17, /* off_mem_rsvmap, version */
            0,    0,    0,    16,   0,   0, 0, 0,  /* last_comp_version, boot_cpuid_phys */
            0,    0,    0,    2,    0,   0, 0, 28, /* size_dt_strings, size_dt_struct */
            0,    0,    0,    0,    0,   0, 0, 0,  /* reservation terminator */
            0,    0,    0,    0,    0,   0, 0, 0,  /* (16 bytes) */
            0,    0,    0,    1,    0,   0, 0, 0,  /* FDT_BEGIN_NODE "" */
            0,    0,    0,    3,    0,   0, 0, 0,  /* FDT_PROP len 0 */
            0,    0,    0,    0,    0,   0, 0, 2,  /* nameoff 0, FDT_END_NODE */
            0,    0,    0,    9,    'a', 0,        /* FDT_END, strings "a" */
        };
        uint8_t buf[256];
        struct fdt f;
        size_t size = 0;
        struct walk w;

        memset(buf, 0xaa, sizeof(buf));
        fdt_init(&f, buf, sizeof(buf));
        fdt_begin_node(&f, "");
        fdt_prop_empty(&f, "a");
        fdt_end_node(&f);
        EXPECT_EQ(fdt_finish(&f, &size), 0);
        EXPECT_EQ(size, sizeof(want));
        EXPECT_EQ(memcmp(buf, want, sizeof(want)), 0);
        EXPECT_TRUE(check_blob(buf, size, &w));
        EXPECT_EQ(w.nodes, 1);
        EXPECT_EQ(w.props, 1);
}

TEST(header_fields_and_blocks)
{
        uint8_t buf[1024];
        struct fdt f;
        size_t size = 0;
        struct walk w;

        ASSERT_TRUE(build_sample(&f, buf, sizeof(buf), &size) == 0);
        ASSERT_TRUE(check_blob(buf, size, &w));
        EXPECT_EQ(w.nodes, 4);
        EXPECT_EQ(w.props, 10);
        EXPECT_EQ(w.max_depth, 3);
        EXPECT_EQ(hdr(buf, H_CPUID), 3);
        /* One reservation, then the terminator; the structure block follows. */
        EXPECT_EQ(be64(buf + 40), 0x48000000);
        EXPECT_EQ(be64(buf + 48), 0x10000);
        EXPECT_EQ(hdr(buf, H_STRUCT), 72);
        EXPECT_EQ(be32(buf + 72), FDT_BEGIN_NODE);
}

/* Offset of the value of the first property named `name`, its length in *len. */
static const uint8_t *find_prop(const uint8_t *b, const char *name, uint32_t *len)
{
        const char *strs = (const char *)b + hdr(b, H_STRINGS);
        size_t at = hdr(b, H_STRUCT), end = at + hdr(b, H_STRUCT_SIZE);

        while (at < end) {
                uint32_t tok = be32(b + at);

                at += 4;
                if (tok == FDT_BEGIN_NODE) {
                        at += (strlen((const char *)b + at) + 1 + 3) & ~(size_t)3;
                } else if (tok == FDT_PROP) {
                        *len = be32(b + at);
                        if (strcmp(strs + be32(b + at + 4), name) == 0)
                                return b + at + 8;
                        at += 8 + ((*len + 3) & ~3u);
                } else if (tok == FDT_END) {
                        break;
                }
        }
        return NULL;
}

TEST(property_encodings)
{
        uint8_t buf[1024];
        struct fdt f;
        size_t size;
        uint32_t len = 0;
        const uint8_t *v;

        ASSERT_TRUE(build_sample(&f, buf, sizeof(buf), &size) == 0);
        v = find_prop(buf, "#address-cells", &len);
        ASSERT_TRUE(v);
        EXPECT_EQ(len, 4);
        EXPECT_EQ(memcmp(v, "\0\0\0\2", 4), 0);
        v = find_prop(buf, "compatible", &len);
        ASSERT_TRUE(v);
        EXPECT_EQ(len, sizeof("arm,pl011\0arm,primecell"));
        EXPECT_EQ(memcmp(v, "arm,pl011\0arm,primecell", len), 0);
        v = find_prop(buf, "reg", &len);
        ASSERT_TRUE(v);
        EXPECT_EQ(len, 16);
        EXPECT_EQ(memcmp(v, "\0\0\0\0\x09\0\0\0\0\0\0\0\0\0\x10\0", 16), 0);
        v = find_prop(buf, "odd", &len);
        ASSERT_TRUE(v);
        EXPECT_EQ(len, 5);
        EXPECT_EQ(memcmp(v, "\1\2\3\4\5\0\0\0", 8), 0); /* zero padding */
        v = find_prop(buf, "bootargs", &len);
        ASSERT_TRUE(v);
        EXPECT_EQ(len, 16);
        EXPECT_STREQ((const char *)v, "console=ttyAMA0");
        v = find_prop(buf, "linux,initrd-start", &len);
        ASSERT_TRUE(v);
        EXPECT_EQ(len, 8);
        EXPECT_EQ(be64(v), 0x123456789abcdef0ull);
        v = find_prop(buf, "always-on", &len);
        ASSERT_TRUE(v);
        EXPECT_EQ(len, 0);
}

TEST(property_names_deduplicated)
{
        uint8_t buf[1024];
        struct fdt f;
        size_t size;
        static const char want[] = "#address-cells\0#size-cells\0model\0compatible\0reg\0odd\0"
                                   "bootargs\0linux,initrd-start\0always-on";
        uint32_t n_model = 0;

        ASSERT_TRUE(build_sample(&f, buf, sizeof(buf), &size) == 0);
        /* "model" is used twice but stored once, in order of first use. */
        EXPECT_EQ(hdr(buf, H_STRINGS_SIZE), sizeof(want));
        EXPECT_EQ(memcmp(buf + hdr(buf, H_STRINGS), want, sizeof(want)), 0);
        for (size_t at = hdr(buf, H_STRUCT); at + 12 <= hdr(buf, H_STRINGS); at += 4)
                if (be32(buf + at) == FDT_PROP && be32(buf + at + 8) == 27 &&
                    be32(buf + at + 4) < 8)
                        n_model++;
        EXPECT_EQ(n_model, 2); /* both "model" properties point at offset 27 */

        /* Many nodes with the same names: the strings block does not grow. */
        fdt_init(&f, buf, sizeof(buf));
        fdt_begin_node(&f, "");
        for (unsigned i = 0; i < 10; i++) {
                char name[16];

                snprintf(name, sizeof(name), "n@%x", i);
                fdt_begin_node(&f, name);
                fdt_prop_u32(&f, "reg", i);
                fdt_prop_string(&f, "status", "okay");
                fdt_end_node(&f);
        }
        fdt_end_node(&f);
        ASSERT_TRUE(fdt_finish(&f, &size) == 0);
        EXPECT_EQ(hdr(buf, H_STRINGS_SIZE), sizeof("reg\0status"));
}

/* Names and values of every length mod 4: every token stays 4-byte aligned. */
TEST(alignment_and_padding)
{
        uint8_t buf[4096];
        static const uint8_t data[9] = {9, 9, 9, 9, 9, 9, 9, 9, 9};
        struct fdt f;
        size_t size;
        struct walk w;

        memset(buf, 0xaa, sizeof(buf));
        fdt_init(&f, buf, sizeof(buf));
        fdt_begin_node(&f, "");
        for (unsigned n = 1; n <= 9; n++) {
                char name[16];

                memset(name, 'a', n);
                name[n] = '\0';
                fdt_begin_node(&f, name);
                for (unsigned len = 0; len <= 9; len++) {
                        char pname[8];

                        snprintf(pname, sizeof(pname), "p%u", len);
                        fdt_prop(&f, pname, data, len);
                }
                fdt_end_node(&f);
        }
        fdt_end_node(&f);
        ASSERT_TRUE(fdt_finish(&f, &size) == 0);
        ASSERT_TRUE(check_blob(buf, size, &w));
        EXPECT_EQ(w.nodes, 10);
        EXPECT_EQ(w.props, 90);
        /* The check walks only aligned tokens; also no 0xaa filler byte inside the blocks. */
        for (size_t i = 0; i < hdr(buf, H_STRINGS); i++)
                if (buf[i] == 0xaa)
                        TEST_FAIL_AT(__FILE__, __LINE__, "unwritten byte at %zu", i);
        EXPECT_EQ(hdr(buf, H_STRUCT) % 8, 0); /* 40-byte header + 16-byte entries */
}

TEST(reservations)
{
        uint8_t buf[256];
        struct fdt f;
        size_t size;
        struct walk w;

        fdt_init(&f, buf, sizeof(buf));
        fdt_add_reservation(&f, 0x1000, 0x2000);
        fdt_add_reservation(&f, 0x5000, 0); /* ignored: it would end the block */
        fdt_add_reservation(&f, 0xffffffff00000000ull, 0x100000000ull);
        fdt_begin_node(&f, "");
        fdt_end_node(&f);
        ASSERT_TRUE(fdt_finish(&f, &size) == 0);
        ASSERT_TRUE(check_blob(buf, size, &w));
        EXPECT_EQ(hdr(buf, H_STRUCT), 40 + 3 * 16);
        EXPECT_EQ(be64(buf + 40), 0x1000);
        EXPECT_EQ(be64(buf + 48), 0x2000);
        EXPECT_EQ(be64(buf + 56), 0xffffffff00000000ull);
        EXPECT_EQ(be64(buf + 64), 0x100000000ull);
        EXPECT_EQ(hdr(buf, H_STRINGS_SIZE), 0);
        EXPECT_EQ(hdr(buf, H_CPUID), 0);

        /* Not after the first node. */
        fdt_init(&f, buf, sizeof(buf));
        fdt_begin_node(&f, "");
        fdt_add_reservation(&f, 0x1000, 0x1000);
        fdt_end_node(&f);
        EXPECT_EQ(fdt_finish(&f, &size), -KEEL_EINVAL);
}

/*
 * Every buffer size short of the blob: -KEEL_ENOSPC, *size untouched, nothing written past
 * the buffer (an exact-size heap block, so ASan sees any overrun, and a guard pattern).
 * The blob's own size gives the same bytes as a big buffer.
 */
TEST(enospc_at_every_size)
{
        uint8_t ref[1024];
        struct fdt f;
        size_t full = 0;

        ASSERT_TRUE(build_sample(&f, ref, sizeof(ref), &full) == 0);
        for (size_t cap = 0; cap <= full; cap++) {
                uint8_t *heap = malloc(cap ? cap : 1);
                uint8_t guarded[1024 + 64];
                size_t size = 12345;
                int rc;

                ASSERT_TRUE(heap);
                rc = build_sample(&f, heap, cap, &size);
                if (cap < full) {
                        EXPECT_EQ(rc, -KEEL_ENOSPC);
                        EXPECT_EQ(size, 12345);
                        if (rc != -KEEL_ENOSPC)
                                fprintf(stderr, "  at cap %zu of %zu\n", cap, full);
                } else {
                        EXPECT_EQ(rc, 0);
                        EXPECT_EQ(size, full);
                        EXPECT_EQ(memcmp(heap, ref, full), 0);
                }
                free(heap);

                memset(guarded, 0x5c, sizeof(guarded));
                build_sample(&f, guarded, cap, &size);
                for (size_t i = cap; i < sizeof(guarded); i++)
                        if (guarded[i] != 0x5c) {
                                TEST_FAIL_AT(__FILE__, __LINE__, "cap %zu: byte %zu written", cap,
                                             i);
                                break;
                        }
        }
}

TEST(errors_are_sticky)
{
        uint8_t buf[128];
        struct fdt f;
        size_t size = 7;

        /* ENOSPC first, then a malformed call: ENOSPC is reported. */
        fdt_init(&f, buf, 64);
        fdt_begin_node(&f, "");
        fdt_prop_string(&f, "bootargs", "a command line too long for the buffer");
        fdt_end_node(&f);
        fdt_end_node(&f); /* unbalanced */
        EXPECT_EQ(fdt_finish(&f, &size), -KEEL_ENOSPC);
        EXPECT_EQ(size, 7);

        /* EINVAL first, then running out of room: EINVAL is reported. */
        fdt_init(&f, buf, 80);
        fdt_begin_node(&f, "");
        fdt_prop_u32(&f, "bad name", 1);
        fdt_prop_string(&f, "bootargs", "a command line too long for the buffer");
        fdt_end_node(&f);
        EXPECT_EQ(fdt_finish(&f, &size), -KEEL_EINVAL);
        EXPECT_EQ(fdt_finish(&f, &size), -KEEL_EINVAL);
        EXPECT_EQ(size, 7);

        /* Anything after a successful finish is an error. */
        fdt_init(&f, buf, sizeof(buf));
        fdt_begin_node(&f, "");
        fdt_end_node(&f);
        ASSERT_TRUE(fdt_finish(&f, &size) == 0);
        EXPECT_EQ(be32(buf), FDT_MAGIC);
        fdt_begin_node(&f, "");
        EXPECT_EQ(fdt_finish(&f, &size), -KEEL_EINVAL);
        EXPECT_EQ(be32(buf), FDT_MAGIC); /* the finished blob is left alone */

        /* No buffer. */
        fdt_init(&f, NULL, 0);
        fdt_begin_node(&f, "");
        fdt_end_node(&f);
        EXPECT_EQ(fdt_finish(&f, &size), -KEEL_ENOSPC);
        fdt_init(&f, NULL, 100);
        EXPECT_EQ(fdt_finish(&f, &size), -KEEL_EINVAL);
}

TEST(unbalanced_nodes)
{
        uint8_t buf[256];
        struct fdt f;
        size_t size;

        fdt_init(&f, buf, sizeof(buf)); /* no root at all */
        EXPECT_EQ(fdt_finish(&f, &size), -KEEL_EINVAL);

        fdt_init(&f, buf, sizeof(buf)); /* root left open */
        fdt_begin_node(&f, "");
        EXPECT_EQ(fdt_finish(&f, &size), -KEEL_EINVAL);

        fdt_init(&f, buf, sizeof(buf)); /* child left open */
        fdt_begin_node(&f, "");
        fdt_begin_node(&f, "a");
        fdt_end_node(&f);
        fdt_begin_node(&f, "b");
        fdt_end_node(&f);
        EXPECT_EQ(fdt_finish(&f, &size), -KEEL_EINVAL);

        fdt_init(&f, buf, sizeof(buf)); /* end without begin */
        fdt_end_node(&f);
        fdt_begin_node(&f, "");
        fdt_end_node(&f);
        EXPECT_EQ(fdt_finish(&f, &size), -KEEL_EINVAL);

        fdt_init(&f, buf, sizeof(buf)); /* one end too many */
        fdt_begin_node(&f, "");
        fdt_end_node(&f);
        fdt_end_node(&f);
        EXPECT_EQ(fdt_finish(&f, &size), -KEEL_EINVAL);

        fdt_init(&f, buf, sizeof(buf)); /* a second root */
        fdt_begin_node(&f, "");
        fdt_end_node(&f);
        fdt_begin_node(&f, "");
        fdt_end_node(&f);
        EXPECT_EQ(fdt_finish(&f, &size), -KEEL_EINVAL);

        fdt_init(&f, buf, sizeof(buf)); /* a root with a name */
        fdt_begin_node(&f, "root");
        fdt_end_node(&f);
        EXPECT_EQ(fdt_finish(&f, &size), -KEEL_EINVAL);
}

/* One call on an otherwise good tree; returns fdt_finish's result. */
static int with_node(const char *node, const char *prop)
{
        uint8_t buf[256];
        struct fdt f;
        size_t size;

        fdt_init(&f, buf, sizeof(buf));
        fdt_begin_node(&f, "");
        fdt_begin_node(&f, node);
        fdt_prop_empty(&f, prop);
        fdt_end_node(&f);
        fdt_end_node(&f);
        return fdt_finish(&f, &size);
}

TEST(names)
{
        static const char *const good_nodes[] = {
            "a",
            "cpus",
            "cpu@0",
            "pl011@9000000",
            "virtio_mmio@a000000",
            "apb-pclk",
            "A,b.c_d+e-f@1,2",
            "abcdefghijklmnopqrstuvwxyz01234@ffffffffffffffffff",
        };
        static const char *const bad_nodes[] = {
            "",    "0abc",  "@1",   "a@", "a b",
            "a/b", "a@1@2", "a@1 ", "é",  "abcdefghijklmnopqrstuvwxyz012345", /* 32 characters */
        };
        static const char *const good_props[] = {
            "a",           "#address-cells", "linux,initrd-start",
            "device_type", "?x+y.z",         "abcdefghijklmnopqrstuvwxyz01234",
        };
        static const char *const bad_props[] = {
            "", "a b", "a@b", "a/b", "a\"", "abcdefghijklmnopqrstuvwxyz012345",
        };

        for (size_t i = 0; i < sizeof(good_nodes) / sizeof(good_nodes[0]); i++)
                if (with_node(good_nodes[i], "p") != 0)
                        TEST_FAIL_AT(__FILE__, __LINE__, "node \"%s\" refused", good_nodes[i]);
        for (size_t i = 0; i < sizeof(bad_nodes) / sizeof(bad_nodes[0]); i++)
                if (with_node(bad_nodes[i], "p") != -KEEL_EINVAL)
                        TEST_FAIL_AT(__FILE__, __LINE__, "node \"%s\" accepted", bad_nodes[i]);
        for (size_t i = 0; i < sizeof(good_props) / sizeof(good_props[0]); i++)
                if (with_node("n", good_props[i]) != 0)
                        TEST_FAIL_AT(__FILE__, __LINE__, "property \"%s\" refused", good_props[i]);
        for (size_t i = 0; i < sizeof(bad_props) / sizeof(bad_props[0]); i++)
                if (with_node("n", bad_props[i]) != -KEEL_EINVAL)
                        TEST_FAIL_AT(__FILE__, __LINE__, "property \"%s\" accepted", bad_props[i]);
}

TEST(misplaced_properties)
{
        uint8_t buf[256];
        struct fdt f;
        size_t size;

        fdt_init(&f, buf, sizeof(buf)); /* before the root */
        fdt_prop_u32(&f, "a", 1);
        fdt_begin_node(&f, "");
        fdt_end_node(&f);
        EXPECT_EQ(fdt_finish(&f, &size), -KEEL_EINVAL);

        fdt_init(&f, buf, sizeof(buf)); /* after a child node */
        fdt_begin_node(&f, "");
        fdt_begin_node(&f, "child");
        fdt_end_node(&f);
        fdt_prop_u32(&f, "a", 1);
        fdt_end_node(&f);
        EXPECT_EQ(fdt_finish(&f, &size), -KEEL_EINVAL);

        fdt_init(&f, buf, sizeof(buf)); /* twice in one node */
        fdt_begin_node(&f, "");
        fdt_prop_u32(&f, "a", 1);
        fdt_prop_u32(&f, "b", 1);
        fdt_prop_u32(&f, "a", 2);
        fdt_end_node(&f);
        EXPECT_EQ(fdt_finish(&f, &size), -KEEL_EINVAL);

        fdt_init(&f, buf, sizeof(buf)); /* the same name in parent and child is fine */
        fdt_begin_node(&f, "");
        fdt_prop_u32(&f, "a", 1);
        fdt_begin_node(&f, "child");
        fdt_prop_u32(&f, "a", 1);
        fdt_end_node(&f);
        fdt_end_node(&f);
        EXPECT_EQ(fdt_finish(&f, &size), 0);
}

/* dtc (Debian device-tree-compiler) reads the sample back without a warning. */
TEST(dtc_accepts_blob)
{
        char dtb[] = "/tmp/keel-test-fdt-XXXXXX";
        char cmd[256], out[4096], err[256];
        uint8_t buf[1024];
        struct fdt f;
        size_t size, n;
        FILE *fp;
        int fd, status;

        ASSERT_TRUE(build_sample(&f, buf, sizeof(buf), &size) == 0);
        fd = mkstemp(dtb);
        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(write(fd, buf, size) == (ssize_t)size);
        close(fd);
        snprintf(cmd, sizeof(cmd), "dtc -I dtb -O dts '%s' 2>'%s.err'", dtb, dtb);
        fp = popen(cmd, "r");
        ASSERT_TRUE(fp);
        n = fread(out, 1, sizeof(out) - 1, fp);
        out[n] = '\0';
        status = pclose(fp);
        snprintf(cmd, sizeof(cmd), "%s.err", dtb);
        fp = fopen(cmd, "r");
        n = fp ? fread(err, 1, sizeof(err) - 1, fp) : 0;
        err[n] = '\0';
        if (fp)
                fclose(fp);
        unlink(cmd);
        unlink(dtb);
        EXPECT_EQ(status, 0);
        EXPECT_STREQ(err, "");
        EXPECT_CONTAINS(out, "/memreserve/\t0x0000000048000000 0x0000000000010000;");
        EXPECT_CONTAINS(out, "compatible = \"arm,pl011\\0arm,primecell\";");
        EXPECT_CONTAINS(out, "reg = <0x00 0x9000000 0x00 0x1000>;");
        EXPECT_CONTAINS(out, "odd = [01 02 03 04 05];");
        EXPECT_CONTAINS(out, "bootargs = \"console=ttyAMA0\";");
        EXPECT_CONTAINS(out, "linux,initrd-start = <0x12345678 0x9abcdef0>;");
        EXPECT_CONTAINS(out, "always-on;");
        EXPECT_CONTAINS(out, "deeper {");
}

TEST_MAIN()
