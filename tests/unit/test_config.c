/*
 * Tests for the config parser (vmm/config.c, docs/config.md): the documented example, every
 * error and its message, line ends, comments, numbers, limits, quoting, NUL bytes, and every
 * truncation of a valid file.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keel/check.h>
#include <keel/errno.h>
#include <keel/sched.h>
#include <vmm/config.h>

#include "test.h"

#define FILE_NAME "keel.cfg"

#define TEST_VMS 100
static struct vm_config cfg_vms[TEST_VMS];
static struct keel_config cfg = {.vms = cfg_vms, .vm_max = TEST_VMS};
static char err[CONFIG_ERR_MAX];

/* Parses from an exact-size heap copy, so ASan sees any read past the end. */
static int parse(const char *text, size_t len)
{
        char *copy = malloc(len ? len : 1);
        int r;

        if (!copy)
                abort();
        memcpy(copy, text, len);
        memset(err, 'X', sizeof(err));
        r = config_parse(copy, len, FILE_NAME, &cfg, err, sizeof(err));
        free(copy);
        return r;
}

static int parse_str(const char *text)
{
        return parse(text, strlen(text));
}

/* Path of a file in the source tree: KEEL_SOURCE_DIR if the build defines it, else derived
 * from this file's own path (CMake compiles with absolute paths). */
static void source_path(char *buf, size_t n, const char *rel)
{
#ifdef KEEL_SOURCE_DIR
        snprintf(buf, n, "%s/%s", KEEL_SOURCE_DIR, rel);
#else
        const char *self = __FILE__;
        const char *tail = strstr(self, "tests/unit/test_config.c");
        int dir = tail ? (int)(tail - self) : 0;

        snprintf(buf, n, "%.*s%s", dir, self, rel);
#endif
}

static char *read_source_file(const char *rel, size_t *len)
{
        char path[1024];
        FILE *f;
        char *buf;
        long n;

        source_path(path, sizeof(path), rel);
        f = fopen(path, "rb");
        if (!f) {
                fprintf(stderr, "cannot open %s\n", path);
                return NULL;
        }
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc((size_t)n + 1);
        if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
                fclose(f);
                free(buf);
                return NULL;
        }
        fclose(f);
        buf[n] = '\0';
        *len = (size_t)n;
        return buf;
}

/* Replaces every LF with CRLF; the caller frees. */
static char *to_crlf(const char *text, size_t len, size_t *out_len)
{
        char *out = malloc(2 * len + 1);
        size_t o = 0;

        if (!out)
                abort();
        for (size_t i = 0; i < len; i++) {
                if (text[i] == '\n')
                        out[o++] = '\r';
                out[o++] = text[i];
        }
        out[o] = '\0';
        *out_len = o;
        return out;
}

static bool name_ok(const char *s)
{
        size_t n = strnlen(s, VM_NAME_MAX);

        if (n == 0 || n >= VM_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-'))
                        return false;
        }
        return true;
}

/* What every successfully parsed config must satisfy. */
static void check_invariants(const struct keel_config *c)
{
        EXPECT_TRUE(c->vm_count >= 1 && c->vm_count <= c->vm_max);
        EXPECT_TRUE(c->log_level <= LOG_LEVEL_DEBUG);
        EXPECT_TRUE(c->finish == FINISH_HALT || c->finish == FINISH_DEBUG_EXIT);
        for (unsigned i = 0; i < c->vm_count && i < c->vm_max; i++) {
                const struct vm_config *v = &c->vms[i];
                size_t il = strnlen(v->image, CONFIG_PATH_MAX);

                EXPECT_TRUE(name_ok(v->name));
                for (unsigned j = 0; j < i; j++)
                        EXPECT_TRUE(strcmp(v->name, c->vms[j].name) != 0);
                EXPECT_TRUE(v->line > 0);
                EXPECT_TRUE(v->memory >= (2ull << 20) && v->memory <= (64ull << 30));
                EXPECT_EQ(v->memory % (2ull << 20), 0);
                /* Exactly one of image and kernel. */
                EXPECT_TRUE((il > 0) != (v->kernel[0] != '\0'));
                EXPECT_TRUE(il < CONFIG_PATH_MAX);
                EXPECT_TRUE(v->image[0] != '/' && !strstr(v->image, ".."));
                EXPECT_TRUE(v->format <= IMAGE_ELF);
                if (v->format == IMAGE_ELF)
                        EXPECT_TRUE(!v->has_load && !v->has_entry);
                EXPECT_TRUE(v->load < v->memory && v->entry < v->memory);
                if (!v->has_entry)
                        EXPECT_EQ(v->entry, v->load);
                EXPECT_FALSE(v->has_expect_exit && v->has_expect_stop);
                if (v->has_expect_stop)
                        EXPECT_TRUE(v->expect_stop > VM_STOP_EXIT &&
                                    v->expect_stop < VM_STOP_REASON_COUNT);
                EXPECT_TRUE(v->weight >= SCHED_WEIGHT_MIN && v->weight <= SCHED_WEIGHT_MAX);
                EXPECT_TRUE(v->cpu == SCHED_NO_PIN ||
                            (v->cpu >= 0 && v->cpu <= KEEL_CPU_INDEX_MAX));
                EXPECT_TRUE(v->vcpus >= 1 && v->vcpus <= CONFIG_VCPUS_MAX);
        }
}

/* err is "keel.cfg:<line>: ..." and contains each of the NULL-terminated words. */
static void check_err_at(const char *file, int src_line, int r, unsigned line, ...)
{
        char prefix[32];
        va_list ap;
        const char *w;

        if (r >= 0) {
                TEST_FAIL_AT(file, src_line, "parse succeeded, expected an error at line %u", line);
                return;
        }
        if (r != -KEEL_EINVAL)
                TEST_FAIL_AT(file, src_line, "returned %d, expected -KEEL_EINVAL", r);
        if (!memchr(err, '\0', sizeof(err))) {
                TEST_FAIL_AT(file, src_line, "error message not NUL-terminated");
                return;
        }
        if (strchr(err, '\n'))
                TEST_FAIL_AT(file, src_line, "error message has a newline: \"%s\"", err);
        snprintf(prefix, sizeof(prefix), FILE_NAME ":%u: ", line);
        if (strncmp(err, prefix, strlen(prefix)) != 0)
                TEST_FAIL_AT(file, src_line, "\"%s\" does not start with \"%s\"", err, prefix);
        va_start(ap, line);
        while ((w = va_arg(ap, const char *)) != NULL)
                if (!strstr(err, w))
                        TEST_FAIL_AT(file, src_line, "\"%s\" does not contain \"%s\"", err, w);
        va_end(ap);
        /* Nothing of a failed parse may be left for a caller to use by mistake. */
        if (cfg.vm_count != 0)
                TEST_FAIL_AT(file, src_line, "vm_count %u after a failed parse", cfg.vm_count);
}

#define EXPECT_ERR(text, line, ...) \
        check_err_at(__FILE__, __LINE__, parse_str(text), line, __VA_ARGS__, (const char *)NULL)

#define EXPECT_OK(text)                                                                     \
        do {                                                                                \
                int _r = parse_str(text);                                                   \
                if (_r != 0)                                                                \
                        TEST_FAIL_AT(__FILE__, __LINE__, "parse failed (%d): %s", _r, err); \
                else                                                                        \
                        check_invariants(&cfg);                                             \
        } while (0)

#define VM_HELLO "[vm hello]\nmemory = 16M\nimage = guests/hello.bin\n"

static void expect_example(const struct keel_config *c)
{
        const struct vm_config *v;

        EXPECT_EQ(c->log_level, LOG_LEVEL_INFO);
        EXPECT_EQ(c->finish, FINISH_HALT);
        EXPECT_EQ(c->vm_count, 3);

        v = &c->vms[0];
        EXPECT_STREQ(v->name, "hello");
        EXPECT_EQ(v->line, 8);
        EXPECT_EQ(v->memory, 16ull << 20);
        EXPECT_STREQ(v->image, "guests/hello.bin");
        EXPECT_EQ(v->format, IMAGE_FLAT);
        EXPECT_TRUE(v->has_load);
        EXPECT_EQ(v->load, 0x100000);
        EXPECT_TRUE(v->has_entry);
        EXPECT_EQ(v->entry, 0x100000);
        EXPECT_TRUE(v->has_expect_exit);
        EXPECT_EQ(v->expect_exit, 0);
        EXPECT_FALSE(v->has_expect_stop);

        v = &c->vms[1];
        EXPECT_STREQ(v->name, "elf-demo");
        EXPECT_EQ(v->line, 18);
        EXPECT_EQ(v->memory, 64ull << 20);
        EXPECT_STREQ(v->image, "guests/elf demo.elf");
        EXPECT_EQ(v->format, IMAGE_ELF);
        EXPECT_FALSE(v->has_load);
        EXPECT_FALSE(v->has_entry);
        EXPECT_FALSE(v->has_expect_exit);
        EXPECT_TRUE(v->has_expect_stop);
        EXPECT_EQ(v->expect_stop, VM_STOP_HALTED);
        EXPECT_EQ(v->weight, 512);
        EXPECT_EQ(v->cpu, 0);
        EXPECT_EQ(v->vcpus, 1);

        v = &c->vms[2];
        EXPECT_STREQ(v->name, "plain_2");
        EXPECT_EQ(v->line, 27);
        EXPECT_EQ(v->memory, 2ull << 20);
        EXPECT_STREQ(v->image, "guests/plain.bin");
        EXPECT_EQ(v->format, IMAGE_AUTO);
        EXPECT_FALSE(v->has_load);
        EXPECT_EQ(v->load, 0x100000);
        EXPECT_FALSE(v->has_entry);
        EXPECT_EQ(v->entry, 0x100000);
        EXPECT_FALSE(v->has_expect_exit);
        EXPECT_FALSE(v->has_expect_stop);
        EXPECT_EQ(v->weight, SCHED_WEIGHT_DEFAULT);
        EXPECT_EQ(v->cpu, SCHED_NO_PIN);
}

TEST(example_parses)
{
        size_t len;
        char *text = read_source_file("docs/example.cfg", &len);
        int r;

        ASSERT_TRUE(text != NULL);
        r = parse(text, len);
        if (r)
                TEST_FAIL_AT(__FILE__, __LINE__, "example failed: %s", err);
        EXPECT_EQ(r, 0);
        EXPECT_EQ(err[0], '\0');
        expect_example(&cfg);
        check_invariants(&cfg);
        free(text);
}

TEST(example_crlf)
{
        size_t len, clen;
        char *text = read_source_file("docs/example.cfg", &len);
        char *crlf;

        ASSERT_TRUE(text != NULL);
        crlf = to_crlf(text, len, &clen);
        EXPECT_TRUE(clen > len);
        EXPECT_EQ(parse(crlf, clen), 0);
        expect_example(&cfg);
        /* Without the final line end, and with a CR but no LF at the very end. */
        EXPECT_EQ(parse(crlf, clen - 2), 0);
        expect_example(&cfg);
        EXPECT_EQ(parse(crlf, clen - 1), 0);
        expect_example(&cfg);
        free(crlf);
        free(text);
}

TEST(defaults)
{
        EXPECT_OK("[vm a]\nmemory=2M\nimage=a.bin");
        EXPECT_EQ(cfg.log_level, LOG_LEVEL_INFO);
        EXPECT_EQ(cfg.finish, FINISH_HALT);
        EXPECT_EQ(cfg.vm_count, 1);
        EXPECT_STREQ(cfg.vms[0].name, "a");
        EXPECT_EQ(cfg.vms[0].line, 1);
        EXPECT_EQ(cfg.vms[0].format, IMAGE_AUTO);
        EXPECT_FALSE(cfg.vms[0].has_load);
        EXPECT_FALSE(cfg.vms[0].has_entry);
        EXPECT_EQ(cfg.vms[0].load, 0x100000);
        EXPECT_EQ(cfg.vms[0].entry, 0x100000);
        /* entry defaults to load, not to 0x100000 */
        EXPECT_OK("[vm a]\nmemory=4M\nimage=a.bin\nload=0x200000\n");
        EXPECT_EQ(cfg.vms[0].load, 0x200000);
        EXPECT_EQ(cfg.vms[0].entry, 0x200000);
        EXPECT_FALSE(cfg.vms[0].has_entry);
        EXPECT_OK("[vm a]\nmemory=4M\nimage=a.bin\nentry=0x1234\n");
        EXPECT_EQ(cfg.vms[0].load, 0x100000);
        EXPECT_EQ(cfg.vms[0].entry, 0x1234);
}

TEST(global_keys)
{
        static const struct {
                const char *text;
                enum log_level level;
        } logs[] = {{"log = error\n", LOG_LEVEL_ERROR},
                    {"log = warn\n", LOG_LEVEL_WARN},
                    {"log = info\n", LOG_LEVEL_INFO},
                    {"log = debug\n", LOG_LEVEL_DEBUG}};
        char buf[256];

        for (unsigned i = 0; i < ARRAY_SIZE(logs); i++) {
                snprintf(buf, sizeof(buf), "%s" VM_HELLO, logs[i].text);
                EXPECT_OK(buf);
                EXPECT_EQ(cfg.log_level, logs[i].level);
        }
        EXPECT_OK("finish = debug-exit\n" VM_HELLO);
        EXPECT_EQ(cfg.finish, FINISH_DEBUG_EXIT);
        EXPECT_OK("finish = halt\nlog=debug\n" VM_HELLO);
        EXPECT_EQ(cfg.finish, FINISH_HALT);
        EXPECT_EQ(cfg.log_level, LOG_LEVEL_DEBUG);
        EXPECT_ERR("log = loud\n" VM_HELLO, 1, "log = loud", "error, warn, info, debug");
        EXPECT_ERR("finish = reboot\n" VM_HELLO, 1, "finish = reboot", "halt, debug-exit");
        EXPECT_ERR("log = INFO\n" VM_HELLO, 1, "log = INFO");
}

TEST(comments_and_blank_lines)
{
        EXPECT_OK("# leading comment\n"
                  "\n"
                  "   \t  \n"
                  "  # indented comment\n"
                  "log = warn# no space before the comment\n"
                  "[vm hello]   # header comment\n"
                  "\tmemory\t=\t16M\t# tabs\n"
                  "image = \"guests/#1.bin\"  # '#' inside quotes is part of the path\n"
                  "#memory = 32M\n");
        EXPECT_EQ(cfg.log_level, LOG_LEVEL_WARN);
        EXPECT_EQ(cfg.vms[0].memory, 16ull << 20);
        EXPECT_STREQ(cfg.vms[0].image, "guests/#1.bin");
        /* Outside quotes '#' ends the value. */
        EXPECT_OK("[vm a]\nmemory=2M\nimage=guests/a#b.bin\n");
        EXPECT_STREQ(cfg.vms[0].image, "guests/a");
        /* A comment-only file has no VM. */
        EXPECT_ERR("# nothing\n\n", 0, "no [vm NAME] section");
}

TEST(utf8_bom_and_comments)
{
        EXPECT_OK("\xef\xbb\xbf# caf\xc3\xa9\n[vm a]\nmemory=2M\nimage=a.bin # \xe2\x9c\x93\n");
        EXPECT_EQ(cfg.vms[0].line, 2);
        /* Non-ASCII outside comments is refused by the value's own rules. */
        EXPECT_ERR("[vm a]\nmemory=2M\nimage=caf\xc3\xa9.bin\n", 3, "image", "printable ASCII");
        EXPECT_ERR("[vm caf\xc3\xa9]\n", 1, "bad VM name");
}

TEST(numbers)
{
        static const struct {
                const char *mem;
                uint64_t bytes;
        } ok[] = {
            {"2M", 2ull << 20},
            {"2m", 2ull << 20},
            {"2048K", 2ull << 20},
            {"2048k", 2ull << 20},
            {"2097152", 2ull << 20},
            {"0x200000", 2ull << 20},
            {"0X200000", 2ull << 20},
            {"0x2M", 2ull << 20},
            {"0xaM", 10ull << 20},
            {"0xAm", 10ull << 20},
            {"1G", 1ull << 30},
            {"1g", 1ull << 30},
            {"0x40000000", 1ull << 30},
            {"64G", 64ull << 30},
            {"65536M", 64ull << 30},
            {"0010M", 10ull << 20},
            {"0x1000000000", 64ull << 30},
        };
        static const char *const bad[] = {
            "16 M", "16MB", "0x",    "0xM", "M",     "12abc", "-2M",
            "+2M",  "2.5M", "0x1g0", "2T",  "1_000", "0b10",  "16M16",
        };
        char buf[256];

        for (unsigned i = 0; i < ARRAY_SIZE(ok); i++) {
                snprintf(buf, sizeof(buf), "[vm a]\nmemory = %s\nimage=a.bin\n", ok[i].mem);
                EXPECT_OK(buf);
                EXPECT_EQ(cfg.vms[0].memory, ok[i].bytes);
        }
        for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
                snprintf(buf, sizeof(buf), "[vm a]\nmemory = %s\nimage=a.bin\n", bad[i]);
                EXPECT_ERR(buf, 2, "memory", "[vm a]");
        }
        EXPECT_ERR("[vm a]\nmemory = 2MB\n", 2, "memory = 2MB in [vm a]: not a size", "K, M or G");
        /* Addresses take the same syntax. */
        EXPECT_OK("[vm a]\nmemory=4M\nimage=a.bin\nload=1M\nentry=0x10000a\n");
        EXPECT_EQ(cfg.vms[0].load, 1ull << 20);
        EXPECT_EQ(cfg.vms[0].entry, 0x10000a);
        EXPECT_ERR("[vm a]\nmemory=4M\nimage=a.bin\nload=0x1z\n", 4, "load = 0x1z", "[vm a]",
                   "not an address");
}

TEST(overflow_is_an_error)
{
        static const char *const big[] = {
            "18446744073709551616",  "0x10000000000000000", "99999999999999999999999",
            "18446744073709551615K", "0xffffffffffffffffK", "17179869184G",
            "0x400000000G",          "18014398509481984K",
        };
        char buf[256];

        for (unsigned i = 0; i < ARRAY_SIZE(big); i++) {
                snprintf(buf, sizeof(buf), "[vm a]\nmemory = %s\nimage=a.bin\n", big[i]);
                EXPECT_ERR(buf, 2, "memory", "too large");
                snprintf(buf, sizeof(buf), "[vm a]\nmemory=2M\nimage=a.bin\nload = %s\n", big[i]);
                EXPECT_ERR(buf, 4, "load", "too large");
        }
        /* The largest 64-bit numbers themselves are fine as numbers (then too big as RAM). */
        EXPECT_ERR("[vm a]\nmemory = 18446744073709551615\n", 2, "at most 64G");
        EXPECT_ERR("[vm a]\nmemory = 0xffffffffffffffff\n", 2, "at most 64G");
        EXPECT_ERR("[vm a]\nmemory = 17179869183G\n", 2, "at most 64G");
}

TEST(memory_limits)
{
        EXPECT_OK("[vm a]\nmemory=2M\nimage=a.bin\n");
        EXPECT_EQ(cfg.vms[0].memory, 2ull << 20);
        EXPECT_OK("[vm a]\nmemory=64G\nimage=a.bin\n");
        EXPECT_EQ(cfg.vms[0].memory, 64ull << 30);
        EXPECT_ERR("[vm a]\nmemory=1M\nimage=a.bin\n", 2, "memory = 1M in [vm a]", "at least 2M");
        EXPECT_ERR("[vm a]\nmemory=0\nimage=a.bin\n", 2, "memory = 0", "at least 2M");
        EXPECT_ERR("[vm a]\nmemory=65G\nimage=a.bin\n", 2, "memory = 65G in [vm a]", "at most 64G");
        EXPECT_ERR("[vm a]\nmemory=0x1000200000\nimage=a.bin\n", 2, "at most 64G");
        EXPECT_ERR("[vm a]\nmemory=2097153\nimage=a.bin\n", 2, "multiple of 2M");
        EXPECT_ERR("[vm a]\nmemory=6K\n", 2, "at least 2M");
        /* The message of docs/config.md, word for word. */
        EXPECT_ERR("# a\n# b\n# c\n# d\n[vm hello]\nimage = h.bin\nmemory = 3M\n", 7, "");
        EXPECT_STREQ(err, "keel.cfg:7: memory = 3M in [vm hello]: must be a multiple of 2M");
}

/* As many VMs as the caller gives room for (config_vm_room of the text: the boot stage). */
TEST(vm_count_limit)
{
        static char buf[8192];
        size_t n = 0;

        for (unsigned i = 0; i < TEST_VMS; i++)
                n += (size_t)snprintf(buf + n, sizeof(buf) - n,
                                      "[vm vm%u]\nmemory = 2M\nimage = g/%u.bin\n", i, i);
        EXPECT_EQ(config_vm_room(buf, n), TEST_VMS);
        EXPECT_EQ(config_vm_room("", 0), 1);
        EXPECT_EQ(config_vm_room("# [a] [b\n", 9), 2);
        EXPECT_OK(buf);
        EXPECT_EQ(cfg.vm_count, TEST_VMS);
        for (unsigned i = 0; i < TEST_VMS; i++) {
                char name[16];
                snprintf(name, sizeof(name), "vm%u", i);
                EXPECT_STREQ(cfg.vms[i].name, name);
                EXPECT_EQ(cfg.vms[i].line, 3 * i + 1);
        }
        snprintf(buf + n, sizeof(buf) - n, "[vm one-too-many]\nmemory = 2M\nimage = x.bin\n");
        EXPECT_ERR(buf, 3 * TEST_VMS + 1, "too many VMs", "room for 100");
}

TEST(vm_names)
{
        EXPECT_OK("[vm a-Z_09]\nmemory=2M\nimage=a.bin\n");
        EXPECT_STREQ(cfg.vms[0].name, "a-Z_09");
        EXPECT_OK("[  vm \t spaced\t ]\nmemory=2M\nimage=a.bin\n");
        EXPECT_STREQ(cfg.vms[0].name, "spaced");
        /* 31 characters fit, 32 do not. */
        EXPECT_OK("[vm abcdefghijklmnopqrstuvwxyz01234]\nmemory=2M\nimage=a.bin\n");
        EXPECT_STREQ(cfg.vms[0].name, "abcdefghijklmnopqrstuvwxyz01234");
        EXPECT_ERR("[vm abcdefghijklmnopqrstuvwxyz012345]\nmemory=2M\nimage=a.bin\n", 1, "too long",
                   "at most 31");
        EXPECT_ERR("[vm a.b]\n", 1, "bad VM name 'a.b'", "A-Z a-z 0-9 _ -");
        EXPECT_ERR("[vm two words]\n", 1, "bad VM name 'two words'");
        EXPECT_ERR("[vm a/b]\n", 1, "bad VM name");
        EXPECT_ERR("[vm]\n", 1, "[vm] needs a name");
        EXPECT_ERR("[ vm  ]\n", 1, "[vm] needs a name");
        EXPECT_ERR("[vmx]\n", 1, "unknown section '[vmx]'", "[vm NAME]");
        EXPECT_ERR("[global]\n", 1, "unknown section '[global]'");
        EXPECT_ERR("[VM a]\n", 1, "unknown section");
        EXPECT_ERR("[]\n", 1, "unknown section");
        EXPECT_ERR("[vm a\nmemory=2M\n", 1, "unterminated section header");
        EXPECT_ERR("[vm a] x\n", 1, "unexpected 'x' after the section header");
        EXPECT_ERR("[vm a]]\n", 1, "unexpected ']'");
        EXPECT_ERR(VM_HELLO "\n[vm other]\nmemory=2M\nimage=o.bin\n[vm hello]\n", 8,
                   "duplicate VM name 'hello'", "line 1");
}

TEST(unknown_and_misplaced_keys)
{
        EXPECT_ERR("log=info\n[vm hello]\nmemroy = 16M\n", 3, "");
        EXPECT_STREQ(err, "keel.cfg:3: unknown key 'memroy' in [vm hello] (expected memory, "
                          "image, format, load, entry, kernel, initrd, cmdline, disk, "
                          "disk_readonly, event_idx, virtio_console, boot, expect_exit, "
                          "expect_stop, weight, cpu, vcpus, unbacked, pc_testdev, snapshot)");
        EXPECT_ERR("verbose = 1\n" VM_HELLO, 1, "unknown key 'verbose'", "log", "finish");
        EXPECT_ERR("memory = 16M\n" VM_HELLO, 1, "key 'memory' outside a [vm NAME] section");
        EXPECT_ERR("image = a.bin\n", 1, "'image' outside");
        EXPECT_ERR(VM_HELLO "log = debug\n", 4, "global key 'log' in [vm hello]",
                   "before the first [vm NAME]");
        EXPECT_ERR(VM_HELLO "finish = halt\n", 4, "global key 'finish' in [vm hello]");
        EXPECT_ERR(VM_HELLO "Memory = 2M\n", 4, "unknown key 'Memory'");
}

TEST(duplicate_keys)
{
        EXPECT_ERR(VM_HELLO "memory = 32M\n", 4, "duplicate key 'memory' in [vm hello]", "line 2");
        EXPECT_ERR(VM_HELLO "image = other.bin\n", 4, "duplicate key 'image'", "line 3");
        EXPECT_ERR("log = info\nlog = debug\n" VM_HELLO, 2, "duplicate key 'log'", "line 1");
        EXPECT_ERR("finish=halt\n\nfinish=halt\n" VM_HELLO, 3, "duplicate key 'finish'");
        EXPECT_ERR(VM_HELLO "format=flat\nformat=flat\n", 5, "duplicate key 'format'");
        EXPECT_ERR(VM_HELLO "load=0\nload=0\n", 5, "duplicate key 'load'");
        EXPECT_ERR(VM_HELLO "entry=0\nentry=0\n", 5, "duplicate key 'entry'");
        EXPECT_ERR(VM_HELLO "expect_exit=0\nexpect_exit=0\n", 5, "duplicate key 'expect_exit'");
        EXPECT_ERR(VM_HELLO "expect_stop=halted\nexpect_stop=halted\n", 5,
                   "duplicate key 'expect_stop'");
        /* The same key in another section is not a duplicate. */
        EXPECT_OK(VM_HELLO "[vm b]\nmemory=2M\nimage=b.bin\n");
        EXPECT_EQ(cfg.vm_count, 2);
        EXPECT_EQ(cfg.vms[1].memory, 2ull << 20);
}

TEST(line_syntax)
{
        EXPECT_ERR("[vm a]\nmemory 16M\n", 2, "missing '=' after 'memory'");
        EXPECT_ERR("[vm a]\nmemory\n", 2, "missing '=' after 'memory'");
        EXPECT_ERR("[vm a]\nmemory: 16M\n", 2, "missing '='");
        EXPECT_ERR("[vm a]\n= 16M\n", 2, "expected 'key = value'");
        EXPECT_ERR("[vm a]\n\"memory\" = 16M\n", 2, "expected 'key = value'");
        EXPECT_ERR("[vm a]\nmemory =\n", 2, "'memory' in [vm a] has no value");
        EXPECT_ERR("[vm a]\nmemory = # nothing\n", 2, "has no value");
        EXPECT_ERR("[vm a]\nimage = \"\"\n", 2, "'image' in [vm a] has no value");
        EXPECT_ERR("[vm a]\nmemory = 16M 32M\n", 2, "memory = 16M in [vm a]",
                   "unexpected '32M' after the value");
        EXPECT_ERR("[vm a]\nformat = flat elf\n", 2, "unexpected 'elf'");
        EXPECT_ERR("[vm a]\nmemory=2M\nimage = guests/a b.bin\n", 3, "unexpected 'b.bin'", "quote");
        EXPECT_ERR("[vm a]\nmemory=2M\nimage = \"a.bin\" x\n", 3, "unexpected 'x'");
        EXPECT_ERR("[vm a]\nmemory=2M\nimage = \"a.bin\"\"b\"\n", 3, "unexpected '\"b\"'");
        EXPECT_ERR("[vm a]\nmemory=2M\nimage = \"guests/a.bin\n", 3,
                   "unterminated quote in the value of 'image' in [vm a]");
        EXPECT_ERR("[vm a]\nmemory=2M\nimage = \"guests/a.bin # \n", 3, "unterminated quote");
}

TEST(quoted_values)
{
        EXPECT_OK("[vm a]\nmemory = \"4M\"\nimage = \"guests/with space.bin\"\n"
                  "format = \"flat\" # quotes around any value\n");
        EXPECT_EQ(cfg.vms[0].memory, 4ull << 20);
        EXPECT_STREQ(cfg.vms[0].image, "guests/with space.bin");
        EXPECT_EQ(cfg.vms[0].format, IMAGE_FLAT);
        EXPECT_OK("[vm a]\nmemory=2M\nimage=\"a.bin\"#comment\n");
        EXPECT_STREQ(cfg.vms[0].image, "a.bin");
        EXPECT_OK("[vm a]\nmemory=2M\nimage=\" lead and trail \"\n");
        EXPECT_STREQ(cfg.vms[0].image, " lead and trail ");
}

TEST(image_paths)
{
        char buf[512], path[200];

        EXPECT_OK("[vm a]\nmemory=2M\nimage=a\n");
        EXPECT_STREQ(cfg.vms[0].image, "a");
        EXPECT_OK("[vm a]\nmemory=2M\nimage=dir/sub-dir/f_1.v2.elf\n");
        EXPECT_STREQ(cfg.vms[0].image, "dir/sub-dir/f_1.v2.elf");
        EXPECT_OK("[vm a]\nmemory=2M\nimage=./a.bin\n");
        EXPECT_ERR("[vm a]\nmemory=2M\nimage=/abs.bin\n", 3, "image = /abs.bin in [vm a]",
                   "leading '/'");
        EXPECT_ERR("[vm a]\nmemory=2M\nimage=../up.bin\n", 3, "'..'");
        EXPECT_ERR("[vm a]\nmemory=2M\nimage=a/../../b\n", 3, "'..'");
        EXPECT_ERR("[vm a]\nmemory=2M\nimage=a/..\n", 3, "'..'");
        EXPECT_ERR("[vm a]\nmemory=2M\nimage=a\\b.bin\n", 3, "'/'");
        EXPECT_ERR("[vm a]\nmemory=2M\nimage=a//b.bin\n", 3, "empty path component");
        EXPECT_ERR("[vm a]\nmemory=2M\nimage=dir/\n", 3, "empty path component");
        EXPECT_ERR("[vm a]\nmemory=2M\nimage=a\"b\n", 3, "image");
        /* 127 characters fit, 128 do not. */
        memset(path, 'p', sizeof(path));
        path[127] = '\0';
        snprintf(buf, sizeof(buf), "[vm a]\nmemory=2M\nimage=%s\n", path);
        EXPECT_OK(buf);
        EXPECT_EQ(strlen(cfg.vms[0].image), 127);
        path[127] = 'p';
        path[128] = '\0';
        snprintf(buf, sizeof(buf), "[vm a]\nmemory=2M\nimage=%s\n", path);
        EXPECT_ERR(buf, 3, "image", "too long", "127");
        path[180] = '\0';
        snprintf(buf, sizeof(buf), "[vm a]\nmemory=2M\nimage=\"%s\"\n", path);
        EXPECT_ERR(buf, 3, "too long");
}

TEST(formats_and_addresses)
{
        EXPECT_OK(VM_HELLO "format = auto\n");
        EXPECT_EQ(cfg.vms[0].format, IMAGE_AUTO);
        EXPECT_OK(VM_HELLO "format = flat\n");
        EXPECT_EQ(cfg.vms[0].format, IMAGE_FLAT);
        EXPECT_OK(VM_HELLO "format = elf\n");
        EXPECT_EQ(cfg.vms[0].format, IMAGE_ELF);
        EXPECT_ERR(VM_HELLO "format = pe\n", 4, "format = pe in [vm hello]", "auto, flat, elf");
        EXPECT_OK(VM_HELLO "format = auto\nload = 0x200000\n");
        EXPECT_EQ(cfg.vms[0].load, 0x200000);
        EXPECT_ERR(VM_HELLO "format = elf\nload = 0x200000\n", 5, "load = 0x200000 in [vm hello]",
                   "flat", "line 4");
        EXPECT_ERR(VM_HELLO "load = 0x200000\nformat = elf\n", 5, "format = elf in [vm hello]",
                   "load", "line 4");
        EXPECT_ERR(VM_HELLO "format = elf\nentry = 0x200000\n", 5, "entry = 0x200000", "flat");
        EXPECT_ERR(VM_HELLO "entry = 0x200000\n\nformat = elf\n", 6, "format = elf", "entry",
                   "line 4");
        /* Load and entry must be inside the VM's memory, whichever comes first. */
        EXPECT_OK("[vm a]\nmemory=4M\nimage=a.bin\nload=0x3fffff\nentry=0x3fffff\n");
        EXPECT_ERR("[vm a]\nload=4M\nmemory=4M\nimage=a.bin\n", 2, "load in [vm a]", "outside",
                   "4M");
        EXPECT_ERR("[vm a]\nmemory=4M\nimage=a.bin\nentry=0x400000\n", 4, "entry in [vm a]",
                   "outside");
        EXPECT_ERR("[vm a]\nmemory=4M\nimage=a.bin\nentry=0x400000\n[vm b]\n", 4, "entry");
}

TEST(expectations)
{
        static const struct {
                const char *text;
                int64_t value;
        } exits[] = {
            {"0", 0},
            {"42", 42},
            {"-1", -1},
            {"0x10", 16},
            {"-0x10", -16},
            {"0xffffffffffffffff", -1},
            {"0x8000000000000000", INT64_MIN},
            {"9223372036854775807", INT64_MAX},
            {"-9223372036854775808", INT64_MIN},
            {"-0x8000000000000000", INT64_MIN},
        };
        static const char *const bad_exits[] = {
            "9223372036854775808",
            "-9223372036854775809",
            "-0x8000000000000001",
            "0x10000000000000000",
            "abc",
            "-",
            "--1",
            "+1",
            "1K",
            "1.0",
        };
        char buf[256];

        for (unsigned i = 0; i < ARRAY_SIZE(exits); i++) {
                snprintf(buf, sizeof(buf), VM_HELLO "expect_exit = %s\n", exits[i].text);
                EXPECT_OK(buf);
                EXPECT_TRUE(cfg.vms[0].has_expect_exit);
                EXPECT_EQ(cfg.vms[0].expect_exit, exits[i].value);
        }
        for (unsigned i = 0; i < ARRAY_SIZE(bad_exits); i++) {
                snprintf(buf, sizeof(buf), VM_HELLO "expect_exit = %s\n", bad_exits[i]);
                EXPECT_ERR(buf, 4, "expect_exit", "[vm hello]");
        }
        EXPECT_ERR(VM_HELLO "expect_exit = 9223372036854775808\n", 4, "too large");

        /* Every stop reason but "exit" (and "none") can be expected, by its vm.c name. */
        for (int r = VM_STOP_EXIT + 1; r < VM_STOP_REASON_COUNT; r++) {
                snprintf(buf, sizeof(buf), VM_HELLO "expect_stop = %s\n",
                         vm_stop_reason_name((enum vm_stop_reason)r));
                EXPECT_OK(buf);
                EXPECT_TRUE(cfg.vms[0].has_expect_stop);
                EXPECT_EQ(cfg.vms[0].expect_stop, r);
                EXPECT_FALSE(cfg.vms[0].has_expect_exit);
        }
        EXPECT_OK(VM_HELLO "expect_stop = triple-fault\n");
        EXPECT_EQ(cfg.vms[0].expect_stop, VM_STOP_TRIPLE_FAULT);
        EXPECT_ERR(VM_HELLO "expect_stop = exit\n", 4, "expect_stop = exit in [vm hello]",
                   "expect_exit");
        EXPECT_ERR(VM_HELLO "expect_stop = none\n", 4, "unknown stop reason");
        EXPECT_ERR(VM_HELLO "expect_stop = crash\n", 4, "expect_stop = crash",
                   "unknown stop reason", "halted");
        EXPECT_ERR(VM_HELLO "expect_stop = "
                            "triple-fault-triple-fault-triple-fault-triple-fault\n",
                   4, "unknown stop reason");
        EXPECT_ERR(VM_HELLO "expect_exit = 0\nexpect_stop = halted\n", 5, "expect_stop",
                   "expect_exit", "line 4", "at most one");
        EXPECT_ERR(VM_HELLO "expect_stop = halted\nexpect_exit = 0\n", 5, "expect_exit", "line 4",
                   "at most one");
}

/* `key = value` in a VM of its own parses; returns the VM. */
static const struct vm_config *sched_vm(const char *key, const char *value)
{
        char buf[256];

        snprintf(buf, sizeof(buf), VM_HELLO "%s = %s\n", key, value);
        EXPECT_OK(buf);
        return &cfg.vms[0];
}

/* `key = value` is refused at line 4 with a message holding `words`. */
static void sched_err(const char *key, const char *value, const char *words)
{
        char buf[256], head[96];

        snprintf(buf, sizeof(buf), VM_HELLO "%s = %s\n", key, value);
        snprintf(head, sizeof(head), "%s = %s in [vm hello]: ", key, value);
        EXPECT_ERR(buf, 4, head, words);
}

TEST(scheduling_keys)
{
        static const char *const garbage[] = {"abc", "-1", "1K", "2.5", "0x", "1_0", "+3", "x1"};
        static const char *const keys3[] = {"weight", "cpu", "vcpus"};

        /* Defaults. */
        EXPECT_OK(VM_HELLO);
        EXPECT_EQ(cfg.vms[0].weight, SCHED_WEIGHT_DEFAULT);
        EXPECT_EQ(cfg.vms[0].weight, 256);
        EXPECT_EQ(cfg.vms[0].cpu, SCHED_NO_PIN);
        EXPECT_EQ(cfg.vms[0].vcpus, 1);

        /* Good values, the limits included. */
        EXPECT_EQ(sched_vm("weight", "1")->weight, 1);
        EXPECT_EQ(sched_vm("weight", "65536")->weight, 65536);
        EXPECT_EQ(sched_vm("weight", "0x300")->weight, 768);
        EXPECT_EQ(sched_vm("weight", "\"512\"")->weight, 512);
        EXPECT_EQ(sched_vm("weight", "0256")->weight, 256); /* decimal, not octal */
        EXPECT_EQ(sched_vm("cpu", "0")->cpu, 0);
        EXPECT_EQ(sched_vm("cpu", "7")->cpu, 7);
        EXPECT_EQ(sched_vm("cpu", "0x3")->cpu, 3);
        EXPECT_EQ(sched_vm("vcpus", "1")->vcpus, 1);
        EXPECT_EQ(sched_vm("vcpus", "8")->vcpus, 8);
        EXPECT_EQ(sched_vm("vcpus", "3")->vcpus, 3);
        /* Setting one leaves the others at their defaults. */
        EXPECT_EQ(sched_vm("cpu", "2")->weight, SCHED_WEIGHT_DEFAULT);
        EXPECT_EQ(cfg.vms[0].vcpus, 1);

        /* Out of range, too large for 64 bits included. */
        sched_err("weight", "0", "must be from 1 to 65536");
        sched_err("weight", "65537", "must be from 1 to 65536");
        sched_err("weight", "0x10001", "must be from 1 to 65536");
        sched_err("weight", "99999999999999999999999", "must be from 1 to 65536");
        sched_err("cpu", "65536", "must be from 0 to 65535");
        sched_err("cpu", "4294967296", "must be from 0 to 65535");
        sched_err("vcpus", "0", "must be from 1 to 64");
        sched_err("vcpus", "65", "must be from 1 to 64");
        /* The whole message, word for word (docs/config.md). */
        EXPECT_ERR(VM_HELLO "weight = 0\n", 4, "");
        EXPECT_STREQ(err, "keel.cfg:4: weight = 0 in [vm hello]: must be from 1 to 65536 (its "
                          "share of CPU time; default 256)");
        EXPECT_ERR(VM_HELLO "cpu = 65536\n", 4, "");
        EXPECT_STREQ(err, "keel.cfg:4: cpu = 65536 in [vm hello]: must be from 0 to 65535 (the "
                          "physical CPU to pin to; default: any)");
        EXPECT_ERR(VM_HELLO "vcpus = 65\n", 4, "");
        EXPECT_STREQ(err, "keel.cfg:4: vcpus = 65 in [vm hello]: must be from 1 to 64 (virtual "
                          "CPUs; default 1)");
        EXPECT_OK(VM_HELLO "vcpus = 64\n");
        EXPECT_EQ(cfg.vms[0].vcpus, 64);

        /* Garbage. */
        for (unsigned k = 0; k < ARRAY_SIZE(keys3); k++) {
                for (unsigned g = 0; g < ARRAY_SIZE(garbage); g++)
                        sched_err(keys3[k], garbage[g], "not a number (expected decimal or 0x hex");
        }
        sched_err("weight", "none", "not a number (expected decimal or 0x hex, 1 to 65536)");
        sched_err("cpu", "any", "not a number (expected decimal or 0x hex, 0 to 65535)");
        sched_err("vcpus", "two", "not a number (expected decimal or 0x hex, 1 to 64)");
        EXPECT_ERR(VM_HELLO "weight =\n", 4, "'weight' in [vm hello] has no value");
        EXPECT_ERR(VM_HELLO "cpu = 1 2\n", 4, "unexpected '2'");

        /* Once per VM, only in a VM, for Linux VMs too, per VM. */
        EXPECT_ERR(VM_HELLO "weight = 2\nweight = 2\n", 5, "duplicate key 'weight'", "line 4");
        EXPECT_ERR(VM_HELLO "cpu = 1\ncpu = 1\n", 5, "duplicate key 'cpu'");
        EXPECT_ERR(VM_HELLO "vcpus = 1\nvcpus = 1\n", 5, "duplicate key 'vcpus'");
        EXPECT_ERR("weight = 2\n" VM_HELLO, 1, "key 'weight' outside a [vm NAME] section");
        EXPECT_OK("[vm l]\nmemory = 16M\nkernel = k\nweight = 100\ncpu = 5\nvcpus = 4\n" VM_HELLO
                  "weight = 300\n");
        EXPECT_EQ(cfg.vms[0].weight, 100);
        EXPECT_EQ(cfg.vms[0].cpu, 5);
        EXPECT_EQ(cfg.vms[0].vcpus, 4);
        EXPECT_EQ(cfg.vms[1].weight, 300);
        EXPECT_EQ(cfg.vms[1].cpu, SCHED_NO_PIN);
        EXPECT_EQ(cfg.vms[1].vcpus, 1);
}

TEST(required_keys)
{
        EXPECT_ERR("log=info\n\n[vm hello]\nimage = a.bin\n", 3, "[vm hello] has no memory key",
                   "required");
        EXPECT_ERR("[vm hello]\nmemory = 2M\n[vm b]\nmemory=2M\nimage=b.bin\n", 1,
                   "[vm hello] has no image or kernel key", "required");
        EXPECT_ERR(VM_HELLO "[vm b]\n", 4, "[vm b] has no memory key");
        EXPECT_ERR("[vm b]\n# only a comment\n", 1, "[vm b] has no memory key");
}

TEST(linux_vms)
{
        const struct vm_config *v;

        EXPECT_OK("[vm linux]\nmemory = 256M\nkernel = guests/vmlinuz\ninitrd = guests/initrd.img\n"
                  "cmdline = \"console=ttyS0 panic=-1 # not a comment\"\ndisk = guests/disk.img\n"
                  "disk_readonly = yes\nexpect_stop = triple-fault\n");
        v = &cfg.vms[0];
        EXPECT_STREQ(v->kernel, "guests/vmlinuz");
        EXPECT_STREQ(v->image, "");
        EXPECT_STREQ(v->initrd, "guests/initrd.img");
        EXPECT_STREQ(v->cmdline, "console=ttyS0 panic=-1 # not a comment");
        EXPECT_STREQ(v->disk, "guests/disk.img");
        EXPECT_TRUE(v->disk_readonly);
        /* Only the kernel is required. */
        EXPECT_OK("[vm l]\nmemory = 64M\nkernel = vmlinuz\n");
        EXPECT_STREQ(cfg.vms[0].cmdline, "");
        EXPECT_FALSE(cfg.vms[0].disk_readonly);
        /* A VM runs an image or a kernel, never both; image keys do not go with a kernel. */
        EXPECT_ERR("[vm l]\nmemory = 64M\nimage = a.bin\nkernel = vmlinuz\n", 4, "kernel = vmlinuz",
                   "cannot be combined", "line 3");
        EXPECT_ERR("[vm l]\nmemory = 64M\nkernel = vmlinuz\nimage = a.bin\n", 4, "image = a.bin",
                   "kernel is set", "line 3");
        EXPECT_ERR("[vm l]\nmemory = 64M\nkernel = vmlinuz\nload = 0x100000\n", 4, "load",
                   "only for image guests");
        EXPECT_ERR("[vm l]\nmemory = 64M\nkernel = vmlinuz\nformat = flat\n", 4, "format",
                   "only for image guests");
        /* Linux keys on an image guest, reported at their own line. */
        EXPECT_ERR(VM_HELLO "cmdline = quiet\n", 4, "cmdline", "only for Linux VMs");
        EXPECT_ERR(VM_HELLO "disk = d.img\n", 4, "disk", "only for Linux VMs");
        EXPECT_ERR("[vm l]\nmemory = 64M\nkernel = vmlinuz\ndisk_readonly = yes\n", 4,
                   "disk_readonly", "without a disk");
        EXPECT_ERR("[vm l]\nmemory = 64M\nkernel = vmlinuz\ndisk = d.img\ndisk_readonly = maybe\n",
                   5, "expected yes or no");
        EXPECT_ERR("[vm l]\nmemory = 64M\nkernel = ../vmlinuz\n", 3, "must not contain '..'");
        EXPECT_OK("[vm l]\nmemory = 64M\nkernel = vmlinuz\nevent_idx = no\n");
        EXPECT_TRUE(cfg.vms[0].no_event_idx);
        EXPECT_ERR(VM_HELLO "event_idx = no\n", 4, "event_idx", "only for Linux VMs");
        EXPECT_OK("[vm l]\nmemory = 64M\nkernel = vmlinuz\nvirtio_console = no\n");
        EXPECT_TRUE(cfg.vms[0].no_virtio_console);
        EXPECT_OK("[vm l]\nmemory = 64M\nkernel = vmlinuz\n");
        EXPECT_FALSE(cfg.vms[0].no_virtio_console);
        EXPECT_ERR(VM_HELLO "virtio_console = no\n", 4, "virtio_console", "only for Linux VMs");
        EXPECT_ERR("[vm l]\nmemory = 64M\nkernel = vmlinuz\nvirtio_console = off\n", 4,
                   "expected yes or no");
        EXPECT_ERR("[vm l]\nmemory = 64M\nkernel = vmlinuz\ncmdline = a\"b\n", 4, "cmdline");
}

TEST(multiboot_vms)
{
        const struct vm_config *v;

        EXPECT_OK("[vm kut]\nmemory = 64M\nkernel = guests/apic.flat\nboot = multiboot\n"
                  "initrd = guests/env\ncmdline = \"-smp 2\"\nvcpus = 2\n");
        v = &cfg.vms[0];
        EXPECT_EQ(v->boot, KERNEL_BOOT_MULTIBOOT);
        EXPECT_STREQ(v->kernel, "guests/apic.flat");
        EXPECT_STREQ(v->initrd, "guests/env");
        /* The default is Linux, also when said. */
        EXPECT_OK("[vm l]\nmemory = 64M\nkernel = vmlinuz\n");
        EXPECT_EQ(cfg.vms[0].boot, KERNEL_BOOT_LINUX);
        EXPECT_OK("[vm l]\nmemory = 64M\nkernel = vmlinuz\nboot = linux\n");
        EXPECT_EQ(cfg.vms[0].boot, KERNEL_BOOT_LINUX);
        EXPECT_ERR("[vm l]\nmemory = 64M\nkernel = k\nboot = grub\n", 4, "boot = grub",
                   "expected one of: linux, multiboot");
        /* Not for images, either order. */
        EXPECT_ERR(VM_HELLO "boot = multiboot\n", 4, "boot", "only for kernel = ... VMs");
        EXPECT_ERR("[vm l]\nmemory = 16M\nboot = multiboot\nimage = a.bin\n", 3, "boot",
                   "only for kernel = ... VMs", "a.bin");
        /* A Multiboot VM has no virtio devices. */
        EXPECT_ERR("[vm l]\nmemory = 64M\nkernel = k\nboot = multiboot\ndisk = d.img\n", 5, "disk",
                   "no virtio devices", "line 4");
        EXPECT_ERR("[vm l]\nmemory = 64M\nkernel = k\nevent_idx = no\nboot = multiboot\n", 4,
                   "event_idx", "no virtio devices");
}

TEST(no_vm)
{
        EXPECT_ERR("", 0, "");
        EXPECT_STREQ(err, "keel.cfg:0: no [vm NAME] section: nothing to run");
        EXPECT_ERR("log = debug\nfinish = debug-exit\n", 0, "no [vm NAME] section");
        EXPECT_ERR("\n\n\n", 0, "no [vm NAME] section");
        /* A NULL text of length 0 is an empty file. */
        EXPECT_EQ(config_parse(NULL, 0, FILE_NAME, &cfg, err, sizeof(err)), -KEEL_EINVAL);
        EXPECT_STREQ(err, "keel.cfg:0: no [vm NAME] section: nothing to run");
}

TEST(line_length)
{
        char buf[1200], line[1100];
        size_t n;

        /* A comment line of exactly 1024 characters is fine, 1025 is not; CR does not count. */
        memset(line, 'c', sizeof(line));
        line[0] = '#';
        line[1024] = '\0';
        snprintf(buf, sizeof(buf), "%s\n" VM_HELLO, line);
        EXPECT_OK(buf);
        snprintf(buf, sizeof(buf), "%s\r\n" VM_HELLO, line);
        EXPECT_OK(buf);
        line[1024] = 'c';
        line[1025] = '\0';
        snprintf(buf, sizeof(buf), "%s\n" VM_HELLO, line);
        EXPECT_ERR(buf, 1, "line too long", "1025", "1024");
        snprintf(buf, sizeof(buf), VM_HELLO "%s", line);
        EXPECT_ERR(buf, 4, "line too long");
        /* A key line with a long value is refused before it is parsed. */
        n = (size_t)snprintf(buf, sizeof(buf), VM_HELLO "expect_exit = ");
        memset(buf + n, '1', 1030);
        buf[n + 1030] = '\0';
        EXPECT_ERR(buf, 4, "line too long");
}

/* kvm-unit-tests' vmx test has a 413-character command line; Linux takes up to 2047. */
TEST(cmdline_length)
{
        char buf[1200];
        size_t n;

        n = (size_t)snprintf(buf, sizeof(buf), "[vm l]\nmemory = 64M\nkernel = k\ncmdline = \"");
        memset(buf + n, 'x', 1007);
        snprintf(buf + n + 1007, sizeof(buf) - n - 1007, "\"\n");
        EXPECT_OK(buf);
        EXPECT_EQ(strlen(cfg.vms[0].cmdline), 1007);
        memset(buf + n, 'x', 1008);
        snprintf(buf + n + 1008, sizeof(buf) - n - 1008, "\"\n");
        EXPECT_ERR(buf, 4, "cmdline", "too long", "1007");
}

TEST(nul_bytes)
{
        static const char text[] = VM_HELLO "format = flat\n";
        size_t len = sizeof(text) - 1;
        char copy[sizeof(text)];

        /* A NUL at every position is an error on that position's line. */
        for (size_t i = 0; i < len; i++) {
                unsigned line = 1;
                int r;

                for (size_t j = 0; j < i; j++)
                        line += text[j] == '\n';
                memcpy(copy, text, len);
                copy[i] = '\0';
                r = parse(copy, len);
                check_err_at(__FILE__, __LINE__, r, line, "NUL byte", (const char *)NULL);
        }
        /* A NUL after the end (outside len) is never read: the text is not NUL-terminated. */
        memcpy(copy, text, len);
        EXPECT_EQ(parse(copy, len), 0);
}

TEST(control_characters)
{
        EXPECT_ERR("[vm a]\nmemory=2M\x01\n", 2, "control character 0x01");
        EXPECT_ERR("[vm a]\x1b[0m\n", 1, "control character 0x1b");
        EXPECT_ERR("# \x7f\n", 1, "control character 0x7f");
        EXPECT_ERR("[vm a]\rmemory=2M\n", 1, "carriage return");
        EXPECT_ERR("[vm a]\r\r\nmemory=2M\n", 1, "carriage return");
        EXPECT_ERR("[vm a]\nmemory=2M\nimage=a.bin\n\x0c\n", 4, "control character 0x0c");
}

TEST(error_buffer_bounds)
{
        static const char text[] = "[vm hello]\nmemroy = 16M\n";
        static const char want[] = "keel.cfg:2: unknown key 'memroy' in [vm hello] (expected";
        char small[16];
        char *exact;
        int r;

        /* Truncated but NUL-terminated, and never written past errlen (ASan: exact heap size). */
        for (size_t sz = 1; sz < 200; sz++) {
                exact = malloc(sz);
                ASSERT_TRUE(exact != NULL);
                r = config_parse(text, sizeof(text) - 1, FILE_NAME, &cfg, exact, sz);
                EXPECT_EQ(r, -KEEL_EINVAL);
                EXPECT_TRUE(memchr(exact, '\0', sz) != NULL);
                EXPECT_EQ(strncmp(exact, want, sz - 1 < strlen(want) ? sz - 1 : strlen(want)), 0);
                free(exact);
        }
        memset(small, 'z', sizeof(small));
        r = config_parse(text, sizeof(text) - 1, FILE_NAME, &cfg, small, 8);
        EXPECT_EQ(r, -KEEL_EINVAL);
        EXPECT_STREQ(small, "keel.cf");
        EXPECT_EQ(small[8], 'z');
        /* No buffer at all. */
        EXPECT_EQ(config_parse(text, sizeof(text) - 1, FILE_NAME, &cfg, NULL, 0), -KEEL_EINVAL);
        /* A good parse leaves an empty message. */
        EXPECT_EQ(config_parse(VM_HELLO, strlen(VM_HELLO), FILE_NAME, &cfg, small, sizeof(small)),
                  0);
        EXPECT_STREQ(small, "");
        /* Without a file name the messages say "config". */
        EXPECT_EQ(config_parse("", 0, NULL, &cfg, err, sizeof(err)), -KEEL_EINVAL);
        EXPECT_STREQ(err, "config:0: no [vm NAME] section: nothing to run");
}

TEST(unbacked_key)
{
        EXPECT_OK(VM_HELLO);
        EXPECT_FALSE(cfg.vms[0].unbacked_stop); /* default: the guest gets the fault */
        EXPECT_TRUE(sched_vm("unbacked", "stop")->unbacked_stop);
        EXPECT_FALSE(sched_vm("unbacked", "abort")->unbacked_stop);
        EXPECT_TRUE(sched_vm("unbacked", "\"stop\"")->unbacked_stop);
        EXPECT_OK(VM_HELLO "unbacked = stop\n[vm two]\nmemory = 2M\nimage = a.bin\n");
        EXPECT_TRUE(cfg.vms[0].unbacked_stop);
        EXPECT_FALSE(cfg.vms[1].unbacked_stop); /* per VM */
        sched_err("unbacked", "Stop", "expected abort");
        sched_err("unbacked", "yes", "or stop (the VM stops)");
        sched_err("unbacked", "abort,stop", "expected abort");
        EXPECT_ERR(VM_HELLO "unbacked = stop\nunbacked = abort\n", 5, "duplicate key 'unbacked'");
        EXPECT_ERR("unbacked = stop\n" VM_HELLO, 1, "'unbacked' outside");
}

TEST(pc_testdev_key)
{
        EXPECT_OK("[vm k]\nmemory = 64M\nkernel = k.flat\nboot = multiboot\n");
        EXPECT_FALSE(cfg.vms[0].pc_testdev); /* default: no test device */
        EXPECT_OK("[vm k]\nmemory = 64M\nkernel = k.flat\nboot = multiboot\npc_testdev = yes\n"
                  "[vm l]\nmemory = 64M\nkernel = vmlinuz\npc_testdev = no\n");
        EXPECT_TRUE(cfg.vms[0].pc_testdev);
        EXPECT_FALSE(cfg.vms[1].pc_testdev);
        EXPECT_ERR("[vm k]\nmemory = 64M\nkernel = k\npc_testdev = 1\n", 4, "expected yes or no");
        EXPECT_ERR(VM_HELLO "pc_testdev = yes\n", 4,
                   "pc_testdev in [vm hello] is only for Linux VMs");
}

TEST(long_user_text_is_cut_in_messages)
{
        char buf[512];
        size_t n = (size_t)snprintf(buf, sizeof(buf), "[vm a]\n");

        memset(buf + n, 'k', 200);
        snprintf(buf + n + 200, sizeof(buf) - n - 200, " = 1\n");
        EXPECT_ERR(buf, 2, "unknown key 'kkkk", "...'");
        EXPECT_TRUE(strlen(err) < CONFIG_ERR_MAX - 1 || strstr(err, "...") != NULL);
}

/* Cuts a text at every length: each prefix must parse or fail cleanly, never crash. */
static void truncate_everywhere(const char *text, size_t len)
{
        unsigned ok = 0, failed = 0;

        for (size_t cut = 0; cut <= len; cut++) {
                int r = parse(text, cut);

                if (r == 0) {
                        ok++;
                        check_invariants(&cfg);
                } else {
                        failed++;
                        EXPECT_EQ(r, -KEEL_EINVAL);
                        EXPECT_TRUE(memchr(err, '\0', sizeof(err)) != NULL);
                        EXPECT_EQ(strncmp(err, FILE_NAME ":", strlen(FILE_NAME) + 1), 0);
                }
        }
        /* The whole file parses; the empty prefix does not. */
        EXPECT_TRUE(ok > 0 && failed > 0);
}

TEST(truncation)
{
        size_t len, clen;
        char *text = read_source_file("docs/example.cfg", &len);
        char *crlf;

        ASSERT_TRUE(text != NULL);
        truncate_everywhere(text, len);
        crlf = to_crlf(text, len, &clen);
        truncate_everywhere(crlf, clen);
        free(crlf);
        free(text);
}

TEST_MAIN()
