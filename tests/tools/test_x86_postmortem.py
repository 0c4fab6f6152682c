#!/usr/bin/env python3
"""tools/x86-postmortem on a synthetic dump: a CPU whose page tables map its RIP and IDT, a
CR2 they do not map, a VMCB in RAX with nested page tables, and a host save area."""
import os
import struct
import subprocess
import sys
import tempfile

TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools",
                    "x86-postmortem")


def main():
    mem = bytearray(8 << 20)

    def put(addr, value):
        mem[addr:addr + 8] = struct.pack("<Q", value)

    put(0x1000, 0x2000 | 0x27)  # PML4[0] -> PDPT
    put(0x2000, 0x3000 | 0x27)  # PDPT[0] -> PD
    for i in range(4):  # 0-8 MiB, 2 MiB pages
        put(0x3000 + 8 * i, (i << 21) | 0xE3)
    vmcb = 0x5000  # a VMCB: VMMCALL exit, nested paging at 0x6000 mapping gpa 0 -> 0x600000
    put(vmcb + 0x70, 0x81)
    put(vmcb + 0x90, 1)
    put(vmcb + 0xB0, 0x6000)
    put(vmcb + 0x550, 0x1000)
    put(vmcb + 0x578, 0x1000DB)
    put(0x6000, 0x7000 | 0x27)
    put(0x7000, 0x8000 | 0x27)
    put(0x8000, 0x600000 | 0xE7)
    hsave = 0x9000  # the host's state as VMRUN saved it
    put(hsave + 0x550, 0x1000)
    put(hsave + 0x578, 0x100123)
    put(hsave + 0x4D0, 0x1D00)
    regs = ("\nCPU#0\nRAX=0000000000005000 RBX=0000000000000000\nRIP=0000000000100123 RFL=0\n"
            "IDT=     0000000000180000 00000fff\n"
            "CR0=80010033 CR2=0000000001000000 CR3=0000000000001000 CR4=00000668\n")
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "memory.bin"), "wb") as f:
            f.write(mem)
        with open(os.path.join(d, "registers.txt"), "w") as f:
            f.write(regs)
        out = subprocess.run([sys.executable, TOOL, d], capture_output=True, text=True,
                             check=True).stdout
    print(out, end="")
    expect = [
        "RIP      0x0000000000100123 -> 0x100123 (entry 0xe3)",
        "IDT      0x0000000000180000 -> 0x180000 (entry 0xe3)",
        "CR2      0x0000000001000000 -> not present at level 1 (entry 0x0 at 0x3040)",
        "RAX 0x5000 looks like a VMCB: exit code 0x81, NP 1, nested CR3 0x6000, guest CR3 "
        "0x1000 RIP 0x1000db",
        "gCR3     0x0000000000001000 -> 0x601000 (entry 0x6000e7)",
        "host save area? 0x9000: RIP 0x100123",
    ]
    missing = [e for e in expect if e not in out]
    for e in missing:
        print("FAIL: missing %r" % e)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
