#!/usr/bin/env python3
"""Keel Linux-guest tests: boot Debian 12's kernel under Keel (in QEMU) to a busybox shell,
check the virtio disk, type into the console (docs/linux-guests.md).

    driver.py --case NAME --build-dir BUILD [--arch x86_64|arm64] [--log-dir DIR] [--dry-run]
    driver.py --case NAME --build-dir BUILD --check-log LOG     (only the log checks)

Each case runs on one architecture (ARCHES below: x86_64, or arm64 for the arm64_* cases;
--arch must match): Debian's amd64 kernel (bzImage) or arm64 kernel (uncompressed Image) and
the matching busybox and virtio modules; the same init, disk checks and log checks.

Each run: tools/fetch-debian (cached Debian packages; exit status 77 = skipped if they can be
neither fetched nor found in the cache), then in BUILD/tests/linux/work/<case>/ the payload,
disk image(s), /etc/keel-test.conf, the initramfs (tools/mkinitramfs with tests/linux/init)
and keel.cfg; then tools/run-qemu with the files on the ESP and --send lines that type into
the guest's shell; then the checks on the serial log, BUILD/tests/linux/logs/<case>.log.

Cases:
    shell    one VM: kernel banner, modules, disk size, host-written region checksum, payload
             written and read back, an interactive shell answering `echo keel-$((6*7))`,
             `poweroff -f` reported by Keel as "stopped: poweroff", summary ok, PASS
    two_vms  two Linux VMs in one boot, running at once, each with its own disk
             (different host patterns): the disk checks, then each powers off by itself
    smp      one VM with `vcpus = 2` on a two-CPU QEMU host: Linux brings up its second CPU
             ("smp: Brought up 1 node, 2 CPUs"), the disk checks, poweroff, and Keel's exit
             line for each vCPU
    direct   no Keel: QEMU boots the same kernel and init directly (-kernel/-initrd, the disk
             on virtio-pci, whose modules are added), the shell case's guest-side checks.
             Debugs the tooling and the init script independently of Keel.
    initramfs  no QEMU: tools/mkinitramfs is deterministic (two builds, same bytes; the gzip
             holds the plain archive) and busybox's own cpio lists the expected members and
             extracts them with the right contents.
    arm64_shell   the shell case on arm64 (PL011 console ttyAMA0, virtio-mmio disk from the
             device tree Keel generates)
    arm64_two_vms, arm64_reboot  the two_vms and reboot cases on arm64 (reboot: PSCI
                  SYSTEM_RESET)
    arm64_smp     one arm64 VM with two vCPUs (vcpus = 2) on a two-CPU QEMU (--smp 2): Linux
             brings up the second vCPU through PSCI CPU_ON ("smp: Brought up 1 node, 2 CPUs"),
             the disk checks, poweroff, and Keel's exit line for each vCPU
    snapshot, arm64_snapshot, snapshot_nvme, snapshot_smp, arm64_snapshot_smp  the shell
             case's VM snapshotted through the monitor, changed, restored (docs/snapshot.md;
             snapshot_sends, check_snapshot)
    arm64_direct  the direct case on arm64: QEMU's virt machine without virtualization, the
             disk as virtio-blk-device (virtio-mmio, described in QEMU's device tree)
    smp16, arm64_smp16  a large guest: one VM with 16 vCPUs on a 16-CPU QEMU host ("smp:
             Brought up 1 node, 16 CPUs"), the shell case, then at the shell `nproc` (16) and a
             parallel job: 16 background checksums, job i pinned to CPU i with taskset, each
             reporting when done, then `wait` (label scale: slow under TCG)
    arm64_smp20   the same with 20 vCPUs on 20 CPUs: vCPUs 16-19 have MPIDR Aff1 = 1
"""

import argparse
import hashlib
import os
import re
import shlex
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # importing the integration driver must not litter the tree
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
TOOLS = os.path.join(SOURCE_DIR, "tools")



def _integration_driver():
    """The integration tests' driver module, for its log checker (check_log, tagged)."""
    import importlib.util

    path = os.path.join(SOURCE_DIR, "tests", "integration", "driver.py")
    spec = importlib.util.spec_from_file_location("keel_integration_driver", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_integration = _integration_driver()
check_log, tagged = _integration.check_log, _integration.tagged

SKIP = 77  # ctest SKIP_RETURN_CODE
PASS = 0  # run-qemu's exit status on a pass

# What differs between the architectures.
#   fetch_arch     tools/fetch-debian --arch
#   modules        loaded by the init, in order (arm64: virtio and virtio_ring are built in)
#   direct_modules added for the direct case (x86: its disk is virtio-pci)
#   console        the kernel command line's console and early console
#   kernel_dest    the kernel's name on Keel's ESP (relative to EFI/BOOT/)
#   direct_disk    QEMU arguments attaching disk image {path} in the direct case
ARCHES = {
    "x86_64": dict(
        fetch_arch="amd64",
        modules=["virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "virtio_console"],
        direct_modules=["virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci"],
        console="console=ttyS0 earlyprintk=serial,ttyS0",
        kernel_dest="guests/vmlinuz",
        direct_disk=["-drive", "if=virtio,format=raw,file={path}"]),
    "arm64": dict(
        fetch_arch="arm64",
        modules=["virtio_mmio", "virtio_blk", "virtio_console"],
        direct_modules=[],
        console="console=ttyAMA0 earlycon=pl011,0x9000000",
        kernel_dest="guests/Image",
        direct_disk=["-drive", "if=none,id=vda,format=raw,file={path}",
                     "-device", "virtio-blk-device,drive=vda"]),
}
MODULES = ARCHES["x86_64"]["modules"]  # the initramfs case (x86_64: its busybox runs here)
CMDLINE_REST = "panic=-1 rdinit=/init"

# Disk layout (bytes; multiples of 4 KiB). The host fills the host region and the write
# region with different pseudo-random patterns (seeded by the VM name) and leaves the rest
# zero; the guest reads both, then overwrites the write region with the payload.
DISK_SIZE = 8 << 20
HOST_OFFSET, HOST_LENGTH = 1 << 20, 256 << 10
WRITE_OFFSET, WRITE_LENGTH = 4 << 20, 64 << 10

CASES = {
    "shell": dict(vms=["linux"], mode="shell", timeout=840),
    "two_vms": dict(vms=["linux-a", "linux-b"], mode="disk", timeout=840),
    # The guest resets itself (ACPI reset register): Keel ends the VM and reports a reboot.
    "reboot": dict(vms=["linux"], mode="reboot", timeout=840, stop="reboot"),
    # One VM with two vCPUs on a two-CPU host: Linux brings up its AP (INIT-SIPI-SIPI).
    "smp": dict(vms=["linux"], mode="disk", timeout=840, vcpus=2, smp=2),
    "direct": dict(vms=["direct"], mode="shell", timeout=240, direct=True),
    # Disks from real storage (docs/storage.md): one NVMe disk (tools/run-qemu --pci-storage
    # --nvme-image) with a GPT made by sgdisk, each VM on its own named partition, a third VM
    # whose disk overlaps the first one's refused; the host then finds each payload inside
    # its partition of the image and the GPT intact.
    "nvme_disks": dict(vms=["linux-a", "linux-b"], mode="disk", timeout=840, nvme=True),
    # A write that survives: boot 1 writes the payload, QEMU ends, boot 2 on the same NVMe
    # image reads it back (its "before" checksum is the payload's) before writing again.
    "persist": dict(vms=["linux-a"], mode="disk", timeout=840, nvme=True, boots=2),
    "initramfs": dict(vms=[], mode="shell"),
    "arm64_shell": dict(vms=["linux"], mode="shell", timeout=840, arch="arm64"),
    "arm64_direct": dict(vms=["direct"], mode="shell", timeout=300, direct=True, arch="arm64"),
    "arm64_nvme_disks": dict(vms=["linux-a", "linux-b"], mode="disk", timeout=840, nvme=True,
                             arch="arm64"),
    "arm64_persist": dict(vms=["linux-a"], mode="disk", timeout=840, nvme=True, boots=2,
                          arch="arm64"),
    "arm64_two_vms": dict(vms=["linux-a", "linux-b"], mode="disk", timeout=840, arch="arm64"),
    # arm64 Linux resets through PSCI SYSTEM_RESET: Keel ends the VM and reports a reboot.
    "arm64_reboot": dict(vms=["linux"], mode="reboot", timeout=840, stop="reboot", arch="arm64"),
    # vcpus: the VMs' `vcpus =`; smp: the emulated machine's CPUs (tools/run-qemu --smp).
    "arm64_smp": dict(vms=["linux"], mode="disk", timeout=840, arch="arm64", vcpus=2, smp=2),
    # Large guests: 16 vCPUs on a 16-CPU host, the shell, then a job on every vCPU (parallel:
    # how many pinned background jobs). Slow under TCG on a small machine (label scale).
    "smp16": dict(vms=["linux"], mode="shell", timeout=3000, vcpus=16, smp=16, parallel=16),
    "arm64_smp16": dict(vms=["linux"], mode="shell", timeout=3000, arch="arm64", vcpus=16,
                        smp=16, parallel=16),
    # 20 vCPUs: vCPUs 16-19 have MPIDR Aff1 = 1 (CPU_ON, SGI target lists, GICR_TYPER).
    "arm64_smp20": dict(vms=["linux"], mode="shell", timeout=3000, arch="arm64", vcpus=20,
                        smp=20, parallel=20),
    # RAM above 4 GiB: 4608 MiB from 1 GiB (to 5.5 GiB) on a 6 GiB host, the shell case plus
    # `free -m`, which must count more than 4 GiB. memory: the VM's `memory =`; host_memory:
    # tools/run-qemu --memory.
    "arm64_bigmem": dict(vms=["linux"], mode="shell", timeout=840, arch="arm64",
                         memory="4608M", host_memory=6144),
    # x86: the same 4608 MiB as on a PC, [0, 3 GiB) and [4 GiB, 5.5 GiB) around the device
    # hole (arch/x86_64/include/arch/ram_layout.h), on a 5 GiB host (q35: 2 GiB from 0, 3 GiB
    # from 4 GiB: no free run holds the 3 GiB range, so Keel backs it with several host runs);
    # the e820 map Linux prints must show both RAM ranges, and `free -m` must count more
    # than 4 GiB.
    # host_runs: Keel's build line must count 3 to 8 host runs (2 would be one per range).
    "bigmem": dict(vms=["linux"], mode="shell", timeout=840, memory="4608M", host_memory=5120,
                   host_runs="[3-8]",
                   e820=[r"0x0000000000100000-0x00000000bfffffff\] usable",
                         r"0x0000000100000000-0x000000015fffffff\] usable"]),
    # Isolation: two Linux VMs (disk checks, poweroff) beside misbehaving test guests, all at
    # once on a two-CPU host: one that faults (x86: triple fault; arm64: an access outside its
    # RAM), one that never gives the CPU back (runaway: interrupts off, no exits), one that
    # exits as fast as it can (storm). Keel reports the faulting one; the two endless ones are
    # stopped from the monitor once both Linux VMs have powered off. The default suite boots
    # it on one CPU: on two, a Linux VM triple-faulted in early boot once in 12 boots
    # (docs/smp.md); isolation_smp4 and isolation_soak (20 boots on two CPUs) have label soak.
    "isolation": dict(vms=["linux-a", "linux-b"], mode="disk", timeout=840,
                      misbehaving=[("triple", "triplefault.bin", "triple-fault"),
                                   ("runaway", "runaway.bin", "monitor"),
                                   ("storm", "storm.bin", "monitor")]),
    "isolation_smp4": dict(vms=["linux-a", "linux-b"], mode="disk", timeout=840, smp=4,
                           misbehaving=[("triple", "triplefault.bin", "triple-fault"),
                                        ("runaway", "runaway.bin", "monitor"),
                                        ("storm", "storm.bin", "monitor")]),
    "isolation_soak": dict(vms=["linux-a", "linux-b"], mode="disk", timeout=840, smp=2,
                           repeat=20,
                           misbehaving=[("triple", "triplefault.bin", "triple-fault"),
                                        ("runaway", "runaway.bin", "monitor"),
                                        ("storm", "storm.bin", "monitor")]),
    # gdb against the Linux guest at its shell (docs/debugging.md): the kernel's symbols from
    # its own /proc/kallsyms (Debian's System.map is a placeholder: the real one is in the
    # -dbg package; and the kernel is placed at random, KASLR), then gdb over Keel's console
    # reads default_idle_call's code through the guest's page tables, breaks there, sees the
    # hit, detaches; the shell still answers.
    "gdb": dict(vms=["linux"], mode="shell", timeout=840, gdb=True),
    "arm64_gdb": dict(vms=["linux"], mode="shell", timeout=840, arch="arm64", gdb=True),
    # Many small VMs beside Linux (issue 20 item 2): the shell case with 64 ramtest VMs (2 MiB
    # each, as integration.many_vms) in the same boot, all at once on one CPU. The shell must
    # answer once the 64 have ended their first run; then the monitor starts all 64 again, and
    # the shell must answer once all have started (keel-48) and once all have ended again
    # (keel-54). Each ramtest exits 0 twice; the summary says ok for all 65 (label scale).
    "many_vms": dict(vms=["linux"], mode="shell", timeout=1500, small=64),
    "arm64_many_vms": dict(vms=["linux"], mode="shell", timeout=1500, small=64, arch="arm64"),
    # Snapshot and restore of a Linux VM (docs/snapshot.md): at its shell it writes a disk
    # block and a file in its RAM (tmpfs), is paused, snapshotted in memory and resumed, writes
    # both again, is paused, restored and resumed twice: each time the file and the disk block
    # are what they were at the snapshot (the disk is a RAM disk, part of the snapshot), and
    # the shell answers.
    "snapshot": dict(vms=["linux"], mode="shell", timeout=1500, snapshot=True),
    # The same with the disk on a GPT partition of an NVMe disk (Keel's storage): the guest
    # does not write the disk between snapshot and restore, and the restore gives back the
    # snapshot's file and disk; then it writes the disk, and a restore is refused (the disk
    # moved on) and changes nothing.
    # The snapshot case on a VM with two vCPUs (a two-CPU QEMU host): both vCPUs' registers
    # and LAPICs / redistributors.
    "snapshot_smp": dict(vms=["linux"], mode="shell", timeout=1500, snapshot=True, vcpus=2,
                         smp=2),
    "arm64_snapshot_smp": dict(vms=["linux"], mode="shell", timeout=1500, snapshot=True,
                               vcpus=2, smp=2, arch="arm64"),
    "snapshot_nvme": dict(vms=["linux"], mode="shell", timeout=1500, snapshot=True, nvme=True),
    "arm64_snapshot": dict(vms=["linux"], mode="shell", timeout=1500, snapshot=True,
                           arch="arm64"),
    "arm64_isolation": dict(vms=["linux-a", "linux-b"], mode="disk", timeout=840, smp=2,
                            arch="arm64",
                            misbehaving=[("outside", "outside.bin", "outside-ram"),
                                         ("runaway", "runaway.bin", "monitor"),
                                         ("storm", "storm.bin", "monitor")]),
}


def small_vms(case):
    """The names of the case's small ramtest VMs (case small=N): r01, r02, ..."""
    return ["r%02d" % i for i in range(1, case.get("small", 0) + 1)]


def small_exited(name):
    return r"^keel: vm %s stopped: exit: code 0$" % name


def case_arch(case):
    return ARCHES[case.get("arch", "x86_64")]


def say(msg):
    print("linux-test: " + msg, flush=True)


def pattern(seed, n):
    """n deterministic pseudo-random bytes: SHA-256 of seed and a counter, concatenated."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"%s/%d" % (seed.encode(), i)).digest()
        i += 1
    return bytes(out[:n])


def sha(data):
    return hashlib.sha256(data).hexdigest()


def fetch(arch):
    """Returns tools/fetch-debian's KEY=VALUE output as a dict, or exits (77: skip)."""
    proc = subprocess.run([os.path.join(TOOLS, "fetch-debian"), "--arch", arch["fetch_arch"]],
                          stdout=subprocess.PIPE, text=True)
    if proc.returncode == 2:
        bar = "*" * 78
        print(bar)
        print("linux-test: SKIPPED: the Debian kernel and busybox packages are neither cached "
              "nor downloadable (see fetch-debian's message above). Run tools/fetch-debian "
              "once with network access; later runs use the cache.")
        print(bar, flush=True)
        sys.exit(SKIP)
    if proc.returncode != 0:
        say("tools/fetch-debian failed (status %d)" % proc.returncode)
        sys.exit(1)
    info = {}
    for line in proc.stdout.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            info[k] = v
    for k in ("KEEL_KERNEL", "KEEL_MODULES", "KEEL_BUSYBOX", "KEEL_KERNEL_RELEASE"):
        if k not in info:
            say("tools/fetch-debian printed no %s" % k)
            sys.exit(1)
    return info


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def vm_disk(vm):
    """The disk image of VM `vm` and the checksums the guest must print for it."""
    disk = bytearray(DISK_SIZE)
    host = pattern("keel-host-region-" + vm, HOST_LENGTH)
    stale = pattern("keel-stale-region-" + vm, WRITE_LENGTH)
    disk[HOST_OFFSET:HOST_OFFSET + HOST_LENGTH] = host
    disk[WRITE_OFFSET:WRITE_OFFSET + WRITE_LENGTH] = stale
    return bytes(disk), dict(host=sha(host), before=sha(stale))


def build(case, info, work):
    """Writes everything the run needs into `work`; returns the expectations."""
    os.makedirs(work, exist_ok=True)
    payload = pattern("keel-guest-payload", WRITE_LENGTH)
    write(os.path.join(work, "payload.bin"), payload)
    write(os.path.join(work, "keel-test.conf"), (
        "# written by tests/linux/driver.py\n"
        "HOST_OFFSET=%d HOST_LENGTH=%d WRITE_OFFSET=%d WRITE_LENGTH=%d\n"
        % (HOST_OFFSET, HOST_LENGTH, WRITE_OFFSET, WRITE_LENGTH)).encode())
    arch = case_arch(case)
    modules = arch["modules"] + (arch["direct_modules"] if case.get("direct") else [])
    cmd = [sys.executable, os.path.join(TOOLS, "mkinitramfs"),
           "-o", os.path.join(work, "initramfs.img"),
           "--busybox", info["KEEL_BUSYBOX"], "--init", os.path.join(HERE, "init"),
           "--modules-dir", info["KEEL_MODULES"],
           "--file", os.path.join(work, "payload.bin") + "=/keel/payload.bin",
           "--file", os.path.join(work, "keel-test.conf") + "=/etc/keel-test.conf"]
    for m in modules:
        cmd += ["--module", m]
    subprocess.run(cmd, check=True)
    expect = {"payload": sha(payload), "modules": modules, "vms": {}}
    disks = {}
    for vm in case["vms"]:
        disk, sums = vm_disk(vm)
        if case.get("nvme"):
            disks[vm] = disk
        else:
            write(os.path.join(work, "disk-%s.img" % vm), disk)
        expect["vms"][vm] = sums
    if case.get("nvme"):
        expect["nvme"] = nvme_image(os.path.join(work, "nvme.img"), disks)
        case["_parts"] = expect["nvme"]["parts"]
    return expect


NVME_SIZE = 20 << 20  # two 8 MiB partitions from LBA 2048, GPT at both ends
NVME_GPT_OVERLAP = "overlap"  # the VM whose disk names linux-a's partition again


def part_name(vm):
    return "keel-" + vm


def nvme_image(path, disks):
    """The NVMe disk: a GPT made by sgdisk with partition keel-<vm> per VM (8 MiB each, from
    LBA 2048), each filled as vm_disk fills a whole disk. Returns {vm: (first LBA, GUID)}."""
    if os.path.exists(path):
        os.remove(path)
    with open(path, "wb") as f:
        f.truncate(NVME_SIZE)
    cmd = ["sgdisk", "-o"]
    for i, vm in enumerate(disks):
        n = i + 1
        cmd += ["-n", "%d:0:+%dK" % (n, DISK_SIZE >> 10), "-t", "%d:8300" % n,
                "-c", "%d:%s" % (n, part_name(vm))]
    subprocess.run(cmd + [path], check=True, stdout=subprocess.DEVNULL)
    parts = {}
    for i, vm in enumerate(disks):
        out = subprocess.run(["sgdisk", "-i", str(i + 1), path], check=True,
                             stdout=subprocess.PIPE, text=True).stdout
        first = int(re.search(r"First sector: (\d+)", out).group(1))
        last = int(re.search(r"Last sector: (\d+)", out).group(1))
        guid = re.search(r"Partition unique GUID: (\S+)", out).group(1)
        if (last - first + 1) * 512 != DISK_SIZE:
            raise SystemExit("sgdisk made partition %d %d sectors long" % (i + 1,
                                                                          last - first + 1))
        with open(path, "r+b") as f:
            f.seek(first * 512)
            f.write(disks[vm])
        parts[vm] = (first, guid)
    return dict(path=path, parts=parts)


def check_nvme_image(expect, payload):
    """After a boot: each VM's payload at WRITE_OFFSET of its own partition, its host region
    untouched, the GPT still valid (sgdisk -v). Returns problems."""
    problems = []
    nv = expect["nvme"]
    with open(nv["path"], "rb") as f:
        img = f.read()
    for vm, (first, _) in nv["parts"].items():
        base = first * 512
        got = img[base + WRITE_OFFSET:base + WRITE_OFFSET + WRITE_LENGTH]
        if sha(got) != sha(payload):
            problems.append("NVMe image: partition %s holds no payload at offset %d" % (
                part_name(vm), WRITE_OFFSET))
        if sha(img[base + HOST_OFFSET:base + HOST_OFFSET + HOST_LENGTH]) != \
                expect["vms"][vm]["host"]:
            problems.append("NVMe image: partition %s's host region changed" % part_name(vm))
    v = subprocess.run(["sgdisk", "-v", nv["path"]], stdout=subprocess.PIPE, text=True)
    if v.returncode != 0 or "No problems found" not in v.stdout:
        problems.append("sgdisk -v finds the GPT damaged: %s" % v.stdout.strip()[-200:])
    return problems


def cmdline(case, vm):
    return "%s %s keeltest.mode=%s keeltest.name=%s" % (case_arch(case)["console"], CMDLINE_REST,
                                                        case["mode"], vm)


def keel_config(case, path):
    with open(path, "w") as f:
        f.write("\n".join(config_lines(case)))


def config_line(case, text):
    """The line number of the first keel.cfg line starting with `text`."""
    for i, line in enumerate(config_lines(case)):
        if line.startswith(text):
            return i + 1
    raise SystemExit("no config line %r" % text)


def config_lines(case):
    lines = ["# Written by tests/linux/driver.py (docs/linux-guests.md): Debian's kernel with the",
             "# test initramfs; each VM has its own virtio disk.",
             "log = info", "finish = debug-exit", ""]
    for vm in case["vms"]:
        lines += ["[vm %s]" % vm,
                  "kernel = %s" % case_arch(case)["kernel_dest"],
                  "initrd = guests/initramfs.img",
                  'cmdline = "%s"' % cmdline(case, vm),
                  ("disk = nvme0n1:part=%s" % part_name(vm)) if case.get("nvme")
                  else "disk = guests/disk-%s.img" % vm,
                  "memory = %s" % case.get("memory", "256M"),
                  ] + (["vcpus = %d" % case["vcpus"]] if case.get("vcpus") else []) + [
                  "expect_stop = %s" % case.get("stop", "poweroff"), ""]
    if case.get("nvme") and len(case["vms"]) > 1:
        # Refused: the first VM's partition again, writable (by GUID: the overlap is found by
        # blocks, whatever names them). The disk = line is the 5th of the section.
        vm = case["vms"][0]
        lines += ["[vm %s]" % NVME_GPT_OVERLAP,
                  "kernel = %s" % case_arch(case)["kernel_dest"],
                  "initrd = guests/initramfs.img",
                  'cmdline = "%s"' % cmdline(case, NVME_GPT_OVERLAP),
                  "disk = nvme0n1:partuuid=%s" % case["_parts"][vm][1],
                  "memory = 64M", "expect_stop = load-failed", ""]
    for name, image, stop in case.get("misbehaving", []):
        lines += ["[vm %s]" % name, "image = guests/%s" % image, "memory = 4M",
                  "expect_stop = %s" % stop] + (
                      # arm64 would inject an abort, which the guest reports as a failure
                      ["unbacked = stop"] if stop == "outside-ram" else []) + [""]
    for name in small_vms(case):
        lines += ["[vm %s]" % name, "memory = 2M", "image = guests/ramtest.bin",
                  "expect_exit = 0", ""]
    return lines


def guest(vm, direct, text_re):
    """A line the guest printed: Keel shows the VM's serial output as "[vm] line"."""
    return (r"^" if direct else r"^\[%s\] " % re.escape(vm)) + text_re


def checks(case, info, expect):
    direct = case.get("direct", False)
    release = re.escape(info["KEEL_KERNEL_RELEASE"])
    orders, must_not, counts = [], [r"keel-test: FAIL", r"Kernel panic", r"keel-test: shell exited",
                                   r"UNEXPECTED", r"^keel: error: ", r"(?i)^keel: .*\bpanic",
                                   r"Call Trace:"], {}
    for vm in case["vms"]:
        # The VMs run at once: each VM's lines are in order, then the summary.
        order = []
        orders.append(order)
        g = lambda t: guest(vm, direct, t)  # noqa: E731
        sums = expect["vms"][vm]
        if not direct and case.get("host_runs"):
            # Keel's build line: the VM's RAM in that many host runs (a range was split)
            order.append(r"^keel: vm %s: \d+ MiB at host 0x[0-9a-f]+ \(%s host runs\)"
                         % (re.escape(vm), case["host_runs"]))
        # (a) the kernel's own banner, not something the init printed
        order.append(g(r"(?:\[ *\d+\.\d+\] )?Linux version %s \(" % release))
        for e in case.get("e820", []):
            # the RAM ranges of the e820 map Keel gave, as the kernel prints them
            order.append(g(r"(?:\[ *\d+\.\d+\] )?BIOS-e820: \[mem %s" % e))
        if case.get("vcpus", 1) > 1:
            # every vCPU started through PSCI CPU_ON and answering IPIs
            order.append(g(r"(?:\[ *\d+\.\d+\] )?smp: Brought up 1 node, %d CPUs$"
                           % case["vcpus"]))
        # Not anchored at the end: until init lowers the console log level, a kernel message
        # (e.g. the clocksource switch) may land on the same console line.
        order.append(g(r"keel-test: init started: kernel %s, mode %s, vm %s\b"
                       % (release, case["mode"], re.escape(vm))))
        for m in expect["modules"]:
            order.append(g(r"keel-test: insmod %s\b" % m))
        order.append(g(r"keel-test: modules loaded$"))
        # (b) the virtio disk, as the guest's tools see it (the kernel's line: counts below)
        order.append(g(r"keel-test: virtio disk /dev/vda size %d bytes, %d sectors$"
                       % (DISK_SIZE, DISK_SIZE // 512)))
        # (c) what the host wrote, then the payload round trip
        order.append(g(r"keel-test: host region sha256 %s$" % sums["host"]))
        order.append(g(r"keel-test: write region before sha256 %s$" % sums["before"]))
        order.append(g(r"keel-test: payload sha256 %s$" % expect["payload"]))
        order.append(g(r"keel-test: write region after sha256 %s$" % expect["payload"]))
        order.append(g(r"keel-test: disk checks done$"))
        if case["mode"] == "shell":
            # (d) the interactive shell
            order.append(g(r"keel-test: shell ready$"))
            order.append(g(r"keel-42$"))
            if case.get("snapshot"):
                mon = r"^keel: monitor: vm %s: " % re.escape(vm)
                order += [g(r"keel-snap-one-[0-9a-f]{16}$"), mon + r"snapshot in memory, ",
                          g(r"keel-after-two-[0-9a-f]{16}$"), mon + r"restored from its ",
                          g(r"keel-restored-one-[0-9a-f]{16}$")]
                if case.get("nvme"):
                    refused = r"^keel: monitor: cannot restore vm %s: snapshot refused: " % (
                        re.escape(vm))
                    order += [g(r"keel-wrote-one-[0-9a-f]{16}$"), refused,
                              g(r"keel-still-one-[0-9a-f]{16}$")]
                    counts[refused] = 1
                    counts[mon + r"restored from its snapshot; it is paused"] = 1
                else:
                    order += [mon + r"restored from its ", g(r"keel-restored-one-[0-9a-f]{16}$")]
                    counts[mon + r"restored from its snapshot; it is paused"] = 2
                    must_not += [r"snapshot refused"]
                must_not += [r"cannot snapshot vm"]
            if case.get("small"):
                order.append(g(r"keel-48$"))
                order.append(g(r"keel-54$"))
            else:
                order.append(g(r"keel-time-\d+ up \d+\.\d+$"))
            if case.get("parallel"):
                # every vCPU online, then each pinned job done, then all of them
                order.append(g(r"keel-nproc-%d$" % case["vcpus"]))
                order.append(g(r"keel-par-all-done$"))
                for i in range(case["parallel"]):
                    counts[g(r"keel-par-cpu%d-done$" % i)] = 1
            if case.get("memory"):
                # 4608 MiB less the kernel's own: between 4 GiB and 4.5 GiB
                order.append(g(r"Mem: +4(?:09[7-9]|[1-5]\d\d) "))
        elif case["mode"] == "reboot":
            order.append(g(r"keel-test: rebooting$"))
        else:
            order.append(g(r"keel-test: powering off$"))
        if direct:
            order.append(r"reboot: Power down")
        else:
            order.append(r"^keel: vm %s stopped: %s\b" % (re.escape(vm),
                                                          case.get("stop", "poweroff")))
        if not direct and case.get("vcpus", 1) > 1:
            # Keel's report when the VM is released: one exit line per vCPU
            for c in range(case["vcpus"]):
                order.append(r"^keel: vm %s: vCPU %d: [1-9]\d* exits \(.*\), \d+ ms of CPU in "
                             r"[1-9]\d* runs$" % (re.escape(vm), c))
        if not direct:
            order.append(r"^keel: summary$")
        counts[g(r"keel-test: modules loaded$")] = 1
        n = case.get("vcpus", 1)
        if n > 1 and not direct and case.get("arch", "x86_64") == "x86_64":
            # x86: Linux started every vCPU through INIT-SIPI (Keel's line per SIPI) before it
            # counted them (the smp line and the per-vCPU exit lines are checked above).
            orders.append([r"^keel: vm %s: vCPU %d started \(SIPI vector" % (re.escape(vm), i)
                           for i in range(1, n)] +
                          [g(r"(?:\[ *\d+\.\d+\] )?smp: Brought up 1 node, %d CPUs$" % n)])
    counts[r"virtio_blk virtio\d+: \[vda\] %d 512-byte logical blocks" % (DISK_SIZE // 512)] = \
        len(case["vms"])
    if case.get("nvme"):
        for vm in case["vms"]:
            first = expect["nvme"]["parts"][vm][0]
            orders.append([r"^keel: vm %s: virtio-blk0 on nvme0n1 blocks %d-%d \(8 MiB\)$" % (
                re.escape(vm), first, first + DISK_SIZE // 512 - 1),
                guest(vm, False, r"keel-test: disk checks done$"),
                r"^keel: vm %s: virtio-blk0: \d+ reads, [1-9]\d* writes, [1-9]\d* flushes, 0 "
                r"errors" % re.escape(vm)])
        if len(case["vms"]) > 1:
            first = expect["nvme"]["parts"][case["vms"][0]][0]
            last = first + DISK_SIZE // 512 - 1
            line_a = config_line(case, "disk = nvme0n1:part=%s" % part_name(case["vms"][0]))
            line_o = config_line(case, "disk = nvme0n1:partuuid=")
            orders.append([r"^keel: vm %s stopped: load-failed: config line %d: disk = "
                           r"nvme0n1:partuuid=%s: blocks %d-%d of nvme0n1 overlap blocks "
                           r"%d-%d of \[vm %s\] \(config line %d\): two VMs share blocks only "
                           r"when both have disk_readonly = yes$" % (
                               NVME_GPT_OVERLAP, line_o,
                               re.escape(expect["nvme"]["parts"][case["vms"][0]][1]), first,
                               last, first, last, re.escape(case["vms"][0]), line_a),
                           r"^keel: summary$",
                           r"^keel:   %s: .*ok$" % NVME_GPT_OVERLAP])
            counts[r"^keel: vm \S+ stopped: "] = 0  # set below, with the refused VM
    bad = case.get("misbehaving", [])
    for name, _, stop in bad:
        # each misbehaving VM reported once, with its own reason, while the others ran on
        orders.append([r"^keel: vm %s stopped: %s: " % (re.escape(name), re.escape(stop)),
                       r"^keel: summary$"])
    small = small_vms(case)
    if small:
        vm = case["vms"][0]
        # The monitor's second start of all of them, then the shell's answer.
        orders.append([guest(vm, False, r"keel-42$")] +
                      [r"^keel: vm %s: starting$" % n for n in small] +
                      [guest(vm, False, r"keel-48$")])
        for n in small:
            # Each ran at boot (its RAM checked, exit 0) before the first answer, was started
            # again by the monitor after it and ended (exit 0) before the third.
            orders.append([r"^keel: vm %s: starting$" % n, guest(n, False, r"ramtest: all \d+ "
                                                                   r"bytes ok$"),
                           small_exited(n), guest(vm, False, r"keel-42$"),
                           r"^keel: vm %s: starting$" % n, guest(n, False, r"ramtest: all \d+ "
                                                                  r"bytes ok$"),
                           small_exited(n), guest(vm, False, r"keel-54$")])
            counts[small_exited(n)] = 2
    if not direct:
        orders.append([r"^keel: summary$"] +
                      [r"^keel:   %s: .*ok$" % re.escape(vm)
                       for vm in case["vms"] + [b[0] for b in bad] + small] +
                      [r"^keel: result: PASS\b"])
        counts[r"^keel: vm \S+ stopped: "] = len(case["vms"]) + len(bad) + 2 * len(small) + (
            1 if case.get("nvme") and len(case["vms"]) > 1 else 0) + (
            # the snapshot case's reset (snapshot_sends)
            1 if case.get("snapshot") and not case.get("nvme") and case.get("vcpus", 1) == 1
            else 0)
        counts[r"^keel: result: "] = 1
    return dict(orders=orders, must_not=must_not, counts=counts, allow_panic=False)


def monitor_stops(case):
    """Once every Linux VM has powered off: the monitor stops the endless misbehaving VMs."""
    endless = [b[0] for b in case.get("misbehaving", []) if b[2] == "monitor"]
    if not endless:
        return []
    off = r"^keel: vm linux-\S+ stopped: poweroff\b"
    both = r"(?s)" + r".*".join([off] * len(case["vms"]))
    out = [tagged(both) + "=>\x1dm"]
    after = tagged(r"^keel: console: monitor \(type help\)$")
    for name in endless:
        out.append("%s=>stop %s" % (after, name))
        after = tagged(r"^keel: vm %s stopped: monitor: " % re.escape(name))
    return out


# The snapshot case's shell commands: W writes a random 4 KiB block at 6 MiB of the disk
# (synchronously), S prints the first 16 hex digits of its sha256 read back with O_DIRECT.
SNAP_FUNCS = ("W() { dd if=/dev/urandom of=/dev/vda bs=4096 seek=1536 count=1 conv=fsync "
              "2>/dev/null; }; S() { dd if=/dev/vda bs=4096 skip=1536 count=1 iflag=direct "
              "2>/dev/null | sha256sum | cut -c1-16; }")
SNAP_LINE = r"keel-%s-([a-z]+)-([0-9a-f]{16})\n"


def snapshot_sends(vm, prompt, after, nvme, reset):
    """The monitor and shell steps of the snapshot cases, from `after` (a prompt's pattern);
    returns (steps, the pattern after the last one). reset: the second restore goes into the
    VM after `reset` (a fresh VM from the config, devices and all), not into the paused one.
    nvme: the disk is on Keel's storage, so
    the guest does not write it between snapshot and restore; at the end it writes it, and a
    restore is refused."""
    mon = lambda t: tagged(r"^keel: monitor: " + t)  # noqa: E731
    v = re.escape(vm)
    menu = tagged(r"^keel: console: monitor \(type help\)$")
    back = tagged(r"^keel: console: input to vm %s\b" % v) + r".*\n(?:.*\n)*?" + prompt
    line = lambda kind: guest(vm, False, SNAP_LINE % kind) + prompt  # noqa: E731
    show = lambda kind: "echo keel-%s-$(cat /tmp/state)-$(S)" % kind  # noqa: E731
    seq = [(after, SNAP_FUNCS + "; W; echo one > /tmp/state; " + show("snap")),
           (line("snap"), "\x1dm"), (menu, "pause " + vm),
           (mon(r"vm %s is paused$" % v), "snapshot " + vm),
           (mon(r"vm %s: snapshot in memory, " % v), "resume " + vm),
           (mon(r"vm %s is running$" % v), "\x1d1"),
           (back, ("" if nvme else "W; ") + "echo two > /tmp/state; " + show("after"))]
    after = line("after")
    for n in range(1 if nvme else 2):
        seq += [(after, "\x1dm"), (menu, "pause " + vm)]
        if n and reset:
            seq += [(mon(r"vm %s is paused$" % v), "reset " + vm),
                    (mon(r"vm %s is created$" % v), "restore " + vm)]
        else:
            seq += [(mon(r"vm %s is paused$" % v), "restore " + vm)]
        seq += [
                (mon(r"vm %s: restored from its snapshot; it is paused" % v), "resume " + vm),
                (mon(r"vm %s is running$" % v), "\x1d1"), (back, show("restored"))]
        after = line("restored")
    if nvme:
        seq += [(after, "W; " + show("wrote")), (line("wrote"), "\x1dm"), (menu, "pause " + vm),
                (mon(r"vm %s is paused$" % v), "restore " + vm),
                (mon(r"cannot restore vm %s: snapshot refused: its disk nvme0n1 has had "
                     r"[1-9]\d* writes since the snapshot" % v), "resume " + vm),
                (mon(r"vm %s is running$" % v), "\x1d1"), (back, show("still"))]
        after = line("still")
    return ["%s=>%s" % st for st in seq], after


def check_snapshot(log, vm, nvme):
    """The snapshot cases: the file and disk block after each restore are the snapshot's; on
    Keel's storage, the refused restore changed nothing."""
    lines = re.findall(r"^\[%s\] keel-(snap|after|restored|wrote|still)-([a-z]+)-([0-9a-f]{16})$"
                       % re.escape(vm), log, re.M)
    kinds = [k for k, _, _ in lines]
    want = ["snap", "after", "restored"] + (["wrote", "still"] if nvme else ["restored"])
    if kinds != want:
        return ["snapshot: expected the lines %s, got %s" % (want, kinds)]
    got = [(f, d) for _, f, d in lines]
    snap, after = got[0], got[1]
    problems = []
    if snap[0] != "one" or after[0] != "two" or (after[1] == snap[1]) != nvme:
        problems.append("snapshot: after the snapshot the guest's file and disk are %s, before "
                        "%s" % (after, snap))
    for n, g in enumerate(got[2:4] if not nvme else got[2:3], 1):
        if g != snap:
            problems.append("snapshot: restore %d: file and disk %s, the snapshot had %s"
                            % (n, g, snap))
    if nvme and (got[3][1] == snap[1] or got[4] != ("one", got[3][1])):
        problems.append("snapshot: the refused restore changed the VM: wrote %s, then %s"
                        % (got[3], got[4]))
    return problems


def sends(case, vm, direct):
    if case["mode"] != "shell":
        return []
    # Type only at a prompt, as a person would: busybox's line editing may drop what was typed
    # ahead while a command ran. Keel shows an idle guest's unfinished line (the prompt) with
    # the VM's prefix; plain QEMU shows it bare.
    prompt = (r"\[%s\] " % re.escape(vm) if not direct else "") + r"keel-sh# "
    ready = guest(vm, direct, r"keel-test: shell ready\n") + prompt
    answer = guest(vm, direct, r"keel-42\n") + prompt
    # The guest's clock: the firmware's time through the VM's RTC (CMOS / PL031), checked
    # against the host's clock around the boot (check_clock).
    clock = guest(vm, direct, r"keel-time-\d+ up \d+\.\d+\n") + prompt
    first = ["%s=>echo keel-$((6*7))" % ready]
    if case.get("small"):
        return small_sends(case, vm, ready, answer, prompt)
    if case.get("gdb"):
        # The symbols, then the console to gdb (gdb_session) and, once gdb has detached, back
        # to the shell for the usual checks.
        first = ["%s=>grep ' default_idle_call$' /proc/kallsyms; echo keel-syms-done" % ready,
                 guest(vm, direct, r"keel-syms-done\n") + prompt + "=>\x1dm",
                 tagged(r"^keel: console: monitor \(type help\)$") + "=>gdb " + vm,
                 tagged(r"^keel: gdb: detached from vm %s\b" % re.escape(vm)) + "=>\x1d1",
                 # No Ctrl-U first: Keel ends a console session only after gdb's ack ('+') of
                 # its last reply, which before that reached the shell ('+echo: not found').
                 tagged(r"^keel: console: input to vm %s\b" % re.escape(vm)) + r".*\n(?:.*\n)*?"
                 + prompt + "=>echo keel-$((6*7))"]
    if case.get("snapshot"):
        steps, answer = snapshot_sends(vm, prompt, answer, case.get("nvme", False),
                                       case.get("vcpus", 1) == 1)
        first += steps
    typed = first + ["%s=>echo keel-time-$(date -u +%%s) up $(cut -d' ' -f1 /proc/uptime)"
                     % answer]
    if case.get("memory"):
        # the RAM the guest's kernel counts (checks: more than 4 GiB)
        typed.append("%s=>free -m" % clock)
        clock = guest(vm, direct, r"Swap: .*\n") + prompt
    if case.get("parallel"):
        # A job on every vCPU: job i pinned to CPU i (taskset fails, and the job never
        # reports, if that CPU is not online), 4 MiB through sha256sum each, all at once; in
        # a subshell, whose background jobs the interactive shell does not report ("Done").
        typed.append("%s=>echo keel-nproc-$(nproc); (for i in $(seq 0 %d); do taskset -c $i sh "
                     "-c \"head -c 4194304 /dev/zero | sha256sum >/dev/null && echo "
                     "keel-par-cpu$i-done\" & done; wait); echo keel-par-all-done"
                     % (clock, case["parallel"] - 1))
        clock = guest(vm, direct, r"keel-par-all-done\n") + prompt
    return typed + ["%s=>poweroff -f" % clock]


def small_sends(case, vm, ready, answer, prompt):
    """The many_vms cases: the shell answers after the small VMs' first run has ended, after the
    monitor started them all again, and after that second run has ended. Sends marked
    (?#keep) leave run-qemu's search point after the monitor's banner, so the lines they wait
    for may come in any order after it (the small VMs end while the next one is typed)."""
    small = small_vms(case)
    n = len(small)
    stop = tagged(r"^keel: vm r\d\d stopped: exit: code 0$")
    # From the start of the log (the first send): all n ended once, then the shell is ready.
    boot_run = r"\A(?=(?:(?>(?s:.*?)%s)){%d})(?s:.*?)" % (stop, n)
    monitor = tagged(r"^keel: console: monitor \(type help\)$")
    started = tagged(r"^keel: vm %s: starting$" % small[-1])
    back = tagged(r"^keel: console: input to vm %s\b" % re.escape(vm)) + r".*\n(?:.*\n)*?" + prompt
    answer48 = guest(vm, False, r"keel-48$")
    # After the banner: the shell's answer and all n ended their second run, in any order.
    # The lookbehind lets it start only at the search point (right after the banner): tried
    # at every line the scan would cost run-qemu so long that it stops reading the serial
    # socket, QEMU's UART stalls and Keel drops characters (uart16550_putc's time limit).
    ended = r"(?#keep)(?<=\(type help\))(?=(?s:.*?)%s)(?:(?>(?s:.*?)%s)){%d}" % (
        answer48, stop, n)
    answer54 = guest(vm, False, r"keel-54\n") + prompt
    return ["%s%s=>echo keel-$((6*7))" % (boot_run, ready),
            "%s=>\x1dm" % answer,
            "%s=>%s" % (monitor, "\n".join("start " + s for s in small)),
            "(?#keep)%s=>\x1d1" % started,
            "(?#keep)%s=>echo keel-$((6*8))" % back,
            "%s=>echo keel-$((6*9))" % ended,
            "%s=>poweroff -f" % answer54]


def check_clock(log, started, ended, slack=30, boot_slack=3):
    """Two checks of the guest's `date -u +%s` and /proc/uptime, read together:
    - the time it booted (date - uptime: the RTC's reading at boot, less the little the
      kernel had run by then) lies within the host's time around the run, give or take
      `boot_slack` seconds: the RTC shows the firmware's time, not 1970 or a local-time
      offset. This does not depend on how the guest kept time since: both figures come from
      its one clock, which drifts in both alike;
    - its clock now lies within `slack` seconds of the host's: 30 s, not 3: under a loaded
      emulator the guest's Linux can mark its TSC unstable and keep time by jiffies, and a
      clean-clone CI run read the clock 5 s ahead then with Keel's TSC measured to 74 ppm
      (docs/time.md)."""
    m = re.search(r"keel-time-(\d+) up (\d+\.\d+)\s*$", log, re.M)
    if not m:
        return []  # check_log reports the missing line
    t, up = int(m.group(1)), float(m.group(2))

    def utc(x):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(x))

    problems = []
    if not started - slack <= t <= ended + slack:
        problems.append("the guest's clock read %d (%s UTC), not within the host's %d..%d: its "
                        "RTC does not show the firmware's time" % (t, utc(t), int(started),
                                                                   int(ended)))
    boot = t - up
    if not started - boot_slack <= boot <= ended + boot_slack:
        problems.append("the guest booted at %.1f (%s UTC) by its clock less its uptime (%.2f "
                        "s), not within the host's %d..%d (%d s of slack): its RTC was off at "
                        "boot" % (boot, utc(boot), up, int(started), int(ended), boot_slack))
    return problems


def read_log(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace").replace("\r", "")


def report(name, problems, log, log_path):
    if problems:
        print("linux-test: %s FAILED:" % name)
        for p in problems:
            print("  - " + p)
        tail = log.splitlines()[-60:]
        print("linux-test: last %d lines of the serial log:" % len(tail))
        for line in tail:
            print("  | " + line)
        print("linux-test: serial log kept at %s" % log_path)
        return 1
    print("linux-test: %s passed (serial log at %s)" % (name, log_path))
    return 0


def check_initramfs(info, work):
    """The initramfs case; returns a list of problems."""
    import gzip
    import shutil

    problems = []
    img = os.path.join(work, "initramfs.img")
    with open(img, "rb") as f:
        first = f.read()
    again = os.path.join(work, "again.img")
    plain = os.path.join(work, "plain.cpio")
    base = [sys.executable, os.path.join(TOOLS, "mkinitramfs"), "--busybox",
            info["KEEL_BUSYBOX"], "--init", os.path.join(HERE, "init"),
            "--modules-dir", info["KEEL_MODULES"],
            "--file", os.path.join(work, "payload.bin") + "=/keel/payload.bin",
            "--file", os.path.join(work, "keel-test.conf") + "=/etc/keel-test.conf"]
    for m in MODULES:
        base += ["--module", m]
    subprocess.run(base + ["-o", again], check=True)
    subprocess.run(base + ["-o", plain, "--no-gzip"], check=True)
    with open(again, "rb") as f:
        if f.read() != first:
            problems.append("two builds from the same inputs differ")
    with open(plain, "rb") as f:
        raw = f.read()
    if gzip.decompress(first) != raw:
        problems.append("the gzip archive does not hold the plain one")
    if len(raw) % 4 or not raw.startswith(b"070701"):
        problems.append("plain archive: no newc magic or length not a multiple of 4")
    bb = info["KEEL_BUSYBOX"]
    listing = subprocess.run([bb, "cpio", "-t", "-v"], input=raw, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, check=False)
    members = {}
    for line in listing.stdout.decode().splitlines():
        f = line.split()
        if len(f) >= 6:
            members[f[5]] = f[0]
    want = {"init": "-rwxr-xr-x", "bin/busybox": "-rwxr-xr-x", "bin/sh": "lrwxrwxrwx",
            "dev/console": "crw-------", "tmp": "drwxrwxrwt", "etc/modules": "-rw-r--r--",
            "keel/payload.bin": "-rw-r--r--", "etc/keel-test.conf": "-rw-r--r--"}
    want.update({"lib/modules/%s.ko" % m: "-rw-r--r--" for m in MODULES})
    for name, mode in sorted(want.items()):
        if members.get(name) != mode:
            problems.append("busybox cpio -t: %s is %s, expected %s" % (
                name, members.get(name, "missing"), mode))
    out = os.path.join(work, "extract")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    names = ["init", "etc/modules", "keel/payload.bin", "bin/busybox",
             "lib/modules/virtio_blk.ko"]
    subprocess.run([bb, "cpio", "-i", "-d"] + names, input=raw, cwd=out, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    blk = subprocess.run(["find", info["KEEL_MODULES"], "-name", "virtio_blk.ko"],
                         stdout=subprocess.PIPE, text=True).stdout.split()
    sources = {"init": os.path.join(HERE, "init"), "keel/payload.bin":
               os.path.join(work, "payload.bin"), "bin/busybox": bb,
               "lib/modules/virtio_blk.ko": blk[0] if blk else "/nonexistent"}
    for name, src in sources.items():
        try:
            with open(os.path.join(out, name), "rb") as a, open(src, "rb") as b:
                if a.read() != b.read():
                    problems.append("extracted %s differs from %s" % (name, src))
        except OSError as e:
            problems.append("cannot compare %s: %s" % (name, e))
    try:
        with open(os.path.join(out, "etc/modules")) as f:
            if f.read().split() != MODULES:
                problems.append("etc/modules is not the load order %s" % MODULES)
    except OSError as e:
        problems.append("etc/modules: %s" % e)
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", required=True, choices=sorted(CASES))
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--arch", choices=sorted(ARCHES), default=None,
                    help="the build's architecture (default: the case's); must match the case")
    ap.add_argument("--efi", help="keel.efi (default BUILD/keel.efi)")
    ap.add_argument("--log-dir", help="default BUILD/tests/linux/logs")
    ap.add_argument("--dry-run", action="store_true",
                    help="build everything and print the QEMU command; do not boot")
    ap.add_argument("--check-log", metavar="LOG", help="only check an existing serial log")
    ap.add_argument("--repeat", type=int, default=0, metavar="N",
                    help="boot the case N times in a row (logs CASE-1.log ...), stop at the "
                         "first failure (default: the case's repeat, else 1)")
    ap.add_argument("--dump-on-reset", action="store_true",
                    help="if the machine resets by itself (a triple fault of Keel), save its "
                         "registers and RAM beside the boot's log, in <log>.reset/ "
                         "(tools/run-qemu --dump-on-reset)")
    ap.add_argument("--keep-going", action="store_true",
                    help="with --repeat: boot all N times, then say how many failed")
    args = ap.parse_args()

    case = CASES[args.case]
    if args.arch and args.arch != case.get("arch", "x86_64"):
        say("case %s runs on %s, not %s" % (args.case, case.get("arch", "x86_64"), args.arch))
        return 1
    arch = case_arch(case)
    build_dir = os.path.abspath(args.build_dir)
    work = os.path.join(build_dir, "tests", "linux", "work", args.case)
    log_dir = args.log_dir or os.path.join(build_dir, "tests", "linux", "logs")
    log_path = os.path.abspath(args.check_log or os.path.join(log_dir, args.case + ".log"))
    efi = args.efi or os.path.join(build_dir, "keel.efi")

    info = fetch(arch)
    say("kernel %s (package %s %s), busybox %s" % (
        info["KEEL_KERNEL_RELEASE"], info.get("KEEL_KERNEL_PACKAGE"),
        info.get("KEEL_KERNEL_VERSION"), info.get("KEEL_BUSYBOX_VERSION")))
    expect = build(case, info, work)
    if args.case == "initramfs":
        problems = check_initramfs(info, work)
        for p in problems:
            print("  - " + p)
        say("initramfs %s" % ("FAILED" if problems else "passed"))
        return 1 if problems else 0
    want = checks(case, info, expect)

    repeat = args.repeat or case.get("repeat", case.get("boots", 1))
    if args.check_log:
        repeat = 1
    failures = []
    for i in range(repeat):
        path = log_path
        if repeat > 1:
            path = os.path.join(os.path.dirname(log_path), "%s-%d.log" % (args.case, i + 1))
            say("boot %d of %d (serial log %s)" % (i + 1, repeat, path))
        status_problem = None
        started = time.time()
        if not args.check_log:
            status_problem = boot(args, case, info, arch, build_dir, work, efi, path)
            if status_problem == "dry-run":
                return 0
        if case.get("boots") and i > 0:
            # The boots after the first find the first one's payload already there.
            for vm in case["vms"]:
                expect["vms"][vm]["before"] = expect["payload"]
            want = checks(case, info, expect)
        log = read_log(path)
        problems = ([status_problem] if status_problem else []) + check_log(want, log)
        if case.get("nvme") and not args.check_log:
            with open(os.path.join(work, "payload.bin"), "rb") as f:
                problems += check_nvme_image(expect, f.read())
        if case["mode"] == "shell" and not args.check_log:
            problems += check_clock(log, started, time.time())
        if case.get("snapshot"):
            problems += check_snapshot(log, case["vms"][0], case.get("nvme", False))
        name = args.case if repeat == 1 else "%s (boot %d of %d)" % (args.case, i + 1, repeat)
        if report(name, problems, log, path):
            if not args.keep_going:
                return 1
            failures.append(i + 1)
    if repeat > 1:
        say("%s: %d of %d boots passed%s" % (args.case, repeat - len(failures), repeat,
                                             "; failed: %s" % failures if failures else ""))
    return 1 if failures else 0


def boot(args, case, info, arch, build_dir, work, efi, log_path):
    """Boots the case once into log_path; returns a problem with QEMU's status, or None."""
    arch_name = case.get("arch", "x86_64")
    direct = case.get("direct", False)
    if not direct and not os.path.isfile(efi) and not args.dry_run:
        return "%s not found: build the keel_efi target first (make)" % efi
    cmd = [sys.executable, os.path.join(TOOLS, "run-qemu"), "--arch", arch_name,
           "--log", log_path, "--timeout", str(case["timeout"]),
           "--memory", str(case.get("host_memory", 1024))]
    if case.get("smp"):
        cmd += ["--smp", str(case["smp"])]
    if direct:
        vm = case["vms"][0]
        cmd += ["--kernel", info["KEEL_KERNEL"],
                "--initrd", os.path.join(work, "initramfs.img"),
                "--append", cmdline(case, vm), "--until", r"reboot: Power down"]
        disk = os.path.join(work, "disk-%s.img" % vm)
        cmd += ["--qemu-arg=" + a.format(path=disk) for a in arch["direct_disk"]]
    else:
        cfg = os.path.join(work, "keel.cfg")
        keel_config(case, cfg)
        cmd += ["--efi", efi, "--config", cfg,
                "--file", info["KEEL_KERNEL"] + "=" + arch["kernel_dest"],
                "--file", os.path.join(work, "initramfs.img") + "=guests/initramfs.img"]
        if case.get("nvme"):
            cmd += ["--pci-storage", "--nvme-image", os.path.join(work, "nvme.img")]
        else:
            for vm in case["vms"]:
                cmd += ["--file", os.path.join(work, "disk-%s.img" % vm)
                        + "=guests/disk-%s.img" % vm]
        # Keel refusing the config or panicking ends the run at once (the checks then
        # fail on what is missing) rather than at the timeout.
        cmd += ["--fail-on", tagged(r"^keel: (?:error|panic): .*\n")]
    for vm in case["vms"]:
        for s in sends(case, vm, direct):
            cmd += ["--send", s]
    for s in monitor_stops(case):
        cmd += ["--send", s]
    for _, image, _ in case.get("misbehaving", []):
        cmd += ["--file", os.path.join(build_dir, "guests", image) + "=guests/" + image]
    if case.get("small"):
        cmd += ["--file", os.path.join(build_dir, "guests", "ramtest.bin") + "=guests/ramtest.bin"]
    if getattr(args, "dump_on_reset", False):
        cmd += ["--dump-on-reset", os.path.splitext(log_path)[0] + ".reset"]
    if args.dry_run:
        cmd += ["--dry-run", "--keep-esp"]
    if case.get("gdb") and not args.dry_run:
        return gdb_session(cmd, case, log_path)
    print("linux-test: " + shlex.join(cmd), flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(proc.stdout, end="", flush=True)
    if args.dry_run:
        say("dry run: files in %s, QEMU not started (status %d)" % (work, proc.returncode))
        return "dry-run"
    if proc.returncode != PASS:
        return ("run-qemu exited %d, expected 0 (%s)" % (
            proc.returncode, "the Power down line" if direct else "Keel's debug-exit pass"))
    return None


def gdb_session(cmd, case, log_path):
    """The gdb cases: run-qemu with the console bridged to a TCP port, and gdb-multiarch in
    batch mode on it once Keel has handed the console over. A problem, or None."""
    import socket

    vm = case["vms"][0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = cmd + ["--bridge", "127.0.0.1:%d" % port]
    print("linux-test: " + shlex.join(cmd), flush=True)
    if os.path.exists(log_path):
        os.unlink(log_path)
    qemu = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    problems = []
    handed = tagged(r"^keel: monitor: vm %s stopped for gdb on this console" % re.escape(vm))
    deadline = time.time() + case["timeout"] - 60
    syms = {}
    while time.time() < deadline and qemu.poll() is None:
        try:
            log = read_log(log_path)
        except FileNotFoundError:
            log = ""
        if re.search(handed, log, re.M):
            for addr, name in re.findall(r"\b([0-9a-f]{16}) [Tt] (default_idle_call)$", log,
                                         re.M):
                syms[name] = int(addr, 16)
            break
        time.sleep(0.5)
    gdb_text = ""
    if len(syms) != 1:
        problems.append("gdb: the console was never handed to gdb, or /proc/kallsyms lacked "
                        "default_idle_call")
        qemu.kill()
    else:
        idle = syms["default_idle_call"]
        gcmd = ["gdb-multiarch", "-nx", "-batch", "-ex", "set pagination off",
                "-ex", "set confirm off", "-ex", "set remotetimeout 60",
                "-ex", "target remote 127.0.0.1:%d" % port,
                "-ex", "x/4wx %#x" % idle, "-ex", "break *%#x" % idle, "-ex", "continue",
                "-ex", "print/x $pc", "-ex", "delete", "-ex", "detach"]
        print("linux-test: " + shlex.join(gcmd), flush=True)
        try:
            g = subprocess.run(gcmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=300)
            gdb_text = g.stdout
        except subprocess.TimeoutExpired as e:
            gdb_text = (e.stdout or b"").decode("utf-8", "replace") if isinstance(
                e.stdout, bytes) else (e.stdout or "")
            problems.append("gdb: did not finish in 300 s")
        with open(os.path.splitext(log_path)[0] + ".gdb-output", "w") as f:
            f.write(gdb_text)
        pos = 0
        if "Cannot access memory" in gdb_text:
            problems.append("gdb could not read the kernel's memory")
        for pat in [r"%#x[^\n]*:\s+0x[0-9a-f]{8}\s+0x[0-9a-f]{8}" % idle,
                    r"Breakpoint 1 at %#x" % idle,
                    r"Breakpoint 1, %#018x in \?\? \(\)" % idle,
                    r"\$1 = %#x\b" % idle,
                    r"Detaching from program|\[Inferior 1 \(Remote target\) detached\]"]:
            m = re.compile(pat).search(gdb_text, pos)
            if not m:
                problems.append("gdb output lacks (in order): %s" % pat)
                continue
            pos = m.end()
    try:
        out, _ = qemu.communicate(timeout=max(60, deadline + 60 - time.time()))
        print(out, end="", flush=True)
    except subprocess.TimeoutExpired:
        qemu.kill()
        out, _ = qemu.communicate()
        print(out, end="", flush=True)
        problems.append("run-qemu did not end")
    if problems:
        print("linux-test: gdb's output:")
        for line in gdb_text.splitlines():
            print("  > " + line)
        return "; ".join(problems)
    if qemu.returncode != PASS:
        return "run-qemu exited %d, expected 0 (Keel's debug-exit pass)" % qemu.returncode
    return None


if __name__ == "__main__":
    sys.exit(main())
