/*
 * panic: a bug in Keel itself. Prints the reason and the CPU's registers, then halts this CPU
 * for good. Never used for anything a guest or the user can cause.
 */
#include <stdarg.h>

#include <keel/arch.h>
#include <keel/check.h>
#include <keel/log.h>

noreturn void panic(const char *fmt, ...)
{
        va_list ap;

        log_printf(LOG_LEVEL_ERROR | LOG_KEEL, "PANIC");
        va_start(ap, fmt);
        log_vprintf(LOG_LEVEL_ERROR, fmt, ap);
        va_end(ap);
        arch_dump_state();
        log_printf(LOG_LEVEL_ERROR | LOG_KEEL, "panic: system halted");
        arch_halt();
}

noreturn void check_failed(const char *file, int line)
{
        panic("CHECK failed at %s:%d", file, line);
}
