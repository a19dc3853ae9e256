"""Smoke test of the benchmark: bench/run.py --quick must produce every metric
for every backend and every transfer's SHA-256 must match. No timing is
asserted. Needs root (network namespaces, tap) and the Debian packages
iperf3, libslirp-helper, slirp4netns, passt, iproute2."""
import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
OURS_DEFAULT = os.path.join(REPO, "build", "helper", "src", "slirp-helper")
TOOLS = ["/usr/bin/iperf3", "/usr/bin/libslirp-helper", "/usr/bin/slirp4netns", "/usr/bin/pasta",
         "/usr/bin/passt"]

# metrics every backend of a kind must produce
COMMON = ["tput_g2h_1", "tput_h2g_1", "tput_g2h_4", "tput_h2g_4", "rr_mean", "rr_p99"]
PROCESS = ["cpu_g2h_1", "cpu_h2g_1", "rss_idle", "rss_loaded"]
SOCKET_HELPER = ["fwdcpu_g2h_1", "fwdcpu_h2g_1", "caps_ms", "dhcp_ms", "idle100_rss",
                 "idle100_pss"]


def expected_metrics(name):
    if name == "loopback":
        return COMMON
    if name.startswith(("slirp4netns", "pasta")):
        return COMMON + PROCESS
    return COMMON + PROCESS + SOCKET_HELPER


def ours_path():
    p = os.environ.get("SLIRP_HELPER") or OURS_DEFAULT
    return p if os.access(p, os.X_OK) else None


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the benchmark needs root (network namespaces, tap devices)")
    missing = [t for t in TOOLS if not os.access(t, os.X_OK)]
    if missing or not shutil.which("ip"):
        pytest.skip("missing tools: %s" % ", ".join(missing or ["ip"]))
    out = tmp_path_factory.mktemp("bench")
    cmd = ["/usr/bin/python3", os.path.join(HERE, "run.py"), "--quick",
           "--json", str(out / "results.json"), "--md", str(out / "results.md"),
           "--logs", str(out / "logs")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    sys.stderr.write(r.stderr[-6000:])
    assert os.path.exists(out / "results.json"), "run.py wrote no results:\n" + r.stderr[-3000:]
    with open(out / "results.json") as f:
        res = json.load(f)
    res["returncode"] = r.returncode
    res["stdout"] = r.stdout
    return res


def test_no_errors(quick):
    assert quick["errors"] == []
    assert quick["returncode"] == 0


def test_checksums_match(quick):
    assert quick["checks"], "no transfer was checked"
    bad = [c for c in quick["checks"] if not c["ok"]]
    assert bad == []
    for b in quick["backends"]:
        if b != "loopback":
            done = {c["what"] for c in quick["checks"] if c["backend"] == b}
            assert done == {"blob guest->host", "blob host->guest"}, b


def test_every_metric_produced(quick):
    for b in quick["backends"]:
        got = quick["samples"][b]
        for key in expected_metrics(b):
            assert key in got and len(got[key]) == 1, "%s: no %s" % (b, key)
            assert got[key][0] >= 0, "%s: negative %s" % (b, key)
        for key in ("tput_g2h_1", "tput_h2g_1", "tput_g2h_4", "tput_h2g_4"):
            assert got[key][0] > 0, "%s moved nothing (%s)" % (b, key)


def test_all_backends_ran(quick):
    want = {"lsh-1500", "lsh-65520", "slirp4netns-1500", "slirp4netns-65520", "pasta-65520",
            "loopback"}
    if ours_path():
        want |= {"ours-%s-%d" % (f, m) for f in ("dgram", "stream") for m in (1500, 65520)}
    assert want <= set(quick["backends"])


def test_table_printed(quick):
    assert "| Metric |" in quick["stdout"]
    assert "mismatch" in quick["stdout"]
