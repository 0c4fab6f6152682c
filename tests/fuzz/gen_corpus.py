#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets that have generated seeds
(tests/fuzz/corpus/<target>/), each a small valid or nearly valid input in the format the
target's header comment describes. Run from anywhere; rewrites only those directories:

    python3 tests/fuzz/gen_corpus.py
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def u16(v):
    return struct.pack("<H", v & 0xFFFF)


def u32(v):
    return struct.pack("<I", v & 0xFFFFFFFF)


def u64(v):
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


def put(buf, off, data):
    if len(buf) < off + len(data):
        buf.extend(bytes(off + len(data) - len(buf)))
    buf[off:off + len(data)] = data


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(data))


def clean(target):
    d = os.path.join(CORPUS, target)
    if os.path.isdir(d):
        for f in os.listdir(d):
            os.remove(os.path.join(d, f))


# ---- virtio_mmio (fuzz_virtio_mmio.c) ----

FV_BASE = 0x100000


def vm_rd(off, size=4):
    return bytes([{1: 0, 2: 1, 4: 2, 8: 3}[size] | (off >> 8) << 3, off & 0xFF])


def vm_wr(off, val, size=4):
    return bytes([{1: 0, 2: 1, 4: 2, 8: 3}[size] | 4 | (off >> 8) << 3, off & 0xFF]) + u32(val)


def vm_linux_init(queues, num=8, features_hi=1, features_lo=0):
    """The fake driver's fv_linux_init, as operations; queue q's rings at 0x400 * q."""
    ops = vm_rd(0x000) + vm_rd(0x004) + vm_rd(0x008)
    ops += vm_wr(0x070, 0) + vm_wr(0x070, 1) + vm_wr(0x070, 3)
    ops += vm_wr(0x014, 1) + vm_rd(0x010) + vm_wr(0x014, 0) + vm_rd(0x010)
    ops += vm_wr(0x024, 1) + vm_wr(0x020, features_hi) + vm_wr(0x024, 0) + vm_wr(0x020, features_lo)
    ops += vm_wr(0x070, 0xB) + vm_rd(0x070)
    for q in range(queues):
        base = FV_BASE + 0x400 * q
        ops += vm_wr(0x030, q) + vm_rd(0x044) + vm_rd(0x034) + vm_wr(0x038, num)
        ops += vm_wr(0x080, base) + vm_wr(0x084, 0)
        ops += vm_wr(0x090, base + 0x100) + vm_wr(0x094, 0)
        ops += vm_wr(0x0A0, base + 0x200) + vm_wr(0x0A4, 0)
        ops += vm_wr(0x044, 1) + vm_rd(0x044)
    ops += vm_wr(0x070, 0xF) + vm_rd(0x070)
    return ops


def vm_desc(ram, q, i, addr, length, flags, nxt):
    put(ram, 0x400 * q + 16 * i, u64(addr) + u32(length) + u16(flags) + u16(nxt))


def vm_avail(ram, q, heads):
    base = 0x400 * q + 0x100
    put(ram, base, u16(0) + u16(len(heads)))
    for i, h in enumerate(heads):
        put(ram, base + 4 + 2 * i, u16(h))


def vm_seed(sel, ram, ops):
    return bytes([sel]) + u16(len(ram)) + bytes(ram) + ops


def virtio_mmio():
    t = "virtio_mmio"
    clean(t)
    NEXT, WRITE = 1, 2
    notify_ack = lambda q: vm_wr(0x050, q) + vm_rd(0x060) + vm_wr(0x064, 3)
    for name, typ, sector, sel in (("blk_read", 0, 1, 0), ("blk_write", 1, 2, 0),
                                   ("blk_write_ro", 1, 2, 2), ("blk_get_id", 8, 0, 0),
                                   ("blk_flush", 4, 0, 0), ("blk_bad_sector", 0, 999, 0)):
        ram = bytearray()
        put(ram, 0x800, u32(typ) + u32(0) + u64(sector))
        vm_desc(ram, 0, 0, FV_BASE + 0x800, 16, NEXT, 1)
        vm_desc(ram, 0, 1, FV_BASE + 0x1000, 512, NEXT | (WRITE if typ != 1 else 0), 2)
        vm_desc(ram, 0, 2, FV_BASE + 0x900, 1, WRITE, 0)
        vm_avail(ram, 0, [0])
        ops = vm_linux_init(1) + notify_ack(0) + vm_rd(0x100, 8) + vm_rd(0x108) + vm_rd(0x0FC)
        write(t, name, vm_seed(sel, ram, ops))
    # Two requests, then the driver resets the device and sets it up again.
    ram = bytearray()
    put(ram, 0x800, u32(0) + u32(0) + u64(3))
    for h in (0, 3):
        vm_desc(ram, 0, h, FV_BASE + 0x800, 16, NEXT, h + 1)
        vm_desc(ram, 0, h + 1, FV_BASE + 0x1000, 512, NEXT | WRITE, h + 2)
        vm_desc(ram, 0, h + 2, FV_BASE + 0x900 + h, 1, WRITE, 0)
    vm_avail(ram, 0, [0, 3])
    ops = vm_linux_init(1) + notify_ack(0) + vm_wr(0x070, 0) + vm_linux_init(1) + notify_ack(0)
    write(t, "blk_reset_reinit", vm_seed(0, ram, ops))
    # Console: transmit on queue 1, receive into a buffer on queue 0.
    ram = bytearray()
    put(ram, 0x800, b"hello from the guest\n")
    vm_desc(ram, 1, 0, FV_BASE + 0x800, 21, 0, 0)
    vm_avail(ram, 1, [0])
    vm_desc(ram, 0, 0, FV_BASE + 0x1000, 64, WRITE, 0)
    vm_avail(ram, 0, [0])
    ops = vm_linux_init(2) + notify_ack(1) + bytes([0xF1, 5]) + b"typed" + vm_rd(0x060)
    ops += vm_wr(0x064, 1) + vm_wr(0x030, 1) + bytes([0xF2, 1]) + notify_ack(1)
    write(t, "console_tx_rx", vm_seed(1, ram, ops))
    # Register sweep: every 32-bit register read, odd sizes and offsets, the config space.
    ops = b"".join(vm_rd(o) for o in range(0, 0x100, 4))
    ops += vm_rd(0x002, 2) + vm_rd(0x070, 1) + vm_rd(0x070, 8) + vm_wr(0x071, 0xFF, 1)
    ops += b"".join(vm_rd(0x100 + o, s) for o, s in ((0, 8), (8, 4), (12, 4), (20, 4), (0x60, 1)))
    write(t, "register_sweep", vm_seed(0, b"", ops))
    # Illegal status transitions, features beyond the offer, queue writes out of order.
    ops = vm_wr(0x070, 4) + vm_wr(0x070, 1) + vm_wr(0x070, 0xB) + vm_wr(0x070, 3)
    ops += vm_wr(0x024, 2) + vm_wr(0x020, 1) + vm_wr(0x024, 0) + vm_wr(0x020, 0xFFFFFFFF)
    ops += vm_wr(0x070, 0xB) + vm_rd(0x070) + vm_wr(0x038, 16) + vm_wr(0x044, 1)
    ops += vm_wr(0x070, 0x80) + vm_wr(0x070, 0xF) + vm_rd(0x070) + vm_wr(0x070, 0)
    write(t, "illegal_status", vm_seed(0, b"", ops))


TARGETS = {"virtio_mmio": virtio_mmio}

if __name__ == "__main__":
    for name in sys.argv[1:] or TARGETS:
        TARGETS[name]()
