"""Stock Debian libvirt plus the slirp-helper package, in a clean chroot.

Used by tests/stock/test_stock.py: for Debian 12 (libvirt 9.0.0, QEMU 7.2)
and Debian 13 (libvirt 11.3.0, QEMU 10.0), the distribution's own libvirt
daemon, started as the package ships it, runs our helper from the .deb.

Theory of operation
-------------------
packaging/stock-chroot.sh makes (once; cached in build/chroots/) a tarball
of the release with libvirt-daemon-system and qemu-system-x86, no
recommends, from the machine's own mirrors.  Each test session unpacks it
into build/stock/RELEASE/root, mounts what a system has (/proc; /sys and
/dev as recursive bind mounts made slaves, so nothing mounted below them
propagates back to the host; a tmpfs on /dev/shm and on /run), installs the
one .deb with dpkg and starts virtlogd and libvirtd (the monolithic daemon:
both releases' packages ship it; Debian 13 has no virtqemud) by PID.

A plain chroot is not enough for the helper's sandbox: the kernel refuses
a chrooted process a new user namespace (the stock daemon runs the helper
as libvirt-qemu, which needs one), and pivot_root needs "/" to be a mount
point.  So each daemon starts in a mount namespace of its own
(`unshare --mount`) in which the chroot directory is bind-mounted onto
itself and made the namespace's root with pivot_root, then `chroot .`:
inside it, the chroot is the whole file system, as on a real host.  The
mounts above were made before, in the host's namespace, so /run is one
tmpfs seen from the daemons and from here (root + path); virsh runs as
`chroot ROOT virsh`.

Everything runs in the host's PID and network namespaces: the tests read
/proc/PID of the helper directly, and the guest reaches a server on the
host's 127.0.0.1 through the helper.  qemu.conf is the package's, with one
line appended (QEMU_CONF_CHROOT says why); libvirtd.conf gets a log file.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(REPO, "build")
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
sys.path.insert(0, os.path.join(REPO, "tests", "libvirt"))
import guest  # noqa: E402
import libvirt_harness as H  # noqa: E402  (VM, fetch_ok, lease_for_mac)

RELEASES = {
    # codename: (Debian version, libvirt, QEMU) as the test ids show them
    "bookworm": "Debian 12",
    "trixie": "Debian 13",
}

HELPER = "/usr/bin/slirp-helper"
DBUS_DAEMON = "/usr/bin/dbus-daemon"
IMAGES = "/var/lib/libvirt/images/slirp-test"
CONSOLES = "/var/lib/libvirt/qemu/slirp-test"
# not libvirt's own save directory: an image named NAME.save there is the
# domain's managed save, which the next virsh start would restore
SAVES = "/var/lib/libvirt/images/slirp-test-saves"

# The only change to the package's qemu.conf, and why.
QEMU_CONF_CHROOT = """
# tests/stock: a chroot has no systemd and no cgroup delegated to libvirtd,
# so libvirt may not create per-VM cgroups.
cgroup_controllers = [ ]
"""

LIBVIRTD_CONF_LOG = """
# tests/stock: a log to read after a failure
log_filters = "1:qemu.qemu_slirp 1:qemu.qemu_dbus 1:qemu.qemu_extdevice 1:qemu.qemu_process 1:util.command 2:qemu 3:util 3:rpc 3:object 3:event 3:conf 3:security"
log_outputs = "1:file:/var/log/libvirt/libvirtd.log"
"""


class StockError(Exception):
    """Something the harness needed did not happen; the message says what."""


def deb_path(release):
    """The slirp-helper .deb make deb / make deb-trixie built for @release."""
    host = subprocess.run(["sh", "-c", ". /etc/os-release && echo $VERSION_CODENAME"],
                          capture_output=True, text=True).stdout.strip()
    d = os.path.join(BUILD, "deb") if release == host else os.path.join(BUILD, "deb", release)
    debs = sorted(f for f in os.listdir(d) if re.match(r"slirp-helper_[^_]+_amd64\.deb$", f)) \
        if os.path.isdir(d) else []
    if not debs:
        raise StockError("no slirp-helper .deb for %s in %s: run make deb%s" % (
            release, d, "" if release == host else "-" + release))
    return os.path.join(d, debs[-1])


def run(argv, check=True, timeout=300, **kw):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise StockError("%s failed (exit %d): %s%s" % (" ".join(argv), proc.returncode,
                                                         proc.stdout, proc.stderr))
    return proc


def proc_status(pid, task=None):
    path = "/proc/%d/status" % pid if task is None else "/proc/%d/task/%d/status" % (pid, task)
    fields = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


class StockChroot:
    """One release's chroot with stock libvirt and our package installed."""

    def __init__(self, release):
        self.release = release
        self.dir = os.path.join(BUILD, "stock", release)
        self.root = os.path.join(self.dir, "root")
        self.tarball = os.path.join(BUILD, "chroots", "%s-stock.tar" % release)
        self.mounts = []            # host-side mount points, in mount order
        self.daemons = {}           # name -> Popen of the unshare wrapper
        self.timings = {}
        self.downloaded = None

    # --- paths --------------------------------------------------------------

    def path(self, inner):
        """The host path of @inner (an absolute path inside the chroot)."""
        return os.path.join(self.root, inner.lstrip("/"))

    def same_file(self, host_path, inner):
        try:
            a, b = os.stat(host_path), os.stat(self.path(inner))
        except OSError:
            return False
        return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)

    # --- set-up ---------------------------------------------------------------

    def create(self):
        """Unpack a fresh root from the cached tarball (made if missing)."""
        t0 = time.monotonic()
        if not os.path.exists(self.tarball):
            run([os.path.join(REPO, "packaging", "stock-chroot.sh"), self.release, self.tarball],
                timeout=1800)
            self.timings["mmdebstrap"] = time.monotonic() - t0
        self.downloaded = int(run(["tar", "-xOf", self.tarball, "./downloaded-bytes"]).stdout)
        t1 = time.monotonic()
        self.teardown_mounts_from_earlier_run()
        if os.path.exists(self.root):
            shutil.rmtree(self.root)
        os.makedirs(self.root)
        run(["tar", "-C", self.root, "-xf", self.tarball])
        self.timings["unpack"] = time.monotonic() - t1

    def teardown_mounts_from_earlier_run(self):
        """Unmount whatever a killed earlier run left mounted below root."""
        with open("/proc/self/mounts") as f:
            stale = [l.split()[1] for l in f if l.split()[1].startswith(self.root + "/")]
        for m in sorted(stale, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)

    def _mount(self, argv, target):
        run(["mount", *argv, target])
        self.mounts.append(target)

    def mount(self):
        r = self.path
        self._mount(["-t", "proc", "proc"], r("/proc"))
        for d in ("/sys", "/dev"):
            self._mount(["--rbind", d], r(d))
            run(["mount", "--make-rslave", r(d)])
        self._mount(["-t", "tmpfs", "-o", "mode=1777", "tmpfs"], r("/dev/shm"))
        self._mount(["-t", "tmpfs", "-o", "mode=755", "tmpfs"], r("/run"))
        os.makedirs(r("/.oldroot"), exist_ok=True)
        # mmdebstrap leaves the host's resolv.conf out; libslirp forwards DNS to it
        shutil.copy("/etc/resolv.conf", r("/etc/resolv.conf"))

    def unmount(self):
        for m in reversed(self.mounts):
            subprocess.run(["umount", "-R", m], capture_output=True)
            if os.path.ismount(m):
                subprocess.run(["umount", "-R", "-l", m], capture_output=True)
        self.mounts = []

    def chroot(self, *argv, check=True, timeout=120):
        """Run @argv inside the chroot (host namespaces, chroot only)."""
        return run(["chroot", self.root, *argv], check=check, timeout=timeout)

    def install_deb(self, deb):
        shutil.copy(deb, self.path("/tmp/" + os.path.basename(deb)))
        return self.chroot("dpkg", "-i", "/tmp/" + os.path.basename(deb))

    def configure(self):
        with open(self.path("/etc/libvirt/qemu.conf"), "a") as f:
            f.write(QEMU_CONF_CHROOT)
        with open(self.path("/etc/libvirt/libvirtd.conf"), "a") as f:
            f.write(LIBVIRTD_CONF_LOG)
        for d in (IMAGES, CONSOLES, SAVES):
            os.makedirs(self.path(d), exist_ok=True)
        art = guest.artifacts(build=False)
        for src, name in ((art.kernel, "vmlinuz"), (art.initrd, "initramfs.gz")):
            shutil.copy(src, self.path(IMAGES + "/" + name))
        # QEMU runs as libvirt-qemu and creates the console socket here
        self.chroot("chown", "libvirt-qemu:libvirt-qemu", CONSOLES)

    # --- daemons --------------------------------------------------------------

    def _spawn(self, name, argv):
        """Start @argv inside the chroot made a namespace root (see top)."""
        # sh -c SCRIPT ROOT ARGV...: $0 is the root, "$@" the daemon's argv
        script = ('mount --rbind "$0" "$0" && cd "$0" && pivot_root . .oldroot && '
                  'exec chroot . /bin/sh -c \'umount -l /.oldroot && exec "$@"\' sh "$@"')
        out = open(os.path.join(self.dir, name + ".out"), "ab")
        proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--fork",
                                 "sh", "-c", script, self.root, *argv],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.daemons[name] = proc
        return proc

    def daemon_pid(self, name):
        pidfile = {"libvirtd": "/run/libvirtd.pid", "virtlogd": "/run/virtlogd.pid"}[name]
        return H.read_pidfile(self.path(pidfile))

    def start_daemons(self):
        self.start_virtlogd()
        self.start_libvirtd()

    def start_virtlogd(self):
        self._spawn("virtlogd", ["/usr/sbin/virtlogd"])
        H.wait_for(lambda: os.path.exists(self.path("/run/libvirt/virtlogd-sock")) and
                   self.daemon_pid("virtlogd"), 30, "virtlogd's socket")

    def start_libvirtd(self):
        t0 = time.monotonic()
        self._spawn("libvirtd", ["/usr/sbin/libvirtd"])

        def ready():
            if self.daemons["libvirtd"].poll() is not None:
                raise StockError("libvirtd exited with %s:\n%s" % (
                    self.daemons["libvirtd"].returncode, self.log_tail()))
            return self.virsh("uri", check=False).returncode == 0
        H.wait_for(ready, 60, "libvirtd to answer", interval=0.3)
        self.timings.setdefault("libvirtd start", time.monotonic() - t0)

    def stop_daemon(self, name, timeout=30):
        """SIGTERM the daemon by the PID in its pidfile and wait for it."""
        pid = self.daemon_pid(name)
        proc = self.daemons.pop(name, None)
        if pid and H.pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            if not guest.wait_pid_gone(pid, timeout):
                os.kill(pid, signal.SIGKILL)
                guest.wait_pid_gone(pid, 10)
        if proc is not None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def restart_libvirtd(self):
        self.stop_daemon("libvirtd")
        self.start_libvirtd()

    def chroot_pids(self):
        """Processes whose root is this chroot (the daemons and their children)."""
        found = []
        for pid in H.all_pids():
            try:
                st = os.stat("/proc/%d/root" % pid)
            except OSError:
                continue
            if pid != os.getpid() and self.same_file("/proc/%d/root" % pid, "/"):
                found.append(pid)
        return found

    def processes_of(self, inner_exe):
        """[pid] of processes running the chroot's @inner_exe (by inode)."""
        return [pid for pid in H.all_pids()
                if self.same_file("/proc/%d/exe" % pid, inner_exe)]

    def stop(self):
        """Stop the daemons by PID, kill leftovers (returned), unmount."""
        for name in ("libvirtd", "virtlogd"):
            self.stop_daemon(name)
        leftovers = []
        for inner in (HELPER, DBUS_DAEMON, "/usr/bin/qemu-system-x86_64"):
            for pid in self.processes_of(inner):
                leftovers.append((pid, H.cmdline(pid)))
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for pid, _ in leftovers:
            guest.wait_pid_gone(pid, 10)
        self.unmount()
        return leftovers

    # --- libvirt --------------------------------------------------------------

    def virsh(self, *args, check=True, timeout=120):
        proc = run(["chroot", self.root, "virsh", "-q", "-c", "qemu:///system", *args],
                   check=False, timeout=timeout)
        if check and proc.returncode != 0:
            raise StockError("virsh %s failed (exit %d): %s%s" % (
                " ".join(args), proc.returncode, proc.stdout, proc.stderr.strip()))
        return proc

    def log_tail(self, lines=60):
        return H.tail(self.path("/var/log/libvirt/libvirtd.log"), lines)


class StockDomain:
    """A test guest on a StockChroot; enough of libvirt_harness.Domain for H.VM."""

    def __init__(self, chroot, name, macs):
        self.ch = chroot
        self.name = name
        self.macs = macs
        self.dir = os.path.join(chroot.dir, "vm-" + name)
        os.makedirs(self.dir, exist_ok=True)
        self.inner_sock = "%s/%s.sock" % (CONSOLES, name)
        self.inner_log = "/var/log/libvirt/qemu/%s-console.log" % name
        self.console_sock = chroot.path(self.inner_sock)
        self.console_log = chroot.path(self.inner_log)

    def xml(self):
        art = guest.artifacts(build=False)
        nics = "".join("<interface type='user'><mac address='%s'/><model type='virtio'/>"
                       "</interface>\n    " % m for m in self.macs)
        return """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{images}/vmlinuz</kernel>
    <initrd>{images}/initramfs.gz</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    {nics}
    <serial type='unix'>
      <source mode='bind' path='{sock}'/>
      <log file='{log}' append='on'/>
      <target port='0'/>
    </serial>
    <console type='unix'>
      <source mode='bind' path='{sock}'/>
      <target type='serial' port='0'/>
    </console>
    <memballoon model='none'/>
  </devices>
</domain>
""".format(name=self.name, images=IMAGES, cmdline=art.cmdline, nics=nics,
           sock=self.inner_sock, log=self.inner_log)

    def define(self):
        path = self.ch.path("/tmp/%s.xml" % self.name)
        with open(path, "w") as f:
            f.write(self.xml())
        self.ch.virsh("define", "/tmp/%s.xml" % self.name)
        return self

    def start(self):
        return self.ch.virsh("start", self.name, timeout=120)

    def destroy(self, check=True):
        return self.ch.virsh("destroy", self.name, check=check, timeout=60)

    def state(self):
        return self.ch.virsh("domstate", self.name, check=False).stdout.strip()

    def status_xml_path(self):
        return self.ch.path("/run/libvirt/qemu/%s.xml" % self.name)

    def qemu_pid(self):
        return H.read_pidfile(self.ch.path("/run/libvirt/qemu/%s.pid" % self.name))

    def qemu_cmdline(self):
        pid = self.qemu_pid()
        return H.cmdline(pid) if pid else []

    def helper_pids(self):
        """Helpers wired to this domain's QEMU (socket peers), by inode of the exe."""
        qpid = self.qemu_pid()
        if not qpid:
            return []
        qsocks = H.socket_inodes(qpid)
        peers = H.unix_peer_map()
        return [pid for pid in self.ch.processes_of(HELPER)
                if any(peers.get(i) in qsocks for i in H.socket_inodes(pid))]

    def slirp_files(self):
        d = self.ch.path("/run/libvirt/qemu/slirp")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def dbus_files(self):
        d = self.ch.path("/run/libvirt/qemu/dbus")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def domain_log(self):
        return self.ch.path("/var/log/libvirt/qemu/%s.log" % self.name)

    def diagnostics(self, lines=40):
        return ("--- console of %s ---\n%s--- QEMU log ---\n%s--- libvirtd log ---\n%s" % (
            self.name, H.tail(self.console_log, lines), H.tail(self.domain_log(), lines),
            self.ch.log_tail(lines)))
