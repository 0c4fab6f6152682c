/*
 * Keel's image parts (keel/image.h) as regions of its own memory map. Image only: the bounds
 * come from the linker script.
 */
#include <keel/errno.h>
#include <keel/image.h>
#include <keel/log.h>

struct image_part {
        const char *what;
        const char *start, *end;
        unsigned attrs;
};

static unsigned image_parts(struct image_part *p)
{
        unsigned n = 0;

        p[n++] = (struct image_part){"Keel's PE headers", __keel_image_start, __keel_text_start,
                                     PT_READ};
        p[n++] =
            (struct image_part){"Keel text", __keel_text_start, __keel_text_end, PT_READ | PT_EXEC};
        p[n++] =
            (struct image_part){"Keel rodata", __keel_rodata_start, __keel_rodata_end, PT_READ};
        p[n++] = (struct image_part){"Keel relro", __keel_relro_start, __keel_relro_end, PT_READ};
        p[n++] = (struct image_part){"Keel data", __keel_data_start, __keel_data_end,
                                     PT_READ | PT_WRITE};
        p[n++] =
            (struct image_part){"Keel bss", __keel_bss_start, __keel_bss_end, PT_READ | PT_WRITE};
        p[n++] = (struct image_part){"Keel's dynamic relocations", __keel_dynrel_start,
                                     __keel_dynrel_end, PT_READ};
        return n;
}

int keel_image_regions(struct hostmap *m)
{
        struct image_part p[8];
        unsigned n = image_parts(p);

        for (unsigned i = 0; i < n; i++) {
                uint64_t start = (uint64_t)(uintptr_t)p[i].start;
                uint64_t end = (uint64_t)(uintptr_t)p[i].end;
                int err;

                if (end == start)
                        continue;
                err = hostmap_add(m, start, end - start, p[i].attrs, p[i].what, HOSTMAP_NO_CPU);
                if (err)
                        return err;
        }
        return 0;
}

void keel_image_log(void)
{
        struct image_part p[8];
        unsigned n = image_parts(p);

        for (unsigned i = 0; i < n; i++)
                if (p[i].end != p[i].start)
                        LOG_DEBUG("image %-26s %#llx-%#llx %c%c%c", p[i].what,
                                  (unsigned long long)(uintptr_t)p[i].start,
                                  (unsigned long long)(uintptr_t)p[i].end,
                                  (p[i].attrs & PT_READ) ? 'r' : '-',
                                  (p[i].attrs & PT_WRITE) ? 'w' : '-',
                                  (p[i].attrs & PT_EXEC) ? 'x' : '-');
}
