"""Things going wrong: QEMU or the helper killed, virtqemud restarted, bad slirp_helper.

Each test records what the guest and libvirt observe and asserts it.
"""

import os
import re
import signal
import subprocess
import time

import pytest

import libvirt_harness as H


def boot_with_network(lv, vm_factory, name, http, vm_index):
    vm = vm_factory(lv, name, [H.nic_xml(H.mac_for(1, vm_index))])
    vm.boot()
    vm.console.dhcp("eth0")
    assert H.fetch_ok(vm, http, "10.0.2.2")
    helpers = vm.dom.slirp_helpers()
    assert list(helpers) == ["net0"], helpers
    assert H.pid_alive(helpers["net0"])
    return vm, helpers["net0"]


def test_qemu_sigkill(lv, vm_factory, http):
    """QEMU dies: libvirt notices (monitor EOF) and stops the helper within 5 s."""
    vm, helper = boot_with_network(lv, vm_factory, "qemukill", http, 10)
    dbus = vm.dom.dbus_pid()
    qemu = vm.dom.qemu_pid()
    t0 = time.monotonic()
    os.kill(qemu, signal.SIGKILL)
    H.wait_for(lambda: not H.pid_alive(helper), 5, "helper %d to exit after QEMU's SIGKILL" % helper)
    print("helper gone %.2f s after QEMU's SIGKILL" % (time.monotonic() - t0))
    H.wait_for(lambda: vm.dom.state() == "shut off", 10, "libvirt to mark the domain shut off")
    reason = vm.lv.virsh("domstate", "--reason", vm.dom.name).stdout
    assert "crashed" in reason or "destroyed" in reason or "failed" in reason, reason
    if dbus:
        H.wait_for(lambda: not H.pid_alive(dbus), 5, "dbus-daemon %d to exit" % dbus)
    assert vm.dom.slirp_pidfiles() == []


def test_qemu_dies_while_virtqemud_is_down(lv, vm_factory):
    """virtqemud stopped, QEMU killed, virtqemud started: reconnecting fails,
    the domain is marked shut off and its helper and dbus-daemon are stopped."""
    vm = vm_factory(lv, "qemudown", [H.nic_xml(H.mac_for(1, 14))])
    vm.dom.start()
    helper = vm.dom.slirp_helpers()["net0"]
    dbus = vm.dom.dbus_pid()
    lv.stop_qemud()
    os.kill(vm.dom.qemu_pid(), signal.SIGKILL)
    lv.start_qemud()
    t0 = time.monotonic()
    H.wait_for(lambda: not H.pid_alive(helper), 5, "helper %d to exit after reconnect failed" % helper)
    print("helper gone %.2f s after virtqemud came back" % (time.monotonic() - t0))
    H.wait_for(lambda: vm.dom.state() == "shut off", 10, "the domain to be marked shut off")
    if dbus:
        H.wait_for(lambda: not H.pid_alive(dbus), 5, "dbus-daemon %d to exit" % dbus)
    assert vm.dom.slirp_pidfiles() == []


def test_helper_sigkill_on_a_datagram_socket(instances, vm_factory, http):
    """A helper on a datagram socketpair dies while the guest runs.

    A helper that does not accept a stream (Debian's libslirp-helper) is
    connected over a socketpair, which nothing can take over: QEMU gets no
    event for a datagram peer that went away, so libvirt does nothing at
    run time: the domain keeps running and the status XML keeps naming the
    dead helper, while the guest's network is silently dead (its fetch
    through 10.0.2.2 fails).  The fork reports the dead helper when
    virtqemud next reconnects (log and domain log), clears its pid and
    drops its dbus-vmstate id: the domain can still be saved (QEMU would
    refuse while the id list names a helper that is not on the bus) and
    restored, on a new helper.  destroy still cleans up.  (A helper on a
    stream is replaced: test_libvirt_recovery.py.)
    """
    lv = instances.get("reference", H.REFERENCE_HELPER)
    assert H.netdev_transport(lv.helper) == "socket"
    vm, helper = boot_with_network(lv, vm_factory, "helperkill", http, 11)
    os.kill(helper, signal.SIGKILL)
    H.wait_for(lambda: not H.pid_alive(helper), 5, "helper %d to die" % helper)

    out, status = vm.run("timeout 10 wget -q -O /dev/null %s; echo rc=$?" % http.url("10.0.2.2"),
                         timeout=30)
    assert status == 0 and "rc=0" not in out, "guest still reached the host: %r" % out
    assert vm.dom.state() == "running"
    assert vm.dom.slirp_helpers() == {"net0": helper}

    vm.lv.restart_qemud()
    assert vm.dom.state() == "running"
    line = "slirp-helper of interface 'net0' (pid %d) is not running" % helper
    H.wait_for(lambda: line in open(vm.dom.domain_log(), errors="replace").read(), 10,
               "the domain log to report the dead helper")
    assert "is not running, the interface has no network connectivity" in H.tail(lv.qemud_log, 400)
    assert vm.dom.slirp_helpers().get("net0") != helper

    image = os.path.join(vm.dom.dir, "saved.img")
    vm.disconnect()
    try:
        proc = lv.virsh("save", vm.dom.name, image, timeout=180, check=False)
        assert proc.returncode == 0, "save after the dead helper was reported: %s" % proc.stderr
        lv.virsh("restore", image, timeout=180)
    finally:
        if os.path.exists(image):
            os.unlink(image)
    restored = vm.dom.slirp_helpers().get("net0")
    assert restored and restored != helper and H.pid_alive(restored), restored

    vm.dom.destroy()
    assert vm.dom.slirp_pidfiles() == []


def bus_names(dom):
    """The well-known names on the domain's per-VM bus, asked from outside."""
    reply = dom.bus_call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                         "org.freedesktop.DBus.ListNames")
    return sorted(n for n in re.findall(r'string "([^"]+)"', reply) if not n.startswith(":"))


def test_dbus_daemon_survives_its_own_messages(lv, vm_factory, http):
    """The per-VM bus outlives what it logs after start-up.

    libvirt reads the bus daemon's stderr through a pipe while it starts and
    closes it once the bus is up.  9.0.0's dbus-daemon then died of SIGPIPE
    on its next message: the warning it prints when it cannot raise its
    open files limit (a race with libvirt, lost about one start in five
    here), or "Reloaded configuration" after SIGHUP (every time).  QEMU and
    the helpers were then refused by a bus that had gone.  A reload is
    the deterministic way to make it speak.
    """
    vm, helper = boot_with_network(lv, vm_factory, "dbuslog", http, 15)
    dbus = vm.dom.dbus_pid()
    assert dbus and H.pid_alive(dbus), "no per-VM dbus-daemon"
    names = bus_names(vm.dom)
    assert "org.qemu.VMState1" in names, names

    os.kill(dbus, signal.SIGHUP)
    time.sleep(1)
    assert H.pid_alive(dbus), "the per-VM dbus-daemon %d died after reloading its configuration" % dbus
    assert bus_names(vm.dom) == names
    assert H.pid_alive(helper)
    vm.dom.destroy()


def test_virtqemud_restart_then_destroy(lv, vm_factory, http):
    """The domain is reconnected with its helper tracked; destroy still stops it."""
    vm, helper = boot_with_network(lv, vm_factory, "restart", http, 12)
    lv.restart_qemud()
    assert vm.dom.state() == "running"
    assert vm.dom.slirp_helpers() == {"net0": helper}
    assert H.pid_alive(helper)
    assert [p for p, _ in vm.dom.helper_processes()] == [helper]
    assert H.fetch_ok(vm, http, "10.0.2.2")

    dbus = vm.dom.dbus_pid()
    vm.dom.destroy()
    H.wait_for(lambda: not H.pid_alive(helper), 5, "helper %d to exit after destroy" % helper)
    if dbus:
        H.wait_for(lambda: not H.pid_alive(dbus), 5, "dbus-daemon %d to exit" % dbus)
    assert vm.dom.slirp_pidfiles() == []


def test_virtqemud_restart_then_save_restore(lv, vm_factory, http):
    """After a daemon restart, save/restore still carries the helper's state.

    Upstream 9.0.0 loses the dbus-vmstate id list on restart (G2), so the
    save stream carries no helper state and the restored guest has no
    network; the fork rebuilds the list from <slirp> in the status XML.
    """
    vm, helper = boot_with_network(lv, vm_factory, "restartsave", http, 13)
    assert H.lease_for_mac(vm, "eth0", H.mac_for(0xb0, 13)) == "10.0.2.16"
    lv.restart_qemud()
    assert vm.dom.slirp_helpers() == {"net0": helper}

    image = os.path.join(vm.dom.dir, "saved.img")
    vm.disconnect()
    try:
        lv.virsh("save", vm.dom.name, image, timeout=180)
        lv.virsh("restore", image, timeout=180)
    finally:
        if os.path.exists(image):
            os.unlink(image)
    vm.connect()
    assert H.fetch_ok(vm, http, "10.0.2.2"), "G2: no network after restore"
    assert H.lease_for_mac(vm, "eth0", H.mac_for(0xc0, 13)) == "10.0.2.17", \
        "G2: the restored helper did not get the saved lease table"


# ---------------------------------------------------------------------------
# Misconfiguration: each case runs its own instance with a bad slirp_helper.

FAILING_HELPER = """#!/bin/sh
# A slirp helper that advertises the usual features, then fails at start.
case "$*" in
*--print-capabilities*)
    echo '{"type": "slirp-helper", "features": ["ipv4", "dbus-address", "migrate"]}'
    exit 0;;
esac
echo "failing-helper: cannot set up the network stack (test double)" >&2
exit 1
"""


def failing_helper(run_dir, name, mode):
    """FAILING_HELPER written to @run_dir/@name with permissions @mode."""
    path = os.path.join(run_dir, name)
    with open(path, "w") as f:
        f.write(FAILING_HELPER)
    os.chmod(path, mode)
    return path


def test_missing_helper_falls_back_to_builtin_slirp(instances, run_dir, vm_factory):
    """slirp_helper names a missing file: 9.0.0 and the fork start the guest
    on QEMU's built-in slirp (-netdev user) with no <slirp> in the status XML."""
    missing = os.path.join(run_dir, "no-such-slirp-helper")
    lv = instances.get("missing", missing)
    vm = vm_factory(lv, "missing", [H.nic_xml(H.mac_for(1, 20))])
    vm.dom.start()
    assert [n["type"] for n in H.netdev_args(vm.dom.qemu_cmdline())] == ["user"]
    assert vm.dom.slirp_helpers() == {}
    assert lv.processes(missing) == []


@pytest.mark.xfail(not H.fork_has("uses QEMU's built-in slirp"), strict=True,
                   reason="G10: this build silently falls back to QEMU's built-in slirp when "
                   "slirp_helper is missing; nothing in the logs names the helper")
def test_missing_helper_fallback_is_logged(instances, run_dir, vm_factory):
    """The fallback is logged with the reason, naming the interface and the path."""
    missing = os.path.join(run_dir, "no-such-slirp-helper")
    lv = instances.get("missing", missing)
    vm = vm_factory(lv, "missinglog", [H.nic_xml(H.mac_for(1, 21))])
    vm.dom.start()
    lines = [l for l in H.tail(lv.qemud_log, 3000).splitlines()
             if "built-in slirp" in l and "missinglog" in l]
    assert lines, "no log line says why 'missinglog' runs on the built-in slirp"
    assert any("'net0'" in l and "'%s' does not exist" % missing in l for l in lines), lines
    # A host without a helper is an ordinary set-up, not worth a warning
    # at every start of every user interface.
    assert all(": info : " in l for l in lines), lines


def test_mtu_without_helper_is_refused(instances, run_dir, vm_factory):
    """An interface with <mtu> needs the helper, as QEMU's built-in slirp
    cannot set it: without one the start fails with one line naming the
    interface and why, rather than falling back first."""
    missing = os.path.join(run_dir, "no-such-slirp-helper")
    lv = instances.get("missing", missing)
    vm = vm_factory(lv, "missingmtu", [H.nic_xml(H.mac_for(1, 26), mtu=9000)])
    mark = lv.log_mark()
    proc = lv.virsh("start", vm.dom.name, check=False)
    assert proc.returncode != 0, "virsh start succeeded without a helper for the MTU"
    error = proc.stderr.strip().splitlines()[-1]
    assert "interface 'net0' cannot use the slirp-helper, which its MTU needs" in error, proc.stderr
    assert "'%s' does not exist" % missing in error, proc.stderr
    assert vm.dom.state() == "shut off"
    assert "built-in slirp:" not in lv.log_since(mark), "the refused interface was logged as falling back"
    H.wait_for(lambda: lv.processes() == [], 5, "no process left after the refused start")


def test_restore_without_the_helper_is_refused(instances, run_dir, lv, vm_factory, http):
    """An image whose interface ran on a helper, restored by a daemon that
    has none: the restore fails with one line naming the interface and why,
    before QEMU starts, rather than in QEMU's load of the helper's state
    on the built-in slirp; the image is kept and restores where the helper
    is."""
    missing = os.path.join(run_dir, "no-such-slirp-helper")
    other = instances.get("missing", missing)
    vm, _ = boot_with_network(lv, vm_factory, "helperimage", http, 27)
    vm.disconnect()
    with H.saved_image(vm.dom) as image:
        proc = other.virsh("restore", image, check=False, timeout=180)
        assert proc.returncode != 0, "the restore without a helper succeeded"
        error = proc.stderr.strip().splitlines()[-1]
        assert "interface 'net0' is to load the state of a slirp-helper, but cannot use one" \
            in error and "'%s' does not exist" % missing in error, proc.stderr
        H.wait_for(lambda: other.processes() == [], 10, "no process left by the refused restore")
        assert "helperimage" not in other.virsh("list", "--all", "--name").stdout

        lv.virsh("restore", image, timeout=180)
    assert vm.dom.state() == "running"
    vm.connect()
    assert H.fetch_ok(vm, http, "10.0.2.2")


@pytest.mark.xfail(not H.fork_has("slirp_helper_required"), strict=True,
                   reason="this build has no slirp_helper_required qemu.conf setting")
def test_missing_helper_with_slirp_helper_required(instances, run_dir, vm_factory):
    """slirp_helper_required = 1 turns the silent fallback into a start error
    that names the setting and the missing helper."""
    missing = os.path.join(run_dir, "no-such-slirp-helper")
    lv = instances.get("required", missing, extra_qemu_conf="slirp_helper_required = 1\n")
    vm = vm_factory(lv, "required", [H.nic_xml(H.mac_for(1, 25))])
    proc = lv.virsh("start", vm.dom.name, check=False)
    assert proc.returncode != 0, "virsh start succeeded on the built-in slirp"
    assert "slirp_helper_required" in proc.stderr and missing in proc.stderr, proc.stderr
    assert vm.dom.state() == "shut off"
    H.wait_for(lambda: lv.processes() == [], 5, "no process left after the refused start")


def test_helper_not_executable(instances, run_dir, vm_factory):
    """slirp_helper is a file without execute permission: start fails and says so."""
    path = failing_helper(run_dir, "not-executable-helper", 0o644)
    lv = instances.get("noexec", path)
    vm = vm_factory(lv, "noexec", [H.nic_xml(H.mac_for(1, 22))])
    proc = lv.virsh("start", vm.dom.name, check=False)
    message = proc.stderr
    assert proc.returncode != 0, proc.stdout
    assert path in message, message
    assert "Permission denied" in message or "not executable" in message, message
    assert vm.dom.state() == "shut off"
    assert lv.processes() == []


@pytest.mark.xfail(not H.fork_has("it exited without a message"), strict=True,
                   reason="G11: this build daemonizes the helper and only checks the "
                   "intermediate's exit status and the pidfile it writes itself, so a helper "
                   "that exits at start goes unnoticed: virsh start succeeds, the guest has no "
                   "network, and the helper's stderr is discarded")
def test_helper_exits_at_start(instances, run_dir, vm_factory):
    """The helper exits 1 at start: virsh start fails with the helper's own
    message, and nothing is left behind (no QEMU, helper, dbus-daemon or pidfile)."""
    path = failing_helper(run_dir, "failing-helper", 0o755)
    lv = instances.get("failing", path)
    vm = vm_factory(lv, "failing", [H.nic_xml(H.mac_for(1, 23))])
    proc = lv.virsh("start", vm.dom.name, check=False)
    message = proc.stderr
    assert proc.returncode != 0, "virsh start succeeded with a helper that exited at start"
    assert "cannot set up the network stack" in message, message
    assert path in message, message
    assert vm.dom.state() == "shut off"
    H.wait_for(lambda: lv.processes() == [], 5, "no process left after the failed start")
    assert vm.dom.slirp_pidfiles() == []
    assert vm.dom.dbus_files() == []


# A helper that writes another process's pid into libvirt's pidfile, as a
# helper whose libslirp a guest took over could.  The file is written by a
# child process: the shell closing a descriptor of the file would drop the
# lock it inherited from libvirt.
LYING_HELPER = """#!/bin/sh
case "$*" in
*--print-capabilities*)
    echo '{{"type": "slirp-helper", "features": ["ipv4"]}}'
    exit 0;;
esac
echo $$ > {own}
for fd in /proc/$$/fd/*; do
    target=$(readlink "$fd")
    case "$target" in
    *-slirp.pid) /bin/sh -c 'echo "$0" > "$1"' {bystander} "$target";;
    esac
done
exec 2>&-
while :; do sleep 1; done
"""


@pytest.mark.xfail(not H.fork_has("Unable to find the slirp-helper holding"), strict=True,
                   reason="issue 11 item 11: this build kills the pid written in the helper's "
                   "pidfile, which the helper itself can overwrite")
def test_destroy_kills_the_pidfile_lock_holder(instances, run_dir, vm_factory):
    """The helper writes a bystander's pid into its pidfile: virsh destroy
    kills the helper, which holds the pidfile's lock, and not the bystander."""
    bystander = subprocess.Popen(["sleep", "600"])
    try:
        own = os.path.join(run_dir, "lying-helper.pid")
        path = os.path.join(run_dir, "lying-helper")
        with open(path, "w") as f:
            f.write(LYING_HELPER.format(own=own, bystander=bystander.pid))
        os.chmod(path, 0o755)
        lv = instances.get("lying", path)
        vm = vm_factory(lv, "lying", [H.nic_xml(H.mac_for(1, 24))])
        vm.dom.start()

        def lie_told():
            files = vm.dom.slirp_pidfiles()
            return files and open(files[0]).read().strip() == str(bystander.pid)
        H.wait_for(lie_told, 10, "the helper to write the bystander's pid into its pidfile")
        helper = int(open(own).read())

        vm.dom.destroy()
        H.wait_for(lambda: not H.pid_alive(helper), 10, "the lying helper to be killed")
        assert bystander.poll() is None, "virsh destroy killed the process the pidfile named"
        assert vm.dom.slirp_pidfiles() == []
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.xfail(not H.fork_has("Not killing process"), strict=True,
                   reason="issue 11 item 11: this build kills whatever process holds the lock "
                   "of the pidfile at the interface's path, in a directory the user QEMU runs "
                   "as may write: another domain's helper, once its pidfile is moved there")
def test_destroy_spares_a_helper_whose_pidfile_was_moved_in(lv, vm_factory):
    """Domain B's pidfile is moved onto domain A's (what the user QEMU runs
    as can do in the slirp directory): destroying A does not kill B's
    helper, which holds that file's lock but is not A's helper."""
    a = vm_factory(lv, "movedpid-a", [H.nic_xml(H.mac_for(1, 53))])
    b = vm_factory(lv, "movedpid-b", [H.nic_xml(H.mac_for(1, 54))])
    a.dom.start()
    b.dom.start()
    helper_a = a.dom.slirp_helpers()["net0"]
    helper_b = b.dom.slirp_helpers()["net0"]
    [pidfile_a] = a.dom.slirp_pidfiles()
    [pidfile_b] = b.dom.slirp_pidfiles()
    os.rename(pidfile_b, pidfile_a)

    a.dom.destroy()
    assert H.pid_alive(helper_b), "destroying domain A killed domain B's helper"
    # A's helper, whose pidfile is gone, exits once A's QEMU closed its socket
    H.wait_for(lambda: not H.pid_alive(helper_a), 15, "domain A's helper to exit with its QEMU")
    b.dom.destroy()
    H.wait_for(lambda: not H.pid_alive(helper_b), 15, "domain B's helper to exit with its QEMU")


# The real dbus-daemon, told to listen where it cannot: it fails at start
# with a message of its own.
UNBINDABLE_DBUS_DAEMON = """#!/bin/sh
exec /usr/bin/dbus-daemon "$@" --address=unix:path=/nonexistent-slirp-test/bus.sock
"""


@pytest.mark.xfail(H.SERIES == "9.0.0", strict=True,
                   reason="issue 11 item 14, fixed in the 11.3.0 series only: the 9.0.0 fork "
                   "runs the per-VM dbus-daemon with --syslog-only, which sends its fatal "
                   "start-up errors to syslog, so libvirt reports an empty message")
def test_dbus_daemon_start_up_error_is_reported(instances, run_dir, our_helper, vm_factory):
    """The per-VM dbus-daemon fails to start: virsh start fails quoting
    dbus-daemon's own error, and nothing is left behind."""
    wrapper = os.path.join(run_dir, "unbindable-dbus-daemon")
    with open(wrapper, "w") as f:
        f.write(UNBINDABLE_DBUS_DAEMON)
    os.chmod(wrapper, 0o755)
    lv = instances.get("busfail", our_helper, extra_qemu_conf='dbus_daemon = "%s"\n' % wrapper)
    vm = vm_factory(lv, "busfail", [H.nic_xml(H.mac_for(1, 25))])
    proc = lv.virsh("start", vm.dom.name, check=False)
    assert proc.returncode != 0, "virsh start succeeded without a per-VM bus"
    assert "/nonexistent-slirp-test/bus.sock" in proc.stderr, proc.stderr
    H.wait_for(lambda: lv.processes() == [], 5, "no process left after the failed start")
