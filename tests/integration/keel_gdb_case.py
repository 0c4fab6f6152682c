#!/usr/bin/env python3
"""keel_gdb integration test: real gdb-multiarch debugs Keel itself under QEMU's gdbstub.

docs/debugging.md, "Debugging Keel itself under QEMU's gdbstub", says how: QEMU's own stub
(`-gdb tcp:...`), keel.so's symbols added at the address of the boot log's `keel: image at`
line. This test does exactly that while the snapcount guest runs: gdb stops the machine, adds
the symbols with that offset, breaks at log_write_part (where a guest's console line goes
out), sees the hit there with the VM's prefix as its argument and vcons below it in Keel's
backtrace, deletes the breakpoint and detaches. Keel must then run on: the guest
ends with exit 0 as its config expects and Keel's summary says PASS. Wrong symbols (a wrong
offset) never hit the breakpoint, or hit it elsewhere; a Keel that does not go on after the
detach fails the summary.
"""
import argparse
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
from gdb_case import case_files, free_port, in_order, report, wait_for, HERE, RUN_QEMU  # noqa: E402

GDB_ORDER = [
    r"add symbol table from file \".*keel\.so\" with all sections offset by 0x[0-9a-f]+",
    r"Breakpoint 1 at 0x[0-9a-f]+: file .*kernel/log\.c",
    r"Breakpoint 1, (0x[0-9a-f]+ in )?log_write_part \(",
    r"\$1 = 12\b",                     # plen: "[snapcount] "
    r"\$2 = \"\[snapcount\] \"",          # *prefix@plen
    r"#0 +(0x[0-9a-f]+ in )?log_write_part \(",
    r"#1 +(0x[0-9a-f]+ in )?vcons_",     # a guest's line, through its console
    r"\[Inferior 1 \(.*\) detached\]",
]

LOG_MUST = [
    r"keel:   snapcount: exit 0 \(expected exit 0\).*: ok",
    r"keel: result: PASS",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--log-dir", help="default BUILD/tests/integration/logs")
    ap.add_argument("--gdb", default="gdb-multiarch")
    ap.add_argument("--arch", choices=("x86_64", "arm64"), default="x86_64")
    args = ap.parse_args()
    arm = args.arch == "arm64"

    build = os.path.abspath(args.build_dir)
    name = "arm64_keel_gdb" if arm else "keel_gdb"
    log, gdb_out, gdb = case_files(args, build, name, "keel_gdb")
    so = os.path.join(build, "arch", args.arch, "keel.so")
    if not gdb:
        return 1
    if not os.path.isfile(so):
        print("keel_gdb: %s not found: build keel_efi first" % so)
        return 1
    port = free_port()
    gdir = os.path.join(build, "guests")
    cmd = [sys.executable, RUN_QEMU, "--efi", os.path.join(build, "keel.efi"),
           "--config", os.path.join(HERE, "configs", "keel_gdb.cfg"), "--log", log,
           "--timeout", "400", "--qemu-arg=-gdb", "--qemu-arg=tcp:127.0.0.1:%d" % port]
    if arm:
        cmd += ["--arch", "arm64"]
    for f in sorted(os.listdir(gdir)):
        cmd += ["--file", "%s=guests/%s" % (os.path.join(gdir, f), f)]
    print("keel_gdb: " + " ".join(cmd), flush=True)
    if os.path.exists(log):
        os.unlink(log)
    qemu = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    problems = []
    gdb_text = ""
    try:
        base = wait_for(log, r"^keel: image at (0x[0-9a-f]+), \d+ KiB", 240, qemu)
        if not base or not wait_for(log, r"snapcount: round 1 ", 240, qemu):
            problems.append("Keel never printed its image address or the guest never ran")
        else:
            gcmd = [gdb, "-nx", "-batch",
                    "-ex", "set pagination off",
                    "-ex", "set confirm off",
                    "-ex", "set remotetimeout 30",
                    "-ex", "set architecture %s" % ("aarch64" if arm else "i386:x86-64"),
                    "-ex", "target remote 127.0.0.1:%d" % port,
                    "-ex", "add-symbol-file %s -o %s" % (so, base.group(1)),
                    "-ex", "break log_write_part",
                    "-ex", "continue",
                    "-ex", "print plen",
                    "-ex", "print *prefix@plen",
                    "-ex", "bt 3",
                    "-ex", "delete 1",
                    "-ex", "detach"]
            print("keel_gdb: " + " ".join(gcmd), flush=True)
            g = subprocess.run(gcmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=240)
            gdb_text = g.stdout
            with open(gdb_out, "w") as f:
                f.write(gdb_text)
            in_order(gdb_text, GDB_ORDER, problems)
        out, _ = qemu.communicate(timeout=400)
        print(out, end="")
    finally:
        if qemu.poll() is None:
            qemu.kill()
            qemu.wait()
    with open(log, "rb") as f:
        text = f.read().decode("utf-8", "replace").replace("\r", "")
    for pat in LOG_MUST:
        if not re.search(pat, text, re.MULTILINE):
            problems.append("serial log lacks: %s" % pat)
    return report("keel_gdb", problems, gdb_text, text, log, gdb_out, tail=30)


if __name__ == "__main__":
    sys.exit(main())
