/*
 * Keel's image as its linker script lays it out (linker/<arch>.lds, docs/boot.md): every part
 * starts and ends on a 4 KiB page boundary, and these symbols are its bounds, as the image
 * runs (Keel is identity-mapped, so they are host-physical addresses too). An arch without a
 * part defines its bounds equal.
 */
#ifndef KEEL_IMAGE_H
#define KEEL_IMAGE_H

#include <keel/hostmap.h>

extern char __keel_image_start[], __keel_image_end[];
extern char __keel_text_start[], __keel_text_end[];     /* code: read, execute */
extern char __keel_rodata_start[], __keel_rodata_end[]; /* constants: read */
extern char __keel_relro_start[], __keel_relro_end[];   /* relocated pointers, GOT: read */
extern char __keel_data_start[], __keel_data_end[];     /* read, write */
extern char __keel_bss_start[], __keel_bss_end[];       /* read, write */
extern char __keel_dynrel_start[], __keel_dynrel_end[]; /* relocations after the bss: read */

/*
 * Record the image's parts in `m` with their permissions (the part before the text, if any,
 * holds the PE headers: read-only). 0, or the error of hostmap_add (a Keel bug: the linker
 * script and the arch's other regions disagree).
 */
int keel_image_regions(struct hostmap *m);

/* One log line per part: name, bounds, permissions. */
void keel_image_log(void);

#endif
