"""Drive the libvirt-slirp test guest from Python tests (stable API).

Used by tests/qemu/, tests/conformance/ and tests/libvirt/.  Only the Python
standard library; run with /usr/bin/python3 (Debian's python3-pytest).
Import it with::

    sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
    import guest

The guest (tests/guest/build.py) is a Debian kernel plus a busybox-static
initramfs whose /init loads the virtio-net modules, prints ``GUEST-READY``
and runs a shell on ttyS0 with echo turned off and no prompt.

API
---
``artifacts(build=True) -> Artifacts``
    Paths of the built guest: ``.kernel``, ``.initrd``, ``.cmdline`` (str),
    ``.dir``.  Builds it first (tests/guest/build.py, incremental) when
    ``build`` is true; otherwise raises ``GuestError`` if missing.

``GuestConsole(socket_path, log_path=None, connect_timeout=30.0)``
    Connects to a serial console exposed as a Unix stream socket (QEMU
    ``-serial unix:PATH,server=on,wait=off``; libvirt ``<serial
    type='unix'><source mode='bind' path='PATH'/>``), retrying until the
    socket accepts or ``connect_timeout`` passes.  Everything the guest
    prints is appended to ``log_path`` (default: PATH + ".log") with \\r
    removed.  Methods (every wait is bounded, every timeout raises
    ``GuestTimeout`` whose message ends with the console tail):

    ``wait_ready(timeout=120.0)``
        Returns once the shell answers.  Works whether or not we were
        connected when ``GUEST-READY`` was printed (it also probes with
        echo commands every 2 s).
    ``wait_for(pattern, timeout=60.0, start=None) -> re.Match``
        Regex search over the console text from offset ``start``: None (the
        default) means "text arriving after the call", 0 means everything
        received so far too; ``mark()`` gives the current offset.
    ``run(cmd, timeout=60.0) -> (output, status)``
        Runs a shell snippet (may be several lines; stdin is /dev/null),
        returns its combined stdout+stderr (str, \\r removed, trailing
        newline stripped) and exit status.  On timeout sends Ctrl-C.
    ``check(cmd, timeout=60.0) -> output``
        ``run`` that raises ``GuestCommandError`` when the status is not 0.
    ``dhcp(iface="eth0", timeout=60.0) -> dict``
        Runs busybox udhcpc once with the guest's own event script, which
        sets the address, the default route and /etc/resolv.conf.  Returns
        the lease: keys ip, mask, router, dns, domain, lease (str values).
    ``fetch_sha256(url, timeout=120.0) -> (sha256_hex, size)``
        ``wget`` the URL inside the guest into /tmp and hash it there.
    ``write_file(path, data: bytes)``
        Create a file in the guest (base64 over the console, small files).
    ``text() -> str``, ``tail(lines=60) -> str``, ``close()``.
    Also a context manager.

``HttpFileServer(size=4 MiB, host="127.0.0.1", seed=None)``
    A threaded HTTP server on ``host`` (IPv4 or IPv6 literal) and a random
    port serving a random blob at ``/blob`` (``.sha256``, ``.size``,
    ``.data``) and "ok\\n" at ``/ok``.  ``.port``, ``.url(addr)`` (URL of the
    blob as the guest sees the host, e.g. url("10.0.2.2") or
    url("fec0::2")), ``.requests`` (list of (client_addr, path)),
    ``.stop()``.  Context manager.

``wait_until(predicate, timeout, interval=0.05) -> bool``
``pid_alive(pid) -> bool``, ``wait_pid_gone(pid, timeout) -> bool``
``free_tcp_port(host="127.0.0.1") -> int``
``tcp_get(host, port, path="/", timeout=10.0) -> bytes``
    Minimal HTTP/1.0 GET over a plain socket (body only), for reaching
    guest services through host forwards.
``wait_for_file_text(path, pattern, timeout) -> re.Match``
    For consoles logged to a file (libvirt ``<serial type='file'>``).

Guest facts the tests rely on: the console line
``GUEST-READY <kernel-version> <interfaces...>`` (e.g. ``GUEST-READY
6.1.0-56-amd64 eth0 lo``) printed once by /init before the shell starts,
interface eth0 (first virtio-net NIC), busybox
applets (udhcpc, wget, nslookup, httpd, nc, ping, sha256sum, ip), the file
/srv/hello.txt containing ``HELLO_TEXT``, udhcpc script /etc/udhcpc.script.
"""

import base64
import collections
import hashlib
import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid

__all__ = ["REPO", "GUEST_DIR", "HELLO_TEXT", "Artifacts", "artifacts",
           "GuestError", "GuestTimeout", "GuestCommandError", "GuestConsole",
           "HttpFileServer", "wait_until", "pid_alive", "wait_pid_gone",
           "free_tcp_port", "tcp_get", "wait_for_file_text"]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
GUEST_DIR = os.environ.get("GUEST_DIR", os.path.join(REPO, "build", "guest"))
HELLO_TEXT = "hello from the libvirt-slirp test guest\n"


class GuestError(Exception):
    pass


class GuestTimeout(GuestError):
    pass


class GuestCommandError(GuestError):
    def __init__(self, cmd, status, output):
        self.cmd, self.status, self.output = cmd, status, output
        super().__init__("guest command %r exited %s:\n%s"
                         % (cmd, status, output))


Artifacts = collections.namedtuple("Artifacts",
                                   "dir kernel initrd cmdline")


def artifacts(build=True):
    """Paths of the guest kernel/initramfs (building them if needed).

    With GUEST_PREBUILT=1 in the environment the guest in GUEST_DIR is
    used as it is: a chroot of another Debian release (make check-trixie)
    runs the guest built on the host, whose kernel package its own apt
    would not find.  Missing files are still a failure.
    """
    d = GUEST_DIR
    if build and os.environ.get("GUEST_PREBUILT") != "1":
        r = subprocess.run([sys.executable if sys.executable else
                            "/usr/bin/python3",
                            os.path.join(REPO, "tests", "guest", "build.py"),
                            "--out", d, "--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=900)
        if r.returncode != 0:
            raise GuestError("guest build failed (%d):\n%s%s"
                             % (r.returncode, r.stdout, r.stderr))
    paths = [os.path.join(d, n) for n in ("vmlinuz", "initramfs.gz",
                                          "cmdline")]
    for p in paths:
        if not os.path.exists(p):
            raise GuestError("guest not built: %s missing "
                             "(run tests/guest/build.py)" % p)
    with open(paths[2]) as f:
        cmdline = f.read().strip()
    return Artifacts(d, paths[0], paths[1], cmdline)


def wait_until(predicate, timeout, interval=0.05):
    """Poll predicate() until true or timeout; returns its last truth."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def wait_pid_gone(pid, timeout):
    return wait_until(lambda: not pid_alive(pid), timeout, 0.02)


def free_tcp_port(host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def tcp_get(host, port, path="/", timeout=10.0):
    """HTTP/1.0 GET; returns the body.  Raises OSError / GuestError."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))
        s.sendall(("GET %s HTTP/1.0\r\nHost: guest\r\n\r\n" % path).encode())
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep or not head.startswith(b"HTTP/"):
        raise GuestError("bad HTTP answer from %s:%d: %r" % (host, port,
                                                               data[:200]))
    status = head.split(b"\r\n", 1)[0]
    if b" 200 " not in status + b" ":
        raise GuestError("HTTP %s from %s:%d" % (status.decode(errors="replace"),
                                                  host, port))
    return body


def udp_noports(console):
    """The guest kernel's Udp NoPorts counter: datagrams that arrived for a
    port nobody listens on.  busybox has no UDP listener, so this counter is
    how the tests see a forwarded datagram arrive."""
    out = console.check("grep '^Udp:' /proc/net/snmp")
    names, values = [l.split()[1:] for l in out.splitlines()[:2]]
    return int(dict(zip(names, values))["NoPorts"])


def udp_reaches_guest(console, host, port, datagrams=3, timeout=30.0):
    """Send datagrams to @host:@port until @datagrams of them arrived at the
    guest's closed UDP port (see udp_noports()); returns the counter's
    (before, after) values, after < before + @datagrams on timeout."""
    before = after = udp_noports(console)
    deadline = time.monotonic() + timeout
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as u:
        while time.monotonic() < deadline and after < before + datagrams:
            u.sendto(b"udp-hello\n", (host, port))
            time.sleep(0.5)
            after = udp_noports(console)
    return before, after


def wait_for_file_text(path, pattern, timeout):
    rx = re.compile(pattern)
    found = []

    def check():
        try:
            with open(path, errors="replace") as f:
                m = rx.search(f.read().replace("\r", ""))
        except FileNotFoundError:
            return False
        if m:
            found.append(m)
        return bool(m)
    if not wait_until(check, timeout, 0.1):
        tail = ""
        try:
            with open(path, errors="replace") as f:
                tail = "\n".join(f.read().replace("\r", "")
                                 .splitlines()[-40:])
        except FileNotFoundError:
            tail = "(file %s does not exist)" % path
        raise GuestTimeout("%r not seen in %s within %.0fs; tail:\n%s"
                           % (pattern, path, timeout, tail))
    return found[0]


class GuestConsole:
    """A guest serial console on a Unix stream socket.  See module doc."""

    def __init__(self, socket_path, log_path=None, connect_timeout=30.0):
        self.path = socket_path
        self.log_path = log_path or socket_path + ".log"
        self._buf = []          # received text chunks (\r removed)
        self._text = ""
        self._cond = threading.Condition()
        self._eof = False
        self._log = open(self.log_path, "a", buffering=1, errors="replace")
        self._sock = self._connect(connect_timeout)
        self._reader = threading.Thread(target=self._read_loop,
                                        name="console-reader", daemon=True)
        self._reader.start()

    # -- plumbing ---------------------------------------------------------
    def _connect(self, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.path)
                return s
            except OSError as e:
                last = e
                s.close()
                time.sleep(0.05)
        raise GuestTimeout("cannot connect to console %s within %.0fs: %s"
                           % (self.path, timeout, last))

    def _read_loop(self):
        while True:
            try:
                data = self._sock.recv(65536)
            except OSError:
                data = b""
            with self._cond:
                if not data:
                    self._eof = True
                    self._cond.notify_all()
                    return
                text = data.decode("utf-8", errors="replace").replace("\r",
                                                                      "")
                self._text += text
                try:
                    self._log.write(text)
                except (OSError, ValueError):
                    pass
                self._cond.notify_all()

    def _send(self, text):
        try:
            self._sock.sendall(text.encode())
        except OSError as e:
            raise GuestError("console %s: send failed: %s\n%s"
                             % (self.path, e, self._tail_msg()))

    def _tail_msg(self, lines=40):
        return "--- console tail (%s) ---\n%s\n--- end ---" % (
            self.log_path, self.tail(lines))

    # -- public -----------------------------------------------------------
    def text(self):
        with self._cond:
            return self._text

    def tail(self, lines=60):
        with self._cond:
            return "\n".join(self._text.splitlines()[-lines:])

    def mark(self):
        """Current end offset of the console text (for wait_for(start=))."""
        with self._cond:
            return len(self._text)

    def wait_for(self, pattern, timeout=60.0, start=None):
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        with self._cond:
            pos = len(self._text) if start is None else start
            while True:
                m = rx.search(self._text, pos)
                if m:
                    return m
                if self._eof:
                    raise GuestError("console %s closed while waiting for %r"
                                     "\n%s" % (self.path, rx.pattern,
                                               self._tail_msg()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise GuestTimeout("%r not seen on %s within %.0fs\n%s"
                                       % (rx.pattern, self.path, timeout,
                                          self._tail_msg()))
                self._cond.wait(min(left, 0.5))

    def wait_ready(self, timeout=120.0):
        deadline = time.monotonic() + timeout
        tok = uuid.uuid4().hex[:8]
        rx = re.compile(r"GUEST-PING-%s-\d+" % tok)
        n = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise GuestTimeout("guest shell did not answer on %s within "
                                   "%.0fs\n%s" % (self.path, timeout,
                                                  self._tail_msg()))
            # Once the shell runs, any of these probes answers.
            self._send('echo "GUEST-PI""NG-%s-%d"\n' % (tok, n))
            n += 1
            try:
                self.wait_for(rx, timeout=min(2.0, left), start=0)
                return
            except GuestTimeout:
                continue

    def run(self, cmd, timeout=60.0):
        tok = uuid.uuid4().hex[:10]
        begin = "@@BEGIN-%s@@\n" % tok
        rx_end = re.compile(r"@@END-%s-(\d+)@@\n" % tok)
        start = self.mark()
        # The quote splits keep the markers intact even if the tty echoes
        # our input; { } keeps cd/export effects, </dev/null protects the
        # following lines from commands that read stdin.
        self._send('echo "@@BEG""IN-%s@@"\n{ %s\n} </dev/null 2>&1\n'
                   'echo "@@EN""D-%s-$?@@"\n' % (tok, cmd, tok))
        try:
            m = self.wait_for(rx_end, timeout=timeout, start=start)
        except GuestTimeout:
            self._send("\x03")
            raise
        with self._cond:
            text = self._text[start:m.start()]
        i = text.find(begin)
        out = text[i + len(begin):] if i >= 0 else text
        if out.endswith("\n"):
            out = out[:-1]
        return out, int(m.group(1))

    def check(self, cmd, timeout=60.0):
        out, status = self.run(cmd, timeout)
        if status != 0:
            raise GuestCommandError(cmd, status, out + "\n" +
                                    self._tail_msg())
        return out

    def dhcp(self, iface="eth0", timeout=60.0):
        tries = max(3, int(timeout // 3))
        out, status = self.run(
            "udhcpc -i %s -f -q -n -t %d -T 2 -s /etc/udhcpc.script"
            % (iface, tries), timeout=timeout)
        m = re.search(r"^DHCP-bound (.*)$", out, re.M)
        if status != 0 or not m:
            raise GuestError("DHCP on %s failed (status %d):\n%s\n%s"
                             % (iface, status, out, self._tail_msg()))
        lease = dict(kv.split("=", 1) for kv in m.group(1).split()
                     if "=" in kv)
        lease.pop("iface", None)
        return lease

    def fetch_sha256(self, url, timeout=120.0):
        # Not wget -T: Debian 12's busybox-static wget crashes with it.
        out = self.check(
            "rm -f /tmp/fetch; timeout %d wget -q -O /tmp/fetch '%s' && "
            "sha256sum /tmp/fetch && wc -c < /tmp/fetch; r=$?; "
            "rm -f /tmp/fetch; (exit $r)" % (max(5, int(timeout) - 5), url),
            timeout=timeout)
        lines = out.split()
        return lines[0], int(lines[-1])

    def write_file(self, path, data):
        enc = base64.b64encode(data).decode()
        self.check(": > '%s.b64'" % path)
        for i in range(0, len(enc), 512):
            self.check("echo '%s' >> '%s.b64'" % (enc[i:i + 512], path))
        self.check("base64 -d '%s.b64' > '%s' && rm '%s.b64'"
                   % (path, path, path))

    def close(self):
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._reader.join(5)
        try:
            self._log.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        srv = self.server.owner
        srv.requests.append((self.client_address[0], self.path))
        if self.path == "/blob":
            body = srv.data
        elif self.path == "/ok":
            body = b"ok\n"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, fmt, *args):
        pass


class HttpFileServer:
    """Host HTTP server with a random blob; see module doc."""

    def __init__(self, size=4 * 1024 * 1024, host="127.0.0.1", seed=None):
        if seed is None:
            self.data = os.urandom(size)
        else:
            import random
            self.data = random.Random(seed).randbytes(size)
        self.size = size
        self.sha256 = hashlib.sha256(self.data).hexdigest()
        self.requests = []
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(http.server.ThreadingHTTPServer):
            address_family = fam
            daemon_threads = True
        self._httpd = Server((host, 0), _Handler)
        self._httpd.owner = self
        self.host = host
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.2},
                                        name="http-file-server", daemon=True)
        self._thread.start()

    def url(self, addr="10.0.2.2", path="/blob"):
        if ":" in addr:
            addr = "[%s]" % addr
        return "http://%s:%d%s" % (addr, self.port, path)

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
