# SPDX-License-Identifier: LGPL-2.1-or-later
"""test_sandbox_bulk.py - 1 GB each way through the confined helper.

A network namespace plays the guest: a tap device there is relayed to the
helper's socketpair by the benchmark's forwarder (bench/forwarder.c, built
with `make -C bench` into build/bench/ if needed; not modified here).  The
helper runs with its default confinement.  The guest sends 1 GiB to a host
listener on 127.0.0.1 (the guest's 10.0.2.2) and receives 1 GiB back; both
SHA-256 digests must match.  Then the helper's /proc status must still show
the sandbox, and it must exit 0 on SIGTERM.  Needs root; bounded to about
two minutes by the transfer timeouts.
"""
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HELPER = os.environ.get("SLIRP_HELPER", os.path.join(TOP, "build", "helper", "src", "slirp-helper"))
FORWARDER = os.path.join(TOP, "build", "bench", "forwarder")
SIZE = 1 << 30
CHUNK = 1 << 20
TIMEOUT = 110

# The guest side, run inside the namespace: sends SIZE bytes, half-closes,
# reads SIZE bytes back, prints both digests.
GUEST = r'''
import hashlib, socket, sys
size, chunk = int(sys.argv[2]), 1 << 20
block = bytes(range(256)) * (chunk // 256)
s = socket.create_connection(("10.0.2.2", int(sys.argv[1])), timeout=100)
sent = hashlib.sha256()
left = size
while left:
    n = min(left, chunk)
    s.sendall(block[:n]); sent.update(block[:n]); left -= n
s.shutdown(socket.SHUT_WR)
got = hashlib.sha256(); total = 0
while True:
    d = s.recv(1 << 18)
    if not d: break
    got.update(d); total += len(d)
print(sent.hexdigest(), got.hexdigest(), total)
'''


def run(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30, **kw)


def forwarder():
    if not os.path.exists(FORWARDER):
        run(["make", "-s", "-C", os.path.join(TOP, "bench"), "OUT=" + os.path.dirname(FORWARDER)])
    return FORWARDER


class Host(threading.Thread):
    """Receives SIZE bytes, then sends SIZE bytes back; keeps both digests."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.got = hashlib.sha256()
        self.sent = hashlib.sha256()
        self.received = 0
        self.error = None

    def run(self):
        try:
            self.sock.settimeout(TIMEOUT)
            c, _ = self.sock.accept()
            c.settimeout(TIMEOUT)
            while True:
                d = c.recv(1 << 18)
                if not d:
                    break
                self.got.update(d)
                self.received += len(d)
            block = bytes(reversed(range(256))) * (CHUNK // 256)
            left = SIZE
            while left:
                n = min(left, CHUNK)
                c.sendall(block[:n])
                self.sent.update(block[:n])
                left -= n
            c.close()
        except Exception as e:  # reported by the test
            self.error = e


def status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def test_bulk_transfer_through_confined_helper():
    assert os.geteuid() == 0, "needs root (network namespace, tap device)"
    ns = "sbx-bulk-%d" % os.getpid()
    run(["ip", "netns", "add", ns])
    procs = []
    try:
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        hs, fs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        helper = subprocess.Popen([HELPER, "--fd=%d" % hs.fileno()], pass_fds=[hs.fileno()],
                                  stderr=subprocess.PIPE)
        procs.append(helper)
        fwd = subprocess.Popen([forwarder(), "--fd=%d" % fs.fileno(), "--mode=dgram",
                                "--tap=tap0", "--netns=/run/netns/" + ns],
                               pass_fds=[fs.fileno()], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
        procs.append(fwd)
        hs.close()
        fs.close()
        assert fwd.stdout.readline().startswith(b"READY"), "forwarder did not start"
        run(["ip", "-n", ns, "link", "set", "tap0", "up"])
        run(["ip", "-n", ns, "addr", "add", "10.0.2.15/24", "dev", "tap0"])
        run(["ip", "-n", ns, "route", "add", "default", "via", "10.0.2.2"])

        st = status(helper.pid)
        assert st["Seccomp"] == "2" and int(st["CapEff"], 16) == 0 and st["Uid"].split()[0] != "0"

        host = Host()
        host.start()
        t0 = time.monotonic()
        out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", GUEST,
                              str(host.port), str(SIZE)],
                             capture_output=True, text=True, timeout=TIMEOUT)
        host.join(10)
        elapsed = time.monotonic() - t0
        assert out.returncode == 0, out.stderr
        assert host.error is None, host.error
        sent_digest, got_digest, got_len = out.stdout.split()
        assert host.received == SIZE
        assert sent_digest == host.got.hexdigest(), "guest -> host data differs"
        assert int(got_len) == SIZE
        assert got_digest == host.sent.hexdigest(), "host -> guest data differs"
        print("2 GiB through the confined helper in %.1f s" % elapsed)

        st = status(helper.pid)
        assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1"
        helper.terminate()
        assert helper.wait(10) == 0
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.kill()
            p.wait()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
