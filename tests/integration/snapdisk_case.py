#!/usr/bin/env python3
"""Integration tests snapdisk and arm64_snapdisk: a snapshot on a partition survives a restart
of Keel, and a damaged newer snapshot leaves the older one (docs/snapshot.md). Three boots of
keel.efi on one NVMe disk image that this script makes (sgdisk: partitions keel-snap and
keel-snap2, 34 MiB each: two slots of 17 MiB, each room for one snapshot of the 16 MiB VM):

1. snapdisk1.cfg: snapcount is paused after round 5 and snapshotted to nvme0n1:part=keel-snap
   (A: slot 0, generation 1), resumed, paused after round 15 (or the first round after A, if
   typing the monitor's commands took longer) and snapshotted again (B: slot 1, generation 2;
   the monitor says each is on the partition, flushed), resumed for a round (so
   the round the snapshot may have cut is printed whole, with its checksum) and stopped; VM
   clash, which names the same partition, is refused when built (load-failed, naming both
   config lines).
2. snapdisk2.cfg, after QEMU ended: snapcount (a fresh VM) is paused in its first rounds,
   restored from the partition (B, the newest) and resumed; it must go on from the round after
   the last one boot 1 printed before B, with boot 1's checksums (driver.snapshot_check over both logs) to its end (exit 0). snapcount
   fails itself if its counter (TSC, CNTVCT) is ever below the last round's: boot 1 ran 15
   rounds and more (the monitor's answers take a while) before B, boot 2 about one before the
   restore, so a counter restored as an offset
   from the new Keel's counter would go back.
3. snapdisk3.cfg, after this script changed one byte of B's RAM section on the disk and
   copied the partition as boot 1 left it to keel-snap2, which VM other names by its
   partuuid: restoring snapcount falls back to A (slot 0, the older; B is logged as
   corrupted) and it goes on from the round after the last one boot 1 printed before A, with
   boot 1's checksums; restoring other is refused
   as another VM's snapshot; both VMs run on and are stopped.

    snapdisk_case.py --arch x86_64|arm64 --build-dir BUILD [--log-dir DIR] [--timeout S]

Logs: DIR/snapdisk-1.log, -2.log, -3.log (arm64: arm64_snapdisk-N.log) and the disk image
DIR/snapdisk-nvme.img.
"""

import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import driver  # noqa: E402  (the integration driver's helpers and checks)
from driver import PASS, REFUSED, guest_line, summary_line, tagged, vm_exited, vm_stopped  # noqa

PART_BYTES = 34 << 20
DISK_BYTES = 72 << 20
SLOT1_AT = PART_BYTES // 2  # the second slot: the partition's second half
CORRUPT_AT = 1 << 20  # a byte of the RAM section, well inside a snapshot

MON = r"^keel: monitor: "
TAKEN = MON + (r"vm snapcount: snapshot on nvme0n1:part=keel-snap \(slot %d, generation %d\), "
               r"\d+ KiB \(RAM 16384 KiB\), flushed; restore snapcount brings it back, also "
               r"after Keel restarts$")
TAKEN_A, TAKEN_B = TAKEN % (0, 1), TAKEN % (1, 2)
RESTORED = MON + (r"vm snapcount: restored from its snapshot on nvme0n1:part=keel-snap \(slot "
                  r"1, generation 2\); it is paused \(resume snapcount\)$")
FELL_BACK = MON + (r"vm snapcount: restored from its snapshot on nvme0n1:part=keel-snap \(slot "
                   r"0, generation 1, the older: the newer one is refused\); it is paused "
                   r"\(resume snapcount\)$")
B_BAD = (r"keel: vm snapcount: snapshot in nvme0n1:part=keel-snap slot 1 \(generation 2\) "
         r"refused: checksum [0-9a-f]{16}, computed [0-9a-f]{16}: the snapshot is corrupted$")
REFUSE = MON + r"cannot restore vm %s: snapshot refused: %s: "
NOT_LISTED = [r"UNEXPECTED", r"^keel: error: ", r"usage: ", r"cannot snapshot"]


def make_disk(path):
    """The NVMe image: a GPT with keel-snap and keel-snap2; returns {name: (first LBA, GUID)}."""
    with open(path, "wb") as f:
        f.truncate(DISK_BYTES)
    cmd = ["sgdisk", "-o"]
    for n, name in ((1, "keel-snap"), (2, "keel-snap2")):
        cmd += ["-n", "%d:0:+%dK" % (n, PART_BYTES >> 10), "-t", "%d:8300" % n,
                "-c", "%d:%s" % (n, name)]
    subprocess.run(cmd + [path], check=True, stdout=subprocess.DEVNULL)
    parts = {}
    for n, name in ((1, "keel-snap"), (2, "keel-snap2")):
        out = subprocess.run(["sgdisk", "-i", str(n), path], check=True, stdout=subprocess.PIPE,
                             text=True).stdout
        parts[name] = (int(re.search(r"First sector: (\d+)", out).group(1)),
                       re.search(r"Partition unique GUID: (\S+)", out).group(1))
    return parts


def boot(args, n, config, sends, timeout):
    """One boot; returns (log text, problems with QEMU's verdict)."""
    log_path = os.path.join(args.log_dir, "%ssnapdisk-%d.log" % (args.prefix, n))
    cmd = [sys.executable, driver.RUN_QEMU, "--arch", args.arch,
           "--efi", os.path.join(args.build_dir, "keel.efi"), "--config", config,
           "--log", log_path, "--timeout", str(timeout), "--pci-storage",
           "--nvme-image", args.disk, "--fail-on", tagged(REFUSED)]
    for f in driver.guest_files(args.build_dir):
        cmd += ["--file", f]
    for pat, text in sends:
        cmd += ["--send", "%s=>%s" % (tagged(pat), text)]
    print("snapdisk: boot %d: %s" % (n, " ".join(cmd)), flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          preexec_fn=driver.die_with_parent)
    print(proc.stdout, end="", flush=True)
    with open(log_path, "rb") as f:
        log = f.read().decode("utf-8", "replace").replace("\r", "")
    problems = []
    if proc.returncode != PASS:
        problems.append("boot %d: run-qemu exited %d, expected 0 (pass)" % (n, proc.returncode))
    return log, log_path, problems


def report(n, problems, log, log_path):
    if not problems:
        print("snapdisk: boot %d passed (serial log at %s)" % (n, log_path))
        return True
    print("snapdisk: boot %d FAILED:" % n)
    for p in problems:
        print("  - " + p)
    for line in log.splitlines()[-50:]:
        print("  | " + line)
    print("snapdisk: serial log kept at %s" % log_path)
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", choices=["x86_64", "arm64"], required=True)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--log-dir")
    ap.add_argument("--timeout", type=int, default=400, help="per boot (default 400 s)")
    args = ap.parse_args()
    args.build_dir = os.path.abspath(args.build_dir)
    args.log_dir = args.log_dir or os.path.join(args.build_dir, "tests", "integration", "logs")
    args.prefix = "arm64_" if args.arch == "arm64" else ""
    os.makedirs(args.log_dir, exist_ok=True)
    args.disk = os.path.join(args.log_dir, "%ssnapdisk-nvme.img" % args.prefix)
    parts = make_disk(args.disk)
    cfg = os.path.join(HERE, "configs", "snapdisk%d.cfg")

    # Boot 1: two snapshots to the partition (A after round 5, B after round 15), then stop.
    sends1 = [(guest_line("snapcount", r"snapcount: round 5 sum"), "\x1dm"),
              (r"^keel: console: monitor \(type help\)$", "pause snapcount"),
              (MON + r"vm snapcount is paused$", "snapshot snapcount"),
              (TAKEN_A, "resume snapcount"),
              # round 15 or any later one: typing the commands for A may take past round 15
              (guest_line("snapcount", r"snapcount: round (1[5-9]|[2-9]\d|100) sum"),
               "pause snapcount"),
              (MON + r"vm snapcount is paused$", "snapshot snapcount"),
              # it runs on for a round, so that a line the snapshot cut is printed whole once
              (TAKEN_B, "resume snapcount"),
              (guest_line("snapcount", r"snapcount: round \d+ sum"), "pause snapcount"),
              (MON + r"vm snapcount is paused$", "stop snapcount")]
    log1, path1, problems = boot(args, 1, cfg % 1, sends1, args.timeout)
    problems += driver.check_log(dict(
        order=[r"^keel: vm snapcount: snapshots on nvme0n1 blocks %d-%d$" % (
                   parts["keel-snap"][0], parts["keel-snap"][0] + (PART_BYTES >> 9) - 1),
               TAKEN_A, TAKEN_B, vm_stopped("snapcount", "monitor"), r"^keel: summary$",
               summary_line("snapcount"), summary_line("clash"), r"^keel: result: PASS\b"],
        must=[vm_stopped("clash", "load-failed", re.escape(
            "config line 17: snapshot = nvme0n1:part=keel-snap: blocks %d-%d of nvme0n1 are "
            "also [vm snapcount]'s snapshot (config line 11): a snapshot partition must be its "
            "VM's alone" % (parts["keel-snap"][0],
                            parts["keel-snap"][0] + (PART_BYTES >> 9) - 1)))],
        counts={TAKEN_A: 1, TAKEN_B: 1}, must_not=NOT_LISTED), log1)
    with open(args.disk, "rb") as f:
        f.seek(parts["keel-snap"][0] * 512)
        good = f.read(PART_BYTES)
    for at, name in ((0, "slot 0"), (SLOT1_AT, "slot 1")):
        if good[at:at + 8] != b"KEELSNAP":
            problems.append("boot 1: no KEELSNAP at the start of partition keel-snap's %s" % name)
    if not report(1, problems, log1, path1):
        return 1
    # Boot 1's log up to snapshot B: for the fallback to A in boot 3.
    log1a = log1[:re.search(TAKEN_B, log1, re.M).start()]

    # Boot 2: a fresh Keel restores it from the partition; the guest goes on to its end.
    sends2 = [(guest_line("snapcount", r"snapcount: round 1 sum"), "\x1dm"),
              (r"^keel: console: monitor \(type help\)$", "pause snapcount"),
              (MON + r"vm snapcount is paused$", "restore snapcount"),
              (RESTORED, "resume snapcount")]
    log2, path2, problems = boot(args, 2, cfg % 2, sends2, args.timeout)
    problems += driver.check_log(dict(
        order=[RESTORED, MON + r"vm snapcount is running$",
               guest_line("snapcount", r"snapcount: round 100 sum [0-9a-f]+$"),
               guest_line("snapcount", r"snapcount: done, 100 rounds, sum [0-9a-f]+$"),
               vm_exited("snapcount", 0), r"^keel: summary$", summary_line("snapcount"),
               r"^keel: result: PASS\b"],
        counts={RESTORED: 1}, must_not=NOT_LISTED + [r"snapshot refused"]), log2)
    # Boot 1's rounds up to the snapshot, then boot 2's: the rounds after the restore are
    # the ones after the snapshot, with boot 1's checksums.
    problems += driver.snapshot_check(log1 + "\n" + log2)
    if not report(2, problems, log2, path2):
        return 1

    # Boot 3: the newer snapshot (B) corrupted, and another VM's.
    with open(args.disk, "r+b") as f:
        at = parts["keel-snap"][0] * 512 + SLOT1_AT + CORRUPT_AT
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 0x40]))
        f.seek(parts["keel-snap2"][0] * 512)
        f.write(good)
    cfg3 = os.path.join(args.log_dir, "%ssnapdisk3.cfg" % args.prefix)
    with open(cfg % 3) as src, open(cfg3, "w") as dst:
        dst.write(src.read().replace("PARTUUID_OF_KEEL_SNAP2", parts["keel-snap2"][1]))
    other = "nvme0n1:partuuid=%s" % parts["keel-snap2"][1]
    bad_vm = REFUSE % ("other", re.escape(other)) + r"it is a snapshot of vm snapcount, not of " \
                                                     r"vm other$"
    any_round = r"snapcount: round \d+ sum"
    sends3 = [(guest_line("snapcount", r"snapcount: round 1 sum"), "\x1dm"),
              (r"^keel: console: monitor \(type help\)$", "pause snapcount"),
              (MON + r"vm snapcount is paused$", "restore snapcount"),
              (FELL_BACK, "resume snapcount"),
              (guest_line("snapcount", any_round), "stop snapcount"),
              (vm_stopped("snapcount", "monitor"), "pause other"),
              (MON + r"vm other is paused$", "restore other"),
              (bad_vm, "resume other"),
              (guest_line("other", any_round), "stop other")]
    log3, path3, problems = boot(args, 3, cfg3, sends3, args.timeout)
    problems += driver.check_log(dict(
        order=[B_BAD, FELL_BACK, MON + r"vm snapcount is running$",
               guest_line("snapcount", any_round),
               vm_stopped("snapcount", "monitor"), bad_vm, MON + r"vm other is running$",
               guest_line("other", any_round), vm_stopped("other", "monitor"),
               r"^keel: result: PASS\b"],
        counts={FELL_BACK: 1, bad_vm: 1},
        must_not=NOT_LISTED + [r"cannot restore vm snapcount", r"FAIL"]), log3)
    # snapcount goes on from A with boot 1's checksums; other's rounds (its restore
    # refused) have boot 1's checksums too.
    mine = "\n".join(line for line in log3.splitlines() if "[other] " not in line)
    theirs = "\n".join(line.replace("[other] ", "[snapcount] ") for line in log3.splitlines()
                       if "[other] " in line)
    problems += driver.snapshot_check(log1a + "\n" + mine)
    problems += driver.snapshot_check(log1 + "\n" + theirs)
    if not report(3, problems, log3, path3):
        return 1
    print("snapdisk: all three boots passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
