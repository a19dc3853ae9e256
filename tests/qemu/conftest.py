"""Fixtures for the QEMU-level tests: a real qemu-system-x86_64 (TCG) booting
the tiny test guest, connected to the slirp-helper under test
($SLIRP_HELPER, default build/helper/src/slirp-helper) over one of three
transports:

  dgram-fd            socketpair(AF_UNIX, SOCK_DGRAM): helper --fd=M,
                      QEMU -netdev socket,fd=N (what libvirt does)
  stream-fd           socketpair(AF_UNIX, SOCK_STREAM): helper --fd=M,
                      QEMU -netdev stream,addr.type=fd
  stream-socket-path  helper --socket-path=PATH, QEMU -netdev
                      stream,server=off,addr.type=unix,addr.path=PATH

DNS: the host running the tests may have no working resolver, so the helper
runs in a private mount namespace (unshare -m) where /etc/resolv.conf is a
bind-mounted file naming a DNS responder of ours on 127.x.y.53:53.  libslirp
proxies the guest's queries to 10.0.2.3 to that address, exactly as it would
to a real resolver; the responder records the queries it got.
"""

import hashlib
import os
import shutil
import socket
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "lib"))
import guest  # noqa: E402
import slirp  # noqa: E402

TRANSPORTS = ["dgram-fd", "stream-fd", "stream-socket-path"]
DNS_NAMES = {"files.slirp.test": ["10.0.2.2"],
             "host6.slirp.test": ["fec0::2"]}
DBUS_ID = "slirp-52:54:00:12:34:56"
CONTROL_NAME = "org.libvirt_slirp.Helper1.slirp-52_54_00_12_34_56"
CONTROL_PATH = "/org/libvirt_slirp/Helper1"
CONTROL_IFACE = "org.libvirt_slirp.Helper1"
GUEST_HTTP_PORT = 8080
GUESTFWD_ADDR, GUESTFWD_PORT = "10.0.2.100", 1234


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for name in ("vm", "vm_fresh", "vm_services"):
            vm = item.funcargs.get(name) if hasattr(item, "funcargs") else None
            if vm is not None:
                rep.sections.append(("%s logs" % name, vm.report()))


def pytest_sessionfinish(session, exitstatus):
    slirp.Proc.stop_all()


@pytest.fixture(scope="session")
def art():
    return guest.artifacts(build=True)


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


@pytest.fixture(scope="session")
def dns():
    d = slirp.DnsResponder(DNS_NAMES)
    yield d
    d.stop()


@pytest.fixture(scope="session")
def http4():
    s = guest.HttpFileServer(size=4 * 1024 * 1024, host="127.0.0.1")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def http6():
    s = guest.HttpFileServer(size=1024 * 1024, host="::1")
    yield s
    s.stop()


class VM:
    """One helper + one QEMU + a private dbus-daemon; see module doc."""

    def __init__(self, transport, art, helper_bin, dns, workdir,
                 hostfwd_port=None, dbus=True, services=False):
        self.transport = transport
        self.workdir = workdir
        self.bus = None
        self.helper = None
        self.qemu = None
        self.hostfwd_port = hostfwd_port
        self._lease = None
        self._httpd = False
        self.unix_server = None
        args = []
        if dbus:
            self.bus = slirp.DBusDaemon(workdir)
            args += ["--dbus-address=" + self.bus.address,
                     "--dbus-id=" + DBUS_ID]
        if hostfwd_port:
            args.append("--hostfwd=tcp:127.0.0.1:%d-:%d"
                        % (hostfwd_port, GUEST_HTTP_PORT))
        if services:
            # A TFTP directory and a guest forward to a Unix socket.
            tftp = os.path.join(workdir, "tftp")
            os.mkdir(tftp)
            os.chmod(tftp, 0o755)
            data = os.urandom(300 * 1024)
            with open(os.path.join(tftp, "boot.bin"), "wb") as f:
                f.write(data)
            os.chmod(os.path.join(tftp, "boot.bin"), 0o644)
            self.tftp_sha256 = hashlib.sha256(data).hexdigest()
            args.append("--tftp=" + tftp)
            self.unix_server = slirp.UnixReplyServer(
                os.path.join(workdir, "guestfwd.sock"))
            args.append("--guestfwd=tcp:%s:%d-unix:%s"
                        % (GUESTFWD_ADDR, GUESTFWD_PORT,
                           self.unix_server.path))
        resolv = dns.resolv_conf(os.path.join(workdir, "resolv.conf"))
        hlog = os.path.join(workdir, "helper.log")
        if transport in ("dgram-fd", "stream-fd"):
            kind = socket.SOCK_DGRAM if transport == "dgram-fd" \
                else socket.SOCK_STREAM
            hs, qs = socket.socketpair(socket.AF_UNIX, kind)
            try:
                self.helper = slirp.start_helper(
                    ["--fd=%d" % hs.fileno()] + args, hlog, helper_bin,
                    pass_fds=[hs.fileno()], resolv_conf=resolv)
                if transport == "dgram-fd":
                    netdev = "socket,id=n0,fd=%d" % qs.fileno()
                else:
                    netdev = ("stream,id=n0,server=off,addr.type=fd,"
                              "addr.str=%d" % qs.fileno())
                self.qemu = slirp.start_qemu(workdir, netdev, art,
                                             pass_fds=[qs.fileno()])
            finally:
                # Only the helper and QEMU may hold the ends: the helper
                # must see QEMU's end close when QEMU dies.
                hs.close()
                qs.close()
        else:
            path = os.path.join(workdir, "net.sock")
            self.helper = slirp.start_helper(["--socket-path=" + path] + args,
                                             hlog, helper_bin,
                                             resolv_conf=resolv)
            if not slirp.wait_unix_listening(path, 10):
                raise RuntimeError("helper does not listen on %s:\n%s"
                                   % (path, self.helper.log_tail()))
            self.qemu = slirp.start_qemu(
                workdir, "stream,id=n0,server=off,addr.type=unix,"
                "addr.path=" + path, art)
        if self.bus and not slirp.wait_bus_name(self.bus.address,
                                                CONTROL_NAME, 10):
            raise RuntimeError("helper did not take %s on its bus:\n%s"
                               % (CONTROL_NAME, self.helper.log_tail()))
        self.console = self.qemu.console()
        self.console.wait_ready(180)

    def lease(self):
        if self._lease is None:
            self._lease = self.console.dhcp(timeout=60)
        return self._lease

    def start_guest_httpd(self):
        self.lease()
        if not self._httpd:
            # busybox httpd daemonizes; serves /srv (hello.txt).
            self.console.check("httpd -p %d -h /srv" % GUEST_HTTP_PORT)
            self._httpd = True

    def control(self, method, args=None, timeout=10.0):
        return slirp.dbus_call(self.bus.address, CONTROL_NAME, CONTROL_PATH,
                               CONTROL_IFACE, method, args, timeout)

    def report(self):
        parts = []
        for title, proc in (("helper", self.helper), ("qemu", self.qemu),
                            ("dbus-daemon", self.bus)):
            if proc is not None:
                parts.append("--- %s (pid %d, rc %s) log tail ---\n%s"
                             % (title, proc.pid, proc.returncode,
                                proc.log_tail(30)))
        if self.qemu is not None and self.qemu._console is not None:
            parts.append("--- guest console tail (%s) ---\n%s"
                         % (self.qemu.console_log,
                            self.qemu._console.tail(60)))
        return "\n".join(parts)

    def stop(self):
        for p in (self.qemu, self.helper, self.bus):
            if p is not None:
                p.stop()
        if getattr(self, "unix_server", None):
            self.unix_server.stop()
        slirp.close_dbus_connections()


def _make_vm(request, transport, art, helper_bin, dns, **kw):
    workdir = tempfile.mkdtemp(prefix="qemu-%s." % transport)
    os.chmod(workdir, 0o755)
    vm = None
    try:
        vm = VM(transport, art, helper_bin, dns, workdir, **kw)
    except BaseException:
        # Start-up failed: show what we have, stop what we started.
        if vm is None:
            for p in list(slirp.Proc.started):
                if p.log_path.startswith(workdir):
                    print("--- %s ---\n%s" % (p.log_path, p.log_tail(30)))
                    p.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return vm, workdir


@pytest.fixture(scope="module", params=TRANSPORTS)
def vm(request, art, helper_bin, dns):
    port = guest.free_tcp_port()
    v, workdir = _make_vm(request, request.param, art, helper_bin, dns,
                          hostfwd_port=port)
    yield v
    v.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(params=TRANSPORTS)
def vm_fresh(request, art, helper_bin, dns):
    v, workdir = _make_vm(request, request.param, art, helper_bin, dns,
                          dbus=False)
    yield v
    v.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def vm_services(request, art, helper_bin, dns):
    """dgram-fd guest with --tftp and --guestfwd (kept apart from `vm` so a
    problem there does not take the basic tests down with it)."""
    v, workdir = _make_vm(request, "dgram-fd", art, helper_bin, dns,
                          dbus=False, services=True)
    yield v
    v.stop()
    shutil.rmtree(workdir, ignore_errors=True)
