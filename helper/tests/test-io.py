#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""test-io.py - the helper binary over real sockets.

Each case starts slirp-helper on one end of a socketpair (or on a
--socket-path) and plays QEMU on the other end with hand-built frames:
ARP and DHCP answers over datagram and stream framing, never a zero-length
datagram, exit within 2 s of the peer closing (also when idle), SIGTERM exit
0, no blocking when QEMU stops reading and whole frames only on a stream
that QEMU stopped reading, host forwards, one-line errors
with exit status 1 for bad input, GIO mapped only with --dbus-address
(the D-Bus module), where messages go after start-up without /dev/log,
and the IPv6 DNS proxy named to the guest only when the
resolver list has an IPv6 server (run as root: private mount and network
namespaces, dnsns.py).  Run: test-io.py PATH-TO-slirp-helper
"""
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import guestframes as gf
from guestframes import csum

HELPER = None
MAC = bytes.fromhex("525400123456")


def arp_request(target="10.0.2.2", sender="10.0.2.15"):
    return (b"\xff" * 6 + MAC + b"\x08\x06" + bytes.fromhex("0001080006040001") + MAC
            + socket.inet_aton(sender) + b"\0" * 6 + socket.inet_aton(target))


def dhcp_discover(xid=0x12345678):
    bootp = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000,
                        b"\0" * 4, b"\0" * 4, b"\0" * 4, b"\0" * 4, MAC + b"\0" * 10,
                        b"", b"")
    bootp += bytes.fromhex("63825363") + bytes([53, 1, 1, 255])
    udp = struct.pack("!HHHH", 68, 67, 8 + len(bootp), 0) + bootp
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     b"\0" * 4, b"\xff" * 4)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return b"\xff" * 6 + MAC + b"\x08\x00" + ip + udp


def is_arp_reply(frame):
    return len(frame) >= 42 and frame[12:14] == b"\x08\x06" and frame[20:22] == b"\x00\x02"


def dhcp_offer_address(frame):
    if len(frame) < 14 + 20 + 8 + 240 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return None
    ihl = (frame[14] & 0xF) * 4
    udp = frame[14 + ihl:]
    if struct.unpack("!H", udp[2:4])[0] != 68:
        return None
    return socket.inet_ntoa(udp[8 + 16:8 + 20])


def start_private_bus():
    """A private dbus-daemon; returns (process, address).  Stop it with
    stop_private_bus()."""
    bus = subprocess.Popen(["/usr/bin/dbus-daemon", "--session", "--print-address=1",
                            "--nofork", "--nopidfile"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
    return bus, bus.stdout.readline().decode().strip()


def stop_private_bus(bus):
    bus.kill()
    bus.wait()
    bus.stdout.close()


class Helper:
    """slirp-helper on one end of a socketpair; this object is QEMU."""

    def __init__(self, kind=socket.SOCK_DGRAM, args=(), tmp=None):
        self.qemu, theirs = socket.socketpair(socket.AF_UNIX, kind)
        self.kind = kind
        self.proc = subprocess.Popen([HELPER, "--fd=%d" % theirs.fileno(), *args],
                                     pass_fds=[theirs.fileno()], stderr=subprocess.PIPE)
        theirs.close()
        self.rxbuf = b""

    def send(self, frame):
        if self.kind == socket.SOCK_DGRAM:
            self.qemu.send(frame)
        else:
            self.qemu.sendall(struct.pack("!I", len(frame)) + frame)

    def recv(self, timeout=3.0):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame from the helper")
            if self.kind == socket.SOCK_STREAM and len(self.rxbuf) >= 4:
                n = struct.unpack("!I", self.rxbuf[:4])[0]
                if len(self.rxbuf) >= 4 + n:
                    frame, self.rxbuf = self.rxbuf[4:4 + n], self.rxbuf[4 + n:]
                    return frame
            r, _, _ = select.select([self.qemu], [], [], left)
            if not r:
                continue
            data = self.qemu.recv(1 << 17)
            if self.kind == socket.SOCK_DGRAM:
                assert len(data) > 0, "the helper sent a zero-length datagram"
                return data
            if not data:
                raise EOFError("helper closed the stream")
            self.rxbuf += data

    def recv_until(self, pred, timeout=3.0):
        deadline = time.monotonic() + timeout
        while True:
            frame = self.recv(max(0.01, deadline - time.monotonic()))
            got = pred(frame)
            if got:
                return got

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stderr.close()
        self.qemu.close()


class FrameTests(unittest.TestCase):
    def exchange(self, kind):
        h = Helper(kind)
        try:
            h.send(arp_request())
            self.assertTrue(h.recv_until(is_arp_reply))
            h.send(dhcp_discover())
            self.assertEqual(h.recv_until(dhcp_offer_address), "10.0.2.15")
        finally:
            h.close()

    def test_dgram_arp_dhcp(self):
        self.exchange(socket.SOCK_DGRAM)

    def test_stream_arp_dhcp(self):
        self.exchange(socket.SOCK_STREAM)

    def test_stream_split_writes(self):
        h = Helper(socket.SOCK_STREAM)
        try:
            wire = struct.pack("!I", 42) + arp_request()
            for b in wire:
                h.qemu.send(bytes([b]))
                time.sleep(0.001)
            self.assertTrue(h.recv_until(is_arp_reply))
        finally:
            h.close()

    def test_stream_stays_framed_after_stall(self):
        # QEMU reads nothing while more ARP replies are due than the socket
        # (up to 2 * net.core.wmem_max) and the helper's output queue hold:
        # the helper sends what fits, queues some and drops the rest, but
        # only whole frames, so once QEMU reads again every length prefix
        # still starts a reply
        with open("/proc/sys/net/core/wmem_max") as f:
            count = (4 * int(f.read()) + (1 << 20)) // (4 + 42)
        h = Helper(socket.SOCK_STREAM)
        try:
            req = arp_request()
            h.qemu.settimeout(30)  # a helper that stops reading fails here
            h.qemu.sendall((struct.pack("!I", len(req)) + req) * count)
            wire = bytearray()
            off = replies = 0
            deadline = time.monotonic() + 60
            # read until a second passes without data, at a frame boundary
            while time.monotonic() < deadline:
                if not select.select([h.qemu], [], [], 1.0)[0]:
                    if off == len(wire):
                        break
                    continue
                data = h.qemu.recv(1 << 20)
                self.assertTrue(data, "the helper closed the stream")
                wire += data
                while len(wire) - off >= 4:
                    n = struct.unpack_from("!I", wire, off)[0]
                    if len(wire) - off - 4 < n:
                        break
                    self.assertTrue(is_arp_reply(bytes(wire[off + 4:off + 4 + n])), off)
                    off += 4 + n
                    replies += 1
            self.assertEqual(off, len(wire))
            self.assertGreater(replies, 0)
            self.assertLess(replies, count)  # some were dropped: the queue is bounded
            h.send(req)
            self.assertTrue(h.recv_until(is_arp_reply))
        finally:
            h.close()

    def test_custom_net(self):
        h = Helper(args=["--net=192.168.7.9/24"])
        try:
            h.send(arp_request(target="192.168.7.2", sender="192.168.7.15"))
            self.assertTrue(h.recv_until(is_arp_reply))
            h.send(dhcp_discover())
            self.assertEqual(h.recv_until(dhcp_offer_address), "192.168.7.15")
        finally:
            h.close()

    def test_garbage_frames_dropped(self):
        h = Helper()
        try:
            for junk in (b"\x01", b"\xff" * 13, b"\xff" * 12 + b"\x88\xf8" + b"\0" * 50,
                         b"\xff" * 9000):
                h.qemu.send(junk)
            h.send(arp_request())
            self.assertTrue(h.recv_until(is_arp_reply))
            self.assertIsNone(h.proc.poll())
        finally:
            h.close()


class LifecycleTests(unittest.TestCase):
    def assert_exits_after_peer_close(self, kind, idle):
        h = Helper(kind)
        try:
            if not idle:
                h.send(arp_request())
                h.recv_until(is_arp_reply)
            else:
                time.sleep(0.3)
            t0 = time.monotonic()
            h.qemu.close()
            rc = h.proc.wait(timeout=5)
            elapsed = time.monotonic() - t0
            self.assertEqual(rc, 0)
            self.assertLess(elapsed, 2.0)
        finally:
            if h.proc.poll() is None:
                h.proc.kill()
                h.proc.wait()
            h.proc.stderr.close()

    def test_dgram_idle_peer_death(self):
        self.assert_exits_after_peer_close(socket.SOCK_DGRAM, idle=True)

    def test_dgram_busy_peer_death(self):
        self.assert_exits_after_peer_close(socket.SOCK_DGRAM, idle=False)

    def test_stream_peer_death(self):
        self.assert_exits_after_peer_close(socket.SOCK_STREAM, idle=True)

    def test_bus_and_qemu_die_together(self):
        # libvirt's per-VM bus and QEMU can go in the same instant: the
        # helper must still exit promptly (nothing at exit may wait on D-Bus)
        for _ in range(5):
            bus, addr = start_private_bus()
            h = Helper(args=["--dbus-address=" + addr, "--dbus-id=x"])
            try:
                time.sleep(0.3)
                bus.kill()
                h.qemu.close()
                self.assertEqual(h.proc.wait(timeout=2), 0)
            finally:
                if h.proc.poll() is None:
                    h.proc.kill()
                h.proc.wait()
                h.proc.stderr.close()
                stop_private_bus(bus)

    def test_bus_lost_while_waiting_for_state(self):
        # stock libvirt's per-VM dbus-daemon can die (SIGPIPE): no Load can
        # come any more, so a helper holding guest traffic for one must let
        # the guest have its network, and say so once
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "helper.log")
            bus, addr = start_private_bus()
            h = Helper(args=["--dbus-address=" + addr, "--dbus-id=lost", "--dbus-incoming",
                             "--log-file=" + log])
            try:
                time.sleep(0.5)
                stop_private_bus(bus)
                h.send(arp_request())
                self.assertTrue(h.recv_until(is_arp_reply, timeout=10))
                h.send(arp_request())
                self.assertTrue(h.recv_until(is_arp_reply, timeout=10))
                with open(log) as f:
                    self.assertEqual(f.read().count("Lost the D-Bus connection"), 1)
            finally:
                h.close()
                if bus.poll() is None:
                    stop_private_bus(bus)

    def test_bus_that_listens_late(self):
        # libvirt starts the helper once the bus's socket file exists, which
        # the daemon creates when it binds, a moment before it listens: the
        # helper must ride out the refused connections.  Here a socket is
        # bound at the bus path but listens only after a while; then it
        # relays the helper's connection to a real dbus-daemon.
        with tempfile.TemporaryDirectory() as tmp:
            real = os.path.join(tmp, "real.sock")
            path = os.path.join(tmp, "bus.sock")
            bus = subprocess.Popen(["/usr/bin/dbus-daemon", "--session", "--nofork",
                                    "--nopidfile", "--address=unix:path=" + real],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            late = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            late.bind(path)
            h = Helper(args=["--dbus-address=unix:path=" + path, "--dbus-id=late"])
            try:
                time.sleep(0.5)
                self.assertIsNone(h.proc.poll(), "the helper gave up on a bus not listening yet")
                late.listen(1)
                late.settimeout(5)
                conn, _ = late.accept()
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                upstream.connect(real)
                # SCM_CREDENTIALS are not relayed: EXTERNAL auth then sees our
                # uid, which is the helper's too (both run as root here)
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline and h.proc.poll() is None:
                    ready, _, _ = select.select([conn, upstream], [], [], 0.1)
                    for src, dst in ((conn, upstream), (upstream, conn)):
                        if src in ready:
                            data = src.recv(65536)
                            if data:
                                dst.sendall(data)
                self.assertIsNone(h.proc.poll(), h.proc.stderr.read().decode()
                                  if h.proc.poll() is not None else "")
                conn.close()
                upstream.close()
            finally:
                late.close()
                h.qemu.close()
                if h.proc.poll() is None:
                    h.proc.terminate()
                h.proc.wait(timeout=5)
                h.proc.stderr.close()
                bus.kill()
                bus.wait()

    def test_bus_that_never_listens(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "bus.sock")
            never = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            never.bind(path)
            h = Helper(args=["--dbus-address=unix:path=" + path, "--dbus-id=never"])
            try:
                self.assertEqual(h.proc.wait(timeout=10), 1)
                err = h.proc.stderr.read().decode()
                self.assertIn("Cannot connect to --dbus-address 'unix:path=%s'" % path, err)
            finally:
                never.close()
                h.qemu.close()
                if h.proc.poll() is None:
                    h.proc.kill()
                    h.proc.wait()
                h.proc.stderr.close()

    def test_sigterm_while_bus_silent(self):
        # a bus that accepts the connection but never answers: SIGTERM must
        # still end the helper with status 0 at once (not after GDBus's 25 s)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "bus.sock")
            silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            silent.bind(path)
            silent.listen(8)
            h = Helper(args=["--dbus-address=unix:path=" + path, "--dbus-id=silent"])
            try:
                time.sleep(0.5)
                self.assertIsNone(h.proc.poll())
                h.proc.send_signal(signal.SIGTERM)
                # generous bound: only tells a prompt exit from GDBus's 25 s
                self.assertEqual(h.proc.wait(timeout=5), 0)
            finally:
                silent.close()
                h.close()

    def test_sigterm_and_sigint(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            h = Helper()
            try:
                time.sleep(0.2)
                t0 = time.monotonic()
                h.proc.send_signal(sig)
                self.assertEqual(h.proc.wait(timeout=3), 0)
                self.assertLess(time.monotonic() - t0, 1.0)
            finally:
                h.close()

    def test_closed_stderr_pipe(self):
        # libvirt closes the read end of stderr after start-up
        h = Helper(args=["--debug"])
        try:
            time.sleep(0.2)
            h.proc.stderr.close()
            for _ in range(50):
                h.send(arp_request())
            h.recv_until(is_arp_reply)
            self.assertIsNone(h.proc.poll())
            h.proc.send_signal(signal.SIGTERM)
            self.assertEqual(h.proc.wait(timeout=3), 0)
        finally:
            if h.proc.poll() is None:
                h.proc.kill()
            h.proc.wait()
            h.qemu.close()

    def test_inherited_fd_left_open(self):
        # stands in for libvirt's pid-file lock: must stay open in the helper
        r, w = os.pipe()
        qemu, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        proc = subprocess.Popen([HELPER, "--fd=%d" % theirs.fileno()],
                                pass_fds=[theirs.fileno(), w], stderr=subprocess.DEVNULL)
        theirs.close()
        try:
            time.sleep(0.3)
            self.assertTrue(os.path.exists("/proc/%d/fd/%d" % (proc.pid, w)))
        finally:
            proc.kill()
            proc.wait()
            qemu.close()
            os.close(r)
            os.close(w)

    def test_no_block_when_qemu_stops_reading(self):
        h = Helper()
        try:
            # QEMU reads nothing; provoke far more replies than the socket holds
            # (the helper's send buffer holds about 11000 small frames here)
            frame = arp_request()
            sent = 0
            deadline = time.monotonic() + 20  # a helper that blocks stops reading
            while sent < 40000 and time.monotonic() < deadline:
                try:
                    h.qemu.send(frame, socket.MSG_DONTWAIT)
                    sent += 1
                except BlockingIOError:
                    select.select([], [h.qemu], [], 0.1)
            time.sleep(0.3)
            # the loop sleeps in poll, never inside a send to QEMU
            for _ in range(10):
                with open("/proc/%d/task/%d/wchan" % (h.proc.pid, h.proc.pid)) as f:
                    wchan = f.read().strip()
                self.assertTrue("poll" in wchan or wchan == "0", wchan)
                time.sleep(0.05)
            t0 = time.monotonic()
            h.proc.send_signal(signal.SIGTERM)
            self.assertEqual(h.proc.wait(timeout=3), 0)
            self.assertLess(time.monotonic() - t0, 1.0)
        finally:
            h.close()


class SocketPathTests(unittest.TestCase):
    def test_serve_one_connection(self):
        with tempfile.TemporaryDirectory() as d:
            # confined, the helper runs as nobody and removes its socket at
            # exit: the directory must be writable for that user (sandbox.c)
            os.chmod(d, 0o777)
            path = os.path.join(d, "net.sock")
            proc = subprocess.Popen([HELPER, "--socket-path=" + path], stderr=subprocess.PIPE)
            try:
                # the helper binds once it is confined; a loaded machine
                # (a build beside the tests) can take seconds to get there
                deadline = time.monotonic() + 15
                while not os.path.exists(path) and time.monotonic() < deadline:
                    time.sleep(0.02)
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                frame = arp_request()
                s.sendall(struct.pack("!I", len(frame)) + frame)
                s.settimeout(3)
                buf = b""
                while len(buf) < 4 or len(buf) < 4 + struct.unpack("!I", buf[:4])[0]:
                    buf += s.recv(4096)
                self.assertTrue(is_arp_reply(buf[4:]))
                # a second QEMU is turned away
                s2 = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s2.connect(path)
                s2.settimeout(3)
                self.assertEqual(s2.recv(10), b"")
                s2.close()
                s.close()
                self.assertEqual(proc.wait(timeout=3), 0)
                self.assertFalse(os.path.exists(path))
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                proc.stderr.close()


class ForwardTests(unittest.TestCase):
    def free_port(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port

    def test_hostfwd_reaches_guest(self):
        port = self.free_port()
        h = Helper(args=["--hostfwd=tcp:127.0.0.1:%d-:22" % port])
        try:
            h.send(dhcp_discover())
            h.recv_until(dhcp_offer_address)
            c = socket.create_connection(("127.0.0.1", port), timeout=3)
            # libslirp now asks for the guest's MAC or sends the SYN to it
            def to_guest(frame):
                if frame[12:14] == b"\x08\x06" and frame[38:42] == socket.inet_aton("10.0.2.15"):
                    return True
                return frame[12:14] == b"\x08\x00" and frame[23] == 6 and \
                    frame[30:34] == socket.inet_aton("10.0.2.15")
            self.assertTrue(h.recv_until(to_guest))
            c.close()
        finally:
            h.close()

    def test_hostfwd_backlog(self):
        # concurrent clients of a forwarded service wait in the listener's
        # backlog (libslirp listens with 1, which refused all but two).  The
        # helper holds traffic for a Load here, so nothing is accepted and
        # the backlog alone decides how many connections complete.
        port = self.free_port()
        bus, addr = start_private_bus()
        h = Helper(args=["--hostfwd=tcp:127.0.0.1:%d-:22" % port, "--dbus-address=" + addr,
                         "--dbus-id=backlog", "--dbus-incoming"])
        clients = []
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    self.assertLess(time.monotonic(), deadline, "the forward never listened")
                    time.sleep(0.05)
            for _ in range(20):
                c = socket.socket()
                c.setblocking(False)
                c.connect_ex(("127.0.0.1", port))
                clients.append(c)
            pending = list(clients)
            deadline = time.monotonic() + 3
            while pending and time.monotonic() < deadline:
                _, w, _ = select.select([], pending, [], 0.1)
                for c in w:
                    pending.remove(c)
            done = [c for c in clients
                    if c not in pending and c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0]
            self.assertEqual(len(done), 20)
        finally:
            for c in clients:
                c.close()
            h.close()
            stop_private_bus(bus)

    def test_hostfwd_no_spin_without_descriptors(self):
        # with every descriptor in use, libslirp's accept() fails (EMFILE)
        # and the listener stays readable: the helper must not poll it in a
        # loop at 100% CPU while clients keep connecting
        port = self.free_port()
        h = Helper(args=["--hostfwd=tcp:127.0.0.1:%d-:22" % port, "--max-fds=64"])
        clients = []
        try:
            # a lease, so that libslirp keeps the connections it accepts
            h.send(dhcp_discover())
            h.recv_until(dhcp_offer_address)
            for _ in range(100):
                c = socket.socket()
                c.setblocking(False)
                c.connect_ex(("127.0.0.1", port))
                clients.append(c)
            time.sleep(0.5)

            def cpu_ticks():
                with open("/proc/%d/stat" % h.proc.pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                return int(fields[11]) + int(fields[12])
            t0 = cpu_ticks()
            for _ in range(20):
                c = socket.socket()
                c.setblocking(False)
                c.connect_ex(("127.0.0.1", port))
                clients.append(c)
                time.sleep(0.1)
            used = (cpu_ticks() - t0) / os.sysconf("SC_CLK_TCK")
            # generous: a spin uses all of the 2 s
            self.assertLess(used, 0.7, "the helper spun on a listener it cannot accept from")
            self.assertIsNone(h.proc.poll())
        finally:
            for c in clients:
                c.close()
            h.close()

    def test_hostfwd_port_in_use(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        h = Helper(args=["--hostfwd=tcp:127.0.0.1:%d-:22" % port])
        try:
            self.assertEqual(h.proc.wait(timeout=3), 1)
            err = h.proc.stderr.read().decode()
            self.assertIn("--hostfwd", err)
            self.assertIn("in use", err)
            self.assertEqual(err.count("\n"), 1)
        finally:
            h.close()
            busy.close()

    def test_hostfwd_guest_outside_prefix(self):
        # fd00:0:0:10::5 shares the first 7 bytes with fd00::/60 but not its
        # 60th bit: a whole-byte comparison took it for a guest address
        for net6, guest in (("fd00::/60", "fd00:0:0:10::5"), ("fd00::/61", "fd00:0:0:8::5"),
                            ("fd00::/126", "fd00::5")):
            h = Helper(args=["--net6=" + net6,
                             "--hostfwd=tcp:[::1]:%d-[%s]:22" % (self.free_port(), guest)])
            try:
                self.assertEqual(h.proc.wait(timeout=5), 1, (net6, guest))
                err = h.proc.stderr.read().decode()
                self.assertIn("--hostfwd", err)
                self.assertIn("not a guest address", err)
                self.assertEqual(err.count("\n"), 1, err)
            finally:
                h.close()
        # and one inside a /60 is accepted
        port = self.free_port()
        h = Helper(args=["--net6=fd00::/60", "--hostfwd=tcp:[::1]:%d-[fd00:0:0:f::5]:22" % port])
        try:
            deadline = time.monotonic() + 5
            while True:
                self.assertIsNone(h.proc.poll(), "a guest address inside the /60 was refused")
                try:
                    socket.create_connection(("::1", port), timeout=1).close()
                    break
                except OSError:
                    self.assertLess(time.monotonic(), deadline, "the forward never listened")
                    time.sleep(0.05)
        finally:
            h.close()


def tcp_segment(dst, dport, flags, seq, ack=0, src="10.0.2.15", sport=40000):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 2, 0, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return bytes.fromhex("525500000000") + MAC + b"\x08\x00" + ip + tcp


OPEN_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class ControlAccessTests(unittest.TestCase):
    """Only uid 0 and --dbus-control-uid may use the control interface: QEMU
    is a peer of the same bus.  The bus here admits every user, as a
    per-VM bus admits both QEMU's user and libvirt's."""

    NOBODY = 65534

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        os.chmod(self.tmp, 0o755)
        path = os.path.join(self.tmp, "bus.sock")
        conf = os.path.join(self.tmp, "bus.conf")
        with open(conf, "w") as f:
            f.write(OPEN_BUS_CONFIG % path)
        self.bus = subprocess.Popen(["/usr/bin/dbus-daemon", "--config-file=" + conf, "--nofork",
                                     "--nopidfile", "--print-address=1"],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.addr = self.bus.stdout.readline().decode().strip()

    def tearDown(self):
        stop_private_bus(self.bus)
        shutil.rmtree(self.tmp)

    def call(self, method, *args, uid=None):
        cmd = ["dbus-send", "--bus=" + self.addr, "--print-reply",
               "--dest=org.libvirt_slirp.Helper1.acl", "/org/libvirt_slirp/Helper1",
               "org.libvirt_slirp.Helper1." + method, *args]
        if uid is not None:
            cmd = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"] + cmd
        return subprocess.run(cmd, capture_output=True, timeout=10)

    def start(self, *extra):
        h = Helper(args=["--dbus-address=" + self.addr, "--dbus-id=acl", *extra])
        deadline = time.monotonic() + 10
        while self.call("GetInfo").returncode != 0:
            self.assertLess(time.monotonic(), deadline, "the helper never answered")
            time.sleep(0.05)
        return h

    def test_other_users_refused(self):
        h = self.start()
        try:
            port = ForwardTests.free_port(self)
            spec = "string:tcp:127.0.0.1:%d-:22" % port
            for method, args in (("AddForward", [spec]), ("RemoveForward", ["uint32:1"]),
                                 ("ListForwards", []), ("GetInfo", [])):
                p = self.call(method, *args, uid=self.NOBODY)
                self.assertNotEqual(p.returncode, 0, method)
                self.assertIn(b"AccessDenied", p.stderr, method)
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            # root may
            p = self.call("AddForward", spec)
            self.assertEqual(p.returncode, 0, p.stderr)
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        finally:
            h.close()

    def test_control_uid_admitted(self):
        h = self.start("--dbus-control-uid=%d" % self.NOBODY)
        try:
            port = ForwardTests.free_port(self)
            p = self.call("AddForward", "string:tcp:127.0.0.1:%d-:22" % port, uid=self.NOBODY)
            self.assertEqual(p.returncode, 0, p.stderr)
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            p = self.call("GetInfo", uid=1)  # daemon: another unprivileged user
            self.assertIn(b"AccessDenied", p.stderr)
        finally:
            h.close()


class GuestForwardTests(unittest.TestCase):
    def test_guestfwd_to_unix_socket(self):
        with tempfile.TemporaryDirectory() as d:
            os.chmod(d, 0o777)
            path = os.path.join(d, "service.sock")
            srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            srv.bind(path)
            os.chmod(path, 0o777)
            srv.listen()
            srv.settimeout(3)
            h = Helper(args=["--guestfwd=tcp:10.0.2.100:80-unix:" + path])
            try:
                h.send(arp_request())
                h.recv_until(is_arp_reply)
                # the guest connects to 10.0.2.100:80 (libslirp connects the
                # forward once the handshake completes)
                h.send(tcp_segment("10.0.2.100", 80, 0x02, 1000))

                def syn_ack(frame):
                    if frame[12:14] != b"\x08\x00" or frame[23] != 6:
                        return None
                    tcp = frame[14 + (frame[14] & 0xF) * 4:]
                    if tcp[13] & 0x12 == 0x12:
                        return struct.unpack("!I", tcp[4:8])[0]
                    return None
                their_seq = h.recv_until(syn_ack)
                h.send(tcp_segment("10.0.2.100", 80, 0x10, 1001, their_seq + 1))
                conn, _ = srv.accept()
                conn.close()
            finally:
                h.close()
                srv.close()


class NamespacedHelper(Helper):
    """A Helper whose /etc/resolv.conf holds @resolv and whose 127.0.0.1:53
    and [::1]:53 are dnsns.py's DNS servers, in private mount and network
    namespaces (needs root)."""

    def __init__(self, resolv, args=()):
        self.qemu, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.kind = socket.SOCK_DGRAM
        self.rxbuf = b""
        self.resolv = tempfile.NamedTemporaryFile("w", prefix="resolv.", suffix=".conf")
        self.resolv.write(resolv)
        self.resolv.flush()
        os.chmod(self.resolv.name, 0o644)  # read by the confined helper as nobody
        dnsns = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dnsns.py")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--net", "--propagation", "private", sys.executable, dnsns,
             self.resolv.name, HELPER, "--fd=%d" % theirs.fileno(), *args],
            pass_fds=[theirs.fileno()], stderr=subprocess.PIPE)
        theirs.close()

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        super().close()
        self.resolv.close()


class Dns6Tests(unittest.TestCase):
    """The guest is told about the IPv6 DNS proxy (--dns6, fec0::3) only
    when it can answer: libslirp relays queries to it only to an IPv6
    nameserver of the host's resolver list."""

    def ask_dns(self, h, packet_to, ident):
        h.send(packet_to(gf.dns_query("guest.test", ident)))

        def answer(frame):
            udp = gf.parse_udp(frame) or gf.parse_udp6(frame)
            return udp and udp[0] == 53 and gf.dns_answer_a(udp[2], ident)
        return h.recv_until(answer, timeout=10)

    def advertised(self, h):
        """(RDNSS addresses of the RA, DNS servers of the DHCPv6 reply)"""
        h.send(gf.router_solicitation())
        ra = h.recv_until(gf.router_advertisement_options, timeout=10)
        self.assertIn(3, ra)  # prefix information: it is the RA we expect
        h.send(gf.dhcpv6_information_request())
        reply = h.recv_until(gf.dhcpv6_reply_options, timeout=10)
        self.assertIn(1, reply)  # the client id is echoed
        return ([socket.inet_ntop(socket.AF_INET6, o[6:22]) for o in ra.get(25, [])],
                [socket.inet_ntop(socket.AF_INET6, o) for o in reply.get(23, [])])

    def test_ipv4_only_resolver(self):
        h = NamespacedHelper("nameserver 127.0.0.1\n")
        try:
            h.send(gf.arp_request())
            h.recv_until(gf.is_arp_reply, timeout=10)
            # the guest's DNS works, through the IPv4 proxy and the host's server
            self.assertEqual(self.ask_dns(h, lambda q: gf.eth(gf.udp4(40000, 53, q, dst=gf.DNS_IP),
                                                             dst=gf.SLIRP_MAC), 0x4401),
                             "192.0.2.4")
            # and nothing names fec0::3, which could not answer
            self.assertEqual(self.advertised(h), ([], []))
        finally:
            h.close()

    def test_ipv6_resolver(self):
        h = NamespacedHelper("nameserver ::1\nnameserver 127.0.0.1\n")
        try:
            self.assertEqual(self.advertised(h), (["fec0::3"], ["fec0::3"]))
            self.assertEqual(self.ask_dns(h, lambda q: gf.udp6(40000, 53, q, dst=gf.DNS_IP6),
                                          0x6601), "192.0.2.6")
        finally:
            h.close()

    def test_disable_dns(self):
        h = NamespacedHelper("nameserver ::1\n", args=["--disable-dns"])
        try:
            self.assertEqual(self.advertised(h), ([], []))
        finally:
            h.close()


class LoggingTests(unittest.TestCase):
    """Where messages go once start-up is over, on a host without a syslog
    socket (containers, chroots): /dev/log is hidden in a private mount
    namespace (needs root).  Stock libvirt gives the helper /dev/null as
    stderr; a manager that gives a file or a pipe it reads gets them."""

    def run_without_syslog(self, stderr):
        """Start the helper with @stderr and no /dev/log, let it finish
        start-up, stop it; returns its exit status."""
        with tempfile.NamedTemporaryFile() as empty:
            qemu, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            hide = '[ ! -e /dev/log ] || mount --bind "$0" /dev/log; exec "$@"'
            proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", hide, empty.name,
                 HELPER, "--fd=%d" % theirs.fileno()],
                pass_fds=[theirs.fileno()], stderr=stderr)
            theirs.close()
            h = Helper.__new__(Helper)
            h.qemu, h.kind, h.rxbuf, h.proc = qemu, socket.SOCK_DGRAM, b"", proc
            try:
                # once it answers, start-up is complete: it logs elsewhere now
                h.send(arp_request())
                h.recv_until(is_arp_reply, timeout=10)
                proc.send_signal(signal.SIGTERM)
                return proc.wait(timeout=10)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                qemu.close()

    def test_stderr_file(self):
        with tempfile.TemporaryFile() as f:
            self.assertEqual(self.run_without_syslog(f), 0)
            f.seek(0)
            text = f.read().decode()
        self.assertIn("Started:", text)                  # start-up, on stderr anyway
        self.assertIn("Exiting with status 0", text)     # after start-up
        self.assertNotIn("will be lost", text)

    def test_stderr_pipe_still_read(self):
        r, w = os.pipe()
        try:
            self.assertEqual(self.run_without_syslog(w), 0)
            os.close(w)
            w = -1
            with os.fdopen(r, "rb") as f:
                r = -1
                text = f.read().decode()
        finally:
            for fd in (r, w):
                if fd >= 0:
                    os.close(fd)
        self.assertIn("Exiting with status 0", text)


class BadInputTests(unittest.TestCase):
    def run_bad(self, args, must, pass_fds=()):
        p = subprocess.run([HELPER, *args], capture_output=True, timeout=5, pass_fds=pass_fds)
        err = p.stderr.decode()
        self.assertEqual(p.returncode, 1, err)
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn(must, err)

    def test_table(self):
        self.run_bad([], "--fd")
        self.run_bad(["--fd=99"], "'99'")
        self.run_bad(["--fd=abc"], "'abc'")
        self.run_bad(["--fd=3", "--net=10.0.2.0/33"], "--net")
        self.run_bad(["--fd=3", "--nonsense"], "--nonsense")
        with open("/etc/hostname", "rb") as f:
            self.run_bad(["--fd=%d" % f.fileno()], "not a socket", pass_fds=[f.fileno()])
        r, w = os.pipe()
        try:
            self.run_bad(["--fd=%d" % r], "not a socket", pass_fds=[r])
        finally:
            os.close(r)
            os.close(w)
        t = socket.socket()
        try:
            self.run_bad(["--fd=%d" % t.fileno()], "AF_UNIX", pass_fds=[t.fileno()])
        finally:
            t.close()
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.run_bad(["--fd=%d" % b.fileno()], "SOCK_DGRAM", pass_fds=[b.fileno()])
        finally:
            a.close()
            b.close()
        u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.run_bad(["--fd=%d" % u.fileno()], "not connected", pass_fds=[u.fileno()])
        finally:
            u.close()
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.run_bad(["--fd=%d" % b.fileno(), "--tftp=/nonexistent-dir"], "--tftp",
                         pass_fds=[b.fileno()])
        finally:
            a.close()
            b.close()

    def test_capabilities(self):
        import json
        t0 = time.monotonic()
        p = subprocess.run([HELPER, "--print-capabilities"], capture_output=True, timeout=5)
        self.assertEqual(p.returncode, 0)
        doc = json.loads(p.stdout)
        self.assertEqual(doc["type"], "slirp-helper")
        for f in ("ipv4", "ipv6", "tftp", "dbus-address", "migrate", "restrict", "hostfwd"):
            self.assertIn(f, doc["features"])
        self.assertNotIn("exit-with-parent", doc["features"])
        self.assertEqual(p.stderr, b"")


class DbusModuleTests(unittest.TestCase):
    """The D-Bus code is a module: GIO is mapped only with --dbus-address."""

    def running_maps(self, h):
        # once it answers ARP, start-up (and any module load) is over;
        # --sandbox=off keeps /proc/PID/maps readable to an ordinary user
        h.send(arp_request())
        h.recv_until(is_arp_reply)
        with open("/proc/%d/maps" % h.proc.pid) as f:
            return {line.split()[-1] for line in f if "/" in line}

    def test_no_gio_without_dbus(self):
        h = Helper(args=["--sandbox=off"])
        try:
            files = self.running_maps(h)
            self.assertEqual([f for f in files if "libgio" in f or "dbus.so" in f], [])
        finally:
            h.close()

    def test_module_loaded_with_dbus(self):
        bus, addr = start_private_bus()
        h = Helper(args=["--sandbox=off", "--dbus-address=" + addr, "--dbus-id=module"])
        try:
            files = self.running_maps(h)
            self.assertIn(os.path.join(os.path.dirname(HELPER), "slirp-helper-dbus.so"), files)
            self.assertTrue(any("libgio-2.0" in f for f in files), files)
        finally:
            h.close()
            stop_private_bus(bus)

    def test_unloadable_module(self):
        # a module next to the executable is preferred; a broken one is a
        # one-line start-up error naming it
        with tempfile.TemporaryDirectory() as tmp:
            helper = os.path.join(tmp, "slirp-helper")
            module = os.path.join(tmp, "slirp-helper-dbus.so")
            shutil.copy(HELPER, helper)
            open(module, "w").close()
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                p = subprocess.run([helper, "--fd=%d" % b.fileno(),
                                    "--dbus-address=unix:path=/nonexistent", "--dbus-id=m"],
                                   capture_output=True, timeout=5, pass_fds=[b.fileno()])
            finally:
                a.close()
                b.close()
            err = p.stderr.decode()
            self.assertEqual(p.returncode, 1, err)
            self.assertEqual(err.count("\n"), 1, err)
            self.assertIn("Cannot load the D-Bus module '%s': " % module, err)


if __name__ == "__main__":
    HELPER = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
