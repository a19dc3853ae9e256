#!/usr/bin/python3
"""run_all.py - run every test suite of the project and print one summary

Usage: tests/run_all.py [SUITE ...]

Suites (all by default, in this order):
  libvirt-11.3.0  libvirt's own `meson test` on the primary fork (libvirt
                  11.3.0 + libvirt/11.3.0/patches), syntax-check included
  libvirt-9.0.0   the same on the Debian 12 backport (libvirt/9.0.0)
  helper          slirp-helper's unit, D-Bus and fuzz-replay tests (`meson test`)
  system          the pytest suites against the primary fork: fork pipeline,
                  conformance, QEMU-level, libvirt-level, benchmark smoke,
                  fuzz smoke
  system-9.0.0    the backport's smoke scenarios: start with a lease and a
                  fetch, save/restore, a helper killed and replaced, one
                  given up, guestfwd channels (the libvirt-level tests,
                  LIBVIRT_SERIES=9.0.0)
  system-trixie   the lifecycle and recovery scenarios in a Debian 13 chroot with its QEMU
                  10.0 and libslirp 4.8, the primary fork built there
                  (scripts/check-trixie.sh, make check-trixie)

Every suite reports each test as passed, failed, skipped or expected-fail.
Expected failures count as passed but are listed by name; skipped tests
count as neither and are listed by name too.  The last line is always
"N passed, N failed" and the exit status is 0 only when nothing failed and
at least one test ran.
"""

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(TOP, "build")

# The fork series (libvirt/series.sh names the primary; the backport is the
# Debian 12 one, which CI keeps building with its suite and smoke scenarios).
with open(os.path.join(TOP, "libvirt", "series.sh")) as _f:
    PRIMARY = next(line.split("=", 1)[1].strip() for line in _f
                   if line.startswith("LIBVIRT_PRIMARY="))
BACKPORT = "9.0.0"

# The backport's scenarios (pytest -k expression): start, lease and fetch,
# save/restore, the helper replaced and given up, guestfwd, and the
# confinement matrix, with our helper.
BACKPORT_SMOKE = (["tests/libvirt/test_libvirt_lifecycle.py", "tests/libvirt/test_libvirt_recovery.py",
                   "tests/libvirt/test_libvirt_guestfwd.py", "tests/libvirt/test_libvirt_confinement.py"],
                  "(ours and (test_start_one_user_nic or test_save_restore)) or replaced or given_up"
                  " or guestfwd or confine")

# pytest directories, in the order they run: cheap contract checks first.
SYSTEM_SUITES = [
    "tests/pipeline",
    "tests/conformance",
    "tests/qemu",
    "tests/libvirt",
    "tests/stock",
    "bench",
    "helper/tests/fuzz",
]


class Tally:
    """Outcomes of one suite, by test name."""

    def __init__(self, suite):
        self.suite = suite
        self.passed = []
        self.failed = []
        self.skipped = []
        self.xfailed = []
        self.seconds = 0.0

    def add(self, name, outcome):
        {"pass": self.passed, "fail": self.failed, "skip": self.skipped,
         "xfail": self.xfailed}[outcome].append(name)


def meson_suite(name, builddir, extra_args=()):
    """Run `meson test` in BUILDDIR and read its JSON log."""
    tally = Tally(name)
    if not os.path.exists(os.path.join(builddir, "build.ninja")):
        tally.add(f"{name}: build directory {builddir} is missing", "fail")
        return tally
    # Debian's python3 (pytest, docutils), never a pyenv shim first in PATH
    proc = subprocess.run(["meson", "test", "-C", builddir, "--no-rebuild",
                           "--num-processes", str(os.cpu_count() or 2),
                           "--print-errorlogs", *extra_args],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=dict(os.environ, PYENV_VERSION="system"))
    print(proc.stdout[-20000:] if proc.returncode else
          "\n".join(proc.stdout.splitlines()[-8:]))
    log = os.path.join(builddir, "meson-logs", "testlog.json")
    try:
        with open(log) as f:
            records = [json.loads(line) for line in f if line.strip()]
    except OSError as e:
        tally.add(f"{name}: no test log ({e})", "fail")
        return tally
    for rec in records:
        test = f"{name}: {rec['name']}"
        result = rec["result"]
        if result == "OK":
            tally.add(test, "pass")
        elif result == "EXPECTEDFAIL":
            tally.add(test, "xfail")
        elif result == "SKIP":
            tally.add(test, "skip")
        else:
            tally.add(test, "fail")
    if proc.returncode and not tally.failed:
        tally.add(f"{name}: meson test exited {proc.returncode}", "fail")
    return tally


def pytest_suite(name, args, series):
    """Run pytest with @args against fork @series, a JUnit report read back."""
    tally = Tally(name)
    report = os.path.join(BUILD, f"pytest-report-{name}.xml")
    os.makedirs(BUILD, exist_ok=True)
    if os.path.exists(report):
        os.unlink(report)
    env = dict(os.environ, LIBVIRT_SERIES=series)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "-rfEsxX", f"--junitxml={report}", *args], cwd=TOP, env=env)
    junit_tally(tally, report)
    if proc.returncode not in (0, 1) and not tally.failed:
        tally.add(f"{name}: pytest exited {proc.returncode}", "fail")
    return tally


def junit_tally(tally, report):
    """Add every test case of pytest's JUnit @report to @tally (a missing
    or unreadable report is one failure)."""
    name = tally.suite
    try:
        root = ET.parse(report).getroot()
    except (OSError, ET.ParseError) as e:
        tally.add(f"{name}: no pytest report ({e})", "fail")
        return
    for case in root.iter("testcase"):
        test = f"{name}: {case.get('classname')}.{case.get('name')}"
        kinds = {child.tag for child in case}
        if "failure" in kinds or "error" in kinds:
            tally.add(test, "fail")
        elif "skipped" in kinds:
            skip = case.find("skipped")
            if skip.get("type") == "pytest.xfail":
                tally.add(test, "xfail")
            else:
                tally.add(test, "skip")
        else:
            tally.add(test, "pass")


# The fork the system suites boot guests through: the primary series, or
# the one LIBVIRT_SERIES names (LIBVIRT_SERIES=9.0.0 runs them all on the
# backport).
SYSTEM_SERIES = os.environ.get("LIBVIRT_SERIES") or PRIMARY


def system_suite():
    dirs = [d for d in SYSTEM_SUITES if os.path.isdir(os.path.join(TOP, d))]
    return pytest_suite("system", dirs, SYSTEM_SERIES)


def backport_smoke_suite():
    paths, expr = BACKPORT_SMOKE
    return pytest_suite(f"system-{BACKPORT}", [*paths, "-k", expr], BACKPORT)


def trixie_suite():
    """make check-trixie: the lifecycle and recovery scenarios in a Debian 13 chroot
    (QEMU 10.0, libslirp 4.8) with the primary fork built there."""
    tally = Tally("system-trixie")
    report = os.path.join(BUILD, "chroot-trixie", "src", "build", "trixie-report.xml")
    proc = subprocess.run([os.path.join(TOP, "scripts", "check-trixie.sh")], cwd=TOP)
    junit_tally(tally, report)
    if proc.returncode != 0 and not tally.failed:
        tally.add(f"system-trixie: check-trixie.sh exited {proc.returncode}", "fail")
    return tally


def main(argv):
    runners = {
        # the libvirt build also builds the bundled helper as a subproject;
        # its tests run once, in the helper's own build
        f"libvirt-{PRIMARY}": lambda: meson_suite(
            f"libvirt-{PRIMARY}", os.path.join(BUILD, f"libvirt-{PRIMARY}-build"),
            ["--suite", "libvirt"]),
        f"libvirt-{BACKPORT}": lambda: meson_suite(
            f"libvirt-{BACKPORT}", os.path.join(BUILD, f"libvirt-{BACKPORT}-build"),
            ["--suite", "libvirt"]),
        "helper": lambda: meson_suite("helper", os.path.join(BUILD, "helper")),
        "system": system_suite,
        f"system-{BACKPORT}": backport_smoke_suite,
        "system-trixie": trixie_suite,
    }
    wanted = argv or list(runners)
    for name in wanted:
        if name not in runners:
            print(f"run_all: unknown suite '{name}' (known: {', '.join(runners)})")
            return 2
    tallies = []
    for name in wanted:
        print(f"==> suite {name}", flush=True)
        start = time.monotonic()
        tally = runners[name]()
        tally.seconds = time.monotonic() - start
        tallies.append(tally)

    print("\n==> summary")
    passed = failed = 0
    for t in tallies:
        print(f"{t.suite}: {len(t.passed) + len(t.xfailed)} passed "
              f"({len(t.xfailed)} expected failures), {len(t.failed)} failed, "
              f"{len(t.skipped)} skipped, {t.seconds:.0f} s")
        for test in t.xfailed:
            print(f"  expected failure: {test}")
        for test in t.skipped:
            print(f"  skipped: {test}")
        for test in t.failed:
            print(f"  FAILED: {test}")
        passed += len(t.passed) + len(t.xfailed)
        failed += len(t.failed)
    if passed + failed == 0:
        failed = 1
        print("  FAILED: no test ran")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
