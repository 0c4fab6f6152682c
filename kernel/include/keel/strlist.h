/*
 * A table of names as one string: its entries one after the other, each ended by a NUL
 * ("divide error\0" "debug\0" ...; an entry may be empty). Unlike an array of pointers it
 * needs no pointer per entry, and so no relocation and no room in the image's relro part,
 * whose page padding holds keel.efi's base relocations while they fit there
 * (docs/benchmarks.md, "Image size").
 */
#ifndef KEEL_STRLIST_H
#define KEEL_STRLIST_H

#include <stddef.h>

/* Entry `n` of `list`, which has `count` entries; NULL if n >= count. */
static inline const char *keel_strlist_at(const char *list, unsigned count, unsigned n)
{
        if (n >= count)
                return NULL;
        while (n--)
                while (*list++)
                        ;
        return list;
}

#endif
