/*
 * A flattened device tree (DTB) writer: Devicetree Specification v0.3, chapter 5 "Flattened
 * Devicetree (DTB) Format". Version 17 (last compatible version 16), big-endian, laid out as
 * header, memory reservation block, structure block, strings block.
 *
 * The tree is written sequentially into a caller-provided bounded buffer, with no dynamic
 * allocation: fdt_init(), then fdt_add_reservation() for each reserved range (optional), then
 * the root node (name "") with its properties and subnodes, each node's properties before
 * its children, then fdt_finish(). While building, property names are kept, deduplicated, at
 * the end of the buffer; fdt_finish() moves them behind the structure block. The buffer needs
 * no alignment (every field is written bytewise); the blob itself must be placed 8-byte
 * aligned in guest memory.
 *
 * Errors are sticky: the first is kept, every later call does nothing, and fdt_finish()
 * returns it: -KEEL_ENOSPC when the buffer is too small, -KEEL_EINVAL for a malformed tree
 * (bad node or property name, property outside a node or after a child node, a property name
 * used twice in one node, a second root, reservation after the first node, unbalanced
 * begin/end at fdt_finish(), any call after fdt_finish()).
 *
 * Names: a node name is "" for the root, else node-name[@unit-address] where node-name has 1
 * to 31 characters of [0-9a-zA-Z,._+-] and starts with a letter, and the unit address has 1
 * or more characters of [0-9a-zA-Z,._+-]. A property name has 1 to 31 characters of
 * [0-9a-zA-Z,._+?#-].
 */
#ifndef VMM_FDT_H
#define VMM_FDT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FDT_MAGIC             0xd00dfeedu
#define FDT_VERSION           17
#define FDT_LAST_COMP_VERSION 16
#define FDT_HEADER_SIZE       40 /* ten big-endian u32 */
#define FDT_RSV_ENTRY_SIZE    16 /* {u64 address, u64 size}; a zero entry ends the block */

/* Structure block tokens (big-endian u32, each 4-byte aligned). */
#define FDT_BEGIN_NODE 0x1u
#define FDT_END_NODE   0x2u
#define FDT_PROP       0x3u
#define FDT_NOP        0x4u
#define FDT_END        0x9u

#define FDT_NAME_MAX 31 /* characters of a node-name or property name */

struct fdt {
        uint8_t *buf;
        size_t cap;
        size_t off;         /* end of what is written from the front (header, rsvmap, struct) */
        size_t struct_off;  /* start of the structure block, 0 until the first node */
        size_t strings_len; /* the strings block: buf[cap - strings_len, cap) while building */
        size_t props_off;   /* first property of the open node */
        unsigned depth;     /* open nodes */
        bool root_done;     /* the root node was opened */
        bool props_ok;      /* the open node has no child yet: properties may follow */
        bool finished;
        uint32_t boot_cpuid;
        int err; /* first error, 0 if none */
};

/* Start a blob in buf[0, cap). */
void fdt_init(struct fdt *f, void *buf, size_t cap);
/* The header's boot_cpuid_phys (default 0). */
void fdt_set_boot_cpuid(struct fdt *f, uint32_t cpuid);
/* A memory reservation block entry; only before the first fdt_begin_node(). */
void fdt_add_reservation(struct fdt *f, uint64_t addr, uint64_t size);

void fdt_begin_node(struct fdt *f, const char *name);
void fdt_end_node(struct fdt *f);

/* A property of the open node: `len` bytes of `data` (data may be NULL if len is 0). */
void fdt_prop(struct fdt *f, const char *name, const void *data, size_t len);
void fdt_prop_empty(struct fdt *f, const char *name);
/* One big-endian cell. */
void fdt_prop_u32(struct fdt *f, const char *name, uint32_t v);
/* Two big-endian cells, high word first. */
void fdt_prop_u64(struct fdt *f, const char *name, uint64_t v);
/* n big-endian cells. */
void fdt_prop_cells(struct fdt *f, const char *name, const uint32_t *cells, size_t n);
/* A NUL-terminated string. */
void fdt_prop_string(struct fdt *f, const char *name, const char *s);
/* A string list: the n strings, each with its NUL ("arm,pl011\0arm,primecell\0"). */
void fdt_prop_strings(struct fdt *f, const char *name, const char *const *strs, size_t n);

/*
 * Ends the blob (FDT_END, strings block, header). On success returns 0 and sets *size
 * (if size is not NULL) to the blob's total size, which starts at buf; else returns the first
 * error and leaves *size alone.
 */
int fdt_finish(struct fdt *f, size_t *size);

#endif
