#!/usr/bin/env python3
"""Wrap a flat test guest in the smallest Linux kernel header Keel boots with `kernel =`, so
the guest gets a Linux VM's platform (x86: local APIC, I/O APIC, ACPI; arm64: GICv3, PSCI,
device tree): docs/testing.md, "Guests booted as Linux".

    mklinux.py --arch x86_64|arm64 FLAT OUT

x86_64: a bzImage of boot protocol 2.12 (docs/linux-boot.md, what arch/x86_64/linux_boot.c
checks): one setup sector after the boot sector (setup_sects = 1: 1 KiB of real-mode part
that nothing runs), HdrS, LOADED_HIGH, XLF_KERNEL_64, not relocatable, so the protected-mode
part is loaded at 1 MiB and entered at its +0x200 (the 64-bit entry point). The guest must be
linked at 0x100200; the first 0x200 bytes of the protected-mode part are zeros.

arm64: an Image (Documentation/arch/arm64/booting.rst, what arch/arm64/linux_boot.c checks):
the 64-byte header whose code0 branches over itself, text_offset 0x100000, little-endian,
4 KiB pages, so the Image lands at RAM base + 1 MiB = 0x40100000; the guest, linked at
0x40101000 (its text may want up to 4 KiB alignment: the vector tables want 2 KiB), follows
at +0x1000, where code0 branches.
"""
import struct
import sys

PAGE = 4096


def bzimage(flat):
    setup = bytearray(1024)  # boot sector + setup_sects (1) sectors
    setup[0x1F1] = 1  # setup_sects
    struct.pack_into("<H", setup, 0x1FE, 0xAA55)  # boot_flag
    setup[0x200] = 0xEB  # jmp over the header: its second byte + 0x202 = the header's end
    setup[0x201] = 0x268 - 0x202
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, 0x020C)  # protocol 2.12
    setup[0x211] = 0x01  # loadflags: LOADED_HIGH
    struct.pack_into("<I", setup, 0x22C, 0x7FFFFFFF)  # initrd_addr_max
    struct.pack_into("<I", setup, 0x230, 0x200000)  # kernel_alignment
    setup[0x234] = 0  # relocatable_kernel: no, load at 1 MiB
    struct.pack_into("<H", setup, 0x236, 0x0001)  # xloadflags: XLF_KERNEL_64
    struct.pack_into("<I", setup, 0x238, 255)  # cmdline_size
    struct.pack_into("<Q", setup, 0x258, 0x100000)  # pref_address
    pm = bytes(0x200) + flat
    struct.pack_into("<I", setup, 0x260, (len(pm) + PAGE - 1) // PAGE * PAGE)  # init_size
    return bytes(setup) + pm


def arm64_image(flat):
    size = 0x1000 + len(flat)
    hdr = struct.pack("<IIQQQQQQII", 0x14000400,  # code0: b .+0x1000
                      0,  # code1
                      0x100000,  # text_offset
                      (size + PAGE - 1) // PAGE * PAGE,  # image_size
                      0x2,  # flags: little-endian, 4 KiB pages, 2 MiB aligned base
                      0, 0, 0, 0x644D5241, 0)  # res2-4, "ARM\x64", res5
    assert len(hdr) == 64
    return hdr + bytes(0x1000 - 64) + flat


def main():
    if len(sys.argv) != 5 or sys.argv[1] != "--arch" or sys.argv[2] not in ("x86_64", "arm64"):
        sys.exit("usage: mklinux.py --arch x86_64|arm64 FLAT OUT")
    with open(sys.argv[3], "rb") as f:
        flat = f.read()
    out = bzimage(flat) if sys.argv[2] == "x86_64" else arm64_image(flat)
    with open(sys.argv[4], "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
