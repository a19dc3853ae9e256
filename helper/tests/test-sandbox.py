#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""test-sandbox.py - every confinement property, checked on a running helper.

Each case starts the helper (as root, as root without capabilities the way
libvirt's security_driver="none" does, or as an ordinary user) on one end of
a socketpair, plays the guest on the other end with hand-built frames
(guestframes.py), and reads the result from /proc/PID: ids, capabilities,
no_new_privs, seccomp mode, the root directory, the descriptor count.  A
test-only build (slirp-helper-testhooks) tries forbidden calls.  Needs root.

Run: test-sandbox.py PATH-TO-slirp-helper PATH-TO-slirp-helper-testhooks
"""
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestframes as gf  # noqa: E402

HELPER = None
HOOKS = None
SETPRIV_NO_CAPS = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"]
SETPRIV_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                  "--inh-caps=-all", "--bounding-set=-all", "--"]
# libvirt's DAC driver with the fork's `confine` patch: the VM's user, with
# the four capabilities the helper needs as ambient capabilities
AMBIENT_CAPS = "+setuid,+setgid,+sys_admin,+setpcap"
SETPRIV_NOBODY_AMBIENT = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          "--inh-caps=" + AMBIENT_CAPS, "--ambient-caps=" + AMBIENT_CAPS, "--"]
CAP_SETS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


def status(pid):
    return status_of("/proc/%d/status" % pid)


def status_of(path):
    out = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def assert_every_thread_without_capabilities(test, pid):
    """All five capability sets of every thread, from /proc/PID/task/*."""
    tids = os.listdir("/proc/%d/task" % pid)
    for tid in tids:
        t = status_of("/proc/%d/task/%s/status" % (pid, tid))
        for key in CAP_SETS:
            test.assertEqual(int(t[key], 16), 0, "%s of thread %s is %s" % (key, tid, t[key]))
    return tids


def confinement_level(stderr_text):
    """The documented start-up line: "slirp-helper: info: Confinement: LEVEL (...)"."""
    for line in stderr_text.splitlines():
        if line.startswith("slirp-helper: info: Confinement: "):
            return line.split()[3]
    raise AssertionError("no Confinement line in: " + stderr_text)


def wait_for(pred, timeout, what):
    """Polls pred() until true; the timeout only bounds a hang."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


class Helper:
    """The helper on one end of a datagram socketpair; this object is QEMU."""

    def __init__(self, args=(), prefix=(), binary=None, env=None, pass_fds=(), preexec_fn=None):
        self.qemu, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.qemu.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.log = tempfile.NamedTemporaryFile(prefix="sandbox-", suffix=".log", delete=False)
        self.log.close()
        os.chmod(self.log.name, 0o666)
        self.proc = subprocess.Popen([*prefix, binary or HELPER, "--fd=%d" % theirs.fileno(),
                                      "--log-file=" + self.log.name, *args],
                                     pass_fds=[theirs.fileno(), *pass_fds],
                                     stderr=subprocess.PIPE, env=env, preexec_fn=preexec_fn)
        theirs.close()
        self.pid = self.proc.pid
        if prefix:  # setpriv execs the helper: same pid
            pass
        self.sport = 40000

    def wait_started(self):
        """Reads stderr up to the "Started:" line (start-up goes to stderr)."""
        self.stderr_text = ""
        deadline = time.monotonic() + 10
        while "Started:" not in self.stderr_text:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("helper did not start: %s" % self.stderr_text)
            fd = self.proc.stderr.fileno()
            r, _, _ = select.select([fd], [], [], left)
            if r:
                data = os.read(fd, 4096).decode(errors="replace")
                if not data:
                    self.proc.wait()
                    raise AssertionError("helper exited %s: %s" % (self.proc.returncode,
                                                                   self.stderr_text))
                self.stderr_text += data
        return self

    def read_log(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def send(self, frame):
        self.qemu.send(frame)

    def recv_until(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.qemu], [], [], max(0, deadline - time.monotonic()))
            if not r:
                continue
            got = pred(self.qemu.recv(1 << 17))
            if got:
                return got
        raise AssertionError("no matching frame from the helper")

    def announce(self):
        """ARP, so that libslirp knows the guest's MAC."""
        self.send(gf.arp_request())
        self.recv_until(gf.is_arp_reply)

    def tcp_connect(self, port, dst=gf.HOST_IP):
        """Sends a SYN and returns (sport, their seq) from the SYN-ACK."""
        self.sport += 1
        sport = self.sport
        self.send(gf.tcp_frame(sport, port, 1000, 0, gf.TCP_SYN, dst=dst))

        def synack(frame):
            t = gf.parse_tcp(frame)
            if t and t[1] == sport and t[4] & gf.TCP_SYN and t[4] & gf.TCP_ACK:
                return t
            if t and t[1] == sport and t[4] & gf.TCP_RST:
                raise AssertionError("connection to port %d refused" % port)
            return None
        t = self.recv_until(synack)
        self.send(gf.tcp_frame(sport, port, 1001, t[2] + 1, gf.TCP_ACK, dst=dst))
        return sport, t[2]

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stderr.close()
        self.qemu.close()
        if os.path.exists(self.log.name):  # closing twice is fine
            os.unlink(self.log.name)


class Listener:
    """A TCP listener on the host's loopback that accepts and keeps."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4096)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        self.sock.settimeout(0.1)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self):
        self.stop = True
        self.thread.join()
        for c in self.conns:
            c.close()
        self.sock.close()


class ConfinementTests(unittest.TestCase):
    def start(self, *args, **kw):
        h = Helper(*args, **kw).wait_started()
        self.addCleanup(h.close)
        return h

    def assert_confined(self, st, expect_uid=None):
        for key in ("CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"):
            self.assertEqual(int(st[key], 16), 0, key)
        self.assertEqual(st["NoNewPrivs"], "1")
        self.assertEqual(st["Seccomp"], "2")
        if expect_uid is not None:
            self.assertEqual(st["Uid"].split(), [str(expect_uid)] * 4)

    def test_root_status(self):
        """Started as root: nobody, no capabilities, no_new_privs, filter."""
        h = self.start()
        st = status(h.pid)
        self.assert_confined(st, expect_uid=65534)
        self.assertEqual(st["Gid"].split(), ["65534"] * 4)
        self.assertEqual(st["Groups"], "")
        self.assertEqual(confinement_level(h.stderr_text), "full")
        # every thread, not just the main one
        for tid in os.listdir("/proc/%d/task" % h.pid):
            t = status_of("/proc/%d/task/%s/status" % (h.pid, tid))
            self.assertEqual(t["Seccomp"], "2", "thread %s" % tid)
            self.assertEqual(int(t["CapEff"], 16), 0, "thread %s" % tid)
        self.assertNotEqual(os.readlink("/proc/%d/ns/mnt" % h.pid), os.readlink("/proc/self/ns/mnt"))
        self.assertNotEqual(os.readlink("/proc/%d/ns/ipc" % h.pid), os.readlink("/proc/self/ns/ipc"))
        self.assertNotEqual(os.readlink("/proc/%d/ns/uts" % h.pid), os.readlink("/proc/self/ns/uts"))
        self.assertEqual(os.readlink("/proc/%d/ns/net" % h.pid), os.readlink("/proc/self/ns/net"))

    def test_pidfile_lock_kept(self):
        """libvirt's locked pid file, inherited, stays open and locked."""
        import fcntl
        # only one descriptor of the file may exist here: closing any other
        # in the child (close_fds) would drop the child's POSIX lock
        tmp_fd, path = tempfile.mkstemp(suffix=".pid")
        os.close(tmp_fd)
        self.addCleanup(os.unlink, path)
        fd = os.open(path, os.O_RDWR)
        self.addCleanup(os.close, fd)

        def lock_in_child():  # as virExec does, in the child before exec
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

        def try_lock():
            probe = os.open(path, os.O_RDWR)
            try:
                fcntl.lockf(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.lockf(probe, fcntl.LOCK_UN)
                return True
            except OSError:
                return False
            finally:
                os.close(probe)

        h = self.start(pass_fds=[fd], preexec_fn=lock_in_child)
        self.assertEqual(status(h.pid)["Seccomp"], "2")
        self.assertIn(str(fd), os.listdir("/proc/%d/fd" % h.pid))
        self.assertFalse(try_lock(), "the confined helper no longer holds the lock")
        h.proc.send_signal(signal.SIGTERM)
        self.assertEqual(h.proc.wait(10), 0)
        self.assertTrue(try_lock(), "the lock outlived the helper")

    def test_runas(self):
        h = self.start(args=["--runas=daemon:nogroup"])
        st = status(h.pid)
        self.assertEqual(st["Uid"].split()[0], "1")
        self.assertEqual(st["Gid"].split()[0], "65534")
        self.assert_confined(st)

    def test_bad_runas(self):
        """One line naming --runas and the value, exit status 1."""
        for value, text in (("no-such-user-x", "no user 'no-such-user-x'"),
                            ("nobody:no-such-group-x", "no group 'no-such-group-x'"),
                            ("root", "the user and group must not be root"),
                            ("nobody:root", "the user and group must not be root")):
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            with a, b:
                p = subprocess.run([HELPER, "--fd=%d" % b.fileno(), "--runas=" + value],
                                   pass_fds=[b.fileno()], capture_output=True, text=True,
                                   timeout=10)
            self.assertEqual(p.returncode, 1, value)
            self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
            self.assertIn("Invalid --runas value '%s': %s" % (value, text), p.stderr)

    def test_empty_root(self):
        """Nothing of the host is visible: only resolv.conf and urandom."""
        h = self.start()
        root = "/proc/%d/root" % h.pid
        found = []
        for d, dirs, files in os.walk(root):
            for name in dirs + files:
                found.append(os.path.relpath(os.path.join(d, name), root))
        self.assertEqual(sorted(found), ["dev", "dev/urandom", "etc", "etc/resolv.conf"])
        self.assertFalse(os.path.exists(root + "/etc/passwd"))
        with open(root + "/etc/resolv.conf") as f, open("/etc/resolv.conf") as g:
            self.assertEqual(f.read(), g.read())
        # read-only: even root cannot write into the helper's root
        with self.assertRaises(OSError):
            open(root + "/x", "w")

    def test_tftp_dir_visible(self):
        with tempfile.TemporaryDirectory() as d:
            os.chmod(d, 0o755)
            with open(os.path.join(d, "boot.bin"), "wb") as f:
                f.write(b"B" * 1000)
            h = self.start(args=["--tftp=" + d])
            root = "/proc/%d/root" % h.pid
            self.assertEqual(os.listdir(root + d), ["boot.bin"])
            self.assertEqual(sorted(os.listdir(root)), ["dev", "etc", d.split("/")[1]])
            # and libslirp serves it from inside the sandbox
            h.announce()
            h.send(gf.tftp_rrq("boot.bin"))
            data = h.recv_until(lambda fr: (lambda u: u and u[0] == 69 or None)(gf.parse_udp(fr))
                                and gf.parse_udp(fr)[2])
            self.assertEqual(data[:4], b"\0\x03\0\x01")  # DATA block 1
            self.assertEqual(data[4:], b"B" * 512)

    def test_dhcp_and_tcp_nat(self):
        """DHCP and a TCP connection to a host listener, while confined."""
        h = self.start()
        h.send(gf.dhcp_discover())
        self.assertEqual(h.recv_until(gf.dhcp_offer_address), "10.0.2.15")
        h.announce()
        lst = Listener()
        self.addCleanup(lst.close)
        sport, their_seq = h.tcp_connect(lst.port)
        wait_for(lambda: lst.conns, 5, "the host listener to accept")
        h.send(gf.tcp_frame(sport, lst.port, 1001, their_seq + 1, gf.TCP_ACK | gf.TCP_PSH,
                            b"hello"))
        lst.conns[0].settimeout(5)
        self.assertEqual(lst.conns[0].recv(5), b"hello")
        lst.conns[0].sendall(b"world")
        got = h.recv_until(lambda fr: (lambda t: t and t[0] == lst.port and t[5] or None)(
            gf.parse_tcp(fr)))
        self.assertEqual(got, b"world")

    def test_dns_after_cache_expiry(self):
        """DNS keeps working after libslirp's 1 s resolv.conf cache expires.

        The helper runs in a private mount namespace whose /etc/resolv.conf
        names a responder on 127.0.0.1 that this test runs.
        """
        srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            srv.bind(("127.0.0.1", 53))
        except OSError as e:
            self.fail("cannot run a DNS responder on 127.0.0.1:53: %s" % e)
        self.addCleanup(srv.close)
        answers = []
        stop = threading.Event()

        def respond():
            srv.settimeout(0.2)
            while len(answers) < 2:
                try:
                    q, peer = srv.recvfrom(512)
                except socket.timeout:
                    if stop.is_set():
                        return
                    continue
                except OSError:
                    return
                answers.append(q)
                srv.sendto(q[:2] + b"\x81\x80" + q[4:], peer)
        t = threading.Thread(target=respond, daemon=True)
        t.start()
        with tempfile.NamedTemporaryFile("w", suffix=".resolv", delete=False) as rc:
            rc.write("nameserver 127.0.0.1\n")
        self.addCleanup(os.unlink, rc.name)
        os.chmod(rc.name, 0o644)
        prefix = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                  'mount --bind "$0" /etc/resolv.conf && exec "$@"', rc.name]
        h = self.start(prefix=prefix)
        h.announce()
        for ident in (1, 2):
            h.send(gf.eth(gf.udp4(5353, 53, gf.dns_query("example.test", ident), dst=gf.DNS_IP),
                          dst=gf.SLIRP_MAC))
            reply = h.recv_until(lambda fr: (lambda u: u and u[0] == 53 or None)(gf.parse_udp(fr))
                                 and gf.parse_udp(fr)[2])
            self.assertEqual(struct.unpack("!H", reply[:2])[0], ident)
            if ident == 1:
                time.sleep(1.5)  # let libslirp's cache expire: it stats the file again
        stop.set()
        t.join(2)
        self.assertEqual(len(answers), 2)

    def test_socket_path_unlinked(self):
        """--socket-path: the confined helper removes its socket at exit."""
        with tempfile.TemporaryDirectory() as d:
            os.chmod(d, 0o777)
            path = os.path.join(d, "net.sock")
            p = subprocess.Popen([HELPER, "--socket-path=" + path], stderr=subprocess.PIPE)
            try:
                wait_for(lambda: os.path.exists(path), 5, "the socket")
                p.send_signal(signal.SIGTERM)
                self.assertEqual(p.wait(10), 0)
                self.assertFalse(os.path.exists(path))
            finally:
                if p.poll() is None:
                    p.kill()
                p.wait()
                p.stderr.close()

    def test_sigterm_exit_zero(self):
        h = self.start()
        h.proc.send_signal(signal.SIGTERM)
        self.assertEqual(h.proc.wait(10), 0)

    def test_root_without_capabilities(self):
        """libvirt with security_driver="none": root, capabilities cleared;
        the level is visible, and Landlock hides the host's files."""
        h = self.start(prefix=SETPRIV_NO_CAPS)
        st = status(h.pid)
        self.assert_confined(st)
        self.assertIn("started as root without CAP_SYS_ADMIN", h.stderr_text)
        self.assertEqual(confinement_level(h.stderr_text), "filesystem")
        h.send(gf.dhcp_discover())
        self.assertEqual(h.recv_until(gf.dhcp_offer_address), "10.0.2.15")

    def test_root_without_capabilities_cannot_read_host_files(self):
        """uid 0 is kept, but /etc/passwd is out of reach (Landlock)."""
        env = dict(os.environ, SLIRP_HELPER_TEST_HOOK="read-passwd")
        h = self.start(prefix=SETPRIV_NO_CAPS, binary=HOOKS, env=env)
        wait_for(lambda: "Test hook read-passwd returned" in h.read_log(), 10, "the hook")
        self.assertIn("Permission denied", h.read_log())

    def test_require_confinement_refuses(self):
        """--require-confinement=full: exit 1, one line naming what is missing."""
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        with a, b:
            p = subprocess.run([*SETPRIV_NO_CAPS, HELPER, "--fd=%d" % b.fileno(),
                                "--require-confinement=full"], pass_fds=[b.fileno()],
                               capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
        self.assertIn("Confinement 'filesystem' is below --require-confinement=full: started as "
                      "root without CAP_SYS_ADMIN", p.stderr)
        # what it does reach is accepted
        h = self.start(prefix=SETPRIV_NO_CAPS, args=["--require-confinement=filesystem"])
        self.assertEqual(confinement_level(h.stderr_text), "filesystem")
        h = self.start(args=["--require-confinement=full"])
        self.assertEqual(confinement_level(h.stderr_text), "full")

    def test_ambient_capabilities_leave_no_thread_with_any(self):
        """A non-root user with ambient capabilities (libvirt's DAC driver
        with `confine`): every thread ends with all five sets empty."""
        h = self.start(prefix=SETPRIV_NOBODY_AMBIENT)
        self.assertIn("no capabilities", h.stderr_text)
        self.assertEqual(confinement_level(h.stderr_text), "full")
        assert_every_thread_without_capabilities(self, h.pid)
        self.assertEqual(status(h.pid)["Uid"].split(), ["65534"] * 4)

    def test_descriptor_limit_raised_before_capabilities_go(self):
        """Root under a low hard limit starts: with CAP_SYS_RESOURCE (used
        before it is dropped) it gets --max-fds, without it the hard limit
        and a warning."""
        h = self.start(prefix=["prlimit", "--nofile=256:512", "--"])
        with open("/proc/%d/limits" % h.pid) as f:
            line = [x for x in f if x.startswith("Max open files")][0]
        cap_sys_resource = int(status(os.getpid())["CapEff"], 16) & (1 << 24)
        if cap_sys_resource:
            self.assertEqual(line.split()[3:5], ["1024", "1024"], line)
        else:
            self.assertEqual(line.split()[3:5], ["512", "512"], line)
            self.assertIn("--max-fds=1024 is above the hard limit 512", h.stderr_text)
        self.assertEqual(confinement_level(h.stderr_text), "full")

    def test_relative_socket_path(self):
        """A relative --socket-path works in the sandbox and is removed at exit."""
        with tempfile.TemporaryDirectory() as d:
            os.chmod(d, 0o777)
            p = subprocess.Popen([HELPER, "--socket-path=net.sock"], cwd=d,
                                 stderr=subprocess.PIPE)
            try:
                wait_for(lambda: os.path.exists(os.path.join(d, "net.sock")) or p.poll() is not None,
                         5, "the socket")
                time.sleep(0.5)  # past the sandbox
                self.assertIsNone(p.poll(), p.stderr.read() if p.poll() is not None else "")
                p.send_signal(signal.SIGTERM)
                self.assertEqual(p.wait(10), 0)
                self.assertFalse(os.path.exists(os.path.join(d, "net.sock")))
            finally:
                if p.poll() is None:
                    p.kill()
                p.wait()
                p.stderr.close()

    def test_unprivileged_user(self):
        """An ordinary user: a user namespace provides the empty root."""
        h = self.start(prefix=SETPRIV_NOBODY)
        st = status(h.pid)
        self.assert_confined(st, expect_uid=65534)
        self.assertNotEqual(os.readlink("/proc/%d/ns/user" % h.pid),
                            os.readlink("/proc/self/ns/user"))
        root = "/proc/%d/root" % h.pid
        self.assertEqual(sorted(os.listdir(root)), ["dev", "etc"])
        h.send(gf.dhcp_discover())
        self.assertEqual(h.recv_until(gf.dhcp_offer_address), "10.0.2.15")

    def test_sandbox_off(self):
        h = self.start(args=["--sandbox=off"])
        st = status(h.pid)
        self.assertEqual(st["Seccomp"], "0")
        self.assertEqual(st["Uid"].split()[0], "0")

    def test_bad_options(self):
        for args, text in ((["--sandbox=maybe"], "Invalid --sandbox value 'maybe'"),
                           (["--seccomp=trap"], "Invalid --seccomp value 'trap'"),
                           (["--max-fds=10"], "Invalid --max-fds value '10'"),
                           (["--runas=a:b:c"], "Invalid --runas value 'a:b:c'"),
                           (["--sandbox=off", "--seccomp=log"], "'--sandbox' and '--seccomp'"),
                           (["--require-confinement=most"],
                            "Invalid --require-confinement value 'most'"),
                           (["--require-confinement=none"],
                            "Invalid --require-confinement value 'none'"),
                           (["--sandbox=off", "--require-confinement=full"],
                            "'--sandbox' and '--require-confinement'"),
                           (["--seccomp=off", "--require-confinement=minimal"],
                            "'--seccomp' and '--require-confinement'")):
            p = subprocess.run([HELPER, "--fd=5", *args], capture_output=True, text=True)
            self.assertEqual(p.returncode, 1, args)
            self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
            self.assertIn(text, p.stderr)


# A chroot whose "/" is a plain directory, not a mount point, built in a
# private mount namespace (nothing reaches the host's): $0 is the directory,
# $1 the top-level directory holding the helper (the checkout may live
# anywhere), the other arguments the command to run in it.
CHROOT_SCRIPT = """set -e
root=$0 top=$1; shift
for d in usr etc dev proc tmp "$top"; do
  [ -d "$root/$d" ] || mkdir "$root/$d"; mount --rbind "/$d" "$root/$d"
done
for d in bin sbin lib lib32 lib64 libx32; do
  if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$root/$d";
  elif [ -d "/$d" ]; then mkdir "$root/$d"; mount --rbind "/$d" "$root/$d"; fi
done
exec chroot "$root" "$@"
"""


class ChrootTests(unittest.TestCase):
    """Where "/" is not a mount point the helper degrades, visibly."""

    def chroot_prefix(self):
        d = tempfile.mkdtemp(prefix="sandbox-chroot-")

        def remove():  # only what the script made here: never follow into a bind
            for name in os.listdir(d):
                p = os.path.join(d, name)
                if os.path.islink(p):
                    os.unlink(p)
                else:
                    os.rmdir(p)
            os.rmdir(d)
        self.addCleanup(remove)
        top = os.path.realpath(HELPER).split(os.sep)[1]
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", CHROOT_SCRIPT, d, top]

    def test_chroot_degrades_visibly(self):
        h = Helper(prefix=self.chroot_prefix()).wait_started()
        self.addCleanup(h.close)
        self.assertIn("'/' is not a mount point", h.stderr_text)
        self.assertEqual(confinement_level(h.stderr_text), "filesystem")
        st = status(h.pid)
        for key in CAP_SETS:
            self.assertEqual(int(st[key], 16), 0, key)
        self.assertEqual(st["Uid"].split(), ["65534"] * 4)
        self.assertEqual(st["Seccomp"], "2")
        h.send(gf.dhcp_discover())
        self.assertEqual(h.recv_until(gf.dhcp_offer_address), "10.0.2.15")
        h.proc.send_signal(signal.SIGTERM)
        self.assertEqual(h.proc.wait(10), 0)

    def test_chroot_refused_when_full_required(self):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        with a, b:
            p = subprocess.run([*self.chroot_prefix(), HELPER, "--fd=%d" % b.fileno(),
                                "--require-confinement=full"], pass_fds=[b.fileno()],
                               capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
        self.assertIn("below --require-confinement=full: '/' is not a mount point", p.stderr)


class SeccompTests(unittest.TestCase):
    def hook(self, name, *args, extra_env=None, **kw):
        env = dict(os.environ, SLIRP_HELPER_TEST_HOOK=name, **(extra_env or {}))
        h = Helper(args=args, binary=HOOKS, env=env, **kw)
        self.addCleanup(h.close)
        return h

    def locked_pidfile(self):
        """A pid file as libvirt leaves it: written, locked, inherited."""
        import fcntl
        tmp_fd, path = tempfile.mkstemp(suffix=".pid")
        os.write(tmp_fd, b"1234\n")
        os.close(tmp_fd)
        self.addCleanup(os.unlink, path)
        fd = os.open(path, os.O_RDWR)
        self.addCleanup(os.close, fd)

        def lock_in_child():
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return path, fd, lock_in_child

    def test_pidfile_not_writable(self):
        """libvirt's pid file: no write, pwrite, ftruncate, lseek, nor a way
        around them (dup2 onto stderr, a copy, a shared mapping)."""
        path, fd, lock = self.locked_pidfile()
        h = self.hook("write-inherited", "--seccomp=log", pass_fds=[fd], preexec_fn=lock,
                      extra_env={"SLIRP_HELPER_TEST_FD": str(fd)})
        wait_for(lambda: "mmap(MAP_SHARED) returned" in h.read_log(), 10, "the hook")
        log = h.read_log()
        for call in ("write", "pwrite64", "ftruncate", "lseek", "dup2", "fcntl", "mmap"):
            self.assertIn("seccomp: blocked system call %s (" % call, log)
        self.assertNotIn("write to the copy", log)
        with open(path) as f:
            self.assertEqual(f.read(), "1234\n")
        h.close()  # releases the lock for the next one
        # and in the default mode the first attempt ends the helper
        h = self.hook("write-inherited", pass_fds=[fd], preexec_fn=lock,
                      extra_env={"SLIRP_HELPER_TEST_FD": str(fd)})
        self.assertEqual(h.proc.wait(10), -signal.SIGSYS)
        with open(path) as f:
            self.assertEqual(f.read(), "1234\n")

    def test_fcntl_signals_killed(self):
        """F_SETOWN and O_ASYNC would let the helper signal any process of its uid."""
        for name in ("fcntl-setown", "fcntl-async"):
            h = self.hook(name)
            self.assertEqual(h.proc.wait(10), -signal.SIGSYS, name)

    def test_no_new_executable_memory(self):
        for name in ("mmap-exec", "mprotect-exec"):
            h = self.hook(name)
            self.assertEqual(h.proc.wait(10), -signal.SIGSYS, name)

    def test_unix_socket_only_for_guestfwd(self):
        """Without --guestfwd a new AF_UNIX socket fails (softly: syslog)."""
        h = self.hook("unix-socket")
        wait_for(lambda: "Test hook unix-socket returned" in h.read_log(), 10, "the hook")
        self.assertIn("returned -1 (Permission denied)", h.read_log())
        with tempfile.TemporaryDirectory() as d:
            h = self.hook("unix-socket", "--guestfwd=tcp:10.0.2.100:1234-unix:%s/g.sock" % d)
            wait_for(lambda: "Test hook unix-socket returned" in h.read_log(), 10, "the hook")
            self.assertIn("(success)", h.read_log())

    def test_unlink_only_for_socket_path(self):
        h = self.hook("unlink")
        self.assertEqual(h.proc.wait(10), -signal.SIGSYS)

    def test_execve_killed(self):
        h = self.hook("execve")
        self.assertEqual(h.proc.wait(10), -signal.SIGSYS)

    def test_open_for_writing_killed(self):
        h = self.hook("open-passwd")
        self.assertEqual(h.proc.wait(10), -signal.SIGSYS)

    def test_netlink_socket_killed(self):
        h = self.hook("netlink")
        self.assertEqual(h.proc.wait(10), -signal.SIGSYS)

    def test_read_passwd_not_there(self):
        """Reading is allowed by the filter, but the root is empty."""
        h = self.hook("read-passwd")
        wait_for(lambda: "Test hook read-passwd returned" in h.read_log(), 10, "the hook")
        self.assertIn("No such file or directory", h.read_log())
        self.assertIsNone(h.proc.poll())

    def test_log_mode_names_the_call(self):
        h = self.hook("execve", "--seccomp=log")
        wait_for(lambda: "Test hook execve returned" in h.read_log(), 10, "the hook")
        log = h.read_log()
        self.assertIn("seccomp: blocked system call execve (59)", log)
        self.assertIn("Function not implemented", log)
        # still serving
        h.send(gf.dhcp_discover())
        self.assertEqual(h.recv_until(gf.dhcp_offer_address), "10.0.2.15")
        h.proc.send_signal(signal.SIGTERM)
        self.assertEqual(h.proc.wait(10), 0)


class FloodTests(unittest.TestCase):
    def test_syn_flood_capped(self):
        """10,000 guest SYNs: fds stay under --max-fds, RSS bounded, and
        once the flood's flows are gone a new connection works."""
        max_fds = 1024
        h = Helper(args=["--max-fds=%d" % max_fds]).wait_started()
        self.addCleanup(h.close)
        lst = Listener()
        self.addCleanup(lst.close)
        h.announce()
        peak_fds = 0
        sports = []
        for i in range(10000):
            sport = 10000 + i
            sports.append(sport)
            h.send(gf.tcp_frame(sport, lst.port, 1000, 0, gf.TCP_SYN))
            if i % 100 == 99:
                # drain what the helper sent back so it never blocks
                while select.select([h.qemu], [], [], 0)[0]:
                    h.qemu.recv(1 << 17)
                peak_fds = max(peak_fds, h.fd_count())
        while select.select([h.qemu], [], [], 0.5)[0]:
            h.qemu.recv(1 << 17)
        peak_fds = max(peak_fds, h.fd_count())
        rss_kib = int(status(h.pid)["VmRSS"].split()[0])
        # new flows are refused SANDBOX_FD_RESERVE (32) descriptors early
        self.assertLessEqual(peak_fds, max_fds - 32 + 1)
        self.assertGreater(peak_fds, max_fds - 100)  # the cap, not something else, held it
        # Stated bound: each flow may hold two 128 KiB socket buffers in
        # libslirp (sbreserve), so --max-fds=1024 costs at most about
        # 1024 * 260 KiB plus the base: 320 MiB.  A bare SYN flood touches
        # little of it (about 15 MiB); under meson's MALLOC_PERTURB_ every
        # buffer is written and RSS reaches about 270 MiB.
        self.assertLess(rss_kib, 320 * 1024, "RSS %d KiB" % rss_kib)
        self.assertIsNone(h.proc.poll())
        print("\nflood: peak fds %d, RSS %d KiB" % (peak_fds, rss_kib), file=sys.stderr)
        # the guest resets its half-open flows; the helper frees them
        for sport in sports:
            h.send(gf.tcp_frame(sport, lst.port, 1001, 0, gf.TCP_RST))
            if sport % 200 == 0:
                while select.select([h.qemu], [], [], 0)[0]:
                    h.qemu.recv(1 << 17)
        wait_for(lambda: h.fd_count() < 100, 30, "the flows to be released")
        h.sport = 60000
        h.tcp_connect(lst.port)
        h.proc.send_signal(signal.SIGTERM)
        self.assertEqual(h.proc.wait(10), 0)
        self.assertRegex(h.read_log(), r"dropped: .*flow-limit [1-9]")


class Bus:
    """A private dbus-daemon (session configuration)."""

    # like libvirt's per-VM bus: any local user may connect
    CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sandbox-bus-")
        os.chmod(self.dir, 0o755)
        conf = os.path.join(self.dir, "bus.conf")
        with open(conf, "w") as f:
            f.write(self.CONFIG % self.dir)
        r, w = os.pipe()
        self.proc = subprocess.Popen(["dbus-daemon", "--config-file=" + conf, "--nofork",
                                      "--print-address=%d" % w], pass_fds=[w],
                                     stderr=subprocess.DEVNULL)
        os.close(w)
        with os.fdopen(r) as f:
            self.address = f.readline().strip()

    def call(self, dest, path, method, *args):
        p = subprocess.run(["gdbus", "call", "--address", self.address, "--dest", dest,
                            "--object-path", path, "--method", method, *args],
                           capture_output=True, text=True, timeout=20)
        if p.returncode != 0:
            raise AssertionError("%s failed: %s" % (method, p.stderr))
        return p.stdout

    def close(self):
        self.proc.kill()
        self.proc.wait()
        subprocess.run(["rm", "-rf", self.dir])


class ControlTests(unittest.TestCase):
    def test_getinfo_and_save_while_confined(self):
        """Over D-Bus, the confined helper reports its pre-filter counts and
        that it is confined, and saves its state."""
        bus = Bus()
        self.addCleanup(bus.close)
        h = Helper(args=["--dbus-address=" + bus.address, "--dbus-id=sbx"]).wait_started()
        self.addCleanup(h.close)
        self.assert_threads_confined(h.pid)
        h.announce()
        h.send(gf.tftp_rrq("boot.bin"))
        h.send(gf.tftp_rrq("boot.bin"))
        name = "org.libvirt_slirp.Helper1.sbx"
        info = wait_for(lambda: (lambda i: "'prefilter-dropped-tftp-off': <uint64 2>" in i and i)(
            bus.call(name, "/org/libvirt_slirp/Helper1", "org.libvirt_slirp.Helper1.GetInfo")),
            10, "the drops to be counted")
        self.assertIn("'confined': <true>", info)
        self.assertIn("'prefilter-passed': <uint64 1>", info)  # the ARP request
        state = bus.call("org.qemu.VMState1", "/org/qemu/VMState1", "org.qemu.VMState1.Save")
        self.assertTrue(state.startswith("([byte 0x00, 0x00, 0x00, 0x04"), state[:80])
        h.proc.send_signal(signal.SIGTERM)
        self.assertEqual(h.proc.wait(10), 0)

    def test_unprivileged_user_on_the_bus(self):
        """libvirt's DAC driver: the helper runs as the VM's user, confines
        itself in a user namespace, and still authenticates on the bus."""
        bus = Bus()
        self.addCleanup(bus.close)
        h = Helper(args=["--dbus-address=" + bus.address, "--dbus-id=dac"],
                   prefix=SETPRIV_NOBODY).wait_started()
        self.addCleanup(h.close)
        self.assert_threads_confined(h.pid)
        self.assertNotEqual(os.readlink("/proc/%d/ns/user" % h.pid),
                            os.readlink("/proc/self/ns/user"))
        info = bus.call("org.libvirt_slirp.Helper1.dac", "/org/libvirt_slirp/Helper1",
                        "org.libvirt_slirp.Helper1.GetInfo")
        self.assertIn("'confined': <true>", info)
        state = bus.call("org.qemu.VMState1", "/org/qemu/VMState1", "org.qemu.VMState1.Save")
        self.assertTrue(state.startswith("([byte 0x00, 0x00, 0x00, 0x04"), state[:80])
        h.proc.send_signal(signal.SIGTERM)
        self.assertEqual(h.proc.wait(10), 0)

    def test_ambient_capabilities_on_the_bus(self):
        """The DAC driver's non-root helper with ambient capabilities and a
        bus: GDBus' and GLib's threads end without any capability too."""
        bus = Bus()
        self.addCleanup(bus.close)
        h = Helper(args=["--dbus-address=" + bus.address, "--dbus-id=amb"],
                   prefix=SETPRIV_NOBODY_AMBIENT).wait_started()
        self.addCleanup(h.close)
        self.assert_threads_confined(h.pid)
        info = bus.call("org.libvirt_slirp.Helper1.amb", "/org/libvirt_slirp/Helper1",
                        "org.libvirt_slirp.Helper1.GetInfo")
        self.assertIn("'confined': <true>", info)
        h.proc.send_signal(signal.SIGTERM)
        self.assertEqual(h.proc.wait(10), 0)

    def assert_threads_confined(self, pid):
        tids = assert_every_thread_without_capabilities(self, pid)
        self.assertGreater(len(tids), 1)  # GDBus' worker exists
        for tid in tids:
            t = status_of("/proc/%d/task/%s/status" % (pid, tid))
            self.assertEqual(t["Seccomp"], "2", tid)
            self.assertEqual(t["NoNewPrivs"], "1", tid)
            self.assertEqual(t["Uid"].split(), ["65534"] * 4, tid)
            self.assertEqual(os.readlink("/proc/%d/task/%s/root" % (pid, tid)), "/")
            self.assertEqual(sorted(os.listdir("/proc/%d/task/%s/root" % (pid, tid))),
                             ["dev", "etc", "tmp"])  # tmp: the bus socket's directory


class PrefilterTests(unittest.TestCase):
    def test_drops_counted_and_urgent_stripped(self):
        """TFTP without --tftp is dropped, urgent data arrives as data, and
        the counts are logged at exit."""
        h = Helper().wait_started()
        self.addCleanup(h.close)
        lst = Listener()
        self.addCleanup(lst.close)
        h.announce()
        h.send(gf.tftp_rrq("boot.bin"))
        sport, their_seq = h.tcp_connect(lst.port)
        wait_for(lambda: lst.conns, 5, "the host listener to accept")
        h.send(gf.tcp_frame(sport, lst.port, 1001, their_seq + 1,
                            gf.TCP_ACK | gf.TCP_PSH | gf.TCP_URG, b"urgent", urg=6))
        lst.conns[0].settimeout(5)
        self.assertEqual(lst.conns[0].recv(6), b"urgent")  # inline, not out of band
        h.proc.send_signal(signal.SIGTERM)
        self.assertEqual(h.proc.wait(10), 0)
        log = h.read_log()
        self.assertIn("1 with urgent data stripped", log)
        self.assertIn("dropped: tftp-off 1", log)


def main():
    global HELPER, HOOKS
    if os.geteuid() != 0:
        print("test-sandbox.py must run as root (it checks what root loses)", file=sys.stderr)
        sys.exit(1)
    HELPER, HOOKS = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[3:])


if __name__ == "__main__":
    main()
