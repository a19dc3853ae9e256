"""Keep your distribution's libvirt, add the helper: the slirp-helper .deb
under stock Debian 12 and Debian 13 libvirt, each in a clean chroot.

Stock libvirt runs /usr/bin/slirp-helper for every <interface type='user'>
when that file exists.  For each release (test ids [bookworm], [trixie])
one chroot is set up per module (stock_harness.py says how), one guest is
booted, and the tests run in order on it, each starting the guest again if
an earlier one left it stopped:

  the helper libvirt started is the package's and confined (every thread);
  DHCP and a fetch from a host server with a matching checksum;
  virsh save/restore keeps the helper's lease table and the network;
  a daemon restart, then save/restore, leaves the network working;
  virsh destroy leaves no helper and no bus process;
  removing the package gives the guest QEMU's built-in slirp again;
  purging it takes its AppArmor include out again.

The AppArmor rules are parse-checked against each release's libvirt
abstraction with the host's apparmor_parser (the host has no AppArmor LSM:
whether they allow exactly what the helper does is not proven here).
"""

import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

import stock_harness as S
from stock_harness import H, guest

MAC = H.mac_for(1, 0x60)
OTHER_MAC = H.mac_for(2, 0x60)      # a second client in the helper's lease table


@pytest.fixture(scope="module", params=sorted(S.RELEASES))
def stock(request, tmp_path_factory):
    """A running stock libvirt with the package installed, for one release."""
    release = request.param
    deb = S.deb_path(release)
    ch = S.StockChroot(release)
    t0 = time.monotonic()
    ch.create()
    try:
        ch.mount()
        ch.install_deb(deb)
        ch.configure()
        ch.start_daemons()
        ch.timings["set-up"] = time.monotonic() - t0
        print("\nstock[%s]: %s, %d MiB of packages downloaded for the chroot, timings %s" % (
            release, os.path.basename(deb), (ch.downloaded or 0) >> 20,
            {k: round(v, 1) for k, v in ch.timings.items()}))
        yield ch
    finally:
        leftovers = ch.stop()
        print("stock[%s]: stopped; leftovers killed: %r; total %.0f s" % (
            release, leftovers, time.monotonic() - t0))


@pytest.fixture(scope="module")
def http():
    with guest.HttpFileServer() as server:
        yield server


class Guest:
    """The module's one guest: (re)booted on demand."""

    def __init__(self, ch):
        self.dom = S.StockDomain(ch, "stock-%s" % ch.release, [MAC]).define()
        self.vm = H.VM(self.dom)

    def running(self):
        if self.dom.state() != "running":
            self.dom.start()
            self.vm.connect(timeout=120)
            self.vm.console.dhcp("eth0")
        elif self.vm.console is None:
            self.vm.connect(timeout=60)
        return self.vm


@pytest.fixture(scope="module")
def booted(stock):
    g = Guest(stock)
    yield g
    g.vm.disconnect()
    g.dom.destroy(check=False)


@pytest.fixture
def vm(booted, request):
    """The running guest; on failure the report gets its diagnostics."""
    v = booted.running()
    yield v
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(v.diagnostics())


def helper_pid(vm):
    pids = vm.dom.helper_pids()
    assert len(pids) == 1, "helpers wired to QEMU: %r\n%s" % (pids, vm.dom.diagnostics())
    return pids[0]


def wait_network(vm, http, timeout=60):
    """The guest fetches the blob through the helper within @timeout s
    (a helper waiting for migration state drops traffic until it gives up)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return H.fetch_ok(vm, http, "10.0.2.2")
        except (H.HarnessError, guest.GuestError) as e:
            if time.monotonic() > deadline:
                helpers = [(p, H.cmdline(p)) for p in vm.dom.helper_pids()]
                raise AssertionError("no network %d s after restore; helpers %r: %s" % (
                    timeout, helpers, e))
            time.sleep(2)


def save_restore(vm, ch):
    """virsh save, then restore; reconnects the console."""
    image = "%s/%s.save" % (S.SAVES, vm.dom.name)
    vm.disconnect()
    ch.virsh("save", vm.dom.name, image, timeout=180)
    assert vm.dom.state() == "shut off"
    try:
        ch.virsh("restore", image, timeout=180)
    finally:
        os.unlink(ch.path(image))
    vm.connect(timeout=60)


# ---------------------------------------------------------------------------

def test_helper_is_ours_and_confined(stock, vm):
    pid = helper_pid(vm)
    assert stock.same_file("/proc/%d/exe" % pid, S.HELPER), os.readlink("/proc/%d/exe" % pid)
    argv = H.cmdline(pid)
    assert any(a.startswith("--dbus-address=") for a in argv), argv
    netdevs = H.netdev_args(vm.dom.qemu_cmdline())
    assert any(n.get("type") == "socket" and "fd" in n for n in netdevs), netdevs

    # every thread: not root, no capability in any set, no_new_privs, seccomp
    tasks = [int(t) for t in os.listdir("/proc/%d/task" % pid)]
    for task in tasks:
        st = S.proc_status(pid, task)
        assert "0" not in st["Uid"].split(), (task, st["Uid"])
        assert "0" not in st["Gid"].split(), (task, st["Gid"])
        for caps in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(st[caps], 16) == 0, (task, caps, st[caps])
        assert st["NoNewPrivs"] == "1", (task, st["NoNewPrivs"])
        assert st["Seccomp"] == "2", (task, st["Seccomp"])

    # its root is an empty tmpfs holding only its few bind mounts
    root = "/proc/%d/root" % pid
    for host_thing in ("usr", "bin", "etc/passwd", "var", "proc", "home"):
        assert not os.path.exists(os.path.join(root, host_thing)), host_thing

    # and the D-Bus module the installed binary loads is the package's
    maps = open("/proc/%d/maps" % pid).read()
    assert "/usr/lib/x86_64-linux-gnu/slirp-helper/slirp-helper-dbus.so" in maps


def test_dhcp_and_fetch(vm, http):
    lease = vm.console.dhcp("eth0")
    assert lease["ip"] == "10.0.2.15" and lease["router"] == "10.0.2.2", lease
    assert H.fetch_ok(vm, http, "10.0.2.2")


def test_save_restore_keeps_lease_table(stock, vm, http):
    # two clients in the helper's table: our NIC (10.0.2.15) and OTHER_MAC
    H.ensure_lease(vm, "eth0")
    other = H.lease_for_mac(vm, "eth0", OTHER_MAC)
    assert other == "10.0.2.16", other
    save_restore(vm, stock)
    out = vm.check("ip -4 -o addr show dev eth0")
    assert "10.0.2.15/" in out, out
    wait_network(vm, http)
    # a fresh helper would hand OTHER_MAC the first free address again
    assert H.lease_for_mac(vm, "eth0", OTHER_MAC) == other


def test_daemon_restart_then_save_restore(stock, vm, http):
    H.ensure_lease(vm, "eth0")
    before = helper_pid(vm)
    stock.restart_libvirtd()
    assert helper_pid(vm) == before, "the helper must survive a daemon restart"
    save_restore(vm, stock)
    out = vm.check("ip -4 -o addr show dev eth0")
    assert "10.0.2.15/" in out, out
    wait_network(vm, http)


def test_destroy_leaves_no_helper_or_bus(stock, vm):
    helper = helper_pid(vm)
    buses = stock.processes_of(S.DBUS_DAEMON)
    assert buses, "no per-VM dbus-daemon while the guest runs"
    vm.disconnect()
    vm.dom.destroy()
    gone = guest.wait_until(lambda: not stock.processes_of(S.HELPER) and
                            not stock.processes_of(S.DBUS_DAEMON), 15)
    left = [(p, H.cmdline(p)) for p in stock.processes_of(S.HELPER) +
            stock.processes_of(S.DBUS_DAEMON)]
    # what stock libvirt leaves on disk (reported, not asserted)
    print("\nstock[%s]: after destroy, /run/libvirt/qemu/slirp: %r, /run/libvirt/qemu/dbus: %r"
          % (stock.release, vm.dom.slirp_files(), vm.dom.dbus_files()))
    assert gone, "left running after destroy (helper was %d, buses %r): %r" % (helper, buses, left)


def test_apparmor_rules_parse(stock):
    """The package's rules compile inside each release's libvirt-qemu
    abstraction, through the include the release uses."""
    parser = shutil.which("apparmor_parser")
    assert parser, "apparmor_parser is missing (scripts/packages.txt: apparmor)"
    with tempfile.TemporaryDirectory() as base:
        # the host's base abstractions and tunables, the chroot's libvirt files
        for d in ("abi", "tunables", "abstractions"):
            shutil.copytree(os.path.join("/etc/apparmor.d", d), os.path.join(base, d))
        aa = stock.path("/etc/apparmor.d")
        for d in ("abstractions", "local", "libvirt"):
            if os.path.isdir(os.path.join(aa, d)):
                shutil.copytree(os.path.join(aa, d), os.path.join(base, d), dirs_exist_ok=True)
        local = os.path.join(base, "local", "abstractions", "libvirt-qemu")
        abstraction = open(os.path.join(base, "abstractions", "libvirt-qemu")).read()
        if "<abstractions/libvirt-qemu.d>" in abstraction:
            # Debian 13: the directory is included; no line in the local file
            assert "slirp-helper" not in (open(local).read() if os.path.exists(local) else "")
        else:
            # Debian 12: the postinst's one line in the site-local file
            assert "include if exists <abstractions/libvirt-qemu.d/slirp-helper>" in \
                open(local).read()
        # a domain profile as virt-aa-helper writes it from TEMPLATE.qemu
        template = open(os.path.join(base, "libvirt", "TEMPLATE.qemu")).read()
        profile = os.path.join(base, "libvirt", "libvirt-test")
        with open(profile, "w") as f:
            f.write(template.replace("LIBVIRT_TEMPLATE", "libvirt-00000000-0000-0000-0000-000000000000"))
        # no AppArmor in the kernel: the parser's own feature set, no cache
        argv = [parser, "-Q", "-K", "--features-file", "/usr/share/apparmor-features/features",
                "--base", base]
        pre = subprocess.run(argv + ["-p", profile],
                             capture_output=True, text=True)
        assert pre.returncode == 0, pre.stderr
        assert "profile slirp_helper" in pre.stdout and "/usr/bin/slirp-helper Cx" in pre.stdout
        assert pre.stdout.count("profile slirp_helper") == 1, "child profile defined twice"
        comp = subprocess.run(argv + [profile],
                              capture_output=True, text=True)
        assert comp.returncode == 0, comp.stderr


def test_remove_gives_builtin_slirp_back(stock, booted):
    """Without /usr/bin/slirp-helper stock libvirt uses QEMU's own slirp."""
    if booted.dom.state() == "running":
        booted.vm.disconnect()
        booted.dom.destroy()
    stock.chroot("dpkg", "-r", "slirp-helper")
    assert not os.path.exists(stock.path(S.HELPER))
    try:
        booted.dom.start()
        netdevs = H.netdev_args(booted.dom.qemu_cmdline())
        assert any(n.get("type") == "user" for n in netdevs), netdevs
        assert not stock.processes_of(S.DBUS_DAEMON)
        booted.vm.connect(timeout=120)
        assert booted.vm.console.dhcp("eth0")["ip"] == "10.0.2.15"
    finally:
        booted.vm.disconnect()
        booted.dom.destroy(check=False)
    # purge: the Debian 12 include line goes, the admin's file stays
    stock.chroot("dpkg", "--purge", "slirp-helper")
    local = stock.path("/etc/apparmor.d/local/abstractions/libvirt-qemu")
    if os.path.exists(local):
        assert "slirp-helper" not in open(local).read()
    assert not os.path.exists(stock.path("/etc/apparmor.d/abstractions/libvirt-qemu.d/slirp-helper"))
