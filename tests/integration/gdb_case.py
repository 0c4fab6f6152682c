#!/usr/bin/env python3
"""gdb integration test: real gdb-multiarch debugs a test guest under Keel (docs/debugging.md).

Boots keel.efi in QEMU (tools/run-qemu) with COM2 as a TCP socket on 127.0.0.1 (a free port),
waits for the guest gdbtarget to wait for gdb, then runs gdb-multiarch in batch mode over
that socket: break at gdb_add, let the guest go, see the hit and the argument (1), change the
register that carries it to 40, single-step, read a variable, delete the breakpoint; then a
hardware breakpoint at gdb_add (`hbreak`: hit with the argument 2) and a hardware watchpoint
on gdb_sum (`watch`: the guest's add changes it from 40 to 42), and continue to the guest's
exit, which gdb reports as exit code 45 (40 + 2 + 3). Keel's summary
must then show the target VM exiting 45 and the witness VM, which ran on meanwhile, 0.

--runner bochs (x86_64, Intel VT-x under Bochs, tools/run-bochs): COM2 is a Bochs socket that
connects to this script, which passes the bytes to and from gdb; the target alone (no
witness: run-bochs types nothing into the monitor), the same session with the hardware
breakpoint and watchpoint (VT-x: DR7 in the VMCS, MOV-DR exiting, the #DB exit's
qualification).

--arch arm64: QEMU virt has no second UART, so gdb comes over Keel's console: the monitor's
`gdb target` hands the console to the stub, and run-qemu --bridge serves the console's socket
to gdb (the register carrying the argument is x0).
"""
import argparse
import os
import re
import select
import shlex
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_QEMU = os.path.join(HERE, "..", "..", "tools", "run-qemu")
RUN_BOCHS = os.path.join(HERE, "..", "..", "tools", "run-bochs")

# What gdb must print, in this order (the batch commands below produce them).
GDB_ORDER = [
    r"Breakpoint 1 at 0x[0-9a-f]+: file .*gdbtarget\.c",
    r"Breakpoint 1, (0x[0-9a-f]+ in )?gdb_add \(x=(x@entry=)?1\)",
    r"\$1 = 1\b",                       # print $REG: the argument
    r"\$2 = 40\b",                      # after set $REG = 40
    r"\$3 = \(void \(\*\)\(\)\) 0x[0-9a-f]+ <gdb_add\+[1-9]\d*>",  # $pc after stepi
    r"Value returned is \$4 = 40\b",     # finish: gdb_add's return value
    r"\$5 = 40\b",                      # gdb_sum after the first add
]
# Then the hardware breakpoint and watchpoint.
GDB_HW_ORDER = [
    r"Hardware assisted breakpoint 2 at 0x[0-9a-f]+: file .*gdbtarget\.c",
    r"Breakpoint 2, (0x[0-9a-f]+ in )?gdb_add \(x=(x@entry=)?2\)",  # hbreak: Z1, hwbreak stop
    r"\$6 = 2\b",                       # print $REG at the hardware breakpoint
    r"Hardware watchpoint 3: gdb_sum",
    r"Hardware watchpoint 3: gdb_sum\s+Old value = 40\s+New value = 42\b",  # Z2, watch stop
]
GDB_END = r"\[Inferior 1 \(Remote target\) exited with code 055\]"

WITNESS_END = "keel: vm witness stopped: exit: code 0"  # a plain string: grep and re agree

LOG_MUST = [
    r"keel: monitor: vm witness is running",
    r"keel:   target: exit 45 \(expected exit 45\).*: ok",
    r"keel:   witness: exit 0 \(expected exit 0\).*: ok",
    r"keel: result: PASS",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bridge(bochs_srv, gdb_srv, stop):
    """Bochs' COM2 (it connects to bochs_srv) <-> gdb (it connects to gdb_srv). What Bochs
    sends before gdb connects (the firmware's output, if any) is dropped: a '-' in it would be
    a NAK to gdb."""
    bochs_srv.settimeout(600)
    try:
        b, _ = bochs_srv.accept()
    except OSError:
        return
    g = None
    while not stop.is_set() and g is None:
        r, _, _ = select.select([b, gdb_srv], [], [], 0.5)
        if b in r and not b.recv(4096):
            return
        if gdb_srv in r:
            g, _ = gdb_srv.accept()
    if g is None:
        return
    peer = {b: g, g: b}
    while not stop.is_set():
        r, _, _ = select.select([b, g], [], [], 0.5)
        for s in r:
            data = s.recv(4096)
            if not data:
                stop.set()
                break
            peer[s].sendall(data)
    b.close()
    g.close()


def wait_for(path, pattern, seconds, proc):
    """The first match of `pattern` (multi-line) in the log at `path` within `seconds`, or
    None (also once `proc` has ended)."""
    end = time.time() + seconds
    while time.time() < end:
        try:
            with open(path, "rb") as f:
                m = re.search(pattern, f.read().decode("utf-8", "replace"), re.MULTILINE)
                if m:
                    return m
        except FileNotFoundError:
            pass
        if proc.poll() is not None:
            return None
        time.sleep(0.2)
    return None


def case_files(args, build, name, who):
    """The case's serial log and gdb output paths (in --log-dir) and the gdb to run (None,
    said, if it is not installed)."""
    log_dir = args.log_dir or os.path.join(build, "tests", "integration", "logs")
    os.makedirs(log_dir, exist_ok=True)
    gdb = subprocess.run(["which", args.gdb], stdout=subprocess.PIPE, text=True).stdout.strip()
    if not gdb:
        print("%s: %s not found: apt-get install gdb-multiarch (tools/setup)" % (who, args.gdb))
    return (os.path.join(log_dir, name + ".log"), os.path.join(log_dir, name + ".gdb-output"),
            gdb or None)


def in_order(text, patterns, problems):
    """Each pattern found after the previous one's match, else a line in `problems`."""
    pos = 0
    for pat in patterns:
        m = re.compile(pat).search(text, pos)
        if not m:
            problems.append("gdb output lacks (in order): %s" % pat)
            continue
        pos = m.end()


def report(name, problems, gdb_text, log_text, log, gdb_out, tail=40):
    """The case's verdict: 1 with the problems, gdb's output and the log's end, or 0."""
    if problems:
        print("%s: FAILED:" % name)
        for p in problems:
            print("  - " + p)
        print("%s: gdb's output:" % name)
        for line in gdb_text.splitlines():
            print("  > " + line)
        print("%s: last lines of the serial log:" % name)
        for line in log_text.splitlines()[-tail:]:
            print("  | " + line)
        return 1
    print("%s: passed (serial log %s, gdb output %s)" % (name, log, gdb_out))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--log-dir", help="default BUILD/tests/integration/logs")
    ap.add_argument("--gdb", default="gdb-multiarch")
    ap.add_argument("--arch", choices=("x86_64", "arm64"), default="x86_64")
    ap.add_argument("--runner", choices=("qemu", "bochs"), default="qemu")
    args = ap.parse_args()
    arm = args.arch == "arm64"
    bochs = args.runner == "bochs"
    order = GDB_ORDER + GDB_HW_ORDER + [GDB_END]
    reg = "$x0" if arm else "$rdi"

    build = os.path.abspath(args.build_dir)
    name = "arm64_gdb" if arm else "vmx_gdb" if bochs else "gdb"
    log, gdb_out, gdb = case_files(args, build, name, "gdb")
    elf = os.path.join(build, "tests", "guests", "guest_gdbtarget")  # with its symbols
    if not gdb:
        return 1
    if not os.path.isfile(elf):
        print("gdb: %s not found: build the guests target first (make)" % elf)
        return 1
    port = free_port()
    gdir = os.path.join(build, "guests")
    cmd = [sys.executable, RUN_QEMU, "--efi", os.path.join(build, "keel.efi"),
           "--config", os.path.join(HERE, "configs", name + ".cfg"), "--log", log,
           "--timeout", "300"]
    stop = threading.Event()
    if bochs:
        bochs_srv = socket.socket()
        bochs_srv.bind(("127.0.0.1", 0))
        bochs_srv.listen(1)
        gdb_srv = socket.socket()
        gdb_srv.bind(("127.0.0.1", port))
        gdb_srv.listen(1)
        threading.Thread(target=bridge, args=(bochs_srv, gdb_srv, stop), daemon=True).start()
        cmd = [sys.executable, RUN_BOCHS, "--efi", os.path.join(build, "keel.efi"),
               "--config", os.path.join(HERE, "configs", "gdb_bochs.cfg"), "--log", log,
               "--timeout", "1500", "--no-netns", "--bochsrc-line",
               "com2: enabled=1, mode=socket-client, dev=127.0.0.1:%d"
               % bochs_srv.getsockname()[1]]
        ready = r"\[target\] gdbtarget: waiting for gdb"
        LOG_MUST[:] = [r"keel: gdb: attached to vm target \(debug port\)",
                       r"keel:   target: exit 45 \(expected exit 45\).*: ok",
                       r"keel: result: PASS"]
    elif arm:
        # Once the witness has ended, the monitor starts it again and hands the console to
        # gdb for the target: the witness runs (and ends) while gdb keeps the target stopped.
        cmd += ["--arch", "arm64", "--bridge", "127.0.0.1:%d" % port,
                "--send", "^" + WITNESS_END + "=>\x1dm",
                "--send", r"^keel: console: monitor \(type help\)$=>start witness",
                "--send", r"^keel: monitor: vm witness is running=>gdb target"]
        ready = r"keel: monitor: vm target stopped for gdb on this console"
        LOG_MUST.insert(0, r"keel: gdb: attached to vm target \(console\)")
    else:
        # Once the witness has ended and gdb holds the target, the monitor starts the witness
        # again: it runs (and ends) while gdb keeps the target stopped at the breakpoint.
        cmd += ["--serial2", "127.0.0.1:%d" % port,
                "--send", "^" + WITNESS_END + "=>\x1dm",
                "--send", r"^keel: gdb: attached to vm target=>start witness"]
        ready = r"\[target\] gdbtarget: waiting for gdb"
        LOG_MUST.insert(0, r"keel: gdb: attached to vm target \(debug port\)")
    for f in ["gdbtarget.elf"] if bochs else sorted(os.listdir(gdir)):
        cmd += ["--file", "%s=guests/%s" % (os.path.join(gdir, f), f)]
    print("gdb: " + " ".join(cmd), flush=True)
    if os.path.exists(log):
        os.unlink(log)
    qemu = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    problems = []
    gdb_text = ""
    try:
        # The witness has ended (its restart, below, waits for that), and the target waits.
        if bochs:
            waited = wait_for(log, ready, 1200, qemu)
        else:
            waited = (wait_for(log, WITNESS_END, 180, qemu) and
                      wait_for(log, r"\[target\] gdbtarget: waiting for gdb", 60, qemu) and
                      wait_for(log, ready, 60, qemu))
        if not waited:
            problems.append("the guest never waited for gdb")
        else:
            # While the target is held at its first breakpoint, gdb waits (a shell command)
            # until the witness's second life has ended: how long that takes depends on the
            # machine's load, so it is waited for, not slept for (bound: 200 s). Bochs has no
            # witness; the target is held 8 s there.
            hold = "sleep 8" if bochs else (
                "timeout 200 sh -c 'until [ \"$(grep -c \"^%s\" %s)\" -ge 2 ]; do sleep 0.2; "
                "done'" % (WITNESS_END, shlex.quote(log)))
            gcmd = [gdb, "-nx", "-batch",
                    "-ex", "set pagination off",
                    "-ex", "set confirm off",
                    "-ex", "set remotetimeout %d" % (120 if bochs else 30),
                    "-ex", "file " + elf,
                    "-ex", "target remote 127.0.0.1:%d" % port,
                    "-ex", "info threads",
                    "-ex", "break gdb_add",
                    "-ex", "set var gdb_go = 1",
                    "-ex", "continue",
                    "-ex", "print " + reg,
                    "-ex", "shell " + hold,
                    "-ex", "set %s = 40" % reg,
                    "-ex", "print " + reg,
                    "-ex", "stepi",
                    "-ex", "print $pc",
                    "-ex", "delete 1",
                    "-ex", "finish",
                    "-ex", "print gdb_sum"]
            gcmd += ["-ex", "hbreak gdb_add",
                     "-ex", "continue",
                     "-ex", "print " + reg,
                     "-ex", "delete 2",
                     "-ex", "watch gdb_sum",
                     "-ex", "continue",
                     "-ex", "delete 3",
                     "-ex", "continue"]
            print("gdb: " + " ".join(gcmd), flush=True)
            g = subprocess.run(gcmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=1200 if bochs else 240)
            gdb_text = g.stdout
            with open(gdb_out, "w") as f:
                f.write(gdb_text)
            in_order(gdb_text, order, problems)
        if problems:
            qemu.kill()  # the target stays stopped for gdb: nothing more will come
        out, _ = qemu.communicate(timeout=1200 if bochs else 240)
        print(out, end="")
    finally:
        stop.set()
        if qemu.poll() is None:
            qemu.kill()
            qemu.wait()
    with open(log, "rb") as f:
        text = f.read().decode("utf-8", "replace").replace("\r", "")
    for pat in LOG_MUST:
        if not re.search(pat, text, re.MULTILINE):
            problems.append("serial log lacks: %s" % pat)
    # The witness's second life ends before the target, held at the breakpoint, goes on.
    ends = [m.start() for m in re.finditer("^%s$" % WITNESS_END, text,
                                           re.MULTILINE)]
    target_end = text.find("[target] gdbtarget: sum")
    if not bochs and (len(ends) != 2 or target_end < 0 or ends[1] > target_end):
        problems.append("the witness did not run and end again while gdb held the target "
                        "(witness exits at %s, target's sum at %d)" % (ends, target_end))
    return report("gdb", problems, gdb_text, text, log, gdb_out)


if __name__ == "__main__":
    sys.exit(main())
