"""Private libvirt daemons, test domains and host-side probes for the system tests.

Shared by the pytest scenarios in this directory and by demo.py (`make demo`).

Theory of operation
-------------------
Each fork series is installed into its private prefix build/root-SERIES
(SERIES is the primary series, 11.3.0, unless $LIBVIRT_SERIES names another
directory of libvirt/, such as the 9.0.0 backport), so a privileged
virtqemud from it looks for everything below that prefix: its configuration
in PREFIX/etc/libvirt, sockets, pidfiles and domain status XML in
PREFIX/run/libvirt, logs, save images and the QEMU capabilities cache in
PREFIX/var/{log,lib,cache}/libvirt.  libvirt (9.0.0 and 11.3.0) has no switch to move
these directories for a privileged daemon (XDG variables only apply to
unprivileged ones), and two daemons on one host (live migration) must not
share them.  So every daemon is started inside its own mount namespace
(`unshare --mount`) in which a private directory tree of the test run is
bind-mounted over those three prefix directories.  Outside the namespace the
same files are reached through their real path in the run directory, which
is how the tests read status XML and pidfiles and how virsh finds the socket
(qemu+unix:///system?socket=REAL_PATH).  virtlogd and virtqemud of one
instance get identical bind mounts, so their sockets meet.

Every process an instance starts (QEMU, slirp helpers, dbus-daemon) is
tracked through a cgroup: the daemons are started in a controller-less
cgroup v2 group of their own (tracking only, no controllers, no limits), and
children stay in it whatever they do to themselves (a helper that sandboxes
itself into new namespaces included).  That membership is how the tests tell
"our" helpers from those of anybody else on the machine, and how teardown
finds leftovers to kill by PID.  Without a writable cgroup v2 mount the
harness falls back to virtqemud's mount namespace, which a helper that
unshares its own mount namespace escapes.

Paths a guest needs to see from both sides of a namespace (serial console
socket, console log, kernel, initramfs, save images) live in the run
directory outside the bind-mounted prefix, so they are the same everywhere.

An instance runs in one of three modes (MODES), the set-ups of the
confinement matrix:
- "none-root": virtqemud as root with security_driver = "none" and
  user = "root", so QEMU, the helper and dbus-daemon run as root; what every
  scenario but the matrix uses.
- "dac": virtqemud as root with libvirt's packaged default without AppArmor,
  the DAC driver and user/group libvirt-qemu: QEMU, the helper and
  dbus-daemon run as libvirt-qemu, and dynamic_ownership lets libvirt chown
  the files a guest needs to that user.  Every directory above them must be
  searchable by it (check_reachable()); the guest's kernel and initramfs are
  copied into the domain's directory, so libvirt's chown never touches the
  shared build/guest.
- "session": qemu:///session, a virtqemud (and virtlogd) started as an
  ordinary user, SESSION_USER, who then starts QEMU, the helper and
  dbus-daemon.  An unprivileged daemon takes its directories from the XDG
  variables, which the harness points into the run directory
  (XDG_RUNTIME_DIR: sockets, pidfiles, status XML; XDG_CONFIG_HOME:
  qemu.conf; XDG_CACHE_HOME: logs and QEMU's capabilities), so it needs no
  bind mount of the prefix; it still runs in a private mount namespace, for
  the account files below and the cgroup tracking.

The account database is never touched: the namespace gets copies of
/etc/passwd and /etc/group that add what the mode needs (libvirt-qemu,
which virtqemud insists on even as "none-root", and the session user), so
those accounts exist exactly for the daemons and their children.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import stat
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import guest  # noqa: E402  (tests/lib/guest.py: console driver, HTTP server)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(REPO, "build")


def primary_series():
    """The primary fork series, as libvirt/series.sh names it."""
    with open(os.path.join(REPO, "libvirt", "series.sh")) as f:
        for line in f:
            if line.startswith("LIBVIRT_PRIMARY="):
                return line.split("=", 1)[1].strip()
    raise RuntimeError("libvirt/series.sh names no LIBVIRT_PRIMARY")


SERIES = os.environ.get("LIBVIRT_SERIES") or primary_series()
PREFIX = os.path.join(BUILD, "root-" + SERIES)
VIRSH = os.path.join(PREFIX, "bin", "virsh")
VIRTQEMUD = os.path.join(PREFIX, "sbin", "virtqemud")
VIRTLOGD = os.path.join(PREFIX, "sbin", "virtlogd")
QEMU = "/usr/bin/qemu-system-x86_64"

# The bundled helper (helper/ builds it) and Debian's Rust reference helper.
OUR_HELPER = os.path.join(BUILD, "helper", "src", "slirp-helper")
REFERENCE_HELPER = "/usr/bin/libslirp-helper"

SYSTEST_DIR = os.path.join(BUILD, "systest")
CAPS_CACHE = os.path.join(SYSTEST_DIR, "qemu-capabilities-cache")

# Prefix directories replaced by per-instance private copies (see above).
PRIVATE_DIRS = {
    "etc": os.path.join(PREFIX, "etc", "libvirt"),
    "run": os.path.join(PREFIX, "run"),
    "var": os.path.join(PREFIX, "var"),
}


def _qemu_driver():
    """The installed QEMU driver module: under lib/x86_64-linux-gnu in the
    build on Debian 12, under lib64 in the one in the Debian 13 chroot."""
    for libdir in (os.path.join("lib", "x86_64-linux-gnu"), "lib64", "lib"):
        path = os.path.join(PREFIX, libdir, "libvirt", "connection-driver",
                            "libvirt_driver_qemu.so")
        if os.path.exists(path):
            return path
    return os.path.join(PREFIX, "lib", "x86_64-linux-gnu", "libvirt", "connection-driver",
                        "libvirt_driver_qemu.so")


QEMU_DRIVER = _qemu_driver()


def fork_has(text):
    """True if the installed QEMU driver contains the message @text.

    The fork's fixes add user-visible messages; the tests of a gap assert
    the fixed behaviour when the installed build has the fix and are
    expected failures naming the gap when it does not (an older or an
    upstream build).
    """
    try:
        with open(QEMU_DRIVER, "rb") as f:
            return text.encode() in f.read()
    except OSError:
        return False


def fork_has_string(text):
    """True if the installed QEMU driver contains @text as a whole C string.

    Stricter than fork_has(): fork_has("confine") also matches upstream's
    "security_default_confined"; the helper feature name of the fork's
    "confine" patch is the string "confine" on its own.
    """
    try:
        with open(QEMU_DRIVER, "rb") as f:
            return b"\0" + text.encode() + b"\0" in f.read()
    except OSError:
        return False


def virsh_knows_event(name):
    """True if the installed virsh knows the domain event @name
    ('virsh event --list', on the test driver: no daemon needed)."""
    proc = subprocess.run([VIRSH, "-c", "test:///default", "event", "--list"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    return name in proc.stdout.split()


def netdev_transport(helper):
    """The -netdev type libvirt gives QEMU for a user NIC on @helper.

    The fork connects a helper that accepts a stream ('stream' feature) to
    a socket QEMU listens on, so that a new helper can take over; QEMU 7.2
    and later have the stream netdev.  Otherwise, and in builds without
    that patch, the two ends of a datagram socketpair.
    """
    if fork_has("slirp-%d-%s.sock") and "stream" in helper_features(helper):
        return "stream"
    return "socket"


def helper_features(path):
    """The features a helper advertises with --print-capabilities ([] if it cannot)."""
    try:
        out = subprocess.run([path, "--print-capabilities"], capture_output=True, text=True,
                             timeout=10).stdout
        return json.loads(out).get("features", [])
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return []


def default_helper():
    """The helper the scenarios run: $SLIRP_HELPER, else the bundled one."""
    return os.environ.get("SLIRP_HELPER") or OUR_HELPER


class HarnessError(Exception):
    """Something the harness needed did not happen; the message says what."""


class HelperNotRunning(HarnessError):
    """A slirp helper libvirt just started is not running: libvirt said so
    ("failed to start: it exited without a message"), QEMU could not find it
    on the bus at an incoming migration ("Required VMState Id are missing"),
    or its pid from the status XML is gone."""


# What libvirt and QEMU say when a helper died right after it was started.
HELPER_DIED_MESSAGES = ("failed to start: it exited without a message",
                        "Required VMState Id are missing")


def wait_for(predicate, timeout, what, interval=0.1):
    """Poll predicate() until it returns a true value and return that value.

    Raises HarnessError naming @what after @timeout seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise HarnessError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---------------------------------------------------------------------------
# Host processes

pid_alive = guest.pid_alive     # True if the pid exists and is not a zombie


def cmdline(pid):
    """The argv of @pid as a list (empty if it is gone)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0")[:-1]]
    except (FileNotFoundError, ProcessLookupError):
        return []


def exe(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return ""


def mount_ns(pid):
    try:
        return os.readlink("/proc/%d/ns/mnt" % pid)
    except OSError:
        return None


def cgroup2_root():
    """Mount point of a writable cgroup v2 hierarchy, or None."""
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 2 and fields[2] == "cgroup2" and os.access(fields[1], os.W_OK):
                return fields[1]
    return None


def exe_name(pid):
    """Basename of @pid's executable, without a ' (deleted)' suffix."""
    path = exe(pid)
    if path.endswith(" (deleted)"):
        path = path[:-len(" (deleted)")]
    return os.path.basename(path)


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def read_pidfile(path):
    """The pid in a libvirt pidfile, or None if it is missing or empty."""
    try:
        with open(path) as f:
            text = f.read().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def lock_holders(path):
    """Pids holding a POSIX/flock lock on the file at @path (from /proc/locks)."""
    st = os.stat(path)
    key = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    holders = set()
    with open("/proc/locks") as f:
        for line in f:
            fields = line.split()
            if len(fields) < 6 or fields[1] == "->":
                continue
            dev = fields[5].split(":")
            if len(dev) == 3 and (int(dev[0], 16), int(dev[1], 16), int(dev[2])) == key:
                holders.add(int(fields[4]))
    return holders


def socket_inode(pid, fd):
    """The inode of socket @fd of @pid, or None if it is not a socket."""
    try:
        link = os.readlink("/proc/%d/fd/%d" % (pid, fd))
    except OSError:
        return None
    m = re.match(r"socket:\[(\d+)\]$", link)
    return int(m.group(1)) if m else None


def unix_peer_map():
    """{inode: peer inode} of every AF_UNIX socket on the host (from `ss -x`)."""
    out = subprocess.run(["ss", "-xaHn"], capture_output=True, text=True, check=True).stdout
    peers = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 8 and f[5].isdigit() and f[7].isdigit():
            peers[int(f[5])] = int(f[7])
    return peers


def socket_inodes(pid):
    """The inodes of all sockets @pid has open."""
    found = set()
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return found
    for fd in fds:
        inode = socket_inode(pid, int(fd))
        if inode is not None:
            found.add(inode)
    return found


def socket_peer_owned_by(pid_a, fd_a, pid_b):
    """True if the peer of AF_UNIX socket @fd_a of @pid_a is a socket
    @pid_b has open (a connection @pid_b accepted)."""
    a = socket_inode(pid_a, fd_a)
    return a is not None and unix_peer_map().get(a) in socket_inodes(pid_b)


def socket_peers(pid_a, fd_a, pid_b, fd_b):
    """True if fd_a of pid_a and fd_b of pid_b are the two ends of one
    AF_UNIX socket pair (peer inodes as `ss -x` reports them)."""
    a, b = socket_inode(pid_a, fd_a), socket_inode(pid_b, fd_b)
    return a is not None and b is not None and unix_peer_map().get(a) == b


def netdev_args(argv):
    """The -netdev options of a QEMU command line, as dicts.

    libvirt 9.0 passes them as JSON with QEMU 7.2; key=value is accepted too.
    """
    found = []
    for opt, val in zip(argv, argv[1:]):
        if opt != "-netdev":
            continue
        if val.startswith("{"):
            found.append(json.loads(val))
        else:
            kind, _, rest = val.partition(",")
            d = {"type": kind}
            d.update(kv.split("=", 1) for kv in rest.split(",") if "=" in kv)
            found.append(d)
    return found


def kernel_kills(exe_name, lines=10):
    """Recent kernel log lines about @exe_name dying: seccomp kills (audit
    type=1326), segfaults, OOM.  Empty if dmesg is unavailable."""
    proc = subprocess.run(["dmesg"], capture_output=True, text=True)
    hits = [l for l in proc.stdout.splitlines()
            if exe_name in l and ("type=1326" in l or "segfault" in l or "oom" in l.lower())]
    return "\n".join(hits[-lines:])


def tail(path, lines=40):
    """The last @lines lines of a text file, or a note that it is missing."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return "(cannot read %s: %s)\n" % (path, e)


# ---------------------------------------------------------------------------
# Accounts and permissions

# The account of libvirt's build-time default QEMU user (Debian's uid/gid).
QEMU_USER = ("libvirt-qemu", 64055, 64055)

# The ordinary user of the "session" mode.  It exists only in the account
# files of the instance's mount namespace (see _account_files()): a
# dedicated account, so nothing else on the host runs as it or owns files
# of it, that needs no useradd on the host and no clean-up, even after a
# crashed run, and behaves exactly like a user of the host for virtqemud,
# QEMU and the helper (the kernel knows only numbers).  "nobody" would
# exist everywhere but is the helper's own default --runas and is shared.
SESSION_USER_NAME = "libvirt-slirp-test"
SESSION_UID_BASE = 64200


def _account_ids(path):
    """{name: id} and the set of ids of an /etc/passwd-like file."""
    names = {}
    with open(path) as f:
        for line in f:
            fields = line.split(":")
            if len(fields) > 2 and fields[2].isdigit():
                names[fields[0]] = int(fields[2])
    return names


def session_user():
    """(name, uid, gid) of the session mode's user.

    The first id from SESSION_UID_BASE that neither the host's /etc/passwd
    nor its /etc/group uses (uid and gid equal); the same on every run of
    one host.
    """
    used = (set(_account_ids("/etc/passwd").values()) |
            set(_account_ids("/etc/group").values()))
    uid = SESSION_UID_BASE
    while uid in used:
        uid += 1
    return (SESSION_USER_NAME, uid, uid)


def _may(st, uid, gid, bit):
    """True if @uid/@gid get permission @bit (4 r, 2 w, 1 x, or a sum) from the mode
    bits of @st (no ACLs, no supplementary groups: the users here have none)."""
    shift = 6 if st.st_uid == uid else 3 if st.st_gid == gid else 0
    return (st.st_mode >> shift) & bit == bit


def check_reachable(path, uid, gid, want="r", fix_under=None):
    """Make sure @uid/@gid can reach @path: search every directory above it
    and have @want ("r", "rx", ...) on it.

    A directory below @fix_under (the test run's own tree) that is not
    searchable gets o+x; anything else that is not reachable raises
    HarnessError naming it, since the harness must not change permissions
    outside its run directory.
    """
    path = os.path.abspath(path)
    parts = path.split("/")
    for i in range(2, len(parts)):
        d = "/".join(parts[:i]) or "/"
        st = os.stat(d)
        if _may(st, uid, gid, 1):
            continue
        if fix_under and (d + "/").startswith(os.path.abspath(fix_under) + "/"):
            os.chmod(d, st.st_mode | 0o001)
            continue
        raise HarnessError("uid %d cannot search directory %s (mode %o, owner %d:%d), "
                           "so it cannot reach %s" % (uid, d, st.st_mode & 0o7777,
                                                      st.st_uid, st.st_gid, path))
    st = os.stat(path)
    for letter, bit in (("r", 4), ("w", 2), ("x", 1)):
        if letter in want and not _may(st, uid, gid, bit):
            raise HarnessError("uid %d has no %s permission on %s (mode %o, owner %d:%d)" % (
                uid, letter, path, st.st_mode & 0o7777, st.st_uid, st.st_gid))


def helper_files(helper):
    """The helper executable and the D-Bus module it loads for --dbus-address
    (next to it in a build tree), as far as they exist."""
    files = [os.path.realpath(helper)]
    module = os.path.join(os.path.dirname(files[0]), "slirp-helper-dbus.so")
    if os.path.exists(module):
        files.append(module)
    return files


# ---------------------------------------------------------------------------
# The daemons

# Modes of an instance (see the module documentation).
MODES = ("none-root", "dac", "session")

QEMU_CONF_SECURITY = {
    "none-root": """\
# No sVirt: a private build has no SELinux or AppArmor policy for its paths,
# and DAC relabelling would chown test files for nothing; QEMU, the helper
# and dbus-daemon simply run as root.
security_driver = "none"
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0""",
    "dac": """\
# libvirt's packaged default where there is no AppArmor: no sVirt driver,
# only the DAC driver, which a privileged daemon always stacks on top (there
# is no security_driver = "dac"; libvirt answers "Security driver dac not
# found").  "none" is explicit so that a host with AppArmor does not probe
# it.  QEMU, the helper and dbus-daemon run as libvirt-qemu, and libvirt
# chowns what a guest needs to it (back to root when the guest stops; no
# xattrs to remember other owners: everything here belongs to root).
security_driver = "none"
user = "libvirt-qemu"
group = "libvirt-qemu"
dynamic_ownership = 1
remember_owner = 0""",
    "session": """\
# qemu:///session: everything runs as the daemon's own user; no security
# driver settings apply.""",
}

QEMU_CONF = """\
# qemu.conf of a private test instance (written by tests/libvirt/libvirt_harness.py).
#
{security}
# No cgroups: a daemon started by hand is not a systemd unit, so it gets no
# delegated cgroup v2 subtree to create per-VM groups in.
cgroup_controllers = [ ]
# No per-VM mount namespace: libvirt would build a private /dev for QEMU,
# which needs device setup that is useless for these tests and would hide
# the test's paths; the instance itself already runs in its own namespace.
namespaces = [ ]
slirp_helper = "{helper}"
{extra}
"""

VIRTQEMUD_CONF = """\
host_uuid = "{host_uuid}"
log_outputs = "1:file:{log}"
log_filters = "1:qemu.slirp 1:qemu.dbus 1:qemu.qemu_extdevice 1:qemu.qemu_process 1:util.pidfile 1:util.command 2:qemu 3:util 3:rpc 3:object 3:event 3:conf 3:security"
unix_sock_group = "root"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
"""

VIRTLOGD_CONF = """\
log_outputs = "3:file:{log}"
"""


class LibvirtInstance:
    """One private virtlogd + virtqemud pair running from build/root-SERIES.

    @workdir is the test run's directory; the instance keeps everything in
    @workdir/@name.  @helper is written into qemu.conf as slirp_helper.
    @mode is one of MODES (see the module documentation).
    """

    def __init__(self, workdir, name, helper=None, host_uuid=None, extra_qemu_conf="",
                 mode="none-root"):
        if mode not in MODES:
            raise HarnessError("unknown instance mode %r (known: %s)" % (mode, ", ".join(MODES)))
        self.name = name
        self.mode = mode
        self.workdir = workdir
        self.dir = os.path.join(workdir, name)
        self.helper = helper if helper is not None else default_helper()
        self.host_uuid = host_uuid or str(uuid.uuid4())
        self.extra_qemu_conf = extra_qemu_conf
        self.private = {k: os.path.join(self.dir, k) for k in PRIVATE_DIRS}
        # Who QEMU and the helper run as: (name, uid, gid).
        self.qemu_user = {"none-root": ("root", 0, 0), "dac": QEMU_USER,
                          "session": session_user() if mode == "session" else None}[mode]
        # The session daemon's home and XDG directories (unused in the other
        # modes).  Those that hold sockets (the runtime directory; QEMU's
        # monitor and probing sockets below the configuration directory)
        # must be short: a Unix socket path has at most 107 bytes, which the
        # run directory's own paths exceed (QEMU: "UNIX socket path ... is
        # too long").  They live in a private directory under /tmp (as a
        # real user's /run/user/UID and ~/.config are short), linked from
        # the instance's directory, and are removed by stop().
        self.home = os.path.join(self.dir, "home")
        self.short_dir = (tempfile.mkdtemp(prefix="lvs-", dir="/tmp")
                          if mode == "session" else None)
        self.xdg = {"XDG_RUNTIME_DIR": os.path.join(self.short_dir or self.dir, "run"),
                    "XDG_CONFIG_HOME": os.path.join(self.short_dir or self.home, "config"),
                    "XDG_CACHE_HOME": os.path.join(self.home, ".cache")}
        self.qemud = None
        self.logd = None
        self.namespaces = set()     # mount namespaces our processes live in
        root = cgroup2_root()
        self.cgroup = (os.path.join(root, "libvirt-slirp-systest", "%s-%s" % (
            os.path.basename(workdir), name)) if root else None)
        self.qemud_log = os.path.join(self.dir, "virtqemud.log")
        self.logd_log = os.path.join(self.dir, "virtlogd.log")

    # Real paths (valid outside the namespace) of libvirt's directories.
    @property
    def session(self):
        return self.mode == "session"

    @property
    def run_dir(self):
        """libvirt's run directory: PREFIX/run/libvirt, or for a session
        daemon $XDG_RUNTIME_DIR/libvirt."""
        if self.session:
            return os.path.join(self.xdg["XDG_RUNTIME_DIR"], "libvirt")
        return os.path.join(self.private["run"], "libvirt")

    @property
    def socket(self):
        return os.path.join(self.run_dir, "virtqemud-sock")

    @property
    def logd_socket(self):
        return os.path.join(self.run_dir, "virtlogd-sock")

    @property
    def uri(self):
        return "qemu+unix:///%s?socket=%s" % ("session" if self.session else "system", self.socket)

    @property
    def state_dir(self):
        if self.session:
            return os.path.join(self.run_dir, "qemu", "run")
        return os.path.join(self.run_dir, "qemu")

    @property
    def slirp_dir(self):
        return os.path.join(self.state_dir, "slirp")

    @property
    def dbus_dir(self):
        return os.path.join(self.state_dir, "dbus")

    @property
    def domain_log_dir(self):
        if self.session:
            return os.path.join(self.xdg["XDG_CACHE_HOME"], "libvirt", "qemu", "log")
        return os.path.join(self.private["var"], "log", "libvirt", "qemu")

    @property
    def qemu_conf(self):
        if self.session:
            return os.path.join(self.xdg["XDG_CONFIG_HOME"], "libvirt", "qemu.conf")
        return os.path.join(self.private["etc"], "qemu.conf")

    def write_config(self):
        etc = self.private["etc"]
        dirs = [etc]
        if self.session:
            dirs += [os.path.dirname(self.qemu_conf), self.xdg["XDG_RUNTIME_DIR"],
                     self.xdg["XDG_CACHE_HOME"]]
        else:
            dirs += [os.path.join(etc, "qemu"), self.private["run"],
                     os.path.join(self.private["var"], "lib", "libvirt", "qemu"),
                     os.path.join(self.private["var"], "log", "libvirt", "qemu"),
                     os.path.join(self.private["var"], "cache", "libvirt", "qemu")]
        for d in dirs:
            os.makedirs(d, exist_ok=True)
        with open(self.qemu_conf, "w") as f:
            f.write(QEMU_CONF.format(security=QEMU_CONF_SECURITY[self.mode],
                                     helper=self.helper, extra=self.extra_qemu_conf))
        with open(os.path.join(etc, "virtqemud.conf"), "w") as f:
            f.write(VIRTQEMUD_CONF.format(host_uuid=self.host_uuid, log=self.qemud_log))
        with open(os.path.join(etc, "virtlogd.conf"), "w") as f:
            f.write(VIRTLOGD_CONF.format(log=self.logd_log))
        if self.mode != "none-root":
            self._grant_access()

    def _grant_access(self):
        """Let the QEMU user reach what it needs.

        The helper and its D-Bus module must be executable and readable by
        it where they are (never changed: a failure names the directory).
        In session mode the instance's directory is the daemons' own, so it
        belongs to the session user (and 0700, like a real home and runtime
        directory); its configuration files stay root's but readable.
        """
        _, uid, gid = self.qemu_user
        for path in helper_files(self.helper):
            check_reachable(path, uid, gid, "rx", fix_under=self.workdir)
        if self.session:
            for top in (self.dir, self.short_dir):
                for parent, dirs, files in os.walk(top):
                    for name in [parent] + [os.path.join(parent, f) for f in files]:
                        os.chown(name, uid, gid)
            for d in (self.dir, self.home, self.short_dir, self.xdg["XDG_RUNTIME_DIR"]):
                os.chmod(d, 0o700)
            for name, target in (("xdg-run", self.xdg["XDG_RUNTIME_DIR"]),
                                 ("xdg-config", self.xdg["XDG_CONFIG_HOME"])):
                link = os.path.join(self.dir, name)
                if not os.path.lexists(link):
                    os.symlink(target, link)
            check_reachable(self.dir, uid, gid, "rwx", fix_under=self.workdir)
            check_reachable(self.short_dir, uid, gid, "rwx")

    def _account_files(self):
        """Private copies of /etc/passwd and /etc/group with the accounts the
        instance needs.

        virtqemud resolves the build-time default QEMU user and group
        (libvirt-qemu on Debian) before it reads qemu.conf, and refuses to
        start if they do not exist.  The Debian package creates them; our
        private build must not touch the host's account database, so the
        namespace gets copies that have them, and in session mode the
        session user (SESSION_USER_NAME) too.
        """
        accounts = [QEMU_USER]
        if self.session:
            accounts.append(self.qemu_user)
        binds = []
        for path in ("/etc/passwd", "/etc/group"):
            with open(path) as f:
                text = f.read()
            add = ""
            for name, uid, gid in accounts:
                if re.search(r"^%s:" % re.escape(name), text, re.M):
                    continue
                if path == "/etc/passwd":
                    home = self.home if name == SESSION_USER_NAME else "/nonexistent"
                    add += "%s:x:%d:%d:%s:%s:/usr/sbin/nologin\n" % (name, uid, gid, name, home)
                else:
                    add += "%s:x:%d:\n" % (name, gid)
            if not add:
                continue
            copy = os.path.join(self.dir, os.path.basename(path))
            with open(copy, "w") as f:
                f.write(text + ("" if text.endswith("\n") else "\n") + add)
            os.chmod(copy, 0o644)
            binds += [copy, path]
        return binds

    def _kvm_node(self):
        """Binds that give the QEMU user of "dac" a /dev/kvm it may open.

        Debian's udev rules make /dev/kvm 0660 root:kvm and the package puts
        libvirt-qemu in group kvm.  Where /dev/kvm is root's alone (0600, as
        on some CI machines), libvirt's capabilities cache never validates for
        libvirt-qemu: the QMP probe gets KVM (QEMU opens /dev/kvm before it
        drops to the user), the check of /dev/kvm as that user says it is
        unusable, and virtqemud probes QEMU over and over (17 probes, over a
        minute, at each start, and the shared cache is rewritten each time).
        So the namespace gets a node of the same device, 0660 with the QEMU
        user's group, as on Debian.  The guests still run TCG (type='qemu').
        """
        if self.mode != "dac":
            return []
        try:
            st = os.stat("/dev/kvm")
        except OSError:
            return []
        _, uid, gid = self.qemu_user
        if not stat.S_ISCHR(st.st_mode) or _may(st, uid, gid, 6):
            return []
        node = os.path.join(self.dir, "kvm")
        if os.path.lexists(node):
            os.unlink(node)
        os.mknod(node, 0o660 | stat.S_IFCHR, st.st_rdev)
        os.chown(node, 0, gid)
        os.chmod(node, 0o660)
        return [node, "/dev/kvm"]

    def _spawn(self, argv, outname):
        """Start @argv in a new mount namespace with the private binds."""
        binds = self._account_files()
        daemon = argv[0]
        env = None
        if self.session:
            # An unprivileged daemon finds its directories through the XDG
            # variables (no bind mounts), and runs as the session user with
            # what an ordinary login has: no capabilities (the kernel clears
            # them at the switch from uid 0), the full bounding set.  It
            # probes QEMU into its own capabilities cache, owned by it.
            name, uid, gid = self.qemu_user
            env = dict(os.environ, HOME=self.home, USER=name, LOGNAME=name, **self.xdg)
            argv = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups",
                    "--", *argv]
        else:
            binds += self._kvm_node()
            for key, target in PRIVATE_DIRS.items():
                binds += [self.private[key], target]
            # QEMU's capabilities cache is shared by all instances and runs: probing
            # QEMU costs seconds of TCG, and libvirt revalidates the cache itself
            # (QEMU binary, libvirt build and kernel are part of its key).
            binds += [CAPS_CACHE, os.path.join(PRIVATE_DIRS["var"], "cache", "libvirt", "qemu")]
        # The first argument is the cgroup.procs file to join ("" for none).
        script = ('set -e; [ -z "$1" ] || echo $$ > "$1"; shift; '
                  'while [ "$1" != -- ]; do mount --bind "$1" "$2"; shift 2; done; '
                  'shift; exec "$@"')
        procs = os.path.join(self.cgroup, "cgroup.procs") if self.cgroup else ""
        out = open(os.path.join(self.dir, outname), "ab")
        proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--",
             "/bin/sh", "-c", script, "sh", procs, *binds, "--", *argv],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env=env)
        out.close()
        # unshare, sh (and setpriv) all exec, so proc.pid becomes the daemon itself.
        wait_for(lambda: proc.poll() is not None or
                 (cmdline(proc.pid)[:1] == [daemon] and mount_ns(proc.pid)),
                 10, "%s to start" % os.path.basename(daemon), interval=0.02)
        if proc.poll() is not None:
            raise HarnessError("%s exited at start with status %s:\n%s%s" % (
                daemon, proc.returncode, tail(os.path.join(self.dir, outname)),
                tail(self.qemud_log, 10) if daemon == VIRTQEMUD else ""))
        self.namespaces.add(mount_ns(proc.pid))
        return proc

    def start(self):
        for binary in (VIRTQEMUD, VIRTLOGD, VIRSH):
            if not os.access(binary, os.X_OK):
                raise HarnessError("%s is missing: build the fork first (libvirt/build.sh)" % binary)
        os.makedirs(self.dir, exist_ok=True)
        os.makedirs(CAPS_CACHE, exist_ok=True)
        if self.cgroup:
            os.makedirs(self.cgroup, exist_ok=True)
        self.write_config()
        etc = self.private["etc"]
        self.logd = self._spawn([VIRTLOGD, "--config", os.path.join(etc, "virtlogd.conf")],
                                "virtlogd.out")
        wait_for(lambda: os.path.exists(self.logd_socket), 20, "virtlogd's socket")
        self.start_qemud()
        return self

    def start_qemud(self):
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        self.qemud = self._spawn([VIRTQEMUD, "--config",
                                  os.path.join(self.private["etc"], "virtqemud.conf")],
                                 "virtqemud.out")

        def ready():
            if self.qemud.poll() is not None:
                raise HarnessError("virtqemud exited with status %s:\n%s%s" % (
                    self.qemud.returncode, tail(os.path.join(self.dir, "virtqemud.out")),
                    tail(self.qemud_log)))
            return (os.path.exists(self.socket) and
                    self.virsh("uri", check=False, timeout=30).returncode == 0)
        wait_for(ready, 60, "virtqemud to answer on " + self.socket, interval=0.2)

    def _stop(self, proc, what, timeout=20):
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print("harness: %s (pid %d) ignored SIGTERM for %d s, killing it" % (
                what, proc.pid, timeout), file=sys.stderr)
            proc.kill()
            proc.wait(10)

    def stop_qemud(self):
        """Stop virtqemud only (running domains stay up, as in a daemon restart)."""
        self._stop(self.qemud, "virtqemud")

    def restart_qemud(self):
        self.stop_qemud()
        self.start_qemud()

    def stop(self):
        """Tear everything down: domains, daemons, then any leftover process.

        Returns the leftovers that had to be killed (pid, argv), so a caller
        can report them.
        """
        if self.qemud is not None and self.qemud.poll() is None:
            try:
                names = self.virsh("list", "--all", "--name", timeout=30).stdout.split()
                for n in names:
                    self.virsh("destroy", n, check=False, timeout=60)
                    self.virsh("undefine", n, "--managed-save", check=False, timeout=30)
            except (HarnessError, subprocess.TimeoutExpired) as e:
                print("harness: cleaning up domains of %s failed: %s" % (self.name, e),
                      file=sys.stderr)
        self._stop(self.qemud, "virtqemud")
        self._stop(self.logd, "virtlogd")
        leftovers = self.processes()
        for pid, argv in leftovers:
            print("harness: killing leftover process %d: %s" % (pid, " ".join(argv)),
                  file=sys.stderr)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.short_dir:
            shutil.rmtree(self.short_dir, ignore_errors=True)
        if self.cgroup:
            # Empty once every member is reaped (orphans by PID 1, which may lag).
            try:
                wait_for(lambda: not self._member_pids(), 10, "cgroup %s to empty" % self.cgroup)
                os.rmdir(self.cgroup)
            except (HarnessError, OSError) as e:
                print("harness: cannot remove %s: %s" % (self.cgroup, e), file=sys.stderr)
        return leftovers

    def _member_pids(self):
        if self.cgroup:
            try:
                with open(os.path.join(self.cgroup, "cgroup.procs")) as f:
                    return [int(p) for p in f.read().split()]
            except FileNotFoundError:
                return []
        return [pid for pid in all_pids() if mount_ns(pid) in self.namespaces]

    def processes(self, exe_path=None):
        """[(pid, argv)] of live processes this instance started (daemons excluded).

        With @exe_path, only those running that executable (by name, so a
        helper whose binary was rebuilt meanwhile still counts).
        """
        want = os.path.basename(os.path.realpath(exe_path)) if exe_path else None
        daemons = (self.qemud and self.qemud.pid, self.logd and self.logd.pid)
        found = []
        for pid in self._member_pids():
            if pid in daemons or not pid_alive(pid):
                continue
            if want and exe_name(pid) != want:
                continue
            found.append((pid, cmdline(pid)))
        return sorted(found)

    def helper_processes(self):
        return self.processes(self.helper)

    def dbus_processes(self):
        return self.processes("/usr/bin/dbus-daemon")

    def virsh(self, *args, check=True, timeout=120):
        """Run virsh against this instance; returns the CompletedProcess.

        With @check, a non-zero exit raises HarnessError with virsh's output.
        """
        argv = [VIRSH, "-q", "-c", self.uri, *args]
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            died = any(m in proc.stderr for m in HELPER_DIED_MESSAGES)
            raise (HelperNotRunning if died else HarnessError)("virsh %s failed (exit %d): %s%s" % (
                " ".join(args), proc.returncode, proc.stdout, proc.stderr.strip()))
        return proc

    def log_mark(self):
        """A position in virtqemud's log, for log_since()."""
        return os.path.getsize(self.qemud_log)

    def log_since(self, mark):
        """What virtqemud logged after log_mark() returned @mark."""
        with open(self.qemud_log, "rb") as f:
            f.seek(mark)
            return f.read().decode(errors="replace")

    def log_tail(self, lines=60):
        """The last @lines lines of virtqemud's log without QMP traffic."""
        try:
            with open(self.qemud_log, errors="replace") as f:
                text = f.readlines()
        except OSError as e:
            return "(cannot read %s: %s)\n" % (self.qemud_log, e)
        keep = [l if len(l) < 400 else l[:400] + "...\n" for l in text
                if "QEMU_MONITOR_" not in l and not l.startswith((" len=", " fd="))]
        return "".join(keep[-lines:])


# G7: libvirt's warning when the owner of an async job (save, migration)
# talks to QEMU's monitor outside a nested job
NESTED_JOB_WARNING = "entering monitor without asking for a nested job is dangerous"


# ---------------------------------------------------------------------------
# Domains

def mac_for(index, vm=0):
    return "52:54:00:5e:%02x:%02x" % (vm & 0xff, index & 0xff)


def tcp_listening(port, host="127.0.0.1"):
    """True if something accepts TCP connections on @host:@port."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def forward_reaches_guest(port):
    """True if 127.0.0.1:@port serves the guest's /hello.txt (a forward to
    the guest's httpd)."""
    try:
        return guest.tcp_get("127.0.0.1", port, "/hello.txt", timeout=5).decode() == guest.HELLO_TEXT
    except (OSError, guest.GuestError):
        return False


def port_forward_xml(proto, address, host_port, guest_port):
    """A <portForward> mapping @address:@host_port on the host to @guest_port."""
    return ("<portForward proto='%s' address='%s'><range start='%d' to='%d'/></portForward>"
            % (proto, address, host_port, guest_port))


def nic_xml(mac, ip=None, prefix=24, forwards=(), mtu=None, backend=None):
    """An <interface type='user'> with a virtio model and a fixed MAC.

    @forwards: port_forward_xml() strings; @mtu: the <mtu size=...> if any;
    @backend: the <backend type=...> if not the default (SLIRP).
    """
    extra = ("\n  <ip family='ipv4' address='%s' prefix='%d'/>" % (ip, prefix)) if ip else ""
    extra += ("\n  <mtu size='%d'/>" % mtu) if mtu else ""
    extra += ("\n  <backend type='%s'/>" % backend) if backend else ""
    extra += "".join("\n  " + f for f in forwards)
    return ("<interface type='user'>\n  <mac address='%s'/>\n  <model type='virtio'/>%s\n"
            "</interface>\n" % (mac, extra))


def live_interface_xml(lv, name, mac, forwards):
    """The live XML of @name's interface with @mac, its <portForward>s
    replaced by @forwards: the input virsh update-device wants."""
    root = ET.fromstring(lv.virsh("dumpxml", name).stdout)
    for iface in root.iter("interface"):
        m = iface.find("mac")
        if m is not None and m.get("address") == mac:
            for old in iface.findall("portForward"):
                iface.remove(old)
            for f in forwards:
                iface.append(ET.fromstring(f))
            return ET.tostring(iface, encoding="unicode")
    raise HarnessError("domain %s has no interface with MAC %s" % (name, mac))


class Domain:
    """A test guest on a LibvirtInstance, with its console files.

    @nics is a list of nic_xml() strings.  The serial console is a unix
    socket (bind mode: QEMU listens, GuestConsole connects) plus a log file
    written by virtlogd, both in the run directory outside any namespace.
    """

    def __init__(self, lv, name, nics, memory_mib=128, extra_devices=""):
        self.lv = lv
        self.name = name
        self.nics = nics
        self.memory_mib = memory_mib
        self.extra_devices = extra_devices
        self.dir = os.path.join(os.path.dirname(lv.dir), "vm", lv.name, name)
        os.makedirs(self.dir, exist_ok=True)
        self.console_sock = os.path.join(self.dir, "console.sock")
        self.console_log = os.path.join(self.dir, "console.log")
        self.xml_path = os.path.join(self.dir, "domain.xml")
        art = guest.artifacts(build=False)
        self.kernel, self.initrd, self.cmdline = art.kernel, art.initrd, art.cmdline
        if lv.mode != "none-root":
            self._prepare_for_qemu_user()

    def _prepare_for_qemu_user(self):
        """Make this domain's files usable by a QEMU that is not root.

        The kernel and initramfs are copied here: libvirt's DAC driver
        chowns them to the QEMU user while the guest runs, which must not
        happen to the shared build/guest.  A session daemon's QEMU creates
        the console socket itself, so the directory is that user's; under
        DAC it stays root's and libvirt labels what QEMU needs.
        """
        self.kernel = self._copy(self.kernel)
        self.initrd = self._copy(self.initrd)
        _, uid, gid = self.lv.qemu_user
        if self.lv.session:
            for path in (self.dir, self.kernel, self.initrd):
                os.chown(path, uid, gid)
        for path in (self.kernel, self.initrd):
            check_reachable(path, uid, gid, "r", fix_under=self.lv.workdir)

    def _copy(self, path):
        copy = os.path.join(self.dir, os.path.basename(path))
        shutil.copyfile(path, copy)
        os.chmod(copy, 0o644)
        return copy

    def xml(self, console_sock=None, console_log=None):
        kernel, initrd, line = self.kernel, self.initrd, self.cmdline
        return """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{mem}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>{qemu}</emulator>
    <controller type='usb' model='none'/>
    <controller type='pci' model='pcie-root'/>
    <controller type='pci' model='pcie-root-port'/>
    <controller type='pci' model='pcie-root-port'/>
    <controller type='pci' model='pcie-root-port'/>
    <controller type='pci' model='pcie-root-port'/>
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
    {extra}
  </devices>
</domain>
""".format(name=self.name, mem=self.memory_mib, kernel=kernel, initrd=initrd,
           cmdline=line, qemu=QEMU, nics="".join(self.nics),
           sock=console_sock or self.console_sock, log=console_log or self.console_log,
           extra=self.extra_devices)

    def define(self):
        with open(self.xml_path, "w") as f:
            f.write(self.xml())
        self.lv.virsh("define", self.xml_path)
        return self

    def start(self):
        """virsh start; returns the CompletedProcess."""
        proc = self.lv.virsh("start", self.name, timeout=120, check=False)
        if proc.returncode == 0:
            return proc
        hint = ""
        if "failed to connect to DBus" in proc.stderr and "Connection refused" in proc.stderr:
            hint = ("\n(a known intermittent failure under CPU load, probably libvirt 9.0.0's "
                    "qemuDBusStart taking the bus socket file's existence for readiness; "
                    "see tests/libvirt/README.md)")
        died = any(m in proc.stderr for m in HELPER_DIED_MESSAGES)
        raise (HelperNotRunning if died else HarnessError)("virsh start %s failed (exit %d): %s%s" % (
            self.name, proc.returncode, proc.stderr.strip(), hint))

    def destroy(self, check=True):
        return self.lv.virsh("destroy", self.name, check=check, timeout=60)

    def state(self):
        return self.lv.virsh("domstate", self.name, check=False).stdout.strip()

    # --- what the host sees -------------------------------------------------

    def status_path(self):
        return os.path.join(self.lv.state_dir, self.name + ".xml")

    def status_xml(self):
        """The live status XML as virtqemud wrote it (ElementTree root)."""
        return ET.parse(self.status_path()).getroot()

    def slirp_helpers(self):
        """{alias: pid} from <slirp><helper alias pid> in the status XML."""
        root = self.status_xml()
        return {h.get("alias"): int(h.get("pid")) for h in root.findall("./slirp/helper")}

    def helper_processes(self):
        """[(pid, argv)] of helper processes wired to this domain's QEMU:
        those holding a socket whose peer is one of QEMU's sockets."""
        qpid = self.qemu_pid()
        if not qpid:
            return []
        qemu_socks = socket_inodes(qpid)
        peers = unix_peer_map()
        return [(pid, argv) for pid, argv in self.lv.helper_processes()
                if any(peers.get(i) in qemu_socks for i in socket_inodes(pid))]

    def helper_argv(self, pid):
        """argv of helper @pid, which must be running and wired to this
        domain's QEMU; HarnessError (with kernel reports) otherwise."""
        running = dict(self.helper_processes())
        if pid not in running:
            raise (HarnessError if pid_alive(pid) else HelperNotRunning)("helper %d of %s is %s; helpers wired to its QEMU: %r\n%s" % (
                pid, self.name, "not wired to QEMU" if pid_alive(pid) else "not running",
                running, kernel_kills(os.path.basename(self.lv.helper)[:15], 3)))
        return running[pid]

    def qemu_pid(self):
        return read_pidfile(os.path.join(self.lv.state_dir, self.name + ".pid"))

    def qemu_cmdline(self):
        pid = self.qemu_pid()
        return cmdline(pid) if pid else []

    def short_name(self):
        """libvirt's <id>-<name> short name used in helper pidfile names."""
        dom_id = self.lv.virsh("domid", self.name).stdout.strip()
        return "%s-%s" % (dom_id, self.name[:20])

    def slirp_pidfiles(self):
        """Helper pidfiles of this domain in the slirp state dir."""
        if not os.path.isdir(self.lv.slirp_dir):
            return []
        return sorted(os.path.join(self.lv.slirp_dir, f) for f in os.listdir(self.lv.slirp_dir)
                      if re.match(r"\d+-%s-.*-slirp\.pid$" % re.escape(self.name[:20]), f))

    def slirp_sockets(self):
        """The sockets QEMU listens on for this running domain's helpers
        (stream transport), in the daemon's state dir."""
        domid = self.short_name().split("-", 1)[0]
        if not os.path.isdir(self.lv.state_dir):
            return []
        return sorted(os.path.join(self.lv.state_dir, f) for f in os.listdir(self.lv.state_dir)
                      if re.match(r"slirp-%s-.*\.sock$" % domid, f))

    def dbus_files(self):
        """The per-VM dbus-daemon's pid, socket and config files left on disk."""
        if not os.path.isdir(self.lv.dbus_dir):
            return []
        return sorted(os.path.join(self.lv.dbus_dir, f) for f in os.listdir(self.lv.dbus_dir)
                      if re.match(r"\d+-%s-dbus\." % re.escape(self.name[:20]), f))

    def bus_call(self, dest, path, method, *args):
        """dbus-send @method (interface.Method) with @args (dbus-send's
        type:value syntax) to @dest on this domain's per-VM bus; returns
        the printed reply.

        The socket is named relative to its directory: its full path in
        the test run's tree can be longer than a socket address holds.
        """
        sock = [f for f in self.dbus_files() if f.endswith("-dbus.sock")]
        assert sock, "no per-VM bus socket in %s" % self.lv.dbus_dir
        proc = subprocess.run(["dbus-send", "--bus=unix:path=" + os.path.basename(sock[0]),
                               "--print-reply", "--dest=" + dest, path, method, *args],
                              cwd=os.path.dirname(sock[0]), capture_output=True, text=True,
                              timeout=10)
        assert proc.returncode == 0, "%s on the per-VM bus failed: %s" % (
            method, proc.stderr.strip())
        return proc.stdout

    def dbus_pid(self):
        """The per-VM dbus-daemon's pid from its pidfile, or None."""
        for path in self.dbus_files():
            if path.endswith("-dbus.pid"):
                return read_pidfile(path)
        return None

    def domain_log(self):
        return os.path.join(self.lv.domain_log_dir, self.name + ".log")

    def diagnostics(self, lines=40):
        """Console tail, domain log tail, virtqemud log tail and kernel
        reports of a dying helper, for failures."""
        text = ("--- console of %s (%s) ---\n%s--- QEMU log of %s ---\n%s"
                "--- virtqemud log (%s) ---\n%s" % (
                    self.name, self.console_log, tail(self.console_log, lines),
                    self.name, tail(self.domain_log(), lines), self.lv.name,
                    self.lv.log_tail(lines)))
        kills = kernel_kills(os.path.basename(self.lv.helper)[:15])
        if kills:
            text += "--- kernel log: the helper killed (seccomp=type 1326) ---\n%s\n" % kills
        return text


KEEP_RUNS = 6


@contextlib.contextmanager
def saved_image(dom, timeout=180):
    """virsh save of @dom to an image in its directory: yields the image's
    path, and removes the image afterwards, whatever happened."""
    image = os.path.join(dom.dir, "saved.img")
    dom.lv.virsh("save", dom.name, image, timeout=timeout)
    try:
        yield image
    finally:
        if os.path.exists(image):
            os.unlink(image)


def new_run_dir(label="run"):
    """A fresh directory for one test run under build/systest.

    Only the newest KEEP_RUNS run directories of each label are kept (their
    logs are what one reads after a failure); older ones are removed.
    """
    os.makedirs(SYSTEST_DIR, exist_ok=True)
    old = sorted((d for d in os.listdir(SYSTEST_DIR) if re.match(r"%s-\d{8}-\d{6}-\d+$" % label, d)),
                 key=lambda d: os.path.getmtime(os.path.join(SYSTEST_DIR, d)))
    for d in old[:-KEEP_RUNS] if len(old) > KEEP_RUNS else []:
        shutil.rmtree(os.path.join(SYSTEST_DIR, d), ignore_errors=True)
    path = os.path.join(SYSTEST_DIR, "%s-%s-%d" % (label, time.strftime("%Y%m%d-%H%M%S"),
                                                   os.getpid()))
    os.makedirs(path)
    return path


def fetch_ok(vm, http, gateway):
    """The guest fetches http's blob through @gateway; True if the sha256 and
    size match and the host server saw the request come from 127.0.0.1
    (slirp turns guest connections into host connections)."""
    before = len(http.requests)
    sha, size = vm.console.fetch_sha256(http.url(gateway), timeout=120)
    if (sha, size) != (http.sha256, http.size):
        raise HarnessError("guest fetched %d bytes with sha256 %s through %s; expected %d bytes, %s"
                           % (size, sha, gateway, http.size, http.sha256))
    seen = http.requests[before:]
    if ("127.0.0.1", "/blob") not in seen:
        raise HarnessError("host server did not see the fetch through %s from 127.0.0.1: %r"
                           % (gateway, seen))
    return True


def ensure_lease(vm, iface):
    """Make sure @iface has an address; DHCP only if it has none."""
    out, _ = vm.run("ip -4 -o addr show dev %s" % iface)
    if "inet " not in out:
        vm.console.dhcp(iface)


def lease_for_mac(vm, iface, mac):
    """The address the helper's DHCP server leases to @mac on @iface.

    Temporarily gives @iface that MAC, runs DHCP, then puts the NIC's own
    MAC back and renews, so the guest ends on its normal lease.
    """
    own = vm.check("cat /sys/class/net/%s/address" % iface).strip()
    vm.check("ip link set dev %s address %s" % (iface, mac))
    try:
        lease = vm.console.dhcp(iface)
    finally:
        vm.check("ip link set dev %s address %s" % (iface, own))
        vm.console.dhcp(iface)
    return lease["ip"]


class VM:
    """A Domain plus a GuestConsole on its serial socket.

    The console connection dies with the QEMU process (save, migration,
    destroy); connect() makes a new one to whatever QEMU now listens there.
    """

    def __init__(self, dom):
        self.dom = dom
        self.console = None

    @property
    def lv(self):
        return self.dom.lv

    def connect(self, socket_path=None, timeout=60):
        self.disconnect()
        self.console = guest.GuestConsole(socket_path or self.dom.console_sock,
                                          log_path=os.path.join(self.dom.dir, "console-client.log"),
                                          connect_timeout=30)
        self.console.wait_ready(timeout)
        return self.console

    def disconnect(self):
        if self.console is not None:
            self.console.close()
            self.console = None

    def boot(self, timeout=120):
        """virsh start, then wait until the guest's shell answers.

        A guest whose shell never answers is destroyed and started once
        more, and the test says so in its output: under TCG the test guest
        has hung right after printing GUEST-READY, once so far (a local CI
        run on 2026-12-03, the 9.0.0 fork's first recovery test), before
        any step of the test ran.  A second hang fails the test.
        """
        self.dom.start()
        try:
            return self.connect(timeout=timeout)
        except guest.GuestTimeout as e:
            print("\nharness: %s: the guest's shell did not answer, booting it once more\n%s"
                  % (self.dom.name, e))
            self.disconnect()
            self.dom.destroy()
            self.dom.start()
            return self.connect(timeout=timeout)

    def run(self, cmd, timeout=60):
        return self.console.run(cmd, timeout)

    def check(self, cmd, timeout=60):
        return self.console.check(cmd, timeout)

    def diagnostics(self, lines=40):
        text = self.dom.diagnostics(lines)
        if self.console is not None:
            text += "--- console as the test saw it ---\n%s\n" % self.console.tail(lines)
        return text
