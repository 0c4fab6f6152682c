#!/usr/bin/env python3
"""tools/elf2efi on small images linked with linker/x86_64.lds by the host's gcc.

- good: pointers in relro and data, a 64 KiB bss. The PE file is loaded the way a UEFI loader
  does it (sections copied, the rest zero-filled, base relocations applied for a load address)
  and every pointer must hold load address + its target; the bss must not be in the file.
- bad: a pointer to an undefined symbol of default visibility (R_X86_64_64 or GLOB_DAT): elf2efi
  must refuse it, naming the relocation type, and write no file.
"""
import os
import struct
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ELF2EFI = os.path.join(REPO, "tools", "elf2efi")
LDS = os.path.join(REPO, "linker", "x86_64.lds")

GOOD = r"""
#define H __attribute__((visibility("hidden")))
H int target_a = 1;
H const char target_b[] = "rodata";
H char big[65536];
int *const table[3] = {&target_a, (int *)target_b, (int *)&big[4096]}; /* relro */
char *data_ptr = big + 100;                                               /* data */
H int efi_main(void) { return table[0] != 0 && data_ptr != 0 && big[1] == 0; }
"""
BAD = r"""
extern int elsewhere;
int *data_ptr = &elsewhere;
int efi_main(void) { return data_ptr != 0; }
"""


def link(tmp, name, src):
    c = os.path.join(tmp, name + ".c")
    so = os.path.join(tmp, name + ".so")
    with open(c, "w") as f:
        f.write(src)
    subprocess.run(["gcc", "-fpic", "-O1", "-nostdlib", "-shared", "-Wl,-Bsymbolic",
                    "-Wl,-znocombreloc", "-Wl,-T," + LDS, "-o", so, c], check=True)
    return so


def symbols(so):
    out = subprocess.run(["nm", so], check=True, capture_output=True, text=True).stdout
    return {f[2]: int(f[0], 16) for f in (line.split() for line in out.splitlines()) if len(f) == 3}


def load(efi, base):
    """The memory image a UEFI loader makes of the PE file at `base`."""
    pe = struct.unpack_from("<I", efi, 0x3C)[0]
    assert efi[pe:pe + 4] == b"PE\0\0"
    nsect, opt_size = struct.unpack_from("<H", efi, pe + 6)[0], struct.unpack_from("<H", efi, pe + 20)[0]
    opt = pe + 24
    image_size = struct.unpack_from("<I", efi, opt + 56)[0]
    reloc_rva, reloc_size = struct.unpack_from("<II", efi, opt + 112 + 5 * 8)
    mem = bytearray(image_size)
    for i in range(nsect):
        vsize, rva, raw_size, raw_ptr = struct.unpack_from("<IIII", efi, opt + opt_size + 40 * i + 8)
        assert raw_ptr + raw_size <= len(efi), "section %d past the end of the file" % i
        n = min(vsize, raw_size)
        mem[rva:rva + n] = efi[raw_ptr:raw_ptr + n]
    off = reloc_rva
    while off < reloc_rva + reloc_size:
        page, size = struct.unpack_from("<II", mem, off)
        for k in range((size - 8) // 2):
            e = struct.unpack_from("<H", mem, off + 8 + 2 * k)[0]
            if e >> 12 == 10:  # DIR64
                slot = page + (e & 0xFFF)
                struct.pack_into("<Q", mem, slot, struct.unpack_from("<Q", mem, slot)[0] + base)
            else:
                assert e >> 12 == 0, "base relocation type %d" % (e >> 12)
        off += size
    return mem


def main():
    fails = []
    with tempfile.TemporaryDirectory() as tmp:
        so = link(tmp, "good", GOOD)
        efi_path = os.path.join(tmp, "good.efi")
        subprocess.run([sys.executable, ELF2EFI, so, efi_path], check=True)
        efi = open(efi_path, "rb").read()
        if len(efi) >= 65536:
            fails.append("good.efi is %d bytes: the 64 KiB bss is in the file" % len(efi))
        s = symbols(so)
        base = 0x7E5A0000
        mem = load(efi, base)
        want = {"table": [s["target_a"], s["target_b"], s["big"] + 4096],
                "data_ptr": [s["big"] + 100]}
        for name, targets in want.items():
            for i, t in enumerate(targets):
                got = struct.unpack_from("<Q", mem, s[name] + 8 * i)[0]
                if got != base + t:
                    fails.append("%s[%d] = %#x after loading at %#x, want %#x"
                                 % (name, i, got, base, base + t))
        if mem[s["target_b"]:s["target_b"] + 7] != b"rodata\0":
            fails.append("rodata not loaded")
        entry = struct.unpack_from("<I", efi, struct.unpack_from("<I", efi, 0x3C)[0] + 24 + 16)[0]
        if entry != s["efi_main"]:
            fails.append("entry point %#x, efi_main is at %#x" % (entry, s["efi_main"]))

        so = link(tmp, "bad", BAD)
        efi_path = os.path.join(tmp, "bad.efi")
        r = subprocess.run([sys.executable, ELF2EFI, so, efi_path], capture_output=True, text=True)
        if r.returncode == 0 or "dynamic relocation type" not in r.stderr:
            fails.append("a symbol relocation was not refused (status %d, stderr %r)"
                         % (r.returncode, r.stderr))
        if os.path.exists(efi_path):
            fails.append("bad.efi was written")
    for f in fails:
        print("FAIL: " + f)
    print("test_elf2efi: %s" % ("FAIL" if fails else "ok"))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
