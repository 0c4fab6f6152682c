#!/usr/bin/env python3
"""Keel integration tests: boot keel.efi in QEMU with a config and guests, then check the
serial log (docs/testing.md).

    driver.py --case NAME --build-dir BUILD [--arch x86_64|arm64] [--log-dir DIR]

Each case (CASES below) names a config in configs/, the architecture it runs on (x86_64
unless it says arm64; --arch must match, and run-qemu boots that machine), how to run QEMU
(tools/run-qemu options) and what the run must produce: the runner's verdict, regexes that
must match, must not match, must match an exact number of times, and must match in order. Regexes apply to the whole log
with re.MULTILINE, so ^ and $ anchor lines. The serial log is kept at
DIR/<case>.log (default BUILD/tests/integration/logs); on failure its path is printed with
the failed checks and the log's tail.
"""

import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
RUN_QEMU = os.path.join(SOURCE_DIR, "tools", "run-qemu")

# run-qemu's exit statuses
PASS, FAIL, TIMEOUT, ERROR = 0, 1, 2, 3

# Keel's log tags warnings and errors with their level ("W keel: vm x stopped: ...",
# "E keel: error: ..."; kernel/log.c). Patterns below are written for "^keel: " and accept
# the tag there.
LEVEL_TAG = r"(?:[EWD] )?"


def tagged(pat):
    return pat.replace("^keel: ", "^" + LEVEL_TAG + "keel: ")


def vm_stopped(name, reason, detail=""):
    return r"^keel: vm %s stopped: %s: %s" % (re.escape(name), re.escape(reason), detail)


def vm_exited(name, code=0):
    return vm_stopped(name, "exit", r"code %d$" % code)


def guest_line(vm, text_re):
    return r"^\[%s\] %s" % (re.escape(vm), text_re)


def summary_line(vm, ok=True):
    return r"^keel:   %s: .*%s$" % (re.escape(vm), "ok" if ok else "UNEXPECTED")


# Lines no test run may contain: a guest reporting a failed check, Keel panicking.
NEVER = [
    r"^\[[^\]]+\] .*FAIL",
    r"(?i)^keel: .*\bpanic",
]

# For cases that run VMs: Keel refusing the config or panicking ends the run at once (the
# checks then fail on what is missing) rather than at the timeout.
REFUSED = r"^keel: (?:error|panic): .*\n"

# The guests every architecture runs, as VM (name, lines it must print in this order, its stop
# line), for guest RAM at `base` (x86_64: 0, arm64: 0x40000000) and the privilege level the
# hello guest reports (x86_64: "CPL 0", arm64: "EL1"). The configs give hello 2 MiB, hc 6 MiB,
# ramtest 32 MiB and outside 4 MiB (which reads RAM end + 0x1000).
def common_guests(base, level, unknown_hc=-38):
    return {
        "hello": ("hello", [
            guest_line("hello", r"Hello from a Keel guest! 2 MiB of RAM, running at %s\.$" % level),
            guest_line("hello", r"Hello again, via the print hypercall\.$"),
            guest_line("hello", r"Goodbye\.$"),
        ], vm_exited("hello")),
        "hc": ("hc", [
            guest_line("hc", r"ok: VERSION = 1$"),
            guest_line("hc", r"printed by KEEL_HC_PRINT$"),
            guest_line("hc", r"ok: PRINT too long = -7$"),
            guest_line("hc", r"ok: VM_INFO too small = -22$"),
            guest_line("hc", r"ok: VM_INFO ram_base = %d$" % base),
            guest_line("hc", r"vm_info: name=hc id=\d+ ram_size=0x600000$"),
            guest_line("hc", r"ok: unknown hypercall 0x1234 = %d$" % unknown_hc),
            guest_line("hc", r"hypercalls: all \d+ checks passed$"),
        ], vm_exited("hc")),
        "ramtest": ("ramtest", [
            # from the end of the image (loaded at base + 1 MiB) to the end of RAM
            guest_line("ramtest", r"ramtest: RAM size 0x2000000, testing \[0x%x[0-9a-f]{5}, 0x%x\)"
                       % ((base + 0x100000) >> 20, base + 0x2000000)),
            guest_line("ramtest", r"ramtest: pattern 1 ok$"),
            guest_line("ramtest", r"ramtest: pattern 2 ok$"),
            guest_line("ramtest", r"ramtest: all \d+ bytes ok$"),
        ], vm_exited("ramtest")),
        "outside": outside_guest("outside", base + 0x401000, "beyond the end", base + 0x400000),
    }


def outside_guest(vm, target, where, edge):
    """An outside guest reading `target`, which is `where` ("beyond the end" / "below the
    start") of RAM at `edge`: Keel must stop it with outside-ram, naming the address."""
    return (vm, [guest_line(vm, r"outside: reading 0x%x, %s of RAM at 0x%x$" % (target, where,
                                                                                  edge))],
            vm_stopped(vm, "outside-ram", r".*0x0*%x" % target))


# VMs of svm_guests (x86_64), in config order.
X86_COMMON = common_guests(0, "CPL 0")
SVM_GUESTS = [
    X86_COMMON["hello"],
    ("cpuid", [
        guest_line("cpuid", r"ok: ELF image linked at 0x200000 runs there$"),
        guest_line("cpuid", r"ok: 0x40000000 EBX,ECX,EDX = \"KeelKeelKeel\"$"),
        guest_line("cpuid", r"cpuid: all 9 checks passed$"),
    ], vm_exited("cpuid")),
    X86_COMMON["hc"],
    X86_COMMON["ramtest"],
    X86_COMMON["outside"],
    ("triple", [
        guest_line("triple", r"triplefault: executing ud2 with no IDT$"),
    ], vm_stopped("triple", "triple-fault")),
    ("ioport", [
        guest_line("ioport", r"ioport: 60 accesses to ports 0x2f8 and 0x1234 ok$"),
    ], vm_exited("ioport")),
    ("user", [
        guest_line("user", r"usermode: at CPL 0, switching to ring 3$"),
        guest_line("user", r"usermode: now at CPL 3, executing VMMCALL$"),
    ], vm_stopped("user", "bad-hypercall")),
]

# VMs of arm64_guests, in config order: RAM starts at 0x40000000; besides the common guests
# two more reads that are neither RAM nor a device (above 4 GiB, below RAM) and the bench.
ARM64_RAM_BASE = 0x40000000
# arm64: an unknown hypercall is an unknown SMCCC function ID, NOT_SUPPORTED (-1).
ARM64_COMMON = common_guests(ARM64_RAM_BASE, "EL1", unknown_hc=-1)
ARM64_GUESTS = [
    ARM64_COMMON["hello"],
    ARM64_COMMON["hc"],
    ARM64_COMMON["ramtest"],
    ARM64_COMMON["outside"],
    outside_guest("outside-high", 0x100000000, "beyond the end", ARM64_RAM_BASE + 0x400000),
    outside_guest("outside-low", 0x20000000, "below the start", ARM64_RAM_BASE),
    ("psci", [guest_line("psci", r"ok: smc MIGRATE_INFO_TYPE = 2$"),
              guest_line("psci", r"ok: hvc CPU_ON\(1, entry outside RAM\) = -9$"),
              guest_line("psci", r"ok: hvc vCPU 1 DAIF masked = 960$"),
              guest_line("psci", r"ok: smc CPU_ON\(1\) = 0$"),
              guest_line("psci", r"psci: second vCPU started twice and turned itself off$"),
              guest_line("psci", r"psci: all checks passed; SYSTEM_OFF through smc$")],
     vm_stopped("psci", "poweroff", r"PSCI SYSTEM_OFF")),
    ("bench", [guest_line("bench", r"bench: counter CNTVCT_EL0 at \d+ Hz$")] +
     [guest_line("bench", r"bench: %s iterations=1000 total=\d+ avg=\d+\.\d{3}$" % loop)
      for loop in ("baseline", "hvc", "mmio")], vm_exited("bench")),
]


# The adversarial suite (cases hostile_* and arm64_hostile_*; docs/testing.md): each boot runs
# hostile guests beside the witness, which fills its RAM with a pattern, checks and rewrites it
# 64 times and must exit 0: whatever the others did, its memory and its progress were intact.
WITNESS = ("witness", [
    guest_line("witness", r"witness: \d+ KiB at 0x[0-9a-f]+\.\.0x[0-9a-f]+, 64 rounds$"),
    guest_line("witness", r"witness: round 32 ok$"),
    guest_line("witness", r"witness: all 64 rounds ok, \d+ words checked$"),
], vm_exited("witness"))


def hostile_hc_vm(end):
    """hostile_hc in 8 MiB of RAM ending at `end`: the sweep, the RAM-edge PRINT, all checks."""
    return ("hc", [
        guest_line("hc", r"hostile_hc: swept hypercalls 0\.\.1100 and 16 huge numbers: 0 wrong, "
                   r"0 with argument registers changed$"),
        guest_line("hc", r"hostile_hc: printed from the last bytes of RAM$"),
    ] + ([guest_line("hc", r"hostile_hc: printed from the live PML4$"),
          guest_line("hc", r"hostile_hc: still running on its own page tables$")]
         if end == 0x800000 else []) +
        [guest_line("hc", r"hostile_hc: all \d+ checks passed$")], vm_exited("hc"))


HOSTILE_HC = [WITNESS, hostile_hc_vm(0x800000), (
    "hc-user", [guest_line("hc-user", r"hostile_hc_user: at CPL 3, calling EXIT\(0\)")],
    vm_stopped("hc-user", "bad-hypercall", r"hypercall 2 from user mode \(CPL 3\)"))]
ARM64_HOSTILE_HC = [WITNESS, hostile_hc_vm(ARM64_RAM_BASE + 0x800000)]


def hostile_hlt_vm(name, text, stop):
    return (name, [guest_line(name, r"hostile_hlt: " + text)], vm_stopped(name, "halted", stop))


HOSTILE_VIRT = [
    WITNESS,
    ("virt", [guest_line("virt", r"hostile_virt: 21 instructions at CPL 0: #UD each$"),
              guest_line("virt", r"hostile_virt: at CPL 3: \d+ #UD, \d+ #GP for 20 instructions$"),
              guest_line("virt", r"hostile_virt: all \d+ checks passed$")], vm_exited("virt")),
    ("df", [guest_line("df", r"hostile_df: exception handlers in a page that is not present")],
     vm_stopped("df", "triple-fault")),
    ("df-gates", [guest_line("df-gates", r"hostile_df: IDT gates not present, executing ud2$")],
     vm_stopped("df-gates", "triple-fault")),
    hostile_hlt_vm("hlt", r"cli; hlt$", r"HLT at rip 0x[0-9a-f]+ with interrupts disabled"),
    hostile_hlt_vm("hlt-sti", r"sti; hlt with no interrupt source$",
                   r"HLT at rip 0x[0-9a-f]+ with interrupts enabled"),
]
ARM64_HOSTILE_VIRT = [
    WITNESS,
    ("virt", [guest_line("virt", r"hostile_virt: 37 SMC and HVC calls with unknown ids answered$"),
              guest_line("virt", r"hostile_virt: 8 EL0 and exception-return checks done$"),
              guest_line("virt", r"hostile_virt: 768 set/way cache operations done$"),
              guest_line("virt", r"hostile_virt: all \d+ checks passed$")], vm_exited("virt")),
    hostile_hlt_vm("hlt", r"wfi with interrupts masked and no timer$", r"WFI with no interrupt"),
    ("a32", [guest_line("a32", r"hostile_a32: 128M-iteration A32 loop at EL0 ran through"),
             guest_line("a32", r"hostile_a32: A32 and T32 WFI at EL0 trapped to Keel and stepped"),
             guest_line("a32", r"hostile_a32: WFI until the timer was due: woke up at most 50"),
             guest_line("a32", r"hostile_a32: all 4 checks passed$")], vm_exited("a32")),
]

HOSTILE_FETCH = [
    WITNESS,
    ("fetch", [guest_line("fetch", r"hostile_fetch: CPUID, hypercall, RDMSR, OUT, IN at a page "
                          r"end stepped over exactly$"),
               guest_line("fetch", r"hostile_fetch: all 11 checks passed$")], vm_exited("fetch")),
    ("fetch-outside", [guest_line("fetch-outside", r"hostile_fetch: jumping to 402000")],
     vm_stopped("fetch-outside", "outside-ram",
                r"instruction fetch at guest-physical 0x10000000, outside its 8 MiB")),
    ("string-io", [guest_line("string-io", r"hostile_fetch: rep outsb up$"),
                   guest_line("string-io", r"hostile_fetch: rep outsb down$"),
                   guest_line("string-io", r"hostile_fetch: fs: addr32 rep outsb$"),
                   guest_line("string-io", r"<PF>$"),
                   guest_line("string-io", r"hostile_fetch: string I/O: all 9 checks passed$")],
     vm_exited("string-io")),
]


def hostile_mmio_vm(name, then, stop):
    """hostile_mmio: the PL011 sweep, then `then`, ending in stop line `stop`."""
    return (name, [guest_line(name, r"hostile_mmio: \d+ PL011 reads and writes at every offset "
                              r"and width: as expected$"), guest_line(name, then)], stop)


ARM64_HOSTILE_MMIO = [
    WITNESS,
    hostile_mmio_vm("mmio", r"hostile_mmio: LDP of FR$", vm_stopped(
        "mmio", "bad-instruction", r"device access at 0x9000018 by an instruction without a "
        r"syndrome")),
    hostile_mmio_vm("mmio-fetch", r"hostile_mmio: jumping to the PL011", vm_stopped(
        "mmio-fetch", "outside-ram", r"instruction fetch from 0x9000000 ")),
    hostile_mmio_vm("mmio-straddle", r"hostile_mmio: 8-byte store at the PL011's last word$",
                    vm_stopped("mmio-straddle", "bad-instruction",
                               r"device access of 8 bytes at 0x9000ffc crosses the end of the "
                               r"device")),
]

# Guests booted through the Linux boot path (mklinux.py, `kernel =`), so that they have the
# interrupt controllers: the local APIC and I/O APIC on x86, the GICv3 and PSCI on arm64.
def storm_monitor_case(config, vms, vm, start, progress, **extra):
    """`vms` (the witness first) at once, all pinned to CPU 0; `vm` among them prints `start`
    and then `progress` lines for ever. The witness still ends (exit 0) after `vm` started
    its storm; once it has, and `vm` has shown progress after that, the monitor lists `vm`
    (VM number len(vms)) as running and stops it; the summary expects exactly that."""
    n = len(vms) + 1
    sends = [
        (vm_exited("witness") + r"\n(?:.*\n)*?" + guest_line(vm, progress), "\x1dm"),
        (r"^keel: console: monitor \(type help\)$", "list"),
        (r"^ +%d %s +running " % (n, re.escape(vm)), "stop %s" % vm),
    ]
    stop = r"^keel: vm %s stopped: monitor: stopped from the monitor$" % re.escape(vm)
    case = guests_case(config, vms + [(vm, [guest_line(vm, start), guest_line(vm, progress)],
                                       stop)], sends=sends, **extra)
    case["orders"].append([guest_line(vm, start), vm_exited("witness"), guest_line(vm, progress),
                           r"^  # name +state +vcpus +exits +cpu time share +keel mem stop$",
                           r"^ +%d %s +running +\d+ +\d+ " % (n, re.escape(vm)), stop])
    return case


HOSTILE_LAPIC = [WITNESS, ("lapic", [guest_line("lapic", "hostile_lapic: " + t) for t in (
    r"TSC deadline in the past 3000 times: 3000 interrupts with interrupts on, 1 with them off$",
    r"3000 IPIs to self with EOI: 3000 interrupts$",
    r"3000 IPIs to all including self with EOI: 3000 interrupts$",
    r"3000 self-IPIs without EOI: 1 interrupt, 1 more per EOI$",
    r"all 224 vectors at once without EOI: one per EOI, highest first$",
    r"sti; hlt; cli with the TSC deadline 3000 to 192000 ticks ahead, 64 times: 64 interrupts "
    r"in 64 HLTs$",
    r"CR8 and TPR agree both ways; CR8 masks by class$",
    r"NMIs: self, own ID, all: at once; 3000 sent in the handler: 1 after its IRET; 3000 in a "
    r"loop: 3000$",
    r"sti; out and sti; rep outsb with an interrupt pending, 100 times each: taken right after "
    r"the port write \(rep outsb: [0-2] late, at most 2 allowed\)$",
    r"out; sti; hlt with an IPI pending, 50 times: 50 IPIs, [0-5] taken before the HLT \(at most "
    r"5 allowed\)$",
    r"8259 through LINT0: 3000 IRQ 11 pulses: 3000 interrupts; level IRQ 11 held high: one per "
    r"EOI until lowered; none while LINT0 is masked$",
    r"all 55 storm checks passed$")], vm_exited("lapic"))]


def apic_edge_vm(name, text, stop):
    return (name, [guest_line(name, r"hostile_apic_regs: " + text)], stop)


HOSTILE_APIC_REGS = [
    WITNESS,
    ("regs", [guest_line("regs", "hostile_apic_regs: " + t) for t in (
        r"LAPIC: 16373 reads \(47 of registers\), 32746 garbage writes at every offset and "
        r"width$",
        r"LAPIC still delivers a self-IPI after the garbage$",
        r"I/O APIC: 373 reads, 487 garbage writes at every offset, width and register$",
        r"all \d+ checks passed$")], vm_exited("regs")),
    apic_edge_vm("ioapic-gap", r"4-byte read at 0xfec00020$", vm_stopped(
        "ioapic-gap", "outside-ram", r"read at guest-physical 0xfec00020, outside its 8 MiB")),
    apic_edge_vm("ioapic-end", r"4-byte read at 0xfec0001e$", vm_stopped(
        "ioapic-end", "bad-instruction", r"cannot emulate the device access at 0xfec0001e ")),
    # Split as the CPU splits it: the LAPIC's 4 bytes, then the next page, where nothing
    # is (unbacked = stop).
    apic_edge_vm("lapic-end", r"8-byte read at 0xfee00ffc$", vm_stopped(
        "lapic-end", "outside-ram", r"read at guest-physical 0xfee01000, outside its 8 MiB of "
        r"RAM \(instruction at rip")),
]


ARM64_HOSTILE_GIC = [WITNESS, ("gic", [guest_line("gic", "hostile_gic: " + t) for t in (
    r"38400 reads and 76800 garbage writes at every aligned offset and width of the GICD and "
    r"GICR register pages$",
    r"2000 SGIs to itself: 2000 interrupts$",
    r"virtual timer with CVAL 0 2000 times: 2000 interrupts$",
    r"virtual timer with a 25 ms handler 5 times: 5 interrupts$",
    r"PSCI CPU_ON at both edges of RAM ran vCPU 1; misaligned, outside RAM and unknown MPIDRs "
    r"refused$",
    r"2000 SGIs to vCPU 1: it took between 1 and 2000, and the last one$",
    r"all 23 checks passed$")], vm_exited("gic"))]


HOSTILE_PT = [
    WITNESS,
    ("pt", [guest_line("pt", "hostile_pt: " + t) for t in (
        r"CPUID, RDMSR, OUT, LAPIC and I/O APIC accesses at a page end through 3 page-table "
        r"loops: as expected$",
        r"reserved bits at every level, TLB flushed or not: #PF P\|RSVD as the CPU gives it$",
        r"the same from compatibility mode: as expected$",
        r"paging off: CPUID and LAPIC loads at a page end, through a segment base wrapping at "
        r"4 GiB: as expected$",
        r"32-bit PAE paging through a PD pointing at itself: CPUID and a LAPIC load at a page "
        r"end as expected$",
        r"all \d+ checks passed$")], vm_exited("pt")),
    ("pt-lapic", [guest_line("pt-lapic", r"hostile_pt: load through a page table at 0xfee00000$")],
     vm_stopped("pt-lapic", "outside-ram", r"its page tables point at guest-physical 0xfee00000, "
                r"device memory outside its RAM")),
    ("pt-outside", [guest_line("pt-outside", r"hostile_pt: load through a page table at "
                               r"0x10000000$")],
     vm_stopped("pt-outside", "outside-ram", r"page-table access \(its page tables point there\) "
                r"at guest-physical 0x10000000, outside its 8 MiB of RAM")),
    ("pt-stale", [guest_line("pt-stale", r"hostile_pt: CPUID with its page table moved to the "
                             r"LAPIC page")],
     vm_stopped("pt-stale", "outside-ram", r"its page tables point at guest-physical "
                r"0xfee0000[08], .*outside its RAM")),
    ("pt-loop-outside", [guest_line("pt-loop-outside", r"hostile_pt: load through the "
                                    r"self-referencing PML4")],
     vm_stopped("pt-loop-outside", "outside-ram", r"read at guest-physical 0x10000000, outside "
                r"its 8 MiB of RAM")),
]


HOSTILE_APIC_SMP = [WITNESS, ("smp", [
    r"^keel: vm smp: vCPU 1 started \(SIPI vector 0x0?8\)$"] + [
    guest_line("smp", "hostile_apic_smp: " + t) for t in (
        r"vCPU 1 started through INIT-SIPI-SIPI, in long mode$",
        r"2000 IPIs each way at once: each vCPU took between 1 and 2000, and the last one$",
        r"both vCPUs wrote the same redirection entries 2000 times each; all masked again "
        r"afterwards$",
        r"\d+ reads through a PTE flipped 8000 times between the LAPIC and RAM: only their "
        r"values$",
        r"4000 NMIs to vCPU 1 halted with interrupts off: it took between 1 and 4000, the "
        r"sender none, and one more after them once$",
        r"all 33 checks passed$")], vm_exited("smp"))]


def hostile_msr_vm(name, kind):
    """hostile_msr as VM `name`, a `kind` VM ("flat" or "Linux (LAPIC)"): every part's line."""
    apic = (r"IA32_APIC_BASE: move, x2APIC, BSP, reserved bits: #GP; disable and enable: LAPIC "
            r"reset, self-IPI delivered$" if kind != "flat" else r"no APIC: IA32_APIC_BASE #GP$")
    return (name, [guest_line(name, "hostile_msr: " + t) for t in (
        re.escape(kind) + r" VM on (?:AMD|Intel)$",
        r"CPUID hides MONITOR, VMX, SVM, x2APIC, RDPRU and MPX \(leaf 0xD (?:consistent|absent)\)$",
        r"MONITOR, MWAIT, MONITORX, MWAITX, RDPRU: #UD; RDPMC: #GP$",
        r"EFER: SVME, 14 reserved bits, LME cleared in long mode: #GP; NXE, SCE kept$",
        r"PAT reserved types: #GP; TSC written and read back by RDMSR and RDTSC$",
        r"30 SVM and VMX control MSRs: #GP on read and write; VM_CR " +
        (r"#GP$" if kind == "flat" else r"reads 0, writes ignored$"),
        r"non-canonical FS_BASE, GS_BASE, KERNEL_GS_BASE, LSTAR, CSTAR, SYSENTER_ESP/EIP ",
        apic,
    ) + ((r"IA32_MISC_ENABLE: writable bits kept, read-only bits as they were, reserved bits "
          r"#GP$",) if kind != "flat" else ()) + (
        r"swept 27832 MSRs \(3000 random\): \d+ values, \d+ #GP, nothing else$",
        r"\d+ written back, garbage \d+ accepted / \d+ #GP; \d+ garbage writes to absent "
        r"MSRs: #GP each$",
        r"all \d+ checks passed$")], vm_exited(name))


HOSTILE_MSR = [WITNESS, hostile_msr_vm("msr", "flat"), hostile_msr_vm("msr-apic", "Linux (LAPIC)")]


def hostile_virtio_case(config, arch="x86_64", **extra):
    """hostile_virtio beside the witness: a line per check with the device's answer (the
    guest compares each with what it expects and prints FAIL otherwise), these ones checked
    here too; the console gets exactly the first 64 KiB (1024 lines) of a 128 KiB transmit
    chain; a notification of 128 requests is served in two pieces (the first one's interrupt
    is taken with 64 used). On x86 also the two-vCPU race. Keel's
    own warning "driver set FAILED" is expected, so only guest lines may not say FAIL."""
    v = lambda t: guest_line("virtio", "hostile_virtio: " + t)
    lines = [v(t) for t in (
        r"DRIVER_OK before FEATURES_OK: refused$",
        r"QueueReady before FEATURES_OK: refused$",
        r"FEATURES_OK with a feature not offered \(bit 0\): not kept$",
        r"INDIRECT_DESC accepted after FEATURES_OK, then used: needs reset$",
        r"QueueNum 0: refused$",
        r"QueueNum 256: refused$",
        r"descriptor table wrapping 2\^64: QueueReady refused$",
        r"rings on the device's own registers: QueueReady refused$",
        r"QueueNum written while the queue is ready: refused$",
        r"descriptor table, driver and device ring on one page: needs reset$",
        r"notify before DRIVER_OK: ignored$",
        r"notify of queue 4294967295 \(none\): ignored$",
        r"notify after a reset with a request posted: ignored$",
        r"console: device-writable buffer on the transmit queue: needs reset$",
        r"console: 128 KiB in one transmit chain: completed OK$",
        r"chain: chain 0 -> 1 -> 0: needs reset$",
        r"chain: buffer wrapping 2\^64: needs reset$",
        r"chain: nested indirect table: needs reset$",
        r"chain: indirect chain 0 -> 1 -> 2 -> 0: needs reset$",
        r"chain: indirect table of length 0: needs reset$",
        r"avail->idx moved by 1000 at once: needs reset$",
        r"disk of 128 sectors$",
        r"read at sector 2\^64 - 1: completed IOERR$",
        r"read longer than the disk: completed IOERR$",
        r"unknown request type 99: completed UNSUPP$",
        r"a good request at the end: completed OK$")]
    counts = {r"^\[virtio\] hostile_virtio: flood x{41}$": 1024,
              guest_line("virtio", r"hostile_virtio: through virtio-console$"): 1}
    lines += [v(t) for t in (
        r"128 requests in one notification: used when its interrupt came: 64$",
        r"128 requests in one notification: used when the store completed: 128$")]
    if arch == "x86_64":
        lines += [r"^keel: vm virtio: vCPU 1 started \(SIPI vector 0x0?8\)$"] + [v(t) for t in (
            r"3000 notifications while vCPU 1 rewrote the rings \d+ times: \d+ with used "
            r"elements, \d+ times NEEDS_RESET$",
            r"a good request after the race: completed OK$")]
    lines.append(v(r"all \d+ checks passed$"))
    case = guests_case(config, [WITNESS, ("virtio", lines, vm_exited("virtio"))], counts=counts,
                       arch=arch, **extra)
    case["must_not"] = [r"UNEXPECTED", r"^keel: error: ", r"^\[[^\]]+\] .*FAIL"]
    return case


# arm64_arch: the architecture as a guest sees it (timers, aborts, SMCCC, ID registers, PMU
# and debug registers), beside the witness.
ARM64_ARCH = [WITNESS, ("timers", [guest_line("timers", "timers: " + t) for t in (
    r"physical timer registers hold their values, TVAL = CVAL - CNTPCT$",
    r"physical timer polled: ISTATUS set after CVAL$",
    r"virtual timer: 1 interrupt through PPI 27$",
    r"physical timer: 1 interrupt through PPI 30$",
    r"virtual timer: PPI 27 pending exactly while the timer's output is asserted$",
    r"physical timer: PPI 30 pending exactly while the timer's output is asserted$",
    r"all \d+ checks passed$")], vm_exited("timers")),
    ("aborts", [guest_line("aborts", "aborts: " + t) for t in (
        r"load from 0x20000000: data abort, DFSC 0x10, FAR 0x20000000$",
        r"load from 0x100000000: data abort, DFSC 0x10, FAR 0x100000000$",
        r"store to 0x40201000: data abort, DFSC 0x10, FAR 0x40201000$",
        r"fetch from 0x48000000: instruction abort, IFSC 0x10, FAR 0x48000000$",
        r"fetch from 0x9000000: instruction abort, IFSC 0x10, FAR 0x9000000$",
        r"all \d+ checks passed$")], vm_exited("aborts")),
    ("idregs", [guest_line("idregs", "idregs: " + t) for t in (
        r"hidden fields read 0, PARange [0-5]$",
        r"17 accesses to hidden features' registers: undefined instruction$",
        r"all \d+ checks passed$")], vm_exited("idregs"))] + [
    ("dbg-" + role, [guest_line("dbg-" + role, "dbgswitch: " + t) for t in (
        r"%s, tag \d+, \d+ breakpoints and \d+ watchpoints set$" % role,
        r"%s: 0 foreign register values in \d+ rounds, descheduled [1-9]\d* times, 0 "
        r"breakpoint exceptions$" % role,
        r"all 3 checks passed$")], vm_exited("dbg-" + role)) for role in ("setter", "victim")] + [
    ("sve-" + v, [guest_line("sve-" + v, "sveswitch: " + t) for t in (
        r"tag \d+, vector length \d+ bytes, Z0-Z31 and P0-P15 set$",
        r"0 foreign bytes in \d+ rounds, descheduled [1-9]\d* times$",
        r"all 2 checks passed$")], vm_exited("sve-" + v)) for v in ("a", "b")]


def vm_orders(vms):
    """Each VM's lines (name, lines, stop line) in order, then its stop line, then the
    summary: the VMs run at once, so only each VM's own lines have an order."""
    return [lines + [stop, r"^keel: summary$"] for _, lines, stop in vms]


def guests_case(config, vms, counts=None, **extra):
    """A case booting `config`, whose VMs (name, lines, stop line) run at once and all end as
    the config expects: each VM's lines before its stop line, all before the summary, which
    says ok for each, in config order, and PASS."""
    seq = [r"^keel: summary$"] + [summary_line(name) for name, _, _ in vms]
    seq.append(r"^keel: result: PASS\b")
    all_counts = {
        r"^keel: vm \S+ stopped: ": len(vms),
        r"^keel:   \S+: .* ok$": len(vms),
        r"^keel: result: ": 1,
    }
    all_counts.update(counts or {})
    return dict(config=config, verdict=PASS, timeout=240, order=seq, orders=vm_orders(vms),
                counts=all_counts,
                must_not=[r"UNEXPECTED", r"^keel: error: ", r"FAIL"], fail_on=REFUSED, **extra)


def sdk_hello_vm(vm):
    """sdk_hello (the guest SDK's example, docs/guest-sdk.md) as VM `vm`: every line, exact."""
    lines = [
        r"sdk_hello: hello from VM %s, argc 1$" % re.escape(vm),
        r"sdk_hello: printf: -42 keel beef 3\.250000 \[  7\|7  \] %$",
        r"sdk_hello: qsort: 1 2 3 5 8 13 21 34$",
        r"sdk_hello: strtol: -1234 127 ERANGE$",
        r"sdk_hello: malloc: 64 blocks, 2080000 bytes, intact; freed; then 2000000 bytes ok; "
        r"RAM size: NULL, ENOMEM$",
        r"sdk_hello: unaligned loads and stores: ok$",
        r"sdk_hello: math: sqrt\(2\) = 1\.414214, sin\(pi/6\) = 0\.500000, exp\(1\) = "
        r"2\.718282, pow\(2, 10\) = 1024$",
        r"sdk_hello: TLS: 42$",
        r"sdk_hello: snprintf: \"x=0042 y=ff\"$",
        r"sdk_hello: all \d+ checks passed$",
    ]
    return (vm, [guest_line(vm, l) for l in lines], vm_exited(vm))


def sdk_case(arch="x86_64"):
    """sdk.cfg / arm64_sdk.cfg: guests built with the guest SDK. The example as a flat image
    and as an ELF; exit(7) after an atexit handler, the unterminated last line flushed; abort() (134); a
    stack that does not fit refused by the runtime with its message and exit code 126."""
    vms = [
        sdk_hello_vm("sdk-hello"),
        sdk_hello_vm("sdk-elf"),
        ("example", [guest_line("example", r"hello from VM example: -5 text 0xff 2\.500$"),
                     guest_line("example", r"sorted: 3 7 19 42$"),
                     guest_line("example", r"strtol: -123, malloc: on the heap, sqrt\(2\) = "
                                r"1\.414214, sin\(1\) = 0\.841471$")], vm_exited("example")),
        ("sdk-exit", [guest_line("sdk-exit", r"sdk_exit: calling exit\(7\)$"),
                      guest_line("sdk-exit", r"sdk_exit: atexit handler ran$"),
                      guest_line("sdk-exit", r"sdk_exit: this line has no newline$")],
         vm_exited("sdk-exit", 7)),
        ("sdk-abort", [guest_line("sdk-abort", r"sdk_abort: calling abort\(\)$"),
                       guest_line("sdk-abort", r"keel-sdk: terminated by signal "
                                  r"0x0000000000000006$")],
         vm_exited("sdk-abort", 134)),
        ("sdk-nofit", [guest_line("sdk-nofit", r"keel-sdk: the image and its stack \(STACK_SIZE "
                                  r"of keel_add_guest\) do not fit in the VM's RAM: raise "
                                  r"`memory =` in the VM's config$")],
         vm_exited("sdk-nofit", 126)),
    ]
    case = guests_case("sdk.cfg" if arch == "x86_64" else "arm64_sdk.cfg", vms,
                       counts={guest_line("sdk-nofit", r"sdk_exit"): 0})
    if arch != "x86_64":
        case["arch"] = arch
    return case


def x86state_case():
    """x86state.cfg: two msrswitch VMs on one CPU start with reset values and keep their own
    registers (each ran in several runs, so the other ran in between), and archcheck gets #GP for every refused
    XCR0, PAT and EFER value and has its WBINVD and INVD (4 each) counted as cache flushes."""
    switch = [(vm, [guest_line(vm, r"msrswitch: tag \d+, \d+ registers "),
                    guest_line(vm, r"msrswitch: all \d+ registers kept their values over "
                                   r"\d+ loops$")], vm_exited(vm)) for vm in ("switch-a", "switch-b")]
    arch = ("archcheck", [guest_line("archcheck", r"ok: WRMSR PAT 7040600070402: #GP$"),
                          guest_line("archcheck", r"ok: WRMSR EFER LME clear in long mode "),
                          guest_line("archcheck", r"archcheck: 4 WBINVD and 4 INVD completed$"),
                          guest_line("archcheck", r"archcheck: all \d+ checks passed$")],
            vm_exited("archcheck"))
    # nothing behind an address: a PC's answer (unbacked = abort), logged once
    unbacked = ("unbacked", [
        r"^keel: vm unbacked: read of 1 bytes at guest-physical 0x0*401000 \(outside RAM and "
        r"devices\): all ones, as on a PC \(first such access",
        guest_line("unbacked", r"unbacked: 3 addresses read all ones, writes dropped, RAM "
                   r"intact$"),
        guest_line("unbacked", r"unbacked: \d+ read-modify-write and compare runs and 12 string "
                   r"instructions as on RAM$")], vm_exited("unbacked"))
    # the same with a LAPIC register (a Linux-wrapped guest: it has the platform's LAPIC)
    unbacked_lapic = ("unbacked-lapic", [
        guest_line("unbacked-lapic", r"unbacked: \d+ read-modify-write and compare runs and 17 "
                   r"string instructions as on RAM$")], vm_exited("unbacked-lapic"))
    step = ("singlestep", [guest_line("singlestep", r"ok: CPUID: one #DB at "),
                           guest_line("singlestep", r"singlestep: 6 instructions, one #DB trap "
                                      r"after each$")], vm_exited("singlestep"))
    several_runs = r"\d+ ms of CPU in (?:[2-9]|\d\d+) runs$"
    return guests_case("x86state.cfg", switch + [arch, unbacked, unbacked_lapic, step], counts={
        r"^keel: vm unbacked: .*\(outside RAM and devices\)": 1,  # the first access only
        r"^keel: vm switch-a: \d+ exits .*" + several_runs: 1,
        r"^keel: vm switch-b: \d+ exits .*" + several_runs: 1,
        r"^keel: vm archcheck: \d+ exits \(.*\bcache-flush 8\b": 1,
    }, cpu="qemu64,+svm,+npt,+rdtscp")


def smp_case(case, cpus):
    """`case` on `cpus` CPUs: each secondary reports itself up, exactly once, in index order
    (MPIDR affinity 0 = index on QEMU virt), then the boot CPU counts them all, before the
    first VM starts; no CPU is reported left out."""
    # QEMU virt: 16 CPUs per Aff1 cluster with GICv3 (CPU 17 is MPIDR 0x101)
    ups = [r"^keel: cpu %d up \(MPIDR 0x0*%x\)$" % (i, (i // 16) << 8 | i % 16)
           for i in range(1, cpus)]
    case = dict(case, smp=cpus)
    case["order"] = ups + [r"^keel: %d CPUs online$" % cpus, r"^keel: vm \S+: starting$"] + \
        case["order"]
    case["counts"] = dict(case["counts"], **{r"^keel: cpu \d+ up ": cpus - 1,
                                             r"^keel: \d+ CPUs? online$": 1})
    case["must_not"] = case["must_not"] + [r"^keel: cpu MPIDR .* (not started|left out)"]
    return case


def many_vms_case(arch="x86_64", cpus=4):
    """many_vms.cfg: 64 VMs at once, each the ramtest guest on 2 MiB checking its own RAM; all
    exit 0 and the summary says ok for each; the VM table frees every VM's structures (the
    memory free at the end is what it was before the first VM was built)."""
    base = 0 if arch == "x86_64" else ARM64_RAM_BASE
    vms = [("r%02d" % i, [
        guest_line("r%02d" % i, r"ramtest: RAM size 0x200000, testing \[0x%x[0-9a-f]{5}, 0x%x\)"
                   % ((base + 0x100000) >> 20, base + 0x200000)),
        guest_line("r%02d" % i, r"ramtest: pattern 1 ok$"),
        guest_line("r%02d" % i, r"ramtest: pattern 2 ok$"),
        guest_line("r%02d" % i, r"ramtest: all \d+ bytes ok$")], vm_exited("r%02d" % i))
        for i in range(1, 65)]
    case = guests_case("many_vms.cfg", vms, arch=arch, smp=cpus)
    case["timeout"] = 900
    case["must"] = case.get("must", []) + [r"^keel: result: PASS \(64 VMs as expected\)$"]
    return case


def wx_case(fault, arch, order):
    """A debug fault in keel-debug.efi (cases wx_*): Keel's panic report names the fault."""
    case = dict(
        config="wx_%s.cfg" % fault,
        efi="keel-debug.efi",
        until=r"^keel: panic: .*system halted\n",
        verdict=PASS,
        timeout=120,
        allow_panic=True,
        order=[r"^\[fault\] asking Keel for debug fault \d$"] + order,
        must_not=[r"^keel: vm fault stopped", r"debug fault \d+ did not fault"],
    )
    if arch == "x86_64":
        case["cpu"] = "qemu64,+svm,+npt,+smep,+smap,+rdrand"
        case["must"] = [r"^keel: W\^X: .*NX; .*SMEP on, SMAP on$",
                        r"^keel: stack-protector canary from the CPU's random number instruction$"]
    else:
        case["arch"] = "arm64"
        case["must"] = [r"^keel: W\^X: .*SCTLR_EL2\.WXN on; .*PAN on$",
                        r"^keel: stack-protector canary from the CPU's random number instruction$"]
    return case


def smp_host_case(cpus=4):
    """-smp 4 (8, 16): the boot CPU starts the others (each reports once, whole lines, before
    the first VM), says they are all online, and the VMs still run and pass."""
    vms = [X86_COMMON["hello"], X86_COMMON["hc"], X86_COMMON["ramtest"]]
    up = [r"^keel: cpu %d up \(APIC id \d+\)$" % i for i in range(1, cpus)]
    case = guests_case("smp_host.cfg", vms, counts={
        r"^keel: cpu \d+ up \(APIC id \d+\)$": cpus - 1, r"^keel: \d+ CPUs? online": 1},
        smp=cpus)
    case["order"] = up + [r"^keel: %d CPUs online \(%d in the ACPI MADT\)$" % (cpus, cpus),
                          r"^keel: vm hello: starting$"] + case["order"]
    if cpus > 4:
        case["timeout"] = 600
    case["must_not"] = case["must_not"] + [r"did not answer", r"cannot start the other CPUs"]
    return case


def pci_case(arch="x86_64"):
    """--pci-storage (tools/run-qemu): Keel's `keel: pci` lines name the segment from the
    MCFG, the NVMe (class 010802, a 64-bit BAR0, MSI-X 65 in BAR0, PCIe), the virtio-blk-pci
    on the root bus (its virtio capabilities) and the one behind the root port (found on the
    port's secondary bus, modern 1af4:1042), the port's bus range; the NVMe driver takes the
    controller (model, serial, namespace size, its queues and completion mode: MSI-X on x86,
    polled on arm64; the scratch self-test's write, flush and read back; 32 requests in
    flight, with the completions taken in the interrupt handler on x86), the virtio-blk-pci
    driver takes both virtio disks (geometry; the scratch self-test on the root bus's, whose
    block 0 has the magic; a read of the other's block 0); the total; Keel still runs its VM."""
    hello = (X86_COMMON if arch == "x86_64" else ARM64_COMMON)["hello"]
    dev = r"^keel: pci 0000:([0-9a-f]{2}):([0-9a-f]{2})\.0 "
    case = guests_case("pci.cfg", [hello], arch=arch, pci_storage=True)
    case["must"] = case.get("must", []) + [
        r"^keel: pci: segment 0 buses 0(x0)?-0xff, ECAM at 0x[0-9a-f]+$",
        dev + r"1b36:0010 class 010802 \(NVMe\) rev 2$",
        dev + r"BAR0 mem64 0x[0-9a-f]+ size 0x4000$",
        dev + r"caps: PCIe [a-z ]*endpoint; MSI-X 65 table BAR0\+0x2000 PBA BAR0\+0x3000",
        r"^keel: pci 0000:00:[0-9a-f]{2}\.0 1af4:1001 class 010000 .* virtio$",
        dev + r"caps: MSI-X 2 table BAR1\+0 PBA BAR1\+0x800; virtio 5@BAR0\+0 "
              r"2@BAR4\+0x3000 4@BAR4\+0x2000 3@BAR4\+0x1000 1@BAR4\+0",
        r"^keel: pci 0000:00:[0-9a-f]{2}\.0 1b36:000c class 060400 \(PCI bridge\)",
        r"^keel: pci 0000:00:[0-9a-f]{2}\.0 bridge to buses 0x1-0x1$",
        r"^keel: pci 0000:00:[0-9a-f]{2}\.0 caps: PCIe root port",
        r"^keel: pci 0000:01:00\.0 1af4:1042 class 010000 .* virtio$",
        r"^keel: pci 0000:01:00\.0 BAR4 mem64 pref 0x[0-9a-f]+ size 0x4000$",
        r"^keel: pci 0000:01:00\.0 caps: PCIe endpoint; MSI-X 2 table BAR1\+0 PBA "
        r"BAR1\+0x800; virtio ",
        r"^keel: pci 0000:[0-9a-f:.]+ taken by driver nvme$",
        r"^keel: nvme 0000:[0-9a-f:.]+: QEMU NVMe Ctrl, serial keel-nvme0, firmware \S+, NVMe "
        r"1\.4, 1 namespace, volatile write cache, 512 KiB per command, 4 I/O queues of 64, " +
        (r"MSI-X vectors 0x30-0x33$" if arch == "x86_64" else
         r"polled \(no device interrupts on this arch\)$"),
        r"^keel: nvme 0000:[0-9a-f:.]+: namespace 1: 32768 blocks of 512 bytes \(16 MiB\)$",
        r"^keel: nvme 0000:[0-9a-f:.]+: scratch namespace 1: wrote, flushed and read back "
        r"blocks 1-16: ok$",
        r"^keel: nvme 0000:[0-9a-f:.]+: in-flight self-test: 32 writes, then 32 reads of blocks "
        r"17-48, up to 32 in flight: ok$",
        # x86: the completions of the in-flight self-test come by MSI-X (a few may be polled
        # after a tick woke the CPU first); arm64 polls
        (r"^keel: nvme 0000:[0-9a-f:.]+: queue 1: [1-9]\d* completions in the interrupt "
         r"handler, \d+ polled; [1-9]\d* interrupts \(MSI-X vectors 0x30-0x33\)$"
         if arch == "x86_64" else
         r"^keel: nvme 0000:[0-9a-f:.]+: queue 1: 0 completions in the interrupt handler, 65 "
         r"polled; 0 interrupts \(polled \(no device interrupts on this arch\)\)$"),
        # the virtio-blk-pci driver (docs/virtio-pci.md) takes both test disks (on arm64 the
        # ESP too): geometry, the scratch self-test on vblk0's disk, only a read on vblk1's
        r"^keel: pci 0000:01:00\.0 taken by driver virtio-blk$",
        r"^keel: virtio-blk 0000:00:[0-9a-f]{2}\.0: vblk\d: 32768 blocks of 512 bytes \(16 MiB\), "
        r"read-write, volatile write cache \(FLUSH\), \d+ segments, \d+ KiB per request, queue "
        r"\d+, polled$",
        r"^keel: virtio-blk 0000:01:00\.0: vblk\d: 32768 blocks of 512 bytes \(16 MiB\), "
        r"read-write, volatile write cache \(FLUSH\), \d+ segments, \d+ KiB per request, queue "
        r"\d+, polled$",
        r"^keel: virtio-blk 0000:00:[0-9a-f]{2}\.0: vblk\d scratch disk: wrote blocks 1-16 \(4 "
        r"requests in flight\), flushed and read back: ok$",
        r"^keel: virtio-blk 0000:01:00\.0: vblk\d block 0 read \(FNV-1a 0x[0-9a-f]+\); not a "
        r"writable scratch disk: nothing written$",
        r"^keel: pci: \d+ functions on 2 buses of 1 segment, %d taken by drivers$" %
        (3 if arch == "x86_64" else 4),
        r"^keel: pci: MSI: " + (r"local APIC messages" if arch == "x86_64" else
                                r"GICv3 ITS at 0x[0-9a-f]+, not programmed by Keel"),
    ]
    case["counts"] = dict(case.get("counts", {}), **{
        # arm64: run-qemu's ESP drive is a virtio-blk-pci on virt too
        r"^keel: pci 0000:[0-9a-f:.]+ 1af4:10(01|42) class": 2 if arch == "x86_64" else 3,
        r"^keel: pci 0000:[0-9a-f:.]+ 1b36:0010 class": 1,
        r"^keel: pci 0000:[0-9a-f:.]+ taken by driver virtio-blk$": 2 if arch == "x86_64" else 3,
        r"^keel: virtio-blk .* scratch disk: .*: ok$": 1,
    })
    case["must_not"] = case["must_not"] + [r"^keel: pci .*left alone", r"unconfigured",
                                           r"^keel: nvme .*(failed|timed out|not used)",
                                           r"^keel: virtio(-blk)? .*(failed|not used|differ)",
                                           r"^keel: pci 0000:[0-9a-f:.]+ 1af4:10(01|42): no "
                                           r"driver",
                                           r"^keel: pci 0000:[0-9a-f:.]+ 1b36:0010: no driver"]
    case["order"] = [r"^keel: pci: segment 0 ", r"^keel: pci: \d+ functions",
                     r"^keel: vm hello: starting$"] + case["order"]
    return case


def monitor_case(config, bad, **extra):
    """VMs at once, two of them never ending by themselves (runaway, storm) and one
    misbehaving (`bad`: name, stop reason), driven through the monitor once spin has counted
    its loops: Ctrl-] m, list, pause and resume storm, start hello again (it exited), stop
    runaway and storm. Everything ends as the config expects."""
    name, reason = bad
    sends = [
        (guest_line("spin", r"spin: \d+ loops in \d+ ticks$"), "\x1dm"),
        (r"^keel: console: monitor \(type help\)$", "list"),
        (r"^ +3 runaway +running ", "pause storm"),
        (r"^keel: monitor: vm storm is paused$", "resume storm"),
        (r"^keel: monitor: vm storm is running$", "start hello"),
        (r"^keel: vm hello stopped: exit: code 0$", "stop runaway"),
        (r"^keel: vm runaway stopped: monitor: ", "stop storm"),
    ]
    return dict(
        config=config, verdict=PASS, timeout=240, sends=sends, fail_on=REFUSED,
        orders=[
            # hello runs twice: at boot, and once more from the monitor after it exited
            [guest_line("hello", r"Goodbye\.$"), vm_exited("hello"),
             r"^keel: monitor: vm hello is running$", guest_line("hello", r"Goodbye\.$"),
             vm_exited("hello"), r"^keel: summary$"],
            [guest_line("spin", r"spin: counting for \d+ counter ticks$"),
             guest_line("spin", r"spin: \d+ loops in \d+ ticks$"), vm_exited("spin"),
             r"^keel: summary$"],
            [guest_line("runaway", r"runaway: looping forever with interrupts off$"),
             r"^keel: vm runaway stopped: monitor: stopped from the monitor$", r"^keel: summary$"],
            [guest_line("storm", r"storm: hypercalls as fast as it can, forever$"),
             r"^keel: monitor: vm storm is paused$", r"^keel: monitor: vm storm is running$",
             r"^keel: vm storm stopped: monitor: ", r"^keel: summary$"],
            [vm_stopped(name, reason), r"^keel: summary$"],
        ],
        order=[r"^keel: console: input to vm hello \(Ctrl-\] \? for help\)$",
               r"^keel: console: monitor \(type help\)$",
               r"^  # name +state +vcpus +exits +cpu time share +keel mem stop$",
               r"^keel: summary$"] +
              [summary_line(n) for n in ("hello", "spin", "runaway", "storm", name)] +
              [r"^keel: result: PASS\b"],
        counts={r"^keel: vm hello stopped: ": 2, r"^keel: result: ": 1},
        must_not=[r"UNEXPECTED", r"^keel: error: ", r"FAIL", r"cannot \w+ vm"],
        **extra)


def raw_console_case(**extra):
    """console = raw (raw_console.cfg): hello, focused, writes unprefixed; spin's output is
    held while hello has the console and comes out, unprefixed, after the switch to it
    (Ctrl-] 2, once hello exited); runaway's is never shown: the test goes to the monitor
    (every VM prefixed again) and stops it."""
    hello = r"^Hello from a Keel guest! \d+ MiB of RAM, running at "
    counting = r"^spin: counting for \d+ counter ticks$"
    counted = r"^spin: \d+ loops in \d+ ticks$"
    sends = [
        (r"^keel: vm hello stopped: exit: code 0$", "\x1d2"),
        (counted, "\x1dm"),
        (r"^keel: console: monitor \(type help\)$", "stop runaway"),
    ]
    return dict(
        config="raw_console.cfg", verdict=PASS, timeout=240, sends=sends, fail_on=REFUSED,
        orders=[
            [hello, r"^Goodbye\.$", vm_exited("hello"), r"^keel: console: input to vm spin\b",
             counting, counted, r"^keel: console: monitor \(type help\)$",
             r"^keel: vm runaway stopped: monitor: stopped from the monitor$",
             r"^keel: summary$", r"^keel: result: PASS\b"],
        ],
        counts={hello: 1, counting: 1, counted: 1},
        # spin's lines after the monitor has the focus are prefixed again: not checked
        must_not=[r"^\[(hello|runaway)\] ", r"^\[spin\] spin: counting", r"runaway: looping",
                  r"UNEXPECTED", r"^keel: error: ", r"FAIL"],
        **extra)


def exit_stats_case(hc_code, pc, **extra):
    """exitloop makes 10000 hypercalls, then more for ever. Through the monitor: `stats
    exitloop` counts at least 10000 hypercall exits (five digits or more, not 0xxxx), `trace
    exitloop on` then `show 4` lists at least one hypercall exit (the arch's code `hc_code`)
    at a pc (`pc`) inside the guest's image; then `stop exitloop`."""
    made = guest_line("exitloop", r"exitloop: 10000 hypercalls made, code at 0x[0-9a-f]+; "
                                  r"more, forever$")
    header = r"^keel: monitor: vm exitloop: exits by reason, cost in counter ticks \([1-9]\d* kHz\)$"
    hc = r"^ all hypercall +[1-9]\d{4,} +[1-9]\d* +[1-9]\d* +\d+$"
    on = r"^keel: monitor: vm exitloop: exit trace on$"
    shown = r"^keel: monitor: vm exitloop: exit trace on, [1-9]\d* exits recorded since it was cleared$"
    entry = r"^ +0 +\d+ hypercall +%s %s 0x[0-9a-f]{16} +\d+$" % (hc_code, pc)
    stop = r"^keel: vm exitloop stopped: monitor: stopped from the monitor$"
    sends = [
        (made, "\x1dm"),
        (r"^keel: console: monitor \(type help\)$", "stats exitloop"),
        (r"^ all total +\d+ ", "trace exitloop on"),
        (on, "trace exitloop show 4"),
        (entry, "stop exitloop"),
    ]
    return dict(
        config="exit_stats.cfg", verdict=PASS, timeout=240, sends=sends, fail_on=REFUSED,
        order=[made, header, hc, r"^ all total +[1-9]\d{4,} ", on, shown, entry, stop,
               r"^keel: summary$", summary_line("exitloop"), r"^keel: result: PASS\b"],
        must_not=[r"UNEXPECTED", r"^keel: error: ", r"FAIL", r"cannot \w+ vm",
                  r"no exits traced", r"usage: "],
        **extra)


def snapshot_check(log):
    """snapcount's lines (tests/guests/snapcount.c) across snapshot and restores: every round
    has one checksum however often it is printed, and after each restore the guest goes on with
    the round after the last one it printed before the snapshot (a line cut by the snapshot
    comes back as its tail, which must end the line as it was first printed: `... N sum S`, or
    only the last digits of S, as in CI on 2026-12-07: `[snapcount] 91dc`)."""
    problems, sums = [], {}
    rnd = re.compile(r"^\[snapcount\] (?:snapcount: round |.*?)(\d+) sum ([0-9a-f]+)$")
    snap, last, expect_next = None, None, None
    lines = [re.sub(r"^[WE] ", "", line) for line in log.splitlines()]
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and lines[i + 1].startswith("keel: vm snapcount stopped: "):
            continue  # cut by the stop (reset): the rest of it is never printed
        if (line.startswith("[snapcount] ") and i + 1 < len(lines) and
                "snapcount: restored from its snapshot" in lines[i + 1]):
            continue  # cut by the pause, flushed by the restore (seen on 2026-12-07:
            # `round 82 sum 4d1aa3d420240ef` without its last digit): never printed whole
        body = line[len("[snapcount] "):] if line.startswith("[snapcount] ") else None
        if expect_next is not None and body and expect_next in sums:
            full = "snapcount: round %d sum %s" % (expect_next, sums[expect_next])
            if body != full and full.endswith(body):
                expect_next = None  # the tail of the line the snapshot cut, however short
                continue
        m = rnd.match(line)
        if m:
            n, s = int(m.group(1)), m.group(2)
            if line.startswith("[snapcount] snapcount: round "):
                if sums.setdefault(n, s) != s:
                    problems.append("round %d printed with sums %s and %s" % (n, sums[n], s))
                last = n
            if expect_next is not None:
                if n != expect_next:
                    problems.append("after a restore the guest printed round %d first, "
                                    "expected %d" % (n, expect_next))
                elif sums.get(n, s) != s:
                    problems.append("round %d after a restore: sum %s, first %s" % (n, s, sums[n]))
                expect_next = None
        elif re.search(r"snapcount: snapshot (in memory|on )", line):
            snap = last
        elif "snapcount: restored from its snapshot" in line:
            if snap is None:
                problems.append("restored before any snapshot with a round printed")
            else:
                expect_next = snap + 1
    if snap is None:
        problems.append("no snapshot taken after a round")
    return problems


def snapshot_case(**extra):
    """snapcount (16 MiB) paused and snapshotted after round 5 (in memory), resumed; paused in
    its 40s (or later), reset (a fresh VM from the config), restored and resumed; paused in its
    70s, restored again (the same snapshot into the paused VM) and resumed; it must continue each
    time from the round after the snapshot with the same checksums (snapshot_check), never
    report a wrong word (FAIL), and exit 0 after round 100."""
    mon = r"^keel: monitor: "
    restored = mon + r"vm snapcount: restored from its snapshot; it is paused \(resume snapcount\)$"
    taken = mon + r"vm snapcount: snapshot in memory, \d+ KiB \(RAM 16384 KiB\); restore snapcount brings it back$"
    paused, running = mon + r"vm snapcount is paused$", mon + r"vm snapcount is running$"
    sends = [
        (guest_line("snapcount", r"snapcount: round 5 sum"), "\x1dm"),
        (r"^keel: console: monitor \(type help\)$", "pause snapcount"),
        (paused, "snapshot snapcount"),
        (taken, "resume snapcount"),
        # its 40s or later: typing the snapshot's commands may take it past them
        (guest_line("snapcount", r"snapcount: round [4-9]\d sum"), "pause snapcount"),
        (paused, "reset snapcount"),
        (mon + r"vm snapcount is created$", "restore snapcount"),
        (restored, "resume snapcount"),
        (guest_line("snapcount", r"snapcount: round 7\d sum"), "pause snapcount"),
        (paused, "restore snapcount"),
        (restored, "resume snapcount"),
    ]
    return dict(
        config="snapshot.cfg", verdict=PASS, timeout=400, sends=sends, fail_on=REFUSED,
        check=snapshot_check,
        order=[taken, running, restored, running, restored, running,
               guest_line("snapcount", r"snapcount: round 100 sum [0-9a-f]+$"),
               guest_line("snapcount", r"snapcount: done, 100 rounds, sum [0-9a-f]+$"),
               vm_exited("snapcount", 0), r"^keel: summary$", summary_line("snapcount"),
               r"^keel: result: PASS\b"],
        counts={restored: 2, taken: 1},
        must_not=[r"UNEXPECTED", r"^keel: error: ", r"cannot \w+ vm", r"usage: ",
                  r"snapshot refused"],
        **extra)


def expect_fail_case(config, wrong_stop, **extra):
    """Two VMs whose outcome differs from their expect_* (wrong-code exits 0, wrong-stop stops
    with `wrong_stop`) and one that matches: both flagged UNEXPECTED, the result FAIL. Proves
    the pass signal can fail."""
    return dict(
        config=config,
        verdict=FAIL,
        timeout=180,
        orders=[[vm_exited(name, 0) if name != "wrong-stop" else vm_stopped(name, wrong_stop),
                 r"^keel: summary$"] for name in ("wrong-code", "wrong-stop", "right")],
        order=[
            r"^keel: summary$",
            summary_line("wrong-code", ok=False),
            summary_line("wrong-stop", ok=False),
            summary_line("right", ok=True),
            r"^keel: result: FAIL\b",
        ],
        counts={r"UNEXPECTED$": 2, r"^keel: result: ": 1},
        must_not=[r"^keel: result: PASS", r"^keel: error: "],
        fail_on=REFUSED,
        **extra)


def bigpages_case(arch):
    """bigpages.cfg on a host with RAM for a 1 GiB-aligned run and, on x86, Page1GB: `big`
    (1088 MiB) is mapped by one 1 GiB leaf and 32 of 2 MiB in 3 table pages, ramtest checks all
    of it; `small` gets 2 MiB leaves."""
    base = ARM64_RAM_BASE if arch == "arm64" else 0
    big = ("big", [
        r"^keel: vm big: 1088 MiB at host 0x[0-9a-f]*[048c]0000000, image guests/ramtest\.bin "
        r"\(\d+ bytes\); second-level tables 3 pages, leaves 1 x 1G 32 x 2M 0 x 4K$",
        guest_line("big", r"ramtest: RAM size 0x44000000, testing \[0x%x[0-9a-f]{5}, 0x%x\)"
                   % ((base + 0x100000) >> 20, base + 0x44000000)),
        guest_line("big", r"ramtest: all \d+ bytes ok$"),
    ], vm_exited("big"))
    small = ("small", [
        r"^keel: vm small: 6 MiB at host 0x[0-9a-f]+, image guests/hypercalls\.bin \(\d+ bytes\); "
        r"second-level tables 3 pages, leaves 0 x 1G 3 x 2M 0 x 4K$",
        guest_line("small", r"hypercalls: all \d+ checks passed$"),
    ], vm_exited("small"))
    # x86 q35 with 5 GiB: 2 GiB below the PCI hole, 3 GiB from 4 GiB, whose first pages hold
    # the page allocator's bitmaps (docs/memory.md), so the free 1 GiB-aligned run starts at
    # 5 GiB; arm64 virt with 3 GiB: RAM from 1 GiB, likewise, the run at 2 GiB is free.
    case = guests_case("bigpages.cfg", [big, small], arch=arch,
                       memory="3072" if arch == "arm64" else "5120")
    case["timeout"] = 600
    if arch == "x86_64":
        case["cpu"] = "qemu64,+svm,+npt,+pdpe1gb"
    return case


def refusal_case(config, must, **extra):
    """A case where Keel refuses before ExitBootServices: exactly one error line matching
    `must`, no VM started, no result line."""
    return dict(config=config, until=r"^keel: error: .*\n", verdict=PASS, timeout=90,
                must=[must], counts={r"^keel: error: ": 1},
                must_not=[r"^keel: vm ", r"^keel: result: ", r"^\[hello\] "], **extra)


CASES = {
    # verdict PASS: QEMU status 1, Keel wrote 0 to isa-debug-exit
    "svm_guests": guests_case("svm_guests.cfg", SVM_GUESTS, counts={
        # the ports named in one line when the VM is released (after its stop line), each once
        # however often the guest touched it, none of them as they happen
        r"^keel: vm ioport: probed 2 absent I/O ports \(0x2f8 0x1234\): reads gave all ones, "
        r"writes were ignored \(log = debug names each when it happens\)$": 1,
        r"^keel: vm [^:]+: probed \d+ absent I/O port": 1,
        r"unclaimed I/O port": 0,
    }),
    # per-vCPU registers and architectural checks (docs/x86-state.md)
    "x86state": x86state_case(),
    # VMs at once, misbehaving ones among them, driven through the console's monitor
    "monitor": monitor_case("monitor.cfg", ("triple", "triple-fault")),
    # console = raw: the focused VM's output as it is, the others' held until switched to
    "raw_console": raw_console_case(),
    "arm64_raw_console": raw_console_case(arch="arm64"),
    # the monitor's exit statistics and trace of a guest making a known number of hypercalls
    "exit_stats": exit_stats_case("0x81", r"0x00000000001[0-9a-f]{5}"),
    "snapshot": snapshot_case(),
    "arm64_snapshot": snapshot_case(arch="arm64"),
    "arm64_exit_stats": exit_stats_case("0x16", r"0x00000000401[0-9a-f]{5}", arch="arm64"),
    "monitor_smp": monitor_case("monitor.cfg", ("triple", "triple-fault"), smp=2),
    "arm64_monitor": monitor_case("arm64_monitor.cfg", ("outside", "outside-ram"), arch="arm64"),
    "arm64_monitor_smp": monitor_case("arm64_monitor.cfg", ("outside", "outside-ram"),
                                      arch="arm64", smp=2),
    # -smp 4: the application processors come up; the VMs run as with one CPU
    "smp_host": smp_host_case(),
    # the same on 8 and 16 CPUs (16: ctest label scale); per-CPU tables sized from the MADT
    "smp_host8": smp_host_case(8),
    "smp_host16": smp_host_case(16),
    "arm64_smp8": dict(smp_case(guests_case("arm64_guests.cfg", ARM64_GUESTS, arch="arm64"), 8),
                       timeout=600),
    "arm64_smp16": dict(smp_case(guests_case("arm64_guests.cfg", ARM64_GUESTS, arch="arm64"),
                                 16), timeout=600),
    # 20 CPUs: MPIDRs with Aff1 set (QEMU virt clusters 16 CPUs), each finds its redistributor
    "arm64_smp20": dict(smp_case(guests_case("arm64_guests.cfg", ARM64_GUESTS, arch="arm64"),
                                 20), timeout=900),
    # 64 VMs at once (ctest label scale): allocated when built, freed after the reap
    "many_vms": many_vms_case(),
    "arm64_many_vms": many_vms_case("arm64"),
    # Keel's PCI Express enumeration (docs/pci.md) with run-qemu's --pci-storage devices
    "pci": pci_case(),
    "arm64_pci": pci_case("arm64"),
    # guests built with the guest SDK (sdk/, docs/guest-sdk.md)
    "sdk": sdk_case(),
    "arm64_sdk": sdk_case("arm64"),
    # verdict PASS: QEMU status 0, Keel's semihosting exit with 0
    "arm64_guests": guests_case("arm64_guests.cfg", ARM64_GUESTS, arch="arm64"),
    # Four CPUs: the boot CPU starts the three secondaries (ACPI MADT, PSCI CPU_ON over SMC),
    # each checks in once with its index and MPIDR before the count, and they idle while the
    # boot CPU runs the arm64_guests VMs as before.
    "arm64_smp_host": smp_case(guests_case("arm64_guests.cfg", ARM64_GUESTS, arch="arm64"), 4),
    # The adversarial suite: hostile guests beside the witness (HOSTILE_* above).
    "hostile_hc": guests_case("hostile_hc.cfg", HOSTILE_HC),
    "hostile_virt": guests_case("hostile_virt.cfg", HOSTILE_VIRT),
    "hostile_fetch": guests_case("hostile_fetch.cfg", HOSTILE_FETCH),
    "hostile_msr": guests_case("hostile_msr.cfg", HOSTILE_MSR),
    "hostile_pt": guests_case("hostile_pt.cfg", HOSTILE_PT),
    "hostile_apic_regs": guests_case("hostile_apic_regs.cfg", HOSTILE_APIC_REGS),
    "hostile_apic_smp": guests_case("hostile_apic_smp.cfg", HOSTILE_APIC_SMP, smp=2),
    "hostile_virtio": hostile_virtio_case("hostile_virtio.cfg", smp=2),
    "arm64_hostile_virtio": hostile_virtio_case("arm64_hostile_virtio.cfg", arch="arm64"),
    "hostile_lapic": storm_monitor_case(
        "hostile_lapic.cfg", HOSTILE_LAPIC, "periodic",
        r"hostile_lapic: periodic timer, initial count 1, divide 1, EOI in the handler: "
        r"looping for ever$",
        r"hostile_lapic: periodic step \d+: \d+ timer interrupts in \d+ M TSC ticks$"),
    "arm64_hostile_mmio": guests_case("arm64_hostile_mmio.cfg", ARM64_HOSTILE_MMIO,
                                      arch="arm64"),
    "arm64_hostile_gic": guests_case("arm64_hostile_gic.cfg", ARM64_HOSTILE_GIC, arch="arm64"),
    "arm64_arch": guests_case("arm64_arch.cfg", ARM64_ARCH, arch="arm64", counts={
        # the first unbacked access of a VM is logged, once
        r"^keel: vm aborts: data read from 0x20000000 \(outside RAM and devices\) at pc "
        r"0x[0-9a-f]+: external abort injected \(first such access; ": 1,
        r"^keel: vm \S+: .* external abort injected": 1}),
    "arm64_hostile_hc": guests_case("arm64_hostile_hc.cfg", ARM64_HOSTILE_HC, arch="arm64"),
    "arm64_hostile_virt": guests_case("arm64_hostile_virt.cfg", ARM64_HOSTILE_VIRT,
                                      arch="arm64"),
    "more_guests": dict(
        config="more_guests.cfg",
        verdict=PASS,
        timeout=240,
        orders=vm_orders([
            ("entry", [guest_line("entry", r"ok: RFLAGS = 0x2 "),
                       guest_line("entry", r"ok: CR3 = 0x1000 "),
                       guest_line("entry", r"entry: all \d+ checks passed$")],
             vm_exited("entry")),
            ("bench", [guest_line("bench", r"bench: %s iterations=10000 total=\d+ avg=\d+\.\d{3}$"
                                  % loop) for loop in ("baseline", "cpuid", "vmmcall", "out")],
             vm_exited("bench")),
            ("auto-elf", [guest_line("auto-elf", r"cpuid: all 9 checks passed$")],
             vm_exited("auto-elf")),
        ]),
        order=[
            r"^keel: summary$",
            summary_line("entry"),
            summary_line("bench"),
            summary_line("auto-elf"),
            r"^keel: result: PASS\b",
        ],
        counts={r"^keel: vm \S+ stopped: ": 3},
        must_not=[r"UNEXPECTED", r"^keel: error: ", r"FAIL", r"unclaimed I/O port"],
    ),
    # QEMU status 3 (arm64: 1): Keel reported failure
    "expect_fail": expect_fail_case("expect_fail.cfg", "triple-fault"),
    # The pass signal can fail on arm64 too; the x86 case's triple fault becomes an access
    # outside RAM.
    "arm64_expect_fail": expect_fail_case("arm64_expect_fail.cfg", "outside-ram", arch="arm64"),
    "no_svm": refusal_case("no_svm.cfg", r"^keel: error: .*\bSVM\b.*\bVMX\b",
                           cpu="qemu64,-svm"),
    "bad_config": refusal_case("bad_config.cfg", r"^keel: error: .*keel\.cfg:9: .*memory"),
    "load_failed": dict(
        # One VM cannot be built (its image is not an ELF although the config says so); the
        # VMs after it still run, and the summary counts it as expected.
        config="load_failed.cfg",
        verdict=PASS,
        timeout=180,
        order=[
            r"^E vmm/loader\.c:\d+: image guests/hello\.bin: not an ELF file",
            vm_stopped("not-elf", "load-failed", r"image guests/hello\.bin not loaded"),
            vm_stopped("many-vcpus", "load-failed",
                       r"its config gives it 9 vCPUs, but this machine has 1 CPU online \(more "
                       r"than 8 vCPUs need a CPU each: vcpus = 8 at most here\)$"),
            vm_stopped("many-pinned", "load-failed",
                       r"its config gives it 64 vCPUs pinned to CPU 0 \(more than 8 vCPUs need "
                       r"a CPU each: no cpu = line, or vcpus = 8 at most\)$"),
            guest_line("after", r"Hello from a Keel guest!"),
            vm_exited("after"),
            r"^keel: summary$",
            summary_line("not-elf"),
            summary_line("many-vcpus"),
            summary_line("many-pinned"),
            summary_line("after"),
            r"^keel: result: PASS\b",
        ],
        counts={r"^keel: vm \S+ stopped: ": 4},
        must_not=[r"UNEXPECTED", r"^keel: error: "],
    ),
    "too_little_memory": dict(
        # The machine has 256 MiB; a VM of 1 GiB cannot fit: refused before ExitBootServices.
        config="too_little_memory.cfg",
        memory="256",
        until=r"^keel: error: .*\n",
        verdict=PASS,
        timeout=90,
        must=[r"^keel: error: too little memory: .*1024 MiB.*'memory ='"],
        counts={r"^keel: error: ": 1},
        must_not=[r"^keel: vm ", r"^keel: result: "],
    ),
    "panic_dump": dict(
        # selftest = exception: an exception inside Keel prints vector, error code, RIP, the
        # registers and a panic line, then halts (no VM runs).
        config="panic_dump.cfg",
        until=r"^keel: panic: .*system halted\n",
        verdict=PASS,
        timeout=90,
        allow_panic=True,
        order=[
            r"^keel: selftest: raising an invalid-opcode exception inside Keel$",
            r"^keel: exception 6 \(invalid opcode\) in Keel, error code 0, rip 0x[0-9a-f]+$",
            r"^E   rip [0-9a-f]{16}  cs 0008  rflags [0-9a-f]{16}$",
            r"^E   rax [0-9a-f]{16}  rbx [0-9a-f]{16}  rcx [0-9a-f]{16}$",
            r"^E   r13 [0-9a-f]{16}  r14 [0-9a-f]{16}  r15 [0-9a-f]{16}$",
            r"^E   cr0 [0-9a-f]{16}  cr3 [0-9a-f]{16}  cr4 [0-9a-f]{16}$",
            r"^keel: panic: exception 6 in Keel: system halted$",
        ],
        must_not=[r"^keel: vm ", r"^\[hello\] "],
    ),
    # Firmware without EL2 (QEMU virt without virtualization=on starts it at EL1): Keel must
    # say so, naming EL2 and what to do, and return to the firmware.
    "arm64_no_el2": refusal_case(
        "no_svm.cfg", r"^keel: error: Keel was started at EL1, not EL2: .*virtualization=on",
        arch="arm64", qemu_machine="virt,gic-version=3"),
    # A fault inside Keel at EL2 (selftest = exception: a BRK): ESR, ELR, FAR, x0-x30 and sp,
    # the EL2 control registers, then the panic line.
    "arm64_panic_dump": dict(
        config="panic_dump.cfg",
        arch="arm64",
        until=r"^keel: panic: .*system halted\n",
        verdict=PASS,
        timeout=90,
        allow_panic=True,
        order=[
            r"^keel: selftest: raising an invalid-opcode exception inside Keel$",
            r"^keel: synchronous exception in Keel at EL2: esr 0x[0-9a-f]+ \(class 0x3c\), "
            r"elr 0x[0-9a-f]+, far 0x[0-9a-f]+$",
            r"^E   x0  [0-9a-f]{16}  x1  [0-9a-f]{16}  x2  [0-9a-f]{16}$",
            r"^E   x27 [0-9a-f]{16}  x28 [0-9a-f]{16}  x29 [0-9a-f]{16}$",
            r"^E   x30 [0-9a-f]{16}  sp  [0-9a-f]{16}  spsr [0-9a-f]{8}$",
            r"^E   sp [0-9a-f]{16}  hcr [0-9a-f]{16}  sctlr [0-9a-f]{16}$",
            r"^keel: panic: synchronous exception in Keel: system halted$",
        ],
        must_not=[r"^keel: vm ", r"^\[hello\] "],
    ),
    # Test builds only (keel-debug.efi, CMake option KEEL_DEBUG_HYPERCALLS): the guest asks
    # Keel to fault inside itself (KEEL_HC_DEBUG_FAULT); each fault must end in Keel's panic
    # report naming it (docs/memory.md). x86 runs with SMEP, SMAP and RDRAND, which qemu64
    # lacks by default, so those paths are exercised too.
    "wx_text": wx_case("text", "x86_64", [
        r"^keel: debug fault: writing Keel's text at ",
        r"^keel: exception 14 \(page fault\) in Keel, error code 0x3, rip 0x[0-9a-f]+$",
        r"^keel: page fault: write to a read-only page at 0x[0-9a-f]+ in Keel text$",
        r"^keel: panic: exception 14 in Keel: system halted$"]),
    "wx_exec": wx_case("exec", "x86_64", [
        r"^keel: debug fault: calling Keel's data at ",
        r"^keel: exception 14 \(page fault\) in Keel, error code 0x11, rip 0x[0-9a-f]+$",
        r"^keel: page fault: instruction fetch from a non-executable page \(NX or SMEP\) at "
        r"0x[0-9a-f]+ in Keel data$",
        r"^keel: panic: exception 14 in Keel: system halted$"]),
    "wx_stack": wx_case("stack", "x86_64", [
        r"^keel: debug fault: recursing until the stack runs out$",
        r"^keel: exception 8 \(double fault\) in Keel",
        r"^keel: stack overflow: cr2 0x[0-9a-f]+ is in the guard page below the kernel stack "
        r"of cpu 0$",
        r"^keel: panic: exception 8 in Keel: system halted$"]),
    "wx_smash": wx_case("smash", "x86_64", [
        r"^keel: debug fault: writing 64 bytes into a 16-byte stack buffer$",
        r"^keel: PANIC$",
        r"^(?:E )?stack-protector canary overwritten: a stack buffer overrun in the function "
        r"containing 0x[0-9a-f]+$",
        r"^keel: panic: system halted$"]),
    "arm64_wx_text": wx_case("text", "arm64", [
        r"^keel: debug fault: writing Keel's text at ",
        r"^keel: synchronous exception in Keel at EL2: esr 0x[0-9a-f]+ \(class 0x25\)",
        r"^keel: data abort: write to a read-only page at 0x[0-9a-f]+ in Keel text$",
        r"^keel: panic: synchronous exception in Keel: system halted$"]),
    "arm64_wx_exec": wx_case("exec", "arm64", [
        r"^keel: debug fault: calling Keel's data at ",
        r"^keel: synchronous exception in Keel at EL2: esr 0x[0-9a-f]+ \(class 0x21\)",
        r"^keel: instruction abort: instruction fetch from a non-executable page \(XN/WXN\) "
        r"at 0x[0-9a-f]+ in Keel data$",
        r"^keel: panic: synchronous exception in Keel: system halted$"]),
    "arm64_wx_stack": wx_case("stack", "arm64", [
        r"^keel: debug fault: recursing until the stack runs out$",
        r"^keel: synchronous exception in Keel at EL2: esr 0x[0-9a-f]+ \(class 0x25\)",
        r"^keel: data abort: access to an unmapped page at 0x[0-9a-f]+ in the guard page below "
        r"the stack of cpu 0$",
        r"^keel: stack overflow: far 0x[0-9a-f]+ is in the guard page below the stack of cpu 0$",
        r"^keel: panic: synchronous exception in Keel: system halted$"]),
    "arm64_wx_smash": wx_case("smash", "arm64", [
        r"^keel: debug fault: writing 64 bytes into a 16-byte stack buffer$",
        r"^keel: PANIC$",
        r"^(?:E )?stack-protector canary overwritten: a stack buffer overrun in the function "
        r"containing 0x[0-9a-f]+$",
        r"^keel: panic: system halted$"]),
    # 1 GiB leaves in the second-level tables (docs/memory.md#guest-memory-and-large-pages)
    "bigpages": bigpages_case("x86_64"),
    "arm64_bigpages": bigpages_case("arm64"),
    "missing_image": dict(
        config="missing_image.cfg",
        until=r"^keel: error: .*\n",
        verdict=PASS,
        timeout=90,
        must=[r"^keel: error: .*guests/not-there\.bin"],
        counts={r"^keel: error: ": 1},
        must_not=[r"^keel: vm ghost stopped", r"^keel: result: "],
    ),
}


# arm64 variants of the refusal and failure cases: the same configs and expectations (they
# use only hello.bin, or a missing image, and generic Keel messages).
for _name in ("bad_config", "missing_image", "load_failed", "too_little_memory"):
    CASES["arm64_" + _name] = dict(CASES[_name], arch="arm64")


def die_with_parent():
    """In the runner's process: end it if this driver is killed (e.g. by a ctest timeout)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def guest_files(build_dir):
    gdir = os.path.join(build_dir, "guests")
    if not os.path.isdir(gdir):
        return []
    return ["%s=guests/%s" % (os.path.join(gdir, f), f) for f in sorted(os.listdir(gdir))]


def check_log(case, log):
    """Returns a list of problems (empty: all checks hold)."""
    problems = []
    for pat in map(tagged, case.get("must", [])):
        if not re.search(pat, log, re.MULTILINE):
            problems.append("missing: %s" % pat)
    never = [p for p in NEVER if not (case.get("allow_panic") and "panic" in p)]
    for pat in map(tagged, case.get("must_not", []) + never):
        m = re.search(pat, log, re.MULTILINE)
        if m:
            line = log[log.rfind("\n", 0, m.start()) + 1:].split("\n", 1)[0]
            problems.append("present but must not be: %s\n      in line: %s" % (pat, line))
    for pat, want in case.get("counts", {}).items():
        pat = tagged(pat)
        got = len(re.findall(pat, log, re.MULTILINE))
        if got != want:
            problems.append("count of %s is %d, expected %d" % (pat, got, want))
    for seq in ([case["order"]] if "order" in case else []) + case.get("orders", []):
        pos = 0
        for pat in map(tagged, seq):
            m = re.compile(pat, re.MULTILINE).search(log, pos)
            if not m:
                where = ("anywhere" if not re.search(pat, log, re.MULTILINE)
                         else "after the previous one")
                problems.append("not found %s (in order): %s" % (where, pat))
                continue
            pos = m.end()
    if "check" in case:
        problems += case["check"](log)
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", required=True, choices=sorted(CASES))
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--arch", choices=["x86_64", "arm64"], default=None,
                    help="the build's architecture (default: the case's, x86_64 unless the "
                         "case is an arm64 one); must match the case")
    ap.add_argument("--efi", help="keel.efi (default BUILD/keel.efi)")
    ap.add_argument("--log-dir", help="default BUILD/tests/integration/logs")
    args = ap.parse_args()

    case = CASES[args.case]
    arch = case.get("arch", "x86_64")
    if args.arch and args.arch != arch:
        print("integration: case %s runs on %s, not %s" % (args.case, arch, args.arch))
        return 1
    build = os.path.abspath(args.build_dir)
    efi = args.efi or os.path.join(build, case.get("efi", "keel.efi"))
    log_dir = args.log_dir or os.path.join(build, "tests", "integration", "logs")
    log_path = os.path.join(log_dir, args.case + ".log")
    if not os.path.isfile(efi):
        print("integration: %s not found: build the keel_efi target first (make)" % efi)
        return 1
    files = guest_files(build)
    if not files:
        print("integration: no guests in %s/guests: build the guests target first" % build)
        return 1

    cmd = [sys.executable, RUN_QEMU, "--arch", arch, "--efi", efi,
           "--config", os.path.join(HERE, "configs", case["config"]),
           "--log", log_path, "--timeout", str(case["timeout"])]
    for f in files:
        cmd += ["--file", f]
    if "cpu" in case:
        cmd += ["--cpu", case["cpu"]]
    if "qemu_machine" in case:
        cmd += ["--qemu-machine", case["qemu_machine"]]
    if "until" in case:
        cmd += ["--until", tagged(case["until"])]
    if "fail_on" in case:
        cmd += ["--fail-on", tagged(case["fail_on"])]
    if "memory" in case:
        cmd += ["--memory", case["memory"]]
    if "smp" in case:
        cmd += ["--smp", str(case["smp"])]
    if case.get("pci_storage"):
        cmd += ["--pci-storage"]
    for pat, text in case.get("sends", []):
        cmd += ["--send", "%s=>%s" % (tagged(pat), text)]
    print("integration: " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          preexec_fn=die_with_parent)
    print(proc.stdout, end="", flush=True)

    with open(log_path, "rb") as f:
        log = f.read().decode("utf-8", "replace").replace("\r", "")
    problems = []
    if proc.returncode != case["verdict"]:
        problems.append("run-qemu exited %d, expected %d (0 pass, 1 fail, 2 timeout, 3 other)"
                        % (proc.returncode, case["verdict"]))
    problems += check_log(case, log)
    if problems:
        print("integration: %s FAILED:" % args.case)
        for p in problems:
            print("  - " + p)
        tail = log.splitlines()[-60:]
        print("integration: last %d lines of the serial log:" % len(tail))
        for line in tail:
            print("  | " + line)
        print("integration: serial log kept at %s" % log_path)
        return 1
    print("integration: %s passed (serial log at %s)" % (args.case, log_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
