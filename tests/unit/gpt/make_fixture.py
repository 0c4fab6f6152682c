#!/usr/bin/env python3
"""Writes sgdisk_3parts.bin from a disk image: every non-zero 512-byte block of it as
le64 LBA + the block (the unit test rebuilds the sparse disk). See README.md."""
import struct
import sys

src, dst = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
with open(dst, "wb") as out:
    for lba in range(len(data) // 512):
        block = data[lba * 512:(lba + 1) * 512]
        if any(block):
            out.write(struct.pack("<Q", lba) + block)
