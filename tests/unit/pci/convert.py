#!/usr/bin/env python3
"""Turn a capture log (tests/unit/pci/README.md) into a fixture: per function its sysfs
`resource` lines and the non-zero 16-byte rows of its 4 KiB config space, each row with its
offset. Usage: convert.py LOG > FIXTURE"""
import sys

out = []
state = None
for raw in open(sys.argv[1], errors="replace"):
    line = raw.strip().replace("\r", "")
    if "PCIDEV " in line:
        out.append("device " + line.split("PCIDEV ", 1)[1])
        state, off = None, 0
    elif line == "RESOURCE":
        state = "res"
    elif line == "CONFIG":
        state, off = "cfg", 0
    elif line == "END":
        state = None
    elif state == "res" and line.startswith("0x"):
        out.append("resource " + line)
    elif state == "cfg" and line:
        b = line.split()
        if len(b) == 16:
            if any(x != "00" for x in b):
                out.append("%03x: %s" % (off, " ".join(b)))
            off += 16
print("\n".join(out))
