#!/usr/bin/python3
"""Run the conformance suite against several helpers and print a Markdown
table of the outcome of each test per helper.

Usage: /usr/bin/python3 tests/conformance/table.py [NAME=PATH ...]

Default helpers: ours (build/helper/src/slirp-helper) and Debian's
(/usr/bin/libslirp-helper).  Exit status 0 if the table was produced (the
table documents other helpers' failures; it is not a test run itself; the
normal test command runs the suite against our helper only).
"""

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT = [("slirp-helper (ours)", "build/helper/src/slirp-helper"),
           ("libslirp-helper 4.3.0 (Debian)", "/usr/bin/libslirp-helper")]


def run_suite(path):
    with tempfile.TemporaryDirectory() as d:
        xml = os.path.join(d, "results.xml")
        env = dict(os.environ, SLIRP_HELPER=path)
        subprocess.run([sys.executable, "-m", "pytest", "-p",
                        "no:cacheprovider", "-q", "--junitxml", xml, HERE],
                       cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=900)
        results = {}
        for case in ET.parse(xml).getroot().iter("testcase"):
            name = case.get("name")
            outcome = "pass"
            for child in case:
                if child.tag in ("failure", "error"):
                    outcome = "FAIL" if child.tag == "failure" else "ERROR"
                elif child.tag == "skipped":
                    msg = child.get("message", "")
                    if msg.startswith("Skipped: "):
                        msg = msg[len("Skipped: "):]
                    outcome = "skip: " + msg
            results[name] = outcome
        return results


def main():
    helpers = DEFAULT
    if len(sys.argv) > 1:
        helpers = [tuple(a.split("=", 1)) for a in sys.argv[1:]]
    columns = []
    for name, path in helpers:
        print("running the suite against %s (%s)..." % (name, path),
              file=sys.stderr)
        columns.append(run_suite(path))
    tests = []
    for col in columns:
        for t in col:
            if t not in tests:
                tests.append(t)
    print("| Test | " + " | ".join(n for n, _ in helpers) + " |")
    print("|---" * (len(helpers) + 1) + "|")
    for t in tests:
        print("| `%s` | " % t + " | ".join(c.get(t, "-") for c in columns)
              + " |")
    for (name, _), col in zip(helpers, columns):
        vals = list(col.values())
        print("\n%s: %d passed, %d failed, %d skipped" % (
            name, vals.count("pass"),
            sum(v in ("FAIL", "ERROR") for v in vals),
            sum(v.startswith("skip") for v in vals)))


if __name__ == "__main__":
    main()
