/*
 * Guest image loader: flat binaries and ELF64 executables, copied into guest RAM through the
 * gmem API. Every refusal is logged with the image's name (LOG_ERR) and returns:
 *   empty image                                          -KEEL_ENOEXEC
 *   bad or unsupported ELF (class, endianness, machine,
 *   type, truncated headers, segment outside the file)   -KEEL_ENOEXEC
 *   image or a segment larger than guest RAM             -KEEL_E2BIG
 *   load range outside guest RAM or overlapping the
 *   reserved range                                       -KEEL_EFAULT
 *   entry point outside guest RAM                        -KEEL_EFAULT
 */
#ifndef VMM_LOADER_H
#define VMM_LOADER_H

#include <keel/addr.h>
#include <vmm/gmem.h>

enum image_format {
        IMAGE_AUTO = 0, /* ELF if it starts with the ELF magic, else flat */
        IMAGE_FLAT,
        IMAGE_ELF,
};

struct load_request {
        const char *name; /* for messages: the path from the config */
        const void *data;
        uint64_t size;
        enum image_format format;
        uint16_t elf_machine; /* accepted e_machine: 62 (x86-64) or 183 (AArch64) */
        gpa_t load;           /* flat: where the image goes */
        bool has_entry;       /* flat: entry given; default entry = load */
        gpa_t entry;          /* flat only; an ELF's entry is its e_entry */
        gpa_t reserved_base;  /* guest range Keel keeps for boot structures; size 0 = none */
        uint64_t reserved_size;
};

/* Loads the image; on success *entry is the guest entry point. */
int loader_load(struct gmem *m, const struct load_request *req, gpa_t *entry);

#endif
