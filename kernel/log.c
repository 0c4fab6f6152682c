/*
 * The leveled log: formats into a bounded line buffer and hands it to one sink (the serial
 * driver on the machine, stderr or a capture buffer in host tests).
 */
#include <stdio.h>
#include <string.h>

#include <keel/log.h>
#include <keel/spinlock.h>

static log_sink_fn log_sink;
/* One line at a time on the sink, whichever CPU writes it. */
static struct spinlock log_lock = SPINLOCK_INIT;
static enum log_level log_level = LOG_LEVEL_INFO;

static const char *const level_prefix[] = {
    [LOG_LEVEL_ERROR] = "E ",
    [LOG_LEVEL_WARN] = "W ",
    [LOG_LEVEL_INFO] = "",
    [LOG_LEVEL_DEBUG] = "D ",
};

void log_set_sink(log_sink_fn sink)
{
        log_sink = sink;
}

void log_set_level(enum log_level level)
{
        log_level = level;
}

enum log_level log_get_level(void)
{
        return log_level;
}

void log_write(const char *s, unsigned long len)
{
        struct spin_held h;

        if (!log_sink)
                return;
        h = spin_lock(&log_lock);
        log_sink(s, len);
        spin_unlock(h);
}

void log_vprintf(enum log_level level, const char *fmt, va_list ap)
{
        char line[640];
        size_t n;
        int r;

        if (level > log_level)
                return;
        n = strlen(level_prefix[level]);
        memcpy(line, level_prefix[level], n);
        r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
        if (r < 0)
                r = 0;
        n += (size_t)r < sizeof(line) - n - 1 ? (size_t)r : sizeof(line) - n - 2;
        line[n++] = '\n';
        log_write(line, n);
}

void log_printf(enum log_level level, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        log_vprintf(level, fmt, ap);
        va_end(ap);
}
