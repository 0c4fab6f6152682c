/*
 * sdk_hello: the guest SDK's example (docs/guest-sdk.md) and its test (cases sdk and
 * arm64_sdk): an ordinary C program using stdio, string.h, stdlib.h, math.h, errno and a
 * thread-local variable, built with keel_add_guest. Each line is checked by the driver;
 * a failed check prints FAIL and the VM exits with 1.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keel/guest.h>

static int checks, failures;

#define CHECK(cond)                                                             \
        do {                                                                    \
                checks++;                                                       \
                if (!(cond)) {                                                  \
                        failures++;                                             \
                        printf("FAIL: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
                }                                                               \
        } while (0)

static _Thread_local int tls_counter = 41;

static int cmp_int(const void *a, const void *b)
{
        int x = *(const int *)a, y = *(const int *)b;

        return (x > y) - (x < y);
}

static void check_malloc(void)
{
        enum { BLOCKS = 64 };
        unsigned char *block[BLOCKS];
        size_t total = 0;
        int intact = 1;

        for (int i = 0; i < BLOCKS; i++) {
                size_t n = (size_t)(i + 1) * 1000;

                block[i] = malloc(n);
                CHECK(block[i] != NULL);
                if (!block[i])
                        return;
                memset(block[i], i, n);
                total += n;
        }
        for (int i = 0; i < BLOCKS; i++)
                for (size_t j = 0; j < (size_t)(i + 1) * 1000; j++)
                        intact &= block[i][j] == (unsigned char)i;
        CHECK(intact);
        for (int i = 0; i < BLOCKS; i++)
                free(block[i]);
        void *big = malloc(2000000);
        CHECK(big != NULL);
        free(big);
        errno = 0;
        void *huge = malloc((size_t)keel_ram_size());
        CHECK(huge == NULL && errno == ENOMEM);
        printf("sdk_hello: malloc: %d blocks, %zu bytes, intact; freed; then %s; RAM size: %s\n",
               BLOCKS, total, big ? "2000000 bytes ok" : "2000000 bytes FAILED",
               huge ? "not NULL" : "NULL, ENOMEM");
}

/* Word loads and stores at every offset (memcpy of 4 and 8 bytes becomes one LDR/STR or MOV):
 * ordinary code assumes Normal memory, where they work (arm64: the SDK turns the MMU on). */
static void check_unaligned(void)
{
        static unsigned char bytes[32];
        volatile size_t off;
        int ok = 1;

        for (off = 0; off < 8; off++) {
                uint32_t w = 0x11223344u + (uint32_t)off, r;
                uint64_t d = 0x0102030405060708ull << off, q;

                memcpy(bytes + off, &w, sizeof(w));
                memcpy(&r, bytes + off, sizeof(r));
                ok &= r == w && bytes[off] == (unsigned char)w;
                memcpy(bytes + off + 8, &d, sizeof(d));
                memcpy(&q, bytes + off + 8, sizeof(q));
                ok &= q == d;
        }
        CHECK(ok);
        printf("sdk_hello: unaligned loads and stores: %s\n", ok ? "ok" : "wrong");
}

int main(int argc, char **argv)
{
        int v[] = {21, 3, 34, 1, 13, 5, 2, 8};
        volatile double two = 2.0, sixth = 3.14159265358979323846 / 6, one = 1.0;
        char buf[64], *end;
        long a, b, c;

        printf("sdk_hello: hello from VM %s, argc %d\n", argv[0], argc);
        CHECK(argc == 1 && strcmp(argv[0], keel_vm_name()) == 0);

        printf("sdk_hello: printf: %d %s %x %f [%3d|%-3d] %%\n", -42, "keel", 0xbeef, 3.25, 7, 7);

        qsort(v, sizeof(v) / sizeof(v[0]), sizeof(v[0]), cmp_int);
        printf("sdk_hello: qsort:");
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
                printf(" %d", v[i]);
        printf("\n");
        for (size_t i = 1; i < sizeof(v) / sizeof(v[0]); i++)
                CHECK(v[i - 1] < v[i]);

        a = strtol("-1234", &end, 10);
        CHECK(*end == '\0');
        b = strtol("0x7f", NULL, 16);
        errno = 0;
        c = strtol("99999999999999999999999", NULL, 10);
        CHECK(c == LONG_MAX && errno == ERANGE);
        printf("sdk_hello: strtol: %ld %ld %s\n", a, b, errno == ERANGE ? "ERANGE" : "no ERANGE");

        check_malloc();
        check_unaligned();

        printf("sdk_hello: math: sqrt(2) = %.6f, sin(pi/6) = %.6f, exp(1) = %.6f, pow(2, 10) = "
               "%g\n",
               sqrt(two), sin(sixth), exp(one), pow(two, 10));
        CHECK(fabs(sqrt(two) * sqrt(two) - 2.0) < 1e-12);
        CHECK(fabs(sin(sixth) - 0.5) < 1e-12);

        tls_counter++;
        printf("sdk_hello: TLS: %d\n", tls_counter);
        CHECK(tls_counter == 42);

        snprintf(buf, sizeof(buf), "x=%04d y=%02x", 42, 255);
        CHECK(strcmp(buf, "x=0042 y=ff") == 0);
        CHECK(strlen(buf) == 11 && strchr(buf, 'y') == buf + 7 && memcmp(buf, "x=00", 4) == 0);
        printf("sdk_hello: snprintf: \"%s\"\n", buf);

        if (failures) {
                printf("sdk_hello: %d of %d checks failed\n", failures, checks);
                return 1;
        }
        printf("sdk_hello: all %d checks passed\n", checks);
        return 0;
}
