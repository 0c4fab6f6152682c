/*
 * The leveled log. Every line goes to the console sink (COM1 on the real machine, a buffer
 * or stderr in host tests) prefixed with its level. Errors carry file:line (Jailhouse's
 * trace_error idea) so that one grep finds where a failure was decided.
 */
#ifndef KEEL_LOG_H
#define KEEL_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level {
        LOG_LEVEL_ERROR = 0,
        LOG_LEVEL_WARN = 1,
        LOG_LEVEL_INFO = 2,
        LOG_LEVEL_DEBUG = 3,
};

/* Messages above this level are dropped. Default LOG_LEVEL_INFO. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* level: an enum log_level, plus LOG_KEEL (below) for a line of Keel's own. */
void log_printf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vprintf(int level, const char *fmt, va_list ap);
/* Raw output, no prefix and no newline added (used by the guest UART front end). */
void log_write(const char *s, unsigned long len);
/*
 * A piece of `writer`'s console line (a VM's console): `prefix` first if the line on the
 * sink is not already this writer's, `end` finishes it. A line left unfinished (a prompt)
 * is ended ("\n") as soon as anyone else writes, and the writer's next piece starts a new,
 * prefixed line, so lines of different writers never run together.
 */
void log_write_part(const void *writer, const char *prefix, unsigned long plen, const char *s,
                    unsigned long len, bool end);
/* End `writer`'s unfinished line if it is still the one on the sink (nothing otherwise). */
void log_end_part(const void *writer);

/*
 * An error line with "FILE:LINE: " before the message (log_printf at LOG_LEVEL_ERROR with
 * "%s:%d: " put before fmt prints the same; one function that adds it keeps those seven
 * bytes out of every LOG_ERR's format string).
 */
void log_err_at(const char *file, int lineno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * LOG_KEEL added to log_printf's level: a line of Keel's own, "keel: " before the message
 * (the same as "keel: " put before fmt; the log adds it, which keeps those six bytes out of
 * every LOG_WARN / LOG_INFO / LOG_DEBUG format string). A line without it: log_printf with
 * the level alone.
 */
#define LOG_KEEL            4
#define LOG_ERR(fmt, ...)   log_err_at(__FILE__, __LINE__, fmt, ##__VA_ARGS__)
#define LOG_WARN(fmt, ...)  log_printf(LOG_LEVEL_WARN | LOG_KEEL, fmt, ##__VA_ARGS__)
#define LOG_INFO(fmt, ...)  log_printf(LOG_LEVEL_INFO | LOG_KEEL, fmt, ##__VA_ARGS__)
#define LOG_DEBUG(fmt, ...) log_printf(LOG_LEVEL_DEBUG | LOG_KEEL, fmt, ##__VA_ARGS__)

/*
 * The sink the log writes to. Set once at start-up (serial driver) and, in host tests, to a
 * capture buffer. NULL drops output.
 */
typedef void (*log_sink_fn)(const char *s, unsigned long len);
void log_set_sink(log_sink_fn sink);

#endif
