/*
 * A small AML (ACPI Machine Language) byte-code builder: enough to write a DSDT that describes
 * fixed devices (ACPI 6.x, section 20 "ACPI Machine Language Specification").
 *
 * The builder writes into a caller-provided bounded buffer and never allocates. Errors are
 * sticky and reported once, by aml_finish(): running out of room (-KEEL_ENOSPC) or a malformed
 * argument such as a bad name (-KEEL_EINVAL). Once the buffer is full nothing more is written,
 * but the length keeps counting (aml_length() tells how much room the code needs). A builder
 * initialised with buf NULL only measures: nothing is written, running out of room is not an
 * error, and aml_finish() returns the length the code would have.
 *
 * Objects with a PkgLength (Scope, Device, Package, Buffer, Method) are built body first:
 * aml_*_begin() writes the opcode and returns a mark, the caller emits the body, and
 * aml_end(mark) inserts the PkgLength (1 to 4 bytes, which depend on the body's size) in
 * front of the body. Marks nest: end them innermost first.
 *
 * Names are ASCII strings in ASL notation: "\\" root prefix, "^" parent prefixes, segments of
 * 1 to 4 characters [A-Z0-9_] (not starting with a digit) separated by '.', each padded to 4
 * characters with '_' ("\\_SB.V0" is the path \_SB_.V0__).
 */
#ifndef VMM_AML_H
#define VMM_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Opcodes and prefixes (ACPI 6.4, 20.3). */
#define AML_ZERO_OP       0x00
#define AML_ONE_OP        0x01
#define AML_NAME_OP       0x08
#define AML_BYTE_PREFIX   0x0A
#define AML_WORD_PREFIX   0x0B
#define AML_DWORD_PREFIX  0x0C
#define AML_STRING_PREFIX 0x0D
#define AML_QWORD_PREFIX  0x0E
#define AML_SCOPE_OP      0x10
#define AML_BUFFER_OP     0x11
#define AML_PACKAGE_OP    0x12
#define AML_METHOD_OP     0x14
#define AML_DUAL_NAME     0x2E
#define AML_MULTI_NAME    0x2F
#define AML_EXT_OP_PREFIX 0x5B
#define AML_EXT_DEVICE_OP 0x82 /* after AML_EXT_OP_PREFIX */
#define AML_ROOT_CHAR     0x5C /* '\\' */
#define AML_PARENT_CHAR   0x5E /* '^' */
#define AML_RETURN_OP     0xA4
#define AML_NULL_NAME     0x00

/* Largest PkgLength: 28 bits. */
#define AML_PKGLEN_MAX 0x0FFFFFFFu

struct aml {
        uint8_t *buf;
        size_t cap;
        size_t len; /* bytes emitted so far, counting those that did not fit */
        int err;    /* first error, 0 if none */
};

/* A begun object, to be passed to aml_end(). */
struct aml_mark {
        size_t body; /* offset of the first body byte */
};

/* Start building into buf[0, cap), or measuring if buf is NULL. */
void aml_init(struct aml *a, void *buf, size_t cap);
/* Bytes written (>= 0) if everything fitted and was well formed, else the first error. */
long aml_finish(const struct aml *a);
/* Bytes the code needs (also when it did not fit). */
size_t aml_length(const struct aml *a);

/*
 * PkgLength encoding of a package whose total length (PkgLength bytes included) is `total`:
 * writes 1 to 4 bytes to out (the fewest that hold `total`) and returns their number, 0 if
 * total exceeds AML_PKGLEN_MAX.
 */
unsigned aml_pkglen_encode(uint32_t total, uint8_t out[4]);
/*
 * Number of PkgLength bytes in front of a body of body_len bytes (the total counts them too:
 * a 62-byte body takes 1, a 63-byte body 2), 0 if too long.
 */
unsigned aml_pkglen_size(size_t body_len);

/* Raw bytes (descriptor contents, opcodes). */
void aml_bytes(struct aml *a, const void *p, size_t n);
void aml_byte(struct aml *a, uint8_t b);

/* Integer: ZeroOp, OneOp or the narrowest of ByteConst/WordConst/DWordConst/QWordConst. */
void aml_integer(struct aml *a, uint64_t v);
/* String: StringPrefix, ASCII 0x01-0x7F, NUL. */
void aml_string(struct aml *a, const char *s);
/* NameString, e.g. "\\_SB.COM1", "^FOO", "_HID". */
void aml_namestring(struct aml *a, const char *name);
/*
 * EISA ID compression of a 7-character PNP ID ("PNP0501": three letters A-Z, four
 * upper-case hex digits). Returns false if malformed.
 */
bool aml_eisaid_value(const char *id, uint32_t *out);
/* DWordConst holding EISAID(id). */
void aml_eisaid(struct aml *a, const char *id);

/* Name(name, <object the caller emits next>): NameOp and the NameString. */
void aml_name(struct aml *a, const char *name);
/* Name(name, integer) / Name(name, "string") / Name(name, EISAID(id)). */
void aml_name_integer(struct aml *a, const char *name, uint64_t v);
void aml_name_string(struct aml *a, const char *name, const char *s);
void aml_name_eisaid(struct aml *a, const char *name, const char *id);
/*
 * Name(_HID, ...): an EISA ID if `hid` is a valid 7-character PNP ID, else a string (ACPI IDs
 * such as "LNRO0005").
 */
void aml_name_hid(struct aml *a, const char *hid);

/* Scope(name) { ... } and Device(name) { ... }. */
struct aml_mark aml_scope_begin(struct aml *a, const char *name);
struct aml_mark aml_device_begin(struct aml *a, const char *name);
/* Package(count) { ... }: the caller emits exactly `count` (<= 255) elements. */
struct aml_mark aml_package_begin(struct aml *a, unsigned count);
/* Method(name, nargs (0-7), NotSerialized) { ... }. */
struct aml_mark aml_method_begin(struct aml *a, const char *name, unsigned nargs);
/* Close a Scope, Device, Package or Method: insert its PkgLength. */
void aml_end(struct aml *a, struct aml_mark m);

/* Return(v). */
void aml_return_integer(struct aml *a, uint64_t v);
/* Method(name, 0) { Return(v) }, e.g. _STA returning 0xF. */
void aml_method_return_integer(struct aml *a, const char *name, uint64_t v);

/* Buffer() { bytes }: BufferOp, PkgLength, BufferSize, the bytes. */
void aml_buffer(struct aml *a, const void *data, size_t n);

/*
 * ResourceTemplate() { ... }: a Buffer of resource descriptors closed by an EndTag (checksum
 * 0). aml_rt_end() writes the EndTag, inserts the BufferSize and the PkgLength.
 */
struct aml_rt {
        struct aml_mark pkg;
};
struct aml_rt aml_rt_begin(struct aml *a);
void aml_rt_end(struct aml *a, struct aml_rt rt);

/* Memory32Fixed(ReadWrite or ReadOnly, base, length). */
void aml_rt_memory32_fixed(struct aml *a, bool read_write, uint32_t base, uint32_t length);
/* IO(Decode16, min, max, alignment, length). */
void aml_rt_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t length);
/* IRQNoFlags() {irq} (ISA IRQ 0-15: edge, active high, exclusive). */
void aml_rt_irq_noflags(struct aml *a, unsigned irq);

/* Interrupt(ResourceConsumer, trigger, polarity, sharing) {gsi}: the extended descriptor. */
enum aml_irq_trigger { AML_IRQ_LEVEL = 0, AML_IRQ_EDGE = 1 };
enum aml_irq_polarity { AML_IRQ_ACTIVE_HIGH = 0, AML_IRQ_ACTIVE_LOW = 1 };
enum aml_irq_sharing { AML_IRQ_EXCLUSIVE = 0, AML_IRQ_SHARED = 1 };
void aml_rt_interrupt(struct aml *a, enum aml_irq_trigger trigger, enum aml_irq_polarity polarity,
                      enum aml_irq_sharing sharing, uint32_t gsi);

#endif
