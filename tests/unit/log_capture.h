/*
 * Captures Keel's log in host tests: capture_start() resets the buffer, sets level info and
 * routes the log into `logbuf` (NUL-terminated, truncated when full).
 */
#ifndef KEEL_TEST_LOG_CAPTURE_H
#define KEEL_TEST_LOG_CAPTURE_H

#include <string.h>

#include <keel/log.h>

static char logbuf[16384];
static size_t loglen;

static void capture_sink(const char *s, unsigned long len)
{
        if (len > sizeof(logbuf) - 1 - loglen)
                len = sizeof(logbuf) - 1 - loglen;
        memcpy(logbuf + loglen, s, len);
        loglen += len;
        logbuf[loglen] = '\0';
}

static inline void capture_start(void)
{
        loglen = 0;
        logbuf[0] = '\0';
        log_set_level(LOG_LEVEL_INFO);
        log_set_sink(capture_sink);
}

#endif
