/*
 * The guest SDK's hooks for newlib (x86_64): the system calls newlib's stdio, malloc,
 * abort and exit end in (newlib is configured without them, so they have their plain
 * names: write, sbrk, ...). File descriptors 0, 1 and 2 are the console; there are no
 * files. sbrk is in rt/start.c.
 */
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sdk.h"

/* newlib's unistd.h declares only some of these; the others are what its reent layer calls. */
int close(int fd);
int fstat(int fd, struct stat *st);
int isatty(int fd);
int kill(int pid, int sig);
int getpid(void);
off_t lseek(int fd, off_t off, int whence);
_READ_WRITE_RETURN_TYPE read(int fd, void *buf, size_t n);
_READ_WRITE_RETURN_TYPE write(int fd, const void *buf, size_t n);
int open(const char *path, int flags, ...);

static int is_console(int fd)
{
        return fd >= 0 && fd <= 2;
}

_READ_WRITE_RETURN_TYPE write(int fd, const void *buf, size_t n)
{
        if (!is_console(fd)) {
                errno = EBADF;
                return -1;
        }
        return (_READ_WRITE_RETURN_TYPE)keel_console_write(buf, n);
}

/* One byte at a time: a line-buffered stdin calls again until it has its newline. */
_READ_WRITE_RETURN_TYPE read(int fd, void *buf, size_t n)
{
        if (!is_console(fd)) {
                errno = EBADF;
                return -1;
        }
        if (n == 0)
                return 0;
        *(char *)buf = (char)keel_console_getc();
        return 1;
}

int open(const char *path, int flags, ...)
{
        (void)path;
        (void)flags;
        errno = ENOENT; /* no file system */
        return -1;
}

int close(int fd)
{
        if (!is_console(fd)) {
                errno = EBADF;
                return -1;
        }
        return 0;
}

int fstat(int fd, struct stat *st)
{
        if (!is_console(fd)) {
                errno = EBADF;
                return -1;
        }
        st->st_mode = S_IFCHR;
        st->st_blksize = 0;
        return 0;
}

int isatty(int fd)
{
        if (!is_console(fd)) {
                errno = EBADF;
                return 0;
        }
        return 1;
}

off_t lseek(int fd, off_t off, int whence)
{
        (void)fd;
        (void)off;
        (void)whence;
        errno = ESPIPE;
        return -1;
}

int getpid(void)
{
        return 1;
}

/* raise() and abort() end here: the VM exits with 128 + the signal, as a shell reports it. */
int kill(int pid, int sig)
{
        (void)pid;
        keel_console_report("keel-sdk: terminated by signal ", (uint64_t)sig);
        keel_console_putc('\n');
        keel_exit(128 + sig);
}

void _exit(int status)
{
        keel_exit(status);
}

/* __libc_init_array and exit call these (newlib's HAVE_INIT_FINI); the linker script's
 * .init_array and .fini_array hold the constructors and destructors instead. */
void _init(void);
void _fini(void);

void _init(void)
{
}

void _fini(void)
{
}
