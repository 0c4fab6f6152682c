/*
 * libFuzzer target for the config parser (vmm/config.c). Arbitrary bytes go in; a failure
 * must be one well-formed message, a success must satisfy every documented limit, and a
 * parsed config written back as text must parse to the same config. Any violation aborts,
 * which libFuzzer reports as a crash with the input saved.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keel/errno.h>
#include <keel/sched.h>
#include <drivers/gpt.h>
#include <vmm/config.h>

#define FUZZ_FILE "fuzz.cfg"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_VMS 64
static struct vm_config cfg_vms[FUZZ_VMS], again_vms[FUZZ_VMS];
static struct keel_config cfg = {.vms = cfg_vms, .vm_max = FUZZ_VMS},
                          again = {.vms = again_vms, .vm_max = FUZZ_VMS};
static const struct keel_config zero = {.vms = cfg_vms, .vm_max = FUZZ_VMS};
static const struct vm_config zero_vm;
static char err[CONFIG_ERR_MAX];
static char text[16384];

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "fuzz_config: invariant violated: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\n");
        abort();
}

static bool name_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
}

static void check_error(int r)
{
        const char *nul = memchr(err, '\0', sizeof(err));

        if (r != -KEEL_EINVAL)
                fail("error code %d", r);
        if (!nul)
                fail("error message not NUL-terminated");
        if (strncmp(err, FUZZ_FILE ":", strlen(FUZZ_FILE) + 1) != 0)
                fail("error message without file prefix: %s", err);
        if (strchr(err, '\n'))
                fail("error message spans lines: %s", err);
        if (memcmp(&cfg, &zero, sizeof(cfg)) != 0)
                fail("config not cleared after an error");
        for (unsigned i = 0; i < FUZZ_VMS; i++)
                if (memcmp(&cfg_vms[i], &zero_vm, sizeof(zero_vm)) != 0)
                        fail("vm slot %u not cleared after an error", i);
}

static void check_vm(const struct keel_config *c, unsigned i)
{
        const struct vm_config *v = &c->vms[i];
        size_t n = strnlen(v->name, VM_NAME_MAX);
        size_t il = strnlen(v->image, CONFIG_PATH_MAX);

        if (n == 0 || n >= VM_NAME_MAX)
                fail("vm %u: name length %zu", i, n);
        for (size_t k = 0; k < n; k++)
                if (!name_char(v->name[k]))
                        fail("vm %u: bad name character 0x%02x", i, (unsigned char)v->name[k]);
        for (unsigned j = 0; j < i; j++)
                if (strcmp(v->name, c->vms[j].name) == 0)
                        fail("vm %u: duplicate name %s", i, v->name);
        if (v->line == 0)
                fail("vm %u: no header line", i);
        if (v->memory < (2ull << 20) || v->memory > (64ull << 30) || v->memory % (2ull << 20))
                fail("vm %u: memory 0x%llx", i, (unsigned long long)v->memory);
        if ((il == 0) == (strnlen(v->kernel, CONFIG_PATH_MAX) == 0))
                fail("vm %u: not exactly one of image (%zu) and kernel", i, il);
        if (il >= CONFIG_PATH_MAX || strnlen(v->kernel, CONFIG_PATH_MAX) >= CONFIG_PATH_MAX ||
            strnlen(v->initrd, CONFIG_PATH_MAX) >= CONFIG_PATH_MAX ||
            strnlen(v->disk, CONFIG_PATH_MAX) >= CONFIG_PATH_MAX ||
            strnlen(v->cmdline, CONFIG_CMDLINE_MAX) >= CONFIG_CMDLINE_MAX)
                fail("vm %u: a path or the command line is not terminated", i);
        if (il &&
            (v->initrd[0] || v->cmdline[0] || v->disk[0] || v->disk_readonly || v->no_event_idx))
                fail("vm %u: Linux keys on an image guest", i);
        if (v->kernel[0] && (v->format != IMAGE_AUTO || v->has_load || v->has_entry))
                fail("vm %u: image keys on a Linux guest", i);
        if (strchr(v->cmdline, '"'))
                fail("vm %u: quote in the command line", i);
        if (v->image[0] == '/' || strstr(v->image, ".."))
                fail("vm %u: image path %s escapes its directory", i, v->image);
        for (size_t k = 0; k < il; k++)
                if (v->image[k] < 0x20 || v->image[k] > 0x7e || v->image[k] == '"' ||
                    v->image[k] == '\\')
                        fail("vm %u: bad image path character 0x%02x", i,
                             (unsigned char)v->image[k]);
        if (v->format != IMAGE_AUTO && v->format != IMAGE_FLAT && v->format != IMAGE_ELF)
                fail("vm %u: format %d", i, (int)v->format);
        if (v->format == IMAGE_ELF && (v->has_load || v->has_entry))
                fail("vm %u: load/entry with format = elf", i);
        if (v->load >= v->memory || v->entry >= v->memory)
                fail("vm %u: load 0x%llx / entry 0x%llx outside memory", i,
                     (unsigned long long)v->load, (unsigned long long)v->entry);
        if (!v->has_load && v->load != 0x100000)
                fail("vm %u: default load 0x%llx", i, (unsigned long long)v->load);
        if (!v->has_entry && v->entry != v->load)
                fail("vm %u: default entry differs from load", i);
        if (v->has_expect_exit && v->has_expect_stop)
                fail("vm %u: both expectations", i);
        if (!v->has_expect_exit && v->expect_exit != 0)
                fail("vm %u: stray expect_exit", i);
        if (v->has_expect_stop
                ? v->expect_stop <= VM_STOP_EXIT || v->expect_stop >= VM_STOP_REASON_COUNT
                : v->expect_stop != VM_STOP_NONE)
                fail("vm %u: expect_stop %d", i, (int)v->expect_stop);
        if (v->weight < SCHED_WEIGHT_MIN || v->weight > SCHED_WEIGHT_MAX)
                fail("vm %u: weight %u", i, (unsigned)v->weight);
        if (v->cpu != SCHED_NO_PIN && (v->cpu < 0 || v->cpu > KEEL_CPU_INDEX_MAX))
                fail("vm %u: cpu %d", i, v->cpu);
        if (v->vcpus < 1 || v->vcpus > CONFIG_VCPUS_MAX)
                fail("vm %u: vcpus %u", i, v->vcpus);
}

static void check_config(const struct keel_config *c)
{
        if (c->vm_count < 1 || c->vm_count > c->vm_max)
                fail("vm_count %u", c->vm_count);
        if ((unsigned)c->log_level > LOG_LEVEL_DEBUG)
                fail("log level %d", (int)c->log_level);
        if (c->finish != FINISH_HALT && c->finish != FINISH_DEBUG_EXIT)
                fail("finish %d", (int)c->finish);
        for (unsigned i = 0; i < c->vm_count; i++)
                check_vm(c, i);
        for (unsigned i = c->vm_count; i < c->vm_max; i++)
                if (memcmp(&c->vms[i], &zero_vm, sizeof(c->vms[i])) != 0)
                        fail("unused vm slot %u not zero", i);
}

/* Writes the config back in the documented syntax; returns the length. */
static size_t write_config(const struct keel_config *c)
{
        static const char *const levels[] = {"error", "warn", "info", "debug"};
        static const char *const finishes[] = {"halt", "debug-exit"};
        static const char *const formats[] = {"auto", "flat", "elf"};
        size_t n = 0;

#define OUT(...)                                                            \
        do {                                                                \
                int _r = snprintf(text + n, sizeof(text) - n, __VA_ARGS__); \
                if (_r < 0 || (size_t)_r >= sizeof(text) - n)               \
                        fail("serialised config does not fit");             \
                n += (size_t)_r;                                            \
        } while (0)

        OUT("log = %s\nfinish = %s\n", levels[c->log_level], finishes[c->finish]);
        for (unsigned i = 0; i < c->vm_count; i++) {
                const struct vm_config *v = &c->vms[i];

                OUT("[vm %s]\nmemory = 0x%llx\n", v->name, (unsigned long long)v->memory);
                if (v->image[0])
                        OUT("image = \"%s\"\nformat = %s\n", v->image, formats[v->format]);
                if (v->kernel[0])
                        OUT("kernel = \"%s\"\n", v->kernel);
                if (v->initrd[0])
                        OUT("initrd = \"%s\"\n", v->initrd);
                if (v->cmdline[0])
                        OUT("cmdline = \"%s\"\n", v->cmdline);
                if (v->disk[0])
                        OUT("disk = \"%s\"\ndisk_readonly = %s\n", v->disk,
                            v->disk_readonly ? "yes" : "no");
                if (v->kernel[0])
                        OUT("event_idx = %s\n", v->no_event_idx ? "no" : "yes");
                if (v->has_load)
                        OUT("load = 0x%llx\n", (unsigned long long)v->load);
                if (v->has_entry)
                        OUT("entry = %llu\n", (unsigned long long)v->entry);
                if (v->has_expect_exit)
                        OUT("expect_exit = %lld\n", (long long)v->expect_exit);
                if (v->has_expect_stop)
                        OUT("expect_stop = %s\n", vm_stop_reason_name(v->expect_stop));
                OUT("weight = %u\nvcpus = 0x%x\nunbacked = %s\n", (unsigned)v->weight, v->vcpus,
                    v->unbacked_stop ? "stop" : "abort");
                if (v->cpu != SCHED_NO_PIN)
                        OUT("cpu = %d\n", v->cpu);
                if (v->snap_dev.kind == DISK_PART) /* a bare word may hold '"', a quoted one ' ' */
                        OUT(strchr(v->snap_dev.part, '"') ? "snapshot = %s:part=%s\n"
                                                          : "snapshot = \"%s:part=%s\"\n",
                            v->snap_dev.dev, v->snap_dev.part);
                if (v->snap_dev.kind == DISK_PARTUUID) {
                        char g[37];
                        gpt_guid_format(v->snap_dev.uuid, g);
                        OUT("snapshot = %s:partuuid=%s\n", v->snap_dev.dev, g);
                }
        }
#undef OUT
        return n;
}

static void check_round_trip(void)
{
        size_t n = write_config(&cfg);
        int r = config_parse(text, n, FUZZ_FILE, &again, err, sizeof(err));

        if (r != 0)
                fail("re-parsing the written config failed: %s\n%.*s", err, (int)n, text);
        if (again.log_level != cfg.log_level || again.finish != cfg.finish ||
            again.vm_count != cfg.vm_count)
                fail("round trip changed the global settings");
        for (unsigned i = 0; i < cfg.vm_count; i++) {
                struct vm_config a = cfg.vms[i], b = again.vms[i];

                a.line = b.line = a.snap_dev.line = b.snap_dev.line = 0;
                if (memcmp(&a, &b, sizeof(a)) != 0)
                        fail("round trip changed [vm %s]", cfg.vms[i].name);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* libFuzzer's buffer is exactly `size` bytes, so ASan catches any read past it. */
        int r = config_parse((const char *)data, size, FUZZ_FILE, &cfg, err, sizeof(err));
        char *small;
        size_t len;
        int r2;

        if (r < 0) {
                check_error(r);
                /* A short, exact-size error buffer: same verdict, a truncated copy of the text. */
                small = malloc(24);
                if (!small)
                        abort();
                r2 = config_parse((const char *)data, size, FUZZ_FILE, &again, small, 24);
                len = strnlen(small, 24);
                if (r2 != r || len == 24 || strncmp(small, err, len) != 0 ||
                    (len < 23 && strcmp(small, err) != 0))
                        fail("short error buffer: %d \"%.24s\" vs %d \"%s\"", r2, small, r, err);
                free(small);
                return 0;
        }
        if (r != 0)
                fail("success code %d", r);
        check_config(&cfg);
        check_round_trip();
        return 0;
}
