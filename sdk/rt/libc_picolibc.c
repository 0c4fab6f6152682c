/*
 * The guest SDK's hooks for picolibc (arm64): stdin, stdout and stderr are one FILE on the
 * console (tinystdio calls put / get per byte; the console buffers a line), and _exit ends
 * the VM (exit() runs the atexit handlers and destructors first), as does a signal raised
 * (abort). malloc gets its memory
 * from the SDK's sbrk (rt/start.c), which replaces picolibc's own.
 */
#include <stdio.h>
#include <unistd.h>

#include "sdk.h"

static int console_put(char c, FILE *f)
{
        (void)f;
        keel_console_putc(c);
        return (unsigned char)c;
}

static int console_get(FILE *f)
{
        (void)f;
        return keel_console_getc();
}

static int console_flush(FILE *f)
{
        (void)f;
        keel_console_flush();
        return 0;
}

static FILE console = FDEV_SETUP_STREAM(console_put, console_get, console_flush, _FDEV_SETUP_RW);

FILE *const stdin = &console;
FILE *const stdout = &console;
FILE *const stderr = &console;

void _exit(int status)
{
        keel_exit(status);
}

/* raise() and abort() end here: the VM exits with 128 + the signal, as a shell reports it. */
int kill(pid_t pid, int sig);

int kill(pid_t pid, int sig)
{
        (void)pid;
        keel_console_report("keel-sdk: terminated by signal ", (uint64_t)sig);
        keel_console_putc('\n');
        keel_exit(128 + sig);
}

pid_t getpid(void)
{
        return 1;
}
