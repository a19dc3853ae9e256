"""Process fixtures for slirp-helper tests: the helper, QEMU, a private
dbus-daemon, a DNS responder, and D-Bus calls (stable API, stdlib + Debian's
python3-gi for D-Bus).

``helper_binary() -> str``
    The helper under test: $SLIRP_HELPER (a relative path is taken relative
    to the repository root) or build/helper/src/slirp-helper.
``capabilities(binary) -> set``  the --print-capabilities features.

``Proc``: a started process (killed by the kernel if the test process dies
    first: setpriv --pdeathsig KILL).  ``.pid``, ``.argv``, ``.log_path`` (its
    stdout+stderr), ``.alive()``, ``.wait(timeout) -> returncode or None``,
    ``.signal(sig)``, ``.stop(timeout=5)`` (SIGTERM, then SIGKILL; always
    reaps), ``.log()``/``.log_tail(n)``.  Every Proc started here is also
    remembered in ``Proc.started`` so a test session can stop leftovers.

``start_helper(args, log_path, binary=None, pass_fds=(), resolv_conf=None)``
    Start the helper with ``args``.  With ``resolv_conf`` (a file path) the
    helper runs in a private mount namespace (``unshare -m``) where that
    file is bind-mounted on /etc/resolv.conf, so libslirp's DNS proxy asks
    our DnsResponder instead of the host's resolver.  The PID stays the
    helper's (unshare and sh exec).
``wait_unix_listening(path, timeout) -> bool``  /proc/net/unix shows a
    listening socket bound at ``path``.

``start_qemu(workdir, netdev, art, pass_fds=(), mac=..., extra=())``
    qemu-system-x86_64, TCG, q35, direct kernel boot of the test guest with
    ``-netdev <netdev>`` (id must be n0) and one virtio-net-pci.  Serial
    console on ``<workdir>/console.sock`` (``.console_path``); QEMU's own
    output in ``<workdir>/qemu.log``.  ``.console()`` connects a
    guest.GuestConsole (logging to ``<workdir>/console.log``).

``DBusDaemon(workdir)``: a private dbus-daemon (own config, EXTERNAL auth,
    everything allowed) with ``.address``; ``.stop()``.
``dbus_call(address, dest, path, iface, method, args=None, timeout=10)``
    -> unpacked reply tuple; raises ``DBusError`` (``.name``, ``.message``).
``dbus_get_property(address, dest, path, iface, prop)``
``dbus_queued_owners(address, name) -> list``
``wait_bus_name(address, name, timeout) -> bool``

``DnsResponder(names)``: UDP DNS server on a free 127.a.b.53 port 53
    answering A/AAAA for ``names`` ({name: [addresses]}), NXDOMAIN for the
    rest; ``.addr``, ``.queries`` (list of (qname, qtype)),
    ``.resolv_conf(path)`` writes a resolv.conf naming it; ``.stop()``.
``UnixReplyServer(path)``: Unix stream server (mode 0666) answering each
    connection's first line with "pong " + line; ``.connections``,
    ``.lines``, ``.stop()`` (target of --guestfwd=...-unix:PATH tests).
"""

import ipaddress
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guest  # noqa: E402

REPO = guest.REPO
DEFAULT_HELPER = "build/helper/src/slirp-helper"
QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
GUEST_MAC = "52:54:00:12:34:56"


def helper_binary():
    p = os.environ.get("SLIRP_HELPER") or DEFAULT_HELPER
    if not os.path.isabs(p):
        p = os.path.join(REPO, p)
    return p


def capabilities(binary=None):
    binary = binary or helper_binary()
    r = subprocess.run([binary, "--print-capabilities"], capture_output=True,
                       text=True, timeout=10)
    if r.returncode != 0:
        raise RuntimeError("%s --print-capabilities exited %d: %s"
                           % (binary, r.returncode, r.stderr))
    return set(json.loads(r.stdout)["features"])


class Proc:
    started = []

    def __init__(self, argv, log_path, pass_fds=(), env=None, cwd=None,
                 stdin=subprocess.DEVNULL):
        # setpriv --pdeathsig: if the test process dies without running its
        # finalizers (killed by a timeout, say), the kernel kills this
        # process too, so nothing outlives the test run.  setpriv execs, so
        # the PID is the program's.
        self.argv = ["setpriv", "--pdeathsig", "KILL", "--"] + list(argv)
        self.log_path = log_path
        self._logf = open(log_path, "ab")
        self._logf.write(("$ %s\n" % " ".join(self.argv)).encode())
        self._logf.flush()
        self.popen = subprocess.Popen(self.argv, stdin=stdin,
                                      stdout=self._logf,
                                      stderr=subprocess.STDOUT,
                                      pass_fds=tuple(pass_fds), env=env,
                                      cwd=cwd, start_new_session=True)
        self.pid = self.popen.pid
        Proc.started.append(self)

    def alive(self):
        return self.popen.poll() is None

    def wait(self, timeout):
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    @property
    def returncode(self):
        return self.popen.poll()

    def signal(self, sig):
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout=5.0):
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            if self.wait(timeout) is None:
                self.signal(signal.SIGKILL)
                self.wait(10)
        try:
            self._logf.close()
        except OSError:
            pass
        if self in Proc.started:
            Proc.started.remove(self)
        return self.popen.poll()

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=40):
        return "\n".join(self.log().splitlines()[-lines:])

    @classmethod
    def stop_all(cls):
        for p in list(cls.started):
            p.stop(2)


def start_helper(args, log_path, binary=None, pass_fds=(), resolv_conf=None):
    binary = binary or helper_binary()
    if not os.access(binary, os.X_OK):
        raise RuntimeError("helper binary %s is missing or not executable "
                           "(build it, or set SLIRP_HELPER)" % binary)
    argv = [binary] + list(args)
    if resolv_conf:
        # Private mount namespace: only this helper sees our resolv.conf.
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                'mount --bind "$0" /etc/resolv.conf && exec "$@"',
                resolv_conf] + argv
    return Proc(argv, log_path, pass_fds=pass_fds)


def unix_listening(path):
    try:
        with open("/proc/net/unix") as f:
            next(f)
            for line in f:
                parts = line.split()
                # Num RefCount Protocol Flags Type St Inode Path
                if len(parts) >= 8 and parts[7] == path and \
                        int(parts[3], 16) & 0x10000:
                    return True
    except OSError:
        pass
    return False


def wait_unix_listening(path, timeout):
    return guest.wait_until(lambda: unix_listening(path), timeout, 0.02)


class Qemu(Proc):
    def __init__(self, workdir, netdev, art, pass_fds=(), mac=GUEST_MAC,
                 extra=(), memory=256):
        self.workdir = workdir
        self.console_path = os.path.join(workdir, "console.sock")
        self.console_log = os.path.join(workdir, "console.log")
        if os.path.exists(self.console_path):
            os.unlink(self.console_path)
        argv = [QEMU, "-machine", "q35,accel=tcg", 
                "-m", str(memory), "-smp", "1",
                "-nodefaults", "-no-user-config", "-display", "none",
                "-monitor", "none", "-no-reboot",
                "-kernel", art.kernel, "-initrd", art.initrd,
                "-append", art.cmdline,
                "-serial", "unix:%s,server=on,wait=off" % self.console_path,
                "-netdev", netdev,
                "-device", "virtio-net-pci,netdev=n0,mac=%s" % mac]
        argv += list(extra)
        super().__init__(argv, os.path.join(workdir, "qemu.log"),
                         pass_fds=pass_fds)
        self._console = None

    def console(self, timeout=30.0):
        if self._console is None:
            deadline = time.monotonic() + timeout

            def ready():
                if not self.alive():
                    raise RuntimeError("QEMU exited (%s):\n%s" % (
                        self.returncode, self.log_tail()))
                return os.path.exists(self.console_path)
            if not guest.wait_until(ready, timeout):
                raise RuntimeError("QEMU console socket did not appear:\n"
                                   + self.log_tail())
            self._console = guest.GuestConsole(
                self.console_path, self.console_log,
                connect_timeout=max(1.0, deadline - time.monotonic()))
        return self._console

    def stop(self, timeout=5.0):
        rc = super().stop(timeout)
        if self._console is not None:
            self._console.close()
        return rc


def start_qemu(workdir, netdev, art, pass_fds=(), mac=GUEST_MAC, extra=()):
    return Qemu(workdir, netdev, art, pass_fds, mac, extra)


# --- D-Bus ------------------------------------------------------------------

DBUS_CONFIG = """<!DOCTYPE busconfig PUBLIC
 "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"""


class DBusDaemon(Proc):
    def __init__(self, workdir, timeout=10.0):
        self.socket_path = os.path.join(workdir, "bus.sock")
        conf = os.path.join(workdir, "bus.conf")
        with open(conf, "w") as f:
            f.write(DBUS_CONFIG % self.socket_path)
        super().__init__(["dbus-daemon", "--nofork", "--nopidfile",
                          "--config-file=" + conf],
                         os.path.join(workdir, "dbus-daemon.log"))
        self.address = "unix:path=" + self.socket_path
        if not wait_unix_listening(self.socket_path, timeout):
            self.stop()
            raise RuntimeError("dbus-daemon did not listen on %s:\n%s"
                               % (self.socket_path, self.log_tail()))


class DBusError(Exception):
    def __init__(self, name, message):
        self.name, self.message = name, message
        super().__init__("%s: %s" % (name, message))


def _gio():
    from gi.repository import Gio, GLib
    return Gio, GLib


_conns = {}


def _conn(address):
    Gio, GLib = _gio()
    c = _conns.get(address)
    if c is None or c.is_closed():
        c = Gio.DBusConnection.new_for_address_sync(
            address,
            Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
            Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        _conns[address] = c
    return c


def dbus_call(address, dest, path, iface, method, args=None, timeout=10.0):
    """args: a GLib.Variant tuple, or (signature, python tuple)."""
    Gio, GLib = _gio()
    if isinstance(args, tuple) and len(args) == 2 and isinstance(args[0], str):
        args = GLib.Variant(args[0], args[1])
    try:
        r = _conn(address).call_sync(dest, path, iface, method, args, None,
                                     Gio.DBusCallFlags.NONE,
                                     int(timeout * 1000), None)
    except GLib.Error as e:
        name = Gio.DBusError.get_remote_error(e) or "(local)"
        msg = e.message
        Gio.DBusError.strip_remote_error(e)
        raise DBusError(name, e.message or msg)
    return r.unpack() if r is not None else ()


def dbus_get_property(address, dest, path, iface, prop, timeout=10.0):
    return dbus_call(address, dest, path, "org.freedesktop.DBus.Properties",
                     "Get", ("(ss)", (iface, prop)), timeout)[0]


def dbus_queued_owners(address, name):
    try:
        return dbus_call(address, "org.freedesktop.DBus",
                         "/org/freedesktop/DBus", "org.freedesktop.DBus",
                         "ListQueuedOwners", ("(s)", (name,)))[0]
    except DBusError:
        return []


def wait_bus_name(address, name, timeout):
    return guest.wait_until(lambda: bool(dbus_queued_owners(address, name)),
                            timeout, 0.05)


def close_dbus_connections():
    for c in _conns.values():
        try:
            c.close_sync(None)
        except Exception:
            pass
    _conns.clear()


# --- DNS ----------------------------------------------------------------------

class DnsResponder:
    def __init__(self, names):
        self.names = {k.rstrip(".").lower(): v for k, v in names.items()}
        self.queries = []
        self.sock = None
        for _ in range(50):
            addr = "127.%d.%d.53" % (random.randint(1, 254),
                                     random.randint(1, 254))
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind((addr, 53))
            except OSError:
                s.close()
                continue
            self.sock, self.addr = s, addr
            break
        if self.sock is None:
            raise RuntimeError("cannot bind a DNS responder on 127.x.y.53:53")
        self.sock.settimeout(0.2)
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name="dns-responder")
        self._thread.start()

    def resolv_conf(self, path):
        with open(path, "w") as f:
            f.write("nameserver %s\n" % self.addr)
        return path

    def _serve(self):
        while not self._stop:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                reply = self._answer(data)
            except (ValueError, IndexError, struct.error):
                continue
            try:
                self.sock.sendto(reply, peer)
            except OSError:
                pass

    def _answer(self, q):
        qid, flags, qd = struct.unpack("!HHH", q[:6])
        if qd != 1:
            raise ValueError("one question only")
        i, labels = 12, []
        while q[i]:
            n = q[i]
            labels.append(q[i + 1:i + 1 + n].decode("ascii", "replace"))
            i += 1 + n
        qtype, qclass = struct.unpack("!HH", q[i + 1:i + 5])
        question = q[12:i + 5]
        name = ".".join(labels).lower()
        self.queries.append((name, qtype))
        answers = []
        if name in self.names:
            for a in self.names[name]:
                ip = ipaddress.ip_address(a)
                if (qtype == 1 and ip.version == 4) or \
                        (qtype == 28 and ip.version == 6):
                    answers.append(struct.pack("!HHHIH", 0xC00C, qtype, 1,
                                               60, len(ip.packed)) + ip.packed)
            rcode = 0
        else:
            rcode = 3
        hdr = struct.pack("!HHHHHH", qid, 0x8180 | (flags & 0x0100) | rcode,
                          1, len(answers), 0, 0)
        return hdr + question + b"".join(answers)

    def stop(self):
        self._stop = True
        self._thread.join(2)
        self.sock.close()


class UnixReplyServer:
    """A Unix stream socket server at ``path`` (mode 0666, so a helper that
    dropped privileges may connect): for each connection it reads one line
    and answers ``reply_prefix + line``, then closes.  ``.connections``
    counts accepted connections; ``.lines`` the lines received."""

    def __init__(self, path, reply_prefix=b"pong "):
        self.path = path
        self.prefix = reply_prefix
        self.connections = 0
        self.lines = []
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name="unix-reply-server")
        self._thread.start()

    def _serve(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            with c:
                c.settimeout(10)
                data = b""
                try:
                    while b"\n" not in data:
                        chunk = c.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    line = data.split(b"\n", 1)[0]
                    self.lines.append(line)
                    c.sendall(self.prefix + line + b"\n")
                except OSError:
                    pass

    def stop(self):
        self._stop = True
        self._thread.join(2)
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass
