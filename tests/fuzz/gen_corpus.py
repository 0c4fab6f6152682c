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
    # The blkdev backend (sel bit 2; bits 4-6 the device queue's room - 1): three requests
    # with the device at once, completed out of order; one failed; a reset with two out;
    # misaligned buffers bounced (bit 3).
    ram = bytearray()
    for k, (typ, sector) in enumerate(((0, 1), (1, 2), (4, 0), (0, 5))):
        h = 3 * k
        put(ram, 0x800 + 16 * k, u32(typ) + u32(0) + u64(sector))
        vm_desc(ram, 0, h, FV_BASE + 0x800 + 16 * k, 16, NEXT, h + 1)
        if typ == 4:
            vm_desc(ram, 0, h + 1, FV_BASE + 0x900 + k, 1, WRITE, 0)
        else:
            vm_desc(ram, 0, h + 1, FV_BASE + 0x1000 + 0x200 * k + 8, 512,
                    NEXT | (WRITE if typ != 1 else 0), h + 2)
            vm_desc(ram, 0, h + 2, FV_BASE + 0x900 + k, 1, WRITE, 0)
    vm_avail(ram, 0, [0, 3, 6, 9])
    done = lambda b: bytes([0xF3, b])
    ops = vm_linux_init(1) + notify_ack(0) + done(2) + done(0x40) + done(0) + done(0x80)
    ops += vm_rd(0x060) + vm_wr(0x064, 3)
    write(t, "dev_out_of_order", vm_seed(4 | 2 << 4, ram, ops))
    write(t, "dev_queue_full", vm_seed(4, ram, vm_linux_init(1) + notify_ack(0) + done(0) + done(0)))
    write(t, "dev_bounced", vm_seed(4 | 8 | 7 << 4, ram, vm_linux_init(1) + notify_ack(0) + done(0x80)))
    ops = vm_linux_init(1) + notify_ack(0) + vm_wr(0x070, 0) + done(1) + vm_linux_init(1)
    ops += notify_ack(0) + done(0x80)
    write(t, "dev_reset_in_flight", vm_seed(4 | 3 << 4, ram, ops))
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


# ---- apic (fuzz_apic.c) ----


def ap_wr(cpu, reg, val):
    return bytes([0 | cpu << 4, reg >> 4]) + u32(val)


def ap_rd(cpu, reg):
    return bytes([1 | cpu << 4, reg >> 4])


def ap_time(delta):
    return bytes([3]) + u32(delta)


def ap_take(cpu):
    return bytes([4 | cpu << 4])


def io_wr(reg, val):
    return bytes([6, reg]) + bytes([7]) + u32(val)


def io_rd(reg):
    return bytes([6, reg, 8])


def apic():
    t = "apic"
    clean(t)
    SVR, EOI, TPR, TIMER, TMICT, TMCCT, TDCR = 0xF0, 0xB0, 0x80, 0x320, 0x380, 0x390, 0x3E0
    ICR_LO, ICR_HI, LDR, DFR, ESR, LINT0 = 0x300, 0x310, 0xD0, 0xE0, 0x280, 0x350
    enable = lambda c: ap_wr(c, SVR, 0x1FF)
    # Timer: one-shot, periodic, TSC-deadline; read the counts as time passes.
    ops = enable(0) + ap_wr(0, TDCR, 0xB) + ap_wr(0, TIMER, 0x30) + ap_wr(0, TMICT, 1000)
    ops += ap_time(500) + ap_rd(0, TMCCT) + ap_time(600) + ap_take(0) + ap_wr(0, EOI, 0)
    ops += ap_wr(0, TIMER, 0x20031) + ap_wr(0, TMICT, 100) + ap_time(250) + ap_take(0)
    ops += ap_wr(0, TIMER, 0x40032) + bytes([10]) + u32(300) + bytes([11]) + ap_time(400)
    ops += ap_take(0) + ap_wr(0, EOI, 0) + ap_wr(0, TDCR, 0x3) + ap_rd(0, TMCCT)
    write(t, "timers", bytes([0]) + ops)
    # Priorities: self-interrupts of several classes, TPR, nesting, EOIs.
    ops = enable(0)
    for vec in (0x31, 0x52, 0x5F, 0x90, 0x20):
        ops += bytes([5, vec, vec & 1])
    ops += ap_wr(0, TPR, 0x50) + ap_take(0) + ap_take(0) + ap_rd(0, 0xA0) + bytes([12, 0])
    ops += ap_take(0) + ap_wr(0, EOI, 0) + ap_take(0) + ap_wr(0, EOI, 0) + ap_wr(0, EOI, 0)
    ops += bytes([5, 7, 0]) + ap_rd(0, ESR) + ap_wr(0, ESR, 0) + ap_rd(0, ESR)
    ops += ap_wr(0, SVR, 0xFF) + ap_rd(0, LINT0) + ap_wr(0, LINT0, 0x700)
    write(t, "priorities", bytes([0]) + ops)
    # I/O APIC: a level pin and an edge pin to LAPIC 1 and a logical group; EOI re-delivery.
    ops = enable(0) + enable(1) + ap_wr(1, LDR, 0x02000000) + ap_wr(0, LDR, 0x01000000)
    ops += io_wr(0x10 + 2 * 4, 0x8035) + io_wr(0x11 + 2 * 4, 1 << 24)
    ops += io_wr(0x10 + 2 * 9, 0x0841) + io_wr(0x11 + 2 * 9, 3 << 24)
    ops += bytes([9, 0x84, 9, 0x89, 9, 0x09, 9, 0x89]) + ap_take(1) + ap_wr(1, EOI, 0)
    ops += ap_take(1) + bytes([9, 0x04]) + ap_wr(1, EOI, 0) + ap_take(0) + ap_wr(0, EOI, 0)
    ops += io_rd(0) + io_rd(1) + io_rd(2) + io_rd(0x10 + 8) + io_rd(0x40)
    ops += bytes([13, 0x10, 1]) + u32(0) + bytes([13, 0x00, 6]) + u32(0x11)
    write(t, "ioapic", bytes([1]) + ops)
    # IPIs: fixed, lowest priority, logical flat and cluster, shorthands, INIT and SIPI.
    ops = enable(0) + enable(1) + enable(2) + enable(3)
    ops += ap_wr(0, ICR_HI, 2 << 24) + ap_wr(0, ICR_LO, 0x4041) + ap_take(2) + ap_wr(2, EOI, 0)
    ops += ap_wr(1, DFR, 0x0FFFFFFF) + ap_wr(1, LDR, 0x11000000) + ap_wr(2, DFR, 0x0FFFFFFF)
    ops += ap_wr(0, ICR_HI, 0x13 << 24) + ap_wr(0, ICR_LO, 0x4942) + ap_take(1)
    ops += ap_wr(3, ICR_LO, 0xC4043) + ap_wr(3, ICR_LO, 0x84044) + ap_wr(3, ICR_LO, 0x44045)
    ops += ap_wr(0, ICR_LO, 0x4105) + ap_rd(0, ESR) + ap_wr(0, ICR_LO, 0x4000 | 2 << 8)
    write(t, "ipis", bytes([3]) + ops)
    ops = enable(0) + ap_wr(0, ICR_HI, 1 << 24) + ap_wr(0, ICR_LO, 0x4500)
    ops += ap_wr(0, ICR_LO, 0x4608) + ap_wr(0, ICR_LO, 0x4608) + ap_wr(0, ICR_LO, 0xC4500)
    ops += ap_wr(0, ICR_LO, 0xC4609) + ap_rd(1, 0x20) + enable(1) + ap_wr(0, ICR_LO, 0x4500)
    write(t, "init_sipi", bytes([6]) + ops)
    # Odd sizes and offsets, reserved registers.
    ops = bytes([2]) + u16(0x21) + bytes([0]) + u32(0) + bytes([2]) + u16(0x80) + bytes([7]) + u32(5)
    ops += bytes([2]) + u16(0x82) + bytes([6]) + u32(5) + ap_rd(0, 0x40) + ap_rd(0, 0x3F0)
    write(t, "bad_accesses", bytes([0]) + ops)


# ---- uart (fuzz_uart.c) ----


def ua_wr(off, val, size=4):
    return bytes([{1: 0, 2: 1, 4: 2, 8: 3}[size] | 4]) + u16(off) + u32(val)


def ua_rd(off, size=4):
    return bytes([{1: 0, 2: 1, 4: 2, 8: 3}[size]]) + u16(off)


def ua_in(data):
    return bytes([0xFF, len(data)]) + data


def uart():
    t = "uart"
    clean(t)
    DR, FR, LCR_H, CR, IFLS, IMSC, RIS, MIS, ICR = 0, 0x18, 0x2C, 0x30, 0x34, 0x38, 0x3C, 0x40, 0x44
    ops = ua_wr(CR, 0x301) + ua_wr(LCR_H, 0x70) + ua_wr(IMSC, 0x70) + ua_in(b"hello, guest")
    ops += ua_rd(RIS) + ua_rd(MIS) + b"".join(ua_rd(DR) for _ in range(6)) + ua_rd(FR)
    ops += b"".join(ua_wr(DR, c) for c in b"ok\n") + ua_wr(ICR, 0x7FF) + ua_rd(RIS)
    ops += ua_wr(IFLS, 0x3F) + ua_in(b"x" * 40) + ua_wr(LCR_H, 0x60) + ua_in(b"ab") + ua_rd(DR, 1)
    ops += b"".join(ua_rd(o) for o in range(0xFE0, 0x1000, 4)) + ua_rd(0x4C) + ua_rd(2, 2)
    write(t, "pl011", bytes([0]) + ops)
    ops = ua_wr(CR, 0) + ua_in(b"dropped") + ua_wr(CR, 0x201) + ua_in(b"q") + ua_rd(DR)
    ops += ua_wr(DR, 0x41, 1) + ua_wr(DR, 0x42, 8) + ua_rd(FR, 2)
    write(t, "pl011_disabled", bytes([0]) + ops)
    ops = ua_wr(3, 0x80) + ua_wr(0, 1) + ua_wr(1, 0) + ua_wr(3, 0x03) + ua_wr(2, 0xC7)
    ops += ua_wr(1, 0x0F) + ua_wr(4, 0x0B) + ua_rd(2) + ua_in(b"typed line\r") + ua_rd(2)
    ops += ua_rd(5) + b"".join(ua_rd(0) for _ in range(4)) + ua_rd(6) + ua_wr(7, 0x5A) + ua_rd(7)
    ops += b"".join(ua_wr(0, c) for c in b"guest says hi\n") + ua_rd(2) + ua_wr(2, 0x07)
    ops += ua_rd(8) + ua_rd(15)
    write(t, "16550", bytes([1]) + ops)
    ops = ua_wr(4, 0x1F) + ua_wr(1, 0x0D) + b"".join(ua_wr(0, c) for c in b"loopback")
    ops += ua_rd(5) + ua_rd(0) + ua_rd(2) + ua_rd(6) + ua_wr(2, 0x01)
    ops += b"".join(ua_wr(0, c) for c in b"0123456789abcdefgh") + ua_rd(5) + ua_wr(4, 0x08)
    ops += ua_in(b"z") + ua_rd(6) + ua_wr(2, 0) + ua_in(b"yy") + ua_rd(0)
    write(t, "16550_loop", bytes([1]) + ops)


# ---- vgic (fuzz_vgic.c) ----


def gd(off, val, size=4):
    return bytes([0]) + u16(off) + bytes([{1: 0, 2: 1, 4: 2, 8: 3}[size] | 4]) + u32(val)


def gd_rd(off, size=4):
    return bytes([0]) + u16(off) + bytes([{1: 0, 2: 1, 4: 2, 8: 3}[size]]) + u32(0)


def gr(cpu, off, val, sgi=False, write=True):
    return bytes([1]) + u16(off) + bytes([2 | (4 if write else 0) | (8 if sgi else 0) | cpu << 4]) + u32(val)


def gic_linux_init(ncpu, nspis):
    nr = ((nspis + 31) // 32 + 1) * 32
    ops = gd_rd(0x4) + gd(0, 0)
    for i in range(32, nr, 32):
        ops += gd(0x80 + i // 8, 0xFFFFFFFF) + gd(0x380 + i // 8, 0xFFFFFFFF) + gd(0x180 + i // 8, 0xFFFFFFFF)
    for i in range(32, nr, 16):
        ops += gd(0xC00 + i // 4, 0)
    for i in range(32, nr, 4):
        ops += gd(0x400 + i, 0xA0A0A0A0)
    ops += gd(0, 0x13)
    for c in range(ncpu):
        ops += gr(c, 0x14, 0) + gr(c, 0x14, 0, write=False) + gr(c, 0x80, 0xFFFFFFFF, True)
        ops += gr(c, 0x180, 0xFFFFFFFF, True) + gr(c, 0x100, 0xFFFF, True)
        ops += gr(c, 0x100, 1 << 27, True) + gr(c, 0x8, 0, write=False)
    return ops


def vgic():
    t = "vgic"
    clean(t)
    flush = lambda c, n=4: bytes([5 | c << 4, n - 1])
    sync = lambda c: bytes([6 | c << 4])
    guest = lambda c, i, what: bytes([7 | c << 4, i | what << 4])
    init = gic_linux_init(2, 64)
    # A level SPI (33) and an edge SPI (40) to vCPU 1, acknowledged and completed.
    ops = init + gd(0x100 + 4, 1 << 1 | 1 << 8) + gd(0xC00 + 8, 2 << 16)
    ops += gd(0x6000 + 8 * 33, 1, 8) + gd(0x6000 + 8 * 40, 1, 8) + gd(0x400 + 40, 0x80, 1)
    ops += bytes([2, 33, 1, 2, 40, 1, 2, 40, 0, 2, 40, 1]) + flush(1) + guest(1, 0, 0)
    ops += guest(1, 1, 2) + sync(1) + flush(1) + guest(1, 0, 1) + sync(1) + bytes([2, 33, 0])
    ops += flush(1) + sync(1) + flush(0) + sync(0)
    write(t, "spis", bytes([1, 64]) + ops)
    # SGIs by target list, to all others (IRM), and the timer PPI; more pending than LRs.
    ops = init + bytes([4]) + u64(3 << 24 | 2) + bytes([4 | 1 << 4]) + u64(1 << 40 | 5 << 24)
    ops += bytes([3 | 1 << 4, 27, 1]) + flush(1, 1) + guest(1, 0, 2) + sync(1) + flush(1, 2)
    ops += sync(1) + flush(0, 2) + flush(0, 2) + sync(0) + bytes([3, 27, 0])
    write(t, "sgis_ppi", bytes([1, 32]) + ops)
    # Register reads across both frames, odd sizes, a frame that does not exist.
    ops = b"".join(gd_rd(o) for o in (0, 4, 8, 0x80, 0x100, 0x200, 0x300, 0x400, 0xC00, 0xFFE8))
    ops += gd_rd(0x6100, 8) + gd_rd(0x401, 1) + gd_rd(0x402, 2) + gd_rd(0x6, 2)
    ops += gr(0, 0x8, 0, write=False) + gr(0, 0x8, 0, write=False)[:3] + bytes([3]) + u32(0)
    ops += gr(7, 0x14, 0) + gr(2, 0x200, 0, True, False)
    write(t, "registers", bytes([2, 96]) + ops)
    write(t, "too_many_spis", bytes([0, 200]) + gd_rd(0) + flush(0) + bytes([2, 40, 1]))
    # SGI 1 from vCPU 1 to vCPU 0, taken there (active, synced), then sent again: the model
    # kicks vCPU 0 for it (news) although it shows it active and nothing deliverable.
    sgi = bytes([4 | 1 << 4]) + u64(1 << 24 | 1)
    ops = init + sgi + flush(0) + guest(0, 0, 0) + sync(0) + sgi
    write(t, "sgi_again_while_active", bytes([1, 64]) + ops)


# ---- loader (fuzz_loader.c) ----


def elf64(entry, segs, machine=62):
    """An ELF64 executable with PT_LOAD segments (paddr, data, memsz)."""
    eh = bytearray(64)
    eh[0:16] = b"\x7fELF\x02\x01\x01" + bytes(9)
    put(eh, 16, u16(2) + u16(machine) + u32(1) + u64(entry) + u64(64) + u64(0) + u32(0))
    put(eh, 52, u16(64) + u16(56) + u16(len(segs)) + u16(64) + u16(0) + u16(0))
    out = eh
    off = 64 + 56 * len(segs)
    body = b""
    for paddr, data, memsz in segs:
        out += u32(1) + u32(7) + u64(off + len(body)) + u64(paddr) + u64(paddr)
        out += u64(len(data)) + u64(memsz) + u64(0x1000)
        body += data
    return bytes(out) + body


def bzimage(setup_sects=1, init_size=0x80000, payload=0x200, version=0x020F):
    img = bytearray((setup_sects + 1) * 512 + payload)
    img[0x1F1] = setup_sects
    put(img, 0x1FE, u16(0xAA55))
    img[0x200], img[0x201] = 0xEB, 0x6A
    put(img, 0x202, b"HdrS" + u16(version))
    img[0x211] = 1
    put(img, 0x214, u32(0x100000))
    put(img, 0x22C, u32(0x7FFFFFFF) + u32(0x200000) + bytes([1, 21]) + u16(3) + u32(0x7FF))
    put(img, 0x258, u64(0x100000) + u32(init_size))
    for i in range((setup_sects + 1) * 512, len(img)):
        img[i] = (i * 7 + 3) & 0xFF
    return bytes(img)


def arm64_image(text_offset=0, image_size=0x10000, flags=0xA, size=0x1000):
    img = bytearray(size)
    put(img, 0, u32(0x14000010))  # b +0x40
    put(img, 8, u64(text_offset) + u64(image_size) + u64(flags))
    put(img, 0x38, u32(0x644D5241))
    return bytes(img)


def loader():
    t = "loader"
    clean(t)
    code = bytes(range(64)) * 4
    write(t, "flat", bytes([0, 1, 0x10, 0, 0, 0, 0, 0]) + code)
    write(t, "flat_entry", bytes([0, 1, 0x10, 1]) + u32(0x10040) + code)
    write(t, "elf", bytes([0, 2, 0, 0, 0, 0, 0, 0]) + elf64(0x100000, [(0x100000, code, 0x2000), (0x180000, code[:16], 16)]))
    write(t, "elf_auto_reserved", bytes([0, 0, 0, 0, 0, 0, 0, 0]) + elf64(0x1000, [(0x1000, code, 0x100)]))
    write(t, "bzimage", bytes([1, 2, 0, 0, 0, 1, 0, 0]) + bzimage())
    write(t, "bzimage_initrd", bytes([1, 3, 8, 0, 2, 0, 0, 0]) + bzimage(setup_sects=2, payload=0x1000))
    write(t, "bzimage_old", bytes([1, 1, 0, 0, 1, 0, 0, 0]) + bzimage(version=0x020B))
    write(t, "arm64", bytes([2, 0, 0, 63, 4, 0, 16, 0]) + arm64_image())
    write(t, "arm64_text", bytes([2, 3, 0, 15, 0, 0, 0, 2]) + arm64_image(0x80000, 0x200000, 0x2))


# ---- multiboot (fuzz_multiboot.c) ----


def mb_header(flags, extra=b""):
    magic = 0x1BADB002
    return u32(magic) + u32(flags) + u32((-(magic + flags)) & 0xFFFFFFFF) + extra


def elf32_multiboot(entry=0x4000BC, bss=0x3000):
    """An ELF32 i386 kernel laid out as kvm-unit-tests links them (text at 4 MiB + headers)."""
    eh = bytearray(52)
    eh[0:16] = b"\x7fELF\x01\x01\x01" + bytes(9)
    put(eh, 16, u16(2) + u16(3) + u32(1) + u32(entry) + u32(52) + u32(0) + u32(0))
    put(eh, 40, u16(52) + u16(32) + u16(2) + u16(40) + u16(0) + u16(0))
    text = mb_header(0) + bytes((i * 3) & 0xFF for i in range(0xF4))
    data = bytes((i + 7) & 0xFF for i in range(0x40))
    ph = u32(1) + u32(0xB0) + u32(0x4000B0) + u32(0x4000B0) + u32(len(text)) + u32(len(text)) + u32(5) + u32(0x1000)
    ph += u32(1) + u32(0x200) + u32(0x401000) + u32(0x401000) + u32(len(data)) + u32(bss) + u32(6) + u32(0x1000)
    img = bytearray(0x240)
    put(img, 0, bytes(eh) + ph)
    put(img, 0xB0, text)
    put(img, 0x200, data)
    return bytes(img)


def aout_multiboot():
    img = bytearray(0x200)
    for i in range(len(img)):
        img[i] = (i ^ 0x5A) & 0xFF
    put(img, 0x40, mb_header(0x10003, u32(0x200040) + u32(0x200000) + u32(0) + u32(0x203000) + u32(0x200080)))
    return bytes(img)


def multiboot():
    t = "multiboot"
    clean(t)
    write(t, "elf32", bytes([6, 0, 0, 0, 2, 0, 0, 0]) + elf32_multiboot())
    write(t, "elf32_modules", bytes([6, 2, 2, 0, 3, 0, 0, 0]) + elf32_multiboot())
    write(t, "elf32_2m_ram", bytes([0, 1, 1, 0, 1, 0, 0, 0]) + elf32_multiboot())
    write(t, "aout", bytes([1, 1, 3, 0, 0, 0, 0, 0]) + aout_multiboot())
    write(t, "no_header", bytes([6, 0, 0, 0, 0, 0, 0, 0]) + elf32_multiboot()[:0xB0] + bytes(0x100))


# ---- gwalk (fuzz_gwalk.c) ----


def gwalk():
    t = "gwalk"
    clean(t)
    PG, PAE, LMA, PSE, NXE, WP, SMEP = 1, 2, 4, 8, 16, 32, 64
    P, RW, US, PS, NX = 1, 2, 4, 0x80, 1 << 63
    code = bytes([0x48, 0x8B, 0x05, 0x10, 0, 0, 0, 0x0F, 0x01, 0xD9, 0xF4, 0x90, 0x90, 0x90, 0x90])

    def seed(mode, cr3, gva, acc, ram):
        return bytes([mode]) + u32(cr3) + u64(gva) + bytes([acc]) + bytes(ram)

    # Long mode: gva 0x7f_c040_3ff8 crosses from a 4 KiB page into the next one.
    gva = (1 << 39) * 0xFF + (1 << 30) * 1 + (1 << 21) * 2 + 0x3FF8
    ram = bytearray(0x7000)
    put(ram, 0x1000 + 8 * 0xFF, u64(0x2000 | P | RW | US))
    put(ram, 0x2000 + 8 * 1, u64(0x3000 | P | RW | US))
    put(ram, 0x3000 + 8 * 2, u64(0x4000 | P | RW))
    put(ram, 0x4000 + 8 * 3, u64(0x5000 | P | RW | NX))
    put(ram, 0x4000 + 8 * 4, u64(0x6000 | P))
    put(ram, 0x5FF8, code[:8])
    put(ram, 0x6000, code[8:])
    write(t, "long4k_cross", seed(PG | PAE | LMA | NXE | WP, 0x1000, gva, 4 | 14 << 3, ram))
    # Long mode 2 MiB and 1 GiB pages, a user write.
    ram = bytearray(0x4000)
    put(ram, 0x1000, u64(0x2000 | P | RW | US))
    put(ram, 0x2000, u64(0x3000 | P | RW | US) + u64(0x40000000 | P | RW | US | PS))
    put(ram, 0x3000, u64(0x0 | P | US | PS))
    write(t, "long_2m", seed(PG | PAE | LMA | WP, 0x1000, 0x1234, 3, ram))
    write(t, "long_1g", seed(PG | PAE | LMA | SMEP, 0x1000, 0x40001234, 4, ram))
    write(t, "noncanonical", seed(PG | PAE | LMA, 0x1000, 0x0000800000000000, 0, ram))
    write(t, "la57", seed(PG | PAE | LMA | 128, 0x1000, 0, 0, ram))
    # PAE: PDPT at 0x1020 (32-byte aligned), PD at 0x2000, PT at 0x3000.
    ram = bytearray(0x5000)
    put(ram, 0x1020 + 8, u64(0x2000 | P))
    put(ram, 0x2000 + 8 * 5, u64(0x3000 | P | RW | US))
    put(ram, 0x2000 + 8 * 6, u64(0x200000 | P | PS | NX))
    put(ram, 0x3000 + 8 * 7, u64(0x4000 | P | RW | US))
    put(ram, 0x4000, code)
    write(t, "pae", seed(PG | PAE | NXE, 0x1020, (1 << 30) + (5 << 21) + (7 << 12), 5 | 15 << 3, ram))
    write(t, "pae_2m_nx", seed(PG | PAE | NXE, 0x1020, (1 << 30) + (6 << 21) + 0x10, 4, ram))
    # 32-bit paging: a 4 KiB page and a PSE-36 4 MiB page.
    ram = bytearray(0x4000)
    put(ram, 0x1000, u32(0x2000 | P | RW | US) + u32(0x00402000 | P | PS | RW))
    put(ram, 0x2000 + 4 * 3, u32(0x3000 | P | RW))
    put(ram, 0x3000, code)
    write(t, "legacy32", seed(PG | PSE, 0x1000, 0x3000, 1 | 15 << 3, ram))
    write(t, "legacy32_pse36", seed(PG | PSE, 0x1000, 0x400123, 0, ram))
    write(t, "no_paging", seed(0, 0, 0xFFFFFFFF00003000, 4 | 15 << 3, ram))


# ---- acpi_fw (fuzz_acpi_fw.c) ----


def acpi_table(sig, body, rev=1):
    t = bytearray(sig + u32(36 + len(body)) + bytes([rev, 0]) + b"KEELFZ" + b"FUZZTBL " + u32(1) + b"KEEL" + u32(1)) + body
    t[9] = (-sum(t)) & 0xFF
    return bytes(t)


def rsdp(rev, rsdt, xsdt):
    r = bytearray(b"RSD PTR " + bytes([0]) + b"KEELFZ" + bytes([rev]) + u32(rsdt) + u32(36) + u64(xsdt) + bytes(4))
    r[8] = (-sum(r[:20])) & 0xFF
    r[32] = (-sum(r)) & 0xFF
    return bytes(r)


def acpi_fw():
    t = "acpi_fw"
    clean(t)
    madt = u32(0xFEE00000) + u32(1)
    for uid, apic, flags in ((0, 0, 1), (1, 2, 1), (2, 2, 1), (3, 7, 0), (4, 0xFF, 1)):
        madt += bytes([0, 8, uid, apic]) + u32(flags)
    madt += bytes([9, 16, 0, 0]) + u32(0x100) + u32(1) + u32(5)
    madt += bytes([9, 16, 0, 0]) + u32(0xFFFFFFFF) + u32(1) + u32(6) + bytes([1, 12]) + bytes(10)
    madt_t = acpi_table(b"APIC", madt, 5)
    facp = acpi_table(b"FACP", bytes(240), 6)
    spcr = acpi_table(b"SPCR", bytes([3]) + bytes(43), 2)
    for name, rev, width in (("xsdt", 2, 8), ("rsdt", 0, 4)):
        mem = bytearray(0x800)
        ents = b"".join((u64 if width == 8 else u32)(o) for o in (0x200, 0x400, 0x600, 0x7F0))
        put(mem, 0x100, acpi_table(b"XSDT" if width == 8 else b"RSDT", ents))
        put(mem, 0x200, facp)
        put(mem, 0x400, madt_t)
        put(mem, 0x600, spcr)
        write(t, name, rsdp(rev, 0x100, 0x100) + bytes(mem))
    # The MADT alone at the window's start (also parsed as one), and a truncated one.
    write(t, "madt_only", rsdp(0, 0, 0) + madt_t)
    write(t, "madt_short", rsdp(0, 0, 0) + madt_t[:60])


def pci_fixture_seed(path, drop=()):
    """A fuzz_pci input from a captured fixture (tests/unit/pci/*.txt): bus 0-3 only,
    config space up to 0x400 (1 KiB: the extended capabilities QEMU's devices have)."""
    out = b""
    devs = []
    for line in open(path):
        w = line.split()
        if w and w[0] == "device":
            bus, devfn = w[1].split(":")[1:]
            dev, fn = devfn.split(".")
            devs.append([int(bus, 16), int(dev, 16), int(fn), [], bytearray(0x400)])
        elif w and w[0] == "resource" and devs:
            start, end = int(w[1], 16), int(w[2], 16)
            devs[-1][3].append(end - start + 1 if end > start else 0)
        elif w and w[0].endswith(":") and devs and int(w[0][:-1], 16) < 0x400:
            off = int(w[0][:-1], 16)
            devs[-1][4][off:off + 16] = bytes(int(x, 16) for x in w[1:17])
    for bus, dev, fn, res, cfg in devs:
        if fn or (bus, dev) in drop or bus > 3:
            continue
        sizes = []
        for size in (res + [0] * 6)[:6]:
            sizes.append(0 if not size else (size.bit_length() - 1 - 4) % 36 or 36)
        out += bytes([bus << 5 | dev]) + bytes(sizes) + u16(len(cfg)) + bytes(cfg)
    return out


# ---- pic (fuzz_pic.c) ----


def pic_out(sel, val):
    return bytes([0, sel, val])


def pic():
    t = "pic"
    clean(t)
    # Linux's init_8259A (ports 0x20, 0x21, 0xa0, 0xa1 = selectors 0-3), then IRQs, INTAs, EOIs.
    ops = pic_out(0, 0x11) + pic_out(1, 0x30) + pic_out(1, 0x04) + pic_out(1, 0x01)
    ops += pic_out(2, 0x11) + pic_out(3, 0x38) + pic_out(3, 0x02) + pic_out(3, 0x01)
    ops += pic_out(1, 0x00) + pic_out(3, 0x00)
    ops += bytes([2, 0x85, 2, 0x05, 2, 0x8C, 2, 0x0C, 3, 3]) + pic_out(2, 0x20) + pic_out(0, 0x20)
    ops += pic_out(0, 0x0B) + bytes([1, 0]) + pic_out(0, 0x65) + bytes([3, 1, 1])
    write(t, "linux_init", bytes([0]) + ops)
    # SeaBIOS's state: unmask IRQ 11 and pulse it; ELCR level inputs; poll; special mask.
    ops = pic_out(3, 0x86) + bytes([2, 0x8B, 2, 0x0B, 3]) + pic_out(2, 0x63) + pic_out(0, 0x20)
    ops += pic_out(4, 0xFF) + pic_out(5, 0xFF) + bytes([1, 4, 1, 5, 2, 0x8A, 3, 3])
    ops += pic_out(2, 0x0C) + bytes([1, 2]) + pic_out(2, 0x68) + pic_out(0, 0xC3)
    ops += pic_out(0, 0xA0) + bytes([2, 0x0A, 3, 4, 0, 6, 0x11, 1, 7])
    write(t, "bios_state", bytes([1]) + ops)
    # A snapshot section (IRQ 11 level, high, unmasked on the slave), then INTAs and a pulse.
    chip0 = bytes([0, 0, 0xB8, 0, 0, 0x08, 7, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    chip1 = bytes([0x08, 0, 0x86, 0x08, 0x08, 0x70, 7, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    write(t, "snapshot", bytes([2]) + chip0 + chip1 + bytes([3, 3, 0, 3, 0x82, 3]))


# ---- pit (fuzz_pit.c) ----


def pit_out(sel, val):
    return bytes([0, sel, val])


def pit_wait(n, shift=0):
    return bytes([2 | shift << 2]) + u16(n)


def pit():
    t = "pit"
    clean(t)
    head = u32(3000000000) + u32(1000)  # a 3 GHz TSC
    # SeaBIOS's channel 0 polled across its first edges; a latch, a read-back, a live read.
    ops = bytes([3]) + pit_wait(0xFFFF, 10) + bytes([3]) + pit_wait(0xFFFF, 10) + bytes([3])
    ops += pit_out(3, 0x00) + bytes([1, 0, 1, 0]) + pit_out(3, 0xC2) + bytes([1, 0, 1, 0, 1, 0])
    # Channel 2 as SeaBIOS and Linux calibrate: gate on, mode 0, 0x800, OUT 2 polled.
    ops += pit_out(4, 0x01) + pit_out(3, 0xB0) + pit_out(2, 0x00) + pit_out(2, 0x08)
    ops += bytes([1, 4]) + pit_wait(0x4000, 4) + bytes([1, 4]) + pit_out(4, 0x00) + bytes([1, 2])
    write(t, "bios", head + bytes([0]) + ops)
    # Channel 0 through every mode (6 and 7 too), LSB / MSB / word, BCD; short periods.
    ops = b""
    for mode in range(8):
        ops += pit_out(3, 0x30 | mode << 1) + pit_out(0, 0x40) + pit_out(0, 0x01)
        ops += pit_wait(0x2000, 4) + bytes([3, 1, 0, 1, 0]) + pit_out(3, 0xE2) + bytes([1, 0, 3])
    ops += pit_out(3, 0x14) + pit_out(0, 0x02) + bytes([3]) + pit_wait(0x100, 2) + bytes([3, 3])
    ops += pit_out(3, 0x26) + pit_out(0, 0x10) + pit_wait(0x100, 8) + bytes([3, 1, 0])
    ops += pit_out(3, 0x35) + pit_out(0, 0x99) + pit_out(0, 0x99) + pit_wait(0x10, 8) + bytes([3, 1, 0, 1, 0])
    ops += pit_out(3, 0x76) + pit_out(1, 0x00) + pit_out(1, 0x00) + bytes([1, 1, 1, 1])
    write(t, "modes", head + bytes([0]) + ops)
    # A snapshot section: channel 0 mode 3 count 1000, channel 2 gated on and latched.
    def chan(start, count, ctrl, latch, flags):
        return u64(start) + u64(start) + u32(count) + u16(latch) + bytes([ctrl, 0, 0]) + bytes(flags)
    sec = chan(1000, 1000, 0x36, 0, [1, 1, 0, 0, 0, 0, 0]) + chan(1000, 65536, 0x36, 0, [1, 1, 0, 0, 0, 0, 0])
    sec += chan(1000, 777, 0x30, 775, [1, 1, 1, 0, 0, 0, 0]) + u64(1000 + 2514 * 1000) + bytes([1]) + bytes(7)
    write(t, "snapshot", head + bytes([1]) + sec + bytes([3, 1, 2, 1, 2]) + pit_wait(0xFFFF, 6) + bytes([3]))


def pci():
    t = "pci"
    clean(t)
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit", "pci")
    for name in ("q35", "virt"):
        write(t, name, pci_fixture_seed(os.path.join(here, name + ".txt")))
    write(t, "q35_no_port", pci_fixture_seed(os.path.join(here, "q35.txt"), drop=((0, 3),)))


TARGETS = {"acpi_fw": acpi_fw, "pci": pci, "virtio_mmio": virtio_mmio, "apic": apic, "uart": uart, "vgic": vgic, "loader": loader,
           "multiboot": multiboot, "pic": pic, "pit": pit,
           "gwalk": gwalk}

if __name__ == "__main__":
    for name in sys.argv[1:] or TARGETS:
        TARGETS[name]()
