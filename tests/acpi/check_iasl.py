#!/usr/bin/env python3
"""Check Keel's generated ACPI tables with ACPICA's iasl (tests/acpi/CMakeLists.txt).

1. acpi_dump writes rsdp/xsdt/facp/apic/dsdt .dat files and window.bin (the used part of the
   guest-physical window at 0xe0000) for 2 vCPUs, virtio-mmio at 0xd0000000/GSI 5 and
   0xd0001000/GSI 6, COM1.
2. The RSDP is checked here (iasl versions before 2021 cannot load an RSDP file) and every
   pointer is followed through window.bin: RSDP -> XSDT -> FADT, MADT; FADT -> DSDT.
3. `iasl -d` disassembles each table: it must succeed without an error, warning or checksum
   complaint, and the disassembly must show the expected devices, registers and entries.
4. Each disassembly is compiled back (the DSDT with optimisations off) and must give the same
   bytes as Keel's table, apart from the checksum and the compiler ID/revision that iasl
   writes: iasl read every field the way Keel meant it.
Exit status 77 (ctest: skipped) if iasl is not installed.
"""
import argparse
import os
import re
import shutil
import struct
import subprocess
import sys

WINDOW_BASE = 0xE0000
VIRTIO = [(0xD0000000, 0x1000, 5), (0xD0001000, 0x1000, 6)]
NUM_CPUS = 2
IOAPIC_ID = 2

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def expect(cond, msg):
    if not cond:
        fail(msg)
    return cond


def run(cmd, cwd):
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    return p.returncode, p.stdout


def complaints(text):
    """Lines of iasl output that report a problem."""
    bad = []
    for line in text.splitlines():
        if re.search(r"\b0 Errors, 0 Warnings", line):
            continue
        if re.search(r"(?i)error|warning|incorrect|invalid|unknown|\*\*\*\*", line):
            bad.append(line.strip())
    return bad


def checksum(data):
    return sum(data) & 0xFF


def check_rsdp_and_pointers(work):
    win = open(os.path.join(work, "window.bin"), "rb").read()
    tables = {}
    for name in ("rsdp", "xsdt", "facp", "apic", "dsdt"):
        tables[name] = open(os.path.join(work, name + ".dat"), "rb").read()

    rsdp = tables["rsdp"]
    expect(len(rsdp) == 36, "RSDP is 36 bytes")
    expect(rsdp[:8] == b"RSD PTR ", "RSDP signature")
    expect(checksum(rsdp[:20]) == 0, "RSDP checksum (first 20 bytes)")
    expect(checksum(rsdp) == 0, "RSDP extended checksum")
    expect(rsdp[9:15] == b"KEEL  ", "RSDP OEM ID")
    expect(rsdp[15] == 2, "RSDP revision 2")
    length, xsdt = struct.unpack_from("<IQ", rsdp, 20)
    expect(length == 36, "RSDP length field")
    expect(win[:36] == rsdp, "RSDP at the window base")

    def table_at(gpa, name):
        off = gpa - WINDOW_BASE
        data = tables[name]
        ok = expect(0 <= off and off + len(data) <= len(win) and win[off:off + len(data)] == data,
                    "%s at 0x%x in the window" % (name, gpa))
        return ok

    table_at(xsdt, "xsdt")
    x = tables["xsdt"]
    entries = [struct.unpack_from("<Q", x, 36 + 8 * i)[0] for i in range((len(x) - 36) // 8)]
    expect(len(entries) == 2, "XSDT has 2 entries")
    sigs = {}
    for e in entries:
        off = e - WINDOW_BASE
        sigs[win[off:off + 4]] = e
    expect(b"FACP" in sigs and table_at(sigs[b"FACP"], "facp"), "XSDT points to the FADT")
    expect(b"APIC" in sigs and table_at(sigs[b"APIC"], "apic"), "XSDT points to the MADT")
    f = tables["facp"]
    dsdt32, = struct.unpack_from("<I", f, 40)
    x_dsdt, = struct.unpack_from("<Q", f, 140)
    expect(table_at(x_dsdt, "dsdt"), "FADT X_DSDT points to the DSDT")
    expect(dsdt32 == x_dsdt, "FADT DSDT == X_DSDT")
    for name in ("xsdt", "facp", "apic", "dsdt"):
        t = tables[name]
        expect(struct.unpack_from("<I", t, 4)[0] == len(t), "%s length field" % name)
        expect(checksum(t) == 0, "%s checksum" % name)
    return xsdt, sigs, x_dsdt


def disassemble(work, name):
    rc, out = run(["iasl", "-d", name + ".dat"], work)
    expect(rc == 0, "iasl -d %s.dat exit status %d" % (name, rc))
    for line in complaints(out):
        fail("iasl -d %s.dat: %s" % (name, line))
    path = os.path.join(work, name + ".dsl")
    if not expect(os.path.exists(path), "%s.dsl written" % name):
        return ""
    text = open(path).read()
    for line in complaints(text):
        fail("%s.dsl: %s" % (name, line))
    return text


def field(text, label, value, what):
    """A data-table disassembly line `label : value` (value as a regex)."""
    expect(re.search(r"(?:^|\])\s*" + re.escape(label) + r"\s*:\s*" + value + r"(?=\s|$)", text,
                     re.M),
           "%s: %s : %s" % (what, label, value))


def check_dsdt(text):
    devices = re.findall(r"Device \((V\d{3})\)", text)
    expect(devices == ["V000", "V001"], "DSDT devices V000, V001 (found %s)" % devices)
    for i, (base, size, gsi) in enumerate(VIRTIO):
        m = re.search(r"Device \(V%03d\)\s*\{(.*?)\n        \}" % i, text, re.S)
        if not expect(m, "DSDT Device (V%03d)" % i):
            continue
        body = m.group(1)
        expect('Name (_HID, "LNRO0005")' in body, "V%03d _HID LNRO0005" % i)
        uid = {0: "Zero", 1: "One"}.get(i, "0x%02X" % i)
        expect("Name (_UID, %s)" % uid in body, "V%03d _UID %d" % (i, i))
        expect(re.search(r"Memory32Fixed \(ReadWrite,\s*0x%08X,\s*// Address Base\s*0x%08X,"
                         % (base, size), body), "V%03d Memory32Fixed 0x%X 0x%X" % (i, base, size))
        expect(re.search(r"Interrupt \(ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, \)"
                         r"\s*\{\s*0x%08X,\s*\}" % gsi, body), "V%03d Interrupt {%d}" % (i, gsi))
    m = re.search(r"Device \(COM1\)\s*\{(.*?)\n        \}", text, re.S)
    if expect(m, "DSDT Device (COM1)"):
        body = m.group(1)
        expect('EisaId ("PNP0501")' in body, "COM1 _HID PNP0501")
        expect(re.search(r"Method \(_STA, 0, NotSerialized\)[^{]*\{\s*Return \(0x0F\)", body),
               "COM1 _STA returns 0x0F")
        expect(re.search(r"IO \(Decode16,\s*0x03F8,[^\n]*\n\s*0x03F8,[^\n]*\n\s*0x01,[^\n]*\n"
                         r"\s*0x08,", body), "COM1 IO 0x3F8 length 8")
        expect(re.search(r"IRQNoFlags \(\)\s*\{4\}", body), "COM1 IRQNoFlags {4}")
    expect(re.search(r"Name \(\\_S5, Package \(0x04\)[^{]*\{\s*0x05,\s*0x05,\s*Zero,\s*Zero\s*\}",
                     text), "DSDT Name (\\_S5, Package () {5, 5, 0, 0})")


def check_facp(text, x_dsdt):
    field(text, "Signature", '"FACP"', "FADT")
    field(text, "Revision", "06", "FADT")
    field(text, "Oem ID", '"KEEL  "', "FADT")
    field(text, "Hardware Reduced (V5)", "1", "FADT")
    field(text, "Reset Register Supported (V2)", "1", "FADT")
    field(text, "PM Timer Block Address", "00000000", "FADT")
    field(text, "Value to cause reset", "01", "FADT")
    field(text, "DSDT Address", "%016X" % x_dsdt, "FADT")
    field(text, "Hypervisor ID", "000000004C45454B", "FADT")  # "KEEL"
    for label, port in (("Reset Register", 0x602), ("Sleep Control Register", 0x600),
                        ("Sleep Status Register", 0x601)):
        m = re.search(re.escape(label) + r" : \[Generic Address Structure\]\n((?:.*\n){5})", text)
        if not expect(m, "FADT %s" % label):
            continue
        gas = m.group(1)
        field(gas, "Space ID", r"01 \[SystemIO\]", "FADT " + label)
        field(gas, "Bit Width", "08", "FADT " + label)
        field(gas, "Bit Offset", "00", "FADT " + label)
        field(gas, "Address", "%016X" % port, "FADT " + label)


def check_apic(text):
    field(text, "Signature", '"APIC"', "MADT")
    field(text, "Local Apic Address", "FEE00000", "MADT")
    field(text, "PC-AT Compatibility", "0", "MADT")
    lapics = re.findall(r"Subtable Type : 00 \[Processor Local APIC\]\n.*\n.*Processor ID : "
                        r"([0-9A-F]{2})\n.*Local Apic ID : ([0-9A-F]{2})\n.*\n\s*Processor "
                        r"Enabled : 1", text)
    expect(lapics == [("%02X" % i, "%02X" % i) for i in range(NUM_CPUS)],
           "MADT local APICs 0..%d enabled (found %s)" % (NUM_CPUS - 1, lapics))
    ioapics = re.findall(r"Subtable Type : 01 \[I/O APIC\]\n.*\n.*I/O Apic ID : ([0-9A-F]{2})\n"
                         r".*\n.*Address : ([0-9A-F]{8})\n.*Interrupt : ([0-9A-F]{8})", text)
    expect(ioapics == [("%02X" % IOAPIC_ID, "FEC00000", "00000000")],
           "MADT one I/O APIC at FEC00000, GSI base 0 (found %s)" % ioapics)
    isos = re.findall(r"Subtable Type : 02 \[Interrupt Source Override\]\n.*\n.*Bus : (..)\n"
                      r".*Source : (..)\n.*Interrupt : ([0-9A-F]{8})\n.*Flags .* : ([0-9A-F]{4})",
                      text)
    expect(isos == [("00", "04", "00000004", "000D")],
           "MADT overrides COM1's IRQ 4 to GSI 4, active high, level (found %s)" % isos)
    types = re.findall(r"Subtable Type : ([0-9A-F]{2})", text)
    expect(sorted(types) == ["00"] * NUM_CPUS + ["01", "02"],
           "MADT has no other entries (%s)" % types)


def check_xsdt(text, sigs):
    addrs = re.findall(r"ACPI Table Address\s+\d+ : ([0-9A-F]{16})", text)
    expect(addrs == ["%016X" % sigs.get(b"FACP", 0), "%016X" % sigs.get(b"APIC", 0)],
           "XSDT entries FADT, MADT (found %s)" % addrs)


def recompile(work, name):
    """Compile the disassembly back and compare with Keel's bytes."""
    rt = os.path.join(work, "recompile")
    os.makedirs(rt, exist_ok=True)
    shutil.copy(os.path.join(work, name + ".dsl"), rt)
    cmd = ["iasl"] + (["-oa"] if name == "dsdt" else []) + [name + ".dsl"]
    rc, out = run(cmd, rt)
    expect(rc == 0, "iasl %s.dsl exit status %d" % (name, rc))
    for line in complaints(out):
        fail("iasl %s.dsl: %s" % (name, line))
    aml = os.path.join(rt, name + ".aml")
    if not expect(os.path.exists(aml), "%s.aml compiled" % name):
        return
    ours = open(os.path.join(work, name + ".dat"), "rb").read()
    theirs = open(aml, "rb").read()
    if not expect(len(ours) == len(theirs), "%s recompiled to %d bytes, Keel's has %d"
                  % (name, len(theirs), len(ours))):
        return
    skip = {9} | set(range(28, 36))  # checksum, compiler ID and revision
    diff = [i for i in range(len(ours)) if i not in skip and ours[i] != theirs[i]]
    expect(not diff, "%s recompiled differs at offsets %s" % (name, diff[:16]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", required=True, help="the acpi_dump program")
    ap.add_argument("--work", required=True, help="scratch directory (recreated)")
    args = ap.parse_args()

    if not shutil.which("iasl"):
        print("SKIP: iasl not found (apt-get install acpica-tools)")
        return 77

    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    rc, out = run([args.dump, args.work], args.work)
    print(out.strip())
    if rc != 0:
        print("FAIL: acpi_dump exit status %d" % rc)
        return 1

    xsdt, sigs, x_dsdt = check_rsdp_and_pointers(args.work)

    # iasl 2021+ disassembles an RSDP; older ones refuse to load it (checked above instead).
    rc, out = run(["iasl", "-d", "rsdp.dat"], args.work)
    rsdp_dsl = os.path.join(args.work, "rsdp.dsl")
    if os.path.exists(rsdp_dsl):
        text = open(rsdp_dsl).read()
        for line in complaints(out) + complaints(text):
            fail("iasl -d rsdp.dat: " + line)
        field(text, "XSDT Address", "%016X" % xsdt, "RSDP")
    else:
        print("note: this iasl cannot disassemble an RSDP; checked by this script only")

    texts = {name: disassemble(args.work, name) for name in ("xsdt", "facp", "apic", "dsdt")}
    check_xsdt(texts["xsdt"], sigs)
    check_facp(texts["facp"], x_dsdt)
    check_apic(texts["apic"])
    check_dsdt(texts["dsdt"])
    for name in ("xsdt", "facp", "apic", "dsdt"):
        recompile(args.work, name)

    if failures:
        print("%d check(s) failed; disassembly in %s" % (len(failures), args.work))
        return 1
    print("iasl: RSDP, XSDT, FADT, MADT and DSDT disassemble cleanly and recompile identically")
    return 0


if __name__ == "__main__":
    sys.exit(main())
