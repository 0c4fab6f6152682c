/*
 * The leveled log: formats into a bounded line buffer and hands it to one sink (the serial
 * driver on the machine, stderr or a capture buffer in host tests). One spinlock around the
 * sink keeps the lines of several CPUs whole; a CPU that faults or panics inside the sink
 * (it holds the lock) still prints, and so do the others if a CPU died holding it.
 */
#include <stdio.h>
#include <string.h>

#include <keel/log.h>
#include <keel/smp.h>
#include <keel/spinlock.h>

#define LOG_NO_OWNER 0xffffffffu
#define LOG_SPIN_MAX (1ul << 28) /* seconds of spinning: the holder died inside the sink */

static log_sink_fn log_sink;
static enum log_level log_level = LOG_LEVEL_INFO;
static struct spinlock log_lock = SPINLOCK_INIT;
static unsigned log_owner = LOG_NO_OWNER; /* CPU index holding log_lock */
static bool log_lock_broken;              /* a CPU died holding it: write without it */

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

/* Whose console line is unfinished on the sink (log_write_part), or NULL. Under log_lock. */
static const void *open_line;

/*
 * Take log_lock (or go on without it: this CPU holds it already, a fault or panic inside
 * the sink; or a CPU died holding it). True if it was taken and must be given back.
 */
static bool log_lock_take(void)
{
        unsigned me = arch_cpu_index();
        unsigned long spins = 0;

        if (__atomic_load_n(&log_owner, __ATOMIC_RELAXED) == me ||
            __atomic_load_n(&log_lock_broken, __ATOMIC_RELAXED))
                return false;
        while (!spin_trylock(&log_lock)) {
                if (++spins == LOG_SPIN_MAX) {
                        __atomic_store_n(&log_lock_broken, true, __ATOMIC_RELAXED);
                        return false;
                }
                arch_cpu_relax();
        }
        __atomic_store_n(&log_owner, me, __ATOMIC_RELAXED);
        return true;
}

static void log_lock_give(bool taken)
{
        if (!taken)
                return;
        __atomic_store_n(&log_owner, LOG_NO_OWNER, __ATOMIC_RELAXED);
        spin_unlock((struct spin_held){&log_lock});
}

/* Someone else writes: an unfinished line of another writer ends first. Under log_lock. */
static void end_open_line(const void *writer)
{
        if (open_line && open_line != writer) {
                log_sink("\n", 1);
                open_line = NULL;
        }
}

void log_write(const char *s, unsigned long len)
{
        bool taken;

        if (!log_sink)
                return;
        taken = log_lock_take();
        end_open_line(NULL);
        log_sink(s, len);
        log_lock_give(taken);
}

void log_write_part(const void *writer, const char *prefix, unsigned long plen, const char *s,
                    unsigned long len, bool end)
{
        bool taken;

        if (!log_sink)
                return;
        taken = log_lock_take();
        if (open_line != writer) {
                end_open_line(writer);
                log_sink(prefix, plen);
        }
        if (len)
                log_sink(s, len);
        if (end)
                log_sink("\n", 1);
        open_line = end ? NULL : writer;
        log_lock_give(taken);
}

/*
 * One line: the level's tag, "keel: " for LOG_KEEL, "FILE:LINE: " when file is not NULL
 * (LOG_ERR), the message.
 */
static void log_line(int how, const char *file, int lineno, const char *fmt, va_list ap)
{
        enum log_level level = (enum log_level)(how & ~LOG_KEEL);
        char line[640];
        size_t n;
        int r;

        if (level > log_level)
                return;
        n = strlen(level_prefix[level]);
        memcpy(line, level_prefix[level], n);
        if (how & LOG_KEEL) {
                memcpy(line + n, "keel: ", 6);
                n += 6;
        }
        if (file) {
                r = snprintf(line + n, sizeof(line) - n - 1, "%s:%d: ", file, lineno);
                if (r > 0)
                        n += (size_t)r < sizeof(line) - n - 1 ? (size_t)r : sizeof(line) - n - 2;
        }
        r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
        if (r < 0)
                r = 0;
        n += (size_t)r < sizeof(line) - n - 1 ? (size_t)r : sizeof(line) - n - 2;
        line[n++] = '\n';
        log_write(line, n);
}

void log_vprintf(int level, const char *fmt, va_list ap)
{
        log_line(level, NULL, 0, fmt, ap);
}

void log_printf(int level, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        log_line(level, NULL, 0, fmt, ap);
        va_end(ap);
}

void log_err_at(const char *file, int lineno, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        log_line(LOG_LEVEL_ERROR, file, lineno, fmt, ap);
        va_end(ap);
}

void log_end_part(const void *writer)
{
        bool taken;

        if (!log_sink)
                return;
        taken = log_lock_take();
        if (open_line == writer) {
                log_sink("\n", 1);
                open_line = NULL;
        }
        log_lock_give(taken);
}
