"""The guest's network through the slirp-helper, on real QEMU (TCG).

Each test runs once per transport (see conftest.py); one booted guest is
shared by the tests of a transport, in file order.
"""

import re
import signal
import socket
import time

import pytest

import guest
import slirp

GUEST_HTTP_PORT = 8080  # as in conftest.py (busybox httpd in the guest)
GUESTFWD_ADDR, GUESTFWD_PORT = "10.0.2.100", 1234   # as in conftest.py


def test_dhcp_lease(vm):
    lease = vm.lease()
    assert lease["ip"] == "10.0.2.15"
    assert lease["mask"] in ("24", "255.255.255.0")
    assert lease["router"] == "10.0.2.2"
    assert lease["dns"].split() == ["10.0.2.3"]
    out = vm.console.check("ip -4 addr show dev eth0; ip -4 route")
    assert "inet 10.0.2.15/24" in out
    assert re.search(r"default via 10\.0\.2\.2 dev eth0", out)
    # The helper's own view of the lease (control interface).
    info = vm.control("GetInfo")[0]
    assert ("10.0.2.15", slirp.GUEST_MAC) in [tuple(x) for x in
                                              info["leases"]]


def test_fetch_from_host_ipv4(vm, http4):
    vm.lease()
    before = len(http4.requests)
    sha, size = vm.console.fetch_sha256(http4.url("10.0.2.2"), timeout=180)
    assert size == http4.size
    assert sha == http4.sha256
    # It really came through the host's loopback (libslirp maps 10.0.2.2).
    assert ("127.0.0.1", "/blob") in http4.requests[before:]


def test_dns_through_helper(vm, dns, http4):
    vm.lease()
    n = len(dns.queries)
    out, status = vm.console.run("nslookup files.slirp.test 10.0.2.3", 30)
    assert status == 0, out
    assert re.search(r"Address:?\s+10\.0\.2\.2\s*$", out, re.M), out
    assert ("files.slirp.test", 1) in dns.queries[n:]
    # A name the responder does not know is an error for the guest.
    out, status = vm.console.run("nslookup nosuch.slirp.test 10.0.2.3", 30)
    assert status != 0 and "NXDOMAIN" in out, out
    # And the resolver of the guest (resolv.conf from DHCP) uses it too.
    out = vm.console.check("timeout 30 wget -q -O - "
                           "http://files.slirp.test:%d/ok" % http4.port, 40)
    assert out == "ok"


def test_ipv6_to_host(vm, http6):
    vm.lease()
    # SLAAC from libslirp's router advertisement.
    _guest_ipv6(vm)
    # ICMPv6 echo to the host address (answered by libslirp); one lost
    # echo (neighbour discovery still running) is not a failure.
    out, status = vm.console.run("ping -c 3 -W 5 fec0::2", 40)
    m = re.search(r"(\d+) packets received", out)
    assert m and int(m.group(1)) >= 1, out
    before = len(http6.requests)
    sha, size = vm.console.fetch_sha256(http6.url("fec0::2"), timeout=120)
    assert (sha, size) == (http6.sha256, http6.size)
    assert ("::1", "/blob") in http6.requests[before:]
    # An AAAA record through the helper's DNS proxy, then the same fetch
    # by name (the guest's resolver picks the IPv6 address).
    out = vm.console.check("nslookup -type=AAAA host6.slirp.test 10.0.2.3",
                           30)
    assert re.search(r"Address:?\s+fec0::2\s*$", out, re.M), out
    before = len(http6.requests)
    sha, size = vm.console.fetch_sha256(
        "http://host6.slirp.test:%d/blob" % http6.port, timeout=120)
    assert (sha, size) == (http6.sha256, http6.size)
    assert ("::1", "/blob") in http6.requests[before:]


def test_hostfwd_option(vm):
    vm.start_guest_httpd()
    body = _get_retry("127.0.0.1", vm.hostfwd_port, "/hello.txt")
    assert body.decode() == guest.HELLO_TEXT
    fwds = vm.control("ListForwards")[0]
    assert any(f[2] == "tcp" and f[4] == vm.hostfwd_port and
               f[6] == GUEST_HTTP_PORT for f in fwds), fwds


def test_hostfwd_ipv6_over_dbus(vm):
    """[::1] on the host to the guest's IPv6 address."""
    vm.start_guest_httpd()
    addr = _guest_ipv6(vm)
    port = guest.free_tcp_port("::1")
    rid = vm.control("AddForward", ("(s)", ("tcp:[::1]:%d-[%s]:%d" % (
        port, addr, GUEST_HTTP_PORT),)))[0]
    try:
        body = _get_retry("::1", port, "/hello.txt")
        assert body.decode() == guest.HELLO_TEXT
    finally:
        vm.control("RemoveForward", ("(u)", (rid,)))


def test_hostfwd_ipv6_host_default_guest(vm):
    """[::1] on the host to the default guest address (IPv4, the first DHCP
    lease): the contract allows the spec; if the helper accepts it, it must
    work (today libslirp 4.7 accepts the connection and never connects it
    to the guest), otherwise it must refuse it with a D-Bus error."""
    vm.start_guest_httpd()
    port = guest.free_tcp_port("::1")
    spec = "tcp:[::1]:%d-:%d" % (port, GUEST_HTTP_PORT)
    try:
        rid = vm.control("AddForward", ("(s)", (spec,)))[0]
    except slirp.DBusError as e:
        assert e.name.rsplit(".", 1)[-1] in ("BadAddress", "InvalidSpec"), e
        return
    try:
        body = _get_retry("::1", port, "/hello.txt", timeout=20)
        assert body.decode() == guest.HELLO_TEXT
    finally:
        if vm.helper.alive():
            vm.control("RemoveForward", ("(u)", (rid,)))


def test_hostfwd_udp_over_dbus(vm):
    """A UDP forward added at run time: datagrams sent to the host port
    reach the guest's UDP stack (counted at the closed port 5000, see
    guest.udp_noports())."""
    vm.lease()
    port = guest.free_tcp_port()
    rid = vm.control("AddForward", ("(s)", ("udp:127.0.0.1:%d-:5000"
                                            % port,)))[0]
    try:
        before, after = guest.udp_reaches_guest(vm.console, "127.0.0.1", port)
        assert after >= before + 3, "datagrams did not reach the guest " \
            "(NoPorts %d -> %d)" % (before, after)
    finally:
        vm.control("RemoveForward", ("(u)", (rid,)))


def test_guestfwd_to_unix_socket(vm_services):
    vm = vm_services
    vm.lease()
    srv = vm.unix_server
    n = srv.connections
    out = vm.console.check("echo ping-from-guest | timeout 20 nc %s %d"
                           % (GUESTFWD_ADDR, GUESTFWD_PORT), 30)
    assert out.strip() == "pong ping-from-guest"
    assert srv.connections == n + 1
    assert srv.lines[-1] == b"ping-from-guest"


def test_tftp_download(vm_services):
    vm = vm_services
    vm.lease()
    out = vm.console.check("cd /tmp && rm -f boot.bin && timeout 60 tftp -g "
                           "-r boot.bin 10.0.2.2 && sha256sum boot.bin && "
                           "rm boot.bin", 90)
    assert out.split()[-2] == vm.tftp_sha256


def test_hostfwd_added_over_dbus(vm):
    vm.start_guest_httpd()
    port = guest.free_tcp_port()
    rid = vm.control("AddForward", ("(s)", ("tcp:127.0.0.1:%d-:%d"
                                            % (port, GUEST_HTTP_PORT),)))[0]
    fwds = vm.control("ListForwards")[0]
    assert [f for f in fwds if f[0] == rid and f[4] == port], fwds
    body = _get_retry("127.0.0.1", port, "/hello.txt")
    assert body.decode() == guest.HELLO_TEXT
    # The same port again is refused with a D-Bus error that says so.
    with pytest.raises(slirp.DBusError) as e:
        vm.control("AddForward", ("(s)", ("tcp:127.0.0.1:%d-:%d"
                                          % (port, GUEST_HTTP_PORT),)))
    assert e.value.name.endswith(".PortInUse"), e.value
    vm.control("RemoveForward", ("(u)", (rid,)))
    assert rid not in [f[0] for f in vm.control("ListForwards")[0]]
    assert guest.wait_until(lambda: not _connectable("127.0.0.1", port), 5)
    with pytest.raises(slirp.DBusError) as e:
        vm.control("RemoveForward", ("(u)", (rid,)))
    assert e.value.name.endswith(".NoSuchRule"), e.value


def test_qemu_sigkill_makes_helper_exit(vm_fresh):
    """QEMU dies (SIGKILL) while the helper is idle: the helper exits 0
    within 2 s of QEMU's death."""
    vm_fresh.lease()        # the guest has used the network
    time.sleep(1.0)         # ... and is idle now
    assert vm_fresh.helper.alive()
    vm_fresh.qemu.signal(signal.SIGKILL)
    assert vm_fresh.qemu.wait(10) is not None, "QEMU survived SIGKILL"
    t0 = time.monotonic()
    rc = vm_fresh.helper.wait(2.0)
    elapsed = time.monotonic() - t0
    assert rc is not None, "helper still running 2 s after QEMU died"
    assert rc == 0, "helper exit status %s" % rc
    print("helper exited %.2f s after QEMU" % elapsed)


def _guest_ipv6(vm, timeout=30):
    """The guest's SLAAC fec0::/64 address once it is no longer tentative."""
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        out = vm.console.check("ip -6 addr show dev eth0")
        m = re.search(r"inet6 (fec0::[0-9a-f:]+)/64 (?!.*tentative)", out)
        if m:
            return m.group(1)
        time.sleep(1)
    pytest.fail("no usable fec0::/64 address on eth0:\n" + out)


def _connectable(host, port):
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _get_retry(host, port, path, timeout=30.0):
    """GET through a forward; the guest's httpd may need a moment."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            return guest.tcp_get(host, port, path, timeout=10)
        except (OSError, guest.GuestError) as e:
            last = e
            time.sleep(0.5)
    raise AssertionError("GET %s:%d%s failed for %.0f s: %s"
                         % (host, port, path, timeout, last))
