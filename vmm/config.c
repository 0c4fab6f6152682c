/*
 * The configuration-file parser (format: docs/config.md). It reads exactly `len` bytes of
 * text that is not NUL-terminated, allocates nothing, copies only into fixed-size fields with
 * explicit bounds, and stops at the first problem with one "file:line: problem" message.
 * The text comes from the user's ESP, so every byte is treated as untrusted: this file runs
 * under libFuzzer (tests/fuzz/fuzz_config.c).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <drivers/gpt.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/sched.h>
#include <vmm/config.h>

#define CONFIG_LINE_MAX   1024 /* characters per line, without the line end */
#define CONFIG_ECHO_MAX   40   /* characters of user text quoted back in a message */
#define CONFIG_MEM_ALIGN  (2ull << 20)
#define CONFIG_MEM_MAX    (64ull << 30)
#define CONFIG_LOAD_DEF   0x100000ull
#define CONFIG_STOP_CHARS 32 /* longest stop-reason name we look up, with its NUL */

/* A piece of the input: never NUL-terminated, never read past n. */
struct span {
        const char *p;
        size_t n;
};

enum config_key {
        KEY_LOG,
        KEY_FINISH,
        KEY_SELFTEST,
        KEY_CONSOLE,
        KEY_MEMORY,
        KEY_IMAGE,
        KEY_KERNEL,
        KEY_INITRD,
        KEY_CMDLINE,
        KEY_DISK,
        KEY_DISK_READONLY,
        KEY_EVENT_IDX,
        KEY_VIRTIO_CONSOLE,
        KEY_FORMAT,
        KEY_LOAD,
        KEY_ENTRY,
        KEY_EXPECT_EXIT,
        KEY_EXPECT_STOP,
        KEY_WEIGHT,
        KEY_CPU,
        KEY_VCPUS,
        KEY_UNBACKED,
        KEY_BOOT,
        KEY_PC_TESTDEV,
        KEY_SNAPSHOT,
        KEY_COUNT,
};

struct parser {
        const char *file;
        char *err;
        size_t errlen;
        struct keel_config *out;
        unsigned line;
        struct vm_config *vm; /* the section being read; NULL before the first [vm NAME] */
        /* Line on which each key was set in the current scope (0: not set). Global keys keep
         * theirs for the whole file, section keys are cleared at each [vm NAME] header. */
        unsigned key_line[KEY_COUNT];
        /* User text quoted back in the message being written (sanitised, bounded). */
        char echo1[CONFIG_ECHO_MAX + 4];
        char echo2[CONFIG_ECHO_MAX + 4];
        char where[VM_NAME_MAX + 16]; /* " in [vm NAME]" or "" */
};

typedef int (*key_handler)(struct parser *ps, struct span key, struct span val);

struct key_desc {
        const char *name;
        bool global;
        key_handler set;
};

struct name_value {
        const char *name;
        int value;
};

static const struct name_value log_names[] = {
    {"error", LOG_LEVEL_ERROR},
    {"warn", LOG_LEVEL_WARN},
    {"info", LOG_LEVEL_INFO},
    {"debug", LOG_LEVEL_DEBUG},
};

static const struct name_value finish_names[] = {
    {"halt", FINISH_HALT},
    {"debug-exit", FINISH_DEBUG_EXIT},
};

static const struct name_value selftest_names[] = {
    {"none", SELFTEST_NONE},
    {"exception", SELFTEST_EXCEPTION},
};

static const struct name_value console_names[] = {
    {"prefixed", 0},
    {"raw", 1},
};

static const struct name_value boot_names[] = {
    {"linux", KERNEL_BOOT_LINUX},
    {"multiboot", KERNEL_BOOT_MULTIBOOT},
};

static const struct name_value format_names[] = {
    {"auto", IMAGE_AUTO},
    {"flat", IMAGE_FLAT},
    {"elf", IMAGE_ELF},
};

/* ---- messages ---------------------------------------------------------------------------- */

static int perr(struct parser *ps, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes "<file>:<line>: <problem>" into the caller's buffer; always returns -KEEL_EINVAL. */
static int perr(struct parser *ps, unsigned line, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (ps->errlen == 0)
                return -KEEL_EINVAL;
        n = snprintf(ps->err, ps->errlen, "%s:%u: ", ps->file, line);
        if (n >= 0 && (size_t)n < ps->errlen) {
                va_start(ap, fmt);
                vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
                va_end(ap);
        }
        return -KEEL_EINVAL;
}

/* Copies user text into buf for a message: at most CONFIG_ECHO_MAX characters, non-printable
 * bytes shown as '?', "..." when cut. buf holds CONFIG_ECHO_MAX + 4 bytes. */
static const char *echo(char *buf, struct span s)
{
        size_t i, n = s.n < CONFIG_ECHO_MAX ? s.n : CONFIG_ECHO_MAX;

        for (i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s.p[i];
                buf[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
        }
        if (s.n > n) {
                memcpy(buf + i, "...", 3);
                i += 3;
        }
        buf[i] = '\0';
        return buf;
}

/* " in [vm NAME]" for the current section, "" at global level. */
static const char *where(struct parser *ps)
{
        if (!ps->vm)
                return "";
        snprintf(ps->where, sizeof(ps->where), " in [vm %s]", ps->vm->name);
        return ps->where;
}

/* "<key> = <value> in [vm NAME]: <problem>" at the current line. */
static int value_err(struct parser *ps, struct span key, struct span val, const char *problem)
{
        return perr(ps, ps->line, "%s = %s%s: %s", echo(ps->echo1, key), echo(ps->echo2, val),
                    where(ps), problem);
}

/* ---- lexical helpers ---------------------------------------------------------------------- */

static bool is_space(char c)
{
        return c == ' ' || c == '\t';
}

static bool is_name_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
}

static size_t skip_space(const char *p, size_t n, size_t i)
{
        while (i < n && is_space(p[i]))
                i++;
        return i;
}

static bool span_eq(struct span s, const char *word)
{
        size_t n = strlen(word);

        return s.n == n && memcmp(s.p, word, n) == 0;
}

static bool span_has(struct span s, const char *needle)
{
        size_t n = strlen(needle);

        for (size_t i = 0; i + n <= s.n; i++)
                if (memcmp(s.p + i, needle, n) == 0)
                        return true;
        return false;
}

enum num_result {
        NUM_OK = 0,
        NUM_SYNTAX,
        NUM_OVERFLOW,
};

static int digit_value(char c, unsigned base)
{
        int d;

        if (c >= '0' && c <= '9')
                d = c - '0';
        else if (c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
        else
                return -1;
        return (unsigned)d < base ? d : -1;
}

/*
 * Unsigned number: decimal, or hex after "0x"; with `suffix`, an optional K, M or G (binary
 * units, either case). Overflow of 64 bits is reported, never wrapped.
 */
static enum num_result parse_u64(struct span s, bool suffix, uint64_t *out)
{
        unsigned base = 10, shift = 0;
        size_t i = 0, digits;
        uint64_t v = 0;
        int d;

        if (s.n >= 2 && s.p[0] == '0' && (s.p[1] == 'x' || s.p[1] == 'X')) {
                base = 16;
                i = 2;
        }
        digits = i;
        for (; i < s.n && (d = digit_value(s.p[i], base)) >= 0; i++) {
                if (v > (UINT64_MAX - (uint64_t)d) / base)
                        return NUM_OVERFLOW;
                v = v * base + (uint64_t)d;
        }
        if (i == digits)
                return NUM_SYNTAX;
        if (suffix && i + 1 == s.n) {
                switch (s.p[i]) {
                case 'k':
                case 'K':
                        shift = 10;
                        break;
                case 'm':
                case 'M':
                        shift = 20;
                        break;
                case 'g':
                case 'G':
                        shift = 30;
                        break;
                default:
                        return NUM_SYNTAX;
                }
                i++;
        }
        if (i != s.n)
                return NUM_SYNTAX;
        if (shift && v > (UINT64_MAX >> shift))
                return NUM_OVERFLOW;
        *out = v << shift;
        return NUM_OK;
}

/*
 * Signed 64-bit number: optional '-', then decimal or 0x hex. Decimal must fit int64_t; hex
 * without '-' is the 64-bit pattern (0xffffffffffffffff is -1, as the guest's register holds
 * it); "-0x..." negates a magnitude of at most 2^63.
 */
static enum num_result parse_s64(struct span s, int64_t *out)
{
        bool neg = s.n > 0 && s.p[0] == '-';
        struct span mag = neg ? (struct span){s.p + 1, s.n - 1} : s;
        bool hex = mag.n >= 2 && mag.p[0] == '0' && (mag.p[1] == 'x' || mag.p[1] == 'X');
        enum num_result r;
        uint64_t v;

        r = parse_u64(mag, false, &v);
        if (r != NUM_OK)
                return r;
        if (neg) {
                if (v > (1ull << 63))
                        return NUM_OVERFLOW;
                *out = v == (1ull << 63) ? INT64_MIN : -(int64_t)v;
        } else if (hex) {
                *out = (int64_t)v;
        } else {
                if (v > (uint64_t)INT64_MAX)
                        return NUM_OVERFLOW;
                *out = (int64_t)v;
        }
        return NUM_OK;
}

/* Looks `val` up in a table of names; on failure reports the allowed names. */
static int parse_choice(struct parser *ps, struct span key, struct span val,
                        const struct name_value *tab, size_t count, int *out)
{
        char allowed[96];
        size_t used = 0;

        for (size_t i = 0; i < count; i++) {
                if (span_eq(val, tab[i].name)) {
                        *out = tab[i].value;
                        return 0;
                }
        }
        allowed[0] = '\0';
        for (size_t i = 0; i < count && used < sizeof(allowed); i++) {
                int n = snprintf(allowed + used, sizeof(allowed) - used, "%s%s", i ? ", " : "",
                                 tab[i].name);
                if (n < 0)
                        break;
                used += (size_t)n;
        }
        return perr(ps, ps->line, "%s = %s%s: unknown value (expected one of: %s)",
                    echo(ps->echo1, key), echo(ps->echo2, val), where(ps), allowed);
}

static int number_err(struct parser *ps, struct span key, struct span val, enum num_result r,
                      const char *syntax)
{
        if (r == NUM_OVERFLOW)
                return value_err(ps, key, val, "number too large (does not fit in 64 bits)");
        return value_err(ps, key, val, syntax);
}

/* ---- keys --------------------------------------------------------------------------------- */

static int set_log(struct parser *ps, struct span key, struct span val)
{
        int v;
        int r = parse_choice(ps, key, val, log_names, ARRAY_SIZE(log_names), &v);

        if (r == 0)
                ps->out->log_level = (enum log_level)v;
        return r;
}

static int set_finish(struct parser *ps, struct span key, struct span val)
{
        int v;
        int r = parse_choice(ps, key, val, finish_names, ARRAY_SIZE(finish_names), &v);

        if (r == 0)
                ps->out->finish = (enum finish_action)v;
        return r;
}

static int set_console(struct parser *ps, struct span key, struct span val)
{
        int v;
        int r = parse_choice(ps, key, val, console_names, ARRAY_SIZE(console_names), &v);

        if (r == 0)
                ps->out->console_raw = v == 1;
        return r;
}

static int set_selftest(struct parser *ps, struct span key, struct span val)
{
        int v;
        int r = parse_choice(ps, key, val, selftest_names, ARRAY_SIZE(selftest_names), &v);

        if (r == 0)
                ps->out->selftest = (enum selftest)v;
        return r;
}

static int set_memory(struct parser *ps, struct span key, struct span val)
{
        enum num_result r;
        uint64_t v;

        r = parse_u64(val, true, &v);
        if (r != NUM_OK)
                return number_err(ps, key, val, r,
                                  "not a size (expected decimal or 0x hex with an optional K, M "
                                  "or G suffix, e.g. 16M)");
        if (v < CONFIG_MEM_ALIGN)
                return value_err(ps, key, val, "must be at least 2M");
        if (v > CONFIG_MEM_MAX)
                return value_err(ps, key, val, "must be at most 64G");
        if (v % CONFIG_MEM_ALIGN)
                return value_err(ps, key, val, "must be a multiple of 2M");
        ps->vm->memory = v;
        return 0;
}

/* A '/'-separated path relative to keel.efi's directory, copied into dst. */
static int set_path(struct parser *ps, struct span key, struct span val, char *dst)
{
        size_t start = 0;

        if (val.n >= CONFIG_PATH_MAX)
                return value_err(ps, key, val, "path too long (at most 127 characters)");
        if (val.p[0] == '/')
                return value_err(ps, key, val,
                                 "must be relative to keel.efi's directory (no leading '/')");
        for (size_t i = 0; i < val.n; i++) {
                char c = val.p[i];
                if (c < 0x20 || c > 0x7e)
                        return value_err(ps, key, val, "only printable ASCII is allowed in paths");
                if (c == '\\')
                        return value_err(ps, key, val, "use '/' to separate directories, not '\\'");
                if (c == '"')
                        return value_err(ps, key, val, "'\"' is not allowed in paths");
        }
        if (span_has(val, ".."))
                return value_err(ps, key, val, "must not contain '..'");
        /* Every '/'-separated component must be non-empty: no "a//b", no trailing '/'. */
        for (size_t i = 0; i <= val.n; i++) {
                if (i == val.n || val.p[i] == '/') {
                        if (i == start)
                                return value_err(ps, key, val,
                                                 "empty path component ('//' or a trailing '/')");
                        start = i + 1;
                }
        }
        memcpy(dst, val.p, val.n);
        dst[val.n] = '\0';
        return 0;
}

/* A key that belongs to the other kind of guest (image vs kernel) than one already given. */
static int kind_conflict(struct parser *ps, struct span key, struct span val, enum config_key other,
                         const char *why)
{
        char msg[128];

        if (!ps->key_line[other])
                return 0;
        snprintf(msg, sizeof(msg), "%s (line %u)", why, ps->key_line[other]);
        return value_err(ps, key, val, msg);
}

static int not_with_kernel(struct parser *ps, struct span key, struct span val)
{
        return kind_conflict(ps, key, val, KEY_KERNEL,
                             "only for image guests, and this VM runs a Linux kernel");
}

static int set_image(struct parser *ps, struct span key, struct span val)
{
        int r = kind_conflict(ps, key, val, KEY_KERNEL,
                              "a VM runs either an image or a Linux kernel, and kernel is set");

        return r ? r : set_path(ps, key, val, ps->vm->image);
}

static int set_kernel(struct parser *ps, struct span key, struct span val)
{
        static const enum config_key image_keys[] = {KEY_IMAGE, KEY_FORMAT, KEY_LOAD, KEY_ENTRY};
        int r = 0;

        for (unsigned i = 0; !r && i < ARRAY_SIZE(image_keys); i++)
                r = kind_conflict(ps, key, val, image_keys[i],
                                  "a Linux kernel cannot be combined with image, format, load "
                                  "or entry, and one is set");
        return r ? r : set_path(ps, key, val, ps->vm->kernel);
}

static int set_initrd(struct parser *ps, struct span key, struct span val)
{
        return set_path(ps, key, val, ps->vm->initrd);
}

/*
 * disk = DEV:SELECTOR names a disk Keel drives (docs/storage.md): DEV:whole, DEV:part=NAME,
 * DEV:partuuid=GUID, DEV:lba=START+COUNT. FAT names cannot hold ':', so any other value is a
 * file on the ESP, read into RAM.
 */
static int set_disk_device(struct parser *ps, struct span key, struct span val, size_t colon,
                           struct disk_source *d)
{
        struct span sel = {val.p + colon + 1, val.n - colon - 1};
        const char *forms = "expected DEV:whole, DEV:part=NAME, DEV:partuuid=GUID or "
                            "DEV:lba=START+COUNT (docs/storage.md)";

        if (!colon || colon >= sizeof(d->dev))
                return value_err(ps, key, val,
                                 "the disk's name (before ':') must be 1 to 23 "
                                 "characters, e.g. nvme0n1");
        for (size_t i = 0; i < colon; i++)
                if (!is_name_char(val.p[i]))
                        return value_err(ps, key, val,
                                         "a disk's name has only letters, digits, '_' and '-'");
        memset(d, 0, sizeof(*d));
        memcpy(d->dev, val.p, colon);
        d->line = ps->line;
        if (span_eq(sel, "whole")) {
                d->kind = DISK_WHOLE;
        } else if (sel.n > 5 && !memcmp(sel.p, "part=", 5)) {
                if (sel.n - 5 >= sizeof(d->part))
                        return value_err(ps, key, val,
                                         "partition name too long (a GPT name has "
                                         "at most 36 UTF-16 characters)");
                d->kind = DISK_PART;
                memcpy(d->part, sel.p + 5, sel.n - 5);
        } else if (sel.n > 9 && !memcmp(sel.p, "partuuid=", 9)) {
                if (!gpt_guid_parse(sel.p + 9, sel.n - 9, d->uuid))
                        return value_err(ps, key, val,
                                         "partuuid wants a GUID such as "
                                         "3F2504E0-4F89-11D3-9A0C-0305E82C3301");
                d->kind = DISK_PARTUUID;
        } else if (sel.n > 4 && !memcmp(sel.p, "lba=", 4)) {
                size_t k = 4;
                struct span a, b;
                enum num_result r;

                while (k < sel.n && sel.p[k] != '+')
                        k++;
                const char *plus = sel.p + k;
                if (k == sel.n)
                        return value_err(ps, key, val, "lba wants START+COUNT, in blocks");
                a = (struct span){sel.p + 4, (size_t)(plus - sel.p - 4)};
                b = (struct span){plus + 1, (size_t)(sel.p + sel.n - plus - 1)};
                r = parse_u64(a, false, &d->lba);
                if (r == NUM_OK)
                        r = parse_u64(b, false, &d->count);
                if (r != NUM_OK)
                        return number_err(ps, key, val, r, "lba wants START+COUNT, in blocks");
                if (!d->count || d->lba + d->count < d->lba)
                        return value_err(ps, key, val, "the range is empty or wraps around");
                d->kind = DISK_LBA;
        } else {
                return value_err(ps, key, val, forms);
        }
        return 0;
}

static int set_disk(struct parser *ps, struct span key, struct span val)
{
        for (size_t i = 0; i < val.n; i++)
                if (val.p[i] == ':') {
                        ps->vm->disk[0] = '\0';
                        return set_disk_device(ps, key, val, i, &ps->vm->disk_dev);
                }
        ps->vm->disk_dev.kind = DISK_FILE;
        return set_path(ps, key, val, ps->vm->disk);
}

/* snapshot = DEV:part=NAME or DEV:partuuid=GUID: where `snapshot VM` writes (docs/snapshot.md). */
static int set_snapshot(struct parser *ps, struct span key, struct span val)
{
        size_t i = 0;

        while (i < val.n && val.p[i] != ':')
                i++;
        if (i == val.n || !(val.n - i > 6 && !memcmp(val.p + i + 1, "part", 4) &&
                            (val.p[i + 5] == '=' || val.p[i + 5] == 'u')))
                return value_err(ps, key, val,
                                 "expected DEV:part=NAME or DEV:partuuid=GUID, a GPT partition "
                                 "of a disk Keel drives (docs/snapshot.md)");
        return set_disk_device(ps, key, val, i, &ps->vm->snap_dev);
}

static int set_cmdline(struct parser *ps, struct span key, struct span val)
{
        if (val.n >= CONFIG_CMDLINE_MAX)
                return value_err(ps, key, val, "too long (at most 1007 characters)");
        for (size_t i = 0; i < val.n; i++)
                if (val.p[i] < 0x20 || val.p[i] > 0x7e || val.p[i] == '"')
                        return value_err(ps, key, val,
                                         "only printable ASCII without '\"' is allowed");
        memcpy(ps->vm->cmdline, val.p, val.n);
        ps->vm->cmdline[val.n] = '\0';
        return 0;
}

/* yes/true or no/false into *out. */
static int set_bool(struct parser *ps, struct span key, struct span val, bool *out)
{
        if (span_eq(val, "yes") || span_eq(val, "true")) {
                *out = true;
                return 0;
        }
        if (span_eq(val, "no") || span_eq(val, "false")) {
                *out = false;
                return 0;
        }
        return value_err(ps, key, val, "expected yes or no");
}

static int set_disk_readonly(struct parser *ps, struct span key, struct span val)
{
        return set_bool(ps, key, val, &ps->vm->disk_readonly);
}

static int set_pc_testdev(struct parser *ps, struct span key, struct span val)
{
        return set_bool(ps, key, val, &ps->vm->pc_testdev);
}

static int set_event_idx(struct parser *ps, struct span key, struct span val)
{
        bool on = true;
        int r = set_bool(ps, key, val, &on);

        ps->vm->no_event_idx = !on;
        return r;
}

static int set_virtio_console(struct parser *ps, struct span key, struct span val)
{
        bool on = true;
        int r = set_bool(ps, key, val, &on);

        ps->vm->no_virtio_console = !on;
        return r;
}

static int flat_only(struct parser *ps, struct span key, struct span val)
{
        if (ps->vm->format == IMAGE_ELF && ps->key_line[KEY_FORMAT]) {
                char msg[96];

                snprintf(msg, sizeof(msg),
                         "only for flat images, but format = elf (line %u): an ELF says where "
                         "it loads",
                         ps->key_line[KEY_FORMAT]);
                return value_err(ps, key, val, msg);
        }
        return 0;
}

static int set_format(struct parser *ps, struct span key, struct span val)
{
        int v;
        int r = parse_choice(ps, key, val, format_names, ARRAY_SIZE(format_names), &v);

        if (!r)
                r = not_with_kernel(ps, key, val);
        if (r)
                return r;
        if (v == IMAGE_ELF && (ps->key_line[KEY_LOAD] || ps->key_line[KEY_ENTRY])) {
                enum config_key k = ps->key_line[KEY_LOAD] ? KEY_LOAD : KEY_ENTRY;
                char msg[96];

                snprintf(msg, sizeof(msg),
                         "%s is set (line %u) but load and entry are only for "
                         "flat images",
                         k == KEY_LOAD ? "load" : "entry", ps->key_line[k]);
                return value_err(ps, key, val, msg);
        }
        ps->vm->format = (enum image_format)v;
        return 0;
}

static int parse_address(struct parser *ps, struct span key, struct span val, uint64_t *out)
{
        enum num_result r = parse_u64(val, true, out);

        if (r != NUM_OK)
                return number_err(ps, key, val, r,
                                  "not an address (expected decimal or 0x hex, optional K, M or G "
                                  "suffix)");
        return not_with_kernel(ps, key, val) ?: flat_only(ps, key, val);
}

static int set_load(struct parser *ps, struct span key, struct span val)
{
        int r = parse_address(ps, key, val, &ps->vm->load);

        if (r == 0)
                ps->vm->has_load = true;
        return r;
}

static int set_entry(struct parser *ps, struct span key, struct span val)
{
        int r = parse_address(ps, key, val, &ps->vm->entry);

        if (r == 0)
                ps->vm->has_entry = true;
        return r;
}

static int one_expectation(struct parser *ps, struct span key, struct span val,
                           enum config_key other)
{
        char msg[96];

        if (!ps->key_line[other])
                return 0;
        snprintf(msg, sizeof(msg),
                 "%s is already set (line %u): give at most one of expect_exit "
                 "and expect_stop",
                 other == KEY_EXPECT_EXIT ? "expect_exit" : "expect_stop", ps->key_line[other]);
        return value_err(ps, key, val, msg);
}

static int set_expect_exit(struct parser *ps, struct span key, struct span val)
{
        enum num_result r = parse_s64(val, &ps->vm->expect_exit);

        if (r != NUM_OK)
                return number_err(ps, key, val, r,
                                  "not an exit code (expected a signed 64-bit decimal or 0x hex "
                                  "number)");
        ps->vm->has_expect_exit = true;
        return one_expectation(ps, key, val, KEY_EXPECT_STOP);
}

static int set_expect_stop(struct parser *ps, struct span key, struct span val)
{
        char name[CONFIG_STOP_CHARS];
        char allowed[160];
        size_t used = 0;
        enum vm_stop_reason r = VM_STOP_NONE;

        if (val.n < sizeof(name)) {
                memcpy(name, val.p, val.n);
                name[val.n] = '\0';
                if (vm_stop_reason_parse(name, &r) < 0)
                        r = VM_STOP_NONE;
        }
        if (r > VM_STOP_EXIT && r < VM_STOP_REASON_COUNT) {
                ps->vm->expect_stop = r;
                ps->vm->has_expect_stop = true;
                return one_expectation(ps, key, val, KEY_EXPECT_EXIT);
        }
        allowed[0] = '\0';
        for (int i = VM_STOP_EXIT + 1; i < VM_STOP_REASON_COUNT && used < sizeof(allowed); i++) {
                int n = snprintf(allowed + used, sizeof(allowed) - used, "%s%s",
                                 i > VM_STOP_EXIT + 1 ? ", " : "",
                                 vm_stop_reason_name((enum vm_stop_reason)i));
                if (n < 0)
                        break;
                used += (size_t)n;
        }
        if (span_eq(val, "exit"))
                return value_err(ps, key, val, "for the exit hypercall use expect_exit = CODE");
        return perr(ps, ps->line, "%s = %s%s: unknown stop reason (expected %s)",
                    echo(ps->echo1, key), echo(ps->echo2, val), where(ps), allowed);
}

/* A number in lo..hi into *out; `what` says what it is in the range message. */
static int parse_range(struct parser *ps, struct span key, struct span val, uint32_t lo,
                       uint32_t hi, const char *what, uint32_t *out)
{
        char msg[128];
        uint64_t v;
        enum num_result r = parse_u64(val, false, &v);

        if (r == NUM_OK && v >= lo && v <= hi) {
                *out = (uint32_t)v;
                return 0;
        }
        if (r == NUM_SYNTAX)
                snprintf(msg, sizeof(msg), "not a number (expected decimal or 0x hex, %u to %u)",
                         (unsigned)lo, (unsigned)hi);
        else
                snprintf(msg, sizeof(msg), "must be from %u to %u (%s)", (unsigned)lo, (unsigned)hi,
                         what);
        return value_err(ps, key, val, msg);
}

static int set_weight(struct parser *ps, struct span key, struct span val)
{
        return parse_range(ps, key, val, SCHED_WEIGHT_MIN, SCHED_WEIGHT_MAX,
                           "its share of CPU time; default 256", &ps->vm->weight);
}

static int set_vcpus(struct parser *ps, struct span key, struct span val)
{
        return parse_range(ps, key, val, 1, CONFIG_VCPUS_MAX, "virtual CPUs; default 1",
                           &ps->vm->vcpus);
}

static int set_cpu(struct parser *ps, struct span key, struct span val)
{
        uint32_t cpu;
        int r = parse_range(ps, key, val, 0, KEEL_CPU_INDEX_MAX,
                            "the physical CPU to pin to; default: any", &cpu);

        if (r == 0)
                ps->vm->cpu = (int)cpu;
        return r;
}

static int set_unbacked(struct parser *ps, struct span key, struct span val)
{
        if (span_eq(val, "abort") || span_eq(val, "stop")) {
                ps->vm->unbacked_stop = span_eq(val, "stop");
                return 0;
        }
        return value_err(ps, key, val,
                         "expected abort (the guest gets the architecture's fault for an access "
                         "to an address with nothing behind it) or stop (the VM stops)");
}

static int set_boot(struct parser *ps, struct span key, struct span val)
{
        int v;
        int r = parse_choice(ps, key, val, boot_names, ARRAY_SIZE(boot_names), &v);

        if (!r)
                r = kind_conflict(ps, key, val, KEY_IMAGE,
                                  "only for kernel = ... VMs, and this one runs an image");
        if (!r)
                ps->vm->boot = (enum kernel_boot)v;
        return r;
}

static const struct key_desc keys[KEY_COUNT] = {
    [KEY_LOG] = {"log", true, set_log},
    [KEY_FINISH] = {"finish", true, set_finish},
    [KEY_SELFTEST] = {"selftest", true, set_selftest},
    [KEY_CONSOLE] = {"console", true, set_console},
    [KEY_MEMORY] = {"memory", false, set_memory},
    [KEY_IMAGE] = {"image", false, set_image},
    [KEY_KERNEL] = {"kernel", false, set_kernel},
    [KEY_INITRD] = {"initrd", false, set_initrd},
    [KEY_CMDLINE] = {"cmdline", false, set_cmdline},
    [KEY_DISK] = {"disk", false, set_disk},
    [KEY_DISK_READONLY] = {"disk_readonly", false, set_disk_readonly},
    [KEY_EVENT_IDX] = {"event_idx", false, set_event_idx},
    [KEY_VIRTIO_CONSOLE] = {"virtio_console", false, set_virtio_console},
    [KEY_FORMAT] = {"format", false, set_format},
    [KEY_LOAD] = {"load", false, set_load},
    [KEY_ENTRY] = {"entry", false, set_entry},
    [KEY_EXPECT_EXIT] = {"expect_exit", false, set_expect_exit},
    [KEY_EXPECT_STOP] = {"expect_stop", false, set_expect_stop},
    [KEY_WEIGHT] = {"weight", false, set_weight},
    [KEY_CPU] = {"cpu", false, set_cpu},
    [KEY_VCPUS] = {"vcpus", false, set_vcpus},
    [KEY_UNBACKED] = {"unbacked", false, set_unbacked},
    [KEY_BOOT] = {"boot", false, set_boot},
    [KEY_PC_TESTDEV] = {"pc_testdev", false, set_pc_testdev},
    [KEY_SNAPSHOT] = {"snapshot", false, set_snapshot},
};

/* ---- sections ----------------------------------------------------------------------------- */

/* Checks the finished section as a whole and fills in defaults. */
static int end_section(struct parser *ps)
{
        struct vm_config *vm = ps->vm;

        if (!vm)
                return 0;
        if (!ps->key_line[KEY_MEMORY])
                return perr(ps, vm->line,
                            "[vm %s] has no memory key (required: the VM's RAM, e.g. memory = 16M)",
                            vm->name);
        if (!ps->key_line[KEY_IMAGE] && !ps->key_line[KEY_KERNEL])
                return perr(ps, vm->line,
                            "[vm %s] has no image or kernel key (required: the guest's file, "
                            "e.g. image = guests/%s.bin or kernel = guests/vmlinuz)",
                            vm->name, vm->name);
        if (ps->key_line[KEY_IMAGE]) {
                static const enum config_key linux_keys[] = {
                    KEY_INITRD,    KEY_CMDLINE,        KEY_DISK,      KEY_DISK_READONLY,
                    KEY_EVENT_IDX, KEY_VIRTIO_CONSOLE, KEY_PC_TESTDEV};

                for (unsigned i = 0; i < ARRAY_SIZE(linux_keys); i++)
                        if (ps->key_line[linux_keys[i]])
                                return perr(ps, ps->key_line[linux_keys[i]],
                                            "%s%s is only for Linux VMs (kernel = ...), but this "
                                            "one runs image = %s",
                                            keys[linux_keys[i]].name, where(ps), vm->image);
        }
        if (ps->key_line[KEY_BOOT] && !ps->key_line[KEY_KERNEL])
                return perr(ps, ps->key_line[KEY_BOOT],
                            "boot%s is only for kernel = ... VMs, but this one runs image = %s",
                            where(ps), vm->image);
        if (vm->boot == KERNEL_BOOT_MULTIBOOT) {
                static const enum config_key virtio_keys[] = {KEY_DISK, KEY_DISK_READONLY,
                                                              KEY_EVENT_IDX, KEY_VIRTIO_CONSOLE};

                for (unsigned i = 0; i < ARRAY_SIZE(virtio_keys); i++)
                        if (ps->key_line[virtio_keys[i]])
                                return perr(ps, ps->key_line[virtio_keys[i]],
                                            "%s%s: a Multiboot VM (boot = multiboot, line %u) has "
                                            "no virtio devices; remove it",
                                            keys[virtio_keys[i]].name, where(ps),
                                            ps->key_line[KEY_BOOT]);
        }
        if (ps->key_line[KEY_DISK_READONLY] && !ps->key_line[KEY_DISK])
                return perr(ps, ps->key_line[KEY_DISK_READONLY],
                            "disk_readonly%s without a disk = ... key", where(ps));
        if (!vm->has_load)
                vm->load = CONFIG_LOAD_DEF;
        if (!vm->has_entry)
                vm->entry = vm->load;
        if (vm->load >= vm->memory)
                return perr(
                    ps, vm->has_load ? ps->key_line[KEY_LOAD] : vm->line,
                    "load%s is outside the VM's %uM of memory (an offset into the VM's RAM, below "
                    "memory)",
                    where(ps), (unsigned)(vm->memory >> 20));
        if (vm->entry >= vm->memory)
                return perr(
                    ps, vm->has_entry ? ps->key_line[KEY_ENTRY] : vm->line,
                    "entry%s is outside the VM's %uM of memory (an offset into the VM's RAM, below "
                    "memory)",
                    where(ps), (unsigned)(vm->memory >> 20));
        ps->vm = NULL;
        return 0;
}

static int section_header(struct parser *ps, const char *p, size_t n, size_t open)
{
        struct span inner, name;
        size_t close, i, end;
        int r;

        for (close = open + 1; close < n && p[close] != ']'; close++)
                ;
        if (close == n)
                return perr(ps, ps->line, "unterminated section header (expected [vm NAME])");
        i = skip_space(p, n, close + 1);
        if (i < n && p[i] != '#')
                return perr(ps, ps->line, "unexpected '%s' after the section header",
                            echo(ps->echo1, (struct span){p + i, n - i}));

        i = skip_space(p, close, open + 1);
        end = close;
        while (end > i && is_space(p[end - 1]))
                end--;
        inner = (struct span){p + i, end - i};
        if (span_eq(inner, "vm"))
                return perr(ps, ps->line, "[vm] needs a name: [vm NAME]");
        if (inner.n < 3 || memcmp(inner.p, "vm", 2) != 0 || !is_space(inner.p[2]))
                return perr(ps, ps->line, "unknown section '[%s]' (expected [vm NAME])",
                            echo(ps->echo1, inner));
        i = skip_space(inner.p, inner.n, 2);
        name = (struct span){inner.p + i, inner.n - i};

        r = end_section(ps);
        if (r)
                return r;

        for (i = 0; i < name.n; i++)
                if (!is_name_char(name.p[i]))
                        return perr(ps, ps->line,
                                    "bad VM name '%s': use 1 to %u characters of A-Z a-z 0-9 _ -",
                                    echo(ps->echo1, name), VM_NAME_MAX - 1);
        if (name.n >= VM_NAME_MAX)
                return perr(ps, ps->line, "VM name '%s' is too long (at most %u characters)",
                            echo(ps->echo1, name), VM_NAME_MAX - 1);
        if (ps->out->vm_count >= ps->out->vm_max) /* room from config_vm_room: a Keel bug */
                return perr(ps, ps->line, "too many VMs: room for %u [vm NAME] sections",
                            ps->out->vm_max);
        for (i = 0; i < ps->out->vm_count; i++) {
                const struct vm_config *o = &ps->out->vms[i];
                if (span_eq(name, o->name))
                        return perr(ps, ps->line, "duplicate VM name '%s' (first used on line %u)",
                                    o->name, o->line);
        }

        ps->vm = &ps->out->vms[ps->out->vm_count++];
        memcpy(ps->vm->name, name.p, name.n);
        ps->vm->name[name.n] = '\0';
        ps->vm->line = ps->line;
        ps->vm->format = IMAGE_AUTO;
        ps->vm->weight = SCHED_WEIGHT_DEFAULT;
        ps->vm->cpu = SCHED_NO_PIN;
        ps->vm->vcpus = 1;
        for (i = 0; i < KEY_COUNT; i++)
                if (!keys[i].global)
                        ps->key_line[i] = 0;
        return 0;
}

static const char *const section_key_list =
    "memory, image, format, load, entry, kernel, initrd, cmdline, disk, disk_readonly, "
    "event_idx, virtio_console, boot, expect_exit, expect_stop, weight, cpu, vcpus, unbacked, "
    "pc_testdev, snapshot";

static int key_value(struct parser *ps, const char *p, size_t n, size_t i)
{
        struct span key, val;
        size_t j, k;
        int which = -1;

        for (j = i; j < n && is_name_char(p[j]); j++)
                ;
        key = (struct span){p + i, j - i};
        if (key.n == 0)
                return perr(ps, ps->line,
                            "expected 'key = value', '[vm NAME]' or a comment, not '%s'",
                            echo(ps->echo1, (struct span){p + i, n - i}));
        k = skip_space(p, n, j);
        if (k == n || p[k] != '=')
                return perr(ps, ps->line, "missing '=' after '%s' (expected %s = VALUE)",
                            echo(ps->echo1, key), echo(ps->echo2, key));

        for (int w = 0; w < KEY_COUNT; w++)
                if (span_eq(key, keys[w].name))
                        which = w;
        if (which < 0) {
                if (ps->vm)
                        return perr(ps, ps->line, "unknown key '%s'%s (expected %s)",
                                    echo(ps->echo1, key), where(ps), section_key_list);
                return perr(
                    ps, ps->line,
                    "unknown key '%s' (expected log, finish, selftest or console; VM keys (%s) go "
                    "after a [vm NAME] header)",
                    echo(ps->echo1, key), section_key_list);
        }
        if (keys[which].global && ps->vm)
                return perr(
                    ps, ps->line,
                    "global key '%s'%s: log, finish, selftest and console go before the first "
                    "[vm NAME] section",
                    keys[which].name, where(ps));
        if (!keys[which].global && !ps->vm)
                return perr(
                    ps, ps->line,
                    "key '%s' outside a [vm NAME] section (only log, finish, selftest and console "
                    "may come before the first [vm NAME])",
                    keys[which].name);
        if (ps->key_line[which])
                return perr(ps, ps->line, "duplicate key '%s'%s (already set on line %u)",
                            keys[which].name, where(ps), ps->key_line[which]);

        /* The value: "quoted" (may hold '#' and spaces) or one bare word. */
        k = skip_space(p, n, k + 1);
        if (k < n && p[k] == '"') {
                for (j = k + 1; j < n && p[j] != '"'; j++)
                        ;
                if (j == n)
                        return perr(ps, ps->line, "unterminated quote in the value of '%s'%s",
                                    keys[which].name, where(ps));
                val = (struct span){p + k + 1, j - k - 1};
                j++;
        } else {
                for (j = k; j < n && !is_space(p[j]) && p[j] != '#'; j++)
                        ;
                val = (struct span){p + k, j - k};
        }
        j = skip_space(p, n, j);
        if (j < n && p[j] != '#')
                return perr(ps, ps->line,
                            "%s = %s%s: unexpected '%s' after the value (quote values that contain "
                            "spaces)",
                            keys[which].name, echo(ps->echo1, val), where(ps),
                            echo(ps->echo2, (struct span){p + j, n - j}));
        if (val.n == 0)
                return perr(ps, ps->line, "'%s'%s has no value", keys[which].name, where(ps));

        ps->key_line[which] = ps->line;
        return keys[which].set(ps, key, val);
}

/* One line without its line end; the caller has refused NUL and control characters. */
static int parse_line(struct parser *ps, const char *p, size_t n)
{
        size_t i = skip_space(p, n, 0);

        if (i == n || p[i] == '#')
                return 0;
        if (p[i] == '[')
                return section_header(ps, p, n, i);
        return key_value(ps, p, n, i);
}

static int parse_text(struct parser *ps, const char *text, size_t len)
{
        size_t pos = 0;
        int r;

        /* A UTF-8 byte-order mark, as some Windows editors write, is not part of the text. */
        if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
                pos = 3;
        while (pos < len) {
                size_t start = pos, end;

                ps->line++;
                for (; pos < len && text[pos] != '\n'; pos++) {
                        unsigned char c = (unsigned char)text[pos];

                        if (c == '\0')
                                return perr(ps, ps->line,
                                            "NUL byte in the text (the config must be plain text)");
                        if (c == '\r' && pos + 1 < len && text[pos + 1] != '\n')
                                return perr(
                                    ps, ps->line,
                                    "carriage return inside a line (lines end in LF or CRLF)");
                        if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f)
                                return perr(ps, ps->line,
                                            "control character 0x%02x (only tab is allowed)",
                                            (unsigned)c);
                }
                end = pos;
                if (end > start && text[end - 1] == '\r')
                        end--;
                if (end - start > CONFIG_LINE_MAX)
                        return perr(ps, ps->line, "line too long (%u characters, at most %u)",
                                    end - start > 99999 ? 99999u : (unsigned)(end - start),
                                    CONFIG_LINE_MAX);
                if (pos < len)
                        pos++; /* the '\n' */
                r = parse_line(ps, text + start, end - start);
                if (r)
                        return r;
        }
        r = end_section(ps);
        if (r)
                return r;
        if (ps->out->vm_count == 0)
                return perr(ps, 0, "no [vm NAME] section: nothing to run");
        return 0;
}

int config_parse(const char *text, uint64_t len, const char *filename, struct keel_config *out,
                 char *err, uint64_t errlen)
{
        struct vm_config *vms;
        unsigned max;
        struct parser ps;
        int r;

        CHECK(out != NULL && (out->vms != NULL || out->vm_max == 0));
        CHECK(text != NULL || len == 0);
        CHECK(err != NULL || errlen == 0);

        memset(&ps, 0, sizeof(ps));
        ps.file = filename ? filename : "config";
        ps.err = err;
        ps.errlen = errlen > SIZE_MAX ? SIZE_MAX : (size_t)errlen;
        ps.out = out;
        vms = out->vms;
        max = out->vm_max;
        memset(out, 0, sizeof(*out));
        memset(vms, 0, max * sizeof(*vms));
        out->vms = vms;
        out->vm_max = max;
        out->log_level = LOG_LEVEL_INFO;
        out->finish = FINISH_HALT;
        if (ps.errlen)
                err[0] = '\0';

        r = parse_text(&ps, text, len > SIZE_MAX ? SIZE_MAX : (size_t)len);
        if (r < 0) {
                /* A half-filled config must not be mistaken for a good one. */
                memset(out, 0, sizeof(*out));
                memset(vms, 0, max * sizeof(*vms));
                out->vms = vms;
                out->vm_max = max;
                return r;
        }
        return 0;
}

unsigned config_vm_room(const char *text, uint64_t len)
{
        unsigned n = 0;

        for (uint64_t i = 0; i < len; i++)
                n += text[i] == '[';
        return n ? n : 1;
}
