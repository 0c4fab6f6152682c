#!/usr/bin/env python3
"""Keel's durability tests (docs/storage.md#tests): Linux guests write numbered records, each
made durable (fsync) before the guest prints its acknowledgement; the machine is killed at a
random point; Keel is booted again on the same NVMe disk image and every acknowledged record
must be there, seen by a checker in the next boot's guests and by the host in the image.

    crash.py --case CASE --build-dir BUILD [--log-dir DIR] [--runs N] [--seed S] [--efi FILE]

One boot has two Linux VMs under Keel, each on its own GPT partition of an NVMe disk image
(tools/run-qemu --pci-storage --nvme-image; the _vblk cases: of run-qemu's first
virtio-blk-pci disk, Keel's vblk1): `raw` writes 4 KiB records to its block device
with O_DIRECT and fsync, `ext4` appends 64-byte records to a file of an ext4 filesystem (made
by the host with mkfs.ext4) with fsync after each (tests/linux/crash-init). Boot i writes
generation i; once both writers have their first record acknowledged, the host waits a
random 0 to --max-delay seconds and kills the machine. Then:
  - the host reads the image: raw records 1..A (A = the last acknowledged one) hold generation
    i; the ext4 partition, copied, gets its journal replayed (`e2fsck -E journal_only -y`),
    then `e2fsck -fn` must find it clean and `debugfs -R "cat /gen-i"` must begin with the
    records 1..A;
  - boot i+1's guests print the sha256 of records 1..A of generation i (the raw device read
    with O_DIRECT; the file after the kernel's own journal replay) before writing generation
    i+1. After the last run a final boot only checks, powers off, and Keel must report PASS.

Cases:
    crash          2 runs: QEMU killed with SIGKILL (what Keel acknowledged must have reached
                   QEMU's disk image)
    powercut       1 run: the NVMe disk is served by tools/nbd-cut (QEMU -blockdev
                   driver=nbd), a disk with a volatile write cache; the cut throws away every
                   write not yet flushed (or written with FUA), then QEMU is killed. Keel must
                   show the guest a volatile cache (Linux: write cache "write back") and pass
                   its flushes through. The NBD server's counts show what the cut dropped.
    crash_vblk, powercut_vblk   1 run each with the disk on a virtio-blk-pci (Keel's
                   drivers/virtio_blk_pci.c) instead of the NVMe
    crash_long, powercut_long   the same as crash, powercut with 20 runs (label crash-long)
Exit status 0 pass, 1 fail, 77 skipped (Debian packages neither cached nor downloadable).
"""

import argparse
import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
TOOLS = os.path.join(SOURCE_DIR, "tools")


def _linux_driver():
    import importlib.util

    spec = importlib.util.spec_from_file_location("keel_linux_driver",
                                                  os.path.join(HERE, "driver.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


linux = _linux_driver()

CASES = {
    "crash": dict(runs=2, nbd=False),
    "powercut": dict(runs=1, nbd=True),
    "crash_vblk": dict(runs=1, nbd=False, dev="vblk"),
    "powercut_vblk": dict(runs=1, nbd=True, dev="vblk"),
    "crash_long": dict(runs=20, nbd=False),
    "powercut_long": dict(runs=20, nbd=True),
}
# The disk under test: Keel's name for it, QEMU's drive id (tools/run-qemu --pci-storage), and
# Keel's line saying it has a volatile write cache. Keel numbers virtio-blk-pci disks in PCI
# order: run-qemu's drive vblk0 (slot 00:04.0) is Keel's vblk1, the one behind the root port
# (bus 1) its vblk0.
DEVS = {
    "nvme": dict(keel="nvme0n1", drive="nvme0",
                 vwc=r"^keel: nvme \S+: .*, volatile write cache,"),
    "vblk": dict(keel="vblk1", drive="vblk0",
                 vwc=r"^keel: virtio-blk 0000:00:04\.0: vblk1: .*, volatile write cache \(FLUSH\)"),
}
ROLES = ("raw", "ext4")
PART_BYTES = {"raw": 8 << 20, "ext4": 16 << 20}
IMAGE_BYTES = 32 << 20
RAW_BASE = 1 << 20  # crash-init's RAW_BASE
EXT4_MODULES = ["crc32c_generic", "ext4"]
# Seconds from QEMU's start to the writers running (or the final boot's end); a boot took up to
# 480 s at load 28 on two cores.
BOOT_TIMEOUT = 900


def die_with_parent():
    """In QEMU and nbd-cut: SIGKILL when this script dies (e.g. killed by a ctest timeout)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def say(msg):
    print("crash-test: " + msg, flush=True)


def raw_record(gen, n):
    line = b"keel-crash g%04d r%08d raw\n" % (gen, n)
    return (line * (4096 // len(line) + 1))[:4096]


def ext4_record(gen, n):
    return (b"keel-crash g%04d r%08d ext4" % (gen, n)).ljust(63) + b"\n"


def records(role, gen, count):
    rec = raw_record if role == "raw" else ext4_record
    return b"".join(rec(gen, n) for n in range(1, count + 1))


def vm_name(role):
    return "crash-" + role


def part_name(role):
    return "keel-crash-" + role


def make_image(path, work):
    """The NVMe image: GPT (sgdisk) with partitions keel-crash-raw and keel-crash-ext4, the
    second holding a fresh ext4 filesystem. Returns {role: first byte of its partition}."""
    if os.path.exists(path):
        os.remove(path)
    with open(path, "wb") as f:
        f.truncate(IMAGE_BYTES)
    cmd = ["sgdisk", "-o"]
    for i, role in enumerate(ROLES):
        cmd += ["-n", "%d:0:+%dK" % (i + 1, PART_BYTES[role] >> 10), "-t", "%d:8300" % (i + 1),
                "-c", "%d:%s" % (i + 1, part_name(role))]
    subprocess.run(cmd + [path], check=True, stdout=subprocess.DEVNULL)
    parts = {}
    for i, role in enumerate(ROLES):
        out = subprocess.run(["sgdisk", "-i", str(i + 1), path], check=True,
                             stdout=subprocess.PIPE, text=True).stdout
        parts[role] = int(re.search(r"First sector: (\d+)", out).group(1)) * 512
    fs = os.path.join(work, "ext4.img")
    with open(fs, "wb") as f:
        f.truncate(PART_BYTES["ext4"])
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "keel-crash", fs], check=True)
    with open(fs, "rb") as src, open(path, "r+b") as dst:
        dst.seek(parts["ext4"])
        dst.write(src.read())
    os.remove(fs)
    return parts


def build_initramfs(info, arch, work):
    out = os.path.join(work, "initramfs.img")
    cmd = [sys.executable, os.path.join(TOOLS, "mkinitramfs"), "-o", out,
           "--busybox", info["KEEL_BUSYBOX"], "--init", os.path.join(HERE, "crash-init"),
           "--modules-dir", info["KEEL_MODULES"]]
    for m in arch["modules"] + EXT4_MODULES:
        cmd += ["--module", m]
    subprocess.run(cmd, check=True)
    return out


def keel_config(path, arch, dev, gen, check, write):
    lines = ["# Written by tests/linux/crash.py: the crash test's writers / checkers.",
             "log = info", "finish = debug-exit", ""]
    for role in ROLES:
        cmdline = ("%s quiet panic=-1 rdinit=/init keelcrash.role=%s keelcrash.gen=%d "
                   "keelcrash.check=%d keelcrash.write=%d" % (
                       arch["console"], role, gen, check[role], 1 if write else 0))
        lines += ["[vm %s]" % vm_name(role), "kernel = %s" % arch["kernel_dest"],
                  "initrd = guests/initramfs.img", 'cmdline = "%s"' % cmdline,
                  "disk = %s:part=%s" % (dev["keel"], part_name(role)), "memory = 192M",
                  "expect_stop = poweroff", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def qemu_command(args, info, arch, dev, work, image, log, cfg):
    """tools/run-qemu's QEMU command (--dry-run --keep-esp) and its work directory."""
    cmd = [sys.executable, os.path.join(TOOLS, "run-qemu"), "--arch", args.arch,
           "--log", log, "--memory", "1024", "--efi", args.efi, "--config", cfg,
           "--file", info["KEEL_KERNEL"] + "=" + arch["kernel_dest"],
           "--file", os.path.join(work, "initramfs.img") + "=guests/initramfs.img",
           "--pci-storage", "--dry-run", "--keep-esp"]
    if dev["drive"] == "nvme0":
        cmd += ["--nvme-image", image]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True).stdout
    qemu = [l for l in out.splitlines() if l.startswith("qemu-system-")]
    esp = re.search(r"ESP kept at (\S+)", out)
    if len(qemu) != 1 or not esp:
        raise SystemExit("crash-test: no QEMU command from run-qemu --dry-run:\n" + out)
    qemu = qemu[0].split(" ")
    drive = [i for i, a in enumerate(qemu) if a.startswith("if=none,id=%s," % dev["drive"])]
    if len(drive) != 1 or qemu[drive[0] - 1] != "-drive":
        raise SystemExit("crash-test: run-qemu's drive %s not found in %s" % (dev["drive"], qemu))
    i = drive[0]
    qemu[i] = "if=none,id=%s,format=raw,file=%s" % (dev["drive"], image)
    return qemu, os.path.dirname(esp.group(1))


def nbd_drive(qemu, dev, image, port):
    """The disk under test on tools/nbd-cut instead of the file."""
    old = "if=none,id=%s,format=raw,file=%s" % (dev["drive"], image)
    i = qemu.index(old)
    return qemu[:i - 1] + ["-blockdev", "driver=nbd,node-name=%s,server.type=inet,"
                           "server.host=127.0.0.1,server.port=%d" % (dev["drive"], port)
                           ] + qemu[i + 1:]


def start_nbd(image, work, run_log):
    ready = os.path.join(work, "nbd.port")
    if os.path.exists(ready):
        os.remove(ready)
    out = open(run_log, "w")
    proc = subprocess.Popen([sys.executable, os.path.join(TOOLS, "nbd-cut"), "--image", image,
                             "--ready-file", ready], stdout=out, stderr=subprocess.STDOUT,
                            preexec_fn=die_with_parent)
    out.close()
    deadline = time.time() + 60
    while not os.path.exists(ready):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise SystemExit("crash-test: tools/nbd-cut did not start: %s" % read(run_log))
        time.sleep(0.2)
    with open(ready) as f:
        return proc, int(f.read())


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").replace("\r", "")
    except FileNotFoundError:
        return ""


GUEST = re.compile(r"^\[(crash-raw|crash-ext4)\] keel-crash: (.*)$", re.M)


def guest_lines(log):
    out = {r: [] for r in ROLES}
    for vm, text in GUEST.findall(log):
        out[vm[len("crash-"):]].append(text.strip())
    return out


def boot(args, case, info, arch, work, image, i, gen, check, write, rng):
    """Boot i: returns (log text, problems, acknowledged {role: A}, nbd report)."""
    log_path = os.path.join(args.log_dir, "%s-%d.log" % (args.case, i))
    cfg = os.path.join(work, "keel.cfg")
    dev = DEVS[case.get("dev", "nvme")]
    keel_config(cfg, arch, dev, gen, check, write)
    qemu, tmp = qemu_command(args, info, arch, dev, work, image, log_path, cfg)
    nbd, nbd_log = None, os.path.join(args.log_dir, "%s-%d.nbd.log" % (args.case, i))
    if case["nbd"]:
        nbd, port = start_nbd(image, work, nbd_log)
        qemu = nbd_drive(qemu, dev, image, port)
    problems = []
    say("boot %d: generation %d, checking %s, %s (serial log %s)" % (
        i, gen, ", ".join("%s 1-%d" % (r, check[r]) for r in ROLES),
        "then writing until killed" if write else "then power off", log_path))
    qout = open(os.path.join(tmp, "qemu.out"), "wb")
    proc = subprocess.Popen(qemu, stdin=subprocess.DEVNULL, stdout=qout, stderr=subprocess.STDOUT,
                            preexec_fn=die_with_parent)
    qout.close()
    start, cut_at, how, before_cut = time.time(), None, None, None
    while True:
        if proc.poll() is not None:
            how = "QEMU ended by itself (status %d)" % proc.returncode
            break
        log = read(log_path)
        if re.search(r"^(?:E )?keel: (?:error|panic)|keel-crash: FAIL", log, re.M):
            how = "Keel or the guest reported an error"
            break
        if write and cut_at is None and all(
                "ack %s g%04d r00000001" % (r, gen) in guest_lines(log)[r] for r in ROLES):
            delay = rng.uniform(0, args.max_delay)
            cut_at = time.time() + delay
            say("boot %d: both writers have a record acknowledged; the %s comes in %.2f s" % (
                i, "power cut" if nbd else "kill", delay))
        if cut_at is not None and time.time() >= cut_at:
            # After a power cut the guests may see I/O errors until QEMU is gone: only the log
            # up to here must be free of errors.
            before_cut = len(read(log_path))
            if nbd:
                nbd.send_signal(signal.SIGUSR1)
                deadline = time.time() + 30
                while "nbd-cut: cut:" not in read(nbd_log) and time.time() < deadline:
                    time.sleep(0.05)
                if "nbd-cut: cut:" not in read(nbd_log):
                    problems.append("tools/nbd-cut did not report the cut")
            proc.kill()
            proc.wait()
            how = "killed"
            break
        if time.time() - start > BOOT_TIMEOUT:
            proc.kill()
            proc.wait()
            how = "timeout"
            problems.append("boot %d: %s after %d s" % (
                i, "the writers were not both running" if write else "QEMU had not ended",
                BOOT_TIMEOUT))
            break
        time.sleep(0.1)
    if nbd:
        if proc.poll() is None:
            proc.kill()
        nbd.terminate()
        nbd.wait()
    log = read(log_path)
    qemu_out = read(os.path.join(tmp, "qemu.out")).strip()
    shutil.rmtree(tmp, ignore_errors=True)
    say("boot %d: %s after %.1f s" % (i, how, time.time() - start))
    if qemu_out and how != "killed":
        say("qemu said: " + qemu_out[-500:])
    if write and how != "killed":
        problems.append("boot %d: the writers were not killed: %s" % (i, how))
    if not write and not re.search(r"^keel: result: PASS\b", log, re.M):
        problems.append("boot %d (final): no 'keel: result: PASS' (%s)" % (i, how))
    for pat in (r"keel-crash: FAIL.*", r"Kernel panic.*", r"^(?:E )?keel: (?:error|panic).*",
                r"Call Trace:", r"EXT4-fs error.*", r"I/O error.*"):
        for m in re.finditer(pat, log[:before_cut], re.M):
            problems.append("boot %d: the log has: %s" % (i, m.group(0)[:200]))
    lines = guest_lines(log)
    acked = {}
    for role in ROLES:
        if not any(l.startswith("check done") for l in lines[role]):
            problems.append("boot %d: vm %s never finished its check" % (i, vm_name(role)))
        if case["nbd"] and not any(l == "write cache write back" for l in lines[role]):
            problems.append("boot %d: vm %s's disk does not show a volatile write cache "
                            "('write cache write back')" % (i, vm_name(role)))
        if check[role]:
            want = hashlib.sha256(records(role, gen - 1, check[role])).hexdigest()
            line = "check %s g%04d records 1-%d sha256 %s" % (role, gen - 1, check[role], want)
            if line not in lines[role]:
                got = [l for l in lines[role] if l.startswith("check %s" % role)]
                problems.append("boot %d: vm %s's checker: expected '%s', got %s" % (
                    i, vm_name(role), line, got or "nothing"))
        nums = [int(m) for m in re.findall(r"^ack %s g%04d r(\d{8})$" % (role, gen),
                                           "\n".join(lines[role]), re.M)]
        if nums != list(range(1, len(nums) + 1)):
            problems.append("boot %d: vm %s's acks are not 1..n in order" % (i, vm_name(role)))
        acked[role] = len(nums)
    if case["nbd"] and not re.search(dev["vwc"], log, re.M):
        problems.append("boot %d: Keel's line for %s does not report a volatile write cache" % (
            i, dev["keel"]))
    for role in ROLES:
        if not re.search(r"^keel: vm %s: virtio-blk0 on %s blocks " % (vm_name(role), dev["keel"]),
                         log, re.M):
            problems.append("boot %d: no line 'keel: vm %s: virtio-blk0 on %s blocks ...'" % (
                i, vm_name(role), dev["keel"]))
    return log, problems, acked, read(nbd_log) if nbd else ""


def host_check(image, parts, gen, acked, work):
    """The host reads the image after a kill / cut: problems."""
    problems = []
    with open(image, "rb") as f:
        f.seek(parts["raw"] + RAW_BASE)
        raw = f.read(4096 * acked["raw"])
        f.seek(parts["ext4"])
        fs = f.read(PART_BYTES["ext4"])
    for n in range(1, acked["raw"] + 1):
        if raw[(n - 1) * 4096:n * 4096] != raw_record(gen, n):
            problems.append("host: raw record %d of generation %d (acknowledged; %d were) is "
                            "not in the image" % (n, gen, acked["raw"]))
            break
    copy = os.path.join(work, "ext4-copy.img")
    with open(copy, "wb") as f:
        f.write(fs)
    replay = subprocess.run(["e2fsck", "-E", "journal_only", "-y", copy],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if replay.returncode not in (0, 1):
        problems.append("host: e2fsck -E journal_only -y (journal replay) exited %d: %s" % (
            replay.returncode, replay.stdout.strip()[-300:]))
    fsck = subprocess.run(["e2fsck", "-fn", copy], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if fsck.returncode != 0:
        problems.append("host: e2fsck -fn after the journal replay exited %d (not clean): %s" % (
            fsck.returncode, fsck.stdout.strip()[-600:]))
    cat = subprocess.run(["debugfs", "-R", "cat /gen-%04d" % gen, copy],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    want = records("ext4", gen, acked["ext4"])
    if not cat.stdout.startswith(want):
        have = len(cat.stdout) // 64
        problems.append("host: /gen-%04d on the ext4 partition holds %d bytes (%d records); "
                        "its first %d records (acknowledged) are %s" % (
                            gen, len(cat.stdout), have, acked["ext4"],
                            "missing" if len(cat.stdout) < len(want) else "not as written"))
    say("host: raw records 1-%d intact: %s; ext4: journal replay %s, e2fsck -fn %s, /gen-%04d "
        "%d bytes, records 1-%d %s" % (
            acked["raw"], "no" if any(p.startswith("host: raw") for p in problems) else "yes",
            "done" if replay.returncode in (0, 1) else "FAILED",
            "clean" if fsck.returncode == 0 else "NOT clean", gen, len(cat.stdout),
            acked["ext4"], "intact" if cat.stdout.startswith(want) else "NOT intact"))
    os.remove(copy)
    return problems


def tamper(image, parts, gen, work):
    """--tamper (to check the checks): after the kill, raw record 1 is zeroed and, on the ext4
    partition (journal replayed first), /gen-GEN removed, as a Keel losing them would."""
    say("--tamper: zeroing raw record 1 and removing /gen-%04d from the image" % gen)
    copy = os.path.join(work, "ext4-tamper.img")
    with open(image, "r+b") as f:
        f.seek(parts["raw"] + RAW_BASE)
        f.write(bytes(4096))
        f.seek(parts["ext4"])
        with open(copy, "wb") as c:
            c.write(f.read(PART_BYTES["ext4"]))
        subprocess.run(["e2fsck", "-E", "journal_only", "-y", copy], stdout=subprocess.DEVNULL)
        subprocess.run(["debugfs", "-w", "-R", "rm /gen-%04d" % gen, copy],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        f.seek(parts["ext4"])
        with open(copy, "rb") as c:
            f.write(c.read())
    os.remove(copy)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", required=True, choices=sorted(CASES))
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--arch", default="x86_64", choices=["x86_64", "arm64"])
    ap.add_argument("--efi", help="keel.efi (default BUILD/keel.efi)")
    ap.add_argument("--log-dir", help="default BUILD/tests/linux/logs")
    ap.add_argument("--runs", type=int, help="kills (or cuts) before the final check boot "
                    "(default: the case's)")
    ap.add_argument("--seed", type=int, help="seed of the random kill times (default: the time; "
                    "printed)")
    ap.add_argument("--max-delay", type=float, default=6.0, metavar="S",
                    help="the kill comes 0 to S seconds after both writers started (default 6)")
    ap.add_argument("--tamper", action="store_true",
                    help="check the checks: damage acknowledged records in the image after "
                         "each kill; every check must then fail, and the boots go on")
    args = ap.parse_args()
    case = CASES[args.case]
    build_dir = os.path.abspath(args.build_dir)
    args.efi = os.path.abspath(args.efi or os.path.join(build_dir, "keel.efi"))
    args.log_dir = os.path.abspath(args.log_dir or os.path.join(build_dir, "tests", "linux",
                                                                "logs"))
    os.makedirs(args.log_dir, exist_ok=True)
    if not os.path.isfile(args.efi):
        say("%s not found: build the keel_efi target first" % args.efi)
        return 1
    for tool in ("sgdisk", "mkfs.ext4", "e2fsck", "debugfs"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
            say("%s not found: install gdisk and e2fsprogs (tools/setup)" % tool)
            return 1
    os.environ["PATH"] += os.pathsep + "/usr/sbin:/sbin"
    arch = linux.ARCHES[args.arch]
    info = linux.fetch(arch)
    work = os.path.join(build_dir, "tests", "linux", "work", args.case)
    os.makedirs(work, exist_ok=True)
    seed = args.seed if args.seed is not None else int(time.time() * 1000) % 1000000
    rng = random.Random(seed)
    runs = args.runs or case["runs"]
    say("case %s: %d %s, seed %d (--seed %d repeats the kill times)" % (
        args.case, runs, "power cuts" if case["nbd"] else "kills", seed, seed))
    build_initramfs(info, arch, work)
    image = os.path.join(work, "nvme.img")
    parts = make_image(image, work)
    check = {r: 0 for r in ROLES}
    problems, total, dropped = [], {r: 0 for r in ROLES}, 0
    for i in range(1, runs + 2):
        write = i <= runs
        log, p, acked, nbd = boot(args, case, info, arch, work, image, i, i, check, write, rng)
        problems += p
        if nbd:
            for line in nbd.splitlines():
                if "nbd-cut: cut:" in line:
                    say("boot %d: %s" % (i, line))
                    m = re.search(r"(\d+) bytes dropped", line)
                    dropped += int(m.group(1)) if m else 0
        if write:
            say("boot %d: acknowledged: raw %d, ext4 %d records" % (i, acked["raw"],
                                                                  acked["ext4"]))
            if args.tamper:
                tamper(image, parts, i, work)
            problems += host_check(image, parts, i, acked, work)
            check = acked
            for r in ROLES:
                total[r] += acked[r]
        if problems and not args.tamper:
            break
    for r in ROLES:
        if not problems and total[r] == 0:
            problems.append("vm %s had no record acknowledged in any run: the test checked "
                            "nothing (raise --max-delay?)" % vm_name(r))
    if problems:
        say("%s FAILED:" % args.case)
        for p in problems:
            print("  - " + p)
        return 1
    say("%s passed: %d runs, %d raw and %d ext4 records acknowledged, 0 lost%s" % (
        args.case, runs, total["raw"], total["ext4"],
        "; the cuts dropped %d bytes of unflushed writes" % dropped if case["nbd"] else ""))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # children end with this script
    sys.exit(main())
