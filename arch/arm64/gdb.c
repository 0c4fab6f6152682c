/*
 * arm64 side of a gdb session (vmm/include/vmm/gdb.h): not implemented yet. arch_gdb_supported
 * says so, and the session is refused before any other hook is called (docs/debugging.md).
 * QEMU's virt machine has one PL011, so arm64 has no debug port either.
 */
#include <keel/errno.h>
#include <vmm/gdb.h>

bool arch_gdb_supported(struct vcpu *v)
{
        (void)v;
        return false;
}

const char *arch_gdb_target_xml(size_t *len)
{
        *len = 0;
        return "";
}

size_t arch_gdb_reg_read(struct vcpu *v, unsigned reg, uint8_t *buf)
{
        (void)v;
        (void)reg;
        (void)buf;
        return 0;
}

int arch_gdb_reg_write(struct vcpu *v, unsigned reg, const uint8_t *buf, size_t size)
{
        (void)v;
        (void)reg;
        (void)buf;
        (void)size;
        return -KEEL_ENOTSUP;
}

int arch_gdb_translate(struct vcpu *v, uint64_t gva, gpa_t *gpa)
{
        (void)v;
        (void)gva;
        (void)gpa;
        return -KEEL_ENOTSUP;
}

size_t arch_gdb_break_insn(uint8_t *buf)
{
        /* BRK #0 */
        buf[0] = 0x00;
        buf[1] = 0x00;
        buf[2] = 0x20;
        buf[3] = 0xd4;
        return 4;
}

bool arch_gdb_port_present(void)
{
        return false;
}

int arch_gdb_port_getc(void)
{
        return -1;
}

void arch_gdb_port_write(const char *s, size_t n)
{
        (void)s;
        (void)n;
}
