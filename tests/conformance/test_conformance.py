"""The helper contract (docs/helper-interface.md), tested with nothing but the
helper binary, socketpairs, hand-made Ethernet frames and a private
dbus-daemon.  Runs against any helper: SLIRP_HELPER=/path/to/helper."""

import json
import os
import signal
import socket
import struct
import subprocess
import time

import pytest

import frames
import slirp

MAC1 = "52:54:00:00:00:01"
MAC2 = "52:54:00:00:00:02"
MAC3 = "52:54:00:00:00:03"
VMSTATE = ("/org/qemu/VMState1", "org.qemu.VMState1")
DEBIAN_HELPER = "/usr/bin/libslirp-helper"
EXIT_BOUND = 2.0        # seconds: the contract's bound for exits


def need(features, *names):
    missing = [n for n in names if n not in features]
    if missing:
        pytest.skip("helper does not advertise %s" % ", ".join(missing))


# --- capabilities -----------------------------------------------------------

def _caps(helper_bin):
    r = subprocess.run([helper_bin, "--print-capabilities"],
                       capture_output=True, text=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_capabilities_json_shape(helper_bin):
    doc = _caps(helper_bin)
    assert isinstance(doc, dict)
    assert doc.get("type") == "slirp-helper"
    feats = doc.get("features")
    assert isinstance(feats, list) and feats
    assert all(isinstance(f, str) and f for f in feats)
    assert len(set(feats)) == len(feats), "duplicate features: %r" % feats
    assert "ipv4" in feats


def test_capabilities_migrate_needs_dbus(helper_bin, features):
    """migrate means nothing without dbus-address (libvirt registers the
    helper for dbus-vmstate only in the dbus-address branch)."""
    need(features, "migrate")
    assert "dbus-address" in _caps(helper_bin)["features"]


def test_capabilities_no_exit_with_parent(helper_bin):
    """Under libvirt's double fork the parent is a short-lived intermediate:
    exit-with-parent is meaningless and must not be advertised."""
    assert "exit-with-parent" not in _caps(helper_bin)["features"]


# --- frames over --fd -------------------------------------------------------

def _arp_reply_for(ip, mac_s):
    def pred(f):
        a = frames.parse_arp(f)
        if a and a["op"] == 2 and a["spa"] == ip and a["tha"] == mac_s:
            return a
        return None
    return pred


def _arp(link, target, timeout=10.0, mac_s=MAC1):
    link.send(frames.arp_request(mac_s, "10.0.2.15", target))
    a, seen = link.expect(_arp_reply_for(target, mac_s), timeout)
    return a


def test_dgram_dhcp_discover_offer(runner):
    p, link = runner.start()
    xid = 0x12345678
    link.send(frames.dhcp_discover(MAC1, xid))
    offer, seen = link.expect(
        lambda f: (lambda d: d if d and d["xid"] == xid else None)(
            frames.parse_dhcp(f)), 10)
    assert offer, "no DHCP reply within 10 s (%d other frames)" % len(seen)
    assert offer["type"] == "OFFER"
    assert offer["op"] == 2
    assert offer["chaddr"] == MAC1
    assert offer["yiaddr"] == "10.0.2.15"
    assert frames.opt_ip(offer, 54) == ["10.0.2.2"]      # server id
    assert frames.opt_ip(offer, 1) == ["255.255.255.0"]  # netmask
    assert frames.opt_ip(offer, 3) == ["10.0.2.2"]       # router
    assert frames.opt_ip(offer, 6) == ["10.0.2.3"]       # DNS
    ack = frames.dhcp_exchange(link, MAC1)
    assert ack["yiaddr"] == "10.0.2.15"
    # A second client gets the next address.
    assert frames.dhcp_exchange(link, MAC2)["yiaddr"] == "10.0.2.16"
    assert link.zero_length_datagrams == 0
    assert p.alive()


@pytest.mark.parametrize("target", ["10.0.2.2", "10.0.2.3"])
def test_dgram_arp_answered(runner, target):
    p, link = runner.start()
    a = _arp(link, target)
    assert a, "no ARP reply for who-has %s" % target
    assert a["tpa"] == "10.0.2.15"
    assert a["eth_dst"] == MAC1
    assert a["sha"] == a["eth_src"]
    assert a["sha"] != "00:00:00:00:00:00"
    assert link.zero_length_datagrams == 0


def test_dgram_custom_net(runner):
    p, link = runner.start(["--net=192.168.77.0/24"])
    ack = frames.dhcp_exchange(link, MAC1)
    assert ack["yiaddr"] == "192.168.77.15"
    assert frames.opt_ip(ack, 3) == ["192.168.77.2"]
    assert frames.opt_ip(ack, 6) == ["192.168.77.3"]


def test_restrict_dhcp_omits_router_and_dns(runner, features):
    """--restrict: the guest reaches nothing but forwards, and DHCP offers
    no router and no DNS server."""
    need(features, "restrict")
    p, link = runner.start(["--restrict"])
    ack = frames.dhcp_exchange(link, MAC1)
    assert ack["yiaddr"] == "10.0.2.15"
    assert 3 not in ack["options"], "router offered under --restrict"
    assert 6 not in ack["options"], "DNS offered under --restrict"


def test_dgram_garbage_frames_survived(runner):
    """Runts, unknown EtherTypes, garbage and oversize frames are dropped;
    the helper keeps serving."""
    p, link = runner.start()
    bad = [b"", b"\x01" * 5, b"\xff" * 14,
           frames.eth(frames.BROADCAST, frames.mac(MAC1), 0x88B5, b"x" * 50),
           os.urandom(1500), b"\0" * 1514,
           frames.eth(frames.BROADCAST, frames.mac(MAC1), frames.ETH_IP,
                      b"\x45" + os.urandom(200)),
           frames.eth(frames.BROADCAST, frames.mac(MAC1), frames.ETH_IP,
                      os.urandom(65000))]
    for f in bad:
        try:
            link.sock.send(f)
        except OSError:
            pass
    assert _arp(link, "10.0.2.2"), "no ARP reply after garbage"
    assert p.alive()
    assert link.zero_length_datagrams == 0


# --- stream framing ----------------------------------------------------------

def test_stream_dhcp_with_split_writes(runner, features):
    need(features, "stream")
    p, link = runner.start(kind=socket.SOCK_STREAM)
    xid = 0x0badcafe
    f = frames.dhcp_discover(MAC1, xid)
    data = struct.pack("!I", len(f)) + f
    for i in range(0, len(data), 7):
        link.send_raw(data[i:i + 7])
        time.sleep(0.002)
    offer, seen = link.expect(
        lambda fr: (lambda d: d if d and d["xid"] == xid else None)(
            frames.parse_dhcp(fr)), 10)
    assert offer and offer["type"] == "OFFER", "no OFFER over the stream"
    assert offer["yiaddr"] == "10.0.2.15"
    # Two frames in one write.
    a1 = frames.arp_request(MAC1, "10.0.2.15", "10.0.2.2")
    a2 = frames.arp_request(MAC1, "10.0.2.15", "10.0.2.3")
    link.send_raw(struct.pack("!I", len(a1)) + a1 +
                  struct.pack("!I", len(a2)) + a2)
    got = set()
    for _ in range(2):
        a, _seen = link.expect(lambda fr: (lambda x: x if x and x["op"] == 2
                                           else None)(frames.parse_arp(fr)),
                               10)
        assert a, "missing ARP reply (got %s)" % got
        got.add(a["spa"])
    assert got == {"10.0.2.2", "10.0.2.3"}


def test_stream_bogus_lengths_skipped(runner, features):
    """An oversize length is skipped with its bytes, a runt is dropped; the
    connection stays up and in sync."""
    need(features, "stream")
    p, link = runner.start(kind=socket.SOCK_STREAM)
    link.send_raw(struct.pack("!I", 100000) + os.urandom(100000))
    link.send_raw(struct.pack("!I", 0))
    link.send_raw(struct.pack("!I", 5) + b"\x01" * 5)
    assert _arp(link, "10.0.2.2"), "stream out of sync after bogus lengths"
    assert p.alive() and not link.eof


# --- lifecycle -----------------------------------------------------------------

@pytest.mark.parametrize("traffic", ["idle", "after-traffic"])
@pytest.mark.parametrize("kind", ["dgram", "stream"])
def test_exit_when_peer_closes(runner, features, kind, traffic):
    """QEMU's end closes: exit 0 within 2 s, also when nothing flows."""
    if kind == "stream":
        need(features, "stream")
    p, link = runner.start(
        kind=socket.SOCK_STREAM if kind == "stream" else socket.SOCK_DGRAM)
    if traffic == "after-traffic":
        assert _arp(link, "10.0.2.2"), "helper not answering"
    else:
        time.sleep(1.0)
    assert p.alive(), "helper exited early:\n" + p.log_tail()
    link.sock.close()
    t0 = time.monotonic()
    rc = p.wait(EXIT_BOUND)
    assert rc is not None, "helper still running %.1f s after the peer " \
        "closed" % EXIT_BOUND
    assert rc == 0, "exit status %d" % rc
    print("exited after %.2f s" % (time.monotonic() - t0))


@pytest.mark.parametrize("bus", ["no-bus", "with-bus"])
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_signal_clean_exit(runner, features, sig, bus):
    args = []
    if bus == "with-bus":
        need(features, "dbus-address")
        b = runner.dbus()
        args = ["--dbus-address=" + b.address, "--dbus-id=conf-sig"]
    p, link = runner.start(args)
    if bus == "with-bus":
        _vmstate_owner(b, "conf-sig")
    assert _arp(link, "10.0.2.2"), "helper not answering"
    p.signal(getattr(signal, sig))
    rc = p.wait(EXIT_BOUND)
    assert rc is not None, "still running after %s" % sig
    assert rc == 0, "exit status %d after %s" % (rc, sig)


def test_closed_stderr_pipe_tolerated(helper_bin):
    """libvirt closes the read end of the helper's stderr after start-up."""
    hs, ts = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    rfd, wfd = os.pipe()
    os.close(rfd)           # nobody will ever read stderr
    try:
        p = subprocess.Popen([helper_bin, "--fd=%d" % hs.fileno()],
                             pass_fds=[hs.fileno()], stdin=subprocess.DEVNULL,
                             stdout=wfd, stderr=wfd)
    finally:
        os.close(wfd)
        hs.close()
    try:
        link = frames.Link(ts)
        for f in (b"\x01" * 5, os.urandom(1500)):
            ts.send(f)
        assert _arp(link, "10.0.2.2"), "no ARP reply with stderr closed"
        assert p.poll() is None, "helper died: %s" % p.returncode
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(EXIT_BOUND)
        except subprocess.TimeoutExpired:
            rc = None
        assert rc == 0, "exit status %s after SIGTERM" % rc
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        ts.close()


# --- bad arguments ----------------------------------------------------------

def _bad_args_cases():
    # (id, args with {fd} for a good socket / {file} for a non-socket fd,
    #  strings the one-line message must contain, feature needed)
    return [
        ("unknown-option", ["--fd={fd}", "--no-such-option"],
         ["--no-such-option"], None),
        ("net-prefix-33", ["--fd={fd}", "--net=10.0.2.0/33"],
         ["--net", "10.0.2.0/33"], None),
        ("net-not-an-address", ["--fd={fd}", "--net=banana"],
         ["--net", "banana"], None),
        ("fd-not-open", ["--fd=97"], ["--fd", "97"], None),
        ("fd-not-a-socket", ["--fd={file}"], ["--fd", "{file}"], None),
        ("fd-inet-socket", ["--fd={inet}"], ["--fd", "{inet}"], None),
        ("fd-not-a-number", ["--fd=abc"], ["--fd", "abc"], None),
        ("hostfwd-bad-port", ["--fd={fd}", "--hostfwd=tcp::notaport-:80"],
         ["--hostfwd", "notaport"], "hostfwd"),
        ("mtu-too-small", ["--fd={fd}", "--mtu=10"], ["--mtu", "10"], None),
    ]


@pytest.mark.parametrize("case", _bad_args_cases(), ids=lambda c: c[0])
def test_bad_arguments(helper_bin, features, case, tmp_path):
    name, args, culprits, feature = case
    if feature:
        need(features, feature)
    hs, ts = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    f = open(tmp_path / "not-a-socket", "w")
    inet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    subst = {"fd": str(hs.fileno()), "file": str(f.fileno()),
             "inet": str(inet.fileno())}
    argv = [helper_bin] + [a.format(**subst) for a in args]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10,
                           stdin=subprocess.DEVNULL,
                           pass_fds=[hs.fileno(), f.fileno(), inet.fileno()])
    except subprocess.TimeoutExpired:
        pytest.fail("%s still running after 10 s (accepted bad arguments)"
                    % argv)
    finally:
        hs.close()
        ts.close()
        f.close()
        inet.close()
    msg = r.stderr.strip()
    assert r.returncode == 1, "exit status %d, stderr:\n%s" % (r.returncode,
                                                               r.stderr)
    assert msg, "no message on stderr"
    assert "\n" not in msg, "message is not one line:\n" + r.stderr
    for c in culprits:
        c = c.format(**subst)
        assert c in msg, "message does not name %r: %s" % (c, msg)


def test_no_socket_given(helper_bin):
    r = subprocess.run([helper_bin], capture_output=True, text=True,
                       timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode == 1, r.stderr
    msg = r.stderr.strip()
    assert msg and "\n" not in msg, "not one line:\n" + r.stderr


# --- VMState1 over a private bus -------------------------------------------

def _vmstate_owner(bus, dbus_id, timeout=10.0):
    found = []

    def look():
        for owner in slirp.dbus_queued_owners(bus.address,
                                              "org.qemu.VMState1"):
            try:
                v = slirp.dbus_get_property(bus.address, owner, VMSTATE[0],
                                            VMSTATE[1], "Id")
            except slirp.DBusError:
                continue
            if v == dbus_id:
                found.append(owner)
                return True
        return False
    assert slirp.guest.wait_until(look, timeout, 0.1), \
        "no queued owner of org.qemu.VMState1 with Id %r" % dbus_id
    return found[0]


def _save(bus, owner):
    return bytes(slirp.dbus_call(bus.address, owner, VMSTATE[0], VMSTATE[1],
                                 "Save", None, timeout=10)[0])


def _load(bus, owner, blob):
    from gi.repository import GLib
    slirp.dbus_call(bus.address, owner, VMSTATE[0], VMSTATE[1], "Load",
                    GLib.Variant("(ay)", (blob,)), timeout=10)


def _source_with_two_leases(runner, binary=None):
    bus = runner.dbus()
    p, link = runner.start(["--dbus-address=" + bus.address,
                            "--dbus-id=conf-src"], binary=binary)
    assert frames.dhcp_exchange(link, MAC1)["yiaddr"] == "10.0.2.15"
    assert frames.dhcp_exchange(link, MAC2)["yiaddr"] == "10.0.2.16"
    owner = _vmstate_owner(bus, "conf-src")
    blob = _save(bus, owner)
    return blob


def _start_incoming(runner, dbus_id, binary=None):
    bus = runner.dbus()
    p, link = runner.start(["--dbus-address=" + bus.address,
                            "--dbus-id=" + dbus_id, "--dbus-incoming"],
                           binary=binary)
    return p, link, _vmstate_owner(bus, dbus_id)


def _offer_for(link, mac_s):
    xid = int.from_bytes(os.urandom(4), "big")
    link.send(frames.dhcp_discover(mac_s, xid))
    d, seen = link.expect(
        lambda f: (lambda x: x if x and x["xid"] == xid and
                   x["type"] == "OFFER" else None)(frames.parse_dhcp(f)), 10)
    assert d, "no OFFER for %s" % mac_s
    return d["yiaddr"]


def _check_restored(bus, owner, link, blob):
    # Nothing ran in between: the state reads back identical.
    assert _save(bus, owner) == blob
    # The leases came along: MAC2 keeps .16, a new client gets .17.
    assert _offer_for(link, MAC2) == "10.0.2.16"
    assert _offer_for(link, MAC3) == "10.0.2.17"


def test_vmstate_save_load_round_trip(runner, features):
    need(features, "dbus-address", "migrate")
    blob = _source_with_two_leases(runner)
    assert 4 < len(blob) <= 1024 * 1024
    version = struct.unpack("!I", blob[:4])[0]
    assert version >= 1
    p, link, owner = _start_incoming(runner, "conf-dst")
    _load(runner.bus, owner, blob)
    _check_restored(runner.bus, owner, link, blob)


def test_vmstate_bad_blobs_rejected(runner, features):
    need(features, "dbus-address", "migrate")
    blob = _source_with_two_leases(runner)
    p, link, owner = _start_incoming(runner, "conf-dst")
    bad = {"empty": b"", "short": blob[:3], "truncated": blob[:-20],
           "wrong-version": struct.pack("!I", 0x7fff) + blob[4:],
           "trailing-garbage": blob + b"\x01" * 9}
    accepted = []
    for name, b in bad.items():
        try:
            _load(runner.bus, owner, b)
            accepted.append(name)
        except slirp.DBusError:
            pass
    assert not accepted, "bad state accepted: %s" % ", ".join(accepted)
    assert p.alive()
    # The good blob still loads afterwards, as if nothing had happened.
    _load(runner.bus, owner, blob)
    _check_restored(runner.bus, owner, link, blob)


@pytest.mark.parametrize("direction", ["to-debian", "from-debian"])
def test_vmstate_interop_with_debian_helper(runner, features, direction):
    """The state format is the Rust libslirp-helper's: it moves between the
    two helpers in both directions."""
    need(features, "dbus-address", "migrate")
    if not os.access(DEBIAN_HELPER, os.X_OK):
        pytest.skip("%s not installed (apt-get install libslirp-helper)"
                    % DEBIAN_HELPER)
    src = DEBIAN_HELPER if direction == "from-debian" else None
    dst = DEBIAN_HELPER if direction == "to-debian" else None
    blob = _source_with_two_leases(runner, binary=src)
    p, link, owner = _start_incoming(runner, "conf-dst", binary=dst)
    _load(runner.bus, owner, blob)
    _check_restored(runner.bus, owner, link, blob)


# --- host forwards: any accepted rule must not hurt the helper --------------

CONTROL = ("/org/libvirt_slirp/Helper1", "org.libvirt_slirp.Helper1")


def _control_owner(bus, dbus_id):
    # The control object is reachable through the helper's unique name
    # (docs/helper-interface.md 6.1), which we find through VMState1's Id.
    return _vmstate_owner(bus, dbus_id)


@pytest.mark.parametrize("how", ["cli", "dbus"])
@pytest.mark.parametrize("families", ["v4host-v6guest", "v6host-v4guest"])
def test_hostfwd_cross_family_never_crashes(runner, features, how, families):
    """A forward whose host and guest addresses are of different families:
    the helper refuses it (exit 1 / D-Bus error) or serves it, but a
    connection to the host port never kills the helper."""
    need(features, "hostfwd")
    host = "127.0.0.1" if families.startswith("v4") else "::1"
    port = slirp.guest.free_tcp_port(host)
    hostpart = host if ":" not in host else "[%s]" % host
    guestpart = "[fec0::15]" if families.endswith("v6guest") else "10.0.2.15"
    spec = "tcp:%s:%d-%s:8080" % (hostpart, port, guestpart)
    if how == "cli":
        p, link = runner.start(["--hostfwd=" + spec])
        rc = p.wait(1.0)
        if rc is not None:
            assert rc == 1, "exit status %d" % rc
            msg = p.log().strip().splitlines()[-1]
            assert "--hostfwd" in msg, msg
            return
    else:
        need(features, "dbus-control")
        bus = runner.dbus()
        p, link = runner.start(["--dbus-address=" + bus.address,
                                "--dbus-id=conf-fwd"])
        owner = _control_owner(bus, "conf-fwd")
        try:
            slirp.dbus_call(bus.address, owner, CONTROL[0], CONTROL[1],
                            "AddForward", ("(s)", (spec,)))
        except slirp.DBusError as e:
            assert p.alive()
            assert e.name.rsplit(".", 1)[-1] in ("BadAddress", "InvalidSpec"),\
                e
            return
    # Accepted: a host connection to it must leave the helper running.
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as c:
        c.settimeout(3)
        try:
            c.connect((host, port))
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            c.recv(100)
        except OSError:
            pass
    time.sleep(0.5)
    assert p.alive(), "helper died (status %s) on a connection to %s:\n%s" \
        % (p.returncode, spec, p.log_tail(5))
    assert _arp(link, "10.0.2.2"), "helper stopped answering"


def test_tftp_guestfwd_and_bus_in_one_directory(runner, features):
    """A TFTP directory, a guest forward's Unix socket and the D-Bus socket
    all in one directory (the manager's private directory, say): the helper
    starts, serves frames and joins the bus."""
    need(features, "tftp", "guestfwd", "dbus-address")
    bus = runner.dbus()            # <workdir>/bus.sock
    tftp = os.path.join(runner.workdir, "tftp")
    os.mkdir(tftp)
    os.chmod(tftp, 0o755)
    srv = slirp.UnixReplyServer(os.path.join(runner.workdir, "fwd.sock"))
    try:
        p, link = runner.start(["--dbus-address=" + bus.address,
                                "--dbus-id=conf-dir", "--tftp=" + tftp,
                                "--guestfwd=tcp:10.0.2.100:1234-unix:"
                                + srv.path])
        rc = p.wait(1.0)
        assert rc is None, "helper exited %s:\n%s" % (rc, p.log_tail(5))
        assert _arp(link, "10.0.2.2"), "helper not answering"
        _vmstate_owner(bus, "conf-dir")
    finally:
        srv.stop()


# --- migration-related behaviour ------------------------------------------------

def test_dbus_incoming_holds_traffic_until_load(runner, features):
    need(features, "dbus-address", "migrate")
    blob = _source_with_two_leases(runner)
    p, link, owner = _start_incoming(runner, "conf-dst")
    xid = 0x5151
    link.send(frames.dhcp_discover(MAC3, xid))
    early, seen = link.expect(lambda f: frames.parse_dhcp(f), 1.5)
    assert early is None, "guest traffic answered before Load: %r" % early
    _load(runner.bus, owner, blob)
    # After Load the helper serves the guest (a resend is fine).
    assert _offer_for(link, MAC3) == "10.0.2.17"


def _assert_load_refused(bus, owner, blob, p):
    """Load fails, the helper's state is what it was, and it lives on."""
    before = _save(bus, owner)
    with pytest.raises(slirp.DBusError):
        _load(bus, owner, blob)
    assert _save(bus, owner) == before
    assert p.alive()


def test_load_accepted_once_before_guest_traffic(runner, features):
    """A restore without --dbus-incoming (stock libvirt 11.3 restores that
    way) still gets its state: one Load before any guest frame is taken;
    a second one would replace live state and is refused."""
    need(features, "dbus-address", "migrate")
    blob = _source_with_two_leases(runner)
    bus = runner.bus
    p, link = runner.start(["--dbus-address=" + bus.address,
                            "--dbus-id=conf-restore"])
    owner = _vmstate_owner(bus, "conf-restore")
    _load(bus, owner, blob)
    assert _offer_for(link, MAC3) == "10.0.2.17"
    _assert_load_refused(bus, owner, blob, p)


def test_load_refused_after_guest_traffic(runner, features):
    """Loading state into a helper that is already serving a guest would
    replace its live state: once a guest frame has been served, Load is
    refused and the state is left as it was."""
    need(features, "dbus-address", "migrate")
    blob = _source_with_two_leases(runner)
    bus = runner.bus
    p, link = runner.start(["--dbus-address=" + bus.address,
                            "--dbus-id=conf-live"])
    owner = _vmstate_owner(bus, "conf-live")
    assert _arp(link, "10.0.2.2"), "helper not answering"
    _assert_load_refused(bus, owner, blob, p)


def test_save_answers_while_qemu_does_not_read(runner, features):
    """A paused VM: QEMU stops reading the socket.  The helper drops what
    it cannot send instead of blocking, so Save() still answers."""
    need(features, "dbus-address", "migrate")
    bus = runner.dbus()
    p, link = runner.start(["--dbus-address=" + bus.address,
                            "--dbus-id=conf-full"])
    owner = _vmstate_owner(bus, "conf-full")
    # Every ARP request makes the helper send a reply we never read, until
    # its socket's send queue (up to 2 * net.core.wmem_max) is full and its
    # sends fail with EAGAIN: 20000 replies are ~20 MB of queue.
    req = frames.arp_request(MAC1, "10.0.2.15", "10.0.2.2")
    link.sock.setblocking(False)
    sent, deadline = 0, time.monotonic() + 30
    while sent < 20000 and time.monotonic() < deadline:
        try:
            link.sock.send(req)
            sent += 1
        except BlockingIOError:
            time.sleep(0.002)
    assert sent == 20000, "the helper stopped reading (%d sent)" % sent
    time.sleep(0.5)
    t0 = time.monotonic()
    blob = _save(bus, owner)      # 10 s D-Bus timeout
    assert blob[:4] and len(blob) > 4
    print("Save answered in %.2f s" % (time.monotonic() - t0))
    assert p.alive()
    # Drain what is queued; the helper still answers new requests.
    link.sock.setblocking(True)
    while link.recv(0.2) is not None:
        pass
    assert _arp(link, "10.0.2.3"), "helper stopped answering"
    if "dbus-control" in features:
        info = slirp.dbus_call(bus.address, owner, CONTROL[0], CONTROL[1],
                               "GetInfo")[0]
        assert info["dropped-to-guest-full"] > 0, info
