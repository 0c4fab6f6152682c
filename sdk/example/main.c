/* hello: an ordinary C program that runs as a Keel VM (docs/guest-sdk.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int by_value(const void *a, const void *b)
{
        int x = *(const int *)a, y = *(const int *)b;

        return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
        int v[] = {42, 7, 19, 3};
        long n = strtol("-123", NULL, 10);
        char *copy = malloc(64);

        printf("hello from VM %s: %d %s %#x %.3f\n", argv[0], -5, "text", 255, 2.5);
        qsort(v, sizeof(v) / sizeof(v[0]), sizeof(v[0]), by_value);
        printf("sorted: %d %d %d %d\n", v[0], v[1], v[2], v[3]);
        if (!copy)
                return 1;
        strcpy(copy, "on the heap");
        printf("strtol: %ld, malloc: %s, sqrt(2) = %f, sin(1) = %f\n", n, copy, sqrt(argc + 1.0),
               sin(argc));
        free(copy);
        return v[0] == 3 && n == -123 ? 0 : 1; /* the VM's exit code */
}
