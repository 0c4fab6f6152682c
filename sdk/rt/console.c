/*
 * The guest SDK's console: bytes go to Keel's PRINT hypercall (one exit per line, or per
 * 1024 bytes) rather than the UART's transmit register (one exit per byte, two with the
 * status read); Keel shows both the same way, prefixed with the VM's name. Should PRINT
 * fail, the bytes go to the UART. Input comes from the UART, polled.
 */
#include "sdk.h"

static char line[256];
static size_t line_len;

static void print(const char *p, size_t n)
{
        while (n) {
                size_t k = n > KEEL_HC_PRINT_MAX ? KEEL_HC_PRINT_MAX : n;

                if (keel_hypercall(KEEL_HC_PRINT, (uintptr_t)p, k, 0, 0) != (int64_t)k)
                        for (size_t i = 0; i < k; i++)
                                sdk_arch_uart_putc(p[i]);
                p += k;
                n -= k;
        }
}

void keel_console_flush(void)
{
        print(line, line_len);
        line_len = 0;
}

void keel_console_putc(char c)
{
        line[line_len++] = c;
        if (c == '\n' || line_len == sizeof(line))
                keel_console_flush();
}

size_t keel_console_write(const void *buf, size_t len)
{
        keel_console_flush();
        print(buf, len);
        return len;
}

int keel_console_getc(void)
{
        int c;

        keel_console_flush();
        while ((c = sdk_arch_uart_getc()) < 0)
                ;
        return c;
}

void keel_console_report(const char *s, uint64_t v)
{
        char hex[19] = "0x";

        while (*s)
                keel_console_putc(*s++);
        for (int i = 0; i < 16; i++)
                hex[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 15];
        for (int i = 0; i < 18; i++)
                keel_console_putc(hex[i]);
}
