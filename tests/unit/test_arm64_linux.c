/*
 * Tests for arch/arm64/linux_boot.c: the Image header (a valid one and every refusal, each
 * with its reason), the guest RAM layout (typical, text_offset, unaligned RAM base, the exact
 * smallest RAM with and without an initrd, the 32 GiB initrd window, the 2^48 placement flag,
 * overflowing and bad requests), and the VM's device tree: decompiled by dtc, which must exit
 * 0 without a warning, and checked node by node; bad VM descriptions and a short buffer.
 */
#include <unistd.h>

#include <arch/arm64_linux.h>
#include <keel/errno.h>
#include <vmm/fdt.h>

#include "test.h"
#include <keel/le.h>

#define KiB      1024ull
#define MiB      (1024ull * 1024)
#define GiB      (1024ull * MiB)
#define RAM_BASE 0x40000000ull

static uint8_t img[256 * KiB];

/* A header as Linux 6.1 writes it: EFI "MZ" stub branch, LE, 4K pages, placement anywhere. */
static void make_image(uint64_t text_offset, uint64_t image_size, uint64_t flags)
{
        memset(img, 0, sizeof(img));
        img[0] = 'M';
        img[1] = 'Z';
        put_le(img + 8, text_offset, 8);
        put_le(img + 16, image_size, 8);
        put_le(img + 24, flags, 8);
        memcpy(img + 0x38, "ARM\x64", 4);
        put_le(img + 0x3c, 0x40, 4); /* PE header offset */
}

TEST(image_parse_valid)
{
        struct arm64_image_info info;
        const char *why = "untouched";

        make_image(0, 34 * MiB, 0xa); /* 4K pages, bit 3 */
        ASSERT_TRUE(arm64_image_parse(img, sizeof(img), &info, &why) == 0);
        EXPECT_STREQ(why, "untouched");
        EXPECT_EQ(info.file_size, sizeof(img));
        EXPECT_EQ(info.text_offset, 0);
        EXPECT_EQ(info.image_size, 34 * MiB);
        EXPECT_EQ(info.flags, 0xa);
        EXPECT_EQ(info.page_size, 4096);
        EXPECT_TRUE(info.phys_any);

        make_image(0x80000, sizeof(img), 0); /* image_size == file size is fine */
        ASSERT_TRUE(arm64_image_parse(img, sizeof(img), &info, NULL) == 0);
        EXPECT_EQ(info.text_offset, 0x80000);
        EXPECT_EQ(info.page_size, 0);
        EXPECT_FALSE(info.phys_any);

        make_image(0, 1 * MiB, 4);
        ASSERT_TRUE(arm64_image_parse(img, 64, &info, NULL) == 0); /* just the header */
        EXPECT_EQ(info.page_size, 16384);
        make_image(0, 1 * MiB, 6 | (1ull << 63)); /* reserved bits are ignored */
        ASSERT_TRUE(arm64_image_parse(img, 64, &info, NULL) == 0);
        EXPECT_EQ(info.page_size, 65536);
}

/* Parses img[0, size) expecting a refusal whose reason contains `reason`. */
static void expect_refused(uint64_t size, const char *reason, int line)
{
        struct arm64_image_info info;
        const char *why = NULL;
        int rc;

        memset(&info, 0x77, sizeof(info));
        rc = arm64_image_parse(img, size, &info, &why);
        if (rc != -KEEL_EINVAL)
                TEST_FAIL_AT(__FILE__, line, "rc %d, expected -KEEL_EINVAL", rc);
        if (!why || !strstr(why, reason))
                TEST_FAIL_AT(__FILE__, line, "reason \"%s\" lacks \"%s\"", why ? why : "(null)",
                             reason);
        if (info.file_size != 0x7777777777777777ull)
                TEST_FAIL_AT(__FILE__, line, "*out written on refusal");
        EXPECT_EQ(arm64_image_parse(img, size, &info, NULL), -KEEL_EINVAL); /* why optional */
}

TEST(image_parse_refusals)
{
        make_image(0, 1 * MiB, 0);
        expect_refused(63, "shorter than the 64-byte", __LINE__);
        expect_refused(0, "shorter than the 64-byte", __LINE__);
        EXPECT_EQ(arm64_image_parse(NULL, 64, &(struct arm64_image_info){0}, NULL), -KEEL_EINVAL);

        make_image(0, 1 * MiB, 0);
        img[0x3b] = 0x65;
        expect_refused(sizeof(img), "magic", __LINE__);
        memset(img, 0, 64); /* e.g. a gzip'd vmlinuz has no magic either */
        expect_refused(sizeof(img), "magic", __LINE__);

        make_image(0, 1 * MiB, 1);
        expect_refused(sizeof(img), "big-endian", __LINE__);
        make_image(0, 1 * MiB, 0xb);
        expect_refused(sizeof(img), "big-endian", __LINE__);

        make_image(0x80000, 0, 0);
        expect_refused(sizeof(img), "image_size is 0", __LINE__);

        make_image(0, sizeof(img) - 1, 0);
        expect_refused(sizeof(img), "smaller than the file", __LINE__);

        make_image(0, UINT64_MAX, 0);
        expect_refused(sizeof(img), "overflow", __LINE__);
        make_image(UINT64_MAX - 2 * MiB, 1 * MiB, 0);
        expect_refused(sizeof(img), "overflow", __LINE__);
}

/* ---- layout ---- */

static struct arm64_image_info kernel(uint64_t text_offset, uint64_t image_size)
{
        return (struct arm64_image_info){.file_size = image_size - image_size / 8,
                                         .text_offset = text_offset,
                                         .image_size = image_size,
                                         .page_size = 4096};
}

static int plan(uint64_t base, uint64_t size, const struct arm64_image_info *im, uint64_t initrd,
                uint64_t dtb, struct arm64_layout *l, const char **why)
{
        struct arm64_layout_req req = {.ram_base = base,
                                       .ram_size = size,
                                       .image = im,
                                       .initrd_size = initrd,
                                       .dtb_size = dtb};

        memset(l, 0x55, sizeof(*l));
        *why = NULL;
        return arm64_linux_plan(&req, l, why);
}

/* The booting.rst rules, for any successful plan. */
static void check_rules(const struct arm64_layout_req *req, const struct arm64_layout *l)
{
        uint64_t ram_end = req->ram_base + req->ram_size;

        EXPECT_EQ(l->kernel_base % (2 * MiB), 0);
        EXPECT_TRUE(l->kernel_base >= req->ram_base);
        EXPECT_EQ(l->kernel_entry, l->kernel_base + req->image->text_offset);
        EXPECT_EQ(l->kernel_end, l->kernel_entry + req->image->image_size);
        EXPECT_EQ(l->dtb % 8, 0);
        EXPECT_EQ(l->dtb_end, l->dtb + req->dtb_size);
        EXPECT_TRUE(l->dtb >= l->kernel_end);
        EXPECT_TRUE(l->dtb_end <= ram_end);
        EXPECT_EQ(l->dtb / (2 * MiB), (l->dtb_end - 1) / (2 * MiB)); /* one 2 MiB block */
        if (req->initrd_size) {
                EXPECT_EQ(l->initrd_start % 4096, 0);
                EXPECT_EQ(l->initrd_end, l->initrd_start + req->initrd_size);
                EXPECT_TRUE(l->initrd_start >= l->kernel_end);
                EXPECT_TRUE(l->initrd_end <= l->dtb);
                /* One 1 GiB aligned window of at most 32 GiB holds kernel and initrd. */
                EXPECT_TRUE(l->initrd_end - (l->kernel_base & ~(GiB - 1)) <= 32 * GiB);
        } else {
                EXPECT_EQ(l->initrd_start, 0);
                EXPECT_EQ(l->initrd_end, 0);
        }
}

static void plan_ok(uint64_t base, uint64_t size, const struct arm64_image_info *im,
                    uint64_t initrd, uint64_t dtb, struct arm64_layout *l)
{
        struct arm64_layout_req req = {.ram_base = base,
                                       .ram_size = size,
                                       .image = im,
                                       .initrd_size = initrd,
                                       .dtb_size = dtb};
        const char *why = NULL;
        int rc = plan(base, size, im, initrd, dtb, l, &why);

        if (rc) {
                TEST_FAIL_AT(__FILE__, __LINE__, "plan refused (%d): %s", rc, why ? why : "");
                return;
        }
        check_rules(&req, l);
}

TEST(layout_typical)
{
        struct arm64_image_info im = kernel(0, 34 * MiB);
        struct arm64_layout l;

        plan_ok(RAM_BASE, 128 * MiB, &im, 10 * MiB + 5, 64 * KiB, &l);
        EXPECT_EQ(l.kernel_base, 0x40000000);
        EXPECT_EQ(l.kernel_entry, 0x40000000);
        EXPECT_EQ(l.kernel_end, 0x42200000);
        EXPECT_EQ(l.dtb, 0x47e00000);
        EXPECT_EQ(l.dtb_end, 0x47e10000);
        EXPECT_EQ(l.initrd_start, 0x473ff000);
        EXPECT_EQ(l.initrd_end, 0x47dff005);

        plan_ok(RAM_BASE, 128 * MiB, &im, 0, ARM64_LINUX_DTB_MAX, &l); /* a 2 MiB DTB */
        EXPECT_EQ(l.dtb, 0x47e00000);
        EXPECT_EQ(l.dtb_end, 0x48000000);

        /* text_offset 0x80000 (kernels before 5.8), RAM not 2 MiB aligned, odd RAM end. */
        im = kernel(0x80000, 20 * MiB);
        plan_ok(RAM_BASE + 0x1000, 64 * MiB + 0x3000, &im, 1 * MiB, 64 * KiB, &l);
        EXPECT_EQ(l.kernel_base, 0x40200000);
        EXPECT_EQ(l.kernel_entry, 0x40280000);
        EXPECT_EQ(l.kernel_end, 0x41680000);
        EXPECT_EQ(l.dtb, 0x43e00000);
        EXPECT_EQ(l.initrd_start, 0x43d00000);
        EXPECT_EQ(l.initrd_end, 0x43e00000);
}

TEST(layout_smallest_ram)
{
        struct arm64_image_info im = kernel(0, 34 * MiB);
        struct arm64_layout l;
        const char *why;

        /* Kernel to 0x42200000, then the DTB in the next 2 MiB block. */
        plan_ok(RAM_BASE, 0x2210000, &im, 0, 64 * KiB, &l);
        EXPECT_EQ(l.dtb, 0x42200000);
        EXPECT_EQ(plan(RAM_BASE, 0x220ffff, &im, 0, 64 * KiB, &l, &why), -KEEL_ENOMEM);
        EXPECT_CONTAINS(why, "too small");

        /* An initrd must fit between the kernel and the DTB's block. */
        EXPECT_EQ(plan(RAM_BASE, 0x2210000, &im, 1, 64 * KiB, &l, &why), -KEEL_ENOMEM);
        EXPECT_CONTAINS(why, "initrd");
        plan_ok(RAM_BASE, 0x2410000, &im, 2 * MiB, 64 * KiB, &l);
        EXPECT_EQ(l.initrd_start, 0x42200000);
        EXPECT_EQ(l.initrd_end, 0x42400000);
        EXPECT_EQ(l.dtb, 0x42400000);
        EXPECT_EQ(plan(RAM_BASE, 0x2410000, &im, 2 * MiB + 1, 64 * KiB, &l, &why), -KEEL_ENOMEM);

        /* Not even the kernel. */
        EXPECT_EQ(plan(RAM_BASE, 34 * MiB - 1, &im, 0, 64 * KiB, &l, &why), -KEEL_ENOMEM);
        EXPECT_CONTAINS(why, "image_size");
        /* No 2 MiB boundary inside RAM. */
        EXPECT_EQ(plan(RAM_BASE + 1, 2 * MiB - 1, &im, 0, 64 * KiB, &l, &why), -KEEL_ENOMEM);
        /* RAM smaller than the DTB. */
        im = kernel(0, 64 * KiB);
        EXPECT_EQ(plan(0, 1 * MiB, &im, 0, 2 * MiB, &l, &why), -KEEL_ENOMEM);
        EXPECT_EQ(l.kernel_base, 0x5555555555555555ull); /* *out untouched */
}

TEST(layout_initrd_window)
{
        struct arm64_image_info im = kernel(0, 34 * MiB);
        struct arm64_layout l;
        const char *why;

        /* 64 GiB of RAM: the DTB at the top, the initrd below 1 GiB + 32 GiB. */
        plan_ok(RAM_BASE, 64 * GiB, &im, 16 * MiB, 64 * KiB, &l);
        EXPECT_EQ(l.dtb, 0x103fe00000);
        EXPECT_EQ(l.initrd_start, 0x83f000000);
        EXPECT_EQ(l.initrd_end, 0x840000000);

        /* A (made-up) kernel reaching past the window leaves no room for an initrd. */
        im = kernel(0, 33 * GiB);
        plan_ok(RAM_BASE, 64 * GiB, &im, 0, 64 * KiB, &l);
        EXPECT_EQ(plan(RAM_BASE, 64 * GiB, &im, 4096, 64 * KiB, &l, &why), -KEEL_ENOMEM);
        EXPECT_CONTAINS(why, "32 GiB window");
}

TEST(layout_phys_any_below_2_48)
{
        struct arm64_image_info im = kernel(0, 34 * MiB);
        struct arm64_layout l;
        const char *why;

        plan_ok(1ull << 48, 1 * GiB, &im, 0, 64 * KiB, &l); /* bit 3 clear: anywhere */
        im.phys_any = true;
        EXPECT_EQ(plan(1ull << 48, 1 * GiB, &im, 0, 64 * KiB, &l, &why), -KEEL_ENOMEM);
        EXPECT_CONTAINS(why, "2^48");
        plan_ok((1ull << 48) - 64 * MiB, 1 * GiB, &im, 0, 64 * KiB, &l);
        EXPECT_TRUE(l.kernel_end <= 1ull << 48);
}

TEST(layout_overflow_and_bad_requests)
{
        struct arm64_image_info im = kernel(0, 34 * MiB);
        struct arm64_layout l;
        struct arm64_layout_req req = {.ram_base = RAM_BASE, .ram_size = GiB, .dtb_size = 4096};
        const char *why;

        /* RAM wrapping around, empty RAM. */
        EXPECT_EQ(plan(UINT64_MAX - 0xfff, 0x1000, &im, 0, 64 * KiB, &l, &why), -KEEL_EINVAL);
        EXPECT_EQ(plan(RAM_BASE, UINT64_MAX, &im, 0, 64 * KiB, &l, &why), -KEEL_EINVAL);
        EXPECT_EQ(plan(RAM_BASE, 0, &im, 0, 64 * KiB, &l, &why), -KEEL_EINVAL);
        /* RAM right at the top of the address space: the 2 MiB round-up overflows. */
        EXPECT_EQ(plan(UINT64_MAX - 2 * MiB + 2, 2 * MiB - 2, &im, 0, 64 * KiB, &l, &why),
                  -KEEL_ENOMEM);
        /* ... but RAM ending at 2^64 - 1 that holds everything works. */
        im = kernel(0, 64 * KiB);
        plan_ok(UINT64_MAX - 4 * MiB + 1, 4 * MiB - 1, &im, 4096, 64 * KiB, &l);
        EXPECT_EQ(l.dtb, UINT64_MAX - 2 * MiB + 1);

        /* Header values no parse would accept, straight into the planner. */
        im = kernel(UINT64_MAX - 5, 34 * MiB);
        EXPECT_EQ(plan(RAM_BASE, GiB, &im, 0, 64 * KiB, &l, &why), -KEEL_ENOMEM);
        im = kernel(0, UINT64_MAX);
        EXPECT_EQ(plan(RAM_BASE, GiB, &im, 0, 64 * KiB, &l, &why), -KEEL_ENOMEM);
        im = kernel(0, 34 * MiB);
        im.file_size = UINT64_MAX;
        EXPECT_EQ(plan(RAM_BASE, GiB, &im, 0, 64 * KiB, &l, &why), -KEEL_ENOMEM);

        /* Initrd sizes that wrap. */
        im = kernel(0, 34 * MiB);
        EXPECT_EQ(plan(RAM_BASE, GiB, &im, UINT64_MAX, 64 * KiB, &l, &why), -KEEL_ENOMEM);
        EXPECT_EQ(plan(RAM_BASE, GiB, &im, UINT64_MAX - 4095, 64 * KiB, &l, &why), -KEEL_ENOMEM);

        /* DTB size 0, above 2 MiB, wrapping. */
        EXPECT_EQ(plan(RAM_BASE, GiB, &im, 0, 0, &l, &why), -KEEL_EINVAL);
        EXPECT_EQ(plan(RAM_BASE, GiB, &im, 0, 2 * MiB + 1, &l, &why), -KEEL_EINVAL);
        EXPECT_CONTAINS(why, "2 MiB");
        EXPECT_EQ(plan(RAM_BASE, GiB, &im, 0, UINT64_MAX, &l, &why), -KEEL_EINVAL);

        /* No image; the reason is optional. */
        EXPECT_EQ(arm64_linux_plan(&req, &l, NULL), -KEEL_EINVAL);
}

/* ---- the device tree ---- */

static struct arm64_linux_vm sample_vm(void)
{
        struct arm64_linux_vm vm = {
            .ram_base = RAM_BASE,
            .ram_size = 256 * MiB,
            .vcpus = 2,
            .cmdline = "console=ttyAMA0",
            .initrd_start = 0x4f000000,
            .initrd_end = 0x4f123456,
            .gicd_base = 0x8000000,
            .gicd_size = 0x10000,
            .gicr_base = 0x80a0000,
            .gicr_size = 0xf60000,
            .uart = {.base = 0x9000000, .size = 0x1000, .spi = 1},
            .virtio_count = 2,
            .virtio = {{.base = 0xa000000, .size = 0x200, .spi = 16},
                       {.base = 0xa000200, .size = 0x200, .spi = 17}},
        };

        return vm;
}

static char dts[32768];
static char dtc_err[4096];

/* Decompiles blob[0, size) with dtc into dts[] (stderr into dtc_err[]); dtc's exit status. */
static int decompile(const void *blob, size_t size)
{
        char dtb[] = "/tmp/keel-test-arm64-dtb-XXXXXX";
        char cmd[256], errpath[64];
        FILE *fp;
        size_t n;
        int fd, status;

        dts[0] = dtc_err[0] = '\0';
        fd = mkstemp(dtb);
        if (fd < 0)
                return -1;
        if (write(fd, blob, size) != (ssize_t)size) {
                close(fd);
                unlink(dtb);
                return -1;
        }
        close(fd);
        snprintf(errpath, sizeof(errpath), "%s.err", dtb);
        snprintf(cmd, sizeof(cmd), "dtc -I dtb -O dts '%s' 2>'%s'", dtb, errpath);
        fp = popen(cmd, "r");
        if (!fp) {
                unlink(dtb);
                return -1;
        }
        n = fread(dts, 1, sizeof(dts) - 1, fp);
        dts[n] = '\0';
        status = pclose(fp);
        fp = fopen(errpath, "r");
        if (fp) {
                n = fread(dtc_err, 1, sizeof(dtc_err) - 1, fp);
                dtc_err[n] = '\0';
                fclose(fp);
        }
        unlink(errpath);
        unlink(dtb);
        return status;
}

/* The text of node `name` in dts[] up to its closing "};" (nodes here have no children but
 * cpus, whose cpu@N nodes come first), or "" if absent. */
static const char *node_text(const char *name, char *out, size_t n)
{
        char open[64];
        const char *s, *e;

        snprintf(open, sizeof(open), "\t%s {\n", name);
        s = strstr(dts, open);
        out[0] = '\0';
        if (!s)
                return out;
        e = strstr(s, "\n\t};\n");
        if (!e || (size_t)(e - s) >= n)
                return out;
        memcpy(out, s, (size_t)(e - s));
        out[e - s] = '\0';
        return out;
}

TEST(vm_fdt_decompiles_cleanly)
{
        static uint8_t blob[ARM64_LINUX_DTB_SIZE];
        struct arm64_linux_vm vm = sample_vm();
        const char *why = NULL;
        char node[2048];
        size_t size = 0;

        ASSERT_TRUE(arm64_linux_fdt(&vm, blob, sizeof(blob), &size, &why) == 0);
        EXPECT_TRUE(size > 40 && size < sizeof(blob));
        EXPECT_EQ(decompile(blob, size), 0);
        EXPECT_STREQ(dtc_err, "");
        if (getenv("KEEL_TEST_VERBOSE"))
                fputs(dts, stderr);

        /* Root. */
        EXPECT_CONTAINS(dts, "/ {\n\t#address-cells = <0x02>;\n\t#size-cells = <0x02>;\n");
        EXPECT_CONTAINS(dts, "\tcompatible = \"linux,dummy-virt\";\n");
        EXPECT_CONTAINS(dts, "\tmodel = \"");
        EXPECT_CONTAINS(dts, "\tinterrupt-parent = <0x01>;\n");

        EXPECT_CONTAINS(node_text("memory@40000000", node, sizeof(node)),
                        "device_type = \"memory\";\n\t\treg = <0x00 0x40000000 0x00 0x10000000>;");

        node_text("cpus", node, sizeof(node));
        EXPECT_CONTAINS(node, "#address-cells = <0x01>;\n\t\t#size-cells = <0x00>;");
        EXPECT_CONTAINS(node, "cpu@0 {\n\t\t\tdevice_type = \"cpu\";\n\t\t\tcompatible = "
                              "\"arm,armv8\";\n\t\t\treg = <0x00>;\n\t\t\tenable-method = "
                              "\"psci\";\n\t\t};");
        EXPECT_CONTAINS(node, "cpu@1 {");
        EXPECT_CONTAINS(node, "reg = <0x01>;");
        EXPECT_FALSE(strstr(dts, "cpu@2"));

        node_text("psci", node, sizeof(node));
        EXPECT_CONTAINS(node, "compatible = \"arm,psci-1.0\\0arm,psci-0.2\";");
        EXPECT_CONTAINS(node, "method = \"hvc\";");

        node_text("intc@8000000", node, sizeof(node));
        EXPECT_CONTAINS(node, "compatible = \"arm,gic-v3\";");
        EXPECT_CONTAINS(node, "#interrupt-cells = <0x03>;");
        EXPECT_CONTAINS(node, "interrupt-controller;");
        EXPECT_CONTAINS(node, "#address-cells = <0x00>;");
        EXPECT_CONTAINS(node, "reg = <0x00 0x8000000 0x00 0x10000 0x00 0x80a0000 0x00 0xf60000>;");
        EXPECT_CONTAINS(node, "#redistributor-regions = <0x01>;");
        EXPECT_CONTAINS(node, "phandle = <0x01>;");

        node_text("timer", node, sizeof(node));
        EXPECT_CONTAINS(node, "compatible = \"arm,armv8-timer\";");
        EXPECT_CONTAINS(node, "interrupts = <0x01 0x0d 0x04 0x01 0x0e 0x04 0x01 0x0b 0x04 0x01 "
                              "0x0a 0x04>;");
        EXPECT_CONTAINS(node, "always-on;");

        node_text("apb-pclk", node, sizeof(node));
        EXPECT_CONTAINS(node, "compatible = \"fixed-clock\";");
        EXPECT_CONTAINS(node, "#clock-cells = <0x00>;");
        EXPECT_CONTAINS(node, "clock-frequency = <0x16e3600>;");
        EXPECT_CONTAINS(node, "clock-output-names = \"clk24mhz\";");
        EXPECT_CONTAINS(node, "phandle = <0x02>;");

        node_text("pl011@9000000", node, sizeof(node));
        EXPECT_CONTAINS(node, "compatible = \"arm,pl011\\0arm,primecell\";");
        EXPECT_CONTAINS(node, "reg = <0x00 0x9000000 0x00 0x1000>;");
        EXPECT_CONTAINS(node, "interrupts = <0x00 0x01 0x04>;");
        EXPECT_CONTAINS(node, "clock-names = \"uartclk\\0apb_pclk\";");
        EXPECT_CONTAINS(node, "clocks = <0x02 0x02>;");

        node_text("virtio_mmio@a000000", node, sizeof(node));
        EXPECT_CONTAINS(node, "compatible = \"virtio,mmio\";");
        EXPECT_CONTAINS(node, "reg = <0x00 0xa000000 0x00 0x200>;");
        EXPECT_CONTAINS(node, "interrupts = <0x00 0x10 0x04>;");
        EXPECT_CONTAINS(node, "dma-coherent;");
        node_text("virtio_mmio@a000200", node, sizeof(node));
        EXPECT_CONTAINS(node, "reg = <0x00 0xa000200 0x00 0x200>;");
        EXPECT_CONTAINS(node, "interrupts = <0x00 0x11 0x04>;");

        node_text("chosen", node, sizeof(node));
        EXPECT_CONTAINS(node, "bootargs = \"console=ttyAMA0\";");
        EXPECT_CONTAINS(node, "stdout-path = \"/pl011@9000000\";");
        EXPECT_CONTAINS(node, "linux,initrd-start = <0x00 0x4f000000>;");
        EXPECT_CONTAINS(node, "linux,initrd-end = <0x00 0x4f123456>;");
}

TEST(vm_fdt_variants)
{
        static uint8_t blob[ARM64_LINUX_DTB_SIZE];
        struct arm64_linux_vm vm = sample_vm();
        char node[2048];
        size_t size = 0;

        /* No initrd, no command line, no virtio, 16 vCPUs, high addresses in hex. */
        vm.initrd_start = vm.initrd_end = 0x4f000000;
        vm.cmdline = NULL;
        vm.virtio_count = 0;
        vm.vcpus = ARM64_LINUX_MAX_VCPUS;
        vm.gicr_size = ARM64_LINUX_MAX_VCPUS * ARM64_LINUX_GICR_STRIDE;
        vm.ram_base = 0x8000000000ull;
        vm.ram_size = 0x100000000ull;
        vm.uart.base = 0x9abcdef000ull;
        vm.uart.spi = ARM64_LINUX_SPI_MAX;
        ASSERT_TRUE(arm64_linux_fdt(&vm, blob, sizeof(blob), &size, NULL) == 0);
        EXPECT_EQ(decompile(blob, size), 0);
        EXPECT_STREQ(dtc_err, "");
        EXPECT_FALSE(strstr(dts, "initrd"));
        EXPECT_FALSE(strstr(dts, "virtio"));
        EXPECT_CONTAINS(dts, "cpu@f {");
        EXPECT_CONTAINS(dts, "reg = <0x0f>;");
        /* 64 vCPUs: cpu@<MPIDR>, Aff0 0..15 and Aff1 above 16 (vgic_vcpu_mpidr). */
        EXPECT_CONTAINS(dts, "cpu@100 {");
        EXPECT_CONTAINS(dts, "reg = <0x100>;");
        EXPECT_CONTAINS(dts, "cpu@30f {");
        EXPECT_CONTAINS(dts, "reg = <0x30f>;");
        EXPECT_FALSE(strstr(dts, "cpu@10 {")); /* no Aff0 16 */
        EXPECT_FALSE(strstr(dts, "cpu@40 {")); /* no vCPU 64 */
        {
                unsigned cpus = 0;

                for (const char *p = dts; (p = strstr(p, "device_type = \"cpu\"")); p++)
                        cpus++;
                EXPECT_EQ(cpus, 64);
        }
        EXPECT_CONTAINS(node_text("memory@8000000000", node, sizeof(node)),
                        "reg = <0x80 0x00 0x01 0x00>;");
        EXPECT_CONTAINS(node_text("pl011@9abcdef000", node, sizeof(node)),
                        "interrupts = <0x00 0x3db 0x04>;");
        node_text("chosen", node, sizeof(node));
        EXPECT_CONTAINS(node, "bootargs = [00];"); /* an empty string */
        EXPECT_CONTAINS(node, "stdout-path = \"/pl011@9abcdef000\";");

        /* Eight virtio devices, a long command line. */
        vm = sample_vm();
        vm.virtio_count = ARM64_LINUX_MAX_VIRTIO;
        for (unsigned i = 0; i < ARM64_LINUX_MAX_VIRTIO; i++)
                vm.virtio[i] = (struct arm64_linux_mmio_dev){
                    .base = 0xa000000 + 0x200 * i, .size = 0x200, .spi = 16 + i};
        {
                static char cmdline[2048];

                memset(cmdline, 'x', sizeof(cmdline) - 1);
                memcpy(cmdline, "console=ttyAMA0 ", 16);
                vm.cmdline = cmdline;
                ASSERT_TRUE(arm64_linux_fdt(&vm, blob, sizeof(blob), &size, NULL) == 0);
        }
        EXPECT_EQ(decompile(blob, size), 0);
        EXPECT_STREQ(dtc_err, "");
        EXPECT_CONTAINS(dts, "virtio_mmio@a000e00 {");
        EXPECT_CONTAINS(dts, "interrupts = <0x00 0x17 0x04>;");
        EXPECT_CONTAINS(dts, "bootargs = \"console=ttyAMA0 xxxx");
}

TEST(vm_fdt_short_buffer)
{
        static uint8_t blob[ARM64_LINUX_DTB_SIZE];
        struct arm64_linux_vm vm = sample_vm();
        size_t full = 0, size;
        const char *why = NULL;

        ASSERT_TRUE(arm64_linux_fdt(&vm, blob, sizeof(blob), &full, NULL) == 0);
        for (size_t cap = 0; cap < full; cap += 97) {
                size = 1;
                EXPECT_EQ(arm64_linux_fdt(&vm, blob, cap, &size, &why), -KEEL_ENOSPC);
                EXPECT_EQ(size, 1);
        }
        EXPECT_EQ(arm64_linux_fdt(&vm, blob, full - 1, &size, &why), -KEEL_ENOSPC);
        EXPECT_CONTAINS(why, "does not fit");
        EXPECT_EQ(arm64_linux_fdt(&vm, blob, full, &size, &why), 0);
        EXPECT_EQ(size, full);
}

TEST(vm_fdt_bad_descriptions)
{
        static uint8_t blob[ARM64_LINUX_DTB_SIZE];
        struct arm64_linux_vm vm;
        size_t size = 5;
        const char *why;

#define EXPECT_BAD(change, reason)                                                              \
        do {                                                                                    \
                vm = sample_vm();                                                               \
                change;                                                                         \
                why = NULL;                                                                     \
                EXPECT_EQ(arm64_linux_fdt(&vm, blob, sizeof(blob), &size, &why), -KEEL_EINVAL); \
                EXPECT_CONTAINS(why ? why : "", reason);                                        \
        } while (0)

        EXPECT_BAD(vm.vcpus = 0, "vCPUs");
        EXPECT_BAD(vm.vcpus = ARM64_LINUX_MAX_VCPUS + 1, "vCPUs");
        EXPECT_BAD(vm.ram_size = 0, "RAM");
        EXPECT_BAD(vm.ram_base = UINT64_MAX, "RAM");
        EXPECT_BAD(vm.gicd_size = 0, "GIC");
        EXPECT_BAD(vm.gicr_base = UINT64_MAX - 0x1000, "GIC");
        EXPECT_BAD((vm.vcpus = 4, vm.gicr_size = 4 * ARM64_LINUX_GICR_STRIDE - 1), "128 KiB");
        EXPECT_BAD(vm.uart.size = 0, "PL011");
        EXPECT_BAD(vm.uart.spi = ARM64_LINUX_SPI_MAX + 1, "PL011");
        EXPECT_BAD(vm.virtio_count = ARM64_LINUX_MAX_VIRTIO + 1, "virtio");
        EXPECT_BAD(vm.virtio[1].size = 0, "virtio");
        EXPECT_BAD(vm.virtio[1].spi = 1000, "virtio");
        EXPECT_BAD(vm.initrd_end = vm.initrd_start - 1, "initrd");
#undef EXPECT_BAD
        EXPECT_EQ(size, 5);

        /* Unused virtio slots are not looked at. */
        vm = sample_vm();
        vm.virtio[5].size = 0;
        EXPECT_EQ(arm64_linux_fdt(&vm, blob, sizeof(blob), &size, NULL), 0);
}

TEST_MAIN()
