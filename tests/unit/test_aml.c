/*
 * Tests for vmm/aml.c: every encoding against known byte sequences (the DSDT-shaped ones were
 * checked against what iasl compiles from the same ASL), PkgLength at each width boundary,
 * nesting, errors, and that running out of room never writes past the buffer.
 */
#include <keel/errno.h>
#include <vmm/aml.h>

#include "test.h"

static uint8_t out[8192];

/* Build with f into `out` and compare with the expected bytes. */
#define EXPECT_AML(build, ...)                                                               \
        do {                                                                                 \
                static const uint8_t _exp[] = {__VA_ARGS__};                                 \
                struct aml ab;                                                               \
                memset(out, 0xEE, sizeof(out));                                              \
                aml_init(&ab, out, sizeof(out));                                             \
                build;                                                                       \
                EXPECT_EQ(aml_finish(&ab), sizeof(_exp));                                    \
                if (aml_length(&ab) == sizeof(_exp) && memcmp(out, _exp, sizeof(_exp)) != 0) \
                        TEST_FAIL_AT(__FILE__, __LINE__, "bytes differ: %s", #build);        \
        } while (0)

/* Build with f and expect error e. */
#define EXPECT_AML_ERR(build, e)                 \
        do {                                     \
                struct aml ab;                   \
                aml_init(&ab, out, sizeof(out)); \
                build;                           \
                EXPECT_EQ(aml_finish(&ab), e);   \
        } while (0)

TEST(pkglen_encode_boundaries)
{
        uint8_t b[4];

        EXPECT_EQ(aml_pkglen_encode(0, b), 1);
        EXPECT_EQ(b[0], 0x00);
        EXPECT_EQ(aml_pkglen_encode(63, b), 1);
        EXPECT_EQ(b[0], 0x3F);
        EXPECT_EQ(aml_pkglen_encode(64, b), 2);
        EXPECT_EQ(b[0], 0x40);
        EXPECT_EQ(b[1], 0x04);
        EXPECT_EQ(aml_pkglen_encode(0x123, b), 2);
        EXPECT_EQ(b[0], 0x43);
        EXPECT_EQ(b[1], 0x12);
        EXPECT_EQ(aml_pkglen_encode(4095, b), 2);
        EXPECT_EQ(b[0], 0x4F);
        EXPECT_EQ(b[1], 0xFF);
        EXPECT_EQ(aml_pkglen_encode(4096, b), 3);
        EXPECT_EQ(b[0], 0x80);
        EXPECT_EQ(b[1], 0x00);
        EXPECT_EQ(b[2], 0x01);
        EXPECT_EQ(aml_pkglen_encode(0xFFFFF, b), 3);
        EXPECT_EQ(b[0], 0x8F);
        EXPECT_EQ(b[1], 0xFF);
        EXPECT_EQ(b[2], 0xFF);
        EXPECT_EQ(aml_pkglen_encode(0x100000, b), 4);
        EXPECT_EQ(b[0], 0xC0);
        EXPECT_EQ(b[1], 0x00);
        EXPECT_EQ(b[2], 0x00);
        EXPECT_EQ(b[3], 0x01);
        EXPECT_EQ(aml_pkglen_encode(0x0FEDCBA9, b), 4);
        EXPECT_EQ(b[0], 0xC9);
        EXPECT_EQ(b[1], 0xBA);
        EXPECT_EQ(b[2], 0xDC);
        EXPECT_EQ(b[3], 0xFE);
        EXPECT_EQ(aml_pkglen_encode(AML_PKGLEN_MAX, b), 4);
        EXPECT_EQ(aml_pkglen_encode(AML_PKGLEN_MAX + 1, b), 0);
}

TEST(pkglen_size_counts_itself)
{
        EXPECT_EQ(aml_pkglen_size(0), 1);
        EXPECT_EQ(aml_pkglen_size(62), 1); /* 62 + 1 = 63 */
        EXPECT_EQ(aml_pkglen_size(63), 2); /* 63 + 1 = 64 does not fit in 6 bits */
        EXPECT_EQ(aml_pkglen_size(4093), 2);
        EXPECT_EQ(aml_pkglen_size(4094), 3); /* 4094 + 2 = 4096 */
        EXPECT_EQ(aml_pkglen_size(0xFFFFC), 3);
        EXPECT_EQ(aml_pkglen_size(0xFFFFD), 4);
        EXPECT_EQ(aml_pkglen_size(AML_PKGLEN_MAX - 4), 4);
        EXPECT_EQ(aml_pkglen_size(AML_PKGLEN_MAX - 3), 0);
}

/* A Package whose body (count byte + n ZeroOps) is body_len bytes: check the PkgLength. */
static void check_package_body(size_t body_len, const uint8_t *lead, unsigned lead_len)
{
        struct aml a;
        struct aml_mark m;

        memset(out, 0xEE, sizeof(out));
        aml_init(&a, out, sizeof(out));
        m = aml_package_begin(&a, (unsigned)((body_len - 1) & 0xFF));
        for (size_t i = 1; i < body_len; i++)
                aml_integer(&a, 0);
        aml_end(&a, m);
        EXPECT_EQ(aml_finish(&a), 1 + lead_len + body_len);
        EXPECT_EQ(out[0], AML_PACKAGE_OP);
        EXPECT_TRUE(memcmp(out + 1, lead, lead_len) == 0);
        /* The body moved intact behind the PkgLength. */
        EXPECT_EQ(out[1 + lead_len], (body_len - 1) & 0xFF);
        for (size_t i = 1; i < body_len; i++)
                if (out[1 + lead_len + i] != 0) {
                        TEST_FAIL_AT(__FILE__, __LINE__, "body byte %zu", i);
                        break;
                }
        EXPECT_EQ(out[1 + lead_len + body_len], 0xEE);
}

TEST(pkglen_wrapping_at_boundaries)
{
        check_package_body(62, (const uint8_t[]){0x3F}, 1);               /* total 63 */
        check_package_body(63, (const uint8_t[]){0x41, 0x04}, 2);         /* total 65 */
        check_package_body(4093, (const uint8_t[]){0x4F, 0xFF}, 2);       /* total 4095 */
        check_package_body(4094, (const uint8_t[]){0x81, 0x00, 0x01}, 3); /* total 4097 */
}

TEST(integers_at_width_boundaries)
{
        EXPECT_AML(aml_integer(&ab, 0), 0x00);
        EXPECT_AML(aml_integer(&ab, 1), 0x01);
        EXPECT_AML(aml_integer(&ab, 2), 0x0A, 0x02);
        EXPECT_AML(aml_integer(&ab, 0xFF), 0x0A, 0xFF);
        EXPECT_AML(aml_integer(&ab, 0x100), 0x0B, 0x00, 0x01);
        EXPECT_AML(aml_integer(&ab, 0xFFFF), 0x0B, 0xFF, 0xFF);
        EXPECT_AML(aml_integer(&ab, 0x10000), 0x0C, 0x00, 0x00, 0x01, 0x00);
        EXPECT_AML(aml_integer(&ab, 0xFFFFFFFF), 0x0C, 0xFF, 0xFF, 0xFF, 0xFF);
        EXPECT_AML(aml_integer(&ab, 0x100000000ull), 0x0E, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
                   0x00);
        EXPECT_AML(aml_integer(&ab, 0x0123456789ABCDEFull), 0x0E, 0xEF, 0xCD, 0xAB, 0x89, 0x67,
                   0x45, 0x23, 0x01);
        EXPECT_AML(aml_integer(&ab, UINT64_MAX), 0x0E, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                   0xFF);
}

TEST(strings)
{
        EXPECT_AML(aml_string(&ab, "LNRO0005"), 0x0D, 'L', 'N', 'R', 'O', '0', '0', '0', '5', 0);
        EXPECT_AML(aml_string(&ab, ""), 0x0D, 0);
        EXPECT_AML_ERR(aml_string(&ab, "caf\xc3\xa9"), -KEEL_EINVAL);
}

TEST(namestrings)
{
        EXPECT_AML(aml_namestring(&ab, "_HID"), '_', 'H', 'I', 'D');
        EXPECT_AML(aml_namestring(&ab, "V0"), 'V', '0', '_', '_');
        EXPECT_AML(aml_namestring(&ab, "\\_SB"), 0x5C, '_', 'S', 'B', '_');
        EXPECT_AML(aml_namestring(&ab, "\\"), 0x5C, 0x00);
        EXPECT_AML(aml_namestring(&ab, ""), 0x00);
        EXPECT_AML(aml_namestring(&ab, "\\_SB.V000"), 0x5C, 0x2E, '_', 'S', 'B', '_', 'V', '0', '0',
                   '0');
        EXPECT_AML(aml_namestring(&ab, "_SB.PCI0.S1"), 0x2F, 0x03, '_', 'S', 'B', '_', 'P', 'C',
                   'I', '0', 'S', '1', '_', '_');
        EXPECT_AML(aml_namestring(&ab, "^^FOO"), 0x5E, 0x5E, 'F', 'O', 'O', '_');
        EXPECT_AML(aml_namestring(&ab, "^A.B"), 0x5E, 0x2E, 'A', '_', '_', '_', 'B', '_', '_', '_');
        EXPECT_AML_ERR(aml_namestring(&ab, "_hid"), -KEEL_EINVAL);
        EXPECT_AML_ERR(aml_namestring(&ab, "ABCDE"), -KEEL_EINVAL);
        EXPECT_AML_ERR(aml_namestring(&ab, "1ABC"), -KEEL_EINVAL);
        EXPECT_AML_ERR(aml_namestring(&ab, "A..B"), -KEEL_EINVAL);
        EXPECT_AML_ERR(aml_namestring(&ab, "A."), -KEEL_EINVAL);
        EXPECT_AML_ERR(aml_namestring(&ab, ".A"), -KEEL_EINVAL);
        EXPECT_AML_ERR(aml_namestring(&ab, "\\^A"), -KEEL_EINVAL);
        EXPECT_AML_ERR(aml_namestring(&ab, "A-B"), -KEEL_EINVAL);
}

TEST(namestring_segment_limit)
{
        /* 255 segments are the most a MultiNamePrefix can count. */
        static char name[256 * 2 + 1];
        struct aml a;

        for (int segs = 255; segs <= 256; segs++) {
                for (int i = 0; i < segs; i++) {
                        name[2 * i] = 'A';
                        name[2 * i + 1] = '.';
                }
                name[2 * segs - 1] = 0;
                aml_init(&a, out, sizeof(out));
                aml_namestring(&a, name);
                if (segs == 255) {
                        EXPECT_EQ(aml_finish(&a), 2 + 255 * 4);
                        EXPECT_EQ(out[0], 0x2F);
                        EXPECT_EQ(out[1], 255);
                } else {
                        EXPECT_EQ(aml_finish(&a), -KEEL_EINVAL);
                }
        }
}

TEST(eisaid)
{
        uint32_t v = 0;

        EXPECT_TRUE(aml_eisaid_value("PNP0501", &v));
        EXPECT_EQ(v, 0x0105D041);
        EXPECT_TRUE(aml_eisaid_value("PNP0A03", &v));
        EXPECT_EQ(v, 0x030AD041);
        EXPECT_TRUE(aml_eisaid_value("ZZZFFFF", &v));
        EXPECT_EQ(v, 0xFFFF5A6B); /* 'Z' = 26: 0b11010 11010 11010 -> 0x6B5A, digits FFFF */
        EXPECT_FALSE(aml_eisaid_value("pnp0501", &v));
        EXPECT_FALSE(aml_eisaid_value("PNP050", &v));
        EXPECT_FALSE(aml_eisaid_value("PNP05011", &v));
        EXPECT_FALSE(aml_eisaid_value("PNP05G1", &v));
        EXPECT_FALSE(aml_eisaid_value("PNP0a03", &v));
        EXPECT_FALSE(aml_eisaid_value("LNRO0005", &v));
        EXPECT_AML(aml_eisaid(&ab, "PNP0501"), 0x0C, 0x41, 0xD0, 0x05, 0x01);
        EXPECT_AML_ERR(aml_eisaid(&ab, "PNP0G01"), -KEEL_EINVAL);
}

TEST(names_and_hid)
{
        EXPECT_AML(aml_name_hid(&ab, "LNRO0005"), 0x08, '_', 'H', 'I', 'D', 0x0D, 'L', 'N', 'R',
                   'O', '0', '0', '0', '5', 0);
        EXPECT_AML(aml_name_hid(&ab, "PNP0501"), 0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x05,
                   0x01);
        EXPECT_AML(aml_name_integer(&ab, "_UID", 0), 0x08, '_', 'U', 'I', 'D', 0x00);
        EXPECT_AML(aml_name_string(&ab, "\\STR", "x"), 0x08, 0x5C, 'S', 'T', 'R', '_', 0x0D, 'x',
                   0);
}

TEST(method_returning_constant)
{
        /* iasl: Method (_STA) { Return (0x0F) } */
        EXPECT_AML(aml_method_return_integer(&ab, "_STA", 0xF), 0x14, 0x09, '_', 'S', 'T', 'A',
                   0x00, 0xA4, 0x0A, 0x0F);
        EXPECT_AML(
            {
                    struct aml_mark m = aml_method_begin(&ab, "M", 3);
                    aml_return_integer(&ab, 0x1234);
                    aml_end(&ab, m);
            },
            0x14, 0x0A, 'M', '_', '_', '_', 0x03, 0xA4, 0x0B, 0x34, 0x12);
        EXPECT_AML_ERR(
            {
                    struct aml_mark m = aml_method_begin(&ab, "M", 8);
                    aml_end(&ab, m);
            },
            -KEEL_EINVAL);
}

TEST(package_s5)
{
        /* iasl: Name (\_S5, Package () {5, 5, 0, 0}) (iasl drops the redundant root '\'). */
        EXPECT_AML(
            {
                    aml_name(&ab, "_S5");
                    struct aml_mark m = aml_package_begin(&ab, 4);
                    aml_integer(&ab, 5);
                    aml_integer(&ab, 5);
                    aml_integer(&ab, 0);
                    aml_integer(&ab, 0);
                    aml_end(&ab, m);
            },
            0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00);
        EXPECT_AML_ERR(
            {
                    struct aml_mark m = aml_package_begin(&ab, 256);
                    aml_end(&ab, m);
            },
            -KEEL_EINVAL);
}

TEST(buffer)
{
        EXPECT_AML(aml_buffer(&ab, "\x01\x02\x03", 3), 0x11, 0x06, 0x0A, 0x03, 0x01, 0x02, 0x03);
        EXPECT_AML(aml_buffer(&ab, NULL, 0), 0x11, 0x02, 0x00);
        /* A 300-byte buffer: WordConst size and a 2-byte PkgLength (1 + 3 + 300 + 2 = 305). */
        {
                static uint8_t data[300];
                struct aml a;

                memset(data, 0x5A, sizeof(data));
                aml_init(&a, out, sizeof(out));
                aml_buffer(&a, data, sizeof(data));
                EXPECT_EQ(aml_finish(&a), 306);
                EXPECT_EQ(out[0], 0x11);
                EXPECT_EQ(out[1], 0x40 | (305 & 0xF));
                EXPECT_EQ(out[2], 305 >> 4);
                EXPECT_EQ(out[3], 0x0B);
                EXPECT_EQ(out[4], 300 & 0xFF);
                EXPECT_EQ(out[5], 300 >> 8);
                EXPECT_TRUE(memcmp(out + 6, data, sizeof(data)) == 0);
        }
}

TEST(resource_descriptors)
{
        EXPECT_AML(aml_rt_memory32_fixed(&ab, true, 0xD0000000, 0x1000), 0x86, 0x09, 0x00, 0x01,
                   0x00, 0x00, 0x00, 0xD0, 0x00, 0x10, 0x00, 0x00);
        EXPECT_AML(aml_rt_memory32_fixed(&ab, false, 0x12345678, 0x9ABCDEF0), 0x86, 0x09, 0x00,
                   0x00, 0x78, 0x56, 0x34, 0x12, 0xF0, 0xDE, 0xBC, 0x9A);
        EXPECT_AML(aml_rt_io(&ab, 0x3F8, 0x3F8, 1, 8), 0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01,
                   0x08);
        EXPECT_AML(aml_rt_irq_noflags(&ab, 4), 0x22, 0x10, 0x00);
        EXPECT_AML(aml_rt_irq_noflags(&ab, 15), 0x22, 0x00, 0x80);
        EXPECT_AML_ERR(aml_rt_irq_noflags(&ab, 16), -KEEL_EINVAL);
        EXPECT_AML(aml_rt_interrupt(&ab, AML_IRQ_LEVEL, AML_IRQ_ACTIVE_HIGH, AML_IRQ_EXCLUSIVE, 5),
                   0x89, 0x06, 0x00, 0x01, 0x01, 0x05, 0x00, 0x00, 0x00);
        EXPECT_AML(
            aml_rt_interrupt(&ab, AML_IRQ_EDGE, AML_IRQ_ACTIVE_LOW, AML_IRQ_SHARED, 0x12345678),
            0x89, 0x06, 0x00, 0x0F, 0x01, 0x78, 0x56, 0x34, 0x12);
}

/* The virtio-mmio device of Keel's DSDT; iasl compiles the same ASL to these bytes. */
static void build_virtio_device(struct aml *a)
{
        struct aml_mark dev = aml_device_begin(a, "V000");
        struct aml_rt rt;

        aml_name_hid(a, "LNRO0005");
        aml_name_integer(a, "_UID", 0);
        aml_name(a, "_CRS");
        rt = aml_rt_begin(a);
        aml_rt_memory32_fixed(a, true, 0xD0000000, 0x1000);
        aml_rt_interrupt(a, AML_IRQ_LEVEL, AML_IRQ_ACTIVE_HIGH, AML_IRQ_EXCLUSIVE, 5);
        aml_rt_end(a, rt);
        aml_end(a, dev);
}

static const uint8_t virtio_device_aml[] = {
    0x5B, 0x82, 0x3A, 'V',  '0',  '0',  '0',  0x08, '_',  'H',  'I',  'D',  0x0D, 'L',  'N',
    'R',  'O',  '0',  '0',  '0',  '5',  0x00, 0x08, '_',  'U',  'I',  'D',  0x00, 0x08, '_',
    'C',  'R',  'S',  0x11, 0x1A, 0x0A, 0x17, 0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xD0,
    0x00, 0x10, 0x00, 0x00, 0x89, 0x06, 0x00, 0x01, 0x01, 0x05, 0x00, 0x00, 0x00, 0x79, 0x00};

TEST(device_with_resource_template)
{
        struct aml a;

        aml_init(&a, out, sizeof(out));
        build_virtio_device(&a);
        EXPECT_EQ(aml_finish(&a), sizeof(virtio_device_aml));
        EXPECT_TRUE(memcmp(out, virtio_device_aml, sizeof(virtio_device_aml)) == 0);
}

TEST(com1_device)
{
        /* iasl: Device (COM1) { Name (_HID, EisaId ("PNP0501")) Name (_UID, 1)
         *   Method (_STA) { Return (0x0F) } Name (_CRS, ResourceTemplate () {
         *   IO (Decode16, 0x03F8, 0x03F8, 0x01, 0x08) IRQNoFlags () {4} }) } */
        EXPECT_AML(
            {
                    struct aml_mark d = aml_device_begin(&ab, "COM1");
                    aml_name_hid(&ab, "PNP0501");
                    aml_name_integer(&ab, "_UID", 1);
                    aml_method_return_integer(&ab, "_STA", 0xF);
                    aml_name(&ab, "_CRS");
                    struct aml_rt rt = aml_rt_begin(&ab);
                    aml_rt_io(&ab, 0x3F8, 0x3F8, 1, 8);
                    aml_rt_irq_noflags(&ab, 4);
                    aml_rt_end(&ab, rt);
                    aml_end(&ab, d);
            },
            0x5B, 0x82, 0x35, 'C', 'O', 'M', '1', 0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x05,
            0x01, 0x08, '_', 'U', 'I', 'D', 0x01, 0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xA4, 0x0A,
            0x0F, 0x08, '_', 'C', 'R', 'S', 0x11, 0x10, 0x0A, 0x0D, 0x47, 0x01, 0xF8, 0x03, 0xF8,
            0x03, 0x01, 0x08, 0x22, 0x10, 0x00, 0x79, 0x00);
}

/* Scope(\_SB) holding several devices: the outer PkgLength crosses into two bytes. */
static void build_scope(struct aml *a, unsigned ndev)
{
        struct aml_mark sb = aml_scope_begin(a, "\\_SB");

        for (unsigned i = 0; i < ndev; i++)
                build_virtio_device(a);
        aml_end(a, sb);
}

TEST(nested_scope)
{
        struct aml a;
        size_t dev = sizeof(virtio_device_aml);
        size_t body = 5 + 3 * dev; /* "\_SB_" + devices */

        aml_init(&a, out, sizeof(out));
        build_scope(&a, 3);
        ASSERT_TRUE(aml_finish(&a) == (long)(1 + 2 + body));
        EXPECT_EQ(out[0], AML_SCOPE_OP);
        EXPECT_EQ(out[1], 0x40 | ((body + 2) & 0xF));
        EXPECT_EQ(out[2], (body + 2) >> 4);
        EXPECT_TRUE(memcmp(out + 3, "\\_SB_", 5) == 0);
        for (unsigned i = 0; i < 3; i++)
                EXPECT_TRUE(memcmp(out + 8 + i * dev, virtio_device_aml, dev) == 0);
}

TEST(measuring_matches_building)
{
        struct aml m, b;

        aml_init(&m, NULL, 0);
        build_scope(&m, 5);
        aml_init(&b, out, sizeof(out));
        build_scope(&b, 5);
        EXPECT_TRUE(aml_finish(&m) > 0);
        EXPECT_EQ(aml_finish(&m), aml_finish(&b));
        /* A NULL buffer with a capacity is still only measuring. */
        aml_init(&m, NULL, 100);
        build_scope(&m, 5);
        EXPECT_EQ(aml_finish(&m), aml_finish(&b));
}

TEST(overflow_reported_never_written_past)
{
        static uint8_t ref[4096], buf[4096 + 64];
        struct aml a;
        long full;

        aml_init(&a, ref, sizeof(ref));
        build_scope(&a, 3);
        aml_name_integer(&a, "\\BIG", 0x0123456789ABCDEFull);
        full = aml_finish(&a);
        ASSERT_TRUE(full > 64);

        /* Every room from 0 to one byte short: -KEEL_ENOSPC, the canary behind it intact. */
        for (long cap = 0; cap <= full; cap++) {
                memset(buf, 0xC5, sizeof(buf));
                aml_init(&a, buf, (size_t)cap);
                build_scope(&a, 3);
                aml_name_integer(&a, "\\BIG", 0x0123456789ABCDEFull);
                EXPECT_EQ(aml_length(&a), full);
                for (size_t i = (size_t)cap; i < sizeof(buf); i++) {
                        if (buf[i] != 0xC5) {
                                TEST_FAIL_AT(__FILE__, __LINE__, "cap %ld: byte %zu written", cap,
                                             i);
                                return;
                        }
                }
                if (cap < full) {
                        EXPECT_EQ(aml_finish(&a), -KEEL_ENOSPC);
                } else {
                        EXPECT_EQ(aml_finish(&a), full);
                        EXPECT_TRUE(memcmp(buf, ref, (size_t)full) == 0);
                }
        }
}

TEST(first_error_sticks)
{
        struct aml a;
        uint8_t small[4];

        aml_init(&a, small, sizeof(small));
        aml_namestring(&a, "bad");
        aml_integer(&a, 0x12345678);
        EXPECT_EQ(aml_finish(&a), -KEEL_EINVAL);

        aml_init(&a, small, sizeof(small));
        aml_integer(&a, 0x12345678);
        aml_namestring(&a, "bad");
        EXPECT_EQ(aml_finish(&a), -KEEL_ENOSPC);
}

TEST(end_with_foreign_mark)
{
        struct aml a;

        aml_init(&a, out, sizeof(out));
        aml_end(&a, (struct aml_mark){.body = 10});
        EXPECT_EQ(aml_finish(&a), -KEEL_EINVAL);
        aml_init(&a, out, sizeof(out));
        aml_rt_end(&a, (struct aml_rt){.pkg = {.body = 10}});
        EXPECT_EQ(aml_finish(&a), -KEEL_EINVAL);
}

TEST_MAIN()
