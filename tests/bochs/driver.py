#!/usr/bin/env python3
"""Keel tests under Bochs: boot keel.efi on an emulated Intel CPU with VT-x (and on an AMD
CPU with SVM, and on one with neither) through tools/run-bochs, then check the serial log
(docs/testing.md, "Bochs").

    driver.py --case NAME --build-dir BUILD [--log-dir DIR] [--efi FILE] [--cpu M] [--ips N]

The expectations are not repeated here: the guest cases reuse the QEMU integration cases of
tests/integration/driver.py (their configs, checks and verdicts; run-bochs has run-qemu's
exit statuses), the Linux cases reuse tests/linux/driver.py (initramfs, disk image, config,
checks). Only the machine differs: a Bochs CPU model instead of QEMU's -cpu.

Cases:
    vmx_guests   svm_guests (the eight core guests in one boot) on corei7_skylake_x (VT-x)
    vmx_x86state integration's x86state on corei7_skylake_x: registers Keel switches per
                 vCPU (SSE included), #GP for refused XCR0 (with AVX-512) / PAT / EFER,
                 CPUID leaf 0xD's sizes, WBINVD and INVD
    vmx_apic_smp integration's hostile_apic_smp on corei7_skylake_x: a two-vCPU guest
                 starts vCPU 1 by INIT-SIPI-SIPI (real mode, unrestricted guest) and races
                 its vCPUs on IPIs, the I/O APIC and a page-table entry
    vmx_msr      integration's hostile_msr on corei7_skylake_x: the MSR sweep, EFER, the
                 SVM/VMX control MSRs, canonical addresses, TSC_AUX, IA32_APIC_BASE,
                 MONITOR/MWAIT/RDPMC (which the CPU has: they must exit) and leaf 0xD's MPX
    svm_msr      the same on ryzen: SVM on a CPU with RDTSCP (TSC_AUX's write checks)
    vmx_lapic    integration's hostile_lapic (without its periodic VM) on corei7_skylake_x:
                 LAPIC storms, CR8 and NMIs (virtual NMIs, NMI-window exiting)
    vmx_snapshot integration's snapshot on corei7_skylake_x: snapcount paused, snapshotted,
                 reset, restored twice through the monitor (run-bochs --send), going on each
                 time with the right round and checksums
    vmx_hostile_pt integration's hostile_pt on corei7_skylake_x: page-table loops and
                 reserved bits met by Keel's walk, compatibility mode, paging off, PAE; the
                 #PF Keel injects through VMX
    svm_guests   the same on Bochs' ryzen model (AMD SVM with nested paging): Keel's SVM
                 backend on a second emulator
    expect_fail  integration's expect_fail on ryzen: "keel: result: FAIL" is a failure
                 (run-bochs status 1), so the pass signal can fail here too
    refusal      an Intel CPU with neither VT-x nor SVM (bx_generic, cpuid vmx=0 svm=0):
                 exactly one "keel: error:" line naming SVM and VT-x/VMX; no VM runs
    refusal_amd  an AMD CPU without SVM (athlon64_venice): one "keel: error:" naming SVM
    linux_vmx    Debian's amd64 kernel under Keel on corei7_skylake_x: the Linux test's
                 "disk" mode (banner, modules, virtio disk checks, poweroff), one VM
    linux_svm    the same on ryzen (SVM)
    linux_vmx_smp  linux_vmx with vcpus = 2: Linux starts vCPU 1 by INIT-SIPI-SIPI
                 ("smp: Brought up 1 node, 2 CPUs"), one Keel exit line per vCPU
    linux_vmx_snapshot  tests/linux/driver.py's snapshot case on corei7_skylake_x, its
                 monitor and shell steps typed through run-bochs --send
The linux_* cases are long (minutes) and registered only with -DKEEL_BOCHS_LINUX=ON.
Serial logs: DIR/<case>.log (default BUILD/tests/bochs/logs).
"""

import argparse
import importlib.util
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # importing the other drivers must not litter the tree
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
RUN_BOCHS = os.path.join(SOURCE_DIR, "tools", "run-bochs")


def load(name, rel):
    spec = importlib.util.spec_from_file_location(name, os.path.join(SOURCE_DIR, rel))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


integration = load("keel_integration_driver", "tests/integration/driver.py")

VMX_CPU = "corei7_skylake_x"  # VT-x with EPT, VPID, unrestricted guest
SVM_CPU = "ryzen"             # AMD SVM with nested paging, NRIP-save, flush-by-ASID
# An Intel CPU (x86-64, SSE4.2: enough for OVMF) without VT-x and without SVM.
NO_VT_CPUID = ("x86_64=1, level=6, family=6, model=0x1a, stepping=5, mmx=1, sep=1, "
               "simd=sse4_2, apic=xapic, vendor_string=\"GenuineIntel\", vmx=0, svm=0")

# The Linux cases: tests/linux/driver.py's "disk" mode (no typing), one VM, as linux.two_vms
# runs each of its two; the snapshot case its "shell" mode, typed through run-bochs --send.
LINUX_CASE = dict(vms=["linux"], mode="disk")
LINUX_MEMORY = 1024  # MiB of the emulated machine (the VM has 256M), as the QEMU test
# Emulated instructions per emulated second. Bochs' default (4 million) makes Linux's
# page-table walks (the W+X check) look like 50 s soft lockups and fires the timers every few
# thousand instructions; 50 million is about what Bochs runs here (~23 MIPS measured under
# Keel) and more: fewer timer exits, no lockup warnings.
LINUX_IPS = 50000000

# Keel refuses before it takes the machine; the firmware then waits: stop at the error line.
REFUSAL = r"^keel: error: .*\n"

CASES = {
    "vmx_guests": dict(integration.CASES["svm_guests"], cpu=VMX_CPU, timeout=300),
    # Bochs' VT-x gives these CPU-bound guests no host-tick exit: the two msrswitch VMs take
    # turns ("several runs") only because the VMX-preemption timer ends each slice.
    "vmx_x86state": dict(integration.CASES["x86state"], cpu=VMX_CPU, timeout=300),
    # A guest with two vCPUs on VT-x: vCPU 1 started by INIT-SIPI-SIPI into a real-mode
    # trampoline (unrestricted guest), then IPI, I/O APIC and page-table races. Both vCPUs on
    # Bochs' one CPU (Keel finds no second one: OVMF under Bochs has no ACPI tables).
    "vmx_apic_smp": dict(integration.CASES["hostile_apic_smp"], cpu=VMX_CPU, timeout=600),
    "vmx_msr": dict(integration.CASES["hostile_msr"], cpu=VMX_CPU, timeout=900),
    "svm_msr": dict(integration.CASES["hostile_msr"], cpu=SVM_CPU, timeout=900),
    "vmx_hostile_pt": dict(integration.CASES["hostile_pt"], cpu=VMX_CPU, timeout=600),
    # hostile_lapic's storms, CR8 and NMIs (virtual NMIs, NMI-window exits) without its
    # periodic VM, which only the monitor could stop.
    "vmx_lapic": dict(integration.guests_case("hostile_lapic_bochs.cfg",
                                              integration.HOSTILE_LAPIC),
                      cpu=VMX_CPU, timeout=600),
    # The other x86 hostile cases on VT-x (label bochs-slow; hostile_lapic is left out: its
    # periodic VM is stopped by typing into the monitor, and run-bochs sends no input).
    **{"vmx_" + c: dict(integration.CASES[c], cpu=VMX_CPU, timeout=600)
       for c in ("hostile_hc", "hostile_virt", "hostile_fetch", "hostile_apic_regs")},
    # integration.snapshot on VT-x, typed into Keel's monitor through run-bochs --send.
    "vmx_snapshot": dict(integration.CASES["snapshot"], cpu=VMX_CPU, timeout=1500),
    "svm_guests": dict(integration.CASES["svm_guests"], cpu=SVM_CPU, timeout=300),
    "expect_fail": dict(integration.CASES["expect_fail"], cpu=SVM_CPU, timeout=240),
    "refusal": dict(
        config="no_svm.cfg",
        cpu="bx_generic",
        cpuid=NO_VT_CPUID,
        until=REFUSAL,
        verdict=integration.PASS,  # the pattern appeared
        timeout=120,
        # Both technologies named, so the message helps on either vendor's machine.
        must=[r"^keel: error: .*\bSVM\b", r"^keel: error: .*\b(?:VMX|VT-x)\b"],
        counts={r"^keel: error: ": 1},
        must_not=[r"^keel: vm ", r"^keel: result: ", r"^\[hello\] "],
    ),
    # An AMD CPU without SVM (K8): the same refusal on the other vendor's machine.
    "refusal_amd": dict(
        config="no_svm.cfg",
        cpu="athlon64_venice",
        until=REFUSAL,
        verdict=integration.PASS,
        timeout=120,
        must=[r"^keel: error: .*\bSVM\b"],
        counts={r"^keel: error: ": 1},
        must_not=[r"^keel: vm ", r"^keel: result: ", r"^\[hello\] "],
    ),
    "linux_vmx": dict(linux=True, cpu=VMX_CPU, timeout=3000, ips=LINUX_IPS),
    "linux_svm": dict(linux=True, cpu=SVM_CPU, timeout=3000, ips=LINUX_IPS),
    "linux_vmx_smp": dict(linux=True, cpu=VMX_CPU, timeout=3000, ips=LINUX_IPS, vcpus=2),
    # linux.snapshot on VT-x: the shell's file and disk block after two restores are the
    # snapshot's (tests/linux/driver.py's snapshot case, typed through run-bochs --send).
    "linux_vmx_snapshot": dict(linux=True, cpu=VMX_CPU, timeout=3000, ips=LINUX_IPS,
                               snapshot=True),
}


def run_bochs(case, efi, config, files, log_path, extra=()):
    cmd = [sys.executable, RUN_BOCHS, "--efi", efi, "--config", config, "--log", log_path,
           "--timeout", str(case["timeout"]), "--cpu", case["cpu"]]
    if "cpuid" in case:
        cmd += ["--cpuid", case["cpuid"]]
    if "cpus" in case:
        cmd += ["--cpus", str(case["cpus"])]
    if "memory" in case:
        cmd += ["--memory", str(case["memory"])]
    if "ips" in case:
        cmd += ["--ips", str(case["ips"])]
    if "until" in case:
        cmd += ["--until", integration.tagged(case["until"])]
    if "fail_on" in case:
        cmd += ["--fail-on", integration.tagged(case["fail_on"])]
    for pat, text in case.get("sends", []):
        cmd += ["--send", "%s=>%s" % (integration.tagged(pat), text)]
    for f in files:
        cmd += ["--file", f]
    cmd += list(extra)
    print("bochs-test: " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          preexec_fn=integration.die_with_parent)
    print(proc.stdout, end="", flush=True)
    return proc.returncode


def read_log(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").replace("\r", "")
    except FileNotFoundError:
        return ""


def report(name, problems, log, log_path):
    if problems:
        print("bochs-test: %s FAILED:" % name)
        for p in problems:
            print("  - " + p)
        tail = log.splitlines()[-60:]
        print("bochs-test: last %d lines of the serial log:" % len(tail))
        for line in tail:
            print("  | " + line)
        print("bochs-test: serial log kept at %s" % log_path)
        return 1
    print("bochs-test: %s passed (serial log at %s)" % (name, log_path))
    return 0


def guests_case(name, case, build, efi, log_path):
    files = integration.guest_files(build)
    if not files:
        print("bochs-test: no guests in %s/guests: build the guests target first" % build)
        return 1
    config = os.path.join(SOURCE_DIR, "tests", "integration", "configs", case["config"])
    status = run_bochs(case, efi, config, files, log_path)
    log = read_log(log_path)
    problems = []
    if status != case["verdict"]:
        problems.append("run-bochs exited %d, expected %d (0 pass, 1 fail, 2 timeout, 3 error)"
                        % (status, case["verdict"]))
    problems += integration.check_log(case, log)
    return report(name, problems, log, log_path)


def linux_case(name, case, build, efi, log_path):
    linux = load("keel_linux_driver", "tests/linux/driver.py")
    lcase = dict(LINUX_CASE, **{k: case[k] for k in ("vcpus",) if k in case})
    if case.get("snapshot"):
        lcase = dict(vms=["linux"], mode="shell", timeout=case["timeout"], snapshot=True)
    arch = linux.case_arch(lcase)
    info = linux.fetch(arch)  # exits 77 (skip) when the packages are not to be had
    print("bochs-test: kernel %s, busybox %s" % (info["KEEL_KERNEL_RELEASE"],
                                                 info.get("KEEL_BUSYBOX_VERSION")), flush=True)
    work = os.path.join(build, "tests", "bochs", "work", name)
    expect = linux.build(lcase, info, work)
    want = linux.checks(lcase, info, expect)
    config = os.path.join(work, "keel.cfg")
    linux.keel_config(lcase, config)
    files = [info["KEEL_KERNEL"] + "=" + arch["kernel_dest"],
             os.path.join(work, "initramfs.img") + "=guests/initramfs.img"]
    files += [os.path.join(work, "disk-%s.img" % vm) + "=guests/disk-%s.img" % vm
              for vm in lcase["vms"]]
    run = dict(case, memory=LINUX_MEMORY, fail_on=r"^keel: (?:error|panic): .*\n")
    typed = linux.sends(lcase, lcase["vms"][0], False)
    extra = [a for s in typed for a in ("--send", s)]
    status = run_bochs(run, efi, config, files, log_path, extra)
    log = read_log(log_path)
    problems = []
    if status != integration.PASS:
        problems.append("run-bochs exited %d, expected 0 (Keel's PASS)" % status)
    problems += integration.check_log(want, log)
    return report(name, problems, log, log_path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", required=True, choices=sorted(CASES))
    ap.add_argument("--build-dir", required=True, help="the x86_64 build directory")
    ap.add_argument("--efi", help="keel.efi (default BUILD/keel.efi)")
    ap.add_argument("--log-dir", help="default BUILD/tests/bochs/logs")
    ap.add_argument("--cpu", help="another Bochs CPU model than the case's (trying a model)")
    ap.add_argument("--ips", type=int, help="Bochs' cpu ips= (default: the case's)")
    args = ap.parse_args()

    case = dict(CASES[args.case])
    if args.cpu:
        case["cpu"] = args.cpu
        case.pop("cpuid", None)
    if args.ips:
        case["ips"] = args.ips
    build = os.path.abspath(args.build_dir)
    efi = os.path.abspath(args.efi or os.path.join(build, "keel.efi"))
    log_dir = args.log_dir or os.path.join(build, "tests", "bochs", "logs")
    os.makedirs(log_dir, exist_ok=True)
    log_path = os.path.join(log_dir, args.case + ".log")
    if not os.path.isfile(efi):
        print("bochs-test: %s not found: build the keel_efi target first (make)" % efi)
        return 1
    if case.get("linux"):
        return linux_case(args.case, case, build, efi, log_path)
    return guests_case(args.case, case, build, efi, log_path)


if __name__ == "__main__":
    sys.exit(main())
