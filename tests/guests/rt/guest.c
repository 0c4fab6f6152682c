/*
 * Runtime of Keel's test guests (rt/guest.h): start-up checks, console output, exit. The arch
 * parts are in rt/<arch>/.
 */
#include "guest.h"

/* Exit codes of the runtime's own start-up checks (guests use small codes). */
#define RT_EXIT_BAD_DATA 0xd0
#define RT_EXIT_BAD_BSS  0xd1

/* Filled by _start; in .data so the .bss check below sees only what the loader left. */
struct guest_entry_state guest_entry_state __attribute__((section(".data"))) = {0};
uint64_t guest_ram_size __attribute__((section(".data"))) = 0;
uint64_t guest_ram_base __attribute__((section(".data"))) = 0;

/* A value only a complete load of the data segment contains. */
static volatile uint64_t rt_data_magic = 0x4b65656c47756573ull; /* "KeelGues" */

int memcmp(const void *a, const void *b, size_t n)
{
        const unsigned char *x = a, *y = b;

        for (size_t i = 0; i < n; i++)
                if (x[i] != y[i])
                        return x[i] < y[i] ? -1 : 1;
        return 0;
}

size_t strlen(const char *s)
{
        size_t n = 0;

        while (s[n])
                n++;
        return n;
}

int strcmp(const char *a, const char *b)
{
        while (*a && *a == *b) {
                a++;
                b++;
        }
        return (unsigned char)*a - (unsigned char)*b;
}

void guest_puts(const char *s)
{
        while (*s)
                uart_putc(*s++);
}

/* Output sink for the formatter: the UART, or a bounded buffer. */
struct sink {
        char *buf; /* NULL: UART */
        size_t size, len;
};

static void sink_put(struct sink *s, char c)
{
        if (!s->buf)
                uart_putc(c);
        else if (s->len + 1 < s->size)
                s->buf[s->len] = c;
        s->len++;
}

static void put_padded(struct sink *s, const char *str, size_t n, int width, bool left, char pad)
{
        int fill = width > (int)n ? width - (int)n : 0;

        if (!left)
                while (fill-- > 0)
                        sink_put(s, pad);
        for (size_t i = 0; i < n; i++)
                sink_put(s, str[i]);
        if (left)
                while (fill-- > 0)
                        sink_put(s, ' ');
}

static size_t utoa(uint64_t v, unsigned base, char *out)
{
        char tmp[24];
        size_t n = 0, i = 0;

        do {
                unsigned d = (unsigned)(v % base);

                tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
                v /= base;
        } while (v);
        while (n)
                out[i++] = tmp[--n];
        return i;
}

static void format(struct sink *s, const char *fmt, va_list ap)
{
        for (; *fmt; fmt++) {
                char num[24];
                bool left = false;
                char pad = ' ';
                int width = 0, lng = 0;
                size_t n;

                if (*fmt != '%') {
                        sink_put(s, *fmt);
                        continue;
                }
                fmt++;
                for (;; fmt++) {
                        if (*fmt == '-')
                                left = true;
                        else if (*fmt == '0')
                                pad = '0';
                        else
                                break;
                }
                while (*fmt >= '0' && *fmt <= '9')
                        width = width * 10 + (*fmt++ - '0');
                while (*fmt == 'l' || *fmt == 'z') {
                        lng++;
                        fmt++;
                }
                switch (*fmt) {
                case 's': {
                        const char *str = va_arg(ap, const char *);

                        if (!str)
                                str = "(null)";
                        put_padded(s, str, strlen(str), width, left, ' ');
                        break;
                }
                case 'c':
                        num[0] = (char)va_arg(ap, int);
                        put_padded(s, num, 1, width, left, ' ');
                        break;
                case 'd':
                case 'i': {
                        int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
                        uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

                        n = 0;
                        if (v < 0)
                                num[n++] = '-';
                        n += utoa(mag, 10, num + n);
                        put_padded(s, num, n, width, left, pad);
                        break;
                }
                case 'u':
                case 'x': {
                        uint64_t v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);

                        n = utoa(v, *fmt == 'x' ? 16 : 10, num);
                        put_padded(s, num, n, width, left, pad);
                        break;
                }
                case 'p':
                        num[0] = '0';
                        num[1] = 'x';
                        n = 2 + utoa(gpa_of(va_arg(ap, void *)), 16, num + 2);
                        put_padded(s, num, n, width, left, ' ');
                        break;
                case '%':
                        sink_put(s, '%');
                        break;
                case '\0':
                        return;
                default:
                        sink_put(s, '%');
                        sink_put(s, *fmt);
                        break;
                }
        }
}

void guest_vprintf(const char *fmt, va_list ap)
{
        struct sink s = {0};

        format(&s, fmt, ap);
}

void guest_printf(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        guest_vprintf(fmt, ap);
        va_end(ap);
}

int guest_snprintf(char *buf, size_t size, const char *fmt, ...)
{
        struct sink s = {.buf = buf, .size = size, .len = 0};
        va_list ap;

        va_start(ap, fmt);
        format(&s, fmt, ap);
        va_end(ap);
        if (size)
                buf[s.len < size ? s.len : size - 1] = '\0';
        return (int)s.len;
}

noreturn void guest_exit(int64_t code)
{
        keel_hypercall(KEEL_HC_EXIT, (uint64_t)code, 0, 0, 0);
        guest_printf("FAIL: the exit hypercall returned\n");
        guest_halt();
}

noreturn void guest_start(uint64_t ram_size, uint64_t ram_base)
{
        guest_ram_size = ram_size;
        guest_ram_base = ram_base;
        if (rt_data_magic != 0x4b65656c47756573ull) {
                guest_printf("FAIL: image data segment not loaded (magic %lx)\n",
                             (uint64_t)rt_data_magic);
                guest_exit(RT_EXIT_BAD_DATA);
        }
        for (const volatile char *p = __bss_start; p < __bss_end; p++) {
                if (*p) {
                        guest_printf("FAIL: .bss not zero at entry: byte at %p is %x\n",
                                     (const void *)p, (unsigned)(unsigned char)*p);
                        guest_exit(RT_EXIT_BAD_BSS);
                }
        }
        guest_exit(guest_main());
}
