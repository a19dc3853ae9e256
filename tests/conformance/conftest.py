"""Helper conformance suite: contract tests that need only a helper binary
(no QEMU, no guest).  The helper is $SLIRP_HELPER (default
build/helper/src/slirp-helper; relative paths are taken from the repository
root), so the suite runs against any implementation, for example Debian's
/usr/bin/libslirp-helper: see table.py.

Tests of optional features (stream framing, D-Bus) skip, with the reason,
when the helper does not advertise the feature in --print-capabilities.
"""

import os
import socket
import sys
import tempfile
import shutil

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "lib"))
import frames  # noqa: E402
import slirp  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and hasattr(item, "funcargs"):
        run = item.funcargs.get("runner")
        if run is not None:
            rep.sections.append(("helper logs", run.report()))


def pytest_sessionfinish(session, exitstatus):
    slirp.Proc.stop_all()


@pytest.fixture(scope="session")
def helper_bin():
    b = slirp.helper_binary()
    if not os.access(b, os.X_OK):
        pytest.fail("helper binary %s missing (build it or set SLIRP_HELPER)"
                    % b)
    return b


@pytest.fixture(scope="session")
def features(helper_bin):
    return slirp.capabilities(helper_bin)


class Runner:
    """Starts helpers on socketpairs and stops them all at teardown."""

    def __init__(self, helper_bin, workdir):
        self.bin = helper_bin
        self.workdir = workdir
        self.procs = []
        self.links = []
        self.bus = None
        self.n = 0

    def start(self, args=(), kind=socket.SOCK_DGRAM, binary=None, **kw):
        """Helper on a fresh socketpair; returns (proc, Link)."""
        hs, ts = socket.socketpair(socket.AF_UNIX, kind)
        self.n += 1
        log = os.path.join(self.workdir, "helper-%d.log" % self.n)
        try:
            p = slirp.start_helper(["--fd=%d" % hs.fileno()] + list(args),
                                   log, binary or self.bin,
                                   pass_fds=[hs.fileno()], **kw)
        finally:
            hs.close()
        self.procs.append(p)
        link = frames.Link(ts)
        self.links.append(link)
        return p, link

    def dbus(self):
        if self.bus is None:
            self.bus = slirp.DBusDaemon(self.workdir)
        return self.bus

    def report(self):
        out = []
        for p in self.procs + ([self.bus] if self.bus else []):
            out.append("--- %s (pid %d, rc %s) ---\n%s" % (
                p.argv[4], p.pid, p.returncode, p.log_tail(30)))
        return "\n".join(out)

    def close(self):
        for p in self.procs:
            p.stop(3)
        for l in self.links:
            try:
                l.sock.close()
            except OSError:
                pass
        if self.bus:
            self.bus.stop()
        slirp.close_dbus_connections()


@pytest.fixture
def runner(helper_bin):
    workdir = tempfile.mkdtemp(prefix="conformance.")
    os.chmod(workdir, 0o755)
    r = Runner(helper_bin, workdir)
    yield r
    r.close()
    shutil.rmtree(workdir, ignore_errors=True)
