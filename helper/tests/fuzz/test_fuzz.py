# SPDX-License-Identifier: LGPL-2.1-or-later
"""test_fuzz.py - the fuzz smoke run for the project's test command.

Runs helper/tests/fuzz/run.sh --check: builds the instrumented libslirp and
the fuzz targets (once, in build/fuzz), replays every committed seed, then
fuzzes each target for FUZZ_SECONDS (default 20).  Any crash, sanitizer
report or unsuppressed leak fails the test, and run.sh's output says where
the reproducer is.  Needs root (run.sh fuzzes in a network namespace).
"""
import glob
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))


def test_fuzz_smoke():
    env = dict(os.environ)
    env.setdefault("FUZZ_SECONDS", "20")
    p = subprocess.run([os.path.join(HERE, "run.sh"), "--check"], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=1800)
    print(p.stdout)
    assert p.returncode == 0, p.stdout[-4000:]
    targets = glob.glob(os.path.join(HERE, "fuzz-*.c"))
    assert p.stdout.count("no finding") == len(targets), p.stdout[-4000:]
