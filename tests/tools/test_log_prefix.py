#!/usr/bin/env python3
"""No format string of a line that gets its prefix from the log or the monitor spells it again.

LOG_WARN / LOG_INFO / LOG_DEBUG (and log_printf with LOG_KEEL) print "keel: " before their
format, the monitor's say() prints "keel: monitor: " (kernel/include/keel/log.h,
vmm/monitor.c, docs/console.md): a format that starts with it again prints it twice
("keel: keel: ..."), which no compiler warning catches (a branch written before the change,
merged after it). Scans the C sources of the image and of the host tests.
"""
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIRS = ("kernel", "vmm", "arch", "drivers", "boot", "lib", "tests/unit")
RULES = (
    (re.compile(r'\b(LOG_WARN|LOG_INFO|LOG_DEBUG)\(\s*"keel: '), "keel: "),
    (re.compile(r'\blog_printf\([^,;]*\bLOG_KEEL\b[^,;]*,\s*"keel: '), "keel: "),
    (re.compile(r'\bsay\(\s*[a-z_>-]+,\s*"keel: monitor: '), "keel: monitor: "),
)


def main():
    bad = []
    for d in DIRS:
        for root, _, files in os.walk(os.path.join(REPO, d)):
            for name in sorted(files):
                if not name.endswith((".c", ".h")):
                    continue
                path = os.path.join(root, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read()
                for rule, prefix in RULES:
                    for m in rule.finditer(text):
                        line = text.count("\n", 0, m.start()) + 1
                        bad.append("%s:%d: the format starts with %r, which is printed already"
                                   % (os.path.relpath(path, REPO), line, prefix))
    for b in bad:
        print(b)
    if bad:
        print("log_prefix: %d format(s) repeat their prefix" % len(bad))
        return 1
    print("log_prefix: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
